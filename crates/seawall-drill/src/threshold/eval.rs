//! Thresholds evaluated over what a run observed: per-second load figures, breaker states
//! polled from the admin API, `/metrics` scrapes, and the windows (phases and actions).
//!
//! Pure: everything comes in as data with offsets from the start of the load, so every rule
//! is tested without sockets or clocks. Something a rule names that the run never saw (a
//! metric, a breaker) is an [`Unknown`] error, never a pass.

use std::{collections::BTreeMap, time::Duration};

use serde::Serialize;

use super::parse::{Edge, Operand, Pred, Rule, Stat, Term, WindowRef};
use crate::{
    load::record::{Second, histogram},
    metrics::{Scrape, is_counter},
};

/// A span of the run, as offsets from the start of the load.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Span {
    /// Where it starts.
    #[serde(with = "secs")]
    pub start: Duration,
    /// Where it ends.
    #[serde(with = "secs")]
    pub end: Duration,
}

mod secs {
    use std::time::Duration;

    pub(super) fn serialize<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_f64(d.as_secs_f64())
    }
}

/// One reading of a breaker's state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BreakerSample {
    /// When it was read.
    #[serde(with = "secs")]
    pub at: Duration,
    /// The upstream.
    pub upstream: String,
    /// `closed`, `open` or `half_open`.
    pub state: String,
}

/// What a run observed.
#[derive(Debug, Clone, Copy)]
pub struct Observed<'a> {
    /// Per second of due time.
    pub seconds: &'a [Second],
    /// Phase and action windows by name.
    pub windows: &'a BTreeMap<String, Span>,
    /// The load's length.
    pub total: Duration,
    /// Breaker readings, in time order.
    pub breakers: &'a [BreakerSample],
    /// `/metrics` scrapes, in time order.
    pub scrapes: &'a [(Duration, Scrape)],
}

/// A threshold's result.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Verdict {
    /// The threshold as written.
    pub threshold: String,
    /// Whether it held.
    pub passed: bool,
    /// The measured value, in base units (seconds, ratio, count); `None` when there was
    /// nothing to measure.
    pub value: Option<f64>,
    /// The measured value for people, e.g. `p(99) = 2.01s`.
    pub shown: String,
}

/// A rule names something the run never observed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Unknown(pub String);

/// Evaluates `rule` (written as `text`).
pub fn evaluate(text: &str, rule: &Rule, o: &Observed<'_>) -> Result<Verdict, Unknown> {
    match rule {
        Rule::Compare {
            left,
            op,
            right,
            window,
        } => {
            let span = span(window, o)?;
            let l = operand(left, span, o)?;
            let r = operand(right, span, o)?;
            let (passed, value) = match (l, r) {
                (Some(a), Some(b)) => (op.holds(a, b), Some(a)),
                _ => (false, l),
            };
            let shown = match value {
                Some(v) => format!("{} = {}", describe(left), render(left, v)),
                None => format!("{}: no requests in the window", describe(left)),
            };
            Ok(Verdict {
                threshold: text.to_owned(),
                passed,
                value,
                shown,
            })
        }
        Rule::Breaker {
            upstream,
            state,
            within,
            window,
            edge,
        } => breaker(text, upstream, state, *within, window, *edge, o),
        Rule::Recovered { within, window } => recovered(text, *within, window, o),
    }
}

fn named(name: &str, o: &Observed<'_>) -> Result<Span, Unknown> {
    o.windows
        .get(name)
        .copied()
        .ok_or_else(|| Unknown(format!("unknown window `{name}`")))
}

fn span(w: &WindowRef, o: &Observed<'_>) -> Result<Span, Unknown> {
    let all = Span {
        start: Duration::ZERO,
        end: o.total,
    };
    Ok(match w {
        WindowRef::Overall => all,
        WindowRef::During(n) => named(n, o)?,
        WindowRef::Before(n) => Span {
            start: Duration::ZERO,
            end: named(n, o)?.start,
        },
        WindowRef::After(n) => Span {
            start: named(n, o)?.end,
            end: o.total,
        },
    })
}

/// The seconds whose due time falls in `span` (a second counts if it starts inside).
fn seconds<'a>(span: Span, o: &Observed<'a>) -> &'a [Second] {
    let start = usize::try_from(span.start.as_millis().div_ceil(1000)).unwrap_or(usize::MAX);
    let end = usize::try_from(span.end.as_millis().div_ceil(1000)).unwrap_or(usize::MAX);
    let end = end.min(o.seconds.len());
    o.seconds.get(start.min(end)..end).unwrap_or(&[])
}

