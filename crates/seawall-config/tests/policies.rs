//! The resilience policy keys: off unless written, `{}` means the documented defaults,
//! unknown keys and bad values are reported with their path and a hint.

use seawall_config::{BalancerKind, Diagnostics, RetryConfig, parse};

fn with(route: &str, upstream: &str) -> String {
    format!(
        "listeners:
  - name: public
    listen: 127.0.0.1:8080
    routes:
      - upstream: api
{route}
upstreams:
  - name: api
    endpoints: [\"127.0.0.1:9000\", \"127.0.0.1:9001\"]
{upstream}
"
    )
}

fn problems(text: &str) -> Diagnostics {
    match parse("test.yaml", text) {
        Ok(config) => panic!("expected problems, got a valid config: {config:?}"),
        Err(diagnostics) => diagnostics,
    }
}

fn one(text: &str, path: &str) -> (String, Option<String>) {
    let d = problems(text);
    let found = d
        .iter()
        .find(|d| d.path == path)
        .unwrap_or_else(|| panic!("no diagnostic for `{path}` in:\n{d}"));
    (found.message.clone(), found.hint.clone())
}

#[test]
fn every_policy_is_off_unless_configured_and_the_balancer_defaults_to_p2c_ewma() {
    let c = parse("t.yaml", &with("", "")).unwrap();
    let u = &c.upstreams[0];
    assert_eq!(u.balancer, BalancerKind::P2cEwma);
    assert!(u.breaker.is_none() && u.outlier.is_none() && u.concurrency.is_none());
    assert!(c.listeners[0].routes[0].retry.is_none());
}

#[test]
fn empty_policy_blocks_turn_policies_on_with_their_defaults() {
    let text = with(
        "        retry: {}",
        "    breaker: {}\n    outlier: {}\n    concurrency: {}\n    balancer: round_robin",
    );
    let c = parse("t.yaml", &text).unwrap();
    let u = &c.upstreams[0];
    let b = u.breaker.as_ref().unwrap();
    assert_eq!(
        (
            b.min_calls,
            b.failure_ratio,
            b.open_duration.to_string().as_str()
        ),
        (20, 0.5, "5s")
    );
    assert_eq!(u.outlier.as_ref().unwrap().consecutive_failures, 5);
    assert_eq!(u.concurrency.as_ref().unwrap().max_concurrent, 1024);
    assert_eq!(u.balancer, BalancerKind::RoundRobin);
    let r = c.listeners[0].routes[0].retry.as_ref().unwrap();
    assert_eq!(*r, RetryConfig::default());
    assert_eq!(r.max_attempts, 2);
}

#[test]
fn retry_on_takes_statuses_ranges_classes_and_error_kinds() {
    let text = with(
        "        retry: {retry_on: [503, \"500-504\", 5xx, connect_error]}",
        "",
    );
    let c = parse("t.yaml", &text).unwrap();
    let r = c.listeners[0].routes[0].retry.as_ref().unwrap();
    assert_eq!(r.retry_on, ["503", "500-504", "5xx", "connect_error"]);
}

#[test]
fn a_misspelt_error_kind_gets_a_suggestion() {
    let text = with("        retry: {retry_on: [conect_error]}", "");
    let (message, hint) = one(&text, "listeners[0].routes[0].retry.retry_on[0]");
    assert_eq!(message, "unknown error kind `conect_error`");
    assert_eq!(hint.as_deref(), Some("did you mean `connect_error`?"));
}

#[test]
fn a_status_outside_100_to_599_is_reported() {
    let text = with(
        "",
        "    breaker: {failure_on: [\"600\", \"9xx\", \"504-502\"]}",
    );
    let d = problems(&text);
    for i in 0..3 {
        let path = format!("upstreams[0].breaker.failure_on[{i}]");
        assert!(d.iter().any(|p| p.path == path), "{path} in {d}");
    }
}

#[test]
fn unknown_policy_keys_are_rejected_with_a_suggestion() {
    let text = with("", "    breaker: {failure_ration: 0.5}");
    let (message, hint) = one(&text, "upstreams[0].breaker.failure_ration");
    assert_eq!(message, "unknown key `failure_ration`");
    assert_eq!(hint.as_deref(), Some("did you mean `failure_ratio`?"));
    let text = with("", "    balancer: least_conn");
    let (message, _) = one(&text, "upstreams[0].balancer");
    assert_eq!(message, "unknown name `least_conn`");
}

#[test]
fn ratios_out_of_range_are_reported_with_a_hint() {
    let text = with(
        "",
        "    breaker: {failure_ratio: 1.5, slow_call_ratio: 0}\n    retry_budget: {ratio: -0.1}",
    );
    let (message, hint) = one(&text, "upstreams[0].breaker.failure_ratio");
    assert_eq!(message, "ratio must be greater than 0 and at most 1");
    assert!(hint.is_some());
    one(&text, "upstreams[0].breaker.slow_call_ratio");
    let (message, _) = one(&text, "upstreams[0].retry_budget.ratio");
    assert_eq!(message, "ratio must be between 0 and 1000");
}

#[test]
fn inconsistent_durations_and_counts_are_reported() {
    let text = with(
        "        retry: {max_attempts: 11, per_try_timeout: 0s, backoff: {base: 100ms, max: 10ms}}",
        "    breaker: {open_duration: 10s, max_open_duration: 1s, min_calls: 0, buckets: 0}
    outlier: {max_ejection_percent: 150, base_ejection_time: 1m, max_ejection_time: 10s}
    concurrency: {max_concurrent: 0, queue_timeout: 0s}
    retry_budget: {ttl: 2m}",
    );
    let d = problems(&text);
    for path in [
        "listeners[0].routes[0].retry.max_attempts",
        "listeners[0].routes[0].retry.per_try_timeout",
        "listeners[0].routes[0].retry.backoff.max",
        "upstreams[0].breaker.max_open_duration",
        "upstreams[0].breaker.min_calls",
        "upstreams[0].breaker.buckets",
        "upstreams[0].outlier.max_ejection_percent",
        "upstreams[0].outlier.max_ejection_time",
        "upstreams[0].concurrency.max_concurrent",
        "upstreams[0].concurrency.queue_timeout",
        "upstreams[0].retry_budget.ttl",
    ] {
        assert!(d.iter().any(|p| p.path == path), "{path} missing in:\n{d}");
    }
}

#[test]
fn a_per_try_timeout_as_long_as_the_route_deadline_is_reported() {
    let text = with(
        "        timeout: 1s\n        retry: {per_try_timeout: 1s}",
        "",
    );
    let (message, hint) = one(&text, "listeners[0].routes[0].retry.per_try_timeout");
    assert_eq!(
        message,
        "per_try_timeout 1s is not shorter than the route's 1s timeout"
    );
    assert!(hint.is_some());
}

#[test]
fn an_empty_stale_cache_block_takes_the_documented_bounds_and_static_stays_optional() {
    let c = parse(
        "t.yaml",
        &with("        fallback: {stale_cache: {}, status: 206}", ""),
    )
    .unwrap();
    let f = c.listeners[0].routes[0].fallback.as_ref().unwrap();
    assert!(f.static_response.is_none());
    assert_eq!(f.status, Some(206));
    let s = f.stale_cache.as_ref().unwrap();
    assert_eq!(s.max_entries, 1000);
    assert_eq!(s.max_body_bytes.bytes(), 1 << 20);
    assert_eq!(s.max_age.to_string(), "10m");
}

#[test]
fn stale_cache_bounds_and_the_status_override_are_checked() {
    let text = with(
        "        fallback: {stale_cache: {max_entries: 0, max_body_bytes: 0, max_age: 0s}, status: 99}",
        "",
    );
    let d = problems(&text);
    for path in [
        "listeners[0].routes[0].fallback.stale_cache.max_entries",
        "listeners[0].routes[0].fallback.stale_cache.max_body_bytes",
        "listeners[0].routes[0].fallback.stale_cache.max_age",
        "listeners[0].routes[0].fallback.status",
    ] {
        assert!(d.iter().any(|p| p.path == path), "{path} missing in:\n{d}");
    }
}

#[test]
fn a_fallback_with_neither_kind_or_a_status_without_stale_cache_is_reported() {
    let (message, _) = one(
        &with("        fallback: {}", ""),
        "listeners[0].routes[0].fallback",
    );
    assert!(message.contains("static"), "{message}");
    let text = with("        fallback: {static: {body: x}, status: 206}", "");
    let (message, hint) = one(&text, "listeners[0].routes[0].fallback.status");
    assert!(message.contains("stale_cache"), "{message}");
    assert!(hint.is_some());
}

#[test]
fn adaptive_concurrency_limits_out_of_order_are_reported() {
    let c = parse("t.yaml", &with("", "    concurrency: {adaptive: {}}")).unwrap();
    let a = c.upstreams[0]
        .concurrency
        .as_ref()
        .unwrap()
        .adaptive
        .clone()
        .unwrap();
    assert_eq!((a.min_limit, a.initial_limit, a.max_limit), (20, 20, 200));
    let text = with(
        "",
        "    concurrency: {adaptive: {min_limit: 0, initial_limit: 50, max_limit: 10}}",
    );
    let d = problems(&text);
    for path in [
        "upstreams[0].concurrency.adaptive.min_limit",
        "upstreams[0].concurrency.adaptive.initial_limit",
    ] {
        assert!(d.iter().any(|p| p.path == path), "{path} missing in:\n{d}");
    }
}

#[test]
fn retries_keep_bodies_up_to_64_kib_by_default_and_the_cap_is_configurable() {
    let c = parse("t.yaml", &with("        retry: {}", "")).unwrap();
    let r = c.listeners[0].routes[0].retry.as_ref().unwrap();
    assert_eq!(r.buffer_body_max.bytes(), 64 * 1024);
    let c = parse("t.yaml", &with("        retry: {buffer_body_max: 0B}", "")).unwrap();
    let r = c.listeners[0].routes[0].retry.as_ref().unwrap();
    assert_eq!(r.buffer_body_max.bytes(), 0);
}

#[test]
fn stale_if_error_defaults_to_zero_and_is_configurable() {
    let c = parse(
        "t.yaml",
        &with("        fallback: {stale_cache: {stale_if_error: 5m}}", ""),
    )
    .unwrap();
    let s = c.listeners[0].routes[0]
        .fallback
        .as_ref()
        .unwrap()
        .stale_cache
        .clone()
        .unwrap();
    assert_eq!(s.stale_if_error.to_string(), "5m");
    let c = parse("t.yaml", &with("        fallback: {stale_cache: {}}", "")).unwrap();
    let s = c.listeners[0].routes[0].fallback.as_ref().unwrap();
    assert!(
        s.stale_cache
            .as_ref()
            .unwrap()
            .stale_if_error
            .get()
            .is_zero()
    );
}

#[test]
fn a_fallback_upstream_must_name_another_defined_upstream() {
    let standby = "  - name: standby\n    endpoints: [\"127.0.0.1:9100\"]";
    let c = parse(
        "t.yaml",
        &with("        fallback: {upstream: standby}", standby),
    )
    .unwrap();
    let f = c.listeners[0].routes[0].fallback.as_ref().unwrap();
    assert_eq!(f.upstream.as_deref(), Some("standby"));

    let text = with("        fallback: {upstream: standbye}", standby);
    let (message, hint) = one(&text, "listeners[0].routes[0].fallback.upstream");
    assert_eq!(message, "fallback refers to unknown upstream `standbye`");
    assert_eq!(hint.as_deref(), Some("did you mean `standby`?"));

    let (message, hint) = one(
        &with("        fallback: {upstream: api}", ""),
        "listeners[0].routes[0].fallback.upstream",
    );
    assert!(message.contains("route's own upstream"), "{message}");
    assert!(hint.is_some());
}

#[test]
fn hedge_takes_a_duration_or_a_percentile_and_bad_values_are_reported() {
    use seawall_config::HedgeDelayConfig;
    let c = parse("t.yaml", &with("        hedge: {}", "")).unwrap();
    let h = c.listeners[0].routes[0].hedge.as_ref().unwrap();
    assert_eq!(h.delay, HedgeDelayConfig::Quantile(0.95));
    assert_eq!((h.max_extra, h.non_idempotent), (1, false));
    let c = parse(
        "t.yaml",
        &with("        hedge: {delay: 40ms, max_extra: 2}", ""),
    )
    .unwrap();
    let h = c.listeners[0].routes[0].hedge.as_ref().unwrap();
    assert_eq!(h.delay.to_string(), "40ms");
    let c = parse("t.yaml", &with("        hedge: {delay: p99.9}", "")).unwrap();
    let h = c.listeners[0].routes[0].hedge.as_ref().unwrap();
    assert!(matches!(h.delay, HedgeDelayConfig::Quantile(q) if (q - 0.999).abs() < 1e-9));

    let (message, _) = one(
        &with("        hedge: {delay: p100}", ""),
        "listeners[0].routes[0].hedge.delay",
    );
    assert!(message.contains("percentile"), "{message}");
    let (message, _) = one(
        &with("        hedge: {max_extra: 4}", ""),
        "listeners[0].routes[0].hedge.max_extra",
    );
    assert!(message.contains("between 1 and 3"), "{message}");
    let (message, hint) = one(
        &with("        timeout: 1s\n        hedge: {delay: 2s}", ""),
        "listeners[0].routes[0].hedge.delay",
    );
    assert!(message.contains("not shorter"), "{message}");
    assert!(hint.is_some());
}

#[test]
fn health_check_defaults_and_bad_values_are_reported() {
    let c = parse("t.yaml", &with("", "    health_check: {}")).unwrap();
    let h = c.upstreams[0].health_check.as_ref().unwrap();
    assert_eq!(h.path, "/healthz");
    assert_eq!(
        (
            h.healthy_threshold,
            h.unhealthy_threshold,
            h.expected_status
        ),
        (2, 3, 200)
    );
    assert_eq!(
        (h.interval.to_string(), h.timeout.to_string()),
        ("5s".into(), "1s".into())
    );
    let text = with(
        "",
        "    health_check: {path: healthz, interval: 1s, timeout: 2s, healthy_threshold: 0, unhealthy_threshold: 0, expected_status: 99}",
    );
    let d = problems(&text);
    for key in [
        "path",
        "timeout",
        "healthy_threshold",
        "unhealthy_threshold",
        "expected_status",
    ] {
        let path = format!("upstreams[0].health_check.{key}");
        assert!(d.iter().any(|p| p.path == path), "{path} missing in:\n{d}");
    }
}
