use std::time::Duration;

use tokio::time::Instant;

use super::*;

const MS: Duration = Duration::from_millis(1);
const FAST: Duration = Duration::from_millis(5);

/// resilience4j's test settings (ALGORITHMS.md B1.1): min 10 calls, 50 %.
fn settings() -> BreakerSettings {
    BreakerSettings {
        window: Duration::from_secs(10),
        buckets: 10,
        min_calls: 10,
        failure_ratio: 0.5,
        slow_call_duration: Duration::from_millis(100),
        slow_call_ratio: 1.0,
        open_duration: Duration::from_secs(1),
        open_multiplier: 2.0,
        max_open_duration: Duration::from_secs(5),
        half_open_probes: 3,
        transition_history: 4,
    }
}

fn breaker(s: BreakerSettings) -> Breaker {
    Breaker::try_new(s).expect("valid settings")
}

/// Makes one call at `now` with `outcome`; returns the transition, or None if rejected.
fn call(b: &mut Breaker, now: Instant, outcome: Outcome) -> Option<Transition> {
    let admission = b.try_acquire(now).ok()?;
    b.record(admission, outcome, now)
}

fn calls(b: &mut Breaker, now: Instant, n: usize, outcome: Outcome) {
    for _ in 0..n {
        let a = b.try_acquire(now).expect("a closed breaker admits");
        b.record(a, outcome, now);
    }
}

/// Trips a breaker built from `settings()` at `now` (10 failures).
fn tripped(now: Instant) -> Breaker {
    let mut b = breaker(settings());
    for _ in 0..10 {
        call(&mut b, now, Outcome::failure(FAST));
    }
    assert_eq!(b.state(), BreakerState::Open);
    b
}

#[test]
fn default_settings_are_valid() {
    assert_eq!(BreakerSettings::default().validate(), Ok(()));
}

#[test]
fn invalid_settings_are_refused_with_the_setting_named() {
    use InvalidBreakerSettings as E;
    let with = |f: fn(&mut BreakerSettings)| {
        let mut s = settings();
        f(&mut s);
        Breaker::try_new(s).err()
    };
    assert_eq!(with(|s| s.buckets = 0), Some(E::Buckets(0)));
    assert_eq!(
        with(|s| s.buckets = MAX_BUCKETS + 1),
        Some(E::Buckets(MAX_BUCKETS + 1))
    );
    assert!(matches!(
        with(|s| s.window = Duration::from_millis(5)),
        Some(E::BucketTooShort { .. })
    ));
    assert_eq!(with(|s| s.min_calls = 0), Some(E::ZeroMinCalls));
    assert_eq!(with(|s| s.failure_ratio = 0.0), Some(E::FailureRatio(0.0)));
    assert_eq!(with(|s| s.failure_ratio = 1.5), Some(E::FailureRatio(1.5)));
    assert!(matches!(
        with(|s| s.failure_ratio = f64::NAN),
        Some(E::FailureRatio(_))
    ));
    assert_eq!(
        with(|s| s.slow_call_ratio = -0.1),
        Some(E::SlowCallRatio(-0.1))
    );
    assert_eq!(
        with(|s| s.slow_call_duration = Duration::ZERO),
        Some(E::ZeroSlowCallDuration)
    );
    assert_eq!(
        with(|s| s.open_duration = Duration::ZERO),
        Some(E::ZeroOpenDuration)
    );
    assert_eq!(
        with(|s| s.open_multiplier = 0.5),
        Some(E::OpenMultiplier(0.5))
    );
    assert!(matches!(
        with(|s| s.open_multiplier = f64::INFINITY),
        Some(E::OpenMultiplier(_))
    ));
    assert!(matches!(
        with(|s| s.max_open_duration = MS),
        Some(E::MaxOpenBelowOpen { .. })
    ));
    assert_eq!(with(|s| s.half_open_probes = 0), Some(E::ZeroProbes));
}

#[test]
fn breaker_does_not_trip_below_min_calls() {
    let now = Instant::now();
    let mut b = breaker(settings());
    for _ in 0..9 {
        assert_eq!(call(&mut b, now, Outcome::failure(FAST)), None);
    }
    assert_eq!(
        b.state(),
        BreakerState::Closed,
        "9/9 failures with min_calls 10"
    );
    assert_eq!(b.snapshot(now).window.failures, 9);
}

