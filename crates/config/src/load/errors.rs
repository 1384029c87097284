//! Config errors with their YAML paths and places, and [`Errors`], the
//! collector every section reports into (it imports no other part of
//! `load`).

use crate::file::Keys;
use crate::positions::{join, parent, Positions, Spot};
use crate::words;
use serde_path_to_error::Segment;
use serde_yaml_ng::Value;
use std::fmt;

/// One problem in a config file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// YAML path such as `pools.asr.instances[0].weight`; empty for the whole file.
    pub path: String,
    pub message: String,
    /// Where it is in the file, from 1: an unknown key's key, any other
    /// error's value; for a key that is missing, the key of the nearest
    /// section that is there. `None` when it is nowhere in the file.
    pub line: Option<usize>,
    pub column: Option<usize>,
}

impl ConfigError {
    /// An error at `path`, not placed in the file yet (see [`ConfigErrors::locate`]).
    pub fn new(path: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            path: path.into(),
            message: message.into(),
            line: None,
            column: None,
        }
    }

    /// A problem of the whole file (no YAML path).
    pub(crate) fn whole_file(message: String) -> Self {
        Self::new("", message)
    }

    /// Places the error at its path in `at` (unless it has a place already).
    pub(crate) fn place(&mut self, at: &Positions, spot: Spot) {
        if self.line.is_none() && !self.path.is_empty() {
            if let Some(m) = at.locate(&self.path, spot) {
                (self.line, self.column) = (Some(m.line), Some(m.column));
            }
        }
    }
}
impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path.is_empty() {
            f.write_str(&self.message)
        } else {
            write!(f, "{}: {}", self.path, self.message)
        }
    }
}

/// Every problem found in a config file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigErrors(pub Vec<ConfigError>);

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}

impl ConfigErrors {
    /// Places each error that has no place yet at its path in `text` (as a
    /// value): for errors found after parsing, such as unusable TLS files.
    pub fn locate(&mut self, text: &str) {
        let at = Positions::index(text);
        for e in &mut self.0 {
            e.place(&at, Spot::Value);
        }
    }
}

/// How many times one section is read again after a type error, each
/// time without the key at fault (a bound; a section has fewer keys).
const MAX_ROUNDS: usize = 200;

/// The errors found so far; validation goes on after each one.
pub(super) struct Errors {
    found: Vec<ConfigError>,
    at: Positions,
}

impl Errors {
    /// A collector that places errors in the text `at` indexes.
    pub(super) fn new(at: Positions) -> Self {
        Self { found: vec![], at }
    }

    /// An error about the value at `path`.
    pub(super) fn push(&mut self, path: &str, message: String) {
        self.add(path, message, Spot::Value);
    }

    /// An error about the key at `path` (an unknown or unsupported key).
    pub(super) fn push_key(&mut self, path: &str, message: String) {
        self.add(path, message, Spot::Key);
    }

    fn add(&mut self, path: &str, message: String, spot: Spot) {
        let mut e = ConfigError::new(path, message);
        e.place(&self.at, spot);
        if !self.found.contains(&e) {
            self.found.push(e);
        }
    }

    /// `Ok` when nothing was found, else every error, in the order of the
    /// file (errors of the whole file first).
    pub(super) fn into_result(mut self) -> Result<(), ConfigErrors> {
        if self.found.is_empty() {
            return Ok(());
        }
        self.found.sort_by_key(|e| (e.line, e.column));
        Err(ConfigErrors(self.found))
    }

    /// Deserializes one section, recording every type error and unknown
    /// key in it. serde stops at the first type error, so the section is
    /// read again without the key at fault until it reads (or cannot be
    /// read at all: a wrong type for the whole section, a missing required
    /// key); each error is recorded once.
    pub(super) fn section<T: Keys>(&mut self, mut v: Value, path: &str) -> Option<T> {
        let mut unknown: Vec<String> = vec![];
        let mut removed: Vec<String> = vec![];
        let mut result = None;
        for _ in 0..MAX_ROUNDS {
            let mut record = |p: serde_ignored::Path| {
                let p = ignored_path(&p);
                if !unknown.contains(&p) {
                    unknown.push(p);
                }
            };
            let de = serde_ignored::Deserializer::new(v.clone(), &mut record);
            let err = match serde_path_to_error::deserialize::<_, T>(de) {
                Ok(t) => {
                    result = Some(t);
                    break;
                }
                Err(e) => e,
            };
            let segments: Vec<Segment> = err.path().iter().cloned().collect();
            let at = err.path().to_string();
            let at = if at == "." { String::new() } else { at };
            let message = err.into_inner().to_string();
            let follows_removal =
                words::missing_field(&message).is_some_and(|f| removed.contains(&join(&at, f)));
            if !follows_removal {
                self.push(&join(path, &at), words::plain(&message));
            }
            if follows_removal || !remove(&mut v, &segments) {
                break;
            }
            removed.push(at);
        }
        for u in unknown {
            let key = u.rsplit(['.', '[']).next().unwrap_or(&u);
            let valid = T::keys_at(parent(&u).unwrap_or(""));
            self.push_key(&join(path, &u), words::unknown_key(key, valid));
        }
        result
    }
}

/// Removes the value at `path` from `v`: the key from its mapping, or a
/// whole list for one of its items (removing the item would renumber the
/// next ones). `false` when there is nothing to remove.
fn remove(v: &mut Value, path: &[Segment]) -> bool {
    let Some((last, up)) = path.split_last() else {
        return false;
    };
    match (get_mut(v, up), last) {
        (Some(Value::Mapping(m)), Segment::Map { key }) => m.remove(key.as_str()).is_some(),
        (Some(Value::Sequence(_)), Segment::Seq { .. }) => remove(v, up),
        _ => false,
    }
}

fn get_mut<'a>(v: &'a mut Value, path: &[Segment]) -> Option<&'a mut Value> {
    let mut v = v;
    for seg in path {
        while let Value::Tagged(t) = v {
            v = &mut t.value;
        }
        v = match (v, seg) {
            (Value::Mapping(m), Segment::Map { key }) => m.get_mut(key.as_str())?,
            (Value::Sequence(s), Segment::Seq { index }) => s.get_mut(*index)?,
            _ => return None,
        };
    }
    while let Value::Tagged(t) = v {
        v = &mut t.value;
    }
    Some(v)
}

fn ignored_path(p: &serde_ignored::Path) -> String {
    use serde_ignored::Path;
    match p {
        Path::Root => String::new(),
        Path::Seq { parent, index } => format!("{}[{index}]", ignored_path(parent)),
        Path::Map { parent, key } => join(&ignored_path(parent), key),
        Path::Some { parent }
        | Path::NewtypeStruct { parent }
        | Path::NewtypeVariant { parent } => ignored_path(parent),
    }
}
