//! One attempt to get a response from an upstream, with its layered timeouts.
//!
//! The layers, from the outside in:
//! 1. the request deadline (applied by `crate::edge` around the whole chain, and by the
//!    response body while streaming) → `deadline_exceeded`;
//! 2. pool checkout wait, bounded by `checkout_timeout` → `pool_exhausted`;
//! 3. TCP connect, bounded by `timeouts.connect` → `connect_timeout`;
//! 4. response head, bounded by `timeouts.response_header` → `response_header_timeout`.
//!
//! Each inner timeout only applies when it would fire before the deadline; otherwise the
//! deadline fires first and is what gets reported. Retries (a later policy) will wrap this
//! function, one call per try.

use http::{Request, Response};
use seawall_core::{Body, ErrorKind, GatewayError};
use tokio::time::{Instant, timeout_at};

use crate::{
    body::Outgoing,
    context::{RequestContext, TraceEntry, UpstreamUse},
    forwarding::{prepare_upstream_request, strip_hop_by_hop},
    runtime::Upstream,
};

/// Sends `req` to one endpoint of `upstream` and returns the response head with its
/// streaming body.
pub async fn attempt(
    upstream: &Upstream,
    req: Request<Body>,
    cx: &mut RequestContext,
) -> Result<Response<Outgoing>, GatewayError> {
    let started = cx.trace.is_some().then(Instant::now);
    let result = attempt_inner(upstream, req, cx).await;
    if let (Some(started), Some(trace)) = (started, cx.trace.as_mut()) {
        let (outcome, mut extra) = match &result {
            Ok(_) => ("ok", String::new()),
            Err(e) => ("error", format!("error={};", e.kind.reason())),
        };
        if let Some(u) = cx.upstream {
            extra.push_str(&format!(
                "endpoint={};reused={};connection={}",
                u.endpoint, u.reused, u.connection
            ));
        }
        trace.push(TraceEntry::upstream(started.elapsed(), outcome, extra));
    }
    result
}

async fn attempt_inner(
    upstream: &Upstream,
    mut req: Request<Body>,
    cx: &mut RequestContext,
) -> Result<Response<Outgoing>, GatewayError> {
    let index = upstream.next_endpoint().ok_or_else(|| {
        GatewayError::new(
            ErrorKind::NoEndpoint,
            format!("upstream `{}` has no endpoints", upstream.name),
        )
    })?;
    let pooled = upstream
        .pool
        .checkout(index, cx.deadline)
        .await
        .map_err(|e| GatewayError::new(e.kind, e.to_string()))?;
    cx.upstream = Some(UpstreamUse {
        endpoint: pooled.endpoint(),
        reused: pooled.is_reused(),
        connection: pooled.id(),
    });

    let now = Instant::now();
    prepare_upstream_request(
        &mut req,
        cx.client,
        cx.deadline.saturating_duration_since(now),
    );
    let send = pooled.send(req);
    let result = match upstream.response_header_timeout {
        Some(rh) if now + rh < cx.deadline => match timeout_at(now + rh, send).await {
            Ok(r) => r,
            Err(_) => {
                return Err(GatewayError::new(
                    ErrorKind::ResponseHeaderTimeout,
                    format!("no response head from {} within {rh:?}", upstream.name),
                ));
            }
        },
        _ => send.await,
    };
    let mut resp = result.map_err(|e| GatewayError::new(e.kind, e.to_string()))?;
    strip_hop_by_hop(resp.headers_mut());
    Ok(resp.map(|body| Outgoing::Upstream { body }))
}
