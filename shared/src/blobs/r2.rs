//! Cloudflare R2 over its S3 API, through `aws-sdk-s3`, configured for R2: region `auto`,
//! path-style addressing, and checksums only where an operation requires them (R2 refuses some of
//! the CRC32 headers and aws-chunked bodies the SDK sends by default). Bodies are sent sized, in
//! one piece. The SDK's HTTP client is reqwest ([`https`]): the HTTP and TLS stack (rustls on
//! ring, compiled-in webpki trust anchors) the D1 client already uses, not a second one.
//!
//! The SDK's client is built on the first call that needs it, not when the process starts
//! ([`R2Blobs::new`] only checks the settings): building it (the SDK's configuration and the
//! reqwest client) is work that a request that never reaches R2 (a refused key, a bad form)
//! should not pay. A handler that will reach R2 after its D1 request calls [`Blobs::prepare`]
//! while that request is in flight (BENCH.md: "R2 client").
//!
//! Each call makes at most [`Backoff::R2`]'s attempts, with its base and cap (the project's one
//! backoff policy, applied by the SDK's standard retry with its own full jitter: 5xx, 429,
//! `SlowDown`, timeouts and transport failures). Connecting may take 3 s, an attempt 8 s and the
//! whole call 20 s; a PUT gets a second more of each per 10^6 bytes.

use super::{BlobError, Blobs, Listed, Presigned, Validity};
use crate::BoxFuture;
use crate::backoff::Backoff;
use crate::secret::Secret;
use aws_sdk_s3::config::interceptors::InterceptorContext;
use aws_sdk_s3::config::retry::{ClassifyRetry, RetryAction, RetryConfig};
use aws_sdk_s3::config::timeout::TimeoutConfig;
use aws_sdk_s3::config::{
    BehaviorVersion, Credentials, Region, RequestChecksumCalculation, ResponseChecksumValidation,
};
use aws_sdk_s3::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_s3::presigning::{PresignedRequest, PresigningConfig};
use aws_sdk_s3::primitives::ByteStream;
use bytes::Bytes;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

pub mod https;

const CONNECT: Duration = Duration::from_secs(3);
const ATTEMPT: Duration = Duration::from_secs(8);
const OPERATION: Duration = Duration::from_secs(20);
/// S3's longest presigned validity (SigV4 query authentication).
const MAX_PRESIGNED_VALIDITY: Duration = Duration::from_secs(7 * 24 * 3600);
/// The longest error code or message kept from an answer.
const QUOTE: usize = 200;

pub struct R2Blobs {
    recipe: Recipe,
    bucket: String,
    /// `max-keys` of each ListObjectsV2 page; `None`: the store's default (1,000).
    page_size: Option<i32>,
    /// Why the settings cannot work, found when they were given (then every call fails with it).
    invalid: Option<String>,
    /// The SDK's client, built once: by [`Blobs::prepare`]'s thread or by the first call; or why
    /// its HTTP client could not be built.
    client: Arc<OnceLock<Result<aws_sdk_s3::Client, String>>>,
    preparing: AtomicBool,
}

/// What the SDK's client is built from.
#[derive(Clone)]
struct Recipe {
    endpoint: String,
    access_key_id: String,
    secret_access_key: Secret,
}

impl std::fmt::Debug for R2Blobs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("R2Blobs")
            .field("endpoint", &self.recipe.endpoint)
            .field("bucket", &self.bucket)
            .field("access_key_id", &self.recipe.access_key_id)
            .field("built", &self.client.get().is_some())
            .finish_non_exhaustive()
    }
}

impl R2Blobs {
    /// `endpoint` is `https://<account>.r2.cloudflarestorage.com` (or a local stand-in). Checks
    /// the endpoint and keeps the settings; the client is built by [`Blobs::prepare`] or by the
    /// first call.
    pub fn new(
        endpoint: &str,
        bucket: &str,
        access_key_id: &str,
        secret_access_key: &Secret,
    ) -> Self {
        let endpoint = endpoint.trim_end_matches('/').to_owned();
        let invalid = match endpoint.parse::<lambda_http::http::Uri>() {
            Ok(uri) if uri.scheme().is_some() && uri.host().is_some() && uri.query().is_none() => {
                None
            }
            Ok(_) => Some("the R2 endpoint has no scheme or host, or has a query".to_owned()),
            Err(e) => Some(format!("the R2 endpoint is not a URL: {e}")),
        };
        R2Blobs {
            recipe: Recipe {
                endpoint,
                access_key_id: access_key_id.to_owned(),
                secret_access_key: secret_access_key.clone(),
            },
            bucket: bucket.to_owned(),
            page_size: None,
            invalid,
            client: Arc::new(OnceLock::new()),
            preparing: AtomicBool::new(false),
        }
    }

