//! The upload function as `functions/upload/src/main.rs` builds it, with its handler wrapped in a
//! measurement: at entry (the event received and decoded, the request and its body in memory) it
//! reads VmRSS and VmHWM and resets the peak (`5` to /proc/self/clear_refs); at exit it reads the
//! peak again. The figures go back in response headers, which the harness reads:
//!
//! - `x-probe-decode-peak`: VmHWM at entry, the peak of receiving and decoding the event;
//! - `x-probe-entry-rss`: VmRSS at entry;
//! - `x-probe-handler-peak`: VmHWM at exit, the peak while the handler ran;
//! - `x-probe-heap-entry`, `x-probe-heap-peak`: bytes the program had allocated and not freed at
//!   entry, and the most it had while the handler ran (a counting global allocator over the
//!   system's). RSS alone can hide the handler's copies: glibc keeps pages the event decoding
//!   freed, and the handler's buffers reuse them.
//!
//! Product code is untouched: the same `upload::handle`, the same dependencies and profile; the
//! allocator only counts.

use lambda_http::{Error, Request};
use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};

struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

fn grew(by: usize) {
    let now = LIVE.fetch_add(by, Relaxed) + by;
    PEAK.fetch_max(now, Relaxed);
}

// SAFETY: every call is forwarded to `System` unchanged; the counters only observe.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let ptr = unsafe { System.alloc(layout) };
        if !ptr.is_null() {
            grew(layout.size());
        }
        ptr
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        let ptr = unsafe { System.alloc_zeroed(layout) };
        if !ptr.is_null() {
            grew(layout.size());
        }
        ptr
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) };
        LIVE.fetch_sub(layout.size(), Relaxed);
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let new = unsafe { System.realloc(ptr, layout, new_size) };
        if !new.is_null() {
            if new_size >= layout.size() {
                grew(new_size - layout.size());
            } else {
                LIVE.fetch_sub(layout.size() - new_size, Relaxed);
            }
        }
        new
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    lambda_http::tracing::init_default_subscriber();
    let deps = shared::Deps::from_env().await?;
    shared::entry::run("upload", |req: Request| {
        let deps = &deps;
        async move {
            let decode_peak = status_kib("VmHWM:");
            let entry_rss = status_kib("VmRSS:");
            std::fs::write("/proc/self/clear_refs", "5")?;
            let heap_entry = LIVE.load(Relaxed);
            PEAK.store(heap_entry, Relaxed);
            let mut response = upload::handle(deps, req).await?;
            let handler_peak = status_kib("VmHWM:");
            let heap_peak = PEAK.load(Relaxed);
            let headers = response.headers_mut();
            for (name, bytes) in [
                ("x-probe-decode-peak", decode_peak * 1024),
                ("x-probe-entry-rss", entry_rss * 1024),
                ("x-probe-handler-peak", handler_peak * 1024),
                ("x-probe-heap-entry", heap_entry as u64),
                ("x-probe-heap-peak", heap_peak as u64),
            ] {
                headers.insert(name, bytes.into());
            }
            Ok::<_, Error>(response)
        }
    })
    .await
}

/// A `kB` line of /proc/self/status (0 if it cannot be read).
fn status_kib(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find_map(|line| line.strip_prefix(field))
                .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        })
        .unwrap_or(0)
}
