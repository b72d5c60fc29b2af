//! `POST /api/v1/vaults/{vaultId}/uploads/{uploadId}/complete`: record the asset of a direct
//! upload whose bytes have been PUT.
//!
//! Order of work: one D1 request reads the key, the upload and (if it was completed already) its
//! asset, so a second complete answers 200 with the same record and nothing else. Then the object
//! is checked (a HEAD: it exists and has the declared size) and its first bytes are read (a range
//! GET: never the whole object) for MIME type and pixel size, as the multipart upload sniffs
//! them. The second D1 request inserts the record, guarded by the key and by the upload still
//! being open (so `imgbt gc`, which removes an expired upload's row before its object, can never
//! leave a record without bytes), and marks the upload completed in the same batch.
//!
//! Contract: docs/API.md#complete.

use lambda_http::{Body, Request, Response, http::StatusCode};
use shared::asset::{self, Asset};
use shared::auth::Access;
use shared::batch::{self, Query};
use shared::db::Stmt;
use shared::error::FILE_TOO_LARGE;
use shared::http::{begin, json_response, serve};
use shared::ingest::insert_for_upload;
use shared::uploads::{self, SNIFF_BYTES};
use shared::{ApiError, Deps, MAX_FILE_BYTES, clock, media, routes};

pub async fn handle(deps: &Deps, req: Request) -> Result<Response<Body>, lambda_http::Error> {
    serve("complete", req, |req| run(deps, req)).await
}

// ?1 upload id, ?2 vault id.
const ASSET_OF_UPLOAD: &str = concat!(
    "SELECT ",
    shared::asset_columns!(),
    " FROM assets WHERE vault_id = ?2 AND id = ",
    "(SELECT asset_id FROM uploads WHERE id = ?1 AND vault_id = ?2)"
);

// ?1 now, ?2 upload id, ?3 asset id: done once its asset exists (inserted by this batch).
const MARK_COMPLETED: &str = "UPDATE uploads SET completed_at = ?1 \
    WHERE id = ?2 AND completed_at IS NULL AND EXISTS (SELECT 1 FROM assets WHERE id = ?3)";

const NO_BYTES: &str =
    "no bytes have been uploaded for this upload yet: PUT the file to its url, then complete";

async fn run(deps: &Deps, req: Request) -> Result<Response<Body>, ApiError> {
    let (target, credential) = begin(&req, routes::route_of("complete"))?;
    let upload_id = target.upload_id.unwrap_or_default();
    let vault_id = target.vault_id.as_str();
    let (key, upload, recorded) = batch::run(
        &*deps.db,
        (
            credential.lookup(),
            uploads::select(&upload_id, vault_id),
            asset::one(Stmt::new(
                ASSET_OF_UPLOAD,
                vec![upload_id.as_str().into(), vault_id.into()],
            )),
        ),
    )
    .await?;
    key.check(vault_id, Access::Write)?;
    let upload = upload.ok_or(ApiError::UploadNotFound)?;
    if let Some(asset) = recorded {
        return json_response(StatusCode::OK, &asset);
    }
    if upload.completed_at.is_some() {
        // Completed, and its asset deleted since: there is nothing left to complete.
        return Err(ApiError::UploadNotFound);
    }
    let now = clock::format_ms(deps.clock.now_ms());
    if upload.is_expired(&now) {
        return Err(ApiError::UploadExpired(
            "this upload expired before it was completed; start a new upload",
        ));
    }

    let size = deps
        .blobs
        .size(&upload.r2_key)
        .await?
        .ok_or_else(|| ApiError::UploadIncomplete(NO_BYTES.to_owned()))?;
    if size != upload.size {
        // The upload URL only creates (R2 refuses a PUT over an existing object), so the wrong
        // object goes, and the client can PUT the whole file again.
        deps.blobs.delete(&upload.r2_key).await?;
        return Err(ApiError::UploadIncomplete(format!(
            "the uploaded object was {size} bytes but the upload declared {} bytes, so it was \
             removed: PUT the whole file again, then complete",
            upload.size
        )));
    }
    if size > MAX_FILE_BYTES {
        return Err(ApiError::PayloadTooLarge(FILE_TOO_LARGE));
    }
    let head = deps
        .blobs
        .read_head(&upload.r2_key, SNIFF_BYTES.min(size))
        .await?
        .ok_or_else(|| ApiError::UploadIncomplete(NO_BYTES.to_owned()))?;
    let sniffed = media::sniff(&head, Some(&upload.mime_type), &upload.filename);
    drop(head);

    let record = Asset {
        id: upload.asset_id,
        vault_id: upload.vault_id,
        partition: upload.partition,
        collection: upload.collection,
        channel: upload.channel,
        filename: upload.filename,
        r2_key: upload.r2_key,
        size,
        mime_type: sniffed.mime_type,
        width: sniffed.width,
        height: sniffed.height,
        metadata: upload.metadata,
        tags: upload.tags,
        created_at: now.clone(),
        updated_at: now.clone(),
    };
    let batch = (
        credential.lookup(),
        insert_for_upload(&record, &credential, &upload_id),
        Query::new(
            Stmt::new(
                MARK_COMPLETED,
                vec![
                    now.as_str().into(),
                    upload_id.as_str().into(),
                    record.id.as_str().into(),
                ],
            ),
            batch::ignore,
        ),
        uploads::select(&upload_id, vault_id),
    );
    // The batch can run twice (D1's answer lost, db/d1.rs); the record is read by its id either
    // way. On an answer lost for good the insert may have landed: the object stays, and a retry
    // finds the record.
    let (key, ((), recorded), (), upload) = batch::run(&*deps.db, batch).await?;
    key.check(vault_id, Access::Write)?;
    if let Some(asset) = recorded {
        // `created_at` is this request's time when this request (or its resent batch) inserted
        // it; another complete of the same upload got there first otherwise.
        let status = if asset.created_at == now {
            StatusCode::CREATED
        } else {
            StatusCode::OK
        };
        return json_response(status, &asset);
    }
    match upload {
        // Still open, yet no record: the name was taken since the upload started. The object
        // stays with the open upload (whose name cannot change), and `imgbt gc` removes both
        // once it expired.
        Some(upload) if upload.completed_at.is_none() => Err(ApiError::Conflict),
        // The upload is gone: `imgbt gc` removed it (it had expired) between the two requests.
        _ => Err(ApiError::UploadExpired(
            "this upload expired before it was completed; start a new upload",
        )),
    }
}
