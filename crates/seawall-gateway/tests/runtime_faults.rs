//! Runtime faults through the real admin API: `PUT /faults/{name}` on an upstream or a
//! route faults the next requests, `DELETE` stops it; `GET /faults` lists config and
//! runtime rules with their counts and ttl; the `seawall_faults_active` gauge follows;
//! `PUT`/`DELETE` need the token like `POST /reload` (401 with a wrong one, 403 when the
//! gateway has none); a bad rule is a 400 naming its key; an unknown name a 404; a rule
//! with `ttl: 2s` is gone after 2 s; a reload keeps the runtime faults whose target
//! remains and drops the others.
//!
//! Admin token: tests cannot `set_var` (no `unsafe`); `admin.token_env` points at
//! `CARGO_PKG_NAME`, which cargo sets to `seawall-gateway` for this test binary.

mod support;

use std::{
    net::SocketAddr,
    time::{Duration, Instant},
};

use bytes::Bytes;
use http::Method;
use http_body_util::Full;
use support::*;

const MS: fn(u64) -> Duration = Duration::from_millis;
const TOKEN: &str = "seawall-gateway";
const WITH_TOKEN: &str = "admin: {listen: 127.0.0.1:0, token_env: CARGO_PKG_NAME}";

fn yaml(sim: SocketAddr, top: &str, upstream_extra: &str) -> String {
    config_with(
        top,
        &[],
        &[route("r", "*", "/", "up", "5s", "access_log")],
        &[
            format!("{{name: up, endpoints: [\"{sim}\"] {upstream_extra}}}"),
            format!("{{name: spare, endpoints: [\"{sim}\"]}}"),
        ],
    )
}

async fn admin(
    g: &TestGateway,
    method: Method,
    path: &str,
    body: &str,
    token: Option<&str>,
) -> Resp {
    let mut b = req(method, path).header("content-type", "application/json");
    if let Some(t) = token {
        b = b.header("authorization", format!("Bearer {t}"));
    }
    send(
        g.admin,
        b.body(Full::new(Bytes::from(body.to_owned()))).unwrap(),
    )
    .await
    .expect("admin answers")
}

async fn put(g: &TestGateway, name: &str, body: &str) -> Resp {
    admin(
        g,
        Method::PUT,
        &format!("/faults/{name}"),
        body,
        Some(TOKEN),
    )
    .await
}

async fn faults(g: &TestGateway) -> Vec<serde_json::Value> {
    let r = admin(g, Method::GET, "/faults", "", Some(TOKEN)).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
    v["faults"].as_array().cloned().unwrap_or_default()
}

