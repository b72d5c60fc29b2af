//! The D1 gateway Worker (`infra/d1-gateway/`) on workerd's own D1 engine, under `wrangler dev
//! --local`: it refuses what D1's REST API refuses, in D1's envelope, and a batch is atomic on the
//! real engine. (The contract suite proves the functions on it: `contract.rs`, module `gateway`.)
//! Needs `npm ci --prefix infra/d1-gateway`; without it every test here fails saying so.

use imgbt_tests::d1_gateway::Gateway;
use reqwest::StatusCode;
use serde_json::{Value, json};
use shared::db::{self, Db, DbError, Stmt, Value as SqlValue};

fn gateway() -> &'static Gateway {
    Gateway::shared()
}

async fn post(url: &str, auth: Option<&str>, body: &str) -> (StatusCode, Value) {
    let mut request = reqwest::Client::new()
        .post(url)
        .header("content-type", "application/json")
        .body(body.to_owned());
    if let Some(auth) = auth {
        request = request.header("authorization", auth);
    }
    let response = request.send().await.expect("the gateway answers");
    envelope_of(response).await
}

async fn envelope_of(response: reqwest::Response) -> (StatusCode, Value) {
    let status = response.status();
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let text = response.text().await.expect("a body");
    assert!(
        content_type.starts_with("application/json"),
        "{status}: content-type {content_type:?}, body {text}"
    );
    let body: Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}"));
    (status, body)
}

/// Asserts D1's failure envelope with exactly one error of `code`; returns its message.
fn refusal(status: StatusCode, body: &Value, want_status: u16, code: u64) -> String {
    assert_eq!(status.as_u16(), want_status, "{body}");
    assert_eq!(body["success"], false, "{body}");
    assert_eq!(body["messages"], json!([]), "{body}");
    assert!(body["result"].is_null(), "{body}");
    let errors = body["errors"].as_array().expect("errors");
    assert_eq!(errors.len(), 1, "{body}");
    assert_eq!(errors[0]["code"], code, "{body}");
    let message = errors[0]["message"].as_str().expect("a message");
    assert!(!message.is_empty());
    message.to_owned()
}

fn bearer(gateway: &Gateway) -> String {
    format!("Bearer {}", gateway.token())
}

async fn count_vaults(gateway: &Gateway) -> i64 {
    let results = db::run(
        &gateway.client(),
        vec![Stmt::new("SELECT count(*) AS n FROM vaults", vec![])],
    )
    .await
    .expect("count");
    results[0].rows[0]["n"].as_i64().expect("a count")
}

const INSERT_VAULT: &str = r#"{"sql":"INSERT INTO vaults (id, name, created_at) VALUES (?1, 'n', 't')","params":["vault_x"]}"#;

