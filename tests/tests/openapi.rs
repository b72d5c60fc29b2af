//! `openapi.yaml` describes the API the functions serve: the same routes as
//! the registry's (`functions.toml`, each naming its function, the local-only one marked), every path
//! parameter declared, the statuses each route can answer documented (and no others), every error
//! in the envelope with the codes of `ApiError`, JSON bodies closed as the functions' parsers are,
//! and every sample event's status documented. `scripts/schemathesis.sh` then checks the document
//! against the running API.

use lambda_http::http::StatusCode;
use shared::ApiError;
use shared::routes::{ROUTES, Route, route_of};
use std::collections::{BTreeMap, BTreeSet};
use yaml_rust2::{Yaml, YamlLoader};

const METHODS: [&str; 8] = [
    "get", "put", "post", "delete", "options", "head", "patch", "trace",
];

fn document() -> Yaml {
    let path = format!("{}/../openapi.yaml", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let mut docs = YamlLoader::load_from_str(&text).expect("openapi.yaml parses as YAML");
    assert_eq!(docs.len(), 1, "one YAML document");
    docs.remove(0)
}

/// `node`, or what its `$ref` (a local `#/…` pointer) names, followed until it is not a reference.
fn resolve<'a>(doc: &'a Yaml, node: &'a Yaml) -> &'a Yaml {
    let mut node = node;
    for _ in 0..16 {
        let Some(pointer) = node["$ref"].as_str() else {
            return node;
        };
        let path = pointer
            .strip_prefix("#/")
            .unwrap_or_else(|| panic!("only local references: {pointer}"));
        node = path.split('/').fold(doc, |n, key| &n[key]);
        assert!(!node.is_badvalue(), "{pointer} names nothing");
    }
    panic!("a reference cycle")
}

fn str_of(node: &Yaml) -> &str {
    node.as_str()
        .unwrap_or_else(|| panic!("expected a string, got {node:?}"))
}

/// Every operation of the document: (METHOD, path) → its node.
fn operations(doc: &Yaml) -> BTreeMap<(String, String), &Yaml> {
    let mut found = BTreeMap::new();
    let paths = doc["paths"].as_hash().expect("paths");
    for (path, item) in paths {
        let item = item.as_hash().expect("a path item");
        for (key, operation) in item {
            let key = str_of(key);
            if METHODS.contains(&key) {
                found.insert(
                    (key.to_ascii_uppercase(), str_of(path).to_owned()),
                    operation,
                );
            } else {
                assert!(
                    matches!(key, "parameters" | "summary" | "description"),
                    "{}: unexpected member {key}",
                    str_of(path)
                );
            }
        }
    }
    found
}

fn route_key(route: &Route) -> (String, String) {
    (route.method.to_owned(), route.path.to_owned())
}

fn operation<'a>(doc: &'a Yaml, route: &Route) -> &'a Yaml {
    &doc["paths"][route.path][route.method.to_ascii_lowercase().as_str()]
}

#[test]
fn the_document_is_openapi_3_1() {
    let doc = document();
    assert!(str_of(&doc["openapi"]).starts_with("3.1."));
    assert!(doc["info"]["title"].as_str().is_some());
    assert_eq!(
        str_of(&doc["components"]["securitySchemes"]["bearerAuth"]["scheme"]),
        "bearer"
    );
    let security = doc["security"]
        .as_vec()
        .expect("a global security requirement");
    assert!(security.iter().any(|s| !s["bearerAuth"].is_badvalue()));
}

/// What differs between the registry's routes and the document's operations, one line each.
fn route_differences(doc: &Yaml) -> Vec<String> {
    let documented: BTreeSet<_> = operations(doc).into_keys().collect();
    let mut faults = Vec::new();
    for route in ROUTES {
        if !documented.contains(&route_key(&route)) {
            faults.push(format!(
                "openapi.yaml: no operation for {} {} (function {})",
                route.method, route.path, route.function
            ));
        }
    }
    let served: BTreeSet<_> = ROUTES.iter().map(route_key).collect();
    for (method, path) in documented.difference(&served) {
        faults.push(format!(
            "openapi.yaml: {method} {path} is documented, but no function of functions.toml serves it"
        ));
    }
    faults
}

#[test]
fn the_document_has_exactly_the_routes_of_the_registry() {
    let faults = route_differences(&document());
    assert!(faults.is_empty(), "{}", faults.join("\n"));
}

