//! Gives the metrics' build info its commit: `FULCRUM_COMMIT` when set
//! (a build outside git), else `git rev-parse --short HEAD`, else
//! `unknown`. Reruns only when HEAD or the branch it points at moves, so
//! an ordinary build does not rebuild this crate.

use std::path::PathBuf;
use std::process::Command;

fn git(args: &[&str]) -> Option<String> {
    let out = Command::new("git").args(args).output().ok()?;
    if !out.status.success() {
        return None;
    }
    let s = String::from_utf8(out.stdout).ok()?.trim().to_string();
    (!s.is_empty()).then_some(s)
}

fn main() {
    println!("cargo:rerun-if-env-changed=FULCRUM_COMMIT");
    println!("cargo:rerun-if-changed=build.rs");
    let commit = std::env::var("FULCRUM_COMMIT")
        .ok()
        .filter(|c| !c.is_empty())
        .or_else(|| git(&["rev-parse", "--short", "HEAD"]))
        .unwrap_or_else(|| "unknown".into());
    println!("cargo:rustc-env=FULCRUM_COMMIT={commit}");
    // HEAD itself (a checkout), and the branch file it names (a commit).
    if let Some(dir) = git(&["rev-parse", "--absolute-git-dir"]) {
        let head = PathBuf::from(&dir).join("HEAD");
        println!("cargo:rerun-if-changed={}", head.display());
        if let (Ok(text), Some(common)) = (
            std::fs::read_to_string(&head),
            git(&["rev-parse", "--path-format=absolute", "--git-common-dir"]),
        ) {
            if let Some(r) = text.trim().strip_prefix("ref: ") {
                let common = PathBuf::from(common);
                // Only files that exist: a missing one would rerun every build.
                for f in [common.join(r), common.join("packed-refs")] {
                    if f.exists() {
                        println!("cargo:rerun-if-changed={}", f.display());
                    }
                }
            }
        }
    }
}
