//! `SW2xx`: retries and hedging. Every extra copy of a request must be paid for by a
//! budget that binds, fit within the deadline, and be safe to send twice.

use seawall_config::HedgeConfig;

use crate::{
    checks::timeouts::per_try_bound,
    finding::Hit,
    scope::{RouteAt, Scope, duration},
};

/// A budget ratio at or above this allows a retry for every request: no budget at all.
const NO_BUDGET_RATIO: f64 = 1.0;

/// The error kind of a try cut by `retry.per_try_timeout`.
const PER_TRY_TIMEOUT: &str = "per_try_timeout";

/// Copies of one client request (tries × hedge copies) above this amplify an overload.
const MAX_COPIES: u32 = 3;

/// One finding per upstream whose budget does not bind while some route sends it extra
/// copies (`copies` says which routes: retrying or hedging ones). The key is the
/// upstream's, so the finding is charged to the upstream: one fix there covers every route.
fn unbounded_budget(
    scope: &Scope<'_>,
    copies: impl Fn(&RouteAt<'_>) -> bool,
    what: &str,
    (suggested, note): (&str, &str),
) -> Vec<Hit> {
    scope
        .upstreams()
        .filter(|u| u.upstream.retry_budget.ratio >= NO_BUDGET_RATIO)
        .filter_map(|u| {
            let routes: Vec<String> = scope
                .routes_to(&u.upstream.name)
                .filter(|r| copies(r))
                .map(|r| format!("`{}`", r.name()))
                .collect();
            if routes.is_empty() {
                return None;
            }
            let key = u.key("retry_budget.ratio");
            let ratio = u.upstream.retry_budget.ratio;
            Some(Hit {
                unit: u.unit(),
                fix: format!("set `{key}: {suggested}` ({note})"),
                path: key,
                value: Some(ratio.to_string()),
                message: format!(
                    "upstream `{}` allows {ratio} {what} per request (routes {})",
                    u.upstream.name,
                    routes.join(", ")
                ),
            })
        })
        .collect()
}

/// `SW201`: routes retry against an upstream whose budget does not bind.
pub(crate) fn retry_without_budget(scope: &Scope<'_>) -> Vec<Hit> {
    unbounded_budget(
        scope,
        |r| r.attempts() > 1,
        "retries",
        ("0.2", "retries add at most 20 % load"),
    )
}

/// `SW202`: `retry.non_idempotent` or `hedge.non_idempotent`.
pub(crate) fn retry_non_idempotent(scope: &Scope<'_>) -> Vec<Hit> {
    let mut hits = Vec::new();
    for r in scope.routes() {
        let retry = r
            .route
            .retry
            .as_ref()
            .is_some_and(|x| x.non_idempotent && x.max_attempts > 1);
        let hedge = r.route.hedge.as_ref().is_some_and(|h| h.non_idempotent);
        for (on, what) in [(retry, "retry"), (hedge, "hedge")] {
            if on {
                let key = r.key(&format!("{what}.non_idempotent"));
                hits.push(Hit {
                    unit: r.unit(),
                    fix: format!(
                        "set `{key}: false`, or make the upstream deduplicate (an idempotency key) first"
                    ),
                    path: key,
                    value: Some("true".to_owned()),
                    message: format!("route `{}` may send POST and PATCH twice ({what})", r.name()),
                });
            }
        }
    }
    hits
}

/// `SW203`: routes hedge against an upstream whose budget does not bind.
pub(crate) fn hedge_without_budget(scope: &Scope<'_>) -> Vec<Hit> {
    unbounded_budget(
        scope,
        |r| r.route.hedge.is_some(),
        "hedges",
        ("0.1", "hedges draw on the retry budget"),
    )
}

/// `SW204`: `max_attempts` tries of their per-try bound do not fit in the deadline (when a
/// single try does; `SW104` covers the other case).
pub(crate) fn retries_exceed_deadline(scope: &Scope<'_>) -> Vec<Hit> {
    scope
        .routes()
        .filter(|r| r.attempts() > 1)
        .filter_map(|r| {
            let per_try = per_try_bound(scope, &r)?;
            let total = per_try.checked_mul(r.attempts())?;
            (per_try < r.deadline() && total > r.deadline()).then(|| {
                let key = r.key("retry.per_try_timeout");
                Hit {
                    unit: r.unit(),
                    fix: format!(
                        "set `{key}: {}`, or fewer `retry.max_attempts`",
                        duration(r.deadline() / r.attempts())
                    ),
                    path: key,
                    value: Some(duration(per_try)),
                    message: format!(
                        "route `{}`: {} tries of {} need {}, the deadline is {}",
                        r.name(),
                        r.attempts(),
                        duration(per_try),
                        duration(total),
                        r.route.timeout
                    ),
                }
            })
        })
        .collect()
}

/// `SW205`: tries × hedge copies above three.
pub(crate) fn retry_amplification(scope: &Scope<'_>) -> Vec<Hit> {
    scope
        .routes()
        .filter_map(|r| {
            let extra = r.route.hedge.as_ref().map_or(0, |h: &HedgeConfig| h.max_extra);
            let copies = r.attempts().saturating_mul(1 + extra);
            (copies > MAX_COPIES).then(|| {
                let key = if r.attempts() > 1 {
                    r.key("retry.max_attempts")
                } else {
                    r.key("hedge.max_extra")
                };
                Hit {
                    unit: r.unit(),
                    fix: format!(
                        "lower `{key}` so that max_attempts × (1 + hedge.max_extra) is at most {MAX_COPIES}: retries (`max_attempts: 3`) or a hedge (`max_extra: 1`, one try), not both"
                    ),
                    path: key,
                    value: Some(copies.to_string()),
                    message: format!(
                        "route `{}` may send {copies} copies of one request",
                        r.name()
                    ),
                }
            })
        })
        .collect()
}

/// `SW206`: a per-try timeout whose failure is not retried.
pub(crate) fn per_try_timeout_not_retried(scope: &Scope<'_>) -> Vec<Hit> {
    scope
        .routes()
        .filter_map(|r| {
            let retry = r.route.retry.as_ref()?;
            let per_try = retry.per_try_timeout?;
            let retried = retry.retry_on.iter().any(|e| e.trim() == PER_TRY_TIMEOUT);
            (retry.max_attempts > 1 && per_try.get() < r.deadline() && !retried).then(|| {
                let key = r.key("retry.retry_on");
                Hit {
                    unit: r.unit(),
                    fix: format!("add `{PER_TRY_TIMEOUT}` to `{key}`"),
                    path: key,
                    value: Some(format!("[{}]", retry.retry_on.join(", "))),
                    message: format!(
                        "route `{}` cuts a try after {per_try} but does not retry it",
                        r.name()
                    ),
                }
            })
        })
        .collect()
}
