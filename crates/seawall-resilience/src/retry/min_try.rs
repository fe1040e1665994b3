//! [`MinTry`]: the least time a try of an upstream recently needed, the
//! `expected_min_try` that [`super::RetryPolicy::next_try`] and hedging weigh against the
//! time left.
//!
//! The estimate is the minimum of the last [`MinTry::SAMPLES`] successful tries, each
//! counted for `window` after it ended; with none, zero. The minimum, not a mean or a
//! quantile, because the question is "can any try still make it": a retry is refused
//! only when even the fastest recent answer would not fit, so a route whose requests
//! differ in cost (a cheap health call and a slow report on one upstream) is never
//! refused a retry it could have used. An upstream that got faster shows it at the next
//! fast answer; one that got slower, once the fast samples are pushed out or age out.

use std::time::Duration;

use tokio::time::Instant;

/// The least time a try recently needed (module docs). No clock of its own.
#[derive(Debug, Clone)]
pub struct MinTry {
    window: Duration,
    /// (when it was recorded, how long the try took), oldest overwritten first.
    samples: [(Instant, Duration); MinTry::SAMPLES],
    len: usize,
    next: usize,
}

impl MinTry {
    /// Successful tries remembered.
    pub const SAMPLES: usize = 16;

    /// An estimate that forgets a sample `window` after recording it.
    pub fn new(window: Duration, now: Instant) -> Self {
        Self {
            window,
            samples: [(now, Duration::ZERO); Self::SAMPLES],
            len: 0,
            next: 0,
        }
    }

    /// Records a successful try that took `took`, ending `now`.
    pub fn record(&mut self, now: Instant, took: Duration) {
        self.samples[self.next] = (now, took);
        self.next = (self.next + 1) % Self::SAMPLES;
        self.len = (self.len + 1).min(Self::SAMPLES);
    }

    /// The least time a recent try took; zero when no sample is recent.
    pub fn get(&self, now: Instant) -> Duration {
        self.samples[..self.len]
            .iter()
            .filter(|(at, _)| now.saturating_duration_since(*at) < self.window)
            .map(|(_, took)| *took)
            .min()
            .unwrap_or(Duration::ZERO)
    }
}