#[test]
fn breaker_trips_at_exactly_the_failure_ratio() {
    let now = Instant::now();
    let mut b = breaker(settings());
    calls(&mut b, now, 4, Outcome::failure(FAST));
    calls(&mut b, now, 5, Outcome::success(FAST));
    assert_eq!(b.state(), BreakerState::Closed, "4/9 and below min_calls");
    let t = call(&mut b, now, Outcome::failure(FAST)).expect("5/10 = 50 % trips");
    assert_eq!(
        (t.from, t.to, t.cause),
        (
            BreakerState::Closed,
            BreakerState::Open,
            TransitionCause::FailureRatio
        )
    );
    assert_eq!(t.at, now);
}

#[test]
fn breaker_stays_closed_just_below_the_failure_ratio() {
    let now = Instant::now();
    let mut b = breaker(BreakerSettings {
        failure_ratio: 0.3,
        ..settings()
    });
    // 0.3 is where `ratio × calls` rounding would go wrong (0.3 × 10 > 3): 2/10 stays, 3/10 trips.
    calls(&mut b, now, 8, Outcome::success(FAST));
    calls(&mut b, now, 2, Outcome::failure(FAST));
    assert_eq!(b.state(), BreakerState::Closed);
    let t = call(&mut b, now, Outcome::failure(FAST));
    assert_eq!(
        b.state(),
        BreakerState::Closed,
        "3/11 < 0.3 must not trip: {t:?}"
    );
    let mut b = breaker(BreakerSettings {
        failure_ratio: 0.3,
        ..settings()
    });
    calls(&mut b, now, 7, Outcome::success(FAST));
    calls(&mut b, now, 2, Outcome::failure(FAST));
    assert!(
        call(&mut b, now, Outcome::failure(FAST)).is_some(),
        "3/10 = 0.3 trips"
    );
}

#[test]
fn slow_calls_trip_at_exactly_the_slow_call_ratio() {
    let now = Instant::now();
    let slow = settings().slow_call_duration;
    let mut b = breaker(BreakerSettings {
        slow_call_ratio: 0.5,
        ..settings()
    });
    calls(&mut b, now, 5, Outcome::success(FAST));
    calls(&mut b, now, 4, Outcome::success(slow));
    let t = call(&mut b, now, Outcome::success(slow)).expect("5 slow of 10 trips");
    assert_eq!(t.cause, TransitionCause::SlowCallRatio);
}

#[test]
fn a_call_lasting_exactly_slow_call_duration_is_slow() {
    let now = Instant::now();
    let limit = settings().slow_call_duration;
    let mut b = breaker(settings());
    call(
        &mut b,
        now,
        Outcome::success(limit - Duration::from_nanos(1)),
    );
    assert_eq!(b.snapshot(now).window.slow_calls, 0);
    call(&mut b, now, Outcome::success(limit));
    assert_eq!(b.snapshot(now).window.slow_calls, 1);
}

#[test]
fn open_breaker_rejects_with_the_time_left() {
    let t0 = Instant::now();
    let mut b = tripped(t0);
    let r = b
        .try_acquire(t0 + Duration::from_millis(300))
        .expect_err("open rejects");
    assert_eq!(
        r,
        Rejected {
            state: BreakerState::Open,
            retry_after: Duration::from_millis(700),
            transition: None,
        }
    );
    let r = b
        .try_acquire(t0 + Duration::from_secs(1) - MS)
        .expect_err("still open");
    assert_eq!(r.retry_after, MS);
    assert_eq!(b.snapshot(t0).counters.rejected, 2);
}

#[test]
fn open_breaker_becomes_half_open_lazily_on_the_next_call() {
    let t0 = Instant::now();
    let mut b = tripped(t0);
    let later = t0 + Duration::from_secs(1);
    assert_eq!(
        b.snapshot(later).state,
        BreakerState::Open,
        "no timer moves it"
    );
    assert_eq!(b.snapshot(later).retry_after, Some(Duration::ZERO));
    let a = b
        .try_acquire(later)
        .expect("first call after the open period is a probe");
    assert!(a.is_probe());
    let t = a.transition().expect("Open → HalfOpen reported");
    assert_eq!(
        (t.from, t.to, t.cause),
        (
            BreakerState::Open,
            BreakerState::HalfOpen,
            TransitionCause::OpenPeriodElapsed
        )
    );
    assert_eq!(b.state(), BreakerState::HalfOpen);
}

