//! `fulcrum demo` as a user runs it: the real binary for its one-minute
//! run, watched through the admin API it prints on its first line.

use crate::common::*;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::process::Command;
use std::time::{Duration, Instant};

/// What the demo's stdout said so far.
#[derive(Default)]
struct Story {
    lines: Vec<String>,
    /// The slowed LLM instance's and the dying ASR instance's endpoints,
    /// once their incident started.
    slow_llm: Option<String>,
    dying_asr: Option<String>,
    llm_healed: bool,
    asr_healed: bool,
}

impl Story {
    fn read(&mut self, line: String) {
        // `+00:05 incident: llm-local-1 (http://127.0.0.1:4242) answers …`
        let endpoint = || {
            line.split_once(" (")
                .and_then(|(_, rest)| rest.split_once(')'))
                .map(|(url, _)| url.to_string())
        };
        if line.contains("incident: llm-") {
            self.slow_llm = endpoint();
        } else if line.contains("incident: asr-") {
            self.dying_asr = endpoint();
        } else if line.contains("healed: llm-") {
            self.llm_healed = true;
        } else if line.contains("healed: asr-") {
            self.asr_healed = true;
        }
        self.lines.push(line);
    }
}

/// The row of `endpoint` in any pool of a `/api/v1/pools` answer.
fn row<'a>(pools: &'a serde_json::Value, endpoint: &str) -> Option<&'a serde_json::Value> {
    pools["pools"]
        .as_array()?
        .iter()
        .flat_map(|p| p["instances"].as_array().into_iter().flatten())
        .find(|i| i["endpoint"] == endpoint)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_one_minute_demo_moves_traffic_around_both_incidents_and_exits_cleanly() {
    let started = Instant::now();
    let mut demo = ChildGuard::spawn(Command::new(env!("CARGO_BIN_EXE_fulcrum")).args([
        "demo",
        "--duration",
        "60s",
        "--listen",
        "127.0.0.1:0",
        "--admin",
        "127.0.0.1:0",
    ]));
    let pid = demo.0.id();
    let mut out = demo.lines();
    let first = tokio::time::timeout(Duration::from_secs(60), out.recv())
        .await
        .expect("a first line within 60 s")
        .expect("stdout still open");
    let admin: SocketAddr = first
        .strip_prefix("dashboard: http://")
        .and_then(|a| a.strip_suffix('/'))
        .and_then(|a| a.parse().ok())
        .unwrap_or_else(|| panic!("first line is not `dashboard: http://ADDR/`: {first:?}"));
    // The registry's scratch store, named after the process.
    let scratch = std::env::temp_dir().join(format!("fulcrum-demo-{pid}-0"));
    assert!(scratch.is_dir(), "no {}", scratch.display());

    let c = client();
    let url = format!("http://{admin}/api/v1/pools");
    let mut story = Story::default();
    // Requests per pool (the largest sum of its instances' seen).
    let mut requests: HashMap<String, u64> = HashMap::new();
    // Every instance's latest recent share, before the LLM incident.
    let mut shares: HashMap<String, f64> = HashMap::new();
    let mut before_slow: Option<f64> = None;
    let mut while_slow = f64::MAX;
    let (mut asr_down, mut asr_back) = (false, false);
    let status = loop {
        while let Ok(line) = out.try_recv() {
            story.read(line);
        }
        if let Some(st) = demo.0.try_wait().expect("try_wait") {
            break st;
        }
        assert!(
            started.elapsed() < Duration::from_secs(180),
            "still running after 180 s; it said:\n{}",
            story.lines.join("\n")
        );
        if let Some(pools) = try_json(&c, &url).await {
            for p in pools["pools"].as_array().into_iter().flatten() {
                let n: u64 = p["instances"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|i| i["requests"].as_u64())
                    .sum();
                let name = p["name"].as_str().unwrap_or_default().to_string();
                let seen = requests.entry(name).or_default();
                *seen = (*seen).max(n);
                if p["name"] == "llm" && story.slow_llm.is_none() {
                    for i in p["instances"].as_array().into_iter().flatten() {
                        if let (Some(ep), Some(s)) =
                            (i["endpoint"].as_str(), i["window"]["share"].as_f64())
                        {
                            shares.insert(ep.to_string(), s);
                        }
                    }
                }
            }
            if let Some(slow) = &story.slow_llm {
                before_slow = before_slow.or_else(|| shares.get(slow).copied());
                if !story.llm_healed {
                    if let Some(s) = row(&pools, slow).and_then(|r| r["window"]["share"].as_f64()) {
                        while_slow = while_slow.min(s);
                    }
                }
            }
            if let Some(r) = story.dying_asr.as_deref().and_then(|ep| row(&pools, ep)) {
                if !story.asr_healed && r["healthy"] == false && r["state"] == "down" {
                    asr_down = true;
                }
                if story.asr_healed && asr_down && r["healthy"] == true && r["state"] == "up" {
                    asr_back = true;
                }
            }
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    };
    while let Some(line) = out.recv().await {
        story.read(line);
    }
    let said = story.lines.join("\n");
    assert!(status.success(), "{status:?}; it said:\n{said}");
    assert!(
        started.elapsed() >= Duration::from_secs(60),
        "stopped before its --duration: {:?}\n{said}",
        started.elapsed()
    );
    for pool in ["asr", "llm", "tts", "vision"] {
        assert!(
            requests.get(pool).copied().unwrap_or(0) > 0,
            "no traffic on {pool}: {requests:?}\n{said}"
        );
    }
    assert!(
        story.slow_llm.is_some() && story.llm_healed,
        "the LLM incident did not start and end:\n{said}"
    );
    let before = before_slow.expect("a share of the slow LLM instance before its incident");
    assert!(
        before >= 0.2,
        "the LLM instance had little traffic before its incident: {before}\n{said}"
    );
    assert!(
        while_slow < before * 0.7,
        "response_time kept its share while it was slow: {while_slow} vs {before} before\n{said}"
    );
    assert!(
        story.dying_asr.is_some() && story.asr_healed,
        "the ASR incident did not start and end:\n{said}"
    );
    assert!(
        asr_down,
        "the dead ASR instance was never seen down\n{said}"
    );
    assert!(asr_back, "the ASR instance was never seen up again\n{said}");
    assert!(story.lines.iter().any(|l| l.contains("stopped;")), "{said}");
    assert!(
        std::net::TcpStream::connect(admin).is_err(),
        "something still listens on the admin port {admin}"
    );
    assert!(!scratch.exists(), "{} is left behind", scratch.display());
}
