//! An object store that counts what each request asks of it, by kind: a variant hit must be one
//! read and nothing else (docs/API.md#variants).

use shared::BoxFuture;
use shared::blobs::{BlobError, Blobs, Listed, Presigned, Validity};
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

/// Calls to the store, by kind.
#[derive(Debug, Default)]
pub struct Counts {
    pub reads: AtomicU32,
    pub puts: AtomicU32,
    pub lists: AtomicU32,
    pub deletes: AtomicU32,
    pub other: AtomicU32,
}

/// A snapshot of [`Counts`]: (reads, puts, lists, deletes, other).
pub type Snapshot = (u32, u32, u32, u32, u32);

impl Counts {
    pub fn snapshot(&self) -> Snapshot {
        let n = |c: &AtomicU32| c.load(Ordering::SeqCst);
        (
            n(&self.reads),
            n(&self.puts),
            n(&self.lists),
            n(&self.deletes),
            n(&self.other),
        )
    }

    pub fn reset(&self) {
        for c in [
            &self.reads,
            &self.puts,
            &self.lists,
            &self.deletes,
            &self.other,
        ] {
            c.store(0, Ordering::SeqCst);
        }
    }
}

/// `inner`, counted into `counts`.
pub struct CountingBlobs {
    pub inner: Arc<dyn Blobs>,
    pub counts: Arc<Counts>,
}

fn bump(c: &AtomicU32) {
    c.fetch_add(1, Ordering::SeqCst);
}

impl Blobs for CountingBlobs {
    fn put<'a>(
        &'a self,
        key: &'a str,
        body: bytes::Bytes,
        content_type: &'a str,
    ) -> BoxFuture<'a, Result<(), BlobError>> {
        bump(&self.counts.puts);
        self.inner.put(key, body, content_type)
    }

    fn delete<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<(), BlobError>> {
        bump(&self.counts.deletes);
        self.inner.delete(key)
    }

    fn size<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<Option<u64>, BlobError>> {
        bump(&self.counts.other);
        self.inner.size(key)
    }

    fn list<'a>(&'a self, prefix: &'a str) -> BoxFuture<'a, Result<Vec<Listed>, BlobError>> {
        bump(&self.counts.lists);
        self.inner.list(prefix)
    }

    fn list_page<'a>(
        &'a self,
        prefix: &'a str,
        after: &'a str,
        max: usize,
    ) -> BoxFuture<'a, Result<Vec<Listed>, BlobError>> {
        bump(&self.counts.lists);
        self.inner.list_page(prefix, after, max)
    }

    fn read_range<'a>(
        &'a self,
        key: &'a str,
        start: u64,
        len: u64,
    ) -> BoxFuture<'a, Result<Option<bytes::Bytes>, BlobError>> {
        bump(&self.counts.reads);
        self.inner.read_range(key, start, len)
    }

    fn presign_put<'a>(
        &'a self,
        key: &'a str,
        content_type: &'a str,
        validity: Validity,
    ) -> BoxFuture<'a, Result<Option<Presigned>, BlobError>> {
        bump(&self.counts.other);
        self.inner.presign_put(key, content_type, validity)
    }

    fn presign_get<'a>(
        &'a self,
        key: &'a str,
        content_type: &'a str,
        validity: Validity,
    ) -> BoxFuture<'a, Result<Option<Presigned>, BlobError>> {
        bump(&self.counts.other);
        self.inner.presign_get(key, content_type, validity)
    }
}
