use std::time::Duration;

use tokio::time::Instant;

use super::*;

const SEC: Duration = Duration::from_secs(1);
const MS: Duration = Duration::from_millis(1);

fn detector(len: usize, now: Instant) -> OutlierDetector {
    OutlierDetector::try_new(OutlierSettings::default(), len, now).expect("valid")
}

/// Records `n` failures on `endpoint` at `now`; returns the last event.
fn fail(d: &mut OutlierDetector, endpoint: usize, n: u32, now: Instant) -> Option<OutlierEvent> {
    (0..n).fold(None, |_, _| d.record_failure(endpoint, now))
}

#[test]
fn consecutive_failures_eject_the_endpoint() {
    let t0 = Instant::now();
    let mut d = detector(10, t0);
    assert_eq!(fail(&mut d, 3, 4, t0), None);
    assert!(!d.is_ejected(3, t0));
    let event = d.record_failure(3, t0);
    assert_eq!(
        event,
        Some(OutlierEvent::Ejected {
            endpoint: 3,
            duration: 30 * SEC,
            times: 1
        })
    );
    assert!(d.is_ejected(3, t0));
    assert_eq!(d.ejected(t0), [3]);
}

#[test]
fn a_success_resets_the_failure_count() {
    let t0 = Instant::now();
    let mut d = detector(10, t0);
    fail(&mut d, 0, 4, t0);
    d.record_success(0, t0);
    assert_eq!(
        fail(&mut d, 0, 4, t0),
        None,
        "4 + 4 failures, but not in a row"
    );
    assert!(!d.is_ejected(0, t0));
}

#[test]
fn ejected_endpoint_returns_after_its_ejection_time() {
    let t0 = Instant::now();
    let mut d = detector(10, t0);
    fail(&mut d, 1, 5, t0);
    assert!(d.is_ejected(1, t0 + 30 * SEC - MS));
    assert_eq!(
        d.snapshot(t0 + 10 * SEC).endpoints[1].ejection_left,
        Some(20 * SEC)
    );
    assert_eq!(d.refresh(t0 + 30 * SEC - MS), []);
    assert!(!d.is_ejected(1, t0 + 30 * SEC));
    assert_eq!(
        d.refresh(t0 + 30 * SEC),
        [OutlierEvent::Returned { endpoint: 1 }]
    );
    assert_eq!(d.refresh(t0 + 31 * SEC), [], "reported once");
    // It starts with a clean failure count.
    assert_eq!(fail(&mut d, 1, 4, t0 + 31 * SEC), None);
}

#[test]
fn a_return_noticed_by_a_recorded_outcome_is_still_reported() {
    let t0 = Instant::now();
    let mut d = detector(10, t0);
    fail(&mut d, 2, 5, t0);
    d.record_success(2, t0 + 40 * SEC);
    assert_eq!(
        d.refresh(t0 + 40 * SEC),
        [OutlierEvent::Returned { endpoint: 2 }]
    );
}

#[test]
fn repeated_ejections_last_longer_up_to_the_cap() {
    let mut now = Instant::now();
    let mut d = detector(10, now);
    let mut durations = Vec::new();
    for _ in 0..12 {
        if let Some(OutlierEvent::Ejected { duration, .. }) = fail(&mut d, 0, 5, now) {
            durations.push(duration.as_secs());
            now += duration; // back, and failing again at once: no time to decay
        }
    }
    assert_eq!(
        durations,
        [30, 60, 90, 120, 150, 180, 210, 240, 270, 300, 300, 300]
    );
}

#[test]
fn ejection_multiplier_decays_while_healthy() {
    let t0 = Instant::now();
    let mut d = detector(10, t0);
    fail(&mut d, 0, 5, t0); // 30 s
    let back = t0 + 30 * SEC;
    fail(&mut d, 0, 5, back); // 60 s, multiplier 2
    let back = back + 60 * SEC;
    // 10 s healthy: multiplier 2 → 1, so the next ejection is the 2nd again (60 s).
    let event = fail(&mut d, 0, 5, back + 10 * SEC);
    assert_eq!(
        event,
        Some(OutlierEvent::Ejected {
            endpoint: 0,
            duration: 60 * SEC,
            times: 2
        })
    );
    // 25 s healthy afterwards: two whole intervals, multiplier 2 → 0: back to 30 s.
    let back = back + 10 * SEC + 60 * SEC;
    let event = fail(&mut d, 0, 5, back + 25 * SEC);
    assert_eq!(
        event,
        Some(OutlierEvent::Ejected {
            endpoint: 0,
            duration: 30 * SEC,
            times: 1
        })
    );
}

