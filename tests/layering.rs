//! The code's shape, checked: data flows one way (design.md, "Data flow"; style.md, "The
//! shape v2 grows into"). Reads every `crate::…` path in `src/` (outside comments and
//! string literals), maps each file to its top-level module, and fails on
//!
//! - an arrow against the flow: `server` ▸ `graph`/`poller`; `reports` ▸
//!   `graph`/`server`/`poller`/`snapshot`; `graph` ▸ `reports`/`snapshot`/`server`;
//!   `config` ▸ `graph`; `simulate` ▸ anything outside `simulate`; anything but
//!   `main.rs` ▸ `simulate`;
//! - any circle among the top-level modules.
//!
//! The server's parts (`scrape_cache`, `exposition`, `web_config`, `landing`) count as
//! `server`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The layer a top-level module belongs to, for the arrow rules.
fn layer(module: &str) -> &str {
    match module {
        "scrape_cache" | "exposition" | "web_config" | "landing" => "server",
        m => m,
    }
}

/// Arrows against the flow: (from layer, to layer). `simulate` is handled apart.
const FORBIDDEN: &[(&str, &str)] = &[
    ("server", "graph"),
    ("server", "poller"),
    ("reports", "graph"),
    ("reports", "server"),
    ("reports", "poller"),
    ("reports", "snapshot"),
    ("graph", "reports"),
    ("graph", "snapshot"),
    ("graph", "server"),
    ("config", "graph"),
];

/// A source file's top-level module: `src/graph/client.rs` ▸ `graph`, `src/app.rs` ▸
/// `app`, `src/main.rs` ▸ `main`.
fn module_of(relative: &Path) -> String {
    let first = relative.components().next().expect("a path below src/");
    let name = first.as_os_str().to_string_lossy();
    name.strip_suffix(".rs").unwrap_or(&name).to_owned()
}

/// The text of `source` without comments and string literals, so a doc link or a
/// message that mentions `crate::x` is not an import.
fn code_only(source: &str) -> String {
    let mut out = String::with_capacity(source.len());
    let bytes = source.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'/' if bytes.get(i + 1) == Some(&b'/') => {
                while i < bytes.len() && bytes[i] != b'\n' {
                    i += 1;
                }
            }
            b'/' if bytes.get(i + 1) == Some(&b'*') => {
                i += 2;
                while i + 1 < bytes.len() && !(bytes[i] == b'*' && bytes[i + 1] == b'/') {
                    i += 1;
                }
                i += 2;
            }
            b'r' if matches!(bytes.get(i + 1), Some(b'"' | b'#'))
                && !bytes[..i]
                    .last()
                    .is_some_and(|c| c.is_ascii_alphanumeric() || *c == b'_') =>
            {
                // r"…" or r#"…"#: skip to the closing quote and as many hashes.
                let mut j = i + 1;
                let mut hashes = 0;
                while bytes.get(j) == Some(&b'#') {
                    hashes += 1;
                    j += 1;
                }
                if bytes.get(j) != Some(&b'"') {
                    out.push('r');
                    i += 1;
                    continue;
                }
                j += 1;
                loop {
                    if j >= bytes.len() {
                        break;
                    }
                    if bytes[j] == b'"'
                        && bytes[j + 1..]
                            .iter()
                            .take(hashes)
                            .filter(|b| **b == b'#')
                            .count()
                            == hashes
                    {
                        j += 1 + hashes;
                        break;
                    }
                    j += 1;
                }
                i = j;
                out.push_str("\"\"");
            }
            b'"' => {
                i += 1;
                while i < bytes.len() && bytes[i] != b'"' {
                    if bytes[i] == b'\\' {
                        i += 1;
                    }
                    i += 1;
                }
                i += 1;
                out.push_str("\"\"");
            }
            b'\'' if bytes.get(i + 2) == Some(&b'\'') => {
                // A char literal such as '"' (lifetimes have no closing quote here).
                i += 3;
            }
            b'\'' if bytes.get(i + 1) == Some(&b'\\') => {
                while i + 1 < bytes.len() && bytes[i + 1] != b'\'' {
                    i += 1;
                }
                i += 2;
            }
            c => {
                out.push(c as char);
                i += 1;
            }
        }
    }
    out
}

/// The top-level modules `code` names through `prefix::` (`crate` in the library,
/// the library's name in `main.rs`), including grouped imports `prefix::{a, b::c}`.
fn modules_used(code: &str, prefix: &str) -> BTreeSet<String> {
    let mut used = BTreeSet::new();
    let pattern = format!("{prefix}::");
    let mut rest = code;
    while let Some(at) = rest.find(&pattern) {
        let before = rest[..at].chars().last();
        rest = &rest[at + pattern.len()..];
        if before.is_some_and(|c| c.is_alphanumeric() || c == '_') {
            continue; // e.g. `my_crate::` when looking for `crate::`
        }
        if let Some(group) = rest.strip_prefix('{') {
            let end = matching_brace(group);
            for item in split_top_level(&group[..end]) {
                if let Some(name) = leading_ident(item.trim()) {
                    used.insert(name);
                }
            }
        } else if let Some(name) = leading_ident(rest) {
            used.insert(name);
        }
    }
    used
}

fn matching_brace(s: &str) -> usize {
    let mut depth = 0;
    for (i, c) in s.char_indices() {
        match c {
            '{' => depth += 1,
            '}' if depth == 0 => return i,
            '}' => depth -= 1,
            _ => {}
        }
    }
    s.len()
}

