//! What ships besides the gateway: the ready configs in `examples/` (the
//! seeds' two deployments) and the replicas' config of `deploy/compose/`
//! pass `fulcrum check`; `--version` and `GET
//! /version` agree; shell completions and the man page are generated;
//! systemd hears READY=1, RELOADING=1 and STOPPING=1 (Type=notify).

use crate::common::*;
use std::process::{Command, Stdio};
use std::time::Duration;

fn fulcrum(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_fulcrum"))
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn version_says_the_commit_and_date_like_get_version() {
    let out = fulcrum(&["--version"]);
    assert!(out.status.success());
    let line = String::from_utf8_lossy(&out.stdout).trim().to_string();
    let gw = gateway("").await;
    let v = get(&client(), &format!("http://{}/version", gw.admin_addr))
        .await
        .json();
    assert_eq!(
        line,
        format!(
            "fulcrum {} (commit {}, built {})",
            v["version"].as_str().unwrap(),
            v["commit"].as_str().unwrap(),
            v["build_date"].as_str().unwrap()
        )
    );
    assert_eq!(v["version"], env!("CARGO_PKG_VERSION"));
    let date = v["build_date"].as_str().unwrap();
    assert!(
        date.len() == 10 && date.as_bytes()[4] == b'-' && date.as_bytes()[7] == b'-',
        "YYYY-MM-DD: {date}"
    );
    assert_ne!(v["commit"], "", "{v}");
    gw.shutdown().await;
}

#[test]
fn completions_and_the_man_page_come_from_the_command_definitions() {
    for shell in ["bash", "zsh", "fish"] {
        let out = fulcrum(&["completions", shell]);
        assert!(out.status.success(), "{shell}");
        let script = String::from_utf8_lossy(&out.stdout);
        for sub in ["serve", "check", "reload", "demo", "drain"] {
            assert!(script.contains(sub), "{shell} completion lacks {sub}");
        }
    }
    // The bash script is valid bash.
    let dir = scratch_dir();
    let file = std::path::Path::new(&dir).join("fulcrum.bash");
    std::fs::write(&file, fulcrum(&["completions", "bash"]).stdout).unwrap();
    let ok = Command::new("bash").arg("-n").arg(&file).status().unwrap();
    assert!(ok.success(), "bash -n");
    let man = fulcrum(&["man"]);
    assert!(man.status.success());
    let man = String::from_utf8_lossy(&man.stdout);
    assert!(man.contains(".TH fulcrum 1"), "{man}");
    for sub in ["serve", "reload", "completions"] {
        assert!(man.contains(sub), "man page lacks {sub}");
    }
    let bad = fulcrum(&["completions", "tcsh"]);
    assert!(!bad.status.success());
}

/// systemd's side of Type=notify: a datagram socket named by
/// `NOTIFY_SOCKET` hears READY=1 once the gateway serves, RELOADING=1 with
/// MONOTONIC_USEC then READY=1 around a SIGHUP reload, and STOPPING=1 on
/// SIGTERM.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn systemd_hears_ready_reloading_and_stopping() {
    let dir = scratch_dir();
    let sock_path = std::path::Path::new(&dir).join("notify.sock");
    let sock = std::os::unix::net::UnixDatagram::bind(&sock_path).unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let file = std::path::Path::new(&dir).join("f.yaml");
    std::fs::write(
        &file,
        test_header().replace("registry: {", "registry: { enabled: false, "),
    )
    .unwrap();
    let log = std::path::Path::new(&dir).join("stderr.log");
    let mut child = ChildGuard(
        Command::new(env!("CARGO_BIN_EXE_fulcrum"))
            .args(["serve", "-c", file.to_str().unwrap(), "--threads", "1"])
            .env("NOTIFY_SOCKET", &sock_path)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap(),
    );
    let recv = || {
        let mut buf = [0u8; 512];
        match sock.recv(&mut buf) {
            Ok(n) => String::from_utf8_lossy(&buf[..n]).into_owned(),
            Err(e) => panic!(
                "no notification within 10 s ({e}); the gateway's log:\n{}",
                std::fs::read_to_string(&log).unwrap_or_default()
            ),
        }
    };
    assert_eq!(recv(), "READY=1\n");
    kill(child.0.id(), "-HUP");
    let reloading = recv();
    assert!(
        reloading.starts_with("RELOADING=1\nMONOTONIC_USEC="),
        "{reloading:?}"
    );
    assert_eq!(recv(), "READY=1\n");
    kill(child.0.id(), "-TERM");
    assert_eq!(recv(), "STOPPING=1\n");
    let status = child.0.wait().unwrap();
    assert!(status.success(), "{status:?}");
}

#[test]
fn every_example_config_and_the_compose_replicas_config_pass_check() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples");
    let mut paths: Vec<std::path::PathBuf> = std::fs::read_dir(dir)
        .expect("examples/")
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    let seen = paths.len();
    // The replicas' config of deploy/compose/ (docs/REPLICAS.md) too.
    paths.push(
        concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../deploy/compose/fulcrum.yaml"
        )
        .into(),
    );
    for path in paths {
        let out = Command::new(env!("CARGO_BIN_EXE_fulcrum"))
            .arg("check")
            .arg("-c")
            .arg(&path)
            .env("FULCRUM_ADMIN_TOKEN", "example-admin-token")
            .env("FULCRUM_REGISTRY_TOKEN", "example-registry-token")
            .stdin(Stdio::null())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}:\n{}",
            path.display(),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(String::from_utf8_lossy(&out.stdout).contains(": ok ("));
    }
    assert!(seen >= 2, "the voice-assistant and video-analysis examples");
}
