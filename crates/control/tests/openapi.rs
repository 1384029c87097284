//! The OpenAPI document served at `/api/openapi.json` cannot drift from
//! the admin router (issue #12 item 7): every path the router serves is
//! documented and every documented path is served, and on each of them
//! exactly the documented methods answer.
//!
//! The served paths are read from the router itself (axum's `Debug` of a
//! `Router` lists its paths; nothing else does), and the methods by calling
//! the router in process with each method: a `405`, or the fallback's
//! `404 no such admin endpoint`, means "not served".

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use fulcrum_control::admin::{self, AdminState};
use fulcrum_control::health::HealthChecker;
use fulcrum_control::persist::MemoryStore;
use fulcrum_control::publish::{ConfigFile, Overrides, Publisher};
use fulcrum_control::registry::Registry;
use fulcrum_dataplane::Gateway;
use http_body_util::BodyExt;
use serde_json::Value;
use std::collections::BTreeSet;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use tower::ServiceExt;

/// The admin router of a gateway with one pool, with or without the
/// registry. Both tokens are set, so every mutating call answers 401 and
/// changes nothing.
fn router(registry: bool) -> axum::Router {
    let yaml = format!(
        "admin: {{ token: admin-secret }}\n\
         registry: {{ enabled: {registry}, token: registry-secret }}\n\
         pools: {{ p: {{ instances: [ {{ endpoint: \"http://127.0.0.1:1\" }} ] }} }}\n\
         routes: [ {{ path_prefix: /, pool: p }} ]\n"
    );
    let config = fulcrum_config::parse(&yaml, &|_| None).unwrap();
    let gateway = Gateway::new(config.clone());
    let publisher = Publisher::new(gateway.clone(), Arc::new(HealthChecker::default()));
    let file = Arc::new(ConfigFile::new(config));
    publisher.add_source(file.clone());
    let overrides = Arc::new(Overrides::open(None).unwrap());
    publisher.add_source(overrides.clone());
    let registry = registry.then(|| {
        Registry::open(
            file,
            gateway.clone(),
            &publisher,
            Arc::new(MemoryStore::default()),
        )
        .unwrap()
    });
    publisher.publish();
    let metrics = Arc::new(fulcrum_control::metrics::Metrics::new(
        fulcrum_control::metrics::Sources {
            gateway: gateway.clone(),
            registry: registry.clone(),
            unrouted: Default::default(),
            reloads: Default::default(),
            access_log: None,
            redis: None,
        },
    ));
    admin::router(AdminState {
        metrics: Some(metrics),
        dashboard: fulcrum_control::dashboard::Dashboard::new(gateway.clone()),
        reload: None,
        gateway,
        ready: Arc::new(AtomicBool::new(true)),
        draining: Arc::new(AtomicBool::new(false)),
        registry,
        token: Some("admin-secret".into()),
        overrides,
        publisher,
    })
}

async fn call(router: &axum::Router, method: Method, path: &str) -> (StatusCode, Value) {
    let req = Request::builder()
        .method(method)
        .uri(path)
        .header("content-type", "application/json")
        .body(Body::from("{}"))
        .unwrap();
    let resp = router.clone().oneshot(req).await.unwrap();
    let status = resp.status();
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

/// The paths the router serves, from its `Debug` (`RouteId(n): "/path"`
/// entries of its path router; the fallback router's come after
/// `fallback_router` and are not routes).
fn served_paths(router: &axum::Router) -> BTreeSet<String> {
    let debug = format!("{router:?}");
    let routes = debug
        .split("fallback_router")
        .next()
        .expect("a Router's Debug starts with its path router");
    let mut paths = BTreeSet::new();
    let mut rest = routes;
    while let Some(i) = rest.find("RouteId(") {
        rest = &rest[i..];
        let close = rest.find(')').unwrap();
        let after = &rest[close + 1..];
        if let Some(quoted) = after.strip_prefix(": \"") {
            let end = quoted.find('"').unwrap();
            paths.insert(quoted[..end].to_string());
        }
        rest = &rest[close..];
    }
    assert!(
        paths.len() > 3,
        "no paths read from the router's Debug (has axum's format changed?):\n{debug}"
    );
    paths
}

/// A concrete path for a templated one (`{id}` → `x`).
fn concrete(path: &str) -> String {
    path.split('/')
        .map(|seg| if seg.starts_with('{') { "x" } else { seg })
        .collect::<Vec<_>>()
        .join("/")
}

async fn document(router: &axum::Router) -> Value {
    let (status, doc) = call(router, Method::GET, "/api/openapi.json").await;
    assert_eq!(status, StatusCode::OK);
    doc
}

async fn served_and_documented_agree(registry: bool) {
    let router = router(registry);
    let doc = document(&router).await;
    let documented: BTreeSet<String> = doc["paths"].as_object().unwrap().keys().cloned().collect();
    let served = served_paths(&router);
    assert_eq!(
        served.difference(&documented).collect::<Vec<_>>(),
        Vec::<&String>::new(),
        "served but not in the OpenAPI document"
    );
    assert_eq!(
        documented.difference(&served).collect::<Vec<_>>(),
        Vec::<&String>::new(),
        "in the OpenAPI document but not served"
    );
    for path in &served {
        for method in [
            Method::GET,
            Method::POST,
            Method::PUT,
            Method::DELETE,
            Method::PATCH,
            Method::OPTIONS,
        ] {
            let (status, body) = call(&router, method.clone(), &concrete(path)).await;
            let answered = status != StatusCode::METHOD_NOT_ALLOWED
                && body["error"] != "no such admin endpoint";
            let op = &doc["paths"][path][method.as_str().to_lowercase()];
            assert_eq!(
                answered,
                op.is_object(),
                "{method} {path}: answered {status} {body}, documented: {}",
                op.is_object()
            );
            if answered {
                let documented_status = &op["responses"][status.as_str()];
                assert!(
                    documented_status.is_object(),
                    "{method} {path} answered {status}, which its operation does not list"
                );
            }
        }
    }
}

#[tokio::test]
async fn every_route_served_is_documented_and_every_documented_route_served() {
    served_and_documented_agree(true).await;
}

#[tokio::test]
async fn without_the_registry_its_routes_are_neither_served_nor_documented() {
    served_and_documented_agree(false).await;
    let doc = document(&router(false)).await;
    assert!(doc["paths"]
        .as_object()
        .unwrap()
        .keys()
        .all(|p| !p.starts_with(admin::REGISTRY_PREFIX)));
}

#[tokio::test]
async fn the_document_names_the_bearer_scheme_on_every_call_that_needs_a_token() {
    let router = router(true);
    let doc = document(&router).await;
    assert_eq!(doc["openapi"], "3.1.0");
    assert_eq!(
        doc["components"]["securitySchemes"]["bearer"],
        serde_json::json!({"type": "http", "scheme": "bearer"})
    );
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            let needs_token = op["responses"]["401"].is_object();
            let has_security = op["security"] == serde_json::json!([{"bearer": []}]);
            assert_eq!(needs_token, has_security, "{method} {path}");
        }
    }
}
