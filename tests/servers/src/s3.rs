//! A local S3 endpoint standing in for Cloudflare R2: `s3s` speaks the protocol and verifies SigV4
//! signatures (`SimpleAuth`, one random key pair) in the `Authorization` header and in presigned
//! URLs' query (`X-Amz-Signature`, with the signed headers, and `X-Amz-Date` + `X-Amz-Expires`:
//! an expired URL is 403 AccessDenied "Request has expired"), `s3s-fs` keeps objects as files under a
//! temporary directory, one bucket is created at start, and requests are path-style
//! (`/{bucket}/{key}`), as R2 is used. Keys up to R2's 1,024 bytes work: `s3s-fs` is handed a
//! short storage key per object (`s3_store.rs`), and the helpers here take original keys.
//!
//! In front of `s3s` a recording layer keeps every request as it arrived (method, path, query,
//! headers, body bytes) and can answer instead of `s3s` with an S3 XML error, per method.

use crate::s3_store::{HashedKeys, KeyMap, storage_key};
use crate::{Running, random_hex, serve};
use base64::Engine;
use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::service::service_fn;
use s3s::auth::SimpleAuth;
use s3s::service::{S3Service, S3ServiceBuilder};
use s3s::{Body, HttpError};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

/// One request as it reached the server, before `s3s` saw it.
#[derive(Debug, Clone)]
pub struct RecordedRequest {
    pub method: Method,
    /// The path as sent, percent-encoding included: `/{bucket}/{key}`.
    pub path: String,
    /// The query string without `?`; empty when there was none.
    pub query: String,
    pub headers: HeaderMap,
    /// The body bytes exactly as received (after HTTP framing, before any S3 decoding).
    pub body: Bytes,
}

impl RecordedRequest {
    /// A header's value as text, if present and visible ASCII.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

/// A running S3 stand-in; stops and removes its files when dropped.
pub struct S3Server {
    addr: SocketAddr,
    bucket: String,
    access_key_id: String,
    secret_access_key: String,
    root: tempfile::TempDir,
    keys: Arc<KeyMap>,
    state: Arc<State>,
    _running: Running,
}

struct State {
    s3: S3Service,
    requests: Mutex<Vec<RecordedRequest>>,
    faults: Mutex<Vec<FaultRule>>,
    latency: Mutex<Duration>,
}

struct FaultRule {
    method: Method,
    status: StatusCode,
    remaining: usize,
}

impl S3Server {
    /// Starts a server on `127.0.0.1:0` with an empty bucket and a random key pair.
    pub async fn start() -> S3Server {
        let root = tempfile::tempdir().expect("a temporary directory for objects");
        let bucket = "imgbt-test".to_owned();
        std::fs::create_dir(root.path().join(&bucket)).expect("creating the bucket directory");
        let access_key_id = format!("AKIA{}", random_hex(8).to_ascii_uppercase());
        let secret_access_key = random_hex(20);
        let fs = s3s_fs::FileSystem::new(root.path()).expect("the s3s-fs store");
        let keys = Arc::new(KeyMap::default());
        let mut builder = S3ServiceBuilder::new(HashedKeys::new(fs, keys.clone()));
        builder.set_auth(SimpleAuth::from_single(
            access_key_id.clone(),
            secret_access_key.as_str(),
        ));
        let state = Arc::new(State {
            s3: builder.build(),
            requests: Mutex::new(Vec::new()),
            faults: Mutex::new(Vec::new()),
            latency: Mutex::new(Duration::ZERO),
        });
        let shared = state.clone();
        let service = service_fn(move |req| {
            let state = shared.clone();
            async move { state.handle(req).await }
        });
        let (addr, running) = serve(service).await;
        S3Server {
            addr,
            bucket,
            access_key_id,
            secret_access_key,
            root,
            keys,
            state,
            _running: running,
        }
    }

    /// `http://127.0.0.1:PORT`, the counterpart of `https://<account>.r2.cloudflarestorage.com`.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn bucket(&self) -> &str {
        &self.bucket
    }

    pub fn access_key_id(&self) -> &str {
        &self.access_key_id
    }

    pub fn secret_access_key(&self) -> &str {
        &self.secret_access_key
    }

    /// Where the bytes of `key` live on disk (whether or not the object exists):
    /// `<bucket dir>/k/<sha256 hex of key>`.
    pub fn object_path(&self, key: &str) -> PathBuf {
        self.bucket_dir().join(storage_key(key))
    }

    pub fn object_exists(&self, key: &str) -> bool {
        self.object_path(key).is_file()
    }

    /// The stored bytes of `key`, read from disk.
    pub fn object_bytes(&self, key: &str) -> Option<Vec<u8>> {
        std::fs::read(self.object_path(key)).ok()
    }

    /// The stored length of `key` in bytes, if it exists.
    pub fn object_len(&self, key: &str) -> Option<u64> {
        let metadata = std::fs::metadata(self.object_path(key)).ok()?;
        metadata.is_file().then_some(metadata.len())
    }

