//! Charts as inline SVG, drawn in Rust: lines, stacked bars and state bands, all on one
//! shared time axis so the report's charts line up, with windows shaded behind the data.
//!
//! Each chart's `<svg>` carries `data-points` (how many values it drew), which the browser
//! test reads to prove every chart has data.

use std::fmt::Write;

use super::junit::escape;

/// Plot area geometry, shared by every chart.
pub const WIDTH: f64 = 960.0;
const LEFT: f64 = 64.0;
const RIGHT: f64 = 16.0;
const TOP: f64 = 10.0;
const BOTTOM: f64 = 24.0;

/// A shaded span of the time axis.
#[derive(Debug, Clone)]
pub struct Shade {
    /// Start, seconds.
    pub start: f64,
    /// End, seconds.
    pub end: f64,
    /// Its label.
    pub label: String,
    /// A phase: drawn as a dashed boundary with its name, not shaded (phases tile the
    /// whole run, so shading them would shade everything).
    pub phase: bool,
}

/// Draws one window behind the data.
fn draw_shade(out: &mut String, axis: Axis, s: &Shade, bottom: f64) {
    let (x0, x1) = (axis.x(s.start), axis.x(s.end));
    if s.phase {
        if s.start > 0.0 {
            let _ = write!(
                out,
                "<line class=\"phase\" x1=\"{x0:.1}\" x2=\"{x0:.1}\" y1=\"{TOP}\" y2=\"{bottom:.1}\"/>"
            );
        }
        let _ = write!(
            out,
            "<text class=\"phase-label\" x=\"{:.1}\" y=\"{:.1}\">{}</text>",
            x0 + 3.0,
            TOP + 9.0,
            escape(&s.label)
        );
        return;
    }
    let _ = write!(
        out,
        "<rect class=\"shade\" x=\"{x0:.1}\" y=\"{TOP}\" width=\"{:.1}\" height=\"{:.1}\"><title>{}</title></rect>",
        (x1 - x0).max(1.0),
        bottom - TOP,
        escape(&s.label)
    );
    window_mark(out, x0, x1);
}

/// One named series.
#[derive(Debug, Clone)]
pub struct Series {
    /// The legend label.
    pub label: String,
    /// A CSS colour.
    pub color: &'static str,
    /// One value per second; `None` is a gap.
    pub values: Vec<Option<f64>>,
}

/// The time axis: seconds 0 to `duration`.
#[derive(Debug, Clone, Copy)]
pub struct Axis {
    /// The load's length, seconds.
    pub duration: f64,
}

impl Axis {
    fn x(&self, t: f64) -> f64 {
        LEFT + (t / self.duration.max(1.0)).clamp(0.0, 1.0) * (WIDTH - LEFT - RIGHT)
    }
}

fn nice_max(v: f64) -> f64 {
    if v <= 0.0 || !v.is_finite() {
        return 1.0;
    }
    let magnitude = 10f64.powf(v.log10().floor());
    for step in [1.0, 2.0, 2.5, 5.0, 10.0] {
        if v <= step * magnitude {
            return step * magnitude;
        }
    }
    10.0 * magnitude
}

fn frame(out: &mut String, axis: Axis, height: f64, y_max: f64, unit: &str, shades: &[Shade]) {
    let bottom = height - BOTTOM;
    for s in shades {
        draw_shade(out, axis, s, bottom);
    }
    for i in 0..=4 {
        let v = y_max * f64::from(i) / 4.0;
        let y = bottom - (bottom - TOP) * f64::from(i) / 4.0;
        let _ = write!(
            out,
            "<line class=\"grid\" x1=\"{LEFT}\" x2=\"{:.1}\" y1=\"{y:.1}\" y2=\"{y:.1}\"/><text class=\"tick\" x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">{}{unit}</text>",
            WIDTH - RIGHT,
            LEFT - 6.0,
            y + 4.0,
            short(v)
        );
    }
    let step = [1.0, 2.0, 5.0, 10.0, 15.0, 30.0, 60.0, 120.0, 300.0]
        .into_iter()
        .find(|s| axis.duration / s <= 12.0)
        .unwrap_or(600.0);
    let mut t = 0.0;
    while t <= axis.duration + 1e-9 {
        let x = axis.x(t);
        let _ = write!(
            out,
            "<text class=\"tick\" x=\"{x:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{}s</text>",
            height - 6.0,
            short(t)
        );
        t += step;
    }
}

