//! Path resolution: which module a path lands in.
//!
//! [`resolve`] follows a path (`crate::a::B`, `super::x`, `self::y`, or one
//! starting with a child module's name) from the module where it is
//! written, through child modules, as deep as the path names modules. When
//! the next segment is not a child module, the name is looked up in the
//! module reached: an item defined there ends the walk there; a name the
//! module imports (`use …` or `pub use child::Item`, also through `*`
//! globs) is followed to where the import leads, so `crate::Clock` with
//! `pub use clock::Clock;` in `lib.rs` lands in `clock.rs`. A name that
//! leads to another crate resolves to nothing (no edge); a name not found
//! at all is taken to be defined where the walk stopped.

use crate::tree::ModuleTree;
use crate::use_tree::UseLeaf;

/// Where a path landed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Resolved {
    /// The deepest module the path reaches.
    pub module: usize,
    /// Every segment named a module: the path denotes `module` itself.
    pub whole: bool,
}

/// How many imports may be followed for one path (re-export chains and
/// cyclic globs such as `use super::*` stop there).
const BUDGET: usize = 16;

/// Resolves `segments` written in module `from`; `None` if it leads
/// outside the crate (or nowhere).
pub fn resolve(tree: &ModuleTree, from: usize, segments: &[String]) -> Option<Resolved> {
    resolve_in(tree, from, segments, BUDGET)
}

/// The result of looking a name up in one module.
enum Lookup {
    Found(Resolved),
    External,
    Missing,
}

fn resolve_in(
    tree: &ModuleTree,
    from: usize,
    segments: &[String],
    budget: usize,
) -> Option<Resolved> {
    let first = segments.first()?;
    let mut m = from;
    let mut rest = segments;
    match first.as_str() {
        "crate" => {
            m = tree.modules[from].root;
            rest = &segments[1..];
        }
        "super" | "self" => {
            while let Some(seg) = rest.first() {
                match seg.as_str() {
                    "super" => m = tree.modules[m].parent?,
                    "self" => {}
                    _ => break,
                }
                rest = &rest[1..];
            }
        }
        _ => {
            return match lookup(tree, from, first, &segments[1..], budget) {
                Lookup::Found(r) => Some(r),
                Lookup::External | Lookup::Missing => None,
            }
        }
    }
    walk(tree, m, rest, budget)
}

/// Walks the remaining segments down from module `m`; `None` if they lead
/// to another crate.
fn walk(tree: &ModuleTree, m: usize, rest: &[String], budget: usize) -> Option<Resolved> {
    let Some(seg) = rest.first() else {
        return Some(Resolved {
            module: m,
            whole: true,
        });
    };
    match lookup(tree, m, seg, &rest[1..], budget) {
        Lookup::Found(r) => Some(r),
        Lookup::External => None,
        // Not found (e.g. made by a macro): count it as the module's own.
        Lookup::Missing => Some(Resolved {
            module: m,
            whole: false,
        }),
    }
}

/// Looks `name` up in module `m`, then walks `rest` from where it leads.
fn lookup(tree: &ModuleTree, m: usize, name: &str, rest: &[String], budget: usize) -> Lookup {
    let module = &tree.modules[m];
    if let Some(&child) = module.children.get(name) {
        return found(walk(tree, child, rest, budget));
    }
    let scan = &tree.files[module.file].scan;
    if scan.scopes[module.scope].items.contains(name) {
        return Lookup::Found(Resolved {
            module: m,
            whole: false,
        });
    }
    if budget == 0 {
        return Lookup::Missing;
    }
    let imports = || {
        scan.uses
            .iter()
            .filter(|u| u.scope == module.scope && u.module_level)
            .flat_map(|u| u.leaves.iter())
    };
    if let Some(leaf) = imports().find(|l| l.binding() == Some(name)) {
        return follow(tree, m, leaf, rest, budget - 1);
    }
    for leaf in imports().filter(|l| l.glob && !l.global) {
        let Some(g) = resolve_in(tree, m, &leaf.segments, budget - 1) else {
            continue;
        };
        if !g.whole || g.module == m {
            continue;
        }
        if let found @ Lookup::Found(_) = lookup(tree, g.module, name, rest, budget - 1) {
            return found;
        }
    }
    Lookup::Missing
}

