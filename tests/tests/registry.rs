//! The registry of functions (`functions.toml`, compiled into `shared::functions::FUNCTIONS`) is
//! the one list of functions. What is derived from it needs no check here: the workspace's
//! `functions/*` members, the test kit's `dispatch` (`shared::each_function!`), the routes the
//! handlers resolve (`shared::routes::ROUTES`), `events/make.py` and `scripts/invoke-events.sh`.
//! Every list that cannot be derived is checked against it below, and each fault names the file,
//! what it lacks or has too many of, and the function concerned:
//!
//! - `functions/`: a crate for each function and no other, named as its function, whose binary
//!   has its name, and that carries the R2 client exactly when the registry says it reaches R2;
//! - `Cargo.toml`: a `[workspace.dependencies]` entry for each function, and the watch router
//!   with every route;
//! - `infra/template.yaml`: every route that is not local-only, each to its function's binary,
//!   and CORS allowing their methods; each function on a schedule, with an EventBridge schedule
//!   whose default expression is the registry's;
//! - `infra/README.md`: a row for each deployed route and each schedule, with the template's
//!   memory and timeout;
//! - `README.md`: the route table;
//! - `events/`: a success and an error sample for each function that serves routes, a success
//!   sample for each on a schedule.
//!
//! `openapi.yaml` is checked by `tests/tests/openapi.rs`, and each check is proven to fail: on a
//! registry with one more function (the lists then lack it) and one function less (the lists then
//! have one too many).

#[path = "../../shared/build/registry.rs"]
#[allow(dead_code)]
mod registry_file;

use shared::functions::{FUNCTIONS, Function};
use shared::routes::Route;
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use yaml_rust2::{Yaml, YamlLoader};

fn workspace_file(path: &str) -> String {
    let full = format!("{}/../{path}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&full).unwrap_or_else(|e| panic!("{full}: {e}"))
}

fn routes(registry: &[Function]) -> impl Iterator<Item = &'static Route> + '_ {
    registry.iter().flat_map(|f| f.routes.iter())
}

fn deployed(registry: &[Function]) -> impl Iterator<Item = &'static Route> + '_ {
    routes(registry).filter(|r| !r.local_only)
}

fn has(registry: &[Function], name: &str) -> bool {
    registry.iter().any(|f| f.name == name)
}

fn is_route(registry: &[Function], method: &str, path: &str, function: &str) -> bool {
    routes(registry).any(|r| r.method == method && r.path == path && r.function == function)
}

// --- functions/ --------------------------------------------------------------------------------

/// `crates`: each directory under `functions/` with its `Cargo.toml`.
fn check_crates(registry: &[Function], crates: &BTreeMap<String, String>) -> Vec<String> {
    let mut faults = Vec::new();
    for dir in crates.keys().filter(|d| !has(registry, d)) {
        faults.push(format!(
            "functions/{dir}: a crate that functions.toml does not have; add its entry there"
        ));
    }
    for function in registry {
        let name = function.name;
        let Some(text) = crates.get(name) else {
            faults.push(format!(
                "functions/{name}/Cargo.toml: missing (function {name} of functions.toml)"
            ));
            continue;
        };
        let manifest: toml::Table = match toml::from_str(text) {
            Ok(manifest) => manifest,
            Err(e) => {
                faults.push(format!("functions/{name}/Cargo.toml: {e}"));
                continue;
            }
        };
        if manifest["package"]["name"].as_str() != Some(name) {
            faults.push(format!(
                "functions/{name}/Cargo.toml: the package must be named {name}"
            ));
        }
        let bins = manifest.get("bin").and_then(|b| b.as_array());
        if let Some(bins) = bins
            && !bins.iter().any(|b| b["name"].as_str() == Some(name))
        {
            faults.push(format!(
                "functions/{name}/Cargo.toml: the binary must be named {name}, as SAM and \
                 cargo lambda call it"
            ));
        }
        let carries_r2 = manifest["dependencies"]["shared"]
            .get("features")
            .and_then(|f| f.as_array())
            .is_some_and(|f| f.iter().any(|f| f.as_str() == Some("r2")));
        if function.r2 && !carries_r2 {
            faults.push(format!(
                "functions/{name}/Cargo.toml: functions.toml says {name} reaches R2, but its \
                 `shared` dependency lacks the `r2` feature"
            ));
        }
        if !function.r2 && carries_r2 {
            faults.push(format!(
                "functions/{name}/Cargo.toml: turns on shared's `r2` feature, but functions.toml \
                 says {name} never reaches R2 (r2 = false)"
            ));
        }
    }
    faults
}

fn function_crates() -> BTreeMap<String, String> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../functions");
    let mut crates = BTreeMap::new();
    for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = entry.unwrap().path().join("Cargo.toml");
        if let Ok(text) = std::fs::read_to_string(&path) {
            let name = path.parent().unwrap().file_name().unwrap();
            crates.insert(name.to_string_lossy().into_owned(), text);
        }
    }
    crates
}

