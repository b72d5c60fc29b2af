//! `cargo run --release -p imgbt-bench --bin gateway-load [-- --seconds 60 --clients 16]`: a load
//! run of the get and list functions through the D1 gateway Worker on workerd (`wrangler dev
//! --local`, as the test kit's gateway backend starts it), on loopback only.
//!
//! Method: one vault of 200 seeded assets (the S3 test server holds their bytes). `--clients`
//! tasks each loop for `--seconds`, alternating a get of a random asset and a list (a page of 20,
//! every third one filtered by channel), each a real handler call whose one D1 request goes over
//! HTTP to the gateway, which runs it on workerd's D1. Every answer is checked: 200 with the
//! expected asset or page counts as done, anything else as an error. Prints requests per second
//! for each function and together, latency percentiles, the error counts, and the ratio of the
//! sustained D1 request rate to the REST API's account-wide ceiling (1,200 per 5 minutes = 4/s).
//! The numbers are the machine's: the load generator, wrangler's proxy and workerd share its
//! cores. See BENCH.md.

use imgbt_tests::{Backend, Form, TestApp};
use std::sync::Arc;
use std::time::{Duration, Instant};

const SEEDED: usize = 200;
const CHANNELS: [&str; 4] = ["hero-images", "thumbnails", "avatars", "banners"];
/// D1's REST API: 1,200 requests per 5 minutes for the whole account.
const REST_CEILING_PER_SECOND: f64 = 1200.0 / 300.0;

#[derive(Default)]
struct Tally {
    done: u64,
    errors: u64,
    latencies_us: Vec<u64>,
    first_error: Option<String>,
}

impl Tally {
    fn merge(&mut self, other: Tally) {
        self.done += other.done;
        self.errors += other.errors;
        self.latencies_us.extend(other.latencies_us);
        if self.first_error.is_none() {
            self.first_error = other.first_error;
        }
    }

    fn percentile(&self, p: f64) -> f64 {
        if self.latencies_us.is_empty() {
            return f64::NAN;
        }
        let index = ((self.latencies_us.len() - 1) as f64 * p).round() as usize;
        self.latencies_us[index] as f64 / 1000.0
    }
}

fn arg(args: &[String], name: &str, default: u64) -> u64 {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .map(|v| {
            v.parse()
                .unwrap_or_else(|_| panic!("{name} takes a number, not {v}"))
        })
        .unwrap_or(default)
}

/// A small deterministic generator (SplitMix64), one per client.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: usize) -> usize {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        ((z ^ (z >> 31)) % n as u64) as usize
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let seconds = arg(&args, "--seconds", 60);
    let clients = arg(&args, "--clients", 16);
    assert!(
        (1..=3600).contains(&seconds) && (1..=256).contains(&clients),
        "--seconds 1..=3600, --clients 1..=256"
    );

    let started = Instant::now();
    let app = Arc::new(TestApp::on(Backend::Gateway).await);
    let gateway = app.gateway().expect("the gateway backend");
    println!(
        "gateway on workerd at {} (wrangler started and migrated in {:.1} s)",
        gateway.base_url(),
        started.elapsed().as_secs_f64()
    );
    let mut ids = Vec::with_capacity(SEEDED);
    for i in 0..SEEDED {
        let form = Form::tiny(
            "marketing",
            "blog",
            CHANNELS[i % CHANNELS.len()],
            &format!("file-{i:04}.txt"),
        );
        let record = app.create(&form).await;
        ids.push(record["id"].as_str().expect("an id").to_owned());
    }
    let ids = Arc::new(ids);
    println!("seeded {SEEDED} assets; {clients} clients for {seconds} s");

    let deadline = Instant::now() + Duration::from_secs(seconds);
    let run_started = Instant::now();
    let mut tasks = Vec::new();
    for client in 0..clients {
        let app = app.clone();
        let ids = ids.clone();
        tasks.push(tokio::spawn(async move {
            let mut rng = Rng(0x1234_5678 + client);
            let (mut gets, mut lists) = (Tally::default(), Tally::default());
            let mut round = 0u64;
            while Instant::now() < deadline {
                round += 1;
                if round.is_multiple_of(2) {
                    let id = &ids[rng.below(ids.len())];
                    let t = Instant::now();
                    let reply = app.get(app.pk(), id).await;
                    let elapsed = t.elapsed();
                    let ok = reply.status.as_u16() == 200 && reply.json()["id"] == id.as_str();
                    record(&mut gets, ok, elapsed, || reply.snippet());
                } else {
                    let query = if round.is_multiple_of(3) {
                        format!("limit=20&channel={}", CHANNELS[rng.below(CHANNELS.len())])
                    } else {
                        "limit=20".to_owned()
                    };
                    let t = Instant::now();
                    let reply = app.list(app.pk(), &query).await;
                    let elapsed = t.elapsed();
                    let ok = reply.status.as_u16() == 200
                        && reply.json()["data"].as_array().map(Vec::len) == Some(20);
                    record(&mut lists, ok, elapsed, || reply.snippet());
                }
            }
            (gets, lists)
        }));
    }
    let (mut gets, mut lists) = (Tally::default(), Tally::default());
    for task in tasks {
        let (g, l) = task.await.expect("a client task");
        gets.merge(g);
        lists.merge(l);
    }
    let wall = run_started.elapsed().as_secs_f64();
    gets.latencies_us.sort_unstable();
    lists.latencies_us.sort_unstable();

    println!();
    println!("| function | done | errors | requests/s | p50 ms | p90 ms | p99 ms | max ms |");
    println!("|---|---:|---:|---:|---:|---:|---:|---:|");
    for (name, tally) in [("get", &gets), ("list", &lists)] {
        println!(
            "| {name} | {} | {} | {:.1} | {:.1} | {:.1} | {:.1} | {:.1} |",
            tally.done,
            tally.errors,
            tally.done as f64 / wall,
            tally.percentile(0.50),
            tally.percentile(0.90),
            tally.percentile(0.99),
            tally.percentile(1.0),
        );
    }
    let total = gets.done + lists.done;
    let rate = total as f64 / wall;
    println!(
        "| both | {total} | {} | {rate:.1} | | | | |",
        gets.errors + lists.errors
    );
    println!();
    println!(
        "{clients} clients, {wall:.1} s; one D1 request per call, so {rate:.1} D1 requests/s \
         through the gateway = {:.1}x the REST API's account-wide ceiling of {REST_CEILING_PER_SECOND} requests/s",
        rate / REST_CEILING_PER_SECOND
    );
    for (name, tally) in [("get", &gets), ("list", &lists)] {
        if let Some(first) = &tally.first_error {
            println!("first {name} error: {first}");
        }
    }
}

fn record(tally: &mut Tally, ok: bool, elapsed: Duration, snippet: impl FnOnce() -> String) {
    if ok {
        tally.done += 1;
        tally
            .latencies_us
            .push(u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX));
    } else {
        tally.errors += 1;
        if tally.first_error.is_none() {
            tally.first_error = Some(snippet());
        }
    }
}
