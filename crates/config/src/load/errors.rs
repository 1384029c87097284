//! Config errors with their YAML paths, and [`Errors`], the collector
//! every section reports into (a leaf: it imports no other part of `load`).

use serde::de::DeserializeOwned;
use serde_yaml_ng::Value;
use std::fmt;

/// One problem in a config file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// YAML path such as `pools.asr.instances[0].weight`; empty for the whole file.
    pub path: String,
    pub message: String,
}

impl ConfigError {
    /// A problem of the whole file (no YAML path).
    pub(crate) fn whole_file(message: String) -> Self {
        Self {
            path: String::new(),
            message,
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

/// The errors found so far; validation goes on after each one.
#[derive(Default)]
pub(super) struct Errors(Vec<ConfigError>);

impl Errors {
    pub(super) fn push(&mut self, path: &str, message: String) {
        self.0.push(ConfigError {
            path: path.to_string(),
            message,
        });
    }

    /// `Ok` when nothing was found, else every error in the order found.
    pub(super) fn into_result(self) -> Result<(), ConfigErrors> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(ConfigErrors(self.0))
        }
    }

    /// Deserializes one section, recording its type errors and unknown keys.
    pub(super) fn section<T: DeserializeOwned>(&mut self, v: Value, path: &str) -> Option<T> {
        let mut unknown = vec![];
        let mut record = |p: serde_ignored::Path| unknown.push(ignored_path(&p));
        let de = serde_ignored::Deserializer::new(v, &mut record);
        let res: Result<T, _> = serde_path_to_error::deserialize(de);
        for u in unknown {
            self.push(&join(path, &u), "unknown key".into());
        }
        match res {
            Ok(t) => Some(t),
            Err(e) => {
                let inner = e.path().to_string();
                let inner = if inner == "." { String::new() } else { inner };
                self.push(&join(path, &inner), e.into_inner().to_string());
                None
            }
        }
    }
}

/// `base` and a path inside it: `a` + `b` → `a.b`, `a` + `[0]` → `a[0]`.
fn join(base: &str, rest: &str) -> String {
    match (base.is_empty(), rest.is_empty()) {
        (_, true) => base.to_string(),
        (true, false) => rest.to_string(),
        (false, false) if rest.starts_with('[') => format!("{base}{rest}"),
        _ => format!("{base}.{rest}"),
    }
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
