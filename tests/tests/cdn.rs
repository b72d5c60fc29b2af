//! The CDN of `infra/template.yaml`: its viewer-request CloudFront Function
//! (`infra/cdn/viewer-request.js`) run under Node by `infra/cdn/run.mjs`, with sample viewer
//! requests, and the template's copy of that code checked against the file.
//!
//! What the function must do, each rule with its test: map the alias names onto the canonical
//! ones and drop unknown parameters; sort, so the order a viewer wrote does not split the cache;
//! on `format=auto`, add the format the `Accept` header allows as `accept`; map a vault's own host
//! onto `/d/{vaultId}/...`; pass other hosts' `/d/` paths through and answer 404 for the rest.

use serde_json::{Value, json};
use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use yaml_rust2::{Yaml, YamlLoader};

const VAULT_HOST: &str = "cats.example.com";
const VAULT: &str = "01JCATS0000000000000000000";

fn workspace() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// A viewer request as CloudFront hands it to the function: header names lowercase, the query
/// as an object of `{value}` in the order the viewer wrote it.
fn viewer(host: &str, uri: &str, query: &[(&str, &str)], accept: Option<&str>) -> Value {
    let mut headers = json!({ "host": { "value": host } });
    if let Some(accept) = accept {
        headers["accept"] = json!({ "value": accept });
    }
    let mut querystring = serde_json::Map::new();
    for (name, value) in query {
        querystring.insert((*name).to_owned(), json!({ "value": value }));
    }
    json!({
        "version": "1.0",
        "context": { "eventType": "viewer-request" },
        "viewer": { "ip": "192.0.2.1" },
        "request": {
            "method": "GET",
            "uri": uri,
            "headers": headers,
            "querystring": querystring,
            "cookies": {},
        },
    })
}

/// What the function returns for each event, with the key value store holding `VAULT_HOST`.
fn run(events: Vec<Value>) -> Vec<Value> {
    let cases: Vec<Value> = events
        .into_iter()
        .map(|event| json!({ "kvs": { VAULT_HOST: VAULT }, "event": event }))
        .collect();
    let mut child = Command::new("node")
        .arg("infra/cdn/run.mjs")
        .current_dir(workspace())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("node runs (the tests need it for wrangler too)");
    let input = serde_json::to_vec(&cases).unwrap();
    child.stdin.take().unwrap().write_all(&input).unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "run.mjs failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let results: Vec<Value> = serde_json::from_slice(&output.stdout).expect("run.mjs prints JSON");
    assert_eq!(results.len(), cases.len());
    results
}

fn one(event: Value) -> Value {
    run(vec![event]).remove(0)
}

/// The forwarded query as `name=value` pairs, in the order CloudFront would forward them.
fn query(result: &Value) -> Vec<String> {
    let order = result["queryOrder"]
        .as_array()
        .unwrap_or_else(|| panic!("a request, not a response: {result}"));
    order
        .iter()
        .map(|name| {
            let name = name.as_str().unwrap();
            format!(
                "{name}={}",
                result["querystring"][name]["value"].as_str().unwrap()
            )
        })
        .collect()
}

#[test]
fn the_template_carries_the_function_file_verbatim() {
    let file = std::fs::read_to_string(workspace().join("infra/cdn/viewer-request.js")).unwrap();
    // CloudFront refuses a function over 10 KB (its quota on function size).
    assert!(
        file.len() <= 10 * 1024,
        "viewer-request.js: {} bytes",
        file.len()
    );
    let template = std::fs::read_to_string(workspace().join("infra/template.yaml")).unwrap();
    let doc = YamlLoader::load_from_str(&template).unwrap().remove(0);
    let function = &doc["Resources"]["DeliveryViewerFunction"]["Properties"];
    let inline = function["FunctionCode"]
        .as_str()
        .expect("DeliveryViewerFunction has inline FunctionCode");
    assert!(
        inline == file,
        "infra/template.yaml's DeliveryViewerFunction.FunctionCode differs from \
         infra/cdn/viewer-request.js: copy the file into the template (indented 8 spaces)"
    );
    assert_eq!(
        function["FunctionConfig"]["Runtime"].as_str(),
        Some("cloudfront-js-2.0")
    );
}

