//! The client commands of `imgbt` (upload, ls, show, patch, rm, download, keys, vault show|rename),
//! run as a user runs them: the real binary, over HTTP, against the functions behind the
//! in-process gateway (`imgbt_tests::gateway`), with the gateway's request limit (4,718,592 bytes)
//! applied. Retries and redirects are checked against tiny local servers that count what reaches
//! them.

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use imgbt_tests::{Backend, Form, TestApp, gateway};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use std::future::Future;
use std::path::Path;
use std::process::Output;
use std::rc::Rc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::net::TcpListener;

/// The binary under test: Cargo's, unless `IMGBT_TEST_BIN` names a copy (on a machine where
/// several checkouts share one target directory, another checkout's build can replace Cargo's
/// between the build and the run).
fn imgbt_bin() -> std::path::PathBuf {
    std::env::var_os("IMGBT_TEST_BIN")
        .map(Into::into)
        .unwrap_or_else(|| env!("CARGO_BIN_EXE_imgbt").into())
}

/// The gateway's limit on a request body (`shared::deps::LAMBDA_BODY_LIMIT`).
const GATEWAY_LIMIT: u64 = 4_718_592;

/// A test body on a current-thread runtime inside a `LocalSet` (the gateway's handlers are not Send).
fn local<F: Future<Output = ()>>(test: F) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    tokio::task::LocalSet::new().block_on(&runtime, test);
}

/// An app behind the gateway, limited as API Gateway limits a Lambda's request.
struct Served {
    app: Rc<TestApp>,
    url: String,
}

async fn serve(backend: Backend) -> Served {
    serve_limited(backend, Some(GATEWAY_LIMIT)).await
}

/// An app behind the gateway with the given request limit. `None` (as `local-api
/// --max-request-bytes 0`) also lifts the limit the embedded default puts on a download's
/// response, which a Lambda could not carry past about 4.5 MB.
async fn serve_limited(backend: Backend, limit: Option<u64>) -> Served {
    let mut app = TestApp::on(backend).await;
    app.deps.max_request_bytes = limit;
    let app = Rc::new(app);
    let addr = gateway::start(app.clone()).await;
    Served {
        app,
        url: format!("http://{addr}"),
    }
}

impl Served {
    fn vault(&self) -> &str {
        &self.app.vault.vault_id
    }

    async fn run(&self, key: &str, args: &[&str]) -> Output {
        imgbt(&self.url, key, args).await
    }

    /// Runs with the secret key, the vault and `--json`, expects success, returns the document.
    async fn json(&self, args: &[&str]) -> Value {
        let out = self
            .run(
                self.app.sk(),
                &[args, &["--vault", self.vault(), "--json"]].concat(),
            )
            .await;
        ok_json(&out, args)
    }
}

/// `imgbt args…` with `IMGBT_URL` and `IMGBT_API_KEY` set, and nothing else from the caller's
/// environment that the client reads.
async fn imgbt(url: &str, key: &str, args: &[&str]) -> Output {
    tokio::process::Command::new(imgbt_bin())
        .args(args)
        .env("IMGBT_URL", url)
        .env("IMGBT_API_KEY", key)
        .env_remove("IMGBT_VAULT")
        .output()
        .await
        .unwrap()
}

fn ok_json(out: &Output, args: &[&str]) -> Value {
    assert!(
        out.status.success(),
        "{args:?} failed ({:?}): {}",
        out.status.code(),
        stderr(out)
    );
    serde_json::from_slice(&out.stdout).expect("stdout is one JSON document")
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `len` bytes that are not all alike, so that a misplaced chunk shows.
fn pattern(len: usize, seed: u32) -> Vec<u8> {
    let mut x = seed.wrapping_mul(2_654_435_761).max(1);
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x as u8
        })
        .collect()
}

fn sha256_file(path: &Path) -> Vec<u8> {
    let mut file = std::fs::File::open(path).unwrap();
    let mut hasher = Sha256::new();
    std::io::copy(&mut file, &mut hasher).unwrap();
    hasher.finalize().to_vec()
}