fn operand(op: &Operand, span: Span, o: &Observed<'_>) -> Result<Option<f64>, Unknown> {
    let mut product = 1.0;
    for f in &op.factors {
        let v = match f {
            Term::Number(n) => Some(*n),
            Term::Stat(s) => stat(s, span, o)?,
        };
        match v {
            Some(v) => product *= v,
            None => return Ok(None),
        }
    }
    Ok(Some(product))
}

fn count(pred: &Pred, s: &Second) -> u64 {
    match pred {
        Pred::Status { op, code } => s
            .statuses
            .iter()
            .filter(|(c, _)| op.holds(f64::from(**c), f64::from(*code)))
            .map(|(_, n)| n)
            .sum(),
        Pred::Class { class } => s.class(*class),
        Pred::Degraded => s.degraded,
        Pred::Error { kind: None } => s.failed,
        Pred::Error { kind: Some(k) } => s.kinds.get(k).copied().unwrap_or(0),
        Pred::Dropped => s.dropped,
        Pred::Late => s.late,
    }
}

fn stat(stat: &Stat, span: Span, o: &Observed<'_>) -> Result<Option<f64>, Unknown> {
    let secs = seconds(span, o);
    let scheduled: u64 = secs.iter().map(|s| s.scheduled).sum();
    let latency = || {
        let mut all = histogram();
        for s in secs {
            let _ = all.add(s.merged_latency());
        }
        (!all.is_empty()).then_some(all)
    };
    let us = |v: u64| v as f64 / 1e6;
    Ok(match stat {
        Stat::Percentile { p } => latency().map(|h| us(h.value_at_quantile(p / 100.0))),
        Stat::Max => latency().map(|h| us(h.max())),
        Stat::Min => latency().map(|h| us(h.min())),
        Stat::Mean => latency().map(|h| h.mean() / 1e6),
        Stat::Throughput => {
            let length = span.end.saturating_sub(span.start).as_secs_f64();
            let answered: u64 = secs.iter().map(Second::answered).sum();
            (length > 0.0).then(|| answered as f64 / length)
        }
        Stat::Ratio { of } => {
            let n: u64 = secs.iter().map(|s| count(of, s)).sum();
            (scheduled > 0).then(|| n as f64 / scheduled as f64)
        }
        Stat::Count { of } => Some(secs.iter().map(|s| count(of, s)).sum::<u64>() as f64),
        Stat::Requests => Some(scheduled as f64),
        Stat::Retries => {
            // The gateway exposes the family only once a route has retried: absent from a
            // scrape that succeeded means none yet. With no scrape at all it is unknown.
            let labels = BTreeMap::from([("outcome".to_owned(), "attempted".to_owned())]);
            let seen = o
                .scrapes
                .iter()
                .any(|(_, s)| s.has("seawall_retries_total"));
            if o.scrapes.is_empty() || seen {
                metric("seawall_retries_total", &labels, span, o)?
            } else {
                Some(0.0)
            }
        }
        Stat::Metric { name, labels } => metric(name, labels, span, o)?,
    })
}

/// A counter's increase over `span`, or a gauge's last value in it.
fn metric(
    name: &str,
    labels: &BTreeMap<String, String>,
    span: Span,
    o: &Observed<'_>,
) -> Result<Option<f64>, Unknown> {
    if !o.scrapes.iter().any(|(_, s)| s.has(name)) {
        let why = if o.scrapes.is_empty() {
            "no /metrics scrape succeeded during the run"
        } else {
            "no such metric in the gateway's /metrics"
        };
        return Err(Unknown(format!("unknown metric `{name}`: {why}")));
    }
    if let Some(label) = unknown_label(name, labels, o) {
        return Err(Unknown(format!(
            "unknown label `{label}` of metric `{name}`: no series of it has that label"
        )));
    }
    let at = |t: Duration| {
        o.scrapes
            .iter()
            .rev()
            .find(|(when, _)| *when <= t)
            .or(o.scrapes.first())
            .map(|(_, s)| s.value(name, labels).unwrap_or(0.0))
    };
    let end = at(span.end);
    let total = format!("{name}_total");
    let counter = is_counter(name)
        || o.scrapes
            .iter()
            .any(|(_, s)| s.samples.iter().any(|x| x.name == total));
    if counter {
        Ok(end.zip(at(span.start)).map(|(e, s)| (e - s).max(0.0)))
    } else {
        Ok(end)
    }
}

/// A label name that no series of `name` carries (a typo would otherwise read as 0). A
/// family seen without any series says nothing about its labels, so it passes.
fn unknown_label<'a>(
    name: &str,
    labels: &'a BTreeMap<String, String>,
    o: &Observed<'_>,
) -> Option<&'a str> {
    let total = format!("{name}_total");
    let series: Vec<_> = o
        .scrapes
        .iter()
        .flat_map(|(_, s)| &s.samples)
        .filter(|x| x.name == name || x.name == total)
        .collect();
    if series.is_empty() {
        return None;
    }
    labels
        .keys()
        .find(|k| !series.iter().any(|x| x.labels.contains_key(*k)))
        .map(String::as_str)
}

