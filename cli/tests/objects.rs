//! The local object server (`imgbt dev objects`, `imgbt_cli::objects`), over HTTP: it serves a
//! signed URL's object with the signed content type, ranges, HEAD and ETag, and refuses every
//! other request; and `content` on the embedded default redirects to it once it is configured.

use bytes::Bytes;
use imgbt_tests::{TestApp, fetch, upload_request};
use reqwest::StatusCode;
use reqwest::header::{HeaderMap, HeaderName};
use serde_json::Value;
use shared::blobs::Blobs;
use shared::blobs::local::LocalBlobs;
use shared::blobs::object_urls::{ObjectUrls, UrlSecret};
use shared::deps::Secret;
use std::time::{SystemTime, UNIX_EPOCH};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt};

const KEY: &str = "vault_x/media/video/raw/asset_01JD0000000000000000000000_clip é#1.mp4";

struct Objects {
    base: String,
    secret: UrlSecret,
    dir: tempfile::TempDir,
    body: Vec<u8>,
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// A server over a fresh directory holding one object, [`KEY`].
async fn start() -> Objects {
    let dir = tempfile::tempdir().unwrap();
    let blobs = LocalBlobs::new(dir.path().join("objects")).unwrap();
    let body: Vec<u8> = (0..10_000u32).map(|i| (i * 7 % 251) as u8).collect();
    blobs
        .put(KEY, Bytes::from(body.clone()), "video/mp4")
        .await
        .unwrap();
    let secret = UrlSecret::new(Secret::new("a test secret of thirty-two chars+")).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(imgbt_cli::objects::serve(listener, blobs, secret.clone()));
    Objects {
        base,
        secret,
        dir,
        body,
    }
}

impl Objects {
    fn url(&self, key: &str, content_type: &str, expires_at: u64) -> String {
        ObjectUrls::new(&self.base, self.secret.clone())
            .unwrap()
            .url(key, content_type, expires_at)
    }

