//! Concurrent PATCHes from separate function instances: each instance has dependencies of its own
//! over the same stores (its own SQLite connection, or its own D1 and S3 clients, as separate
//! function processes have), on a multi-thread runtime, all released at once. The merge happens
//! atomically in the store, so PATCHes of different keys all survive (docs/API.md#merge-rules).

use imgbt_tests::{Backend, Form, Reply, TestApp, dispatch};
use serde_json::{Map, Value, json};
use std::sync::Arc;
use tokio::sync::Barrier;

const PATCHES: usize = 32;
const INSTANCES: usize = 4;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_patches_of_different_metadata_keys_all_survive_embedded() {
    concurrent_patches_of_different_metadata_keys_all_survive(Backend::Embedded).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_patches_of_different_metadata_keys_all_survive_on_d1() {
    concurrent_patches_of_different_metadata_keys_all_survive(Backend::Cloudflare).await;
}

async fn concurrent_patches_of_different_metadata_keys_all_survive(backend: Backend) {
    let app = TestApp::on(backend).await;
    let record = app
        .create(&Form::standard().field("metadata", r#"{"base":true}"#))
        .await;
    let asset = record["id"].as_str().unwrap().to_owned();

    let mut instances = Vec::new();
    for _ in 0..INSTANCES {
        instances.push(Arc::new(app.another_instance().await));
    }
    let barrier = Arc::new(Barrier::new(PATCHES));
    let mut tasks = Vec::new();
    for i in 0..PATCHES {
        let deps = instances[i % INSTANCES].clone();
        let req = app
            .call_on(&deps, "update")
            .asset(&asset)
            .key(app.sk())
            .json(&json!({ "metadata": { format!("key{i:02}"): i } }))
            .build();
        let barrier = barrier.clone();
        tasks.push(tokio::spawn(async move {
            barrier.wait().await;
            Reply::from(dispatch(&deps, "update", req).await)
        }));
    }
    for task in tasks {
        task.await.expect("the PATCH task").ok(200);
    }

    let stored = app.get(app.pk(), &asset).await.ok(200);
    let metadata: Value = serde_json::from_str(stored["metadata"].as_str().unwrap()).unwrap();
    let mut expected = Map::new();
    expected.insert("base".into(), json!(true));
    for i in 0..PATCHES {
        expected.insert(format!("key{i:02}"), json!(i));
    }
    assert_eq!(
        metadata,
        Value::Object(expected),
        "every PATCH's key survives"
    );
    assert!(stored["updated_at"].as_str() > record["updated_at"].as_str());
}
