//! The D1 stand-in answers as D1's REST API does, checked over raw HTTP.

use imgbt_test_servers::D1Faults;
use imgbt_test_servers::D1Server;
use imgbt_test_servers::d1::Fault;
use serde_json::{Value, json};
use std::time::{Duration, Instant};

async fn post(server: &D1Server, body: Value) -> (u16, reqwest::header::HeaderMap, Value) {
    post_with(&server.query_url(), Some(server.token()), body.to_string()).await
}

async fn post_with(
    url: &str,
    token: Option<&str>,
    body: String,
) -> (u16, reqwest::header::HeaderMap, Value) {
    let mut request = reqwest::Client::new()
        .post(url)
        .header("content-type", "application/json")
        .body(body);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.expect("the server answers");
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let body: Value =
        serde_json::from_slice(&response.bytes().await.unwrap()).expect("a JSON body");
    (status, headers, body)
}

fn only_error(body: &Value) -> (i64, String) {
    assert_eq!(body["success"], false, "{body}");
    assert_eq!(body["messages"], json!([]), "{body}");
    assert!(body["result"].is_null(), "{body}");
    let error = &body["errors"][0];
    (
        error["code"].as_i64().unwrap(),
        error["message"].as_str().unwrap().to_owned(),
    )
}

#[tokio::test]
async fn success_envelope_has_one_result_per_statement_with_meta() {
    let server = D1Server::start().await;
    let (status, headers, body) = post(
        &server,
        json!({"batch": [
            {"sql": "CREATE TABLE t (id INTEGER PRIMARY KEY, name TEXT UNIQUE, score REAL, data BLOB, flag INTEGER)"},
            {"sql": "INSERT INTO t (name, score, data, flag) VALUES (?1, ?2, X'0102', ?3), (?4, NULL, NULL, ?5)",
             "params": ["a", 1.5, true, "b", false]},
            {"sql": "SELECT id, name, score, data, flag FROM t ORDER BY id", "params": []}
        ]}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(headers["content-type"], "application/json");
    assert_eq!(body["success"], true);
    assert_eq!(body["errors"], json!([]));
    assert_eq!(body["messages"], json!([]));
    let results = body["result"].as_array().unwrap();
    assert_eq!(results.len(), 3);
    for result in results {
        assert_eq!(result["success"], true);
        let meta = result["meta"].as_object().unwrap();
        for field in [
            "changed_db",
            "changes",
            "duration",
            "last_row_id",
            "rows_read",
            "rows_written",
            "size_after",
        ] {
            assert!(meta.contains_key(field), "meta lacks {field}: {result}");
        }
    }
    assert_eq!(results[0]["results"], json!([]));
    assert_eq!(results[0]["meta"]["changed_db"], true);
    assert_eq!(results[1]["meta"]["changes"], 2);
    assert_eq!(results[1]["meta"]["last_row_id"], 2);
    assert_eq!(results[1]["meta"]["rows_written"], 2);
    assert_eq!(results[2]["meta"]["changes"], 0);
    assert_eq!(results[2]["meta"]["changed_db"], false);
    assert!(results[2]["meta"]["size_after"].as_i64().unwrap() > 0);
    assert_eq!(
        results[2]["results"],
        json!([
            {"id": 1, "name": "a", "score": 1.5, "data": [1, 2], "flag": 1},
            {"id": 2, "name": "b", "score": null, "data": null, "flag": 0}
        ])
    );
}

#[tokio::test]
async fn single_sql_body_and_semicolon_joined_statements_each_get_a_result() {
    let server = D1Server::start().await;
    let (status, _, body) = post(&server, json!({"sql": "SELECT ?1 AS x", "params": ["7"]})).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["result"][0]["results"], json!([{"x": "7"}]));

    let (status, _, body) = post(
        &server,
        json!({"sql": "CREATE TABLE u (a INTEGER); INSERT INTO u VALUES (1); SELECT a FROM u;"}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["result"].as_array().unwrap().len(), 3);
    assert_eq!(body["result"][2]["results"], json!([{"a": 1}]));
}

#[tokio::test]
async fn failing_second_statement_leaves_the_first_unapplied() {
    let server = D1Server::start().await;
    server
        .execute_batch("CREATE TABLE assets (id TEXT PRIMARY KEY, filename TEXT UNIQUE NOT NULL);");
    server.execute_batch("INSERT INTO assets VALUES ('a1', 'taken.png');");
    let (status, _, body) = post(
        &server,
        json!({"batch": [
            {"sql": "INSERT INTO assets VALUES (?1, ?2)", "params": ["a2", "new.png"]},
            {"sql": "INSERT INTO assets VALUES (?1, ?2)", "params": ["a3", "taken.png"]}
        ]}),
    )
    .await;
    assert_eq!(status, 400, "{body}");
    let (code, message) = only_error(&body);
    assert_eq!(code, 7500);
    assert!(
        message.starts_with("UNIQUE constraint failed: assets.filename"),
        "{message}"
    );
    assert!(message.ends_with(": SQLITE_CONSTRAINT"), "{message}");
    assert_eq!(
        server.query("SELECT id FROM assets ORDER BY id"),
        vec![json!({"id": "a1"}).as_object().unwrap().clone()]
    );
}

#[tokio::test]
async fn transaction_statements_are_refused_with_7500() {
    let server = D1Server::start().await;
    server.execute_batch("CREATE TABLE t (a INTEGER);");
    for sql in [
        "BEGIN",
        "BEGIN TRANSACTION",
        "COMMIT",
        "END",
        "ROLLBACK",
        "SAVEPOINT s1",
        "RELEASE s1",
    ] {
        let (status, _, body) = post(
            &server,
            json!({"batch": [{"sql": "INSERT INTO t VALUES (1)"}, {"sql": sql}]}),
        )
        .await;
        assert_eq!(status, 400, "{sql}: {body}");
        let (code, message) = only_error(&body);
        assert_eq!(code, 7500, "{sql}");
        assert!(
            message.contains("transactions are not supported"),
            "{sql}: {message}"
        );
    }
    assert!(
        server.query("SELECT a FROM t").is_empty(),
        "no refused request applied anything"
    );
}

#[tokio::test]
async fn unlisted_pragmas_are_not_authorized_and_listed_ones_run() {
    let server = D1Server::start().await;
    let (status, _, body) = post(&server, json!({"sql": "PRAGMA journal_mode = WAL"})).await;
    assert_eq!(status, 400);
    assert_eq!(
        only_error(&body),
        (7500, "not authorized: SQLITE_AUTH".to_owned())
    );
    let (status, _, body) = post(&server, json!({"sql": "PRAGMA foreign_keys"})).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["result"][0]["results"], json!([{"foreign_keys": 1}]));
}

#[tokio::test]
async fn bad_sql_is_400_with_7500_and_sqlites_message() {
    let server = D1Server::start().await;
    let (status, _, body) = post(&server, json!({"sql": "SELEC 1"})).await;
    assert_eq!(status, 400);
    let (code, message) = only_error(&body);
    assert_eq!(code, 7500);
    assert!(
        message.starts_with("near \"SELEC\": syntax error"),
        "{message}"
    );
    assert!(message.ends_with(": SQLITE_ERROR"), "{message}");

    let (status, _, body) = post(&server, json!({"sql": "SELECT * FROM missing"})).await;
    assert_eq!(status, 400);
    let (code, message) = only_error(&body);
    assert_eq!(code, 7500);
    assert!(message.starts_with("no such table: missing"), "{message}");
}

#[tokio::test]
async fn wrong_parameter_count_and_limits_are_refused() {
    let server = D1Server::start().await;
    let (status, _, body) = post(
        &server,
        json!({"sql": "SELECT ?1, ?2", "params": ["only one"]}),
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(
        only_error(&body),
        (
            7500,
            "Wrong number of parameter bindings for SQL query.".to_owned()
        )
    );

    let params: Vec<Value> = (0..101).map(|i| json!(i)).collect();
    let sql = format!("SELECT {}", vec!["?"; 101].join(", "));
    let (status, _, body) = post(&server, json!({"sql": sql, "params": params})).await;
    assert_eq!(status, 400);
    assert_eq!(only_error(&body).0, 7500);

    let params: Vec<Value> = (0..100).map(|i| json!(i)).collect();
    let sql = format!("SELECT {}", vec!["?"; 100].join(", "));
    let (status, _, body) = post(&server, json!({"sql": sql, "params": params})).await;
    assert_eq!(status, 200, "100 parameters are allowed: {body}");

    let long = format!("SELECT '{}'", "x".repeat(100_000));
    let (status, _, body) = post(&server, json!({"sql": long})).await;
    assert_eq!(status, 400);
    assert_eq!(only_error(&body).0, 7500);
}

#[tokio::test]
async fn bodies_that_are_not_json_or_lack_sql_are_400_envelopes() {
    let server = D1Server::start().await;
    let url = server.query_url();
    let (status, _, body) = post_with(&url, Some(server.token()), "not json".into()).await;
    assert_eq!(status, 400);
    only_error(&body);
    let (status, _, body) = post(&server, json!({"query": "SELECT 1"})).await;
    assert_eq!(status, 400);
    only_error(&body);
    let (status, _, body) = post(&server, json!({"sql": "SELECT ?", "params": [{"a": 1}]})).await;
    assert_eq!(status, 400);
    only_error(&body);
}

#[tokio::test]
async fn wrong_or_missing_token_is_401_with_10000() {
    let server = D1Server::start().await;
    let url = server.query_url();
    for token in [None, Some("wrong-token")] {
        let (status, _, body) =
            post_with(&url, token, json!({"sql": "SELECT 1"}).to_string()).await;
        assert_eq!(status, 401);
        assert_eq!(
            only_error(&body),
            (10000, "Authentication error".to_owned())
        );
    }
}

#[tokio::test]
async fn unknown_database_is_404_with_7404_and_other_paths_404() {
    let server = D1Server::start().await;
    let url = format!(
        "{}/accounts/{}/d1/database/{}/query",
        server.base_url(),
        server.account_id(),
        "nope"
    );
    let (status, _, body) = post_with(
        &url,
        Some(server.token()),
        json!({"sql": "SELECT 1"}).to_string(),
    )
    .await;
    assert_eq!(status, 404);
    assert_eq!(only_error(&body).0, 7404);
    let url = format!(
        "{}/accounts/{}/d1/database",
        server.base_url(),
        server.account_id()
    );
    let (status, _, body) = post_with(&url, Some(server.token()), "{}".into()).await;
    assert_eq!(status, 404);
    only_error(&body);
}

#[tokio::test]
async fn fault_injection_answers_without_running_and_counts_requests() {
    let server = D1Server::start().await;
    server.execute_batch("CREATE TABLE t (a INTEGER);");
    server.fail_next(
        1,
        Fault::RateLimited {
            retry_after_secs: Some(3),
        },
    );
    server.fail_next(
        1,
        Fault::RateLimited {
            retry_after_secs: None,
        },
    );
    server.fail_next(1, Fault::ServerError);
    let insert = json!({"sql": "INSERT INTO t VALUES (1)"});

    let (status, headers, body) = post(&server, insert.clone()).await;
    assert_eq!(status, 429);
    assert_eq!(headers["retry-after"], "3");
    only_error(&body);
    let (status, headers, _) = post(&server, insert.clone()).await;
    assert_eq!(status, 429);
    assert!(headers.get("retry-after").is_none());
    let (status, _, body) = post(&server, insert.clone()).await;
    assert_eq!(status, 500);
    assert_eq!(only_error(&body), (7500, "internal error".to_owned()));
    assert!(
        server.query("SELECT a FROM t").is_empty(),
        "faulted requests never run"
    );

    let (status, _, _) = post(&server, insert.clone()).await;
    assert_eq!(status, 200);
    assert_eq!(server.query("SELECT a FROM t").len(), 1);
    assert_eq!(server.requests(), 4);
    assert_eq!(server.request_bodies()[3], insert);
    server.reset_requests();
    assert_eq!(server.requests(), 0);
    assert!(server.request_bodies().is_empty());
}

#[tokio::test]
async fn latency_is_added_before_each_answer() {
    let server = D1Server::start().await;
    server.set_latency(Duration::from_millis(200));
    let started = Instant::now();
    let (status, _, _) = post(&server, json!({"sql": "SELECT 1"})).await;
    assert_eq!(status, 200);
    assert!(started.elapsed() >= Duration::from_millis(200));
}

/// Sends `body` and returns the answer as it came (status, headers, raw bytes), or the transport
/// error when none came.
async fn post_raw(
    url: &str,
    token: &str,
    body: &Value,
) -> Result<(u16, reqwest::header::HeaderMap, Vec<u8>), reqwest::Error> {
    let response = reqwest::Client::new()
        .post(url)
        .bearer_auth(token)
        .header("content-type", "application/json")
        .body(body.to_string())
        .send()
        .await?;
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    Ok((status, headers, response.bytes().await?.to_vec()))
}

fn insert(value: i64) -> Value {
    json!({"sql": "INSERT INTO t VALUES (?1)", "params": [value]})
}

fn rows(server: &D1Server) -> Vec<i64> {
    server
        .query("SELECT a FROM t ORDER BY a")
        .iter()
        .map(|row| row["a"].as_i64().unwrap())
        .collect()
}

#[tokio::test]
async fn run_then_status_commits_then_answers_cloudflares_page_or_d1s_500() {
    let server = D1Server::start().await;
    server.execute_batch("CREATE TABLE t (a INTEGER);");
    server.fail_next(1, Fault::RunThenStatus(502));
    server.fail_next(1, Fault::RunThenStatus(504));
    server.fail_next(1, Fault::RunThenStatus(500));

    for (value, status, words) in [(1, 502, "Bad gateway"), (2, 504, "Gateway time-out")] {
        let (got, headers, body) = post_raw(&server.query_url(), server.token(), &insert(value))
            .await
            .expect("an answer comes");
        assert_eq!(got, status);
        let content_type = headers["content-type"].to_str().unwrap();
        assert!(content_type.starts_with("text/html"), "{content_type}");
        assert_eq!(headers["server"], "cloudflare");
        assert!(headers.contains_key("cf-ray"));
        let page = String::from_utf8(body).unwrap();
        assert!(page.starts_with("<!DOCTYPE html>"), "{page}");
        assert!(page.contains(&format!("{status}: {words}")), "{page}");
        assert!(
            serde_json::from_str::<Value>(&page).is_err(),
            "the edge's page is not D1's JSON"
        );
    }
    let (status, headers, body) = post_raw(&server.query_url(), server.token(), &insert(3))
        .await
        .expect("an answer comes");
    assert_eq!(status, 500);
    assert_eq!(headers["content-type"], "application/json");
    let body: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(only_error(&body), (7500, "internal error".to_owned()));

    assert_eq!(rows(&server), [1, 2, 3], "each faulted write committed");
    assert_eq!(server.requests(), 3, "one request each, as unfaulted");
    let (status, _, body) = post(&server, json!({"sql": "SELECT count(*) AS n FROM t"})).await;
    assert_eq!(status, 200, "the queue is spent: {body}");
    assert_eq!(body["result"][0]["results"], json!([{"n": 3}]));
}

#[tokio::test]
async fn run_then_disconnect_commits_then_answers_nothing() {
    let server = D1Server::start().await;
    server.execute_batch("CREATE TABLE t (a INTEGER);");
    server.fail_next(1, Fault::RunThenDisconnect);
    let err = post_raw(&server.query_url(), server.token(), &insert(7))
        .await
        .expect_err("no answer comes");
    assert!(err.status().is_none(), "no HTTP status: {err:?}");
    assert!(err.is_request(), "a transport error: {err:?}");
    assert_eq!(rows(&server), [7], "the write committed before the hang-up");
    assert_eq!(server.requests(), 1);
}

#[tokio::test]
async fn before_faults_leave_nothing_applied() {
    let server = D1Server::start().await;
    server.execute_batch("CREATE TABLE t (a INTEGER);");
    server.fail_next(
        1,
        Fault::RateLimited {
            retry_after_secs: None,
        },
    );
    server.fail_next(1, Fault::ServerError);
    server.fail_next(1, Fault::Disconnect);
    let url = server.query_url();
    let (status, _, _) = post_raw(&url, server.token(), &insert(1)).await.unwrap();
    assert_eq!(status, 429);
    let (status, _, _) = post_raw(&url, server.token(), &insert(2)).await.unwrap();
    assert_eq!(status, 500);
    let err = post_raw(&url, server.token(), &insert(3))
        .await
        .expect_err("hung up");
    assert!(err.status().is_none(), "{err:?}");
    assert!(rows(&server).is_empty(), "no faulted request ran");
    assert_eq!(server.requests(), 3);
}

#[test]
#[should_panic(expected = "not an HTTP status")]
fn a_status_that_is_not_http_is_refused_when_armed() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let server = runtime.block_on(D1Server::start());
    server.fail_next(1, Fault::RunThenStatus(42));
}
