//! The runtime's source files import in one direction: each folder only from the folders below it
//! (`model` < `store` < `record` < `report` < `export` < `lib.rs`), and no files import each other in a
//! circle. Read from the source, so that a new import that breaks the layering fails here, not in review.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The folders from the bottom layer up; files at the top of `src/` sit above all of them.
const LAYERS: [&str; 5] = ["model", "store", "record", "report", "export"];

/// Each source file's module path (`record::hot`, `` for the crate root) and its code without comments
/// and without its unit tests, which may reach anything.
fn sources() -> BTreeMap<String, String> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        for entry in std::fs::read_dir(dir).expect("src is readable").flatten() {
            let path = entry.path();
            if path.is_dir() {
                walk(&path, out);
            } else if path.extension().is_some_and(|extension| extension == "rs") {
                out.push(path);
            }
        }
    }
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    walk(&src, &mut files);
    files
        .into_iter()
        .map(|path| {
            let relative = path.strip_prefix(&src).expect("under src").with_extension("");
            let mut parts: Vec<String> =
                relative.components().map(|part| part.as_os_str().to_string_lossy().into_owned()).collect();
            if parts.last().is_some_and(|last| last == "mod" || last == "lib") {
                parts.pop();
            }
            let text = std::fs::read_to_string(&path).expect("source is readable");
            let code = text.split("#[cfg(test)]\nmod tests").next().unwrap_or_default();
            let code: String =
                code.lines().map(|line| line.split("//").next().unwrap_or_default()).collect::<Vec<_>>().join("\n");
            (parts.join("::"), code)
        })
        .collect()
}

/// The paths a file names, each from the module its prefix stands for (`crate::a::b`, `super::c`, each
/// member of `crate::a::{b, c::d}`, and in the crate root `a::b`), as full module paths.
fn named_paths(code: &str, prefixes: &[(String, Vec<String>)]) -> Vec<Vec<String>> {
    let mut paths = Vec::new();
    for (prefix, base) in prefixes {
        let mut rest = code;
        while let Some(at) = rest.find(prefix) {
            let after = &rest[at + prefix.len()..];
            let boundary =
                rest[..at].chars().next_back().is_none_or(|c| !(c.is_alphanumeric() || c == '_' || c == ':'));
            rest = after;
            if !boundary {
                continue;
            }
            let head: String = after.chars().take_while(|c| c.is_alphanumeric() || *c == '_' || *c == ':').collect();
            let head: Vec<String> = head.split("::").filter(|part| !part.is_empty()).map(str::to_owned).collect();
            let tail = &after[head.iter().map(|part| part.len() + 2).sum::<usize>().min(after.len())..];
            if let (Some(group), true) = (tail.strip_prefix('{'), after.contains('{')) {
                let group = &group[..group.find('}').unwrap_or(group.len())];
                for member in group.split(',') {
                    let mut path = base.clone();
                    path.extend(head.iter().cloned());
                    path.extend(member.trim().split("::").map(|part| part.trim().to_owned()));
                    paths.push(path);
                }
            } else {
                paths.push(base.iter().cloned().chain(head).collect());
            }
        }
    }
    paths
}

/// The file a path lands in: the longest module prefix that is a file; the crate root otherwise.
fn resolve(modules: &BTreeSet<String>, path: &[String]) -> String {
    (1..=path.len())
        .rev()
        .map(|len| path[..len].join("::"))
        .find(|candidate| modules.contains(candidate))
        .unwrap_or_default()
}

/// The layer of a module: its folder's place in `LAYERS`, above them all for the files beside `lib.rs`.
fn layer(module: &str) -> usize {
    let folder = module.split("::").next().unwrap_or_default();
    LAYERS.iter().position(|layer| *layer == folder).unwrap_or(LAYERS.len())
}

fn imports() -> BTreeMap<String, BTreeSet<String>> {
    let sources = sources();
    let modules: BTreeSet<String> = sources.keys().cloned().collect();
    sources
        .iter()
        .map(|(module, code)| {
            let parent: Vec<String> = module.split("::").map(str::to_owned).collect();
            let mut prefixes =
                vec![("crate::".to_owned(), Vec::new()), ("super::".to_owned(), parent[..parent.len() - 1].to_vec())];
            if module.is_empty() {
                prefixes.extend(LAYERS.iter().map(|layer| (format!("{layer}::"), vec![(*layer).to_owned()])));
            }
            let targets = named_paths(code, &prefixes)
                .into_iter()
                .map(|path| resolve(&modules, &path))
                .filter(|target| target != module)
                .collect();
            (module.clone(), targets)
        })
        .collect()
}

#[test]
fn no_folder_imports_from_a_folder_above_it() {
    let mut violations = Vec::new();
    for (module, targets) in imports() {
        for target in targets {
            if layer(&target) > layer(&module) {
                violations.push(format!("{module} -> {target}"));
            }
        }
    }
    assert!(violations.is_empty(), "imports against the layering: {violations:#?}");
}

#[test]
fn no_files_import_each_other_in_a_circle() {
    let graph = imports();
    // Depth-first search, keeping the path: a module met again on the path closes a circle.
    fn visit<'a>(
        module: &'a str,
        graph: &'a BTreeMap<String, BTreeSet<String>>,
        path: &mut Vec<&'a str>,
        done: &mut BTreeSet<&'a str>,
    ) -> Option<String> {
        if let Some(start) = path.iter().position(|on_path| *on_path == module) {
            return Some(format!("{} -> {module}", path[start..].join(" -> ")));
        }
        if !done.insert(module) {
            return None;
        }
        path.push(module);
        let found = graph.get(module).into_iter().flatten().find_map(|next| visit(next, graph, path, done));
        path.pop();
        found
    }
    let mut done = BTreeSet::new();
    for module in graph.keys() {
        let mut path = Vec::new();
        if let Some(circle) = visit(module, &graph, &mut path, &mut done) {
            panic!("files import each other in a circle: {circle}");
        }
    }
}

#[test]
fn the_reader_sees_the_imports_it_checks() {
    // The checks above pass trivially if paths are not found: a few known imports must be seen.
    let graph = imports();
    for (from, to) in [("record::hot", "record::charge"), ("export::text", "export::format"), ("", "report::summary")] {
        assert!(graph.get(from).is_some_and(|targets| targets.contains(to)), "{from} -> {to} not seen: {graph:#?}");
    }
}
