//! The route table of API.md, and how a handler finds its vault and asset ids in a request.
//!
//! API Gateway and `cargo lambda watch`'s router fill in `pathParameters`; a request that arrives
//! without them (a function URL, an ALB, `/lambda-url/<fn>/…`) is resolved from its raw path, whose
//! last segments must be `api/v1/vaults/{vaultId}/assets[/{assetId}]`.

use crate::ApiError;
use lambda_http::{Request, RequestExt, http::Method};

/// One row of the route table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Route {
    pub method: &'static str,
    pub path: &'static str,
    /// The function (binary and crate) that serves it.
    pub function: &'static str,
}

pub const ASSETS: &str = "/api/v1/vaults/{vaultId}/assets";
pub const ASSET: &str = "/api/v1/vaults/{vaultId}/assets/{assetId}";

/// Every route of the API. `Cargo.toml`'s watch router and the deployment template must agree.
pub const ROUTES: [Route; 5] = [
    Route {
        method: "POST",
        path: ASSETS,
        function: "upload",
    },
    Route {
        method: "GET",
        path: ASSETS,
        function: "list",
    },
    Route {
        method: "GET",
        path: ASSET,
        function: "get",
    },
    Route {
        method: "PATCH",
        path: ASSET,
        function: "update",
    },
    Route {
        method: "DELETE",
        path: ASSET,
        function: "delete",
    },
];

/// The route served by `function`.
pub fn route_of(function: &str) -> Route {
    ROUTES
        .into_iter()
        .find(|r| r.function == function)
        .unwrap_or_else(|| panic!("no route for function {function}"))
}

/// The ids a request addresses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub vault_id: String,
    pub asset_id: Option<String>,
}

/// Finds the ids of `route` in `req`; a request for another method or path is 404 NOT_FOUND.
pub fn resolve(req: &Request, route: Route) -> Result<Target, ApiError> {
    if req.method() != Method::from_bytes(route.method.as_bytes()).map_err(ApiError::internal)? {
        return Err(ApiError::NotFound);
    }
    let wants_asset = route.path == ASSET;
    let params = req.path_parameters();
    if let Some(vault_id) = params.first("vaultId") {
        let asset_id = params.first("assetId");
        if asset_id.is_some() != wants_asset {
            return Err(ApiError::NotFound);
        }
        return Ok(Target {
            vault_id: vault_id.to_owned(),
            asset_id: asset_id.map(str::to_owned),
        });
    }
    from_raw_path(req.uri().path(), wants_asset).ok_or(ApiError::NotFound)
}

/// The vault a request addresses, whatever its route, for logging.
pub fn vault_of(req: &Request) -> Option<String> {
    if let Some(vault) = req.path_parameters().first("vaultId") {
        return Some(vault.to_owned());
    }
    let path = req.uri().path();
    from_raw_path(path, true)
        .or_else(|| from_raw_path(path, false))
        .map(|t| t.vault_id)
}

fn from_raw_path(path: &str, wants_asset: bool) -> Option<Target> {
    let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    let tail = if wants_asset { 6 } else { 5 };
    let start = segments.len().checked_sub(tail)?;
    match &segments[start..] {
        ["api", "v1", "vaults", vault, "assets", rest @ ..] => Some(Target {
            vault_id: (*vault).to_owned(),
            asset_id: rest.first().map(|s| (*s).to_owned()),
        }),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raw_paths_resolve_with_or_without_a_prefix() {
        let t = from_raw_path("/api/v1/vaults/vault_1/assets", false).unwrap();
        assert_eq!((t.vault_id.as_str(), t.asset_id), ("vault_1", None));
        let t =
            from_raw_path("/lambda-url/get/api/v1/vaults/vault_1/assets/asset_2", true).unwrap();
        assert_eq!(
            (t.vault_id.as_str(), t.asset_id.as_deref()),
            ("vault_1", Some("asset_2"))
        );
        assert!(from_raw_path("/prod/api/v1/vaults/v/assets/", false).is_some());
        assert!(from_raw_path("/api/v1/vaults/v/assets", true).is_none());
        assert!(from_raw_path("/api/v1/vaults/v/assets/a", false).is_none());
        assert!(from_raw_path("/api/v1/vaults/v/assets/a/b", true).is_none());
        assert!(from_raw_path("/", false).is_none());
        assert!(from_raw_path("/api/v2/vaults/v/assets", false).is_none());
    }

    #[test]
    fn every_function_has_one_route() {
        for f in ["upload", "list", "get", "update", "delete"] {
            assert_eq!(ROUTES.iter().filter(|r| r.function == f).count(), 1);
        }
    }
}
