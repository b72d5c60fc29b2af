//! No module of `shared` imports a module that imports it back, directly or through others.
//!
//! The graph is read from the source: each file under `src/` is a module (`lib.rs` the root,
//! `a/mod.rs` and `a.rs` both `a`), and so is each inline `mod name { … }`. A module depends on
//! another when its code names a path into it: `use crate::a::B`, `super::B`, `self::b::C`, a child
//! module by its bare name, or such a path in an expression. Comments and string literals are not
//! code. Declaring a child (`mod b;`) is not a dependency, and neither is the root's `pub use`:
//! a path through a root re-export (`crate::ApiError`) leads to the module that defines the name.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

type Graph = BTreeMap<String, BTreeSet<String>>;

#[test]
fn no_module_of_shared_imports_a_module_that_imports_it_back() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    collect(&src, &src, &mut files);
    assert!(files.len() > 10, "read {} files under {src:?}", files.len());
    let graph = graph(&files);
    assert!(
        graph
            .get("crate::db::d1")
            .is_some_and(|to| to.contains("crate::db")),
        "the reader must see d1's `use super::…`: {graph:#?}"
    );
    let cycles = cycles(&graph);
    assert!(
        cycles.is_empty(),
        "modules that import each other back:\n  {}",
        cycles.join("\n  ")
    );
}

#[test]
fn no_request_handler_imports_admin_code() {
    let functions = Path::new(env!("CARGO_MANIFEST_DIR")).join("../functions");
    let mut files = Vec::new();
    collect(&functions, &functions, &mut files);
    assert!(
        files.iter().any(|(f, _)| f == "delete/src/lib.rs"),
        "read {} files under {functions:?}",
        files.len()
    );
    let offenders: Vec<&str> = files
        .iter()
        .filter(|(_, source)| names_shared_admin(source))
        .map(|(file, _)| file.as_str())
        .collect();
    assert!(
        offenders.is_empty(),
        "handlers importing shared::admin: {offenders:?}"
    );
    assert!(names_shared_admin("use shared::{Deps, admin::gc};"));
    assert!(names_shared_admin("fn f() { shared::admin::fsck(); }"));
    assert!(!names_shared_admin(
        "// shared::admin::gc\nuse shared::ingest;"
    ));
}

/// True when `source` names a path into `shared::admin`, in a `use` or in code.
fn names_shared_admin(source: &str) -> bool {
    let mut found = false;
    walk(&[], &tokens(source), |_, item, _| {
        let paths = match item {
            Item::Use { paths, .. } => paths,
            Item::Path(path) => vec![path],
            Item::InlineMod(_) => return,
        };
        found |= paths
            .iter()
            .any(|p| p.len() >= 2 && p[0] == "shared" && p[1] == "admin");
    });
    found
}

fn collect(root: &Path, dir: &Path, out: &mut Vec<(String, String)>) {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            collect(root, &path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            let relative = path
                .strip_prefix(root)
                .unwrap()
                .to_string_lossy()
                .replace('\\', "/");
            out.push((relative, std::fs::read_to_string(&path).unwrap()));
        }
    }
}

/// `a/b.rs` and `a/b/mod.rs` → `crate::a::b`; `lib.rs` → `crate`.
fn module_of(file: &str) -> Vec<String> {
    let stem = file.trim_end_matches(".rs");
    let mut parts: Vec<String> = stem.split('/').map(str::to_owned).collect();
    if matches!(parts.last().map(String::as_str), Some("mod" | "lib")) {
        parts.pop();
    }
    parts
}

fn name(module: &[String]) -> String {
    std::iter::once("crate")
        .chain(module.iter().map(String::as_str))
        .collect::<Vec<_>>()
        .join("::")
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Ident(String),
    Path,
    Open,
    Close,
    Semi,
    Comma,
    Star,
    Other,
}

