//! The dynamic-weights task on paused time: each interval it reads what
//! the members did (fed here straight into their counters, as the data
//! plane's feedback would) and stores the controller's weights where the
//! view reads them; a down member gets 0, an override still wins, a
//! reload that turns them off clears them, and a `consistent_hash` pool
//! is republished so its ring follows.

use fulcrum_control::dynamic_weights::Controller;
use fulcrum_control::health::HealthChecker;
use fulcrum_control::publish::{ConfigFile, Publisher};
use fulcrum_dataplane::runtime::InstanceState;
use fulcrum_dataplane::Gateway;
use std::sync::Arc;
use std::time::Duration;

const YAML: &str = r#"
pools:
  p:
    algorithm: weighted_round_robin
    dynamic_weights: { interval: 1s }
    instances:
      - { endpoint: "http://127.0.0.1:1" }
      - { endpoint: "http://127.0.0.1:2" }
      - { endpoint: "http://127.0.0.1:3" }
  h:
    algorithm: consistent_hash
    hash_key: client_ip
    dynamic_weights: { interval: 1s }
    instances:
      - { endpoint: "http://127.0.0.1:1" }
      - { endpoint: "http://127.0.0.1:2" }
"#;

struct World {
    gw: Arc<Gateway>,
    file: Arc<ConfigFile>,
    publisher: Arc<Publisher>,
}

fn world(yaml: &str) -> World {
    let config = fulcrum_config::parse(yaml, &|_| None).unwrap();
    let gw = Gateway::new(config.clone());
    let publisher = Publisher::new(gw.clone(), Arc::new(HealthChecker::default()));
    let file = Arc::new(ConfigFile::new(config));
    publisher.add_source(file.clone());
    publisher.publish();
    World {
        gw,
        file,
        publisher,
    }
}

impl World {
    fn inst(&self, port: u16) -> Arc<InstanceState> {
        self.gw.snapshot().instances[&format!("http://127.0.0.1:{port}")].clone()
    }

    /// `n` answered tries of `latency_ms` each on the instance at `port`.
    fn feed(&self, port: u16, n: u32, latency_ms: u64) {
        let i = self.inst(port);
        let now = self.gw.clock.now_ms();
        for _ in 0..n {
            i.window.record(now, Some(latency_ms * 1000), false);
            i.latency.record_us(latency_ms * 1000);
        }
    }

    /// Pool `pool`'s members: (dynamic weight, effective weight) from the
    /// admin API's stats.
    fn weights(&self, pool: &str) -> Vec<(Option<u32>, u32)> {
        let stats = self.gw.stats();
        let p = stats.iter().find(|p| p.name == pool).unwrap();
        p.instances
            .iter()
            .map(|m| (m.dynamic_weight, m.effective_weight))
            .collect()
    }

    /// One interval: 1 s on, with the slow member 1 answering in 500 ms
    /// and the two others in 50 ms (the loads of capacities 1:2:4).
    async fn interval(&self, c: &mut Controller) -> Duration {
        tokio::time::advance(Duration::from_secs(1)).await;
        self.feed(1, 20, 500);
        self.feed(2, 40, 50);
        self.feed(3, 80, 50);
        c.tick(&self.gw, &self.publisher)
    }
}

