//! The drill against the real pieces, all in this process on loopback: a gateway with its
//! admin API and a token, the runtime fault API (`PUT`/`DELETE /faults/{name}`), and a
//! `seawall chaos` proxy between the gateway and the sim. A fault put at an offset and a
//! toxic added at an offset both show in the thresholds, and neither is left behind:
//! `GET /faults` lists no runtime fault and the proxy has no toxic after the drill.
//!
//! Admin token: tests cannot `set_var` (no `unsafe`); `admin.token_env` points at
//! `CARGO_PKG_NAME`, which cargo sets to `seawall-drill` for this test binary.

use std::time::Duration;

use http::Method;
use seawall_drill::{
    control::{self, Base},
    embedded::Embedded,
    progress::Progress,
    run::{self, Options},
    scenario::parse,
};

const TOKEN: &str = "seawall-drill";

fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

/// A chaos server whose proxy `sim` listens on a free port and forwards to `upstream`;
/// returns the API's base and the proxy's port.
async fn chaos(upstream: std::net::SocketAddr) -> (Base, u16) {
    let proxy = free_port();
    let server = seawall_chaos::Server::new(seawall_chaos::Options { seed: Some(1) });
    let body =
        format!(r#"[{{"name": "sim", "listen": "127.0.0.1:{proxy}", "upstream": "{upstream}"}}]"#);
    server.populate(body.as_bytes()).await.unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let api = Base::of(listener.local_addr().unwrap());
    tokio::spawn(server.serve(listener, std::future::pending()));
    (api, proxy)
}

async fn get_json(base: &Base, path: &str, token: Option<&str>) -> serde_json::Value {
    let a = control::call(base, Method::GET, path, None, token, Duration::from_secs(5))
        .await
        .unwrap();
    assert!(a.status.is_success(), "{path}: {} {}", a.status, a.text());
    serde_json::from_slice(&a.body).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_runtime_fault_and_a_chaos_toxic_show_in_the_thresholds_and_are_gone_after() {
    let dir = std::env::temp_dir().join(format!("seawall-drill-real-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let sim = seawall_sim::Sim::bind("127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let (chaos_api, proxy) = chaos(sim.local_addr()).await;
    let config = dir.join("gateway.yaml");
    std::fs::write(
        &config,
        format!(
            "admin: {{listen: 127.0.0.1:0, token_env: CARGO_PKG_NAME}}
listeners:
  - name: public
    listen: 127.0.0.1:0
    routes:
      - {{name: api, match: {{host: '*', path_prefix: /}}, upstream: backend, timeout: 5s}}
upstreams:
  - name: backend
    endpoints: [127.0.0.1:{proxy}]
"
        ),
    )
    .unwrap();
    let gateway = Embedded::start(&config).await.unwrap();
    let admin = Base::of(gateway.admin.unwrap());
    let scenario = parse::parse(
        "real.yaml",
        &format!(
            "target:
  gateway: http://{traffic}
  admin: {admin}
  admin_token_env: CARGO_PKG_NAME
  chaos: {chaos_api}
load:
  connections: 16
  phases: [{{name: run, duration: 5s, rate: 50}}]
  requests: [{{path: /}}]
actions:
  - name: down
    at: 1s
    for: 1s
    fault: {{spec: {{upstream: backend, abort: {{status: 503}}}}}}
  - name: lag
    at: 2s
    for: 2s
    toxic: {{proxy: sim, type: latency, attributes: {{latency: 300}}}}
thresholds:
  - ratio(status == 503) > 0.8 during down
  - ratio(status == 200) == 1 before down
  - p(50) >= 250ms during lag
  - p(99) < 200ms before down
",
            traffic = gateway.traffic,
        ),
        &[],
    )
    .unwrap_or_else(|d| panic!("{d}"));
    let (_keep, stop) = tokio::sync::watch::channel(false);
    let out = dir.join("report");
    let outcome = run::run(
        scenario,
        Options {
            base_dir: dir.clone(),
            out: out.clone(),
            progress: Progress {
                quiet: true,
                ..Progress::default()
            },
            stop,
            version: "test".into(),
        },
    )
    .await;
    let report = std::fs::read_to_string(out.join("report.json")).unwrap();
    assert_eq!(outcome.code, 0, "{}\n{report}", outcome.summary);

    let faults = get_json(&admin, "/faults", Some(TOKEN)).await;
    let runtime: Vec<_> = faults["faults"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["source"] == "runtime")
        .collect();
    assert!(runtime.is_empty(), "{faults}");
    let toxics = get_json(&chaos_api, "/proxies/sim/toxics", None).await;
    assert_eq!(toxics, serde_json::json!([]));

    let report: serde_json::Value = serde_json::from_str(&report).unwrap();
    let kinds: Vec<&str> = report["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["kind"].as_str())
        .collect();
    assert_eq!(
        kinds.iter().filter(|k| **k == "action_start").count(),
        2,
        "{kinds:?}"
    );
    assert!(!kinds.contains(&"action_error"), "{}", report["events"]);
    // The gateway saw its fault switched on and off (`GET /events`).
    for kind in ["gateway.fault_on", "gateway.fault_off"] {
        assert!(kinds.contains(&kind), "{kind}: {kinds:?}");
    }
    gateway.stop(Duration::from_secs(1)).await;
    let _ = std::fs::remove_dir_all(&dir);
}
