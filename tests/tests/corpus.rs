//! The bad-request corpus: every file under `tests/corpus/` (format in `tests/corpus/README.md`) is
//! one bad request and the 4xx docs/API.md gives it. Each is sent to its function on an app seeded
//! with one asset in each vault, and must come back with exactly its status and code, in the error
//! envelope, as `application/json`, with a short message that names the field (when the file says
//! which) and leaks nothing internal. No request may get a 5xx or panic, and none may change what
//! the store holds. Every failure is collected and reported at once, by file name.

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use imgbt_tests::{Form, Reply, TestApp, dispatch};
use lambda_http::http::header::{HeaderName, HeaderValue};
use lambda_http::http::{Method, Request as HttpRequest};
use lambda_http::{Body, RequestExt};
use serde::Deserialize;
use serde_json::Value;
use shared::auth::KeyKind;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

/// The corpus must not shrink below this.
const MIN_CASES: usize = 150;

/// Longest message an error may carry: one sentence naming a field, never an echo of a large input.
const MAX_MESSAGE_CHARS: usize = 400;

/// Text that only the server's insides could put in a message: its SQL, its tables, its crates,
/// a panic. Compared case-insensitively.
const INTERNAL_TEXT: [&str; 16] = [
    "select ",
    "insert into",
    "update assets",
    "delete from",
    "from assets",
    "api_keys",
    "key_hash",
    "pending_deletions",
    "sqlite",
    "json_patch",
    "returning",
    "constraint",
    "panicked",
    "backtrace",
    ".rs:",
    "internal error",
];

const FUNCTIONS: [&str; 13] = [
    "upload",
    "list",
    "get",
    "update",
    "delete",
    "keys_list",
    "key_create",
    "key_revoke",
    "vault_get",
    "vault_update",
    "asset_url",
    "delivery_rotate",
    "deliver",
];

/// One corpus file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Case {
    why: String,
    function: String,
    method: Option<String>,
    vault: Option<String>,
    asset: Option<String>,
    key_id: Option<String>,
    /// The raw path, instead of the route's own shape; the path parameters are sent all the same.
    path: Option<String>,
    query: Option<String>,
    cursor_json: Option<String>,
    auth: Option<String>,
    #[serde(default)]
    headers: Vec<(String, HeaderText)>,
    /// Absent: the default for the body kind; null: no Content-Type header.
    #[serde(default, deserialize_with = "present")]
    content_type: Option<Option<String>>,
    body_text: Option<String>,
    body_base64: Option<String>,
    form: Option<FormEdit>,
    multipart: Option<Multipart>,
    json: Option<Value>,
    expect: Expect,
}

/// Tells an absent member (`None`) from an explicit `null` (`Some(None)`).
fn present<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Option<String>>, D::Error> {
    Option::<String>::deserialize(d).map(Some)
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum HeaderText {
    Text(String),
    Bytes { base64: String },
}

/// The valid upload form, changed.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FormEdit {
    #[serde(default)]
    set: serde_json::Map<String, Value>,
    #[serde(default)]
    drop: Vec<String>,
    #[serde(default)]
    add: Vec<PartSpec>,
    boundary: Option<String>,
    end: Option<String>,
    #[serde(default)]
    cut: usize,
    preamble: Option<String>,
}

/// A multipart body from its parts.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Multipart {
    parts: Vec<PartSpec>,
    boundary: Option<String>,
    end: Option<String>,
    #[serde(default)]
    cut: usize,
    preamble: Option<String>,
}

/// How the parts go on the wire.
struct Wire<'a> {
    boundary: Option<&'a str>,
    /// Instead of the closing delimiter `--{boundary}--\r\n`.
    end: Option<&'a str>,
    /// Bytes dropped from the end of the finished body.
    cut: usize,
    /// Text put before the first delimiter.
    preamble: Option<&'a str>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct PartSpec {
    name: Option<String>,
    filename: Option<String>,
    content_type: Option<String>,
    /// Raw header lines, instead of those built from name, filename and content_type.
    head: Option<String>,
    head_base64: Option<String>,
    value: Option<String>,
    value_base64: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Expect {
    status: u16,
    code: String,
    field: Option<String>,
}

