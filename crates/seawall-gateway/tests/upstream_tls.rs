//! TLS to upstreams (`upstreams[].tls`), over real TLS on loopback: requests succeed and
//! reuse their connection, a handshake that never finishes is a 504
//! `tls_handshake_timeout` after `timeouts.tls_handshake`, a certificate from an unknown CA
//! is a 502 `tls_error` whose logged detail names the check, new connections resume the
//! TLS session (also across reloads), `pool.max_requests_per_connection` opens a
//! connection per request, mTLS works with a client certificate and fails without one, and
//! a reload whose CA file does not load is refused while the old config keeps serving.
//!
//! Certificates are generated per test with rcgen. The upstream is tokio-rustls in front of
//! a hyper HTTP/1 server answering `hello`, counting accepts and resumed handshakes on its
//! side.

mod support;

use std::{
    convert::Infallible,
    net::SocketAddr,
    path::PathBuf,
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use bytes::Bytes;
use http_body_util::Full;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose,
};
use rustls::{HandshakeKind, RootCertStore, ServerConfig, server::WebPkiClientVerifier};
use rustls_pki_types::{CertificateDer, PrivateKeyDer, pem::PemObject};
use support::*;
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

const MS: fn(u64) -> Duration = Duration::from_millis;

/// A certificate authority that exists for one test.
struct TestCa {
    issuer: CertifiedIssuer<'static, KeyPair>,
}

/// A certificate and its key, as PEM.
struct Identity {
    cert_pem: String,
    key_pem: String,
}

impl TestCa {
    fn new(name: &str) -> Self {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.distinguished_name.push(DnType::CommonName, name);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let issuer = CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap();
        Self { issuer }
    }

    fn pem(&self) -> String {
        self.issuer.pem()
    }

    /// A server certificate for `localhost` and 127.0.0.1.
    fn server(&self) -> Identity {
        self.leaf(
            &["localhost", "127.0.0.1"],
            ExtendedKeyUsagePurpose::ServerAuth,
        )
    }

    fn client(&self) -> Identity {
        self.leaf(&["gateway.test"], ExtendedKeyUsagePurpose::ClientAuth)
    }

    fn leaf(&self, names: &[&str], usage: ExtendedKeyUsagePurpose) -> Identity {
        let names: Vec<String> = names.iter().map(|n| (*n).to_owned()).collect();
        let mut params = CertificateParams::new(names).unwrap();
        params.extended_key_usages = vec![usage];
        params.use_authority_key_identifier_extension = true;
        let key = KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        Identity {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        }
    }
}

/// A directory of PEM files for one test, removed at the end.
struct Files(PathBuf);

impl Files {
    fn new(name: &str) -> Self {
        let dir = std::env::temp_dir().join(format!(
            "seawall-upstream-tls-{}-{name}-{}",
            std::process::id(),
            fastrand::u64(..)
        ));
        std::fs::create_dir_all(&dir).unwrap();
        Files(dir)
    }

    /// Writes `text` to `file` and returns its path as YAML-ready text.
    fn write(&self, file: &str, text: &str) -> String {
        let path = self.0.join(file);
        std::fs::write(&path, text).unwrap();
        path.display().to_string()
    }
}

