//! An HTTP/2 upstream (`protocol: http2`, h2c to the sim) through the gateway: many
//! concurrent requests travel as streams on one or two connections, requests on an
//! existing connection count as reused, and the request reaches the upstream in HTTP/2
//! form (authority, no `Host`, hop-by-hop headers stripped).

mod support;

use std::collections::HashSet;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use support::*;

async fn gateway(sim: &seawall_sim::Sim, extra: &str) -> TestGateway {
    let yaml = config(
        &[],
        &[route("r", "*", "/", "h2", "10s", "")],
        &[format!(
            "{{name: h2, endpoints: [\"{}\"], protocol: http2{extra}}}",
            sim.local_addr()
        )],
    );
    start(&yaml).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hundred_concurrent_requests_use_at_most_two_upstream_connections() {
    let sim = sim().await;
    let g = gateway(&sim, "").await;
    let mut tasks = Vec::new();
    for _ in 0..200 {
        let addr = g.addr;
        tasks.push(tokio::spawn(async move { get(addr, "/delay/300ms").await }));
    }
    let mut upstream_connections = HashSet::new();
    for task in tasks {
        let r = task.await.unwrap();
        assert_eq!(r.status, 200, "{:?}", r.error());
        upstream_connections.insert(r.header(seawall_sim::CONNECTION_HEADER).unwrap().to_owned());
    }
    let s = sim.stats();
    assert_eq!(s.requests, 200);
    assert!(s.connections_accepted <= 2, "{s:?}");
    assert!(upstream_connections.len() <= 2, "{upstream_connections:?}");
    let m = metrics_text(g.admin).await;
    let requests = |reused| {
        metric(
            &m,
            "seawall_upstream_requests_total",
            &[("upstream", "h2"), ("reused", reused)],
        )
        .unwrap_or(0.0)
    };
    assert_eq!(requests("false"), s.connections_accepted as f64, "{m}");
    assert_eq!(
        requests("true"),
        200.0 - s.connections_accepted as f64,
        "{m}"
    );
    let opened = metric(
        &m,
        "seawall_upstream_connections_opened_total",
        &[("upstream", "h2")],
    );
    assert_eq!(opened, Some(s.connections_accepted as f64));
    // Every stream has ended: the connections are idle, none in use.
    assert!(
        eventually(Duration::from_secs(5), || async {
            let m = metrics_text(g.admin).await;
            metric(
                &m,
                "seawall_upstream_connections_in_use",
                &[("upstream", "h2")],
            ) == Some(0.0)
        })
        .await
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_reach_the_upstream_in_http2_form_with_their_body() {
    let sim = sim().await;
    let g = gateway(&sim, ", http2: {max_concurrent_streams: 10}").await;
    let request = http::Request::post("/echo?x=1")
        .header("host", "api.example")
        .header("connection", "x-hop")
        .header("x-hop", "1")
        .header("x-end-to-end", "kept")
        .body(Full::new(Bytes::from_static(b"twelve bytes")))
        .unwrap();
    let r = send(g.addr, request).await.unwrap();
    assert_eq!(r.status, 200, "{:?}", r.error());
    let echo = r.echo();
    assert_eq!(echo.version, "HTTP/2.0");
    assert_eq!(echo.method, "POST");
    assert_eq!(
        (echo.path.as_str(), echo.query.as_deref()),
        ("/echo", Some("x=1"))
    );
    assert_eq!(echo.body_bytes, 12);
    assert_eq!(echo.header("x-end-to-end"), Some("kept"));
    assert_eq!(
        echo.header("x-hop"),
        None,
        "listed in Connection: hop-by-hop"
    );
    assert_eq!(echo.header("x-forwarded-proto"), Some("http"));
}
