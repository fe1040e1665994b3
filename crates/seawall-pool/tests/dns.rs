//! The DNS-aware pool against real servers on 127.0.0.2 and 127.0.0.3 (both loopback on
//! Linux), with a resolver whose answers the test sets. Timing assertions are generous:
//! the CI box has 2 noisy cores.

mod support;

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::BodyExt;
use seawall_core::ErrorKind;
use seawall_pool::{
    CloseReason, DnsOptions, DnsPool, HostPort, ManualResolver, PoolMetrics, PoolOptions,
    SessionStore,
};
use support::*;

const WAIT: Duration = Duration::from_secs(5);
const NAME: &str = "api.test";

fn ip(text: &str) -> IpAddr {
    text.parse().unwrap()
}

/// A port free on both 127.0.0.2 and 127.0.0.3, so one name can point at either.
fn port_free_on_both() -> u16 {
    for _ in 0..50 {
        let a = std::net::TcpListener::bind("127.0.0.2:0").unwrap();
        let port = a.local_addr().unwrap().port();
        if std::net::TcpListener::bind(("127.0.0.3", port)).is_ok() {
            return port;
        }
    }
    panic!("no port free on both loopback addresses");
}

fn at(host: &str, port: u16) -> SocketAddr {
    SocketAddr::new(ip(host), port)
}

/// Fast re-resolution for tests: answers are used for 20–100 ms.
fn fast_dns(resolver: &Arc<ManualResolver>) -> DnsOptions {
    DnsOptions {
        min_ttl: Duration::from_millis(20),
        max_ttl: Duration::from_millis(100),
        interval: Duration::from_millis(100),
        resolve_timeout: Duration::from_secs(1),
        drain_grace: Duration::from_secs(5),
        ..DnsOptions::new(Arc::clone(resolver) as Arc<dyn seawall_pool::Resolve>)
    }
}

async fn dns_pool(port: u16, options: PoolOptions, dns: DnsOptions) -> (DnsPool, PoolMetrics) {
    let metrics = PoolMetrics::unregistered();
    let name = HostPort {
        host: NAME.to_owned(),
        port,
    };
    let pool = DnsPool::start(
        "test",
        vec![name],
        settings(),
        metrics.clone(),
        options,
        dns,
    )
    .await;
    (pool, metrics)
}

/// Checkout, send, read the whole body: (address, reused, body).
async fn roundtrip_dns(pool: &DnsPool, path: &str) -> (SocketAddr, bool, Bytes) {
    let conn = pool.checkout(in_secs(10)).await.unwrap();
    let (addr, reused) = (conn.endpoint(), conn.is_reused());
    let response = conn.send(get(path)).await.unwrap();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    (addr, reused, body)
}

#[tokio::test]
async fn every_resolved_address_gets_its_own_sub_pool_and_requests_alternate() {
    let port = port_free_on_both();
    let a = HyperUpstream::start_at(at("127.0.0.2", port)).await;
    let b = HyperUpstream::start_at(at("127.0.0.3", port)).await;
    let resolver = Arc::new(ManualResolver::new());
    resolver.set(
        NAME,
        &[ip("127.0.0.2"), ip("127.0.0.3")],
        Some(Duration::from_secs(60)),
    );
    let (pool, _metrics) = dns_pool(port, PoolOptions::default(), fast_dns(&resolver)).await;
    assert_eq!(pool.addresses(), vec![a.addr, b.addr]);
    let mut seen = Vec::new();
    for _ in 0..4 {
        let (addr, reused, body) = roundtrip_dns(&pool, "/").await;
        assert_eq!(body, Bytes::from_static(b"hello"));
        seen.push((addr, reused));
    }
    assert_ne!(seen[0].0, seen[1].0, "round-robin over addresses: {seen:?}");
    assert_eq!((seen[2].0, seen[3].0), (seen[0].0, seen[1].0), "{seen:?}");
    assert!(seen[2].1 && seen[3].1, "second visits reuse: {seen:?}");
    assert_eq!((a.accepts(), b.accepts()), (1, 1));
    assert_eq!(pool.snapshot().len(), 2);
}

