//! `GET /api/v1/vaults/{vaultId}/assets/{assetId}/url`: the delivery URL of an asset
//! (docs/API.md#delivery), for any key of the vault: `{"url", "expires_at"}`.
//!
//! On a public vault the URL is the asset's delivery path and never expires (`expires_at: null`);
//! on a signed vault it carries `exp` and `sig` made with the vault's current secret, valid for
//! `expires` seconds (default an hour, at most 7 days). The URL's base is `IMGBT_DELIVERY_URL`
//! (a CDN's domain) when set, else the API's own origin as the request reached it.
//!
//! Transform parameters (docs/API.md#transforms) given to the route are checked as a delivery
//! checks them and put in the URL in the spelling the CDN leaves them (`delivery::normalise`), so
//! on a signed vault the signature covers them: the URL delivers that variant and no other.
//!
//! One D1 request: the key lookup, and the asset joined with its vault's delivery settings.

use lambda_http::{Body, Request, Response, http::StatusCode};
use serde::Serialize;
use shared::auth::Access;
use shared::batch::Query;
use shared::db::{Stmt, StmtResult};
use shared::delivery::{self, Mode};
use shared::http::{begin, json_response, query_pairs, serve};
use shared::{ApiError, Deps, batch, clock, routes};

pub async fn handle(deps: &Deps, req: Request) -> Result<Response<Body>, lambda_http::Error> {
    serve("asset_url", req, |req| run(deps, req)).await
}

/// How long a signed URL lives when the request does not say: an hour.
pub const DEFAULT_EXPIRES_S: u64 = 3600;
/// The longest a signed URL may live: 7 days, as a presigned S3 URL at most does.
pub const MAX_EXPIRES_S: u64 = 604_800;

/// What a URL request asks for: how long a signed URL lives, and the transform parameters to put
/// in it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Asked {
    pub expires: u64,
    /// Normalised as a delivery reads them (`delivery::normalise`), less `exp` and `sig`: the
    /// route makes those itself.
    pub transform: Vec<(String, String)>,
}

/// The query of a URL request: `expires` (seconds) at most once, and transform parameters with
/// the names, aliases and ranges a delivery takes (400 INVALID_PARAMS naming a bad one). Other
/// names are ignored, as a delivery ignores them. So no URL is made with a value its delivery
/// refuses (the asset's type is not checked: transforms on a non-image are a delivery's 400).
pub fn parse_query(pairs: &[(String, String)]) -> Result<Asked, ApiError> {
    let mut expires = None;
    let mut rest = Vec::new();
    for (name, value) in pairs {
        if name != "expires" {
            rest.push((name.clone(), value.clone()));
            continue;
        }
        if expires.is_some() {
            return Err(ApiError::invalid("expires", "must be given at most once"));
        }
        let seconds = value
            .parse::<u64>()
            .ok()
            .filter(|_| value.bytes().all(|b| b.is_ascii_digit()))
            .filter(|s| (1..=MAX_EXPIRES_S).contains(s))
            .ok_or_else(|| {
                ApiError::invalid(
                    "expires",
                    format_args!("must be a whole number of seconds from 1 to {MAX_EXPIRES_S}"),
                )
            })?;
        expires = Some(seconds);
    }
    // Checked in the form the delivery will read, so that the two cannot disagree on a name
    // given twice or under its alias.
    let (transform, _) = delivery::transform_query(&rest)?;
    Ok(Asked {
        expires: expires.unwrap_or(DEFAULT_EXPIRES_S),
        transform,
    })
}

// The asset's delivery path and its vault's settings, in one statement.
const SELECT: &str = "SELECT a.vault_id, a.partition, a.collection, a.channel, a.filename, v.delivery, \
     v.delivery_secret FROM assets AS a JOIN vaults AS v ON v.id = a.vault_id \
     WHERE a.id = ?1 AND a.vault_id = ?2";

struct Found {
    path: String,
    mode: Mode,
    secret: Option<shared::secret::Secret>,
}

fn read(result: StmtResult) -> Result<Option<Found>, ApiError> {
    let Some(row) = result.rows.first() else {
        return Ok(None);
    };
    let text = |column: &str| row.get(column).and_then(|v| v.as_str());
    let segment = |column: &str| {
        text(column).ok_or_else(|| ApiError::internal(format!("asset row has no {column}")))
    };
    let mode = text("delivery")
        .and_then(Mode::parse)
        .ok_or_else(|| ApiError::internal("a vault row has no delivery mode"))?;
    Ok(Some(Found {
        path: delivery::path(
            segment("vault_id")?,
            segment("partition")?,
            segment("collection")?,
            segment("channel")?,
            segment("filename")?,
        ),
        mode,
        secret: text("delivery_secret").map(|s| shared::secret::Secret::new(s.to_owned())),
    }))
}

