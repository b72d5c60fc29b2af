// The rules of docs/API.md. Included once per backend by `../contract.rs`, where `app()` is
// defined.

use imgbt_tests::{
    Call, FaultyBlobs, FaultyDb, Form, TestApp, UPSTREAM_SECRET, fixture, is_api_time, is_ulid,
    oversized_upload,
};
use lambda_http::http::Method;
use serde_json::{Value, json};
use shared::Deps;
use shared::admin;
use shared::auth::KeyKind;
use shared::db::DbError;
use std::sync::Arc;
use std::sync::atomic::Ordering;

const RECORD_FIELDS: [&str; 15] = [
    "id",
    "vault_id",
    "partition",
    "collection",
    "channel",
    "filename",
    "r2_key",
    "size",
    "mime_type",
    "width",
    "height",
    "metadata",
    "tags",
    "created_at",
    "updated_at",
];

fn id(record: &Value) -> String {
    record["id"].as_str().expect("id is a string").to_owned()
}

/// A JSON-encoded string field of a record, decoded.
fn decoded(record: &Value, field: &str) -> Value {
    let text = record[field]
        .as_str()
        .unwrap_or_else(|| panic!("{field} is a string: {record}"));
    serde_json::from_str(text).unwrap_or_else(|e| panic!("{field} is JSON text ({e}): {text}"))
}

/// Every endpoint but the direct upload's (tests/tests/direct), each with a valid request and no
/// key; `asset` is the id the asset routes use.
fn every_endpoint<'a>(app: &'a TestApp, deps: &'a Deps, asset: &str) -> Vec<Call<'a>> {
    vec![
        app.call_on(deps, "upload")
            .form(&Form::tiny("p", "c", "ch", "new.txt")),
        app.call_on(deps, "list"),
        app.call_on(deps, "get").asset(asset),
        app.call_on(deps, "update")
            .asset(asset)
            .json(&json!({ "tags": ["changed"] })),
        app.call_on(deps, "delete").asset(asset),
        app.call_on(deps, "keys_list"),
        app.call_on(deps, "key_create")
            .json(&json!({ "label": "new", "type": "secret" })),
        // Refused before the key is looked for, whether or not it exists.
        app.call_on(deps, "key_revoke")
            .key_id("key_01JD0000000000000000000000"),
        app.call_on(deps, "vault_get"),
        app.call_on(deps, "vault_update")
            .json(&json!({ "name": "renamed" })),
        app.call_on(deps, "asset_url").asset(asset),
        app.call_on(deps, "delivery_rotate"),
    ]
}

/// What a client or the disk could observe: every record of both vaults and every object file.
async fn state(app: &TestApp) -> (Value, Value, Vec<std::path::PathBuf>) {
    let mine = app.list(app.sk(), "limit=200").await.ok(200);
    let theirs = app
        .call("list")
        .vault(&app.other.vault_id)
        .key(&app.other.secret_key)
        .query("limit=200")
        .send()
        .await
        .ok(200);
    let mut files = app.object_files();
    files.sort();
    (mine["data"].clone(), theirs["data"].clone(), files)
}

async fn assert_nothing_stored(app: &TestApp) {
    let page = app.list(app.sk(), "").await.ok(200);
    assert_eq!(page["data"], json!([]), "no record was stored");
    assert_eq!(
        app.object_files(),
        Vec::<std::path::PathBuf>::new(),
        "no object was stored"
    );
}

// ---------------------------------------------------------------------------------------------
// Authentication

#[tokio::test]
async fn missing_authorization_is_401_with_www_authenticate_on_every_endpoint() {
    let app = app().await;
    let asset = id(&app.create(&Form::standard()).await);
    let before = state(&app).await;
    for call in every_endpoint(&app, &app.deps, &asset) {
        call.send().await.error(401, "UNAUTHORIZED");
    }
    assert_eq!(
        state(&app).await,
        before,
        "a refused request changes nothing"
    );
}

#[tokio::test]
async fn wrong_scheme_is_401_on_every_endpoint() {
    let app = app().await;
    let asset = id(&app.create(&Form::standard()).await);
    let before = state(&app).await;
    let sk = app.sk().to_owned();
    for value in [
        format!("Basic {sk}"),
        format!("Token {sk}"),
        sk.clone(),
        "Bearer".to_owned(),
        "Bearer ".to_owned(),
    ] {
        for call in every_endpoint(&app, &app.deps, &asset) {
            call.header("authorization", &value)
                .send()
                .await
                .error(401, "UNAUTHORIZED");
        }
    }
    assert_eq!(state(&app).await, before);
}

#[tokio::test]
async fn unknown_key_is_401_on_every_endpoint() {
    let app = app().await;
    let asset = id(&app.create(&Form::standard()).await);
    let before = state(&app).await;
    let unknown_sk = format!("sk_{}", "0123456789abcdef".repeat(3));
    let unknown_pk = format!("pk_{}", "fedcba9876543210".repeat(3));
    for key in [
        unknown_sk.as_str(),
        unknown_pk.as_str(),
        "sk_123",
        "not-a-key",
    ] {
        for call in every_endpoint(&app, &app.deps, &asset) {
            call.key(key).send().await.error(401, "UNAUTHORIZED");
        }
    }
    assert_eq!(state(&app).await, before);
}

#[tokio::test]
async fn revoked_key_is_401_on_every_endpoint() {
    let app = app().await;
    let asset = id(&app.create(&Form::standard()).await);
    let (db, clock) = (&*app.deps.db, &app.deps.clock);
    let vault = &app.vault.vault_id;
    let secret = admin::create_key(db, clock, vault, KeyKind::Secret, "temp")
        .await
        .unwrap()
        .unwrap();
    let public = admin::create_key(db, clock, vault, KeyKind::Public, "temp")
        .await
        .unwrap()
        .unwrap();
    app.get(&secret.key, &asset).await.ok(200);
    app.get(&public.key, &asset).await.ok(200);
    assert!(
        admin::revoke_key(db, clock, vault, &secret.key_id)
            .await
            .unwrap()
    );
    assert!(
        admin::revoke_key(db, clock, vault, &public.key_id)
            .await
            .unwrap()
    );
    let before = state(&app).await;
    for key in [&secret.key, &public.key] {
        for call in every_endpoint(&app, &app.deps, &asset) {
            call.key(key).send().await.error(401, "UNAUTHORIZED");
        }
    }
    assert_eq!(state(&app).await, before);
}

#[tokio::test]
async fn pk_key_can_list_and_get() {
    let app = app().await;
    let record = app.create(&Form::standard()).await;
    let page = app.list(app.pk(), "").await.ok(200);
    assert_eq!(page["data"], json!([record.clone()]));
    assert_eq!(app.get(app.pk(), &id(&record)).await.ok(200), record);
}

#[tokio::test]
async fn pk_key_cannot_upload() {
    let app = app().await;
    app.upload(app.pk(), &Form::standard())
        .await
        .error(403, "FORBIDDEN");
    assert_nothing_stored(&app).await;
}

