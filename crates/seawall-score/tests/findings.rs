//! One test per finding code: a config that breaks the rule makes the code fire at the
//! right key path and line, and the same config with the fix applied is silent. The
//! registry test (`registry.rs`) checks that every code in the registry is listed in
//! [`TESTED`].

mod support;

use support::{CLEAN_LISTENER, CLEAN_ROUTE, CLEAN_UPSTREAM, Cfg};

/// Scores `yaml` and asserts `code` fires at `key`, on the line that contains `at`.
fn fires(code: &str, key: &str, at: &str, yaml: &str) {
    let scored = support::score(yaml);
    let hit = scored
        .findings
        .iter()
        .find(|f| f.code() == code && f.key() == key)
        .unwrap_or_else(|| {
            let got: Vec<_> = scored
                .findings
                .iter()
                .map(|f| (f.code(), f.key()))
                .collect();
            panic!("{code} at {key} did not fire; findings: {got:?}\n{yaml}")
        });
    let line = support::line_of(yaml, at);
    assert_eq!(hit.diagnostic.line, line, "{code}: line of `{at}`\n{yaml}");
    assert!(!hit.fix().is_empty() && !hit.rule.why.is_empty());
    assert_eq!(hit.diagnostic.severity, hit.rule.level);
}

/// Scores `yaml` and asserts `code` does not fire.
fn silent(code: &str, yaml: &str) {
    let scored = support::score(yaml);
    let hits: Vec<_> = scored
        .findings
        .iter()
        .filter(|f| f.code() == code)
        .map(|f| f.key().to_owned())
        .collect();
    assert!(
        hits.is_empty(),
        "{code} fired at {hits:?} on the fixed config\n{yaml}"
    );
}

macro_rules! findings {
    ($($test:ident: $code:literal at $key:literal on $at:literal, bad $bad:expr, fixed $fixed:expr;)*) => {
        $(
            #[test]
            fn $test() {
                fires($code, $key, $at, &$bad.yaml());
                silent($code, &$fixed.yaml());
            }
        )*
        /// The codes tested here.
        pub const TESTED: &[&str] = &[$($code),*];
    };
}

const R: &str = "listeners[0].routes[0]";

fn route(lines: &str) -> Cfg {
    Cfg {
        route: lines.to_owned(),
        ..Cfg::default()
    }
}

fn upstream(lines: &str) -> Cfg {
    Cfg {
        upstream: lines.to_owned(),
        ..Cfg::default()
    }
}

fn both(route_lines: &str, upstream_lines: &str) -> Cfg {
    Cfg {
        route: route_lines.to_owned(),
        upstream: upstream_lines.to_owned(),
        ..Cfg::default()
    }
}

fn public(listener_lines: &str, route_lines: &str) -> Cfg {
    Cfg {
        listener: listener_lines.to_owned(),
        route: route_lines.to_owned(),
        ..Cfg::default()
    }
}

const RETRY: &str =
    "        timeout: 5s\n        retry: { max_attempts: 2, per_try_timeout: 1s }\n";
const BREAKER: &str = "    breaker: {}\n";
const LOCAL_LIMIT: &str =
    "        middleware:\n          - rate_limit: { limits: [{ name: all, rate: \"100/s\" }] }\n";

fn redis(timeout: &str, on_error: &str) -> String {
    format!(
        "        timeout: 5s\n        middleware:\n          - rate_limit:\n              limits: [{{ name: all, rate: \"100/s\", store: redis }}]\n              redis: {{ url: \"redis://127.0.0.1:6379\", timeout: {timeout}, on_error: {on_error} }}\n"
    )
}

