//! What the load measured, per second of due time: counts by status, class and error kind,
//! and HDR latency histograms per status class and `seawall-error` kind.
//!
//! Requests are filed under the second they were *due*, and latency runs from the due time
//! to the end of the response, so a stall shows in the seconds it delayed (coordinated
//! omission corrected) rather than vanishing because nothing was sent.

use std::{collections::BTreeMap, time::Duration};

use hdrhistogram::Histogram;

/// Requests sent later than this after their due time are counted late.
pub const LATE_AFTER: Duration = Duration::from_millis(10);

/// How one scheduled request ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// An answer (any status).
    Answered {
        /// The status code.
        status: u16,
        /// The `seawall-error` header, when present.
        error_kind: Option<String>,
        /// Whether it carried `seawall-degraded`.
        degraded: bool,
    },
    /// No answer: `connect`, `timeout`, `reset`, `protocol`.
    Failed(&'static str),
    /// Never sent: the backlog was full, or the run ended first.
    Dropped,
}

/// One scheduled request's timing, as offsets from the start of the load.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sample {
    /// When it was due.
    pub due: Duration,
    /// When the generator took it off the schedule (its own lag is this minus `due`).
    pub queued: Duration,
    /// When it was handed to a connection; `None` if never.
    pub sent: Option<Duration>,
    /// When it ended (the response body's end, the error, or the drop).
    pub done: Duration,
    /// How it ended.
    pub outcome: Outcome,
}

/// One second of the run (by due time).
#[derive(Debug, Clone, Default)]
pub struct Second {
    /// Requests due in this second.
    pub scheduled: u64,
    /// Of those, sent more than [`LATE_AFTER`] after their due time.
    pub late: u64,
    /// Never sent.
    pub dropped: u64,
    /// Answered, by status code.
    pub statuses: BTreeMap<u16, u64>,
    /// Answered with `seawall-error`, by kind; plus failures without an answer, by kind.
    pub kinds: BTreeMap<String, u64>,
    /// Failed without an answer.
    pub failed: u64,
    /// Answered with `seawall-degraded`.
    pub degraded: u64,
    /// Latency (µs, due to done) by `1xx`..`5xx` and `error`, and by `kind:NAME`.
    pub latency: BTreeMap<String, Histogram<u64>>,
    /// The generator's own lag (µs, due to taken off the schedule): the largest.
    pub generator_lag_max_us: u64,
    /// Due to sent (µs): generator lag plus waiting for a free connection; the largest.
    pub send_delay_max_us: u64,
}

/// A latency histogram: 1 µs to 1 h at 2 significant digits (1 % resolution), about
/// 30 KiB, so a histogram per class per second stays a few MiB for a long drill.
pub fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 3_600_000_000, 2).expect("constant bounds are valid")
}

fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

impl Second {
    /// Answered with a status in class `class` (5 for 5xx).
    pub fn class(&self, class: u16) -> u64 {
        self.statuses
            .iter()
            .filter(|(s, _)| **s / 100 == class)
            .map(|(_, n)| n)
            .sum()
    }

    /// Answered at all.
    pub fn answered(&self) -> u64 {
        self.statuses.values().sum()
    }

    /// Every latency of the second's classes (not the per-kind copies), merged.
    pub fn merged_latency(&self) -> Histogram<u64> {
        let mut all = histogram();
        for (key, h) in &self.latency {
            if !key.starts_with("kind:") {
                let _ = all.add(h);
            }
        }
        all
    }

    fn record(&mut self, s: &Sample) {
        self.scheduled += 1;
        self.generator_lag_max_us = self
            .generator_lag_max_us
            .max(micros(s.queued.saturating_sub(s.due)));
        if let Some(sent) = s.sent {
            let delay = sent.saturating_sub(s.due);
            self.send_delay_max_us = self.send_delay_max_us.max(micros(delay));
            if delay > LATE_AFTER {
                self.late += 1;
            }
        }
        let latency = micros(s.done.saturating_sub(s.due)).max(1);
        let (class, kind) = match &s.outcome {
            Outcome::Dropped => {
                self.dropped += 1;
                return;
            }
            Outcome::Failed(kind) => {
                self.failed += 1;
                *self.kinds.entry((*kind).to_owned()).or_default() += 1;
                ("error".to_owned(), Some((*kind).to_owned()))
            }
            Outcome::Answered {
                status,
                error_kind,
                degraded,
            } => {
                *self.statuses.entry(*status).or_default() += 1;
                self.degraded += u64::from(*degraded);
                if let Some(k) = error_kind {
                    *self.kinds.entry(k.clone()).or_default() += 1;
                }
                (format!("{}xx", status / 100), error_kind.clone())
            }
        };
        self.latency
            .entry(class)
            .or_insert_with(histogram)
            .saturating_record(latency);
        if let Some(k) = kind {
            self.latency
                .entry(format!("kind:{k}"))
                .or_insert_with(histogram)
                .saturating_record(latency);
        }
    }
}

/// Every second of the run.
#[derive(Debug, Clone, Default)]
pub struct Recording {
    /// Second `i` holds the requests due in `[i, i + 1)` seconds after the start.
    pub seconds: Vec<Second>,
}

impl Recording {
    /// A recording with room for `seconds` seconds.
    pub fn with_seconds(seconds: usize) -> Self {
        Self {
            seconds: vec![Second::default(); seconds],
        }
    }

    /// Files one sample under its due second.
    pub fn record(&mut self, s: &Sample) {
        let i = usize::try_from(s.due.as_secs()).unwrap_or(usize::MAX);
        if i >= self.seconds.len() {
            if i > 100_000 {
                return;
            }
            self.seconds.resize(i + 1, Second::default());
        }
        self.seconds[i].record(s);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answered(due_ms: u64, done_ms: u64, status: u16) -> Sample {
        Sample {
            due: Duration::from_millis(due_ms),
            queued: Duration::from_millis(due_ms),
            sent: Some(Duration::from_millis(due_ms)),
            done: Duration::from_millis(done_ms),
            outcome: Outcome::Answered {
                status,
                error_kind: (status >= 500).then(|| "circuit_open".to_owned()),
                degraded: status == 206,
            },
        }
    }

    #[test]
    fn samples_are_filed_by_due_second_with_latency_from_due() {
        let mut r = Recording::with_seconds(2);
        r.record(&answered(100, 2100, 200));
        r.record(&answered(1500, 1510, 503));
        r.record(&answered(1600, 1610, 206));
        assert_eq!(r.seconds[0].scheduled, 1);
        let p = r.seconds[0].merged_latency().value_at_quantile(0.99);
        assert!((1_990_000..=2_010_000).contains(&p), "{p}");
        assert_eq!(r.seconds[1].class(5), 1);
        assert_eq!(r.seconds[1].degraded, 1);
        assert_eq!(r.seconds[1].kinds.get("circuit_open"), Some(&1));
        assert!(r.seconds[1].latency.contains_key("kind:circuit_open"));
    }

    #[test]
    fn late_and_dropped_requests_are_counted() {
        let mut r = Recording::with_seconds(1);
        let mut late = answered(0, 600, 200);
        late.sent = Some(Duration::from_millis(500));
        r.record(&late);
        r.record(&Sample {
            sent: None,
            outcome: Outcome::Dropped,
            ..answered(10, 10, 200)
        });
        assert_eq!(r.seconds[0].late, 1);
        assert_eq!(r.seconds[0].dropped, 1);
        assert_eq!(r.seconds[0].send_delay_max_us, 500_000);
    }
}
