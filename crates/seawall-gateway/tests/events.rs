//! `GET /events` through the real admin API: token-protected like `/config` (401 without
//! it), a `text/event-stream` answer, and a runtime fault that makes the upstream fail
//! shows in the stream as `fault_on`, then as the breaker opening (`closed -> open`); a
//! fault that ends by its `ttl` shows as `fault_off`, as a deleted one does.
//!
//! Admin token: tests cannot `set_var` (no `unsafe`); `admin.token_env` points at
//! `CARGO_PKG_NAME`, which cargo sets to `seawall-gateway` for this test binary.

mod support;

use std::time::{Duration, Instant};

use bytes::Bytes;
use http::Method;
use http_body_util::Full;
use support::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const TOKEN: &str = "seawall-gateway";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_breaker_opening_under_a_fault_is_streamed() {
    let sim = sim().await;
    let yaml = config_with(
        "admin: {listen: 127.0.0.1:0, token_env: CARGO_PKG_NAME}",
        &[],
        &[route("r", "*", "/", "up", "5s", "access_log")],
        &[format!(
            "{{name: up, endpoints: [\"{}\"], breaker: {{window: 2s, min_calls: 3, failure_ratio: 0.5, open_duration: 10s}}}}",
            sim.local_addr()
        )],
    );
    let g = start(&yaml).await;
    assert_eq!(admin_get(g.admin, "/events").await.status, 401);

    let mut stream = tokio::net::TcpStream::connect(g.admin).await.unwrap();
    let head =
        format!("GET /events HTTP/1.1\r\nHost: admin\r\nAuthorization: Bearer {TOKEN}\r\n\r\n");
    stream.write_all(head.as_bytes()).await.unwrap();
    let head = read_head(&mut stream, Duration::from_secs(5)).await;
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert!(
        head.to_ascii_lowercase().contains("text/event-stream"),
        "{head}"
    );

    let put = req(Method::PUT, "/faults/down")
        .header("authorization", format!("Bearer {TOKEN}"))
        .body(Full::new(Bytes::from(
            r#"{"upstream": "up", "abort": {"status": 503}}"#,
        )))
        .unwrap();
    assert_eq!(send(g.admin, put).await.unwrap().status, 200);
    for _ in 0..6 {
        get(g.addr, "/").await;
    }
    let mut seen = String::new();
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut buf = [0u8; 4096];
    while !(seen.contains("event: fault_on") && seen.contains("closed -> open")) {
        let left = deadline.saturating_duration_since(Instant::now());
        assert!(!left.is_zero(), "not streamed in 5 s: {seen}");
        if let Ok(Ok(n)) = tokio::time::timeout(left, stream.read(&mut buf)).await {
            assert!(n > 0, "stream closed: {seen}");
            seen.push_str(&String::from_utf8_lossy(&buf[..n]));
        }
    }
    assert!(seen.contains("event: breaker"), "{seen}");
    assert!(seen.contains(r#""name":"up""#), "{seen}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fault_that_expires_by_its_ttl_is_streamed_as_fault_off() {
    let sim = sim().await;
    let yaml = config_with(
        "admin: {listen: 127.0.0.1:0, token_env: CARGO_PKG_NAME}",
        &[],
        &[route("r", "*", "/", "up", "5s", "")],
        &[format!(
            "{{name: up, endpoints: [\"{}\"]}}",
            sim.local_addr()
        )],
    );
    let g = start(&yaml).await;
    let mut stream = tokio::net::TcpStream::connect(g.admin).await.unwrap();
    let head =
        format!("GET /events HTTP/1.1\r\nHost: admin\r\nAuthorization: Bearer {TOKEN}\r\n\r\n");
    stream.write_all(head.as_bytes()).await.unwrap();
    let head = read_head(&mut stream, Duration::from_secs(5)).await;
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");

    let put = req(Method::PUT, "/faults/brief")
        .header("authorization", format!("Bearer {TOKEN}"))
        .body(Full::new(Bytes::from(
            r#"{"upstream": "up", "ttl": "300ms", "abort": {"status": 503}}"#,
        )))
        .unwrap();
    assert_eq!(send(g.admin, put).await.unwrap().status, 200);
    let mut seen = String::new();
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut buf = [0u8; 4096];
    while !seen.contains("event: fault_off") {
        let left = deadline.saturating_duration_since(Instant::now());
        assert!(!left.is_zero(), "no fault_off within 10 s: {seen}");
        if let Ok(Ok(n)) = tokio::time::timeout(left, stream.read(&mut buf)).await {
            assert!(n > 0, "stream closed: {seen}");
            seen.push_str(&String::from_utf8_lossy(&buf[..n]));
        }
    }
    assert!(seen.contains("ttl expired"), "{seen}");
    assert!(seen.contains(r#""name":"brief""#), "{seen}");
}
