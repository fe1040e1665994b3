//! Outlier-ejection knobs, defaults (Envoy's) and validation.

use std::time::Duration;

/// The detector's configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OutlierSettings {
    /// Consecutive failures (as the caller classifies them) that eject an endpoint.
    pub consecutive_failures: u32,
    /// The first ejection lasts this long; the n-th in a row lasts n times as long.
    pub base_ejection_time: Duration,
    /// Ceiling of an ejection.
    pub max_ejection_time: Duration,
    /// Most endpoints ejected at once, as a percentage of all, rounded down but at least
    /// one (0 disables ejection); see the module docs.
    pub max_ejection_percent: u32,
    /// Each `interval` an endpoint spends un-ejected takes one off its ejection count,
    /// so a once-flaky endpoint is forgiven step by step.
    pub interval: Duration,
}

impl Default for OutlierSettings {
    /// Envoy: 5 consecutive failures, 30 s base, 300 s max, 10 %, 10 s interval.
    fn default() -> Self {
        Self {
            consecutive_failures: 5,
            base_ejection_time: Duration::from_secs(30),
            max_ejection_time: Duration::from_secs(300),
            max_ejection_percent: 10,
            interval: Duration::from_secs(10),
        }
    }
}

/// Why an [`OutlierSettings`] was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum InvalidOutlierSettings {
    /// `consecutive_failures` is 0.
    #[error("consecutive_failures must be at least 1")]
    ZeroConsecutiveFailures,
    /// `base_ejection_time` is zero.
    #[error("base_ejection_time must be longer than zero")]
    ZeroBaseEjectionTime,
    /// `max_ejection_time` is shorter than `base_ejection_time`.
    #[error("max_ejection_time {max:?} is shorter than base_ejection_time {base:?}")]
    MaxBelowBase {
        /// The given base.
        base: Duration,
        /// The given max.
        max: Duration,
    },
    /// `max_ejection_percent` is above 100.
    #[error("max_ejection_percent must be at most 100, got {0}")]
    Percent(u32),
    /// `interval` is zero.
    #[error("interval must be longer than zero")]
    ZeroInterval,
}

impl OutlierSettings {
    /// Checks every setting; the first problem found is returned.
    pub fn validate(&self) -> Result<(), InvalidOutlierSettings> {
        use InvalidOutlierSettings as E;
        if self.consecutive_failures == 0 {
            return Err(E::ZeroConsecutiveFailures);
        }
        if self.base_ejection_time.is_zero() {
            return Err(E::ZeroBaseEjectionTime);
        }
        if self.max_ejection_time < self.base_ejection_time {
            return Err(E::MaxBelowBase {
                base: self.base_ejection_time,
                max: self.max_ejection_time,
            });
        }
        if self.max_ejection_percent > 100 {
            return Err(E::Percent(self.max_ejection_percent));
        }
        if self.interval.is_zero() {
            return Err(E::ZeroInterval);
        }
        Ok(())
    }

    /// How many of `endpoints` may be ejected at once: `⌊endpoints × percent / 100⌋`, but
    /// at least 1 when the percentage is not 0.
    pub fn max_ejected(&self, endpoints: usize) -> usize {
        if self.max_ejection_percent == 0 || endpoints == 0 {
            return 0;
        }
        let percent = usize::try_from(self.max_ejection_percent).unwrap_or(100);
        (endpoints.saturating_mul(percent) / 100).max(1)
    }

    /// How long the `times`-th consecutive ejection lasts: `base × times`, capped.
    pub fn ejection_time(&self, times: u32) -> Duration {
        self.base_ejection_time
            .checked_mul(times.max(1))
            .map_or(self.max_ejection_time, |d| d.min(self.max_ejection_time))
    }
}
