//! The embedded default: one SQLite file, shared by every process on the machine.
//!
//! WAL mode lets readers run beside a writer; the busy timeout makes a writer wait for another
//! process's write instead of failing. A batch runs in one transaction, as D1 runs it: IMMEDIATE
//! when it writes (so it takes the write lock before reading, and cannot deadlock on an upgrade),
//! DEFERRED when every statement only reads.
//!
//! Calls run on the caller's thread under a mutex: statements here take microseconds, and a Lambda
//! process serves one request at a time, so handing them to a thread pool would cost more than it
//! saves.

use super::{Cell, Db, DbError, Row, Stmt, StmtResult, Value};
use crate::BoxFuture;
use rusqlite::{Connection, ErrorCode, OpenFlags, TransactionBehavior, types::ValueRef};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub struct SqliteDb {
    conn: Mutex<Connection>,
}

/// How much of the file is read through a memory map (address space, not memory).
pub const MMAP_SIZE: i64 = 256 * 1024 * 1024;

/// How long a write waits for another process's write to finish.
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

impl SqliteDb {
    pub fn open(path: &Path) -> Result<Self, DbError> {
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX
            | OpenFlags::SQLITE_OPEN_URI;
        let conn = Connection::open_with_flags(path, flags).map_err(other)?;
        conn.busy_timeout(BUSY_TIMEOUT).map_err(other)?;
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(other)?;
        conn.pragma_update(None, "synchronous", "NORMAL")
            .map_err(other)?;
        conn.pragma_update(None, "foreign_keys", "ON")
            .map_err(other)?;
        // Read the file through a memory map rather than a `pread` copy per page the cache lacks
        // (writes still go through the WAL; SQLite keeps the map coherent across processes).
        conn.pragma_update(None, "mmap_size", MMAP_SIZE)
            .map_err(other)?;
        conn.set_prepared_statement_cache_capacity(64);
        Ok(SqliteDb {
            conn: Mutex::new(conn),
        })
    }

    /// The schema marker: how many of [`crate::migrations::MIGRATIONS`] this file is known to
    /// have (SQLite's `user_version`, in the file's header: reading it takes no lock a writer
    /// holds and writes nothing). 0 for a file no migrator has marked, however migrated it is.
    pub fn schema_version(&self) -> Result<usize, DbError> {
        let conn = self.lock();
        let version: i64 = conn
            .pragma_query_value(None, "user_version", |row| row.get(0))
            .map_err(other)?;
        Ok(usize::try_from(version).unwrap_or(0))
    }

