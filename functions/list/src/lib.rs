//! `GET /api/v1/vaults/{vaultId}/assets`: a page of a vault's assets, newest first.
//!
//! Keyset pagination on `(created_at, id)`: the cursor is the position of the page's last asset, so
//! a page at any depth is one index range scan, and assets uploaded during a walk (which sort
//! before the cursor) never shift later pages. One batch: the key lookup and the page.
//!
//! Contract: docs/API.md#list (filters, limit, cursor, order and paging).

use lambda_http::{Body, Request, Response, http::StatusCode};
use serde::Serialize;
use shared::asset::{self, Asset};
use shared::auth::Access;
use shared::batch;
use shared::cursor::Cursor;
use shared::db::{Stmt, Value};
use shared::http::{JSON, begin, query_pairs, serve};
use shared::validate::{Limit, PathSegment};
use shared::{ApiError, Deps, routes};

pub async fn handle(deps: &Deps, req: Request) -> Result<Response<Body>, lambda_http::Error> {
    serve("list", req, |req| run(deps, req)).await
}

#[derive(Debug, Serialize)]
struct Page {
    data: Vec<Asset>,
    cursor: Option<String>,
    has_more: bool,
}

/// The query of a list request, validated.
#[derive(Debug, Default)]
pub struct ListQuery {
    pub partition: Option<PathSegment>,
    pub collection: Option<PathSegment>,
    pub channel: Option<PathSegment>,
    pub limit: Option<Limit>,
    pub cursor: Option<Cursor>,
}

impl ListQuery {
    /// Each parameter at most once; an unknown parameter is refused rather than silently ignored,
    /// so that a misspelt filter cannot return the whole vault.
    pub fn parse(pairs: &[(String, String)]) -> Result<Self, ApiError> {
        let mut query = ListQuery::default();
        for (i, (name, value)) in pairs.iter().enumerate() {
            if pairs[..i].iter().any(|(seen, _)| seen == name) {
                return Err(ApiError::invalid(name, "must be given at most once"));
            }
            match name.as_str() {
                "partition" => query.partition = Some(PathSegment::parse("partition", value)?),
                "collection" => query.collection = Some(PathSegment::parse("collection", value)?),
                "channel" => query.channel = Some(PathSegment::parse("channel", value)?),
                "limit" => query.limit = Some(Limit::parse(Some(value))?),
                "cursor" => query.cursor = Some(Cursor::decode(value)?),
                other => {
                    let shown: String = other.chars().take(64).collect();
                    return Err(ApiError::InvalidParams(format!(
                        "{shown}: unknown query parameter (known: partition, collection, channel, limit, cursor)"
                    )));
                }
            }
        }
        Ok(query)
    }

    fn limit(&self) -> usize {
        self.limit.unwrap_or(Limit::DEFAULT).get()
    }

    /// The page's SELECT: one more row than the limit, to learn whether there is a next page.
    fn statement(&self, vault_id: &str) -> Stmt {
        let mut sql = String::from(concat!(
            "SELECT ",
            shared::asset_columns!(),
            " FROM assets WHERE vault_id = ?1"
        ));
        let mut params = vec![Value::from(vault_id)];
        let filters = [
            ("partition", &self.partition),
            ("collection", &self.collection),
            ("channel", &self.channel),
        ];
        for (column, value) in filters {
            if let Some(value) = value {
                params.push(value.as_str().into());
                sql.push_str(&format!(" AND {column} = ?{}", params.len()));
            }
        }
        if let Some(cursor) = &self.cursor {
            params.push(cursor.created_at.as_str().into());
            params.push(cursor.id.as_str().into());
            let (t, id) = (params.len() - 1, params.len());
            sql.push_str(&format!(" AND (created_at, id) < (?{t}, ?{id})"));
        }
        params.push(Value::Integer(self.limit() as i64 + 1));
        sql.push_str(&format!(
            " ORDER BY created_at DESC, id DESC LIMIT ?{}",
            params.len()
        ));
        Stmt::new(sql, params)
    }
}

async fn run(deps: &Deps, req: Request) -> Result<Response<Body>, ApiError> {
    let (target, credential) = begin(&req, routes::route_of("list"))?;
    // A bad query is reported only after the key is checked: authentication comes first.
    let query = ListQuery::parse(&query_pairs(&req));
    let page = query
        .as_ref()
        .ok()
        .map(|query| asset::many(query.statement(&target.vault_id)));
    let (key, page) = batch::run(&*deps.db, (credential.lookup(), page)).await?;
    key.check(&target.vault_id, Access::Read)?;
    let query = query?;
    let mut data = page.ok_or_else(|| ApiError::internal("a valid query selects a page"))?;
    let has_more = data.len() > query.limit();
    data.truncate(query.limit());
    let cursor = match data.last() {
        Some(last) if has_more => Some(
            Cursor {
                created_at: last.created_at.clone(),
                id: last.id.clone(),
            }
            .encode(),
        ),
        _ => None,
    };
    page_response(&Page {
        data,
        cursor,
        has_more,
    })
}

