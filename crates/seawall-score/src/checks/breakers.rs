//! `SW3xx`: circuit breakers, shedding and degraded answers. An upstream that is retried
//! needs a breaker, a bulkhead must shed fast, a bad endpoint must leave the rotation, and a
//! fallback must not lead back to what failed.

use std::{collections::HashSet, time::Duration};

use crate::{
    finding::Hit,
    scope::{Scope, duration, is_host_name},
};

/// More ejected than this share of the endpoints leaves too few to carry the traffic.
const MAX_EJECTION_PERCENT: u32 = 50;

/// Stale answers older than this are rarely what a client expects.
const MAX_STALE_AGE: Duration = Duration::from_secs(3600);

/// `SW301`: an upstream that some route retries or hedges against, with no breaker.
pub(crate) fn retry_without_breaker(scope: &Scope<'_>) -> Vec<Hit> {
    scope
        .upstreams()
        .filter(|u| u.upstream.breaker.is_none())
        .filter(|u| {
            scope
                .routes_to(&u.upstream.name)
                .any(|r| r.attempts() > 1 || r.route.hedge.is_some())
        })
        .map(|u| Hit {
            unit: u.unit(),
            path: u.key("breaker"),
            value: None,
            message: format!(
                "upstream `{}` is retried but has no circuit breaker",
                u.upstream.name
            ),
            fix: format!(
                "set `{}: {{}}` (trips at 50 % failures over 10s, then fails fast)",
                u.key("breaker")
            ),
        })
        .collect()
}

/// `SW302`: a bulkhead with a queue whose `queue_timeout` is defaulted, or not shorter
/// than the tightest deadline of the routes using it.
pub(crate) fn bulkhead_queue_timeout(scope: &Scope<'_>) -> Vec<Hit> {
    scope
        .upstreams()
        .filter_map(|u| {
            let c = u.upstream.concurrency.as_ref()?;
            if c.max_pending == 0 {
                return None;
            }
            let key = u.key("concurrency.queue_timeout");
            let deadline = scope
                .tightest_route(&u.upstream.name)
                .map_or(Duration::MAX, |r| r.deadline());
            let fires = !scope.written(&key) || c.queue_timeout.get() >= deadline;
            fires.then(|| {
                let suggested = deadline.min(Duration::from_secs(1)) / 10;
                Hit {
                    unit: u.unit(),
                    fix: format!("set `{key}: {}`", duration(suggested)),
                    path: key,
                    value: Some(c.queue_timeout.to_string()),
                    message: format!(
                        "upstream `{}` queues {} tries without a short queue timeout of its own",
                        u.upstream.name, c.max_pending
                    ),
                }
            })
        })
        .collect()
}

/// `SW303`: several endpoints (or a host name, which may resolve to several) and nothing
/// that takes a bad one out of the rotation.
pub(crate) fn no_ejection(scope: &Scope<'_>) -> Vec<Hit> {
    scope
        .upstreams()
        .filter(|u| u.upstream.outlier.is_none() && u.upstream.health_check.is_none())
        .filter(|u| {
            u.upstream.endpoints.len() > 1 || u.upstream.endpoints.iter().any(|e| is_host_name(e))
        })
        .map(|u| Hit {
            unit: u.unit(),
            path: u.key("outlier"),
            value: None,
            message: format!(
                "upstream `{}` has {} endpoints but neither outlier ejection nor health checks",
                u.upstream.name,
                u.upstream.endpoints.len()
            ),
            fix: format!(
                "set `{}: {{}}` (ejects an endpoint after 5 failures in a row), or `health_check`",
                u.key("outlier")
            ),
        })
        .collect()
}

/// `SW304`: outlier ejection allowed to eject more than half the endpoints.
pub(crate) fn outlier_ejects_most(scope: &Scope<'_>) -> Vec<Hit> {
    scope
        .upstreams()
        .filter_map(|u| {
            let o = u.upstream.outlier.as_ref()?;
            (o.max_ejection_percent > MAX_EJECTION_PERCENT).then(|| {
                let key = u.key("outlier.max_ejection_percent");
                Hit {
                    unit: u.unit(),
                    fix: format!("set `{key}: 34` or less"),
                    path: key,
                    value: Some(o.max_ejection_percent.to_string()),
                    message: format!(
                        "upstream `{}` may eject {} % of its endpoints",
                        u.upstream.name, o.max_ejection_percent
                    ),
                }
            })
        })
        .collect()
}

/// `SW305`: a stale cache whose `max_age` is defaulted or above an hour.
pub(crate) fn stale_cache_max_age(scope: &Scope<'_>) -> Vec<Hit> {
    scope
        .routes()
        .filter_map(|r| {
            let cache = r.route.fallback.as_ref()?.stale_cache.as_ref()?;
            let key = r.key("fallback.stale_cache.max_age");
            let fires = !scope.written(&key) || cache.max_age.get() > MAX_STALE_AGE;
            fires.then(|| Hit {
                unit: r.unit(),
                fix: format!(
                    "set `{key}` to how old an answer may be for this route's clients, e.g. `max_age: 60s`"
                ),
                path: key,
                value: Some(cache.max_age.to_string()),
                message: format!(
                    "route `{}` serves stale answers without a chosen age bound",
                    r.name()
                ),
            })
        })
        .collect()
}

/// `SW306`: a fallback upstream with an endpoint of the route's own upstream.
pub(crate) fn fallback_shares_endpoints(scope: &Scope<'_>) -> Vec<Hit> {
    scope
        .routes()
        .filter_map(|r| {
            let name = r.route.fallback.as_ref()?.upstream.as_ref()?;
            let own = scope.upstream(&r.route.upstream)?;
            let other = scope.upstream(name)?;
            let own_endpoints: HashSet<String> = own
                .upstream
                .endpoints
                .iter()
                .map(|e| e.to_ascii_lowercase())
                .collect();
            let shared = other
                .upstream
                .endpoints
                .iter()
                .find(|e| own_endpoints.contains(&e.to_ascii_lowercase()))?;
            let key = r.key("fallback.upstream");
            Some(Hit {
                unit: r.unit(),
                fix: format!(
                    "point `{key}` at an upstream on other servers (a standby, another region), or give `{}` its own endpoints",
                    other.upstream.name
                ),
                path: key,
                value: Some(name.clone()),
                message: format!(
                    "route `{}` falls back to `{name}`, which shares endpoint {shared} with `{}`",
                    r.name(),
                    own.upstream.name
                ),
            })
        })
        .collect()
}
