//! The resilience policies, wired: `seawall-resilience`'s state machines given a place to
//! live (per upstream or per route), a clock, locks, metrics and logs. One concept per
//! module:
//!
//! | module | policy | state lives |
//! |---|---|---|
//! | `breaker` | circuit breaker, `circuit_open` | per upstream (`Upstream::breaker`) |
//! | `balance` | p2c peak-EWMA or round robin, outlier ejection | per upstream (`Upstream::picker`) |
//! | `bulkhead` | concurrency limit (fixed, or adaptive Gradient2) with a bounded, timed queue | per upstream (`Upstream::bulkhead`) |
//! | `retry` | the retry loop: policy, backoff, budget | policy per route, budget per upstream |
//! | `fallback` | a static or last-good answer instead of an upstream failure | per route (`Route::fallback`) |
//! | `stale_cache` | the last good GET/HEAD answers, captured as they stream | per route, inside its fallback (a reload starts it empty) |
//! | `health` | active health checks: a probe task per upstream, unhealthy endpoints skipped by the balancer | per upstream (`Upstream::health`) |
//! | `hedge` | an extra copy of a slow try to another endpoint; the first answer wins | timing per route (`Route::hedge`), spends the upstream's budget |
//! | `replay` | a request kept (body read ahead under `retry.buffer_body_max`) to be sent again | per request |
//!
//! Order (see ARCHITECTURE.md, "Layer order"): the retry loop is outermost, around
//! [`try_once`]; each try is gated by the breaker first (a known-bad upstream costs
//! nothing, not even a queue slot), then waits for a bulkhead slot, then the balancer picks
//! the endpoint, then `attempt` does the pool checkout and the exchange. Every try's
//! outcome (status at the response head, or the error kind) is fed to the breaker, the
//! balancer (RTT) and outlier detection.
//!
//! State is per upstream and lives in [`crate::runtime::Upstream`], which a reload reuses
//! when the upstream's config is unchanged, so the breaker, the EWMA figures and the budget
//! survive such reloads and start afresh when the upstream's config changes.

pub mod balance;
pub mod breaker;
pub mod bulkhead;
pub mod fallback;
pub mod health;
pub mod hedge;
pub mod replay;
pub mod retry;
pub mod stale_cache;

use http::{Request, Response};
use seawall_core::{Body, ErrorKind, GatewayError};
use seawall_resilience::retry::RetryPolicy;
use tokio::time::{Instant, timeout_at};

use crate::{
    body::Outgoing,
    context::RequestContext,
    faults::upstream::attempt,
    runtime::{Route, Upstream},
};

/// What the policies decided for one request, for the access log's `policy` field, e.g.
/// `retries=1 retry_skipped=body_too_large fallback=upstream`. Plain values, no
/// allocation: every request carries one.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Notes {
    /// Retries started.
    pub retries: u8,
    /// Why a retryable failure was not retried (a `seawall_retries_total` outcome).
    pub retry_skipped: Option<&'static str>,
    /// The fallback that answered: `upstream`, `stale_cache` or `static`.
    pub fallback: Option<&'static str>,
    /// How hedging went: `won` (an extra copy answered first), `lost` (the first copy
    /// did), `budget_exhausted` (no copy sent).
    pub hedge: Option<&'static str>,
}

impl Notes {
    /// True when no policy decided anything worth logging.
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }

    /// Appends the notes as space-separated `key=value` pairs (ASCII, no escaping needed).
    pub fn encode(&self, out: &mut Vec<u8>) {
        let mut sep = "";
        if self.retries > 0 {
            out.extend_from_slice(b"retries=");
            out.extend_from_slice(itoa::Buffer::new().format(self.retries).as_bytes());
            sep = " ";
        }
        for (key, value) in [
            ("retry_skipped=", self.retry_skipped),
            ("fallback=", self.fallback),
            ("hedge=", self.hedge),
        ] {
            if let Some(v) = value {
                out.extend_from_slice(sep.as_bytes());
                out.extend_from_slice(key.as_bytes());
                out.extend_from_slice(v.as_bytes());
                sep = " ";
            }
        }
    }
}

