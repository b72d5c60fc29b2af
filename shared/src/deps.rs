//! Configuration from the environment, and the clients a process builds once per cold start.
//!
//! No Cloudflare variable set: the embedded default (a SQLite file and a directory under
//! `IMGBT_DATA_DIR`). Any of them set: all the required ones must be, or the process refuses to
//! start and names what is missing. Secrets are held in [`Secret`], which never prints itself.

use crate::blobs::{Blobs, r2_endpoint_for};
use crate::calls::{CountedBlobs, CountedDb};
use crate::db::{Db, d1::D1Db, schema::SchemaChecked};
pub use crate::secret::Secret;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
#[cfg(feature = "embedded")]
use {
    crate::blobs::local::LocalBlobs, crate::blobs::object_urls::ObjectUrls,
    crate::db::sqlite::SqliteDb, crate::migrations, std::path::Path,
};

/// Where the embedded default keeps its data when `IMGBT_DATA_DIR` is not set.
pub const DEFAULT_DATA_DIR: &str = ".imgbt";
/// The embedded default's objects directory, under the data directory.
pub const OBJECTS_DIR: &str = "objects";
pub const DEFAULT_D1_BASE_URL: &str = "https://api.cloudflare.com/client/v4";

/// The Cloudflare variables that must all be set for the Cloudflare backend.
pub const REQUIRED_CLOUDFLARE_VARS: [&str; 6] = [
    "CLOUDFLARE_ACCOUNT_ID",
    "CLOUDFLARE_API_TOKEN",
    "IMGBT_D1_DATABASE_ID",
    "IMGBT_R2_BUCKET",
    "IMGBT_R2_ACCESS_KEY_ID",
    "IMGBT_R2_SECRET_ACCESS_KEY",
];
/// The Cloudflare variables of D1 alone: all that `imgbt migrate` needs, since it touches no
/// object (so that the deploy workflow needs no R2 credentials).
pub const REQUIRED_D1_VARS: [&str; 3] = [
    "CLOUDFLARE_ACCOUNT_ID",
    "CLOUDFLARE_API_TOKEN",
    "IMGBT_D1_DATABASE_ID",
];
/// Optional overrides; setting one also selects the Cloudflare backend.
pub const OPTIONAL_CLOUDFLARE_VARS: [&str; 2] = ["IMGBT_D1_BASE_URL", "IMGBT_R2_ENDPOINT"];

