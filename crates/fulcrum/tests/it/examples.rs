//! The ready configs in `examples/` (the seeds' two deployments) pass
//! `fulcrum check` as shipped, with their `${…}` secrets given.

use std::process::{Command, Stdio};

#[test]
fn every_example_config_passes_check() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples");
    let mut seen = 0;
    for entry in std::fs::read_dir(dir).expect("examples/") {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "yaml") {
            continue;
        }
        seen += 1;
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
