//! Reading requests and writing responses, the same way in every function.

use crate::ApiError;
use crate::auth::Credential;
use crate::calls;
use crate::routes::{self, Route, Target};
use lambda_http::http::{HeaderValue, StatusCode, header};
use lambda_http::{Body, Request, RequestExt, Response};
use std::future::Future;
use std::time::Instant;

pub const JSON: &str = "application/json";

/// Runs one request of `function` through `run`, and turns its outcome into exactly one response
/// and one log line. Errors become the envelope of docs/API.md#errors; internal causes go to the
/// log only.
pub async fn serve<F, Fut>(
    function: &'static str,
    req: Request,
    run: F,
) -> Result<Response<Body>, lambda_http::Error>
where
    F: FnOnce(Request) -> Fut,
    Fut: Future<Output = Result<Response<Body>, ApiError>>,
{
    let started = Instant::now();
    let request_id = req
        .lambda_context_ref()
        .map(|c| c.request_id.clone())
        .unwrap_or_default();
    let vault = routes::vault_of(&req);
    let (outcome, d1_calls, r2_calls) = calls::scope(run(req)).await;
    let line = Line {
        function,
        request_id: &request_id,
        vault: vault.as_deref(),
        started,
        d1_calls,
        r2_calls,
    };
    Ok(line.log(outcome))
}

/// Answers a request of `function` that never reached its handler (see [`crate::entry`]) with
/// `err`'s envelope, and logs it as [`serve`] logs any request.
pub fn log_refused(
    function: &'static str,
    request_id: &str,
    vault: Option<&str>,
    started: Instant,
    err: ApiError,
) -> Response<Body> {
    let line = Line {
        function,
        request_id,
        vault,
        started,
        d1_calls: 0,
        r2_calls: 0,
    };
    line.log(Err(err))
}

/// What the one log line of a request says besides its outcome.
struct Line<'a> {
    function: &'static str,
    request_id: &'a str,
    vault: Option<&'a str>,
    started: Instant,
    d1_calls: u32,
    r2_calls: u32,
}

impl Line<'_> {
    fn log(self, outcome: Result<Response<Body>, ApiError>) -> Response<Body> {
        let Line {
            function,
            request_id,
            vault,
            started,
            d1_calls,
            r2_calls,
        } = self;
        let latency_ms = started.elapsed().as_secs_f64() * 1000.0;
        let status = match &outcome {
            Ok(response) => response.status().as_u16(),
            Err(err) => err.status().as_u16(),
        };
        // One line per request. Never the key, the body or a header: ids, counts and outcome only.
        match &outcome {
            Ok(_) => tracing::info!(
                request_id, function, vault, status, latency_ms, d1_calls, r2_calls, "request"
            ),
            Err(err) => match err.cause() {
                Some(cause) => tracing::error!(
                    request_id,
                    function,
                    vault,
                    status,
                    latency_ms,
                    d1_calls,
                    r2_calls,
                    code = err.code(),
                    cause,
                    "request failed"
                ),
                None => tracing::info!(
                    request_id,
                    function,
                    vault,
                    status,
                    latency_ms,
                    d1_calls,
                    r2_calls,
                    code = err.code(),
                    "request refused"
                ),
            },
        }
        outcome.unwrap_or_else(|err| error_response(&err))
    }
}

/// The ids `route` addresses in `req` (404 NOT_FOUND for another route), and the presented key
/// (401 when there is none, or more than one `Authorization` header: which key is meant would be
/// a guess). Neither looks at the body.
pub fn begin(req: &Request, route: Route) -> Result<(Target, Credential), ApiError> {
    let target = routes::resolve(req, route)?;
    let mut presented = req.headers().get_all(header::AUTHORIZATION).iter();
    let first = presented.next().map(HeaderValue::as_bytes);
    if presented.next().is_some() {
        return Err(ApiError::Unauthorized);
    }
    let credential = Credential::from_header(first)?;
    Ok((target, credential))
}

pub fn json_response(
    status: StatusCode,
    body: &impl serde::Serialize,
) -> Result<Response<Body>, ApiError> {
    let text = serde_json::to_string(body).map_err(ApiError::internal)?;
    Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, JSON)
        .body(Body::from(text))
        .map_err(ApiError::internal)
}

pub fn no_content() -> Result<Response<Body>, ApiError> {
    Response::builder()
        .status(StatusCode::NO_CONTENT)
        .body(Body::Empty)
        .map_err(ApiError::internal)
}

pub fn error_response(err: &ApiError) -> Response<Body> {
    let mut builder = Response::builder()
        .status(err.status())
        .header(header::CONTENT_TYPE, JSON);
    if matches!(err, ApiError::Unauthorized) {
        builder = builder.header(header::WWW_AUTHENTICATE, "Bearer");
    }
    if let ApiError::RangeNotSatisfiable(size) = err {
        builder = builder.header(header::CONTENT_RANGE, format!("bytes */{size}"));
    }
    builder
        .body(Body::from(err.envelope().to_string()))
        .unwrap_or_else(|_| Response::new(Body::Empty))
}

/// The request body as bytes. API Gateway's base64 bodies arrive here already decoded.
pub fn body_bytes(req: &Request) -> &[u8] {
    match req.body() {
        Body::Empty => &[],
        Body::Text(text) => text.as_bytes(),
        Body::Binary(bytes) => bytes,
        _ => &[],
    }
}

