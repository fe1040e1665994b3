//! TLS to the upstream, against real rustls servers on 127.0.0.1 with certificates
//! generated for each test. Timing assertions are generous: the CI box has 2 noisy cores.

mod support;

use std::time::Duration;

use bytes::Bytes;
use http_body_util::BodyExt;
use seawall_core::ErrorKind;
use seawall_pool::{PhaseMetrics, PoolOptions, PoolSettings, SessionStore, TlsFailure};
use support::tls::*;
use support::*;
use tokio::time::Instant;

fn tls_options(settings: &seawall_pool::TlsSettings, store: &SessionStore) -> PoolOptions {
    PoolOptions {
        tls: Some(upstream_tls(settings, store)),
        ..PoolOptions::default()
    }
}

#[tokio::test]
async fn tls_upstream_serves_requests_through_the_pool_on_one_reused_connection() {
    let ca = TestCa::new("test ca");
    let upstream = TlsUpstream::start(&ca.server(&["localhost"]), None).await;
    let options = tls_options(&ca.trusted_by_pool("localhost"), &SessionStore::default());
    let phase: PhaseMetrics = options.metrics.clone();
    let (pool, metrics) = pool_with(upstream.addr, settings(), options);
    for i in 0..5 {
        let (reused, body) = roundtrip(&pool, "/").await;
        assert_eq!(reused, i > 0, "request {i}");
        assert_eq!(body, Bytes::from_static(b"hello"));
    }
    assert_eq!(upstream.accepts(), 1);
    assert_eq!(metrics.opened.get(), 1);
    assert_eq!(phase.tls_handshakes_full.get(), 1);
    assert_eq!(phase.tls_handshakes_resumed.get(), 0);
    assert_eq!(phase.tls_handshake_duration.count(), 1);
    assert_eq!(phase.checkout_wait.count(), 5);
    assert_eq!(phase.response_head_duration.count(), 5);
}

#[tokio::test]
async fn server_name_may_be_an_ip_address_in_the_certificate() {
    let ca = TestCa::new("test ca");
    let upstream = TlsUpstream::start(&ca.server(&["127.0.0.1"]), None).await;
    let settings = seawall_pool::TlsSettings {
        server_name: None,
        ..ca.trusted_by_pool("unused")
    };
    let (pool, _metrics) = pool_with(
        upstream.addr,
        support::settings(),
        tls_options(&settings, &SessionStore::default()),
    );
    let (_, body) = roundtrip(&pool, "/").await;
    assert_eq!(body, Bytes::from_static(b"hello"));
}

#[tokio::test]
async fn handshake_with_a_listener_that_never_answers_fails_after_the_handshake_timeout() {
    let addr = mute_listener().await;
    let ca = TestCa::new("test ca");
    let settings = seawall_pool::TlsSettings {
        handshake_timeout: Duration::from_millis(300),
        ..ca.trusted_by_pool("localhost")
    };
    let (pool, metrics) = pool_with(
        addr,
        support::settings(),
        tls_options(&settings, &SessionStore::default()),
    );
    let started = Instant::now();
    let error = pool.checkout(0, in_secs(10)).await.unwrap_err();
    let waited = started.elapsed();
    assert_eq!(error.tls_failure(), Some(TlsFailure::Timeout), "{error}");
    assert_eq!(error.kind, ErrorKind::TlsHandshakeTimeout);
    assert!(
        error.detail().contains("TLS handshake timed out"),
        "{error}"
    );
    assert!(
        waited >= Duration::from_millis(250) && waited < Duration::from_secs(3),
        "{waited:?}"
    );
    assert_eq!(metrics.opened.get(), 0);
    let snap = pool.snapshot();
    assert_eq!((snap[0].open, snap[0].connecting), (0, 0), "slot freed");
}

#[tokio::test]
async fn deadline_shorter_than_the_handshake_timeout_fails_with_deadline_exceeded() {
    let addr = mute_listener().await;
    let ca = TestCa::new("test ca");
    let (pool, _metrics) = pool_with(
        addr,
        support::settings(),
        tls_options(&ca.trusted_by_pool("localhost"), &SessionStore::default()),
    );
    let started = Instant::now();
    let error = pool
        .checkout(0, started + Duration::from_millis(300))
        .await
        .unwrap_err();
    assert_eq!(error.kind, ErrorKind::DeadlineExceeded, "{error}");
    assert!(error.detail().contains("TLS"), "{error}");
    assert!(started.elapsed() < Duration::from_secs(3));
}

