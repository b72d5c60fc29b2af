//! `GET /api/v1/vaults/{vaultId}`: the vault's settings, for any key of the vault.
//!
//! One batch: the key lookup and the vault's row.
//!
//! Contract: docs/API.md#vault.

use lambda_http::{Body, Request, Response, http::StatusCode};
use shared::auth::Access;
use shared::http::{begin, json_response, serve};
use shared::{ApiError, Deps, batch, keys, routes};

pub async fn handle(deps: &Deps, req: Request) -> Result<Response<Body>, lambda_http::Error> {
    serve("vault_get", req, |req| run(deps, req)).await
}

async fn run(deps: &Deps, req: Request) -> Result<Response<Body>, ApiError> {
    let (target, credential) = begin(&req, routes::route_of("vault_get"))?;
    let (key, vault) = batch::run(
        &*deps.db,
        (credential.lookup(), keys::vault(&target.vault_id)),
    )
    .await?;
    key.check(&target.vault_id, Access::Read)?;
    // A live key of the vault was found, and a vault's keys go only with the vault.
    let vault = vault.ok_or_else(|| ApiError::internal("a key names a vault that is not there"))?;
    json_response(StatusCode::OK, &vault)
}
