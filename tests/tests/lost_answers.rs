//! Answers lost after the write committed: the "Lost answers" matrix of `tests/FAULTS.md`.
//!
//! Every write path has its D1 request run and committed, then its answer replaced by a 502 (what
//! a gateway sends when the network fails after the commit) or its connection dropped. Each
//! fault comes either once, when the D1 client's resend must find the write's own row and tell
//! the caller the truth, or on every attempt, when the caller gets a 500 that a retry resolves.
//! Both ways nothing dangles: fsck is clean, before gc and after it. Each cell runs on the D1
//! test server (`Fault::RunThen…` in the server itself) and on the gateway backend (the same
//! faults from the app's fault proxy in front of workerd's D1), and counts the D1 requests the
//! write made, which proves the resend.

use imgbt_test_servers::d1::Fault;
use imgbt_tests::on_batch::{OnBatch, Target};
use imgbt_tests::{Backend, Form, TestApp, past_the_grace};
use serde_json::{Value, json};
use shared::Deps;
use shared::admin::{self, FsckReport, GcError};
use shared::auth::KeyKind;
use shared::db::{self, DbError, Stmt};
use shared::migrations;
use std::sync::Arc;

/// Attempts the D1 client makes at a batch (shared/src/backoff.rs).
const D1_ATTEMPTS: usize = shared::backoff::D1_ATTEMPTS as usize;

const BAD_GATEWAY: Fault = Fault::RunThenStatus(502);
const DROPPED: Fault = Fault::RunThenDisconnect;

/// How often the fault comes: on the first attempt only, or on every attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Times {
    Once,
    Always,
}

impl Times {
    fn n(self) -> usize {
        match self {
            Times::Once => 1,
            Times::Always => D1_ATTEMPTS,
        }
    }
}

async fn app_on(backend: Backend) -> Arc<TestApp> {
    Arc::new(TestApp::on(backend).await)
}

/// Deps whose `at`-th D1 batch meets `fault`, `times`, with the request count zeroed.
fn armed(app: &Arc<TestApp>, at: usize, fault: Fault, times: Times) -> Deps {
    app.d1_faults().expect("a D1 over HTTP").reset_requests();
    OnBatch::arming(app, at, fault, times.n())
}

/// D1 requests since [`armed`].
fn d1_requests(app: &TestApp) -> u64 {
    app.d1_faults().expect("a D1 over HTTP").requests()
}

/// The requests a call of `batches` D1 batches makes when its last one meets the fault `times`:
/// one resend after a single fault, every attempt otherwise.
fn expected_requests(batches: u64, times: Times) -> u64 {
    batches - 1
        + match times {
            Times::Once => 2,
            Times::Always => D1_ATTEMPTS as u64,
        }
}

/// fsck as an hour from now would see the store: every object no record names is a fault, none
/// excused as a write still on the way.
async fn fsck(app: &TestApp) -> FsckReport {
    admin::fsck(&*app.deps.db, &past_the_grace(), &*app.deps.blobs)
        .await
        .expect("fsck")
}

/// fsck is clean with `records` records and `objects` objects, before and after gc, and gc
/// leaves no pending row.
async fn consistent(app: &TestApp, records: usize, objects: usize) {
    let before = fsck(app).await;
    assert!(before.is_clean(), "fsck before gc: {before:#?}");
    assert_eq!(before.records, records, "{before:#?}");
    let gc = admin::gc(&*app.deps.db, &app.deps.clock, &*app.deps.blobs)
        .await
        .expect("gc");
    assert!(gc.failed.is_empty(), "{gc:?}");
    let after = fsck(app).await;
    assert!(after.is_clean(), "fsck after gc: {after:#?}");
    assert_eq!(
        (after.records, after.objects),
        (records, objects),
        "{after:#?}"
    );
    assert!(app.pending_deletions().await.is_empty());
}

async fn count(app: &TestApp, sql: &'static str) -> i64 {
    app.query(sql).await.rows[0]["n"].as_i64().expect("a count")
}

