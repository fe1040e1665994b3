//! Hedged requests: when to send an extra copy of a request that has not answered yet.
//!
//! "The Tail at Scale" (Dean & Barroso, 2013): send the request to one replica, and if no
//! answer has come after about the 95th percentile of the expected latency, send a second
//! copy to another replica and take whichever answers first; it costs about 5 % more
//! requests and cuts the tail. gRPC's `hedgingPolicy` (a fixed `hedgingDelay`) and
//! `tower::hedge` (a tracked percentile, with a minimum of data points before it hedges at
//! all) are the two shapes offered here as [`HedgeDelay`].
//!
//! [`Hedge`] is the timing decision only: it records the latency of answered requests with
//! the time they were seen, and says how long to wait before the extra copy. Latencies go
//! into a log-scale histogram (buckets 10 % wide from 100 µs to about 2.5 minutes), kept as
//! two halves of `window` each: the percentile covers between one and two windows of
//! history, so it follows a change of the upstream's latency within two windows. The
//! percentile is reported as the upper bound of its bucket (at most 10 % late, never
//! early). Before `min_samples` are in the window there is no delay to give: a percentile
//! of too few samples is noise, and no hedge is sent (tower's rule).
//!
//! Whether a hedge may be sent (method, body, budget) and the race itself are the
//! gateway's; every hedge spends the upstream's retry budget.

use std::time::Duration;

use tokio::time::Instant;

/// How long to wait before the extra copy.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum HedgeDelay {
    /// Always this long (gRPC `hedgingDelay`).
    Fixed(Duration),
    /// This quantile of recent latencies, in (0, 1), e.g. 0.95 (The Tail at Scale).
    Quantile(f64),
}

/// The hedging knobs.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct HedgeSettings {
    pub delay: HedgeDelay,
    /// Extra copies at most, 1-3; each waits `delay` after the previous one.
    pub max_extra: u32,
    /// Samples needed in the window before a quantile delay is given.
    pub min_samples: u32,
    /// Half the history the quantile is taken over.
    pub window: Duration,
}

impl Default for HedgeSettings {
    /// p95, one extra copy, 20 samples, 10 s windows.
    fn default() -> Self {
        Self {
            delay: HedgeDelay::Quantile(0.95),
            max_extra: 1,
            min_samples: 20,
            window: Duration::from_secs(10),
        }
    }
}

/// Why a [`HedgeSettings`] was refused.
#[derive(Debug, Clone, Copy, PartialEq, thiserror::Error)]
pub enum InvalidHedge {
    /// A fixed delay of zero would double every request.
    #[error("hedge delay must be greater than zero")]
    ZeroDelay,
    /// The quantile is not in (0, 1).
    #[error("hedge quantile must be between 0 and 1 (exclusive), got {0}")]
    Quantile(f64),
    /// `max_extra` is outside 1-3.
    #[error("hedge max_extra must be between 1 and 3, got {0}")]
    MaxExtra(u32),
    /// `window` is zero.
    #[error("hedge window must be greater than zero")]
    ZeroWindow,
}

/// Lowest bucket bound: everything faster falls in bucket 0.
const FLOOR_MICROS: f64 = 100.0;
/// Growth of the bucket bounds.
const GROWTH: f64 = 1.1;
/// Buckets: 100 µs × 1.1^139 ≈ 2.5 min; slower samples fall in the last one.
const BUCKETS: usize = 140;

/// A log-scale latency histogram.
#[derive(Debug, Clone)]
struct Histogram {
    counts: Box<[u32; BUCKETS]>,
    total: u32,
}

impl Histogram {
    fn new() -> Self {
        Self {
            counts: Box::new([0; BUCKETS]),
            total: 0,
        }
    }

    fn bucket(latency: Duration) -> usize {
        let micros = latency.as_secs_f64() * 1e6;
        if micros <= FLOOR_MICROS {
            return 0;
        }
        let i = ((micros / FLOOR_MICROS).ln() / GROWTH.ln()).ceil();
        // `i` is positive and finite here; the cast saturates on huge values.
        (i as usize).min(BUCKETS - 1)
    }

