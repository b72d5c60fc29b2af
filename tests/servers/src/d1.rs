//! A local Cloudflare D1 REST endpoint over SQLite.
//!
//! Serves `POST {base_url}/accounts/{account_id}/d1/database/{database_id}/query` as D1 documents it:
//!
//! - `Authorization: Bearer <token>` checked first; missing or wrong → 401, code 10000.
//! - Another account → 403, code 9109; another database → 404, code 7404; another path → 404 with
//!   Cloudflare's routing errors (7003, 7000); another method on the query path → 405, code 10405.
//! - Body `{"sql","params"}` or `{"batch":[{"sql","params"},…]}`; a `sql` may hold several
//!   `;`-separated statements, each of which gets the same `params` and its own result. A body that
//!   is not JSON → 400, code 6007; JSON without `sql`/`batch`, or a parameter that is an array or
//!   object → 400, code 7400.
//! - All statements of a request run in one transaction: if one fails, none is applied, and the
//!   answer is 400 with code 7500 and SQLite's own message followed by ` at offset N` (when SQLite
//!   reports a position, as workerd does) and `: SQLITE_<PRIMARY CODE>`, e.g.
//!   `UNIQUE constraint failed: assets.filename: SQLITE_CONSTRAINT`.
//! - Refused as D1 refuses them, 400 code 7500: BEGIN/COMMIT/END/ROLLBACK/SAVEPOINT/RELEASE (the
//!   batch is the transaction), ATTACH/DETACH and PRAGMAs outside D1's list (`not authorized:
//!   SQLITE_AUTH`), more than 100 bound parameters or a statement over 100,000 bytes
//!   (`SQLITE_TOOBIG`), and a parameter count that differs from the statement's (`Wrong number of
//!   parameter bindings for SQL query.`).
//! - Parameters: JSON string → TEXT, integer → INTEGER, other number → REAL, null → NULL,
//!   boolean → 0/1. Columns come back as JSON: INTEGER and REAL as numbers, TEXT as a string,
//!   NULL as null, BLOB as an array of byte values.
//! - `meta` per statement: `changed_db`, `changes` (SQLite's total-changes delta), `duration` (ms),
//!   `last_row_id`, `rows_read` and `rows_written` (approximations: SQLite does not count them as
//!   D1 does), `size_after` (page count × page size), plus `served_by_primary` and `timings`.
//!
//! Foreign keys are enforced, as on D1.
//!
//! Faults ([`Fault`], queued with [`D1Server::fail_next`], one per request) come in two kinds:
//!
//! - Before the request runs, nothing applied: 429 with Cloudflare's rate-limit envelope (code
//!   971, `retry-after` when asked), 500 with D1's envelope (code 7500), or a hang-up after reading
//!   the request ([`Fault::Disconnect`]).
//! - After the request ran and committed, as when a gateway or the network fails between D1 and
//!   the client: its answer is thrown away and replaced by a status ([`Fault::RunThenStatus`]: a
//!   500 in D1's envelope; a 502, 504 or any other status as the HTML error page Cloudflare's
//!   edge sends) or by a hang-up ([`Fault::RunThenDisconnect`]). A client that resends such a
//!   write runs it twice.

use crate::{HangUp, Running, lock, random_database_id, random_hex, serve};
use bytes::Bytes;
use http::{HeaderValue, Method, StatusCode, header};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use rusqlite::fallible_iterator::FallibleIterator;
use rusqlite::types::{Null, ValueRef};
use rusqlite::{Batch, Connection, StatementStatus};
use serde_json::{Map, Value, json};
use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// D1's documented limits.
pub const MAX_BOUND_PARAMS: usize = 100;
pub const MAX_STATEMENT_BYTES: usize = 100_000;

