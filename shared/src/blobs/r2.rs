//! Cloudflare R2 over its S3 API: five operations and two presigned URLs, signed here with AWS
//! Signature Version 4 ([`sigv4`]) and sent with reqwest (rustls on ring, compiled-in roots: the
//! client the D1 store uses too). Region `auto`, path-style URLs (`{endpoint}/{bucket}/{key}`).
//! Bodies are sent sized, in one piece, with no checksum headers and no aws-chunked framing (R2
//! refuses some of them); their hash is not signed (`UNSIGNED-PAYLOAD`: TLS protects them).
//!
//! Each call makes at most 3 attempts: another after a 5xx, a 429, S3's `SlowDown` or a transport
//! failure, with exponential backoff and full jitter (every call imgbt makes is idempotent: PUT
//! keys carry fresh ids). Connecting may take 3 s, an attempt 8 s and the whole call 20 s; a PUT
//! gets a second more of each per 10^6 bytes.

use super::{BlobError, Blobs, Presigned, Validity};
use crate::BoxFuture;
use crate::deps::Secret;
use bytes::Bytes;
use reqwest::{Method, StatusCode};
use std::time::{Duration, SystemTime};

pub mod sigv4;
pub mod xml;

use sigv4::{Parts, Signer, UNSIGNED_PAYLOAD};

const CONNECT: Duration = Duration::from_secs(3);
const ATTEMPT: Duration = Duration::from_secs(8);
const OPERATION: Duration = Duration::from_secs(20);
const ATTEMPTS: u32 = 3;
const BACKOFF_BASE: Duration = Duration::from_millis(100);
const BACKOFF_CAP: Duration = Duration::from_secs(3);
/// The longest error code or message kept from an answer.
const QUOTE: usize = 200;

pub struct R2Blobs {
    /// The client, or why it could not be built (then every call fails with that).
    http: Result<reqwest::Client, String>,
    /// `scheme://host[:port]` and any path of the endpoint, without a trailing `/`.
    base: String,
    /// The endpoint's path, encoded as given (usually empty).
    base_path: String,
    /// The `Host` header reqwest sends: host, and the port when it is not the scheme's default.
    host: String,
    bucket: String,
    signer: Signer,
    /// `max-keys` of each ListObjectsV2 page; `None`: the store's default (1,000).
    page_size: Option<u32>,
}

impl std::fmt::Debug for R2Blobs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("R2Blobs")
            .field("base", &self.base)
            .field("bucket", &self.bucket)
            .field("signer", &self.signer)
            .finish()
    }
}

impl R2Blobs {
    /// `endpoint` is `https://<account>.r2.cloudflarestorage.com` (or a local stand-in). Builds
    /// the client only; nothing is sent until a call needs it.
    pub fn new(
        endpoint: &str,
        bucket: &str,
        access_key_id: &str,
        secret_access_key: &Secret,
    ) -> Self {
        let parsed = reqwest::Url::parse(endpoint.trim_end_matches('/'))
            .map_err(|e| format!("the R2 endpoint is not a URL: {e}"))
            .and_then(|url| match url.host_str() {
                Some(host) if url.query().is_none() => Ok((url.clone(), host.to_owned())),
                _ => Err("the R2 endpoint has no host, or has a query".to_owned()),
            });
        let (base, base_path, host, http) = match parsed {
            Ok((url, host)) => {
                let host = match url.port() {
                    Some(port) => format!("{host}:{port}"),
                    None => host,
                };
                let base_path = url.path().trim_end_matches('/').to_owned();
                let base = format!("{}://{}{}", url.scheme(), host, base_path);
                let http = reqwest::Client::builder()
                    .connect_timeout(CONNECT)
                    .pool_idle_timeout(Duration::from_secs(60))
                    .build()
                    .map_err(|e| format!("building the R2 client: {e}"));
                (base, base_path, host, http)
            }
            Err(e) => (String::new(), String::new(), String::new(), Err(e)),
        };
        R2Blobs {
            http,
            base,
            base_path,
            host,
            bucket: bucket.to_owned(),
            signer: Signer::new(access_key_id, secret_access_key, "auto", "s3"),
            page_size: None,
        }
    }