/// The check above fails, and says where, on a document that lost an operation or gained one.
#[test]
fn a_missing_or_extra_operation_is_named() {
    let text =
        std::fs::read_to_string(format!("{}/../openapi.yaml", env!("CARGO_MANIFEST_DIR"))).unwrap();
    let mut doc = YamlLoader::load_from_str(&text).unwrap().remove(0);
    let paths = match &mut doc["paths"] {
        Yaml::Hash(paths) => paths,
        _ => panic!("paths"),
    };
    let content = route_of("content");
    let item = paths
        .get_mut(&Yaml::String(content.path.to_owned()))
        .and_then(|item| match item {
            Yaml::Hash(item) => Some(item),
            _ => None,
        })
        .expect("the content route's path item");
    let operation = item.remove(&Yaml::String("get".to_owned())).unwrap();
    item.insert(Yaml::String("put".to_owned()), operation);
    assert_eq!(
        route_differences(&doc),
        [
            format!(
                "openapi.yaml: no operation for GET {} (function content)",
                content.path
            ),
            format!(
                "openapi.yaml: PUT {} is documented, but no function of functions.toml serves it",
                content.path
            ),
        ]
    );
}

#[test]
fn each_operation_names_its_function_and_only_the_local_route_is_marked_local() {
    let doc = document();
    let mut ids = BTreeSet::new();
    for route in ROUTES {
        let op = operation(&doc, &route);
        assert_eq!(
            op["x-imgbt-function"].as_str(),
            Some(route.function),
            "{} {}",
            route.method,
            route.path
        );
        assert!(ids.insert(str_of(&op["operationId"]).to_owned()));
        let local = op["x-imgbt-local-only"].as_bool().unwrap_or(false);
        assert_eq!(
            local, route.local_only,
            "{}: x-imgbt-local-only",
            route.function
        );
        // Keyless exactly when local-only or delivery (a URL a browser uses with no header):
        // `security: []` opts out of the global bearer scheme.
        let keyless = op["security"].as_vec().is_some_and(|s| s.is_empty());
        let delivery = route.path == shared::delivery::PATH;
        assert_eq!(
            keyless,
            route.local_only || delivery,
            "{}: security",
            route.function
        );
    }
}

#[test]
fn every_path_parameter_is_declared_and_nothing_else_is() {
    let doc = document();
    for route in ROUTES {
        let in_template: BTreeSet<String> = route
            .path
            .split('/')
            .filter_map(|s| s.strip_prefix('{')?.strip_suffix('}'))
            .map(str::to_owned)
            .collect();
        let item = &doc["paths"][route.path];
        let op = operation(&doc, &route);
        let mut declared = BTreeSet::new();
        for list in [&item["parameters"], &op["parameters"]] {
            for parameter in list.as_vec().map(Vec::as_slice).unwrap_or_default() {
                let parameter = resolve(&doc, parameter);
                if parameter["in"].as_str() != Some("path") {
                    continue;
                }
                assert_eq!(parameter["required"].as_bool(), Some(true));
                assert_eq!(
                    str_of(&resolve(&doc, &parameter["schema"])["type"]),
                    "string"
                );
                declared.insert(str_of(&parameter["name"]).to_owned());
            }
        }
        assert_eq!(declared, in_template, "{} {}", route.method, route.path);
    }
}

/// The statuses a function answers besides those every route answers (see
/// [`documented_statuses_are_the_ones_each_route_answers`]): its `answers` in `functions.toml`.
fn own_statuses(function: &str) -> &'static [u16] {
    shared::functions::find(function)
        .unwrap_or_else(|| panic!("functions.toml has no function {function}"))
        .answers
}

#[test]
fn documented_statuses_are_the_ones_each_route_answers() {
    let doc = document();
    for route in ROUTES {
        // Every route: 404 (NOT_FOUND for another method, or the thing it addresses) and 500.
        // A route with a key: 401 and 403 (key checks) and 429 (the store refusing for rate). The
        // local-only route checks a token instead: 403. Delivery has no key (403: a signed
        // vault's signature) but reads the store: 429.
        let mut expected: BTreeSet<u16> = [404, 500, 403].into();
        if !route.local_only && route.path != shared::delivery::PATH {
            expected.insert(401);
        }
        if !route.local_only {
            expected.insert(429);
        }
        expected.extend(own_statuses(route.function));
        let responses = operation(&doc, &route)["responses"]
            .as_hash()
            .expect("responses");
        let documented: BTreeSet<u16> = responses
            .keys()
            .map(|k| {
                str_of(k)
                    .parse()
                    .unwrap_or_else(|_| panic!("{}: status {k:?}", route.function))
            })
            .collect();
        assert_eq!(documented, expected, "{} {}", route.method, route.path);
    }
}

