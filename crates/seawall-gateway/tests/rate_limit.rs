//! The `rate_limit` layer through a real gateway: requests over a limit get 429 with
//! `Retry-After`, `seawall-error: rate_limited` and the RateLimit headers, and never reach
//! the upstream; keys separate clients; delay mode spaces requests out instead of
//! refusing them, and refuses at once what could not conform within `max_wait` or the
//! deadline; every decision is counted by route, limit and outcome; a reload keeps local
//! limits; with Redis, two gateways share one limit, and a dead or silent Redis gives each
//! `on_error` mode its documented behaviour without making requests wait; leases cut the
//! Redis calls of a hot key to one per lease and keep two gateways within the documented
//! bound.

mod support;

use std::time::{Duration, Instant};

use http::Method;
use support::*;

const MS: fn(u64) -> Duration = Duration::from_millis;

fn yaml(sim: std::net::SocketAddr, timeout: &str, layer: &str) -> String {
    config(
        &[],
        &[route(
            "limited",
            "*",
            "/",
            "sim",
            timeout,
            &format!("{{rate_limit: {layer}}}"),
        )],
        &[upstream("sim", &[sim], "", "")],
    )
}

#[tokio::test]
async fn requests_over_the_burst_get_429_with_headers_and_never_reach_the_upstream() {
    let sim = sim().await;
    let g = start(&yaml(
        sim.local_addr(),
        "5s",
        "{limits: [{name: per_client, key: [client_ip], rate: \"1/min\", burst: 5}]}",
    ))
    .await;
    let mut statuses = Vec::new();
    for i in 0..8u32 {
        let r = get(g.addr, "/echo").await;
        statuses.push(r.status);
        assert_eq!(
            r.header("ratelimit-policy"),
            Some("\"per_client\";q=1;w=60"),
            "request {i}"
        );
        if i < 5 {
            assert_eq!(r.status, 200, "request {i}: {}", r.text());
            let remaining = 4 - i;
            let rl = r.header("ratelimit").unwrap();
            assert!(
                rl.starts_with(&format!("\"per_client\";r={remaining};t=")),
                "request {i}: {rl}"
            );
        } else {
            assert_eq!(r.status, 429, "request {i}");
            assert_eq!(r.error(), Some("rate_limited"));
            // One request's worth is 60 s; a little of it has already passed.
            let retry: u64 = r.header("retry-after").unwrap().parse().unwrap();
            assert!((55..=60).contains(&retry), "retry-after {retry}");
            assert_eq!(
                r.header("ratelimit").unwrap(),
                format!("\"per_client\";r=0;t={retry}")
            );
        }
    }
    assert_eq!(statuses.iter().filter(|s| **s == 200).count(), 5);
    assert_eq!(
        sim.stats().requests,
        5,
        "the upstream saw only the allowed ones"
    );

    let text = metrics_text(g.admin).await;
    let count = |outcome| {
        metric(
            &text,
            "seawall_ratelimit_decisions_total",
            &[
                ("route", "limited"),
                ("limit", "per_client"),
                ("outcome", outcome),
            ],
        )
    };
    assert_eq!(count("allowed"), Some(5.0));
    assert_eq!(count("limited"), Some(3.0));
    assert_eq!(count("delayed"), Some(0.0));
    assert_eq!(
        metric(
            &text,
            "seawall_errors_total",
            &[("route", "limited"), ("kind", "rate_limited")]
        ),
        Some(3.0)
    );
}

#[tokio::test]
async fn a_header_key_limits_each_api_key_on_its_own() {
    let sim = sim().await;
    let g = start(&yaml(
        sim.local_addr(),
        "5s",
        "{headers: false, limits: [{name: per_key, key: [{header: x-api-key}], rate: \"1/min\", burst: 2}]}",
    ))
    .await;
    let send_as = |key: Option<&'static str>| {
        let addr = g.addr;
        async move {
            let mut b = req(Method::GET, "/echo");
            if let Some(k) = key {
                b = b.header("x-api-key", k);
            }
            send(addr, b.body(Default::default()).unwrap())
                .await
                .unwrap()
        }
    };
    let a: Vec<u16> = [
        send_as(Some("a")).await,
        send_as(Some("a")).await,
        send_as(Some("a")).await,
    ]
    .iter()
    .map(|r| r.status)
    .collect();
    assert_eq!(a, [200, 200, 429]);
    let ok = send_as(Some("b")).await;
    assert_eq!(ok.status, 200, "key b has its own burst");
    assert!(
        ok.header("ratelimit").is_none(),
        "headers: false keeps allowed responses clean"
    );
    // Requests without the header share one bucket of their own.
    let none: Vec<u16> = [
        send_as(None).await,
        send_as(None).await,
        send_as(None).await,
    ]
    .iter()
    .map(|r| r.status)
    .collect();
    assert_eq!(none, [200, 200, 429]);
    assert_eq!(sim.stats().requests, 5);
}