#[tokio::test]
async fn address_removed_from_dns_is_drained_and_traffic_moves_to_the_new_one() {
    let port = port_free_on_both();
    let mut old = RawUpstream::start_at(Script::KeepAlive, at("127.0.0.2", port)).await;
    let new = HyperUpstream::start_at(at("127.0.0.3", port)).await;
    let resolver = Arc::new(ManualResolver::new());
    resolver.set(NAME, &[ip("127.0.0.2")], Some(Duration::from_secs(60)));
    let dns = fast_dns(&resolver);
    let dns_metrics = dns.metrics.clone();
    let (pool, metrics) = dns_pool(port, PoolOptions::default(), dns).await;
    let (addr, _, _) = roundtrip_dns(&pool, "/").await;
    assert_eq!(addr, old.addr);
    assert_eq!(dns_metrics.addresses.get(), 1);

    resolver.set(NAME, &[ip("127.0.0.3")], Some(Duration::from_secs(60)));
    eventually(WAIT, "the new answer is in use", || {
        pool.addresses() == vec![new.addr]
    })
    .await;
    // The idle connection to the removed address is closed at once, not after the grace.
    old.next_eof(Duration::from_secs(2)).await;
    eventually(WAIT, "counted as shutdown", || {
        metrics.closed.get(CloseReason::Shutdown).get() == 1
    })
    .await;
    let (addr, reused, _) = roundtrip_dns(&pool, "/").await;
    assert_eq!((addr, reused), (new.addr, false));
    assert_eq!(
        dns_metrics.changes.get(),
        2,
        "the first answer and the change"
    );
}

#[tokio::test]
async fn request_in_flight_on_a_removed_address_finishes_then_its_connection_closes() {
    let port = port_free_on_both();
    let old = HyperUpstream::start_at(at("127.0.0.2", port)).await;
    let new = HyperUpstream::start_at(at("127.0.0.3", port)).await;
    let resolver = Arc::new(ManualResolver::new());
    resolver.set(NAME, &[ip("127.0.0.2")], Some(Duration::from_secs(60)));
    let (pool, metrics) = dns_pool(port, PoolOptions::default(), fast_dns(&resolver)).await;
    let conn = pool.checkout(in_secs(10)).await.unwrap();
    assert_eq!(conn.endpoint(), old.addr);
    let in_flight = tokio::spawn(conn.send(get("/slow")));

    resolver.set(NAME, &[ip("127.0.0.3")], Some(Duration::from_secs(60)));
    eventually(WAIT, "the new answer is in use", || {
        pool.addresses() == vec![new.addr]
    })
    .await;
    // The response body still holds the connection until it is read: drained while busy.
    let response = in_flight.await.unwrap().unwrap();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(body, Bytes::from_static(b"slow"));
    eventually(WAIT, "closed after its exchange", || {
        metrics.closed.get(CloseReason::Shutdown).get() == 1
    })
    .await;
    let (addr, _, _) = roundtrip_dns(&pool, "/").await;
    assert_eq!(addr, new.addr);
}

#[tokio::test]
async fn connection_still_busy_when_the_drain_grace_ends_is_closed() {
    let port = port_free_on_both();
    let mut old = RawUpstream::start_at(Script::Silent, at("127.0.0.2", port)).await;
    let _new = HyperUpstream::start_at(at("127.0.0.3", port)).await;
    let resolver = Arc::new(ManualResolver::new());
    resolver.set(NAME, &[ip("127.0.0.2")], Some(Duration::from_secs(60)));
    let dns = DnsOptions {
        drain_grace: Duration::from_millis(300),
        ..fast_dns(&resolver)
    };
    let (pool, metrics) = dns_pool(port, PoolOptions::default(), dns).await;
    let conn = pool.checkout(in_secs(10)).await.unwrap();
    let in_flight = tokio::spawn(conn.send(get("/")));
    resolver.set(NAME, &[ip("127.0.0.3")], Some(Duration::from_secs(60)));
    let changed = tokio::time::Instant::now();
    // The silent upstream never answers: only the grace period ends the exchange.
    let result = tokio::time::timeout(WAIT, in_flight)
        .await
        .unwrap()
        .unwrap();
    let error = result.unwrap_err();
    assert_eq!(error.kind, ErrorKind::UpstreamReset, "{error}");
    assert!(
        changed.elapsed() >= Duration::from_millis(250),
        "cut before the grace ended"
    );
    old.next_eof(WAIT).await;
    eventually(WAIT, "counted as shutdown", || {
        metrics.closed.get(CloseReason::Shutdown).get() == 1
    })
    .await;
}

#[tokio::test]
async fn failed_or_empty_lookup_keeps_the_last_good_answer_and_counts_the_failure() {
    let upstream = HyperUpstream::start().await;
    let resolver = Arc::new(ManualResolver::new());
    resolver.set(NAME, &[upstream.addr.ip()], Some(Duration::from_secs(60)));
    let dns = fast_dns(&resolver);
    let dns_metrics = dns.metrics.clone();
    let (pool, _metrics) = dns_pool(upstream.addr.port(), PoolOptions::default(), dns).await;
    resolver.fail(NAME);
    eventually(WAIT, "failures counted", || dns_metrics.failures.get() >= 2).await;
    assert_eq!(pool.addresses(), vec![upstream.addr]);
    let (_, _, body) = roundtrip_dns(&pool, "/").await;
    assert_eq!(body, Bytes::from_static(b"hello"));
    resolver.set(NAME, &[], Some(Duration::from_secs(60)));
    let failures = dns_metrics.failures.get();
    eventually(WAIT, "empty answers counted", || {
        dns_metrics.failures.get() >= failures + 2
    })
    .await;
    assert_eq!(pool.addresses(), vec![upstream.addr]);
    assert_eq!(
        dns_metrics.changes.get(),
        1,
        "never changed after the first answer"
    );
}

