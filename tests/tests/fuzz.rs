//! Property tests over request parsing and validation, bounded to run in a few seconds.
//!
//! Two kinds of property:
//! - Handlers (upload, list, update, get, key_create, vault_update, and the Authorization header on
//!   list): whatever arrives, the answer is a 2xx or a 4xx in the error envelope, never a 5xx or a
//!   panic. Where the input is generated with structure, an independent model of docs/API.md's
//!   rules says which: accepted exactly when every rule holds.
//! - Validators (`PathSegment`, `Filename`, `Cursor`, `Limit`, `Tags`, `Metadata`): never panic,
//!   and accept exactly what the rule, checked here independently, allows.
//!
//! Runs are reproducible: the seed is fixed unless `IMGBT_FUZZ_SEED` (a number) says otherwise, and
//! `PROPTEST_CASES` overrides every property's number of cases. A failure prints the smallest input
//! found; a bad request found this way belongs in `tests/corpus/` too.

use imgbt_tests::{Reply, TestApp, dispatch, is_api_time, is_ulid};
use lambda_http::http::header::{HeaderName, HeaderValue};
use lambda_http::http::{Method, Request as HttpRequest};
use lambda_http::{Body, RequestExt};
use proptest::prelude::*;
use proptest::test_runner::{Config, RngAlgorithm, TestCaseError, TestRng, TestRunner};
use serde_json::{Map, Value, json};
use shared::cursor::Cursor;
use shared::validate::{Filename, Limit, Metadata, PathSegment, Tags};
use std::collections::{HashMap, HashSet};
use std::fmt::Debug;
use std::time::Instant;
use unicode_normalization::UnicodeNormalization;

// ---------------------------------------------------------------------------------------------
// The runner

const DEFAULT_SEED: u64 = 0x1b7_f022_2026;

fn runner(cases: u32) -> TestRunner {
    let mut config = Config {
        failure_persistence: None,
        max_shrink_iters: 2048,
        ..Config::default()
    };
    if std::env::var_os("PROPTEST_CASES").is_none() {
        config.cases = cases;
    }
    let seed = std::env::var("IMGBT_FUZZ_SEED")
        .ok()
        .and_then(|s| s.parse::<u64>().ok())
        .unwrap_or(DEFAULT_SEED);
    let mut bytes = [0u8; 32];
    for chunk in bytes.chunks_mut(8) {
        chunk.copy_from_slice(&seed.to_le_bytes());
    }
    TestRunner::new_with_rng(config, TestRng::from_seed(RngAlgorithm::ChaCha, &bytes))
}

/// Runs `test` over `cases` values of `strategy`; panics with the smallest failing value.
fn check<S>(
    name: &str,
    cases: u32,
    strategy: S,
    test: impl Fn(S::Value) -> Result<(), TestCaseError>,
) where
    S: Strategy,
    S::Value: Debug,
{
    let started = Instant::now();
    let mut runner = runner(cases);
    let result = runner.run(&strategy, test);
    eprintln!("fuzz {name}: {:.1?}", started.elapsed());
    if let Err(err) = result {
        panic!("{name}: {err}");
    }
}

/// An app with one asset, and a runtime to drive its handlers from the (synchronous) runner.
struct Env {
    rt: tokio::runtime::Runtime,
    app: TestApp,
    asset: String,
}

