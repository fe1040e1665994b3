//! A route's fallback: an answer served instead of an error when the upstream could not
//! answer, marked `seawall-degraded: <reason>` so clients and dashboards can tell it from a
//! real answer, and counted in `seawall_fallbacks_total{route, kind}`.
//!
//! Two kinds, either or both: a fixed `static` response, and a `stale_cache` that replays
//! the last good answer to the same GET/HEAD request (see [`super::stale_cache`]). With
//! both, a fresh-enough cache entry wins and the static answer covers the rest.
//!
//! It applies to failures that are the upstream's (or its policies') doing: the breaker is
//! open, the bulkhead shed the try, no endpoint, the pool or the connection failed, the
//! head did not come in time, the upstream reset or spoke bad HTTP. A response the upstream
//! did send (even a 5xx) is passed through, and failures on the client's side (its body
//! timed out, it went away) are not covered. When the request deadline itself passes, the
//! request is answered `deadline_exceeded` as before: nothing is left to serve it with.

use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, Request, Response, StatusCode};
use seawall_config::{FallbackConfig, StaticResponseConfig};
use seawall_core::ErrorKind;

use super::stale_cache::{CacheKey, StaleCache};
use crate::body::Outgoing;

/// The header marking a fallback response.
pub static SEAWALL_DEGRADED: HeaderName = HeaderName::from_static("seawall-degraded");

/// Which fallback answered, as counted in `seawall_fallbacks_total{kind}` for stale-cache
/// answers (static answers are counted under the error kind they covered).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Served {
    Static,
    StaleCache,
}

/// A route's fallback, built.
pub struct RouteFallback {
    static_response: Option<StaticFallback>,
    stale: Option<StaleCache>,
}

struct StaticFallback {
    status: StatusCode,
    headers: HeaderMap,
    body: Bytes,
}

impl RouteFallback {
    /// Builds the fallback from its (validated) config.
    pub fn build(route: &str, config: &FallbackConfig) -> Result<Self, String> {
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
            static_response,
            stale,
        })
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