// --- Cargo.toml ----------------------------------------------------------------------------------

fn check_workspace_manifest(registry: &[Function], text: &str) -> Vec<String> {
    let manifest: toml::Table = toml::from_str(text).expect("Cargo.toml parses");
    let workspace = &manifest["workspace"];
    let mut faults = Vec::new();
    for list in ["members", "default-members"] {
        let entries: Vec<&str> = workspace[list]
            .as_array()
            .map(|a| a.iter().filter_map(|m| m.as_str()).collect())
            .unwrap_or_default();
        let globbed = entries.contains(&"functions/*");
        for function in registry {
            let dir = format!("functions/{}", function.name);
            if !globbed && !entries.contains(&dir.as_str()) {
                faults.push(format!(
                    "Cargo.toml: {list} lacks {dir} (function {}); `functions/*` covers every \
                     function",
                    function.name
                ));
            }
        }
        for entry in entries {
            if let Some(name) = entry.strip_prefix("functions/")
                && name != "*"
                && !has(registry, name)
            {
                faults.push(format!(
                    "Cargo.toml: {list} names {entry}, which functions.toml does not have"
                ));
            }
        }
    }

    let dependencies = workspace["dependencies"]
        .as_table()
        .expect("[workspace.dependencies]");
    for function in registry {
        let name = function.name;
        let path = dependencies
            .get(name)
            .and_then(|d| d.get("path"))
            .and_then(|p| p.as_str());
        if path != Some(&format!("functions/{name}")) {
            faults.push(format!(
                "Cargo.toml: [workspace.dependencies] lacks `{name} = {{ path = \"functions/{name}\" }}` \
                 (function {name})"
            ));
        }
    }
    for (name, dependency) in dependencies {
        let path = dependency.get("path").and_then(|p| p.as_str());
        if path.is_some_and(|p| p.starts_with("functions/")) && !has(registry, name) {
            faults.push(format!(
                "Cargo.toml: [workspace.dependencies] names the crate {name}, which functions.toml \
                 does not have"
            ));
        }
    }

    let router = workspace["metadata"]["lambda"]["watch"]["router"]
        .as_table()
        .expect("[workspace.metadata.lambda.watch.router]");
    let mut served = BTreeSet::new();
    for (path, entries) in router {
        for entry in entries
            .as_array()
            .expect("an array of { method, function }")
        {
            let method = entry["method"].as_str().expect("method");
            let function = entry["function"].as_str().expect("function");
            served.insert((method.to_owned(), path.clone(), function.to_owned()));
            if !is_route(registry, method, path, function) {
                faults.push(format!(
                    "Cargo.toml: the watch router sends {method} {path} to {function}, which is \
                     no route of functions.toml"
                ));
            }
        }
    }
    for route in routes(registry) {
        let key = (
            route.method.to_owned(),
            route.path.to_owned(),
            route.function.to_owned(),
        );
        if !served.contains(&key) {
            faults.push(format!(
                "Cargo.toml: the watch router has no {} {} (function {})",
                route.method, route.path, route.function
            ));
        }
    }
    faults
}

