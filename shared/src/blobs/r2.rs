//! Cloudflare R2 over its S3 API, with the AWS SDK configured for R2: region `auto`, path-style
//! addressing, and checksums only where an operation requires them (R2 refuses some of the CRC32
//! headers and aws-chunked bodies the SDK sends by default). Bodies are sent sized, in one piece.

use super::{BlobError, Blobs, Presigned, Validity};
use crate::BoxFuture;
use crate::deps::Secret;
use aws_sdk_s3::config::timeout::TimeoutConfig;
use aws_sdk_s3::config::{
    BehaviorVersion, Credentials, Region, RequestChecksumCalculation, ResponseChecksumValidation,
};
use aws_sdk_s3::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_s3::presigning::{PresignedRequest, PresigningConfig};
use aws_sdk_s3::primitives::ByteStream;
use bytes::Bytes;
use std::time::Duration;

pub mod https;

pub struct R2Blobs {
    client: aws_sdk_s3::Client,
    bucket: String,
}

impl R2Blobs {
    pub fn new(
        endpoint: &str,
        bucket: &str,
        access_key_id: &str,
        secret_access_key: &Secret,
    ) -> Self {
        let credentials = Credentials::new(
            access_key_id,
            secret_access_key.expose(),
            None,
            None,
            "imgbt",
        );
        let config = aws_sdk_s3::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .endpoint_url(endpoint)
            .region(Region::new("auto"))
            .force_path_style(true)
            .credentials_provider(credentials)
            .request_checksum_calculation(RequestChecksumCalculation::WhenRequired)
            .response_checksum_validation(ResponseChecksumValidation::WhenRequired)
            .http_client(https::client())
            .timeout_config(
                // A stalled R2 must not hold a request until the Lambda timeout (25–28 s): each
                // attempt gets 8 s, all of them 20 s (a PUT gets more per megabyte: put_timeouts).
                TimeoutConfig::builder()
                    .connect_timeout(Duration::from_secs(3))
                    .operation_attempt_timeout(ATTEMPT)
                    .operation_timeout(OPERATION)
                    .build(),
            )
            .build();
        R2Blobs {
            client: aws_sdk_s3::Client::from_conf(config),
            bucket: bucket.to_owned(),
        }
    }
}

const ATTEMPT: Duration = Duration::from_secs(8);
const OPERATION: Duration = Duration::from_secs(20);

/// A PUT's timeouts grow by a second per megabyte, so that a large body on a slow link is not
/// cut off, while a small one (all a Lambda behind the gateway can send: ~4.5 MB) still gives up
/// before the Lambda's timeout.
fn put_timeouts(length: u64) -> TimeoutConfig {
    let per_size = Duration::from_secs(length / 1_000_000);
    TimeoutConfig::builder()
        .operation_attempt_timeout(ATTEMPT + per_size)
        .operation_timeout(OPERATION + per_size)
        .build()
}

fn presigning(validity: Validity) -> Result<PresigningConfig, BlobError> {
    PresigningConfig::builder()
        .start_time(validity.signed_at)
        .expires_in(validity.expires_in)
        .build()
        .map_err(|e| BlobError::Io(format!("presigning: {e}")))
}

fn presigned(request: PresignedRequest) -> Presigned {
    Presigned {
        url: request.uri().to_owned(),
        headers: request
            .headers()
            .map(|(name, value)| (name.to_ascii_lowercase(), value.to_owned()))
            .collect(),
    }
}

