//! What each endpoint answers, and how it refuses bad input.

use std::time::Duration;

use bytes::Bytes;
use http::Request;
use http_body_util::{BodyExt, Full};
use seawall_sim::{EchoReport, MAX_BODY_BYTES};
use tokio::time::Instant;

use crate::client::{H1, sim};

const PATTERN: &[u8] = b"0123456789abcdef";

#[tokio::test]
async fn root_says_hello_as_plain_text() {
    let sim = sim().await;
    let reply = H1::connect(sim.local_addr()).await.get("/").await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.text(), "hello from seawall sim\n");
    assert!(reply.header("content-type").starts_with("text/plain"));
    assert_eq!(reply.header("content-length"), "23");
}

#[tokio::test]
async fn status_answers_with_the_requested_code() {
    let sim = sim().await;
    let mut client = H1::connect(sim.local_addr()).await;
    for code in [200, 204, 302, 429, 503, 599, 999] {
        let reply = client.get(&format!("/status/{code}")).await;
        assert_eq!(reply.status, code);
    }
    assert_eq!(
        client.get("/status/503").await.text(),
        "503 Service Unavailable\n"
    );
}

#[tokio::test]
async fn status_refuses_codes_it_cannot_send_with_a_400_that_says_why() {
    let sim = sim().await;
    let mut client = H1::connect(sim.local_addr()).await;
    for bad in ["abc", "1000", "100", "42", "", "200/x"] {
        let reply = client.get(&format!("/status/{bad}")).await;
        assert_eq!(reply.status, 400, "/status/{bad}");
        assert!(
            reply.text().starts_with("invalid status"),
            "{}",
            reply.text()
        );
    }
}

#[tokio::test]
async fn delay_holds_back_the_head_for_the_duration() {
    let sim = sim().await;
    let mut client = H1::connect(sim.local_addr()).await;
    let start = Instant::now();
    let response = client.send(crate::client::get("/delay/300ms")).await;
    let elapsed = start.elapsed();
    assert_eq!(response.status(), 200);
    assert!(elapsed >= Duration::from_millis(300), "{elapsed:?}");
    assert!(elapsed < Duration::from_secs(3), "{elapsed:?}");
}

#[tokio::test]
async fn delay_refuses_a_duration_without_a_unit() {
    let sim = sim().await;
    let reply = H1::connect(sim.local_addr()).await.get("/delay/300").await;
    assert_eq!(reply.status, 400);
    assert!(reply.text().contains("expected a duration like 100ms"));
}

#[tokio::test]
async fn drip_delivers_exactly_n_bytes_spread_over_the_duration() {
    let sim = sim().await;
    let mut client = H1::connect(sim.local_addr()).await;
    let response = client
        .send(crate::client::get("/drip?bytes=20&duration=600ms"))
        .await;
    let head_at = Instant::now();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-length"], "20");
    let mut body = response.into_body();
    let mut chunks = Vec::new();
    while let Some(frame) = body.frame().await {
        chunks.push((head_at.elapsed(), frame.unwrap().into_data().unwrap()));
    }
    let total: usize = chunks.iter().map(|(_, data)| data.len()).sum();
    assert_eq!(total, 20);
    assert!(chunks.len() >= 5, "{} chunks", chunks.len());
    let (first, _) = chunks[0];
    let (last, _) = chunks[chunks.len() - 1];
    assert!(
        first < Duration::from_millis(300),
        "first chunk at {first:?}"
    );
    assert!(last >= Duration::from_millis(500), "last chunk at {last:?}");
    assert!(last < Duration::from_secs(3), "last chunk at {last:?}");
}

#[tokio::test]
async fn drip_delay_waits_before_the_head() {
    let sim = sim().await;
    let mut client = H1::connect(sim.local_addr()).await;
    let start = Instant::now();
    let response = client
        .send(crate::client::get(
            "/drip?bytes=1&duration=10ms&delay=300ms",
        ))
        .await;
    assert!(start.elapsed() >= Duration::from_millis(300));
    let body = response.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(&body[..], b"0");
}

#[tokio::test]
async fn drip_refuses_unknown_parameters() {
    let sim = sim().await;
    let reply = H1::connect(sim.local_addr())
        .await
        .get("/drip?byte=5")
        .await;
    assert_eq!(reply.status, 400);
    assert!(reply.text().contains("unknown drip parameter"));
}

#[tokio::test]
async fn bytes_sends_exactly_n_bytes_of_the_pattern_with_content_length() {
    let sim = sim().await;
    let mut client = H1::connect(sim.local_addr()).await;
    for n in [0usize, 1, 17, 300_001] {
        let reply = client.get(&format!("/bytes/{n}")).await;
        assert_eq!(reply.status, 200);
        assert_eq!(reply.header("content-length"), n.to_string());
        assert_eq!(reply.body.len(), n);
        let intact = reply
            .body
            .iter()
            .enumerate()
            .all(|(i, byte)| *byte == PATTERN[i % 16]);
        assert!(intact, "/bytes/{n} body is not the pattern");
    }
}

#[tokio::test]
async fn bytes_refuses_more_than_the_cap() {
    let sim = sim().await;
    let mut client = H1::connect(sim.local_addr()).await;
    let reply = client.get(&format!("/bytes/{}", MAX_BODY_BYTES + 1)).await;
    assert_eq!(reply.status, 400);
    assert_eq!(client.get("/bytes/-3").await.status, 400);
}

#[tokio::test]
async fn echo_reflects_method_path_query_headers_and_body_length() {
    let sim = sim().await;
    let mut client = H1::connect(sim.local_addr()).await;
    let request = Request::put("/echo?a=1&b=2")
        .header("host", "sim")
        .header("x-trace", "abc")
        .header("x-many", "1")
        .header("x-many", "2")
        .body(Full::new(Bytes::from(vec![7u8; 1234])))
        .unwrap();
    let response = client.send(request).await;
    assert_eq!(response.headers()["content-type"], "application/json");
    let body = response.into_body().collect().await.unwrap().to_bytes();
    let echo: EchoReport = serde_json::from_slice(&body).unwrap();
    assert_eq!(echo.method, "PUT");
    assert_eq!(echo.path, "/echo");
    assert_eq!(echo.query.as_deref(), Some("a=1&b=2"));
    assert_eq!(echo.version, "HTTP/1.1");
    assert_eq!(echo.header("x-trace"), Some("abc"));
    assert_eq!(echo.header("host"), Some("sim"));
    assert_eq!(echo.header_values("x-many"), ["1", "2"]);
    assert_eq!(echo.body_bytes, 1234);
}

#[tokio::test]
async fn unknown_paths_get_404_listing_the_endpoints() {
    let sim = sim().await;
    let reply = H1::connect(sim.local_addr()).await.get("/nope").await;
    assert_eq!(reply.status, 404);
    for endpoint in ["/status/{code}", "/drip", "/echo", "/__sim/stats"] {
        assert!(reply.text().contains(endpoint), "404 body lacks {endpoint}");
    }
}

#[tokio::test]
async fn any_method_is_accepted() {
    let sim = sim().await;
    let mut client = H1::connect(sim.local_addr()).await;
    let request = Request::delete("/status/202")
        .header("host", "sim")
        .body(Full::default())
        .unwrap();
    assert_eq!(client.send(request).await.status(), 202);
}