// --- infra/template.yaml -------------------------------------------------------------------------

/// One function of the deployment template.
struct Deployed {
    binary: String,
    routes: BTreeSet<(String, String)>,
    /// The expressions of its EventBridge schedules (a parameter's default when it names one).
    schedules: Vec<String>,
    memory: i64,
    timeout: i64,
}

fn template_functions(doc: &Yaml) -> Vec<Deployed> {
    let globals = &doc["Globals"]["Function"];
    let resources = doc["Resources"].as_hash().expect("Resources");
    let mut found = Vec::new();
    for resource in resources.values() {
        if resource["Type"].as_str() != Some("AWS::Serverless::Function") {
            continue;
        }
        let binary = resource["Metadata"]["BuildProperties"]["Binary"]
            .as_str()
            .expect("each function names its binary")
            .to_owned();
        assert_eq!(
            resource["Metadata"]["BuildMethod"].as_str(),
            Some("rust-cargolambda"),
            "{binary}"
        );
        let properties = &resource["Properties"];
        let setting = |key: &str| {
            properties[key]
                .as_i64()
                .or_else(|| globals[key].as_i64())
                .unwrap_or_else(|| panic!("{binary}: {key}"))
        };
        let mut routes = BTreeSet::new();
        let mut schedules = Vec::new();
        for event in properties["Events"].as_hash().expect("Events").values() {
            let kind = event["Type"].as_str();
            let event = &event["Properties"];
            match kind {
                Some("HttpApi") => {
                    routes.insert((
                        event["Method"].as_str().expect("Method").to_owned(),
                        event["Path"].as_str().expect("Path").to_owned(),
                    ));
                }
                Some("Schedule" | "ScheduleV2") => {
                    let key = if kind == Some("Schedule") {
                        "Schedule"
                    } else {
                        "ScheduleExpression"
                    };
                    // `!Ref Name` reads as the text `Name`: a parameter's default stands for it.
                    let named = event[key].as_str().expect("a schedule expression");
                    let default = doc["Parameters"][named]["Default"].as_str();
                    schedules.push(default.unwrap_or(named).to_owned());
                }
                other => panic!("{binary}: an event of type {other:?}"),
            }
        }
        found.push(Deployed {
            schedules,
            memory: setting("MemorySize"),
            timeout: setting("Timeout"),
            binary,
            routes,
        });
    }
    found
}

fn check_template(registry: &[Function], text: &str) -> Vec<String> {
    let doc = YamlLoader::load_from_str(text)
        .expect("infra/template.yaml parses")
        .remove(0);
    let functions = template_functions(&doc);
    let mut faults = Vec::new();
    for route in deployed(registry) {
        let served = functions.iter().any(|f| {
            f.binary == route.function
                && f.routes
                    .contains(&(route.method.to_owned(), route.path.to_owned()))
        });
        if !served {
            faults.push(format!(
                "infra/template.yaml: no route for {} {} (function {})",
                route.method, route.path, route.function
            ));
        }
    }
    for function in registry {
        let Some(schedule) = function.schedule else {
            continue;
        };
        match functions.iter().find(|f| f.binary == function.name) {
            None => faults.push(format!(
                "infra/template.yaml: no function {} (it runs on a schedule in functions.toml)",
                function.name
            )),
            Some(deployed) if !deployed.schedules.iter().any(|s| s == schedule) => {
                faults.push(format!(
                    "infra/template.yaml: {} has no schedule event of {schedule:?} (its default \
                     in functions.toml), only {:?}",
                    function.name, deployed.schedules
                ))
            }
            Some(_) => {}
        }
    }
    for function in &functions {
        let binary = &function.binary;
        let scheduled = registry
            .iter()
            .any(|f| f.name == *binary && f.schedule.is_some());
        if !function.schedules.is_empty() && !scheduled {
            faults.push(format!(
                "infra/template.yaml: invokes {binary} on a schedule, which functions.toml does \
                 not give it"
            ));
        }
        let local = registry.iter().any(|f| f.name == *binary && f.local_only);
        if local {
            faults.push(format!(
                "infra/template.yaml: deploys {binary}, which functions.toml marks local_only"
            ));
            continue;
        }
        for (method, path) in &function.routes {
            if !is_route(registry, method, path, binary) {
                faults.push(format!(
                    "infra/template.yaml: routes {method} {path} to {binary}, which is no route \
                     of functions.toml"
                ));
            }
        }
    }
    let cors: Vec<&str> =
        doc["Resources"]["HttpApi"]["Properties"]["CorsConfiguration"]["AllowMethods"]
            .as_vec()
            .expect("the HTTP API's CorsConfiguration.AllowMethods")
            .iter()
            .filter_map(Yaml::as_str)
            .collect();
    let mut named = BTreeSet::new();
    for route in deployed(registry) {
        if !cors.contains(&route.method) && named.insert(route.method) {
            faults.push(format!(
                "infra/template.yaml: CorsConfiguration.AllowMethods lacks {} (function {})",
                route.method, route.function
            ));
        }
    }
    faults
}