fn failed<E>(what: &str, key: &str, err: SdkError<E>) -> BlobError
where
    E: std::error::Error + ProvideErrorMetadata + 'static,
{
    // The service's own code and message when it answered; otherwise the SDK's account of what
    // failed (no credentials in either), cut short, as it can quote a whole raw response.
    let status = err.raw_response().map(|r| r.status().as_u16());
    let code = err.as_service_error().and_then(|e| e.code());
    let rate = matches!(status, Some(429 | 503)) || matches!(code, Some("SlowDown"));
    let cause = match err.as_service_error() {
        Some(service) => format!(
            "HTTP {} {} ({})",
            status.unwrap_or_default(),
            service.code().unwrap_or("unknown error"),
            service.message().unwrap_or("no message")
        ),
        None => DisplayErrorContext(&err)
            .to_string()
            .chars()
            .take(300)
            .collect(),
    };
    let message = format!("{what} {key}: {cause}");
    if rate {
        BlobError::RateLimited(message)
    } else {
        BlobError::Io(message)
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
            let length = body.len() as i64;
            self.client
                .put_object()
                .bucket(&self.bucket)
                .key(key)
                .content_type(content_type)
                .content_length(length)
                .body(ByteStream::from(body))
                .customize()
                .config_override(
                    aws_sdk_s3::config::Builder::default()
                        .timeout_config(put_timeouts(length as u64)),
                )
                .send()
                .await
                .map_err(|e| failed("put", key, e))?;
            Ok(())
        })
    }

    fn delete<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<(), BlobError>> {
        Box::pin(async move {
            self.client
                .delete_object()
                .bucket(&self.bucket)
                .key(key)
                .send()
                .await
                .map_err(|e| failed("delete", key, e))?;
            Ok(())
        })
    }

    fn list<'a>(&'a self, prefix: &'a str) -> BoxFuture<'a, Result<Vec<(String, u64)>, BlobError>> {
        Box::pin(async move {
            let mut out = Vec::new();
            let mut token: Option<String> = None;
            loop {
                let page = self
                    .client
                    .list_objects_v2()
                    .bucket(&self.bucket)
                    .prefix(prefix)
                    .set_continuation_token(token.take())
                    .send()
                    .await
                    .map_err(|e| failed("list", prefix, e))?;
                for object in page.contents() {
                    if let Some(key) = object.key() {
                        out.push((key.to_owned(), object.size().unwrap_or(0).max(0) as u64));
                    }
                }
                match page.next_continuation_token() {
                    Some(next) if page.is_truncated() == Some(true) => {
                        token = Some(next.to_owned())
                    }
                    _ => break,
                }
            }
            out.sort();
            Ok(out)
        })
    }

    fn size<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<Option<u64>, BlobError>> {
        Box::pin(async move {
            match self
                .client
                .head_object()
                .bucket(&self.bucket)
                .key(key)
                .send()
                .await
            {
                Ok(head) => Ok(Some(head.content_length().unwrap_or(0).max(0) as u64)),
                Err(err) if err.as_service_error().is_some_and(|e| e.is_not_found()) => Ok(None),
                Err(err) => Err(failed("head", key, err)),
            }
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
            let answer = self
                .client
                .get_object()
                .bucket(&self.bucket)
                .key(key)
                .range(format!("bytes=0-{}", max - 1))
                .send()
                .await;
            let object = match answer {
                Ok(object) => object,
                Err(err) if err.as_service_error().is_some_and(|e| e.is_no_such_key()) => {
                    return Ok(None);
                }
                // An empty object has no byte 0: S3 answers 416 InvalidRange.
                Err(err)
                    if err
                        .raw_response()
                        .is_some_and(|r| r.status().as_u16() == 416) =>
                {
                    return Ok(Some(Bytes::new()));
                }
                Err(err) => return Err(failed("get", key, err)),
            };
            let bytes = object
                .body
                .collect()
                .await
                .map_err(|e| BlobError::Io(format!("get {key}: {e}")))?
                .into_bytes();
            // A store that ignores the range sends the whole object: keep only what was asked.
            Ok(Some(bytes.slice(..bytes.len().min(max as usize))))
        })
    }

    fn presign_put<'a>(
        &'a self,
        key: &'a str,
        content_type: &'a str,
        validity: Validity,
    ) -> BoxFuture<'a, Result<Option<Presigned>, BlobError>> {
        Box::pin(async move {
            let request = self
                .client
                .put_object()
                .bucket(&self.bucket)
                .key(key)
                .content_type(content_type)
                // Signed, so the URL can create the object but never replace it: once the bytes
                // are there (and once they are an asset's), another PUT is 412.
                .if_none_match("*")
                .presigned(presigning(validity)?)
                .await
                .map_err(|e| failed("presign put", key, e))?;
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
            let request = self
                .client
                .get_object()
                .bucket(&self.bucket)
                .key(key)
                .response_content_type(content_type)
                .presigned(presigning(validity)?)
                .await
                .map_err(|e| failed("presign get", key, e))?;
            Ok(Some(presigned(request)))
        })
    }
}
