//! `GET /api/v1/vaults/{vaultId}/assets/{assetId}`: one asset. One batch: the key lookup and the
//! asset, so authentication costs no round trip of its own.
//!
//! Contract: docs/API.md#get.

use lambda_http::{Body, Request, Response, http::StatusCode};
use shared::asset;
use shared::auth::Access;
use shared::batch;
use shared::db::Stmt;
use shared::http::{begin, json_response, serve};
use shared::{ApiError, Deps, routes};

const SELECT: &str = concat!(
    "SELECT ",
    shared::asset_columns!(),
    " FROM assets WHERE id = ?1 AND vault_id = ?2"
);

pub async fn handle(deps: &Deps, req: Request) -> Result<Response<Body>, lambda_http::Error> {
    serve("get", req, |req| run(deps, req)).await
}

async fn run(deps: &Deps, req: Request) -> Result<Response<Body>, ApiError> {
    let (target, credential) = begin(&req, routes::route_of("get"))?;
    let asset_id = target.asset_id.unwrap_or_default();
    let select = Stmt::new(
        SELECT,
        vec![asset_id.into(), target.vault_id.as_str().into()],
    );
    let (key, asset) = batch::run(&*deps.db, (credential.lookup(), asset::one(select))).await?;
    key.check(&target.vault_id, Access::Read)?;
    match asset {
        Some(asset) => json_response(StatusCode::OK, &asset),
        None => Err(ApiError::AssetNotFound),
    }
}
