//! A function started against a D1 database that lacks its migrations answers 500 INTERNAL_ERROR
//! with an ERROR log line naming the missing migrations and how to apply them, writes nothing and
//! answers nothing from that schema; once the migrations are applied, the same instance serves
//! the same request. On a migrated database the check costs no D1 request of its own. Proven on
//! the D1 test server (rusqlite) and on the D1 gateway (workerd's D1), since the check relies on
//! how SQLite evaluates one statement. (Its own test binary: it installs the process-wide log
//! subscriber.)

use imgbt_test_servers::{D1Server, S3Server};
use imgbt_tests::d1_gateway::Gateway;
use imgbt_tests::{Form, Reply, cloudflare_config, dispatch, function_deps, gateway_config};
use lambda_http::http::{HeaderValue, Method};
use lambda_http::{Body, Request, RequestExt};
use serde_json::Value;
use shared::admin::{self, NewVault};
use shared::db::{self, Db, Stmt, Value as SqlValue};
use shared::deps::CloudflareConfig;
use shared::migrations::{self, MIGRATIONS};
use shared::{Deps, routes};
use std::collections::HashMap;
use std::io::Write;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The log of this test binary, as Lambda's JSON log format writes it.
fn captured() -> &'static Captured {
    static LOG: OnceLock<Captured> = OnceLock::new();
    LOG.get_or_init(|| {
        // SAFETY of the environment: set once, before the subscriber reads it; nothing else in
        // this binary reads it.
        unsafe { std::env::set_var("AWS_LAMBDA_LOG_FORMAT", "JSON") };
        let captured = Captured::default();
        let sink = captured.clone();
        lambda_http::tracing::init_default_subscriber_with_writer(move || sink.clone());
        captured
    })
}

/// The log line of the request `request_id`.
fn line_of(request_id: &str) -> Value {
    let text = String::from_utf8(captured().0.lock().unwrap().clone()).unwrap();
    let lines: Vec<Value> = text
        .lines()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .filter(|v| v["fields"]["request_id"] == request_id)
        .collect();
    assert_eq!(lines.len(), 1, "one line for {request_id}: {text}");
    lines.into_iter().next().unwrap()
}

/// The stores of one test: D1 as `imgbt` reaches it (no check), and as a function does.
struct Stores {
    config: CloudflareConfig,
    s3: S3Server,
    /// Keeps the D1 test server running, or the gateway's database held.
    _hold: Box<dyn std::any::Any + Send>,
}

impl Stores {
    async fn d1_server() -> Stores {
        let (d1, s3) = tokio::join!(D1Server::start(), S3Server::start());
        Stores {
            config: cloudflare_config(&d1, &s3),
            s3,
            _hold: Box::new(d1),
        }
    }

    async fn gateway() -> Stores {
        let gateway = Gateway::shared();
        let (turn, s3) = tokio::join!(gateway.take(), S3Server::start());
        Stores {
            config: gateway_config(gateway, &s3),
            s3,
            _hold: Box::new(turn),
        }
    }

    /// What `imgbt migrate` and the suites use: D1 as it is.
    fn admin(&self) -> Deps {
        Deps::cloudflare(&self.config).expect("Cloudflare clients")
    }
}

/// Leaves the database with only the first `keep` migrations applied and recorded, or (`None`)
/// with no table at all, `d1_migrations` included.
async fn reset(db: &dyn Db, keep: Option<usize>) {
    let tables = db::run(
        db,
        vec![Stmt::new(
            "SELECT name FROM sqlite_master WHERE type = 'table' \
             AND name NOT LIKE '\\_cf\\_%' ESCAPE '\\' AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\'",
            vec![],
        )],
    )
    .await
    .unwrap();
    let mut names: Vec<String> = tables[0]
        .rows
        .iter()
        .map(|r| r["name"].as_str().unwrap().to_owned())
        .collect();
    // Tables that reference `vaults` go first.
    let rank = |name: &str| match name {
        "vaults" => 2,
        "d1_migrations" => 3,
        _ => 1,
    };
    names.sort_by_key(|n| rank(n));
    if !names.is_empty() {
        let drops = names
            .iter()
            .map(|n| Stmt::new(format!("DROP TABLE \"{n}\""), vec![]))
            .collect();
        db::run(db, drops).await.unwrap();
    }
    let Some(keep) = keep else { return };
    db::run(
        db,
        vec![Stmt::new(
            "CREATE TABLE d1_migrations (id INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT UNIQUE, \
             applied_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP NOT NULL)",
            vec![],
        )],
    )
    .await
    .unwrap();
    for m in &MIGRATIONS[..keep] {
        let mut batch: Vec<Stmt> = migrations::statements(m.sql)
            .into_iter()
            .map(|sql| Stmt::new(sql, vec![]))
            .collect();
        batch.push(Stmt::new(
            "INSERT INTO d1_migrations (name) VALUES (?1)",
            vec![SqlValue::from(m.name)],
        ));
        db::run(db, batch).await.unwrap();
    }
}

