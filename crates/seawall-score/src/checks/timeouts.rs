//! `SW1xx`: timeouts. Every phase of a try should have its own bound, shorter than the
//! route's deadline, and the deadline itself should be chosen for the route.

use std::time::Duration;

use crate::{
    finding::Hit,
    scope::{Scope, duration},
};

/// Routes with deadlines above this hold resources too long in a slowdown.
const HUGE_DEADLINE: Duration = Duration::from_secs(60);

/// `SW101`: an upstream without `timeouts.response_header`.
pub(crate) fn response_header_unset(scope: &Scope<'_>) -> Vec<Hit> {
    scope
        .upstreams()
        .filter(|u| u.upstream.timeouts.response_header.is_none())
        .map(|u| {
            // Half the tightest deadline leaves room for a retry or a fallback.
            let suggested = scope
                .tightest_route(&u.upstream.name)
                .map_or(Duration::from_secs(5), |r| r.deadline() / 2);
            let key = u.key("timeouts.response_header");
            Hit {
                unit: u.unit(),
                fix: format!("set `{key}: {}`", duration(suggested)),
                path: key,
                value: None,
                message: format!(
                    "upstream `{}` has no response-head timeout",
                    u.upstream.name
                ),
            }
        })
        .collect()
}

/// `SW102`: a route whose `timeout` is the default.
pub(crate) fn route_timeout_default(scope: &Scope<'_>) -> Vec<Hit> {
    scope
        .routes()
        .filter(|r| !scope.written(&r.key("timeout")))
        .map(|r| Hit {
            unit: r.unit(),
            path: r.key("timeout"),
            value: Some(r.route.timeout.to_string()),
            message: format!("route `{}` has no `timeout` of its own", r.name()),
            fix: format!(
                "set `{}` to the route's slowest acceptable answer, e.g. `timeout: 5s`",
                r.key("timeout")
            ),
        })
        .collect()
}

/// `SW103`: a route deadline above a minute.
pub(crate) fn route_timeout_huge(scope: &Scope<'_>) -> Vec<Hit> {
    scope
        .routes()
        .filter(|r| r.deadline() > HUGE_DEADLINE)
        .map(|r| Hit {
            unit: r.unit(),
            path: r.key("timeout"),
            value: Some(r.route.timeout.to_string()),
            message: format!("route `{}` has a {} deadline", r.name(), r.route.timeout),
            fix: format!(
                "set `{}: 30s` or less; move longer work to an asynchronous job",
                r.key("timeout")
            ),
        })
        .collect()
}

/// The bound of one try of route `r` that leads to another try: `retry.per_try_timeout`,
/// else the upstream's `response_header` when `retry_on` lists `response_header_timeout`
/// (retry decisions go by the error kind, so an unlisted timeout ends the request), else
/// none: the deadline.
pub(crate) fn per_try_bound(scope: &Scope<'_>, r: &crate::scope::RouteAt<'_>) -> Option<Duration> {
    let retry = r.route.retry.as_ref()?;
    if let Some(t) = retry.per_try_timeout {
        return Some(t.get());
    }
    let retried = retry
        .retry_on
        .iter()
        .any(|e| e.trim() == "response_header_timeout");
    let upstream = scope.upstream(&r.route.upstream)?;
    upstream
        .upstream
        .timeouts
        .response_header
        .filter(|_| retried)
        .map(|d| d.get())
}

/// `SW104`: a route that retries, but whose tries are bounded only by the deadline.
pub(crate) fn per_try_not_below_deadline(scope: &Scope<'_>) -> Vec<Hit> {
    scope
        .routes()
        .filter(|r| r.attempts() > 1)
        .filter(|r| per_try_bound(scope, r).is_none_or(|t| t >= r.deadline()))
        .map(|r| {
            let suggested = r.deadline() / (r.attempts() + 1);
            let key = r.key("retry.per_try_timeout");
            Hit {
                unit: r.unit(),
                fix: format!("set `{key}: {}`", duration(suggested)),
                value: per_try_bound(scope, &r).map(duration),
                message: format!(
                    "route `{}` retries, but a try may take its whole {} deadline",
                    r.name(),
                    r.route.timeout
                ),
                path: key,
            }
        })
        .collect()
}

/// `SW105`: an upstream whose response-head timeout cannot fire before the deadline of
/// its tightest route.
pub(crate) fn response_header_not_below_deadline(scope: &Scope<'_>) -> Vec<Hit> {
    scope
        .upstreams()
        .filter_map(|u| {
            let header = u.upstream.timeouts.response_header?;
            let r = scope.tightest_route(&u.upstream.name)?;
            (header.get() >= r.deadline()).then(|| {
                let key = u.key("timeouts.response_header");
                Hit {
                    unit: u.unit(),
                    fix: format!("set `{key}: {}`", duration(r.deadline() / 2)),
                    path: key,
                    value: Some(header.to_string()),
                    message: format!(
                        "upstream `{}` waits {header} for a response head, route `{}` only {}",
                        u.upstream.name,
                        r.name(),
                        r.route.timeout
                    ),
                }
            })
        })
        .collect()
}
