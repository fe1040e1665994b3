use std::time::Duration;

use http::Method;
use seawall_core::ErrorKind;
use tokio::time::Instant;

use super::*;
use crate::classify::ErrorClassifier;

const MS: Duration = Duration::from_millis(1);

fn budget(s: RetryBudgetSettings) -> RetryBudget {
    RetryBudget::try_new(s).expect("valid budget")
}

#[test]
fn backoff_stays_within_jitter_bounds() {
    let b = Backoff::default();
    let mut rng = fastrand::Rng::with_seed(7);
    for attempt in 0..12 {
        let ceiling = b.ceiling(attempt);
        let n = 2_000;
        let mut sum = Duration::ZERO;
        for _ in 0..n {
            let d = b.delay(attempt, rng.f64());
            assert!(d <= ceiling, "attempt {attempt}: {d:?} > {ceiling:?}");
            sum += d;
        }
        // Full jitter is uniform on [0, ceiling): its mean is half the ceiling.
        let mean = (sum / n).as_secs_f64();
        let half = ceiling.as_secs_f64() / 2.0;
        assert!(
            (mean - half).abs() < 0.05 * half,
            "attempt {attempt}: mean {mean} vs {half}"
        );
    }
    // Out-of-range randomness cannot escape the bounds.
    assert_eq!(b.delay(3, f64::NAN), Duration::ZERO);
    assert_eq!(b.delay(3, -1.0), Duration::ZERO);
    assert_eq!(b.delay(3, 7.0), b.ceiling(3));
}

#[test]
fn backoff_ceiling_grows_exponentially_up_to_max() {
    let b = Backoff::default();
    let ceilings: Vec<_> = (0..6).map(|n| b.ceiling(n).as_millis()).collect();
    assert_eq!(ceilings, [25, 50, 100, 200, 250, 250]);
    assert_eq!(b.ceiling(u32::MAX), b.max(), "no overflow");
}

#[test]
fn backoff_honours_a_longer_retry_after_up_to_its_cap() {
    let b = Backoff::try_new(10 * MS, 100 * MS, 2.0, Duration::from_secs(2)).expect("valid");
    assert_eq!(b.delay_honouring(0, 0.5, None), 5 * MS);
    assert_eq!(
        b.delay_honouring(0, 0.5, Some(MS)),
        5 * MS,
        "shorter: jitter wins"
    );
    assert_eq!(
        b.delay_honouring(0, 0.5, Some(Duration::from_secs(1))),
        Duration::from_secs(1)
    );
    assert_eq!(
        b.delay_honouring(0, 0.5, Some(Duration::from_secs(60))),
        Duration::from_secs(2)
    );
}

#[test]
fn backoff_rejects_invalid_settings() {
    let s = Duration::from_secs(1);
    assert_eq!(
        Backoff::try_new(Duration::ZERO, s, 2.0, s),
        Err(InvalidBackoff::ZeroBase)
    );
    assert_eq!(
        Backoff::try_new(s, MS, 2.0, s),
        Err(InvalidBackoff::MaxBelowBase { base: s, max: MS })
    );
    assert_eq!(
        Backoff::try_new(MS, s, 0.9, s),
        Err(InvalidBackoff::Multiplier(0.9))
    );
    assert!(Backoff::try_new(MS, s, f64::NAN, s).is_err());
}

#[test]
fn retry_budget_with_no_requests_allows_exactly_the_reserve() {
    let now = Instant::now();
    let mut b = budget(RetryBudgetSettings::default()); // 10 s × 10/s = 100
    let allowed = (0..150).filter(|_| b.try_withdraw(now)).count();
    assert_eq!(allowed, 100);
    let snap = b.snapshot(now);
    assert_eq!(
        (snap.retries, snap.available, snap.refused_total),
        (100, 0, 50)
    );
}

#[test]
fn retry_budget_grows_by_the_ratio_of_requests() {
    let now = Instant::now();
    let mut b = budget(RetryBudgetSettings::default());
    for _ in 0..1000 {
        b.deposit(now);
    }
    assert_eq!(b.snapshot(now).available, 300, "reserve 100 + 20 % of 1000");
    let allowed = (0..1000).filter(|_| b.try_withdraw(now)).count();
    assert_eq!(allowed, 300);
    // An awkward ratio whose product rounds below the integer still allows it exactly.
    let mut b = budget(RetryBudgetSettings {
        ratio: 0.1,
        min_retries_per_second: 0,
        ..Default::default()
    });
    for _ in 0..30 {
        b.deposit(now);
    }
    assert_eq!((0..10).filter(|_| b.try_withdraw(now)).count(), 3);
}

