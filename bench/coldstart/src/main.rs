//! Cold start, binary size and upload peak memory of the release functions, each against a floor
//! measured in the same run: `hello`, a minimal `lambda_http` function built with the same profile.
//!
//! The harness serves a minimal Lambda Runtime API on 127.0.0.1 (an ephemeral port), execs each
//! binary with the Lambda environment and a fresh, seeded `IMGBT_DATA_DIR`, hands it one API
//! Gateway HTTP API v2 event from `events/`, and times exec → its first response POST. Then it
//! reads the child's peak RSS (`VmHWM`) and kills it. See README.md next to this file.
//!
//! ```text
//! cargo build --release -p get -p list -p update -p upload -p delete -p imgbt-cli -p imgbt-coldstart
//! target/release/imgbt-coldstart [--runs N] [--bin-dir DIR] [--events DIR] [--sizes-mib 1,4,10,100] [--skip-memory]
//! ```

use base64::Engine;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{Method, Request, Response, StatusCode};
use imgbt_test_servers::{D1Server, S3Server};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// The binaries, each with the event it is invoked with (files in `events/`).
const BINARIES: [(&str, &str); 9] = [
    ("hello", "get.200.sample.json"),
    ("get", "get.200.sample.json"),
    ("list", "list.200.first-page.json"),
    ("update", "update.200.merge.json"),
    ("upload", "upload.201.multipart.json"),
    ("delete", "delete.204.sample.json"),
    ("uploads", "uploads.201.start.json"),
    ("complete", "complete.201.dev-upload.json"),
    ("content", "content.200.sample.json"),
];

const MIB: usize = 1024 * 1024;

type Error = Box<dyn std::error::Error + Send + Sync>;

fn main() -> Result<(), Error> {
    let opts = Options::parse()?;
    let api = RuntimeApi::start()?;
    let template = tempfile::tempdir()?;
    seed(template.path())?;

    println!("imgbt cold start, size and memory (floor: `hello`, same profile, same harness)");
    println!(
        "binaries: {}   runtime API: {}   runs: {}",
        opts.bin_dir.display(),
        api.addr,
        opts.runs
    );
    println!();

    sizes(&opts)?;
    let cloudflare = if opts.cloudflare {
        Some(Cloudflare::start()?)
    } else {
        None
    };
    cold_starts(&opts, &api, template.path(), cloudflare.as_ref())?;
    if !opts.skip_memory {
        memory(&opts, &api, template.path())?;
    }
    Ok(())
}

struct Options {
    runs: usize,
    bin_dir: PathBuf,
    events: PathBuf,
    sizes_mib: Vec<usize>,
    skip_memory: bool,
    /// Extra variables for every child (`--env-file`, lines `KEY=VALUE` or `export KEY=VALUE`),
    /// e.g. the Cloudflare variables that `local-cloudflare` (tests/servers) prints.
    env: Vec<(String, String)>,
    /// Accept any status (`--any-status`): for stores the dev vault cannot be seeded on.
    any_status: bool,
    /// `--cloudflare`: the production code path (D1 over REST, R2 over S3) against the test kit's
    /// D1 and S3 servers, started in this process and reseeded before every run.
    cloudflare: bool,
    /// `--only a,b`: these binaries (and hello, the floor) instead of all of them.
    only: Option<Vec<String>>,
}

impl Options {
    /// The binaries this run measures: hello and those `--only` names (all by default).
    fn binaries(&self) -> Vec<(&'static str, &'static str)> {
        BINARIES
            .into_iter()
            .filter(|(name, _)| {
                *name == "hello"
                    || self
                        .only
                        .as_ref()
                        .is_none_or(|only| only.iter().any(|o| o == name))
            })
            .collect()
    }

