//! Which outcomes of an upstream call count as failures.
//!
//! One classifier type serves two policies with different defaults:
//! - the breaker's [`ErrorClassifier::upstream_failures`] (its `Default`): every 5xx
//!   response, and every error kind that is the upstream's doing (`connect_timeout`,
//!   `connect_error`, `tls_handshake_timeout`, `tls_error`, `response_header_timeout`,
//!   `per_try_timeout`, `deadline_exceeded`, `upstream_reset`,
//!   `upstream_protocol`, `pool_exhausted`), like resilience4j recording every exception;
//! - the retry policy's [`ErrorClassifier::retryable`]: 502, 503 and 504, and the kinds
//!   where another try may well succeed (`connect_error`, `connect_timeout`, `tls_error`,
//!   `tls_handshake_timeout`, `upstream_reset`), like Envoy's `retry_on: 5xx,connect-failure,reset`.
//!
//! Rule: when the gateway classified the call as an [`ErrorKind`], the kind alone decides
//! and the status is ignored, because that status was made up by the gateway (a 503 for
//! `overloaded` says nothing about the upstream). Statuses apply to responses the upstream
//! actually sent (`kind == None`).

use std::collections::BTreeSet;

use seawall_core::ErrorKind;

/// An inclusive range of HTTP status codes, within 100..=599.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct StatusRange {
    first: u16,
    last: u16,
}

/// Why a [`StatusRange`] was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum InvalidStatusRange {
    /// A bound is not a status code.
    #[error("status {0} is outside 100..=599")]
    OutOfRange(u16),
    /// The first status is above the last.
    #[error("status range {first}-{last} is empty: its first status is above its last")]
    Empty {
        /// The given first status.
        first: u16,
        /// The given last status.
        last: u16,
    },
}

impl StatusRange {
    /// All 5xx statuses.
    pub const SERVER_ERRORS: StatusRange = StatusRange {
        first: 500,
        last: 599,
    };

    /// The statuses `first..=last`.
    pub fn try_new(first: u16, last: u16) -> Result<Self, InvalidStatusRange> {
        for bound in [first, last] {
            if !(100..=599).contains(&bound) {
                return Err(InvalidStatusRange::OutOfRange(bound));
            }
        }
        if first > last {
            return Err(InvalidStatusRange::Empty { first, last });
        }
        Ok(Self { first, last })
    }

    /// The single status `status`.
    pub fn single(status: u16) -> Result<Self, InvalidStatusRange> {
        Self::try_new(status, status)
    }

    /// The lowest status in the range.
    pub const fn first(&self) -> u16 {
        self.first
    }

    /// The highest status in the range.
    pub const fn last(&self) -> u16 {
        self.last
    }

    /// True if `status` is in the range.
    pub const fn contains(&self, status: u16) -> bool {
        self.first <= status && status <= self.last
    }
}

/// A set of statuses and error kinds that count as failures.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ErrorClassifier {
    statuses: Vec<StatusRange>,
    kinds: BTreeSet<ErrorKind>,
}

impl Default for ErrorClassifier {
    /// [`ErrorClassifier::upstream_failures`], the breaker's default.
    fn default() -> Self {
        Self::upstream_failures()
    }
}

impl ErrorClassifier {
    /// The error kinds that are the upstream's doing (the breaker default).
    pub const UPSTREAM_KINDS: [ErrorKind; 10] = [
        ErrorKind::ConnectTimeout,
        ErrorKind::ConnectError,
        ErrorKind::TlsHandshakeTimeout,
        ErrorKind::TlsError,
        ErrorKind::ResponseHeaderTimeout,
        ErrorKind::PerTryTimeout,
        ErrorKind::DeadlineExceeded,
        ErrorKind::UpstreamReset,
        ErrorKind::UpstreamProtocol,
        ErrorKind::PoolExhausted,
    ];

