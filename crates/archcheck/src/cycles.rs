//! Circles in the import graph.
//!
//! Files that import each other, directly or through others, form a
//! strongly connected component of the graph (found with Tarjan's
//! algorithm). Within each component every edge lies on some circle;
//! [`find_cycles`] reports, for each edge not yet shown, the shortest circle
//! through it, so that every import taking part in a circle appears in the
//! report at least once, each with its example line: that is the list of
//! what to break.

use crate::graph::{Edge, ImportGraph};
use std::collections::{BTreeSet, VecDeque};

/// One circle of imports: `files[0] → files[1] → … → files[0]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cycle {
    /// The files in order, starting with the smallest path.
    pub files: Vec<String>,
    /// `edges[i]` goes from `files[i]` to the next file (wrapping around).
    pub edges: Vec<Edge>,
}

impl Cycle {
    /// `a.rs -> b.rs -> a.rs`.
    pub fn chain(&self) -> String {
        let mut s = self.files.join(" -> ");
        s.push_str(" -> ");
        s.push_str(&self.files[0]);
        s
    }
}

impl std::fmt::Display for Cycle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "{}", self.chain())?;
        for e in &self.edges {
            writeln!(
                f,
                "    {} -> {}: line {}: {}   [{}]",
                e.from, e.to, e.line, e.code, e.via
            )?;
        }
        Ok(())
    }
}

/// Every circle needed to show each import that takes part in one.
/// Sorted by length, then by files.
pub fn find_cycles(g: &ImportGraph) -> Vec<Cycle> {
    let mut found: BTreeSet<(usize, Vec<usize>)> = BTreeSet::new();
    for comp in components(g).into_iter().filter(|c| c.len() > 1) {
        let members: BTreeSet<usize> = comp.iter().copied().collect();
        let mut covered: BTreeSet<(usize, usize)> = BTreeSet::new();
        for &from in &members {
            for to in g.successors(from).filter(|t| members.contains(t)) {
                if covered.contains(&(from, to)) {
                    continue;
                }
                let Some(back) = shortest_path(g, to, from, &members) else {
                    continue;
                };
                let mut nodes = vec![from];
                nodes.extend(&back[..back.len() - 1]);
                for i in 0..nodes.len() {
                    covered.insert((nodes[i], nodes[(i + 1) % nodes.len()]));
                }
                let start = (0..nodes.len()).min_by_key(|&i| nodes[i]).unwrap_or(0);
                nodes.rotate_left(start);
                found.insert((nodes.len(), nodes));
            }
        }
    }
    found
        .into_iter()
        .map(|(_, nodes)| Cycle {
            files: nodes.iter().map(|&n| g.files[n].clone()).collect(),
            edges: (0..nodes.len())
                .filter_map(|i| g.edge_at(nodes[i], nodes[(i + 1) % nodes.len()]).cloned())
                .collect(),
        })
        .collect()
}

/// The files of each strongly connected component (Tarjan).
pub fn components(g: &ImportGraph) -> Vec<Vec<usize>> {
    struct State {
        index: Vec<Option<usize>>,
        low: Vec<usize>,
        on_stack: Vec<bool>,
        stack: Vec<usize>,
        next: usize,
        out: Vec<Vec<usize>>,
    }
    fn visit(g: &ImportGraph, v: usize, s: &mut State) {
        s.index[v] = Some(s.next);
        s.low[v] = s.next;
        s.next += 1;
        s.stack.push(v);
        s.on_stack[v] = true;
        for w in g.successors(v) {
            match s.index[w] {
                None => {
                    visit(g, w, s);
                    s.low[v] = s.low[v].min(s.low[w]);
                }
                Some(iw) if s.on_stack[w] => s.low[v] = s.low[v].min(iw),
                Some(_) => {}
            }
        }
        if Some(s.low[v]) == s.index[v] {
            let mut comp = Vec::new();
            while let Some(w) = s.stack.pop() {
                s.on_stack[w] = false;
                comp.push(w);
                if w == v {
                    break;
                }
            }
            comp.sort_unstable();
            s.out.push(comp);
        }
    }
    let n = g.files.len();
    let mut s = State {
        index: vec![None; n],
        low: vec![0; n],
        on_stack: vec![false; n],
        stack: Vec::new(),
        next: 0,
        out: Vec::new(),
    };
    for v in 0..n {
        if s.index[v].is_none() {
            visit(g, v, &mut s);
        }
    }
    s.out.sort();
    s.out
}