#[test]
fn a_small_file_goes_multipart_and_show_patch_rm_follow_it() {
    local(async {
        let api = serve(Backend::Embedded).await;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("notes.txt");
        std::fs::write(&path, b"hello, imgbt\n").unwrap();
        let path_str = path.to_str().unwrap();

        let out = api
            .run(
                api.app.sk(),
                &[
                    "upload",
                    path_str,
                    "--vault",
                    api.vault(),
                    "--to",
                    "docs/guides/main",
                    "--tag",
                    "guide",
                    "--tag",
                    "draft",
                    "--meta",
                    "author=Ana",
                    "--metadata",
                    r#"{"pages":3}"#,
                ],
            )
            .await;
        assert!(out.status.success(), "{}", stderr(&out));
        let text = stdout(&out);
        assert!(text.contains("multipart"), "{text}");
        assert!(text.contains("docs/guides/main/notes.txt"), "{text}");
        let id = text
            .split_whitespace()
            .find(|w| w.starts_with("asset_"))
            .unwrap()
            .to_owned();

        let shown = api.json(&["show", &id]).await;
        assert_eq!(shown["filename"], "notes.txt");
        assert_eq!(shown["mime_type"], "text/plain");
        assert_eq!(shown["size"], 13);
        let metadata: Value = serde_json::from_str(shown["metadata"].as_str().unwrap()).unwrap();
        assert_eq!(metadata, json!({"author": "Ana", "pages": 3}));
        assert_eq!(shown["tags"], r#"["guide","draft"]"#);
        assert_eq!(
            api.app
                .read_object(shown["r2_key"].as_str().unwrap())
                .unwrap(),
            b"hello, imgbt\n"
        );

        let patched = api
            .json(&[
                "patch",
                &id,
                "--meta",
                "status=final",
                "--unset",
                "author",
                "--tags",
                "guide",
            ])
            .await;
        let metadata: Value = serde_json::from_str(patched["metadata"].as_str().unwrap()).unwrap();
        assert_eq!(metadata, json!({"pages": 3, "status": "final"}));
        assert_eq!(patched["tags"], r#"["guide"]"#);

        let shown_text = api
            .run(api.app.pk(), &["show", &id, "--vault", api.vault()])
            .await;
        assert!(shown_text.status.success(), "{}", stderr(&shown_text));
        assert!(stdout(&shown_text).contains("docs/guides/main/notes.txt"));

        // A read key cannot delete: the API's envelope, its own exit code.
        let refused = api
            .run(api.app.pk(), &["rm", &id, "--vault", api.vault()])
            .await;
        assert_eq!(refused.status.code(), Some(3), "{}", stderr(&refused));
        assert!(
            stderr(&refused).contains("FORBIDDEN"),
            "{}",
            stderr(&refused)
        );

        assert_eq!(api.json(&["rm", &id]).await, json!({"deleted": id}));
        let gone = api
            .run(
                api.app.sk(),
                &["show", &id, "--vault", api.vault(), "--json"],
            )
            .await;
        assert_eq!(gone.status.code(), Some(4), "{}", stderr(&gone));
        let doc: Value = serde_json::from_slice(&gone.stdout).unwrap();
        assert_eq!(doc["code"], "ASSET_NOT_FOUND");
        assert_eq!(doc["status"], 404);
        assert_eq!(doc["exit_code"], 4);
    });
}

#[test]
fn a_second_upload_of_the_same_name_is_a_conflict_with_its_own_exit_code() {
    local(async {
        let api = serve(Backend::Embedded).await;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.txt");
        std::fs::write(&path, b"a").unwrap();
        let args = ["upload", path.to_str().unwrap(), "--to", "p/c/ch"];
        api.json(&args).await;
        let again = api
            .run(
                api.app.sk(),
                &[&args[..], &["--vault", api.vault()]].concat(),
            )
            .await;
        assert_eq!(again.status.code(), Some(5), "{}", stderr(&again));
        assert!(stderr(&again).contains("CONFLICT"), "{}", stderr(&again));
    });
}

#[test]
fn the_largest_file_that_fits_the_gateway_goes_multipart_and_one_byte_more_does_not() {
    local(async {
        let api = serve(Backend::Embedded).await;
        let dir = tempfile::tempdir().unwrap();
        // The form's overhead for this destination and name, measured with an empty file: the
        // limit counts the whole request body.
        let empty = dir.path().join("edge.bin");
        std::fs::write(&empty, b"").unwrap();
        let probe = api
            .json(&["upload", empty.to_str().unwrap(), "--to", "p/c/probe"])
            .await;
        assert_eq!(probe["size"], 0);

        let overhead = multipart_overhead(&["p", "c", "edge", "edge.bin"]);
        let fits = (GATEWAY_LIMIT - overhead) as usize;
        std::fs::write(&empty, pattern(fits, 1)).unwrap();
        let out = api
            .run(
                api.app.sk(),
                &[
                    "upload",
                    empty.to_str().unwrap(),
                    "--vault",
                    api.vault(),
                    "--to",
                    "p/c/edge",
                ],
            )
            .await;
        assert!(out.status.success(), "{}", stderr(&out));
        assert!(stdout(&out).contains("multipart"), "{}", stdout(&out));

        // Forced through multipart, one byte more is refused by the function, as API Gateway would.
        std::fs::write(&empty, pattern(fits + 1, 1)).unwrap();
        let out = api
            .run(
                api.app.sk(),
                &[
                    "upload",
                    empty.to_str().unwrap(),
                    "--vault",
                    api.vault(),
                    "--to",
                    "p/c/edge2",
                    "--method",
                    "multipart",
                ],
            )
            .await;
        assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
        assert!(
            stderr(&out).contains("PAYLOAD_TOO_LARGE"),
            "{}",
            stderr(&out)
        );
    });
}

/// The body's length with these fields and an empty file, as reqwest's form writer (which the
/// client sends with) computes it: the part headers and boundaries around the file.
fn multipart_overhead(fields: &[&str; 4]) -> u64 {
    use reqwest::multipart::{Form, Part};
    let names = ["partition", "collection", "channel", "filename"];
    let form = names
        .iter()
        .zip(fields)
        .fold(Form::new(), |form, (name, value)| {
            form.text(name.to_string(), value.to_string())
        })
        .part(
            "file",
            Part::stream_with_length(reqwest::Body::from(Vec::new()), 0).file_name("upload"),
        );
    let request = reqwest::Client::new()
        .post("http://127.0.0.1:9/")
        .multipart(form)
        .build()
        .unwrap();
    request.headers()["content-length"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap()
}

#[test]
fn ls_walks_every_page_with_filters_and_stops_at_the_limit() {
    local(async {
        let api = serve(Backend::Embedded).await;
        let mut wanted = Vec::new();
        for i in 0..7 {
            let record = api
                .app
                .create(&Form::tiny("photos", "trip", "day-1", &format!("{i}.txt")))
                .await;
            wanted.push((
                record["created_at"].as_str().unwrap().to_owned(),
                record["id"].as_str().unwrap().to_owned(),
            ));
        }
        for i in 0..3 {
            api.app
                .create(&Form::tiny("photos", "trip", "day-2", &format!("{i}.txt")))
                .await;
            api.app
                .create(&Form::tiny("docs", "trip", "day-1", &format!("{i}.txt")))
                .await;
        }
        // The API's order: newest first, then by id (several may share a millisecond).
        wanted.sort();
        wanted.reverse();
        let wanted: Vec<&str> = wanted.iter().map(|(_, id)| id.as_str()).collect();

        let listed = api
            .json(&[
                "ls",
                "--partition",
                "photos",
                "--channel",
                "day-1",
                "--page-size",
                "2",
            ])
            .await;
        let ids: Vec<&str> = listed["assets"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a["id"].as_str().unwrap())
            .collect();
        assert_eq!(ids, wanted);
        assert_eq!(listed["count"], 7);

        let all = api.json(&["ls", "--page-size", "3"]).await;
        assert_eq!(all["count"], 7 + 3 + 3);

        let first = api
            .json(&[
                "ls",
                "--partition",
                "photos",
                "--limit",
                "3",
                "--page-size",
                "2",
            ])
            .await;
        assert_eq!(first["count"], 3);

        let text = api
            .run(
                api.app.pk(),
                &["ls", "--vault", api.vault(), "--collection", "trip"],
            )
            .await;
        assert!(text.status.success(), "{}", stderr(&text));
        let text = stdout(&text);
        assert!(text.starts_with("ID"), "{text}");
        assert_eq!(text.lines().count(), 1 + 13);

        let bad = api
            .run(
                api.app.pk(),
                &["ls", "--vault", api.vault(), "--partition", "Bad!"],
            )
            .await;
        assert_eq!(bad.status.code(), Some(3));
        assert!(stderr(&bad).contains("partition"), "{}", stderr(&bad));
    });
}

#[test]
fn missing_configuration_is_a_usage_error_that_names_the_variable() {
    local(async {
        let out = tokio::process::Command::new(imgbt_bin())
            .args(["ls", "--vault", "vault_x"])
            .env_remove("IMGBT_URL")
            .env("IMGBT_API_KEY", "sk_secret_value")
            .output()
            .await
            .unwrap();
        assert_eq!(out.status.code(), Some(2));
        assert!(stderr(&out).contains("IMGBT_URL"), "{}", stderr(&out));
        let out = imgbt("http://127.0.0.1:9", "", &["ls", "--vault", "vault_x"]).await;
        assert_eq!(out.status.code(), Some(2));
        assert!(stderr(&out).contains("IMGBT_API_KEY"), "{}", stderr(&out));
        // Help never shows the key from the environment.
        let help = imgbt("http://127.0.0.1:9", "sk_secret_value", &["ls", "--help"]).await;
        assert!(help.status.success());
        assert!(!stdout(&help).contains("sk_secret_value"));
    });
}

// ---------------------------------------------------------------------------------------------
// Tiny servers: answers scripted per request, every request recorded.

#[derive(Clone, Debug)]
struct Seen {
    method: String,
    path: String,
    authorization: Option<String>,
    /// Every header, by lower-case name.
    headers: Vec<(String, String)>,
    body_len: usize,
    at: Instant,
}

impl Seen {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

type Script = Arc<dyn Fn(usize, &Seen) -> hyper::Response<Full<Bytes>> + Send + Sync>;

struct Tiny {
    url: String,
    seen: Arc<Mutex<Vec<Seen>>>,
}

/// A server that answers the n-th request (from 0) with `script(n, request)`.
async fn tiny(script: Script) -> Tiny {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            let (script, log) = (script.clone(), log.clone());
            tokio::spawn(async move {
                let service = service_fn(move |req: hyper::Request<Incoming>| {
                    let (script, log) = (script.clone(), log.clone());
                    async move {
                        let headers = req
                            .headers()
                            .iter()
                            .map(|(n, v)| (n.as_str().to_owned(), v.to_str().unwrap().to_owned()))
                            .collect();
                        let mut seen = Seen {
                            method: req.method().to_string(),
                            path: req.uri().path().to_owned(),
                            authorization: req
                                .headers()
                                .get("authorization")
                                .map(|v| v.to_str().unwrap().to_owned()),
                            headers,
                            body_len: 0,
                            at: Instant::now(),
                        };
                        seen.body_len = req.into_body().collect().await.unwrap().to_bytes().len();
                        let n = {
                            let mut log = log.lock().unwrap();
                            log.push(seen.clone());
                            log.len() - 1
                        };
                        Ok::<_, std::convert::Infallible>(script(n, &seen))
                    }
                });
                let _ = http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    Tiny { url, seen }
}

fn reply(
    status: u16,
    headers: &[(&str, &str)],
    body: impl Into<Bytes>,
) -> hyper::Response<Full<Bytes>> {
    let mut response = hyper::Response::builder().status(status);
    for (name, value) in headers {
        response = response.header(*name, *value);
    }
    response.body(Full::new(body.into())).unwrap()
}

fn error(status: u16, code: &str) -> hyper::Response<Full<Bytes>> {
    reply(
        status,
        &[("content-type", "application/json")],
        json!({"error": {"code": code, "message": format!("scripted {code}"), "status": status}})
            .to_string(),
    )
}

fn record(id: &str, size: usize) -> Value {
    json!({
        "id": id, "vault_id": "vault_01", "partition": "p", "collection": "c", "channel": "ch",
        "filename": "f.bin", "r2_key": format!("vault_01/p/c/ch/{id}_f.bin"), "size": size,
        "mime_type": "application/octet-stream", "width": null, "height": null,
        "metadata": "{}", "tags": "[]",
        "created_at": "2026-01-15T10:30:00.123Z", "updated_at": "2026-01-15T10:30:00.123Z"
    })
}

/// 201 with the direct-upload ticket `POST …/uploads` answers.
fn ticket(upload_id: &str, put_url: &str, content_type: &str) -> hyper::Response<Full<Bytes>> {
    reply(
        201,
        &[("content-type", "application/json")],
        json!({
            "upload_id": upload_id, "method": "PUT", "url": put_url,
            "headers": {"content-type": content_type},
            "expires_at": "2026-01-15T10:45:00.123Z"
        })
        .to_string(),
    )
}

/// 201 with a record, as a completed upload answers.
fn created(id: &str, size: usize) -> hyper::Response<Full<Bytes>> {
    reply(
        201,
        &[("content-type", "application/json")],
        record(id, size).to_string(),
    )
}

/// 200 with a record of `size` bytes, as get answers.
fn found(id: &str, size: usize) -> hyper::Response<Full<Bytes>> {
    reply(
        200,
        &[("content-type", "application/json")],
        record(id, size).to_string(),
    )
}

fn ok_record(id: &str) -> hyper::Response<Full<Bytes>> {
    found(id, 3)
}

#[test]
fn a_429_with_retry_after_in_seconds_is_waited_for_then_retried() {
    local(async {
        let server = tiny(Arc::new(|n, _| match n {
            0 => {
                let mut r = error(429, "RATE_LIMITED");
                r.headers_mut().insert("retry-after", "1".parse().unwrap());
                r
            }
            _ => ok_record("asset_01"),
        }))
        .await;
        let out = imgbt(
            &server.url,
            "sk_k",
            &["show", "asset_01", "--vault", "vault_01", "--json"],
        )
        .await;
        let doc = ok_json(&out, &["show"]);
        assert_eq!(doc["id"], "asset_01");
        let seen = server.seen.lock().unwrap().clone();
        assert_eq!(seen.len(), 2, "one 429, one success");
        let waited = seen[1].at - seen[0].at;
        assert!(waited >= Duration::from_millis(950), "waited {waited:?}");
        assert!(waited < Duration::from_secs(3), "waited {waited:?}");
        assert!(
            stderr(&out).contains("retrying in 1.0 s"),
            "{}",
            stderr(&out)
        );
    });
}

#[test]
fn a_retry_after_http_date_is_honoured() {
    local(async {
        let server = tiny(Arc::new(|n, _| match n {
            0 => {
                let at = std::time::SystemTime::now() + Duration::from_secs(2);
                let mut r = error(503, "INTERNAL_ERROR");
                r.headers_mut()
                    .insert("retry-after", httpdate_fmt(at).parse().unwrap());
                r
            }
            _ => ok_record("asset_02"),
        }))
        .await;
        let out = imgbt(
            &server.url,
            "sk_k",
            &["show", "asset_02", "--vault", "vault_01", "--json"],
        )
        .await;
        ok_json(&out, &["show"]);
        let seen = server.seen.lock().unwrap().clone();
        assert_eq!(seen.len(), 2);
        // An HTTP date has whole seconds: two seconds ahead is more than one second's wait.
        let waited = seen[1].at - seen[0].at;
        assert!(waited >= Duration::from_millis(950), "waited {waited:?}");
    });
}

fn httpdate_fmt(at: std::time::SystemTime) -> String {
    // RFC 7231 IMF-fixdate, formatted by hand to keep the test free of the client's parser.
    let secs = at.duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    let days = secs / 86_400;
    let (h, m, s) = ((secs / 3600) % 24, (secs / 60) % 60, secs % 60);
    let weekday = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"][(days % 7) as usize];
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    let months = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    format!(
        "{weekday}, {d:02} {} {year} {h:02}:{m:02}:{s:02} GMT",
        months[(month - 1) as usize]
    )
}

#[test]
fn server_errors_are_retried_a_bounded_number_of_times_and_client_errors_never() {
    local(async {
        let server = tiny(Arc::new(|_, _| error(503, "INTERNAL_ERROR"))).await;
        let out = imgbt(
            &server.url,
            "sk_k",
            &["show", "asset_03", "--vault", "vault_01", "--retries", "2"],
        )
        .await;
        assert_eq!(out.status.code(), Some(6), "{}", stderr(&out));
        assert_eq!(
            server.seen.lock().unwrap().len(),
            3,
            "first try and two retries"
        );
        assert!(
            stderr(&out).contains("scripted INTERNAL_ERROR"),
            "{}",
            stderr(&out)
        );

        let server = tiny(Arc::new(|_, _| error(400, "INVALID_PARAMS"))).await;
        let out = imgbt(
            &server.url,
            "sk_k",
            &["show", "asset_04", "--vault", "vault_01"],
        )
        .await;
        assert_eq!(out.status.code(), Some(3));
        assert_eq!(server.seen.lock().unwrap().len(), 1);

        // Nothing listening: connection failures are retried too, then exit 6.
        let closed = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", closed.local_addr().unwrap());
        drop(closed);
        let out = imgbt(
            &url,
            "sk_k",
            &["show", "asset_05", "--vault", "vault_01", "--retries", "1"],
        )
        .await;
        assert_eq!(out.status.code(), Some(6), "{}", stderr(&out));
        assert!(stderr(&out).contains("2 attempt"), "{}", stderr(&out));
    });
}

#[test]
fn a_download_follows_the_redirect_without_the_key() {
    local(async {
        let bytes = pattern(300_000, 7);
        let object = bytes.clone();
        let storage = tiny(Arc::new(move |_, _| {
            reply(
                200,
                &[("content-type", "application/octet-stream")],
                object.clone(),
            )
        }))
        .await;
        let location = format!("{}/bucket/obj?X-Amz-Signature=abc", storage.url);
        let api = tiny(Arc::new(move |_, seen| {
            if seen.path.ends_with("/content") {
                reply(
                    302,
                    &[
                        ("location", &location),
                        ("cache-control", "private, no-store"),
                    ],
                    "",
                )
            } else {
                found("asset_06", 300_000)
            }
        }))
        .await;
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("out.bin");
        let out = imgbt(
            &api.url,
            "sk_the_key",
            &[
                "download",
                "asset_06",
                "--vault",
                "vault_01",
                "-o",
                target.to_str().unwrap(),
            ],
        )
        .await;
        assert!(out.status.success(), "{}", stderr(&out));
        assert_eq!(std::fs::read(&target).unwrap(), bytes);
        let api_seen = api.seen.lock().unwrap().clone();
        assert!(
            api_seen
                .iter()
                .all(|s| s.authorization.as_deref() == Some("Bearer sk_the_key"))
        );
        let storage_seen = storage.seen.lock().unwrap().clone();
        assert_eq!(storage_seen.len(), 1);
        assert_eq!(storage_seen[0].method, "GET");
        assert_eq!(storage_seen[0].path, "/bucket/obj");
        assert_eq!(
            storage_seen[0].authorization, None,
            "the key stays with the API"
        );
        // Only the file itself is left: no temporary file beside it.
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    });
}

#[test]
fn a_short_download_leaves_no_file_behind() {
    local(async {
        let api = tiny(Arc::new(move |_, seen| {
            if seen.path.ends_with("/content") {
                reply(
                    200,
                    &[("content-type", "application/octet-stream")],
                    vec![1u8; 10],
                )
            } else {
                found("asset_07", 20)
            }
        }))
        .await;
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("out.bin");
        let out = imgbt(
            &api.url,
            "sk_k",
            &[
                "download",
                "asset_07",
                "--vault",
                "vault_01",
                "-o",
                target.to_str().unwrap(),
            ],
        )
        .await;
        assert_eq!(out.status.code(), Some(6), "{}", stderr(&out));
        assert!(stderr(&out).contains("10 bytes of 20"), "{}", stderr(&out));
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    });
}

// ---------------------------------------------------------------------------------------------
// Lost answers: a proxy in front of the gateway that passes the first matching request on (so it
// is carried out) but tells the client 502, as when a gateway times out on a request that landed.

struct Proxy {
    url: String,
}

/// Forwards everything to `upstream`; the first request with `method` whose path ends with
/// `suffix` is forwarded only if `forward_first`, and its answer replaced by a 502.
async fn lossy_proxy(
    upstream: String,
    method: &'static str,
    suffix: &str,
    forward_first: bool,
) -> Proxy {
    let suffix = suffix.to_owned();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let lost = Arc::new(Mutex::new(false));
    let http = reqwest::Client::new();
    tokio::task::spawn_local(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            let (upstream, lost, http, suffix) =
                (upstream.clone(), lost.clone(), http.clone(), suffix.clone());
            tokio::task::spawn_local(async move {
                let service = service_fn(move |req: hyper::Request<Incoming>| {
                    let (upstream, lost, http, suffix) =
                        (upstream.clone(), lost.clone(), http.clone(), suffix.clone());
                    async move {
                        let (parts, body) = req.into_parts();
                        let body = body.collect().await.unwrap().to_bytes();
                        let matches = parts.method.as_str() == method
                            && parts.uri.path().ends_with(&suffix)
                            && !std::mem::replace(&mut *lost.lock().unwrap(), true);
                        if matches && !forward_first {
                            return Ok::<_, std::convert::Infallible>(reply(
                                502,
                                &[],
                                "Bad Gateway",
                            ));
                        }
                        let mut forward = http.request(
                            parts.method.clone(),
                            format!("{upstream}{}", parts.uri.path_and_query().unwrap()),
                        );
                        for (name, value) in &parts.headers {
                            if name != "host" {
                                forward = forward.header(name, value);
                            }
                        }
                        let answer = forward.body(body).send().await.unwrap();
                        if matches {
                            return Ok(reply(502, &[], "Bad Gateway"));
                        }
                        let mut response = hyper::Response::builder().status(answer.status());
                        for (name, value) in answer.headers() {
                            response = response.header(name, value);
                        }
                        let bytes = answer.bytes().await.unwrap();
                        Ok(response.body(Full::new(bytes)).unwrap())
                    }
                });
                let _ = http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    Proxy { url }
}

#[test]
fn a_multipart_upload_whose_answer_was_lost_is_recognised_on_the_409() {
    local(async {
        let api = serve(Backend::Embedded).await;
        let proxy = lossy_proxy(api.url.clone(), "POST", "/assets", true).await;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("report.pdf");
        std::fs::write(&path, pattern(10_000, 3)).unwrap();
        let out = imgbt(
            &proxy.url,
            api.app.sk(),
            &[
                "upload",
                path.to_str().unwrap(),
                "--vault",
                api.vault(),
                "--to",
                "p/c/ch",
                "--json",
            ],
        )
        .await;
        let record = ok_json(&out, &["upload"]);
        assert!(
            stderr(&out).contains("an earlier attempt stored the file"),
            "{}",
            stderr(&out)
        );
        assert_eq!(record["filename"], "report.pdf");
        assert_eq!(record["size"], 10_000);
        let listed = api.json(&["ls"]).await;
        assert_eq!(listed["count"], 1, "one asset, not two");
        assert_eq!(listed["assets"][0]["id"], record["id"]);
    });
}

#[test]
fn a_409_after_a_lost_answer_stands_when_the_asset_there_is_another_file() {
    local(async {
        let api = serve(Backend::Embedded).await;
        api.app
            .create(&Form::tiny("p", "c", "ch", "report.pdf"))
            .await;
        // The first attempt never reaches the API, but the client cannot know that.
        let proxy = lossy_proxy(api.url.clone(), "POST", "/assets", false).await;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("report.pdf");
        std::fs::write(&path, pattern(10_000, 3)).unwrap();
        let out = imgbt(
            &proxy.url,
            api.app.sk(),
            &[
                "upload",
                path.to_str().unwrap(),
                "--vault",
                api.vault(),
                "--to",
                "p/c/ch",
            ],
        )
        .await;
        assert_eq!(out.status.code(), Some(5), "{}", stderr(&out));
        assert!(stderr(&out).contains("another size"), "{}", stderr(&out));
    });
}

#[test]
fn a_delete_whose_answer_was_lost_reports_the_asset_deleted() {
    local(async {
        let api = serve(Backend::Embedded).await;
        let record = api.app.create(&Form::tiny("p", "c", "ch", "x.txt")).await;
        let id = record["id"].as_str().unwrap();
        let proxy = lossy_proxy(api.url.clone(), "DELETE", id, true).await;
        let out = imgbt(
            &proxy.url,
            api.app.sk(),
            &["rm", id, "--vault", api.vault()],
        )
        .await;
        assert!(out.status.success(), "{}", stderr(&out));
        assert!(stdout(&out).contains("earlier attempt"), "{}", stdout(&out));
        // Without a lost answer, deleting what is gone is an error.
        let out = imgbt(&api.url, api.app.sk(), &["rm", id, "--vault", api.vault()]).await;
        assert_eq!(out.status.code(), Some(4), "{}", stderr(&out));
    });
}

// ---------------------------------------------------------------------------------------------
// Direct uploads and downloads, on both backends.

/// Uploads a `len`-byte file with the CLI (no method forced), downloads it back to another file,
/// and checks the bytes on the way: in the store, and in the download.
/// Returns the asset's id and the SHA-256 of its bytes.
async fn round_trip(api: &Served, len: usize, expect_method: &str) -> (String, Vec<u8>) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(format!("{len}.bin"));
    std::fs::write(&path, pattern(len, 11)).unwrap();
    let out = api
        .run(
            api.app.sk(),
            &[
                "upload",
                path.to_str().unwrap(),
                "--vault",
                api.vault(),
                "--to",
                "media/raw/in",
                "--tag",
                "big",
            ],
        )
        .await;
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(text.contains(expect_method), "{text}");
    let id = text
        .split_whitespace()
        .find(|w| w.starts_with("asset_"))
        .unwrap()
        .to_owned();
    let record = api.json(&["show", &id]).await;
    assert_eq!(record["size"], len as u64);
    assert_eq!(record["tags"], r#"["big"]"#);
    assert_eq!(
        api.app.object_len(record["r2_key"].as_str().unwrap()),
        Some(len as u64)
    );

    let back = dir.path().join("back.bin");
    let out = api
        .run(
            api.app.pk(),
            &[
                "download",
                &id,
                "--vault",
                api.vault(),
                "-o",
                back.to_str().unwrap(),
            ],
        )
        .await;
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        sha256_file(&back),
        sha256_file(&path),
        "downloaded bytes differ"
    );
    (id, sha256_file(&path))
}

/// The asset's delivery URL (`imgbt url`), fetched as a browser or curl does, with no key and
/// following the redirect: its bytes' SHA-256.
async fn delivered_sha256(api: &Served, id: &str) -> Vec<u8> {
    let url = api.json(&["url", id]).await["url"]
        .as_str()
        .expect("a url")
        .to_owned();
    let answer = reqwest::get(&url).await.unwrap();
    assert_eq!(answer.status(), 200, "{url}");
    let bytes = answer.bytes().await.unwrap();
    Sha256::digest(&bytes).to_vec()
}

/// `imgbt url` with transform flags prints a URL that delivers the variant asked for, on a public
/// vault and a signed one; a bad value is the API's 400, printed as the API says it.
#[test]
fn url_with_transform_flags_delivers_an_image_of_the_asked_size() {
    local(async {
        let api = serve(Backend::Embedded).await;
        // 9×8 pixels (tests/fixtures/README.md).
        let webp = imgbt_tests::fixture("tiny.webp");
        let form = Form::asset("p", "c", "ch", "photo.webp", "image/webp", &webp);
        let record = api.app.create(&form).await;
        let id = record["id"].as_str().unwrap();
        let fetch = |url: String| async move {
            let answer = reqwest::get(&url).await.unwrap();
            assert_eq!(answer.status(), 200, "{url}");
            let mime = answer.headers()["content-type"]
                .to_str()
                .unwrap()
                .to_owned();
            let bytes = answer.bytes().await.unwrap();
            let size = imagesize::blob_size(&bytes).expect("an image");
            ((size.width, size.height), mime)
        };
        let flags = ["--w", "4", "--h", "3", "--format", "png", "--grayscale"];
        let url = api.json(&[&["url", id][..], &flags].concat()).await["url"]
            .as_str()
            .expect("a url")
            .to_owned();
        assert!(url.ends_with("?format=png&grayscale=true&h=3&w=4"), "{url}");
        assert_eq!(fetch(url).await, ((4, 3), "image/png".to_owned()));

        api.app
            .call("vault_update")
            .key(api.app.sk())
            .json(&json!({"delivery": "signed"}))
            .send()
            .await
            .ok(200);
        let out = api
            .run(
                api.app.pk(),
                &[&["url", id, "--vault", api.vault()][..], &flags[..4]].concat(),
            )
            .await;
        assert!(out.status.success(), "{}", stderr(&out));
        let url = stdout(&out).trim().to_owned();
        assert!(url.contains("?h=3&w=4&exp="), "{url}");
        assert_eq!(fetch(url).await, ((4, 3), "image/webp".to_owned()));

        let out = api
            .run(
                api.app.pk(),
                &["url", id, "--quality", "101", "--vault", api.vault()],
            )
            .await;
        assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
        assert!(stdout(&out).is_empty(), "{}", stdout(&out));
        let said = stderr(&out);
        assert!(
            said.contains("quality: ") && said.contains("INVALID_PARAMS, HTTP 400"),
            "{said}"
        );
    });
}

#[test]
fn a_file_over_the_gateway_limit_goes_direct_and_comes_back_identical() {
    local(async {
        let api = serve_limited(Backend::Embedded, None).await;
        round_trip(&api, 5 * 1024 * 1024, "direct upload").await;
        round_trip(&api, 1000, "multipart").await;
    });
}

/// An app on the embedded default behind the gateway's limit, with the local object server
/// serving its downloads: the functions as `./scripts/dev.sh` configures them.
async fn serve_with_object_server() -> Served {
    let mut app = TestApp::on(Backend::Embedded).await;
    app.deps.max_request_bytes = Some(GATEWAY_LIMIT);
    app.serve_objects().await;
    let app = Rc::new(app);
    let addr = gateway::start(app.clone()).await;
    Served {
        app,
        url: format!("http://{addr}"),
    }
}

/// Issue 17: a file too large for a Lambda response, on the embedded default under the gateway's
/// limit, downloads through the local object server (without it: the 413 below).
#[test]
fn on_the_embedded_default_a_12_mb_file_downloads_through_the_object_server() {
    local(async {
        let api = serve_with_object_server().await;
        let (id, sha) = round_trip(&api, 12 * 1024 * 1024, "direct upload").await;
        assert_eq!(
            delivered_sha256(&api, &id).await,
            sha,
            "the delivery URL's bytes"
        );
        round_trip(&api, 1000, "multipart").await;
    });
}

/// The issue's largest file (100 MB) on the same setup: up direct, down through the object server,
/// by `imgbt download` and by its delivery URL.
#[test]
fn on_the_embedded_default_a_100_mb_file_downloads_through_the_object_server() {
    local(async {
        let api = serve_with_object_server().await;
        let (id, sha) = round_trip(&api, 104_857_600, "direct upload").await;
        assert_eq!(
            delivered_sha256(&api, &id).await,
            sha,
            "the delivery URL's bytes"
        );
    });
}

#[test]
fn on_r2_the_put_and_the_download_go_to_presigned_urls() {
    local(async {
        let api = serve(Backend::Cloudflare).await;
        round_trip(&api, 5 * 1024 * 1024, "direct upload").await;
        round_trip(&api, 1000, "multipart").await;
    });
}

#[test]
fn a_download_takes_the_asset_name_and_will_not_overwrite_without_force() {
    local(async {
        let api = serve(Backend::Embedded).await;
        let record = api
            .app
            .create(&Form::tiny("p", "c", "ch", "hello.txt"))
            .await;
        let id = record["id"].as_str().unwrap();
        let dir = tempfile::tempdir().unwrap();
        let run = |args: Vec<&str>| {
            let mut args = args;
            args.extend(["--vault", api.vault()]);
            let args: Vec<String> = args.into_iter().map(str::to_owned).collect();
            let (url, key) = (api.url.clone(), api.app.pk().to_owned());
            let cwd = dir.path().to_owned();
            async move {
                tokio::process::Command::new(imgbt_bin())
                    .args(&args)
                    .current_dir(cwd)
                    .env("IMGBT_URL", url)
                    .env("IMGBT_API_KEY", key)
                    .output()
                    .await
                    .unwrap()
            }
        };
        let out = run(vec!["download", id]).await;
        assert!(out.status.success(), "{}", stderr(&out));
        assert_eq!(
            std::fs::read(dir.path().join("hello.txt")).unwrap(),
            b"hello.txt"
        );
        let out = run(vec!["download", id]).await;
        assert_eq!(out.status.code(), Some(1));
        assert!(stderr(&out).contains("--force"), "{}", stderr(&out));
        std::fs::write(dir.path().join("hello.txt"), b"other").unwrap();
        let out = run(vec!["download", id, "--force"]).await;
        assert!(out.status.success(), "{}", stderr(&out));
        assert_eq!(
            std::fs::read(dir.path().join("hello.txt")).unwrap(),
            b"hello.txt"
        );
        let out = run(vec!["download", id, "-o", "-"]).await;
        assert!(out.status.success(), "{}", stderr(&out));
        assert_eq!(out.stdout, b"hello.txt");
        let out = run(vec!["download", "asset_01JD0000000000000000000000"]).await;
        assert_eq!(out.status.code(), Some(4), "{}", stderr(&out));
        let names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(names.len(), 1, "no temporary files left: {names:?}");
    });
}

/// The issue's test: 100 MB (104,857,600 bytes, the contract's largest file) up through the CLI
/// against the local API, and back, byte-identical. The client streams both ways: the `imgbt`
/// process never holds more than a small fraction of the file.
#[test]
fn a_100_mb_file_goes_up_and_comes_back_byte_identical() {
    local(async {
        const LEN: usize = 104_857_600;
        let api = serve_limited(Backend::Embedded, None).await;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("video.mp4");
        std::fs::write(&path, pattern(LEN, 100)).unwrap();
        let (out, upload_peak) = measured(
            &api,
            &[
                "upload",
                path.to_str().unwrap(),
                "--to",
                "media/video/raw",
                "--json",
            ],
        )
        .await;
        let record = ok_json(&out, &["upload"]);
        assert_eq!(record["size"], LEN as u64);
        let id = record["id"].as_str().unwrap();
        let back = dir.path().join("back.mp4");
        let (out, download_peak) = measured(
            &api,
            &["download", id, "-o", back.to_str().unwrap(), "--json"],
        )
        .await;
        ok_json(&out, &["download"]);
        assert_eq!(
            sha256_file(&back),
            sha256_file(&path),
            "downloaded bytes differ"
        );

        if let (Some(up), Some(down)) = (upload_peak, download_peak) {
            let mib = |n: u64| n as f64 / 1048576.0;
            eprintln!(
                "imgbt peak RSS, 100 MiB file: upload {:.1} MiB ({:.3} of the file), download \
                 {:.1} MiB ({:.3})",
                mib(up),
                up as f64 / LEN as f64,
                mib(down),
                down as f64 / LEN as f64,
            );
            // A debug `imgbt` that only reaches the network peaks at about 15 MiB (its code,
            // the runtime, the TLS roots); streaming in 256 KiB chunks adds a few MiB. Reading the
            // file whole would be over 100 MiB.
            assert!(up < LEN as u64 / 4, "upload held {up} bytes");
            assert!(down < LEN as u64 / 4, "download held {down} bytes");
        }
    });
}

/// Runs `imgbt args… --vault <vault>` with the secret key and returns its output and, on Linux,
/// its peak resident memory in bytes: the process's own high-water mark (`VmHWM`), sampled until
/// it exits. (`wait4`'s `ru_maxrss` would not do: it includes the memory of the test process
/// that spawned it, which holds the gateway's copy of the file.)
async fn measured(api: &Served, args: &[&str]) -> (Output, Option<u64>) {
    let child = std::process::Command::new(imgbt_bin())
        .args(args)
        .args(["--vault", api.vault()])
        .env("IMGBT_URL", &api.url)
        .env("IMGBT_API_KEY", api.app.sk())
        .env_remove("IMGBT_VAULT")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Watched on a blocking thread while this thread serves the API.
    tokio::task::spawn_blocking(move || wait_measured(child))
        .await
        .unwrap()
}

fn wait_measured(mut child: std::process::Child) -> (Output, Option<u64>) {
    use std::io::Read;
    // The outputs are small (one JSON line, a few notes): they fit in the pipes until the end.
    let status_file = format!("/proc/{}/status", child.id());
    let mut peak: Option<u64> = None;
    let status = loop {
        if let Ok(text) = std::fs::read_to_string(&status_file) {
            let hwm = text
                .lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok());
            if let Some(kib) = hwm {
                peak = Some(peak.unwrap_or(0).max(kib * 1024));
            }
        }
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let (mut stdout, mut stderr) = (Vec::new(), Vec::new());
    child
        .stdout
        .take()
        .unwrap()
        .read_to_end(&mut stdout)
        .unwrap();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_end(&mut stderr)
        .unwrap();
    (
        Output {
            status,
            stdout,
            stderr,
        },
        peak,
    )
}

#[test]
fn a_direct_upload_puts_exactly_the_given_headers_with_a_length_and_without_the_key() {
    local(async {
        let storage = tiny(Arc::new(|_, _| reply(200, &[], ""))).await;
        let put_url = format!("{}/bucket/key?X-Amz-Signature=abc", storage.url);
        let api = tiny(Arc::new(move |_, seen| match seen.path.as_str() {
            p if p.ends_with("/uploads") => ticket("upload_01", &put_url, "video/mp4"),
            p if p.ends_with("/uploads/upload_01/complete") => created("asset_09", 6_000_000),
            _ => error(404, "NOT_FOUND"),
        }))
        .await;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("clip.mp4");
        std::fs::write(&path, pattern(6_000_000, 9)).unwrap();
        let out = imgbt(
            &api.url,
            "sk_the_key",
            &[
                "upload",
                path.to_str().unwrap(),
                "--vault",
                "vault_01",
                "--to",
                "m/v/raw",
            ],
        )
        .await;
        assert!(out.status.success(), "{}", stderr(&out));
        assert!(stdout(&out).contains("direct upload"), "{}", stdout(&out));

        let calls = api.seen.lock().unwrap().clone();
        let paths: Vec<(&str, &str)> = calls
            .iter()
            .map(|s| (s.method.as_str(), s.path.as_str()))
            .collect();
        assert_eq!(
            paths,
            [
                ("POST", "/api/v1/vaults/vault_01/uploads"),
                ("POST", "/api/v1/vaults/vault_01/uploads/upload_01/complete"),
            ]
        );
        assert!(
            calls
                .iter()
                .all(|s| s.authorization.as_deref() == Some("Bearer sk_the_key"))
        );

        let puts = storage.seen.lock().unwrap().clone();
        assert_eq!(puts.len(), 1);
        let put = &puts[0];
        assert_eq!(
            (put.method.as_str(), put.path.as_str()),
            ("PUT", "/bucket/key")
        );
        assert_eq!(put.authorization, None, "the key stays with the API");
        assert_eq!(put.header("content-type"), Some("video/mp4"));
        // A sized body, as S3 and R2 want for a presigned PUT: no chunked encoding.
        assert_eq!(put.header("content-length"), Some("6000000"));
        assert_eq!(put.header("transfer-encoding"), None);
        assert_eq!(put.body_len, 6_000_000);
    });
}

#[test]
fn a_multipart_upload_refused_as_too_large_is_sent_directly_instead() {
    local(async {
        let storage = tiny(Arc::new(|_, _| reply(200, &[], ""))).await;
        let put_url = format!("{}/bucket/key", storage.url);
        let api = tiny(Arc::new(move |_, seen| match seen.path.as_str() {
            // A deployment whose gateway takes less than a Lambda does.
            p if p.ends_with("/assets") => error(413, "PAYLOAD_TOO_LARGE"),
            p if p.ends_with("/uploads") => {
                ticket("upload_02", &put_url, "application/octet-stream")
            }
            p if p.ends_with("/complete") => created("asset_10", 1000),
            _ => error(404, "NOT_FOUND"),
        }))
        .await;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f.bin");
        std::fs::write(&path, pattern(1000, 5)).unwrap();
        let args = [
            "upload",
            path.to_str().unwrap(),
            "--vault",
            "vault_01",
            "--to",
            "p/c/ch",
        ];
        let out = imgbt(&api.url, "sk_k", &args).await;
        assert!(out.status.success(), "{}", stderr(&out));
        assert!(stdout(&out).contains("direct upload"), "{}", stdout(&out));
        let paths: Vec<String> = api
            .seen
            .lock()
            .unwrap()
            .iter()
            .map(|s| s.path.clone())
            .collect();
        assert_eq!(
            paths,
            [
                "/api/v1/vaults/vault_01/assets",
                "/api/v1/vaults/vault_01/uploads",
                "/api/v1/vaults/vault_01/uploads/upload_02/complete"
            ]
        );
        assert_eq!(storage.seen.lock().unwrap()[0].body_len, 1000);

        // Forced, multipart stays multipart: the 413 is the answer.
        let out = imgbt(
            &api.url,
            "sk_k",
            &[&args[..], &["--method", "multipart"]].concat(),
        )
        .await;
        assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    });
}

#[test]
fn a_download_the_embedded_default_cannot_answer_under_lambda_is_a_clear_413() {
    local(async {
        // Limited as under `cargo lambda watch`: the upload goes direct, the download is refused.
        let api = serve(Backend::Embedded).await;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("five.bin");
        std::fs::write(&path, pattern(5 * 1024 * 1024, 4)).unwrap();
        let record = api
            .json(&["upload", path.to_str().unwrap(), "--to", "p/c/ch"])
            .await;
        let id = record["id"].as_str().unwrap();
        let back = dir.path().join("back.bin");
        let out = api
            .run(
                api.app.pk(),
                &[
                    "download",
                    id,
                    "--vault",
                    api.vault(),
                    "-o",
                    back.to_str().unwrap(),
                ],
            )
            .await;
        assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
        assert!(
            stderr(&out).contains("PAYLOAD_TOO_LARGE"),
            "{}",
            stderr(&out)
        );
        assert!(!back.exists());
    });
}

// ---------------------------------------------------------------------------------------------
// Keys and vault settings over the API (`imgbt keys`, `imgbt vault show | rename`).

/// The key `imgbt keys create` printed: the one line of its text that is a key.
fn printed_key(out: &Output) -> String {
    let text = stdout(out);
    let keys: Vec<&str> = text
        .lines()
        .filter(|l| l.starts_with("sk_") || l.starts_with("pk_"))
        .collect();
    assert_eq!(keys.len(), 1, "one key line in: {text}");
    keys[0].to_owned()
}

/// The vault's keys as `imgbt keys ls --json` lists them, run with `key`.
async fn listed_keys(api: &Served, key: &str) -> Vec<Value> {
    let out = api
        .run(key, &["keys", "ls", "--vault", api.vault(), "--json"])
        .await;
    let doc = ok_json(&out, &["keys", "ls"]);
    assert_eq!(doc["vault_id"], api.vault());
    doc["keys"].as_array().unwrap().clone()
}

fn listed<'a>(keys: &'a [Value], id: &str) -> &'a Value {
    keys.iter()
        .find(|k| k["id"] == id)
        .unwrap_or_else(|| panic!("{id} is not listed: {keys:?}"))
}

/// The id of the vault's one live secret key (the one `TestApp` made).
async fn secret_key_id(api: &Served) -> String {
    let keys = listed_keys(api, api.app.sk()).await;
    let live: Vec<&Value> = keys
        .iter()
        .filter(|k| k["type"] == "secret" && k["revoked_at"].is_null())
        .collect();
    assert_eq!(live.len(), 1, "{keys:?}");
    live[0]["id"].as_str().unwrap().to_owned()
}

/// Create over HTTP, use at once, list without the key, revoke, refused at once.
async fn a_key_lives_and_dies_over_http(backend: Backend) {
    let api = serve(backend).await;
    let created = api
        .run(
            api.app.sk(),
            &[
                "keys",
                "create",
                "--type",
                "secret",
                "--label",
                "CI deploy",
                "--vault",
                api.vault(),
            ],
        )
        .await;
    assert!(created.status.success(), "{}", stderr(&created));
    let key = printed_key(&created);
    assert!(key.starts_with("sk_") && key.len() == 51, "{key}");
    assert!(
        stdout(&created).contains("shown only now, never again"),
        "{}",
        stdout(&created)
    );
    let id = stdout(&created)
        .split_whitespace()
        .find(|w| w.starts_with("key_"))
        .unwrap()
        .to_owned();

    // The printed key works on the very next request, for reads and for writes.
    let ls = api.run(&key, &["ls", "--vault", api.vault()]).await;
    assert!(ls.status.success(), "{}", stderr(&ls));
    let renamed = api
        .run(
            &key,
            &["vault", "rename", "--name", "by CI", "--vault", api.vault()],
        )
        .await;
    assert!(renamed.status.success(), "{}", stderr(&renamed));

    // Listed, with its hint, and never the key itself: not in the text, not in the JSON.
    let keys = listed_keys(&api, api.app.sk()).await;
    let record = listed(&keys, &id);
    assert_eq!(record["type"], "secret");
    assert_eq!(record["label"], "CI deploy");
    assert_eq!(record["hint"], &key[..7]);
    assert!(record["revoked_at"].is_null());
    let text = api
        .run(api.app.sk(), &["keys", "ls", "--vault", api.vault()])
        .await;
    assert!(text.status.success(), "{}", stderr(&text));
    let table = stdout(&text);
    assert!(table.starts_with("ID"), "{table}");
    let row = table.lines().find(|l| l.starts_with(&id)).unwrap();
    assert!(row.contains(&format!("{}…", &key[..7])), "{row}");
    assert!(row.contains("CI deploy") && row.ends_with('-'), "{row}");
    let json_text = api
        .run(
            api.app.sk(),
            &["keys", "ls", "--vault", api.vault(), "--json"],
        )
        .await;
    for out in [&text, &json_text] {
        for secret in [key.as_str(), api.app.sk()] {
            assert!(!stdout(out).contains(secret), "a key was listed");
            assert!(!stderr(out).contains(secret), "a key was logged");
        }
    }

    let revoked = api.json(&["keys", "revoke", &id]).await;
    assert_eq!(
        revoked,
        json!({"revoked": true, "vault_id": api.vault(), "key_id": id})
    );
    // Refused on the very next request: 401, exit 3.
    let refused = api.run(&key, &["ls", "--vault", api.vault()]).await;
    assert_eq!(refused.status.code(), Some(3), "{}", stderr(&refused));
    assert!(
        stderr(&refused).contains("UNAUTHORIZED, HTTP 401"),
        "{}",
        stderr(&refused)
    );
    let keys = listed_keys(&api, api.app.sk()).await;
    assert!(listed(&keys, &id)["revoked_at"].is_string());
    // Without a lost answer, revoking it again is the API's 404.
    let again = api
        .run(
            api.app.sk(),
            &["keys", "revoke", &id, "--vault", api.vault()],
        )
        .await;
    assert_eq!(again.status.code(), Some(4), "{}", stderr(&again));
    assert!(stderr(&again).contains("NOT_FOUND"), "{}", stderr(&again));
}

#[test]
fn a_key_created_over_http_works_at_once_and_is_refused_once_revoked() {
    local(a_key_lives_and_dies_over_http(Backend::Embedded));
}

#[test]
fn a_key_created_over_http_works_at_once_and_is_refused_once_revoked_on_d1() {
    local(a_key_lives_and_dies_over_http(Backend::Cloudflare));
}

#[test]
fn with_json_the_created_key_is_a_member_of_the_one_document_and_pk_cannot_manage_keys() {
    local(async {
        let api = serve(Backend::Embedded).await;
        let doc = api
            .json(&["keys", "create", "--type", "public", "--label", "site"])
            .await;
        let key = doc["key"].as_str().unwrap().to_owned();
        assert!(key.starts_with("pk_") && key.len() == 51, "{doc}");
        assert_eq!(doc["type"], "public");
        assert_eq!(doc["label"], "site");
        assert_eq!(doc["hint"], &key[..7]);
        assert!(doc["id"].as_str().unwrap().starts_with("key_"), "{doc}");
        assert!(doc["revoked_at"].is_null());

        // The new read key reads, but neither it nor any pk_ manages keys: 403, exit 3.
        let shown = api
            .run(&key, &["vault", "show", "--vault", api.vault()])
            .await;
        assert!(shown.status.success(), "{}", stderr(&shown));
        for args in [
            vec!["keys", "ls"],
            vec!["keys", "create", "--type", "secret", "--label", "x"],
            vec!["keys", "revoke", doc["id"].as_str().unwrap()],
        ] {
            let out = api
                .run(&key, &[&args[..], &["--vault", api.vault()]].concat())
                .await;
            assert_eq!(out.status.code(), Some(3), "{args:?}: {}", stderr(&out));
            assert!(
                stderr(&out).contains("FORBIDDEN, HTTP 403"),
                "{args:?}: {}",
                stderr(&out)
            );
        }
        // The refused create made nothing; the refused revoke revoked nothing.
        let keys = listed_keys(&api, api.app.sk()).await;
        assert_eq!(keys.len(), 3, "{keys:?}");
        assert!(listed(&keys, doc["id"].as_str().unwrap())["revoked_at"].is_null());
        // A bad label is the API's 400, exit 3.
        let out = api
            .run(
                api.app.sk(),
                &[
                    "keys",
                    "create",
                    "--type",
                    "secret",
                    "--label",
                    "",
                    "--vault",
                    api.vault(),
                ],
            )
            .await;
        assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
        assert!(stderr(&out).contains("label"), "{}", stderr(&out));
    });
}

#[test]
fn revoking_the_last_secret_key_exits_5_with_the_apis_reason_and_a_key_may_revoke_itself() {
    local(async {
        let api = serve(Backend::Embedded).await;
        let own = secret_key_id(&api).await;
        let out = api
            .run(
                api.app.sk(),
                &["keys", "revoke", &own, "--vault", api.vault(), "--json"],
            )
            .await;
        assert_eq!(out.status.code(), Some(5), "{}", stderr(&out));
        assert!(
            stderr(&out).contains("last active secret key"),
            "{}",
            stderr(&out)
        );
        let doc: Value = serde_json::from_slice(&out.stdout).expect("one JSON document");
        assert_eq!(doc["code"], "CONFLICT");
        assert_eq!(doc["status"], 409);
        assert_eq!(doc["exit_code"], 5);
        assert!(!stdout(&out).contains(api.app.sk()));
        // Still alive.
        let ls = api.run(api.app.sk(), &["ls", "--vault", api.vault()]).await;
        assert!(ls.status.success(), "{}", stderr(&ls));

        // With another secret key in the vault, the key may revoke itself.
        api.json(&["keys", "create", "--type", "secret", "--label", "next"])
            .await;
        let out = api
            .run(
                api.app.sk(),
                &["keys", "revoke", &own, "--vault", api.vault()],
            )
            .await;
        assert!(out.status.success(), "{}", stderr(&out));
        let after = api.run(api.app.sk(), &["ls", "--vault", api.vault()]).await;
        assert_eq!(after.status.code(), Some(3), "{}", stderr(&after));
        assert!(stderr(&after).contains("HTTP 401"), "{}", stderr(&after));
    });
}

#[test]
fn vault_show_and_rename_work_over_the_api() {
    local(async {
        let api = serve(Backend::Embedded).await;
        let shown = api.json(&["vault", "show"]).await;
        assert_eq!(shown["id"], api.vault());
        let name = shown["name"].as_str().unwrap().to_owned();
        assert!(!name.is_empty(), "{shown}");
        assert!(
            shown["created_at"].as_str().unwrap().ends_with('Z'),
            "{shown}"
        );

        let renamed = api
            .json(&["vault", "rename", "--name", "Marketing assets"])
            .await;
        assert_eq!(renamed["id"], api.vault());
        assert_eq!(renamed["name"], "Marketing assets");
        assert_eq!(renamed["created_at"], shown["created_at"]);

        // Any key reads it; the text names it.
        let text = api
            .run(api.app.pk(), &["vault", "show", "--vault", api.vault()])
            .await;
        assert!(text.status.success(), "{}", stderr(&text));
        let text = stdout(&text);
        assert!(
            text.contains(&format!("id:       {}\n", api.vault())),
            "{text}"
        );
        assert!(text.contains("name:     Marketing assets\n"), "{text}");

        // A read key cannot rename; another vault's key cannot even look.
        let out = api
            .run(
                api.app.pk(),
                &["vault", "rename", "--name", "x", "--vault", api.vault()],
            )
            .await;
        assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
        assert!(stderr(&out).contains("FORBIDDEN"), "{}", stderr(&out));
        let out = api
            .run(
                &api.app.other.secret_key,
                &["vault", "show", "--vault", api.vault()],
            )
            .await;
        assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
        assert!(stderr(&out).contains("HTTP 403"), "{}", stderr(&out));
        assert_eq!(
            api.json(&["vault", "show"]).await["name"],
            "Marketing assets"
        );
    });
}

#[test]
fn url_prints_a_delivery_url_that_is_signed_once_the_vault_is() {
    local(async {
        let api = serve(Backend::Embedded).await;
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("hero-image.txt");
        std::fs::write(&file, b"delivered by url").unwrap();
        let record = api
            .json(&["upload", file.to_str().unwrap(), "--to", "web/site/hero"])
            .await;
        let id = record["id"].as_str().unwrap().to_owned();
        let fetch = |url: String| async move {
            let response = reqwest::get(&url).await.unwrap();
            let status = response.status().as_u16();
            (status, response.bytes().await.unwrap().to_vec())
        };

        // Public: the path, no expiry; the text is the URL alone, and it works with no key.
        let public = api.json(&["url", &id]).await;
        let url = public["url"].as_str().unwrap().to_owned();
        assert_eq!(
            url,
            format!("{}/d/{}/web/site/hero/hero-image.txt", api.url, api.vault())
        );
        assert_eq!(public["expires_at"], Value::Null);
        let text = api
            .run(api.app.pk(), &["url", &id, "--vault", api.vault()])
            .await;
        assert!(text.status.success(), "{}", stderr(&text));
        assert_eq!(stdout(&text), format!("{url}\n"));
        assert_eq!(
            fetch(url.clone()).await,
            (200, b"delivered by url".to_vec())
        );

        // Signed: `vault delivery signed`, then the URL carries exp and sig, and the bare path is
        // refused.
        let signed = api.json(&["vault", "delivery", "signed"]).await;
        assert_eq!(signed["delivery"], "signed");
        assert!(signed["delivery_secret_rotated_at"].is_string(), "{signed}");
        assert_eq!(fetch(url.clone()).await.0, 403);
        let made = api.json(&["url", &id, "--expires", "90s"]).await;
        let signed_url = made["url"].as_str().unwrap().to_owned();
        assert!(
            signed_url.starts_with(&format!("{url}?exp=")),
            "{signed_url}"
        );
        assert!(signed_url.contains("&sig="), "{signed_url}");
        let expires_at = made["expires_at"].as_str().unwrap();
        let exp: u64 = signed_url
            .split("exp=")
            .nth(1)
            .unwrap()
            .split('&')
            .next()
            .unwrap()
            .parse()
            .unwrap();
        assert_eq!(expires_at, shared::clock::format_ms(exp * 1000));
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs();
        assert!((now + 80..=now + 91).contains(&exp), "{exp} vs {now}");
        assert_eq!(
            fetch(signed_url.clone()).await,
            (200, b"delivered by url".to_vec())
        );

        // Two rotations retire the secret that signed it; a public key may not rotate.
        let out = api
            .run(
                api.app.pk(),
                &["vault", "rotate-delivery-secret", "--vault", api.vault()],
            )
            .await;
        assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
        let rotated = api.json(&["vault", "rotate-delivery-secret"]).await;
        assert_eq!(rotated["id"], api.vault());
        assert!(!rotated.to_string().contains("secret\":"), "{rotated}");
        assert_eq!(fetch(signed_url.clone()).await.0, 200);
        api.json(&["vault", "rotate-delivery-secret"]).await;
        assert_eq!(fetch(signed_url.clone()).await.0, 403);
        let fresh = api.json(&["url", &id]).await["url"]
            .as_str()
            .unwrap()
            .to_owned();
        assert_eq!(fetch(fresh).await.0, 200);

        // Back to public; the text says so.
        let out = api
            .run(
                api.app.sk(),
                &["vault", "delivery", "public", "--vault", api.vault()],
            )
            .await;
        assert!(out.status.success(), "{}", stderr(&out));
        assert!(
            stdout(&out).contains("delivery: public\n"),
            "{}",
            stdout(&out)
        );
        assert_eq!(fetch(url).await.0, 200);

        // --expires is checked before anything is sent: a usage error.
        for bad in ["8d", "0s", "soon"] {
            let out = api
                .run(
                    api.app.pk(),
                    &["url", &id, "--expires", bad, "--vault", api.vault()],
                )
                .await;
            assert_eq!(out.status.code(), Some(2), "{bad}: {}", stderr(&out));
            assert!(stderr(&out).contains("--expires"), "{}", stderr(&out));
        }
        let out = api
            .run(
                api.app.pk(),
                &[
                    "url",
                    "asset_01JD0000000000000000000000",
                    "--vault",
                    api.vault(),
                ],
            )
            .await;
        assert_eq!(out.status.code(), Some(4), "{}", stderr(&out));
    });
}

#[test]
fn the_help_says_which_commands_work_on_the_store_and_which_over_the_api() {
    local(async {
        let help = imgbt("http://127.0.0.1:9", "sk_x", &["vault", "--help"]).await;
        assert!(help.status.success());
        let help = stdout(&help);
        assert!(line_of(&help, "create").contains("on the store"), "{help}");
        assert!(line_of(&help, "list").contains("on the store"), "{help}");
        assert!(line_of(&help, "show").contains("Over the API"), "{help}");
        assert!(line_of(&help, "rename").contains("Over the API"), "{help}");
        assert!(
            line_of(&help, "delivery").contains("Over the API"),
            "{help}"
        );
        assert!(
            line_of(&help, "rotate-delivery-secret").contains("Over the API"),
            "{help}"
        );
        let top = stdout(&imgbt("http://127.0.0.1:9", "sk_x", &["--help"]).await);
        assert!(line_of(&top, "keys").contains("Over the API"), "{top}");
        assert!(line_of(&top, "key ").contains("on the store"), "{top}");
    });
}

fn line_of(text: &str, start: &str) -> String {
    text.lines()
        .find(|l| l.trim_start().starts_with(start))
        .unwrap_or_else(|| panic!("no {start:?} in {text}"))
        .to_owned()
}

#[test]
fn a_revoke_whose_answer_was_lost_is_checked_against_the_list() {
    local(async {
        let api = serve(Backend::Embedded).await;
        let doc = api
            .json(&["keys", "create", "--type", "public", "--label", "old"])
            .await;
        let (id, key) = (
            doc["id"].as_str().unwrap().to_owned(),
            doc["key"].as_str().unwrap().to_owned(),
        );
        // The first DELETE is carried out, its answer lost; the retry is told 404.
        let proxy = lossy_proxy(api.url.clone(), "DELETE", &id, true).await;
        let out = imgbt(
            &proxy.url,
            api.app.sk(),
            &["keys", "revoke", &id, "--vault", api.vault()],
        )
        .await;
        assert!(out.status.success(), "{}", stderr(&out));
        assert!(stdout(&out).contains("is revoked (at "), "{}", stdout(&out));
        assert!(stdout(&out).contains("earlier attempt"), "{}", stdout(&out));
        let refused = api.run(&key, &["ls", "--vault", api.vault()]).await;
        assert_eq!(refused.status.code(), Some(3), "{}", stderr(&refused));

        // A lost answer does not turn every 404 into success: a key the vault never had stays
        // not found.
        let unknown = "key_01KAAAAAAAAAAAAAAAAAAAAAAA";
        let proxy = lossy_proxy(api.url.clone(), "DELETE", unknown, false).await;
        let out = imgbt(
            &proxy.url,
            api.app.sk(),
            &["keys", "revoke", unknown, "--vault", api.vault()],
        )
        .await;
        assert_eq!(out.status.code(), Some(4), "{}", stderr(&out));
        assert!(stderr(&out).contains("NOT_FOUND"), "{}", stderr(&out));
    });
}

#[test]
fn a_create_whose_answer_was_lost_names_the_key_nobody_saw() {
    local(async {
        let api = serve(Backend::Embedded).await;
        // The first POST creates a key whose answer is lost; the retry creates the one shown.
        let proxy = lossy_proxy(api.url.clone(), "POST", "/keys", true).await;
        let out = imgbt(
            &proxy.url,
            api.app.sk(),
            &[
                "keys",
                "create",
                "--type",
                "secret",
                "--label",
                "deploy",
                "--vault",
                api.vault(),
                "--json",
            ],
        )
        .await;
        let doc = ok_json(&out, &["keys", "create"]);
        let shown = doc["id"].as_str().unwrap();
        let keys = listed_keys(&api, api.app.sk()).await;
        let deploy: Vec<&str> = keys
            .iter()
            .filter(|k| k["label"] == "deploy")
            .map(|k| k["id"].as_str().unwrap())
            .collect();
        assert_eq!(deploy.len(), 2, "{keys:?}");
        let unseen = deploy.iter().find(|id| **id != shown).unwrap();
        let err = stderr(&out);
        assert!(err.contains("nobody has seen"), "{err}");
        assert!(err.contains(unseen), "the unseen key's id is named: {err}");
        assert!(!err.contains(doc["key"].as_str().unwrap()), "{err}");

        // When the create then fails, the message still says a key may exist unseen.
        let proxy = lossy_proxy(api.url.clone(), "POST", "/keys", true).await;
        let out = imgbt(
            &proxy.url,
            api.app.sk(),
            &[
                "keys",
                "create",
                "--type",
                "secret",
                "--label",
                "again",
                "--vault",
                api.vault(),
                "--retries",
                "0",
            ],
        )
        .await;
        assert_eq!(out.status.code(), Some(6), "{}", stderr(&out));
        assert!(
            stderr(&out).contains("labelled \"again\""),
            "{}",
            stderr(&out)
        );
        let keys = listed_keys(&api, api.app.sk()).await;
        assert_eq!(keys.iter().filter(|k| k["label"] == "again").count(), 1);
    });
}

#[test]
fn a_self_revoke_whose_answer_was_lost_says_the_401_may_be_its_own_doing() {
    local(async {
        let api = serve(Backend::Embedded).await;
        let own = secret_key_id(&api).await;
        api.json(&["keys", "create", "--type", "secret", "--label", "next"])
            .await;
        // The first DELETE revokes the very key the command runs with; its retry is told 401.
        let proxy = lossy_proxy(api.url.clone(), "DELETE", &own, true).await;
        let out = imgbt(
            &proxy.url,
            api.app.sk(),
            &["keys", "revoke", &own, "--vault", api.vault()],
        )
        .await;
        assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
        let err = stderr(&out);
        assert!(err.contains("HTTP 401"), "{err}");
        assert!(
            err.contains(&format!("if {own} is the key this command runs with")),
            "{err}"
        );
        assert!(!err.contains(api.app.sk()), "{err}");
    });
}
