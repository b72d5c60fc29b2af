//! Input that `cargo lambda watch` refuses before a function sees it, sent as API Gateway (HTTP
//! API, payload 2.0) would hand it on: the event's JSON, through the functions' own entry point
//! ([`shared::entry`], via [`imgbt_tests::invoke`]), read back as API Gateway would read the
//! answer.
//!
//! - A base64 body that is not UTF-8: 400 on the routes that read a JSON or multipart body; the
//!   file itself on `receive` (any bytes are a file); ignored, as any body is, on the routes that
//!   take none.
//! - A header value with a control character: `http` refuses it, so lambda_http cannot read the
//!   event at all; 400 naming the header, on every route.
//! - A long query string: 10 KB (about API Gateway's limit on the request line and headers
//!   together) is read as usual: 400 on `list`, which refuses unknown and invalid parameters,
//!   ignored elsewhere (no other route takes a parameter besides `receive`'s `token`); 100 KB
//!   (which a function URL or another caller could send) is over the longest URL `http` builds,
//!   so lambda_http cannot convert the event: 400 on every route.
//!
//! Every route of `shared::functions::ROUTES` is covered; a new route fails here until its
//! expectations are written down.

use base64::Engine;
use imgbt_tests::{Form, Reply, TestApp, invoke, upload_request};
use serde_json::json;
use shared::routes::{ROUTES, Route};
use std::sync::atomic::{AtomicUsize, Ordering};

/// Bytes that are not UTF-8 (a lone continuation byte, an invalid lead byte, a NUL).
const NOT_UTF8: &[u8] = &[0xff, 0xfe, 0x00, 0x80, 0xc3, 0x28, b'{', 0xa0, 0xa1];

static SERIAL: AtomicUsize = AtomicUsize::new(0);

/// The ids a request addresses, fresh for each request so that no case sees another's effects.
struct Ids {
    asset: String,
    /// The asset's filename (its hierarchy is `raw/events/assets`), for its delivery URL.
    filename: String,
    upload: String,
    /// The upload URL's `token` query parameter.
    token: String,
    /// A live public key of the vault, for `key_revoke`.
    key: String,
}

/// A fresh asset, a fresh public key, and a fresh upload of [`NOT_UTF8`]'s size (its bytes already sent when
/// `received`).
async fn fresh(app: &TestApp, received: bool) -> Ids {
    let n = SERIAL.fetch_add(1, Ordering::Relaxed);
    let filename = format!("a{n}.txt");
    let asset = app
        .create(&Form::tiny("raw", "events", "assets", &filename))
        .await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let body = upload_request(
        "raw",
        "events",
        "uploads",
        &format!("u{n}.bin"),
        NOT_UTF8.len(),
    );
    let ticket = app.start_upload(app.sk(), &body).await.ok(201);
    if received {
        let put = app.put_upload(&ticket, NOT_UTF8.to_vec()).await;
        assert_eq!(put.status.as_u16(), 200, "{}", put.snippet());
    }
    let url = ticket["url"].as_str().unwrap();
    let token = url
        .split_once("token=")
        .map(|(_, t)| t.split('&').next().unwrap().to_owned())
        .expect("the local upload URL carries its token");
    let key = shared::admin::create_key(
        &*app.deps.db,
        &app.deps.clock,
        &app.vault.vault_id,
        shared::auth::KeyKind::Public,
        "raw events",
    )
    .await
    .unwrap()
    .unwrap()
    .key_id;
    Ids {
        asset,
        filename,
        upload: ticket["upload_id"].as_str().unwrap().to_owned(),
        token,
        key,
    }
}

/// A request body as API Gateway puts it in the event.
enum EventBody {
    None,
    Text(String),
    /// Base64-encoded, `isBase64Encoded: true`.
    Bytes(Vec<u8>),
    /// Flagged base64 but not base64 (API Gateway never sends it; lambda_http panics on it).
    NotBase64,
}

/// One request, before it becomes an event.
struct Spec {
    route: Route,
    query: String,
    headers: Vec<(String, String)>,
    body: EventBody,
}