/// The PRAGMAs D1 lets through; any other is `not authorized`.
const ALLOWED_PRAGMAS: &[&str] = &[
    "table_list",
    "table_info",
    "table_xinfo",
    "index_list",
    "index_info",
    "index_xinfo",
    "quick_check",
    "foreign_key_check",
    "foreign_key_list",
    "case_sensitive_like",
    "ignore_check_constraints",
    "foreign_keys",
    "defer_foreign_keys",
    "legacy_alter_table",
    "recursive_triggers",
    "reverse_unordered_selects",
    "optimize",
];

/// A row as D1 returns it: column name to JSON value.
pub type Row = Map<String, Value>;

/// A failure injected into one request; see [`D1Server::fail_next`] and
/// [`FaultProxy::fail_next`](crate::FaultProxy::fail_next).
///
/// The first three fail *before* the request runs: nothing is applied. The last two fail *after*
/// it ran and committed, as a gateway or network failure between D1 and the client does: the
/// client gets no answer, or the wrong one, for a write that happened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// Not run: 429 with Cloudflare's rate-limit envelope (code 971), and `retry-after` when set.
    RateLimited { retry_after_secs: Option<u64> },
    /// Not run: 500 with `{"success":false,"errors":[{"code":7500,"message":"internal error"}],…}`.
    ServerError,
    /// Not run: reads the whole request, then closes the connection without answering. The
    /// client cannot know whether the batch ran (it did not).
    Disconnect,
    /// Runs the request in full (committed, counted like any other), throws its answer away and
    /// answers this status instead: 500 with D1's envelope as [`Fault::ServerError`]; any other
    /// status with the HTML error page Cloudflare's edge sends (e.g. 502 Bad gateway, 504 Gateway
    /// time-out; `content-type: text/html`, `server: cloudflare`, a `cf-ray`), which is not JSON.
    RunThenStatus(u16),
    /// Runs the request in full (committed), then closes the connection without answering: the
    /// client cannot know whether the batch ran (it did).
    RunThenDisconnect,
}

impl Fault {
    /// True for the faults that let the request run before failing it.
    pub fn runs_request(&self) -> bool {
        matches!(self, Fault::RunThenStatus(_) | Fault::RunThenDisconnect)
    }
}

/// What a D1 endpoint under test keeps of its requests, and the faults queued for the next ones:
/// a [`D1Server`]'s, and a [`FaultProxy`](crate::FaultProxy)'s.
#[derive(Debug, Default)]
pub struct FaultLog {
    requests: AtomicU64,
    bodies: Mutex<Vec<Value>>,
    faults: Mutex<VecDeque<Fault>>,
}

impl FaultLog {
    /// Counts a request whose body is `body` and takes the fault queued for it, if any.
    pub(crate) fn record(&self, body: &[u8]) -> Option<Fault> {
        self.requests.fetch_add(1, Ordering::SeqCst);
        lock(&self.bodies).push(serde_json::from_slice(body).unwrap_or(Value::Null));
        lock(&self.faults).pop_front()
    }
}

/// The fault controls of a D1 endpoint under test, whichever serves it: a [`D1Server`], or a
/// [`FaultProxy`](crate::FaultProxy) in front of another D1 (the gateway on workerd).
pub trait D1Faults: Send + Sync {
    /// Where the endpoint keeps its requests and faults.
    fn fault_log(&self) -> &FaultLog;

    /// Fails the next `n` requests with `fault` (after any faults already queued).
    ///
    /// # Panics
    /// On [`Fault::RunThenStatus`] with a number that is not an HTTP status (100–999).
    fn fail_next(&self, n: usize, fault: Fault) {
        check_fault(&fault);
        lock(&self.fault_log().faults).extend(std::iter::repeat_n(fault, n));
    }

    /// Requests received since start or the last reset, faulted ones included.
    fn requests(&self) -> u64 {
        self.fault_log().requests.load(Ordering::SeqCst)
    }

    /// Zeroes [`requests`](Self::requests) and forgets [`request_bodies`](Self::request_bodies).
    fn reset_requests(&self) {
        let log = self.fault_log();
        log.requests.store(0, Ordering::SeqCst);
        lock(&log.bodies).clear();
    }

