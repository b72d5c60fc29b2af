//! The fault proxy passes requests and answers through unchanged, and its faults behave as the D1
//! stand-in's own: checked over raw HTTP, with a `D1Server` (or an echo server) upstream.

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use imgbt_test_servers::d1::Fault;
use imgbt_test_servers::{D1Faults, D1Server, FaultProxy};
use reqwest::header::HeaderMap;
use serde_json::{Value, json};
use std::convert::Infallible;
use std::time::Duration;
use tokio::net::TcpListener;

/// What came back: status, headers without `date` (which differs by the second), body bytes.
#[derive(Debug, PartialEq)]
struct Answer {
    status: u16,
    headers: Vec<(String, Vec<u8>)>,
    body: Vec<u8>,
}

async fn send(request: reqwest::RequestBuilder) -> Result<Answer, reqwest::Error> {
    let response = request.send().await?;
    let status = response.status().as_u16();
    let headers = without_date(response.headers());
    let body = response.bytes().await?.to_vec();
    Ok(Answer {
        status,
        headers,
        body,
    })
}

fn without_date(headers: &HeaderMap) -> Vec<(String, Vec<u8>)> {
    headers
        .iter()
        .filter(|(name, _)| *name != "date")
        .map(|(name, value)| (name.as_str().to_owned(), value.as_bytes().to_vec()))
        .collect()
}

/// A client that gives up, so that a proxy that loses bytes fails a test rather than hanging it.
fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap()
}

/// The same query to the D1 server's URL and to the proxy's.
fn urls(server: &D1Server, proxy: &FaultProxy) -> (String, String) {
    let direct = server.query_url();
    let proxied = direct.replacen(&server.base_url(), &proxy.base_url(), 1);
    assert_ne!(direct, proxied);
    (direct, proxied)
}

async fn post(url: &str, token: &str, body: &Value) -> Result<Answer, reqwest::Error> {
    send(
        client()
            .post(url)
            .bearer_auth(token)
            .header("content-type", "application/json")
            .body(body.to_string()),
    )
    .await
}

fn insert(value: i64) -> Value {
    json!({"sql": "INSERT INTO t VALUES (?1)", "params": [value]})
}

fn rows(server: &D1Server) -> Vec<i64> {
    server
        .query("SELECT a FROM t ORDER BY a")
        .iter()
        .map(|row| row["a"].as_i64().unwrap())
        .collect()
}

async fn upstream_with_table() -> (D1Server, FaultProxy) {
    let server = D1Server::start().await;
    server.execute_batch("CREATE TABLE t (a INTEGER);");
    let proxy = FaultProxy::start(&server.base_url()).await;
    (server, proxy)
}