impl Env {
    fn new() -> Self {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        let (app, asset) = rt.block_on(async {
            let app = TestApp::new().await;
            let form = imgbt_tests::Form::standard().field("metadata", r#"{"a":{"b":1}}"#);
            let record = app.create(&form).await;
            let asset = record["id"].as_str().expect("id").to_owned();
            (app, asset)
        });
        Env { rt, app, asset }
    }

    fn send(&self, function: &str, req: Req) -> Reply {
        let request = req.build(self, function);
        self.rt
            .block_on(async { Reply::from(dispatch(&self.app.deps, function, request).await) })
    }
}

/// A request to one function in the app's vault; the key is the secret one unless said otherwise.
#[derive(Default)]
struct Req {
    query: String,
    asset: Option<String>,
    authorization: Option<Vec<u8>>,
    no_key: bool,
    content_type: Option<String>,
    body: Vec<u8>,
}

impl Req {
    fn build(self, env: &Env, function: &str) -> lambda_http::Request {
        let route = shared::routes::route_of(function);
        let vault = env.app.vault.vault_id.clone();
        let asset = self
            .asset
            .clone()
            .or_else(|| (route.path == shared::routes::ASSET).then(|| env.asset.clone()));
        let legacy = [shared::routes::ASSETS, shared::routes::ASSET].contains(&route.path);
        let mut uri = if legacy {
            let mut uri = format!("/api/v1/vaults/{vault}/assets");
            if let Some(asset) = &asset {
                uri = format!("{uri}/{}", encode_uri(asset, b""));
            }
            uri
        } else {
            // A later route takes only requests of its own shape (docs/API.md#route-matching).
            route.path.replace("{vaultId}", &vault)
        };
        if !self.query.is_empty() {
            uri = format!("{uri}?{}", encode_uri(&self.query, b"!$&'()*+,;=:@/?%"));
        }
        let mut req = HttpRequest::builder()
            .method(Method::from_bytes(route.method.as_bytes()).expect("method"))
            .uri(&uri)
            .body(Body::Binary(self.body))
            .unwrap_or_else(|e| panic!("request {uri:?}: {e}"));
        let headers = req.headers_mut();
        let authorization = match (self.authorization, self.no_key) {
            (Some(value), _) => Some(value),
            (None, false) => Some(format!("Bearer {}", env.app.sk()).into_bytes()),
            (None, true) => None,
        };
        if let Some(value) = authorization {
            headers.insert(
                HeaderName::from_static("authorization"),
                HeaderValue::from_bytes(&value).expect("a header value"),
            );
        }
        if let Some(ct) = self.content_type {
            headers.insert(
                HeaderName::from_static("content-type"),
                HeaderValue::from_str(&ct).expect("a content type"),
            );
        }
        let mut params = HashMap::from([("vaultId".to_owned(), vault)]);
        if let Some(asset) = asset {
            params.insert("assetId".to_owned(), asset);
        }
        req.with_path_parameters(params)
    }
}

/// Percent-encodes every byte a URI cannot carry as it is.
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

/// A 2xx, or a 4xx in the error envelope; never a 5xx.
fn well_formed(reply: &Reply) -> Result<(), TestCaseError> {
    let status = reply.status.as_u16();
    prop_assert!(
        (200..300).contains(&status) || (400..500).contains(&status),
        "status {status}: {}",
        reply.snippet()
    );
    if status == 204 {
        prop_assert!(reply.body.is_empty());
        return Ok(());
    }
    let ct = reply.header("content-type").unwrap_or_default();
    prop_assert!(ct.starts_with("application/json"), "content-type {ct:?}");
    let body: Value = serde_json::from_slice(&reply.body)
        .map_err(|e| TestCaseError::fail(format!("not JSON ({e}): {}", reply.snippet())))?;
    if status >= 400 {
        let error = &body["error"];
        let codes: &[&str] = match status {
            400 => &["INVALID_PARAMS"],
            401 => &["UNAUTHORIZED"],
            403 => &["FORBIDDEN"],
            404 => &["ASSET_NOT_FOUND", "NOT_FOUND"],
            409 => &["CONFLICT"],
            413 => &["PAYLOAD_TOO_LARGE"],
            429 => &["RATE_LIMITED"],
            other => return Err(TestCaseError::fail(format!("unexpected {other}"))),
        };
        prop_assert!(
            body.as_object().is_some_and(|o| o.len() == 1)
                && error.as_object().is_some_and(|e| e.len() == 3)
                && error["code"].as_str().is_some_and(|c| codes.contains(&c))
                && error["status"] == status
                && error["message"].as_str().is_some_and(|m| !m.is_empty()),
            "not the error envelope of a {status}: {body}"
        );
    }
    Ok(())
}

/// `well_formed`, and exactly `status` with the code docs/API.md#error-codes gives it.
fn answered(reply: &Reply, status: u16) -> Result<(), TestCaseError> {
    well_formed(reply)?;
    prop_assert_eq!(reply.status.as_u16(), status, "{}", reply.snippet());
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// The rules of docs/API.md#validation-rules, checked independently of shared::validate

fn segment_rule() -> regex_lite::Regex {
    regex_lite::Regex::new(r"^[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?$").expect("regex")
}

/// The filename rule (docs/API.md#filenames), on the name as stored: Unicode NFC.
fn filename_ok(name: &str) -> bool {
    let name = nfc(name);
    let name = name.as_str();
    !name.is_empty()
        && name.len() <= 255
        && name != "."
        && name != ".."
        && !name.contains('/')
        && !name.contains('\\')
        && !name.chars().any(char::is_control)
}

fn nfc(name: &str) -> String {
    name.nfc().collect()
}

fn last_segment(name: &str) -> &str {
    name.rsplit(['/', '\\']).next().unwrap_or(name)
}

fn metadata_ok(value: &Value) -> bool {
    value.is_object() && serde_json::to_string(value).is_ok_and(|t| t.len() <= 16 * 1024)
}

/// The tags `value` stands for, when it is a valid tags value.
fn tags_of(value: &Value) -> Option<Vec<String>> {
    let mut tags: Vec<String> = Vec::new();
    for item in value.as_array()? {
        let tag = item.as_str()?;
        if !(1..=64).contains(&tag.chars().count()) {
            return None;
        }
        if !tags.iter().any(|t| t == tag) {
            tags.push(tag.to_owned());
        }
    }
    (tags.len() <= 64).then_some(tags)
}

fn limit_of(text: &str) -> Option<usize> {
    let canonical = !text.is_empty()
        && text.len() <= 3
        && text.bytes().all(|b| b.is_ascii_digit())
        && !text.starts_with('0');
    let n: usize = if canonical {
        text.parse().ok()?
    } else {
        return None;
    };
    (1..=200).contains(&n).then_some(n)
}

// ---------------------------------------------------------------------------------------------
// Generators

/// Mostly valid path segments, and the strings around the rule's edges.
fn segment() -> BoxedStrategy<String> {
    segment_weighted(4)
}

/// Path segments, valid `valid` times in `valid + 3`.
fn segment_weighted(valid: u32) -> BoxedStrategy<String> {
    prop_oneof![
        valid => "[a-z0-9]([a-z0-9-]{0,62}[a-z0-9])?",
        1 => "[a-z0-9-]{0,70}",
        1 => "[a-zA-Z0-9_ ./-]{0,8}",
        1 => any::<String>(),
    ]
    .boxed()
}

/// Small JSON values, with nested objects and arrays.
fn json_value() -> BoxedStrategy<Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        "[a-z é\"\\\\]{0,12}".prop_map(Value::from),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::from),
            prop::collection::btree_map("[a-e]", inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
    .boxed()
}

fn object() -> BoxedStrategy<Value> {
    prop::collection::btree_map("[a-e]", json_value(), 0..4)
        .prop_map(|m| Value::Object(m.into_iter().collect()))
        .boxed()
}

/// Metadata values: objects (some right at the 16 KiB edge) and every other JSON type.
fn metadata_value() -> BoxedStrategy<Value> {
    prop_oneof![
        4 => object(),
        1 => (16_360usize..16_400).prop_map(|n| json!({ "k": "x".repeat(n) })),
        2 => json_value(),
    ]
    .boxed()
}

/// Tags values: arrays of strings around the count and length limits, and other JSON.
fn tags_value() -> BoxedStrategy<Value> {
    let tag = prop_oneof![
        6 => "[a-z]{1,6}",
        1 => "[a-zé]{60,66}",
        1 => Just(String::new()),
    ];
    prop_oneof![
        4 => prop::collection::vec(tag, 0..8).prop_map(Value::from),
        1 => (60usize..70, 0usize..3).prop_map(|(n, repeats)| {
            let mut tags: Vec<Value> = (0..n).map(|i| Value::from(format!("t{i}"))).collect();
            tags.extend((0..repeats).map(|i| Value::from(format!("t{i}"))));
            Value::from(tags)
        }),
        2 => json_value(),
    ]
    .boxed()
}

/// Text that is sometimes JSON and sometimes not.
fn json_text(value: BoxedStrategy<Value>) -> BoxedStrategy<String> {
    prop_oneof![
        5 => value.prop_map(|v| v.to_string()),
        1 => any::<String>(),
        1 => "[\\[\\]{}\",:0-9a-z ]{0,12}",
    ]
    .boxed()
}

// ---------------------------------------------------------------------------------------------
// Upload

const FIELDS: [&str; 7] = [
    "file",
    "partition",
    "collection",
    "channel",
    "filename",
    "metadata",
    "tags",
];
const BOUNDARY: &str = "fuzz-boundary-Zq81";

#[derive(Debug, Clone)]
struct Part {
    name: Option<String>,
    filename: Option<String>,
    content_type: Option<&'static str>,
    value: Vec<u8>,
}

fn text_part(name: &str, value: String) -> Part {
    Part {
        name: Some(name.to_owned()),
        filename: None,
        content_type: None,
        value: value.into_bytes(),
    }
}

/// A file name as a Content-Disposition carries it: no quote, no control character, not ending in
/// a backslash (which would escape the closing quote).
fn uploaded_name() -> BoxedStrategy<String> {
    prop_oneof![
        4 => "[a-zA-Z0-9 ._()é-]{1,16}",
        2 => "[a-zA-Z0-9 ._/\\\\é-]{0,24}",
        1 => "[a-z]{250,260}",
    ]
    .prop_filter("ends in a backslash", |n| !n.ends_with('\\'))
    .boxed()
}

fn filename_field() -> BoxedStrategy<String> {
    prop_oneof![
        4 => "[a-zA-Z0-9 ._()é-]{1,16}",
        2 => any::<String>(),
        1 => prop::sample::select(vec![".", "..", "", "a/b", "a\\b", "a\u{0}b", "a\u{85}b"])
            .prop_map(str::to_owned),
        1 => "[a-zé]{127,130}",
    ]
    .boxed()
}

/// How many times each field is sent (mostly as a valid upload would), in a shuffled order, with
/// at times a part the API does not know.
fn form_parts() -> BoxedStrategy<Vec<Part>> {
    let count = |p_absent: u32, p_once: u32, p_twice: u32| prop_oneof![p_absent => Just(0usize), p_once => Just(1usize), p_twice => Just(2usize)];
    let file = (
        prop::option::weighted(0.9, uploaded_name()),
        prop::option::of(prop::sample::select(vec![
            "text/plain",
            "image/png",
            "application/octet-stream",
            "multipart/mixed; boundary=x",
        ])),
        prop::collection::vec(any::<u8>(), 0..64),
    )
        .prop_map(|(filename, content_type, value)| Part {
            name: Some("file".into()),
            filename,
            content_type,
            value,
        });
    let unknown = prop_oneof![
        "[a-zA-Z_]{1,10}".prop_map(Some),
        Just(None),
        Just(Some(String::new())),
    ]
    .prop_map(|name| Part {
        name,
        filename: None,
        content_type: None,
        value: b"x".to_vec(),
    });
    let text = |name: &'static str, values: BoxedStrategy<String>| {
        values.prop_map(move |v| text_part(name, v))
    };
    let invalid_utf8 = |name: &'static str| {
        Just(Part {
            name: Some(name.to_owned()),
            filename: None,
            content_type: None,
            value: b"a\xffb".to_vec(),
        })
    };
    (
        (count(1, 30, 1), prop::collection::vec(file, 2)),
        (
            count(1, 30, 1),
            prop::collection::vec(text("partition", segment_weighted(16)), 2),
        ),
        (
            count(1, 30, 1),
            prop::collection::vec(text("collection", segment_weighted(16)), 2),
        ),
        (
            count(1, 30, 1),
            prop::collection::vec(text("channel", segment_weighted(16)), 2),
        ),
        (
            count(10, 5, 1),
            prop::collection::vec(text("filename", filename_field()), 2),
        ),
        (
            count(5, 5, 1),
            prop::collection::vec(text("metadata", json_text(metadata_value())), 2),
        ),
        (
            count(5, 5, 1),
            prop::collection::vec(text("tags", json_text(tags_value())), 2),
        ),
        prop::option::weighted(0.1, unknown),
        prop::option::weighted(0.05, invalid_utf8("partition")),
    )
        .prop_flat_map(|(f, p, c, ch, n, m, t, unknown, bad_text)| {
            let mut parts = Vec::new();
            for (count, candidates) in [f, p, c, ch, n, m, t] {
                parts.extend(candidates.into_iter().take(count));
            }
            parts.extend(unknown);
            if let Some(bad) = bad_text {
                parts.retain(|p| p.name.as_deref() != Some("partition"));
                parts.push(bad);
            }
            Just(parts).prop_shuffle()
        })
        .boxed()
}