impl Spec {
    /// The request a client makes on `route` that succeeds: the route's own key, body and query.
    fn valid(app: &TestApp, route: Route, ids: &Ids) -> Spec {
        let n = SERIAL.fetch_add(1, Ordering::Relaxed);
        let mut headers = vec![];
        if route.function != "receive" {
            headers.push(("authorization".into(), format!("Bearer {}", app.sk())));
        }
        let mut query = String::new();
        let body = match route.function {
            "upload" => {
                let form = Form::tiny("raw", "events", "valid", &format!("v{n}.txt"));
                headers.push(("content-type".into(), form.content_type()));
                EventBody::Bytes(form.to_bytes())
            }
            "update" => {
                headers.push(("content-type".into(), "application/json".into()));
                EventBody::Text(json!({"metadata": {"n": n}}).to_string())
            }
            "uploads" => {
                headers.push(("content-type".into(), "application/json".into()));
                let body = upload_request("raw", "events", "started", &format!("s{n}.bin"), 3);
                EventBody::Text(body.to_string())
            }
            "key_create" => {
                headers.push(("content-type".into(), "application/json".into()));
                EventBody::Text(json!({"label": format!("k{n}"), "type": "public"}).to_string())
            }
            "vault_update" => {
                headers.push(("content-type".into(), "application/json".into()));
                EventBody::Text(json!({"name": format!("v{n}")}).to_string())
            }
            "receive" => {
                query = format!("token={}", ids.token);
                headers.push(("content-type".into(), "application/octet-stream".into()));
                EventBody::Bytes(NOT_UTF8.to_vec())
            }
            _ => EventBody::None,
        };
        Spec {
            route,
            query,
            headers,
            body,
        }
    }

    fn header(mut self, name: &str, value: &str) -> Spec {
        self.headers.retain(|(n, _)| n != name);
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }

    fn body(mut self, body: EventBody) -> Spec {
        self.body = body;
        self
    }

    /// `extra` appended to the query.
    fn query(mut self, extra: &str) -> Spec {
        if !self.query.is_empty() {
            self.query.push('&');
        }
        self.query.push_str(extra);
        self
    }

    /// The event API Gateway sends for this request (as in `events/*.json`).
    fn event(&self, app: &TestApp, ids: &Ids) -> String {
        let route = self.route;
        let path = route
            .path
            .replace("{vaultId}", &app.vault.vault_id)
            .replace("{assetId}", &ids.asset)
            .replace("{uploadId}", &ids.upload)
            .replace("{keyId}", &ids.key)
            .replace("{partition}", "raw")
            .replace("{collection}", "events")
            .replace("{channel}", "assets")
            .replace("{filename}", &ids.filename);
        let mut params = json!({"vaultId": app.vault.vault_id});
        if route.path.contains("{filename}") {
            params["partition"] = json!("raw");
            params["collection"] = json!("events");
            params["channel"] = json!("assets");
            params["filename"] = json!(ids.filename);
        }
        if route.path.contains("{assetId}") {
            params["assetId"] = json!(ids.asset);
        }
        if route.path.contains("{uploadId}") {
            params["uploadId"] = json!(ids.upload);
        }
        if route.path.contains("{keyId}") {
            params["keyId"] = json!(ids.key);
        }
        let host = "a1b2c3d4e5.execute-api.eu-west-1.amazonaws.com";
        let mut headers = json!({
            "host": host,
            "user-agent": "curl/8.5.0",
            "x-forwarded-proto": "https",
        });
        for (name, value) in &self.headers {
            headers[name] = json!(value);
        }
        let route_key = format!("{} {}", route.method, route.path);
        let mut event = json!({
            "version": "2.0",
            "routeKey": route_key,
            "rawPath": path,
            "rawQueryString": self.query,
            "headers": headers,
            "requestContext": {
                "accountId": "123456789012",
                "apiId": "a1b2c3d4e5",
                "domainName": host,
                "domainPrefix": "a1b2c3d4e5",
                "http": {
                    "method": route.method,
                    "path": path,
                    "protocol": "HTTP/1.1",
                    "sourceIp": "203.0.113.7",
                    "userAgent": "curl/8.5.0"
                },
                "requestId": "RawEventsTest=",
                "routeKey": route_key,
                "stage": "$default",
                "time": "18/Nov/2026:10:00:00 +0000",
                "timeEpoch": 1_795_000_000_000_u64
            },
            "pathParameters": params,
            "isBase64Encoded": false
        });
        match &self.body {
            EventBody::None => {}
            EventBody::Text(text) => event["body"] = json!(text),
            EventBody::Bytes(bytes) => {
                event["body"] = json!(base64::engine::general_purpose::STANDARD.encode(bytes));
                event["isBase64Encoded"] = json!(true);
            }
            EventBody::NotBase64 => {
                event["body"] = json!("this is not base64: ¿{}!");
                event["isBase64Encoded"] = json!(true);
            }
        }
        event.to_string()
    }
}

