//! Configuration from the environment, and the clients a process builds once per cold start.

use crate::blobs::{Blobs, local::LocalBlobs};
use crate::db::{Db, sqlite::SqliteDb};
use crate::migrations;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// Where the embedded default keeps its data when `IMGBT_DATA_DIR` is not set.
pub const DEFAULT_DATA_DIR: &str = ".imgbt";

/// Which stores a process uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Config {
    /// A SQLite file and a directory of objects under `data_dir`.
    Embedded { data_dir: PathBuf },
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot open the embedded store at {path}: {cause}")]
    Embedded { path: String, cause: String },
}

impl Config {
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Reads configuration through `lookup`, so that tests need not touch the process environment.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let data_dir = lookup("IMGBT_DATA_DIR")
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| DEFAULT_DATA_DIR.to_owned());
        Ok(Config::Embedded {
            data_dir: PathBuf::from(data_dir),
        })
    }
}

/// Everything a handler uses: the two I/O seams.
pub struct Deps {
    pub db: Arc<dyn Db>,
    pub blobs: Arc<dyn Blobs>,
    /// Objects this process deleted whose pending-deletion rows are not yet cleared. The delete
    /// function clears them in its next batch, so that the happy path stays one D1 request.
    pub settled_deletions: Mutex<Vec<String>>,
}

impl Deps {
    pub fn new(db: Arc<dyn Db>, blobs: Arc<dyn Blobs>) -> Self {
        Deps {
            db,
            blobs,
            settled_deletions: Mutex::new(Vec::new()),
        }
    }

    /// Builds the stores that the environment configures.
    pub async fn from_env() -> Result<Self, ConfigError> {
        match Config::from_env()? {
            Config::Embedded { data_dir } => Self::embedded(&data_dir).await,
        }
    }

    /// The embedded default under `data_dir`, with pending migrations applied, so that a fresh
    /// directory just works (the functions use this).
    pub async fn embedded(data_dir: &Path) -> Result<Self, ConfigError> {
        let deps = Self::open_embedded(data_dir)?;
        migrations::apply(&*deps.db)
            .await
            .map_err(|e| ConfigError::Embedded {
                path: data_dir.display().to_string(),
                cause: e.to_string(),
            })?;
        Ok(deps)
    }

    /// The embedded default under `data_dir` as it is: `imgbt.db` and `objects/`, no migration.
    pub fn open_embedded(data_dir: &Path) -> Result<Self, ConfigError> {
        let fail = |cause: String| ConfigError::Embedded {
            path: data_dir.display().to_string(),
            cause,
        };
        std::fs::create_dir_all(data_dir).map_err(|e| fail(e.to_string()))?;
        let db = SqliteDb::open(&data_dir.join("imgbt.db")).map_err(|e| fail(e.to_string()))?;
        let blobs = LocalBlobs::new(data_dir.join("objects")).map_err(|e| fail(e.to_string()))?;
        Ok(Self::new(Arc::new(db), Arc::new(blobs)))
    }

    /// The stores that the environment configures, as they are (for `imgbt`, which migrates on
    /// request only).
    pub fn open_from_env() -> Result<Self, ConfigError> {
        match Config::from_env()? {
            Config::Embedded { data_dir } => Self::open_embedded(&data_dir),
        }
    }
}
