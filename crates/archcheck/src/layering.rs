//! Layering rules: which folders may not reach which.
//!
//! [`forbid`] fails a rule such as "nothing under `runtime/` imports
//! anything under `proxy/`": for each file under the lower folder that
//! reaches a file under the upper one, directly or through other files, it
//! returns the shortest such chain of imports, each with its example line.

use crate::cycles::shortest_path;
use crate::graph::{Edge, ImportGraph};
use std::collections::BTreeSet;

/// A file under `from_prefix` that reaches a file under `to_prefix`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    /// The imports, from the offending file to the first forbidden file.
    pub chain: Vec<Edge>,
}

impl std::fmt::Display for Violation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let files: Vec<&str> = self.chain.iter().map(|e| e.from.as_str()).collect();
        let last = self.chain.last().map_or("", |e| e.to.as_str());
        writeln!(f, "{} -> {}", files.join(" -> "), last)?;
        for e in &self.chain {
            writeln!(
                f,
                "    {} -> {}: line {}: {}   [{}]",
                e.from, e.to, e.line, e.code, e.via
            )?;
        }
        Ok(())
    }
}

/// Files under `from_prefix` (paths relative to `src/`, e.g. `runtime/`)
/// that import a file under `to_prefix` (e.g. `proxy/`), directly or
/// through others; one shortest chain per offending file.
pub fn forbid(g: &ImportGraph, from_prefix: &str, to_prefix: &str) -> Vec<Violation> {
    let all: BTreeSet<usize> = (0..g.files.len()).collect();
    let targets: Vec<usize> = (0..g.files.len())
        .filter(|&f| g.files[f].starts_with(to_prefix))
        .collect();
    let mut out = Vec::new();
    for from in (0..g.files.len()).filter(|&f| g.files[f].starts_with(from_prefix)) {
        let best = targets
            .iter()
            .filter(|&&t| t != from)
            .filter_map(|&t| shortest_path(g, from, t, &all))
            // A chain through another forbidden file is reported by its first.
            .filter(|p| p[1..p.len() - 1].iter().all(|n| !targets.contains(n)))
            .min_by_key(Vec::len);
        if let Some(path) = best {
            let chain = path
                .windows(2)
                .filter_map(|w| g.edge_at(w[0], w[1]).cloned())
                .collect();
            out.push(Violation { chain });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::forbid;
    use crate::graph::ImportGraph;
    use crate::source::CrateSource;

    #[test]
    fn lower_layer_reaching_upper_is_reported_with_its_chain() {
        let g = ImportGraph::build(&CrateSource::from_files(
            "t",
            &[
                ("lib.rs", "mod proxy;\nmod runtime;\nmod http;\npub struct Gateway;\nfn f() { proxy::h() }\n"),
                ("proxy/mod.rs", "mod handle;\npub use handle::h;\n"),
                ("proxy/handle.rs", "use crate::runtime::state::S;\npub fn h() {}\n"),
                ("runtime/mod.rs", "pub mod state;\n"),
                ("runtime/state.rs", "pub struct S;\nfn g() { crate::Gateway; }\n"),
                ("http/mod.rs", "use crate::proxy::h;\n"),
            ],
        ));
        assert!(
            forbid(&g, "proxy/", "runtime/").len() == 1,
            "the rule is one way: checked separately for each direction"
        );
        let v = forbid(&g, "runtime/", "proxy/");
        assert_eq!(v.len(), 1, "{v:?}");
        let chain: Vec<&str> = v[0].chain.iter().map(|e| e.to.as_str()).collect();
        assert_eq!(chain, ["lib.rs", "proxy/handle.rs"]);
        let v = forbid(&g, "http/", "proxy/");
        assert_eq!(v[0].chain.len(), 1);
        assert_eq!(v[0].chain[0].from, "http/mod.rs");
        assert!(
            forbid(&g, "cache/", "proxy/").is_empty(),
            "no such folder: nothing to check"
        );
    }
}
