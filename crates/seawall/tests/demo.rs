//! `seawall demo` as a process, short (`--phase 4s`): gateway, sim and chaos proxy start
//! in-process, the baseline drill passes (exit 0), the summary tells the story, and the
//! report folder has the report, the scenario as run and its gateway config.

mod support;

use std::{
    process::{Command, Stdio},
    time::{Duration, Instant},
};

#[test]
fn the_demo_passes_and_writes_its_report() {
    let dir = support::TempDir::new();
    let out = dir.path().join("demo");
    let mut child = Command::new(env!("CARGO_BIN_EXE_seawall"))
        .args(["demo", "--phase", "4s", "--out"])
        .arg(&out)
        .env("NO_COLOR", "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Four phases of 4 s, plus start and undo: bounded well below a minute.
    let deadline = Instant::now() + Duration::from_secs(60);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("seawall demo ran for more than 60 s");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let output = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(0), "{stdout}\n{stderr}");
    assert!(stdout.contains("drill PASSED"), "{stdout}");
    assert!(stdout.contains("breaker opened at"), "{stdout}");
    assert!(stdout.contains("report.html"), "{stdout}");
    for file in [
        "report.html",
        "report.json",
        "junit.xml",
        "scenario.yaml",
        "gateway.yaml",
    ] {
        assert!(out.join(file).is_file(), "{file} missing");
    }
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("report.json")).unwrap()).unwrap();
    assert_eq!(report["verdict"], "passed");
    assert!(
        report["totals"]["degraded"].as_u64().unwrap() > 50,
        "{}",
        report["totals"]
    );
}