/// Which stores a process uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Config {
    /// A SQLite file and a directory of objects under `data_dir`.
    Embedded { data_dir: PathBuf },
    /// D1 over REST and R2 over S3.
    Cloudflare(CloudflareConfig),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CloudflareConfig {
    pub account_id: String,
    pub api_token: Secret,
    pub d1_database_id: String,
    pub d1_base_url: String,
    pub r2_bucket: String,
    pub r2_access_key_id: String,
    pub r2_secret_access_key: Secret,
    pub r2_endpoint: String,
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("Cloudflare configuration is incomplete: set {}, or unset every Cloudflare variable to use the embedded default", .0.join(", "))]
    Incomplete(Vec<&'static str>),
    #[error("cannot open the embedded store at {path}: {cause}")]
    Embedded { path: String, cause: String },
    #[error("cannot set up the Cloudflare clients: {0}")]
    Cloudflare(String),
    #[error("{0}")]
    Invalid(&'static str),
}

impl Config {
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Reads configuration through `lookup`, so that tests need not touch the process environment.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        Self::from_lookup_requiring(lookup, &REQUIRED_CLOUDFLARE_VARS)
    }

    /// Like [`Config::from_env`] for a command that touches D1 only: the R2 variables may be
    /// unset (they are empty then, and no R2 client may be built from them).
    pub fn d1_only_from_env() -> Result<Self, ConfigError> {
        Self::from_lookup_requiring(|name| std::env::var(name).ok(), &REQUIRED_D1_VARS)
    }

    fn from_lookup_requiring(
        lookup: impl Fn(&str) -> Option<String>,
        required_vars: &[&'static str],
    ) -> Result<Self, ConfigError> {
        let get = |name: &str| lookup(name).filter(|v| !v.trim().is_empty());
        let any_cloudflare = REQUIRED_CLOUDFLARE_VARS
            .iter()
            .chain(&OPTIONAL_CLOUDFLARE_VARS)
            .any(|v| get(v).is_some());
        if !any_cloudflare {
            let data_dir = get("IMGBT_DATA_DIR").unwrap_or_else(|| DEFAULT_DATA_DIR.to_owned());
            return Ok(Config::Embedded {
                data_dir: PathBuf::from(data_dir),
            });
        }
        let missing: Vec<&'static str> = required_vars
            .iter()
            .copied()
            .filter(|v| get(v).is_none())
            .collect();
        if !missing.is_empty() {
            return Err(ConfigError::Incomplete(missing));
        }
        let required = |name: &str| get(name).unwrap_or_default();
        let account_id = required("CLOUDFLARE_ACCOUNT_ID");
        Ok(Config::Cloudflare(CloudflareConfig {
            api_token: Secret::new(required("CLOUDFLARE_API_TOKEN")),
            d1_database_id: required("IMGBT_D1_DATABASE_ID"),
            d1_base_url: get("IMGBT_D1_BASE_URL").unwrap_or_else(|| DEFAULT_D1_BASE_URL.to_owned()),
            r2_bucket: required("IMGBT_R2_BUCKET"),
            r2_access_key_id: required("IMGBT_R2_ACCESS_KEY_ID"),
            r2_secret_access_key: Secret::new(required("IMGBT_R2_SECRET_ACCESS_KEY")),
            r2_endpoint: get("IMGBT_R2_ENDPOINT").unwrap_or_else(|| r2_endpoint_for(&account_id)),
            account_id,
        }))
    }
}

/// The largest request body one Lambda invocation can carry once API Gateway has base64-encoded
/// it: 6 MiB of invocation payload, three quarters of it body.
pub const LAMBDA_BODY_LIMIT: u64 = 6 * 1024 * 1024 * 3 / 4;

/// Everything a handler uses: the two I/O seams, and the request size the process accepts.
pub struct Deps {
    pub db: Arc<dyn Db>,
    pub blobs: Arc<dyn Blobs>,
    /// Bodies over this many bytes are refused with 413 before they are parsed. Set to
    /// [`LAMBDA_BODY_LIMIT`] when the process runs as a Lambda function (under `cargo lambda
    /// watch` too, so that local behaviour matches the gateway's), or from
    /// `IMGBT_MAX_REQUEST_BYTES`; `None` in process (tests, benchmarks).
    pub max_request_bytes: Option<u64>,
    /// Objects this process deleted whose pending-deletion rows are not yet cleared. The delete
    /// function clears them in its next batch, so that the happy path stays one D1 request.
    pub settled_deletions: Mutex<Vec<String>>,
    /// The time handlers see (the system's; tests move it).
    pub clock: crate::clock::Clock,
    /// Where delivery URLs point (`IMGBT_DELIVERY_URL`, e.g. the CDN's domain), without a
    /// trailing `/`; `None`: the API's own origin, as each request reached it.
    pub delivery_url: Option<String>,
}

impl Deps {
    pub fn new(db: Arc<dyn Db>, blobs: Arc<dyn Blobs>) -> Self {
        Deps {
            db: Arc::new(CountedDb(db)),
            blobs: Arc::new(CountedBlobs(blobs)),
            max_request_bytes: None,
            settled_deletions: Mutex::new(Vec::new()),
            clock: crate::clock::Clock::default(),
            delivery_url: None,
        }
    }

    /// Builds the stores that the environment configures, R2 included. On the embedded default,
    /// pending migrations are applied, so that a fresh directory just works; D1 is migrated on
    /// request (`imgbt migrate` or wrangler; the deploy workflow runs it), never by a function,
    /// which instead refuses to run against a D1 schema that lacks them
    /// ([`Deps::cloudflare_function`]).
    pub async fn from_env() -> Result<Self, ConfigError> {
        Self::from_env_with(DEFAULT_OBJECTS).await
    }

    /// Like [`Deps::from_env`], with `objects` building the object store on Cloudflare. A function
    /// that never touches objects passes [`no_objects`], so that its binary never references the
    /// R2 client and the linker leaves it (the AWS SDK) out.
    pub async fn from_env_with(objects: ObjectStore) -> Result<Self, ConfigError> {
        let mut deps = match Config::from_env()? {
            #[cfg(feature = "embedded")]
            Config::Embedded { data_dir } => {
                let urls = ObjectUrls::from_lookup(|name| std::env::var(name).ok())
                    .map_err(ConfigError::Invalid)?;
                Self::embedded_serving(&data_dir, urls).await?
            }
            #[cfg(not(feature = "embedded"))]
            Config::Embedded { .. } => return Err(NO_EMBEDDED),
            Config::Cloudflare(config) => Self::cloudflare_function(&config, objects)?,
        };
        deps.max_request_bytes = request_limit(|name| std::env::var(name).ok())?;
        deps.delivery_url = delivery_url(|name| std::env::var(name).ok())?;
        Ok(deps)
    }

    /// The stores that the environment configures, as they are (for `imgbt`, which migrates on
    /// request only).
    pub fn open_from_env() -> Result<Self, ConfigError> {
        Self::open(&Config::from_env()?)
    }

    /// The stores the environment configures for a command that touches D1 only (`imgbt
    /// migrate`): no R2 variable is needed, and no object store is built.
    pub fn open_d1_only_from_env() -> Result<Self, ConfigError> {
        match Config::d1_only_from_env()? {
            Config::Cloudflare(config) => Self::cloudflare_with(&config, no_objects),
            embedded => Self::open(&embedded),
        }
    }

    pub fn open(config: &Config) -> Result<Self, ConfigError> {
        match config {
            #[cfg(feature = "embedded")]
            Config::Embedded { data_dir } => Self::open_embedded(data_dir),
            #[cfg(not(feature = "embedded"))]
            Config::Embedded { .. } => Err(NO_EMBEDDED),
            Config::Cloudflare(config) => Self::cloudflare(config),
        }
    }

    /// The embedded default under `data_dir`, with pending migrations applied.
    ///
    /// A cold start reads the file's schema marker ([`SqliteDb::schema_version`]) and is done
    /// when it covers every migration this binary knows: no write transaction, so no wait behind
    /// another process's write, and no statement beyond one `PRAGMA`. Otherwise the migrations
    /// run as `imgbt migrate` runs them (by name, in `d1_migrations`), and the marker is raised.
    #[cfg(feature = "embedded")]
    pub async fn embedded(data_dir: &Path) -> Result<Self, ConfigError> {
        Self::embedded_serving(data_dir, None).await
    }

    /// [`Deps::embedded`], whose objects are served by the local object server at `urls` when
    /// given (`content` then redirects to it, as to R2).
    #[cfg(feature = "embedded")]
    pub async fn embedded_serving(
        data_dir: &Path,
        urls: Option<ObjectUrls>,
    ) -> Result<Self, ConfigError> {
        let (db, blobs) = Self::embedded_stores(data_dir)?;
        let blobs = blobs.serving(urls);
        let fail = embedded_failure(data_dir);
        let known = migrations::MIGRATIONS.len();
        if db.schema_version().map_err(|e| fail(e.to_string()))? < known {
            migrations::apply(&db)
                .await
                .map_err(|e| fail(e.to_string()))?;
            db.mark_schema_version(known)
                .map_err(|e| fail(e.to_string()))?;
        }
        Ok(Self::new(Arc::new(db), Arc::new(blobs)))
    }

    /// The embedded default under `data_dir` as it is: `imgbt.db` and `objects/`, no migration.
    #[cfg(feature = "embedded")]
    pub fn open_embedded(data_dir: &Path) -> Result<Self, ConfigError> {
        let (db, blobs) = Self::embedded_stores(data_dir)?;
        Ok(Self::new(Arc::new(db), Arc::new(blobs)))
    }

    #[cfg(feature = "embedded")]
    fn embedded_stores(data_dir: &Path) -> Result<(SqliteDb, LocalBlobs), ConfigError> {
        let fail = embedded_failure(data_dir);
        std::fs::create_dir_all(data_dir).map_err(|e| fail(e.to_string()))?;
        let db = SqliteDb::open(&data_dir.join("imgbt.db")).map_err(|e| fail(e.to_string()))?;
        let blobs = LocalBlobs::new(data_dir.join(OBJECTS_DIR)).map_err(|e| fail(e.to_string()))?;
        Ok((db, blobs))
    }

    /// D1 over REST and R2 over S3, as they are (for `imgbt`, which migrates D1, and the tests).
    /// Builds clients only; nothing is sent until a request needs it.
    pub fn cloudflare(config: &CloudflareConfig) -> Result<Self, ConfigError> {
        Self::cloudflare_with(config, DEFAULT_OBJECTS)
    }

    pub fn cloudflare_with(
        config: &CloudflareConfig,
        objects: ObjectStore,
    ) -> Result<Self, ConfigError> {
        Ok(Self::new(Arc::new(d1(config)?), objects(config)))
    }

    /// What a function runs on: [`Deps::cloudflare_with`], with D1 behind
    /// [`SchemaChecked`], so that the process's first batch proves that the schema has every
    /// migration this binary knows, and fails (500, with an ERROR line naming the missing
    /// migrations) without applying anything when it has not.
    pub fn cloudflare_function(
        config: &CloudflareConfig,
        objects: ObjectStore,
    ) -> Result<Self, ConfigError> {
        let db = SchemaChecked::new(Arc::new(d1(config)?));
        Ok(Self::new(Arc::new(db), objects(config)))
    }
}

fn d1(config: &CloudflareConfig) -> Result<D1Db, ConfigError> {
    D1Db::new(
        &config.d1_base_url,
        &config.account_id,
        &config.d1_database_id,
        config.api_token.clone(),
    )
    .map_err(|e| ConfigError::Cloudflare(e.to_string()))
}

#[cfg(feature = "embedded")]
fn embedded_failure(data_dir: &Path) -> impl Fn(String) -> ConfigError + '_ {
    move |cause| ConfigError::Embedded {
        path: data_dir.display().to_string(),
        cause,
    }
}

