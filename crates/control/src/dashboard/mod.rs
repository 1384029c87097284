//! The dashboard on the admin listener (`GET /`): a page shipped inside
//! the binary ([`page`], no build step, no network, no chart library) that
//! reads the admin API — `/api/v1/pools` every second for live numbers,
//! [`history`] for the last 15 minutes' charts, the gateway's event log
//! (`/api/v1/events`) and the registry's `/services` — and drains,
//! enables and weighs instances through the same API as `fulcrum drain`.
//!
//! [`Dashboard::start`] runs the sampler that feeds [`history`]: one read
//! of the pools' stats every [`history::STEP`], off the request path.
//! [`api::routes`] serves the page and the two read-only endpoints.

pub mod api;
pub mod history;
pub mod page;

use fulcrum_dataplane::Gateway;
use history::History;
use std::sync::{Arc, Mutex};
use tokio::task::JoinHandle;

/// What the dashboard keeps: the history of the pools.
#[derive(Debug)]
pub struct Dashboard {
    pub gateway: Arc<Gateway>,
    history: Mutex<History>,
}

impl Dashboard {
    /// A dashboard with an empty history (nothing samples it: tests).
    pub fn new(gateway: Arc<Gateway>) -> Arc<Self> {
        Arc::new(Self {
            gateway,
            history: Mutex::default(),
        })
    }

    /// A dashboard and its sampler task (abort the handle to stop it).
    pub fn start(gateway: Arc<Gateway>) -> (Arc<Self>, JoinHandle<()>) {
        let d = Self::new(gateway);
        let task = tokio::spawn({
            let d = d.clone();
            async move {
                let mut tick = tokio::time::interval(history::STEP);
                tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                loop {
                    tick.tick().await;
                    d.sample();
                }
            }
        });
        (d, task)
    }

    /// Records one sample of every pool now.
    pub fn sample(&self) {
        let stats = self.gateway.stats();
        let now = self.gateway.clock.unix_ms();
        self.history().record(now, &stats);
    }

    pub(crate) fn history(&self) -> std::sync::MutexGuard<'_, History> {
        self.history.lock().unwrap_or_else(|e| e.into_inner())
    }
}
