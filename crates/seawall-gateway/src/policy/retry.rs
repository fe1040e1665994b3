//! The retry loop around [`super::try_once`]: a route's `RetryPolicy`, jittered backoff
//! and the upstream's `RetryBudget`.
//!
//! After a try fails with an outcome in `retry_on`, another try starts only if, in this
//! order (each refusal counted in `seawall_retries_total{route, outcome}`):
//! 1. the request can be sent again: it has no body, or its body was read ahead under
//!    `buffer_body_max` (see [`super::replay`]), or the pool handed it back unwritten
//!    (`SendError::unsent_request`) → else `body_too_large` (over the cap) or
//!    `body_not_replayable` (buffering off);
//! 2. the method is idempotent, or the route set `non_idempotent: true`, or the request
//!    was never written → else `non_idempotent`;
//! 3. `max_attempts` is not reached → else `attempts_exhausted`;
//! 4. the backoff (stretched to honour a `Retry-After` on 429/503) plus the least time a
//!    try of the upstream recently needed ([`TryTimes`]) fits strictly before the deadline
//!    → else `deadline_too_close`;
//! 5. the upstream's budget has a retry left → else `budget_exhausted` (checked last so
//!    that refusals for other reasons spend no budget).
//!
//! A retry is counted as `attempted`, waits its backoff, and prefers another endpoint than
//! the one that just failed. While it waits, the failed response's body is read to its end
//! (at most [`DRAIN_BYTES`], for at most [`DRAIN_TIME`], within the deadline) so that its
//! connection can carry the retry or a later request; a larger or slower body is dropped,
//! which closes that connection. The retry starts after the longer of the two waits. Each try forwards its own remaining budget (`attempt` writes
//! the deadline headers per try). Every decision is also noted in the request's context
//! (`cx.policy`, the access log's `policy` field) and its debug trace (`retry` entries).

use std::{sync::Mutex, time::Duration};

use http::{HeaderValue, Request, Response, StatusCode, header};
use seawall_config::{RetryBudgetConfig, RetryConfig};
use seawall_core::{Body, GatewayError};
use seawall_resilience::retry::{
    Backoff, Decision, GiveUpReason, MinTry, RetryBudget, RetryBudgetSettings, RetryBudgetSnapshot,
    RetryPolicy,
};
use tokio::time::{Instant, sleep};

use super::{
    breaker::classifier,
    hedge::{RouteHedge, try_hedged},
    replay::{NotKept, Replay},
    try_once,
};
use crate::{body::Outgoing, context::RequestContext, runtime::Upstream};

const X_FORWARDED_FOR: &str = "x-forwarded-for";

/// The most of a retried response's body read to reuse its connection.
const DRAIN_BYTES: u64 = 64 * 1024;
/// The longest a retried response's body is read for (alongside the backoff).
const DRAIN_TIME: Duration = Duration::from_millis(20);

/// A route's retry settings, built.
pub struct RouteRetry {
    policy: RetryPolicy,
    non_idempotent: bool,
    body_cap: u64,
}

impl RouteRetry {
    /// Builds the route's policy from its (validated) config.
    pub fn build(route: &str, config: &RetryConfig) -> Result<Self, String> {
        let err = |e: String| format!("route `{route}`: retry: {e}");
        let b = &config.backoff;
        let backoff = Backoff::try_new(
            b.base.get(),
            b.max.get(),
            b.multiplier,
            b.max_retry_after.get(),
        )
        .map_err(|e| err(e.to_string()))?;
        let retry_on = classifier(&config.retry_on).map_err(err)?;
        let policy = RetryPolicy::try_new(
            config.max_attempts,
            retry_on,
            config.per_try_timeout.map(|d| d.get()),
            backoff,
        )
        .map_err(|e| err(e.to_string()))?;
        Ok(Self {
            policy,
            non_idempotent: config.non_idempotent,
            body_cap: config.buffer_body_max.bytes(),
        })
    }

    /// True when the route opted in to retrying non-idempotent methods.
    pub fn non_idempotent(&self) -> bool {
        self.non_idempotent
    }

    /// The most request-body bytes held to send again (`buffer_body_max`; 0: none).
    pub fn body_cap(&self) -> u64 {
        self.body_cap
    }
}

/// An upstream's retry budget, shared by every route that retries against it.
pub struct Budget(Mutex<RetryBudget>);

