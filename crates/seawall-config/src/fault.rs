//! Fault rules: what the `fault` middleware injects (a delay, an abort, or both), on which
//! requests, how often and how many times. See `docs/faults.md`.
//!
//! [`FaultRule`] is self-contained (name, match, selection, action) so that the three places
//! that hold rules share it: a route's `fault` layer (client-facing), an upstream's
//! `faults` (injected inside a try, seen by the upstream policies as the upstream failing)
//! and the admin API's runtime faults ([`RuntimeFault`]). Which keys a rule may use depends
//! on the place: `validate` checks that (`endpoint`, `connect_error`, `upstream_reset` and
//! `blackhole` only upstream-side; `throttle`, `reset` and `close` only client-facing).

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
    /// Let requests ask for a fault with `seawall-fault-delay` / `seawall-fault-abort`
    /// headers; such a request still needs a matching, selected rule (its `percentage`,
    /// `first` and `max_active` cap the header faults). The headers are never forwarded.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub allow_header_faults: bool,
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
    /// Seed of this rule's own random draws (`percentage`, delays); in a `fault` layer it
    /// defaults to one derived from the layer's `seed`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seed: Option<u64>,
    /// The rule starts acting this long after it was loaded (config load or reload, or
    /// the admin `PUT`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after: Option<HumanDuration>,
    /// The rule acts for this long (from `after`, else from when it was loaded), then
    /// stops.
    #[serde(default, rename = "for", skip_serializing_if = "Option::is_none")]
    pub active_for: Option<HumanDuration>,
    /// Upstream-side only: fault just this endpoint (as written in the upstream's
    /// `endpoints`); every endpoint when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
    /// Client-facing only: pace the response body to this rate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub throttle: Option<ThrottleConfig>,
}

/// Body pacing of a client-facing fault.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ThrottleConfig {
    /// The response body is sent at most this fast.
    pub bytes_per_second: u64,
}

/// A rule set at runtime through the admin API (`PUT /faults/{name}`): where it applies,
/// how long it lives, and the rule itself. Not a config file section: the admin API
/// reads the JSON body into it with [`RuntimeFault::from_json`].
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RuntimeFault {
    /// The route whose requests it faults (client-facing), …
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub route: Option<String>,
    /// … or the upstream whose tries it faults (upstream-side).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upstream: Option<String>,
    /// Removed by itself this long after it was put.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttl: Option<HumanDuration>,
    /// The rule (its `name` is the one in the path).
    #[serde(flatten)]
    pub rule: FaultRule,
}

impl RuntimeFault {
    /// Reads a `PUT /faults/{name}` body: an object with the rule's keys plus `route` or
    /// `upstream` and an optional `ttl`; `name` is taken from the path (a different one
    /// in the body is an error). Errors name the key.
    pub fn from_json(name: &str, body: &[u8]) -> Result<Self, String> {
        let mut value: serde_json::Value =
            serde_json::from_slice(body).map_err(|e| format!("body is not JSON: {e}"))?;
        let Some(object) = value.as_object_mut() else {
            return Err(
                "body must be a JSON object: a fault rule plus `route` or `upstream`".into(),
            );
        };
        let take = |o: &mut serde_json::Map<String, serde_json::Value>, key: &str| {
            o.remove(key)
                .map(|v| serde_json::from_value::<String>(v).map_err(|e| format!("{key}: {e}")))
                .transpose()
        };
        let route = take(object, "route")?;
        let upstream = take(object, "upstream")?;
        let ttl = object
            .remove("ttl")
            .map(|v| serde_json::from_value::<HumanDuration>(v).map_err(|e| format!("ttl: {e}")))
            .transpose()?;
        match object.get("name").and_then(|n| n.as_str()) {
            Some(n) if n != name => {
                return Err(format!(
                    "name: `{n}` differs from the name in the path, `{name}`"
                ));
            }
            _ => {}
        }
        object.insert("name".into(), serde_json::Value::String(name.to_owned()));
        let rule = serde_json::from_value::<FaultRule>(value).map_err(|e| e.to_string())?;
        Ok(Self {
            route,
            upstream,
            ttl,
            rule,
        })
    }
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

/// How long a fault waits: give exactly one of `fixed`, `uniform`, `normal` or
/// `lognormal`. Drawn delays are clamped to 0 and [`MAX_FAULT_DELAY`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DelayConfig {
    /// Always this long, e.g. `200ms`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fixed: Option<HumanDuration>,
    /// Drawn uniformly between `min` and `max`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uniform: Option<UniformDelay>,
    /// Drawn from a normal distribution (negative draws become 0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub normal: Option<SpreadDelay>,
    /// Drawn from a log-normal distribution with this mean and standard deviation (of the
    /// delay itself, not of its logarithm): a long right tail, like real latency.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lognormal: Option<SpreadDelay>,
}

/// The longest delay a drawn distribution may give: a long tail must not hold a request
/// for hours.
pub const MAX_FAULT_DELAY: HumanDuration = HumanDuration::from_secs(3600);

/// A delay distribution's mean and standard deviation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SpreadDelay {
    /// Mean delay.
    pub mean: HumanDuration,
    /// Standard deviation.
    pub stddev: HumanDuration,
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

/// How a fault ends a request: `status` and/or `grpc_status`, or one of the flags.
/// Client-facing: `reset`, `close`. Upstream-side (what the try sees from "the
/// upstream"): `connect_error`, `upstream_reset`, `blackhole`; `status` and
/// `grpc_status` are then the upstream's answer.
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
    /// Upstream-side: the connection is refused (`connect_error`); the request was never
    /// sent.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub connect_error: bool,
    /// Upstream-side: the upstream resets the connection after taking the request
    /// (`upstream_reset`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub upstream_reset: bool,
    /// Upstream-side: the upstream takes the request and never answers; the try waits
    /// for `timeouts.response_header`, the per-try timeout or the deadline.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub blackhole: bool,
}
