//! Counts of D1 and R2 calls per request, for the request's log line.
//!
//! [`Deps::new`](crate::Deps::new) wraps both stores in counters; [`crate::http::serve`] runs each
//! request in a [`scope`] and logs what it counted. Outside a scope (the CLI, tests calling the
//! stores directly) nothing is counted.

use crate::BoxFuture;
use crate::blobs::{BlobError, Blobs, Listed, Presigned, Validity};
use crate::db::{Db, DbError, Stmt, StmtResult};
use bytes::Bytes;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

/// What one request asked of each store.
#[derive(Debug, Default)]
pub struct Calls {
    pub d1: AtomicU32,
    pub r2: AtomicU32,
}

tokio::task_local! {
    static CALLS: Arc<Calls>;
}

/// Runs `f`, counting the store calls made within it.
pub async fn scope<F: Future>(f: F) -> (F::Output, u32, u32) {
    let calls = Arc::new(Calls::default());
    let output = CALLS.scope(calls.clone(), f).await;
    (
        output,
        calls.d1.load(Ordering::Relaxed),
        calls.r2.load(Ordering::Relaxed),
    )
}

fn count(which: fn(&Calls) -> &AtomicU32) {
    let _ = CALLS.try_with(|calls| which(calls).fetch_add(1, Ordering::Relaxed));
}

/// A [`Db`] that counts its batches.
pub struct CountedDb(pub Arc<dyn Db>);

impl Db for CountedDb {
    fn batch(&self, stmts: Vec<Stmt>) -> BoxFuture<'_, Result<Vec<StmtResult>, DbError>> {
        count(|c| &c.d1);
        self.0.batch(stmts)
    }
}

/// A [`Blobs`] that counts its calls.
pub struct CountedBlobs(pub Arc<dyn Blobs>);

impl Blobs for CountedBlobs {
    fn prepare(&self) {
        self.0.prepare();
    }

    fn put<'a>(
        &'a self,
        key: &'a str,
        body: Bytes,
        content_type: &'a str,
    ) -> BoxFuture<'a, Result<(), BlobError>> {
        count(|c| &c.r2);
        self.0.put(key, body, content_type)
    }

    fn delete<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<(), BlobError>> {
        count(|c| &c.r2);
        self.0.delete(key)
    }

    fn size<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<Option<u64>, BlobError>> {
        count(|c| &c.r2);
        self.0.size(key)
    }

    fn list<'a>(&'a self, prefix: &'a str) -> BoxFuture<'a, Result<Vec<Listed>, BlobError>> {
        count(|c| &c.r2);
        self.0.list(prefix)
    }

    fn list_page<'a>(
        &'a self,
        prefix: &'a str,
        after: &'a str,
        max: usize,
    ) -> BoxFuture<'a, Result<Vec<Listed>, BlobError>> {
        count(|c| &c.r2);
        self.0.list_page(prefix, after, max)
    }

    fn read_range<'a>(
        &'a self,
        key: &'a str,
        start: u64,
        len: u64,
    ) -> BoxFuture<'a, Result<Option<Bytes>, BlobError>> {
        count(|c| &c.r2);
        self.0.read_range(key, start, len)
    }

    // Presigning is local computation (no request is sent), so it is not counted.
    fn presign_put<'a>(
        &'a self,
        key: &'a str,
        content_type: &'a str,
        validity: Validity,
    ) -> BoxFuture<'a, Result<Option<Presigned>, BlobError>> {
        self.0.presign_put(key, content_type, validity)
    }

    fn presign_get<'a>(
        &'a self,
        key: &'a str,
        content_type: &'a str,
        validity: Validity,
    ) -> BoxFuture<'a, Result<Option<Presigned>, BlobError>> {
        self.0.presign_get(key, content_type, validity)
    }
}
