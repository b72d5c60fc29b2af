//! `imgbt fsck`: the store's records and objects, compared.

use super::gc::ORPHAN_GRACE;
use crate::blobs::Blobs;
use crate::clock::Clock;
use crate::db::{self, Db, DbError, Stmt};
use crate::variants;
use serde::Serialize;

/// What `imgbt fsck` found: the store's records and objects, compared.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct FsckReport {
    pub records: usize,
    pub objects: usize,
    /// Assets whose object is missing: a client would get a record whose bytes are gone.
    pub records_without_objects: Vec<MissingObject>,
    /// Objects no record names and no pending deletion or open upload covers, older than
    /// [`ORPHAN_GRACE`]: leftovers that the next `imgbt gc` (or the scheduled gc) removes when
    /// they are under asset keys, and that nothing removes otherwise.
    pub objects_without_records: Vec<String>,
    /// The same, younger than [`ORPHAN_GRACE`] (not a fault: the write of their record may
    /// still be on the way).
    pub recent_objects_without_records: Vec<String>,
    /// Assets whose object's size differs from the record's.
    pub size_mismatches: Vec<SizeMismatch>,
    /// Objects of deleted assets waiting for `imgbt gc` (not a fault: gc finishes them); a
    /// variant prefix (ending in `/`) stands for the variants under it.
    pub pending_deletions: Vec<String>,
    /// Stored variants of assets that exist (docs/API.md#variants).
    pub variants: usize,
    /// Variants whose asset has no record and no pending deletion: what a transform stored while
    /// its asset was being deleted. `imgbt gc` removes them.
    pub variants_without_assets: Vec<String>,
    /// Objects of direct uploads not completed yet (not a fault: `complete` records them, or gc
    /// removes them once the upload expired).
    pub pending_uploads: Vec<String>,
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct MissingObject {
    pub asset_id: String,
    pub r2_key: String,
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct SizeMismatch {
    pub asset_id: String,
    pub r2_key: String,
    pub record_size: u64,
    pub object_size: u64,
}

impl FsckReport {
    /// True when every record has its object and every object older than [`ORPHAN_GRACE`] its
    /// record (or a pending deletion, or an open upload).
    pub fn is_clean(&self) -> bool {
        self.records_without_objects.is_empty()
            && self.objects_without_records.is_empty()
            && self.variants_without_assets.is_empty()
            && self.size_mismatches.is_empty()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum FsckError {
    #[error("records: {0}")]
    Db(#[from] DbError),
    #[error("objects: {0}")]
    Blobs(#[from] crate::blobs::BlobError),
}

/// Compares every record with every object. Reads records in pages of 1,000 (one D1 request
/// each) and lists the whole bucket: an administrative check, not something a request does.
/// `clock` dates the objects: one without a record is a fault only once older than
/// [`ORPHAN_GRACE`].
pub async fn fsck(db: &dyn Db, clock: &Clock, blobs: &dyn Blobs) -> Result<FsckReport, FsckError> {
    let mut records: std::collections::BTreeMap<String, (String, u64)> = Default::default();
    let mut after = String::new();
    loop {
        let results = db::run(
            db,
            vec![Stmt::new(
                "SELECT id, r2_key, size FROM assets WHERE r2_key > ?1 ORDER BY r2_key LIMIT 1000",
                vec![after.as_str().into()],
            )],
        )
        .await?;
        let rows = &results[0].rows;
        for row in rows {
            let size = row.get("size").and_then(|v| v.as_u64()).unwrap_or_default();
            records.insert(row.text("r2_key"), (row.text("id"), size));
        }
        match rows.last() {
            Some(last) if rows.len() == 1000 => after = last.text("r2_key"),
            _ => break,
        }
    }
    let pending_rows = db::run(
        db,
        vec![Stmt::new(
            "SELECT r2_key FROM pending_deletions ORDER BY r2_key",
            vec![],
        )],
    )
    .await?;
    let pending: std::collections::BTreeSet<String> = pending_rows[0]
        .rows
        .iter()
        .map(|row| row.text("r2_key"))
        .collect();
    let upload_rows = db::run(
        db,
        vec![Stmt::new(
            "SELECT r2_key FROM uploads WHERE completed_at IS NULL ORDER BY r2_key",
            vec![],
        )],
    )
    .await?;
    let uploading: std::collections::BTreeSet<String> = upload_rows[0]
        .rows
        .iter()
        .map(|row| row.text("r2_key"))
        .collect();
    let objects = blobs.list("").await?;

    let mut report = FsckReport {
        records: records.len(),
        objects: objects.len(),
        ..Default::default()
    };
    let stored: std::collections::BTreeMap<&str, u64> =
        objects.iter().map(|o| (o.key.as_str(), o.size)).collect();
    let cutoff = clock
        .now_ms()
        .saturating_sub(ORPHAN_GRACE.as_millis() as u64);
    for (key, (asset_id, size)) in &records {
        match stored.get(key.as_str()) {
            None => report.records_without_objects.push(MissingObject {
                asset_id: asset_id.clone(),
                r2_key: key.clone(),
            }),
            Some(&object_size) if object_size != *size => {
                report.size_mismatches.push(SizeMismatch {
                    asset_id: asset_id.clone(),
                    r2_key: key.clone(),
                    record_size: *size,
                    object_size,
                })
            }
            Some(_) => {}
        }
    }
    let live: std::collections::BTreeSet<&str> =
        records.values().map(|(id, _)| id.as_str()).collect();
    for object in &objects {
        let key = &object.key;
        if records.contains_key(key) || pending.contains(key) {
            continue;
        }
        if let Some((vault_id, asset_id)) = variants::owner(key) {
            if live.contains(asset_id) {
                report.variants += 1;
            } else if !pending.contains(&variants::prefix(vault_id, asset_id)) {
                report.variants_without_assets.push(key.clone());
            }
            continue;
        }
        if uploading.contains(key) {
            report.pending_uploads.push(key.clone());
        } else if object.modified_ms <= cutoff {
            report.objects_without_records.push(key.clone());
        } else {
            report.recent_objects_without_records.push(key.clone());
        }
    }
    report.pending_deletions = pending
        .into_iter()
        .filter(|key| {
            stored.contains_key(key.as_str())
                || (variants::is_prefix(key)
                    && stored
                        .range(key.as_str()..)
                        .next()
                        .is_some_and(|(k, _)| k.starts_with(key.as_str())))
        })
        .collect();
    Ok(report)
}
