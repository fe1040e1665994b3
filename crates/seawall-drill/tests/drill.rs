//! End-to-end drills on loopback: the load against a real sim (port 0), exit codes, and the
//! report files. Each run is a few seconds and bounded by the scenario's length.

use std::{
    net::SocketAddr,
    path::{Path, PathBuf},
};

use seawall_drill::{
    progress::Progress,
    run::{self, Options, Outcome},
    scenario::parse,
};

fn out_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("seawall-drill-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

async fn drill(yaml: &str, out: &Path) -> Outcome {
    let scenario = parse::parse("test.yaml", yaml, &[]).unwrap_or_else(|d| panic!("{d}"));
    let (_keep, stop) = tokio::sync::watch::channel(false);
    let options = Options {
        base_dir: PathBuf::from("."),
        out: out.to_owned(),
        progress: Progress {
            quiet: true,
            ..Progress::default()
        },
        stop,
        version: "test".into(),
    };
    run::run(scenario, options).await
}

fn report(out: &Path) -> serde_json::Value {
    let text = std::fs::read_to_string(out.join("report.json")).expect("report.json written");
    serde_json::from_str(&text).expect("report.json is JSON")
}

async fn sim() -> seawall_sim::Sim {
    seawall_sim::Sim::bind("127.0.0.1:0".parse().unwrap())
        .await
        .unwrap()
}

/// One request at t = 2 s takes 2 s on the only connection: every request due in those
/// 2 s waits. Measured from due time, p99 is about 2 s and ~200 requests are late; a
/// closed-loop tool would see one slow request in 500 and a p99 of a few milliseconds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_two_second_stall_at_100_per_second_shows_in_p99_and_late_counts() {
    let sim = sim().await;
    let out = out_dir("stall");
    let yaml = format!(
        "target: {{gateway: 'http://{}'}}
load:
  connections: 1
  phases:
    - {{name: before, duration: 2s, rate: 100}}
    - {{name: stall, duration: 10ms, rate: 100, requests: [{{path: /delay/2s}}]}}
    - {{name: after, duration: 3s, rate: 100}}
  requests: [{{path: /}}]
thresholds:
  - p(99) >= 1900ms
  - late >= 150
  - p(50) < 50ms during before
",
        sim.local_addr()
    );
    let outcome = drill(&yaml, &out).await;
    let r = report(&out);
    assert_eq!(outcome.code, 0, "{}\n{}", outcome.summary, r["thresholds"]);
    let late = r["totals"]["late"].as_u64().unwrap();
    assert!((150..=260).contains(&late), "late: {late}");
    assert_eq!(r["totals"]["scheduled"].as_u64(), Some(501));
    assert_eq!(r["totals"]["dropped"].as_u64(), Some(0));
    let worst = r["series"][2]["p99_ms"].as_f64().unwrap();
    assert!(worst >= 1900.0, "second 2's p99: {worst}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_threshold_exits_1_and_the_report_names_it_with_its_value() {
    let sim = sim().await;
    let out = out_dir("fail");
    let yaml = format!(
        "target: {{gateway: 'http://{}'}}
load:
  phases: [{{name: steady, duration: 1s, rate: 50}}]
  requests: [{{path: /status/503, weight: 1}}, {{path: /, weight: 1}}]
thresholds: ['rate(5xx) < 1% during steady', 'ratio(status == 200) > 0.2']
",
        sim.local_addr()
    );
    let outcome = drill(&yaml, &out).await;
    assert_eq!(outcome.code, 1, "{}", outcome.summary);
    let r = report(&out);
    assert_eq!(r["verdict"], "failed");
    assert_eq!(r["thresholds"][0]["passed"], false);
    let value = r["thresholds"][0]["value"].as_f64().unwrap();
    assert!((0.3..0.7).contains(&value), "{value}");
    assert_eq!(r["thresholds"][1]["passed"], true);
    let junit = std::fs::read_to_string(out.join("junit.xml")).unwrap();
    assert_eq!(junit.matches("<testcase").count(), 2);
    assert_eq!(junit.matches("<failure").count(), 1);
    let html = std::fs::read_to_string(out.join("report.html")).unwrap();
    assert!(html.contains("FAILED") && html.contains("rate(5xx) &lt; 1% during steady"));
    assert!(
        !html.contains("<script") && !html.contains("http://cdn"),
        "self-contained"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_metric_the_gateway_does_not_expose_is_a_scenario_error_exit_3() {
    let sim = sim().await;
    let out = out_dir("unknown");
    // The sim has no /metrics: nothing to read, which must not pass.
    let yaml = format!(
        "target: {{gateway: 'http://{0}', admin: 'http://{0}'}}
load:
  phases: [{{name: steady, duration: 1s, rate: 20}}]
  requests: [{{path: /}}]
thresholds: ['metric(seawall_nope_total) < 1']
",
        sim.local_addr()
    );
    let outcome = drill(&yaml, &out).await;
    assert_eq!(outcome.code, 3, "{}", outcome.summary);
    assert!(
        outcome.summary.contains("unknown metric"),
        "{}",
        outcome.summary
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_target_or_a_failed_before_probe_exits_4() {
    let closed: SocketAddr = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let yaml = |addr: SocketAddr, probe: &str| {
        format!(
            "target: {{gateway: 'http://{addr}'}}
load:
  phases: [{{name: steady, duration: 1s, rate: 10}}]
  requests: [{{path: /}}]
steady_state:
  before: [{{http: {{path: {probe}}}}}]
"
        )
    };
    let outcome = drill(&yaml(closed, "/"), &out_dir("closed")).await;
    assert_eq!(outcome.code, 4, "{}", outcome.summary);
    assert!(
        outcome.summary.contains("unreachable"),
        "{}",
        outcome.summary
    );

    let sim = sim().await;
    let out = out_dir("probe");
    let outcome = drill(&yaml(sim.local_addr(), "/status/503"), &out).await;
    assert_eq!(outcome.code, 4, "{}", outcome.summary);
    assert_eq!(report(&out)["verdict"], "aborted");
    assert_eq!(sim.stats().requests, 1, "no load after a failed gate");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn h2c_load_is_multiplexed_under_the_cap() {
    let sim = sim().await;
    let out = out_dir("h2c");
    let yaml = format!(
        "target: {{gateway: 'http://{}'}}
load:
  protocol: h2c
  connections: 16
  h2_connections: 2
  phases: [{{name: ramp, duration: 1s, ramp: {{from: 100, to: 300}}}}]
  requests: [{{path: /}}]
thresholds: ['ratio(status == 200) == 1', 'errors == 0']
",
        sim.local_addr()
    );
    let outcome = drill(&yaml, &out).await;
    assert_eq!(outcome.code, 0, "{}", outcome.summary);
    // Two h2 connections, plus the reachability check's.
    assert!(sim.stats().connections_accepted <= 3, "{:?}", sim.stats());
    assert_eq!(report(&out)["totals"]["scheduled"].as_u64(), Some(200));
}

/// An action the target refused (here: a fault put to an admin API that has no `/faults`)
/// must not let the thresholds pass as if it had taken effect.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_action_that_fails_fails_the_drill() {
    let sim = sim().await;
    let out = out_dir("action-error");
    let yaml = format!(
        "target: {{gateway: 'http://{0}', admin: 'http://{0}'}}
load:
  phases: [{{name: steady, duration: 1s, rate: 20}}]
  requests: [{{path: /}}]
actions:
  - {{name: slow, at: 100ms, fault: {{spec: {{route: api, delay: {{fixed: 1s}}}}}}}}
thresholds: ['p(99) < 1s']
",
        sim.local_addr()
    );
    let outcome = drill(&yaml, &out).await;
    assert_eq!(outcome.code, 1, "{}", outcome.summary);
    assert!(
        outcome.summary.contains("action error `slow`"),
        "{}",
        outcome.summary
    );
    let r = report(&out);
    assert_eq!(
        r["thresholds"][0]["passed"], true,
        "the threshold itself held"
    );
}
