//! GCRA (Generic Cell Rate Algorithm), as one pure function.
//!
//! A key's whole state is one number, its theoretical arrival time (TAT): when the key
//! would next be "empty" if requests kept arriving at exactly the configured rate.
//! With emission interval `T = period / count` and tolerance `τ = T × burst`, a request
//! of `quantity` cells at `now` computes `new_tat = max(tat, now) + T × quantity`; it
//! conforms when `new_tat − τ ≤ now`. This is redis-cell's `CL.THROTTLE`, with one naming
//! difference: our `burst` is the number of requests a fresh key may send at once, which
//! is redis-cell's `max_burst + 1` (its reply's "limit") and governor's `burst`.

use std::{fmt, time::Duration};

/// A rate (`count` per `period`) and a burst, in the form the algorithm uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quota {
    /// Emission interval `T`, in nanoseconds (at least 1).
    interval: u64,
    /// Requests a fresh key may send back to back (at least 1).
    burst: u32,
}

/// Why a quota cannot be built.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum QuotaError {
    /// `count` was zero: a rate of nothing refuses everything; say so explicitly instead.
    ZeroCount,
    /// `period` was zero.
    ZeroPeriod,
    /// `burst` was zero: no request could ever conform.
    ZeroBurst,
    /// The emission interval would be shorter than a nanosecond, or `τ` overflows.
    OutOfRange,
}

impl fmt::Display for QuotaError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            QuotaError::ZeroCount => "the rate's count must be at least 1",
            QuotaError::ZeroPeriod => "the rate's period must be longer than zero",
            QuotaError::ZeroBurst => "burst must be at least 1",
            QuotaError::OutOfRange => "rate or burst out of range (more than 1 per nanosecond?)",
        })
    }
}

impl std::error::Error for QuotaError {}

impl Quota {
    /// `count` requests per `period`, with `burst` allowed back to back from a fresh key.
    pub fn new(count: u32, period: Duration, burst: u32) -> Result<Self, QuotaError> {
        if count == 0 {
            return Err(QuotaError::ZeroCount);
        }
        if period.is_zero() {
            return Err(QuotaError::ZeroPeriod);
        }
        if burst == 0 {
            return Err(QuotaError::ZeroBurst);
        }
        let interval = u64::try_from(period.as_nanos() / u128::from(count))
            .map_err(|_| QuotaError::OutOfRange)?;
        if interval == 0 || interval.checked_mul(u64::from(burst)).is_none() {
            return Err(QuotaError::OutOfRange);
        }
        Ok(Self { interval, burst })
    }

    /// The emission interval `T`: one request's worth of time.
    pub fn interval(&self) -> Duration {
        Duration::from_nanos(self.interval)
    }

    /// Requests a fresh key may send back to back.
    pub fn burst(&self) -> u32 {
        self.burst
    }

    /// `τ = T × burst` in nanoseconds (cannot overflow: checked in `new`).
    fn tau(&self) -> u64 {
        self.interval * u64::from(self.burst)
    }
}

/// The answer for one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decision {
    /// True when the request conforms (or conforms after `wait`, in delay mode).
    pub allowed: bool,
    /// The burst (redis-cell's "limit").
    pub limit: u32,
    /// Requests that would still conform right now after this one.
    pub remaining: u32,
    /// For a refused request that could ever conform: how long until it would.
    pub retry_after: Option<Duration>,
    /// Until the key is back to a full burst.
    pub reset_after: Duration,
    /// For a request allowed in delay mode: how long it must wait before it conforms
    /// (zero when it conforms now).
    pub wait: Duration,
}

/// Decides a request of `quantity` cells at `now` for a key whose stored TAT is `tat`
/// (`None` for a new or evicted key). Returns the decision and the TAT to store (`None`:
/// leave the stored value as it is). `quantity` 0 is a peek.
///
/// `max_wait` turns on smoothing: a request that would conform within `max_wait` is
/// allowed, books its slot (so later requests queue behind it), and reports the `wait`.
pub fn decide(
    quota: &Quota,
    tat: Option<u64>,
    now: u64,
    quantity: u32,
    max_wait: Duration,
) -> (Decision, Option<u64>) {
    let tau = quota.tau();
    let increment = quota.interval.saturating_mul(u64::from(quantity));
    let tat = tat.unwrap_or(now);
    let new_tat = tat.max(now).saturating_add(increment);
    let allow_at = new_tat.saturating_sub(tau);
    // Done in i128 so that no pair of u64 times can overflow.
    let diff = i128::from(now) - i128::from(allow_at);
    let max_wait = u64::try_from(max_wait.as_nanos()).unwrap_or(u64::MAX);
    let conforms_now = diff >= 0;
    let wait = if conforms_now {
        0
    } else {
        allow_at.saturating_sub(now)
    };
    let allowed = conforms_now || (increment <= tau && wait <= max_wait);
    if allowed {
        let ttl = new_tat.saturating_sub(now);
        let decision = Decision {
            allowed: true,
            limit: quota.burst,
            remaining: remaining(quota, tau, ttl),
            retry_after: None,
            reset_after: Duration::from_nanos(ttl),
            wait: Duration::from_nanos(wait),
        };
        (decision, Some(new_tat))
    } else {
        let ttl = tat.saturating_sub(now);
        let decision = Decision {
            allowed: false,
            limit: quota.burst,
            remaining: remaining(quota, tau, ttl),
            retry_after: (increment <= tau).then(|| Duration::from_nanos(wait)),
            reset_after: Duration::from_nanos(ttl),
            wait: Duration::ZERO,
        };
        (decision, None)
    }
}

