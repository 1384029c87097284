//! `fulcrum check`'s promise (issue 14): every error in one run, once,
//! where it is, in plain words, with a suggestion for a near miss.

use fulcrum_config::{parse, ConfigError};
use proptest::prelude::*;

fn env(_: &str) -> Option<String> {
    None
}

fn errors(text: &str) -> Vec<ConfigError> {
    parse(text, &env).unwrap_err().0
}

/// `path: message` of each error, in the order of the file.
fn lines(text: &str) -> Vec<String> {
    errors(text).iter().map(|e| e.to_string()).collect()
}

#[test]
fn one_bad_key_no_longer_hides_the_rest_of_its_section() {
    let got = lines(
        "pools:\n  p:\n    retry: { on: error, tries: many, timeout: 3, buffer: big, non_idempotent: maybe }\n    queue: { max: -1 }\n    panic: sometimes\n",
    );
    assert_eq!(
        got,
        [
            "pools.p.retry.on: expected a list, got the text \"error\"",
            "pools.p.retry.tries: expected a whole number, got the text \"many\"",
            "pools.p.retry.timeout: `3` has no unit; write a duration like `3s` or `3ms`",
            "pools.p.retry.buffer: invalid size `big`; write e.g. `512KiB`, `64MiB`, `10MB` or a number of bytes",
            "pools.p.retry.non_idempotent: expected true or false, got the text \"maybe\"",
            "pools.p.queue.max: expected a whole number from 0 to 4294967295, got the number -1",
            "pools.p.panic: expected true or false, got the text \"sometimes\"",
        ]
    );
}

#[test]
fn a_pool_that_cannot_be_read_is_not_a_second_error_in_its_routes() {
    assert_eq!(
        lines("pools: { p: 5 }\nroutes: [ { path_prefix: /, pool: p } ]\n"),
        ["pools.p: expected a mapping (key: value pairs), got the number 5"]
    );
}

#[test]
fn a_bad_global_setting_is_reported_once_at_its_own_path() {
    let got = lines(
        "health_check: { jitter: 3, interval: 0s }\npassive: { max_ejection_percent: 101 }\ntimeouts: { idle: 0s }\npools:\n  asr: {}\n  llm: { health_check: { jitter: -1 } }\n",
    );
    assert_eq!(
        got,
        [
            "health_check.jitter: must be a fraction between 0 and 1",
            "health_check.interval: must be greater than 0",
            "passive.max_ejection_percent: must be a percentage, 0 to 100",
            "timeouts.idle: must be greater than 0",
            "pools.llm.health_check.jitter: must be a fraction between 0 and 1",
        ]
    );
}

#[test]
fn errors_point_at_the_key_or_the_value_or_the_nearest_section() {
    let text = "admin:\n  listn: 127.0.0.1:1\npools:\n  p:\n    instances:\n      - max_concurrent: 2\n        weight: lots\nlisten: nowhere\n";
    let at: Vec<(String, Option<usize>, Option<usize>)> = errors(text)
        .into_iter()
        .map(|e| (e.path, e.line, e.column))
        .collect();
    assert_eq!(
        at,
        [
            // An unknown key: at the key.
            ("admin.listn".to_string(), Some(2), Some(3)),
            // A missing key: at its section (the list item).
            ("pools.p.instances[0]".into(), Some(6), Some(9)),
            // A wrong value: at the value.
            ("pools.p.instances[0].weight".into(), Some(7), Some(17)),
            ("listen".into(), Some(8), Some(9)),
        ]
    );
    let missing = &errors(text)[1];
    assert_eq!(missing.message, "missing key `endpoint`");
}

#[test]
fn env_and_syntax_errors_are_placed_too() {
    let e = &errors("admin:\n  token: ${NOT_SET_ANYWHERE_14}\n")[0];
    assert_eq!((e.line, e.column), (Some(2), Some(10)));
    let e = &errors("pools:\n  p: [unclosed\n")[0];
    assert!(e.message.starts_with("invalid YAML"), "{e}");
    assert_eq!(e.line, Some(3), "{e:?}");
}