// --- infra/README.md ------------------------------------------------------------------------------

/// The rows of the Markdown table whose header row starts with `header`, as trimmed cells.
fn table_rows(text: &str, header: &str) -> Vec<Vec<String>> {
    let mut lines = text.lines().skip_while(|l| !l.starts_with(header));
    assert!(lines.next().is_some(), "no table headed {header:?}");
    lines
        .skip(1)
        .take_while(|l| l.starts_with('|'))
        .map(|l| {
            l.trim_matches('|')
                .split('|')
                .map(|c| c.trim().to_owned())
                .collect()
        })
        .collect()
}

fn check_infra_readme(registry: &[Function], text: &str, template: &str) -> Vec<String> {
    let doc = YamlLoader::load_from_str(template).unwrap().remove(0);
    let functions = template_functions(&doc);
    let rows = table_rows(text, "| route | function (binary) | memory | timeout |");
    let mut faults = Vec::new();
    let mut seen = BTreeSet::new();
    let mut scheduled_rows = BTreeSet::new();
    for row in &rows {
        let route = row[0].trim_matches('`');
        let function = row[1].trim_matches('`').trim_start_matches("<stack>-");
        let (method, path) = route.split_once(' ').unwrap_or((route, ""));
        // A function on a schedule has the row `schedule (GcSchedule)`.
        let on_schedule = method == "schedule";
        if on_schedule {
            if registry
                .iter()
                .any(|f| f.name == function && f.schedule.is_some())
            {
                scheduled_rows.insert(function.to_owned());
            } else {
                faults.push(format!(
                    "infra/README.md: the table's schedule row for {function} is no function on \
                     a schedule in functions.toml"
                ));
                continue;
            }
        } else if !deployed(registry)
            .any(|r| r.method == method && r.path == path && r.function == function)
        {
            faults.push(format!(
                "infra/README.md: the table's row {route} ({function}) is no deployed route of \
                 functions.toml"
            ));
            continue;
        }
        if !on_schedule {
            seen.insert((method.to_owned(), path.to_owned()));
        }
        if let Some(settings) = functions.iter().find(|f| f.binary == function) {
            let (memory, timeout) = (
                format!("{} MB", settings.memory),
                format!("{} s", settings.timeout),
            );
            if row[2] != memory || row[3] != timeout {
                faults.push(format!(
                    "infra/README.md: {function} has {memory} and {timeout} in \
                     infra/template.yaml, the table says {} and {}",
                    row[2], row[3]
                ));
            }
        }
    }
    for route in deployed(registry) {
        if !seen.contains(&(route.method.to_owned(), route.path.to_owned())) {
            faults.push(format!(
                "infra/README.md: the table has no row for {} {} (function {})",
                route.method, route.path, route.function
            ));
        }
    }
    for function in registry.iter().filter(|f| f.schedule.is_some()) {
        if !scheduled_rows.contains(function.name) {
            faults.push(format!(
                "infra/README.md: the table has no schedule row for {} (function {0})",
                function.name
            ));
        }
    }
    faults
}