impl Budget {
    /// Builds the budget from its (validated) config.
    pub fn build(upstream: &str, config: &RetryBudgetConfig) -> Result<Self, String> {
        let settings = RetryBudgetSettings {
            ttl: config.ttl.get(),
            min_retries_per_second: config.min_retries_per_second,
            ratio: config.ratio,
        };
        RetryBudget::try_new(settings)
            .map(|b| Self(Mutex::new(b)))
            .map_err(|e| format!("upstream `{upstream}`: retry_budget: {e}"))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, RetryBudget> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Takes one retry (or hedge) from the budget, if it has one.
    pub fn try_withdraw(&self, now: Instant) -> bool {
        self.lock().try_withdraw(now)
    }

    /// The budget's figures now.
    pub fn snapshot(&self) -> RetryBudgetSnapshot {
        self.lock().snapshot(Instant::now())
    }
}

/// How long an upstream's tries recently took: the [`MinTry`] estimate (the minimum of
/// the last 16 successful tries, each remembered for [`TryTimes::WINDOW`]), fed by every
/// try of a route with `retry` or `hedge` that got a response head below 500, measured
/// from the try's start (checkout included) to that head. A retry or a hedge is not
/// started when less time than that is left.
pub struct TryTimes(Mutex<MinTry>);

impl Default for TryTimes {
    fn default() -> Self {
        Self(Mutex::new(MinTry::new(Self::WINDOW, Instant::now())))
    }
}

impl TryTimes {
    /// How long a sample counts.
    pub const WINDOW: Duration = Duration::from_secs(60);

    fn lock(&self) -> std::sync::MutexGuard<'_, MinTry> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The least time a recent try took (zero when none is known).
    pub fn expected_min(&self, now: Instant) -> Duration {
        self.lock().get(now)
    }

