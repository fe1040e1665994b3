//! The checks: one small pure function per rule, grouped by family, and [`CHECKS`], the
//! table that ties each function to its rule in [`crate::codes`].

mod breakers;
mod exposure;
mod limits;
mod pools;
mod retries;
mod timeouts;

use crate::{
    codes::{self, Rule},
    finding::{Finding, Hit},
    scope::Scope,
};

/// A check: the rule it enforces and the function that finds its violations.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Check {
    pub(crate) rule: &'static Rule,
    pub(crate) run: fn(&Scope<'_>) -> Vec<Hit>,
}

macro_rules! checks {
    ($($rule:ident => $run:path),* $(,)?) => {
        /// Every check, in code order.
        pub(crate) const CHECKS: &[Check] = &[$(Check { rule: &codes::$rule, run: $run }),*];
    };
}

checks! {
    SW101 => timeouts::response_header_unset,
    SW102 => timeouts::route_timeout_default,
    SW103 => timeouts::route_timeout_huge,
    SW104 => timeouts::per_try_not_below_deadline,
    SW105 => timeouts::response_header_not_below_deadline,
    SW201 => retries::retry_without_budget,
    SW202 => retries::retry_non_idempotent,
    SW203 => retries::hedge_without_budget,
    SW204 => retries::retries_exceed_deadline,
    SW205 => retries::retry_amplification,
    SW206 => retries::per_try_timeout_not_retried,
    SW301 => breakers::retry_without_breaker,
    SW302 => breakers::bulkhead_queue_timeout,
    SW303 => breakers::no_ejection,
    SW304 => breakers::outlier_ejects_most,
    SW305 => breakers::stale_cache_max_age,
    SW306 => breakers::fallback_shares_endpoints,
    SW401 => pools::pool_idle_not_below_keepalive,
    SW402 => pools::upstream_keepalive_unknown,
    SW403 => pools::pool_unbounded,
    SW404 => pools::dns_max_ttl_long,
    SW501 => limits::redis_timeout_not_below_deadline,
    SW502 => limits::redis_fail_closed,
    SW503 => limits::public_route_without_rate_limit,
    SW601 => exposure::public_header_read_timeout,
    SW602 => exposure::public_connection_cap,
    SW603 => exposure::admin_off_loopback,
    SW604 => exposure::debug_on_public_listener,
}

/// Every finding of the config, in code order, then file order.
pub(crate) fn run(scope: &Scope<'_>) -> Vec<Finding> {
    let mut findings: Vec<Finding> = CHECKS
        .iter()
        .flat_map(|check| {
            (check.run)(scope)
                .into_iter()
                .map(|hit| Finding::new(check.rule, hit, scope))
        })
        .collect();
    findings.sort_by(|a, b| {
        (a.rule.code, a.diagnostic.line, a.diagnostic.column).cmp(&(
            b.rule.code,
            b.diagnostic.line,
            b.diagnostic.column,
        ))
    });
    findings
}