#[derive(Serialize)]
struct Answer {
    url: String,
    expires_at: Option<String>,
}

async fn run(deps: &Deps, req: Request) -> Result<Response<Body>, ApiError> {
    let (target, credential) = begin(&req, routes::route_of("asset_url"))?;
    // A bad query is reported only after the key is checked: authentication comes first.
    let asked = parse_query(&query_pairs(&req));
    let asset_id = target.asset_id.clone().unwrap_or_default();
    let select = Stmt::new(
        SELECT,
        vec![asset_id.into(), target.vault_id.as_str().into()],
    );
    let (key, found) =
        batch::run(&*deps.db, (credential.lookup(), Query::new(select, read))).await?;
    key.check(&target.vault_id, Access::Read)?;
    let Asked { expires, transform } = asked?;
    let found = found.ok_or(ApiError::AssetNotFound)?;
    let base = match &deps.delivery_url {
        Some(base) => base.clone(),
        None => shared::http::origin(&req),
    };
    let answer = match found.mode {
        Mode::Public => Answer {
            url: with_query(format!("{base}{}", found.path), &transform),
            expires_at: None,
        },
        Mode::Signed => {
            // PATCH gives a vault turned signed its secret in the same UPDATE.
            let secret = found
                .secret
                .ok_or_else(|| ApiError::internal("a signed vault has no delivery secret"))?;
            let now_ms = deps.clock.now_ms();
            let exp = now_ms / 1000 + expires;
            let query = delivery::signed_query(
                secret.expose(),
                &target.vault_id,
                &found.path,
                exp,
                &transform,
            );
            Answer {
                url: format!("{base}{}?{query}", found.path),
                expires_at: Some(clock::format_ms(exp * 1000)),
            }
        }
    };
    json_response(StatusCode::OK, &answer)
}

fn with_query(url: String, params: &[(String, String)]) -> String {
    if params.is_empty() {
        return url;
    }
    let mut query = form_urlencoded::Serializer::new(String::new());
    query.extend_pairs(params);
    format!("{url}?{}", query.finish())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(query: &str) -> Vec<(String, String)> {
        form_urlencoded::parse(query.as_bytes())
            .into_owned()
            .collect()
    }

    #[test]
    fn expires_is_1_to_604800_seconds() {
        assert_eq!(parse_query(&[]).unwrap().expires, 3600);
        assert_eq!(parse_query(&pairs("expires=1")).unwrap().expires, 1);
        assert_eq!(
            parse_query(&pairs("expires=604800")).unwrap().expires,
            604_800
        );
        for bad in [
            "expires=0",
            "expires=604801",
            "expires=-1",
            "expires=+5",
            "expires=1h",
            "expires=",
            "expires=1&expires=2",
        ] {
            let err = parse_query(&pairs(bad)).unwrap_err();
            assert!(
                matches!(&err, ApiError::InvalidParams(m) if m.starts_with("expires: ")),
                "{bad}: {err:?}"
            );
        }
    }

    #[test]
    fn transforms_are_checked_and_normalised_as_a_delivery_reads_them() {
        let asked = parse_query(&pairs("W=800&f=webp&expires=60&utm=x&q=70&exp=1&sig=s")).unwrap();
        assert_eq!(asked.expires, 60);
        let names: Vec<(&str, &str)> = asked
            .transform
            .iter()
            .map(|(n, v)| (n.as_str(), v.as_str()))
            .collect();
        assert_eq!(names, [("format", "webp"), ("quality", "70"), ("w", "800")]);
        assert!(parse_query(&pairs("v=2")).unwrap().transform.is_empty());
        assert!(parse_query(&pairs("f=avif")).is_ok());
        for (bad, param) in [
            ("w=0", "w"),
            ("h=8193", "h"),
            ("dpr=4", "dpr"),
            ("f=tiff", "format"),
            ("q=101", "quality"),
            ("rt=45", "rotate"),
            ("g=up", "gravity"),
            ("bg=red", "bg"),
            ("crop=face", "crop"),
            ("w=8192&h=8192", "w"),
        ] {
            let err = parse_query(&pairs(bad)).unwrap_err();
            assert!(
                matches!(&err, ApiError::InvalidParams(m) if m.starts_with(&format!("{param}: "))),
                "{bad}: {err:?}"
            );
        }
    }
}
