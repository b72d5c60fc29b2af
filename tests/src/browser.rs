//! A real browser for the suites: headless Chromium (Debian's `chromium`) loads a page served
//! from 127.0.0.1 that shows the given images and videos, and reports back what it saw.
//!
//! - [`Chromium::find`] looks for the browser; [`Chromium::for_test`] is the same, printing why a
//!   test is skipped where there is none, except under `IMGBT_REQUIRE_BROWSER=1` (which `.ci/run`
//!   sets once it installed Chromium), where a missing browser fails the test instead.
//! - [`Chromium::check`] serves a page that creates each `<img>` and `<video>` of a [`Page`] from
//!   its script (`browser.js`), starts Chromium on it, and waits for the [`Report`] the script
//!   POSTs back: per image, `complete`, `naturalWidth`/`naturalHeight` and whether `decode()`
//!   succeeded; per video, that it loaded metadata, seeked to the given time and played on from
//!   there. The page reports over HTTP rather than through `--dump-dom`, because a dumped DOM is
//!   taken on a virtual clock and video plays on the real one.
//! - A [`SrcSet`] is an `<img srcset sizes>`: the report says which candidate the browser chose
//!   (`currentSrc`) and, besides its density-corrected `naturalWidth`, the chosen resource's own
//!   pixel size (the same URL loaded again as a plain image, from the browser's cache).
//! - [`recording_proxy`]: forwards to an upstream and records each exchange (the request's
//!   `Accept`, the answer's status, `Content-Type` and `Vary`), so a test knows what the browser
//!   sent and which format it received.
//! - [`serve_dir`]: a static file server (tower-http's `ServeDir`, which honours `Range`) for the
//!   media of a page.

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde::Deserialize;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::oneshot;

/// The page's script; see the top of the file.
const SCRIPT: &str = include_str!("browser.js");

/// How long a page may take to report. Each element has 20 s in the page; they run at once.
const REPORT_TIMEOUT: Duration = Duration::from_secs(90);

/// What a page shows: images by URL, responsive images, and videos by URL with the time
/// (seconds) to seek to.
#[derive(Debug, Default, Clone)]
pub struct Page {
    pub images: Vec<String>,
    pub srcsets: Vec<SrcSet>,
    pub videos: Vec<(String, f64)>,
}

/// An `<img srcset=… sizes=… src=…>`.
#[derive(Debug, Clone, serde::Serialize)]
pub struct SrcSet {
    pub srcset: String,
    pub sizes: String,
    pub src: String,
}

