//! Upstream-side faults (`upstreams[].faults`) and runtime faults (the admin API's
//! `PUT /faults/{name}` body): each new key parses, and each mistake is reported at its
//! key with a line and a hint, or (runtime) as a problem naming the key.

use seawall_config::{Diagnostics, RuntimeFault, parse, validate_runtime_fault};

fn with(faults: &str) -> String {
    format!(
        "listeners:
  - name: public
    listen: 127.0.0.1:8080
    routes:
      - name: web
        upstream: api
        middleware:
          - fault: {{allow_header_faults: true, rules: [{{name: by_header}}, {{name: slow, throttle: {{bytes_per_second: 1000}}}}]}}
upstreams:
  - name: api
    endpoints: [\"127.0.0.1:9000\", \"127.0.0.1:9001\"]
    faults: {faults}
"
    )
}

fn problems(faults: &str) -> Diagnostics {
    match parse("t.yaml", &with(faults)) {
        Ok(c) => panic!("expected problems, got {c:?}"),
        Err(d) => d,
    }
}

fn at(d: &Diagnostics, path: &str) -> bool {
    d.iter()
        .any(|p| p.path == format!("upstreams[0].faults{path}"))
}

#[test]
fn every_upstream_side_key_parses() {
    let c = parse(
        "t.yaml",
        &with(
            "[{name: a, endpoint: \"127.0.0.1:9001\", seed: 3, after: 1s, for: 10s, abort: {connect_error: true}},
              {name: b, delay: {normal: {mean: 100ms, stddev: 20ms}}, abort: {upstream_reset: true}},
              {name: c, delay: {lognormal: {mean: 100ms, stddev: 50ms}}, abort: {blackhole: true}},
              {name: d, abort: {status: 503}}]",
        ),
    )
    .unwrap_or_else(|d| panic!("{d}"));
    let f = &c.upstreams[0].faults;
    assert_eq!(f.len(), 4);
    assert_eq!(f[0].endpoint.as_deref(), Some("127.0.0.1:9001"));
    assert_eq!(f[0].seed, Some(3));
    assert_eq!(f[0].active_for.map(|d| d.get().as_secs()), Some(10));
    assert!(f[0].abort.as_ref().unwrap().connect_error);
    assert!(f[2].abort.as_ref().unwrap().blackhole);
}

#[test]
fn a_percentage_over_100_and_a_bad_endpoint_get_a_line_and_a_hint() {
    let d = problems(
        "[{name: a, percentage: 150, abort: {status: 503}},
          {name: b, endpoint: \"127.0.0.1:9999\", abort: {status: 503}}]",
    );
    let p = d
        .iter()
        .find(|p| p.path == "upstreams[0].faults[0].percentage")
        .unwrap_or_else(|| panic!("{d}"));
    assert!(p.line > 0 && p.hint.is_some(), "{p:?}");
    let p = d
        .iter()
        .find(|p| p.path == "upstreams[0].faults[1].endpoint")
        .unwrap_or_else(|| panic!("{d}"));
    assert!(
        p.message.contains("not one of the upstream's endpoints"),
        "{p:?}"
    );
    assert!(
        p.hint
            .as_deref()
            .is_some_and(|h| h.contains("127.0.0.1:9001"))
    );
    assert!(p.line > 0, "{p:?}");
}

#[test]
fn client_facing_keys_are_refused_upstream_side() {
    assert!(at(
        &problems("[{name: a, abort: {reset: true}}]"),
        "[0].abort.reset"
    ));
    assert!(at(
        &problems("[{name: a, throttle: {bytes_per_second: 10}}]"),
        "[0].throttle"
    ));
    assert!(at(&problems("[{name: a}]"), "[0]"));
    assert!(at(
        &problems("[{name: a, abort: {status: 503}}, {name: a, abort: {status: 502}}]"),
        "[1].name"
    ));
    assert!(at(
        &problems("[{name: a, delay: {fixed: 1s, normal: {mean: 1s, stddev: 1s}}}]"),
        "[0].delay"
    ));
    assert!(at(
        &problems("[{name: a, delay: {lognormal: {mean: 0s, stddev: 1s}}}]"),
        "[0].delay.lognormal.mean"
    ));
}

#[test]
fn upstream_side_keys_are_refused_in_a_fault_layer() {
    let text = with("[]").replace(
        "{name: by_header}",
        "{name: x, endpoint: \"127.0.0.1:9000\", abort: {blackhole: true}}",
    );
    let d = parse("t.yaml", &text).expect_err("refused");
    let at = "listeners[0].routes[0].middleware[0].fault.rules[0]";
    assert!(d.iter().any(|p| p.path == format!("{at}.endpoint")), "{d}");
    assert!(
        d.iter().any(|p| p.path == format!("{at}.abort.blackhole")),
        "{d}"
    );
}

#[test]
fn a_runtime_fault_is_read_from_json_and_checked_against_the_running_config() {
    let config = parse("t.yaml", &with("[]")).unwrap_or_else(|d| panic!("{d}"));
    let ok = RuntimeFault::from_json(
        "drill",
        br#"{"upstream": "api", "ttl": "2s", "abort": {"status": 503}}"#,
    )
    .unwrap();
    assert_eq!(ok.rule.name, "drill");
    assert_eq!(ok.ttl.map(|t| t.get().as_secs()), Some(2));
    assert!(validate_runtime_fault(&config, &ok).is_empty());

    let check = |body: &str| {
        let f = RuntimeFault::from_json("drill", body.as_bytes()).unwrap();
        validate_runtime_fault(&config, &f)
    };
    let p = check(r#"{"route": "web", "percentage": 150, "abort": {"status": 503}}"#);
    assert_eq!(p[0].path, "percentage", "{p:?}");
    let p = check(r#"{"upstream": "nope", "abort": {"status": 503}}"#);
    assert_eq!(p[0].path, "upstream", "{p:?}");
    let p = check(r#"{"abort": {"status": 503}}"#);
    assert!(p[0].message.contains("exactly one of"), "{p:?}");
    let p = check(r#"{"upstream": "api", "endpoint": "10.0.0.1:1", "abort": {"status": 503}}"#);
    assert_eq!(p[0].path, "endpoint", "{p:?}");

    let e = RuntimeFault::from_json("drill", br#"{"upstream": "api", "abort": {"stauts": 503}}"#)
        .unwrap_err();
    assert!(e.contains("stauts"), "{e}");
    let e =
        RuntimeFault::from_json("drill", br#"{"name": "other", "upstream": "api"}"#).unwrap_err();
    assert!(e.starts_with("name:"), "{e}");
    assert!(RuntimeFault::from_json("drill", b"[1]").is_err());
}
