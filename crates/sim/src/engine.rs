//! The event loop: virtual time, a heap of pending events, and the gateway's
//! per-request decision made by the real policy code.
//!
//! Events are ordered by `Reverse((time_us, seq))`: earliest first, and among
//! simultaneous events the one scheduled first, so a run never depends on
//! anything but its inputs. Each request's instance is chosen exactly as the
//! data plane does it, by the same code: the [`Decider`] asks the policy's
//! view ([`fulcrum_policy::view::choose`]), which reads each instance's
//! facts (`instance.rs`) and hands the slots to the selector. `Busy` parks
//! the request in the gateway's admission queue (a FIFO lane per request
//! class, `classes.rs`) until an instance frees a slot or the queue timeout
//! passes (503); `Down` fails it at once (503).
//!
//! Two random streams keep the comparison between algorithms fair: the
//! policy's (random, P2C) and one per instance for service times and errors,
//! so an instance's n-th request takes as long whatever the algorithm.

use crate::classes::{room_for, ClassRecorder, Join, Lanes};
use crate::decider::Decider;
use crate::model::{ClassMix, InstanceModel, Stop, Workload};
use crate::report::{Outcome, Recorder, Report};
use fulcrum_policy::{hash_bytes, Algorithm, RequestClass, SelectOutcome};
use std::cmp::Reverse;
use std::collections::BinaryHeap;

/// Least pause after a request that failed without taking any time.
const MIN_FAIL_PAUSE_US: u64 = 1_000;

/// One routing decision, reported to the observer of [`run_with`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Dispatch {
    /// Virtual time of the decision, milliseconds.
    pub at_ms: f64,
    pub client: usize,
    /// The request's key index (`client % keys`), if the workload has keys.
    pub key: Option<usize>,
    /// Index of the chosen instance in the `instances` slice.
    pub instance: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Event {
    /// A client sends its next request.
    Send { client: usize },
    /// An instance finishes the request of `client`.
    Done { inst: usize, client: usize },
    /// The admission-queue wait of `client`'s `nth` request runs out.
    QueueTimeout { client: usize, nth: u64 },
    /// Some instance goes down or comes back up.
    Health,
}

struct Client {
    key: Option<(usize, u64)>,
    nth: u64,
    sent_us: u64,
    at_instance_us: u64,
    queued: bool,
    class: RequestClass,
}

struct Sim<'a> {
    now_us: u64,
    seq: u64,
    events: BinaryHeap<Reverse<(u64, u64, Event)>>,
    /// The gateway: every decision, and what it knows of the instances.
    gw: Decider<'a>,
    clients: Vec<Client>,
    /// The admission queue, a lane per request class (`classes.rs`).
    queue: Lanes,
    /// With request classes: their mix, the clients' pauses, the tally.
    classes: Option<(&'a ClassMix, fastrand::Rng, ClassRecorder)>,
    sent: u64,
    work: &'a Workload,
    rec: Recorder,
    observer: &'a mut dyn FnMut(&Dispatch),
}

/// Runs `workload` against `instances` balanced by `alg` and reports.
pub fn run(alg: Algorithm, instances: &[InstanceModel], workload: &Workload) -> Report {
    run_with(alg, instances, workload, &mut |_| {})
}

