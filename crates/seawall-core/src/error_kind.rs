//! The classification of every failure the gateway can report.
//!
//! A failure is classified once, where it arises (the pool knows a connect timed out; the
//! listener knows a body read stalled). The kind then drives, in one place each: the HTTP
//! status and `seawall-error` reason the client sees, the `kind` label of the error metric,
//! and the `error` field of the access log. The table in `docs/errors.md` is generated from
//! the same facts: keep them in sync (a test checks it).

use std::fmt;

use http::StatusCode;

/// What went wrong, as a closed set. Adding a variant means adding its row to
/// `docs/errors.md`, which a test verifies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum ErrorKind {
    /// No route matched the request's host and path.
    NoRoute,
    /// The route's upstream has no endpoint to send to.
    NoEndpoint,
    /// Every connection to the endpoint was busy and none freed up within `checkout_timeout`.
    PoolExhausted,
    /// The TCP connection to the upstream was not established within `timeouts.connect`.
    ConnectTimeout,
    /// The upstream refused the TCP connection or it failed (e.g. unreachable).
    ConnectError,
    /// The TLS handshake with the upstream did not finish within `timeouts.tls_handshake`.
    TlsHandshakeTimeout,
    /// The TLS handshake with the upstream failed: a certificate check (unknown issuer,
    /// expired, name mismatch), an alert from the upstream, or no common protocol.
    TlsError,
    /// The upstream did not send a response head within `timeouts.response_header`.
    ResponseHeaderTimeout,
    /// One try of a retried route did not get its response head within
    /// `retry.per_try_timeout` (the route's `timeout` still had time left).
    PerTryTimeout,
    /// The request's deadline (route `timeout` or an inbound deadline) passed.
    DeadlineExceeded,
    /// The upstream closed or reset the connection before a complete response.
    UpstreamReset,
    /// The upstream answered something that is not valid HTTP.
    UpstreamProtocol,
    /// The client did not send its request body within `body_read_timeout`.
    BodyReadTimeout,
    /// The request head is larger than the listener's `max_header_bytes` (checked by the
    /// gateway where the HTTP engine cannot: HTTP/1.1 limits below 8 KiB).
    HeaderTooLarge,
    /// The request body is larger than the listener allows.
    BodyTooLarge,
    /// The request is malformed in a way the gateway rejects (e.g. absolute-form to a foreign host).
    BadRequest,
    /// A middleware layer held the request until its deadline without forwarding or answering.
    LayerStalled,
    /// The gateway is at a configured capacity limit (e.g. a listener's `max_connections`).
    Overloaded,
    /// The upstream's circuit breaker is open (or half-open with every probe slot taken):
    /// the request was refused without being sent.
    CircuitOpen,
    /// A `rate_limit` layer refused the request: the client is over one of its limits.
    RateLimited,
    /// A panic or a bug inside the gateway while handling this request.
    Internal,
    /// The client went away before the response was complete (logged, never sent).
    ClientClosed,
}

impl ErrorKind {
    /// Every kind, in documentation order.
    pub const ALL: [ErrorKind; 22] = [
        ErrorKind::NoRoute,
        ErrorKind::NoEndpoint,
        ErrorKind::PoolExhausted,
        ErrorKind::ConnectTimeout,
        ErrorKind::ConnectError,
        ErrorKind::TlsHandshakeTimeout,
        ErrorKind::TlsError,
        ErrorKind::ResponseHeaderTimeout,
        ErrorKind::PerTryTimeout,
        ErrorKind::DeadlineExceeded,
        ErrorKind::UpstreamReset,
        ErrorKind::UpstreamProtocol,
        ErrorKind::BodyReadTimeout,
        ErrorKind::HeaderTooLarge,
        ErrorKind::BodyTooLarge,
        ErrorKind::BadRequest,
        ErrorKind::LayerStalled,
        ErrorKind::Overloaded,
        ErrorKind::CircuitOpen,
        ErrorKind::RateLimited,
        ErrorKind::Internal,
        ErrorKind::ClientClosed,
    ];

