//! `parse` reports every problem of a file, each at the right line with its key path, value
//! and hint.

use seawall_config::{Diagnostic, Diagnostics, Severity, parse};

fn problems(text: &str) -> Diagnostics {
    match parse("test.yaml", text) {
        Ok(config) => panic!("expected problems, got a valid config: {config:?}"),
        Err(diagnostics) => diagnostics,
    }
}

fn find<'a>(diagnostics: &'a Diagnostics, path: &str) -> &'a Diagnostic {
    diagnostics
        .iter()
        .find(|d| d.path == path)
        .unwrap_or_else(|| panic!("no diagnostic for `{path}` in:\n{diagnostics}"))
}

const THREE_PROBLEMS: &str = "\
listeners:
  - name: public
    listen: 127.0.0.1:8080
    idle_timout: 30s
    routes:
      - upstream: api
        timeout: 30
upstreams:
  - name: api
    endpoints: [127.0.0.1:9000]
    pool:
      max_idle_per_endpoint: lots
";

#[test]
fn every_structural_problem_is_reported_in_one_pass() {
    let diagnostics = problems(THREE_PROBLEMS);
    assert_eq!(diagnostics.len(), 3, "{diagnostics}");
    let lines: Vec<(usize, &str)> = diagnostics
        .iter()
        .map(|d| (d.line, d.path.as_str()))
        .collect();
    assert_eq!(
        lines,
        [
            (4, "listeners[0].idle_timout"),
            (7, "listeners[0].routes[0].timeout"),
            (12, "upstreams[0].pool.max_idle_per_endpoint"),
        ]
    );
    assert!(diagnostics.iter().all(|d| d.file == "test.yaml"));
}

#[test]
fn a_misspelt_key_gets_a_did_you_mean_hint() {
    let diagnostics = problems(THREE_PROBLEMS);
    let d = find(&diagnostics, "listeners[0].idle_timout");
    assert_eq!((d.line, d.column), (4, 5));
    assert_eq!(d.message, "unknown key `idle_timout`");
    assert_eq!(d.hint.as_deref(), Some("did you mean `idle_timeout`?"));
}

#[test]
fn a_bare_number_duration_is_told_to_add_a_unit() {
    let diagnostics = problems(THREE_PROBLEMS);
    let d = find(&diagnostics, "listeners[0].routes[0].timeout");
    assert_eq!((d.line, d.column), (7, 18));
    assert_eq!(d.value.as_deref(), Some("30"));
    assert!(d.message.contains("no unit"), "{d}");
    assert!(
        d.hint.as_deref().is_some_and(|h| h.contains("\"30s\"")),
        "{d}"
    );
}

#[test]
fn a_wrong_type_names_what_was_expected() {
    let diagnostics = problems(THREE_PROBLEMS);
    let d = find(&diagnostics, "upstreams[0].pool.max_idle_per_endpoint");
    assert_eq!(d.message, "expected a whole number, found `lots`");
    assert_eq!(d.value.as_deref(), Some("lots"));
}

#[test]
fn the_report_renders_like_a_compiler_and_counts_problems() {
    let text = problems(THREE_PROBLEMS).to_string();
    assert!(
        text.contains("error: unknown key `idle_timout`\n --> test.yaml:4:5\n"),
        "{text}"
    );
    assert!(text.contains("4 |     idle_timout: 30s\n"), "{text}");
    assert!(
        text.contains("  = key: listeners[0].idle_timout\n  = hint: did you mean `idle_timeout`?"),
        "{text}"
    );
    assert!(text.ends_with("3 problems found in test.yaml"), "{text}");
}

