//! Hedged requests, wired: a route's [`Hedge`] timing, and the race of a try against its
//! extra copies.
//!
//! A try on a route with `hedge` runs as usual; if no response head has come after the
//! hedge delay (fixed, or a quantile of the route's recent latencies once enough are
//! known), one more copy of the request goes to the upstream, avoiding the endpoint the
//! first copy went to, up to `max_extra` copies, one per delay. The first copy to produce a
//! response head wins; the others are dropped, which cancels them: their pooled
//! connection is closed (an exchange dropped mid-flight is never returned to the pool),
//! their breaker admission is released and their balancer lease ended. A copy that fails
//! does not end the race while another is still running.
//!
//! A copy is sent only when the request can be sent again (no body, or a body held under
//! `retry.buffer_body_max`), the method is idempotent (or the route opted in), it would
//! start early enough to answer before the try's deadline (its start plus the least time
//! the upstream's tries recently took, `retry::TryTimes`, is before it), and the
//! upstream's retry budget allows it: every
//! copy withdraws from the budget like a retry, and hedged routes deposit every request.
//!
//! Each copy runs in its own scratch copy of the request context (two exchanges cannot
//! share one); the winner's endpoint and trace entries are moved into the request's.

use std::{
    sync::{
        Mutex,
        atomic::{AtomicU64, AtomicUsize, Ordering},
    },
    time::Duration,
};

use futures_util::{StreamExt, stream::FuturesUnordered};
use http::{Method, Request};
use prometheus_client::metrics::gauge::Gauge;
use seawall_config::{HedgeConfig, HedgeDelayConfig};
use seawall_core::Body;
use seawall_resilience::{
    hedge::{Hedge, HedgeDelay, HedgeSettings},
    retry::RetryPolicy,
};
use tokio::time::{Instant, sleep_until};

use super::{TryOutcome, replay::Replay, try_once};
use crate::{context::RequestContext, metrics::Metrics, runtime::Upstream};

/// A route's hedging, built.
pub struct RouteHedge {
    /// A fixed delay needs no state: read without the lock, and nothing recorded.
    fixed: Option<Duration>,
    hedge: Mutex<Hedge>,
    max_extra: u32,
    non_idempotent: bool,
    /// `seawall_hedge_delay_seconds{route}`, resolved once.
    delay_gauge: Gauge<f64, AtomicU64>,
}

impl RouteHedge {
    /// Builds the route's hedging from its (validated) config.
    pub fn build(route: &str, config: &HedgeConfig, metrics: &Metrics) -> Result<Self, String> {
        let delay = match config.delay {
            HedgeDelayConfig::Fixed(d) => HedgeDelay::Fixed(d.get()),
            HedgeDelayConfig::Quantile(q) => HedgeDelay::Quantile(q),
        };
        let settings = HedgeSettings {
            delay,
            max_extra: config.max_extra,
            ..HedgeSettings::default()
        };
        let fixed = match settings.delay {
            HedgeDelay::Fixed(d) => Some(d),
            HedgeDelay::Quantile(_) => None,
        };
        let hedge = Hedge::try_new(settings).map_err(|e| format!("route `{route}`: hedge: {e}"))?;
        let delay_gauge = metrics.hedge_delay_gauge(route);
        if let Some(d) = fixed {
            delay_gauge.set(d.as_secs_f64());
        }
        Ok(Self {
            fixed,
            hedge: Mutex::new(hedge),
            max_extra: config.max_extra,
            non_idempotent: config.non_idempotent,
            delay_gauge,
        })
    }