const DEFAULT_BOUNDARY: &str = "corpus-boundary-3f9a";

/// The valid upload every `form` case starts from.
fn base_parts() -> Vec<PartSpec> {
    let field = |name: &str, value: &str| PartSpec {
        name: Some(name.into()),
        value: Some(value.into()),
        ..PartSpec::default()
    };
    vec![
        field("partition", "corpus"),
        field("collection", "bad"),
        field("channel", "requests"),
        PartSpec {
            name: Some("file".into()),
            filename: Some("ok.txt".into()),
            content_type: Some("text/plain".into()),
            value: Some("hello".into()),
            ..PartSpec::default()
        },
    ]
}

/// What the placeholders of a case stand for.
struct Names {
    map: HashMap<&'static str, String>,
}

impl Names {
    fn of(app: &TestApp, seeded: &Seeded) -> Self {
        let map = HashMap::from([
            ("vault", app.vault.vault_id.clone()),
            ("other_vault", app.other.vault_id.clone()),
            ("sk", app.vault.secret_key.clone()),
            ("pk", app.vault.public_key.clone()),
            ("other_sk", app.other.secret_key.clone()),
            ("other_pk", app.other.public_key.clone()),
            ("asset", seeded.asset.clone()),
            ("other_asset", seeded.other_asset.clone()),
            ("sk_id", seeded.keys.sk_id.clone()),
            ("pk_id", seeded.keys.pk_id.clone()),
            ("other_sk_id", seeded.keys.other_sk_id.clone()),
            ("other_pk_id", seeded.keys.other_pk_id.clone()),
            ("revoked_key_id", seeded.keys.revoked_key_id.clone()),
            ("revoked_pk", seeded.keys.revoked_pk.clone()),
        ]);
        Names { map }
    }

    /// Replaces `${name}`, `${repeat:N:TEXT}` and `${seq:N:TEXT}` (TEXT with `#` replaced by
    /// 0..N, joined by commas). TEXT ends at the first `}`.
    fn expand(&self, text: &str, boundary: &str) -> Result<String, String> {
        let mut out = String::with_capacity(text.len());
        let mut rest = text;
        while let Some(start) = rest.find("${") {
            out.push_str(&rest[..start]);
            let after = &rest[start + 2..];
            let end = after
                .find('}')
                .ok_or_else(|| format!("unclosed placeholder in {text:?}"))?;
            let inner = &after[..end];
            rest = &after[end + 1..];
            if inner == "boundary" {
                out.push_str(boundary);
            } else if let Some(value) = self.map.get(inner) {
                out.push_str(value);
            } else if let Some(args) = inner.strip_prefix("repeat:") {
                let (n, unit) = count_and_text(args)?;
                out.push_str(&unit.repeat(n));
            } else if let Some(args) = inner.strip_prefix("seq:") {
                let (n, unit) = count_and_text(args)?;
                let items: Vec<String> =
                    (0..n).map(|i| unit.replace('#', &i.to_string())).collect();
                out.push_str(&items.join(","));
            } else {
                return Err(format!("unknown placeholder ${{{inner}}}"));
            }
        }
        out.push_str(rest);
        Ok(out)
    }
}

fn count_and_text(args: &str) -> Result<(usize, &str), String> {
    let (n, unit) = args
        .split_once(':')
        .ok_or_else(|| format!("expected N:TEXT, got {args:?}"))?;
    let n = n.parse().map_err(|_| format!("bad count {n:?}"))?;
    Ok((n, unit))
}

fn base64_bytes(text: &str) -> Result<Vec<u8>, String> {
    STANDARD
        .decode(text)
        .map_err(|e| format!("bad base64 ({e}): {text:?}"))
}

/// The assets and keys every case runs beside.
struct Seeded {
    asset: String,
    other_asset: String,
    keys: SeededKeys,
}

/// The ids of the keys each vault is created with, and a public key of the first vault that was
/// revoked (with the key itself, which must be refused).
struct SeededKeys {
    sk_id: String,
    pk_id: String,
    other_sk_id: String,
    other_pk_id: String,
    revoked_key_id: String,
    revoked_pk: String,
}