    /// The body of every request received, in order, as JSON (`null` when it was not JSON).
    fn request_bodies(&self) -> Vec<Value> {
        lock(&self.fault_log().bodies).clone()
    }
}

impl D1Faults for D1Server {
    fn fault_log(&self) -> &FaultLog {
        &self.state.log
    }
}

/// A running D1 stand-in; stops when dropped.
pub struct D1Server {
    addr: SocketAddr,
    state: Arc<State>,
    _running: Running,
}

struct State {
    account_id: String,
    database_id: String,
    token: String,
    conn: Mutex<Connection>,
    log: FaultLog,
    latency: Mutex<Duration>,
}

impl D1Server {
    /// Starts a server on `127.0.0.1:0` with an empty in-memory database, a random 32-hex-digit
    /// account id, a random UUID-shaped database id and a random bearer token.
    pub async fn start() -> D1Server {
        let conn = Connection::open_in_memory().expect("opening an in-memory SQLite database");
        conn.execute_batch("PRAGMA foreign_keys = ON;")
            .expect("enabling foreign keys");
        let state = Arc::new(State {
            account_id: random_hex(16),
            database_id: random_database_id(),
            token: random_hex(20),
            conn: Mutex::new(conn),
            log: FaultLog::default(),
            latency: Mutex::new(Duration::ZERO),
        });
        let shared = state.clone();
        let service = service_fn(move |req| {
            let state = shared.clone();
            async move { state.handle(req).await }
        });
        let (addr, running) = serve(service).await;
        D1Server {
            addr,
            state,
            _running: running,
        }
    }

    /// `http://127.0.0.1:PORT/client/v4`, the counterpart of `https://api.cloudflare.com/client/v4`.
    pub fn base_url(&self) -> String {
        format!("http://{}/client/v4", self.addr)
    }

    /// The full URL of the query endpoint.
    pub fn query_url(&self) -> String {
        format!(
            "{}/accounts/{}/d1/database/{}/query",
            self.base_url(),
            self.state.account_id,
            self.state.database_id
        )
    }

    pub fn account_id(&self) -> &str {
        &self.state.account_id
    }

    pub fn database_id(&self) -> &str {
        &self.state.database_id
    }

    /// The bearer token the server accepts.
    pub fn token(&self) -> &str {
        &self.state.token
    }

    /// Waits `latency` before every answer from now on.
    pub fn set_latency(&self, latency: Duration) {
        *lock(&self.state.latency) = latency;
    }

    /// Runs `sql` (one statement, no parameters) directly on the database, bypassing HTTP, the
    /// request count and D1's refusals, and returns its rows as the endpoint would.
    ///
    /// # Panics
    /// When SQLite refuses the statement.
    pub fn query(&self, sql: &str) -> Vec<Row> {
        let conn = lock(&self.state.conn);
        let mut stmt = conn.prepare(sql).unwrap_or_else(|e| panic!("{sql}: {e}"));
        let names: Vec<String> = stmt.column_names().into_iter().map(str::to_owned).collect();
        let mut rows = stmt.raw_query();
        let mut out = Vec::new();
        while let Some(row) = rows.next().unwrap_or_else(|e| panic!("{sql}: {e}")) {
            let mut map = Row::new();
            for (i, name) in names.iter().enumerate() {
                map.insert(name.clone(), json_value(row.get_ref(i).expect("a column")));
            }
            out.push(map);
        }
        out
    }

    /// Runs several `;`-separated statements directly on the database (schema set-up, fixtures),
    /// bypassing HTTP and D1's refusals.
    ///
    /// # Panics
    /// When SQLite refuses a statement.
    pub fn execute_batch(&self, sql: &str) {
        lock(&self.state.conn)
            .execute_batch(sql)
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
    }
}

/// A refusal: HTTP status, Cloudflare error code, message.
#[derive(Debug)]
struct Failure {
    status: StatusCode,
    code: u32,
    message: String,
}

