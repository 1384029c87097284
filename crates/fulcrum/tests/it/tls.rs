//! TLS: termination on the proxy listener (HTTP/1.1 and HTTP/2 by ALPN)
//! and `https://` instances verified against a pool's CA file. The
//! certificates are made by the test (a CA and a server certificate for
//! `localhost` and `127.0.0.1`).

use crate::common::*;
use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper_util::rt::{TokioExecutor, TokioIo};
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair};
use std::path::PathBuf;
use std::sync::Arc;
use tokio_rustls::rustls;

struct Pki {
    dir: PathBuf,
    ca: PathBuf,
    cert: PathBuf,
    key: PathBuf,
}

/// A CA and a server certificate signed by it, written as PEM files.
fn pki() -> Pki {
    let dir = PathBuf::from(scratch_dir());
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "Fulcrum test CA");
    let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().unwrap()).unwrap();
    let key = KeyPair::generate().unwrap();
    let params =
        CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()]).unwrap();
    let cert = params.signed_by(&key, &ca).unwrap();
    let p = Pki {
        ca: dir.join("ca.pem"),
        cert: dir.join("server.pem"),
        key: dir.join("server.key"),
        dir,
    };
    std::fs::write(&p.ca, ca.pem()).unwrap();
    std::fs::write(&p.cert, cert.pem()).unwrap();
    std::fs::write(&p.key, key.serialize_pem()).unwrap();
    p
}

fn tls_line(p: &Pki) -> String {
    format!(
        "tls: {{ cert: \"{}\", key: \"{}\" }}\n",
        p.cert.display(),
        p.key.display()
    )
}

/// A rustls client trusting only the test CA, offering `alpn`.
fn client_config(p: &Pki, alpn: &[&[u8]]) -> Arc<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    let pem = std::fs::read(&p.ca).unwrap();
    use rustls::pki_types::pem::PemObject;
    for c in rustls::pki_types::CertificateDer::pem_slice_iter(&pem) {
        roots.add(c.unwrap()).unwrap();
    }
    let mut cfg = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    cfg.alpn_protocols = alpn.iter().map(|a| a.to_vec()).collect();
    Arc::new(cfg)
}

