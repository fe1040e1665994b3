//! The `fault` middleware's config: defaults, each action's shape, and each semantic
//! problem reported at its key path with a hint.

use seawall_config::{Diagnostics, FaultConfig, MiddlewareConfig, parse};

fn with(layer: &str) -> String {
    format!(
        "listeners:
  - name: public
    listen: 127.0.0.1:8080
    routes:
      - upstream: api
        middleware:
          - fault: {layer}
upstreams:
  - name: api
    endpoints: [\"127.0.0.1:9000\"]
"
    )
}

const AT: &str = "listeners[0].routes[0].middleware[0].fault";

fn layer(text: &str) -> FaultConfig {
    let config = parse("t.yaml", &with(text)).unwrap_or_else(|d| panic!("{d}"));
    match &config.listeners[0].routes[0].middleware[0] {
        MiddlewareConfig::Fault(f) => f.clone(),
        other => panic!("{other:?}"),
    }
}

fn problems(text: &str) -> Diagnostics {
    match parse("t.yaml", &with(text)) {
        Ok(c) => panic!("expected problems, got {c:?}"),
        Err(d) => d,
    }
}

fn has(d: &Diagnostics, path: &str) -> bool {
    d.iter().any(|p| p.path == format!("{AT}.{path}"))
}

#[test]
fn a_minimal_rule_gets_the_documented_defaults() {
    let f = layer("{rules: [{name: outage, abort: {status: 503}}]}");
    assert_eq!(f.seed, None);
    let r = &f.rules[0];
    assert_eq!(r.percentage, 100.0);
    assert_eq!((r.first, r.max_active), (None, None));
    assert!(r.matches.methods.is_empty() && r.matches.path_prefix.is_none());
    assert_eq!(r.abort.as_ref().unwrap().status, Some(503));
    assert!(r.delay.is_none());
}

#[test]
fn every_key_parses() {
    let f = layer(
        "{seed: 42, rules: [
            {name: slow, match: {methods: [GET], path_prefix: /api, headers: {x-drill: on}},
             percentage: 30.5, delay: {uniform: {min: 100ms, max: 200ms}}, first: 2, max_active: 5},
            {name: fixed, delay: {fixed: 200ms}, abort: {grpc_status: 14}},
            {name: rst, abort: {reset: true}},
            {name: fin, abort: {close: true}}]}",
    );
    assert_eq!(f.seed, Some(42));
    assert_eq!(f.rules.len(), 4);
    let r = &f.rules[0];
    assert_eq!(r.matches.methods, ["GET"]);
    assert_eq!(r.matches.headers["x-drill"], "on");
    assert_eq!(r.percentage, 30.5);
    assert_eq!(
        r.delay
            .as_ref()
            .unwrap()
            .uniform
            .as_ref()
            .unwrap()
            .max
            .get()
            .as_millis(),
        200
    );
    assert_eq!(
        f.rules[1]
            .delay
            .as_ref()
            .unwrap()
            .fixed
            .unwrap()
            .get()
            .as_millis(),
        200
    );
    assert!(f.rules[2].abort.as_ref().unwrap().reset);
    assert!(f.rules[3].abort.as_ref().unwrap().close);
}

#[test]
fn a_percentage_over_100_names_its_key_with_a_hint() {
    let d = problems("{rules: [{name: a, percentage: 150, abort: {status: 503}}]}");
    let p = d
        .iter()
        .find(|p| p.path == format!("{AT}.rules[0].percentage"))
        .unwrap_or_else(|| panic!("{d}"));
    assert!(p.message.contains("between 0 and 100"), "{}", p.message);
    assert!(p.hint.is_some());
    assert!(p.line > 0, "{p:?}");
}

#[test]
fn each_problem_is_reported_at_its_key() {
    assert!(has(&problems("{rules: []}"), "rules"));
    assert!(has(&problems("{rules: [{name: a}]}"), "rules[0]"));
    assert!(has(
        &problems("{rules: [{name: a, abort: {status: 700}}]}"),
        "rules[0].abort.status"
    ));
    assert!(has(
        &problems("{rules: [{name: a, abort: {status: 100}}]}"),
        "rules[0].abort.status"
    ));
    assert!(has(
        &problems("{rules: [{name: a, abort: {grpc_status: 17}}]}"),
        "rules[0].abort.grpc_status"
    ));
    assert!(has(
        &problems("{rules: [{name: a, abort: {status: 503, reset: true}}]}"),
        "rules[0].abort"
    ));
    assert!(has(
        &problems("{rules: [{name: a, abort: {}}]}"),
        "rules[0].abort"
    ));
    assert!(has(
        &problems("{rules: [{name: a, delay: {}}]}"),
        "rules[0].delay"
    ));
    assert!(has(
        &problems("{rules: [{name: a, delay: {uniform: {min: 2s, max: 1s}}}]}"),
        "rules[0].delay.uniform.min"
    ));
    assert!(has(
        &problems("{rules: [{name: a, abort: {status: 503}}, {name: a, abort: {status: 500}}]}"),
        "rules[1].name"
    ));
    assert!(has(
        &problems("{rules: [{name: \"a b\", abort: {status: 503}}]}"),
        "rules[0].name"
    ));
    assert!(has(
        &problems("{rules: [{name: a, first: 0, abort: {status: 503}}]}"),
        "rules[0].first"
    ));
    assert!(has(
        &problems("{rules: [{name: a, max_active: 0, abort: {status: 503}}]}"),
        "rules[0].max_active"
    ));
    assert!(has(
        &problems("{rules: [{name: a, match: {path_prefix: api}, abort: {status: 503}}]}"),
        "rules[0].match.path_prefix"
    ));
    assert!(has(
        &problems("{rules: [{name: a, match: {methods: [\"G T\"]}, abort: {status: 503}}]}"),
        "rules[0].match.methods[0]"
    ));
}
