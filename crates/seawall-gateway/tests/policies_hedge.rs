//! Hedged requests through the real gateway, with one slow and one fast endpoint: a GET
//! whose first copy went to the slow one is answered by the hedge at about the hedge
//! delay plus the fast latency, `seawall_hedges_total` counts it and the access log says
//! `hedge=won`; the cancelled copy's connection is closed, not left in use; a POST is not
//! hedged without the opt-in; with the budget spent, no copy is sent; no copy is sent
//! when less time is left than the upstream's tries recently took; and a `p95` delay
//! appears once 20 latencies are known, at the route's p95.

mod support;

use std::{
    net::SocketAddr,
    sync::atomic::Ordering,
    time::{Duration, Instant},
};

use bytes::Bytes;
use http::Method;
use http_body_util::Full;
use support::*;

const MS: fn(u64) -> Duration = Duration::from_millis;

const SLOW: &[u8] = b"HTTP/1.1 200 OK\r\ncontent-length: 4\r\n\r\nslow";
const FAST: &[u8] = b"HTTP/1.1 200 OK\r\ncontent-length: 4\r\n\r\nfast";

fn yaml(endpoints: &[SocketAddr], hedge: &str, upstream_extra: &str) -> String {
    let eps: Vec<String> = endpoints.iter().map(|e| format!("\"{e}\"")).collect();
    let r = route("r", "*", "/", "up", "5s", "access_log");
    let r = format!("{}, hedge: {{{hedge}}}}}", r.trim_end_matches('}'));
    config(
        &[],
        &[r],
        &[format!(
            "{{name: up, endpoints: [{}], balancer: round_robin{upstream_extra}}}",
            eps.join(", ")
        )],
    )
}

fn hedges(m: &str, outcome: &str) -> f64 {
    metric(
        m,
        "seawall_hedges_total",
        &[("route", "r"), ("outcome", outcome)],
    )
    .unwrap_or(0.0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_first_copy_is_overtaken_by_the_hedge_to_the_fast_endpoint() {
    let (slow, slow_seen) = raw_server(MS(1500), SLOW).await;
    let (fast, _) = raw_server(MS(0), FAST).await;
    let mut g = start(&yaml(&[slow, fast], "delay: 100ms", "")).await;
    for i in 0..6 {
        let t = Instant::now();
        let r = get(g.addr, "/").await;
        assert_eq!(r.status, 200);
        assert_eq!(r.text(), "fast", "request {i}");
        assert_between(&format!("request {i}"), t.elapsed(), MS(0), MS(900));
    }
    let slowed = slow_seen.load(Ordering::Relaxed);
    assert!(
        slowed >= 1,
        "round robin sent first copies to the slow endpoint"
    );
    let m = metrics_text(g.admin).await;
    assert_eq!(hedges(&m, "won"), slowed as f64, "{m}");
    assert_eq!(hedges(&m, "lost"), 0.0, "{m}");
    let line = log_line(&mut g.log, MS(2000), |v| v["policy"] == "hedge=won").await;
    assert!(line.is_some(), "the access log says the hedge won");
    // The overtaken copies were cancelled: their connections are not left in use.
    let settled = eventually(MS(2000), || async {
        let m = metrics_text(g.admin).await;
        metric(
            &m,
            "seawall_upstream_connections_in_use",
            &[("upstream", "up")],
        ) == Some(0.0)
    })
    .await;
    assert!(settled, "no connection left in use");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_post_is_not_hedged_without_the_opt_in() {
    let (slow, _) = raw_server(MS(400), SLOW).await;
    let g = start(&yaml(&[slow], "delay: 50ms", "")).await;
    let t = Instant::now();
    let r = send(
        g.addr,
        req(Method::POST, "/")
            .body(Full::new(Bytes::from("x")))
            .unwrap(),
    )
    .await
    .unwrap();
    assert_eq!(r.text(), "slow");
    assert!(t.elapsed() >= MS(400));
    let m = metrics_text(g.admin).await;
    assert_eq!(hedges(&m, "won") + hedges(&m, "lost"), 0.0, "{m}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_copy_is_sent_when_the_budget_is_spent() {
    let (slow, seen) = raw_server(MS(300), SLOW).await;
    let budget = ", retry_budget: {ratio: 0, min_retries_per_second: 0}";
    let g = start(&yaml(&[slow], "delay: 50ms", budget)).await;
    let r = get(g.addr, "/").await;
    assert_eq!(r.text(), "slow");
    assert_eq!(seen.load(Ordering::Relaxed), 1, "one copy only");
    let m = metrics_text(g.admin).await;
    assert_eq!(hedges(&m, "budget_exhausted"), 1.0, "{m}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_p95_delay_follows_the_routes_latencies_once_enough_are_known() {
    let (fast, _) = raw_server(MS(0), FAST).await;
    let (slow, _) = raw_server(MS(300), SLOW).await;
    let g = start(&yaml(&[fast, slow], "delay: p95", "")).await;
    let gauge = |m: &str| metric(m, "seawall_hedge_delay_seconds", &[("route", "r")]);
    assert_eq!(get(g.addr, "/").await.status, 200);
    let m = metrics_text(g.admin).await;
    assert!(
        gauge(&m).is_some_and(f64::is_nan),
        "no delay before 20 samples: {m}"
    );
    // 20 at once: half to each endpoint, none hedged (too few samples yet).
    let warm: Vec<_> = (0..20).map(|_| tokio::spawn(get(g.addr, "/"))).collect();
    for w in warm {
        assert_eq!(w.await.unwrap().status, 200);
    }
    assert_eq!(get(g.addr, "/").await.status, 200);
    let m = metrics_text(g.admin).await;
    let delay = gauge(&m).unwrap();
    // 21+ samples, about half at 300 ms: the p95 is a slow one, at most 10 % late.
    assert!((0.3..0.6).contains(&delay), "p95 delay {delay}s: {m}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_copy_is_sent_when_less_is_left_than_the_upstream_recently_needed() {
    // The try's deadline is its `per_try_timeout`: the race ends inside the try, and is
    // counted.
    for (per_try, copies) in [("600ms", 0.0), ("3s", 1.0)] {
        let sim = sim().await;
        // `warm.test` (hedged too late to ever hedge) teaches the gateway that the
        // upstream needs ~800 ms; `r` hedges after 100 ms within `per_try`.
        let warm = route("warm", "warm.test", "/", "up", "5s", "");
        let warm = format!("{}, hedge: {{delay: 3s}}}}", warm.trim_end_matches('}'));
        let r = route("r", "*", "/", "up", "5s", "");
        let r = format!(
            "{}, hedge: {{delay: 100ms}}, retry: {{max_attempts: 1, per_try_timeout: {per_try}}}}}",
            r.trim_end_matches('}')
        );
        let g = start(&config(
            &[],
            &[warm, r],
            &[upstream("up", &[sim.local_addr()], "", "")],
        ))
        .await;
        for _ in 0..3 {
            let warm = http::Request::get("/delay/800ms")
                .header("host", "warm.test")
                .body(Full::default())
                .unwrap();
            assert_eq!(send(g.addr, warm).await.unwrap().status, 200);
        }
        let r = get(g.addr, "/delay/800ms").await;
        let m = metrics_text(g.admin).await;
        let sent = hedges(&m, "won") + hedges(&m, "lost");
        assert_eq!(sent, copies, "per_try_timeout {per_try}: {m}");
        let status = if copies == 0.0 { 504 } else { 200 };
        assert_eq!(r.status, status, "per_try_timeout {per_try}");
    }
}
