//! `PATCH /api/v1/vaults/{vaultId}`: renames the vault or sets its delivery (`public` or
//! `signed`; docs/API.md#delivery), for a secret key of the vault. The body
//! follows the asset PATCH's rules (docs/API.md#update): a JSON object, unknown members refused.
//!
//! One batch: the key lookup and the guarded UPDATE … RETURNING; running it twice writes the
//! same name twice.
//!
//! Contract: docs/API.md#vault.

use lambda_http::{Body, Request, Response, http::StatusCode};
use shared::auth::Access;
use shared::http::{begin, body_bytes, content_type, json_response, serve};
use shared::keys::{self, VaultPatch};
use shared::{ApiError, Deps, batch, routes};

pub async fn handle(deps: &Deps, req: Request) -> Result<Response<Body>, lambda_http::Error> {
    serve("vault_update", req, |req| run(deps, req)).await
}

async fn run(deps: &Deps, req: Request) -> Result<Response<Body>, ApiError> {
    let (target, credential) = begin(&req, routes::route_of("vault_update"))?;
    // A bad body is reported only after the key is checked: authentication comes first.
    let patch = VaultPatch::parse(content_type(&req).as_deref(), body_bytes(&req));
    let rename = patch.as_ref().ok().map(|patch| {
        let now = shared::clock::format_ms(deps.clock.now_ms());
        keys::update(&target.vault_id, patch, credential.hash_param(), &now)
    });
    let (key, updated) = batch::run(&*deps.db, (credential.lookup(), rename)).await?;
    key.check(&target.vault_id, Access::Write)?;
    patch?;
    let vault = updated
        .flatten()
        .ok_or_else(|| ApiError::internal("an authorised vault update changed no row"))?;
    json_response(StatusCode::OK, &vault)
}
