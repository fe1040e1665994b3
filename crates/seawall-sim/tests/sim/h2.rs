//! h2c with prior knowledge on the same port as HTTP/1.1.

use seawall_sim::EchoReport;

use crate::client::{H1, H2, sim};

#[tokio::test]
async fn h2c_prior_knowledge_requests_are_served_on_the_same_port() {
    let sim = sim().await;
    let mut h2 = H2::connect(sim.local_addr()).await;
    let reply = h2.get("/").await;
    assert_eq!(reply.status, 200);
    assert!(reply.text().contains("hello"));
    let echo: EchoReport = serde_json::from_slice(&h2.get("/echo").await.body).unwrap();
    assert_eq!(echo.version, "HTTP/2.0");
    // The same port still speaks HTTP/1.1.
    assert_eq!(
        H1::connect(sim.local_addr()).await.get("/").await.status,
        200
    );
}

#[tokio::test]
async fn h2_streams_share_one_connection() {
    let sim = sim().await;
    let mut h2 = H2::connect(sim.local_addr()).await;
    for _ in 0..5 {
        let reply = h2.get("/bytes/100000").await;
        assert_eq!(reply.body.len(), 100_000);
        assert_eq!(reply.header("sim-connection"), "1");
    }
    let stats = sim.stats();
    assert_eq!(stats.connections_accepted, 1);
    assert_eq!(stats.requests, 5);
}

#[tokio::test]
async fn h2_hang_counts_as_cancelled_when_the_client_cancels_the_stream() {
    let sim = sim().await;
    let h2 = H2::connect(sim.local_addr()).await;
    let mut sender = h2.into_sender();
    let request = http::Request::get("http://sim/hang")
        .body(Default::default())
        .unwrap();
    let pending = tokio::spawn(async move { sender.send_request(request).await });
    crate::client::wait_for_stats(&sim, |s| s.requests_in_flight == 1).await;
    pending.abort();
    let stats = crate::client::wait_for_stats(&sim, |s| s.requests_cancelled == 1).await;
    assert_eq!(stats.requests_in_flight, 0);
}