#[tokio::test]
async fn pk_key_cannot_patch() {
    let app = app().await;
    let record = app
        .create(&Form::standard().field("metadata", r#"{"a":1}"#))
        .await;
    let reply = app
        .patch(
            app.pk(),
            &id(&record),
            &json!({ "metadata": { "a": 2 }, "tags": ["x"] }),
        )
        .await;
    reply.error(403, "FORBIDDEN");
    assert_eq!(
        app.get(app.sk(), &id(&record)).await.ok(200),
        record,
        "unchanged"
    );
}

#[tokio::test]
async fn pk_key_cannot_delete() {
    let app = app().await;
    let record = app.create(&Form::standard()).await;
    app.delete(app.pk(), &id(&record))
        .await
        .error(403, "FORBIDDEN");
    assert_eq!(app.get(app.sk(), &id(&record)).await.ok(200), record);
    let key = record["r2_key"].as_str().unwrap();
    assert_eq!(
        app.read_object(key),
        Some(fixture("tiny.png")),
        "the object stays"
    );
}

#[tokio::test]
async fn another_vaults_key_is_403_on_every_endpoint() {
    let app = app().await;
    let asset = id(&app.create(&Form::standard()).await);
    let before = state(&app).await;
    for key in [&app.other.secret_key, &app.other.public_key] {
        for call in every_endpoint(&app, &app.deps, &asset) {
            call.key(key).send().await.error(403, "FORBIDDEN");
        }
    }
    assert_eq!(state(&app).await, before);
}

#[tokio::test]
async fn a_key_on_a_path_of_a_vault_that_does_not_exist_is_403() {
    let app = app().await;
    let asset = id(&app.create(&Form::standard()).await);
    let before = state(&app).await;
    for vault in ["vault_01JD0000000000000000000000", "nope"] {
        for call in every_endpoint(&app, &app.deps, &asset) {
            call.vault(vault)
                .key(app.sk())
                .send()
                .await
                .error(403, "FORBIDDEN");
        }
    }
    assert_eq!(state(&app).await, before);
}

#[tokio::test]
async fn another_vaults_asset_id_is_404() {
    let app = app().await;
    let record = app.create(&Form::standard()).await;
    let (vault, key) = (&app.other.vault_id, &app.other.secret_key);
    let asset = id(&record);
    let calls = [
        app.call("get"),
        app.call("update").json(&json!({ "tags": ["stolen"] })),
        app.call("delete"),
    ];
    for call in calls {
        call.vault(vault)
            .key(key)
            .asset(&asset)
            .send()
            .await
            .error(404, "ASSET_NOT_FOUND");
    }
    assert_eq!(app.get(app.sk(), &asset).await.ok(200), record, "untouched");
    assert!(
        app.read_object(record["r2_key"].as_str().unwrap())
            .is_some()
    );
}

#[tokio::test]
async fn authentication_is_checked_before_the_body() {
    let app = app().await;
    let asset = id(&app.create(&Form::standard()).await);
    let unknown = format!("sk_{}", "ab".repeat(24));
    fn bad_upload(call: Call<'_>) -> Call<'_> {
        call.body(Some("application/json"), "{not multipart")
    }
    fn bad_patch(call: Call<'_>) -> Call<'_> {
        call.body(Some("application/json"), "[1, 2")
    }

    bad_upload(app.call("upload"))
        .send()
        .await
        .error(401, "UNAUTHORIZED");
    bad_upload(app.call("upload").key(&unknown))
        .send()
        .await
        .error(401, "UNAUTHORIZED");
    bad_patch(app.call("update").asset(&asset))
        .send()
        .await
        .error(401, "UNAUTHORIZED");
    bad_patch(app.call("update").asset(&asset).key(&unknown))
        .send()
        .await
        .error(401, "UNAUTHORIZED");
    app.call("list")
        .query("limit=abc")
        .send()
        .await
        .error(401, "UNAUTHORIZED");

    bad_upload(app.call("upload").key(app.pk()))
        .send()
        .await
        .error(403, "FORBIDDEN");
    bad_patch(app.call("update").asset(&asset).key(app.pk()))
        .send()
        .await
        .error(403, "FORBIDDEN");
    bad_patch(app.call("update").asset(&asset).key(&app.other.secret_key))
        .send()
        .await
        .error(403, "FORBIDDEN");
}

#[tokio::test]
async fn keys_are_random_and_stored_only_as_a_hash() {
    let app = app().await;
    let keys = [
        (&app.vault.public_key, "pk_"),
        (&app.vault.secret_key, "sk_"),
        (&app.other.public_key, "pk_"),
        (&app.other.secret_key, "sk_"),
    ];
    for (key, prefix) in keys {
        let random = key
            .strip_prefix(prefix)
            .unwrap_or_else(|| panic!("{key} starts with {prefix}"));
        // 48 hex digits: 192 bits, at least the 128 that docs/API.md#key-management promises.
        assert_eq!(random.len(), 48, "{key}");
        assert!(random.bytes().all(|b| b.is_ascii_hexdigit()), "{key}");
    }
    let mut distinct: Vec<&String> = keys.iter().map(|(k, _)| *k).collect();
    distinct.sort();
    distinct.dedup();
    assert_eq!(distinct.len(), 4, "every key is different");

    let rows = app.query("SELECT * FROM api_keys").await.rows;
    assert_eq!(rows.len(), 4);
    let stored = app.database_bytes();
    let hint = &app.vault.secret_key[..7];
    assert!(
        stored.windows(hint.len()).any(|w| w == hint.as_bytes()),
        "the store's bytes are readable here (the key hint is in them)"
    );
    for (key, prefix) in keys {
        let random = &key[prefix.len()..];
        for row in &rows {
            for value in row.values() {
                let text = value.to_string();
                assert!(
                    !text.contains(random),
                    "api_keys holds the key itself: {text}"
                );
            }
        }
        let found = stored.windows(random.len()).any(|w| w == random.as_bytes());
        assert!(!found, "the store holds the key {key}");
    }
}

// ---------------------------------------------------------------------------------------------
// Errors and routes

#[tokio::test]
async fn unknown_asset_id_is_404_asset_not_found() {
    let app = app().await;
    app.create(&Form::standard()).await;
    let absent = "asset_01JD0000000000000000000000";
    app.get(app.sk(), absent)
        .await
        .error(404, "ASSET_NOT_FOUND");
    app.patch(app.sk(), absent, &json!({ "tags": ["x"] }))
        .await
        .error(404, "ASSET_NOT_FOUND");
    app.delete(app.sk(), absent)
        .await
        .error(404, "ASSET_NOT_FOUND");
}

#[tokio::test]
async fn malformed_asset_id_is_404_asset_not_found() {
    let app = app().await;
    let record = app.create(&Form::standard()).await;
    let ulid = &id(&record)["asset_".len()..];
    for bad in [
        "nope".to_owned(),
        "asset_".to_owned(),
        "asset_123".to_owned(),
        format!("vault_{ulid}"),
        ulid.to_owned(),
        format!("{}x", id(&record)),
    ] {
        app.get(app.sk(), &bad).await.error(404, "ASSET_NOT_FOUND");
        app.patch(app.sk(), &bad, &json!({ "tags": ["x"] }))
            .await
            .error(404, "ASSET_NOT_FOUND");
        app.delete(app.sk(), &bad)
            .await
            .error(404, "ASSET_NOT_FOUND");
    }
    assert_eq!(app.get(app.sk(), &id(&record)).await.ok(200), record);
}

#[tokio::test]
async fn a_request_for_no_route_is_404_not_found() {
    let app = app().await;
    let asset = id(&app.create(&Form::standard()).await);
    let before = state(&app).await;
    let sk = app.sk();
    let calls = [
        app.call("upload").method(Method::GET),
        app.call("upload").method(Method::PUT),
        app.call("list").method(Method::DELETE),
        app.call("get").method(Method::POST).asset(&asset),
        app.call("update").method(Method::PUT).asset(&asset),
        app.call("update").method(Method::POST).asset(&asset),
        app.call("delete").method(Method::GET).asset(&asset),
        // The right method on the other path shape.
        app.call("list").asset(&asset),
        app.call("get"),
        app.call("delete"),
        app.call("get").without_path_parameters(),
        app.call("list").asset(&asset).without_path_parameters(),
    ];
    for call in calls {
        let what = format!("{} {}", call.function(), call.path());
        let reply = call.key(sk).send().await;
        assert_eq!(reply.status.as_u16(), 404, "{what}: {}", reply.snippet());
        reply.error(404, "NOT_FOUND");
    }
    assert_eq!(state(&app).await, before);
}

#[tokio::test]
async fn a_store_refusing_for_rate_is_429_rate_limited() {
    let app = app().await;
    let asset = id(&app.create(&Form::standard()).await);
    let refusing = FaultyDb {
        make: || DbError::RateLimited("429 Too Many Requests, retry-after: 30".into()),
    };
    let deps = Deps::new(Arc::new(refusing), app.deps.blobs.clone());
    for call in every_endpoint(&app, &deps, &asset) {
        let function = call.function();
        let reply = call.key(app.sk()).send().await;
        let message = reply.error(429, "RATE_LIMITED");
        assert!(
            !message.contains("retry-after: 30"),
            "{function}: {message}"
        );
    }
}

#[tokio::test]
async fn internal_errors_are_500_and_never_leak_sql_keys_or_upstream_bodies() {
    let app = app().await;
    let asset = id(&app.create(&Form::standard()).await);
    let failing = FaultyDb {
        make: || {
            DbError::Other(format!(
                "SQLITE_CORRUPT: SELECT key_hash FROM api_keys WHERE key_hash = 'sk_0123'; \
                 thread 'main' panicked at src/lib.rs:1:1, stack backtrace: {UPSTREAM_SECRET}"
            ))
        },
    };
    let deps = Deps::new(Arc::new(failing), app.deps.blobs.clone());
    for call in every_endpoint(&app, &deps, &asset) {
        let function = call.function();
        let reply = call.key(app.sk()).send().await;
        reply.error(500, "INTERNAL_ERROR");
        let body = reply.text();
        for secret in [
            "SELECT",
            "api_keys",
            "sk_0123",
            "SQLITE",
            "panicked",
            "backtrace",
            "src/lib.rs",
            UPSTREAM_SECRET,
            app.sk(),
        ] {
            assert!(
                !body.contains(secret),
                "{function} leaks {secret:?}: {body}"
            );
        }
    }
}

#[tokio::test]
async fn every_success_is_json_and_a_delete_is_204_with_an_empty_body() {
    let app = app().await;
    let record = app.upload(app.sk(), &Form::standard()).await.ok(201);
    let asset = id(&record);
    app.list(app.pk(), "").await.ok(200);
    app.get(app.pk(), &asset).await.ok(200);
    app.patch(app.sk(), &asset, &json!({ "tags": ["a"] }))
        .await
        .ok(200);
    let reply = app.delete(app.sk(), &asset).await;
    assert_eq!(reply.status.as_u16(), 204, "{}", reply.snippet());
    assert!(
        reply.body.is_empty(),
        "204 has an empty body: {:?}",
        reply.snippet()
    );
}

#[tokio::test]
async fn handlers_find_their_ids_in_the_raw_path_without_path_parameters() {
    let app = app().await;
    let sk = app.sk();
    let record = app
        .call("upload")
        .without_path_parameters()
        .key(sk)
        .form(&Form::standard())
        .send()
        .await
        .ok(201);
    assert_eq!(record["vault_id"], app.vault.vault_id.as_str());
    let asset = id(&record);
    let page = app
        .call("list")
        .without_path_parameters()
        .key(sk)
        .query("limit=7")
        .send()
        .await
        .ok(200);
    assert_eq!(page["data"], json!([record.clone()]));
    let got = app
        .call("get")
        .without_path_parameters()
        .asset(&asset)
        .key(sk);
    assert_eq!(got.send().await.ok(200), record);
    let patched = app
        .call("update")
        .without_path_parameters()
        .asset(&asset)
        .key(sk)
        .json(&json!({ "tags": ["raw"] }))
        .send()
        .await
        .ok(200);
    assert_eq!(patched["tags"], r#"["raw"]"#);
    let reply = app
        .call("delete")
        .without_path_parameters()
        .asset(&asset)
        .key(sk)
        .send()
        .await;
    assert_eq!(reply.status.as_u16(), 204, "{}", reply.snippet());
    app.get(sk, &asset).await.error(404, "ASSET_NOT_FOUND");
    // The raw path decides the vault: another vault's path is another vault's.
    app.call("get")
        .without_path_parameters()
        .vault(&app.other.vault_id)
        .asset(&asset)
        .key(sk)
        .send()
        .await
        .error(403, "FORBIDDEN");
}

// ---------------------------------------------------------------------------------------------
// The asset record

#[tokio::test]
async fn upload_returns_201_and_the_full_record() {
    let app = app().await;
    let png = fixture("tiny.png");
    let record = app.create(&Form::standard()).await;
    let fields: Vec<&str> = record
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    let mut expected = RECORD_FIELDS.to_vec();
    expected.sort_unstable();
    let mut got = fields.clone();
    got.sort_unstable();
    assert_eq!(
        got, expected,
        "exactly the 15 fields of docs/API.md#the-asset-record"
    );

    let asset = id(&record);
    let vault = &app.vault.vault_id;
    assert!(asset.strip_prefix("asset_").is_some_and(is_ulid), "{asset}");
    assert!(vault.strip_prefix("vault_").is_some_and(is_ulid), "{vault}");
    assert_eq!(record["vault_id"], vault.as_str());
    assert_eq!(record["partition"], "marketing");
    assert_eq!(record["collection"], "blog");
    assert_eq!(record["channel"], "hero-images");
    assert_eq!(record["filename"], "photo.png");
    assert_eq!(
        record["r2_key"],
        format!("{vault}/marketing/blog/hero-images/{asset}_photo.png")
    );
    assert_eq!(record["size"], png.len());
    assert_eq!(record["mime_type"], "image/png");
    assert_eq!(record["width"], 3);
    assert_eq!(record["height"], 2);
    assert_eq!(record["metadata"], "{}");
    assert_eq!(record["tags"], "[]");
    for time in ["created_at", "updated_at"] {
        let text = record[time]
            .as_str()
            .unwrap_or_else(|| panic!("{time} is a string"));
        assert!(
            is_api_time(text),
            "{time} is RFC 3339 UTC with milliseconds and Z: {text}"
        );
    }
}

#[tokio::test]
async fn get_returns_the_record_as_upload_returned_it() {
    let app = app().await;
    let record = app
        .create(
            &Form::standard()
                .field("metadata", r#"{"alt":"Hero"}"#)
                .field("tags", r#"["hero"]"#),
        )
        .await;
    assert_eq!(app.get(app.sk(), &id(&record)).await.ok(200), record);
    assert_eq!(app.get(app.pk(), &id(&record)).await.ok(200), record);
}

#[tokio::test]
async fn uploaded_bytes_are_stored_under_r2_key() {
    let app = app().await;
    for name in ["tiny.png", "tiny.jpg", "notes.txt"] {
        let bytes = fixture(name);
        let record = app
            .create(&Form::asset(
                "p",
                "c",
                "ch",
                name,
                "application/octet-stream",
                &bytes,
            ))
            .await;
        assert_eq!(record["size"], bytes.len());
        assert_eq!(
            app.read_object(record["r2_key"].as_str().unwrap()),
            Some(bytes)
        );
    }
    assert_eq!(app.object_files().len(), 3);
}

#[tokio::test]
async fn metadata_and_tags_are_returned_as_json_strings() {
    let app = app().await;
    let record = app
        .create(
            &Form::standard()
                .field("metadata", r#"{ "alt": "Hero", "size": { "w": 3 } }"#)
                .field("tags", r#"["hero", "blog"]"#),
        )
        .await;
    assert_eq!(
        decoded(&record, "metadata"),
        json!({ "alt": "Hero", "size": { "w": 3 } })
    );
    assert_eq!(decoded(&record, "tags"), json!(["hero", "blog"]));
    let listed = app.list(app.pk(), "").await.ok(200);
    assert!(listed["data"][0]["metadata"].is_string());
    assert!(listed["data"][0]["tags"].is_string());
}

#[tokio::test]
async fn width_and_height_come_from_each_image_header_and_are_null_otherwise() {
    let app = app().await;
    let cases = [
        ("tiny.png", "image/png", json!(3), json!(2)),
        ("tiny.jpg", "image/jpeg", json!(5), json!(4)),
        ("tiny.gif", "image/gif", json!(7), json!(6)),
        ("tiny.webp", "image/webp", json!(9), json!(8)),
        ("notes.txt", "text/plain", Value::Null, Value::Null),
    ];
    for (name, mime, width, height) in cases {
        // No declared type: what the record says comes from the bytes (and, for text, the name).
        let form = Form::new()
            .field("partition", "p")
            .field("collection", "c")
            .field("channel", "ch")
            .file_part("file", Some(name), None, &fixture(name));
        let record = app.create(&form).await;
        assert_eq!(record["mime_type"], mime, "{name}");
        assert_eq!(record["width"], width, "{name}");
        assert_eq!(record["height"], height, "{name}");
    }
}

#[tokio::test]
async fn mime_type_comes_from_magic_bytes_before_the_declared_type_and_extension() {
    let app = app().await;
    let record = app
        .create(&Form::asset(
            "p",
            "c",
            "ch",
            "notes.txt",
            "text/plain",
            &fixture("tiny.gif"),
        ))
        .await;
    assert_eq!(record["mime_type"], "image/gif");
    assert_eq!(
        (record["width"].clone(), record["height"].clone()),
        (json!(7), json!(6))
    );
}

#[tokio::test]
async fn mime_type_falls_back_to_declared_then_extension_then_octet_stream() {
    let app = app().await;
    let text = fixture("notes.txt");
    let upload = |name: &str, declared: Option<&str>| {
        Form::new()
            .field("partition", "p")
            .field("collection", "c")
            .field("channel", "ch")
            .file_part("file", Some(name), declared, &text)
    };
    let cases = [
        (upload("a.bin", Some("text/markdown")), "text/markdown"),
        (
            upload("b.txt", Some("text/markdown; charset=utf-8")),
            "text/markdown",
        ),
        (upload("c.txt", None), "text/plain"),
        (
            upload("d.txt", Some("application/octet-stream")),
            "text/plain",
        ),
        (upload("e.css", None), "text/css"),
        (upload("f", None), "application/octet-stream"),
        (
            upload("g", Some("application/octet-stream")),
            "application/octet-stream",
        ),
    ];
    for (form, mime) in cases {
        let record = app.create(&form).await;
        assert_eq!(record["mime_type"], mime, "{}", record["filename"]);
        assert_eq!(record["width"], Value::Null);
    }
}

// ---------------------------------------------------------------------------------------------
// Upload: fields

const SEGMENTS: [&str; 3] = ["partition", "collection", "channel"];

#[tokio::test]
async fn path_components_of_1_and_64_characters_are_accepted() {
    let app = app().await;
    let long = "a".repeat(64);
    for (i, field) in SEGMENTS.iter().enumerate() {
        for value in ["a", "0", long.as_str(), "a-b", "x--9"] {
            let form = Form::standard()
                .set(field, value)
                .set("filename", &format!("{i}-{value}.png"));
            let record = app.create(&form).await;
            assert_eq!(record[*field], value);
        }
    }
}

#[tokio::test]
async fn invalid_path_components_are_400_naming_the_field() {
    let app = app().await;
    let too_long = "a".repeat(65);
    for field in SEGMENTS {
        for value in [
            too_long.as_str(),
            "Blog",
            "BLOG",
            "-a",
            "a-",
            "-",
            "",
            "a_b",
            "a b",
            "a/b",
            "é",
        ] {
            let reply = app
                .upload(app.sk(), &Form::standard().set(field, value))
                .await;
            let message = reply.invalid(field);
            for other in SEGMENTS.iter().filter(|f| **f != field) {
                assert!(!message.starts_with(other), "{field}={value:?}: {message}");
            }
        }
    }
    assert_nothing_stored(&app).await;
}

#[tokio::test]
async fn the_filename_field_overrides_the_uploaded_name() {
    let app = app().await;
    let record = app
        .create(&Form::standard().field("filename", "override.png"))
        .await;
    assert_eq!(record["filename"], "override.png");
    assert!(
        record["r2_key"]
            .as_str()
            .unwrap()
            .ends_with(&format!("/{}_override.png", id(&record)))
    );
}

#[tokio::test]
async fn the_uploaded_name_is_reduced_to_its_last_path_segment() {
    let app = app().await;
    let png = fixture("tiny.png");
    for (sent, kept) in [
        ("C:\\x\\a.jpg", "a.jpg"),
        ("/tmp/x/b.png", "b.png"),
        ("..\\..\\c.gif", "c.gif"),
        ("d/e\\f.webp", "f.webp"),
    ] {
        let record = app
            .create(&Form::asset("p", "c", "ch", sent, "image/png", &png))
            .await;
        assert_eq!(record["filename"], kept, "{sent}");
        let vault = &app.vault.vault_id;
        assert_eq!(
            record["r2_key"],
            format!("{vault}/p/c/ch/{}_{kept}", id(&record))
        );
    }
}

#[tokio::test]
async fn unsafe_filenames_are_400() {
    let app = app().await;
    let too_long = "a".repeat(256);
    let too_long_utf8 = "é".repeat(128);
    for name in [
        ".",
        "..",
        "a/b",
        "a\\b",
        "/",
        "a\u{1}b",
        "a\u{7f}b",
        "a\tb",
        "",
        too_long.as_str(),
        too_long_utf8.as_str(),
    ] {
        app.upload(app.sk(), &Form::standard().field("filename", name))
            .await
            .invalid("filename");
    }
    let png = fixture("tiny.png");
    for uploaded in ["dir/..", "x\\..", "dir/", "C:\\x\\", "."] {
        app.upload(
            app.sk(),
            &Form::asset("p", "c", "ch", uploaded, "image/png", &png),
        )
        .await
        .invalid("filename");
    }
    // No override and no uploaded name: there is no filename at all.
    let nameless = Form::new()
        .field("partition", "p")
        .field("collection", "c")
        .field("channel", "ch")
        .file_part("file", None, Some("image/png"), &png);
    app.upload(app.sk(), &nameless).await.invalid("filename");
    assert_nothing_stored(&app).await;
}

#[tokio::test]
async fn filenames_up_to_255_bytes_of_utf8_are_accepted() {
    let app = app().await;
    let longest = format!("{}.png", "a".repeat(251));
    let longest_utf8 = format!("{}a", "é".repeat(127));
    let unicode = "фото 1 (copy).png";
    for name in ["a", "...", unicode, longest.as_str(), longest_utf8.as_str()] {
        let reply = app
            .upload(app.sk(), &Form::standard().field("filename", name))
            .await;
        let len = name.len();
        assert_eq!(
            reply.status.as_u16(),
            201,
            "a {len}-byte filename: {}",
            reply.snippet()
        );
        let record = reply.ok(201);
        assert_eq!(record["filename"], name);
        let stored = app.read_object(record["r2_key"].as_str().unwrap());
        assert_eq!(stored, Some(fixture("tiny.png")), "{name}");
    }
}

#[tokio::test]
async fn metadata_must_be_a_json_object() {
    let app = app().await;
    for bad in ["[]", "\"x\"", "1", "null", "true", "{", "not json", ""] {
        app.upload(app.sk(), &Form::standard().field("metadata", bad))
            .await
            .invalid("metadata");
    }
    assert_nothing_stored(&app).await;
}

/// Compact JSON `{"k":"xxx…"}` of exactly `bytes` bytes.
fn metadata_of(bytes: usize) -> String {
    format!(r#"{{"k":"{}"}}"#, "x".repeat(bytes - 8))
}

#[tokio::test]
async fn metadata_over_16_kib_is_400() {
    let app = app().await;
    app.upload(
        app.sk(),
        &Form::standard().field("metadata", &metadata_of(16 * 1024 + 1)),
    )
    .await
    .invalid("metadata");
    assert_nothing_stored(&app).await;
    let fits = metadata_of(16 * 1024);
    let record = app.create(&Form::standard().field("metadata", &fits)).await;
    assert_eq!(record["metadata"], fits.as_str());
}

#[tokio::test]
async fn tags_must_be_an_array_of_strings() {
    let app = app().await;
    for bad in [
        "{}",
        "\"a\"",
        "[1]",
        "[\"a\",2]",
        "[null]",
        "[[\"a\"]]",
        "[{}]",
        "nope",
        "",
        "null",
    ] {
        app.upload(app.sk(), &Form::standard().field("tags", bad))
            .await
            .invalid("tags");
    }
    assert_nothing_stored(&app).await;
}

fn tags_json(tags: &[String]) -> String {
    serde_json::to_string(tags).unwrap()
}

#[tokio::test]
async fn tag_limits_are_64_tags_of_1_to_64_characters() {
    let app = app().await;
    let distinct = |n: usize| (0..n).map(|i| format!("t{i}")).collect::<Vec<_>>();
    for bad in [
        distinct(65),
        vec![String::new()],
        vec!["x".repeat(65)],
        vec!["ok".into(), "é".repeat(65)],
    ] {
        app.upload(app.sk(), &Form::standard().field("tags", &tags_json(&bad)))
            .await
            .invalid("tags");
    }
    assert_nothing_stored(&app).await;

    let max = distinct(64);
    let record = app
        .create(
            &Form::standard()
                .set("filename", "a.png")
                .field("tags", &tags_json(&max)),
        )
        .await;
    assert_eq!(decoded(&record, "tags"), json!(max));
    let edges = vec!["x".to_owned(), "y".repeat(64), "é".repeat(64)];
    let record = app
        .create(
            &Form::standard()
                .set("filename", "b.png")
                .field("tags", &tags_json(&edges)),
        )
        .await;
    assert_eq!(decoded(&record, "tags"), json!(edges));
}

#[tokio::test]
async fn the_tag_limit_counts_tags_after_repeats_are_removed() {
    let app = app().await;
    let mut tags: Vec<String> = (0..64).map(|i| format!("t{i}")).collect();
    tags.push("t0".into());
    tags.push("t63".into());
    let record = app
        .create(&Form::standard().field("tags", &tags_json(&tags)))
        .await;
    assert_eq!(decoded(&record, "tags"), json!(tags[..64]));
}

#[tokio::test]
async fn repeated_tags_are_kept_once_in_first_order() {
    let app = app().await;
    let record = app
        .create(&Form::standard().field("tags", r#"["b","a","b","c","a"]"#))
        .await;
    assert_eq!(record["tags"], r#"["b","a","c"]"#);
}

#[tokio::test]
async fn a_field_sent_twice_is_400() {
    let app = app().await;
    let png = fixture("tiny.png");
    let twice = [
        (
            "partition",
            Form::standard().field("partition", "marketing"),
        ),
        ("collection", Form::standard().field("collection", "other")),
        ("channel", Form::standard().field("channel", "hero-images")),
        (
            "filename",
            Form::standard()
                .field("filename", "a.png")
                .field("filename", "b.png"),
        ),
        (
            "metadata",
            Form::standard()
                .field("metadata", "{}")
                .field("metadata", "{}"),
        ),
        (
            "tags",
            Form::standard().field("tags", "[]").field("tags", "[]"),
        ),
        (
            "file",
            Form::standard().file("second.png", "image/png", &png),
        ),
    ];
    for (field, form) in twice {
        app.upload(app.sk(), &form).await.invalid(field);
    }
    assert_nothing_stored(&app).await;
}

#[tokio::test]
async fn a_missing_required_field_is_400_naming_it() {
    let app = app().await;
    for field in ["partition", "collection", "channel", "file"] {
        app.upload(app.sk(), &Form::standard().without(field))
            .await
            .invalid(field);
    }
    assert_nothing_stored(&app).await;
}

#[tokio::test]
async fn an_unknown_field_is_400() {
    let app = app().await;
    app.upload(app.sk(), &Form::standard().field("colour", "red"))
        .await
        .invalid("colour");
    assert_nothing_stored(&app).await;
}

#[tokio::test]
async fn a_body_that_is_not_multipart_is_400() {
    let app = app().await;
    let form = Form::standard();
    let mut truncated = form.to_bytes();
    truncated.truncate(truncated.len() / 2);
    let wrong_boundary = form.content_type().replace("boundary=", "boundary=other");
    let cases: Vec<(Option<String>, Vec<u8>)> = vec![
        (
            Some("application/json".into()),
            br#"{"partition":"p"}"#.to_vec(),
        ),
        (Some("text/plain".into()), b"hello".to_vec()),
        (
            Some("application/x-www-form-urlencoded".into()),
            b"partition=p&collection=c".to_vec(),
        ),
        (Some("multipart/form-data".into()), form.to_bytes()),
        (Some(wrong_boundary), form.to_bytes()),
        (Some(form.content_type()), truncated),
        (Some(form.content_type()), Vec::new()),
        (None, form.to_bytes()),
    ];
    for (content_type, body) in cases {
        let reply = app
            .call("upload")
            .key(app.sk())
            .body(content_type.as_deref(), body)
            .send()
            .await;
        reply.error(400, "INVALID_PARAMS");
    }
    assert_nothing_stored(&app).await;
}

#[tokio::test]
async fn the_same_filename_in_a_channel_is_409_and_leaves_nothing_behind() {
    let app = app().await;
    let first = app.create(&Form::standard()).await;
    let before = state(&app).await;
    let jpg = fixture("tiny.jpg");
    let again = [
        Form::standard(),
        Form::asset(
            "marketing",
            "blog",
            "hero-images",
            "photo.png",
            "image/jpeg",
            &jpg,
        ),
        Form::asset(
            "marketing",
            "blog",
            "hero-images",
            "x.jpg",
            "image/jpeg",
            &jpg,
        )
        .field("filename", "photo.png"),
        Form::asset(
            "marketing",
            "blog",
            "hero-images",
            "C:\\y\\photo.png",
            "image/png",
            &jpg,
        ),
    ];
    for form in again {
        app.upload(app.sk(), &form).await.error(409, "CONFLICT");
    }
    assert_eq!(
        state(&app).await,
        before,
        "no record and no object left behind"
    );
    let key = first["r2_key"].as_str().unwrap();
    assert_eq!(
        app.read_object(key),
        Some(fixture("tiny.png")),
        "the first upload's bytes stay"
    );
}

#[tokio::test]
async fn the_same_filename_elsewhere_is_accepted() {
    let app = app().await;
    let png = fixture("tiny.png");
    app.create(&Form::asset("p", "c", "ch", "same.png", "image/png", &png))
        .await;
    for (p, c, ch) in [("p", "c", "ch2"), ("p", "c2", "ch"), ("p2", "c", "ch")] {
        app.create(&Form::asset(p, c, ch, "same.png", "image/png", &png))
            .await;
    }
    // The same place in another vault.
    app.call("upload")
        .vault(&app.other.vault_id)
        .key(&app.other.secret_key)
        .form(&Form::asset("p", "c", "ch", "same.png", "image/png", &png))
        .send()
        .await
        .ok(201);
    // Names differ only in case: different names.
    app.create(&Form::asset("p", "c", "ch", "SAME.png", "image/png", &png))
        .await;
    assert_eq!(app.object_files().len(), 6);
}

#[tokio::test]
async fn a_file_over_104_857_600_bytes_is_413_and_nothing_is_stored() {
    let app = app().await;
    let (content_type, body) = oversized_upload(104_857_601);
    let reply = app
        .call("upload")
        .key(app.sk())
        .body(Some(&content_type), body)
        .send()
        .await;
    reply.error(413, "PAYLOAD_TOO_LARGE");
    assert_nothing_stored(&app).await;
}

#[tokio::test]
async fn a_file_of_exactly_104_857_600_bytes_is_accepted() {
    let app = app().await;
    let (content_type, body) = oversized_upload(104_857_600);
    let reply = app
        .call("upload")
        .key(app.sk())
        .body(Some(&content_type), body)
        .send()
        .await;
    let record = reply.ok(201);
    assert_eq!(record["size"], 104_857_600);
    assert_eq!(
        app.object_len(record["r2_key"].as_str().unwrap()),
        Some(104_857_600)
    );
}

// ---------------------------------------------------------------------------------------------
// List

/// The checks every page must pass; returns its assets and `has_more`.
fn check_page(page: &Value, limit: usize) -> (Vec<Value>, bool) {
    let object = page.as_object().expect("a page is an object");
    let mut keys: Vec<&str> = object.keys().map(String::as_str).collect();
    keys.sort_unstable();
    assert_eq!(keys, ["cursor", "data", "has_more"], "{page}");
    let data = page["data"].as_array().expect("data is an array").clone();
    let has_more = page["has_more"].as_bool().expect("has_more is a boolean");
    assert!(
        data.len() <= limit,
        "at most limit={limit} assets, got {}",
        data.len()
    );
    if has_more {
        let cursor = page["cursor"]
            .as_str()
            .expect("cursor is a string when has_more");
        assert!(!cursor.is_empty());
        assert!(!data.is_empty(), "a page with more after it is not empty");
    } else {
        assert_eq!(
            page["cursor"],
            Value::Null,
            "cursor is null exactly when has_more is false"
        );
    }
    (data, has_more)
}

fn page_query(filters: &str, limit: usize, cursor: Option<&str>) -> String {
    let mut query = form_urlencoded::Serializer::new(String::new());
    query.append_pair("limit", &limit.to_string());
    if let Some(cursor) = cursor {
        query.append_pair("cursor", cursor);
    }
    let query = query.finish();
    if filters.is_empty() {
        query
    } else {
        format!("{filters}&{query}")
    }
}

/// Every page of a list with `filters`, `limit` at a time, in order.
async fn walk(app: &TestApp, filters: &str, limit: usize) -> Vec<Value> {
    let mut all = Vec::new();
    let mut cursor: Option<String> = None;
    for _ in 0..10_000 {
        let query = page_query(filters, limit, cursor.as_deref());
        let page = app.list(app.pk(), &query).await.ok(200);
        let (data, has_more) = check_page(&page, limit);
        all.extend(data);
        if !has_more {
            return all;
        }
        cursor = Some(page["cursor"].as_str().unwrap().to_owned());
    }
    panic!("the walk over {filters:?} never ended");
}

/// `records` newest first: `created_at` descending, then `id` descending.
fn newest_first(mut records: Vec<Value>) -> Vec<Value> {
    records.sort_by(|a, b| {
        let key = |r: &Value| (r["created_at"].as_str().unwrap().to_owned(), id(r));
        key(b).cmp(&key(a))
    });
    records
}

fn ids(records: &[Value]) -> Vec<String> {
    records.iter().map(id).collect()
}

#[tokio::test]
async fn an_empty_vault_lists_an_empty_last_page() {
    let app = app().await;
    let page = app.list(app.pk(), "").await.ok(200);
    assert_eq!(
        page,
        json!({ "data": [], "cursor": null, "has_more": false })
    );
}

#[tokio::test]
async fn walking_every_page_returns_each_asset_once_newest_first_with_any_filters() {
    let app = app().await;
    let names = |a: &'static str, b: &'static str| [a, b];
    let (partitions, collections, channels) = (
        names("p-a", "p-b"),
        names("c-a", "c-b"),
        names("h-a", "h-b"),
    );
    let mut records = Vec::new();
    for i in 0..260 {
        let (p, c, ch) = (
            partitions[i % 2],
            collections[(i / 2) % 2],
            channels[(i / 4) % 2],
        );
        records.push(
            app.create(&Form::tiny(p, c, ch, &format!("f{i}.txt")))
                .await,
        );
    }
    // Another vault's asset never shows up.
    app.call("upload")
        .vault(&app.other.vault_id)
        .key(&app.other.secret_key)
        .form(&Form::tiny("p-a", "c-a", "h-a", "theirs.txt"))
        .send()
        .await
        .ok(201);

    let filters = [
        "",
        "partition=p-a",
        "partition=p-b",
        "collection=c-a",
        "channel=h-b",
        "partition=p-a&collection=c-b",
        "partition=p-b&channel=h-a",
        "collection=c-a&channel=h-b",
        "channel=h-a&partition=p-b&collection=c-b",
        "partition=p-c",
    ];
    for filter in filters {
        let pairs: Vec<(String, String)> = form_urlencoded::parse(filter.as_bytes())
            .into_owned()
            .collect();
        let matching: Vec<Value> = records
            .iter()
            .filter(|r| pairs.iter().all(|(k, v)| r[k.as_str()] == v.as_str()))
            .cloned()
            .collect();
        let walked = walk(&app, filter, 7).await;
        assert_eq!(
            ids(&walked),
            ids(&newest_first(matching)),
            "walk over {filter:?}"
        );
    }

    let default = app.list(app.pk(), "").await.ok(200);
    assert_eq!(
        check_page(&default, 50).0.len(),
        50,
        "the default limit is 50"
    );
    let first = app.list(app.pk(), "limit=200").await.ok(200);
    let (data, has_more) = check_page(&first, 200);
    assert_eq!((data.len(), has_more), (200, true));
    let cursor = first["cursor"].as_str().unwrap();
    let rest = app
        .list(app.pk(), &page_query("", 200, Some(cursor)))
        .await
        .ok(200);
    let (data, has_more) = check_page(&rest, 200);
    assert_eq!((data.len(), has_more), (60, false));
}

#[tokio::test]
async fn a_walk_while_assets_are_uploaded_returns_every_earlier_asset_exactly_once() {
    let app = app().await;
    let mut earlier = Vec::new();
    for i in 0..60 {
        earlier.push(id(&app
            .create(&Form::tiny("p", "c", "ch", &format!("old{i}.txt")))
            .await));
    }
    let mut seen: Vec<String> = Vec::new();
    let mut cursor: Option<String> = None;
    let mut uploads = 0;
    loop {
        let page = app
            .list(app.pk(), &page_query("", 7, cursor.as_deref()))
            .await
            .ok(200);
        let (data, has_more) = check_page(&page, 7);
        seen.extend(ids(&data));
        for _ in 0..3 {
            uploads += 1;
            app.create(&Form::tiny("p", "c", "ch", &format!("new{uploads}.txt")))
                .await;
        }
        if !has_more {
            break;
        }
        cursor = Some(page["cursor"].as_str().unwrap().to_owned());
        assert!(uploads < 1000, "the walk never ended");
    }
    let mut unique = seen.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), seen.len(), "no asset is returned twice");
    for asset in &earlier {
        assert!(
            seen.contains(asset),
            "{asset} was uploaded before the walk and is missing"
        );
    }
}

#[tokio::test]
async fn limit_is_an_integer_from_1_to_200() {
    let app = app().await;
    for i in 0..3 {
        app.create(&Form::tiny("p", "c", "ch", &format!("{i}.txt")))
            .await;
    }
    let one = app.list(app.pk(), "limit=1").await.ok(200);
    assert_eq!(check_page(&one, 1), (vec![one["data"][0].clone()], true));
    let max = app.list(app.pk(), "limit=200").await.ok(200);
    assert_eq!(check_page(&max, 200).0.len(), 3);
    for bad in [
        "0",
        "201",
        "abc",
        "5.5",
        "",
        "-1",
        "1e2",
        "99999999999999999999",
    ] {
        app.list(app.pk(), &format!("limit={bad}"))
            .await
            .invalid("limit");
    }
}

#[tokio::test]
async fn a_cursor_that_does_not_decode_is_400() {
    let app = app().await;
    app.create(&Form::standard()).await;
    use base64::Engine;
    let b64 = |s: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s);
    let not_a_position = b64(r#"{"created_at":"yesterday","id":"asset_1"}"#);
    let other_json = b64(r#"[1,2,3]"#);
    let injection = b64(r#"{"created_at":"2026-01-15T10:30:00.123Z","id":"x' OR 1=1 --"}"#);
    for bad in [
        "!!!",
        "abc",
        "eyJ9",
        "",
        not_a_position.as_str(),
        other_json.as_str(),
        injection.as_str(),
    ] {
        let query = form_urlencoded::Serializer::new(String::new())
            .append_pair("cursor", bad)
            .finish();
        app.list(app.pk(), &query).await.invalid("cursor");
    }
}

#[tokio::test]
async fn invalid_list_filters_are_400_naming_the_filter() {
    let app = app().await;
    let too_long = "a".repeat(65);
    for field in SEGMENTS {
        for value in ["Bad", "-a", "a-", "", "a_b", too_long.as_str()] {
            let query = form_urlencoded::Serializer::new(String::new())
                .append_pair(field, value)
                .finish();
            app.list(app.pk(), &query).await.invalid(field);
        }
        let longest = "a".repeat(64);
        let query = format!("{field}={longest}");
        check_page(&app.list(app.pk(), &query).await.ok(200), 50);
    }
}

#[tokio::test]
async fn an_unknown_query_parameter_is_400() {
    let app = app().await;
    app.list(app.pk(), "chanel=hero").await.invalid("chanel");
    app.list(app.pk(), "limit=5&offset=10")
        .await
        .invalid("offset");
}

// ---------------------------------------------------------------------------------------------
// Update

async fn with_metadata(app: &TestApp, metadata: Value) -> Value {
    app.create(&Form::standard().field("metadata", &metadata.to_string()))
        .await
}

async fn patched_metadata(app: &TestApp, record: &Value, patch: Value) -> Value {
    let updated = app
        .patch(app.sk(), &id(record), &json!({ "metadata": patch }))
        .await
        .ok(200);
    decoded(&updated, "metadata")
}

#[tokio::test]
async fn patch_metadata_members_replace_and_add() {
    let app = app().await;
    let record = with_metadata(&app, json!({ "a": 1, "b": 2 })).await;
    let merged = patched_metadata(&app, &record, json!({ "b": "three", "c": 4 })).await;
    assert_eq!(merged, json!({ "a": 1, "b": "three", "c": 4 }));
}

#[tokio::test]
async fn patch_null_removes_metadata_key() {
    let app = app().await;
    let record = with_metadata(&app, json!({ "a": 1, "b": 2 })).await;
    let merged = patched_metadata(&app, &record, json!({ "a": null, "missing": null })).await;
    assert_eq!(merged, json!({ "b": 2 }));
}

#[tokio::test]
async fn patch_nested_objects_merge() {
    let app = app().await;
    let record = with_metadata(
        &app,
        json!({ "img": { "w": 1, "h": 2, "alt": "x" }, "k": 0 }),
    )
    .await;
    let patch = json!({ "img": { "h": 3, "alt": null, "crop": { "x": 1 } } });
    let merged = patched_metadata(&app, &record, patch).await;
    assert_eq!(
        merged,
        json!({ "img": { "w": 1, "h": 3, "crop": { "x": 1 } }, "k": 0 })
    );
}

#[tokio::test]
async fn patch_arrays_replace() {
    let app = app().await;
    let record = with_metadata(&app, json!({ "list": [1, 2, 3], "obj": { "a": 1 } })).await;
    let merged = patched_metadata(&app, &record, json!({ "list": [4], "obj": [5] })).await;
    assert_eq!(merged, json!({ "list": [4], "obj": [5] }));
}

#[tokio::test]
async fn patch_tags_replace_and_are_deduplicated() {
    let app = app().await;
    let record = app
        .create(
            &Form::standard()
                .field("tags", r#"["a","b"]"#)
                .field("metadata", r#"{"keep":true}"#),
        )
        .await;
    let updated = app
        .patch(app.sk(), &id(&record), &json!({ "tags": ["c", "d", "c"] }))
        .await
        .ok(200);
    assert_eq!(updated["tags"], r#"["c","d"]"#);
    assert_eq!(
        decoded(&updated, "metadata"),
        json!({ "keep": true }),
        "metadata untouched"
    );
    let cleared = app
        .patch(app.sk(), &id(&record), &json!({ "tags": [] }))
        .await
        .ok(200);
    assert_eq!(cleared["tags"], "[]");
}

#[tokio::test]
async fn patch_metadata_leaves_tags_alone() {
    let app = app().await;
    let record = app
        .create(&Form::standard().field("tags", r#"["a","b"]"#))
        .await;
    let merged = app
        .patch(app.sk(), &id(&record), &json!({ "metadata": { "x": 1 } }))
        .await
        .ok(200);
    assert_eq!(merged["tags"], r#"["a","b"]"#);
}

#[tokio::test]
async fn patch_tag_limits_are_the_upload_limits() {
    let app = app().await;
    let record = app
        .create(&Form::standard().field("tags", r#"["a"]"#))
        .await;
    let asset = id(&record);
    let mut tags: Vec<String> = (0..65).map(|i| format!("t{i}")).collect();
    for bad in [json!(tags), json!([""]), json!(["x".repeat(65)])] {
        app.patch(app.sk(), &asset, &json!({ "tags": bad }))
            .await
            .invalid("tags");
    }
    assert_eq!(app.get(app.sk(), &asset).await.ok(200), record, "unchanged");
    tags[64] = "t0".into();
    let updated = app
        .patch(app.sk(), &asset, &json!({ "tags": tags }))
        .await
        .ok(200);
    assert_eq!(decoded(&updated, "tags"), json!(tags[..64]));
}

#[tokio::test]
async fn patch_returns_the_updated_record_and_moves_updated_at_forward() {
    let app = app().await;
    let record = app.create(&Form::standard()).await;
    let asset = id(&record);
    let mut previous = record.clone();
    for i in 0..3 {
        // Straight after the upload and each other: within the same millisecond, often.
        let updated = app
            .patch(
                app.sk(),
                &asset,
                &json!({ "metadata": { format!("k{i}"): i } }),
            )
            .await
            .ok(200);
        assert_eq!(
            app.get(app.sk(), &asset).await.ok(200),
            updated,
            "the response is the record"
        );
        let (before, after) = (
            previous["updated_at"].as_str().unwrap(),
            updated["updated_at"].as_str().unwrap(),
        );
        assert!(is_api_time(after), "{after}");
        assert!(
            after > before,
            "updated_at moves forward: {before} then {after}"
        );
        assert_eq!(
            updated["created_at"], record["created_at"],
            "created_at never changes"
        );
        for field in RECORD_FIELDS {
            if !["metadata", "updated_at"].contains(&field) {
                assert_eq!(updated[field], record[field], "{field} unchanged");
            }
        }
        previous = updated;
    }
}

#[tokio::test]
async fn patch_metadata_over_16_kib_is_400() {
    let app = app().await;
    let record = app.create(&Form::standard()).await;
    let big: Value = serde_json::from_str(&metadata_of(16 * 1024 + 1)).unwrap();
    app.patch(app.sk(), &id(&record), &json!({ "metadata": big }))
        .await
        .invalid("metadata");
    assert_eq!(
        app.get(app.sk(), &id(&record)).await.ok(200),
        record,
        "unchanged"
    );
}

#[tokio::test]
async fn patch_that_would_grow_metadata_past_16_kib_is_400() {
    let app = app().await;
    let record = with_metadata(&app, json!({ "a": "x".repeat(10_000) })).await;
    app.patch(
        app.sk(),
        &id(&record),
        &json!({ "metadata": { "b": "y".repeat(10_000) } }),
    )
    .await
    .invalid("metadata");
    assert_eq!(
        app.get(app.sk(), &id(&record)).await.ok(200),
        record,
        "unchanged"
    );
    // Replacing the big member keeps it small: fine.
    let merged = patched_metadata(&app, &record, json!({ "a": "z".repeat(10_000) })).await;
    assert_eq!(merged, json!({ "a": "z".repeat(10_000) }));
}

#[tokio::test]
async fn merged_metadata_limit_counts_bytes_not_characters() {
    let app = app().await;
    // "é" is two bytes of UTF-8: 9,000 bytes each in 4,500 characters.
    let record = with_metadata(&app, json!({ "a": "é".repeat(4_500) })).await;
    let reply = app
        .patch(
            app.sk(),
            &id(&record),
            &json!({ "metadata": { "b": "é".repeat(4_500) } }),
        )
        .await;
    reply.invalid("metadata");
    assert_eq!(
        app.get(app.sk(), &id(&record)).await.ok(200),
        record,
        "unchanged"
    );
}

#[tokio::test]
async fn patch_with_neither_metadata_nor_tags_is_400() {
    let app = app().await;
    let record = app.create(&Form::standard()).await;
    let reply = app.patch(app.sk(), &id(&record), &json!({})).await;
    reply.error(400, "INVALID_PARAMS");
    assert_eq!(app.get(app.sk(), &id(&record)).await.ok(200), record);
}

#[tokio::test]
async fn patch_with_an_unknown_member_is_400() {
    let app = app().await;
    let record = app.create(&Form::standard()).await;
    for body in [
        json!({ "metadata": { "a": 1 }, "filename": "x.png" }),
        json!({ "tags": ["a"], "extra": null }),
        json!({ "Metadata": { "a": 1 } }),
    ] {
        let unknown = body
            .as_object()
            .unwrap()
            .keys()
            .find(|k| *k != "metadata" && *k != "tags")
            .unwrap()
            .clone();
        app.patch(app.sk(), &id(&record), &body)
            .await
            .invalid(&unknown);
    }
    assert_eq!(app.get(app.sk(), &id(&record)).await.ok(200), record);
}

#[tokio::test]
async fn patch_body_that_is_not_a_json_object_is_400() {
    let app = app().await;
    let record = app.create(&Form::standard()).await;
    for body in [
        "[]",
        "\"metadata\"",
        "1",
        "null",
        "true",
        "not json",
        "",
        "{\"tags\":[\"a\"]",
        "[{\"tags\":[]}]",
    ] {
        let reply = app
            .call("update")
            .asset(&id(&record))
            .key(app.sk())
            .body(Some("application/json"), body)
            .send()
            .await;
        reply.error(400, "INVALID_PARAMS");
    }
    assert_eq!(app.get(app.sk(), &id(&record)).await.ok(200), record);
}

#[tokio::test]
async fn patch_with_wrong_types_is_400_naming_the_member() {
    let app = app().await;
    let record = app
        .create(&Form::standard().field("tags", r#"["a"]"#))
        .await;
    let asset = id(&record);
    for bad in [
        json!([]),
        json!("x"),
        json!(1),
        json!(null),
        json!(true),
        json!("{\"a\":1}"),
    ] {
        app.patch(app.sk(), &asset, &json!({ "metadata": bad }))
            .await
            .invalid("metadata");
        app.patch(
            app.sk(),
            &asset,
            &json!({ "metadata": bad, "tags": ["ok"] }),
        )
        .await
        .invalid("metadata");
    }
    for bad in [
        json!("a"),
        json!([1]),
        json!({}),
        json!(null),
        json!([["a"]]),
        json!("[\"a\"]"),
    ] {
        app.patch(app.sk(), &asset, &json!({ "tags": bad }))
            .await
            .invalid("tags");
        app.patch(
            app.sk(),
            &asset,
            &json!({ "tags": bad, "metadata": { "ok": 1 } }),
        )
        .await
        .invalid("tags");
    }
    assert_eq!(app.get(app.sk(), &asset).await.ok(200), record, "unchanged");
}

#[tokio::test]
async fn patch_needs_content_type_application_json() {
    let app = app().await;
    let record = app.create(&Form::standard()).await;
    let asset = id(&record);
    let body = json!({ "tags": ["x"] }).to_string();
    let send = |content_type: Option<&'static str>| {
        app.call("update")
            .asset(&asset)
            .key(app.sk())
            .body(content_type, body.clone())
            .send()
    };
    for content_type in [
        None,
        Some("text/plain"),
        Some("multipart/form-data; boundary=x"),
    ] {
        send(content_type).await.error(400, "INVALID_PARAMS");
    }
    assert_eq!(app.get(app.sk(), &asset).await.ok(200), record, "unchanged");
    let updated = send(Some("application/json; charset=utf-8")).await.ok(200);
    assert_eq!(updated["tags"], r#"["x"]"#);
}

// ---------------------------------------------------------------------------------------------
// Delete

#[tokio::test]
async fn delete_is_204_and_the_asset_and_its_bytes_are_gone() {
    let app = app().await;
    let record = app.create(&Form::standard()).await;
    let kept = app
        .create(&Form::standard().set("filename", "kept.png"))
        .await;
    let asset = id(&record);
    let reply = app.delete(app.sk(), &asset).await;
    assert_eq!(reply.status.as_u16(), 204, "{}", reply.snippet());
    assert!(reply.body.is_empty(), "empty body: {:?}", reply.snippet());

    app.get(app.sk(), &asset)
        .await
        .error(404, "ASSET_NOT_FOUND");
    let page = app.list(app.sk(), "").await.ok(200);
    assert_eq!(page["data"], json!([kept.clone()]), "absent from lists");
    assert_eq!(
        app.read_object(record["r2_key"].as_str().unwrap()),
        None,
        "bytes removed"
    );
    assert_eq!(
        app.object_files().len(),
        1,
        "only the other asset's object remains"
    );
    app.delete(app.sk(), &asset)
        .await
        .error(404, "ASSET_NOT_FOUND");
    app.patch(app.sk(), &asset, &json!({ "tags": ["x"] }))
        .await
        .error(404, "ASSET_NOT_FOUND");
    // The name is free again.
    app.create(&Form::standard()).await;
}

#[tokio::test]
async fn delete_when_the_object_store_fails_is_finished_later_by_gc() {
    let app = app().await;
    let record = app.create(&Form::standard()).await;
    let key = record["r2_key"].as_str().unwrap().to_owned();
    let faulty = Arc::new(FaultyBlobs::new(app.blobs()));
    faulty.fail_delete.store(true, Ordering::SeqCst);
    let deps = app.deps_with_blobs(faulty.clone());

    let reply = app
        .call_on(&deps, "delete")
        .asset(&id(&record))
        .key(app.sk())
        .send()
        .await;
    assert_eq!(reply.status.as_u16(), 204, "{}", reply.snippet());
    app.get(app.sk(), &id(&record))
        .await
        .error(404, "ASSET_NOT_FOUND");
    assert_eq!(app.list(app.sk(), "").await.ok(200)["data"], json!([]));
    assert!(
        app.read_object(&key).is_some(),
        "the object is still on disk"
    );
    assert_eq!(
        app.pending_deletions().await,
        vec![
            shared::variants::prefix(&app.vault.vault_id, &id(&record)),
            key.clone()
        ],
        "and not forgotten, nor its variants"
    );

    // While the store keeps failing, gc keeps the row.
    let report = admin::gc(&*app.deps.db, &app.deps.clock, &*faulty)
        .await
        .unwrap();
    let failed: Vec<&str> = report.failed.iter().map(|f| f.r2_key.as_str()).collect();
    assert_eq!(failed, vec![key.as_str()]);
    assert_eq!(app.pending_deletions().await, vec![key.clone()]);

    let report = admin::gc(&*app.deps.db, &app.deps.clock, &*app.blobs())
        .await
        .unwrap();
    assert_eq!(report.deleted, vec![key.clone()]);
    assert_eq!(app.read_object(&key), None);
    assert!(app.object_files().is_empty());
    assert!(app.pending_deletions().await.is_empty());
}

#[tokio::test]
async fn an_upload_whose_object_write_fails_is_500_and_stores_nothing() {
    let app = app().await;
    let faulty = Arc::new(FaultyBlobs::new(app.blobs()));
    faulty.fail_put.store(true, Ordering::SeqCst);
    let deps = app.deps_with_blobs(faulty.clone());
    let reply = app
        .call_on(&deps, "upload")
        .key(app.sk())
        .form(&Form::standard())
        .send()
        .await;
    reply.error(500, "INTERNAL_ERROR");
    assert!(
        !reply.text().contains("RequestId"),
        "no upstream body: {}",
        reply.snippet()
    );
    assert_nothing_stored(&app).await;
    // Nothing half-stored blocks a retry under the same name.
    faulty.fail_put.store(false, Ordering::SeqCst);
    let retried = app
        .call_on(&deps, "upload")
        .key(app.sk())
        .form(&Form::standard())
        .send()
        .await;
    retried.ok(201);
}

#[tokio::test]
async fn a_body_a_lambda_invocation_cannot_carry_is_413_with_advice() {
    let app = app().await;
    let mut deps = app.another_instance().await;
    deps.max_request_bytes = Some(shared::deps::LAMBDA_BODY_LIMIT);
    let big = vec![7u8; 5 * 1024 * 1024];
    let form = Form::asset("a", "b", "c", "big.bin", "application/octet-stream", &big);
    let reply = app
        .call_on(&deps, "upload")
        .key(app.sk())
        .form(&form)
        .send()
        .await;
    let message = reply.error(413, "PAYLOAD_TOO_LARGE");
    assert!(
        message.contains("Lambda") && message.contains("4.5 MB"),
        "{message}"
    );
    assert_nothing_stored(&app).await;

    // Just under the limit passes.
    let fits = vec![7u8; 4 * 1024 * 1024];
    let form = Form::asset("a", "b", "c", "fits.bin", "application/octet-stream", &fits);
    app.call_on(&deps, "upload")
        .key(app.sk())
        .form(&form)
        .send()
        .await
        .ok(201);
}

#[tokio::test]
async fn fsck_finds_records_without_objects_and_objects_without_records() {
    let app = app().await;
    let kept = app.create(&Form::tiny("a", "b", "c", "kept.txt")).await;
    let lost = app.create(&Form::tiny("a", "b", "c", "lost.txt")).await;
    let clean = admin::fsck(&*app.deps.db, &imgbt_tests::past_the_grace(), &*app.blobs())
        .await
        .unwrap();
    assert!(clean.is_clean(), "{clean:?}");
    assert_eq!((clean.records, clean.objects), (2, 2));

    let blobs = app.blobs();
    let lost_key = lost["r2_key"].as_str().unwrap();
    blobs.delete(lost_key).await.unwrap();
    let stray = format!(
        "{}/a/b/c/asset_01JD0000000000000000000000_stray.txt",
        app.vault.vault_id
    );
    blobs
        .put(&stray, bytes::Bytes::from_static(b"stray"), "text/plain")
        .await
        .unwrap();
    let report = admin::fsck(&*app.deps.db, &imgbt_tests::past_the_grace(), &*app.blobs())
        .await
        .unwrap();
    assert!(!report.is_clean());
    assert_eq!(report.records_without_objects.len(), 1);
    assert_eq!(report.records_without_objects[0].asset_id, id(&lost));
    assert_eq!(report.objects_without_records, vec![stray.clone()]);
    assert!(report.size_mismatches.is_empty());

    // A deleted asset whose object could not be removed is pending, not a fault; gc clears it.
    let faulty = Arc::new(FaultyBlobs::new(app.blobs()));
    faulty.fail_delete.store(true, Ordering::SeqCst);
    let deps = app.deps_with_blobs(faulty.clone());
    let reply = app
        .call_on(&deps, "delete")
        .key(app.sk())
        .asset(&id(&kept))
        .send()
        .await;
    assert_eq!(reply.status.as_u16(), 204);
    let report = admin::fsck(&*app.deps.db, &imgbt_tests::past_the_grace(), &*app.blobs())
        .await
        .unwrap();
    assert_eq!(
        report.pending_deletions,
        vec![kept["r2_key"].as_str().unwrap().to_owned()]
    );
    assert_eq!(report.objects_without_records, vec![stray]);
    admin::gc(&*app.deps.db, &app.deps.clock, &*app.blobs())
        .await
        .unwrap();
    let report = admin::fsck(&*app.deps.db, &imgbt_tests::past_the_grace(), &*app.blobs())
        .await
        .unwrap();
    assert!(report.pending_deletions.is_empty());
    assert_eq!(report.objects, 1, "only the stray object is left");
}

#[tokio::test]
async fn a_later_delete_finishes_an_object_delete_that_failed() {
    let app = app().await;
    let a = app.create(&Form::tiny("a", "b", "c", "a.txt")).await;
    let b = app.create(&Form::tiny("a", "b", "c", "b.txt")).await;
    let c = app.create(&Form::tiny("a", "b", "c", "c.txt")).await;
    let faulty = Arc::new(FaultyBlobs::new(app.blobs()));
    faulty.fail_delete.store(true, Ordering::SeqCst);
    let deps = app.deps_with_blobs(faulty.clone());
    let reply = app
        .call_on(&deps, "delete")
        .key(app.sk())
        .asset(&id(&a))
        .send()
        .await;
    assert_eq!(reply.status.as_u16(), 204);
    let a_key = a["r2_key"].as_str().unwrap();
    assert!(
        app.read_object(a_key).is_some(),
        "the object outlived its failed delete"
    );

    // A fresh failure is left alone (a request may still be working on it) …
    app.delete(app.sk(), &id(&b)).await;
    assert!(app.read_object(a_key).is_some());
    // … one older than a minute is retried by the next delete, and its row cleared by the one after.
    app.query("UPDATE pending_deletions SET requested_at = '2000-01-01T00:00:00.000Z'")
        .await;
    app.delete(app.sk(), &id(&c)).await;
    assert_eq!(app.read_object(a_key), None, "finished by a later request");
    let d = app.create(&Form::tiny("a", "b", "c", "d.txt")).await;
    app.delete(app.sk(), &id(&d)).await;
    assert_eq!(
        app.pending_deletions().await,
        vec![
            shared::variants::prefix(&app.vault.vault_id, &id(&d)),
            d["r2_key"].as_str().unwrap().to_owned()
        ],
        "only d's own rows (its object, its variants), cleared by the next delete"
    );
    let report = admin::fsck(&*app.deps.db, &imgbt_tests::past_the_grace(), &*app.blobs())
        .await
        .unwrap();
    assert!(report.is_clean() && report.objects == 0, "{report:?}");
}

#[tokio::test]
async fn no_key_of_a_second_vault_reaches_anything_of_the_first() {
    let app = app().await;
    let secret_name = "confidential-plan.txt";
    let record = app
        .create(
            &Form::tiny("private", "plans", "q3", secret_name)
                .field("metadata", r#"{"codename":"bluebird"}"#)
                .field("tags", r#"["internal-only"]"#),
        )
        .await;
    let asset = id(&record);
    let first = app.vault.vault_id.clone();
    let second = app.other.vault_id.clone();
    let before = state(&app).await;
    let needles = [
        asset.as_str(),
        secret_name,
        "bluebird",
        "internal-only",
        "private/plans",
    ];
    for key in [&app.other.public_key, &app.other.secret_key] {
        // The first vault's paths, and the second vault's own paths with the first's asset id.
        for vault in [&first, &second] {
            for call in every_endpoint(&app, &app.deps, &asset) {
                let function = call.function();
                let reply = call.vault(vault).key(key).send().await;
                let status = reply.status.as_u16();
                let body = reply.text();
                for needle in needles {
                    assert!(
                        !body.contains(needle),
                        "{function} on {vault} leaked {needle}: {body}"
                    );
                }
                if vault == &first {
                    assert_eq!(status, 403, "{function}: {body}");
                } else if function == "list" {
                    let page = reply.json();
                    let data = page["data"].as_array().unwrap();
                    assert!(
                        data.iter().all(|a| a["vault_id"] == second.as_str()),
                        "{page}"
                    );
                } else if !matches!(
                    function,
                    // Its own vault's: a new asset, its keys, its settings.
                    "upload"
                        | "keys_list"
                        | "key_create"
                        | "vault_get"
                        | "vault_update"
                        | "delivery_rotate"
                ) {
                    assert!([403, 404].contains(&status), "{function}: {status} {body}");
                }
            }
        }
    }
    let (mine, _, _) = state(&app).await;
    assert_eq!(mine, before.0, "the first vault is untouched");
}

#[tokio::test]
async fn a_filename_is_one_name_whatever_its_unicode_composition() {
    let app = app().await;
    let decomposed = "Cafe\u{301}.txt";
    let composed = "Caf\u{e9}.txt";
    let first = app.create(&Form::tiny("a", "b", "c", decomposed)).await;
    assert_eq!(first["filename"], composed, "stored in NFC");
    assert!(first["r2_key"].as_str().unwrap().ends_with(composed));
    app.upload(app.sk(), &Form::tiny("a", "b", "c", composed))
        .await
        .error(409, "CONFLICT");
}

/// Found checking openapi.yaml by hand (`url` is `format: uri`): a `Host` header that is no
/// authority was copied into the direct upload's URL, making it no URL at all.
#[tokio::test]
async fn a_direct_upload_url_is_a_valid_url_whatever_the_host_header() {
    let app = app().await;
    let hosts = ["evil\"host", "a b", "x/y", "", "files.example:8080"];
    for (i, host) in hosts.into_iter().enumerate() {
        let body = json!({"partition": "p", "collection": "c", "channel": "ch",
            "filename": format!("f{i}.bin"), "size": 3});
        let ticket = app
            .call("uploads")
            .key(app.sk())
            .json(&body)
            .header("host", host)
            .send()
            .await
            .ok(201);
        let url = ticket["url"].as_str().expect("url");
        let uri: lambda_http::http::Uri = url
            .parse()
            .unwrap_or_else(|e| panic!("Host {host:?} gave {url:?}, not a URL: {e}"));
        assert!(matches!(uri.scheme_str(), Some("http" | "https")), "{url}");
        assert!(
            uri.authority().is_some_and(|a| !a.as_str().contains('"')),
            "{url}"
        );
        if app.backend() == imgbt_tests::Backend::Embedded && host == "files.example:8080" {
            assert!(
                url.starts_with("http://files.example:8080/api/v1/vaults/"),
                "{url}"
            );
        }
        let put = app.put_upload(&ticket, b"abc".to_vec()).await;
        assert_eq!(put.status.as_u16(), 200, "{}", put.snippet());
    }
}

// ---------------------------------------------------------------------------------------------
// Keys and vault settings (docs/API.md#key-management, docs/API.md#vault)

const KEY_FIELDS: [&str; 6] = ["created_at", "hint", "id", "label", "revoked_at", "type"];

async fn keys_of(app: &TestApp, key: &str) -> Vec<Value> {
    let page = app.call("keys_list").key(key).send().await.ok(200);
    page["data"].as_array().expect("data is an array").clone()
}

/// The vault's keys as the store has them, read without the API.
async fn stored_keys(app: &TestApp) -> Vec<(String, Option<String>, String)> {
    admin::list_keys(&*app.deps.db, &app.vault.vault_id)
        .await
        .unwrap()
        .into_iter()
        .map(|k| (k.id, k.revoked_at, k.label))
        .collect()
}

async fn create_key(app: &TestApp, key: &str, kind: &str, label: &str) -> Value {
    app.call("key_create")
        .key(key)
        .json(&json!({ "label": label, "type": kind }))
        .send()
        .await
        .ok(201)
}

async fn revoke(app: &TestApp, key: &str, key_id: &str) -> imgbt_tests::Reply {
    app.call("key_revoke").key(key).key_id(key_id).send().await
}

/// The id of the vault's live secret key that the test app was created with.
async fn own_secret_key_id(app: &TestApp) -> String {
    let hint: String = app.sk().chars().take(7).collect();
    let keys = keys_of(app, app.sk()).await;
    let own = keys
        .iter()
        .find(|k| k["type"] == "secret" && k["hint"] == hint.as_str() && k["revoked_at"].is_null())
        .expect("the app's secret key is listed");
    id(own)
}

#[tokio::test]
async fn the_keys_routes_take_only_a_secret_key_of_the_vault() {
    let app = app().await;
    let sk_id = own_secret_key_id(&app).await;
    let before = stored_keys(&app).await;
    let body = json!({ "label": "x", "type": "secret" });
    for (key, status, code) in [
        (app.pk().to_owned(), 403, "FORBIDDEN"),
        (app.other.secret_key.clone(), 403, "FORBIDDEN"),
        (app.other.public_key.clone(), 403, "FORBIDDEN"),
        (
            shared::auth::generate_key(KeyKind::Secret),
            401,
            "UNAUTHORIZED",
        ),
    ] {
        app.call("keys_list")
            .key(&key)
            .send()
            .await
            .error(status, code);
        app.call("key_create")
            .key(&key)
            .json(&body)
            .send()
            .await
            .error(status, code);
        revoke(&app, &key, &sk_id).await.error(status, code);
    }
    app.call("keys_list")
        .send()
        .await
        .error(401, "UNAUTHORIZED");
    assert_eq!(
        stored_keys(&app).await,
        before,
        "a refused request changes no key"
    );
}

#[tokio::test]
async fn a_created_key_is_shown_once_and_works_on_the_next_request() {
    let app = app().await;
    let asset = id(&app.create(&Form::standard()).await);
    for kind in ["secret", "public"] {
        let created = create_key(&app, app.sk(), kind, "Production API").await;
        let key = created["key"]
            .as_str()
            .expect("the key is in the answer")
            .to_owned();
        assert!(
            key.starts_with(if kind == "secret" { "sk_" } else { "pk_" }),
            "{key}"
        );
        assert_eq!(key.len(), 51);
        assert_eq!(created["type"], kind);
        assert_eq!(created["label"], "Production API");
        assert_eq!(created["hint"], &key[..7]);
        assert!(created["revoked_at"].is_null());
        assert!(is_api_time(created["created_at"].as_str().unwrap()));
        let key_id = id(&created);
        assert!(
            key_id.starts_with("key_") && is_ulid(&key_id[4..]),
            "{key_id}"
        );

        // Listed by its record, never with the key.
        let listed = keys_of(&app, app.sk()).await;
        let mine = listed
            .iter()
            .find(|k| k["id"] == key_id.as_str())
            .expect("listed");
        let mut expected = created.clone();
        expected.as_object_mut().unwrap().remove("key");
        assert_eq!(*mine, expected);

        // It works on the very next request, with what its type allows.
        app.get(&key, &asset).await.ok(200);
        app.call("vault_get").key(&key).send().await.ok(200);
        if kind == "secret" {
            keys_of(&app, &key).await;
        } else {
            app.call("keys_list")
                .key(&key)
                .send()
                .await
                .error(403, "FORBIDDEN");
        }
    }
}

#[tokio::test]
async fn the_key_list_never_carries_a_key_or_its_hash() {
    let app = app().await;
    let created = create_key(&app, app.sk(), "secret", "ci").await;
    let new_key = created["key"].as_str().unwrap().to_owned();
    let keys = keys_of(&app, app.sk()).await;
    assert_eq!(
        keys.len(),
        3,
        "the app's two keys and the new one: {keys:?}"
    );
    let text = serde_json::to_string(&keys).unwrap();
    for key in [app.sk(), app.pk(), new_key.as_str()] {
        assert!(!text.contains(&key[3..]), "a key in the listing: {text}");
        let hash = shared::auth::hash_key(key);
        assert!(!text.contains(&hash), "a key's hash in the listing: {text}");
    }
    for record in &keys {
        let mut members: Vec<&str> = record
            .as_object()
            .unwrap()
            .keys()
            .map(|k| k.as_str())
            .collect();
        members.sort();
        assert_eq!(members, KEY_FIELDS, "{record}");
    }
    let ids: Vec<String> = keys.iter().map(id).collect();
    let mut sorted = ids.clone();
    sorted.sort();
    assert_eq!(ids, sorted, "oldest first");
}

#[tokio::test]
async fn a_new_keys_body_is_a_label_of_1_to_100_characters_and_a_type() {
    let app = app().await;
    let before = stored_keys(&app).await;
    for (body, field) in [
        (json!({ "type": "secret" }), "label"),
        (json!({ "label": "", "type": "secret" }), "label"),
        (
            json!({ "label": "x".repeat(101), "type": "secret" }),
            "label",
        ),
        (json!({ "label": 7, "type": "secret" }), "label"),
        (json!({ "label": "tab\there", "type": "secret" }), "label"),
        (json!({ "label": "x" }), "type"),
        (json!({ "label": "x", "type": "admin" }), "type"),
        (
            json!({ "label": "x", "type": "secret", "key": "sk_mine" }),
            "key",
        ),
        (json!(["label"]), "body"),
    ] {
        app.call("key_create")
            .key(app.sk())
            .json(&body)
            .send()
            .await
            .invalid(field);
    }
    app.call("key_create")
        .key(app.sk())
        .body(Some("text/plain"), r#"{"label":"x","type":"secret"}"#)
        .send()
        .await
        .invalid("body");
    // Authentication comes before the body.
    app.call("key_create")
        .key(app.pk())
        .json(&json!({ "type": "nope" }))
        .send()
        .await
        .error(403, "FORBIDDEN");
    assert_eq!(stored_keys(&app).await, before, "nothing was created");
    let longest = create_key(&app, app.sk(), "public", &"é".repeat(100)).await;
    assert_eq!(longest["label"].as_str().unwrap().chars().count(), 100);
}

#[tokio::test]
async fn a_revoked_key_is_401_on_the_very_next_request() {
    let app = app().await;
    let asset = id(&app.create(&Form::standard()).await);
    for kind in ["secret", "public"] {
        let created = create_key(&app, app.sk(), kind, "short-lived").await;
        let key = created["key"].as_str().unwrap().to_owned();
        app.get(&key, &asset).await.ok(200);
        let reply = revoke(&app, app.sk(), &id(&created)).await;
        assert_eq!(reply.status, 204, "{}", reply.snippet());
        assert!(reply.body.is_empty(), "204 has no body");
        app.get(&key, &asset).await.error(401, "UNAUTHORIZED");
        app.call("vault_get")
            .key(&key)
            .send()
            .await
            .error(401, "UNAUTHORIZED");
        let listed = keys_of(&app, app.sk()).await;
        let record = listed.iter().find(|k| k["id"] == created["id"]).unwrap();
        assert!(is_api_time(
            record["revoked_at"].as_str().expect("revoked_at is set")
        ));
    }
}

#[tokio::test]
async fn revoking_an_unknown_or_already_revoked_key_is_404_not_found() {
    let app = app().await;
    let created = create_key(&app, app.sk(), "public", "once").await;
    assert_eq!(revoke(&app, app.sk(), &id(&created)).await.status, 204);
    let theirs = admin::list_keys(&*app.deps.db, &app.other.vault_id)
        .await
        .unwrap();
    let before = stored_keys(&app).await;
    for key_id in [
        id(&created),
        "key_01JD0000000000000000000000".to_owned(),
        "nope".to_owned(),
        theirs[0].id.clone(),
    ] {
        let message = revoke(&app, app.sk(), &key_id)
            .await
            .error(404, "NOT_FOUND");
        assert_eq!(message, "key not found", "{key_id}");
    }
    assert_eq!(stored_keys(&app).await, before);
    let still: Vec<_> = admin::list_keys(&*app.deps.db, &app.other.vault_id)
        .await
        .unwrap()
        .into_iter()
        .map(|k| k.revoked_at)
        .collect();
    assert!(
        still.iter().all(Option::is_none),
        "another vault's keys are untouched"
    );
}

#[tokio::test]
async fn revoking_the_vaults_last_secret_key_is_409_and_the_key_stays() {
    let app = app().await;
    let sk_id = own_secret_key_id(&app).await;
    let before = stored_keys(&app).await;
    let message = revoke(&app, app.sk(), &sk_id).await.error(409, "CONFLICT");
    assert!(message.contains("last active secret key"), "{message}");
    assert_eq!(stored_keys(&app).await, before);
    keys_of(&app, app.sk()).await;
    // A public key never counts: revoking every one of them is fine.
    let pk_id = keys_of(&app, app.sk())
        .await
        .iter()
        .find(|k| k["type"] == "public")
        .map(id)
        .unwrap();
    assert_eq!(revoke(&app, app.sk(), &pk_id).await.status, 204);
}

#[tokio::test]
async fn a_key_may_revoke_itself_while_another_secret_key_remains() {
    let app = app().await;
    let sk_id = own_secret_key_id(&app).await;
    let second = create_key(&app, app.sk(), "secret", "second").await;
    let second_key = second["key"].as_str().unwrap().to_owned();
    let reply = revoke(&app, app.sk(), &sk_id).await;
    assert_eq!(reply.status, 204, "{}", reply.snippet());
    app.call("keys_list")
        .key(app.sk())
        .send()
        .await
        .error(401, "UNAUTHORIZED");
    // Now the second is the last one: it may not revoke itself.
    revoke(&app, &second_key, &id(&second))
        .await
        .error(409, "CONFLICT");
    assert_eq!(keys_of(&app, &second_key).await.len(), 3);
}

#[tokio::test]
async fn a_vault_shows_its_settings_to_any_of_its_keys() {
    let app = app().await;
    let vaults = admin::list_vaults(&*app.deps.db).await.unwrap();
    let stored = vaults.iter().find(|v| v.id == app.vault.vault_id).unwrap();
    // A new vault delivers publicly and has no delivery secret yet.
    let expected = json!({
        "id": stored.id,
        "name": stored.name,
        "created_at": stored.created_at,
        "delivery": "public",
        "delivery_secret_rotated_at": null,
    });
    for key in [app.pk(), app.sk()] {
        assert_eq!(
            app.call("vault_get").key(key).send().await.ok(200),
            expected
        );
    }
    for key in [&app.other.public_key, &app.other.secret_key] {
        app.call("vault_get")
            .key(key)
            .send()
            .await
            .error(403, "FORBIDDEN");
    }
    app.call("vault_get")
        .send()
        .await
        .error(401, "UNAUTHORIZED");
}

#[tokio::test]
async fn a_vault_is_renamed_by_a_secret_key_with_the_asset_patch_body_rules() {
    let app = app().await;
    let before = app.call("vault_get").key(app.pk()).send().await.ok(200);
    let patch = |key: &str, content_type: &str, body: &str| {
        app.call("vault_update")
            .key(key)
            .body(Some(content_type), body.to_owned())
    };
    for (content_type, body, field) in [
        ("application/json", "{}", "body"),
        ("application/json", r#"{"name":"x","id":"vault_x"}"#, "id"),
        ("application/json", r#"{"name":""}"#, "name"),
        ("application/json", r#"{"name":null}"#, "name"),
        (
            "application/json",
            &format!(r#"{{"name":"{}"}}"#, "n".repeat(101)),
            "name",
        ),
        ("application/json", "[]", "body"),
        ("text/plain", r#"{"name":"x"}"#, "body"),
    ] {
        patch(app.sk(), content_type, body)
            .send()
            .await
            .invalid(field);
    }
    patch(app.pk(), "application/json", r#"{"name":"x"}"#)
        .send()
        .await
        .error(403, "FORBIDDEN");
    patch(&app.other.secret_key, "application/json", r#"{"name":"x"}"#)
        .send()
        .await
        .error(403, "FORBIDDEN");
    assert_eq!(
        app.call("vault_get").key(app.pk()).send().await.ok(200),
        before
    );

    for (content_type, name) in [
        ("application/merge-patch+json", "production"),
        ("application/json", "prod, renamed"),
    ] {
        let body = json!({ "name": name }).to_string();
        let renamed = patch(app.sk(), content_type, &body).send().await.ok(200);
        let mut expected = before.clone();
        expected["name"] = json!(name);
        assert_eq!(renamed, expected);
        assert_eq!(
            app.call("vault_get").key(app.pk()).send().await.ok(200),
            expected
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Delivery (docs/API.md#delivery): `GET|HEAD /d/{vaultId}/{partition}/{collection}/{channel}/
// {filename}`, no key.

/// A store that counts the batches and statements sent to it: one delivery is one batch of one
/// statement, on every backend (the embedded one included, where no HTTP request is counted).
struct CountingDb {
    inner: Arc<dyn shared::db::Db>,
    batches: std::sync::atomic::AtomicU32,
    statements: std::sync::atomic::AtomicU32,
}

impl shared::db::Db for CountingDb {
    fn batch(
        &self,
        stmts: Vec<shared::db::Stmt>,
    ) -> shared::BoxFuture<'_, Result<Vec<shared::db::StmtResult>, DbError>> {
        self.batches.fetch_add(1, Ordering::SeqCst);
        self.statements
            .fetch_add(stmts.len() as u32, Ordering::SeqCst);
        self.inner.batch(stmts)
    }
}

/// 100 bytes, each its own index: any range of them is recognisable.
fn counting_bytes() -> Vec<u8> {
    (0u8..100).collect()
}

async fn delivered(app: &TestApp, filename: &str, bytes: &[u8]) -> (Value, String) {
    let form = Form::asset(
        "web",
        "site",
        "hero",
        filename,
        "application/octet-stream",
        bytes,
    );
    let record = app.create(&form).await;
    let path = TestApp::delivery_path(&record);
    (record, path)
}

#[tokio::test]
async fn a_public_vaults_asset_is_delivered_with_its_bytes_and_cache_headers() {
    let app = app().await;
    let png = fixture("tiny.png");
    let form = Form::asset("web", "site", "hero", "photo.png", "image/png", &png);
    let record = app.create(&form).await;
    let path = TestApp::delivery_path(&record);
    assert_eq!(
        path,
        format!("/d/{}/web/site/hero/photo.png", app.vault.vault_id)
    );
    let etag = format!("\"{}\"", id(&record));

    let counting = Arc::new(CountingDb {
        inner: app.deps.db.clone(),
        batches: Default::default(),
        statements: Default::default(),
    });
    let mut deps = app.another_instance().await;
    deps.db = counting.clone();
    let got = app.call_on(&deps, "deliver").raw_path(&path).send().await;
    assert_eq!(got.status.as_u16(), 200, "{}", got.snippet());
    assert_eq!(got.body, png, "byte-identical");
    assert_eq!(got.header("content-type"), Some("image/png"));
    assert_eq!(
        got.header("content-length"),
        Some(png.len().to_string().as_str())
    );
    assert_eq!(got.header("etag"), Some(etag.as_str()));
    assert_eq!(got.header("cache-control"), Some("public, max-age=3600"));
    assert_eq!(got.header("accept-ranges"), Some("bytes"));
    assert!(got.header("authorization").is_none());
    assert_eq!(
        (
            counting.batches.load(Ordering::SeqCst),
            counting.statements.load(Ordering::SeqCst)
        ),
        (1, 1),
        "one D1 request of one statement per delivery"
    );

    // A function URL (no path parameters, the raw path) delivers the same.
    let raw = app.deliver(&path).without_path_parameters().send().await;
    assert_eq!(raw.status.as_u16(), 200, "{}", raw.snippet());
    assert_eq!(raw.body, png);

    // HEAD: the same headers, no body.
    let head = app.deliver(&path).method(Method::HEAD).send().await;
    assert_eq!(head.status.as_u16(), 200, "{}", head.snippet());
    assert!(head.body.is_empty());
    for name in [
        "content-type",
        "content-length",
        "etag",
        "cache-control",
        "accept-ranges",
    ] {
        assert_eq!(head.header(name), got.header(name), "{name}");
    }

    // If-None-Match with the ETag (alone, in a list, weak, or `*`) is 304 without a body.
    for tags in [
        etag.clone(),
        format!("\"other\", {etag}"),
        format!("W/{etag}"),
        "*".to_owned(),
    ] {
        let cached = app
            .deliver(&path)
            .header("if-none-match", &tags)
            .send()
            .await;
        assert_eq!(cached.status.as_u16(), 304, "{tags}: {}", cached.snippet());
        assert!(cached.body.is_empty());
        assert_eq!(cached.header("etag"), Some(etag.as_str()));
        assert_eq!(cached.header("cache-control"), Some("public, max-age=3600"));
    }
    let stale = app
        .deliver(&path)
        .header("if-none-match", "\"asset_01JD0000000000000000000000\"")
        .send()
        .await;
    assert_eq!(stale.status.as_u16(), 200, "{}", stale.snippet());
    assert_eq!(stale.body, png);
}

#[tokio::test]
async fn ranges_are_206_with_only_their_bytes_and_416_when_unsatisfiable() {
    let app = app().await;
    let bytes = counting_bytes();
    let (record, path) = delivered(&app, "counting.bin", &bytes).await;
    let etag = format!("\"{}\"", id(&record));
    for (range, want) in [
        ("bytes=10-19", 10..20),
        ("bytes=-5", 95..100),
        ("bytes=90-", 90..100),
        ("bytes=98-400", 98..100),
        ("bytes=-400", 0..100),
        ("bytes=0-0", 0..1),
    ] {
        let reply = app.deliver(&path).header("range", range).send().await;
        assert_eq!(reply.status.as_u16(), 206, "{range}: {}", reply.snippet());
        assert_eq!(reply.body, bytes[want.clone()], "{range}");
        let content_range = format!("bytes {}-{}/100", want.start, want.end - 1);
        assert_eq!(reply.header("content-range"), Some(content_range.as_str()));
        let len = want.len().to_string();
        assert_eq!(
            reply.header("content-length"),
            Some(len.as_str()),
            "{range}"
        );
        assert_eq!(reply.header("etag"), Some(etag.as_str()));
        assert_eq!(reply.header("accept-ranges"), Some("bytes"));
    }
    // HEAD with a range: the 206's headers.
    let head = app
        .deliver(&path)
        .method(Method::HEAD)
        .header("range", "bytes=10-19")
        .send()
        .await;
    assert_eq!(head.status.as_u16(), 206, "{}", head.snippet());
    assert!(head.body.is_empty());
    assert_eq!(head.header("content-range"), Some("bytes 10-19/100"));
    for range in ["bytes=100-", "bytes=100-200", "bytes=500-"] {
        let reply = app.deliver(&path).header("range", range).send().await;
        let message = reply.error(416, "RANGE_NOT_SATISFIABLE");
        assert!(message.contains("100 bytes"), "{message}");
        assert_eq!(
            reply.header("content-range"),
            Some("bytes */100"),
            "{range}"
        );
    }
    // A range the answer may ignore (several, or another unit, or malformed) is the whole object.
    for range in ["bytes=0-1, 5-6", "items=0-1", "bytes=a-b"] {
        let reply = app.deliver(&path).header("range", range).send().await;
        assert_eq!(reply.status.as_u16(), 200, "{range}: {}", reply.snippet());
        assert_eq!(reply.body, bytes, "{range}");
        assert!(reply.header("content-range").is_none());
    }
    // If-None-Match wins over Range: the client has the bytes.
    let cached = app
        .deliver(&path)
        .header("range", "bytes=0-9")
        .header("if-none-match", &etag)
        .send()
        .await;
    assert_eq!(cached.status.as_u16(), 304, "{}", cached.snippet());
}

#[tokio::test]
async fn a_range_reads_only_its_bytes_from_the_store() {
    let app = app().await;
    let bytes = counting_bytes();
    let (record, path) = delivered(&app, "counting.bin", &bytes).await;
    // The object's first bytes are gone: a ranged read that skipped them still answers, and a
    // read of the whole object would have shown the change.
    let r2_key = record["r2_key"].as_str().unwrap();
    let mut changed = bytes.clone();
    changed[..50].fill(0xEE);
    app.blobs().delete(r2_key).await.unwrap();
    app.blobs()
        .put(r2_key, changed.clone().into(), "application/octet-stream")
        .await
        .unwrap();
    let part = app
        .deliver(&path)
        .header("range", "bytes=60-69")
        .send()
        .await;
    assert_eq!(part.status.as_u16(), 206, "{}", part.snippet());
    assert_eq!(part.body, bytes[60..70]);
    let early = app.deliver(&path).header("range", "bytes=0-9").send().await;
    assert_eq!(early.body, changed[..10]);
}

#[tokio::test]
async fn an_object_over_the_response_limit_is_redirected_or_413_without_urls() {
    let app = app().await;
    let bytes = counting_bytes();
    let (_record, path) = delivered(&app, "large.bin", &bytes).await;
    let mut deps = app.another_instance().await;
    deps.max_request_bytes = Some(50);
    let whole = app.call_on(&deps, "deliver").raw_path(&path).send().await;
    match app.backend() {
        // No object URLs on the embedded default (until a local object server serves them).
        imgbt_tests::Backend::Embedded => {
            let message = whole.error(413, "PAYLOAD_TOO_LARGE");
            assert!(message.contains("Lambda"), "{message}");
        }
        // R2: a presigned GET, which answers the bytes (and ranges) itself.
        _ => {
            assert_eq!(whole.status.as_u16(), 302, "{}", whole.snippet());
            assert_eq!(whole.header("cache-control"), Some("private, no-store"));
            let location = whole.header("location").expect("a 302 has a Location");
            let fetched = imgbt_tests::fetch(location).await;
            assert_eq!(fetched.status.as_u16(), 200, "{}", fetched.snippet());
            assert_eq!(fetched.body, bytes);
        }
    }
    // A range that fits is answered by the function on every backend; HEAD needs no body.
    let part = app
        .call_on(&deps, "deliver")
        .raw_path(&path)
        .header("range", "bytes=0-49")
        .send()
        .await;
    assert_eq!(part.status.as_u16(), 206, "{}", part.snippet());
    assert_eq!(part.body, bytes[..50]);
    let head = app
        .call_on(&deps, "deliver")
        .raw_path(&path)
        .method(Method::HEAD)
        .send()
        .await;
    assert_eq!(head.status.as_u16(), 200, "{}", head.snippet());
    assert_eq!(head.header("content-length"), Some("100"));
}

#[tokio::test]
async fn unknown_vaults_paths_and_deleted_assets_are_404() {
    let app = app().await;
    let (record, path) = delivered(&app, "here.txt", b"here").await;
    app.deliver(&path).send().await.ok_bytes(b"here");
    let vault = &app.vault.vault_id;
    let unknown_vault = "vault_01JD0000000000000000000000";
    for missing in [
        format!("/d/{unknown_vault}/web/site/hero/here.txt"),
        format!("/d/{vault}/web/site/hero/there.txt"),
        format!("/d/{vault}/web/site/other/here.txt"),
        format!("/d/{vault}/web/other/hero/here.txt"),
        format!("/d/{vault}/other/site/hero/here.txt"),
        // Another vault's path, with this vault's asset's hierarchy.
        format!("/d/{}/web/site/hero/here.txt", app.other.vault_id),
    ] {
        let reply = app.deliver(&missing).send().await;
        let message = reply.error(404, "NOT_FOUND");
        assert_eq!(message, "no asset at this URL", "{missing}");
    }
    // Not delivery paths at all: a malformed vault id, too few segments.
    for malformed in [
        "/d/vault_x/web/site/hero/here.txt".to_owned(),
        format!("/d/{vault}/web/site/here.txt"),
    ] {
        app.deliver(&malformed)
            .without_path_parameters()
            .send()
            .await
            .error(404, "NOT_FOUND");
    }
    // Only GET and HEAD.
    app.deliver(&path)
        .method(Method::POST)
        .send()
        .await
        .error(404, "NOT_FOUND");
    app.delete(app.sk(), &id(&record)).await;
    app.deliver(&path).send().await.error(404, "NOT_FOUND");
    app.deliver(&path)
        .method(Method::HEAD)
        .send()
        .await
        .error(404, "NOT_FOUND");
}

#[tokio::test]
async fn percent_encoded_and_unicode_names_are_delivered() {
    let app = app().await;
    for filename in [
        "été 2024 (final) #1.txt",
        "100% sure?.txt",
        "a+b=c&d.txt",
        "日本語.txt",
        "emoji 🎉.txt",
    ] {
        let bytes = filename.as_bytes().to_vec();
        let (record, path) = delivered(&app, filename, &bytes).await;
        assert_eq!(record["filename"], filename);
        assert!(path.is_ascii(), "{path}");
        // API Gateway's decoded parameters, a function URL's raw path, and a router's
        // parameters left encoded (`cargo lambda watch`) all find it.
        for call in [
            app.deliver(&path),
            app.deliver(&path).without_path_parameters(),
            app.deliver(&path).undecoded_path_parameters(),
        ] {
            let reply = call.send().await;
            assert_eq!(
                reply.status.as_u16(),
                200,
                "{filename}: {}",
                reply.snippet()
            );
            assert_eq!(reply.body, bytes, "{filename}");
        }
    }
    // A name sent decomposed (NFD) finds the asset stored composed (NFC).
    let nfd = "e\u{301}te\u{301}.txt";
    let (record, _) = delivered(&app, "\u{e9}t\u{e9}.txt", b"nfc").await;
    let path = shared::delivery::path(&app.vault.vault_id, "web", "site", "hero", nfd);
    let reply = app.deliver(&path).send().await;
    assert_eq!(reply.status.as_u16(), 200, "{}", reply.snippet());
    assert_eq!(
        reply.header("etag"),
        Some(format!("\"{}\"", id(&record)).as_str())
    );
}

/// Turns the app's vault's delivery to `mode` through the PATCH route, and returns its secret
/// as stored (the route never shows it).
async fn set_delivery(app: &TestApp, vault_id: &str, key: &str, mode: &str) -> Option<String> {
    let patched = app
        .call("vault_update")
        .vault(vault_id)
        .key(key)
        .json(&json!({"delivery": mode}))
        .send()
        .await
        .ok(200);
    assert_eq!(patched["delivery"], mode);
    assert!(!patched.to_string().contains("secret\""), "{patched}");
    delivery_secret(app, vault_id).await
}

async fn delivery_secret(app: &TestApp, vault_id: &str) -> Option<String> {
    let results = shared::db::run(
        &*app.deps.db,
        vec![shared::db::Stmt::new(
            "SELECT delivery_secret FROM vaults WHERE id = ?1",
            vec![vault_id.into()],
        )],
    )
    .await
    .unwrap();
    results[0].rows[0]
        .get("delivery_secret")
        .and_then(|v| v.as_str())
        .map(str::to_owned)
}

/// Rotates `vault_id`'s delivery secret as the rotation route will: the current one becomes the
/// previous one.
async fn rotate(app: &TestApp, vault_id: &str) {
    shared::db::run(
        &*app.deps.db,
        vec![shared::db::Stmt::new(
            "UPDATE vaults SET delivery_secret_previous = delivery_secret, delivery_secret = ?2, \
             delivery_secret_rotated_at = ?3 WHERE id = ?1",
            vec![
                vault_id.into(),
                shared::delivery::new_secret().into(),
                shared::clock::format_ms(app.deps.clock.now_ms()).into(),
            ],
        )],
    )
    .await
    .unwrap();
}

fn now_s(app: &TestApp) -> u64 {
    app.deps.clock.now_ms() / 1000
}

fn signed(secret: &str, vault_id: &str, path: &str, exp: u64, params: &[(&str, &str)]) -> String {
    let params: Vec<(String, String)> = params
        .iter()
        .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
        .collect();
    let query = shared::delivery::signed_query(secret, vault_id, path, exp, &params);
    format!("{path}?{query}")
}

#[tokio::test]
async fn a_signed_vault_delivers_only_valid_unexpired_signatures() {
    let app = app().await;
    let vault = app.vault.vault_id.clone();
    let (_, path) = delivered(&app, "private.txt", b"private").await;
    let (_, sibling) = delivered(&app, "sibling.txt", b"sibling").await;
    // Public: anyone with the URL; exp and sig are ignored.
    app.deliver(&format!("{path}?exp=1&sig=junk"))
        .send()
        .await
        .ok_bytes(b"private");

    let secret = set_delivery(&app, &vault, app.sk(), "signed")
        .await
        .expect("a vault turned signed gets a secret");
    assert_eq!(secret.len(), 64);
    let shown = app.call("vault_get").key(app.sk()).send().await.ok(200);
    assert_eq!(shown["delivery"], "signed");
    assert!(shown["delivery_secret_rotated_at"].is_string(), "{shown}");
    assert!(!shown.to_string().contains(&secret));

    let exp = now_s(&app) + 600;
    // A parameter that changes nothing: the text is delivered as is, and the signature covers it.
    let good = signed(&secret, &vault, &path, exp, &[("grayscale", "false")]);
    let reply = app.deliver(&good).send().await;
    assert_eq!(reply.status.as_u16(), 200, "{}", reply.snippet());
    assert_eq!(reply.body, b"private");
    let cache = reply.header("cache-control").unwrap();
    let max_age: u64 = cache
        .strip_prefix("private, max-age=")
        .unwrap_or_else(|| panic!("{cache}"))
        .parse()
        .unwrap();
    assert!((590..=600).contains(&max_age), "{cache}");
    // A far expiry is cached at most an hour.
    let far = signed(&secret, &vault, &path, now_s(&app) + 86_400, &[]);
    let reply = app.deliver(&far).send().await;
    assert_eq!(reply.header("cache-control"), Some("private, max-age=3600"));
    // HEAD and a function URL verify the same signature.
    let head = app.deliver(&good).method(Method::HEAD).send().await;
    assert_eq!(head.status.as_u16(), 200, "{}", head.snippet());
    let raw = app.deliver(&good).without_path_parameters().send().await;
    assert_eq!(raw.status.as_u16(), 200, "{}", raw.snippet());

    let expired = signed(&secret, &vault, &path, now_s(&app) - 1, &[]);
    let message = app.deliver(&expired).send().await.error(403, "FORBIDDEN");
    assert_eq!(message, "this URL expired");

    let refused = |url: String| {
        let app = &app;
        async move {
            let message = app.deliver(&url).send().await.error(403, "FORBIDDEN");
            assert!(message.contains("signed"), "{url}: {message}");
        }
    };
    // Tampered: another path (that exists), a parameter changed, added or removed, the expiry moved.
    let tampered_path = good.replacen(&path, &sibling, 1);
    refused(tampered_path).await;
    refused(good.replace("grayscale=false", "grayscale=true")).await;
    refused(format!("{good}&h=600")).await;
    refused(good.replace("grayscale=false&", "")).await;
    refused(good.replace(&format!("exp={exp}"), &format!("exp={}", exp + 1))).await;
    // Missing, empty or malformed.
    refused(path.clone()).await;
    refused(format!("{path}?exp={exp}")).await;
    refused(format!("{path}?exp={exp}&sig=")).await;
    refused(format!("{path}?exp=soon&sig=abc")).await;
    // Another vault's secret over this vault's path.
    let other_secret = set_delivery(&app, &app.other.vault_id, &app.other.secret_key, "signed")
        .await
        .unwrap();
    assert_ne!(other_secret, secret);
    refused(signed(&other_secret, &vault, &path, exp, &[])).await;
    // A signature of this vault's path made for the other vault's id.
    refused(signed(&secret, &app.other.vault_id, &path, exp, &[])).await;
    // An unknown path on a signed vault is refused before it is looked for.
    refused(format!("/d/{vault}/web/site/hero/none.txt")).await;

    // Back to public: the same URL without a signature works; the secret is kept.
    set_delivery(&app, &vault, app.sk(), "public").await;
    app.deliver(&path).send().await.ok_bytes(b"private");
    assert_eq!(
        delivery_secret(&app, &vault).await.as_deref(),
        Some(secret.as_str())
    );
}

#[tokio::test]
async fn a_rotated_secret_is_accepted_once_and_not_after_a_second_rotation() {
    let app = app().await;
    let vault = app.vault.vault_id.clone();
    let (_, path) = delivered(&app, "rotated.txt", b"rotated").await;
    let first = set_delivery(&app, &vault, app.sk(), "signed")
        .await
        .unwrap();
    let url = signed(&first, &vault, &path, now_s(&app) + 600, &[]);
    app.deliver(&url).send().await.ok_bytes(b"rotated");

    rotate(&app, &vault).await;
    let second = delivery_secret(&app, &vault).await.unwrap();
    assert_ne!(second, first);
    app.deliver(&url).send().await.ok_bytes(b"rotated");
    let fresh = signed(&second, &vault, &path, now_s(&app) + 600, &[]);
    app.deliver(&fresh).send().await.ok_bytes(b"rotated");

    rotate(&app, &vault).await;
    app.deliver(&url).send().await.error(403, "FORBIDDEN");
    app.deliver(&fresh).send().await.ok_bytes(b"rotated");
}

// ---------------------------------------------------------------------------------------------
// An asset's delivery URL (`GET …/assets/{assetId}/url`, any key) and the rotation of a vault's
// delivery secret (`POST …/delivery/rotate`, a secret key): docs/API.md#delivery.

/// The origin a request without a `Host` header gets (the local API's default).
const LOCAL_ORIGIN: &str = "http://localhost:9000";

/// The URL `asset_url` answers for `asset` with `key` and `query`, and its `expires_at`.
async fn url_of(app: &TestApp, key: &str, asset: &str, query: &str) -> (String, Value) {
    let answer = app
        .call("asset_url")
        .key(key)
        .asset(asset)
        .query(query)
        .send()
        .await
        .ok(200);
    let members: Vec<&String> = answer.as_object().unwrap().keys().collect();
    assert_eq!(members, ["expires_at", "url"], "{answer}");
    let url = answer["url"].as_str().expect("a URL").to_owned();
    (url, answer["expires_at"].clone())
}

/// The path and query of a URL `asset_url` made on the local origin: what a delivery request sends.
fn local(url: &str) -> &str {
    url.strip_prefix(LOCAL_ORIGIN)
        .unwrap_or_else(|| panic!("{url} is not on {LOCAL_ORIGIN}"))
}

/// The query of `url` as name=value pairs.
fn query_of(url: &str) -> Vec<(String, String)> {
    let query = url.split_once('?').map_or("", |(_, q)| q);
    form_urlencoded_pairs(query)
}

fn form_urlencoded_pairs(query: &str) -> Vec<(String, String)> {
    query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (n, v) = pair.split_once('=').unwrap_or((pair, ""));
            (n.to_owned(), v.to_owned())
        })
        .collect()
}

#[tokio::test]
async fn a_public_vaults_url_is_its_delivery_path_and_needs_no_key() {
    let app = app().await;
    let (record, path) = delivered(&app, "été 1.txt", b"public bytes").await;
    for key in [app.pk(), app.sk()] {
        let (url, expires_at) = url_of(&app, key, &id(&record), "").await;
        assert_eq!(url, format!("{LOCAL_ORIGIN}{path}"));
        assert_eq!(expires_at, Value::Null);
        // `expires` is taken (and checked) on a public vault too; the URL never expires.
        let (later, expires_at) = url_of(&app, key, &id(&record), "expires=60").await;
        assert_eq!((later.as_str(), expires_at), (url.as_str(), Value::Null));
    }
    let (url, _) = url_of(&app, app.pk(), &id(&record), "").await;
    app.deliver(local(&url))
        .send()
        .await
        .ok_bytes(b"public bytes");

    // The origin is the one the client reached: API Gateway's forwarded scheme and host.
    let forwarded = app
        .call("asset_url")
        .key(app.pk())
        .asset(&id(&record))
        .header("host", "api.example.com")
        .header("x-forwarded-proto", "https")
        .send()
        .await
        .ok(200);
    assert_eq!(
        forwarded["url"],
        format!("https://api.example.com{path}"),
        "{forwarded}"
    );
    // IMGBT_DELIVERY_URL (a CDN) wins over the request's origin.
    let mut deps = app.another_instance().await;
    deps.delivery_url = Some("https://cdn.example.com".into());
    let cdn = app
        .call_on(&deps, "asset_url")
        .key(app.pk())
        .asset(&id(&record))
        .header("host", "api.example.com")
        .send()
        .await
        .ok(200);
    assert_eq!(
        cdn["url"],
        format!("https://cdn.example.com{path}"),
        "{cdn}"
    );
}

#[tokio::test]
async fn a_signed_vaults_url_carries_a_signature_that_delivers_until_it_expires() {
    let app = app().await;
    let (record, path) = delivered(&app, "signed.txt", b"signed bytes").await;
    set_delivery(&app, &app.vault.vault_id, app.sk(), "signed").await;
    let before = now_s(&app);
    let (url, expires_at) = url_of(&app, app.pk(), &id(&record), "").await;
    let after = now_s(&app);
    assert!(url.starts_with(&format!("{LOCAL_ORIGIN}{path}?")), "{url}");
    let query = query_of(&url);
    let names: Vec<&str> = query.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["exp", "sig"], "{url}");
    let exp: u64 = query[0].1.parse().unwrap();
    // An hour by default, and expires_at says the same instant.
    assert!((before + 3600..=after + 3600).contains(&exp), "{exp}");
    assert_eq!(expires_at, json!(shared::clock::format_ms(exp * 1000)));
    let reply = app.deliver(local(&url)).send().await;
    assert_eq!(reply.status.as_u16(), 200, "{}", reply.snippet());
    assert_eq!(reply.body, b"signed bytes");
    assert_eq!(reply.header("cache-control"), Some("private, max-age=3600"));
    // Without its signature the path is refused.
    app.deliver(&path).send().await.error(403, "FORBIDDEN");

    // expires=60: delivered now, refused as expired once the minute has passed.
    let (short, _) = url_of(&app, app.sk(), &id(&record), "expires=60").await;
    let exp: u64 = query_of(&short)[0].1.parse().unwrap();
    assert!((before + 60..=now_s(&app) + 60).contains(&exp), "{exp}");
    app.deliver(local(&short))
        .send()
        .await
        .ok_bytes(b"signed bytes");
    let later = app.another_instance().await;
    later.clock.set_offset_ms(61_000);
    let message = app
        .call_on(&later, "deliver")
        .raw_path(local(&short))
        .send()
        .await
        .error(403, "FORBIDDEN");
    assert_eq!(message, "this URL expired");
    // The hour-long URL still works then.
    let reply = app
        .call_on(&later, "deliver")
        .raw_path(local(&url))
        .send()
        .await;
    assert_eq!(reply.status.as_u16(), 200, "{}", reply.snippet());
}

#[tokio::test]
async fn expires_is_a_whole_number_of_seconds_from_1_to_604800() {
    let app = app().await;
    let (record, _) = delivered(&app, "bounds.txt", b"bounds").await;
    set_delivery(&app, &app.vault.vault_id, app.sk(), "signed").await;
    for (query, seconds) in [("expires=1", 1), ("expires=604800", 604_800)] {
        let (url, _) = url_of(&app, app.pk(), &id(&record), query).await;
        let exp: u64 = query_of(&url)[0].1.parse().unwrap();
        let now = now_s(&app);
        assert!(
            (now - 5 + seconds..=now + seconds).contains(&exp),
            "{query}: {exp}"
        );
    }
    for query in [
        "expires=0",
        "expires=604801",
        "expires=-1",
        "expires=1h",
        "expires=",
        "expires=1.5",
        "expires=60&expires=60",
    ] {
        app.call("asset_url")
            .key(app.pk())
            .asset(&id(&record))
            .query(query)
            .send()
            .await
            .invalid("expires");
    }
    // A transform parameter's bad value is refused rather than signed into a URL that fails.
    app.call("asset_url")
        .key(app.pk())
        .asset(&id(&record))
        .query("w=0")
        .send()
        .await
        .invalid("w");
    // The key is checked before the query.
    app.call("asset_url")
        .key(&app.other.public_key)
        .asset(&id(&record))
        .query("expires=0")
        .send()
        .await
        .error(403, "FORBIDDEN");
}

/// The pixel size and the `Content-Type` of an image a delivery answered.
fn image_of(reply: &imgbt_tests::Reply) -> ((usize, usize), String) {
    assert_eq!(reply.status.as_u16(), 200, "{}", reply.snippet());
    let size = imagesize::blob_size(&reply.body).expect("an image the answer's bytes decode to");
    let mime = reply.header("content-type").unwrap_or_default().to_owned();
    ((size.width, size.height), mime)
}

#[tokio::test]
async fn a_urls_transform_parameters_are_checked_normalised_and_signed_so_the_url_delivers() {
    let app = app().await;
    // 5×4 pixels (tests/fixtures/README.md).
    let jpeg = fixture("tiny.jpg");
    let form = Form::asset("web", "site", "hero", "photo.jpg", "image/jpeg", &jpeg);
    let record = app.create(&form).await;
    let path = TestApp::delivery_path(&record);
    let asset = id(&record);

    // Public: the parameters in the delivery's spelling (names lowercased, aliases mapped,
    // sorted), unknown names left out; the URL delivers the variant.
    let (url, expires_at) = url_of(&app, app.pk(), &asset, "W=2&h=3&f=png&utm_source=x").await;
    assert_eq!(url, format!("{LOCAL_ORIGIN}{path}?format=png&h=3&w=2"));
    assert_eq!(expires_at, Value::Null);
    let reply = app.deliver(local(&url)).send().await;
    assert_eq!(image_of(&reply), ((2, 3), "image/png".to_owned()));
    let (plain, _) = url_of(&app, app.pk(), &asset, "v=2").await;
    assert_eq!(plain, format!("{LOCAL_ORIGIN}{path}"));
    app.deliver(local(&plain)).send().await.ok_bytes(&jpeg);

    // A bad value is 400 naming the parameter by its canonical name, whichever name was used.
    for (query, param) in [
        ("w=0", "w"),
        ("h=8193", "h"),
        ("dpr=4", "dpr"),
        ("fit=squash", "fit"),
        ("f=tiff", "format"),
        ("quality=0", "quality"),
        ("blur=101", "blur"),
        ("rt=45", "rotate"),
        ("flip=d", "flip"),
        ("grayscale=maybe", "grayscale"),
        ("crop=face", "crop"),
        ("g=up", "gravity"),
        ("bg=red", "bg"),
        ("w=8192&h=8192", "w"),
    ] {
        let message = app
            .call("asset_url")
            .key(app.pk())
            .asset(&asset)
            .query(query)
            .send()
            .await
            .invalid(param);
        assert!(
            message.starts_with(&format!("{param}: ")),
            "{query}: {message}"
        );
    }

    // Signed: the signature covers the parameters, so the URL delivers that variant and no other.
    set_delivery(&app, &app.vault.vault_id, app.sk(), "signed").await;
    let (url, _) = url_of(&app, app.pk(), &asset, "w=2&h=3&format=webp&expires=600").await;
    let query = query_of(&url);
    let names: Vec<&str> = query.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["format", "h", "w", "exp", "sig"], "{url}");
    let reply = app.deliver(local(&url)).send().await;
    assert_eq!(image_of(&reply), ((2, 3), "image/webp".to_owned()));
    // A cache-buster the CDN would drop does not break it.
    let busted = app.deliver(&format!("{}&v=2", local(&url))).send().await;
    assert_eq!(image_of(&busted), ((2, 3), "image/webp".to_owned()));
    let other_w = local(&url).replace("&w=2&", "&w=4&");
    assert_ne!(other_w, local(&url));
    app.deliver(&other_w).send().await.error(403, "FORBIDDEN");
    let added = format!("{}&rotate=90", local(&url));
    app.deliver(&added).send().await.error(403, "FORBIDDEN");
    let (plain, _) = url_of(&app, app.pk(), &asset, "").await;
    let names: Vec<String> = query_of(&plain).into_iter().map(|(n, _)| n).collect();
    assert_eq!(names, ["exp", "sig"], "{plain}");
    app.deliver(local(&plain)).send().await.ok_bytes(&jpeg);
}

#[tokio::test]
async fn a_url_is_any_keys_of_the_vault_and_a_rotation_a_secret_keys() {
    let app = app().await;
    let (record, _) = delivered(&app, "keys.txt", b"keys").await;
    let (theirs, _) = {
        let form = Form::tiny("web", "site", "hero", "theirs.txt");
        let reply = app
            .call("upload")
            .vault(&app.other.vault_id)
            .key(&app.other.secret_key)
            .form(&form)
            .send()
            .await
            .ok(201);
        (id(&reply), ())
    };
    url_of(&app, app.pk(), &id(&record), "").await;
    let before = app.call("vault_get").key(app.pk()).send().await.ok(200);
    app.call("delivery_rotate")
        .key(app.pk())
        .send()
        .await
        .error(403, "FORBIDDEN");
    for key in [&app.other.public_key, &app.other.secret_key] {
        app.call("asset_url")
            .key(key)
            .asset(&id(&record))
            .send()
            .await
            .error(403, "FORBIDDEN");
        app.call("delivery_rotate")
            .key(key)
            .send()
            .await
            .error(403, "FORBIDDEN");
    }
    assert_eq!(delivery_secret(&app, &app.vault.vault_id).await, None);
    assert_eq!(
        app.call("vault_get").key(app.pk()).send().await.ok(200),
        before
    );
    // Another vault's asset, an unknown one and a malformed id are not this vault's.
    for asset in [
        theirs.as_str(),
        "asset_01JD0000000000000000000000",
        "not-an-id",
    ] {
        app.call("asset_url")
            .key(app.sk())
            .asset(asset)
            .send()
            .await
            .error(404, "ASSET_NOT_FOUND");
    }
    app.call("asset_url")
        .asset(&id(&record))
        .send()
        .await
        .error(401, "UNAUTHORIZED");
    app.call("delivery_rotate")
        .send()
        .await
        .error(401, "UNAUTHORIZED");
}

/// The stored current and previous delivery secrets of the app's vault.
async fn secrets(app: &TestApp) -> (Option<String>, Option<String>) {
    let results = shared::db::run(
        &*app.deps.db,
        vec![shared::db::Stmt::new(
            "SELECT delivery_secret, delivery_secret_previous FROM vaults WHERE id = ?1",
            vec![app.vault.vault_id.as_str().into()],
        )],
    )
    .await
    .unwrap();
    let row = &results[0].rows[0];
    let text = |column: &str| row.get(column).and_then(|v| v.as_str()).map(str::to_owned);
    (text("delivery_secret"), text("delivery_secret_previous"))
}

#[tokio::test]
async fn a_rotation_keeps_old_urls_working_once_and_never_shows_a_secret() {
    let app = app().await;
    let (record, _) = delivered(&app, "rotation.txt", b"rotation").await;
    let first = set_delivery(&app, &app.vault.vault_id, app.sk(), "signed")
        .await
        .unwrap();
    let (old_url, _) = url_of(&app, app.pk(), &id(&record), "").await;

    let rotated = app
        .call("delivery_rotate")
        .key(app.sk())
        .send()
        .await
        .ok(200);
    let (second, previous) = secrets(&app).await;
    let second = second.unwrap();
    assert_ne!(second, first);
    assert_eq!(previous.as_deref(), Some(first.as_str()));
    // The answer is the vault's record, as GET shows it, and carries neither secret.
    assert_eq!(
        rotated,
        app.call("vault_get").key(app.pk()).send().await.ok(200)
    );
    assert_eq!(rotated["delivery"], "signed");
    assert!(
        rotated["delivery_secret_rotated_at"].is_string(),
        "{rotated}"
    );
    for secret in [&first, &second] {
        assert!(!rotated.to_string().contains(secret.as_str()), "{rotated}");
    }
    // The URL made before is still delivered; a new one is signed with the new secret.
    app.deliver(local(&old_url))
        .send()
        .await
        .ok_bytes(b"rotation");
    let (new_url, _) = url_of(&app, app.pk(), &id(&record), "").await;
    assert_eq!(
        query_of(&new_url)[1].1,
        shared::delivery::sign(
            &second,
            &app.vault.vault_id,
            &TestApp::delivery_path(&record),
            query_of(&new_url)[0].1.parse().unwrap(),
            &[]
        )
    );
    app.deliver(local(&new_url))
        .send()
        .await
        .ok_bytes(b"rotation");

    // A second rotation retires the first secret: its URL is refused, the newer one still works.
    app.call("delivery_rotate")
        .key(app.sk())
        .send()
        .await
        .ok(200);
    assert_eq!(secrets(&app).await.1.as_deref(), Some(second.as_str()));
    app.deliver(local(&old_url))
        .send()
        .await
        .error(403, "FORBIDDEN");
    app.deliver(local(&new_url))
        .send()
        .await
        .ok_bytes(b"rotation");

    // A public vault may rotate too (its next signed URLs will use the new secret); it stays public.
    set_delivery(&app, &app.other.vault_id, &app.other.secret_key, "public").await;
    let other = app
        .call("delivery_rotate")
        .vault(&app.other.vault_id)
        .key(&app.other.secret_key)
        .send()
        .await
        .ok(200);
    assert_eq!(other["delivery"], "public");
    assert!(delivery_secret(&app, &app.other.vault_id).await.is_some());
}
