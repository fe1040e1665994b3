//! The drill's report: one [`Report`] value built from the run, written as `report.json`
//! (the data, shape in docs/drills.md), `junit.xml` (one test case per threshold) and
//! `report.html` (self-contained, charts as inline SVG).

pub mod html;
pub mod junit;
pub mod svg;

use std::{collections::BTreeMap, path::Path, time::Duration};

use serde::Serialize;

use crate::{
    events::Event,
    load::record::Recording,
    probe::ProbeResult,
    scenario::Scenario,
    threshold::eval::{BreakerSample, Span, Verdict},
};

/// The version of the report's JSON shape; bumped on incompatible changes.
pub const FORMAT: u32 = 1;

/// Everything the report is built from.
#[derive(Debug)]
pub struct Inputs<'a> {
    /// The scenario as run (after `--set`).
    pub scenario: &'a Scenario,
    /// The drill's version.
    pub version: &'a str,
    /// When the drill started (wall clock).
    pub started_at: std::time::SystemTime,
    /// The load's recording.
    pub recording: &'a Recording,
    /// Phase and action windows.
    pub windows: &'a BTreeMap<String, Span>,
    /// The timeline.
    pub events: Vec<Event>,
    /// Breaker readings.
    pub breakers: &'a [BreakerSample],
    /// Probe results, with `before`, `during` or `after`.
    pub probes: &'a [(String, ProbeResult)],
    /// Threshold verdicts.
    pub verdicts: &'a [Verdict],
    /// The exit code.
    pub exit_code: u8,
    /// Why the drill did not pass, besides failed thresholds.
    pub failures: Vec<String>,
}

/// The report.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// [`FORMAT`].
    pub format: u32,
    /// `passed`, `failed`, `invalid` or `aborted`.
    pub verdict: &'static str,
    /// The process's exit code.
    pub exit_code: u8,
    /// Why it did not pass, besides failed thresholds.
    pub failures: Vec<String>,
    /// Versions of what ran.
    pub versions: BTreeMap<String, String>,
    /// Unix time, seconds, when the drill started.
    pub started_at: f64,
    /// The load's planned length, seconds.
    pub duration: f64,
    /// The scenario as run.
    pub scenario: serde_json::Value,
    /// Phase and action windows.
    pub windows: Vec<Window>,
    /// One entry per second of due time.
    pub series: Vec<Point>,
    /// Totals over the whole load.
    pub totals: Totals,
    /// Breaker state per upstream, as bands.
    pub breakers: Vec<BreakerBands>,
    /// Every event, in time order.
    pub events: Vec<Event>,
    /// Every probe result.
    pub probes: Vec<ProbeEntry>,
    /// Every threshold with its value and verdict.
    pub thresholds: Vec<Verdict>,
}

/// A phase or action window.
#[derive(Debug, Clone, Serialize)]
pub struct Window {
    /// Its name.
    pub name: String,
    /// `phase` or `action`.
    pub kind: &'static str,
    /// Start, seconds from the start of the load.
    pub start: f64,
    /// End, seconds.
    pub end: f64,
}

/// One second of the load.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Point {
    /// Seconds from the start of the load.
    pub t: u64,
    /// Requests due.
    pub scheduled: u64,
    /// Answered (any status).
    pub answered: u64,
    /// Never sent.
    pub dropped: u64,
    /// Sent late.
    pub late: u64,
    /// Failed without an answer.
    pub failed: u64,
    /// Answered with `seawall-degraded`.
    pub degraded: u64,
    /// Latency percentiles from due time, milliseconds (`null` with no answers).
    pub p50_ms: Option<f64>,
    /// 90th percentile.
    pub p90_ms: Option<f64>,
    /// 99th percentile.
    pub p99_ms: Option<f64>,
    /// Highest.
    pub max_ms: Option<f64>,
    /// Answers by class: `1xx` .. `5xx`.
    pub classes: BTreeMap<String, u64>,
    /// By `seawall-error` kind and failure kind.
    pub kinds: BTreeMap<String, u64>,
    /// The generator's own lag, the largest, milliseconds.
    pub generator_lag_max_ms: f64,
    /// Due to sent (lag plus waiting for a connection), the largest, milliseconds.
    pub send_delay_max_ms: f64,
}

/// Totals over the load.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Totals {
    /// Requests due.
    pub scheduled: u64,
    /// Answered.
    pub answered: u64,
    /// Never sent.
    pub dropped: u64,
    /// Sent late.
    pub late: u64,
    /// Failed without an answer.
    pub failed: u64,
    /// Degraded answers.
    pub degraded: u64,
    /// The generator's largest lag, milliseconds.
    pub generator_lag_max_ms: f64,
}

/// One upstream's breaker states over time.
#[derive(Debug, Clone, Serialize)]
pub struct BreakerBands {
    /// The upstream.
    pub upstream: String,
    /// Consecutive spans of one state.
    pub bands: Vec<Band>,
}

/// A span of one breaker state.
#[derive(Debug, Clone, Serialize)]
pub struct Band {
    /// The state.
    pub state: String,
    /// Start, seconds.
    pub start: f64,
    /// End, seconds.
    pub end: f64,
}

