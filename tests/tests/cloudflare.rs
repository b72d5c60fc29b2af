//! What only the Cloudflare backend can show: round trips counted by the D1 test server, the wire
//! form of the PUT the R2 client sends, and what the API answers when D1 or R2 fail. The rules of
//! docs/API.md themselves run on this backend in `contract.rs`.

use imgbt_test_servers::D1Faults;
use imgbt_test_servers::d1::Fault;
use imgbt_tests::{Backend, Form, TestApp, UPSTREAM_SECRET};
use serde_json::json;
use shared::BoxFuture;
use shared::Deps;
use shared::db::{Db, DbError, Stmt, StmtResult};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

async fn app() -> TestApp {
    TestApp::on(Backend::Cloudflare).await
}

/// D1 requests and S3 requests (by method) made by `f`.
async fn counted<F, Fut, T>(app: &TestApp, f: F) -> (T, u64, Vec<String>)
where
    F: FnOnce() -> Fut,
    Fut: std::future::Future<Output = T>,
{
    let (d1, s3) = (app.d1().unwrap(), app.s3().unwrap());
    d1.reset_requests();
    s3.reset_requests();
    let out = f().await;
    let methods = s3.requests().iter().map(|r| r.method.to_string()).collect();
    (out, d1.requests(), methods)
}

#[tokio::test]
async fn get_list_update_and_delete_make_exactly_one_d1_request_each() {
    let app = app().await;
    let id = app.create(&Form::standard()).await["id"]
        .as_str()
        .unwrap()
        .to_owned();

    let (reply, d1, s3) = counted(&app, || app.get(app.pk(), &id)).await;
    reply.ok(200);
    assert_eq!((d1, s3.len()), (1, 0), "get");

    let (reply, d1, s3) = counted(&app, || app.list(app.pk(), "partition=marketing&limit=5")).await;
    reply.ok(200);
    assert_eq!((d1, s3.len()), (1, 0), "list");

    let patch = json!({ "metadata": { "alt": "x" }, "tags": ["a"] });
    let (reply, d1, s3) = counted(&app, || app.patch(app.sk(), &id, &patch)).await;
    reply.ok(200);
    assert_eq!((d1, s3.len()), (1, 0), "update");

    let (reply, d1, s3) = counted(&app, || app.delete(app.sk(), &id)).await;
    assert_eq!(reply.status.as_u16(), 204);
    // The object's DELETE, then the listing of its variants (none here) to remove them.
    assert_eq!(
        (d1, s3),
        (1, vec!["DELETE".to_owned(), "GET".to_owned()]),
        "delete"
    );

    // Errors cost no more: a missing asset, a wrong key, a bad query.
    let (reply, d1, _) = counted(&app, || app.get(app.pk(), &id)).await;
    reply.error(404, "ASSET_NOT_FOUND");
    assert_eq!(d1, 1);
    let (reply, d1, _) = counted(&app, || app.list(app.pk(), "limit=0")).await;
    reply.invalid("limit");
    assert_eq!(d1, 1);
}

#[tokio::test]
async fn upload_makes_at_most_two_d1_requests_and_one_put() {
    let app = app().await;
    let form = Form::standard();
    let (reply, d1, s3) = counted(&app, || app.upload(app.sk(), &form)).await;
    let record = reply.ok(201);
    assert!(d1 <= 2, "{d1} D1 requests");
    assert_eq!(s3, vec!["PUT".to_owned()]);
    let stored = app
        .s3()
        .unwrap()
        .object_content_type(record["r2_key"].as_str().unwrap());
    assert_eq!(
        stored.as_deref(),
        Some("image/png"),
        "the content type is stored with the object"
    );
}

#[tokio::test]
async fn the_put_carries_no_checksum_headers_and_no_aws_chunked_body() {
    let app = app().await;
    let form = Form::standard();
    let (reply, _, _) = counted(&app, || app.upload(app.sk(), &form)).await;
    let record = reply.ok(201);
    let puts: Vec<_> = app
        .s3()
        .unwrap()
        .requests()
        .into_iter()
        .filter(|r| r.method == "PUT")
        .collect();
    assert_eq!(puts.len(), 1);
    let put = &puts[0];
    for (name, value) in &put.headers {
        let name = name.as_str();
        assert!(!name.starts_with("x-amz-checksum-"), "{name}");
        assert_ne!(name, "x-amz-sdk-checksum-algorithm");
        assert_ne!(name, "x-amz-decoded-content-length");
        assert!(
            !value.to_str().unwrap_or_default().contains("aws-chunked"),
            "{name}: {value:?}"
        );
    }
    let size = record["size"].as_u64().unwrap();
    assert_eq!(
        put.header("content-length"),
        Some(size.to_string().as_str())
    );
    assert_eq!(
        put.body.len() as u64,
        size,
        "the body is the file, unframed"
    );
    assert_eq!(put.header("content-type"), Some("image/png"));
}

