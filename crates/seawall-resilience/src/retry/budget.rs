//! Retry budget: retries may add at most a ratio of the request load, plus a small floor.
//!
//! Finagle's `RetryBudget(ttl, minRetriesPerSec, percentCanRetry)` as ported by tower
//! (`TpsBudget`) and offered by linkerd's ServiceProfiles: every request *deposits*, every
//! retry *withdraws*, and deposits expire after `ttl`. Here both are counted in a sliding
//! window of `ttl` split into 10 buckets (as tower does), and a retry is allowed iff, with
//! it, the retries in the window stay within
//!
//! ```text
//! retries ≤ ratio × requests + min_retries_per_second × ttl
//! ```
//!
//! The floor (`min_retries_per_second × ttl`, the *reserve*) lets a low-traffic client
//! still retry; the ratio stops a busy one from multiplying its load when the upstream
//! fails. The bound is checked at every withdrawal against the window as it is at that
//! moment; a retry counts until its bucket leaves the window, like a deposit.
//!
//! Only original requests deposit: a retry is not new demand. Defaults (Finagle, linkerd):
//! `ttl` 10 s, `min_retries_per_second` 10, `ratio` 0.2.

use std::time::Duration;

use tokio::time::Instant;

use crate::window::{Tally, Window};

/// The budget's knobs.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RetryBudgetSettings {
    /// How long a request's deposit (and a retry's withdrawal) counts; 1 s to 60 s.
    pub ttl: Duration,
    /// Retries per second allowed whatever the load (the reserve is this × `ttl`).
    pub min_retries_per_second: u32,
    /// Retries allowed per request, in [0, 1000] (0.2 = retries may add 20 % load).
    pub ratio: f64,
}

impl Default for RetryBudgetSettings {
    /// 10 s, 10 retries/s, 20 %.
    fn default() -> Self {
        Self {
            ttl: Duration::from_secs(10),
            min_retries_per_second: 10,
            ratio: 0.2,
        }
    }
}

/// Why a [`RetryBudgetSettings`] was refused.
#[derive(Debug, Clone, Copy, PartialEq, thiserror::Error)]
pub enum InvalidRetryBudget {
    /// `ttl` is outside 1 s to 60 s (Finagle's bounds).
    #[error("retry budget ttl must be between 1s and 60s, got {0:?}")]
    Ttl(Duration),
    /// `ratio` is negative, above 1000 or not finite.
    #[error("retry budget ratio must be between 0 and 1000, got {0}")]
    Ratio(f64),
}

/// The budget's figures, for metrics and the admin API.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RetryBudgetSnapshot {
    /// Requests counted in the current window.
    pub requests: u64,
    /// Retries counted in the current window.
    pub retries: u64,
    /// Retries that would be allowed right now (whole retries).
    pub available: u64,
    /// Retries allowed since creation.
    pub withdrawn_total: u64,
    /// Retries refused since creation.
    pub refused_total: u64,
}

#[derive(Debug, Clone, Copy, Default)]
struct Flow {
    requests: u64,
    retries: u64,
}

impl Tally for Flow {
    fn merge(&mut self, other: &Self) {
        self.requests = self.requests.saturating_add(other.requests);
        self.retries = self.retries.saturating_add(other.retries);
    }
}

/// Buckets per `ttl`, as in tower's `TpsBudget`.
const BUCKETS: u32 = 10;

/// Tolerance when comparing against `ratio × requests`, which floating point can round a
/// hair below the integer it should equal (e.g. `0.1 × 30`): without it an exactly
/// affordable retry could be refused.
const EPSILON: f64 = 1e-9;

/// A retry budget (typically one per upstream).
#[derive(Debug, Clone)]
pub struct RetryBudget {
    settings: RetryBudgetSettings,
    window: Window<Flow>,
    reserve: f64,
    withdrawn_total: u64,
    refused_total: u64,
}

impl RetryBudget {
    /// An empty budget: only the reserve is available.
    pub fn try_new(settings: RetryBudgetSettings) -> Result<Self, InvalidRetryBudget> {
        if !(Duration::from_secs(1)..=Duration::from_secs(60)).contains(&settings.ttl) {
            return Err(InvalidRetryBudget::Ttl(settings.ttl));
        }
        if !(settings.ratio.is_finite() && (0.0..=1000.0).contains(&settings.ratio)) {
            return Err(InvalidRetryBudget::Ratio(settings.ratio));
        }
        Ok(Self {
            window: Window::new(settings.ttl / BUCKETS, BUCKETS),
            reserve: f64::from(settings.min_retries_per_second) * settings.ttl.as_secs_f64(),
            settings,
            withdrawn_total: 0,
            refused_total: 0,
        })
    }

    /// The settings in force.
    pub fn settings(&self) -> &RetryBudgetSettings {
        &self.settings
    }

    /// Counts one original request (not a retry).
    pub fn deposit(&mut self, now: Instant) {
        let bucket = self.window.current(now);
        bucket.requests = bucket.requests.saturating_add(1);
    }

    /// Takes one retry from the budget if it allows one; true if the retry may go ahead.
    pub fn try_withdraw(&mut self, now: Instant) -> bool {
        let flow = self.window.sum(now);
        if self.allowance(flow) < flow.retries as f64 + 1.0 - EPSILON {
            self.refused_total += 1;
            return false;
        }
        let bucket = self.window.current(now);
        bucket.retries = bucket.retries.saturating_add(1);
        self.withdrawn_total += 1;
        true
    }

    /// The figures at `now`.
    pub fn snapshot(&self, now: Instant) -> RetryBudgetSnapshot {
        let flow = self.window.sum(now);
        let spare = self.allowance(flow) - flow.retries as f64 + EPSILON;
        RetryBudgetSnapshot {
            requests: flow.requests,
            retries: flow.retries,
            // Float to integer casts saturate; a negative balance reads as none available.
            available: spare.max(0.0).floor() as u64,
            withdrawn_total: self.withdrawn_total,
            refused_total: self.refused_total,
        }
    }

    /// Retries the window can hold: `ratio × requests + reserve`.
    fn allowance(&self, flow: Flow) -> f64 {
        self.settings.ratio * flow.requests as f64 + self.reserve
    }
}