#[tokio::test]
async fn connect_failure_falls_through_to_the_next_address() {
    let port = port_free_on_both();
    // Nothing listens on 127.0.0.2: connects there are refused.
    let live = HyperUpstream::start_at(at("127.0.0.3", port)).await;
    let resolver = Arc::new(ManualResolver::new());
    resolver.set(
        NAME,
        &[ip("127.0.0.2"), ip("127.0.0.3")],
        Some(Duration::from_secs(60)),
    );
    let (pool, _metrics) = dns_pool(port, PoolOptions::default(), fast_dns(&resolver)).await;
    assert_eq!(pool.addresses().len(), 2);
    for _ in 0..4 {
        let (addr, _, body) = roundtrip_dns(&pool, "/").await;
        assert_eq!(addr, live.addr);
        assert_eq!(body, Bytes::from_static(b"hello"));
    }
}

#[tokio::test]
async fn name_that_does_not_resolve_yet_fails_with_no_endpoint_until_it_does() {
    let upstream = HyperUpstream::start().await;
    let resolver = Arc::new(ManualResolver::new());
    let (pool, _metrics) = dns_pool(
        upstream.addr.port(),
        PoolOptions::default(),
        fast_dns(&resolver),
    )
    .await;
    let error = pool.checkout(in_secs(10)).await.unwrap_err();
    assert_eq!(error.kind, ErrorKind::NoEndpoint, "{error}");
    resolver.set(NAME, &[upstream.addr.ip()], None);
    eventually(WAIT, "resolved on retry", || !pool.addresses().is_empty()).await;
    roundtrip_dns(&pool, "/").await;
}

#[tokio::test]
async fn re_resolution_follows_the_ttl_within_its_bounds() {
    let upstream = HyperUpstream::start().await;
    let long = Arc::new(ManualResolver::new());
    long.set(NAME, &[upstream.addr.ip()], Some(Duration::from_secs(3600)));
    let short = Arc::new(ManualResolver::new());
    short.set(NAME, &[upstream.addr.ip()], Some(Duration::ZERO));
    // A 1 h TTL is cut to max_ttl (100 ms); a 0 s TTL is raised to min_ttl (400 ms).
    let (_long_pool, _) = dns_pool(
        upstream.addr.port(),
        PoolOptions::default(),
        fast_dns(&long),
    )
    .await;
    let slow = DnsOptions {
        min_ttl: Duration::from_millis(400),
        max_ttl: Duration::from_secs(60),
        ..fast_dns(&short)
    };
    let (_short_pool, _) = dns_pool(upstream.addr.port(), PoolOptions::default(), slow).await;
    tokio::time::sleep(Duration::from_millis(1000)).await;
    assert!(
        long.lookups() >= 4,
        "max_ttl not applied: {}",
        long.lookups()
    );
    assert!(
        short.lookups() <= 5,
        "min_ttl not applied: {}",
        short.lookups()
    );
}

#[tokio::test]
async fn tls_to_a_named_upstream_checks_the_certificate_against_the_name() {
    let ca = support::tls::TestCa::new("test ca");
    let upstream = support::tls::TlsUpstream::start(&ca.server(&[NAME]), None).await;
    let resolver = Arc::new(ManualResolver::new());
    resolver.set(NAME, &[upstream.addr.ip()], None);
    let tls_settings = seawall_pool::TlsSettings {
        server_name: None,
        ..ca.trusted_by_pool("unused")
    };
    let options = PoolOptions {
        tls: Some(support::tls::upstream_tls(
            &tls_settings,
            &SessionStore::default(),
        )),
        ..PoolOptions::default()
    };
    let (pool, _metrics) = dns_pool(upstream.addr.port(), options, fast_dns(&resolver)).await;
    let (_, _, body) = roundtrip_dns(&pool, "/").await;
    assert_eq!(body, Bytes::from_static(b"hello"));
}

#[tokio::test]
async fn dropping_the_last_dns_pool_clone_stops_resolving_and_closes_connections() {
    let mut upstream = RawUpstream::start(Script::KeepAlive).await;
    let resolver = Arc::new(ManualResolver::new());
    resolver.set(NAME, &[upstream.addr.ip()], None);
    let (pool, _metrics) = dns_pool(
        upstream.addr.port(),
        PoolOptions::default(),
        fast_dns(&resolver),
    )
    .await;
    roundtrip_dns(&pool, "/").await;
    drop(pool);
    upstream.next_eof(WAIT).await;
    let lookups = resolver.lookups();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(resolver.lookups(), lookups, "no lookups after the drop");
}