/// What the page saw, in the order of the [`Page`].
#[derive(Debug, Deserialize)]
pub struct Report {
    pub images: Vec<ImageReport>,
    #[serde(default)]
    pub srcsets: Vec<ImageReport>,
    pub videos: Vec<VideoReport>,
    /// A failure of the page's own script, which then reported no element.
    pub error: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ImageReport {
    pub src: String,
    pub complete: bool,
    pub natural_width: u32,
    pub natural_height: u32,
    /// `HTMLImageElement.decode()` resolved: the bytes became a bitmap.
    pub decoded: bool,
    /// The URL the browser chose (for a plain image, its `src`).
    #[serde(default)]
    pub current_src: String,
    /// The chosen resource's pixel size: for a `srcset` candidate `naturalWidth` is divided by
    /// its density, so the page loads `currentSrc` again as a plain image to read it.
    #[serde(default)]
    pub pixel_width: u32,
    #[serde(default)]
    pub pixel_height: u32,
    pub error: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VideoReport {
    pub src: String,
    pub seek_to: f64,
    /// `loadedmetadata` fired.
    pub metadata: bool,
    pub duration: Option<f64>,
    /// `seeked` fired after the page set `currentTime` to `seek_to`.
    pub seeked: bool,
    pub seeked_at: Option<f64>,
    /// After `play()`, `currentTime` moved on from where the seek left it.
    pub played: bool,
    pub current_time: Option<f64>,
    pub error: Option<String>,
}

impl VideoReport {
    /// Loaded, seeked, and played on from the seek point, not from the start.
    pub fn played_from_seek(&self) -> bool {
        self.metadata
            && self.seeked
            && self.played
            && self.current_time.is_some_and(|t| t > self.seek_to)
    }
}

/// A Chromium executable.
#[derive(Debug, Clone)]
pub struct Chromium {
    pub path: PathBuf,
}

impl Chromium {
    /// `IMGBT_CHROMIUM` if set, else the first of `chromium` (Debian's package),
    /// `chromium-browser` and `google-chrome` on `PATH`.
    pub fn find() -> Option<Chromium> {
        if let Some(path) = std::env::var_os("IMGBT_CHROMIUM") {
            return Some(Chromium { path: path.into() });
        }
        let path = std::env::var_os("PATH")?;
        ["chromium", "chromium-browser", "google-chrome"]
            .iter()
            .flat_map(|name| std::env::split_paths(&path).map(move |dir| dir.join(name)))
            .find(|candidate| candidate.is_file())
            .map(|path| Chromium { path })
    }

    /// [`Chromium::find`] for a test: `None` (the test returns) with the reason on stderr, or a
    /// panic under `IMGBT_REQUIRE_BROWSER=1`, where a skipped browser test would hide a failure.
    pub fn for_test(test: &str) -> Option<Chromium> {
        let found = Chromium::find();
        if found.is_none() {
            let why = "no Chromium: install Debian's package (apt-get install -y \
                       --no-install-recommends chromium) or set IMGBT_CHROMIUM";
            if std::env::var("IMGBT_REQUIRE_BROWSER").as_deref() == Ok("1") {
                panic!("{test}: {why} (IMGBT_REQUIRE_BROWSER=1 requires it)");
            }
            eprintln!("SKIPPED {test}: {why}");
        }
        found
    }

    /// Shows `page` in headless Chromium and returns what its script reported. Panics, with
    /// Chromium's own output, when no report comes.
    pub async fn check(&self, page: &Page) -> Report {
        let (tx, rx) = oneshot::channel();
        let page_addr = serve_page(page, tx).await;
        let profile = tempfile::tempdir().expect("a profile directory");
        let log_path = profile.path().join("chromium.log");
        let log = std::fs::File::create(&log_path).expect("chromium.log");
        let child = Command::new(&self.path)
            .args([
                "--headless",
                // As root (CI) Chromium refuses to start sandboxed; the page is our own.
                "--no-sandbox",
                "--disable-gpu",
                "--disable-dev-shm-usage",
                "--no-first-run",
                "--no-default-browser-check",
                "--disable-extensions",
                "--disable-background-networking",
                "--disable-component-update",
                "--autoplay-policy=no-user-gesture-required",
                "--mute-audio",
                // A fixed density and viewport, so which `srcset` candidate is chosen is known.
                "--force-device-scale-factor=1",
                "--window-size=1024,768",
            ])
            .arg(format!(
                "--user-data-dir={}",
                profile.path().join("profile").display()
            ))
            .arg(format!("http://{page_addr}/"))
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("{}: {e}", self.path.display()));
        let _running = Running(child);
        match tokio::time::timeout(REPORT_TIMEOUT, rx).await {
            Ok(Ok(body)) => serde_json::from_slice(&body).unwrap_or_else(|e| {
                panic!("the page's report: {e}: {}", String::from_utf8_lossy(&body))
            }),
            _ => panic!(
                "Chromium sent no report within {REPORT_TIMEOUT:?}; its output:\n{}",
                std::fs::read_to_string(&log_path).unwrap_or_default()
            ),
        }
    }
}

/// Ends Chromium (and, through its closed pipes, its helper processes) when the check is over,
/// whether it reported or not.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn html(page: &Page) -> String {
    let checks = serde_json::json!({
        "images": page.images,
        "srcsets": page.srcsets,
        "videos": page
            .videos
            .iter()
            .map(|(src, seek_to)| serde_json::json!({ "src": src, "seekTo": seek_to }))
            .collect::<Vec<_>>(),
    });
    // JSON is a JavaScript expression; `<` escaped so no URL can close the script element.
    let checks = checks.to_string().replace('<', "\\u003c");
    format!(
        "<!doctype html>\n<meta charset=\"utf-8\">\n<title>imgbt browser check</title>\n\
         <body>\n<script>const CHECKS = {checks};</script>\n<script>\n{SCRIPT}</script>\n"
    )
}

