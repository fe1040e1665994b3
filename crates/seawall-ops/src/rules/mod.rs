//! `seawall rules`: a Prometheus rule file from a config.
//!
//! Groups, in order: one per route with an SLO (`slo`: error and latency-SLI ratios over
//! the burn windows and the period, the objectives, the budget left, the burn-rate alerts),
//! the latency baselines of every route (`baseline`), and the alerts on what the gateway
//! knows of itself (`gateway`). [`yaml`] prints them; the model here is only what that
//! printing needs.

pub mod baseline;
pub mod gateway;
pub mod slo;
pub mod yaml;

use seawall_config::{Config, route_names};

/// A rule group.
#[derive(Debug, Clone, PartialEq)]
pub struct Group {
    /// Unique in the file.
    pub name: String,
    /// How often Prometheus evaluates it; its global `evaluation_interval` when `None`.
    pub interval: Option<&'static str>,
    /// Evaluated in order, so a rule may use a series recorded above it.
    pub rules: Vec<Rule>,
}

/// A recording or an alerting rule.
#[derive(Debug, Clone, PartialEq)]
pub enum Rule {
    /// `record: name`.
    Record {
        record: String,
        expr: String,
        labels: Vec<(String, String)>,
    },
    /// `alert: name`.
    Alert {
        alert: String,
        expr: String,
        for_: Option<String>,
        labels: Vec<(String, String)>,
        annotations: Vec<(String, String)>,
    },
}

impl Rule {
    /// The PromQL expression.
    pub fn expr(&self) -> &str {
        match self {
            Rule::Record { expr, .. } | Rule::Alert { expr, .. } => expr,
        }
    }
}

/// Every group for `config`.
pub fn groups(config: &Config) -> Vec<Group> {
    let names: Vec<String> = route_names(config).collect();
    let routes = config.listeners.iter().flat_map(|l| l.routes.iter());
    let mut groups: Vec<Group> = names
        .iter()
        .zip(routes)
        .filter_map(|(name, route)| route.slo.as_ref().map(|slo| (name, slo)))
        .flat_map(|(name, slo)| slo::groups(name, slo, &config.metrics.request_duration_buckets))
        .collect();
    groups.push(baseline::group());
    groups.push(gateway::group(config));
    groups
}

/// The rule file for `config`, as YAML.
pub fn render(config: &Config) -> String {
    yaml::render(&groups(config))
}

/// Labels written as `(name, value)` pairs.
fn labels(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}