#[test]
fn unknown_keys_suggest_the_nearest_or_list_the_valid_ones() {
    let got = lines(
        "pools:\n  p:\n    algoritm: random\n    cache: { zzz: 1 }\n    retry: { tris: 3 }\n    instances: [ { endpoint: \"http://h\", wieght: 2 } ]\nroutes: [ { path_prefix: /, pool: p, strip_prefx: true } ]\nhealth_chek: {}\n",
    );
    assert_eq!(
        got,
        [
            "pools.p.algoritm: unknown key; did you mean `algorithm`?",
            "pools.p.cache.zzz: unknown key; valid keys here: ttl, max_size, max_entry_size, methods",
            "pools.p.retry.tris: unknown key; did you mean `tries`?",
            "pools.p.instances[0].wieght: unknown key; did you mean `weight`?",
            "routes[0].strip_prefx: unknown key; did you mean `strip_prefix`?",
            "health_chek: unknown key; did you mean `health_check`?",
        ]
    );
}

#[test]
fn near_miss_values_are_suggested() {
    let got = lines(
        "log: { format: jsn }\nhealth_check: { path: TCP }\nregistry: { store: embeded, default_algorithm: leastcalls }\npools:\n  p:\n    algorithm: Random\n    hash_key: heder:x-user\n    cache: { methods: [GTE] }\n    retry: { on: [http_503, timout] }\n    instances: [ { endpoint: \"http://h\", priority: bakup } ]\nroutes: [ { path_prefix: /, pool: pp } ]\n",
    );
    assert_eq!(
        got,
        [
            "log.format: unknown format `jsn`; did you mean `json`?",
            "health_check.path: must start with `/`, or be `tcp` for a connect-only probe; did you mean `tcp`?",
            "registry.store: unknown store `embeded`; did you mean `embedded`?",
            "registry.default_algorithm: unknown algorithm `leastcalls`; did you mean `least_calls`?",
            "pools.p.algorithm: unknown algorithm `Random`; did you mean `random`?",
            "pools.p.hash_key: `heder:x-user` is not a hash key; did you mean `header:x-user`?",
            "pools.p.cache.methods[0]: `GTE` cannot be cached; did you mean `GET`?",
            "pools.p.retry.on[1]: unknown retry condition `timout`; did you mean `timeout`?",
            "pools.p.instances[0].priority: unknown priority `bakup`; did you mean `backup`?",
            "routes[0].pool: no pool named `pp`; did you mean `p`?",
        ]
    );
}

#[test]
fn messages_say_no_rust_type() {
    let text = "admin: 5\nhealth_check: { jitter: [1], failure_threshold: 1.5, path: {} }\nlimits: { max_body: [], max_connections: true }\nregistry: { allowed_hosts: [ { a: 1 } ], max_instances: x, token: [1] }\nstats: { window: {} }\npools:\n  p:\n    instances: [ 5, { endpoint: [1] } ]\n    tls: x\nroutes: [ 1 ]\n";
    let got = lines(text);
    assert_eq!(got.len(), 14, "{got:#?}");
    for e in &got {
        for rust in [
            "u32",
            "u64",
            "usize",
            "f64",
            "struct",
            "Option",
            "Sequence",
            "Mapping",
            "unit value",
            "a string",
            "a sequence",
            "a map,",
            "boolean",
        ] {
            assert!(!e.contains(rust), "`{rust}` in `{e}`");
        }
    }
    assert!(
        got.contains(&"admin: expected a mapping (key: value pairs), got the number 5".to_string()),
        "{got:#?}"
    );
    assert!(
        got.contains(&"registry.allowed_hosts[0]: expected text, got a mapping".to_string()),
        "{got:#?}"
    );
    assert!(
        got.contains(
            &"stats.window: expected a duration like `500ms`, `2s` or `1m`, got a mapping"
                .to_string()
        ),
        "{got:#?}"
    );
}

#[test]
fn sizes_in_mb_are_millions_of_bytes_and_a_bare_m_is_refused() {
    let c = parse("limits: { max_body: 64MB, max_header: 16KiB }", &env).unwrap();
    assert_eq!(
        (c.limits.max_body, c.limits.max_header),
        (64_000_000, 16 << 10)
    );
    let got = lines("limits: { max_body: 64M }");
    assert_eq!(
        got,
        ["limits.max_body: `64M` is ambiguous: write `64MiB` (64 × 1024²) or `64MB` (64 × 1000²)"]
    );
}

