//! # fulcrum-sim — Fulcrum's balancing algorithms in virtual time
//!
//! A discrete-event simulator that drives the real balancing code of
//! [`fulcrum_policy`] (the same `build` / `select` / `Balancer` the data
//! plane calls per request) against modelled instances, with no sockets, no
//! threads and no real sleeps. Time is virtual (integer microseconds), the
//! randomness is seeded, so a run is deterministic: the same inputs give the
//! same [`Report`], bit for bit. A minute of traffic takes milliseconds.
//!
//! Why: the algorithms' unit tests check one pick at a time; whether an
//! algorithm *works* — keeps tail latency low when one instance degrades,
//! respects `max_concurrent`, spills across priority tiers, keeps hash keys
//! in place — only shows over thousands of requests with feedback (a slow
//! instance holds its requests longer, which changes the next picks). The
//! simulator makes that feedback loop cheap, exact and repeatable for tests
//! and for comparing algorithms side by side (the `fulcrum-sim` binary).
//!
//! * [`model`] — what is simulated: [`InstanceModel`] (latency, capacity,
//!   errors, outages) and [`Workload`] (closed-loop clients, keys, the
//!   gateway's admission queue).
//! * [`engine`] — the event loop: [`run`], and [`run_with`] to observe each
//!   routing decision.
//! * [`decider`] — [`Decider`], the gateway's side, one step at a time:
//!   every routing decision of the engine, made through the policy's view
//!   ([`fulcrum_policy::view`]) like the data plane's, and what the gateway
//!   learns from each completion and probe; `instance.rs` is what that view
//!   reads of each simulated instance. Driven by hand, it replays a
//!   sequence of events through the simulator's decisions (the data
//!   plane's `same_picks` test compares them with the data plane's).
//! * `classes.rs` — request classes ([`ClassMix`], [`Workload::classes`]):
//!   the admission queue served by class, `batch` shed first, and
//!   `queue.reserve`, as the data plane's queue does.
//! * `dynamic.rs` — the dynamic-weights task in virtual time (the
//!   policy's controller every interval, [`Workload::dynamic_weights`]).
//! * [`report`] — [`Report`]: shares, failures, latency percentiles, queue
//!   statistics, and Markdown rendering.
//! * [`scenarios`] — the named scenarios the binary compares algorithms on.
//!
//! ```
//! use fulcrum_policy::Algorithm;
//! use fulcrum_sim::{run, InstanceModel, LatencyModel, Stop, Workload};
//!
//! let pool = [
//!     InstanceModel::new("a", LatencyModel::Fixed(10.0)).capacity(4),
//!     InstanceModel::new("b", LatencyModel::Fixed(200.0)).capacity(4),
//! ];
//! let work = Workload::new(8, Stop::AfterMs(10_000));
//! let r = run(Algorithm::ResponseTime, &pool, &work);
//! assert!(r.instance("a").unwrap().share > 0.9);
//! assert_eq!(r, run(Algorithm::ResponseTime, &pool, &work)); // deterministic
//! ```
//!
//! What is *not* modelled by [`run`] (see `docs/SIMULATION.md`): the
//! network, retries, active health checks and passive ejection (an outage
//! is given explicitly with `down_between`), slow start, and several
//! gateway replicas. A [`Decider`] driven by hand takes exclusions (a
//! retry's tried instances), probe results, a pool's `slow_start` and
//! `panic`, and its `passive` ejection (failures, the
//! `max_ejection_percent` cap, probes ending an ejection, ejected
//! instances tried when nothing else is up).

mod classes;
pub mod decider;
mod dynamic;
pub mod engine;
mod instance;
mod limits;
pub mod model;
pub mod report;
pub mod scenarios;

pub use decider::Decider;
pub use engine::{run, run_with, Dispatch};
pub use model::{ClassMix, ClientClass, InstanceModel, LatencyModel, Stop, Workload};
pub use report::{ClassReport, InstanceReport, Latency, QueueReport, Report};
