//! The file-level import graph of one crate.
//!
//! An edge `a.rs → b.rs` means code in `a.rs` (inline modules included)
//! names something that lives in `b.rs`, through
//! * a `use` statement (nested groups and globs included), except a
//!   re-export (`pub use`, `pub(crate) use`);
//! * a path in code starting with `crate::`, `super::`, `self::` or the
//!   name of a child module;
//! * a bare name that the file itself re-exports (`pub use child::Item;`
//!   then `Item::new()` in the same file): the re-export line alone is not
//!   an edge, using the name in the file's own code is.
//!
//! `mod x;` declarations are not edges. Each path is resolved with
//! [`crate::resolve`]; a file naming its own items is no edge. One example
//! (the first line) is kept per edge, for messages.

use crate::resolve::{names, resolve};
use crate::source::CrateSource;
use crate::tree::ModuleTree;
use std::collections::BTreeMap;

/// One import of a file by another, with an example.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Edge {
    /// Importing file, relative to `src/`.
    pub from: String,
    /// Imported file, relative to `src/`.
    pub to: String,
    /// Line (1-based) of the example in `from`.
    pub line: usize,
    /// What names the imported file, e.g. `use crate::handler::respond`.
    pub via: String,
    /// The example line as written (trimmed).
    pub code: String,
}

impl std::fmt::Display for Edge {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} -> {}  ({}:{}: {}  [{}])",
            self.from, self.to, self.from, self.line, self.code, self.via
        )
    }
}

/// Files of a crate and who imports whom.
#[derive(Debug, Clone, Default)]
pub struct ImportGraph {
    /// Crate name, for messages.
    pub name: String,
    /// Files, relative to `src/`, sorted.
    pub files: Vec<String>,
    /// Files not reached from a crate root (not compiled, not checked).
    pub unreached: Vec<String>,
    /// `(from, to)` file indices → the first example.
    edges: BTreeMap<(usize, usize), Edge>,
}

impl ImportGraph {
    /// Scans, links and resolves everything in `src`.
    pub fn build(src: &CrateSource) -> Self {
        let tree = ModuleTree::build(src);
        let mut g = ImportGraph {
            name: src.name.clone(),
            files: tree.files.iter().map(|f| f.path.clone()).collect(),
            unreached: tree.unreached.clone(),
            edges: BTreeMap::new(),
        };
        for m in 0..tree.modules.len() {
            g.add_module(&tree, m);
        }
        g
    }

    /// All edges, sorted by (from, to).
    pub fn edges(&self) -> impl Iterator<Item = &Edge> {
        self.edges.values()
    }

    /// The edge between two files (paths relative to `src/`), if any.
    pub fn edge(&self, from: &str, to: &str) -> Option<&Edge> {
        self.edges.values().find(|e| e.from == from && e.to == to)
    }

    /// Indices of the files that file `f` imports.
    pub fn successors(&self, f: usize) -> impl Iterator<Item = usize> + '_ {
        self.edges.range((f, 0)..(f + 1, 0)).map(|(&(_, to), _)| to)
    }

    /// The example edge between file indices.
    pub fn edge_at(&self, from: usize, to: usize) -> Option<&Edge> {
        self.edges.get(&(from, to))
    }

    /// Index of a file.
    pub fn index(&self, path: &str) -> Option<usize> {
        self.files.iter().position(|f| f == path)
    }

    /// Adds the edges from the code of module `m` (one scope of one file).
    fn add_module(&mut self, tree: &ModuleTree, m: usize) {
        let module = &tree.modules[m];
        let (f, scope) = (module.file, module.scope);
        let scan = &tree.files[f].scan;
        let target = |segs: &[String]| resolve(tree, m, segs).map(|r| tree.modules[r.module].file);
        for u in scan.uses.iter().filter(|u| u.scope == scope) {
            for leaf in u.leaves.iter().filter(|l| !l.global) {
                let Some(to) = target(&leaf.segments) else {
                    continue;
                };
                if u.public {
                    // A re-export is no edge, but using its name in this file is.
                    let names = match leaf.binding() {
                        Some(b) => vec![(b.to_string(), to)],
                        None if leaf.glob => glob_names(tree, m, &leaf.segments),
                        None => continue,
                    };
                    for (name, to) in names {
                        let via =
                            format!("{name}, re-exported here by `pub use {}`", leaf.display());
                        for r in scan.idents.iter().filter(|r| r.name == name) {
                            self.add(tree, f, to, r.line, &via);
                        }
                    }
                } else {
                    let via = format!("use {}", leaf.display());
                    self.add(tree, f, to, leaf.line, &via);
                }
            }
        }
        for p in scan.paths.iter().filter(|p| p.scope == scope) {
            let first = p.segments[0].as_str();
            let relevant =
                matches!(first, "crate" | "super" | "self") || module.children.contains_key(first);
            if !relevant {
                continue;
            }
            if let Some(to) = target(&p.segments) {
                self.add(tree, f, to, p.line, &p.segments.join("::"));
            }
        }
    }

    /// Records `from → to` unless it is a self-edge; keeps the first example.
    fn add(&mut self, tree: &ModuleTree, from: usize, to: usize, line: usize, via: &str) {
        if from == to {
            return;
        }
        let file = &tree.files[from];
        let code = file.text.lines().nth(line - 1).unwrap_or("").trim();
        let edge = Edge {
            from: file.path.clone(),
            to: tree.files[to].path.clone(),
            line,
            via: via.to_string(),
            code: shorten(code),
        };
        match self.edges.get(&(from, to)) {
            Some(old) if old.line <= line => {}
            _ => {
                self.edges.insert((from, to), edge);
            }
        }
    }
}

