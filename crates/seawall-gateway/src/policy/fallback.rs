//! A route's fallback: an answer served instead of an error when the upstream could not
//! answer, marked `seawall-degraded: <reason>` so clients and dashboards can tell it from a
//! real answer, and counted in `seawall_fallbacks_total{route, kind, reason}`.
//!
//! Three kinds, any of them, tried in this order:
//! 1. `upstream`: the request is sent once to another upstream (its own breaker, bulkhead,
//!    balancer, pool and timeouts; no retries; within what is left of the deadline). Only a
//!    request that was kept for sending again (no body, or a body read ahead under the
//!    cap) goes, and a non-idempotent one only when the first upstream never got it (the
//!    failure happened before anything was written) or the route's `retry` opted in. Its
//!    answer, whatever the status, is the route's answer; if it fails too, the next kind
//!    covers the original failure.
//! 2. `stale_cache`: the last good answer to the same GET/HEAD request (see
//!    [`super::stale_cache`]).
//! 3. `static`: a fixed response.
//!
//! It applies to failures that are the upstream's (or its policies') doing: the breaker is
//! open, the bulkhead shed the try, no endpoint, the pool or the connection failed, the
//! head did not come in time, the upstream reset or spoke bad HTTP. A response the upstream
//! did send (even a 5xx) is passed through, and failures on the client's side (its body
//! timed out, it went away) are not covered. When the request deadline itself passes, the
//! request is answered `deadline_exceeded` as before: nothing is left to serve it with.

use std::{collections::BTreeMap, sync::Arc};

use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, Request, Response, StatusCode};
use seawall_config::{FallbackConfig, StaticResponseConfig};
use seawall_core::{ErrorKind, GatewayError};
use seawall_resilience::retry::RetryPolicy;

use super::{
    replay::Replay,
    stale_cache::{CacheKey, StaleCache},
    try_once,
};
use crate::{
    body::Outgoing,
    context::RequestContext,
    runtime::{Route, Upstream},
};

/// The header marking a fallback response.
pub static SEAWALL_DEGRADED: HeaderName = HeaderName::from_static("seawall-degraded");

/// Which fallback answered, as counted in `seawall_fallbacks_total{kind}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Served {
    Upstream,
    StaleCache,
    Static,
}

impl Served {
    /// The `kind` label and the access log's `fallback=` value.
    pub const fn as_str(self) -> &'static str {
        match self {
            Served::Upstream => "upstream",
            Served::StaleCache => "stale_cache",
            Served::Static => "static",
        }
    }
}

/// A route's fallback, built.
pub struct RouteFallback {
    upstream: Option<Arc<Upstream>>,
    static_response: Option<StaticFallback>,
    stale: Option<StaleCache>,
}

struct StaticFallback {
    status: StatusCode,
    headers: HeaderMap,
    body: Bytes,
}

impl RouteFallback {
    /// Builds the fallback from its (validated) config; `upstreams` are the runtime's.
    pub fn build(
        route: &str,
        config: &FallbackConfig,
        upstreams: &BTreeMap<String, Arc<Upstream>>,
    ) -> Result<Self, String> {
        let upstream = config
            .upstream
            .as_ref()
            .map(|name| {
                upstreams
                    .get(name)
                    .cloned()
                    .ok_or_else(|| format!("route `{route}`: fallback: unknown upstream `{name}`"))
            })
            .transpose()?;
        let static_response = config
            .static_response
            .as_ref()
            .map(|r| StaticFallback::build(route, r))
            .transpose()?;
        let stale = match &config.stale_cache {
            Some(c) => {
                let status = config
                    .status
                    .map(|s| {
                        StatusCode::from_u16(s)
                            .map_err(|_| format!("route `{route}`: fallback status {s} is invalid"))
                    })
                    .transpose()?;
                Some(StaleCache::new(c, status))
            }
            None => None,
        };
        Ok(Self {
            upstream,
            static_response,
            stale,
        })
    }

    /// The alternate upstream, if the fallback has one.
    pub fn upstream(&self) -> Option<&Upstream> {
        self.upstream.as_deref()
    }

    /// Answers failure `e` of the route's upstream with the first fallback that can: the
    /// alternate upstream, the stale cache, the static answer; else `e` stands. `kept` is
    /// the request kept for sending again, `key` its stale-cache key.
    pub async fn serve(
        &self,
        route: &Route,
        e: GatewayError,
        kept: Option<&Replay>,
        key: Option<&CacheKey>,
        cx: &mut RequestContext,
    ) -> Result<Response<Outgoing>, GatewayError> {
        if let Some(alt) = self.upstream.as_deref() {
            match kept.filter(|r| self.may_send(route, r, e.kind)) {
                Some(replay) => {
                    let deadline = cx.deadline;
                    let out = try_once(alt, replay.build(), cx, deadline, None, None).await;
                    match out.result {
                        Ok(mut resp) => {
                            mark(&mut resp, e.kind);
                            self.served(route, Served::Upstream, e.kind, cx);
                            return Ok(resp);
                        }
                        Err(alt_err) => {
                            tracing::debug!(route = %route.name, upstream = %alt.name, error = %alt_err, "The fallback upstream failed too.");
                            cx.trace_policy("fallback", "upstream_failed", || {
                                format!("upstream={};error={}", alt.name, alt_err.kind.reason())
                            });
                        }
                    }
                }
                None => cx.trace_policy("fallback", "upstream_skipped", || {
                    let why = if kept.is_none() {
                        "body_not_kept"
                    } else {
                        "non_idempotent"
                    };
                    format!("reason={why}")
                }),
            }
        }
        match self.respond(e.kind, key) {
            Some((resp, served)) => {
                self.served(route, served, e.kind, cx);
                tracing::debug!(route = %route.name, error = %e, served = served.as_str(), "Served the route's fallback.");
                Ok(resp)
            }
            None => Err(e),
        }
    }

