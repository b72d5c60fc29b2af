//! The test kit: everything the suites in `tests/tests/` share, kept small.
//!
//! - [`TestApp`]: a fresh store with two vaults (`vault` and `other`, each with a `pk_` and an
//!   `sk_` key) on a [`Backend`]: the embedded default in a temporary directory, our D1 and R2
//!   clients against the D1 REST and S3 test servers of `imgbt-test-servers`, or our D1 client
//!   against the D1 gateway Worker on workerd's own D1 ([`d1_gateway`]) with the S3 test server for
//!   bytes; one helper per endpoint
//!   ([`TestApp::upload`], [`TestApp::list`], [`TestApp::get`], [`TestApp::patch`],
//!   [`TestApp::delete`]; for direct uploads [`TestApp::start_upload`], [`TestApp::put_upload`],
//!   [`TestApp::complete`], [`TestApp::content`], [`TestApp::download`]). [`TestApp::call`] builds any other request: another vault, another key,
//!   a raw body, no path parameters, another method.
//! - [`gateway`]: the functions over real HTTP on 127.0.0.1, routed as API Gateway routes them.
//! - [`browser`]: headless Chromium on a page served from 127.0.0.1, reporting whether each image
//!   decoded and each video seeked and played; [`browser::serve_dir`] serves a page's media.
//! - [`dispatch`]: hands a `lambda_http::Request` to the function that serves it, as the runtime does;
//!   [`invoke`] hands it an invocation's JSON payload instead, through the functions' own entry
//!   point ([`shared::entry`]), and reads back what API Gateway would get; [`invoke_scheduled`]
//!   hands a scheduled function its EventBridge event.
//! - [`Reply`]: what came back (status, headers, body), and the asserts the suites repeat
//!   ([`Reply::ok`], [`Reply::error`], [`Reply::invalid`]).
//! - [`Form`]: multipart bodies byte by byte, so a suite controls duplicates, missing fields and
//!   file names exactly; [`oversized_upload`] builds the >100 MiB body without copying it.
//! - [`fixture`]: the files in `tests/fixtures/` (see `make.py` there).
//! - [`FaultyBlobs`], [`FaultyDb`]: stores that refuse on demand, to prove what happens on failure.
//! - [`TestApp::d1_faults`]: D1 faults (before a request runs, or after it committed) on the
//!   Cloudflare backend's D1 test server or on the gateway backend's own fault proxy.
//! - Checks of the record's formats: [`is_ulid`], [`is_api_time`].
//! - [`past_the_grace`]: a clock an hour ahead, for `fsck` and `gc` to see young objects as old.

pub mod browser;
pub mod counting;
pub mod d1_gateway;
pub mod gateway;
pub mod images;
pub mod on_batch;

use bytes::Bytes;
use imgbt_test_servers::{D1Faults, D1Server, FaultProxy, S3Server};
use lambda_http::http::{HeaderMap, HeaderValue, Method, StatusCode};
use lambda_http::{Body, Request, RequestExt, Response};
use serde_json::Value;
use shared::admin::{self, NewVault};
use shared::blobs::local::LocalBlobs;
use shared::blobs::{BlobError, Blobs, Listed, Presigned, Validity};
use shared::db::{Db, DbError, Stmt, StmtResult};
use shared::deps::{CloudflareConfig, Secret};
use shared::{BoxFuture, Deps};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use tempfile::TempDir;

/// `dispatch`, with one arm for each function of the registry (`functions.toml`) that serves
/// routes, and `invoke_scheduled`, with one for each function on a schedule: a function added
/// there is dispatched to once this crate depends on its crate.
macro_rules! dispatch_to {
    (routes: $($function:ident)*; schedule: $($scheduled:ident)*) => {
        /// Hands `req` to the handler of `function`, the way each function's `main` does.
        pub async fn dispatch(deps: &Deps, function: &str, req: Request) -> Response<Body> {
            let result = match function {
                $(stringify!($function) => $function::handle(deps, req).await,)*
                other => panic!("functions.toml has no function {other} with routes"),
            };
            // docs/API.md#errors: errors are responses. An Err would reach the client as a
            // gateway 502.
            result.unwrap_or_else(|e| {
                panic!("{function} returned Err instead of an error response: {e}")
            })
        }

        /// Hands `event` (an EventBridge event) to the scheduled function `function`, the way
        /// its `main` does, with `request_id` as the invocation's id: its JSON answer, or the
        /// error the runtime would report.
        pub async fn invoke_scheduled(
            deps: &Deps,
            function: &str,
            event: Value,
            request_id: &str,
        ) -> Result<Value, String> {
            let mut context = lambda_runtime::Context::default();
            context.request_id = request_id.to_owned();
            let event = lambda_runtime::LambdaEvent::new(event, context);
            let result = match function {
                $(stringify!($scheduled) => $scheduled::handle(deps, event).await,)*
                other => panic!("functions.toml has no function {other} on a schedule"),
            };
            result.map_err(|e| e.to_string())
        }

        /// The handler of `function` as its `main` hands it to [`shared::entry::run`].
        pub async fn handler(
            deps: &Deps,
            function: &str,
            req: Request,
        ) -> Result<Response<Body>, lambda_http::Error> {
            match function {
                $(stringify!($function) => $function::handle(deps, req).await,)*
                other => panic!("functions.toml has no function {other}"),
            }
        }
    };
}
shared::each_function!(dispatch_to);

/// Hands `event` (an invocation's payload as JSON, e.g. an API Gateway event) to `function` the
/// way its `main` does ([`shared::entry::run`]): read by lambda_http, or refused when it cannot be
/// read. The answer is what the runtime would send to API Gateway, read back as a [`Reply`].
pub async fn invoke(deps: &Deps, function: &'static str, event: &str, request_id: &str) -> Reply {
    let payload: shared::entry::Event =
        serde_json::from_str(event).expect("an invocation's payload is JSON");
    let mut context = lambda_http::Context::default();
    context.request_id = request_id.to_owned();
    let handle = |req: Request| handler(deps, function, req);
    let answer = shared::entry::answer(
        function,
        lambda_http::LambdaEvent::new(payload, context),
        &handle,
    )
    .await
    .unwrap_or_else(|e| panic!("{function} failed the invocation: {e}"));
    Reply::from_event_response(&serde_json::to_value(answer).expect("an answer is JSON"))
}