    fn signed(&self) -> String {
        self.url(KEY, "video/mp4", now() + 300)
    }
}

async fn get(url: &str, headers: &[(&str, &str)]) -> (StatusCode, HeaderMap, Vec<u8>) {
    send(reqwest::Method::GET, url, headers).await
}

async fn send(
    method: reqwest::Method,
    url: &str,
    headers: &[(&str, &str)],
) -> (StatusCode, HeaderMap, Vec<u8>) {
    let mut request = reqwest::Client::new().request(method, url);
    for (name, value) in headers {
        request = request.header(HeaderName::from_bytes(name.as_bytes()).unwrap(), *value);
    }
    let response = request.send().await.unwrap();
    let (status, headers) = (response.status(), response.headers().clone());
    (status, headers, response.bytes().await.unwrap().to_vec())
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> &'a str {
    headers
        .get(name)
        .unwrap_or_else(|| panic!("no {name}"))
        .to_str()
        .unwrap()
}

/// The envelope's code and message, after checking the status.
fn refusal(answer: &(StatusCode, HeaderMap, Vec<u8>), status: u16) -> (String, String) {
    assert_eq!(
        answer.0.as_u16(),
        status,
        "{:?}",
        String::from_utf8_lossy(&answer.2)
    );
    let body: Value = serde_json::from_slice(&answer.2).expect("a JSON envelope");
    (
        body["error"]["code"].as_str().unwrap().to_owned(),
        body["error"]["message"].as_str().unwrap().to_owned(),
    )
}

#[tokio::test]
async fn a_signed_url_serves_its_object_as_the_signed_type() {
    let objects = start().await;
    let url = objects.signed();
    assert!(url.contains("_clip%20%C3%A9%231.mp4?"), "{url}");
    let (status, headers, body) = get(&url, &[]).await;
    assert_eq!(status, StatusCode::OK);
    assert!(body == objects.body, "byte-identical");
    assert_eq!(header(&headers, "content-type"), "video/mp4");
    assert_eq!(header(&headers, "accept-ranges"), "bytes");
    let max_age: u64 = header(&headers, "cache-control")
        .strip_prefix("private, max-age=")
        .unwrap()
        .parse()
        .unwrap();
    assert!((299..=300).contains(&max_age), "{max_age}");
    // Another signed type is answered as that type (R2's response-content-type).
    let as_text = objects.url(KEY, "text/plain", now() + 300);
    let (_, headers, _) = get(&as_text, &[]).await;
    assert_eq!(header(&headers, "content-type"), "text/plain");
}

#[tokio::test]
async fn ranges_are_206_or_416_and_head_has_no_body() {
    let objects = start().await;
    let url = objects.signed();
    let (status, headers, body) = get(&url, &[("range", "bytes=100-199")]).await;
    assert_eq!(status, StatusCode::PARTIAL_CONTENT);
    assert_eq!(header(&headers, "content-range"), "bytes 100-199/10000");
    assert_eq!(body, objects.body[100..200]);
    let (status, _, body) = get(&url, &[("range", "bytes=-10")]).await;
    assert_eq!(status, StatusCode::PARTIAL_CONTENT);
    assert_eq!(body, objects.body[9990..]);
    let (status, headers, _) = get(&url, &[("range", "bytes=20000-")]).await;
    assert_eq!(status, StatusCode::RANGE_NOT_SATISFIABLE);
    assert_eq!(header(&headers, "content-range"), "bytes */10000");

    let (status, headers, body) = send(reqwest::Method::HEAD, &url, &[]).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(header(&headers, "content-length"), "10000");
    assert_eq!(header(&headers, "content-type"), "video/mp4");
    assert!(headers.contains_key("etag"));
    assert!(body.is_empty());
}

#[tokio::test]
async fn an_etag_that_matches_is_304() {
    let objects = start().await;
    let url = objects.signed();
    let (_, headers, _) = get(&url, &[]).await;
    let etag = header(&headers, "etag").to_owned();
    assert!(
        etag.starts_with('"') && etag.ends_with('"'),
        "strong: {etag}"
    );
    // Stable: a second answer has the same tag.
    let (_, again, _) = get(&objects.signed(), &[]).await;
    assert_eq!(header(&again, "etag"), etag);
    for condition in [etag.as_str(), &format!("\"other\", {etag}"), "*"] {
        let (status, headers, body) = get(&url, &[("if-none-match", condition)]).await;
        assert_eq!(status, StatusCode::NOT_MODIFIED, "{condition}");
        assert_eq!(header(&headers, "etag"), etag);
        assert!(body.is_empty());
    }
    let (status, _, body) = get(&url, &[("if-none-match", "\"other\"")]).await;
    assert_eq!(status, StatusCode::OK);
    assert!(body == objects.body);
}

#[tokio::test]
async fn unsigned_expired_and_tampered_urls_are_403() {
    let objects = start().await;
    let url = objects.signed();
    let (path, query) = url.split_once('?').unwrap();
    let forbidden = |answer| {
        let (code, message) = refusal(&answer, 403);
        assert_eq!(code, "FORBIDDEN");
        message
    };
    let message = forbidden(get(path, &[]).await);
    assert!(message.contains("not signed"), "{message}");
    let expired = objects.url(KEY, "video/mp4", now() - 1);
    assert_eq!(forbidden(get(&expired, &[]).await), "this URL expired");
    // Another object under the same signature, a changed expiry or type, another secret.
    let other_key = format!("{}?{query}", path.replacen("clip", "clap", 1));
    let later = url.replacen("exp=", "exp=9", 1);
    let as_html = url.replacen("video%2Fmp4", "text%2Fhtml", 1);
    let stranger = ObjectUrls::new(
        &objects.base,
        UrlSecret::new(Secret::new("another secret, also 32 characters")).unwrap(),
    )
    .unwrap()
    .url(KEY, "video/mp4", now() + 300);
    for tampered in [other_key, later, as_html, stranger] {
        let message = forbidden(get(&tampered, &[]).await);
        assert!(message.contains("signature"), "{tampered}: {message}");
    }
    // The original still works: nothing above was a side effect.
    assert_eq!(get(&url, &[]).await.0, StatusCode::OK);
}

#[tokio::test]
async fn a_missing_object_is_404_and_a_key_that_leaves_the_directory_is_refused() {
    let objects = start().await;
    let missing = objects.url("vault_x/p/c/ch/asset_gone", "text/plain", now() + 60);
    assert_eq!(refusal(&get(&missing, &[]).await, 404).0, "NOT_FOUND");
    // A directory is no object.
    let directory = objects.url("vault_x/media", "text/plain", now() + 60);
    assert_eq!(refusal(&get(&directory, &[]).await, 404).0, "NOT_FOUND");

    // A file beside the objects directory, and a key signed with the right secret that climbs to
    // it: clients would normalise `..` away, so the request is written by hand.
    std::fs::write(objects.dir.path().join("secret.txt"), b"outside").unwrap();
    let climbing = "vault_x/../../secret.txt";
    let query = objects
        .secret
        .sign_query(climbing, "text/plain", now() + 60);
    for path in [
        "/vault_x/../../secret.txt".to_owned(),
        "/vault_x/%2e%2e/%2E%2E/secret.txt".to_owned(),
        "/vault_x%2F..%2F..%2Fsecret.txt".to_owned(),
    ] {
        let answer = raw_get(&objects.base, &format!("{path}?{query}")).await;
        assert!(answer.starts_with("HTTP/1.1 400"), "{path}: {answer}");
        assert!(answer.contains("INVALID_PARAMS"), "{path}: {answer}");
        assert!(!answer.contains("outside"), "{path}: {answer}");
    }
}

/// A GET of `target` exactly as written, and the whole answer as text.
async fn raw_get(base: &str, target: &str) -> String {
    let addr = base.strip_prefix("http://").unwrap();
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    stream
        .write_all(
            format!("GET {target} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n")
                .as_bytes(),
        )
        .await
        .unwrap();
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).await.unwrap();
    String::from_utf8_lossy(&answer).into_owned()
}

