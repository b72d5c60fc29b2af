//! `cargo run --release -p imgbt-bench --example embedded_cold`: where a function's first request
//! on the embedded store spends its time, step by step, as the cold-start harness runs it: each
//! iteration opens a fresh copy of a migrated, seeded store that the last process closed (so
//! there is no `-wal` file), then times opening it with its schema check (as every function's `main` does), the first read (the key
//! lookup every request makes), the first write and a second write. 30 iterations after one
//! unmeasured one; medians. Absolute times: compare the steps with each other, in one run.

use shared::db::{self, Stmt, Value};
use std::path::Path;
use std::time::{Duration, Instant};

const RUNS: usize = 30;

fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_tree(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
            // Flushed, as imgbt-coldstart flushes its copies: the first write's fsync must not
            // also write out this copy (ext4's data=ordered commits it with the same journal
            // transaction).
            std::fs::File::open(&target).unwrap().sync_all().unwrap();
        }
    }
    std::fs::File::open(to).unwrap().sync_all().unwrap();
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let template = tempfile::tempdir().unwrap();
    {
        let deps = shared::Deps::embedded(template.path()).await.unwrap();
        imgbt_cli::dev::seed_dev(&*deps.db, &deps.clock, &*deps.blobs)
            .await
            .unwrap();
    }
    let left: Vec<String> = std::fs::read_dir(template.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    println!("files the last process left: {left:?}");
    let steps = [
        "open, schema check (Deps::embedded)",
        "first read",
        "first write",
        "second write",
    ];
    let mut times: Vec<Vec<Duration>> = vec![Vec::new(); steps.len()];
    for run in 0..=RUNS {
        let dir = tempfile::tempdir().unwrap();
        copy_tree(template.path(), dir.path());
        let mut took = Vec::new();

        let t = Instant::now();
        let deps = shared::Deps::embedded(dir.path()).await.unwrap();
        took.push(t.elapsed());

        let t = Instant::now();
        let key_hash = shared::auth::hash_key(imgbt_cli::dev::DEV_SECRET_KEY);
        let rows = db::run(
            &*deps.db,
            vec![Stmt::new(
                "SELECT id, vault_id, kind FROM api_keys WHERE key_hash = ?1 AND revoked_at IS NULL",
                vec![Value::from(key_hash.as_str())],
            )],
        )
        .await
        .unwrap();
        assert_eq!(rows[0].rows.len(), 1);
        took.push(t.elapsed());

        for n in 0..2 {
            let t = Instant::now();
            db::run(
                &*deps.db,
                vec![Stmt::new(
                    "UPDATE assets SET metadata = ?1 WHERE id = ?2",
                    vec![
                        Value::from(format!("{{\"n\":{n}}}")),
                        Value::from(imgbt_cli::dev::DEV_ASSET_ID),
                    ],
                )],
            )
            .await
            .unwrap();
            took.push(t.elapsed());
        }
        if run > 0 {
            for (all, one) in times.iter_mut().zip(took) {
                all.push(one);
            }
        }
    }
    println!("| step | median µs |");
    println!("|---|---:|");
    for (step, all) in steps.iter().zip(times) {
        println!("| {step} | {:.1} |", median(all).as_secs_f64() * 1e6);
    }
}
