//! HTTP/2 upstreams: concurrent requests share a few multiplexed connections, a new one is
//! opened only when the open ones are at their stream limit (the peer's, once learned),
//! keep-alive PINGs find a dead connection, and the life limits and gauges keep their
//! HTTP/1.1 meaning (a stream on an existing connection counts as reused).

mod support;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use seawall_core::ErrorKind;
use seawall_pool::{
    CloseReason, Http2Settings, Pool, PoolMetrics, PoolOptions, PoolSettings, Protocol,
};
use support::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::time::Instant;

/// An h2c (prior knowledge) upstream advertising `max_streams`. Paths: `/` answers at once,
/// `/slow` after 300 ms. Counts accepted connections, the most requests seen at once, and
/// the most seen at once on one connection.
struct H2Upstream {
    addr: SocketAddr,
    accepts: Arc<AtomicUsize>,
    peak: Arc<AtomicUsize>,
    peak_per_connection: Arc<AtomicUsize>,
}

/// Counts one request in flight in `active`, and its high-water mark in `peak`.
struct InFlight(Arc<AtomicUsize>);

impl InFlight {
    fn enter(active: &Arc<AtomicUsize>, peak: &AtomicUsize) -> Self {
        let now = active.fetch_add(1, Ordering::SeqCst) + 1;
        peak.fetch_max(now, Ordering::SeqCst);
        Self(Arc::clone(active))
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

impl H2Upstream {
    async fn start(max_streams: u32) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let upstream = Self {
            addr,
            accepts: Arc::new(AtomicUsize::new(0)),
            peak: Arc::new(AtomicUsize::new(0)),
            peak_per_connection: Arc::new(AtomicUsize::new(0)),
        };
        let (accepts, peak, peak_per_connection) = (
            Arc::clone(&upstream.accepts),
            Arc::clone(&upstream.peak),
            Arc::clone(&upstream.peak_per_connection),
        );
        let active = Arc::new(AtomicUsize::new(0));
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                accepts.fetch_add(1, Ordering::SeqCst);
                let on_connection = Arc::new(AtomicUsize::new(0));
                let (active, peak, peak_per_connection) = (
                    Arc::clone(&active),
                    Arc::clone(&peak),
                    Arc::clone(&peak_per_connection),
                );
                let service = service_fn(move |req: http::Request<hyper::body::Incoming>| {
                    let total = InFlight::enter(&active, &peak);
                    let here = InFlight::enter(&on_connection, &peak_per_connection);
                    async move {
                        if req.uri().path() == "/slow" {
                            tokio::time::sleep(Duration::from_millis(300)).await;
                        }
                        drop((total, here));
                        let authority = req.uri().authority().map(|a| a.to_string());
                        let body = Bytes::from(authority.unwrap_or_default());
                        Ok::<_, Infallible>(http::Response::new(Full::new(body)))
                    }
                });
                tokio::spawn(async move {
                    let _ = hyper::server::conn::http2::Builder::new(TokioExecutor::new())
                        .timer(TokioTimer::new())
                        .max_concurrent_streams(max_streams)
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        upstream
    }

    fn accepts(&self) -> usize {
        self.accepts.load(Ordering::SeqCst)
    }

    fn peak(&self) -> usize {
        self.peak.load(Ordering::SeqCst)
    }

    fn peak_per_connection(&self) -> usize {
        self.peak_per_connection.load(Ordering::SeqCst)
    }
}

fn h2_options(max_concurrent_streams: u32) -> PoolOptions {
    PoolOptions {
        protocol: Protocol::Http2,
        http2: Http2Settings {
            max_concurrent_streams,
            ..Http2Settings::default()
        },
        ..PoolOptions::default()
    }
}

fn h2_pool(addr: SocketAddr, settings: PoolSettings, options: PoolOptions) -> (Pool, PoolMetrics) {
    pool_with(addr, settings, options)
}

/// The request an HTTP/2 upstream needs: scheme and authority in the URI.
fn h2_get(addr: SocketAddr, path: &str) -> http::Request<seawall_core::Body> {
    http::Request::get(format!("http://{addr}{path}"))
        .version(http::Version::HTTP_2)
        .body(empty())
        .unwrap()
}

/// Runs `count` requests to `path` at once, each read to the end; returns how many were
/// sent on a reused connection.
async fn burst(pool: &Pool, addr: SocketAddr, path: &'static str, count: usize) -> usize {
    let mut tasks = Vec::new();
    for _ in 0..count {
        let pool = pool.clone();
        tasks.push(tokio::spawn(async move {
            let conn = pool.checkout(0, in_secs(10)).await.unwrap();
            assert!(conn.is_http2());
            let reused = conn.is_reused();
            let response = conn.send(h2_get(addr, path)).await.unwrap();
            assert_eq!(response.status(), 200);
            response.into_body().collect().await.unwrap();
            reused
        }));
    }
    let mut reused = 0;
    for task in tasks {
        reused += usize::from(task.await.unwrap());
    }
    reused
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hundred_concurrent_requests_share_two_connections() {
    let upstream = H2Upstream::start(1000).await;
    let (pool, metrics) = h2_pool(upstream.addr, settings(), h2_options(100));
    let reused = burst(&pool, upstream.addr, "/slow", 200).await;
    let accepts = upstream.accepts();
    // On a loaded machine the first requests may end before the last start; either way no
    // connection carries more than 100 streams, and no more connections open than needed.
    assert!(upstream.peak_per_connection() <= 100);
    assert!(
        accepts >= upstream.peak().div_ceil(100),
        "peak {}",
        upstream.peak()
    );
    assert!(accepts <= 2);
    assert_eq!(metrics.opened.get(), accepts as u64);
    assert_eq!(
        metrics.fresh.get(),
        accepts as u64,
        "one request opened each connection"
    );
    assert_eq!(reused, 200 - accepts);
    assert_eq!(metrics.reused.get(), 200 - accepts as u64);
    // The connections are idle now, kept for the next requests.
    assert_eq!(metrics.in_use.get(), 0);
    assert_eq!(metrics.idle.get(), accepts as i64);
    let snapshot = pool.snapshot()[0];
    let counts = (
        snapshot.idle,
        snapshot.in_use,
        snapshot.open,
        snapshot.streams,
    );
    assert_eq!(counts, (accepts, 0, accepts, 0));
    // Sequential requests stay on one of them.
    for _ in 0..5 {
        assert!(roundtrip_h2(&pool, upstream.addr, "/").await);
    }
    assert_eq!(upstream.accepts(), accepts);
    let closed: u64 = CloseReason::ALL
        .iter()
        .map(|r| metrics.closed.get(*r).get())
        .sum();
    assert_eq!(closed, 0);
}

async fn roundtrip_h2(pool: &Pool, addr: SocketAddr, path: &str) -> bool {
    let conn = pool.checkout(0, in_secs(10)).await.unwrap();
    let reused = conn.is_reused();
    let response = conn.send(h2_get(addr, path)).await.unwrap();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(body, addr.to_string(), "the authority travels in the URI");
    reused
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_peers_lower_stream_limit_is_learned_and_respected() {
    let upstream = H2Upstream::start(10).await;
    let (pool, metrics) = h2_pool(upstream.addr, settings(), h2_options(100));
    // Two round trips: by the second, the peer's SETTINGS have been applied.
    roundtrip_h2(&pool, upstream.addr, "/").await;
    roundtrip_h2(&pool, upstream.addr, "/").await;
    burst(&pool, upstream.addr, "/slow", 30).await;
    assert!(
        upstream.peak_per_connection() <= 10,
        "{}",
        upstream.peak_per_connection()
    );
    // Normally 3; fewer only if the machine was too slow for the burst to overlap.
    let accepts = upstream.accepts();
    assert!(
        accepts >= upstream.peak().div_ceil(10) && accepts <= 3,
        "{accepts}"
    );
    assert_eq!(metrics.opened.get(), accepts as u64);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn at_the_connection_cap_requests_wait_for_a_stream() {
    let upstream = H2Upstream::start(1000).await;
    let settings = PoolSettings {
        max_connections_per_endpoint: 1,
        ..settings()
    };
    let (pool, metrics) = h2_pool(upstream.addr, settings, h2_options(4));
    let started = Instant::now();
    let reused = burst(&pool, upstream.addr, "/slow", 12).await;
    // 4 streams at a time on the one connection: three rounds of 300 ms.
    assert!(
        started.elapsed() >= Duration::from_millis(850),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(upstream.accepts(), 1);
    assert_eq!(reused, 11);
    assert_eq!(metrics.opened.get(), 1);
    assert_eq!(upstream.peak_per_connection(), 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_requests_retires_a_connection_after_its_streams_end() {
    let upstream = H2Upstream::start(1000).await;
    let options = PoolOptions {
        max_requests_per_connection: Some(3),
        ..h2_options(100)
    };
    let (pool, metrics) = h2_pool(upstream.addr, settings(), options);
    let mut pattern = Vec::new();
    for _ in 0..7 {
        pattern.push(roundtrip_h2(&pool, upstream.addr, "/").await);
    }
    assert_eq!(pattern, [false, true, true, false, true, true, false]);
    eventually(
        Duration::from_secs(5),
        "two retired connections closed",
        || metrics.closed.get(CloseReason::MaxRequests).get() == 2,
    )
    .await;
    assert_eq!(upstream.accepts(), 3);
    assert_eq!(metrics.idle.get(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_connections_are_closed_after_the_idle_timeout_and_on_drain() {
    let upstream = H2Upstream::start(1000).await;
    let settings = PoolSettings {
        idle_timeout: Duration::from_millis(200),
        ..settings()
    };
    let (pool, metrics) = h2_pool(upstream.addr, settings, h2_options(100));
    burst(&pool, upstream.addr, "/", 3).await;
    eventually(Duration::from_secs(5), "closed after idle_timeout", || {
        metrics.closed.get(CloseReason::IdleTimeout).get() == 1
    })
    .await;
    assert_eq!((metrics.idle.get(), metrics.in_use.get()), (0, 0));
    eventually(Duration::from_secs(5), "slot freed", || {
        pool.snapshot()[0].open == 0
    })
    .await;

    // A drain lets a stream in flight finish, then closes the connection.
    let conn = pool.checkout(0, in_secs(10)).await.unwrap();
    let response = conn.send(h2_get(upstream.addr, "/slow"));
    let pending = tokio::spawn(response);
    tokio::time::sleep(Duration::from_millis(50)).await;
    pool.clone().drain(Duration::from_secs(5));
    let response = pending.await.unwrap().unwrap();
    response.into_body().collect().await.unwrap();
    eventually(Duration::from_secs(5), "closed on drain", || {
        metrics.closed.get(CloseReason::Shutdown).get() == 1
    })
    .await;
    let error = pool.checkout(0, in_secs(10)).await.unwrap_err();
    assert_eq!(error.kind, ErrorKind::NoEndpoint);
}

/// A listener that sends the server's HTTP/2 SETTINGS and then never writes again, while
/// still reading: a peer that stopped answering (PINGs included).
async fn stalling_h2_listener() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                // An empty SETTINGS frame: length 0, type 4, no flags, stream 0.
                let _ = stream.write_all(&[0, 0, 0, 4, 0, 0, 0, 0, 0]).await;
                let mut buf = [0u8; 4096];
                while matches!(stream.read(&mut buf).await, Ok(n) if n > 0) {}
            });
        }
    });
    addr
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_whose_peer_stops_answering_pings_is_closed() {
    let addr = stalling_h2_listener().await;
    let options = PoolOptions {
        http2: Http2Settings {
            keep_alive_interval: Some(Duration::from_millis(100)),
            keep_alive_timeout: Duration::from_millis(200),
            ..Http2Settings::default()
        },
        ..h2_options(100)
    };
    let (pool, metrics) = h2_pool(addr, settings(), options);
    let started = Instant::now();
    let conn = pool.checkout(0, in_secs(10)).await.unwrap();
    let error = conn.send(h2_get(addr, "/")).await.unwrap_err();
    let elapsed = started.elapsed();
    assert_eq!(error.kind, ErrorKind::UpstreamReset, "{}", chain(&error));
    // A PING after 100 ms without a frame, then 200 ms for the answer; generous margin.
    assert!(
        elapsed >= Duration::from_millis(250) && elapsed < Duration::from_secs(3),
        "{elapsed:?}"
    );
    eventually(Duration::from_secs(5), "closed as ping_timeout", || {
        metrics.closed.get(CloseReason::PingTimeout).get() == 1
    })
    .await;
    eventually(Duration::from_secs(5), "slot freed", || {
        pool.snapshot()[0].open == 0
    })
    .await;
    assert_eq!((metrics.idle.get(), metrics.in_use.get()), (0, 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_connection_to_a_dead_peer_is_found_by_pings() {
    let addr = stalling_h2_listener().await;
    let options = PoolOptions {
        http2: Http2Settings {
            keep_alive_interval: Some(Duration::from_millis(100)),
            keep_alive_timeout: Duration::from_millis(100),
            ..Http2Settings::default()
        },
        ..h2_options(100)
    };
    let (pool, metrics) = h2_pool(addr, settings(), options);
    // Checked out and given back unsent: the connection stays, idle.
    drop(pool.checkout(0, in_secs(10)).await.unwrap());
    assert_eq!(metrics.idle.get(), 1);
    eventually(
        Duration::from_secs(5),
        "idle connection closed by ping timeout",
        || metrics.closed.get(CloseReason::PingTimeout).get() == 1,
    )
    .await;
    eventually(Duration::from_secs(5), "taken off the list", || {
        metrics.idle.get() == 0
    })
    .await;
    eventually(Duration::from_secs(5), "slot freed", || {
        pool.snapshot()[0].open == 0
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_connect_fails_the_checkouts_that_waited_for_it() {
    // Nothing listens there.
    let addr = {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        listener.local_addr().unwrap()
    };
    let (pool, metrics) = h2_pool(addr, settings(), h2_options(100));
    let mut tasks = Vec::new();
    for _ in 0..20 {
        let pool = pool.clone();
        tasks.push(tokio::spawn(async move {
            pool.checkout(0, in_secs(10)).await.unwrap_err().kind
        }));
    }
    for task in tasks {
        assert_eq!(task.await.unwrap(), ErrorKind::ConnectError);
    }
    assert_eq!(metrics.opened.get(), 0);
    assert_eq!(pool.snapshot()[0].open, 0);
}

/// A pool to a TLS upstream offering `server_alpn`, with `protocol` and `client_alpn`.
async fn tls_pool(
    server_alpn: &[&[u8]],
    protocol: Protocol,
    client_alpn: &[&[u8]],
) -> (support::tls::TlsUpstream, Pool, PoolMetrics) {
    let ca = support::tls::TestCa::new("h2 test CA");
    let upstream =
        support::tls::TlsUpstream::start_with_alpn(&ca.server(&["api.test"]), None, server_alpn)
            .await;
    let mut tls = ca.trusted_by_pool("api.test");
    tls.alpn = client_alpn.iter().map(|p| p.to_vec()).collect();
    let options = PoolOptions {
        tls: Some(support::tls::upstream_tls(
            &tls,
            &seawall_pool::SessionStore::default(),
        )),
        protocol,
        ..PoolOptions::default()
    };
    let (pool, metrics) = pool_with(upstream.addr, settings(), options);
    (upstream, pool, metrics)
}

async fn tls_burst(pool: &Pool, count: usize) -> Vec<bool> {
    let mut tasks = Vec::new();
    for _ in 0..count {
        let pool = pool.clone();
        tasks.push(tokio::spawn(async move {
            let conn = pool.checkout(0, in_secs(10)).await.unwrap();
            let h2 = conn.is_http2();
            let request = http::Request::get("https://api.test/")
                .header(http::header::HOST, "api.test")
                .body(empty())
                .unwrap();
            let request = if h2 {
                let (mut parts, body) = request.into_parts();
                parts.headers.remove(http::header::HOST);
                http::Request::from_parts(parts, body)
            } else {
                let (mut parts, body) = request.into_parts();
                parts.uri = http::Uri::from_static("/");
                http::Request::from_parts(parts, body)
            };
            let response = conn.send(request).await.unwrap();
            let body = response.into_body().collect().await.unwrap().to_bytes();
            assert_eq!(body, "hello");
            h2
        }));
    }
    let mut kinds = Vec::new();
    for task in tasks {
        kinds.push(task.await.unwrap());
    }
    kinds
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auto_speaks_http2_over_tls_when_the_upstream_picks_h2() {
    let (upstream, pool, metrics) =
        tls_pool(&[b"h2", b"http/1.1"], Protocol::Auto, &[b"h2", b"http/1.1"]).await;
    let kinds = tls_burst(&pool, 20).await;
    assert!(kinds.iter().all(|h2| *h2), "{kinds:?}");
    assert_eq!(upstream.accepts(), 1, "the burst shared one connection");
    assert_eq!(metrics.opened.get(), 1);
    assert_eq!(metrics.reused.get(), 19);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auto_speaks_http1_when_the_upstream_picks_http1() {
    let (upstream, pool, metrics) =
        tls_pool(&[b"http/1.1"], Protocol::Auto, &[b"h2", b"http/1.1"]).await;
    let kinds = tls_burst(&pool, 1).await;
    assert_eq!(kinds, [false]);
    // Learned: later checkouts take the HTTP/1 path, one connection per request in flight.
    let kinds = tls_burst(&pool, 4).await;
    assert!(kinds.iter().all(|h2| !*h2), "{kinds:?}");
    assert!(upstream.accepts() >= 1);
    assert_eq!(metrics.in_use.get(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http2_over_tls_offers_h2() {
    let (upstream, pool, _metrics) = tls_pool(&[b"h2"], Protocol::Http2, &[b"h2"]).await;
    let kinds = tls_burst(&pool, 10).await;
    assert!(kinds.iter().all(|h2| *h2), "{kinds:?}");
    assert_eq!(upstream.accepts(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_past_its_lifetime_takes_no_new_stream() {
    let upstream = H2Upstream::start(1000).await;
    let options = PoolOptions {
        max_lifetime: Some(Duration::from_millis(300)),
        ..h2_options(100)
    };
    let (pool, metrics) = h2_pool(upstream.addr, settings(), options);
    // A stream in flight when the lifetime passes is not cut.
    let conn = pool.checkout(0, in_secs(10)).await.unwrap();
    let slow = tokio::spawn(conn.send(h2_get(upstream.addr, "/slow")));
    assert!(
        roundtrip_h2(&pool, upstream.addr, "/").await,
        "shares the connection"
    );
    tokio::time::sleep(Duration::from_millis(350)).await;
    assert!(
        !roundtrip_h2(&pool, upstream.addr, "/").await,
        "past its lifetime: a new connection"
    );
    let response = slow.await.unwrap().unwrap();
    response.into_body().collect().await.unwrap();
    eventually(Duration::from_secs(5), "the old one closed", || {
        metrics.closed.get(CloseReason::Lifetime).get() == 1
    })
    .await;
    assert_eq!(upstream.accepts(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_drain_grace_ending_closes_connections_with_streams_in_flight() {
    let upstream = H2Upstream::start(1000).await;
    let (pool, metrics) = h2_pool(upstream.addr, settings(), h2_options(100));
    let conn = pool.checkout(0, in_secs(10)).await.unwrap();
    let slow = tokio::spawn(conn.send(h2_get(upstream.addr, "/slow")));
    tokio::time::sleep(Duration::from_millis(50)).await;
    let observer = pool.clone();
    pool.drain(Duration::from_millis(50));
    let error = slow.await.unwrap().unwrap_err();
    assert_eq!(error.kind, ErrorKind::UpstreamReset, "{}", chain(&error));
    eventually(Duration::from_secs(5), "closed as shutdown", || {
        metrics.closed.get(CloseReason::Shutdown).get() == 1
    })
    .await;
    eventually(Duration::from_secs(5), "slot freed", || {
        observer.snapshot()[0].open == 0
    })
    .await;
    assert_eq!((metrics.idle.get(), metrics.in_use.get()), (0, 0));
}