    fn parse() -> Result<Self, Error> {
        let exe = std::env::current_exe()?;
        let mut opts = Options {
            runs: 20,
            bin_dir: exe.parent().map(Path::to_path_buf).unwrap_or_default(),
            events: Path::new(env!("CARGO_MANIFEST_DIR")).join("../../events"),
            sizes_mib: vec![1, 4, 10, 100],
            skip_memory: false,
            env: Vec::new(),
            any_status: false,
            cloudflare: false,
            only: None,
        };
        let mut args = std::env::args().skip(1);
        while let Some(arg) = args.next() {
            let mut value = || args.next().ok_or(format!("{arg} needs a value"));
            match arg.as_str() {
                "--runs" => opts.runs = value()?.parse()?,
                "--bin-dir" => opts.bin_dir = value()?.into(),
                "--events" => opts.events = value()?.into(),
                "--sizes-mib" => {
                    opts.sizes_mib = value()?
                        .split(',')
                        .map(str::parse)
                        .collect::<Result<_, _>>()?
                }
                "--skip-memory" => opts.skip_memory = true,
                "--any-status" => opts.any_status = true,
                "--cloudflare" => opts.cloudflare = true,
                "--only" => {
                    opts.only = Some(value()?.split(',').map(str::to_owned).collect());
                }
                "--env-file" => {
                    let text = std::fs::read_to_string(value()?)?;
                    for line in text.lines().map(str::trim) {
                        let line = line.strip_prefix("export ").unwrap_or(line);
                        if let Some((key, val)) = line.split_once('=')
                            && !key.starts_with('#')
                        {
                            opts.env
                                .push((key.trim().to_owned(), val.trim().to_owned()));
                        }
                    }
                }
                "-h" | "--help" => {
                    println!(
                        "imgbt-coldstart [--runs N] [--bin-dir DIR] [--events DIR] [--sizes-mib 1,4,10,100] [--skip-memory] [--env-file FILE] [--any-status] [--cloudflare] [--only get,upload,…]"
                    );
                    std::process::exit(0);
                }
                other => return Err(format!("unknown argument {other}").into()),
            }
        }
        if opts.runs == 0 {
            return Err("--runs must be at least 1".into());
        }
        Ok(opts)
    }

    fn binary(&self, name: &str) -> Result<PathBuf, Error> {
        let path = self.bin_dir.join(name);
        if path.is_file() {
            Ok(path)
        } else {
            Err(format!(
                "{} not found: build it first (cargo build --release -p get -p list -p update -p upload -p delete -p imgbt-cli -p imgbt-coldstart)",
                path.display()
            )
            .into())
        }
    }

    fn event(&self, file: &str) -> Result<Bytes, Error> {
        let path = self.events.join(file);
        std::fs::read(&path)
            .map(Bytes::from)
            .map_err(|e| format!("{}: {e}", path.display()).into())
    }
}

/// The dev vault (migrated store, well-known keys, sample asset) that the sample events use.
fn seed(dir: &Path) -> Result<(), Error> {
    let runtime = tokio::runtime::Builder::new_current_thread().build()?;
    runtime.block_on(async {
        let deps = shared::Deps::embedded(dir).await?;
        imgbt_cli::dev::seed_dev(&*deps.db, &deps.clock, &*deps.blobs).await?;
        Ok::<_, Error>(())
    })
}

/// A fresh directory for one run: `store/`, a copy of the seeded template (closed, so a plain
/// copy is consistent), and the child's log.
///
/// The copy is flushed to disk before the child starts (untimed). Otherwise the child's first
/// `fsync` (SQLite's, when its first write starts the WAL) would also write out the copy this
/// harness just made: ext4 in its default `data=ordered` mode commits every file's pending
/// blocks with the journal transaction an fsync forces. A store on a laptop was not copied a
/// millisecond before the function started.
fn fresh_data_dir(template: &Path) -> Result<tempfile::TempDir, Error> {
    let dir = tempfile::tempdir()?;
    copy_tree(template, &dir.path().join("store"))?;
    std::fs::File::open(dir.path())?.sync_all()?;
    Ok(dir)
}

fn copy_tree(from: &Path, to: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(to)?;
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let target = to.join(entry.file_name());
        if entry.file_type()?.is_dir() {
            copy_tree(&entry.path(), &target)?;
        } else {
            std::fs::copy(entry.path(), &target)?;
            std::fs::File::open(&target)?.sync_all()?;
        }
    }
    std::fs::File::open(to)?.sync_all()
}

// ---------------------------------------------------------------------------------------------
// Sizes