#[test]
fn half_open_admits_exactly_k_probes() {
    let t0 = Instant::now();
    let mut b = tripped(t0);
    let later = t0 + Duration::from_secs(1);
    let probes: Vec<_> = (0..3)
        .map(|_| b.try_acquire(later).expect("probe admitted"))
        .collect();
    assert!(probes.iter().all(Admission::is_probe));
    let r = b
        .try_acquire(later)
        .expect_err("the 4th concurrent call is rejected");
    assert_eq!(r.state, BreakerState::HalfOpen);
    assert_eq!(
        r.retry_after,
        Duration::from_secs(2),
        "hint: the next open period"
    );
    assert_eq!(b.snapshot(later).probes_in_flight, 3);
    // Releasing a probe (no verdict) frees its slot for another.
    let mut probes = probes;
    b.release(probes.pop().expect("three probes"));
    assert!(b.try_acquire(later).is_ok());
    assert!(b.try_acquire(later).is_err());
}

#[test]
fn half_open_closes_only_when_all_probes_succeed() {
    let t0 = Instant::now();
    let mut b = tripped(t0);
    let later = t0 + Duration::from_secs(1);
    let probes: Vec<_> = (0..3)
        .map(|_| b.try_acquire(later).expect("probe"))
        .collect();
    let mut results = Vec::new();
    for p in probes {
        results.push(b.record(p, Outcome::success(FAST), later));
    }
    assert_eq!(&results[..2], &[None, None], "two successes are not enough");
    let t = results[2].expect("third success closes");
    assert_eq!(
        (t.from, t.to, t.cause),
        (
            BreakerState::HalfOpen,
            BreakerState::Closed,
            TransitionCause::ProbesSucceeded
        )
    );
    let snap = b.snapshot(later);
    assert_eq!(
        (snap.consecutive_trips, snap.window),
        (0, WindowFigures::default()),
        "fresh start"
    );
}

#[test]
fn failed_probe_reopens_with_longer_open_period() {
    let t0 = Instant::now();
    let mut b = tripped(t0);
    let t1 = t0 + Duration::from_secs(1);
    let first = b.try_acquire(t1).expect("probe");
    let second = b.try_acquire(t1).expect("probe");
    b.record(first, Outcome::success(FAST), t1);
    let t = b
        .record(second, Outcome::failure(FAST), t1)
        .expect("a failed probe reopens");
    assert_eq!(
        (t.from, t.to, t.cause),
        (
            BreakerState::HalfOpen,
            BreakerState::Open,
            TransitionCause::ProbeFailed
        )
    );
    let r = b.try_acquire(t1).expect_err("open again");
    assert_eq!(r.retry_after, Duration::from_secs(2), "1 s × 2^1");
    assert!(
        b.try_acquire(t1 + Duration::from_secs(2)).is_ok(),
        "then half-open again"
    );
}

#[test]
fn slow_probe_reopens_the_breaker() {
    let t0 = Instant::now();
    let mut b = tripped(t0);
    let t1 = t0 + Duration::from_secs(1);
    let p = b.try_acquire(t1).expect("probe");
    let t = b
        .record(p, Outcome::success(settings().slow_call_duration), t1)
        .expect("reopens");
    assert_eq!(t.cause, TransitionCause::ProbeSlow);
    assert_eq!(b.state(), BreakerState::Open);
}

#[test]
fn open_period_is_capped() {
    let s = settings();
    let periods: Vec<_> = (1..=5).map(|n| s.open_period(n).as_secs()).collect();
    assert_eq!(periods, [1, 2, 4, 5, 5]);
    assert_eq!(s.open_period(u32::MAX), s.max_open_duration, "no overflow");
    // And the breaker uses it: fail probes repeatedly and watch the period grow to the cap.
    let mut now = Instant::now();
    let mut b = tripped(now);
    for expected in [2, 4, 5, 5] {
        now += b.try_acquire(now).expect_err("open").retry_after;
        let p = b.try_acquire(now).expect("probe");
        b.record(p, Outcome::failure(FAST), now);
        assert_eq!(
            b.try_acquire(now).expect_err("reopened").retry_after,
            Duration::from_secs(expected)
        );
    }
}

