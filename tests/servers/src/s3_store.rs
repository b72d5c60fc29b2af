//! The S3 server's storage: `s3s-fs` behind a layer that stores every object under a short key.
//!
//! R2 takes object keys up to 1,024 bytes, but `s3s-fs` keeps an object at `<root>/<bucket>/<key>`
//! (a path segment over 255 bytes fails on ext4) and its metadata in a file whose name holds the key
//! in base64 (so any key over ~180 bytes fails). [`HashedKeys`] hands `s3s-fs` the storage key
//! `k/<sha256 hex of the key>` instead and remembers the original (in memory: the store lives as
//! long as its server), so listings and the server's helpers speak in original keys.
//!
//! Mapped: PutObject, GetObject, HeadObject, DeleteObject, DeleteObjects, ListObjects(V2). Every
//! other operation answers `NotImplemented` (s3s's default).

use s3s::dto::{
    CommonPrefix, DeleteObjectInput, DeleteObjectOutput, DeleteObjectsInput, DeleteObjectsOutput,
    GetObjectInput, GetObjectOutput, HeadObjectInput, HeadObjectOutput, ListObjectsInput,
    ListObjectsOutput, ListObjectsV2Input, ListObjectsV2Output, Object, PutObjectInput,
    PutObjectOutput,
};
use s3s::{S3, S3Request, S3Response, S3Result};
use sha2::{Digest, Sha256};
use std::collections::{BTreeSet, HashMap};
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};

/// Where every object lives in the inner store: `k/<64 hex digits>`.
const STORAGE_PREFIX: &str = "k/";

/// The key `s3s-fs` stores `key` under.
pub(crate) fn storage_key(key: &str) -> String {
    let digest = Sha256::digest(key.as_bytes());
    let mut out = String::with_capacity(STORAGE_PREFIX.len() + 64);
    out.push_str(STORAGE_PREFIX);
    for byte in digest {
        out.push_str(&format!("{byte:02x}"));
    }
    out
}

/// Storage key → original key, for every key ever written.
#[derive(Default)]
pub(crate) struct KeyMap {
    originals: Mutex<HashMap<String, String>>,
}

impl KeyMap {
    /// Remembers `key` and gives its storage key.
    fn record(&self, key: &str) -> String {
        let stored = storage_key(key);
        crate::s3::lock(&self.originals)
            .entry(stored.clone())
            .or_insert_with(|| key.to_owned());
        stored
    }

    /// The original key stored as `stored`, if it was written through this store.
    pub(crate) fn original(&self, stored: &str) -> Option<String> {
        crate::s3::lock(&self.originals).get(stored).cloned()
    }
}

/// `s3s_fs::FileSystem` with object keys mapped to storage keys (see the module docs).
pub(crate) struct HashedKeys {
    inner: s3s_fs::FileSystem,
    keys: Arc<KeyMap>,
}

impl HashedKeys {
    pub(crate) fn new(inner: s3s_fs::FileSystem, keys: Arc<KeyMap>) -> HashedKeys {
        HashedKeys { inner, keys }
    }

    async fn put(
        &self,
        mut req: S3Request<PutObjectInput>,
    ) -> S3Result<S3Response<PutObjectOutput>> {
        req.input.key = self.keys.record(&req.input.key);
        self.inner.put_object(req).await
    }

    async fn get(
        &self,
        mut req: S3Request<GetObjectInput>,
    ) -> S3Result<S3Response<GetObjectOutput>> {
        req.input.key = storage_key(&req.input.key);
        self.inner.get_object(req).await
    }

    async fn head(
        &self,
        mut req: S3Request<HeadObjectInput>,
    ) -> S3Result<S3Response<HeadObjectOutput>> {
        req.input.key = storage_key(&req.input.key);
        self.inner.head_object(req).await
    }

    async fn delete(
        &self,
        mut req: S3Request<DeleteObjectInput>,
    ) -> S3Result<S3Response<DeleteObjectOutput>> {
        req.input.key = storage_key(&req.input.key);
        self.inner.delete_object(req).await
    }

