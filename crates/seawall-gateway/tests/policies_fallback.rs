//! A route's static fallback through the real gateway: served, marked `seawall-degraded`,
//! when the upstream cannot answer (connection refused, breaker open); an answer the
//! upstream did send, even a 5xx, passes through untouched.

mod support;

use std::net::SocketAddr;

use support::*;

const FALLBACK: &str =
    "fallback: {static: {status: 200, body: \"cached catalog\\n\", headers: {x-source: fallback}}}";

fn yaml(endpoint: SocketAddr, upstream_extra: &str) -> String {
    let r = route("r", "*", "/", "up", "5s", "");
    let r = format!("{}, {FALLBACK}}}", r.trim_end_matches('}'));
    config(
        &[],
        &[r],
        &[format!(
            "{{name: up, endpoints: [\"{endpoint}\"], {upstream_extra}}}"
        )],
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_upstream_is_answered_with_the_marked_fallback() {
    let dead = {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        l.local_addr().unwrap()
    };
    let g = start(&yaml(dead, "timeouts: {}")).await;
    let r = get(g.addr, "/").await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body, "cached catalog\n");
    assert_eq!(r.headers["seawall-degraded"], "connect_error");
    assert_eq!(r.headers["x-source"], "fallback");
    assert!(r.headers.get("seawall-error").is_none());
    let m = metrics_text(g.admin).await;
    let labels = [("route", "r"), ("kind", "connect_error")];
    assert_eq!(metric(&m, "seawall_fallbacks_total", &labels), Some(1.0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_open_breaker_is_answered_with_the_fallback_and_upstream_answers_pass_through() {
    let sim = sim().await;
    let breaker = "breaker: {window: 1s, min_calls: 3, open_duration: 30s}";
    let g = start(&yaml(sim.local_addr(), breaker)).await;
    for _ in 0..3 {
        let r = get(g.addr, "/status/500").await;
        assert_eq!(r.status, 500, "the upstream's own 500 is not replaced");
        assert!(r.headers.get("seawall-degraded").is_none());
    }
    let r = get(g.addr, "/").await;
    assert_eq!(r.status, 200);
    assert_eq!(r.headers["seawall-degraded"], "circuit_open");
    assert_eq!(sim.stats().requests, 3);
}