// --- README.md ------------------------------------------------------------------------------------

fn check_readme(registry: &[Function], text: &str) -> Vec<String> {
    let rows = table_rows(text, "| method | path | function |");
    let mut faults = Vec::new();
    let mut seen = BTreeSet::new();
    for row in &rows {
        let (method, path) = (
            row[0].as_str(),
            row[1].split('?').next().unwrap_or_default(),
        );
        let (function, local) = match row[2].strip_suffix(" (local only)") {
            Some(function) => (function, true),
            None => (row[2].as_str(), false),
        };
        let Some(route) = routes(registry)
            .find(|r| r.method == method && r.path == path && r.function == function)
        else {
            faults.push(format!(
                "README.md: the route table's row {method} {path} ({function}) is no route of \
                 functions.toml"
            ));
            continue;
        };
        seen.insert((method, path));
        if route.local_only != local {
            faults.push(format!(
                "README.md: the route table must mark {function} `(local only)` exactly when \
                 functions.toml does"
            ));
        }
    }
    for route in routes(registry) {
        if !seen.contains(&(route.method, route.path)) {
            faults.push(format!(
                "README.md: the route table has no row for {} {} (function {})",
                route.method, route.path, route.function
            ));
        }
    }
    faults
}

// --- events/ --------------------------------------------------------------------------------------

/// `names`: the files of `events/`, `<function>.<status>.<case>.json`.
fn check_events(registry: &[Function], names: &[String]) -> Vec<String> {
    let mut faults = Vec::new();
    for function in registry {
        let statuses: Vec<u16> = names
            .iter()
            .filter_map(|n| {
                let mut parts = n.split('.');
                (parts.next() == Some(function.name))
                    .then(|| parts.next()?.parse().ok())
                    .flatten()
            })
            .collect();
        for (kind, wanted) in [("success", 200..300), ("error", 400..600)] {
            // A function on a schedule answers no status to err with.
            let needed = kind == "success" || function.schedule.is_none();
            if needed && !statuses.iter().any(|s| wanted.contains(s)) {
                faults.push(format!(
                    "events/: no {kind} event for {} (add one to events/make.py and run it)",
                    function.name
                ));
            }
        }
    }
    faults
}

fn event_names() -> Vec<String> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../events");
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".json"))
        .collect();
    names.sort();
    names
}

// --- all of them ----------------------------------------------------------------------------------

fn every_fault(registry: &[Function]) -> Vec<String> {
    let template = workspace_file("infra/template.yaml");
    let mut faults = check_crates(registry, &function_crates());
    faults.extend(check_workspace_manifest(
        registry,
        &workspace_file("Cargo.toml"),
    ));
    faults.extend(check_template(registry, &template));
    faults.extend(check_infra_readme(
        registry,
        &workspace_file("infra/README.md"),
        &template,
    ));
    faults.extend(check_readme(registry, &workspace_file("README.md")));
    faults.extend(check_events(registry, &event_names()));
    faults
}

#[test]
fn every_list_agrees_with_the_registry() {
    let faults = every_fault(&FUNCTIONS);
    assert!(
        faults.is_empty(),
        "{} fault(s): lists disagree with functions.toml:\n{}",
        faults.len(),
        faults.join("\n")
    );
}

