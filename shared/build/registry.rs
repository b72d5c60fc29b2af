//! Reads and checks `functions.toml`, the registry of functions, and writes it out as Rust.
//!
//! Shared by `shared/build.rs` (which compiles the registry into the library) and by
//! `tests/tests/registry.rs` (which proves that a faulty registry is refused, and how).

use std::collections::BTreeSet;
use std::fmt::Write as _;

/// The path parameters `shared::routes` knows how to fill in (the last four: delivery's hierarchy,
/// which its handler reads itself).
pub const PARAMETERS: [&str; 8] = [
    "vaultId",
    "assetId",
    "uploadId",
    "keyId",
    "partition",
    "collection",
    "channel",
    "filename",
];
/// The methods the functions may serve.
pub const METHODS: [&str; 6] = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"];
/// Every route lives under a vault: logging and authorization read the vault from the path.
pub const PREFIX: &str = "/api/v1/vaults/{vaultId}";
/// ... and so does delivery, whose URLs a browser uses with no key (docs/API.md#delivery).
pub const DELIVERY_PREFIX: &str = "/d/{vaultId}";

/// One entry of the registry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub name: String,
    /// (method, path) pairs.
    pub routes: Vec<(String, String)>,
    pub r2: bool,
    pub local_only: bool,
    pub answers: Vec<u16>,
    /// The default EventBridge schedule expression of a function that serves no route.
    pub schedule: Option<String>,
}

/// Parses and checks the registry; `Err` lists every fault, one per line.
pub fn parse(text: &str) -> Result<Vec<Entry>, String> {
    let table: toml::Table = toml::from_str(text).map_err(|e| format!("not TOML: {e}"))?;
    let mut faults = Vec::new();
    for key in table.keys().filter(|k| *k != "function") {
        faults.push(format!(
            "unknown top-level key {key:?} (only [[function]] entries)"
        ));
    }
    let items = match table.get("function").map(|f| f.as_array()) {
        Some(Some(items)) if !items.is_empty() => items.as_slice(),
        _ => return Err("no [[function]] entries".to_owned()),
    };
    let mut entries = Vec::new();
    for (i, item) in items.iter().enumerate() {
        match entry(item) {
            Ok(entry) => entries.push(entry),
            Err(fault) => faults.push(format!("[[function]] #{}: {fault}", i + 1)),
        }
    }
    let mut names = BTreeSet::new();
    let mut routes = BTreeSet::new();
    for entry in &entries {
        if !names.insert(entry.name.as_str()) {
            faults.push(format!("{}: declared twice", entry.name));
        }
        for (method, path) in &entry.routes {
            if !routes.insert((method.as_str(), path.as_str())) {
                faults.push(format!(
                    "{}: {method} {path} is served by another function too",
                    entry.name
                ));
            }
        }
    }
    if faults.is_empty() {
        Ok(entries)
    } else {
        Err(faults.join("\n"))
    }
}

