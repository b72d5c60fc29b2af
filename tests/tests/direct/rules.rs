// The rules of direct uploads and downloads. Included once per backend by `../direct.rs`, where
// `app()` is defined.

use imgbt_test_servers::D1Faults;
use imgbt_tests::{Backend, TestApp, fetch, fixture, is_api_time, is_ulid, upload_request};
use serde_json::{Value, json};
use shared::MAX_FILE_BYTES;

const MINUTE_MS: i64 = 60_000;

fn png_request() -> Value {
    upload_request(
        "marketing",
        "blog",
        "hero-images",
        "photo.png",
        fixture("tiny.png").len(),
    )
}

/// The headers a ticket tells the client to send: the content type, and on R2 the signed
/// `if-none-match: *` that lets the URL create the object but never replace it.
fn put_headers(app: &TestApp, content_type: &str) -> Value {
    match app.backend() {
        Backend::Embedded => json!({ "content-type": content_type }),
        Backend::Cloudflare | Backend::Gateway => {
            json!({ "content-type": content_type, "if-none-match": "*" })
        }
    }
}

fn upload_id(ticket: &Value) -> String {
    ticket["upload_id"].as_str().expect("upload_id").to_owned()
}

fn id(record: &Value) -> String {
    record["id"].as_str().expect("id").to_owned()
}

/// Some bytes no magic number recognises, `n` long.
fn text_bytes(n: usize) -> Vec<u8> {
    (0..n).map(|i| b'a' + (i % 26) as u8).collect()
}

/// The D1 requests `f` makes, on the Cloudflare backend (None on the embedded default).
async fn d1_requests<F: std::future::Future>(app: &TestApp, f: F) -> (F::Output, Option<u64>) {
    let before = app.d1().map(|d1| d1.requests());
    let out = f.await;
    let after = app.d1().map(|d1| d1.requests());
    (out, before.zip(after).map(|(b, a)| a - b))
}

