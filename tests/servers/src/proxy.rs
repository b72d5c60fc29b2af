//! A fault-injecting HTTP proxy for a D1 endpoint that cannot be told to fail itself: the D1
//! gateway Worker under `wrangler dev`, whose code is production code and carries no test hooks.
//!
//! [`FaultProxy`] listens on `127.0.0.1:0` in front of one upstream (`http://host:port[/path]`).
//! Unfaulted, it forwards each request as it came (method, path and query, headers, body; only
//! `Host` and the hop-by-hop headers are its own) over a fresh connection, waits for the whole
//! answer and passes on its status, headers and body. Its faults are those of
//! [`D1Server`](crate::D1Server) ([`Fault`](crate::d1::Fault)), with the same answers:
//!
//! - before-faults (`RateLimited`, `ServerError`, `Disconnect`) answer without forwarding: the
//!   upstream never sees the request;
//! - after-commit faults (`RunThenStatus`, `RunThenDisconnect`) forward, wait for the upstream's
//!   full answer (the write is done), then throw it away and answer the status or hang up.
//!
//! When the upstream cannot be reached or hangs up itself, the proxy hangs up too: the client sees
//! what it would have seen without the proxy.

use crate::d1::{D1Faults, FaultLog, fault_answer};
use crate::{HangUp, Running, serve};
use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Uri, header};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use std::error::Error as StdError;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::net::TcpStream;

/// A running fault proxy; stops when dropped.
pub struct FaultProxy {
    addr: SocketAddr,
    /// The upstream's path prefix (e.g. `/client/v4`), kept in [`FaultProxy::base_url`].
    base_path: String,
    state: Arc<State>,
    _running: Running,
}

struct State {
    /// `host:port` of the upstream.
    authority: String,
    log: FaultLog,
}

type BoxError = Box<dyn StdError + Send + Sync>;

impl FaultProxy {
    /// Starts a proxy on `127.0.0.1:0` in front of `upstream`, an `http://` base URL (a D1
    /// server's or the gateway's; any path is kept in [`base_url`](Self::base_url)).
    ///
    /// # Panics
    /// When `upstream` is not an `http://host:port` URL.
    pub async fn start(upstream: &str) -> FaultProxy {
        let uri: Uri = upstream
            .parse()
            .unwrap_or_else(|e| panic!("upstream {upstream:?}: {e}"));
        assert_eq!(
            uri.scheme_str(),
            Some("http"),
            "upstream {upstream:?}: only http:// is proxied"
        );
        let authority = uri
            .authority()
            .unwrap_or_else(|| panic!("upstream {upstream:?} has no host"));
        let authority = match authority.port_u16() {
            Some(_) => authority.as_str().to_owned(),
            None => format!("{}:80", authority.host()),
        };
        let state = Arc::new(State {
            authority,
            log: FaultLog::default(),
        });
        let shared = state.clone();
        let service = service_fn(move |req| {
            let state = shared.clone();
            async move { state.handle(req).await }
        });
        let (addr, running) = serve(service).await;
        FaultProxy {
            addr,
            base_path: uri.path().trim_end_matches('/').to_owned(),
            state,
            _running: running,
        }
    }

    /// The upstream's base URL with the proxy's address in place of the upstream's: what a client
    /// is pointed at (`IMGBT_D1_BASE_URL`).
    pub fn base_url(&self) -> String {
        format!("http://{}{}", self.addr, self.base_path)
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
}

impl D1Faults for FaultProxy {
    fn fault_log(&self) -> &FaultLog {
        &self.state.log
    }
}

impl State {
    async fn handle(
        self: Arc<Self>,
        req: http::Request<Incoming>,
    ) -> Result<http::Response<Full<Bytes>>, HangUp> {
        let (parts, body) = req.into_parts();
        let body = body
            .collect()
            .await
            .map(|b| b.to_bytes())
            .map_err(|_| HangUp)?;
        let fault = self.log.record(&body);
        if let Some(fault) = fault.as_ref().filter(|f| !f.runs_request()) {
            return fault_answer(fault).ok_or(HangUp);
        }
        let response = self.forward(parts, body).await.map_err(|_| HangUp)?;
        // An after-commit fault: the upstream answered in full; that answer is lost.
        match fault {
            Some(fault) => fault_answer(&fault).ok_or(HangUp),
            None => Ok(response),
        }
    }

    /// Sends the request upstream over a connection of its own and reads the whole answer.
    async fn forward(
        &self,
        parts: http::request::Parts,
        body: Bytes,
    ) -> Result<http::Response<Full<Bytes>>, BoxError> {
        let stream = TcpStream::connect(&self.authority).await?;
        let (mut sender, connection) =
            hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
        let connection = tokio::spawn(connection);
        let path = parts.uri.path_and_query().map_or("/", |p| p.as_str());
        let mut request = http::Request::builder()
            .method(parts.method)
            .uri(path)
            .body(Full::new(body))?;
        *request.headers_mut() = end_to_end(&parts.headers);
        // In place when the client sent one, so the upstream sees the headers in their order.
        request
            .headers_mut()
            .insert(header::HOST, HeaderValue::from_str(&self.authority)?);
        let response = sender.send_request(request).await?;
        let (mut parts, body) = response.into_parts();
        let body = body.collect().await?.to_bytes();
        // The answer is whole: closing the connection now cannot lose any of it.
        drop(sender);
        connection.abort();
        parts.headers = end_to_end(&parts.headers);
        Ok(http::Response::from_parts(parts, Full::new(body)))
    }
}

/// `headers` without those that describe one connection rather than the message (RFC 9110
/// §7.6.1), which each side of a proxy sets for its own connection. A body is passed on whole,
/// so its framing (`transfer-encoding`) is the proxy's too; `content-length` stays, and matches.
fn end_to_end(headers: &HeaderMap) -> HeaderMap {
    let named_by_connection: Vec<String> = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|name| name.trim().to_ascii_lowercase())
        .collect();
    let mut out = headers.clone();
    for name in [
        "connection",
        "keep-alive",
        "proxy-connection",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
    ]
    .into_iter()
    .chain(named_by_connection.iter().map(String::as_str))
    {
        out.remove(name);
    }
    out
}
