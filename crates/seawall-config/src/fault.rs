//! Fault rules: what the `fault` middleware injects (a delay, an abort, or both), on which
//! requests, how often and how many times. See `docs/faults.md`.
//!
//! [`FaultRule`] is self-contained (name, match, selection, action) so that upstream-side
//! faults and faults set at runtime through the admin API can use the same type.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::units::HumanDuration;

/// Settings of the `fault` middleware.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FaultConfig {
    /// Seed of the layer's random draws (`percentage`, uniform delays), so runs repeat;
    /// without it, every start draws differently.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seed: Option<u64>,
    /// The rules, tried in order; the first that matches and is selected applies.
    pub rules: Vec<FaultRule>,
}

/// One fault rule.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FaultRule {
    /// Unique within the layer; sent in the `seawall-fault` header and the metric's
    /// `fault` label.
    pub name: String,
    /// Which requests the rule applies to; every request when absent.
    #[serde(default, rename = "match")]
    pub matches: FaultMatch,
    /// Share of matching requests that get the fault, 0 to 100 (fractions allowed).
    #[serde(default = "default_percentage")]
    pub percentage: f64,
    /// Wait before forwarding (or before the abort).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delay: Option<DelayConfig>,
    /// Answer (or end the connection) instead of forwarding.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub abort: Option<AbortConfig>,
    /// Inject the fault at most this many times (the first N selected requests).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first: Option<u64>,
    /// At most this many requests inside the fault at once; beyond it, requests pass.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_active: Option<u32>,
}

fn default_percentage() -> f64 {
    100.0
}

/// Which requests a fault rule applies to; every condition given must hold.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FaultMatch {
    /// Request methods (`GET`, `POST`, …); any method when empty.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub methods: Vec<String>,
    /// The path starts with this string (a plain prefix).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path_prefix: Option<String>,
    /// Headers that must be present with exactly these values.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, String>,
}

/// How long a fault waits: give exactly one of `fixed` or `uniform`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DelayConfig {
    /// Always this long, e.g. `200ms`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fixed: Option<HumanDuration>,
    /// Drawn uniformly between `min` and `max`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uniform: Option<UniformDelay>,
}

/// A delay range.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct UniformDelay {
    /// Shortest delay.
    pub min: HumanDuration,
    /// Longest delay.
    pub max: HumanDuration,
}

/// How a fault ends a request: `status` and/or `grpc_status`, or `reset`, or `close`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AbortConfig {
    /// Answer with this HTTP status (200–599).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    /// Answer gRPC requests (`content-type: application/grpc*`) with this `grpc-status`
    /// (0–16) in a trailers-only response; with `status` too, other requests get `status`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grpc_status: Option<u32>,
    /// Reset the client's connection (HTTP/2: the stream) without a response.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub reset: bool,
    /// Close the client's connection without a response.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub close: bool,
}