#[test]
fn ejection_percent_cap_is_respected() {
    let t0 = Instant::now();
    let mut d = detector(20, t0); // 10 % of 20 = 2
    assert!(matches!(
        fail(&mut d, 0, 5, t0),
        Some(OutlierEvent::Ejected { .. })
    ));
    assert!(matches!(
        fail(&mut d, 1, 5, t0 + SEC),
        Some(OutlierEvent::Ejected { .. })
    ));
    assert_eq!(
        fail(&mut d, 2, 5, t0 + SEC),
        Some(OutlierEvent::EjectionSkipped { endpoint: 2 })
    );
    assert!(!d.is_ejected(2, t0 + SEC));
    let snap = d.snapshot(t0 + SEC);
    assert_eq!(
        (snap.ejected, snap.max_ejected, snap.skipped_total),
        (2, 2, 1)
    );
    // Once endpoint 0 is back (endpoint 1 is out until 31 s), endpoint 2's next failure ejects it.
    let later = t0 + 30 * SEC;
    assert!(matches!(
        d.record_failure(2, later),
        Some(OutlierEvent::Ejected { endpoint: 2, .. })
    ));
    assert_eq!(d.ejected(later), [1, 2]);
}

#[test]
fn with_few_endpoints_one_may_still_be_ejected() {
    // The first-host pitfall: ⌊2 × 10 / 100⌋ = 0 would make ejection impossible.
    let t0 = Instant::now();
    let mut d = detector(2, t0);
    assert!(matches!(
        fail(&mut d, 0, 5, t0),
        Some(OutlierEvent::Ejected { .. })
    ));
    assert_eq!(
        fail(&mut d, 1, 5, t0),
        Some(OutlierEvent::EjectionSkipped { endpoint: 1 })
    );
    let mut single = detector(1, t0);
    assert!(matches!(
        fail(&mut single, 0, 5, t0),
        Some(OutlierEvent::Ejected { .. })
    ));
}

#[test]
fn max_ejected_rounds_down_but_allows_at_least_one() {
    let with = |percent| OutlierSettings {
        max_ejection_percent: percent,
        ..Default::default()
    };
    let cases = [
        (10, 0, 0),
        (10, 1, 1),
        (10, 2, 1),
        (10, 19, 1),
        (10, 20, 2),
        (10, 29, 2),
        (50, 3, 1),
        (50, 4, 2),
        (100, 3, 3),
        (0, 50, 0),
    ];
    for (percent, endpoints, expected) in cases {
        assert_eq!(
            with(percent).max_ejected(endpoints),
            expected,
            "{percent} % of {endpoints}"
        );
    }
}

#[test]
fn zero_percent_disables_ejection() {
    let t0 = Instant::now();
    let s = OutlierSettings {
        max_ejection_percent: 0,
        ..Default::default()
    };
    let mut d = OutlierDetector::try_new(s, 10, t0).expect("valid");
    assert_eq!(
        fail(&mut d, 0, 5, t0),
        Some(OutlierEvent::EjectionSkipped { endpoint: 0 })
    );
}

#[test]
fn outcomes_of_calls_in_flight_to_an_ejected_endpoint_are_ignored() {
    let t0 = Instant::now();
    let mut d = detector(10, t0);
    fail(&mut d, 0, 5, t0);
    assert_eq!(fail(&mut d, 0, 20, t0 + SEC), None);
    d.record_success(0, t0 + SEC);
    let snap = d.snapshot(t0 + SEC);
    assert_eq!(
        (snap.endpoints[0].consecutive_failures, snap.ejections_total),
        (0, 1)
    );
}

#[test]
fn unknown_endpoints_are_ignored() {
    let t0 = Instant::now();
    let mut d = detector(2, t0);
    assert_eq!(fail(&mut d, 9, 10, t0), None);
    d.record_success(9, t0);
    assert!(!d.is_ejected(9, t0));
}

#[test]
fn outlier_settings_are_validated() {
    use InvalidOutlierSettings as E;
    let with = |f: fn(&mut OutlierSettings)| {
        let mut s = OutlierSettings::default();
        f(&mut s);
        s.validate().err()
    };
    assert_eq!(with(|_| {}), None);
    assert_eq!(
        with(|s| s.consecutive_failures = 0),
        Some(E::ZeroConsecutiveFailures)
    );
    assert_eq!(
        with(|s| s.base_ejection_time = Duration::ZERO),
        Some(E::ZeroBaseEjectionTime)
    );
    assert!(matches!(
        with(|s| s.max_ejection_time = SEC),
        Some(E::MaxBelowBase { .. })
    ));
    assert_eq!(
        with(|s| s.max_ejection_percent = 101),
        Some(E::Percent(101))
    );
    assert_eq!(with(|s| s.interval = Duration::ZERO), Some(E::ZeroInterval));
}
