//! The fault matrix of `tests/FAULTS.md`: every step of every write (upload, update, delete) made
//! to fail on the D1 REST and S3 test servers (an error, a lost answer, a storm of 429s, and fewer
//! 429s to show recovery), then the API's answer, then `fsck`, `gc`, `fsck` again.
//!
//! Steps: upload = (1) D1 auth request, (2) S3 PUT, (3) D1 insert, (4) S3 DELETE of the object when
//! the insert fails; update = (1) its one D1 request; delete = (1) its one D1 request (journal +
//! record delete), (2) S3 DELETE.
//!
//! How each fault is made:
//! - D1 errors, 429s and lost answers come from the D1 server (`Fault::ServerError`,
//!   `Fault::RateLimited`, `Fault::Disconnect`: the server reads the request and hangs up without
//!   running it). Exactly as many faults are armed as the client makes attempts, so none is left
//!   over for the checks that follow; the request counts prove it. The second D1 request of an
//!   upload is targeted by [`OnBatch`], which arms the server just before that batch is sent.
//! - S3 errors come from the S3 server (`fail_next(n, method, status)`); the R2 client makes 3
//!   attempts, so 3 faults fail a step and 2 show its recovery.
//! - A lost answer *after the work was done* (the request ran, the answer never came back: what a
//!   timeout is at worst) cannot be made by the servers, which never run a faulted request, and a
//!   real timeout takes too long here (D1's client waits 20 s; the S3 client 8 s an attempt and
//!   20 s in all, see `an_upload_answers_while_r2_stalls`). [`OnBatch`] (`LoseAnswer`) and [`LandedButLost`]
//!   wrap the stores instead: the call runs, then reports an error. These cells also run on the
//!   embedded backend.

use imgbt_test_servers::D1Faults;
use imgbt_test_servers::d1::Fault;
use imgbt_tests::on_batch::OnBatch;
use imgbt_tests::{Backend, Call, Form, Reply, TestApp};
use serde_json::{Value, json};
use shared::admin::{self, FsckReport};
use shared::blobs::{BlobError, Blobs, Listed};
use shared::{BoxFuture, Deps};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Attempts the D1 client makes (README: "retried up to four attempts").
const D1_ATTEMPTS: usize = 4;
/// Attempts the R2 client makes (shared/src/blobs/r2.rs).
const S3_ATTEMPTS: usize = 3;

const RATE_LIMITED: Fault = Fault::RateLimited {
    retry_after_secs: None,
};

// ---------------------------------------------------------------------------------------------
// The kit of this file: store wrappers, one counted call, and the fsck → gc → fsck check.

/// An object store whose puts and/or deletes land, then report an error: a timeout at its worst.
struct LandedButLost {
    inner: Arc<dyn Blobs>,
    put: bool,
    delete: bool,
}

impl LandedButLost {
    fn deps(app: &TestApp, put: bool, delete: bool) -> Deps {
        let blobs = LandedButLost {
            inner: app.blobs(),
            put,
            delete,
        };
        app.deps_with_blobs(Arc::new(blobs))
    }
}

fn lost(what: &str) -> BlobError {
    BlobError::Io(format!("injected: the {what} landed, its answer was lost"))
}

impl Blobs for LandedButLost {
    fn put<'a>(
        &'a self,
        key: &'a str,
        body: bytes::Bytes,
        content_type: &'a str,
    ) -> BoxFuture<'a, Result<(), BlobError>> {
        Box::pin(async move {
            self.inner.put(key, body, content_type).await?;
            if self.put { Err(lost("put")) } else { Ok(()) }
        })
    }

    fn delete<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<(), BlobError>> {
        Box::pin(async move {
            self.inner.delete(key).await?;
            if self.delete {
                Err(lost("delete"))
            } else {
                Ok(())
            }
        })
    }

    fn size<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<Option<u64>, BlobError>> {
        self.inner.size(key)
    }

    fn list<'a>(&'a self, prefix: &'a str) -> BoxFuture<'a, Result<Vec<Listed>, BlobError>> {
        self.inner.list(prefix)
    }
}

/// One call of a cell: the reply, and on the Cloudflare backend the D1 requests and S3 methods it
/// caused.
struct Cell {
    reply: Reply,
    d1: u64,
    s3: Vec<String>,
}

