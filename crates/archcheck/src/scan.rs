//! What one source file says about modules and paths.
//!
//! [`scan`] blanks comments and literals ([`crate::strip`]), splits the rest
//! into tokens ([`crate::lex`]) and walks them once, tracking braces so that
//! each finding is attributed to the module it appears in: the file's own
//! module or one of its inline `mod x { … }` blocks (such as
//! `#[cfg(test)] mod tests`). It records, per module scope, the `mod x;`
//! declarations, the inline child modules, the items defined at module level
//! and the `use` statements; and, for the whole file, every path written in
//! code that starts with `crate::`, `super::`, `self::` or another
//! identifier followed by `::`, and every bare identifier (a candidate use of
//! a name that the file re-exports).

use crate::lex::{lex, Token};
use crate::strip::strip;
use crate::use_tree::{parse_use, UseLeaf};
use std::collections::BTreeSet;

/// One module scope of a file: the file's own module or an inline module.
#[derive(Debug, Clone, Default)]
pub struct Scope {
    /// Path from the file's module, e.g. `[]` or `["tests"]`.
    pub path: Vec<String>,
    /// The enclosing scope in the same file (`None` for the file's module).
    pub parent: Option<usize>,
    /// `mod x;` declarations: children that live in their own files.
    pub declared: Vec<String>,
    /// `mod x { … }` children, with their scope index in this file.
    pub inline: Vec<(String, usize)>,
    /// Names of items defined at module level (functions, types, consts…).
    pub items: BTreeSet<String>,
}

/// A `use` statement.
#[derive(Debug, Clone)]
pub struct UseStmt {
    /// Scope it appears in.
    pub scope: usize,
    /// Written with a visibility (`pub use`, `pub(crate) use`): a re-export.
    pub public: bool,
    /// At module level (not inside a function or block): its names are
    /// visible to other modules through paths.
    pub module_level: bool,
    /// The imported paths.
    pub leaves: Vec<UseLeaf>,
}

/// A path written in code (outside `use` statements), e.g.
/// `crate::tls::Upstream` or `round_robin::RoundRobin`.
#[derive(Debug, Clone)]
pub struct PathRef {
    /// Scope it appears in.
    pub scope: usize,
    /// Its segments, up to the last identifier before a non-path token.
    pub segments: Vec<String>,
    /// 1-based line.
    pub line: usize,
}

/// A bare identifier in code: not after `::` or `.`, not the name being
/// declared by `fn`, `let`, `struct` and the like, not a field or
/// parameter name before `:`, not an enum variant being declared.
#[derive(Debug, Clone)]
pub struct IdentRef {
    /// Scope it appears in.
    pub scope: usize,
    /// The identifier.
    pub name: String,
    /// 1-based line.
    pub line: usize,
}

/// Everything [`scan`] found in one file.
#[derive(Debug, Clone, Default)]
pub struct FileScan {
    /// Module scopes; index 0 is the file's own module.
    pub scopes: Vec<Scope>,
    /// `use` statements, in order.
    pub uses: Vec<UseStmt>,
    /// Paths in code, in order.
    pub paths: Vec<PathRef>,
    /// Bare identifiers in code, in order.
    pub idents: Vec<IdentRef>,
}

/// Keywords after which the next identifier is a name being declared.
const DECLARING: &[&str] = &[
    "fn", "struct", "enum", "trait", "type", "const", "static", "mod", "let", "mut", "ref", "union",
];

/// Keywords that define a named item at module level.
const ITEM_KEYWORDS: &[&str] = &["fn", "struct", "enum", "trait", "type", "const", "static"];

