//! Golden tests of the score formula (docs/score.md): per unit 100 minus 25 per error, 10
//! per warning, 2 per info, floored at 0; the config's score is the mean over its units,
//! rounded down; the top fixes come from re-scoring without each finding.

mod support;

use seawall_config::Severity::{Error, Info, Warning};
use seawall_score::score::{config_score, unit_score};
use support::{CLEAN_UPSTREAM, Cfg};

#[test]
fn a_unit_loses_25_per_error_10_per_warning_2_per_info_down_to_0() {
    assert_eq!(unit_score([]), 100);
    assert_eq!(unit_score([Error]), 75);
    assert_eq!(unit_score([Warning]), 90);
    assert_eq!(unit_score([Info]), 98);
    assert_eq!(unit_score([Error, Warning, Info]), 63);
    assert_eq!(unit_score([Error; 4]), 0);
    assert_eq!(unit_score([Error; 5]), 0, "floored, never negative");
}

#[test]
fn the_config_score_is_the_mean_of_its_units_rounded_down() {
    assert_eq!(config_score(&[]), 100);
    assert_eq!(config_score(&[100, 100, 100, 100]), 100);
    assert_eq!(config_score(&[100, 100, 100, 90]), 97, "97.5 rounds down");
    assert_eq!(config_score(&[100, 75, 90, 100]), 91);
    assert_eq!(config_score(&[0, 0]), 0);
}

#[test]
fn the_clean_template_scores_100_over_four_units() {
    let scored = support::score(&Cfg::default().yaml());
    assert!(scored.findings.is_empty(), "{:?}", scored.findings);
    assert_eq!(scored.score, 100);
    let kinds: Vec<_> = scored.units.iter().map(|u| u.unit.kind.as_str()).collect();
    assert_eq!(kinds, ["global", "listener", "route", "upstream"]);
    assert!(scored.top_fixes.is_empty());
}

#[test]
fn one_warning_on_the_upstream_costs_its_unit_10_and_the_config_2() {
    // No response-head timeout: SW101 (warning) on upstream `app`.
    let cfg = Cfg {
        upstream: "    upstream_keepalive: 75s\n    pool: { idle_timeout: 30s }\n".into(),
        ..Cfg::default()
    };
    let scored = support::score(&cfg.yaml());
    let codes: Vec<_> = scored.findings.iter().map(|f| f.code()).collect();
    assert_eq!(codes, ["SW101"]);
    let scores: Vec<_> = scored.units.iter().map(|u| u.score).collect();
    assert_eq!(scores, [100, 100, 100, 90]);
    assert_eq!(scored.score, 97);
    assert_eq!(scored.top_fixes.len(), 1);
    assert_eq!(scored.top_fixes[0].score_after, 100);
}

#[test]
fn the_top_fixes_are_the_three_that_raise_the_score_most() {
    // Route `api`: SW102 (info, no timeout). Upstream `app`: SW101 (warning), SW402
    // (warning), SW403 (warning). Admin off loopback: SW603 (warning, global).
    let cfg = Cfg {
        top: "admin: { listen: 0.0.0.0:9901, token_env: SEAWALL_ADMIN_TOKEN }\n".into(),
        route: String::new(),
        upstream: "    pool: { max_connections_per_endpoint: 100000 }\n".into(),
        ..Cfg::default()
    };
    let scored = support::score(&cfg.yaml());
    let mut codes: Vec<_> = scored.findings.iter().map(|f| f.code()).collect();
    codes.sort_unstable();
    assert_eq!(codes, ["SW101", "SW102", "SW402", "SW403", "SW603"]);
    // Units: global 90, listener 100, route 98, upstream 70: mean 358 / 4 = 89.
    let scores: Vec<_> = scored.units.iter().map(|u| u.score).collect();
    assert_eq!(scores, [90, 100, 98, 70]);
    assert_eq!(scored.score, 89);
    // Every warning gains 10 points of the total; the info finding only 2, so it is not
    // among the three. Ties go by file order.
    let top: Vec<_> = scored
        .top_fixes
        .iter()
        .map(|t| (scored.findings[t.finding].code(), t.score_after))
        .collect();
    assert_eq!(top.len(), 3);
    assert!(
        top.iter()
            .all(|(code, after)| *code != "SW102" && *after == 92),
        "{top:?}"
    );
}

