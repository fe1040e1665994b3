//! The knobs of one breaker, their defaults and their validation.
//!
//! Defaults, and where they come from (ALGORITHMS.md B1):
//! - `window` 10 s in 10 buckets: Hystrix `metrics.rollingStats` (resilience4j's time-based
//!   window also uses one-second buckets);
//! - `min_calls` 20: Hystrix `requestVolumeThreshold` (resilience4j's 100 suits a count
//!   window; Sentinel's 5 trips on noise);
//! - `failure_ratio` 0.5: resilience4j and Hystrix;
//! - `slow_call_duration` 60 s and `slow_call_ratio` 1.0: resilience4j;
//! - `open_duration` 5 s: Hystrix `sleepWindowInMilliseconds`; `open_multiplier` 2.0 and
//!   `max_open_duration` 60 s (resilience4j's fixed wait, used here as the ceiling of the
//!   exponential backoff);
//! - `half_open_probes` 1: Hystrix, Sentinel and gobreaker admit a single trial call;
//! - `transition_history` 16: how many transitions the snapshot keeps for the admin API.

use std::time::Duration;

/// The breaker's configuration, as resolved plain values. Validate it with
/// [`BreakerSettings::validate`] (which [`super::Breaker::try_new`] calls).
#[derive(Debug, Clone, PartialEq)]
pub struct BreakerSettings {
    /// Length of the sliding window the ratios are computed over.
    pub window: Duration,
    /// Number of buckets the window is split into; the window forgets one bucket at a time.
    pub buckets: u32,
    /// No ratio is evaluated until the window holds at least this many calls.
    pub min_calls: u32,
    /// Trip when failures / calls reaches (≥) this, in (0, 1].
    pub failure_ratio: f64,
    /// A call taking at least (≥) this long is slow, whether it succeeded or not.
    pub slow_call_duration: Duration,
    /// Trip when slow calls / calls reaches (≥) this, in (0, 1].
    pub slow_call_ratio: f64,
    /// How long the first trip keeps the breaker open.
    pub open_duration: Duration,
    /// Each consecutive trip (without a successful close in between) multiplies the open
    /// period by this; ≥ 1.
    pub open_multiplier: f64,
    /// Ceiling of the open period.
    pub max_open_duration: Duration,
    /// Probe calls admitted while half-open; all must succeed to close.
    pub half_open_probes: u32,
    /// How many recent transitions the snapshot keeps.
    pub transition_history: usize,
}

/// The most buckets a window may have: enough resolution for any sensible window while
/// keeping the per-breaker memory small.
pub const MAX_BUCKETS: u32 = 1000;

/// A window bucket must span at least this long, so that buckets mean something.
pub const MIN_BUCKET: Duration = Duration::from_millis(1);

/// Why a [`BreakerSettings`] was refused; each variant names the setting.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum InvalidBreakerSettings {
    /// `buckets` is 0 or above [`MAX_BUCKETS`].
    #[error("buckets must be between 1 and {MAX_BUCKETS}, got {0}")]
    Buckets(u32),
    /// `window / buckets` is shorter than [`MIN_BUCKET`].
    #[error("window {window:?} split into {buckets} buckets gives buckets shorter than 1ms")]
    BucketTooShort {
        /// The given window.
        window: Duration,
        /// The given bucket count.
        buckets: u32,
    },
    /// `min_calls` is 0.
    #[error("min_calls must be at least 1")]
    ZeroMinCalls,
    /// `failure_ratio` is not in (0, 1].
    #[error("failure_ratio must be above 0 and at most 1, got {0}")]
    FailureRatio(f64),
    /// `slow_call_ratio` is not in (0, 1].
    #[error("slow_call_ratio must be above 0 and at most 1, got {0}")]
    SlowCallRatio(f64),
    /// `slow_call_duration` is zero (every call would be slow).
    #[error("slow_call_duration must be longer than zero")]
    ZeroSlowCallDuration,
    /// `open_duration` is zero.
    #[error("open_duration must be longer than zero")]
    ZeroOpenDuration,
    /// `open_multiplier` is below 1 or not finite.
    #[error("open_multiplier must be a finite number of at least 1, got {0}")]
    OpenMultiplier(f64),
    /// `max_open_duration` is shorter than `open_duration`.
    #[error("max_open_duration {max:?} is shorter than open_duration {open:?}")]
    MaxOpenBelowOpen {
        /// The given `open_duration`.
        open: Duration,
        /// The given `max_open_duration`.
        max: Duration,
    },
    /// `half_open_probes` is 0 (the breaker could never close).
    #[error("half_open_probes must be at least 1")]
    ZeroProbes,
}

impl Default for BreakerSettings {
    /// The defaults listed in the module docs.
    fn default() -> Self {
        Self {
            window: Duration::from_secs(10),
            buckets: 10,
            min_calls: 20,
            failure_ratio: 0.5,
            slow_call_duration: Duration::from_secs(60),
            slow_call_ratio: 1.0,
            open_duration: Duration::from_secs(5),
            open_multiplier: 2.0,
            max_open_duration: Duration::from_secs(60),
            half_open_probes: 1,
            transition_history: 16,
        }
    }
}

impl BreakerSettings {
    /// Checks every setting; the first problem found is returned.
    pub fn validate(&self) -> Result<(), InvalidBreakerSettings> {
        use InvalidBreakerSettings as E;
        if self.buckets == 0 || self.buckets > MAX_BUCKETS {
            return Err(E::Buckets(self.buckets));
        }
        if self.bucket_len() < MIN_BUCKET {
            return Err(E::BucketTooShort {
                window: self.window,
                buckets: self.buckets,
            });
        }
        if self.min_calls == 0 {
            return Err(E::ZeroMinCalls);
        }
        if !is_ratio(self.failure_ratio) {
            return Err(E::FailureRatio(self.failure_ratio));
        }
        if !is_ratio(self.slow_call_ratio) {
            return Err(E::SlowCallRatio(self.slow_call_ratio));
        }
        if self.slow_call_duration.is_zero() {
            return Err(E::ZeroSlowCallDuration);
        }
        if self.open_duration.is_zero() {
            return Err(E::ZeroOpenDuration);
        }
        if !(self.open_multiplier.is_finite() && self.open_multiplier >= 1.0) {
            return Err(E::OpenMultiplier(self.open_multiplier));
        }
        if self.max_open_duration < self.open_duration {
            return Err(E::MaxOpenBelowOpen {
                open: self.open_duration,
                max: self.max_open_duration,
            });
        }
        if self.half_open_probes == 0 {
            return Err(E::ZeroProbes);
        }
        Ok(())
    }

    /// The span of one window bucket.
    pub(crate) fn bucket_len(&self) -> Duration {
        self.window / self.buckets.max(1)
    }

    /// The open period after `trips` consecutive trips (1 for the first):
    /// `open_duration × open_multiplier^(trips − 1)`, capped at `max_open_duration`.
    pub fn open_period(&self, trips: u32) -> Duration {
        let exponent = i32::try_from(trips.saturating_sub(1)).unwrap_or(i32::MAX);
        let secs = self.open_duration.as_secs_f64() * self.open_multiplier.powi(exponent);
        // Overflow (an infinite product) lands on the cap instead of failing.
        Duration::try_from_secs_f64(secs)
            .map_or(self.max_open_duration, |d| d.min(self.max_open_duration))
    }
}

fn is_ratio(value: f64) -> bool {
    value > 0.0 && value <= 1.0
}