#[test]
fn the_cdn_is_behind_a_parameter_that_turns_it_off() {
    let template = std::fs::read_to_string(workspace().join("infra/template.yaml")).unwrap();
    let doc = YamlLoader::load_from_str(&template).unwrap().remove(0);
    let Yaml::Hash(resources) = &doc["Resources"] else {
        panic!("no Resources")
    };
    let cdn: Vec<&str> = resources
        .iter()
        .filter(|(_, r)| {
            r["Type"]
                .as_str()
                .is_some_and(|t| t.starts_with("AWS::CloudFront::"))
        })
        .map(|(name, _)| name.as_str().unwrap())
        .collect();
    assert_eq!(
        cdn.len(),
        4,
        "store, function, cache policy, distribution: {cdn:?}"
    );
    for name in cdn {
        assert_eq!(
            resources[&Yaml::String(name.into())]["Condition"].as_str(),
            Some("CdnEnabled"),
            "{name} is deployed even with Cdn=false"
        );
    }
    let policy = &doc["Resources"]["DeliveryCachePolicy"]["Properties"]["CachePolicyConfig"]["ParametersInCacheKeyAndForwardedToOrigin"];
    // Accept reaches the key only through the function's `accept` parameter.
    assert_eq!(
        policy["HeadersConfig"]["HeaderBehavior"].as_str(),
        Some("none")
    );
    assert_eq!(
        policy["CookiesConfig"]["CookieBehavior"].as_str(),
        Some("none")
    );
    assert_eq!(
        policy["QueryStringsConfig"]["QueryStringBehavior"].as_str(),
        Some("all")
    );
}

#[test]
fn aliases_become_canonical_names_and_unknown_parameters_go() {
    let result = one(viewer(
        "d111111abcdef8.cloudfront.net",
        "/d/v1/p/c/ch/a.jpg",
        &[
            ("F", "webp"),
            ("q", "85"),
            ("rt", "90"),
            ("g", "north"),
            ("W", "800"),
            ("utm_source", "mail"),
            ("accept", "avif"),
            ("exp", "1767225600"),
            ("sig", "AbC-_x"),
        ],
        Some("image/avif,image/webp"),
    ));
    assert_eq!(
        query(&result),
        [
            "exp=1767225600",
            "format=webp",
            "gravity=north",
            "quality=85",
            "rotate=90",
            "sig=AbC-_x",
            "w=800"
        ],
        "aliases mapped, names lowercased, unknown and viewer-sent `accept` dropped, values kept"
    );
    assert_eq!(result["uri"], "/d/v1/p/c/ch/a.jpg");
}

#[test]
fn the_query_is_sorted_whatever_order_the_viewer_wrote() {
    let written = [("w", "800"), ("fit", "cover"), ("h", "600"), ("blur", "2")];
    let mut reversed = written;
    reversed.reverse();
    // A name and its alias both given: the canonical spelling wins, in either order.
    let both = [("quality", "80"), ("q", "50")];
    let both_reversed = [("q", "50"), ("quality", "80")];
    let results = run(vec![
        viewer("x.cloudfront.net", "/d/v/p/c/ch/f", &written, None),
        viewer("x.cloudfront.net", "/d/v/p/c/ch/f", &reversed, None),
        viewer("x.cloudfront.net", "/d/v/p/c/ch/f", &both, None),
        viewer("x.cloudfront.net", "/d/v/p/c/ch/f", &both_reversed, None),
    ]);
    assert_eq!(
        query(&results[0]),
        ["blur=2", "fit=cover", "h=600", "w=800"]
    );
    assert_eq!(query(&results[1]), query(&results[0]));
    assert_eq!(query(&results[2]), ["quality=80"]);
    assert_eq!(query(&results[3]), ["quality=80"]);
}

#[test]
fn format_auto_adds_the_format_accept_allows() {
    let chrome = "image/avif,image/webp,image/apng,image/svg+xml,image/*,*/*;q=0.8";
    let cases = [
        (Some(chrome), "auto", Some("avif")),
        (Some("image/webp,*/*"), "auto", Some("webp")),
        (
            Some("image/avif;q=0, image/webp;q=0.5"),
            "auto",
            Some("webp"),
        ),
        (Some("IMAGE/AVIF"), "AUTO", Some("avif")),
        (Some("image/*,*/*;q=0.8"), "auto", Some("jpg")),
        (None, "auto", Some("jpg")),
        // A format named outright needs no negotiation, so Accept must not split its cache.
        (Some(chrome), "webp", None),
    ];
    let events = cases
        .iter()
        .map(|(accept, format, _)| {
            viewer(
                "x.cloudfront.net",
                "/d/v/p/c/ch/f.jpg",
                &[("f", format)],
                *accept,
            )
        })
        .collect();
    for ((accept, format, negotiated), result) in cases.iter().zip(run(events)) {
        let mut expected = match negotiated {
            Some(chosen) => vec![format!("accept={chosen}")],
            None => vec![],
        };
        expected.push(format!("format={format}"));
        assert_eq!(query(&result), expected, "Accept: {accept:?}, f={format}");
    }
    // Without format there is nothing to negotiate, whatever Accept says.
    let plain = one(viewer(
        "x.cloudfront.net",
        "/d/v/p/c/ch/f.jpg",
        &[("w", "10")],
        Some(chrome),
    ));
    assert_eq!(query(&plain), ["w=10"]);
}

