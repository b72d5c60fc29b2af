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
            if other.path.contains("{keyId}") {
                call = call.key_id("key_01JD0000000000000000000000");
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
