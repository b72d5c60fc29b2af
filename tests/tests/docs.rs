//! The repository explains itself: a clone holds every document its files cite.
//!
//! Every text file of the repository (`git ls-files`: tracked files and new ones not ignored; a
//! directory walk where there is no git) is read line by line, and each of these is a finding:
//! - an absolute path into the workspace the repository was written in, on its author's machine;
//! - a relative path that climbs out of the repository (`../` past its root, counted from the
//!   citing file's directory);
//! - a Markdown file named that the repository does not hold, looked up from the citing file's
//!   directory and from the root (so a bare contract name names no file: the contract is
//!   `docs/API.md`);
//! - a link to a section (`docs/API.md#routes`, or `(#routes)` inside a Markdown file) that is not
//!   a heading of that file, with headings turned into anchors as GitHub does;
//! - the name of the original reference the contract was written from, which is not shipped.
//!
//! Findings are reported all at once, each as `file:line: what`. The unit tests below show each
//! rule finding what it should on a small text.

use regex_lite::Regex;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::LazyLock;

/// What the checker knows of the repository: its files (relative, `/`-separated) and the
/// section anchors of each Markdown file among them.
#[derive(Default)]
struct Repo {
    files: BTreeSet<String>,
    anchors: BTreeMap<String, BTreeSet<String>>,
}

impl Repo {
    fn add(&mut self, path: &str, text: Option<&str>) {
        self.files.insert(path.to_owned());
        if let (true, Some(text)) = (path.ends_with(".md"), text) {
            self.anchors.insert(path.to_owned(), anchors(text));
        }
    }
}

/// Absolute prefixes that only exist on the machine the repository was written on. Built from
/// pieces so that this file does not contain them itself.
fn machine_paths() -> [String; 1] {
    [["/", "work", "/"].concat()]
}

/// `name` with the Markdown extension, assembled so that the tests' sources cite nothing.
fn md(name: &str) -> String {
    format!("{name}.md")
}

/// Texts that name the original reference the contract was restated from. Built from pieces so
/// that this file does not name it itself.
fn unshipped_names() -> [String; 1] {
    [["seed/", "assets-api"].concat()]
}

static CLIMBING: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"[A-Za-z0-9_.~/-]*\.\./[A-Za-z0-9_.~/-]*").unwrap());
static MARKDOWN: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"[A-Za-z0-9_./-]*[A-Za-z0-9_-]\.md\b(?:#([A-Za-z0-9_-]+))?").unwrap()
});
static LOCAL_LINK: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"\]\(#([A-Za-z0-9_-]+)\)").unwrap());

/// `path` (relative, `/`-separated) seen from directory `dir`, with `.` and `..` resolved;
/// `None` when it climbs above the root.
fn resolve(dir: &str, path: &str) -> Option<String> {
    let mut parts: Vec<&str> = dir.split('/').filter(|p| !p.is_empty()).collect();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop()?;
            }
            name => parts.push(name),
        }
    }
    Some(parts.join("/"))
}

/// The directory part of a repository path (`""` for a file at the root).
fn dir_of(file: &str) -> &str {
    file.rsplit_once('/').map_or("", |(dir, _)| dir)
}

/// The anchor GitHub gives a heading: lower case, punctuation dropped, spaces as hyphens.
fn slug(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter_map(|c| match c {
            ' ' => Some('-'),
            c if c.is_alphanumeric() || c == '-' || c == '_' => Some(c),
            _ => None,
        })
        .collect()
}

/// The anchors of a Markdown text's headings (outside code fences); a repeated heading gets
/// `-1`, `-2`… as GitHub numbers them.
fn anchors(text: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    let mut fenced = false;
    for line in text.lines() {
        if line.trim_start().starts_with("```") {
            fenced = !fenced;
            continue;
        }
        let hashes = line.bytes().take_while(|&b| b == b'#').count();
        if fenced || !(1..=6).contains(&hashes) || !line[hashes..].starts_with(' ') {
            continue;
        }
        let base = slug(&line[hashes..]);
        let n = seen.entry(base.clone()).or_default();
        out.insert(if *n == 0 { base } else { format!("{base}-{n}") });
        *n += 1;
    }
    out
}

