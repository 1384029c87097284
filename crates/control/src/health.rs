//! Active health probes: one task per instance, probing on the pool's
//! `health_check` interval (randomly shifted by `jitter` so a fleet is not
//! probed in lock-step), with a timeout, through the hysteresis in
//! [`fulcrum_policy::health`]. `GET path` is healthy on 2xx/3xx; `tcp`
//! only connects. Flips are logged and counted.
//!
//! A passing probe also ends a running passive ejection (Envoy's
//! `successful_active_health_check_uneject_host`; logged). An ejected
//! instance is probed at the fast interval, and its prober is woken when
//! the ejection starts, so an instance that failed a few requests while it
//! restarted is back as soon as a probe finds it answering — not after
//! `fail_timeout` (issue #11).
//!
//! Probers follow the published snapshot: [`HealthChecker::sync`] starts
//! probers for new endpoints and stops those of removed ones.

use fulcrum_config::{HealthCheck, Probe};
use fulcrum_dataplane::instance::InstanceState;
use fulcrum_dataplane::runtime::events::EventKind;
use fulcrum_dataplane::upstream::error::TryError;
use fulcrum_dataplane::upstream::send::{send_fresh, Deadlines};
use fulcrum_dataplane::Gateway;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::task::JoinHandle;

#[derive(Debug, Default)]
pub struct HealthChecker {
    tasks: Mutex<HashMap<String, JoinHandle<()>>>,
}

impl HealthChecker {
    /// Starts probers for every instance of the gateway's current snapshot.
    pub fn start(gw: &Arc<Gateway>) -> Arc<Self> {
        let hc = Arc::new(Self::default());
        hc.sync(gw);
        hc
    }

    /// Aligns the running probers with the current snapshot.
    pub fn sync(&self, gw: &Arc<Gateway>) {
        let snap = gw.snapshot();
        let mut tasks = self.tasks.lock().unwrap_or_else(|e| e.into_inner());
        tasks.retain(|url, t| {
            let keep = snap.instances.contains_key(url);
            if !keep {
                t.abort();
            }
            keep
        });
        for (url, inst) in &snap.instances {
            if !tasks.contains_key(url) {
                tasks.insert(
                    url.clone(),
                    tokio::spawn(probe_loop(gw.clone(), inst.clone())),
                );
            }
        }
    }
}

impl Drop for HealthChecker {
    fn drop(&mut self) {
        for t in self
            .tasks
            .get_mut()
            .unwrap_or_else(|e| e.into_inner())
            .values()
        {
            t.abort();
        }
    }
}

/// The check settings for an instance: those of the first pool it is in,
/// with the instance's own `health_path` if it has one (`tcp` = connect only).
fn settings(gw: &Gateway, url: &str) -> Option<HealthCheck> {
    let snap = gw.snapshot();
    // A lookup, not a scan of every pool: probes run often, and a large
    // registry has many pools.
    snap.first_member(url).and_then(|(p, i)| {
        let mut hc = p.cfg.health_check.clone();
        match (p.cfg.instances.get(i)?.health_path.as_deref(), &hc.probe) {
            // A registered service that named no health route is probed by
            // connecting only: the platform's services need not have one.
            (Some("tcp"), _) => hc.probe = Probe::Tcp,
            (Some(path), Probe::Http { .. }) => {
                hc.probe = Probe::Http {
                    path: path.to_string(),
                }
            }
            _ => {}
        }
        Some(hc)
    })
}