    /// The machine-readable reason: the `seawall-error` header value, metric label and
    /// access-log field.
    pub const fn reason(self) -> &'static str {
        match self {
            ErrorKind::NoRoute => "no_route",
            ErrorKind::NoEndpoint => "no_endpoint",
            ErrorKind::PoolExhausted => "pool_exhausted",
            ErrorKind::ConnectTimeout => "connect_timeout",
            ErrorKind::ConnectError => "connect_error",
            ErrorKind::TlsHandshakeTimeout => "tls_handshake_timeout",
            ErrorKind::TlsError => "tls_error",
            ErrorKind::ResponseHeaderTimeout => "response_header_timeout",
            ErrorKind::PerTryTimeout => "per_try_timeout",
            ErrorKind::DeadlineExceeded => "deadline_exceeded",
            ErrorKind::UpstreamReset => "upstream_reset",
            ErrorKind::UpstreamProtocol => "upstream_protocol",
            ErrorKind::BodyReadTimeout => "body_read_timeout",
            ErrorKind::HeaderTooLarge => "header_too_large",
            ErrorKind::BodyTooLarge => "body_too_large",
            ErrorKind::BadRequest => "bad_request",
            ErrorKind::LayerStalled => "layer_stalled",
            ErrorKind::Overloaded => "overloaded",
            ErrorKind::CircuitOpen => "circuit_open",
            ErrorKind::RateLimited => "rate_limited",
            ErrorKind::Internal => "internal",
            ErrorKind::ClientClosed => "client_closed",
        }
    }

    /// The status the client receives. `ClientClosed` is never sent; 499 is what the access
    /// log records for it, as nginx does.
    pub fn status(self) -> StatusCode {
        match self {
            ErrorKind::NoRoute => StatusCode::NOT_FOUND,
            ErrorKind::NoEndpoint
            | ErrorKind::PoolExhausted
            | ErrorKind::Overloaded
            | ErrorKind::CircuitOpen => StatusCode::SERVICE_UNAVAILABLE,
            ErrorKind::ConnectTimeout
            | ErrorKind::TlsHandshakeTimeout
            | ErrorKind::ResponseHeaderTimeout
            | ErrorKind::PerTryTimeout
            | ErrorKind::DeadlineExceeded
            | ErrorKind::LayerStalled => StatusCode::GATEWAY_TIMEOUT,
            ErrorKind::ConnectError
            | ErrorKind::TlsError
            | ErrorKind::UpstreamReset
            | ErrorKind::UpstreamProtocol => StatusCode::BAD_GATEWAY,
            ErrorKind::BodyReadTimeout => StatusCode::REQUEST_TIMEOUT,
            ErrorKind::HeaderTooLarge => StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            ErrorKind::BodyTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            ErrorKind::BadRequest => StatusCode::BAD_REQUEST,
            ErrorKind::RateLimited => StatusCode::TOO_MANY_REQUESTS,
            ErrorKind::Internal => StatusCode::INTERNAL_SERVER_ERROR,
            ErrorKind::ClientClosed => StatusCode::from_u16(499).unwrap_or(StatusCode::BAD_REQUEST),
        }
    }

    /// The `grpc-status` a gRPC client receives instead of [`ErrorKind::status`] (the
    /// gateway's error then arrives as a gRPC trailers-only response). Codes are chosen as
    /// the gRPC status-code guide and its HTTP mapping suggest: the caller's deadline is
    /// DEADLINE_EXCEEDED (4); a transient failure to reach or hear from the upstream, or
    /// the gateway shedding load, is UNAVAILABLE (14, which gRPC clients may retry); a
    /// rate limit or an over-size message is RESOURCE_EXHAUSTED (8); no route is
    /// UNIMPLEMENTED (12, gRPC's reading of 404); a malformed request or an invalid
    /// upstream answer is INTERNAL (13: a protocol fault, not the application's argument);
    /// a client that left is CANCELLED (1).
    pub const fn grpc_status(self) -> u8 {
        match self {
            ErrorKind::ClientClosed => 1,
            ErrorKind::DeadlineExceeded | ErrorKind::LayerStalled | ErrorKind::BodyReadTimeout => 4,
            ErrorKind::RateLimited | ErrorKind::BodyTooLarge | ErrorKind::HeaderTooLarge => 8,
            ErrorKind::NoRoute => 12,
            ErrorKind::BadRequest | ErrorKind::UpstreamProtocol | ErrorKind::Internal => 13,
            ErrorKind::NoEndpoint
            | ErrorKind::PoolExhausted
            | ErrorKind::ConnectTimeout
            | ErrorKind::ConnectError
            | ErrorKind::TlsHandshakeTimeout
            | ErrorKind::TlsError
            | ErrorKind::ResponseHeaderTimeout
            | ErrorKind::PerTryTimeout
            | ErrorKind::UpstreamReset
            | ErrorKind::Overloaded
            | ErrorKind::CircuitOpen => 14,
        }
    }

    /// The kind whose [`ErrorKind::reason`] is `reason`.
    pub fn from_reason(reason: &str) -> Option<ErrorKind> {
        Self::ALL.into_iter().find(|k| k.reason() == reason)
    }

    /// One sentence for the docs table and the response body.
    pub const fn description(self) -> &'static str {
        match self {
            ErrorKind::NoRoute => "no route matches the request's host and path",
            ErrorKind::NoEndpoint => "the upstream has no endpoint to send to",
            ErrorKind::PoolExhausted => {
                "all connections to the endpoint were busy for the whole checkout_timeout"
            }
            ErrorKind::ConnectTimeout => "the TCP connect did not finish within timeouts.connect",
            ErrorKind::ConnectError => "the upstream refused or failed the TCP connection",
            ErrorKind::TlsHandshakeTimeout => {
                "the TLS handshake with the upstream did not finish within timeouts.tls_handshake"
            }
            ErrorKind::TlsError => {
                "the TLS handshake with the upstream failed (certificate check, alert or protocol)"
            }
            ErrorKind::ResponseHeaderTimeout => {
                "the upstream sent no response head within timeouts.response_header"
            }
            ErrorKind::PerTryTimeout => "one try got no response head within retry.per_try_timeout",
            ErrorKind::DeadlineExceeded => {
                "the request deadline (route timeout or inbound deadline) passed"
            }
            ErrorKind::UpstreamReset => {
                "the upstream closed or reset the connection before a complete response"
            }
            ErrorKind::UpstreamProtocol => "the upstream's answer was not valid HTTP",
            ErrorKind::BodyReadTimeout => {
                "the client did not send the request body within body_read_timeout"
            }
            ErrorKind::HeaderTooLarge => "the request head exceeds the listener's max_header_bytes",
            ErrorKind::BodyTooLarge => "the request body exceeds the listener's max_body_bytes",
            ErrorKind::BadRequest => "the request was rejected as malformed",
            ErrorKind::LayerStalled => {
                "a middleware layer held the request until the deadline without forwarding or answering"
            }
            ErrorKind::Overloaded => "the gateway is at a configured capacity limit",
            ErrorKind::CircuitOpen => {
                "the upstream's circuit breaker is open; the request was not sent"
            }
            ErrorKind::RateLimited => {
                "the client is over a rate limit of this route; retry after Retry-After"
            }
            ErrorKind::Internal => "a panic or internal error while handling the request",
            ErrorKind::ClientClosed => "the client went away before the response was complete",
        }
    }

    /// True for the kinds that are timeouts of some layer.
    pub const fn is_timeout(self) -> bool {
        matches!(
            self,
            ErrorKind::ConnectTimeout
                | ErrorKind::TlsHandshakeTimeout
                | ErrorKind::ResponseHeaderTimeout
                | ErrorKind::PerTryTimeout
                | ErrorKind::DeadlineExceeded
                | ErrorKind::BodyReadTimeout
                | ErrorKind::LayerStalled
        )
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.reason())
    }
}