/// Shortest path `from → … → to` through `allowed` files (both ends
/// included), by breadth-first search.
pub fn shortest_path(
    g: &ImportGraph,
    from: usize,
    to: usize,
    allowed: &BTreeSet<usize>,
) -> Option<Vec<usize>> {
    let mut prev: Vec<Option<usize>> = vec![None; g.files.len()];
    let mut seen = vec![false; g.files.len()];
    let mut queue = VecDeque::from([from]);
    seen[from] = true;
    while let Some(v) = queue.pop_front() {
        if v == to {
            let mut path = vec![to];
            let mut cur = to;
            while let Some(p) = prev[cur] {
                path.push(p);
                cur = p;
            }
            path.reverse();
            return Some(path);
        }
        for w in g.successors(v) {
            if !seen[w] && allowed.contains(&w) {
                seen[w] = true;
                prev[w] = Some(v);
                queue.push_back(w);
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::find_cycles;
    use crate::graph::ImportGraph;
    use crate::source::CrateSource;

    fn chains(files: &[(&str, &str)]) -> Vec<String> {
        find_cycles(&ImportGraph::build(&CrateSource::from_files("t", files)))
            .iter()
            .map(|c| c.chain())
            .collect()
    }

    #[test]
    fn three_file_cycle_is_found_with_examples() {
        let files = [
            ("lib.rs", "mod a;\nmod b;\nmod c;\nmod leaf;\n"),
            ("a.rs", "use crate::b::B;\nuse crate::leaf::L;\n"),
            ("b.rs", "pub struct B;\nfn f() { crate::c::g() }\n"),
            ("c.rs", "pub fn g() {}\n\nfn h() { let _ = super::a::A; }\n"),
            ("leaf.rs", "pub struct L;"),
        ];
        let cycles = find_cycles(&ImportGraph::build(&CrateSource::from_files("t", &files)));
        assert_eq!(cycles.len(), 1);
        assert_eq!(cycles[0].chain(), "a.rs -> b.rs -> c.rs -> a.rs");
        let lines: Vec<usize> = cycles[0].edges.iter().map(|e| e.line).collect();
        assert_eq!(lines, [1, 2, 3]);
        let text = cycles[0].to_string();
        assert!(
            text.contains("c.rs -> a.rs: line 3: fn h() { let _ = super::a::A; }"),
            "{text}"
        );
    }

    #[test]
    fn module_that_only_re_exports_is_not_a_cycle() {
        let files = [
            ("lib.rs", "mod algorithms;\n"),
            (
                "algorithms/mod.rs",
                "mod rr;\nmod random;\npub use rr::RoundRobin;\npub use random::*;\npub trait Balancer {}\n\
                 /// Builds a [`RoundRobin`].\npub fn names() -> &'static str { \"RoundRobin\" }\n",
            ),
            ("algorithms/rr.rs", "use super::Balancer;\npub struct RoundRobin;\n"),
            ("algorithms/random.rs", "use super::{Balancer, RoundRobin};\npub struct Random;\n"),
        ];
        assert!(chains(&files).is_empty(), "{:?}", chains(&files));
    }

    #[test]
    fn module_that_uses_a_child_which_uses_it_is_a_cycle() {
        let files = [
            ("lib.rs", "mod algorithms;\n"),
            (
                "algorithms/mod.rs",
                "mod rr;\nmod random;\npub use rr::RoundRobin;\npub use random::*;\npub trait Balancer {}\n\
                 pub fn build() -> Box<dyn Balancer> { Box::new(Random) }\n",
            ),
            ("algorithms/rr.rs", "use super::Balancer;\npub struct RoundRobin;\n"),
            ("algorithms/random.rs", "use super::Balancer;\npub struct Random;\n"),
        ];
        assert_eq!(
            chains(&files),
            ["algorithms/mod.rs -> algorithms/random.rs -> algorithms/mod.rs"]
        );
    }

    #[test]
    fn every_edge_of_a_tangle_is_shown() {
        let files = [
            ("lib.rs", "mod a;\nmod b;\nmod c;\n"),
            ("a.rs", "use crate::b::X;\nuse crate::c::Y;\n"),
            ("b.rs", "use crate::a::Z;\n"),
            ("c.rs", "use crate::a::Z;\n"),
        ];
        assert_eq!(
            chains(&files),
            ["a.rs -> b.rs -> a.rs", "a.rs -> c.rs -> a.rs"]
        );
    }
}
