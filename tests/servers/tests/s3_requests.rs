//! Our R2 client (the AWS SDK as `shared::blobs::r2` configures it) against the S3 stand-in, which
//! verifies every signature, in the `Authorization` header and in presigned URLs: awkward keys,
//! list pages and their continuation tokens, presigned URLs that expire or are tampered with,
//! retries (429 included, which the SDK alone does not retry) and the text of errors.

mod common;

use common::{blobs, body};

use http::Method;
use imgbt_test_servers::S3Server;
use shared::blobs::r2::R2Blobs;
use shared::blobs::{BlobError, Blobs, Validity};
use shared::secret::Secret;
use std::time::{Duration, SystemTime};

/// Keys with every character the path encoding has to get right.
const AWKWARD: [&str; 8] = [
    "vault_01/p/c/ch/asset_01_a b.png",
    "vault_01/p/c/ch/asset_02_a+b.png",
    "vault_01/p/c/ch/asset_03_a&b=c;d.png",
    "vault_01/p/c/ch/asset_04_100%.png",
    "vault_01/p/c/ch/asset_05_größe 写真 🐈.png",
    "vault_01/p/c/ch/asset_06_~tilde~.png",
    "vault_01/p/c/ch/asset_07_%20 literally.png",
    "vault_01/p/c/ch/asset_08_<'\"quotes\">!*().png",
];

#[tokio::test]
async fn awkward_keys_round_trip_put_list_read_head_delete() {
    let server = S3Server::start().await;
    let blobs = blobs(&server);
    for (i, key) in AWKWARD.iter().enumerate() {
        let bytes = bytes::Bytes::from(vec![b'a' + i as u8; 10 + i]);
        blobs.put(key, bytes.clone(), "image/png").await.expect(key);
        assert_eq!(
            server.object_bytes(key).as_deref(),
            Some(&bytes[..]),
            "{key}"
        );
        assert_eq!(blobs.size(key).await.unwrap(), Some(10 + i as u64), "{key}");
        assert_eq!(
            blobs.read_head(key, 4).await.unwrap().as_deref(),
            Some(&bytes[..4]),
            "{key}"
        );
    }
    let mut expected: Vec<(String, u64)> = AWKWARD
        .iter()
        .enumerate()
        .map(|(i, k)| ((*k).to_owned(), 10 + i as u64))
        .collect();
    expected.sort();
    assert_eq!(sizes(blobs.list("vault_01/").await.unwrap()), expected);
    // The prefix is a query parameter: encoded and signed like the keys.
    assert_eq!(
        sizes(
            blobs
                .list("vault_01/p/c/ch/asset_05_größe 写")
                .await
                .unwrap()
        ),
        vec![(AWKWARD[4].to_owned(), 14)]
    );
    assert_eq!(
        sizes(blobs.list("vault_01/p/c/ch/asset_03_a&b=").await.unwrap()),
        vec![(AWKWARD[2].to_owned(), 12)]
    );
    assert!(blobs.list("vault_02/").await.unwrap().is_empty());
    for key in AWKWARD {
        blobs.delete(key).await.expect(key);
        assert!(!server.object_exists(key), "{key}");
        assert_eq!(blobs.size(key).await.unwrap(), None, "{key}");
        assert_eq!(blobs.read_head(key, 4).await.unwrap(), None, "{key}");
    }
    assert!(server.objects().is_empty());
    // Each key went on the wire encoded once: `%` as %25, never a raw space or `+`.
    let paths: Vec<String> = server.requests().iter().map(|r| r.path.clone()).collect();
    assert!(
        paths.iter().any(|p| p.ends_with("/asset_04_100%25.png")),
        "{paths:?}"
    );
    assert!(
        paths
            .iter()
            .any(|p| p.ends_with("/asset_07_%2520%20literally.png")),
        "{paths:?}"
    );
    assert!(
        paths.iter().any(|p| p.ends_with("/asset_02_a%2Bb.png")),
        "{paths:?}"
    );
    assert!(
        paths.iter().any(|p| p.ends_with("/asset_06_~tilde~.png")),
        "{paths:?}"
    );
}

