//! Each function of the registry (`functions.toml`) serves its own routes and answers every other
//! route's request with 404. That the other lists name the same routes is
//! `tests/tests/registry.rs`'s.

use imgbt_tests::TestApp;
use lambda_http::http::Method;
use shared::routes::ROUTES;

#[tokio::test]
async fn each_function_serves_its_route_and_nothing_else() {
    let app = TestApp::new().await;
    for route in ROUTES {
        for other in ROUTES {
            let method = Method::from_bytes(other.method.as_bytes()).unwrap();
            let call = app.call(route.function).method(method);
            // A delivery path is concrete: its hierarchy's segments are free-form.
            let mut call = if other.path == shared::delivery::PATH {
                call.raw_path(&format!("/d/{}/web/site/hero/x.txt", app.vault.vault_id))
            } else {
                call.route_path(other.path)
            };
            if other.path.contains("{assetId}") {
                call = call.asset("asset_01JD0000000000000000000000");
            }
            if other.path.contains("{uploadId}") {
                call = call.upload("upload_01JD0000000000000000000000");
            }
            if other.path.contains("{keyId}") {
                call = call.key_id("key_01JD0000000000000000000000");
            }
            let reply = call.send().await;
            let same = other.method == route.method && other.path == route.path;
            if same && route.function == "receive" {
                // Found, then refused for want of the URL's token: the route resolved.
                reply.error(403, "FORBIDDEN");
            } else if same && route.function == "deliver" {
                // Found, then nothing at that URL (no key needed): the route resolved.
                let message = reply.error(404, "NOT_FOUND");
                assert_eq!(message, "no asset at this URL");
            } else if same {
                // Found, then refused for want of a key: the route resolved.
                reply.error(401, "UNAUTHORIZED");
            } else {
                reply.error(404, "NOT_FOUND");
            }
        }
    }
}
