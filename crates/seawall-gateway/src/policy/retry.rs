//! The retry loop around [`super::try_once`]: a route's `RetryPolicy`, jittered backoff
//! and the upstream's `RetryBudget`.
//!
//! After a try fails with an outcome in `retry_on`, another try starts only if, in this
//! order (each refusal counted in `seawall_retries_total{route, outcome}`):
//! 1. the request can be sent again: it has no body (it is rebuilt from its head), or the
//!    pool handed it back unwritten (`SendError::unsent_request`) → else `body_not_replayable`;
//! 2. the method is idempotent, or the route set `non_idempotent: true`, or the request
//!    was never written → else `non_idempotent`;
//! 3. `max_attempts` is not reached → else `attempts_exhausted`;
//! 4. the backoff (stretched to honour a `Retry-After` on 429/503) leaves time before the
//!    deadline → else `deadline`;
//! 5. the upstream's budget has a retry left → else `budget_exhausted` (checked last so
//!    that refusals for other reasons spend no budget).
//!
//! A retry is counted as `attempted`, waits its backoff, and prefers another endpoint than
//! the one that just failed. Each try forwards its own remaining budget (`attempt` writes
//! the deadline headers per try).

use std::{sync::Mutex, time::Duration};

use http::{HeaderMap, HeaderValue, Method, Request, Response, StatusCode, Uri, Version, header};
use http_body::Body as _;
use seawall_config::{RetryBudgetConfig, RetryConfig};
use seawall_core::{Body, GatewayError};
use seawall_resilience::retry::{
    Backoff, Decision, GiveUpReason, RetryBudget, RetryBudgetSettings, RetryBudgetSnapshot,
    RetryPolicy,
};
use tokio::time::{Instant, sleep};

use super::{breaker::classifier, try_once};
use crate::{body::Outgoing, context::RequestContext, runtime::Upstream};

const X_FORWARDED_FOR: &str = "x-forwarded-for";

/// A route's retry settings, built.
pub struct RouteRetry {
    policy: RetryPolicy,
    non_idempotent: bool,
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
        })
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

    /// The budget's figures now.
    pub fn snapshot(&self) -> RetryBudgetSnapshot {
        self.lock().snapshot(Instant::now())
    }
}

/// Sends `req` to `upstream`, retrying as the route's policy allows.
pub async fn forward(
    retry: Option<&RouteRetry>,
    route: &str,
    upstream: &Upstream,
    req: Request<Body>,
    cx: &mut RequestContext,
) -> Result<Response<Outgoing>, GatewayError> {
    let Some(retry) = retry else {
        let deadline = cx.deadline;
        return try_once(upstream, req, cx, deadline, None).await.result;
    };
    let policy = &retry.policy;
    let metrics = &cx.route.shared.metrics.clone();
    upstream.budget.lock().deposit(Instant::now());
    let replay = Replay::capture(&req);
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
        let out = try_once(upstream, req, cx, try_deadline, avoid).await;
        let (status, kind, retry_after) = match &out.result {
            Ok(resp) => (resp.status().as_u16(), None, retry_after(resp)),
            Err(e) => (e.kind.status().as_u16(), Some(e.kind), None),
        };
        if !policy.is_retryable(status, kind) {
            return out.result;
        }
        let unsent = out.unsent.is_some();
        let again = match (out.unsent, &replay) {
            (Some(mut r), None) => {
                r.headers_mut().remove(X_FORWARDED_FOR);
                for v in &forwarded_for {
                    r.headers_mut().append(X_FORWARDED_FOR, v.clone());
                }
                Some(r)
            }
            (_, Some(replay)) => Some(replay.build()),
            (None, None) => None,
        };
        let Some(again) = again else {
            metrics.retry(route, "body_not_replayable");
            return out.result;
        };
        if !(method_ok || unsent) {
            metrics.retry(route, "non_idempotent");
            return out.result;
        }
        let decision = policy.next_try(
            attempts,
            Instant::now(),
            cx.deadline,
            Duration::ZERO,
            retry_after,
            fastrand::f64(),
        );
        let after = match decision {
            Decision::GiveUp {
                reason: GiveUpReason::AttemptsExhausted,
            } => {
                metrics.retry(route, "attempts_exhausted");
                return out.result;
            }
            Decision::GiveUp { .. } => {
                metrics.retry(route, "deadline");
                return out.result;
            }
            Decision::Retry { after } => after,
        };
        if !upstream.budget.lock().try_withdraw(Instant::now()) {
            metrics.retry(route, "budget_exhausted");
            return out.result;
        }
        metrics.retry(route, "attempted");
        tracing::debug!(route, upstream = %upstream.name, attempt = attempts + 1, status, kind = ?kind, ?after, "Retrying.");
        // The failed response (if any) is dropped here: its connection is not reused.
        drop(out.result);
        if !after.is_zero() {
            sleep(after).await;
        }
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

/// The head of a request without a body, kept to send it again.
struct Replay {
    method: Method,
    uri: Uri,
    version: Version,
    headers: HeaderMap,
}

impl Replay {
    /// `None` when the request has a body (it is streamed, not buffered, so it can be sent
    /// once).
    fn capture(req: &Request<Body>) -> Option<Self> {
        req.body().is_end_stream().then(|| Self {
            method: req.method().clone(),
            uri: req.uri().clone(),
            version: req.version(),
            headers: req.headers().clone(),
        })
    }

    fn build(&self) -> Request<Body> {
        let mut req = Request::new(Body::default());
        *req.method_mut() = self.method.clone();
        *req.uri_mut() = self.uri.clone();
        *req.version_mut() = self.version;
        *req.headers_mut() = self.headers.clone();
        req
    }
}