/// A function added to the registry alone: every list that is not derived names what it lacks.
#[test]
fn a_new_entry_alone_is_named_missing_in_every_list() {
    const KEYS: &[Route] = &[Route {
        method: "PUT",
        path: "/api/v1/vaults/{vaultId}/keys",
        function: "keys",
        local_only: false,
    }];
    let mut registry = FUNCTIONS.to_vec();
    registry.push(Function {
        name: "keys",
        routes: KEYS,
        r2: false,
        local_only: false,
        answers: &[200],
        schedule: None,
    });
    let path = "/api/v1/vaults/{vaultId}/keys";
    assert_eq!(
        every_fault(&registry),
        [
            "functions/keys/Cargo.toml: missing (function keys of functions.toml)".to_owned(),
            "Cargo.toml: [workspace.dependencies] lacks `keys = { path = \"functions/keys\" }` \
             (function keys)"
                .to_owned(),
            format!("Cargo.toml: the watch router has no PUT {path} (function keys)"),
            format!("infra/template.yaml: no route for PUT {path} (function keys)"),
            "infra/template.yaml: CorsConfiguration.AllowMethods lacks PUT (function keys)"
                .to_owned(),
            format!("infra/README.md: the table has no row for PUT {path} (function keys)"),
            format!("README.md: the route table has no row for PUT {path} (function keys)"),
            "events/: no success event for keys (add one to events/make.py and run it)".to_owned(),
            "events/: no error event for keys (add one to events/make.py and run it)".to_owned(),
        ]
    );
}

/// A function on a schedule added to the registry alone: the lists it belongs in name it
/// missing (a crate, a template function with its schedule, a row, a sample), and the route
/// lists do not miss it.
#[test]
fn a_new_scheduled_entry_alone_is_named_missing_where_it_belongs() {
    let mut registry = FUNCTIONS.to_vec();
    registry.push(Function {
        name: "reap",
        routes: &[],
        r2: false,
        local_only: false,
        answers: &[],
        schedule: Some("rate(1 day)"),
    });
    assert_eq!(
        every_fault(&registry),
        [
            "functions/reap/Cargo.toml: missing (function reap of functions.toml)",
            "Cargo.toml: [workspace.dependencies] lacks `reap = { path = \"functions/reap\" }` \
             (function reap)",
            "infra/template.yaml: no function reap (it runs on a schedule in functions.toml)",
            "infra/README.md: the table has no schedule row for reap (function reap)",
            "events/: no success event for reap (add one to events/make.py and run it)",
        ]
    );

    // The template's gc on another schedule, and a schedule on a function that serves routes.
    let template = workspace_file("infra/template.yaml")
        .replace("Default: rate(1 hour)", "Default: rate(2 hours)");
    assert_eq!(
        check_template(&FUNCTIONS, &template),
        [
            "infra/template.yaml: gc has no schedule event of \"rate(1 hour)\" (its default in \
          functions.toml), only [\"rate(2 hours)\"]"
        ]
    );
    let template = workspace_file("infra/template.yaml").replace(
        "      Events:\n        Api:\n          Type: HttpApi\n          Properties:\n            \
         ApiId: !Ref HttpApi\n            Method: GET\n            Path: /api/v1/vaults/{vaultId}/assets\n",
        "      Events:\n        Api:\n          Type: HttpApi\n          Properties:\n            \
         ApiId: !Ref HttpApi\n            Method: GET\n            Path: /api/v1/vaults/{vaultId}/assets\n        \
         Tick:\n          Type: Schedule\n          Properties:\n            Schedule: rate(5 minutes)\n",
    );
    assert_eq!(
        check_template(&FUNCTIONS, &template),
        ["infra/template.yaml: invokes list on a schedule, which functions.toml does not give it"]
    );
}

/// A function removed from the registry alone: every list names what it has too many of.
#[test]
fn a_removed_entry_is_named_extra_in_every_list() {
    let registry: Vec<Function> = FUNCTIONS
        .into_iter()
        .filter(|f| f.name != "content")
        .collect();
    let path = "/api/v1/vaults/{vaultId}/assets/{assetId}/content";
    assert_eq!(
        every_fault(&registry),
        [
            "functions/content: a crate that functions.toml does not have; add its entry there"
                .to_owned(),
            "Cargo.toml: [workspace.dependencies] names the crate content, which functions.toml \
             does not have"
                .to_owned(),
            format!(
                "Cargo.toml: the watch router sends GET {path} to content, which is no route of \
                 functions.toml"
            ),
            format!(
                "infra/template.yaml: routes GET {path} to content, which is no route of \
                 functions.toml"
            ),
            format!(
                "infra/README.md: the table's row GET {path} (content) is no deployed route of \
                 functions.toml"
            ),
            format!(
                "README.md: the route table's row GET {path} (content) is no route of \
                 functions.toml"
            ),
        ]
    );
}

