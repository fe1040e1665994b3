//! Adaptive concurrency limit: Netflix concurrency-limits `Gradient2`.
//!
//! The limit follows the ratio of the long-run latency to the latest one:
//!
//! ```text
//! long    = EMA of RTT over `long_window` samples (plain average for the first `warmup`)
//! if long / rtt > 2:  long ×= 0.9            // latency fell a lot: forget the bad past faster
//! if inflight < limit / 2:  no change        // app-limited: the sample says nothing
//! gradient = clamp(long / rtt, 0.5, 1.0)
//! target   = limit × gradient + queue_size
//! limit    = clamp(limit × (1 − smoothing) + target × smoothing, min_limit, max_limit)
//! ```
//!
//! When latency rises above its baseline (the upstream is queueing) the gradient drops
//! below 1 and the limit shrinks, at most to about 90 % per sample with the default
//! smoothing, never below `min_limit`. At baseline the gradient is 1 and the limit grows by
//! `queue_size × smoothing` per sample (the probe for spare capacity) up to `max_limit`. As
//! a sustained higher latency becomes the new baseline (the EMA catches up), the limit
//! stops falling and regrows; when latency returns to the old baseline the gradient is 1
//! again (it is capped at 1) and the limit recovers.
//!
//! A *drop* (a timeout or an upstream overload signal, where the RTT means nothing) is
//! applied as the steepest step the formula allows, gradient 0.5: a Seawall addition, as
//! Gradient2 itself ignores drops.
//!
//! Defaults (Gradient2): initial 20, min 20, max 200, smoothing 0.2, queue size 4, long
//! window 600 samples, warm-up 10 samples.

use std::time::Duration;

/// The limiter's knobs.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GradientSettings {
    /// The limit before any sample.
    pub initial_limit: u32,
    /// The floor; at least 1.
    pub min_limit: u32,
    /// The ceiling.
    pub max_limit: u32,
    /// Weight of each new target in (0, 1].
    pub smoothing: f64,
    /// Headroom added to the target, so the limit probes above current use.
    pub queue_size: u32,
    /// Samples in the long-run RTT average.
    pub long_window: u32,
    /// Samples averaged plainly before the EMA starts.
    pub warmup: u32,
}

impl Default for GradientSettings {
    /// The Gradient2 defaults listed in the module docs.
    fn default() -> Self {
        Self {
            initial_limit: 20,
            min_limit: 20,
            max_limit: 200,
            smoothing: 0.2,
            queue_size: 4,
            long_window: 600,
            warmup: 10,
        }
    }
}

/// Why a [`GradientSettings`] was refused.
#[derive(Debug, Clone, Copy, PartialEq, thiserror::Error)]
pub enum InvalidGradient {
    /// `min_limit` is 0.
    #[error("min_limit must be at least 1")]
    ZeroMinLimit,
    /// Not `min_limit ≤ initial_limit ≤ max_limit`.
    #[error(
        "limits must satisfy min_limit ≤ initial_limit ≤ max_limit, got {min} ≤ {initial} ≤ {max}"
    )]
    LimitOrder {
        /// The given floor.
        min: u32,
        /// The given initial limit.
        initial: u32,
        /// The given ceiling.
        max: u32,
    },
    /// `smoothing` is not in (0, 1].
    #[error("smoothing must be above 0 and at most 1, got {0}")]
    Smoothing(f64),
    /// `long_window` is 0.
    #[error("long_window must be at least 1 sample")]
    ZeroLongWindow,
}

/// The limiter's figures.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GradientSnapshot {
    /// The current limit.
    pub limit: u32,
    /// The long-run RTT average.
    pub long_rtt: Duration,
    /// The latest RTT sample.
    pub last_rtt: Duration,
    /// The gradient of the latest update (1 before any).
    pub gradient: f64,
    /// Samples taken.
    pub samples: u64,
    /// Drops taken.
    pub drops: u64,
}

/// The Gradient2 limiter for one upstream.
#[derive(Debug, Clone)]
pub struct GradientLimiter {
    settings: GradientSettings,
    limit: f64,
    long: LongRtt,
    last_rtt: f64,
    gradient: f64,
    samples: u64,
    drops: u64,
}