#[tokio::test]
async fn the_whole_flow_stores_what_a_multipart_upload_stores() {
    let app = app().await;
    let mut request = png_request();
    request["metadata"] = json!({"alt": "Hero", "n": 1});
    request["tags"] = json!(["hero", "blog", "hero"]);
    let (reply, d1) = d1_requests(&app, app.start_upload(app.sk(), &request)).await;
    let ticket = reply.ok(201);
    assert_eq!(d1.unwrap_or(1), 1, "uploads makes one D1 request");
    let members: Vec<&str> = ticket
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        members,
        ["expires_at", "headers", "method", "upload_id", "url"]
    );
    let upload = upload_id(&ticket);
    assert!(
        is_ulid(upload.strip_prefix("upload_").expect("upload_ prefix")),
        "{upload}"
    );
    assert_eq!(ticket["method"], "PUT");
    assert_eq!(ticket["headers"], put_headers(&app, "image/png"));
    let expires_at = ticket["expires_at"].as_str().unwrap();
    assert!(is_api_time(expires_at), "{expires_at}");
    let in_15_minutes = shared::clock::format_ms(app.deps.clock.now_ms() + 15 * MINUTE_MS as u64);
    assert!(
        expires_at <= in_15_minutes.as_str(),
        "{expires_at} vs {in_15_minutes}"
    );
    let url = ticket["url"].as_str().unwrap();
    match app.backend() {
        Backend::Cloudflare | Backend::Gateway => {
            let endpoint = app.s3().unwrap().endpoint();
            assert!(url.starts_with(&endpoint), "{url}");
            assert!(url.contains("X-Amz-Signature="), "{url}");
            assert!(url.contains("X-Amz-Expires=900"), "{url}");
        }
        Backend::Embedded => {
            let vault = &app.vault.vault_id;
            let prefix = format!(
                "http://localhost:9000/api/v1/vaults/{vault}/uploads/{upload}/content?token="
            );
            assert!(url.starts_with(&prefix), "{url}");
        }
    }

    let put = app.put_upload(&ticket, fixture("tiny.png")).await;
    assert_eq!(put.status.as_u16(), 200, "{}", put.snippet());
    let (reply, d1) = d1_requests(&app, app.complete(app.sk(), &upload)).await;
    let record = reply.ok(201);
    assert_eq!(d1.unwrap_or(2), 2, "complete makes two D1 requests");

    let multipart = app
        .create(&imgbt_tests::Form::standard().set("channel", "other"))
        .await;
    for same in [
        "mime_type",
        "width",
        "height",
        "size",
        "partition",
        "collection",
    ] {
        assert_eq!(record[same], multipart[same], "{same}");
    }
    assert_eq!(record["mime_type"], "image/png");
    assert_eq!(record["metadata"], r#"{"alt":"Hero","n":1}"#);
    assert_eq!(record["tags"], r#"["hero","blog"]"#);
    assert_eq!(record["filename"], "photo.png");
    assert_eq!(
        record["r2_key"],
        format!(
            "{}/marketing/blog/hero-images/{}_photo.png",
            app.vault.vault_id,
            id(&record)
        )
    );
    assert_eq!(app.get(app.pk(), &id(&record)).await.ok(200), record);
    let listed = app.list(app.pk(), "channel=hero-images").await.ok(200);
    assert_eq!(listed["data"], json!([record.clone()]));

    let (download, d1) = d1_requests(&app, app.download(app.pk(), &id(&record))).await;
    assert_eq!(download.status.as_u16(), 200, "{}", download.snippet());
    assert_eq!(download.body, fixture("tiny.png"), "byte-identical");
    assert_eq!(download.header("content-type"), Some("image/png"));
    assert_eq!(d1.unwrap_or(1), 1, "content makes one D1 request");
}

#[tokio::test]
async fn content_on_r2_is_a_short_lived_redirect_and_embedded_serves_the_bytes() {
    let app = app().await;
    let bytes = text_bytes(3 * 1024 * 1024 + 7);
    let record = app
        .direct_upload(
            &upload_request("docs", "big", "main", "notes.txt", bytes.len()),
            bytes.clone(),
        )
        .await;
    assert_eq!(record["mime_type"], "text/plain");
    assert_eq!(record["width"], Value::Null);
    let reply = app.content(app.sk(), &id(&record)).await;
    match app.backend() {
        Backend::Cloudflare | Backend::Gateway => {
            assert_eq!(reply.status.as_u16(), 302);
            assert_eq!(reply.header("cache-control"), Some("private, no-store"));
            assert!(reply.body.is_empty());
            let location = reply.header("location").unwrap();
            assert!(location.contains("X-Amz-Expires=300"), "{location}");
            let fetched = fetch(location).await;
            assert_eq!(fetched.status.as_u16(), 200);
            assert_eq!(fetched.header("content-type"), Some("text/plain"));
            assert!(fetched.body == bytes, "byte-identical");
            // The signature covers the object: another key with the same signature is refused.
            let tampered = location.replacen("notes.txt", "notes.txu", 1);
            assert_eq!(fetch(&tampered).await.status.as_u16(), 403);
        }
        Backend::Embedded => {
            assert_eq!(reply.status.as_u16(), 200);
            assert_eq!(reply.header("content-type"), Some("text/plain"));
            assert_eq!(
                reply.header("content-length"),
                Some(bytes.len().to_string().as_str())
            );
            assert!(reply.body == bytes, "byte-identical");
        }
    }
}

#[tokio::test]
async fn content_under_a_lambda_runtime_refuses_what_one_response_cannot_carry_on_embedded() {
    let mut app = app().await;
    // As when running as a function: a limit of 100 bytes for this test.
    app.deps.max_request_bytes = Some(100);
    let small = app
        .direct_upload(
            &upload_request("a", "b", "c", "small.txt", 100),
            text_bytes(100),
        )
        .await;
    let large = app
        .direct_upload(
            &upload_request("a", "b", "c", "large.txt", 101),
            text_bytes(101),
        )
        .await;
    assert_eq!(
        app.download(app.pk(), &id(&small)).await.body,
        text_bytes(100)
    );
    match app.backend() {
        Backend::Embedded => {
            let message = app
                .content(app.pk(), &id(&large))
                .await
                .error(413, "PAYLOAD_TOO_LARGE");
            assert!(message.contains("objects directory"), "{message}");
        }
        // A redirect carries no bytes: no limit.
        Backend::Cloudflare | Backend::Gateway => {
            assert_eq!(
                app.download(app.pk(), &id(&large)).await.body,
                text_bytes(101)
            );
        }
    }
}

#[tokio::test]
async fn content_is_404_as_get_is_and_needs_a_key_of_the_vault() {
    let app = app().await;
    let record = app.create(&imgbt_tests::Form::standard()).await;
    app.content(app.pk(), "asset_01JD0000000000000000000000")
        .await
        .error(404, "ASSET_NOT_FOUND");
    app.content(app.pk(), "not-an-id")
        .await
        .error(404, "ASSET_NOT_FOUND");
    app.content(&app.other.public_key, &id(&record))
        .await
        .error(403, "FORBIDDEN");
    app.call("content")
        .asset(&id(&record))
        .send()
        .await
        .error(401, "UNAUTHORIZED");
    // A multipart upload's asset downloads too.
    let download = app.download(app.pk(), &id(&record)).await;
    assert_eq!(download.body, fixture("tiny.png"));
}

#[tokio::test]
async fn an_expired_url_takes_no_bytes_and_its_upload_cannot_complete() {
    let app = app().await;
    // Signed 16 minutes ago: the URL (15 minutes) and the upload expired a minute ago.
    app.deps.clock.set_offset_ms(-16 * MINUTE_MS);
    let ticket = app.start_upload(app.sk(), &png_request()).await.ok(201);
    app.deps.clock.set_offset_ms(0);
    let put = app.put_upload(&ticket, fixture("tiny.png")).await;
    match app.backend() {
        Backend::Cloudflare | Backend::Gateway => {
            assert_eq!(put.status.as_u16(), 403, "{}", put.snippet());
            assert!(put.text().contains("expired"), "{}", put.snippet());
        }
        Backend::Embedded => {
            put.error(410, "UPLOAD_EXPIRED");
        }
    }
    assert!(app.object_files().is_empty(), "no bytes were stored");
    app.complete(app.sk(), &upload_id(&ticket))
        .await
        .error(410, "UPLOAD_EXPIRED");
}

#[tokio::test]
async fn a_size_other_than_the_declared_one_does_not_complete() {
    let app = app().await;
    let ticket = app
        .start_upload(app.sk(), &upload_request("a", "b", "c", "n.txt", 10))
        .await
        .ok(201);
    let upload = upload_id(&ticket);
    assert_eq!(
        app.put_upload(&ticket, text_bytes(5)).await.status.as_u16(),
        200
    );
    let message = app
        .complete(app.sk(), &upload)
        .await
        .error(409, "UPLOAD_INCOMPLETE");
    assert!(
        message.contains("5 bytes") && message.contains("10 bytes"),
        "{message}"
    );
    if app.backend() == Backend::Embedded {
        // The local route refuses more than was declared outright.
        app.put_upload(&ticket, text_bytes(11))
            .await
            .error(413, "PAYLOAD_TOO_LARGE");
    }
    // The wrong object was removed, so the right bytes can go up again (an R2 URL only creates).
    assert!(app.object_files().is_empty(), "the wrong object is gone");
    assert_eq!(
        app.put_upload(&ticket, text_bytes(10))
            .await
            .status
            .as_u16(),
        200
    );
    let record = app.complete(app.sk(), &upload).await.ok(201);
    assert_eq!(record["size"], 10);
}

#[tokio::test]
async fn completing_twice_returns_the_same_record() {
    let app = app().await;
    let ticket = app.start_upload(app.sk(), &png_request()).await.ok(201);
    let upload = upload_id(&ticket);
    assert_eq!(
        app.put_upload(&ticket, fixture("tiny.png"))
            .await
            .status
            .as_u16(),
        200
    );
    let first = app.complete(app.sk(), &upload).await.ok(201);
    let (reply, d1) = d1_requests(&app, app.complete(app.sk(), &upload)).await;
    assert_eq!(reply.ok(200), first);
    assert_eq!(d1.unwrap_or(1), 1, "a second complete is one D1 request");
    let listed = app.list(app.pk(), "").await.ok(200);
    assert_eq!(listed["data"].as_array().unwrap().len(), 1);
    // The object is an asset's now: its upload URL, still within its 15 minutes, cannot replace it.
    let again = app.put_upload(&ticket, fixture("tiny.gif")).await;
    match app.backend() {
        Backend::Embedded => {
            again.error(410, "UPLOAD_EXPIRED");
        }
        Backend::Cloudflare | Backend::Gateway => {
            assert_eq!(again.status.as_u16(), 412, "{}", again.snippet());
            assert!(
                again.text().contains("PreconditionFailed"),
                "{}",
                again.snippet()
            );
        }
    }
    assert_eq!(
        app.download(app.pk(), &id(&first)).await.body,
        fixture("tiny.png")
    );
    // Once the asset is deleted, there is nothing to complete.
    assert_eq!(app.delete(app.sk(), &id(&first)).await.status.as_u16(), 204);
    app.complete(app.sk(), &upload)
        .await
        .error(404, "UPLOAD_NOT_FOUND");
}

#[tokio::test]
async fn completing_before_the_put_is_409_upload_incomplete() {
    let app = app().await;
    let ticket = app.start_upload(app.sk(), &png_request()).await.ok(201);
    let message = app
        .complete(app.sk(), &upload_id(&ticket))
        .await
        .error(409, "UPLOAD_INCOMPLETE");
    assert!(message.contains("PUT"), "{message}");
    let empty = app.list(app.pk(), "").await.ok(200);
    assert_eq!(empty["data"], json!([]));
}

#[tokio::test]
async fn a_wrong_token_or_signature_puts_nothing() {
    let app = app().await;
    let ticket = app.start_upload(app.sk(), &png_request()).await.ok(201);
    let url = ticket["url"].as_str().unwrap().to_owned();
    let mut forged = ticket.clone();
    match app.backend() {
        Backend::Cloudflare | Backend::Gateway => {
            let (head, signature) = url.split_once("X-Amz-Signature=").unwrap();
            let flipped = if signature.starts_with('0') { "1" } else { "0" };
            forged["url"] = json!(format!(
                "{head}X-Amz-Signature={flipped}{}",
                &signature[1..]
            ));
            assert_eq!(
                app.put_upload(&forged, fixture("tiny.png"))
                    .await
                    .status
                    .as_u16(),
                403
            );
            // The content type is signed: another one is refused.
            let mut other_type = ticket.clone();
            other_type["headers"]["content-type"] = json!("text/html");
            assert_eq!(
                app.put_upload(&other_type, fixture("tiny.png"))
                    .await
                    .status
                    .as_u16(),
                403
            );
            // So is the create-only condition: a PUT without it is refused.
            let mut unconditional = ticket.clone();
            unconditional["headers"] = json!({"content-type": "image/png"});
            assert_eq!(
                app.put_upload(&unconditional, fixture("tiny.png"))
                    .await
                    .status
                    .as_u16(),
                403
            );
        }
        Backend::Embedded => {
            let (head, token) = url.split_once("token=").unwrap();
            let flipped = if token.starts_with('0') { "1" } else { "0" };
            forged["url"] = json!(format!("{head}token={flipped}{}", &token[1..]));
            app.put_upload(&forged, fixture("tiny.png"))
                .await
                .error(403, "FORBIDDEN");
            forged["url"] = json!(head.trim_end_matches('?'));
            app.put_upload(&forged, fixture("tiny.png"))
                .await
                .error(403, "FORBIDDEN");
            // An unknown upload, and another vault's path for this one.
            let unknown = url.replace(&upload_id(&ticket), "upload_01JD0000000000000000000000");
            forged["url"] = json!(unknown);
            app.put_upload(&forged, fixture("tiny.png"))
                .await
                .error(404, "UPLOAD_NOT_FOUND");
            forged["url"] = json!(url.replace(&app.vault.vault_id, &app.other.vault_id));
            app.put_upload(&forged, fixture("tiny.png"))
                .await
                .error(404, "UPLOAD_NOT_FOUND");
        }
    }
    assert!(app.object_files().is_empty(), "nothing was stored");
}

#[tokio::test]
async fn public_keys_and_other_vaults_cannot_upload_or_complete() {
    let app = app().await;
    app.start_upload(app.pk(), &png_request())
        .await
        .error(403, "FORBIDDEN");
    app.start_upload(&app.other.secret_key, &png_request())
        .await
        .error(403, "FORBIDDEN");
    // Authentication comes before the body is looked at.
    app.call("uploads")
        .key(app.pk())
        .body(Some("application/json"), "not json")
        .send()
        .await
        .error(403, "FORBIDDEN");
    app.call("uploads")
        .body(Some("application/json"), "not json")
        .send()
        .await
        .error(401, "UNAUTHORIZED");
    let ticket = app.start_upload(app.sk(), &png_request()).await.ok(201);
    let upload = upload_id(&ticket);
    assert_eq!(
        app.put_upload(&ticket, fixture("tiny.png"))
            .await
            .status
            .as_u16(),
        200
    );
    app.complete(app.pk(), &upload)
        .await
        .error(403, "FORBIDDEN");
    app.complete(&app.other.secret_key, &upload)
        .await
        .error(403, "FORBIDDEN");
    // Another vault's upload does not exist for this vault's key.
    app.call("complete")
        .vault(&app.other.vault_id)
        .key(&app.other.secret_key)
        .upload(&upload)
        .send()
        .await
        .error(404, "UPLOAD_NOT_FOUND");
    app.complete(app.sk(), "upload_01JD0000000000000000000000")
        .await
        .error(404, "UPLOAD_NOT_FOUND");
    app.complete(app.sk(), &upload).await.ok(201);
}

#[tokio::test]
async fn a_taken_name_is_409_at_the_start_and_at_complete() {
    let app = app().await;
    app.create(&imgbt_tests::Form::standard()).await;
    app.start_upload(app.sk(), &png_request())
        .await
        .error(409, "CONFLICT");
    // Taken while the bytes were on their way.
    let mut request = png_request();
    request["channel"] = json!("later");
    let ticket = app.start_upload(app.sk(), &request).await.ok(201);
    assert_eq!(
        app.put_upload(&ticket, fixture("tiny.png"))
            .await
            .status
            .as_u16(),
        200
    );
    app.create(&imgbt_tests::Form::standard().set("channel", "later"))
        .await;
    app.complete(app.sk(), &upload_id(&ticket))
        .await
        .error(409, "CONFLICT");
    let listed = app.list(app.pk(), "channel=later").await.ok(200);
    assert_eq!(listed["data"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn every_check_of_the_multipart_upload_applies() {
    let app = app().await;
    let app = &app;
    let start = |body: Value| async move { app.start_upload(app.sk(), &body).await };
    let with = |member: &str, value: Value| {
        let mut body = png_request();
        body[member] = value;
        body
    };
    start(with("partition", json!("Bad_Name")))
        .await
        .invalid("partition");
    start(with("filename", json!("..")))
        .await
        .invalid("filename");
    start(with("metadata", json!([1])))
        .await
        .invalid("metadata");
    start(with("tags", json!([""]))).await.invalid("tags");
    start(with("size", json!(-1))).await.invalid("size");
    start(with("mime_type", json!("nope")))
        .await
        .invalid("mime_type");
    start(with("unknown", json!(1))).await.invalid("unknown");
    let mut missing = png_request();
    missing.as_object_mut().unwrap().remove("channel");
    start(missing).await.invalid("channel");
    start(with("size", json!(MAX_FILE_BYTES + 1)))
        .await
        .error(413, "PAYLOAD_TOO_LARGE");
    start(with("size", json!(MAX_FILE_BYTES))).await.ok(201);
    app.call("uploads")
        .key(app.sk())
        .body(Some("text/plain"), png_request().to_string())
        .send()
        .await
        .invalid("body");
    // The declared type is what the PUT must send, and the sniffer's declared type.
    let ticket = start(with("mime_type", json!("Text/Markdown")))
        .await
        .ok(201);
    assert_eq!(ticket["headers"], put_headers(app, "text/markdown"));
    let ticket = start(upload_request("a", "b", "c", "README", 3))
        .await
        .ok(201);
    assert_eq!(
        ticket["headers"],
        put_headers(app, "application/octet-stream")
    );
    assert_eq!(
        app.put_upload(&ticket, b"abc".to_vec())
            .await
            .status
            .as_u16(),
        200
    );
    let record = app.complete(app.sk(), &upload_id(&ticket)).await.ok(201);
    assert_eq!(record["mime_type"], "application/octet-stream");
}

#[tokio::test]
async fn gc_removes_expired_uploads_never_completed_and_fsck_does_not_call_them_orphans() {
    let app = app().await;
    // Started two hours ago: expired an hour and 45 minutes ago, past gc's hour of grace.
    app.deps.clock.set_offset_ms(-120 * MINUTE_MS);
    let stale = app.start_upload(app.sk(), &png_request()).await.ok(201);
    app.deps.clock.set_offset_ms(0);
    // Its bytes landed before it expired (written directly: its URL is long expired now).
    let rows = app
        .query("SELECT id, r2_key FROM uploads ORDER BY id")
        .await
        .rows;
    let stale_key = rows[0]["r2_key"].as_str().unwrap().to_owned();
    app.deps
        .blobs
        .put(&stale_key, fixture("tiny.png").into(), "image/png")
        .await
        .unwrap();
    // One still open, and one completed, neither of which gc may touch.
    let mut request = png_request();
    request["channel"] = json!("open");
    let open = app.start_upload(app.sk(), &request).await.ok(201);
    assert_eq!(
        app.put_upload(&open, fixture("tiny.png"))
            .await
            .status
            .as_u16(),
        200
    );
    let mut request = png_request();
    request["channel"] = json!("done");
    let done = app.direct_upload(&request, fixture("tiny.png")).await;

    let report = shared::admin::fsck(
        &*app.deps.db,
        &imgbt_tests::past_the_grace(),
        &*app.deps.blobs,
    )
    .await
    .unwrap();
    assert!(report.is_clean(), "{report:?}");
    assert_eq!(report.pending_uploads.len(), 2, "{report:?}");
    assert!(report.pending_uploads.contains(&stale_key));

    let gc = shared::admin::gc(&*app.deps.db, &app.deps.clock, &*app.deps.blobs)
        .await
        .unwrap();
    assert_eq!(gc.expired_uploads, vec![upload_id(&stale)]);
    assert_eq!(gc.deleted, vec![stale_key.clone()]);
    assert_eq!(app.read_object(&stale_key), None, "the object is gone");
    let left = app.query("SELECT id FROM uploads ORDER BY id").await.rows;
    assert_eq!(left.len(), 2, "{left:?}");
    app.complete(app.sk(), &upload_id(&stale))
        .await
        .error(404, "UPLOAD_NOT_FOUND");
    // The open upload still completes, the completed asset still downloads.
    app.complete(app.sk(), &upload_id(&open)).await.ok(201);
    let download = app.download(app.pk(), &id(&done)).await;
    assert_eq!(download.body, fixture("tiny.png"));
    let report = shared::admin::fsck(
        &*app.deps.db,
        &imgbt_tests::past_the_grace(),
        &*app.deps.blobs,
    )
    .await
    .unwrap();
    assert!(
        report.is_clean() && report.pending_uploads.is_empty(),
        "{report:?}"
    );
    // A second sweep finds nothing.
    let gc = shared::admin::gc(&*app.deps.db, &app.deps.clock, &*app.deps.blobs)
        .await
        .unwrap();
    assert!(gc.expired_uploads.is_empty() && gc.deleted.is_empty());
}

#[tokio::test]
async fn a_store_failing_during_complete_loses_nothing_and_a_retry_completes() {
    use shared::db::DbError;
    let app = app().await;
    let ticket = app.start_upload(app.sk(), &png_request()).await.ok(201);
    let upload = upload_id(&ticket);
    assert_eq!(
        app.put_upload(&ticket, fixture("tiny.png"))
            .await
            .status
            .as_u16(),
        200
    );
    let refusing = shared::Deps::new(
        std::sync::Arc::new(imgbt_tests::FaultyDb {
            make: || DbError::RateLimited("D1 said 429 (upstream detail)".into()),
        }),
        app.blobs(),
    );
    let reply = app
        .call_on(&refusing, "complete")
        .key(app.sk())
        .upload(&upload)
        .send()
        .await;
    reply.error(429, "RATE_LIMITED");
    assert!(
        !reply.text().contains("upstream detail"),
        "{}",
        reply.snippet()
    );
    let lost = shared::Deps::new(
        std::sync::Arc::new(imgbt_tests::FaultyDb {
            make: || DbError::Uncertain("the answer was lost".into()),
        }),
        app.blobs(),
    );
    app.call_on(&lost, "complete")
        .key(app.sk())
        .upload(&upload)
        .send()
        .await
        .error(500, "INTERNAL_ERROR");
    // Nothing was recorded, the bytes are still there, the upload is still open.
    let listed = app.list(app.pk(), "").await.ok(200);
    assert_eq!(listed["data"], json!([]));
    let rows = app
        .query("SELECT r2_key, completed_at FROM uploads")
        .await
        .rows;
    assert_eq!(rows[0]["completed_at"], Value::Null);
    let key = rows[0]["r2_key"].as_str().unwrap();
    assert_eq!(app.read_object(key), Some(fixture("tiny.png")));
    let record = app.complete(app.sk(), &upload).await.ok(201);
    assert_eq!(record["r2_key"], key);
}

#[tokio::test]
async fn an_empty_file_goes_the_direct_way_too() {
    let app = app().await;
    let record = app
        .direct_upload(&upload_request("a", "b", "c", "empty.json", 0), Vec::new())
        .await;
    assert_eq!(record["size"], 0);
    assert_eq!(record["mime_type"], "application/json");
    let download = app.download(app.pk(), &id(&record)).await;
    assert_eq!(download.status.as_u16(), 200);
    assert!(download.body.is_empty());
}