/// A route's request to its upstream under every policy: the request is kept for sending
/// again when something may need it (read ahead under the body cap), then the retry loop
/// runs, then a failure the upstream caused goes to the route's fallback.
pub async fn forward(
    route: &Route,
    upstream: &Upstream,
    req: Request<Body>,
    cx: &mut RequestContext,
) -> Result<Response<Outgoing>, GatewayError> {
    let fallback = route.fallback.as_ref();
    // Taken before the request is moved upstream; only on stale-cache routes.
    let key = fallback.and_then(|f| f.cache_key(&req));
    let retry = route.retry.as_ref();
    let wanted = retry.is_some_and(|r| RetryPolicy::may_retry(req.method(), r.non_idempotent()))
        || route
            .hedge
            .as_ref()
            .is_some_and(|h| h.may_hedge(req.method()))
        || fallback.is_some_and(|f| f.upstream().is_some());
    let cap = retry.map_or(seawall_config::DEFAULT_BUFFER_BODY_MAX.bytes(), |r| {
        r.body_cap()
    });
    let (req, kept) = replay::prepare(req, wanted, cap).await?;
    if cx.trace.is_some() && wanted {
        match &kept {
            Ok(r) => cx.trace_policy("replay", "kept", || format!("body_bytes={}", r.body_len())),
            Err(why) => {
                cx.trace_policy("replay", "not_kept", || format!("reason={}", why.reason()))
            }
        }
    }
    let hedge = route.hedge.as_ref();
    let result = retry::forward(retry, hedge, &route.name, upstream, req, kept.as_ref(), cx).await;
    let Some(fallback) = fallback else {
        return result;
    };
    match result {
        Ok(resp) => Ok(match key {
            Some(key) => fallback.remember(key, resp),
            None => resp,
        }),
        // Boxed: rare, and it may run a whole try against another upstream; unboxed that
        // state would widen every request's future.
        Err(e) if fallback::RouteFallback::covers(e.kind) => {
            Box::pin(fallback.serve(route, e, kept.as_ref().ok(), key.as_ref(), cx)).await
        }
        Err(e) => Err(e),
    }
}

/// How one try ended, with what the retry loop needs to decide on another.
pub struct TryOutcome {
    pub result: Result<Response<Outgoing>, GatewayError>,
    /// The endpoint the try went to, if one was picked.
    pub endpoint: Option<usize>,
    /// The request, when the pool gave it back unwritten (safe to send again).
    pub unsent: Option<Request<Body>>,
}

