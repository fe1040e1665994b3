//! Alerts on what the gateway knows and a generic exporter does not: breakers held open,
//! endpoints ejected up to the outlier cap, pool checkouts timing out, the retry budget
//! refusing retries, the Redis limiter store failing (open or closed), stale answers
//! served, and config reloads failing. Thresholds come from the config where it has them
//! (endpoint counts and ejection caps per upstream).

use seawall_config::{Config, UpstreamConfig};

use super::{Group, Rule, labels};
use crate::{
    catalogue::{
        BREAKER_STATE, CONFIG_RELOADS, ENDPOINTS_EJECTED, ERRORS, FALLBACKS, RATELIMIT_DECISIONS,
        RETRIES,
    },
    promql::{eq, selector},
};

/// How long a breaker may stay away from closed before someone should look.
pub const BREAKER_OPEN_FOR: &str = "5m";

/// The gateway's own alerts.
pub fn group(config: &Config) -> Group {
    let mut rules = vec![
        alert(
            "SeawallBreakerOpen",
            format!("{BREAKER_STATE} > 0"),
            Some(BREAKER_OPEN_FOR),
            "page",
            "The breaker of upstream {{ $labels.upstream }} has not closed for 5 minutes",
            "Its tries are refused (503 circuit_open, or the route's fallback); the upstream is still failing its probes.",
        ),
        alert(
            "SeawallPoolCheckoutTimeouts",
            format!(
                "sum by (route) (rate({}[5m])) > 0",
                selector(ERRORS, &[eq("kind", "pool_exhausted")])
            ),
            Some("5m"),
            "ticket",
            "Route {{ $labels.route }} is answering 503 pool_exhausted",
            "Every connection to an endpoint stayed busy for the whole pool.checkout_timeout: raise max_connections_per_endpoint, or find what holds connections.",
        ),
        alert(
            "SeawallRetryBudgetExhausted",
            format!(
                "sum by (route) (rate({}[5m])) > 0",
                selector(RETRIES, &[eq("outcome", "budget_exhausted")])
            ),
            Some("10m"),
            "ticket",
            "Route {{ $labels.route }} has retryable failures its retry budget refuses",
            "The upstream fails more than the budget's ratio of requests: retries are capped so they do not amplify the outage.",
        ),
        alert(
            "SeawallRateLimitStoreFailing",
            format!(
                "sum by (route, limit, outcome) (rate({}[5m])) > 0",
                selector(
                    RATELIMIT_DECISIONS,
                    &["outcome=~\"fail_open|fail_closed|local_allowed|local_limited\"".to_owned()]
                )
            ),
            Some("5m"),
            "ticket",
            "Limit {{ $labels.limit }} of route {{ $labels.route }} cannot reach Redis ({{ $labels.outcome }})",
            "The shared rate limit is not enforced as configured: fail_open lets every request through, fail_closed refuses them, local_* falls back to per-instance limits.",
        ),
        alert(
            "SeawallStaleAnswersServed",
            format!(
                "sum by (route) (rate({}[5m])) > 0",
                selector(FALLBACKS, &[eq("kind", "stale_cache")])
            ),
            Some("10m"),
            "ticket",
            "Route {{ $labels.route }} is answering from its stale cache",
            "The upstream is failing and clients get earlier answers (marked seawall-degraded).",
        ),
        alert(
            "SeawallConfigReloadFailing",
            format!(
                "sum(increase({}[15m])) > 0",
                selector(CONFIG_RELOADS, &["outcome=~\"invalid|error\"".to_owned()])
            ),
            None,
            "ticket",
            "A config reload failed in the last 15 minutes",
            "The gateway keeps running its previous config; `seawall check` on the file shows why.",
        ),
    ];
    rules.extend(config.upstreams.iter().filter_map(ejection_cap));
    Group {
        name: "seawall-gateway".into(),
        interval: None,
        rules,
    }
}

/// Upstreams with `outlier`: the alert when ejections reach the cap, where outlier
/// detection can protect no further endpoint.
fn ejection_cap(upstream: &UpstreamConfig) -> Option<Rule> {
    let outlier = upstream.outlier.as_ref()?;
    let endpoints = upstream.endpoints.len();
    if outlier.max_ejection_percent == 0 || endpoints == 0 {
        return None;
    }
    // As outlier detection counts it: the percentage rounded down, but at least one.
    let cap = (endpoints * outlier.max_ejection_percent as usize / 100).max(1);
    Some(alert(
        "SeawallEndpointsEjectedAtCap",
        format!(
            "{} >= {cap}",
            selector(ENDPOINTS_EJECTED, &[eq("upstream", &upstream.name)])
        ),
        Some("5m"),
        "ticket",
        &format!(
            "Upstream {{{{ $labels.upstream }}}} has {cap} of its {endpoints} endpoints ejected, its outlier cap"
        ),
        "Further failing endpoints stay in rotation (ejection_skipped); the upstream as a whole is degrading.",
    ))
}

fn alert(
    name: &str,
    expr: String,
    for_: Option<&str>,
    severity: &str,
    summary: &str,
    description: &str,
) -> Rule {
    Rule::Alert {
        alert: name.into(),
        expr,
        for_: for_.map(str::to_owned),
        labels: labels(&[("severity", severity)]),
        annotations: labels(&[("summary", summary), ("description", description)]),
    }
}
