//! `GET|HEAD /d/{vaultId}/{partition}/{collection}/{channel}/{filename}`: an asset at a URL a
//! browser can use with no header (docs/API.md#delivery).
//!
//! No key: the vault's delivery is `public`, or `signed` and the URL carries `exp` and `sig`
//! (`shared::delivery`). One D1 request: the vault's settings and the asset in one statement.
//! The answer has a strong ETag (the asset id: an asset's bytes never change), honours
//! `If-None-Match` (304) and one `Range` (206, or 416), and reads from the store only the bytes it
//! sends. A body larger than one Lambda response can carry is a 302 to a presigned GET (R2 answers
//! ranges itself); where the store has no such URLs, 413 as `content` answers.
//!
//! With transform parameters the answer is a variant of an image ([`transformed`]): the stored
//! one when there is one (one more GET, no decode), else computed, stored and sent.

mod transformed;

use lambda_http::http::{HeaderValue, Method, StatusCode, header};
use lambda_http::{Body, Request, RequestExt, Response};
use shared::blobs::Validity;
use shared::clock::Clock;
use shared::delivery::{self, DeliveryPath, Mode, Ranged};
use shared::http::{query_pairs, serve};
use shared::uploads::DOWNLOAD_TTL;
use shared::{ApiError, Deps, batch};

pub async fn handle(deps: &Deps, req: Request) -> Result<Response<Body>, lambda_http::Error> {
    serve("deliver", req, |req| run(deps, req)).await
}

const TOO_LARGE_TO_SERVE: &str = "this file is larger than one Lambda response can carry \
    (about 4.5 MB once base64-encoded), and this object store has no URLs to redirect to; \
    ask for a Range of it, or serve the store's objects beside the functions";

/// The path a request delivers. API Gateway's HTTP API hands the function decoded path parameters
/// (and a decoded raw path, in which a `%2F` of a filename is a `/`), so its parameters are the
/// truth there; a router that hands over the raw segments as they are (`cargo lambda watch`, the
/// test kit's local API) or none at all (a function URL) is read from the raw path. Either way the
/// signature covers the path re-encoded by [`delivery::path`], whatever spelling arrived.
fn target(req: &Request) -> Option<DeliveryPath> {
    let raw = req.uri().path();
    let params = req.path_parameters();
    let names = ["vaultId", "partition", "collection", "channel", "filename"];
    let given: Option<Vec<&str>> = names.iter().map(|name| params.first(name)).collect();
    let Some(given) = given else {
        return DeliveryPath::parse(raw);
    };
    if delivery::raw_segments(raw).is_some_and(|segments| segments[..] == given[..]) {
        return DeliveryPath::parse(raw);
    }
    let [vault_id, partition, collection, channel, filename] = given[..] else {
        return None;
    };
    shared::ids::is_id("vault_", vault_id).then(|| DeliveryPath {
        vault_id: vault_id.to_owned(),
        partition: partition.to_owned(),
        collection: collection.to_owned(),
        channel: channel.to_owned(),
        filename: filename.to_owned(),
    })
}

fn header_text(req: &Request, name: header::HeaderName) -> Option<&str> {
    req.headers().get(name).and_then(|v| v.to_str().ok())
}