findings! {
    sw101_missing_response_header_timeout:
        "SW101" at "upstreams[0].timeouts.response_header" on "- name: app",
        bad upstream("    upstream_keepalive: 75s\n    pool: { idle_timeout: 30s }\n"),
        fixed Cfg::default();
    sw102_route_timeout_left_to_the_default:
        "SW102" at "listeners[0].routes[0].timeout" on "- name: api",
        bad route(""),
        fixed route("        timeout: 5s\n");
    sw103_huge_route_deadline:
        "SW103" at "listeners[0].routes[0].timeout" on "timeout: 90s",
        bad route("        timeout: 90s\n"),
        fixed route("        timeout: 30s\n");
    sw104_retries_without_a_per_try_bound_below_the_deadline:
        "SW104" at "listeners[0].routes[0].retry.per_try_timeout" on "retry:",
        bad both("        timeout: 5s\n        retry: { max_attempts: 2 }\n", &format!("    upstream_keepalive: 75s\n    pool: {{ idle_timeout: 30s }}\n{BREAKER}")),
        fixed both(RETRY, &format!("{CLEAN_UPSTREAM}{BREAKER}"));
    sw105_response_header_not_below_the_deadline:
        "SW105" at "upstreams[0].timeouts.response_header" on "response_header: 5s",
        bad upstream("    timeouts: { response_header: 5s }\n    upstream_keepalive: 75s\n    pool: { idle_timeout: 30s }\n"),
        fixed Cfg::default();
    sw201_retries_without_a_budget:
        "SW201" at "upstreams[0].retry_budget.ratio" on "ratio: 1.0",
        bad both(RETRY, &format!("{CLEAN_UPSTREAM}{BREAKER}    retry_budget: {{ ratio: 1.0 }}\n")),
        fixed both(RETRY, &format!("{CLEAN_UPSTREAM}{BREAKER}    retry_budget: {{ ratio: 0.2 }}\n"));
    sw202_retries_on_non_idempotent_methods:
        "SW202" at "listeners[0].routes[0].retry.non_idempotent" on "non_idempotent: true",
        bad both("        timeout: 5s\n        retry: { max_attempts: 2, per_try_timeout: 1s, non_idempotent: true }\n", &format!("{CLEAN_UPSTREAM}{BREAKER}")),
        fixed both("        timeout: 5s\n        retry: { max_attempts: 2, per_try_timeout: 1s, non_idempotent: false }\n", &format!("{CLEAN_UPSTREAM}{BREAKER}"));
    sw203_hedging_without_a_budget:
        "SW203" at "upstreams[0].retry_budget.ratio" on "ratio: 1.5",
        bad both("        timeout: 5s\n        hedge: { delay: 50ms }\n", &format!("{CLEAN_UPSTREAM}{BREAKER}    retry_budget: {{ ratio: 1.5 }}\n")),
        fixed both("        timeout: 5s\n        hedge: { delay: 50ms }\n", &format!("{CLEAN_UPSTREAM}{BREAKER}    retry_budget: {{ ratio: 0.1 }}\n"));
    sw204_later_tries_cannot_fit_in_the_deadline:
        "SW204" at "listeners[0].routes[0].retry.per_try_timeout" on "retry:",
        bad both("        timeout: 5s\n        retry: { max_attempts: 3, per_try_timeout: 2s }\n", &format!("{CLEAN_UPSTREAM}{BREAKER}")),
        fixed both("        timeout: 5s\n        retry: { max_attempts: 3, per_try_timeout: 1500ms }\n", &format!("{CLEAN_UPSTREAM}{BREAKER}"));
    sw205_retry_and_hedge_amplification:
        "SW205" at "listeners[0].routes[0].retry.max_attempts" on "retry:",
        bad both("        timeout: 5s\n        retry: { max_attempts: 2, per_try_timeout: 1s }\n        hedge: { delay: 50ms, max_extra: 1 }\n", &format!("{CLEAN_UPSTREAM}{BREAKER}")),
        fixed both("        timeout: 5s\n        retry: { max_attempts: 3, per_try_timeout: 1s }\n", &format!("{CLEAN_UPSTREAM}{BREAKER}"));
    sw206_per_try_timeout_not_retried:
        "SW206" at "listeners[0].routes[0].retry.retry_on" on "retry:",
        bad both(RETRY, &format!("{CLEAN_UPSTREAM}{BREAKER}")),
        fixed both("        timeout: 5s\n        retry: { max_attempts: 2, per_try_timeout: 1s, retry_on: [503, per_try_timeout] }\n", &format!("{CLEAN_UPSTREAM}{BREAKER}"));
    sw301_retries_without_a_breaker:
        "SW301" at "upstreams[0].breaker" on "- name: app",
        bad both(RETRY, CLEAN_UPSTREAM),
        fixed both(RETRY, &format!("{CLEAN_UPSTREAM}{BREAKER}"));
    sw302_bulkhead_queue_without_queue_timeout:
        "SW302" at "upstreams[0].concurrency.queue_timeout" on "concurrency:",
        bad upstream(&format!("{CLEAN_UPSTREAM}    concurrency: {{ max_concurrent: 10, max_pending: 10 }}\n")),
        fixed upstream(&format!("{CLEAN_UPSTREAM}    concurrency: {{ max_concurrent: 10, max_pending: 10, queue_timeout: 100ms }}\n"));
    sw303_several_endpoints_without_outlier_or_health_checks:
        "SW303" at "upstreams[0].outlier" on "- name: app",
        bad Cfg { endpoints: "[127.0.0.1:3000, 127.0.0.1:3001]".into(), ..Cfg::default() },
        fixed Cfg { endpoints: "[127.0.0.1:3000, 127.0.0.1:3001]".into(), upstream: format!("{CLEAN_UPSTREAM}    outlier: {{}}\n"), ..Cfg::default() };
    sw304_outlier_may_eject_every_endpoint:
        "SW304" at "upstreams[0].outlier.max_ejection_percent" on "max_ejection_percent: 100",
        bad upstream(&format!("{CLEAN_UPSTREAM}    outlier: {{ max_ejection_percent: 100 }}\n")),
        fixed upstream(&format!("{CLEAN_UPSTREAM}    outlier: {{ max_ejection_percent: 34 }}\n"));
    sw305_stale_cache_without_max_age:
        "SW305" at "listeners[0].routes[0].fallback.stale_cache.max_age" on "fallback:",
        bad route("        timeout: 5s\n        fallback: { stale_cache: {} }\n"),
        fixed route("        timeout: 5s\n        fallback: { stale_cache: { max_age: 60s } }\n");
    sw306_fallback_to_the_same_servers:
        "SW306" at "listeners[0].routes[0].fallback.upstream" on "upstream: standby",
        bad Cfg { route: "        timeout: 5s\n        fallback: { upstream: standby }\n".into(), extra: "  - name: standby\n    endpoints: [127.0.0.1:3000]\n".into(), ..Cfg::default() },
        fixed Cfg { route: "        timeout: 5s\n        fallback: { upstream: standby }\n".into(), extra: "  - name: standby\n    endpoints: [127.0.0.2:3000]\n".into(), ..Cfg::default() };
    sw401_pool_idle_timeout_not_below_the_upstream_keepalive:
        "SW401" at "upstreams[0].pool.idle_timeout" on "idle_timeout: 30s",
        bad upstream("    timeouts: { response_header: 2s }\n    upstream_keepalive: 20s\n    pool: { idle_timeout: 30s }\n"),
        fixed upstream("    timeouts: { response_header: 2s }\n    upstream_keepalive: 20s\n    pool: { idle_timeout: 15s }\n");
    sw402_upstream_keepalive_unknown:
        "SW402" at "upstreams[0].upstream_keepalive" on "- name: app",
        bad upstream("    timeouts: { response_header: 2s }\n    pool: { idle_timeout: 30s }\n"),
        fixed Cfg::default();
    sw403_unbounded_connections_per_endpoint:
        "SW403" at "upstreams[0].pool.max_connections_per_endpoint" on "max_connections_per_endpoint: 100000",
        bad upstream("    timeouts: { response_header: 2s }\n    upstream_keepalive: 75s\n    pool: { idle_timeout: 30s, max_connections_per_endpoint: 100000 }\n"),
        fixed upstream("    timeouts: { response_header: 2s }\n    upstream_keepalive: 75s\n    pool: { idle_timeout: 30s, max_connections_per_endpoint: 1024 }\n");
    sw404_dns_answers_kept_too_long_to_follow_a_failover:
        "SW404" at "upstreams[0].dns.max_ttl" on "- name: app",
        bad Cfg { endpoints: "[app.internal:3000]".into(), ..Cfg::default() },
        fixed Cfg { endpoints: "[app.internal:3000]".into(), upstream: format!("{CLEAN_UPSTREAM}    dns: {{ max_ttl: 30s }}\n"), ..Cfg::default() };
    sw501_redis_timeout_not_below_the_route_deadline:
        "SW501" at "listeners[0].routes[0].middleware[0].rate_limit.redis.timeout" on "redis:",
        bad route(&redis("5s", "local")),
        fixed route(&redis("50ms", "local"));
    sw502_redis_limiter_fails_closed:
        "SW502" at "listeners[0].routes[0].middleware[0].rate_limit.redis.on_error" on "redis:",
        bad route(&redis("50ms", "fail_closed")),
        fixed route(&redis("50ms", "local"));
    sw503_public_route_without_rate_limit:
        "SW503" at "listeners[0].routes[0].middleware" on "- name: api",
        bad public(CLEAN_LISTENER, CLEAN_ROUTE),
        fixed public(CLEAN_LISTENER, &format!("{CLEAN_ROUTE}{LOCAL_LIMIT}"));
    sw601_public_listener_without_header_read_timeout:
        "SW601" at "listeners[0].header_read_timeout" on "- name: internal",
        bad public("    public: true\n    max_connections: 5000\n", &format!("{CLEAN_ROUTE}{LOCAL_LIMIT}")),
        fixed public(CLEAN_LISTENER, &format!("{CLEAN_ROUTE}{LOCAL_LIMIT}"));
    sw602_public_listener_without_connection_cap:
        "SW602" at "listeners[0].max_connections" on "- name: internal",
        bad public("    public: true\n    header_read_timeout: 5s\n", &format!("{CLEAN_ROUTE}{LOCAL_LIMIT}")),
        fixed public(CLEAN_LISTENER, &format!("{CLEAN_ROUTE}{LOCAL_LIMIT}"));
    sw603_admin_off_loopback:
        "SW603" at "admin.listen" on "listen: 0.0.0.0:9901",
        bad Cfg { top: "admin: { listen: 0.0.0.0:9901, token_env: SEAWALL_ADMIN_TOKEN }\n".into(), ..Cfg::default() },
        fixed Cfg { top: "admin: { listen: 127.0.0.1:9901 }\n".into(), ..Cfg::default() };
    sw604_debug_trace_on_a_public_listener:
        "SW604" at "listeners[0].routes[0].middleware[1]" on "- debug",
        bad public(CLEAN_LISTENER, "        timeout: 5s\n        middleware:\n          - rate_limit: { limits: [{ name: all, rate: \"100/s\" }] }\n          - debug\n"),
        fixed public("", "        timeout: 5s\n        middleware:\n          - rate_limit: { limits: [{ name: all, rate: \"100/s\" }] }\n          - debug\n");
}

