//! Where `timing-runtime` is in the user's crate: the name its Cargo.toml gives the dependency, which may be
//! renamed (`tr = { package = "timing-runtime", .. }`), inherited from the workspace (`tr.workspace = true`,
//! renamed there), or under a target's table.
//!
//! Read from the manifest with a scan of the few forms Cargo accepts for a dependency's name and package,
//! rather than by a full TOML parser: that parser (and the crates it needs) was a third of the clean build a
//! user of `#[timed]` waited for. The manifest is read once per crate compiled, for all its timed functions.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

const PACKAGE: &str = "timing-runtime";

/// The name the crate being compiled gives `timing-runtime`, with `-` as `_`; `None` when it is not a
/// dependency (the runtime itself, its doctests, or code outside Cargo), where `::timing_runtime` is right.
pub fn runtime_name() -> Option<String> {
    static FOUND: Mutex<Option<(PathBuf, Option<String>)>> = Mutex::new(None);
    let manifest = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR")?).join("Cargo.toml");
    let mut found = FOUND.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    if let Some((path, name)) = found.as_ref() {
        if *path == manifest {
            return name.clone();
        }
    }
    let name = dependency_name(&manifest);
    *found = Some((manifest, name.clone()));
    name
}

fn dependency_name(manifest: &Path) -> Option<String> {
    if std::env::var("CARGO_PKG_NAME").is_ok_and(|name| name == PACKAGE) {
        return None;
    }
    let text = std::fs::read_to_string(manifest).ok()?;
    let dependencies = dependencies(&text, false);
    let (alias, _) = dependencies.iter().find(|(alias, package)| match package {
        Package::Named(package) => package == PACKAGE,
        Package::Workspace => inherited_package(manifest, alias).is_some_and(|package| package == PACKAGE),
    })?;
    Some(alias.replace('-', "_"))
}

/// What a dependency entry says its package is.
#[derive(Debug, PartialEq)]
enum Package {
    Named(String),
    /// `workspace = true`: the workspace's entry of that name says.
    Workspace,
}

/// The package a workspace member's `alias = { workspace = true }` stands for: from the nearest manifest
/// with a `[workspace]`, its own (a workspace's root package) or one above it.
fn inherited_package(manifest: &Path, alias: &str) -> Option<String> {
    let mut dir = manifest.parent();
    while let Some(at) = dir {
        if let Ok(text) = std::fs::read_to_string(at.join("Cargo.toml")) {
            if text.lines().any(|line| line.trim() == "[workspace]" || line.trim().starts_with("[workspace.")) {
                return dependencies(&text, true).into_iter().find_map(|(name, package)| match package {
                    Package::Named(package) if name == alias => Some(package),
                    _ => None,
                });
            }
        }
        dir = at.parent();
    }
    None
}

/// Every dependency entry of a manifest's dependency tables (of `[workspace.dependencies]` alone if
/// `workspace`), as `(name, package)`, in the forms
/// `name = "1"`, `name = { package = "p", .. }`, `name.workspace = true`, `name.package = "p"`, and
/// `[dependencies.name]` (or `[target.'cfg(..)'.dependencies.name]`) followed by `package = "p"`.
fn dependencies(text: &str, workspace: bool) -> Vec<(String, Package)> {
    let mut entries: Vec<(String, Package)> = Vec::new();
    // In a dependency table (`None` outside one), or in one dependency's own table.
    let mut in_table = false;
    let mut own: Option<usize> = None;
    for line in text.lines() {
        let line = strip_comment(line).trim();
        if let Some(header) = line.strip_prefix('[').and_then(|rest| rest.strip_suffix(']')) {
            let keys = split_keys(header.trim_matches(['[', ']']));
            let table = dependency_table(&keys, workspace);
            in_table = table == Some(keys.len());
            own = None;
            if let Some(at) = table.filter(|at| *at + 1 == keys.len()) {
                entries.push((keys[at].clone(), Package::Named(keys[at].clone())));
                own = Some(entries.len() - 1);
            }
            continue;
        }
        let Some((key, value)) = line.split_once('=') else { continue };
        let (key, value) = (split_keys(key.trim()), value.trim());
        match (own, in_table, key.as_slice()) {
            (Some(entry), _, [field]) => apply(&mut entries[entry].1, field, value),
            (_, true, [name]) => {
                let mut package = Package::Named(name.clone());
                if let Some(inline) = value.strip_prefix('{') {
                    for field in inline.trim_end_matches('}').split(',') {
                        if let Some((field, value)) = field.split_once('=') {
                            apply(&mut package, &unquote(field.trim()), value.trim());
                        }
                    }
                }
                entries.push((name.clone(), package));
            }
            (_, true, [name, field]) => match entries.iter_mut().find(|(known, _)| known == name) {
                Some((_, package)) => apply(package, field, value),
                None => {
                    let mut package = Package::Named(name.clone());
                    apply(&mut package, field, value);
                    entries.push((name.clone(), package));
                }
            },
            _ => {}
        }
    }
    entries
}