/// Like [`run`], calling `observer` with every routing decision.
pub fn run_with(
    alg: Algorithm,
    instances: &[InstanceModel],
    workload: &Workload,
    observer: &mut dyn FnMut(&Dispatch),
) -> Report {
    let clients = (0..workload.clients)
        .map(|c| Client {
            key: workload.keys.filter(|&k| k > 0).map(|k| {
                let key = c % k;
                (key, hash_bytes(format!("key-{key}").as_bytes()))
            }),
            nth: 0,
            sent_us: 0,
            at_instance_us: 0,
            queued: false,
            class: workload
                .classes
                .as_ref()
                .map_or(RequestClass::Normal, |m| m.client(c).class),
        })
        .collect();
    let mut sim = Sim {
        now_us: 0,
        seq: 0,
        events: BinaryHeap::new(),
        gw: {
            let mut gw = Decider::new(alg, instances, workload.seed);
            if let Some(s) = workload.dynamic_weights {
                gw = gw.dynamic_weights(s);
            }
            if let Some(b) = workload.learned_limits {
                gw = gw.learned_limits(b);
            }
            gw
        },
        clients,
        queue: Lanes::default(),
        classes: workload.classes.as_ref().map(|m| {
            let rng = fastrand::Rng::with_seed(workload.seed ^ 0x0c1a_55e5);
            (m, rng, ClassRecorder::default())
        }),
        sent: 0,
        work: workload,
        rec: Recorder::default(),
        observer,
    };
    for client in 0..workload.clients {
        let at = workload.ramp_ms * client as f64 / workload.clients as f64;
        sim.schedule(ms_to_us(at), Event::Send { client });
    }
    for (t0, t1) in instances.iter().filter_map(|m| m.down_between) {
        sim.schedule(t0 * 1000, Event::Health);
        sim.schedule(t1 * 1000, Event::Health);
    }
    while let Some(Reverse((at, _, ev))) = sim.events.pop() {
        sim.now_us = at;
        sim.gw.advance_to(at / 1000);
        match ev {
            Event::Send { client } => sim.on_send(client),
            Event::Done { inst, client } => sim.on_done(inst, client),
            Event::QueueTimeout { client, nth } => sim.on_timeout(client, nth),
            Event::Health => sim.drain_queue(),
        }
    }
    let mut report = sim.rec.finish(alg, &sim.gw.insts);
    report.weights = sim.gw.weight_history().to_vec();
    report.limits = sim.gw.limit_history().to_vec();
    if let Some((_, _, rec)) = sim.classes {
        report.classes = rec.finish();
    }
    report
}

fn ms_to_us(ms: f64) -> u64 {
    (ms * 1000.0).round().max(0.0) as u64
}