fn sizes(opts: &Options) -> Result<(), Error> {
    let floor = std::fs::metadata(opts.binary("hello")?)?.len();
    println!("## Binary size ({})", opts.bin_dir.display());
    println!("| binary | bytes | MB | × hello |");
    println!("|---|---:|---:|---:|");
    for (name, _) in opts.binaries() {
        let size = std::fs::metadata(opts.binary(name)?)?.len();
        println!(
            "| {name} | {size} | {:.2} | {:.2} |",
            size as f64 / 1e6,
            size as f64 / floor as f64
        );
    }
    println!();
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Cold starts

fn cold_starts(
    opts: &Options,
    api: &RuntimeApi,
    template: &Path,
    cloudflare: Option<&Cloudflare>,
) -> Result<(), Error> {
    let extra: Vec<(&str, &str)> = opts
        .env
        .iter()
        .chain(cloudflare.map(|c| c.env.as_slice()).unwrap_or_default())
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let reseed = || cloudflare.map(Cloudflare::reseed).unwrap_or(Ok(()));
    let mut times: BTreeMap<&str, Vec<Duration>> = BTreeMap::new();
    let mut peaks: BTreeMap<&str, Vec<u64>> = BTreeMap::new();
    let mut inits: BTreeMap<&str, Vec<Duration>> = BTreeMap::new();
    let mut cpus: BTreeMap<&str, Vec<Duration>> = BTreeMap::new();
    let mut faults: BTreeMap<&str, Vec<u64>> = BTreeMap::new();
    let events: Vec<(&str, PathBuf, Bytes, u16)> = opts
        .binaries()
        .iter()
        .map(|(name, event)| {
            Ok((
                *name,
                opts.binary(name)?,
                opts.event(event)?,
                if opts.any_status {
                    0
                } else {
                    expected_status(name, event, cloudflare.is_some())
                },
            ))
        })
        .collect::<Result<_, Error>>()?;
    // One unmeasured round, so that every binary is in the page cache, as the later runs find it.
    for (name, path, event, status) in &events {
        let data = fresh_data_dir(template)?;
        reseed()?;
        run_once(api, name, path, data.path(), event.clone(), *status, &extra)?;
    }
    // Each run's directory is removed only at the end: removing them as the runs go makes ext4
    // slow to create files in the next ones (it skips recently freed inodes, and then scans for
    // one), a cost that SQLite's first open (creating `-wal` and `-shm`) would pay in the timed
    // part, and that a store on a laptop does not have.
    let mut used = Vec::new();
    for _ in 0..opts.runs {
        // Interleaved: a drift in the machine's load spreads over every binary alike.
        for (name, path, event, status) in &events {
            let data = fresh_data_dir(template)?;
            reseed()?;
            let run = run_once(api, name, path, data.path(), event.clone(), *status, &extra)?;
            used.push(data);
            times.entry(name).or_default().push(run.elapsed);
            inits.entry(name).or_default().push(run.init);
            peaks.entry(name).or_default().push(run.vm_hwm);
            cpus.entry(name).or_default().push(run.cpu);
            faults.entry(name).or_default().push(run.faults);
        }
    }
    let floor = median_duration(&times["hello"]);
    let init_floor = median_duration(&inits["hello"]);
    println!(
        "## Cold start: exec → first response POST ({} runs each, interleaved; store: {})",
        opts.runs,
        match cloudflare {
            Some(_) => "D1 over REST and R2 over S3, the test kit's servers in this process",
            None => "the embedded default",
        }
    );
    println!(
        "| binary | event | median ms | min ms | max ms | × hello | init ms (exec → first `next`) | × hello | on CPU ms | page faults | peak RSS MB |"
    );
    println!("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for (name, event) in opts.binaries() {
        let t = &times[name];
        let median = median_duration(t);
        println!(
            "| {name} | {event} | {:.2} | {:.2} | {:.2} | {:.2} | {:.2} | {:.2} | {:.2} | {} | {:.1} |",
            ms(median),
            ms(*t.iter().min().unwrap()),
            ms(*t.iter().max().unwrap()),
            median.as_secs_f64() / floor.as_secs_f64(),
            ms(median_duration(&inits[name])),
            median_duration(&inits[name]).as_secs_f64() / init_floor.as_secs_f64(),
            ms(median_duration(&cpus[name])),
            median_u64(&faults[name]),
            median_u64(&peaks[name]) as f64 / 1e6,
        );
    }
    println!();
    Ok(())
}

/// The status the event's file name declares (0: any) (`<function>.<status>.<case>.json`); hello:
/// 200. On R2, content answers 302 to a presigned URL where the embedded store answers 200.
fn expected_status(name: &str, event: &str, cloudflare: bool) -> u16 {
    if name == "hello" {
        return 200;
    }
    if name == "content" && cloudflare {
        return 302;
    }
    event
        .split('.')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(200)
}

/// The test kit's D1 REST and S3 servers (`imgbt-test-servers`), served from a thread of this
/// process, migrated, with the dev vault that the sample events use. Seeding D1 with the dev
/// vault's well-known keys is what `imgbt dev seed` refuses for a real D1; these servers are
/// throwaways on 127.0.0.1 that live as long as this process.
struct Cloudflare {
    runtime: tokio::runtime::Runtime,
    deps: shared::Deps,
    /// The variables that point a function at these servers.
    env: Vec<(String, String)>,
    _servers: (D1Server, S3Server),
}

impl Cloudflare {
    fn start() -> Result<Self, Error> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()?;
        let (d1, s3) =
            runtime.block_on(async { tokio::join!(D1Server::start(), S3Server::start()) });
        let env: Vec<(String, String)> = imgbt_test_servers::cloudflare_env(&d1, &s3)
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v))
            .collect();
        let config = shared::deps::Config::from_lookup(|name| {
            env.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone())
        })?;
        let deps = shared::Deps::open(&config)?;
        runtime.block_on(shared::migrations::apply(&*deps.db))?;
        let stores = Cloudflare {
            runtime,
            deps,
            env,
            _servers: (d1, s3),
        };
        stores.reseed()?;
        Ok(stores)
    }

    /// Back to the seed state (the sample asset, no upload of an earlier run), untimed.
    fn reseed(&self) -> Result<(), Error> {
        self.runtime.block_on(imgbt_cli::dev::seed_dev(
            &*self.deps.db,
            &self.deps.clock,
            &*self.deps.blobs,
        ))?;
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------------
// Upload peak memory

fn memory(opts: &Options, api: &RuntimeApi, template: &Path) -> Result<(), Error> {
    let sample: serde_json::Value =
        serde_json::from_slice(&opts.event("upload.201.multipart.json")?)?;
    let hello = opts.binary("hello")?;
    let upload = opts.binary("upload")?;
    let probe = opts.binary("upload-probe")?;
    // Each figure is the median of a few runs: VmHWM is exact, but page rounding and the
    // allocator's timing vary a little.
    const REPEATS: usize = 3;
    let runs = |path: &Path, name: &str, event: &Bytes, status: u16, env: &[(&str, &str)]| {
        (0..REPEATS)
            .map(|_| {
                let data = fresh_data_dir(template)?;
                run_once(api, name, path, data.path(), event.clone(), status, env)
            })
            .collect::<Result<Vec<Run>, Error>>()
    };
    let peak = |runs: &[Run]| median_u64(&runs.iter().map(|r| r.vm_hwm).collect::<Vec<_>>());
    let header = |runs: &[Run], name: &str| {
        median_u64(
            &runs
                .iter()
                .map(|r| {
                    r.response["headers"][name]
                        .as_str()
                        .and_then(|v| v.parse().ok())
                        .unwrap_or(0)
                })
                .collect::<Vec<_>>(),
        )
    };
    let mb = |bytes: u64| bytes as f64 / 1e6;

    println!(
        "## Upload peak memory (VmHWM of the child after its response; median of {REPEATS} runs)"
    );
    println!();
    println!(
        "| file | event JSON MB | upload peak MB | ÷ file | hello peak MB (same event) | probe: decode peak MB | probe: RSS at handler entry MB | probe: handler peak MB | handler RSS share MB | ÷ file | probe: heap at entry MB | handler heap share MB | ÷ file |"
    );
    println!("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    let small = opts.event("upload.201.multipart.json")?;
    let mut cases: Vec<(String, Bytes, usize)> = vec![("sample (≈70 B PNG)".into(), small, 0)];
    for &mib in &opts.sizes_mib {
        let file_len = mib * MIB;
        cases.push((
            format!("{mib} MiB"),
            upload_event(&sample, file_len)?,
            file_len,
        ));
    }
    for (label, event, file_len) in cases {
        // Lambda's request limit applies to an invocation under a Runtime API; the 10 MB and
        // 100 MB rows lift it, as the contract's 100 MB needs.
        let env: &[(&str, &str)] = if file_len > 6 * MIB * 3 / 4 {
            &[("IMGBT_MAX_REQUEST_BYTES", "0")]
        } else {
            &[]
        };
        let whole = peak(&runs(&upload, "upload", &event, 201, env)?);
        let floor = peak(&runs(&hello, "hello", &event, 200, env)?);
        let probed = runs(&probe, "upload-probe", &event, 201, env)?;
        let decode_peak = header(&probed, "x-probe-decode-peak");
        let entry = header(&probed, "x-probe-entry-rss");
        let handler_peak = header(&probed, "x-probe-handler-peak");
        let share = handler_peak.saturating_sub(entry);
        let heap_entry = header(&probed, "x-probe-heap-entry");
        let heap_share = header(&probed, "x-probe-heap-peak").saturating_sub(heap_entry);
        let per_file = |bytes: u64| {
            if file_len == 0 {
                "–".to_owned()
            } else {
                format!("{:.2}", bytes as f64 / file_len as f64)
            }
        };
        println!(
            "| {label} | {:.1} | {:.1} | {} | {:.1} | {:.1} | {:.1} | {:.1} | {:.1} | {} | {:.1} | {:.1} | {} |",
            mb(event.len() as u64),
            mb(whole),
            per_file(whole),
            mb(floor),
            mb(decode_peak),
            mb(entry),
            mb(handler_peak),
            mb(share),
            per_file(share),
            mb(heap_entry),
            mb(heap_share),
            per_file(heap_share),
        );
    }
    println!();
    Ok(())
}

/// The sample upload event with its 1-pixel PNG followed by filler up to `file_len` bytes: still
/// sniffed as a PNG with its dimensions, incompressible, and never containing the boundary.
fn upload_event(sample: &serde_json::Value, file_len: usize) -> Result<Bytes, Error> {
    let b64 = base64::engine::general_purpose::STANDARD;
    let mut event = sample.clone();
    let body = b64.decode(event["body"].as_str().ok_or("sample event has no body")?)?;
    let png_start = find(&body, b"\x89PNG").ok_or("no PNG in the sample body")?;
    let png_end = find(&body, b"IEND").ok_or("no IEND in the sample body")? + 8;
    let mut file = body[png_start..png_end].to_vec();
    let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
    while file.len() < file_len {
        // xorshift64*
        state ^= state >> 12;
        state ^= state << 25;
        state ^= state >> 27;
        let word = state.wrapping_mul(0x2545_F491_4F6C_DD1D).to_le_bytes();
        let take = word.len().min(file_len - file.len());
        file.extend_from_slice(&word[..take]);
    }
    let mut new_body = Vec::with_capacity(body.len() + file_len);
    new_body.extend_from_slice(&body[..png_start]);
    new_body.extend_from_slice(&file);
    new_body.extend_from_slice(&body[png_end..]);
    event["headers"]["content-length"] = serde_json::Value::String(new_body.len().to_string());
    event["body"] = serde_json::Value::String(b64.encode(&new_body));
    Ok(Bytes::from(serde_json::to_vec(&event)?))
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

// ---------------------------------------------------------------------------------------------
// One run: exec, one invocation, measure, kill

struct Run {
    elapsed: Duration,
    /// Exec → the function's first `GET …/invocation/next`: its init.
    init: Duration,
    vm_hwm: u64,
    /// Where the time went: the child's time on a CPU (`/proc/<pid>/schedstat`) and its minor
    /// page faults (`/proc/<pid>/stat`), read when it has answered.
    cpu: Duration,
    faults: u64,
    /// The API Gateway response the function posted.
    response: serde_json::Value,
}

#[allow(clippy::too_many_arguments)]
fn run_once(
    api: &RuntimeApi,
    name: &str,
    path: &Path,
    data_dir: &Path,
    event: Bytes,
    status: u16,
    env: &[(&str, &str)],
) -> Result<Run, Error> {
    let request_id = api.arm(event);
    let log_path = data_dir.join("child.log");
    let log = std::fs::File::create(&log_path)?;
    let mut command = Command::new(path);
    command
        .env_clear()
        .env("PATH", "/usr/bin:/bin")
        .env("AWS_LAMBDA_RUNTIME_API", api.addr.to_string())
        .env("AWS_LAMBDA_FUNCTION_NAME", name)
        .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "256")
        .env("AWS_LAMBDA_FUNCTION_VERSION", "1")
        .env("IMGBT_DATA_DIR", data_dir.join("store"))
        .envs(env.iter().copied())
        .current_dir(data_dir)
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log);
    let started = Instant::now();
    let mut child = command.spawn()?;
    let outcome = api.wait(&request_id, &mut child, Duration::from_secs(120));
    let vm_hwm = match &outcome {
        Ok(_) => vm_hwm(child.id()),
        Err(_) => Ok(0),
    };
    let (cpu, faults) = cpu_and_faults(child.id()).unwrap_or_default();
    let _ = child.kill();
    let _ = child.wait();
    let fail = |why: String| -> Error {
        let log = std::fs::read_to_string(&log_path).unwrap_or_default();
        format!("{name}: {why}\n--- child output ---\n{log}").into()
    };
    let answer = outcome.map_err(fail)?;
    let elapsed = answer.at.duration_since(started);
    let init = answer.next_at.unwrap_or(answer.at).duration_since(started);
    if answer.kind != "response" {
        return Err(fail(format!(
            "posted an {} instead of a response: {}",
            answer.kind,
            String::from_utf8_lossy(&answer.body)
        )));
    }
    let got: serde_json::Value = serde_json::from_slice(&answer.body)?;
    if status != 0 && got["statusCode"].as_u64() != Some(u64::from(status)) {
        return Err(fail(format!(
            "answered {}, expected {status}",
            String::from_utf8_lossy(&answer.body)
        )));
    }
    Ok(Run {
        elapsed,
        init,
        vm_hwm: vm_hwm.map_err(|e| fail(e.to_string()))?,
        cpu,
        faults,
        response: got,
    })
}

/// The process's time on a CPU so far (all its threads' are summed by the kernel in the
/// process's own entry) and its minor page faults.
fn cpu_and_faults(pid: u32) -> Option<(Duration, u64)> {
    let sched = std::fs::read_to_string(format!("/proc/{pid}/schedstat")).ok()?;
    let cpu_ns: u64 = sched.split_whitespace().next()?.parse().ok()?;
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name, which is in parentheses and may hold spaces: state is
    // field 3, minflt field 10.
    let rest = &stat[stat.rfind(')')? + 2..];
    let minflt: u64 = rest.split_whitespace().nth(7)?.parse().ok()?;
    Some((Duration::from_nanos(cpu_ns), minflt))
}

/// The process's peak resident set size, in bytes.
fn vm_hwm(pid: u32) -> Result<u64, Error> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let line = status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .ok_or("no VmHWM in /proc/<pid>/status")?;
    let kib: u64 = line
        .trim_start_matches("VmHWM:")
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()?;
    Ok(kib * 1024)
}

