//! The circuit breaker through the real gateway: an upstream failing every request (or 60%
//! of them) opens the breaker within one window; then requests fail fast with 503
//! `circuit_open` and `retry-after` while the upstream sees nothing; after `open_duration` a
//! half-open probe that succeeds closes it and one that fails reopens it. `/breakers`, the
//! state gauge and the transitions counter report all of it, and the state survives a
//! reload that leaves the upstream's config alone.

mod support;

use std::time::Duration;

use support::*;

const MS: fn(u64) -> Duration = Duration::from_millis;

const BREAKER: &str = "breaker: {window: 1s, buckets: 10, min_calls: 5, failure_ratio: 0.5, open_duration: 300ms, max_open_duration: 300ms}";

fn yaml(sim: std::net::SocketAddr, breaker: &str) -> String {
    config(
        &[],
        &[route("r", "*", "/", "up", "5s", "access_log")],
        &[format!("{{name: up, endpoints: [\"{sim}\"], {breaker}}}")],
    )
}

async fn trip(g: &TestGateway) {
    for i in 0..5 {
        let r = get(g.addr, "/status/500").await;
        assert_eq!(r.status, 500, "request {i} reaches the upstream");
        assert!(
            r.headers.get("seawall-error").is_none(),
            "the upstream's own 500"
        );
    }
}

