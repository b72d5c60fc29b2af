//! `POST /api/v1/vaults/{vaultId}/uploads`: start a direct upload. The answer is a URL the client
//! PUTs the bytes to, then `POST …/uploads/{uploadId}/complete` records the asset.
//!
//! On R2 the URL is a presigned S3 PUT (its `content-type` signed), valid 15 minutes; on the
//! embedded default it is the local `receive` route, carrying a random token whose hash the row
//! keeps. One D1 request: the key lookup, a probe for an asset of the same name (409), and the
//! upload row's insert, guarded by the key and by that probe. The URL is signed before the
//! request (signing is local computation); if the insert does not happen, nobody ever sees it.
//!
//! Contract: docs/API.md#start-an-upload.

use lambda_http::{Body, Request, Response, http::StatusCode};
use serde_json::{Map, Value as Json, json};
use shared::auth::Access;
use shared::batch::{self, Query};
use shared::blobs::Validity;
use shared::clock::{self, Clock};
use shared::db::{Stmt, Value};
use shared::error::FILE_TOO_LARGE;
use shared::http::{begin, body_bytes, content_type, json_response, serve};
use shared::uploads::{UPLOAD_TTL, new_token};
use shared::validate::{self, Filename, Metadata, PathSegment, Tags};
use shared::{ApiError, Deps, MAX_FILE_BYTES, asset, ids, media, routes};

pub async fn handle(deps: &Deps, req: Request) -> Result<Response<Body>, lambda_http::Error> {
    serve("uploads", req, |req| run(deps, req)).await
}

const MEMBERS: &[&str] = &[
    "partition",
    "collection",
    "channel",
    "filename",
    "size",
    "mime_type",
    "metadata",
    "tags",
];

/// A valid request to start a direct upload.
#[derive(Debug, PartialEq)]
pub struct NewUpload {
    pub partition: PathSegment,
    pub collection: PathSegment,
    pub channel: PathSegment,
    pub filename: Filename,
    pub size: u64,
    /// As declared, else from the filename's extension, else `application/octet-stream`.
    pub mime_type: String,
    pub metadata: Metadata,
    pub tags: Tags,
}

impl NewUpload {
    pub fn parse(content_type: Option<&str>, body: &[u8]) -> Result<Self, ApiError> {
        let mut members = validate::json_object(content_type, &[], body, MEMBERS)?;
        let partition = segment(&members, "partition")?;
        let collection = segment(&members, "collection")?;
        let channel = segment(&members, "channel")?;
        let filename = Filename::parse(required_text(&members, "filename")?)?;
        let size = match members.get("size") {
            None => return Err(ApiError::invalid("size", "is required")),
            Some(size) => size.as_u64().ok_or_else(|| {
                ApiError::invalid("size", "must be an integer number of bytes, 0 or more")
            })?,
        };
        if size > MAX_FILE_BYTES {
            return Err(ApiError::PayloadTooLarge(FILE_TOO_LARGE));
        }
        let mime_type = match members.get("mime_type") {
            None => media::guess_from_filename(filename.as_str()),
            Some(Json::String(text)) => media::media_type(text).ok_or_else(|| {
                ApiError::invalid(
                    "mime_type",
                    "must be a media type `type/subtype`, without parameters",
                )
            })?,
            Some(_) => return Err(ApiError::invalid("mime_type", "must be a string")),
        };
        let metadata = members
            .remove("metadata")
            .map(Metadata::from_value)
            .transpose()?
            .unwrap_or_else(Metadata::empty);
        let tags = members
            .remove("tags")
            .map(Tags::from_value)
            .transpose()?
            .unwrap_or_else(Tags::empty);
        Ok(NewUpload {
            partition,
            collection,
            channel,
            filename,
            size,
            mime_type,
            metadata,
            tags,
        })
    }
}

fn required_text<'a>(members: &'a Map<String, Json>, field: &str) -> Result<&'a str, ApiError> {
    match members.get(field) {
        None => Err(ApiError::invalid(field, "is required")),
        Some(Json::String(text)) => Ok(text),
        Some(_) => Err(ApiError::invalid(field, "must be a string")),
    }
}

