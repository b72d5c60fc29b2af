//! No module of `shared` imports a module that imports it back, directly or through others.
//!
//! The graph is read from syn's syntax tree of each file under `src/`: each file is a module
//! (`lib.rs` the root, `a/mod.rs` and `a.rs` both `a`), and so is each inline `mod name { … }`. A
//! module depends on another when its code names a path into it: `use crate::a::B`, `super::B`,
//! `self::b::C`, a child module by its bare name, or such a path in code or in a macro's
//! arguments. Declaring a child (`mod b;`) is not a dependency, and neither is the root's `pub use`:
//! a path through a root re-export (`crate::ApiError`) leads to the module that defines the name.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use syn::parse::{Parse, ParseStream};
use syn::punctuated::Punctuated;
use syn::visit::{self, Visit};
use syn::{Block, Expr, Pat, Token, UseTree};

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
    // The exception by design: a function on a schedule (gc) serves no request and runs the
    // CLI's own sweep, which lives in shared::admin.
    let scheduled = |file: &str| {
        let function = file.split('/').next().unwrap_or_default();
        shared::functions::find(function).is_some_and(|f| f.schedule.is_some())
    };
    let (allowed, offenders): (Vec<&str>, Vec<&str>) = files
        .iter()
        .filter(|(file, source)| names_shared_admin(file, source))
        .map(|(file, _)| file.as_str())
        .partition(|file| scheduled(file));
    assert!(
        offenders.is_empty(),
        "handlers importing shared::admin: {offenders:?}"
    );
    assert_eq!(
        allowed,
        ["gc/src/lib.rs"],
        "the scheduled sweep runs shared::admin::gc"
    );
    assert!(names_shared_admin("t.rs", "use shared::{Deps, admin::gc};"));
    assert!(names_shared_admin(
        "t.rs",
        "fn f() { shared::admin::fsck(); }"
    ));
    assert!(names_shared_admin(
        "t.rs",
        "fn f() { ::shared::admin::fsck(); }"
    ));
    assert!(names_shared_admin(
        "t.rs",
        "fn f() { g!(shared::admin::gc); }"
    ));
    assert!(!names_shared_admin(
        "t.rs",
        "// shared::admin::gc\nuse shared::ingest; const A: &str = \"shared::admin\";"
    ));
}

