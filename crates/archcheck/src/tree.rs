//! The module tree of a crate, built from its files.
//!
//! Starting at each crate root (`lib.rs`, `main.rs`, `bin/…`), every
//! `mod x;` declaration is looked up as `x.rs` or `x/mod.rs` in the
//! declaring module's directory (`foo/` for `foo.rs`, the file's own folder
//! for a root or a `mod.rs`, plus the path of an enclosing inline module).
//! Inline `mod x { … }` blocks become modules of their own that live in the
//! file that holds them. Files no root declares are listed in
//! [`ModuleTree::unreached`]: they are not compiled, so they are not checked.
//! `#[path = "…"]` attributes are not followed.

use crate::scan::{scan, FileScan};
use crate::source::CrateSource;
use std::collections::BTreeMap;

/// One source file and what [`scan`] found in it.
#[derive(Debug, Clone)]
pub struct SourceFile {
    /// Path relative to `src/`.
    pub path: String,
    /// The original text (for quoting lines in messages).
    pub text: String,
    /// The scan of `text`.
    pub scan: FileScan,
}

/// One module: a file's own module or an inline module in a file.
#[derive(Debug, Clone)]
pub struct Module {
    /// Index of the file it lives in.
    pub file: usize,
    /// Index of its scope in that file's [`FileScan::scopes`].
    pub scope: usize,
    /// The enclosing module (`None` for a crate root).
    pub parent: Option<usize>,
    /// The crate root module it belongs to.
    pub root: usize,
    /// Child modules by name.
    pub children: BTreeMap<String, usize>,
}

/// All modules of a crate (of each of its roots) and their files.
#[derive(Debug, Clone, Default)]
pub struct ModuleTree {
    /// Every `.rs` file under `src/`, sorted by path.
    pub files: Vec<SourceFile>,
    /// Every module reached from a root.
    pub modules: Vec<Module>,
    /// Files that no root reaches through `mod` declarations.
    pub unreached: Vec<String>,
}

impl ModuleTree {
    /// Scans every file of `src` and links the modules from its roots.
    pub fn build(src: &CrateSource) -> Self {
        let files: Vec<SourceFile> = src
            .files
            .iter()
            .map(|(path, text)| SourceFile {
                path: path.clone(),
                text: text.clone(),
                scan: scan(text),
            })
            .collect();
        let mut tree = ModuleTree {
            files,
            ..ModuleTree::default()
        };
        for root in src.roots() {
            if let Some(f) = tree.file_index(&root) {
                tree.add_file(f, None, None, &mut Vec::new(), true);
            }
        }
        tree.unreached = (0..tree.files.len())
            .filter(|f| !tree.modules.iter().any(|m| m.file == *f))
            .map(|f| tree.files[f].path.clone())
            .collect();
        tree
    }

    /// Index of the file at `path` (relative to `src/`).
    pub fn file_index(&self, path: &str) -> Option<usize> {
        self.files.iter().position(|f| f.path == path)
    }

    /// Adds the module of file `f` (and everything below it); returns its index.
    fn add_file(
        &mut self,
        f: usize,
        parent: Option<usize>,
        root: Option<usize>,
        stack: &mut Vec<usize>,
        is_root: bool,
    ) -> usize {
        let m = self.modules.len();
        let root = root.unwrap_or(m);
        self.modules.push(Module {
            file: f,
            scope: 0,
            parent,
            root,
            children: BTreeMap::new(),
        });
        stack.push(f);
        let dir = module_dir(&self.files[f].path, is_root);
        self.add_scope(m, dir, stack);
        stack.pop();
        m
    }

    /// Adds the children (inline and declared) of module `m`, whose child
    /// files live in `dir`.
    fn add_scope(&mut self, m: usize, dir: String, stack: &mut Vec<usize>) {
        let (f, s, root) = (
            self.modules[m].file,
            self.modules[m].scope,
            self.modules[m].root,
        );
        let scope = self.files[f].scan.scopes[s].clone();
        for (name, child_scope) in scope.inline {
            let c = self.modules.len();
            self.modules.push(Module {
                file: f,
                scope: child_scope,
                parent: Some(m),
                root,
                children: BTreeMap::new(),
            });
            self.modules[m].children.insert(name.clone(), c);
            self.add_scope(c, format!("{dir}{name}/"), stack);
        }
        for name in scope.declared {
            let found = [format!("{dir}{name}.rs"), format!("{dir}{name}/mod.rs")]
                .iter()
                .find_map(|p| self.file_index(p));
            if let Some(cf) = found.filter(|cf| !stack.contains(cf)) {
                let c = self.add_file(cf, Some(m), Some(root), stack, false);
                self.modules[m].children.insert(name, c);
            }
        }
    }
}

/// Directory (relative to `src/`, with a trailing `/` unless empty) where
/// the children declared by the file at `path` live.
fn module_dir(path: &str, is_root: bool) -> String {
    let (dir, file) = match path.rfind('/') {
        Some(i) => (&path[..=i], &path[i + 1..]),
        None => ("", path),
    };
    if is_root || file == "mod.rs" {
        dir.to_string()
    } else {
        format!("{}/", path.trim_end_matches(".rs"))
    }
}

#[cfg(test)]
mod tests {
    use super::ModuleTree;
    use crate::source::CrateSource;

    #[test]
    fn files_and_inline_modules() {
        let src = CrateSource::from_files(
            "t",
            &[
                ("lib.rs", "mod a;\nmod b;\nmod c { mod d; }\n"),
                ("a.rs", "mod x;"),
                ("a/x.rs", ""),
                ("b/mod.rs", "pub mod y;"),
                ("b/y.rs", ""),
                ("c/d.rs", ""),
                ("stray.rs", ""),
            ],
        );
        let t = ModuleTree::build(&src);
        assert_eq!(t.unreached, ["stray.rs"]);
        let root = &t.modules[0];
        assert_eq!(root.children.keys().collect::<Vec<_>>(), ["a", "b", "c"]);
        let file_of = |m: usize| t.files[t.modules[m].file].path.as_str();
        let a = root.children["a"];
        assert_eq!(file_of(t.modules[a].children["x"]), "a/x.rs");
        let b = root.children["b"];
        assert_eq!(file_of(b), "b/mod.rs");
        assert_eq!(file_of(t.modules[b].children["y"]), "b/y.rs");
        let c = root.children["c"];
        assert_eq!(file_of(c), "lib.rs");
        assert_eq!(file_of(t.modules[c].children["d"]), "c/d.rs");
    }

    #[test]
    fn binary_root_has_its_own_tree() {
        let src = CrateSource::from_files(
            "t",
            &[
                ("lib.rs", "mod a;"),
                ("main.rs", "mod cli;"),
                ("a.rs", ""),
                ("cli.rs", ""),
            ],
        );
        let t = ModuleTree::build(&src);
        let roots: Vec<usize> = (0..t.modules.len())
            .filter(|m| t.modules[*m].parent.is_none())
            .collect();
        assert_eq!(roots.len(), 2);
        assert!(t.unreached.is_empty());
    }
}
