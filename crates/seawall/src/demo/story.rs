//! The demo's ten-line summary: the baseline story told from `report.json` (what the
//! drill measured, and when), so a person sees what happened without opening the report.

use serde_json::Value;

/// The window `name`'s `(start, end)`, seconds from the start of the load.
fn window(r: &Value, name: &str) -> Option<(f64, f64)> {
    let w = r["windows"]
        .as_array()?
        .iter()
        .find(|w| w["name"] == name)?;
    Some((w["start"].as_f64()?, w["end"].as_f64()?))
}

/// Per-second rows whose second starts inside `[from, to)`.
fn seconds(r: &Value, (from, to): (f64, f64)) -> Vec<&Value> {
    r["series"]
        .as_array()
        .map(|s| {
            s.iter()
                .filter(|row| row["t"].as_f64().is_some_and(|t| t >= from && t < to))
                .collect()
        })
        .unwrap_or_default()
}

fn sum(rows: &[&Value], f: impl Fn(&Value) -> u64) -> u64 {
    rows.iter().map(|r| f(r)).sum()
}

fn share(part: u64, whole: u64) -> String {
    if whole == 0 {
        return "n/a".to_owned();
    }
    format!("{:.1}%", 100.0 * part as f64 / whole as f64)
}

fn worst_p99(rows: &[&Value]) -> String {
    let ms = rows
        .iter()
        .filter_map(|r| r["p99_ms"].as_f64())
        .fold(None, |m: Option<f64>, v| Some(m.map_or(v, |m| m.max(v))));
    ms.map_or("n/a".to_owned(), |ms| format!("{ms:.0} ms"))
}

fn class(row: &Value, c: &str) -> u64 {
    row["classes"][c].as_u64().unwrap_or(0)
}

/// When the breaker of `upstream` was first seen `state` at or after `from`.
fn breaker_at(r: &Value, state: &str, from: f64) -> Option<f64> {
    r["breakers"]
        .as_array()?
        .iter()
        .flat_map(|b| b["bands"].as_array().into_iter().flatten())
        .filter(|b| b["state"] == state)
        .filter_map(|b| b["start"].as_f64())
        .find(|s| *s >= from)
}

fn at(t: Option<f64>, since: f64) -> String {
    t.map_or("never seen".to_owned(), |t| {
        format!("at {t:.1} s ({:+.1} s)", t - since)
    })
}

/// The ten lines.
pub fn lines(r: &Value) -> Vec<String> {
    let whole = (0.0, f64::MAX);
    let warm = window(r, "warmup").unwrap_or_default();
    let slow = window(r, "payments_slow").unwrap_or_default();
    let down = window(r, "payments_down").unwrap_or_default();
    let (w, s, d) = (seconds(r, warm), seconds(r, slow), seconds(r, down));
    let due = |rows: &[&Value]| sum(rows, |x| x["scheduled"].as_u64().unwrap_or(0));
    let degraded = |rows: &[&Value]| sum(rows, |x| x["degraded"].as_u64().unwrap_or(0));
    let first_degraded = seconds(r, (slow.0, f64::MAX))
        .into_iter()
        .find(|x| x["degraded"].as_u64().unwrap_or(0) > 0)
        .and_then(|x| x["t"].as_f64());
    let all = seconds(r, whole);
    let recovered = all
        .iter()
        .rposition(|x| x["degraded"].as_u64().unwrap_or(0) > 0 || class(x, "5xx") > 0)
        .and_then(|i| all.get(i + 1))
        .and_then(|x| x["t"].as_f64());
    let passed = r["thresholds"]
        .as_array()
        .map(|t| t.iter().filter(|t| t["passed"] == true).count())
        .unwrap_or(0);
    let thresholds = r["thresholds"].as_array().map_or(0, Vec::len);
    let totals = &r["totals"];
    vec![
        format!(
            "warmup: {} requests, {} answered 200, worst p99 {}",
            due(&w),
            share(sum(&w, |x| class(x, "2xx")), due(&w)),
            worst_p99(&w)
        ),
        format!(
            "payments slows to 2 s at {:.1} s; first degraded answer in second {}",
            slow.0,
            first_degraded.map_or("none".to_owned(), |t| format!("{t:.0}"))
        ),
        format!(
            "while slow: {} degraded (stale cache), worst p99 {} (the 300 ms timeout, not 2 s)",
            share(degraded(&s), due(&s)),
            worst_p99(&s)
        ),
        format!(
            "breaker opened {}",
            at(breaker_at(r, "open", slow.0), slow.0)
        ),
        format!(
            "payments fails outright at {:.1} s: {} answered 206 from the stale cache (degraded)",
            down.0,
            share(degraded(&d), due(&d))
        ),
        format!(
            "fault removed at {:.1} s; breaker closed again {}",
            down.1,
            at(breaker_at(r, "closed", down.1), down.1)
        ),
        format!(
            "recovered: healthy from second {}",
            recovered.map_or("n/a".to_owned(), |t| format!("{t:.0}"))
        ),
        format!(
            "5xx over the run: {} of {}",
            sum(&all, |x| class(x, "5xx")),
            due(&all)
        ),
        format!(
            "load: {} due, {} late, {} dropped, generator lag max {} ms",
            totals["scheduled"], totals["late"], totals["dropped"], totals["generator_lag_max_ms"]
        ),
        format!("thresholds: {passed} of {thresholds} passed"),
    ]
}