    /// Lists in pages of `n` keys (`max-keys`) instead of the store's default.
    pub fn with_page_size(mut self, n: u32) -> Self {
        self.page_size = Some(i32::try_from(n.max(1)).unwrap_or(i32::MAX));
        self
    }

    /// The client, built now if no one has built it (or waiting for [`Blobs::prepare`]'s thread
    /// to finish building it); or why the settings cannot work.
    fn client(&self, what: &str, key: &str) -> Result<&aws_sdk_s3::Client, BlobError> {
        if let Some(invalid) = &self.invalid {
            return Err(BlobError::Io(format!("{what} {key}: {invalid}")));
        }
        self.client
            .get_or_init(|| self.recipe.build())
            .as_ref()
            .map_err(|e| BlobError::Io(format!("{what} {key}: {e}")))
    }

    /// The client for a call on `key`: the key is checked first, so a refused key costs no
    /// client build.
    fn for_key<'k>(
        &self,
        what: &str,
        key: &'k str,
    ) -> Result<(&aws_sdk_s3::Client, &'k str), BlobError> {
        let key = self.checked(key)?;
        Ok((self.client(what, key)?, key))
    }

    /// `key`, unless it is empty or has a `.` or `..` segment: an HTTP stack between here and R2
    /// may resolve such a path, and another object would be named.
    fn checked<'k>(&self, key: &'k str) -> Result<&'k str, BlobError> {
        if key.is_empty()
            || key
                .split('/')
                .any(|segment| segment == "." || segment == "..")
        {
            return Err(BlobError::BadKey(format!(
                "{key:?}: empty, or a segment is . or .."
            )));
        }
        Ok(key)
    }
}

impl Recipe {
    fn build(&self) -> Result<aws_sdk_s3::Client, String> {
        let credentials = Credentials::new(
            &self.access_key_id,
            self.secret_access_key.expose(),
            None,
            None,
            "imgbt",
        );
        let config = aws_sdk_s3::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .endpoint_url(&self.endpoint)
            .region(Region::new("auto"))
            .force_path_style(true)
            .credentials_provider(credentials)
            .request_checksum_calculation(RequestChecksumCalculation::WhenRequired)
            .response_checksum_validation(ResponseChecksumValidation::WhenRequired)
            .http_client(https::client()?)
            .retry_config(
                RetryConfig::standard()
                    .with_max_attempts(Backoff::R2.attempts)
                    .with_initial_backoff(Backoff::R2.base)
                    .with_max_backoff(Backoff::R2.cap),
            )
            .retry_classifier(TooManyRequests)
            .timeout_config(
                // A stalled R2 must not hold a request until the Lambda timeout (25–28 s).
                TimeoutConfig::builder()
                    .connect_timeout(CONNECT)
                    .operation_attempt_timeout(ATTEMPT)
                    .operation_timeout(OPERATION)
                    .build(),
            )
            .build();
        Ok(aws_sdk_s3::Client::from_conf(config))
    }
}

/// Retries a 429 as a throttling error. R2 refuses for rate with 429 as well as with S3's
/// `503 SlowDown`; the SDK's own classifiers know only the second.
#[derive(Debug)]
struct TooManyRequests;

impl ClassifyRetry for TooManyRequests {
    fn classify_retry(&self, ctx: &InterceptorContext) -> RetryAction {
        match ctx.response() {
            Some(answer) if answer.status().as_u16() == 429 => RetryAction::throttling_error(),
            _ => RetryAction::NoActionIndicated,
        }
    }

    fn name(&self) -> &'static str {
        "429 Too Many Requests"
    }
}