    /// Whether the kept request may go to the alternate upstream after a failure of
    /// `kind`: an idempotent method, the route's opt-in, or a request the first upstream
    /// never received.
    fn may_send(&self, route: &Route, replay: &Replay, kind: ErrorKind) -> bool {
        let opted_in = route.retry.as_ref().is_some_and(|r| r.non_idempotent());
        RetryPolicy::may_retry(replay.method(), opted_in) || never_sent(kind)
    }

    fn served(&self, route: &Route, served: Served, covered: ErrorKind, cx: &mut RequestContext) {
        route
            .shared
            .metrics
            .fallback(&route.name, served.as_str(), covered);
        cx.policy.fallback = Some(served.as_str());
        cx.trace_policy("fallback", served.as_str(), || {
            format!("reason={}", covered.reason())
        });
    }

    /// True if a failure of this kind is answered with the fallback.
    pub fn covers(kind: ErrorKind) -> bool {
        matches!(
            kind,
            ErrorKind::CircuitOpen
                | ErrorKind::Overloaded
                | ErrorKind::NoEndpoint
                | ErrorKind::PoolExhausted
                | ErrorKind::ConnectTimeout
                | ErrorKind::ConnectError
                | ErrorKind::TlsHandshakeTimeout
                | ErrorKind::TlsError
                | ErrorKind::ResponseHeaderTimeout
                | ErrorKind::PerTryTimeout
                | ErrorKind::UpstreamReset
                | ErrorKind::UpstreamProtocol
        )
    }

    /// The stale-cache key of `req`, taken before it is forwarded; `None` when the route
    /// has no stale cache or the method is not GET/HEAD (only those are safe to replay).
    pub fn cache_key<B>(&self, req: &Request<B>) -> Option<CacheKey> {
        self.stale.as_ref()?;
        CacheKey::of(req)
    }

    /// Lets a good upstream answer to the request keyed `key` fill the stale cache as it
    /// streams to the client.
    pub fn remember(&self, key: CacheKey, resp: Response<Outgoing>) -> Response<Outgoing> {
        match &self.stale {
            Some(cache) => cache.remember(key, resp),
            None => resp,
        }
    }

    /// The answer to a failure of `kind`: a fresh-enough cached answer to the request keyed
    /// `key` if there is one, else the static response, else `None` (the error stands).
    pub fn respond(
        &self,
        kind: ErrorKind,
        key: Option<&CacheKey>,
    ) -> Option<(Response<Outgoing>, Served)> {
        let replayed = match (&self.stale, key) {
            (Some(cache), Some(key)) => cache.replay(key),
            _ => None,
        };
        if let Some(mut resp) = replayed {
            mark(&mut resp, kind);
            return Some((resp, Served::StaleCache));
        }
        let s = self.static_response.as_ref()?;
        let mut resp = Response::new(Outgoing::text(s.body.clone()));
        *resp.status_mut() = s.status;
        *resp.headers_mut() = s.headers.clone();
        mark(&mut resp, kind);
        Some((resp, Served::Static))
    }
}

/// True for failures that happen before any of the request is written upstream.
fn never_sent(kind: ErrorKind) -> bool {
    matches!(
        kind,
        ErrorKind::CircuitOpen
            | ErrorKind::Overloaded
            | ErrorKind::NoEndpoint
            | ErrorKind::PoolExhausted
            | ErrorKind::ConnectTimeout
            | ErrorKind::ConnectError
            | ErrorKind::TlsHandshakeTimeout
            | ErrorKind::TlsError
    )
}

fn mark(resp: &mut Response<Outgoing>, kind: ErrorKind) {
    resp.headers_mut().insert(
        SEAWALL_DEGRADED.clone(),
        HeaderValue::from_static(kind.reason()),
    );
}

impl StaticFallback {
    fn build(route: &str, r: &StaticResponseConfig) -> Result<Self, String> {
        let status = StatusCode::from_u16(r.status)
            .map_err(|_| format!("route `{route}`: fallback status {} is invalid", r.status))?;
        let mut headers = HeaderMap::new();
        for (k, v) in &r.headers {
            let name = HeaderName::try_from(k.as_str())
                .map_err(|_| format!("route `{route}`: fallback header name `{k}` is invalid"))?;
            let value = HeaderValue::try_from(v.as_str()).map_err(|_| {
                format!("route `{route}`: fallback header `{k}` has an invalid value")
            })?;
            headers.insert(name, value);
        }
        Ok(Self {
            status,
            headers,
            body: Bytes::from(r.body.clone()),
        })
    }
}
