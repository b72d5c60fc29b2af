//! `imgbt gc` and the scheduled `gc` function: direct uploads that expired without being
//! completed, the objects still pending deletion, objects nothing names any more, and the rows of
//! uploads completed long ago.
//!
//! Every batch here is idempotent, as the D1 client may send one twice (its answer lost after the
//! commit): `INSERT OR IGNORE`, `DELETE … WHERE` and reads. Rows are read first and removed by id
//! in a second request, so the report names what was removed even when the removal ran twice
//! (the resend finds nothing left to return).
//!
//! Objects nothing names ("orphans") are what a lost answer leaves: an upload whose record insert
//! committed nowhere after its PUT, a PUT to a direct upload's URL after its asset was deleted.
//! Why removing them cannot remove bytes a record names, given [`ORPHAN_GRACE`]:
//!
//! - a record comes to name an object in two ways only. `upload` PUTs the object, then inserts
//!   its record, within one request (its Lambda timeout is under 30 s). `complete` inserts it
//!   only while the upload's row is open, and that row names the object from before its PUT.
//! - gc removes an object only when it is older than the grace (an hour) and, read after the
//!   listing, no record, no open upload row and no pending deletion names it. An `upload` that
//!   wrote it has ended long before, whether its insert committed or not; an open upload row
//!   would have named it; without one, `complete` can never insert a record for it. So nothing
//!   can come to name the object between gc's read and its delete.
//! - a fresh PUT over an old key (a stale direct-upload URL) dates the object anew, so it waits
//!   another grace: a record it might get is already there or never comes, as above.

use crate::blobs::{Blobs, Listed};
use crate::clock::{self, Clock};
use crate::db::{self, Db, DbError, Stmt};
use crate::ids;
use crate::ingest::forget_pending;
use serde::Serialize;
use std::time::Duration;

/// How old an object that nothing names must be before gc removes it: an upload's PUT comes
/// before its record's insert by up to the request's lifetime (about 30 s), so an hour leaves
/// every write in flight alone.
pub const ORPHAN_GRACE: Duration = Duration::from_secs(60 * 60);
/// How long the row of a completed direct upload stays: a repeated `complete` answers from it
/// (the same record, 200) until then; after it, the upload is unknown (404).
pub const COMPLETED_UPLOAD_RETENTION: Duration = Duration::from_secs(7 * 24 * 60 * 60);
/// Objects per listing page.
const LIST_PAGE: usize = 1000;
/// Upload rows one sweep removes of each kind: their ids (38 bytes each as JSON) stay well under
/// D1's 100 KB per statement.
const UPLOADS_PER_SWEEP: usize = 1000;
/// The JSON array of keys bound to one query stays under this many bytes: D1 takes at most
/// 100 KB per statement, and the SQL text needs room too.
const KEYS_JSON_BYTES: usize = 90_000;

/// What a sweep did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct GcReport {
    /// Direct uploads that expired (over an hour ago) without being completed: their rows are
    /// gone and their objects, if any were PUT, joined the pending deletions below.
    pub expired_uploads: Vec<String>,
    /// Objects removed (or found already gone) whose pending row was cleared.
    pub deleted: Vec<String>,
    /// Objects under asset keys that no record, open upload or pending deletion named, older
    /// than [`ORPHAN_GRACE`]: removed.
    pub orphans: Vec<String>,
    /// Rows of direct uploads completed more than [`COMPLETED_UPLOAD_RETENTION`] ago: removed
    /// (their assets stay).
    pub completed_uploads: Vec<String>,
    /// Objects the store refused to remove; pending ones stay for the next sweep, orphans are
    /// found again by it.
    pub failed: Vec<GcFailure>,
}

impl GcReport {
    /// How many things of each kind the sweep handled, for one log line.
    pub fn counts(&self) -> GcCounts {
        GcCounts {
            expired_uploads: self.expired_uploads.len(),
            deleted: self.deleted.len(),
            orphans: self.orphans.len(),
            completed_uploads: self.completed_uploads.len(),
            failed: self.failed.len(),
        }
    }
}