    /// Lists in pages of `n` keys (`max-keys`) instead of the store's default.
    pub fn with_page_size(mut self, n: u32) -> Self {
        self.page_size = Some(n.max(1));
        self
    }

    /// The encoded path of `key`: `{endpoint path}/{bucket}/{key}`. A key with a `.` or `..`
    /// segment is refused: URL parsing would resolve it, and another object would be signed.
    fn object_path(&self, key: &str) -> Result<String, BlobError> {
        if key.is_empty()
            || key
                .split('/')
                .any(|segment| segment == "." || segment == "..")
        {
            return Err(BlobError::BadKey(format!(
                "{key:?}: empty, or a segment is . or .."
            )));
        }
        Ok(format!(
            "{}/{}/{}",
            self.base_path,
            sigv4::encode(&self.bucket, false),
            sigv4::encode_path(key)
        ))
    }

    fn bucket_path(&self) -> String {
        format!("{}/{}", self.base_path, sigv4::encode(&self.bucket, false))
    }

    /// Sends one call, retried as the module says, and reads its answer's body (up to `max_body`
    /// bytes). Answers other than the retried ones come back whatever their status.
    async fn call(&self, request: Call<'_>) -> Result<Answer, Failure> {
        let http = self
            .http
            .as_ref()
            .map_err(|e| Failure::Transport(e.clone()))?;
        let extra = request.extra_time();
        let operation = OPERATION + extra;
        let attempt_time = ATTEMPT + extra;
        let work = async {
            let mut last = None;
            for attempt in 0..ATTEMPTS {
                if attempt > 0 {
                    tokio::time::sleep(backoff(attempt)).await;
                }
                match self.attempt(http, &request, attempt_time).await {
                    Ok(answer) if !answer.retried() => return Ok(answer),
                    Ok(answer) => last = Some(Failure::Answer(answer)),
                    Err(e) => last = Some(Failure::Transport(e)),
                }
            }
            Err(last.unwrap_or_else(|| Failure::Transport("no attempt made".into())))
        };
        match tokio::time::timeout(operation, work).await {
            Ok(result) => result,
            Err(_) => Err(Failure::Transport(format!(
                "no answer within {} s",
                operation.as_secs()
            ))),
        }
    }

    async fn attempt(
        &self,
        http: &reqwest::Client,
        request: &Call<'_>,
        timeout: Duration,
    ) -> Result<Answer, String> {
        let query: Vec<(&str, &str)> = request
            .query
            .iter()
            .map(|(n, v)| (*n, v.as_str()))
            .collect();
        let mut signed: Vec<(&str, &str)> = vec![("host", &self.host)];
        signed.extend(request.headers.iter().map(|(n, v)| (*n, v.as_str())));
        let auth = self.signer.authorization(
            &Parts {
                method: request.method.as_str(),
                path: &request.path,
                query: &query,
                headers: &signed,
            },
            UNSIGNED_PAYLOAD,
            SystemTime::now(),
        );
        let query = sigv4::canonical_query(&query);
        let url = if query.is_empty() {
            format!("{}{}", self.base_origin(), request.path)
        } else {
            format!("{}{}?{query}", self.base_origin(), request.path)
        };
        let mut builder = http.request(request.method.clone(), url).timeout(timeout);
        for (name, value) in request.headers.iter().map(|(n, v)| (*n, v.as_str())) {
            builder = builder.header(name, value);
        }
        for (name, value) in &auth {
            builder = builder.header(*name, value.as_str());
        }
        if let Some(body) = &request.body {
            builder = builder
                .header(reqwest::header::CONTENT_LENGTH, body.len())
                .body(body.clone());
        }
        let mut response = builder.send().await.map_err(transport)?;
        let status = response.status();
        let mut body = Vec::new();
        let cap = if status.is_success() {
            request.max_body
        } else {
            ERROR_BODY_CAP
        };
        while (body.len() as u64) < cap {
            match response.chunk().await.map_err(transport)? {
                Some(chunk) => body.extend_from_slice(&chunk),
                None => break,
            }
        }
        body.truncate(usize::try_from(cap).unwrap_or(usize::MAX).min(body.len()));
        let error = (!status.is_success())
            .then(|| xml::error(&String::from_utf8_lossy(&body)))
            .flatten();
        Ok(Answer {
            status,
            headers: response.headers().clone(),
            body: Bytes::from(body),
            error,
        })
    }

