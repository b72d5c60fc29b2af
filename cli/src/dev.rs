//! The dev vault: a fixed id, well-known keys, one sample asset and one open direct upload, for
//! `imgbt dev seed`, the sample events in `events/`, the test kit and the benchmarks. Not part of
//! the product: it lives with the CLI's command, not in the library the functions link.

use serde::Serialize;
use shared::auth::{self, KeyKind};
use shared::blobs::Blobs;
use shared::clock::{self, Clock};
use shared::db::{self, Db, DbError, Stmt, Value};
use shared::ingest::forget_pending;

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
    shared::asset::r2_key(
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
    shared::asset::r2_key(
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
///    deletion of the sample's key and of its variants' prefix (left by a delete of the sample,
///    which `imgbt gc` would otherwise carry out under the new record), and inserts the sample record;
/// 3. the journalled objects are removed and their rows cleared; an object the store refuses to
///    remove stays pending for `imgbt gc`, as after a delete.
///
/// Other keys someone created for the dev vault are revoked (kept, for the record), so that the
/// vault's one live secret key is the well-known one, as the sample events expect.
pub async fn seed_dev(db: &dyn Db, clock: &Clock, blobs: &dyn Blobs) -> Result<DevSeed, DbError> {
    let ms = clock.now_ms();
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
                "UPDATE api_keys SET revoked_at = ?2 \
                 WHERE vault_id = ?1 AND id NOT IN (?3, ?4) AND revoked_at IS NULL",
                vec![
                    DEV_VAULT_ID.into(),
                    now.as_str().into(),
                    DEV_PUBLIC_KEY_ID.into(),
                    DEV_SECRET_KEY_ID.into(),
                ],
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
            // The sample's variants' prefix too: a delete of the sample journals it, and the
            // new sample has the same id (and bytes), so its variants stay good.
            Stmt::new(
                "DELETE FROM pending_deletions WHERE r2_key IN (?1, ?2)",
                vec![
                    sample_key.as_str().into(),
                    shared::variants::prefix(DEV_VAULT_ID, DEV_ASSET_ID).into(),
                ],
            ),
            Stmt::new(
                concat!(
                    "INSERT INTO assets (",
                    shared::asset_columns!(),
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
                    clock::format_ms(ms + shared::uploads::UPLOAD_TTL.as_millis() as u64).into(),
                ],
            ),
        ],
    )
    .await?;
    let removed: Vec<String> = results[5]
        .rows
        .iter()
        .map(|row| row.text("r2_key"))
        .collect();
    let open_uploads = results[9]
        .rows
        .iter()
        .filter(|row| row.get("completed_at").is_none_or(|v| v.is_null()))
        .map(|row| row.text("r2_key"));

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
mod tests {
    use super::*;
    use shared::ids;

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
