//! Upstream-side faults (`upstreams[].faults`) through a real gateway and real sims: each
//! is injected inside a try, so the upstream policies see it as the upstream failing. A
//! 503 "from the upstream" opens the breaker (`/breakers`, metrics); `first: 2` on a route
//! with 3 attempts answers 200 on the third try; a rule on one endpoint gets it ejected
//! (`/upstreams`); an injected reset is answered from the stale cache; a delay longer than
//! `response_header` trips that timeout, and one on a single endpoint makes hedging answer
//! from the other; a black hole waits for the deadline; a refused
//! connection is `connect_error`; a seeded percentage of tries lands inside binomial
//! bounds; the debug trace names the rule. The upstream never sees a faulted try.

mod support;

use std::{
    net::SocketAddr,
    time::{Duration, Instant},
};

use bytes::Bytes;
use http_body_util::Full;
use support::*;

const MS: fn(u64) -> Duration = Duration::from_millis;

/// One route `r` (with `route_extra` keys) to upstream `up` (with `upstream_extra` keys).
fn yaml(
    endpoints: &[SocketAddr],
    upstream_extra: &str,
    route_extra: &str,
    timeout: &str,
) -> String {
    let eps: Vec<String> = endpoints.iter().map(|e| format!("\"{e}\"")).collect();
    let r = route("r", "*", "/", "up", timeout, "access_log");
    let r = if route_extra.is_empty() {
        r
    } else {
        format!("{}, {route_extra}}}", r.trim_end_matches('}'))
    };
    config(
        &[],
        &[r],
        &[format!(
            "{{name: up, endpoints: [{}], balancer: round_robin, {upstream_extra}}}",
            eps.join(", ")
        )],
    )
}

async fn injected(g: &TestGateway, fault: &str, action: &str) -> f64 {
    let text = metrics_text(g.admin).await;
    let labels = [
        ("scope", "upstream"),
        ("target", "up"),
        ("fault", fault),
        ("action", action),
    ];
    metric(&text, "seawall_faults_injected_total", &labels).unwrap_or(0.0)
}