/// Which stores a [`TestApp`] runs on. The contract suite runs on each.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// A SQLite file and a directory, in a temporary directory.
    Embedded,
    /// Our D1 and R2 clients against the protocol-faithful D1 REST and S3 servers of
    /// `imgbt-test-servers`, on 127.0.0.1.
    Cloudflare,
    /// Our D1 client against the D1 gateway Worker (`infra/d1-gateway/`) under `wrangler dev
    /// --local`, whose D1 binding is workerd's own D1 engine, and our R2 client against the S3
    /// test server. One wrangler process per test binary ([`d1_gateway::Gateway::shared`]); its
    /// database is emptied for each app and held by one app at a time.
    Gateway,
}

/// Where a [`TestApp`]'s data lives.
pub enum Store {
    Embedded,
    Cloudflare(Box<CloudStores>),
    Gateway(Box<GatewayStores>),
}

/// The D1 gateway on workerd and the S3 test server a [`TestApp`] runs on. The app holds the
/// gateway's database until it is dropped. Its D1 client goes through `proxy`, the app's own
/// [`FaultProxy`] in front of the shared gateway, so that a test can fail its D1 requests.
pub struct GatewayStores {
    pub gateway: &'static d1_gateway::Gateway,
    pub proxy: FaultProxy,
    pub s3: S3Server,
    pub config: CloudflareConfig,
    _turn: d1_gateway::Turn,
}

/// The local stand-ins for Cloudflare a [`TestApp`] runs on, and the configuration naming them.
pub struct CloudStores {
    pub d1: D1Server,
    pub s3: S3Server,
    pub config: CloudflareConfig,
}

/// A fresh store with two vaults. Dropping it removes the directory and stops the servers.
pub struct TestApp {
    pub dir: TempDir,
    pub store: Store,
    pub deps: Deps,
    /// The vault most tests work in.
    pub vault: NewVault,
    /// A second vault, for isolation tests.
    pub other: NewVault,
}

impl AsRef<Deps> for TestApp {
    fn as_ref(&self) -> &Deps {
        &self.deps
    }
}

impl TestApp {
    /// A fresh app on the embedded default.
    pub async fn new() -> Self {
        Self::on(Backend::Embedded).await
    }

    pub async fn on(backend: Backend) -> Self {
        let store = match backend {
            Backend::Embedded => Store::Embedded,
            Backend::Cloudflare => {
                let (d1, s3) = tokio::join!(D1Server::start(), S3Server::start());
                let config = cloudflare_config(&d1, &s3);
                Store::Cloudflare(Box::new(CloudStores { d1, s3, config }))
            }
            Backend::Gateway => {
                let gateway = d1_gateway::Gateway::shared();
                let (turn, s3, proxy) = tokio::join!(
                    gateway.take(),
                    S3Server::start(),
                    FaultProxy::start(gateway.base_url())
                );
                let mut config = gateway_config(gateway, &s3);
                config.d1_base_url = proxy.base_url();
                Store::Gateway(Box::new(GatewayStores {
                    gateway,
                    proxy,
                    s3,
                    config,
                    _turn: turn,
                }))
            }
        };
        Self::with_store(store).await
    }

    /// A fresh app on `store` (e.g. test servers started on a runtime of the caller's).
    pub async fn with_store(store: Store) -> Self {
        let dir = tempfile::tempdir().expect("temporary directory");
        let app_deps = Self::deps_for(dir.path(), &store).await;
        shared::migrations::apply(&*app_deps.db)
            .await
            .expect("migrations");
        let vault = admin::create_vault(&*app_deps.db, &app_deps.clock, "main")
            .await
            .expect("vault");
        let other = admin::create_vault(&*app_deps.db, &app_deps.clock, "other")
            .await
            .expect("second vault");
        TestApp {
            dir,
            store,
            deps: app_deps,
            vault,
            other,
        }
    }

    async fn deps_for(dir: &Path, store: &Store) -> Deps {
        match store {
            Store::Embedded => Deps::embedded(dir).await.expect("embedded store"),
            Store::Cloudflare(cloud) => {
                Deps::cloudflare(&cloud.config).expect("Cloudflare clients")
            }
            Store::Gateway(stores) => Deps::cloudflare(&stores.config).expect("Cloudflare clients"),
        }
    }

    pub fn backend(&self) -> Backend {
        match self.store {
            Store::Embedded => Backend::Embedded,
            Store::Cloudflare(_) => Backend::Cloudflare,
            Store::Gateway(_) => Backend::Gateway,
        }
    }

    /// Another set of dependencies over the same stores, as a second function instance has.
    pub async fn another_instance(&self) -> Deps {
        Self::deps_for(self.dir.path(), &self.store).await
    }

    /// The D1 test server, on the Cloudflare backend.
    pub fn d1(&self) -> Option<&D1Server> {
        match &self.store {
            Store::Cloudflare(cloud) => Some(&cloud.d1),
            Store::Embedded | Store::Gateway(_) => None,
        }
    }

    /// The fault controls of this app's D1, on the backends that talk to D1 over HTTP: the D1
    /// test server itself on the Cloudflare backend, the app's [`FaultProxy`] in front of the
    /// gateway on the gateway backend. Their request counts include only this app's requests
    /// (on the gateway backend, not those of [`d1_gateway::Gateway::take`] emptying the database).
    pub fn d1_faults(&self) -> Option<&dyn D1Faults> {
        match &self.store {
            Store::Cloudflare(cloud) => Some(&cloud.d1),
            Store::Gateway(stores) => Some(&stores.proxy),
            Store::Embedded => None,
        }
    }

