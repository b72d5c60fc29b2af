//! `PUT /api/v1/vaults/{vaultId}/uploads/{uploadId}/content?token=…`: the bytes of a direct upload,
//! on the embedded default only. Local development's stand-in for a presigned R2 PUT: served by
//! `cargo lambda watch`, never deployed.
//!
//! No API key: the token of the URL `uploads` handed out is the capability, as a presigned URL's
//! signature is. One D1 request reads the upload; the token is checked against its stored hash
//! before the body is looked at; then the body is written to the upload's object (replacing any
//! earlier PUT, as S3 does). The size is checked by `complete`, except that a body over the
//! declared size (or the contract's limit) is refused here.
//!
//! Contract: docs/API.md#send-the-bytes.

use lambda_http::{Body, Request, Response, http::StatusCode};
use shared::batch;
use shared::error::FILE_TOO_LARGE;
use shared::http::{json_response, query_pairs, serve};
use shared::uploads::{self, token_matches};
use shared::{ApiError, Deps, MAX_FILE_BYTES, clock, routes};

pub async fn handle(deps: &Deps, req: Request) -> Result<Response<Body>, lambda_http::Error> {
    serve("receive", req, |req| run(deps, req)).await
}

const BAD_TOKEN: &str =
    "this URL's token is missing or wrong; use the url that POST …/uploads returned";

async fn run(deps: &Deps, req: Request) -> Result<Response<Body>, ApiError> {
    let target = routes::resolve(&req, routes::route_of("receive"))?;
    let upload_id = target.upload_id.unwrap_or_default();
    let tokens: Vec<String> = query_pairs(&req)
        .into_iter()
        .filter(|(name, _)| name == "token")
        .map(|(_, value)| value)
        .collect();
    let [token] = tokens.as_slice() else {
        return Err(ApiError::Forbidden(BAD_TOKEN));
    };
    let upload = batch::run(&*deps.db, uploads::select(&upload_id, &target.vault_id))
        .await?
        .ok_or(ApiError::UploadNotFound)?;
    if !token_matches(token, upload.token_hash.as_deref()) {
        return Err(ApiError::Forbidden(BAD_TOKEN));
    }
    if upload.completed_at.is_some() {
        // Its object is an asset's now: new bytes would no longer match the record.
        return Err(ApiError::UploadExpired(
            "this upload is completed; its URL takes no more bytes",
        ));
    }
    if upload.is_expired(&clock::format_ms(deps.clock.now_ms())) {
        return Err(ApiError::UploadExpired(
            "this upload's URL has expired; start a new upload",
        ));
    }
    let body = match req.into_body() {
        Body::Binary(bytes) => bytes,
        Body::Text(text) => text.into_bytes(),
        _ => Vec::new(),
    };
    if body.len() as u64 > MAX_FILE_BYTES {
        return Err(ApiError::PayloadTooLarge(FILE_TOO_LARGE));
    }
    if body.len() as u64 > upload.size {
        return Err(ApiError::PayloadTooLarge(
            "the body is larger than the size this upload declared",
        ));
    }
    deps.blobs
        .put(&upload.r2_key, body.into(), &upload.mime_type)
        .await?;
    json_response(StatusCode::OK, &serde_json::json!({}))
}