impl Failure {
    fn new(status: StatusCode, code: u32, message: impl Into<String>) -> Self {
        Failure {
            status,
            code,
            message: message.into(),
        }
    }

    fn sql(message: impl Into<String>) -> Self {
        Failure::new(StatusCode::BAD_REQUEST, 7500, message)
    }

    fn malformed(detail: impl std::fmt::Display) -> Self {
        Failure::new(
            StatusCode::BAD_REQUEST,
            7400,
            format!("The request is malformed: {detail}"),
        )
    }
}

fn envelope_error(errors: Value) -> Value {
    json!({ "success": false, "errors": errors, "messages": [], "result": null })
}

fn json_response(status: StatusCode, body: &Value) -> http::Response<Full<Bytes>> {
    let mut response = http::Response::new(Full::new(Bytes::from(body.to_string())));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

fn failure_response(failure: &Failure) -> http::Response<Full<Bytes>> {
    json_response(
        failure.status,
        &envelope_error(json!([{ "code": failure.code, "message": failure.message }])),
    )
}

/// The answer `fault` gives in place of the request's own; `None` when it hangs up instead.
/// The caller decides whether the request runs first ([`Fault::runs_request`]).
pub(crate) fn fault_answer(fault: &Fault) -> Option<http::Response<Full<Bytes>>> {
    match fault {
        Fault::RateLimited { retry_after_secs } => {
            let mut response = json_response(
                StatusCode::TOO_MANY_REQUESTS,
                &envelope_error(json!([{
                    "code": 971,
                    "message": "Please wait and consider throttling your request speed"
                }])),
            );
            if let Some(secs) = retry_after_secs {
                response
                    .headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from(*secs));
            }
            Some(response)
        }
        Fault::ServerError => Some(internal_error()),
        Fault::RunThenStatus(status) => Some(status_page(*status)),
        Fault::Disconnect | Fault::RunThenDisconnect => None,
    }
}

/// Refuses a fault no server could answer, so that a test does not run with another one.
fn check_fault(fault: &Fault) {
    if let Fault::RunThenStatus(status) = fault {
        assert!(
            StatusCode::from_u16(*status).is_ok(),
            "Fault::RunThenStatus({status}): not an HTTP status"
        );
    }
}

fn internal_error() -> http::Response<Full<Bytes>> {
    failure_response(&Failure::new(
        StatusCode::INTERNAL_SERVER_ERROR,
        7500,
        "internal error",
    ))
}

