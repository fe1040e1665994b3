//! Dynamic latency baselines: each route's p99 compared with its own history instead of a
//! threshold someone guessed.
//!
//! The p99 over 5 minutes is recorded per route; the baseline is its mean and standard
//! deviation over the trailing day (ending an hour ago, so a shift does not drag its own
//! baseline up while the alert waits out its `for:`), plus the same hour yesterday and the
//! same hour last week. The upper band is the highest of: mean + 3σ, 1.2 × the same hour
//! yesterday, 1.2 × the same hour last week, and 1.2 × the mean (so a route with a flat
//! p99, σ near 0, is not paged for a few milliseconds). A p99 above the band means "slower
//! than usual, and slower than this hour usually is": a nightly batch that was slow
//! yesterday too does not alert. Bands missing for lack of history (a new route has no
//! last week) drop out of the maximum rather than hiding the others.

use super::{Group, Rule, labels};
use crate::catalogue::REQUEST_DURATION;

/// The recorded p99 of every route, over 5 minutes.
pub const P99: &str = "seawall:route_latency_p99:5m";
/// The recorded requests per second of every route, over 5 minutes.
pub const RATE: &str = "seawall:route_requests:rate5m";
/// The upper band of the p99.
pub const UPPER: &str = "seawall:route_latency_p99:upper_band";
/// How long the p99 stays above its band before the alert fires.
pub const FOR: &str = "15m";
/// Below this many requests per second a p99 is a handful of requests: no alert.
pub const MIN_RATE: &str = "0.5";

/// The baseline rules, for every route at once (they need no config).
pub fn group() -> Group {
    let rec = |record: &str, expr: String| Rule::Record {
        record: record.into(),
        expr,
        labels: Vec::new(),
    };
    let band = |expr: &str, band: &str| {
        format!("label_replace({expr}, \"band\", \"{band}\", \"route\", \".*\")")
    };
    let rules = vec![
        rec(
            RATE,
            format!("sum by (route) (rate({REQUEST_DURATION}_count[5m]))"),
        ),
        rec(
            P99,
            format!(
                "histogram_quantile(0.99, sum by (route, le) (rate({REQUEST_DURATION}_bucket[5m])))"
            ),
        ),
        rec(
            "seawall:route_latency_p99:avg1d",
            format!("avg_over_time({P99}[1d] offset 1h)"),
        ),
        rec(
            "seawall:route_latency_p99:stddev1d",
            format!("stddev_over_time({P99}[1d] offset 1h)"),
        ),
        rec(
            "seawall:route_latency_p99:avg1h_1d_ago",
            format!("avg_over_time({P99}[1h] offset 23h30m)"),
        ),
        rec(
            "seawall:route_latency_p99:avg1h_1w_ago",
            format!("avg_over_time({P99}[1h] offset 167h30m)"),
        ),
        rec(
            UPPER,
            format!(
                "max by (route) (\n  {}\n  or\n  {}\n  or\n  {}\n  or\n  {}\n)",
                band(
                    "seawall:route_latency_p99:avg1d + 3 * seawall:route_latency_p99:stddev1d",
                    "trailing_day"
                ),
                band("1.2 * seawall:route_latency_p99:avg1h_1d_ago", "yesterday"),
                band("1.2 * seawall:route_latency_p99:avg1h_1w_ago", "last_week"),
                band("1.2 * seawall:route_latency_p99:avg1d", "floor"),
            ),
        ),
        Rule::Alert {
            alert: "SeawallLatencyAboveBaseline".into(),
            expr: format!("{P99} > {UPPER}\nand on (route)\n{RATE} > {MIN_RATE}"),
            for_: Some(FOR.into()),
            labels: labels(&[("severity", "ticket")]),
            annotations: labels(&[
                (
                    "summary",
                    "Route {{ $labels.route }} is slower than its own history",
                ),
                (
                    "description",
                    "The p99 of route {{ $labels.route }} has been above its baseline band (mean + 3 standard deviations of the trailing day, and 1.2 times the same hour yesterday and last week) for 15 minutes.",
                ),
            ]),
        },
    ];
    Group {
        name: "seawall-latency-baseline".into(),
        interval: None,
        rules,
    }
}
