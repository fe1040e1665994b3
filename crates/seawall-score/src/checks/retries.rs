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

/// Copies of one client request (tries × hedge copies) above this amplify an overload.
const MAX_COPIES: u32 = 3;

/// The upstream's retry budget ratio, when it does not bind.
fn unbounded_budget(scope: &Scope<'_>, r: &RouteAt<'_>) -> Option<(String, f64)> {
    let u = scope.upstream(&r.route.upstream)?;
    let ratio = u.upstream.retry_budget.ratio;
    (ratio >= NO_BUDGET_RATIO).then(|| (u.key("retry_budget.ratio"), ratio))
}

/// `SW201`: a route that retries against an upstream whose budget does not bind.
pub(crate) fn retry_without_budget(scope: &Scope<'_>) -> Vec<Hit> {
    scope
        .routes()
        .filter(|r| r.attempts() > 1)
        .filter_map(|r| {
            let (key, ratio) = unbounded_budget(scope, &r)?;
            Some(Hit {
                unit: r.unit(),
                fix: format!("set `{key}: 0.2` (retries add at most 20 % load)"),
                path: key,
                value: Some(ratio.to_string()),
                message: format!(
                    "route `{}` retries against upstream `{}`, whose retry budget allows a retry per request",
                    r.name(),
                    r.route.upstream
                ),
            })
        })
        .collect()
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

/// `SW203`: a route that hedges against an upstream whose budget does not bind.
pub(crate) fn hedge_without_budget(scope: &Scope<'_>) -> Vec<Hit> {
    scope
        .routes()
        .filter(|r| r.route.hedge.is_some())
        .filter_map(|r| {
            let (key, ratio) = unbounded_budget(scope, &r)?;
            Some(Hit {
                unit: r.unit(),
                fix: format!("set `{key}: 0.1` (hedges draw on the retry budget)"),
                path: key,
                value: Some(ratio.to_string()),
                message: format!(
                    "route `{}` hedges against upstream `{}`, whose retry budget allows a hedge per request",
                    r.name(),
                    r.route.upstream
                ),
            })
        })
        .collect()
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
                        "lower `{key}` so that max_attempts × (1 + hedge.max_extra) is at most {MAX_COPIES}, e.g. `retry.max_attempts: 2` with `hedge.max_extra: 0` or no hedge"
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
