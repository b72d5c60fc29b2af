//! Cloudflare D1 over its REST API: `POST {base}/accounts/{account}/d1/database/{db}/query`.
//!
//! A batch is sent as one request, `{"batch":[{"sql","params"},…]}`, which D1 runs atomically and
//! answers with one result per statement. The API token is only ever placed in the
//! `Authorization` header: no log line or error carries it.
//!
//! # When a batch is sent again
//!
//! The client resends a batch on its own (up to [`Backoff::D1`]'s attempts, with its waits) after:
//!
//! - a connection that never reached D1 (nothing was sent);
//! - 429: D1 refused for rate, before running anything;
//! - 5xx, and a connection dropped before the answer came: the batch may have run and committed
//!   (a gateway or network failure after commit looks exactly like this), or not;
//!
//! and never after another 4xx (D1 refused the batch, nothing ran) nor after its own timeout (the
//! request's time is spent; a Lambda has no time left for another 20 s).
//!
//! Resending a batch that may have committed is safe only because **every batch imgbt sends is
//! idempotent**: running it twice leaves the store as running it once does, and its results let
//! the caller tell "done by my own earlier attempt" from "refused", by reading its rows by their
//! id (never by the text of an error). Writes are `INSERT … ON CONFLICT DO NOTHING` followed by a
//! read of the row by its id, `DELETE … WHERE`, and `UPDATE`s whose new values do not depend on
//! how many times they ran. Each write's proof is in tests/FAULTS.md (both after-commit faults,
//! on the D1 test server and on the D1 gateway).
//!
//! When every attempt failed and any of them may have run, the error is [`DbError::Uncertain`]:
//! the caller must not undo what the batch would have done (an upload keeps its object, which gc
//! removes an hour later if no record names it).

use super::{Cell, Db, DbError, Row, Stmt, StmtResult, Value};
use crate::BoxFuture;
use crate::backoff::Backoff;
use crate::secret::Secret;
use reqwest::StatusCode;
use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

/// D1's documented limits, checked before a batch is sent.
pub const MAX_BOUND_PARAMS: usize = 100;
pub const MAX_STATEMENT_BYTES: usize = 100_000;

pub struct D1Db {
    client: reqwest::Client,
    url: String,
    token: Secret,
    retry: Backoff,
}

#[derive(Serialize)]
struct Request<'a> {
    batch: Vec<StatementBody<'a>>,
}

#[derive(Serialize)]
struct StatementBody<'a> {
    sql: &'a str,
    params: &'a [Value],
}

impl Serialize for Value {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Value::Null => serializer.serialize_none(),
            Value::Integer(n) => serializer.serialize_i64(*n),
            Value::Text(text) => serializer.serialize_str(text),
        }
    }
}

#[derive(Deserialize)]
struct Envelope {
    #[serde(default)]
    success: bool,
    #[serde(default)]
    errors: Vec<ApiMessage>,
    #[serde(default)]
    result: Option<Vec<QueryResult>>,
}

#[derive(Deserialize)]
struct ApiMessage {
    #[serde(default)]
    code: i64,
    #[serde(default)]
    message: String,
}

#[derive(Deserialize)]
struct QueryResult {
    #[serde(default)]
    results: Rows,
    #[serde(default)]
    meta: Meta,
}

#[derive(Deserialize, Default)]
struct Meta {
    #[serde(default)]
    changes: u64,
}

