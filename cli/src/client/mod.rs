//! The API's command-line client: `imgbt upload | ls | show | patch | rm | download | url | keys`,
//! and `imgbt vault show | rename | delivery | rotate-delivery-secret`.
//!
//! - `mod.rs` (here): the connection (`IMGBT_URL`, `IMGBT_API_KEY`), requests with retries, and
//!   how an answer becomes a [`ClientError`] with its exit code.
//! - [`retry`]: backoff, jitter and `Retry-After`.
//! - [`multipart`]: the upload form, streamed from the file, its length known in advance.
//! - [`progress`]: the progress bar, and a file read as a counted stream of chunks.
//! - [`upload`], [`download`], [`assets`] (ls, show, patch, rm), [`url`], [`keys`] (keys ls,
//!   create, revoke), [`vault`] (vault show, rename, delivery, rotate-delivery-secret): the
//!   commands.
//!
//! The key is sent only to `IMGBT_URL`'s API, never to a presigned or upload URL, and never
//! printed; nor is an upload or download URL (each is a capability). The one key ever printed is
//! the one `imgbt keys create` makes, in its own output; the one URL, the delivery URL `imgbt url`
//! is asked for.

pub mod assets;
pub mod download;
pub mod keys;
pub mod multipart;
pub mod progress;
pub mod retry;
pub mod upload;
pub mod url;
pub mod vault;

use clap::Args;
use reqwest::header::{AUTHORIZATION, HeaderValue, RETRY_AFTER};
use reqwest::{Method, RequestBuilder, Response, StatusCode, Url};
use serde_json::{Value, json};
use shared::backoff::Backoff;
use std::future::Future;
use std::time::{Duration, SystemTime};

/// Where the API is and how to authenticate to it; every client command takes these.
#[derive(Args, Clone)]
pub struct ConnectionArgs {
    /// The API's base URL, e.g. http://localhost:9000 (the part before /api/v1).
    #[arg(long, env = "IMGBT_URL", value_name = "URL")]
    pub url: Option<String>,
    /// The API key (pk_… reads, sk_… reads and writes). Prefer the environment variable: a flag
    /// is visible to other users of the machine in the process list.
    #[arg(
        long,
        env = "IMGBT_API_KEY",
        value_name = "KEY",
        hide_env_values = true
    )]
    pub key: Option<String>,
    /// How many times a request is retried after a 429, a 5xx or a connection failure.
    #[arg(long, default_value_t = 4, value_name = "N")]
    pub retries: u32,
}

/// The vault a command works in.
#[derive(Args, Clone)]
pub struct VaultArgs {
    /// The vault id (`vault_…`).
    #[arg(long = "vault", env = "IMGBT_VAULT", value_name = "VAULT_ID")]
    pub vault_id: String,
}

/// Why a client command failed. Each kind has its own exit code (README: "Exit codes").
#[derive(Debug)]
pub enum ClientError {
    /// Bad flags or arguments (exit 2, as for clap's own usage errors).
    Usage(String),
    /// The API answered with an error it will give again: 4xx (exit 3; 404 exit 4; 409 exit 5).
    Api {
        status: u16,
        code: String,
        message: String,
    },
    /// Retries used up on 429, 5xx or connection failures, or a wait longer than the client
    /// waits (exit 6): trying later may work.
    Unavailable {
        status: Option<u16>,
        code: Option<String>,
        message: String,
    },
    /// Anything else: a local file, an answer that is not what the API promises (exit 1).
    Other(String),
}

impl ClientError {
    pub fn exit_code(&self) -> u8 {
        match self {
            ClientError::Other(_) => 1,
            ClientError::Usage(_) => 2,
            ClientError::Api { status: 404, .. } => 4,
            ClientError::Api { status: 409, .. } => 5,
            ClientError::Api { .. } => 3,
            ClientError::Unavailable { .. } => 6,
        }
    }

    pub fn message(&self) -> String {
        match self {
            ClientError::Usage(m) | ClientError::Other(m) => m.clone(),
            ClientError::Api {
                status,
                code,
                message,
            } => format!("{message} ({code}, HTTP {status})"),
            ClientError::Unavailable { message, .. } => message.clone(),
        }
    }

    /// The same error, its message followed by `note` (what the user should know beyond the
    /// answer, e.g. that an earlier attempt may have been carried out).
    pub fn with_note(self, note: &str) -> ClientError {
        let add = |message: String| format!("{message}. {note}");
        match self {
            ClientError::Usage(m) => ClientError::Usage(add(m)),
            ClientError::Other(m) => ClientError::Other(add(m)),
            ClientError::Api {
                status,
                code,
                message,
            } => ClientError::Api {
                status,
                code,
                message: add(message),
            },
            ClientError::Unavailable {
                status,
                code,
                message,
            } => ClientError::Unavailable {
                status,
                code,
                message: add(message),
            },
        }
    }

