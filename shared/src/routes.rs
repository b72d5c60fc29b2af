//! The routes of the registry (`functions.toml`; the contract is docs/API.md#routes), and how a
//! handler finds its vault, asset and upload ids in a request.
//!
//! API Gateway and `cargo lambda watch`'s router fill in `pathParameters`; a request that arrives
//! without them (a function URL, an ALB, `/lambda-url/<fn>/…`) is resolved from its raw path, whose
//! last segments must have the shape of the route's path. Routes that share their parameters (the
//! asset and its `/content`, the assets and the uploads of a vault) are told apart by the raw path's
//! shape, so a function never serves a sibling's request.

use crate::ApiError;
use lambda_http::{Request, RequestExt, http::Method};

pub use crate::functions::{ROUTES, Route};

/// The paths of the first five functions. With path parameters present they take any raw path
/// that is not shaped like another route's; every path added since takes only its own shape.
pub const ASSETS: &str = "/api/v1/vaults/{vaultId}/assets";
pub const ASSET: &str = "/api/v1/vaults/{vaultId}/assets/{assetId}";
const LENIENT_PATHS: [&str; 2] = [ASSETS, ASSET];

/// The one route served by `function`; for a function serving several methods of one path
/// (delivery's GET and HEAD), its first. Panics for a function the registry does not have, or
/// one that serves several paths (its handler then resolves each of them itself).
pub fn route_of(function: &str) -> Route {
    let entry = crate::functions::find(function)
        .unwrap_or_else(|| panic!("functions.toml has no function {function}"));
    match entry.routes {
        [first, rest @ ..] if rest.iter().all(|r| r.path == first.path) => *first,
        _ => panic!("{function} serves several paths; resolve them one by one"),
    }
}

/// The ids a request addresses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub vault_id: String,
    pub asset_id: Option<String>,
    pub upload_id: Option<String>,
    pub key_id: Option<String>,
}

/// Finds the ids of `route` in `req`; a request for another method or path is 404 NOT_FOUND.
pub fn resolve(req: &Request, route: Route) -> Result<Target, ApiError> {
    if req.method() != Method::from_bytes(route.method.as_bytes()).map_err(ApiError::internal)? {
        return Err(ApiError::NotFound);
    }
    let path = req.uri().path();
    // A delivery path (`/d/{vaultId}/…`, any four segments after the vault) is only delivery's:
    // its free-form segments could otherwise spell another route's tail.
    if route.path != crate::delivery::PATH && crate::delivery::DeliveryPath::parse(path).is_some() {
        return Err(ApiError::NotFound);
    }
    let later = !LENIENT_PATHS.contains(&route.path);
    // A first-five route never takes a request shaped like a later one; a later route takes only
    // requests of its own shape, with or without path parameters.
    let shaped_like_a_later_route = || {
        ROUTES
            .iter()
            .filter(|r| !LENIENT_PATHS.contains(&r.path))
            .any(|r| match_path(path, r.path).is_some())
    };
    if !later && shaped_like_a_later_route() {
        return Err(ApiError::NotFound);
    }
    let params = req.path_parameters();
    if let Some(vault_id) = params.first("vaultId") {
        if later && match_path(path, route.path).is_none() {
            return Err(ApiError::NotFound);
        }
        let id = |name: &str| {
            let wanted = route.path.contains(&format!("{{{name}}}"));
            match params.first(name) {
                Some(value) if wanted => Ok(Some(value.to_owned())),
                None if !wanted => Ok(None),
                _ => Err(ApiError::NotFound),
            }
        };
        return Ok(Target {
            vault_id: vault_id.to_owned(),
            asset_id: id("assetId")?,
            upload_id: id("uploadId")?,
            key_id: id("keyId")?,
        });
    }
    match_path(path, route.path).ok_or(ApiError::NotFound)
}

/// The vault a request addresses, whatever its route, for logging.
pub fn vault_of(req: &Request) -> Option<String> {
    if let Some(vault) = req.path_parameters().first("vaultId") {
        return Some(vault.to_owned());
    }
    let path = req.uri().path();
    ROUTES
        .iter()
        .find_map(|r| match_path(path, r.path))
        .map(|t| t.vault_id)
}

