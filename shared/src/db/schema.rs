//! A function's guard against a D1 database that lacks the migrations its binary was built for.
//!
//! Functions never migrate D1 (the deploy applies migrations before it updates them), so a
//! function can meet a schema older than its SQL: a deploy that skipped the step, or a database
//! restored from an old backup. Answering from such a schema risks wrong data; writing to it risks
//! corrupting it. [`SchemaChecked`] proves the schema once per process at no extra round trip: the
//! process's first batch carries one more statement, in front, which fails (so the whole batch
//! fails and nothing in it applies, D1's batches being atomic) unless the newest migration this
//! binary knows is recorded in `d1_migrations`. Once a batch with the check succeeds, later
//! batches go through untouched. Only when a checked batch fails is the schema read on its own,
//! to tell "unmigrated" (then [`DbError::Unmigrated`], naming what is missing and how to apply
//! it) from the batch's own failure (returned as it was).

use super::{Db, DbError, Stmt, StmtResult, Value};
use crate::BoxFuture;
use crate::migrations::MIGRATIONS;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// Fails unless migration `?1` is recorded: `json('x')` raises "malformed JSON", and a database
/// without `d1_migrations` fails to prepare it ("no such table"). Either way the batch aborts.
const CHECK: &str = "SELECT json(CASE WHEN EXISTS \
    (SELECT 1 FROM d1_migrations WHERE name = ?1) THEN '1' ELSE 'x' END) AS migrated";

/// How to apply migrations, for the error a function logs.
const HOW_TO_APPLY: &str = "apply them with `imgbt migrate` (the deploy workflow runs it \
    before it updates the functions) or `wrangler d1 migrations apply <database> --remote`";

/// A [`Db`] that proves, on its first successful batch, that the schema has every migration of
/// [`MIGRATIONS`]; see the module's documentation.
pub struct SchemaChecked {
    inner: Arc<dyn Db>,
    /// Set once a batch carrying the check succeeded (or the schema was read and found complete).
    proven: AtomicBool,
}

impl SchemaChecked {
    pub fn new(inner: Arc<dyn Db>) -> Self {
        SchemaChecked {
            inner,
            proven: AtomicBool::new(false),
        }
    }

    /// Whether the schema has been proven complete yet (for tests).
    pub fn proven(&self) -> bool {
        self.proven.load(Ordering::Acquire)
    }

    async fn checked(&self, stmts: Vec<Stmt>) -> Result<Vec<StmtResult>, DbError> {
        let mut with_check = Vec::with_capacity(stmts.len() + 1);
        with_check.push(check_statement());
        with_check.extend(stmts);
        match self.inner.batch(with_check).await {
            Ok(mut results) => {
                if results.is_empty() {
                    return Err(DbError::Other("a checked batch returned no results".into()));
                }
                results.remove(0);
                self.proven.store(true, Ordering::Release);
                Ok(results)
            }
            // The check can only fail the batch the way any statement's error does; a conflict,
            // a rate limit or a lost answer is the batch's own outcome.
            Err(DbError::Other(cause)) => match missing(&*self.inner).await {
                Ok(missing) if !missing.is_empty() => Err(DbError::Unmigrated(format!(
                    "the D1 database lacks migrations this function needs: {}; {HOW_TO_APPLY}. \
                     Nothing was written",
                    missing.join(", ")
                ))),
                Ok(_) => {
                    self.proven.store(true, Ordering::Release);
                    Err(DbError::Other(cause))
                }
                // The schema could not be read either: report the batch's own failure.
                Err(_) => Err(DbError::Other(cause)),
            },
            Err(err) => Err(err),
        }
    }
}

fn check_statement() -> Stmt {
    let newest = MIGRATIONS.last().map_or("", |m| m.name);
    Stmt::new(CHECK, vec![Value::from(newest)])
}

/// The migrations of [`MIGRATIONS`] the database has not recorded, read without writing anything
/// (unlike `migrations::pending`, which creates `d1_migrations`).
pub async fn missing(db: &dyn Db) -> Result<Vec<&'static str>, DbError> {
    let table = super::run(
        db,
        vec![Stmt::new(
            "SELECT count(*) AS n FROM sqlite_master WHERE type = 'table' AND name = 'd1_migrations'",
            vec![],
        )],
    )
    .await?;
    let exists = table[0].rows.first().and_then(|r| r["n"].as_i64()) == Some(1);
    let recorded: Vec<String> = if exists {
        super::run(
            db,
            vec![Stmt::new("SELECT name FROM d1_migrations", vec![])],
        )
        .await?[0]
            .rows
            .iter()
            .filter_map(|row| row["name"].as_str().map(str::to_owned))
            .collect()
    } else {
        Vec::new()
    };
    Ok(MIGRATIONS
        .iter()
        .map(|m| m.name)
        .filter(|name| !recorded.iter().any(|r| r == name))
        .collect())
}

impl Db for SchemaChecked {
    fn batch(&self, stmts: Vec<Stmt>) -> BoxFuture<'_, Result<Vec<StmtResult>, DbError>> {
        if self.proven() {
            return self.inner.batch(stmts);
        }
        Box::pin(self.checked(stmts))
    }
}

#[cfg(all(test, feature = "embedded"))]
mod tests {
    use super::*;
    use crate::db::{run, sqlite::SqliteDb};
    use crate::migrations;

    const WRITE: &str = "CREATE TABLE IF NOT EXISTS probe (x TEXT)";

    async fn probe_exists(db: &dyn Db) -> bool {
        let rows = run(
            db,
            vec![Stmt::new(
                "SELECT name FROM sqlite_master WHERE name = 'probe'",
                vec![],
            )],
        )
        .await
        .unwrap();
        !rows[0].rows.is_empty()
    }

    #[tokio::test]
    async fn an_unmigrated_database_fails_the_first_batch_and_applies_none_of_it() {
        let dir = tempfile::tempdir().unwrap();
        let raw: Arc<dyn Db> = Arc::new(SqliteDb::open(&dir.path().join("s.db")).unwrap());
        let checked = SchemaChecked::new(raw.clone());
        let err = run(&checked, vec![Stmt::new(WRITE, vec![])])
            .await
            .unwrap_err();
        let DbError::Unmigrated(message) = &err else {
            panic!("expected Unmigrated, got {err:?}")
        };
        for m in MIGRATIONS {
            assert!(message.contains(m.name), "{message}");
        }
        assert!(message.contains("imgbt migrate"), "{message}");
        assert!(!probe_exists(&*raw).await, "the batch applied nothing");
        assert!(!checked.proven());

        migrations::apply(&*raw).await.unwrap();
        let results = run(&checked, vec![Stmt::new(WRITE, vec![])]).await.unwrap();
        assert_eq!(results.len(), 1, "the check's own result is stripped");
        assert!(checked.proven());
        assert!(probe_exists(&*raw).await);
    }

    #[tokio::test]
    async fn a_batch_failing_on_its_own_is_returned_as_it_was() {
        let dir = tempfile::tempdir().unwrap();
        let raw: Arc<dyn Db> = Arc::new(SqliteDb::open(&dir.path().join("s.db")).unwrap());
        migrations::apply(&*raw).await.unwrap();
        let checked = SchemaChecked::new(raw);
        let err = run(
            &checked,
            vec![Stmt::new("SELECT * FROM no_such_table", vec![])],
        )
        .await
        .unwrap_err();
        assert!(
            matches!(&err, DbError::Other(m) if m.contains("no_such_table")),
            "{err:?}"
        );
        assert!(checked.proven(), "the schema was read and found complete");
    }
}
