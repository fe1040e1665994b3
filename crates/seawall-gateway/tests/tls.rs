//! TLS termination on a listener, over real TLS on loopback: HTTPS and h2-by-ALPN are
//! served like plaintext (and the upstream is told `x-forwarded-proto: https`), the
//! handshake has its own slowloris timeout and the request head keeps the usual one,
//! failed handshakes are counted, a reload (or the file watcher) picks up a renewed
//! certificate without touching open connections (and a broken one fails the reload and
//! keeps the old certificate), sessions resume, a `reset` fault is a TCP RST and a `close`
//! one a FIN without `close_notify` (over h2, the stream's reset), and `seawall check` explains a wrong `tls`
//! block.
//!
//! Certificates are generated per test with rcgen; the client is tokio-rustls plus hyper's
//! client `conn` API, trusting only the test's CA.

mod support;

use std::{
    net::SocketAddr,
    path::PathBuf,
    sync::Arc,
    time::{Duration, Instant},
};

use bytes::Bytes;
use http::Version;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::{TokioExecutor, TokioIo};
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose,
};
use rustls::{ClientConfig, HandshakeKind, RootCertStore, pki_types::ServerName};
use rustls_pki_types::{CertificateDer, pem::PemObject};
use seawall_gateway::GatewayOptions;
use support::*;
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
};
use tokio_rustls::{TlsConnector, client::TlsStream};

const MS: fn(u64) -> Duration = Duration::from_millis;

/// A certificate authority that exists for one test.
struct TestCa {
    issuer: CertifiedIssuer<'static, KeyPair>,
}

/// A server certificate (for `localhost` and 127.0.0.1) and its key.
struct Identity {
    cert_pem: String,
    key_pem: String,
    /// The leaf as DER, to recognise it in a client's view of the handshake.
    der: Vec<u8>,
}

impl TestCa {
    fn new() -> Self {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params
            .distinguished_name
            .push(DnType::CommonName, "seawall test CA");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let issuer = CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap();
        Self { issuer }
    }

    /// A server certificate whose common name is `cn`, so two of them always differ.
    fn server(&self, cn: &str) -> Identity {
        let names = vec!["localhost".to_owned(), "127.0.0.1".to_owned()];
        let mut params = CertificateParams::new(names).unwrap();
        params.distinguished_name.push(DnType::CommonName, cn);
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        params.use_authority_key_identifier_extension = true;
        let key = KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        Identity {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
            der: cert.der().to_vec(),
        }
    }

    /// A client configuration trusting only this CA, offering `alpn`. Each call makes a
    /// new configuration, with its own session store.
    fn client(&self, alpn: &[&str]) -> Arc<ClientConfig> {
        let mut roots = RootCertStore::empty();
        roots
            .add(CertificateDer::from_pem_slice(self.issuer.pem().as_bytes()).unwrap())
            .unwrap();
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
        config.alpn_protocols = alpn.iter().map(|p| p.as_bytes().to_vec()).collect();
        Arc::new(config)
    }
}

