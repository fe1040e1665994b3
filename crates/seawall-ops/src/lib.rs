//! The operations artefacts generated from a config: Prometheus rules
//! ([`rules::render`]: SLO recording rules and multi-window multi-burn-rate alerts, dynamic
//! latency baselines, alerts on what the gateway itself knows) and a Grafana dashboard
//! ([`dashboard::render`]).
//!
//! Both name metrics only through [`catalogue`], the list of families the gateway exports,
//! so a test can hold every generated query to what a real `/metrics` serves. Thresholds
//! are computed in [`decimal`] arithmetic, so `14.4 × 0.001` prints as `0.0144`.

pub mod catalogue;
pub mod dashboard;
pub mod decimal;
pub mod promql;
pub mod rules;
pub mod windows;