/// One GET over TLS to `addr`; returns (negotiated ALPN, status, body).
async fn tls_get(
    p: &Pki,
    addr: std::net::SocketAddr,
    alpn: &[&[u8]],
    path: &str,
) -> (Vec<u8>, http::StatusCode, serde_json::Value) {
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
    let tls = tokio_rustls::TlsConnector::from(client_config(p, alpn))
        .connect(name, tcp)
        .await
        .expect("TLS handshake with the proxy");
    let proto = tls.get_ref().1.alpn_protocol().unwrap_or_default().to_vec();
    let req = http::Request::get(format!("https://localhost:{}{path}", addr.port()))
        .body(Empty::<Bytes>::new())
        .unwrap();
    let resp = if proto == b"h2" {
        let (mut tx, conn) =
            hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(tls))
                .await
                .unwrap();
        tokio::spawn(conn);
        tx.send_request(req).await.unwrap()
    } else {
        let (mut tx, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
            .await
            .unwrap();
        tokio::spawn(conn);
        let mut req = req;
        req.headers_mut()
            .insert(http::header::HOST, "localhost".parse().unwrap());
        tx.send_request(req).await.unwrap()
    };
    let status = resp.status();
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    let json = serde_json::from_slice(&body).unwrap_or(serde_json::Value::Null);
    (proto, status, json)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_listener_terminates_tls_with_http1_and_http2_by_alpn() {
    let p = pki();
    let m = mock("m").await;
    let gw = gateway(&format!(
        "{}pools: {{ p: {{ instances: [ {{ endpoint: \"{}\" }} ] }} }}\nroutes: [ {{ path_prefix: /, pool: p }} ]\n",
        tls_line(&p),
        m.url()
    ))
    .await;

    let (proto, status, body) = tls_get(&p, gw.proxy_addr, &[b"http/1.1"], "/a").await;
    assert_eq!(
        (proto.as_slice(), status),
        (&b"http/1.1"[..], http::StatusCode::OK)
    );
    assert_eq!(body["path"], "/a");
    assert_eq!(body["headers"]["x-forwarded-proto"], "https");

    let (proto, status, body) = tls_get(&p, gw.proxy_addr, &[b"h2", b"http/1.1"], "/b").await;
    assert_eq!(
        (proto.as_slice(), status),
        (&b"h2"[..], http::StatusCode::OK)
    );
    assert_eq!(body["path"], "/b");
    assert_eq!(body["headers"]["x-forwarded-proto"], "https");

    // A plain-text request on the TLS port is not served.
    let plain = client()
        .request(
            http::Request::get(format!("http://{}/", gw.proxy_addr))
                .body(Default::default())
                .unwrap(),
        )
        .await;
    assert!(plain.is_err(), "plain HTTP on a TLS listener: {plain:?}");

    // curl negotiates HTTP/2 by ALPN and verifies the certificate.
    let out = std::process::Command::new("curl")
        .args(["-sS", "--http2", "--cacert"])
        .arg(&p.ca)
        .args(["-o", "/dev/null", "-w", "%{http_version} %{http_code}"])
        .arg(format!("https://localhost:{}/c", gw.proxy_addr.port()))
        .arg("--resolve")
        .arg(format!("localhost:{}:127.0.0.1", gw.proxy_addr.port()))
        .output()
        .expect("curl runs");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "2 200",
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    gw.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_instances_are_verified_against_the_pool_ca() {
    let p = pki();
    let m = mock("behind-tls").await;
    // The "remote instance": a TLS-terminating gateway in front of a mock.
    let remote = gateway(&format!(
        "{}pools: {{ p: {{ instances: [ {{ endpoint: \"{}\" }} ] }} }}\nroutes: [ {{ path_prefix: /, pool: p }} ]\n",
        tls_line(&p),
        m.url()
    ))
    .await;
    let port = remote.proxy_addr.port();
    let front = |tls: String| {
        format!(
            "pools: {{ p: {{ retry: {{ tries: 1 }}, passive: {{ max_fails: 1000 }}, tls: {{ {tls} }}, instances: [ {{ endpoint: \"https://127.0.0.1:{port}/base\" }} ] }} }}\nroutes: [ {{ path_prefix: /, pool: p }} ]\n"
        )
    };
    let c = client();

    // Trusting the CA: the request goes through TLS to the instance.
    let ok = gateway(&front(format!("ca: \"{}\"", p.ca.display()))).await;
    let r = get(&c, &format!("http://{}/x?q=1", ok.proxy_addr)).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(r.instance(), "behind-tls");
    assert_eq!(r.json()["path"], "/base/x");
    assert_eq!(r.json()["query"], "q=1");
    // Connections are kept alive: ten more requests, one TLS connection.
    for _ in 0..10 {
        assert_eq!(
            get(&c, &format!("http://{}/y", ok.proxy_addr)).await.status,
            200
        );
    }
    let inst = &ok.gateway.snapshot().instances[&format!("https://127.0.0.1:{port}/base")];
    assert_eq!(inst.origin.conns.idle(), 1);

    // The name to verify can be set: the certificate is for localhost too…
    let named = gateway(&front(format!(
        "ca: \"{}\", server_name: localhost",
        p.ca.display()
    )))
    .await;
    assert_eq!(
        get(&c, &format!("http://{}/", named.proxy_addr))
            .await
            .status,
        200
    );
    // …but not for another name.
    let wrong = gateway(&front(format!(
        "ca: \"{}\", server_name: asr.example",
        p.ca.display()
    )))
    .await;
    let r = get(&c, &format!("http://{}/", wrong.proxy_addr)).await;
    assert_eq!(r.status, 502, "{:?}", r.body);

    // Without the CA (system roots only) the certificate is refused.
    let untrusted = gateway(&front(String::new())).await;
    let r = get(&c, &format!("http://{}/", untrusted.proxy_addr)).await;
    assert_eq!(r.status, 502, "{:?}", r.body);
    let msg = r.json().to_string();
    assert!(msg.to_lowercase().contains("certificate"), "{msg}");
    assert_eq!(
        m.stats().requests,
        12,
        "no request reached the instance untrusted"
    );

    for g in [ok, named, wrong, untrusted, remote] {
        g.shutdown().await;
    }
    let _ = std::fs::remove_dir_all(&p.dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unusable_tls_files_stop_start_up_and_reloads_with_their_path() {
    let p = pki();
    let mut cfg = fulcrum_config::parse(
        &format!(
            "{}{}",
            test_header(),
            "tls: { cert: missing.pem, key: server.key }\npools: { p: { tls: { ca: ca.pem } } }\n"
        ),
        &|_| None,
    )
    .unwrap();
    cfg.resolve_paths(&p.dir);
    // ca.pem is found next to the "config file"; missing.pem is not.
    let err = fulcrum::app::tls_settings(&cfg).unwrap_err().to_string();
    assert!(err.contains("missing.pem") && err.contains("tls"), "{err}");
    assert!(!err.contains("ca.pem"), "{err}");

    // A running TLS gateway keeps its certificate when a reload is unusable.
    let m = mock("m").await;
    let gw = gateway(&format!(
        "{}pools: {{ p: {{ instances: [ {{ endpoint: \"{}\" }} ] }} }}\nroutes: [ {{ path_prefix: /, pool: p }} ]\n",
        tls_line(&p),
        m.url()
    ))
    .await;
    std::fs::write(p.dir.join("junk.pem"), "not a key").unwrap();
    let mut bad = gw.gateway.snapshot().config.as_ref().clone();
    bad.tls.as_mut().unwrap().key = p.dir.join("junk.pem");
    let err = gw.reload(bad).unwrap_err().to_string();
    assert!(err.contains("junk.pem"), "{err}");
    let (_, status, _) = tls_get(&p, gw.proxy_addr, &[b"h2"], "/").await;
    assert_eq!(status, 200);
    gw.shutdown().await;
}