    /// Records a try that started at `started` and ended with `result`, if it succeeded.
    fn record(&self, started: Instant, result: &Result<Response<Outgoing>, GatewayError>) {
        if result.as_ref().is_ok_and(|r| r.status().as_u16() < 500) {
            let now = Instant::now();
            self.lock()
                .record(now, now.saturating_duration_since(started));
        }
    }
}

/// Sends `req` to `upstream`, retrying as the route's policy allows. `kept` is the request
/// kept for sending again, or why it was not.
pub async fn forward(
    retry: Option<&RouteRetry>,
    hedge: Option<&RouteHedge>,
    route: &str,
    upstream: &Upstream,
    req: Request<Body>,
    kept: Result<&Replay, &NotKept>,
    cx: &mut RequestContext,
) -> Result<Response<Outgoing>, GatewayError> {
    // Hedged requests spend the budget too, so they deposit like retried ones.
    let hedge = hedge.filter(|h| h.may_hedge(req.method())).zip(kept.ok());
    if retry.is_some() || hedge.is_some() {
        upstream.budget.lock().deposit(Instant::now());
    }
    let Some(retry) = retry else {
        let deadline = cx.deadline;
        if hedge.is_none() {
            // Nothing here weighs try times: the plain path records none (no lock).
            return try_once(upstream, req, cx, deadline, None, None)
                .await
                .result;
        }
        return one_try(hedge, route, upstream, req, cx, deadline, None)
            .await
            .result;
    };
    let policy = &retry.policy;
    let metrics = &cx.route.shared.metrics.clone();
    // An unsent request comes back already prepared for the upstream; all of that is
    // idempotent except `x-forwarded-for`, which gained the client's address: restore it.
    let forwarded_for: Vec<HeaderValue> = req
        .headers()
        .get_all(X_FORWARDED_FOR)
        .iter()
        .cloned()
        .collect();
    let method_ok = RetryPolicy::may_retry(req.method(), retry.non_idempotent);
    let mut req = req;
    let mut avoid = None;
    let mut attempts = 0;
    loop {
        attempts += 1;
        let now = Instant::now();
        let try_deadline = policy.try_deadline(now, cx.deadline);
        let out = one_try(hedge, route, upstream, req, cx, try_deadline, avoid).await;
        let (status, kind, retry_after) = match &out.result {
            Ok(resp) => (resp.status().as_u16(), None, retry_after(resp)),
            Err(e) => (e.kind.status().as_u16(), Some(e.kind), None),
        };
        if !policy.is_retryable(status, kind) {
            return out.result;
        }
        let unsent = out.unsent.is_some();
        let again = match (out.unsent, kept) {
            (Some(mut r), Err(_)) => {
                r.headers_mut().remove(X_FORWARDED_FOR);
                for v in &forwarded_for {
                    r.headers_mut().append(X_FORWARDED_FOR, v.clone());
                }
                Some(r)
            }
            (_, Ok(replay)) => Some(replay.build()),
            (None, Err(_)) => None,
        };
        let Some(again) = again else {
            // A body nobody asked to keep because of the method: the method is why.
            let why = match kept {
                Err(NotKept::BodyStreamed) if !method_ok => "non_idempotent",
                Err(w) => w.reason(),
                Ok(_) => "body_not_replayable",
            };
            skipped(cx, metrics, route, why);
            return out.result;
        };
        if !(method_ok || unsent) {
            skipped(cx, metrics, route, "non_idempotent");
            return out.result;
        }
        let now = Instant::now();
        let decision = policy.next_try(
            attempts,
            now,
            cx.deadline,
            upstream.min_try.expected_min(now),
            retry_after,
            fastrand::f64(),
        );
        let after = match decision {
            Decision::GiveUp { reason } => {
                let why = reason.as_str();
                metrics.retry(route, why);
                cx.policy.retry_skipped = Some(why);
                cx.trace_policy("retry", "skipped", || match reason {
                    GiveUpReason::DeadlineTooClose { needed, left } => format!(
                        "reason={why};needed={}ms;left={}ms",
                        needed.as_millis(),
                        left.as_millis()
                    ),
                    GiveUpReason::AttemptsExhausted => format!("reason={why}"),
                });
                return out.result;
            }
            Decision::Retry { after } => after,
        };
        if !upstream.budget.lock().try_withdraw(Instant::now()) {
            skipped(cx, metrics, route, "budget_exhausted");
            return out.result;
        }
        metrics.retry(route, "attempted");
        cx.policy.retries = cx.policy.retries.saturating_add(1);
        cx.trace_policy("retry", "attempted", || {
            format!("attempt={};after={}ms", attempts + 1, after.as_millis())
        });
        tracing::debug!(route, upstream = %upstream.name, attempt = attempts + 1, status, kind = ?kind, ?after, "Retrying.");
        // The failed response's body is read to its end while the backoff runs, so that
        // its connection goes back to the pool for the retry rather than being closed.
        let drain = async {
            if let Ok(resp) = out.result {
                let until = (Instant::now() + DRAIN_TIME).min(cx.deadline);
                resp.into_body().drain(DRAIN_BYTES, until).await;
            }
        };
        futures_util::future::join(drain, sleep(after)).await;
        avoid = out.endpoint;
        req = again;
    }
}

/// `Retry-After` in seconds on a 429 or 503 (the HTTP-date form is not honoured).
fn retry_after(resp: &Response<Outgoing>) -> Option<Duration> {
    if !matches!(
        resp.status(),
        StatusCode::TOO_MANY_REQUESTS | StatusCode::SERVICE_UNAVAILABLE
    ) {
        return None;
    }
    let secs: u64 = resp
        .headers()
        .get(header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()?;
    Some(Duration::from_secs(secs))
}

/// One try, hedged when the route hedges this request; a success is recorded in the
/// upstream's [`TryTimes`].
async fn one_try(
    hedge: Option<(&RouteHedge, &Replay)>,
    route: &str,
    upstream: &Upstream,
    req: Request<Body>,
    cx: &mut RequestContext,
    try_deadline: Instant,
    avoid: Option<usize>,
) -> super::TryOutcome {
    let started = Instant::now();
    let out = match hedge {
        // Boxed: the hedged path runs several tries side by side, and unboxed its state
        // would widen every request's future, which hyper moves by value.
        Some((h, replay)) => {
            Box::pin(try_hedged(
                h,
                route,
                upstream,
                req,
                replay,
                cx,
                try_deadline,
                avoid,
            ))
            .await
        }
        None => try_once(upstream, req, cx, try_deadline, avoid, None).await,
    };
    upstream.min_try.record(started, &out.result);
    out
}

/// A retryable failure that is not retried: counted, noted for the access log, traced.
fn skipped(
    cx: &mut RequestContext,
    metrics: &crate::metrics::Metrics,
    route: &str,
    why: &'static str,
) {
    metrics.retry(route, why);
    cx.policy.retry_skipped = Some(why);
    cx.trace_policy("retry", "skipped", || format!("reason={why}"));
}
