//! Races between function instances, on both backends: each instance has dependencies of its own
//! over the same stores (its own SQLite connection, or its own D1 and S3 clients), on a
//! multi-thread runtime, released together by a barrier.
//!
//! - 50 uploads of one filename into one channel: exactly one 201, 49 × 409 CONFLICT, exactly one
//!   object stored for the channel, and fsck clean.
//! - A DELETE racing a PATCH of the same asset, 20 times: each time either the asset is gone with
//!   its object (fsck clean after gc), or it is there with the PATCH applied and its object; never
//!   a record without its object.
//! - Two revokes of a vault's last two secret keys, 20 times, each key revoking itself or the
//!   other: exactly one passes, and one secret key stays alive (also on the D1 gateway).

use imgbt_tests::{Backend, Form, Reply, TestApp, dispatch};
use serde_json::{Value, json};
use shared::Deps;
use shared::admin;
use shared::auth::KeyKind;
use std::sync::Arc;
use tokio::sync::Barrier;

const UPLOADS: usize = 50;
const INSTANCES: usize = 8;
const ROUNDS: usize = 20;

async fn instances(app: &TestApp, n: usize) -> Vec<Arc<Deps>> {
    let mut out = Vec::new();
    for _ in 0..n {
        out.push(Arc::new(app.another_instance().await));
    }
    out
}

async fn fsck(app: &TestApp) -> admin::FsckReport {
    admin::fsck(
        &*app.deps.db,
        &imgbt_tests::past_the_grace(),
        &*app.deps.blobs,
    )
    .await
    .expect("fsck")
}