    /// True when requests of `method` may be hedged on this route.
    pub fn may_hedge(&self, method: &Method) -> bool {
        RetryPolicy::may_retry(method, self.non_idempotent)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Hedge> {
        self.hedge.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn delay(&self, now: Instant) -> Option<Duration> {
        if self.fixed.is_some() {
            return self.fixed;
        }
        let delay = self.lock().delay(now);
        self.delay_gauge
            .set(delay.map_or(f64::NAN, |d| d.as_secs_f64()));
        delay
    }

    fn record(&self, latency: Duration) {
        // Only a quantile delay learns from latencies.
        if self.fixed.is_none() {
            self.lock().record(Instant::now(), latency);
        }
    }
}

/// How the race ended.
enum Won {
    /// The first copy answered first (or failed with no other copy running).
    First(TryOutcome),
    /// An extra copy answered first; its scratch context.
    Extra(TryOutcome, Box<RequestContext>),
    /// Every copy failed: the first failure.
    Failed(TryOutcome),
}

/// One try of `req` (kept as `replay`), hedged as the route says. Same contract as
/// [`try_once`].
#[allow(clippy::too_many_arguments)]
pub async fn try_hedged(
    hedge: &RouteHedge,
    route: &str,
    upstream: &Upstream,
    req: Request<Body>,
    replay: &Replay,
    cx: &mut RequestContext,
    try_deadline: Instant,
    avoid: Option<usize>,
) -> TryOutcome {
    let started = Instant::now();
    // A copy started at `t` must be able to answer before the try's deadline: it needs at
    // least what the upstream's tries recently took (see `TryTimes`).
    let min_try = upstream.min_try.expected_min(started);
    let fits = |t: Instant| t + min_try < try_deadline;
    let Some(delay) = hedge.delay(started).filter(|d| fits(started + *d)) else {
        let out = try_once(upstream, req, cx, try_deadline, avoid, None).await;
        if out.result.is_ok() {
            hedge.record(started.elapsed());
        }
        return out;
    };
    let metrics = cx.route.shared.metrics.clone();
    // `try_once` narrows `cx.deadline` to the try's while it runs and restores it at the
    // end; a first copy cancelled mid-flight never gets to restore it.
    let request_deadline = cx.deadline;
    let base = cx.clone();
    let picked = AtomicUsize::new(usize::MAX);
    let mut sent = 0u32;
    let mut refused = false;
    let won = {
        let first = try_once(upstream, req, cx, try_deadline, avoid, Some(&picked));
        tokio::pin!(first);
        let mut first_live = true;
        let mut first_failure: Option<TryOutcome> = None;
        let mut extras = FuturesUnordered::new();
        let mut next = started + delay;
        loop {
            let may_send = !refused && sent < hedge.max_extra && fits(next);
            tokio::select! {
                out = &mut first, if first_live => {
                    first_live = false;
                    if out.result.is_ok() || extras.is_empty() {
                        break Won::First(out);
                    }
                    first_failure = Some(out);
                }
                Some((out, scratch)) = extras.next(), if !extras.is_empty() => {
                    let out: TryOutcome = out;
                    if out.result.is_ok() {
                        break Won::Extra(out, scratch);
                    }
                    if !first_live && extras.is_empty() {
                        break Won::Failed(first_failure.take().unwrap_or(out));
                    }
                    first_failure.get_or_insert(out);
                }
                () = sleep_until(next), if may_send => {
                    if !upstream.budget.try_withdraw(Instant::now()) {
                        refused = true;
                        metrics.hedge(route, "budget_exhausted");
                        continue;
                    }
                    sent += 1;
                    next += delay;
                    let avoid = match picked.load(Ordering::Relaxed) {
                        usize::MAX => avoid,
                        i => Some(i),
                    };
                    let mut scratch = Box::new(base.clone());
                    let req = replay.build();
                    extras.push(async move {
                        let out = try_once(upstream, req, &mut scratch, try_deadline, avoid, None).await;
                        (out, scratch)
                    });
                }
            }
        }
        // Leaving this block drops the copies still running: they are cancelled.
    };
    cx.deadline = request_deadline;
    let (out, note) = match won {
        Won::First(out) => (out, "lost"),
        Won::Failed(out) => (out, "lost"),
        Won::Extra(out, scratch) => {
            cx.upstream = scratch.upstream;
            if let (Some(trace), Some(theirs)) = (cx.trace.as_mut(), scratch.trace) {
                let from = base.trace.as_ref().map_or(0, Vec::len);
                trace.extend(theirs.into_iter().skip(from));
            }
            (out, "won")
        }
    };
    if out.result.is_ok() {
        hedge.record(started.elapsed());
    }
    if sent > 0 {
        let won = u32::from(note == "won");
        for _ in 0..won {
            metrics.hedge(route, "won");
        }
        for _ in won..sent {
            metrics.hedge(route, "lost");
        }
        cx.policy.hedge = Some(note);
        cx.trace_policy("hedge", note, || {
            format!("sent={sent};delay={}ms", delay.as_millis())
        });
    } else if refused {
        cx.policy.hedge = Some("budget_exhausted");
        cx.trace_policy("hedge", "skipped", || "reason=budget_exhausted".to_owned());
    }
    out
}
