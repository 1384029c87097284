use std::process::Command;

fn fulcrum(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_fulcrum"))
        .args(args)
        .output()
        .expect("runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).to_string(),
        String::from_utf8_lossy(&out.stderr).to_string(),
    )
}

#[test]
fn help_answers_for_every_command() {
    for args in [
        &["--help"][..],
        &["serve", "--help"],
        &["check", "--help"],
        &["demo", "--help"],
        &["stats", "--help"],
    ] {
        let (code, out, _) = fulcrum(args);
        assert_eq!(code, 0, "{args:?}");
        assert!(out.contains("Usage"), "{args:?}: {out}");
    }
    let (_, out, _) = fulcrum(&["serve", "--help"]);
    assert!(
        out.contains("--config") && out.contains("embedded default"),
        "{out}"
    );
    let (_, out, _) = fulcrum(&["demo", "--help"]);
    for flag in ["--listen", "--admin", "--rps", "--duration"] {
        assert!(out.contains(flag), "{flag}: {out}");
    }
    let (_, out, _) = fulcrum(&["stats", "--help"]);
    assert!(out.contains("--watch [<INTERVAL>]"), "{out}");
}

#[test]
fn check_prints_every_error_with_its_path_and_fails() {
    let dir = std::env::temp_dir().join(format!("fulcrum-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let bad = dir.join("bad.yaml");
    std::fs::write(
        &bad,
        "listen: nowhere\npools:\n  p:\n    algorithm: fastest\n    instances: [ { endpoint: \"http://h:1\", weight: 0 } ]\nroutes: [ { path_prefix: /, pool: q } ]\n",
    )
    .unwrap();
    let (code, _, err) = fulcrum(&["check", "-c", bad.to_str().unwrap()]);
    assert_eq!(code, 2);
    for want in [
        "4 error(s)",
        "listen:",
        "pools.p.algorithm:",
        "pools.p.instances[0].weight:",
        "routes[0].pool:",
    ] {
        assert!(err.contains(want), "missing {want} in {err}");
    }
    let good = dir.join("good.yaml");
    std::fs::write(&good, "pools: { p: { instances: [ { endpoint: \"http://127.0.0.1:1\" } ] } }\nroutes: [ { path_prefix: /, pool: p } ]\n").unwrap();
    let (code, out, _) = fulcrum(&["check", "-c", good.to_str().unwrap()]);
    assert_eq!(code, 0);
    assert!(out.contains("ok (1 pools, 1 instances, 1 routes)"), "{out}");
    let (code, _, err) = fulcrum(&["check", "-c", dir.join("missing.yaml").to_str().unwrap()]);
    assert_eq!(code, 2);
    assert!(err.contains("cannot read"), "{err}");
}

#[test]
fn serve_refuses_an_invalid_config_with_a_clear_message() {
    let dir = std::env::temp_dir().join(format!("fulcrum-cli-serve-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let bad = dir.join("bad.yaml");
    std::fs::write(&bad, "pools: { p: { algorithm: nope } }\n").unwrap();
    let (code, _, err) = fulcrum(&["serve", "-c", bad.to_str().unwrap()]);
    assert_eq!(code, 1);
    assert!(err.contains("pools.p.algorithm"), "{err}");
}

async fn run(args: Vec<String>) -> (i32, String, String) {
    tokio::task::spawn_blocking(move || {
        let out = Command::new(env!("CARGO_BIN_EXE_fulcrum"))
            .args(&args)
            .output()
            .expect("runs");
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).to_string(),
            String::from_utf8_lossy(&out.stderr).to_string(),
        )
    })
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_client_commands_print_tables_and_change_instances() {
    use crate::common::*;
    let (a, b) = (mock("a").await, mock("b").await);
    let gw = gateway(&format!(
        "pools: {{ p: {{ algorithm: weighted_round_robin, instances: [ {{ endpoint: \"{}\" }}, {{ endpoint: \"{}\", weight: 2 }} ] }} }}\nroutes: [ {{ path_prefix: /, pool: p }} ]\n",
        a.url(),
        b.url()
    ))
    .await;
    let c = client();
    for _ in 0..6 {
        get(&c, &format!("http://{}/", gw.proxy_addr)).await;
    }
    let reg = format!(
        r#"{{"service_id":"yolo","task_types":["人数统计"],"endpoint":"{}/infer"}}"#,
        a.url()
    );
    send(
        &c,
        http::Method::POST,
        &format!("http://{}/api/v1/ai_analysis/register", gw.admin_addr),
        reg.as_bytes(),
        &[],
    )
    .await;
    let admin = format!("http://{}", gw.admin_addr);

    let (code, out, err) = run(vec!["services".into(), "--admin".into(), admin.clone()]).await;
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("SERVICE")
            && out.contains("yolo")
            && out.contains("人数统计")
            && out.contains("1 registered"),
        "{out}"
    );

    let (code, out, _) = run(vec![
        "stats".into(),
        "p".into(),
        "--admin".into(),
        admin.clone(),
    ])
    .await;
    assert_eq!(code, 0);
    assert!(
        out.contains("pool p (weighted_round_robin, 0 queued; a/b = last 60s / since start)")
            && out.contains("33.3/33.3%")
            && out.contains("66.7/66.7%")
            && out.contains("0.0/0.0%"),
        "{out}"
    );

    let (code, out, err) = run(vec![
        "drain".into(),
        a.url(),
        "--admin".into(),
        admin.clone(),
    ])
    .await;
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("drained=true"), "{out}");
    let (_, out, _) = run(vec![
        "stats".into(),
        "--json".into(),
        "--admin".into(),
        admin.clone(),
    ])
    .await;
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert!(v.as_array().unwrap().iter().any(|p| p["instances"]
        .as_array()
        .unwrap()
        .iter()
        .any(|i| i["drained"] == true)));
    let (code, out, _) = run(vec![
        "weight".into(),
        b.url(),
        "5".into(),
        "--admin".into(),
        admin.clone(),
    ])
    .await;
    assert_eq!(code, 0);
    assert!(out.contains("weight=5"), "{out}");

    let (code, _, err) = run(vec![
        "stats".into(),
        "nosuchpool".into(),
        "--admin".into(),
        admin.clone(),
    ])
    .await;
    assert_eq!(code, 1);
    assert!(err.contains("no pool named"), "{err}");
    let (code, _, err) = run(vec![
        "services".into(),
        "--admin".into(),
        "http://127.0.0.1:1".into(),
    ])
    .await;
    assert_eq!(code, 1);
    assert!(err.contains("cannot reach the admin API"), "{err}");
}

#[test]
fn a_corrupt_registry_store_stops_start_up_with_a_clear_message() {
    let dir = std::env::temp_dir().join(format!("fulcrum-corrupt-{}", std::process::id()));
    std::fs::create_dir_all(dir.join("store")).unwrap();
    std::fs::write(
        dir.join("store/registry.redb"),
        b"this is not a database, just some bytes that got here",
    )
    .unwrap();
    let cfg = dir.join("f.yaml");
    std::fs::write(
        &cfg,
        format!(
            "listen: 127.0.0.1:0\nadmin: {{ listen: 127.0.0.1:0 }}\nregistry: {{ path: \"{}\" }}\n",
            dir.join("store").display()
        ),
    )
    .unwrap();
    let (code, _, err) = fulcrum(&["serve", "-c", cfg.to_str().unwrap()]);
    assert_eq!(code, 1);
    assert!(
        err.contains("registry.redb") && err.contains("corrupt") && err.contains("move it aside"),
        "{err}"
    );
    assert_eq!(
        std::fs::read(dir.join("store/registry.redb")).unwrap(),
        b"this is not a database, just some bytes that got here",
        "the store is left untouched"
    );
}
