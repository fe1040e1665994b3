//! Circuit breaker: fail fast while an upstream is known to be failing, probe it, recover.
//!
//! # Why
//! When an upstream is down or drowning, sending it more requests costs the client a
//! timeout each and deepens the upstream's trouble. The breaker watches outcomes and, once
//! failure is the norm rather than noise, rejects calls at once for a while, then lets a
//! few probes through to see whether the upstream is back.
//!
//! # States
//! - **Closed**: calls flow; each outcome is counted in a sliding *time* window (`window`
//!   split into `buckets`; see `crate::window`): calls, failures (as decided by the caller,
//!   usually with a [`crate::classify::ErrorClassifier`]) and slow calls (duration
//!   ≥ `slow_call_duration`).
//! - **Open**: every call is rejected with the time left ([`Rejected::retry_after`]).
//! - **HalfOpen**: exactly `half_open_probes` probe calls are admitted; further calls are
//!   rejected until the probes have answered.
//!
//! # Trip conditions (Closed → Open)
//! Evaluated after every recorded outcome, and only when the window holds at least
//! `min_calls` calls: the breaker trips when failures / calls **reaches** `failure_ratio`
//! or slow calls / calls reaches `slow_call_ratio`. "Reaches" means ≥ exactly, as in
//! resilience4j: 5 failures in 10 calls trip a 0.5 ratio. (Sentinel and Hystrix trip only
//! above the threshold; we follow resilience4j.) Ratios are computed by division, which
//! IEEE 754 rounds correctly, so a ratio exactly equal to the threshold compares equal
//! (multiplying the threshold by the call count would not: `0.3 × 10 > 3`).
//!
//! A call is slow when its duration is **at least** `slow_call_duration`. resilience4j and
//! Sentinel use "longer than"; Seawall's choice of ≥ makes the setting read as "calls
//! taking this long are slow", and the boundary is tested.
//!
//! # Recovery
//! - Open → HalfOpen when the open period has elapsed, evaluated lazily by the next
//!   [`Breaker::try_acquire`] (resilience4j's default, no timer), which is admitted as the
//!   first probe.
//! - HalfOpen → Closed when **all** `half_open_probes` probes succeeded without being slow;
//!   the window starts empty and the open-period backoff resets.
//! - HalfOpen → Open as soon as one probe fails or is slow (Hystrix, Sentinel, gobreaker).
//!   A probe still running `slow_call_duration` after the latest probe was admitted is
//!   bound to be slow, so a call arriving then (all slots taken) reopens the breaker at
//!   once; this also means a lost admission cannot hold the breaker HalfOpen for ever.
//!
//! The open period grows with consecutive trips: `open_duration × open_multiplier^(n−1)` for
//! the n-th trip since the last successful close, capped at `max_open_duration`
//! (resilience4j `IntervalFunction.ofExponentialBackoff`).
//!
//! # Generations
//! Every transition starts a new generation, and an [`Admission`] remembers the generation
//! it was granted in. An outcome recorded for an older generation is ignored and counted as
//! stale (gobreaker): a slow call admitted before a trip must not count as a probe, nor
//! close or reopen a breaker whose state has moved on.
//!
//! # Reporting
//! Every transition is returned to the caller ([`Admission::transition`], the return of
//! [`Breaker::record`]) for logging and metrics, and the last `transition_history` ones are
//! kept for [`Breaker::snapshot`].

mod report;
mod settings;
#[cfg(test)]
mod tests;

use std::{collections::VecDeque, time::Duration};

use tokio::time::Instant;

pub use self::report::{
    BreakerCounters, BreakerSnapshot, Transition, TransitionCause, WindowFigures,
};
pub use self::settings::{BreakerSettings, InvalidBreakerSettings, MAX_BUCKETS, MIN_BUCKET};
pub use crate::classify::{ErrorClassifier, StatusRange};
use crate::window::Window;

/// The breaker's state, with the standard names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BreakerState {
    /// Calls flow and are counted.
    Closed,
    /// Calls are rejected.
    Open,
    /// A limited number of probe calls are admitted.
    HalfOpen,
}

impl BreakerState {
    /// A stable lowercase name for logs, metrics and the admin API.
    pub const fn as_str(self) -> &'static str {
        match self {
            BreakerState::Closed => "closed",
            BreakerState::Open => "open",
            BreakerState::HalfOpen => "half_open",
        }
    }
}

/// Permission to make one call. Hand it back to [`Breaker::record`] with the outcome, or to
/// [`Breaker::release`] if the outcome says nothing about the upstream (e.g. the client
/// went away first).
#[derive(Debug, PartialEq, Eq)]
#[must_use = "an admission must be handed back to `record` or `release`"]
pub struct Admission {
    generation: u64,
    probe: bool,
    transition: Option<Transition>,
}

impl Admission {
    /// True if this call is a half-open probe.
    pub fn is_probe(&self) -> bool {
        self.probe
    }

    /// The transition that admitting this call caused (Open → HalfOpen), if any.
    pub fn transition(&self) -> Option<Transition> {
        self.transition
    }
}