#[tokio::test]
async fn keys_with_dot_segments_are_refused_before_sending() {
    let server = S3Server::start().await;
    let blobs = blobs(&server);
    for key in ["vault_01/../other/x.png", "vault_01/./x.png"] {
        let err = blobs.put(key, body(), "image/png").await.unwrap_err();
        assert!(matches!(err, BlobError::BadKey(_)), "{err}");
    }
    assert!(server.requests().is_empty());
}

#[tokio::test]
async fn list_follows_continuation_tokens_across_pages() {
    let server = S3Server::start().await;
    let blobs = blobs(&server).with_page_size(3);
    let mut keys: Vec<String> = AWKWARD.iter().map(|k| (*k).to_owned()).collect();
    keys.extend((0..3).map(|i| format!("vault_01/p/c/ch/asset_1{i}_plain.png")));
    keys.push("vault_09/elsewhere.png".to_owned());
    for key in &keys {
        blobs.put(key, body(), "image/png").await.expect(key);
    }
    server.reset_requests();
    let listed = sizes(blobs.list("vault_01/").await.unwrap());
    let mut expected: Vec<(String, u64)> = keys
        .iter()
        .filter(|k| k.starts_with("vault_01/"))
        .map(|k| (k.clone(), body().len() as u64))
        .collect();
    expected.sort();
    assert_eq!(listed, expected);
    // 11 keys in pages of 3: four pages, the last three carrying a token (a key, with its
    // awkward characters, encoded and signed in the query).
    let requests = server.requests();
    assert_eq!(
        requests.len(),
        4,
        "{:?}",
        requests.iter().map(|r| &r.query).collect::<Vec<_>>()
    );
    assert!(
        requests
            .iter()
            .all(|r| r.method == Method::GET && r.query.contains("max-keys=3"))
    );
    let with_token = requests
        .iter()
        .filter(|r| r.query.contains("continuation-token="))
        .count();
    assert_eq!(with_token, 3);

    // The default page (the store's 1,000) holds them all: one request.
    server.reset_requests();
    assert_eq!(
        sizes(common::blobs(&server).list("vault_01/").await.unwrap()),
        expected
    );
    assert_eq!(server.requests().len(), 1);
}

/// A page starts after the key it is given (S3's `start-after`, the key encoded and signed in the
/// query), holds at most `max` objects, and dates each one by its `LastModified`.
#[tokio::test]
async fn a_page_starts_after_a_key_and_dates_its_objects() {
    let server = S3Server::start().await;
    let blobs = blobs(&server);
    let before = shared::clock::Clock::default().now_ms();
    for key in AWKWARD {
        blobs.put(key, body(), "image/png").await.expect(key);
    }
    let mut sorted: Vec<&str> = AWKWARD.to_vec();
    sorted.sort();
    server.reset_requests();
    let page = blobs.list_page("vault_01/", sorted[2], 3).await.unwrap();
    let keys: Vec<&str> = page.iter().map(|o| o.key.as_str()).collect();
    assert_eq!(keys, sorted[3..6]);
    let requests = server.requests();
    assert_eq!(requests.len(), 1);
    assert!(
        requests[0].query.contains("start-after=") && requests[0].query.contains("max-keys=3"),
        "{}",
        requests[0].query
    );
    // S3 dates objects to the second.
    for object in &page {
        assert!(
            object.modified_ms + 1000 >= before && object.modified_ms <= before + 60_000,
            "{object:?} (listed after {before})"
        );
    }
    let last = sorted[sorted.len() - 1];
    assert!(
        blobs
            .list_page("vault_01/", last, 3)
            .await
            .unwrap()
            .is_empty()
    );
}

fn sizes(listed: Vec<shared::blobs::Listed>) -> Vec<(String, u64)> {
    listed.into_iter().map(|o| (o.key, o.size)).collect()
}

fn validity(signed_at: SystemTime, seconds: u64) -> Validity {
    Validity {
        signed_at,
        expires_in: Duration::from_secs(seconds),
    }
}

