//! `POST /api/v1/vaults/{vaultId}/assets`: store a file and its record.
//!
//! Order of work: the key is checked first (one D1 request) so that nothing is parsed or stored for
//! a caller who may not write; then the multipart body is parsed and validated; then the object is
//! written (one PUT); then the record is inserted (the second D1 request), guarded in SQL by the
//! key so that a key revoked in between writes nothing, and read back by its new id in the same
//! batch: the batch can run twice when D1's answer is lost (db/d1.rs), and the second run finds
//! the row the first wrote. If the insert certainly did not happen (a duplicate filename included)
//! the object is removed again, so a failed upload leaves nothing behind; if it may have, the
//! object stays (gc removes it after an hour when no record names it). The object key carries
//! the new asset id, so a losing upload can never overwrite a winner's bytes.
//!
//! Contract: docs/API.md#upload (fields, uniqueness, size limits).

mod form;

use bytes::Bytes;
use lambda_http::{Body, Request, Response, http::StatusCode};
use shared::asset::{self, Asset};
use shared::auth::Access;
use shared::batch;
use shared::db::DbError;
use shared::error::REQUEST_TOO_LARGE;
use shared::http::{begin, json_response, serve};
use shared::ingest::{discard, insert, leave_pending};
use shared::{ApiError, Deps, clock, ids, media, routes};

pub use form::{Upload, parse_form};

pub async fn handle(deps: &Deps, req: Request) -> Result<Response<Body>, lambda_http::Error> {
    serve("upload", req, |req| run(deps, req)).await
}

async fn run(deps: &Deps, req: Request) -> Result<Response<Body>, ApiError> {
    let (target, credential) = begin(&req, routes::route_of("upload"))?;
    let key = batch::run(&*deps.db, credential.lookup()).await?;
    key.check(&target.vault_id, Access::Write)?;

    let content_type = req
        .headers()
        .get(lambda_http::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let body = match req.into_body() {
        Body::Binary(bytes) => Bytes::from(bytes),
        Body::Text(text) => Bytes::from(text.into_bytes()),
        _ => Bytes::new(),
    };
    if deps
        .max_request_bytes
        .is_some_and(|limit| body.len() as u64 > limit)
    {
        return Err(ApiError::PayloadTooLarge(REQUEST_TOO_LARGE));
    }
    let upload = parse_form(content_type.as_deref(), body).await?;

    let ms = deps.clock.now_ms();
    let now = clock::format_ms(ms);
    let asset_id = ids::new_asset_id(ms);
    let sniffed = media::sniff(
        &upload.file,
        upload.declared_type.as_deref(),
        upload.filename.as_str(),
    );
    let r2_key = asset::r2_key(
        &target.vault_id,
        upload.partition.as_str(),
        upload.collection.as_str(),
        upload.channel.as_str(),
        &asset_id,
        upload.filename.as_str(),
    );
    let record = Asset {
        id: asset_id,
        vault_id: target.vault_id,
        partition: upload.partition.as_str().to_owned(),
        collection: upload.collection.as_str().to_owned(),
        channel: upload.channel.as_str().to_owned(),
        filename: upload.filename.as_str().to_owned(),
        r2_key,
        size: upload.file.len() as u64,
        mime_type: sniffed.mime_type,
        width: sniffed.width,
        height: sniffed.height,
        metadata: upload.metadata.as_json().to_owned(),
        tags: upload.tags.to_json(),
        created_at: now.clone(),
        updated_at: now,
    };

    if let Err(err) = deps
        .blobs
        .put(&record.r2_key, upload.file, &record.mime_type)
        .await
    {
        // The PUT may have landed even though it failed (a lost answer, a timeout). No record
        // will ever name the object, so its key is left pending for a later request or gc to
        // remove: not removed now, as a store that just failed (or stalled) would likely fail
        // that too, and the request must answer within the Lambda's time.
        leave_pending(deps, &record.r2_key).await;
        return Err(err.into());
    }
    let batch = (credential.lookup(), insert(&record, &credential));
    let outcome = match batch::send(&*deps.db, batch).await {
        Ok(results) => match results.read() {
            Ok((key, ((), recorded))) => {
                match (key.check(&record.vault_id, Access::Write), recorded) {
                    (Err(refused), _) => refused,
                    // Ours by its id: inserted by this batch, or by an earlier run of it whose
                    // answer was lost.
                    (Ok(()), Some(asset)) => return json_response(StatusCode::CREATED, &asset),
                    (Ok(()), None) => ApiError::Conflict,
                }
            }
            Err(err) => err,
        },
        // The insert may have landed: removing the object could leave a record without its
        // bytes, so it stays. If no record names it, gc removes it after an hour.
        Err(DbError::Uncertain(cause)) => return Err(ApiError::Internal(cause)),
        Err(err) => err.into(),
    };
    discard(deps, &record.r2_key).await;
    Err(outcome)
}
