//! `cargo run --release -p imgbt-bench --example tls_roots`: what building the S3 client's trust
//! store costs, as a ratio in one run. The SDK's default client reads the system's store (the
//! bundle in `/etc/ssl/certs` and every file beside it) and parses each certificate; imgbt's client
//! (shared/src/blobs/r2/https.rs) parses the same kind of store from certificates compiled in.
//! Each is built 30 times, alternately, after one unmeasured round (files in the page cache, as
//! on a warm Lambda host); the medians are printed, and their ratio.

use rustls::RootCertStore;
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use std::hint::black_box;
use std::time::{Duration, Instant};

fn system_store() -> (usize, Duration) {
    let t = Instant::now();
    let loaded = rustls_native_certs::load_native_certs();
    let mut roots = RootCertStore::empty();
    let (added, _) = roots.add_parsable_certificates(loaded.certs);
    let took = t.elapsed();
    black_box(roots);
    (added, took)
}

fn compiled_in_store() -> (usize, Duration) {
    let t = Instant::now();
    let pem = shared::blobs::r2::https::roots_pem();
    let mut roots = RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(&pem) {
        roots.add(cert.expect("PEM")).expect("a root certificate");
    }
    let took = t.elapsed();
    let added = roots.len();
    black_box(roots);
    (added, took)
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn main() {
    let (system_roots, _) = system_store();
    let (compiled_roots, _) = compiled_in_store();
    let (mut system, mut compiled) = (Vec::new(), Vec::new());
    for i in 0..30 {
        if i % 2 == 0 {
            system.push(system_store().1);
            compiled.push(compiled_in_store().1);
        } else {
            compiled.push(compiled_in_store().1);
            system.push(system_store().1);
        }
    }
    let (s, c) = (median(system), median(compiled));
    println!("| trust store | roots | median |");
    println!("|---|---:|---:|");
    println!(
        "| system store (SDK default client) | {system_roots} | {:.2} ms |",
        s.as_secs_f64() * 1e3
    );
    println!(
        "| compiled-in roots (imgbt's S3 client) | {compiled_roots} | {:.2} ms |",
        c.as_secs_f64() * 1e3
    );
    println!(
        "compiled-in ÷ system: {:.2}×",
        c.as_secs_f64() / s.as_secs_f64()
    );
}