#[test]
fn retry_budget_forgets_requests_and_retries_older_than_ttl() {
    let t0 = Instant::now();
    let s = RetryBudgetSettings {
        min_retries_per_second: 0,
        ..Default::default()
    };
    let mut b = budget(s);
    for _ in 0..100 {
        b.deposit(t0);
    }
    assert_eq!((0..50).filter(|_| b.try_withdraw(t0)).count(), 20);
    let before = t0 + Duration::from_secs(10) - MS;
    assert!(!b.try_withdraw(before), "still spent");
    let after = t0 + Duration::from_secs(10);
    assert_eq!(b.snapshot(after).requests, 0);
    assert_eq!(b.snapshot(after).retries, 0);
    assert!(!b.try_withdraw(after), "no requests, no reserve: nothing");
}

#[test]
fn retry_budget_never_exceeds_ratio_plus_floor() {
    let s = RetryBudgetSettings {
        ttl: Duration::from_secs(2),
        min_retries_per_second: 3,
        ratio: 0.25,
    };
    let reserve = 6.0;
    let bucket = s.ttl / 10;
    let mut b = budget(s);
    let mut rng = fastrand::Rng::with_seed(0x5ea_a11);
    let base = Instant::now();
    let mut now = base;
    // (time, is_retry) of every deposit and every allowed retry.
    let mut log: std::collections::VecDeque<(Instant, bool)> = Default::default();
    let (mut allowed, mut refused) = (0, 0);
    for _ in 0..20_000 {
        now += Duration::from_micros(rng.u64(0..2_000));
        // Bursts of failures: phases where most events are retry attempts.
        let retry_heavy = (now - base).as_secs().is_multiple_of(3);
        if rng.f64() < if retry_heavy { 0.8 } else { 0.2 } {
            if b.try_withdraw(now) {
                allowed += 1;
                log.push_back((now, true));
                // The window the budget sees at `now` lies between (now − ttl + bucket, now]
                // and (now − ttl, now]: count retries in the shorter and requests in the
                // longer one, so the check holds whatever the bucket alignment.
                let retries = log
                    .iter()
                    .filter(|(t, r)| *r && now - *t < s.ttl - bucket)
                    .count();
                let requests = log.iter().filter(|(t, r)| !*r && now - *t < s.ttl).count();
                let bound = s.ratio * requests as f64 + reserve;
                assert!(
                    retries as f64 <= bound + 1e-9,
                    "{retries} retries > {bound} at {:?}",
                    now - base
                );
            } else {
                refused += 1;
            }
        } else {
            b.deposit(now);
            log.push_back((now, false));
            while log.front().is_some_and(|(t, _)| now - *t >= s.ttl) {
                log.pop_front();
            }
        }
    }
    assert!(
        allowed > 1_000 && refused > 1_000,
        "both sides exercised: {allowed} / {refused}"
    );
}

#[test]
fn retry_budget_rejects_invalid_settings() {
    let with = |ttl, ratio| {
        RetryBudget::try_new(RetryBudgetSettings {
            ttl,
            ratio,
            min_retries_per_second: 1,
        })
        .err()
    };
    let s = Duration::from_secs(1);
    assert_eq!(
        with(Duration::from_millis(999), 0.2),
        Some(InvalidRetryBudget::Ttl(Duration::from_millis(999)))
    );
    assert_eq!(
        with(Duration::from_secs(61), 0.2),
        Some(InvalidRetryBudget::Ttl(Duration::from_secs(61)))
    );
    assert_eq!(with(s, -0.1), Some(InvalidRetryBudget::Ratio(-0.1)));
    assert!(with(s, f64::INFINITY).is_some());
    assert_eq!(with(s, 0.0), None, "a zero ratio (reserve only) is valid");
}

#[test]
fn retry_is_refused_when_it_cannot_finish_before_the_deadline() {
    let p = RetryPolicy::default(); // backoff 25 ms ceiling on the first retry
    let now = Instant::now();
    let deadline = now + 100 * MS;
    // rand 0.4 → 10 ms backoff; 10 + 80 < 100: fits.
    assert_eq!(
        p.next_try(1, now, deadline, 80 * MS, None, 0.4),
        Decision::Retry { after: 10 * MS }
    );
    // 10 + 90 = 100: would finish exactly at the deadline, which is too late.
    assert_eq!(
        p.next_try(1, now, deadline, 90 * MS, None, 0.4),
        Decision::GiveUp {
            reason: GiveUpReason::DeadlineTooClose {
                needed: 100 * MS,
                left: 100 * MS
            }
        }
    );
    // A deadline already passed never retries, and huge inputs do not overflow.
    let later = deadline + MS;
    assert!(matches!(
        p.next_try(1, later, deadline, Duration::ZERO, None, 0.0),
        Decision::GiveUp { .. }
    ));
    assert!(matches!(
        p.next_try(1, now, deadline, Duration::MAX, None, 0.0),
        Decision::GiveUp { .. }
    ));
}