/// A strip above the plot marking a window, visible even where bars cover the shade.
fn window_mark(out: &mut String, x0: f64, x1: f64) {
    let _ = write!(
        out,
        "<rect class=\"mark\" x=\"{x0:.1}\" y=\"2\" width=\"{:.1}\" height=\"5\"/>",
        (x1 - x0).max(1.0)
    );
}

fn short(v: f64) -> String {
    if v >= 10_000.0 {
        format!("{:.0}k", v / 1000.0)
    } else if v.fract() == 0.0 || v >= 100.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.1}")
    }
}

fn open(out: &mut String, id: &str, height: f64, points: usize) {
    let _ = write!(
        out,
        "<svg id=\"{id}\" class=\"chart\" viewBox=\"0 0 {WIDTH} {height}\" width=\"100%\" role=\"img\" data-points=\"{points}\" xmlns=\"http://www.w3.org/2000/svg\">"
    );
}

fn legend(series: &[Series]) -> String {
    let mut out = String::from("<div class=\"legend\">");
    for s in series {
        let _ = write!(
            out,
            "<span><i style=\"background:{}\"></i>{}</span>",
            s.color,
            escape(&s.label)
        );
    }
    out.push_str("</div>");
    out
}

/// A line chart of `series` (values in `unit`), a point per second.
pub fn lines(
    id: &str,
    axis: Axis,
    height: f64,
    unit: &str,
    series: &[Series],
    shades: &[Shade],
) -> String {
    let y_max = nice_max(
        series
            .iter()
            .flat_map(|s| s.values.iter().flatten())
            .fold(0.0, |a: f64, b| a.max(*b)),
    );
    let points = series
        .iter()
        .map(|s| s.values.iter().flatten().count())
        .sum();
    let mut out = String::new();
    open(&mut out, id, height, points);
    frame(&mut out, axis, height, y_max, unit, shades);
    let bottom = height - BOTTOM;
    let y = |v: f64| bottom - (v / y_max).clamp(0.0, 1.0) * (bottom - TOP);
    for s in series {
        let mut d = String::new();
        let mut pen_up = true;
        for (t, v) in s.values.iter().enumerate() {
            match v {
                Some(v) => {
                    // Each second's value is drawn at the middle of its second.
                    let _ = write!(
                        d,
                        "{}{:.1},{:.1} ",
                        if pen_up { "M" } else { "L" },
                        axis.x(t as f64 + 0.5),
                        y(*v)
                    );
                    pen_up = false;
                }
                None => pen_up = true,
            }
        }
        let _ = write!(
            out,
            "<path d=\"{}\" fill=\"none\" stroke=\"{}\" stroke-width=\"1.8\"><title>{}</title></path>",
            d.trim_end(),
            s.color,
            escape(&s.label)
        );
    }
    out.push_str("</svg>");
    out.push_str(&legend(series));
    out
}

