//! The sample events in `events/`: every file is an API Gateway HTTP API (payload 2.0) event named
//! `<function>.<status>.<case>.json`. Each one, on a freshly seeded dev vault
//! (`imgbt_cli::dev::seed_dev`), must get exactly the status its name declares from the function
//! its name declares, and an error must carry its code (docs/API.md#error-codes). A file that does not
//! follow the naming rule fails the suite. `scripts/invoke-events.sh` replays the same files through
//! `cargo lambda watch`.

use imgbt_cli::dev::{self, DEV_ASSET_ID, DEV_VAULT_ID};
use imgbt_tests::{Reply, dispatch, invoke_scheduled};
use serde_json::Value;
use shared::Deps;
use shared::db::{self, Stmt};
use shared::functions;
use std::path::{Path, PathBuf};

/// What an event file's name declares.
#[derive(Debug, PartialEq, Eq)]
struct Declared {
    function: &'static str,
    status: u16,
    case: String,
}

/// `<function>.<status>.<case>.json`: one of the functions, a three-digit HTTP status, and a
/// case of lowercase letters, digits and inner dashes.
fn parse_name(file_name: &str) -> Result<Declared, String> {
    let rule = "names are <function>.<status>.<case>.json, e.g. get.404.unknown-asset.json";
    let stem = file_name
        .strip_suffix(".json")
        .ok_or_else(|| format!("{file_name}: not .json; {rule}"))?;
    let parts: Vec<&str> = stem.split('.').collect();
    let [function, status, case] = parts[..] else {
        return Err(format!("{file_name}: {rule}"));
    };
    let function = functions::find(function).map(|f| f.name).ok_or_else(|| {
        let known: Vec<&str> = functions::names().collect();
        format!("{file_name}: functions.toml has no function {function:?} (one of {known:?})")
    })?;
    let status = (status.len() == 3 && status.bytes().all(|b| b.is_ascii_digit()))
        .then(|| status.parse::<u16>().ok())
        .flatten()
        .filter(|s| (100..600).contains(s))
        .ok_or_else(|| format!("{file_name}: {status:?} is not an HTTP status; {rule}"))?;
    let case_ok = !case.is_empty()
        && case
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !case.starts_with('-')
        && !case.ends_with('-');
    if !case_ok {
        return Err(format!(
            "{file_name}: the case {case:?} must be lowercase letters, digits and dashes; {rule}"
        ));
    }
    Ok(Declared {
        function,
        status,
        case: case.to_owned(),
    })
}

/// The error code docs/API.md#error-codes gives each error status of `function`.
fn code_for(function: &str, status: u16) -> Option<&'static str> {
    let path = shared::routes::route_of(function).path;
    let upload_route = path.contains("{uploadId}");
    let key_route = path.contains("{keyId}");
    let delivery = path == shared::delivery::PATH;
    Some(match status {
        // A delivery URL that names no asset (docs/API.md#delivery).
        404 if delivery => "NOT_FOUND",
        416 => "RANGE_NOT_SATISFIABLE",
        // A key's route: its key is unknown (or revoked), NOT_FOUND.
        404 if key_route => "NOT_FOUND",
        // An upload's route: its upload is unknown.
        404 if upload_route => "UPLOAD_NOT_FOUND",
        409 if upload_route => "UPLOAD_INCOMPLETE",
        410 => "UPLOAD_EXPIRED",
        400 => "INVALID_PARAMS",
        401 => "UNAUTHORIZED",
        403 => "FORBIDDEN",
        // A route's own 404 would be NOT_FOUND; every event here has a route, so an unknown asset.
        404 => "ASSET_NOT_FOUND",
        409 => "CONFLICT",
        413 => "PAYLOAD_TOO_LARGE",
        429 => "RATE_LIMITED",
        500 => "INTERNAL_ERROR",
        _ => return None,
    })
}

