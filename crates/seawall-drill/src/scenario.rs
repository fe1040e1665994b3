//! The scenario file's typed model: what to load, what to break and when, what must hold.
//!
//! Raw serde types with `deny_unknown_fields`, so a typo is an error rather than a default.
//! Reading the text (with located diagnostics and `--set` overrides) is in [`parse`]; the
//! checks that need more than the types (windows that exist, one kind per action) are in
//! [`check`].

pub mod check;
pub mod locate;
pub mod parse;

use std::collections::BTreeMap;

use schemars::JsonSchema;
use seawall_config::HumanDuration;
use serde::{Deserialize, Serialize};

/// One drill: target, load, actions at offsets, steady-state probes and thresholds.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    /// What the drill runs against.
    pub target: Target,
    /// The open-loop load.
    pub load: Load,
    /// Faults, toxics and reloads at offsets from the start; each undone at its end.
    #[serde(default)]
    pub actions: Vec<Action>,
    /// Probes that must hold before the first action, during the run and after it.
    #[serde(default)]
    pub steady_state: SteadyState,
    /// Pass/fail rules over windows of the run (see docs/drills.md, "Thresholds").
    #[serde(default)]
    pub thresholds: Vec<String>,
    /// Seed of the request mix's random choices, so a run can be repeated.
    #[serde(default = "default_seed")]
    pub seed: u64,
}

fn default_seed() -> u64 {
    1
}

/// The system under test: a running gateway, or one started in-process.
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Target {
    /// The gateway's traffic URL, e.g. `http://127.0.0.1:8080`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gateway: Option<String>,
    /// The gateway's admin API URL, e.g. `http://127.0.0.1:9901`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub admin: Option<String>,
    /// The environment variable holding the admin API's bearer token.
    #[serde(default = "default_token_env")]
    pub admin_token_env: String,
    /// A Toxiproxy-compatible chaos API (`seawall chaos` or Toxiproxy), e.g.
    /// `http://127.0.0.1:8474`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chaos: Option<String>,
    /// A gateway config file (relative to the scenario file) to start in-process, with its
    /// sim, for the run; `gateway` and `admin` then default to its listeners.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub embedded: Option<String>,
}

fn default_token_env() -> String {
    "SEAWALL_ADMIN_TOKEN".to_owned()
}

/// The load: phases of arrival rates, a request mix, the protocol and connection cap.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Load {
    /// HTTP/1.1 keep-alive (one request at a time per connection) or h2c (multiplexed).
    #[serde(default)]
    pub protocol: Protocol,
    /// The most requests in flight at once: HTTP/1.1 connections, or h2c streams. A
    /// request due while all are busy waits (and is counted late), never skipped.
    #[serde(default = "default_connections")]
    pub connections: usize,
    /// h2c only: how many connections carry the streams.
    #[serde(default = "default_h2_connections")]
    pub h2_connections: usize,
    /// The most due requests that may wait for a free connection; beyond it a request is
    /// dropped (and counted). Bounds memory when the target stops answering.
    #[serde(default = "default_backlog")]
    pub max_backlog: usize,
    /// Each request's own timeout (counted as a `timeout` error).
    #[serde(default = "default_request_timeout")]
    pub timeout: HumanDuration,
    /// Phases, run one after the other.
    pub phases: Vec<Phase>,
    /// The request mix; each request is picked by weight (a phase may have its own).
    #[serde(default)]
    pub requests: Vec<RequestSpec>,
}

fn default_connections() -> usize {
    64
}

fn default_h2_connections() -> usize {
    2
}

fn default_backlog() -> usize {
    100_000
}

fn default_request_timeout() -> HumanDuration {
    HumanDuration::from_secs(10)
}

/// The wire protocol of the load.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Protocol {
    /// HTTP/1.1 with keep-alive.
    #[default]
    Http1,
    /// HTTP/2 over cleartext, with prior knowledge.
    H2c,
}

/// One phase of the load: a duration at a constant rate or a linear ramp.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Phase {
    /// The phase's name, usable as a threshold window (`during warmup`).
    pub name: String,
    /// How long it lasts.
    pub duration: HumanDuration,
    /// A constant arrival rate, requests per second.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate: Option<f64>,
    /// A linear ramp of the arrival rate from `from` to `to` requests per second.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ramp: Option<Ramp>,
    /// This phase's own request mix, instead of `load.requests`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requests: Option<Vec<RequestSpec>>,
}

/// A linear change of the arrival rate over a phase.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Ramp {
    /// The rate at the phase's start, requests per second.
    pub from: f64,
    /// The rate at the phase's end, requests per second.
    pub to: f64,
}

/// One kind of request in the mix.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RequestSpec {
    /// The method, default `GET`.
    #[serde(default = "default_method")]
    pub method: String,
    /// The path and query, e.g. `/api/items?page=2`.
    pub path: String,
    /// Request headers.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, String>,
    /// The request body, sent as is.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub body: String,
    /// The relative weight in the mix, default 1.
    #[serde(default = "default_weight")]
    pub weight: u32,
}

fn default_method() -> String {
    "GET".to_owned()
}