/// A PUT's timeouts grow by a second per 10^6 bytes, so that a large body on a slow link is not
/// cut off, while a small one (all a Lambda behind the gateway can carry: ~4.5 MB) still gives up
/// before the Lambda's timeout.
fn put_timeouts(length: u64) -> TimeoutConfig {
    let per_size = Duration::from_secs(length / 1_000_000);
    TimeoutConfig::builder()
        .connect_timeout(CONNECT)
        .operation_attempt_timeout(ATTEMPT + per_size)
        .operation_timeout(OPERATION + per_size)
        .build()
}

fn presigning(what: &str, key: &str, validity: Validity) -> Result<PresigningConfig, BlobError> {
    if validity.expires_in > MAX_PRESIGNED_VALIDITY || validity.expires_in < Duration::from_secs(1)
    {
        return Err(BlobError::Io(format!(
            "{what} {key}: a presigned URL is valid for 1 s to 7 days, not {} s",
            validity.expires_in.as_secs()
        )));
    }
    PresigningConfig::builder()
        .start_time(validity.signed_at)
        .expires_in(validity.expires_in)
        .build()
        .map_err(|e| BlobError::Io(format!("{what} {key}: {e}")))
}

/// The URL and the headers its holder must send, names in lowercase and sorted.
fn presigned(request: PresignedRequest) -> Presigned {
    let mut headers: Vec<(String, String)> = request
        .headers()
        .map(|(name, value)| (name.to_ascii_lowercase(), value.to_owned()))
        .collect();
    headers.sort();
    Presigned {
        url: request.uri().to_owned(),
        headers,
    }
}

/// An object of a listing; `None` for an entry without a key. An object without a
/// `LastModified` is dated in the far future (`u64::MAX`): gc, unable to tell its age, keeps it.
fn listed(object: &aws_sdk_s3::types::Object) -> Option<Listed> {
    Some(Listed {
        key: object.key()?.to_owned(),
        size: u64::try_from(object.size().unwrap_or(0)).unwrap_or(0),
        modified_ms: object
            .last_modified()
            .and_then(|t| t.to_millis().ok())
            .and_then(|ms| u64::try_from(ms).ok())
            .unwrap_or(u64::MAX),
    })
}

/// The HTTP status of a failed call's answer, if one came.
fn status_of<E>(err: &SdkError<E>) -> Option<u16> {
    err.raw_response().map(|r| r.status().as_u16())
}

/// The error a failed call becomes: `RateLimited` for 429, 503 and `SlowDown` (after the
/// retries), else `Io` with the status and S3's code and message, or the SDK's account of what
/// failed. Neither holds credentials; both are cut short, as a raw answer can be long.
fn failed<E>(what: &str, key: &str, err: SdkError<E>) -> BlobError
where
    E: std::error::Error + ProvideErrorMetadata + 'static,
{
    let status = status_of(&err);
    let code = err.as_service_error().and_then(|e| e.code());
    let rate = matches!(status, Some(429 | 503)) || code == Some("SlowDown");
    let cause = match (status, err.as_service_error()) {
        (Some(status), Some(service)) => {
            let quote = |text: Option<&str>, none: &str| -> String {
                text.unwrap_or(none).chars().take(QUOTE).collect()
            };
            match service.code() {
                Some(code) => format!(
                    "HTTP {status} {} ({})",
                    quote(Some(code), ""),
                    quote(service.message(), "no message")
                ),
                // A HEAD answer has no body: the status alone.
                None => format!("HTTP {status}"),
            }
        }
        _ => {
            let kind = match &err {
                SdkError::TimeoutError(_) => "timed out",
                SdkError::DispatchFailure(e) if e.is_timeout() => "timed out",
                SdkError::DispatchFailure(e) if e.is_io() => {
                    "could not connect, or lost the connection"
                }
                SdkError::DispatchFailure(_) => "transport failure",
                SdkError::ResponseError(_) => "an answer that could not be read",
                _ => "failed",
            };
            let detail: String = DisplayErrorContext(&err)
                .to_string()
                .chars()
                .take(300)
                .collect();
            format!("{kind}: {detail}")
        }
    };
    let message = format!("{what} {key}: {cause}");
    if rate {
        BlobError::RateLimited(message)
    } else {
        BlobError::Io(message)
    }
}