fn breaker(
    text: &str,
    upstream: &str,
    state: &str,
    within: Duration,
    window: &str,
    edge: Edge,
    o: &Observed<'_>,
) -> Result<Verdict, Unknown> {
    if !o.breakers.iter().any(|b| b.upstream == upstream) {
        let mut known: Vec<&str> = o.breakers.iter().map(|b| b.upstream.as_str()).collect();
        known.sort_unstable();
        known.dedup();
        return Err(Unknown(format!(
            "unknown breaker `{upstream}`: the admin API's /breakers never listed it (seen: {})",
            if known.is_empty() {
                "none".to_owned()
            } else {
                known.join(", ")
            }
        )));
    }
    let w = named(window, o)?;
    let from = match edge {
        Edge::Start => w.start,
        Edge::End => w.end,
    };
    let reached = o
        .breakers
        .iter()
        .find(|b| {
            b.upstream == upstream && b.state == state && b.at >= from && b.at <= from + within
        })
        .map(|b| b.at - from);
    Ok(Verdict {
        threshold: text.to_owned(),
        passed: reached.is_some(),
        value: reached.map(|d| d.as_secs_f64()),
        shown: match reached {
            Some(d) => format!(
                "breaker({upstream}) {state} after {}",
                seconds_text(d.as_secs_f64())
            ),
            None => format!(
                "breaker({upstream}) not {state} within {}",
                seconds_text(within.as_secs_f64())
            ),
        },
    })
}

/// Healthy: requests were due, and under 1 % of them failed, were dropped or degraded.
fn healthy(s: &Second) -> bool {
    let bad = s.class(5) + s.failed + s.dropped + s.degraded;
    s.scheduled > 0 && (bad as f64) < 0.01 * s.scheduled as f64
}

fn recovered(
    text: &str,
    within: Duration,
    window: &str,
    o: &Observed<'_>,
) -> Result<Verdict, Unknown> {
    let end = named(window, o)?.end;
    let first = usize::try_from(end.as_millis().div_ceil(1000)).unwrap_or(usize::MAX);
    let last = o.seconds.len();
    // The first second from which every later one is healthy.
    let mut at = None;
    for i in (first..last).rev() {
        if healthy(&o.seconds[i]) {
            at = Some(i);
        } else {
            break;
        }
    }
    let took = at.map(|i| Duration::from_secs(i as u64).saturating_sub(end));
    Ok(Verdict {
        threshold: text.to_owned(),
        passed: took.is_some_and(|t| t <= within),
        value: took.map(|d| d.as_secs_f64()),
        shown: match took {
            Some(t) => format!(
                "recovered {} after {window} ended",
                seconds_text(t.as_secs_f64())
            ),
            None => format!(
                "not recovered by the end of the load ({window} ended at {})",
                seconds_text(end.as_secs_f64())
            ),
        },
    })
}

fn describe(op: &Operand) -> String {
    op.factors
        .iter()
        .map(|f| match f {
            Term::Number(n) => n.to_string(),
            Term::Stat(s) => match s {
                Stat::Percentile { p } => format!("p({p})"),
                Stat::Max => "max".into(),
                Stat::Min => "min".into(),
                Stat::Mean => "mean".into(),
                Stat::Throughput => "throughput".into(),
                Stat::Ratio { .. } => "ratio".into(),
                Stat::Count { .. } => "count".into(),
                Stat::Requests => "requests".into(),
                Stat::Retries => "retries".into(),
                Stat::Metric { name, .. } => name.clone(),
            },
        })
        .collect::<Vec<_>>()
        .join(" * ")
}

fn render(op: &Operand, v: f64) -> String {
    match op.factors.as_slice() {
        [Term::Stat(Stat::Percentile { .. } | Stat::Max | Stat::Min | Stat::Mean)] => {
            seconds_text(v)
        }
        [Term::Stat(Stat::Ratio { .. })] => format!("{:.2}%", v * 100.0),
        [Term::Stat(Stat::Throughput)] => format!("{v:.1}/s"),
        _ => format!("{}", (v * 1000.0).round() / 1000.0),
    }
}

/// Seconds for people: `850ms`, `2.01s`.
pub fn seconds_text(v: f64) -> String {
    if v < 1.0 {
        format!("{:.1}ms", v * 1000.0)
    } else {
        format!("{v:.2}s")
    }
}

#[cfg(test)]
#[path = "eval_tests.rs"]
mod tests;