async fn tables(db: &dyn Db) -> Vec<String> {
    let rows = db::run(
        db,
        vec![Stmt::new(
            "SELECT name FROM sqlite_master WHERE type = 'table' \
             AND name IN ('d1_migrations', 'vaults', 'assets', 'uploads') ORDER BY name",
            vec![],
        )],
    )
    .await
    .unwrap();
    rows[0]
        .rows
        .iter()
        .map(|r| r["name"].as_str().unwrap().to_owned())
        .collect()
}

async fn asset_count(db: &dyn Db) -> i64 {
    let rows = db::run(
        db,
        vec![Stmt::new("SELECT count(*) AS n FROM assets", vec![])],
    )
    .await
    .unwrap();
    rows[0].rows[0]["n"].as_i64().unwrap()
}

static SERIAL: AtomicUsize = AtomicUsize::new(0);

/// A request id of its own, to find the request's log line.
fn request_id(what: &str) -> String {
    format!("{what}-{}", SERIAL.fetch_add(1, Ordering::Relaxed))
}

/// A request to `function` in `vault_id` with `key`, as API Gateway routes it.
fn request(function: &str, vault_id: &str, key: &str, form: Option<&Form>, id: &str) -> Request {
    let route = routes::route_of(function);
    let path = route.path.replace("{vaultId}", vault_id);
    let body = form.map_or(Body::Empty, |f| Body::Binary(f.to_bytes()));
    let mut req = lambda_http::http::Request::builder()
        .method(Method::from_bytes(route.method.as_bytes()).unwrap())
        .uri(path)
        .body(body)
        .unwrap();
    req.headers_mut().insert(
        "authorization",
        HeaderValue::from_str(&format!("Bearer {key}")).unwrap(),
    );
    if let Some(form) = form {
        req.headers_mut().insert(
            "content-type",
            HeaderValue::from_str(&form.content_type()).unwrap(),
        );
    }
    let mut context = lambda_http::Context::default();
    context.request_id = id.to_owned();
    req.with_path_parameters(HashMap::from([("vaultId".to_owned(), vault_id.to_owned())]))
        .with_lambda_context(context)
}

async fn upload(deps: &Deps, vault: &NewVault, name: &str, id: &str) -> Reply {
    let form = Form::tiny("migrations", "check", "files", name);
    let req = request(
        "upload",
        &vault.vault_id,
        &vault.secret_key,
        Some(&form),
        id,
    );
    Reply::from(dispatch(deps, "upload", req).await)
}

/// Asserts the 500 and its ERROR line naming `missing`, and returns the line's cause.
fn assert_refused(reply: &Reply, id: &str, missing: &[&str]) {
    reply.error(500, "INTERNAL_ERROR");
    assert!(
        !reply.text().contains("migrat"),
        "the cause stays in the log: {}",
        reply.text()
    );
    let line = line_of(id);
    assert_eq!(line["level"], "ERROR", "{line}");
    let cause = line["fields"]["cause"].as_str().unwrap_or_default();
    for name in missing {
        assert!(cause.contains(name), "the line names {name}: {line}");
    }
    for m in MIGRATIONS.iter().filter(|m| !missing.contains(&m.name)) {
        assert!(!cause.contains(m.name), "{} is not missing: {line}", m.name);
    }
    assert!(cause.contains("imgbt migrate"), "and how to apply: {line}");
}

