//! Direct uploads (`POST …/uploads`, the PUT of the bytes, `POST …/uploads/{id}/complete`) and
//! downloads (`GET …/assets/{id}/content`), rule by rule, on every backend: the rules live in
//! `direct/rules.rs`, included once per backend as `contract.rs` does. On the Cloudflare backend
//! the bytes go over HTTP to the S3 test server through the presigned URLs, whose SigV4 query
//! signatures and expiry s3s verifies.
//!
//! Then the memory proof: a 100 MB file through `uploads`, `complete` and `content` on the R2
//! backend, with every allocation the functions make counted (see [`counting`]).

mod embedded {
    async fn app() -> imgbt_tests::TestApp {
        imgbt_tests::TestApp::on(imgbt_tests::Backend::Embedded).await
    }

    include!("direct/rules.rs");
}

mod cloudflare {
    async fn app() -> imgbt_tests::TestApp {
        imgbt_tests::TestApp::on(imgbt_tests::Backend::Cloudflare).await
    }

    include!("direct/rules.rs");
}

/// A global allocator that counts the bytes live on *measured* threads only, and their peak.
///
/// The test binary runs other tests, the D1 and S3 test servers and the test's own client on
/// other threads; only the thread that runs the handlers (a current-thread runtime, so every task
/// the handlers spawn, such as the S3 client's connections, runs there too) is measured.
/// Memory allocated on the measured thread and freed on another stays counted (an overestimate);
/// nothing the handlers allocate escapes the count.
mod counting {
    use std::alloc::{GlobalAlloc, Layout, System};
    use std::cell::Cell;
    use std::sync::atomic::{AtomicI64, Ordering};

    pub struct Counting;

    static LIVE: AtomicI64 = AtomicI64::new(0);
    static PEAK: AtomicI64 = AtomicI64::new(0);
    static TOTAL: AtomicI64 = AtomicI64::new(0);

    thread_local! {
        static MEASURED: Cell<bool> = const { Cell::new(false) };
    }

    fn measured() -> bool {
        MEASURED.try_with(Cell::get).unwrap_or(false)
    }

    fn grow(bytes: usize) {
        let live = LIVE.fetch_add(bytes as i64, Ordering::Relaxed) + bytes as i64;
        PEAK.fetch_max(live, Ordering::Relaxed);
        TOTAL.fetch_add(bytes as i64, Ordering::Relaxed);
    }

    fn shrink(bytes: usize) {
        LIVE.fetch_sub(bytes as i64, Ordering::Relaxed);
    }

    unsafe impl GlobalAlloc for Counting {
        unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
            let ptr = unsafe { System.alloc(layout) };
            if !ptr.is_null() && measured() {
                grow(layout.size());
            }
            ptr
        }

        unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
            let ptr = unsafe { System.alloc_zeroed(layout) };
            if !ptr.is_null() && measured() {
                grow(layout.size());
            }
            ptr
        }

        unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
            unsafe { System.dealloc(ptr, layout) };
            if measured() {
                shrink(layout.size());
            }
        }

        unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
            let new = unsafe { System.realloc(ptr, layout, new_size) };
            if !new.is_null() && measured() {
                shrink(layout.size());
                grow(new_size);
            }
            new
        }
    }

    /// What one measured stretch allocated.
    #[derive(Debug, Clone, Copy)]
    pub struct Usage {
        /// The most bytes live at once, above what was live when measuring started.
        pub peak: i64,
        /// Every byte allocated, freed or not.
        pub total: i64,
    }

    /// Runs `f` with this thread measured.
    pub async fn measure<F: std::future::Future>(f: F) -> (F::Output, Usage) {
        let base = LIVE.load(Ordering::Relaxed);
        PEAK.store(base, Ordering::Relaxed);
        TOTAL.store(0, Ordering::Relaxed);
        MEASURED.with(|m| m.set(true));
        let out = f.await;
        MEASURED.with(|m| m.set(false));
        let usage = Usage {
            peak: PEAK.load(Ordering::Relaxed) - base,
            total: TOTAL.load(Ordering::Relaxed),
        };
        (out, usage)
    }
}

#[global_allocator]
static ALLOCATOR: counting::Counting = counting::Counting;

/// 100 MB (the contract's limit) through `uploads`, a presigned PUT, `complete`, `content` and a
/// GET of its `Location`, on the R2 backend. The handlers never hold the file: at most a few MB
/// are live in them at once, whatever the file's size.
#[test]
fn a_100_mb_file_costs_the_functions_far_less_memory_than_its_size() {
    use imgbt_test_servers::{D1Server, S3Server};
    use imgbt_tests::{
        Backend, CloudStores, Store, TestApp, cloudflare_config, fetch, upload_request,
    };

    const SIZE: usize = shared::MAX_FILE_BYTES as usize;
    const LIMIT: i64 = 10 * 1024 * 1024;

    // The servers run on a runtime of their own, on threads that are never measured.
    let servers = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let (d1, s3) = servers.block_on(async { tokio::join!(D1Server::start(), S3Server::start()) });
    let handlers = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    handlers.block_on(async move {
        let config = cloudflare_config(&d1, &s3);
        let store = Store::Cloudflare(Box::new(CloudStores { d1, s3, config }));
        let app = TestApp::with_store(store).await;
        assert_eq!(app.backend(), Backend::Cloudflare);

        // A PNG header, so that complete has something to sniff, then zeros.
        let mut bytes = imgbt_tests::fixture("tiny.png");
        bytes.resize(SIZE, 0);
        let request = upload_request("big", "files", "main", "big.png", SIZE);

        let (reply, start) = counting::measure(app.start_upload(app.sk(), &request)).await;
        let ticket = reply.ok(201);
        let put = app.put_upload(&ticket, bytes.clone()).await;
        assert_eq!(put.status.as_u16(), 200, "{}", put.snippet());
        let upload_id = ticket["upload_id"].as_str().unwrap();
        let (reply, complete) = counting::measure(app.complete(app.sk(), upload_id)).await;
        let record = reply.ok(201);
        assert_eq!(record["size"], SIZE);
        assert_eq!(record["mime_type"], "image/png");
        assert_eq!((record["width"].clone(), record["height"].clone()), (3.into(), 2.into()));
        let asset_id = record["id"].as_str().unwrap();
        let (reply, content) = counting::measure(app.content(app.pk(), asset_id)).await;
        assert_eq!(reply.status.as_u16(), 302);
        let fetched = fetch(reply.header("location").unwrap()).await;
        assert_eq!(fetched.status.as_u16(), 200);
        assert!(fetched.body == bytes, "the download is byte-identical");

        println!("file: {SIZE} bytes");
        for (name, usage) in [("uploads", start), ("complete", complete), ("content", content)] {
            println!(
                "{name:>8}: peak {:>9} bytes live ({:.4} of the file), {:>9} bytes allocated in all",
                usage.peak,
                usage.peak as f64 / SIZE as f64,
                usage.total
            );
            assert!(
                usage.peak < LIMIT,
                "{name} held {} bytes at once for a {SIZE}-byte file",
                usage.peak
            );
        }
        drop(app);
    });
    drop(servers);
}
