//! gc without a person: what `shared::admin::gc` (the code of `imgbt gc` and of the scheduled
//! `gc` function) removes, and what it never touches, on the embedded default and on the
//! Cloudflare backend (the D1 and S3 test servers). Time is gc's `clock` argument, moved instead
//! of waited for; objects are dated by the store (a file's mtime, S3's `LastModified`).
//!
//! - an object under an asset key that nothing names is kept for an hour, then removed;
//! - objects a record, an open upload or a pending deletion names are never removed as orphans,
//!   however old; nor is an object under a key that is not an asset's;
//! - rows of completed uploads go 7 days after completion, not before;
//! - fsck is clean after gc.
//!
//! The `gc` function itself (its event, answer and log line) is `gc_function.rs`'s.

use bytes::Bytes;
use imgbt_test_servers::D1Faults;
use imgbt_tests::{Backend, Form, TestApp};
use serde_json::{Value, json};
use shared::BoxFuture;
use shared::admin::gc::{COMPLETED_UPLOAD_RETENTION, ORPHAN_GRACE};
use shared::admin::{self, GcReport};
use shared::blobs::{BlobError, Blobs, Listed};
use shared::clock::Clock;
use shared::db::{self, Stmt};
use std::sync::Arc;
use std::time::Duration;

/// A clock `ahead` of the system's.
fn ahead(ahead: Duration) -> Clock {
    let clock = Clock::default();
    clock.set_offset_ms(ahead.as_millis() as i64);
    clock
}

const MINUTE: Duration = Duration::from_secs(60);

/// A key shaped as [`shared::asset::r2_key`] makes them, in `app`'s vault, that no record has.
fn orphan_key(app: &TestApp, name: &str) -> String {
    shared::asset::r2_key(
        &app.vault.vault_id,
        "lost",
        "and",
        "found",
        &shared::ids::new_asset_id(1_768_473_000_000),
        name,
    )
}

async fn put(app: &TestApp, key: &str, body: &'static [u8]) {
    app.blobs()
        .put(key, Bytes::from_static(body), "text/plain")
        .await
        .expect(key);
}

async fn sweep(app: &TestApp, clock: &Clock, blobs: &dyn Blobs) -> GcReport {
    admin::gc(&*app.deps.db, clock, blobs).await.expect("gc")
}

/// Refuses to delete one key and passes everything else through: a pending deletion that stays
/// pending, so the orphan sweep meets its object.
struct KeepsOne {
    inner: Arc<dyn Blobs>,
    key: String,
}

impl Blobs for KeepsOne {
    fn put<'a>(
        &'a self,
        key: &'a str,
        body: Bytes,
        content_type: &'a str,
    ) -> BoxFuture<'a, Result<(), BlobError>> {
        self.inner.put(key, body, content_type)
    }

    fn delete<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<(), BlobError>> {
        if key == self.key {
            return Box::pin(async { Err(BlobError::Io("injected: delete refused".into())) });
        }
        self.inner.delete(key)
    }

    fn size<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<Option<u64>, BlobError>> {
        self.inner.size(key)
    }

    fn list<'a>(&'a self, prefix: &'a str) -> BoxFuture<'a, Result<Vec<Listed>, BlobError>> {
        self.inner.list(prefix)
    }

    fn list_page<'a>(
        &'a self,
        prefix: &'a str,
        after: &'a str,
        max: usize,
    ) -> BoxFuture<'a, Result<Vec<Listed>, BlobError>> {
        self.inner.list_page(prefix, after, max)
    }
}

fn upload_body(channel: &str, filename: &str, size: usize) -> Value {
    json!({
        "partition": "docs", "collection": "readme", "channel": channel, "filename": filename,
        "size": size, "mime_type": "text/plain",
    })
}