#[test]
fn fixes_on_a_unit_already_at_zero_do_not_count_as_raising_the_score() {
    // Route `api` loses 115 points: one error (SW501) and nine warnings (SW103, SW202
    // twice, SW204, SW205, SW206, SW305, SW502, SW604). Fixing one warning leaves it at 0
    // (105 lost), so only the error's fix raises its score (to 10).
    let route = "        timeout: 90s
        retry: { max_attempts: 2, per_try_timeout: 60s, non_idempotent: true }
        hedge: { delay: 50ms, max_extra: 3, non_idempotent: true }
        fallback: { stale_cache: {} }
        middleware:
          - debug
          - rate_limit:
              limits: [{ name: a, rate: \"100/s\", store: redis }]
              redis: { url: \"redis://127.0.0.1:6379\", timeout: 90s, on_error: fail_closed }
";
    let cfg = Cfg {
        listen: "0.0.0.0:8080".into(),
        route: route.into(),
        ..Cfg::default()
    };
    let scored = support::score(&cfg.yaml());
    let route = &scored.units[2];
    assert_eq!(route.unit.kind.as_str(), "route");
    assert_eq!(route.score, 0);
    let lost: u32 = route
        .findings
        .iter()
        .map(|&i| seawall_score::score::weight(scored.findings[i].level()))
        .sum();
    assert_eq!(lost, 115, "{:?}", scored.findings);
    let route_fixes: Vec<_> = scored
        .top_fixes
        .iter()
        .map(|t| &scored.findings[t.finding])
        .filter(|f| f.unit == route.unit)
        .map(|f| f.code())
        .collect();
    assert_eq!(route_fixes, ["SW501"], "{:?}", scored.top_fixes);
    for fix in &scored.top_fixes {
        assert!(fix.score_after > scored.score);
    }
}

#[test]
fn a_config_with_every_finding_fixed_scores_100() {
    // Every feature a check looks at, each set the way the checks ask.
    let yaml = format!(
        "\
admin: {{ listen: 127.0.0.1:9901 }}
listeners:
  - name: edge
    listen: 0.0.0.0:8080
    header_read_timeout: 5s
    max_connections: 5000
    routes:
      - name: api
        upstream: app
        timeout: 5s
        retry: {{ max_attempts: 2, per_try_timeout: 1s, retry_on: [503, connect_error, per_try_timeout] }}
        fallback: {{ upstream: standby, stale_cache: {{ max_age: 60s }} }}
        middleware:
          - request_id
          - rate_limit:
              limits: [{{ name: all, rate: \"100/s\", store: redis }}]
              redis: {{ url: \"redis://127.0.0.1:6379\", timeout: 50ms, on_error: local }}
      - name: search
        match: {{ path_prefix: /search }}
        upstream: app
        timeout: 3s
        hedge: {{ delay: 100ms }}
        middleware:
          - rate_limit: {{ limits: [{{ name: per_client, key: [client_ip], rate: \"10/s\" }}] }}
  - name: internal
    listen: 127.0.0.1:8081
    routes:
      - name: debug
        upstream: app
        timeout: 5s
        middleware: [debug]
upstreams:
  - name: app
    endpoints: [app.internal:3000, 10.0.0.2:3000]
{CLEAN_UPSTREAM}    breaker: {{}}
    outlier: {{ max_ejection_percent: 34 }}
    concurrency: {{ max_concurrent: 100, max_pending: 50, queue_timeout: 100ms }}
    retry_budget: {{ ratio: 0.2 }}
    dns: {{ max_ttl: 30s }}
  - name: standby
    endpoints: [10.1.0.2:3000]
    protocol: http2
    timeouts: {{ response_header: 2s }}
"
    );
    let scored = support::score(&yaml);
    let codes: Vec<_> = scored
        .findings
        .iter()
        .map(|f| (f.code(), f.key()))
        .collect();
    assert!(codes.is_empty(), "{codes:?}");
    assert_eq!(scored.score, 100);
    assert_eq!(scored.units.len(), 1 + 2 + 3 + 2);
}