#[test]
fn successful_close_resets_the_open_period() {
    let mut now = Instant::now();
    let mut b = tripped(now);
    now += Duration::from_secs(1);
    let p = b.try_acquire(now).expect("probe");
    b.record(p, Outcome::failure(FAST), now); // second trip: 2 s
    now += Duration::from_secs(2);
    let probes: Vec<_> = (0..3).map(|_| b.try_acquire(now).expect("probe")).collect();
    for p in probes {
        b.record(p, Outcome::success(FAST), now);
    }
    assert_eq!(b.state(), BreakerState::Closed);
    calls(&mut b, now, 10, Outcome::failure(FAST));
    assert_eq!(
        b.try_acquire(now).expect_err("tripped").retry_after,
        Duration::from_secs(1)
    );
}

#[test]
fn window_forgets_old_buckets() {
    let t0 = Instant::now();
    let mut b = breaker(settings());
    calls(&mut b, t0, 9, Outcome::failure(FAST));
    // 10 s later the first bucket has left the 10-bucket window entirely.
    let later = t0 + Duration::from_secs(10);
    assert_eq!(b.snapshot(later).window, WindowFigures::default());
    assert_eq!(
        call(&mut b, later, Outcome::failure(FAST)),
        None,
        "1 call in the window"
    );
    assert_eq!(b.state(), BreakerState::Closed);
    // Just before the boundary it would still have counted, and tripped.
    let mut b = breaker(settings());
    calls(&mut b, t0, 9, Outcome::failure(FAST));
    let almost = t0 + Duration::from_secs(10) - MS;
    assert!(call(&mut b, almost, Outcome::failure(FAST)).is_some());
}

#[test]
fn outcome_from_before_a_trip_is_ignored() {
    let t0 = Instant::now();
    let mut b = breaker(settings());
    let straggler = b.try_acquire(t0).expect("admitted while closed");
    calls(&mut b, t0, 10, Outcome::failure(FAST));
    assert_eq!(b.state(), BreakerState::Open);
    let t1 = t0 + Duration::from_secs(1);
    let probe = b.try_acquire(t1).expect("probe");
    // The pre-trip call finishes now, successfully: it is not a probe and must not count.
    assert_eq!(b.record(straggler, Outcome::success(FAST), t1), None);
    assert_eq!(b.snapshot(t1).counters.stale_outcomes, 1);
    assert_eq!(b.state(), BreakerState::HalfOpen);
    assert_eq!(b.snapshot(t1).probes_in_flight, 1);
    b.release(probe);
}

#[test]
fn every_transition_is_kept_in_the_bounded_history() {
    let mut now = Instant::now();
    let mut b = tripped(now); // 1: Closed → Open
    for _ in 0..2 {
        now += b.try_acquire(now).expect_err("open").retry_after;
        let p = b.try_acquire(now).expect("probe"); // HalfOpen
        b.record(p, Outcome::failure(FAST), now); // Open
    }
    let snap = b.snapshot(now);
    assert_eq!(snap.counters.transitions, 5);
    let causes: Vec<_> = snap.recent_transitions.iter().map(|t| t.cause).collect();
    use TransitionCause::{OpenPeriodElapsed as Elapsed, ProbeFailed as Failed};
    assert_eq!(
        causes,
        [Elapsed, Failed, Elapsed, Failed],
        "the last 4 of 5, oldest first"
    );
    assert!(
        snap.recent_transitions
            .windows(2)
            .all(|w| w[0].to == w[1].from),
        "a chain"
    );
}

#[test]
fn probes_that_run_for_slow_call_duration_reopen_the_breaker() {
    let t0 = Instant::now();
    let mut b = tripped(t0);
    let t1 = t0 + Duration::from_secs(1);
    // Three probes admitted and never answered (or their admissions lost).
    let probes: Vec<_> = (0..3).map(|_| b.try_acquire(t1).expect("probe")).collect();
    let slow = settings().slow_call_duration;
    let r = b.try_acquire(t1 + slow - MS).expect_err("slots taken");
    assert_eq!((r.state, r.transition), (BreakerState::HalfOpen, None));
    let r = b.try_acquire(t1 + slow).expect_err("reopened");
    assert_eq!(r.state, BreakerState::Open);
    assert_eq!(r.retry_after, Duration::from_secs(2), "second trip");
    let t = r.transition.expect("HalfOpen → Open reported");
    assert_eq!(
        (t.from, t.to, t.cause),
        (
            BreakerState::HalfOpen,
            BreakerState::Open,
            TransitionCause::ProbeSlow
        )
    );
    // When they do answer, they belong to a past generation.
    for p in probes {
        assert_eq!(b.record(p, Outcome::success(FAST), t1 + slow), None);
    }
    assert_eq!(b.snapshot(t1 + slow).counters.stale_outcomes, 3);
}