    fn upper_bound(bucket: usize) -> Duration {
        let exp = i32::try_from(bucket).unwrap_or(i32::MAX);
        Duration::from_secs_f64(FLOOR_MICROS * GROWTH.powi(exp) / 1e6)
    }

    fn record(&mut self, latency: Duration) {
        let b = Self::bucket(latency);
        self.counts[b] = self.counts[b].saturating_add(1);
        self.total = self.total.saturating_add(1);
    }

    fn clear(&mut self) {
        *self.counts = [0; BUCKETS];
        self.total = 0;
    }
}

/// The hedge timing of one route.
#[derive(Debug, Clone)]
pub struct Hedge {
    settings: HedgeSettings,
    current: Histogram,
    previous: Histogram,
    /// When `current` started collecting.
    since: Option<Instant>,
}

/// The hedge's figures, for metrics and the admin API.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct HedgeSnapshot {
    /// The delay a request would wait now; `None` while too few samples are known.
    pub delay: Option<Duration>,
    /// Samples in the window.
    pub samples: u32,
}

impl Hedge {
    /// A hedge with `settings`, or why they are refused.
    pub fn try_new(settings: HedgeSettings) -> Result<Self, InvalidHedge> {
        match settings.delay {
            HedgeDelay::Fixed(d) if d.is_zero() => return Err(InvalidHedge::ZeroDelay),
            HedgeDelay::Quantile(q) if !(q > 0.0 && q < 1.0) => {
                return Err(InvalidHedge::Quantile(q));
            }
            _ => {}
        }
        if !(1..=3).contains(&settings.max_extra) {
            return Err(InvalidHedge::MaxExtra(settings.max_extra));
        }
        if settings.window.is_zero() {
            return Err(InvalidHedge::ZeroWindow);
        }
        Ok(Self {
            settings,
            current: Histogram::new(),
            previous: Histogram::new(),
            since: None,
        })
    }

    /// The settings.
    pub fn settings(&self) -> &HedgeSettings {
        &self.settings
    }

    /// Moves the window so it ends at `now`.
    fn advance(&mut self, now: Instant) {
        let since = *self.since.get_or_insert(now);
        let elapsed = now.saturating_duration_since(since);
        if elapsed < self.settings.window {
            return;
        }
        if elapsed < self.settings.window * 2 {
            std::mem::swap(&mut self.previous, &mut self.current);
            self.current.clear();
            // Keep the windows aligned to their start, not to this call.
            self.since = Some(since + self.settings.window);
        } else {
            self.previous.clear();
            self.current.clear();
            self.since = Some(now);
        }
    }

    /// Records the latency of a request that was answered at `now`.
    pub fn record(&mut self, now: Instant, latency: Duration) {
        self.advance(now);
        self.current.record(latency);
    }

    /// How long to wait at `now` before sending an extra copy; `None`: do not hedge (a
    /// quantile delay with fewer than `min_samples` samples in the window).
    pub fn delay(&mut self, now: Instant) -> Option<Duration> {
        let q = match self.settings.delay {
            HedgeDelay::Fixed(d) => return Some(d),
            HedgeDelay::Quantile(q) => q,
        };
        self.advance(now);
        let total = self.current.total.saturating_add(self.previous.total);
        if total == 0 || total < self.settings.min_samples {
            return None;
        }
        // The smallest bucket holding the rank-th sample, rank = ⌈q × total⌉.
        let rank = ((q * f64::from(total)).ceil() as u32).clamp(1, total);
        let mut seen = 0u32;
        for b in 0..BUCKETS {
            seen = seen
                .saturating_add(self.current.counts[b])
                .saturating_add(self.previous.counts[b]);
            if seen >= rank {
                return Some(Histogram::upper_bound(b));
            }
        }
        Some(Histogram::upper_bound(BUCKETS - 1))
    }

