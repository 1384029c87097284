//! What feeds the [`Publisher`](super::publisher::Publisher): each source
//! of instances and settings — the config file, the service registry,
//! operator overrides, and later dynamic weights and state shared through
//! Redis — contributes its part to one [`Desired`] state, in order. A
//! source that changed asks the publisher to publish again; the publisher
//! then asks every source for its current part, so nothing is applied out
//! of order and a missed change is repaired by the next one (the shape of
//! pingora's background updater rather than a stream of deltas: a
//! registry of a few thousand instances is cheap to merge whole, and a
//! merge cannot drift).

use fulcrum_config::Config;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

/// What an operator set on an instance through the admin API.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Override {
    /// Replaces the configured weight in every pool; `None` = configured.
    pub weight: Option<u32>,
    /// No new requests while set (in-flight ones finish).
    pub drained: bool,
}

/// What the gateway should serve: the configuration with every pool and
/// instance, and the operator overrides by endpoint.
#[derive(Debug, Clone)]
pub struct Desired {
    pub config: Config,
    pub overrides: HashMap<String, Override>,
}

/// One source of the desired state.
pub trait Source: Send + Sync {
    /// Adds this source's part to `desired` (sources run in the order
    /// they were given to the publisher; the config file comes first).
    fn contribute(&self, desired: &mut Desired);
}
