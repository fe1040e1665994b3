//! A route's fallback upstream through the real gateway: when the route's upstream cannot
//! answer (connection refused, breaker open, bulkhead shed), the request goes once to the
//! standby upstream, whose answer is marked `seawall-degraded` and counted as
//! `seawall_fallbacks_total{kind="upstream"}`; a kept POST body arrives there whole; when
//! the standby fails too, the static answer covers the original failure; and the stale
//! cache honours `stale_if_error` past `max_age`.

mod support;

use std::{net::SocketAddr, time::Duration};

use bytes::Bytes;
use http::Method;
use http_body_util::Full;
use support::*;

const MS: fn(u64) -> Duration = Duration::from_millis;

async fn dead_endpoint() -> SocketAddr {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    l.local_addr().unwrap()
}

/// Route `r` → upstream `primary` (`primary_extra` added), with `fallback: {fallback}`;
/// upstream `standby` at `standby`.
fn yaml(primary: SocketAddr, primary_extra: &str, standby: SocketAddr, fallback: &str) -> String {
    let r = route("r", "*", "/", "primary", "5s", "access_log, debug");
    let r = format!("{}, fallback: {fallback}}}", r.trim_end_matches('}'));
    config_with(
        "debug: {token_env: CARGO_PKG_NAME}",
        &[],
        &[r],
        &[
            format!("{{name: primary, endpoints: [\"{primary}\"]{primary_extra}}}"),
            format!("{{name: standby, endpoints: [\"{standby}\"]}}"),
        ],
    )
}

fn fallbacks(m: &str, kind: &str, reason: &str) -> f64 {
    metric(
        m,
        "seawall_fallbacks_total",
        &[("route", "r"), ("kind", kind), ("reason", reason)],
    )
    .unwrap_or(0.0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_upstream_is_answered_by_the_standby_marked_degraded() {
    let standby = sim().await;
    let dead = dead_endpoint().await;
    let mut g = start(&yaml(dead, "", standby.local_addr(), "{upstream: standby}")).await;
    let token = env!("CARGO_PKG_NAME");
    let r = send(
        g.addr,
        req(Method::GET, "/echo")
            .header("seawall-debug", token)
            .body(Full::default())
            .unwrap(),
    )
    .await
    .unwrap();
    assert_eq!(r.status, 200);
    assert_eq!(r.echo().path, "/echo", "answered by the standby sim");
    assert_eq!(r.header("seawall-degraded"), Some("connect_error"));
    assert!(r.error().is_none());
    let trace = r.header("seawall-debug-trace").unwrap_or_default();
    assert!(
        trace.contains("fallback;") && trace.contains(";upstream;reason=connect_error"),
        "{trace}"
    );
    assert_eq!(standby.stats().requests, 1);
    let m = metrics_text(g.admin).await;
    assert_eq!(fallbacks(&m, "upstream", "connect_error"), 1.0, "{m}");
    let line = log_line(&mut g.log, MS(2000), |v| v["path"] == "/echo")
        .await
        .expect("access log line");
    assert_eq!(line["policy"], "fallback=upstream", "{line}");
    assert_eq!(line["status"], 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_post_body_reaches_the_standby_whole_when_the_primary_never_got_it() {
    let standby = sim().await;
    let dead = dead_endpoint().await;
    let g = start(&yaml(dead, "", standby.local_addr(), "{upstream: standby}")).await;
    let body = Bytes::from(vec![b'x'; 10_000]);
    let r = send(
        g.addr,
        req(Method::POST, "/echo").body(Full::new(body)).unwrap(),
    )
    .await
    .unwrap();
    assert_eq!(r.status, 200);
    let echo = r.echo();
    assert_eq!((echo.method.as_str(), echo.body_bytes), ("POST", 10_000));
    assert_eq!(r.header("seawall-degraded"), Some("connect_error"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_open_breaker_and_a_shed_request_go_to_the_standby() {
    let primary = sim().await;
    let standby = sim().await;
    let breaker = ", breaker: {window: 1s, min_calls: 3, open_duration: 30s}";
    let g = start(&yaml(
        primary.local_addr(),
        breaker,
        standby.local_addr(),
        "{upstream: standby}",
    ))
    .await;
    for _ in 0..3 {
        let r = get(g.addr, "/status/500").await;
        assert_eq!(r.status, 500, "an upstream's own 500 is its answer");
        assert!(r.header("seawall-degraded").is_none());
    }
    let r = get(g.addr, "/").await;
    assert_eq!(r.status, 200);
    assert_eq!(r.header("seawall-degraded"), Some("circuit_open"));
    assert_eq!(primary.stats().requests, 3);
    assert_eq!(standby.stats().requests, 1);

    // A bulkhead with no room sheds at once: the standby answers.
    let primary = sim().await;
    let g2 = start(&yaml(
        primary.local_addr(),
        ", concurrency: {max_concurrent: 1, max_pending: 0}",
        standby.local_addr(),
        "{upstream: standby}",
    ))
    .await;
    let slow = tokio::spawn(get(g2.addr, "/delay/1s"));
    tokio::time::sleep(MS(200)).await;
    let r = get(g2.addr, "/").await;
    assert_eq!(r.status, 200);
    assert_eq!(r.header("seawall-degraded"), Some("overloaded"));
    assert_eq!(slow.await.unwrap().status, 200);
    let m = metrics_text(g2.admin).await;
    assert_eq!(fallbacks(&m, "upstream", "overloaded"), 1.0, "{m}");
    drop(g);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn when_the_standby_fails_too_the_static_answer_covers_the_original_failure() {
    let dead = dead_endpoint().await;
    let dead_standby = dead_endpoint().await;
    let g = start(&yaml(
        dead,
        "",
        dead_standby,
        "{upstream: standby, static: {status: 503, body: \"later\"}}",
    ))
    .await;
    let r = get(g.addr, "/").await;
    assert_eq!(r.status, 503);
    assert_eq!(r.text(), "later");
    assert_eq!(r.header("seawall-degraded"), Some("connect_error"));
    let m = metrics_text(g.admin).await;
    assert_eq!(fallbacks(&m, "static", "connect_error"), 1.0, "{m}");
    assert_eq!(fallbacks(&m, "upstream", "connect_error"), 0.0, "{m}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stale_entry_is_served_within_stale_if_error_and_not_after() {
    let primary = sim().await;
    let standby = dead_endpoint().await;
    let g = start(&yaml(
        primary.local_addr(),
        "",
        standby,
        "{stale_cache: {max_age: 300ms, stale_if_error: 1500ms}}",
    ))
    .await;
    let started = std::time::Instant::now();
    assert_eq!(get(g.addr, "/bytes/10").await.status, 200);
    primary.shutdown().await;
    tokio::time::sleep(MS(400).saturating_sub(started.elapsed())).await;
    let r = get(g.addr, "/bytes/10").await;
    assert!(
        started.elapsed() < MS(1800),
        "the box was too slow to check in time"
    );
    assert_eq!(r.status, 200, "stale past max_age, within stale_if_error");
    assert_eq!(r.header("cache-status"), Some("seawall; fwd=stale"));
    tokio::time::sleep(MS(2500).saturating_sub(started.elapsed())).await;
    let r = get(g.addr, "/bytes/10").await;
    assert!(r.status >= 500 && r.error().is_some(), "{:?}", r.headers);
}