#[tokio::test]
async fn delay_mode_spaces_a_burst_out_and_refuses_what_would_wait_past_max_wait() {
    let sim = sim().await;
    // 10/s, burst 1: the n-th simultaneous request conforms after (n-1) × 100 ms.
    let g = start(&yaml(
        sim.local_addr(),
        "5s",
        "{mode: delay, max_wait: 250ms, limits: [{name: smooth, key: [route], rate: \"10/s\", burst: 1}]}",
    ))
    .await;
    let started = Instant::now();
    let tasks: Vec<_> = (0..6)
        .map(|_| {
            let addr = g.addr;
            tokio::spawn(async move {
                let r = get(addr, "/echo").await;
                (r.status, started.elapsed())
            })
        })
        .collect();
    let mut results = Vec::new();
    for t in tasks {
        results.push(t.await.unwrap());
    }
    let ok: Vec<Duration> = results.iter().filter(|r| r.0 == 200).map(|r| r.1).collect();
    let refused: Vec<Duration> = results.iter().filter(|r| r.0 == 429).map(|r| r.1).collect();
    assert_eq!(ok.len() + refused.len(), 6, "{results:?}");
    // Waits of 0, 100 and 200 ms fit in max_wait; 300 ms and beyond do not (one more may
    // fit if the requests arrive spread out on a slow machine).
    assert!((3..=4).contains(&ok.len()), "{results:?}");
    let slowest = ok.iter().max().unwrap();
    assert!(
        *slowest >= MS(150),
        "the last allowed request was held: {results:?}"
    );
    for r in &refused {
        assert!(
            *r < MS(150),
            "refusals are immediate, not after waiting: {results:?}"
        );
    }
    let text = metrics_text(g.admin).await;
    let delayed = metric(
        &text,
        "seawall_ratelimit_decisions_total",
        &[("limit", "smooth"), ("outcome", "delayed")],
    );
    assert!(delayed >= Some(2.0), "{delayed:?}");
}

#[tokio::test]
async fn delay_mode_refuses_at_once_a_wait_that_would_pass_the_deadline() {
    let sim = sim().await;
    let g = start(&yaml(
        sim.local_addr(),
        "300ms",
        "{mode: delay, max_wait: 5s, limits: [{name: slow, key: [route], rate: \"1/s\", burst: 1}]}",
    ))
    .await;
    assert_eq!(get(g.addr, "/echo").await.status, 200);
    let started = Instant::now();
    let r = get(g.addr, "/echo").await;
    assert_eq!(
        r.status,
        429,
        "a 1 s wait cannot fit a 300 ms deadline: {}",
        r.text()
    );
    assert_between("refusal", started.elapsed(), MS(0), MS(200));
}

/// A key prefix no other test run uses (tests share the machine's Redis; nothing is flushed).
#[cfg(feature = "redis")]
fn unique_prefix(test: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("seawall-test:{}:{nanos}:{test}:", std::process::id())
}

#[cfg(feature = "redis")]
fn redis_layer(url: &str, prefix: &str, on_error: &str) -> String {
    format!(
        "{{redis: {{url: \"{url}\", timeout: 100ms, cooldown: 5s, on_error: {on_error}, instances: 2, key_prefix: \"{prefix}\"}}, limits: [{{name: shared, key: [client_ip], rate: \"1/min\", burst: 4, store: redis}}]}}"
    )
}

#[cfg(feature = "redis")]
fn dead_redis_url() -> String {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    format!("redis://{}/", l.local_addr().unwrap())
}

#[cfg(feature = "redis")]
#[tokio::test]
async fn two_gateways_on_one_redis_share_the_limit() {
    let sim = sim().await;
    let prefix = unique_prefix("shared");
    let layer = redis_layer("redis://127.0.0.1:6379/", &prefix, "fail_closed");
    let a = start(&yaml(sim.local_addr(), "5s", &layer)).await;
    let b = start(&yaml(sim.local_addr(), "5s", &layer)).await;
    let mut statuses = Vec::new();
    for i in 0..8 {
        let g = if i % 2 == 0 { &a } else { &b };
        let r = get(g.addr, "/echo").await;
        if r.status == 429 {
            assert_eq!(r.error(), Some("rate_limited"));
            assert!(r.header("retry-after").is_some());
        }
        statuses.push(r.status);
    }
    assert_eq!(statuses, [200, 200, 200, 200, 429, 429, 429, 429]);
    assert_eq!(sim.stats().requests, 4);
    let text = metrics_text(a.admin).await;
    let count = |outcome| {
        metric(
            &text,
            "seawall_ratelimit_decisions_total",
            &[("limit", "shared"), ("outcome", outcome)],
        )
    };
    assert_eq!((count("allowed"), count("limited")), (Some(2.0), Some(2.0)));
}