    /// The `--json` error document: `{"error": message}` as the admin commands print it, with the
    /// API's `code` and `status` when it answered.
    pub fn json(&self) -> Value {
        let mut doc = json!({ "error": self.message(), "exit_code": self.exit_code() });
        let (code, status) = match self {
            ClientError::Api { status, code, .. } => (Some(code.clone()), Some(*status)),
            ClientError::Unavailable { status, code, .. } => (code.clone(), *status),
            _ => (None, None),
        };
        if let Some(code) = code {
            doc["code"] = json!(code);
        }
        if let Some(status) = status {
            doc["status"] = json!(status);
        }
        doc
    }
}

pub fn other(message: impl Into<String>) -> ClientError {
    ClientError::Other(message.into())
}

pub fn usage(message: impl Into<String>) -> ClientError {
    ClientError::Usage(message.into())
}

/// A response, and whether an earlier attempt of the same request may have been carried out
/// although its answer was lost (a 5xx, or a connection that failed after the request went out).
/// Callers of requests that are not idempotent use it to read a 409 or 404 correctly.
pub struct Sent {
    pub response: Response,
    pub ambiguous: bool,
}

/// A configured client of one API.
pub struct Api {
    http: reqwest::Client,
    base: Url,
    authorization: HeaderValue,
    policy: Backoff,
}

