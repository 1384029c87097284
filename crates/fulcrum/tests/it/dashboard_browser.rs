//! The dashboard in a real headless Chromium: this test starts a gateway
//! (admin token set, registry on) in front of mock ASR and TTS instances,
//! then runs `tests/browser/dashboard.py` (Selenium with Debian's
//! chromium and chromium-driver; `scripts/install-browser` installs them)
//! which drives the page and checks it against `/api/v1/pools`. The
//! screenshot it takes is the README's, `docs/img/dashboard.png`.

use crate::common::*;
use fulcrum_mock::{Latency, MockConfig};
use std::os::unix::process::CommandExt;
use std::process::Stdio;
use std::time::Duration;

async fn slowish(name: &str, min_ms: u64, max_ms: u64) -> fulcrum_mock::MockServer {
    mock_with(MockConfig {
        name: name.into(),
        latency: Latency::Uniform {
            min: Duration::from_millis(min_ms),
            max: Duration::from_millis(max_ms),
        },
        ..MockConfig::default()
    })
    .await
}

/// Kills the script's whole process group (python, chromedriver,
/// chromium) if the test ends early.
struct KillGroup(Option<u32>);

impl Drop for KillGroup {
    fn drop(&mut self) {
        if let Some(pid) = self.0 {
            let _ = std::process::Command::new("kill")
                .args(["-9", &format!("-{pid}")])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_works_in_a_real_browser() {
    for (tool, what) in [
        ("chromium", "Debian's chromium"),
        ("chromedriver", "Debian's chromium-driver"),
    ] {
        let found = std::process::Command::new("sh")
            .args(["-c", &format!("command -v {tool}")])
            .stdout(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        assert!(found, "{what} is missing: run ./scripts/install-browser");
    }
    let (asr1, asr2) = (
        slowish("asr-1", 5, 20).await,
        slowish("asr-2", 10, 40).await,
    );
    let (tts1, tts2) = (
        slowish("tts-1", 2, 10).await,
        slowish("tts-2", 20, 60).await,
    );
    let vision = mock("vision").await;
    let gw = gateway(&format!(
        "admin: {{ token: dash-s3cret }}\n\
         pools:\n\
         \x20 asr:\n    algorithm: least_connections\n    instances: [ {{ endpoint: \"{}\", max_concurrent: 8 }}, {{ endpoint: \"{}\", max_concurrent: 8 }} ]\n\
         \x20 tts:\n    algorithm: weighted_round_robin\n    instances: [ {{ endpoint: \"{}\", weight: 3 }}, {{ endpoint: \"{}\", weight: 1 }} ]\n\
         routes: [ {{ path_prefix: /asr, pool: asr }}, {{ path_prefix: /tts, pool: tts }} ]\n",
        asr1.url(),
        asr2.url(),
        tts1.url(),
        tts2.url()
    ))
    .await;
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/browser/dashboard.py");
    let shot = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/img/dashboard.png");
    let child = std::process::Command::new("python3")
        .arg("-B")
        .arg(script)
        .env("FULCRUM_ADMIN", format!("http://{}", gw.admin_addr))
        .env("FULCRUM_PROXY", format!("http://{}", gw.proxy_addr))
        .env("FULCRUM_TOKEN", "dash-s3cret")
        .env("FULCRUM_REG_ENDPOINT", vision.url())
        .env("FULCRUM_SCREENSHOT", shot)
        // Selenium must not look for a driver on the network.
        .env("SE_OFFLINE", "true")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .spawn()
        .expect("python3 runs");
    let mut group = KillGroup(Some(child.id()));
    let out = tokio::time::timeout(
        Duration::from_secs(180),
        tokio::task::spawn_blocking(move || child.wait_with_output()),
    )
    .await
    .expect("the browser test finishes within 180 s")
    .expect("join")
    .expect("wait");
    // The script ended (and quit its browser): nothing left to kill.
    group.0 = None;
    let (status, stdout, stderr) = (
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(
        status.success(),
        "the browser test failed ({status}); if selenium is missing run ./scripts/install-browser\n\
         --- stdout\n{stdout}\n--- stderr\n{stderr}"
    );
    assert!(stdout.contains("all checks passed"), "{stdout}");
    let png = std::fs::read(shot).expect("the screenshot was written");
    assert!(
        png.starts_with(b"\x89PNG") && png.len() > 10_000,
        "a real screenshot"
    );
    gw.shutdown().await;
}