impl GradientLimiter {
    /// A limiter at `initial_limit`.
    pub fn try_new(settings: GradientSettings) -> Result<Self, InvalidGradient> {
        let GradientSettings {
            initial_limit: initial,
            min_limit: min,
            max_limit: max,
            ..
        } = settings;
        if min == 0 {
            return Err(InvalidGradient::ZeroMinLimit);
        }
        if !(min <= initial && initial <= max) {
            return Err(InvalidGradient::LimitOrder { min, initial, max });
        }
        if !(settings.smoothing > 0.0 && settings.smoothing <= 1.0) {
            return Err(InvalidGradient::Smoothing(settings.smoothing));
        }
        if settings.long_window == 0 {
            return Err(InvalidGradient::ZeroLongWindow);
        }
        Ok(Self {
            limit: f64::from(initial),
            long: LongRtt::new(settings.long_window, settings.warmup),
            settings,
            last_rtt: 0.0,
            gradient: 1.0,
            samples: 0,
            drops: 0,
        })
    }

    /// The current limit (rounded down, as Gradient2 does).
    pub fn limit(&self) -> u32 {
        // Float to integer casts saturate; the limit is within [min_limit, max_limit].
        self.limit as u32
    }

    /// True if one more request may start while `inflight` are running.
    pub fn admits(&self, inflight: u32) -> bool {
        inflight < self.limit()
    }

    /// A request completed in `rtt` while `inflight` requests were running (itself
    /// included); updates the limit.
    pub fn on_sample(&mut self, rtt: Duration, inflight: u32) {
        self.samples += 1;
        // A zero RTT (clock granularity) would make the ratio infinite; a nanosecond keeps
        // it finite and still reads as "very fast".
        let short = rtt.as_secs_f64().max(1e-9);
        self.last_rtt = short;
        let long = self.long.add(short);
        if long / short > 2.0 {
            self.long.scale(0.9);
        }
        if f64::from(inflight) < self.limit / 2.0 {
            return;
        }
        self.step((long / short).clamp(0.5, 1.0));
    }

    /// A request was dropped (timed out, or the upstream signalled overload): the limit
    /// takes the steepest step down.
    pub fn on_drop(&mut self) {
        self.drops += 1;
        self.step(0.5);
    }

    /// The figures now.
    pub fn snapshot(&self) -> GradientSnapshot {
        let secs = |s: f64| Duration::try_from_secs_f64(s).unwrap_or(Duration::MAX);
        GradientSnapshot {
            limit: self.limit(),
            long_rtt: secs(self.long.value),
            last_rtt: secs(self.last_rtt),
            gradient: self.gradient,
            samples: self.samples,
            drops: self.drops,
        }
    }

    fn step(&mut self, gradient: f64) {
        let s = &self.settings;
        self.gradient = gradient;
        let target = self.limit * gradient + f64::from(s.queue_size);
        let smoothed = self.limit * (1.0 - s.smoothing) + target * s.smoothing;
        self.limit = smoothed.clamp(f64::from(s.min_limit), f64::from(s.max_limit));
    }
}

/// Gradient2's `ExpAvgMeasurement`: a plain average over the first `warmup` samples, then an
/// EMA with factor `2 / (window + 1)`.
#[derive(Debug, Clone)]
struct LongRtt {
    factor: f64,
    warmup: u32,
    count: u32,
    sum: f64,
    value: f64,
}

impl LongRtt {
    fn new(window: u32, warmup: u32) -> Self {
        Self {
            factor: 2.0 / (f64::from(window) + 1.0),
            warmup,
            count: 0,
            sum: 0.0,
            value: 0.0,
        }
    }

    fn add(&mut self, sample: f64) -> f64 {
        if self.count < self.warmup {
            self.count += 1;
            self.sum += sample;
            self.value = self.sum / f64::from(self.count);
        } else if self.count == 0 {
            // No warm-up configured: the first sample is the average.
            self.count = 1;
            self.value = sample;
        } else {
            self.value = self.value * (1.0 - self.factor) + sample * self.factor;
        }
        self.value
    }

    fn scale(&mut self, by: f64) {
        self.value *= by;
    }
}