fn split_top_level(s: &str) -> Vec<&str> {
    let (mut parts, mut depth, mut start) = (Vec::new(), 0, 0);
    for (i, c) in s.char_indices() {
        match c {
            '{' => depth += 1,
            '}' => depth -= 1,
            ',' if depth == 0 => {
                parts.push(&s[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&s[start..]);
    parts
}

fn leading_ident(s: &str) -> Option<String> {
    let name: String = s
        .chars()
        .take_while(|c| c.is_alphanumeric() || *c == '_')
        .collect();
    (!name.is_empty() && name != "self").then_some(name)
}

/// Every `.rs` file below `dir`.
fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("src/ is readable") {
        let path = entry.expect("a directory entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// Module ▸ the top-level modules it uses, with one file that uses each.
type Graph = BTreeMap<String, BTreeMap<String, String>>;

fn dependency_graph(files: &[(String, String)]) -> Graph {
    let mut graph = Graph::new();
    for (relative, source) in files {
        let module = module_of(Path::new(relative));
        let prefix = if module == "main" {
            "entra_mfa_exporter"
        } else {
            "crate"
        };
        let uses = graph.entry(module.clone()).or_default();
        for used in modules_used(&code_only(source), prefix) {
            if used != module {
                uses.entry(used).or_insert_with(|| relative.clone());
            }
        }
    }
    graph
}

/// Every arrow against the flow, as readable lines.
fn violations(graph: &Graph) -> Vec<String> {
    let mut found = Vec::new();
    for (from, uses) in graph {
        for (to, file) in uses {
            let (lf, lt) = (layer(from), layer(to));
            let wrong = FORBIDDEN.contains(&(lf, lt))
                || (from == "simulate" && to != "simulate")
                || (to == "simulate" && from != "main" && from != "lib");
            if wrong {
                found.push(format!("{file}: {from} ▸ {to} is against the flow"));
            }
        }
    }
    found
}

/// A circle among the modules, if any, as `a ▸ b ▸ … ▸ a`.
fn find_cycle(graph: &Graph) -> Option<Vec<String>> {
    fn visit(
        node: &str,
        graph: &Graph,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(at) = path.iter().position(|n| n == node) {
            let mut cycle = path[at..].to_vec();
            cycle.push(node.to_owned());
            return Some(cycle);
        }
        if done.contains(node) {
            return None;
        }
        path.push(node.to_owned());
        for next in graph.get(node).into_iter().flat_map(|u| u.keys()) {
            // `lib` declares every module; `main` uses the library: neither is an arrow
            // of the flow.
            if next == "lib" {
                continue;
            }
            if let Some(c) = visit(next, graph, path, done) {
                return Some(c);
            }
        }
        path.pop();
        done.insert(node.to_owned());
        None
    }
    let mut done = BTreeSet::new();
    graph
        .keys()
        .filter(|m| *m != "lib")
        .find_map(|m| visit(m, graph, &mut Vec::new(), &mut done))
}

fn source_tree() -> Vec<(String, String)> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut paths = Vec::new();
    rust_files(&src, &mut paths);
    paths.sort();
    paths
        .into_iter()
        .map(|p| {
            let relative = p.strip_prefix(&src).unwrap().to_string_lossy().into_owned();
            let source = std::fs::read_to_string(&p).expect("a readable source file");
            (relative, source)
        })
        .collect()
}

#[test]
fn src_flows_one_way() {
    let files = source_tree();
    assert!(files.len() > 30, "found only {} files in src/", files.len());
    let graph = dependency_graph(&files);
    let wrong = violations(&graph);
    assert!(
        wrong.is_empty(),
        "imports against the flow:\n{}",
        wrong.join("\n")
    );
    if let Some(cycle) = find_cycle(&graph) {
        panic!("modules in a circle: {}", cycle.join(" ▸ "));
    }
}

#[test]
fn a_planted_wrong_way_import_fails() {
    let mut files = source_tree();
    let before = violations(&dependency_graph(&files));
    let server = files
        .iter_mut()
        .find(|(p, _)| p == "server.rs" || p == "server/mod.rs")
        .expect("the server module");
    server
        .1
        .push_str("\n#[allow(unused)]\nuse crate::{poller::Publisher, graph::GraphClient};\n");
    let wrong: Vec<_> = violations(&dependency_graph(&files))
        .into_iter()
        .filter(|w| !before.contains(w))
        .collect();
    assert_eq!(wrong.len(), 2, "both planted arrows are found: {wrong:#?}");
    assert!(
        wrong
            .iter()
            .any(|w| w.ends_with("server ▸ graph is against the flow"))
    );
}

#[test]
fn a_planted_circle_fails() {
    let file = |path: &str, code: &str| (path.to_owned(), code.to_owned());
    let mut files = vec![
        file("main.rs", "use entra_mfa_exporter::poller::spawn_all;"),
        file("poller.rs", "use crate::snapshot::Store;"),
        file("snapshot.rs", "use crate::reports::ReportData;"),
        file("reports/mod.rs", "use crate::odata::Fold;"),
    ];
    assert_eq!(find_cycle(&dependency_graph(&files)), None);
    files.push(file(
        "reports/row.rs",
        "pub fn f(_: crate::poller::Publisher) {}",
    ));
    let cycle = find_cycle(&dependency_graph(&files)).expect("a circle");
    assert_eq!(cycle, ["poller", "snapshot", "reports", "poller"]);
}

#[test]
fn the_reader_sees_imports_not_comments_or_strings() {
    let code = code_only(
        "use crate::a::B; // crate::c\n/* crate::d */ let s = \"crate::e\"; let r = r#\"crate::f\"#;\n\
         use crate::{g::H, i::{J, K}, self as x};\nlet c = '\"'; crate::l::m();\nmy_crate::n::o();",
    );
    let used: Vec<_> = modules_used(&code, "crate").into_iter().collect();
    assert_eq!(used, ["a", "g", "i", "l"]);
}
