//! Peak-EWMA load estimate per endpoint, and the power-of-two-choices pick over it.
//!
//! Each endpoint keeps an RTT estimate and its count of pending requests (linkerd,
//! Finagle `PeakEwma`, tower `PeakEwma`):
//! - a sample **above** the estimate replaces it at once (the *peak*): a slowing endpoint
//!   is avoided from its first slow answer, not after the average catches up;
//! - a sample below it is blended in with weight `1 − e^(−Δt/τ)`, where Δt is the time since
//!   the last update and τ is `decay`: an exponentially weighted moving average in time
//!   rather than per sample, so a burst of fast samples does not erase a slow history
//!   instantly;
//! - between samples the estimate decays towards zero with the same time constant, so an
//!   endpoint that was avoided for being slow is eventually tried again and re-measured.
//!
//! `cost = estimate × (pending + 1)`. An endpoint never measured costs `default_rtt`.
//! Defaults (linkerd): `decay` 10 s, `default_rtt` 30 ms.

use std::time::Duration;

use tokio::time::Instant;

use super::{allowed_count, nth_allowed};

/// Peak-EWMA knobs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PeakEwmaSettings {
    /// Time constant τ of the moving average and of the decay.
    pub decay: Duration,
    /// The RTT assumed for an endpoint before its first sample.
    pub default_rtt: Duration,
}

impl Default for PeakEwmaSettings {
    /// τ = 10 s, 30 ms before the first sample.
    fn default() -> Self {
        Self {
            decay: Duration::from_secs(10),
            default_rtt: Duration::from_millis(30),
        }
    }
}

/// Why a [`PeakEwmaSettings`] was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum InvalidPeakEwma {
    /// `decay` is zero.
    #[error("peak-ewma decay must be longer than zero")]
    ZeroDecay,
}

/// One endpoint's load, for metrics and the admin API.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EndpointLoad {
    /// The decayed RTT estimate at the snapshot time.
    pub rtt_estimate: Duration,
    /// Requests started and not yet ended.
    pub pending: u32,
    /// `rtt_estimate × (pending + 1)` in seconds.
    pub cost: f64,
    /// Times this endpoint was picked.
    pub picks: u64,
}

#[derive(Debug, Clone, Copy)]
struct Estimate {
    /// Seconds; `None` until the first sample.
    rtt: Option<f64>,
    updated: Instant,
    pending: u32,
    picks: u64,
}

/// The P2C peak-EWMA balancer over a fixed list of endpoints.
#[derive(Debug, Clone)]
pub struct PeakEwma {
    settings: PeakEwmaSettings,
    endpoints: Vec<Estimate>,
}

impl PeakEwma {
    /// A balancer over `len` endpoints, none measured yet; `now` anchors the decay.
    pub fn try_new(
        settings: PeakEwmaSettings,
        len: usize,
        now: Instant,
    ) -> Result<Self, InvalidPeakEwma> {
        if settings.decay.is_zero() {
            return Err(InvalidPeakEwma::ZeroDecay);
        }
        let fresh = Estimate {
            rtt: None,
            updated: now,
            pending: 0,
            picks: 0,
        };
        Ok(Self {
            settings,
            endpoints: vec![fresh; len],
        })
    }

    /// Picks two distinct allowed endpoints at random and returns the cheaper (the first
    /// drawn on a tie); the only allowed one if there is one; `None` if none is.
    pub fn pick(
        &mut self,
        rng: &mut fastrand::Rng,
        now: Instant,
        excluded: &[usize],
    ) -> Option<usize> {
        let len = self.endpoints.len();
        let allowed = allowed_count(len, excluded);
        let chosen = match allowed {
            0 => return None,
            1 => nth_allowed(len, excluded, 0)?,
            _ => {
                let a = rng.usize(0..allowed);
                // Draw b from the others, so the two choices are distinct.
                let mut b = rng.usize(0..allowed - 1);
                if b >= a {
                    b += 1;
                }
                let a = nth_allowed(len, excluded, a)?;
                let b = nth_allowed(len, excluded, b)?;
                if self.cost(b, now) < self.cost(a, now) {
                    b
                } else {
                    a
                }
            }
        };
        if let Some(e) = self.endpoints.get_mut(chosen) {
            e.picks += 1;
        }
        Some(chosen)
    }

    /// A request to endpoint `index` started (out-of-range indices are ignored). `now` is
    /// unused today; it keeps the signature symmetric with [`Self::end`] for the gateway.
    pub fn start(&mut self, index: usize, _now: Instant) {
        if let Some(e) = self.endpoints.get_mut(index) {
            e.pending = e.pending.saturating_add(1);
        }
    }

    /// A request to endpoint `index` ended with no latency sample (out-of-range indices
    /// are ignored).
    pub fn abandon(&mut self, index: usize) {
        if let Some(e) = self.endpoints.get_mut(index) {
            e.pending = e.pending.saturating_sub(1);
        }
    }

    /// A request to endpoint `index` ended after `rtt`; folds the sample in.
    pub fn end(&mut self, index: usize, rtt: Duration, now: Instant) {
        let tau = self.settings.decay.as_secs_f64();
        let Some(e) = self.endpoints.get_mut(index) else {
            return;
        };
        e.pending = e.pending.saturating_sub(1);
        let sample = rtt.as_secs_f64();
        e.rtt = Some(match e.rtt {
            None => sample,
            Some(old) => {
                let w = weight(now.saturating_duration_since(e.updated), tau);
                let current = old * w;
                if sample > current {
                    // A peak: taken as is.
                    sample
                } else {
                    current + sample * (1.0 - w)
                }
            }
        });
        e.updated = e.updated.max(now);
    }

    /// The cost of endpoint `index` at `now` (`f64::INFINITY` out of range).
    pub fn cost(&self, index: usize, now: Instant) -> f64 {
        match self.endpoints.get(index) {
            Some(e) => self.estimate(e, now) * f64::from(e.pending.saturating_add(1)),
            None => f64::INFINITY,
        }
    }

    /// Every endpoint's load at `now`, by index.
    pub fn snapshot(&self, now: Instant) -> Vec<EndpointLoad> {
        (0..self.endpoints.len())
            .map(|i| {
                let e = &self.endpoints[i];
                EndpointLoad {
                    rtt_estimate: Duration::try_from_secs_f64(self.estimate(e, now))
                        .unwrap_or(Duration::MAX),
                    pending: e.pending,
                    cost: self.cost(i, now),
                    picks: e.picks,
                }
            })
            .collect()
    }

    /// The number of endpoints.
    pub fn len(&self) -> usize {
        self.endpoints.len()
    }

    /// True with no endpoints.
    pub fn is_empty(&self) -> bool {
        self.endpoints.is_empty()
    }

    /// The RTT estimate in seconds, decayed since its last update.
    fn estimate(&self, e: &Estimate, now: Instant) -> f64 {
        match e.rtt {
            None => self.settings.default_rtt.as_secs_f64(),
            Some(rtt) => {
                let tau = self.settings.decay.as_secs_f64();
                rtt * weight(now.saturating_duration_since(e.updated), tau)
            }
        }
    }
}

/// The weight of the old value after `elapsed`: `e^(−elapsed/τ)`, in (0, 1].
fn weight(elapsed: Duration, tau: f64) -> f64 {
    (-elapsed.as_secs_f64() / tau).exp()
}
