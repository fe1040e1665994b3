use super::*;

const GOOD: &str = "\
target:
  gateway: http://127.0.0.1:8080
  admin: http://127.0.0.1:9901
load:
  connections: 8
  phases:
    - {name: warmup, duration: 2s, rate: 50}
    - {name: ramp, duration: 3s, ramp: {from: 50, to: 200}}
  requests:
    - {path: /, weight: 3}
    - {method: POST, path: /echo, body: hi}
actions:
  - name: fault
    at: 1s
    for: 2s
    fault: {spec: {route: api, percentage: 100, delay: {fixed: 2s}}}
thresholds:
  - p(99) < 300ms during fault
  - rate(5xx) < 1%
";

#[test]
fn a_good_scenario_parses() {
    let s = parse("s.yaml", GOOD, &[]).unwrap();
    assert_eq!(s.load.phases.len(), 2);
    assert_eq!(s.duration(), std::time::Duration::from_secs(5));
    assert_eq!(s.actions[0].fault_name(), "fault");
}

#[test]
fn an_unknown_key_is_located_with_its_line() {
    let text = GOOD.replace("connections: 8", "conections: 8");
    let d = parse("s.yaml", &text, &[]).unwrap_err();
    let first = &d.0[0];
    assert_eq!(first.line, 5, "{d}");
    assert!(first.message.contains("conections"), "{d}");
}

#[test]
fn a_threshold_with_an_unknown_window_names_the_known_ones() {
    let text = GOOD.replace("during fault", "during outage");
    let d = parse("s.yaml", &text, &[]).unwrap_err();
    let first = &d.0[0];
    assert_eq!(first.path, "thresholds[0]");
    assert_eq!(first.line, 18);
    assert!(first.message.contains("unknown window `outage`"), "{d}");
    assert!(
        first.hint.as_deref().unwrap_or_default().contains("fault"),
        "{d}"
    );
}

#[test]
fn a_bad_threshold_is_reported_with_its_value_and_hint() {
    let text = GOOD.replace("rate(5xx) < 1%", "p99 < 1s");
    let d = parse("s.yaml", &text, &[]).unwrap_err();
    assert_eq!(d.0[0].value.as_deref(), Some("p99 < 1s"));
    assert!(d.0[0].hint.is_some());
}

#[test]
fn every_problem_is_reported_together() {
    let text = GOOD
        .replace("rate: 50}", "rate: 50, ramp: {from: 1, to: 2}}")
        .replace("during fault", "during nothing");
    let d = parse("s.yaml", &text, &[]).unwrap_err();
    assert_eq!(d.0.len(), 2, "{d}");
}

#[test]
fn sets_override_values_and_are_checked() {
    let s = parse(
        "s.yaml",
        GOOD,
        &[
            "load.phases[0].rate=500".into(),
            "load.connections=2".into(),
        ],
    )
    .unwrap();
    assert_eq!(s.load.phases[0].rate, Some(500.0));
    assert_eq!(s.load.connections, 2);
    let d = parse("s.yaml", GOOD, &["load.connections=many".into()]).unwrap_err();
    assert!(d.0[0].file.starts_with("--set"), "{d}");
    let d = parse("s.yaml", GOOD, &["load.phases[9].rate=1".into()]).unwrap_err();
    assert!(d.0[0].message.contains("does not name"), "{d}");
}

#[test]
fn the_schema_names_the_top_level_keys() {
    let schema = crate::Scenario::schema();
    let props = schema["properties"].as_object().unwrap();
    for key in ["target", "load", "actions", "steady_state", "thresholds"] {
        assert!(props.contains_key(key), "{key}");
    }
}