    /// The D1 gateway on workerd, on the gateway backend.
    pub fn gateway(&self) -> Option<&'static d1_gateway::Gateway> {
        match &self.store {
            Store::Gateway(stores) => Some(stores.gateway),
            Store::Embedded | Store::Cloudflare(_) => None,
        }
    }

    /// The S3 test server, on the Cloudflare and gateway backends.
    pub fn s3(&self) -> Option<&S3Server> {
        match &self.store {
            Store::Cloudflare(cloud) => Some(&cloud.s3),
            Store::Gateway(stores) => Some(&stores.s3),
            Store::Embedded => None,
        }
    }

    pub fn pk(&self) -> &str {
        &self.vault.public_key
    }

    pub fn sk(&self) -> &str {
        &self.vault.secret_key
    }

    /// A request to `function` in this app's vault, with path parameters as API Gateway sets them.
    pub fn call(&self, function: &'static str) -> Call<'_> {
        self.call_on(&self.deps, function)
    }

    /// Like [`TestApp::call`], served by other dependencies (e.g. a faulty store over this app's data).
    pub fn call_on<'a>(&'a self, deps: &'a Deps, function: &'static str) -> Call<'a> {
        let route = shared::routes::route_of(function);
        Call {
            deps,
            function,
            method: Method::from_bytes(route.method.as_bytes()).expect("route method"),
            vault: self.vault.vault_id.clone(),
            asset: None,
            upload: None,
            key_id: None,
            template: None,
            raw: None,
            undecoded: false,
            query: String::new(),
            headers: HeaderMap::new(),
            body: Body::Empty,
            path_params: true,
        }
    }

    pub async fn upload(&self, key: &str, form: &Form) -> Reply {
        self.call("upload").key(key).form(form).send().await
    }

    /// Uploads `form` with the secret key and returns the record, failing the test on anything but 201.
    pub async fn create(&self, form: &Form) -> Value {
        self.upload(self.sk(), form).await.ok(201)
    }

    /// `query` is the raw query string, without `?` (e.g. `limit=7&channel=a`).
    pub async fn list(&self, key: &str, query: &str) -> Reply {
        self.call("list").key(key).query(query).send().await
    }

    pub async fn get(&self, key: &str, id: &str) -> Reply {
        self.call("get").key(key).asset(id).send().await
    }

    pub async fn patch(&self, key: &str, id: &str, body: &Value) -> Reply {
        self.call("update")
            .key(key)
            .asset(id)
            .json(body)
            .send()
            .await
    }

    pub async fn delete(&self, key: &str, id: &str) -> Reply {
        self.call("delete").key(key).asset(id).send().await
    }

    /// `POST …/uploads` with `body` (JSON).
    pub async fn start_upload(&self, key: &str, body: &Value) -> Reply {
        self.call("uploads").key(key).json(body).send().await
    }

    /// PUTs `bytes` to the `url` of a ticket `POST …/uploads` returned, sending its `headers`, as
    /// a client does: over HTTP to the S3 test server on the Cloudflare backend; on the embedded
    /// default, to the `receive` function with the URL's path and query as `cargo lambda watch`
    /// would hand them over (the host is the caller's, checked by the suites).
    pub async fn put_upload(&self, ticket: &Value, bytes: Vec<u8>) -> Reply {
        let url = ticket["url"].as_str().expect("the ticket has a url");
        let headers = ticket["headers"]
            .as_object()
            .expect("the ticket has headers");
        match self.backend() {
            Backend::Cloudflare | Backend::Gateway => {
                let mut request = reqwest::Client::new().put(url).body(bytes);
                for (name, value) in headers {
                    request = request.header(name, value.as_str().expect("header text"));
                }
                Reply::from_http(request.send().await.expect("PUT to the presigned URL")).await
            }
            Backend::Embedded => {
                let uri: lambda_http::http::Uri = url.parse().expect("a URL");
                let path_and_query = uri.path_and_query().expect("a path").as_str();
                let mut req = lambda_http::http::Request::builder()
                    .method(Method::PUT)
                    .uri(path_and_query)
                    .body(Body::Binary(bytes))
                    .expect("request");
                for (name, value) in headers {
                    req.headers_mut().insert(
                        lambda_http::http::HeaderName::from_bytes(name.as_bytes())
                            .expect("header name"),
                        HeaderValue::from_str(value.as_str().expect("header text"))
                            .expect("header value"),
                    );
                }
                Reply::from(dispatch(&self.deps, "receive", req).await)
            }
        }
    }

    /// `POST …/uploads/{uploadId}/complete`.
    pub async fn complete(&self, key: &str, upload_id: &str) -> Reply {
        self.call("complete")
            .key(key)
            .upload(upload_id)
            .send()
            .await
    }

    /// `GET …/assets/{assetId}/content`.
    pub async fn content(&self, key: &str, asset_id: &str) -> Reply {
        self.call("content").key(key).asset(asset_id).send().await
    }

    /// A delivery request (`GET`) for `path_and_query` (`/d/…`, encoded, with its query if any),
    /// with the decoded path parameters API Gateway sets; no key.
    pub fn deliver(&self, path_and_query: &str) -> Call<'_> {
        self.call("deliver").raw_path(path_and_query)
    }

    /// The delivery path of an asset record (docs/API.md#delivery), encoded.
    pub fn delivery_path(record: &Value) -> String {
        let field = |name: &str| record[name].as_str().expect("a record's path field");
        shared::delivery::path(
            field("vault_id"),
            field("partition"),
            field("collection"),
            field("channel"),
            field("filename"),
        )
    }

    /// The whole direct flow with the secret key, failing the test on any step's error: start,
    /// PUT `bytes`, complete. Returns the record.
    pub async fn direct_upload(&self, body: &Value, bytes: Vec<u8>) -> Value {
        let ticket = self.start_upload(self.sk(), body).await.ok(201);
        let put = self.put_upload(&ticket, bytes).await;
        assert_eq!(put.status.as_u16(), 200, "PUT: {}", put.snippet());
        let upload_id = ticket["upload_id"].as_str().expect("upload_id");
        self.complete(self.sk(), upload_id).await.ok(201)
    }

    /// The bytes of an asset as a client gets them from `content`: the 200's body on the
    /// embedded default; on R2 the body of a GET of the 302's `Location`.
    pub async fn download(&self, key: &str, asset_id: &str) -> Reply {
        let reply = self.content(key, asset_id).await;
        if reply.status != StatusCode::FOUND {
            return reply;
        }
        let location = reply.header("location").expect("a 302 has a Location");
        fetch(location).await
    }

    /// On the embedded default, starts the local object server (`imgbt dev objects`, see
    /// [`start_object_server`]) and has this app's store presign GETs for it, as
    /// `./scripts/dev.sh` configures the functions: `content` then redirects to it. Returns the
    /// secret, so that a test can sign URLs of its own.
    pub async fn serve_objects(&mut self) -> shared::blobs::object_urls::UrlSecret {
        assert!(
            matches!(self.store, Store::Embedded),
            "the object server serves the embedded store"
        );
        let (urls, secret) = start_object_server(&self.objects_dir()).await;
        self.deps.blobs = Arc::new(shared::calls::CountedBlobs(Arc::new(
            self.local_blobs().serving(Some(urls)),
        )));
        secret
    }

    pub fn objects_dir(&self) -> PathBuf {
        self.dir.path().join("objects")
    }

    /// The bytes stored for `r2_key`, if there is such an object.
    pub fn read_object(&self, r2_key: &str) -> Option<Vec<u8>> {
        match &self.store {
            Store::Embedded => {
                let path = self.local_blobs().path_of(r2_key).ok()?;
                std::fs::read(path).ok()
            }
            Store::Cloudflare(cloud) => cloud.s3.object_bytes(r2_key),
            Store::Gateway(stores) => stores.s3.object_bytes(r2_key),
        }
    }

    /// The stored size of `r2_key`, read from the store's own files.
    pub fn object_len(&self, r2_key: &str) -> Option<u64> {
        let path = match &self.store {
            Store::Embedded => self.local_blobs().path_of(r2_key).ok()?,
            Store::Cloudflare(cloud) => cloud.s3.object_path(r2_key),
            Store::Gateway(stores) => stores.s3.object_path(r2_key),
        };
        std::fs::metadata(path).map(|m| m.len()).ok()
    }

    /// Everything the object store holds: on the embedded default every file under the objects
    /// directory (temporary files included: a leftover is a leftover), on S3 every key.
    pub fn object_files(&self) -> Vec<PathBuf> {
        match &self.store {
            Store::Embedded => files_under(&self.objects_dir()),
            Store::Cloudflare(cloud) => cloud.s3.objects().into_iter().map(PathBuf::from).collect(),
            Store::Gateway(stores) => stores.s3.objects().into_iter().map(PathBuf::from).collect(),
        }
    }

    /// Everything the record store holds, as bytes to search: the SQLite files of the embedded
    /// default, every row of every table of the D1 server, or workerd's D1 files under the
    /// gateway.
    pub fn database_bytes(&self) -> Vec<u8> {
        match &self.store {
            Store::Embedded => ["imgbt.db", "imgbt.db-wal"]
                .iter()
                .filter_map(|name| std::fs::read(self.dir.path().join(name)).ok())
                .flatten()
                .collect(),
            Store::Cloudflare(cloud) => {
                let d1 = &cloud.d1;
                let tables = d1.query("SELECT name FROM sqlite_master WHERE type = 'table'");
                let mut out = Vec::new();
                for table in tables {
                    let name = table["name"].as_str().expect("table name");
                    let rows = d1.query(&format!("SELECT * FROM \"{name}\""));
                    out.extend(serde_json::to_vec(&rows).expect("rows as JSON"));
                }
                out
            }
            Store::Gateway(stores) => stores.gateway.database_bytes(),
        }
    }

    /// Runs one statement against the store, for what no endpoint shows.
    pub async fn query(&self, sql: &'static str) -> StmtResult {
        let mut results = shared::db::run(&*self.deps.db, vec![Stmt::new(sql, vec![])])
            .await
            .expect("query");
        results.remove(0)
    }

    /// The object keys waiting in `pending_deletions`.
    pub async fn pending_deletions(&self) -> Vec<String> {
        let result = self
            .query("SELECT r2_key FROM pending_deletions ORDER BY r2_key")
            .await;
        result
            .rows
            .iter()
            .map(|row| row["r2_key"].as_str().expect("r2_key text").to_owned())
            .collect()
    }

    /// Dependencies over this app's database with `blobs` in place of the local directory.
    pub fn deps_with_blobs(&self, blobs: Arc<dyn Blobs>) -> Deps {
        Deps::new(self.deps.db.clone(), blobs)
    }

    /// The object store of this app as a value of its own (e.g. to wrap in [`FaultyBlobs`]).
    pub fn blobs(&self) -> Arc<dyn Blobs> {
        self.deps.blobs.clone()
    }

    fn local_blobs(&self) -> LocalBlobs {
        LocalBlobs::new(self.objects_dir()).expect("objects directory")
    }
}

