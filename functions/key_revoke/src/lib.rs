//! `DELETE /api/v1/vaults/{vaultId}/keys/{keyId}`: revokes a key of the vault, from the very next
//! request on (every request looks its key up in its own batch; there is no cache to expire).
//!
//! One batch: the key lookup, the guarded UPDATE, and the probe that says what became of the
//! key. The vault's last live secret key is kept by the UPDATE's own WHERE (see
//! `shared::keys::revoke`), so concurrent revokes cannot lock a vault out.
//!
//! Contract: docs/API.md#key-management.

use lambda_http::{Body, Request, Response};
use shared::auth::Access;
use shared::http::{begin, no_content, serve};
use shared::keys::{self, Revoke};
use shared::{ApiError, Deps, batch, routes};

pub async fn handle(deps: &Deps, req: Request) -> Result<Response<Body>, lambda_http::Error> {
    serve("key_revoke", req, |req| run(deps, req)).await
}

/// Why a revoke that would leave the vault without a live secret key is refused.
pub const LAST_SECRET_KEY: &str = "this is the vault's last active secret key; create another \
    secret key before revoking it, or nothing could manage the vault's keys again";

async fn run(deps: &Deps, req: Request) -> Result<Response<Body>, ApiError> {
    let (target, credential) = begin(&req, routes::route_of("key_revoke"))?;
    let key_id = target.key_id.clone().unwrap_or_default();
    let (update, probe) = keys::revoke(
        deps.clock.now_ms(),
        &key_id,
        &target.vault_id,
        credential.hash_param(),
    );
    let (key, (), outcome) = batch::run(&*deps.db, (credential.lookup(), update, probe)).await?;
    match outcome {
        // A key that revoked itself is no longer found by the lookup when the batch is resent
        // after a lost answer: the probe proves the caller held it, so the revoke stands.
        Revoke::Done { by_itself: true } => {}
        _ => key.check(&target.vault_id, Access::Write)?,
    }
    match outcome {
        Revoke::Done { .. } => {
            keys::log_change(&req, &target.vault_id, &key_id, "revoke");
            no_content()
        }
        Revoke::Kept => Err(ApiError::LastSecretKey(LAST_SECRET_KEY)),
        Revoke::NotFound => Err(ApiError::KeyNotFound),
    }
}
