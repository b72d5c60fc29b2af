//! Typed batches: each statement travels with the reader of its result, and a batch is a tuple of
//! them (or an `Option` of one, for a statement a request may leave out). The results come back as
//! a tuple of typed values in the statements' order, so reordering a batch changes the types its
//! caller destructures, and the caller stops compiling instead of reading the wrong result.
//!
//! A batch is still one [`Db::batch`] call: one D1 request, the SQL exactly as built.
//!
//! ```no_run
//! # use shared::batch::{self, Query};
//! # use shared::db::{Db, Row, Stmt};
//! # async fn example(db: &dyn Db) -> Result<(), shared::ApiError> {
//! let names = Query::new(Stmt::new("SELECT name FROM vaults", vec![]), batch::rows);
//! let touch = Query::new(Stmt::new("UPDATE vaults SET name = name", vec![]), batch::changes);
//! let (rows, changed): (Vec<Row>, u64) = batch::run(db, (names, touch)).await?;
//! # Ok(()) }
//! ```
//!
//! The same batch with its statements swapped no longer compiles against the same reading:
//!
//! ```compile_fail,E0308
//! # use shared::batch::{self, Query};
//! # use shared::db::{Db, Row, Stmt};
//! # async fn example(db: &dyn Db) -> Result<(), shared::ApiError> {
//! let names = Query::new(Stmt::new("SELECT name FROM vaults", vec![]), batch::rows);
//! let touch = Query::new(Stmt::new("UPDATE vaults SET name = name", vec![]), batch::changes);
//! let (rows, changed): (Vec<Row>, u64) = batch::run(db, (touch, names)).await?;
//! # Ok(()) }
//! ```

use crate::ApiError;
use crate::db::{self, Db, DbError, Row, Stmt, StmtResult};

/// How a statement's result reads.
pub type Read<T> = fn(StmtResult) -> Result<T, ApiError>;

/// One statement and how its result reads.
pub struct Query<T> {
    stmt: Stmt,
    read: Read<T>,
}

impl<T> Query<T> {
    pub fn new(stmt: Stmt, read: Read<T>) -> Self {
        Query { stmt, read }
    }

    pub fn stmt(&self) -> &Stmt {
        &self.stmt
    }
}

/// Statements, in order, and the reader of their results.
pub trait Batch {
    type Output;
    type Reader: Reader<Output = Self::Output>;
    /// Appends this batch's statements to `stmts`, and returns how their results read.
    fn push(self, stmts: &mut Vec<Stmt>) -> Self::Reader;
}

/// Reads a batch's results, in order, from the front of `results`.
pub trait Reader {
    type Output;
    fn read(self, results: &mut std::vec::IntoIter<StmtResult>) -> Result<Self::Output, ApiError>;
}

impl<T> Batch for Query<T> {
    type Output = T;
    type Reader = Read<T>;
    fn push(self, stmts: &mut Vec<Stmt>) -> Read<T> {
        stmts.push(self.stmt);
        self.read
    }
}

impl<T> Reader for Read<T> {
    type Output = T;
    fn read(self, results: &mut std::vec::IntoIter<StmtResult>) -> Result<T, ApiError> {
        let result = results
            .next()
            .ok_or_else(|| ApiError::internal("a batch returned fewer results than statements"))?;
        self(result)
    }
}

/// A statement (or several) that the request may leave out: `None` sends nothing and reads
/// nothing.
impl<B: Batch> Batch for Option<B> {
    type Output = Option<B::Output>;
    type Reader = Option<B::Reader>;
    fn push(self, stmts: &mut Vec<Stmt>) -> Self::Reader {
        self.map(|batch| batch.push(stmts))
    }
}

impl<R: Reader> Reader for Option<R> {
    type Output = Option<R::Output>;
    fn read(self, results: &mut std::vec::IntoIter<StmtResult>) -> Result<Self::Output, ApiError> {
        self.map(|reader| reader.read(results)).transpose()
    }
}

macro_rules! tuple_batch {
    ($($name:ident),+) => {
        impl<$($name: Batch),+> Batch for ($($name,)+) {
            type Output = ($($name::Output,)+);
            type Reader = ($($name::Reader,)+);
            #[allow(non_snake_case)]
            fn push(self, stmts: &mut Vec<Stmt>) -> Self::Reader {
                let ($($name,)+) = self;
                ($($name.push(stmts),)+)
            }
        }

        impl<$($name: Reader),+> Reader for ($($name,)+) {
            type Output = ($($name::Output,)+);
            #[allow(non_snake_case)]
            fn read(
                self,
                results: &mut std::vec::IntoIter<StmtResult>,
            ) -> Result<Self::Output, ApiError> {
                let ($($name,)+) = self;
                Ok(($($name.read(results)?,)+))
            }
        }
    };
}