/// Migrated up to the one before the newest: a write and a read are refused, nothing is written;
/// after `migrations::apply` the same function instance serves the same request.
async fn an_older_schema(stores: Stores) {
    captured();
    let admin = stores.admin();
    reset(&*admin.db, Some(MIGRATIONS.len() - 1)).await;
    let vault = admin::create_vault(&*admin.db, &admin.clock, "old")
        .await
        .unwrap();
    let function = function_deps(&stores.config);
    let newest = [MIGRATIONS.last().unwrap().name];

    let id = request_id("older-upload");
    let reply = upload(&function, &vault, "one.txt", &id).await;
    assert_refused(&reply, &id, &newest);
    assert_eq!(asset_count(&*admin.db).await, 0, "no record was written");
    assert!(stores.s3.objects().is_empty(), "no object was written");

    let id = request_id("older-list");
    let req = request("list", &vault.vault_id, &vault.public_key, None, &id);
    let reply = Reply::from(dispatch(&function, "list", req).await);
    assert_refused(&reply, &id, &newest);

    assert_eq!(migrations::apply(&*admin.db).await.unwrap(), newest);
    let id = request_id("older-upload-again");
    let reply = upload(&function, &vault, "one.txt", &id).await;
    reply.ok(201);
    assert_eq!(
        line_of(&id)["fields"]["d1_calls"],
        2,
        "upload's two requests"
    );
    assert_eq!(asset_count(&*admin.db).await, 1);
}

/// No table at all, `d1_migrations` included: refused, and the check creates nothing.
async fn no_migrations_table(stores: Stores) {
    captured();
    let admin = stores.admin();
    reset(&*admin.db, None).await;
    let function = function_deps(&stores.config);
    let stranger = NewVault {
        vault_id: "vault_01HZZZZZZZZZZZZZZZZZZZZZZZ".into(),
        public_key: shared::auth::generate_key(shared::auth::KeyKind::Public),
        secret_key: shared::auth::generate_key(shared::auth::KeyKind::Secret),
    };
    let id = request_id("empty-upload");
    let reply = upload(&function, &stranger, "two.txt", &id).await;
    let all: Vec<&str> = MIGRATIONS.iter().map(|m| m.name).collect();
    assert_refused(&reply, &id, &all);
    assert!(tables(&*admin.db).await.is_empty(), "nothing was created");

    assert_eq!(migrations::apply(&*admin.db).await.unwrap(), all);
    let vault = admin::create_vault(&*admin.db, &admin.clock, "new")
        .await
        .unwrap();
    let id = request_id("empty-upload-again");
    upload(&function, &vault, "two.txt", &id).await.ok(201);
}

/// Fully migrated: the first request of a new instance costs the request it always costs.
async fn a_migrated_schema_costs_no_request(stores: Stores) {
    captured();
    let admin = stores.admin();
    reset(&*admin.db, None).await;
    migrations::apply(&*admin.db).await.unwrap();
    let vault = admin::create_vault(&*admin.db, &admin.clock, "ok")
        .await
        .unwrap();
    let function = function_deps(&stores.config);
    for n in 0..2 {
        let id = request_id("migrated-list");
        let req = request("list", &vault.vault_id, &vault.public_key, None, &id);
        let reply = Reply::from(dispatch(&function, "list", req).await);
        reply.ok(200);
        assert_eq!(line_of(&id)["fields"]["d1_calls"], 1, "request {n}");
    }
}

mod d1_server {
    use super::*;

    #[tokio::test]
    async fn an_older_schema_is_refused_until_migrated() {
        an_older_schema(Stores::d1_server().await).await;
    }

    #[tokio::test]
    async fn a_database_without_d1_migrations_is_refused() {
        no_migrations_table(Stores::d1_server().await).await;
    }

    #[tokio::test]
    async fn a_migrated_database_costs_no_extra_request() {
        a_migrated_schema_costs_no_request(Stores::d1_server().await).await;
    }
}

mod gateway {
    use super::*;

    #[tokio::test]
    async fn an_older_schema_is_refused_until_migrated() {
        an_older_schema(Stores::gateway().await).await;
    }

    #[tokio::test]
    async fn a_database_without_d1_migrations_is_refused() {
        no_migrations_table(Stores::gateway().await).await;
    }

    #[tokio::test]
    async fn a_migrated_database_costs_no_extra_request() {
        a_migrated_schema_costs_no_request(Stores::gateway().await).await;
    }
}