async fn admin_json(g: &TestGateway, path: &str) -> serde_json::Value {
    let r = admin_get(g.admin, path).await;
    assert_eq!(r.status, 200, "{path}");
    serde_json::from_slice(&r.body).expect("json")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upstream_side_503s_open_the_breaker() {
    let sim = sim().await;
    let breaker =
        "breaker: {window: 1s, buckets: 10, min_calls: 5, failure_ratio: 0.5, open_duration: 5s}";
    let g = start(&yaml(
        &[sim.local_addr()],
        &format!("{breaker}, faults: [{{name: down, abort: {{status: 503}}}}]"),
        "",
        "5s",
    ))
    .await;
    for i in 0..5 {
        let r = get(g.addr, "/").await;
        assert_eq!(r.status, 503, "try {i} gets the upstream's 503");
        assert_eq!(
            r.error(),
            None,
            "an answer from the upstream, not a gateway error"
        );
        assert_eq!(r.header("seawall-fault"), Some("down"));
    }
    let r = get(g.addr, "/").await;
    assert_eq!(r.status, 503);
    assert_eq!(r.error(), Some("circuit_open"), "the breaker opened");
    assert_eq!(sim.stats().requests, 0, "the upstream saw nothing");

    let b = &admin_json(&g, "/breakers").await["breakers"][0];
    assert_eq!(b["state"], "open", "{b}");
    assert_eq!(b["counters"]["failures"], 5);
    let m = metrics_text(g.admin).await;
    assert_eq!(
        metric(&m, "seawall_breaker_state", &[("upstream", "up")]),
        Some(1.0)
    );
    assert_eq!(injected(&g, "down", "abort").await, 5.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn first_two_on_a_route_with_three_attempts_answers_200_on_the_third_try() {
    let sim = sim().await;
    let mut g = start(&yaml(
        &[sim.local_addr()],
        "faults: [{name: flaky, first: 2, abort: {status: 503}}]",
        "retry: {max_attempts: 3, retry_on: [\"503\"], backoff: {base: 10ms, max: 20ms}}",
        "5s",
    ))
    .await;
    let r = get(g.addr, "/echo").await;
    assert_eq!(r.status, 200, "{}", r.text());
    r.echo();
    assert_eq!(
        sim.stats().requests,
        1,
        "only the third try reached the upstream"
    );
    assert_eq!(injected(&g, "flaky", "abort").await, 2.0);
    let m = metrics_text(g.admin).await;
    let attempted = [("route", "r"), ("outcome", "attempted")];
    assert_eq!(metric(&m, "seawall_retries_total", &attempted), Some(2.0));
    let line = log_line(&mut g.log, MS(2000), |v| v["status"] == 200).await;
    let line = line.expect("an access log line");
    assert_eq!(line["fault"], "flaky", "{line}");
    assert!(
        line["policy"]
            .as_str()
            .is_some_and(|p| p.contains("retries=2")),
        "{line}"
    );
    // Spent: the next request goes straight through.
    assert_eq!(get(g.addr, "/echo").await.status, 200);
    assert_eq!(sim.stats().requests, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fault_on_one_endpoint_gets_it_ejected_by_outlier_detection() {
    let (bad, good) = (sim().await, sim().await);
    let outlier =
        "outlier: {consecutive_failures: 3, base_ejection_time: 10s, max_ejection_time: 10s}";
    let g = start(&yaml(
        &[bad.local_addr(), good.local_addr()],
        &format!(
            "{outlier}, faults: [{{name: sick, endpoint: \"{}\", abort: {{status: 503}}}}]",
            bad.local_addr()
        ),
        "",
        "5s",
    ))
    .await;
    let mut failures = 0;
    for _ in 0..30 {
        if get(g.addr, "/").await.status == 503 {
            failures += 1;
        }
    }
    assert_eq!(failures, 3, "ejected after its third failure in a row");
    assert_eq!(bad.stats().requests, 0, "the faulted endpoint saw nothing");
    assert_eq!(good.stats().requests, 27);
    let v = admin_json(&g, "/upstreams").await;
    let endpoints = &v["upstreams"][0]["endpoints"];
    assert_eq!(endpoints[0]["state"], "ejected", "{v}");
    assert_eq!(endpoints[1]["state"], "active", "{v}");
    let m = metrics_text(g.admin).await;
    assert_eq!(
        metric(&m, "seawall_endpoints_ejected", &[("upstream", "up")]),
        Some(1.0)
    );
    assert_eq!(injected(&g, "sick", "abort").await, 3.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_injected_reset_is_answered_from_the_stale_cache() {
    let sim = sim().await;
    let g = start(&yaml(
        &[sim.local_addr()],
        "faults: [{name: gone, match: {headers: {x-drill: down}}, abort: {upstream_reset: true}}]",
        "fallback: {stale_cache: {}}",
        "5s",
    ))
    .await;
    let fresh = get(g.addr, "/bytes/300").await;
    assert_eq!(fresh.status, 200);
    let drill = req(http::Method::GET, "/bytes/300")
        .header("x-drill", "down")
        .body(Full::<Bytes>::default())
        .unwrap();
    let stale = send(g.addr, drill).await.unwrap();
    assert_eq!(stale.status, 200, "{:?}", stale.headers);
    assert_eq!(stale.body, fresh.body);
    assert_eq!(stale.header("cache-status"), Some("seawall; fwd=stale"));
    assert_eq!(stale.header("seawall-degraded"), Some("upstream_reset"));
    assert_eq!(stale.header("seawall-fault"), Some("gone"));
    assert_eq!(sim.stats().requests, 1);
    let m = metrics_text(g.admin).await;
    let labels = [("route", "r"), ("kind", "stale_cache")];
    assert_eq!(metric(&m, "seawall_fallbacks_total", &labels), Some(1.0));
    assert_eq!(injected(&g, "gone", "upstream_reset").await, 1.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delay_longer_than_response_header_trips_that_timeout() {
    let sim = sim().await;
    let g = start(&yaml(
        &[sim.local_addr()],
        "timeouts: {response_header: 200ms}, faults: [{name: slow, delay: {fixed: 3s}}]",
        "",
        "5s",
    ))
    .await;
    let started = Instant::now();
    let r = get(g.addr, "/").await;
    assert_between(
        "response_header timeout",
        started.elapsed(),
        MS(190),
        MS(1500),
    );
    assert_eq!(r.status, 504);
    assert_eq!(r.error(), Some("response_header_timeout"));
    assert_eq!(r.header("seawall-fault"), Some("slow"));
    assert_eq!(sim.stats().requests, 0);
    assert_eq!(injected(&g, "slow", "delay").await, 1.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shorter_delay_then_forwards_to_the_upstream() {
    let sim = sim().await;
    let g = start(&yaml(
        &[sim.local_addr()],
        "timeouts: {response_header: 2s}, faults: [{name: slow, delay: {fixed: 300ms}}]",
        "",
        "5s",
    ))
    .await;
    let started = Instant::now();
    let r = get(g.addr, "/echo").await;
    assert_between("delayed try", started.elapsed(), MS(290), MS(2000));
    assert_eq!(r.status, 200);
    r.echo();
    assert_eq!(sim.stats().requests, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_black_hole_waits_for_the_per_try_timeout_and_the_retry_succeeds() {
    let sim = sim().await;
    let g = start(&yaml(
        &[sim.local_addr()],
        "faults: [{name: hole, first: 1, abort: {blackhole: true}}]",
        "retry: {max_attempts: 2, per_try_timeout: 300ms, retry_on: [per_try_timeout], backoff: {base: 10ms, max: 20ms}}",
        "5s",
    ))
    .await;
    let started = Instant::now();
    let r = get(g.addr, "/echo").await;
    assert_between(
        "black hole, then a retry",
        started.elapsed(),
        MS(290),
        MS(2000),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(sim.stats().requests, 1);
    assert_eq!(injected(&g, "hole", "blackhole").await, 1.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_black_hole_without_timeouts_ends_at_the_deadline() {
    let sim = sim().await;
    let g = start(&yaml(
        &[sim.local_addr()],
        "faults: [{name: hole, abort: {blackhole: true}}]",
        "",
        "400ms",
    ))
    .await;
    let started = Instant::now();
    let r = get(g.addr, "/").await;
    assert_between("deadline", started.elapsed(), MS(390), MS(2000));
    assert_eq!(r.status, 504);
    assert_eq!(r.error(), Some("deadline_exceeded"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connect_error_is_classified_as_a_refused_connection() {
    let sim = sim().await;
    let g = start(&yaml(
        &[sim.local_addr()],
        "faults: [{name: refused, abort: {connect_error: true}}]",
        "",
        "5s",
    ))
    .await;
    let r = get(g.addr, "/").await;
    assert_eq!(r.status, 502);
    assert_eq!(r.error(), Some("connect_error"));
    assert_eq!(r.header("seawall-fault"), Some("refused"));
    assert_eq!(sim.stats().requests, 0);
    assert_eq!(injected(&g, "refused", "connect_error").await, 1.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_seeded_percentage_of_tries_lands_inside_binomial_bounds() {
    let sim = sim().await;
    let g = start(&yaml(
        &[sim.local_addr()],
        "faults: [{name: some, percentage: 30, seed: 7, abort: {status: 503}}]",
        "",
        "5s",
    ))
    .await;
    let mut conn = Conn::open(g.addr).await;
    let mut faulted = 0;
    for _ in 0..1000 {
        let r = conn.get("/echo").await;
        if r.status == 503 {
            assert_eq!(r.header("seawall-fault"), Some("some"));
            faulted += 1;
        }
    }
    // Mean 300, standard deviation about 14.5: ±60 is over four of them.
    assert!((240..=360).contains(&faulted), "{faulted} of 1000 faulted");
    assert_eq!(sim.stats().requests, 1000 - faulted);
    assert_eq!(injected(&g, "some", "abort").await, faulted as f64);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delay_on_one_endpoint_makes_hedging_answer_from_the_other() {
    let (slow, fast) = (sim().await, sim().await);
    let g = start(&yaml(
        &[slow.local_addr(), fast.local_addr()],
        &format!(
            "faults: [{{name: lag, endpoint: \"{}\", delay: {{fixed: 2s}}}}]",
            slow.local_addr()
        ),
        "hedge: {delay: 100ms}",
        "5s",
    ))
    .await;
    // Round robin: the first request's first copy goes to the delayed endpoint.
    let started = Instant::now();
    let r = get(g.addr, "/echo").await;
    assert_between("hedged", started.elapsed(), MS(90), MS(1500));
    assert_eq!(r.status, 200);
    assert_eq!(fast.stats().requests, 1, "the hedge answered");
    assert_eq!(slow.stats().requests, 0, "the delayed copy was dropped");
    let m = metrics_text(g.admin).await;
    let won = [("route", "r"), ("outcome", "won")];
    assert_eq!(metric(&m, "seawall_hedges_total", &won), Some(1.0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_debug_trace_names_the_upstream_fault() {
    // The debug token's variable: cargo sets CARGO_PKG_NAME for every test binary.
    let token = std::env::var("CARGO_PKG_NAME").unwrap();
    let sim = sim().await;
    let text = config_with(
        "debug: {token_env: CARGO_PKG_NAME}",
        &[],
        &[route("r", "*", "/", "up", "5s", "debug")],
        &[format!(
            "{{name: up, endpoints: [\"{}\"], faults: [{{name: down, abort: {{status: 503}}}}]}}",
            sim.local_addr()
        )],
    );
    let g = start(&text).await;
    let probe = req(http::Method::GET, "/")
        .header("seawall-debug", &token)
        .body(Full::<Bytes>::default())
        .unwrap();
    let r = send(g.addr, probe).await.unwrap();
    assert_eq!(r.status, 503);
    let trace = r.header("seawall-debug-trace").unwrap_or_default();
    assert!(
        trace.contains("upstream_fault") && trace.contains("fault=down;endpoint=0"),
        "{trace}"
    );
}
