//! `GET /api/v1/vaults/{vaultId}/assets/{assetId}`: one asset. One batch: the key lookup and the
//! asset, so authentication costs no round trip of its own.
//!
//! Contract: docs/API.md#get.

use lambda_http::{Body, Request, Response, http::StatusCode};
use shared::asset::Asset;
use shared::auth::{Access, Credential};
use shared::db::{self, Stmt};
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
    let mut results = db::run(&*deps.db, vec![credential.lookup(), select]).await?;
    Credential::check(&results[0].rows, &target.vault_id, Access::Read)?;
    match Asset::first(std::mem::take(&mut results[1].rows))? {
        Some(asset) => json_response(StatusCode::OK, &asset),
        None => Err(ApiError::AssetNotFound),
    }
}