/// Where a table header's keys name a dependency table: the number of keys up to it
/// (`dependencies`, `target.'cfg(unix)'.dev-dependencies`, `workspace.dependencies`).
fn dependency_table(keys: &[String], workspace: bool) -> Option<usize> {
    let kinds = ["dependencies", "dev-dependencies", "build-dependencies"];
    match keys {
        [first, second, ..] if workspace => (first == "workspace" && second == "dependencies").then_some(2),
        _ if workspace => None,
        [first, ..] if kinds.contains(&first.as_str()) => Some(1),
        [target, _, kind, ..] if target == "target" && kinds.contains(&kind.as_str()) => Some(3),
        _ => None,
    }
}

/// Takes a dependency's `field = value` into what it says of the package.
fn apply(package: &mut Package, field: &str, value: &str) {
    match field {
        "package" => *package = Package::Named(unquote(value)),
        "workspace" if value == "true" => *package = Package::Workspace,
        _ => {}
    }
}

/// A dotted key split into its keys, quotes taken off: `target.'cfg(unix)'.dependencies`.
fn split_keys(key: &str) -> Vec<String> {
    let mut keys = Vec::new();
    let mut current = String::new();
    let mut quote: Option<char> = None;
    for character in key.chars() {
        match (quote, character) {
            (Some(open), _) if character == open => quote = None,
            (Some(_), _) => current.push(character),
            (None, '"' | '\'') => quote = Some(character),
            (None, '.') => keys.push(std::mem::take(&mut current).trim().to_owned()),
            (None, _) => current.push(character),
        }
    }
    keys.push(current.trim().to_owned());
    keys
}

fn unquote(value: &str) -> String {
    value.trim().trim_matches(['"', '\'']).to_owned()
}

/// The line without a comment (a `#` outside quotes).
fn strip_comment(line: &str) -> &str {
    let mut quote: Option<char> = None;
    for (at, character) in line.char_indices() {
        match (quote, character) {
            (Some(open), _) if character == open => quote = None,
            (None, '"' | '\'') => quote = Some(character),
            (None, '#') => return &line[..at],
            _ => {}
        }
    }
    line
}

#[cfg(test)]
mod tests {
    use super::{Package, dependencies};

    fn named(name: &str, package: &str) -> (String, Package) {
        (name.to_owned(), Package::Named(package.to_owned()))
    }

    #[test]
    fn every_form_of_a_dependency_gives_its_name_and_package() {
        let manifest = r#"
[package]
name = "user" # not a dependency
version = "0.1.0"

[dependencies]
serde = "1"
tr = { package = "timing-runtime", path = "../timing-runtime", default-features = false } # renamed
"quoted-name" = { version = "1", package = 'timing-runtime' }
inherited = { workspace = true }
dotted.workspace = true
other.package = "timing-runtime"

[dependencies.tabled]
package = "timing-runtime"
version = "0.1"

[target.'cfg(unix)'.dev-dependencies]
unix-only = { package = "timing-runtime", version = "0.1" }

[features]
timing = ["tr/timing"]
"#;
        let found = dependencies(manifest, false);
        assert_eq!(
            found,
            [
                named("serde", "serde"),
                named("tr", "timing-runtime"),
                named("quoted-name", "timing-runtime"),
                ("inherited".to_owned(), Package::Workspace),
                ("dotted".to_owned(), Package::Workspace),
                named("other", "timing-runtime"),
                named("tabled", "timing-runtime"),
                named("unix-only", "timing-runtime"),
            ]
        );
        let workspace = "[workspace]\nmembers = [\"a\"]\n[workspace.dependencies]\ntiming = { package = \"timing-runtime\", path = \"x\" }\n";
        assert_eq!(dependencies(workspace, true), [named("timing", "timing-runtime")]);
        assert_eq!(dependencies(manifest, true), []);
    }
}