impl D1Db {
    /// `base` is `https://api.cloudflare.com/client/v4` in production.
    pub fn new(
        base: &str,
        account_id: &str,
        database_id: &str,
        token: Secret,
    ) -> Result<Self, DbError> {
        let client = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(5))
            .timeout(Duration::from_secs(20))
            .pool_idle_timeout(Duration::from_secs(60))
            .build()
            .map_err(|e| DbError::Other(format!("building the D1 client: {e}")))?;
        let url = format!(
            "{}/accounts/{account_id}/d1/database/{database_id}/query",
            base.trim_end_matches('/')
        );
        Ok(D1Db {
            client,
            url,
            token,
            retry: Backoff::D1,
        })
    }

    pub fn with_retry(mut self, retry: Backoff) -> Self {
        self.retry = retry;
        self
    }

    async fn send(&self, stmts: &[Stmt]) -> Result<Vec<StmtResult>, DbError> {
        check_limits(stmts)?;
        let body = Request {
            batch: stmts
                .iter()
                .map(|s| StatementBody {
                    sql: &s.sql,
                    params: &s.params,
                })
                .collect(),
        };
        let body = serde_json::to_vec(&body).map_err(|e| DbError::Other(e.to_string()))?;
        let mut retry = 0;
        // Set once an attempt may have run: the batch's outcome is unknown from then on.
        let mut may_have_run = false;
        loop {
            let attempt = self
                .client
                .post(&self.url)
                .bearer_auth(self.token.expose())
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .body(body.clone())
                .send()
                .await;
            let (failure, retry_after) = match attempt {
                Ok(response) => {
                    let status = response.status();
                    let retry_after = response
                        .headers()
                        .get(reqwest::header::RETRY_AFTER)
                        .and_then(|v| v.to_str().ok())
                        .and_then(|v| v.trim().parse::<u64>().ok())
                        .map(Duration::from_secs);
                    match response.bytes().await {
                        Ok(text) => match classify(status, &text, stmts.len()) {
                            Outcome::Done(results) => return Ok(results),
                            Outcome::Fail(err) => return Err(err),
                            Outcome::Retry(err) => {
                                may_have_run |= status.is_server_error();
                                (err, retry_after)
                            }
                        },
                        // The answer broke off: D1 had run the batch, or not.
                        Err(e) => {
                            may_have_run = true;
                            (lost(e), None)
                        }
                    }
                }
                // Nothing reached D1.
                Err(e) if e.is_connect() => (
                    DbError::Other(format!("D1 unreachable: {}", e.without_url())),
                    None,
                ),
                // The request's time is spent; the batch may be running still.
                Err(e) if e.is_timeout() => return Err(lost(e)),
                Err(e) => {
                    may_have_run = true;
                    (lost(e), None)
                }
            };
            retry += 1;
            let give_up = if retry >= self.retry.attempts {
                true
            } else if let Some(wait) = self.retry.wait(retry, retry_after) {
                tokio::time::sleep(wait).await;
                false
            } else {
                // D1 asked for a longer pause than a request can afford: report the refusal now.
                true
            };
            if give_up {
                return Err(if may_have_run {
                    DbError::Uncertain(format!("the batch may have run: {failure}"))
                } else {
                    failure
                });
            }
        }
    }
}

impl Db for D1Db {
    fn batch(&self, stmts: Vec<Stmt>) -> BoxFuture<'_, Result<Vec<StmtResult>, DbError>> {
        Box::pin(async move { self.send(&stmts).await })
    }
}

fn check_limits(stmts: &[Stmt]) -> Result<(), DbError> {
    for stmt in stmts {
        if stmt.params.len() > MAX_BOUND_PARAMS {
            return Err(DbError::Other(format!(
                "statement binds {} parameters; D1 allows {MAX_BOUND_PARAMS}",
                stmt.params.len()
            )));
        }
        let size = stmt.sql.len()
            + stmt
                .params
                .iter()
                .map(|p| if let Value::Text(t) = p { t.len() } else { 8 })
                .sum::<usize>();
        if size > MAX_STATEMENT_BYTES {
            return Err(DbError::Other(format!(
                "statement is {size} bytes; D1 allows {MAX_STATEMENT_BYTES}"
            )));
        }
    }
    Ok(())
}

enum Outcome {
    Done(Vec<StmtResult>),
    Retry(DbError),
    Fail(DbError),
}