#[tokio::test]
async fn certificate_from_an_untrusted_ca_is_rejected_naming_the_unknown_issuer() {
    let upstream_ca = TestCa::new("upstream ca");
    let other_ca = TestCa::new("other ca");
    let upstream = TlsUpstream::start(&upstream_ca.server(&["localhost"]), None).await;
    let (pool, metrics) = pool_with(
        upstream.addr,
        settings(),
        tls_options(
            &other_ca.trusted_by_pool("localhost"),
            &SessionStore::default(),
        ),
    );
    let error = pool.checkout(0, in_secs(10)).await.unwrap_err();
    assert_eq!(error.tls_failure(), Some(TlsFailure::Error), "{error}");
    assert_eq!(error.kind, ErrorKind::TlsError);
    assert!(error.detail().contains("unknown issuer"), "{error}");
    assert!(std::error::Error::source(&error).is_some());
    assert_eq!(metrics.opened.get(), 0);
    assert_eq!(pool.snapshot()[0].open, 0);
}

#[tokio::test]
async fn certificate_for_another_name_is_rejected_naming_the_mismatch() {
    let ca = TestCa::new("test ca");
    let upstream = TlsUpstream::start(&ca.server(&["localhost"]), None).await;
    let (pool, _metrics) = pool_with(
        upstream.addr,
        settings(),
        tls_options(
            &ca.trusted_by_pool("api.example.test"),
            &SessionStore::default(),
        ),
    );
    let error = pool.checkout(0, in_secs(10)).await.unwrap_err();
    assert_eq!(error.tls_failure(), Some(TlsFailure::Error), "{error}");
    assert!(error.detail().contains("name mismatch"), "{error}");
    assert!(error.detail().contains("api.example.test"), "{error}");
}

#[tokio::test]
async fn expired_certificate_is_rejected_naming_the_expiry() {
    let ca = TestCa::new("test ca");
    let upstream = TlsUpstream::start(&ca.expired_server(&["localhost"]), None).await;
    let (pool, _metrics) = pool_with(
        upstream.addr,
        settings(),
        tls_options(&ca.trusted_by_pool("localhost"), &SessionStore::default()),
    );
    let error = pool.checkout(0, in_secs(10)).await.unwrap_err();
    assert_eq!(error.tls_failure(), Some(TlsFailure::Error), "{error}");
    assert!(error.detail().contains("expired"), "{error}");
}

#[tokio::test]
async fn second_connection_resumes_the_tls_session() {
    let ca = TestCa::new("test ca");
    let upstream = TlsUpstream::start(&ca.server(&["localhost"]), None).await;
    let options = tls_options(&ca.trusted_by_pool("localhost"), &SessionStore::default());
    let phase = options.metrics.clone();
    let (pool, _metrics) = pool_with(upstream.addr, settings(), options);
    roundtrip(&pool, "/").await;
    // Force the next request onto a new connection.
    pool.close_idle();
    let (reused, body) = roundtrip(&pool, "/").await;
    assert!(!reused);
    assert_eq!(body, Bytes::from_static(b"hello"));
    assert_eq!(upstream.accepts(), 2);
    assert_eq!(phase.tls_handshakes_full.get(), 1);
    assert_eq!(phase.tls_handshakes_resumed.get(), 1);
    assert_eq!(upstream.resumed(), 1, "the server agrees");
}

/// One pool's first connection and the handshake kind it got.
async fn first_handshake(addr: std::net::SocketAddr, tls: seawall_pool::UpstreamTls) -> (u64, u64) {
    let options = PoolOptions {
        tls: Some(tls),
        ..PoolOptions::default()
    };
    let phase = options.metrics.clone();
    let (pool, _metrics) = pool_with(addr, settings(), options);
    roundtrip(&pool, "/").await;
    (
        phase.tls_handshakes_full.get(),
        phase.tls_handshakes_resumed.get(),
    )
}