    /// Raises the schema marker to `version` (never lowers it: a newer binary may have marked
    /// more migrations than this one knows).
    pub fn mark_schema_version(&self, version: usize) -> Result<(), DbError> {
        let mut conn = self.lock();
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(classify)?;
        let current: i64 = tx
            .pragma_query_value(None, "user_version", |row| row.get(0))
            .map_err(other)?;
        let version = i64::try_from(version).unwrap_or(i64::MAX);
        if version > current {
            tx.pragma_update(None, "user_version", version)
                .map_err(other)?;
        }
        tx.commit().map_err(classify)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Connection> {
        self.conn
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn run(&self, stmts: &[Stmt]) -> Result<Vec<StmtResult>, DbError> {
        let mut conn = self.lock();
        let read_only = stmts.iter().all(|s| {
            conn.prepare_cached(&s.sql)
                .map(|p| p.readonly())
                .unwrap_or(false)
        });
        let behavior = if read_only {
            TransactionBehavior::Deferred
        } else {
            TransactionBehavior::Immediate
        };
        let tx = conn.transaction_with_behavior(behavior).map_err(classify)?;
        let mut results = Vec::with_capacity(stmts.len());
        for stmt in stmts {
            results.push(execute(&tx, stmt)?);
        }
        tx.commit().map_err(classify)?;
        Ok(results)
    }
}

impl Db for SqliteDb {
    fn batch(&self, stmts: Vec<Stmt>) -> BoxFuture<'_, Result<Vec<StmtResult>, DbError>> {
        Box::pin(async move { self.run(&stmts) })
    }
}

fn execute(conn: &Connection, stmt: &Stmt) -> Result<StmtResult, DbError> {
    let mut prepared = conn.prepare_cached(&stmt.sql).map_err(classify)?;
    // D1 refuses a statement whose bindings do not match its parameters; so does the embedded
    // store, so that such SQL fails in every test rather than only against D1.
    if prepared.parameter_count() != stmt.params.len() {
        return Err(DbError::Other(format!(
            "Wrong number of parameter bindings for SQL query: {} expected, {} given",
            prepared.parameter_count(),
            stmt.params.len()
        )));
    }
    for (i, param) in stmt.params.iter().enumerate() {
        let bound = match param {
            Value::Null => prepared.raw_bind_parameter(i + 1, rusqlite::types::Null),
            Value::Integer(n) => prepared.raw_bind_parameter(i + 1, n),
            Value::Text(text) => prepared.raw_bind_parameter(i + 1, text),
        };
        bound.map_err(classify)?;
    }
    // The column names once per result; each row is its values, in column order.
    let columns: Arc<[String]> = prepared
        .column_names()
        .into_iter()
        .map(str::to_owned)
        .collect();
    let mut rows = Vec::new();
    {
        let mut cursor = prepared.raw_query();
        while let Some(row) = cursor.next().map_err(classify)? {
            let mut values = Vec::with_capacity(columns.len());
            for i in 0..columns.len() {
                values.push(cell(row.get_ref(i).map_err(classify)?));
            }
            rows.push(Row::new(columns.clone(), values));
        }
    }
    let changes = if prepared.readonly() {
        0
    } else {
        conn.changes()
    };
    Ok(StmtResult { rows, changes })
}

/// A column value as the result holds it. Text that is not UTF-8 (SQLite does not check) is
/// read lossily, as D1 would send it in JSON.
fn cell(value: ValueRef<'_>) -> Cell {
    match value {
        ValueRef::Null => Cell::Null,
        ValueRef::Integer(n) => Cell::Integer(n),
        ValueRef::Real(x) => Cell::Real(x),
        // `str::from_utf8` first: it checks ASCII a word at a time, where the lossy decoder
        // walks byte by byte (measured: most of a list page's decoding time).
        ValueRef::Text(bytes) => Cell::Text(match std::str::from_utf8(bytes) {
            Ok(text) => text.to_owned(),
            Err(_) => String::from_utf8_lossy(bytes).into_owned(),
        }),
        ValueRef::Blob(bytes) => Cell::Blob(bytes.to_vec()),
    }
}

fn classify(err: rusqlite::Error) -> DbError {
    if let rusqlite::Error::SqliteFailure(code, message) = &err {
        let message = message.clone().unwrap_or_else(|| err.to_string());
        if code.code == ErrorCode::ConstraintViolation
            && (code.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE
                || code.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_PRIMARYKEY)
        {
            return DbError::Conflict(message);
        }
        return DbError::Other(message);
    }
    other(err)
}

fn other(err: rusqlite::Error) -> DbError {
    DbError::Other(err.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::run;

    fn db() -> (tempfile::TempDir, SqliteDb) {
        let dir = tempfile::tempdir().unwrap();
        let db = SqliteDb::open(&dir.path().join("t.db")).unwrap();
        (dir, db)
    }

    #[tokio::test]
    async fn the_compiled_in_sqlite_has_json_and_not_the_modules_left_out() {
        // .cargo/config.toml builds SQLite without FTS3/FTS5, R*Tree and dbstat (a cold start
        // pays for each module it has); the JSON functions the update function uses stay.
        let (_dir, db) = db();
        let merged = run(
            &db,
            vec![Stmt::new(
                r#"SELECT json_patch('{"a":1,"b":2}', '{"b":null}') AS merged"#,
                vec![],
            )],
        )
        .await
        .unwrap();
        assert_eq!(merged[0].rows[0]["merged"], r#"{"a":1}"#);
        for module in ["fts5(x)", "fts4(x)", "rtree(id, a, b)", "dbstat"] {
            let made = run(
                &db,
                vec![Stmt::new(
                    format!("CREATE VIRTUAL TABLE v USING {module}"),
                    vec![],
                )],
            )
            .await;
            let err = made.expect_err(module).to_string();
            assert!(err.contains("no such module"), "{module}: {err}");
        }
    }

    #[tokio::test]
    async fn a_batch_is_atomic() {
        let (_dir, db) = db();
        run(
            &db,
            vec![Stmt::new("CREATE TABLE t (k TEXT PRIMARY KEY)", vec![])],
        )
        .await
        .unwrap();
        let failing = vec![
            Stmt::new("INSERT INTO t (k) VALUES (?1)", vec!["a".into()]),
            Stmt::new("INSERT INTO t (k) VALUES (?1)", vec!["a".into()]),
        ];
        assert!(matches!(run(&db, failing).await, Err(DbError::Conflict(_))));
        let rows = run(&db, vec![Stmt::new("SELECT count(*) AS n FROM t", vec![])])
            .await
            .unwrap();
        assert_eq!(rows[0].rows[0]["n"], 0);
    }

    #[tokio::test]
    async fn results_carry_rows_and_changes() {
        let (_dir, db) = db();
        let results = run(
            &db,
            vec![
                Stmt::new("CREATE TABLE t (k TEXT, n INTEGER, x REAL)", vec![]),
                Stmt::new(
                    "INSERT INTO t VALUES (?1, ?2, 1.5), (?1, NULL, 2.5)",
                    vec!["a".into(), 7.into()],
                ),
                Stmt::new("SELECT k, n, x FROM t ORDER BY x", vec![]),
                Stmt::new(
                    "UPDATE t SET n = 1 WHERE k = ?1 RETURNING n",
                    vec!["a".into()],
                ),
            ],
        )
        .await
        .unwrap();
        assert_eq!(results[1].changes, 2);
        assert_eq!(results[2].rows.len(), 2);
        assert_eq!(results[2].rows[0]["k"], "a");
        assert_eq!(results[2].rows[0]["n"], 7);
        assert_eq!(results[2].rows[1]["n"], serde_json::Value::Null);
        assert!(results[2].rows[1]["n"].is_null());
        assert_eq!(results[2].rows[0]["x"], 1.5);
        assert_eq!(results[3].changes, 2);
        assert_eq!(results[3].rows.len(), 2);
    }

    #[tokio::test]
    async fn bad_sql_is_an_error_not_a_panic() {
        let (_dir, db) = db();
        let err = run(&db, vec![Stmt::new("SELEC 1", vec![])])
            .await
            .unwrap_err();
        assert!(matches!(err, DbError::Other(_)), "{err}");
    }

    #[tokio::test]
    async fn the_file_is_in_wal_mode() {
        let (_dir, db) = db();
        let rows = run(&db, vec![Stmt::new("PRAGMA journal_mode", vec![])])
            .await
            .unwrap();
        assert_eq!(rows[0].rows[0]["journal_mode"], "wal");
    }
}
