//! The gateway's own limits are not the instances' fault: when the real
//! binary runs out of file descriptors, callers get `503` with a clear
//! reason, no instance is ejected or marked failed, and service resumes as
//! soon as descriptors free up.

use crate::common::*;
use fulcrum_mock::{Latency, MockConfig};
use std::process::{Command, Stdio};
use std::time::Duration;

/// Kills the gateway process even when an assertion fails first.
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn running_out_of_file_descriptors_never_ejects_an_instance() {
    let m = mock_with(MockConfig {
        name: "slow".into(),
        latency: Latency::Fixed(Duration::from_millis(1500)),
        ..MockConfig::default()
    })
    .await;
    let (port, admin) = (free_port(), free_port());
    let dir = std::path::PathBuf::from(scratch_dir());
    let file = dir.join("f.yaml");
    std::fs::write(
        &file,
        format!(
            "listen: 127.0.0.1:{port}\nadmin: {{ listen: 127.0.0.1:{admin} }}\nregistry: {{ enabled: false }}\npools: {{ p: {{ passive: {{ max_fails: 1 }}, instances: [ {{ endpoint: \"{}\" }} ] }} }}\nroutes: [ {{ path_prefix: /, pool: p }} ]\n",
            m.url()
        ),
    )
    .unwrap();
    // `ulimit -n` sets the hard limit too, so the gateway cannot raise it.
    let _child = KillOnDrop(
        Command::new("sh")
            .arg("-c")
            .arg(format!(
                "ulimit -n 48 && exec '{}' serve -c '{}' --threads 1",
                env!("CARGO_BIN_EXE_fulcrum"),
                file.display()
            ))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let c = client();
    let base = format!("http://127.0.0.1:{port}");
    let pools = format!("http://127.0.0.1:{admin}/api/v1/pools");
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while c
        .request(http::Request::get(&pools).body(Default::default()).unwrap())
        .await
        .is_err()
    {
        assert!(
            std::time::Instant::now() < deadline,
            "gateway did not start"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // 40 callers at once, each on its own connection, while each request
    // holds a caller and an instance connection for 1.5 s.
    let calls: Vec<_> = (0..40)
        .map(|i| {
            let url = format!("{base}/r{i}");
            tokio::spawn(async move {
                let own = client();
                get(&own, &url).await
            })
        })
        .collect();
    let mut ok = 0;
    let mut exhausted = 0;
    for call in calls {
        let r = call.await.unwrap();
        match r.status.as_u16() {
            200 => ok += 1,
            503 => {
                let msg = r.json()["error"].as_str().unwrap().to_string();
                assert!(msg.contains("out of resources"), "{msg}");
                assert!(
                    !msg.contains("127.0.0.1") && !msg.contains("open files"),
                    "the address and the system's error stay in the log: {msg}"
                );
                exhausted += 1;
            }
            other => panic!("status {other}: {:?}", r.body),
        }
    }
    assert!(exhausted > 0, "the limit was never reached ({ok} ok)");
    assert!(ok > 0);

    // The instance is blameless: not ejected, no failures, and the next
    // request is served at once.
    let doc = get(&c, &pools).await.json();
    let inst = &doc["pools"][0]["instances"][0];
    assert_eq!(inst["ejected"], false, "{inst}");
    assert_eq!(inst["failures"], 0, "{inst}");
    assert_eq!(inst["healthy"], true, "{inst}");
    assert_eq!(get(&c, &format!("{base}/after")).await.status, 200);

    let _ = std::fs::remove_dir_all(&dir);
}
