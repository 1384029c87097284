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
mod sources;

pub use format::Format;
pub use sources::{Reloads, Sources};

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

#[cfg(test)]
mod tests {
    use super::*;
    use fulcrum_dataplane::Gateway;

    fn metrics() -> Metrics {
        let yaml = "pools: { p: { instances: [ { endpoint: \"http://127.0.0.1:1\" } ] } }\n";
        let cfg = fulcrum_config::parse(yaml, &|_| None).unwrap();
        Metrics::new(Sources {
            gateway: Gateway::new(cfg),
            registry: None,
            unrouted: Default::default(),
            reloads: Default::default(),
            access_log: None,
            redis: None,
        })
    }

    #[tokio::test]
    async fn the_classic_format_names_counters_with_total_and_has_no_eof() {
        let m = metrics();
        let om = m.render(Format::OpenMetrics);
        let text = m.render(Format::Prometheus);
        assert!(om.ends_with("# EOF\n"));
        assert!(om.contains("# TYPE fulcrum_tries counter\n"), "{om}");
        assert!(om.contains("# TYPE fulcrum_build info\n"), "{om}");
        assert!(
            !text.contains("# EOF") && !text.contains("# UNIT"),
            "{text}"
        );
        assert!(text.contains("# HELP fulcrum_tries_total "), "{text}");
        assert!(
            text.contains("# TYPE fulcrum_tries_total counter\n"),
            "{text}"
        );
        assert!(
            text.contains("fulcrum_tries_total{pool=\"p\",instance=\"http://127.0.0.1:1\"} 0\n"),
            "{text}"
        );
        assert!(text.contains("# TYPE fulcrum_build_info gauge\n"), "{text}");
        // The same counter and gauge samples in both (histograms differ
        // in line order and in how `le` is written).
        let samples = |s: &str| -> Vec<String> {
            s.lines()
                .filter(|l| !l.starts_with('#') && !l.contains("_seconds_"))
                .map(String::from)
                .collect()
        };
        assert_eq!(samples(&om), samples(&text));
    }

    #[tokio::test]
    async fn histograms_have_every_bucket_for_every_pool_and_for_no_pool() {
        let m = metrics();
        let text = m.render(Format::Prometheus);
        let line = |needle: &str| {
            text.lines()
                .find(|l| l.starts_with(needle))
                .unwrap_or_else(|| panic!("{needle} in {text}"))
                .to_string()
        };
        assert_eq!(
            line("fulcrum_request_duration_seconds_bucket{pool=\"p\",le=\"+Inf\"}"),
            "fulcrum_request_duration_seconds_bucket{pool=\"p\",le=\"+Inf\"} 0"
        );
        line("fulcrum_request_duration_seconds_bucket{pool=\"p\",le=\"0.005\"}");
        line("fulcrum_request_duration_seconds_bucket{pool=\"p\",le=\"60\"}");
        line("fulcrum_request_duration_seconds_count{pool=\"-\"}");
    }
}
