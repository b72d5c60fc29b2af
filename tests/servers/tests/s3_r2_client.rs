//! The S3 stand-in with our R2 client (`shared::blobs::r2::R2Blobs`), and with the AWS SDK directly
//! where our client has no call for what is checked (HEAD's and GET's content type).

mod common;

use common::{blobs, blobs_with_secret, body, sdk};

use http::Method;
use imgbt_test_servers::S3Server;
use shared::blobs::Blobs;

const KEY: &str = "vault_01/default/photos/main/asset_01_cat photo.png";

#[tokio::test]
async fn put_size_delete_round_trip_and_content_type_is_stored() {
    let server = S3Server::start().await;
    let blobs = blobs(&server);
    assert_eq!(blobs.size(KEY).await.unwrap(), None);
    blobs.put(KEY, body(), "image/png").await.expect("put");
    assert_eq!(server.objects(), vec![KEY.to_owned()]);
    assert_eq!(server.object_bytes(KEY).as_deref(), Some(&body()[..]));
    assert_eq!(
        server.object_content_type(KEY).as_deref(),
        Some("image/png")
    );
    assert_eq!(blobs.size(KEY).await.unwrap(), Some(body().len() as u64));

    let client = sdk(&server);
    let head = client
        .head_object()
        .bucket(server.bucket())
        .key(KEY)
        .send()
        .await
        .expect("head");
    assert_eq!(head.content_type(), Some("image/png"));
    let got = client
        .get_object()
        .bucket(server.bucket())
        .key(KEY)
        .send()
        .await
        .expect("get");
    assert_eq!(got.content_type(), Some("image/png"));
    assert_eq!(got.body.collect().await.unwrap().into_bytes(), body());

    blobs.delete(KEY).await.expect("delete");
    assert!(!server.object_exists(KEY));
    assert!(server.objects().is_empty());
    assert_eq!(blobs.size(KEY).await.unwrap(), None);
}

#[tokio::test]
async fn a_wrong_secret_is_refused() {
    let server = S3Server::start().await;
    let blobs = blobs_with_secret(&server, "not-the-secret");
    let err = blobs
        .put(KEY, body(), "image/png")
        .await
        .expect_err("refused");
    assert!(!server.object_exists(KEY));
    assert!(server.objects().is_empty());
    assert!(!err.to_string().contains("not-the-secret"), "{err}");
    assert!(
        server.requests().iter().all(|r| r.method == Method::PUT),
        "only PUTs were sent"
    );
    let client = sdk(&server);
    let err = client
        .head_object()
        .bucket(server.bucket())
        .key(KEY)
        .send()
        .await
        .expect_err("no such object");
    assert_eq!(
        err.raw_response().map(|r| r.status().as_u16()),
        Some(404),
        "the right secret gets past auth"
    );

    // The refusal is S3's 403, not a transport failure.
    server.reset_requests();
    let bad = blobs_with_secret(&server, "not-the-secret");
    let err = bad.size(KEY).await.expect_err("refused");
    assert!(
        err.to_string().contains("403") || err.to_string().to_lowercase().contains("forbidden"),
        "{err}"
    );
}

#[tokio::test]
async fn put_sends_plain_sized_body_without_checksums_or_aws_chunked() {
    let server = S3Server::start().await;
    blobs(&server)
        .put(KEY, body(), "image/png")
        .await
        .expect("put");
    let puts: Vec<_> = server
        .requests()
        .into_iter()
        .filter(|r| r.method == Method::PUT)
        .collect();
    assert_eq!(puts.len(), 1);
    let put = &puts[0];
    for (name, _) in &put.headers {
        let name = name.as_str();
        assert!(!name.starts_with("x-amz-checksum-"), "{name} sent");
        assert_ne!(name, "x-amz-sdk-checksum-algorithm");
        assert_ne!(name, "x-amz-decoded-content-length");
        assert_ne!(name, "x-amz-trailer");
    }
    let encoding = put.header("content-encoding").unwrap_or_default();
    assert!(
        !encoding.contains("aws-chunked"),
        "content-encoding: {encoding}"
    );
    assert_eq!(
        put.header("content-length"),
        Some(body().len().to_string().as_str())
    );
    assert_eq!(put.body, body(), "the body arrived as sent, unframed");
    assert_eq!(put.header("content-type"), Some("image/png"));
    assert!(
        put.path.starts_with(&format!("/{}/", server.bucket())),
        "path-style: {}",
        put.path
    );
    assert!(
        put.header("authorization")
            .unwrap_or_default()
            .starts_with("AWS4-HMAC-SHA256 ")
    );
}

#[tokio::test]
async fn injected_put_failure_surfaces_as_an_error() {
    let server = S3Server::start().await;
    let blobs = blobs(&server);
    // The client makes 3 attempts at a 500.
    server.fail_next(3, "PUT", 500);
    let err = blobs
        .put(KEY, body(), "image/png")
        .await
        .expect_err("every attempt fails");
    assert!(!server.object_exists(KEY));
    let puts = server
        .requests()
        .iter()
        .filter(|r| r.method == Method::PUT)
        .count();
    assert_eq!(puts, 3, "the client's attempts");
    assert!(!err.to_string().contains(server.secret_access_key()));

    // One 503 (SlowDown) is retried by the client and the object lands.
    server.reset_requests();
    server.fail_next(1, "PUT", 503);
    blobs
        .put(KEY, body(), "image/png")
        .await
        .expect("the retry succeeds");
    assert!(server.object_exists(KEY));
    assert_eq!(server.requests().len(), 2);
}

#[tokio::test]
async fn injected_head_and_delete_failures_surface_as_errors() {
    let server = S3Server::start().await;
    let blobs = blobs(&server);
    blobs.put(KEY, body(), "image/png").await.unwrap();
    server.fail_next(3, "HEAD", 500);
    blobs.size(KEY).await.expect_err("HEAD fails");
    server.fail_next(3, "DELETE", 503);
    blobs.delete(KEY).await.expect_err("DELETE fails");
    assert!(
        server.object_exists(KEY),
        "the failed delete removed nothing"
    );
    blobs.delete(KEY).await.expect("the next delete succeeds");
    assert!(!server.object_exists(KEY));
}

#[tokio::test]
async fn deleting_a_missing_key_succeeds() {
    let server = S3Server::start().await;
    blobs(&server)
        .delete("vault_01/never/was/here/x.png")
        .await
        .expect("S3 deletes are idempotent");
    assert_eq!(server.requests().len(), 1);
    assert_eq!(server.requests()[0].method, Method::DELETE);
}

#[tokio::test]
async fn latency_is_added_before_each_answer() {
    let server = S3Server::start().await;
    server.set_latency(std::time::Duration::from_millis(200));
    let started = std::time::Instant::now();
    blobs(&server).size(KEY).await.unwrap();
    assert!(started.elapsed() >= std::time::Duration::from_millis(200));
}
