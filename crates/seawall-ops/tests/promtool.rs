//! The generated rules under Prometheus' own tools: `promtool check rules` accepts them,
//! and `promtool test rules` proves the alerts on synthetic series.
//!
//! - Against a 99.9% availability SLO, after three clean days, a 2% error ratio pages on
//!   the 1h/5m pair at 14.4× once the hour's ratio passes 1.44%, 43.2 minutes in (the SRE
//!   workbook's detection time): silent at 40 minutes, paging at 45 (rules evaluated every 5 minutes). A steady 0.05% never
//!   alerts, page or ticket, over four days.
//! - A route's p99 with a nightly slow hour and a little noise: on the eighth day a shift
//!   of three standard deviations of its trailing day (plus the noise's amplitude, so no
//!   minute of it falls back under the band) fires the baseline alert after its `for:`, not
//!   before; the nightly slow hour, also slow yesterday and last week, does not.
//! - A breaker open for 5 minutes pages; one open for 4 does not yet.

mod support;

use std::process::Command;

use seawall_ops::rules::{self, Rule};
use serde_json::{Value, json};
use support::{TempDir, tool};

const CONFIG: &str = "\
listeners:
  - name: public
    listen: 127.0.0.1:8080
    routes:
      - name: api
        match: {path_prefix: /api}
        upstream: backend
        slo:
          availability: 99.9%
          latency: {objective: 99%, threshold: 250ms}
      - name: search
        upstream: backend
upstreams:
  - name: backend
    endpoints: [127.0.0.1:9000, 127.0.0.1:9001]
    timeouts: {connect: 1s, response_header: 5s}
    outlier: {}
";

const MIN_PER_DAY: usize = 24 * 60;

fn config() -> seawall_config::Config {
    seawall_config::parse("test.yaml", CONFIG).expect("valid test config")
}

/// The annotations of the generated alert `name` (the first with these labels among
/// `pick`), with `$labels.route` expanded as Prometheus would.
fn annotations(name: &str, route: &str, pick: &[(&str, &str)]) -> Value {
    let groups = rules::groups(&config());
    let found = groups
        .iter()
        .flat_map(|g| g.rules.iter())
        .find_map(|r| match r {
            Rule::Alert {
                alert,
                labels,
                annotations,
                ..
            } if alert == name
                && pick
                    .iter()
                    .all(|(k, v)| labels.iter().any(|(lk, lv)| lk == k && lv == v)) =>
            {
                Some(annotations.clone())
            }
            _ => None,
        });
    let found = found.unwrap_or_else(|| panic!("no alert {name} with {pick:?}"));
    let map: serde_json::Map<String, Value> = found
        .into_iter()
        .map(|(k, v)| (k, Value::String(v.replace("{{ $labels.route }}", route))))
        .collect();
    Value::Object(map)
}

/// A counter that grows by `per_minute(m)` each minute, for `minutes` + 1 samples.
fn counter(minutes: usize, per_minute: impl Fn(usize) -> f64) -> String {
    let mut total = 0.0;
    let mut out = Vec::with_capacity(minutes + 1);
    for m in 0..=minutes {
        out.push(format!("{total}"));
        total += per_minute(m);
    }
    out.join(" ")
}

fn series(name: &str, labels: &str, values: String) -> Value {
    json!({"series": format!("{name}{{{labels}}}"), "values": values})
}

fn no_alert(at: usize, name: &str) -> Value {
    json!({"eval_time": format!("{at}m"), "alertname": name, "exp_alerts": []})
}

