//! The house rules of the core's source (docs/layout.md), checked on the source itself so a
//! change that breaks them fails here, with the files that do: each of the core's top-level
//! modules imports only modules of the layers below its own (`LAYERS`); in `app`, the record's types (`model.rs`) import no
//! sibling, and the transitions (`review/`) never read a view nor hold the `App` handle.
//!
//! Imports are read from `crate::` paths (in `use` lines, groups included, and in code), which
//! is how the core names another module; comments and unit tests are skipped.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

const CORE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/daemon");

/// Every `.rs` file of the core crate (the command's `cli/` and `main.rs` are another crate).
fn core_files() -> Vec<PathBuf> {
    walkdir::WalkDir::new(CORE)
        .into_iter()
        .filter_map(Result::ok)
        .map(|e| e.into_path())
        .filter(|p| p.extension().is_some_and(|e| e == "rs"))
        .filter(|p| !p.starts_with(Path::new(CORE).join("cli")) && !p.ends_with("main.rs"))
        .collect()
}

/// The source without `//` comments (doc comments name modules freely) and without its unit
/// tests (the `#[cfg(test)] mod` at the end of a file), which may build what they need from
/// any module.
fn code_of(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap();
    let text = match text.find("#[cfg(test)]\nmod ") {
        Some(at) => &text[..at],
        None => &text,
    };
    text.lines()
        .map(|l| l.split("//").next().unwrap_or(""))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The paths the code names from the crate's root, groups expanded one level:
/// `crate::a::b`, and `use crate::{a::x, b}` as `a::x` and `b`.
fn crate_paths(code: &str) -> Vec<String> {
    let mut paths = Vec::new();
    let mut rest = code;
    while let Some(at) = rest.find("crate::") {
        rest = &rest[at + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            let end = closing_brace(group);
            paths.extend(split_top_level(&group[..end]));
        } else {
            let end = rest
                .find(|c: char| !(c.is_alphanumeric() || c == '_' || c == ':'))
                .unwrap_or(rest.len());
            paths.push(rest[..end].trim_end_matches(':').to_string());
        }
    }
    paths
}

fn closing_brace(s: &str) -> usize {
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

fn split_top_level(s: &str) -> Vec<String> {
    let (mut parts, mut depth, mut current) = (Vec::new(), 0, String::new());
    for c in s.chars() {
        match c {
            '{' => depth += 1,
            '}' => depth -= 1,
            ',' if depth == 0 => {
                parts.push(std::mem::take(&mut current));
                continue;
            }
            _ => {}
        }
        current.push(c);
    }
    parts.push(current);
    parts
        .into_iter()
        .map(|p| p.split_whitespace().collect::<String>())
        .filter(|p| !p.is_empty())
        .collect()
}

/// The top-level module a core file belongs to (`app` for daemon/app/review/decide.rs).
fn top_module(path: &Path) -> Option<String> {
    let rel = path.strip_prefix(CORE).ok()?;
    let first = rel.components().next()?.as_os_str().to_str()?;
    let name = first.trim_end_matches(".rs");
    (name != "lib").then(|| name.to_string())
}

fn top_level_imports() -> BTreeMap<String, BTreeMap<String, BTreeSet<PathBuf>>> {
    let mut graph: BTreeMap<String, BTreeMap<String, BTreeSet<PathBuf>>> = BTreeMap::new();
    for file in core_files() {
        let Some(from) = top_module(&file) else {
            continue;
        };
        for path in crate_paths(&code_of(&file)) {
            let to = path.split("::").next().unwrap_or("").to_string();
            if !to.is_empty() && to != from {
                let files = graph.entry(from.clone()).or_default();
                files.entry(to).or_default().insert(file.clone());
            }
        }
    }
    graph
}

/// The core's modules from the top down, as docs/layout.md and lib.rs list them: a module
/// imports only modules of the layers below its own (so never one above, none of its own
/// layer, and no circle can form).
const LAYERS: &[&[&str]] = &[
    &["intake"],
    &["app", "evidence"],
    &["cluster"],
    &["chat", "login"],
    &["audit", "auth", "heartbeat", "outbox", "search"],
    &[
        "blobs", "config", "locks", "metrics", "passkeys", "push", "receipts", "store",
    ],
    &["documents"],
    &["events", "policy", "routing", "workspace"],
    &[
        "blocking", "clock", "contract", "host", "index", "media", "private", "render", "startup",
        "watch",
    ],
];

fn layer_of(module: &str) -> Option<usize> {
    LAYERS.iter().position(|layer| layer.contains(&module))
}

#[test]
fn every_core_module_imports_only_the_layers_below_its_own() {
    let mut wrong = Vec::new();
    for module in core_files().iter().filter_map(|f| top_module(f)) {
        if layer_of(&module).is_none() {
            wrong.push(format!("{module} is in no layer of LAYERS"));
        }
    }
    for (from, imports) in top_level_imports() {
        let Some(at) = layer_of(&from) else { continue };
        for (to, files) in imports {
            match layer_of(&to) {
                Some(below) if below > at => {}
                Some(_) => wrong.push(format!("{from} -> {to} does not point down, in {files:?}")),
                None => wrong.push(format!(
                    "{from} -> {to}, a module in no layer, in {files:?}"
                )),
            }
        }
    }
    wrong.sort();
    wrong.dedup();
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[test]
fn the_record_types_import_no_sibling_and_transitions_read_no_view() {
    let app = Path::new(CORE).join("app");
    let model = crate_paths(&code_of(&app.join("model.rs")));
    let siblings: Vec<_> = model.iter().filter(|p| p.starts_with("app")).collect();
    assert!(siblings.is_empty(), "app/model.rs imports {siblings:?}");
    for file in core_files()
        .into_iter()
        .filter(|f| f.starts_with(app.join("review")))
    {
        let views: Vec<_> = crate_paths(&code_of(&file))
            .into_iter()
            .filter(|p| p.starts_with("app::views"))
            .collect();
        assert!(
            views.is_empty(),
            "{} reads views: {views:?}",
            file.display()
        );
    }
}

/// The transitions are methods of their context (`review::Cx`), which lends them only the
/// parts they may use: none of them takes the whole `App`.
#[test]
fn the_transitions_never_hold_the_app() {
    let review = Path::new(CORE).join("app").join("review");
    let holding: Vec<_> = core_files()
        .into_iter()
        .filter(|f| f.starts_with(&review))
        .filter(|f| names_app(&code_of(f)))
        .collect();
    assert!(holding.is_empty(), "these transitions use App: {holding:?}");
}

fn names_app(code: &str) -> bool {
    code.split(|c: char| !(c.is_alphanumeric() || c == '_'))
        .any(|word| word == "App")
}

#[test]
fn paths_are_read_from_use_groups_and_code() {
    let code = "use crate::{app::{App, Served}, audit};\nfn f() { crate::clock::now_ms(); }";
    assert_eq!(
        crate_paths(code),
        ["app::{App,Served}", "audit", "clock::now_ms"]
    );
}

/// The module path of a core file: `["app", "runtime", "load"]` for app/runtime/load.rs,
/// `["app", "runtime"]` for app/runtime/mod.rs.
fn module_of(path: &Path) -> Vec<String> {
    let rel = path.strip_prefix(CORE).unwrap().with_extension("");
    let mut parts: Vec<String> = rel
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    if parts.last().is_some_and(|p| p == "mod" || p == "lib") {
        parts.pop();
    }
    parts
}

/// The paths the code names relative to its own module (`super::x`, `self::x`), made
/// absolute: `super::load::f` in app/runtime/copies_memo.rs is `app::runtime::load::f`.
fn relative_paths(code: &str, module: &[String], is_mod_rs: bool) -> Vec<String> {
    // `self` in mod.rs is the folder's module; in x.rs it is x.
    let here: Vec<String> = module.to_vec();
    let mut paths = Vec::new();
    for (prefix, up) in [("super::", 1usize), ("self::", 0)] {
        let mut rest = code;
        while let Some(at) = rest.find(prefix) {
            let before = rest[..at].chars().last();
            rest = &rest[at + prefix.len()..];
            if before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == ':') {
                continue;
            }
            let mut base = here.clone();
            let _ = is_mod_rs;
            for _ in 0..up {
                base.pop();
            }
            let mut more = rest;
            while let Some(next) = more.strip_prefix("super::") {
                base.pop();
                more = next;
            }
            let names = if let Some(group) = more.strip_prefix('{') {
                split_top_level(&group[..closing_brace(group)])
            } else {
                let end = more
                    .find(|c: char| !(c.is_alphanumeric() || c == '_' || c == ':'))
                    .unwrap_or(more.len());
                vec![more[..end].trim_end_matches(':').to_string()]
            };
            for name in names {
                let mut full = base.clone();
                full.extend(name.split("::").map(str::to_string));
                paths.push(full.join("::"));
            }
        }
    }
    paths
}

/// The core file a path names: the longest prefix of it that is a module of its own file.
fn file_named(path: &str, files: &BTreeMap<Vec<String>, PathBuf>) -> Option<PathBuf> {
    let parts: Vec<String> = path
        .split("::")
        .map(|p| p.trim_start_matches('{').to_string())
        .collect();
    (1..=parts.len())
        .rev()
        .find_map(|n| files.get(&parts[..n].to_vec()).cloned())
}

/// No two files of the core import each other, however long the way round: a circle of
/// files is one module cut in pieces. A file may name items of the modules it lives in (a
/// child uses its parent's types, as `App` in app/mod.rs), and a parent declares its
/// children, so those edges are not part of any circle.
#[test]
fn no_files_of_the_core_import_each_other_in_a_circle() {
    let files: BTreeMap<Vec<String>, PathBuf> = core_files()
        .into_iter()
        .map(|f| (module_of(&f), f))
        .collect();
    let mut graph: BTreeMap<Vec<String>, BTreeSet<Vec<String>>> = BTreeMap::new();
    for (module, file) in &files {
        let code = code_of(file);
        let is_mod_rs = file.ends_with("mod.rs");
        let named = crate_paths(&code)
            .into_iter()
            .chain(relative_paths(&code, module, is_mod_rs));
        for path in named {
            let Some(to) = file_named(&path, &files) else {
                continue;
            };
            let to = module_of(&to);
            let ancestor = module.starts_with(&to);
            let descendant = to.starts_with(module);
            if !ancestor && !descendant {
                graph.entry(module.clone()).or_default().insert(to);
            }
        }
    }
    let mut circles = Vec::new();
    for start in graph.keys() {
        // A depth-first walk back to `start`, each circle reported from its smallest file.
        let mut stack = vec![(start.clone(), vec![start.clone()])];
        let mut seen = BTreeSet::new();
        while let Some((at, way)) = stack.pop() {
            for next in graph.get(&at).into_iter().flatten() {
                if next == start {
                    circles.push(
                        way.iter()
                            .map(|m| m.join("/"))
                            .collect::<Vec<_>>()
                            .join(" -> "),
                    );
                } else if next > start && seen.insert(next.clone()) {
                    let mut longer = way.clone();
                    longer.push(next.clone());
                    stack.push((next.clone(), longer));
                }
            }
        }
    }
    assert!(
        circles.is_empty(),
        "files importing each other:\n{}",
        circles.join("\n")
    );
}
