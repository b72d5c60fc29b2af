//! `GET /api/v1/vaults/{vaultId}/keys`: the vault's keys, live and revoked, oldest first; never a
//! key or its hash. Only a secret key of the vault may list them.
//!
//! One batch: the key lookup and the listing, itself guarded by the caller's key.
//!
//! Contract: docs/API.md#key-management.

use lambda_http::{Body, Request, Response, http::StatusCode};
use shared::auth::Access;
use shared::http::{begin, json_response, serve};
use shared::{ApiError, Deps, batch, keys, routes};

pub async fn handle(deps: &Deps, req: Request) -> Result<Response<Body>, lambda_http::Error> {
    serve("keys_list", req, |req| run(deps, req)).await
}

async fn run(deps: &Deps, req: Request) -> Result<Response<Body>, ApiError> {
    let (target, credential) = begin(&req, routes::route_of("keys_list"))?;
    let (key, data) = batch::run(
        &*deps.db,
        (
            credential.lookup(),
            keys::list(&target.vault_id, credential.hash_param()),
        ),
    )
    .await?;
    key.check(&target.vault_id, Access::Write)?;
    json_response(StatusCode::OK, &serde_json::json!({ "data": data }))
}