    /// The error kinds after which another try is likely to help (the retry default).
    /// TLS failures are in: the request was not sent, and another endpoint (or another
    /// handshake, after a timeout or a dropped connection) may well succeed.
    pub const RETRYABLE_KINDS: [ErrorKind; 5] = [
        ErrorKind::ConnectError,
        ErrorKind::ConnectTimeout,
        ErrorKind::TlsError,
        ErrorKind::TlsHandshakeTimeout,
        ErrorKind::UpstreamReset,
    ];

    /// A classifier failing exactly these statuses and kinds.
    pub fn new(
        statuses: impl IntoIterator<Item = StatusRange>,
        kinds: impl IntoIterator<Item = ErrorKind>,
    ) -> Self {
        Self {
            statuses: statuses.into_iter().collect(),
            kinds: kinds.into_iter().collect(),
        }
    }

    /// 5xx and [`Self::UPSTREAM_KINDS`]: what a breaker counts by default.
    pub fn upstream_failures() -> Self {
        Self::new([StatusRange::SERVER_ERRORS], Self::UPSTREAM_KINDS)
    }

    /// 502, 503, 504 and [`Self::RETRYABLE_KINDS`]: what a retry policy retries by default.
    pub fn retryable() -> Self {
        let gateway_errors = StatusRange {
            first: 502,
            last: 504,
        };
        Self::new([gateway_errors], Self::RETRYABLE_KINDS)
    }

    /// True if the call failed: its kind is in the set, or (when the upstream answered and
    /// there is no kind) its status is.
    pub fn is_failure(&self, status: u16, kind: Option<ErrorKind>) -> bool {
        match kind {
            Some(kind) => self.kinds.contains(&kind),
            None => self.statuses.iter().any(|range| range.contains(status)),
        }
    }

    /// The status ranges, as given.
    pub fn statuses(&self) -> &[StatusRange] {
        &self.statuses
    }

    /// The error kinds, in `ErrorKind` order.
    pub fn kinds(&self) -> impl Iterator<Item = ErrorKind> + '_ {
        self.kinds.iter().copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_classifier_fails_5xx_responses_but_not_4xx() {
        let c = ErrorClassifier::default();
        assert!(c.is_failure(500, None));
        assert!(c.is_failure(599, None));
        assert!(!c.is_failure(499, None));
        assert!(!c.is_failure(404, None));
        assert!(!c.is_failure(200, None));
    }

    #[test]
    fn a_kind_decides_alone_even_when_its_status_is_5xx() {
        let c = ErrorClassifier::default();
        for kind in ErrorClassifier::UPSTREAM_KINDS {
            assert!(c.is_failure(kind.status().as_u16(), Some(kind)), "{kind}");
        }
        // The gateway's own 503s say nothing about the upstream.
        assert!(!c.is_failure(503, Some(ErrorKind::Overloaded)));
        assert!(!c.is_failure(503, Some(ErrorKind::NoEndpoint)));
        assert!(!c.is_failure(499, Some(ErrorKind::ClientClosed)));
    }

    #[test]
    fn retryable_classifier_retries_gateway_errors_only() {
        let c = ErrorClassifier::retryable();
        assert!(c.is_failure(502, None) && c.is_failure(503, None) && c.is_failure(504, None));
        assert!(!c.is_failure(500, None));
        assert!(c.is_failure(502, Some(ErrorKind::ConnectError)));
        assert!(!c.is_failure(504, Some(ErrorKind::ResponseHeaderTimeout)));
    }

    #[test]
    fn status_range_rejects_out_of_range_and_empty_ranges() {
        assert_eq!(
            StatusRange::try_new(99, 200),
            Err(InvalidStatusRange::OutOfRange(99))
        );
        assert_eq!(
            StatusRange::single(600),
            Err(InvalidStatusRange::OutOfRange(600))
        );
        assert_eq!(
            StatusRange::try_new(504, 502),
            Err(InvalidStatusRange::Empty {
                first: 504,
                last: 502
            })
        );
        let r = StatusRange::try_new(429, 429).map(|r| (r.first(), r.last(), r.contains(429)));
        assert_eq!(r, Ok((429, 429, true)));
    }
}
