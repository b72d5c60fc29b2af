//! `DELETE /api/v1/vaults/{vaultId}/assets/{assetId}`: remove the record, then the object.
//!
//! One batch removes the record and, atomically with it, writes the object's key and its
//! variants' prefix (`shared::variants`) to `pending_deletions`; only then are the object and
//! the variants removed. If that fails, the key stays pending and
//! `imgbt gc` finishes it later, so an object is never forgotten. When it succeeds, this process
//! remembers the key and clears its pending row in its next batch (a pending row for an object
//! that is already gone is harmless: removing an object twice succeeds), keeping the happy path
//! at one D1 request. The same batch also reads up to two pending deletions older than a minute
//! (left by a failed object delete elsewhere); this request retries them after its own, so
//! later requests finish what failed, without waiting for `imgbt gc`.
//!
//! Contract: docs/API.md#delete.

use lambda_http::{Body, Request, Response};
use shared::auth::Access;
use shared::batch::{self, Query};
use shared::db::{Stmt, StmtResult};
use shared::http::{begin, no_content, serve};
use shared::ingest::forget_pending;
use shared::{ApiError, Deps, clock, routes, variants};

pub async fn handle(deps: &Deps, req: Request) -> Result<Response<Body>, lambda_http::Error> {
    serve("delete", req, |req| run(deps, req)).await
}

// ?1 asset id, ?2 vault id, ?3 key hash, ?4 now. Two pending rows: the object's key, and the
// prefix of the asset's variants.
const JOURNAL: &str = concat!(
    "INSERT INTO pending_deletions (r2_key, requested_at) ",
    "SELECT r2_key, ?4 FROM assets WHERE id = ?1 AND vault_id = ?2 AND ",
    shared::write_guard!("?3", "?2"),
    " UNION ALL SELECT ",
    shared::variants_prefix_sql!(),
    ", ?4 FROM assets ",
    "WHERE id = ?1 AND vault_id = ?2 AND ",
    shared::write_guard!("?3", "?2")
);
const DELETE: &str = concat!(
    "DELETE FROM assets WHERE id = ?1 AND vault_id = ?2 AND ",
    shared::write_guard!("?3", "?2"),
    " RETURNING r2_key"
);

// ?1 asset id, ?2 vault id, ?4 this request's time: the pending row JOURNAL wrote for this asset
// at this time. The batch can run twice (D1's answer lost, db/d1.rs); the second run finds the
// record gone and this row, which says the first run deleted it. (An asset's object key is
// `{vault}/…/{assetId}_{filename}`, asset::r2_key.)
const JOURNALED: &str = "SELECT r2_key FROM pending_deletions WHERE requested_at = ?4 \
    AND substr(r2_key, 1, length(?2) + 1) = ?2 || '/' AND instr(r2_key, '/' || ?1 || '_') > 0";

/// At most this many settled keys ride along with one batch (D1 allows 100 bound parameters).
const SETTLED_PER_BATCH: usize = 50;

// ?1 the cutoff: older than this, a pending deletion is not one a request is still working on.
const STALE: &str =
    "SELECT r2_key FROM pending_deletions WHERE requested_at < ?1 ORDER BY requested_at LIMIT 2";

/// How old a pending deletion must be before another request retries it.
const STALE_AFTER_MS: u64 = 60_000;

async fn run(deps: &Deps, req: Request) -> Result<Response<Body>, ApiError> {
    let (target, credential) = begin(&req, routes::route_of("delete"))?;
    let asset_id = target.asset_id.unwrap_or_default();
    let variants = variants::prefix(&target.vault_id, &asset_id);
    let now = deps.clock.now_ms();
    let params = vec![
        asset_id.into(),
        target.vault_id.as_str().into(),
        credential.hash_param(),
        clock::format_ms(now).into(),
    ];
    let settled = take_settled(deps);
    let cutoff = clock::format_ms(now.saturating_sub(STALE_AFTER_MS));
    let batch = (
        credential.lookup(),
        (
            Query::new(Stmt::new(JOURNAL, params.clone()), batch::ignore),
            Query::new(Stmt::new(DELETE, params[..3].to_vec()), r2_keys),
            Query::new(Stmt::new(JOURNALED, params.clone()), r2_keys),
        ),
        (!settled.is_empty()).then(|| Query::new(forget_pending(&settled), batch::ignore)),
        Query::new(Stmt::new(STALE, vec![cutoff.into()]), r2_keys),
    );
    let (key, ((), deleted, journaled), _, stale) = match batch::send(&*deps.db, batch).await {
        Ok(results) => results.read()?,
        Err(err) => {
            give_back_settled(deps, settled);
            return Err(err.into());
        }
    };
    key.check(&target.vault_id, Access::Write)?;
    // Deleted by this batch, or by its earlier run.
    let Some(deleted) = deleted.into_iter().chain(journaled).next() else {
        return Err(ApiError::AssetNotFound);
    };
    for key in [deleted, variants].into_iter().chain(stale) {
        match variants::remove(&*deps.blobs, &key).await {
            Ok(()) => give_back_settled(deps, vec![key]),
            Err(err) => lambda_http::tracing::warn!(
                error = %err,
                "object delete failed; it stays in pending_deletions for a later request or imgbt gc"
            ),
        }
    }
    no_content()
}

/// The `r2_key` of each row (DELETE … RETURNING r2_key, and the stale pending deletions).
fn r2_keys(result: StmtResult) -> Result<Vec<String>, ApiError> {
    Ok(result
        .rows
        .iter()
        .filter_map(|row| {
            row.get("r2_key")
                .and_then(|v| v.as_str())
                .map(str::to_owned)
        })
        .collect())
}

fn take_settled(deps: &Deps) -> Vec<String> {
    let mut settled = deps
        .settled_deletions
        .lock()
        .unwrap_or_else(|p| p.into_inner());
    let n = settled.len().min(SETTLED_PER_BATCH);
    settled.drain(..n).collect()
}

fn give_back_settled(deps: &Deps, keys: Vec<String>) {
    deps.settled_deletions
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .extend(keys);
}
