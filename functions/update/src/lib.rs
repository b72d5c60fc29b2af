//! `PATCH /api/v1/vaults/{vaultId}/assets/{assetId}`: merge metadata (RFC 7396), replace tags.
//!
//! The merge happens in the UPDATE itself with SQLite's `json_patch()`, which implements RFC 7396,
//! so concurrent PATCHes touching different keys all survive and there is no read-modify-write.
//! One batch: the key lookup, the guarded UPDATE … RETURNING, and (when metadata is patched) a
//! probe that tells "no such asset" from "the merged metadata would be too large".
//!
//! Contract: docs/API.md#update, and its merge rules (docs/API.md#merge-rules).

use lambda_http::{Body, Request, Response, http::StatusCode};
use shared::asset;
use shared::auth::Access;
use shared::batch::{self, Query};
use shared::db::{Stmt, Value};
use shared::http::{begin, body_bytes, content_type, json_response, serve};
use shared::validate::{self, MAX_METADATA_BYTES, Metadata, Tags};
use shared::{ApiError, Deps, clock, routes};

pub async fn handle(deps: &Deps, req: Request) -> Result<Response<Body>, lambda_http::Error> {
    serve("update", req, |req| run(deps, req)).await
}

/// A PATCH body, validated: at least one of the two.
#[derive(Debug, PartialEq)]
pub struct Patch {
    pub metadata: Option<Metadata>,
    pub tags: Option<Tags>,
}

impl Patch {
    pub fn parse(content_type: Option<&str>, body: &[u8]) -> Result<Self, ApiError> {
        let mut members = validate::json_object(
            content_type,
            &["application/merge-patch+json"],
            body,
            &["metadata", "tags"],
        )?;
        let metadata = members
            .remove("metadata")
            .map(Metadata::from_value)
            .transpose()?;
        let tags = members.remove("tags").map(Tags::from_value).transpose()?;
        if metadata.is_none() && tags.is_none() {
            return Err(ApiError::invalid(
                "body",
                "must contain metadata, tags, or both",
            ));
        }
        Ok(Patch { metadata, tags })
    }
}

// ?1 metadata patch (or NULL), ?2 tags (or NULL), ?3 now, ?4 asset id, ?5 vault id, ?6 key hash.
// `updated_at` always moves forward: to now, or 1 ms past its stored value if the clock says
// otherwise. The merged metadata must stay within the same limit as an upload's, in bytes (SQLite's
// length() of text counts characters; of a blob, bytes).
const UPDATE: &str = concat!(
    "UPDATE assets SET ",
    "metadata = CASE WHEN ?1 IS NULL THEN metadata ELSE json_patch(metadata, ?1) END, ",
    "tags = COALESCE(?2, tags), ",
    "updated_at = CASE WHEN ?3 > updated_at THEN ?3 ",
    "ELSE strftime('%Y-%m-%dT%H:%M:%fZ', updated_at, '+0.001 seconds') END ",
    "WHERE id = ?4 AND vault_id = ?5 ",
    "AND (?1 IS NULL OR length(CAST(json_patch(metadata, ?1) AS BLOB)) <= 16384) ",
    "AND ",
    shared::write_guard!("?6", "?5"),
    " RETURNING ",
    shared::asset_columns!()
);

const MERGED_SIZE: &str =
    "SELECT length(json_patch(metadata, ?1)) AS merged FROM assets WHERE id = ?2 AND vault_id = ?3";

async fn run(deps: &Deps, req: Request) -> Result<Response<Body>, ApiError> {
    let (target, credential) = begin(&req, routes::route_of("update"))?;
    // A bad body is reported only after the key is checked: authentication comes first.
    let patch = Patch::parse(content_type(&req).as_deref(), body_bytes(&req));
    let asset_id = target.asset_id.unwrap_or_default();
    let change = patch.as_ref().ok().map(|patch| {
        let metadata = Value::from(patch.metadata.as_ref().map(|m| m.as_json()));
        let update = asset::one(Stmt::new(
            UPDATE,
            vec![
                metadata.clone(),
                Value::from(patch.tags.as_ref().map(Tags::to_json)),
                clock::format_ms(deps.clock.now_ms()).into(),
                asset_id.as_str().into(),
                target.vault_id.as_str().into(),
                credential.hash_param(),
            ],
        ));
        // Run only when metadata is merged: a row here means the asset exists, so an update that
        // changed nothing was refused for the merged size.
        let merged_size = patch.metadata.is_some().then(|| {
            Query::new(
                Stmt::new(
                    MERGED_SIZE,
                    vec![
                        metadata,
                        asset_id.as_str().into(),
                        target.vault_id.as_str().into(),
                    ],
                ),
                batch::any_row,
            )
        });
        (update, merged_size)
    });
    let (key, change) = batch::run(&*deps.db, (credential.lookup(), change)).await?;
    key.check(&target.vault_id, Access::Write)?;
    patch?;
    let (updated, exists) =
        change.ok_or_else(|| ApiError::internal("a valid patch is sent with its update"))?;
    if let Some(asset) = updated {
        return json_response(StatusCode::OK, &asset);
    }
    // Nothing was updated: either there is no such asset, or the merge would exceed the limit.
    if exists == Some(true) {
        return Err(ApiError::invalid(
            "metadata",
            format_args!(
                "the merged metadata must be at most {MAX_METADATA_BYTES} bytes when serialised"
            ),
        ));
    }
    Err(ApiError::AssetNotFound)
}

#[cfg(test)]
mod tests {
    use super::*;

    const JSON: Option<&str> = Some("application/json");

    #[test]
    fn a_patch_needs_metadata_or_tags_and_nothing_else() {
        assert!(Patch::parse(JSON, br#"{"metadata":{"a":1}}"#).is_ok());
        assert!(Patch::parse(JSON, br#"{"tags":["a"]}"#).is_ok());
        for bad in [
            &br#"{}"#[..],
            br#"{"metadata":{},"x":1}"#,
            br#"[]"#,
            b"null",
            b"",
            br#"{"metadata":[]}"#,
            br#"{"tags":"a"}"#,
        ] {
            assert!(
                matches!(Patch::parse(JSON, bad), Err(ApiError::InvalidParams(_))),
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    #[test]
    fn a_body_over_the_limit_is_refused_before_parsing() {
        let mut big = br#"{"tags":[""#.to_vec();
        big.resize(validate::MAX_JSON_BODY_BYTES + 1, b'x');
        let err = Patch::parse(JSON, &big).unwrap_err();
        assert!(
            err.to_string().starts_with("body: must be at most"),
            "{err}"
        );
    }

    #[test]
    fn a_patch_must_be_json() {
        assert!(Patch::parse(None, br#"{"tags":[]}"#).is_err());
        assert!(Patch::parse(Some("text/plain"), br#"{"tags":[]}"#).is_err());
        assert!(Patch::parse(Some("application/merge-patch+json"), br#"{"tags":[]}"#).is_ok());
    }
}