async fn send(app: &TestApp, call: Call<'_>) -> Cell {
    if let (Some(d1), Some(s3)) = (app.d1(), app.s3()) {
        d1.reset_requests();
        s3.reset_requests();
    }
    let reply = call.send().await;
    let (d1, s3) = match (app.d1(), app.s3()) {
        (Some(d1), Some(s3)) => (
            d1.requests(),
            s3.requests().iter().map(|r| r.method.to_string()).collect(),
        ),
        _ => (0, Vec::new()),
    };
    Cell { reply, d1, s3 }
}

impl Cell {
    /// Asserts the D1 requests and S3 methods (Cloudflare backend only).
    fn made(&self, app: &TestApp, d1: u64, s3: &[&str]) {
        if app.backend() == Backend::Cloudflare {
            assert_eq!(
                (self.d1, self.s3.as_slice()),
                (
                    d1,
                    s3.iter()
                        .map(|m| m.to_string())
                        .collect::<Vec<_>>()
                        .as_slice()
                ),
                "D1 requests and S3 methods of the call"
            );
        }
    }
}

/// What fsck says, in counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct State {
    records: usize,
    objects: usize,
    /// Records whose object is missing: never acceptable.
    records_without_objects: usize,
    /// Objects no record or pending deletion names.
    objects_without_records: usize,
    size_mismatches: usize,
    /// Objects of deleted assets still waiting for gc.
    pending: usize,
}

impl State {
    /// `is_clean()`, with this many records and objects and nothing pending.
    const fn clean(records: usize, objects: usize) -> State {
        State {
            records,
            objects,
            records_without_objects: 0,
            objects_without_records: 0,
            size_mismatches: 0,
            pending: 0,
        }
    }

    const fn orphans(self, n: usize) -> State {
        State {
            objects_without_records: n,
            ..self
        }
    }

    const fn pending(self, n: usize) -> State {
        State { pending: n, ..self }
    }
}

impl From<&FsckReport> for State {
    fn from(r: &FsckReport) -> State {
        State {
            records: r.records,
            objects: r.objects,
            records_without_objects: r.records_without_objects.len(),
            objects_without_records: r.objects_without_records.len(),
            size_mismatches: r.size_mismatches.len(),
            pending: r.pending_deletions.len(),
        }
    }
}

async fn fsck(app: &TestApp) -> FsckReport {
    admin::fsck(
        &*app.deps.db,
        &imgbt_tests::past_the_grace(),
        &*app.deps.blobs,
    )
    .await
    .expect("fsck")
}

/// fsck (must say `now`), gc (must not fail), fsck again (must say `after_gc`). Returns both
/// reports. The store's own dependencies are used: the faults are over.
async fn check(app: &TestApp, now: State, after_gc: State) -> (FsckReport, FsckReport) {
    let before = fsck(app).await;
    assert_eq!(State::from(&before), now, "fsck before gc: {before:#?}");
    let gc = admin::gc(&*app.deps.db, &app.deps.clock, &*app.deps.blobs)
        .await
        .expect("gc");
    assert!(gc.failed.is_empty(), "gc failed: {gc:?}");
    let after = fsck(app).await;
    assert_eq!(State::from(&after), after_gc, "fsck after gc: {after:#?}");
    if after_gc.objects_without_records == 0 {
        assert!(after.is_clean(), "{after:#?}");
        assert!(
            app.pending_deletions().await.is_empty(),
            "gc cleared every pending row"
        );
    }
    (before, after)
}

/// gc an hour later (its clock past the grace in which a write may be on the way) removes the
/// objects no record names, and leaves the store clean with `records` and `objects`.
async fn gc_an_hour_later(app: &TestApp, records: usize, objects: usize) {
    let later = imgbt_tests::past_the_grace();
    let gc = admin::gc(&*app.deps.db, &later, &*app.deps.blobs)
        .await
        .expect("gc");
    assert!(gc.failed.is_empty(), "gc failed: {gc:?}");
    let after = fsck(app).await;
    assert_eq!(
        State::from(&after),
        State::clean(records, objects),
        "{after:#?}"
    );
}

async fn cloudflare() -> Arc<TestApp> {
    Arc::new(TestApp::on(Backend::Cloudflare).await)
}

