//! Dedicated connections (`Pool::connect_dedicated`, for HTTP/1.1 upgrades) against real
//! sockets: they hold an endpoint slot until their socket closes, never enter the idle
//! stack, are counted closed as `upgraded`, make room at the cap by closing an idle pooled
//! connection, and wait and fail like a checkout when every slot is busy.

mod support;

use std::time::Duration;

use http_body_util::BodyExt;
use seawall_core::ErrorKind;
use seawall_pool::{CloseReason, PoolSettings};
use support::*;

const WAIT: Duration = Duration::from_secs(5);

fn one_slot() -> PoolSettings {
    PoolSettings {
        max_connections_per_endpoint: 1,
        max_idle_per_endpoint: 1,
        checkout_timeout: Duration::from_millis(200),
        ..settings()
    }
}

#[tokio::test]
async fn a_dedicated_connection_holds_a_slot_until_it_closes_and_is_never_pooled() {
    let upstream = HyperUpstream::start().await;
    let (pool, metrics) = pool(upstream.addr, settings());
    let conn = pool.connect_dedicated(0, in_secs(10)).await.unwrap();
    assert_eq!(conn.endpoint(), upstream.addr);
    let snap = pool.snapshot();
    assert_eq!((snap[0].in_use, snap[0].open, snap[0].idle), (1, 1, 0));
    let response = conn.send(get("/")).await.unwrap();
    assert_eq!(response.status(), 200);
    let body = response.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(&body[..], b"hello");
    eventually(WAIT, "the dedicated connection closed", || {
        metrics.closed.get(CloseReason::Upgraded).get() == 1
    })
    .await;
    let snap = pool.snapshot();
    assert_eq!((snap[0].in_use, snap[0].open, snap[0].idle), (0, 0, 0));
    assert_eq!(metrics.in_use.get(), 0);
    assert_eq!((metrics.opened.get(), metrics.fresh.get()), (1, 1));
    // The next request needs a new connection: nothing was pooled.
    let (reused, _) = roundtrip(&pool, "/").await;
    assert!(!reused);
    assert_eq!(upstream.accepts(), 2);
}

#[tokio::test]
async fn dropping_a_dedicated_connection_unsent_frees_its_slot() {
    let upstream = HyperUpstream::start().await;
    let (pool, metrics) = pool(upstream.addr, one_slot());
    let conn = pool.connect_dedicated(0, in_secs(10)).await.unwrap();
    drop(conn);
    eventually(WAIT, "slot freed", || pool.snapshot()[0].open == 0).await;
    assert_eq!(metrics.closed.get(CloseReason::Upgraded).get(), 1);
    assert_eq!(metrics.in_use.get(), 0);
}

#[tokio::test]
async fn at_the_cap_an_idle_pooled_connection_is_closed_to_make_room() {
    let upstream = HyperUpstream::start().await;
    let (pool, metrics) = pool(upstream.addr, one_slot());
    roundtrip(&pool, "/").await;
    assert_eq!(pool.snapshot()[0].idle, 1);
    let conn = pool.connect_dedicated(0, in_secs(10)).await.unwrap();
    assert_eq!(metrics.closed.get(CloseReason::IdleCap).get(), 1);
    let snap = pool.snapshot();
    assert_eq!((snap[0].idle, snap[0].in_use, snap[0].open), (0, 1, 1));
    drop(conn);
}

#[tokio::test]
async fn with_every_slot_busy_a_dedicated_connect_waits_then_fails_like_a_checkout() {
    let upstream = HyperUpstream::start().await;
    let (pool, _metrics) = pool(upstream.addr, one_slot());
    let held = pool.checkout(0, in_secs(10)).await.unwrap();
    let error = pool.connect_dedicated(0, in_secs(10)).await.unwrap_err();
    assert_eq!(error.kind, ErrorKind::PoolExhausted, "{error}");
    // The deadline, when it comes first, is the reason.
    let error = pool
        .connect_dedicated(0, tokio::time::Instant::now() + Duration::from_millis(50))
        .await
        .unwrap_err();
    assert_eq!(error.kind, ErrorKind::DeadlineExceeded, "{error}");
    // A slot freed while waiting is taken.
    let waiting = tokio::spawn({
        let pool = pool.clone();
        async move { pool.connect_dedicated(0, in_secs(10)).await }
    });
    tokio::time::sleep(Duration::from_millis(50)).await;
    drop(held);
    let conn = waiting.await.unwrap().expect("the freed slot");
    assert_eq!(pool.snapshot()[0].open, 1);
    drop(conn);
}

#[tokio::test]
async fn a_dedicated_connect_fails_with_the_pools_connect_errors() {
    // Bound, never listening: refused.
    let closed = tokio::net::TcpSocket::new_v4().unwrap();
    closed.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let (pool, metrics) = pool(closed.local_addr().unwrap(), settings());
    let error = pool.connect_dedicated(0, in_secs(10)).await.unwrap_err();
    assert_eq!(error.kind, ErrorKind::ConnectError, "{error}");
    assert_eq!(pool.snapshot()[0].open, 0);
    assert_eq!((metrics.connecting.get(), metrics.opened.get()), (0, 0));
    let error = pool.connect_dedicated(7, in_secs(10)).await.unwrap_err();
    assert_eq!(error.kind, ErrorKind::NoEndpoint, "{error}");
}