/// One request under construction; [`Call::send`] dispatches it.
pub struct Call<'a> {
    deps: &'a Deps,
    function: &'static str,
    method: Method,
    vault: String,
    asset: Option<String>,
    upload: Option<String>,
    key_id: Option<String>,
    /// The path's shape, when not the function's own (see [`Call::path`]).
    template: Option<&'static str>,
    /// A delivery's path and query as sent ([`TestApp::deliver`]).
    raw: Option<String>,
    /// A delivery's path parameters as a router that does not decode them sets them.
    undecoded: bool,
    query: String,
    headers: HeaderMap,
    body: Body,
    path_params: bool,
}

impl Call<'_> {
    /// The function this call goes to.
    pub fn function(&self) -> &'static str {
        self.function
    }

    pub fn vault(mut self, vault_id: &str) -> Self {
        self.vault = vault_id.to_owned();
        self
    }

    pub fn asset(mut self, asset_id: &str) -> Self {
        self.asset = Some(asset_id.to_owned());
        self
    }

    pub fn upload(mut self, upload_id: &str) -> Self {
        self.upload = Some(upload_id.to_owned());
        self
    }

    /// The `{keyId}` of a key's route (not the key presented: that is [`Call::key`]).
    pub fn key_id(mut self, key_id: &str) -> Self {
        self.key_id = Some(key_id.to_owned());
        self
    }

    /// Sends the request to the path `template` (a path of `shared::routes::ROUTES`) instead of
    /// the function's own, with the ids of this call filled in.
    pub fn route_path(mut self, template: &'static str) -> Self {
        self.template = Some(template);
        self
    }

    /// Sends the request to `path_and_query` as given (a delivery's encoded path), with the
    /// decoded path parameters API Gateway sets for delivery's route.
    pub fn raw_path(mut self, path_and_query: &str) -> Self {
        self.raw = Some(path_and_query.to_owned());
        self
    }

    /// A delivery's path parameters as `cargo lambda watch` and the local API set them: the raw
    /// path's segments, still percent-encoded (API Gateway decodes them).
    pub fn undecoded_path_parameters(mut self) -> Self {
        self.undecoded = true;
        self
    }

    pub fn query(mut self, query: &str) -> Self {
        self.query = query.to_owned();
        self
    }

    pub fn method(mut self, method: Method) -> Self {
        self.method = method;
        self
    }

    /// `Authorization: Bearer <key>`.
    pub fn key(self, key: &str) -> Self {
        self.header("authorization", &format!("Bearer {key}"))
    }

    pub fn header(mut self, name: &'static str, value: &str) -> Self {
        self.headers
            .insert(name, HeaderValue::from_str(value).expect("header value"));
        self
    }

    /// A raw body, with `content_type` when given.
    pub fn body(mut self, content_type: Option<&str>, bytes: impl Into<Vec<u8>>) -> Self {
        if let Some(ct) = content_type {
            self = self.header("content-type", ct);
        }
        self.body = Body::Binary(bytes.into());
        self
    }

    pub fn form(self, form: &Form) -> Self {
        let content_type = form.content_type();
        self.body(Some(&content_type), form.to_bytes())
    }

    pub fn json(self, body: &Value) -> Self {
        self.body(Some("application/json"), body.to_string())
    }

    /// No path parameters, and a raw path as a function URL delivers it:
    /// `/lambda-url/<function>/api/v1/vaults/{v}/assets[/{a}]`.
    pub fn without_path_parameters(mut self) -> Self {
        self.path_params = false;
        self
    }

    /// The function's own path (or [`Call::route_path`]'s) with this call's ids; for the first
    /// five functions without a template, `/api/v1/vaults/{v}/assets[/{a}]` as the ids given say.
    pub fn path(&self) -> String {
        let own = shared::routes::route_of(self.function).path;
        let legacy = [shared::routes::ASSETS, shared::routes::ASSET].contains(&own);
        let mut path = match self.template {
            None if legacy => {
                let mut path = format!("/api/v1/vaults/{}/assets", self.vault);
                if let Some(asset) = &self.asset {
                    path = format!("{path}/{asset}");
                }
                path
            }
            template => template
                .unwrap_or(own)
                .replace("{vaultId}", &self.vault)
                .replace("{assetId}", self.asset.as_deref().unwrap_or_default())
                .replace("{uploadId}", self.upload.as_deref().unwrap_or_default())
                .replace("{keyId}", self.key_id.as_deref().unwrap_or_default()),
        };
        if !self.path_params {
            path = format!("/lambda-url/{}{path}", self.function);
        }
        path
    }

    pub fn build(self) -> Request {
        if let Some(raw) = self.raw.clone() {
            return self.build_delivery(raw);
        }
        let mut uri = self.path();
        if !self.query.is_empty() {
            uri = format!("{uri}?{}", self.query);
        }
        let mut req = lambda_http::http::Request::builder()
            .method(self.method)
            .uri(uri)
            .body(self.body)
            .expect("request");
        *req.headers_mut() = self.headers;
        if self.path_params {
            let mut params = HashMap::from([("vaultId".to_owned(), self.vault)]);
            if let Some(asset) = self.asset {
                params.insert("assetId".to_owned(), asset);
            }
            if let Some(upload) = self.upload {
                params.insert("uploadId".to_owned(), upload);
            }
            if let Some(key_id) = self.key_id {
                params.insert("keyId".to_owned(), key_id);
            }
            req = req.with_path_parameters(params);
        }
        req
    }

    fn build_delivery(self, raw: String) -> Request {
        let uri = if self.path_params {
            raw.clone()
        } else {
            format!("/lambda-url/{}{raw}", self.function)
        };
        let mut req = lambda_http::http::Request::builder()
            .method(self.method)
            .uri(uri)
            .body(self.body)
            .expect("request");
        *req.headers_mut() = self.headers;
        let path = raw.split('?').next().unwrap_or_default();
        if let (true, true, Some(segments)) = (
            self.path_params,
            self.undecoded,
            shared::delivery::raw_segments(path),
        ) {
            let names = ["vaultId", "partition", "collection", "channel", "filename"];
            let params: HashMap<String, String> = names
                .iter()
                .zip(segments)
                .map(|(name, value)| ((*name).to_owned(), value.to_owned()))
                .collect();
            return req.with_path_parameters(params);
        }
        if let (true, Some(parsed)) = (
            self.path_params,
            shared::delivery::DeliveryPath::parse(path),
        ) {
            let params = HashMap::from([
                ("vaultId".to_owned(), parsed.vault_id),
                ("partition".to_owned(), parsed.partition),
                ("collection".to_owned(), parsed.collection),
                ("channel".to_owned(), parsed.channel),
                ("filename".to_owned(), parsed.filename),
            ]);
            req = req.with_path_parameters(params);
        }
        req
    }

    pub async fn send(self) -> Reply {
        let (deps, function) = (self.deps, self.function);
        Reply::from(dispatch(deps, function, self.build()).await)
    }
}