fn segment(members: &Map<String, Json>, field: &str) -> Result<PathSegment, ApiError> {
    PathSegment::parse(field, required_text(members, field)?)
}

// ?1 vault, ?2..?5 partition, collection, channel, filename.
const TAKEN: &str = "SELECT 1 AS taken FROM assets WHERE vault_id = ?1 AND partition = ?2 \
    AND collection = ?3 AND channel = ?4 AND filename = ?5";

// ?1 id, ?2 vault, ?3 asset id, ?4..?7 partition, collection, channel, filename, ?8 r2_key,
// ?9 size, ?10 mime type, ?11 metadata, ?12 tags, ?13 token hash, ?14 created, ?15 expires,
// ?16 key hash.
const INSERT: &str = concat!(
    "INSERT INTO uploads (id, vault_id, asset_id, partition, collection, channel, filename, ",
    "r2_key, size, mime_type, metadata, tags, token_hash, created_at, expires_at) ",
    "SELECT ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15 WHERE ",
    shared::write_guard!("?16", "?2"),
    " AND NOT EXISTS (SELECT 1 FROM assets WHERE vault_id = ?2 AND partition = ?4 ",
    "AND collection = ?5 AND channel = ?6 AND filename = ?7) ON CONFLICT DO NOTHING"
);

// ?1 the upload id, ?2 its vault: the row is there once the insert ran, in this run of the batch
// or in an earlier one whose answer was lost (the D1 client resends it, db/d1.rs).
const STARTED: &str = "SELECT 1 AS started FROM uploads WHERE id = ?1 AND vault_id = ?2";

