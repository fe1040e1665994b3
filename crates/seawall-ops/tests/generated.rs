//! What `seawall rules` and `seawall dashboard` generate, checked without running
//! Prometheus: exact thresholds, scaled windows, only catalogued metrics, only recorded
//! series the rules define, and a dashboard Grafana can import (unique ids, a 24-column
//! grid, every query on the datasource variable, the rows in order).

use std::collections::HashSet;

use seawall_ops::{
    catalogue::{family_of, metric_names},
    dashboard, rules,
};

fn config(slo: &str) -> seawall_config::Config {
    let text = format!(
        "\
listeners:
  - name: public
    listen: 127.0.0.1:8080
    routes:
      - name: api
        upstream: backend
        slo:
{slo}
      - upstream: backend
        match: {{path_prefix: /other}}
upstreams:
  - name: backend
    endpoints: [127.0.0.1:9000, 127.0.0.1:9001, 127.0.0.1:9002, 127.0.0.1:9003]
    timeouts: {{connect: 1s, response_header: 5s}}
    outlier: {{max_ejection_percent: 50}}
"
    );
    seawall_config::parse("test.yaml", &text).expect("valid")
}

fn full() -> seawall_config::Config {
    config("          availability: 99.9%\n          latency: {objective: 99%, threshold: 250ms}")
}

/// Every `seawall:` series a text reads.
fn recorded_names(text: &str) -> HashSet<String> {
    let mut out = HashSet::new();
    for (i, _) in text.match_indices("seawall:") {
        let tail = &text[i..];
        let end = tail
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':'))
            .unwrap_or(tail.len());
        out.insert(tail[..end].to_owned());
    }
    out
}

fn defined_records(config: &seawall_config::Config) -> HashSet<String> {
    rules::groups(config)
        .iter()
        .flat_map(|g| g.rules.iter())
        .filter_map(|r| match r {
            rules::Rule::Record { record, .. } => Some(record.clone()),
            rules::Rule::Alert { .. } => None,
        })
        .collect()
}

/// The longest run of digits after a decimal point in `text`.
fn most_decimals(text: &str) -> usize {
    let b = text.as_bytes();
    let mut most = 0;
    for (i, c) in b.iter().enumerate() {
        if *c == b'.' && i > 0 && b[i - 1].is_ascii_digit() {
            let n = b[i + 1..].iter().take_while(|c| c.is_ascii_digit()).count();
            most = most.max(n);
        }
    }
    most
}

#[test]
fn burn_thresholds_are_exact_decimals() {
    let text = rules::render(&full());
    for t in ["> 0.0144\n", "> 0.006\n", "> 0.003\n", "> 0.001\n"] {
        assert!(text.contains(t), "availability threshold {t:?} missing");
    }
    for t in ["> 0.144\n", "> 0.06\n", "> 0.03\n", "> 0.01\n"] {
        assert!(text.contains(t), "latency threshold {t:?} missing");
    }
    assert!(text.contains("le=\"0.25\""), "the threshold's bucket");
    assert!(most_decimals(&text) <= 4, "float noise in:\n{text}");
    let odd = rules::render(&config("          availability: 99.95%"));
    assert!(odd.contains("> 0.0072\n") && odd.contains("> 0.0005\n"));
    assert!(odd.contains("vector(0.9995)"));
}

#[test]
fn windows_scale_with_the_period() {
    let text = rules::render(&config(
        "          availability: 99.9%\n          period: 7d",
    ));
    for w in [
        "ratio_rate1m",
        "ratio_rate14m",
        "ratio_rate84m",
        "ratio_rate1008m",
        "ratio_rate7d",
    ] {
        assert!(text.contains(w), "{w}");
    }
    assert!(text.contains("long: \"14m\"") && text.contains("short: \"1m\""));
    assert!(!text.contains("ratio_rate30d"));
}

#[test]
fn rules_name_only_catalogued_metrics_and_their_own_records() {
    let config = full();
    let text = rules::render(&config);
    for name in metric_names(&text) {
        assert!(
            family_of(name).is_some(),
            "{name} is not exported by the gateway"
        );
    }
    let defined = defined_records(&config);
    for name in recorded_names(&text) {
        assert!(defined.contains(&name), "{name} is read but never recorded");
    }
    // The gateway alerts know the config: 50% of four endpoints is two.
    assert!(text.contains("seawall_endpoints_ejected{upstream=\"backend\"} >= 2"));
    // A route without an SLO gets the baselines only.
    assert!(!text.contains("seawall-slo-public/1"));
}

#[test]
fn the_dashboard_is_importable_and_queries_only_exported_or_recorded_series() {
    let config = full();
    let d = dashboard::render(&config);
    assert_eq!(d["schemaVersion"], dashboard::SCHEMA_VERSION);
    let vars: Vec<&str> = d["templating"]["list"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["name"].as_str().unwrap())
        .collect();
    assert_eq!(vars, ["datasource", "route", "upstream"]);
    assert_eq!(d["templating"]["list"][0]["type"], "datasource");
    let panels = d["panels"].as_array().unwrap();
    let rows: Vec<&str> = panels
        .iter()
        .filter(|p| p["type"] == "row")
        .map(|p| p["title"].as_str().unwrap())
        .collect();
    assert_eq!(
        rows,
        [
            "Traffic",
            "Errors by kind",
            "Latency",
            "Breakers",
            "Pools",
            "Retries and hedges",
            "Limits",
            "Degraded answers"
        ]
    );
    let mut ids = HashSet::new();
    let defined = defined_records(&config);
    let mut cells = HashSet::new();
    for p in panels {
        assert!(
            ids.insert(p["id"].as_u64().unwrap()),
            "duplicate id {}",
            p["id"]
        );
        let g = &p["gridPos"];
        let (x, y, w) = (
            g["x"].as_u64().unwrap(),
            g["y"].as_u64().unwrap(),
            g["w"].as_u64().unwrap(),
        );
        assert!(x + w <= 24, "{} overflows the grid", p["title"]);
        assert!(
            cells.insert((x, y)),
            "{} overlaps another panel",
            p["title"]
        );
        if p["type"] == "row" {
            continue;
        }
        assert_eq!(p["datasource"]["uid"], "${datasource}");
        let targets = p["targets"].as_array().unwrap();
        assert!(!targets.is_empty(), "{} has no query", p["title"]);
        for t in targets {
            assert_eq!(t["datasource"]["uid"], "${datasource}");
            let expr = t["expr"].as_str().unwrap();
            for name in metric_names(expr) {
                assert!(family_of(name).is_some(), "{name} in {expr}");
            }
            for name in recorded_names(expr) {
                assert!(defined.contains(&name), "{name} in {expr} is not recorded");
            }
        }
    }
    // The SLO lines: the latency threshold and objective, the availability budget.
    let text = d.to_string();
    assert!(text.contains("vector(0.25)") && text.contains("vector(0.99)"));
    assert!(text.contains("vector(0.001)"));
}