/// The schema's allowed error codes for one error response: the `const` or `enum` of
/// `error.code` in the response's schema (which extends the envelope).
fn error_codes(doc: &Yaml, response: &Yaml) -> BTreeSet<String> {
    let schema = resolve(doc, &response["content"]["application/json"]["schema"]);
    let all_of = schema["allOf"]
        .as_vec()
        .expect("an error schema extends Error");
    assert!(
        all_of
            .iter()
            .any(|s| s["$ref"].as_str() == Some("#/components/schemas/Error")),
        "an error schema extends #/components/schemas/Error"
    );
    let code = &schema["properties"]["error"]["properties"]["code"];
    match (code["const"].as_str(), code["enum"].as_vec()) {
        (Some(one), None) => [one.to_owned()].into(),
        (None, Some(many)) => many.iter().map(|c| str_of(c).to_owned()).collect(),
        _ => panic!("error.code needs a const or an enum: {code:?}"),
    }
}

/// Every error the API has, one of each variant. Exhaustive on purpose: a new variant does not
/// compile here until it is added, and so to the document.
fn every_error() -> Vec<ApiError> {
    let all = vec![
        ApiError::InvalidParams(String::new()),
        ApiError::Unauthorized,
        ApiError::Forbidden(""),
        ApiError::AssetNotFound,
        ApiError::NotFound,
        ApiError::NotDelivered,
        ApiError::KeyNotFound,
        ApiError::Conflict,
        ApiError::LastSecretKey(""),
        ApiError::PayloadTooLarge(""),
        ApiError::UploadNotFound,
        ApiError::UploadExpired(""),
        ApiError::UploadIncomplete(String::new()),
        ApiError::RangeNotSatisfiable(0),
        ApiError::RateLimited(String::new()),
        ApiError::Internal(String::new()),
    ];
    for err in &all {
        match err {
            ApiError::InvalidParams(_)
            | ApiError::Unauthorized
            | ApiError::Forbidden(_)
            | ApiError::AssetNotFound
            | ApiError::NotFound
            | ApiError::NotDelivered
            | ApiError::KeyNotFound
            | ApiError::Conflict
            | ApiError::LastSecretKey(_)
            | ApiError::PayloadTooLarge(_)
            | ApiError::UploadNotFound
            | ApiError::UploadExpired(_)
            | ApiError::UploadIncomplete(_)
            | ApiError::RangeNotSatisfiable(_)
            | ApiError::RateLimited(_)
            | ApiError::Internal(_) => {}
        }
    }
    all
}

#[test]
fn the_error_codes_are_those_of_api_error() {
    let doc = document();
    let documented: BTreeSet<String> = doc["components"]["schemas"]["ErrorCode"]["enum"]
        .as_vec()
        .expect("ErrorCode enum")
        .iter()
        .map(|c| str_of(c).to_owned())
        .collect();
    let served: BTreeSet<String> = every_error().iter().map(|e| e.code().to_owned()).collect();
    assert_eq!(documented, served);
}

#[test]
fn every_error_response_is_the_envelope_with_codes_of_its_status() {
    let doc = document();
    let status_of: BTreeMap<String, StatusCode> = every_error()
        .iter()
        .map(|e| (e.code().to_owned(), e.status()))
        .collect();
    for route in ROUTES {
        let responses = operation(&doc, &route)["responses"].as_hash().unwrap();
        for (status, response) in responses {
            let status: u16 = str_of(status).parse().unwrap();
            if status < 400 {
                continue;
            }
            let response = resolve(&doc, response);
            let codes = error_codes(&doc, response);
            assert!(!codes.is_empty());
            for code in &codes {
                let answered = status_of
                    .get(code)
                    .unwrap_or_else(|| panic!("{code} is not an ApiError code"));
                assert_eq!(
                    answered.as_u16(),
                    status,
                    "{}: {code} under {status}",
                    route.function
                );
            }
            if status == 401 {
                let header = &response["headers"]["WWW-Authenticate"];
                assert_eq!(header["required"].as_bool(), Some(true));
            }
        }
    }
}

#[test]
fn the_asset_schema_has_exactly_the_records_fields() {
    let doc = document();
    let asset = &doc["components"]["schemas"]["Asset"];
    assert_eq!(asset["additionalProperties"].as_bool(), Some(false));
    let fields: Vec<&str> = shared::asset::COLUMNS.split(", ").collect();
    let required: Vec<&str> = asset["required"]
        .as_vec()
        .unwrap()
        .iter()
        .map(str_of)
        .collect();
    assert_eq!(required, fields);
    let properties: BTreeSet<&str> = asset["properties"]
        .as_hash()
        .unwrap()
        .keys()
        .map(str_of)
        .collect();
    assert_eq!(properties, fields.into_iter().collect());
    // docs/API.md#the-asset-record: metadata and tags are JSON text, not objects.
    for field in ["metadata", "tags"] {
        assert_eq!(str_of(&asset["properties"][field]["type"]), "string");
    }
}

