//! `use` trees.
//!
//! [`parse_use`] reads the tree after a `use` keyword, nested groups
//! included (`use a::{b, c::{self, d as e}, f::*};`), and flattens it into
//! one [`UseLeaf`] per imported path.

use crate::lex::Token;

/// One path imported by a `use` statement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UseLeaf {
    /// The whole path, e.g. `["crate", "handler", "Conn"]`; for `{self}` the
    /// path of the group's prefix.
    pub segments: Vec<String>,
    /// `…::*`: everything public in the module at `segments`.
    pub glob: bool,
    /// `as name` (`_` for `as _`).
    pub alias: Option<String>,
    /// Written with a leading `::` (an external crate).
    pub global: bool,
    /// Line of the leaf's last segment.
    pub line: usize,
}

impl UseLeaf {
    /// The name the leaf brings into scope (`None` for globs and `as _`).
    pub fn binding(&self) -> Option<&str> {
        if self.glob {
            return None;
        }
        match &self.alias {
            Some(a) if a == "_" => None,
            Some(a) => Some(a),
            None => self.segments.last().map(String::as_str),
        }
    }

    /// The path as written in a `use` line, e.g. `crate::handler::Conn`.
    pub fn display(&self) -> String {
        let mut s = self.segments.join("::");
        if self.glob {
            s.push_str("::*");
        }
        if let Some(a) = &self.alias {
            s.push_str(" as ");
            s.push_str(a);
        }
        s
    }
}

/// Parses the use tree starting at `toks[start]` (just after `use`).
/// Returns the leaves and the index just past the closing `;`.
pub fn parse_use(toks: &[Token], start: usize) -> (Vec<UseLeaf>, usize) {
    let mut leaves = Vec::new();
    let mut i = start;
    let global = toks.get(i).is_some_and(Token::is_path_sep);
    if global {
        i += 1;
    }
    i = parse_tree(toks, i, &[], global, &mut leaves);
    while i < toks.len() && !toks[i].is_punct(';') {
        i += 1; // malformed or unsupported: skip to the end of the statement
    }
    (leaves, (i + 1).min(toks.len()))
}

/// Parses one tree with the given prefix; returns the index after it.
fn parse_tree(
    toks: &[Token],
    mut i: usize,
    prefix: &[String],
    global: bool,
    out: &mut Vec<UseLeaf>,
) -> usize {
    let mut segments = prefix.to_vec();
    loop {
        let Some(tok) = toks.get(i) else { return i };
        if tok.is_punct('{') {
            i += 1;
            loop {
                match toks.get(i) {
                    None => return i,
                    Some(t) if t.is_punct('}') => return i + 1,
                    Some(t) if t.is_punct(',') => i += 1,
                    Some(_) => {
                        let before = i;
                        i = parse_tree(toks, i, &segments, global, out);
                        if i == before {
                            i += 1; // unexpected token: do not loop forever
                        }
                    }
                }
            }
        }
        if tok.is_punct('*') {
            let line = tok.line;
            out.push(UseLeaf {
                segments,
                glob: true,
                alias: None,
                global,
                line,
            });
            return i + 1;
        }
        let Some(name) = tok.ident() else { return i };
        let line = tok.line;
        if name == "self"
            && !segments.is_empty()
            && toks.get(i + 1).is_none_or(|t| !t.is_path_sep())
        {
            // `{self}` or `{self as x}`: the group's prefix itself.
        } else {
            segments.push(name.to_string());
        }
        i += 1;
        if toks.get(i).is_some_and(Token::is_path_sep) {
            i += 1;
            continue;
        }
        let mut alias = None;
        if toks.get(i).is_some_and(|t| t.is("as")) {
            alias = toks.get(i + 1).and_then(Token::ident).map(str::to_string);
            i += 2;
        }
        out.push(UseLeaf {
            segments,
            glob: false,
            alias,
            global,
            line,
        });
        return i;
    }
}

#[cfg(test)]
mod tests {
    use super::parse_use;
    use crate::lex::lex;

    fn leaves(src: &str) -> Vec<String> {
        let toks = lex(src);
        let (leaves, end) = parse_use(&toks, 1);
        assert_eq!(end, toks.len(), "consumed through the `;`");
        leaves.iter().map(|l| l.display()).collect()
    }

    #[test]
    fn simple_and_alias() {
        assert_eq!(leaves("use crate::a::B;"), ["crate::a::B"]);
        assert_eq!(leaves("use super::x as y;"), ["super::x as y"]);
        assert_eq!(
            leaves("use crate::t::Trait as _;"),
            ["crate::t::Trait as _"]
        );
    }

    #[test]
    fn nested_groups_self_and_globs() {
        assert_eq!(
            leaves("use crate::{a, b::{self, c::{d as e, *}}, f::G};"),
            [
                "crate::a",
                "crate::b",
                "crate::b::c::d as e",
                "crate::b::c::*",
                "crate::f::G"
            ]
        );
        assert_eq!(leaves("use super::*;"), ["super::*"]);
    }

    #[test]
    fn multi_line_group_lines_and_bindings() {
        let toks = lex("use super::{\n    Balancer,\n    two as three,\n};");
        let (l, _) = parse_use(&toks, 1);
        assert_eq!(l[0].line, 2);
        assert_eq!(l[0].binding(), Some("Balancer"));
        assert_eq!(l[1].binding(), Some("three"));
    }

    #[test]
    fn leading_path_separator_is_global() {
        let toks = lex("use ::std::fmt;");
        let (l, _) = parse_use(&toks, 1);
        assert!(l[0].global);
        assert_eq!(l[0].display(), "std::fmt");
    }
}
