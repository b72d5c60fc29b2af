//! What building the R2 client costs against a floor, building a bare reqwest client (what the D1
//! client is), as a cold start pays it: the first construction in a fresh process (the SDK's
//! configuration, TLS set-up and root store included), and warm, once the process has built one.
//! The R2 side is `R2Blobs::new` and its first call, a presigned GET (it builds the SDK's client
//! and signs one URL, sending nothing): the work that `Blobs::prepare` moves to a thread.
//!
//! `cargo run --release -p shared --example r2_client` prints the medians and their ratio. Each
//! cold figure is one child process (this binary re-run with `child r2` or `child reqwest`),
//! the two kinds interleaved, so that a noisy neighbour slows both alike.

use shared::blobs::r2::R2Blobs;
use shared::blobs::{Blobs, Validity};
use shared::secret::Secret;
use std::time::{Duration, Instant};

const ENDPOINT: &str = "https://0123456789abcdef.r2.cloudflarestorage.com";

fn build(kind: &str) -> Duration {
    // Timers on: the SDK arms its operation timeout even for a presign.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .expect("a runtime");
    let validity = Validity {
        signed_at: std::time::SystemTime::now(),
        expires_in: Duration::from_secs(300),
    };
    let started = Instant::now();
    match kind {
        "r2" => {
            let blobs = R2Blobs::new(ENDPOINT, "bucket", "AKIDEXAMPLE", &Secret::new("secret"));
            let url = runtime
                .block_on(blobs.presign_get("k", "image/png", validity))
                .expect("a presigned URL");
            let elapsed = started.elapsed();
            drop(std::hint::black_box(url));
            drop(std::hint::black_box(blobs));
            elapsed
        }
        _ => {
            let client = reqwest::Client::builder()
                .connect_timeout(Duration::from_secs(3))
                .build()
                .expect("a reqwest client");
            let elapsed = started.elapsed();
            drop(std::hint::black_box(client));
            elapsed
        }
    }
}

fn median(mut values: Vec<Duration>) -> Duration {
    values.sort();
    values[values.len() / 2]
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("child") {
        println!("{}", build(&args[2]).as_nanos());
        return;
    }
    let me = std::env::current_exe().expect("this example's path");
    let cold = |kind: &str| -> Duration {
        let out = std::process::Command::new(&me)
            .args(["child", kind])
            .output()
            .expect("running a child");
        let nanos: u64 = String::from_utf8_lossy(&out.stdout)
            .trim()
            .parse()
            .expect("a child prints nanoseconds");
        Duration::from_nanos(nanos)
    };
    let rounds = 40;
    let (mut cold_r2, mut cold_floor) = (Vec::new(), Vec::new());
    for round in 0..rounds {
        if round % 2 == 0 {
            cold_r2.push(cold("r2"));
            cold_floor.push(cold("reqwest"));
        } else {
            cold_floor.push(cold("reqwest"));
            cold_r2.push(cold("r2"));
        }
    }
    build("r2");
    build("reqwest");
    let (mut warm_r2, mut warm_floor) = (Vec::new(), Vec::new());
    for round in 0..400 {
        if round % 2 == 0 {
            warm_r2.push(build("r2"));
            warm_floor.push(build("reqwest"));
        } else {
            warm_floor.push(build("reqwest"));
            warm_r2.push(build("r2"));
        }
    }
    println!(
        "| R2 client construction | R2Blobs::new + first presign | reqwest::Client (floor) | ratio |"
    );
    println!("|---|---|---|---|");
    for (what, r2, floor) in [
        (
            "first in a fresh process (median of 40)",
            median(cold_r2),
            median(cold_floor),
        ),
        ("warm (median of 400)", median(warm_r2), median(warm_floor)),
    ] {
        println!(
            "| {what} | {:.1} µs | {:.1} µs | {:.2}× |",
            r2.as_secs_f64() * 1e6,
            floor.as_secs_f64() * 1e6,
            r2.as_secs_f64() / floor.as_secs_f64()
        );
    }
}