tuple_batch!(A);
tuple_batch!(A, B);
tuple_batch!(A, B, C);
tuple_batch!(A, B, C, D);
tuple_batch!(A, B, C, D, E);

/// Runs `batch` as one [`Db::batch`] and reads its results.
pub async fn run<B: Batch>(db: &dyn Db, batch: B) -> Result<B::Output, ApiError> {
    send(db, batch).await?.read()
}

/// Runs `batch` as one [`Db::batch`], for a caller that tells the store's errors apart (a
/// conflict, an answer that never came) before it reads the results.
pub async fn send<B: Batch>(db: &dyn Db, batch: B) -> Result<Results<B::Reader>, DbError> {
    let mut stmts = Vec::new();
    let reader = batch.push(&mut stmts);
    let results = db::run(db, stmts).await?;
    Ok(Results { reader, results })
}

/// A batch's results and their reader; see [`send`].
pub struct Results<R> {
    reader: R,
    results: Vec<StmtResult>,
}

impl<R: Reader> Results<R> {
    pub fn read(self) -> Result<R::Output, ApiError> {
        self.reader.read(&mut self.results.into_iter())
    }
}

/// The rows a statement returned.
pub fn rows(result: StmtResult) -> Result<Vec<Row>, ApiError> {
    Ok(result.rows)
}

/// Whether a statement returned any row (a probe: `SELECT 1 … WHERE …`).
pub fn any_row(result: StmtResult) -> Result<bool, ApiError> {
    Ok(!result.rows.is_empty())
}

/// How many rows a write changed.
pub fn changes(result: StmtResult) -> Result<u64, ApiError> {
    Ok(result.changes)
}

/// For a statement whose result nothing reads (a write whose effect the next statements see).
pub fn ignore(_: StmtResult) -> Result<(), ApiError> {
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::BoxFuture;
    use crate::db::Cell;
    use std::sync::Mutex;

    /// Answers each statement with one row holding its SQL, and its position as `changes`.
    #[derive(Default)]
    struct Echo(Mutex<Vec<Vec<String>>>);

    impl Db for Echo {
        fn batch(&self, stmts: Vec<Stmt>) -> BoxFuture<'_, Result<Vec<StmtResult>, DbError>> {
            self.0
                .lock()
                .unwrap()
                .push(stmts.iter().map(|s| s.sql.to_string()).collect());
            let results = stmts
                .into_iter()
                .enumerate()
                .map(|(i, s)| StmtResult {
                    rows: vec![Row::from_pairs([("sql", Cell::from(&*s.sql))])],
                    changes: i as u64,
                })
                .collect();
            Box::pin(async move { Ok(results) })
        }
    }

    fn sql_of(result: StmtResult) -> Result<String, ApiError> {
        Ok(result.rows[0]["sql"].as_str().unwrap().to_owned())
    }

    fn query(sql: &'static str) -> Query<String> {
        Query::new(Stmt::new(sql, vec![]), sql_of)
    }

    #[tokio::test]
    async fn results_come_back_in_the_statements_order_in_one_call() {
        let db = Echo::default();
        let (a, skipped, b, c, n) = run(
            &db,
            (
                query("A"),
                None::<Query<String>>,
                Some(query("B")),
                query("C"),
                Query::new(Stmt::new("D", vec![]), changes),
            ),
        )
        .await
        .unwrap();
        assert_eq!(
            (a.as_str(), skipped, b.as_deref(), c.as_str(), n),
            ("A", None, Some("B"), "C", 3)
        );
        assert_eq!(*db.0.lock().unwrap(), [["A", "B", "C", "D"]]);
    }

    #[tokio::test]
    async fn a_store_that_returns_too_few_results_is_an_error_not_a_panic() {
        struct Short;
        impl Db for Short {
            fn batch(&self, _: Vec<Stmt>) -> BoxFuture<'_, Result<Vec<StmtResult>, DbError>> {
                Box::pin(async { Ok(vec![StmtResult::default()]) })
            }
        }
        let err = run(&Short, (query("A"), query("B"))).await.err().unwrap();
        assert_eq!(err.status(), 500, "{err:?}");
    }
}