/// A response, with its body as bytes.
#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
}

impl From<Response<Body>> for Reply {
    fn from(response: Response<Body>) -> Self {
        let (parts, body) = response.into_parts();
        let body = match body {
            Body::Empty => Vec::new(),
            Body::Text(text) => text.into_bytes(),
            Body::Binary(bytes) => bytes,
            other => panic!("unexpected body variant {other:?}"),
        };
        Reply {
            status: parts.status,
            headers: parts.headers,
            body,
        }
    }
}

impl Reply {
    /// A Lambda function's answer to an HTTP event (payload format 2.0, 1.0 or ALB): status,
    /// headers (single and multi-valued), and the body, base64-decoded when flagged so.
    pub fn from_event_response(answer: &Value) -> Self {
        let status = answer["statusCode"]
            .as_u64()
            .and_then(|s| u16::try_from(s).ok())
            .and_then(|s| StatusCode::from_u16(s).ok())
            .unwrap_or_else(|| panic!("the answer has no statusCode: {answer}"));
        let mut headers = HeaderMap::new();
        let single = answer["headers"].as_object().into_iter().flatten();
        let multi = answer["multiValueHeaders"]
            .as_object()
            .into_iter()
            .flatten()
            .flat_map(|(name, values)| {
                values
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(move |value| (name, value))
            });
        for (name, value) in single.chain(multi) {
            let name =
                lambda_http::http::HeaderName::from_bytes(name.as_bytes()).expect("header name");
            let value =
                HeaderValue::from_str(value.as_str().expect("header text")).expect("header value");
            if !headers.get_all(&name).iter().any(|v| v == value) {
                headers.append(name, value);
            }
        }
        let text = answer["body"].as_str().unwrap_or_default();
        let body = if answer["isBase64Encoded"] == true {
            use base64::Engine;
            base64::engine::general_purpose::STANDARD
                .decode(text)
                .expect("a base64 body")
        } else {
            text.as_bytes().to_vec()
        };
        Reply {
            status,
            headers,
            body,
        }
    }

