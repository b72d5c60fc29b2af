//! The asset record of API.md, as stored and as returned.

use crate::ApiError;
use crate::db::Row;
use serde::{Deserialize, Serialize};

/// One asset. `metadata` and `tags` are JSON text, exactly as the API returns them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Asset {
    pub id: String,
    pub vault_id: String,
    pub partition: String,
    pub collection: String,
    pub channel: String,
    pub filename: String,
    pub r2_key: String,
    pub size: u64,
    pub mime_type: String,
    pub width: Option<u32>,
    pub height: Option<u32>,
    pub metadata: String,
    pub tags: String,
    pub created_at: String,
    pub updated_at: String,
}

/// The columns of [`Asset`], in order, as a literal, so that handlers can build their SQL with
/// `concat!` at compile time.
#[macro_export]
macro_rules! asset_columns {
    () => {
        "id, vault_id, partition, collection, channel, filename, r2_key, size, mime_type, width, \
         height, metadata, tags, created_at, updated_at"
    };
}

/// The columns of [`Asset`], in order, for SELECT and RETURNING clauses.
pub const COLUMNS: &str = asset_columns!();

impl Asset {
    pub fn from_row(row: Row) -> Result<Self, ApiError> {
        serde_json::from_value(serde_json::Value::Object(row))
            .map_err(|e| ApiError::internal(format!("asset row does not decode: {e}")))
    }

    /// The first row of a statement's result, if any.
    pub fn first(rows: Vec<Row>) -> Result<Option<Self>, ApiError> {
        rows.into_iter().next().map(Self::from_row).transpose()
    }
}

/// The object key of an asset: `{vault_id}/{partition}/{collection}/{channel}/{asset_id}_{filename}`.
/// Every part is validated before it gets here, so the key always stays under `{vault_id}/`.
pub fn r2_key(
    vault_id: &str,
    partition: &str,
    collection: &str,
    channel: &str,
    asset_id: &str,
    filename: &str,
) -> String {
    format!("{vault_id}/{partition}/{collection}/{channel}/{asset_id}_{filename}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn r2_key_format() {
        assert_eq!(
            r2_key(
                "vault_1",
                "marketing",
                "blog",
                "hero-images",
                "asset_2",
                "photo.jpg"
            ),
            "vault_1/marketing/blog/hero-images/asset_2_photo.jpg"
        );
    }
}