impl Sim<'_> {
    fn schedule(&mut self, at_us: u64, ev: Event) {
        self.seq += 1;
        self.events.push(Reverse((at_us, self.seq, ev)));
    }

    /// Whether `client`'s request may take a slot now (`queue.reserve`).
    fn room(&self, client: usize) -> bool {
        let reserve = self.classes.as_ref().map_or(0, |(m, _, _)| m.reserve);
        let now_ms = self.now_us / 1000;
        room_for(self.clients[client].class, reserve, &self.gw.insts, now_ms)
    }

    fn stopped(&self) -> bool {
        match self.work.stop {
            Stop::AfterMs(ms) => self.now_us >= ms * 1000,
            Stop::AfterRequests(n) => self.sent >= n,
        }
    }

    /// Chooses an instance for `client`'s request now, through the policy's
    /// view as the data plane does ([`Decider::choose`]); on `Picked(i)`
    /// the request holds a slot on `i` and must be dispatched to it.
    fn choose(&mut self, client: usize) -> SelectOutcome {
        let key = self.clients[client].key.map(|(_, h)| h);
        self.gw.choose(key, &[])
    }

    fn on_send(&mut self, client: usize) {
        if self.stopped() {
            return;
        }
        self.sent += 1;
        let c = &mut self.clients[client];
        c.nth += 1;
        c.sent_us = self.now_us;
        if self.queue.ahead_of(c.class) > 0 || !self.room(client) {
            // Others of its class or a higher one are already waiting: no
            // cutting in line.
            return self.enqueue(client);
        }
        match self.choose(client) {
            SelectOutcome::Picked(i) => self.dispatch(client, i),
            SelectOutcome::Busy => self.enqueue(client),
            SelectOutcome::Down => self.finish(client, Outcome::Rejected),
        }
    }

    fn enqueue(&mut self, client: usize) {
        let class = self.clients[client].class;
        match self.queue.join(client, class, self.work.queue_max) {
            Join::Full => return self.finish(client, Outcome::Rejected),
            Join::Displaced(shed) => {
                self.clients[shed].queued = false;
                self.finish_shed(shed);
            }
            Join::Waiting => {}
        }
        self.clients[client].queued = true;
        self.rec.queued(self.queue.len());
        let nth = self.clients[client].nth;
        let at = self.now_us + self.work.queue_timeout_ms * 1000;
        self.schedule(at, Event::QueueTimeout { client, nth });
    }

    fn dispatch(&mut self, client: usize, i: usize) {
        let c = &mut self.clients[client];
        c.at_instance_us = self.now_us;
        let key = c.key.map(|(k, _)| k);
        self.rec.dispatched(key, i);
        (self.observer)(&Dispatch {
            at_ms: self.now_us as f64 / 1000.0,
            client,
            key,
            instance: i,
        });
        let s = &mut self.gw.insts[i];
        if s.busy < s.model.capacity.max(1) {
            self.start(i, client);
        } else {
            s.fifo.push_back(client);
        }
    }

    fn start(&mut self, i: usize, client: usize) {
        let s = &mut self.gw.insts[i];
        s.busy += 1;
        let service = ms_to_us(s.model.service_ms(self.now_us / 1000, &mut s.rng)).max(1);
        self.schedule(self.now_us + service, Event::Done { inst: i, client });
    }

    fn on_done(&mut self, i: usize, client: usize) {
        let rtt_ms = (self.now_us - self.clients[client].at_instance_us) as f64 / 1000.0;
        let s = &mut self.gw.insts[i];
        s.busy -= 1;
        let failed = s.model.error_rate > 0.0 && s.rng.f64() < s.model.error_rate;
        if failed {
            s.errors += 1;
        }
        let next = s.fifo.pop_front();
        self.gw.finish(i, Some(rtt_ms), failed);
        if let Some(next) = next {
            self.start(i, next);
        }
        self.finish(client, if failed { Outcome::Error } else { Outcome::Ok });
        self.drain_queue();
    }

    fn on_timeout(&mut self, client: usize, nth: u64) {
        let c = &self.clients[client];
        if !c.queued || c.nth != nth {
            return;
        }
        self.queue.remove(client, c.class);
        self.clients[client].queued = false;
        self.rec.timed_out();
        self.finish(client, Outcome::Rejected);
    }

    /// Admits waiting requests, head first (the oldest of the highest
    /// class), while an instance has room for the head.
    fn drain_queue(&mut self) {
        while let Some((client, class)) = self.queue.head() {
            if !self.room(client) {
                return;
            }
            let outcome = self.choose(client);
            if outcome == SelectOutcome::Busy {
                return;
            }
            self.queue.remove(client, class);
            self.clients[client].queued = false;
            match outcome {
                SelectOutcome::Picked(i) => self.dispatch(client, i),
                _ => self.finish(client, Outcome::Rejected),
            }
        }
    }

    /// Records the request's outcome and schedules the client's next one.
    fn finish(&mut self, client: usize, outcome: Outcome) {
        self.end(client, outcome, false);
    }

    /// [`Self::finish`] for a request whose place in the queue went to a
    /// higher class.
    fn finish_shed(&mut self, client: usize) {
        self.end(client, Outcome::Rejected, true);
    }

    fn end(&mut self, client: usize, outcome: Outcome, shed: bool) {
        let took = self.now_us - self.clients[client].sent_us;
        self.rec.record(outcome, took, self.now_us);
        let mut think_ms = self.work.think_ms;
        if let Some((mix, rng, rec)) = &mut self.classes {
            let class = self.clients[client].class;
            match outcome {
                Outcome::Ok => rec.served(class, took),
                Outcome::Rejected => rec.rejected(class, shed),
                Outcome::Error => {}
            }
            think_ms += mix.client(client).think.sample_ms(rng);
        }
        let mut pause = ms_to_us(think_ms);
        if outcome != Outcome::Ok {
            pause += ms_to_us(self.work.fail_pause_ms);
            if took == 0 {
                pause = pause.max(MIN_FAIL_PAUSE_US);
            }
        }
        self.schedule(self.now_us + pause, Event::Send { client });
    }
}
