//! The bulkhead through the real gateway: with every slot busy a try waits in the queue up
//! to `queue_timeout` and then gets 503 `overloaded`; with the queue full too it gets 503
//! at once; a waiting try gets the slot as soon as one frees. Each refusal is counted in
//! `seawall_shed_total{upstream, reason}`.

mod support;

use std::time::{Duration, Instant};

use support::*;

const MS: fn(u64) -> Duration = Duration::from_millis;

fn yaml(sim: std::net::SocketAddr, concurrency: &str) -> String {
    config(
        &[],
        &[route("r", "*", "/", "up", "5s", "")],
        &[format!(
            "{{name: up, endpoints: [\"{sim}\"], concurrency: {{{concurrency}}}}}"
        )],
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_bulkhead_sheds_with_503_overloaded() {
    let sim = sim().await;
    let g = start(&yaml(
        sim.local_addr(),
        "max_concurrent: 1, max_pending: 1, queue_timeout: 200ms",
    ))
    .await;
    let addr = g.addr;
    // One request takes the slot for 800 ms.
    let running = tokio::spawn(async move { get(addr, "/delay/800ms").await });
    tokio::time::sleep(MS(100)).await;
    // The next waits in the queue and gives up after queue_timeout.
    let queued = tokio::spawn(async move {
        let t = Instant::now();
        (get(addr, "/").await, t.elapsed())
    });
    tokio::time::sleep(MS(50)).await;
    // The queue is full: refused at once.
    let t = Instant::now();
    let full = get(addr, "/").await;
    assert!(t.elapsed() < MS(100), "{:?}", t.elapsed());
    assert_eq!(full.status, 503);
    assert_eq!(full.headers["seawall-error"], "overloaded");

    let (queued, waited) = queued.await.unwrap();
    assert_eq!(queued.status, 503);
    assert_eq!(queued.headers["seawall-error"], "overloaded");
    assert_between("queue wait", waited, MS(180), MS(600));
    assert_eq!(running.await.unwrap().status, 200);
    assert_eq!(
        sim.stats().requests,
        1,
        "shed requests never reach the upstream"
    );

    let m = metrics_text(g.admin).await;
    for reason in ["queue_full", "queue_timeout"] {
        let labels = [("upstream", "up"), ("reason", reason)];
        assert_eq!(
            metric(&m, "seawall_shed_total", &labels),
            Some(1.0),
            "{reason}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_waiting_request_runs_as_soon_as_a_slot_frees() {
    let sim = sim().await;
    let g = start(&yaml(
        sim.local_addr(),
        "max_concurrent: 1, max_pending: 4, queue_timeout: 3s",
    ))
    .await;
    let addr = g.addr;
    let t = Instant::now();
    let tasks: Vec<_> = (0..3)
        .map(|_| tokio::spawn(async move { get(addr, "/delay/150ms").await.status }))
        .collect();
    for task in tasks {
        assert_eq!(task.await.unwrap(), 200);
    }
    // One at a time: three 150 ms requests take at least 450 ms.
    assert_between("three serialized requests", t.elapsed(), MS(430), MS(2500));
    let up = admin_get(g.admin, "/upstreams").await;
    let v: serde_json::Value = serde_json::from_slice(&up.body).unwrap();
    assert_eq!(v["upstreams"][0]["concurrency"]["active"], 0);
    assert_eq!(v["upstreams"][0]["concurrency"]["max_concurrent"], 1);
}

/// `n` GETs of `path` at once; all must succeed.
async fn burst(addr: std::net::SocketAddr, path: &'static str, n: usize) {
    let tasks: Vec<_> = (0..n)
        .map(|_| tokio::spawn(async move { get(addr, path).await.status }))
        .collect();
    for t in tasks {
        assert_eq!(t.await.unwrap(), 200);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_adaptive_limit_falls_when_upstream_latency_rises_but_not_below_min_limit() {
    let sim = sim().await;
    let g = start(&yaml(
        sim.local_addr(),
        "adaptive: {min_limit: 10, initial_limit: 20, max_limit: 20}",
    ))
    .await;
    let limit = |m: &str| metric(m, "seawall_concurrency_limit", &[("upstream", "up")]);
    assert_eq!(limit(&metrics_text(g.admin).await), Some(20.0));
    // A fast baseline: the long-run RTT settles near a millisecond.
    for _ in 0..3 {
        burst(g.addr, "/delay/1ms", 12).await;
    }
    // Latency rises ~100-fold, enough tries at once for every sample to count.
    for _ in 0..8 {
        burst(g.addr, "/delay/200ms", 16).await;
    }
    let after = limit(&metrics_text(g.admin).await).unwrap();
    assert!(
        (10.0..=15.0).contains(&after),
        "the limit fell toward, and not below, min_limit 10: {after}"
    );
}