/// The status an after-commit fault answers: a 500 comes from D1 itself (its envelope); any other
/// comes from Cloudflare's edge, which answers with an HTML page of its own, not the API's JSON.
fn status_page(status: u16) -> http::Response<Full<Bytes>> {
    // `check_fault` let only valid statuses in.
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_GATEWAY);
    if status == StatusCode::INTERNAL_SERVER_ERROR {
        return internal_error();
    }
    let reason = match status.as_u16() {
        502 => "Bad gateway",
        504 => "Gateway time-out",
        _ => status.canonical_reason().unwrap_or("Error"),
    };
    let ray = random_hex(8);
    let code = status.as_u16();
    let page = format!(
        "<!DOCTYPE html>\n<html lang=\"en-US\">\n<head>\n<title>api.cloudflare.com | {code}: {reason}</title>\n\
         <meta charset=\"UTF-8\" />\n</head>\n<body>\n<div id=\"cf-error-details\">\n\
         <h1><span>{reason}</span> <span>Error code {code}</span></h1>\n\
         <p>The web server reported a {reason_lower} error.</p>\n\
         <p>Cloudflare Ray ID: <strong>{ray}</strong></p>\n</div>\n</body>\n</html>\n",
        reason_lower = reason.to_ascii_lowercase(),
    );
    let mut response = http::Response::new(Full::new(Bytes::from(page)));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=UTF-8"),
    );
    headers.insert(header::SERVER, HeaderValue::from_static("cloudflare"));
    if let Ok(ray) = HeaderValue::from_str(&format!("{ray}-LHR")) {
        headers.insert("cf-ray", ray);
    }
    response
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
            .unwrap_or_default();
        let fault = self.log.record(&body);
        let latency = *lock(&self.latency);
        if !latency.is_zero() {
            tokio::time::sleep(latency).await;
        }
        if let Some(fault) = fault.as_ref().filter(|f| !f.runs_request()) {
            return fault_answer(fault).ok_or(HangUp);
        }
        let response = match self.answer(&parts, &body) {
            Ok(results) => json_response(
                StatusCode::OK,
                &json!({ "success": true, "errors": [], "messages": [], "result": results }),
            ),
            Err(failure) => failure_response(&failure),
        };
        // An after-commit fault: the request ran and committed; its answer is lost.
        match fault {
            Some(fault) => fault_answer(&fault).ok_or(HangUp),
            None => Ok(response),
        }
    }

    fn answer(&self, parts: &http::request::Parts, body: &[u8]) -> Result<Vec<Value>, Failure> {
        let path = parts.uri.path();
        let Some((account, database)) = route(path) else {
            return Err(not_routed(path));
        };
        let authorized = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .is_some_and(|token| token.trim() == self.token);
        if !authorized {
            return Err(Failure::new(
                StatusCode::UNAUTHORIZED,
                10000,
                "Authentication error",
            ));
        }
        if parts.method != Method::POST {
            return Err(Failure::new(
                StatusCode::METHOD_NOT_ALLOWED,
                10405,
                format!("Method {} not allowed for this route", parts.method),
            ));
        }
        if account != self.account_id {
            return Err(Failure::new(
                StatusCode::FORBIDDEN,
                9109,
                "Unauthorized to access requested resource",
            ));
        }
        if database != self.database_id {
            return Err(Failure::new(
                StatusCode::NOT_FOUND,
                7404,
                format!("The database {database} could not be found"),
            ));
        }
        let statements = parse_body(body)?;
        let mut conn = lock(&self.conn);
        run(&mut conn, &statements)
    }
}

/// `/client/v4/accounts/{account}/d1/database/{database}/query` → (account, database).
fn route(path: &str) -> Option<(&str, &str)> {
    let rest = path.strip_prefix("/client/v4/accounts/")?;
    let mut segments = rest.split('/');
    let account = segments.next()?;
    let (d1, database_word, database, query) = (
        segments.next()?,
        segments.next()?,
        segments.next()?,
        segments.next()?,
    );
    if segments.next().is_some()
        || d1 != "d1"
        || database_word != "database"
        || query != "query"
        || account.is_empty()
        || database.is_empty()
    {
        return None;
    }
    Some((account, database))
}

fn not_routed(path: &str) -> Failure {
    // Cloudflare's answer to a path it has no route for carries two errors; the first suffices.
    Failure::new(
        StatusCode::NOT_FOUND,
        7003,
        format!("Could not route to {path}, perhaps your object identifier is invalid?"),
    )
}

/// One entry of a request: SQL (one or more statements) and the parameters each statement binds.
#[derive(Debug)]
struct Entry {
    sql: String,
    params: Vec<Value>,
}

fn parse_body(body: &[u8]) -> Result<Vec<Entry>, Failure> {
    let value: Value = serde_json::from_slice(body).map_err(|_| {
        Failure::new(
            StatusCode::BAD_REQUEST,
            6007,
            "Malformed JSON in request body",
        )
    })?;
    let Some(object) = value.as_object() else {
        return Err(Failure::malformed("expected a JSON object"));
    };
    match object.get("batch") {
        Some(Value::Array(items)) => {
            if items.is_empty() {
                return Err(Failure::malformed("batch is empty"));
            }
            items.iter().map(parse_entry).collect()
        }
        Some(_) => Err(Failure::malformed(
            "batch must be an array of {sql, params}",
        )),
        None => Ok(vec![parse_entry(&value)?]),
    }
}