impl Api {
    pub fn new(conn: &ConnectionArgs) -> Result<Api, ClientError> {
        let url = conn
            .url
            .as_deref()
            .filter(|u| !u.trim().is_empty())
            .ok_or_else(|| {
                usage(
                    "no API URL: set IMGBT_URL to the API's base URL (e.g. http://localhost:9000) \
                 or pass --url",
                )
            })?;
        let base = Url::parse(url.trim())
            .map_err(|e| usage(format!("IMGBT_URL/--url {url:?} is not a URL: {e}")))?;
        if !matches!(base.scheme(), "http" | "https") || base.cannot_be_a_base() {
            return Err(usage(format!(
                "IMGBT_URL/--url {url:?} must be an http:// or https:// URL"
            )));
        }
        if base.path().trim_end_matches('/').ends_with("/api/v1") {
            return Err(usage(format!(
                "IMGBT_URL/--url {url:?}: give the part before /api/v1 (imgbt adds the rest)"
            )));
        }
        if base.query().is_some() || base.fragment().is_some() {
            return Err(usage(format!(
                "IMGBT_URL/--url {url:?} must not have a query or fragment"
            )));
        }
        let key = conn.key.as_deref().map(str::trim).unwrap_or_default();
        if key.is_empty() {
            return Err(usage(
                "no API key: set IMGBT_API_KEY to a pk_… (read) or sk_… (read and write) key, \
                 or pass --key",
            ));
        }
        // Never echo the key, not even in the complaint about it.
        let mut authorization = HeaderValue::from_str(&format!("Bearer {key}"))
            .map_err(|_| usage("IMGBT_API_KEY/--key contains characters a key cannot have"))?;
        authorization.set_sensitive(true);
        let http = reqwest::Client::builder()
            // Redirects are followed by hand (downloads), so that the key never goes with them.
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(Duration::from_secs(10))
            .read_timeout(Duration::from_secs(60))
            .user_agent(concat!("imgbt/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| other(format!("cannot set up the HTTP client: {}", chain(&e))))?;
        Ok(Api {
            http,
            base,
            authorization,
            policy: Backoff::cli(conn.retries),
        })
    }

    /// `{base}/api/v1/vaults/{vault}/{rest…}`, each segment percent-encoded.
    pub fn url(&self, vault: &str, rest: &[&str]) -> Url {
        let mut url = self.base.clone();
        {
            let mut segments = url.path_segments_mut().expect("checked: base URL");
            segments
                .pop_if_empty()
                .extend(["api", "v1", "vaults", vault])
                .extend(rest);
        }
        url
    }

    /// A request to the API, with the key.
    pub fn request(&self, method: Method, url: Url) -> RequestBuilder {
        self.http
            .request(method, url)
            .header(AUTHORIZATION, self.authorization.clone())
    }

    /// A request elsewhere (an upload or download URL): no key.
    pub fn bare(&self, method: Method, url: Url) -> RequestBuilder {
        self.http.request(method, url)
    }

    /// Sends the request `build` makes, again after a 429, a 5xx or a connection failure, within
    /// the retry policy. `build` runs once per attempt (a streamed body cannot be sent twice).
    /// Returns the last answer, whatever its status; see [`expect`] to turn errors into
    /// [`ClientError`]s. `what` names the request in messages ("upload", "list").
    pub async fn send<F, Fut>(&self, what: &str, build: F) -> Result<Sent, ClientError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<RequestBuilder, ClientError>>,
    {
        self.send_noting(what, build, &mut false).await
    }

    /// [`send`](Api::send), and `ambiguous` says, also when it fails, whether an attempt may have
    /// been carried out although its answer was lost: a command that cannot be repeated safely
    /// (creating a key) must then say what may exist unseen.
    pub async fn send_noting<F, Fut>(
        &self,
        what: &str,
        mut build: F,
        ambiguous: &mut bool,
    ) -> Result<Sent, ClientError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<RequestBuilder, ClientError>>,
    {
        let attempts = self.policy.attempts;
        for attempt in 1..=attempts {
            let request = build().await?;
            let last = attempt == attempts;
            let (problem, retry_after) = match request.send().await {
                Ok(response) if !retry::retryable(response.status().as_u16()) => {
                    return Ok(Sent {
                        response,
                        ambiguous: *ambiguous,
                    });
                }
                Ok(response) => {
                    let status = response.status();
                    if status.is_server_error() {
                        *ambiguous = true;
                    }
                    let retry_after = response
                        .headers()
                        .get(RETRY_AFTER)
                        .and_then(|v| v.to_str().ok())
                        .and_then(|v| retry::parse_retry_after(v, SystemTime::now()));
                    if last {
                        return Ok(Sent {
                            response,
                            ambiguous: *ambiguous,
                        });
                    }
                    if retry_after.is_some_and(|d| d > self.policy.max_wait) {
                        // Not worth waiting for: let the caller report the answer.
                        return Ok(Sent {
                            response,
                            ambiguous: *ambiguous,
                        });
                    }
                    (format!("HTTP {}", status.as_u16()), retry_after)
                }
                Err(err) => {
                    // A refused connection never carried the request; anything later might have.
                    if !err.is_connect() {
                        *ambiguous = true;
                    }
                    let problem = chain(&err);
                    if last {
                        return Err(ClientError::Unavailable {
                            status: None,
                            code: None,
                            message: format!(
                                "{what}: no answer from {} after {attempts} attempt(s): {problem}",
                                host_of(err.url())
                            ),
                        });
                    }
                    (problem, None)
                }
            };
            let wait = self
                .policy
                .wait(attempt, retry_after)
                .expect("longer waits returned above");
            // On stderr, so also with --json: a slow command says why it is slow.
            eprintln!(
                "imgbt: {what}: {problem}; retrying in {:.1} s (attempt {} of {attempts})",
                wait.as_secs_f64(),
                attempt + 1
            );
            tokio::time::sleep(wait).await;
        }
        unreachable!("the last attempt returns")
    }
}

/// The response if its status is one of `ok`, else the error it carries. `where_` names who
/// answered in messages ("the API", "the upload URL").
pub async fn expect(
    response: Response,
    ok: &[StatusCode],
    where_: &str,
) -> Result<Response, ClientError> {
    let status = response.status();
    if ok.contains(&status) {
        return Ok(response);
    }
    let retry_after = response
        .headers()
        .get(RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let body = response.bytes().await.unwrap_or_default();
    let (code, message) = describe(&body)
        .unwrap_or_else(|| (None, format!("{where_} answered HTTP {}", status.as_u16())));
    let status = status.as_u16();
    if retry::retryable(status) {
        let mut message = format!("{message} (HTTP {status}; gave up retrying");
        if let Some(after) = retry_after {
            message.push_str(&format!(", the server asks to retry after {after}"));
        }
        message.push(')');
        return Err(ClientError::Unavailable {
            status: Some(status),
            code,
            message,
        });
    }
    if !(400..500).contains(&status) {
        // A redirect or informational answer where none was expected.
        return Err(other(format!(
            "{where_} answered HTTP {status}, which imgbt did not expect: {message}"
        )));
    }
    Err(ClientError::Api {
        status,
        code: code.unwrap_or_else(|| "HTTP_ERROR".to_owned()),
        message,
    })
}

/// The code and message of an error body: the API's envelope, API Gateway's `{"message"}`, an S3
/// XML error, or the start of a text body.
fn describe(body: &[u8]) -> Option<(Option<String>, String)> {
    if let Ok(value) = serde_json::from_slice::<Value>(body) {
        if let Some(error) = value.get("error") {
            let code = error.get("code").and_then(Value::as_str).map(str::to_owned);
            let message = error.get("message").and_then(Value::as_str)?.to_owned();
            return Some((code, message));
        }
        if let Some(message) = value.get("message").and_then(Value::as_str) {
            return Some((None, message.to_owned()));
        }
    }
    let text = String::from_utf8_lossy(body);
    let text = text.trim();
    if text.is_empty() {
        return None;
    }
    if text.starts_with('<') {
        let tag = |name: &str| {
            let open = format!("<{name}>");
            let start = text.find(&open)? + open.len();
            let end = text[start..].find("</")? + start;
            Some(text[start..end].to_owned())
        };
        if let Some(code) = tag("Code") {
            let message = tag("Message").unwrap_or_else(|| code.clone());
            return Some((Some(code), message));
        }
    }
    let line: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(200)
        .collect();
    Some((None, line))
}

/// An error and its causes on one line, without the URL (which may carry a capability).
pub fn chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut text = match err.downcast_ref::<reqwest::Error>() {
        Some(e) => describe_reqwest(e),
        None => err.to_string(),
    };
    let mut source = err.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

fn describe_reqwest(err: &reqwest::Error) -> String {
    if err.is_timeout() {
        "timed out".to_owned()
    } else if err.is_connect() {
        "could not connect".to_owned()
    } else if err.is_body() {
        "the connection failed while sending or receiving a body".to_owned()
    } else {
        // Display without the URL.
        let mut text = String::new();
        let plain = format!("{err}");
        match err.url() {
            Some(url) => text.push_str(&plain.replace(&format!(" ({url})"), "")),
            None => text.push_str(&plain),
        }
        text
    }
}

/// `host[:port]` of a URL, for messages that must not show its path or query.
pub fn host_of(url: Option<&Url>) -> String {
    match url {
        Some(url) => match (url.host_str(), url.port()) {
            (Some(host), Some(port)) => format!("{host}:{port}"),
            (Some(host), None) => host.to_owned(),
            _ => "the server".to_owned(),
        },
        None => "the server".to_owned(),
    }
}

/// Reads a successful answer's JSON body.
pub async fn json_body(response: Response, what: &str) -> Result<Value, ClientError> {
    let bytes = response
        .bytes()
        .await
        .map_err(|e| unavailable(format!("{what}: reading the answer: {}", chain(&e))))?;
    serde_json::from_slice(&bytes).map_err(|e| {
        other(format!(
            "{what}: the answer is not the JSON the API promises: {e}"
        ))
    })
}

pub fn unavailable(message: String) -> ClientError {
    ClientError::Unavailable {
        status: None,
        code: None,
        message,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_bodies_are_read_from_the_envelope_the_gateway_and_s3() {
        assert_eq!(
            describe(br#"{"error":{"code":"CONFLICT","message":"taken","status":409}}"#),
            Some((Some("CONFLICT".into()), "taken".into()))
        );
        assert_eq!(
            describe(br#"{"message":"Service Unavailable"}"#),
            Some((None, "Service Unavailable".into()))
        );
        assert_eq!(
            describe(b"<?xml version=\"1.0\"?><Error><Code>AccessDenied</Code><Message>Request has expired</Message></Error>"),
            Some((Some("AccessDenied".into()), "Request has expired".into()))
        );
        assert_eq!(describe(b"  "), None);
        assert_eq!(
            describe(b"bad\ngateway"),
            Some((None, "bad gateway".into()))
        );
    }

    #[test]
    fn urls_keep_the_base_path_and_encode_segments() {
        let conn = ConnectionArgs {
            url: Some("https://api.example.com/prod/".into()),
            key: Some("sk_x".into()),
            retries: 0,
        };
        let api = Api::new(&conn).unwrap();
        assert_eq!(
            api.url("vault_1", &["assets", "a/b"]).as_str(),
            "https://api.example.com/prod/api/v1/vaults/vault_1/assets/a%2Fb"
        );
    }

    #[test]
    fn a_missing_url_or_key_is_a_usage_error_that_never_shows_the_key() {
        let conn = |url: Option<&str>, key: Option<&str>| ConnectionArgs {
            url: url.map(Into::into),
            key: key.map(Into::into),
            retries: 0,
        };
        let err = Api::new(&conn(None, Some("sk_1"))).err().unwrap();
        assert!(err.message().contains("IMGBT_URL"), "{}", err.message());
        assert_eq!(err.exit_code(), 2);
        let err = Api::new(&conn(Some("http://x"), None)).err().unwrap();
        assert!(err.message().contains("IMGBT_API_KEY"));
        let err = Api::new(&conn(Some("http://x"), Some("sk_sec\nret")))
            .err()
            .unwrap();
        assert!(!err.message().contains("sk_sec"), "{}", err.message());
        let err = Api::new(&conn(Some("ftp://x"), Some("sk_1")))
            .err()
            .unwrap();
        assert_eq!(err.exit_code(), 2);
    }
}