/// Builds the object store for a Cloudflare configuration.
pub type ObjectStore = fn(&CloudflareConfig) -> Arc<dyn Blobs>;

/// R2 over S3, its client already being built on a thread of its own ([`Blobs::prepare`]).
#[cfg(feature = "r2")]
pub fn r2_objects(config: &CloudflareConfig) -> Arc<dyn Blobs> {
    let blobs = crate::blobs::r2::R2Blobs::new(
        &config.r2_endpoint,
        &config.r2_bucket,
        &config.r2_access_key_id,
        &config.r2_secret_access_key,
    );
    blobs.prepare();
    Arc::new(blobs)
}

/// No object store: for functions that never touch objects.
pub fn no_objects(_config: &CloudflareConfig) -> Arc<dyn Blobs> {
    Arc::new(crate::blobs::NoBlobs)
}

#[cfg(feature = "r2")]
const DEFAULT_OBJECTS: ObjectStore = r2_objects;
#[cfg(not(feature = "r2"))]
const DEFAULT_OBJECTS: ObjectStore = no_objects;

#[cfg(not(feature = "embedded"))]
const NO_EMBEDDED: ConfigError = ConfigError::Invalid(
    "this build has no embedded store (built without the `embedded` feature): set the Cloudflare variables",
);

/// `IMGBT_DELIVERY_URL`: an `http(s)://` URL with no query, or unset. Checked at a cold start, so
/// that a typo fails loudly instead of handing out URLs that lead nowhere.
fn delivery_url(lookup: impl Fn(&str) -> Option<String>) -> Result<Option<String>, ConfigError> {
    let Some(text) = lookup("IMGBT_DELIVERY_URL").filter(|v| !v.trim().is_empty()) else {
        return Ok(None);
    };
    let text = text.trim().trim_end_matches('/');
    let uri: lambda_http::http::Uri = text.parse().map_err(|_| BAD_DELIVERY_URL)?;
    let fits = matches!(uri.scheme_str(), Some("http" | "https"))
        && uri.authority().is_some()
        && uri.query().is_none();
    if !fits {
        return Err(BAD_DELIVERY_URL);
    }
    Ok(Some(text.to_owned()))
}

