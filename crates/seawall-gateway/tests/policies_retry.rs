//! Retries through the real gateway: a GET whose first try hits a dead endpoint succeeds on
//! the other endpoint; a POST is not retried; a full outage with retries on is amplified by
//! at most the budget (ratio plus reserve); a try that cannot finish before the deadline is
//! not started, judged by its backoff and by how long the upstream's tries recently took;
//! `per_try_timeout` bounds each try; a retried response's body is read to its end, so
//! its connection carries the retry; and each retry decision is counted.

mod support;

use std::{net::SocketAddr, sync::atomic::Ordering, time::Duration};

use http::Method;
use http_body_util::Full;
use support::*;

const MS: fn(u64) -> Duration = Duration::from_millis;

/// An address nothing listens on (connections are refused).
async fn dead_endpoint() -> SocketAddr {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    l.local_addr().unwrap()
}

fn yaml(endpoints: &[SocketAddr], upstream_extra: &str, retry: &str, timeout: &str) -> String {
    let eps: Vec<String> = endpoints.iter().map(|e| format!("\"{e}\"")).collect();
    let r = route("r", "*", "/", "up", timeout, "access_log");
    let r = format!("{}, retry: {{{retry}}}}}", r.trim_end_matches('}'));
    config(
        &[],
        &[r],
        &[format!(
            "{{name: up, endpoints: [{}], balancer: round_robin, {upstream_extra}}}",
            eps.join(", ")
        )],
    )
}