fn default_weight() -> u32 {
    1
}

/// Something done to the system at an offset, and undone at its end.
///
/// Exactly one of `fault`, `toxic` and `reload` is given.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Action {
    /// The action's name, usable as a threshold window (`during fault`).
    pub name: String,
    /// When to take it, from the start of the load.
    pub at: HumanDuration,
    /// How long it lasts; it is undone then. Without it, it lasts to the end of the run
    /// (and is undone then).
    #[serde(default, rename = "for", skip_serializing_if = "Option::is_none")]
    pub lasts: Option<HumanDuration>,
    /// A gateway fault, put through the admin API (`PUT /faults/{name}`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fault: Option<FaultAction>,
    /// A toxic, added through the chaos API (`POST /proxies/{proxy}/toxics`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub toxic: Option<ToxicAction>,
    /// A config reload (`POST /reload`); nothing to undo.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reload: Option<ReloadAction>,
}

/// A runtime fault of the gateway.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FaultAction {
    /// The fault's name in the gateway (`/faults/{name}`); default the action's name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The body of `PUT /faults/{name}`: `route` or `upstream`, the rule (`percentage`,
    /// `delay`, `abort`, `match`, ...) and an optional `ttl`; see docs/faults.md.
    pub spec: serde_json::Value,
}

/// A Toxiproxy toxic.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ToxicAction {
    /// The chaos proxy's name.
    pub proxy: String,
    /// The toxic's name; default the action's name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The toxic type: `latency`, `bandwidth`, `slow_close`, `timeout`, `reset_peer`, ...
    #[serde(rename = "type")]
    pub kind: String,
    /// `downstream` (default) or `upstream`.
    #[serde(default = "default_stream")]
    pub stream: String,
    /// The share of connections affected, 0 to 1.
    #[serde(default = "default_toxicity")]
    pub toxicity: f64,
    /// The type's attributes, e.g. `{latency: 2000, jitter: 100}`.
    #[serde(default)]
    pub attributes: serde_json::Map<String, serde_json::Value>,
}

fn default_stream() -> String {
    "downstream".to_owned()
}

fn default_toxicity() -> f64 {
    1.0
}

/// A reload of the gateway's config file.
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ReloadAction {}

/// Steady-state probes: a gate before the first action, checks during, and after.
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SteadyState {
    /// Checked once before the load starts; a failure ends the drill with exit 4.
    #[serde(default)]
    pub before: Vec<Probe>,
    /// Checked every `interval` while the load runs; a failure fails the drill.
    #[serde(default)]
    pub during: Vec<Probe>,
    /// Checked once after the load ends and every action was undone.
    #[serde(default)]
    pub after: Vec<Probe>,
    /// How often `during` probes run.
    #[serde(default = "default_probe_interval")]
    pub interval: HumanDuration,
}

fn default_probe_interval() -> HumanDuration {
    HumanDuration::from_secs(1)
}

/// One steady-state probe: an HTTP request, or a value from the gateway's `/metrics`.
///
/// Exactly one of `http` and `metric` is given.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Probe {
    /// A name for the report; default a description of the probe.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// An HTTP request that must answer with `status`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http: Option<HttpProbe>,
    /// A comparison on a `/metrics` value, e.g. `seawall_up == 1` or
    /// `seawall_connections_open{listener="main"} < 100`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metric: Option<String>,
}

/// An HTTP probe.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct HttpProbe {
    /// Which base URL `path` is on: `gateway` (default) or `admin`.
    #[serde(default)]
    pub on: ProbeTarget,
    /// The path, e.g. `/healthz`.
    pub path: String,
    /// The method, default `GET`.
    #[serde(default = "default_method")]
    pub method: String,
    /// The status it must answer with, default 200.
    #[serde(default = "default_status")]
    pub status: u16,
    /// How long to wait for the answer.
    #[serde(default = "default_probe_timeout")]
    pub timeout: HumanDuration,
}

fn default_status() -> u16 {
    200
}

fn default_probe_timeout() -> HumanDuration {
    HumanDuration::from_secs(2)
}

/// Where an HTTP probe is sent.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ProbeTarget {
    /// The gateway's traffic URL.
    #[default]
    Gateway,
    /// The admin API.
    Admin,
}

impl Scenario {
    /// The load's total duration: the sum of its phases.
    pub fn duration(&self) -> std::time::Duration {
        self.load.phases.iter().map(|p| p.duration.get()).sum()
    }

    /// The JSON Schema (draft 2020-12) of the scenario file.
    pub fn schema() -> serde_json::Value {
        schemars::schema_for!(Scenario).to_value()
    }
}

impl Action {
    /// The fault's name in the gateway.
    pub fn fault_name(&self) -> &str {
        self.fault
            .as_ref()
            .and_then(|f| f.name.as_deref())
            .unwrap_or(&self.name)
    }

    /// The toxic's name in the chaos API.
    pub fn toxic_name(&self) -> &str {
        self.toxic
            .as_ref()
            .and_then(|t| t.name.as_deref())
            .unwrap_or(&self.name)
    }
}
