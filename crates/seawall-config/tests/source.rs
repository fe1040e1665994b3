//! `parse_located` keeps the source of a valid config, so reports made after parsing (the
//! resilience score) are located like parse errors: a written key at its value, a
//! defaulted one at its nearest written parent, credentials redacted in the quoted line.

use seawall_config::{Problem, Severity, parse_located};

const TEXT: &str = "\
listeners:
  - name: public
    listen: 127.0.0.1:8080
    routes:
      - upstream: app
        timeout: 5s
        middleware:
          - rate_limit:
              limits: [{ name: all, rate: \"10/s\", store: redis }]
              redis: { url: \"redis://:hunter2@127.0.0.1:6379\" }
upstreams:
  - name: app
    endpoints: [127.0.0.1:3000]
";

fn problem(path: &str) -> Problem {
    Problem {
        path: path.to_owned(),
        value: None,
        message: "something to look at".to_owned(),
        hint: Some("set it".to_owned()),
    }
}

#[test]
fn a_written_key_is_located_at_its_value_and_a_default_at_its_parent() {
    let located = parse_located("gw.yaml", TEXT).unwrap_or_else(|d| panic!("{d}"));
    assert!(located.warnings.is_empty());
    let source = &located.source;
    assert_eq!(source.file(), "gw.yaml");
    assert!(source.contains("listeners[0].routes[0].timeout"));
    assert!(!source.contains("upstreams[0].pool.idle_timeout"));

    let written = source.diagnostic(Severity::Info, problem("listeners[0].routes[0].timeout"));
    assert_eq!((written.line, written.column), (6, 18));
    assert_eq!(written.severity, Severity::Info);
    assert!(
        written
            .to_string()
            .starts_with("info: something to look at\n")
    );

    let defaulted = source.diagnostic(Severity::Warning, problem("upstreams[0].pool.idle_timeout"));
    assert_eq!(
        defaulted.line, 12,
        "at `- name: app`, the upstream's first key"
    );
    assert_eq!(defaulted.path, "upstreams[0].pool.idle_timeout");
}

#[test]
fn the_quoted_line_of_a_located_report_is_redacted() {
    let located = parse_located("gw.yaml", TEXT).unwrap_or_else(|d| panic!("{d}"));
    let path = "listeners[0].routes[0].middleware[0].rate_limit.redis.url";
    let d = located.source.diagnostic(Severity::Warning, problem(path));
    let snippet = d.snippet.as_deref().unwrap_or_default();
    assert!(!snippet.contains("hunter2"), "{snippet}");
    assert!(!d.to_string().contains("hunter2"));
}

#[test]
fn the_frame_is_the_rendered_diagnostic_without_its_first_line() {
    let located = parse_located("gw.yaml", TEXT).unwrap_or_else(|d| panic!("{d}"));
    let d = located
        .source
        .diagnostic(Severity::Warning, problem("listeners[0].routes[0].timeout"));
    let rendered = d.to_string();
    let (first, rest) = rendered.split_once('\n').expect("two lines at least");
    assert_eq!(first, "warning: something to look at");
    assert_eq!(rest, d.frame().to_string());
    assert!(rest.contains("--> gw.yaml:6:18") && rest.contains("= hint: set it"));
}

#[test]
fn an_invalid_config_is_reported_as_by_parse() {
    let bad = parse_located("bad.yaml", "listeners: []\nbogus: 1\n").expect_err("invalid");
    assert!(bad.iter().any(|d| d.message.contains("bogus")), "{bad}");
}