/// The status a valid request on `function` gets.
fn success(function: &str) -> u16 {
    match function {
        "asset_url" | "delivery_rotate" => 200,
        "upload" | "uploads" | "complete" | "key_create" => 201,
        "delete" | "key_revoke" => 204,
        "list" | "get" | "update" | "content" | "receive" | "keys_list" | "vault_get"
        | "vault_update" | "deliver" => 200,
        other => panic!("{other}: a new route; write down what a valid request gets"),
    }
}

/// Sends `spec` (made by `make` from fresh ids) to its route's function.
async fn send(app: &TestApp, route: Route, make: impl FnOnce(&Ids) -> Spec) -> Reply {
    let ids = fresh(app, route.function == "complete").await;
    let spec = make(&ids);
    let event = spec.event(app, &ids);
    invoke(&app.deps, route.function, &event, "raw-events").await
}

fn label(route: Route) -> String {
    format!("{} {}", route.method, route.path)
}

#[tokio::test]
async fn every_route_answers_a_valid_event_through_the_entry_point() {
    let app = TestApp::new().await;
    for route in ROUTES {
        let reply = send(&app, route, |ids| Spec::valid(&app, route, ids)).await;
        assert_eq!(
            reply.status.as_u16(),
            success(route.function),
            "{}: {}",
            label(route),
            reply.snippet()
        );
    }
}

/// A multipart upload whose `partition` field is not UTF-8.
fn form_with_a_non_utf8_field() -> (String, Vec<u8>) {
    let form = Form::tiny("PLACEHOLDER", "events", "bad", "bad.txt");
    let bytes = form.to_bytes();
    let at = bytes
        .windows(b"PLACEHOLDER".len())
        .position(|w| w == b"PLACEHOLDER")
        .unwrap();
    let mut out = bytes[..at].to_vec();
    out.extend_from_slice(NOT_UTF8);
    out.extend_from_slice(&bytes[at + b"PLACEHOLDER".len()..]);
    (form.content_type(), out)
}

#[tokio::test]
async fn a_body_that_is_not_utf8_is_refused_where_it_is_read_and_ignored_elsewhere() {
    let app = TestApp::new().await;
    for route in ROUTES {
        let reply = send(&app, route, |ids| {
            Spec::valid(&app, route, ids).body(EventBody::Bytes(NOT_UTF8.to_vec()))
        })
        .await;
        let what = label(route);
        match route.function {
            // Neither reads a body: one that comes is not read.
            "asset_url" | "delivery_rotate" => assert_eq!(
                reply.status.as_u16(),
                success(route.function),
                "{what}: {}",
                reply.snippet()
            ),
            // JSON bodies: not UTF-8 is not JSON.
            "update" | "uploads" | "key_create" | "vault_update" => {
                reply.invalid("body");
            }
            // Not a multipart body at all.
            "upload" => {
                reply.error(400, "INVALID_PARAMS");
            }
            // The bytes are the file: any bytes are.
            "receive" => assert_eq!(reply.status.as_u16(), 200, "{what}: {}", reply.snippet()),
            // No body is defined for these routes: one that comes is not read.
            "list" | "get" | "delete" | "content" | "complete" | "keys_list" | "key_revoke"
            | "vault_get" | "deliver" => assert_eq!(
                reply.status.as_u16(),
                success(route.function),
                "{what}: {}",
                reply.snippet()
            ),
            other => panic!("{other}: a new route; say what a body that is not UTF-8 gets"),
        }
    }

    // Multipart: a text field that is not UTF-8, in an otherwise valid form.
    let upload = shared::routes::route_of("upload");
    let (content_type, bytes) = form_with_a_non_utf8_field();
    let reply = send(&app, upload, |ids| {
        Spec::valid(&app, upload, ids)
            .header("content-type", &content_type)
            .body(EventBody::Bytes(bytes))
    })
    .await;
    reply.invalid("partition");
}

#[tokio::test]
async fn a_body_flagged_base64_that_is_not_is_refused_on_every_route() {
    let app = TestApp::new().await;
    for route in ROUTES {
        let reply = send(&app, route, |ids| {
            Spec::valid(&app, route, ids).body(EventBody::NotBase64)
        })
        .await;
        let message = reply.error(400, "INVALID_PARAMS");
        assert!(message.contains("base64"), "{}: {message}", label(route));
    }
}