    /// `scheme://host[:port]`: the base without the endpoint's path (paths carry it).
    fn base_origin(&self) -> &str {
        &self.base[..self.base.len() - self.base_path.len()]
    }

    fn presigned_url(&self, path: &str, query: &str) -> String {
        format!("{}{}?{query}", self.base_origin(), path)
    }
}

/// The most of an error answer's body read: enough for S3's XML error.
const ERROR_BODY_CAP: u64 = 16 * 1024;

struct Call<'a> {
    method: Method,
    path: String,
    query: Vec<(&'a str, String)>,
    /// Headers sent and signed (lowercase names), besides `host` and the signer's own.
    headers: Vec<(&'a str, String)>,
    body: Option<Bytes>,
    /// The most of a successful answer's body read.
    max_body: u64,
}

impl Call<'_> {
    fn new(method: Method, path: String) -> Self {
        Call {
            method,
            path,
            query: Vec::new(),
            headers: Vec::new(),
            body: None,
            max_body: 0,
        }
    }

    /// A second per 10^6 bytes of body, on top of each timeout.
    fn extra_time(&self) -> Duration {
        Duration::from_secs(self.body.as_ref().map_or(0, |b| b.len() as u64 / 1_000_000))
    }
}

struct Answer {
    status: StatusCode,
    headers: reqwest::header::HeaderMap,
    body: Bytes,
    /// S3's error code and message, when the body is an S3 XML error.
    error: Option<(String, Option<String>)>,
}

impl Answer {
    fn code(&self) -> Option<&str> {
        self.error.as_ref().map(|(code, _)| code.as_str())
    }

    fn rate_limited(&self) -> bool {
        matches!(self.status.as_u16(), 429 | 503) || self.code() == Some("SlowDown")
    }

    /// Whether another attempt is made after this answer.
    fn retried(&self) -> bool {
        self.status.is_server_error() || self.rate_limited()
    }
}

/// Why a call failed: an answer it ended with, or no answer.
enum Failure {
    Answer(Answer),
    Transport(String),
}

/// reqwest's account of a failure, without the URL (it names the bucket and key; the caller says
/// which key), and its causes, cut short.
fn transport(err: reqwest::Error) -> String {
    let kind = if err.is_timeout() {
        "timed out"
    } else if err.is_connect() {
        "could not connect"
    } else {
        "transport failure"
    };
    let err = err.without_url();
    let mut text = format!("{kind}: {err}");
    let mut source = std::error::Error::source(&err);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text.chars().take(300).collect()
}

/// Full jitter: a random wait up to `base × 2^attempt`, at most the cap.
fn backoff(attempt: u32) -> Duration {
    let ceiling = BACKOFF_BASE
        .saturating_mul(1u32 << attempt.min(16))
        .min(BACKOFF_CAP);
    let mut random = [0u8; 4];
    let fraction = match getrandom::fill(&mut random) {
        Ok(()) => f64::from(u32::from_le_bytes(random)) / f64::from(u32::MAX),
        Err(_) => 0.5,
    };
    ceiling.mul_f64(fraction)
}

