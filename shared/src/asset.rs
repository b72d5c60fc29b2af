//! The asset record (docs/API.md#the-asset-record), as stored and as returned.

use crate::ApiError;
use crate::batch::Query;
use crate::db::{Cell, Row, Stmt};
use serde::{Deserialize, Serialize};
use std::sync::Arc;

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

/// The column names of [`COLUMNS`], in order.
const NAMES: [&str; 15] = [
    "id",
    "vault_id",
    "partition",
    "collection",
    "channel",
    "filename",
    "r2_key",
    "size",
    "mime_type",
    "width",
    "height",
    "metadata",
    "tags",
    "created_at",
    "updated_at",
];

impl Asset {
    /// The asset in a row selected (or returned) as [`COLUMNS`]: each value taken by position
    /// (the columns are matched to the fields by name once) and each text moved out of the row.
    pub fn from_row(row: Row) -> Result<Self, ApiError> {
        let order = order_of(row.columns())?;
        Self::from_values(row.into_values(), &order)
    }

    /// The first row of a statement's result, if any.
    pub fn first(rows: Vec<Row>) -> Result<Option<Self>, ApiError> {
        rows.into_iter().next().map(Self::from_row).transpose()
    }

    /// Every row of a statement's result. The rows of one result share their column names, so
    /// those are matched to the fields once.
    pub fn all(rows: Vec<Row>) -> Result<Vec<Self>, ApiError> {
        let mut known: Option<(Arc<[String]>, [usize; NAMES.len()])> = None;
        let mut assets = Vec::with_capacity(rows.len());
        for row in rows {
            let order = match &known {
                Some((columns, order)) if Arc::ptr_eq(columns, row.columns()) => *order,
                _ => {
                    let order = order_of(row.columns())?;
                    known = Some((row.columns().clone(), order));
                    order
                }
            };
            assets.push(Self::from_values(row.into_values(), &order)?);
        }
        Ok(assets)
    }

    /// `order[i]` is where the value of field `i` (in [`COLUMNS`] order) is in `values`.
    fn from_values(mut values: Vec<Cell>, order: &[usize; NAMES.len()]) -> Result<Self, ApiError> {
        let mut field = 0;
        let mut next = || {
            let value = values
                .get_mut(order[field])
                .map(std::mem::take)
                .unwrap_or_default();
            field += 1;
            (value, NAMES[field - 1])
        };
        Ok(Asset {
            id: text(next())?,
            vault_id: text(next())?,
            partition: text(next())?,
            collection: text(next())?,
            channel: text(next())?,
            filename: text(next())?,
            r2_key: text(next())?,
            size: size(next())?,
            mime_type: text(next())?,
            width: dimension(next())?,
            height: dimension(next())?,
            metadata: text(next())?,
            tags: text(next())?,
            created_at: text(next())?,
            updated_at: text(next())?,
        })
    }
}

/// Where each field's column is in a result with `columns`: exactly the columns of [`COLUMNS`],
/// in any order (D1 sends a row as a JSON object, and JSON does not promise member order).
fn order_of(columns: &[String]) -> Result<[usize; NAMES.len()], ApiError> {
    let mut order = [0; NAMES.len()];
    if columns.len() != NAMES.len() {
        return Err(bad_row(format_args!("columns {columns:?}")));
    }
    for (slot, name) in order.iter_mut().zip(NAMES) {
        *slot = columns
            .iter()
            .position(|c| c == name)
            .ok_or_else(|| bad_row(format_args!("no column {name} in {columns:?}")))?;
    }
    Ok(order)
}

fn bad_row(what: impl std::fmt::Display) -> ApiError {
    ApiError::internal(format!("asset row does not decode: {what}"))
}

fn text((cell, column): (Cell, &str)) -> Result<String, ApiError> {
    match cell {
        Cell::Text(text) => Ok(text),
        other => Err(bad_row(format_args!("{column} is {other}, not text"))),
    }
}

fn size((cell, column): (Cell, &str)) -> Result<u64, ApiError> {
    cell.as_u64()
        .ok_or_else(|| bad_row(format_args!("{column} is {cell}, not a size")))
}

fn dimension((cell, column): (Cell, &str)) -> Result<Option<u32>, ApiError> {
    match cell {
        Cell::Null => Ok(None),
        Cell::Integer(n) => u32::try_from(n)
            .map(Some)
            .map_err(|_| bad_row(format_args!("{column} is {n}, not a pixel count"))),
        other => Err(bad_row(format_args!(
            "{column} is {other}, not a pixel count"
        ))),
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

/// A statement that selects (or returns) at most one record as [`COLUMNS`].
pub fn one(stmt: Stmt) -> Query<Option<Asset>> {
    Query::new(stmt, |result| Asset::first(result.rows))
}

/// A statement that selects records as [`COLUMNS`].
pub fn many(stmt: Stmt) -> Query<Vec<Asset>> {
    Query::new(stmt, |result| Asset::all(result.rows))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_column_names_are_the_columns_literal() {
        let listed: Vec<&str> = COLUMNS.split(',').map(str::trim).collect();
        assert_eq!(listed, NAMES);
    }

    fn row(values: Vec<Cell>) -> Row {
        Row::from_pairs(NAMES.into_iter().zip(values))
    }

    fn values() -> Vec<Cell> {
        let mut values: Vec<Cell> = NAMES.iter().map(|n| Cell::from(*n)).collect();
        values[7] = Cell::Integer(42);
        values[9] = Cell::Integer(3);
        values[10] = Cell::Null;
        values
    }

    #[test]
    fn a_row_decodes_by_position() {
        let asset = Asset::from_row(row(values())).unwrap();
        assert_eq!(asset.id, "id");
        assert_eq!(asset.r2_key, "r2_key");
        assert_eq!(asset.size, 42);
        assert_eq!((asset.width, asset.height), (Some(3), None));
        assert_eq!(asset.updated_at, "updated_at");
        let rows = vec![row(values()), row(values())];
        assert_eq!(Asset::all(rows).unwrap().len(), 2);
        // In another column order (as a JSON object may come), by name.
        let mut reversed: Vec<(&str, Cell)> = NAMES.into_iter().zip(values()).collect();
        reversed.reverse();
        let reversed = Row::from_pairs(reversed);
        assert_eq!(Asset::from_row(reversed.clone()).unwrap(), asset);
        assert_eq!(
            Asset::all(vec![reversed.clone(), reversed]).unwrap()[1],
            asset
        );
    }

    #[test]
    fn a_row_of_other_columns_or_types_is_an_internal_error() {
        let mut renamed: Vec<(&str, Cell)> = NAMES.into_iter().zip(values()).collect();
        renamed[2].0 = "partitions";
        let renamed = Row::from_pairs(renamed);
        let mut negative = values();
        negative[7] = Cell::Integer(-1);
        let mut huge = values();
        huge[9] = Cell::Integer(1 << 40);
        let mut number = values();
        number[0] = Cell::Integer(1);
        let short = Row::from_pairs(NAMES.into_iter().zip(values()).take(14));
        for bad in [renamed, row(negative), row(huge), row(number), short] {
            assert!(
                matches!(Asset::from_row(bad.clone()), Err(ApiError::Internal(_))),
                "{bad:?}"
            );
            assert!(Asset::all(vec![bad]).is_err());
        }
    }

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