/// A YAML value as JSON (the document's examples are plain data).
fn to_json(node: &Yaml) -> serde_json::Value {
    use serde_json::Value;
    match node {
        Yaml::Real(text) => Value::from(text.parse::<f64>().expect("a number")),
        Yaml::Integer(n) => Value::from(*n),
        Yaml::String(text) => Value::from(text.as_str()),
        Yaml::Boolean(b) => Value::from(*b),
        Yaml::Array(items) => Value::Array(items.iter().map(to_json).collect()),
        Yaml::Hash(members) => Value::Object(
            members
                .iter()
                .map(|(k, v)| (str_of(k).to_owned(), to_json(v)))
                .collect(),
        ),
        Yaml::Null => Value::Null,
        other => panic!("not plain data: {other:?}"),
    }
}

/// The examples of an operation's JSON request body, as JSON text.
fn request_examples(doc: &Yaml, function: &str) -> Vec<serde_json::Value> {
    let route = shared::routes::route_of(function);
    let examples = operation(doc, &route)["requestBody"]["content"]["application/json"]["examples"]
        .as_hash()
        .unwrap_or_else(|| panic!("{function}: request examples"));
    examples.values().map(|e| to_json(&e["value"])).collect()
}

/// The JSON bodies the functions parse refuse unknown members, as the document's
/// `additionalProperties: false` says, and the document's examples are bodies the functions take.
#[test]
fn json_request_bodies_are_closed_and_their_examples_parse() {
    type Parse = fn(&[u8]) -> Result<(), ApiError>;
    let parsers: [(&str, &str, Parse); 2] = [
        ("update", "Patch", |body| {
            update::Patch::parse(Some("application/json"), body).map(drop)
        }),
        ("uploads", "UploadRequest", |body| {
            uploads::NewUpload::parse(Some("application/json"), body).map(drop)
        }),
    ];
    let doc = document();
    for (function, schema, parse) in parsers {
        let schema = &doc["components"]["schemas"][schema];
        assert_eq!(schema["additionalProperties"].as_bool(), Some(false));
        let documented: BTreeSet<&str> = schema["properties"]
            .as_hash()
            .expect("properties")
            .keys()
            .map(str_of)
            .collect();
        let examples = request_examples(&doc, function);
        assert!(!examples.is_empty());
        for example in examples {
            for member in example.as_object().expect("an object").keys() {
                assert!(documented.contains(member.as_str()), "{function}: {member}");
            }
            let body = example.to_string();
            if let Err(err) = parse(body.as_bytes()) {
                panic!("{function}: the example {body} is refused: {err}");
            }
            let mut extra = example.clone();
            extra["unknown_member"] = serde_json::Value::from(1);
            assert!(
                matches!(
                    parse(extra.to_string().as_bytes()),
                    Err(ApiError::InvalidParams(_))
                ),
                "{function}: an unknown member must be 400"
            );
        }
    }
}

/// The sample events of `events/` (`<function>.<status>.<case>.json`, each proven by
/// `tests/tests/events.rs`) answer only statuses the document gives their route.
#[test]
fn every_sample_events_status_is_documented_for_its_route() {
    let doc = document();
    let dir = format!("{}/../events", env!("CARGO_MANIFEST_DIR"));
    let mut seen = 0;
    for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{dir}: {e}")) {
        let name = entry.expect("a directory entry").file_name();
        let name = name.to_string_lossy();
        let Some(stem) = name.strip_suffix(".json") else {
            continue;
        };
        let mut parts = stem.splitn(3, '.');
        let (Some(function), Some(status)) = (parts.next(), parts.next()) else {
            panic!("{name}: not <function>.<status>.<case>.json");
        };
        // A function on a schedule (gc) is invoked by EventBridge, not through the API.
        if shared::functions::find(function).is_some_and(|f| f.schedule.is_some()) {
            continue;
        }
        let route = shared::routes::route_of(function);
        let responses = &operation(&doc, &route)["responses"];
        assert!(
            !responses[status].is_badvalue(),
            "{name}: {status} is not documented for {} {}",
            route.method,
            route.path
        );
        seen += 1;
    }
    assert!(seen > 0, "no events in {dir}");
}
