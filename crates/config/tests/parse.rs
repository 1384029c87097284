use fulcrum_config::{embedded_default, parse, Probe};
use fulcrum_policy::{Algorithm, Priority};
use std::time::Duration;

fn env(k: &str) -> Option<String> {
    (k == "FULCRUM_ADMIN_TOKEN").then(|| "t0ken".to_string())
}

const EXAMPLE: &str = r#"
listen: 0.0.0.0:8080
admin:
  listen: 127.0.0.1:9090
  token: ${FULCRUM_ADMIN_TOKEN}
health_check:
  interval: 30s
  timeout: 2s
  path: /health
  failure_threshold: 3
  recovery_threshold: 2
passive:
  max_fails: 2
  fail_timeout: 30s
timeouts:
  connect: 2s
  response_header: 60s
  idle: 120s
  client_header: 10s
limits:
  max_body: 64MiB
  max_header: 32KiB
  max_connections: 65536
pools:
  asr:
    algorithm: least_connections
    instances:
      - { endpoint: http://127.0.0.1:8100, weight: 2, max_concurrent: 10 }
      - { endpoint: http://127.0.0.1:8101, weight: 1, max_concurrent: 5 }
  llm:
    algorithm: weighted_round_robin
    retry: { tries: 2, on: [error, timeout, http_502, http_503, http_504], timeout: 3s, non_idempotent: false }
    health_check: { path: tcp, interval: 5s }
    instances:
      - { endpoint: http://127.0.0.1:11434, weight: 4, priority: high, max_concurrent: 8 }
      - { endpoint: http://10.1.2.3:80/v1, weight: 1, priority: low, max_concurrent: 3 }
routes:
  - { path_prefix: /asr/, pool: asr, strip_prefix: true }
  - { path_prefix: /llm/, pool: llm, strip_prefix: true, host: API.example.com }
"#;

#[test]
fn the_product_example_parses_with_every_value_in_place() {
    let c = parse(EXAMPLE, &env).unwrap();
    assert_eq!(c.listen.to_string(), "0.0.0.0:8080");
    assert_eq!(c.admin.token.as_deref(), Some("t0ken"));
    assert_eq!(c.limits.max_body, 64 << 20);
    let asr = &c.pools["asr"];
    assert_eq!(asr.algorithm, Algorithm::LeastConnections);
    assert_eq!(asr.instances[0].weight, 2);
    assert_eq!(asr.instances[1].max_concurrent, Some(5));
    assert_eq!(asr.health_check.interval, Duration::from_secs(30));
    assert_eq!(asr.passive.max_fails, 2);
    let llm = &c.pools["llm"];
    assert_eq!(llm.health_check.probe, Probe::Tcp);
    assert_eq!(llm.health_check.interval, Duration::from_secs(5));
    assert_eq!(
        llm.health_check.timeout,
        Duration::from_secs(2),
        "inherits the global timeout"
    );
    assert_eq!(llm.instances[0].priority, Priority::High);
    assert_eq!(llm.instances[1].endpoint.base_path, "/v1");
    assert_eq!(llm.instances[1].endpoint.authority, "10.1.2.3:80");
    assert_eq!(llm.retry.timeout, Some(Duration::from_secs(3)));
    assert!(llm.retry.on.statuses.contains(&503));
    assert_eq!(c.routes[1].host.as_deref(), Some("api.example.com"));
    assert!(c.routes[0].strip_prefix);
}

#[test]
fn the_embedded_default_listens_where_the_docs_say() {
    let c = embedded_default();
    assert_eq!(c.listen.to_string(), "0.0.0.0:8080");
    assert_eq!(c.admin.listen.to_string(), "127.0.0.1:9090");
    assert!(c.pools.is_empty() && c.routes.is_empty());
}

fn errors(text: &str) -> Vec<String> {
    parse(text, &env)
        .unwrap_err()
        .0
        .iter()
        .map(|e| e.to_string())
        .collect()
}

#[test]
fn every_error_is_reported_with_its_yaml_path() {
    let errs = errors(
        r#"
listn: 0.0.0.0:1
admin: { listen: nowhere }
pools:
  a:
    algorithm: fastest
    instances:
      - { endpoint: "ftp://x", weight: 1 }
      - { endpoint: "http://h:1", wieght: 3, weight: 0 }
  b:
    instances:
      - { endpoint: "http://h:2", priority: urgent, max_concurrent: "many" }
routes:
  - { path_prefix: /a/, pool: nope }
  - { path_prefix: b/, pool: a, strip: true }
"#,
    );
    let want = [
        "listn: unknown key",
        "admin.listen: `nowhere` is not an address",
        "pools.a.algorithm: unknown algorithm `fastest`",
        "pools.a.instances[0].endpoint: `ftp://x`: scheme `ftp` is not supported",
        "pools.a.instances[1].wieght: unknown key",
        "pools.a.instances[1].weight: must be at least 1",
        "pools.b.instances[0].max_concurrent: `many` is not a limit: expected a number of requests (at least 1), `auto`, or `{ min: N, max: M }` to learn it within bounds",
        "routes[0].pool: no pool named `nope`",
        "routes[1].path_prefix: must start with `/`",
        "routes[1].strip: unknown key",
    ];
    for w in want {
        assert!(
            errs.iter().any(|e| e.starts_with(w)),
            "missing `{w}` in {errs:#?}"
        );
    }
}

#[test]
fn bad_units_and_values_are_named() {
    // Each bad value is named, several in one section too.
    let errs = errors("health_check: { interval: 30 }\ntimeouts: { connect: 2 parsecs, idle: 0 }\nlimits: { max_body: 12XB }");
    for w in [
        "health_check.interval: `30` has no unit",
        "timeouts.connect: invalid duration `2 parsecs`",
        "timeouts.idle: `0` has no unit",
        "limits.max_body: invalid size `12XB`",
    ] {
        assert!(
            errs.iter().any(|e| e.starts_with(w)),
            "missing `{w}` in {errs:#?}"
        );
    }
    // A bad global value is reported once, where it is written, not once
    // per pool that inherits it.
    let errs = errors("health_check: { failure_threshold: 0 }\npools: { p: {}, q: {} }");
    assert_eq!(
        errs,
        ["health_check.failure_threshold: must be at least 1"],
        "{errs:?}"
    );
}

#[test]
fn endpoints_with_credentials_queries_or_no_scheme_are_refused() {
    for (ep, why) in [
        ("http://user:pw@h:1", "credentials"),
        ("http://h:1/x?y=1", "query"),
        ("h:1", "scheme"),
        ("ftp://h", "ftp"),
    ] {
        let errs = errors(&format!(
            "pools: {{ p: {{ instances: [ {{ endpoint: \"{ep}\" }} ] }} }}"
        ));
        assert!(errs.iter().any(|e| e.contains(why)), "{ep}: {errs:?}");
    }
}

#[test]
fn unset_env_and_bad_yaml_are_clear() {
    // In a flow mapping `{…}` a reference is quoted (braces are YAML syntax there).
    assert!(errors("admin: { token: \"${NOT_SET_ANYWHERE}\" }")[0].contains("NOT_SET_ANYWHERE"));
    assert!(errors("admin:\n  token: ${NOT_SET_ANYWHERE}\n")[0].starts_with("admin.token: "));
    assert!(errors("pools: [unclosed")[0].starts_with("invalid YAML"));
    assert!(errors("- a\n- b")[0].contains("must be a mapping"));
}

#[test]
fn dynamic_weights_merge_a_pool_over_the_global_section_and_check_values_where_written() {
    let cfg = parse(
        "dynamic_weights: { interval: 30s, max_step: 0.2 }\npools:\n  a: { dynamic_weights: { max: 50 } }\n  b: {}\n  c: { dynamic_weights: { enabled: false } }\n",
        &env,
    )
    .unwrap();
    let a = cfg.pools["a"].dynamic_weights.unwrap();
    assert_eq!((a.interval_ms, a.max_weight, a.max_step), (30_000, 50, 0.2));
    let b = cfg.pools["b"].dynamic_weights.unwrap();
    assert_eq!(
        (b.interval_ms, b.max_weight, b.max_step),
        (30_000, 1000, 0.2)
    );
    assert_eq!(cfg.pools["c"].dynamic_weights, None);
    assert!(
        cfg.default_pool.dynamic_weights.is_some(),
        "registered pools too"
    );
    let alone = parse("pools: { a: { dynamic_weights: {} }, b: {} }", &env).unwrap();
    assert_eq!(
        alone.pools["a"].dynamic_weights,
        Some(fulcrum_policy::dynamic_weight::DynamicWeights::default())
    );
    assert_eq!(alone.pools["b"].dynamic_weights, None, "off unless written");
    let errs = errors(
        "dynamic_weights: { interval: 10ms }\npools: { a: { dynamic_weights: { max: 1, max_step: 1.5, intreval: 5s } }, b: {} }",
    );
    assert_eq!(
        errs,
        vec![
            "dynamic_weights.interval: 10ms: must be from 100ms to 3600s".to_string(),
            "pools.a.dynamic_weights.max: must be a whole number from 2 to 1000000".into(),
            "pools.a.dynamic_weights.max_step: must be a fraction above 0 and at most 1 (0.3 = 30 % per interval)".into(),
            "pools.a.dynamic_weights.intreval: unknown key; did you mean `interval`?".into(),
        ],
        "each once, where written"
    );
}

#[test]
fn tls_settings_are_read_and_checked() {
    let cfg = parse(
        "tls: { cert: certs/a.pem, key: /abs/k.pem }\npools: { p: { tls: { ca: ca.pem, server_name: asr.internal }, instances: [ { endpoint: \"https://10.0.0.5\" } ] } }",
        &env,
    )
    .unwrap();
    let tls = cfg.tls.clone().unwrap();
    assert_eq!(tls.cert, std::path::PathBuf::from("certs/a.pem"));
    let p = &cfg.pools["p"];
    assert_eq!(p.tls.server_name.as_deref(), Some("asr.internal"));
    let ep = &p.instances[0].endpoint;
    assert_eq!(
        (ep.scheme.as_str(), ep.authority.as_str()),
        ("https", "10.0.0.5:443")
    );
    // Relative paths are taken from the config file's folder.
    let mut cfg = cfg;
    cfg.resolve_paths(std::path::Path::new("/etc/fulcrum"));
    let tls = cfg.tls.unwrap();
    assert_eq!(
        tls.cert,
        std::path::PathBuf::from("/etc/fulcrum/certs/a.pem")
    );
    assert_eq!(tls.key, std::path::PathBuf::from("/abs/k.pem"));
    assert_eq!(
        cfg.pools["p"].tls.ca.as_deref(),
        Some(std::path::Path::new("/etc/fulcrum/ca.pem"))
    );

    let errs = errors(
        "tls: { cert: \"\" }\npools: { p: { tls: { server_name: \"not a name\", bogus: 1 } } }",
    );
    for w in [
        "tls: missing key `key`",
        "pools.p.tls.server_name: `not a name` is not a DNS name",
        "pools.p.tls.bogus: unknown key",
    ] {
        assert!(errs.iter().any(|e| e.starts_with(w)), "{w}: {errs:?}");
    }
}

#[test]
fn cache_settings_have_defaults_and_are_checked() {
    let cfg = parse(
        "pools: { tts: { cache: { ttl: 1h, methods: [post, GET] } } }",
        &env,
    )
    .unwrap();
    let c = cfg.pools["tts"].cache.clone().unwrap();
    assert_eq!(c.ttl, std::time::Duration::from_secs(3600));
    assert_eq!(c.methods, vec![http::Method::POST, http::Method::GET]);
    assert_eq!(c.max_size, 256 << 20);
    assert_eq!(c.max_entry_size, 8 << 20);
    let c = parse("pools: { tts: { cache: { max_size: 1MiB } } }", &env)
        .unwrap()
        .pools["tts"]
        .cache
        .clone()
        .unwrap();
    assert_eq!((c.max_entry_size, c.methods.len()), (1 << 20, 1));
    assert!(parse("pools: { tts: {} }", &env).unwrap().pools["tts"]
        .cache
        .is_none());

    let errs = errors(
        "pools: { tts: { cache: { ttl: 0s, max_size: 1KiB, max_entry_size: 2KiB, methods: [DELETE], size: 3 } } }",
    );
    for w in [
        "pools.tts.cache.ttl: must be greater than 0",
        "pools.tts.cache.max_entry_size: must be between 1 and max_size",
        "pools.tts.cache.methods[0]: `DELETE` cannot be cached",
        "pools.tts.cache.size: unknown key",
    ] {
        assert!(errs.iter().any(|e| e.starts_with(w)), "{w}: {errs:?}");
    }
    // An empty list is an error; a list of bad methods is not a second one.
    assert!(!errs
        .iter()
        .any(|e| e.starts_with("pools.tts.cache.methods:")));
    let errs = errors("pools: { tts: { cache: { methods: [] } } }");
    assert_eq!(
        errs,
        ["pools.tts.cache.methods: must name at least one method"]
    );
}

#[test]
fn listener_settings_and_zero_timeouts_are_checked() {
    let errs = errors(
        "timeouts: { connect: 0s }\npools:\n  p:\n    timeouts: { client_header: 5s, idle: 0ms }\n    queue: { timeout: 0s }\n",
    );
    for w in [
        "pools.p.timeouts.client_header: is a listener setting",
        "timeouts.connect: must be greater than 0",
        "pools.p.timeouts.idle: must be greater than 0",
        "pools.p.queue.timeout: must be greater than 0",
    ] {
        assert!(
            errs.iter().any(|e| e.starts_with(w)),
            "missing `{w}` in {errs:#?}"
        );
    }
    let c = parse("timeouts: { client_header: 3s }", &env).unwrap();
    assert_eq!(c.client_header, Duration::from_secs(3));
}

#[test]
fn a_bad_instance_does_not_hide_the_errors_of_the_next() {
    let errs = errors(
        "pools:\n  p:\n    instances:\n      - { endpoint: \"http://h:1\", weight: heavy }\n      - { endpoint: \"http://h:2\", max_concurrent: lots }\n",
    );
    assert!(
        errs.iter()
            .any(|e| e.starts_with("pools.p.instances[0].weight")),
        "{errs:#?}"
    );
    assert!(
        errs.iter()
            .any(|e| e.starts_with("pools.p.instances[1].max_concurrent")),
        "{errs:#?}"
    );
}

#[test]
fn hash_keys_parse_and_consistent_hash_requires_one() {
    use fulcrum_config::HashKey;
    let c = parse(
        "pools:\n  a: { algorithm: consistent_hash, hash_key: \"header:Device-Id\" }\n  b: { algorithm: consistent_hash, hash_key: client_ip }\n  c: { algorithm: consistent_hash, hash_key: \"cookie:sid\", slow_start: 30s }\n  d: { algorithm: consistent_hash, hash_key: \"query:user\" }\n",
        &env,
    )
    .unwrap();
    assert_eq!(
        c.pools["a"].hash_key,
        Some(HashKey::Header("device-id".into()))
    );
    assert_eq!(c.pools["b"].hash_key, Some(HashKey::ClientIp));
    assert_eq!(c.pools["c"].hash_key, Some(HashKey::Cookie("sid".into())));
    assert_eq!(c.pools["c"].slow_start, Duration::from_secs(30));
    assert_eq!(c.pools["d"].hash_key, Some(HashKey::Query("user".into())));
    let errs =
        errors("pools:\n  a: { algorithm: consistent_hash }\n  b: { hash_key: \"body:x\" }\n");
    assert!(
        errs.iter()
            .any(|e| e.starts_with("pools.a.hash_key: consistent_hash needs a key")),
        "{errs:#?}"
    );
    assert!(
        errs.iter()
            .any(|e| e.starts_with("pools.b.hash_key: `body:x` is not a hash key")),
        "{errs:#?}"
    );
}

#[test]
fn every_algorithm_name_is_accepted() {
    for alg in fulcrum_policy::Algorithm::ALL {
        let extra = if alg == fulcrum_policy::Algorithm::ConsistentHash {
            ", hash_key: client_ip"
        } else {
            ""
        };
        let c = parse(
            &format!("pools: {{ p: {{ algorithm: {}{extra} }} }}", alg.name()),
            &env,
        )
        .unwrap();
        assert_eq!(c.pools["p"].algorithm, alg);
    }
}

#[test]
fn the_registry_section_has_defaults_and_checks() {
    let c = parse("", &env).unwrap();
    assert!(c.registry.enabled);
    assert_eq!(c.registry.route_prefix, "/infer/");
    assert_eq!(c.registry.heartbeat_timeout, Duration::from_secs(90));
    assert_eq!(c.registry.path, std::path::PathBuf::from("./fulcrum-data"));
    assert_eq!(c.default_pool.algorithm, Algorithm::ResponseTime);
    let c = parse("registry: { path: /tmp/x, heartbeat_timeout: 10s, default_algorithm: round_robin, token: t }", &env).unwrap();
    assert_eq!(c.default_pool.algorithm, Algorithm::RoundRobin);
    assert_eq!(c.registry.token.as_deref(), Some("t"));
    let lc = parse("registry: { default_algorithm: least_calls }", &env).unwrap();
    assert_eq!(
        lc.default_pool.algorithm,
        Algorithm::LeastCalls,
        "still selectable"
    );
    assert_eq!(c.registry.redis, None, "store: embedded by default");
    let c = parse(
        "registry: { store: redis, redis_url: \"redis://r:6379/1\" }",
        &env,
    )
    .unwrap();
    let r = c.registry.redis.expect("store: redis");
    assert_eq!(
        (r.url.as_str(), r.prefix.as_str()),
        ("redis://r:6379/1", "fulcrum:")
    );
    for (yaml, want) in [
        (
            "registry: { redis_url: \"redis://r\" }",
            "registry.redis_url: only used with `store: redis`",
        ),
        (
            "registry: { store: redis, redis_url: \"http://r\" }",
            "registry.redis_url: `http://r` is not a Redis URL",
        ),
        (
            "registry: { store: redis, redis_url: \"redis://r\", redis_prefix: \"a *\" }",
            "registry.redis_prefix: must be non-empty",
        ),
        ("registry: { store: redys }", "registry.store: "),
    ] {
        let errs = errors(yaml);
        assert!(
            errs.iter().any(|e| e.starts_with(want)),
            "{yaml}: missing `{want}` in {errs:#?}"
        );
    }
    let errs = errors("registry: { store: redis, route_prefix: infer, default_algorithm: fastest, heartbeat_timeout: 0s }");
    for w in [
        "registry.redis_url: required with `store: redis`",
        "registry.route_prefix: must start and end",
        "registry.default_algorithm: unknown algorithm",
        "registry.heartbeat_timeout: must be greater than 0",
    ] {
        assert!(
            errs.iter().any(|e| e.starts_with(w)),
            "missing `{w}` in {errs:#?}"
        );
    }
}

#[test]
fn empty_tls_files_are_named_with_the_other_errors() {
    // An empty listener certificate or key is a config error naming its
    // key, reported with every other error, not left for a file read.
    let errs = errors("tls: { cert: \"\", key: k.pem }");
    assert!(
        errs.iter()
            .any(|e| e.starts_with("tls.cert: must not be empty")),
        "{errs:?}"
    );
    let errs = errors("listen: nowhere\ntls: { cert: c.pem, key: \"  \" }");
    for w in [
        "listen: `nowhere` is not an address",
        "tls.key: must not be empty",
    ] {
        assert!(errs.iter().any(|e| e.starts_with(w)), "{w}: {errs:?}");
    }
    // Also when the section is incomplete.
    let errs = errors("tls: { cert: \"\" }");
    for w in ["tls: missing key `key`", "tls.cert: must not be empty"] {
        assert!(errs.iter().any(|e| e.starts_with(w)), "{w}: {errs:?}");
    }
    // A pool's CA file likewise.
    let errs = errors("listen: nowhere\npools: { p: { tls: { ca: \"\" } } }");
    for w in [
        "listen: `nowhere` is not an address",
        "pools.p.tls.ca: must not be empty",
    ] {
        assert!(errs.iter().any(|e| e.starts_with(w)), "{w}: {errs:?}");
    }
}

#[test]
fn omitted_settings_take_the_named_defaults() {
    use fulcrum_config::defaults::*;
    let c = parse("pools: { p: { instances: [ { endpoint: \"http://h\" } ], cache: {} } }\nroutes: [ { path_prefix: /, pool: p } ]", &env).unwrap();
    assert_eq!(c.listen.to_string(), DEFAULT_LISTEN);
    assert_eq!(c.admin.listen.to_string(), DEFAULT_ADMIN_LISTEN);
    assert_eq!(c.limits.max_body, DEFAULT_MAX_BODY);
    assert_eq!(c.limits.max_header, DEFAULT_MAX_HEADER);
    assert_eq!(c.limits.max_connections, DEFAULT_MAX_CONNECTIONS);
    assert_eq!(c.client_header, DEFAULT_CLIENT_HEADER_TIMEOUT);
    assert_eq!(c.registry.heartbeat_timeout, DEFAULT_HEARTBEAT_TIMEOUT);
    assert_eq!(c.registry.route_prefix, DEFAULT_ROUTE_PREFIX);
    assert_eq!(c.default_pool.algorithm, DEFAULT_REGISTRY_ALGORITHM);
    assert!(!c.routes[0].strip_prefix);
    let p = &c.pools["p"];
    assert_eq!(p.algorithm, DEFAULT_ALGORITHM);
    assert_eq!(p.timeouts.connect, DEFAULT_CONNECT_TIMEOUT);
    assert_eq!(p.timeouts.response_header, DEFAULT_RESPONSE_HEADER_TIMEOUT);
    assert_eq!(p.timeouts.idle, DEFAULT_IDLE_TIMEOUT);
    assert_eq!(p.passive.max_fails, DEFAULT_MAX_FAILS);
    assert_eq!(
        p.passive.fail_timeout_ms,
        DEFAULT_FAIL_TIMEOUT.as_millis() as u64
    );
    assert_eq!(p.passive.max_ejection_percent, DEFAULT_MAX_EJECTION_PERCENT);
    let h = &p.health_check;
    assert_eq!(
        h.probe,
        Probe::Http {
            path: DEFAULT_HEALTH_PATH.into()
        }
    );
    assert_eq!(h.interval, DEFAULT_HEALTH_INTERVAL);
    assert_eq!(
        h.fast_interval,
        DEFAULT_HEALTH_INTERVAL / FAST_INTERVAL_DIVISOR
    );
    assert_eq!(h.timeout, DEFAULT_HEALTH_TIMEOUT);
    assert_eq!(h.jitter, DEFAULT_JITTER);
    assert_eq!(
        (h.failure_threshold, h.recovery_threshold),
        (DEFAULT_FAILURE_THRESHOLD, DEFAULT_RECOVERY_THRESHOLD)
    );
    assert_eq!(
        (p.queue.max, p.queue.timeout),
        (DEFAULT_QUEUE_MAX, DEFAULT_QUEUE_TIMEOUT)
    );
    assert_eq!(p.slow_start, DEFAULT_SLOW_START);
    assert_eq!(p.panic, DEFAULT_PANIC);
    let i = &p.instances[0];
    assert_eq!((i.weight, i.priority), (DEFAULT_WEIGHT, DEFAULT_PRIORITY));
    assert_eq!(i.endpoint.authority, format!("h:{HTTP_PORT}"));
    let cache = p.cache.clone().unwrap();
    assert_eq!(cache.ttl, DEFAULT_CACHE_TTL);
    assert_eq!(
        (cache.max_size, cache.max_entry_size),
        (DEFAULT_CACHE_SIZE, DEFAULT_CACHE_ENTRY)
    );
    assert_eq!(cache.methods.len(), DEFAULT_CACHE_METHODS.len());
    // The old paths still name them.
    assert_eq!(fulcrum_config::load::MAX_WEIGHT, MAX_WEIGHT);
    assert_eq!(fulcrum_config::load::DEFAULT_LISTEN, DEFAULT_LISTEN);
}

#[test]
fn max_ejection_percent_merges_over_the_global_one_and_is_a_percentage() {
    let c = parse(
        "passive: { max_ejection_percent: 30 }\npools:\n  a: {}\n  b: { passive: { max_ejection_percent: 100 } }\n",
        &env,
    )
    .unwrap();
    assert_eq!(c.pools["a"].passive.max_ejection_percent, 30);
    assert_eq!(c.pools["b"].passive.max_ejection_percent, 100);
    assert_eq!(c.default_pool.passive.max_ejection_percent, 30);
    let errs = errors("pools:\n  p: { passive: { max_ejection_percent: 101 } }\n");
    assert_eq!(
        errs,
        ["pools.p.passive.max_ejection_percent: must be a percentage, 0 to 100"]
    );
    let errs = errors("passive: { max_ejection_percent: 250 }\n");
    assert!(
        errs.iter()
            .all(|e| e == "passive.max_ejection_percent: must be a percentage, 0 to 100"),
        "{errs:?}"
    );
    assert!(!errors("passive: { max_ejection_percent: -1 }\n").is_empty());
}

#[test]
fn env_values_are_taken_literally_and_comments_are_not_expanded() {
    let env = |k: &str| match k {
        "TOK" => Some("abc #def".to_string()),
        "DIGITS" => Some("12345".to_string()),
        "W" => Some("3".to_string()),
        "NL" => Some("x\nlisten: 1.2.3.4:1".to_string()),
        _ => None,
    };
    let cfg = fulcrum_config::parse(
        "# ${UNSET} in a comment is only a comment\nadmin:\n  token: ${TOK}\nregistry:\n  token: ${DIGITS}\n  path: /data/${NL}\npools:\n  p:\n    instances:\n      - { endpoint: \"http://h:1\", weight: \"${W}\" }\n",
        &env,
    )
    .unwrap();
    assert_eq!(cfg.admin.token.as_deref(), Some("abc #def"));
    assert_eq!(cfg.registry.token.as_deref(), Some("12345"));
    assert_eq!(cfg.pools["p"].instances[0].weight, 3);
    assert_eq!(
        cfg.listen,
        fulcrum_config::embedded_default().listen,
        "a value cannot add a key"
    );
    let unset = fulcrum_config::parse("admin:\n  token: ${UNSET:-}\n", &env).unwrap();
    assert_eq!(unset.admin.token, None, "an empty expansion is no token");
}

#[test]
fn endpoint_ports_out_of_range_are_named() {
    for ep in [
        "http://h:65536",
        "http://h:-1",
        "http://h:",
        "http://h:99999",
    ] {
        let errs = errors(&format!(
            "pools: {{ p: {{ instances: [ {{ endpoint: \"{ep}\" }} ] }} }}"
        ));
        assert!(
            errs.iter()
                .any(|e| e.starts_with("pools.p.instances[0].endpoint") && e.contains("port")),
            "{ep}: {errs:?}"
        );
    }
}

#[test]
fn connection_limits_and_the_keepalive_timeout() {
    use fulcrum_config::defaults::*;
    let c = parse("", &env).unwrap();
    assert_eq!(c.keepalive, DEFAULT_KEEPALIVE_TIMEOUT);
    assert_eq!(c.limits.backlog, DEFAULT_BACKLOG);
    const { assert!(DEFAULT_BACKLOG > 128) };
    assert_eq!(c.admin.max_connections, DEFAULT_ADMIN_MAX_CONNECTIONS);
    let c = parse(
        "admin: { max_connections: 16 }\nlimits: { backlog: 4096 }\ntimeouts: { keepalive: 75s }",
        &env,
    )
    .unwrap();
    assert_eq!(
        (c.admin.max_connections, c.limits.backlog, c.keepalive),
        (16, 4096, Duration::from_secs(75))
    );
    let errs = errors(
        "admin: { max_connections: 0 }\nlimits: { backlog: 0 }\ntimeouts: { keepalive: 0s }\npools: { p: { timeouts: { keepalive: 5s } } }\n",
    );
    for w in [
        "admin.max_connections: must be at least 1",
        "limits.backlog: must be between 1 and 65535",
        "timeouts.keepalive: must be greater than 0",
        "pools.p.timeouts.keepalive: is a listener setting",
    ] {
        assert!(
            errs.iter().any(|e| e.starts_with(w)),
            "missing `{w}` in {errs:#?}"
        );
    }
}

#[test]
fn registration_into_a_configured_pool_is_off_unless_opted_in() {
    let c = parse("pools: { a: { registration: true }, b: {} }", &env).unwrap();
    assert!(c.pools["a"].registration);
    assert!(!c.pools["b"].registration);
    assert!(c.default_pool.registration, "the registry's own pools");
    let errs = errors("pools: { a: { registration: maybe } }");
    assert!(
        errs.iter().any(|e| e.starts_with("pools.a.registration")),
        "{errs:?}"
    );
}

#[test]
fn allowed_hosts_entries_are_checked_at_load_with_their_path() {
    let errs = errors(
        "registry:\n  allowed_hosts: [\"10.0.0.0/33\", \"10.0.0/8\", \"not a host!!\", \"300.1.1.1\", \"10.0.0.5:0\", \"10.0.0.5:7999-7900\", \"h:x\", \"[::1\", \"10.0.0.0/8\", \"gpu-1.local\", \"10.0.0.5:7901\", \"10.0.0.0/8:7900-7999\", \"fd00::/8\", \"[fd00::1]:7901\", \"[fd00::/8]:7900-7999\", \"GPU-2.Local:80\"]\n",
    );
    for i in 0..8 {
        let path = format!("registry.allowed_hosts[{i}]: ");
        assert!(
            errs.iter().any(|e| e.starts_with(&path)),
            "no error for entry {i}: {errs:#?}"
        );
    }
    assert_eq!(errs.len(), 8, "only the bad entries: {errs:#?}");
}

#[test]
fn allowed_hosts_admit_by_address_block_name_and_port() {
    let c = parse(
        "registry:\n  allowed_hosts: [\"10.0.0.0/8:7900-7999\", \"192.168.1.5\", \"GPU-1.Local\", \"[fd00::/8]:443\"]\n",
        &env,
    )
    .unwrap();
    let admits = |h: &str, p: u16| c.registry.allowed_hosts.iter().any(|a| a.admits(h, p));
    assert!(admits("10.2.3.4", 7901));
    assert!(!admits("10.2.3.4", 8000), "port outside the range");
    assert!(admits("192.168.1.5", 1) && !admits("192.168.1.6", 1));
    assert!(admits("gpu-1.local", 80) && admits("GPU-1.LOCAL.", 80));
    assert!(!admits("gpu-1.local.evil", 80));
    assert!(admits("[fd00::1]", 443) && !admits("[fd00::1]", 80));
    assert!(admits("[::ffff:10.0.0.1]", 7900), "IPv4-mapped IPv6");
    // A name never stands for an address, nor an address for a name.
    let c = parse("registry: { allowed_hosts: [localhost, 127.0.0.1] }", &env).unwrap();
    let a = &c.registry.allowed_hosts;
    assert!(a[0].admits("localhost", 1) && !a[0].admits("127.0.0.1", 1));
    assert!(a[1].admits("127.0.0.1", 1) && !a[1].admits("localhost", 1));
}

#[test]
fn the_registry_limits_have_defaults_and_must_be_positive() {
    use fulcrum_config::defaults::*;
    let c = parse("registry: { max_task_types: 4, max_instances: 10 }", &env).unwrap();
    assert_eq!(
        (c.registry.max_task_types, c.registry.max_instances),
        (4, 10)
    );
    let d = parse("", &env).unwrap();
    assert_eq!(d.registry.max_task_types, DEFAULT_REGISTRY_MAX_TASK_TYPES);
    assert_eq!(d.registry.max_instances, DEFAULT_REGISTRY_MAX_INSTANCES);
    let errs = errors("registry: { max_task_types: 0, max_instances: 0 }");
    for w in [
        "registry.max_task_types: must be at least 1",
        "registry.max_instances: must be at least 1",
    ] {
        assert!(errs.iter().any(|e| e.starts_with(w)), "{w}: {errs:?}");
    }
}

#[test]
fn the_log_format_is_text_or_json() {
    use fulcrum_config::LogFormat;
    assert_eq!(parse("", &env).unwrap().log.format, LogFormat::Text);
    assert_eq!(
        parse("log: { format: json }", &env).unwrap().log.format,
        LogFormat::Json
    );
    let errs = errors("log: { format: xml, level: debug }");
    assert!(
        errs.iter()
            .any(|e| e.starts_with("log.format: unknown format `xml`; expected one of: text, json")),
        "{errs:?}"
    );
    assert!(
        errs.iter().any(|e| e.starts_with("log.level: unknown key")),
        "{errs:?}"
    );
}

#[test]
fn the_stats_window_is_whole_seconds_within_bounds() {
    assert_eq!(
        parse("", &env).unwrap().stats.window,
        Duration::from_secs(60)
    );
    assert_eq!(
        parse("stats: { window: 5m }", &env).unwrap().stats.window,
        Duration::from_secs(300)
    );
    for bad in ["500ms", "1500ms", "2h", "0s"] {
        let errs = errors(&format!("stats: {{ window: {bad} }}"));
        assert!(
            errs.iter().any(|e| e.starts_with("stats.window: ")
                && e.contains("whole number of seconds from 1s to 3600s")),
            "{bad}: {errs:?}"
        );
    }
    let errs = errors("stats: { window: soon, slots: 3 }");
    assert!(
        errs.iter().any(|e| e.starts_with("stats.window")),
        "{errs:?}"
    );
    let errs = errors("stats: { slots: 3 }");
    assert!(
        errs.iter()
            .any(|e| e.starts_with("stats.slots: unknown key")),
        "{errs:?}"
    );
}

#[test]
fn metrics_are_on_by_default_and_can_be_turned_off() {
    assert!(parse("", &env).unwrap().metrics.enabled);
    assert!(
        !parse("metrics: { enabled: false }", &env)
            .unwrap()
            .metrics
            .enabled
    );
    assert!(parse("metrics: {}", &env).unwrap().metrics.enabled);
    let errs = errors("metrics: { enabled: maybe }");
    assert!(
        errs.iter().any(|e| e.starts_with("metrics.enabled")),
        "{errs:?}"
    );
    let errs = errors("metrics: { enabled: true, path: /m }");
    assert!(
        errs.iter()
            .any(|e| e.starts_with("metrics.path: unknown key")),
        "{errs:?}"
    );
}

#[test]
fn the_access_log_is_on_by_default_to_stdout_in_text() {
    use fulcrum_config::{defaults::DEFAULT_ACCESS_LOG_BUFFER, AccessLogTarget, LogFormat};
    let d = parse("", &env).unwrap().access_log;
    assert_eq!(d.target, AccessLogTarget::Stdout);
    assert_eq!(d.format, LogFormat::Text);
    assert_eq!(d.buffer, DEFAULT_ACCESS_LOG_BUFFER);
    let a = parse(
        "access_log: { path: /var/log/fulcrum/access.log, format: json, buffer: 64 }",
        &env,
    )
    .unwrap()
    .access_log;
    assert_eq!(
        a.target,
        AccessLogTarget::File("/var/log/fulcrum/access.log".into())
    );
    assert_eq!((a.format, a.buffer), (LogFormat::Json, 64));
    for off in ["off", "\"off\"", "false"] {
        let c = parse(&format!("access_log: {{ path: {off} }}"), &env).unwrap();
        assert_eq!(c.access_log.target, AccessLogTarget::Off, "{off}");
    }
}

#[test]
fn access_log_errors_name_their_key() {
    let errs = errors("access_log: { path: \"\", format: xml, buffer: 0, flush: 1s }");
    for w in [
        "access_log.path: must be `stdout`, `off` or a file path",
        "access_log.format: unknown format `xml`; expected one of: text, json",
        "access_log.buffer: must be between 1 and",
        "access_log.flush: unknown key",
    ] {
        assert!(errs.iter().any(|e| e.starts_with(w)), "{w}: {errs:?}");
    }
}

#[test]
fn a_relative_access_log_path_is_relative_to_the_config_file() {
    use fulcrum_config::AccessLogTarget;
    let mut c = parse("access_log: { path: logs/access.log }", &env).unwrap();
    c.resolve_paths(std::path::Path::new("/etc/fulcrum"));
    assert_eq!(
        c.access_log.target,
        AccessLogTarget::File("/etc/fulcrum/logs/access.log".into())
    );
}

#[test]
fn routes_carry_a_request_class_and_pools_a_reserve_kept_from_batch() {
    use fulcrum_policy::RequestClass;
    let c = parse(
        "pools:\n  p:\n    queue: { reserve: 2 }\n    instances: [ { endpoint: \"http://h:1\", max_concurrent: 4 } ]\n\
         routes:\n  - { path_prefix: /chat/, pool: p, priority: interactive }\n  - { path_prefix: /bulk/, pool: p, priority: batch, priority_header: false }\n  - { path_prefix: /, pool: p }\n",
        &env,
    )
    .unwrap();
    let r = |i: usize| (c.routes[i].class, c.routes[i].class_header);
    assert_eq!(r(0), (RequestClass::Interactive, true));
    assert_eq!(r(1), (RequestClass::Batch, false));
    assert_eq!(r(2), (RequestClass::Normal, true), "the defaults");
    assert_eq!(c.pools["p"].queue.reserve, 2);
    assert_eq!(
        errors(
            "pools:\n  p:\n    queue: { reserve: 4 }\n    instances: [ { endpoint: \"http://h:1\", max_concurrent: 4 } ]\n\
             routes: [ { path_prefix: /, pool: p, priority: interactve } ]\n"
        ),
        [
            "pools.p.queue.reserve: keeps all 4 slots of the pool (the sum of max_concurrent) from batch requests; use at most 3",
            "routes[0].priority: unknown priority `interactve`; did you mean `interactive`?",
        ]
    );
    // Without max_concurrent everywhere, a reserve cannot keep every slot.
    assert!(parse(
        "pools:\n  p:\n    queue: { reserve: 4 }\n    instances: [ { endpoint: \"http://h:1\" } ]\n",
        &env
    )
    .is_ok());
}