/// A probe result with when it ran.
#[derive(Debug, Clone, Serialize)]
pub struct ProbeEntry {
    /// `before`, `during` or `after`.
    pub when: String,
    /// The result.
    #[serde(flatten)]
    pub result: ProbeResult,
}

fn ms(us: u64) -> f64 {
    us as f64 / 1000.0
}

fn point(t: usize, s: &crate::load::record::Second) -> Point {
    let h = s.merged_latency();
    let q = |p: f64| (!h.is_empty()).then(|| ms(h.value_at_quantile(p)));
    let classes = (1..=5)
        .map(|c| (format!("{c}xx"), s.class(c)))
        .filter(|(_, n)| *n > 0)
        .collect();
    Point {
        t: t as u64,
        scheduled: s.scheduled,
        answered: s.answered(),
        dropped: s.dropped,
        late: s.late,
        failed: s.failed,
        degraded: s.degraded,
        p50_ms: q(0.5),
        p90_ms: q(0.9),
        p99_ms: q(0.99),
        max_ms: (!h.is_empty()).then(|| ms(h.max())),
        classes,
        kinds: s.kinds.clone(),
        generator_lag_max_ms: ms(s.generator_lag_max_us),
        send_delay_max_ms: ms(s.send_delay_max_us),
    }
}

fn bands(samples: &[BreakerSample], end: Duration) -> Vec<BreakerBands> {
    let mut by: BTreeMap<&str, Vec<Band>> = BTreeMap::new();
    for s in samples {
        let list = by.entry(&s.upstream).or_default();
        let at = s.at.as_secs_f64();
        match list.last_mut() {
            Some(b) if b.state == s.state => b.end = at,
            Some(b) => {
                b.end = at;
                list.push(Band {
                    state: s.state.clone(),
                    start: at,
                    end: at,
                });
            }
            None => list.push(Band {
                state: s.state.clone(),
                start: at,
                end: at,
            }),
        }
    }
    by.into_iter()
        .map(|(u, mut bands)| {
            if let Some(last) = bands.last_mut() {
                last.end = last.end.max(end.as_secs_f64().min(last.end + 0.2));
            }
            BreakerBands {
                upstream: u.to_owned(),
                bands,
            }
        })
        .collect()
}

impl Report {
    /// Builds the report.
    pub fn build(i: Inputs<'_>) -> Self {
        let series: Vec<Point> = i
            .recording
            .seconds
            .iter()
            .enumerate()
            .map(|(t, s)| point(t, s))
            .collect();
        let totals = Totals {
            scheduled: series.iter().map(|p| p.scheduled).sum(),
            answered: series.iter().map(|p| p.answered).sum(),
            dropped: series.iter().map(|p| p.dropped).sum(),
            late: series.iter().map(|p| p.late).sum(),
            failed: series.iter().map(|p| p.failed).sum(),
            degraded: series.iter().map(|p| p.degraded).sum(),
            generator_lag_max_ms: series
                .iter()
                .map(|p| p.generator_lag_max_ms)
                .fold(0.0, f64::max),
        };
        let phases: Vec<&str> = i
            .scenario
            .load
            .phases
            .iter()
            .map(|p| p.name.as_str())
            .collect();
        let mut windows: Vec<Window> = i
            .windows
            .iter()
            .map(|(name, s)| Window {
                name: name.clone(),
                kind: if phases.contains(&name.as_str()) {
                    "phase"
                } else {
                    "action"
                },
                start: s.start.as_secs_f64(),
                end: s.end.as_secs_f64(),
            })
            .collect();
        windows.sort_by(|a, b| a.start.total_cmp(&b.start));
        let verdict = match i.exit_code {
            0 => "passed",
            1 => "failed",
            3 => "invalid",
            _ => "aborted",
        };
        let started_at = i
            .started_at
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0.0, |d| d.as_secs_f64());
        Self {
            format: FORMAT,
            verdict,
            exit_code: i.exit_code,
            failures: i.failures,
            versions: BTreeMap::from([("seawall".to_owned(), i.version.to_owned())]),
            started_at,
            duration: i.scenario.duration().as_secs_f64(),
            scenario: serde_json::to_value(i.scenario).unwrap_or_default(),
            windows,
            series,
            totals,
            breakers: bands(i.breakers, i.scenario.duration()),
            events: i.events,
            probes: i
                .probes
                .iter()
                .map(|(when, r)| ProbeEntry {
                    when: when.clone(),
                    result: r.clone(),
                })
                .collect(),
            thresholds: i.verdicts.to_vec(),
        }
    }
}

/// Writes `report.json`, `junit.xml` and `report.html` into `dir` (created if missing).
pub fn write(r: &Report, dir: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let json = serde_json::to_string_pretty(r).map_err(std::io::Error::other)?;
    std::fs::write(dir.join("report.json"), json)?;
    std::fs::write(dir.join("junit.xml"), junit::render(r))?;
    std::fs::write(dir.join("report.html"), html::render(r))?;
    Ok(())
}