#[tokio::test]
async fn pool_rebuilt_on_reload_resumes_the_sessions_of_the_previous_pool() {
    let ca = TestCa::new("test ca");
    let upstream = TlsUpstream::start(&ca.server(&["localhost"]), None).await;
    let store = SessionStore::default();
    let old = upstream_tls(&ca.trusted_by_pool("localhost"), &store);
    assert_eq!(first_handshake(upstream.addr, old.clone()).await, (1, 0));
    // A reload that changed something unrelated to trust: sessions carry over.
    let reloaded = old
        .reload(&seawall_pool::TlsSettings {
            handshake_timeout: Duration::from_secs(7),
            ..ca.trusted_by_pool("localhost")
        })
        .unwrap();
    assert!(reloaded.sessions().same_store(&store));
    assert_eq!(first_handshake(upstream.addr, reloaded).await, (0, 1));
    // Built from scratch with the same store, rustls refuses to resume (the verifier is a
    // different object): this is why the gateway must call `reload`.
    let fresh = upstream_tls(&ca.trusted_by_pool("localhost"), &store);
    assert_eq!(first_handshake(upstream.addr, fresh).await, (1, 0));
}

#[tokio::test]
async fn upstream_requiring_a_client_certificate_rejects_the_pool_without_one() {
    let ca = TestCa::new("test ca");
    let clients = TestCa::new("client ca");
    let upstream = TlsUpstream::start(&ca.server(&["localhost"]), Some(&clients)).await;
    let (pool, _metrics) = pool_with(
        upstream.addr,
        settings(),
        tls_options(&ca.trusted_by_pool("localhost"), &SessionStore::default()),
    );
    // With TLS 1.3 the client finishes its handshake before the server has checked the
    // (missing) certificate, so the refusal may arrive on the first request instead.
    let failure = match pool.checkout(0, in_secs(10)).await {
        Err(error) => {
            assert_eq!(error.tls_failure(), Some(TlsFailure::Error), "{error}");
            chain(&error)
        }
        Ok(conn) => {
            let result = conn.send(get("/")).await;
            let error = result.expect_err("the upstream must refuse the request");
            assert_eq!(error.kind, ErrorKind::UpstreamReset, "{error}");
            chain(&error)
        }
    };
    assert!(failure.to_lowercase().contains("certificate"), "{failure}");
    assert_eq!(upstream.resumed(), 0);
}

#[tokio::test]
async fn upstream_requiring_a_client_certificate_accepts_the_pools_certificate() {
    let ca = TestCa::new("test ca");
    let clients = TestCa::new("client ca");
    let upstream = TlsUpstream::start(&ca.server(&["localhost"]), Some(&clients)).await;
    let settings_tls = seawall_pool::TlsSettings {
        client_identity: Some(clients.client("gateway").for_pool()),
        ..ca.trusted_by_pool("localhost")
    };
    let (pool, _metrics) = pool_with(
        upstream.addr,
        PoolSettings { ..settings() },
        tls_options(&settings_tls, &SessionStore::default()),
    );
    for _ in 0..2 {
        let conn = pool.checkout(0, in_secs(10)).await.unwrap();
        let body = conn
            .send(get("/"))
            .await
            .unwrap()
            .into_body()
            .collect()
            .await
            .unwrap()
            .to_bytes();
        assert_eq!(body, Bytes::from_static(b"hello"));
    }
    assert_eq!(upstream.accepts(), 1);
}

#[test]
fn ca_and_client_identity_load_from_pem_files() {
    let ca = TestCa::new("test ca");
    let client = ca.client("gateway");
    let dir = std::env::temp_dir().join(format!("seawall-pool-tls-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let write = |name: &str, text: &str| {
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        path
    };
    let settings = seawall_pool::TlsSettings {
        roots: seawall_pool::TlsRoots::Pem(seawall_pool::PemSource::File(write(
            "ca.pem",
            &ca.pem(),
        ))),
        client_identity: Some(seawall_pool::ClientIdentity {
            cert_chain: seawall_pool::PemSource::File(write("client.pem", &client.cert_pem)),
            key: seawall_pool::PemSource::File(write("client.key", &client.key_pem)),
        }),
        ..seawall_pool::TlsSettings::default()
    };
    let built = seawall_pool::UpstreamTls::new(&settings, &SessionStore::default());
    std::fs::remove_dir_all(&dir).unwrap();
    let tls = built.unwrap();
    assert!(tls.client_config().client_auth_cert_resolver.has_certs());
}