fn entry(item: &toml::Value) -> Result<Entry, String> {
    let table = item.as_table().ok_or("not a table")?;
    let name = table
        .get("name")
        .and_then(toml::Value::as_str)
        .ok_or("no name")?
        .to_owned();
    let fault = |what: String| format!("{name}: {what}");
    for key in table.keys() {
        if !["name", "routes", "r2", "local_only", "answers", "schedule"].contains(&key.as_str()) {
            return Err(fault(format!("unknown key {key:?}")));
        }
    }
    let mut chars = name.chars();
    let name_ok = chars.next().is_some_and(|c| c.is_ascii_lowercase())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if !name_ok {
        return Err(fault(
            "a name is lowercase letters, digits and `_`, starting with a letter".to_owned(),
        ));
    }
    let flag = |key: &str| match table.get(key) {
        None => Ok(false),
        Some(value) => value
            .as_bool()
            .ok_or_else(|| fault(format!("{key} must be true or false"))),
    };
    let r2 = flag("r2")?;
    let local_only = flag("local_only")?;
    let schedule = match table.get("schedule") {
        None => None,
        Some(value) => {
            let text = value
                .as_str()
                .ok_or_else(|| fault("schedule must be a string".to_owned()))?;
            schedule_expression(text).map_err(|e| fault(format!("schedule {text:?}: {e}")))?;
            Some(text.to_owned())
        }
    };
    if let Some(schedule) = &schedule {
        // A scheduled function is invoked by EventBridge, never through the HTTP API.
        let routed = table
            .get("routes")
            .and_then(toml::Value::as_array)
            .is_none_or(|routes| !routes.is_empty());
        if routed || table.contains_key("answers") || local_only {
            return Err(fault(format!(
                "a function on a schedule ({schedule}) has `routes = []`, no answers and is not \
                 local_only"
            )));
        }
        return Ok(Entry {
            name,
            routes: Vec::new(),
            r2,
            local_only,
            answers: Vec::new(),
            schedule: Some(schedule.clone()),
        });
    }
    let routes = table
        .get("routes")
        .and_then(toml::Value::as_array)
        .filter(|routes| !routes.is_empty())
        .ok_or_else(|| {
            fault(
                "routes must be a list of one or more \"METHOD /path\" (or a schedule)".to_owned(),
            )
        })?
        .iter()
        .map(|route| {
            let key = route
                .as_str()
                .ok_or_else(|| fault("a route is a string".to_owned()))?;
            route_key(key).map_err(|e| fault(format!("{key:?}: {e}")))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let answers = table
        .get("answers")
        .and_then(toml::Value::as_array)
        .ok_or_else(|| fault("answers must be a list of HTTP statuses".to_owned()))?
        .iter()
        .map(|status| {
            status
                .as_integer()
                .and_then(|s| u16::try_from(s).ok())
                .filter(|s| (100..600).contains(s))
                .ok_or_else(|| {
                    let shown = status
                        .as_integer()
                        .map_or_else(|| format!("{status:?}"), |n| n.to_string());
                    fault(format!("{shown} is not an HTTP status"))
                })
        })
        .collect::<Result<Vec<_>, _>>()?;
    if answers.iter().collect::<BTreeSet<_>>().len() != answers.len() {
        return Err(fault("answers lists a status twice".to_owned()));
    }
    Ok(Entry {
        name,
        routes,
        r2,
        local_only,
        answers,
        schedule: None,
    })
}

/// Checks an EventBridge schedule expression's shape: `rate(N unit)` with a unit that agrees
/// with N, or `cron(…)` with six fields. EventBridge checks the rest when it is deployed.
fn schedule_expression(text: &str) -> Result<(), String> {
    if let Some(rate) = text.strip_prefix("rate(").and_then(|t| t.strip_suffix(')')) {
        let (value, unit) = rate.split_once(' ').ok_or("a rate is `rate(N unit)`")?;
        let n: u32 = value
            .parse()
            .ok()
            .filter(|n| *n > 0)
            .ok_or("a rate's value is a positive whole number")?;
        let units: &[&str] = if n == 1 {
            &["minute", "hour", "day"]
        } else {
            &["minutes", "hours", "days"]
        };
        if !units.contains(&unit) {
            return Err(format!("a rate of {n} takes one of the units {units:?}"));
        }
        return Ok(());
    }
    if let Some(cron) = text.strip_prefix("cron(").and_then(|t| t.strip_suffix(')')) {
        if cron.split(' ').filter(|f| !f.is_empty()).count() != 6 {
            return Err("a cron expression has six fields".to_owned());
        }
        return Ok(());
    }
    Err("an EventBridge schedule is `rate(…)` or `cron(…)`".to_owned())
}

/// `"METHOD /path"` → (method, path), checked.
fn route_key(key: &str) -> Result<(String, String), String> {
    let (method, path) = key.split_once(' ').ok_or("a route is \"METHOD /path\"")?;
    if !METHODS.contains(&method) {
        return Err(format!("the method must be one of {METHODS:?}"));
    }
    if !path.starts_with(PREFIX) && !path.starts_with(DELIVERY_PREFIX) {
        return Err(format!(
            "the path must start with {PREFIX} (or {DELIVERY_PREFIX})"
        ));
    }
    for segment in path.split('/').skip(1) {
        if let Some(parameter) = segment.strip_prefix('{') {
            let parameter = parameter.strip_suffix('}').unwrap_or(parameter);
            if !PARAMETERS.contains(&parameter) {
                return Err(format!(
                    "{{{parameter}}} is not a parameter shared::routes fills in ({PARAMETERS:?})"
                ));
            }
        } else if segment.is_empty()
            || !segment
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        {
            return Err(format!(
                "the segment {segment:?} must be lowercase letters, digits and `-`"
            ));
        }
    }
    Ok((method.to_owned(), path.to_owned()))
}

/// The registry as Rust: `FUNCTIONS`, `ROUTES` and the `each_function!` macro.
pub fn render(entries: &[Entry]) -> String {
    let route = |entry: &Entry, (method, path): &(String, String)| {
        format!(
            "Route {{ method: {method:?}, path: {path:?}, function: {:?}, local_only: {} }}",
            entry.name, entry.local_only
        )
    };
    let mut out = String::from("// Written by shared/build.rs from functions.toml.\n\n");
    let _ = writeln!(
        out,
        "/// Every function, in the registry's order.\npub const FUNCTIONS: [Function; {}] = [",
        entries.len()
    );
    for entry in entries {
        let routes: Vec<String> = entry.routes.iter().map(|r| route(entry, r)).collect();
        let _ = writeln!(
            out,
            "    Function {{ name: {:?}, routes: &[{}], r2: {}, local_only: {}, answers: &{:?}, \
             schedule: {:?} }},",
            entry.name,
            routes.join(", "),
            entry.r2,
            entry.local_only,
            entry.answers,
            entry.schedule
        );
    }
    out.push_str("];\n\n");
    let all: Vec<String> = entries
        .iter()
        .flat_map(|e| e.routes.iter().map(move |r| route(e, r)))
        .collect();
    let _ = writeln!(
        out,
        "/// Every route of every function.\npub const ROUTES: [Route; {}] = [",
        all.len()
    );
    for route in all {
        let _ = writeln!(out, "    {route},");
    }
    out.push_str("];\n\n");
    let names = |scheduled: bool| {
        entries
            .iter()
            .filter(|e| e.schedule.is_some() == scheduled)
            .map(|e| e.name.as_str())
            .collect::<Vec<_>>()
            .join(" ")
    };
    let (routed, scheduled) = (names(false), names(true));
    let _ = writeln!(
        out,
        "/// Calls the macro `$callback` with the name of every function, as identifiers: those\n\
         /// that serve routes, then those on a schedule.\n\
         /// `each_function!(m)` is `m! {{ routes: {routed}; schedule: {scheduled} }}`.\n\
         #[macro_export]\n\
         macro_rules! each_function {{\n    ($callback:ident) => {{\n        \
         $callback! {{ routes: {routed}; schedule: {scheduled} }}\n    }};\n}}"
    );
    out
}
