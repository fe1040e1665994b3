//! Every scenario in `examples/drills/` runs, short, through the built binary: each exits 0,
//! except `fails-on-purpose.yaml`, which exits 1 with a report naming its failed threshold
//! and the value it measured. They run one after another (a few seconds each at modest
//! rates), each from a copy of the folder whose sim port is replaced by a free one, so
//! parallel test runs never share a port.

mod support;

use std::{
    path::Path,
    process::{Command, Stdio},
    time::{Duration, Instant},
};

const SHIPPED_SIM_PORT: &str = "127.0.0.1:18481";
const FAILS: &str = "fails-on-purpose.yaml";

/// Runs one drill; returns its exit code and output.
fn drill(scenario: &Path, out: &Path) -> (Option<i32>, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_seawall"))
        .arg("drill")
        .arg(scenario)
        .arg("--out")
        .arg(out)
        .env("SEAWALL_ADMIN_TOKEN", "example-drills")
        .env("NO_COLOR", "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("{} ran for more than 60 s", scenario.display());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let o = child.wait_with_output().unwrap();
    let text = format!(
        "{}\n{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    (o.status.code(), text)
}

#[test]
fn every_example_drill_passes_and_the_failing_one_names_its_threshold() {
    let shipped = support::workspace_root().join("examples/drills");
    let dir = support::TempDir::new();
    let port = format!("127.0.0.1:{}", support::free_port());
    let mut scenarios = Vec::new();
    for entry in std::fs::read_dir(&shipped).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let text = std::fs::read_to_string(&path).unwrap();
        std::fs::write(
            dir.path().join(&name),
            text.replace(SHIPPED_SIM_PORT, &port),
        )
        .unwrap();
        if name != "gateway.yaml" && path.extension().is_some_and(|e| e == "yaml") {
            scenarios.push(name);
        }
    }
    scenarios.sort();
    assert!(scenarios.len() >= 6, "{scenarios:?}");
    for name in &scenarios {
        let out = dir.path().join(format!("{name}.out"));
        let (code, text) = drill(&dir.path().join(name), &out);
        let report: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(out.join("report.json")).unwrap())
                .unwrap();
        if name == FAILS {
            assert_eq!(code, Some(1), "{name:?}: {text}");
            let failed: Vec<_> = report["thresholds"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|t| t["passed"] == false)
                .collect();
            assert_eq!(failed.len(), 1, "{}", report["thresholds"]);
            assert_eq!(failed[0]["threshold"], "p(99) < 50ms during slow");
            let p99 = failed[0]["value"].as_f64().unwrap();
            assert!(p99 >= 0.2, "measured p99 {p99}");
            assert!(text.contains("FAIL p(99) < 50ms during slow"), "{text}");
        } else {
            assert_eq!(code, Some(0), "{name:?}: {text}\n{}", report["thresholds"]);
        }
    }
}

#[test]
fn seawall_check_drill_accepts_every_example_scenario_and_refuses_a_bad_one() {
    let shipped = support::workspace_root().join("examples/drills");
    let mut scenarios: Vec<_> = std::fs::read_dir(&shipped)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml") && !p.ends_with("gateway.yaml"))
        .collect();
    scenarios.sort();
    let out = Command::new(env!("CARGO_BIN_EXE_seawall"))
        .args(["check", "--drill"])
        .args(&scenarios)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(stdout.matches(": ok").count(), scenarios.len(), "{stdout}");

    let dir = support::TempDir::new();
    let bad = dir.path().join("bad.yaml");
    std::fs::write(&bad, "target: {gateway: 'http://127.0.0.1:1'}\nload: {phases: [{name: a, duration: 1s, rate: 1}], requests: [{path: /}]}\nthresholds: ['p(99) < 1s during nowhere']\n").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_seawall"))
        .args(["check", "--drill"])
        .arg(&bad)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    assert!(stderr.contains("nowhere"), "{stderr}");
}
