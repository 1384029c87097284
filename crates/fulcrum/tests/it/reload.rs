//! Reload through the admin API (`POST /api/v1/config/reload`) and
//! `fulcrum reload` on a running gateway with traffic: the change summary
//! is exact, in-flight requests and open WebSockets are unaffected, a
//! reverted listener change is no longer reported, an invalid file is
//! refused with the errors `fulcrum check` prints; `GET /api/v1/config`
//! shows the running config with its secrets redacted.

use crate::common::*;
use fulcrum_mock::{Latency, MockConfig};
use futures_util::{SinkExt, StreamExt};
use http::Method;
use serde_json::{json, Value};
use std::process::Stdio;
use std::time::Duration;
use tokio_tungstenite::tungstenite::Message;

const TOKEN: &str = "re1oad-t0ken";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reload_through_the_api_names_every_change_and_spares_traffic() {
    let slow = mock_with(MockConfig {
        name: "slow".into(),
        latency: Latency::Fixed(Duration::from_millis(1500)),
        ..MockConfig::default()
    })
    .await;
    let (a, b, c) = (mock("a").await, mock("b").await, mock("c").await);
    let dir = scratch_dir();
    let path = std::path::Path::new(&dir).join("fulcrum.yaml");
    let header = format!(
        "listen: 127.0.0.1:0\n\
         admin: {{ listen: 127.0.0.1:0, token: {TOKEN} }}\n\
         registry: {{ path: \"{dir}/store\", token: reg-secret }}\n\
         access_log: {{ path: off }}\n"
    );
    let v1 = format!(
        "pools:\n\
         \x20 asr:\n    instances: [ {{ endpoint: \"{a}\" }}, {{ endpoint: \"{b}\", weight: 2 }} ]\n\
         \x20 slow:\n    instances: [ {{ endpoint: \"{s}\" }} ]\n\
         routes: [ {{ path_prefix: /slow, pool: slow }}, {{ path_prefix: /, pool: asr }} ]\n",
        a = a.url(),
        b = b.url(),
        s = slow.url()
    );
    let write_raw = |text: String| std::fs::write(&path, text).unwrap();
    let write = |body: &str| write_raw(format!("{header}{body}"));
    write(&v1);
    let cfg = fulcrum_config::load_file(&path).expect("valid file");
    let gw = fulcrum::app::start_with(cfg, Duration::from_secs(5), Some(path.clone()))
        .await
        .expect("starts");
    let c_url = c.url();
    let client = client();
    let admin = |p: &str| format!("http://{}{p}", gw.admin_addr);
    let auth = [("authorization", format!("Bearer {TOKEN}"))];
    let auth: Vec<(&str, &str)> = auth.iter().map(|(k, v)| (*k, v.as_str())).collect();

    // Traffic in flight while the file changes: a slow request and an open WebSocket.
    let slow_req = {
        let (c2, url) = (client.clone(), format!("http://{}/slow/x", gw.proxy_addr));
        tokio::spawn(async move { get(&c2, &url).await.status })
    };
    let (mut ws, _) = tokio_tungstenite::connect_async(format!("ws://{}/ws", gw.proxy_addr))
        .await
        .expect("websocket through fulcrum");
    echo(&mut ws, "before").await;
    eventually(Duration::from_secs(2), "the slow request in flight", || {
        stats(&gw, "slow", &slow.url()).stats.in_flight == 1
    })
    .await;

    // No token: refused.
    let r = send(
        &client,
        Method::POST,
        &admin("/api/v1/config/reload"),
        b"",
        &[],
    )
    .await;
    assert_eq!(r.status, 401);

    // v2: a pool added, an instance added, one removed, one re-weighted,
    // a pool setting, a global setting, and a listener change (restart).
    let v2 = v1
        .replace(
            &format!("{{ endpoint: \"{}\", weight: 2 }}", b.url()),
            &format!("{{ endpoint: \"{c_url}\" }}"),
        )
        .replace(
            &format!("{{ endpoint: \"{}\" }}, ", a.url()),
            &format!("{{ endpoint: \"{}\", weight: 5 }}, ", a.url()),
        )
        .replace("  slow:\n", "  slow:\n    algorithm: least_connections\n")
        .replace(
            "routes:",
            &format!("  tts:\n    instances: [ {{ endpoint: \"{c_url}\" }} ]\nlimits: {{ max_body: 2MiB }}\nroutes:"),
        );
    write_raw(format!("{header}{v2}").replacen(
        "listen: 127.0.0.1:0\n",
        "listen: 127.0.0.1:1\n",
        1,
    ));
    let r = send(
        &client,
        Method::POST,
        &admin("/api/v1/config/reload"),
        b"",
        &auth,
    )
    .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let rep = r.json();
    let ep = |pool: &str, url: &str| json!({"pool": pool, "endpoint": url});
    assert_eq!(
        rep["changes"],
        json!({
            "pools_added": ["tts"],
            "pools_removed": [],
            "pools_changed": [{"pool": "slow", "settings": ["algorithm"]}],
            "instances_added": [ep("asr", &c_url)],
            "instances_removed": [ep("asr", &b.url())],
            "instances_changed": [{"pool": "asr", "endpoint": a.url(), "fields": ["weight"]}],
            "settings_changed": ["limits.max_body"],
        }),
        "{rep}"
    );
    assert_eq!(rep["restart_needed"], json!(["listen"]), "{rep}");
    let summary = rep["summary"].as_str().unwrap();
    assert!(summary.contains("pools added: tts"), "{summary}");
    assert!(
        summary.contains("needs a restart to apply: listen"),
        "{summary}"
    );

    // The new config serves; the slow request and the WebSocket did not notice.
    let r = get(&client, &format!("http://{}/x", gw.proxy_addr)).await;
    assert_eq!(r.status, 200);
    assert_eq!(
        slow_req.await.unwrap(),
        200,
        "the in-flight request finished"
    );
    echo(&mut ws, "after").await;
    ws.close(None).await.unwrap();

    // The running config, secrets redacted.
    let cfg = get(&client, &admin("/api/v1/config")).await.json();
    assert_eq!(cfg["pools"]["asr"]["instances"][0]["weight"], 5);
    assert_eq!(
        cfg["pools"]["tts"]["instances"][0]["endpoint"],
        c_url.as_str()
    );
    assert_eq!(cfg["admin"]["token"], "<redacted>");
    assert_eq!(cfg["registry"]["token"], "<redacted>");
    let text = cfg.to_string();
    assert!(
        !text.contains(TOKEN) && !text.contains("reg-secret"),
        "{text}"
    );

    // The listener change reverted: nothing is left to restart for.
    write(&v2);
    let r = send(
        &client,
        Method::POST,
        &admin("/api/v1/config/reload"),
        b"",
        &auth,
    )
    .await;
    assert_eq!(r.json()["restart_needed"], json!([]), "no stale warning");
    assert!(r.json()["changes"]["settings_changed"]
        .as_array()
        .unwrap()
        .is_empty());

    // An invalid file: refused with what `fulcrum check` prints; the
    // running config stays.
    let bad = v2
        .replace("weight: 5", "weight: heavy")
        .replace("routes:", "routse:\nroutes:");
    write(&bad);
    let r = send(
        &client,
        Method::POST,
        &admin("/api/v1/config/reload"),
        b"",
        &auth,
    )
    .await;
    assert_eq!(r.status, 422, "{:?}", r.body);
    let errors: Vec<String> = r.json()["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e.as_str().unwrap().to_string())
        .collect();
    assert_eq!(errors.len(), 2, "{errors:?}");
    let check = std::process::Command::new(env!("CARGO_BIN_EXE_fulcrum"))
        .args(["check", "-c"])
        .arg(&path)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let printed = String::from_utf8_lossy(&check.stderr);
    for e in &errors {
        assert!(
            printed.contains(e.as_str()),
            "`{e}` not in check's output:\n{printed}"
        );
    }
    assert_eq!(
        get(&client, &admin("/api/v1/config")).await.json()["pools"]["asr"]["instances"][0]
            ["weight"],
        5
    );
    let evs = get(&client, &admin("/api/v1/events")).await.json();
    let kinds: Vec<&str> = evs["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["kind"].as_str())
        .collect();
    assert_eq!(
        kinds.iter().filter(|k| **k == "reloaded").count(),
        2,
        "{kinds:?}"
    );
    assert_eq!(kinds.iter().filter(|k| **k == "reload_failed").count(), 1);

    // `fulcrum reload` says the same in a line, and exits non-zero on the bad file.
    let cli = |args: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_fulcrum"))
            .arg("reload")
            .args(["--admin", &admin(""), "--token", TOKEN])
            .args(args)
            .stdin(Stdio::null())
            .output()
            .unwrap()
    };
    let out = cli(&[]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("422") && err.contains(errors[0].as_str()),
        "{err}"
    );
    write(&v2);
    let out = cli(&[]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "reloaded: no changes"
    );
    gw.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gateway_without_a_file_says_it_has_nothing_to_reload() {
    let gw = gateway("").await;
    let r = post(
        &client(),
        &format!("http://{}/api/v1/config/reload", gw.admin_addr),
        b"",
    )
    .await;
    assert_eq!(r.status, 409);
    let body: Value = r.json();
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("without a config file"),
        "{body}"
    );
    gw.shutdown().await;
}

/// Sends `text` on the WebSocket and expects it echoed.
async fn echo<S>(ws: &mut S, text: &str)
where
    S: futures_util::Sink<Message>
        + futures_util::Stream<Item = Result<Message, tokio_tungstenite::tungstenite::Error>>
        + Unpin,
    <S as futures_util::Sink<Message>>::Error: std::fmt::Debug,
{
    ws.send(Message::Text(text.into())).await.unwrap();
    let got = ws.next().await.unwrap().unwrap().into_text().unwrap();
    assert_eq!(got.as_str(), text);
}
