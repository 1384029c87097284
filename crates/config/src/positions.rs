//! Where each key and value of a YAML text is, by YAML path.
//!
//! serde reads the config without positions, so `fulcrum check` looks each
//! error's path up here: an index from the path format of
//! [`crate::ConfigError`] (`pools.asr.instances[1].weight`) to the line and
//! column of the key and of its value, built once from the text by
//! `saphyr-parser`'s event stream (which keeps a span per event). Pure: no
//! I/O, no error of its own. A text that does not parse as YAML indexes
//! what comes before the syntax error; only the first document is read.

use saphyr_parser::{Event, Parser, Span};
use std::collections::HashMap;

/// A place in the text: line and column, both from 1 (columns count
/// characters, not bytes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mark {
    pub line: usize,
    pub column: usize,
}

/// What an error is about: a key (an unknown key points at the key) or a
/// value (a wrong type or value points at the value).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Spot {
    Key,
    Value,
}

/// The index of a text's paths.
#[derive(Debug, Default)]
pub struct Positions {
    /// path → (where its key is, where its value starts); a list item's
    /// key is its value.
    at: HashMap<String, (Mark, Mark)>,
}

impl Positions {
    /// Indexes `text`; never fails (see the module docs).
    pub fn index(text: &str) -> Positions {
        let mut walk = Walk::default();
        for item in Parser::new_from_str(text) {
            let Ok((event, span)) = item else { break };
            if !walk.on(event, span) {
                break;
            }
        }
        Positions { at: walk.at }
    }

    /// Where `path` is written. A path that is not in the text (a missing
    /// key, a default) points at the key of its nearest ancestor that is;
    /// `None` for the whole file or a text with no such ancestor.
    pub fn locate(&self, path: &str, spot: Spot) -> Option<Mark> {
        if let Some(&(key, value)) = self.at.get(path) {
            return Some(if spot == Spot::Key { key } else { value });
        }
        let mut p = path;
        while let Some(parent) = parent(p) {
            if let Some(&(key, _)) = self.at.get(parent) {
                return Some(key);
            }
            p = parent;
        }
        None
    }
}

/// `a.b[2]` → `a.b`, `a.b` → `a`, `a` → none.
pub(crate) fn parent(path: &str) -> Option<&str> {
    let cut = path.rfind(['.', '['])?;
    Some(&path[..cut])
}

/// `base` and a path inside it, in the path format of config errors:
/// `a` + `b` → `a.b`, `a` + `[0]` → `a[0]`, `a` + `` → `a`.
pub(crate) fn join(base: &str, rest: &str) -> String {
    match (base.is_empty(), rest.is_empty()) {
        (_, true) => base.to_string(),
        (true, false) => rest.to_string(),
        (false, false) if rest.starts_with('[') => format!("{base}{rest}"),
        _ => format!("{base}.{rest}"),
    }
}

/// An open mapping or list on the way down.
enum Frame {
    Map {
        path: String,
        /// The key read, waiting for its value (and where it is).
        key: Option<(String, Mark)>,
    },
    Seq {
        path: String,
        next: usize,
    },
    /// A mapping or list used as a key (it starts at the mark): its
    /// insides have no path.
    ComplexKey(Mark),
}

/// The kinds of node the walk tells apart.
enum Node<'a> {
    Scalar(&'a str),
    Alias,
    Container,
}

#[derive(Default)]
struct Walk {
    stack: Vec<Frame>,
    at: HashMap<String, (Mark, Mark)>,
    documents: usize,
}

/// The name given to a key that is not a plain scalar (an alias, a
/// mapping): such a key is an error of its own, and nothing below it is
/// looked up.
const NO_KEY: &str = "\u{0}";

impl Walk {
    /// Takes one event; `false` once the first document is done.
    fn on(&mut self, event: Event, span: Span) -> bool {
        let mark = Mark {
            line: span.start.line(),
            column: span.start.col() + 1,
        };
        match event {
            Event::DocumentStart(_) => {
                self.documents += 1;
                self.documents == 1
            }
            Event::DocumentEnd | Event::StreamEnd => false,
            Event::Scalar(text, ..) => {
                self.node(Node::Scalar(&text), mark);
                true
            }
            Event::Alias(_) => {
                self.node(Node::Alias, mark);
                true
            }
            Event::MappingStart(..) | Event::SequenceStart(..) => {
                let is_map = matches!(event, Event::MappingStart(..));
                let frame = match self.node(Node::Container, mark) {
                    None => Frame::ComplexKey(mark),
                    Some(path) if is_map => Frame::Map { path, key: None },
                    Some(path) => Frame::Seq { path, next: 0 },
                };
                self.stack.push(frame);
                true
            }
            Event::MappingEnd | Event::SequenceEnd => {
                if let Some(Frame::ComplexKey(start)) = self.stack.pop() {
                    if let Some(Frame::Map { key, .. }) = self.stack.last_mut() {
                        *key = Some((NO_KEY.into(), start));
                    }
                }
                true
            }
            Event::StreamStart | Event::Nothing => true,
        }
    }