/// `content` on the embedded default: a redirect to the object server once it is configured,
/// whatever the size, and past the limit of a Lambda response, as on R2.
#[tokio::test]
async fn content_on_the_embedded_default_redirects_to_the_object_server_when_configured() {
    let mut app = TestApp::new().await;
    // As under a Lambda runtime: without the object server, 101 bytes would be a 413.
    app.deps.max_request_bytes = Some(100);
    app.serve_objects().await;
    let bytes: Vec<u8> = (0..101u8).collect();
    let record = app
        .direct_upload(
            &upload_request("a", "b", "c", "large file.bin", 101),
            bytes.clone(),
        )
        .await;
    let id = record["id"].as_str().unwrap();
    let reply = app.content(app.pk(), id).await;
    assert_eq!(
        reply.status.as_u16(),
        302,
        "{}",
        String::from_utf8_lossy(&reply.body)
    );
    assert_eq!(reply.header("cache-control"), Some("private, no-store"));
    assert!(reply.body.is_empty());
    let location = reply.header("location").unwrap();
    assert!(location.contains("_large%20file.bin?exp="), "{location}");
    let fetched = fetch(location).await;
    assert_eq!(fetched.status.as_u16(), 200);
    assert_eq!(fetched.header("content-type"), record["mime_type"].as_str());
    assert!(fetched.body == bytes, "byte-identical");
    // The URL lives as long as a presigned R2 GET: five minutes.
    let max_age: u64 = fetched
        .header("cache-control")
        .and_then(|c| c.strip_prefix("private, max-age="))
        .unwrap()
        .parse()
        .unwrap();
    assert!((295..=300).contains(&max_age), "{max_age}");
}

/// The binary under test: Cargo's, unless `IMGBT_TEST_BIN` names a copy (as in client.rs).
fn imgbt_bin() -> std::path::PathBuf {
    std::env::var_os("IMGBT_TEST_BIN")
        .map(Into::into)
        .unwrap_or_else(|| env!("CARGO_BIN_EXE_imgbt").into())
}

/// `imgbt dev objects` itself: it needs the secret, and then serves the data directory's objects.
#[tokio::test]
async fn the_command_needs_a_long_secret_and_serves_the_data_directory() {
    let dir = tempfile::tempdir().unwrap();
    let command = |secret: Option<&str>| {
        let mut command = tokio::process::Command::new(imgbt_bin());
        command
            .args(["dev", "objects", "--port", "0"])
            .env("IMGBT_DATA_DIR", dir.path())
            .env_remove("IMGBT_LOCAL_OBJECTS_URL")
            .kill_on_drop(true);
        match secret {
            Some(secret) => command.env("IMGBT_LOCAL_OBJECTS_SECRET", secret),
            None => command.env_remove("IMGBT_LOCAL_OBJECTS_SECRET"),
        };
        command
    };
    for (secret, says) in [
        (None, "set IMGBT_LOCAL_OBJECTS_SECRET"),
        (Some("too short"), "at least 32 characters"),
    ] {
        let out = command(secret).output().await.unwrap();
        assert_eq!(out.status.code(), Some(1));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(says), "{stderr}");
    }

    let secret = "0123456789abcdef0123456789abcdef";
    let blobs = LocalBlobs::new(dir.path().join("objects")).unwrap();
    blobs
        .put(
            "v/p/c/ch/asset_x_a.txt",
            Bytes::from_static(b"served"),
            "text/plain",
        )
        .await
        .unwrap();
    let mut child = command(Some(secret))
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = tokio::io::BufReader::new(child.stderr.take().unwrap()).lines();
    let line = lines
        .next_line()
        .await
        .unwrap()
        .expect("a line once it listens");
    assert!(
        !line.contains(secret),
        "the secret is never printed: {line}"
    );
    let base = line
        .split_whitespace()
        .find(|w| w.starts_with("http://127.0.0.1:"))
        .unwrap_or_else(|| panic!("{line}"));
    let urls = ObjectUrls::new(base, UrlSecret::new(Secret::new(secret)).unwrap()).unwrap();
    let (status, _, body) = get(
        &urls.url("v/p/c/ch/asset_x_a.txt", "text/plain", now() + 60),
        &[],
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, b"served");
    child.kill().await.unwrap();
}

/// A signed content type that is no media type is a 400, not a panic of the connection's task.
#[tokio::test]
async fn a_signed_type_that_is_no_media_type_is_400() {
    let objects = start().await;
    for bad in ["not a type", "text", "text/plain; charset"] {
        let url = objects.url(KEY, bad, now() + 60);
        let answer = get(&url, &[]).await;
        assert_eq!(answer.0.as_u16(), 400, "{bad}");
        let (code, message) = refusal(&answer, 400);
        assert_eq!(code, "INVALID_PARAMS", "{bad}");
        assert!(message.contains("media type"), "{message}");
    }
    // The server still answers.
    assert_eq!(get(&objects.signed(), &[]).await.0, StatusCode::OK);
}