/// Identifiers and the punctuation that shapes paths, with comments and literals left out.
fn tokens(source: &str) -> Vec<Tok> {
    let chars: Vec<char> = source.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let next = chars.get(i + 1).copied();
        if c == '/' && next == Some('/') {
            while i < chars.len() && chars[i] != '\n' {
                i += 1;
            }
        } else if c == '/' && next == Some('*') {
            let mut depth = 0;
            while i < chars.len() {
                if chars[i] == '/' && chars.get(i + 1) == Some(&'*') {
                    depth += 1;
                    i += 2;
                } else if chars[i] == '*' && chars.get(i + 1) == Some(&'/') {
                    depth -= 1;
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    i += 1;
                }
            }
        } else if c == 'r' && (next == Some('"') || next == Some('#')) && raw_string_at(&chars, i) {
            // r"…", r#"…"#: ends at a quote followed by as many #s as opened it.
            let mut j = i + 1;
            let mut hashes = 0;
            while chars[j] == '#' {
                hashes += 1;
                j += 1;
            }
            j += 1;
            while j < chars.len() {
                if chars[j] == '"' && (1..=hashes).all(|k| chars.get(j + k) == Some(&'#')) {
                    j += 1 + hashes;
                    break;
                }
                j += 1;
            }
            i = j;
            out.push(Tok::Other);
        } else if c == '"' {
            i += 1;
            while i < chars.len() && chars[i] != '"' {
                i += if chars[i] == '\\' { 2 } else { 1 };
            }
            i += 1;
            out.push(Tok::Other);
        } else if c == '\'' {
            // A char literal ('x', '\n', '\u{..}') or a lifetime ('a).
            if next == Some('\\') {
                i += 2;
                while i < chars.len() && chars[i] != '\'' {
                    i += 1;
                }
                i += 1;
            } else if chars.get(i + 2) == Some(&'\'') {
                i += 3;
            } else {
                i += 1;
            }
            out.push(Tok::Other);
        } else if c.is_alphabetic() || c == '_' {
            let start = i;
            while i < chars.len() && (chars[i].is_alphanumeric() || chars[i] == '_') {
                i += 1;
            }
            out.push(Tok::Ident(chars[start..i].iter().collect()));
        } else if c == ':' && next == Some(':') {
            out.push(Tok::Path);
            i += 2;
        } else {
            out.push(match c {
                '{' => Tok::Open,
                '}' => Tok::Close,
                ';' => Tok::Semi,
                ',' => Tok::Comma,
                '*' => Tok::Star,
                c if c.is_whitespace() => {
                    i += 1;
                    continue;
                }
                _ => Tok::Other,
            });
            i += 1;
        }
    }
    out
}

fn raw_string_at(chars: &[char], i: usize) -> bool {
    // `r"` or `r#…"`, and the `r` not the end of an identifier such as `for`.
    let starts_word = i == 0 || !(chars[i - 1].is_alphanumeric() || chars[i - 1] == '_');
    let mut j = i + 1;
    while chars.get(j) == Some(&'#') {
        j += 1;
    }
    starts_word && chars.get(j) == Some(&'"')
}

/// The paths a `use` tree names, each as its segments (`{self}` and `*` end at their prefix).
fn use_paths(toks: &[Tok], prefix: &[String], out: &mut Vec<Vec<String>>) -> usize {
    let mut path = prefix.to_vec();
    let mut i = 0;
    while i < toks.len() {
        match &toks[i] {
            Tok::Ident(word) if word == "as" => {
                i += 2;
                continue;
            }
            Tok::Ident(word) if word == "self" && !path.is_empty() => {}
            Tok::Ident(word) => path.push(word.clone()),
            Tok::Path | Tok::Star => {}
            Tok::Open => {
                i += 1;
                loop {
                    i += use_paths(&toks[i..], &path, out);
                    match toks.get(i) {
                        Some(Tok::Comma) => i += 1,
                        _ => break,
                    }
                }
                if matches!(toks.get(i), Some(Tok::Close)) {
                    i += 1;
                }
                return i;
            }
            Tok::Comma | Tok::Close | Tok::Semi => break,
            Tok::Other => {}
        }
        i += 1;
    }
    if path.len() > prefix.len() || (!path.is_empty() && i > 0) {
        out.push(path);
    }
    i
}

struct Module {
    path: Vec<String>,
    /// The brace depth at which this inline module's body ends.
    closes_at: Option<usize>,
}

/// Every module of `files` and the modules each one names.
fn graph(files: &[(String, String)]) -> Graph {
    let mut known: BTreeSet<Vec<String>> = files.iter().map(|(f, _)| module_of(f)).collect();
    let parsed: Vec<(Vec<String>, Vec<Tok>)> = files
        .iter()
        .map(|(f, src)| (module_of(f), tokens(src)))
        .collect();
    // Inline modules, and the root's re-exports, first: paths may lead into either.
    let mut reexports: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (module, toks) in &parsed {
        walk(module, toks, |at, kind, _| match kind {
            Item::InlineMod(name) => {
                let mut inline = at.to_vec();
                inline.push(name);
                known.insert(inline);
            }
            Item::Use {
                public: true,
                paths,
            } if at.is_empty() => {
                for path in paths {
                    if let Some(last) = path.last() {
                        reexports.insert(last.clone(), path.clone());
                    }
                }
            }
            _ => {}
        });
    }
    let mut graph = Graph::new();
    for module in &known {
        graph.entry(name(module)).or_default();
    }
    for (module, toks) in &parsed {
        walk(module, toks, |at, kind, _| {
            let (paths, root_reexport) = match kind {
                Item::Use { public, paths } => (paths, public && at.is_empty()),
                Item::Path(path) => (vec![path], false),
                Item::InlineMod(_) => return,
            };
            if root_reexport {
                return;
            }
            for path in paths {
                if let Some(target) = resolve(at, &path, &known, &reexports)
                    && target != at
                {
                    graph.entry(name(at)).or_default().insert(name(&target));
                }
            }
        });
    }
    graph
}

