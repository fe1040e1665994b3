//! A drill against an embedded gateway (`target.embedded`): gateway and sim start
//! in-process from a config file, the breaker opens when the upstream fails, and the
//! thresholds read the real `/breakers` and `/metrics`; the gateway's `GET /events` stream
//! puts the breaker's opening on the report's timeline.

use std::path::PathBuf;

use seawall_drill::{
    progress::Progress,
    run::{self, Options},
    scenario::parse,
};

fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_breaker_opens_while_the_upstream_fails_and_the_thresholds_see_it() {
    let dir = std::env::temp_dir().join(format!("seawall-drill-embedded-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let sim = free_port();
    std::fs::write(
        dir.join("gateway.yaml"),
        format!(
            "admin: {{listen: 127.0.0.1:0, token_env: SEAWALL_DRILL_TEST_UNSET_TOKEN}}
sim: {{listen: 127.0.0.1:{sim}}}
listeners:
  - name: public
    listen: 127.0.0.1:0
    routes:
      - {{name: api, match: {{host: '*', path_prefix: /}}, upstream: sim, timeout: 5s}}
upstreams:
  - name: sim
    endpoints: [127.0.0.1:{sim}]
    breaker: {{window: 2s, min_calls: 5, failure_ratio: 0.5, open_duration: 10s}}
"
        ),
    )
    .unwrap();
    let scenario = parse::parse(
        "embedded.yaml",
        "target: {embedded: gateway.yaml, admin_token_env: SEAWALL_DRILL_TEST_UNSET_TOKEN}
load:
  phases:
    - {name: healthy, duration: 1s, rate: 50}
    - {name: failing, duration: 2s, rate: 50, requests: [{path: /status/503}]}
  requests: [{path: /}]
steady_state:
  before: [{http: {path: /healthz, on: admin}}, {metric: 'seawall_breaker_state{upstream=\"sim\"} == 0'}]
thresholds:
  - p(99) < 1s during healthy
  - ratio(status == 200) == 1 during healthy
  - breaker(sim) == open within 1500ms of failing start
  - count(error(circuit_open)) > 10 during failing
  - metric(seawall_breaker_transitions_total{upstream=\"sim\"}) >= 1 during failing
  - retries <= 0.2 * requests
",
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
    assert_eq!(outcome.code, 0, "{}", outcome.summary);
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("report.json")).unwrap()).unwrap();
    let bands = &report["breakers"][0]["bands"];
    assert!(
        bands
            .as_array()
            .unwrap()
            .iter()
            .any(|b| b["state"] == "open"),
        "{bands}"
    );
    // The gateway's own account, from `GET /events`: the breaker opened during `failing`.
    let opened = report["events"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| {
            e["kind"] == "gateway.breaker"
                && e["name"] == "sim"
                && e["detail"].as_str().unwrap().contains("-> open")
        })
        .unwrap_or_else(|| panic!("no breaker event: {}", report["events"]));
    let at = opened["at"].as_f64().unwrap();
    assert!((1.0..3.0).contains(&at), "opened at {at}");
    let _ = std::fs::remove_dir_all(PathBuf::from(&dir));
}