#[test]
fn a_response_header_timeout_longer_than_the_route_deadline_is_a_warning_with_both_values() {
    let (_, diagnostics) = seawall_config::parse_with_warnings(
        "test.yaml",
        "\
listeners:
  - name: public
    listen: 127.0.0.1:8080
    routes:
      - upstream: slow
        timeout: 10s
upstreams:
  - name: slow
    endpoints: [127.0.0.1:9000]
    timeouts:
      response_header: 30s
",
    )
    .expect("a warning, not an error: the config is valid");
    assert_eq!(diagnostics.len(), 1, "{diagnostics:?}");
    let d = &diagnostics[0];
    assert_eq!(d.path, "upstreams[0].timeouts.response_header");
    assert_eq!(d.severity, Severity::Warning);
    assert_eq!(d.line, 11);
    assert_eq!(d.value.as_deref(), Some("30s"));
    assert!(
        d.message.contains("30s") && d.message.contains("10s"),
        "{d}"
    );
    assert!(d.message.contains("listeners[0].routes[0].timeout"), "{d}");
    assert!(
        d.hint
            .as_deref()
            .is_some_and(|h| h.contains("never applies")),
        "{d}"
    );
}

#[test]
fn semantic_problems_are_located_at_their_keys() {
    let diagnostics = problems(
        "\
listeners:
  - name: public
    listen: 127.0.0.1:8080
    routes:
      - upstream: apii
        match: { host: \"api.*\", path_prefix: api }
upstreams:
  - name: api
    endpoints: [local_host:9000]
  - name: api
    endpoints: []
",
    );
    let at = |path: &str| {
        let d = find(&diagnostics, path);
        (d.line, d.column)
    };
    assert_eq!(at("listeners[0].routes[0].upstream"), (5, 19));
    assert_eq!(at("listeners[0].routes[0].match.host"), (6, 24));
    assert_eq!(at("listeners[0].routes[0].match.path_prefix"), (6, 46));
    assert_eq!(at("upstreams[0].endpoints[0]"), (9, 17));
    assert_eq!(at("upstreams[1].name"), (10, 11));
    assert_eq!(at("upstreams[1].endpoints"), (11, 16));
    let endpoint = find(&diagnostics, "upstreams[0].endpoints[0]");
    assert!(
        endpoint
            .hint
            .as_deref()
            .is_some_and(|h| h.contains("letters, digits and `-`")),
        "{endpoint}"
    );
}

#[test]
fn a_defaulted_key_is_located_at_its_nearest_written_parent() {
    let diagnostics = problems(
        "\
listeners:
  - name: public
    listen: 127.0.0.1:8080
    routes: [{ upstream: u }]
upstreams:
  - name: u
    endpoints: [127.0.0.1:9000]
    pool:
      max_connections_per_endpoint: 8
",
    );
    let d = find(&diagnostics, "upstreams[0].pool.max_idle_per_endpoint");
    assert_eq!((d.line, d.column), (8, 5), "{d}");
    assert_eq!(d.value.as_deref(), Some("128"));
}

#[test]
fn a_missing_required_key_is_reported_at_its_mapping() {
    let diagnostics = problems("listeners:\n  - name: public\n    routes: []\n");
    let d = find(&diagnostics, "listeners[0].listen");
    assert_eq!(d.message, "missing required key `listen`");
    assert_eq!(d.line, 2);
}

#[test]
fn an_unknown_middleware_gets_a_suggestion() {
    let diagnostics = problems(
        "\
listeners:
  - name: public
    listen: 127.0.0.1:8080
    routes:
      - upstream: u
        middleware: [request_id, acces_log, headers, {debug: {}}]
upstreams: [{ name: u, endpoints: [127.0.0.1:9000] }]
",
    );
    let unknown = find(&diagnostics, "listeners[0].routes[0].middleware[1]");
    assert_eq!(unknown.hint.as_deref(), Some("did you mean `access_log`?"));
    let bare = find(&diagnostics, "listeners[0].routes[0].middleware[2]");
    assert_eq!(bare.message, "`headers` needs settings");
    let settings = find(&diagnostics, "listeners[0].routes[0].middleware[3]");
    assert_eq!(settings.message, "`debug` takes no settings");
}

#[test]
fn a_bad_listen_address_says_ip_and_port() {
    let diagnostics =
        problems("listeners:\n  - name: public\n    listen: localhost:80\n    routes: []\n");
    let d = find(&diagnostics, "listeners[0].listen");
    assert_eq!(d.message, "not an `ip:port` address");
    assert_eq!((d.line, d.column), (3, 13));
}

#[test]
fn a_yaml_syntax_error_stops_with_its_position() {
    let diagnostics = problems("listeners:\n  - name: [unclosed\n");
    assert_eq!(diagnostics.len(), 1);
    assert!(
        diagnostics.0[0].message.starts_with("invalid YAML"),
        "{diagnostics}"
    );
    assert!(diagnostics.0[0].line >= 2, "{diagnostics}");
}

#[test]
fn an_empty_file_is_reported() {
    let diagnostics = problems("");
    assert_eq!(diagnostics.0[0].message, "the file is empty");
}

#[test]
fn an_unreadable_file_is_reported_with_its_name() {
    let path = std::path::Path::new("/nonexistent/seawall.yaml");
    let diagnostics = seawall_config::load(path).expect_err("the file does not exist");
    assert_eq!(diagnostics.0[0].file, "/nonexistent/seawall.yaml");
    assert!(
        diagnostics.0[0]
            .message
            .starts_with("cannot read config file"),
        "{diagnostics}"
    );
    assert!(
        diagnostics
            .to_string()
            .contains("--> /nonexistent/seawall.yaml\n"),
        "{diagnostics}"
    );
}

#[test]
fn an_exposed_admin_api_needs_an_explicit_token_env() {
    let base = "listeners:\n  - name: p\n    listen: 127.0.0.1:8080\n    routes: [{ upstream: u }]\nupstreams: [{ name: u, endpoints: [127.0.0.1:9000] }]\n";
    let exposed = format!("{base}admin:\n  listen: 0.0.0.0:9901\n");
    let diagnostics = problems(&exposed);
    let d = find(&diagnostics, "admin.listen");
    assert!(
        d.hint.as_deref().is_some_and(|h| h.contains("token")),
        "{d}"
    );
    let with_token = format!("{base}admin:\n  listen: 0.0.0.0:9901\n  token_env: ADMIN_TOKEN\n");
    assert!(parse("t.yaml", &with_token).is_ok());
}

#[test]
fn semantic_problems_are_reported_alongside_structural_ones() {
    let diagnostics = problems(
        "\
listeners:
  - name: public
    listen: 127.0.0.1:8080
    max_conections: 10
    routes:
      - upstream: missing
        timeout: 5
upstreams:
  - name: u
    endpoints: []
",
    );
    let found: Vec<&str> = diagnostics.iter().map(|d| d.path.as_str()).collect();
    assert_eq!(
        found,
        [
            "listeners[0].max_conections",
            "listeners[0].routes[0].upstream",
            "listeners[0].routes[0].timeout",
            "upstreams[0].endpoints",
        ],
        "{diagnostics}"
    );
}

#[test]
fn a_dropped_route_does_not_shift_other_problems_onto_the_wrong_route() {
    // routes[0] lacks `upstream`, so it cannot be recovered; nothing may then be reported
    // about routes[1] at the index of routes[0].
    let diagnostics = problems(
        "\
listeners:
  - name: public
    listen: 127.0.0.1:8080
    routes:
      - timeout: 5s
      - upstream: nowhere
upstreams: [{ name: u, endpoints: [127.0.0.1:9000] }]
",
    );
    assert!(
        diagnostics.iter().all(
            |d| d.path != "listeners[0].routes[0].upstream" || d.message.starts_with("missing")
        ),
        "{diagnostics}"
    );
}

#[test]
fn quoted_numbers_and_null_optionals_are_accepted_like_serde_does() {
    let config = parse(
        "t.yaml",
        "\
listeners:
  - name: 8080
    listen: 127.0.0.1:8080
    max_connections: \"100\"
    routes: [{ upstream: u }]
upstreams:
  - name: u
    endpoints: [127.0.0.1:9000]
    timeouts: { response_header: null }
    pool: { tcp_keepalive: ~ }
",
    )
    .unwrap_or_else(|d| panic!("{d}"));
    assert_eq!(config.listeners[0].name, "8080");
    assert_eq!(config.listeners[0].max_connections, 100);
    assert_eq!(config.upstreams[0].pool.tcp_keepalive, None);
}

#[test]
fn anchors_aliases_and_merge_keys_are_accepted() {
    let text = "\
listeners:
  - name: public
    listen: 127.0.0.1:8080
    routes:
      - upstream: a
        middleware: &chain [request_id, access_log]
      - upstream: b
        match: { path_prefix: /b }
        middleware: *chain
upstreams:
  - name: a
    endpoints: [127.0.0.1:9000]
    pool: &pool { max_idle_per_endpoint: 4, max_connections_per_endpoint: 8 }
  - name: b
    endpoints: [127.0.0.1:9001]
    pool:
      <<: *pool
      idle_timeout: 5s
";
    let config = parse("t.yaml", text).unwrap_or_else(|d| panic!("{d}"));
    assert_eq!(config.upstreams[1].pool.max_connections_per_endpoint, 8);
    assert_eq!(config.listeners[0].routes[1].middleware.len(), 2);
}

#[test]
fn a_problem_without_a_position_renders_the_file_alone() {
    let diagnostic = Diagnostic {
        severity: Severity::Error,
        file: "gone.yaml".into(),
        line: 0,
        column: 0,
        path: String::new(),
        value: None,
        message: "cannot read config file: not found".into(),
        hint: Some("check the path".into()),
        snippet: None,
        snippet_column: 0,
    };
    assert_eq!(
        diagnostic.to_string(),
        "error: cannot read config file: not found\n --> gone.yaml\n  = hint: check the path"
    );
    assert_eq!(
        Diagnostics(vec![diagnostic]).to_string().lines().last(),
        Some("1 problem found in gone.yaml")
    );
}

#[test]
fn code_frames_redact_url_passwords_and_secret_values() {
    let text = "\
listeners:
  - name: public
    listen: 127.0.0.1:8080
    routes:
      - upstream: api
        middleware:
          - headers: {request: {set: {authorization: Bearer LeakMeToken}}}
          - rate_limit:
              redis: {url: \"http://admin:LeakMePw@10.0.0.1:6379\"}
              limits: [{name: a, rate: \"1/s\", store: redis}]
    bogus: 1
upstreams:
  - name: api
    endpoints: [127.0.0.1:9000]
    idle: \"redis://:LeakMeToo@h:1\"
";
    let shown = problems(text).to_string();
    for secret in ["LeakMePw", "LeakMeToo"] {
        assert!(!shown.contains(secret), "{secret} shown:\n{shown}");
    }
    assert!(shown.contains("http://admin:***@10.0.0.1:6379"), "{shown}");
    assert!(shown.contains("redis://:***@h:1"), "{shown}");
}

#[test]
fn control_characters_in_the_file_are_escaped_in_diagnostics() {
    let d = problems("listeners: []\n\"ev\\e[2Jil\": 1\n");
    let shown = d.to_string();
    assert!(!shown.contains('\u{1b}'), "raw escape in {shown:?}");
    assert!(shown.contains("ev\\u{1b}[2Jil"), "{shown}");
}

#[test]
fn a_config_over_the_yaml_node_budget_names_the_limit_and_the_fix() {
    // 250 000 nodes is the parser's budget; a runaway generated list goes past it.
    let mut text = String::from(
        "listeners:\n  - name: public\n    listen: 127.0.0.1:8080\n    routes: []\nupstreams:\n  - name: up\n    endpoints:\n",
    );
    for _ in 0..260_000 {
        text.push_str("      - 127.0.0.1:1\n");
    }
    let d = problems(&text);
    let rendered = d.to_string();
    let budget = d
        .iter()
        .find(|d| d.message.contains("YAML parser"))
        .unwrap_or_else(|| panic!("no budget diagnostic in:\n{rendered}"));
    assert!(!rendered.contains("Nodes {"), "{rendered}");
    assert!(
        budget.message.contains("more than 250000 YAML nodes"),
        "{budget:?}"
    );
    let hint = budget.hint.as_deref().unwrap_or_default();
    assert!(hint.contains("runaway list"), "{budget:?}");
}
