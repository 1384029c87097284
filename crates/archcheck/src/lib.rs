//! `fulcrum-archcheck`: architecture checks over Fulcrum's own sources.
//!
//! It reads one crate's `src/` tree as text (no compiler, std only), builds
//! the file-level import graph and finds what the project's rules forbid:
//! * circles: two files that import each other, directly or through others
//!   ([`find_cycles`]);
//! * layering: a file under a lower folder that reaches a file under an
//!   upper one ([`forbid`]).
//!
//! The stages, each in its own module: [`strip`] blanks comments and
//! literals, [`lex`] splits into tokens, [`use_tree`] flattens `use` trees,
//! [`scan`] records modules, items, imports and paths per file, [`tree`]
//! links files into the module tree from `mod` declarations, [`resolve`]
//! follows a path (and re-exports) to the file that defines what it names,
//! [`graph`] turns all of that into edges between files. What counts as an
//! edge is documented in [`graph`].
//!
//! ```
//! use fulcrum_archcheck::{find_cycles, CrateSource, ImportGraph};
//! let src = CrateSource::from_files(
//!     "demo",
//!     &[("lib.rs", "mod a;\nmod b;\n"), ("a.rs", "use crate::b::B;\npub struct A;\n"), ("b.rs", "use super::a::A;\npub struct B;\n")],
//! );
//! let cycles = find_cycles(&ImportGraph::build(&src));
//! assert_eq!(cycles[0].chain(), "a.rs -> b.rs -> a.rs");
//! ```
//!
//! The workspace test (`tests/workspace.rs`) applies the checks to every
//! crate under `crates/`.

pub mod cycles;
pub mod graph;
pub mod layering;
pub mod lex;
pub mod resolve;
pub mod scan;
pub mod source;
pub mod strip;
pub mod tree;
pub mod use_tree;

pub use cycles::{find_cycles, Cycle};
pub use graph::{Edge, ImportGraph};
pub use layering::{forbid, Violation};
pub use source::CrateSource;
