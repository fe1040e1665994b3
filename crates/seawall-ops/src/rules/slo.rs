//! The rules of one route's SLO: error ratios over every burn window and the period, the
//! objective and the budget left as series (for the dashboard), and one alert per burn
//! window pair and objective.
//!
//! The availability SLI's bad events are 5xx answers, the gateway's own included; the
//! latency SLI's are requests slower than the threshold, which is a bucket bound of the
//! request-duration histogram (validation makes sure), so both are ratios of counters and
//! no quantile estimate enters an SLO.

use std::time::Duration;

use seawall_config::{Objective, SloConfig};

use super::{Group, Rule, labels};
use crate::{
    catalogue::REQUEST_DURATION,
    decimal::Decimal,
    promql::{duration, eq, le, quote, selector},
    windows::{burn_windows, recorded_windows},
};

/// The recorded error ratio of an SLI over `window`: `seawall:slo_errors:ratio_rate5m`.
pub fn ratio_name(sli: Sli, window: Duration) -> String {
    format!("seawall:{}:ratio_rate{}", sli.series(), duration(window))
}

/// Which SLI.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sli {
    /// Answers that are not 5xx.
    Availability,
    /// Answers within the threshold.
    Latency,
}

impl Sli {
    /// The `slo` label.
    pub const fn as_str(self) -> &'static str {
        match self {
            Sli::Availability => "availability",
            Sli::Latency => "latency",
        }
    }

    fn series(self) -> &'static str {
        match self {
            Sli::Availability => "slo_errors",
            Sli::Latency => "slo_latency_errors",
        }
    }
}

/// The groups of `route`'s SLO: the short windows evaluated as often as Prometheus likes,
/// the period (a rate over 30 days) every 5 minutes, which is plenty for a budget.
pub fn groups(route: &str, slo: &SloConfig, buckets: &[f64]) -> [Group; 2] {
    let mut rules = Vec::new();
    let mut slow = Vec::new();
    let period = slo.period.get();
    let slis = slis(slo, buckets);
    for (sli, objective, bad) in &slis {
        let windows = recorded_windows(period);
        let (last, short) = windows
            .split_last()
            .map_or((period, &[][..]), |(l, s)| (*l, s));
        for window in short {
            rules.push(record(route, *sli, *window, bad));
        }
        slow.push(record(route, *sli, last, bad));
        rules.push(Rule::Record {
            record: "seawall:slo_objective:ratio".into(),
            expr: format!("vector({})", Decimal::ratio(*objective)),
            labels: labels(&[("route", route), ("slo", sli.as_str())]),
        });
        slow.push(Rule::Record {
            record: "seawall:slo_error_budget_remaining:ratio".into(),
            expr: format!(
                "1 - {}{{{}}} / {}",
                ratio_name(*sli, last),
                eq("route", route),
                Decimal::budget(*objective)
            ),
            labels: labels(&[("slo", sli.as_str())]),
        });
    }
    for (sli, objective, _) in &slis {
        for w in burn_windows(period) {
            rules.push(alert(route, *sli, *objective, &w));
        }
    }
    [
        Group {
            name: format!("seawall-slo-{route}"),
            interval: None,
            rules,
        },
        Group {
            name: format!("seawall-slo-{route}-period"),
            interval: Some("5m"),
            rules: slow,
        },
    ]
}

/// What counts as a bad event.
enum Bad {
    /// A 5xx answer.
    Status5xx,
    /// An answer slower than the bucket bound whose `le` label value this is.
    SlowerThan(String),
}

fn slis(slo: &SloConfig, buckets: &[f64]) -> Vec<(Sli, Objective, Bad)> {
    let mut out = Vec::new();
    if let Some(a) = slo.availability {
        out.push((Sli::Availability, a, Bad::Status5xx));
    }
    if let Some(l) = &slo.latency {
        let secs = l.threshold.get().as_secs_f64();
        // Validation made the threshold a bucket bound; print that bound, as the
        // histogram does.
        let bound = buckets
            .iter()
            .copied()
            .find(|b| (b - secs).abs() <= secs * 1e-9)
            .unwrap_or(secs);
        out.push((Sli::Latency, l.objective, Bad::SlowerThan(le(bound))));
    }
    out
}

fn record(route: &str, sli: Sli, window: Duration, bad: &Bad) -> Rule {
    let w = duration(window);
    let r = eq("route", route);
    let count = format!("{REQUEST_DURATION}_count");
    let total = format!(
        "sum by (route) (rate({}[{w}]))",
        selector(&count, std::slice::from_ref(&r))
    );
    let expr = match bad {
        // A route without a single 5xx has no 5xx series: count it as zero errors, not
        // as no data, so the ratio is 0 rather than absent.
        Bad::Status5xx => format!(
            "(\n  sum by (route) (rate({}[{w}]))\n  or\n  0 * {total}\n)\n/\n{total}",
            selector(&count, &[r.clone(), eq("status_class", "5xx")])
        ),
        Bad::SlowerThan(le) => format!(
            "1 - (\n  sum by (route) (rate({}[{w}]))\n  /\n  {total}\n)",
            selector(
                &format!("{REQUEST_DURATION}_bucket"),
                &[r.clone(), eq("le", le)]
            )
        ),
    };
    Rule::Record {
        record: ratio_name(sli, window),
        expr,
        labels: Vec::new(),
    }
}

fn alert(route: &str, sli: Sli, objective: Objective, w: &crate::windows::BurnWindow) -> Rule {
    let threshold = w.factor * Decimal::budget(objective);
    let r = eq("route", route);
    let expr = format!(
        "{}{{{r}}} > {threshold}\nand\n{}{{{r}}} > {threshold}",
        ratio_name(sli, w.long),
        ratio_name(sli, w.short),
    );
    let (long, short) = (duration(w.long), duration(w.short));
    Rule::Alert {
        alert: "SeawallErrorBudgetBurn".into(),
        expr,
        for_: None,
        labels: labels(&[
            ("severity", w.severity.as_str()),
            ("slo", sli.as_str()),
            ("long", &long),
            ("short", &short),
        ]),
        annotations: labels(&[
            (
                "summary",
                &format!(
                    "Route {{{{ $labels.route }}}} is spending its {} error budget {}× too fast",
                    sli.as_str(),
                    w.factor
                ),
            ),
            (
                "description",
                &format!(
                    "The {} objective of route {} is {objective}; its error ratio is above {threshold} over both the last {long} and the last {short}.",
                    sli.as_str(),
                    quote(route)
                ),
            ),
        ]),
    }
}