fn availability_tests() -> Vec<Value> {
    let count = "seawall_request_duration_seconds_count";
    let ok = |labels| format!("route=\"api\",method=\"GET\",status_class=\"{labels}\"");
    // Three clean days at 1000 requests a minute, then 2% of them fail.
    let start = 3 * MIN_PER_DAY;
    let minutes = start + 60;
    let failing = move |m: usize| if m >= start { 20.0 } else { 0.0 };
    let page = json!({
        "interval": "1m",
        "input_series": [
            series(count, &ok("2xx"), counter(minutes, move |m| 1000.0 - failing(m))),
            series(count, &ok("5xx"), counter(minutes, failing)),
        ],
        "alert_rule_test": [
            no_alert(start + 40, "SeawallErrorBudgetBurn"),
            {
                "eval_time": format!("{}m", start + 45),
                "alertname": "SeawallErrorBudgetBurn",
                "exp_alerts": [{
                    "exp_labels": {
                        "route": "api", "severity": "page", "slo": "availability",
                        "long": "1h", "short": "5m",
                    },
                    "exp_annotations": annotations(
                        "SeawallErrorBudgetBurn", "api",
                        &[("slo", "availability"), ("long", "1h")],
                    ),
                }],
            },
        ],
    });
    // 0.05% errors, half the budget, for four days: nothing ever fires.
    let days = 4 * MIN_PER_DAY;
    let quiet_checks: Vec<Value> = [60, 6 * 60, MIN_PER_DAY, 3 * MIN_PER_DAY, days]
        .iter()
        .map(|at| no_alert(*at, "SeawallErrorBudgetBurn"))
        .collect();
    let quiet = json!({
        "interval": "1m",
        "input_series": [
            series(count, &ok("2xx"), counter(days, |_| 999.5)),
            series(count, &ok("5xx"), counter(days, |_| 0.5)),
        ],
        "alert_rule_test": quiet_checks,
    });
    vec![page, quiet]
}

/// Route `search`'s p99 target for minute `m`: 120 ms with ±4 ms of noise, 200 ms from
/// 02:00 to 03:00 every night.
fn usual_p99(m: usize) -> f64 {
    let noise = ((m * 7919 + 13) % 9) as f64 - 4.0; // -4..=4, deterministic
    let minute_of_day = m % MIN_PER_DAY;
    let level = if (120..180).contains(&minute_of_day) {
        0.200
    } else {
        0.120
    };
    level + noise / 1000.0
}

/// Requests per minute of route `search`.
const PER_MINUTE: f64 = 60_000.0;

/// How many of `PER_MINUTE` requests fall in (0.1, 0.25] so that `histogram_quantile`'s
/// linear interpolation puts the p99 at `p99` (between 0.1 and 0.25).
fn slow_share(p99: f64) -> f64 {
    let r = (p99 - 0.1) / 0.15;
    let below = (0.99 - r) / (1.0 - r);
    ((1.0 - below) * PER_MINUTE).round()
}

fn mean_sd(xs: &[f64]) -> (f64, f64) {
    let n = xs.len() as f64;
    let mean = xs.iter().sum::<f64>() / n;
    let var = xs.iter().map(|x| (x - mean) * (x - mean)).sum::<f64>() / n;
    (mean, var.sqrt())
}

