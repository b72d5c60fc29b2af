//! A local stand-in for API Gateway: a hyper server on 127.0.0.1 that matches
//! [`shared::routes::ROUTES`], fills in the path parameters and hands a `lambda_http::Request` to the
//! function that serves it, in this process. Suites use it to reach the functions over real HTTP
//! (reqwest, the CLI client, schemathesis through the `local-api` binary).
//!
//! What it does not imitate: the gateway's payload limits (each function applies its own) and the
//! Lambda event encoding (`tests/tests/events.rs` and `scripts/invoke-events.sh` cover that).

use crate::dispatch;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use lambda_http::{Body, RequestExt};
use shared::routes::ROUTES;
use shared::{ApiError, Deps};
use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::rc::Rc;
use tokio::net::TcpListener;

/// The function for `method path`, and its path parameters, as API Gateway would route it. A path
/// that matches with another method still goes to a function of that path, which answers 404.
pub fn route(method: &str, path: &str) -> Option<(&'static str, HashMap<String, String>)> {
    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let mut same_path = None;
    for route in ROUTES {
        let template: Vec<&str> = route.path.trim_start_matches('/').split('/').collect();
        if template.len() != segments.len() {
            continue;
        }
        let mut params = HashMap::new();
        let matches = template.iter().zip(&segments).all(|(t, s)| {
            match t.strip_prefix('{').and_then(|t| t.strip_suffix('}')) {
                Some(name) => {
                    params.insert(name.to_owned(), (*s).to_owned());
                    !s.is_empty()
                }
                None => t == s,
            }
        });
        if !matches {
            continue;
        }
        if route.method == method {
            return Some((route.function, params));
        }
        same_path.get_or_insert((route.function, params));
    }
    same_path
}

async fn handle<D: AsRef<Deps>>(
    deps: Rc<D>,
    req: hyper::Request<Incoming>,
) -> Result<hyper::Response<Full<Bytes>>, Infallible> {
    let (parts, body) = req.into_parts();
    let bytes = body
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let body = if bytes.is_empty() {
        Body::Empty
    } else {
        Body::Binary(bytes.into())
    };
    let response = match route(parts.method.as_str(), parts.uri.path()) {
        Some((function, params)) => {
            // The query stays in the URI, where the functions read it.
            let req =
                lambda_http::http::Request::from_parts(parts, body).with_path_parameters(params);
            dispatch((*deps).as_ref(), function, req).await
        }
        None => shared::http::error_response(&ApiError::NotFound),
    };
    let (parts, body) = response.into_parts();
    let bytes = match body {
        Body::Empty => Bytes::new(),
        Body::Text(text) => Bytes::from(text),
        Body::Binary(bytes) => Bytes::from(bytes),
        other => panic!("unexpected body {other:?}"),
    };
    Ok(hyper::Response::from_parts(parts, Full::new(bytes)))
}

/// Serves `deps` on `listener` until the task is dropped. Call it inside a `tokio::task::LocalSet`:
/// handlers borrow their dependencies and are not `Send`.
pub async fn serve<D: AsRef<Deps> + 'static>(listener: TcpListener, deps: Rc<D>) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            return;
        };
        let deps = deps.clone();
        tokio::task::spawn_local(async move {
            let service = service_fn(move |req| handle(deps.clone(), req));
            let _ = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

/// Binds a free port on 127.0.0.1 and serves `deps` there in the background of the current
/// `LocalSet`, until the test ends.
pub async fn start<D: AsRef<Deps> + 'static>(deps: Rc<D>) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("local address");
    tokio::task::spawn_local(serve(listener, deps));
    addr
}
