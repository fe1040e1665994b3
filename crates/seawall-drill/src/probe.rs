//! Steady-state probes: an HTTP request that must answer with a status, or a comparison on
//! a `/metrics` value (`seawall_up == 1`).

use std::{collections::BTreeMap, time::Duration};

use http::Method;
use serde::Serialize;

use crate::{
    control::{self, Base},
    metrics::Scrape,
    scenario::{Probe, ProbeTarget},
    threshold::parse::{self, CmpOp, ParseError, Rule, Stat, Term},
};

/// A parsed metric probe: `NAME[{labels}] OP NUMBER`.
#[derive(Debug, Clone, PartialEq)]
pub struct MetricCheck {
    /// The metric family.
    pub name: String,
    /// Labels that must match.
    pub labels: BTreeMap<String, String>,
    /// The comparison.
    pub op: CmpOp,
    /// The limit.
    pub value: f64,
}

impl MetricCheck {
    /// Parses `seawall_up == 1` or `seawall_x{route="api"} < 5`, with the threshold
    /// language's tokenizer (as `metric(...) OP N`).
    pub fn parse(text: &str) -> Result<Self, ParseError> {
        let hint =
            "write a metric probe as `NAME{label=\"value\"} OP NUMBER`, e.g. `seawall_up == 1`";
        // The comparison is the first operator after the labels (which hold `=` themselves).
        let after_labels = text.find('}').map_or(0, |i| i + 1);
        let split = text[after_labels..]
            .find(['<', '>', '=', '!'])
            .map(|i| i + after_labels)
            .ok_or_else(|| ParseError {
                message: "a metric probe needs a comparison".to_owned(),
                at: text.chars().count() + 1,
                hint: hint.to_owned(),
            })?;
        let rewritten = format!("metric({}) {}", text[..split].trim(), &text[split..]);
        match parse::parse(&rewritten) {
            Ok(Rule::Compare {
                left, op, right, ..
            }) => match (left.factors.as_slice(), right.factors.as_slice()) {
                ([Term::Stat(Stat::Metric { name, labels })], [Term::Number(value)]) => Ok(Self {
                    name: name.clone(),
                    labels: labels.clone(),
                    op,
                    value: *value,
                }),
                _ => Err(ParseError {
                    message: "a metric probe compares one metric with a number".to_owned(),
                    at: 1,
                    hint: hint.to_owned(),
                }),
            },
            Ok(_) => Err(ParseError {
                message: "not a metric comparison".to_owned(),
                at: 1,
                hint: hint.to_owned(),
            }),
            Err(e) => Err(ParseError { at: 1, ..e }),
        }
    }
}

/// A probe's outcome.
#[derive(Debug, Clone, Serialize)]
pub struct ProbeResult {
    /// The probe's name.
    pub name: String,
    /// Whether it held.
    pub ok: bool,
    /// What was seen (status, value, or the error).
    pub detail: String,
}

/// Where probes are sent.
#[derive(Debug, Clone)]
pub struct ProbeTargets {
    /// The gateway's traffic URL.
    pub gateway: Base,
    /// The admin API, when known.
    pub admin: Option<Base>,
    /// The admin token, when set.
    pub token: Option<String>,
}

/// Runs one probe.
pub async fn run(probe: &Probe, targets: &ProbeTargets) -> ProbeResult {
    if let Some(h) = &probe.http {
        let name = probe
            .name
            .clone()
            .unwrap_or_else(|| format!("{} {} == {}", h.method, h.path, h.status));
        let base = match h.on {
            ProbeTarget::Gateway => Some(&targets.gateway),
            ProbeTarget::Admin => targets.admin.as_ref(),
        };
        let Some(base) = base else {
            return ProbeResult {
                name,
                ok: false,
                detail: "no admin API in the target".into(),
            };
        };
        let method = Method::from_bytes(h.method.as_bytes()).unwrap_or(Method::GET);
        let token = matches!(h.on, ProbeTarget::Admin)
            .then_some(targets.token.as_deref())
            .flatten();
        return match control::call(base, method, &h.path, None, token, h.timeout.get()).await {
            Ok(a) => ProbeResult {
                name,
                ok: a.status.as_u16() == h.status,
                detail: format!("status {}", a.status.as_u16()),
            },
            Err(e) => ProbeResult {
                name,
                ok: false,
                detail: e.to_string(),
            },
        };
    }
    let text = probe.metric.clone().unwrap_or_default();
    let name = probe.name.clone().unwrap_or_else(|| text.clone());
    let check = match MetricCheck::parse(&text) {
        Ok(c) => c,
        Err(e) => {
            return ProbeResult {
                name,
                ok: false,
                detail: e.to_string(),
            };
        }
    };
    let Some(admin) = &targets.admin else {
        return ProbeResult {
            name,
            ok: false,
            detail: "no admin API in the target".into(),
        };
    };
    match scrape(admin).await {
        Ok(s) => match s.value(&check.name, &check.labels) {
            Some(v) => ProbeResult {
                name,
                ok: check.op.holds(v, check.value),
                detail: format!("value {v}"),
            },
            None => ProbeResult {
                name,
                ok: false,
                detail: format!("no metric `{}` in /metrics", check.name),
            },
        },
        Err(e) => ProbeResult {
            name,
            ok: false,
            detail: e.to_string(),
        },
    }
}

/// Reads the admin API's `/metrics`.
pub async fn scrape(admin: &Base) -> Result<Scrape, control::CallError> {
    let a = control::call(
        admin,
        Method::GET,
        "/metrics",
        None,
        None,
        Duration::from_secs(2),
    )
    .await?;
    Ok(Scrape::parse(&a.text()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metric_probes_parse_with_labels() {
        let c = MetricCheck::parse("seawall_x{route=\"api\"} < 5").unwrap();
        assert_eq!(c.name, "seawall_x");
        assert_eq!(c.labels.get("route").map(String::as_str), Some("api"));
        assert_eq!(c.op, CmpOp::Lt);
        assert!(MetricCheck::parse("seawall_up").is_err());
    }
}
