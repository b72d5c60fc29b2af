//! The bytes seam: [`Blobs`] stores, removes and checks objects by key. Keys are always
//! `{vault_id}/{partition}/{collection}/{channel}/{asset_id}_{filename}` (see [`crate::asset::r2_key`]).
//!
//! Implementations: [`local::LocalBlobs`] (a directory, the embedded default) and [`r2::R2Blobs`]
//! (Cloudflare R2 over S3).

pub mod local;
pub mod r2;

use crate::BoxFuture;
use bytes::Bytes;

#[derive(Debug, thiserror::Error)]
pub enum BlobError {
    #[error("object key refused: {0}")]
    BadKey(String),
    #[error("object store: {0}")]
    Io(String),
}

pub trait Blobs: Send + Sync {
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
}
