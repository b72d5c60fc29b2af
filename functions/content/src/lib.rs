//! `GET /api/v1/vaults/{vaultId}/assets/{assetId}/content`: an asset's bytes.
//!
//! On R2: 302 to a presigned GET valid 5 minutes, answered with the stored MIME type; the bytes
//! never pass through the function (nor its 6 MB response limit). On the embedded default with
//! the local object server configured (`./scripts/dev.sh` does; see
//! `shared::blobs::object_urls`): 302 to its signed URL, likewise. On the embedded default
//! without it: 200 with the bytes. One D1 request: the key lookup and the asset.
//!
//! Running as a Lambda function (`cargo lambda watch` included) on the embedded default without
//! the object server, a file larger than one invocation's response can carry is refused with 413
//! and a message that says where the bytes are: `cargo lambda watch` does not answer such a
//! response at all (the client waits until it gives up).
//!
//! Contract: docs/API.md#content.

use lambda_http::http::header;
use lambda_http::{Body, Request, Response, http::StatusCode};
use shared::auth::Access;
use shared::batch::{self, Query};
use shared::blobs::Validity;
use shared::clock::Clock;
use shared::db::{Stmt, StmtResult};
use shared::http::{begin, serve};
use shared::uploads::DOWNLOAD_TTL;
use shared::{ApiError, Deps, MAX_FILE_BYTES, routes};

pub async fn handle(deps: &Deps, req: Request) -> Result<Response<Body>, lambda_http::Error> {
    serve("content", req, |req| run(deps, req)).await
}

const TOO_LARGE_TO_SERVE: &str = "this file is larger than one Lambda response can carry \
    (about 4.5 MB once base64-encoded); on the embedded default its bytes are in the objects \
    directory under its r2_key (`./scripts/dev.sh` serves them with `imgbt dev objects`), and on     R2 downloads are redirects with no such limit";

const SELECT: &str = "SELECT r2_key, size, mime_type FROM assets WHERE id = ?1 AND vault_id = ?2";

/// The columns of [`SELECT`].
struct Stored {
    r2_key: String,
    size: u64,
    mime_type: String,
}

impl Stored {
    fn read(result: StmtResult) -> Result<Option<Self>, ApiError> {
        let Some(row) = result.rows.into_iter().next() else {
            return Ok(None);
        };
        let text = |column: &str| {
            row.text_opt(column)
                .ok_or_else(|| ApiError::internal(format!("asset row has no {column}")))
        };
        Ok(Some(Stored {
            r2_key: text("r2_key")?,
            size: row.get("size").and_then(|v| v.as_u64()).unwrap_or(0),
            mime_type: text("mime_type")?,
        }))
    }
}

async fn run(deps: &Deps, req: Request) -> Result<Response<Body>, ApiError> {
    let (target, credential) = begin(&req, routes::route_of("content"))?;
    let asset_id = target.asset_id.unwrap_or_default();
    let select = Stmt::new(
        SELECT,
        vec![asset_id.into(), target.vault_id.as_str().into()],
    );
    let (key, stored) = batch::run(
        &*deps.db,
        (credential.lookup(), Query::new(select, Stored::read)),
    )
    .await?;
    key.check(&target.vault_id, Access::Read)?;
    let Stored {
        r2_key,
        size,
        mime_type,
    } = stored.ok_or(ApiError::AssetNotFound)?;

    let validity = Validity {
        signed_at: Clock::at(deps.clock.now_ms()),
        expires_in: DOWNLOAD_TTL,
    };
    if let Some(presigned) = deps
        .blobs
        .presign_get(&r2_key, &mime_type, validity)
        .await?
    {
        return Response::builder()
            .status(StatusCode::FOUND)
            .header(header::LOCATION, presigned.url)
            .header(header::CACHE_CONTROL, "private, no-store")
            .body(Body::Empty)
            .map_err(ApiError::internal);
    }
    // A response's body is base64-encoded on its way out, as a request's is on its way in.
    if deps.max_request_bytes.is_some_and(|limit| size > limit) {
        return Err(ApiError::PayloadTooLarge(TOO_LARGE_TO_SERVE));
    }
    let bytes = deps
        .blobs
        .read_head(&r2_key, MAX_FILE_BYTES)
        .await?
        .ok_or_else(|| ApiError::internal(format!("the object of {r2_key} is missing")))?;
    Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, mime_type)
        .header(header::CONTENT_LENGTH, bytes.len())
        .body(Body::Binary(Vec::from(bytes)))
        .map_err(ApiError::internal)
}
