//! A delivery with transform parameters: a variant of an image (docs/API.md#transforms).
//!
//! The variant's key is known from the URL alone (`shared::variants`), so the order is: the
//! ETag (304 before any read), then one GET of the stored variant (a hit: sent as stored, nothing
//! decoded), else the source is read, transformed off the async thread, stored unless the asset
//! already has [`variants::CAP_PER_ASSET`] of them, and sent. No D1 request beyond the lookup
//! every delivery makes. Each transformed delivery logs one `transform` line saying which of
//! those happened.

use bytes::Bytes;
use lambda_http::http::{StatusCode, header};
use lambda_http::{Body, Response};
use shared::delivery::{self, Ranged, Stored};
use shared::transform::{Accepts, Params};
use shared::variants::{self, Variant};
use shared::{ApiError, Deps};
use std::time::Instant;

/// The largest source a transform reads: the bytes sit in memory beside the decoded pixels
/// (at most `imgbt_transform::MAX_SOURCE_PIXELS`, 4 bytes each), and the function's memory
/// size (infra/template.yaml) is chosen for both.
pub const MAX_SOURCE_BYTES: u64 = 32 * 1024 * 1024;

/// More bytes than any variant has: 25 MP × 4 channels, with room for a container.
const MAX_VARIANT_BYTES: u64 = 128 * 1024 * 1024;

/// What the transform parameters ask for: `None` when the URL has none (or only ones that
/// change nothing), so the original is served as is; 400 INVALID_PARAMS naming a bad one.
/// Names are read as the signature and the CDN read them (`delivery::normalise`: lowercased,
/// aliases mapped, unknown names dropped).
pub fn requested(pairs: &[(String, String)]) -> Result<Option<Params>, ApiError> {
    let (_, params) = delivery::transform_query(pairs)?;
    Ok((params != Params::default()).then_some(params))
}

/// What the client decodes: the CDN's `accept` parameter when it sent one (it forwards no
/// headers), else the request's own `Accept`.
pub fn accepts(pairs: &[(String, String)], accept: Option<&str>) -> Accepts {
    pairs
        .iter()
        .find(|(name, _)| name == "accept")
        .and_then(|(_, value)| Accepts::from_edge(value))
        .unwrap_or_else(|| Accepts::from_header(accept))
}

/// A transformed delivery's request, as `run` read it.
pub struct Asked<'a> {
    pub vault_id: &'a str,
    pub params: Params,
    pub accepts: Accepts,
    pub if_none_match: Option<&'a str>,
    pub range: Option<&'a str>,
    pub cache_control: &'a str,
    pub head: bool,
    pub now_ms: u64,
}

/// How a variant was come by, for the log line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Came {
    /// Read from the store: nothing decoded.
    Hit,
    /// Computed and stored.
    Stored,
    /// Computed, not stored: the asset has `CAP_PER_ASSET` variants already.
    OverCap,
    /// Computed; storing it failed (logged), so the next request computes it again.
    StoreFailed,
}

impl Came {
    fn as_str(self) -> &'static str {
        match self {
            Came::Hit => "hit",
            Came::Stored => "stored",
            Came::OverCap => "over_cap",
            Came::StoreFailed => "store_failed",
        }
    }
}

