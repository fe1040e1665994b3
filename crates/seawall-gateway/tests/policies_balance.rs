//! Load balancing and outlier ejection through the real gateway: `p2c_ewma` (the default)
//! steers traffic away from a slow endpoint that `round_robin` would keep feeding, and an
//! endpoint failing `consecutive_failures` times in a row is ejected and shown as such in
//! `/upstreams`.

mod support;

use std::{net::SocketAddr, sync::atomic::Ordering, time::Duration};

use support::*;

const MS: fn(u64) -> Duration = Duration::from_millis;
const OK: &[u8] = b"HTTP/1.1 200 OK\r\ncontent-length: 3\r\n\r\nok\n";
const UNAVAILABLE: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\ncontent-length: 0\r\n\r\n";

fn yaml(endpoints: &[SocketAddr], upstream_extra: &str) -> String {
    let eps: Vec<String> = endpoints.iter().map(|e| format!("\"{e}\"")).collect();
    config(
        &[],
        &[route("r", "*", "/", "up", "5s", "")],
        &[format!(
            "{{name: up, endpoints: [{}], {upstream_extra}}}",
            eps.join(", ")
        )],
    )
}

async fn spread(balancer: &str) -> (usize, usize) {
    let (fast, fast_seen) = raw_server(MS(0), OK).await;
    let (slow, slow_seen) = raw_server(MS(40), OK).await;
    let g = start(&yaml(&[fast, slow], balancer)).await;
    let mut c = Conn::open(g.addr).await;
    for _ in 0..100 {
        assert_eq!(c.get("/").await.status, 200);
    }
    (
        fast_seen.load(Ordering::Relaxed),
        slow_seen.load(Ordering::Relaxed),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_default_balancer_avoids_a_slow_endpoint() {
    let (fast, slow) = spread("timeouts: {}").await;
    assert_eq!(fast + slow, 100);
    assert!(
        slow <= 10,
        "p2c_ewma sent {slow} of 100 requests to the slow endpoint"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upstreams_shows_the_balancer_cost_in_milliseconds_like_the_estimate() {
    let (slow, _) = raw_server(MS(50), OK).await;
    let g = start(&yaml(&[slow], "timeouts: {}")).await;
    for _ in 0..5 {
        assert_eq!(get(g.addr, "/").await.status, 200);
    }
    let view = admin_get(g.admin, "/upstreams").await;
    let json: serde_json::Value = serde_json::from_slice(&view.body).unwrap();
    let e = &json["upstreams"][0]["endpoints"][0];
    assert!(e.get("cost").is_none(), "{e}");
    let rtt = e["rtt_estimate_ms"].as_f64().unwrap();
    let cost = e["cost_ms"].as_f64().unwrap();
    // Nothing pending: cost = estimate × (0 + 1), both in ms (about 50, not 0.05).
    assert_eq!(e["pending"], 0, "{e}");
    assert!((cost - rtt).abs() < 1e-6 && cost > 20.0, "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn round_robin_shares_requests_evenly_whatever_the_latency() {
    let (fast, slow) = spread("balancer: round_robin").await;
    assert_eq!((fast, slow), (50, 50));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_endpoint_failing_in_a_row_is_ejected_until_its_ejection_time_passes() {
    let (healthy, healthy_seen) = raw_server(MS(0), OK).await;
    let (broken, broken_seen) = raw_server(MS(0), UNAVAILABLE).await;
    let outlier = "balancer: round_robin, outlier: {consecutive_failures: 3, base_ejection_time: 500ms, max_ejection_time: 1s}";
    let g = start(&yaml(&[broken, healthy], outlier)).await;
    let mut statuses = Vec::new();
    for _ in 0..30 {
        statuses.push(get(g.addr, "/").await.status);
    }
    let failures = statuses.iter().filter(|s| **s == 503).count();
    assert_eq!(
        failures, 3,
        "ejected after its third failure in a row: {statuses:?}"
    );
    assert_eq!(broken_seen.load(Ordering::Relaxed), 3);
    assert_eq!(healthy_seen.load(Ordering::Relaxed), 27);

    let up = admin_get(g.admin, "/upstreams").await;
    let v: serde_json::Value = serde_json::from_slice(&up.body).unwrap();
    let endpoints = &v["upstreams"][0]["endpoints"];
    assert_eq!(endpoints[0]["state"], "ejected", "{v}");
    assert_eq!(endpoints[1]["state"], "active");
    let m = metrics_text(g.admin).await;
    let ejected = [("upstream", "up"), ("reason", "ejected")];
    assert_eq!(
        metric(&m, "seawall_outlier_events_total", &ejected),
        Some(1.0)
    );
    assert_eq!(
        metric(&m, "seawall_endpoints_ejected", &[("upstream", "up")]),
        Some(1.0)
    );

    // After the ejection time it gets traffic again.
    tokio::time::sleep(MS(600)).await;
    for _ in 0..4 {
        get(g.addr, "/").await;
    }
    assert!(
        broken_seen.load(Ordering::Relaxed) > 3,
        "the endpoint returned"
    );
    let m = metrics_text(g.admin).await;
    let returned = [("upstream", "up"), ("reason", "returned")];
    assert_eq!(
        metric(&m, "seawall_outlier_events_total", &returned),
        Some(1.0)
    );
}
