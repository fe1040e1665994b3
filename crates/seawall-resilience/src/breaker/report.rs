//! What the breaker reports: its transitions, its window figures, its counters and the
//! snapshot the admin API and the metrics read.

use std::time::Duration;

use tokio::time::Instant;

use super::BreakerState;
use crate::window::Tally;

/// Why the breaker changed state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TransitionCause {
    /// Closed → Open: the failure ratio reached its threshold.
    FailureRatio,
    /// Closed → Open: the slow-call ratio reached its threshold.
    SlowCallRatio,
    /// Open → HalfOpen: the open period elapsed.
    OpenPeriodElapsed,
    /// HalfOpen → Open: a probe failed.
    ProbeFailed,
    /// HalfOpen → Open: a probe was slow, or every probe slot is taken and the latest
    /// probe has been running for `slow_call_duration`, so it will be slow.
    ProbeSlow,
    /// HalfOpen → Closed: every probe succeeded.
    ProbesSucceeded,
}

impl TransitionCause {
    /// A stable lowercase name for logs and metric labels.
    pub const fn as_str(self) -> &'static str {
        match self {
            TransitionCause::FailureRatio => "failure_ratio",
            TransitionCause::SlowCallRatio => "slow_call_ratio",
            TransitionCause::OpenPeriodElapsed => "open_period_elapsed",
            TransitionCause::ProbeFailed => "probe_failed",
            TransitionCause::ProbeSlow => "probe_slow",
            TransitionCause::ProbesSucceeded => "probes_succeeded",
        }
    }
}

/// One state change, for the gateway to log and count.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Transition {
    /// The state left.
    pub from: BreakerState,
    /// The state entered.
    pub to: BreakerState,
    /// What caused it.
    pub cause: TransitionCause,
    /// When it happened.
    pub at: Instant,
}

/// What the current window holds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WindowFigures {
    /// Calls recorded in the window.
    pub calls: u64,
    /// Of which failed.
    pub failures: u64,
    /// Of which were slow (failed or not).
    pub slow_calls: u64,
}

impl WindowFigures {
    /// failures / calls, 0 with no calls.
    pub fn failure_ratio(&self) -> f64 {
        ratio(self.failures, self.calls)
    }

    /// slow calls / calls, 0 with no calls.
    pub fn slow_call_ratio(&self) -> f64 {
        ratio(self.slow_calls, self.calls)
    }
}

impl Tally for WindowFigures {
    fn merge(&mut self, other: &Self) {
        self.calls = self.calls.saturating_add(other.calls);
        self.failures = self.failures.saturating_add(other.failures);
        self.slow_calls = self.slow_calls.saturating_add(other.slow_calls);
    }
}

fn ratio(part: u64, whole: u64) -> f64 {
    if whole == 0 {
        0.0
    } else {
        part as f64 / whole as f64
    }
}

/// Totals since the breaker was created, for counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BreakerCounters {
    /// Calls admitted (probes included).
    pub admitted: u64,
    /// Calls rejected.
    pub rejected: u64,
    /// Outcomes recorded as successes.
    pub successes: u64,
    /// Outcomes recorded as failures.
    pub failures: u64,
    /// Outcomes recorded as slow.
    pub slow_calls: u64,
    /// Outcomes ignored because their admission predates the current state.
    pub stale_outcomes: u64,
    /// Admissions handed back without an outcome.
    pub released: u64,
    /// State transitions.
    pub transitions: u64,
}

/// The breaker as the admin API and the metrics see it.
#[derive(Debug, Clone, PartialEq)]
pub struct BreakerSnapshot {
    /// The stored state. An Open breaker whose period has elapsed still reads Open (with a
    /// zero `retry_after`) until the next call moves it to HalfOpen.
    pub state: BreakerState,
    /// The window at the snapshot time (empty unless Closed).
    pub window: WindowFigures,
    /// Trips since the last successful close; drives the open-period backoff.
    pub consecutive_trips: u32,
    /// While Open, the time left in the open period.
    pub retry_after: Option<Duration>,
    /// While HalfOpen, probes admitted and not yet answered.
    pub probes_in_flight: u32,
    /// Totals since creation.
    pub counters: BreakerCounters,
    /// The most recent transitions, oldest first.
    pub recent_transitions: Vec<Transition>,
}
