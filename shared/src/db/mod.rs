//! The SQL seam: a [`Db`] runs one batch of statements atomically and returns one result per
//! statement, which is exactly what D1's query endpoint does. Handlers build their whole request as
//! one batch (authentication included), so on D1 each API call costs one round trip.
//!
//! Implementations: [`sqlite::SqliteDb`] (the embedded default) and [`d1::D1Db`] (Cloudflare D1
//! over REST). The SQL is D1's: SQLite, positional
//! `?N` parameters, no BEGIN/COMMIT (the batch is the transaction).

pub mod d1;
#[cfg(feature = "embedded")]
pub mod sqlite;

use crate::BoxFuture;
use std::borrow::Cow;

/// A bound parameter. D1 documents strings and accepts numbers and null; nothing else is needed.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Null,
    Integer(i64),
    Text(String),
}

impl From<&str> for Value {
    fn from(text: &str) -> Self {
        Value::Text(text.to_owned())
    }
}

impl From<String> for Value {
    fn from(text: String) -> Self {
        Value::Text(text)
    }
}

impl From<i64> for Value {
    fn from(n: i64) -> Self {
        Value::Integer(n)
    }
}

impl<T: Into<Value>> From<Option<T>> for Value {
    fn from(value: Option<T>) -> Self {
        value.map_or(Value::Null, Into::into)
    }
}

/// One statement of a batch.
#[derive(Debug, Clone)]
pub struct Stmt {
    pub sql: Cow<'static, str>,
    pub params: Vec<Value>,
}

impl Stmt {
    pub fn new(sql: impl Into<Cow<'static, str>>, params: Vec<Value>) -> Self {
        Stmt {
            sql: sql.into(),
            params,
        }
    }
}

/// A result row as D1 returns it: column name to JSON value.
pub type Row = serde_json::Map<String, serde_json::Value>;

/// The result of one statement.
#[derive(Debug, Clone, Default)]
pub struct StmtResult {
    pub rows: Vec<Row>,
    /// Rows changed by an INSERT, UPDATE or DELETE (D1's `meta.changes`).
    pub changes: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum DbError {
    /// A UNIQUE or PRIMARY KEY constraint refused the batch; nothing in it was applied.
    #[error("constraint violated: {0}")]
    Conflict(String),
    /// The store refused for rate, after retries.
    #[error("rate limited: {0}")]
    RateLimited(String),
    /// Anything else; the batch was not applied.
    #[error("{0}")]
    Other(String),
    /// The request was sent but no answer came back: the batch may or may not have been applied.
    #[error("{0}")]
    Uncertain(String),
}

/// Runs batches of SQL. A batch is atomic: all of its statements apply, or none.
pub trait Db: Send + Sync {
    fn batch(&self, stmts: Vec<Stmt>) -> BoxFuture<'_, Result<Vec<StmtResult>, DbError>>;
}

/// Runs a batch and checks that it produced one result per statement.
pub async fn run(db: &dyn Db, stmts: Vec<Stmt>) -> Result<Vec<StmtResult>, DbError> {
    let expected = stmts.len();
    let results = db.batch(stmts).await?;
    if results.len() != expected {
        return Err(DbError::Other(format!(
            "batch of {expected} statements returned {} results",
            results.len()
        )));
    }
    Ok(results)
}
