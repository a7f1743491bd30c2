//! The macro crate's files import one way: no two of its modules import each other, directly or through
//! others. Read from the source, so that a new import that closes a circle fails here, not in review.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// Each module of `src/` (by file name; `lib` for the root) and the modules it names as `crate::module`, in
/// its code without comments and without its unit tests.
fn imports() -> BTreeMap<String, BTreeSet<String>> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut modules = BTreeMap::new();
    for entry in std::fs::read_dir(&src).expect("src is readable").flatten() {
        let path = entry.path();
        if path.extension().is_none_or(|extension| extension != "rs") {
            continue;
        }
        let name = path.file_stem().expect("a file name").to_string_lossy().into_owned();
        let text = std::fs::read_to_string(&path).expect("source is readable");
        let code = text.split("#[cfg(test)]").next().unwrap_or_default();
        let mut named = BTreeSet::new();
        for line in code.lines().map(|line| line.split("//").next().unwrap_or_default()) {
            let mut rest = line;
            while let Some(at) = rest.find("crate::") {
                rest = &rest[at + "crate::".len()..];
                let module: String = rest.chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect();
                if !module.is_empty() && module != name {
                    named.insert(module);
                }
            }
            // `use crate::{a, b::c}`.
            if let Some(group) = line.split("crate::{").nth(1) {
                for member in group.split(',') {
                    let module: String =
                        member.trim().chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect();
                    if !module.is_empty() && module != name {
                        named.insert(module);
                    }
                }
            }
        }
        modules.insert(name, named);
    }
    modules
}

/// A circle of imports among `modules`, if there is one.
fn circle(modules: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    fn visit(
        module: &str,
        modules: &BTreeMap<String, BTreeSet<String>>,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(at) = path.iter().position(|seen| seen == module) {
            let mut found = path[at..].to_vec();
            found.push(module.to_owned());
            return Some(found);
        }
        if done.contains(module) {
            return None;
        }
        path.push(module.to_owned());
        for next in modules.get(module).into_iter().flatten() {
            if let Some(found) = visit(next, modules, path, done) {
                return Some(found);
            }
        }
        path.pop();
        done.insert(module.to_owned());
        None
    }
    let mut done = BTreeSet::new();
    modules.keys().find_map(|module| visit(module, modules, &mut Vec::new(), &mut done))
}

#[test]
fn no_files_import_each_other_in_a_circle() {
    let modules = imports();
    assert!(modules.len() >= 6, "{modules:?}");
    assert_eq!(modules.get("function").map(|named| named.contains("impl_block")), Some(false), "{modules:?}");
    assert_eq!(circle(&modules), None, "{modules:?}");
    // The check sees a circle where there is one.
    let mut broken = modules.clone();
    broken.entry("function".to_owned()).or_default().insert("expand".to_owned());
    assert!(circle(&broken).is_some());
}