async fn probe_loop(gw: Arc<Gateway>, inst: Arc<InstanceState>) {
    let mut first = true;
    loop {
        let Some(hc) = settings(&gw, &inst.endpoint.url) else {
            return;
        };
        let wait = if first {
            hc.interval.mul_f64(hc.jitter * gw.rng.f64())
        } else if inst.probe_settled(gw.clock.now_ms()) {
            jittered(hc.interval, hc.jitter, gw.rng.f64())
        } else {
            // Down or between states: look again sooner.
            jittered(hc.fast_interval, hc.jitter, gw.rng.f64())
        };
        first = false;
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            // Just ejected: plan again, at the fast interval.
            _ = inst.ejected.notified() => continue,
        }
        let result = tokio::time::timeout(hc.timeout, check(&inst, &hc.probe, hc.timeout)).await;
        let (ok, why) = match result {
            Ok(Ok(())) => (true, String::new()),
            Ok(Err(ProbeError {
                detail,
                local: true,
            })) => {
                // The gateway is out of descriptors or ports: this says
                // nothing about the instance, so its state is left alone.
                tracing::warn!(instance = %inst.endpoint.url, reason = %detail, "probe skipped");
                continue;
            }
            Ok(Err(e)) => (false, e.detail),
            Err(_) => (false, format!("no answer within {:?}", hc.timeout)),
        };
        let probed = inst.observe_probe(
            ok,
            hc.failure_threshold,
            hc.recovery_threshold,
            gw.clock.now_ms(),
        );
        if let Some(left) = probed.ended_ejection_ms {
            tracing::info!(instance = %inst.endpoint.url, cut_short_ms = left,
                "passive ejection ended: the instance passed a probe");
        }
        let event = |kind, message: String| {
            gw.events.push(
                gw.clock.unix_ms(),
                kind,
                Some(&inst.endpoint.url),
                None,
                &message,
            )
        };
        match probed.flip {
            Some(true) => {
                tracing::info!(instance = %inst.endpoint.url, "instance is up: passed {} probes", hc.recovery_threshold);
                event(
                    EventKind::HealthUp,
                    format!("up: passed {} probes", hc.recovery_threshold),
                );
            }
            Some(false) => {
                tracing::warn!(instance = %inst.endpoint.url, reason = %why, "instance is down: failed {} probes", hc.failure_threshold);
                event(
                    EventKind::HealthDown,
                    format!("down: failed {} probes ({why})", hc.failure_threshold),
                );
            }
            None if !ok => {
                tracing::debug!(instance = %inst.endpoint.url, reason = %why, "probe failed")
            }
            None => {}
        }
    }
}

/// `interval` shifted by up to ±`jitter` of itself; `u` is uniform in 0..1.
fn jittered(interval: Duration, jitter: f64, u: f64) -> Duration {
    let f = 1.0 + jitter * (2.0 * u - 1.0);
    interval.mul_f64(f.max(0.0))
}

/// One probe. `Err` carries the reason for the log.
pub async fn probe(inst: &InstanceState, probe: &Probe) -> Result<(), String> {
    let wait = Duration::from_secs(10);
    match tokio::time::timeout(wait, check(inst, probe, wait)).await {
        Ok(r) => r.map_err(|e| e.detail),
        Err(_) => Err(format!("no answer within {wait:?}")),
    }
}

type ProbeError = fulcrum_dataplane::upstream::dial::DialError;

fn failed(detail: String) -> ProbeError {
    ProbeError {
        detail,
        local: false,
    }
}

async fn check(inst: &InstanceState, probe: &Probe, wait: Duration) -> Result<(), ProbeError> {
    let path = match probe {
        // TCP, plus the TLS handshake for an `https://` instance.
        Probe::Tcp => return inst.origin.dial().await.map(drop),
        Probe::Http { path } => path,
    };
    // The same upstream client as the request path (dialing, TLS settings,
    // failure classification), on a connection of its own: a probe checks
    // that the instance accepts connections, and leaves the pool's
    // keep-alive connections to requests.
    let req = http::Request::get(path.as_str())
        .header(http::header::HOST, inst.origin.host.clone())
        .header(http::header::USER_AGENT, "fulcrum-health-check")
        .header(http::header::CONNECTION, "close")
        .body(fulcrum_dataplane::http::body::empty())
        .map_err(|e| failed(format!("bad probe path `{path}`: {e}")))?;
    let limits = Deadlines {
        connect: wait,
        head: wait,
    };
    let resp = send_fresh(&inst.origin, req, limits)
        .await
        .map_err(|e| match e {
            TryError::Local { detail } => ProbeError {
                detail,
                local: true,
            },
            TryError::Instance { detail, .. } => failed(format!("GET {path}: {detail}")),
            other => failed(format!("GET {path}: {other:?}")),
        })?;
    let status = resp.status();
    if status.is_success() || status.is_redirection() {
        Ok(())
    } else {
        Err(failed(format!("GET {path} answered {status}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jitter_stays_within_its_fraction() {
        let rng = fulcrum_dataplane::clock::Rng::seeded(7);
        for _ in 0..1000 {
            let d = jittered(Duration::from_secs(10), 0.1, rng.f64());
            assert!(
                d >= Duration::from_secs(9) && d <= Duration::from_secs(11),
                "{d:?}"
            );
        }
        assert_eq!(
            jittered(Duration::from_secs(10), 0.0, rng.f64()),
            Duration::from_secs(10)
        );
    }
}
