//! The two ways the pool fails a request, each already classified as an [`ErrorKind`].
//!
//! [`PoolError`]: no connection could be obtained (exhausted, connect failed or timed out,
//! deadline passed). [`SendError`]: the request failed on a connection; it records whether
//! the connection was reused, because a failure on a reused connection may be a race with
//! the peer closing it, and whether the request was handed back unsent, which makes a
//! retry safe whatever the method.

use std::error::Error as StdError;
use std::fmt;
use std::net::SocketAddr;
use std::time::Duration;

use seawall_core::{Body, ErrorKind, GatewayError};

use crate::tls::{TlsFailure, classify_tls, describe_handshake_error};

/// No connection could be obtained for a request.
#[derive(Debug)]
pub struct PoolError {
    /// `PoolExhausted`, `ConnectTimeout`, `ConnectError`, `DeadlineExceeded` or `NoEndpoint`;
    /// for TLS failures whatever [`classify_tls`] says.
    pub kind: ErrorKind,
    /// The endpoint, when the index named one.
    pub endpoint: Option<SocketAddr>,
    detail: String,
    source: Option<std::io::Error>,
    tls: Option<TlsFailure>,
}

impl PoolError {
    pub(crate) fn new(kind: ErrorKind, endpoint: SocketAddr, detail: String) -> Self {
        Self {
            kind,
            endpoint: Some(endpoint),
            detail,
            source: None,
            tls: None,
        }
    }

    pub(crate) fn no_endpoint(index: usize, count: usize) -> Self {
        Self {
            kind: ErrorKind::NoEndpoint,
            endpoint: None,
            detail: format!("endpoint index {index} out of range (upstream has {count})"),
            source: None,
            tls: None,
        }
    }

    pub(crate) fn unresolved(upstream: &str) -> Self {
        Self {
            kind: ErrorKind::NoEndpoint,
            endpoint: None,
            detail: format!("no address resolved yet for upstream {upstream}"),
            source: None,
            tls: None,
        }
    }

    pub(crate) fn drained(endpoint: SocketAddr) -> Self {
        Self::new(
            ErrorKind::NoEndpoint,
            endpoint,
            "the pool is drained (address removed or upstream reloaded)".to_owned(),
        )
    }

    pub(crate) fn deadline(endpoint: SocketAddr, phase: &str) -> Self {
        Self::new(
            ErrorKind::DeadlineExceeded,
            endpoint,
            format!("request deadline passed while {phase}"),
        )
    }

    pub(crate) fn connect_timeout(endpoint: SocketAddr, timeout: Duration) -> Self {
        Self::new(
            ErrorKind::ConnectTimeout,
            endpoint,
            format!("connect timed out after {timeout:?}"),
        )
    }

    pub(crate) fn exhausted(endpoint: SocketAddr, timeout: Duration, max: usize) -> Self {
        Self::new(
            ErrorKind::PoolExhausted,
            endpoint,
            format!("all {max} connections busy for the checkout timeout of {timeout:?}"),
        )
    }

    pub(crate) fn connect(endpoint: SocketAddr, source: std::io::Error) -> Self {
        Self {
            kind: ErrorKind::ConnectError,
            endpoint: Some(endpoint),
            detail: "connect failed".to_owned(),
            source: Some(source),
            tls: None,
        }
    }

    pub(crate) fn tls_timeout(endpoint: SocketAddr, timeout: Duration) -> Self {
        Self {
            tls: Some(TlsFailure::Timeout),
            ..Self::new(
                classify_tls(TlsFailure::Timeout),
                endpoint,
                format!("TLS handshake timed out after {timeout:?}"),
            )
        }
    }

    /// The detail names the failed check (unknown issuer, name mismatch, ...); the I/O
    /// error, which wraps rustls' error, stays the source.
    pub(crate) fn tls(endpoint: SocketAddr, source: std::io::Error) -> Self {
        Self {
            kind: classify_tls(TlsFailure::Error),
            endpoint: Some(endpoint),
            detail: format!(
                "TLS handshake failed: {}",
                describe_handshake_error(&source)
            ),
            source: Some(source),
            tls: Some(TlsFailure::Error),
        }
    }

    /// Set when the TCP connect succeeded and the TLS handshake failed (the kind is then
    /// whatever [`classify_tls`] says, or `DeadlineExceeded`).
    pub fn tls_failure(&self) -> Option<TlsFailure> {
        self.tls
    }

    /// Human-readable detail, without the kind.
    pub fn detail(&self) -> &str {
        &self.detail
    }
}

impl fmt::Display for PoolError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.endpoint {
            Some(addr) => write!(f, "{} to {addr}: {}", self.kind, self.detail),
            None => write!(f, "{}: {}", self.kind, self.detail),
        }
    }
}

impl StdError for PoolError {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        self.source.as_ref().map(|e| e as &(dyn StdError + 'static))
    }
}

impl From<PoolError> for GatewayError {
    fn from(error: PoolError) -> Self {
        let detail = match &error.source {
            Some(source) => format!("{error}: {source}"),
            None => error.to_string(),
        };
        GatewayError::new(error.kind, detail)
    }
}

/// A request failed on a pooled connection. The connection has been closed.
#[derive(Debug, thiserror::Error)]
#[error("{kind} on {} connection to {endpoint}", if *.reused { "reused" } else { "new" })]
pub struct SendError {
    /// See [`classify`] for how hyper's error maps to a kind.
    pub kind: ErrorKind,
    /// The connection came from the idle stack. A failure on a reused connection may be the
    /// peer having closed it just before the request was written.
    pub reused: bool,
    /// The endpoint the connection was to.
    pub endpoint: SocketAddr,
    /// hyper's error.
    #[source]
    pub source: hyper::Error,
    /// The request, when hyper gave it back because the connection closed before any of it
    /// was written: it can be retried on another connection regardless of its method.
    pub unsent_request: Option<http::Request<Body>>,
}

impl From<SendError> for GatewayError {
    fn from(error: SendError) -> Self {
        GatewayError::new(error.kind, format!("{error}: {}", error.source))
    }
}

/// Classifies a hyper client error.
///
/// 1. If the source chain holds a [`GatewayError`], the request body failed with an error
///    the gateway already classified (e.g. `BodyReadTimeout`): keep its kind.
/// 2. Parse errors: the upstream's answer was not valid HTTP → `UpstreamProtocol`.
/// 3. Other user errors with a cause: the request body stream failed without a
///    classification, which in a proxy means the downstream client went away →
///    `ClientClosed`. User errors without a cause are misuse of hyper → `Internal`.
/// 4. Everything else (closed, canceled, incomplete message, reset, I/O) → `UpstreamReset`.
pub fn classify(error: &hyper::Error) -> ErrorKind {
    let mut cause: Option<&(dyn StdError + 'static)> = Some(error);
    while let Some(current) = cause {
        if let Some(gateway) = current.downcast_ref::<GatewayError>() {
            return gateway.kind;
        }
        cause = current.source();
    }
    if error.is_parse() || error.is_parse_status() || error.is_parse_too_large() {
        ErrorKind::UpstreamProtocol
    } else if error.is_user() && !error.is_body_write_aborted() {
        if error.source().is_some() {
            ErrorKind::ClientClosed
        } else {
            ErrorKind::Internal
        }
    } else {
        ErrorKind::UpstreamReset
    }
}
