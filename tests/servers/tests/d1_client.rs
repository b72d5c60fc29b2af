//! Our D1 client (`shared::db::d1::D1Db`) against the D1 stand-in.

use imgbt_test_servers::D1Faults;
use imgbt_test_servers::D1Server;
use imgbt_test_servers::d1::Fault;
use serde_json::json;
use shared::backoff::Backoff;
use shared::db::d1::D1Db;
use shared::db::{DbError, Stmt, Value, run};
use shared::secret::Secret;
use std::time::{Duration, Instant};

const FAST: Backoff = Backoff {
    attempts: 3,
    base: Duration::from_millis(1),
    cap: Duration::from_millis(5),
    max_wait: Duration::from_secs(2),
};

fn client(server: &D1Server) -> D1Db {
    client_with_token(server, server.token())
}

fn client_with_token(server: &D1Server, token: &str) -> D1Db {
    D1Db::new(
        &server.base_url(),
        server.account_id(),
        server.database_id(),
        Secret::new(token),
    )
    .expect("building the D1 client")
    .with_retry(FAST)
}

fn schema(server: &D1Server) {
    server.execute_batch(
        "CREATE TABLE assets (id TEXT PRIMARY KEY, filename TEXT UNIQUE NOT NULL, size INTEGER, note TEXT);",
    );
}

fn select_all() -> Stmt {
    Stmt::new(
        "SELECT id, filename, size, note FROM assets ORDER BY id",
        vec![],
    )
}

#[tokio::test]
async fn results_round_trip_through_the_client() {
    let server = D1Server::start().await;
    schema(&server);
    let db = client(&server);
    let results = run(
        &db,
        vec![
            Stmt::new(
                "INSERT INTO assets (id, filename, size, note) VALUES (?1, ?2, ?3, ?4), (?5, ?6, ?7, ?8)",
                vec![
                    "a1".into(),
                    "one.png".into(),
                    Value::Integer(10),
                    Value::Null,
                    "a2".into(),
                    "two.png".into(),
                    Value::Integer(20),
                    "ünïcode ✓".into(),
                ],
            ),
            select_all(),
        ],
    )
    .await
    .expect("the batch runs");
    assert_eq!(results.len(), 2);
    assert_eq!(results[0].changes, 2);
    assert!(results[0].rows.is_empty());
    let rows = &results[1].rows;
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[0]["id"], "a1");
    assert_eq!(rows[0]["size"], 10);
    assert_eq!(rows[0]["note"], serde_json::Value::Null);
    assert_eq!(rows[1]["note"], "ünïcode ✓");
    assert_eq!(server.requests(), 1, "one batch is one D1 request");
    let sent = &server.request_bodies()[0];
    assert_eq!(sent["batch"].as_array().map(Vec::len), Some(2), "{sent}");
    assert_eq!(
        sent["batch"][0]["params"][2],
        json!(10),
        "integers travel as JSON numbers"
    );
}

#[tokio::test]
async fn unique_violation_becomes_conflict_and_applies_nothing() {
    let server = D1Server::start().await;
    schema(&server);
    let db = client(&server);
    run(
        &db,
        vec![Stmt::new(
            "INSERT INTO assets (id, filename) VALUES ('a1', 'x.png')",
            vec![],
        )],
    )
    .await
    .unwrap();
    let err = run(
        &db,
        vec![
            Stmt::new(
                "INSERT INTO assets (id, filename) VALUES ('a2', 'y.png')",
                vec![],
            ),
            Stmt::new(
                "INSERT INTO assets (id, filename) VALUES (?1, ?2)",
                vec!["a3".into(), "x.png".into()],
            ),
        ],
    )
    .await
    .expect_err("the UNIQUE constraint refuses the batch");
    assert!(matches!(err, DbError::Conflict(_)), "{err:?}");
    assert_eq!(server.query("SELECT id FROM assets").len(), 1);
}

#[tokio::test]
async fn one_429_then_success_is_retried() {
    let server = D1Server::start().await;
    let db = client(&server);
    server.fail_next(
        1,
        Fault::RateLimited {
            retry_after_secs: None,
        },
    );
    let results = run(&db, vec![Stmt::new("SELECT 1 AS one", vec![])])
        .await
        .expect("the retry succeeds");
    assert_eq!(results[0].rows[0]["one"], 1);
    assert_eq!(server.requests(), 2);
}

