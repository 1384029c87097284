//! The project's architecture rules, checked on the real sources.
//!
//! * No two source files of any crate import each other, directly or
//!   through others (see `fulcrum_archcheck::graph` for what counts as an
//!   import). Every circle of every crate is printed, each import with its
//!   line, before the test fails.
//! * The dataplane's request path reads one way: `proxy/` calls down into
//!   `runtime/`, `upstream/`, `cache/` and `http/`, never the reverse.

use fulcrum_archcheck::{find_cycles, forbid, CrateSource, ImportGraph};
use std::path::{Path, PathBuf};

/// `crates/` of the workspace (this crate is `crates/archcheck`).
fn crates_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("crates/archcheck has a parent")
        .to_path_buf()
}

/// Every crate under `crates/*` with a `src/` folder, by folder name.
fn workspace_crates() -> Vec<(String, PathBuf)> {
    let mut out: Vec<(String, PathBuf)> = std::fs::read_dir(crates_dir())
        .expect("read crates/")
        .map(|e| e.expect("read crates/ entry").path())
        .filter(|p| p.join("Cargo.toml").is_file() && p.join("src").is_dir())
        .map(|p| {
            (
                p.file_name().unwrap().to_string_lossy().into_owned(),
                p.join("src"),
            )
        })
        .collect();
    out.sort();
    out
}

fn graph(name: &str, src: &Path) -> ImportGraph {
    let source =
        CrateSource::from_dir(name, src).unwrap_or_else(|e| panic!("read {}: {e}", src.display()));
    ImportGraph::build(&source)
}

#[test]
fn no_import_cycles_in_any_crate() {
    let crates = workspace_crates();
    assert!(
        crates.len() >= 8,
        "found only {crates:?} under {}",
        crates_dir().display()
    );
    let mut report = String::new();
    let mut count = 0;
    for (name, src) in &crates {
        let g = graph(name, src);
        for f in &g.unreached {
            eprintln!(
                "note: crates/{name}/src/{f} is declared by no module (not compiled), not checked"
            );
        }
        let cycles = find_cycles(&g);
        if cycles.is_empty() {
            continue;
        }
        count += cycles.len();
        report.push_str(&format!(
            "\ncrate `{name}` (paths under crates/{name}/src/): {} cycle(s)\n",
            cycles.len()
        ));
        for c in cycles {
            report.push_str(&format!("  {c}"));
        }
    }
    assert!(
        report.is_empty(),
        "{count} import cycle(s) between source files; break one import of each:\n{report}"
    );
}

#[test]
fn dataplane_request_path_reads_one_way() {
    let src = crates_dir().join("dataplane/src");
    let upper = "proxy/";
    let lower = ["runtime/", "upstream/", "cache/", "http/"];
    // The dataplane is being moved from flat files into these folders. A
    // folder that does not exist yet is simply not checked (nothing can be
    // under it); the rule applies to each one as soon as it appears, and to
    // none while `proxy/` itself does not exist.
    if !src.join(upper).is_dir() {
        return;
    }
    let g = graph("dataplane", &src);
    let mut report = String::new();
    for from in lower.iter().filter(|l| src.join(l).is_dir()) {
        for v in forbid(&g, from, upper) {
            report.push_str(&format!("  {v}"));
        }
    }
    assert!(
        report.is_empty(),
        "files under {lower:?} of crates/dataplane/src must not import files under `{upper}`, directly or through others:\n{report}"
    );
}
