//! The D1 gateway Worker (`infra/d1-gateway/`) under `wrangler dev --local`: workerd's own D1
//! engine behind the gateway's REST endpoint, on 127.0.0.1.
//!
//! Starting wrangler takes seconds, so a test binary starts one process, the first time
//! [`Gateway::shared`] is called, and every test of that binary uses it:
//!
//! - A fresh persistence directory, migrated by `wrangler d1 migrations apply DB --local` from
//!   the `migrations_dir` of the gateway's `wrangler.toml` (the repository's `migrations/`), then
//!   `wrangler dev --local` on it. The secret and the account and database ids are random per
//!   process and reach the Worker through an env file in that directory, never a command line.
//! - Offline: no login, no metrics, no update check, no fetch of the `Request.cf` object.
//! - wrangler and workerd run in a process group of their own under a small shell that holds the
//!   read end of a pipe whose write end only this process has. However this process ends (normal
//!   exit, panic, SIGKILL), the kernel closes the pipe, the shell reads EOF and kills the whole
//!   group (TERM, then a second later KILL) and removes the temporary directory: no workerd
//!   outlives the tests.
//! - One database for the whole binary: a test takes it with [`Gateway::take`], which waits for
//!   the previous holder to finish and empties every table of the schema before handing it over.
//!   Tests on the gateway therefore run one at a time (tests on other backends run beside them).
//!
//! The npm packages are installed on first use when missing (`npm ci --prefix infra/d1-gateway`,
//! pinned by its lock file), so `cargo test` sets a fresh clone up alone; when that fails, this
//! panics saying why, rather than skipping.

use imgbt_test_servers::{random_database_id, random_hex};
use shared::db::d1::D1Db;
use shared::db::{self, Stmt};
use shared::secret::Secret;
use std::io::{BufRead, BufReader, Read};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};
use tempfile::TempDir;
use tokio::sync::OwnedMutexGuard;

/// How long wrangler may take to migrate and to start serving.
const START_TIMEOUT: Duration = Duration::from_secs(180);

/// A running gateway on workerd.
pub struct Gateway {
    base_url: String,
    account_id: String,
    database_id: String,
    token: String,
    previous_token: String,
    state: PathBuf,
    process_group: u32,
    /// The lines wrangler printed, for failure messages.
    output: Arc<Mutex<Vec<String>>>,
    turn: Arc<tokio::sync::Mutex<()>>,
    // Held, never written: closing it (at process exit) stops wrangler and workerd.
    _lifeline: Mutex<ChildStdin>,
    _child: Mutex<Child>,
    _dir: TempDir,
}

/// The gateway's database, held by one test at a time; see [`Gateway::take`].
pub struct Turn {
    _guard: OwnedMutexGuard<()>,
}

/// `infra/d1-gateway/` of this repository.
pub fn gateway_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join("infra")
        .join("d1-gateway")
}

fn wrangler_js() -> PathBuf {
    gateway_dir()
        .join("node_modules")
        .join("wrangler")
        .join("bin")
        .join("wrangler.js")
}