fn parse_entry(value: &Value) -> Result<Entry, Failure> {
    let Some(sql) = value.get("sql").and_then(Value::as_str) else {
        return Err(Failure::malformed("sql is required and must be a string"));
    };
    let params = match value.get("params") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(params)) => {
            if params.iter().any(|p| p.is_array() || p.is_object()) {
                return Err(Failure::malformed(
                    "params must be strings, numbers, booleans or null",
                ));
            }
            params.clone()
        }
        Some(_) => return Err(Failure::malformed("params must be an array")),
    };
    Ok(Entry {
        sql: sql.to_owned(),
        params,
    })
}

/// Runs every statement of a request in one transaction; any failure rolls all of them back.
fn run(conn: &mut Connection, entries: &[Entry]) -> Result<Vec<Value>, Failure> {
    for entry in entries {
        if entry.params.len() > MAX_BOUND_PARAMS {
            return Err(Failure::sql(format!(
                "too many SQL variables: {} bound, at most {MAX_BOUND_PARAMS}: SQLITE_ERROR",
                entry.params.len()
            )));
        }
        if entry.sql.len() > MAX_STATEMENT_BYTES {
            return Err(Failure::sql(format!(
                "statement too long: {} bytes, at most {MAX_STATEMENT_BYTES}: SQLITE_TOOBIG",
                entry.sql.len()
            )));
        }
    }
    let tx = conn.transaction().map_err(sql_failure)?;
    let mut results = Vec::new();
    for entry in entries {
        let before = results.len();
        let mut batch = Batch::new(&tx, &entry.sql);
        while let Some(mut stmt) = batch.next().map_err(sql_failure)? {
            refuse(&stmt.expanded_sql().unwrap_or_default())?;
            results.push(execute(&tx, &mut stmt, &entry.params)?);
        }
        if results.len() == before {
            return Err(Failure::sql("No SQL statements detected."));
        }
    }
    // Dropping `tx` on any early return above rolls the whole request back.
    tx.commit().map_err(sql_failure)?;
    Ok(results)
}

fn execute(
    conn: &Connection,
    stmt: &mut rusqlite::Statement<'_>,
    params: &[Value],
) -> Result<Value, Failure> {
    let started = Instant::now();
    if stmt.parameter_count() != params.len() {
        return Err(Failure::sql(
            "Wrong number of parameter bindings for SQL query.",
        ));
    }
    for (i, param) in params.iter().enumerate() {
        let index = i + 1;
        let bound = match param {
            Value::Null => stmt.raw_bind_parameter(index, Null),
            Value::Bool(b) => stmt.raw_bind_parameter(index, i64::from(*b)),
            Value::Number(n) => match n.as_i64() {
                Some(int) => stmt.raw_bind_parameter(index, int),
                None => stmt.raw_bind_parameter(index, n.as_f64().unwrap_or(f64::NAN)),
            },
            Value::String(text) => stmt.raw_bind_parameter(index, text.as_str()),
            Value::Array(_) | Value::Object(_) => unreachable!("refused by parse_entry"),
        };
        bound.map_err(sql_failure)?;
    }
    let names: Vec<String> = stmt.column_names().into_iter().map(str::to_owned).collect();
    let readonly = stmt.readonly();
    let changes_before = conn.total_changes();
    let mut rows = Vec::new();
    {
        let mut cursor = stmt.raw_query();
        while let Some(row) = cursor.next().map_err(sql_failure)? {
            let mut map = Row::new();
            for (i, name) in names.iter().enumerate() {
                map.insert(
                    name.clone(),
                    json_value(row.get_ref(i).map_err(sql_failure)?),
                );
            }
            rows.push(Value::Object(map));
        }
    }
    let changes = conn.total_changes().saturating_sub(changes_before);
    let scanned = u64::try_from(stmt.get_status(StatementStatus::FullscanStep)).unwrap_or(0);
    let rows_read = scanned.max(rows.len() as u64);
    let size_after = pragma_number(conn, "page_count") * pragma_number(conn, "page_size");
    let duration = started.elapsed().as_secs_f64() * 1000.0;
    Ok(json!({
        "success": true,
        "results": rows,
        "meta": {
            "served_by_primary": true,
            "timings": { "sql_duration_ms": duration },
            "duration": duration,
            "changes": changes,
            "last_row_id": conn.last_insert_rowid(),
            "changed_db": changes > 0 || !readonly,
            "size_after": size_after,
            "rows_read": rows_read,
            "rows_written": changes,
        }
    }))
}

