//! `imgbt` against D1 over REST (and R2 over S3), through the same clients the functions use: the
//! binary runs with the Cloudflare variables pointing at the protocol-faithful test servers.

use imgbt_test_servers::{D1Server, S3Server};
use serde_json::Value;
use std::process::Output;
use tokio::process::Command;

struct Cloud {
    d1: D1Server,
    s3: S3Server,
}

impl Cloud {
    async fn start() -> Self {
        let (d1, s3) = tokio::join!(D1Server::start(), S3Server::start());
        Cloud { d1, s3 }
    }

    async fn run(&self, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_imgbt"))
            .args(args)
            .env_clear()
            .envs(imgbt_test_servers::cloudflare_env(&self.d1, &self.s3))
            .output()
            .await
            .unwrap()
    }

    async fn json(&self, args: &[&str]) -> Value {
        let out = self.run(&[args, &["--json"]].concat()).await;
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).expect("one JSON document")
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migrate_vaults_and_keys_work_against_d1() {
    let cloud = Cloud::start().await;
    let first = cloud.json(&["migrate"]).await;
    assert!(
        first["applied"]
            .as_array()
            .unwrap()
            .iter()
            .any(|m| m == "0001_init.sql"),
        "{first}"
    );
    assert_eq!(
        cloud.json(&["migrate"]).await,
        serde_json::json!({ "applied": [] })
    );
    // Recorded where wrangler records it.
    let recorded = cloud.d1.query("SELECT name FROM d1_migrations ORDER BY id");
    let names: Vec<&str> = recorded
        .iter()
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    let expected: Vec<&str> = shared::migrations::MIGRATIONS
        .iter()
        .map(|m| m.name)
        .collect();
    assert_eq!(names, expected);

    let vault = cloud.json(&["vault", "create", "--name", "prod"]).await;
    let vault_id = vault["vault_id"].as_str().unwrap();
    let secret = vault["secret_key"].as_str().unwrap();
    assert!(secret.starts_with("sk_"));
    let rows = cloud.d1.query("SELECT key_hash FROM api_keys");
    assert_eq!(rows.len(), 2);
    assert!(
        rows.iter()
            .all(|r| !r["key_hash"].as_str().unwrap().contains(&secret[3..]))
    );

    let key = cloud
        .json(&[
            "key", "create", "--vault", vault_id, "--kind", "public", "--label", "web",
        ])
        .await;
    let key_id = key["key_id"].as_str().unwrap();
    let listed = cloud
        .run(&["key", "list", "--vault", vault_id, "--json"])
        .await;
    let listed_text = String::from_utf8_lossy(&listed.stdout);
    assert!(listed.status.success());
    assert!(
        listed_text.contains(key_id) && !listed_text.contains(&secret[3..]),
        "{listed_text}"
    );
    cloud
        .json(&["key", "revoke", "--vault", vault_id, "--key", key_id])
        .await;
    let revoked = cloud
        .d1
        .query("SELECT revoked_at FROM api_keys WHERE revoked_at IS NOT NULL");
    assert_eq!(revoked.len(), 1);
}

/// As the deploy workflow runs it: D1's variables only, no R2 credentials.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migrate_needs_only_the_d1_variables() {
    let cloud = Cloud::start().await;
    let d1_only: Vec<(&str, String)> = imgbt_test_servers::cloudflare_env(&cloud.d1, &cloud.s3)
        .into_iter()
        .filter(|(name, _)| !name.starts_with("IMGBT_R2_"))
        .collect();
    let run = |args: &'static [&'static str]| {
        Command::new(env!("CARGO_BIN_EXE_imgbt"))
            .args(args)
            .env_clear()
            .envs(d1_only.clone())
            .output()
    };
    let out = run(&["migrate", "--json"]).await.unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let recorded = cloud.d1.query("SELECT name FROM d1_migrations");
    assert_eq!(recorded.len(), shared::migrations::MIGRATIONS.len());
    // Every other command still needs R2's.
    let out = run(&["vault", "list"]).await.unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("IMGBT_R2_BUCKET"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_incomplete_cloudflare_configuration_is_refused_by_name() {
    let out = Command::new(env!("CARGO_BIN_EXE_imgbt"))
        .args(["vault", "list"])
        .env_clear()
        .env("CLOUDFLARE_ACCOUNT_ID", "acc")
        .env("CLOUDFLARE_API_TOKEN", "token-that-must-not-print")
        .output()
        .await
        .unwrap();
    assert!(!out.status.success());
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    for missing in [
        "IMGBT_D1_DATABASE_ID",
        "IMGBT_R2_BUCKET",
        "IMGBT_R2_ACCESS_KEY_ID",
        "IMGBT_R2_SECRET_ACCESS_KEY",
    ] {
        assert!(text.contains(missing), "{text}");
    }
    assert!(!text.contains("token-that-must-not-print"), "{text}");
}
