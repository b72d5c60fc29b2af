//! The entry point every function's `main` uses: the Lambda runtime, with lambda_http's own event
//! reading and response writing on the normal path, and an answer of our own for an event that
//! lambda_http cannot turn into a request.
//!
//! `lambda_http::run` fails the invocation when an event does not deserialize (a header value
//! that `http` refuses, such as one holding a control character, fails the whole event), and
//! panics while converting one that does when its URL is one `http` refuses (a query string over
//! 65,534 bytes) or its base64 body does not decode. Either way the Lambda invocation fails and
//! API Gateway answers its own bare 500, which is neither the error envelope nor the client's
//! fault. Here such an event gets 400 INVALID_PARAMS in the envelope (docs/API.md#errors),
//! logged as a refused request of its function like any other.

use crate::ApiError;
use crate::http::log_refused;
use lambda_http::aws_lambda_events::apigw::ApiGatewayV2httpResponse;
use lambda_http::aws_lambda_events::encodings::Body as EventBody;
use lambda_http::http::{HeaderName, HeaderValue};
use lambda_http::request::LambdaRequest;
use lambda_http::{Adapter, Body, LambdaEvent, Request, Response, Service, service_fn};
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::value::RawValue;
use std::future::Future;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::time::Instant;

/// The payload of one invocation: an event lambda_http reads, or one it does not, kept as JSON.
pub enum Event {
    Http(Box<LambdaRequest>),
    Unreadable(Box<RawValue>),
}

impl<'de> Deserialize<'de> for Event {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = Box::<RawValue>::deserialize(deserializer)?;
        Ok(match serde_json::from_str::<LambdaRequest>(raw.get()) {
            Ok(request) => Event::Http(Box::new(request)),
            Err(_) => Event::Unreadable(raw),
        })
    }
}

/// What goes back to the runtime: lambda_http's response for the event's source, or ours in
/// payload format 2.0 (the deployed HTTP API's; API Gateway's REST and ALB integrations read the
/// same four fields).
#[derive(Serialize)]
#[serde(untagged)]
pub enum Answer<R> {
    Http(R),
    Refused(Box<ApiGatewayV2httpResponse>),
}

/// Runs `function` on the Lambda runtime until the runtime stops it.
pub async fn run<H, F>(function: &'static str, handler: H) -> Result<(), lambda_http::Error>
where
    H: Fn(Request) -> F,
    F: Future<Output = Result<Response<Body>, lambda_http::Error>> + Send,
{
    lambda_http::lambda_runtime::run(service_fn(|event: LambdaEvent<Event>| {
        answer(function, event, &handler)
    }))
    .await
}

/// One invocation of `function`: the event handed to `handler` as lambda_http hands it, or
/// refused with 400 when it cannot be read as an HTTP request.
pub async fn answer<H, F>(
    function: &'static str,
    event: LambdaEvent<Event>,
    handler: &H,
) -> Result<Answer<impl Serialize>, lambda_http::Error>
where
    H: Fn(Request) -> F,
    F: Future<Output = Result<Response<Body>, lambda_http::Error>> + Send,
{
    let started = Instant::now();
    let LambdaEvent { payload, context } = event;
    let request_id = context.request_id.clone();
    let refusal = match payload {
        Event::Http(request) => {
            let url_bytes = url_len(&request);
            let mut adapter = Adapter::from(service_fn(|req: Request| handler(req)));
            // The conversion runs inside `call`, before the handler's future exists, so this
            // catches lambda_http's conversion panics and never a handler's.
            match catch_unwind(AssertUnwindSafe(|| {
                adapter.call(LambdaEvent::new(*request, context))
            })) {
                Ok(response) => return response.await.map(Answer::Http),
                Err(_) => unconvertible(url_bytes),
            }
        }
        Event::Unreadable(raw) => unreadable(raw.get()),
    };
    let response = log_refused(function, &request_id, None, started, refusal);
    Ok(Answer::Refused(Box::new(to_event_response(response))))
}

/// The length of the path and query lambda_http will build a URI from.
fn url_len(request: &LambdaRequest) -> usize {
    match request {
        LambdaRequest::ApiGatewayV2(event) => {
            event.raw_path.as_deref().map_or(0, str::len)
                + event.raw_query_string.as_deref().map_or(0, str::len)
        }
        LambdaRequest::ApiGatewayV1(event) => event.path.as_deref().map_or(0, str::len),
        LambdaRequest::Alb(event) => event.path.as_deref().map_or(0, str::len),
        _ => 0,
    }
}

/// The longest URI `http` accepts.
const MAX_URL_BYTES: usize = u16::MAX as usize - 1;

/// Why lambda_http's conversion of a deserialized event failed: its URL or its body.
fn unconvertible(url_bytes: usize) -> ApiError {
    if url_bytes > MAX_URL_BYTES {
        return ApiError::InvalidParams(format!(
            "query: the URL is {url_bytes} bytes; at most {MAX_URL_BYTES} are read"
        ));
    }
    ApiError::InvalidParams(
        "the request cannot be read: its URL is malformed or its base64 body does not decode"
            .to_owned(),
    )
}

/// Why an event did not deserialize, found with `http`'s own checks on its headers.
fn unreadable(raw: &str) -> ApiError {
    let event: serde_json::Value = serde_json::from_str(raw).unwrap_or_default();
    let headers = event["headers"]
        .as_object()
        .into_iter()
        .chain(event["multiValueHeaders"].as_object());
    for (name, value) in headers.flatten() {
        let shown: String = name.chars().take(64).collect();
        if HeaderName::from_bytes(name.as_bytes()).is_err() {
            return ApiError::invalid(&format!("header {shown:?}"), "is not a valid header name");
        }
        let values: Vec<&str> = match value {
            serde_json::Value::Array(items) => items.iter().filter_map(|v| v.as_str()).collect(),
            other => other.as_str().into_iter().collect(),
        };
        if values.iter().any(|v| HeaderValue::from_str(v).is_err()) {
            return ApiError::invalid(
                &format!("header {shown}"),
                "holds a character HTTP does not allow in a header value (a control character)",
            );
        }
    }
    ApiError::InvalidParams(
        "the request cannot be read as an HTTP request from API Gateway".to_owned(),
    )
}

fn to_event_response(response: Response<Body>) -> ApiGatewayV2httpResponse {
    let (parts, body) = response.into_parts();
    let mut out = ApiGatewayV2httpResponse::default();
    out.status_code = i64::from(parts.status.as_u16());
    out.headers = parts.headers;
    out.body = match body {
        Body::Text(text) => Some(EventBody::Text(text)),
        Body::Binary(bytes) => Some(EventBody::Text(
            String::from_utf8_lossy(&bytes).into_owned(),
        )),
        _ => None,
    };
    out
}
