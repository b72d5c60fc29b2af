//! The bytes seam: [`Blobs`] stores, removes and checks objects by key. Keys are always
//! `{vault_id}/{partition}/{collection}/{channel}/{asset_id}_{filename}` (see [`crate::asset::r2_key`]).
//!
//! Implementations: [`local::LocalBlobs`] (a directory, the embedded default) and [`r2::R2Blobs`]
//! (Cloudflare R2 over S3). [`object_urls`]: the signed URLs with which the embedded default's
//! GETs are served outside the function, by the local object server, as R2 serves them.

pub mod local;
pub mod object_urls;
#[cfg(feature = "r2")]
pub mod r2;

use crate::BoxFuture;
use bytes::Bytes;
use std::time::{Duration, SystemTime};

/// A presigned request: the URL, and the headers the client must send with it exactly.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Presigned {
    pub url: String,
    /// Header names in lowercase, sorted.
    pub headers: Vec<(String, String)>,
}

/// When a presigned URL is signed and how long it stays valid.
#[derive(Debug, Clone, Copy)]
pub struct Validity {
    pub signed_at: SystemTime,
    pub expires_in: Duration,
}

fn unsupported<'a, T: Send + 'a>(what: &'static str) -> BoxFuture<'a, Result<T, BlobError>> {
    Box::pin(async move {
        Err(BlobError::Io(format!(
            "this object store does not support {what}"
        )))
    })
}

/// One object of a listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listed {
    pub key: String,
    pub size: u64,
    /// When the object was last written, in milliseconds since the Unix epoch (S3's
    /// `LastModified`; a file's mtime). `imgbt gc` leaves an object nothing names alone while it
    /// is this young, since its record may still be on the way.
    pub modified_ms: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum BlobError {
    #[error("object key refused: {0}")]
    BadKey(String),
    #[error("object store: {0}")]
    Io(String),
    /// The store refused for rate (S3's `SlowDown`, HTTP 503 or 429), after the client's retries.
    #[error("object store refused for rate: {0}")]
    RateLimited(String),
}

pub trait Blobs: Send + Sync {
    /// Builds now what the first call would otherwise build (R2: the S3 client), so that a
    /// handler can pay for it while it waits on another request. Sends nothing; cheap when done.
    fn prepare(&self) {}

    /// Stores `body` under `key`, replacing nothing: keys carry a fresh asset id.
    fn put<'a>(
        &'a self,
        key: &'a str,
        body: Bytes,
        content_type: &'a str,
    ) -> BoxFuture<'a, Result<(), BlobError>>;

    /// Removes `key`. Removing a key that does not exist succeeds, as on S3.
    fn delete<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<(), BlobError>>;

    /// The stored size of `key`, or `None` when there is no such object.
    fn size<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<Option<u64>, BlobError>>;

    /// Every object whose key starts with `prefix`, in key order. For `imgbt fsck`: it reads the
    /// whole listing, so it is an administrative call, never a request's.
    fn list<'a>(&'a self, prefix: &'a str) -> BoxFuture<'a, Result<Vec<Listed>, BlobError>>;

    /// Up to `max` objects whose key starts with `prefix` and sorts after `after` (`""`: from
    /// the start), in key order; an empty page ends the listing. For `imgbt gc`, which works a
    /// page at a time so a large bucket never sits in memory whole. Resuming after a key rather
    /// than with a continuation token keeps the walk valid while gc removes what it has seen.
    ///
    /// The default reads the whole listing and cuts the page out of it; stores that can list
    /// from a key (S3's `start-after`) do better.
    fn list_page<'a>(
        &'a self,
        prefix: &'a str,
        after: &'a str,
        max: usize,
    ) -> BoxFuture<'a, Result<Vec<Listed>, BlobError>> {
        Box::pin(async move {
            let all = self.list(prefix).await?;
            Ok(all
                .into_iter()
                .filter(|o| o.key.as_str() > after)
                .take(max)
                .collect())
        })
    }

    /// The first `max` bytes of `key` (all of it when shorter; on S3 a range GET), or `None` when
    /// there is no such object.
    fn read_head<'a>(
        &'a self,
        key: &'a str,
        max: u64,
    ) -> BoxFuture<'a, Result<Option<Bytes>, BlobError>> {
        self.read_range(key, 0, max)
    }

    /// The `len` bytes of `key` from byte `start` (fewer when the object ends first; on S3 a range
    /// GET), or `None` when there is no such object. A delivery's 206 reads only its range.
    fn read_range<'a>(
        &'a self,
        _key: &'a str,
        _start: u64,
        _len: u64,
    ) -> BoxFuture<'a, Result<Option<Bytes>, BlobError>> {
        unsupported("reading objects")
    }

    /// A URL that lets its holder PUT `key` with `content_type` (signed) during `validity`, or
    /// `None` when the store has no such URLs (the embedded default: the API serves the PUT).
    fn presign_put<'a>(
        &'a self,
        _key: &'a str,
        _content_type: &'a str,
        _validity: Validity,
    ) -> BoxFuture<'a, Result<Option<Presigned>, BlobError>> {
        unsupported("presigned URLs")
    }

    /// A URL that lets its holder GET `key` during `validity`, answered with `content_type`, or
    /// `None` when the store has no such URLs (the embedded default: the API serves the bytes).
    fn presign_get<'a>(
        &'a self,
        _key: &'a str,
        _content_type: &'a str,
        _validity: Validity,
    ) -> BoxFuture<'a, Result<Option<Presigned>, BlobError>> {
        unsupported("presigned URLs")
    }
}

/// R2's S3 endpoint for an account.
pub fn r2_endpoint_for(account_id: &str) -> String {
    format!("https://{account_id}.r2.cloudflarestorage.com")
}

/// The object store of a build without one (a function that never touches objects is built
/// without the `r2` feature, so it does not carry the R2 client). Every call fails.
pub struct NoBlobs;

impl NoBlobs {
    fn refuse<T: Send + 'static>(&self) -> BoxFuture<'_, Result<T, BlobError>> {
        Box::pin(async {
            Err(BlobError::Io(
                "this build has no object store (the `r2` feature is off)".into(),
            ))
        })
    }
}

impl Blobs for NoBlobs {
    fn put<'a>(
        &'a self,
        _key: &'a str,
        _body: Bytes,
        _content_type: &'a str,
    ) -> BoxFuture<'a, Result<(), BlobError>> {
        self.refuse()
    }

    fn delete<'a>(&'a self, _key: &'a str) -> BoxFuture<'a, Result<(), BlobError>> {
        self.refuse()
    }

    fn size<'a>(&'a self, _key: &'a str) -> BoxFuture<'a, Result<Option<u64>, BlobError>> {
        self.refuse()
    }

    fn list<'a>(&'a self, _prefix: &'a str) -> BoxFuture<'a, Result<Vec<Listed>, BlobError>> {
        self.refuse()
    }
}