async fn run(deps: &Deps, req: Request) -> Result<Response<Body>, ApiError> {
    let head = match *req.method() {
        Method::GET => false,
        Method::HEAD => true,
        _ => return Err(ApiError::NotFound),
    };
    let path = target(&req).ok_or(ApiError::NotFound)?;
    let found = batch::run(&*deps.db, delivery::lookup(&path))
        .await?
        .ok_or(ApiError::NotDelivered)?;
    let now_ms = deps.clock.now_ms();
    let now_s = now_ms / 1000;
    // The signature before the asset: on a signed vault, a URL without one learns nothing of
    // which paths exist.
    let exp = match found.mode {
        Mode::Public => None,
        Mode::Signed => Some(delivery::verify(
            &found.secrets,
            &path.vault_id,
            &path.encoded(),
            &query_pairs(&req),
            now_s,
        )?),
    };
    let pairs = query_pairs(&req);
    // The parameters before the asset: a bad one is 400 whatever the path names.
    let params = transformed::requested(&pairs)?;
    let asset = found.asset.ok_or(ApiError::NotDelivered)?;
    let cache_control = delivery::cache_control(exp, now_s);
    if let Some(params) = params {
        let asked = transformed::Asked {
            vault_id: &path.vault_id,
            params,
            accepts: transformed::accepts(&pairs, header_text(&req, header::ACCEPT)),
            if_none_match: header_text(&req, header::IF_NONE_MATCH),
            range: header_text(&req, header::RANGE),
            cache_control: &cache_control,
            head,
            now_ms,
        };
        return transformed::answer(deps, &asset, asked).await;
    }
    let etag = delivery::etag(&asset.id);
    let answer = |status: StatusCode| {
        Response::builder()
            .status(status)
            .header(header::ETAG, &etag)
            .header(header::CACHE_CONTROL, &cache_control)
            .header(header::ACCEPT_RANGES, "bytes")
            // The stored type was sniffed from the bytes: browsers must not guess another.
            .header(header::X_CONTENT_TYPE_OPTIONS, "nosniff")
    };
    if header_text(&req, header::IF_NONE_MATCH)
        .is_some_and(|tags| delivery::none_match(tags, &etag))
    {
        return answer(StatusCode::NOT_MODIFIED)
            .body(Body::Empty)
            .map_err(ApiError::internal);
    }
    let (status, span) = match delivery::range(header_text(&req, header::RANGE), asset.size) {
        Ranged::Whole => (StatusCode::OK, None),
        Ranged::Part(part) => (StatusCode::PARTIAL_CONTENT, Some(part)),
        Ranged::Unsatisfiable => return Err(ApiError::RangeNotSatisfiable(asset.size)),
    };
    let (start, len) = span.as_ref().map_or((0, asset.size), |part| {
        (*part.start(), part.end() - part.start() + 1)
    });
    let mut builder = answer(status)
        .header(header::CONTENT_TYPE, &asset.mime_type)
        .header(header::CONTENT_LENGTH, len);
    if let Some(part) = &span {
        builder = builder.header(
            header::CONTENT_RANGE,
            format!("bytes {}-{}/{}", part.start(), part.end(), asset.size),
        );
    }
    if head {
        return builder.body(Body::Empty).map_err(ApiError::internal);
    }
    // A response's body is base64-encoded on its way out, as a request's is on its way in.
    if deps.max_request_bytes.is_some_and(|limit| len > limit) {
        return redirect(deps, &asset.r2_key, &asset.mime_type, now_ms).await;
    }
    let bytes = deps
        .blobs
        .read_range(&asset.r2_key, start, len)
        .await?
        .ok_or_else(|| ApiError::internal(format!("the object of {} is missing", asset.r2_key)))?;
    if bytes.len() as u64 != len {
        return Err(ApiError::internal(format!(
            "the object of {} is {} bytes short",
            asset.r2_key,
            len - bytes.len() as u64
        )));
    }
    builder
        .body(Body::Binary(Vec::from(bytes)))
        .map_err(ApiError::internal)
}

/// A 302 to a presigned GET of `key`, for a body larger than one Lambda response carries; 413
/// where the store has no such URLs.
async fn redirect(
    deps: &Deps,
    key: &str,
    mime_type: &str,
    now_ms: u64,
) -> Result<Response<Body>, ApiError> {
    let validity = Validity {
        signed_at: Clock::at(now_ms),
        expires_in: DOWNLOAD_TTL,
    };
    let Some(presigned) = deps.blobs.presign_get(key, mime_type, validity).await? else {
        return Err(ApiError::PayloadTooLarge(TOO_LARGE_TO_SERVE));
    };
    let location = HeaderValue::from_str(&presigned.url).map_err(ApiError::internal)?;
    Response::builder()
        .status(StatusCode::FOUND)
        .header(header::LOCATION, location)
        // The presigned URL expires: no cache may keep the redirect.
        .header(header::CACHE_CONTROL, "private, no-store")
        .body(Body::Empty)
        .map_err(ApiError::internal)
}
