//! The shape of the code, checked: no import circles between rooms at any level of `src/`,
//! the ground floor (`model`) imports nothing of rotor outside itself, the library never
//! imports the emulator, the emulator never imports rotor, and no file outside tests is
//! much over 600 lines.
//!
//! Modules are read from the `use` lines and inline paths (`crate::…`, `super::…`) of each
//! file, with test code (`#[cfg(test)]` onwards, `tests.rs` files) left out. An import is
//! followed through a folder's `pub use` re-exports to the file that defines the item, then
//! lifted to the two sibling rooms it connects (the children of the modules' nearest common
//! ancestor): `github::client -> github::error` is an edge between `client` and `error`
//! inside `github`; `plan::build -> ledger::journal` one between `plan` and `ledger`.
//! A parent using its child, or a child its parent's own items, is plumbing, not an edge.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

type Module = Vec<String>;

struct Source {
    /// The file's text without comments and without its test code.
    code: String,
}

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("read {}: {e}", dir.display()))
        .map(|e| e.expect("dir entry").path())
        .collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|e| e == "rs") {
            out.push(p);
        }
    }
}

/// Drops `//` comments (doc comments too) and everything from the first `#[cfg(test)]`.
fn strip(text: &str) -> String {
    let text = match text.find("#[cfg(test)]") {
        Some(i) => &text[..i],
        None => text,
    };
    text.lines()
        .map(|l| match l.find("//") {
            // A `//` inside a string literal ("http://…") is rare in use lines; cutting the
            // rest of such a line can only lose an edge, never invent one.
            Some(i) => &l[..i],
            None => l,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// The module of a file under `src/`: `github/client.rs` -> `github::client`,
/// `github/mod.rs` -> `github`, `lib.rs` -> the crate root.
fn module_of(rel: &Path) -> Module {
    let mut parts: Vec<String> = rel
        .iter()
        .map(|s| s.to_string_lossy().into_owned())
        .collect();
    let file = parts.pop().expect("a file name");
    let stem = file.trim_end_matches(".rs").to_string();
    if stem != "mod" && stem != "lib" {
        parts.push(stem);
    }
    parts
}

fn load(dir: &Path) -> BTreeMap<Module, Source> {
    let mut files = Vec::new();
    rust_files(dir, &mut files);
    let mut out = BTreeMap::new();
    for f in files {
        let rel = f.strip_prefix(dir).expect("under src").to_path_buf();
        if rel.starts_with("bin") || rel.file_name().is_some_and(|n| n == "tests.rs") {
            continue;
        }
        let text = std::fs::read_to_string(&f).expect("readable source");
        let module = module_of(&rel);
        out.insert(module, Source { code: strip(&text) });
    }
    out
}

/// Every path the code names: `use` trees expanded (`use crate::a::{b, c::d}` gives
/// `crate::a::b` and `crate::a::c::d`) and inline `crate::…` / `super::…` paths.
fn paths_in(code: &str) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    // `use` statements (a line that starts one), possibly spanning lines, up to their `;`.
    let mut offset = 0;
    for line in code.split_inclusive('\n') {
        let t = line.trim_start();
        let t = ["pub(crate) ", "pub(super) ", "pub "]
            .iter()
            .find_map(|p| t.strip_prefix(p))
            .unwrap_or(t);
        if let Some(after) = t.strip_prefix("use ") {
            let at = offset + (line.len() - after.len());
            let rest = &code[at..];
            let end = rest.find(';').unwrap_or(rest.len());
            expand(&[], rest[..end].trim(), &mut out);
        }
        offset += line.len();
    }
    // Inline paths anywhere.
    for start in ["crate::", "super::"] {
        let mut rest = code;
        while let Some(i) = rest.find(start) {
            let before = rest[..i].chars().last();
            let tail = &rest[i..];
            let len = tail
                .find(|c: char| !(c.is_alphanumeric() || c == '_' || c == ':'))
                .unwrap_or(tail.len());
            if !before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == ':') {
                let segs: Vec<String> = tail[..len]
                    .split("::")
                    .filter(|s| !s.is_empty())
                    .map(String::from)
                    .collect();
                out.push(segs);
            }
            rest = &tail[len.max(1)..];
        }
    }
    out
}

/// Expands one use tree (`a::{b, c::{d, e}}`) below `prefix`.
fn expand(prefix: &[String], tree: &str, out: &mut Vec<Vec<String>>) {
    let tree = tree.trim();
    if tree.is_empty() {
        return;
    }
    if let Some(open) = tree.find('{') {
        let head: Vec<String> = tree[..open]
            .split("::")
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(String::from)
            .collect();
        let close = tree.rfind('}').filter(|c| *c > open).unwrap_or(tree.len());
        let inner = &tree[open + 1..close];
        let mut base = prefix.to_vec();
        base.extend(head);
        for part in split_top(inner) {
            expand(&base, part, out);
        }
        return;
    }
    let mut p = prefix.to_vec();
    let first = tree.split(" as ").next().unwrap_or(tree);
    p.extend(
        first
            .split("::")
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(String::from),
    );
    out.push(p);
}

/// Splits `a, b::{c, d}, e` at the commas outside braces.
fn split_top(s: &str) -> Vec<&str> {
    let (mut depth, mut start, mut out) = (0, 0, Vec::new());
    for (i, c) in s.char_indices() {
        match c {
            '{' => depth += 1,
            '}' => depth -= 1,
            ',' if depth == 0 => {
                out.push(&s[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push(&s[start..]);
    out
}

/// A path as absolute segments from the crate root, or `None` for another crate's.
fn absolute(from: &Module, path: &[String]) -> Option<Vec<String>> {
    let first = path.first()?;
    match first.as_str() {
        "crate" => Some(path[1..].to_vec()),
        "super" | "self" => {
            // `a/b.rs` is module `a::b` and `a/mod.rs` module `a`: in both, `super` is the
            // module's parent and `self` the module.
            let mut base = from.clone();
            let mut rest = path;
            if first == "self" {
                rest = &path[1..];
            }
            while rest.first().is_some_and(|s| s == "super") {
                base.pop()?;
                rest = &rest[1..];
            }
            let mut out = base;
            out.extend(rest.iter().cloned());
            Some(out)
        }
        _ => None,
    }
}

struct Crate {
    files: BTreeMap<Module, Source>,
    /// Per folder: item name -> the module it is re-exported from.
    reexports: BTreeMap<Module, BTreeMap<String, Vec<String>>>,
    /// Per folder: modules re-exported with `*`.
    globs: BTreeMap<Module, Vec<Vec<String>>>,
}

impl Crate {
    fn new(files: BTreeMap<Module, Source>) -> Crate {
        let mut reexports: BTreeMap<Module, BTreeMap<String, Vec<String>>> = BTreeMap::new();
        let mut globs: BTreeMap<Module, Vec<Vec<String>>> = BTreeMap::new();
        for (m, src) in &files {
            let mut rest = src.code.as_str();
            while let Some(i) = rest.find("pub use ") {
                let after = &rest[i + 8..];
                let end = after.find(';').unwrap_or(after.len());
                let mut paths = Vec::new();
                expand(&[], after[..end].trim(), &mut paths);
                // A `pub use x as y;` names y: keep the alias.
                let alias = after[..end]
                    .rsplit_once(" as ")
                    .filter(|_| !after[..end].contains('{'))
                    .map(|(_, a)| a.trim().to_string());
                for p in paths {
                    let rel: Vec<String> = if matches!(p[0].as_str(), "crate" | "super" | "self") {
                        match absolute(m, &p) {
                            Some(a) => a,
                            None => continue,
                        }
                    } else {
                        // Relative to this folder (`pub use client::Client`).
                        let mut base = m.clone();
                        base.extend(p.iter().cloned());
                        base
                    };
                    let last = p.last().cloned().unwrap_or_default();
                    if last == "*" {
                        globs
                            .entry(m.clone())
                            .or_default()
                            .push(rel[..rel.len() - 1].to_vec());
                    } else {
                        let name = alias.clone().unwrap_or(last);
                        reexports.entry(m.clone()).or_default().insert(name, rel);
                    }
                }
                rest = &after[end..];
            }
        }
        Crate {
            files,
            reexports,
            globs,
        }
    }

    fn defines(&self, module: &Module, item: &str) -> bool {
        self.files.get(module).is_some_and(|s| {
            [
                "struct", "enum", "fn", "type", "const", "trait", "static", "mod",
            ]
            .iter()
            .any(|kw| {
                s.code.contains(&format!("pub {kw} {item}"))
                    || s.code.contains(&format!("pub(crate) {kw} {item}"))
                    || s.code.contains(&format!("pub async {kw} {item}"))
            })
        })
    }

    /// The file module a path leads to, followed through re-exports.
    fn resolve(&self, path: &[String], depth: usize) -> Option<Module> {
        // The longest prefix that is a module.
        let mut k = path.len();
        while k > 0 && !self.files.contains_key(&path[..k]) {
            k -= 1;
        }
        let module = path[..k].to_vec();
        if !self.files.contains_key(&module) {
            return None;
        }
        let Some(item) = path.get(k) else {
            return Some(module);
        };
        if depth > 8 || self.defines(&module, item) {
            return Some(module);
        }
        if let Some(target) = self.reexports.get(&module).and_then(|r| r.get(item)) {
            let mut p = target.clone();
            p.extend(path[k + 1..].iter().cloned());
            if let Some(m) = self.resolve(&p, depth + 1) {
                return Some(m);
            }
        }
        for g in self.globs.get(&module).into_iter().flatten() {
            let mut p = g.clone();
            p.extend(path[k..].iter().cloned());
            if let Some(m) = self.resolve(&p, depth + 1) {
                if m != *g || self.defines(&m, item) {
                    return Some(m);
                }
            }
        }
        Some(module)
    }

    /// Every import between two file modules: (from, to).
    fn imports(&self) -> BTreeSet<(Module, Module)> {
        let mut out = BTreeSet::new();
        for (m, src) in &self.files {
            for p in paths_in(&src.code) {
                let Some(abs) = absolute(m, &p) else {
                    continue;
                };
                if let Some(to) = self.resolve(&abs, 0) {
                    if &to != m {
                        out.insert((m.clone(), to));
                    }
                }
            }
        }
        out
    }
}

/// Lifts an import to the sibling rooms it connects, or `None` for parent/child plumbing.
fn lift(from: &Module, to: &Module) -> Option<(Module, String, String)> {
    let common = from.iter().zip(to).take_while(|(a, b)| a == b).count();
    if common == from.len() || common == to.len() {
        return None;
    }
    Some((
        from[..common].to_vec(),
        from[common].clone(),
        to[common].clone(),
    ))
}

fn name(m: &[String]) -> String {
    if m.is_empty() {
        "crate".to_string()
    } else {
        m.join("::")
    }
}

/// Every circle among sibling rooms, as `parent: a -> b -> a`.
fn circles(imports: &BTreeSet<(Module, Module)>) -> Vec<String> {
    let mut graphs: BTreeMap<Module, BTreeMap<String, BTreeSet<String>>> = BTreeMap::new();
    for (from, to) in imports {
        if let Some((parent, a, b)) = lift(from, to) {
            graphs
                .entry(parent)
                .or_default()
                .entry(a)
                .or_default()
                .insert(b);
        }
    }
    let mut found = Vec::new();
    for (parent, g) in &graphs {
        // Depth-first search for a back edge; report each circle once by its smallest node.
        let nodes: BTreeSet<&String> = g.keys().chain(g.values().flatten()).collect();
        let mut seen = BTreeSet::new();
        for start in &nodes {
            let mut stack = vec![((*start).clone(), vec![(*start).clone()])];
            while let Some((node, path)) = stack.pop() {
                for next in g.get(&node).into_iter().flatten() {
                    if next == *start {
                        let mut cycle = path.clone();
                        let min = cycle.iter().min().cloned().unwrap_or_default();
                        let pos = cycle.iter().position(|c| *c == min).unwrap_or(0);
                        cycle.rotate_left(pos);
                        if seen.insert(cycle.clone()) {
                            found.push(format!(
                                "{}: {} -> {}",
                                name(parent),
                                cycle.join(" -> "),
                                cycle[0]
                            ));
                        }
                    } else if !path.contains(next) && path.len() < 12 {
                        let mut p = path.clone();
                        p.push(next.clone());
                        stack.push((next.clone(), p));
                    }
                }
            }
        }
    }
    found
}

#[test]
fn there_is_no_import_circle_between_rooms_anywhere_in_src() {
    let krate = Crate::new(load(&root().join("src")));
    let imports = krate.imports();
    assert!(
        imports.len() > 100,
        "the reader finds the imports ({} found)",
        imports.len()
    );
    let found = circles(&imports);
    assert!(found.is_empty(), "import circles:\n{}", found.join("\n"));
}

#[test]
fn the_circle_check_finds_a_circle_when_there_is_one() {
    let file = |code: &str, _folder: bool| Source { code: strip(code) };
    let m = |s: &str| -> Module {
        s.split("::")
            .filter(|x| !x.is_empty())
            .map(String::from)
            .collect()
    };
    let files = BTreeMap::from([
        (m(""), file("pub mod room;", true)),
        (
            m("room"),
            file("mod a;\nmod b;\npub use a::Alpha;\npub use b::Beta;", true),
        ),
        (
            m("room::a"),
            file("use crate::room::Beta;\npub struct Alpha;", false),
        ),
        (
            m("room::b"),
            file(
                "pub struct Beta;\nfn f() { let _ = super::a::Alpha; }",
                false,
            ),
        ),
    ]);
    let found = circles(&Crate::new(files).imports());
    assert_eq!(found, vec!["room: a -> b -> a".to_string()]);
}

#[test]
fn the_ground_floor_imports_nothing_of_rotor_outside_itself() {
    let krate = Crate::new(load(&root().join("src")));
    let outside: Vec<String> = krate
        .imports()
        .into_iter()
        .filter(|(from, to)| {
            from.first().is_some_and(|r| r == "model") && to.first().is_none_or(|r| r != "model")
        })
        .map(|(from, to)| format!("{} -> {}", name(&from), name(&to)))
        .collect();
    assert!(outside.is_empty(), "model imports: {outside:?}");
}

/// Files (outside test code) whose text names `needle`.
fn files_naming(dir: &Path, needle: &str) -> Vec<String> {
    let mut files = Vec::new();
    rust_files(dir, &mut files);
    files
        .into_iter()
        .filter(|f| f.file_name().is_some_and(|n| n != "tests.rs"))
        .filter(|f| {
            let text = std::fs::read_to_string(f).expect("readable");
            strip(&text).contains(needle)
        })
        .map(|f| f.display().to_string())
        .collect()
}

#[test]
fn the_library_never_imports_the_emulator_and_the_emulator_never_imports_rotor() {
    let lib: Vec<String> = files_naming(&root().join("src"), "github_emulator")
        .into_iter()
        .filter(|f| !f.contains("/src/bin/"))
        .collect();
    assert!(lib.is_empty(), "library files naming the emulator: {lib:?}");
    let emu = files_naming(&root().join("emulator/src"), "rotor::");
    assert!(emu.is_empty(), "emulator files naming rotor: {emu:?}");
    let manifest = std::fs::read_to_string(root().join("emulator/Cargo.toml")).expect("manifest");
    assert!(
        !manifest
            .lines()
            .any(|l| l.trim_start().starts_with("rotor")),
        "the emulator depends on nothing of rotor"
    );
}

#[test]
fn no_file_outside_tests_is_much_over_600_lines() {
    let mut files = Vec::new();
    for dir in ["src", "emulator/src"] {
        rust_files(&root().join(dir), &mut files);
    }
    let long: Vec<String> = files
        .iter()
        .filter(|f| f.file_name().is_some_and(|n| n != "tests.rs"))
        .filter_map(|f| {
            let text = std::fs::read_to_string(f).expect("readable");
            let code = match text.find("#[cfg(test)]") {
                Some(i) => &text[..i],
                None => &text,
            };
            let n = code.lines().count();
            (n > 650).then(|| format!("{} ({n} lines)", f.display()))
        })
        .collect();
    assert!(long.is_empty(), "files over ~600 lines: {long:?}");
}