    /// The content type stored with `key` (s3s-fs keeps it in a JSON file beside the objects).
    pub fn object_content_type(&self, key: &str) -> Option<String> {
        let encode = |s: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s);
        let name = format!(
            ".bucket-{}.object-{}.metadata.json",
            encode(&self.bucket),
            encode(&storage_key(key))
        );
        let text = std::fs::read(self.root.path().join(name)).ok()?;
        let attributes: serde_json::Value = serde_json::from_slice(&text).ok()?;
        attributes.get("content_type")?.as_str().map(str::to_owned)
    }

    /// Every key stored in the bucket (as written, not as stored on disk), sorted.
    pub fn objects(&self) -> Vec<String> {
        let mut stored = Vec::new();
        collect_keys(&self.bucket_dir(), "", &mut stored);
        let mut keys: Vec<String> = stored
            .into_iter()
            .map(|s| self.keys.original(&s).unwrap_or(s))
            .collect();
        keys.sort();
        keys
    }

    /// Every request received since start or the last [`reset_requests`](Self::reset_requests),
    /// in order, injected failures and refused signatures included.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        lock(&self.state.requests).clone()
    }

    pub fn reset_requests(&self) {
        lock(&self.state.requests).clear();
    }

    /// Answers the next `n` requests whose method is `method` (`"PUT"`, `"DELETE"`, `"HEAD"`,
    /// `"GET"`, …) with `status` and an S3 XML error (`InternalError` for 500, `SlowDown` for
    /// 503, `AccessDenied` for 403, `NoSuchKey` for 404, `InvalidRequest` otherwise) without
    /// passing them to s3s.
    ///
    /// # Panics
    /// When `method` is not an HTTP method or `status` not an HTTP status.
    pub fn fail_next(&self, n: usize, method: &str, status: u16) {
        let method =
            Method::from_bytes(method.to_ascii_uppercase().as_bytes()).expect("an HTTP method");
        let status = StatusCode::from_u16(status).expect("an HTTP status");
        lock(&self.state.faults).push(FaultRule {
            method,
            status,
            remaining: n,
        });
    }

    /// Waits `latency` before every answer from now on.
    pub fn set_latency(&self, latency: Duration) {
        *lock(&self.state.latency) = latency;
    }

    fn bucket_dir(&self) -> PathBuf {
        self.root.path().join(&self.bucket)
    }
}

fn collect_keys(dir: &Path, prefix: &str, keys: &mut Vec<String>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let key = format!("{prefix}{name}");
        match entry.file_type() {
            Ok(kind) if kind.is_dir() => collect_keys(&entry.path(), &format!("{key}/"), keys),
            Ok(kind) if kind.is_file() => keys.push(key),
            _ => {}
        }
    }
}

pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl State {
    async fn handle(
        self: Arc<Self>,
        req: http::Request<Incoming>,
    ) -> Result<http::Response<Body>, HttpError> {
        let (parts, body) = req.into_parts();
        let body = match body.collect().await {
            Ok(collected) => collected.to_bytes(),
            Err(e) => return Err(HttpError::new(Box::new(e))),
        };
        lock(&self.requests).push(RecordedRequest {
            method: parts.method.clone(),
            path: parts.uri.path().to_owned(),
            query: parts.uri.query().unwrap_or_default().to_owned(),
            headers: parts.headers.clone(),
            body: body.clone(),
        });
        let fault = {
            let mut faults = lock(&self.faults);
            let rule = faults
                .iter_mut()
                .find(|r| r.method == parts.method && r.remaining > 0);
            rule.map(|rule| {
                rule.remaining -= 1;
                rule.status
            })
        };
        let latency = *lock(&self.latency);
        if !latency.is_zero() {
            tokio::time::sleep(latency).await;
        }
        if let Some(status) = fault {
            return Ok(error_response(status, &parts.method, parts.uri.path()));
        }
        self.s3
            .call(http::Request::from_parts(parts, Body::from(body)))
            .await
    }
}

/// An S3 error answer, as AWS and R2 write it.
fn error_response(status: StatusCode, method: &Method, resource: &str) -> http::Response<Body> {
    let (code, message) = match status.as_u16() {
        500 => (
            "InternalError",
            "We encountered an internal error. Please try again.",
        ),
        503 => ("SlowDown", "Please reduce your request rate."),
        403 => ("AccessDenied", "Access Denied"),
        404 => ("NoSuchKey", "The specified key does not exist."),
        _ => ("InvalidRequest", "Injected failure."),
    };
    let request_id = random_hex(8).to_ascii_uppercase();
    let resource = resource
        .replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;");
    let xml = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>{code}</Code><Message>{message}</Message>\
         <Resource>{resource}</Resource><RequestId>{request_id}</RequestId></Error>"
    );
    // A HEAD answer has no body; the status alone carries the error.
    let body = if method == Method::HEAD {
        Body::empty()
    } else {
        Body::from(xml)
    };
    let mut response = http::Response::new(body);
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/xml"),
    );
    response.headers_mut().insert(
        "x-amz-request-id",
        HeaderValue::from_str(&request_id).expect("hex is a valid header value"),
    );
    response
}