/// The call was not admitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rejected {
    /// The state that rejected it: Open, or HalfOpen with every probe slot taken.
    pub state: BreakerState,
    /// When Open, the time left in the open period. When HalfOpen, the open period the
    /// breaker would enter if a probe failed: the probes' answer time is unknown, so this
    /// is the pessimistic hint for a `Retry-After`.
    pub retry_after: Duration,
    /// The transition this call's arrival caused: HalfOpen → Open when the outstanding
    /// probes have run for `slow_call_duration` (see [`TransitionCause::ProbeSlow`]).
    pub transition: Option<Transition>,
}

/// What happened to an admitted call, as classified by the caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Outcome {
    /// False when the caller's classifier counts the call as a failure.
    pub success: bool,
    /// How long the call took (compared with `slow_call_duration`).
    pub duration: Duration,
}

impl Outcome {
    /// A successful call that took `duration`.
    pub const fn success(duration: Duration) -> Self {
        Self {
            success: true,
            duration,
        }
    }

    /// A failed call that took `duration`.
    pub const fn failure(duration: Duration) -> Self {
        Self {
            success: false,
            duration,
        }
    }
}

#[derive(Debug, Clone, Copy)]
enum Phase {
    Closed,
    Open {
        since: Instant,
        period: Duration,
    },
    HalfOpen {
        admitted: u32,
        succeeded: u32,
        /// When the latest probe was admitted: every outstanding probe started no later.
        last_admit: Instant,
    },
}

/// One circuit breaker (typically per route and upstream). Not shared: the gateway wraps it
/// in whatever lock suits.
#[derive(Debug, Clone)]
pub struct Breaker {
    settings: BreakerSettings,
    window: Window<WindowFigures>,
    phase: Phase,
    generation: u64,
    consecutive_trips: u32,
    counters: BreakerCounters,
    history: VecDeque<Transition>,
}

impl Breaker {
    /// A Closed breaker with an empty window.
    pub fn try_new(settings: BreakerSettings) -> Result<Self, InvalidBreakerSettings> {
        settings.validate()?;
        Ok(Self {
            window: Window::new(settings.bucket_len(), settings.buckets),
            phase: Phase::Closed,
            generation: 0,
            consecutive_trips: 0,
            counters: BreakerCounters::default(),
            history: VecDeque::with_capacity(settings.transition_history.min(64)),
            settings,
        })
    }

    /// The settings in force.
    pub fn settings(&self) -> &BreakerSettings {
        &self.settings
    }

    /// The stored state (see [`BreakerSnapshot::state`] about the lazy Open → HalfOpen).
    pub fn state(&self) -> BreakerState {
        match self.phase {
            Phase::Closed => BreakerState::Closed,
            Phase::Open { .. } => BreakerState::Open,
            Phase::HalfOpen { .. } => BreakerState::HalfOpen,
        }
    }

    /// Asks to make one call at `now`.
    pub fn try_acquire(&mut self, now: Instant) -> Result<Admission, Rejected> {
        match self.phase {
            Phase::Closed => Ok(self.admit(false, None)),
            Phase::Open { since, period } => {
                let elapsed = now.saturating_duration_since(since);
                if elapsed < period {
                    return Err(self.reject(BreakerState::Open, period - elapsed));
                }
                self.phase = Phase::HalfOpen {
                    admitted: 1,
                    succeeded: 0,
                    last_admit: now,
                };
                let t =
                    self.transition(BreakerState::Open, TransitionCause::OpenPeriodElapsed, now);
                Ok(self.admit(true, Some(t)))
            }
            Phase::HalfOpen {
                admitted,
                succeeded,
                last_admit,
            } => {
                if admitted >= self.settings.half_open_probes {
                    return Err(self.reject_half_open(last_admit, now));
                }
                self.phase = Phase::HalfOpen {
                    admitted: admitted + 1,
                    succeeded,
                    last_admit: now,
                };
                Ok(self.admit(true, None))
            }
        }
    }

    /// Records the outcome of an admitted call; returns the transition it caused, if any.
    pub fn record(
        &mut self,
        admission: Admission,
        outcome: Outcome,
        now: Instant,
    ) -> Option<Transition> {
        if admission.generation != self.generation {
            self.counters.stale_outcomes += 1;
            return None;
        }
        let slow = outcome.duration >= self.settings.slow_call_duration;
        self.count(outcome.success, slow);
        match self.phase {
            Phase::Closed => self.record_closed(outcome.success, slow, now),
            Phase::HalfOpen {
                admitted,
                succeeded,
                last_admit,
            } => {
                let probes = (admitted, succeeded, last_admit);
                self.record_probe(probes, outcome.success, slow, now)
            }
            // Entering Open starts a new generation, so no current admission exists.
            Phase::Open { .. } => None,
        }
    }

    /// Hands back an admission whose outcome says nothing about the upstream. A probe's
    /// slot is freed for another probe.
    pub fn release(&mut self, admission: Admission) {
        self.counters.released += 1;
        if admission.generation != self.generation || !admission.probe {
            return;
        }
        if let Phase::HalfOpen {
            admitted,
            succeeded,
            last_admit,
        } = self.phase
        {
            self.phase = Phase::HalfOpen {
                admitted: admitted.saturating_sub(1),
                succeeded,
                last_admit,
            };
        }
    }