async fn send_put(url: &str, headers: &[(String, String)], body: &'static [u8]) -> u16 {
    let mut request = reqwest::Client::new().put(url).body(body);
    for (name, value) in headers {
        request = request.header(name, value);
    }
    request.send().await.unwrap().status().as_u16()
}

const KEY: &str = "vault_01/p/c/ch/asset_01_up load+1.png";

#[tokio::test]
async fn a_presigned_put_creates_once_and_a_presigned_get_reads() {
    let server = S3Server::start().await;
    let blobs = blobs(&server);
    let put = blobs
        .presign_put(KEY, "image/png", validity(SystemTime::now(), 300))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(send_put(&put.url, &put.headers, b"first").await, 200);
    assert_eq!(server.object_bytes(KEY).as_deref(), Some(&b"first"[..]));
    assert_eq!(
        server.object_content_type(KEY).as_deref(),
        Some("image/png")
    );
    // `if-none-match: *` is signed: the URL never replaces what is there.
    assert_eq!(send_put(&put.url, &put.headers, b"second").await, 412);
    assert_eq!(server.object_bytes(KEY).as_deref(), Some(&b"first"[..]));

    let get = blobs
        .presign_get(KEY, "image/webp", validity(SystemTime::now(), 300))
        .await
        .unwrap()
        .unwrap();
    let answer = reqwest::get(&get.url).await.unwrap();
    assert_eq!(answer.status().as_u16(), 200);
    assert_eq!(
        answer
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok()),
        Some("image/webp")
    );
    assert_eq!(&answer.bytes().await.unwrap()[..], b"first");
}

#[tokio::test]
async fn an_expired_presigned_url_is_refused() {
    let server = S3Server::start().await;
    let blobs = blobs(&server);
    blobs.put(KEY, body(), "image/png").await.unwrap();
    let an_hour_ago = SystemTime::now() - Duration::from_secs(3600);
    let get = blobs
        .presign_get(KEY, "image/png", validity(an_hour_ago, 60))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(reqwest::get(&get.url).await.unwrap().status().as_u16(), 403);
    // Signed as long ago but valid for longer: accepted, so the refusal above is the expiry's.
    let get = blobs
        .presign_get(KEY, "image/png", validity(an_hour_ago, 7200))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(reqwest::get(&get.url).await.unwrap().status().as_u16(), 200);

    let other = "vault_01/p/c/ch/asset_02_late.png";
    let put = blobs
        .presign_put(other, "image/png", validity(an_hour_ago, 60))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(send_put(&put.url, &put.headers, b"late").await, 403);
    assert!(!server.object_exists(other));
}

#[tokio::test]
async fn a_tampered_presigned_url_is_refused() {
    let server = S3Server::start().await;
    let blobs = blobs(&server);
    blobs.put(KEY, body(), "image/png").await.unwrap();
    let get = blobs
        .presign_get(KEY, "image/png", validity(SystemTime::now(), 300))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(reqwest::get(&get.url).await.unwrap().status().as_u16(), 200);
    let (head, signature) = get.url.split_once("X-Amz-Signature=").unwrap();
    let flipped = if signature.starts_with('0') { '1' } else { '0' };
    let forged = format!("{head}X-Amz-Signature={flipped}{}", &signature[1..]);
    assert_eq!(reqwest::get(&forged).await.unwrap().status().as_u16(), 403);
    // Another response content type, or a longer validity, than was signed.
    let retyped = get.url.replace("image%2Fpng", "text%2Fhtml");
    assert_ne!(retyped, get.url);
    assert_eq!(reqwest::get(&retyped).await.unwrap().status().as_u16(), 403);
    let longer = get.url.replace("X-Amz-Expires=300", "X-Amz-Expires=600");
    assert_ne!(longer, get.url);
    assert_eq!(reqwest::get(&longer).await.unwrap().status().as_u16(), 403);
    // Another key under the same signature.
    let elsewhere = get.url.replace("asset_01", "asset_02");
    assert_eq!(
        reqwest::get(&elsewhere).await.unwrap().status().as_u16(),
        403
    );
}

