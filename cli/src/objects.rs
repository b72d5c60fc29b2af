//! `imgbt dev objects`: the local object server. It serves the embedded store's objects
//! directory on 127.0.0.1, as R2 serves presigned GETs: only for URLs signed with the local
//! secret (`shared::blobs::object_urls`), answered with the content type the URL names, with
//! byte ranges, HEAD, `ETag` and `If-None-Match`. `./scripts/dev.sh` runs it beside `cargo lambda
//! watch`, whose functions cannot answer more than about 6 MB: `content` redirects here instead.
//!
//! Ranges, HEAD and `If-Modified-Since` are tower-http's `ServeFile`; `If-None-Match` is read
//! with the `headers` crate. Errors are the API's JSON envelope.

use bytes::Bytes;
use headers::{ETag, HeaderMapExt, IfNoneMatch};
use http_body_util::{Either, Full};
use hyper::body::Incoming;
use hyper::header::{self, HeaderValue};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use sha2::{Digest, Sha256};
use shared::ApiError;
use shared::blobs::local::LocalBlobs;
use shared::blobs::object_urls::UrlSecret;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};
use tokio::net::TcpListener;
use tower_http::services::ServeFile;
use tower_http::services::fs::ServeFileSystemResponseBody;

/// The port `./scripts/dev.sh` serves objects on, beside the API's 9000.
pub const DEFAULT_PORT: u16 = 9001;

type Body = Either<ServeFileSystemResponseBody, Full<Bytes>>;

struct Server {
    blobs: LocalBlobs,
    secret: UrlSecret,
}

/// Serves the objects of `blobs` on `listener` until the task is dropped, for URLs signed with
/// `secret`.
pub async fn serve(listener: TcpListener, blobs: LocalBlobs, secret: UrlSecret) {
    let server = Arc::new(Server { blobs, secret });
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let server = server.clone();
        tokio::spawn(async move {
            let service = service_fn(move |req| {
                let server = server.clone();
                async move { Ok::<_, std::convert::Infallible>(server.answer(req).await) }
            });
            // A client that goes away mid-answer ends its connection, nothing more.
            let _ = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

fn envelope(error: &ApiError) -> Response<Body> {
    let mut response = Response::new(Either::Right(Full::new(Bytes::from(
        error.envelope().to_string(),
    ))));
    *response.status_mut() = error.status();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

/// A strong validator: an object's bytes never change under its key (a key carries a fresh
/// asset id, and a put renames a complete file into place), so its key, size and mtime name
/// them.
fn etag_of(key: &str, meta: &std::fs::Metadata) -> ETag {
    let mtime = meta
        .modified()
        .ok()
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_nanos());
    let digest = Sha256::digest(format!("{key}\n{}\n{mtime}", meta.len()));
    let hex: String = digest[..16].iter().map(|b| format!("{b:02x}")).collect();
    format!("\"{hex}\"")
        .parse()
        .expect("hex digits in quotes are an entity tag")
}

impl Server {
    async fn answer(&self, req: Request<Incoming>) -> Response<Body> {
        match self.try_answer(req).await {
            Ok(response) => response,
            Err(error) => {
                // The envelope says only "internal error"; the cause (a path, an I/O error) goes
                // to the terminal that runs the server.
                if let Some(cause) = error.cause() {
                    eprintln!("imgbt dev objects: {cause}");
                }
                envelope(&error)
            }
        }
    }

    async fn try_answer(&self, req: Request<Incoming>) -> Result<Response<Body>, ApiError> {
        let path = req.uri().path().strip_prefix('/').unwrap_or_default();
        let key = percent_encoding::percent_decode_str(path)
            .decode_utf8()
            .map_err(|_| ApiError::InvalidParams("the object path is not UTF-8".into()))?
            .into_owned();
        let now = now();
        let signed = self
            .secret
            .verify(&key, req.uri().query(), now)
            .map_err(|refused| ApiError::Forbidden(refused.message()))?;
        let file = self
            .blobs
            .path_of(&key)
            .map_err(|_| ApiError::InvalidParams("this object key is refused".into()))?;
        let meta = match tokio::fs::metadata(&file).await {
            Ok(meta) if meta.is_file() => meta,
            Ok(_) => return Err(ApiError::NotFound),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(ApiError::NotFound);
            }
            Err(e) => return Err(ApiError::internal(e)),
        };
        // ServeFile panics on a media type that is no header value: refused here instead.
        let mime = signed
            .content_type
            .parse::<mime::Mime>()
            .ok()
            .filter(|mime| HeaderValue::from_str(mime.as_ref()).is_ok())
            .ok_or_else(|| {
                ApiError::InvalidParams("response-content-type is not a media type".into())
            })?;
        let etag = etag_of(&key, &meta);
        let cache_control = HeaderValue::from_str(&format!(
            "private, max-age={}",
            signed.expires_at.saturating_sub(now)
        ))
        .map_err(ApiError::internal)?;
        let unchanged = req
            .headers()
            .typed_get::<IfNoneMatch>()
            .is_some_and(|condition| !condition.precondition_passes(&etag));
        let mut response = if unchanged {
            let mut response = Response::new(Either::Right(Full::new(Bytes::new())));
            *response.status_mut() = StatusCode::NOT_MODIFIED;
            response
        } else {
            ServeFile::new_with_mime(&file, &mime)
                .try_call(req)
                .await
                .map_err(ApiError::internal)?
                .map(Either::Left)
        };
        let headers = response.headers_mut();
        headers.typed_insert(etag);
        headers.insert(header::CACHE_CONTROL, cache_control);
        Ok(response)
    }
}