#[cfg(feature = "redis")]
#[tokio::test]
async fn with_redis_down_fail_open_allows_everything_without_waiting() {
    let sim = sim().await;
    let layer = redis_layer(&dead_redis_url(), &unique_prefix("open"), "fail_open");
    let g = start(&yaml(sim.local_addr(), "5s", &layer)).await;
    for i in 0..6 {
        let started = Instant::now();
        let r = get(g.addr, "/echo").await;
        assert_eq!(r.status, 200, "request {i}");
        assert!(
            started.elapsed() < MS(500),
            "request {i} took {:?}",
            started.elapsed()
        );
    }
    let text = metrics_text(g.admin).await;
    assert_eq!(
        metric(
            &text,
            "seawall_ratelimit_decisions_total",
            &[("outcome", "fail_open")]
        ),
        Some(6.0)
    );
}

#[cfg(feature = "redis")]
#[tokio::test]
async fn with_redis_down_fail_closed_refuses_with_429() {
    let sim = sim().await;
    let layer = redis_layer(&dead_redis_url(), &unique_prefix("closed"), "fail_closed");
    let g = start(&yaml(sim.local_addr(), "5s", &layer)).await;
    for i in 0..3 {
        let r = get(g.addr, "/echo").await;
        assert_eq!(r.status, 429, "request {i}");
        assert_eq!(r.error(), Some("rate_limited"));
        assert_eq!(r.header("retry-after"), Some("5"), "the breaker's cooldown");
    }
    assert_eq!(sim.stats().requests, 0);
}

#[cfg(feature = "redis")]
#[tokio::test]
async fn with_redis_down_local_enforces_this_instances_share() {
    let sim = sim().await;
    // burst 4 shared by 2 instances: this one allows 2 on its own.
    let layer = redis_layer(&dead_redis_url(), &unique_prefix("local"), "local");
    let g = start(&yaml(sim.local_addr(), "5s", &layer)).await;
    let mut statuses = Vec::new();
    for _ in 0..4 {
        statuses.push(get(g.addr, "/echo").await.status);
    }
    assert_eq!(statuses, [200, 200, 429, 429]);
    let text = metrics_text(g.admin).await;
    let count = |o| {
        metric(
            &text,
            "seawall_ratelimit_decisions_total",
            &[("outcome", o)],
        )
    };
    assert_eq!(
        (count("local_allowed"), count("local_limited")),
        (Some(2.0), Some(2.0))
    );
}

#[cfg(feature = "redis")]
#[tokio::test]
async fn a_silent_redis_costs_one_timeout_then_nothing() {
    // Accepts connections and never answers.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("redis://{}/", listener.local_addr().unwrap());
    let hold = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((sock, _)) = listener.accept().await {
            held.push(sock);
        }
    });
    let sim = sim().await;
    let layer = redis_layer(&url, &unique_prefix("silent"), "fail_open");
    let g = start(&yaml(sim.local_addr(), "5s", &layer)).await;
    let started = Instant::now();
    assert_eq!(get(g.addr, "/echo").await.status, 200);
    let first = started.elapsed();
    assert!(
        first >= MS(90) && first < MS(600),
        "the first pays the 100ms timeout: {first:?}"
    );
    for _ in 0..3 {
        let started = Instant::now();
        assert_eq!(get(g.addr, "/echo").await.status, 200);
        assert!(
            started.elapsed() < MS(90),
            "breaker open: {:?}",
            started.elapsed()
        );
    }
    hold.abort();
}

#[tokio::test]
async fn a_reload_keeps_local_limits_unless_the_limit_itself_changed() {
    let sim = sim().await;
    let layer = |burst: u32| {
        format!(
            "{{limits: [{{name: per_client, key: [client_ip], rate: \"1/min\", burst: {burst}}}]}}"
        )
    };
    let g = start(&yaml(sim.local_addr(), "5s", &layer(2))).await;
    let statuses = |n| async move {
        let mut v = Vec::new();
        for _ in 0..n {
            v.push(get(g.addr, "/echo").await.status);
        }
        v
    };
    assert_eq!(statuses(3).await, [200, 200, 429]);
    // Another route setting changes: the route is rebuilt, its limiter is kept.
    let changed =
        seawall_config::parse("t.yaml", &yaml(sim.local_addr(), "6s", &layer(2))).unwrap();
    g.gw.apply(changed).await.expect("reload");
    assert_eq!(statuses(1).await, [429], "a reload is no fresh burst");
    // The limit itself changes: it starts afresh under the new burst.
    let changed =
        seawall_config::parse("t.yaml", &yaml(sim.local_addr(), "6s", &layer(3))).unwrap();
    g.gw.apply(changed).await.expect("reload");
    assert_eq!(statuses(4).await, [200, 200, 200, 429]);
}

