//! Rules about a route's service level objectives (`routes[].slo`): objectives strictly
//! between 0% and 100%, a period long enough for the burn-rate windows, and a latency
//! threshold the request-duration histogram can measure.

use std::time::Duration;

use super::Found;
use crate::{Config, Objective, SloConfig, locate::join_key, units::HumanDuration};

/// The shortest period: its page window (period / 8640) must still be 10 s, a few scrapes.
const MIN_PERIOD: Duration = Duration::from_secs(24 * 3600);

impl Found {
    pub(super) fn slo(&mut self, path: &str, slo: &SloConfig, config: &Config) {
        if let Some(a) = slo.availability {
            self.objective(join_key(path, "availability"), a);
        }
        if let Some(l) = &slo.latency {
            let lpath = join_key(path, "latency");
            self.objective(join_key(&lpath, "objective"), l.objective);
            self.threshold(
                join_key(&lpath, "threshold"),
                l.threshold,
                &config.metrics.request_duration_buckets,
            );
        }
        let period = slo.period.get();
        if period < MIN_PERIOD || period > HumanDuration::MAX.get() {
            let message = if period.is_zero() {
                "the SLO period must be greater than zero"
            } else {
                "the SLO period must be between 1 day and 365 days"
            };
            let hint = "the period is the window the objective holds over and scales the \
                        alert windows; the default is \"30d\" (the SRE workbook's)";
            self.push(
                join_key(path, "period"),
                Some(slo.period.to_string()),
                message,
                Some(hint.into()),
            );
        }
        if slo.availability.is_none() && slo.latency.is_none() {
            let hint = "set `availability: \"99.9%\"` or `latency: {objective: \"99%\", threshold: 250ms}`, or remove `slo`";
            self.push(
                path.into(),
                None,
                "slo sets no objective",
                Some(hint.into()),
            );
        }
    }

    fn objective(&mut self, path: String, objective: Objective) {
        if objective.is_attainable() {
            return;
        }
        let (digits, _) = objective.percent_parts();
        let hint = if digits == 0 {
            "0% promises nothing, so no alert could ever fire; e.g. \"99.9%\""
        } else {
            "100% leaves no error budget: one failed request breaks it and every burn-rate \
             alert fires at once; e.g. \"99.9%\" or \"99.99%\""
        };
        self.push(
            path,
            Some(objective.to_string()),
            "an objective must be strictly between 0% and 100%",
            Some(hint.into()),
        );
    }

    fn threshold(&mut self, path: String, threshold: HumanDuration, buckets: &[f64]) {
        if threshold.get().is_zero() {
            let hint = "no request takes zero time; e.g. 250ms";
            self.push(
                path,
                Some(threshold.to_string()),
                "the latency threshold must be greater than zero",
                Some(hint.into()),
            );
            return;
        }
        let secs = threshold.get().as_secs_f64();
        if buckets.iter().any(|b| (b - secs).abs() <= secs * 1e-9) {
            return;
        }
        let below = buckets.iter().rfind(|b| **b < secs);
        let above = buckets.iter().find(|b| **b > secs);
        let near: Vec<String> = below
            .into_iter()
            .chain(above)
            .map(|b| format!("{}", HumanDuration(Duration::from_secs_f64(*b))))
            .collect();
        let hint = format!(
            "the request-duration histogram counts requests under its bucket bounds only; use \
             a bound ({}) or add {secs} to `metrics.request_duration_buckets`",
            if near.is_empty() {
                "none is set".to_owned()
            } else {
                near.join(" or ")
            }
        );
        self.push(
            path,
            Some(threshold.to_string()),
            "the latency threshold is not a bucket bound of the request-duration histogram",
            Some(hint),
        );
    }
}
