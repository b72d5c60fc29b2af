//! The scheduled `gc` function: handed the sample scheduled event
//! (`events/gc.200.scheduled.json`) it sweeps with its deps' clock, answers the report as JSON,
//! and logs one JSON line with the counts and the keys it removed, and no secret; any other event
//! is refused without a sweep. (Its own test binary: it installs the process-wide log subscriber,
//! in Lambda's JSON format.)

use bytes::Bytes;
use imgbt_tests::{Backend, Store, TestApp, invoke_scheduled};
use serde_json::{Value, json};
use std::io::Write;
use std::sync::{Arc, Mutex};

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn the_function_answers_and_logs_its_report() {
    // SAFETY of the environment: this binary has this one test, and nothing else reads the
    // variable concurrently.
    unsafe { std::env::set_var("AWS_LAMBDA_LOG_FORMAT", "JSON") };
    let captured = Captured::default();
    let sink = captured.clone();
    lambda_runtime::tracing::init_default_subscriber_with_writer(move || sink.clone());

    let app = TestApp::on(Backend::Cloudflare).await;
    let orphan = shared::asset::r2_key(
        &app.vault.vault_id,
        "lost",
        "and",
        "found",
        &shared::ids::new_asset_id(1_768_473_000_000),
        "orphan.txt",
    );
    app.blobs()
        .put(&orphan, Bytes::from_static(b"orphan"), "text/plain")
        .await
        .unwrap();
    let sample = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../events/gc.200.scheduled.json"
    ))
    .unwrap();
    let event: Value = serde_json::from_str(&sample).unwrap();
    let event_id = event["id"].clone();

    // Not a scheduled event: refused before any sweep.
    let http = json!({ "version": "2.0", "routeKey": "GET /x", "rawPath": "/x" });
    let err = invoke_scheduled(&app.deps, "gc", http, "req-gc-0")
        .await
        .unwrap_err();
    assert!(err.contains("EventBridge scheduled event"), "{err}");

    // On time: the orphan is young, nothing is removed.
    let report = invoke_scheduled(&app.deps, "gc", event.clone(), "req-gc-1")
        .await
        .unwrap();
    assert_eq!(report["orphans"], json!([]));
    assert!(app.read_object(&orphan).is_some());

    // Two hours later (the deps' clock, which the function reads): removed, answered and logged.
    app.deps.clock.set_offset_ms(2 * 3_600_000);
    let report = invoke_scheduled(&app.deps, "gc", event, "req-gc-2")
        .await
        .unwrap();
    assert_eq!(report["orphans"], json!([orphan]));
    assert_eq!(report["failed"], json!([]));
    assert_eq!(app.read_object(&orphan), None);

    let text = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    let lines: Vec<Value> = text
        .lines()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .filter(|line| line["fields"]["request_id"] == "req-gc-2")
        .collect();
    assert_eq!(lines.len(), 1, "one line per run: {text}");
    let fields = &lines[0]["fields"];
    assert_eq!(lines[0]["level"], "INFO", "{fields}");
    assert_eq!(fields["message"], "gc swept");
    assert_eq!(fields["function"], "gc");
    assert_eq!(fields["event_id"], event_id);
    for (count, n) in [
        ("orphans", 1),
        ("deleted", 0),
        ("expired_uploads", 0),
        ("completed_uploads", 0),
        ("failed", 0),
    ] {
        assert_eq!(fields[count], n, "{count}: {fields}");
    }
    let removed: Value = serde_json::from_str(fields["removed"].as_str().unwrap()).unwrap();
    assert_eq!(removed, report, "the line carries the report's keys");
    let Store::Cloudflare(stores) = &app.store else {
        unreachable!("a Cloudflare app")
    };
    for secret in [
        stores.config.api_token.expose(),
        stores.config.r2_secret_access_key.expose(),
    ] {
        assert!(!text.contains(secret), "a secret reached the log");
    }
}