    async fn delete_many(
        &self,
        mut req: S3Request<DeleteObjectsInput>,
    ) -> S3Result<S3Response<DeleteObjectsOutput>> {
        let mut originals = HashMap::new();
        for object in &mut req.input.delete.objects {
            let stored = storage_key(&object.key);
            originals.insert(stored.clone(), std::mem::replace(&mut object.key, stored));
        }
        let mut resp = self.inner.delete_objects(req).await?;
        let back = |key: &mut Option<String>| {
            if let Some(original) = key.as_ref().and_then(|k| originals.get(k)) {
                *key = Some(original.clone());
            }
        };
        for deleted in resp.output.deleted.iter_mut().flatten() {
            back(&mut deleted.key);
        }
        for error in resp.output.errors.iter_mut().flatten() {
            back(&mut error.key);
        }
        Ok(resp)
    }

    /// Lists every object of the inner store, maps keys back, and applies the request's prefix,
    /// delimiter, start-after/continuation token and max-keys as `s3s-fs` does.
    async fn list_v2(
        &self,
        req: S3Request<ListObjectsV2Input>,
    ) -> S3Result<S3Response<ListObjectsV2Output>> {
        let input = req.input.clone();
        let req = req.map_input(|all| ListObjectsV2Input {
            prefix: Some(STORAGE_PREFIX.to_owned()),
            delimiter: None,
            continuation_token: None,
            start_after: None,
            encoding_type: None,
            max_keys: Some(i32::MAX),
            ..all
        });
        let mut resp = self.inner.list_objects_v2(req).await?;

        let prefix = input
            .prefix
            .as_deref()
            .unwrap_or("")
            .trim_start_matches('/');
        let delimiter = input.delimiter.as_deref().filter(|d| !d.is_empty());
        let mut objects = Vec::new();
        let mut common_prefixes = BTreeSet::new();
        for mut object in resp.output.contents.take().unwrap_or_default() {
            let Some(stored) = object.key.as_deref() else {
                continue;
            };
            let key = self
                .keys
                .original(stored)
                .unwrap_or_else(|| stored.to_owned());
            let Some(rest) = key.strip_prefix(prefix) else {
                continue;
            };
            match delimiter.and_then(|d| rest.find(d).map(|at| at + d.len())) {
                Some(end) => {
                    common_prefixes.insert(format!("{prefix}{}", &rest[..end]));
                }
                None => {
                    object.key = Some(key);
                    objects.push(object);
                }
            }
        }
        objects.sort_by(|a, b| a.key.cmp(&b.key));

        let start_after = match (
            input.continuation_token.as_deref(),
            input.start_after.as_deref(),
        ) {
            (Some(token), Some(after)) => Some(token.max(after)),
            (token, after) => token.or(after),
        };
        if let Some(marker) = start_after {
            objects.retain(|o| o.key.as_deref().unwrap_or("") > marker);
            common_prefixes.retain(|p| p.as_str() > marker);
        }

        // Objects and common prefixes interleaved in key order, up to max-keys.
        enum Entry {
            Object(Box<Object>),
            Prefix(String),
        }
        let mut entries: Vec<(String, Entry)> = objects
            .into_iter()
            .map(|o| {
                (
                    o.key.clone().unwrap_or_default(),
                    Entry::Object(Box::new(o)),
                )
            })
            .chain(
                common_prefixes
                    .into_iter()
                    .map(|p| (p.clone(), Entry::Prefix(p))),
            )
            .collect();
        entries.sort_by(|a, b| a.0.cmp(&b.0));
        let max_keys = input.max_keys.unwrap_or(1000);
        let limit = usize::try_from(max_keys).unwrap_or(1000);
        let is_truncated = limit > 0 && entries.len() > limit;
        let rest = entries.split_off(limit.min(entries.len()));
        let next_continuation_token = if is_truncated {
            entries.last().or(rest.first()).map(|(key, _)| key.clone())
        } else {
            None
        };
        let key_count = i32::try_from(entries.len()).unwrap_or(i32::MAX);
        let mut contents = Vec::new();
        let mut prefixes = Vec::new();
        for (_, entry) in entries {
            match entry {
                Entry::Object(o) => contents.push(*o),
                Entry::Prefix(p) => prefixes.push(CommonPrefix { prefix: Some(p) }),
            }
        }

        let out = &mut resp.output;
        out.key_count = Some(key_count);
        out.max_keys = Some(max_keys);
        out.is_truncated = Some(is_truncated);
        out.contents = (!contents.is_empty()).then_some(contents);
        out.common_prefixes = (!prefixes.is_empty()).then_some(prefixes);
        out.continuation_token = input.continuation_token;
        out.next_continuation_token = next_continuation_token;
        out.delimiter = input.delimiter;
        out.encoding_type = input.encoding_type;
        out.name = Some(input.bucket);
        out.prefix = input.prefix;
        out.start_after = input.start_after;
        Ok(resp)
    }

