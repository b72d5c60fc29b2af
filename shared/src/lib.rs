//! imgbt's one library, shared by the functions, the CLI and the tests.
//!
//! - [`error`]: [`ApiError`], the one error type, and its JSON envelope.
//! - [`http`]: reading requests (path targets, bearer keys, JSON) and writing responses; [`http::serve`]
//!   wraps every handler so that each request gets exactly one response and one log line.
//! - [`entry`]: every function's `main`: the Lambda runtime, lambda_http on the normal path, and a
//!   400 envelope for an event lambda_http cannot read.
//! - [`functions`]: the registry of functions (`functions.toml`), the one list of functions.
//! - [`routes`]: the registry's routes (docs/API.md#routes), and how a request's ids are found in
//!   its path.
//! - [`ids`], [`clock`]: `asset_`/`vault_` ULIDs and RFC 3339 times.
//! - [`validate`], [`cursor`]: typed inputs; a value that exists is valid.
//! - [`auth`]: keys, their hashes, and the SQL that folds authentication into each request's batch.
//! - [`asset`]: the asset record and its columns.
//! - [`keys`]: keys and vault settings as the HTTP routes manage them: records, bodies, SQL.
//! - [`ingest`]: a new asset's record insert, and objects no record will name.
//! - [`uploads`]: direct uploads: their rows, their lifetime, their URLs' tokens.
//! - [`delivery`]: delivery URLs (`/d/…`): their paths, signatures, the one-statement lookup, and
//!   the answer's caching and range headers.
//! - [`transform`], [`variants`]: a delivery URL's transform parameters (the pixels are the
//!   `imgbt-transform` crate's, linked by `deliver` alone), and where their outputs are stored.
//! - [`media`]: MIME type and pixel size from a file's first bytes.
//! - [`batch`]: typed batches: each statement with the reader of its result, in order.
//! - [`db`], [`blobs`]: the two I/O seams (a batch of SQL; bytes by key) and their implementations.
//! - [`migrations`]: the schema, in wrangler's format, and how it is applied.
//! - [`admin`]: what the CLI does to a store (vaults and keys, gc, fsck), for the CLI, the test kit
//!   and the scheduled gc function.
//! - [`deps`]: configuration from the environment, and the clients built once per cold start.
//! - [`backoff`]: the one retry policy of every client (D1, R2, the CLI's).
//! - [`calls`]: counts of D1 and R2 calls per request, for its log line.
//! - [`secret`], [`random`]: leaf modules (they import nothing from this crate): a value that never
//!   prints itself, and the operating system's randomness.

pub mod admin;
pub mod asset;
pub mod auth;
pub mod backoff;
pub mod batch;
pub mod blobs;
pub mod calls;
pub mod clock;
pub mod cursor;
pub mod db;
pub mod delivery;
pub mod deps;
pub mod entry;
pub mod error;
pub mod functions;
pub mod http;
pub mod ids;
pub mod ingest;
pub mod keys;
pub mod media;
pub mod migrations;
pub mod random;
pub mod routes;
pub mod secret;
pub mod transform;
pub mod uploads;
pub mod validate;
pub mod variants;

pub use deps::Deps;
pub use error::ApiError;

/// The boxed future the I/O traits return, so that they can be used as trait objects.
pub type BoxFuture<'a, T> = std::pin::Pin<Box<dyn std::future::Future<Output = T> + Send + 'a>>;

/// Largest file the API accepts: 100 MiB.
pub const MAX_FILE_BYTES: u64 = 104_857_600;