    /// The breaker's figures at `now`.
    pub fn snapshot(&self, now: Instant) -> BreakerSnapshot {
        let (retry_after, probes_in_flight) = match self.phase {
            Phase::Closed => (None, 0),
            Phase::Open { since, period } => {
                let left = period.saturating_sub(now.saturating_duration_since(since));
                (Some(left), 0)
            }
            Phase::HalfOpen {
                admitted,
                succeeded,
                ..
            } => (None, admitted.saturating_sub(succeeded)),
        };
        BreakerSnapshot {
            state: self.state(),
            window: self.window.sum(now),
            consecutive_trips: self.consecutive_trips,
            retry_after,
            probes_in_flight,
            counters: self.counters,
            recent_transitions: self.history.iter().copied().collect(),
        }
    }

    fn record_closed(&mut self, success: bool, slow: bool, now: Instant) -> Option<Transition> {
        let bucket = self.window.current(now);
        bucket.calls += 1;
        bucket.failures += u64::from(!success);
        bucket.slow_calls += u64::from(slow);
        let figures = self.window.sum(now);
        if figures.calls < u64::from(self.settings.min_calls) {
            return None;
        }
        let cause = if figures.failure_ratio() >= self.settings.failure_ratio {
            TransitionCause::FailureRatio
        } else if figures.slow_call_ratio() >= self.settings.slow_call_ratio {
            TransitionCause::SlowCallRatio
        } else {
            return None;
        };
        Some(self.open(cause, now))
    }

    /// `probes` is the HalfOpen phase's (admitted, succeeded, last_admit).
    fn record_probe(
        &mut self,
        (admitted, succeeded, last_admit): (u32, u32, Instant),
        success: bool,
        slow: bool,
        now: Instant,
    ) -> Option<Transition> {
        if !success {
            return Some(self.open(TransitionCause::ProbeFailed, now));
        }
        if slow {
            return Some(self.open(TransitionCause::ProbeSlow, now));
        }
        let succeeded = succeeded + 1;
        if succeeded < self.settings.half_open_probes {
            self.phase = Phase::HalfOpen {
                admitted,
                succeeded,
                last_admit,
            };
            return None;
        }
        self.phase = Phase::Closed;
        self.consecutive_trips = 0;
        self.window.clear();
        Some(self.transition(
            BreakerState::HalfOpen,
            TransitionCause::ProbesSucceeded,
            now,
        ))
    }

    fn open(&mut self, cause: TransitionCause, now: Instant) -> Transition {
        let from = self.state();
        self.consecutive_trips = self.consecutive_trips.saturating_add(1);
        self.phase = Phase::Open {
            since: now,
            period: self.settings.open_period(self.consecutive_trips),
        };
        self.window.clear();
        self.transition(from, cause, now)
    }

    /// Records the move from `from` to the current phase.
    fn transition(
        &mut self,
        from: BreakerState,
        cause: TransitionCause,
        at: Instant,
    ) -> Transition {
        self.generation = self.generation.wrapping_add(1);
        self.counters.transitions += 1;
        let t = Transition {
            from,
            to: self.state(),
            cause,
            at,
        };
        if self.settings.transition_history > 0 {
            if self.history.len() >= self.settings.transition_history {
                self.history.pop_front();
            }
            self.history.push_back(t);
        }
        t
    }

    fn admit(&mut self, probe: bool, transition: Option<Transition>) -> Admission {
        self.counters.admitted += 1;
        Admission {
            generation: self.generation,
            probe,
            transition,
        }
    }

    fn reject(&mut self, state: BreakerState, retry_after: Duration) -> Rejected {
        self.counters.rejected += 1;
        Rejected {
            state,
            retry_after,
            transition: None,
        }
    }

    /// Rejects a call while every probe slot is taken. If the latest probe was admitted at
    /// least `slow_call_duration` ago, every outstanding probe will count as slow however it
    /// ends, and a slow probe reopens the breaker: so reopen now. This also keeps a probe
    /// whose admission was lost (never recorded nor released) from holding the breaker
    /// HalfOpen for ever.
    fn reject_half_open(&mut self, last_admit: Instant, now: Instant) -> Rejected {
        if now.saturating_duration_since(last_admit) < self.settings.slow_call_duration {
            let hint = self
                .settings
                .open_period(self.consecutive_trips.saturating_add(1));
            return self.reject(BreakerState::HalfOpen, hint);
        }
        let t = self.open(TransitionCause::ProbeSlow, now);
        let period = self.settings.open_period(self.consecutive_trips);
        Rejected {
            transition: Some(t),
            ..self.reject(BreakerState::Open, period)
        }
    }

    fn count(&mut self, success: bool, slow: bool) {
        if success {
            self.counters.successes += 1;
        } else {
            self.counters.failures += 1;
        }
        self.counters.slow_calls += u64::from(slow);
    }
}