/// One try: breaker admission → bulkhead slot → endpoint pick → `attempt`, bounded by
/// `try_deadline` (the per-try timeout, or the request deadline), with the outcome fed back
/// to every policy. `picked`, when given, is set to the endpoint as soon as it is picked
/// (a hedge started meanwhile avoids it).
pub async fn try_once(
    upstream: &Upstream,
    req: Request<Body>,
    cx: &mut RequestContext,
    try_deadline: Instant,
    avoid: Option<usize>,
    picked: Option<&std::sync::atomic::AtomicUsize>,
) -> TryOutcome {
    let fail = |e: GatewayError| TryOutcome {
        result: Err(e),
        endpoint: None,
        unsent: None,
    };
    let permit = match &upstream.breaker {
        Some(b) => match b.admit(Instant::now(), try_deadline) {
            Ok(mut p) => {
                p.watch_client(cx.client_body.as_ref());
                Some(p)
            }
            Err(e) => return fail(e),
        },
        None => None,
    };
    let slot = match &upstream.bulkhead {
        Some(b) => match b.enter(try_deadline).await {
            Ok(slot) => Some(slot),
            Err(e) => {
                // The gateway refused the try: that says nothing about the upstream.
                if let Some(p) = permit {
                    p.release();
                }
                return fail(e);
            }
        },
        None => None,
    };
    let Some(mut lease) = upstream.picker.pick(avoid) else {
        if let Some(p) = permit {
            p.release();
        }
        return fail(GatewayError::new(
            ErrorKind::NoEndpoint,
            format!("upstream `{}` has no endpoints", upstream.name),
        ));
    };
    lease.watch_client(cx.client_body.as_ref());
    let index = lease.index();
    if let Some(p) = picked {
        p.store(index, std::sync::atomic::Ordering::Relaxed);
    }
    let mut unsent = None;
    let request_deadline = cx.deadline;
    // `attempt` bounds checkout and the head wait by `cx.deadline` and forwards the time
    // left to it as the next hop's budget: for this try, that is the try's deadline.
    cx.deadline = try_deadline;
    let result = if try_deadline < request_deadline {
        match timeout_at(try_deadline, attempt(upstream, index, req, cx, &mut unsent)).await {
            Ok(r) => r,
            Err(_) => Err(GatewayError::new(
                ErrorKind::PerTryTimeout,
                format!(
                    "no response head from upstream `{}` within retry.per_try_timeout",
                    upstream.name
                ),
            )),
        }
    } else {
        attempt(upstream, index, req, cx, &mut unsent).await
    };
    cx.deadline = request_deadline;
    if try_deadline < request_deadline
        && let Ok(resp) = &result
        && let Outgoing::Upstream { body } = resp.body()
    {
        // The pool armed the connection's lease with the try's deadline; the body
        // streams under the request's.
        body.hold_until(request_deadline);
    }
    // A try that timed out while the gateway was still waiting for the client's body was
    // slowed by the client: classified where it arises, so that no policy below counts it.
    // A per-try timeout during a slow upload keeps its reason (the route's own retry
    // setting cut it, not a client limit) but is not counted against the upstream either.
    let slow_upload = cx.waiting_on_client();
    let result = match result {
        Err(e)
            if matches!(
                e.kind,
                ErrorKind::DeadlineExceeded | ErrorKind::ResponseHeaderTimeout
            ) && slow_upload =>
        {
            Err(GatewayError::new(
                ErrorKind::BodyReadTimeout,
                format!(
                    "{}, while the client was still sending the request body",
                    e.detail
                ),
            ))
        }
        // The client's body failed first (an HTTP/2 upstream reports that as a stream
        // reset): the outcome is the body's.
        Err(e) if cx.client_body_failure().is_some_and(|k| k != e.kind) => {
            let kind = cx.client_body_failure().unwrap_or(e.kind);
            Err(GatewayError::new(
                kind,
                format!("request body failed ({}): {}", kind.reason(), e.detail),
            ))
        }
        other => other,
    };
    let (status, kind) = match &result {
        Ok(resp) => (resp.status().as_u16(), None),
        Err(e) => (e.kind.status().as_u16(), Some(e.kind)),
    };
    if let Some(slot) = slot {
        // Only a response head measures the upstream's latency; a timeout is an overload
        // sign; other failures (refused, reset, client-side) say nothing about it.
        let sample = match kind {
            None => Some(bulkhead::Sample::Rtt(slot.taken().elapsed())),
            Some(
                ErrorKind::ResponseHeaderTimeout
                | ErrorKind::PerTryTimeout
                | ErrorKind::ConnectTimeout,
            ) => Some(bulkhead::Sample::Dropped),
            Some(_) => None,
        };
        slot.finish(sample);
    }
    // A try that failed on the client's side says nothing about the upstream: it is
    // released, not counted, by the breaker and outlier detection.
    let client_side = matches!(
        kind,
        Some(
            ErrorKind::ClientClosed
                | ErrorKind::BodyReadTimeout
                | ErrorKind::BodyTooLarge
                | ErrorKind::BadRequest
        )
    ) || (kind == Some(ErrorKind::PerTryTimeout) && slow_upload);
    if client_side {
        if let Some(p) = permit {
            p.release();
        }
        lease.abandon();
    } else {
        if let Some(p) = permit {
            p.record(status, kind);
        }
        lease.finish(status, kind);
    }
    TryOutcome {
        result,
        endpoint: Some(index),
        unsent,
    }
}
