//! Registry expiry on paused time: the registry reads the gateway's
//! injected clock, so a heartbeat timeout is crossed by advancing tokio's
//! clock instead of sleeping. Each change reaches the data plane through
//! the one publisher.

use fulcrum_control::health::HealthChecker;
use fulcrum_control::persist::{MemoryStore, Persist};
use fulcrum_control::publish::{ConfigFile, Overrides, Publisher};
use fulcrum_control::registry::{RegisterRequest, Registry};
use fulcrum_dataplane::Gateway;
use std::sync::Arc;
use std::time::Duration;

struct World {
    gw: Arc<Gateway>,
    reg: Arc<Registry>,
    store: Arc<MemoryStore>,
    /// Held: the registry only holds it weakly.
    _publisher: Arc<Publisher>,
}

fn world() -> World {
    let config = fulcrum_config::parse(
        "registry:\n  enabled: true\n  heartbeat_timeout: 30s\n",
        &|_| None,
    )
    .unwrap();
    let gw = Gateway::new(config.clone());
    let publisher = Publisher::new(gw.clone(), Arc::new(HealthChecker::default()));
    let file = Arc::new(ConfigFile::new(config));
    publisher.add_source(file.clone());
    publisher.add_source(Arc::new(Overrides::open(None).unwrap()));
    let store = Arc::new(MemoryStore::default());
    let reg = Registry::open(file, gw.clone(), &publisher, store.clone()).unwrap();
    publisher.publish();
    World {
        gw,
        reg,
        store,
        _publisher: publisher,
    }
}

fn register(reg: &Registry, endpoint: &str) {
    reg.register(RegisterRequest(serde_json::json!({
        "service_id": "yolo", "task_types": ["detect"], "endpoint": endpoint,
    })))
    .unwrap();
}

fn served(gw: &Gateway) -> Vec<String> {
    let snap = gw.snapshot();
    snap.pool("detect")
        .map(|p| {
            p.members
                .iter()
                .map(|m| m.inst.endpoint.url.clone())
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test(start_paused = true)]
async fn a_silent_instance_expires_at_its_heartbeat_timeout_and_not_before() {
    let w = world();
    register(&w.reg, "http://10.0.0.1:7901/infer");
    register(&w.reg, "http://10.0.0.2:7901/infer");
    assert_eq!(served(&w.gw).len(), 2, "registration is published");

    tokio::time::advance(Duration::from_secs(20)).await;
    assert_eq!(w.reg.heartbeat("http://10.0.0.2:7901/infer", None), Ok(1));
    tokio::time::advance(Duration::from_secs(9)).await;
    assert!(w.reg.expire().is_empty(), "29 s of silence is within 30 s");

    tokio::time::advance(Duration::from_secs(1)).await;
    assert_eq!(
        w.reg.expire(),
        vec!["http://10.0.0.1:7901/infer".to_string()]
    );
    assert_eq!(
        served(&w.gw),
        vec!["http://10.0.0.2:7901/infer".to_string()]
    );
    assert_eq!(w.store.load().unwrap().len(), 1, "the expiry is stored");

    // The heartbeat at 20 s keeps the other one until 50 s.
    tokio::time::advance(Duration::from_secs(19)).await;
    assert!(w.reg.expire().is_empty());
    tokio::time::advance(Duration::from_secs(1)).await;
    assert_eq!(w.reg.expire().len(), 1);
    assert!(served(&w.gw).is_empty());
    assert!(w.reg.list().is_empty());
}

#[tokio::test(start_paused = true)]
async fn heartbeat_age_follows_the_gateways_clock() {
    let w = world();
    register(&w.reg, "http://10.0.0.3:7901/infer");
    let registered = w.reg.list()[0].last_heartbeat;
    tokio::time::advance(Duration::from_secs(12)).await;
    assert_eq!(w.reg.unix_now() - registered, 12);
    w.reg.heartbeat("http://10.0.0.3:7901/infer", None).unwrap();
    assert_eq!(w.reg.list()[0].last_heartbeat, registered + 12);
}

#[tokio::test(start_paused = true)]
async fn overrides_are_stored_through_persist_and_survive_every_publication() {
    let config = fulcrum_config::parse("registry:\n  enabled: true\n", &|_| None).unwrap();
    let gw = Gateway::new(config.clone());
    let publisher = Publisher::new(gw.clone(), Arc::new(HealthChecker::default()));
    let file = Arc::new(ConfigFile::new(config));
    publisher.add_source(file.clone());
    let kept = Arc::new(MemoryStore::default());
    let overrides = Arc::new(Overrides::open(Some(kept.clone())).unwrap());
    publisher.add_source(overrides.clone());
    let reg = Registry::open(
        file,
        gw.clone(),
        &publisher,
        Arc::new(MemoryStore::default()),
    )
    .unwrap();
    publisher.publish();
    let (a, b) = ("http://10.0.0.1:7901/infer", "http://10.0.0.2:7901/infer");
    register(&reg, a);

    overrides
        .update(a, |o| {
            o.drained = true;
            o.weight = Some(5);
        })
        .unwrap();
    publisher.publish();
    let inst = |ep: &str| gw.snapshot().instances.get(ep).cloned().unwrap();
    assert!(inst(a).is_drained());
    assert_eq!(inst(a).weight_override(), Some(5));
    assert_eq!(
        kept.load().unwrap().len(),
        1,
        "stored before it takes effect"
    );

    // Another change publishes a new snapshot: the override stays.
    register(&reg, b);
    assert!(inst(a).is_drained() && !inst(b).is_drained());

    // A restart reads it back from the store.
    let again = Overrides::open(Some(kept.clone())).unwrap();
    assert!(again.all()[a].drained);

    // Back to the defaults: gone from the store and from the instance.
    overrides.update(a, |o| *o = Default::default()).unwrap();
    publisher.publish();
    assert!(!inst(a).is_drained());
    assert_eq!(inst(a).weight_override(), None);
    assert!(kept.load().unwrap().is_empty());
}
