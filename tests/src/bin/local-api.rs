//! `local-api`: the whole API in one process on 127.0.0.1, routed as API Gateway routes it, on the
//! embedded default with the dev vault seeded (its well-known keys, see `imgbt dev seed`). For
//! clients under test: schemathesis (`scripts/schemathesis.sh`) and the CLI's end-to-end suite.
//! `./scripts/dev.sh` (cargo lambda watch) stays the way to run the functions as Lambda runs them.
//!
//!     cargo run -p imgbt-tests --bin local-api -- [--port N] [--data-dir DIR] [--max-request-bytes N] [--serve-objects]
//!
//! Prints one JSON line once it listens: `{"url", "vault_id", "public_key", "secret_key",
//! "asset_id"}` (and `objects_url` with `--serve-objects`), then serves until killed.
//! `--serve-objects` also runs the local object server (`imgbt dev objects`) on a free port with a
//! fresh secret, as `./scripts/dev.sh` does: `content` then redirects there, and downloads of any
//! size work under the Lambda limit. Without `--data-dir` the store is a temporary directory.
//! Request bodies are limited as on Lambda (4,718,592 bytes) unless `--max-request-bytes` says
//! otherwise (0: no limit).

use imgbt_cli::dev;
use shared::Deps;
use shared::blobs::local::LocalBlobs;
use shared::calls::CountedBlobs;
use std::path::PathBuf;
use std::rc::Rc;
use std::sync::Arc;
use tokio::net::TcpListener;

struct Options {
    port: u16,
    data_dir: Option<PathBuf>,
    max_request_bytes: u64,
    serve_objects: bool,
}

fn options() -> Result<Options, String> {
    let mut options = Options {
        port: 0,
        data_dir: None,
        max_request_bytes: shared::deps::LAMBDA_BODY_LIMIT,
        serve_objects: false,
    };
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let mut value = || args.next().ok_or(format!("{flag} needs a value"));
        match flag.as_str() {
            "--port" => options.port = value()?.parse().map_err(|e| format!("--port: {e}"))?,
            "--data-dir" => options.data_dir = Some(PathBuf::from(value()?)),
            "--max-request-bytes" => {
                options.max_request_bytes = value()?
                    .parse()
                    .map_err(|e| format!("--max-request-bytes: {e}"))?
            }
            "--serve-objects" => options.serve_objects = true,
            other => return Err(format!("unknown argument {other}")),
        }
    }
    Ok(options)
}

fn main() {
    let options = options().unwrap_or_else(|message| {
        eprintln!("local-api: {message}");
        eprintln!(
            "usage: local-api [--port N] [--data-dir DIR] [--max-request-bytes N] [--serve-objects]"
        );
        std::process::exit(2);
    });
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    tokio::task::LocalSet::new().block_on(&runtime, run(options));
}

async fn run(options: Options) {
    let temporary = match options.data_dir {
        Some(_) => None,
        None => Some(tempfile::tempdir().expect("temporary directory")),
    };
    let dir = options
        .data_dir
        .clone()
        .unwrap_or_else(|| temporary.as_ref().expect("temporary").path().to_owned());
    let mut deps = Deps::embedded(&dir).await.unwrap_or_else(|e| {
        eprintln!("local-api: {e}");
        std::process::exit(1);
    });
    deps.max_request_bytes = (options.max_request_bytes > 0).then_some(options.max_request_bytes);
    let mut objects_url = None;
    if options.serve_objects {
        let objects = dir.join(shared::deps::OBJECTS_DIR);
        let (urls, _) = imgbt_tests::start_object_server(&objects).await;
        objects_url = Some(urls.base().to_owned());
        let blobs = LocalBlobs::new(&objects).expect("objects directory");
        deps.blobs = Arc::new(CountedBlobs(Arc::new(blobs.serving(Some(urls)))));
    }
    let seed = dev::seed_dev(&*deps.db, &deps.clock, &*deps.blobs)
        .await
        .unwrap_or_else(|e| {
            eprintln!("local-api: seeding the dev vault: {e}");
            std::process::exit(1);
        });
    let listener = TcpListener::bind(("127.0.0.1", options.port))
        .await
        .unwrap_or_else(|e| {
            eprintln!("local-api: port {}: {e}", options.port);
            std::process::exit(1);
        });
    let addr = listener.local_addr().expect("local address");
    let mut ready = serde_json::json!({
        "url": format!("http://{addr}"),
        "vault_id": dev::DEV_VAULT_ID,
        "public_key": dev::DEV_PUBLIC_KEY,
        "secret_key": dev::DEV_SECRET_KEY,
        "asset_id": seed.asset_id,
    });
    if let Some(url) = objects_url {
        ready["objects_url"] = url.into();
    }
    println!("{ready}");
    imgbt_tests::gateway::serve(listener, Rc::new(Local(deps))).await;
    drop(temporary);
}

/// The served dependencies (the gateway takes anything that lends a `Deps`).
struct Local(Deps);

impl AsRef<Deps> for Local {
    fn as_ref(&self) -> &Deps {
        &self.0
    }
}