async fn active(g: &TestGateway, scope: &str, target: &str) -> Option<f64> {
    let m = metrics_text(g.admin).await;
    metric(
        &m,
        "seawall_faults_active",
        &[("scope", scope), ("target", target)],
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fault_put_on_an_upstream_faults_requests_until_it_is_deleted() {
    let sim = sim().await;
    let g = start(&yaml(sim.local_addr(), WITH_TOKEN, "")).await;
    assert_eq!(get(g.addr, "/").await.status, 200);

    let r = put(
        &g,
        "drill",
        r#"{"upstream": "up", "abort": {"status": 503}}"#,
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    for _ in 0..3 {
        let r = get(g.addr, "/").await;
        assert_eq!(r.status, 503);
        assert_eq!(r.header("seawall-fault"), Some("drill"));
    }
    assert_eq!(
        sim.stats().requests,
        1,
        "faulted tries never reach the upstream"
    );
    let listed = faults(&g).await;
    let drill = listed
        .iter()
        .find(|f| f["name"] == "drill")
        .expect("listed");
    assert_eq!(drill["source"], "runtime");
    assert_eq!(
        (drill["scope"].as_str(), drill["target"].as_str()),
        (Some("upstream"), Some("up"))
    );
    assert_eq!(drill["injected"], 3);
    assert_eq!(active(&g, "upstream", "up").await, Some(1.0));
    let m = metrics_text(g.admin).await;
    let labels = [
        ("scope", "upstream"),
        ("target", "up"),
        ("fault", "drill"),
        ("action", "abort"),
    ];
    assert_eq!(
        metric(&m, "seawall_faults_injected_total", &labels),
        Some(3.0)
    );

    let r = admin(&g, Method::DELETE, "/faults/drill", "", Some(TOKEN)).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let r = get(g.addr, "/").await;
    assert_eq!((r.status, r.header("seawall-fault")), (200, None));
    assert_eq!(active(&g, "upstream", "up").await, Some(0.0));
    assert!(faults(&g).await.iter().all(|f| f["name"] != "drill"));

    let r = admin(&g, Method::DELETE, "/faults/drill", "", Some(TOKEN)).await;
    assert_eq!(r.status, 404, "{}", r.text());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fault_put_on_a_route_acts_client_facing() {
    let sim = sim().await;
    let g = start(&yaml(sim.local_addr(), WITH_TOKEN, "")).await;
    let r = put(
        &g,
        "slow",
        r#"{"route": "r", "match": {"path_prefix": "/slow"}, "delay": {"fixed": "300ms"}}"#,
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let started = Instant::now();
    let r = get(g.addr, "/slow/echo").await;
    assert_between("delayed", started.elapsed(), MS(290), MS(2000));
    assert_eq!((r.status, r.header("seawall-fault")), (404, Some("slow")));
    let r = get(g.addr, "/echo").await;
    assert_eq!((r.status, r.header("seawall-fault")), (200, None));

    let r = put(&g, "gone", r#"{"route": "r", "abort": {"status": 418}}"#).await;
    assert_eq!(r.status, 200);
    let r = get(g.addr, "/echo").await;
    assert_eq!((r.status, r.header("seawall-fault")), (418, Some("gone")));
    assert_eq!(active(&g, "route", "r").await, Some(2.0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changing_faults_needs_the_token_like_reload() {
    let sim = sim().await;
    let g = start(&yaml(sim.local_addr(), WITH_TOKEN, "")).await;
    let body = r#"{"upstream": "up", "abort": {"status": 503}}"#;
    for token in [None, Some("wrong")] {
        let r = admin(&g, Method::PUT, "/faults/x", body, token).await;
        assert_eq!(r.status, 401, "{token:?}");
        let r = admin(&g, Method::DELETE, "/faults/x", "", token).await;
        assert_eq!(r.status, 401, "{token:?}");
        let r = admin(&g, Method::GET, "/faults", "", token).await;
        assert_eq!(r.status, 401, "{token:?}");
    }
    assert_eq!(get(g.addr, "/").await.status, 200, "nothing was set");

    // Without a configured token, changes are refused outright; the list is readable.
    let open = start(&yaml(sim.local_addr(), "", "")).await;
    let r = admin(&open, Method::PUT, "/faults/x", body, None).await;
    assert_eq!(r.status, 403, "{}", r.text());
    let r = admin(&open, Method::DELETE, "/faults/x", "", None).await;
    assert_eq!(r.status, 403);
    let r = admin(&open, Method::GET, "/faults", "", None).await;
    assert_eq!(r.status, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_rule_is_a_400_naming_its_key() {
    let sim = sim().await;
    let g = start(&yaml(sim.local_addr(), WITH_TOKEN, "")).await;
    let r = put(
        &g,
        "x",
        r#"{"upstream": "up", "percentage": 150, "abort": {"status": 503}}"#,
    )
    .await;
    assert_eq!(r.status, 400);
    let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(v["problems"][0]["key"], "percentage", "{v}");
    assert!(
        v["error"].as_str().unwrap().contains("between 0 and 100"),
        "{v}"
    );
    assert!(v["problems"][0]["hint"].is_string(), "{v}");

    let r = put(&g, "x", r#"{"upstream": "nope", "abort": {"status": 503}}"#).await;
    assert_eq!(r.status, 400);
    assert!(r.text().contains("upstream"), "{}", r.text());
    let r = put(&g, "x", r#"{"upstream": "up", "abort": {"stauts": 503}}"#).await;
    assert_eq!(r.status, 400);
    assert!(r.text().contains("stauts"), "{}", r.text());
    let r = put(&g, "x", "not json").await;
    assert_eq!(r.status, 400);
    assert!(faults(&g).await.is_empty());
    assert_eq!(get(g.addr, "/").await.status, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fault_with_a_ttl_is_gone_after_it() {
    let sim = sim().await;
    let g = start(&yaml(sim.local_addr(), WITH_TOKEN, "")).await;
    let r = put(
        &g,
        "brief",
        r#"{"upstream": "up", "ttl": "2s", "abort": {"status": 503}}"#,
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let started = Instant::now();
    assert_eq!(get(g.addr, "/").await.status, 503);
    let listed = faults(&g).await;
    let left = listed[0]["ttl_remaining_ms"].as_u64().expect("ttl left");
    assert!((1000..=2000).contains(&left), "{left}");

    tokio::time::sleep(Duration::from_secs(2).saturating_sub(started.elapsed()) + MS(300)).await;
    let r = get(g.addr, "/").await;
    assert_eq!((r.status, r.header("seawall-fault")), (200, None));
    assert!(
        eventually(MS(2000), || async { faults(&g).await.is_empty() }).await,
        "the sweep removed it"
    );
    assert_eq!(active(&g, "upstream", "up").await, Some(0.0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reload_keeps_runtime_faults_whose_target_remains() {
    let sim = sim().await;
    let g = start(&yaml(
        sim.local_addr(),
        WITH_TOKEN,
        ", faults: [{name: from_config, percentage: 0, abort: {status: 500}}]",
    ))
    .await;
    assert_eq!(
        put(
            &g,
            "on_up",
            r#"{"upstream": "up", "abort": {"status": 503}}"#
        )
        .await
        .status,
        200
    );
    assert_eq!(
        put(
            &g,
            "on_spare",
            r#"{"upstream": "spare", "abort": {"status": 503}}"#
        )
        .await
        .status,
        200
    );
    let names = |fs: Vec<serde_json::Value>| {
        let mut n: Vec<String> = fs
            .iter()
            .map(|f| f["name"].as_str().unwrap().to_owned())
            .collect();
        n.sort();
        n
    };
    assert_eq!(
        names(faults(&g).await),
        ["from_config", "on_spare", "on_up"]
    );

    // The new config has no `spare` and no config faults.
    let text = config_with(
        WITH_TOKEN,
        &[],
        &[route("r", "*", "/", "up", "5s", "access_log")],
        &[format!(
            "{{name: up, endpoints: [\"{}\"]}}",
            sim.local_addr()
        )],
    );
    g.gw.apply(seawall_config::parse("t.yaml", &text).unwrap())
        .await
        .unwrap();
    assert_eq!(names(faults(&g).await), ["on_up"]);
    let r = get(g.addr, "/").await;
    assert_eq!((r.status, r.header("seawall-fault")), (503, Some("on_up")));
    assert_eq!(active(&g, "upstream", "spare").await, Some(0.0));
}
