//! The schema, as ordered SQL files in `migrations/` in wrangler's format (`NNNN_name.sql`), and
//! [`apply`], which runs the pending ones and records each in `d1_migrations`, the table wrangler
//! uses, so that `imgbt migrate` and `wrangler d1 migrations apply` agree on what has run.

use crate::db::{self, Db, DbError, Stmt, Value};

pub struct Migration {
    pub name: &'static str,
    pub sql: &'static str,
}

/// Every migration, in order. A test checks that this list matches the directory.
pub const MIGRATIONS: &[Migration] = &[
    Migration {
        name: "0001_init.sql",
        sql: include_str!("../../migrations/0001_init.sql"),
    },
    Migration {
        name: "0002_list_filter_indexes.sql",
        sql: include_str!("../../migrations/0002_list_filter_indexes.sql"),
    },
    Migration {
        name: "0003_uploads.sql",
        sql: include_str!("../../migrations/0003_uploads.sql"),
    },
    Migration {
        name: "0004_key_revoked_by.sql",
        sql: include_str!("../../migrations/0004_key_revoked_by.sql"),
    },
    Migration {
        name: "0005_vault_delivery.sql",
        sql: include_str!("../../migrations/0005_vault_delivery.sql"),
    },
];

const CREATE_TABLE: &str = "CREATE TABLE IF NOT EXISTS d1_migrations (\
    id INTEGER PRIMARY KEY AUTOINCREMENT, \
    name TEXT UNIQUE, \
    applied_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP NOT NULL)";

/// Splits a migration file into statements: one per `;` that ends a line, `--` comments dropped.
/// (Migrations therefore avoid triggers, whose bodies hold `;` of their own.)
pub fn statements(sql: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut current = String::new();
    for line in sql.lines() {
        let line = line.split("--").next().unwrap_or_default().trim_end();
        if line.trim().is_empty() {
            continue;
        }
        current.push_str(line);
        current.push('\n');
        if line.ends_with(';') {
            out.push(current.trim().trim_end_matches(';').to_owned());
            current.clear();
        }
    }
    if !current.trim().is_empty() {
        out.push(current.trim().to_owned());
    }
    out
}

async fn applied(db: &dyn Db) -> Result<Vec<String>, DbError> {
    let results = db::run(
        db,
        vec![
            Stmt::new(CREATE_TABLE, vec![]),
            Stmt::new("SELECT name FROM d1_migrations ORDER BY id", vec![]),
        ],
    )
    .await?;
    Ok(results[1]
        .rows
        .iter()
        .filter_map(|row| row.get("name").and_then(|v| v.as_str()).map(str::to_owned))
        .collect())
}

/// The names of migrations not yet applied.
pub async fn pending(db: &dyn Db) -> Result<Vec<&'static str>, DbError> {
    let done = applied(db).await?;
    Ok(MIGRATIONS
        .iter()
        .filter(|m| !done.iter().any(|d| d == m.name))
        .map(|m| m.name)
        .collect())
}

/// Applies every pending migration, each with its record in one atomic batch, and returns the
/// names that were pending and are applied now. Safe to run from several processes at once, and
/// when D1's answer is lost: a batch that fails (its resend refused because the first attempt
/// created the tables, or another process applied the same migration first) is not an error when
/// `d1_migrations` then records the migration.
pub async fn apply(db: &dyn Db) -> Result<Vec<&'static str>, DbError> {
    let mut ran = Vec::new();
    for name in pending(db).await? {
        let migration = MIGRATIONS
            .iter()
            .find(|m| m.name == name)
            .expect("pending names come from MIGRATIONS");
        let mut batch: Vec<Stmt> = statements(migration.sql)
            .into_iter()
            .map(|sql| Stmt::new(sql, vec![]))
            .collect();
        batch.push(Stmt::new(
            "INSERT INTO d1_migrations (name) VALUES (?1)",
            vec![Value::from(name)],
        ));
        if let Err(err) = db::run(db, batch).await {
            if applied(db).await?.iter().any(|d| d == name) {
                ran.push(name);
                continue;
            }
            return Err(DbError::Other(format!("migration {name} failed: {err}")));
        }
        ran.push(name);
    }
    Ok(ran)
}

#[cfg(all(test, feature = "embedded"))]
mod tests {
    use super::*;
    use crate::db::sqlite::SqliteDb;

    #[test]
    fn the_list_matches_the_directory() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../migrations");
        let mut files: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .filter(|n| n.ends_with(".sql"))
            .collect();
        files.sort();
        let listed: Vec<&str> = MIGRATIONS.iter().map(|m| m.name).collect();
        assert_eq!(files, listed);
        for (i, name) in listed.iter().enumerate() {
            assert!(
                name.starts_with(&format!("{:04}_", i + 1)),
                "{name} is out of order"
            );
        }
    }

    #[test]
    fn statements_split_on_line_ending_semicolons() {
        let sql = "-- a comment; not a statement\nCREATE TABLE a (x TEXT); \nCREATE TABLE b (\n  y TEXT -- why\n);\n";
        assert_eq!(
            statements(sql),
            vec!["CREATE TABLE a (x TEXT)", "CREATE TABLE b (\n  y TEXT\n)"]
        );
    }

    #[test]
    fn no_statement_is_a_transaction_control_d1_refuses() {
        for m in MIGRATIONS {
            for s in statements(m.sql) {
                let head = s.trim_start().to_ascii_uppercase();
                for word in ["BEGIN", "COMMIT", "SAVEPOINT", "ROLLBACK", "PRAGMA"] {
                    assert!(!head.starts_with(word), "{}: {s}", m.name);
                }
            }
        }
    }

    #[tokio::test]
    async fn apply_is_idempotent_and_recorded() {
        let dir = tempfile::tempdir().unwrap();
        let db = SqliteDb::open(&dir.path().join("m.db")).unwrap();
        let first = apply(&db).await.unwrap();
        assert_eq!(first.len(), MIGRATIONS.len());
        assert!(apply(&db).await.unwrap().is_empty());
        assert!(pending(&db).await.unwrap().is_empty());
        let rows = db::run(
            &db,
            vec![Stmt::new(
                "SELECT name, applied_at FROM d1_migrations",
                vec![],
            )],
        )
        .await
        .unwrap();
        assert_eq!(rows[0].rows.len(), MIGRATIONS.len());
        assert_eq!(rows[0].rows[0]["name"], "0001_init.sql");
    }
}
