//! `validate` finds the semantic problems of a typed config, each with its key path.

use seawall_config::{
    Config, HumanDuration, MiddlewareConfig, Problem, RouteConfig, SimConfig, UpstreamConfig,
    default_config, validate,
};

fn paths(problems: &[Problem]) -> Vec<&str> {
    problems.iter().map(|p| p.path.as_str()).collect()
}

fn problem<'a>(problems: &'a [Problem], path: &str) -> &'a Problem {
    problems
        .iter()
        .find(|p| p.path == path)
        .unwrap_or_else(|| panic!("no problem at `{path}` in {problems:#?}"))
}

fn route(config: &mut Config) -> &mut RouteConfig {
    &mut config.listeners[0].routes[0]
}

fn upstream(config: &mut Config) -> &mut UpstreamConfig {
    &mut config.upstreams[0]
}

#[test]
fn the_default_config_has_no_problems() {
    assert_eq!(validate(&default_config()), []);
}

#[test]
fn an_unknown_upstream_is_reported_with_a_suggestion() {
    let mut config = default_config();
    route(&mut config).upstream = "simm".into();
    let problems = validate(&config);
    let p = problem(&problems, "listeners[0].routes[0].upstream");
    assert_eq!(p.hint.as_deref(), Some("did you mean `sim`?"));
}

#[test]
fn duplicate_listener_and_upstream_names_are_reported() {
    let mut config = default_config();
    let mut second = config.listeners[0].clone();
    second.listen = "127.0.0.1:8090".parse().unwrap();
    config.listeners.push(second);
    config.upstreams.push(config.upstreams[0].clone());
    let problems = validate(&config);
    assert!(
        paths(&problems).contains(&"listeners[1].name"),
        "{problems:#?}"
    );
    assert!(
        paths(&problems).contains(&"upstreams[1].name"),
        "{problems:#?}"
    );
}

#[test]
fn duplicate_listen_addresses_are_reported_across_listeners_admin_and_sim() {
    let mut config = default_config();
    config.admin.listen = "127.0.0.1:8080".parse().unwrap();
    config.sim = Some(SimConfig {
        listen: "0.0.0.0:8080".parse().unwrap(),
    });
    let problems = validate(&config);
    assert!(
        problem(&problems, "admin.listen")
            .hint
            .as_deref()
            .unwrap()
            .contains("listeners[0].listen")
    );
    assert!(paths(&problems).contains(&"sim.listen"), "{problems:#?}");
}

#[test]
fn port_zero_never_collides() {
    let mut config = default_config();
    config.listeners[0].listen = "127.0.0.1:0".parse().unwrap();
    config.admin.listen = "127.0.0.1:0".parse().unwrap();
    config.sim = Some(SimConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
    });
    assert_eq!(validate(&config), []);
}

#[test]
fn empty_and_malformed_endpoints_are_reported_and_host_names_accepted() {
    let mut config = default_config();
    upstream(&mut config).endpoints = vec![
        "backend.internal:80".into(),
        "127.0.0.1:8081".into(),
        "Backend.Internal:80".into(),
        "backend_internal:80".into(),
        "backend.internal".into(),
        "backend.internal:0".into(),
        "https://backend.internal:443".into(),
    ];
    let problems = validate(&config);
    assert_eq!(
        paths(&problems),
        [
            "upstreams[0].endpoints[2]",
            "upstreams[0].endpoints[3]",
            "upstreams[0].endpoints[4]",
            "upstreams[0].endpoints[5]",
            "upstreams[0].endpoints[6]",
        ],
        "{problems:#?}"
    );
    let hint = |k: usize| {
        let p = problem(&problems, &format!("upstreams[0].endpoints[{k}]"));
        (p.message.clone(), p.hint.clone().unwrap_or_default())
    };
    assert!(hint(2).0.contains("listed twice"), "{:?}", hint(2));
    assert!(
        hint(3).1.contains("letters, digits and `-`"),
        "{:?}",
        hint(3)
    );
    assert!(hint(4).1.contains("`backend.internal:80`"), "{:?}", hint(4));
    assert!(hint(5).0.contains("must not be 0"), "{:?}", hint(5));
    assert!(hint(6).1.contains("drop the scheme"), "{:?}", hint(6));
    upstream(&mut config).endpoints.clear();
    assert_eq!(paths(&validate(&config)), ["upstreams[0].endpoints"]);
}

#[test]
fn dns_durations_are_positive_and_the_ttl_bounds_ordered() {
    let mut config = default_config();
    let dns = &mut upstream(&mut config).dns;
    dns.min_ttl = HumanDuration::from_secs(10);
    dns.max_ttl = HumanDuration::from_secs(5);
    dns.resolve_timeout = HumanDuration::from_secs(0);
    assert_eq!(
        paths(&validate(&config)),
        [
            "upstreams[0].dns.resolve_timeout",
            "upstreams[0].dns.max_ttl"
        ]
    );
}