/// Runs a write's cell for both faults, once and always, on both D1 backends, as
/// `<write>::{d1,gateway}_{502,drop}_{once,always}`.
macro_rules! matrix {
    ($write:ident) => {
        mod $write {
            use super::*;
            #[tokio::test]
            async fn d1_502_once() {
                super::$write(Backend::Cloudflare, BAD_GATEWAY, Times::Once).await
            }
            #[tokio::test]
            async fn d1_502_always() {
                super::$write(Backend::Cloudflare, BAD_GATEWAY, Times::Always).await
            }
            #[tokio::test]
            async fn d1_drop_once() {
                super::$write(Backend::Cloudflare, DROPPED, Times::Once).await
            }
            #[tokio::test]
            async fn d1_drop_always() {
                super::$write(Backend::Cloudflare, DROPPED, Times::Always).await
            }
            #[tokio::test]
            async fn gateway_502_once() {
                super::$write(Backend::Gateway, BAD_GATEWAY, Times::Once).await
            }
            #[tokio::test]
            async fn gateway_502_always() {
                super::$write(Backend::Gateway, BAD_GATEWAY, Times::Always).await
            }
            #[tokio::test]
            async fn gateway_drop_once() {
                super::$write(Backend::Gateway, DROPPED, Times::Once).await
            }
            #[tokio::test]
            async fn gateway_drop_always() {
                super::$write(Backend::Gateway, DROPPED, Times::Always).await
            }
        }
    };
}

// ---------------------------------------------------------------------------------------------
// The multipart upload's insert (its second batch, after the key lookup).

fn form() -> Form {
    Form::tiny("p", "c", "ch", "lost.txt")
}

async fn upload_insert(backend: Backend, fault: Fault, times: Times) {
    let app = app_on(backend).await;
    let deps = armed(&app, 2, fault, times);
    let reply = app
        .call_on(&deps, "upload")
        .key(app.sk())
        .form(&form())
        .send()
        .await;
    assert_eq!(d1_requests(&app), expected_requests(2, times));
    match times {
        Times::Once => {
            // The resend met the row the first attempt wrote, and knew it by its id.
            let record = reply.ok(201);
            let id = record["id"].as_str().unwrap();
            assert_eq!(app.get(app.sk(), id).await.ok(200), record);
            let key = record["r2_key"].as_str().unwrap();
            assert!(app.read_object(key).is_some(), "its bytes are there");
            consistent(&app, 1, 1).await;
        }
        Times::Always => {
            reply.error(500, "INTERNAL_ERROR");
            // The first attempt committed, and the object was kept for it.
            let listed = app.list(app.sk(), "").await.ok(200);
            let record = &listed["data"][0];
            let key = record["r2_key"].as_str().expect("the asset is there");
            assert!(app.read_object(key).is_some(), "with its bytes");
            consistent(&app, 1, 1).await;
            // A retry learns the name is taken, and leaves nothing behind.
            app.upload(app.sk(), &form()).await.error(409, "CONFLICT");
            consistent(&app, 1, 1).await;
        }
    }
}
matrix!(upload_insert);

/// The issue's report: the insert lands and is answered 500, 502 or 504 once. Each is 201 with
/// the record, never 409 with the object deleted.
#[tokio::test]
async fn an_upload_whose_insert_lands_but_is_answered_5xx_is_created() {
    for status in [500, 502, 504] {
        let app = app_on(Backend::Cloudflare).await;
        let deps = armed(&app, 2, Fault::RunThenStatus(status), Times::Once);
        let reply = app
            .call_on(&deps, "upload")
            .key(app.sk())
            .form(&form())
            .send()
            .await;
        let record = reply.ok(201);
        let key = record["r2_key"].as_str().unwrap();
        assert!(
            app.read_object(key).is_some(),
            "{status}: its bytes are there"
        );
        consistent(&app, 1, 1).await;
    }
}

// ---------------------------------------------------------------------------------------------
// PATCH (one batch).