#[tokio::test]
async fn rate_limits_are_retried_then_reported_without_secrets() {
    let server = S3Server::start().await;
    let blobs = blobs(&server);
    blobs.put(KEY, body(), "image/png").await.unwrap();

    // Two SlowDowns, then the third attempt lists.
    server.reset_requests();
    server.fail_next(2, "GET", 503);
    assert_eq!(blobs.list("vault_01/").await.unwrap().len(), 1);
    assert_eq!(server.requests().len(), 3);

    // Three: the call gives up, as rate limited, with S3's code and message.
    server.reset_requests();
    server.fail_next(3, "GET", 503);
    let err = blobs.read_head(KEY, 10).await.unwrap_err();
    assert_eq!(server.requests().len(), 3);
    assert!(matches!(err, BlobError::RateLimited(_)), "{err}");
    let text = err.to_string();
    assert!(
        text.contains("HTTP 503 SlowDown (Please reduce your request rate.)"),
        "{text}"
    );
    assert!(!text.contains(server.secret_access_key()), "{text}");
    assert!(!text.contains("<Error>"), "no raw answer: {text}");

    // 429 too.
    server.reset_requests();
    server.fail_next(3, "DELETE", 429);
    let err = blobs.delete(KEY).await.unwrap_err();
    assert!(matches!(err, BlobError::RateLimited(_)), "{err}");
    assert_eq!(server.requests().len(), 3);
}

#[tokio::test]
async fn client_errors_are_not_retried_and_a_head_error_is_its_status() {
    let server = S3Server::start().await;
    let blobs = blobs(&server);
    server.fail_next(1, "PUT", 403);
    let err = blobs.put(KEY, body(), "image/png").await.unwrap_err();
    assert_eq!(server.requests().len(), 1, "a 403 is final");
    assert!(matches!(err, BlobError::Io(_)), "{err}");
    assert!(
        err.to_string()
            .contains("HTTP 403 AccessDenied (Access Denied)"),
        "{err}"
    );

    server.reset_requests();
    server.fail_next(3, "HEAD", 500);
    let err = blobs.size(KEY).await.unwrap_err();
    assert_eq!(server.requests().len(), 3);
    assert!(err.to_string().ends_with("HTTP 500"), "{err}");
}

#[tokio::test]
async fn read_head_asks_for_a_range_and_handles_missing_and_empty_objects() {
    let server = S3Server::start().await;
    let blobs = blobs(&server);
    blobs.put(KEY, body(), "image/png").await.unwrap();
    blobs
        .put("vault_01/empty", bytes::Bytes::new(), "text/plain")
        .await
        .unwrap();
    server.reset_requests();
    assert_eq!(
        blobs.read_head(KEY, 100).await.unwrap().unwrap(),
        body().slice(..100)
    );
    assert_eq!(server.requests()[0].header("range"), Some("bytes=0-99"));
    assert_eq!(
        blobs.read_head(KEY, 1_000_000).await.unwrap().unwrap(),
        body()
    );
    assert_eq!(blobs.read_head("vault_01/none", 10).await.unwrap(), None);
    assert_eq!(
        blobs
            .read_head("vault_01/empty", 10)
            .await
            .unwrap()
            .as_deref(),
        Some(&b""[..])
    );
    assert_eq!(
        blobs.read_head(KEY, 0).await.unwrap().as_deref(),
        Some(&b""[..])
    );
    assert_eq!(blobs.read_head("vault_01/none", 0).await.unwrap(), None);
}

#[tokio::test]
async fn an_unreachable_store_is_tried_three_times_then_reported_without_secrets() {
    // A port nobody listens on: every connection is refused.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let endpoint = format!("http://{}", listener.local_addr().unwrap());
    drop(listener);
    let secret = "a-secret-that-must-not-show";
    let blobs = R2Blobs::new(&endpoint, "bucket", "AKIDEXAMPLE", &Secret::new(secret));
    let started = std::time::Instant::now();
    let err = blobs.size(KEY).await.unwrap_err();
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    let text = err.to_string();
    assert!(matches!(err, BlobError::Io(_)), "{text}");
    assert!(text.contains("could not connect"), "{text}");
    assert!(!text.contains(secret), "{text}");
    assert!(!text.contains("Signature"), "{text}");
}