/// Serves the page at `/` and takes its report at `POST /report`, on a free port of 127.0.0.1.
async fn serve_page(page: &Page, report: oneshot::Sender<Bytes>) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("local address");
    let html = Bytes::from(html(page));
    let report = Arc::new(Mutex::new(Some(report)));
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let html = html.clone();
            let report = report.clone();
            tokio::spawn(async move {
                let service = service_fn(move |req: Request<Incoming>| {
                    let html = html.clone();
                    let report = report.clone();
                    async move {
                        let answer = match (req.method(), req.uri().path()) {
                            (&Method::GET, "/") => Response::builder()
                                .header("content-type", "text/html; charset=utf-8")
                                .body(Full::new(html)),
                            (&Method::POST, "/report") => {
                                let body = req.into_body().collect().await;
                                if let (Ok(body), Some(tx)) = (body, report.lock().unwrap().take())
                                {
                                    let _ = tx.send(body.to_bytes());
                                }
                                Response::builder()
                                    .status(StatusCode::NO_CONTENT)
                                    .body(Full::new(Bytes::new()))
                            }
                            _ => Response::builder()
                                .status(StatusCode::NOT_FOUND)
                                .body(Full::new(Bytes::new())),
                        };
                        Ok::<_, Infallible>(answer.expect("a response"))
                    }
                });
                let _ = http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    addr
}

/// Serves the files under `dir` on a free port of 127.0.0.1 until the runtime ends, with
/// `Range`, `If-None-Match` and HEAD answered as a file server answers them.
pub async fn serve_dir(dir: &Path) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("local address");
    let files = tower_http::services::ServeDir::new(dir);
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let files = files.clone();
            tokio::spawn(async move {
                let service = service_fn(move |req: Request<Incoming>| {
                    let mut files = files.clone();
                    async move { files.try_call(req).await }
                });
                let _ = http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    addr
}

/// One request a [`recording_proxy`] forwarded, and what came back.
#[derive(Debug, Clone)]
pub struct Exchange {
    pub path_and_query: String,
    pub accept: Option<String>,
    pub status: u16,
    pub content_type: Option<String>,
    pub vary: Option<String>,
}

/// Forwards every request to `upstream` (`http://host:port`), method, path, query and the
/// headers a delivery reads, and answers with the upstream's status, headers and body (redirects
/// are passed on, not followed). Each exchange is recorded, in order.
pub async fn recording_proxy(upstream: String) -> (SocketAddr, Arc<Mutex<Vec<Exchange>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("local address");
    let log: Arc<Mutex<Vec<Exchange>>> = Arc::default();
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("a client");
    let recorded = log.clone();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let (client, upstream, log) = (client.clone(), upstream.clone(), recorded.clone());
            tokio::spawn(async move {
                let service = service_fn(move |req: Request<Incoming>| {
                    let (client, upstream, log) = (client.clone(), upstream.clone(), log.clone());
                    async move { forward(&client, &upstream, &log, req).await }
                });
                let _ = http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    (addr, log)
}

/// The request headers passed upstream: what a delivery reads.
const FORWARDED: [&str; 4] = ["accept", "range", "if-none-match", "user-agent"];

async fn forward(
    client: &reqwest::Client,
    upstream: &str,
    log: &Mutex<Vec<Exchange>>,
    req: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let path_and_query = req
        .uri()
        .path_and_query()
        .map_or("/".to_owned(), |p| p.as_str().to_owned());
    let header = |map: &hyper::HeaderMap, name: &str| {
        map.get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let accept = header(req.headers(), "accept");
    let method = reqwest::Method::from_bytes(req.method().as_str().as_bytes()).expect("a method");
    let mut outgoing = client.request(method, format!("{upstream}{path_and_query}"));
    for name in FORWARDED {
        if let Some(value) = header(req.headers(), name) {
            outgoing = outgoing.header(name, value);
        }
    }
    let answer = match outgoing.send().await {
        Ok(answer) => answer,
        Err(e) => {
            return Ok(Response::builder()
                .status(StatusCode::BAD_GATEWAY)
                .body(Full::new(Bytes::from(e.to_string())))
                .expect("a response"));
        }
    };
    let status = answer.status().as_u16();
    let mut builder = Response::builder().status(status);
    for (name, value) in answer.headers() {
        builder = builder.header(name.as_str(), value.as_bytes());
    }
    log.lock().unwrap().push(Exchange {
        path_and_query,
        accept,
        status,
        content_type: header(answer.headers(), "content-type"),
        vary: header(answer.headers(), "vary"),
    });
    let body = answer.bytes().await.unwrap_or_default();
    Ok(builder.body(Full::new(body)).expect("a response"))
}
