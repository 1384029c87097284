//! `GET /metrics` on the admin listener: Prometheus metrics of the whole
//! gateway (docs/METRICS.md lists every one).
//!
//! Nothing here runs on the request path. Per-request counting is the
//! data plane's (`observe::Counting` and the relaxed atomics of
//! `runtime::counters`); everything is read at scrape time by custom
//! collectors of the official Prometheus client (`prometheus-client`):
//! [`traffic`] (requests, tries, retries, picks, queues, latency
//! histograms), [`instances`] (health, load, weights, shares, caches) and
//! [`control`] (registry, reloads, build info). [`format`] chooses
//! OpenMetrics or the classic text format from the `Accept` header.

pub mod control;
pub mod format;
pub mod instances;
pub mod traffic;

mod encode;

pub use control::Reloads;
pub use format::Format;

use crate::registry::Registry;
use fulcrum_dataplane::runtime::counters::PoolCounters;
use fulcrum_dataplane::Gateway;
use std::sync::Arc;

/// What the collectors read.
#[derive(Debug, Clone)]
pub struct Sources {
    pub gateway: Arc<Gateway>,
    /// The service registry, when `registry.enabled`.
    pub registry: Option<Arc<Registry>>,
    /// Requests that reached no pool (`observe::Counting::unrouted`).
    pub unrouted: Arc<PoolCounters>,
    /// Config reloads, counted by the reload path.
    pub reloads: Arc<Reloads>,
}

/// The metrics registry: built once, encoded on every scrape.
#[derive(Debug)]
pub struct Metrics {
    registry: prometheus_client::registry::Registry,
}

impl Metrics {
    pub fn new(sources: Sources) -> Self {
        let mut registry = prometheus_client::registry::Registry::default();
        registry.register_collector(Box::new(traffic::Traffic(sources.clone())));
        registry.register_collector(Box::new(instances::Instances(sources.clone())));
        registry.register_collector(Box::new(control::Control(sources)));
        Self { registry }
    }

    /// Every metric, in `format`.
    pub fn render(&self, format: Format) -> String {
        let mut out = String::with_capacity(16 * 1024);
        let res = match format {
            Format::OpenMetrics => {
                prometheus_client::encoding::text::encode(&mut out, &self.registry)
            }
            Format::Prometheus => {
                prometheus_client::encoding::prometheus_text::encode(&mut out, &self.registry)
            }
        };
        // Writing to a String cannot fail; an encoder error would be a bug
        // in a collector (say, a label set it refuses).
        if let Err(e) = res {
            tracing::error!(error = %e, "encoding /metrics failed");
        }
        out
    }
}