    /// A node starts at `mark`. Returns its path when it is a value (and
    /// records it), `None` when it is a key or inside one.
    fn node(&mut self, node: Node, mark: Mark) -> Option<String> {
        let (path, key_mark) = match self.stack.last_mut() {
            None => (String::new(), mark),
            Some(Frame::ComplexKey(_)) => return None,
            Some(Frame::Seq { path, next }) => {
                *next += 1;
                (join(path, &format!("[{}]", *next - 1)), mark)
            }
            Some(Frame::Map { path, key }) => match key.take() {
                Some((k, key_mark)) => (join(path, &k), key_mark),
                None => {
                    // A key: a scalar is named at once, a mapping or list
                    // used as a key when it ends (see `on`).
                    match node {
                        Node::Scalar(t) => *key = Some((t.to_string(), mark)),
                        Node::Alias => *key = Some((NO_KEY.into(), mark)),
                        Node::Container => {}
                    }
                    return None;
                }
            },
        };
        self.at.entry(path.clone()).or_insert((key_mark, mark));
        Some(path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(p: &Positions, path: &str, spot: Spot) -> Option<(usize, usize)> {
        p.locate(path, spot).map(|m| (m.line, m.column))
    }

    /// Each (path, spot, line, column) of `want` is found in `text`.
    fn places(text: &str, want: &[(&str, Spot, usize, usize)]) {
        let p = Positions::index(text);
        for &(path, spot, line, column) in want {
            assert_eq!(at(&p, path, spot), Some((line, column)), "{path} {spot:?}");
        }
    }

    #[test]
    fn nested_mappings_lists_of_mappings_flow_style_and_quoted_keys() {
        use Spot::{Key, Value};
        // Block style, then flow style with quoted keys.
        places(
            "listen: 0.0.0.0:1\npools:\n  asr:\n    algorithm: fastest\n    instances:\n      - endpoint: http://h:1\n        weight: heavy\n      - endpoint: http://h:2\n  p: { \"algorithm\": x, instances: [ { endpoint: e, 'weight': 2 } ] }\nroutes: [ { path_prefix: /, pool: q } ]\n",
            &[
                ("listen", Key, 1, 1),
                ("listen", Value, 1, 9),
                ("pools.asr.algorithm", Key, 4, 5),
                ("pools.asr.algorithm", Value, 4, 16),
                ("pools.asr.instances[0]", Value, 6, 9),
                ("pools.asr.instances[0].weight", Value, 7, 17),
                ("pools.asr.instances[1].endpoint", Key, 8, 9),
                ("pools.p.algorithm", Key, 9, 8),
                ("pools.p.algorithm", Value, 9, 21),
                ("pools.p.instances[0].weight", Key, 9, 52),
                ("routes[0].pool", Value, 10, 35),
                ("routes[0]", Value, 10, 11),
            ],
        );
    }

    #[test]
    fn a_missing_path_points_at_its_nearest_ancestor_s_key() {
        let text = "pools:\n  p:\n    retry: { tries: 2 }\n";
        let p = Positions::index(text);
        assert_eq!(at(&p, "pools.p.retry.on[3]", Spot::Value), Some((3, 5)));
        assert_eq!(at(&p, "pools.q.algorithm", Spot::Value), Some((1, 1)));
        assert_eq!(at(&p, "listen", Spot::Value), None);
        assert_eq!(at(&p, "", Spot::Value), Some((1, 1)), "the root");
    }

    #[test]
    fn odd_keys_and_broken_texts_index_what_they_can() {
        // A mapping as a key, an alias as a key, multi-line scalars.
        let text = "a: &x 1\n? [k]\n: v\n*x : w\nb: |\n  text\nc: 3\n";
        let p = Positions::index(text);
        assert_eq!(at(&p, "a", Spot::Value), Some((1, 4)));
        assert_eq!(at(&p, "c", Spot::Key), Some((7, 1)));
        // A syntax error: what came before it is indexed.
        let p = Positions::index("a: 1\nb: [unclosed\nc: 2");
        assert_eq!(at(&p, "a", Spot::Key), Some((1, 1)));
        // Only the first document.
        let p = Positions::index("a: 1\n---\nb: 2\n");
        assert_eq!(at(&p, "b", Spot::Key), None);
        assert!(Positions::index("").locate("a", Spot::Key).is_none());
    }

    #[test]
    fn columns_count_characters() {
        let p = Positions::index("name: \"é\"\nx: 人数统计\ny: 1\n");
        assert_eq!(at(&p, "x", Spot::Value), Some((2, 4)));
        assert_eq!(at(&p, "y", Spot::Value), Some((3, 4)));
    }
}
