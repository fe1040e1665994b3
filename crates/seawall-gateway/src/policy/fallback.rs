//! A route's fallback: a fixed response served instead of an error when the upstream could
//! not answer, marked `seawall-degraded: <reason>` so clients and dashboards can tell it
//! from a real answer, and counted in `seawall_fallbacks_total{route, reason}`.
//!
//! It applies to failures that are the upstream's (or its policies') doing: the breaker is
//! open, the bulkhead shed the try, no endpoint, the pool or the connection failed, the
//! head did not come in time, the upstream reset or spoke bad HTTP. A response the upstream
//! did send (even a 5xx) is passed through, and failures on the client's side (its body
//! timed out, it went away) are not covered. When the request deadline itself passes, the
//! request is answered `deadline_exceeded` as before: nothing is left to serve it with.

use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, Response, StatusCode};
use seawall_config::FallbackConfig;
use seawall_core::ErrorKind;

use crate::body::Outgoing;

/// The header marking a fallback response.
pub static SEAWALL_DEGRADED: HeaderName = HeaderName::from_static("seawall-degraded");

/// A route's fallback, built.
pub struct RouteFallback {
    status: StatusCode,
    headers: HeaderMap,
    body: Bytes,
}

impl RouteFallback {
    /// Builds the fallback from its (validated) config.
    pub fn build(route: &str, config: &FallbackConfig) -> Result<Self, String> {
        let r = &config.static_response;
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

    /// The fallback response for a failure of `kind`.
    pub fn respond(&self, kind: ErrorKind) -> Response<Outgoing> {
        let mut resp = Response::new(Outgoing::text(self.body.clone()));
        *resp.status_mut() = self.status;
        *resp.headers_mut() = self.headers.clone();
        resp.headers_mut().insert(
            SEAWALL_DEGRADED.clone(),
            HeaderValue::from_static(kind.reason()),
        );
        resp
    }
}