#[test]
fn retry_after_that_overruns_the_deadline_gives_up() {
    let p = RetryPolicy::default();
    let now = Instant::now();
    let deadline = now + Duration::from_secs(1);
    let d = p.next_try(1, now, deadline, 10 * MS, Some(Duration::from_secs(2)), 0.0);
    let Decision::GiveUp { reason } = d else {
        panic!("a 2 s Retry-After cannot fit a 1 s deadline: {d:?}");
    };
    assert_eq!(reason.as_str(), "deadline_too_close");
    let d = p.next_try(1, now, deadline, 10 * MS, Some(500 * MS), 0.0);
    assert_eq!(d, Decision::Retry { after: 500 * MS });
}

#[test]
fn retries_stop_after_max_attempts() {
    let p = RetryPolicy::try_new(3, ErrorClassifier::retryable(), None, Backoff::default())
        .expect("valid");
    let now = Instant::now();
    let deadline = now + Duration::from_secs(30);
    for made in 1..3 {
        assert!(matches!(
            p.next_try(made, now, deadline, MS, None, 0.9),
            Decision::Retry { .. }
        ));
    }
    assert_eq!(
        p.next_try(3, now, deadline, MS, None, 0.9),
        Decision::GiveUp {
            reason: GiveUpReason::AttemptsExhausted
        }
    );
}

#[test]
fn later_retries_wait_longer() {
    let p = RetryPolicy::try_new(5, ErrorClassifier::retryable(), None, Backoff::default())
        .expect("valid");
    let now = Instant::now();
    let deadline = now + Duration::from_secs(30);
    let waits: Vec<_> = (1..5)
        .map(
            |made| match p.next_try(made, now, deadline, MS, None, 0.5) {
                Decision::Retry { after } => after.as_micros(),
                Decision::GiveUp { reason } => panic!("gave up: {reason:?}"),
            },
        )
        .collect();
    assert_eq!(waits, [12_500, 25_000, 50_000, 100_000]);
}

#[test]
fn only_idempotent_methods_are_retried_unless_opted_in() {
    for m in [
        Method::GET,
        Method::HEAD,
        Method::OPTIONS,
        Method::TRACE,
        Method::PUT,
        Method::DELETE,
    ] {
        assert!(RetryPolicy::may_retry(&m, false), "{m}");
    }
    for m in [Method::POST, Method::PATCH, Method::CONNECT] {
        assert!(!RetryPolicy::may_retry(&m, false), "{m}");
        assert!(RetryPolicy::may_retry(&m, true), "{m} opted in");
    }
}

#[test]
fn retry_on_decides_which_failures_are_retried() {
    let p = RetryPolicy::default();
    assert!(p.is_retryable(503, None));
    assert!(!p.is_retryable(500, None));
    assert!(p.is_retryable(502, Some(ErrorKind::ConnectError)));
    assert!(!p.is_retryable(504, Some(ErrorKind::DeadlineExceeded)));
}

#[test]
fn per_try_deadline_is_the_earlier_of_timeout_and_deadline() {
    let now = Instant::now();
    let p = RetryPolicy::try_new(
        2,
        ErrorClassifier::retryable(),
        Some(100 * MS),
        Backoff::default(),
    )
    .expect("valid");
    assert_eq!(
        p.try_deadline(now, now + Duration::from_secs(1)),
        now + 100 * MS
    );
    assert_eq!(p.try_deadline(now, now + 50 * MS), now + 50 * MS);
    assert_eq!(
        RetryPolicy::default().try_deadline(now, now + 50 * MS),
        now + 50 * MS
    );
}

#[test]
fn retry_policy_rejects_invalid_settings() {
    let c = ErrorClassifier::retryable;
    let b = Backoff::default();
    assert_eq!(
        RetryPolicy::try_new(0, c(), None, b),
        Err(InvalidRetryPolicy::MaxAttempts(0))
    );
    assert_eq!(
        RetryPolicy::try_new(MAX_ATTEMPTS + 1, c(), None, b),
        Err(InvalidRetryPolicy::MaxAttempts(MAX_ATTEMPTS + 1))
    );
    assert_eq!(
        RetryPolicy::try_new(2, c(), Some(Duration::ZERO), b),
        Err(InvalidRetryPolicy::ZeroPerTryTimeout)
    );
}

#[test]
fn min_try_is_the_least_recent_successful_try() {
    let t0 = Instant::now();
    let window = Duration::from_secs(60);
    let mut m = MinTry::new(window, t0);
    assert_eq!(m.get(t0), Duration::ZERO, "nothing known: no constraint");
    m.record(t0, 800 * MS);
    m.record(t0, 900 * MS);
    assert_eq!(m.get(t0), 800 * MS);
    m.record(t0 + MS, 300 * MS);
    assert_eq!(m.get(t0 + MS), 300 * MS, "a faster answer shows at once");
    // Samples age out of the window...
    assert_eq!(m.get(t0 + window + MS), Duration::ZERO);
    // ...and are pushed out by newer ones.
    for i in 0..MinTry::SAMPLES as u32 {
        m.record(t0 + window / 2 + i * MS, 700 * MS);
    }
    assert_eq!(m.get(t0 + window / 2 + 20 * MS), 700 * MS);
}