fn pragma_number(conn: &Connection, pragma: &str) -> i64 {
    conn.query_row(&format!("PRAGMA {pragma}"), [], |row| row.get(0))
        .unwrap_or(0)
}

/// Column values as D1 returns them in JSON.
fn json_value(value: ValueRef<'_>) -> Value {
    match value {
        ValueRef::Null => Value::Null,
        ValueRef::Integer(n) => n.into(),
        ValueRef::Real(x) => serde_json::Number::from_f64(x).map_or(Value::Null, Value::Number),
        ValueRef::Text(bytes) => String::from_utf8_lossy(bytes).into_owned().into(),
        ValueRef::Blob(bytes) => bytes.iter().map(|&b| Value::from(b)).collect(),
    }
}

/// D1's refusals of statements SQLite itself would run.
fn refuse(sql: &str) -> Result<(), Failure> {
    let mut words = Words { rest: sql };
    let first = words.next().unwrap_or_default().to_ascii_uppercase();
    match first.as_str() {
        "BEGIN" | "COMMIT" | "END" | "ROLLBACK" | "SAVEPOINT" | "RELEASE" => Err(Failure::sql(
            "To execute a transaction, please use the state.storage.transaction() or \
             state.storage.transactionSync() APIs instead of the SQL BEGIN TRANSACTION or \
             SAVEPOINT statements (transactions are not supported: a request's statements \
             already run as one transaction): SQLITE_AUTH",
        )),
        "ATTACH" | "DETACH" => Err(Failure::sql("not authorized: SQLITE_AUTH")),
        "PRAGMA" => {
            let name = words.next().unwrap_or_default();
            // `PRAGMA main.foreign_keys`: the words are `main`, `.`, `foreign_keys`.
            let name = if words.rest.trim_start().starts_with('.') {
                words.next();
                words.next().unwrap_or_default()
            } else {
                name
            };
            let name = name.trim_matches(|c| c == '"' || c == '`' || c == '[' || c == ']');
            if ALLOWED_PRAGMAS.contains(&name.to_ascii_lowercase().as_str()) {
                Ok(())
            } else {
                Err(Failure::sql("not authorized: SQLITE_AUTH"))
            }
        }
        _ => Ok(()),
    }
}

/// The words of SQL text, skipping whitespace and comments; punctuation comes one character at
/// a time. Enough to recognise a statement's leading keywords.
struct Words<'a> {
    rest: &'a str,
}

impl<'a> Words<'a> {
    fn next(&mut self) -> Option<&'a str> {
        loop {
            self.rest = self.rest.trim_start();
            if let Some(after) = self.rest.strip_prefix("--") {
                self.rest = after.split_once('\n').map_or("", |(_, tail)| tail);
            } else if let Some(after) = self.rest.strip_prefix("/*") {
                self.rest = after.split_once("*/").map_or("", |(_, tail)| tail);
            } else {
                break;
            }
        }
        let first = self.rest.chars().next()?;
        let end = if first.is_alphanumeric()
            || first == '_'
            || first == '"'
            || first == '`'
            || first == '['
        {
            self.rest
                .char_indices()
                .skip(1)
                .find(|&(_, c)| {
                    !(c.is_alphanumeric() || c == '_' || c == '"' || c == '`' || c == ']')
                })
                .map_or(self.rest.len(), |(i, _)| i)
        } else {
            first.len_utf8()
        };
        let (word, rest) = self.rest.split_at(end);
        self.rest = rest;
        Some(word)
    }
}