fn classify(status: StatusCode, body: &[u8], expected: usize) -> Outcome {
    let envelope: Option<Envelope> = serde_json::from_slice(body).ok();
    let message = envelope
        .as_ref()
        .map(|e| {
            e.errors
                .iter()
                .map(|m| format!("{} (code {})", m.message, m.code))
                .collect::<Vec<_>>()
                .join("; ")
        })
        .unwrap_or_default();
    if status == StatusCode::TOO_MANY_REQUESTS {
        return Outcome::Retry(DbError::RateLimited(format!("D1 answered 429: {message}")));
    }
    if status.is_server_error() {
        return Outcome::Retry(DbError::Other(format!("D1 answered {status}: {message}")));
    }
    if status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN {
        tracing::error!(
            status = status.as_u16(),
            "D1 refused the API token: check CLOUDFLARE_API_TOKEN and that it may edit D1"
        );
        return Outcome::Fail(DbError::Other(format!(
            "D1 refused the API token ({status})"
        )));
    }
    let Some(envelope) = envelope else {
        return Outcome::Fail(DbError::Other(format!(
            "D1 answered {status} with a body that is not its envelope"
        )));
    };
    if !status.is_success() || !envelope.success {
        if envelope
            .errors
            .iter()
            .any(|m| m.message.contains("UNIQUE constraint failed"))
        {
            return Outcome::Fail(DbError::Conflict(message));
        }
        return Outcome::Fail(DbError::Other(format!("D1 answered {status}: {message}")));
    }
    let results: Vec<StmtResult> = envelope
        .result
        .unwrap_or_default()
        .into_iter()
        .map(|r| StmtResult {
            rows: r.results.0,
            changes: r.meta.changes,
        })
        .collect();
    if results.len() != expected {
        return Outcome::Fail(DbError::Other(format!(
            "D1 returned {} results for {expected} statements",
            results.len()
        )));
    }
    Outcome::Done(results)
}

/// A statement's `results`: D1 sends each row as an object, column name to value, in the
/// statement's column order. They are read straight into positional [`Row`]s: the first row's
/// keys become the result's column names, shared by every row; each later row's keys are matched
/// against them (in order, the usual case, without allocating a key) and its values placed by
/// position. A row whose columns differ from the first row's is refused.
#[derive(Default)]
struct Rows(Vec<Row>);

impl<'de> Deserialize<'de> for Rows {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_seq(RowsVisitor)
    }
}

struct RowsVisitor;

impl<'de> Visitor<'de> for RowsVisitor {
    type Value = Rows;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an array of result rows")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Rows, A::Error> {
        let mut columns: Option<Arc<[String]>> = None;
        let mut rows = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(1024));
        while let Some(row) = seq.next_element_seed(RowSeed {
            columns: &mut columns,
        })? {
            rows.push(row);
        }
        Ok(Rows(rows))
    }
}

struct RowSeed<'a> {
    columns: &'a mut Option<Arc<[String]>>,
}

impl<'de> DeserializeSeed<'de> for RowSeed<'_> {
    type Value = Row;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Row, D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for RowSeed<'_> {
    type Value = Row;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a result row (an object of column values)")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Row, A::Error> {
        let Some(columns) = self.columns.clone() else {
            // The first row names the columns.
            let mut names: Vec<String> = Vec::new();
            let mut values = Vec::new();
            while let Some(name) = map.next_key::<String>()? {
                if names.contains(&name) {
                    return Err(de::Error::custom(format_args!(
                        "column {name} twice in a row"
                    )));
                }
                names.push(name);
                values.push(map.next_value::<Cell>()?);
            }
            let columns: Arc<[String]> = names.into();
            *self.columns = Some(columns.clone());
            return Ok(Row::new(columns, values));
        };
        let mut values: Vec<Cell> = Vec::with_capacity(columns.len());
        // Only when a row's keys come out of column order: each value in its column's slot.
        let mut slots: Option<Vec<Option<Cell>>> = None;
        while let Some(i) = map.next_key_seed(ColumnOf {
            columns: &columns,
            expected: values.len(),
        })? {
            let value = map.next_value::<Cell>()?;
            match &mut slots {
                None if i == values.len() => values.push(value),
                None => {
                    let mut placed: Vec<Option<Cell>> = values.drain(..).map(Some).collect();
                    placed.resize(columns.len(), None);
                    if placed[i].replace(value).is_some() {
                        return Err(twice(&columns[i]));
                    }
                    slots = Some(placed);
                }
                Some(placed) => {
                    if placed[i].replace(value).is_some() {
                        return Err(twice(&columns[i]));
                    }
                }
            }
        }
        if let Some(placed) = slots {
            values = Vec::with_capacity(columns.len());
            for (value, name) in placed.into_iter().zip(columns.iter()) {
                values.push(value.ok_or_else(|| missing(name))?);
            }
        } else if values.len() < columns.len() {
            return Err(missing(&columns[values.len()]));
        }
        Ok(Row::new(columns, values))
    }
}

