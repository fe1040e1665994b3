//! Per-request state that travels with a request through the chain and, after the response
//! head is sent, inside the response body until the last byte (see `crate::body`).
//!
//! It holds what the access log, the metrics and the debug trace need; nothing in it is
//! shared with other requests except through `Arc`s that are read-only.

use std::{fmt::Write as _, net::SocketAddr, sync::Arc, time::Duration};

use http::{HeaderValue, Method, Uri};
use seawall_core::ErrorKind;
use tokio::time::Instant;

use crate::{listener::ConnState, runtime::Route};

/// Where a request currently is; read when its deadline fires.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// Before routing.
    Edge,
    /// Inside middleware layer `n` of the route's chain.
    Layer(usize),
    /// Waiting on the upstream (pool checkout, connect, response head).
    Upstream,
    /// The response head has been produced.
    Responded,
}

/// Which endpoint (and upstream connection) the request's last try went to.
#[derive(Debug, Clone, Copy)]
pub struct UpstreamUse {
    pub endpoint: SocketAddr,
    pub reused: bool,
    /// The pool's connection id; `None` when no connection was established (a connect or
    /// TLS handshake that failed: the endpoint is still known and logged).
    pub connection: Option<u64>,
}

impl UpstreamUse {
    /// The endpoint of a checkout that failed before a connection existed.
    pub fn unconnected(endpoint: SocketAddr) -> Self {
        Self {
            endpoint,
            reused: false,
            connection: None,
        }
    }
}

/// One step of the debug trace.
#[derive(Debug, Clone)]
pub struct TraceEntry {
    name: &'static str,
    elapsed: Duration,
    decision: &'static str,
    extra: Option<String>,
}

impl TraceEntry {
    /// A middleware layer's step.
    pub fn layer(name: &'static str, elapsed: Duration, forwarded: bool) -> Self {
        Self {
            name,
            elapsed,
            decision: if forwarded { "forward" } else { "respond" },
            extra: None,
        }
    }

    /// The layer that held the request until the deadline: `elapsed` is the time from the
    /// request's start to the deadline. (Found by probing a stalled `rate_limit`: the trace
    /// ended at the layer before it, so it blamed nobody.)
    pub fn stalled(name: &'static str, elapsed: Duration) -> Self {
        Self {
            name,
            elapsed,
            decision: "stalled",
            extra: None,
        }
    }

    /// A resilience policy's decision (`retry`, `fallback`, `hedge`), e.g.
    /// `retry;dur=0.000ms;skipped;reason=body_too_large`.
    pub fn policy(
        name: &'static str,
        elapsed: Duration,
        decision: &'static str,
        extra: Option<String>,
    ) -> Self {
        Self {
            name,
            elapsed,
            decision,
            extra,
        }
    }

    /// The upstream step.
    pub fn upstream(elapsed: Duration, outcome: &'static str, extra: String) -> Self {
        Self {
            name: "upstream",
            elapsed,
            decision: outcome,
            extra: Some(extra),
        }
    }
}

/// Everything the gateway knows about one request while it is being handled.
///
/// `Clone` only for a hedged try's scratch copy (`crate::policy::hedge`), which is never
/// finished: exactly one context per request reaches `outcome::finish`.
#[derive(Clone)]
pub struct RequestContext {
    pub route: Arc<Route>,
    pub listener: Arc<str>,
    pub method: Method,
    pub uri: Uri,
    pub client: SocketAddr,
    pub start: Instant,
    pub deadline: Instant,
    pub stage: Stage,
    pub request_id: Option<HeaderValue>,
    /// Some when the request presented the right debug token and the route has `debug`.
    pub trace: Option<Vec<TraceEntry>>,
    /// True when the request presented the right debug token.
    pub debug_authorized: bool,
    pub upstream: Option<UpstreamUse>,
    pub error: Option<ErrorKind>,
    /// Operator-facing detail of `error` (logs only, never sent to the client).
    pub error_detail: Option<String>,
    /// True when the route has the `access_log` layer.
    pub access_log: bool,
    pub status: u16,
    pub conn: Arc<ConnState>,
    /// The `RateLimit` header a `rate_limit` layer wants on the response (its tightest
    /// limit for this request); set on the way in, added on the way out.
    pub rate_limit: Option<HeaderValue>,
    /// The fault a `fault` layer injected into this request (its rule's name), for the
    /// `seawall-fault` response header and the access log.
    pub fault: Option<HeaderValue>,
    /// What the request's `seawall-fault-*` headers asked for (taken off by the edge);
    /// acted on only by a `fault` layer that allows header faults.
    pub header_fault: Option<crate::faults::header::HeaderFault>,
    /// Bytes per second of a client-facing `throttle` fault: the edge paces the response
    /// body.
    pub throttle: Option<u64>,
    /// What the resilience policies decided (retries, skipped retries, fallbacks,
    /// hedges), for the access log's `policy` field.
    pub policy: crate::policy::Notes,
    /// An upgrade's tunnel was handed to the connection (`crate::upgrade`): if the response
    /// does not leave as a 101 after all, the edge must take it back.
    pub tunnel_opened: bool,
    /// Where the client's request body stands; `None` without a body.
    pub client_body: Option<Arc<crate::body::BodyProgress>>,
}

impl RequestContext {
    /// True when the gateway is waiting for request-body bytes the client has not sent:
    /// a deadline passing now is the client's doing, not the upstream's.
    /// How the client's request body failed, if it did (see `BodyProgress::failure`).
    pub fn client_body_failure(&self) -> Option<ErrorKind> {
        self.client_body.as_ref().and_then(|p| p.failure())
    }

    pub fn waiting_on_client(&self) -> bool {
        self.client_body
            .as_ref()
            .is_some_and(|p| p.waiting_on_client())
    }

    /// Adds a policy decision to the debug trace, when there is one.
    pub fn trace_policy(
        &mut self,
        name: &'static str,
        decision: &'static str,
        extra: impl FnOnce() -> String,
    ) {
        if let Some(trace) = self.trace.as_mut() {
            let elapsed = self.start.elapsed();
            let extra = Some(extra()).filter(|e| !e.is_empty());
            trace.push(TraceEntry::policy(name, elapsed, decision, extra));
        }
    }

    /// Records the failure that decides this request's outcome (the first one wins).
    pub fn fail(&mut self, kind: ErrorKind, detail: impl Into<String>) {
        if self.error.is_none() {
            self.error = Some(kind);
            self.error_detail = Some(detail.into());
        }
    }

    /// Renders the debug trace as a header value:
    /// `request_id;dur=0.003ms;forward, upstream;dur=1.204ms;ok;endpoint=...;reused=true`.
    pub fn render_trace(&self) -> Option<HeaderValue> {
        let trace = self.trace.as_ref()?;
        let mut out = String::with_capacity(64 * (trace.len() + 1));
        for (i, e) in trace.iter().enumerate() {
            if i > 0 {
                out.push_str(", ");
            }
            let _ = write!(
                out,
                "{};dur={:.3}ms;{}",
                e.name,
                e.elapsed.as_secs_f64() * 1e3,
                e.decision
            );
            if let Some(extra) = &e.extra {
                out.push(';');
                out.push_str(extra);
            }
        }
        HeaderValue::try_from(out).ok()
    }
}
