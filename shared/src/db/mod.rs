//! The SQL seam: a [`Db`] runs one batch of statements atomically and returns one result per
//! statement, which is exactly what D1's query endpoint does. Handlers build their whole request as
//! one batch (authentication included), so on D1 each API call costs one round trip.
//!
//! Implementations: [`sqlite::SqliteDb`] (the embedded default) and [`d1::D1Db`] (Cloudflare D1
//! over REST); [`schema::SchemaChecked`] wraps a function's D1 so that it never runs against a
//! schema older than its SQL. The SQL is D1's: SQLite, positional
//! `?N` parameters, no BEGIN/COMMIT (the batch is the transaction).

pub mod d1;
pub mod schema;
#[cfg(feature = "embedded")]
pub mod sqlite;

use crate::BoxFuture;
use std::borrow::Cow;
use std::sync::Arc;

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

/// A column value in a result: SQLite's storage classes. D1 sends them as JSON (a blob as an array
/// of byte values); the embedded store reads them as they are.
#[derive(Debug, Clone, PartialEq, Default)]
pub enum Cell {
    #[default]
    Null,
    Integer(i64),
    Real(f64),
    Text(String),
    Blob(Vec<u8>),
}

impl Cell {
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Cell::Text(text) => Some(text),
            _ => None,
        }
    }

    pub fn as_i64(&self) -> Option<i64> {
        match self {
            Cell::Integer(n) => Some(*n),
            _ => None,
        }
    }

    pub fn as_u64(&self) -> Option<u64> {
        self.as_i64().and_then(|n| u64::try_from(n).ok())
    }

    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Cell::Integer(n) => Some(*n as f64),
            Cell::Real(x) => Some(*x),
            _ => None,
        }
    }

    pub fn is_null(&self) -> bool {
        matches!(self, Cell::Null)
    }
}

impl From<&str> for Cell {
    fn from(text: &str) -> Self {
        Cell::Text(text.to_owned())
    }
}

impl From<i64> for Cell {
    fn from(n: i64) -> Self {
        Cell::Integer(n)
    }
}

/// As JSON: text quoted, numbers and null as themselves, a blob as an array of bytes.
impl std::fmt::Display for Cell {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Cell::Null => f.write_str("null"),
            Cell::Integer(n) => write!(f, "{n}"),
            Cell::Real(x) => write!(f, "{x}"),
            Cell::Text(text) => write!(f, "{}", serde_json::Value::from(text.as_str())),
            Cell::Blob(bytes) => write!(f, "{bytes:?}"),
        }
    }
}

impl PartialEq<str> for Cell {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == Some(other)
    }
}

impl PartialEq<&str> for Cell {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == Some(*other)
    }
}

impl PartialEq<String> for Cell {
    fn eq(&self, other: &String) -> bool {
        self.as_str() == Some(other.as_str())
    }
}

macro_rules! cell_eq_integer {
    ($($t:ty),*) => {$(
        impl PartialEq<$t> for Cell {
            fn eq(&self, other: &$t) -> bool {
                self.as_i64().is_some_and(|n| i128::from(n) == *other as i128)
            }
        }
    )*};
}
cell_eq_integer!(i32, i64, u32, u64, usize);

impl PartialEq<f64> for Cell {
    fn eq(&self, other: &f64) -> bool {
        matches!(self, Cell::Real(x) if x == other)
    }
}

/// A cell equals the JSON value D1 would have sent for it.
impl PartialEq<serde_json::Value> for Cell {
    fn eq(&self, other: &serde_json::Value) -> bool {
        use serde_json::Value as J;
        match (self, other) {
            (Cell::Null, J::Null) => true,
            (Cell::Integer(n), J::Number(m)) => m.as_i64() == Some(*n),
            (Cell::Real(x), J::Number(m)) => m.as_f64() == Some(*x),
            (Cell::Text(a), J::String(b)) => a == b,
            (Cell::Blob(bytes), J::Array(items)) => {
                bytes.len() == items.len()
                    && bytes
                        .iter()
                        .zip(items)
                        .all(|(b, item)| item.as_u64() == Some(u64::from(*b)))
            }
            _ => false,
        }
    }
}

/// One result row: its values in column order, and the statement's column names, which every row
/// of a result shares (they are read once per result, not once per row).
#[derive(Clone, PartialEq)]
pub struct Row {
    columns: Arc<[String]>,
    values: Vec<Cell>,
}

static NULL: Cell = Cell::Null;

impl Row {
    /// `values` in the order of `columns`.
    pub fn new(columns: Arc<[String]>, values: Vec<Cell>) -> Self {
        debug_assert_eq!(columns.len(), values.len());
        Row { columns, values }
    }

    /// A row from `(column, value)` pairs, in order (for tests and small hand-made rows).
    pub fn from_pairs<'a>(pairs: impl IntoIterator<Item = (&'a str, Cell)>) -> Self {
        let (columns, values): (Vec<String>, Vec<Cell>) = pairs
            .into_iter()
            .map(|(name, value)| (name.to_owned(), value))
            .unzip();
        Row::new(columns.into(), values)
    }

    pub fn columns(&self) -> &Arc<[String]> {
        &self.columns
    }

    pub fn values(&self) -> &[Cell] {
        &self.values
    }

    pub fn into_values(self) -> Vec<Cell> {
        self.values
    }

    /// The value of `column`, if the result has that column.
    pub fn get(&self, column: &str) -> Option<&Cell> {
        let i = self.columns.iter().position(|c| c == column)?;
        self.values.get(i)
    }

    /// The text of `column`, or empty when the result lacks it or it is not text (for admin
    /// reads, whose columns are NOT NULL text by the schema).
    pub fn text(&self, column: &str) -> String {
        self[column].as_str().unwrap_or_default().to_owned()
    }

    /// A text column that may be NULL (or absent).
    pub fn text_opt(&self, column: &str) -> Option<String> {
        self.get(column).and_then(|v| v.as_str()).map(str::to_owned)
    }

    pub fn len(&self) -> usize {
        self.values.len()
    }

    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }
}

/// `row["column"]`: the value, or null for a column the result does not have (as
/// `serde_json::Value` indexes).
impl std::ops::Index<&str> for Row {
    type Output = Cell;

    fn index(&self, column: &str) -> &Cell {
        self.get(column).unwrap_or(&NULL)
    }
}

impl std::ops::Index<usize> for Row {
    type Output = Cell;

    fn index(&self, i: usize) -> &Cell {
        &self.values[i]
    }
}

impl std::fmt::Debug for Row {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_map()
            .entries(self.columns.iter().zip(&self.values))
            .finish()
    }
}

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
    /// No attempt got an answer that settles it: the batch may or may not have been applied
    /// (an answer lost, or a 5xx, which a gateway also gives after a commit). The caller keeps
    /// whatever the batch's effect would need (an upload its object).
    #[error("{0}")]
    Uncertain(String),
    /// The database lacks migrations this binary needs (the message names them); nothing in the
    /// batch was applied. See [`schema::SchemaChecked`].
    #[error("{0}")]
    Unmigrated(String),
}

/// Runs batches of SQL. A batch is atomic: all of its statements apply, or none.
///
/// A batch may run more than once: the D1 client resends one whose answer was lost or was a 5xx
/// (d1.rs says when). So every batch must be idempotent, and a write must find its own row by
/// its id rather than trust that the statement it sent ran exactly once.
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