/// A directory for one test's certificate, key and config files.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> Self {
        let dir = std::env::temp_dir().join(format!(
            "seawall-tls-test-{}-{name}-{}",
            std::process::id(),
            fastrand::u64(..)
        ));
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }

    fn path(&self, file: &str) -> PathBuf {
        self.0.join(file)
    }

    /// Writes `identity` as `cert.pem` and `key.pem`, as a certificate renewal would.
    fn install(&self, identity: &Identity) {
        std::fs::write(self.path("cert.pem"), &identity.cert_pem).unwrap();
        std::fs::write(self.path("key.pem"), &identity.key_pem).unwrap();
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The `tls:` listener line for the files of `dir`, with extra keys (e.g. a timeout).
fn tls_line(dir: &TempDir, extra: &str) -> String {
    format!(
        "tls: {{cert_file: \"{}\", key_file: \"{}\"{extra}}}",
        dir.path("cert.pem").display(),
        dir.path("key.pem").display()
    )
}

/// A config with one TLS listener in front of `sim`; `mark` is set as `x-gen` on responses
/// so a test can tell configs apart.
fn tls_config(sim: SocketAddr, dir: &TempDir, extra: &str, mark: &str) -> String {
    tls_config_with(sim, dir, extra, &["idle_timeout: 30s"], mark)
}

/// Like [`tls_config`], with other listener keys (`key: value` each).
fn tls_config_with(
    sim: SocketAddr,
    dir: &TempDir,
    extra: &str,
    listener: &[&str],
    mark: &str,
) -> String {
    let tls = tls_line(dir, extra);
    let lines: Vec<&str> = std::iter::once(tls.as_str())
        .chain(listener.iter().copied())
        .collect();
    config(
        &lines,
        &[route(
            "r",
            "*",
            "/",
            "up",
            "10s",
            &format!("{{headers: {{response: {{set: {{x-gen: {mark}}}}}}}}}"),
        )],
        &[upstream("up", &[sim], "", "")],
    )
}

/// Starts a gateway from `yaml`, written to `dir`/seawall.yaml so that it can be reloaded.
async fn start_tls(dir: &TempDir, yaml: &str) -> TestGateway {
    start_from(dir, yaml, false).await
}

async fn start_from(dir: &TempDir, yaml: &str, watch: bool) -> TestGateway {
    let file = dir.path("seawall.yaml");
    std::fs::write(&file, yaml).unwrap();
    start_with(
        yaml,
        GatewayOptions {
            config_path: Some(file),
            watch,
            ..Default::default()
        },
    )
    .await
}

/// Connects and completes the TLS handshake as `localhost`.
async fn tls_connect(addr: SocketAddr, config: &Arc<ClientConfig>) -> TlsStream<TcpStream> {
    let tcp = TcpStream::connect(addr).await.unwrap();
    tcp.set_nodelay(true).unwrap();
    TlsConnector::from(Arc::clone(config))
        .connect(ServerName::try_from("localhost").unwrap(), tcp)
        .await
        .expect("TLS handshake with the gateway")
}

/// What the client saw of the handshake.
struct Seen {
    leaf: Vec<u8>,
    alpn: Option<Vec<u8>>,
    kind: Option<HandshakeKind>,
}

fn seen(stream: &TlsStream<TcpStream>) -> Seen {
    let conn = stream.get_ref().1;
    Seen {
        leaf: conn.peer_certificates().unwrap()[0].to_vec(),
        alpn: conn.alpn_protocol().map(<[u8]>::to_vec),
        kind: conn.handshake_kind(),
    }
}

/// An HTTP/1.1 connection over TLS.
struct HttpsConn {
    sender: hyper::client::conn::http1::SendRequest<Full<Bytes>>,
    seen: Seen,
}

impl HttpsConn {
    async fn open(addr: SocketAddr, config: &Arc<ClientConfig>) -> Self {
        let stream = tls_connect(addr, config).await;
        let seen = seen(&stream);
        let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .expect("HTTP/1.1 handshake");
        tokio::spawn(conn);
        Self { sender, seen }
    }

    async fn get(&mut self, path: &str) -> Resp {
        self.sender.ready().await.expect("connection usable");
        let resp = self
            .sender
            .send_request(get_req(path))
            .await
            .unwrap_or_else(|e| panic!("GET {path} over TLS: {e}"));
        let (parts, body) = resp.into_parts();
        Resp {
            status: parts.status.as_u16(),
            headers: parts.headers,
            body: body.collect().await.unwrap().to_bytes(),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_request_reaches_the_upstream_with_x_forwarded_proto_https() {
    let (ca, dir, sim) = (TestCa::new(), TempDir::new("https"), sim().await);
    let id = ca.server("first");
    dir.install(&id);
    let g = start_tls(&dir, &tls_config(sim.local_addr(), &dir, "", "a")).await;

    let mut c = HttpsConn::open(g.addr, &ca.client(&["http/1.1"])).await;
    assert_eq!(
        c.seen.leaf, id.der,
        "the gateway presents the configured certificate"
    );
    assert_eq!(c.seen.alpn.as_deref(), Some(&b"http/1.1"[..]));
    for _ in 0..2 {
        let r = c.get("/echo").await;
        assert_eq!(r.status, 200, "{}", r.text());
        let echo = r.echo();
        assert_eq!(echo.header("x-forwarded-proto"), Some("https"));
        assert_eq!(echo.header("host"), Some("test.local"));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fault_reset_over_tls_is_a_tcp_rst_and_close_an_eof_without_close_notify() {
    for action in ["reset", "close"] {
        let (ca, dir, sim) = (TestCa::new(), TempDir::new(action), sim().await);
        dir.install(&ca.server("fault"));
        let yaml = config(
            &[&tls_line(&dir, "")],
            &[route(
                "r",
                "*",
                "/",
                "up",
                "10s",
                &format!("{{fault: {{rules: [{{name: end, abort: {{{action}: true}}}}]}}}}"),
            )],
            &[upstream("up", &[sim.local_addr()], "", "")],
        );
        let g = start_tls(&dir, &yaml).await;
        let mut s = tls_connect(g.addr, &ca.client(&["http/1.1"])).await;
        s.write_all(b"GET /echo HTTP/1.1\r\nhost: test.local\r\n\r\n")
            .await
            .unwrap();
        let mut out = Vec::new();
        let read = tokio::time::timeout(MS(3000), s.read_to_end(&mut out))
            .await
            .expect("the connection ends within 3 s");
        assert!(out.is_empty(), "{action}: no response bytes");
        let e = read.expect_err("neither ends the TLS session cleanly");
        let expected = match action {
            // The RST arrives in place of any further TLS record.
            "reset" => std::io::ErrorKind::ConnectionReset,
            // A FIN with no close_notify alert: rustls reports a truncated session.
            _ => std::io::ErrorKind::UnexpectedEof,
        };
        assert_eq!(e.kind(), expected, "{action}: {e}");
        assert_eq!(sim.stats().requests, 0);

        // h2 by ALPN: the stream is reset, as on h2c (INTERNAL_ERROR, or CANCEL for close).
        let stream = tls_connect(g.addr, &ca.client(&["h2"])).await;
        let (mut sender, conn) =
            hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(stream))
                .await
                .expect("h2 handshake over TLS");
        tokio::spawn(conn);
        let req = http::Request::get("https://test.local/echo")
            .body(Full::<Bytes>::default())
            .unwrap();
        let e = tokio::time::timeout(MS(3000), sender.send_request(req))
            .await
            .expect("the stream ends within 3 s")
            .expect_err("the stream is reset");
        let reason = std::error::Error::source(&e)
            .and_then(|s| s.downcast_ref::<h2::Error>())
            .and_then(h2::Error::reason);
        let expected = match action {
            "reset" => h2::Reason::INTERNAL_ERROR,
            _ => h2::Reason::CANCEL,
        };
        assert_eq!(reason, Some(expected), "{action}: {e:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn h2_is_chosen_by_alpn_and_served_over_tls() {
    let (ca, dir, sim) = (TestCa::new(), TempDir::new("h2"), sim().await);
    dir.install(&ca.server("first"));
    let g = start_tls(&dir, &tls_config(sim.local_addr(), &dir, "", "a")).await;

    let stream = tls_connect(g.addr, &ca.client(&["h2", "http/1.1"])).await;
    assert_eq!(seen(&stream).alpn.as_deref(), Some(&b"h2"[..]));
    let (mut sender, conn) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(stream))
            .await
            .expect("h2 handshake over TLS");
    tokio::spawn(conn);
    // Several streams at once on the one connection.
    let requests = (0..4).map(|_| {
        let req = http::Request::get("https://test.local/echo")
            .body(Full::<Bytes>::default())
            .unwrap();
        sender.send_request(req)
    });
    for resp in futures_util::future::join_all(requests).await {
        let resp = resp.expect("h2 request");
        assert_eq!(resp.status(), 200);
        assert_eq!(resp.version(), Version::HTTP_2);
        let body = resp.into_body().collect().await.unwrap().to_bytes();
        let echo: seawall_sim::EchoReport = serde_json::from_slice(&body).unwrap();
        assert_eq!(echo.header("x-forwarded-proto"), Some("https"));
        assert_eq!(echo.header("host"), Some("test.local"));
    }

    // A client offering only HTTP/1.1 still gets it.
    let mut c = HttpsConn::open(g.addr, &ca.client(&["http/1.1"])).await;
    assert_eq!(c.get("/echo").await.status, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_without_a_client_hello_is_closed_at_handshake_timeout_while_others_are_served() {
    let (ca, dir, sim) = (TestCa::new(), TempDir::new("slow"), sim().await);
    dir.install(&ca.server("first"));
    let yaml = tls_config(sim.local_addr(), &dir, ", handshake_timeout: 500ms", "a");
    let g = start_tls(&dir, &yaml).await;

    let addr = g.addr;
    let silent = tokio::spawn(async move {
        let mut s = TcpStream::connect(addr).await.unwrap();
        let start = Instant::now();
        let (bytes, closed) = read_until_close(&mut s, MS(5000)).await;
        (start.elapsed(), closed, bytes.len())
    });
    // Meanwhile another client is served promptly.
    tokio::time::sleep(MS(100)).await;
    let t = Instant::now();
    let mut c = HttpsConn::open(g.addr, &ca.client(&["http/1.1"])).await;
    assert_eq!(c.get("/echo").await.status, 200);
    assert!(t.elapsed() < MS(1000), "took {:?}", t.elapsed());

    let (elapsed, closed, bytes) = silent.await.unwrap();
    assert!(closed, "the silent client was never disconnected");
    assert_eq!(
        bytes, 0,
        "nothing is sent to a client that never said hello"
    );
    assert_between("handshake timeout", elapsed, MS(400), MS(3000));
    let m = metrics_text(g.admin).await;
    assert_eq!(
        metric(
            &m,
            "seawall_downstream_connections_closed_total",
            &[("reason", "tls_handshake_timeout")]
        ),
        Some(1.0),
        "{m}"
    );
    // The served client was not counted as closed by the gateway.
    assert_eq!(
        metric(
            &m,
            "seawall_downstream_connections_closed_total",
            &[("reason", "tls_error")]
        ),
        None,
        "{m}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slowloris_after_the_handshake_is_cut_at_header_read_timeout_like_on_plaintext() {
    let (ca, dir, sim) = (TestCa::new(), TempDir::new("slow-head"), sim().await);
    dir.install(&ca.server("first"));
    let yaml = tls_config_with(
        sim.local_addr(),
        &dir,
        "",
        &["header_read_timeout: 1s", "idle_timeout: 30s"],
        "a",
    );
    let g = start_tls(&dir, &yaml).await;

    // The handshake completes at once; then the request head never ends.
    let mut stream = tls_connect(g.addr, &ca.client(&["http/1.1"])).await;
    stream
        .write_all(b"GET /echo HTTP/1.1\r\nHost: test.local\r\n")
        .await
        .unwrap();
    stream.flush().await.unwrap();
    let start = Instant::now();
    let mut buf = [0u8; 1024];
    let closed = loop {
        match tokio::time::timeout(MS(5000), stream.read(&mut buf)).await {
            Err(_) => break false,
            Ok(Ok(0) | Err(_)) => break true,
            Ok(Ok(_)) => {}
        }
    };
    assert!(closed, "the slow request head was never cut");
    assert_between("header read timeout", start.elapsed(), MS(800), MS(3000));
    let m = metrics_text(g.admin).await;
    assert_eq!(
        metric(
            &m,
            "seawall_downstream_connections_closed_total",
            &[("reason", "header_read_timeout")]
        ),
        Some(1.0),
        "{m}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plaintext_http_on_a_tls_port_fails_the_handshake_and_is_counted_as_tls_error() {
    let (ca, dir, sim) = (TestCa::new(), TempDir::new("plain"), sim().await);
    dir.install(&ca.server("first"));
    let g = start_tls(&dir, &tls_config(sim.local_addr(), &dir, "", "a")).await;

    let mut s = TcpStream::connect(g.addr).await.unwrap();
    s.write_all(b"GET / HTTP/1.1\r\nHost: test.local\r\n\r\n")
        .await
        .unwrap();
    let (bytes, closed) = read_until_close(&mut s, MS(3000)).await;
    assert!(
        closed,
        "a plaintext request on the TLS port was not refused"
    );
    assert!(
        !String::from_utf8_lossy(&bytes).contains("HTTP/1.1 200"),
        "it must not be served"
    );
    let counted = eventually(MS(2000), || async {
        metric(
            &metrics_text(g.admin).await,
            "seawall_downstream_connections_closed_total",
            &[("reason", "tls_error")],
        ) == Some(1.0)
    })
    .await;
    assert!(counted, "{}", metrics_text(g.admin).await);
    // The listener keeps serving TLS clients.
    let mut c = HttpsConn::open(g.addr, &ca.client(&["http/1.1"])).await;
    assert_eq!(c.get("/echo").await.status, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn renewed_certificate_reaches_new_connections_on_reload_while_open_ones_keep_working() {
    let (ca, dir, sim) = (TestCa::new(), TempDir::new("renew"), sim().await);
    let (first, second) = (ca.server("first"), ca.server("second"));
    dir.install(&first);
    let g = start_tls(&dir, &tls_config(sim.local_addr(), &dir, "", "a")).await;
    // One client configuration throughout: if the gateway resumed a session from before
    // the renewal, this client would be shown the old certificate again.
    let client = ca.client(&["http/1.1"]);

    let mut open = HttpsConn::open(g.addr, &client).await;
    assert_eq!(open.seen.leaf, first.der);
    assert_eq!(open.get("/echo").await.status, 200);

    // The config file is unchanged; only the files it names are renewed.
    dir.install(&second);
    let generation =
        g.gw.reload()
            .await
            .expect("reload with the renewed certificate");
    assert_eq!(generation, 2, "a renewed certificate is a new runtime");

    let mut fresh = HttpsConn::open(g.addr, &client).await;
    assert_eq!(
        fresh.seen.leaf, second.der,
        "new connections get the new certificate"
    );
    assert_eq!(fresh.seen.kind, Some(HandshakeKind::Full));
    assert_eq!(fresh.get("/echo").await.status, 200);

    // The connection from before the reload was not dropped and still serves requests.
    for _ in 0..3 {
        let r = open.get("/echo").await;
        assert_eq!(r.status, 200);
        assert_eq!(r.echo().header("x-forwarded-proto"), Some("https"));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn file_watcher_picks_up_a_certificate_renewed_in_its_own_directory() {
    let (ca, sim) = (TestCa::new(), sim().await);
    // The certificates live apart from the config, as they usually do (certbot's `live/`).
    let (config_dir, cert_dir) = (TempDir::new("watch-config"), TempDir::new("watch-certs"));
    let (first, second) = (ca.server("first"), ca.server("second"));
    cert_dir.install(&first);
    let yaml = tls_config(sim.local_addr(), &cert_dir, "", "a");
    let g = start_from(&config_dir, &yaml, true).await;
    let client = ca.client(&["http/1.1"]);
    assert_eq!(HttpsConn::open(g.addr, &client).await.seen.leaf, first.der);

    cert_dir.install(&second);
    let renewed = eventually(Duration::from_secs(5), || async { g.gw.generation() == 2 }).await;
    assert!(renewed, "no reload after the certificate files changed");
    let mut c = HttpsConn::open(g.addr, &client).await;
    assert_eq!(c.seen.leaf, second.der);
    assert_eq!(c.get("/echo").await.status, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reload_with_a_broken_or_missing_certificate_fails_and_the_old_certificate_keeps_serving() {
    let (ca, dir, sim) = (TestCa::new(), TempDir::new("broken"), sim().await);
    let first = ca.server("first");
    dir.install(&first);
    let g = start_tls(&dir, &tls_config(sim.local_addr(), &dir, "", "a")).await;
    let client = ca.client(&["http/1.1"]);
    let mut open = HttpsConn::open(g.addr, &client).await;

    // A certificate file truncated mid-write: it looks like PEM (so `seawall check` passes
    // it) but does not parse. The gateway's own build refuses it.
    let cert_file = dir.path("cert.pem");
    let half = &first.cert_pem[..first.cert_pem.len() / 2];
    std::fs::write(&cert_file, format!("{half}\n-----END CERTIFICATE-----\n")).unwrap();
    let error =
        g.gw.reload()
            .await
            .expect_err("a broken certificate fails the reload");
    assert!(error.contains("tls.cert_file"), "{error}");
    assert!(error.contains(&cert_file.display().to_string()), "{error}");
    assert_eq!(g.gw.generation(), 1);
    let c = HttpsConn::open(g.addr, &client).await;
    assert_eq!(c.seen.leaf, first.der, "the old certificate keeps serving");

    // A config naming a key file that does not exist: refused when the file is loaded.
    let missing = dir.path("missing-key.pem");
    let yaml = tls_config(sim.local_addr(), &dir, "", "b").replace(
        &dir.path("key.pem").display().to_string(),
        &missing.display().to_string(),
    );
    std::fs::write(dir.path("seawall.yaml"), &yaml).unwrap();
    let error =
        g.gw.reload()
            .await
            .expect_err("a missing key file fails the reload");
    assert!(error.contains("missing-key.pem"), "{error}");
    assert!(error.contains("cannot read"), "{error}");
    // And when the config comes from code (no `seawall check` on the way), building the
    // listener refuses it with the same kind of message.
    let mut config =
        seawall_config::parse("test.yaml", &tls_config(sim.local_addr(), &dir, "", "b"))
            .expect("valid config");
    config.listeners[0].tls.as_mut().unwrap().key_file = missing.clone();
    let error =
        g.gw.apply(config)
            .await
            .expect_err("apply refuses a missing key");
    assert!(
        error.contains("tls.key_file") && error.contains("missing-key.pem"),
        "{error}"
    );

    assert_eq!(g.gw.generation(), 1);
    let mut c = HttpsConn::open(g.addr, &client).await;
    assert_eq!(c.seen.leaf, first.der);
    let r = c.get("/echo").await;
    assert_eq!((r.status, r.header("x-gen")), (200, Some("a")));
    assert_eq!(open.get("/echo").await.status, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_resume_on_new_connections_and_across_a_reload_that_keeps_the_certificate() {
    let (ca, dir, sim) = (TestCa::new(), TempDir::new("resume"), sim().await);
    dir.install(&ca.server("first"));
    let g = start_tls(&dir, &tls_config(sim.local_addr(), &dir, "", "a")).await;
    let client = ca.client(&["http/1.1"]);

    // Tickets arrive after the handshake; a request and its response make sure the
    // client has read them.
    let mut c = HttpsConn::open(g.addr, &client).await;
    assert_eq!(c.seen.kind, Some(HandshakeKind::Full));
    assert_eq!(c.get("/echo").await.status, 200);
    let mut c = HttpsConn::open(g.addr, &client).await;
    assert_eq!(c.seen.kind, Some(HandshakeKind::Resumed));
    assert_eq!(c.get("/echo").await.status, 200);

    // Reloading with nothing changed is a no-op: the certificate files are compared too.
    assert_eq!(g.gw.reload().await, Ok(1));

    // A route change rebuilds the runtime but keeps the TLS configuration and its keys.
    std::fs::write(
        dir.path("seawall.yaml"),
        tls_config(sim.local_addr(), &dir, "", "b"),
    )
    .unwrap();
    assert_eq!(g.gw.reload().await, Ok(2));
    let mut c = HttpsConn::open(g.addr, &client).await;
    assert_eq!(c.seen.kind, Some(HandshakeKind::Resumed));
    let r = c.get("/echo").await;
    assert_eq!((r.status, r.header("x-gen")), (200, Some("b")));
}

/// The diagnostics `seawall check` prints for `yaml` (it runs the same parse).
fn check(yaml: &str) -> String {
    match seawall_config::parse("seawall.yaml", yaml) {
        Ok(_) => panic!("accepted:\n{yaml}"),
        Err(d) => d.to_string(),
    }
}

#[test]
fn check_rejects_a_tls_block_without_key_file_or_with_a_misspelt_key() {
    let (ca, dir) = (TestCa::new(), TempDir::new("check"));
    dir.install(&ca.server("first"));
    let sim: SocketAddr = "127.0.0.1:9".parse().unwrap();
    let valid = tls_config(sim, &dir, "", "a");
    seawall_config::parse("seawall.yaml", &valid).expect("the complete block is valid");

    let cert_only = valid.replace(
        &format!(", key_file: \"{}\"", dir.path("key.pem").display()),
        "",
    );
    let report = check(&cert_only);
    assert!(
        report.contains("missing required key `key_file`"),
        "{report}"
    );
    assert!(report.contains("listeners[0].tls"), "{report}");

    let typo = tls_config(sim, &dir, ", handshake_timout: 5s", "a");
    let report = check(&typo);
    assert!(report.contains("handshake_timout"), "{report}");
    assert!(
        report.contains("handshake_timeout"),
        "suggests the right key: {report}"
    );

    let bad_alpn = tls_config(sim, &dir, ", alpn: [h3]", "a");
    let report = check(&bad_alpn);
    assert!(report.contains("h3"), "{report}");
}

#[test]
fn check_names_a_missing_certificate_file_and_swapped_files() {
    let (ca, dir) = (TestCa::new(), TempDir::new("files"));
    dir.install(&ca.server("first"));
    let sim: SocketAddr = "127.0.0.1:9".parse().unwrap();
    let valid = tls_config(sim, &dir, "", "a");
    let cert = dir.path("cert.pem").display().to_string();
    let key = dir.path("key.pem").display().to_string();

    let missing = valid.replace(&cert, "/nonexistent/seawall/cert.pem");
    let report = check(&missing);
    assert!(report.contains("listeners[0].tls.cert_file"), "{report}");
    assert!(
        report.contains("cannot read the certificate file"),
        "{report}"
    );
    assert!(report.contains("/nonexistent/seawall/cert.pem"), "{report}");

    let swapped = valid
        .replace(&cert, "@CERT@")
        .replace(&key, &cert)
        .replace("@CERT@", &key);
    let report = check(&swapped);
    assert!(report.contains("swapped"), "{report}");
}