/// Installs the gateway's npm packages (wrangler, workerd; pinned by its package-lock.json) when
/// they are missing, so that `cargo test` alone sets a fresh clone up. `npm ci` reaches only the
/// npm registry; `--ignore-scripts` because workerd ships its binary inside a registry package.
fn install_packages() -> Result<(), String> {
    if wrangler_js().is_file() {
        return Ok(());
    }
    let npm = which("npm").ok_or(
        "the D1 gateway backend needs Node.js and npm on PATH to install and run wrangler"
            .to_owned(),
    )?;
    eprintln!("imgbt-tests: installing the D1 gateway's npm packages (npm ci, once)");
    let output = Command::new(npm)
        .args([
            "ci",
            "--no-audit",
            "--no-fund",
            "--ignore-scripts",
            "--prefix",
        ])
        .arg(gateway_dir())
        .output()
        .map_err(|e| format!("running npm ci: {e}"))?;
    if !output.status.success() || !wrangler_js().is_file() {
        return Err(format!(
            "the D1 gateway backend needs its npm packages and `npm ci --prefix infra/d1-gateway` \
             failed ({}):\n{}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    Ok(())
}

impl Gateway {
    /// The gateway of this test binary, started on first use.
    ///
    /// # Panics
    /// When the npm packages are not installed, or wrangler fails to start (with its output).
    pub fn shared() -> &'static Gateway {
        static GATEWAY: OnceLock<Result<Gateway, String>> = OnceLock::new();
        match GATEWAY.get_or_init(Gateway::start) {
            Ok(gateway) => gateway,
            Err(message) => panic!("{message}"),
        }
    }

    /// Starts a gateway of its own (a test of the gateway itself may want one; most use
    /// [`Gateway::shared`]).
    pub fn start() -> Result<Gateway, String> {
        let dir = gateway_dir();
        install_packages()?;
        let node = which("node").ok_or(
            "the D1 gateway backend needs Node.js (`node` on PATH) to run wrangler".to_owned(),
        )?;
        let tmp = tempfile::Builder::new()
            .prefix("imgbt-gateway-")
            .tempdir()
            .map_err(|e| format!("temporary directory: {e}"))?;
        let state = tmp.path().join("state");
        let account_id = random_hex(16);
        let database_id = random_database_id();
        let token = random_hex(24);
        let previous_token = random_hex(24);
        let env_file = tmp.path().join("gateway.env");
        write_private(
            &env_file,
            &format!(
                "GATEWAY_TOKEN={token}\nGATEWAY_TOKEN_PREVIOUS={previous_token}\n\
                 ACCOUNT_ID={account_id}\nDATABASE_ID={database_id}\n"
            ),
        )?;
        let config = dir.join("wrangler.toml");

        let migrate = wrangler(&node, tmp.path())
            .args(["d1", "migrations", "apply", "DB", "--local"])
            .arg("--persist-to")
            .arg(&state)
            .arg("--config")
            .arg(&config)
            .stdin(Stdio::null())
            .output()
            .map_err(|e| format!("running wrangler d1 migrations apply: {e}"))?;
        if !migrate.status.success() {
            return Err(format!(
                "wrangler d1 migrations apply failed ({}):\n{}{}",
                migrate.status,
                String::from_utf8_lossy(&migrate.stdout),
                String::from_utf8_lossy(&migrate.stderr)
            ));
        }

        // The shell waits on its stdin, our pipe. At EOF it asks its process group to stop
        // (ignoring that itself), removes the temporary directory (a static gateway is never
        // dropped), and kills whatever is left of the group, itself included.
        let mut command = Command::new("bash");
        command
            .arg("-c")
            .arg(
                r#"dir=$1; shift; "$@" </dev/null & read -r _
                trap '' TERM; kill -TERM 0; sleep 1; rm -rf -- "$dir"; kill -KILL 0"#,
            )
            .arg("gateway")
            .arg(tmp.path())
            .arg(&node)
            .arg(wrangler_js())
            .args(["dev", "--local", "--ip", "127.0.0.1", "--port", "0"])
            .args(["--inspector-port", "0", "--log-level", "info"])
            .arg("--show-interactive-dev-session=false")
            .arg("--persist-to")
            .arg(&state)
            .arg("--env-file")
            .arg(&env_file)
            .arg("--config")
            .arg(&config)
            .current_dir(&dir)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0);
        offline(&mut command, tmp.path());
        let mut child = command
            .spawn()
            .map_err(|e| format!("starting wrangler dev: {e}"))?;
        let process_group = child.id();
        let lifeline = child.stdin.take().expect("piped stdin");
        let output = Arc::new(Mutex::new(Vec::new()));
        let (ready_tx, ready_rx) = mpsc::channel();
        drain(
            child.stdout.take().expect("piped stdout"),
            &output,
            &ready_tx,
        );
        drain(
            child.stderr.take().expect("piped stderr"),
            &output,
            &ready_tx,
        );
        drop(ready_tx);
        let started = Instant::now();
        let base_url = match ready_rx.recv_timeout(START_TIMEOUT) {
            Ok(url) => url,
            Err(_) => {
                let _ = child.kill();
                let lines = output.lock().map(|l| l.join("\n")).unwrap_or_default();
                return Err(format!(
                    "wrangler dev did not report `Ready on` within {START_TIMEOUT:?} ({:?} waited):\n{lines}",
                    started.elapsed()
                ));
            }
        };
        Ok(Gateway {
            base_url,
            account_id,
            database_id,
            token,
            previous_token,
            state,
            process_group,
            output,
            turn: Arc::new(tokio::sync::Mutex::new(())),
            _lifeline: Mutex::new(lifeline),
            _child: Mutex::new(child),
            _dir: tmp,
        })
    }

    /// `http://127.0.0.1:PORT`: what `IMGBT_D1_BASE_URL` is set to.
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// The full URL of the query endpoint.
    pub fn query_url(&self) -> String {
        format!(
            "{}/accounts/{}/d1/database/{}/query",
            self.base_url, self.account_id, self.database_id
        )
    }

    pub fn account_id(&self) -> &str {
        &self.account_id
    }

    pub fn database_id(&self) -> &str {
        &self.database_id
    }

    /// The bearer secret the gateway accepts.
    pub fn token(&self) -> &str {
        &self.token
    }

    /// The second secret the gateway accepts, as `GATEWAY_TOKEN_PREVIOUS` during a rotation.
    pub fn previous_token(&self) -> &str {
        &self.previous_token
    }

    /// Our D1 client, pointed at the gateway.
    pub fn client(&self) -> D1Db {
        D1Db::new(
            &self.base_url,
            &self.account_id,
            &self.database_id,
            Secret::new(self.token.clone()),
        )
        .expect("D1 client")
    }

    /// The process group of the shell, wrangler and workerd.
    pub fn process_group(&self) -> u32 {
        self.process_group
    }

    /// What wrangler and workerd have printed so far.
    pub fn output(&self) -> String {
        self.output.lock().map(|l| l.join("\n")).unwrap_or_default()
    }

    /// Waits until no other test holds the database, then empties every table of the schema
    /// (the migrations stay recorded) and hands it over until the [`Turn`] is dropped.
    pub async fn take(&self) -> Turn {
        let guard = self.turn.clone().lock_owned().await;
        self.empty().await;
        Turn { _guard: guard }
    }

    async fn empty(&self) {
        let d1 = self.client();
        let tables = db::run(
            &d1,
            vec![Stmt::new(
                "SELECT name FROM sqlite_master WHERE type = 'table' \
                 AND name NOT LIKE '\\_cf\\_%' ESCAPE '\\' AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' \
                 AND name <> 'd1_migrations'",
                vec![],
            )],
        )
        .await
        .unwrap_or_else(|e| panic!("listing the gateway's tables: {e}\n{}", self.output()));
        let mut stmts = vec![Stmt::new("PRAGMA defer_foreign_keys = ON", vec![])];
        for row in &tables[0].rows {
            let name = row["name"].as_str().expect("table name");
            stmts.push(Stmt::new(format!("DELETE FROM \"{name}\""), vec![]));
        }
        db::run(&d1, stmts)
            .await
            .unwrap_or_else(|e| panic!("emptying the gateway's tables: {e}\n{}", self.output()));
    }

    /// The bytes of workerd's local D1 files (SQLite database, WAL), to search for what must not
    /// be stored.
    pub fn database_bytes(&self) -> Vec<u8> {
        crate::files_under(&self.state.join("v3").join("d1"))
            .into_iter()
            .filter_map(|path| std::fs::read(path).ok())
            .flatten()
            .collect()
    }
}

/// A `wrangler` command (not `dev`) with the offline environment.
fn wrangler(node: &Path, home: &Path) -> Command {
    let mut command = Command::new(node);
    command.arg(wrangler_js()).current_dir(gateway_dir());
    offline(&mut command, home);
    command
}

/// No account, no telemetry, no update check, no `Request.cf` download; logs and scratch files
/// kept in `home`.
fn offline(command: &mut Command, home: &Path) {
    for var in [
        "CLOUDFLARE_API_TOKEN",
        "CLOUDFLARE_API_KEY",
        "CLOUDFLARE_EMAIL",
        "CLOUDFLARE_ACCOUNT_ID",
    ] {
        command.env_remove(var);
    }
    command
        .env("CI", "true")
        .env("WRANGLER_SEND_METRICS", "false")
        .env("WRANGLER_SEND_ERROR_REPORTS", "false")
        .env("WRANGLER_HIDE_BANNER", "true")
        .env("CLOUDFLARE_CF_FETCH_ENABLED", "false")
        .env("WRANGLER_LOG_PATH", home.join("logs"))
        .env("XDG_CONFIG_HOME", home.join("config"))
        // Miniflare's scratch directories go where the watchdog removes them, not in /tmp.
        .env("TMPDIR", home)
        .env("NO_COLOR", "1")
        .env("FORCE_COLOR", "0");
}

/// Reads `stream` line by line into `output`, sending the URL of `Ready on http://…` once seen.
fn drain(
    stream: impl Read + Send + 'static,
    output: &Arc<Mutex<Vec<String>>>,
    ready: &mpsc::Sender<String>,
) {
    let output = output.clone();
    let ready = ready.clone();
    std::thread::spawn(move || {
        for line in BufReader::new(stream).lines() {
            let Ok(line) = line else { break };
            if let Some(at) = line.find("Ready on http://") {
                let url = line[at + "Ready on ".len()..].trim().trim_end_matches('/');
                let _ = ready.send(url.to_owned());
            }
            if let Ok(mut lines) = output.lock() {
                // Enough to explain a failure; a long run must not grow without bound.
                if lines.len() >= 400 {
                    lines.drain(..200);
                }
                lines.push(line);
            }
        }
    });
}

fn write_private(path: &Path, text: &str) -> Result<(), String> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    file.write_all(text.as_bytes())
        .map_err(|e| format!("{}: {e}", path.display()))
}

fn which(program: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join(program))
            .find(|candidate| candidate.is_file())
    })
}