fn baseline_tests() -> Vec<Value> {
    // Seven days of history, then the eighth: the shift starts at 12:00.
    let shift_at = 7 * MIN_PER_DAY + 12 * 60;
    let minutes = shift_at + 60;
    let (mean, sd) = mean_sd(
        &(shift_at - MIN_PER_DAY - 60..shift_at - 60)
            .map(usual_p99)
            .collect::<Vec<_>>(),
    );
    let shifted = mean + 3.0 * sd + 0.004;
    assert!(
        shifted < 0.25,
        "the shift must stay inside the test's buckets"
    );
    let p99 = move |m: usize| {
        if m >= shift_at {
            shifted + usual_p99(m) - usual_p99(m - MIN_PER_DAY)
        } else {
            usual_p99(m)
        }
    };
    let labels =
        |le: &str| format!("route=\"search\",method=\"GET\",status_class=\"2xx\",le=\"{le}\"");
    let bucket = "seawall_request_duration_seconds_bucket";
    let input = json!([
        series(
            bucket,
            &labels("0.1"),
            counter(minutes, move |m| PER_MINUTE - slow_share(p99(m)))
        ),
        series(bucket, &labels("0.25"), counter(minutes, |_| PER_MINUTE)),
        series(bucket, &labels("+Inf"), counter(minutes, |_| PER_MINUTE)),
        series(
            "seawall_request_duration_seconds_count",
            "route=\"search\",method=\"GET\",status_class=\"2xx\"",
            counter(minutes, |_| PER_MINUTE),
        ),
    ]);
    let name = "SeawallLatencyAboveBaseline";
    let night = 7 * MIN_PER_DAY + 2 * 60;
    let fired = json!({
        "eval_time": format!("{}m", shift_at + 30),
        "alertname": name,
        "exp_alerts": [{
            "exp_labels": {"route": "search", "severity": "ticket"},
            "exp_annotations": annotations(name, "search", &[]),
        }],
    });
    vec![json!({
        "interval": "1m",
        "input_series": input,
        "alert_rule_test": [
            // A usual day, its slow night hour included.
            no_alert(night + 10, name),
            no_alert(night + 30, name),
            no_alert(night + 55, name),
            no_alert(night + 90, name),
            no_alert(shift_at - 5, name),
            // The shift: its p99 crosses the band within the 5m rate window, then the
            // alert waits out its 15 minutes.
            no_alert(shift_at + 10, name),
            fired,
        ],
    })]
}

/// A breaker that opens and stays open: `SeawallBreakerOpen` waits out its 5 minutes.
fn breaker_tests() -> Vec<Value> {
    let name = "SeawallBreakerOpen";
    vec![json!({
        "interval": "1m",
        "input_series": [
            series("seawall_breaker_state", "upstream=\"backend\"", "0x10 1x20".to_owned()),
        ],
        "alert_rule_test": [
            no_alert(10, name),
            no_alert(10 + 4, name),
            {
                "eval_time": "20m",
                "alertname": name,
                "exp_alerts": [{
                    "exp_labels": {"upstream": "backend", "severity": "page"},
                    "exp_annotations": breaker_annotations(),
                }],
            },
        ],
    })]
}

fn breaker_annotations() -> Value {
    let groups = rules::groups(&config());
    let found = groups
        .iter()
        .flat_map(|g| g.rules.iter())
        .find_map(|r| match r {
            Rule::Alert {
                alert, annotations, ..
            } if alert == "SeawallBreakerOpen" => Some(annotations.clone()),
            _ => None,
        });
    let map: serde_json::Map<String, Value> = found
        .expect("the breaker alert")
        .into_iter()
        .map(|(k, v)| {
            (
                k,
                Value::String(v.replace("{{ $labels.upstream }}", "backend")),
            )
        })
        .collect();
    Value::Object(map)
}

fn run(promtool: &std::path::Path, args: &[&str], dir: &std::path::Path) {
    let out = Command::new(promtool)
        .args(args)
        .current_dir(dir)
        .output()
        .expect("run promtool");
    assert!(
        out.status.success(),
        "promtool {args:?} failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn promtool_accepts_the_rules_and_proves_the_burn_rate_baseline_and_breaker_alerts() {
    let Some(promtool) = tool("promtool") else {
        return;
    };
    let dir = TempDir::new("promtool");
    std::fs::write(dir.path().join("rules.yml"), rules::render(&config())).expect("write rules");
    run(&promtool, &["check", "rules", "rules.yml"], dir.path());
    let mut tests = availability_tests();
    tests.extend(baseline_tests());
    tests.extend(breaker_tests());
    let file = json!({
        "rule_files": ["rules.yml"],
        "evaluation_interval": "5m",
        "tests": tests,
    });
    std::fs::write(dir.path().join("test.yml"), file.to_string()).expect("write tests");
    run(&promtool, &["test", "rules", "test.yml"], dir.path());
}