async fn gc(app: &TestApp) {
    let report = admin::gc(&*app.deps.db, &app.deps.clock, &*app.deps.blobs)
        .await
        .expect("gc");
    assert!(report.failed.is_empty(), "{report:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fifty_uploads_of_one_filename_give_one_asset_embedded() {
    fifty_uploads_of_one_filename_give_one_asset(Backend::Embedded).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fifty_uploads_of_one_filename_give_one_asset_on_d1() {
    fifty_uploads_of_one_filename_give_one_asset(Backend::Cloudflare).await;
}

async fn fifty_uploads_of_one_filename_give_one_asset(backend: Backend) {
    let app = TestApp::on(backend).await;
    let instances = instances(&app, INSTANCES).await;
    let barrier = Arc::new(Barrier::new(UPLOADS));
    let mut tasks = Vec::new();
    for i in 0..UPLOADS {
        let deps = instances[i % INSTANCES].clone();
        // Each upload's bytes are its own, so the stored object tells whose it is.
        let bytes = format!("upload {i:02}");
        let form = Form::asset(
            "race",
            "same",
            "chan",
            "same.txt",
            "text/plain",
            bytes.as_bytes(),
        );
        let req = app
            .call_on(&deps, "upload")
            .key(app.sk())
            .form(&form)
            .build();
        let barrier = barrier.clone();
        tasks.push(tokio::spawn(async move {
            barrier.wait().await;
            (bytes, Reply::from(dispatch(&deps, "upload", req).await))
        }));
    }
    let mut created = Vec::new();
    let mut conflicts = 0;
    for task in tasks {
        let (bytes, reply) = task.await.expect("the upload task");
        match reply.status.as_u16() {
            201 => created.push((bytes, reply.json())),
            _ => {
                reply.error(409, "CONFLICT");
                conflicts += 1;
            }
        }
    }
    assert_eq!(
        (created.len(), conflicts),
        (1, UPLOADS - 1),
        "one 201, the rest 409"
    );
    let (bytes, record) = &created[0];
    let key = record["r2_key"].as_str().unwrap();

    let prefix = format!("{}/race/same/chan/", app.vault.vault_id);
    let objects: Vec<(String, u64)> = app
        .blobs()
        .list(&prefix)
        .await
        .expect("listing objects")
        .into_iter()
        .map(|o| (o.key, o.size))
        .collect();
    assert_eq!(
        objects,
        [(key.to_owned(), bytes.len() as u64)],
        "exactly the winner's object is stored for the channel"
    );
    assert_eq!(
        app.read_object(key).as_deref(),
        Some(bytes.as_bytes()),
        "the winner's bytes"
    );
    let page = app.list(app.pk(), "channel=chan").await.ok(200);
    assert_eq!(page["data"].as_array().unwrap().len(), 1);
    assert_eq!(page["data"][0]["id"], record["id"]);

    let report = fsck(&app).await;
    assert!(report.is_clean(), "{report:#?}");
    assert_eq!((report.records, report.objects), (1, 1), "{report:#?}");
    gc(&app).await;
    let report = fsck(&app).await;
    assert!(report.is_clean(), "{report:#?}");
    assert_eq!((report.records, report.objects), (1, 1), "{report:#?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_delete_racing_a_patch_never_leaves_a_record_without_its_object_embedded() {
    a_delete_racing_a_patch_never_leaves_a_record_without_its_object(Backend::Embedded).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_delete_racing_a_patch_never_leaves_a_record_without_its_object_on_d1() {
    a_delete_racing_a_patch_never_leaves_a_record_without_its_object(Backend::Cloudflare).await;
}

async fn a_delete_racing_a_patch_never_leaves_a_record_without_its_object(backend: Backend) {
    let app = TestApp::on(backend).await;
    let instances = instances(&app, 2).await;
    let (mut patched_first, mut deleted_first) = (0, 0);
    for round in 0..ROUNDS {
        let record = app
            .create(
                &Form::tiny("race", "del", "patch", &format!("r{round}.txt"))
                    .field("metadata", r#"{"v":0}"#),
            )
            .await;
        let id = record["id"].as_str().unwrap().to_owned();
        let key = record["r2_key"].as_str().unwrap().to_owned();
        let patch = json!({ "metadata": { "round": round }, "tags": ["patched"] });

        let barrier = Arc::new(Barrier::new(2));
        let delete = {
            let (deps, barrier) = (instances[0].clone(), barrier.clone());
            let req = app
                .call_on(&deps, "delete")
                .key(app.sk())
                .asset(&id)
                .build();
            tokio::spawn(async move {
                barrier.wait().await;
                Reply::from(dispatch(&deps, "delete", req).await)
            })
        };
        let update = {
            let (deps, barrier) = (instances[1].clone(), barrier.clone());
            let req = app
                .call_on(&deps, "update")
                .key(app.sk())
                .asset(&id)
                .json(&patch)
                .build();
            tokio::spawn(async move {
                barrier.wait().await;
                Reply::from(dispatch(&deps, "update", req).await)
            })
        };
        let deleted = delete.await.expect("the delete task");
        let updated = update.await.expect("the update task");
        assert_eq!(deleted.status, 204, "round {round}: {}", deleted.snippet());
        match updated.status.as_u16() {
            200 => {
                patched_first += 1;
                let body = updated.json();
                let metadata: Value =
                    serde_json::from_str(body["metadata"].as_str().unwrap()).unwrap();
                assert_eq!(metadata, json!({ "v": 0, "round": round }), "round {round}");
            }
            _ => {
                updated.error(404, "ASSET_NOT_FOUND");
                deleted_first += 1;
            }
        }

        // Never a record without its object, before gc or after.
        let report = fsck(&app).await;
        assert!(report.is_clean(), "round {round}: {report:#?}");
        let now = app.get(app.pk(), &id).await;
        match now.status.as_u16() {
            404 => {
                gc(&app).await;
                assert!(
                    app.read_object(&key).is_none(),
                    "round {round}: the object is gone"
                );
            }
            _ => {
                let body = now.ok(200);
                let metadata: Value =
                    serde_json::from_str(body["metadata"].as_str().unwrap()).unwrap();
                assert_eq!(
                    metadata["round"], round,
                    "round {round}: the PATCH is applied"
                );
                assert!(
                    app.read_object(&key).is_some(),
                    "round {round}: the object is there"
                );
            }
        }
        let report = fsck(&app).await;
        assert!(report.is_clean(), "round {round}: {report:#?}");
    }
    eprintln!(
        "{backend:?}: the PATCH ran first {patched_first} times, after the DELETE {deleted_first} times"
    );
    let report = fsck(&app).await;
    assert!(report.is_clean(), "{report:#?}");
    assert_eq!((report.records, report.objects), (0, 0), "{report:#?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn racing_revokes_of_the_last_two_secret_keys_leave_one_alive_embedded() {
    racing_revokes_of_the_last_two_secret_keys_leave_one_alive(Backend::Embedded).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn racing_revokes_of_the_last_two_secret_keys_leave_one_alive_on_d1() {
    racing_revokes_of_the_last_two_secret_keys_leave_one_alive(Backend::Cloudflare).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn racing_revokes_of_the_last_two_secret_keys_leave_one_alive_on_the_gateway() {
    racing_revokes_of_the_last_two_secret_keys_leave_one_alive(Backend::Gateway).await;
}

/// The vault's live secret keys, as the store has them.
async fn live_secret_keys(app: &TestApp) -> Vec<String> {
    admin::list_keys(&*app.deps.db, &app.vault.vault_id)
        .await
        .expect("keys")
        .into_iter()
        .filter(|k| k.kind == "secret" && k.revoked_at.is_none())
        .map(|k| k.id)
        .collect()
}

/// Each round, a vault with exactly two live secret keys gets two revokes at once from two
/// instances: either each key revoking itself, or each revoking the other. Without the guard in
/// the UPDATE both could pass and lock the vault out; with it exactly one passes, and the other
/// is 409 (or 401, when its own key was revoked first).
async fn racing_revokes_of_the_last_two_secret_keys_leave_one_alive(backend: Backend) {
    let app = TestApp::on(backend).await;
    let instances = instances(&app, 2).await;
    let (db, clock, vault) = (&*app.deps.db, &app.deps.clock, &app.vault.vault_id);
    for round in 0..ROUNDS {
        // Two fresh secret keys, and no other live one (the CLI's revoke has no guard).
        let mut pair = Vec::new();
        for n in 0..2 {
            let label = format!("round {round} key {n}");
            let key = admin::create_key(db, clock, vault, KeyKind::Secret, &label)
                .await
                .expect("create_key")
                .expect("the vault exists");
            pair.push(key);
        }
        for id in live_secret_keys(&app).await {
            if pair.iter().all(|k| k.key_id != id) {
                assert!(admin::revoke_key(db, clock, vault, &id).await.unwrap());
            }
        }
        assert_eq!(live_secret_keys(&app).await.len(), 2, "round {round}");
        // Even rounds: each key revokes itself; odd rounds: each revokes the other.
        let crossed = round % 2 == 1;
        let barrier = Arc::new(Barrier::new(2));
        let mut tasks = Vec::new();
        for (n, deps) in instances.iter().enumerate() {
            let target = &pair[if crossed { 1 - n } else { n }].key_id;
            let req = app
                .call_on(deps, "key_revoke")
                .key(&pair[n].key)
                .key_id(target)
                .build();
            let (deps, barrier) = (deps.clone(), barrier.clone());
            tasks.push(tokio::spawn(async move {
                barrier.wait().await;
                Reply::from(dispatch(&deps, "key_revoke", req).await)
            }));
        }
        let mut statuses = Vec::new();
        for task in tasks {
            let reply = task.await.expect("the revoke task");
            match reply.status.as_u16() {
                204 => {}
                409 => {
                    reply.error(409, "CONFLICT");
                }
                401 if crossed => {
                    reply.error(401, "UNAUTHORIZED");
                }
                other => panic!("round {round}: {other}: {}", reply.snippet()),
            }
            statuses.push(reply.status.as_u16());
        }
        statuses.sort();
        assert_eq!(
            statuses[0], 204,
            "round {round}: one revoke passes: {statuses:?}"
        );
        assert_ne!(statuses[1], 204, "round {round}: not both: {statuses:?}");
        let live = live_secret_keys(&app).await;
        assert_eq!(
            live.len(),
            1,
            "round {round}: one secret key stays alive: {live:?}"
        );
        assert!(pair.iter().any(|k| k.key_id == live[0]), "round {round}");
    }
}