/// The findings in `text`, the content of repository file `file`.
fn check_text(repo: &Repo, file: &str, text: &str) -> Vec<String> {
    let dir = dir_of(file);
    let mut findings = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let mut found = |what: String| findings.push(format!("{file}:{}: {what}", i + 1));
        for prefix in machine_paths() {
            if line.contains(&prefix) {
                found(format!(
                    "an absolute path under {prefix}, outside the repository"
                ));
            }
        }
        for name in unshipped_names() {
            if line.contains(&name) {
                found(format!("cites {name}…, which the repository does not hold"));
            }
        }
        // The regexes run only on lines that can match: unoptimised, they are slow on long ones.
        let climbing = line.contains("../").then(|| CLIMBING.find_iter(line));
        for m in climbing.into_iter().flatten() {
            let token = m.as_str().trim_start_matches('/');
            if resolve(dir, token).is_none() {
                found(format!("`{token}` climbs out of the repository"));
            }
        }
        let markdown = line.contains(".md").then(|| MARKDOWN.captures_iter(line));
        for caps in markdown.into_iter().flatten() {
            let whole = caps.get(0).unwrap();
            // Part of a URL (`https://host/…`, ending in a Markdown file's name): not a path of
            // this repository.
            if line[..whole.start()].ends_with(':') {
                continue;
            }
            let cited = whole.as_str().split('#').next().unwrap_or_default();
            // Reported already, as a machine's path or as climbing out.
            let absolute = machine_paths()
                .iter()
                .any(|p| cited.starts_with(p.as_str()));
            if absolute || resolve(dir, cited.trim_start_matches('/')).is_none() {
                continue;
            }
            let target = [resolve(dir, cited), resolve("", cited)]
                .into_iter()
                .flatten()
                .find(|path| repo.files.contains(path));
            let Some(target) = target else {
                found(format!("cites {cited}, which is not in the repository"));
                continue;
            };
            if let Some(anchor) = caps.get(1) {
                let known = repo.anchors.get(&target);
                if !known.is_some_and(|a| a.contains(anchor.as_str())) {
                    found(format!(
                        "cites {cited}#{}, but {target} has no such heading",
                        anchor.as_str()
                    ));
                }
            }
        }
        if file.ends_with(".md") {
            for caps in LOCAL_LINK.captures_iter(line) {
                let anchor = caps.get(1).unwrap().as_str();
                if !repo.anchors.get(file).is_some_and(|a| a.contains(anchor)) {
                    found(format!(
                        "links to #{anchor}, which is no heading of this file"
                    ));
                }
            }
        }
    }
    findings
}

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ has a parent")
        .to_path_buf()
}

/// The repository's files, relative to `root`.
fn repository_files(root: &Path) -> Vec<String> {
    let listed = Command::new("git")
        .arg("-C")
        .arg(root)
        .args([
            "ls-files",
            "-z",
            "--cached",
            "--others",
            "--exclude-standard",
        ])
        .output();
    if let Some(out) = listed.ok().filter(|out| out.status.success()) {
        return String::from_utf8_lossy(&out.stdout)
            .split('\0')
            .filter(|p| !p.is_empty())
            .map(str::to_owned)
            .collect();
    }
    // No git (an exported tarball): every file but build output, dependencies and dot-directories
    // that hold local state.
    fn walk(root: &Path, dir: &Path, out: &mut Vec<String>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            let name = entry.file_name().to_string_lossy().into_owned();
            if path.is_dir() {
                let skipped = ["target", "node_modules", ".git", ".imgbt", ".wrangler"];
                if !skipped.contains(&name.as_str()) {
                    walk(root, &path, out);
                }
            } else if let Ok(rel) = path.strip_prefix(root) {
                out.push(rel.to_string_lossy().replace('\\', "/"));
            }
        }
    }
    let mut out = Vec::new();
    walk(root, root, &mut out);
    out
}

#[test]
fn no_file_cites_a_path_outside_the_repository() {
    let root = root();
    let files = repository_files(&root);
    // Lock files are generated and hold no citations; a file that is not UTF-8 text has no lines.
    let texts: Vec<(String, String)> = files
        .iter()
        .filter(|f| !f.ends_with(".lock") && !f.ends_with("package-lock.json"))
        .filter_map(|f| Some((f.clone(), std::fs::read_to_string(root.join(f)).ok()?)))
        .collect();
    let mut repo = Repo::default();
    for file in &files {
        let text = texts
            .iter()
            .find(|(f, _)| f == file)
            .map(|(_, t)| t.as_str());
        repo.add(file, text);
    }
    assert!(
        texts.len() > 100 && repo.anchors.contains_key("docs/API.md"),
        "the walk found {} text files, and docs/API.md among them: {}",
        texts.len(),
        repo.anchors.contains_key("docs/API.md")
    );
    let findings: Vec<String> = texts
        .iter()
        .flat_map(|(file, text)| check_text(&repo, file, text))
        .collect();
    assert!(
        findings.is_empty(),
        "{} citation(s) a clone cannot follow:\n{}",
        findings.len(),
        findings.join("\n")
    );
}

