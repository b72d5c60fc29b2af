//! [`OnBatch`]: a database in front of a [`TestApp`]'s own that acts on one batch of a call, so
//! a test can fail exactly the D1 request it means (an upload's insert is its second batch,
//! after the key lookup).

use crate::TestApp;
use imgbt_test_servers::d1::Fault;
use shared::db::{Db, DbError, Stmt, StmtResult};
use shared::{BoxFuture, Deps};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

/// What [`OnBatch`] does to the batch it targets.
pub enum BatchAction {
    /// Runs just before the batch is sent: arms a fault on the app's D1 for exactly that batch.
    Before(Box<dyn Fn() + Send + Sync>),
    /// Sends the batch, then reports its answer lost: it ran, and the caller cannot know. (The
    /// D1 servers' `Fault::RunThen…` do the same over HTTP; this also works on the embedded
    /// default, which has no HTTP to fail.)
    LoseAnswer,
}

/// Which batch an [`OnBatch`] acts on.
pub enum Target {
    /// The `n`-th batch (1-based) it is handed.
    Nth(usize),
    /// The first batch whose first statement's SQL starts with this text: for a call whose
    /// number of batches depends on the data (gc's sweeps).
    Sql(&'static str),
}

/// A Db in front of the app's own that acts on one batch it is handed.
pub struct OnBatch {
    inner: Arc<dyn Db>,
    target: Target,
    seen: AtomicUsize,
    action: BatchAction,
}

impl OnBatch {
    pub fn deps(app: &TestApp, target: Target, action: BatchAction) -> Deps {
        let db = OnBatch {
            inner: app.deps.db.clone(),
            target,
            seen: AtomicUsize::new(0),
            action,
        };
        Deps::new(Arc::new(db), app.blobs())
    }

    /// Deps whose `at`-th batch meets `n` × `fault` on the app's D1 (the D1 test server, or the
    /// gateway's fault proxy). Panics on the embedded backend, which has no D1 to fail.
    pub fn arming(app: &Arc<TestApp>, at: usize, fault: Fault, n: usize) -> Deps {
        Self::arming_target(app, Target::Nth(at), fault, n)
    }

    /// As [`arming`](Self::arming), for the batch `target` names.
    pub fn arming_target(app: &Arc<TestApp>, target: Target, fault: Fault, n: usize) -> Deps {
        let server = app.clone();
        let arm = move || {
            server
                .d1_faults()
                .expect("a backend with a D1 over HTTP")
                .fail_next(n, fault.clone())
        };
        Self::deps(app, target, BatchAction::Before(Box::new(arm)))
    }

    /// Deps whose `at`-th batch runs and then loses its answer.
    pub fn losing(app: &TestApp, at: usize) -> Deps {
        Self::deps(app, Target::Nth(at), BatchAction::LoseAnswer)
    }

    /// True when `stmts` is the batch to act on (counting it, when the target is by position).
    fn is_target(&self, stmts: &[Stmt]) -> bool {
        match self.target {
            Target::Nth(at) => self.seen.fetch_add(1, Ordering::SeqCst) + 1 == at,
            Target::Sql(prefix) => {
                stmts.first().is_some_and(|s| s.sql.starts_with(prefix))
                    && self.seen.fetch_add(1, Ordering::SeqCst) == 0
            }
        }
    }
}

impl Db for OnBatch {
    fn batch(&self, stmts: Vec<Stmt>) -> BoxFuture<'_, Result<Vec<StmtResult>, DbError>> {
        let target = self.is_target(&stmts);
        Box::pin(async move {
            if !target {
                return self.inner.batch(stmts).await;
            }
            match &self.action {
                BatchAction::Before(arm) => {
                    arm();
                    self.inner.batch(stmts).await
                }
                BatchAction::LoseAnswer => {
                    self.inner.batch(stmts).await?;
                    Err(DbError::Uncertain(
                        "injected: the batch ran, its answer was lost".into(),
                    ))
                }
            }
        })
    }
}
