//! `cargo run --release -p imgbt-bench --example upload_form`: the upload handler at the sizes one
//! Lambda invocation carries (1 and 4 MB, 10^6 bytes), two ways, with peak heap for each:
//!
//! - the handler on the embedded store, interleaved with its floor (writing the same bytes with
//!   `std::fs::write`), as `imgbt-bench`'s upload rows: throughput and the ratio;
//! - `upload::parse_form` alone on the same body, interleaved with copying the body once (the
//!   least a parser that keeps the file must do when it does not borrow the caller's buffer).
//!
//! Peak heap comes from a counting global allocator (it forwards to the system allocator and
//! counts): the most bytes live during the call minus the bytes live as it starts (the request,
//! body included, is built before), so the figure is what the call itself allocates at once.
//! Medians of interleaved runs after a warm-up; absolute times are this machine's.

use imgbt_tests::{Form, TestApp, dispatch};
use lambda_http::Body;
use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            let live = LIVE.fetch_add(layout.size(), Ordering::Relaxed) + layout.size();
            PEAK.fetch_max(live, Ordering::Relaxed);
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) };
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            if new_size >= layout.size() {
                let grown = new_size - layout.size();
                let live = LIVE.fetch_add(grown, Ordering::Relaxed) + grown;
                PEAK.fetch_max(live, Ordering::Relaxed);
            } else {
                LIVE.fetch_sub(layout.size() - new_size, Ordering::Relaxed);
            }
        }
        p
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// Starts a peak measurement: returns the bytes live now, from which the peak is counted.
fn peak_start() -> usize {
    let live = LIVE.load(Ordering::Relaxed);
    PEAK.store(live, Ordering::Relaxed);
    live
}

fn peak_since(start: usize) -> usize {
    PEAK.load(Ordering::Relaxed).saturating_sub(start)
}

fn median<T: Ord + Copy>(mut v: Vec<T>) -> T {
    v.sort();
    v[v.len() / 2]
}

fn mb_per_s(bytes: usize, d: Duration) -> f64 {
    bytes as f64 / 1e6 / d.as_secs_f64()
}

/// Runs `a` and `b` alternately (A B, then B A, …) after `warmup` pairs; medians of `runs`.
async fn interleave(
    warmup: usize,
    runs: usize,
    mut a: impl AsyncFnMut() -> (Duration, usize),
    mut b: impl AsyncFnMut() -> (Duration, usize),
) -> ((Duration, usize), (Duration, usize)) {
    for _ in 0..warmup {
        a().await;
        b().await;
    }
    let (mut ta, mut tb, mut pa, mut pb) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for i in 0..runs {
        let (x, y) = if i % 2 == 0 {
            let x = a().await;
            (x, b().await)
        } else {
            let y = b().await;
            (a().await, y)
        };
        ta.push(x.0);
        pa.push(x.1);
        tb.push(y.0);
        pb.push(y.1);
    }
    ((median(ta), median(pa)), (median(tb), median(pb)))
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let app = TestApp::new().await;
    // Keeps the channel's directories, so that the untimed delete after each upload does not
    // prune them (as imgbt-bench does).
    app.create(&Form::tiny("bench", "upload", "sizes", "keep.txt"))
        .await;
    println!(
        "| file | handler MB/s | write floor MB/s | ratio | handler peak heap MB (÷ file) | parse ms | copy floor ms | parse peak heap MB (÷ file) |"
    );
    println!("|---:|---:|---:|---:|---:|---:|---:|---:|");
    for (mb, runs) in [(1usize, 41usize), (4, 21)] {
        let size = mb * 1_000_000;
        let mut seed = 0x9e37_79b9_7f4a_7c15u64 ^ mb as u64;
        let bytes: Vec<u8> = (0..size)
            .map(|_| {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                (seed >> 24) as u8
            })
            .collect();
        let form = Form::asset(
            "bench",
            "upload",
            "sizes",
            "payload.bin",
            "application/octet-stream",
            &bytes,
        );
        let content_type = form.content_type();
        let body = form.to_bytes();
        drop(form);

        let floor_path = app.objects_dir().join("floor-payload.bin");
        let ((handler, handler_peak), (write, _)) = interleave(
            3,
            runs,
            async || {
                let req = app
                    .call("upload")
                    .key(app.sk())
                    .body(Some(&content_type), body.clone())
                    .build();
                let start = peak_start();
                let t = Instant::now();
                let resp = dispatch(&app.deps, "upload", req).await;
                let took = t.elapsed();
                let peak = peak_since(start);
                assert_eq!(resp.status(), 201, "upload {mb} MB");
                let Body::Text(text) = resp.into_body() else {
                    panic!("upload answers JSON text")
                };
                let record: serde_json::Value = serde_json::from_str(&text).expect("record");
                let id = record["id"].as_str().expect("id");
                assert_eq!(app.delete(app.sk(), id).await.status, 204);
                (took, peak)
            },
            async || {
                let start = peak_start();
                let t = Instant::now();
                std::fs::write(&floor_path, &bytes).expect("floor write");
                let took = t.elapsed();
                let peak = peak_since(start);
                std::fs::remove_file(&floor_path).expect("floor remove");
                (took, peak)
            },
        )
        .await;

        let ((parse, parse_peak), (copy, _)) = interleave(
            5,
            runs * 3,
            async || {
                let body = bytes::Bytes::from(body.clone());
                let start = peak_start();
                let t = Instant::now();
                let parsed = upload::parse_form(Some(&content_type), body).await;
                let took = t.elapsed();
                let peak = peak_since(start);
                assert_eq!(parsed.expect("form parses").file.len(), size);
                (took, peak)
            },
            async || {
                let body = bytes::Bytes::from(body.clone());
                let start = peak_start();
                let t = Instant::now();
                let copy = std::hint::black_box(body.to_vec());
                let took = t.elapsed();
                let peak = peak_since(start);
                drop(copy);
                (took, peak)
            },
        )
        .await;
        println!(
            "| {mb} MB | {:.0} | {:.0} | {:.2}× | {:.2} ({:.2}) | {:.3} | {:.3} | {:.2} ({:.2}) |",
            mb_per_s(size, handler),
            mb_per_s(size, write),
            write.as_secs_f64() / handler.as_secs_f64(),
            handler_peak as f64 / 1e6,
            handler_peak as f64 / size as f64,
            parse.as_secs_f64() * 1e3,
            copy.as_secs_f64() * 1e3,
            parse_peak as f64 / 1e6,
            parse_peak as f64 / size as f64,
        );
    }
}
