//! Upstream-side faults: injected inside a try, in place of (or before) the exchange with
//! the endpoint the balancer picked. Everything above — the breaker, the retry loop,
//! hedging, the balancer's RTT and outlier detection, the fallback and stale cache — sees
//! the outcome exactly as it would see a failing upstream, because the outcome is the very
//! same: the [`ErrorKind`] the real failure is classified as, or a response head with the
//! upstream's status.
//!
//! | rule | the try sees |
//! |---|---|
//! | `delay` | the wait, before the response head: `timeouts.response_header` fires when it is shorter, and the per-try timeout, the deadline and a hedge's delay fire as for a slow upstream (the wait is dropped with the try); then the real exchange, or the abort |
//! | `abort.status` / `grpc_status` | a response from "the upstream" with that status (a `text/plain` body, or a trailers-only gRPC answer) |
//! | `abort.connect_error` | `connect_error`, the request unsent (as a refused connection leaves it, so it may be retried whatever its method) |
//! | `abort.upstream_reset` | `upstream_reset`, after the request was "sent" |
//! | `abort.blackhole` | no answer: the try waits for `timeouts.response_header`, the per-try timeout or the deadline |
//!
//! Health probes do not go through tries and are not faulted; neither are WebSocket
//! upgrades.

use std::time::Duration;

use http::{Request, Response};
use seawall_core::{Body, ErrorKind, GatewayError};
use tokio::time::Instant;

use super::{
    client::aborted,
    rule::{Abort, Action, Rule, Slot},
};
use crate::{body::Outgoing, context::RequestContext, error_response::is_grpc, runtime::Upstream};

/// One try's exchange with endpoint `index`: the real `attempt`, unless an upstream-side
/// rule selects the request. Costs one atomic load when the gateway has no such rule.
pub async fn attempt(
    upstream: &Upstream,
    index: usize,
    req: Request<Body>,
    cx: &mut RequestContext,
    unsent: &mut Option<Request<Body>>,
) -> Result<Response<Outgoing>, GatewayError> {
    let faults = &cx.route.shared.faults;
    match faults.select_upstream(&upstream.name, &req, index) {
        None => crate::attempt::attempt(upstream, index, req, cx, unsent).await,
        // Boxed: rare, and its state would widen every try's future.
        Some(slot) => Box::pin(faulted(slot, upstream, index, req, cx, unsent)).await,
    }
}

async fn faulted(
    slot: Slot,
    upstream: &Upstream,
    index: usize,
    req: Request<Body>,
    cx: &mut RequestContext,
    unsent: &mut Option<Request<Body>>,
) -> Result<Response<Outgoing>, GatewayError> {
    let rule = slot.rule().clone();
    cx.fault = Some(rule.header.clone());
    let decision = match rule.abort {
        Some(Abort::Blackhole) => "blackhole",
        _ => "injected",
    };
    cx.trace_policy("upstream_fault", decision, || {
        format!("fault={};endpoint={index}", rule.name)
    });
    let detail = |what: &str| {
        format!(
            "fault `{}` on upstream `{}`: {what}",
            rule.name, upstream.name
        )
    };
    wait_before_head(&rule, upstream, cx.deadline)
        .await
        .map_err(|rh| {
            GatewayError::new(
                ErrorKind::ResponseHeaderTimeout,
                detail(&format!("no response head within {rh:?} (injected)")),
            )
        })?;
    let Some(abort) = rule.abort else {
        drop(slot);
        return crate::attempt::attempt(upstream, index, req, cx, unsent).await;
    };
    match abort {
        Abort::Answer { .. } => {
            // Marked `seawall-fault` like a client-facing abort.
            let (resp, action) = aborted(&rule, &abort, is_grpc(req.headers()));
            rule.count(action);
            Ok(resp.map(|body| Outgoing::Local { body }))
        }
        Abort::ConnectError => {
            rule.count(Action::ConnectError);
            *unsent = Some(req);
            Err(GatewayError::new(
                ErrorKind::ConnectError,
                detail("connection refused (injected)"),
            ))
        }
        Abort::UpstreamReset | Abort::Reset | Abort::Close | Abort::Blackhole => {
            rule.count(Action::UpstreamReset);
            Err(GatewayError::new(
                ErrorKind::UpstreamReset,
                detail("connection reset (injected)"),
            ))
        }
    }
}

/// The rule's wait before the response head: its delay, or forever for a black hole. The
/// response-head timer runs as `attempt` runs it, only when it would fire before the try's
/// `deadline` (otherwise the deadline fires, above this function, and drops the wait); it
/// ends a longer wait with `Err(timeout)`. A refused connection sends no request, so no
/// head is awaited.
async fn wait_before_head(
    rule: &Rule,
    upstream: &Upstream,
    deadline: Instant,
) -> Result<(), Duration> {
    let blackhole = matches!(rule.abort, Some(Abort::Blackhole));
    let connect = matches!(rule.abort, Some(Abort::ConnectError));
    let wait = match rule.delay {
        Some(d) => {
            rule.count(Action::Delay);
            rule.draw_delay(d)
        }
        None => Duration::ZERO,
    };
    if blackhole {
        rule.count(Action::Blackhole);
    }
    let head_timeout = upstream
        .response_header_timeout
        .filter(|rh| !connect && Instant::now() + *rh < deadline);
    match head_timeout {
        Some(rh) if blackhole || wait > rh => {
            tokio::time::sleep(rh).await;
            Err(rh)
        }
        // Only the try's deadline ends this wait.
        None if blackhole => std::future::pending().await,
        _ => {
            tokio::time::sleep(wait).await;
            Ok(())
        }
    }
}
