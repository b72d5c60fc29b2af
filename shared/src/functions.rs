//! The registry of functions: `functions.toml` at the workspace root, compiled in by
//! `shared/build.rs`. It is the one list of functions; every other list (the workspace manifest,
//! the deployment template, openapi.yaml, the READMEs) is derived from it or checked against it
//! by `tests/tests/registry.rs`.

/// One route of a function. Defined here, with the registry, so that `routes` (which resolves
/// requests against them) depends on the registry and never the other way round.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Route {
    pub method: &'static str,
    pub path: &'static str,
    /// The function (binary and crate) that serves it.
    pub function: &'static str,
    /// Served by `cargo lambda watch` only, never deployed: the embedded default's stand-in for
    /// a presigned R2 URL.
    pub local_only: bool,
}

/// One function: a crate under `functions/`, its binary, and a Lambda function.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Function {
    /// The crate, its binary and the deployed function's suffix.
    pub name: &'static str,
    /// The routes it serves.
    pub routes: &'static [Route],
    /// Whether it reaches R2 (its crate carries shared's `r2` feature).
    pub r2: bool,
    /// Served by `cargo lambda watch` only, never deployed.
    pub local_only: bool,
    /// The statuses it answers besides those every route answers.
    pub answers: &'static [u16],
}

include!(concat!(env!("OUT_DIR"), "/functions.rs"));

/// The registry's entry for `name`, if it has one.
pub fn find(name: &str) -> Option<&'static Function> {
    FUNCTIONS.iter().find(|f| f.name == name)
}

/// The names of every function, in the registry's order.
pub fn names() -> impl Iterator<Item = &'static str> {
    FUNCTIONS.iter().map(|f| f.name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_route_names_its_function_and_shares_its_local_flag() {
        for function in FUNCTIONS {
            assert!(!function.routes.is_empty(), "{}", function.name);
            for route in function.routes {
                assert_eq!(route.function, function.name);
                assert_eq!(route.local_only, function.local_only);
                assert!(ROUTES.contains(route));
            }
        }
        let total: usize = FUNCTIONS.iter().map(|f| f.routes.len()).sum();
        assert_eq!(total, ROUTES.len());
    }

    #[test]
    fn each_function_names_every_function_in_order() {
        macro_rules! collect {
            ($($name:ident)*) => {
                [$(stringify!($name)),*]
            };
        }
        let listed = each_function!(collect);
        assert_eq!(listed.to_vec(), names().collect::<Vec<_>>());
        assert!(find("upload").is_some_and(|f| f.r2));
        assert!(find("no-such-function").is_none());
    }
}