enum Item {
    InlineMod(String),
    Use {
        public: bool,
        paths: Vec<Vec<String>>,
    },
    Path(Vec<String>),
}

/// Calls `visit` with the module each item is in, for inline modules, `use`s and paths.
fn walk(file_module: &[String], toks: &[Tok], mut visit: impl FnMut(&[String], Item, usize)) {
    let mut stack = vec![Module {
        path: file_module.to_vec(),
        closes_at: None,
    }];
    let mut depth = 0;
    let mut i = 0;
    while i < toks.len() {
        let here = stack.last().unwrap().path.clone();
        match &toks[i] {
            Tok::Open => depth += 1,
            Tok::Close => {
                depth -= 1;
                if stack.last().unwrap().closes_at == Some(depth) {
                    stack.pop();
                }
            }
            Tok::Ident(word) if word == "mod" => {
                if let (Some(Tok::Ident(name)), Some(Tok::Open)) =
                    (toks.get(i + 1), toks.get(i + 2))
                {
                    let mut path = here.clone();
                    path.push(name.clone());
                    visit(&here, Item::InlineMod(name.clone()), i);
                    stack.push(Module {
                        path,
                        closes_at: Some(depth),
                    });
                    depth += 1;
                    i += 3;
                    continue;
                }
            }
            Tok::Ident(word) if word == "use" => {
                let public = i > 0 && toks[i - 1] == Tok::Ident("pub".into());
                let end = toks[i..].iter().position(|t| *t == Tok::Semi).unwrap() + i;
                let mut paths = Vec::new();
                use_paths(&toks[i + 1..end], &[], &mut paths);
                visit(&here, Item::Use { public, paths }, i);
                i = end + 1;
                continue;
            }
            Tok::Ident(first) if toks.get(i + 1) == Some(&Tok::Path) => {
                // A path in code: `first::second::…`, unless it continues one (`x::first::`).
                let continues = i > 0 && toks[i - 1] == Tok::Path;
                let mut path = vec![first.clone()];
                let mut j = i + 1;
                while toks.get(j) == Some(&Tok::Path) {
                    match toks.get(j + 1) {
                        Some(Tok::Ident(next)) => path.push(next.clone()),
                        _ => break,
                    }
                    j += 2;
                }
                if !continues {
                    visit(&here, Item::Path(path), i);
                }
                i = j;
                continue;
            }
            _ => {}
        }
        i += 1;
    }
}

/// The module a path from `at` leads into: the longest known prefix, through the root's
/// re-exports. `None` for paths outside the crate (`std::…`, a dependency, a local type).
fn resolve(
    at: &[String],
    path: &[String],
    known: &BTreeSet<Vec<String>>,
    reexports: &BTreeMap<String, Vec<String>>,
) -> Option<Vec<String>> {
    let (mut full, rest): (Vec<String>, &[String]) = match path.first()?.as_str() {
        "crate" => (Vec::new(), &path[1..]),
        "self" => (at.to_vec(), &path[1..]),
        "super" => {
            let mut base = at.to_vec();
            let mut rest = path;
            while rest.first().is_some_and(|s| s == "super") {
                base.pop()?;
                rest = &rest[1..];
            }
            (base, rest)
        }
        child => {
            let mut candidate = at.to_vec();
            candidate.push(child.to_owned());
            if !known.contains(&candidate) {
                return None;
            }
            (at.to_vec(), path)
        }
    };
    full.extend(rest.iter().cloned());
    if let Some(first) = full.first()
        && !known.contains(&vec![first.clone()])
        && let Some(target) = reexports.get(first)
    {
        let mut through = target.clone();
        through.extend(full[1..].iter().cloned());
        return resolve(&[], &through, known, &BTreeMap::new());
    }
    (0..=full.len())
        .rev()
        .map(|n| full[..n].to_vec())
        .find(|prefix| known.contains(prefix))
}

