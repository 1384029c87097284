//! Shared test helpers: a unique, self-cleaning directory per test.

#![allow(dead_code)]

use std::path::{Path, PathBuf};

/// `temp_dir()/fulcrum-store-<pid>-<name>`, emptied on creation and removed
/// on drop (also when the test panics).
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new(name: &str) -> TempDir {
        let path =
            std::env::temp_dir().join(format!("fulcrum-store-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).expect("create test dir");
        TempDir(path)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
