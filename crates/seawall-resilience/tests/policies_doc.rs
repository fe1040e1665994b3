//! `docs/policies.md` states every knob's default; this checks each against the code's
//! `Default`, so the two cannot drift apart.

use std::time::Duration;

use seawall_resilience::{balance, breaker, concurrency, hedge, outlier, retry};

/// Durations as the docs write them: whole seconds as `10s`, otherwise milliseconds.
fn human(d: Duration) -> String {
    if d.subsec_nanos() == 0 {
        format!("{}s", d.as_secs())
    } else {
        format!("{}ms", d.as_millis())
    }
}

fn defaults() -> Vec<(&'static str, String)> {
    let b = breaker::BreakerSettings::default();
    let backoff = retry::Backoff::default();
    let policy = retry::RetryPolicy::default();
    let budget = retry::RetryBudgetSettings::default();
    let ewma = balance::PeakEwmaSettings::default();
    let o = outlier::OutlierSettings::default();
    let bulk = concurrency::BulkheadSettings::default();
    let g = concurrency::GradientSettings::default();
    let h = hedge::HedgeSettings::default();
    vec![
        ("window", human(b.window)),
        ("buckets", b.buckets.to_string()),
        ("min_calls", b.min_calls.to_string()),
        ("failure_ratio", format!("{:?}", b.failure_ratio)),
        ("slow_call_duration", human(b.slow_call_duration)),
        ("slow_call_ratio", format!("{:?}", b.slow_call_ratio)),
        ("open_duration", human(b.open_duration)),
        ("open_multiplier", format!("{:?}", b.open_multiplier)),
        ("max_open_duration", human(b.max_open_duration)),
        ("half_open_probes", b.half_open_probes.to_string()),
        ("transition_history", b.transition_history.to_string()),
        ("max_attempts", policy.max_attempts().to_string()),
        ("base", human(backoff.base())),
        ("max", human(backoff.max())),
        ("multiplier", format!("{:?}", backoff.multiplier())),
        ("max_retry_after", human(backoff.max_retry_after())),
        ("ttl", human(budget.ttl)),
        (
            "min_retries_per_second",
            budget.min_retries_per_second.to_string(),
        ),
        ("ratio", format!("{:?}", budget.ratio)),
        ("decay", human(ewma.decay)),
        ("default_rtt", human(ewma.default_rtt)),
        ("consecutive_failures", o.consecutive_failures.to_string()),
        ("base_ejection_time", human(o.base_ejection_time)),
        ("max_ejection_time", human(o.max_ejection_time)),
        ("max_ejection_percent", o.max_ejection_percent.to_string()),
        ("interval", human(o.interval)),
        ("max_concurrent", bulk.max_concurrent.to_string()),
        ("max_pending", bulk.max_pending.to_string()),
        ("initial_limit", g.initial_limit.to_string()),
        ("min_limit", g.min_limit.to_string()),
        ("max_limit", g.max_limit.to_string()),
        ("smoothing", format!("{:?}", g.smoothing)),
        ("queue_size", g.queue_size.to_string()),
        ("long_window", g.long_window.to_string()),
        ("warmup", g.warmup.to_string()),
        ("max_extra", h.max_extra.to_string()),
    ]
}

#[test]
fn policies_doc_states_every_default_as_the_code_has_it() {
    let doc = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../docs/policies.md"
    ))
    .expect("docs/policies.md exists");
    for (knob, default) in defaults() {
        let row = format!("| `{knob}` | {default} |");
        assert!(
            doc.contains(&row),
            "docs/policies.md has no row `{row}` (the code's default for `{knob}`)"
        );
    }
}
