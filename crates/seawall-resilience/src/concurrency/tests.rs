use std::time::Duration;

use super::*;

const MS: Duration = Duration::from_millis(1);

fn bulkhead(max_concurrent: u32, max_pending: u32) -> Bulkhead {
    Bulkhead::try_new(BulkheadSettings {
        max_concurrent,
        max_pending,
    })
    .expect("valid")
}

fn limiter(initial_limit: u32, min_limit: u32, max_limit: u32) -> GradientLimiter {
    GradientLimiter::try_new(GradientSettings {
        initial_limit,
        min_limit,
        max_limit,
        ..Default::default()
    })
    .expect("valid")
}

/// Feeds `n` samples of `rtt` with the limiter saturated; returns the limit after each.
fn saturated(l: &mut GradientLimiter, rtt: Duration, n: usize) -> Vec<u32> {
    (0..n)
        .map(|_| {
            l.on_sample(rtt, l.limit());
            l.limit()
        })
        .collect()
}

#[test]
fn bulkhead_runs_then_queues_then_rejects() {
    let mut b = bulkhead(2, 1);
    let decisions: Vec<_> = (0..4).map(|_| b.admit()).collect();
    assert_eq!(
        decisions,
        [Admit::Run, Admit::Run, Admit::Queue, Admit::Reject]
    );
    assert!(!b.promote(), "no free slot yet");
    b.finish();
    assert!(b.promote());
    let s = b.snapshot();
    assert_eq!(
        (
            s.active,
            s.pending,
            s.admitted_total,
            s.queued_total,
            s.rejected_total
        ),
        (2, 0, 3, 1, 1)
    );
    assert!(!b.promote(), "nobody waiting");
}

#[test]
fn new_arrivals_do_not_overtake_waiters() {
    let mut b = bulkhead(1, 2);
    assert_eq!(b.admit(), Admit::Run);
    assert_eq!(b.admit(), Admit::Queue);
    b.finish();
    assert_eq!(
        b.admit(),
        Admit::Queue,
        "a slot is free, but someone was waiting first"
    );
    assert!(b.promote());
    b.abandon();
    let s = b.snapshot();
    assert_eq!((s.active, s.pending, s.abandoned_total), (1, 0, 1));
    b.abandon(); // nothing pending: no underflow
    b.finish();
    b.finish();
    assert_eq!(b.snapshot().active, 0);
}

#[test]
fn a_lowered_limit_lets_running_requests_finish_first() {
    let mut b = bulkhead(2, 4);
    assert_eq!((b.admit(), b.admit()), (Admit::Run, Admit::Run));
    b.set_max_concurrent(1);
    assert_eq!(b.admit(), Admit::Queue);
    b.finish();
    assert!(!b.promote(), "still at the new limit of 1");
    b.finish();
    assert!(b.promote());
    b.set_max_concurrent(0);
    assert_eq!(b.snapshot().max_concurrent, 1, "clamped");
}

#[test]
fn bulkhead_with_no_slots_is_refused() {
    let s = BulkheadSettings {
        max_concurrent: 0,
        max_pending: 10,
    };
    assert_eq!(
        Bulkhead::try_new(s).err(),
        Some(InvalidBulkhead::ZeroMaxConcurrent)
    );
    assert!(Bulkhead::try_new(BulkheadSettings::default()).is_ok());
}

#[test]
fn gradient_follows_the_gradient2_formula() {
    let mut l = limiter(20, 1, 200);
    l.on_sample(10 * MS, 20);
    // Warm-up average 10 ms; gradient 1: 0.8 × 20 + 0.2 × (20 + 4) = 20.8.
    assert_eq!(l.limit(), 20);
    assert_eq!(l.snapshot().gradient, 1.0);
    l.on_sample(20 * MS, 20);
    // Average 15 ms; gradient 0.75: 0.8 × 20.8 + 0.2 × (20.8 × 0.75 + 4) = 20.56.
    let s = l.snapshot();
    assert_eq!(s.gradient, 0.75);
    assert_eq!(s.long_rtt, 15 * MS);
    l.on_sample(200 * MS, 20);
    // Average 76.67 ms; gradient 0.383 clamps to 0.5: 0.8 × 20.56 + 0.2 × (10.28 + 4) = 19.304.
    assert_eq!(l.snapshot().gradient, 0.5);
    assert_eq!(l.limit(), 19);
}

