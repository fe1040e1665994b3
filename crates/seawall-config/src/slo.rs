//! Service level objectives of a route (`routes[].slo`): what `seawall rules` turns into
//! recording rules and burn-rate alerts, and `seawall dashboard` into SLO lines.
//!
//! Objectives are exact decimals ([`Objective`]), never floats: the error budget of
//! `99.9%` is `0.001`, and every threshold derived from it is printed without float noise.

use std::{borrow::Cow, fmt, str::FromStr};

use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::{Deserialize, Serialize};

use crate::units::HumanDuration;

/// A route's objectives; each is optional, and the period is shared.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SloConfig {
    /// Share of requests answered without a 5xx (from the gateway or the upstream), e.g.
    /// `"99.9%"`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub availability: Option<Objective>,
    /// Share of requests answered within a threshold.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latency: Option<LatencySlo>,
    /// The window the objectives hold over; the burn-rate alert windows scale with it.
    #[serde(default = "default_period")]
    pub period: HumanDuration,
}

/// The period of the SRE workbook's alert windows.
pub fn default_period() -> HumanDuration {
    HumanDuration::from_secs(30 * 24 * 3600)
}

/// `slo.latency`: `objective` of the requests take at most `threshold`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LatencySlo {
    /// Share of requests within the threshold, e.g. `"99%"`.
    pub objective: Objective,
    /// From request head to the end of the response body; must be one of
    /// `metrics.request_duration_buckets`, since the histogram can only count requests
    /// under a bucket's bound.
    pub threshold: HumanDuration,
}

/// A percentage as an exact decimal: `percent = digits / 10^scale`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Objective {
    digits: u64,
    scale: u32,
}

impl Objective {
    /// The most decimals a percentage may carry (`99.999999%`).
    pub const MAX_DECIMALS: u32 = 6;

    /// The percentage as `(digits, scale)`: `percent = digits / 10^scale`.
    pub const fn percent_parts(self) -> (u64, u32) {
        (self.digits, self.scale)
    }

    /// Whether it is strictly between 0% and 100%, the only objectives with a budget to
    /// spend and something to spend it on.
    pub fn is_attainable(self) -> bool {
        self.digits > 0 && self.digits < 100 * 10u64.pow(self.scale)
    }
}

impl FromStr for Objective {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let t = s.trim();
        let bad = || {
            format!(
                "`{t}` is not a percentage; write the share with a `%`, e.g. \"99.9%\" (at most {} decimals)",
                Self::MAX_DECIMALS
            )
        };
        let number = t.strip_suffix('%').ok_or_else(bad)?.trim_end();
        let (whole, frac) = number.split_once('.').unwrap_or((number, ""));
        let digits_only = |p: &str| p.chars().all(|c| c.is_ascii_digit());
        if whole.is_empty() || whole.len() > 3 || !digits_only(whole) || !digits_only(frac) {
            return Err(bad());
        }
        let scale = u32::try_from(frac.len()).map_err(|_| bad())?;
        if scale > Self::MAX_DECIMALS {
            return Err(bad());
        }
        let digits = format!("{whole}{frac}").parse::<u64>().map_err(|_| bad())?;
        Ok(Self { digits, scale })
    }
}

impl fmt::Display for Objective {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let pow = 10u64.pow(self.scale);
        let (whole, frac) = (self.digits / pow, self.digits % pow);
        if self.scale == 0 {
            write!(f, "{whole}%")
        } else {
            write!(f, "{whole}.{frac:0width$}%", width = self.scale as usize)
        }
    }
}

impl<'de> Deserialize<'de> for Objective {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

impl Serialize for Objective {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl JsonSchema for Objective {
    fn schema_name() -> Cow<'static, str> {
        "Objective".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "type": "string",
            "pattern": "^[0-9]{1,3}(\\.[0-9]{1,6})?%$",
            "description": "A percentage strictly between 0% and 100%, e.g. \"99.9%\"."
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn objectives_parse_exactly_and_print_back() {
        let o: Objective = "99.9%".parse().unwrap();
        assert_eq!(o.percent_parts(), (999, 1));
        assert_eq!(o.to_string(), "99.9%");
        assert_eq!(
            "99.950%".parse::<Objective>().unwrap().to_string(),
            "99.950%"
        );
        assert_eq!("95%".parse::<Objective>().unwrap().percent_parts(), (95, 0));
        assert!("99.9%".parse::<Objective>().unwrap().is_attainable());
        assert!(!"100%".parse::<Objective>().unwrap().is_attainable());
        assert!(!"0%".parse::<Objective>().unwrap().is_attainable());
        assert!(!"0.000%".parse::<Objective>().unwrap().is_attainable());
    }

    #[test]
    fn non_percentages_are_refused_with_an_example() {
        for bad in [
            "99.9",
            "0.999",
            "%",
            "-1%",
            "99.9999999%",
            "9999%",
            "abc%",
            "1e2%",
        ] {
            let e = bad.parse::<Objective>().unwrap_err();
            assert!(e.contains("\"99.9%\""), "{bad}: {e}");
        }
    }
}
