//! The `imgbt` binary, run as a user runs it, against a fresh `IMGBT_DATA_DIR`.

use serde_json::Value;
use std::process::{Command, Output};

struct Store {
    dir: tempfile::TempDir,
}

impl Store {
    fn new() -> Self {
        Store {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    fn run(&self, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_imgbt"))
            .args(args)
            .env("IMGBT_DATA_DIR", self.dir.path().join("data"))
            .output()
            .unwrap()
    }

    /// Runs with `--json`, expects success, and returns the one JSON document on stdout.
    fn json(&self, args: &[&str]) -> Value {
        let out = self.run(&[args, &["--json"]].concat());
        assert!(
            out.status.success(),
            "{args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).expect("stdout is one JSON document")
    }

    fn migrated() -> Self {
        let store = Store::new();
        store.json(&["migrate"]);
        store
    }
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn migrate_twice_applies_nothing_the_second_time() {
    let store = Store::new();
    let first = store.json(&["migrate"]);
    let applied = first["applied"].as_array().unwrap();
    assert!(applied.iter().any(|m| m == "0001_init.sql"), "{first}");
    assert_eq!(
        store.json(&["migrate"]),
        serde_json::json!({ "applied": [] })
    );
    let text = store.run(&["migrate"]);
    assert!(text.status.success());
    assert!(stdout(&text).contains("up to date"), "{}", stdout(&text));
}

#[test]
fn a_command_before_migrate_says_to_run_migrate() {
    let store = Store::new();
    let out = store.run(&["vault", "list"]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("imgbt migrate"), "{}", stderr(&out));
    let out = store.run(&["vault", "create", "--name", "x", "--json"]);
    assert!(!out.status.success());
    let body: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(
        body["error"].as_str().unwrap().contains("imgbt migrate"),
        "{body}"
    );
}

#[test]
fn vault_create_json_has_exactly_the_id_and_both_keys() {
    let store = Store::migrated();
    let vault = store.json(&["vault", "create", "--name", "dev"]);
    let fields = vault.as_object().unwrap();
    let mut names: Vec<&str> = fields.keys().map(String::as_str).collect();
    names.sort();
    assert_eq!(names, ["public_key", "secret_key", "vault_id"]);
    assert!(vault["vault_id"].as_str().unwrap().starts_with("vault_"));
    assert!(vault["public_key"].as_str().unwrap().starts_with("pk_"));
    assert!(vault["secret_key"].as_str().unwrap().starts_with("sk_"));

    let list = store.json(&["vault", "list"]);
    let vaults = list["vaults"].as_array().unwrap();
    assert_eq!(vaults.len(), 1);
    assert_eq!(vaults[0]["id"], vault["vault_id"]);
    assert_eq!(vaults[0]["name"], "dev");
    assert!(
        !list
            .to_string()
            .contains(vault["secret_key"].as_str().unwrap())
    );
}

#[test]
fn keys_are_created_listed_without_secrets_and_revoked_once() {
    let store = Store::migrated();
    let vault = store.json(&["vault", "create", "--name", "dev"]);
    let vault_id = vault["vault_id"].as_str().unwrap();

    let key = store.json(&[
        "key", "create", "--vault", vault_id, "--kind", "secret", "--label", "ci",
    ]);
    let key_string = key["key"].as_str().unwrap();
    let key_id = key["key_id"].as_str().unwrap();
    assert!(key_string.starts_with("sk_"));
    assert_eq!(key["kind"], "secret");
    assert_eq!(key["label"], "ci");
    assert_eq!(key["vault_id"], vault_id);

    let list = store.json(&["key", "list", "--vault", vault_id]);
    assert_eq!(list["keys"].as_array().unwrap().len(), 3);
    let text = stdout(&store.run(&["key", "list", "--vault", vault_id]));
    for secret in [
        key_string,
        vault["public_key"].as_str().unwrap(),
        vault["secret_key"].as_str().unwrap(),
    ] {
        assert!(!list.to_string().contains(secret));
        assert!(!text.contains(secret));
    }
    assert!(text.contains(key_id), "{text}");

    let revoked = store.json(&["key", "revoke", "--vault", vault_id, "--key", key_id]);
    assert_eq!(revoked["revoked"], true);
    let again = store.run(&["key", "revoke", "--vault", vault_id, "--key", key_id]);
    assert!(!again.status.success());
    assert!(stderr(&again).contains("no live key"), "{}", stderr(&again));

    let list = store.json(&["key", "list", "--vault", vault_id]);
    let row = list["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["id"] == key_id)
        .unwrap()
        .clone();
    assert!(row["revoked_at"].is_string(), "{row}");
}

#[test]
fn keys_of_an_unknown_vault_are_an_error() {
    let store = Store::migrated();
    let create = store.run(&[
        "key",
        "create",
        "--vault",
        "vault_nope",
        "--kind",
        "public",
        "--label",
        "x",
    ]);
    assert!(!create.status.success());
    assert!(stderr(&create).contains("no vault vault_nope"));
    assert!(
        !store
            .run(&["key", "list", "--vault", "vault_nope"])
            .status
            .success()
    );
}

#[test]
fn gc_on_a_clean_store_reports_nothing() {
    let store = Store::migrated();
    assert_eq!(
        store.json(&["gc"]),
        serde_json::json!({
            "deleted": [],
            "expired_uploads": [],
            "orphans": [],
            "completed_uploads": [],
            "failed": []
        })
    );
}

#[test]
fn fsck_reports_a_clean_store_and_fails_on_an_orphan_object() {
    let store = Store::migrated();
    let clean = store.json(&["fsck"]);
    assert_eq!(clean["records"], 0);
    assert_eq!(clean["objects_without_records"], serde_json::json!([]));

    // An object no record names, left in the objects directory by hand: within the hour, a
    // write may still be on the way, so it is listed apart and the store is still consistent.
    let orphan = store.dir.path().join("data/objects/vault_x/a/b/c");
    std::fs::create_dir_all(&orphan).unwrap();
    std::fs::write(orphan.join("asset_y_lost.txt"), b"lost").unwrap();
    let young = store.json(&["fsck"]);
    assert_eq!(young["objects_without_records"], serde_json::json!([]));
    assert_eq!(
        young["recent_objects_without_records"],
        serde_json::json!(["vault_x/a/b/c/asset_y_lost.txt"])
    );
    // Two hours later it is a fault.
    std::fs::File::options()
        .write(true)
        .open(orphan.join("asset_y_lost.txt"))
        .unwrap()
        .set_modified(std::time::SystemTime::now() - std::time::Duration::from_secs(7200))
        .unwrap();
    let out = store.run(&["fsck", "--json"]);
    assert!(!out.status.success(), "an inconsistent store fails fsck");
    let report: Value = serde_json::from_slice(&out.stdout).expect("the report is still printed");
    assert_eq!(
        report["objects_without_records"],
        serde_json::json!(["vault_x/a/b/c/asset_y_lost.txt"])
    );
}