    /// A response that came over HTTP.
    pub async fn from_http(response: reqwest::Response) -> Self {
        let status = StatusCode::from_u16(response.status().as_u16()).expect("a status");
        let mut headers = HeaderMap::new();
        for (name, value) in response.headers() {
            headers.append(
                lambda_http::http::HeaderName::from_bytes(name.as_str().as_bytes())
                    .expect("header name"),
                HeaderValue::from_bytes(value.as_bytes()).expect("header value"),
            );
        }
        let body = response.bytes().await.expect("the body").to_vec();
        Reply {
            status,
            headers,
            body,
        }
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The body as text, cut to a length that reads well in a failure message.
    pub fn snippet(&self) -> String {
        let text = self.text();
        match text.char_indices().nth(600) {
            Some((cut, _)) => format!("{}… ({} bytes)", &text[..cut], self.body.len()),
            None => text,
        }
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The body as JSON; fails the test when it is not JSON.
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("body is not JSON ({e}): {}", self.snippet()))
    }

    /// Asserts `status` and a JSON body labelled `application/json`, and returns the body.
    pub fn ok(&self, status: u16) -> Value {
        assert_eq!(
            self.status.as_u16(),
            status,
            "unexpected status; body: {}",
            self.snippet()
        );
        assert_json_content_type(self);
        self.json()
    }

    /// Asserts a 200 whose body is `bytes` (a delivery's).
    pub fn ok_bytes(&self, bytes: &[u8]) {
        assert_eq!(
            self.status.as_u16(),
            200,
            "unexpected status; body: {}",
            self.snippet()
        );
        assert_eq!(self.body, bytes);
    }

    /// Asserts an error response (docs/API.md#errors): `status`, `code`, `content-type:
    /// application/json`, and the envelope `{"error":{"code","message","status"}}` alone.
    /// Returns the message.
    pub fn error(&self, status: u16, code: &str) -> String {
        assert_eq!(
            self.status.as_u16(),
            status,
            "expected {status} {code}; body: {}",
            self.snippet()
        );
        assert_json_content_type(self);
        let body = self.json();
        let envelope = body.as_object().expect("error body is an object");
        assert_eq!(envelope.len(), 1, "envelope has only `error`: {body}");
        let error = body["error"]
            .as_object()
            .unwrap_or_else(|| panic!("`error` is an object: {body}"));
        assert_eq!(
            error.len(),
            3,
            "`error` has exactly code, message, status: {body}"
        );
        assert_eq!(error["code"], code, "{body}");
        assert_eq!(error["status"], status, "{body}");
        let message = error["message"]
            .as_str()
            .unwrap_or_else(|| panic!("message is a string: {body}"));
        assert!(!message.is_empty(), "message is not empty: {body}");
        if status == 401 {
            assert_eq!(
                self.header("www-authenticate"),
                Some("Bearer"),
                "401 carries WWW-Authenticate: Bearer"
            );
        }
        message.to_owned()
    }

    /// Asserts 400 INVALID_PARAMS whose message names `field`.
    pub fn invalid(&self, field: &str) -> String {
        let message = self.error(400, "INVALID_PARAMS");
        assert!(
            message.contains(field),
            "the message should name `{field}`: {message}"
        );
        message
    }
}

fn assert_json_content_type(reply: &Reply) {
    let ct = reply.header("content-type").unwrap_or_default();
    assert!(
        ct == "application/json" || ct.starts_with("application/json;"),
        "content-type is application/json, got {ct:?}"
    );
}

/// One part of a multipart body.
#[derive(Debug, Clone)]
enum Part {
    Field {
        name: String,
        value: Vec<u8>,
    },
    File {
        name: String,
        filename: Option<String>,
        content_type: Option<String>,
        bytes: Vec<u8>,
    },
}

impl Part {
    fn name(&self) -> &str {
        match self {
            Part::Field { name, .. } | Part::File { name, .. } => name,
        }
    }
}

/// A `multipart/form-data` body, part by part, in order. Nothing is de-duplicated or checked: a
/// suite says exactly what goes on the wire.
#[derive(Debug, Clone)]
pub struct Form {
    parts: Vec<Part>,
}

pub const BOUNDARY: &str = "----imgbt-test-boundary-7MA4YWxkTrZu0gW";

impl Form {
    pub fn new() -> Self {
        Form { parts: Vec::new() }
    }

    /// The three required fields and a file part named `file`.
    pub fn asset(
        partition: &str,
        collection: &str,
        channel: &str,
        filename: &str,
        content_type: &str,
        bytes: &[u8],
    ) -> Self {
        Form::new()
            .field("partition", partition)
            .field("collection", collection)
            .field("channel", channel)
            .file(filename, content_type, bytes)
    }

    /// `marketing/blog/hero-images`, the PNG fixture as `photo.png`.
    pub fn standard() -> Self {
        Form::asset(
            "marketing",
            "blog",
            "hero-images",
            "photo.png",
            "image/png",
            &fixture("tiny.png"),
        )
    }

    /// A tiny text asset named `filename` in `partition/collection/channel`.
    pub fn tiny(partition: &str, collection: &str, channel: &str, filename: &str) -> Self {
        Form::asset(
            partition,
            collection,
            channel,
            filename,
            "text/plain",
            filename.as_bytes(),
        )
    }

    pub fn field(mut self, name: &str, value: &str) -> Self {
        self.parts.push(Part::Field {
            name: name.to_owned(),
            value: value.as_bytes().to_vec(),
        });
        self
    }

    /// A file part named `file`.
    pub fn file(self, filename: &str, content_type: &str, bytes: &[u8]) -> Self {
        self.file_part("file", Some(filename), Some(content_type), bytes)
    }