fn form_bytes(parts: &[Part]) -> Vec<u8> {
    let mut out = Vec::new();
    for part in parts {
        out.extend_from_slice(format!("--{BOUNDARY}\r\nContent-Disposition: form-data").as_bytes());
        if let Some(name) = &part.name {
            out.extend_from_slice(format!("; name=\"{name}\"").as_bytes());
        }
        if let Some(filename) = &part.filename {
            out.extend_from_slice(format!("; filename=\"{filename}\"").as_bytes());
        }
        if let Some(ct) = part.content_type {
            out.extend_from_slice(format!("\r\nContent-Type: {ct}").as_bytes());
        }
        out.extend_from_slice(b"\r\n\r\n");
        out.extend_from_slice(&part.value);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(format!("--{BOUNDARY}--\r\n").as_bytes());
    out
}

/// The upload rules (docs/API.md#the-multipart-form), applied to the parts as sent.
fn upload_is_valid(parts: &[Part]) -> bool {
    let mut seen = HashSet::new();
    for part in parts {
        let Some(name) = part.name.as_deref() else {
            return false;
        };
        if !FIELDS.contains(&name) || !seen.insert(name) {
            return false;
        }
    }
    let mut text: HashMap<&str, String> = HashMap::new();
    for part in parts.iter().filter(|p| p.name.as_deref() != Some("file")) {
        let Ok(value) = String::from_utf8(part.value.clone()) else {
            return false;
        };
        text.insert(part.name.as_deref().unwrap_or_default(), value);
    }
    let Some(file) = parts.iter().find(|p| p.name.as_deref() == Some("file")) else {
        return false;
    };
    let rule = segment_rule();
    let segments_ok = ["partition", "collection", "channel"]
        .iter()
        .all(|f| text.get(f).is_some_and(|v| rule.is_match(v)));
    let name_ok = match (text.get("filename"), &file.filename) {
        (Some(name), _) => filename_ok(name),
        (None, Some(uploaded)) => filename_ok(last_segment(uploaded)),
        (None, None) => false,
    };
    let json = |field: &str| text.get(field).map(|t| serde_json::from_str::<Value>(t));
    let metadata_valid = match json("metadata") {
        None => true,
        Some(Ok(value)) => metadata_ok(&value),
        Some(Err(_)) => false,
    };
    let tags_valid = match json("tags") {
        None => true,
        Some(Ok(value)) => tags_of(&value).is_some(),
        Some(Err(_)) => false,
    };
    segments_ok && name_ok && metadata_valid && tags_valid
}

#[test]
fn structured_uploads_are_accepted_exactly_when_every_rule_holds() {
    let env = Env::new();
    check("upload: structured forms", 600, form_parts(), |parts| {
        let valid = upload_is_valid(&parts);
        let reply = env.send(
            "upload",
            Req {
                content_type: Some(format!("multipart/form-data; boundary={BOUNDARY}")),
                body: form_bytes(&parts),
                ..Req::default()
            },
        );
        well_formed(&reply)?;
        let status = reply.status.as_u16();
        if valid {
            prop_assert!(
                status == 201 || status == 409,
                "a valid form got {status}: {}",
                reply.snippet()
            );
        } else {
            prop_assert_eq!(status, 400, "an invalid form: {}", reply.snippet());
        }
        Ok(())
    });
}

/// A change that breaks a form's framing.
#[derive(Debug, Clone)]
enum Damage {
    Truncate(usize),
    Insert(usize, Vec<u8>),
    Replace(usize, u8),
    LfOnly,
    NoClose,
}

#[test]
fn damaged_and_arbitrary_upload_bodies_are_refused_cleanly() {
    let env = Env::new();
    let damage = prop_oneof![
        any::<usize>().prop_map(Damage::Truncate),
        (any::<usize>(), prop::collection::vec(any::<u8>(), 1..8))
            .prop_map(|(i, b)| Damage::Insert(i, b)),
        (any::<usize>(), any::<u8>()).prop_map(|(i, b)| Damage::Replace(i, b)),
        Just(Damage::LfOnly),
        Just(Damage::NoClose),
    ];
    let content_type = prop_oneof![
        6 => Just(format!("multipart/form-data; boundary={BOUNDARY}")),
        1 => Just("multipart/form-data".to_owned()),
        1 => Just("multipart/form-data; boundary=".to_owned()),
        1 => "[ -~]{0,40}",
    ];
    let body = prop_oneof![
        3 => (form_parts(), prop::collection::vec(damage, 1..3)).prop_map(|(parts, damage)| {
            let mut bytes = form_bytes(&parts);
            for d in damage {
                match d {
                    Damage::Truncate(i) => bytes.truncate(i % (bytes.len() + 1)),
                    Damage::Insert(i, b) => {
                        let at = i % (bytes.len() + 1);
                        bytes.splice(at..at, b);
                    }
                    Damage::Replace(i, b) if !bytes.is_empty() => {
                        let at = i % bytes.len();
                        bytes[at] = b;
                    }
                    Damage::Replace(..) => {}
                    Damage::LfOnly => {
                        bytes = String::from_utf8_lossy(&bytes).replace("\r\n", "\n").into_bytes();
                    }
                    Damage::NoClose => {
                        let close = format!("--{BOUNDARY}--\r\n");
                        if bytes.ends_with(close.as_bytes()) {
                            bytes.truncate(bytes.len() - close.len());
                        }
                    }
                }
            }
            bytes
        }),
        1 => prop::collection::vec(any::<u8>(), 0..512),
    ];
    check(
        "upload: damaged and arbitrary bodies",
        400,
        (content_type, body),
        |(ct, body)| {
            let reply = env.send(
                "upload",
                Req {
                    content_type: Some(ct),
                    body,
                    ..Req::default()
                },
            );
            well_formed(&reply)
        },
    );
}

// ---------------------------------------------------------------------------------------------
// List

fn cursor_text() -> BoxedStrategy<String> {
    prop_oneof![
        3 => (0u64..4_102_444_800_000).prop_map(|ms| {
            Cursor {
                created_at: shared::clock::format_ms(ms),
                id: shared::ids::new_asset_id(ms),
            }
            .encode()
        }),
        1 => "[A-Za-z0-9_=+/-]{0,40}",
        1 => any::<String>(),
    ]
    .boxed()
}

fn limit_text() -> BoxedStrategy<String> {
    prop_oneof![
        3 => (0u32..260).prop_map(|n| n.to_string()),
        1 => "[0-9]{1,5}",
        1 => "[-+ .e0-9a-z]{0,5}",
    ]
    .boxed()
}

fn list_pairs() -> BoxedStrategy<Vec<(String, String)>> {
    let pair = prop_oneof![
        2 => segment().prop_map(|v| ("partition".to_owned(), v)),
        2 => segment().prop_map(|v| ("collection".to_owned(), v)),
        2 => segment().prop_map(|v| ("channel".to_owned(), v)),
        2 => limit_text().prop_map(|v| ("limit".to_owned(), v)),
        2 => cursor_text().prop_map(|v| ("cursor".to_owned(), v)),
        1 => ("[a-zA-Z_]{0,8}", "[a-z0-9]{0,4}"),
    ];
    prop::collection::vec(pair, 0..5).boxed()
}

fn list_is_valid(pairs: &[(String, String)]) -> bool {
    let rule = segment_rule();
    let mut seen = HashSet::new();
    pairs.iter().all(|(name, value)| {
        seen.insert(name.as_str())
            && match name.as_str() {
                "partition" | "collection" | "channel" => rule.is_match(value),
                "limit" => limit_of(value).is_some(),
                "cursor" => value.len() <= 256 && cursor_shape_ok(value),
                _ => false,
            }
    })
}

/// What the cursor generator's valid cursors look like once decoded.
fn cursor_shape_ok(text: &str) -> bool {
    use base64::Engine;
    let Ok(bytes) = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(text) else {
        return false;
    };
    let Ok(value) = serde_json::from_slice::<Value>(&bytes) else {
        return false;
    };
    let fields = value.as_object().map(Map::len) == Some(2);
    let time = value["created_at"].as_str().is_some_and(is_api_time);
    let id = value["id"]
        .as_str()
        .and_then(|id| id.strip_prefix("asset_"))
        .is_some_and(is_ulid);
    fields && time && id
}

#[test]
fn list_queries_are_answered_200_exactly_when_every_parameter_is_valid() {
    let env = Env::new();
    check("list: structured queries", 600, list_pairs(), |pairs| {
        let query = form_urlencoded::Serializer::new(String::new())
            .extend_pairs(pairs.iter())
            .finish();
        let reply = env.send(
            "list",
            Req {
                query,
                ..Req::default()
            },
        );
        answered(&reply, if list_is_valid(&pairs) { 200 } else { 400 })
    });
}

#[test]
fn arbitrary_list_query_strings_are_refused_cleanly() {
    let env = Env::new();
    let query = prop_oneof![
        any::<String>(),
        "[a-z=&%0-9A-F+]{0,40}",
        "(partition|collection|channel|limit|cursor|x)=[^&#]{0,10}(&(partition|limit|cursor)=[^&#]{0,10}){0,3}",
    ];
    check("list: arbitrary query strings", 400, query, |query| {
        let reply = env.send(
            "list",
            Req {
                query,
                ..Req::default()
            },
        );
        well_formed(&reply)
    });
}

// ---------------------------------------------------------------------------------------------
// Update

/// PATCH bodies. Metadata stays well under the limit here: a merge into the stored metadata could
/// pass it, and that rule is the contract suite's.
fn patch_body() -> BoxedStrategy<Value> {
    let metadata = prop_oneof![4 => object(), 2 => json_value()];
    let members = (
        prop::option::weighted(0.6, metadata),
        prop::option::weighted(0.6, tags_value()),
        prop::option::weighted(0.1, ("[a-zA-Z]{1,8}", json_value())),
    )
        .prop_map(|(metadata, tags, other)| {
            let mut object = Map::new();
            if let Some(m) = metadata {
                object.insert("metadata".into(), m);
            }
            if let Some(t) = tags {
                object.insert("tags".into(), t);
            }
            if let Some((name, value)) = other {
                object.insert(name, value);
            }
            Value::Object(object)
        });
    prop_oneof![6 => members, 1 => json_value()].boxed()
}

fn patch_content_type() -> BoxedStrategy<Option<String>> {
    prop::option::weighted(
        0.95,
        prop::sample::select(vec![
            "application/json",
            "application/json",
            "application/json",
            "application/merge-patch+json",
            "Application/JSON; charset=utf-8",
            "text/plain",
            "application/json-patch+json",
        ])
        .prop_map(str::to_owned),
    )
    .boxed()
}

fn patch_is_valid(content_type: Option<&str>, body: &Value) -> bool {
    let essence = content_type.map(|ct| {
        ct.split(';')
            .next()
            .unwrap_or_default()
            .trim()
            .to_ascii_lowercase()
    });
    let json = matches!(
        essence.as_deref(),
        Some("application/json" | "application/merge-patch+json")
    );
    let Some(object) = body.as_object() else {
        return false;
    };
    let known = object.keys().all(|k| k == "metadata" || k == "tags");
    let some = object.contains_key("metadata") || object.contains_key("tags");
    let metadata = object.get("metadata").is_none_or(metadata_ok);
    let tags = object.get("tags").is_none_or(|t| tags_of(t).is_some());
    json && known && some && metadata && tags
}

#[test]
fn patches_are_accepted_exactly_when_every_rule_holds() {
    let env = Env::new();
    check(
        "update: structured bodies",
        600,
        (patch_content_type(), patch_body()),
        |(content_type, body)| {
            let valid = patch_is_valid(content_type.as_deref(), &body);
            let reply = env.send(
                "update",
                Req {
                    content_type,
                    body: body.to_string().into_bytes(),
                    ..Req::default()
                },
            );
            answered(&reply, if valid { 200 } else { 400 })
        },
    );
}

#[test]
fn arbitrary_patch_bodies_are_refused_cleanly() {
    let env = Env::new();
    let body = prop_oneof![
        prop::collection::vec(any::<u8>(), 0..256),
        any::<String>().prop_map(String::into_bytes),
        "[\\[\\]{}\",:0-9a-z ]{0,40}".prop_map(String::into_bytes),
    ];
    check(
        "update: arbitrary bodies",
        300,
        (patch_content_type(), body),
        |(content_type, body)| {
            let reply = env.send(
                "update",
                Req {
                    content_type,
                    body,
                    ..Req::default()
                },
            );
            well_formed(&reply)
        },
    );
}

// ---------------------------------------------------------------------------------------------
// Keys and the vault (docs/API.md#key-management, docs/API.md#vault)

/// The label and vault name rule, checked independently of shared::keys: a string of 1 to 100
/// characters (not bytes), none of them a C0 control, DEL or a C1 control.
fn label_ok(value: Option<&Value>) -> bool {
    let Some(text) = value.and_then(Value::as_str) else {
        return false;
    };
    let control = |c: char| c <= '\u{1f}' || ('\u{7f}'..='\u{9f}').contains(&c);
    (1..=100).contains(&text.chars().count()) && !text.chars().any(control)
}

/// Labels and names: strings at the length edges (0, 1, 100, 101 characters) of characters of
/// one to four UTF-8 bytes, one time in five with a control character put in somewhere; any
/// text; and every other JSON type.
fn label_value() -> BoxedStrategy<Value> {
    let printable = prop_oneof![
        30 => prop::sample::select(vec!['a', 'Z', '7', ' ', '-', 'é', 'ß', '漢', '🙂', '\u{a0}']),
        1 => any::<char>(),
    ];
    let control = prop::sample::select(vec![
        '\0', '\t', '\n', '\r', '\u{1b}', '\u{1f}', '\u{7f}', '\u{80}', '\u{85}', '\u{9f}',
    ]);
    let text = move |lengths: std::ops::RangeInclusive<usize>| {
        (
            prop::collection::vec(printable.clone(), lengths),
            prop::option::weighted(0.2, (control.clone(), any::<prop::sample::Index>())),
        )
            .prop_map(|(mut chars, control)| {
                if let Some((c, at)) = control {
                    let at = at.index(chars.len() + 1);
                    chars.insert(at, c);
                }
                Value::from(chars.into_iter().collect::<String>())
            })
    };
    prop_oneof![
        4 => text(0..=2),
        4 => text(99..=101),
        3 => text(3..=98),
        1 => any::<String>().prop_map(Value::from),
        1 => json_value(),
    ]
    .boxed()
}

/// A JSON object of the given members (each present 9 times in 10, its value from its
/// strategy), sometimes one more member of any name; one time in eight not an object at all.
fn body_of(members: Vec<(&'static str, BoxedStrategy<Value>)>) -> BoxedStrategy<Value> {
    let names: Vec<&'static str> = members.iter().map(|(name, _)| *name).collect();
    let values: Vec<_> = members
        .into_iter()
        .map(|(_, value)| prop::option::weighted(0.9, value))
        .collect();
    let extra = prop::option::weighted(0.1, ("[a-zA-Z_]{1,8}", json_value()));
    let object = (values, extra).prop_map(move |(values, extra)| {
        let mut object = Map::new();
        for (name, value) in names.iter().zip(values) {
            if let Some(value) = value {
                object.insert((*name).to_owned(), value);
            }
        }
        if let Some((name, value)) = extra {
            object.insert(name, value);
        }
        Value::Object(object)
    });
    prop_oneof![7 => object, 1 => json_value()].boxed()
}

fn key_type_value() -> BoxedStrategy<Value> {
    prop_oneof![
        6 => prop::sample::select(vec!["public", "secret"]).prop_map(Value::from),
        1 => prop::sample::select(vec!["Public", "SECRET", "admin", "", "sk", "secret "])
            .prop_map(Value::from),
        1 => json_value(),
    ]
    .boxed()
}

fn new_key_body() -> BoxedStrategy<Value> {
    body_of(vec![("label", label_value()), ("type", key_type_value())])
}

fn essence(content_type: Option<&str>) -> Option<String> {
    content_type.map(|ct| {
        ct.split(';')
            .next()
            .unwrap_or_default()
            .trim()
            .to_ascii_lowercase()
    })
}

/// docs/API.md#key-management: `application/json` only, an object of `label` and `type` and
/// nothing else, a good label, and a type of `public` or `secret`.
fn new_key_is_valid(content_type: Option<&str>, body: &Value) -> bool {
    let Some(object) = body.as_object() else {
        return false;
    };
    essence(content_type).as_deref() == Some("application/json")
        && object.keys().all(|k| k == "label" || k == "type")
        && label_ok(object.get("label"))
        && matches!(
            object.get("type").and_then(Value::as_str),
            Some("public" | "secret")
        )
}

#[test]
fn new_keys_are_created_exactly_when_every_rule_holds() {
    let env = Env::new();
    let content_type = prop::option::weighted(
        0.95,
        prop_oneof![
            6 => Just("application/json"),
            1 => Just("Application/JSON; charset=utf-8"),
            1 => Just("application/merge-patch+json"),
            1 => Just("text/plain"),
        ]
        .prop_map(str::to_owned),
    );
    // Every accepted body adds a key to the vault: nothing here depends on how many there are.
    check(
        "key_create: structured bodies",
        500,
        (content_type, new_key_body()),
        |(content_type, body)| {
            let valid = new_key_is_valid(content_type.as_deref(), &body);
            let reply = env.send(
                "key_create",
                Req {
                    content_type,
                    body: body.to_string().into_bytes(),
                    ..Req::default()
                },
            );
            answered(&reply, if valid { 201 } else { 400 })?;
            if valid {
                let created = reply.json();
                let kind = body["type"].as_str().unwrap_or_default();
                let prefix = if kind == "secret" { "sk_" } else { "pk_" };
                let key = created["key"].as_str().unwrap_or_default();
                prop_assert_eq!(&created["label"], &body["label"]);
                prop_assert_eq!(&created["type"], &body["type"]);
                prop_assert!(key.starts_with(prefix) && key.len() == 51, "{}", created);
                prop_assert_eq!(created["hint"].as_str(), key.get(..7));
                prop_assert!(
                    created["id"]
                        .as_str()
                        .and_then(|id| id.strip_prefix("key_"))
                        .is_some_and(is_ulid),
                    "{}",
                    created
                );
                prop_assert!(created["revoked_at"].is_null(), "{}", created);
            }
            Ok(())
        },
    );
}

/// docs/API.md#vault: the asset PATCH's content types, an object of `name` and nothing else, and
/// a good name.
fn vault_patch_is_valid(content_type: Option<&str>, body: &Value) -> bool {
    let Some(object) = body.as_object() else {
        return false;
    };
    matches!(
        essence(content_type).as_deref(),
        Some("application/json" | "application/merge-patch+json")
    ) && object.keys().all(|k| k == "name")
        && label_ok(object.get("name"))
}

#[test]
fn vault_patches_are_accepted_exactly_when_every_rule_holds() {
    let env = Env::new();
    // The name the vault must hold: the one it was created with, then each accepted one.
    let expected = std::cell::RefCell::new("main".to_owned());
    check(
        "vault_update: structured bodies",
        400,
        (patch_content_type(), body_of(vec![("name", label_value())])),
        |(content_type, body)| {
            let valid = vault_patch_is_valid(content_type.as_deref(), &body);
            let reply = env.send(
                "vault_update",
                Req {
                    content_type,
                    body: body.to_string().into_bytes(),
                    ..Req::default()
                },
            );
            answered(&reply, if valid { 200 } else { 400 })?;
            if valid {
                let vault = reply.json();
                prop_assert_eq!(&vault["name"], &body["name"]);
                prop_assert_eq!(vault["id"].as_str(), Some(env.app.vault.vault_id.as_str()));
                *expected.borrow_mut() = body["name"].as_str().unwrap_or_default().to_owned();
            }
            // A refused patch changes nothing; an accepted one is what any key reads next.
            let read = env.send(
                "vault_get",
                Req {
                    authorization: Some(format!("Bearer {}", env.app.pk()).into_bytes()),
                    ..Req::default()
                },
            );
            answered(&read, 200)?;
            let (held, wanted) = (read.json(), expected.borrow().clone());
            prop_assert_eq!(held["name"].as_str(), Some(wanted.as_str()));
            Ok(())
        },
    );
}

#[test]
fn arbitrary_key_and_vault_bodies_are_refused_cleanly() {
    let env = Env::new();
    let body = prop_oneof![
        prop::collection::vec(any::<u8>(), 0..256),
        any::<String>().prop_map(String::into_bytes),
        "[\\[\\]{}\",:0-9a-z ]{0,40}".prop_map(String::into_bytes),
    ];
    let function = prop::sample::select(vec!["key_create", "vault_update"]);
    check(
        "key_create, vault_update: arbitrary bodies",
        300,
        (function, patch_content_type(), body),
        |(function, content_type, body)| {
            let reply = env.send(
                function,
                Req {
                    content_type,
                    body,
                    ..Req::default()
                },
            );
            well_formed(&reply)
        },
    );
}

// ---------------------------------------------------------------------------------------------
// Get, and the Authorization header

#[test]
fn arbitrary_asset_ids_are_404_unless_they_name_the_asset() {
    let env = Env::new();
    let id = prop_oneof![
        any::<String>(),
        "asset_[0-9A-Za-z]{20,30}",
        Just(env.asset.clone()).prop_map(|id| id.to_lowercase()),
    ];
    check("get: arbitrary asset ids", 300, id, |id| {
        let status = if id == env.asset { 200 } else { 404 };
        let reply = env.send(
            "get",
            Req {
                asset: Some(id),
                ..Req::default()
            },
        );
        answered(&reply, status)?;
        if status == 404 {
            prop_assert_eq!(&reply.json()["error"]["code"], "ASSET_NOT_FOUND");
        }
        Ok(())
    });
}

/// Bytes a header value can hold (no control characters but tab).
fn header_bytes() -> BoxedStrategy<Vec<u8>> {
    prop::collection::vec(
        prop_oneof![8 => 0x20u8..0x7f, 1 => Just(b'\t'), 1 => 0x80u8..=0xff],
        0..80,
    )
    .boxed()
}

#[test]
fn arbitrary_authorization_values_are_401() {
    let env = Env::new();
    let value = prop_oneof![
        header_bytes(),
        header_bytes().prop_map(|mut v| {
            let mut out = b"Bearer ".to_vec();
            out.append(&mut v);
            out
        }),
        "(Bearer|bearer|Basic|Token) (pk|sk)_[0-9a-f]{40,56}".prop_map(String::into_bytes),
    ];
    check("auth: arbitrary values", 400, value, |value| {
        let reply = env.send(
            "list",
            Req {
                authorization: Some(value),
                ..Req::default()
            },
        );
        answered(&reply, 401)
    });
}

/// What is done to a real `Authorization: Bearer <key>` header.
#[derive(Debug, Clone)]
enum KeyEdit {
    /// The scheme in another case, with more spaces around: still the same key.
    Respell {
        scheme_case: Vec<bool>,
        before: usize,
        between: usize,
        after: usize,
    },
    /// One character of the key replaced by another.
    Replace(usize, char),
    Truncate(usize),
    Append(String),
    /// The other vault's key, in a respelt scheme.
    OtherVault(Vec<bool>),
    /// A tab instead of the space after the scheme.
    Tab,
}

#[test]
fn a_real_key_is_accepted_only_exactly_as_issued() {
    let env = Env::new();
    let case = prop::collection::vec(any::<bool>(), 6);
    let edit = prop_oneof![
        (case.clone(), 0usize..3, 1usize..4, 0usize..3).prop_map(
            |(scheme_case, before, between, after)| {
                KeyEdit::Respell {
                    scheme_case,
                    before,
                    between,
                    after,
                }
            }
        ),
        (0usize..51, prop::char::range('!', '~')).prop_map(|(i, c)| KeyEdit::Replace(i, c)),
        (0usize..51).prop_map(KeyEdit::Truncate),
        "[ -~]{1,4}".prop_map(KeyEdit::Append),
        case.prop_map(KeyEdit::OtherVault),
        Just(KeyEdit::Tab),
    ];
    let respell = |case: &[bool]| -> String {
        "Bearer"
            .chars()
            .zip(case)
            .map(|(c, up)| {
                if *up {
                    c.to_ascii_uppercase()
                } else {
                    c.to_ascii_lowercase()
                }
            })
            .collect()
    };
    let keys = [env.app.sk().to_owned(), env.app.pk().to_owned()];
    check(
        "auth: edits of real keys",
        400,
        (0usize..2, edit),
        |(which, edit)| {
            let key = &keys[which];
            let (value, status) = match edit {
                KeyEdit::Respell {
                    scheme_case,
                    before,
                    between,
                    after,
                } => (
                    format!(
                        "{}{}{}{key}{}",
                        " ".repeat(before),
                        respell(&scheme_case),
                        " ".repeat(between),
                        " ".repeat(after)
                    ),
                    200,
                ),
                KeyEdit::Replace(i, c) => {
                    let mut chars: Vec<char> = key.chars().collect();
                    let same = chars[i] == c;
                    chars[i] = c;
                    let edited: String = chars.into_iter().collect();
                    (format!("Bearer {edited}"), if same { 200 } else { 401 })
                }
                KeyEdit::Truncate(n) => (format!("Bearer {}", &key[..n]), 401),
                KeyEdit::Append(tail) => {
                    // Spaces after the key are trimmed; anything else makes it another key.
                    let status = if tail.trim().is_empty() { 200 } else { 401 };
                    (format!("Bearer {key}{tail}"), status)
                }
                KeyEdit::OtherVault(scheme_case) => {
                    let other = if which == 0 {
                        &env.app.other.secret_key
                    } else {
                        &env.app.other.public_key
                    };
                    (format!("{} {other}", respell(&scheme_case)), 403)
                }
                KeyEdit::Tab => (format!("Bearer\t{key}"), 401),
            };
            let reply = env.send(
                "list",
                Req {
                    authorization: Some(value.clone().into_bytes()),
                    ..Req::default()
                },
            );
            answered(&reply, status).map_err(|e| TestCaseError::fail(format!("{value:?}: {e}")))
        },
    );
}

#[test]
fn no_key_and_a_bad_request_is_still_401() {
    let env = Env::new();
    check(
        "auth: missing key before anything else",
        200,
        list_pairs(),
        |pairs| {
            let query = form_urlencoded::Serializer::new(String::new())
                .extend_pairs(pairs.iter())
                .finish();
            let reply = env.send(
                "list",
                Req {
                    query,
                    no_key: true,
                    ..Req::default()
                },
            );
            answered(&reply, 401)
        },
    );
}

// ---------------------------------------------------------------------------------------------
// Validators

#[test]
fn path_segments_parse_exactly_when_the_regex_matches() {
    let rule = segment_rule();
    check("validate: PathSegment", 3000, segment(), |text| {
        let parsed = PathSegment::parse("channel", &text);
        prop_assert_eq!(parsed.is_ok(), rule.is_match(&text), "{:?}", text);
        match parsed {
            Ok(segment) => prop_assert_eq!(segment.as_str(), text.as_str()),
            Err(err) => prop_assert!(err.to_string().starts_with("channel: ")),
        }
        Ok(())
    });
}

#[test]
fn filenames_parse_exactly_when_the_rule_holds() {
    let text = prop_oneof![filename_field(), uploaded_name(), "[./\\\\a]{0,6}"];
    check("validate: Filename", 3000, text, |text| {
        let parsed = Filename::parse(&text);
        prop_assert_eq!(parsed.is_ok(), filename_ok(&text), "{:?}", text);
        if let Ok(name) = parsed {
            prop_assert_eq!(name.as_str(), nfc(&text));
        }
        let uploaded = Filename::from_uploaded_name(&text);
        let last = last_segment(&text);
        prop_assert_eq!(uploaded.is_ok(), filename_ok(last), "{:?}", text);
        if let Ok(name) = uploaded {
            prop_assert_eq!(name.as_str(), nfc(last));
        }
        Ok(())
    });
}

#[test]
fn limits_parse_exactly_when_the_text_is_an_integer_from_1_to_200() {
    check("validate: Limit", 3000, limit_text(), |text| {
        let parsed = Limit::parse(Some(&text)).ok().map(Limit::get);
        prop_assert_eq!(parsed, limit_of(&text), "{:?}", text);
        Ok(())
    });
}

#[test]
fn tags_parse_exactly_when_the_rule_holds_and_keep_first_order() {
    check("validate: Tags", 2000, json_text(tags_value()), |text| {
        let expected = serde_json::from_str::<Value>(&text)
            .ok()
            .and_then(|v| tags_of(&v));
        let parsed = Tags::parse_text(&text).ok();
        prop_assert_eq!(
            parsed.as_ref().map(|t| t.as_slice().to_vec()),
            expected,
            "{:?}",
            text
        );
        if let Some(tags) = parsed {
            let round: Value = serde_json::from_str(&tags.to_json()).expect("tags JSON");
            prop_assert_eq!(tags_of(&round), Some(tags.as_slice().to_vec()));
        }
        Ok(())
    });
}

#[test]
fn metadata_parses_exactly_when_the_rule_holds() {
    check(
        "validate: Metadata",
        2000,
        json_text(metadata_value()),
        |text| {
            let value = serde_json::from_str::<Value>(&text).ok();
            let expected = value.as_ref().is_some_and(metadata_ok);
            let parsed = Metadata::parse_text(&text);
            prop_assert_eq!(parsed.is_ok(), expected, "{:?}", text);
            if let Ok(metadata) = parsed {
                let stored: Value =
                    serde_json::from_str(metadata.as_json()).expect("metadata JSON");
                prop_assert_eq!(Some(&stored), value.as_ref());
                prop_assert!(metadata.as_json().len() <= 16 * 1024);
            }
            Ok(())
        },
    );
}

#[test]
fn cursors_round_trip_and_anything_accepted_is_a_position() {
    let mutated = (cursor_text(), any::<usize>(), any::<char>()).prop_map(|(text, i, c)| {
        let mut chars: Vec<char> = text.chars().collect();
        if !chars.is_empty() {
            let at = i % chars.len();
            chars[at] = c;
        }
        chars.into_iter().collect::<String>()
    });
    let text = prop_oneof![cursor_text(), mutated, any::<String>()];
    check("validate: Cursor", 3000, text, |text| {
        if let Ok(cursor) = Cursor::decode(&text) {
            prop_assert!(is_api_time(&cursor.created_at), "{:?}", cursor);
            prop_assert!(
                cursor.id.strip_prefix("asset_").is_some_and(is_ulid),
                "{:?}",
                cursor
            );
            prop_assert_eq!(Cursor::decode(&cursor.encode()).ok(), Some(cursor));
        }
        Ok(())
    });
}
