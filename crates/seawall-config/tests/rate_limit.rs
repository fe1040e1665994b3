//! The `rate_limit` middleware's config: defaults, every key part, and each semantic
//! problem reported at its key path (the Redis URL never echoed, it may hold a password).

use seawall_config::{
    Diagnostics, KeyPart, LimitStore, MiddlewareConfig, OnStoreError, RateLimitConfig,
    RateLimitMode, Severity, parse, parse_with_warnings,
};

fn with(layer: &str) -> String {
    format!(
        "listeners:
  - name: public
    listen: 127.0.0.1:8080
    routes:
      - upstream: api
        middleware:
          - rate_limit: {layer}
upstreams:
  - name: api
    endpoints: [\"127.0.0.1:9000\"]
"
    )
}

const AT: &str = "listeners[0].routes[0].middleware[0].rate_limit";

fn layer(text: &str) -> RateLimitConfig {
    let config = parse("t.yaml", &with(text)).unwrap_or_else(|d| panic!("{d}"));
    match &config.listeners[0].routes[0].middleware[0] {
        MiddlewareConfig::RateLimit(r) => r.clone(),
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
fn a_minimal_limit_gets_the_documented_defaults() {
    let r = layer("{limits: [{name: all, rate: \"10/s\"}]}");
    assert_eq!(r.mode, RateLimitMode::Reject);
    assert_eq!(r.max_wait.get().as_millis(), 500);
    assert!(r.headers && r.redis.is_none());
    let l = &r.limits[0];
    assert_eq!(
        (l.burst, l.max_keys, l.store),
        (None, 100_000, LimitStore::Local)
    );
    assert!(l.key.is_empty());
}

#[test]
fn every_key_part_and_the_redis_section_parse() {
    let r = layer(
        "{mode: delay, max_wait: 1s, redis: {url: \"redis://127.0.0.1:6379\", on_error: local, instances: 3}, \
         limits: [{name: a, key: [client_ip, route, {header: x-api-key}, {user: x-user-id}], rate: \"6000/min\", burst: 20, store: redis}]}",
    );
    assert_eq!(
        r.limits[0].key,
        [
            KeyPart::ClientIp,
            KeyPart::Route,
            KeyPart::Header("x-api-key".into()),
            KeyPart::User("x-user-id".into())
        ]
    );
    let redis = r.redis.unwrap();
    assert_eq!((redis.on_error, redis.instances), (OnStoreError::Local, 3));
    assert_eq!(redis.timeout.get().as_millis(), 50);
    assert_eq!(redis.key_prefix, "seawall:rl:");
}

#[test]
fn bad_rates_bursts_names_and_headers_are_reported_at_their_paths() {
    let d = problems(
        "{limits: [{name: a, rate: \"10/fortnight\"}, {name: a, rate: \"0/s\", burst: 0, max_keys: 0, key: [{header: \"X Bad\"}]}]}",
    );
    for path in [
        "limits[0].rate",
        "limits[1].name",
        "limits[1].rate",
        "limits[1].burst",
        "limits[1].max_keys",
        "limits[1].key[0]",
    ] {
        assert!(has(&d, path), "no problem at {path}:\n{d}");
    }
}

#[test]
fn a_redis_limit_needs_a_redis_section_and_the_url_is_never_echoed() {
    let d = problems("{limits: [{name: a, rate: \"1/s\", store: redis}]}");
    assert!(has(&d, "limits[0].store"), "{d}");
    let d = problems(
        "{redis: {url: \"http://user:s3cret@host\", timeout: 0s}, limits: [{name: a, rate: \"1/s\", store: redis}]}",
    );
    assert!(has(&d, "redis.url") && has(&d, "redis.timeout"), "{d}");
    // The snippet quotes the file's own line, as for every problem; the value field (what
    // ends up in reload logs and the admin API) must not repeat the URL.
    let url = d.iter().find(|p| p.path.ends_with("redis.url")).unwrap();
    assert_eq!(url.value, None);
    // Nor does the code frame: `seawall check` output lands in CI logs.
    let shown = d.to_string();
    assert!(!shown.contains("s3cret"), "{shown}");
    assert!(shown.contains("http://user:***@host"), "{shown}");
}

#[test]
fn a_redis_timeout_not_below_the_route_timeout_is_a_warning() {
    let text = with(
        "{redis: {url: \"redis://:TopSecretRedisPw@127.0.0.1:6399\", timeout: 15s}, limits: [{name: a, rate: \"1/s\", store: redis}]}",
    );
    // Valid: it runs, only not as meant.
    let (_, warnings) = parse_with_warnings("t.yaml", &text).unwrap_or_else(|d| panic!("{d}"));
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    let w = &warnings[0];
    assert_eq!(w.severity, Severity::Warning);
    assert_eq!(w.path, format!("{AT}.redis.timeout"));
    let shown = w.to_string();
    assert!(
        shown.starts_with(
            "warning: redis timeout 15s is not shorter than the timeout 15s of route `public/0`"
        ),
        "{shown}"
    );
    assert!(
        shown.contains("layer_stalled") && shown.contains("below the route timeout"),
        "{shown}"
    );
    assert!(!shown.contains("TopSecretRedisPw"), "{shown}");
    // The caret still points at the value, though the redacted line before it is shorter.
    let lines: Vec<&str> = shown.lines().collect();
    let frame = lines.iter().position(|l| l.contains("redis://")).unwrap();
    assert_eq!(
        lines[frame + 1].find('^'),
        lines[frame].find("15s"),
        "{shown}"
    );
    // Below the route timeout, or with no limit in Redis, nothing to say.
    for quiet in [
        "{redis: {url: \"redis://h:1\", timeout: 50ms}, limits: [{name: a, rate: \"1/s\", store: redis}]}",
        "{redis: {url: \"redis://h:1\", timeout: 30s}, limits: [{name: a, rate: \"1/s\"}]}",
    ] {
        let (_, warnings) = parse_with_warnings("t.yaml", &with(quiet)).unwrap();
        assert!(warnings.is_empty(), "{quiet}: {warnings:?}");
    }
}

#[test]
fn limit_names_must_be_tokens_because_headers_quote_them() {
    let d = problems("{limits: [{name: \"a\\\"b\", rate: \"1/s\"}]}");
    assert!(has(&d, "limits[0].name"), "{d}");
}

#[test]
fn delay_mode_needs_a_positive_max_wait_and_limits_must_not_be_empty() {
    let d = problems("{mode: delay, max_wait: 0s, limits: []}");
    assert!(has(&d, "max_wait") && has(&d, "limits"), "{d}");
}

#[test]
fn a_lease_parses_with_its_default_max_age() {
    let r = layer(
        "{redis: {url: \"redis://127.0.0.1:6379\"}, limits: [{name: hot, rate: \"100/s\", burst: 20, store: redis, lease: {tokens: 10}}]}",
    );
    let lease = r.limits[0].lease.as_ref().expect("lease");
    assert_eq!((lease.tokens, lease.max_age.get().as_secs()), (10, 1));
    assert!(
        layer("{limits: [{name: a, rate: \"1/s\"}]}").limits[0]
            .lease
            .is_none()
    );
}

#[test]
fn a_lease_needs_a_redis_limit_in_reject_mode_and_2_to_burst_tokens() {
    let d = problems("{limits: [{name: a, rate: \"10/s\", lease: {tokens: 5}}]}");
    assert!(has(&d, "limits[0].lease"), "local limit:\n{d}");
    let d = problems(
        "{mode: delay, redis: {url: \"redis://127.0.0.1:6379\"}, limits: [{name: a, rate: \"10/s\", store: redis, lease: {tokens: 5}}]}",
    );
    assert!(has(&d, "limits[0].lease"), "delay mode:\n{d}");
    for tokens in [1, 11] {
        let d = problems(&format!(
            "{{redis: {{url: \"redis://127.0.0.1:6379\"}}, limits: [{{name: a, rate: \"10/s\", store: redis, lease: {{tokens: {tokens}, max_age: 0s}}}}]}}"
        ));
        assert!(
            has(&d, "limits[0].lease.tokens") && has(&d, "limits[0].lease.max_age"),
            "tokens {tokens} over a burst of 10:\n{d}"
        );
    }
}
