//! Vaults, keys and the pending-deletion sweep: what the `imgbt` CLI does, kept here so that the
//! test kit sets up vaults through exactly the same code.

use crate::auth::{self, KeyKind};
use crate::blobs::Blobs;
use crate::db::{self, Db, DbError, Row, Stmt, Value};
use crate::{clock, ids};
use serde::Serialize;

/// A new vault with one key of each kind. The keys are shown here once and stored only hashed.
#[derive(Debug, Clone, Serialize)]
pub struct NewVault {
    pub vault_id: String,
    pub public_key: String,
    pub secret_key: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct NewKey {
    pub key_id: String,
    pub vault_id: String,
    pub kind: &'static str,
    pub label: String,
    pub key: String,
}

/// A key as `imgbt key list` shows it: never the key itself.
#[derive(Debug, Clone, Serialize)]
pub struct KeyInfo {
    pub id: String,
    pub kind: String,
    pub hint: String,
    pub label: String,
    pub created_at: String,
    pub revoked_at: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct VaultInfo {
    pub id: String,
    pub name: String,
    pub created_at: String,
}

fn insert_key(
    key_id: &str,
    vault_id: &str,
    kind: KeyKind,
    key: &str,
    label: &str,
    now: &str,
) -> Stmt {
    Stmt::new(
        "INSERT INTO api_keys (id, vault_id, kind, key_hash, hint, label, created_at) \
         SELECT ?1, ?2, ?3, ?4, ?5, ?6, ?7 WHERE EXISTS (SELECT 1 FROM vaults WHERE id = ?2)",
        vec![
            key_id.into(),
            vault_id.into(),
            kind.as_str().into(),
            auth::hash_key(key).into(),
            auth::key_hint(key).into(),
            label.into(),
            now.into(),
        ],
    )
}

/// Creates a vault and a public and a secret key for it, in one batch.
pub async fn create_vault(db: &dyn Db, name: &str) -> Result<NewVault, DbError> {
    let ms = clock::now_ms();
    let now = clock::format_ms(ms);
    let vault_id = ids::new_vault_id(ms);
    let public_key = auth::generate_key(KeyKind::Public);
    let secret_key = auth::generate_key(KeyKind::Secret);
    db::run(
        db,
        vec![
            Stmt::new(
                "INSERT INTO vaults (id, name, created_at) VALUES (?1, ?2, ?3)",
                vec![vault_id.as_str().into(), name.into(), now.as_str().into()],
            ),
            insert_key(
                &ids::new_key_id(ms),
                &vault_id,
                KeyKind::Public,
                &public_key,
                "default public key",
                &now,
            ),
            insert_key(
                &ids::new_key_id(ms),
                &vault_id,
                KeyKind::Secret,
                &secret_key,
                "default secret key",
                &now,
            ),
        ],
    )
    .await?;
    Ok(NewVault {
        vault_id,
        public_key,
        secret_key,
    })
}

pub async fn list_vaults(db: &dyn Db) -> Result<Vec<VaultInfo>, DbError> {
    let results = db::run(
        db,
        vec![Stmt::new(
            "SELECT id, name, created_at FROM vaults ORDER BY id",
            vec![],
        )],
    )
    .await?;
    Ok(results[0]
        .rows
        .iter()
        .map(|row| VaultInfo {
            id: text(row, "id"),
            name: text(row, "name"),
            created_at: text(row, "created_at"),
        })
        .collect())
}

/// Creates a key for an existing vault; `None` when there is no such vault.
pub async fn create_key(
    db: &dyn Db,
    vault_id: &str,
    kind: KeyKind,
    label: &str,
) -> Result<Option<NewKey>, DbError> {
    let ms = clock::now_ms();
    let key_id = ids::new_key_id(ms);
    let key = auth::generate_key(kind);
    let results = db::run(
        db,
        vec![insert_key(
            &key_id,
            vault_id,
            kind,
            &key,
            label,
            &clock::format_ms(ms),
        )],
    )
    .await?;
    Ok((results[0].changes == 1).then(|| NewKey {
        key_id,
        vault_id: vault_id.to_owned(),
        kind: kind.as_str(),
        label: label.to_owned(),
        key,
    }))
}

pub async fn list_keys(db: &dyn Db, vault_id: &str) -> Result<Vec<KeyInfo>, DbError> {
    let results = db::run(
        db,
        vec![Stmt::new(
            "SELECT id, kind, hint, label, created_at, revoked_at FROM api_keys WHERE vault_id = ?1 ORDER BY id",
            vec![vault_id.into()],
        )],
    )
    .await?;
    Ok(results[0]
        .rows
        .iter()
        .map(|row| KeyInfo {
            id: text(row, "id"),
            kind: text(row, "kind"),
            hint: text(row, "hint"),
            label: text(row, "label"),
            created_at: text(row, "created_at"),
            revoked_at: row
                .get("revoked_at")
                .and_then(|v| v.as_str())
                .map(str::to_owned),
        })
        .collect())
}

/// Revokes a key of a vault. `false` when the vault has no such live key.
pub async fn revoke_key(db: &dyn Db, vault_id: &str, key_id: &str) -> Result<bool, DbError> {
    let results = db::run(
        db,
        vec![Stmt::new(
            "UPDATE api_keys SET revoked_at = ?1 WHERE id = ?2 AND vault_id = ?3 AND revoked_at IS NULL",
            vec![clock::format_ms(clock::now_ms()).into(), key_id.into(), vault_id.into()],
        )],
    )
    .await?;
    Ok(results[0].changes == 1)
}

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
pub async fn gc(db: &dyn Db, blobs: &dyn Blobs) -> Result<GcReport, DbError> {
    let mut report = GcReport {
        expired_uploads: sweep_expired_uploads(db).await?,
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
async fn sweep_expired_uploads(db: &dyn Db) -> Result<Vec<String>, DbError> {
    let now_ms = clock::now_ms();
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

/// What `imgbt fsck` found: the store's records and objects, compared.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct FsckReport {
    pub records: usize,
    pub objects: usize,
    /// Assets whose object is missing: a client would get a record whose bytes are gone.
    pub records_without_objects: Vec<MissingObject>,
    /// Objects no record names and no pending deletion covers: bytes nothing will ever remove.
    pub objects_without_records: Vec<String>,
    /// Assets whose object's size differs from the record's.
    pub size_mismatches: Vec<SizeMismatch>,
    /// Objects of deleted assets waiting for `imgbt gc` (not a fault: gc finishes them).
    pub pending_deletions: Vec<String>,
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
    /// True when every record has its object and every object its record (or a pending deletion).
    pub fn is_clean(&self) -> bool {
        self.records_without_objects.is_empty()
            && self.objects_without_records.is_empty()
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
pub async fn fsck(db: &dyn Db, blobs: &dyn Blobs) -> Result<FsckReport, FsckError> {
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
            records.insert(text(row, "r2_key"), (text(row, "id"), size));
        }
        match rows.last() {
            Some(last) if rows.len() == 1000 => after = text(last, "r2_key"),
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
        .map(|row| text(row, "r2_key"))
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
        .map(|row| text(row, "r2_key"))
        .collect();
    let objects = blobs.list("").await?;

    let mut report = FsckReport {
        records: records.len(),
        objects: objects.len(),
        ..Default::default()
    };
    let stored: std::collections::BTreeMap<&str, u64> =
        objects.iter().map(|(k, n)| (k.as_str(), *n)).collect();
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
    for (key, _) in &objects {
        if records.contains_key(key) || pending.contains(key) {
            continue;
        }
        if uploading.contains(key) {
            report.pending_uploads.push(key.clone());
        } else {
            report.objects_without_records.push(key.clone());
        }
    }
    report.pending_deletions = pending
        .into_iter()
        .filter(|key| stored.contains_key(key.as_str()))
        .collect();
    Ok(report)
}

/// The statement that clears pending-deletion rows whose objects are known to be gone.
pub fn forget_pending(keys: &[String]) -> Stmt {
    let placeholders: Vec<String> = (1..=keys.len()).map(|i| format!("?{i}")).collect();
    Stmt::new(
        format!(
            "DELETE FROM pending_deletions WHERE r2_key IN ({})",
            placeholders.join(", ")
        ),
        keys.iter().map(|k| Value::from(k.as_str())).collect(),
    )
}

fn text(row: &Row, column: &str) -> String {
    row.get(column)
        .and_then(|v| v.as_str())
        .unwrap_or_default()
        .to_owned()
}

/// The dev vault's id. Fixed, so that the sample events in `events/` can name it.
pub const DEV_VAULT_ID: &str = "vault_01DEVDEVDEVDEVDEVDEVDEVDEV";
/// The dev vault's public (read-only) key. Public knowledge: see [`seed_dev`].
pub const DEV_PUBLIC_KEY: &str = "pk_facadefacadefacadefacadefacadefacadefacadefacade";
/// The dev vault's secret (read and write) key. Public knowledge: see [`seed_dev`].
pub const DEV_SECRET_KEY: &str = "sk_decadedecadedecadedecadedecadedecadedecadedecade";
/// The id of the dev vault's one sample asset, `docs/readme/main/hello.txt`.
pub const DEV_ASSET_ID: &str = "asset_01DEVDEVDEVDEVDEVDEV0ASSET";
/// The key ids of [`DEV_PUBLIC_KEY`] and [`DEV_SECRET_KEY`].
pub const DEV_PUBLIC_KEY_ID: &str = "key_01DEVDEVDEVDEVDEVDEVDEV0PK";
pub const DEV_SECRET_KEY_ID: &str = "key_01DEVDEVDEVDEVDEVDEVDEV0SK";
/// The dev vault's name, as `imgbt vault list` shows it.
pub const DEV_VAULT_NAME: &str = "dev (well-known keys, local only)";

/// The sample asset [`seed_dev`] puts in the dev vault.
pub const DEV_ASSET_PARTITION: &str = "docs";
pub const DEV_ASSET_COLLECTION: &str = "readme";
pub const DEV_ASSET_CHANNEL: &str = "main";
pub const DEV_ASSET_FILENAME: &str = "hello.txt";
pub const DEV_ASSET_MIME_TYPE: &str = "text/plain";
pub const DEV_ASSET_BYTES: &[u8] = b"Hello from imgbt!\n";
pub const DEV_ASSET_METADATA: &str = r#"{"alt":"sample"}"#;
pub const DEV_ASSET_TAGS: &str = r#"["sample"]"#;

/// The dev vault's one open direct upload (`docs/readme/main/direct.txt`), whose bytes are already
/// in place, as if its URL had been PUT: `complete` records it. Its receive URL's token is
/// [`DEV_UPLOAD_TOKEN`], public knowledge like the dev keys.
pub const DEV_UPLOAD_ID: &str = "upload_01DEVDEVDEVDEVDEVDEV0XFER0";
pub const DEV_UPLOAD_ASSET_ID: &str = "asset_01DEVDEVDEVDEVDEVDEV0DRECT";
pub const DEV_UPLOAD_TOKEN: &str = "feedfacefeedfacefeedfacefeedfacefeedfacefeedface";
pub const DEV_UPLOAD_FILENAME: &str = "direct.txt";
pub const DEV_UPLOAD_BYTES: &[u8] = b"Hello from a direct upload!\n";

/// The object key of the dev vault's open upload.
pub fn dev_upload_r2_key() -> String {
    crate::asset::r2_key(
        DEV_VAULT_ID,
        DEV_ASSET_PARTITION,
        DEV_ASSET_COLLECTION,
        DEV_ASSET_CHANNEL,
        DEV_UPLOAD_ASSET_ID,
        DEV_UPLOAD_FILENAME,
    )
}

/// What [`seed_dev`] set up.
#[derive(Debug, Clone, Serialize)]
pub struct DevSeed {
    pub vault_id: String,
    pub public_key: String,
    pub secret_key: String,
    pub asset_id: String,
    pub r2_key: String,
    /// Assets of the dev vault that were removed to get back to the seed state (the previous sample
    /// included).
    pub removed_assets: usize,
    /// Objects of removed assets that the object store refused to remove; they stay in
    /// `pending_deletions` for `imgbt gc`.
    pub pending_objects: usize,
}

/// The object key of the dev vault's sample asset.
pub fn dev_asset_r2_key() -> String {
    crate::asset::r2_key(
        DEV_VAULT_ID,
        DEV_ASSET_PARTITION,
        DEV_ASSET_COLLECTION,
        DEV_ASSET_CHANNEL,
        DEV_ASSET_ID,
        DEV_ASSET_FILENAME,
    )
}

/// Resets the dev vault to its seed state, whatever state it was in: the vault [`DEV_VAULT_ID`]
/// with the live keys [`DEV_PUBLIC_KEY`] and [`DEV_SECRET_KEY`], and exactly one asset,
/// [`DEV_ASSET_ID`] (`docs/readme/main/hello.txt`, text/plain, metadata `{"alt":"sample"}`, tags
/// `["sample"]`), with its object, and exactly one open direct upload, [`DEV_UPLOAD_ID`], with its
/// bytes in place. Running it again gives the same state (only the times move).
///
/// **These keys are public knowledge**: they are in the source, in `events/` and in this
/// comment. Seed local stores only (the embedded default, the test kit); `imgbt dev seed` refuses
/// a Cloudflare configuration, so that well-known keys never reach D1.
///
/// Work, in this order:
/// 1. the sample object is written (the same bytes under the same key every time, so an earlier
///    sample's object is simply replaced);
/// 2. one batch (D1-compatible: no BEGIN/COMMIT, the batch is the transaction) upserts the vault and
///    both keys (a revoked dev key is made live again), journals the objects of every other asset
///    of the vault in `pending_deletions`, removes all of the vault's assets, drops any pending
///    deletion of the sample's key (left by a delete of the sample, which `imgbt gc` would otherwise
///    carry out under the new record), and inserts the sample record;
/// 3. the journalled objects are removed and their rows cleared; an object the store refuses to
///    remove stays pending for `imgbt gc`, as after a delete.
///
/// Other keys someone created for the dev vault are left as they are.
pub async fn seed_dev(db: &dyn Db, blobs: &dyn Blobs) -> Result<DevSeed, DbError> {
    let ms = clock::now_ms();
    let now = clock::format_ms(ms);
    let sample_key = dev_asset_r2_key();
    let upload_key = dev_upload_r2_key();
    for (key, bytes) in [
        (&sample_key, DEV_ASSET_BYTES),
        (&upload_key, DEV_UPLOAD_BYTES),
    ] {
        blobs
            .put(key, bytes::Bytes::from_static(bytes), DEV_ASSET_MIME_TYPE)
            .await
            .map_err(|e| DbError::Other(format!("writing the sample object: {e}")))?;
    }

    let upsert_key = |key_id: &str, kind: KeyKind, key: &str, label: &str| {
        Stmt::new(
            "INSERT INTO api_keys (id, vault_id, kind, key_hash, hint, label, created_at) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) \
             ON CONFLICT (id) DO UPDATE SET vault_id = excluded.vault_id, kind = excluded.kind, \
             key_hash = excluded.key_hash, hint = excluded.hint, revoked_at = NULL",
            vec![
                key_id.into(),
                DEV_VAULT_ID.into(),
                kind.as_str().into(),
                auth::hash_key(key).into(),
                auth::key_hint(key).into(),
                label.into(),
                now.as_str().into(),
            ],
        )
    };
    let results = db::run(
        db,
        vec![
            Stmt::new(
                "INSERT INTO vaults (id, name, created_at) VALUES (?1, ?2, ?3) \
                 ON CONFLICT (id) DO UPDATE SET name = excluded.name",
                vec![
                    DEV_VAULT_ID.into(),
                    DEV_VAULT_NAME.into(),
                    now.as_str().into(),
                ],
            ),
            upsert_key(
                DEV_PUBLIC_KEY_ID,
                KeyKind::Public,
                DEV_PUBLIC_KEY,
                "dev public key (well-known, local only)",
            ),
            upsert_key(
                DEV_SECRET_KEY_ID,
                KeyKind::Secret,
                DEV_SECRET_KEY,
                "dev secret key (well-known, local only)",
            ),
            Stmt::new(
                "INSERT OR IGNORE INTO pending_deletions (r2_key, requested_at) \
                 SELECT r2_key, ?3 FROM assets WHERE vault_id = ?1 AND r2_key <> ?2 \
                 AND r2_key <> ?4",
                vec![
                    DEV_VAULT_ID.into(),
                    sample_key.as_str().into(),
                    now.as_str().into(),
                    upload_key.as_str().into(),
                ],
            ),
            Stmt::new(
                "DELETE FROM assets WHERE vault_id = ?1 RETURNING r2_key",
                vec![DEV_VAULT_ID.into()],
            ),
            Stmt::new(
                "DELETE FROM pending_deletions WHERE r2_key = ?1",
                vec![sample_key.as_str().into()],
            ),
            Stmt::new(
                concat!(
                    "INSERT INTO assets (",
                    crate::asset_columns!(),
                    ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, NULL, NULL, ?10, ?11, ?12, ?12)"
                ),
                vec![
                    DEV_ASSET_ID.into(),
                    DEV_VAULT_ID.into(),
                    DEV_ASSET_PARTITION.into(),
                    DEV_ASSET_COLLECTION.into(),
                    DEV_ASSET_CHANNEL.into(),
                    DEV_ASSET_FILENAME.into(),
                    sample_key.as_str().into(),
                    Value::Integer(DEV_ASSET_BYTES.len() as i64),
                    DEV_ASSET_MIME_TYPE.into(),
                    DEV_ASSET_METADATA.into(),
                    DEV_ASSET_TAGS.into(),
                    now.as_str().into(),
                ],
            ),
            // Other uploads of the vault: the objects of open ones are journalled, then every
            // row goes (the objects of completed ones were their assets', journalled above).
            Stmt::new(
                "INSERT OR IGNORE INTO pending_deletions (r2_key, requested_at) \
                 SELECT r2_key, ?3 FROM uploads WHERE vault_id = ?1 AND id <> ?2 \
                 AND completed_at IS NULL",
                vec![
                    DEV_VAULT_ID.into(),
                    DEV_UPLOAD_ID.into(),
                    now.as_str().into(),
                ],
            ),
            Stmt::new(
                "DELETE FROM uploads WHERE vault_id = ?1 AND id <> ?2 \
                 RETURNING r2_key, completed_at",
                vec![DEV_VAULT_ID.into(), DEV_UPLOAD_ID.into()],
            ),
            Stmt::new(
                "DELETE FROM pending_deletions WHERE r2_key = ?1",
                vec![upload_key.as_str().into()],
            ),
            Stmt::new(
                "INSERT INTO uploads (id, vault_id, asset_id, partition, collection, channel, \
                 filename, r2_key, size, mime_type, metadata, tags, token_hash, created_at, \
                 expires_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, '{}', '[]', ?11, \
                 ?12, ?13) ON CONFLICT (id) DO UPDATE SET token_hash = excluded.token_hash, \
                 size = excluded.size, created_at = excluded.created_at, \
                 expires_at = excluded.expires_at, completed_at = NULL",
                vec![
                    DEV_UPLOAD_ID.into(),
                    DEV_VAULT_ID.into(),
                    DEV_UPLOAD_ASSET_ID.into(),
                    DEV_ASSET_PARTITION.into(),
                    DEV_ASSET_COLLECTION.into(),
                    DEV_ASSET_CHANNEL.into(),
                    DEV_UPLOAD_FILENAME.into(),
                    upload_key.as_str().into(),
                    Value::Integer(DEV_UPLOAD_BYTES.len() as i64),
                    DEV_ASSET_MIME_TYPE.into(),
                    auth::hash_key(DEV_UPLOAD_TOKEN).into(),
                    now.as_str().into(),
                    clock::format_ms(ms + crate::uploads::UPLOAD_TTL.as_millis() as u64).into(),
                ],
            ),
        ],
    )
    .await?;
    let removed: Vec<String> = results[4]
        .rows
        .iter()
        .map(|row| text(row, "r2_key"))
        .collect();
    let open_uploads = results[8]
        .rows
        .iter()
        .filter(|row| row.get("completed_at").is_none_or(|v| v.is_null()))
        .map(|row| text(row, "r2_key"));

    let mut pending_objects = 0;
    let mut done = Vec::new();
    let doomed: Vec<String> = removed
        .iter()
        .filter(|key| **key != sample_key && **key != upload_key)
        .cloned()
        .chain(open_uploads)
        .collect();
    for key in &doomed {
        match blobs.delete(key).await {
            Ok(()) => done.push(key.clone()),
            Err(_) => pending_objects += 1,
        }
    }
    // D1 binds at most 100 parameters per statement.
    for chunk in done.chunks(50) {
        db::run(db, vec![forget_pending(chunk)]).await?;
    }
    Ok(DevSeed {
        vault_id: DEV_VAULT_ID.to_owned(),
        public_key: DEV_PUBLIC_KEY.to_owned(),
        secret_key: DEV_SECRET_KEY.to_owned(),
        asset_id: DEV_ASSET_ID.to_owned(),
        r2_key: sample_key,
        removed_assets: removed.len(),
        pending_objects,
    })
}

#[cfg(test)]
mod dev_seed_tests {
    use super::*;

    #[test]
    fn dev_ids_and_keys_have_the_shapes_the_api_accepts() {
        assert!(ids::is_id("vault_", DEV_VAULT_ID));
        assert!(ids::is_id("asset_", DEV_ASSET_ID));
        assert!(ids::is_id("upload_", DEV_UPLOAD_ID));
        assert!(ids::is_id("asset_", DEV_UPLOAD_ASSET_ID));
        assert_eq!(DEV_UPLOAD_TOKEN.len(), 48);
        assert!(ids::is_id("key_", DEV_PUBLIC_KEY_ID));
        assert!(ids::is_id("key_", DEV_SECRET_KEY_ID));
        for key in [DEV_PUBLIC_KEY, DEV_SECRET_KEY] {
            let header = format!("Bearer {key}");
            assert!(
                auth::Credential::from_header(Some(header.as_bytes())).is_ok(),
                "{key}"
            );
        }
        assert!(DEV_PUBLIC_KEY.starts_with("pk_") && DEV_SECRET_KEY.starts_with("sk_"));
        serde_json::from_str::<serde_json::Map<String, serde_json::Value>>(DEV_ASSET_METADATA)
            .unwrap();
        serde_json::from_str::<Vec<String>>(DEV_ASSET_TAGS).unwrap();
    }
}