#[test]
fn a_path_prefix_must_start_with_a_slash() {
    let mut config = default_config();
    route(&mut config).matcher.path_prefix = "api".into();
    assert_eq!(
        paths(&validate(&config)),
        ["listeners[0].routes[0].match.path_prefix"]
    );
}

#[test]
fn host_patterns_are_any_exact_or_suffix_wildcards() {
    for good in [
        "*",
        "api.example.com",
        "*.example.com",
        "localhost",
        "10.0.0.1",
    ] {
        let mut config = default_config();
        route(&mut config).matcher.host = good.into();
        assert_eq!(validate(&config), [], "{good}");
    }
    for bad in [
        "api.*",
        "*example.com",
        "a..b",
        "api.example.com:8080",
        "",
        "ex ample.com",
    ] {
        let mut config = default_config();
        route(&mut config).matcher.host = bad.into();
        assert_eq!(
            paths(&validate(&config)),
            ["listeners[0].routes[0].match.host"],
            "{bad}"
        );
    }
}

#[test]
fn more_idle_than_total_connections_is_reported() {
    let mut config = default_config();
    upstream(&mut config).pool.max_idle_per_endpoint = 20;
    upstream(&mut config).pool.max_connections_per_endpoint = 10;
    assert_eq!(
        paths(&validate(&config)),
        ["upstreams[0].pool.max_idle_per_endpoint"]
    );
}

#[test]
fn zero_limits_and_zero_timeouts_are_reported() {
    let mut config = default_config();
    config.listeners[0].max_connections = 0;
    config.listeners[0].idle_timeout = HumanDuration::from_secs(0);
    upstream(&mut config).pool.max_connections_per_endpoint = 0;
    upstream(&mut config).pool.max_idle_per_endpoint = 0;
    upstream(&mut config).timeouts.connect = HumanDuration::from_secs(0);
    route(&mut config).timeout = HumanDuration::from_secs(0);
    let problems = validate(&config);
    let mut found = paths(&problems);
    found.sort_unstable();
    assert_eq!(
        found,
        [
            "listeners[0].idle_timeout",
            "listeners[0].max_connections",
            "listeners[0].routes[0].timeout",
            "upstreams[0].pool.max_connections_per_endpoint",
            "upstreams[0].timeouts.connect",
        ],
        "{problems:#?}"
    );
}

#[test]
fn a_duplicate_route_match_on_one_listener_is_reported() {
    let mut config = default_config();
    route(&mut config).matcher.path_prefix = "/api".into();
    let mut twin = config.listeners[0].routes[0].clone();
    twin.name = None;
    twin.matcher.path_prefix = "/api/".into();
    twin.matcher.host = "*".into();
    config.listeners[0].routes.push(twin);
    let problems = validate(&config);
    assert_eq!(
        paths(&problems),
        ["listeners[0].routes[1].match"],
        "{problems:#?}"
    );
}

#[test]
fn a_middleware_listed_twice_is_reported() {
    let mut config = default_config();
    route(&mut config)
        .middleware
        .push(MiddlewareConfig::AccessLog);
    assert_eq!(
        paths(&validate(&config)),
        ["listeners[0].routes[0].middleware[3]"]
    );
}

#[test]
fn histogram_buckets_must_be_positive_and_strictly_increasing() {
    let mut config = default_config();
    config.metrics.request_duration_buckets = vec![0.0, 0.5, 0.5, 0.25, f64::NAN];
    let problems = validate(&config);
    assert_eq!(
        paths(&problems),
        [
            "metrics.request_duration_buckets[0]",
            "metrics.request_duration_buckets[2]",
            "metrics.request_duration_buckets[3]",
            "metrics.request_duration_buckets[4]",
        ]
    );
}

#[test]
fn a_non_loopback_admin_api_without_a_token_env_is_reported() {
    let mut config = default_config();
    config.admin.listen = "0.0.0.0:9901".parse().unwrap();
    assert_eq!(validate(&config), []);
    config.admin.token_env = String::new();
    let problems = validate(&config);
    assert!(
        problem(&problems, "admin.listen")
            .hint
            .as_deref()
            .unwrap()
            .contains("token")
    );
}

#[test]
fn a_response_header_timeout_beyond_the_route_deadline_is_a_warning() {
    let mut config = default_config();
    upstream(&mut config).timeouts.response_header = Some(HumanDuration::from_secs(11));
    assert_eq!(validate(&config), [], "a warning, not an error");
    let problems = seawall_config::warnings(&config);
    let p = problem(&problems, "upstreams[0].timeouts.response_header");
    assert!(
        p.message.contains("11s") && p.message.contains("10s"),
        "{p}"
    );
}