/// `⌊(τ − ttl) / T⌋`, 0 when negative (redis-cell's formula).
fn remaining(quota: &Quota, tau: u64, ttl: u64) -> u32 {
    u32::try_from(tau.saturating_sub(ttl) / quota.interval).unwrap_or(u32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: u64 = 1_000_000_000;

    fn secs(s: f64) -> u64 {
        (s * S as f64).round() as u64
    }

    /// One row of redis-cell's own unit test (ALGORITHMS.md §B4.1): at `t` seconds after
    /// the start, `quantity` → limited, remaining, reset_after, retry_after (seconds).
    struct Row(f64, u32, bool, u32, f64, Option<f64>);

    #[test]
    fn reproduces_redis_cells_table_for_limit_5_at_1_per_second() {
        // redis-cell max_burst 4 ⇔ our burst 5.
        let quota = Quota::new(1, Duration::from_secs(1), 5).unwrap();
        let start = 1_000 * S;
        let rows = [
            Row(0.0, 6, true, 5, 0.0, None),
            Row(0.0, 1, false, 4, 1.0, None),
            Row(0.0, 1, false, 3, 2.0, None),
            Row(0.0, 1, false, 2, 3.0, None),
            Row(0.0, 1, false, 1, 4.0, None),
            Row(0.0, 1, false, 0, 5.0, None),
            Row(0.0, 1, true, 0, 5.0, Some(1.0)),
            Row(3.0, 1, false, 2, 3.0, None),
            Row(3.1, 1, false, 1, 3.9, None),
            Row(4.0, 1, false, 1, 4.0, None),
            Row(8.0, 1, false, 4, 1.0, None),
            Row(9.5, 1, false, 4, 1.0, None),
            Row(9.5, 0, false, 4, 1.0, None),
            Row(9.5, 2, false, 2, 3.0, None),
            Row(9.5, 5, true, 2, 3.0, Some(3.0)),
        ];
        let mut tat = None;
        for (i, Row(t, q, limited, remaining, reset, retry)) in rows.into_iter().enumerate() {
            let (d, store) = decide(&quota, tat, start + secs(t), q, Duration::ZERO);
            assert_eq!(d.allowed, !limited, "row {i}: limited");
            assert_eq!(d.remaining, remaining, "row {i}: remaining");
            assert_eq!(
                d.reset_after,
                Duration::from_nanos(secs(reset)),
                "row {i}: reset"
            );
            assert_eq!(
                d.retry_after,
                retry.map(|r| Duration::from_nanos(secs(r))),
                "row {i}"
            );
            if let Some(s) = store {
                tat = Some(s);
            }
        }
    }

    #[test]
    fn per_second_5_allows_5_at_once_then_one_more_after_200ms() {
        let quota = Quota::new(5, Duration::from_secs(1), 5).unwrap();
        let mut tat = None;
        let mut check = |now: u64| {
            let (d, store) = decide(&quota, tat, now, 1, Duration::ZERO);
            tat = store.or(tat);
            d.allowed
        };
        let t0 = 7 * S;
        assert!((0..5).all(|_| check(t0)));
        assert!(!check(t0));
        assert!(!check(t0 + 199_999_999));
        assert!(check(t0 + 200_000_000));
        assert!(!check(t0 + 200_000_000));
    }

    #[test]
    fn delay_mode_books_the_next_slot_and_reports_the_wait() {
        let quota = Quota::new(10, Duration::from_secs(1), 1).unwrap();
        let max_wait = Duration::from_millis(250);
        let (first, tat) = decide(&quota, None, S, 1, max_wait);
        assert!(first.allowed && first.wait.is_zero());
        let (second, tat) = decide(&quota, tat, S, 1, max_wait);
        assert_eq!(
            (second.allowed, second.wait),
            (true, Duration::from_millis(100))
        );
        let (third, tat) = decide(&quota, tat, S, 1, max_wait);
        assert_eq!(third.wait, Duration::from_millis(200));
        // The fourth would wait 300ms > max_wait: refused at once, nothing booked.
        let (fourth, none) = decide(&quota, tat, S, 1, max_wait);
        assert!(!fourth.allowed && none.is_none());
        assert_eq!(fourth.retry_after, Some(Duration::from_millis(300)));
    }

    #[test]
    fn extreme_inputs_neither_panic_nor_wrap() {
        let quota = Quota::new(1_000_000, Duration::from_secs(1), u32::MAX).unwrap();
        for (tat, now, q) in [
            (Some(u64::MAX), 0, u32::MAX),
            (Some(0), u64::MAX, u32::MAX),
            (None, u64::MAX, 1),
            (Some(u64::MAX), u64::MAX, 0),
        ] {
            let _ = decide(&quota, tat, now, q, Duration::MAX);
        }
    }

    #[test]
    fn quotas_that_could_never_admit_anything_are_refused() {
        assert_eq!(
            Quota::new(0, Duration::from_secs(1), 1),
            Err(QuotaError::ZeroCount)
        );
        assert_eq!(
            Quota::new(1, Duration::ZERO, 1),
            Err(QuotaError::ZeroPeriod)
        );
        assert_eq!(
            Quota::new(1, Duration::from_secs(1), 0),
            Err(QuotaError::ZeroBurst)
        );
        assert_eq!(
            Quota::new(u32::MAX, Duration::from_nanos(1), 1),
            Err(QuotaError::OutOfRange)
        );
    }
}