async fn orphans_go_after_the_hour_and_named_objects_stay(backend: Backend) {
    let app = TestApp::on(backend).await;
    // Named by a record.
    let record = app.create(&Form::tiny("a", "b", "c", "kept.txt")).await;
    let record_key = record["r2_key"].as_str().unwrap().to_owned();
    // Named by an open upload (bytes PUT, not completed). Its row is made to outlive the clock
    // moves below, so only its being open protects its object.
    let ticket = app
        .start_upload(app.sk(), &upload_body("open", "open.txt", 5))
        .await
        .ok(201);
    assert_eq!(app.put_upload(&ticket, b"hello".to_vec()).await.status, 200);
    app.query("UPDATE uploads SET expires_at = '2999-01-01T00:00:00.000Z'")
        .await;
    let open_key = app.query("SELECT r2_key FROM uploads").await.rows[0]["r2_key"]
        .as_str()
        .unwrap()
        .to_owned();
    // Named by a pending deletion whose object the store refuses to remove.
    let pending_key = orphan_key(&app, "pending.txt");
    put(&app, &pending_key, b"pending").await;
    db::run(
        &*app.deps.db,
        vec![Stmt::new(
            "INSERT INTO pending_deletions (r2_key, requested_at) VALUES (?1, ?2)",
            vec![
                pending_key.as_str().into(),
                "2026-01-01T00:00:00.000Z".into(),
            ],
        )],
    )
    .await
    .unwrap();
    // Named by nothing: an asset key, and a key that is no asset's.
    let orphan = orphan_key(&app, "orphan.txt");
    put(&app, &orphan, b"orphan").await;
    let foreign = "backups/2026/dump.sql";
    put(&app, foreign, b"not imgbt's").await;
    let keeps = KeepsOne {
        inner: app.blobs(),
        key: pending_key.clone(),
    };

    // Within the hour the orphan may be a write in flight: kept, and fsck says so without a fault.
    let within = ahead(ORPHAN_GRACE - MINUTE);
    let report = sweep(&app, &within, &keeps).await;
    assert!(report.orphans.is_empty(), "{report:?}");
    assert!(app.read_object(&orphan).is_some(), "kept within the hour");
    let fsck = admin::fsck(&*app.deps.db, &within, &*app.blobs())
        .await
        .unwrap();
    assert!(
        fsck.recent_objects_without_records.contains(&orphan),
        "{fsck:?}"
    );
    assert!(!fsck.objects_without_records.contains(&orphan), "{fsck:?}");

    // Past the hour: the orphan goes; nothing named goes, nor the foreign object.
    let past = ahead(ORPHAN_GRACE + MINUTE);
    let fsck = admin::fsck(&*app.deps.db, &past, &*app.blobs())
        .await
        .unwrap();
    assert!(!fsck.is_clean(), "an old orphan is a fault: {fsck:?}");
    assert!(fsck.objects_without_records.contains(&orphan), "{fsck:?}");
    let report = sweep(&app, &past, &keeps).await;
    assert_eq!(report.orphans, vec![orphan.clone()], "{report:?}");
    assert_eq!(app.read_object(&orphan), None, "removed after the hour");
    for named in [&record_key, &open_key, &pending_key] {
        assert!(app.read_object(named).is_some(), "{named} was removed");
    }
    assert!(app.read_object(foreign).is_some(), "not an asset key");
    // The pending object was tried once, as a pending deletion, and not again as an orphan.
    let tried: Vec<&str> = report.failed.iter().map(|f| f.r2_key.as_str()).collect();
    assert_eq!(tried, [pending_key.as_str()], "{report:?}");
    assert_eq!(app.pending_deletions().await, vec![pending_key.clone()]);

    // The record and the open upload still work; a second sweep removes nothing more.
    let download = app.download(app.pk(), record["id"].as_str().unwrap()).await;
    assert_eq!(download.status, 200, "{}", download.snippet());
    let report = sweep(&app, &past, &keeps).await;
    assert!(report.orphans.is_empty(), "{report:?}");
    app.complete(app.sk(), ticket["upload_id"].as_str().unwrap())
        .await
        .ok(201);

    // fsck is clean after gc, once the foreign object (which gc leaves to its owner) is gone.
    app.blobs().delete(foreign).await.unwrap();
    let fsck = admin::fsck(&*app.deps.db, &past, &*app.blobs())
        .await
        .unwrap();
    assert!(fsck.is_clean(), "{fsck:?}");
    assert_eq!(fsck.pending_deletions, vec![pending_key]);
}