fn twice<E: de::Error>(column: &str) -> E {
    E::custom(format_args!("column {column} twice in a row"))
}

fn missing<E: de::Error>(column: &str) -> E {
    E::custom(format_args!("a row lacks column {column}"))
}

/// A row's key, read as the index of its column, without allocating it.
struct ColumnOf<'a> {
    columns: &'a [String],
    /// Where the key is if the row is in column order.
    expected: usize,
}

impl<'de> DeserializeSeed<'de> for ColumnOf<'_> {
    type Value = usize;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<usize, D::Error> {
        deserializer.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for ColumnOf<'_> {
    type Value = usize;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a column name")
    }

    fn visit_str<E: de::Error>(self, key: &str) -> Result<usize, E> {
        if self.columns.get(self.expected).is_some_and(|c| c == key) {
            return Ok(self.expected);
        }
        self.columns.iter().position(|c| c == key).ok_or_else(|| {
            E::custom(format_args!(
                "a row has column {key}, which the first row lacks"
            ))
        })
    }
}

impl<'de> Deserialize<'de> for Cell {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(CellVisitor)
    }
}

struct CellVisitor;

impl<'de> Visitor<'de> for CellVisitor {
    type Value = Cell;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a column value (null, a number, a string or an array of bytes)")
    }

    fn visit_unit<E: de::Error>(self) -> Result<Cell, E> {
        Ok(Cell::Null)
    }

    fn visit_none<E: de::Error>(self) -> Result<Cell, E> {
        Ok(Cell::Null)
    }

    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<Cell, D::Error> {
        deserializer.deserialize_any(self)
    }

    fn visit_bool<E: de::Error>(self, b: bool) -> Result<Cell, E> {
        Ok(Cell::Integer(i64::from(b)))
    }

    fn visit_i64<E: de::Error>(self, n: i64) -> Result<Cell, E> {
        Ok(Cell::Integer(n))
    }

    fn visit_u64<E: de::Error>(self, n: u64) -> Result<Cell, E> {
        Ok(i64::try_from(n).map_or(Cell::Real(n as f64), Cell::Integer))
    }

    fn visit_f64<E: de::Error>(self, x: f64) -> Result<Cell, E> {
        Ok(Cell::Real(x))
    }

    fn visit_str<E: de::Error>(self, text: &str) -> Result<Cell, E> {
        Ok(Cell::Text(text.to_owned()))
    }

    fn visit_string<E: de::Error>(self, text: String) -> Result<Cell, E> {
        Ok(Cell::Text(text))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Cell, A::Error> {
        let mut bytes = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(1 << 20));
        while let Some(byte) = seq.next_element::<u8>()? {
            bytes.push(byte);
        }
        Ok(Cell::Blob(bytes))
    }
}