#[tokio::test]
async fn writes_with_a_bad_key_or_a_public_key_change_nothing_in_either_store() {
    let app = app().await;
    let id = app.create(&Form::standard()).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let before = (app.database_bytes(), app.object_files());
    let unknown = format!("sk_{}", "0".repeat(48));
    for key in [app.pk(), unknown.as_str(), app.other.secret_key.as_str()] {
        let form = Form::tiny("a", "b", "c", "new.txt");
        let (replies, _, s3) = counted(&app, || async {
            vec![
                app.upload(key, &form).await,
                app.patch(key, &id, &json!({ "tags": ["x"] })).await,
                app.delete(key, &id).await,
            ]
        })
        .await;
        for reply in replies {
            assert!(
                [401, 403].contains(&reply.status.as_u16()),
                "{}",
                reply.snippet()
            );
        }
        assert!(s3.is_empty(), "no object request was made: {s3:?}");
    }
    assert_eq!((app.database_bytes(), app.object_files()), before);
}

#[tokio::test]
async fn a_429_then_success_is_retried_and_succeeds() {
    let app = app().await;
    let id = app.create(&Form::standard()).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let d1 = app.d1().unwrap();
    d1.fail_next(
        1,
        Fault::RateLimited {
            retry_after_secs: None,
        },
    );
    let (reply, requests, _) = counted(&app, || app.get(app.pk(), &id)).await;
    reply.ok(200);
    assert_eq!(requests, 2, "one refused, one answered");
}

#[tokio::test]
async fn persistent_429s_are_rate_limited_after_retries() {
    let app = app().await;
    let d1 = app.d1().unwrap();
    d1.fail_next(
        100,
        Fault::RateLimited {
            retry_after_secs: None,
        },
    );
    let (reply, requests, _) = counted(&app, || app.list(app.pk(), "")).await;
    reply.error(429, "RATE_LIMITED");
    assert!(
        requests > 1 && requests < 10,
        "retried a bounded number of times: {requests}"
    );
}

#[tokio::test]
async fn a_persistent_500_is_an_internal_error_without_the_upstream_body() {
    let app = app().await;
    let d1 = app.d1().unwrap();
    d1.fail_next(100, Fault::ServerError);
    let reply = app.list(app.pk(), "").await;
    let message = reply.error(500, "INTERNAL_ERROR");
    let body = reply.text();
    for leak in [
        "7500",
        "success",
        d1.token(),
        d1.account_id(),
        d1.database_id(),
    ] {
        assert!(!body.contains(leak), "{leak} leaked: {body}");
    }
    assert_eq!(message, "internal error");
}

#[tokio::test]
async fn a_failed_put_leaves_no_record() {
    let app = app().await;
    // More failures than the R2 client's own retries.
    app.s3().unwrap().fail_next(10, "PUT", 500);
    let reply = app.upload(app.sk(), &Form::standard()).await;
    reply.error(500, "INTERNAL_ERROR");
    assert!(!reply.text().contains("InternalError"), "{}", reply.text());
    let page = app.list(app.pk(), "").await.ok(200);
    assert_eq!(page["data"], json!([]));
    assert!(app.object_files().is_empty());
}

/// Passes the first `pass` batches to `inner`, then fails every batch with a 500-like error.
struct FailAfter {
    inner: Arc<dyn Db>,
    pass: AtomicUsize,
}

impl Db for FailAfter {
    fn batch(&self, stmts: Vec<Stmt>) -> BoxFuture<'_, Result<Vec<StmtResult>, DbError>> {
        let left = self
            .pass
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1));
        if left.is_err() {
            return Box::pin(async {
                Err(DbError::Other(format!(
                    "D1 answered 500: {UPSTREAM_SECRET}"
                )))
            });
        }
        self.inner.batch(stmts)
    }
}

#[tokio::test]
async fn a_failed_insert_after_the_put_leaves_no_object() {
    let app = app().await;
    let failing = FailAfter {
        inner: app.deps.db.clone(),
        pass: AtomicUsize::new(1),
    };
    let deps = Deps::new(Arc::new(failing), app.blobs());
    let s3 = app.s3().unwrap();
    s3.reset_requests();
    let reply = app
        .call_on(&deps, "upload")
        .key(app.sk())
        .form(&Form::standard())
        .send()
        .await;
    reply.error(500, "INTERNAL_ERROR");
    let methods: Vec<String> = s3.requests().iter().map(|r| r.method.to_string()).collect();
    assert_eq!(
        methods,
        ["PUT", "DELETE"],
        "the object was written, then removed"
    );
    assert!(app.object_files().is_empty(), "{:?}", app.object_files());
    assert_eq!(app.list(app.pk(), "").await.ok(200)["data"], json!([]));
}

#[tokio::test]
async fn lost_answers_to_the_insert_keep_the_object() {
    // The insert's outcome is unknown (the connection dropped after the request was read, on
    // every attempt): removing the object could leave a record without its bytes, so it stays.
    let app = app().await;
    let d1 = app.d1().unwrap();
    let form = Form::standard();
    // The first request (authentication) is answered; the second (the insert) is cut, and so
    // are its resends.
    let upload = app.upload(app.sk(), &form);
    let cut = async {
        while d1.requests() < 1 {
            tokio::task::yield_now().await;
        }
        d1.fail_next(shared::backoff::D1_ATTEMPTS as usize, Fault::Disconnect);
    };
    d1.reset_requests();
    let (reply, ()) = tokio::join!(upload, cut);
    reply.error(500, "INTERNAL_ERROR");
    assert_eq!(app.object_files().len(), 1, "the object stays");
}