#[tokio::test]
async fn orphans_go_after_the_hour_and_named_objects_stay_embedded() {
    orphans_go_after_the_hour_and_named_objects_stay(Backend::Embedded).await;
}

#[tokio::test]
async fn orphans_go_after_the_hour_and_named_objects_stay_cloudflare() {
    orphans_go_after_the_hour_and_named_objects_stay(Backend::Cloudflare).await;
}

async fn completed_upload_rows_go_after_seven_days(backend: Backend) {
    let app = TestApp::on(backend).await;
    let record = app
        .direct_upload(&upload_body("done", "done.txt", 4), b"done".to_vec())
        .await;
    let upload = app.query("SELECT id FROM uploads").await.rows;
    assert_eq!(upload.len(), 1);
    let upload_id = upload[0]["id"].as_str().unwrap().to_owned();

    let before = ahead(COMPLETED_UPLOAD_RETENTION - MINUTE);
    let report = sweep(&app, &before, &*app.blobs()).await;
    assert!(report.completed_uploads.is_empty(), "{report:?}");
    // Within the 7 days a repeated complete answers from the row.
    app.complete(app.sk(), &upload_id).await.ok(200);

    let after = ahead(COMPLETED_UPLOAD_RETENTION + MINUTE);
    let report = sweep(&app, &after, &*app.blobs()).await;
    assert_eq!(report.completed_uploads, vec![upload_id.clone()]);
    assert!(app.query("SELECT id FROM uploads").await.rows.is_empty());
    assert!(
        report.orphans.is_empty(),
        "the asset's object is its record's: {report:?}"
    );
    // The asset stays; the upload is now unknown.
    let download = app.download(app.pk(), record["id"].as_str().unwrap()).await;
    assert_eq!(download.body, b"done".to_vec());
    app.complete(app.sk(), &upload_id)
        .await
        .error(404, "UPLOAD_NOT_FOUND");
    let fsck = admin::fsck(&*app.deps.db, &after, &*app.blobs())
        .await
        .unwrap();
    assert!(fsck.is_clean() && fsck.records == 1, "{fsck:?}");
}

#[tokio::test]
async fn completed_upload_rows_go_after_seven_days_embedded() {
    completed_upload_rows_go_after_seven_days(Backend::Embedded).await;
}

#[tokio::test]
async fn completed_upload_rows_go_after_seven_days_cloudflare() {
    completed_upload_rows_go_after_seven_days(Backend::Cloudflare).await;
}

/// More old orphans than a listing page holds: every one goes, with a few D1 requests per page
/// (keys bound as one JSON array per lookup), not one per object; a record among them stays.
#[tokio::test]
async fn a_sweep_pages_through_the_bucket_with_one_lookup_per_chunk() {
    let app = TestApp::on(Backend::Cloudflare).await;
    let record = app.create(&Form::tiny("a", "b", "c", "kept.txt")).await;
    let mut orphans = Vec::new();
    for i in 0..1050 {
        let key = orphan_key(&app, &format!("{i:04}.txt"));
        put(&app, &key, b"o").await;
        orphans.push(key);
    }
    orphans.sort();
    let d1 = app.d1().unwrap();
    d1.reset_requests();
    let report = sweep(&app, &ahead(ORPHAN_GRACE + MINUTE), &*app.blobs()).await;
    let mut removed = report.orphans.clone();
    removed.sort();
    assert_eq!(removed, orphans);
    // One request each for expired uploads, pending deletions and completed rows; the first
    // page's 1,000 keys of 89 bytes take three lookups (each array kept under 90 KB, counting
    // escapes at worst), the second page's 51 one: 7. One request per object would be 1,000s.
    let requests = d1.requests();
    assert_eq!(requests, 7, "{requests} D1 requests");
    assert!(
        app.read_object(record["r2_key"].as_str().unwrap())
            .is_some()
    );
}