#[test]
fn a_vault_host_maps_onto_its_delivery_path() {
    let results = run(vec![
        viewer(
            VAULT_HOST,
            "/web/heroes/main/caf%C3%A9.jpg",
            &[("q", "70")],
            None,
        ),
        viewer("Cats.Example.COM", "/web/heroes/main/a.png", &[], None),
        // Another vault's delivery path, tried on this vault's host, stays in this vault.
        viewer(VAULT_HOST, "/d/01JOTHER/web/heroes/main/a.png", &[], None),
    ]);
    assert_eq!(
        results[0]["uri"],
        format!("/d/{VAULT}/web/heroes/main/caf%C3%A9.jpg"),
        "mapped, the percent-encoding kept as sent"
    );
    assert_eq!(query(&results[0]), ["quality=70"]);
    assert_eq!(
        results[1]["uri"],
        format!("/d/{VAULT}/web/heroes/main/a.png")
    );
    assert_eq!(
        results[2]["uri"],
        format!("/d/{VAULT}/d/01JOTHER/web/heroes/main/a.png")
    );
}

#[test]
fn an_unknown_host_passes_through_and_other_paths_are_404() {
    let results = run(vec![
        viewer(
            "d111111abcdef8.cloudfront.net",
            "/d/v9/p/c/ch/a.png",
            &[],
            None,
        ),
        viewer(
            "media.example.net",
            "/d/v9/p/c/ch/a.png",
            &[("w", "5")],
            None,
        ),
        viewer(
            "d111111abcdef8.cloudfront.net",
            "/api/v1/vaults/v9/assets",
            &[],
            None,
        ),
        viewer("unknown.example.com", "/p/c/ch/a.png", &[], None),
    ]);
    assert_eq!(results[0]["uri"], "/d/v9/p/c/ch/a.png");
    assert_eq!(query(&results[0]), Vec::<String>::new());
    assert_eq!(results[1]["uri"], "/d/v9/p/c/ch/a.png");
    assert_eq!(query(&results[1]), ["w=5"]);
    for refused in &results[2..] {
        assert_eq!(refused["statusCode"], 404, "{refused}");
        let body: Value = serde_json::from_str(refused["body"]["data"].as_str().unwrap()).unwrap();
        assert_eq!(body["error"]["code"], "NOT_FOUND");
        assert_eq!(body["error"]["status"], 404);
    }
}

/// `path?query` as CloudFront forwards a request the function returned: its uri, and its query in
/// the order the function left it.
fn forwarded(result: &Value) -> String {
    let uri = result["uri"].as_str().expect("a request, not a response");
    let query = query(result).join("&");
    if query.is_empty() {
        uri.to_owned()
    } else {
        format!("{uri}?{query}")
    }
}

#[test]
fn the_origin_signs_what_the_cdn_forwards() {
    // Every known name, each alias, names in other cases, unknown and viewer-sent `accept`: the
    // string a signature covers is the same before and after the function.
    let written: Vec<(&str, &str)> = vec![
        ("W", "800"),
        ("h", "600"),
        ("dpr", "2"),
        ("fit", "cover"),
        ("f", "auto"),
        ("q", "80"),
        ("quality", "70"),
        ("blur", "3"),
        ("sharpen", "1"),
        ("RT", "90"),
        ("flip", "h"),
        ("grayscale", "true"),
        ("crop", "0,0,10,10"),
        ("g", "north"),
        ("bg", "fff"),
        ("utm_source", "mail"),
        ("accept", "avif"),
        ("exp", "1767225600"),
        ("sig", "AbC-_x"),
    ];
    let result = one(viewer(
        "d111111abcdef8.cloudfront.net",
        "/d/v1/p/c/ch/a.jpg",
        &written,
        Some("image/webp"),
    ));
    let before: Vec<(String, String)> = written
        .iter()
        .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
        .collect();
    let after: Vec<(String, String)> = query(&result)
        .iter()
        .map(|pair| {
            let (n, v) = pair.split_once('=').unwrap();
            (n.to_owned(), v.to_owned())
        })
        .collect();
    assert!(after.contains(&("accept".to_owned(), "webp".to_owned())));
    let canonical = |params: &[(String, String)]| {
        shared::delivery::canonical("vault_1", "/d/v1/p/c/ch/a.jpg", 1, params)
    };
    assert_eq!(canonical(&before), canonical(&after));
    // And the Rust normalisation is the function's, parameter for parameter (less its `accept`).
    let without_accept: Vec<(String, String)> =
        after.into_iter().filter(|(n, _)| n != "accept").collect();
    assert_eq!(shared::delivery::normalise(&before), without_accept);
}

