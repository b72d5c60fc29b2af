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
    /// For a function that serves no route: the default EventBridge schedule expression that
    /// invokes it (`rate(1 hour)`; the deployment makes it a parameter).
    pub schedule: Option<&'static str>,
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
            // A function serves routes or runs on a schedule, never both or neither.
            assert_eq!(
                function.routes.is_empty(),
                function.schedule.is_some(),
                "{}",
                function.name
            );
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
            (routes: $($routed:ident)*; schedule: $($scheduled:ident)*) => {
                ([$(stringify!($routed)),*], [$(stringify!($scheduled)),*])
            };
        }
        let (routed, scheduled) = each_function!(collect);
        let all: Vec<&str> = routed.iter().chain(scheduled.iter()).copied().collect();
        let mut registered: Vec<&str> = names().collect();
        registered.sort_by_key(|name| find(name).is_some_and(|f| f.schedule.is_some()));
        assert_eq!(all, registered);
        assert!(
            scheduled
                .iter()
                .all(|name| find(name).unwrap().schedule.is_some())
        );
        assert!(find("gc").is_some_and(|f| f.r2 && f.schedule == Some("rate(1 hour)")));
        assert!(find("upload").is_some_and(|f| f.r2));
        assert!(find("no-such-function").is_none());
    }
}