/// The id of the one key of `kind` that `vault_id` was created with.
async fn key_id_of(app: &TestApp, vault_id: &str, kind: &str) -> String {
    let keys = shared::admin::list_keys(&*app.deps.db, vault_id)
        .await
        .expect("list keys");
    let mut of_kind = keys.iter().filter(|k| k.kind == kind);
    let key = of_kind.next().expect("a key of the kind");
    assert!(of_kind.next().is_none(), "one {kind} key in {vault_id}");
    key.id.clone()
}

async fn seed_keys(app: &TestApp) -> SeededKeys {
    let (vault, other) = (&app.vault.vault_id, &app.other.vault_id);
    // Read before the revoked key is added, so that each vault holds one key of each kind.
    let sk_id = key_id_of(app, vault, "secret").await;
    let pk_id = key_id_of(app, vault, "public").await;
    let other_sk_id = key_id_of(app, other, "secret").await;
    let other_pk_id = key_id_of(app, other, "public").await;
    let db = &*app.deps.db;
    let revoked = shared::admin::create_key(db, &app.deps.clock, vault, KeyKind::Public, "gone")
        .await
        .expect("create key")
        .expect("the vault is there");
    assert!(
        shared::admin::revoke_key(db, &app.deps.clock, vault, &revoked.key_id)
            .await
            .expect("revoke key")
    );
    SeededKeys {
        sk_id,
        pk_id,
        other_sk_id,
        other_pk_id,
        revoked_key_id: revoked.key_id,
        revoked_pk: revoked.key,
    }
}

