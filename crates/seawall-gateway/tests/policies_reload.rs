//! Policy state across hot reloads, through the real gateway: the retry budget and the
//! bulkhead of an upstream whose config a reload leaves unchanged carry over (spent
//! retries stay spent; a try in flight still holds its slot), and start afresh when the
//! upstream's config changes. (The breaker's case is in `policies_breaker.rs`.)

mod support;

use std::{net::SocketAddr, time::Duration};

use support::*;

const MS: fn(u64) -> Duration = Duration::from_millis;

fn yaml(endpoints: &[SocketAddr], upstream_extra: &str, timeout: &str) -> String {
    let eps: Vec<String> = endpoints.iter().map(|e| format!("\"{e}\"")).collect();
    let r = route("r", "*", "/", "up", timeout, "");
    let r = format!("{}, retry: {{max_attempts: 2}}}}", r.trim_end_matches('}'));
    config(
        &[],
        &[r],
        &[format!(
            "{{name: up, endpoints: [{}], balancer: round_robin{upstream_extra}}}",
            eps.join(", ")
        )],
    )
}

async fn budget(g: &TestGateway) -> serde_json::Value {
    let r = admin_get(g.admin, "/upstreams").await;
    let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
    v["upstreams"][0]["retry_budget"].clone()
}

async fn apply(g: &TestGateway, yaml: &str) {
    g.gw.apply(seawall_config::parse("t.yaml", yaml).unwrap())
        .await
        .expect("reload");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_retry_budget_survives_an_unchanged_upstream_and_resets_when_it_changes() {
    let sim = sim().await;
    let dead = {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        l.local_addr().unwrap()
    };
    let eps = [dead, sim.local_addr()];
    let g = start(&yaml(&eps, "", "5s")).await;
    for _ in 0..6 {
        assert_eq!(get(g.addr, "/").await.status, 200);
    }
    let before = budget(&g).await;
    let spent = before["withdrawn_total"].as_u64().unwrap();
    assert!(spent >= 1, "retries were spent: {before}");

    // Another route timeout, same upstream: the same budget, spent retries still counted.
    apply(&g, &yaml(&eps, "", "6s")).await;
    let kept = budget(&g).await;
    assert_eq!(kept["withdrawn_total"].as_u64(), Some(spent), "{kept}");
    assert_eq!(kept["requests"], before["requests"], "{kept}");

    // The budget's settings change: a fresh budget.
    let changed = ", retry_budget: {ratio: 0.5}";
    apply(&g, &yaml(&eps, changed, "6s")).await;
    let fresh = budget(&g).await;
    assert_eq!(fresh["withdrawn_total"], 0, "{fresh}");
    assert_eq!(fresh["requests"], 0, "{fresh}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bulkhead_slot_in_flight_survives_an_unchanged_upstream_and_not_a_changed_one() {
    let sim = sim().await;
    let full = ", concurrency: {max_concurrent: 1, max_pending: 0}";
    let g = start(&yaml(&[sim.local_addr()], full, "5s")).await;
    let slow = tokio::spawn(get(g.addr, "/delay/1500ms"));
    tokio::time::sleep(MS(300)).await;
    assert_eq!(get(g.addr, "/").await.error(), Some("overloaded"));

    // Unchanged upstream: the slow try still holds the one slot.
    apply(&g, &yaml(&[sim.local_addr()], full, "6s")).await;
    assert_eq!(get(g.addr, "/").await.error(), Some("overloaded"));

    // A changed bulkhead is a new one: the slow try's slot is not in it.
    let wider = ", concurrency: {max_concurrent: 1, max_pending: 1}";
    apply(&g, &yaml(&[sim.local_addr()], wider, "6s")).await;
    assert_eq!(get(g.addr, "/").await.status, 200);
    assert_eq!(slow.await.unwrap().status, 200);
}
