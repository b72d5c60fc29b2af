//! One route table is the truth: `shared::routes::ROUTES` (which the handlers resolve with),
//! the `cargo lambda watch` router in `Cargo.toml` (every route), and the HTTP API events of
//! `infra/template.yaml` (every route but the local-only ones) must name the same routes, each to
//! the same function.

use imgbt_tests::TestApp;
use lambda_http::http::Method;
use shared::routes::ROUTES;
use std::collections::BTreeSet;
use yaml_rust2::{Yaml, YamlLoader};

type Table = BTreeSet<(String, String, String)>;

fn workspace_file(path: &str) -> String {
    let full = format!("{}/../{path}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&full).unwrap_or_else(|e| panic!("{full}: {e}"))
}

fn truth() -> Table {
    routes(false)
}

/// The route table, with or without its local-only routes.
fn routes(local: bool) -> Table {
    ROUTES
        .iter()
        .filter(|r| local || !r.local_only)
        .map(|r| {
            (
                r.method.to_owned(),
                r.path.to_owned(),
                r.function.to_owned(),
            )
        })
        .collect()
}

#[test]
fn the_watch_router_in_cargo_toml_matches_the_route_table() {
    let manifest: toml::Table = toml::from_str(&workspace_file("Cargo.toml")).unwrap();
    let router = manifest["workspace"]["metadata"]["lambda"]["watch"]["router"]
        .as_table()
        .expect("[workspace.metadata.lambda.watch.router]");
    let mut table = Table::new();
    for (path, routes) in router {
        for route in routes.as_array().expect("an array of { method, function }") {
            let method = route["method"].as_str().unwrap().to_owned();
            let function = route["function"].as_str().unwrap().to_owned();
            table.insert((method, path.clone(), function));
        }
    }
    assert_eq!(table, routes(true));
}

#[test]
fn the_sam_template_routes_match_the_route_table() {
    let docs = YamlLoader::load_from_str(&workspace_file("infra/template.yaml")).unwrap();
    let resources = docs[0]["Resources"].as_hash().expect("Resources");
    let mut table = Table::new();
    for resource in resources.values() {
        if resource["Type"].as_str() != Some("AWS::Serverless::Function") {
            continue;
        }
        let binary = resource["Metadata"]["BuildProperties"]["Binary"]
            .as_str()
            .expect("each function names its binary");
        assert_eq!(
            resource["Metadata"]["BuildMethod"].as_str(),
            Some("rust-cargolambda")
        );
        let events = resource["Properties"]["Events"].as_hash().expect("Events");
        for event in events.values() {
            assert_eq!(event["Type"].as_str(), Some("HttpApi"));
            let properties = &event["Properties"];
            let method = properties["Method"].as_str().expect("Method").to_owned();
            let path = properties["Path"].as_str().expect("Path").to_owned();
            table.insert((method, path, binary.to_owned()));
        }
    }
    assert_eq!(table, truth());
    assert!(
        ROUTES.iter().any(|r| r.local_only),
        "the local-only receive route is in the table but not in the template"
    );
    assert_ne!(docs[0]["Resources"], Yaml::BadValue);
}

#[tokio::test]
async fn each_function_serves_its_route_and_nothing_else() {
    let app = TestApp::new().await;
    for route in ROUTES {
        for other in ROUTES {
            let method = Method::from_bytes(other.method.as_bytes()).unwrap();
            let mut call = app
                .call(route.function)
                .method(method)
                .route_path(other.path);
            if other.path.contains("{assetId}") {
                call = call.asset("asset_01JD0000000000000000000000");
            }
            if other.path.contains("{uploadId}") {
                call = call.upload("upload_01JD0000000000000000000000");
            }
            let reply = call.send().await;
            let same = other.method == route.method && other.path == route.path;
            if same && route.function == "receive" {
                // Found, then refused for want of the URL's token: the route resolved.
                reply.error(403, "FORBIDDEN");
            } else if same {
                // Found, then refused for want of a key: the route resolved.
                reply.error(401, "UNAUTHORIZED");
            } else {
                reply.error(404, "NOT_FOUND");
            }
        }
    }
}