#[tokio::test]
async fn a_url_signed_with_aliases_is_delivered_after_the_cdn_rewrote_it() {
    use imgbt_tests::{Form, TestApp, fixture};
    let app = TestApp::new().await;
    let vault = app.vault.vault_id.clone();
    let record = app
        .create(&Form::asset(
            "web",
            "site",
            "hero",
            "cdn photo.jpg",
            "image/jpeg",
            &fixture("scene.jpg"),
        ))
        .await;
    let patched = app
        .call("vault_update")
        .key(app.sk())
        .json(&json!({"delivery": "signed"}))
        .send()
        .await
        .ok(200);
    assert_eq!(patched["delivery"], "signed");
    let stored = shared::db::run(
        &*app.deps.db,
        vec![shared::db::Stmt::new(
            "SELECT delivery_secret FROM vaults WHERE id = ?1",
            vec![vault.as_str().into()],
        )],
    )
    .await
    .unwrap();
    let secret = stored[0].rows[0]["delivery_secret"]
        .as_str()
        .unwrap()
        .to_owned();
    let path = TestApp::delivery_path(&record);
    let exp = app.deps.clock.now_ms() / 1000 + 600;
    let sign = |params: &[(&str, &str)]| {
        let params: Vec<(String, String)> = params
            .iter()
            .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
            .collect();
        shared::delivery::signed_query(&secret, &vault, &path, exp, &params)
    };
    // As a page would write it: aliases, a capital, in no order.
    let signed = sign(&[("q", "80"), ("W", "800"), ("f", "auto"), ("rt", "90")]);
    let mut pairs: Vec<(String, String)> = signed
        .split('&')
        .map(|pair| {
            let (n, v) = pair.split_once('=').unwrap();
            (n.to_owned(), v.to_owned())
        })
        .collect();
    pairs.push(("utm_source".into(), "mail".into()));
    let as_sent: Vec<(&str, &str)> = pairs
        .iter()
        .map(|(n, v)| (n.as_str(), v.as_str()))
        .collect();
    let rewritten = one(viewer(
        "d111111abcdef8.cloudfront.net",
        &path,
        &as_sent,
        Some("image/avif,image/webp"),
    ));
    let url = forwarded(&rewritten);
    assert!(
        url.contains("format=auto") && url.contains("accept=avif") && !url.contains("utm_source"),
        "{url}"
    );
    let reply = app.deliver(&url).send().await;
    assert_eq!(reply.status.as_u16(), 200, "{url}: {}", reply.snippet());
    // The edge's class of Accept chose the format; the signed parameters the size.
    assert_eq!(reply.header("content-type"), Some("image/avif"));
    assert_eq!(reply.header("vary"), Some("Accept"));
    let size = imagesize::blob_size(&reply.body).expect("an image");
    assert_eq!((size.width, size.height), (450, 800), "w=800, turned 90°");
    // The URL as written verifies at the origin too (no CDN in front).
    let direct = app
        .deliver(&format!("{path}?{signed}&utm_source=mail"))
        .send()
        .await;
    assert_eq!(direct.status.as_u16(), 200, "{}", direct.snippet());

    // A parameter changed on its way is still refused after the rewrite.
    let tampered: Vec<(&str, &str)> = as_sent
        .iter()
        .map(|(n, v)| if *n == "q" { (*n, "81") } else { (*n, *v) })
        .collect();
    let url = forwarded(&one(viewer(
        "d111111abcdef8.cloudfront.net",
        &path,
        &tampered,
        None,
    )));
    app.deliver(&url).send().await.error(403, "FORBIDDEN");
}
