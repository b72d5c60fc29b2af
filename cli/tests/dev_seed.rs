//! `imgbt dev seed`: resets the dev vault (fixed id, well-known keys, one sample asset) on the
//! embedded store, every time to the same state, and refuses a Cloudflare configuration outright.

use imgbt_cli::dev::{
    DEV_ASSET_BYTES, DEV_ASSET_ID, DEV_PUBLIC_KEY, DEV_SECRET_KEY, DEV_VAULT_ID, dev_asset_r2_key,
};
use serde_json::Value;
use shared::db::{self, Stmt};
use shared::deps::{OPTIONAL_CLOUDFLARE_VARS, REQUIRED_CLOUDFLARE_VARS};
use std::net::TcpListener;
use std::path::Path;
use std::process::{Command, Output};

fn imgbt(data_dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_imgbt"))
        .args(args)
        .env("IMGBT_DATA_DIR", data_dir)
        // Set but empty counts as unset: the embedded store, whatever the caller's environment.
        .envs(
            REQUIRED_CLOUDFLARE_VARS
                .iter()
                .chain(&OPTIONAL_CLOUDFLARE_VARS)
                .map(|v| (*v, "")),
        )
        .output()
        .unwrap()
}

fn seed_json(data_dir: &Path) -> Value {
    let out = imgbt(data_dir, &["dev", "seed", "--json"]);
    assert!(
        out.status.success(),
        "dev seed failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("stdout is one JSON document")
}

async fn rows(data_dir: &Path, sql: &'static str) -> Vec<db::Row> {
    let deps = shared::Deps::open_embedded(data_dir).unwrap();
    let mut results = db::run(&*deps.db, vec![Stmt::new(sql, vec![])])
        .await
        .unwrap();
    std::mem::take(&mut results[0].rows)
}

async fn exec(data_dir: &Path, sql: &'static str) {
    let deps = shared::Deps::open_embedded(data_dir).unwrap();
    db::run(&*deps.db, vec![Stmt::new(sql, vec![])])
        .await
        .unwrap();
}

#[tokio::test]
async fn seed_resets_the_dev_vault_every_time() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    assert!(imgbt(&data, &["migrate"]).status.success());

    let first = seed_json(&data);
    assert_eq!(first["vault_id"], DEV_VAULT_ID, "{first}");
    assert_eq!(first["public_key"], DEV_PUBLIC_KEY, "{first}");
    assert_eq!(first["secret_key"], DEV_SECRET_KEY, "{first}");
    assert_eq!(first["asset_id"], DEV_ASSET_ID, "{first}");
    assert_eq!(first["r2_key"], dev_asset_r2_key(), "{first}");
    assert_eq!(first["removed_assets"], 0, "{first}");
    let object = data.join("objects").join(dev_asset_r2_key());
    assert_eq!(std::fs::read(&object).unwrap(), DEV_ASSET_BYTES);

    // Idempotent: the same answer, one vault, two keys, one asset.
    let second = seed_json(&data);
    assert_eq!(second["removed_assets"], 1, "the previous sample: {second}");
    let ids = ["vault_id", "public_key", "secret_key", "asset_id", "r2_key"];
    for field in ids {
        assert_eq!(first[field], second[field], "{field}");
    }
    let vaults = imgbt(&data, &["vault", "list", "--json"]);
    let vaults: Value = serde_json::from_slice(&vaults.stdout).unwrap();
    assert_eq!(vaults["vaults"].as_array().unwrap().len(), 1, "{vaults}");
    let keys = imgbt(&data, &["key", "list", "--vault", DEV_VAULT_ID, "--json"]);
    let keys: Value = serde_json::from_slice(&keys.stdout).unwrap();
    assert_eq!(keys["keys"].as_array().unwrap().len(), 2, "{keys}");

    // Whatever happened to the vault since, the next seed brings back exactly the seed state:
    // another asset (and its object) gone, a revoked dev key live again, the sample back.
    let extra_key =
        format!("{DEV_VAULT_ID}/docs/readme/main/asset_01DEVDEVDEVDEVDEVDEVEXTRA0_x.txt");
    let extra = data.join("objects").join(&extra_key);
    std::fs::create_dir_all(extra.parent().unwrap()).unwrap();
    std::fs::write(&extra, b"x").unwrap();
    exec(
        &data,
        "INSERT INTO assets (id, vault_id, partition, collection, channel, filename, r2_key, size, \
         mime_type, width, height, metadata, tags, created_at, updated_at) VALUES \
         ('asset_01DEVDEVDEVDEVDEVDEVEXTRA0', 'vault_01DEVDEVDEVDEVDEVDEVDEVDEV', 'docs', 'readme', \
         'main', 'x.txt', 'vault_01DEVDEVDEVDEVDEVDEVDEVDEV/docs/readme/main/asset_01DEVDEVDEVDEVDEVDEVEXTRA0_x.txt', \
         1, 'text/plain', NULL, NULL, '{}', '[]', '2026-01-01T00:00:00.000Z', '2026-01-01T00:00:00.000Z')",
    )
    .await;
    exec(
        &data,
        "DELETE FROM assets WHERE id = 'asset_01DEVDEVDEVDEVDEVDEV0ASSET'",
    )
    .await;
    exec(
        &data,
        "UPDATE api_keys SET revoked_at = '2026-01-01T00:00:00.000Z' \
         WHERE id = 'key_01DEVDEVDEVDEVDEVDEVDEV0SK'",
    )
    .await;
    std::fs::remove_file(&object).unwrap();
    let made = imgbt(
        &data,
        &[
            "key",
            "create",
            "--vault",
            DEV_VAULT_ID,
            "--kind",
            "secret",
            "--label",
            "mine",
        ],
    );
    assert!(made.status.success(), "{made:?}");

    let third = seed_json(&data);
    assert_eq!(third["removed_assets"], 1, "{third}");
    assert_eq!(third["pending_objects"], 0, "{third}");
    assert!(!extra.exists(), "the removed asset's object is gone");
    assert_eq!(std::fs::read(&object).unwrap(), DEV_ASSET_BYTES);
    let assets = rows(
        &data,
        "SELECT id, metadata, tags, size, mime_type FROM assets",
    )
    .await;
    assert_eq!(assets.len(), 1, "{assets:?}");
    assert_eq!(assets[0]["id"], DEV_ASSET_ID);
    assert_eq!(assets[0]["metadata"], r#"{"alt":"sample"}"#);
    assert_eq!(assets[0]["tags"], r#"["sample"]"#);
    assert_eq!(assets[0]["mime_type"], "text/plain");
    assert_eq!(assets[0]["size"], DEV_ASSET_BYTES.len());
    let live = rows(
        &data,
        "SELECT id FROM api_keys WHERE revoked_at IS NULL ORDER BY id",
    )
    .await;
    let live: Vec<&str> = live.iter().map(|r| r["id"].as_str().unwrap()).collect();
    assert_eq!(
        live,
        [
            "key_01DEVDEVDEVDEVDEVDEVDEV0PK",
            "key_01DEVDEVDEVDEVDEVDEVDEV0SK"
        ],
        "the dev keys live again, the key made since revoked"
    );
    let mine = rows(
        &data,
        "SELECT revoked_at FROM api_keys WHERE label = 'mine'",
    )
    .await;
    assert!(mine[0]["revoked_at"].as_str().is_some(), "{mine:?}");
    let pending = rows(&data, "SELECT r2_key FROM pending_deletions").await;
    assert!(pending.is_empty(), "{pending:?}");

    // Text output names the vault, both keys and the sample.
    let out = imgbt(&data, &["dev", "seed"]);
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    for shown in [DEV_VAULT_ID, DEV_PUBLIC_KEY, DEV_SECRET_KEY, DEV_ASSET_ID] {
        assert!(text.contains(shown), "{text}");
    }
}

#[test]
fn seed_refuses_a_cloudflare_configuration_without_contacting_it() {
    // Every Cloudflare endpoint points at a listener that records any connection.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    for json in [false, true] {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_imgbt"));
        cmd.args(["dev", "seed"])
            .env("IMGBT_DATA_DIR", &data)
            .env("CLOUDFLARE_ACCOUNT_ID", "acc")
            .env("CLOUDFLARE_API_TOKEN", "token")
            .env("IMGBT_D1_DATABASE_ID", "db")
            .env("IMGBT_D1_BASE_URL", &url)
            .env("IMGBT_R2_BUCKET", "bucket")
            .env("IMGBT_R2_ACCESS_KEY_ID", "akid")
            .env("IMGBT_R2_SECRET_ACCESS_KEY", "secret")
            .env("IMGBT_R2_ENDPOINT", &url);
        if json {
            cmd.arg("--json");
        }
        let out = cmd.output().unwrap();
        assert!(!out.status.success(), "dev seed must refuse Cloudflare");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains("embedded") && stderr.contains("D1"),
            "the refusal says why: {stderr}"
        );
        if json {
            let body: Value = serde_json::from_slice(&out.stdout).unwrap();
            assert!(body["error"].as_str().unwrap().contains("D1"), "{body}");
        } else {
            assert!(out.stdout.is_empty(), "no keys printed");
        }
        assert!(
            !String::from_utf8_lossy(&out.stdout).contains(DEV_SECRET_KEY),
            "no keys printed"
        );
    }
    match listener.accept() {
        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
        other => panic!("dev seed contacted the configured endpoint: {other:?}"),
    }
    assert!(!data.exists(), "nor did it create a local store");
}
