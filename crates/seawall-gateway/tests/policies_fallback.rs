//! A route's fallbacks through the real gateway. Static: served, marked
//! `seawall-degraded`, when the upstream cannot answer (connection refused, breaker open);
//! an answer the upstream did send, even a 5xx, passes through untouched. Stale cache: the
//! last good GET answer is replayed, marked `Cache-Status: seawall; fwd=stale`, once the
//! upstream is gone (the sim is shut down); never for POST, never past `max_age`, never for
//! a body larger than `max_body_bytes`.

mod support;

use std::{net::SocketAddr, time::Duration};

use bytes::Bytes;
use http::Method;
use http_body_util::Full;

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
    let labels = [
        ("route", "r"),
        ("kind", "static"),
        ("reason", "connect_error"),
    ];
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

/// One route `r` to the sim with `fallback: {fallback}`.
fn stale_yaml(endpoint: SocketAddr, fallback: &str) -> String {
    let r = route("r", "*", "/", "up", "5s", "");
    let r = format!("{}, fallback: {fallback}}}", r.trim_end_matches('}'));
    config(
        &[],
        &[r],
        &[format!("{{name: up, endpoints: [\"{endpoint}\"]}}")],
    )
}

fn assert_stale_replay(r: &Resp) {
    assert_eq!(r.header("cache-status"), Some("seawall; fwd=stale"));
    let reason = r.header("seawall-degraded").expect("marked degraded");
    assert!(
        ["connect_error", "upstream_reset"].contains(&reason),
        "degraded because the upstream is gone, got {reason}"
    );
    assert!(r.error().is_none());
}

fn assert_upstream_error(r: &Resp) {
    assert!(r.status >= 500, "an error, got {}", r.status);
    assert!(r.error().is_some(), "the gateway's own error answer");
    assert!(r.header("cache-status").is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_get_whose_upstream_is_gone_is_answered_with_its_last_good_answer_marked_stale() {
    let sim = sim().await;
    let g = start(&stale_yaml(sim.local_addr(), "{stale_cache: {}}")).await;
    let fresh = get(g.addr, "/bytes/300").await;
    assert_eq!(fresh.status, 200);
    assert_eq!(fresh.body.len(), 300);
    assert!(
        fresh.header("cache-status").is_none(),
        "a live answer is not marked"
    );
    sim.shutdown().await;

    let stale = get(g.addr, "/bytes/300").await;
    assert_eq!(stale.status, 200);
    assert_eq!(stale.body, fresh.body);
    assert_stale_replay(&stale);
    let m = metrics_text(g.admin).await;
    let labels = [("route", "r"), ("kind", "stale_cache")];
    assert_eq!(metric(&m, "seawall_fallbacks_total", &labels), Some(1.0));

    // Another query is another request: nothing cached for it, no static answer.
    assert_upstream_error(&get(g.addr, "/bytes/300?x=1").await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_route_status_override_replaces_the_replayed_answers_status() {
    let sim = sim().await;
    let g = start(&stale_yaml(
        sim.local_addr(),
        "{stale_cache: {}, status: 206}",
    ))
    .await;
    assert_eq!(get(g.addr, "/").await.status, 200);
    sim.shutdown().await;
    let stale = get(g.addr, "/").await;
    assert_eq!(stale.status, 206);
    assert!(!stale.body.is_empty());
    assert_stale_replay(&stale);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_entry_older_than_max_age_is_not_served_and_the_static_answer_covers_instead() {
    let sim = sim().await;
    let fallback = "{stale_cache: {max_age: 200ms}, static: {status: 503, body: \"static\"}}";
    let g = start(&stale_yaml(sim.local_addr(), fallback)).await;
    assert_eq!(get(g.addr, "/").await.status, 200);
    sim.shutdown().await;
    tokio::time::sleep(Duration::from_millis(800)).await;
    let r = get(g.addr, "/").await;
    assert_eq!(r.status, 503);
    assert_eq!(r.body, "static");
    assert!(r.header("cache-status").is_none());
    assert!(r.header("seawall-degraded").is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_post_is_never_answered_from_the_cache() {
    let sim = sim().await;
    let g = start(&stale_yaml(sim.local_addr(), "{stale_cache: {}}")).await;
    let post = || {
        req(Method::POST, "/")
            .body(Full::new(Bytes::from_static(b"x")))
            .unwrap()
    };
    assert_eq!(send(g.addr, post()).await.unwrap().status, 200);
    sim.shutdown().await;
    assert_upstream_error(&send(g.addr, post()).await.unwrap());
    // The POST's answer was not stored under the GET either.
    assert_upstream_error(&get(g.addr, "/").await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_larger_than_max_body_bytes_is_not_cached() {
    let sim = sim().await;
    let fallback = "{stale_cache: {max_body_bytes: 100}}";
    let g = start(&stale_yaml(sim.local_addr(), fallback)).await;
    assert_eq!(
        get(g.addr, "/bytes/5000").await.body.len(),
        5000,
        "still sent whole"
    );
    assert_eq!(get(g.addr, "/bytes/50").await.status, 200);
    sim.shutdown().await;
    assert_upstream_error(&get(g.addr, "/bytes/5000").await);
    let small = get(g.addr, "/bytes/50").await;
    assert_eq!(small.body.len(), 50);
    assert_stale_replay(&small);
}
