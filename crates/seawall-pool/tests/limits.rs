//! Connection life limits (`max_requests_per_connection`, `max_lifetime`) and the
//! per-phase histograms, against real sockets on 127.0.0.1. Timing assertions are generous:
//! the CI box has 2 noisy cores.

mod support;

use std::time::Duration;

use http_body_util::BodyExt;
use seawall_pool::{CloseReason, PoolOptions, PoolSettings};
use support::*;

const WAIT: Duration = Duration::from_secs(5);

#[tokio::test]
async fn connection_is_closed_after_max_requests_and_the_next_request_opens_a_new_one() {
    let upstream = HyperUpstream::start().await;
    let (pool, metrics) = pool_with(
        upstream.addr,
        settings(),
        PoolOptions {
            max_requests_per_connection: Some(3),
            ..PoolOptions::default()
        },
    );
    let mut pattern = Vec::new();
    for _ in 0..7 {
        pattern.push(roundtrip(&pool, "/").await.0);
    }
    assert_eq!(
        pattern,
        [false, true, true, false, true, true, false],
        "reused per request"
    );
    assert_eq!(upstream.accepts(), 3);
    eventually(WAIT, "two connections retired as max_requests", || {
        metrics.closed.get(CloseReason::MaxRequests).get() == 2
    })
    .await;
    let snap = pool.snapshot();
    assert_eq!(
        (snap[0].idle, snap[0].open),
        (1, 1),
        "the third one is idle"
    );
}

#[tokio::test]
async fn connection_past_max_lifetime_is_closed_when_released_not_during_its_request() {
    let mut upstream = RawUpstream::start(Script::KeepAlive).await;
    let (pool, metrics) = pool_with(
        upstream.addr,
        settings(),
        PoolOptions {
            max_lifetime: Some(Duration::from_millis(200)),
            ..PoolOptions::default()
        },
    );
    let conn = pool.checkout(0, in_secs(10)).await.unwrap();
    // Outlive the lifetime while checked out: the request still goes through.
    tokio::time::sleep(Duration::from_millis(400)).await;
    let body = conn
        .send(get("/"))
        .await
        .unwrap()
        .into_body()
        .collect()
        .await
        .unwrap();
    assert_eq!(&body.to_bytes()[..], b"ok");
    upstream.next_eof(WAIT).await;
    eventually(WAIT, "closed as lifetime", || {
        metrics.closed.get(CloseReason::Lifetime).get() == 1
    })
    .await;
    assert_eq!(pool.snapshot()[0].idle, 0);
    let (reused, _) = roundtrip(&pool, "/").await;
    assert!(!reused);
}

#[tokio::test]
async fn idle_connection_reaching_max_lifetime_is_closed_and_never_handed_out() {
    let mut upstream = RawUpstream::start(Script::KeepAlive).await;
    let (pool, metrics) = pool_with(
        upstream.addr,
        PoolSettings {
            // The sweeper ticks every 250 ms; the idle timeout itself never fires here.
            idle_timeout: Duration::from_secs(1),
            ..settings()
        },
        PoolOptions {
            max_lifetime: Some(Duration::from_millis(600)),
            ..PoolOptions::default()
        },
    );
    let (reused, _) = roundtrip(&pool, "/").await;
    assert!(!reused);
    eventually(WAIT, "young enough to be kept idle", || {
        pool.snapshot()[0].idle == 1
    })
    .await;
    upstream.next_eof(WAIT).await;
    eventually(WAIT, "swept as lifetime", || {
        metrics.closed.get(CloseReason::Lifetime).get() == 1
    })
    .await;
    assert_eq!(metrics.closed.get(CloseReason::IdleTimeout).get(), 0);
    assert_eq!(metrics.idle.get(), 0);
    let (reused, _) = roundtrip(&pool, "/").await;
    assert!(!reused);
}

#[tokio::test]
async fn connections_without_limits_are_reused_indefinitely() {
    let upstream = HyperUpstream::start().await;
    let (pool, metrics) = pool_with(upstream.addr, settings(), PoolOptions::default());
    for _ in 0..20 {
        roundtrip(&pool, "/").await;
    }
    assert_eq!(upstream.accepts(), 1);
    assert_eq!(metrics.closed.get(CloseReason::MaxRequests).get(), 0);
    assert_eq!(metrics.closed.get(CloseReason::Lifetime).get(), 0);
}

#[tokio::test]
async fn checkout_wait_includes_waiting_for_a_busy_endpoint() {
    let upstream = HyperUpstream::start().await;
    let options = PoolOptions::default();
    let phase = options.metrics.clone();
    let (pool, _metrics) = pool_with(
        upstream.addr,
        PoolSettings {
            max_connections_per_endpoint: 1,
            ..settings()
        },
        options,
    );
    let first = pool.checkout(0, in_secs(10)).await.unwrap();
    let holder = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(300)).await;
        let response = first.send(get("/")).await.unwrap();
        response.into_body().collect().await.unwrap();
    });
    let second = pool.checkout(0, in_secs(10)).await.unwrap();
    holder.await.unwrap();
    drop(second);
    assert_eq!(phase.checkout_wait.count(), 2);
    // The second checkout waited for the first request (>= 300 ms).
    assert!(
        phase.checkout_wait.sum() >= 0.25,
        "{}",
        phase.checkout_wait.sum()
    );
    assert!(
        phase.checkout_wait.sum() < 5.0,
        "{}",
        phase.checkout_wait.sum()
    );
}

#[tokio::test]
async fn response_head_time_covers_the_upstream_think_time_and_failures_are_not_observed() {
    let upstream = HyperUpstream::start().await;
    let options = PoolOptions::default();
    let phase = options.metrics.clone();
    let (pool, _metrics) = pool_with(upstream.addr, settings(), options);
    roundtrip(&pool, "/slow").await;
    assert_eq!(phase.response_head_duration.count(), 1);
    let head = phase.response_head_duration.sum();
    assert!((0.25..5.0).contains(&head), "{head}");
    // A failed checkout is not a checkout wait.
    let error = pool.checkout(7, in_secs(10)).await.unwrap_err();
    assert_eq!(error.kind, seawall_core::ErrorKind::NoEndpoint);
    assert_eq!(phase.checkout_wait.count(), 1);
}
