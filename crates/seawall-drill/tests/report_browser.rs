//! `report.html` in a real headless Chromium (Debian `chromium`; `.ci/run` installs it): it
//! loads from `file://` with the network blocked, logs no console errors, shows the verdict,
//! and every chart has drawn data. A screenshot is written next to the report for people to
//! look at (`SEAWALL_REPORT_SCREENSHOT=path` copies it somewhere stable).
//!
//! Without a `chromium` binary the test passes with a note, except under CI (`CI=true`),
//! where the browser must be there.

use std::{collections::BTreeMap, path::PathBuf, process::Command, time::Duration};

use seawall_drill::{
    events::Event,
    load::record::{Outcome, Recording, Sample},
    probe::ProbeResult,
    report::{self, Inputs, Report},
    scenario::parse,
    threshold::eval::{BreakerSample, Span, Verdict},
};

const SCENARIO: &str = "
target: {gateway: 'http://127.0.0.1:8080', admin: 'http://127.0.0.1:9901'}
load:
  phases: [{name: steady, duration: 20s, rate: 50}]
  requests: [{path: /}]
actions:
  - {name: fault, at: 6s, for: 6s, fault: {spec: {upstream: payments, percentage: 100, delay: {fixed: 2s}}}}
thresholds: ['p(99) < 300ms during fault', 'recovered within 10s after fault end']
";

/// 20 s at 50/s: a fault from 6 s to 12 s makes answers slow, then degraded 206s and
/// fast-failed 503s once the breaker opens at 7 s.
fn recording() -> Recording {
    let mut r = Recording::with_seconds(20);
    for i in 0..1000u64 {
        let due = Duration::from_millis(i * 20);
        let s = i / 50;
        let (status, took, kind) = match s {
            6 => (200, 1900 + i % 100, None),
            7..=11 if i % 5 == 0 => (503, 2, Some("circuit_open")),
            7..=11 => (206, 4, None),
            _ => (200, 3 + i % 7, None),
        };
        r.record(&Sample {
            due,
            queued: due,
            sent: Some(due + Duration::from_millis(u64::from(s == 6) * 30)),
            done: due + Duration::from_millis(took),
            outcome: Outcome::Answered {
                status,
                error_kind: kind.map(str::to_owned),
                degraded: status == 206,
            },
        });
    }
    r
}

fn build() -> Report {
    let scenario = parse::parse("browser.yaml", SCENARIO, &[]).unwrap();
    let windows = BTreeMap::from([
        (
            "steady".to_owned(),
            Span {
                start: Duration::ZERO,
                end: Duration::from_secs(20),
            },
        ),
        (
            "fault".to_owned(),
            Span {
                start: Duration::from_secs(6),
                end: Duration::from_secs(12),
            },
        ),
    ]);
    let breakers: Vec<BreakerSample> = (0..100u64)
        .map(|i| BreakerSample {
            at: Duration::from_millis(i * 200),
            upstream: "payments".into(),
            state: match i {
                35..=59 => "open",
                60..=62 => "half_open",
                _ => "closed",
            }
            .into(),
        })
        .collect();
    let verdicts = vec![
        Verdict {
            threshold: "p(99) < 300ms during fault".into(),
            passed: false,
            value: Some(1.99),
            shown: "p(99) = 1.99s".into(),
        },
        Verdict {
            threshold: "recovered within 10s after fault end".into(),
            passed: true,
            value: Some(0.0),
            shown: "recovered 0.0ms after fault ended".into(),
        },
    ];
    let recording = recording();
    Report::build(Inputs {
        scenario: &scenario,
        version: "test",
        started_at: std::time::SystemTime::now(),
        recording: &recording,
        windows: &windows,
        events: vec![
            Event {
                at: 6.0,
                kind: "action_start".into(),
                name: "fault".into(),
                detail: "PUT /faults/fault".into(),
            },
            Event {
                at: 12.0,
                kind: "action_end".into(),
                name: "fault".into(),
                detail: "DELETE /faults/fault".into(),
            },
        ],
        breakers: &breakers,
        probes: &[(
            "before".to_owned(),
            ProbeResult {
                name: "GET /healthz".into(),
                ok: true,
                detail: "status 200".into(),
            },
        )],
        verdicts: &verdicts,
        exit_code: 1,
        failures: vec![],
    })
}

fn chromium() -> Option<PathBuf> {
    ["chromium", "chromium-browser"].iter().find_map(|name| {
        std::env::var_os("PATH")?
            .to_str()?
            .split(':')
            .map(|d| PathBuf::from(d).join(name))
            .find(|p| p.is_file())
    })
}

fn headless(bin: &PathBuf, extra: &[String], url: &str) -> std::process::Output {
    Command::new(bin)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--hide-scrollbars",
        ])
        // Any network access fails: the page must need none.
        .arg("--host-resolver-rules=MAP * ~NOTFOUND")
        .args([
            "--enable-logging=stderr",
            "--v=0",
            "--virtual-time-budget=2000",
        ])
        .args(extra)
        .arg(url)
        .output()
        .expect("chromium runs")
}

#[test]
fn the_report_renders_in_headless_chromium_with_every_chart_drawn() {
    let Some(bin) = chromium() else {
        assert!(
            std::env::var("CI").is_err(),
            "CI must install chromium (.ci/run)"
        );
        eprintln!("chromium not installed; skipping the browser check");
        return;
    };
    let dir = std::env::temp_dir().join(format!("seawall-report-browser-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    report::write(&build(), &dir).unwrap();
    let url = format!("file://{}", dir.join("report.html").display());

    let dom = headless(&bin, &["--dump-dom".into()], &url);
    let html = String::from_utf8_lossy(&dom.stdout);
    let log = String::from_utf8_lossy(&dom.stderr);
    assert!(dom.status.success(), "chromium failed: {log}");
    for line in log.lines() {
        assert!(
            !line.contains(":CONSOLE(") && !line.contains("Uncaught"),
            "console output: {line}"
        );
        assert!(
            !line.contains("net::ERR_"),
            "the page tried the network: {line}"
        );
    }
    assert!(
        html.contains("id=\"verdict\"") && html.contains("FAILED"),
        "no verdict in the DOM"
    );
    assert!(
        html.contains("p(99) = 1.99s"),
        "the failed threshold's value is not shown"
    );
    for id in [
        "chart-throughput",
        "chart-latency",
        "chart-status",
        "chart-degraded",
        "chart-breakers",
    ] {
        let at = html
            .find(&format!("id=\"{id}\""))
            .unwrap_or_else(|| panic!("{id} missing"));
        let tag = &html[at..at + html[at..].find('>').unwrap()];
        let points: usize = tag
            .split("data-points=\"")
            .nth(1)
            .and_then(|s| s.split('"').next())
            .and_then(|n| n.parse().ok())
            .unwrap();
        assert!(points > 0, "{id} drew nothing");
        let body = &html[at..at + html[at..].find("</svg>").unwrap()];
        assert!(
            body.contains("<path d=\"M") || body.contains("<rect x="),
            "{id} has no marks"
        );
    }

    let shot = dir.join("report.png");
    let out = headless(
        &bin,
        &[
            format!("--screenshot={}", shot.display()),
            "--window-size=1100,2000".into(),
        ],
        &url,
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let png = std::fs::read(&shot).expect("a screenshot");
    assert!(
        png.starts_with(b"\x89PNG") && png.len() > 20_000,
        "blank screenshot? {} bytes",
        png.len()
    );
    if let Some(keep) = std::env::var_os("SEAWALL_REPORT_SCREENSHOT") {
        std::fs::copy(&shot, keep).unwrap();
    }
}