fn median_duration(values: &[Duration]) -> Duration {
    let mut sorted = values.to_vec();
    sorted.sort();
    let n = sorted.len();
    if n % 2 == 1 {
        sorted[n / 2]
    } else {
        (sorted[n / 2 - 1] + sorted[n / 2]) / 2
    }
}

fn median_u64(values: &[u64]) -> u64 {
    let mut sorted = values.to_vec();
    sorted.sort();
    let n = sorted.len();
    if n % 2 == 1 {
        sorted[n / 2]
    } else {
        (sorted[n / 2 - 1] + sorted[n / 2]) / 2
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

// ---------------------------------------------------------------------------------------------
// The local Lambda Runtime API

/// What the function posted back.
struct Answer {
    request_id: String,
    /// "response", "error" (an invocation error) or "init-error".
    kind: &'static str,
    body: Bytes,
    at: Instant,
    /// When the function asked for the invocation (None: it never did, e.g. an init error).
    next_at: Option<Instant>,
}

#[derive(Default)]
struct State {
    /// The next invocation to hand out, taken by the first `next` after [`RuntimeApi::arm`].
    pending: Option<(String, Bytes)>,
    /// When the armed invocation was handed out.
    next_at: Option<Instant>,
    answer: Option<Answer>,
    sequence: u64,
}

struct RuntimeApi {
    addr: SocketAddr,
    state: Arc<(Mutex<State>, Condvar)>,
}

impl RuntimeApi {
    /// Serves the Runtime API on 127.0.0.1, on a port the system picks, from a thread of its own.
    fn start() -> Result<Self, Error> {
        let state: Arc<(Mutex<State>, Condvar)> = Arc::default();
        let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let served = state.clone();
        std::thread::Builder::new()
            .name("runtime-api".into())
            .spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_io()
                    .build()
                    .expect("runtime");
                runtime.block_on(serve(listener, served));
            })?;
        Ok(RuntimeApi { addr, state })
    }

    /// Queues one invocation of `event`; returns its request id.
    fn arm(&self, event: Bytes) -> String {
        let (lock, _) = &*self.state;
        let mut state = lock.lock().unwrap();
        state.sequence += 1;
        let id = format!("coldstart-{:08}", state.sequence);
        state.pending = Some((id.clone(), event));
        state.next_at = None;
        state.answer = None;
        id
    }

    /// Waits for the answer to `request_id`, or for the child to exit, or for `timeout`.
    fn wait(
        &self,
        request_id: &str,
        child: &mut Child,
        timeout: Duration,
    ) -> Result<Answer, String> {
        let deadline = Instant::now() + timeout;
        let (lock, ready) = &*self.state;
        let mut state = lock.lock().unwrap();
        loop {
            if let Some(answer) = state.answer.take()
                && (answer.request_id == request_id || answer.kind == "init-error")
            {
                return Ok(answer);
            }
            if let Ok(Some(exit)) = child.try_wait() {
                return Err(format!("exited ({exit}) before answering"));
            }
            let now = Instant::now();
            if now >= deadline {
                return Err(format!("no answer within {timeout:?}"));
            }
            let slice = (deadline - now).min(Duration::from_millis(20));
            state = ready.wait_timeout(state, slice).unwrap().0;
        }
    }
}