/// An event of a function on a schedule is the EventBridge event its schedule sends; `200`
/// declares an invocation that answers the function's report, which on a freshly seeded dev vault
/// removes nothing (the open upload and the sample are named, and nothing is an hour old).
async fn check_scheduled(name: &str, declared: &Declared, event: Value) -> Result<(), String> {
    if event["source"] != "aws.events" || event["detail-type"] != "Scheduled Event" {
        return Err(format!(
            "{name}: an event of {} is an EventBridge \"Scheduled Event\" from aws.events",
            declared.function
        ));
    }
    if declared.status != 200 {
        return Err(format!(
            "{name}: a scheduled function's event declares 200 (it answers its report)"
        ));
    }
    let (_dir, deps) = seeded().await;
    let report = invoke_scheduled(&deps, declared.function, event, "req-event")
        .await
        .map_err(|e| format!("{name}: {} failed: {e}", declared.function))?;
    for list in [
        "expired_uploads",
        "deleted",
        "orphans",
        "completed_uploads",
        "failed",
    ] {
        if report[list] != serde_json::json!([]) {
            return Err(format!(
                "{name}: {list} is not empty on a fresh store: {report}"
            ));
        }
    }
    Ok(())
}

fn events_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join("events")
}

/// Every `*.json` in `events/`, sorted by name.
fn event_files() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(events_dir())
        .expect("events/ exists")
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    files
}

fn file_name(path: &Path) -> String {
    path.file_name().unwrap().to_string_lossy().into_owned()
}

/// A fresh embedded store with the dev vault seeded.
async fn seeded() -> (tempfile::TempDir, Deps) {
    let dir = tempfile::tempdir().unwrap();
    let deps = Deps::embedded(dir.path()).await.unwrap();
    dev::seed_dev(&*deps.db, &deps.clock, &*deps.blobs)
        .await
        .unwrap();
    (dir, deps)
}

/// Replays one event file on `deps`.
async fn replay(deps: &Deps, path: &Path, function: &str) -> Reply {
    let text = std::fs::read_to_string(path).unwrap();
    let req = lambda_http::request::from_str(&text)
        .unwrap_or_else(|e| panic!("{}: not an event lambda_http reads: {e}", path.display()));
    dispatch(deps, function, req).await.into()
}