    /// A file part with every header under the caller's control (`None` leaves it out).
    pub fn file_part(
        mut self,
        name: &str,
        filename: Option<&str>,
        content_type: Option<&str>,
        bytes: &[u8],
    ) -> Self {
        self.parts.push(Part::File {
            name: name.to_owned(),
            filename: filename.map(str::to_owned),
            content_type: content_type.map(str::to_owned),
            bytes: bytes.to_vec(),
        });
        self
    }

    /// Drops every part called `name`.
    pub fn without(mut self, name: &str) -> Self {
        self.parts.retain(|p| p.name() != name);
        self
    }

    /// Replaces the value of text field `name` (added if absent).
    pub fn set(self, name: &str, value: &str) -> Self {
        self.without(name).field(name, value)
    }

    pub fn content_type(&self) -> String {
        format!("multipart/form-data; boundary={BOUNDARY}")
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        for part in &self.parts {
            out.extend_from_slice(format!("--{BOUNDARY}\r\n").as_bytes());
            match part {
                Part::Field { name, value } => {
                    out.extend_from_slice(
                        format!("Content-Disposition: form-data; name=\"{name}\"\r\n\r\n")
                            .as_bytes(),
                    );
                    out.extend_from_slice(value);
                }
                Part::File {
                    name,
                    filename,
                    content_type,
                    bytes,
                } => {
                    out.extend_from_slice(
                        file_head(name, filename.as_deref(), content_type.as_deref()).as_bytes(),
                    );
                    out.extend_from_slice(bytes);
                }
            }
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(format!("--{BOUNDARY}--\r\n").as_bytes());
        out
    }
}

impl Default for Form {
    fn default() -> Self {
        Form::new()
    }
}

fn file_head(name: &str, filename: Option<&str>, content_type: Option<&str>) -> String {
    let mut head = format!("Content-Disposition: form-data; name=\"{name}\"");
    if let Some(filename) = filename {
        head.push_str(&format!(
            "; filename=\"{}\"",
            filename.replace('\\', "\\\\").replace('"', "\\\"")
        ));
    }
    head.push_str("\r\n");
    if let Some(ct) = content_type {
        head.push_str(&format!("Content-Type: {ct}\r\n"));
    }
    head.push_str("\r\n");
    head
}

/// An upload of `marketing/blog/big` whose file is `file_bytes` zero bytes, built in place (one
/// allocation), with its content type.
pub fn oversized_upload(file_bytes: usize) -> (String, Vec<u8>) {
    let fields = Form::new()
        .field("partition", "marketing")
        .field("collection", "blog")
        .field("channel", "big");
    let mut head = fields.to_bytes();
    head.truncate(head.len() - format!("--{BOUNDARY}--\r\n").len());
    head.extend_from_slice(format!("--{BOUNDARY}\r\n").as_bytes());
    head.extend_from_slice(
        file_head("file", Some("big.bin"), Some("application/octet-stream")).as_bytes(),
    );
    let tail = format!("\r\n--{BOUNDARY}--\r\n");
    let mut body = Vec::with_capacity(head.len() + file_bytes + tail.len());
    body.extend_from_slice(&head);
    body.resize(head.len() + file_bytes, 0);
    body.extend_from_slice(tail.as_bytes());
    (fields.content_type(), body)
}

/// GETs `url` over HTTP (a presigned URL, say).
/// Starts the local object server (`imgbt dev objects`) over `objects_dir` on a free port of
/// 127.0.0.1 with a fresh secret, on the caller's runtime; returns what presigns its URLs, and
/// the secret.
pub async fn start_object_server(
    objects_dir: &Path,
) -> (
    shared::blobs::object_urls::ObjectUrls,
    shared::blobs::object_urls::UrlSecret,
) {
    use shared::blobs::object_urls::{ObjectUrls, UrlSecret};
    let mut bytes = [0u8; 32];
    shared::random::fill(&mut bytes);
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    let secret = UrlSecret::new(Secret::new(hex)).expect("a 64-digit secret");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("a port for the object server");
    let base = format!("http://{}", listener.local_addr().expect("its address"));
    let blobs = LocalBlobs::new(objects_dir).expect("objects directory");
    tokio::spawn(imgbt_cli::objects::serve(listener, blobs, secret.clone()));
    let urls = ObjectUrls::new(&base, secret.clone()).expect("an http URL");
    (urls, secret)
}

pub async fn fetch(url: &str) -> Reply {
    Reply::from_http(reqwest::get(url).await.expect("GET")).await
}

/// The body of `POST …/uploads` for `filename` of `size` bytes in `partition/collection/channel`.
pub fn upload_request(
    partition: &str,
    collection: &str,
    channel: &str,
    filename: &str,
    size: usize,
) -> Value {
    serde_json::json!({
        "partition": partition,
        "collection": collection,
        "channel": channel,
        "filename": filename,
        "size": size,
    })
}

/// A file from `tests/fixtures/`.
pub fn fixture(name: &str) -> Vec<u8> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures")
        .join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// A clock past [`ORPHAN_GRACE`](shared::admin::gc::ORPHAN_GRACE) (and a minute more) ahead of
/// the system's. `fsck` with it reports every object without a record as a fault, as it would
/// once the hour in which a write may still be on the way has passed; `gc` with it removes them.
pub fn past_the_grace() -> shared::clock::Clock {
    let clock = shared::clock::Clock::default();
    let ahead = shared::admin::gc::ORPHAN_GRACE.as_millis() as i64 + 60_000;
    clock.set_offset_ms(ahead);
    clock
}

/// True when `text` is a ULID: 26 characters of Crockford base32 (uppercase), at most `7ZZ…`.
pub fn is_ulid(text: &str) -> bool {
    const ALPHABET: &[u8] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";
    text.len() == 26 && text.bytes().all(|b| ALPHABET.contains(&b)) && text.as_bytes()[0] <= b'7'
}

/// True when `text` is RFC 3339 UTC as the API writes it: `YYYY-MM-DDTHH:MM:SS.mmmZ`.
pub fn is_api_time(text: &str) -> bool {
    let b = text.as_bytes();
    let digits = |range: std::ops::Range<usize>| range.into_iter().all(|i| b[i].is_ascii_digit());
    let num = |range: std::ops::Range<usize>| text[range].parse::<u32>().unwrap_or(u32::MAX);
    b.len() == 24
        && digits(0..4)
        && b[4] == b'-'
        && digits(5..7)
        && b[7] == b'-'
        && digits(8..10)
        && b[10] == b'T'
        && digits(11..13)
        && b[13] == b':'
        && digits(14..16)
        && b[16] == b':'
        && digits(17..19)
        && b[19] == b'.'
        && digits(20..23)
        && b[23] == b'Z'
        && (1..=12).contains(&num(5..7))
        && (1..=31).contains(&num(8..10))
        && num(11..13) < 24
        && num(14..16) < 60
        && num(17..19) < 61
}

/// An object store that fails `put` and/or `delete` while told to, and otherwise stores in the
/// app's own store. Its error text imitates an upstream body, which must never reach a client.
/// `fail_put`/`fail_delete` fail before the store does anything; `lose_answers` lets the store
/// do the put or the delete, then fails as if its answer were lost.
pub struct FaultyBlobs {
    pub inner: Arc<dyn Blobs>,
    pub fail_put: AtomicBool,
    pub fail_delete: AtomicBool,
    pub lose_answers: AtomicBool,
}

pub const UPSTREAM_SECRET: &str =
    "<Error><Code>InternalError</Code><RequestId>upstream-7f3a</RequestId></Error>";

impl FaultyBlobs {
    pub fn new(inner: Arc<dyn Blobs>) -> Self {
        FaultyBlobs {
            inner,
            fail_put: AtomicBool::new(false),
            fail_delete: AtomicBool::new(false),
            lose_answers: AtomicBool::new(false),
        }
    }