/// A classified failure: the kind plus whatever detail helps an operator (never secrets).
#[derive(Debug, thiserror::Error)]
#[error("{kind}: {detail}")]
pub struct GatewayError {
    /// The classification that decides status, reason and metric label.
    pub kind: ErrorKind,
    /// Human-readable detail for logs and the response body.
    pub detail: String,
    /// When the client may usefully try again (sent as `retry-after`), e.g. the time left
    /// in an open circuit breaker's open period.
    pub retry_after: Option<std::time::Duration>,
}

impl GatewayError {
    /// A classified error with detail text.
    pub fn new(kind: ErrorKind, detail: impl Into<String>) -> Self {
        Self {
            kind,
            detail: detail.into(),
            retry_after: None,
        }
    }

    /// The same error, with a `retry-after` hint for the client.
    pub fn with_retry_after(mut self, after: std::time::Duration) -> Self {
        self.retry_after = Some(after);
        self
    }
}

impl From<ErrorKind> for GatewayError {
    fn from(kind: ErrorKind) -> Self {
        Self {
            kind,
            detail: kind.description().to_owned(),
            retry_after: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons_are_unique_snake_case() {
        let mut seen = std::collections::HashSet::new();
        for kind in ErrorKind::ALL {
            let r = kind.reason();
            assert!(seen.insert(r), "duplicate reason {r}");
            assert!(r.chars().all(|c| c.is_ascii_lowercase() || c == '_'), "{r}");
        }
    }

    #[test]
    fn timeouts_map_to_504_and_upstream_faults_to_502() {
        assert_eq!(ErrorKind::ConnectTimeout.status(), 504);
        assert_eq!(ErrorKind::ResponseHeaderTimeout.status(), 504);
        assert_eq!(ErrorKind::PerTryTimeout.status(), 504);
        assert!(ErrorKind::PerTryTimeout.is_timeout());
        assert_eq!(ErrorKind::DeadlineExceeded.status(), 504);
        assert_eq!(ErrorKind::ConnectError.status(), 502);
        assert_eq!(ErrorKind::TlsHandshakeTimeout.status(), 504);
        assert_eq!(ErrorKind::TlsError.status(), 502);
        assert!(ErrorKind::TlsHandshakeTimeout.is_timeout());
        assert_eq!(ErrorKind::UpstreamReset.status(), 502);
        assert_eq!(ErrorKind::PoolExhausted.status(), 503);
        assert_eq!(ErrorKind::BodyReadTimeout.status(), 408);
        assert_eq!(ErrorKind::HeaderTooLarge.status(), 431);
        assert_eq!(ErrorKind::ClientClosed.status().as_u16(), 499);
    }
}
