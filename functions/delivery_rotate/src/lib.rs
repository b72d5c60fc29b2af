//! `POST /api/v1/vaults/{vaultId}/delivery/rotate`: a new delivery secret for a secret key of the
//! vault (docs/API.md#delivery). The current secret becomes the previous one, which signed URLs
//! may still use until the next rotation; the answer is the vault's record, never a secret.
//!
//! One batch: the key lookup, the guarded UPDATE and the probe that finds this rotation's own
//! secret. A resent batch (its answer lost) finds it in place and rotates nothing.
//!
//! Contract: docs/API.md#vault.

use lambda_http::{Body, Request, Response, http::StatusCode};
use shared::auth::Access;
use shared::http::{begin, json_response, serve};
use shared::{ApiError, Deps, batch, keys, routes};

pub async fn handle(deps: &Deps, req: Request) -> Result<Response<Body>, lambda_http::Error> {
    serve("delivery_rotate", req, |req| run(deps, req)).await
}

async fn run(deps: &Deps, req: Request) -> Result<Response<Body>, ApiError> {
    let (target, credential) = begin(&req, routes::route_of("delivery_rotate"))?;
    let now = shared::clock::format_ms(deps.clock.now_ms());
    let (write, probe) = keys::rotate(&target.vault_id, credential.hash_param(), &now);
    let (key, (), rotated) = batch::run(&*deps.db, (credential.lookup(), write, probe)).await?;
    key.check(&target.vault_id, Access::Write)?;
    match rotated {
        Some((vault, true)) => json_response(StatusCode::OK, &vault),
        // The key was live at the lookup and not at the guard: revoked in between.
        Some((_, false)) => Err(ApiError::Unauthorized),
        None => Err(ApiError::internal("a key names a vault that is not there")),
    }
}