    fn refuse(&self, what: &str) -> BlobError {
        BlobError::Io(format!("{what} refused: {UPSTREAM_SECRET}"))
    }
}

impl Blobs for FaultyBlobs {
    fn put<'a>(
        &'a self,
        key: &'a str,
        body: Bytes,
        content_type: &'a str,
    ) -> BoxFuture<'a, Result<(), BlobError>> {
        if self.fail_put.load(Ordering::SeqCst) {
            let err = self.refuse("put");
            return Box::pin(async move { Err(err) });
        }
        if self.lose_answers.load(Ordering::SeqCst) {
            let err = self.refuse("put answer lost");
            return Box::pin(async move {
                self.inner.put(key, body, content_type).await?;
                Err(err)
            });
        }
        self.inner.put(key, body, content_type)
    }

    fn delete<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<(), BlobError>> {
        if self.fail_delete.load(Ordering::SeqCst) {
            let err = self.refuse("delete");
            return Box::pin(async move { Err(err) });
        }
        if self.lose_answers.load(Ordering::SeqCst) {
            let err = self.refuse("delete answer lost");
            return Box::pin(async move {
                self.inner.delete(key).await?;
                Err(err)
            });
        }
        self.inner.delete(key)
    }

    fn size<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<Option<u64>, BlobError>> {
        self.inner.size(key)
    }

    fn list<'a>(&'a self, prefix: &'a str) -> BoxFuture<'a, Result<Vec<Listed>, BlobError>> {
        self.inner.list(prefix)
    }

    fn list_page<'a>(
        &'a self,
        prefix: &'a str,
        after: &'a str,
        max: usize,
    ) -> BoxFuture<'a, Result<Vec<Listed>, BlobError>> {
        self.inner.list_page(prefix, after, max)
    }

    fn read_range<'a>(
        &'a self,
        key: &'a str,
        start: u64,
        len: u64,
    ) -> BoxFuture<'a, Result<Option<Bytes>, BlobError>> {
        self.inner.read_range(key, start, len)
    }

    fn presign_put<'a>(
        &'a self,
        key: &'a str,
        content_type: &'a str,
        validity: Validity,
    ) -> BoxFuture<'a, Result<Option<Presigned>, BlobError>> {
        self.inner.presign_put(key, content_type, validity)
    }

    fn presign_get<'a>(
        &'a self,
        key: &'a str,
        content_type: &'a str,
        validity: Validity,
    ) -> BoxFuture<'a, Result<Option<Presigned>, BlobError>> {
        self.inner.presign_get(key, content_type, validity)
    }
}

/// A database that refuses every batch with the error `make` builds.
pub struct FaultyDb {
    pub make: fn() -> DbError,
}

impl Db for FaultyDb {
    fn batch(&self, _stmts: Vec<Stmt>) -> BoxFuture<'_, Result<Vec<StmtResult>, DbError>> {
        let err = (self.make)();
        Box::pin(async move { Err(err) })
    }
}

/// A deployed function's dependencies on `config`: D1 behind the schema check, and R2.
pub fn function_deps(config: &CloudflareConfig) -> Deps {
    Deps::cloudflare_function(config, shared::deps::r2_objects).expect("Cloudflare clients")
}

/// Configuration that points our Cloudflare clients at the local test servers.
pub fn cloudflare_config(d1: &D1Server, s3: &S3Server) -> CloudflareConfig {
    CloudflareConfig {
        account_id: d1.account_id().to_owned(),
        api_token: Secret::new(d1.token()),
        d1_database_id: d1.database_id().to_owned(),
        d1_base_url: d1.base_url(),
        r2_bucket: s3.bucket().to_owned(),
        r2_access_key_id: s3.access_key_id().to_owned(),
        r2_secret_access_key: Secret::new(s3.secret_access_key()),
        r2_endpoint: s3.endpoint(),
    }
}

/// Configuration that points our Cloudflare clients at the D1 gateway and the S3 test server: the
/// D1 base URL is the gateway's, as `IMGBT_D1_BASE_URL` sets it in production. ([`TestApp`]
/// replaces it with its [`FaultProxy`]'s.)
pub fn gateway_config(gateway: &d1_gateway::Gateway, s3: &S3Server) -> CloudflareConfig {
    CloudflareConfig {
        account_id: gateway.account_id().to_owned(),
        api_token: Secret::new(gateway.token()),
        d1_database_id: gateway.database_id().to_owned(),
        d1_base_url: gateway.base_url().to_owned(),
        r2_bucket: s3.bucket().to_owned(),
        r2_access_key_id: s3.access_key_id().to_owned(),
        r2_secret_access_key: Secret::new(s3.secret_access_key()),
        r2_endpoint: s3.endpoint(),
    }
}

/// Every file under `dir`, at any depth (none when `dir` cannot be read).
pub(crate) fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return out;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.extend(files_under(&path));
        } else {
            out.push(path);
        }
    }
    out
}
