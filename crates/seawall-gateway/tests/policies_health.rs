//! Active health checks through the real gateway: of two endpoints, the one answering 503
//! on the health path is marked unhealthy (in `/upstreams` and the gauge) and gets no more
//! traffic; when every endpoint is unhealthy they are all used (panic routing); and a
//! reload that drops the health check stops the probes.

mod support;

use std::{
    net::SocketAddr,
    sync::{Arc, atomic::AtomicUsize, atomic::Ordering},
    time::Duration,
};

use support::*;

const MS: fn(u64) -> Duration = Duration::from_millis;

const UNAVAILABLE: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\ncontent-length: 4\r\n\r\nsick";

const CHECK: &str = "health_check: {path: /, interval: 100ms, timeout: 80ms, unhealthy_threshold: 2, healthy_threshold: 1}";

fn yaml(endpoints: &[SocketAddr], health: &str) -> String {
    let eps: Vec<String> = endpoints.iter().map(|e| format!("\"{e}\"")).collect();
    config(
        &[],
        &[route("r", "*", "/", "up", "5s", "")],
        &[format!(
            "{{name: up, endpoints: [{}], balancer: round_robin{health}}}",
            eps.join(", ")
        )],
    )
}

async fn healths(g: &TestGateway) -> Vec<String> {
    let r = admin_get(g.admin, "/upstreams").await;
    let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
    v["upstreams"][0]["endpoints"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["health"].as_str().unwrap_or("-").to_owned())
        .collect()
}

async fn sick_server() -> (SocketAddr, Arc<AtomicUsize>) {
    raw_server(MS(0), UNAVAILABLE).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_endpoint_failing_its_health_check_gets_no_traffic() {
    let good = sim().await;
    let (sick, _) = sick_server().await;
    let g = start(&yaml(&[sick, good.local_addr()], &format!(", {CHECK}"))).await;
    let marked = eventually(MS(3000), || async {
        healths(&g).await == ["unhealthy", "healthy"]
    })
    .await;
    assert!(marked, "{:?}", healths(&g).await);
    let m = metrics_text(g.admin).await;
    assert_eq!(
        metric(&m, "seawall_endpoints_unhealthy", &[("upstream", "up")]),
        Some(1.0),
        "{m}"
    );
    assert!(
        metric(
            &m,
            "seawall_health_checks_total",
            &[("upstream", "up"), ("reason", "failed")]
        )
        .unwrap_or(0.0)
            >= 2.0,
        "{m}"
    );
    for i in 0..10 {
        let r = get(g.addr, "/").await;
        assert_eq!(r.status, 200, "request {i} went to the healthy endpoint");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn when_every_endpoint_is_unhealthy_all_are_used() {
    let (a, _) = sick_server().await;
    let (b, _) = sick_server().await;
    let g = start(&yaml(&[a, b], &format!(", {CHECK}"))).await;
    let marked = eventually(MS(3000), || async {
        healths(&g).await == ["unhealthy", "unhealthy"]
    })
    .await;
    assert!(marked, "{:?}", healths(&g).await);
    let r = get(g.addr, "/").await;
    assert_eq!(r.status, 503);
    assert_eq!(
        r.text(),
        "sick",
        "the upstream's own answer, not no_endpoint"
    );
    assert!(r.error().is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reload_without_the_health_check_stops_the_probes() {
    let (sick, probes) = sick_server().await;
    let good = sim().await;
    let eps = [sick, good.local_addr()];
    let g = start(&yaml(&eps, &format!(", {CHECK}"))).await;
    assert!(eventually(MS(3000), || async { probes.load(Ordering::Relaxed) >= 2 }).await);
    g.gw.apply(seawall_config::parse("t.yaml", &yaml(&eps, "")).unwrap())
        .await
        .expect("reload");
    // At most one round was under way when the old upstream was dropped.
    tokio::time::sleep(MS(200)).await;
    let after = probes.load(Ordering::Relaxed);
    tokio::time::sleep(MS(500)).await;
    assert_eq!(
        probes.load(Ordering::Relaxed),
        after,
        "no probe after the reload"
    );
    assert_eq!(
        healths(&g).await,
        ["-", "-"],
        "no health state without the check"
    );
}