async fn breaker_json(g: &TestGateway) -> serde_json::Value {
    let r = admin_get(g.admin, "/breakers").await;
    assert_eq!(r.status, 200);
    let v: serde_json::Value = serde_json::from_slice(&r.body).expect("json");
    v["breakers"][0].clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_upstream_opens_the_breaker_and_requests_then_fail_fast_without_reaching_it() {
    let sim = sim().await;
    let g = start(&yaml(sim.local_addr(), BREAKER)).await;
    trip(&g).await;
    assert_eq!(sim.stats().requests, 5);

    for _ in 0..10 {
        let r = get(g.addr, "/").await;
        assert_eq!(r.status, 503);
        assert_eq!(r.headers["seawall-error"], "circuit_open");
        let after: u64 = r.headers["retry-after"].to_str().unwrap().parse().unwrap();
        assert_eq!(after, 1, "300ms rounds up to one second");
    }
    assert_eq!(
        sim.stats().requests,
        5,
        "an open breaker sends nothing upstream"
    );

    let b = breaker_json(&g).await;
    assert_eq!(b["upstream"], "up");
    assert_eq!(b["state"], "open");
    assert_eq!(b["counters"]["failures"], 5);
    assert_eq!(b["counters"]["rejected"], 10);
    assert_eq!(b["recent_transitions"][0]["cause"], "failure_ratio");
    assert!(
        b["retry_after_ms"].as_u64().is_some_and(|ms| ms <= 300),
        "{b}"
    );

    let m = metrics_text(g.admin).await;
    assert_eq!(
        metric(&m, "seawall_breaker_state", &[("upstream", "up")]),
        Some(1.0)
    );
    let opened = [
        ("upstream", "up"),
        ("from", "closed"),
        ("to", "open"),
        ("cause", "failure_ratio"),
    ];
    assert_eq!(
        metric(&m, "seawall_breaker_transitions_total", &opened),
        Some(1.0),
        "{m}"
    );
    assert_eq!(
        metric(
            &m,
            "seawall_errors_total",
            &[("route", "r"), ("kind", "circuit_open")]
        ),
        Some(10.0)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_the_open_period_a_successful_probe_closes_the_breaker() {
    let sim = sim().await;
    let g = start(&yaml(sim.local_addr(), BREAKER)).await;
    trip(&g).await;
    assert_eq!(get(g.addr, "/").await.status, 503);

    tokio::time::sleep(MS(400)).await;
    let probe = get(g.addr, "/").await;
    assert_eq!(
        probe.status, 200,
        "the probe reaches the (now healthy) upstream"
    );
    for _ in 0..5 {
        assert_eq!(get(g.addr, "/").await.status, 200);
    }
    assert_eq!(sim.stats().requests, 11);

    let b = breaker_json(&g).await;
    assert_eq!(b["state"], "closed");
    let causes: Vec<&str> = b["recent_transitions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["cause"].as_str().unwrap())
        .collect();
    assert_eq!(
        causes,
        ["failure_ratio", "open_period_elapsed", "probes_succeeded"]
    );

    let m = metrics_text(g.admin).await;
    assert_eq!(
        metric(&m, "seawall_breaker_state", &[("upstream", "up")]),
        Some(0.0)
    );
    let closed = [("upstream", "up"), ("from", "half_open"), ("to", "closed")];
    assert_eq!(
        metric(&m, "seawall_breaker_transitions_total", &closed),
        Some(1.0)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_probe_reopens_the_breaker() {
    let sim = sim().await;
    let g = start(&yaml(sim.local_addr(), BREAKER)).await;
    trip(&g).await;
    tokio::time::sleep(MS(400)).await;
    assert_eq!(
        get(g.addr, "/status/502").await.status,
        502,
        "the probe fails"
    );
    let r = get(g.addr, "/").await;
    assert_eq!(
        r.headers["seawall-error"], "circuit_open",
        "open again at once"
    );
    assert_eq!(sim.stats().requests, 6);
    let m = metrics_text(g.admin).await;
    let reopened = [
        ("from", "half_open"),
        ("to", "open"),
        ("cause", "probe_failed"),
    ];
    assert_eq!(
        metric(&m, "seawall_breaker_transitions_total", &reopened),
        Some(1.0)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_errors_and_successes_below_the_ratio_keep_the_breaker_closed() {
    let sim = sim().await;
    let g = start(&yaml(sim.local_addr(), BREAKER)).await;
    for i in 0..20 {
        let path = if i % 3 == 0 {
            "/status/500"
        } else {
            "/status/404"
        };
        get(g.addr, path).await;
    }
    assert_eq!(get(g.addr, "/").await.status, 200);
    assert_eq!(breaker_json(&g).await["state"], "closed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failure_on_decides_what_counts_against_the_upstream() {
    let sim = sim().await;
    let breaker = format!("{}, failure_on: [\"404\"]}}", BREAKER.trim_end_matches('}'));
    let g = start(&yaml(sim.local_addr(), &breaker)).await;
    for _ in 0..5 {
        assert_eq!(get(g.addr, "/status/500").await.status, 500);
    }
    assert_eq!(
        breaker_json(&g).await["state"],
        "closed",
        "500 is not in failure_on"
    );
    for _ in 0..5 {
        assert_eq!(get(g.addr, "/status/404").await.status, 404);
    }
    assert_eq!(breaker_json(&g).await["state"], "open");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_breaker_state_survives_a_reload_that_keeps_the_upstream_and_resets_when_it_changes() {
    let sim = sim().await;
    let long = "breaker: {window: 1s, min_calls: 5, open_duration: 30s}";
    let g = start(&yaml(sim.local_addr(), long)).await;
    trip(&g).await;
    assert_eq!(breaker_json(&g).await["state"], "open");

    // Same upstream config, another route timeout: the breaker is kept.
    let same = yaml(sim.local_addr(), long).replace("timeout: 5s", "timeout: 6s");
    g.gw.apply(seawall_config::parse("t.yaml", &same).unwrap())
        .await
        .expect("reload");
    assert_eq!(
        get(g.addr, "/").await.headers["seawall-error"],
        "circuit_open"
    );

    // The upstream's breaker settings change: a fresh, closed breaker.
    let changed = yaml(
        sim.local_addr(),
        "breaker: {window: 2s, min_calls: 5, open_duration: 30s}",
    );
    g.gw.apply(seawall_config::parse("t.yaml", &changed).unwrap())
        .await
        .expect("reload");
    assert_eq!(get(g.addr, "/").await.status, 200);
    assert_eq!(breaker_json(&g).await["state"], "closed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upstream_without_a_breaker_is_never_short_circuited() {
    let sim = sim().await;
    let g = start(&yaml(sim.local_addr(), "timeouts: {}")).await;
    for _ in 0..30 {
        assert_eq!(get(g.addr, "/status/500").await.status, 500);
    }
    assert_eq!(sim.stats().requests, 30);
    let r = admin_get(g.admin, "/breakers").await;
    let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(v["breakers"], serde_json::json!([]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tries_cut_by_the_deadline_count_as_failures_and_open_the_breaker() {
    let sim = sim().await;
    let yaml = yaml(sim.local_addr(), BREAKER).replace("timeout: 5s", "timeout: 150ms");
    let g = start(&yaml).await;
    for _ in 0..5 {
        let r = get(g.addr, "/hang").await;
        assert_eq!(r.headers["seawall-error"], "deadline_exceeded");
    }
    let b = breaker_json(&g).await;
    assert_eq!(b["state"], "open", "{b}");
    assert_eq!(b["counters"]["failures"], 5);
    assert_eq!(
        get(g.addr, "/").await.headers["seawall-error"],
        "circuit_open"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_leaving_mid_try_releases_its_admission_without_counting_it() {
    use tokio::io::AsyncWriteExt;
    let sim = sim().await;
    let g = start(&yaml(sim.local_addr(), BREAKER)).await;
    for _ in 0..5 {
        let mut s = tokio::net::TcpStream::connect(g.addr).await.unwrap();
        s.write_all(b"GET /hang HTTP/1.1\r\nhost: t\r\n\r\n")
            .await
            .unwrap();
        tokio::time::sleep(MS(50)).await;
        drop(s);
    }
    let released = eventually(Duration::from_secs(2), || async {
        breaker_json(&g).await["counters"]["released"] == 5
    })
    .await;
    let b = breaker_json(&g).await;
    assert!(released, "{b}");
    assert_eq!(b["state"], "closed");
    assert_eq!(b["counters"]["failures"], 0);
    assert_eq!(b["window"]["calls"], 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upstream_failing_sixty_percent_opens_within_one_window_and_recovers_through_half_open()
{
    // Traffic where 3 requests in 5 fail (the upstream's own 500s), against a 50% failure
    // ratio over a 1 s window with min_calls 5: the breaker opens at the fifth call, well
    // inside the first window, without waiting for the window to fill.
    let sim = sim().await;
    let g = start(&yaml(sim.local_addr(), BREAKER)).await;
    let started = std::time::Instant::now();
    let mut sent = 0;
    let opened = loop {
        let path = if sent % 5 < 3 { "/status/500" } else { "/" };
        let r = get(g.addr, path).await;
        if r.error() == Some("circuit_open") {
            break started.elapsed();
        }
        sent += 1;
        assert!(sent <= 20, "60% failures never opened the breaker");
    };
    assert!(
        opened < MS(1000),
        "opened after {opened:?}, more than one window"
    );
    assert_eq!(
        sim.stats().requests,
        sent,
        "calls before the trip all went upstream"
    );
    assert!(sent >= 5, "tripped below min_calls: after {sent} calls");
    let b = breaker_json(&g).await;
    assert_eq!(b["state"], "open", "{b}");
    assert_eq!(b["recent_transitions"][0]["cause"], "failure_ratio", "{b}");

    // Open: fast failures that never reach the upstream, whatever the path.
    let before = sim.stats().requests;
    for path in ["/", "/status/500", "/"] {
        let t = std::time::Instant::now();
        let r = get(g.addr, path).await;
        assert_eq!(r.error(), Some("circuit_open"));
        assert!(
            t.elapsed() < MS(100),
            "not a fast failure: {:?}",
            t.elapsed()
        );
    }
    assert_eq!(sim.stats().requests, before);

    // After open_duration (300 ms) a successful probe closes it, and traffic flows again.
    tokio::time::sleep(MS(400)).await;
    assert_eq!(get(g.addr, "/").await.status, 200, "the half-open probe");
    assert_eq!(breaker_json(&g).await["state"], "closed");
    for _ in 0..5 {
        assert_eq!(get(g.addr, "/").await.status, 200);
    }
}