/// Checks one event file against its name; `Err` says what is wrong.
async fn check(path: &Path) -> Result<(), String> {
    let name = file_name(path);
    let declared = parse_name(&name)?;
    let text = std::fs::read_to_string(path).map_err(|e| format!("{name}: {e}"))?;
    let event: Value = serde_json::from_str(&text).map_err(|e| format!("{name}: not JSON: {e}"))?;
    if functions::find(declared.function).is_some_and(|f| f.schedule.is_some()) {
        return check_scheduled(&name, &declared, event).await;
    }

    // The event is one API Gateway would send to that function.
    let route = shared::routes::route_of(declared.function);
    let route_key = format!("{} {}", route.method, route.path);
    if event["version"] != "2.0" {
        return Err(format!(
            "{name}: version must be \"2.0\" (payload format 2.0)"
        ));
    }
    if event["routeKey"] != route_key.as_str()
        || event["requestContext"]["routeKey"] != route_key.as_str()
        || event["requestContext"]["http"]["method"] != route.method
    {
        return Err(format!(
            "{name}: the route must be {route_key:?}, which {} serves",
            declared.function
        ));
    }
    if event["pathParameters"]["vaultId"].as_str().is_none() {
        return Err(format!("{name}: pathParameters.vaultId is missing"));
    }

    let (_dir, deps) = seeded().await;
    let reply = replay(&deps, path, declared.function).await;
    let got = reply.status.as_u16();
    if got != declared.status {
        return Err(format!(
            "{name}: {} answered {got}, the name declares {}; body: {}",
            declared.function,
            declared.status,
            reply.snippet()
        ));
    }
    match (
        declared.status,
        code_for(declared.function, declared.status),
    ) {
        (204, _) => {
            if !reply.body.is_empty() {
                return Err(format!("{name}: 204 with a body: {}", reply.snippet()));
            }
        }
        // Delivery: the sample's bytes, or the range asked for.
        (200 | 206, _) if declared.function == "deliver" => {
            let want = match declared.status {
                200 => dev::DEV_ASSET_BYTES,
                _ => &dev::DEV_ASSET_BYTES[..5],
            };
            if reply.body != want
                || reply.header("etag") != Some("\"asset_01DEVDEVDEVDEVDEVDEV0ASSET\"")
            {
                return Err(format!(
                    "{name}: not the sample's bytes and ETag: {}",
                    reply.snippet()
                ));
            }
        }
        // The embedded default serves an asset's bytes.
        (200, _) if declared.function == "content" => {
            if reply.body != dev::DEV_ASSET_BYTES {
                return Err(format!(
                    "{name}: not the sample's bytes: {}",
                    reply.snippet()
                ));
            }
        }
        (200..=299, _) if matches!(declared.function, "uploads" | "receive") => {
            let body: Value = serde_json::from_slice(&reply.body)
                .map_err(|e| format!("{name}: the body is not JSON ({e}): {}", reply.snippet()))?;
            let ok = match declared.function {
                "uploads" => body["upload_id"]
                    .as_str()
                    .is_some_and(|id| id.starts_with("upload_")),
                _ => body == serde_json::json!({}),
            };
            if !ok {
                return Err(format!("{name}: unexpected body {body}"));
            }
        }
        // The sample's delivery URL: the dev vault delivers publicly, so it never expires.
        (200, _) if declared.function == "asset_url" => {
            let body: Value = serde_json::from_slice(&reply.body)
                .map_err(|e| format!("{name}: the body is not JSON ({e}): {}", reply.snippet()))?;
            let want = format!(
                "https://a1b2c3d4e5.execute-api.eu-west-1.amazonaws.com/d/{DEV_VAULT_ID}/docs/readme/main/hello.txt"
            );
            if body != serde_json::json!({ "url": want, "expires_at": null }) {
                return Err(format!("{name}: unexpected body {body}"));
            }
        }
        // The keys and vault routes answer keys and the vault, not assets.
        (200..=299, _)
            if matches!(
                declared.function,
                "keys_list" | "key_create" | "vault_get" | "vault_update" | "delivery_rotate"
            ) =>
        {
            let body: Value = serde_json::from_slice(&reply.body)
                .map_err(|e| format!("{name}: the body is not JSON ({e}): {}", reply.snippet()))?;
            let ok = match declared.function {
                "keys_list" => body["data"].as_array().is_some_and(|keys| {
                    keys.iter().any(|k| k["id"] == dev::DEV_SECRET_KEY_ID)
                        && keys.iter().all(|k| k.get("key").is_none())
                }),
                "key_create" => body["key"]
                    .as_str()
                    .is_some_and(|key| key.starts_with("sk_") && body["hint"] == key[..7]),
                _ => body["id"] == DEV_VAULT_ID,
            };
            if !ok {
                return Err(format!("{name}: unexpected body {body}"));
            }
        }
        (200..=299, _) => {
            let body: Value = serde_json::from_slice(&reply.body)
                .map_err(|e| format!("{name}: the body is not JSON ({e}): {}", reply.snippet()))?;
            let assets: Vec<&Value> = match body["data"].as_array() {
                Some(data) => data.iter().collect(),
                None => vec![&body],
            };
            if assets.is_empty() || assets.iter().any(|a| a["vault_id"] != DEV_VAULT_ID) {
                return Err(format!("{name}: expected dev vault assets: {body}"));
            }
        }
        (_, Some(code)) => {
            let body: Value = serde_json::from_slice(&reply.body)
                .map_err(|e| format!("{name}: the body is not JSON ({e}): {}", reply.snippet()))?;
            if body["error"]["code"] != code || body["error"]["status"] != declared.status {
                return Err(format!("{name}: expected the error code {code}: {body}"));
            }
        }
        (status, None) => {
            return Err(format!(
                "{name}: {status} is not a status the API answers (see docs/API.md#error-codes)"
            ));
        }
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_event_gets_the_status_its_name_declares() {
    let files = event_files();
    assert!(!files.is_empty(), "no events in {}", events_dir().display());
    let mut failures = Vec::new();
    let mut declared = Vec::new();
    for path in &files {
        match check(path).await {
            Ok(()) => declared.push(parse_name(&file_name(path)).unwrap()),
            Err(failure) => failures.push(failure),
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} events failed:\n{}",
        failures.len(),
        files.len(),
        failures.join("\n")
    );
    // Every function of the registry has at least one success sample, and one that serves
    // routes one error sample too (a scheduled function has no statuses to err with).
    for function in functions::names() {
        let mine = || declared.iter().filter(move |d| d.function == function);
        assert!(
            mine().any(|d| d.status < 300),
            "events/: no success event for {function} (functions.toml); add one to events/make.py"
        );
        let scheduled = functions::find(function).is_some_and(|f| f.schedule.is_some());
        assert!(
            scheduled || mine().any(|d| d.status >= 400),
            "events/: no error event for {function} (functions.toml); add one to events/make.py"
        );
    }
}

#[test]
fn names_follow_the_rule() {
    for good in [
        "upload.201.multipart.json",
        "get.404.unknown-asset.json",
        "list.400.limit-500.json",
    ] {
        assert!(parse_name(good).is_ok(), "{good}");
    }
    assert_eq!(
        parse_name("delete.204.sample.json").unwrap(),
        Declared {
            function: "delete",
            status: 204,
            case: "sample".to_owned()
        }
    );
    for bad in [
        "get.200.json",
        "get.200.sample.extra.json",
        "fetch.200.sample.json",
        "get.2000.sample.json",
        "get.20x.sample.json",
        "get.200.Sample.json",
        "get.200.-sample.json",
        "get.200.sample",
        "README.md",
    ] {
        assert!(parse_name(bad).is_err(), "{bad} should be refused");
    }
}

fn event(name: &str) -> PathBuf {
    let path = events_dir().join(name);
    assert!(path.exists(), "{}", path.display());
    path
}

async fn count(deps: &Deps, sql: &'static str) -> usize {
    let results = db::run(&*deps.db, vec![Stmt::new(sql, vec![])])
        .await
        .unwrap();
    results[0].rows.len()
}

/// The events change the dev vault (an upload, an update, a delete); seeding again undoes all of
/// it, so the events can be replayed in any order, each after a seed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seeding_again_undoes_what_the_events_did() {
    let (dir, deps) = seeded().await;
    let objects = dir.path().join("objects");
    let files = |dir: &Path| -> usize {
        fn walk(dir: &Path) -> usize {
            std::fs::read_dir(dir).map_or(0, |entries| {
                entries
                    .map(|e| e.unwrap().path())
                    .map(|p| if p.is_dir() { walk(&p) } else { 1 })
                    .sum()
            })
        }
        walk(dir)
    };
    assert_eq!(
        files(&objects),
        2,
        "the sample's object and the open upload's"
    );

    let updated = replay(&deps, &event("update.200.merge.json"), "update").await;
    let updated = updated.ok(200);
    assert_eq!(updated["id"], DEV_ASSET_ID);
    assert_ne!(updated["metadata"], r#"{"alt":"sample"}"#, "{updated}");
    let uploaded = replay(&deps, &event("upload.201.multipart.json"), "upload").await;
    let uploaded = uploaded.ok(201);
    assert_eq!(
        (uploaded["mime_type"].as_str(), uploaded["width"].as_u64()),
        (Some("image/png"), Some(3)),
        "the base64 multipart body arrived intact: {uploaded}"
    );
    assert_eq!(files(&objects), 3);
    let completed = replay(&deps, &event("complete.201.dev-upload.json"), "complete").await;
    assert_eq!(completed.ok(201)["id"], dev::DEV_UPLOAD_ASSET_ID);
    replay(&deps, &event("delete.204.sample.json"), "delete").await;
    replay(&deps, &event("get.200.sample.json"), "get")
        .await
        .error(404, "ASSET_NOT_FOUND");

    let seed = dev::seed_dev(&*deps.db, &deps.clock, &*deps.blobs)
        .await
        .unwrap();
    assert_eq!(
        seed.removed_assets, 2,
        "the uploaded asset and the completed upload's"
    );
    assert_eq!(seed.pending_objects, 0);
    assert_eq!(
        files(&objects),
        2,
        "only the sample's object and the open upload's are left"
    );
    assert_eq!(
        count(&deps, "SELECT 1 FROM uploads WHERE completed_at IS NULL").await,
        1,
        "the dev upload is open again"
    );
    replay(&deps, &event("complete.201.dev-upload.json"), "complete")
        .await
        .ok(201);
    assert_eq!(count(&deps, "SELECT 1 FROM pending_deletions").await, 0);
    assert_eq!(count(&deps, "SELECT 1 FROM assets").await, 2);
    replay(&deps, &event("delete.204.sample.json"), "delete").await;
    dev::seed_dev(&*deps.db, &deps.clock, &*deps.blobs)
        .await
        .unwrap();
    assert_eq!(count(&deps, "SELECT 1 FROM assets").await, 1);
    let listed = replay(&deps, &event("list.200.first-page.json"), "list")
        .await
        .ok(200);
    let data = listed["data"].as_array().unwrap();
    assert_eq!(data.len(), 1, "{listed}");
    let sample = replay(&deps, &event("get.200.sample.json"), "get")
        .await
        .ok(200);
    assert_eq!(sample, data[0]);
    assert_eq!(sample["id"], DEV_ASSET_ID);
    assert_eq!(
        sample["r2_key"],
        "vault_01DEVDEVDEVDEVDEVDEVDEVDEV/docs/readme/main/asset_01DEVDEVDEVDEVDEVDEV0ASSET_hello.txt"
    );
    assert_eq!(sample["filename"], "hello.txt");
    assert_eq!(sample["mime_type"], "text/plain");
    assert_eq!(sample["metadata"], r#"{"alt":"sample"}"#);
    assert_eq!(sample["tags"], r#"["sample"]"#);
    assert_eq!(sample["width"], Value::Null);
    assert_eq!(
        std::fs::read(objects.join(sample["r2_key"].as_str().unwrap())).unwrap(),
        dev::DEV_ASSET_BYTES
    );
}

/// seed_dev's SQL is D1's: the same reset runs through the D1 REST client and the R2 client
/// against the test kit's protocol-faithful servers (`imgbt dev seed` itself refuses Cloudflare;
/// this proves the SQL, not a way to seed D1).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seed_dev_sql_runs_on_d1() {
    let app = imgbt_tests::TestApp::on(imgbt_tests::Backend::Cloudflare).await;
    let deps = &app.deps;
    dev::seed_dev(&*deps.db, &deps.clock, &*deps.blobs)
        .await
        .unwrap();
    replay(deps, &event("upload.201.multipart.json"), "upload")
        .await
        .ok(201);
    replay(deps, &event("delete.204.sample.json"), "delete").await;
    let seed = dev::seed_dev(&*deps.db, &deps.clock, &*deps.blobs)
        .await
        .unwrap();
    assert_eq!((seed.removed_assets, seed.pending_objects), (1, 0));
    let sample = replay(deps, &event("get.200.sample.json"), "get")
        .await
        .ok(200);
    assert_eq!(sample["id"], DEV_ASSET_ID);
    assert_eq!(
        app.object_len(sample["r2_key"].as_str().unwrap()),
        Some(dev::DEV_ASSET_BYTES.len() as u64)
    );
    let listed = replay(deps, &event("list.200.first-page.json"), "list")
        .await
        .ok(200);
    assert_eq!(listed["data"].as_array().unwrap().len(), 1, "{listed}");
}