pub async fn answer(
    deps: &Deps,
    asset: &Stored,
    asked: Asked<'_>,
) -> Result<Response<Body>, ApiError> {
    if !transformable(&asset.mime_type) {
        return Err(ApiError::InvalidParams(format!(
            "transform parameters apply to JPEG, PNG, GIF and WebP images; this asset is {}",
            asset.mime_type
        )));
    }
    let variant = variants::variant(asked.vault_id, &asset.id, &asked.params, asked.accepts);
    let vary = asked.params.varies_with_accept();
    let headers = |status: StatusCode| {
        let builder = Response::builder()
            .status(status)
            .header(header::ETAG, &variant.etag)
            .header(header::CACHE_CONTROL, asked.cache_control)
            .header(header::ACCEPT_RANGES, "bytes")
            .header(header::X_CONTENT_TYPE_OPTIONS, "nosniff");
        if vary {
            builder.header(header::VARY, "Accept")
        } else {
            builder
        }
    };
    if asked
        .if_none_match
        .is_some_and(|tags| delivery::none_match(tags, &variant.etag))
    {
        return headers(StatusCode::NOT_MODIFIED)
            .body(Body::Empty)
            .map_err(ApiError::internal);
    }
    let started = Instant::now();
    // One byte past the limit tells a variant too large to send from one that fits. Without a
    // limit, the largest output there is (25 MP of 4 channels, uncompressed) bounds the range.
    let read_max = deps
        .max_request_bytes
        .map_or(MAX_VARIANT_BYTES, |limit| limit + 1);
    let (bytes, came) = match deps.blobs.read_range(&variant.key, 0, read_max).await? {
        Some(bytes) => (bytes, Came::Hit),
        None => compute(deps, asset, &asked, &variant).await?,
    };
    let mime_type = shared::media::magic(&bytes).unwrap_or(shared::media::OCTET_STREAM);
    tracing::info!(
        asset_id = %asset.id,
        variant = came.as_str(),
        bytes = bytes.len(),
        mime_type = %mime_type,
        ms = started.elapsed().as_secs_f64() * 1000.0,
        "transform"
    );
    let size = bytes.len() as u64;
    if deps.max_request_bytes.is_some_and(|limit| size > limit) {
        if matches!(came, Came::OverCap | Came::StoreFailed) {
            return Err(ApiError::PayloadTooLarge(crate::TOO_LARGE_TO_SERVE));
        }
        return crate::redirect(deps, &variant.key, mime_type, asked.now_ms).await;
    }
    let (status, body, content_range) = match delivery::range(asked.range, size) {
        Ranged::Whole => (StatusCode::OK, bytes, None),
        Ranged::Part(part) => {
            let (start, end) = (*part.start(), *part.end());
            let slice = bytes.slice(start as usize..=end as usize);
            let range = format!("bytes {start}-{end}/{size}");
            (StatusCode::PARTIAL_CONTENT, slice, Some(range))
        }
        Ranged::Unsatisfiable => return Err(ApiError::RangeNotSatisfiable(size)),
    };
    let mut builder = headers(status)
        .header(header::CONTENT_TYPE, mime_type)
        .header(header::CONTENT_LENGTH, body.len());
    if let Some(range) = content_range {
        builder = builder.header(header::CONTENT_RANGE, range);
    }
    let body = if asked.head {
        Body::Empty
    } else {
        Body::Binary(Vec::from(body))
    };
    builder.body(body).map_err(ApiError::internal)
}

/// Whether the stored type is one the transform crate decodes.
fn transformable(mime_type: &str) -> bool {
    matches!(
        mime_type,
        "image/jpeg" | "image/png" | "image/gif" | "image/webp"
    )
}

/// The variant, computed from the source, and stored unless the asset is at its cap.
async fn compute(
    deps: &Deps,
    asset: &Stored,
    asked: &Asked<'_>,
    variant: &Variant,
) -> Result<(Bytes, Came), ApiError> {
    if asset.size > MAX_SOURCE_BYTES {
        return Err(ApiError::InvalidParams(format!(
            "the image is {} bytes; transforms read sources of at most {MAX_SOURCE_BYTES} bytes",
            asset.size
        )));
    }
    let source = deps
        .blobs
        .read_range(&asset.r2_key, 0, asset.size)
        .await?
        .ok_or_else(|| ApiError::internal(format!("the object of {} is missing", asset.r2_key)))?;
    let params = asked.params.clone();
    let accepts = asked.accepts;
    // CPU for tens to hundreds of milliseconds: off the runtime's thread.
    let output =
        tokio::task::spawn_blocking(move || imgbt_transform::transform(&source, &params, accepts))
            .await
            .map_err(ApiError::internal)?
            .map_err(|e| {
                if e.is_client_error() {
                    ApiError::InvalidParams(e.to_string())
                } else {
                    ApiError::internal(e)
                }
            })?;
    let bytes = Bytes::from(output.bytes);
    let prefix = variants::prefix(asked.vault_id, &asset.id);
    // The count needs one page of the cap's size: at the cap, nothing is stored.
    let came = match deps
        .blobs
        .list_page(&prefix, "", variants::CAP_PER_ASSET)
        .await
    {
        Ok(stored) if stored.len() >= variants::CAP_PER_ASSET => Came::OverCap,
        Ok(_) => match deps
            .blobs
            .put(&variant.key, bytes.clone(), output.format.mime())
            .await
        {
            Ok(()) => Came::Stored,
            Err(err) => {
                tracing::warn!(error = %err, key = %variant.key, "variant not stored");
                Came::StoreFailed
            }
        },
        Err(err) => {
            tracing::warn!(error = %err, key = %variant.key, "variant not stored: listing failed");
            Came::StoreFailed
        }
    };
    Ok((bytes, came))
}
