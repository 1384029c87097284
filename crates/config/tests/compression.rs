//! A route's `compression:`: the shorthand, the mapping over the
//! defaults, and every error with its YAML path.

use fulcrum_config::{parse, Compression, ContentCoding};

fn route(compression: &str) -> String {
    format!(
        "pools: {{ p: {{ instances: [ {{ endpoint: \"http://127.0.0.1:1\" }} ] }} }}\n\
         routes: [ {{ path_prefix: /, pool: p, compression: {compression} }} ]\n"
    )
}

fn compression(c: &str) -> Option<Compression> {
    let cfg = parse(&route(c), &|_| None).unwrap_or_else(|e| panic!("{c}: {e}"));
    cfg.routes[0].compression.clone()
}

fn errors(c: &str) -> Vec<String> {
    parse(&route(c), &|_| None)
        .unwrap_err()
        .0
        .iter()
        .map(|e| e.to_string())
        .collect()
}

#[test]
fn compression_is_off_unless_a_route_asks() {
    let cfg = parse(
        "pools: { p: { instances: [ { endpoint: \"http://127.0.0.1:1\" } ] } }\n\
         routes: [ { path_prefix: /, pool: p } ]\n",
        &|_| None,
    )
    .unwrap();
    assert_eq!(cfg.routes[0].compression, None);
    assert_eq!(compression("false"), None);
}

#[test]
fn true_takes_the_defaults_of_the_seeds_nginx() {
    let c = compression("true").unwrap();
    assert_eq!(c.min_size, 1024);
    assert_eq!(c.algorithms, [ContentCoding::Zstd, ContentCoding::Gzip]);
    for t in [
        "application/json",
        "text/plain",
        "text/css",
        "application/javascript",
        "text/event-stream",
        "application/x-ndjson",
    ] {
        assert!(c.types.iter().any(|x| x == t), "{t}");
    }
    assert!(!c
        .types
        .iter()
        .any(|t| t.starts_with("audio/") || t.starts_with("image/")));
}

#[test]
fn a_mapping_overrides_what_it_names() {
    let c =
        compression("{ types: [Application/JSON, 'text/*', application/json], min_size: 4KiB }")
            .unwrap();
    assert_eq!(c.types, ["application/json", "text/*"]);
    assert_eq!(c.min_size, 4096);
    assert_eq!(c.algorithms, [ContentCoding::Zstd, ContentCoding::Gzip]);
    let c = compression("{ algorithms: [GZIP] }").unwrap();
    assert_eq!(c.algorithms, [ContentCoding::Gzip]);
    assert_eq!(c.min_size, 1024);
    assert_eq!(compression("{ min_size: 0 }").unwrap().min_size, 0);
}

#[test]
fn compression_errors_name_their_key() {
    let errs = errors("{ level: 9, min_size: lots }");
    let want = [
        "routes[0].compression.level: unknown key",
        "routes[0].compression.min_size: invalid size `lots`",
    ];
    for w in want {
        assert!(errs.iter().any(|e| e.starts_with(w)), "{w} in {errs:#?}");
    }
    let errs = errors(
        "{ types: [application/json, audio, '*/*', 'text/plain; charset=utf-8', 'te*t/plain', \
         'text/pl*'], algorithms: [zstd, br] }",
    );
    let want = [
        "routes[0].compression.types[1]: `audio` is not a media type",
        "routes[0].compression.types[2]: `*/*`: name the types to compress",
        "routes[0].compression.types[3]: `text/plain; charset=utf-8` is not a media type",
        "routes[0].compression.types[4]: `te*t/plain` is not a media type",
        "routes[0].compression.types[5]: `text/pl*` is not a media type",
        "routes[0].compression.algorithms[1]: `br` is not supported; expected zstd or gzip",
    ];
    for w in want {
        assert!(errs.iter().any(|e| e.starts_with(w)), "{w} in {errs:#?}");
    }
    assert_eq!(errs.len(), want.len(), "{errs:#?}");
    let errs = errors("{ types: [], algorithms: [] }");
    assert!(errs.contains(&"routes[0].compression.types: must name at least one media type".into()));
    assert!(errs.contains(
        &"routes[0].compression.algorithms: must name at least one of zstd, gzip".into()
    ));
    assert_eq!(
        errors("gzip"),
        ["routes[0].compression: expected true, false or a mapping { types, min_size, algorithms }"]
    );
}
