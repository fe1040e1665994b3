//! Exponential backoff with full jitter.
//!
//! The wait before retry number `attempt` (0 for the first retry) is drawn uniformly from
//! `[0, ceiling(attempt))` with `ceiling(attempt) = min(max, base × multiplier^attempt)`:
//! AWS "full jitter", which spreads synchronized clients best and finishes fastest, and
//! gRPC's retry backoff. Randomness is an argument (`rand01` in [0, 1)), so tests choose it.
//!
//! A `Retry-After` from the upstream (or a pushback) is honoured when it asks for longer
//! than the jittered delay, up to `max_retry_after`; whether that longer wait still fits
//! the deadline is [`super::RetryPolicy::next_try`]'s decision.
//!
//! Defaults: Envoy's router backoff, `base` 25 ms, `max` 250 ms (10 × base), multiplier 2;
//! `max_retry_after` 10 s.

use std::time::Duration;

/// Backoff settings, validated by [`Backoff::try_new`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Backoff {
    base: Duration,
    max: Duration,
    multiplier: f64,
    max_retry_after: Duration,
}

/// Why a [`Backoff`] was refused.
#[derive(Debug, Clone, Copy, PartialEq, thiserror::Error)]
pub enum InvalidBackoff {
    /// `base` is zero.
    #[error("backoff base must be longer than zero")]
    ZeroBase,
    /// `max` is shorter than `base`.
    #[error("backoff max {max:?} is shorter than its base {base:?}")]
    MaxBelowBase {
        /// The given base.
        base: Duration,
        /// The given max.
        max: Duration,
    },
    /// `multiplier` is below 1 or not finite.
    #[error("backoff multiplier must be a finite number of at least 1, got {0}")]
    Multiplier(f64),
}

impl Default for Backoff {
    /// 25 ms, ×2, at most 250 ms; `Retry-After` honoured up to 10 s.
    fn default() -> Self {
        Self {
            base: Duration::from_millis(25),
            max: Duration::from_millis(250),
            multiplier: 2.0,
            max_retry_after: Duration::from_secs(10),
        }
    }
}

impl Backoff {
    /// A backoff from `base`, multiplied by `multiplier` per retry, capped at `max`; a
    /// `Retry-After` is honoured up to `max_retry_after` (zero ignores it).
    pub fn try_new(
        base: Duration,
        max: Duration,
        multiplier: f64,
        max_retry_after: Duration,
    ) -> Result<Self, InvalidBackoff> {
        if base.is_zero() {
            return Err(InvalidBackoff::ZeroBase);
        }
        if max < base {
            return Err(InvalidBackoff::MaxBelowBase { base, max });
        }
        if !(multiplier.is_finite() && multiplier >= 1.0) {
            return Err(InvalidBackoff::Multiplier(multiplier));
        }
        Ok(Self {
            base,
            max,
            multiplier,
            max_retry_after,
        })
    }

    /// The upper bound of the wait before retry `attempt` (0-based):
    /// `min(max, base × multiplier^attempt)`.
    pub fn ceiling(&self, attempt: u32) -> Duration {
        let exponent = i32::try_from(attempt).unwrap_or(i32::MAX);
        let secs = self.base.as_secs_f64() * self.multiplier.powi(exponent);
        Duration::try_from_secs_f64(secs).map_or(self.max, |d| d.min(self.max))
    }

    /// The jittered wait before retry `attempt`: `ceiling(attempt) × rand01`. `rand01`
    /// outside [0, 1) is clamped into it (NaN counts as 0), so the result always lies in
    /// `[0, ceiling(attempt)]`.
    pub fn delay(&self, attempt: u32, rand01: f64) -> Duration {
        let r = if rand01.is_nan() {
            0.0
        } else {
            rand01.clamp(0.0, 1.0)
        };
        self.ceiling(attempt).mul_f64(r)
    }

    /// [`Self::delay`], or `retry_after` capped at `max_retry_after` if that is longer.
    pub fn delay_honouring(
        &self,
        attempt: u32,
        rand01: f64,
        retry_after: Option<Duration>,
    ) -> Duration {
        let jittered = self.delay(attempt, rand01);
        let asked = retry_after.map_or(Duration::ZERO, |d| d.min(self.max_retry_after));
        jittered.max(asked)
    }

    /// The wait before the first retry's ceiling.
    pub fn base(&self) -> Duration {
        self.base
    }

    /// The largest ceiling.
    pub fn max(&self) -> Duration {
        self.max
    }

    /// The growth factor per retry.
    pub fn multiplier(&self) -> f64 {
        self.multiplier
    }

    /// The longest `Retry-After` honoured.
    pub fn max_retry_after(&self) -> Duration {
        self.max_retry_after
    }
}