const BAD_DELIVERY_URL: ConfigError = ConfigError::Invalid(
    "IMGBT_DELIVERY_URL must be an http:// or https:// URL without a query, e.g. https://cdn.example.com",
);

/// `IMGBT_MAX_REQUEST_BYTES` (0: no limit), else Lambda's limit when running as a Lambda function.
fn request_limit(lookup: impl Fn(&str) -> Option<String>) -> Result<Option<u64>, ConfigError> {
    match lookup("IMGBT_MAX_REQUEST_BYTES").filter(|v| !v.trim().is_empty()) {
        Some(text) => match text.trim().parse::<u64>() {
            Ok(0) => Ok(None),
            Ok(n) => Ok(Some(n)),
            Err(_) => Err(ConfigError::Invalid(
                "IMGBT_MAX_REQUEST_BYTES must be a number of bytes",
            )),
        },
        None => Ok(lookup("AWS_LAMBDA_RUNTIME_API").map(|_| LAMBDA_BODY_LIMIT)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn config(vars: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Config::from_lookup(|name| map.get(name).cloned())
    }

    const ALL: [(&str, &str); 6] = [
        ("CLOUDFLARE_ACCOUNT_ID", "acc"),
        ("CLOUDFLARE_API_TOKEN", "tok-secret-value"),
        ("IMGBT_D1_DATABASE_ID", "db"),
        ("IMGBT_R2_BUCKET", "bucket"),
        ("IMGBT_R2_ACCESS_KEY_ID", "akid"),
        ("IMGBT_R2_SECRET_ACCESS_KEY", "r2-secret-value"),
    ];

    #[test]
    fn a_delivery_url_is_an_http_origin_or_path_without_a_query() {
        let read = |value: &str| delivery_url(|_| Some(value.to_owned()));
        assert_eq!(read("").unwrap(), None);
        assert_eq!(
            read(" https://cdn.example.com/ ").unwrap().as_deref(),
            Some("https://cdn.example.com")
        );
        assert_eq!(
            read("http://127.0.0.1:9000/prod").unwrap().as_deref(),
            Some("http://127.0.0.1:9000/prod")
        );
        for bad in ["cdn.example.com", "ftp://x", "https://x/?a=1", "https://"] {
            assert!(read(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn nothing_set_is_the_embedded_default() {
        assert_eq!(
            config(&[]).unwrap(),
            Config::Embedded {
                data_dir: PathBuf::from(".imgbt")
            }
        );
        assert_eq!(
            config(&[("IMGBT_DATA_DIR", "/tmp/x")]).unwrap(),
            Config::Embedded {
                data_dir: PathBuf::from("/tmp/x")
            }
        );
    }

    #[test]
    fn everything_set_is_cloudflare_with_derived_endpoints() {
        let Config::Cloudflare(cf) = config(&ALL).unwrap() else {
            panic!("expected Cloudflare")
        };
        assert_eq!(cf.r2_endpoint, "https://acc.r2.cloudflarestorage.com");
        assert_eq!(cf.d1_base_url, DEFAULT_D1_BASE_URL);
        let mut with_overrides = ALL.to_vec();
        with_overrides.push(("IMGBT_D1_BASE_URL", "http://127.0.0.1:1"));
        with_overrides.push(("IMGBT_R2_ENDPOINT", "http://127.0.0.1:2"));
        let Config::Cloudflare(cf) = config(&with_overrides).unwrap() else {
            panic!("expected Cloudflare")
        };
        assert_eq!(
            (cf.d1_base_url.as_str(), cf.r2_endpoint.as_str()),
            ("http://127.0.0.1:1", "http://127.0.0.1:2")
        );
    }

    #[test]
    fn d1_alone_is_enough_for_a_d1_only_command_and_only_for_it() {
        let d1_only: HashMap<String, String> = ALL
            .iter()
            .filter(|(k, _)| REQUIRED_D1_VARS.contains(k))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let lookup = |name: &str| d1_only.get(name).cloned();
        let Config::Cloudflare(cf) =
            Config::from_lookup_requiring(lookup, &REQUIRED_D1_VARS).unwrap()
        else {
            panic!("expected Cloudflare")
        };
        assert_eq!(cf.d1_database_id, "db");
        assert_eq!(cf.r2_bucket, "");
        let err = Config::from_lookup(lookup).unwrap_err().to_string();
        assert!(err.contains("IMGBT_R2_BUCKET"), "{err}");
        let err = Config::from_lookup_requiring(
            |n| lookup(n).filter(|_| n != "IMGBT_D1_DATABASE_ID"),
            &REQUIRED_D1_VARS,
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("IMGBT_D1_DATABASE_ID") && !err.contains("R2"),
            "{err}"
        );
    }

    #[test]
    fn partial_configuration_names_what_is_missing() {
        let err = config(&ALL[..2]).unwrap_err();
        let text = err.to_string();
        for missing in [
            "IMGBT_D1_DATABASE_ID",
            "IMGBT_R2_BUCKET",
            "IMGBT_R2_ACCESS_KEY_ID",
            "IMGBT_R2_SECRET_ACCESS_KEY",
        ] {
            assert!(text.contains(missing), "{text}");
        }
        assert!(!text.contains("CLOUDFLARE_ACCOUNT_ID,"), "{text}");
        assert!(
            matches!(config(&[("IMGBT_R2_ENDPOINT", "http://x")]), Err(ConfigError::Incomplete(v)) if v.len() == 6)
        );
    }

    #[test]
    fn the_request_limit_is_lambdas_under_a_runtime_api_unless_configured() {
        let env = |vars: &'static [(&'static str, &'static str)]| {
            move |name: &str| {
                vars.iter()
                    .find(|(k, _)| *k == name)
                    .map(|(_, v)| v.to_string())
            }
        };
        assert_eq!(request_limit(env(&[])).unwrap(), None);
        assert_eq!(
            request_limit(env(&[("AWS_LAMBDA_RUNTIME_API", "127.0.0.1:9001")])).unwrap(),
            Some(LAMBDA_BODY_LIMIT)
        );
        assert_eq!(
            request_limit(env(&[("IMGBT_MAX_REQUEST_BYTES", "1000")])).unwrap(),
            Some(1000)
        );
        assert_eq!(
            request_limit(env(&[
                ("IMGBT_MAX_REQUEST_BYTES", "0"),
                ("AWS_LAMBDA_RUNTIME_API", "x")
            ]))
            .unwrap(),
            None
        );
        assert!(request_limit(env(&[("IMGBT_MAX_REQUEST_BYTES", "lots")])).is_err());
    }

    #[test]
    fn secrets_never_print() {
        let Config::Cloudflare(cf) = config(&ALL).unwrap() else {
            panic!("expected Cloudflare")
        };
        let shown = format!("{cf:?} {:?}", Config::Cloudflare(cf.clone()));
        assert!(
            !shown.contains("tok-secret-value") && !shown.contains("r2-secret-value"),
            "{shown}"
        );
    }

    #[cfg(feature = "embedded")]
    mod embedded {
        use super::*;
        use crate::db::{self, Stmt};
        use crate::migrations::MIGRATIONS;

        fn user_version(dir: &Path) -> i64 {
            rusqlite::Connection::open(dir.join("imgbt.db"))
                .unwrap()
                .pragma_query_value(None, "user_version", |row| row.get(0))
                .unwrap()
        }

        async fn tables(deps: &Deps) -> usize {
            let rows = db::run(
                &*deps.db,
                vec![Stmt::new(
                    "SELECT name FROM sqlite_master WHERE type = 'table' AND name = 'assets'",
                    vec![],
                )],
            )
            .await
            .unwrap();
            rows[0].rows.len()
        }

        #[tokio::test]
        async fn a_new_store_is_migrated_and_marked() {
            let dir = tempfile::tempdir().unwrap();
            let deps = Deps::embedded(dir.path()).await.unwrap();
            assert_eq!(tables(&deps).await, 1);
            assert_eq!(user_version(dir.path()), MIGRATIONS.len() as i64);
        }

        #[tokio::test]
        async fn a_store_migrated_without_the_marker_is_checked_by_name_then_marked() {
            // As `imgbt migrate` leaves it: every migration recorded in d1_migrations, marker 0.
            let dir = tempfile::tempdir().unwrap();
            let deps = Deps::open_embedded(dir.path()).unwrap();
            assert_eq!(
                migrations::apply(&*deps.db).await.unwrap().len(),
                MIGRATIONS.len()
            );
            drop(deps);
            assert_eq!(user_version(dir.path()), 0);
            let deps = Deps::embedded(dir.path()).await.unwrap();
            assert!(migrations::pending(&*deps.db).await.unwrap().is_empty());
            assert_eq!(user_version(dir.path()), MIGRATIONS.len() as i64);
        }

        #[tokio::test]
        async fn a_marked_store_opens_while_another_process_writes() {
            // The cold start of a marked store writes nothing, so it does not wait behind a
            // writer (it would, for the busy timeout of 10 s, and then fail with "database is
            // locked", if it ran the migration check's CREATE TABLE IF NOT EXISTS).
            let dir = tempfile::tempdir().unwrap();
            drop(Deps::embedded(dir.path()).await.unwrap());
            let writer = rusqlite::Connection::open(dir.path().join("imgbt.db")).unwrap();
            writer.execute_batch("BEGIN IMMEDIATE").unwrap();
            let deps = Deps::embedded(dir.path()).await.unwrap();
            assert_eq!(tables(&deps).await, 1, "reads go on beside the writer");
            writer.execute_batch("ROLLBACK").unwrap();
        }

        #[tokio::test]
        async fn a_marker_from_a_newer_binary_is_kept() {
            let dir = tempfile::tempdir().unwrap();
            drop(Deps::embedded(dir.path()).await.unwrap());
            let newer = MIGRATIONS.len() as i64 + 1;
            rusqlite::Connection::open(dir.path().join("imgbt.db"))
                .unwrap()
                .pragma_update(None, "user_version", newer)
                .unwrap();
            let db = SqliteDb::open(&dir.path().join("imgbt.db")).unwrap();
            db.mark_schema_version(MIGRATIONS.len()).unwrap();
            assert_eq!(db.schema_version().unwrap(), newer as usize);
            drop(db);
            drop(Deps::embedded(dir.path()).await.unwrap());
            assert_eq!(user_version(dir.path()), newer);
        }
    }
}