async fn with_asset(app: &TestApp) -> String {
    let record = app
        .create(
            &form()
                .field("metadata", r#"{"a":1}"#)
                .field("tags", r#"["old"]"#),
        )
        .await;
    record["id"].as_str().unwrap().to_owned()
}

/// A record's metadata and tags, which it carries as JSON text (docs/API.md#the-asset-record).
fn labels(record: &Value) -> (Value, Value) {
    let parse = |member: &str| -> Value {
        serde_json::from_str(record[member].as_str().expect("JSON text")).expect("JSON")
    };
    (parse("metadata"), parse("tags"))
}

fn patch() -> Value {
    json!({ "metadata": { "b": 2 }, "tags": ["new"] })
}

async fn update(backend: Backend, fault: Fault, times: Times) {
    let app = app_on(backend).await;
    let id = with_asset(&app).await;
    let deps = armed(&app, 1, fault, times);
    let reply = app
        .call_on(&deps, "update")
        .key(app.sk())
        .asset(&id)
        .json(&patch())
        .send()
        .await;
    assert_eq!(d1_requests(&app), expected_requests(1, times));
    let merged = json!({ "a": 1, "b": 2 });
    match times {
        Times::Once => {
            let record = reply.ok(200);
            assert_eq!(labels(&record), (merged.clone(), json!(["new"])));
        }
        Times::Always => {
            reply.error(500, "INTERNAL_ERROR");
            // A retry of the same PATCH changes nothing more: merge and replace are idempotent.
            let record = app.patch(app.sk(), &id, &patch()).await.ok(200);
            assert_eq!(labels(&record), (merged.clone(), json!(["new"])));
        }
    }
    let stored = app.get(app.sk(), &id).await.ok(200);
    assert_eq!(labels(&stored), (merged, json!(["new"])));
    consistent(&app, 1, 1).await;
}
matrix!(update);

// ---------------------------------------------------------------------------------------------
// DELETE (one batch: the record and its pending row, atomically; then the object).

async fn delete(backend: Backend, fault: Fault, times: Times) {
    let app = app_on(backend).await;
    let id = with_asset(&app).await;
    let deps = armed(&app, 1, fault, times);
    let reply = app
        .call_on(&deps, "delete")
        .key(app.sk())
        .asset(&id)
        .send()
        .await;
    assert_eq!(d1_requests(&app), expected_requests(1, times));
    match times {
        Times::Once => {
            // The resend found the record gone and this request's own pending row.
            assert_eq!(reply.status.as_u16(), 204, "{}", reply.snippet());
            assert!(app.object_files().is_empty(), "the object went too");
        }
        Times::Always => {
            reply.error(500, "INTERNAL_ERROR");
            // It ran: a retry finds no asset, and the object is pending for gc.
            app.delete(app.sk(), &id)
                .await
                .error(404, "ASSET_NOT_FOUND");
        }
    }
    app.get(app.sk(), &id).await.error(404, "ASSET_NOT_FOUND");
    consistent(&app, 0, 0).await;
}
matrix!(delete);

// ---------------------------------------------------------------------------------------------
// Starting a direct upload (one batch: lookup, name probe, insert, read back).

fn upload_body() -> Value {
    json!({ "partition": "p", "collection": "c", "channel": "ch", "filename": "d.bin", "size": 3 })
}

async fn uploads(backend: Backend, fault: Fault, times: Times) {
    let app = app_on(backend).await;
    let deps = armed(&app, 1, fault, times);
    let reply = app
        .call_on(&deps, "uploads")
        .key(app.sk())
        .json(&upload_body())
        .send()
        .await;
    assert_eq!(d1_requests(&app), expected_requests(1, times));
    match times {
        Times::Once => {
            let ticket = reply.ok(201);
            assert_eq!(count(&app, "SELECT count(*) AS n FROM uploads").await, 1);
            // The upload it started is the one that works.
            let put = app.put_upload(&ticket, b"abc".to_vec()).await;
            assert_eq!(put.status.as_u16(), 200, "{}", put.snippet());
            let id = ticket["upload_id"].as_str().unwrap();
            app.complete(app.sk(), id).await.ok(201);
            consistent(&app, 1, 1).await;
        }
        Times::Always => {
            reply.error(500, "INTERNAL_ERROR");
            // It ran; a retry starts another upload, and the first expires unused.
            assert_eq!(count(&app, "SELECT count(*) AS n FROM uploads").await, 1);
            app.start_upload(app.sk(), &upload_body()).await.ok(201);
            assert_eq!(count(&app, "SELECT count(*) AS n FROM uploads").await, 2);
            consistent(&app, 0, 0).await;
        }
    }
}
matrix!(uploads);

// ---------------------------------------------------------------------------------------------
// Completing a direct upload (its second batch: the insert, the mark, the read back).

async fn complete(backend: Backend, fault: Fault, times: Times) {
    let app = app_on(backend).await;
    let ticket = app.start_upload(app.sk(), &upload_body()).await.ok(201);
    let put = app.put_upload(&ticket, b"abc".to_vec()).await;
    assert_eq!(put.status.as_u16(), 200, "{}", put.snippet());
    let upload_id = ticket["upload_id"].as_str().unwrap();
    let deps = armed(&app, 2, fault, times);
    let reply = app
        .call_on(&deps, "complete")
        .key(app.sk())
        .upload(upload_id)
        .send()
        .await;
    assert_eq!(d1_requests(&app), expected_requests(2, times));
    let record = match times {
        // The resend found the record this request inserted: 201, not the 200 of a repeat.
        Times::Once => reply.ok(201),
        Times::Always => {
            reply.error(500, "INTERNAL_ERROR");
            app.complete(app.sk(), upload_id).await.ok(200)
        }
    };
    let id = record["id"].as_str().unwrap();
    assert_eq!(app.get(app.sk(), id).await.ok(200), record);
    consistent(&app, 1, 1).await;
}
matrix!(complete);

// ---------------------------------------------------------------------------------------------
// Keys: `imgbt key create` and `imgbt key revoke` (shared::admin, one batch each).

async fn key_create(backend: Backend, fault: Fault, times: Times) {
    let app = app_on(backend).await;
    let deps = armed(&app, 1, fault, times);
    let created = admin::create_key(
        &*deps.db,
        &app.deps.clock,
        &app.vault.vault_id,
        KeyKind::Secret,
        "lost",
    )
    .await;
    assert_eq!(d1_requests(&app), expected_requests(1, times));
    let rows = "SELECT count(*) AS n FROM api_keys WHERE label = 'lost'";
    match times {
        Times::Once => {
            let key = created.expect("created").expect("the vault exists");
            // Created once, and it works.
            assert_eq!(count(&app, rows).await, 1);
            app.list(&key.key, "").await.ok(200);
        }
        Times::Always => {
            let err = created.expect_err("no answer came back");
            assert!(matches!(err, DbError::Uncertain(_)), "{err:?}");
            // It ran: the key is listed (for `imgbt key revoke`), though nobody holds it.
            assert_eq!(count(&app, rows).await, 1);
        }
    }
}
matrix!(key_create);

async fn key_revoke(backend: Backend, fault: Fault, times: Times) {
    let app = app_on(backend).await;
    let clock = &app.deps.clock;
    let vault = app.vault.vault_id.as_str();
    let key = admin::create_key(&*app.deps.db, clock, vault, KeyKind::Secret, "doomed")
        .await
        .expect("created")
        .expect("the vault exists");
    app.list(&key.key, "").await.ok(200);
    let deps = armed(&app, 1, fault, times);
    let revoked = admin::revoke_key(&*deps.db, clock, vault, &key.key_id).await;
    assert_eq!(d1_requests(&app), expected_requests(1, times));
    match times {
        // The resend found the key revoked at this call's time: revoked by this call.
        Times::Once => assert!(revoked.expect("revoked")),
        Times::Always => {
            let err = revoked.expect_err("no answer came back");
            assert!(matches!(err, DbError::Uncertain(_)), "{err:?}");
            // It ran; a retry finds no live key of that id.
            let again = admin::revoke_key(&*app.deps.db, clock, vault, &key.key_id).await;
            assert!(!again.expect("answered"));
        }
    }
    app.list(&key.key, "").await.error(401, "UNAUTHORIZED");
}
matrix!(key_revoke);

// The keys and vault routes (docs/API.md#key-management, docs/API.md#vault) make the same writes
// over HTTP, each in one batch with the caller's key check.

async fn keys_route_create(backend: Backend, fault: Fault, times: Times) {
    let app = app_on(backend).await;
    let deps = armed(&app, 1, fault, times);
    let reply = app
        .call_on(&deps, "key_create")
        .key(app.sk())
        .json(&json!({ "label": "lost", "type": "public" }))
        .send()
        .await;
    assert_eq!(d1_requests(&app), expected_requests(1, times));
    let rows = "SELECT count(*) AS n FROM api_keys WHERE label = 'lost'";
    match times {
        Times::Once => {
            // The resend found the row its first run inserted: one key, shown, and it works.
            let created = reply.ok(201);
            assert_eq!(count(&app, rows).await, 1);
            app.list(created["key"].as_str().unwrap(), "").await.ok(200);
        }
        Times::Always => {
            let message = reply.error(500, "INTERNAL_ERROR");
            assert!(!message.contains("pk_"), "{message}");
            // It ran: the key is listed by its label, for a revoke, though nobody holds it.
            assert_eq!(count(&app, rows).await, 1);
            let listed = app.call("keys_list").key(app.sk()).send().await.ok(200);
            let lost: Vec<&Value> = listed["data"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|k| k["label"] == "lost")
                .collect();
            assert_eq!(lost.len(), 1, "{listed}");
            let revoked = app
                .call("key_revoke")
                .key(app.sk())
                .key_id(lost[0]["id"].as_str().unwrap())
                .send()
                .await
                .status;
            assert_eq!(revoked, 204);
        }
    }
}
matrix!(keys_route_create);

async fn keys_route_revoke(backend: Backend, fault: Fault, times: Times) {
    let app = app_on(backend).await;
    let created = app
        .call("key_create")
        .key(app.sk())
        .json(&json!({ "label": "doomed", "type": "secret" }))
        .send()
        .await
        .ok(201);
    let (key, key_id) = (
        created["key"].as_str().unwrap(),
        created["id"].as_str().unwrap(),
    );
    app.list(key, "").await.ok(200);
    let deps = armed(&app, 1, fault, times);
    let reply = app
        .call_on(&deps, "key_revoke")
        .key(app.sk())
        .key_id(key_id)
        .send()
        .await;
    assert_eq!(d1_requests(&app), expected_requests(1, times));
    match times {
        // The resend found its own revoke id on the key: revoked by this request.
        Times::Once => assert_eq!(reply.status, 204, "{}", reply.snippet()),
        Times::Always => {
            reply.error(500, "INTERNAL_ERROR");
            // It ran; a retry is another request, which finds the key already revoked.
            app.call("key_revoke")
                .key(app.sk())
                .key_id(key_id)
                .send()
                .await
                .error(404, "NOT_FOUND");
        }
    }
    app.list(key, "").await.error(401, "UNAUTHORIZED");
}
matrix!(keys_route_revoke);

async fn vault_rename(backend: Backend, fault: Fault, times: Times) {
    let app = app_on(backend).await;
    let deps = armed(&app, 1, fault, times);
    let rename = json!({ "name": "renamed" });
    let reply = app
        .call_on(&deps, "vault_update")
        .key(app.sk())
        .json(&rename)
        .send()
        .await;
    assert_eq!(d1_requests(&app), expected_requests(1, times));
    match times {
        Times::Once => assert_eq!(reply.ok(200)["name"], "renamed"),
        Times::Always => {
            reply.error(500, "INTERNAL_ERROR");
            // A retry writes the same name again.
            let again = app
                .call("vault_update")
                .key(app.sk())
                .json(&rename)
                .send()
                .await;
            assert_eq!(again.ok(200)["name"], "renamed");
        }
    }
    let vault = app.call("vault_get").key(app.pk()).send().await.ok(200);
    assert_eq!(vault["name"], "renamed");
}
matrix!(vault_rename);

/// The vault's stored delivery secret (no route shows it).
async fn delivery_secret(app: &TestApp) -> Option<String> {
    let results = db::run(
        &*app.deps.db,
        vec![Stmt::new(
            "SELECT delivery_secret FROM vaults WHERE id = ?1",
            vec![app.vault.vault_id.as_str().into()],
        )],
    )
    .await
    .expect("the vault's row");
    results[0].rows[0]
        .get("delivery_secret")
        .and_then(|v| v.as_str())
        .map(str::to_owned)
}

// A vault turned signed gets its secret in the same UPDATE; a resend, or a retry, of that write
// must keep the secret the first run made: a new one would break every URL signed in between.
async fn vault_turned_signed(backend: Backend, fault: Fault, times: Times) {
    let app = app_on(backend).await;
    let deps = armed(&app, 1, fault, times);
    let signed = json!({ "delivery": "signed" });
    let reply = app
        .call_on(&deps, "vault_update")
        .key(app.sk())
        .json(&signed)
        .send()
        .await;
    assert_eq!(d1_requests(&app), expected_requests(1, times));
    match times {
        Times::Once => assert_eq!(reply.ok(200)["delivery"], "signed"),
        Times::Always => {
            reply.error(500, "INTERNAL_ERROR");
            // The lost write ran: the vault has its secret; a retry keeps it.
            let first = delivery_secret(&app).await.expect("the first run's secret");
            let again = app
                .call("vault_update")
                .key(app.sk())
                .json(&signed)
                .send()
                .await;
            assert_eq!(again.ok(200)["delivery"], "signed");
            assert_eq!(delivery_secret(&app).await.as_deref(), Some(first.as_str()));
        }
    }
    let secret = delivery_secret(&app)
        .await
        .expect("a signed vault has a secret");
    assert_eq!(secret.len(), 64);
    let vault = app.call("vault_get").key(app.pk()).send().await.ok(200);
    assert_eq!(vault["delivery"], "signed");
    assert!(!vault.to_string().contains(&secret));
}
matrix!(vault_turned_signed);

// ---------------------------------------------------------------------------------------------
// Migrations: the newest one is taken back, then applied with its batch (the second, after the
// read of what has run) failed after it committed. `apply` recognises its own migration by
// reading `d1_migrations` again.

const NEWEST: &str = "0005_vault_delivery.sql";

async fn migrate(backend: Backend, fault: Fault, times: Times) {
    let app = app_on(backend).await;
    db::run(
        &*app.deps.db,
        vec![
            Stmt::new("ALTER TABLE vaults DROP COLUMN delivery", vec![]),
            Stmt::new("ALTER TABLE vaults DROP COLUMN delivery_secret", vec![]),
            Stmt::new(
                "ALTER TABLE vaults DROP COLUMN delivery_secret_previous",
                vec![],
            ),
            Stmt::new(
                "ALTER TABLE vaults DROP COLUMN delivery_secret_rotated_at",
                vec![],
            ),
            Stmt::new(
                "DELETE FROM d1_migrations WHERE name = ?1",
                vec![NEWEST.into()],
            ),
        ],
    )
    .await
    .expect("taking the newest migration back");
    assert_eq!(migrations::pending(&*app.deps.db).await.unwrap(), [NEWEST]);
    let deps = armed(&app, 2, fault, times);
    let applied = migrations::apply(&*deps.db).await.expect("migrated");
    // The read of what has run, the migration's attempts (each resend refused or lost: its
    // tables exist by then), and one more read of what has run, which finds it.
    assert_eq!(d1_requests(&app), expected_requests(2, times) + 1);
    assert_eq!(applied, [NEWEST]);
    assert!(migrations::pending(&*app.deps.db).await.unwrap().is_empty());
    assert_eq!(
        count(
            &app,
            "SELECT count(*) AS n FROM d1_migrations WHERE name = '0005_vault_delivery.sql'"
        )
        .await,
        1
    );
    // The schema is whole: a vault turned signed, which writes the new columns, reads them back.
    let patched = app
        .call("vault_update")
        .key(app.sk())
        .json(&json!({"delivery": "signed"}))
        .send()
        .await
        .ok(200);
    assert_eq!(patched["delivery"], "signed", "{patched}");
    assert!(
        patched["delivery_secret_rotated_at"].is_string(),
        "{patched}"
    );
    consistent(&app, 0, 0).await;
}
matrix!(migrate);

// ---------------------------------------------------------------------------------------------
// gc (`imgbt gc` and the scheduled function), eight days on: an upload abandoned with its bytes
// PUT (its row and object go) and one completed a week before (its row goes, its asset stays).
// Its two writes are the removals of those rows; gc reads the rows first, so its report names
// them even when the removal ran twice.

const EXPIRED_REMOVAL: &str = "INSERT OR IGNORE INTO pending_deletions";
const COMPLETED_REMOVAL: &str = "DELETE FROM uploads WHERE id IN";

async fn gc_on(backend: Backend, removal: &'static str, fault: Fault, times: Times) {
    let app = app_on(backend).await;
    let done = app.start_upload(app.sk(), &upload_body()).await.ok(201);
    let put = app.put_upload(&done, b"abc".to_vec()).await;
    assert_eq!(put.status.as_u16(), 200, "{}", put.snippet());
    let done_id = done["upload_id"].as_str().unwrap().to_owned();
    app.complete(app.sk(), &done_id).await.ok(201);
    let mut body = upload_body();
    body["filename"] = json!("abandoned.bin");
    let abandoned = app.start_upload(app.sk(), &body).await.ok(201);
    let put = app.put_upload(&abandoned, b"xyz".to_vec()).await;
    assert_eq!(put.status.as_u16(), 200, "{}", put.snippet());
    let abandoned_id = abandoned["upload_id"].as_str().unwrap().to_owned();

    let later = shared::clock::Clock::default();
    later.set_offset_ms(8 * 24 * 60 * 60 * 1000);
    app.d1_faults().expect("a D1 over HTTP").reset_requests();
    let deps = OnBatch::arming_target(&app, Target::Sql(removal), fault, times.n());
    let swept = admin::gc(&*deps.db, &later, &*app.deps.blobs).await;
    match times {
        Times::Once => {
            let report = swept.expect("gc");
            assert_eq!(report.expired_uploads, [abandoned_id]);
            assert_eq!(report.completed_uploads, [done_id]);
            assert!(report.failed.is_empty(), "{report:?}");
        }
        Times::Always => {
            let err = swept.expect_err("no answer came back");
            assert!(matches!(err, GcError::Db(DbError::Uncertain(_))), "{err:?}");
            // The next sweep finishes what this one could not confirm.
            let report = admin::gc(&*app.deps.db, &later, &*app.deps.blobs)
                .await
                .expect("gc");
            assert!(report.failed.is_empty(), "{report:?}");
        }
    }
    assert_eq!(count(&app, "SELECT count(*) AS n FROM uploads").await, 0);
    consistent(&app, 1, 1).await;
}

async fn gc_expired_uploads(backend: Backend, fault: Fault, times: Times) {
    gc_on(backend, EXPIRED_REMOVAL, fault, times).await
}
matrix!(gc_expired_uploads);

async fn gc_completed_uploads(backend: Backend, fault: Fault, times: Times) {
    gc_on(backend, COMPLETED_REMOVAL, fault, times).await
}
matrix!(gc_completed_uploads);

// ---------------------------------------------------------------------------------------------
// The delivery secret's rotation: a resend finds this rotation's own secret in place.

async fn delivery_rotation(backend: Backend, fault: Fault, times: Times) {
    let app = app_on(backend).await;
    let vault = app.vault.vault_id.clone();
    let secrets = || {
        let app = app.clone();
        let vault = vault.clone();
        async move {
            let results = db::run(
                &*app.deps.db,
                vec![Stmt::new(
                    "SELECT delivery_secret, delivery_secret_previous FROM vaults WHERE id = ?1",
                    vec![vault.as_str().into()],
                )],
            )
            .await
            .unwrap();
            let row = &results[0].rows[0];
            let text = |column: &str| row.get(column).and_then(|v| v.as_str()).map(str::to_owned);
            (text("delivery_secret"), text("delivery_secret_previous"))
        }
    };
    app.call("vault_update")
        .key(app.sk())
        .json(&json!({"delivery": "signed"}))
        .send()
        .await
        .ok(200);
    let (first, _) = secrets().await;
    let first = first.expect("a signed vault has a secret");
    let deps = armed(&app, 1, fault, times);
    let reply = app
        .call_on(&deps, "delivery_rotate")
        .key(app.sk())
        .send()
        .await;
    assert_eq!(d1_requests(&app), expected_requests(1, times));
    match times {
        // The resend found its own secret in place: rotated by this request, once.
        Times::Once => assert_eq!(reply.ok(200)["delivery"], "signed"),
        Times::Always => {
            reply.error(500, "INTERNAL_ERROR");
        }
    }
    // Rotated once, not once per attempt: the secret before is the previous one, still accepted.
    let (current, previous) = secrets().await;
    assert_eq!(previous.as_deref(), Some(first.as_str()));
    assert!(current.is_some_and(|c| c != first));
}
matrix!(delivery_rotation);