#[test]
fn gradient_limit_grows_towards_max_at_steady_latency() {
    let mut l = limiter(20, 20, 200);
    let limits = saturated(&mut l, 10 * MS, 300);
    // Each sample adds queue_size × smoothing = 0.8: 20.8, 21.6, 22.4, 23.2, 24.0, …
    assert_eq!(&limits[..5], &[20, 21, 22, 23, 24]);
    assert!(limits.windows(2).all(|w| w[0] <= w[1]));
    assert_eq!(limits.last(), Some(&200), "capped at max_limit");
}

#[test]
fn gradient_limit_falls_when_latency_doubles_but_not_below_floor() {
    let mut l = limiter(100, 50, 200);
    saturated(&mut l, 10 * MS, 1000);
    assert_eq!(l.limit(), 200);
    let limits = saturated(&mut l, 20 * MS, 200);
    // It falls at once and steadily: each step at most to ~90 % (gradient ≥ 0.5).
    assert!(limits[0] < 200 && limits[0] >= 180, "{}", limits[0]);
    assert!(
        limits[..10].windows(2).all(|w| w[1] < w[0]),
        "{:?}",
        &limits[..10]
    );
    // Unclamped it would head for ~10 (4 / (1 − gradient)); the floor holds it at 50.
    assert!(limits.iter().all(|&x| x >= 50), "{limits:?}");
    assert!(
        limits[30..].iter().all(|&x| x == 50),
        "pinned at the floor: {limits:?}"
    );
}

#[test]
fn gradient_limit_recovers_when_latency_returns_to_baseline() {
    let mut l = limiter(100, 50, 200);
    saturated(&mut l, 10 * MS, 1000);
    saturated(&mut l, 20 * MS, 200);
    assert_eq!(l.limit(), 50);
    let limits = saturated(&mut l, 10 * MS, 400);
    assert!(
        limits.windows(2).all(|w| w[0] <= w[1]),
        "recovery never steps back"
    );
    assert_eq!(
        &limits[..3],
        &[50, 51, 52],
        "+0.8 per sample from the first one"
    );
    assert_eq!(limits.last(), Some(&200), "back to max_limit");
}

#[test]
fn app_limited_samples_do_not_change_the_limit() {
    let mut l = limiter(100, 10, 200);
    for _ in 0..50 {
        l.on_sample(10 * MS, 10); // 10 in flight, < 100 / 2
    }
    for _ in 0..50 {
        l.on_sample(500 * MS, 49);
    }
    assert_eq!(l.limit(), 100);
    assert_eq!(l.snapshot().samples, 100);
}

#[test]
fn a_drop_takes_the_steepest_step_down() {
    let mut l = limiter(100, 10, 200);
    l.on_drop();
    // 0.8 × 100 + 0.2 × (100 × 0.5 + 4) = 90.8
    assert_eq!(l.limit(), 90);
    for _ in 0..100 {
        l.on_drop();
    }
    assert_eq!(l.limit(), 10);
    assert!(!l.admits(10) && l.admits(9));
}

#[test]
fn a_zero_rtt_does_not_break_the_limiter() {
    let mut l = limiter(100, 10, 200);
    l.on_sample(Duration::ZERO, 100);
    l.on_sample(Duration::MAX, 100);
    let limit = l.limit();
    assert!((10..=200).contains(&limit), "{limit}");
}

#[test]
fn gradient_settings_are_validated() {
    let with = |f: fn(&mut GradientSettings)| {
        let mut s = GradientSettings::default();
        f(&mut s);
        GradientLimiter::try_new(s).err()
    };
    assert_eq!(with(|_| {}), None);
    assert_eq!(
        with(|s| s.min_limit = 0),
        Some(InvalidGradient::ZeroMinLimit)
    );
    assert_eq!(
        with(|s| s.initial_limit = 300),
        Some(InvalidGradient::LimitOrder {
            min: 20,
            initial: 300,
            max: 200
        })
    );
    assert_eq!(
        with(|s| s.smoothing = 0.0),
        Some(InvalidGradient::Smoothing(0.0))
    );
    assert!(matches!(
        with(|s| s.smoothing = f64::NAN),
        Some(InvalidGradient::Smoothing(_))
    ));
    assert_eq!(
        with(|s| s.long_window = 0),
        Some(InvalidGradient::ZeroLongWindow)
    );
}
