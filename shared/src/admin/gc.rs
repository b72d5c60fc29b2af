//! `imgbt gc`: direct uploads that expired without being completed, and the objects still
//! pending deletion.

use crate::blobs::Blobs;
use crate::clock::{self, Clock};
use crate::db::{self, Db, DbError, Row, Stmt};
use crate::ingest::forget_pending;
use serde::Serialize;

/// What a sweep of pending deletions did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct GcReport {
    /// Direct uploads that expired (over an hour ago) without being completed: their rows are
    /// gone and their objects, if any were PUT, joined the pending deletions below.
    pub expired_uploads: Vec<String>,
    /// Objects removed (or found already gone) whose pending row was cleared.
    pub deleted: Vec<String>,
    /// Objects the store still refused to remove; their rows stay for the next sweep.
    pub failed: Vec<GcFailure>,
}

#[derive(Debug, Clone, Serialize)]
pub struct GcFailure {
    pub r2_key: String,
    pub error: String,
}

/// Removes direct uploads that expired without being completed, then the objects of deleted
/// assets (and of those uploads) that are still pending, and clears their rows.
pub async fn gc(db: &dyn Db, clock: &Clock, blobs: &dyn Blobs) -> Result<GcReport, DbError> {
    let mut report = GcReport {
        expired_uploads: sweep_expired_uploads(db, clock).await?,
        ..GcReport::default()
    };
    loop {
        let results = db::run(
            db,
            vec![Stmt::new(
                "SELECT r2_key FROM pending_deletions ORDER BY requested_at LIMIT 100",
                vec![],
            )],
        )
        .await?;
        let keys: Vec<String> = results[0]
            .rows
            .iter()
            .map(|row| text(row, "r2_key"))
            .filter(|key| !report.failed.iter().any(|f| f.r2_key == *key))
            .collect();
        let mut done = Vec::new();
        for key in &keys {
            match blobs.delete(key).await {
                Ok(()) => done.push(key.clone()),
                Err(err) => report.failed.push(GcFailure {
                    r2_key: key.clone(),
                    error: err.to_string(),
                }),
            }
        }
        if done.is_empty() {
            return Ok(report);
        }
        db::run(db, vec![forget_pending(&done)]).await?;
        report.deleted.extend(done);
    }
}

/// Moves the objects of uploads that expired more than [`GC_GRACE`](crate::uploads::GC_GRACE)
/// ago without being completed to `pending_deletions`, and removes their rows, in one batch. The
/// row goes first: `complete` inserts a record only while its upload's row is there and open, so a
/// record can never come to name an object this removes.
async fn sweep_expired_uploads(db: &dyn Db, clock: &Clock) -> Result<Vec<String>, DbError> {
    let now_ms = clock.now_ms();
    let cutoff = now_ms.saturating_sub(crate::uploads::GC_GRACE.as_millis() as u64);
    let (now, cutoff) = (clock::format_ms(now_ms), clock::format_ms(cutoff));
    let results = db::run(
        db,
        vec![
            Stmt::new(
                "INSERT OR IGNORE INTO pending_deletions (r2_key, requested_at) \
                 SELECT r2_key, ?1 FROM uploads WHERE completed_at IS NULL AND expires_at < ?2",
                vec![now.as_str().into(), cutoff.as_str().into()],
            ),
            Stmt::new(
                "DELETE FROM uploads WHERE completed_at IS NULL AND expires_at < ?1 RETURNING id",
                vec![cutoff.as_str().into()],
            ),
        ],
    )
    .await?;
    Ok(results[1].rows.iter().map(|row| text(row, "id")).collect())
}

fn text(row: &Row, column: &str) -> String {
    row.get(column)
        .and_then(|v| v.as_str())
        .unwrap_or_default()
        .to_owned()
}
