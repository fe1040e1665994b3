//! Deadline propagation: the gateway forwards the request's remaining budget upstream
//! (`seawall-timeout-ms`, and `grpc-timeout` for gRPC), and an inbound `grpc-timeout` or
//! `seawall-timeout-ms` shorter than the route timeout becomes the request's deadline.

mod support;

use std::time::{Duration, Instant};

use http::Method;
use http_body_util::Full;
use seawall_core::deadline::parse_grpc_timeout;
use support::*;

const MS: fn(u64) -> Duration = Duration::from_millis;

async fn gateway(route_timeout: &str) -> (seawall_sim::Sim, TestGateway) {
    let sim = sim().await;
    let yaml = config(
        &[],
        &[route("r", "*", "/", "up", route_timeout, "")],
        &[upstream("up", &[sim.local_addr()], "", "")],
    );
    let g = start(&yaml).await;
    (sim, g)
}

fn budget_ms(echo: &seawall_sim::EchoReport) -> u64 {
    echo.header("seawall-timeout-ms")
        .expect("seawall-timeout-ms forwarded")
        .parse()
        .expect("seawall-timeout-ms is an integer")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forwarded_budget_is_at_most_the_route_timeout() {
    let (_sim, g) = gateway("2s").await;
    let echo = get(g.addr, "/echo").await.echo();
    let ms = budget_ms(&echo);
    assert!(ms <= 2000, "budget {ms} exceeds the 2s route timeout");
    assert!(ms >= 1000, "budget {ms} is far below the 2s route timeout");
    // Not a gRPC request and no inbound grpc-timeout: none forwarded.
    assert_eq!(echo.header("grpc-timeout"), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inbound_grpc_timeout_shortens_the_deadline_and_the_forwarded_budget() {
    let (_sim, g) = gateway("10s").await;
    let r = send(
        g.addr,
        req(Method::GET, "/echo")
            .header("grpc-timeout", "500m")
            .body(Full::default())
            .unwrap(),
    )
    .await
    .unwrap();
    let echo = r.echo();
    let ms = budget_ms(&echo);
    assert!(
        ms <= 500,
        "forwarded budget {ms}ms exceeds the inbound 500m"
    );
    let grpc = echo.header("grpc-timeout").expect("grpc-timeout forwarded");
    let d = parse_grpc_timeout(grpc.as_bytes()).expect("valid grpc-timeout");
    assert!(d <= MS(500), "forwarded grpc-timeout {grpc} exceeds 500m");

    let t = Instant::now();
    let r = send(
        g.addr,
        req(Method::GET, "/delay/2s")
            .header("grpc-timeout", "500m")
            .body(Full::default())
            .unwrap(),
    )
    .await
    .unwrap();
    assert_eq!(r.status, 504, "{}", r.text());
    assert_eq!(r.error(), Some("deadline_exceeded"));
    assert_between("inbound grpc-timeout", t.elapsed(), MS(400), MS(1800));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inbound_seawall_timeout_ms_shortens_the_deadline_and_the_forwarded_budget() {
    let (_sim, g) = gateway("10s").await;
    let r = send(
        g.addr,
        req(Method::GET, "/echo")
            .header("seawall-timeout-ms", "300")
            .body(Full::default())
            .unwrap(),
    )
    .await
    .unwrap();
    let ms = budget_ms(&r.echo());
    assert!(ms <= 300, "forwarded budget {ms}ms exceeds the inbound 300");

    let t = Instant::now();
    let r = send(
        g.addr,
        req(Method::GET, "/delay/2s")
            .header("seawall-timeout-ms", "300")
            .body(Full::default())
            .unwrap(),
    )
    .await
    .unwrap();
    assert_eq!(r.status, 504, "{}", r.text());
    assert_eq!(r.error(), Some("deadline_exceeded"));
    assert_between("inbound seawall-timeout-ms", t.elapsed(), MS(250), MS(1800));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inbound_budget_longer_than_the_route_timeout_does_not_extend_it() {
    let (_sim, g) = gateway("1s").await;
    let r = send(
        g.addr,
        req(Method::GET, "/echo")
            .header("seawall-timeout-ms", "60000")
            .body(Full::default())
            .unwrap(),
    )
    .await
    .unwrap();
    let ms = budget_ms(&r.echo());
    assert!(ms <= 1000, "budget {ms}ms exceeds the 1s route timeout");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_request_gets_grpc_timeout_forwarded() {
    let (_sim, g) = gateway("3s").await;
    let r = send(
        g.addr,
        req(Method::POST, "/echo")
            .header("content-type", "application/grpc")
            .body(Full::new(bytes::Bytes::from_static(b"\0\0\0\0\0")))
            .unwrap(),
    )
    .await
    .unwrap();
    let echo = r.echo();
    let grpc = echo
        .header("grpc-timeout")
        .expect("grpc-timeout forwarded for application/grpc");
    let d = parse_grpc_timeout(grpc.as_bytes()).expect("valid grpc-timeout");
    assert!(
        d <= Duration::from_secs(3),
        "grpc-timeout {grpc} exceeds the 3s route timeout"
    );
    assert!(
        d >= Duration::from_secs(1),
        "grpc-timeout {grpc} is implausibly small"
    );
    assert_eq!(echo.body_bytes, 5);
}