/// The media type of the request (`type/subtype`, lowercase), without parameters.
pub fn content_type(req: &Request) -> Option<String> {
    let value = req.headers().get(header::CONTENT_TYPE)?.to_str().ok()?;
    Some(
        value
            .split(';')
            .next()
            .unwrap_or_default()
            .trim()
            .to_ascii_lowercase(),
    )
}

/// The query string as decoded pairs, in order, repeats kept. Read from the URI, which every event
/// source fills in; `queryStringParameters` is the fallback for events that only carry those.
pub fn query_pairs(req: &Request) -> Vec<(String, String)> {
    match req.uri().query() {
        Some(query) if !query.is_empty() => form_urlencoded::parse(query.as_bytes())
            .into_owned()
            .collect(),
        _ => req
            .query_string_parameters_ref()
            .map(|map| {
                map.iter()
                    .map(|(k, v)| (k.to_owned(), v.to_owned()))
                    .collect()
            })
            .unwrap_or_default(),
    }
}

/// `scheme://host[/stage]` of the API as the client reached it: `X-Forwarded-Proto` (default
/// `http`) and `Host` (else the request URI's authority, else `localhost:9000`, the local API's
/// default), and API Gateway's stage unless it is `$default` (whose URLs have no stage segment).
/// A `Host` that is not an authority is not copied: the URL stays a valid URL.
pub fn origin(req: &Request) -> String {
    let header = |name: &str| {
        req.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
            .filter(|v| !v.is_empty())
    };
    let proto = header("x-forwarded-proto")
        .and_then(|p| p.split(',').next())
        .map(str::trim)
        .filter(|p| matches!(*p, "http" | "https"))
        .unwrap_or("http");
    let host = header("host")
        .filter(|host| host.parse::<lambda_http::http::uri::Authority>().is_ok())
        .map(str::to_owned)
        .or_else(|| req.uri().authority().map(|a| a.to_string()))
        .unwrap_or_else(|| "localhost:9000".to_owned());
    use lambda_http::request::RequestContext;
    let stage = match req.request_context_ref() {
        Some(RequestContext::ApiGatewayV2(context)) => context.stage.clone(),
        Some(RequestContext::ApiGatewayV1(context)) => context.stage.clone(),
        _ => None,
    };
    let stage = stage
        .filter(|s| !s.is_empty() && s != "$default")
        .map(|s| {
            percent_encoding::utf8_percent_encode(&s, percent_encoding::NON_ALPHANUMERIC)
                .to_string()
        })
        .map_or(String::new(), |s| format!("/{s}"));
    format!("{proto}://{host}{stage}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::{KeyKind, generate_key};

    fn list_request(authorization: &[&str]) -> Request {
        let mut req = lambda_http::http::Request::builder()
            .method("GET")
            .uri("/api/v1/vaults/vault_1/assets")
            .body(Body::Empty)
            .unwrap();
        for value in authorization {
            req.headers_mut()
                .append(header::AUTHORIZATION, HeaderValue::from_str(value).unwrap());
        }
        req
    }

    #[test]
    fn begin_takes_exactly_one_authorization_header() {
        let list = routes::route_of("list");
        let own = format!("Bearer {}", generate_key(KeyKind::Secret));
        let other = format!("Bearer {}", generate_key(KeyKind::Secret));
        let (target, _) = begin(&list_request(&[&own]), list).unwrap();
        assert_eq!(target.vault_id, "vault_1");
        for headers in [
            &[][..],
            &[own.as_str(), own.as_str()],
            &[own.as_str(), other.as_str()],
        ] {
            assert!(
                matches!(
                    begin(&list_request(headers), list),
                    Err(ApiError::Unauthorized)
                ),
                "{headers:?}"
            );
        }
    }

    #[test]
    fn the_origin_is_the_forwarded_one_with_a_named_stage() {
        use lambda_http::aws_lambda_events::apigw::ApiGatewayV2httpRequestContext;
        let request = |stage: Option<&str>| {
            let mut req = lambda_http::http::Request::builder()
                .uri("/prod/api/v1/vaults/v/assets/a/url")
                .header("host", "abc.execute-api.eu-west-1.amazonaws.com")
                .header("x-forwarded-proto", "https")
                .body(Body::Empty)
                .unwrap();
            let mut context = ApiGatewayV2httpRequestContext::default();
            context.stage = stage.map(str::to_owned);
            req.extensions_mut()
                .insert(lambda_http::request::RequestContext::ApiGatewayV2(context));
            req
        };
        assert_eq!(
            origin(&request(Some("prod"))),
            "https://abc.execute-api.eu-west-1.amazonaws.com/prod"
        );
        assert_eq!(
            origin(&request(Some("$default"))),
            "https://abc.execute-api.eu-west-1.amazonaws.com"
        );
        assert_eq!(
            origin(&request(None)),
            "https://abc.execute-api.eu-west-1.amazonaws.com"
        );
        let bare = lambda_http::http::Request::builder()
            .uri("/api/v1/vaults/v/assets/a/url")
            .header("host", "a\"b")
            .body(Body::Empty)
            .unwrap();
        assert_eq!(origin(&bare), "http://localhost:9000");
    }
}