#[tokio::test]
async fn persistent_500_fails_after_the_policys_attempts_without_leaking() {
    let server = D1Server::start().await;
    let db = client(&server);
    server.fail_next(10, Fault::ServerError);
    let err = run(&db, vec![Stmt::new("SELECT 1", vec![])])
        .await
        .expect_err("every attempt fails");
    assert_eq!(server.requests(), u64::from(FAST.attempts));
    // A 500 may follow a commit: the batch's outcome is unknown.
    assert!(matches!(err, DbError::Uncertain(_)), "{err:?}");
    let text = err.to_string();
    assert!(!text.contains(server.token()), "{text}");
    assert!(!text.contains(server.account_id()), "{text}");
    assert!(!text.contains(server.database_id()), "{text}");
    assert!(
        !text.contains(r#"{"success":false"#),
        "the upstream body is not echoed: {text}"
    );
}

#[tokio::test]
async fn retry_after_is_honoured() {
    let server = D1Server::start().await;
    // FAST's backoff is milliseconds; the server's `retry-after: 1` replaces it.
    let db = client(&server);
    server.fail_next(
        1,
        Fault::RateLimited {
            retry_after_secs: Some(1),
        },
    );
    let started = Instant::now();
    run(&db, vec![Stmt::new("SELECT 1", vec![])])
        .await
        .expect("the retry succeeds");
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "waited {:?}",
        started.elapsed()
    );
    assert_eq!(server.requests(), 2);
}

#[tokio::test]
async fn a_401_is_not_retried() {
    let server = D1Server::start().await;
    let db = client_with_token(&server, "not-the-token");
    let err = run(&db, vec![Stmt::new("SELECT 1", vec![])])
        .await
        .expect_err("refused");
    assert!(matches!(err, DbError::Other(_)), "{err:?}");
    assert_eq!(server.requests(), 1);
    assert!(!err.to_string().contains("not-the-token"));
}

#[tokio::test]
async fn bad_sql_is_not_retried() {
    let server = D1Server::start().await;
    let db = client(&server);
    let err = run(&db, vec![Stmt::new("SELEC 1", vec![])])
        .await
        .expect_err("refused");
    assert!(matches!(err, DbError::Other(_)), "{err:?}");
    assert!(err.to_string().contains("syntax error"), "{err}");
    assert_eq!(server.requests(), 1);
}

/// A connection dropped before the answer is resent (the batch may have run; every batch imgbt
/// sends is safe to run twice, shared/src/db/d1.rs), and the batch runs once here, since the
/// dropped request did not run.
#[tokio::test]
async fn a_dropped_connection_is_resent() {
    let server = D1Server::start().await;
    schema(&server);
    let db = client(&server);
    server.fail_next(1, Fault::Disconnect);
    run(
        &db,
        vec![Stmt::new(
            "INSERT INTO assets (id, filename) VALUES ('a', 'b')",
            vec![],
        )],
    )
    .await
    .expect("the resent batch answered");
    assert_eq!(server.requests(), 2);
    assert_eq!(server.query("SELECT id FROM assets").len(), 1);
}

/// When no attempt got an answer, the outcome is unknown: `Uncertain`, never `Other` (which
/// callers read as "did not run" and undo after).
#[tokio::test]
async fn answers_lost_on_every_attempt_are_uncertain() {
    let server = D1Server::start().await;
    schema(&server);
    let db = client(&server);
    server.fail_next(10, Fault::Disconnect);
    let err = run(
        &db,
        vec![Stmt::new(
            "INSERT INTO assets (id, filename) VALUES ('a', 'b')",
            vec![],
        )],
    )
    .await
    .expect_err("no answer came back");
    assert!(matches!(err, DbError::Uncertain(_)), "{err:?}");
    assert_eq!(server.requests(), u64::from(FAST.attempts));
}

#[tokio::test]
async fn a_retry_after_beyond_the_policy_is_not_waited_for() {
    let server = D1Server::start().await;
    let db = client(&server);
    server.fail_next(
        1,
        Fault::RateLimited {
            retry_after_secs: Some(3600),
        },
    );
    let started = Instant::now();
    let err = run(&db, vec![Stmt::new("SELECT 1", vec![])])
        .await
        .expect_err("D1 asked for an hour: the refusal is reported, not waited out");
    assert!(matches!(err, DbError::RateLimited(_)), "{err:?}");
    assert_eq!(server.requests(), 1);
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "waited {:?}",
        started.elapsed()
    );
}
