//! The source files of one crate.
//!
//! A [`CrateSource`] holds every `.rs` file under a crate's `src/`, keyed by
//! its path relative to `src/` with `/` separators (`lib.rs`,
//! `algorithms/mod.rs`). It is read from disk by [`CrateSource::from_dir`]
//! or built from in-memory text by [`CrateSource::from_files`] (tests).

use std::collections::BTreeMap;
use std::io;
use std::path::Path;

/// The `.rs` files of one crate's `src/` tree.
#[derive(Debug, Clone, Default)]
pub struct CrateSource {
    /// A name for messages, e.g. `dataplane`.
    pub name: String,
    /// Path relative to `src/` → file text.
    pub files: BTreeMap<String, String>,
}

impl CrateSource {
    /// Builds a crate from `(path relative to src/, text)` pairs.
    pub fn from_files(name: &str, files: &[(&str, &str)]) -> Self {
        CrateSource {
            name: name.to_string(),
            files: files
                .iter()
                .map(|(p, t)| (p.to_string(), t.to_string()))
                .collect(),
        }
    }

    /// Reads every `.rs` file under `src_dir` (recursively).
    pub fn from_dir(name: &str, src_dir: &Path) -> io::Result<Self> {
        let mut files = BTreeMap::new();
        read_tree(src_dir, "", &mut files)?;
        Ok(CrateSource {
            name: name.to_string(),
            files,
        })
    }

    /// The crate roots present: `lib.rs`, `main.rs`, `bin/x.rs`,
    /// `bin/x/main.rs`.
    pub fn roots(&self) -> Vec<String> {
        self.files
            .keys()
            .filter(|p| {
                let parts: Vec<&str> = p.split('/').collect();
                matches!(
                    parts.as_slice(),
                    ["lib.rs"] | ["main.rs"] | ["bin", _] | ["bin", _, "main.rs"]
                )
            })
            .cloned()
            .collect()
    }
}

fn read_tree(dir: &Path, prefix: &str, out: &mut BTreeMap<String, String>) -> io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let rel = format!("{prefix}{name}");
        if entry.file_type()?.is_dir() {
            read_tree(&entry.path(), &format!("{rel}/"), out)?;
        } else if name.ends_with(".rs") {
            out.insert(rel, std::fs::read_to_string(entry.path())?);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::CrateSource;

    #[test]
    fn roots_are_lib_main_and_bins() {
        let c = CrateSource::from_files(
            "x",
            &[
                ("lib.rs", ""),
                ("main.rs", ""),
                ("a.rs", ""),
                ("bin/t.rs", ""),
                ("bin/u/main.rs", ""),
                ("bin/u/h.rs", ""),
            ],
        );
        assert_eq!(
            c.roots(),
            ["bin/t.rs", "bin/u/main.rs", "lib.rs", "main.rs"]
        );
    }
}