#[test]
fn the_valid_keys_are_the_structs_own() {
    use fulcrum_config::file::{fields_of, FilePool, Keys};
    // Every nested section of a pool, with every key said to be valid
    // there, is read without an unknown key.
    let pool_keys = fields_of::<FilePool>().unwrap();
    assert!(pool_keys.contains(&"algorithm") && pool_keys.contains(&"instances"));
    let mut nested = 0;
    for key in pool_keys {
        let Some(keys) = FilePool::keys_at(key) else {
            continue;
        };
        nested += 1;
        let body: Vec<String> = keys.iter().map(|k| format!("{k}: null")).collect();
        let text = format!("pools: {{ p: {{ {key}: {{ {} }} }} }}", body.join(", "));
        if let Err(e) = parse(&text, &env) {
            assert!(
                e.0.iter().all(|e| !e.message.starts_with("unknown key")),
                "{key}: {e}"
            );
        }
    }
    assert_eq!(
        nested, 8,
        "retry, queue, health_check, passive, timeouts, tls, cache, dynamic_weights"
    );
    assert_eq!(
        FilePool::keys_at("instances"),
        None,
        "a list, not a mapping"
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// Any text, YAML or not: errors, never a panic (the index and the
    /// report included).
    #[test]
    fn no_text_makes_parse_panic(text in "[a-z_0-9:{}\\[\\],\\- \"'\n#&*!|>?.$]{0,160}") {
        check_no_panic(&text);
    }

    /// A valid config with one character changed, inserted or removed.
    #[test]
    fn no_near_valid_config_makes_parse_panic(at in 0usize..400, what in 0u8..3, c in "[a-z0-9:{}\\[\\],\\- \"'\n#&*]") {
        let base = "listen: 0.0.0.0:8080\nhealth_check: { interval: 30s, jitter: 0.1 }\nlimits: { max_body: 64MiB }\npools:\n  asr:\n    algorithm: least_connections\n    retry: { tries: 2, on: [error, timeout, http_503] }\n    instances:\n      - { endpoint: \"http://127.0.0.1:8100\", weight: 2 }\n      - endpoint: http://127.0.0.1:8101\n        priority: low\nroutes:\n  - { path_prefix: /asr/, pool: asr }\n";
        let mut chars: Vec<char> = base.chars().collect();
        let at = at % chars.len();
        let c = c.chars().next().unwrap();
        match what {
            0 => chars[at] = c,
            1 => chars.insert(at, c),
            _ => { chars.remove(at); }
        }
        check_no_panic(&chars.into_iter().collect::<String>());
    }
}

fn check_no_panic(text: &str) {
    if let Err(errs) = parse(text, &env) {
        let shown = fulcrum_config::report::render("f.yaml", Some(text), &errs);
        assert!(shown.ends_with(" errors\n") || shown.ends_with(" error\n"));
    }
}

#[test]
fn max_concurrent_is_a_number_auto_or_bounds_and_says_so() {
    let got = lines(
        "pools:\n  p:\n    max_concurrent: { min: 8, max: 2 }\n    instances:\n      - { endpoint: \"http://127.0.0.1:1\", max_concurrent: lots }\n      - { endpoint: \"http://127.0.0.1:2\", max_concurrent: 0 }\n      - { endpoint: \"http://127.0.0.1:3\", max_concurrent: aut }\n      - { endpoint: \"http://127.0.0.1:4\", max_concurrent: { min: 2, mx: 9 } }\n",
    );
    assert_eq!(
        got,
        [
            "pools.p.max_concurrent: min (8) is above max (2)",
            "pools.p.instances[0].max_concurrent: `lots` is not a limit: expected a number of requests (at least 1), `auto`, or `{ min: N, max: M }` to learn it within bounds",
            "pools.p.instances[1].max_concurrent: must be at least 1 (omit it for no limit)",
            "pools.p.instances[2].max_concurrent: `aut` is not a limit; did you mean `auto`?",
            "pools.p.instances[3].max_concurrent.mx: unknown key; did you mean `max`?",
        ]
    );
}