/// An upstream that answers 207 with every header it received echoed as `x-echo-<name>` (as
/// raw bytes, all values), two `set-cookie`s, and a body of `METHOD TARGET\n` then the request's
/// body bytes.
async fn echo_server() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let (stream, _) = listener.accept().await.unwrap();
            tokio::spawn(async move {
                let service = service_fn(|req: http::Request<hyper::body::Incoming>| async move {
                    let (parts, body) = req.into_parts();
                    let body = body.collect().await.unwrap().to_bytes();
                    let target = parts.uri.path_and_query().unwrap().as_str();
                    let mut out = format!("{} {target}\n", parts.method).into_bytes();
                    out.extend_from_slice(&body);
                    let mut response = http::Response::builder()
                        .status(207)
                        .header("set-cookie", "a=1")
                        .header("set-cookie", "b=2");
                    for (name, value) in &parts.headers {
                        response = response.header(format!("x-echo-{name}"), value.clone());
                    }
                    Ok::<_, Infallible>(response.body(Full::new(Bytes::from(out))).unwrap())
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    format!("http://{addr}")
}

#[tokio::test]
async fn requests_and_answers_pass_through_byte_for_byte() {
    let upstream = echo_server().await;
    let proxy = FaultProxy::start(&upstream).await;
    // Not UTF-8, not JSON, with a NUL and CR LF: nothing may be re-encoded on the way.
    let body: Vec<u8> = vec![0xff, 0x00, 0xfe, b'\r', b'\n', 0x80, b'{'];
    let request = |base: &str| {
        client()
            .put(format!("{base}/some/path%20x?q=%E2%9C%93&q=2&empty="))
            .header("authorization", "Bearer abc")
            .header("x-custom", "one")
            .header("x-custom", "two")
            .header("content-type", "application/octet-stream")
            .body(body.clone())
    };
    let direct = send(request(&upstream)).await.unwrap();
    let proxied = send(request(&proxy.base_url())).await.unwrap();
    assert_eq!(direct.status, 207);
    let mut expected = b"PUT /some/path%20x?q=%E2%9C%93&q=2&empty=\n".to_vec();
    expected.extend_from_slice(&body);
    assert_eq!(direct.body, expected);
    let echoed = |name: &str| {
        direct
            .headers
            .iter()
            .filter(|(n, _)| n == name)
            .map(|(_, v)| v.clone())
            .collect::<Vec<_>>()
    };
    assert_eq!(
        echoed("x-echo-x-custom"),
        [b"one".to_vec(), b"two".to_vec()]
    );
    assert_eq!(echoed("x-echo-authorization"), [b"Bearer abc".to_vec()]);
    assert_eq!(echoed("set-cookie").len(), 2);
    // The upstream saw the same request from the proxy (the echoed headers and body match, Host
    // included), and the client got the same answer.
    assert_eq!(proxied, direct);
    assert_eq!(proxy.requests(), 1);
    assert_eq!(
        proxy.request_bodies(),
        [Value::Null],
        "the body was not JSON"
    );
}

#[tokio::test]
async fn d1s_answers_are_the_same_direct_and_through_the_proxy() {
    let (server, proxy) = upstream_with_table().await;
    let (direct, proxied) = urls(&server, &proxy);
    let token = server.token().to_owned();
    // Answers without timings, so that two runs give the same bytes.
    for (token, body) in [
        (token.as_str(), json!({"sql": "SELEC 1"})),
        (token.as_str(), json!({"sql": "SELECT 1", "params": [1]})),
        ("wrong", json!({"sql": "SELECT 1"})),
        (token.as_str(), json!({"query": "SELECT 1"})),
    ] {
        let a = post(&direct, token, &body).await.unwrap();
        let b = post(&proxied, token, &body).await.unwrap();
        assert!(a.status >= 400, "{body}: {a:?}");
        assert_eq!(b, a, "{body}");
    }
    let wrong_path = format!("{}/accounts/x/d1/database", proxy.base_url());
    let b = post(&wrong_path, &token, &json!({})).await.unwrap();
    assert_eq!(b.status, 404);

    // A write goes through once, and its answer is D1's.
    let answer = post(&proxied, &token, &insert(5)).await.unwrap();
    assert_eq!(answer.status, 200);
    let answer: Value = serde_json::from_slice(&answer.body).unwrap();
    assert_eq!(answer["result"][0]["meta"]["changes"], 1, "{answer}");
    assert_eq!(rows(&server), [5]);
    assert_eq!(proxy.requests(), 6);
    assert_eq!(server.requests(), 10, "4 direct, 6 forwarded");
    assert_eq!(proxy.request_bodies()[5], insert(5));
    assert_eq!(server.request_bodies()[9], insert(5));
}

#[tokio::test]
async fn before_faults_answer_without_forwarding() {
    let (server, proxy) = upstream_with_table().await;
    let (_, url) = urls(&server, &proxy);
    proxy.fail_next(
        1,
        Fault::RateLimited {
            retry_after_secs: Some(3),
        },
    );
    proxy.fail_next(1, Fault::ServerError);
    proxy.fail_next(1, Fault::Disconnect);

    let answer = post(&url, server.token(), &insert(1)).await.unwrap();
    assert_eq!(answer.status, 429);
    assert!(
        answer
            .headers
            .contains(&("retry-after".into(), b"3".to_vec()))
    );
    let body: Value = serde_json::from_slice(&answer.body).unwrap();
    assert_eq!(body["errors"][0]["code"], 971, "{body}");
    let answer = post(&url, server.token(), &insert(2)).await.unwrap();
    assert_eq!(answer.status, 500);
    let body: Value = serde_json::from_slice(&answer.body).unwrap();
    assert_eq!(body["errors"][0]["code"], 7500, "{body}");
    let err = post(&url, server.token(), &insert(3))
        .await
        .expect_err("hung up");
    assert!(err.status().is_none(), "{err:?}");

    assert!(rows(&server).is_empty(), "nothing ran");
    assert_eq!(server.requests(), 0, "nothing was forwarded");
    assert_eq!(proxy.requests(), 3);
    assert_eq!(
        proxy.request_bodies(),
        [insert(1), insert(2), insert(3)],
        "faulted requests are recorded too"
    );
}

#[tokio::test]
async fn after_commit_faults_forward_then_lose_the_answer() {
    let (server, proxy) = upstream_with_table().await;
    let (_, url) = urls(&server, &proxy);
    // Armed through the trait, as the suites do whichever D1 they run on.
    let faults: &dyn D1Faults = &proxy;
    faults.fail_next(1, Fault::RunThenStatus(502));
    faults.fail_next(1, Fault::RunThenStatus(504));
    faults.fail_next(1, Fault::RunThenStatus(500));
    faults.fail_next(1, Fault::RunThenDisconnect);

    for (value, status) in [(1, 502), (2, 504)] {
        let answer = post(&url, server.token(), &insert(value)).await.unwrap();
        assert_eq!(answer.status, status);
        let (_, content_type) = answer
            .headers
            .iter()
            .find(|(name, _)| name == "content-type")
            .unwrap();
        assert!(content_type.starts_with(b"text/html"), "{answer:?}");
        assert!(
            String::from_utf8(answer.body)
                .unwrap()
                .contains(&format!("{status}: "))
        );
    }
    let answer = post(&url, server.token(), &insert(3)).await.unwrap();
    assert_eq!(answer.status, 500);
    let body: Value = serde_json::from_slice(&answer.body).unwrap();
    assert_eq!(body["errors"][0]["code"], 7500, "{body}");
    let err = post(&url, server.token(), &insert(4))
        .await
        .expect_err("hung up after the upstream answered");
    assert!(err.status().is_none(), "{err:?}");
    assert!(err.is_request(), "{err:?}");

    assert_eq!(
        rows(&server),
        [1, 2, 3, 4],
        "every write committed upstream"
    );
    assert_eq!(server.requests(), 4);
    assert_eq!(faults.requests(), 4);
    faults.reset_requests();
    assert_eq!(faults.requests(), 0);
    assert!(faults.request_bodies().is_empty());
    let answer = post(&url, server.token(), &json!({"sql": "SELECT 1"}))
        .await
        .unwrap();
    assert_eq!(answer.status, 200, "the queue is spent");
}

#[tokio::test]
async fn an_upstream_hang_up_reaches_the_client_as_a_hang_up() {
    let (server, proxy) = upstream_with_table().await;
    let (_, url) = urls(&server, &proxy);
    server.fail_next(1, Fault::RunThenDisconnect);
    let err = post(&url, server.token(), &insert(1))
        .await
        .expect_err("the upstream hung up");
    assert!(err.status().is_none(), "{err:?}");
    assert_eq!(rows(&server), [1]);

    let unreachable = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap()
        // Dropped: nothing listens there any more.
    };
    let proxy = FaultProxy::start(&format!("http://{unreachable}")).await;
    let err = post(&format!("{}/query", proxy.base_url()), "t", &json!({}))
        .await
        .expect_err("nothing upstream");
    assert!(err.status().is_none(), "{err:?}");
    assert_eq!(proxy.requests(), 1);
}
