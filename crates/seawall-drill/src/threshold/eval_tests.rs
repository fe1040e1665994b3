use std::collections::BTreeMap;

use super::*;
use crate::{
    load::record::{Outcome, Recording, Sample},
    threshold::parse::parse,
};

/// Ten seconds at 10 requests per second: 200s taking 10 ms, except seconds 3 to 5 (the
/// `fault` window) where every answer is a degraded 206 taking 2 s, and second 4 where
/// half are 503s.
fn recording() -> Recording {
    let mut r = Recording::with_seconds(10);
    for i in 0..100u64 {
        let due = Duration::from_millis(i * 100);
        let second = i / 10;
        let (status, took) = match second {
            4 if i % 2 == 0 => (503, 10),
            3..=5 => (206, 2000),
            _ => (200, 10),
        };
        r.record(&Sample {
            due,
            queued: due,
            sent: Some(due),
            done: due + Duration::from_millis(took),
            outcome: Outcome::Answered {
                status,
                error_kind: (status == 503).then(|| "circuit_open".to_owned()),
                degraded: status == 206,
            },
        });
    }
    r
}

fn windows() -> BTreeMap<String, Span> {
    BTreeMap::from([(
        "fault".to_owned(),
        Span {
            start: Duration::from_secs(3),
            end: Duration::from_secs(6),
        },
    )])
}

fn check(
    text: &str,
    breakers: &[BreakerSample],
    scrapes: &[(Duration, Scrape)],
) -> Result<Verdict, Unknown> {
    let r = recording();
    let w = windows();
    let o = Observed {
        seconds: &r.seconds,
        windows: &w,
        total: Duration::from_secs(10),
        breakers,
        scrapes,
    };
    evaluate(text, &parse(text).unwrap(), &o)
}

#[test]
fn percentiles_are_computed_over_the_named_window() {
    let v = check("p(99) < 300ms during fault", &[], &[]).unwrap();
    assert!(!v.passed);
    assert!(v.value.unwrap() > 1.9, "{v:?}");
    assert!(v.shown.starts_with("p(99) = 2."), "{}", v.shown);
    assert!(check("p(50) < 50ms after fault", &[], &[]).unwrap().passed);
    assert!(check("p(50) < 50ms before fault", &[], &[]).unwrap().passed);
}

#[test]
fn ratios_and_rates_count_over_scheduled_requests() {
    let v = check("ratio(status == 206) > 0.8 during fault", &[], &[]).unwrap();
    assert!(v.passed, "{v:?}");
    assert!((v.value.unwrap() - 25.0 / 30.0).abs() < 1e-9);
    let v = check("rate(5xx) < 1%", &[], &[]).unwrap();
    assert!(!v.passed);
    assert!((v.value.unwrap() - 0.05).abs() < 1e-9);
    assert!(
        check("count(error(circuit_open)) == 5", &[], &[])
            .unwrap()
            .passed
    );
    assert!(
        check("degraded <= 0.3 * requests", &[], &[])
            .unwrap()
            .passed
    );
}

#[test]
fn recovery_is_the_first_second_after_which_all_are_healthy() {
    let v = check("recovered within 1s after fault end", &[], &[]).unwrap();
    assert!(v.passed, "{v:?}");
    assert_eq!(v.value, Some(0.0));
}

#[test]
fn breaker_state_must_be_reached_within_the_delay() {
    let b = |at_ms, state: &str| BreakerSample {
        at: Duration::from_millis(at_ms),
        upstream: "payments".into(),
        state: state.into(),
    };
    let samples = [b(2800, "closed"), b(3000, "closed"), b(4200, "open")];
    let v = check(
        "breaker(payments) == open within 2s of fault start",
        &samples,
        &[],
    )
    .unwrap();
    assert!(v.passed);
    assert_eq!(v.value, Some(1.2));
    assert!(
        !check(
            "breaker(payments) == open within 1s of fault start",
            &samples,
            &[]
        )
        .unwrap()
        .passed
    );
}

#[test]
fn an_unknown_breaker_or_metric_is_an_error_not_a_pass() {
    let e = check("breaker(nope) == open within 2s of fault start", &[], &[]).unwrap_err();
    assert!(e.0.contains("unknown breaker `nope`"), "{e}");
    let scrape = Scrape::parse("seawall_retries_total{outcome=\"attempted\"} 1\n");
    let scrapes = [(Duration::ZERO, scrape)];
    let e = check("metric(seawall_nope) < 1", &[], &scrapes).unwrap_err();
    assert!(e.0.contains("unknown metric"), "{e}");
    let e = check(
        "metric(seawall_retries_total{outcom=\"attempted\"}) < 1",
        &[],
        &scrapes,
    )
    .unwrap_err();
    assert!(e.0.contains("unknown label `outcom`"), "{e}");
    // An unseen label value is a real 0 (a counter series appears at its first increment).
    let v = check(
        "metric(seawall_retries_total{outcome=\"budget_exhausted\"}) < 1",
        &[],
        &scrapes,
    )
    .unwrap();
    assert!(v.passed);
}

#[test]
fn counters_are_read_as_their_increase_over_the_window() {
    let s = |n: f64| {
        Scrape::parse(&format!(
            "seawall_retries_total{{outcome=\"attempted\"}} {n}\nseawall_x 7\n"
        ))
    };
    let scrapes = [
        (Duration::ZERO, s(10.0)),
        (Duration::from_secs(3), s(12.0)),
        (Duration::from_secs(6), s(40.0)),
    ];
    let v = check("retries <= 0.2 * requests during fault", &[], &scrapes).unwrap();
    assert_eq!(v.value, Some(28.0));
    assert!(!v.passed);
    assert_eq!(
        check("metric(seawall_x) == 7", &[], &scrapes)
            .unwrap()
            .value,
        Some(7.0)
    );
}