/// The error a failed call becomes: `RateLimited` for 429, 503 and `SlowDown`, else `Io` with
/// the status and S3's code and message (a HEAD answer has no body: the status alone).
fn failed(what: &str, key: &str, failure: Failure) -> BlobError {
    match failure {
        Failure::Transport(cause) => BlobError::Io(format!("{what} {key}: {cause}")),
        Failure::Answer(answer) => {
            let mut cause = format!("HTTP {}", answer.status.as_u16());
            if let Some((code, message)) = &answer.error {
                let code: String = code.chars().take(QUOTE).collect();
                let message: String = message
                    .as_deref()
                    .unwrap_or("no message")
                    .chars()
                    .take(QUOTE)
                    .collect();
                cause = format!("{cause} {code} ({message})");
            }
            let message = format!("{what} {key}: {cause}");
            if answer.rate_limited() {
                BlobError::RateLimited(message)
            } else {
                BlobError::Io(message)
            }
        }
    }
}

/// The answer when it is a success; otherwise the call's error.
fn success(what: &str, key: &str, answer: Answer) -> Result<Answer, BlobError> {
    if answer.status.is_success() {
        Ok(answer)
    } else {
        Err(failed(what, key, Failure::Answer(answer)))
    }
}

impl Blobs for R2Blobs {
    fn put<'a>(
        &'a self,
        key: &'a str,
        body: Bytes,
        content_type: &'a str,
    ) -> BoxFuture<'a, Result<(), BlobError>> {
        Box::pin(async move {
            let mut call = Call::new(Method::PUT, self.object_path(key)?);
            call.headers.push(("content-type", content_type.to_owned()));
            call.body = Some(body);
            let answer = self.call(call).await.map_err(|f| failed("put", key, f))?;
            success("put", key, answer).map(drop)
        })
    }

    fn delete<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<(), BlobError>> {
        Box::pin(async move {
            let call = Call::new(Method::DELETE, self.object_path(key)?);
            let answer = self
                .call(call)
                .await
                .map_err(|f| failed("delete", key, f))?;
            // S3 answers 204 whether or not the key existed; a store that says 404 agrees.
            if answer.status == StatusCode::NOT_FOUND {
                return Ok(());
            }
            success("delete", key, answer).map(drop)
        })
    }

    fn list<'a>(&'a self, prefix: &'a str) -> BoxFuture<'a, Result<Vec<(String, u64)>, BlobError>> {
        Box::pin(async move {
            let page_size = self.page_size.map(|n| n.to_string());
            let mut out = Vec::new();
            let mut token: Option<String> = None;
            loop {
                let mut call = Call::new(Method::GET, self.bucket_path());
                call.max_body = 64 * 1024 * 1024;
                call.query.push(("list-type", "2".to_owned()));
                call.query.push(("prefix", prefix.to_owned()));
                if let Some(n) = &page_size {
                    call.query.push(("max-keys", n.clone()));
                }
                if let Some(token) = &token {
                    call.query.push(("continuation-token", token.clone()));
                }
                let answer = self
                    .call(call)
                    .await
                    .map_err(|f| failed("list", prefix, f))?;
                let answer = success("list", prefix, answer)?;
                let text = std::str::from_utf8(&answer.body)
                    .map_err(|_| BlobError::Io(format!("list {prefix}: an answer not in UTF-8")))?;
                let page = xml::list_page(text)
                    .map_err(|e| BlobError::Io(format!("list {prefix}: {e}")))?;
                out.extend(page.objects);
                if !page.is_truncated {
                    break;
                }
                match page.next_continuation_token {
                    Some(next) if token.as_ref() != Some(&next) => token = Some(next),
                    _ => {
                        return Err(BlobError::Io(format!(
                            "list {prefix}: a truncated page without a new continuation token"
                        )));
                    }
                }
            }
            out.sort();
            Ok(out)
        })
    }

    fn size<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<Option<u64>, BlobError>> {
        Box::pin(async move {
            let call = Call::new(Method::HEAD, self.object_path(key)?);
            let answer = self.call(call).await.map_err(|f| failed("head", key, f))?;
            if answer.status == StatusCode::NOT_FOUND {
                return Ok(None);
            }
            let answer = success("head", key, answer)?;
            let length = answer
                .headers
                .get(reqwest::header::CONTENT_LENGTH)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse::<u64>().ok())
                .ok_or_else(|| BlobError::Io(format!("head {key}: no content-length")))?;
            Ok(Some(length))
        })
    }

    fn read_head<'a>(
        &'a self,
        key: &'a str,
        max: u64,
    ) -> BoxFuture<'a, Result<Option<Bytes>, BlobError>> {
        Box::pin(async move {
            if max == 0 {
                return Ok(self.size(key).await?.map(|_| Bytes::new()));
            }
            let mut call = Call::new(Method::GET, self.object_path(key)?);
            call.headers.push(("range", format!("bytes=0-{}", max - 1)));
            // A store that ignores the range sends the whole object: only `max` bytes are read.
            call.max_body = max;
            let answer = self.call(call).await.map_err(|f| failed("get", key, f))?;
            match answer.status.as_u16() {
                404 => Ok(None),
                // An empty object has no byte 0: S3 answers 416 InvalidRange.
                416 => Ok(Some(Bytes::new())),
                _ => {
                    let answer = success("get", key, answer)?;
                    Ok(Some(answer.body))
                }
            }
        })
    }

    fn presign_put<'a>(
        &'a self,
        key: &'a str,
        content_type: &'a str,
        validity: Validity,
    ) -> BoxFuture<'a, Result<Option<Presigned>, BlobError>> {
        Box::pin(async move {
            // `if-none-match: *` is signed, so the URL can create the object but never replace
            // it: once the bytes are there (and once they are an asset's), another PUT is 412.
            let headers = [("content-type", content_type), ("if-none-match", "*")];
            let url = self.presign("presign put", "PUT", key, &headers, &[], validity)?;
            Ok(Some(Presigned {
                url,
                headers: headers
                    .iter()
                    .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
                    .collect(),
            }))
        })
    }

    fn presign_get<'a>(
        &'a self,
        key: &'a str,
        content_type: &'a str,
        validity: Validity,
    ) -> BoxFuture<'a, Result<Option<Presigned>, BlobError>> {
        Box::pin(async move {
            let query = [("response-content-type", content_type)];
            let url = self.presign("presign get", "GET", key, &[], &query, validity)?;
            Ok(Some(Presigned {
                url,
                headers: Vec::new(),
            }))
        })
    }
}

