//! Local stand-ins for the two Cloudflare services imgbt talks to, for tests that cannot reach
//! Cloudflare. Each listens on `127.0.0.1:0`, answers as the real service does on the wire, records
//! what it was sent, and can be told to fail.
//!
//! Module map:
//! - [`d1`]: [`D1Server`], D1's REST query endpoint
//!   (`POST /client/v4/accounts/{account}/d1/database/{db}/query`) over an in-memory SQLite
//!   database: bearer token, Cloudflare's envelope, one result and `meta` per statement, a request's
//!   statements in one transaction, D1's refusals (BEGIN/COMMIT/SAVEPOINT, unlisted PRAGMAs, limits
//!   of 100 bound parameters and 100,000 bytes a statement), and [`d1::Fault`]s: before the
//!   request runs (429 with or without `retry-after`, 500, a dropped connection) or after it ran
//!   and committed (its answer replaced by a 500, a 502/504 HTML page from Cloudflare's edge, or a
//!   dropped connection). [`D1Faults`] is the fault controls [`D1Server`] and [`FaultProxy`] share.
//! - [`proxy`]: [`FaultProxy`], the same faults in front of a D1 endpoint that has no test hooks
//!   (the D1 gateway Worker under `wrangler dev`): forwards requests faithfully, or fails them
//!   before forwarding, or after the upstream answered.
//! - [`s3`]: [`S3Server`], an S3 endpoint (path-style, as R2 is used) built on `s3s` + `s3s-fs`
//!   with SigV4 verified, one bucket in a temporary directory, every request recorded raw
//!   ([`s3::RecordedRequest`]), and injected S3 XML errors per method.
//! - `s3_store`: what [`S3Server`] stores through: `s3s-fs` with each object key mapped to a short
//!   storage key (`k/<sha256 hex>`), so keys of up to 1,024 bytes work as on R2.
//! - this file: the accept loop the servers share and the random identifiers they hand out.
//!
//! The servers stop when dropped. They must be started inside a Tokio runtime (any flavour).

pub mod d1;
pub mod proxy;
pub mod s3;
mod s3_store;

pub use d1::{D1Faults, D1Server, FaultLog};
pub use proxy::FaultProxy;
pub use s3::S3Server;

use hyper::body::{Body, Incoming};
use hyper::service::Service;
use hyper_util::rt::TokioIo;
use std::error::Error as StdError;
use std::net::SocketAddr;
use std::sync::{Mutex, MutexGuard};
use tokio::net::TcpListener;
use tokio::task::{JoinHandle, JoinSet};

/// The variables that point imgbt (a function, `imgbt`, `Config::from_lookup`) at these two
/// servers: the Cloudflare variables, with the D1 base URL and R2 endpoint overridden.
pub fn cloudflare_env(d1: &D1Server, s3: &S3Server) -> Vec<(&'static str, String)> {
    vec![
        ("CLOUDFLARE_ACCOUNT_ID", d1.account_id().to_owned()),
        ("CLOUDFLARE_API_TOKEN", d1.token().to_owned()),
        ("IMGBT_D1_DATABASE_ID", d1.database_id().to_owned()),
        ("IMGBT_D1_BASE_URL", d1.base_url()),
        ("IMGBT_R2_BUCKET", s3.bucket().to_owned()),
        ("IMGBT_R2_ACCESS_KEY_ID", s3.access_key_id().to_owned()),
        (
            "IMGBT_R2_SECRET_ACCESS_KEY",
            s3.secret_access_key().to_owned(),
        ),
        ("IMGBT_R2_ENDPOINT", s3.endpoint()),
    ]
}

/// `n` random bytes as lowercase hex.
pub fn random_hex(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    getrandom::fill(&mut buf).expect("the OS random source");
    buf.iter().map(|b| format!("{b:02x}")).collect()
}

/// A random D1 database id, shaped as Cloudflare's are (a UUID: 8-4-4-4-12 hex digits).
pub fn random_database_id() -> String {
    let hex = random_hex(16);
    format!(
        "{}-{}-{}-{}-{}",
        &hex[..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..]
    )
}

/// The accept loop of a running server; dropping it stops the loop and every open connection.
pub(crate) struct Running {
    task: JoinHandle<()>,
}

impl Drop for Running {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Binds `127.0.0.1:0` and serves HTTP/1.1 with `service` on every connection.
pub(crate) async fn serve<S, B>(service: S) -> (SocketAddr, Running)
where
    S: Service<http::Request<Incoming>, Response = http::Response<B>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Into<Box<dyn StdError + Send + Sync>>,
    B: Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn StdError + Send + Sync>>,
{
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("binding 127.0.0.1:0");
    let addr = listener.local_addr().expect("the bound address");
    let task = tokio::spawn(async move {
        // Owned by the loop: aborting the loop drops the set, which aborts the connections.
        let mut connections = JoinSet::new();
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let service = service.clone();
            connections.spawn(async move {
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
            // Reap finished connections so the set does not grow without bound.
            while connections.try_join_next().is_some() {}
        }
    });
    (addr, Running { task })
}

/// A service's refusal to answer: hyper closes the connection without a response.
#[derive(Debug)]
pub(crate) struct HangUp;

impl std::fmt::Display for HangUp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("connection dropped by an injected fault")
    }
}

impl StdError for HangUp {}

pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panicking test thread must not wedge a server for the others.
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}
