//! The upstream connection pool as seen through the gateway: connections are reused across
//! requests, the idle stack is capped, idle connections are evicted after the pool's
//! idle_timeout, a connection whose response body the client abandoned is never reused, and
//! under steady keep-alive load at least 999 of 1000 requests go out on a reused connection.
//! The sim's own counters are the witness of what happened on the upstream side.

mod support;

use std::time::Duration;

use http_body_util::BodyExt;
use support::*;

const MS: fn(u64) -> Duration = Duration::from_millis;

async fn gateway(pool: &str) -> (seawall_sim::Sim, TestGateway) {
    let sim = sim().await;
    let yaml = config(
        &[],
        &[route("r", "*", "/", "up", "10s", "access_log")],
        &[upstream("up", &[sim.local_addr()], "", pool)],
    );
    let g = start(&yaml).await;
    (sim, g)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hundred_sequential_requests_use_one_upstream_connection() {
    let (sim, g) = gateway("").await;
    // Half on one client connection, half on a new client connection each: the upstream
    // side reuses its connection either way.
    let mut c = Conn::open(g.addr).await;
    for i in 0..100 {
        let r = if i % 2 == 0 {
            c.get("/").await
        } else {
            get(g.addr, "/").await
        };
        assert_eq!(r.status, 200, "request {i}");
    }
    let s = sim.stats();
    assert_eq!(s.requests, 100);
    assert_eq!(s.connections_accepted, 1, "{s:?}");
    let m = metrics_text(g.admin).await;
    assert_eq!(
        metric(
            &m,
            "seawall_upstream_requests_total",
            &[("upstream", "up"), ("reused", "true")]
        ),
        Some(99.0),
        "{m}"
    );
    assert_eq!(
        metric(
            &m,
            "seawall_upstream_requests_total",
            &[("upstream", "up"), ("reused", "false")]
        ),
        Some(1.0)
    );
}

/// Reads the `reused` and `fresh` request counters of upstream `up`.
async fn reuse_counts(admin: std::net::SocketAddr) -> (f64, f64) {
    let m = metrics_text(admin).await;
    let count = |reused| {
        metric(
            &m,
            "seawall_upstream_requests_total",
            &[("upstream", "up"), ("reused", reused)],
        )
        .unwrap_or(0.0)
    };
    (count("true"), count("false"))
}

/// Runs `rounds` requests on each of `clients` keep-alive client connections at once.
async fn keep_alive_load(addr: std::net::SocketAddr, clients: usize, rounds: usize) {
    let mut tasks = Vec::new();
    for _ in 0..clients {
        tasks.push(tokio::spawn(async move {
            let mut c = Conn::open(addr).await;
            for _ in 0..rounds {
                assert_eq!(c.get("/").await.status, 200);
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn steady_keep_alive_load_reuses_at_least_999_of_1000_upstream_connections() {
    // The issue's floor: after warm-up, at most one new upstream connection per 1000
    // requests. Concurrency stays the same across both phases, so a pool that keeps what it
    // opened needs no new connection once warm; the margin covers the short gap between a
    // response reaching the client and its connection being back on the idle stack.
    let (sim, g) = gateway("").await;
    const CLIENTS: usize = 16;
    keep_alive_load(g.addr, CLIENTS, 100).await;
    let (reused_warm, fresh_warm) = reuse_counts(g.admin).await;
    assert_eq!(reused_warm + fresh_warm, (CLIENTS * 100) as f64);

    keep_alive_load(g.addr, CLIENTS, 400).await;
    let (reused, fresh) = reuse_counts(g.admin).await;
    let requests = reused + fresh - reused_warm - fresh_warm;
    let new_connections = fresh - fresh_warm;
    assert_eq!(requests, (CLIENTS * 400) as f64);
    let ratio = (reused - reused_warm) / requests;
    assert!(
        ratio >= 0.999,
        "reuse ratio {ratio:.5} after warm-up: {new_connections} new connections for {requests} requests"
    );
    // The upstream's own count agrees with the gateway's.
    assert_eq!(
        sim.stats().connections_accepted as f64,
        fresh,
        "{:?}",
        sim.stats()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_connections_beyond_max_idle_are_closed() {
    let (sim, g) = gateway("max_idle_per_endpoint: 2").await;
    let mut tasks = Vec::new();
    for _ in 0..10 {
        let addr = g.addr;
        tasks.push(tokio::spawn(async move {
            get(addr, "/delay/200ms").await.status
        }));
    }
    for t in tasks {
        assert_eq!(t.await.unwrap(), 200);
    }
    let s = sim.stats();
    assert!(
        s.connections_accepted >= 3,
        "expected concurrency to open connections: {s:?}"
    );
    assert!(
        eventually(MS(2000), || async { sim.stats().connections_open <= 2 }).await,
        "idle upstream connections above the cap stayed open: {:?}",
        sim.stats()
    );
    // The kept ones are reused.
    let before = sim.stats().connections_accepted;
    assert_eq!(get(g.addr, "/").await.status, 200);
    assert_eq!(sim.stats().connections_accepted, before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_connections_are_evicted_after_the_pool_idle_timeout() {
    let (sim, g) = gateway("idle_timeout: 300ms").await;
    assert_eq!(get(g.addr, "/").await.status, 200);
    assert_eq!(sim.stats().connections_open, 1);
    let t = std::time::Instant::now();
    assert!(
        eventually(MS(3000), || async { sim.stats().connections_open == 0 }).await,
        "idle upstream connection never evicted: {:?}",
        sim.stats()
    );
    assert!(t.elapsed() >= MS(150), "evicted before its idle timeout");
    let m = metrics_text(g.admin).await;
    assert_eq!(
        metric(
            &m,
            "seawall_upstream_connections_closed_total",
            &[("upstream", "up"), ("reason", "idle_timeout")]
        ),
        Some(1.0),
        "{m}"
    );
    // The next request opens a fresh connection.
    assert_eq!(get(g.addr, "/").await.status, 200);
    assert_eq!(sim.stats().connections_accepted, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upstream_connection_of_an_abandoned_response_body_is_not_reused() {
    let (sim, mut g) = gateway("").await;
    {
        let mut c = Conn::open(g.addr).await;
        let resp = c
            .send_streaming(get_req("/drip?bytes=100000&duration=2s"))
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
        let mut body = resp.into_body();
        let first = tokio::time::timeout(MS(3000), body.frame())
            .await
            .expect("a first frame")
            .expect("a frame")
            .expect("data");
        assert!(first.data_ref().is_some_and(|d| !d.is_empty()));
        c.task.abort();
        // Dropping the body and the connection: the client is gone mid-body.
    }
    // The gateway drops the upstream exchange: the sim sees it cancelled and the
    // connection closed.
    assert!(
        eventually(MS(3000), || async {
            let s = sim.stats();
            s.requests_cancelled == 1 && s.connections_open == 0
        })
        .await,
        "upstream exchange not abandoned: {:?}",
        sim.stats()
    );
    let r = get(g.addr, "/").await;
    assert_eq!(r.status, 200);
    assert_eq!(
        sim.stats().connections_accepted,
        2,
        "the broken connection was reused"
    );
    let line = log_line(&mut g.log, MS(2000), |v| v["path"] == "/")
        .await
        .expect("log line for the follow-up request");
    assert_eq!(line["reused"], false, "{line}");
    let m = metrics_text(g.admin).await;
    assert_eq!(
        metric(
            &m,
            "seawall_upstream_connections_closed_total",
            &[("upstream", "up"), ("reason", "body_incomplete")]
        ),
        Some(1.0),
        "{m}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bodiless_responses_head_204_304_keep_the_upstream_connection_reusable() {
    let (sim, mut g) = gateway("").await;
    let mut c = Conn::open(g.addr).await;
    for i in 0..10 {
        let r = c
            .send(
                req(http::Method::HEAD, "/bytes/1000")
                    .body(Default::default())
                    .unwrap(),
            )
            .await
            .unwrap();
        assert_eq!(r.status, 200, "HEAD {i}");
        assert!(r.body.is_empty());
        assert_eq!(c.get("/status/204").await.status, 204);
        assert_eq!(c.get("/status/304").await.status, 304);
    }
    assert_eq!(sim.stats().connections_accepted, 1, "{:?}", sim.stats());
    for _ in 0..30 {
        let line = log_line(&mut g.log, MS(2000), |_| true)
            .await
            .expect("log line");
        assert!(line["error"].is_null(), "{line}");
    }
}