fn retries(m: &str, outcome: &str) -> f64 {
    metric(
        m,
        "seawall_retries_total",
        &[("route", "r"), ("outcome", outcome)],
    )
    .unwrap_or(0.0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_get_that_fails_to_connect_succeeds_by_retrying_on_the_other_endpoint() {
    let sim = sim().await;
    let dead = dead_endpoint().await;
    let g = start(&yaml(
        &[dead, sim.local_addr()],
        "timeouts: {}",
        "max_attempts: 2",
        "5s",
    ))
    .await;
    for i in 0..20 {
        let r = get(g.addr, "/").await;
        assert_eq!(r.status, 200, "request {i}: {:?}", r.headers);
    }
    assert_eq!(sim.stats().requests, 20);
    let m = metrics_text(g.admin).await;
    // Round robin: a retry takes a turn too, so how many first tries hit the dead endpoint
    // depends on the interleaving; at least one did, and each was retried.
    let attempted = retries(&m, "attempted");
    assert!((1.0..=20.0).contains(&attempted), "{m}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_retry_the_same_requests_fail() {
    let sim = sim().await;
    let dead = dead_endpoint().await;
    let eps: Vec<String> = [dead, sim.local_addr()]
        .iter()
        .map(|e| format!("\"{e}\""))
        .collect();
    let yaml = config(
        &[],
        &[route("r", "*", "/", "up", "5s", "")],
        &[format!(
            "{{name: up, endpoints: [{}], balancer: round_robin}}",
            eps.join(", ")
        )],
    );
    let g = start(&yaml).await;
    let mut failed = 0;
    for _ in 0..20 {
        let r = get(g.addr, "/").await;
        if r.status == 502 {
            assert_eq!(r.headers["seawall-error"], "connect_error");
            failed += 1;
        }
    }
    assert_eq!(failed, 10);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_post_is_not_retried_unless_the_route_opts_in() {
    let sim = sim().await;
    let dead = dead_endpoint().await;
    let g = start(&yaml(
        &[dead, sim.local_addr()],
        "timeouts: {}",
        "max_attempts: 3",
        "5s",
    ))
    .await;
    let mut failed = 0;
    for _ in 0..10 {
        let req = req(Method::POST, "/").body(Full::default()).unwrap();
        let r = send(g.addr, req).await.unwrap();
        if r.status == 502 {
            failed += 1;
        }
    }
    assert_eq!(
        failed, 5,
        "every POST whose first try failed was answered 502"
    );
    let m = metrics_text(g.admin).await;
    assert_eq!(retries(&m, "non_idempotent"), 5.0);
    assert_eq!(retries(&m, "attempted"), 0.0);

    let opted = yaml(
        &[dead, sim.local_addr()],
        "timeouts: {}",
        "max_attempts: 3, non_idempotent: true",
        "5s",
    );
    let g = start(&opted).await;
    for _ in 0..10 {
        let req = req(Method::POST, "/").body(Full::default()).unwrap();
        assert_eq!(send(g.addr, req).await.unwrap().status, 200);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_outage_is_amplified_by_no_more_than_the_retry_budget() {
    let sim = sim().await;
    let budget = "retry_budget: {ratio: 0.2, min_retries_per_second: 1, ttl: 10s}";
    let retry = "max_attempts: 3, backoff: {base: 1ms, max: 2ms}";
    let g = start(&yaml(&[sim.local_addr()], budget, retry, "5s")).await;
    let clients = 100;
    for _ in 0..clients {
        assert_eq!(get(g.addr, "/status/503").await.status, 503);
    }
    let upstream = sim.stats().requests as f64;
    // ratio × requests + min_retries_per_second × ttl = 0.2 × 100 + 1 × 10 = 30 retries.
    let bound = clients as f64 * 1.2 + 10.0;
    assert!(
        upstream <= bound,
        "{upstream} upstream requests for {clients} client requests"
    );
    assert!(
        upstream >= 125.0,
        "the budget allowed ~30 retries, got {upstream}"
    );
    let m = metrics_text(g.admin).await;
    assert!(retries(&m, "budget_exhausted") >= 60.0, "{m}");
    let up = admin_get(g.admin, "/upstreams").await;
    let v: serde_json::Value = serde_json::from_slice(&up.body).unwrap();
    assert!(v["upstreams"][0]["retry_budget"]["refused_total"].as_u64() > Some(0));
}

const UNAVAILABLE_RETRY_AFTER_1S: &[u8] =
    b"HTTP/1.1 503 Service Unavailable\r\nretry-after: 1\r\ncontent-length: 0\r\n\r\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retry_that_could_not_finish_before_the_deadline_is_not_started() {
    let (up, seen) = raw_server(MS(0), UNAVAILABLE_RETRY_AFTER_1S).await;
    // The upstream asks for 1 s; the route deadline is 500 ms: no retry can finish in time.
    let retry = "max_attempts: 3, retry_on: [\"503\"]";
    let g = start(&yaml(&[up], "timeouts: {}", retry, "500ms")).await;
    let t = std::time::Instant::now();
    let r = get(g.addr, "/").await;
    assert_eq!(r.status, 503);
    assert!(t.elapsed() < MS(300), "answered at once: {:?}", t.elapsed());
    assert_eq!(seen.load(Ordering::Relaxed), 1);
    let m = metrics_text(g.admin).await;
    assert_eq!(retries(&m, "deadline_too_close"), 1.0, "{m}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retry_after_on_a_503_is_honoured_as_the_backoff() {
    let (up, seen) = raw_server(MS(0), UNAVAILABLE_RETRY_AFTER_1S).await;
    let retry = "max_attempts: 2, retry_on: [\"503\"]";
    let g = start(&yaml(&[up], "timeouts: {}", retry, "5s")).await;
    let t = std::time::Instant::now();
    assert_eq!(get(g.addr, "/").await.status, 503);
    assert_between(
        "two tries with Retry-After: 1",
        t.elapsed(),
        MS(950),
        MS(3000),
    );
    assert_eq!(seen.load(Ordering::Relaxed), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn per_try_timeout_cuts_a_slow_try_and_the_retry_goes_to_the_other_endpoint() {
    let fast = sim().await;
    let (slow, _) = raw_server(MS(2000), OK).await;
    let retry = "max_attempts: 2, per_try_timeout: 200ms, retry_on: [per_try_timeout]";
    let g = start(&yaml(
        &[slow, fast.local_addr()],
        "timeouts: {}",
        retry,
        "5s",
    ))
    .await;
    for _ in 0..4 {
        let t = std::time::Instant::now();
        let r = get(g.addr, "/").await;
        assert_eq!(r.status, 200);
        assert!(t.elapsed() < MS(1500), "{:?}", t.elapsed());
    }
    let m = metrics_text(g.admin).await;
    let attempted = retries(&m, "attempted");
    assert!((1.0..=4.0).contains(&attempted), "{m}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_try_cut_by_per_try_timeout_is_reported_as_per_try_timeout() {
    let sim = sim().await;
    let retry = "max_attempts: 2, per_try_timeout: 200ms";
    let mut g = start(&yaml(&[sim.local_addr()], "timeouts: {}", retry, "5s")).await;
    let t = std::time::Instant::now();
    let r = get(g.addr, "/delay/2s").await;
    assert_eq!(r.status, 504, "{:?}", r.headers);
    assert_eq!(r.error(), Some("per_try_timeout"));
    // Not retried by default (like `response_header_timeout`): one try, cut at 200 ms.
    assert!(t.elapsed() < MS(1500), "{:?}", t.elapsed());
    let line = log_line(&mut g.log, MS(2000), |v| v["status"] == 504).await;
    let line = line.expect("an access log line for the 504");
    assert_eq!(line["error"], "per_try_timeout", "{line}");
    let m = metrics_text(g.admin).await;
    assert_eq!(
        metric(&m, "seawall_errors_total", &[("kind", "per_try_timeout")]),
        Some(1.0),
        "{m}"
    );
    assert_eq!(
        metric(
            &m,
            "seawall_errors_total",
            &[("kind", "response_header_timeout")]
        ),
        None,
        "{m}"
    );
}

const OK: &[u8] = b"HTTP/1.1 200 OK\r\ncontent-length: 3\r\n\r\nok\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_debug_trace_shows_every_try() {
    // The debug token is read from CARGO_PKG_NAME (see tests/debug.rs for why).
    let token = std::env::var("CARGO_PKG_NAME").unwrap();
    let sim = sim().await;
    let dead = dead_endpoint().await;
    let r = route("r", "*", "/", "up", "5s", "debug");
    let r = format!("{}, retry: {{max_attempts: 2}}}}", r.trim_end_matches('}'));
    let yaml = config_with(
        "debug:\n  token_env: CARGO_PKG_NAME\n",
        &[],
        &[r],
        &[format!(
            "{{name: up, endpoints: [\"{dead}\", \"{}\"], balancer: round_robin}}",
            sim.local_addr()
        )],
    );
    let g = start(&yaml).await;
    // Round robin starts at the dead endpoint.
    let req = req(Method::GET, "/")
        .header("seawall-debug", token)
        .body(Full::default())
        .unwrap();
    let r = send(g.addr, req).await.unwrap();
    assert_eq!(r.status, 200);
    let trace = r.headers["seawall-debug-trace"]
        .to_str()
        .unwrap()
        .to_owned();
    let tries: Vec<&str> = trace
        .split(", ")
        .filter(|e| e.starts_with("upstream;"))
        .collect();
    assert_eq!(tries.len(), 2, "{trace}");
    assert!(tries[0].contains(";error;error=connect_error"), "{trace}");
    assert!(tries[1].contains(";ok;"), "{trace}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_try_forwards_its_own_budget_not_the_whole_deadline() {
    let sim = sim().await;
    let retry = "max_attempts: 2, per_try_timeout: 300ms";
    let g = start(&yaml(&[sim.local_addr()], "timeouts: {}", retry, "5s")).await;
    let r = get(g.addr, "/echo").await;
    assert_eq!(r.status, 200);
    let echo: seawall_sim::EchoReport = serde_json::from_slice(&r.body).unwrap();
    let budget: u64 = echo.header("seawall-timeout-ms").unwrap().parse().unwrap();
    assert!((1..=300).contains(&budget), "forwarded budget {budget} ms");
    assert_eq!(echo.header_values("x-forwarded-for").len(), 1);
}

/// Two routes to one sim: `warm.test` (no per-try timeout) teaches the gateway that the
/// upstream needs ~800 ms; `r` cuts its first try at 400 ms, with `timeout` in all.
fn slow_upstream_yaml(sim: SocketAddr, timeout: &str) -> String {
    let warm = route("warm", "warm.test", "/", "up", "5s", "");
    let warm = format!(
        "{}, retry: {{max_attempts: 2}}}}",
        warm.trim_end_matches('}')
    );
    let r = route("r", "*", "/", "up", timeout, "access_log");
    let retry = "max_attempts: 2, per_try_timeout: 400ms, retry_on: [per_try_timeout]";
    let r = format!("{}, retry: {{{retry}}}}}", r.trim_end_matches('}'));
    config(&[], &[warm, r], &[upstream("up", &[sim], "", "")])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retry_is_not_started_when_less_is_left_than_the_upstream_recently_needed() {
    for (timeout, retried) in [("1s", false), ("5s", true)] {
        let sim = sim().await;
        let mut g = start(&slow_upstream_yaml(sim.local_addr(), timeout)).await;
        for _ in 0..3 {
            let warm = http::Request::get("/delay/800ms")
                .header("host", "warm.test")
                .body(Full::default())
                .unwrap();
            assert_eq!(send(g.addr, warm).await.unwrap().status, 200);
        }
        let t = std::time::Instant::now();
        let r = get(g.addr, "/delay/800ms").await;
        let elapsed = t.elapsed();
        assert_eq!(r.status, 504, "timeout {timeout}");
        assert_eq!(r.error(), Some("per_try_timeout"));
        let m = metrics_text(g.admin).await;
        let line = log_line(&mut g.log, MS(2000), |v| v["route"] == "r")
            .await
            .expect("access log line");
        let policy = line["policy"].as_str().unwrap_or_default().to_owned();
        if retried {
            // 5 s: 4.6 s left after the first try, enough for a try like the last ones.
            assert_eq!(retries(&m, "attempted"), 1.0, "{m}");
            assert_eq!(retries(&m, "deadline_too_close"), 0.0, "{m}");
            assert!(elapsed >= MS(800), "two tries: {elapsed:?}");
            assert!(policy.contains("retries=1"), "{line}");
        } else {
            // 1 s: 600 ms left after the first try, and the upstream needed 800 ms.
            assert_eq!(retries(&m, "attempted"), 0.0, "{m}");
            assert_eq!(retries(&m, "deadline_too_close"), 1.0, "{m}");
            assert_between("the first try only", elapsed, MS(390), MS(700));
            assert!(
                policy.contains("retry_skipped=deadline_too_close"),
                "{line}"
            );
        }
        let tries = if retried { 5 } else { 4 };
        assert!(
            eventually(MS(2000), || async { sim.stats().requests == tries }).await,
            "{} upstream requests",
            sim.stats().requests
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retried_response_is_drained_so_its_connection_carries_the_retry() {
    let sim = sim().await;
    let retry = "max_attempts: 2, retry_on: [\"503\"], backoff: {base: 1ms, max: 2ms}";
    let g = start(&yaml(&[sim.local_addr()], "timeouts: {}", retry, "5s")).await;
    for _ in 0..5 {
        assert_eq!(get(g.addr, "/status/503").await.status, 503);
    }
    assert_eq!(sim.stats().requests, 10, "every request was retried once");
    let m = metrics_text(g.admin).await;
    assert_eq!(retries(&m, "attempted"), 5.0, "{m}");
    let up = [("upstream", "up")];
    let closed = |reason: &str| {
        metric(
            &m,
            "seawall_upstream_connections_closed_total",
            &[up[0], ("reason", reason)],
        )
        .unwrap_or(0.0)
    };
    assert_eq!(closed("body_incomplete"), 0.0, "{m}");
    assert_eq!(
        metric(&m, "seawall_upstream_connections_opened_total", &up),
        Some(1.0),
        "{m}"
    );
    assert_eq!(
        metric(
            &m,
            "seawall_upstream_requests_total",
            &[up[0], ("reused", "true")]
        ),
        Some(9.0),
        "{m}"
    );
}
