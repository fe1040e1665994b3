//! A tiny circuit breaker around the rate-limit store, with injected time.
//!
//! Why: when Redis is down or slow, every decision would otherwise pay the full store
//! timeout. The breaker opens on the first failure, so for `cooldown` decisions skip
//! Redis and go straight to the configured fallback (costing no latency); then one probe
//! is let through (half-open), and its success closes the breaker again.

use std::sync::Mutex;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Closed,
    /// Refusing until the given time (nanoseconds).
    Open(u64),
    /// One probe, admitted at the given time, is in flight; everyone else keeps
    /// falling back. A probe that never reports (its request was dropped) expires after
    /// one more cooldown, so the breaker cannot wedge open.
    HalfOpen(u64),
}

/// Breaker state shared by every request of one store.
#[derive(Debug)]
pub struct Breaker {
    state: Mutex<State>,
    cooldown: u64,
}

impl Breaker {
    /// A closed breaker that stays open `cooldown_ns` after a failure.
    pub fn new(cooldown_ns: u64) -> Self {
        Self {
            state: Mutex::new(State::Closed),
            cooldown: cooldown_ns,
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        // The state is a plain enum: a panic elsewhere cannot leave it half-written.
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// True when a call may go to the store now. Turns an expired open state into
    /// half-open and admits the caller as its single probe.
    pub fn admit(&self, now: u64) -> bool {
        let mut s = self.state();
        match *s {
            State::Closed => true,
            State::Open(until) if now >= until => {
                *s = State::HalfOpen(now);
                true
            }
            State::HalfOpen(since) if now >= since.saturating_add(self.cooldown) => {
                *s = State::HalfOpen(now);
                true
            }
            State::Open(_) | State::HalfOpen(_) => false,
        }
    }

    /// The store answered: close.
    pub fn success(&self) {
        *self.state() = State::Closed;
    }

    /// The store failed or timed out: open for the cooldown.
    pub fn failure(&self, now: u64) {
        *self.state() = State::Open(now.saturating_add(self.cooldown));
    }

    /// True unless closed (for the admin API and tests).
    pub fn is_open(&self) -> bool {
        *self.state() != State::Closed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failure_opens_it_until_the_cooldown_then_one_probe_decides() {
        let b = Breaker::new(100);
        assert!(b.admit(0));
        b.failure(10);
        assert!(!b.admit(50), "open: calls skip the store");
        assert!(b.admit(110), "cooldown over: one probe");
        assert!(!b.admit(111), "only one probe at a time");
        b.failure(120);
        assert!(!b.admit(200));
        assert!(b.admit(220));
        b.success();
        assert!(b.admit(221) && b.admit(221) && !b.is_open());
    }

    #[test]
    fn a_probe_that_never_reports_does_not_wedge_the_breaker() {
        let b = Breaker::new(100);
        b.failure(0);
        assert!(
            b.admit(100),
            "probe admitted, then dropped without a verdict"
        );
        assert!(!b.admit(150));
        assert!(b.admit(200), "a new probe after one more cooldown");
    }
}