async fn seeded_app() -> (Arc<TestApp>, Seeded) {
    let app = TestApp::new().await;
    let form = Form::standard()
        .field("metadata", r#"{"alt":"Hero","nested":{"a":1}}"#)
        .field("tags", r#"["hero","blog"]"#);
    let asset = app.create(&form).await["id"]
        .as_str()
        .expect("asset id")
        .to_owned();
    let other = app
        .call("upload")
        .vault(&app.other.vault_id)
        .key(&app.other.secret_key)
        .form(&Form::standard())
        .send()
        .await
        .ok(201);
    let other_asset = other["id"].as_str().expect("asset id").to_owned();
    let keys = seed_keys(&app).await;
    (
        Arc::new(app),
        Seeded {
            asset,
            other_asset,
            keys,
        },
    )
}

/// Everything a client or the disk could observe of both vaults: their assets, their keys (with
/// `revoked_at`), their settings, and every object file.
async fn snapshot(app: &TestApp) -> (Value, Vec<PathBuf>) {
    let mine = app.list(app.sk(), "limit=200").await.ok(200);
    let theirs = app
        .call("list")
        .vault(&app.other.vault_id)
        .key(&app.other.secret_key)
        .query("limit=200")
        .send()
        .await
        .ok(200);
    let db = &*app.deps.db;
    let mut keys = Vec::new();
    for vault in [&app.vault.vault_id, &app.other.vault_id] {
        let listed = shared::admin::list_keys(db, vault)
            .await
            .expect("list keys");
        keys.push(serde_json::to_value(listed).expect("keys as JSON"));
    }
    let vaults = shared::admin::list_vaults(db).await.expect("list vaults");
    // The settings the API shows (delivery mode, when the delivery secret last changed).
    let mut settings = Vec::new();
    for (vault, key) in [
        (&app.vault.vault_id, &app.vault.public_key),
        (&app.other.vault_id, &app.other.public_key),
    ] {
        let reply = app.call("vault_get").vault(vault).key(key).send().await;
        settings.push(reply.ok(200));
    }
    let records = serde_json::json!({
        "assets": [mine["data"], theirs["data"]],
        "keys": keys,
        "vaults": serde_json::to_value(vaults).expect("vaults as JSON"),
        "settings": settings,
    });
    let mut files = app.object_files();
    files.sort();
    (records, files)
}

/// Percent-encodes every byte a URI cannot carry as it is (`keep` names the extra bytes kept).
fn encode_uri(text: &str, keep: &[u8]) -> String {
    let mut out = String::with_capacity(text.len());
    for &b in text.as_bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) || keep.contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The request a case describes, and the function it goes to.
fn build(case: &Case, names: &Names) -> Result<lambda_http::Request, String> {
    if !FUNCTIONS.contains(&case.function.as_str()) {
        return Err(format!("no function {:?}", case.function));
    }
    let route = shared::routes::route_of(&case.function);
    let legacy = [shared::routes::ASSETS, shared::routes::ASSET].contains(&route.path);
    let wants_asset = route.path.contains("{assetId}");
    let wants_key = route.path.contains("{keyId}");
    let x = |text: &str| names.expand(text, DEFAULT_BOUNDARY);

    let method = case.method.as_deref().unwrap_or(route.method);
    let method = Method::from_bytes(method.as_bytes()).map_err(|e| format!("method: {e}"))?;
    let vault = x(case.vault.as_deref().unwrap_or("${vault}"))?;
    let asset = match (&case.asset, wants_asset) {
        (Some(asset), _) => Some(x(asset)?),
        (None, true) => Some(x("${asset}")?),
        (None, false) => None,
    };
    let key_id = match (&case.key_id, wants_key) {
        (Some(key_id), _) => Some(x(key_id)?),
        (None, true) => Some(x("${pk_id}")?),
        (None, false) => None,
    };
    let path = if let Some(raw) = &case.path {
        encode_uri(&x(raw)?, b"/")
    } else if legacy {
        let mut path = format!("/api/v1/vaults/{}/assets", encode_uri(&vault, b""));
        if let Some(asset) = &asset {
            path = format!("{path}/{}", encode_uri(asset, b""));
        }
        path
    } else {
        // A later route takes only requests of its own shape (docs/API.md#route-matching).
        let fill = |id: &Option<String>| encode_uri(id.as_deref().unwrap_or_default(), b"");
        route
            .path
            .replace("{vaultId}", &encode_uri(&vault, b""))
            .replace("{assetId}", &fill(&asset))
            .replace("{keyId}", &fill(&key_id))
    };
    let mut query = match &case.query {
        Some(q) => encode_uri(&x(q)?, b"!$&'()*+,;=:@/?%"),
        None => String::new(),
    };
    if let Some(cursor) = &case.cursor_json {
        let encoded = URL_SAFE_NO_PAD.encode(x(cursor)?);
        if !query.is_empty() {
            query.push('&');
        }
        query.push_str(&format!("cursor={encoded}"));
    }
    let uri = if query.is_empty() {
        path
    } else {
        format!("{path}?{query}")
    };

    let bodies = [
        case.body_text.is_some(),
        case.body_base64.is_some(),
        case.form.is_some(),
        case.multipart.is_some(),
        case.json.is_some(),
    ];
    if bodies.iter().filter(|b| **b).count() > 1 {
        return Err("more than one of body_text, body_base64, form, multipart, json".into());
    }
    let (body, default_type) = if let Some(text) = &case.body_text {
        (Body::Text(x(text)?), None)
    } else if let Some(b64) = &case.body_base64 {
        (Body::Binary(base64_bytes(b64)?), None)
    } else if let Some(edit) = &case.form {
        let parts = edit_form(edit)?;
        let wire = Wire {
            boundary: edit.boundary.as_deref(),
            end: edit.end.as_deref(),
            cut: edit.cut,
            preamble: edit.preamble.as_deref(),
        };
        multipart_body(&parts, &wire, names)?
    } else if let Some(mp) = &case.multipart {
        let wire = Wire {
            boundary: mp.boundary.as_deref(),
            end: mp.end.as_deref(),
            cut: mp.cut,
            preamble: mp.preamble.as_deref(),
        };
        multipart_body(&mp.parts, &wire, names)?
    } else if let Some(json) = &case.json {
        let text = x(&json.to_string())?;
        (Body::Text(text), Some("application/json".to_owned()))
    } else {
        (Body::Empty, None)
    };
    let content_type = match &case.content_type {
        Some(explicit) => explicit.as_deref().map(x).transpose()?,
        None => default_type,
    };

    let mut req = HttpRequest::builder()
        .method(method)
        .uri(&uri)
        .body(body)
        .map_err(|e| format!("request {uri:?}: {e}"))?;
    let mut headers: Vec<(String, Vec<u8>)> = Vec::new();
    let auth = case.auth.as_deref().unwrap_or("secret");
    let key = match auth {
        "secret" => Some(format!("Bearer {}", names.map["sk"])),
        "public" => Some(format!("Bearer {}", names.map["pk"])),
        "other-secret" => Some(format!("Bearer {}", names.map["other_sk"])),
        "other-public" => Some(format!("Bearer {}", names.map["other_pk"])),
        "none" => None,
        raw => Some(x(raw)?),
    };
    if let Some(key) = key {
        headers.push(("authorization".into(), key.into_bytes()));
    }
    if let Some(ct) = content_type {
        headers.push(("content-type".into(), ct.into_bytes()));
    }
    for (name, value) in &case.headers {
        let value = match value {
            HeaderText::Text(text) => x(text)?.into_bytes(),
            HeaderText::Bytes { base64 } => base64_bytes(base64)?,
        };
        headers.push((name.clone(), value));
    }
    for (name, value) in headers {
        let header_name =
            HeaderName::from_bytes(name.as_bytes()).map_err(|e| format!("header {name:?}: {e}"))?;
        let header_value =
            HeaderValue::from_bytes(&value).map_err(|e| format!("header {name} value: {e}"))?;
        req.headers_mut().append(header_name, header_value);
    }
    let mut params = HashMap::from([("vaultId".to_owned(), vault)]);
    if let Some(asset) = asset {
        params.insert("assetId".to_owned(), asset);
    }
    if let Some(key_id) = key_id {
        params.insert("keyId".to_owned(), key_id);
    }
    Ok(req.with_path_parameters(params))
}

fn edit_form(edit: &FormEdit) -> Result<Vec<PartSpec>, String> {
    let mut parts = base_parts();
    for name in &edit.drop {
        let before = parts.len();
        parts.retain(|p| p.name.as_deref() != Some(name));
        if parts.len() == before {
            return Err(format!("form.drop: no part {name:?}"));
        }
    }
    for (name, value) in &edit.set {
        let part = match value {
            Value::String(text) => PartSpec {
                name: Some(name.clone()),
                value: Some(text.clone()),
                ..PartSpec::default()
            },
            Value::Object(_) => {
                let mut part: PartSpec = serde_json::from_value(value.clone())
                    .map_err(|e| format!("form.set.{name}: {e}"))?;
                if part.name.is_none() && part.head.is_none() && part.head_base64.is_none() {
                    part.name = Some(name.clone());
                }
                part
            }
            other => return Err(format!("form.set.{name}: a string or a part, not {other}")),
        };
        match parts.iter_mut().find(|p| p.name.as_deref() == Some(name)) {
            Some(slot) => *slot = part,
            None => parts.push(part),
        }
    }
    parts.extend(edit.add.iter().cloned());
    Ok(parts)
}

fn multipart_body(
    parts: &[PartSpec],
    wire: &Wire<'_>,
    names: &Names,
) -> Result<(Body, Option<String>), String> {
    let boundary = wire.boundary.unwrap_or(DEFAULT_BOUNDARY);
    let x = |text: &str| names.expand(text, boundary);
    let mut out: Vec<u8> = Vec::new();
    if let Some(preamble) = wire.preamble {
        out.extend_from_slice(x(preamble)?.as_bytes());
    }
    for part in parts {
        out.extend_from_slice(format!("--{boundary}\r\n").as_bytes());
        match (&part.head, &part.head_base64) {
            (Some(head), None) => out.extend_from_slice(x(head)?.as_bytes()),
            (None, Some(b64)) => out.extend_from_slice(&base64_bytes(b64)?),
            (None, None) => {
                let name = part.name.as_deref().map(x).transpose()?;
                let mut head = String::from("Content-Disposition: form-data");
                if let Some(name) = name {
                    head.push_str(&format!("; name=\"{name}\""));
                }
                if let Some(filename) = &part.filename {
                    head.push_str(&format!("; filename=\"{}\"", x(filename)?));
                }
                if let Some(ct) = &part.content_type {
                    head.push_str(&format!("\r\nContent-Type: {}", x(ct)?));
                }
                out.extend_from_slice(head.as_bytes());
            }
            (Some(_), Some(_)) => return Err("a part has both head and head_base64".into()),
        }
        out.extend_from_slice(b"\r\n\r\n");
        match (&part.value, &part.value_base64) {
            (Some(value), None) => out.extend_from_slice(x(value)?.as_bytes()),
            (None, Some(b64)) => out.extend_from_slice(&base64_bytes(b64)?),
            (None, None) => {}
            (Some(_), Some(_)) => return Err("a part has both value and value_base64".into()),
        }
        out.extend_from_slice(b"\r\n");
    }
    match wire.end {
        Some(end) => out.extend_from_slice(x(end)?.as_bytes()),
        None => out.extend_from_slice(format!("--{boundary}--\r\n").as_bytes()),
    }
    if wire.cut > out.len() {
        return Err(format!("cut {} of a {}-byte body", wire.cut, out.len()));
    }
    out.truncate(out.len() - wire.cut);
    Ok((
        Body::Binary(out),
        Some(format!("multipart/form-data; boundary={boundary}")),
    ))
}

/// Everything wrong with `reply` as the answer `expect` describes; empty when it is right.
fn judge(reply: &Reply, expect: &Expect, names: &Names) -> Vec<String> {
    let mut problems = Vec::new();
    let status = reply.status.as_u16();
    if status >= 500 {
        problems.push(format!("a {status} for a bad request"));
    }
    if status != expect.status {
        problems.push(format!("status {status}, expected {}", expect.status));
    }
    let ct = reply.header("content-type").unwrap_or_default();
    if ct != "application/json" && !ct.starts_with("application/json;") {
        problems.push(format!("content-type {ct:?}"));
    }
    let body: Value = match serde_json::from_slice(&reply.body) {
        Ok(body) => body,
        Err(e) => {
            problems.push(format!("body is not JSON ({e}): {}", reply.snippet()));
            return problems;
        }
    };
    let error = body.get("error").and_then(Value::as_object);
    let shaped = body.as_object().is_some_and(|o| o.len() == 1)
        && error.is_some_and(|e| {
            e.len() == 3
                && e["code"].is_string()
                && e["message"].is_string()
                && e["status"].is_u64()
        });
    if !shaped {
        problems.push(format!("not the error envelope: {body}"));
        return problems;
    }
    let error = error.expect("checked above");
    if error["code"] != expect.code.as_str() {
        problems.push(format!("code {}, expected {}", error["code"], expect.code));
    }
    if error["status"] != status {
        problems.push(format!("envelope status {} on a {status}", error["status"]));
    }
    let message = error["message"].as_str().unwrap_or_default();
    if message.trim().is_empty() {
        problems.push("empty message".into());
    }
    if message.chars().count() > MAX_MESSAGE_CHARS {
        problems.push(format!(
            "a message of {} characters: {}…",
            message.chars().count(),
            message.chars().take(120).collect::<String>()
        ));
    }
    let lower = message.to_lowercase();
    for text in INTERNAL_TEXT {
        if lower.contains(text) {
            problems.push(format!(
                "the message shows internal text {text:?}: {message}"
            ));
        }
    }
    for key in ["sk", "pk", "other_sk", "other_pk", "revoked_pk"] {
        if message.contains(&names.map[key][3..]) {
            problems.push(format!("the message shows a key: {message}"));
        }
    }
    if let Some(field) = &expect.field
        && !message.starts_with(&format!("{field}: "))
    {
        problems.push(format!(
            "the message should name `{field}` first: {message}"
        ));
    }
    if status == 401 && reply.header("www-authenticate") != Some("Bearer") {
        problems.push("a 401 without WWW-Authenticate: Bearer".into());
    }
    problems
}

fn corpus_files() -> Vec<PathBuf> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        let entries = std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
        for entry in entries {
            let path = entry.expect("directory entry").path();
            if path.is_dir() {
                walk(&path, out);
            } else if path.extension().is_some_and(|e| e == "json") {
                out.push(path);
            }
        }
    }
    let mut out = Vec::new();
    walk(&corpus_dir(), &mut out);
    out.sort();
    out
}