fn sql_failure(err: rusqlite::Error) -> Failure {
    let (message, code, offset) = match &err {
        rusqlite::Error::SqliteFailure(e, message) => (
            message.clone().unwrap_or_else(|| e.to_string()),
            e.extended_code,
            -1,
        ),
        rusqlite::Error::SqlInputError {
            error, msg, offset, ..
        } => (msg.clone(), error.extended_code, *offset),
        other => (other.to_string(), 1, -1),
    };
    let at = if offset >= 0 {
        format!(" at offset {offset}")
    } else {
        String::new()
    };
    Failure::sql(format!("{message}{at}: {}", code_name(code)))
}

/// The name of SQLite's primary result code of an (extended) code.
fn code_name(code: i32) -> &'static str {
    match code & 0xff {
        2 => "SQLITE_INTERNAL",
        3 => "SQLITE_PERM",
        4 => "SQLITE_ABORT",
        5 => "SQLITE_BUSY",
        6 => "SQLITE_LOCKED",
        7 => "SQLITE_NOMEM",
        8 => "SQLITE_READONLY",
        9 => "SQLITE_INTERRUPT",
        10 => "SQLITE_IOERR",
        11 => "SQLITE_CORRUPT",
        12 => "SQLITE_NOTFOUND",
        13 => "SQLITE_FULL",
        14 => "SQLITE_CANTOPEN",
        15 => "SQLITE_PROTOCOL",
        16 => "SQLITE_EMPTY",
        17 => "SQLITE_SCHEMA",
        18 => "SQLITE_TOOBIG",
        19 => "SQLITE_CONSTRAINT",
        20 => "SQLITE_MISMATCH",
        21 => "SQLITE_MISUSE",
        22 => "SQLITE_NOLFS",
        23 => "SQLITE_AUTH",
        24 => "SQLITE_FORMAT",
        25 => "SQLITE_RANGE",
        26 => "SQLITE_NOTADB",
        _ => "SQLITE_ERROR",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_skip_comments_and_split_punctuation() {
        let mut words = Words {
            rest: "  -- note\n /* x */ PRAGMA main.journal_mode = WAL",
        };
        assert_eq!(words.next(), Some("PRAGMA"));
        assert_eq!(words.next(), Some("main"));
        assert_eq!(words.next(), Some("."));
        assert_eq!(words.next(), Some("journal_mode"));
        assert_eq!(words.next(), Some("="));
    }

    #[test]
    fn d1_refuses_transaction_control_and_unlisted_pragmas() {
        for sql in [
            "BEGIN",
            "begin transaction",
            "COMMIT",
            "END",
            "ROLLBACK",
            "SAVEPOINT a",
            "RELEASE a",
        ] {
            assert!(
                refuse(sql).unwrap_err().message.contains("transaction"),
                "{sql}"
            );
        }
        assert!(refuse("PRAGMA journal_mode = WAL").is_err());
        assert!(refuse("PRAGMA main.synchronous").is_err());
        assert!(refuse("ATTACH 'x' AS y").is_err());
        assert!(refuse("PRAGMA foreign_keys = ON").is_ok());
        assert!(refuse("PRAGMA table_info(assets)").is_ok());
        assert!(refuse("/* BEGIN */ SELECT 1").is_ok());
    }

    #[test]
    fn routes_only_the_query_path() {
        assert_eq!(
            route("/client/v4/accounts/a/d1/database/d/query"),
            Some(("a", "d"))
        );
        assert_eq!(route("/client/v4/accounts/a/d1/database/d/raw"), None);
        assert_eq!(route("/client/v4/accounts/a/d1/database/d/query/x"), None);
        assert_eq!(route("/client/v4/accounts//d1/database/d/query"), None);
    }
}