/// Faults a registry change cannot show: a crate that does not match its entry, a manifest that
/// lists a function by hand and misses one, a template that deploys a local-only function, and
/// tables that disagree on details.
#[test]
fn mismatched_details_are_named() {
    let mut crates = function_crates();
    let get = crates.get_mut("get").unwrap();
    *get = get.replace(
        "shared.workspace = true",
        "shared = { workspace = true, features = [\"r2\"] }",
    );
    let upload = crates.get_mut("upload").unwrap();
    *upload = upload
        .replace("features = [\"r2\"]", "features = []")
        .replace("name = \"upload\"\npath", "name = \"uploader\"\npath");
    assert_eq!(
        check_crates(&FUNCTIONS, &crates),
        [
            "functions/upload/Cargo.toml: the binary must be named upload, as SAM and cargo \
             lambda call it",
            "functions/upload/Cargo.toml: functions.toml says upload reaches R2, but its `shared` \
             dependency lacks the `r2` feature",
            "functions/get/Cargo.toml: turns on shared's `r2` feature, but functions.toml says get \
             never reaches R2 (r2 = false)",
        ]
    );

    let manifest = workspace_file("Cargo.toml").replace(
        "default-members = [\"functions/*\"]",
        "default-members = [\"functions/upload\", \"functions/gone\"]",
    );
    let faults = check_workspace_manifest(&FUNCTIONS, &manifest);
    // Every function but upload is missing (one per function of the registry), and one extra.
    assert_eq!(faults.len(), FUNCTIONS.len(), "{faults:#?}");
    assert_eq!(
        faults[0],
        "Cargo.toml: default-members lacks functions/list (function list); `functions/*` covers \
         every function"
    );
    assert_eq!(
        faults[FUNCTIONS.len() - 1],
        "Cargo.toml: default-members names functions/gone, which functions.toml does not have"
    );

    let receive = r#"  ReceiveFunction:
    Type: AWS::Serverless::Function
    Metadata:
      BuildMethod: rust-cargolambda
      BuildProperties:
        Binary: receive
    Properties:
      Events:
        Api:
          Type: HttpApi
          Properties:
            Method: PUT
            Path: /x

"#;
    let template = workspace_file("infra/template.yaml")
        .replace("Outputs:\n", &format!("{receive}Outputs:\n"));
    assert_eq!(
        check_template(&FUNCTIONS, &template),
        ["infra/template.yaml: deploys receive, which functions.toml marks local_only"]
    );

    let infra = workspace_file("infra/README.md")
        .replace("`<stack>-upload` | 512 MB", "`<stack>-upload` | 256 MB");
    assert_eq!(
        check_infra_readme(&FUNCTIONS, &infra, &workspace_file("infra/template.yaml")),
        [
            "infra/README.md: upload has 512 MB and 28 s in infra/template.yaml, the table says 256 MB and 28 s"
        ]
    );

    let readme = workspace_file("README.md").replace("| receive (local only) |", "| receive |");
    assert_eq!(
        check_readme(&FUNCTIONS, &readme),
        [
            "README.md: the route table must mark receive `(local only)` exactly when functions.toml does"
        ]
    );
}