/// The sizes of a [`GcReport`]'s lists.
#[derive(Debug, Clone, Copy, Default, Serialize, PartialEq, Eq)]
pub struct GcCounts {
    pub expired_uploads: usize,
    pub deleted: usize,
    pub orphans: usize,
    pub completed_uploads: usize,
    pub failed: usize,
}

#[derive(Debug, Clone, Serialize)]
pub struct GcFailure {
    pub r2_key: String,
    pub error: String,
}

/// Removes direct uploads that expired without being completed, then the objects of deleted
/// assets (and of those uploads) that are still pending, then objects older than
/// [`ORPHAN_GRACE`] that nothing names, then the rows of uploads completed more than
/// [`COMPLETED_UPLOAD_RETENTION`] ago. All times are `clock`'s.
pub async fn gc(db: &dyn Db, clock: &Clock, blobs: &dyn Blobs) -> Result<GcReport, GcError> {
    let mut report = GcReport {
        expired_uploads: sweep_expired_uploads(db, clock).await?,
        ..GcReport::default()
    };
    sweep_pending(db, blobs, &mut report).await?;
    sweep_orphans(db, clock, blobs, &mut report).await?;
    report.completed_uploads = sweep_completed_uploads(db, clock).await?;
    Ok(report)
}

#[derive(Debug, thiserror::Error)]
pub enum GcError {
    #[error("records: {0}")]
    Db(#[from] DbError),
    #[error("objects: {0}")]
    Blobs(#[from] crate::blobs::BlobError),
}

async fn sweep_pending(
    db: &dyn Db,
    blobs: &dyn Blobs,
    report: &mut GcReport,
) -> Result<(), DbError> {
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
            .map(|row| row.text("r2_key"))
            .filter(|key| !report.failed.iter().any(|f| f.r2_key == *key))
            .collect();
        let mut done = Vec::new();
        for key in &keys {
            match crate::variants::remove(blobs, key).await {
                Ok(()) => done.push(key.clone()),
                Err(err) => report.failed.push(GcFailure {
                    r2_key: key.clone(),
                    error: err.to_string(),
                }),
            }
        }
        if done.is_empty() {
            return Ok(());
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
    let ids = upload_ids(
        db,
        "SELECT id FROM uploads WHERE completed_at IS NULL AND expires_at < ?1 ORDER BY id",
        &cutoff,
    )
    .await?;
    if ids.is_empty() {
        return Ok(ids);
    }
    let list = ids_json(&ids);
    db::run(
        db,
        vec![
            Stmt::new(
                "INSERT OR IGNORE INTO pending_deletions (r2_key, requested_at) \
                 SELECT r2_key, ?1 FROM uploads \
                 WHERE id IN (SELECT value FROM json_each(?2)) AND completed_at IS NULL",
                vec![now.as_str().into(), list.as_str().into()],
            ),
            Stmt::new(
                "DELETE FROM uploads \
                 WHERE id IN (SELECT value FROM json_each(?1)) AND completed_at IS NULL",
                vec![list.into()],
            ),
        ],
    )
    .await?;
    Ok(ids)
}

/// Removes the rows of uploads completed more than [`COMPLETED_UPLOAD_RETENTION`] ago. Their
/// objects are their assets' now; only the row that answers a repeated `complete` goes.
async fn sweep_completed_uploads(db: &dyn Db, clock: &Clock) -> Result<Vec<String>, DbError> {
    let cutoff = clock
        .now_ms()
        .saturating_sub(COMPLETED_UPLOAD_RETENTION.as_millis() as u64);
    let ids = upload_ids(
        db,
        "SELECT id FROM uploads WHERE completed_at IS NOT NULL AND completed_at < ?1 ORDER BY id",
        &clock::format_ms(cutoff),
    )
    .await?;
    if !ids.is_empty() {
        db::run(
            db,
            vec![Stmt::new(
                "DELETE FROM uploads \
                 WHERE id IN (SELECT value FROM json_each(?1)) AND completed_at IS NOT NULL",
                vec![ids_json(&ids).into()],
            )],
        )
        .await?;
    }
    Ok(ids)
}

/// The ids `select` (one `?1`, the cutoff) reads, at most a batch's worth: a larger backlog is
/// finished by the next sweeps.
async fn upload_ids(
    db: &dyn Db,
    select: &'static str,
    cutoff: &str,
) -> Result<Vec<String>, DbError> {
    let results = db::run(
        db,
        vec![Stmt::new(
            format!("{select} LIMIT {UPLOADS_PER_SWEEP}"),
            vec![cutoff.into()],
        )],
    )
    .await?;
    Ok(results[0].rows.iter().map(|row| row.text("id")).collect())
}

fn ids_json(ids: &[String]) -> String {
    serde_json::to_string(ids).unwrap_or_else(|_| "[]".to_owned())
}

// ?1 a JSON array of keys: those of them a record, an open upload or a pending deletion names.
// Each lookup is by a unique index (r2_key is UNIQUE or the key in all three tables).
const NAMED: &str = "SELECT k.value AS r2_key FROM json_each(?1) AS k \
    WHERE EXISTS (SELECT 1 FROM assets WHERE r2_key = k.value) \
    OR EXISTS (SELECT 1 FROM uploads WHERE r2_key = k.value AND completed_at IS NULL) \
    OR EXISTS (SELECT 1 FROM pending_deletions WHERE r2_key = k.value)";

// ?1 a JSON array of asset ids: those of them that have a record.
const LIVE_ASSETS: &str = "SELECT k.value AS id FROM json_each(?1) AS k \
    WHERE EXISTS (SELECT 1 FROM assets WHERE id = k.value)";

/// Walks the bucket a page at a time and removes each object under an asset key that is older
/// than [`ORPHAN_GRACE`] and that nothing names (see the module comment for why that is safe),
/// and each variant whose asset has no record, whatever its age: a variant is made only for an
/// asset that exists, and an asset id never comes back, so nothing can come to need it (what a
/// transform stores while its asset is being deleted). Younger objects cost no query; older ones
/// and variants one D1 request per page (or per chunk of a page whose keys are long).
async fn sweep_orphans(
    db: &dyn Db,
    clock: &Clock,
    blobs: &dyn Blobs,
    report: &mut GcReport,
) -> Result<(), GcError> {
    let cutoff = clock
        .now_ms()
        .saturating_sub(ORPHAN_GRACE.as_millis() as u64);
    let mut after = String::new();
    loop {
        let page = blobs.list_page("", &after, LIST_PAGE).await?;
        let Some(last) = page.last() else {
            return Ok(());
        };
        after = last.key.clone();
        sweep_variants(db, blobs, &page, report).await?;
        let old: Vec<&Listed> = page
            .iter()
            .filter(|o| o.modified_ms <= cutoff && is_asset_key(&o.key))
            .collect();
        for chunk in chunks(&old) {
            let keys = serde_json::to_string(&chunk).unwrap_or_else(|_| "[]".to_owned());
            let results = db::run(db, vec![Stmt::new(NAMED, vec![keys.into()])]).await?;
            let named: std::collections::HashSet<String> = results[0]
                .rows
                .iter()
                .map(|row| row.text("r2_key"))
                .collect();
            for key in chunk.into_iter().filter(|k| !named.contains(*k)) {
                match blobs.delete(key).await {
                    Ok(()) => report.orphans.push(key.to_owned()),
                    Err(err) => report.failed.push(GcFailure {
                        r2_key: key.to_owned(),
                        error: err.to_string(),
                    }),
                }
            }
        }
    }
}

/// Removes the variants in `page` whose asset has no record.
async fn sweep_variants(
    db: &dyn Db,
    blobs: &dyn Blobs,
    page: &[Listed],
    report: &mut GcReport,
) -> Result<(), GcError> {
    let variants: Vec<(&str, &str)> = page
        .iter()
        .filter_map(|o| crate::variants::owner(&o.key).map(|(_, asset)| (o.key.as_str(), asset)))
        .collect();
    if variants.is_empty() {
        return Ok(());
    }
    let mut ids: Vec<&str> = variants.iter().map(|(_, asset)| *asset).collect();
    ids.dedup();
    let live = live_assets(db, &ids).await?;
    for (key, _) in variants.iter().filter(|(_, asset)| !live.contains(*asset)) {
        match blobs.delete(key).await {
            Ok(()) => report.orphans.push((*key).to_owned()),
            Err(err) => report.failed.push(GcFailure {
                r2_key: (*key).to_owned(),
                error: err.to_string(),
            }),
        }
    }
    Ok(())
}

/// Which of `ids` (asset ids, at most a listing page's worth: 33 bytes each stays well under
/// D1's statement limit) have a record.
pub(crate) async fn live_assets(
    db: &dyn Db,
    ids: &[&str],
) -> Result<std::collections::HashSet<String>, DbError> {
    let list = serde_json::to_string(ids).unwrap_or_else(|_| "[]".to_owned());
    let results = db::run(db, vec![Stmt::new(LIVE_ASSETS, vec![list.into()])]).await?;
    Ok(results[0].rows.iter().map(|row| row.text("id")).collect())
}

/// `objects`' keys in chunks whose JSON array stays under [`KEYS_JSON_BYTES`].
fn chunks<'a>(objects: &[&'a Listed]) -> Vec<Vec<&'a str>> {
    let mut out: Vec<Vec<&str>> = Vec::new();
    let mut bytes = 0;
    for object in objects {
        // A key's share of the array: its quotes, a comma, and escapes at worst doubling it.
        let cost = object.key.len() * 2 + 3;
        match out.last_mut() {
            Some(chunk) if bytes + cost <= KEYS_JSON_BYTES => {
                chunk.push(&object.key);
                bytes += cost;
            }
            _ => {
                out.push(vec![&object.key]);
                bytes = cost + 2;
            }
        }
    }
    out
}

