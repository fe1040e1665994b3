//! The endpoints that misbehave on purpose: `/hang`, `/close` and `/reset`.

use std::io::ErrorKind;
use std::time::Duration;

use tokio::io::AsyncReadExt;

use crate::client::{H1, raw_get, sim, wait_for_stats};

#[tokio::test]
async fn close_ends_the_connection_with_eof_and_no_response() {
    let sim = sim().await;
    let mut stream = raw_get(sim.local_addr(), "/close").await;
    let mut received = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut received))
        .await
        .expect("the sim should close the connection");
    assert_eq!(
        read.unwrap(),
        0,
        "got {:?}",
        String::from_utf8_lossy(&received)
    );
}

#[tokio::test]
async fn reset_gives_the_client_a_connection_reset() {
    let sim = sim().await;
    let mut stream = raw_get(sim.local_addr(), "/reset").await;
    let mut buf = [0u8; 64];
    let read = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut buf))
        .await
        .expect("the sim should reset the connection");
    assert_eq!(read.unwrap_err().kind(), ErrorKind::ConnectionReset);
}

#[tokio::test]
async fn close_and_reset_are_not_counted_as_cancelled() {
    let sim = sim().await;
    for path in ["/close", "/reset"] {
        let mut stream = raw_get(sim.local_addr(), path).await;
        let _ = stream.read(&mut [0u8; 16]).await;
    }
    let stats = wait_for_stats(&sim, |s| s.connections_open == 0).await;
    assert_eq!(stats.requests, 2);
    assert_eq!(stats.requests_cancelled, 0);
}

#[tokio::test]
async fn hang_never_answers() {
    let sim = sim().await;
    let mut client = H1::connect(sim.local_addr()).await;
    let answer = tokio::time::timeout(
        Duration::from_millis(300),
        client.send(crate::client::get("/hang")),
    )
    .await;
    assert!(answer.is_err(), "/hang answered");
    assert_eq!(sim.stats().requests_in_flight, 1);
}

#[tokio::test]
async fn hang_counts_as_cancelled_once_the_client_leaves() {
    let sim = sim().await;
    let stream = raw_get(sim.local_addr(), "/hang").await;
    wait_for_stats(&sim, |s| s.requests_in_flight == 1).await;
    assert_eq!(sim.stats().requests_cancelled, 0);
    drop(stream);
    let stats = wait_for_stats(&sim, |s| s.requests_cancelled == 1).await;
    assert_eq!(stats.requests_in_flight, 0);
    wait_for_stats(&sim, |s| s.connections_open == 0).await;
}

#[tokio::test]
async fn a_drip_body_abandoned_midway_counts_as_cancelled() {
    let sim = sim().await;
    let mut stream = raw_get(sim.local_addr(), "/drip?bytes=10&duration=10s").await;
    // Wait for the head, then leave while the body is still dripping.
    let _ = stream.read(&mut [0u8; 512]).await.unwrap();
    assert_eq!(sim.stats().requests_in_flight, 1);
    drop(stream);
    let stats = wait_for_stats(&sim, |s| s.requests_cancelled == 1).await;
    assert_eq!(stats.requests_in_flight, 0);
}
