//! The real `openai` Python client streams a chat completion through
//! Fulcrum from the mock's OpenAI-compatible endpoint: token chunks arrive
//! as the instance sends them, not all at the end.

use crate::common::*;
use std::process::Command;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_openai_client_streams_tokens_through_fulcrum() {
    let (a, b) = (mock("llm-a").await, mock("llm-b").await);
    let gw = gateway(&format!(
        "pools: {{ llm: {{ algorithm: least_connections, instances: [ {{ endpoint: \"{}\" }}, {{ endpoint: \"{}\" }} ] }} }}\nroutes: [ {{ path_prefix: /v1/, pool: llm }} ]\n",
        a.url(),
        b.url()
    ))
    .await;
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/compat/openai_stream.py");
    let base = format!("http://{}/v1", gw.proxy_addr);
    // The client is synchronous: run it off the runtime's threads.
    let out = tokio::task::spawn_blocking(move || {
        Command::new("python3")
            .args([script, &base, "150", "8"])
            .output()
            .expect("python3 runs")
    })
    .await
    .unwrap();
    assert!(
        out.status.success(),
        "openai client failed ({}):\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let chunks = doc["chunks"].as_array().unwrap();
    let text: String = chunks
        .iter()
        .map(|c| c["content"].as_str().unwrap())
        .collect();
    assert_eq!(text, "tok0 tok1 tok2 tok3 tok4 tok5 tok6 tok7 ");
    assert_eq!(chunks[7]["finish_reason"], "stop");
    // Sent 150 ms apart, they arrive spread out, each within a small
    // margin of its send time (the first at once, the last ~1.05 s later).
    let t: Vec<f64> = chunks.iter().map(|c| c["t"].as_f64().unwrap()).collect();
    let first = t[0];
    for (k, tk) in t.iter().enumerate() {
        let since_first = tk - first;
        let sent = 0.150 * k as f64;
        assert!(
            since_first >= sent - 0.050 && since_first <= sent + 0.400,
            "chunk {k} arrived {since_first:.3}s after the first, sent at {sent:.3}s: {t:?}"
        );
    }
    assert_eq!(doc["content"], "tok0 tok1 tok2 ");
    assert_eq!(doc["model"], "mock-llm");
    assert_eq!(a.stats().requests + b.stats().requests, 2);
    gw.shutdown().await;
}
