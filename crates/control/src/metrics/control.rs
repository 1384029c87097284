//! The control plane's own numbers: the service registry, config reloads,
//! and the build.

use super::encode::{counter, counter1, gauge1};
use super::sources::Sources;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::DescriptorEncoder;
use prometheus_client::metrics::MetricType;
use std::fmt::Error;
use std::sync::atomic::Ordering::Relaxed;

pub use crate::version::COMMIT;

#[derive(Debug)]
pub struct Control(pub Sources);

impl Collector for Control {
    fn encode(&self, mut enc: DescriptorEncoder<'_>) -> Result<(), Error> {
        let (reg, c) = match &self.0.registry {
            Some(r) => {
                let c = &r.counters;
                let n = [&c.registrations, &c.heartbeats, &c.expiries].map(|a| a.load(Relaxed));
                (r.len(), n)
            }
            None => (0, [0; 3]),
        };
        gauge1(
            &mut enc,
            "fulcrum_registry_instances",
            "Registrations the service registry holds now (0 without a registry).",
            reg as f64,
        )?;
        let rows: [(&str, &str, u64); 3] = [
            (
                "fulcrum_registry_registrations",
                "Registrations accepted.",
                c[0],
            ),
            ("fulcrum_registry_heartbeats", "Heartbeats accepted.", c[1]),
            (
                "fulcrum_registry_expiries",
                "Registrations removed for want of a heartbeat.",
                c[2],
            ),
        ];
        for (name, help, v) in rows {
            counter1(&mut enc, name, help, v)?;
        }
        let r = &self.0.reloads;
        let (ok, failed) = r.read();
        counter(
            &mut enc,
            "fulcrum_config_reloads",
            "Config reloads (SIGHUP): applied (ok) or refused, the running config kept (failed).",
            [([("result", "ok")], ok), ([("result", "failed")], failed)],
        )?;
        if let Some(a) = &self.0.access_log {
            counter1(
                &mut enc,
                "fulcrum_access_log_lines",
                "Access log lines written.",
                a.written(),
            )?;
            counter1(
                &mut enc,
                "fulcrum_access_log_dropped",
                "Access log lines dropped: the writer's queue was full (the log's file or pipe too slow) or the write failed. Requests never wait for the log.",
                a.dropped(),
            )?;
        }
        if let Some(r) = &self.0.redis {
            gauge1(
                &mut enc,
                "fulcrum_redis_up",
                "1 while the shared registry's Redis answers (registry.store: redis), 0 while this replica serves from what it knows.",
                if r.up() { 1.0 } else { 0.0 },
            )?;
            counter1(
                &mut enc,
                "fulcrum_redis_outages",
                "Times this replica lost Redis (registry.store: redis).",
                r.outages(),
            )?;
        }
        let mut m = enc.encode_descriptor(
            "fulcrum_build",
            "The running build: version and commit.",
            None,
            MetricType::Info,
        )?;
        m.encode_info(&[("version", env!("CARGO_PKG_VERSION")), ("commit", COMMIT)])
    }
}