/// The registry file itself: the real one parses to the compiled-in table, and a faulty one
/// stops the build with words that say what is wrong.
#[test]
fn the_registry_file_is_checked_when_it_is_compiled_in() {
    let text = workspace_file("functions.toml");
    let entries = registry_file::parse(&text).unwrap();
    let names: Vec<&str> = entries.iter().map(|e| e.name.as_str()).collect();
    assert_eq!(names, shared::functions::names().collect::<Vec<_>>());
    for (entry, function) in entries.iter().zip(FUNCTIONS) {
        assert_eq!(entry.r2, function.r2, "{}", function.name);
        assert_eq!(entry.answers, function.answers, "{}", function.name);
    }

    let faulty = |from: &str, to: &str| {
        assert!(text.contains(from), "{from}");
        registry_file::parse(&text.replacen(from, to, 1)).unwrap_err()
    };
    assert_eq!(
        faulty("name = \"list\"", "name = \"upload\""),
        "upload: declared twice"
    );
    assert_eq!(
        faulty(
            "\"GET /api/v1/vaults/{vaultId}/assets\"",
            "\"POST /api/v1/vaults/{vaultId}/assets\""
        ),
        "list: POST /api/v1/vaults/{vaultId}/assets is served by another function too"
    );
    assert_eq!(
        faulty("name = \"get\"", "name = \"Get\""),
        "[[function]] #3: Get: a name is lowercase letters, digits and `_`, starting with a letter"
    );
    assert_eq!(
        faulty("answers = [200]\n", "answer = [200]\n"),
        "[[function]] #3: get: unknown key \"answer\""
    );
    assert_eq!(
        faulty(
            "\"GET /api/v1/vaults/{vaultId}/assets/{assetId}\"",
            "\"GET /api/v1/vaults/{vaultId}/tags/{tagId}\""
        ),
        "[[function]] #3: get: \"GET /api/v1/vaults/{vaultId}/tags/{tagId}\": {tagId} is not a \
         parameter shared::routes fills in ([\"vaultId\", \"assetId\", \"uploadId\", \"keyId\", \
         \"partition\", \"collection\", \"channel\", \"filename\"])"
    );
    assert_eq!(
        faulty("\"PATCH /api/v1", "\"OPTIONS /api/v1"),
        "[[function]] #4: update: \"OPTIONS /api/v1/vaults/{vaultId}/assets/{assetId}\": the \
         method must be one of [\"GET\", \"HEAD\", \"POST\", \"PUT\", \"PATCH\", \"DELETE\"]"
    );
    assert_eq!(
        faulty(
            "\"GET /api/v1/vaults/{vaultId}/assets/{assetId}\"",
            "\"GET /files/{vaultId}/{assetId}\""
        ),
        "[[function]] #3: get: \"GET /files/{vaultId}/{assetId}\": the path must start with \
         /api/v1/vaults/{vaultId} (or /d/{vaultId})"
    );
    assert_eq!(
        faulty("answers = [204]", "answers = [204, 700]"),
        "[[function]] #5: delete: 700 is not an HTTP status"
    );
    assert_eq!(
        faulty("local_only = true", "local_only = \"yes\""),
        "[[function]] #7: receive: local_only must be true or false"
    );
    let gc_entry = entries.iter().find(|e| e.name == "gc").unwrap();
    assert_eq!(gc_entry.schedule.as_deref(), Some("rate(1 hour)"));
    assert!(gc_entry.routes.is_empty() && gc_entry.answers.is_empty());
    assert_eq!(
        faulty(
            "schedule = \"rate(1 hour)\"",
            "schedule = \"rate(1 hours)\""
        ),
        "[[function]] #10: gc: schedule \"rate(1 hours)\": a rate of 1 takes one of the units \
         [\"minute\", \"hour\", \"day\"]"
    );
    assert_eq!(
        faulty("schedule = \"rate(1 hour)\"", "schedule = \"every hour\""),
        "[[function]] #10: gc: schedule \"every hour\": an EventBridge schedule is `rate(…)` or \
         `cron(…)`"
    );
    assert_eq!(
        faulty(
            "routes = []\nr2 = true\nschedule",
            "routes = [\"GET /api/v1/vaults/{vaultId}/gc\"]\nr2 = true\nschedule"
        ),
        "[[function]] #10: gc: a function on a schedule (rate(1 hour)) has `routes = []`, no \
         answers and is not local_only"
    );
    assert_eq!(
        faulty(
            "routes = []\nr2 = true\nschedule = \"rate(1 hour)\"",
            "routes = []\nr2 = true"
        ),
        "[[function]] #10: gc: routes must be a list of one or more \"METHOD /path\" (or a \
         schedule)"
    );
}
