//! A registration does not wait for a costly publication (issue #11,
//! finding 6): while publications are cheap each change is published
//! before `register` returns; once they are not, a burst of registrations
//! is published together, soon after.

use fulcrum_control::health::HealthChecker;
use fulcrum_control::persist::MemoryStore;
use fulcrum_control::publish::{ConfigFile, Desired, Overrides, Publisher, Source};
use fulcrum_control::registry::{RegisterRequest, Registry};
use fulcrum_dataplane::Gateway;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;

/// A source that takes `cost` to contribute, and counts publications.
struct Costly {
    cost: Duration,
    publications: AtomicUsize,
}

impl Source for Costly {
    fn contribute(&self, _: &mut Desired) {
        self.publications.fetch_add(1, Ordering::Relaxed);
        std::thread::sleep(self.cost);
    }
}

struct World {
    gw: Arc<Gateway>,
    reg: Arc<Registry>,
    costly: Arc<Costly>,
    _publisher: Arc<Publisher>,
}

fn world(cost: Duration) -> World {
    let config = fulcrum_config::parse("registry: { enabled: true }", &|_| None).unwrap();
    let gw = Gateway::new(config.clone());
    let publisher = Publisher::new(gw.clone(), Arc::new(HealthChecker::default()));
    let file = Arc::new(ConfigFile::new(config));
    publisher.add_source(file.clone());
    publisher.add_source(Arc::new(Overrides::open(None).unwrap()));
    let costly = Arc::new(Costly {
        cost,
        publications: AtomicUsize::new(0),
    });
    publisher.add_source(costly.clone());
    let reg = Registry::open(
        file,
        gw.clone(),
        &publisher,
        Arc::new(MemoryStore::default()),
    )
    .unwrap();
    publisher.publish();
    World {
        gw,
        reg,
        costly,
        _publisher: publisher,
    }
}

fn register(w: &World, i: usize) {
    w.reg
        .register(RegisterRequest(serde_json::json!({
            "service_id": "s", "task_types": ["detect"],
            "endpoint": format!("http://127.0.0.1:{}/infer", 1000 + i),
        })))
        .unwrap();
}

fn served(gw: &Gateway) -> usize {
    gw.snapshot().pool("detect").map_or(0, |p| p.members.len())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_of_registrations_shares_publications_when_they_are_costly() {
    let w = world(Duration::from_millis(20));
    let before = w.costly.publications.load(Ordering::Relaxed);
    let t = Instant::now();
    for i in 0..20 {
        register(&w, i);
    }
    let took = t.elapsed();
    assert!(
        took < Duration::from_millis(100),
        "20 registrations waited for builds: {took:?}"
    );
    let deadline = Instant::now() + Duration::from_secs(3);
    while served(&w.gw) < 20 {
        assert!(
            Instant::now() < deadline,
            "not published: {}",
            served(&w.gw)
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let publications = w.costly.publications.load(Ordering::Relaxed) - before;
    assert!(
        publications <= 3,
        "{publications} publications for one burst"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn while_publications_are_cheap_a_registration_is_routed_when_it_returns() {
    let w = world(Duration::ZERO);
    for i in 0..5 {
        register(&w, i);
        assert_eq!(served(&w.gw), i + 1);
    }
}