/// Follows the import `leaf` (declared in module `m`), then walks `rest`.
fn follow(tree: &ModuleTree, m: usize, leaf: &UseLeaf, rest: &[String], budget: usize) -> Lookup {
    if leaf.global {
        return Lookup::External;
    }
    match resolve_in(tree, m, &leaf.segments, budget) {
        None => Lookup::External,
        Some(r) if r.whole => found(walk(tree, r.module, rest, budget)),
        Some(r) => Lookup::Found(r),
    }
}

fn found(r: Option<Resolved>) -> Lookup {
    r.map_or(Lookup::External, Lookup::Found)
}

/// Public names of module `m`: child modules, items and imported names.
/// Used to expand `pub use m::*`.
pub fn names(tree: &ModuleTree, m: usize) -> Vec<String> {
    let module = &tree.modules[m];
    let scan = &tree.files[module.file].scan;
    let mut out: Vec<String> = module.children.keys().cloned().collect();
    out.extend(scan.scopes[module.scope].items.iter().cloned());
    for u in scan
        .uses
        .iter()
        .filter(|u| u.scope == module.scope && u.module_level && u.public)
    {
        out.extend(
            u.leaves
                .iter()
                .filter_map(|l| l.binding().map(str::to_string)),
        );
    }
    out.sort();
    out.dedup();
    out
}

#[cfg(test)]
mod tests {
    use super::resolve;
    use crate::source::CrateSource;
    use crate::tree::ModuleTree;

    fn file_of(src: &[(&str, &str)], from_file: &str, path: &str) -> Option<String> {
        let t = ModuleTree::build(&CrateSource::from_files("t", src));
        let f = t.file_index(from_file).unwrap();
        let m = t
            .modules
            .iter()
            .position(|m| m.file == f && m.scope == 0)
            .unwrap();
        let segs: Vec<String> = path.split("::").map(str::to_string).collect();
        resolve(&t, m, &segs).map(|r| t.files[t.modules[r.module].file].path.clone())
    }

    const CRATE: &[(&str, &str)] = &[
        (
            "lib.rs",
            "pub mod a;\nmod clock;\npub use clock::Clock;\nuse other::Ext;\npub struct Gateway;\n",
        ),
        ("clock.rs", "pub struct Clock;"),
        (
            "a/mod.rs",
            "mod b;\npub use b::*;\npub use self::b::{c::Deep as Renamed};\n",
        ),
        ("a/b.rs", "pub mod c;\npub fn f() {}\n"),
        ("a/b/c.rs", "pub struct Deep;"),
    ];

    #[test]
    fn deepest_module_file() {
        assert_eq!(
            file_of(CRATE, "clock.rs", "crate::a::b::c::Deep").as_deref(),
            Some("a/b/c.rs")
        );
        assert_eq!(
            file_of(CRATE, "a/b/c.rs", "super::f").as_deref(),
            Some("a/b.rs")
        );
        assert_eq!(
            file_of(CRATE, "a/b/c.rs", "super::super::super::Gateway").as_deref(),
            Some("lib.rs")
        );
        assert_eq!(
            file_of(CRATE, "a/b.rs", "self::c").as_deref(),
            Some("a/b/c.rs")
        );
        assert_eq!(
            file_of(CRATE, "a/mod.rs", "b::f").as_deref(),
            Some("a/b.rs")
        );
    }

    #[test]
    fn re_exports_are_followed() {
        assert_eq!(
            file_of(CRATE, "a/b.rs", "crate::Clock").as_deref(),
            Some("clock.rs")
        );
        assert_eq!(
            file_of(CRATE, "clock.rs", "crate::a::f").as_deref(),
            Some("a/b.rs"),
            "glob"
        );
        assert_eq!(
            file_of(CRATE, "clock.rs", "crate::a::Renamed").as_deref(),
            Some("a/b/c.rs"),
            "group and alias"
        );
        assert_eq!(
            file_of(CRATE, "clock.rs", "crate::a::c::Deep").as_deref(),
            Some("a/b/c.rs"),
            "module through glob"
        );
    }

    #[test]
    fn other_crates_resolve_to_nothing() {
        assert_eq!(file_of(CRATE, "clock.rs", "crate::Ext"), None);
        assert_eq!(file_of(CRATE, "clock.rs", "std::fmt"), None);
    }
}
