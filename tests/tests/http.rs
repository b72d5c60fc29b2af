//! The five functions over real HTTP, the way a client (or curl) meets them: a hyper server on
//! `127.0.0.1:0` plays API Gateway (it matches `shared::routes::ROUTES`, fills in the path
//! parameters and hands a `lambda_http::Request` to the function), and reqwest is the client.

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use imgbt_tests::{TestApp, dispatch, fixture};
use lambda_http::{Body, RequestExt};
use serde_json::{Value, json};
use shared::ApiError;
use shared::routes::ROUTES;
use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::rc::Rc;
use tokio::net::TcpListener;

/// The function for `method path`, and its path parameters, as API Gateway would route it. A path
/// that matches with another method still goes to a function of that path, which answers 404.
fn route(method: &str, path: &str) -> Option<(&'static str, HashMap<String, String>)> {
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

async fn gateway(
    app: Rc<TestApp>,
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
        Body::Binary(bytes.to_vec())
    };
    let response = match route(parts.method.as_str(), parts.uri.path()) {
        Some((function, params)) => {
            let req =
                lambda_http::http::Request::from_parts(parts, body).with_path_parameters(params);
            dispatch(&app.deps, function, req).await
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

/// Serves `app` on a free local port until the test ends.
async fn start(app: Rc<TestApp>) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("local address");
    tokio::task::spawn_local(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            let app = app.clone();
            tokio::task::spawn_local(async move {
                let service = service_fn(move |req| gateway(app.clone(), req));
                let _ = http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    addr
}

fn assert_json(response: &reqwest::Response) {
    let ct = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok());
    assert_eq!(ct, Some("application/json"));
}

async fn error_code(response: reqwest::Response) -> (u16, Value) {
    assert_json(&response);
    let status = response.status().as_u16();
    let body: Value = response.json().await.expect("JSON error body");
    assert_eq!(body["error"]["status"], status);
    (status, body["error"]["code"].clone())
}

#[tokio::test]
async fn a_client_uploads_lists_gets_patches_and_deletes_over_http() {
    let local = tokio::task::LocalSet::new();
    local.run_until(walkthrough()).await;
}

async fn walkthrough() {
    let app = Rc::new(TestApp::new().await);
    let addr = start(app.clone()).await;
    let base = format!("http://{addr}/api/v1/vaults/{}/assets", app.vault.vault_id);
    let (sk, pk) = (app.sk().to_owned(), app.pk().to_owned());
    let client = reqwest::Client::new();

    // curl -F partition=marketing -F file=@photo.png …
    let png = fixture("tiny.png");
    let form = reqwest::multipart::Form::new()
        .text("partition", "marketing")
        .text("collection", "blog")
        .text("channel", "hero-images")
        .text("metadata", r#"{"alt":"Hero"}"#)
        .text("tags", r#"["hero","blog"]"#)
        .part(
            "file",
            reqwest::multipart::Part::bytes(png.clone())
                .file_name("photo.png")
                .mime_str("image/png")
                .unwrap(),
        );
    let response = client
        .post(&base)
        .bearer_auth(&sk)
        .multipart(form)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 201);
    assert_json(&response);
    let record: Value = response.json().await.unwrap();
    let asset = record["id"].as_str().unwrap().to_owned();
    assert_eq!(record["filename"], "photo.png");
    assert_eq!(record["size"], png.len());
    assert_eq!(
        (record["width"].clone(), record["height"].clone()),
        (json!(3), json!(2))
    );
    assert_eq!(record["metadata"], r#"{"alt":"Hero"}"#);
    assert_eq!(record["tags"], r#"["hero","blog"]"#);
    assert_eq!(
        app.read_object(record["r2_key"].as_str().unwrap()),
        Some(png)
    );

    let response = client
        .get(&base)
        .query(&[("limit", "7"), ("channel", "hero-images")])
        .bearer_auth(&pk)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    assert_json(&response);
    let page: Value = response.json().await.unwrap();
    assert_eq!(
        page,
        json!({ "data": [record.clone()], "cursor": null, "has_more": false })
    );

    let url = format!("{base}/{asset}");
    let response = client.get(&url).bearer_auth(&pk).send().await.unwrap();
    assert_eq!(response.status().as_u16(), 200);
    assert_eq!(response.json::<Value>().await.unwrap(), record);

    let patch = json!({ "metadata": { "alt": null, "credit": "me" }, "tags": ["final"] });
    let response = client
        .patch(&url)
        .bearer_auth(&sk)
        .json(&patch)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    assert_json(&response);
    let updated: Value = response.json().await.unwrap();
    assert_eq!(updated["metadata"], r#"{"credit":"me"}"#);
    assert_eq!(updated["tags"], r#"["final"]"#);
    assert!(updated["updated_at"].as_str() > record["updated_at"].as_str());

    // Refusals travel over the wire as the envelope, with their headers.
    let response = client.delete(&url).send().await.unwrap();
    assert_eq!(
        response
            .headers()
            .get("www-authenticate")
            .map(|v| v.as_bytes()),
        Some(&b"Bearer"[..])
    );
    assert_eq!(error_code(response).await, (401, json!("UNAUTHORIZED")));
    let response = client.delete(&url).bearer_auth(&pk).send().await.unwrap();
    assert_eq!(error_code(response).await, (403, json!("FORBIDDEN")));
    let response = client.put(&url).bearer_auth(&sk).send().await.unwrap();
    assert_eq!(error_code(response).await, (404, json!("NOT_FOUND")));

    let response = client.delete(&url).bearer_auth(&sk).send().await.unwrap();
    assert_eq!(response.status().as_u16(), 204);
    assert!(response.bytes().await.unwrap().is_empty());
    assert!(
        app.object_files().is_empty(),
        "the object is gone from the directory"
    );

    let response = client.get(&url).bearer_auth(&sk).send().await.unwrap();
    assert_eq!(error_code(response).await, (404, json!("ASSET_NOT_FOUND")));
    let response = client.delete(&url).bearer_auth(&sk).send().await.unwrap();
    assert_eq!(error_code(response).await, (404, json!("ASSET_NOT_FOUND")));
}
