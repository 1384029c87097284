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
    assert_eq!(code, 78, "EX_CONFIG");
    for want in [
        "\n4 errors\n",
        "listen:",
        "pools.p.algorithm:",
        "pools.p.instances[0].weight:",
        "routes[0].pool:",
    ] {
        assert!(err.contains(want), "missing {want} in {err}");
    }
    let (code, _, positional) = fulcrum(&["check", bad.to_str().unwrap()]);
    assert_eq!((code, &positional), (78, &err), "FILE works as -c FILE");
    let good = dir.join("good.yaml");
    std::fs::write(&good, "pools: { p: { instances: [ { endpoint: \"http://127.0.0.1:1\" } ] } }\nroutes: [ { path_prefix: /, pool: p } ]\n").unwrap();
    let (code, out, _) = fulcrum(&["check", "-c", good.to_str().unwrap()]);
    assert_eq!(code, 0);
    assert!(out.contains("ok (1 pools, 1 instances, 1 routes)"), "{out}");
    let (code, _, err) = fulcrum(&["check", "-c", dir.join("missing.yaml").to_str().unwrap()]);
    assert_eq!(code, 78);
    assert!(err.contains("cannot read"), "{err}");
}

#[test]
fn serve_refuses_an_invalid_config_with_a_clear_message() {
    let dir = std::env::temp_dir().join(format!("fulcrum-cli-serve-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let bad = dir.join("bad.yaml");
    std::fs::write(&bad, "pools: { p: { algorithm: nope } }\n").unwrap();
    let (code, _, err) = fulcrum(&["serve", "-c", bad.to_str().unwrap()]);
    assert_eq!(code, 78, "EX_CONFIG, as check");
    // Placed as `fulcrum check` places it.
    let at = format!(
        "{}:1:26: pools.p.algorithm: unknown algorithm `nope`",
        bad.display()
    );
    assert!(err.contains(&at), "{err}");
}

/// The file of [`check_reports_ten_mistakes_once_each_at_their_line`]:
/// ten mistakes in six sections, from the top level down to an item of a
/// pool's instance list, in block and flow style.
const TEN_MISTAKES: &str = "\
listn: 0.0.0.0:8080
health_check:
  interval: 10s
  jitter: 3
limits:
  max_body: 64Mib
pools:
  asr:
    algorithm: round_robbin
    retry:
      tries: 2
      on: [error, timout]
    instances:
      - endpoint: http://127.0.0.1:8100
        weight: heavy
      - { endpoint: \"http://127.0.0.1:8101\", max_concurent: 4 }
  llm:
    timeouts: { connect: 2 parsecs, idle: 30s }
    instances:
      - { endpoint: \"http://127.0.0.1:8102\", priority: high }
registry:
  max_instances: many
routes:
  - { path_prefix: /asr/, pool: asrr }
  - { path_prefix: /llm/, pool: llm }
";

#[test]
fn check_reports_ten_mistakes_once_each_at_their_line() {
    let dir = std::env::temp_dir().join(format!("fulcrum-cli-ten-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("fulcrum.yaml");
    std::fs::write(&file, TEN_MISTAKES).unwrap();
    let name = file.to_str().unwrap();
    let (code, out, err) = fulcrum(&["check", name]);
    assert_eq!(code, 78, "{out}{err}");
    // (line, column, path, what the message says, ending with the
    // suggestion where there is one)
    let want: [(usize, usize, &str, &str); 10] = [
        (1, 1, "listn", "unknown key; did you mean `listen`?"),
        (
            4,
            11,
            "health_check.jitter",
            "must be a fraction between 0 and 1",
        ),
        (6, 13, "limits.max_body", "did you mean `64MiB`?"),
        (9, 16, "pools.asr.algorithm", "did you mean `round_robin`?"),
        (12, 19, "pools.asr.retry.on[1]", "did you mean `timeout`?"),
        (
            15,
            17,
            "pools.asr.instances[0].weight",
            "expected a whole number, got the text \"heavy\"",
        ),
        (
            16,
            46,
            "pools.asr.instances[1].max_concurent",
            "unknown key; did you mean `max_concurrent`?",
        ),
        (
            18,
            26,
            "pools.llm.timeouts.connect",
            "invalid duration `2 parsecs`",
        ),
        (
            22,
            18,
            "registry.max_instances",
            "expected a whole number, got the text \"many\"",
        ),
        (
            24,
            33,
            "routes[0].pool",
            "no pool named `asrr`; did you mean `asr`?",
        ),
    ];
    let got: Vec<&str> = err
        .lines()
        .filter(|l| l.starts_with(&format!("{name}:")))
        .collect();
    assert_eq!(got.len(), want.len(), "{err}");
    for ((line, column, path, says), got) in want.iter().zip(&got) {
        let head = format!("{name}:{line}:{column}: {path}: ");
        assert!(
            got.starts_with(&head) && got.contains(says),
            "want `{head}…{says}`, got `{got}`\n{err}"
        );
    }
    assert!(err.ends_with("\n10 errors\n"), "{err}");
    // The source line and a caret under the column follow each error.
    assert!(
        err.contains(" 9 |     algorithm: round_robbin\n   |                ^\n"),
        "{err}"
    );
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

/// Usage mistakes are answered by clap with exit code 2 and a hint, not
/// taken as something else.
#[test]
fn usage_mistakes_exit_2_with_a_hint() {
    let (code, _, err) = fulcrum(&["serve", "--threads", "0"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("1 or more"), "{err}");
    let (code, _, err) = fulcrum(&["stats", "--admin", "ftp://127.0.0.1:9090"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("http://"), "{err}");
    let (code, _, err) = fulcrum(&["serve", "--no-such-flag"]);
    assert_eq!(code, 2, "{err}");
    // `weight … 0` explains how to undo an override or stop traffic.
    let (code, _, err) = fulcrum(&["weight", "http://127.0.0.1:1", "0"]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("clear") && err.contains("drain"), "{err}");
}

/// `fulcrum mock --help` lists every mode its parser accepts, with what
/// each does.
#[test]
fn mock_help_lists_every_mode_the_parser_accepts() {
    let (code, out, _) = fulcrum(&["mock", "--help"]);
    assert_eq!(code, 0);
    for mode in fulcrum_mock::FailureMode::ALL {
        let name = mode.to_string();
        assert_eq!(name.parse::<fulcrum_mock::FailureMode>(), Ok(mode));
        assert!(
            out.contains(&format!("{name}:")),
            "--help lacks {name}: {out}"
        );
        assert!(out.contains(mode.help()), "{out}");
    }
    let (code, _, err) = fulcrum(&["mock", "--mode", "explode"]);
    assert_eq!(code, 2);
    assert!(err.contains("garbage"), "{err}");
}

/// The client finds an instance by another spelling of its URL, takes
/// `--admin HOST:PORT`, and its hint for an unknown instance speaks of the
/// CLI.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_client_takes_other_spellings_of_urls() {
    use crate::common::*;
    let a = mock("a").await;
    let gw = gateway(&format!(
        "pools: {{ p: {{ instances: [ {{ endpoint: \"{}\" }} ] }} }}\nroutes: [ {{ path_prefix: /, pool: p }} ]\n",
        a.url()
    ))
    .await;
    let admin = gw.admin_addr.to_string();
    let spelled = format!("{}/", a.url().replace("http://", "HTTP://"));
    let (code, out, err) = run(vec![
        "drain".into(),
        spelled,
        "--admin".into(),
        admin.clone(),
    ])
    .await;
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("drained=true"), "{out}");
    assert!(stats(&gw, "p", &a.url()).stats.drained);
    let (code, _, err) = run(vec![
        "enable".into(),
        "http://127.0.0.1:1".into(),
        "--admin".into(),
        admin,
    ])
    .await;
    assert_eq!(code, 1);
    assert!(
        err.contains("404") && err.contains("fulcrum stats"),
        "{err}"
    );
    assert!(!err.contains("percent"), "{err}");
    gw.shutdown().await;
}
