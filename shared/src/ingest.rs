//! Writing a new asset: its record insert (guarded by the key, as every write is), and what
//! becomes of an object that no record will name. Used by the multipart upload and by a direct
//! upload's `complete`.

use crate::Deps;
use crate::asset::{self, Asset};
use crate::auth::Credential;
use crate::batch::{self, Query};
use crate::clock;
use crate::db::{self, Stmt, Value};

// ?1..?15 the record's columns in asset_columns!() order, ?16 the key hash. A name already taken
// is not an error: nothing is inserted, and the read of the record by its id that follows in the
// batch says which happened. So the batch can run twice (the D1 client resends one whose answer
// was lost, db/d1.rs): the second run finds the row the first one wrote, by its id.
const INSERT: &str = concat!(
    "INSERT INTO assets (",
    crate::asset_columns!(),
    ") SELECT ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15 ",
    "WHERE ",
    crate::write_guard!("?16", "?2"),
    " ON CONFLICT DO NOTHING"
);

// As INSERT, and ?17 an upload of the vault that is not completed yet: so a record is never
// inserted for an upload that `imgbt gc` has taken away (with its object), nor twice.
const INSERT_FOR_UPLOAD: &str = concat!(
    "INSERT INTO assets (",
    crate::asset_columns!(),
    ") SELECT ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15 ",
    "WHERE ",
    crate::write_guard!("?16", "?2"),
    " AND EXISTS (SELECT 1 FROM uploads WHERE id = ?17 AND vault_id = ?2 AND completed_at IS NULL)",
    " ON CONFLICT DO NOTHING"
);

// ?1 the asset id, ?2 its vault.
const RECORDED: &str = concat!(
    "SELECT ",
    crate::asset_columns!(),
    " FROM assets WHERE id = ?1 AND vault_id = ?2"
);

const PENDING: &str =
    "INSERT OR IGNORE INTO pending_deletions (r2_key, requested_at) VALUES (?1, ?2)";

/// The statements that insert `record` if `credential` may write to its vault and its name is
/// free, then read the record by its id: `Some` when it is there, whether this batch wrote it or
/// an earlier run of the same batch did (ids are new per request, so the row is ours). `None` with
/// a key that may write means the name is taken.
pub fn insert(record: &Asset, credential: &Credential) -> (Query<()>, Query<Option<Asset>>) {
    (
        Query::new(Stmt::new(INSERT, params(record, credential)), batch::ignore),
        recorded(record),
    )
}

/// Like [`insert`], and only while the upload `upload_id` exists and is not completed.
pub fn insert_for_upload(
    record: &Asset,
    credential: &Credential,
    upload_id: &str,
) -> (Query<()>, Query<Option<Asset>>) {
    let mut params = params(record, credential);
    params.push(upload_id.into());
    (
        Query::new(Stmt::new(INSERT_FOR_UPLOAD, params), batch::ignore),
        recorded(record),
    )
}

fn recorded(record: &Asset) -> Query<Option<Asset>> {
    asset::one(Stmt::new(
        RECORDED,
        vec![record.id.as_str().into(), record.vault_id.as_str().into()],
    ))
}

fn params(record: &Asset, credential: &Credential) -> Vec<Value> {
    let dimension = |d: Option<u32>| d.map_or(Value::Null, |d| Value::Integer(i64::from(d)));
    vec![
        record.id.as_str().into(),
        record.vault_id.as_str().into(),
        record.partition.as_str().into(),
        record.collection.as_str().into(),
        record.channel.as_str().into(),
        record.filename.as_str().into(),
        record.r2_key.as_str().into(),
        Value::Integer(record.size as i64),
        record.mime_type.as_str().into(),
        dimension(record.width),
        dimension(record.height),
        record.metadata.as_str().into(),
        record.tags.as_str().into(),
        record.created_at.as_str().into(),
        record.updated_at.as_str().into(),
        credential.hash_param(),
    ]
}

/// Removes an object no record names. If the store refuses, the key goes to `pending_deletions`
/// (one more D1 request, on this failure path only) for a later request or `imgbt gc` to finish;
/// if that fails too, the log says so and `imgbt fsck` lists the object.
pub async fn discard(deps: &Deps, r2_key: &str) {
    let Err(err) = deps.blobs.delete(r2_key).await else {
        return;
    };
    tracing::warn!(error = %err, "removing an unrecorded object failed; it is left pending");
    leave_pending(deps, r2_key).await;
}

/// Writes `r2_key` to `pending_deletions`: a later delete request or `imgbt gc` removes the object
/// (removing an object that is not there succeeds).
pub async fn leave_pending(deps: &Deps, r2_key: &str) {
    let pending = Stmt::new(
        PENDING,
        vec![r2_key.into(), clock::format_ms(deps.clock.now_ms()).into()],
    );
    if let Err(err) = db::run(&*deps.db, vec![pending]).await {
        tracing::error!(error = %err, r2_key, "an unrecorded object could not be left pending; imgbt fsck lists it");
    }
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