/// Matches the last segments of `path` against `template` (a path of [`ROUTES`]): literal segments
/// must be equal, each `{name}` takes one segment. A prefix (a stage, `/lambda-url/<fn>`) is allowed.
fn match_path(path: &str, template: &str) -> Option<Target> {
    let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    let pattern: Vec<&str> = template.split('/').filter(|s| !s.is_empty()).collect();
    let start = segments.len().checked_sub(pattern.len())?;
    let mut target = Target {
        vault_id: String::new(),
        asset_id: None,
        upload_id: None,
        key_id: None,
    };
    for (segment, want) in segments[start..].iter().zip(&pattern) {
        match *want {
            "{vaultId}" => target.vault_id = (*segment).to_owned(),
            "{assetId}" => target.asset_id = Some((*segment).to_owned()),
            "{uploadId}" => target.upload_id = Some((*segment).to_owned()),
            "{keyId}" => target.key_id = Some((*segment).to_owned()),
            // Delivery's hierarchy: any one segment.
            free if free.starts_with('{') && free.ends_with('}') => {}
            literal if literal == *segment => {}
            _ => return None,
        }
    }
    Some(target)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raw_paths_resolve_with_or_without_a_prefix() {
        let t = match_path("/api/v1/vaults/vault_1/assets", ASSETS).unwrap();
        assert_eq!((t.vault_id.as_str(), t.asset_id), ("vault_1", None));
        let t = match_path(
            "/lambda-url/get/api/v1/vaults/vault_1/assets/asset_2",
            ASSET,
        )
        .unwrap();
        assert_eq!(
            (t.vault_id.as_str(), t.asset_id.as_deref()),
            ("vault_1", Some("asset_2"))
        );
        assert!(match_path("/prod/api/v1/vaults/v/assets/", ASSETS).is_some());
        assert!(match_path("/api/v1/vaults/v/assets", ASSET).is_none());
        assert!(match_path("/api/v1/vaults/v/assets/a", ASSETS).is_none());
        assert!(match_path("/api/v1/vaults/v/assets/a/b", ASSET).is_none());
        assert!(match_path("/", ASSETS).is_none());
        assert!(match_path("/api/v2/vaults/v/assets", ASSETS).is_none());
        let t = match_path(
            "/api/v1/vaults/v/uploads/upload_1/complete",
            route_of("complete").path,
        )
        .unwrap();
        assert_eq!(t.upload_id.as_deref(), Some("upload_1"));
        assert!(
            match_path(
                "/api/v1/vaults/v/uploads/upload_1/content",
                route_of("complete").path
            )
            .is_none()
        );
        assert!(match_path("/api/v1/vaults/v/assets/a/content", ASSET).is_none());
        assert!(
            match_path(
                "/api/v1/vaults/v/assets/a/content",
                route_of("content").path
            )
            .is_some()
        );
    }

    #[test]
    fn siblings_with_the_same_parameters_are_told_apart_by_the_path() {
        let request = |method: &str, path: &str, params: &[(&str, &str)]| {
            let req = lambda_http::http::Request::builder()
                .method(method)
                .uri(path)
                .body(lambda_http::Body::Empty)
                .unwrap();
            let params: std::collections::HashMap<String, String> = params
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
            req.with_path_parameters(params)
        };
        let both = [("vaultId", "v"), ("assetId", "a")];
        let content = request("GET", "/api/v1/vaults/v/assets/a/content", &both);
        assert!(resolve(&content, route_of("content")).is_ok());
        assert!(matches!(
            resolve(&content, route_of("get")),
            Err(ApiError::NotFound)
        ));
        let get = request("GET", "/api/v1/vaults/v/assets/a", &both);
        assert!(resolve(&get, route_of("get")).is_ok());
        assert!(matches!(
            resolve(&get, route_of("content")),
            Err(ApiError::NotFound)
        ));
        let uploads = request("POST", "/api/v1/vaults/v/uploads", &[("vaultId", "v")]);
        assert!(resolve(&uploads, route_of("uploads")).is_ok());
        assert!(matches!(
            resolve(&uploads, route_of("upload")),
            Err(ApiError::NotFound)
        ));
    }

    #[test]
    fn the_lenient_paths_are_routes_of_the_registry() {
        for path in LENIENT_PATHS {
            assert!(ROUTES.iter().any(|r| r.path == path), "{path}");
        }
    }
}
