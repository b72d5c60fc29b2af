//! `cargo run --release -p imgbt-bench --bin variant-hit [-- --runs 200]`: a transformed delivery
//! served from its stored variant, against an original of the same size (docs/API.md#variants).
//!
//! Method: on the Cloudflare backend (D1 over REST and R2 over S3, against the test kit's servers
//! on 127.0.0.1; `--backend embedded` for SQLite and a directory), one vault holds a photograph and, as a second asset, the very bytes of its
//! `w=800&format=webp` variant: an original of the variant's size. After one request computes
//! and stores the variant, the two delivery URLs are requested interleaved (A, B, B, A, …) after
//! a warm-up, each through the real `deliver` handler; the figure is the ratio of the medians.
//! Counters prove what a hit costs: D1 requests and store calls per request, and the transform
//! crate's decode counter, which must not move. The source is the largest JPEG of Debian's
//! plasma-workspace-wallpapers when installed (`--source` picks another), else the test fixture.
//! See BENCH.md.

use imgbt_tests::counting::{CountingBlobs, Counts};
use imgbt_tests::{Backend, Form, TestApp};
use shared::BoxFuture;
use shared::db::{Db, DbError, Stmt, StmtResult};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// A database that counts the batches sent to it.
struct CountingDb {
    inner: Arc<dyn Db>,
    batches: AtomicU32,
}

impl Db for CountingDb {
    fn batch(&self, stmts: Vec<Stmt>) -> BoxFuture<'_, Result<Vec<StmtResult>, DbError>> {
        self.batches.fetch_add(1, Ordering::SeqCst);
        self.inner.batch(stmts)
    }
}

fn source() -> (PathBuf, Vec<u8>) {
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        if arg == "--source" {
            let path = PathBuf::from(args.next().expect("--source <file>"));
            let bytes = std::fs::read(&path).expect("the source");
            return (path, bytes);
        }
    }
    let wallpaper =
        PathBuf::from("/usr/share/wallpapers/SafeLanding/contents/images/5120x2880.jpg");
    if let Ok(bytes) = std::fs::read(&wallpaper) {
        return (wallpaper, bytes);
    }
    let fixture = PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../tests/fixtures/scene.jpg"
    ));
    let bytes = std::fs::read(&fixture).expect("tests/fixtures/scene.jpg");
    (fixture, bytes)
}

/// `--backend embedded` (SQLite and a directory: no network, so the smallest floor) or the
/// default, `cloudflare`.
fn backend() -> Backend {
    let args: Vec<String> = std::env::args().collect();
    match args
        .iter()
        .position(|a| a == "--backend")
        .and_then(|i| args.get(i + 1))
        .map(String::as_str)
    {
        Some("embedded") => Backend::Embedded,
        _ => Backend::Cloudflare,
    }
}

fn runs() -> usize {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == "--runs")
        .and_then(|i| args.get(i + 1))
        .and_then(|n| n.parse().ok())
        .unwrap_or(200)
}

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let (source_path, source) = source();
    let runs = runs();
    let backend = backend();
    let app = TestApp::on(backend).await;
    let form = Form::asset(
        "bench",
        "photos",
        "hero",
        "photo.jpg",
        "image/jpeg",
        &source,
    );
    let photo = app.create(&form).await;
    let variant_url = format!("{}?w=800&format=webp", TestApp::delivery_path(&photo));

    let counts = Arc::new(Counts::default());
    let db = Arc::new(CountingDb {
        inner: app.deps.db.clone(),
        batches: AtomicU32::new(0),
    });
    let mut deps = app.another_instance().await;
    deps.db = db.clone();
    deps.blobs = Arc::new(CountingBlobs {
        inner: deps.blobs.clone(),
        counts: counts.clone(),
    });
    let get = |url: String| {
        let deps = &deps;
        let app = &app;
        async move {
            let started = Instant::now();
            let reply = app.call_on(deps, "deliver").raw_path(&url).send().await;
            let took = started.elapsed();
            assert_eq!(reply.status.as_u16(), 200, "{url}: {}", reply.snippet());
            (took, reply.body)
        }
    };

    let decodes_before = imgbt_transform::decodes();
    let (miss_time, variant) = get(variant_url.clone()).await;
    let miss_decodes = imgbt_transform::decodes() - decodes_before;
    let same_size = Form::asset(
        "bench",
        "photos",
        "hero",
        "same-size.webp",
        "image/webp",
        &variant,
    );
    let original = app.create(&same_size).await;
    let original_url = TestApp::delivery_path(&original);

    for _ in 0..runs / 10 {
        get(variant_url.clone()).await;
        get(original_url.clone()).await;
    }
    counts.reset();
    db.batches.store(0, Ordering::SeqCst);
    let decodes_before = imgbt_transform::decodes();
    let (mut hits, mut originals) = (Vec::new(), Vec::new());
    for i in 0..runs {
        let pair = if i % 2 == 0 {
            [true, false]
        } else {
            [false, true]
        };
        for hit in pair {
            if hit {
                let (took, body) = get(variant_url.clone()).await;
                assert_eq!(body, variant, "the stored variant");
                hits.push(took);
            } else {
                originals.push(get(original_url.clone()).await.0);
            }
        }
    }
    let hit_decodes = imgbt_transform::decodes() - decodes_before;
    let (reads, puts, lists, deletes, other) = counts.snapshot();
    let requests = (2 * runs) as f64;
    let (hit, orig) = (median(hits), median(originals));

    println!("variant hit vs original of the same size, backend {backend:?}");
    println!("source: {} ({} bytes)", source_path.display(), source.len());
    println!(
        "variant: w=800&format=webp, {} bytes; the miss took {:.1} ms and decoded {miss_decodes} time(s)",
        variant.len(),
        miss_time.as_secs_f64() * 1000.0
    );
    println!();
    println!("| measure | value |");
    println!("|---|---|");
    println!(
        "| median, variant hit | {:.3} ms |",
        hit.as_secs_f64() * 1000.0
    );
    println!(
        "| median, original of the same size | {:.3} ms |",
        orig.as_secs_f64() * 1000.0
    );
    println!(
        "| **hit / original** (budget ≤ 1.2×) | **{:.2}×** |",
        hit.as_secs_f64() / orig.as_secs_f64()
    );
    println!(
        "| D1 requests per request | {:.2} |",
        f64::from(db.batches.load(Ordering::SeqCst)) / requests
    );
    println!(
        "| store GETs per request | {:.2} |",
        f64::from(reads) / requests
    );
    println!("| store puts, lists, deletes, other | {puts}, {lists}, {deletes}, {other} |");
    println!("| decodes during {runs} hits | {hit_decodes} |");
    println!("| runs per side | {runs} |");
    assert_eq!(hit_decodes, 0, "a hit decodes nothing");
}