async fn run(deps: &Deps, req: Request) -> Result<Response<Body>, ApiError> {
    let (target, credential) = begin(&req, routes::route_of("uploads"))?;
    // A bad body is reported only after the key is checked: authentication comes first. The
    // lookup shares the batch with the insert, so a bad body costs the lookup alone.
    let parsed = NewUpload::parse(content_type(&req).as_deref(), body_bytes(&req));
    let Ok(upload) = parsed else {
        let key = batch::run(&*deps.db, credential.lookup()).await?;
        key.check(&target.vault_id, Access::Write)?;
        return Err(parsed.err().unwrap_or_else(|| ApiError::internal("parse")));
    };

    let ms = deps.clock.now_ms();
    let expires_ms = ms + UPLOAD_TTL.as_millis() as u64;
    let upload_id = ids::new_upload_id(ms);
    let asset_id = ids::new_asset_id(ms);
    let r2_key = asset::r2_key(
        &target.vault_id,
        upload.partition.as_str(),
        upload.collection.as_str(),
        upload.channel.as_str(),
        &asset_id,
        upload.filename.as_str(),
    );
    let validity = Validity {
        signed_at: Clock::at(ms),
        expires_in: UPLOAD_TTL,
    };
    let presigned = deps
        .blobs
        .presign_put(&r2_key, &upload.mime_type, validity)
        .await?;
    let (url, headers, token_hash) = match presigned {
        // The signed headers: the content type, and `if-none-match: *` on R2.
        Some(presigned) => (presigned.url, presigned.headers, None),
        None => {
            let (token, hash) = new_token();
            let url = format!(
                "{}/api/v1/vaults/{}/uploads/{upload_id}/content?token={token}",
                shared::http::origin(&req),
                target.vault_id
            );
            let headers = vec![("content-type".to_owned(), upload.mime_type.clone())];
            (url, headers, Some(hash))
        }
    };

    let name = [
        upload.partition.as_str(),
        upload.collection.as_str(),
        upload.channel.as_str(),
        upload.filename.as_str(),
    ];
    let mut taken = vec![Value::from(target.vault_id.as_str())];
    taken.extend(name.iter().map(|s| Value::from(*s)));
    let mut insert = vec![
        Value::from(upload_id.as_str()),
        target.vault_id.as_str().into(),
        asset_id.as_str().into(),
    ];
    insert.extend(name.iter().map(|s| Value::from(*s)));
    insert.extend([
        r2_key.as_str().into(),
        Value::Integer(upload.size as i64),
        upload.mime_type.as_str().into(),
        upload.metadata.as_json().into(),
        upload.tags.to_json().into(),
        Value::from(token_hash),
        clock::format_ms(ms).into(),
        clock::format_ms(expires_ms).into(),
        credential.hash_param(),
    ]);
    let started = vec![
        Value::from(upload_id.as_str()),
        target.vault_id.as_str().into(),
    ];
    let (key, taken, (), started) = batch::run(
        &*deps.db,
        (
            credential.lookup(),
            Query::new(Stmt::new(TAKEN, taken), batch::any_row),
            Query::new(Stmt::new(INSERT, insert), batch::ignore),
            Query::new(Stmt::new(STARTED, started), batch::any_row),
        ),
    )
    .await?;
    key.check(&target.vault_id, Access::Write)?;
    if !started {
        // The name is taken; or the guard refused, the key revoked between lookup and insert.
        return Err(if taken {
            ApiError::Conflict
        } else {
            ApiError::Unauthorized
        });
    }
    json_response(
        StatusCode::CREATED,
        &json!({
            "upload_id": upload_id,
            "method": "PUT",
            "url": url,
            "headers": headers
                .into_iter()
                .map(|(name, value)| (name, serde_json::Value::String(value)))
                .collect::<serde_json::Map<_, _>>(),
            "expires_at": clock::format_ms(expires_ms),
        }),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(body: Json) -> Result<NewUpload, ApiError> {
        NewUpload::parse(Some("application/json"), body.to_string().as_bytes())
    }

    fn valid() -> Json {
        json!({"partition":"p","collection":"c","channel":"ch","filename":"a.png","size":10})
    }

    #[test]
    fn defaults_come_from_the_filename() {
        let upload = parse(valid()).unwrap();
        assert_eq!(upload.mime_type, "image/png");
        assert_eq!(upload.metadata, Metadata::empty());
        let mut body = valid();
        body["filename"] = json!("README");
        assert_eq!(parse(body).unwrap().mime_type, "application/octet-stream");
        let mut body = valid();
        body["mime_type"] = json!("Text/Plain");
        assert_eq!(parse(body).unwrap().mime_type, "text/plain");
    }

    #[test]
    fn every_member_is_checked() {
        let field_of = |err: ApiError| match err {
            ApiError::InvalidParams(message) => message,
            other => panic!("{other:?}"),
        };
        for (member, value, named) in [
            ("partition", json!("Bad"), "partition"),
            ("channel", json!(3), "channel"),
            ("filename", json!("a/b"), "filename"),
            ("size", json!(-1), "size"),
            ("size", json!(1.5), "size"),
            ("size", json!("10"), "size"),
            ("mime_type", json!("text/plain; charset=utf-8"), "mime_type"),
            ("metadata", json!("{}"), "metadata"),
            ("tags", json!("[]"), "tags"),
            ("extra", json!(1), "extra"),
        ] {
            let mut body = valid();
            body[member] = value;
            let message = field_of(parse(body).unwrap_err());
            assert!(message.starts_with(named), "{member}: {message}");
        }
        let mut body = valid();
        body.as_object_mut().unwrap().remove("size");
        assert!(field_of(parse(body).unwrap_err()).starts_with("size: is required"));
        assert!(matches!(
            NewUpload::parse(None, valid().to_string().as_bytes()),
            Err(ApiError::InvalidParams(_))
        ));
    }

    #[test]
    fn sizes_over_the_limit_are_413() {
        let mut body = valid();
        body["size"] = json!(MAX_FILE_BYTES);
        assert!(parse(body.clone()).is_ok());
        body["size"] = json!(MAX_FILE_BYTES + 1);
        assert!(matches!(parse(body), Err(ApiError::PayloadTooLarge(_))));
    }
}