#[tokio::test(start_paused = true)]
async fn each_interval_moves_the_weights_and_the_view_uses_them() {
    let w = world(YAML);
    let mut c = Controller::default();
    assert_eq!(
        c.tick(&w.gw, &w.publisher),
        Duration::from_secs(1),
        "the first look only reads"
    );
    assert_eq!(w.weights("p"), vec![(None, 1); 3]);
    w.interval(&mut c).await;
    let after = w.weights("p");
    let dynamic: Vec<u32> = after.iter().map(|x| x.0.unwrap()).collect();
    assert!(
        dynamic[0] < 100 && dynamic[1] > 100 && dynamic[2] > 100,
        "the slow one loses, the others gain: {after:?}"
    );
    assert!(
        after.iter().all(|(d, e)| Some(*e) == *d),
        "effective = dynamic: {after:?}"
    );
    // Never more than max_step (0.3) from the start (100 each).
    assert!(
        dynamic.iter().all(|&x| (77..=130).contains(&x)),
        "{dynamic:?}"
    );

    // The slow one goes down: 0, and out of the view's choice.
    w.inst(1).observe_probe(false, 1, 1, w.gw.clock.now_ms());
    w.interval(&mut c).await;
    assert_eq!(w.weights("p")[0], (Some(0), 0));

    // An operator's override still wins.
    w.inst(2).set_weight_override(Some(7));
    assert_eq!(w.weights("p")[1].1, 7);
}

#[tokio::test(start_paused = true)]
async fn a_consistent_hash_pool_is_republished_when_its_weights_change() {
    let w = world(YAML);
    let mut c = Controller::default();
    c.tick(&w.gw, &w.publisher);
    let before = w.gw.snapshot();
    w.interval(&mut c).await;
    assert!(
        !Arc::ptr_eq(&before, &w.gw.snapshot()),
        "a new snapshot, whose ring follows the weights"
    );
    let h = w.weights("h");
    assert!(h[0].0 < h[1].0, "{h:?}");
}

#[tokio::test(start_paused = true)]
async fn a_reload_that_turns_them_off_clears_them() {
    let w = world(YAML);
    let mut c = Controller::default();
    c.tick(&w.gw, &w.publisher);
    w.interval(&mut c).await;
    assert!(w.weights("p").iter().all(|x| x.0.is_some()));
    let off = YAML.replace("dynamic_weights: { interval: 1s }", "");
    w.file.set(fulcrum_config::parse(&off, &|_| None).unwrap());
    w.publisher.publish();
    assert_eq!(w.weights("p"), vec![(None, 1); 3]);
    assert_eq!(w.interval(&mut c).await, Duration::from_secs(1));
    assert_eq!(w.weights("p"), vec![(None, 1); 3], "nothing stored");
}

#[tokio::test(start_paused = true)]
async fn quiet_members_are_not_judged() {
    let w = world(YAML);
    let mut c = Controller::default();
    c.tick(&w.gw, &w.publisher);
    tokio::time::advance(Duration::from_secs(1)).await;
    w.feed(1, 2, 500); // too few tries to tell
    w.feed(2, 40, 50);
    w.feed(3, 40, 50);
    c.tick(&w.gw, &w.publisher);
    assert_eq!(
        w.weights("p")
            .iter()
            .map(|x| x.0.unwrap())
            .collect::<Vec<_>>(),
        vec![100; 3]
    );
}

#[tokio::test(start_paused = true)]
async fn a_quiet_member_is_judged_once_its_tries_add_up_over_intervals() {
    let w = world(YAML);
    let mut c = Controller::default();
    c.tick(&w.gw, &w.publisher);
    let weights = |w: &World| -> Vec<u32> { w.weights("p").iter().map(|x| x.0.unwrap()).collect() };
    // Five tries an interval, slow ones: too few to judge in one interval
    // (fewer than MIN_REQUESTS, 8), so its weight holds...
    tokio::time::advance(Duration::from_secs(1)).await;
    w.feed(1, 5, 500);
    w.feed(2, 40, 50);
    w.feed(3, 40, 50);
    c.tick(&w.gw, &w.publisher);
    assert_eq!(weights(&w), vec![100; 3]);
    // ...but they are not forgotten: with the next five it has ten over
    // two intervals, and is judged on them (slow: it loses weight).
    tokio::time::advance(Duration::from_secs(1)).await;
    w.feed(1, 5, 500);
    w.feed(2, 40, 50);
    w.feed(3, 40, 50);
    c.tick(&w.gw, &w.publisher);
    let after = weights(&w);
    assert!(after[0] < 100 && after[1] > 100, "{after:?}");
}