fn corpus_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_bad_request_in_the_corpus_gets_its_4xx_and_changes_nothing() {
    let started = Instant::now();
    // CORPUS_VERBOSE=1 prints every answer, to read the messages a client gets.
    let verbose = std::env::var_os("CORPUS_VERBOSE").is_some();
    let files = corpus_files();
    let root = corpus_dir();
    let (mut app, mut seeded) = seeded_app().await;
    let mut before = snapshot(&app).await;
    let mut failures: Vec<String> = Vec::new();
    let mut per_category: std::collections::BTreeMap<String, usize> = Default::default();

    for path in &files {
        let label = path
            .strip_prefix(&root)
            .unwrap_or(path)
            .display()
            .to_string();
        let category = label.split('/').next().unwrap_or_default().to_owned();
        *per_category.entry(category).or_default() += 1;
        let case: Case = match std::fs::read_to_string(path)
            .map_err(|e| e.to_string())
            .and_then(|text| serde_json::from_str(&text).map_err(|e| e.to_string()))
        {
            Ok(case) => case,
            Err(e) => {
                failures.push(format!("{label}: not a corpus case: {e}"));
                continue;
            }
        };
        if case.why.trim().is_empty() {
            failures.push(format!("{label}: says nothing in `why`"));
        }
        if !(400..500).contains(&case.expect.status) {
            failures.push(format!(
                "{label}: expects {}; the corpus is of 4xx",
                case.expect.status
            ));
        }
        let names = Names::of(&app, &seeded);
        let req = match build(&case, &names) {
            Ok(req) => req,
            Err(e) => {
                failures.push(format!("{label}: cannot build the request: {e}"));
                continue;
            }
        };
        let task_app = app.clone();
        let function = case.function.clone();
        let outcome =
            tokio::spawn(async move { dispatch(&task_app.deps, &function, req).await }).await;
        let reply = match outcome {
            Ok(response) => Reply::from(response),
            Err(e) => {
                failures.push(format!("{label}: the handler panicked: {e}"));
                (app, seeded) = seeded_app().await;
                before = snapshot(&app).await;
                continue;
            }
        };
        if verbose {
            eprintln!("{label}: {} {}", reply.status.as_u16(), reply.snippet());
        }
        let mut problems = judge(&reply, &case.expect, &names);
        let after = snapshot(&app).await;
        if after != before {
            problems.push("the store changed".into());
        }
        if !problems.is_empty() {
            failures.push(format!("{label} ({}): {}", case.why, problems.join("; ")));
        }
        if after != before {
            // Start again from a clean store, so that one failure cannot hide or cause another.
            (app, seeded) = seeded_app().await;
            before = snapshot(&app).await;
        }
    }

    eprintln!(
        "corpus: {} cases in {:.1?}: {per_category:?}",
        files.len(),
        started.elapsed()
    );
    if files.len() < MIN_CASES {
        failures.push(format!(
            "the corpus has {} cases; it must keep at least {MIN_CASES}",
            files.len()
        ));
    }
    assert!(
        failures.is_empty(),
        "{} of {} corpus cases failed:\n{}",
        failures.len(),
        files.len(),
        failures.join("\n")
    );
}

#[test]
fn placeholders_expand() {
    let names = Names {
        map: HashMap::from([("vault", "vault_X".to_owned())]),
    };
    let x = |t: &str| names.expand(t, "B");
    assert_eq!(x("a${vault}b").unwrap(), "avault_Xb");
    assert_eq!(x("${repeat:3:ab}").unwrap(), "ababab");
    assert_eq!(x("[${seq:3:\"t#\"}]").unwrap(), r#"["t0","t1","t2"]"#);
    assert_eq!(x("--${boundary}").unwrap(), "--B");
    assert!(x("${nope}").is_err());
    assert!(x("${vault").is_err());
}