/// Scans one file's source.
pub fn scan(src: &str) -> FileScan {
    let toks = lex(&strip(src));
    let mut out = FileScan {
        scopes: vec![Scope::default()],
        ..FileScan::default()
    };
    // Open scopes: (scope index, brace depth of its body).
    let mut open: Vec<(usize, usize)> = vec![(0, 0)];
    let mut depth = 0usize;
    // Open brackets of every kind; `true` marks the `{` of an enum body.
    let mut brackets: Vec<bool> = Vec::new();
    let mut enum_ahead = false;
    let mut i = 0;
    while i < toks.len() {
        let (scope, body_depth) = *open.last().expect("the file scope is never closed");
        let module_level = depth == body_depth;
        let t = &toks[i];
        if t.is_punct('{') {
            depth += 1;
            brackets.push(std::mem::take(&mut enum_ahead));
            i += 1;
            continue;
        }
        if t.is_punct('}') {
            if depth == body_depth && open.len() > 1 {
                open.pop();
            }
            depth = depth.saturating_sub(1);
            brackets.pop();
            i += 1;
            continue;
        }
        if t.is_punct('(') || t.is_punct('[') {
            brackets.push(false);
        } else if t.is_punct(')') || t.is_punct(']') {
            brackets.pop();
        } else if t.is_punct(';') {
            enum_ahead = false;
        } else if t.is("enum") {
            enum_ahead = true;
        }
        if t.is("pub") {
            let j = skip_visibility(&toks, i + 1);
            if toks.get(j).is_some_and(|t| t.is("use")) {
                i = record_use(&toks, j + 1, scope, true, module_level, &mut out);
            } else {
                i = j;
            }
            continue;
        }
        if t.is("use") {
            i = record_use(&toks, i + 1, scope, false, module_level, &mut out);
            continue;
        }
        if t.is("mod") {
            if let Some(name) = toks.get(i + 1).and_then(Token::ident) {
                if toks.get(i + 2).is_some_and(|t| t.is_punct(';')) {
                    out.scopes[scope].declared.push(name.to_string());
                    i += 3;
                    continue;
                }
                if toks.get(i + 2).is_some_and(|t| t.is_punct('{')) {
                    let child = out.scopes.len();
                    let mut path = out.scopes[scope].path.clone();
                    path.push(name.to_string());
                    out.scopes.push(Scope {
                        path,
                        parent: Some(scope),
                        ..Scope::default()
                    });
                    out.scopes[scope].inline.push((name.to_string(), child));
                    depth += 1;
                    open.push((child, depth));
                    i += 3;
                    continue;
                }
            }
        }
        if module_level {
            if let Some(name) = item_name(&toks, i) {
                out.scopes[scope].items.insert(name);
            }
        }
        if let Some(name) = t.ident() {
            let prev = i.checked_sub(1).map(|p| &toks[p]);
            let after_path_or_field = prev.is_some_and(|p| p.is_path_sep() || p.is_punct('.'));
            if !after_path_or_field {
                let declared = prev.is_some_and(|p| DECLARING.iter().any(|k| p.is(k)));
                let field = toks.get(i + 1).is_some_and(|n| n.is_punct(':'));
                let variant = brackets.last() == Some(&true)
                    && prev.is_some_and(|p| p.is_punct('{') || p.is_punct(',') || p.is_punct(']'));
                if !declared && !field && !variant {
                    out.idents.push(IdentRef {
                        scope,
                        name: name.to_string(),
                        line: t.line,
                    });
                }
                if toks.get(i + 1).is_some_and(Token::is_path_sep) {
                    let (segments, next) = path_at(&toks, i);
                    out.paths.push(PathRef {
                        scope,
                        segments,
                        line: t.line,
                    });
                    i = next;
                    continue;
                }
            }
        }
        i += 1;
    }
    out
}

/// Index past an optional `(crate)`, `(super)`, `(in path)` after `pub`.
fn skip_visibility(toks: &[Token], mut i: usize) -> usize {
    if toks.get(i).is_some_and(|t| t.is_punct('(')) {
        while i < toks.len() && !toks[i].is_punct(')') {
            i += 1;
        }
        i += 1;
    }
    i
}

/// Parses a `use` tree at `start` and records it; returns the index after it.
fn record_use(
    toks: &[Token],
    start: usize,
    scope: usize,
    public: bool,
    module_level: bool,
    out: &mut FileScan,
) -> usize {
    let (leaves, end) = parse_use(toks, start);
    out.uses.push(UseStmt {
        scope,
        public,
        module_level,
        leaves,
    });
    end
}