/// The names `pub use path::*` (written in module `m`) brings in, each with
/// the file that defines it.
fn glob_names(tree: &ModuleTree, m: usize, path: &[String]) -> Vec<(String, usize)> {
    let Some(g) = resolve(tree, m, path).filter(|g| g.whole) else {
        return Vec::new();
    };
    names(tree, g.module)
        .into_iter()
        .filter_map(|name| {
            let mut segs = path.to_vec();
            segs.push(name.clone());
            resolve(tree, m, &segs).map(|r| (name, tree.modules[r.module].file))
        })
        .collect()
}

/// A line cut to a readable length.
fn shorten(code: &str) -> String {
    const MAX: usize = 120;
    if code.chars().count() <= MAX {
        return code.to_string();
    }
    let cut: String = code.chars().take(MAX).collect();
    format!("{cut}…")
}

#[cfg(test)]
mod tests {
    use super::ImportGraph;
    use crate::source::CrateSource;

    fn edges(files: &[(&str, &str)]) -> Vec<String> {
        let g = ImportGraph::build(&CrateSource::from_files("t", files));
        g.edges()
            .map(|e| format!("{} -> {}", e.from, e.to))
            .collect()
    }

    #[test]
    fn nested_use_groups() {
        let e = edges(&[
            ("lib.rs", "mod a;\nmod b;\nmod c;\nmod d;\n"),
            (
                "a.rs",
                "use crate::{b::{self, X}, c::{d_like as Y}};\nuse super::d::*;\n",
            ),
            ("b.rs", ""),
            ("c.rs", ""),
            ("d.rs", ""),
        ]);
        assert_eq!(e, ["a.rs -> b.rs", "a.rs -> c.rs", "a.rs -> d.rs"]);
    }

    #[test]
    fn super_in_an_inline_module_is_the_file_itself() {
        let e = edges(&[
            ("lib.rs", "mod a;\nstruct Top;\n"),
            ("a.rs", "fn f() {}\n#[cfg(test)]\nmod tests {\n    use super::*;\n    use super::f;\n    fn g() { super::f(); }\n}\n"),
        ]);
        assert!(e.is_empty(), "{e:?}");
        let e = edges(&[
            ("lib.rs", "mod a;\nstruct Top;\n"),
            ("a.rs", "mod tests {\n    use super::super::Top;\n}\n"),
        ]);
        assert_eq!(e, ["a.rs -> lib.rs"]);
    }

    #[test]
    fn re_exports_are_followed_to_the_defining_file() {
        let e = edges(&[
            ("lib.rs", "mod clock;\nmod user;\npub use clock::Clock;\n"),
            ("clock.rs", "pub struct Clock;"),
            ("user.rs", "use crate::Clock;\nfn f(_: crate::Clock) {}\n"),
        ]);
        assert_eq!(e, ["user.rs -> clock.rs"]);
    }

    #[test]
    fn comments_and_strings_are_ignored() {
        let e = edges(&[
            ("lib.rs", "mod a;\nmod b;\n"),
            ("a.rs", "//! See [`crate::b`].\n/// Calls crate::b::f.\nfn f() { let _ = \"crate::b::f\"; /* super::b */ }\n"),
            ("b.rs", "pub fn f() {}"),
        ]);
        assert!(e.is_empty(), "{e:?}");
    }

    #[test]
    fn declarations_and_re_exports_are_not_edges_but_own_use_is() {
        let only_reexports = [
            ("lib.rs", "mod a;\n"),
            ("a/mod.rs", "mod x;\npub use x::X;\npub struct Shared;\n"),
            ("a/x.rs", "use super::Shared;\npub struct X(Shared);\n"),
        ];
        assert_eq!(edges(&only_reexports), ["a/x.rs -> a/mod.rs"]);
        let uses_child = [
            ("lib.rs", "mod a;\n"),
            (
                "a/mod.rs",
                "mod x;\npub use x::X;\npub struct Shared;\nfn make() -> X { X::new() }\n",
            ),
            ("a/x.rs", "use super::Shared;\npub struct X(Shared);\n"),
        ];
        assert_eq!(
            edges(&uses_child),
            ["a/mod.rs -> a/x.rs", "a/x.rs -> a/mod.rs"]
        );
        let bare_child_path = [
            ("lib.rs", "mod a;\nfn f() { a::g() }\n"),
            ("a.rs", "pub fn g() {}"),
        ];
        assert_eq!(edges(&bare_child_path), ["lib.rs -> a.rs"]);
    }

    #[test]
    fn example_is_the_first_line() {
        let g = ImportGraph::build(&CrateSource::from_files(
            "t",
            &[
                ("lib.rs", "mod a;\nmod b;\n"),
                (
                    "a.rs",
                    "fn f() {}\nuse crate::b::Y;\nfn g() { crate::b::h() }\n",
                ),
                ("b.rs", ""),
            ],
        ));
        let e = g.edge("a.rs", "b.rs").unwrap();
        assert_eq!(
            (e.line, e.code.as_str(), e.via.as_str()),
            (2, "use crate::b::Y;", "use crate::b::Y")
        );
    }
}
