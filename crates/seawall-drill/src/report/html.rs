//! `report.html`: one self-contained page (inline CSS and SVG, no script, no network) that
//! opens from `file://` and prints to PDF: the verdict first, with each failed threshold and
//! its measured value, then the charts on one time axis with the action windows shaded,
//! then the events, probes, thresholds and the scenario.

use std::fmt::Write;

use super::{
    Report,
    junit::escape,
    svg::{self, Axis, BandRow, Series, Shade},
};

const STYLE: &str = "
body{font:14px/1.45 system-ui,-apple-system,'Segoe UI',sans-serif;margin:0;color:#1d2330;background:#fff}
main{max-width:1000px;margin:0 auto;padding:20px}
h1{font-size:22px;margin:0 0 4px}h2{font-size:16px;margin:28px 0 6px;border-bottom:1px solid #e3e6ec;padding-bottom:4px}
.verdict{padding:14px 18px;border-radius:6px;margin:14px 0;font-size:15px}
.verdict strong{font-size:20px;letter-spacing:.04em}
.passed{background:#e8f6ec;border:1px solid #2ca02c}.failed,.aborted,.invalid{background:#fdecec;border:1px solid #d62728}
.verdict ul{margin:6px 0 0 18px;padding:0}
table{border-collapse:collapse;width:100%;font-size:13px}td,th{text-align:left;padding:3px 8px;border-bottom:1px solid #eef0f4;vertical-align:top}
th{color:#5b6475;font-weight:600}.ok{color:#1e7b1e;font-weight:600}.fail{color:#c01d1d;font-weight:600}
.chart{display:block;background:#fff}.shade{fill:#f0a500;opacity:.14}.mark{fill:#f0a500;opacity:.8}.phase{stroke:#8a93a6;stroke-dasharray:4 3}.phase-label{font-size:10px;fill:#8a93a6}.grid{stroke:#e8ebf0}.tick{font-size:11px;fill:#6b7385}
.legend{font-size:12px;color:#444;margin:2px 0 10px 64px}.legend span{margin-right:14px}.legend i{display:inline-block;width:10px;height:10px;margin-right:4px;vertical-align:-1px}
.meta{color:#5b6475;font-size:13px}pre{background:#f6f7f9;padding:10px;overflow:auto;font-size:12px}
@media print{main{max-width:none}h2{break-after:avoid}.chart{break-inside:avoid}}
";

/// The page for `r`.
pub fn render(r: &Report) -> String {
    let mut out = String::new();
    let _ = write!(
        out,
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width,initial-scale=1\"><title>Seawall drill: {}</title><style>{STYLE}</style></head><body><main>",
        r.verdict
    );
    let _ = write!(
        out,
        "<h1>Seawall drill</h1><div class=\"meta\">seawall {} · {:.0}s of load · {} requests due · report format {}</div>",
        escape(r.versions.get("seawall").map_or("", String::as_str)),
        r.duration,
        r.totals.scheduled,
        r.format
    );
    verdict(&mut out, r);
    charts(&mut out, r);
    thresholds(&mut out, r);
    events(&mut out, r);
    probes(&mut out, r);
    let scenario = serde_json::to_string_pretty(&r.scenario).unwrap_or_default();
    let _ = write!(
        out,
        "<h2>Scenario</h2><details><summary>as run (after --set)</summary><pre>{}</pre></details>",
        escape(&scenario)
    );
    out.push_str("</main></body></html>\n");
    out
}

fn verdict(out: &mut String, r: &Report) {
    let word = match r.verdict {
        "passed" => "PASSED",
        "failed" => "FAILED",
        "invalid" => "INVALID SCENARIO",
        _ => "ABORTED",
    };
    let passed = r.thresholds.iter().filter(|v| v.passed).count();
    let _ = write!(
        out,
        "<section id=\"verdict\" class=\"verdict {}\"><strong>{word}</strong> — {passed} of {} thresholds passed · exit code {}",
        r.verdict,
        r.thresholds.len(),
        r.exit_code
    );
    let failed: Vec<String> = r
        .thresholds
        .iter()
        .filter(|v| !v.passed)
        .map(|v| {
            format!(
                "<li><code>{}</code>: measured {}</li>",
                escape(&v.threshold),
                escape(&v.shown)
            )
        })
        .chain(r.failures.iter().map(|f| format!("<li>{}</li>", escape(f))))
        .collect();
    if !failed.is_empty() {
        let _ = write!(out, "<ul>{}</ul>", failed.concat());
    }
    let t = &r.totals;
    let _ = write!(
        out,
        "<div class=\"meta\">{} answered · {} failed without an answer · {} degraded · {} sent late · {} dropped · generator lag at most {:.1} ms</div></section>",
        t.answered, t.failed, t.degraded, t.late, t.dropped, t.generator_lag_max_ms
    );
}

fn charts(out: &mut String, r: &Report) {
    let axis = Axis {
        duration: r.duration.max(1.0),
    };
    // Phases first, so action windows are drawn over their boundaries.
    let mut shades: Vec<Shade> = r
        .windows
        .iter()
        .map(|w| Shade {
            start: w.start,
            end: w.end,
            label: w.name.clone(),
            phase: w.kind == "phase",
        })
        .collect();
    shades.sort_by_key(|s| !s.phase);
    let col = |f: &dyn Fn(&super::Point) -> Option<f64>| r.series.iter().map(f).collect::<Vec<_>>();
    let series = |label: &str, color: &'static str, values: Vec<Option<f64>>| Series {
        label: label.into(),
        color,
        values,
    };
    let windows: Vec<String> = shades
        .iter()
        .filter(|s| !s.phase)
        .map(|s| format!("{} {:.0}–{:.0}s", s.label, s.start, s.end))
        .collect();
    let _ = write!(
        out,
        "<h2>Timeline</h2><div class=\"meta\">Shaded: {}; dashed lines are phase boundaries. Latency runs from each request's due time (coordinated omission corrected).</div>",
        if windows.is_empty() {
            "no action windows".to_owned()
        } else {
            escape(&windows.join(", "))
        }
    );
    let _ = write!(
        out,
        "<h3>Throughput and dropped (per second)</h3>{}",
        svg::lines(
            "chart-throughput",
            axis,
            170.0,
            "",
            &[
                series("due", "#9aa5b8", col(&|p| Some(p.scheduled as f64))),
                series("answered", "#1f77b4", col(&|p| Some(p.answered as f64))),
                series("late", "#ff9f1c", col(&|p| Some(p.late as f64))),
                series("dropped", "#d62728", col(&|p| Some(p.dropped as f64))),
            ],
            &shades,
        )
    );
    let _ = write!(
        out,
        "<h3>Latency from due time</h3>{}",
        svg::lines(
            "chart-latency",
            axis,
            190.0,
            "ms",
            &[
                series("p50", "#2ca02c", col(&|p| p.p50_ms)),
                series("p90", "#1f77b4", col(&|p| p.p90_ms)),
                series("p99", "#9467bd", col(&|p| p.p99_ms)),
                series("max", "#d62728", col(&|p| p.max_ms)),
            ],
            &shades,
        )
    );
    let class = |c: &'static str| {
        move |p: &super::Point| Some(p.classes.get(c).copied().unwrap_or(0) as f64)
    };
    let _ = write!(
        out,
        "<h3>Responses by status class</h3>{}",
        svg::stacked(
            "chart-status",
            axis,
            170.0,
            &[
                series("2xx", "#2ca02c", col(&class("2xx"))),
                series("3xx", "#17becf", col(&class("3xx"))),
                series("4xx", "#ff9f1c", col(&class("4xx"))),
                series("5xx", "#d62728", col(&class("5xx"))),
                series("no answer", "#444", col(&|p| Some(p.failed as f64))),
            ],
            &shades,
        )
    );
    let _ = write!(
        out,
        "<h3>Degraded answers and errors by kind</h3>{}",
        svg::lines("chart-degraded", axis, 150.0, "", &kinds_series(r), &shades,)
    );
    if !r.breakers.is_empty() {
        let rows: Vec<BandRow> = r
            .breakers
            .iter()
            .map(|b| BandRow {
                label: b.upstream.clone(),
                spans: b
                    .bands
                    .iter()
                    .map(|x| (x.start, x.end, x.state.clone()))
                    .collect(),
            })
            .collect();
        let _ = write!(
            out,
            "<h3>Breaker state</h3>{}<div class=\"legend\"><span><i style=\"background:{}\"></i>closed</span><span><i style=\"background:{}\"></i>half open</span><span><i style=\"background:{}\"></i>open</span></div>",
            svg::bands("chart-breakers", axis, &rows, &shades),
            svg::state_color("closed"),
            svg::state_color("half_open"),
            svg::state_color("open")
        );
    }
}

/// Degraded answers, plus one line per error kind seen (at most six, the most frequent).
fn kinds_series(r: &Report) -> Vec<Series> {
    const COLORS: [&str; 6] = [
        "#d62728", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf",
    ];
    let mut totals: std::collections::BTreeMap<&str, u64> = std::collections::BTreeMap::new();
    for p in &r.series {
        for (k, n) in &p.kinds {
            *totals.entry(k).or_default() += n;
        }
    }
    let mut kinds: Vec<(&str, u64)> = totals.into_iter().collect();
    kinds.sort_by_key(|k| std::cmp::Reverse(k.1));
    let mut out = vec![Series {
        label: "degraded".into(),
        color: "#ff9f1c",
        values: r.series.iter().map(|p| Some(p.degraded as f64)).collect(),
    }];
    for ((k, _), color) in kinds.into_iter().zip(COLORS) {
        out.push(Series {
            label: k.to_owned(),
            color,
            values: r
                .series
                .iter()
                .map(|p| Some(p.kinds.get(k).copied().unwrap_or(0) as f64))
                .collect(),
        });
    }
    out
}

fn thresholds(out: &mut String, r: &Report) {
    out.push_str("<h2>Thresholds</h2><table><tr><th></th><th>threshold</th><th>measured</th></tr>");
    for v in &r.thresholds {
        let _ = write!(
            out,
            "<tr><td class=\"{}\">{}</td><td><code>{}</code></td><td>{}</td></tr>",
            if v.passed { "ok" } else { "fail" },
            if v.passed { "pass" } else { "FAIL" },
            escape(&v.threshold),
            escape(&v.shown)
        );
    }
    if r.thresholds.is_empty() {
        out.push_str("<tr><td colspan=\"3\">none</td></tr>");
    }
    out.push_str("</table>");
}

fn events(out: &mut String, r: &Report) {
    out.push_str("<h2>Actions and events</h2><table><tr><th>at</th><th>event</th><th>name</th><th>detail</th></tr>");
    for e in &r.events {
        let _ = write!(
            out,
            "<tr><td>{:.2}s</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            e.at,
            escape(&e.kind),
            escape(&e.name),
            escape(&e.detail)
        );
    }
    if r.events.is_empty() {
        out.push_str("<tr><td colspan=\"4\">none</td></tr>");
    }
    out.push_str("</table>");
}

fn probes(out: &mut String, r: &Report) {
    if r.probes.is_empty() {
        return;
    }
    out.push_str("<h2>Steady-state probes</h2><table><tr><th>when</th><th></th><th>probe</th><th>seen</th></tr>");
    for p in &r.probes {
        let _ = write!(
            out,
            "<tr><td>{}</td><td class=\"{}\">{}</td><td>{}</td><td>{}</td></tr>",
            escape(&p.when),
            if p.result.ok { "ok" } else { "fail" },
            if p.result.ok { "ok" } else { "FAIL" },
            escape(&p.result.name),
            escape(&p.result.detail)
        );
    }
    out.push_str("</table>");
}