/// `seawall_ratelimit_store_calls_total` of limit `limit` (all outcomes).
#[cfg(feature = "redis")]
fn store_calls(text: &str, limit: &str) -> f64 {
    metric(
        text,
        "seawall_ratelimit_store_calls_total",
        &[("limit", limit)],
    )
    .unwrap_or(0.0)
}

#[cfg(feature = "redis")]
#[tokio::test]
async fn a_lease_of_10_tokens_makes_one_redis_call_per_10_requests() {
    let sim = sim().await;
    let layer = format!(
        "{{redis: {{url: \"redis://127.0.0.1:6379/\", timeout: 1s, key_prefix: \"{}\"}}, limits: [{{name: hot, key: [route], rate: \"10000/s\", burst: 100, store: redis, lease: {{tokens: 10}}}}]}}",
        unique_prefix("lease")
    );
    let g = start(&yaml(sim.local_addr(), "5s", &layer)).await;
    // One at a time, far below the limit: each lease is spent whole well within its
    // 1 s max_age, so exactly one call per 10 requests.
    for i in 0..300 {
        let r = get(g.addr, "/echo").await;
        assert_eq!(r.status, 200, "request {i}");
    }
    let text = metrics_text(g.admin).await;
    let calls = store_calls(&text, "hot");
    assert!(
        (30.0..=33.0).contains(&calls),
        "{calls} Redis calls for 300 requests"
    );
    assert_eq!(
        metric(
            &text,
            "seawall_ratelimit_store_calls_total",
            &[("limit", "hot"), ("outcome", "error")]
        ),
        Some(0.0)
    );
    assert_eq!(
        metric(
            &text,
            "seawall_ratelimit_decisions_total",
            &[("limit", "hot"), ("outcome", "allowed")]
        ),
        Some(300.0)
    );
}

#[cfg(feature = "redis")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_leases_two_gateways_stay_within_the_documented_bound_at_a_fraction_of_the_calls() {
    // 50/s, burst 10, leases of 5: over 3 s Redis grants burst + rate × wall ≈ 160 tokens
    // in all. Admitted can only be lower: each gateway may end holding up to 4 unspent
    // tokens (docs/rate-limiting.md, "Leasing"), and never higher, since every admitted
    // request spent a token Redis granted.
    let (rate, burst, tokens, instances) = (50.0, 10u32, 5u32, 2.0);
    let sim = sim().await;
    let layer = format!(
        "{{redis: {{url: \"redis://127.0.0.1:6379/\", timeout: 1s, key_prefix: \"{}\"}}, limits: [{{name: hot, key: [route], rate: \"50/s\", burst: {burst}, store: redis, lease: {{tokens: {tokens}}}}}]}}",
        unique_prefix("lease-fleet")
    );
    let a = start(&yaml(sim.local_addr(), "5s", &layer)).await;
    let b = start(&yaml(sim.local_addr(), "5s", &layer)).await;
    let started = Instant::now();
    let stop = started + Duration::from_secs(3);
    let mut tasks = Vec::new();
    for addr in [a.addr, b.addr, a.addr, b.addr, a.addr, b.addr] {
        tasks.push(tokio::spawn(async move {
            let (mut ok, mut refused) = (0u64, 0u64);
            while Instant::now() < stop {
                match get(addr, "/echo").await.status {
                    200 => ok += 1,
                    429 => refused += 1,
                    other => panic!("status {other}"),
                }
                tokio::time::sleep(MS(2)).await;
            }
            (ok, refused)
        }));
    }
    let (mut admitted, mut refused) = (0u64, 0u64);
    for t in tasks {
        let (o, r) = t.await.unwrap();
        admitted += o;
        refused += r;
    }
    let wall = started.elapsed().as_secs_f64();
    let granted = f64::from(burst) + rate * wall;
    let lowest = granted - instances * f64::from(tokens - 1);
    let got = admitted as f64;
    assert!(
        got <= granted * 1.05 && got >= lowest * 0.95,
        "admitted {got}, want {lowest:.0}..={granted:.0} (±5%) over {wall:.2} s; {refused} refused"
    );
    assert!(refused as f64 > got, "the load stayed above the limit");
    let calls = store_calls(&metrics_text(a.admin).await, "hot")
        + store_calls(&metrics_text(b.admin).await, "hot");
    // One grant per lease (admitted / 5), plus the refused lease calls of the gateway
    // that lost each race for the next 5 tokens (measured: about two per grant): a
    // handful of calls a second, against hundreds of requests a second without leases.
    assert!(
        calls <= 4.0 * got / f64::from(tokens) + 10.0,
        "{calls} Redis calls for {got} admitted and {refused} refused"
    );
    eprintln!(
        "leases: admitted {got} (want {lowest:.0}..={granted:.0}), {refused} refused, {calls} Redis calls"
    );
}