#[test]
fn a_listener_off_loopback_is_public_unless_marked_otherwise() {
    let off_loopback = Cfg {
        listen: "0.0.0.0:8080".into(),
        ..Cfg::default()
    };
    fires(
        "SW503",
        &format!("{R}.middleware"),
        "- name: api",
        &off_loopback.yaml(),
    );
    let marked_private = Cfg {
        listener: "    public: false\n".into(),
        ..off_loopback
    };
    silent("SW503", &marked_private.yaml());
}

#[test]
fn the_keepalive_race_is_not_reported_for_http2_upstreams() {
    let h2 = upstream("    protocol: http2\n    timeouts: { response_header: 2s }\n");
    silent("SW402", &h2.yaml());
}

#[test]
fn a_long_header_read_timeout_on_a_public_listener_fires_even_when_written() {
    let slow = public(
        "    public: true\n    header_read_timeout: 30s\n    max_connections: 5000\n",
        &format!("{CLEAN_ROUTE}{LOCAL_LIMIT}"),
    );
    fires(
        "SW601",
        "listeners[0].header_read_timeout",
        "header_read_timeout: 30s",
        &slow.yaml(),
    );
}

#[test]
fn every_code_of_the_registry_has_a_check_and_a_test_here() {
    let registry: Vec<_> = seawall_score::RULES.iter().map(|r| r.code).collect();
    assert_eq!(
        seawall_score::checked_codes(),
        registry,
        "one check per code, in order"
    );
    let mut tested = TESTED.to_vec();
    tested.sort_unstable();
    assert_eq!(tested, registry, "one test per code");
}

#[test]
fn a_response_head_timeout_bounds_a_try_only_when_retry_on_lists_it() {
    let listed = both(
        "        timeout: 5s\n        retry: { max_attempts: 2, retry_on: [503, response_header_timeout] }\n",
        &format!("{CLEAN_UPSTREAM}{BREAKER}"),
    );
    silent("SW104", &listed.yaml());
    let unlisted = both(
        "        timeout: 5s\n        retry: { max_attempts: 2, retry_on: [503] }\n",
        &format!("{CLEAN_UPSTREAM}{BREAKER}"),
    );
    fires(
        "SW104",
        &format!("{R}.retry.per_try_timeout"),
        "retry:",
        &unlisted.yaml(),
    );
}