/// An answer that never came (or broke off). reqwest's messages include the URL, which names the
/// account and database: it is left out.
fn lost(err: reqwest::Error) -> DbError {
    DbError::Uncertain(format!("D1 request outcome unknown: {}", err.without_url()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_are_checked_before_sending() {
        let many = Stmt::new("SELECT 1", vec![Value::Integer(1); 101]);
        assert!(check_limits(&[many]).is_err());
        let long = Stmt::new(
            "SELECT 1",
            vec![Value::Text("x".repeat(MAX_STATEMENT_BYTES))],
        );
        assert!(check_limits(&[long]).is_err());
        assert!(check_limits(&[Stmt::new("SELECT ?1", vec![Value::Integer(1); 100])]).is_ok());
    }

    #[test]
    fn unique_violations_are_conflicts_and_bad_sql_fails_without_retry() {
        let unique = br#"{"success":false,"errors":[{"code":7500,"message":"UNIQUE constraint failed: assets.id: SQLITE_CONSTRAINT"}],"messages":[],"result":[]}"#;
        assert!(matches!(
            classify(StatusCode::BAD_REQUEST, unique, 1),
            Outcome::Fail(DbError::Conflict(_))
        ));
        let syntax = br#"{"success":false,"errors":[{"code":7500,"message":"near \"SELEC\": syntax error"}],"messages":[],"result":[]}"#;
        assert!(matches!(
            classify(StatusCode::BAD_REQUEST, syntax, 1),
            Outcome::Fail(DbError::Other(_))
        ));
        assert!(matches!(
            classify(StatusCode::TOO_MANY_REQUESTS, b"", 1),
            Outcome::Retry(DbError::RateLimited(_))
        ));
        assert!(matches!(
            classify(StatusCode::BAD_GATEWAY, b"<html>", 1),
            Outcome::Retry(DbError::Other(_))
        ));
        assert!(matches!(
            classify(StatusCode::UNAUTHORIZED, b"{}", 1),
            Outcome::Fail(DbError::Other(_))
        ));
    }

    #[test]
    fn results_come_one_per_statement() {
        let ok = br#"{"success":true,"errors":[],"messages":[],"result":[{"success":true,"results":[{"a":1}],"meta":{"changes":0}},{"success":true,"results":[],"meta":{"changes":2}}]}"#;
        match classify(StatusCode::OK, ok, 2) {
            Outcome::Done(results) => {
                assert_eq!(results[0].rows[0]["a"], 1);
                assert_eq!(results[1].changes, 2);
            }
            _ => panic!("expected results"),
        }
        assert!(matches!(classify(StatusCode::OK, ok, 3), Outcome::Fail(_)));
    }

    fn rows_of(results: &str) -> Result<Vec<Row>, serde_json::Error> {
        serde_json::from_str::<Rows>(results).map(|rows| rows.0)
    }

    #[test]
    fn rows_are_positional_and_share_their_column_names() {
        let rows = rows_of(
            r#"[{"id":"a","n":1,"x":1.5,"note":null,"b":[0,255]},
                {"id":"b\u00e9","n":-2,"x":2,"note":"t","b":[]}]"#,
        )
        .unwrap();
        assert_eq!(rows.len(), 2);
        assert!(Arc::ptr_eq(rows[0].columns(), rows[1].columns()));
        assert_eq!(&rows[0].columns()[..], ["id", "n", "x", "note", "b"]);
        assert_eq!(
            rows[0].values(),
            [
                Cell::Text("a".into()),
                Cell::Integer(1),
                Cell::Real(1.5),
                Cell::Null,
                Cell::Blob(vec![0, 255])
            ]
        );
        assert_eq!(rows[1]["id"], "bé");
        assert_eq!(rows[1]["n"], -2);
        assert_eq!(rows[1]["x"], serde_json::json!(2));
        assert_eq!(rows[1]["note"], "t");
        assert!(rows_of("[]").unwrap().is_empty());
    }

    #[test]
    fn a_row_out_of_column_order_is_placed_by_name() {
        let rows = rows_of(r#"[{"a":1,"b":2,"c":3},{"c":30,"a":10,"b":20}]"#).unwrap();
        assert_eq!(
            rows[1].values(),
            [Cell::Integer(10), Cell::Integer(20), Cell::Integer(30)]
        );
    }

    #[test]
    fn rows_whose_columns_differ_are_refused() {
        for bad in [
            r#"[{"a":1,"b":2},{"a":1}]"#,
            r#"[{"a":1,"b":2},{"b":1}]"#,
            r#"[{"a":1,"b":2},{"a":1,"b":2,"c":3}]"#,
            r#"[{"a":1,"b":2},{"b":1,"b":2}]"#,
            r#"[{"a":1,"a":2}]"#,
            r#"[{"a":{"nested":1}}]"#,
            r#"[{"a":[256]}]"#,
            r#"[[1,2]]"#,
        ] {
            assert!(rows_of(bad).is_err(), "{bad}");
        }
    }
}