async fn serve(listener: std::net::TcpListener, state: Arc<(Mutex<State>, Condvar)>) {
    let listener = tokio::net::TcpListener::from_std(listener).expect("listener");
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let _ = stream.set_nodelay(true);
        let state = state.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |req| route(req, state.clone()));
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                .await;
        });
    }
}

const PREFIX: &str = "/2018-06-01/runtime/";

async fn route(
    req: Request<hyper::body::Incoming>,
    state: Arc<(Mutex<State>, Condvar)>,
) -> Result<Response<Full<Bytes>>, hyper::Error> {
    let at = Instant::now();
    let path = req.uri().path().to_owned();
    let rest = path.strip_prefix(PREFIX).unwrap_or("");
    let (lock, ready) = &*state;
    match (req.method(), rest) {
        (&Method::GET, "invocation/next") => {
            let pending = {
                let mut state = lock.lock().unwrap();
                let pending = state.pending.take();
                if pending.is_some() {
                    state.next_at = Some(at);
                }
                pending
            };
            let Some((id, event)) = pending else {
                // The function asks for its second invocation: as on Lambda, it waits (here,
                // until the harness kills it).
                std::future::pending::<()>().await;
                unreachable!()
            };
            let deadline = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .unwrap_or_default()
                .as_millis()
                + 30_000;
            Ok(Response::builder()
                .status(StatusCode::OK)
                .header("content-type", "application/json")
                .header("lambda-runtime-aws-request-id", id)
                .header("lambda-runtime-deadline-ms", deadline.to_string())
                .header(
                    "lambda-runtime-invoked-function-arn",
                    "arn:aws:lambda:eu-west-1:123456789012:function:imgbt-coldstart",
                )
                .header(
                    "lambda-runtime-trace-id",
                    "Root=1-6926a000-000000000000000000000001;Parent=0000000000000001;Sampled=0",
                )
                .body(Full::new(event))
                .expect("response"))
        }
        (&Method::POST, _) => {
            let answered = if rest == "init/error" {
                Some((String::new(), "init-error"))
            } else if let Some(inv) = rest.strip_prefix("invocation/") {
                if let Some(id) = inv.strip_suffix("/response") {
                    Some((id.to_owned(), "response"))
                } else {
                    inv.strip_suffix("/error")
                        .map(|id| (id.to_owned(), "error"))
                }
            } else {
                None
            };
            let Some((request_id, kind)) = answered else {
                return Ok(status_only(StatusCode::NOT_FOUND));
            };
            let body = req.into_body().collect().await?.to_bytes();
            let mut state = lock.lock().unwrap();
            let next_at = state.next_at;
            state.answer = Some(Answer {
                request_id,
                kind,
                body,
                at,
                next_at,
            });
            ready.notify_all();
            Ok(status_only(StatusCode::ACCEPTED))
        }
        _ => Ok(status_only(StatusCode::NOT_FOUND)),
    }
}

fn status_only(status: StatusCode) -> Response<Full<Bytes>> {
    Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from_static(b"{\"status\":\"OK\"}")))
        .expect("response")
}