impl Drop for Files {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A TLS upstream answering `hello` on every path.
struct TlsUpstream {
    addr: SocketAddr,
    accepts: Arc<AtomicUsize>,
    handshakes: Arc<AtomicUsize>,
    resumed: Arc<AtomicUsize>,
}

impl TlsUpstream {
    /// Serves with `identity`; with `client_ca`, requires a client certificate from it.
    async fn start(identity: &Identity, client_ca: Option<&TestCa>) -> Self {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = ServerConfig::builder_with_provider(Arc::clone(&provider))
            .with_safe_default_protocol_versions()
            .unwrap();
        let builder = match client_ca {
            None => builder.with_no_client_auth(),
            Some(ca) => {
                let mut roots = RootCertStore::empty();
                roots
                    .add(CertificateDer::from_pem_slice(ca.pem().as_bytes()).unwrap())
                    .unwrap();
                let verifier =
                    WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                        .build()
                        .unwrap();
                builder.with_client_cert_verifier(verifier)
            }
        };
        let mut config = builder
            .with_single_cert(
                vec![CertificateDer::from_pem_slice(identity.cert_pem.as_bytes()).unwrap()],
                PrivateKeyDer::from_pem_slice(identity.key_pem.as_bytes()).unwrap(),
            )
            .unwrap();
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        let acceptor = TlsAcceptor::from(Arc::new(config));

        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let up = TlsUpstream {
            addr,
            accepts: Arc::default(),
            handshakes: Arc::default(),
            resumed: Arc::default(),
        };
        let (a, h, r) = (
            Arc::clone(&up.accepts),
            Arc::clone(&up.handshakes),
            Arc::clone(&up.resumed),
        );
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                a.fetch_add(1, Ordering::SeqCst);
                let acceptor = acceptor.clone();
                let (h, r) = (Arc::clone(&h), Arc::clone(&r));
                tokio::spawn(async move {
                    let Ok(stream) = acceptor.accept(stream).await else {
                        return;
                    };
                    h.fetch_add(1, Ordering::SeqCst);
                    if stream.get_ref().1.handshake_kind() == Some(HandshakeKind::Resumed) {
                        r.fetch_add(1, Ordering::SeqCst);
                    }
                    let service = service_fn(|_req: http::Request<hyper::body::Incoming>| async {
                        Ok::<_, Infallible>(http::Response::new(Full::new(Bytes::from_static(
                            b"hello",
                        ))))
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        up
    }

    fn accepts(&self) -> usize {
        self.accepts.load(Ordering::SeqCst)
    }

    fn handshakes(&self) -> usize {
        self.handshakes.load(Ordering::SeqCst)
    }

    fn resumed(&self) -> usize {
        self.resumed.load(Ordering::SeqCst)
    }
}

/// An upstream that accepts TCP connections and never says a word: a TLS handshake with
/// it never finishes.
async fn silent_upstream() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((stream, _)) = listener.accept().await {
            held.push(stream);
        }
    });
    addr
}

/// Upstream `api` at `addr` with `tls: {tls}`, `pool: {pool}` and `timeouts: {timeouts}`
/// (flow mapping bodies).
fn tls_upstream(addr: SocketAddr, tls: &str, pool: &str, timeouts: &str) -> String {
    format!(
        "{{name: api, endpoints: [\"{addr}\"], timeouts: {{{timeouts}}}, pool: {{{pool}}}, tls: {{{tls}}}}}"
    )
}

/// `tls` keys trusting only the CA in `ca_file`, checking the name `localhost`.
fn trusting(ca_file: &str) -> String {
    format!("server_name: localhost, ca_file: \"{ca_file}\"")
}

fn api_route(timeout: &str) -> String {
    route("r", "*", "/", "api", timeout, "access_log")
}

fn yaml(upstream: &str, route_timeout: &str) -> String {
    config(&[], &[api_route(route_timeout)], &[upstream.to_owned()])
}

async fn metric_of(g: &TestGateway, name: &str, labels: &[(&str, &str)]) -> f64 {
    let m = metrics_text(g.admin).await;
    metric(&m, name, labels).unwrap_or(0.0)
}

async fn handshakes(g: &TestGateway, kind: &str) -> f64 {
    metric_of(
        g,
        "seawall_upstream_tls_handshakes_total",
        &[("upstream", "api"), ("kind", kind)],
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_to_a_tls_upstream_succeed_on_one_reused_connection() {
    let ca = TestCa::new("upstream CA");
    let files = Files::new("reuse");
    let ca_file = files.write("ca.pem", &ca.pem());
    let up = TlsUpstream::start(&ca.server(), None).await;
    let g = start(&yaml(
        &tls_upstream(up.addr, &trusting(&ca_file), "", ""),
        "10s",
    ))
    .await;

    let mut c = Conn::open(g.addr).await;
    for i in 0..5 {
        let r = c.get("/").await;
        assert_eq!(r.status, 200, "request {i}: {}", r.text());
        assert_eq!(r.text(), "hello");
    }
    assert_eq!(up.accepts(), 1, "one TLS connection carried every request");
    assert_eq!(handshakes(&g, "full").await, 1.0);
    assert_eq!(handshakes(&g, "resumed").await, 0.0);
    let m = metrics_text(g.admin).await;
    let count = |name: &str| metric(&m, name, &[("upstream", "api")]);
    assert_eq!(
        count("seawall_upstream_tls_handshake_duration_seconds_count"),
        Some(1.0),
        "{m}"
    );
    assert_eq!(
        count("seawall_upstream_checkout_wait_seconds_count"),
        Some(5.0)
    );
    assert_eq!(
        count("seawall_upstream_response_head_duration_seconds_count"),
        Some(5.0)
    );

    let view: serde_json::Value =
        serde_json::from_slice(&admin_get(g.admin, "/upstreams").await.body).unwrap();
    let api = &view["upstreams"][0];
    assert_eq!(api["tls"], true, "{api}");
    assert_eq!(api["connection_reuse_ratio"], 0.8, "{api}");
    assert_eq!(api["tls_resumption_ratio"], 0.0, "{api}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_handshake_that_never_finishes_is_a_504_after_the_tls_handshake_timeout() {
    let ca = TestCa::new("upstream CA");
    let files = Files::new("silent");
    let ca_file = files.write("ca.pem", &ca.pem());
    let addr = silent_upstream().await;
    let upstream = tls_upstream(addr, &trusting(&ca_file), "", "tls_handshake: 300ms");
    let g = start(&yaml(&upstream, "10s")).await;

    let started = Instant::now();
    let r = get(g.addr, "/").await;
    let elapsed = started.elapsed();
    assert_eq!(r.status, 504, "{}", r.text());
    assert_eq!(r.error(), Some("tls_handshake_timeout"));
    assert_between("TLS handshake timeout", elapsed, MS(250), MS(2_500));
    let m = metrics_text(g.admin).await;
    assert_eq!(
        metric(
            &m,
            "seawall_errors_total",
            &[("route", "r"), ("kind", "tls_handshake_timeout")]
        ),
        Some(1.0),
        "{m}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_certificate_from_an_unknown_ca_is_a_502_whose_logged_detail_names_the_check() {
    let (trusted, other) = (TestCa::new("trusted CA"), TestCa::new("other CA"));
    let files = Files::new("unknown-ca");
    let ca_file = files.write("ca.pem", &trusted.pem());
    let up = TlsUpstream::start(&other.server(), None).await;
    let mut g = start(&yaml(
        &tls_upstream(up.addr, &trusting(&ca_file), "", ""),
        "10s",
    ))
    .await;

    let r = get(g.addr, "/").await;
    assert_eq!(r.status, 502, "{}", r.text());
    assert_eq!(r.error(), Some("tls_error"));
    assert!(
        !r.text().contains("unknown issuer"),
        "the client is not told the details: {}",
        r.text()
    );
    let line = log_line(&mut g.log, Duration::from_secs(5), |v| v["status"] == 502)
        .await
        .expect("access log line");
    assert_eq!(line["error"], "tls_error", "{line}");
    let detail = line["error_detail"].as_str().unwrap_or_default();
    assert!(detail.contains("unknown issuer"), "{line}");
    assert_eq!(line["endpoint"], up.addr.to_string(), "{line}");
    assert_eq!(up.handshakes(), 0, "the upstream saw no finished handshake");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_request_per_connection_opens_a_connection_per_request_and_resumes_the_session() {
    let ca = TestCa::new("upstream CA");
    let files = Files::new("max-requests");
    let ca_file = files.write("ca.pem", &ca.pem());
    let up = TlsUpstream::start(&ca.server(), None).await;
    let upstream = tls_upstream(
        up.addr,
        &trusting(&ca_file),
        "max_requests_per_connection: 1",
        "",
    );
    let g = start(&yaml(&upstream, "10s")).await;

    let mut c = Conn::open(g.addr).await;
    for i in 0..4 {
        assert_eq!(c.get("/").await.status, 200, "request {i}");
    }
    assert_eq!(up.accepts(), 4, "every request on its own connection");
    assert_eq!(handshakes(&g, "full").await, 1.0, "only the first is full");
    assert_eq!(handshakes(&g, "resumed").await, 3.0);
    assert_eq!(up.resumed(), 3, "the upstream agrees");
    let closed = metric_of(
        &g,
        "seawall_upstream_connections_closed_total",
        &[("upstream", "api"), ("reason", "max_requests")],
    )
    .await;
    assert!(
        closed >= 3.0,
        "connections closed for max_requests: {closed}"
    );
    let view: serde_json::Value =
        serde_json::from_slice(&admin_get(g.admin, "/upstreams").await.body).unwrap();
    assert_eq!(view["upstreams"][0]["tls_resumption_ratio"], 0.75, "{view}");
    assert_eq!(
        view["upstreams"][0]["connection_reuse_ratio"], 0.0,
        "{view}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upstream_requiring_a_client_certificate_is_served_only_with_one_configured() {
    let (server_ca, client_ca) = (TestCa::new("server CA"), TestCa::new("client CA"));
    let files = Files::new("mtls");
    let ca_file = files.write("ca.pem", &server_ca.pem());
    let client = client_ca.client();
    let cert_file = files.write("client.pem", &client.cert_pem);
    let key_file = files.write("client.key", &client.key_pem);
    let up = TlsUpstream::start(&server_ca.server(), Some(&client_ca)).await;

    let with_cert = format!(
        "{}, client_cert_file: \"{cert_file}\", client_key_file: \"{key_file}\"",
        trusting(&ca_file)
    );
    let g = start(&yaml(&tls_upstream(up.addr, &with_cert, "", ""), "10s")).await;
    let r = get(g.addr, "/").await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.text(), "hello");

    // Without: under TLS 1.3 the client's side of the handshake completes before the
    // upstream checks, so the failure shows on the handshake or on the first request.
    let g = start(&yaml(
        &tls_upstream(up.addr, &trusting(&ca_file), "", ""),
        "10s",
    ))
    .await;
    let r = get(g.addr, "/").await;
    assert_eq!(r.status, 502, "{}", r.text());
    assert!(
        matches!(r.error(), Some("tls_error" | "upstream_reset")),
        "{:?}",
        r.error()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn new_connections_after_a_reload_still_resume_the_tls_session() {
    let ca = TestCa::new("upstream CA");
    let files = Files::new("reload");
    let ca_file = files.write("ca.pem", &ca.pem());
    let up = TlsUpstream::start(&ca.server(), None).await;
    let upstream = |pool: &str| tls_upstream(up.addr, &trusting(&ca_file), pool, "");
    let one = "max_requests_per_connection: 1";
    let g = start(&yaml(&upstream(one), "10s")).await;
    assert_eq!(get(g.addr, "/").await.status, 200);
    assert_eq!(up.resumed(), 0, "the first handshake is full");

    // Only a route changes: the upstream, its pool and its TLS are kept.
    let parsed = |y: &str| seawall_config::parse("test.yaml", y).unwrap();
    g.gw.apply(parsed(&yaml(&upstream(one), "9s")))
        .await
        .expect("route-only reload");
    assert_eq!(get(g.addr, "/").await.status, 200);
    assert_eq!(up.resumed(), 1, "resumed after a route-only reload");

    // The upstream itself changes: a new pool, whose TLS continues the previous one.
    let changed = format!("{one}, max_idle_per_endpoint: 8");
    g.gw.apply(parsed(&yaml(&upstream(&changed), "9s")))
        .await
        .expect("upstream reload");
    assert_eq!(get(g.addr, "/").await.status, 200);
    assert_eq!(up.resumed(), 2, "resumed after the upstream was rebuilt");
    assert_eq!(handshakes(&g, "resumed").await, 2.0);
    assert_eq!(handshakes(&g, "full").await, 1.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reload_whose_ca_file_does_not_load_is_refused_and_the_old_config_keeps_serving() {
    let ca = TestCa::new("upstream CA");
    let files = Files::new("bad-reload");
    let ca_file = files.write("ca.pem", &ca.pem());
    let up = TlsUpstream::start(&ca.server(), None).await;
    let g = start(&yaml(
        &tls_upstream(up.addr, &trusting(&ca_file), "", ""),
        "10s",
    ))
    .await;
    assert_eq!(get(g.addr, "/").await.status, 200);

    // A typed config skips `validate`, so this exercises the gateway's own check.
    let mut config = seawall_config::parse(
        "test.yaml",
        &yaml(&tls_upstream(up.addr, &trusting(&ca_file), "", ""), "10s"),
    )
    .unwrap();
    config.upstreams[0].tls.as_mut().unwrap().ca_file = Some("/nonexistent/seawall/ca.pem".into());
    config.upstreams[0].pool.max_idle_per_endpoint = 4;
    let error = g.gw.apply(config).await.expect_err("reload refused");
    assert!(
        error.contains("upstream `api`") && error.contains("tls.ca_file"),
        "{error}"
    );
    assert_eq!(g.gw.generation(), 1);
    let r = get(g.addr, "/").await;
    assert_eq!(r.status, 200, "the old config keeps serving: {}", r.text());

    // A rotated CA file under an unchanged config is picked up by a reload: the
    // upstream's certificate is not from the new CA, so requests now fail its check.
    let other = TestCa::new("rotated CA");
    files.write("ca.pem", &other.pem());
    let same = seawall_config::parse(
        "test.yaml",
        &yaml(&tls_upstream(up.addr, &trusting(&ca_file), "", ""), "10s"),
    )
    .unwrap();
    assert_eq!(
        g.gw.apply(same).await,
        Ok(2),
        "the changed file forces a rebuild"
    );
    let r = get(g.addr, "/").await;
    assert_eq!(r.status, 502, "{}", r.text());
    assert_eq!(r.error(), Some("tls_error"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_host_name_endpoint_without_server_name_checks_the_certificate_against_the_name() {
    let ca = TestCa::new("upstream CA");
    let files = Files::new("dns-name");
    let ca_file = files.write("ca.pem", &ca.pem());
    // The certificate names only `api.test`: an IP or `localhost` would not match it.
    let identity = ca.leaf(&["api.test"], ExtendedKeyUsagePurpose::ServerAuth);
    let up = TlsUpstream::start(&identity, None).await;
    let resolver = Arc::new(seawall_pool::ManualResolver::new());
    resolver.set("api.test", &[up.addr.ip()], None);
    let upstream = format!(
        "{{name: api, endpoints: [\"api.test:{}\"], tls: {{ca_file: \"{ca_file}\"}}}}",
        up.addr.port()
    );
    let options = seawall_gateway::GatewayOptions {
        resolver: Some(resolver as Arc<dyn seawall_pool::Resolve>),
        ..Default::default()
    };
    let g = start_with(&yaml(&upstream, "10s"), options).await;
    let r = get(g.addr, "/").await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.text(), "hello");
    assert_eq!(up.handshakes(), 1);
}

/// A self-signed certificate as OpenSSL 3's `req -x509` makes it: `CA:TRUE`, for `names`.
fn self_signed_ca_true(names: &[&str]) -> Identity {
    let names: Vec<String> = names.iter().map(|n| (*n).to_owned()).collect();
    let mut params = CertificateParams::new(names).unwrap();
    params
        .distinguished_name
        .push(DnType::CommonName, "localhost");
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let key = KeyPair::generate().unwrap();
    let cert = params.self_signed(&key).unwrap();
    Identity {
        cert_pem: cert.pem(),
        key_pem: key.serialize_pem(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_self_signed_ca_true_certificate_pinned_in_ca_file_is_trusted_as_itself() {
    // The most common private setup: `openssl req -x509` (CA:TRUE) and that one file as
    // `ca_file`. curl and Go accept it; so must the gateway, with the name still checked.
    let identity = self_signed_ca_true(&["localhost"]);
    let files = Files::new("pinned");
    let ca_file = files.write("self.pem", &identity.cert_pem);
    let up = TlsUpstream::start(&identity, None).await;
    let g = start(&yaml(
        &tls_upstream(up.addr, &trusting(&ca_file), "", ""),
        "10s",
    ))
    .await;
    let r = get(g.addr, "/").await;
    assert_eq!(r.status, 200, "{:?} {}", r.error(), r.text());
    assert_eq!(r.text(), "hello");

    // The same pin does not excuse a name the certificate does not hold.
    let wrong_name = format!("server_name: other.example, ca_file: \"{ca_file}\"");
    let mut g = start(&yaml(&tls_upstream(up.addr, &wrong_name, "", ""), "10s")).await;
    let r = get(g.addr, "/").await;
    assert_eq!(r.error(), Some("tls_error"));
    let line = log_line(&mut g.log, Duration::from_secs(5), |v| v["status"] == 502)
        .await
        .expect("access log line");
    let detail = line["error_detail"].as_str().unwrap_or_default();
    assert!(detail.contains("name mismatch"), "{line}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ca_true_certificate_that_is_not_pinned_says_what_to_do() {
    // Signed by a trusted CA but itself marked CA:TRUE: webpki refuses it, and the detail
    // names the cause and the fix.
    let ca = TestCa::new("trusted CA");
    let names = vec!["localhost".to_owned()];
    let mut params = CertificateParams::new(names).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.use_authority_key_identifier_extension = true;
    let key = KeyPair::generate().unwrap();
    let cert = params.signed_by(&key, &ca.issuer).unwrap();
    let identity = Identity {
        cert_pem: cert.pem(),
        key_pem: key.serialize_pem(),
    };
    let files = Files::new("ca-leaf");
    let ca_file = files.write("ca.pem", &ca.pem());
    let up = TlsUpstream::start(&identity, None).await;
    let mut g = start(&yaml(
        &tls_upstream(up.addr, &trusting(&ca_file), "", ""),
        "10s",
    ))
    .await;
    let r = get(g.addr, "/").await;
    assert_eq!(r.error(), Some("tls_error"));
    let line = log_line(&mut g.log, Duration::from_secs(5), |v| v["status"] == 502)
        .await
        .expect("access log line");
    let detail = line["error_detail"].as_str().unwrap_or_default();
    assert!(
        detail.contains("CA:TRUE") && detail.contains("basicConstraints=critical,CA:FALSE"),
        "{line}"
    );
}