/// True when `key` has the shape of an asset's key ([`crate::asset::r2_key`]):
/// `{vault_id}/{partition}/{collection}/{channel}/{asset_id}_{filename}`. gc removes orphans
/// under such keys only: anything else in the bucket is not imgbt's to remove.
pub fn is_asset_key(key: &str) -> bool {
    let parts: Vec<&str> = key.splitn(5, '/').collect();
    let [vault, partition, collection, channel, name] = parts[..] else {
        return false;
    };
    // An asset id is `asset_` and 26 ULID characters.
    let id_len = "asset_".len() + 26;
    ids::is_id("vault_", vault)
        && ![partition, collection, channel]
            .iter()
            .any(|p| p.is_empty())
        && name.len() > id_len + 1
        && name.is_char_boundary(id_len)
        && ids::is_id("asset_", &name[..id_len])
        && name[id_len..].starts_with('_')
        && !name.contains('/')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn asset_keys_are_recognised_by_their_shape() {
        let key = crate::asset::r2_key(
            "vault_01JD0000000000000000000000",
            "p",
            "c",
            "ch",
            "asset_01JD0000000000000000000000",
            "photo 1.jpg",
        );
        assert!(is_asset_key(&key), "{key}");
        for other in [
            "vault_01JD0000000000000000000000/p/c/ch/.tmp-123",
            "vault_01JD0000000000000000000000/p/c/asset_01JD0000000000000000000000_x",
            "vault_01JD0000000000000000000000/p//ch/asset_01JD0000000000000000000000_x",
            "vault_01JD0000000000000000000000/p/c/ch/asset_01JD0000000000000000000000_",
            "vault_01JD0000000000000000000000/p/c/ch/asset_01JD0000000000000000000000_a/b",
            "backups/p/c/ch/asset_01JD0000000000000000000000_x",
            "vault_01JD0000000000000000000000/p/c/ch/asset_not-an-id-at-all-000000000_x",
        ] {
            assert!(!is_asset_key(other), "{other}");
        }
    }

    #[test]
    fn chunks_keep_each_query_under_the_statement_limit() {
        let objects: Vec<Listed> = (0..600)
            .map(|i| Listed {
                key: format!("{i:0>300}"),
                size: 0,
                modified_ms: 0,
            })
            .collect();
        let refs: Vec<&Listed> = objects.iter().collect();
        let chunks = chunks(&refs);
        assert!(chunks.len() > 1);
        assert_eq!(chunks.iter().map(Vec::len).sum::<usize>(), 600);
        for chunk in &chunks {
            assert!(serde_json::to_string(chunk).unwrap().len() <= KEYS_JSON_BYTES);
        }
        assert!(super::chunks(&[]).is_empty());
    }
}