/// Stacked bars of `series` (counts), a bar per second.
pub fn stacked(id: &str, axis: Axis, height: f64, series: &[Series], shades: &[Shade]) -> String {
    let seconds = series.iter().map(|s| s.values.len()).max().unwrap_or(0);
    let totals: Vec<f64> = (0..seconds)
        .map(|t| {
            series
                .iter()
                .map(|s| s.values.get(t).copied().flatten().unwrap_or(0.0))
                .sum()
        })
        .collect();
    let y_max = nice_max(totals.iter().copied().fold(0.0, f64::max));
    let points = series
        .iter()
        .map(|s| s.values.iter().flatten().filter(|v| **v > 0.0).count())
        .sum();
    let mut out = String::new();
    open(&mut out, id, height, points);
    frame(&mut out, axis, height, y_max, "", shades);
    let bottom = height - BOTTOM;
    let scale = (bottom - TOP) / y_max;
    let bar = (axis.x(1.0) - axis.x(0.0)) * 0.85;
    for t in 0..seconds {
        let mut base = bottom;
        for s in series {
            let v = s.values.get(t).copied().flatten().unwrap_or(0.0);
            if v <= 0.0 {
                continue;
            }
            let h = v * scale;
            let _ = write!(
                out,
                "<rect x=\"{:.1}\" y=\"{:.1}\" width=\"{bar:.1}\" height=\"{h:.1}\" fill=\"{}\"><title>{}s {}: {v}</title></rect>",
                axis.x(t as f64) + bar * 0.09,
                base - h,
                s.color,
                t,
                escape(&s.label)
            );
            base -= h;
        }
    }
    out.push_str("</svg>");
    out.push_str(&legend(series));
    out
}

/// One row of state bands.
#[derive(Debug, Clone)]
pub struct BandRow {
    /// The row's label (an upstream).
    pub label: String,
    /// (start, end, state) spans.
    pub spans: Vec<(f64, f64, String)>,
}

/// The colour of a breaker state.
pub fn state_color(state: &str) -> &'static str {
    match state {
        "open" => "#d62728",
        "half_open" => "#ff9f1c",
        _ => "#2ca02c",
    }
}

/// Bands of states, a row per label.
pub fn bands(id: &str, axis: Axis, rows: &[BandRow], shades: &[Shade]) -> String {
    let row_h = 22.0;
    let height = TOP + BOTTOM + row_h * rows.len().max(1) as f64;
    let points = rows.iter().map(|r| r.spans.len()).sum();
    let mut out = String::new();
    open(&mut out, id, height, points);
    let bottom = height - BOTTOM;
    for s in shades {
        draw_shade(&mut out, axis, s, bottom);
    }
    for (i, r) in rows.iter().enumerate() {
        let y = TOP + row_h * i as f64;
        let _ = write!(
            out,
            "<text class=\"tick\" x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">{}</text>",
            LEFT - 6.0,
            y + 15.0,
            escape(&r.label)
        );
        for (start, end, state) in &r.spans {
            let (x0, x1) = (axis.x(*start), axis.x(*end));
            let _ = write!(
                out,
                "<rect x=\"{x0:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{:.1}\" fill=\"{}\"><title>{} {state} {start:.1}s–{end:.1}s</title></rect>",
                y + 3.0,
                (x1 - x0).max(2.0),
                row_h - 6.0,
                state_color(state),
                escape(&r.label)
            );
        }
    }
    let mut t = 0.0;
    let step = [1.0, 2.0, 5.0, 10.0, 15.0, 30.0, 60.0, 120.0, 300.0]
        .into_iter()
        .find(|s| axis.duration / s <= 12.0)
        .unwrap_or(600.0);
    while t <= axis.duration + 1e-9 {
        let _ = write!(
            out,
            "<text class=\"tick\" x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{}s</text>",
            axis.x(t),
            height - 6.0,
            short(t)
        );
        t += step;
    }
    out.push_str("</svg>");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn charts_count_their_points_and_escape_labels() {
        let s = Series {
            label: "p99 <ms>".into(),
            color: "#000",
            values: vec![Some(1.0), None, Some(3.0)],
        };
        let svg = lines("c", Axis { duration: 3.0 }, 120.0, "ms", &[s], &[]);
        assert!(svg.contains("data-points=\"2\""), "{svg}");
        assert!(svg.contains("p99 &lt;ms&gt;"));
        assert!(
            svg.contains("M") && svg.matches('M').count() >= 2,
            "a gap starts a new segment"
        );
    }

    #[test]
    fn axis_maxima_are_round() {
        assert_eq!(nice_max(0.0), 1.0);
        assert_eq!(nice_max(7.0), 10.0);
        assert_eq!(nice_max(2100.0), 2500.0);
    }
}
