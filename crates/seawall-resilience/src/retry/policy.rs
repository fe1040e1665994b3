//! The per-route retry policy: what may be retried, how often, and whether a retry can
//! still finish in time.
//!
//! - `max_attempts` counts every try, the first included (gRPC's `maxAttempts`); 1 means
//!   never retry. Default 2: Envoy's one retry. At most [`MAX_ATTEMPTS`] (gRPC caps at 5;
//!   Google SRE recommends 3), since each attempt multiplies load during an outage.
//! - `retry_on`: the failures worth another try, default
//!   [`ErrorClassifier::retryable`] (502/503/504, connect errors and timeouts, resets).
//! - Idempotency (RFC 9110 §9.2.2): GET, HEAD, OPTIONS, TRACE, PUT and DELETE may be
//!   retried; other methods only when the route opted in, because a retried POST may run
//!   twice.
//! - `per_try_timeout`: bounds each try, within the request deadline (default none: a try
//!   may use the whole deadline).
//! - Deadline awareness: [`RetryPolicy::next_try`] refuses a retry that would start after
//!   its backoff and could not finish, taking at least `expected_min_try`, strictly before
//!   the request's deadline: such a try only adds load and ends as `deadline_exceeded`
//!   anyway (gRPC: "the deadline spans all attempts").

use std::time::Duration;

use http::Method;
use seawall_core::ErrorKind;
use tokio::time::Instant;

use super::Backoff;
use crate::classify::ErrorClassifier;

/// The most attempts a policy may allow.
pub const MAX_ATTEMPTS: u32 = 10;

/// A route's retry policy, validated by [`RetryPolicy::try_new`].
#[derive(Debug, Clone, PartialEq)]
pub struct RetryPolicy {
    max_attempts: u32,
    retry_on: ErrorClassifier,
    per_try_timeout: Option<Duration>,
    backoff: Backoff,
}

/// Why a [`RetryPolicy`] was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum InvalidRetryPolicy {
    /// `max_attempts` is 0 or above [`MAX_ATTEMPTS`].
    #[error("max_attempts must be between 1 and {MAX_ATTEMPTS}, got {0}")]
    MaxAttempts(u32),
    /// `per_try_timeout` is zero.
    #[error("per_try_timeout must be longer than zero")]
    ZeroPerTryTimeout,
}

/// What to do after a failed try.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Start the next try after waiting this long.
    Retry {
        /// The backoff to wait first.
        after: Duration,
    },
    /// Return the last failure to the client.
    GiveUp {
        /// Why.
        reason: GiveUpReason,
    },
}

/// Why [`RetryPolicy::next_try`] gave up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GiveUpReason {
    /// `max_attempts` tries were made.
    AttemptsExhausted,
    /// The next try could not finish before the deadline.
    DeadlineTooClose {
        /// Backoff plus the expected minimum try time.
        needed: Duration,
        /// Time left until the deadline.
        left: Duration,
    },
}

impl GiveUpReason {
    /// A stable lowercase name for logs and metric labels.
    pub const fn as_str(&self) -> &'static str {
        match self {
            GiveUpReason::AttemptsExhausted => "attempts_exhausted",
            GiveUpReason::DeadlineTooClose { .. } => "deadline_too_close",
        }
    }
}

impl Default for RetryPolicy {
    /// 2 attempts, [`ErrorClassifier::retryable`], no per-try timeout, [`Backoff::default`].
    fn default() -> Self {
        Self {
            max_attempts: 2,
            retry_on: ErrorClassifier::retryable(),
            per_try_timeout: None,
            backoff: Backoff::default(),
        }
    }
}

impl RetryPolicy {
    /// A policy from its parts.
    pub fn try_new(
        max_attempts: u32,
        retry_on: ErrorClassifier,
        per_try_timeout: Option<Duration>,
        backoff: Backoff,
    ) -> Result<Self, InvalidRetryPolicy> {
        if max_attempts == 0 || max_attempts > MAX_ATTEMPTS {
            return Err(InvalidRetryPolicy::MaxAttempts(max_attempts));
        }
        if per_try_timeout.is_some_and(|d| d.is_zero()) {
            return Err(InvalidRetryPolicy::ZeroPerTryTimeout);
        }
        Ok(Self {
            max_attempts,
            retry_on,
            per_try_timeout,
            backoff,
        })
    }

    /// Tries allowed, the first included.
    pub fn max_attempts(&self) -> u32 {
        self.max_attempts
    }

    /// The failures that are retried.
    pub fn retry_on(&self) -> &ErrorClassifier {
        &self.retry_on
    }

    /// The bound on each try, if any.
    pub fn per_try_timeout(&self) -> Option<Duration> {
        self.per_try_timeout
    }

    /// The backoff between tries.
    pub fn backoff(&self) -> &Backoff {
        &self.backoff
    }

    /// True if a try that ended with `status` / `kind` is worth retrying.
    pub fn is_retryable(&self, status: u16, kind: Option<ErrorKind>) -> bool {
        self.retry_on.is_failure(status, kind)
    }

    /// True if a request with `method` may be sent twice: idempotent methods always,
    /// others only when the route opted in.
    pub fn may_retry(method: &Method, opted_in_non_idempotent: bool) -> bool {
        opted_in_non_idempotent || is_idempotent(method)
    }

    /// When a try starting at `now` must end: after `per_try_timeout`, or at the request
    /// `deadline` if that comes first.
    pub fn try_deadline(&self, now: Instant, deadline: Instant) -> Instant {
        match self.per_try_timeout.and_then(|t| now.checked_add(t)) {
            Some(end) => end.min(deadline),
            None => deadline,
        }
    }

    /// Decides, after `attempts_made` tries (≥ 1) failed retryably, whether to try again.
    /// `expected_min_try` is the least time a try takes (the gateway passes the upstream's
    /// [`super::MinTry`] estimate); `retry_after` the upstream's `Retry-After`, if it sent one;
    /// `rand01` in [0, 1) draws the jitter.
    pub fn next_try(
        &self,
        attempts_made: u32,
        now: Instant,
        deadline: Instant,
        expected_min_try: Duration,
        retry_after: Option<Duration>,
        rand01: f64,
    ) -> Decision {
        if attempts_made >= self.max_attempts {
            return Decision::GiveUp {
                reason: GiveUpReason::AttemptsExhausted,
            };
        }
        // Retry n (0-based) follows try n + 1.
        let after =
            self.backoff
                .delay_honouring(attempts_made.saturating_sub(1), rand01, retry_after);
        let needed = after.saturating_add(expected_min_try);
        let left = deadline.saturating_duration_since(now);
        // Strictly before: a try finishing exactly at the deadline races the deadline timer.
        if needed >= left {
            return Decision::GiveUp {
                reason: GiveUpReason::DeadlineTooClose { needed, left },
            };
        }
        Decision::Retry { after }
    }
}

/// RFC 9110 §9.2.2 idempotent methods.
fn is_idempotent(method: &Method) -> bool {
    matches!(
        *method,
        Method::GET | Method::HEAD | Method::OPTIONS | Method::TRACE | Method::PUT | Method::DELETE
    )
}