/// True when `source` names a path into `shared::admin`, in a `use` or in code.
fn names_shared_admin(file: &str, source: &str) -> bool {
    read(file, source, Vec::new()).paths.iter().any(|(_, p)| {
        let p = p.strip_prefix(&["::".to_owned()][..]).unwrap_or(p);
        p.len() >= 2 && p[0] == "shared" && p[1] == "admin"
    })
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

/// What one file names, each path with the module (inline ones included) that names it.
#[derive(Default)]
struct Reader {
    at: Vec<String>,
    inline_modules: Vec<Vec<String>>,
    paths: Vec<(Vec<String>, Vec<String>)>,
    /// The root's `pub use`s: the name each makes visible at the root, and the path it stands for.
    reexports: Vec<(String, Vec<String>)>,
    use_prefix: Vec<String>,
    in_root_pub_use: bool,
}

fn read(file: &str, source: &str, module: Vec<String>) -> Reader {
    let tree = syn::parse_file(source).unwrap_or_else(|e| panic!("{file}: {e}"));
    let mut reader = Reader {
        at: module,
        ..Reader::default()
    };
    reader.visit_file(&tree);
    reader
}

impl<'ast> Visit<'ast> for Reader {
    fn visit_item_mod(&mut self, item: &'ast syn::ItemMod) {
        if item.content.is_none() {
            return; // `mod b;` only declares the file module: not a dependency.
        }
        self.at.push(item.ident.to_string());
        self.inline_modules.push(self.at.clone());
        visit::visit_item_mod(self, item);
        self.at.pop();
    }

    fn visit_item_use(&mut self, item: &'ast syn::ItemUse) {
        self.in_root_pub_use = self.at.is_empty() && matches!(item.vis, syn::Visibility::Public(_));
        visit::visit_item_use(self, item);
        self.in_root_pub_use = false;
    }

    fn visit_use_tree(&mut self, tree: &'ast UseTree) {
        // `{self}` and `*` name the module their prefix leads to; `x as y` names `x`, shown as `y`.
        let (ident, shown) = match tree {
            UseTree::Path(p) => {
                self.use_prefix.push(p.ident.to_string());
                visit::visit_use_tree(self, tree);
                self.use_prefix.pop();
                return;
            }
            UseTree::Group(_) => return visit::visit_use_tree(self, tree),
            UseTree::Name(n) => (Some(&n.ident), n.ident.to_string()),
            UseTree::Rename(r) => (Some(&r.ident), r.rename.to_string()),
            UseTree::Glob(_) => (None, "*".to_owned()),
        };
        let mut path = self.use_prefix.clone();
        if let Some(ident) = ident.filter(|i| *i != "self" || path.is_empty()) {
            path.push(ident.to_string());
        }
        if self.in_root_pub_use {
            self.reexports.push((shown, path));
        } else {
            self.paths.push((self.at.clone(), path));
        }
    }

    fn visit_path(&mut self, path: &'ast syn::Path) {
        // A one-segment path is a local name or an import's; the `use` was read already.
        if path.segments.len() > 1 {
            let extern_crate = path.leading_colon.as_ref().map(|_| "::".to_owned());
            let segments = path.segments.iter().map(|s| s.ident.to_string());
            let segments = extern_crate.into_iter().chain(segments).collect();
            self.paths.push((self.at.clone(), segments));
        }
        visit::visit_path(self, path);
    }

    fn visit_macro(&mut self, mac: &'ast syn::Macro) {
        visit::visit_macro(self, mac);
        // syn leaves a macro's arguments as tokens; read them in the shapes the std macros take.
        let exprs = Punctuated::<Expr, Token![,]>::parse_terminated;
        if let Ok(args) = mac.parse_body_with(exprs) {
            args.iter().for_each(|e| self.visit_expr(e));
        } else if let Ok(stmts) = mac.parse_body_with(Block::parse_within) {
            stmts.iter().for_each(|s| self.visit_stmt(s));
        } else if let Ok(MatchesArgs(expr, pat, guard)) = mac.parse_body() {
            self.visit_expr(&expr);
            self.visit_pat(&pat);
            guard.iter().for_each(|g| self.visit_expr(g));
        }
    }
}

/// `matches!`'s arguments: an expression, a pattern and an optional `if` guard.
struct MatchesArgs(Expr, Pat, Option<Expr>);

impl Parse for MatchesArgs {
    fn parse(input: ParseStream) -> syn::Result<Self> {
        let expr = input.parse()?;
        input.parse::<Token![,]>()?;
        let pat = Pat::parse_multi_with_leading_vert(input)?;
        let guard = match input.parse::<Option<Token![if]>>()? {
            Some(_) => Some(input.parse()?),
            None => None,
        };
        input.parse::<Option<Token![,]>>()?;
        Ok(MatchesArgs(expr, pat, guard))
    }
}

/// Every module of `files` and the modules each one names.
fn graph(files: &[(String, String)]) -> Graph {
    let readers: Vec<Reader> = files
        .iter()
        .map(|(f, src)| read(f, src, module_of(f)))
        .collect();
    let mut known: BTreeSet<Vec<String>> = files.iter().map(|(f, _)| module_of(f)).collect();
    known.extend(
        readers
            .iter()
            .flat_map(|r| r.inline_modules.iter().cloned()),
    );
    let reexports: BTreeMap<String, Vec<String>> = readers
        .iter()
        .flat_map(|r| r.reexports.iter().cloned())
        .collect();
    let mut graph: Graph = known.iter().map(|m| (name(m), BTreeSet::new())).collect();
    for (at, path) in readers.iter().flat_map(|r| &r.paths) {
        if let Some(target) = resolve(at, path, &known, &reexports)
            && target != *at
        {
            graph.entry(name(at)).or_default().insert(name(&target));
        }
    }
    graph
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
            "pub mod a; pub mod b; pub use error::Error; pub use e::Kind as ErrorKind; \
             pub mod e; pub mod error;",
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
        ("e.rs", "pub struct Kind; use crate::a as renamed;"),
        (
            "f.rs",
            "fn m(x: u8) { assert!(matches!(x, crate::e::K | crate::b::K if crate::c::ok())); }",
        ),
        (
            "g.rs",
            "fn n() { let _ = format!(\"{}\", crate::ErrorKind); vec![crate::a::X; 2]; }",
        ),
        (
            "h.rs",
            "use crate::b::*; impl crate::d::T for Vec<crate::c::C> { fn t() { <u8 as crate::a::U>::u(); } }",
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
    assert_eq!(to("crate::e"), ["crate::a"]);
    assert_eq!(to("crate::f"), ["crate::b", "crate::c", "crate::e"]);
    assert_eq!(to("crate::g"), ["crate::a", "crate::e"]);
    assert_eq!(
        to("crate::h"),
        ["crate::a", "crate::b", "crate::c", "crate::d"]
    );
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