#[test]
fn the_contract_has_the_sections_the_code_cites_most() {
    let text = std::fs::read_to_string(root().join("docs/API.md")).expect("docs/API.md");
    let anchors = anchors(&text);
    for section in [
        "routes",
        "authentication",
        "errors",
        "error-codes",
        "the-asset-record",
        "validation-rules",
        "path-components",
        "filenames",
        "metadata",
        "tags",
        "upload",
        "list",
        "cursor",
        "update",
        "merge-rules",
        "delete",
        "direct-uploads",
        "complete",
        "content",
        "delivery",
        "signed-urls",
        "transforms",
        "automatic-format",
        "variants",
        "limits",
        "decisions",
    ] {
        assert!(anchors.contains(section), "docs/API.md has no #{section}");
    }
}

// ---------------------------------------------------------------------------------------------
// The checker itself, on small texts. Paths outside the repository are assembled at run time, so
// that this file does not cite them.

fn small_repo() -> Repo {
    let mut repo = Repo::default();
    repo.add("README.md", Some("# imgbt\n## The `imgbt` client\n"));
    repo.add(
        "docs/API.md",
        Some("# API\n## Routes\n```\n## Not a heading\n```\n## Limits\n## Limits\n"),
    );
    repo.add("infra/README.md", Some("# infra\n## Limits\n"));
    repo.add("infra/template.yaml", None);
    repo.add("shared/src/routes.rs", None);
    repo
}

#[test]
fn headings_become_github_anchors() {
    assert_eq!(slug(" The `imgbt` client"), "the-imgbt-client");
    assert_eq!(slug("D1 over REST: facts"), "d1-over-rest-facts");
    let repo = small_repo();
    let api = &repo.anchors["docs/API.md"];
    assert_eq!(
        api.iter().map(String::as_str).collect::<Vec<_>>(),
        ["api", "limits", "limits-1", "routes"],
        "code fences hold no headings; a repeat is numbered"
    );
}

#[test]
fn citations_inside_the_repository_pass() {
    let repo = small_repo();
    let api = md("docs/API");
    let lines = [
        format!("//! The route table of {api}#routes."),
        format!("// See README.md, {api} and {api}#limits-1."),
        format!("// Upstream: https://example.com/x/{}", md("CHANGELOG")),
        "// A key like v/../x stays inside.".to_owned(),
    ];
    let findings = check_text(&repo, "shared/src/routes.rs", &lines.join("\n"));
    assert!(findings.is_empty(), "{findings:?}");
    let readme = md("README");
    let from_infra = format!(
        "[the contract](../{api}#routes), [client](../{readme}#the-imgbt-client), [x](#limits)"
    );
    let findings = check_text(&repo, "infra/README.md", &from_infra);
    assert!(findings.is_empty(), "{findings:?}");
}

#[test]
fn each_citation_a_clone_cannot_follow_is_found_with_its_line() {
    let repo = small_repo();
    let up = "..";
    let cases = [
        // The owner's page beside the repository, from the root and from a directory.
        (
            "Cargo.toml",
            format!("# The routes of {up}/shared/{}.", md("API")),
        ),
        (
            "infra/template.yaml",
            format!("# The routes of {up}/shared/{}.", md("API")),
        ),
        // A bare name no file of the repository answers to.
        (
            "shared/src/routes.rs",
            format!("//! The route table of {}.", md("API")),
        ),
        ("shared/src/routes.rs", format!("// See {}.", md("DESIGN"))),
        // An absolute path on the author's machine.
        (
            "README.md",
            format!("Read {}shared/{} first.", machine_paths()[0], md("API")),
        ),
        // Climbing out, whatever the file.
        (
            "infra/template.yaml",
            format!("# {up}/{up}/elsewhere/notes.txt"),
        ),
        // The original reference.
        ("README.md", format!("From {}.txt.", unshipped_names()[0])),
        // A section the file does not have, cited from code and linked inside a Markdown file.
        (
            "shared/src/routes.rs",
            format!("// {}#nope", md("docs/API")),
        ),
        ("infra/README.md", "See [limits](#limit).".to_owned()),
    ];
    for (file, line) in cases {
        let text = format!("fine\n{line}\nfine\n");
        let findings = check_text(&repo, file, &text);
        assert_eq!(findings.len(), 1, "{file}: {line:?} gave {findings:?}");
        assert!(
            findings[0].starts_with(&format!("{file}:2: ")),
            "names file and line: {}",
            findings[0]
        );
    }
}