/// The page as JSON, serialized once (straight from the typed assets, no `serde_json::Value`) into
/// a buffer sized for it up front, so it never regrows and copies.
fn page_response(page: &Page) -> Result<Response<Body>, ApiError> {
    let mut json = Vec::with_capacity(json_size_hint(page));
    serde_json::to_writer(&mut json, page).map_err(ApiError::internal)?;
    let json = String::from_utf8(json).map_err(ApiError::internal)?;
    Response::builder()
        .status(StatusCode::OK)
        .header(lambda_http::http::header::CONTENT_TYPE, JSON)
        .body(Body::Text(json))
        .map_err(ApiError::internal)
}

/// About the page's JSON size: each asset's texts, with room for its member names, numbers and
/// a few escapes (metadata and tags are JSON inside a JSON string: every quote in them is escaped).
fn json_size_hint(page: &Page) -> usize {
    const PER_ASSET: usize = 256;
    let texts: usize = page
        .data
        .iter()
        .map(|a| {
            a.id.len()
                + a.vault_id.len()
                + a.partition.len()
                + a.collection.len()
                + a.channel.len()
                + a.filename.len()
                + a.r2_key.len()
                + a.mime_type.len()
                + a.metadata.len() * 5 / 4
                + a.tags.len() * 5 / 4
                + a.created_at.len()
                + a.updated_at.len()
        })
        .sum();
    texts + PER_ASSET * page.data.len() + 128
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(items: &[(&str, &str)]) -> Vec<(String, String)> {
        items
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn repeated_and_unknown_parameters_are_refused() {
        assert!(ListQuery::parse(&pairs(&[("limit", "5"), ("limit", "6")])).is_err());
        assert!(ListQuery::parse(&pairs(&[("chanel", "x")])).is_err());
        assert!(
            ListQuery::parse(&pairs(&[
                ("partition", "a"),
                ("channel", "b"),
                ("limit", "7")
            ]))
            .is_ok()
        );
    }

    #[test]
    fn the_size_hint_covers_a_page_of_typical_assets() {
        let asset = |i: usize| {
            Asset {
            id: format!("asset_01KB2Y6ZJ7Q0W8N3V5T9XG{i:04}"),
            vault_id: "vault_01KB2Y6ZJ7Q0W8N3V5T9XGABCD".into(),
            partition: "marketing".into(),
            collection: "blog".into(),
            channel: "hero-images".into(),
            filename: "hero.jpg".into(),
            r2_key: "vault_01KB2Y6ZJ7Q0W8N3V5T9XGABCD/marketing/blog/hero-images/asset_01KB2Y6ZJ7Q0W8N3V5T9XG0000_hero.jpg".into(),
            size: 245_760,
            mime_type: "image/jpeg".into(),
            width: Some(1920),
            height: Some(1080),
            metadata: r#"{"alt":"Hero","credit":"Ana"}"#.into(),
            tags: r#"["hero","blog"]"#.into(),
            created_at: "2026-01-15T10:30:00.123Z".into(),
            updated_at: "2026-01-15T10:30:00.123Z".into(),
        }
        };
        let page = Page {
            data: (0..50).map(asset).collect(),
            cursor: Some("x".repeat(100)),
            has_more: true,
        };
        let written = serde_json::to_vec(&page).unwrap().len();
        let hint = json_size_hint(&page);
        assert!(hint >= written, "{hint} < {written}");
        assert!(hint < written * 2, "{hint} is far over {written}");
        let response = page_response(&page).unwrap();
        let Body::Text(text) = response.body() else {
            panic!("expected a text body");
        };
        let back: serde_json::Value = serde_json::from_str(text).unwrap();
        assert_eq!(back["data"].as_array().unwrap().len(), 50);
        assert_eq!(back["has_more"], true);
        assert_eq!(
            response.headers()[lambda_http::http::header::CONTENT_TYPE],
            JSON
        );
    }

    #[test]
    fn statement_binds_only_present_filters() {
        let query = ListQuery::parse(&pairs(&[("channel", "c"), ("limit", "7")])).unwrap();
        let stmt = query.statement("vault_x");
        assert!(stmt.sql.contains("channel = ?2"), "{}", stmt.sql);
        assert!(!stmt.sql.contains("partition ="), "{}", stmt.sql);
        assert_eq!(
            stmt.params,
            vec![Value::from("vault_x"), Value::from("c"), Value::Integer(8)]
        );
    }
}