    /// The figures at `now`.
    pub fn snapshot(&mut self, now: Instant) -> HedgeSnapshot {
        let delay = self.delay(now);
        HedgeSnapshot {
            delay,
            samples: self.current.total.saturating_add(self.previous.total),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: fn(u64) -> Duration = Duration::from_millis;

    fn p95() -> Hedge {
        Hedge::try_new(HedgeSettings::default()).unwrap()
    }

    #[test]
    fn bad_settings_are_refused_by_name() {
        let with = |f: fn(&mut HedgeSettings)| {
            let mut s = HedgeSettings::default();
            f(&mut s);
            Hedge::try_new(s).unwrap_err()
        };
        assert_eq!(
            with(|s| s.delay = HedgeDelay::Fixed(Duration::ZERO)),
            InvalidHedge::ZeroDelay
        );
        assert_eq!(
            with(|s| s.delay = HedgeDelay::Quantile(1.0)),
            InvalidHedge::Quantile(1.0)
        );
        assert_eq!(with(|s| s.max_extra = 0), InvalidHedge::MaxExtra(0));
        assert_eq!(with(|s| s.max_extra = 4), InvalidHedge::MaxExtra(4));
        assert_eq!(
            with(|s| s.window = Duration::ZERO),
            InvalidHedge::ZeroWindow
        );
    }

    #[test]
    fn a_fixed_delay_needs_no_samples() {
        let mut h = Hedge::try_new(HedgeSettings {
            delay: HedgeDelay::Fixed(MS(50)),
            ..HedgeSettings::default()
        })
        .unwrap();
        assert_eq!(h.delay(Instant::now()), Some(MS(50)));
    }

    #[test]
    fn no_quantile_delay_below_min_samples_then_the_p95_within_a_bucket() {
        let mut h = p95();
        let now = Instant::now();
        for _ in 0..19 {
            h.record(now, MS(10));
        }
        assert_eq!(h.delay(now), None, "19 samples are too few");
        // 100 samples: 94 at 10 ms, 6 at 200 ms → rank 95 is a 200 ms one.
        for _ in 0..75 {
            h.record(now, MS(10));
        }
        for _ in 0..6 {
            h.record(now, MS(200));
        }
        let d = h.delay(now).unwrap();
        assert!(d >= MS(200) && d <= MS(220), "{d:?}");
        // 20 more fast ones: rank 114 of 120 is a fast one.
        for _ in 0..20 {
            h.record(now, MS(10));
        }
        let d = h.delay(now).unwrap();
        assert!(d >= MS(10) && d <= MS(11), "{d:?}");
    }

    #[test]
    fn old_samples_leave_after_two_windows() {
        let mut h = p95();
        let start = Instant::now();
        let at = |secs: u64| start + Duration::from_secs(secs);
        for _ in 0..50 {
            h.record(start, MS(300));
        }
        for _ in 0..50 {
            h.record(at(12), MS(5));
        }
        let d = h.delay(at(12)).unwrap();
        assert!(d >= MS(300), "the slow window still counts: {d:?}");
        let d = h.delay(at(22)).unwrap();
        assert!(d <= MS(6), "only the fast window is left: {d:?}");
        assert_eq!(h.delay(at(52)), None, "everything aged out");
        assert_eq!(h.snapshot(at(52)).samples, 0);
    }

    #[test]
    fn buckets_cover_the_range_and_never_report_early() {
        for micros in [1, 100, 101, 1_000, 123_456, 10_000_000, 400_000_000] {
            let d = Duration::from_micros(micros);
            let b = Histogram::bucket(d);
            let upper = Histogram::upper_bound(b);
            if b < BUCKETS - 1 {
                assert!(upper >= d, "{d:?} in bucket {b} bounded by {upper:?}");
                assert!(
                    upper.as_secs_f64() <= (d.as_secs_f64() * GROWTH).max(1e-4) + 1e-9,
                    "{d:?}: {upper:?} is at most 10 % late"
                );
            }
        }
    }
}