    /// ListObjects (v1) through [`list_v2`](Self::list_v2), as `s3s-fs` does it.
    async fn list_v1(
        &self,
        req: S3Request<ListObjectsInput>,
    ) -> S3Result<S3Response<ListObjectsOutput>> {
        let resp = self.list_v2(req.map_input(Into::into)).await?;
        Ok(resp.map_output(|v2| ListObjectsOutput {
            contents: v2.contents,
            common_prefixes: v2.common_prefixes,
            delimiter: v2.delimiter,
            encoding_type: v2.encoding_type,
            name: v2.name,
            prefix: v2.prefix,
            max_keys: v2.max_keys,
            is_truncated: v2.is_truncated,
            next_marker: v2.next_continuation_token,
            ..Default::default()
        }))
    }
}

/// What `#[async_trait]` turns an `async fn` of [`S3`] into.
type S3Future<'a, T> = Pin<Box<dyn Future<Output = S3Result<S3Response<T>>> + Send + 'a>>;

// Written out by hand rather than with `#[async_trait]`, which this crate does not depend on: each
// method boxes the matching inherent `async fn` above.
impl S3 for HashedKeys {
    fn put_object<'a, 'f>(&'a self, req: S3Request<PutObjectInput>) -> S3Future<'f, PutObjectOutput>
    where
        'a: 'f,
        Self: 'f,
    {
        Box::pin(self.put(req))
    }

    fn get_object<'a, 'f>(&'a self, req: S3Request<GetObjectInput>) -> S3Future<'f, GetObjectOutput>
    where
        'a: 'f,
        Self: 'f,
    {
        Box::pin(self.get(req))
    }

    fn head_object<'a, 'f>(
        &'a self,
        req: S3Request<HeadObjectInput>,
    ) -> S3Future<'f, HeadObjectOutput>
    where
        'a: 'f,
        Self: 'f,
    {
        Box::pin(self.head(req))
    }

    fn delete_object<'a, 'f>(
        &'a self,
        req: S3Request<DeleteObjectInput>,
    ) -> S3Future<'f, DeleteObjectOutput>
    where
        'a: 'f,
        Self: 'f,
    {
        Box::pin(self.delete(req))
    }

    fn delete_objects<'a, 'f>(
        &'a self,
        req: S3Request<DeleteObjectsInput>,
    ) -> S3Future<'f, DeleteObjectsOutput>
    where
        'a: 'f,
        Self: 'f,
    {
        Box::pin(self.delete_many(req))
    }

    fn list_objects_v2<'a, 'f>(
        &'a self,
        req: S3Request<ListObjectsV2Input>,
    ) -> S3Future<'f, ListObjectsV2Output>
    where
        'a: 'f,
        Self: 'f,
    {
        Box::pin(self.list_v2(req))
    }

    fn list_objects<'a, 'f>(
        &'a self,
        req: S3Request<ListObjectsInput>,
    ) -> S3Future<'f, ListObjectsOutput>
    where
        'a: 'f,
        Self: 'f,
    {
        Box::pin(self.list_v1(req))
    }
}