/// One cycle per strongly connected group of modules, as `a → b → a`.
fn cycles(graph: &Graph) -> Vec<String> {
    let mut found = Vec::new();
    let mut seen: BTreeSet<&str> = BTreeSet::new();
    for start in graph.keys() {
        if seen.contains(start.as_str()) {
            continue;
        }
        if let Some(cycle) = path_back(graph, start) {
            seen.extend(cycle.iter().copied());
            let mut shown: Vec<&str> = cycle.clone();
            shown.push(cycle[0]);
            found.push(shown.join(" → "));
        }
    }
    found
}

/// The shortest path from `start` through its dependencies back to `start`, if there is one.
fn path_back<'g>(graph: &'g Graph, start: &'g str) -> Option<Vec<&'g str>> {
    let mut came_from: BTreeMap<&str, &str> = BTreeMap::new();
    let mut queue = std::collections::VecDeque::from([start]);
    while let Some(node) = queue.pop_front() {
        for next in graph.get(node).into_iter().flatten() {
            if next == start {
                let mut cycle = vec![node];
                while let Some(prev) = came_from.get(cycle.last().unwrap()) {
                    cycle.push(prev);
                }
                if cycle.last() != Some(&start) {
                    cycle.push(start);
                }
                cycle.reverse();
                cycle.dedup();
                return Some(cycle);
            }
            if next != start && !came_from.contains_key(next.as_str()) {
                came_from.insert(next, node);
                queue.push_back(next);
            }
        }
    }
    None
}

fn files(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter()
        .map(|(f, s)| (f.to_string(), s.to_string()))
        .collect()
}

#[test]
fn the_reader_sees_every_way_of_naming_a_module() {
    let graph = graph(&files(&[
        (
            "lib.rs",
            "pub mod a; pub mod b; pub use error::Error; pub mod error;",
        ),
        (
            "a.rs",
            "use crate::{b::{self, B}, c};\nfn f() -> crate::Error { todo!() }",
        ),
        ("b/mod.rs", "pub mod inner; fn g() { inner::go(); }"),
        (
            "b/inner.rs",
            "use super::super::c::C;\n#[cfg(test)] mod tests { use super::*; }",
        ),
        (
            "c.rs",
            "// use crate::a; is a comment\nconst S: &str = \"crate::a::x\"; fn h() { self::d(); }",
        ),
        (
            "d.rs",
            "fn k() { let _ = crate::BoxFuture; let _ = std::mem::take; }",
        ),
        ("error.rs", "pub struct Error;"),
    ]));
    let to = |m: &str| -> Vec<&str> { graph[m].iter().map(String::as_str).collect() };
    assert_eq!(to("crate::a"), ["crate::b", "crate::c", "crate::error"]);
    assert_eq!(to("crate::b"), ["crate::b::inner"]);
    assert_eq!(to("crate::b::inner"), ["crate::c"]);
    assert_eq!(to("crate::b::inner::tests"), ["crate::b::inner"]);
    assert!(
        to("crate::c").is_empty(),
        "comments and strings: {:?}",
        to("crate::c")
    );
    assert_eq!(to("crate::d"), ["crate"]);
    assert!(
        to("crate").is_empty(),
        "the root's re-exports: {:?}",
        to("crate")
    );
}

#[test]
fn the_finder_names_each_cycle() {
    let edges = |list: &[(&str, &[&str])]| -> Graph {
        list.iter()
            .map(|(from, to)| (from.to_string(), to.iter().map(|t| t.to_string()).collect()))
            .collect()
    };
    let acyclic = edges(&[("a", &["b", "c"]), ("b", &["c"]), ("c", &[])]);
    assert!(cycles(&acyclic).is_empty());
    let looped = edges(&[
        ("a", &["b"]),
        ("b", &["c"]),
        ("c", &["a", "d"]),
        ("d", &["e"]),
        ("e", &["d"]),
        ("f", &["a"]),
    ]);
    assert_eq!(cycles(&looped), ["a → b → c → a", "d → e → d"]);
    let graph = graph(&files(&[
        ("lib.rs", "pub mod deps; pub mod db;"),
        ("deps.rs", "use crate::db::d1::D1;"),
        ("db/mod.rs", "pub mod d1;"),
        ("db/d1.rs", "use crate::deps::Secret;"),
    ]));
    assert_eq!(
        cycles(&graph),
        ["crate::db::d1 → crate::deps → crate::db::d1"]
    );
}