/// Runs a cell on both backends, as `<cell>::cloudflare` and `<cell>::embedded`.
macro_rules! on_both_backends {
    ($(#[$attr:meta])* $cell:ident) => {
        mod $cell {
            use super::*;
            $(#[$attr])*
            #[tokio::test]
            async fn cloudflare() {
                super::$cell(Backend::Cloudflare).await
            }
            $(#[$attr])*
            #[tokio::test]
            async fn embedded() {
                super::$cell(Backend::Embedded).await
            }
        }
    };
}

// ---------------------------------------------------------------------------------------------
// Upload: (1) D1 auth, (2) S3 PUT, (3) D1 insert, (4) S3 DELETE when the insert fails.

fn upload_form() -> Form {
    Form::tiny("p", "c", "ch", "a.txt")
}

async fn upload_on(app: &TestApp, deps: &Deps) -> Cell {
    let call = app
        .call_on(deps, "upload")
        .key(app.sk())
        .form(&upload_form());
    send(app, call).await
}

async fn upload(app: &TestApp) -> Cell {
    upload_on(app, &app.deps).await
}

#[tokio::test]
async fn upload_1_auth_d1_500s_fail_and_store_nothing() {
    let app = cloudflare().await;
    app.d1().unwrap().fail_next(D1_ATTEMPTS, Fault::ServerError);
    let cell = upload(&app).await;
    cell.reply.error(500, "INTERNAL_ERROR");
    cell.made(&app, 4, &[]);
    check(&app, State::clean(0, 0), State::clean(0, 0)).await;
}

#[tokio::test]
async fn upload_1_auth_lost_answers_fail_and_store_nothing() {
    let app = cloudflare().await;
    app.d1().unwrap().fail_next(D1_ATTEMPTS, Fault::Disconnect);
    let cell = upload(&app).await;
    cell.reply.error(500, "INTERNAL_ERROR");
    cell.made(&app, 4, &[]);
    check(&app, State::clean(0, 0), State::clean(0, 0)).await;
}

#[tokio::test]
async fn upload_1_auth_429_storm_is_rate_limited_and_stores_nothing() {
    let app = cloudflare().await;
    app.d1().unwrap().fail_next(D1_ATTEMPTS, RATE_LIMITED);
    let cell = upload(&app).await;
    cell.reply.error(429, "RATE_LIMITED");
    cell.made(&app, 4, &[]);
    check(&app, State::clean(0, 0), State::clean(0, 0)).await;
}

#[tokio::test]
async fn upload_1_auth_429_storm_with_retry_after_is_bounded() {
    let app = cloudflare().await;
    app.d1().unwrap().fail_next(
        D1_ATTEMPTS,
        Fault::RateLimited {
            retry_after_secs: Some(1),
        },
    );
    let started = Instant::now();
    let cell = upload(&app).await;
    let took = started.elapsed();
    cell.reply.error(429, "RATE_LIMITED");
    cell.made(&app, 4, &[]);
    // Three waits, each at least the second D1 asked for, and the whole well within API Gateway's 30 s.
    assert!(
        took >= Duration::from_secs(3) && took < Duration::from_secs(15),
        "{took:?}"
    );
    check(&app, State::clean(0, 0), State::clean(0, 0)).await;
}

#[tokio::test]
async fn upload_1_auth_fewer_429s_recover() {
    let app = cloudflare().await;
    app.d1().unwrap().fail_next(D1_ATTEMPTS - 1, RATE_LIMITED);
    let cell = upload(&app).await;
    cell.reply.ok(201);
    cell.made(&app, 5, &["PUT"]);
    check(&app, State::clean(1, 1), State::clean(1, 1)).await;
}

#[tokio::test]
async fn upload_2_put_500s_fail_and_store_nothing() {
    let app = cloudflare().await;
    app.s3().unwrap().fail_next(S3_ATTEMPTS, "PUT", 500);
    let cell = upload(&app).await;
    cell.reply.error(500, "INTERNAL_ERROR");
    // The failed PUT's key is left pending (one more D1 request): the PUT may have landed.
    cell.made(&app, 2, &["PUT", "PUT", "PUT"]);
    check(&app, State::clean(0, 0), State::clean(0, 0)).await;
}

/// R2 refusing for rate (503 SlowDown) after the client's retries: RATE_LIMITED, as
/// docs/API.md#error-codes gives a store that kept refusing for rate after the retries.
#[tokio::test]
async fn upload_2_put_503_storm_is_rate_limited() {
    let app = cloudflare().await;
    app.s3().unwrap().fail_next(S3_ATTEMPTS, "PUT", 503);
    let cell = upload(&app).await;
    cell.made(&app, 2, &["PUT", "PUT", "PUT"]);
    check(&app, State::clean(0, 0), State::clean(0, 0)).await;
    cell.reply.error(429, "RATE_LIMITED");
}

#[tokio::test]
async fn upload_2_put_503_storm_stores_nothing() {
    // The state half of the cell above, kept green: whatever the code, nothing is stored.
    let app = cloudflare().await;
    app.s3().unwrap().fail_next(S3_ATTEMPTS, "PUT", 503);
    let cell = upload(&app).await;
    assert!(cell.reply.status.is_server_error() || cell.reply.status == 429);
    cell.made(&app, 2, &["PUT", "PUT", "PUT"]);
    check(&app, State::clean(0, 0), State::clean(0, 0)).await;
}

#[tokio::test]
async fn upload_2_put_fewer_500s_recover() {
    let app = cloudflare().await;
    app.s3().unwrap().fail_next(S3_ATTEMPTS - 1, "PUT", 500);
    let cell = upload(&app).await;
    cell.reply.ok(201);
    cell.made(&app, 2, &["PUT", "PUT", "PUT"]);
    check(&app, State::clean(1, 1), State::clean(1, 1)).await;
}

/// The PUT lands but its answer is lost: the upload answers 500 and no insert is tried, so no
/// record can exist; its key is left pending, and gc removes the object.
async fn upload_2_put_lands_answer_lost(backend: Backend) {
    let app = TestApp::on(backend).await;
    let deps = LandedButLost::deps(&app, true, false);
    let cell = upload_on(&app, &deps).await;
    cell.reply.error(500, "INTERNAL_ERROR");
    cell.made(&app, 2, &["PUT"]);
    check(&app, State::clean(0, 1).pending(1), State::clean(0, 0)).await;
}
on_both_backends!(upload_2_put_lands_answer_lost);

/// D1 answers every attempt at the insert with 500. A 500 may come after a commit (a gateway's
/// does), so the insert may have landed: the object stays rather than risk a record without its
/// bytes. Here nothing ran, so it is an object no record names, which gc removes an hour later.
#[tokio::test]
async fn upload_3_insert_500s_fail_and_keep_the_object() {
    let app = cloudflare().await;
    let deps = OnBatch::arming(&app, 2, Fault::ServerError, D1_ATTEMPTS);
    let cell = upload_on(&app, &deps).await;
    cell.reply.error(500, "INTERNAL_ERROR");
    cell.made(&app, 5, &["PUT"]);
    check(
        &app,
        State::clean(0, 1).orphans(1),
        State::clean(0, 1).orphans(1),
    )
    .await;
    gc_an_hour_later(&app, 0, 0).await;
}

#[tokio::test]
async fn upload_3_insert_fewer_500s_recover() {
    let app = cloudflare().await;
    let deps = OnBatch::arming(&app, 2, Fault::ServerError, D1_ATTEMPTS - 1);
    let cell = upload_on(&app, &deps).await;
    cell.reply.ok(201);
    cell.made(&app, 5, &["PUT"]);
    check(&app, State::clean(1, 1), State::clean(1, 1)).await;
}

#[tokio::test]
async fn upload_3_insert_429_storm_is_rate_limited_and_removes_the_object() {
    let app = cloudflare().await;
    let deps = OnBatch::arming(&app, 2, RATE_LIMITED, D1_ATTEMPTS);
    let cell = upload_on(&app, &deps).await;
    cell.reply.error(429, "RATE_LIMITED");
    cell.made(&app, 5, &["PUT", "DELETE"]);
    check(&app, State::clean(0, 0), State::clean(0, 0)).await;
}

#[tokio::test]
async fn upload_3_insert_fewer_429s_recover() {
    let app = cloudflare().await;
    let deps = OnBatch::arming(&app, 2, RATE_LIMITED, D1_ATTEMPTS - 1);
    let cell = upload_on(&app, &deps).await;
    cell.reply.ok(201);
    cell.made(&app, 5, &["PUT"]);
    check(&app, State::clean(1, 1), State::clean(1, 1)).await;
}

/// Every attempt at the insert loses its answer (none ran): the design keeps the object rather
/// than risk a record without bytes. fsck reports it as an object without a record until gc,
/// an hour later, removes it.
#[tokio::test]
async fn upload_3_insert_lost_answers_keep_the_object() {
    let app = cloudflare().await;
    let deps = OnBatch::arming(&app, 2, Fault::Disconnect, D1_ATTEMPTS);
    let cell = upload_on(&app, &deps).await;
    cell.reply.error(500, "INTERNAL_ERROR");
    cell.made(&app, 5, &["PUT"]);
    let (report, _) = check(
        &app,
        State::clean(0, 1).orphans(1),
        State::clean(0, 1).orphans(1),
    )
    .await;
    assert!(report.objects_without_records[0].ends_with("_a.txt"));
    // Uploading again works: the kept object does not block the filename.
    upload(&app).await.reply.ok(201);
    gc_an_hour_later(&app, 1, 1).await;
}

/// The insert ran but its answer is lost: 500, yet the asset exists with its object. A client
/// that retries gets 409, and that retry leaves nothing behind.
async fn upload_3_insert_lands_answer_lost(backend: Backend) {
    let app = TestApp::on(backend).await;
    let deps = OnBatch::losing(&app, 2);
    let cell = upload_on(&app, &deps).await;
    cell.reply.error(500, "INTERNAL_ERROR");
    cell.made(&app, 2, &["PUT"]);
    check(&app, State::clean(1, 1), State::clean(1, 1)).await;
    let retry = upload(&app).await;
    retry.reply.error(409, "CONFLICT");
    retry.made(&app, 2, &["PUT", "DELETE"]);
    check(&app, State::clean(1, 1), State::clean(1, 1)).await;
}
on_both_backends!(upload_3_insert_lands_answer_lost);

/// The insert certainly fails (D1 refuses it for rate every time, so it never ran) and so does
/// the removal of its object: the key goes to `pending_deletions` (one more D1 request, on this
/// path only), and gc removes it.
#[tokio::test]
async fn upload_4_cleanup_500s_after_a_failed_insert() {
    let app = cloudflare().await;
    app.s3().unwrap().fail_next(S3_ATTEMPTS, "DELETE", 500);
    let deps = OnBatch::arming(&app, 2, RATE_LIMITED, D1_ATTEMPTS);
    let cell = upload_on(&app, &deps).await;
    cell.reply.error(429, "RATE_LIMITED");
    cell.made(&app, 6, &["PUT", "DELETE", "DELETE", "DELETE"]);
    check(&app, State::clean(0, 1).pending(1), State::clean(0, 0)).await;
}

/// The same with the most common failing insert, a duplicate filename: the 409 is right, and the
/// loser's object is pending until gc (or a later delete) removes it.
#[tokio::test]
async fn upload_4_cleanup_500s_after_a_conflict() {
    let app = cloudflare().await;
    upload(&app).await.reply.ok(201);
    app.s3().unwrap().fail_next(S3_ATTEMPTS, "DELETE", 500);
    let cell = upload(&app).await;
    cell.reply.error(409, "CONFLICT");
    cell.made(&app, 3, &["PUT", "DELETE", "DELETE", "DELETE"]);
    check(&app, State::clean(1, 2).pending(1), State::clean(1, 1)).await;
}

#[tokio::test]
async fn upload_4_cleanup_fewer_500s_recover() {
    let app = cloudflare().await;
    app.s3().unwrap().fail_next(S3_ATTEMPTS - 1, "DELETE", 500);
    let deps = OnBatch::arming(&app, 2, RATE_LIMITED, D1_ATTEMPTS);
    let cell = upload_on(&app, &deps).await;
    cell.reply.error(429, "RATE_LIMITED");
    cell.made(&app, 5, &["PUT", "DELETE", "DELETE", "DELETE"]);
    check(&app, State::clean(0, 0), State::clean(0, 0)).await;
}

/// The cleanup lands but its answer is lost: the object is gone all the same.
async fn upload_4_cleanup_lands_answer_lost(backend: Backend) {
    let app = TestApp::on(backend).await;
    upload(&app).await.reply.ok(201);
    let deps = LandedButLost::deps(&app, false, true);
    let cell = upload_on(&app, &deps).await;
    cell.reply.error(409, "CONFLICT");
    // The answer was lost, so the key is left pending too (a third D1 request); gc clears it.
    cell.made(&app, 3, &["PUT", "DELETE"]);
    check(&app, State::clean(1, 1), State::clean(1, 1)).await;
}
on_both_backends!(upload_4_cleanup_lands_answer_lost);

/// R2 accepting the PUT and never answering: the S3 client's operation timeout (20 s) makes the
/// function give up before the Lambda's 28 s timeout (infra/template.yaml) and answer 500
/// INTERNAL_ERROR itself, rather than the gateway's bare 500.
#[tokio::test]
async fn an_upload_answers_while_r2_stalls() {
    let app = cloudflare().await;
    app.s3().unwrap().set_latency(Duration::from_secs(120));
    let answered = tokio::time::timeout(Duration::from_secs(28), upload(&app)).await;
    let cell = answered.expect("the upload answered before the Lambda timeout of 28 s");
    cell.reply.error(500, "INTERNAL_ERROR");
}

// ---------------------------------------------------------------------------------------------
// Update: (1) its one D1 request. The stored metadata and tags are either fully the old or fully
// the new, never a mix, and never lost.

const OLD_METADATA: &str = r#"{"alt":"old","keep":1}"#;
const OLD_TAGS: &str = r#"["old"]"#;

fn patch_body() -> Value {
    json!({ "metadata": { "alt": "new", "extra": true }, "tags": ["new"] })
}

fn new_metadata() -> Value {
    json!({ "alt": "new", "keep": 1, "extra": true })
}

/// A fresh app with one asset carrying the old metadata and tags; its id.
/// The pending rows a delete of `id` journals: its variants' prefix and its object's key.
fn journaled(app: &TestApp, id: &str, key: &str) -> Vec<String> {
    vec![
        shared::variants::prefix(&app.vault.vault_id, id),
        key.to_owned(),
    ]
}

async fn with_asset(app: &TestApp) -> (String, String) {
    let record = app
        .create(
            &upload_form()
                .field("metadata", OLD_METADATA)
                .field("tags", OLD_TAGS),
        )
        .await;
    let id = record["id"].as_str().unwrap().to_owned();
    let key = record["r2_key"].as_str().unwrap().to_owned();
    (id, key)
}

async fn patch_on(app: &TestApp, deps: &Deps, id: &str) -> Cell {
    let call = app
        .call_on(deps, "update")
        .key(app.sk())
        .asset(id)
        .json(&patch_body());
    send(app, call).await
}

#[derive(Debug, PartialEq)]
enum Stored {
    Old,
    New,
}

/// Which version is stored; fails on anything else (a mix, a loss).
async fn stored(app: &TestApp, id: &str) -> Stored {
    let record = app.get(app.pk(), id).await.ok(200);
    let metadata: Value = serde_json::from_str(record["metadata"].as_str().unwrap()).unwrap();
    let tags: Value = serde_json::from_str(record["tags"].as_str().unwrap()).unwrap();
    let old = (
        serde_json::from_str::<Value>(OLD_METADATA).unwrap(),
        serde_json::from_str::<Value>(OLD_TAGS).unwrap(),
    );
    match (metadata, tags) {
        state if state == old => Stored::Old,
        (metadata, tags) if metadata == new_metadata() && tags == json!(["new"]) => Stored::New,
        (metadata, tags) => panic!("neither old nor new: metadata {metadata}, tags {tags}"),
    }
}

async fn update_cell(fault: Fault, n: usize, status: u16, code: &str, d1: u64, then: Stored) {
    let app = cloudflare().await;
    let (id, _) = with_asset(&app).await;
    app.d1().unwrap().fail_next(n, fault);
    let cell = patch_on(&app, &app.deps, &id).await;
    if status == 200 {
        cell.reply.ok(200);
    } else {
        cell.reply.error(status, code);
    }
    cell.made(&app, d1, &[]);
    assert_eq!(stored(&app, &id).await, then);
    check(&app, State::clean(1, 1), State::clean(1, 1)).await;
}

#[tokio::test]
async fn update_1_d1_500s_fail_and_keep_the_old_version() {
    update_cell(
        Fault::ServerError,
        D1_ATTEMPTS,
        500,
        "INTERNAL_ERROR",
        4,
        Stored::Old,
    )
    .await;
}

#[tokio::test]
async fn update_1_lost_answers_fail_and_keep_the_old_version() {
    update_cell(
        Fault::Disconnect,
        D1_ATTEMPTS,
        500,
        "INTERNAL_ERROR",
        4,
        Stored::Old,
    )
    .await;
}

#[tokio::test]
async fn update_1_429_storm_is_rate_limited_and_keeps_the_old_version() {
    update_cell(
        RATE_LIMITED,
        D1_ATTEMPTS,
        429,
        "RATE_LIMITED",
        4,
        Stored::Old,
    )
    .await;
}

#[tokio::test]
async fn update_1_fewer_429s_recover_with_the_new_version() {
    update_cell(RATE_LIMITED, D1_ATTEMPTS - 1, 200, "", 4, Stored::New).await;
}

#[tokio::test]
async fn update_1_fewer_500s_recover_with_the_new_version() {
    update_cell(Fault::ServerError, D1_ATTEMPTS - 1, 200, "", 4, Stored::New).await;
}

/// The UPDATE ran but its answer is lost: 500, the new version is stored whole, and a client's
/// retry of the same PATCH changes nothing more (merge and replace are idempotent).
async fn update_1_lands_answer_lost(backend: Backend) {
    let app = TestApp::on(backend).await;
    let (id, _) = with_asset(&app).await;
    let deps = OnBatch::losing(&app, 1);
    let cell = patch_on(&app, &deps, &id).await;
    cell.reply.error(500, "INTERNAL_ERROR");
    cell.made(&app, 1, &[]);
    assert_eq!(stored(&app, &id).await, Stored::New);
    patch_on(&app, &app.deps, &id).await.reply.ok(200);
    assert_eq!(stored(&app, &id).await, Stored::New);
    check(&app, State::clean(1, 1), State::clean(1, 1)).await;
}
on_both_backends!(update_1_lands_answer_lost);

// ---------------------------------------------------------------------------------------------
// Delete: (1) its one D1 request (journal + record delete), (2) S3 DELETE. A failed object delete
// leaves a pending row, and gc removes the object.

async fn delete_on(app: &TestApp, deps: &Deps, id: &str) -> Cell {
    let call = app.call_on(deps, "delete").key(app.sk()).asset(id);
    send(app, call).await
}

/// The asset is still there, whole: record and object.
async fn still_there(app: &TestApp, id: &str, key: &str) {
    app.get(app.pk(), id).await.ok(200);
    assert!(app.read_object(key).is_some(), "the object is there");
}

/// The asset is gone from the API.
async fn gone(app: &TestApp, id: &str) {
    app.get(app.pk(), id).await.error(404, "ASSET_NOT_FOUND");
}

async fn delete_d1_refused(fault: Fault, n: usize, status: u16, code: &str, d1: u64) {
    let app = cloudflare().await;
    let (id, key) = with_asset(&app).await;
    app.d1().unwrap().fail_next(n, fault);
    let cell = delete_on(&app, &app.deps, &id).await;
    cell.reply.error(status, code);
    cell.made(&app, d1, &[]);
    still_there(&app, &id, &key).await;
    check(&app, State::clean(1, 1), State::clean(1, 1)).await;
    // The client retries: the asset goes.
    assert_eq!(delete_on(&app, &app.deps, &id).await.reply.status, 204);
    gone(&app, &id).await;
    check(&app, State::clean(0, 0), State::clean(0, 0)).await;
}

#[tokio::test]
async fn delete_1_d1_500s_fail_and_keep_the_asset() {
    delete_d1_refused(Fault::ServerError, D1_ATTEMPTS, 500, "INTERNAL_ERROR", 4).await;
}

#[tokio::test]
async fn delete_1_lost_answers_fail_and_keep_the_asset() {
    delete_d1_refused(Fault::Disconnect, D1_ATTEMPTS, 500, "INTERNAL_ERROR", 4).await;
}

#[tokio::test]
async fn delete_1_429_storm_is_rate_limited_and_keeps_the_asset() {
    delete_d1_refused(RATE_LIMITED, D1_ATTEMPTS, 429, "RATE_LIMITED", 4).await;
}

#[tokio::test]
async fn delete_1_fewer_429s_recover() {
    let app = cloudflare().await;
    let (id, key) = with_asset(&app).await;
    app.d1().unwrap().fail_next(D1_ATTEMPTS - 1, RATE_LIMITED);
    let cell = delete_on(&app, &app.deps, &id).await;
    assert_eq!(cell.reply.status, 204, "{}", cell.reply.snippet());
    // The object's DELETE, then the listing of its variants (none) to remove them.
    cell.made(&app, 4, &["DELETE", "GET"]);
    gone(&app, &id).await;
    assert!(app.read_object(&key).is_none());
    check(&app, State::clean(0, 0), State::clean(0, 0)).await;
}

/// The journal and the record delete ran, their answer is lost: 500, yet the asset is gone and its
/// object is covered by a pending row, which gc finishes. A retried DELETE is 404.
async fn delete_1_lands_answer_lost(backend: Backend) {
    let app = TestApp::on(backend).await;
    let (id, key) = with_asset(&app).await;
    let deps = OnBatch::losing(&app, 1);
    let cell = delete_on(&app, &deps, &id).await;
    cell.reply.error(500, "INTERNAL_ERROR");
    cell.made(&app, 1, &[]);
    gone(&app, &id).await;
    assert_eq!(app.pending_deletions().await, journaled(&app, &id, &key));
    check(&app, State::clean(0, 1).pending(1), State::clean(0, 0)).await;
    assert!(app.read_object(&key).is_none());
    delete_on(&app, &app.deps, &id)
        .await
        .reply
        .error(404, "ASSET_NOT_FOUND");
}
on_both_backends!(delete_1_lands_answer_lost);

async fn delete_s3_refused(status: u16) {
    let app = cloudflare().await;
    let (id, key) = with_asset(&app).await;
    app.s3().unwrap().fail_next(S3_ATTEMPTS, "DELETE", status);
    let cell = delete_on(&app, &app.deps, &id).await;
    assert_eq!(cell.reply.status, 204, "{}", cell.reply.snippet());
    assert!(cell.reply.body.is_empty());
    cell.made(&app, 1, &["DELETE", "DELETE", "DELETE", "GET"]);
    gone(&app, &id).await;
    assert!(app.read_object(&key).is_some(), "the object waits for gc");
    assert_eq!(app.pending_deletions().await, journaled(&app, &id, &key));
    check(&app, State::clean(0, 1).pending(1), State::clean(0, 0)).await;
    assert!(app.read_object(&key).is_none(), "gc removed the object");
}

#[tokio::test]
async fn delete_2_s3_500s_leave_a_pending_row_that_gc_finishes() {
    delete_s3_refused(500).await;
}

#[tokio::test]
async fn delete_2_s3_503_storm_leaves_a_pending_row_that_gc_finishes() {
    delete_s3_refused(503).await;
}

#[tokio::test]
async fn delete_2_s3_fewer_500s_recover() {
    let app = cloudflare().await;
    let (id, key) = with_asset(&app).await;
    app.s3().unwrap().fail_next(S3_ATTEMPTS - 1, "DELETE", 500);
    let cell = delete_on(&app, &app.deps, &id).await;
    assert_eq!(cell.reply.status, 204, "{}", cell.reply.snippet());
    cell.made(&app, 1, &["DELETE", "DELETE", "DELETE", "GET"]);
    gone(&app, &id).await;
    assert!(app.read_object(&key).is_none());
    check(&app, State::clean(0, 0), State::clean(0, 0)).await;
}

/// The object delete lands but its answer is lost: 204, the object is gone, the pending row stays
/// until gc clears it (removing a missing object succeeds).
async fn delete_2_lands_answer_lost(backend: Backend) {
    let app = TestApp::on(backend).await;
    let (id, key) = with_asset(&app).await;
    let deps = LandedButLost::deps(&app, false, true);
    let cell = delete_on(&app, &deps, &id).await;
    assert_eq!(cell.reply.status, 204, "{}", cell.reply.snippet());
    cell.made(&app, 1, &["DELETE", "GET"]);
    gone(&app, &id).await;
    assert!(app.read_object(&key).is_none());
    assert_eq!(app.pending_deletions().await, journaled(&app, &id, &key));
    check(&app, State::clean(0, 0), State::clean(0, 0)).await;
}
on_both_backends!(delete_2_lands_answer_lost);