#[tokio::test]
async fn a_missing_or_wrong_secret_is_401_in_d1_envelope_and_runs_nothing() {
    let gateway = gateway();
    let _turn = gateway.take().await;
    let url = gateway.query_url();
    let token = gateway.token();
    let wrong = [
        None,
        Some(String::new()),
        Some("Bearer".to_owned()),
        Some("Bearer ".to_owned()),
        Some(format!("Bearer {}", &token[..token.len() - 1])),
        Some(format!("Bearer {token}0")),
        Some(format!("Bearer {}", token.to_uppercase())),
        Some(format!("Basic {token}")),
        Some(token.to_owned()),
        Some("Bearer not-the-secret".to_owned()),
    ];
    for auth in &wrong {
        let (status, body) = post(&url, auth.as_deref(), INSERT_VAULT).await;
        let message = refusal(status, &body, 401, 10000);
        assert!(!message.contains(token), "the secret is not echoed");
    }
    assert_eq!(count_vaults(gateway).await, 0, "no refused request ran");
    let (status, body) = post(&url, Some(&bearer(gateway)), INSERT_VAULT).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(count_vaults(gateway).await, 1);
    // During a rotation the previous secret is accepted too.
    let previous = format!("Bearer {}", gateway.previous_token());
    let (status, body) = post(&url, Some(&previous), r#"{"sql":"SELECT 1"}"#).await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

#[tokio::test]
async fn other_paths_and_methods_are_404_whatever_the_secret() {
    let gateway = gateway();
    let base = gateway.base_url();
    let (account, database) = (gateway.account_id(), gateway.database_id());
    let query = format!("/accounts/{account}/d1/database/{database}");
    let paths = [
        "/".to_owned(),
        "/accounts".to_owned(),
        format!("/accounts/{account}/d1/database"),
        query.clone(),
        format!("{query}/raw"),
        format!("{query}/export"),
        format!("{query}/query/more"),
        format!("{query}/query/"),
        format!("/client/v4{query}/raw"),
        format!("/v4{query}/query"),
        format!("/accounts/{account}/d1/database//query"),
        format!("/accounts//d1/database/{database}/query"),
        format!("/accounts/{account}/r2/buckets/{database}/query"),
    ];
    let client = reqwest::Client::new();
    for path in &paths {
        for auth in [None, Some(bearer(gateway))] {
            let mut request = client.post(format!("{base}{path}")).body("{}");
            if let Some(auth) = &auth {
                request = request.header("authorization", auth);
            }
            let (status, body) = envelope_of(request.send().await.unwrap()).await;
            refusal(status, &body, 404, 7003);
        }
    }
    // The query path itself, with any method but POST.
    for method in ["GET", "PUT", "PATCH", "DELETE", "OPTIONS"] {
        for path in [query.clone(), format!("/client/v4{query}")] {
            let request = client
                .request(method.parse().unwrap(), format!("{base}{path}/query"))
                .header("authorization", bearer(gateway));
            let (status, body) = envelope_of(request.send().await.unwrap()).await;
            refusal(status, &body, 404, 7003);
        }
    }
    // HEAD has no body to carry the envelope: the status alone.
    let head = client
        .head(gateway.query_url())
        .header("authorization", bearer(gateway))
        .send()
        .await
        .unwrap();
    assert_eq!(head.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn another_account_is_403_and_another_database_404() {
    let gateway = gateway();
    let base = gateway.base_url();
    let (account, database) = (gateway.account_id(), gateway.database_id());
    let other_account = format!(
        "{base}/accounts/{}/d1/database/{database}/query",
        "0".repeat(32)
    );
    let (status, body) = post(
        &other_account,
        Some(&bearer(gateway)),
        r#"{"sql":"SELECT 1"}"#,
    )
    .await;
    refusal(status, &body, 403, 9109);
    let other_db = format!("{base}/accounts/{account}/d1/database/{}/query", "x-y-z");
    let (status, body) = post(&other_db, Some(&bearer(gateway)), r#"{"sql":"SELECT 1"}"#).await;
    let message = refusal(status, &body, 404, 7404);
    assert!(message.contains("x-y-z"), "{message}");
    // With the base URL's `/client/v4` as on api.cloudflare.com, the same endpoint.
    let v4 = format!("{base}/client/v4/accounts/{account}/d1/database/{database}/query");
    let (status, body) = post(&v4, Some(&bearer(gateway)), r#"{"sql":"SELECT 1 AS one"}"#).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["result"][0]["results"], json!([{ "one": 1 }]));
}

#[tokio::test]
async fn malformed_bodies_are_400_as_d1_answers_them() {
    let gateway = gateway();
    let url = gateway.query_url();
    let auth = bearer(gateway);
    let (status, body) = post(&url, Some(&auth), "{not json").await;
    refusal(status, &body, 400, 6007);
    for bad in [
        r#"[]"#,
        r#"{}"#,
        r#"{"sql":1}"#,
        r#"{"batch":{}}"#,
        r#"{"batch":[]}"#,
        r#"{"batch":[1]}"#,
        r#"{"sql":"SELECT ?1","params":[[1]]}"#,
        r#"{"sql":"SELECT ?1","params":[{"a":1}]}"#,
        r#"{"sql":"SELECT ?1","params":"x"}"#,
    ] {
        let (status, body) = post(&url, Some(&auth), bad).await;
        refusal(status, &body, 400, 7400);
    }
    // D1's limits: 100 bound parameters.
    let marks: Vec<String> = (1..=101).map(|i| format!("?{i}")).collect();
    let params: Vec<i64> = (1..=101).collect();
    let too_many = json!({ "sql": format!("SELECT {}", marks.join(",")), "params": params });
    let (status, body) = post(&url, Some(&auth), &too_many.to_string()).await;
    refusal(status, &body, 400, 7500);
    // SQL the engine refuses: 400 with SQLite's message, never a 5xx the client would retry.
    for (sql, says) in [
        ("SELEC 1", "syntax error"),
        ("SELECT * FROM no_such_table", "no such table"),
        ("BEGIN TRANSACTION", "transaction"),
        ("PRAGMA journal_mode = DELETE", "not authorized"),
    ] {
        let (status, body) = post(&url, Some(&auth), &json!({ "sql": sql }).to_string()).await;
        let message = refusal(status, &body, 400, 7500);
        assert!(message.contains(says), "{sql}: {message}");
        assert!(
            !message.starts_with("D1_"),
            "the binding's prefix is removed: {message}"
        );
    }
}

#[tokio::test]
async fn a_failing_statement_rolls_back_the_whole_batch_on_the_real_engine() {
    let gateway = gateway();
    let _turn = gateway.take().await;
    let url = gateway.query_url();
    let auth = bearer(gateway);
    let vault = |id: &str| json!({ "sql": "INSERT INTO vaults (id, name, created_at) VALUES (?1, 'n', 't')", "params": [id] });
    // A unique violation as the third statement: the first two are undone.
    let batch = json!({ "batch": [vault("vault_a"), vault("vault_b"), vault("vault_a")] });
    let (status, body) = post(&url, Some(&auth), &batch.to_string()).await;
    let message = refusal(status, &body, 400, 7500);
    assert!(
        message.contains("UNIQUE constraint failed: vaults.id"),
        "{message}"
    );
    assert_eq!(
        count_vaults(gateway).await,
        0,
        "nothing of the batch stayed"
    );

    // A foreign key violation after an update: the update is undone too.
    let (status, body) = post(&url, Some(&auth), &vault("vault_c").to_string()).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let batch = json!({ "batch": [
        { "sql": "UPDATE vaults SET name = 'renamed' WHERE id = 'vault_c'" },
        { "sql": "INSERT INTO api_keys (id, vault_id, kind, key_hash, hint, label, created_at) \
                  VALUES ('key_1', 'vault_missing', 'public', 'h', 'pk_1', 'l', 't')" },
    ]});
    let (status, body) = post(&url, Some(&auth), &batch.to_string()).await;
    let message = refusal(status, &body, 400, 7500);
    assert!(message.contains("FOREIGN KEY"), "{message}");
    let names = db::run(
        &gateway.client(),
        vec![Stmt::new("SELECT name FROM vaults", vec![])],
    )
    .await
    .unwrap();
    assert_eq!(names[0].rows.len(), 1);
    assert_eq!(names[0].rows[0]["name"], "n", "the update was rolled back");

    // Through our client, a unique violation is a conflict and the batch is undone.
    let client = gateway.client();
    let insert = |id: &'static str| {
        Stmt::new(
            "INSERT INTO vaults (id, name, created_at) VALUES (?1, 'n', 't')",
            vec![SqlValue::Text(id.to_owned())],
        )
    };
    let err = client
        .batch(vec![insert("vault_d"), insert("vault_c")])
        .await
        .expect_err("a duplicate id");
    assert!(matches!(err, DbError::Conflict(_)), "{err:?}");
    assert_eq!(count_vaults(gateway).await, 1);
}

#[tokio::test]
async fn results_and_meta_come_one_per_statement() {
    let gateway = gateway();
    let _turn = gateway.take().await;
    let client = gateway.client();
    let results = db::run(
        &client,
        vec![
            Stmt::new(
                "INSERT INTO vaults (id, name, created_at) VALUES ('v1', 'a', 't'), ('v2', 'b', 't')",
                vec![],
            ),
            Stmt::new(
                "UPDATE vaults SET name = ?1 WHERE id IN ('v1', 'v2', 'v3')",
                vec![SqlValue::Text("c".into())],
            ),
            Stmt::new(
                "SELECT id, name, NULL AS absent, 7 AS seven FROM vaults ORDER BY id",
                vec![],
            ),
            Stmt::new("DELETE FROM vaults WHERE id = 'v1'", vec![]),
        ],
    )
    .await
    .expect("a batch");
    assert_eq!(results.len(), 4);
    assert_eq!(results[0].changes, 2);
    assert_eq!(results[1].changes, 2);
    assert_eq!(results[2].changes, 0);
    let rows = &results[2].rows;
    assert_eq!(rows.len(), 2);
    for (row, id) in rows.iter().zip(["v1", "v2"]) {
        assert_eq!(row.len(), 4, "{row:?}");
        assert_eq!(row["id"], id);
        assert_eq!(row["name"], "c");
        assert!(row["absent"].is_null());
        assert_eq!(row["seven"], 7);
    }
    assert_eq!(results[3].changes, 1);

    // The raw envelope, as D1's REST API shapes it.
    let (status, body) = post(
        &gateway.query_url(),
        Some(&bearer(gateway)),
        r#"{"sql":"SELECT ?1 AS t, ?2 AS i, ?3 AS n, ?4 AS b","params":["x",5,null,true]}"#,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["success"], true);
    assert_eq!(body["errors"], json!([]));
    assert_eq!(body["messages"], json!([]));
    let result = &body["result"].as_array().expect("result")[0];
    assert_eq!(result["success"], true);
    assert_eq!(
        result["results"],
        json!([{ "t": "x", "i": 5, "n": null, "b": 1 }])
    );
    assert!(result["meta"]["changes"].is_number(), "{result}");
    assert!(result["meta"]["rows_read"].is_number(), "{result}");
}

/// Processes of process group `pgid` that are still running (zombies excluded).
fn live_members(pgid: u32) -> Vec<String> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        // pid (comm) state ppid pgrp ...: comm may hold spaces, so split after its `)`.
        let Some((head, rest)) = stat.rsplit_once(") ") else {
            continue;
        };
        let fields: Vec<&str> = rest.split_whitespace().collect();
        if fields.len() > 2 && fields[0] != "Z" && fields[2] == pgid.to_string() {
            out.push(head.to_owned());
        }
    }
    out
}

#[test]
fn wrangler_and_workerd_end_with_the_test_process() {
    let gateway = Gateway::start().unwrap_or_else(|e| panic!("{e}"));
    let pgid = gateway.process_group();
    let addr = gateway.base_url().trim_start_matches("http://").to_owned();
    let members = live_members(pgid);
    assert!(
        members.iter().any(|m| m.contains("workerd")),
        "workerd runs in the gateway's group: {members:?}"
    );
    // Dropping the gateway closes the pipe, as the test process's exit does.
    drop(gateway);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let members = live_members(pgid);
        let listening = std::net::TcpStream::connect(&addr).is_ok();
        if members.is_empty() && !listening {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "still running: {members:?}, listening: {listening}"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}

#[tokio::test]
async fn wrangler_runs_offline_without_reaching_for_cloudflare() {
    let gateway = gateway();
    // A request first, so that anything wrangler does lazily has happened.
    let (status, body) = post(
        &gateway.query_url(),
        Some(&bearer(gateway)),
        r#"{"sql":"SELECT 1"}"#,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let output = gateway.output();
    assert!(output.contains("Ready on http://127.0.0.1:"), "{output}");
    // Without CLOUDFLARE_CF_FETCH_ENABLED=false, wrangler fetches the `Request.cf` object from
    // Cloudflare at start and, offline, warns that it could not.
    for sign in [
        "Unable to fetch",
        "getaddrinfo",
        "ENOTFOUND",
        "login",
        "newer version",
    ] {
        assert!(
            !output.contains(sign),
            "{sign:?} in wrangler's output:\n{output}"
        );
    }
    assert!(
        !output.contains(gateway.token()),
        "the secret is never printed"
    );
}

/// The gateway backend's fault proxy (what the fault matrix arms through `TestApp::d1_faults`)
/// in front of workerd's D1: a before-fault runs nothing, an after-commit fault commits.
#[tokio::test]
async fn the_apps_fault_proxy_fails_requests_before_or_after_they_commit() {
    use imgbt_test_servers::d1::Fault;
    use imgbt_tests::{Backend, Store, TestApp};

    let app = TestApp::on(Backend::Gateway).await;
    let gateway = app.gateway().expect("the gateway backend");
    let Store::Gateway(stores) = &app.store else {
        unreachable!("the gateway backend")
    };
    let url = gateway
        .query_url()
        .replacen(gateway.base_url(), &stores.proxy.base_url(), 1);
    assert_ne!(
        url,
        gateway.query_url(),
        "the app's D1 goes through its proxy"
    );
    let faults = app
        .d1_faults()
        .expect("fault controls on the gateway backend");
    faults.reset_requests();
    let auth = bearer(gateway);
    let insert = |id: &str| {
        json!({"sql": "INSERT INTO vaults (id, name, created_at) VALUES (?1, 'n', 't')", "params": [id]})
            .to_string()
    };
    let send = |body: String| {
        reqwest::Client::new()
            .post(&url)
            .header("authorization", &auth)
            .header("content-type", "application/json")
            .body(body)
            .send()
    };
    let vaults = count_vaults(gateway).await;

    faults.fail_next(1, Fault::RunThenStatus(502));
    let response = send(insert("vault_a")).await.expect("an answer");
    assert_eq!(response.status(), StatusCode::BAD_GATEWAY);
    let content_type = response.headers()["content-type"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(content_type.starts_with("text/html"), "{content_type}");
    assert_eq!(
        count_vaults(gateway).await,
        vaults + 1,
        "committed on workerd"
    );

    faults.fail_next(1, Fault::RunThenDisconnect);
    let err = send(insert("vault_b")).await.expect_err("no answer");
    assert!(err.status().is_none(), "{err:?}");
    assert_eq!(
        count_vaults(gateway).await,
        vaults + 2,
        "committed on workerd"
    );

    faults.fail_next(1, Fault::Disconnect);
    let err = send(insert("vault_c")).await.expect_err("no answer");
    assert!(err.status().is_none(), "{err:?}");
    faults.fail_next(1, Fault::ServerError);
    let (status, body) = envelope_of(send(insert("vault_d")).await.expect("an answer")).await;
    refusal(status, &body, 500, 7500);
    assert_eq!(count_vaults(gateway).await, vaults + 2, "nothing forwarded");

    let (status, body) = envelope_of(send(insert("vault_e")).await.expect("an answer")).await;
    assert_eq!(
        status,
        StatusCode::OK,
        "unfaulted, the gateway's own answer: {body}"
    );
    assert_eq!(body["result"][0]["meta"]["changes"], 1, "{body}");
    assert_eq!(faults.requests(), 5);
}
