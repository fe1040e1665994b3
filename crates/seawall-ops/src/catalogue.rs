//! The metric families the gateway exports (docs/metrics.md), as the generators may name
//! them. One source of truth: rules and panels use these constants, and a test scrapes a
//! running gateway and requires every family listed in [`FAMILIES`].

/// Request duration histogram, by `route, method, status_class`.
pub const REQUEST_DURATION: &str = "seawall_request_duration_seconds";
/// Failed requests, by `route, kind`.
pub const ERRORS: &str = "seawall_errors_total";
/// Sheds of the `concurrency` bulkhead, by `upstream, reason`.
pub const SHED: &str = "seawall_shed_total";
/// Breaker state gauge by `upstream`: 0 closed, 1 open, 2 half-open.
pub const BREAKER_STATE: &str = "seawall_breaker_state";
/// Breaker transitions, by `upstream, from, to, cause`.
pub const BREAKER_TRANSITIONS: &str = "seawall_breaker_transitions_total";
/// Tries refused by the breaker, by `upstream`.
pub const BREAKER_REJECTED: &str = "seawall_breaker_rejected_total";
/// Retry decisions, by `route, outcome`.
pub const RETRIES: &str = "seawall_retries_total";
/// Hedge copies, by `route, outcome`.
pub const HEDGES: &str = "seawall_hedges_total";
/// Fallback answers, by `route, kind, reason`.
pub const FALLBACKS: &str = "seawall_fallbacks_total";
/// Endpoints currently ejected, by `upstream`.
pub const ENDPOINTS_EJECTED: &str = "seawall_endpoints_ejected";
/// Endpoints failing health checks, by `upstream`.
pub const ENDPOINTS_UNHEALTHY: &str = "seawall_endpoints_unhealthy";
/// Outlier detection events, by `upstream, reason`.
pub const OUTLIER_EVENTS: &str = "seawall_outlier_events_total";
/// The adaptive concurrency limit, by `upstream`.
pub const CONCURRENCY_LIMIT: &str = "seawall_concurrency_limit";
/// Rate-limit decisions, by `route, limit, outcome`.
pub const RATELIMIT_DECISIONS: &str = "seawall_ratelimit_decisions_total";
/// Config reload attempts, by `outcome`.
pub const CONFIG_RELOADS: &str = "seawall_config_reloads_total";
/// Requests sent upstream, by `upstream, reused`.
pub const UPSTREAM_REQUESTS: &str = "seawall_upstream_requests_total";
/// Pool connections carrying a request, by `upstream`.
pub const CONNECTIONS_IN_USE: &str = "seawall_upstream_connections_in_use";
/// Idle pool connections, by `upstream`.
pub const CONNECTIONS_IDLE: &str = "seawall_upstream_connections_idle";
/// Pool connections being established, by `upstream`.
pub const CONNECTIONS_CONNECTING: &str = "seawall_upstream_connections_connecting";
/// Upstream connections closed, by `upstream, reason`.
pub const CONNECTIONS_CLOSED: &str = "seawall_upstream_connections_closed_total";
/// Pool checkout wait histogram, by `upstream`.
pub const CHECKOUT_WAIT: &str = "seawall_upstream_checkout_wait_seconds";
/// Upstream response-head time histogram, by `upstream`.
pub const RESPONSE_HEAD: &str = "seawall_upstream_response_head_duration_seconds";
/// Client connections refused at `max_connections`, by `listener`.
pub const DOWNSTREAM_REJECTED: &str = "seawall_downstream_connections_rejected_total";
/// Open client connections, by `listener`.
pub const DOWNSTREAM_OPEN: &str = "seawall_downstream_connections_open";

/// Every family above, as the exposition names it (a counter's `_total` sample name, a
/// histogram's base name), with its type.
pub const FAMILIES: &[(&str, &str)] = &[
    (REQUEST_DURATION, "histogram"),
    (ERRORS, "counter"),
    (SHED, "counter"),
    (BREAKER_STATE, "gauge"),
    (BREAKER_TRANSITIONS, "counter"),
    (BREAKER_REJECTED, "counter"),
    (RETRIES, "counter"),
    (HEDGES, "counter"),
    (FALLBACKS, "counter"),
    (ENDPOINTS_EJECTED, "gauge"),
    (ENDPOINTS_UNHEALTHY, "gauge"),
    (OUTLIER_EVENTS, "counter"),
    (CONCURRENCY_LIMIT, "gauge"),
    (RATELIMIT_DECISIONS, "counter"),
    (CONFIG_RELOADS, "counter"),
    (UPSTREAM_REQUESTS, "counter"),
    (CONNECTIONS_IN_USE, "gauge"),
    (CONNECTIONS_IDLE, "gauge"),
    (CONNECTIONS_CONNECTING, "gauge"),
    (CONNECTIONS_CLOSED, "counter"),
    (CHECKOUT_WAIT, "histogram"),
    (RESPONSE_HEAD, "histogram"),
    (DOWNSTREAM_REJECTED, "counter"),
    (DOWNSTREAM_OPEN, "gauge"),
];

/// The family a sample name belongs to (`x_bucket`, `x_count`, `x_sum` → `x` for a
/// histogram), if it is in [`FAMILIES`].
pub fn family_of(sample: &str) -> Option<&'static str> {
    FAMILIES.iter().map(|(name, _)| *name).find(|name| {
        sample == *name
            || ["_bucket", "_count", "_sum"]
                .iter()
                .any(|suffix| sample.strip_suffix(suffix) == Some(name))
    })
}

/// Every `seawall_…` metric name in `text` (PromQL, a rule file, a dashboard); recorded
/// series (`seawall:…`) are not metric names of the gateway and are skipped.
pub fn metric_names(text: &str) -> Vec<&str> {
    let mut found = Vec::new();
    let mut rest = text;
    while let Some(at) = rest.find("seawall_") {
        let before = text.len() - rest.len() + at;
        let tail = &rest[at..];
        let end = tail
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(tail.len());
        let preceded = text[..before]
            .chars()
            .next_back()
            .is_some_and(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':');
        if !preceded {
            found.push(&tail[..end]);
        }
        rest = &tail[end..];
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples_map_to_their_family() {
        assert_eq!(
            family_of("seawall_request_duration_seconds_bucket"),
            Some(REQUEST_DURATION)
        );
        assert_eq!(family_of("seawall_errors_total"), Some(ERRORS));
        assert_eq!(family_of("seawall_nonexistent_total"), None);
    }

    #[test]
    fn names_are_found_and_recorded_series_skipped() {
        let q = "sum(rate(seawall_errors_total{kind=\"x\"}[5m])) / seawall:slo_errors:ratio_rate5m";
        assert_eq!(metric_names(q), ["seawall_errors_total"]);
    }
}