impl Blobs for R2Blobs {
    /// Builds the client on a thread of its own, once: the process meanwhile waits on the
    /// network (the Lambda Runtime API for its event, then D1), so the build costs the first
    /// request little or nothing. A call that comes first waits for the build to finish; if the
    /// thread cannot start, the first call builds it.
    fn prepare(&self) {
        if self.invalid.is_some()
            || self.client.get().is_some()
            || self.preparing.swap(true, Ordering::Relaxed)
        {
            return;
        }
        let (recipe, cell) = (self.recipe.clone(), Arc::clone(&self.client));
        let started = std::thread::Builder::new()
            .name("r2-client".into())
            .spawn(move || {
                cell.get_or_init(|| recipe.build());
            });
        if let Err(e) = started {
            tracing::debug!("the R2 client will be built by its first call: {e}");
        }
    }

    fn put<'a>(
        &'a self,
        key: &'a str,
        body: Bytes,
        content_type: &'a str,
    ) -> BoxFuture<'a, Result<(), BlobError>> {
        Box::pin(async move {
            let (client, checked) = self.for_key("put", key)?;
            let length = body.len() as u64;
            client
                .put_object()
                .bucket(&self.bucket)
                .key(checked)
                .content_type(content_type)
                .content_length(i64::try_from(length).unwrap_or(i64::MAX))
                .body(ByteStream::from(body))
                .customize()
                .config_override(
                    aws_sdk_s3::config::Builder::default().timeout_config(put_timeouts(length)),
                )
                .send()
                .await
                .map_err(|e| failed("put", key, e))?;
            Ok(())
        })
    }

    fn delete<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<(), BlobError>> {
        Box::pin(async move {
            let (client, checked) = self.for_key("delete", key)?;
            match client
                .delete_object()
                .bucket(&self.bucket)
                .key(checked)
                .send()
                .await
            {
                Ok(_) => Ok(()),
                // S3 answers 204 whether or not the key existed; a store that says 404 agrees.
                Err(err) if status_of(&err) == Some(404) => Ok(()),
                Err(err) => Err(failed("delete", key, err)),
            }
        })
    }

    fn list<'a>(&'a self, prefix: &'a str) -> BoxFuture<'a, Result<Vec<Listed>, BlobError>> {
        Box::pin(async move {
            let client = self.client("list", prefix)?;
            let mut out = Vec::new();
            let mut token: Option<String> = None;
            loop {
                let page = client
                    .list_objects_v2()
                    .bucket(&self.bucket)
                    .prefix(prefix)
                    .set_max_keys(self.page_size)
                    .set_continuation_token(token.clone())
                    .send()
                    .await
                    .map_err(|e| failed("list", prefix, e))?;
                out.extend(page.contents().iter().filter_map(listed));
                if page.is_truncated() != Some(true) {
                    break;
                }
                match page.next_continuation_token() {
                    Some(next) if token.as_deref() != Some(next) => token = Some(next.to_owned()),
                    _ => {
                        return Err(BlobError::Io(format!(
                            "list {prefix}: a truncated page without a new continuation token"
                        )));
                    }
                }
            }
            out.sort_by(|a, b| a.key.cmp(&b.key));
            Ok(out)
        })
    }

    fn list_page<'a>(
        &'a self,
        prefix: &'a str,
        after: &'a str,
        max: usize,
    ) -> BoxFuture<'a, Result<Vec<Listed>, BlobError>> {
        Box::pin(async move {
            let client = self.client("list", prefix)?;
            let max = self
                .page_size
                .unwrap_or(1000)
                .min(i32::try_from(max).unwrap_or(i32::MAX))
                .max(1);
            let page = client
                .list_objects_v2()
                .bucket(&self.bucket)
                .prefix(prefix)
                .max_keys(max)
                .set_start_after((!after.is_empty()).then(|| after.to_owned()))
                .send()
                .await
                .map_err(|e| failed("list", prefix, e))?;
            let mut out: Vec<Listed> = page.contents().iter().filter_map(listed).collect();
            out.sort_by(|a, b| a.key.cmp(&b.key));
            Ok(out)
        })
    }

    fn size<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<Option<u64>, BlobError>> {
        Box::pin(async move {
            let (client, checked) = self.for_key("head", key)?;
            match client
                .head_object()
                .bucket(&self.bucket)
                .key(checked)
                .send()
                .await
            {
                Ok(head) => match head.content_length() {
                    Some(length) => Ok(Some(u64::try_from(length).unwrap_or(0))),
                    None => Err(BlobError::Io(format!("head {key}: no content-length"))),
                },
                Err(err) if status_of(&err) == Some(404) => Ok(None),
                Err(err) => Err(failed("head", key, err)),
            }
        })
    }

    fn read_range<'a>(
        &'a self,
        key: &'a str,
        start: u64,
        len: u64,
    ) -> BoxFuture<'a, Result<Option<Bytes>, BlobError>> {
        Box::pin(async move {
            if len == 0 {
                return Ok(self.size(key).await?.map(|_| Bytes::new()));
            }
            let (client, checked) = self.for_key("get", key)?;
            let answer = client
                .get_object()
                .bucket(&self.bucket)
                .key(checked)
                .range(match start.checked_add(len) {
                    // Past i64 a last byte position overflows some S3 servers' parsers (s3s
                    // answers 400), and no object is that large: "to the end" says the same.
                    Some(end) if end <= i64::MAX as u64 => format!("bytes={start}-{}", end - 1),
                    _ => format!("bytes={start}-"),
                })
                .send()
                .await;
            let object = match answer {
                Ok(object) => object,
                Err(err) if status_of(&err) == Some(404) => return Ok(None),
                // Nothing at or after `start`: S3 answers 416 InvalidRange.
                Err(err) if status_of(&err) == Some(416) => return Ok(Some(Bytes::new())),
                Err(err) => return Err(failed("get", key, err)),
            };
            // A 200 is a store that ignored the range and sends the whole object: its bytes are
            // read only as far as the range's end, and the range is cut out of them.
            let skip = if object.content_range.is_some() {
                0
            } else {
                start
            };
            let end = skip.saturating_add(len);
            let mut body = object.body;
            let mut out = Vec::new();
            while (out.len() as u64) < end {
                match body.try_next().await {
                    Ok(Some(chunk)) => out.extend_from_slice(&chunk),
                    Ok(None) => break,
                    Err(e) => return Err(BlobError::Io(format!("get {key}: {e}"))),
                }
            }
            let bytes = Bytes::from(out);
            let from = usize::try_from(skip).unwrap_or(usize::MAX).min(bytes.len());
            let to = usize::try_from(end).unwrap_or(usize::MAX).min(bytes.len());
            Ok(Some(bytes.slice(from..to)))
        })
    }

    fn presign_put<'a>(
        &'a self,
        key: &'a str,
        content_type: &'a str,
        validity: Validity,
    ) -> BoxFuture<'a, Result<Option<Presigned>, BlobError>> {
        Box::pin(async move {
            let what = "presign put";
            let (client, checked) = self.for_key(what, key)?;
            let request = client
                .put_object()
                .bucket(&self.bucket)
                .key(checked)
                .content_type(content_type)
                // Signed, so the URL can create the object but never replace it: once the bytes
                // are there (and once they are an asset's), another PUT is 412.
                .if_none_match("*")
                .presigned(presigning(what, key, validity)?)
                .await
                .map_err(|e| failed(what, key, e))?;
            Ok(Some(presigned(request)))
        })
    }

    fn presign_get<'a>(
        &'a self,
        key: &'a str,
        content_type: &'a str,
        validity: Validity,
    ) -> BoxFuture<'a, Result<Option<Presigned>, BlobError>> {
        Box::pin(async move {
            let what = "presign get";
            let (client, checked) = self.for_key(what, key)?;
            let request = client
                .get_object()
                .bucket(&self.bucket)
                .key(checked)
                .response_content_type(content_type)
                .presigned(presigning(what, key, validity)?)
                .await
                .map_err(|e| failed(what, key, e))?;
            Ok(Some(presigned(request)))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::SystemTime;

    fn blobs(endpoint: &str) -> R2Blobs {
        R2Blobs::new(endpoint, "bkt", "AKID", &Secret::new("s3cr3t-value"))
    }

    fn validity(expires_in: Duration) -> Validity {
        Validity {
            signed_at: SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000),
            expires_in,
        }
    }

    #[tokio::test]
    async fn a_bad_endpoint_fails_each_call_without_panicking() {
        for endpoint in ["not a url", "bucket-only", "http://h:1/?q=1"] {
            let b = blobs(endpoint);
            let err = b.size("k").await.unwrap_err();
            assert!(err.to_string().contains("R2 endpoint"), "{err}");
            assert!(
                b.presign_get("k", "image/png", validity(Duration::from_secs(60)))
                    .await
                    .is_err()
            );
        }
    }

    #[tokio::test]
    async fn keys_with_dot_segments_are_refused_before_anything_is_sent() {
        let b = blobs("http://127.0.0.1:9");
        for key in ["v/../x", "./x", "", "a/./b"] {
            let err = b.put(key, Bytes::new(), "text/plain").await.unwrap_err();
            assert!(matches!(err, BlobError::BadKey(_)), "{key}: {err}");
        }
        let err = b
            .presign_put("v/../x", "image/png", validity(Duration::from_secs(60)))
            .await
            .unwrap_err();
        assert!(matches!(err, BlobError::BadKey(_)), "{err}");
        assert!(b.client.get().is_none(), "a refused key builds no client");
    }

    #[tokio::test]
    async fn presigned_urls_sign_what_the_holder_must_send() {
        let b = blobs("https://acc.r2.cloudflarestorage.com");
        let put = b
            .presign_put("v/a b.png", "image/png", validity(Duration::from_secs(900)))
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
                .contains("X-Amz-SignedHeaders=content-type%3Bhost%3Bif-none-match"),
            "{}",
            put.url
        );
        assert!(put.url.contains("X-Amz-Expires=900"), "{}", put.url);
        assert!(
            put.url.contains("X-Amz-Date=20231114T221320Z"),
            "{}",
            put.url
        );
        assert!(
            put.url
                .contains("X-Amz-Credential=AKID%2F20231114%2Fauto%2Fs3%2Faws4_request"),
            "{}",
            put.url
        );
        assert!(!put.url.contains("s3cr3t"));
        assert!(
            !put.url.to_ascii_lowercase().contains("checksum"),
            "{}",
            put.url
        );
        assert_eq!(
            put.headers,
            vec![
                ("content-type".to_owned(), "image/png".to_owned()),
                ("if-none-match".to_owned(), "*".to_owned())
            ]
        );
        let get = b
            .presign_get(
                "v/a b.png",
                "text/plain; charset=utf-8",
                validity(Duration::from_secs(300)),
            )
            .await
            .unwrap()
            .unwrap();
        assert!(
            get.url
                .contains("response-content-type=text%2Fplain%3B%20charset%3Dutf-8"),
            "{}",
            get.url
        );
        assert!(get.url.contains("X-Amz-SignedHeaders=host"), "{}", get.url);
        assert!(get.headers.is_empty(), "{:?}", get.headers);
        for too_long in [Duration::from_secs(8 * 24 * 3600), Duration::ZERO] {
            assert!(
                b.presign_get("k", "image/png", validity(too_long))
                    .await
                    .is_err()
            );
        }
    }

    #[test]
    fn the_client_is_built_once_by_prepare_or_the_first_call() {
        let b = blobs("https://acc.r2.cloudflarestorage.com");
        assert!(b.client.get().is_none(), "new() builds nothing");
        b.prepare();
        // The first call waits for prepare's build and gets that client.
        let first = b.client("head", "k").unwrap() as *const aws_sdk_s3::Client;
        b.prepare();
        let again = b.client("head", "k").unwrap() as *const aws_sdk_s3::Client;
        assert_eq!(first, again);
        let debug = format!("{b:?}");
        assert!(debug.contains("built: true"), "{debug}");
        assert!(!debug.contains("s3cr3t"), "{debug}");

        let lazy = blobs("https://acc.r2.cloudflarestorage.com");
        lazy.client("head", "k").unwrap();
        assert!(lazy.client.get().is_some(), "built by the first call");
    }
}