/// The name of the item defined at `toks[i]`, if an item keyword starts there.
fn item_name(toks: &[Token], i: usize) -> Option<String> {
    let t = &toks[i];
    if t.is("macro_rules") && toks.get(i + 1).is_some_and(|t| t.is_punct('!')) {
        return toks.get(i + 2).and_then(Token::ident).map(str::to_string);
    }
    if !ITEM_KEYWORDS.iter().any(|k| t.is(k)) {
        return None;
    }
    let mut j = i + 1;
    if toks.get(j).is_some_and(|t| t.is("mut") || t.is("fn")) {
        j += 1; // `static mut X`, `const fn f`
    }
    let name = toks.get(j).and_then(Token::ident)?;
    (name != "_").then(|| name.to_string())
}

/// The path starting at `toks[i]` (an identifier followed by `::`): its
/// identifier segments and the index after the last one.
fn path_at(toks: &[Token], mut i: usize) -> (Vec<String>, usize) {
    let mut segments = Vec::new();
    while let Some(name) = toks.get(i).and_then(Token::ident) {
        segments.push(name.to_string());
        i += 1;
        let more = toks.get(i).is_some_and(Token::is_path_sep)
            && toks.get(i + 1).and_then(Token::ident).is_some();
        if !more {
            break;
        }
        i += 1;
    }
    (segments, i)
}

#[cfg(test)]
mod tests {
    use super::scan;

    #[test]
    fn scopes_declarations_and_items() {
        let s = scan(
            "pub mod a;\nmod b;\npub struct S;\nfn f() { fn inner() {} }\n\
             #[cfg(test)]\nmod tests {\n    use super::*;\n    fn t() {}\n}\nconst C: u8 = 1;\n",
        );
        assert_eq!(s.scopes[0].declared, ["a", "b"]);
        assert_eq!(s.scopes[0].inline, [("tests".to_string(), 1)]);
        assert_eq!(s.scopes[1].path, ["tests"]);
        let items: Vec<&str> = s.scopes[0].items.iter().map(String::as_str).collect();
        assert_eq!(items, ["C", "S", "f"]);
        assert!(s.scopes[1].items.contains("t"));
        assert_eq!(s.uses.len(), 1);
        assert_eq!(s.uses[0].scope, 1);
    }

    #[test]
    fn uses_visibility_and_level() {
        let s =
            scan("pub use a::B;\npub(crate) use c::D;\nuse e::F;\nfn g() { use crate::h::I; }\n");
        let flags: Vec<(bool, bool)> = s.uses.iter().map(|u| (u.public, u.module_level)).collect();
        assert_eq!(
            flags,
            [(true, true), (true, true), (false, true), (false, false)]
        );
    }

    #[test]
    fn inline_paths_and_idents() {
        let s = scan(
            "fn f(x: crate::a::B) -> Vec::<super::C> { let y = child::g(); Thing::new(y.field) }",
        );
        let paths: Vec<String> = s.paths.iter().map(|p| p.segments.join("::")).collect();
        assert_eq!(
            paths,
            ["crate::a::B", "Vec", "super::C", "child::g", "Thing::new"]
        );
        let idents: Vec<&str> = s.idents.iter().map(|i| i.name.as_str()).collect();
        assert!(idents.contains(&"Thing"));
        assert!(!idents.contains(&"x"), "parameter name");
        assert_eq!(
            idents.iter().filter(|n| **n == "y").count(),
            1,
            "declared by let, then used"
        );
        assert!(!idents.contains(&"field"), "after a dot");
        assert!(!idents.contains(&"new"), "after ::");
    }

    #[test]
    fn enum_variant_declarations_are_not_uses() {
        let s = scan(
            "enum A<T> where T: Copy { X, #[default] Y(Z, W), V { f: U } }
fn g() { X }
",
        );
        let idents: Vec<&str> = s.idents.iter().map(|i| i.name.as_str()).collect();
        assert_eq!(
            idents.iter().filter(|n| **n == "X").count(),
            1,
            "{idents:?}"
        );
        assert!(
            !idents.contains(&"Y") && !idents.contains(&"V"),
            "{idents:?}"
        );
        assert!(
            idents.contains(&"Z") && idents.contains(&"W") && idents.contains(&"U"),
            "{idents:?}"
        );
    }
}