impl R2Blobs {
    /// A URL for `method` on `key`, signing `headers` (which its holder must send) and `query`.
    fn presign(
        &self,
        what: &str,
        method: &str,
        key: &str,
        headers: &[(&str, &str)],
        query: &[(&str, &str)],
        validity: Validity,
    ) -> Result<String, BlobError> {
        if let Err(e) = &self.http {
            return Err(BlobError::Io(format!("{what} {key}: {e}")));
        }
        if validity.expires_in > sigv4::MAX_PRESIGNED_VALIDITY
            || validity.expires_in < Duration::from_secs(1)
        {
            return Err(BlobError::Io(format!(
                "{what} {key}: a presigned URL is valid for 1 s to 7 days, not {} s",
                validity.expires_in.as_secs()
            )));
        }
        let path = self.object_path(key)?;
        let mut signed: Vec<(&str, &str)> = vec![("host", &self.host)];
        signed.extend_from_slice(headers);
        let query = self.signer.presign(
            &Parts {
                method,
                path: &path,
                query,
                headers: &signed,
            },
            validity.signed_at,
            validity.expires_in,
        );
        Ok(self.presigned_url(&path, &query))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn blobs(endpoint: &str) -> R2Blobs {
        R2Blobs::new(endpoint, "bkt", "AKID", &Secret::new("s3cr3t-value"))
    }

    #[test]
    fn the_signed_host_is_what_reqwest_sends() {
        assert_eq!(
            blobs("https://acc.r2.cloudflarestorage.com").host,
            "acc.r2.cloudflarestorage.com"
        );
        assert_eq!(
            blobs("https://acc.r2.cloudflarestorage.com:443/").host,
            "acc.r2.cloudflarestorage.com"
        );
        assert_eq!(blobs("http://127.0.0.1:9000").host, "127.0.0.1:9000");
        assert_eq!(blobs("http://localhost:80").host, "localhost");
        assert_eq!(blobs("http://[::1]:9000").host, "[::1]:9000");
    }

    #[test]
    fn paths_are_path_style_and_encoded() {
        let b = blobs("http://127.0.0.1:9000");
        assert_eq!(
            b.object_path("v/p c/x+y&z%~.png").unwrap(),
            "/bkt/v/p%20c/x%2By%26z%25~.png"
        );
        assert_eq!(b.bucket_path(), "/bkt");
        assert!(matches!(b.object_path("v/../x"), Err(BlobError::BadKey(_))));
        assert!(matches!(b.object_path("./x"), Err(BlobError::BadKey(_))));
        assert!(matches!(b.object_path(""), Err(BlobError::BadKey(_))));
        assert!(b.object_path("v/..x/.y").is_ok());
        let with_path = blobs("http://127.0.0.1:9000/s3/");
        assert_eq!(with_path.object_path("k").unwrap(), "/s3/bkt/k");
        assert_eq!(with_path.base_origin(), "http://127.0.0.1:9000");
    }

    #[tokio::test]
    async fn a_bad_endpoint_fails_each_call_without_panicking() {
        let b = blobs("not a url");
        let validity = Validity {
            signed_at: SystemTime::now(),
            expires_in: Duration::from_secs(60),
        };
        let err = b.size("k").await.unwrap_err();
        assert!(err.to_string().contains("not a URL"), "{err}");
        assert!(b.presign_get("k", "image/png", validity).await.is_err());
    }

    #[tokio::test]
    async fn presigned_urls_sign_what_the_holder_must_send() {
        let b = blobs("https://acc.r2.cloudflarestorage.com");
        let validity = Validity {
            signed_at: SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000),
            expires_in: Duration::from_secs(900),
        };
        let put = b
            .presign_put("v/a b.png", "image/png", validity)
            .await
            .unwrap()
            .unwrap();
        assert!(
            put.url
                .starts_with("https://acc.r2.cloudflarestorage.com/bkt/v/a%20b.png?"),
            "{}",
            put.url
        );
        assert!(
            put.url
                .contains("X-Amz-SignedHeaders=content-type%3Bhost%3Bif-none-match")
        );
        assert!(put.url.contains("X-Amz-Expires=900&"));
        assert!(put.url.contains("X-Amz-Date=20231114T221320Z"));
        assert!(
            put.url
                .contains("X-Amz-Credential=AKID%2F20231114%2Fauto%2Fs3%2Faws4_request")
        );
        assert!(!put.url.contains("s3cr3t"));
        assert_eq!(
            put.headers,
            vec![
                ("content-type".to_owned(), "image/png".to_owned()),
                ("if-none-match".to_owned(), "*".to_owned())
            ]
        );
        let get = b
            .presign_get("v/a b.png", "text/plain; charset=utf-8", validity)
            .await
            .unwrap()
            .unwrap();
        assert!(
            get.url
                .contains("response-content-type=text%2Fplain%3B%20charset%3Dutf-8")
        );
        assert!(get.url.contains("X-Amz-SignedHeaders=host&"));
        assert!(get.headers.is_empty());
        let too_long = Validity {
            expires_in: Duration::from_secs(8 * 24 * 3600),
            ..validity
        };
        assert!(b.presign_get("k", "image/png", too_long).await.is_err());
    }

    #[test]
    fn backoff_is_jittered_under_a_growing_ceiling() {
        for attempt in 1..ATTEMPTS {
            let ceiling = BACKOFF_BASE * (1 << attempt);
            let waits: Vec<Duration> = (0..50).map(|_| backoff(attempt)).collect();
            assert!(waits.iter().all(|w| *w <= ceiling), "{waits:?}");
            assert!(waits.iter().any(|w| *w != waits[0]), "jittered: {waits:?}");
        }
        assert!(backoff(30) <= BACKOFF_CAP);
    }
}
