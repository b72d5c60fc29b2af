//! Direct uploads (`POST …/uploads`, the PUT of the bytes, `POST …/uploads/{id}/complete`): the
//! row each one keeps in `uploads` (migration 0003), how long its URL lives, and the token that
//! stands in for a presigned URL's signature on the embedded default.
//!
//! A row fixes everything the asset record will say except what the bytes tell (MIME type,
//! pixel size): the asset id and object key are chosen when the upload starts, so the PUT lands
//! on the object the record will name, and `complete` moves no bytes.
//!
//! Contract: docs/API.md#direct-uploads.

use crate::ApiError;
use crate::auth;
use crate::batch::Query;
use crate::db::{Row, Stmt};
use std::time::Duration;

/// How long a direct upload's URL (and the upload) stays valid.
pub const UPLOAD_TTL: Duration = Duration::from_secs(15 * 60);
/// How long a content URL (a presigned GET) stays valid.
pub const DOWNLOAD_TTL: Duration = Duration::from_secs(5 * 60);
/// How long `imgbt gc` waits after an upload expired before it removes it: a PUT that started
/// just before the URL expired may still be landing.
pub const GC_GRACE: Duration = Duration::from_secs(60 * 60);
/// How much of an object `complete` reads to find its MIME type and pixel size. Image headers
/// sit in the first bytes; a JPEG's may follow up to a few 64 KiB metadata segments.
pub const SNIFF_BYTES: u64 = 256 * 1024;

/// The columns of [`UploadRow`], for SELECTs.
pub const COLUMNS: &str = "id, vault_id, asset_id, partition, collection, channel, filename, \
    r2_key, size, mime_type, metadata, tags, token_hash, created_at, expires_at, completed_at";

/// The statement that reads upload `upload_id` of vault `vault_id` (no row: not found, which
/// includes another vault's upload).
pub fn select(upload_id: &str, vault_id: &str) -> Query<Option<UploadRow>> {
    Query::new(
        Stmt::new(
            format!("SELECT {COLUMNS} FROM uploads WHERE id = ?1 AND vault_id = ?2"),
            vec![upload_id.into(), vault_id.into()],
        ),
        |result| UploadRow::first(result.rows),
    )
}

/// One row of `uploads`.
#[derive(Debug, Clone, PartialEq)]
pub struct UploadRow {
    pub id: String,
    pub vault_id: String,
    pub asset_id: String,
    pub partition: String,
    pub collection: String,
    pub channel: String,
    pub filename: String,
    pub r2_key: String,
    pub size: u64,
    /// The type the client declared (or the one its filename suggests): the PUT's signed
    /// `content-type`, and the declared type when `complete` sniffs the bytes.
    pub mime_type: String,
    pub metadata: String,
    pub tags: String,
    /// SHA-256 of the token of the embedded default's receive URL; `NULL` on R2.
    pub token_hash: Option<String>,
    pub created_at: String,
    pub expires_at: String,
    pub completed_at: Option<String>,
}

impl UploadRow {
    pub fn from_row(row: Row) -> Result<Self, ApiError> {
        let bad = |column: &str| ApiError::internal(format!("upload row: bad or missing {column}"));
        let text = |column: &str| {
            row.get(column)
                .and_then(|cell| cell.as_str())
                .map(str::to_owned)
                .ok_or_else(|| bad(column))
        };
        let optional = |column: &str| match row.get(column) {
            Some(cell) if cell.is_null() => Ok(None),
            Some(cell) => cell
                .as_str()
                .map(|text| Some(text.to_owned()))
                .ok_or_else(|| bad(column)),
            None => Err(bad(column)),
        };
        Ok(UploadRow {
            id: text("id")?,
            vault_id: text("vault_id")?,
            asset_id: text("asset_id")?,
            partition: text("partition")?,
            collection: text("collection")?,
            channel: text("channel")?,
            filename: text("filename")?,
            r2_key: text("r2_key")?,
            size: row
                .get("size")
                .and_then(|cell| cell.as_u64())
                .ok_or_else(|| bad("size"))?,
            mime_type: text("mime_type")?,
            metadata: text("metadata")?,
            tags: text("tags")?,
            token_hash: optional("token_hash")?,
            created_at: text("created_at")?,
            expires_at: text("expires_at")?,
            completed_at: optional("completed_at")?,
        })
    }

    /// The first row of a statement's result, if any.
    pub fn first(rows: Vec<Row>) -> Result<Option<Self>, ApiError> {
        rows.into_iter().next().map(Self::from_row).transpose()
    }

    /// True once `now` (API time text) is past the upload's expiry.
    pub fn is_expired(&self, now: &str) -> bool {
        now >= self.expires_at.as_str()
    }
}

/// A new token for a receive URL, and the hash that is stored. 192 random bits, as keys have.
pub fn new_token() -> (String, String) {
    let mut bytes = [0u8; 24];
    crate::random::fill(&mut bytes);
    let token: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    let hash = auth::hash_key(&token);
    (token, hash)
}

/// True when `token` is the one whose hash is `stored`.
pub fn token_matches(token: &str, stored: Option<&str>) -> bool {
    let Some(stored) = stored else {
        return false;
    };
    // Both sides are digests of the same length: compare without stopping at the first difference.
    let presented = auth::hash_key(token);
    presented.len() == stored.len()
        && presented
            .bytes()
            .zip(stored.bytes())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_random_and_only_their_hash_matches() {
        let (token, hash) = new_token();
        let (other, _) = new_token();
        assert_eq!(token.len(), 48);
        assert_ne!(token, other);
        assert_ne!(token, hash);
        assert!(token_matches(&token, Some(&hash)));
        assert!(!token_matches(&other, Some(&hash)));
        assert!(!token_matches(&hash, Some(&hash)));
        assert!(!token_matches(&token, None));
    }
}
