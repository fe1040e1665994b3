//! The counters: connection reuse, requests, and the stats endpoint itself.

use std::time::Duration;

use seawall_sim::StatsSnapshot;
use tokio::io::AsyncReadExt;

use crate::client::{H1, raw_get, sim, wait_for_stats};

#[tokio::test]
async fn ten_requests_on_one_keep_alive_connection_count_one_connection() {
    let sim = sim().await;
    let mut client = H1::connect(sim.local_addr()).await;
    let mut ids = Vec::new();
    for _ in 0..10 {
        let reply = client.get("/").await;
        ids.push(reply.header("sim-connection").to_owned());
    }
    assert!(ids.iter().all(|id| id == "1"), "{ids:?}");
    let stats = sim.stats();
    assert_eq!(stats.connections_accepted, 1);
    assert_eq!(stats.connections_open, 1);
    assert_eq!(stats.requests, 10);
    assert_eq!(stats.requests_in_flight, 0);
    assert_eq!(stats.requests_cancelled, 0);
}

#[tokio::test]
async fn each_connection_gets_its_own_id_header() {
    let sim = sim().await;
    let first = H1::connect(sim.local_addr()).await.get("/").await;
    let second = H1::connect(sim.local_addr()).await.get("/nope").await;
    assert_eq!(first.header("sim-connection"), "1");
    assert_eq!(second.header("sim-connection"), "2");
}

#[tokio::test]
async fn stats_endpoint_serves_the_counters_without_counting_itself() {
    let sim = sim().await;
    let mut client = H1::connect(sim.local_addr()).await;
    client.get("/").await;
    client.get("/status/500").await;
    let reply = client.get("/__sim/stats").await;
    let served: StatsSnapshot = serde_json::from_slice(&reply.body).unwrap();
    assert_eq!(
        served,
        StatsSnapshot {
            connections_accepted: 1,
            connections_open: 1,
            requests: 2,
            requests_cancelled: 0,
            requests_in_flight: 0,
        }
    );
    assert_eq!(sim.stats(), served);
}

#[tokio::test]
async fn closed_connections_leave_the_open_count() {
    let sim = sim().await;
    {
        let mut client = H1::connect(sim.local_addr()).await;
        client.get("/").await;
    }
    let stats = wait_for_stats(&sim, |s| s.connections_open == 0).await;
    assert_eq!(stats.connections_accepted, 1);
}

#[tokio::test]
async fn shutdown_closes_open_connections_and_stops_accepting() {
    let sim = sim().await;
    let addr = sim.local_addr();
    let mut hanging = raw_get(addr, "/hang").await;
    wait_for_stats(&sim, |s| s.requests_in_flight == 1).await;
    sim.shutdown().await;
    let read = tokio::time::timeout(Duration::from_secs(5), hanging.read(&mut [0u8; 16]))
        .await
        .expect("shutdown should close the hanging connection");
    assert!(matches!(read, Ok(0) | Err(_)), "{read:?}");
    assert!(tokio::net::TcpStream::connect(addr).await.is_err());
}

#[tokio::test]
async fn serve_stops_when_its_shutdown_future_resolves() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(seawall_sim::serve(listener, async move {
        let _ = stopped.await;
    }));
    let reply = H1::connect(addr).await.get("/").await;
    assert!(reply.text().contains("hello"));
    stop.send(()).unwrap();
    let result = tokio::time::timeout(Duration::from_secs(5), server).await;
    assert!(matches!(result, Ok(Ok(Ok(())))), "{result:?}");
}

#[tokio::test]
async fn head_requests_for_generated_bodies_are_not_counted_cancelled() {
    let sim = sim().await;
    let mut client = H1::connect(sim.local_addr()).await;
    let request = http::Request::head("/bytes/1000")
        .header("host", "sim")
        .body(Default::default())
        .unwrap();
    let response = client.send(request).await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-length"], "1000");
    let stats = sim.stats();
    assert_eq!((stats.requests_in_flight, stats.requests_cancelled), (0, 0));
}
