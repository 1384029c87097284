//! What happened to the fleet, newest last: health flips, passive
//! ejections, `Retry-After` cool-downs, operator drains and weights,
//! registrations and expiries, config reloads. The dashboard's Events view
//! and `GET /api/v1/events` read it.
//!
//! Each producer records its own event at the moment it happens (the
//! request path only for an ejection or the start of a cool-down, which
//! are rare: a cool-down already running is not recorded again). The log
//! is a ring of [`CAPACITY`] events behind one mutex; each event has a
//! sequence number, so a reader asks for what came after the last one it
//! saw and misses nothing that is still in the ring. Caller-supplied text
//! (an endpoint, a service name) is cut to [`MAX_TEXT`] bytes, so the
//! ring's memory is bounded: [`CAPACITY`] × ([`Event`] + 3 × [`MAX_TEXT`])
//! bytes at most, under 1 MiB.

use serde::Serialize;
use std::collections::VecDeque;
use std::sync::Mutex;

/// Events kept (the oldest leaves when a new one comes).
pub const CAPACITY: usize = 1000;
/// Longest text field kept, in bytes (cut at a character boundary, with `…`).
pub const MAX_TEXT: usize = 256;

/// What kind of thing happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    /// Active health checks marked the instance down.
    HealthDown,
    /// Active health checks marked it up again.
    HealthUp,
    /// Ejected after repeated failures (passive health).
    Ejected,
    /// A `Retry-After` answer started a cool-down.
    CoolDown,
    /// An operator drained it.
    Drained,
    /// An operator enabled it again.
    Enabled,
    /// An operator set or cleared its weight.
    Weight,
    /// A service registered it (or registered it again).
    Registered,
    /// Its service unregistered it.
    Unregistered,
    /// Its registration expired (no heartbeat).
    Expired,
    /// The configuration was reloaded.
    Reloaded,
    /// A reload was refused; the running config stays.
    ReloadFailed,
}

/// One thing that happened.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Event {
    /// Increases by one per event, from 1.
    pub seq: u64,
    /// When, in ms since the Unix epoch.
    pub unix_ms: u64,
    pub kind: EventKind,
    /// The instance it concerns, if one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
    /// The pool it concerns, if one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pool: Option<String>,
    /// What happened, in words.
    pub message: String,
}

#[derive(Debug, Default)]
struct Ring {
    last_seq: u64,
    events: VecDeque<Event>,
}

/// The gateway's event log ([`crate::Gateway::events`]).
#[derive(Debug)]
pub struct Events {
    capacity: usize,
    ring: Mutex<Ring>,
}

impl Default for Events {
    fn default() -> Self {
        Self::with_capacity(CAPACITY)
    }
}

/// `s` cut to at most [`MAX_TEXT`] bytes at a character boundary.
fn cut(s: &str) -> String {
    if s.len() <= MAX_TEXT {
        return s.to_string();
    }
    let mut end = MAX_TEXT - '…'.len_utf8();
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}

impl Events {
    /// A log keeping the last `capacity` events (at least 1).
    pub fn with_capacity(capacity: usize) -> Self {
        Self {
            capacity: capacity.max(1),
            ring: Mutex::new(Ring::default()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Ring> {
        self.ring.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Records an event at `unix_ms`; returns its sequence number.
    pub fn push(
        &self,
        unix_ms: u64,
        kind: EventKind,
        endpoint: Option<&str>,
        pool: Option<&str>,
        message: &str,
    ) -> u64 {
        let mut r = self.lock();
        r.last_seq += 1;
        let seq = r.last_seq;
        if r.events.len() == self.capacity {
            r.events.pop_front();
        }
        r.events.push_back(Event {
            seq,
            unix_ms,
            kind,
            endpoint: endpoint.map(cut),
            pool: pool.map(cut),
            message: cut(message),
        });
        seq
    }

    /// Up to `limit` of the events after sequence number `after`, oldest
    /// first, and the last sequence number given so far.
    pub fn after(&self, after: u64, limit: usize) -> (Vec<Event>, u64) {
        let r = self.lock();
        // Sequence numbers are consecutive in the ring: skip by arithmetic.
        let first = r.events.front().map_or(r.last_seq + 1, |e| e.seq);
        let skip = (after + 1).saturating_sub(first) as usize;
        let events: Vec<Event> = r.events.iter().skip(skip).take(limit).cloned().collect();
        (events, r.last_seq)
    }

    /// Events held now.
    pub fn len(&self) -> usize {
        self.lock().events.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn push(e: &Events, n: u64) {
        for i in 0..n {
            e.push(i, EventKind::HealthDown, Some("http://a:1"), None, "down");
        }
    }

    #[test]
    fn readers_get_what_came_after_their_last_event() {
        let e = Events::with_capacity(10);
        push(&e, 3);
        let (all, last) = e.after(0, 100);
        assert_eq!(all.iter().map(|x| x.seq).collect::<Vec<_>>(), [1, 2, 3]);
        assert_eq!(last, 3);
        let (rest, _) = e.after(2, 100);
        assert_eq!(rest.iter().map(|x| x.seq).collect::<Vec<_>>(), [3]);
        assert!(e.after(3, 100).0.is_empty());
        assert_eq!(e.after(0, 2).0.len(), 2, "limit");
    }

    #[test]
    fn the_ring_keeps_the_newest_capacity_events() {
        let e = Events::with_capacity(10);
        push(&e, 25);
        assert_eq!(e.len(), 10);
        let (kept, last) = e.after(0, 100);
        assert_eq!(kept.first().map(|x| x.seq), Some(16));
        assert_eq!(last, 25);
        assert_eq!(e.after(20, 100).0.len(), 5);
    }

    #[test]
    fn long_text_is_cut_at_a_character_boundary() {
        let e = Events::with_capacity(2);
        let long = "名".repeat(200); // 600 bytes
        e.push(0, EventKind::Registered, Some(&long), Some(&long), &long);
        let (got, _) = e.after(0, 1);
        let ev = &got[0];
        for s in [
            ev.endpoint.as_deref().unwrap(),
            ev.pool.as_deref().unwrap(),
            &ev.message,
        ] {
            assert!(s.len() <= MAX_TEXT, "{}", s.len());
            assert!(s.ends_with('…'));
        }
    }
}