#[tokio::test]
async fn a_control_character_in_a_header_value_is_refused_on_every_route() {
    let app = TestApp::new().await;
    for route in ROUTES {
        for (name, value) in [
            ("x-client-note", "a\u{1}b"),
            ("x-client-note", "line\r\nx-injected: 1"),
            ("x-client-note", "nul\u{0}"),
            ("authorization", &*format!("Bearer {}\u{7f}", app.sk())),
        ] {
            let reply = send(&app, route, |ids| {
                Spec::valid(&app, route, ids).header(name, value)
            })
            .await;
            let message = reply.error(400, "INVALID_PARAMS");
            assert!(
                message.contains(&format!("header {name}")),
                "{} {value:?}: {message}",
                label(route)
            );
        }
    }
    // A tab is allowed in a header value: the request is read as usual.
    for route in ROUTES {
        let reply = send(&app, route, |ids| {
            Spec::valid(&app, route, ids).header("x-client-note", "a\tb")
        })
        .await;
        assert_eq!(reply.status.as_u16(), success(route.function));
    }
}

#[tokio::test]
async fn a_10_kb_query_is_read_as_usual() {
    let app = TestApp::new().await;
    let long = "a".repeat(10 * 1024);
    for route in ROUTES {
        let reply = send(&app, route, |ids| {
            Spec::valid(&app, route, ids).query(&format!("pad={long}"))
        })
        .await;
        let what = label(route);
        match route.function {
            // asset_url ignores a name that is no transform parameter, as a delivery does (the
            // CDN drops such names), and leaves it out of the URL; rotate reads none.
            "asset_url" => {
                let answer = reply.ok(200);
                let url = answer["url"].as_str().unwrap_or_default();
                assert!(!url.contains("pad"), "{what}: {url}");
            }
            "delivery_rotate" => assert_eq!(
                reply.status.as_u16(),
                success(route.function),
                "{what}: {}",
                reply.snippet()
            ),
            // list refuses a parameter it does not know (docs/API.md#filters).
            "list" => {
                reply.invalid("pad");
            }
            // No parameter of theirs is named `pad`; these routes read no other (a public
            // vault's delivery reads none).
            "upload" | "get" | "update" | "delete" | "uploads" | "complete" | "content"
            | "receive" | "keys_list" | "key_create" | "key_revoke" | "vault_get"
            | "vault_update" | "deliver" => assert_eq!(
                reply.status.as_u16(),
                success(route.function),
                "{what}: {}",
                reply.snippet()
            ),
            other => panic!("{other}: a new route; say what a long query gets"),
        }
    }
    // A known list parameter, too long to be valid.
    let list = shared::routes::route_of("list");
    let reply = send(&app, list, |ids| {
        Spec::valid(&app, list, ids).query(&format!("partition={long}"))
    })
    .await;
    reply.invalid("partition");
}

#[tokio::test]
async fn a_100_kb_query_is_refused_on_every_route() {
    let app = TestApp::new().await;
    let long = "a".repeat(100 * 1024);
    for route in ROUTES {
        let reply = send(&app, route, |ids| {
            Spec::valid(&app, route, ids).query(&format!("pad={long}"))
        })
        .await;
        let message = reply.error(400, "INVALID_PARAMS");
        assert!(
            message.starts_with("query: "),
            "{}: {message}",
            label(route)
        );
    }
}

#[tokio::test]
async fn an_event_that_is_no_http_event_is_refused() {
    let app = TestApp::new().await;
    for route in ROUTES {
        let reply = invoke(
            &app.deps,
            route.function,
            r#"{"Records":[{"eventSource":"aws:sqs"}]}"#,
            "not-http",
        )
        .await;
        reply.error(400, "INVALID_PARAMS");
    }
}

/// Why the functions do not hand events to `lambda_http::run` directly: lambda_http alone fails
/// these events (the runtime would report the invocation failed, and API Gateway answer its own
/// bare 500). Should a release of lambda_http read them, this fails, and the fallback in
/// `shared::entry` can be revisited.
#[tokio::test]
async fn lambda_http_alone_cannot_read_these_events() {
    let app = TestApp::new().await;
    let get = shared::routes::route_of("get");
    let ids = fresh(&app, false).await;
    let valid = Spec::valid(&app, get, &ids);
    assert!(lambda_http::request::from_str(&valid.event(&app, &ids)).is_ok());

    let control = Spec::valid(&app, get, &ids).header("x-client-note", "a\u{1}b");
    assert!(lambda_http::request::from_str(&control.event(&app, &ids)).is_err());

    let long = Spec::valid(&app, get, &ids).query(&format!("pad={}", "a".repeat(100 * 1024)));
    let bad_base64 = Spec::valid(&app, get, &ids).body(EventBody::NotBase64);
    for spec in [long, bad_base64] {
        let event = spec.event(&app, &ids);
        let converted = std::panic::catch_unwind(|| lambda_http::request::from_str(&event));
        assert!(converted.is_err(), "lambda_http panics converting it");
    }
}
