//! The config model of the resilience policies: circuit breaker, balancer, outlier
//! ejection, bulkhead (per upstream) and retries (per route).
//!
//! Every block is optional and off unless written, except the balancer, which always runs
//! (`p2c_ewma` by default). Inside a block every key has the default documented in
//! `docs/policies.md`, the same values `seawall-resilience` uses, so `breaker: {}` turns a
//! breaker on with its defaults. Semantic rules (ratios in range, durations ordered,
//! `failure_on` / `retry_on` entries that name a status or an error kind) are in
//! `crate::validate::policy`.

use std::{borrow::Cow, fmt, str::FromStr};

use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::{Deserialize, Serialize};

use crate::units::{ByteSize, HumanDuration};

/// The error kinds a breaker counts as failures by default (the upstream's doing).
pub const BREAKER_DEFAULT_FAILURE_ON: [&str; 11] = [
    "5xx",
    "connect_timeout",
    "connect_error",
    "tls_handshake_timeout",
    "tls_error",
    "response_header_timeout",
    "per_try_timeout",
    "deadline_exceeded",
    "upstream_reset",
    "upstream_protocol",
    "pool_exhausted",
];

/// What a route retries by default.
pub const RETRY_DEFAULT_RETRY_ON: [&str; 8] = [
    "502",
    "503",
    "504",
    "connect_error",
    "connect_timeout",
    "tls_error",
    "tls_handshake_timeout",
    "upstream_reset",
];

fn strings(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| (*s).to_owned()).collect()
}

/// A circuit breaker for an upstream (`upstreams[].breaker`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct BreakerConfig {
    /// Length of the sliding window the ratios are computed over.
    pub window: HumanDuration,
    /// Buckets the window is split into (1-1000); it forgets one bucket at a time.
    pub buckets: u32,
    /// No ratio is evaluated until the window holds at least this many calls.
    pub min_calls: u32,
    /// Trip when failures / calls reaches this, in (0, 1].
    pub failure_ratio: f64,
    /// A call taking at least this long is slow.
    pub slow_call_duration: HumanDuration,
    /// Trip when slow calls / calls reaches this, in (0, 1].
    pub slow_call_ratio: f64,
    /// How long the first trip keeps the breaker open.
    pub open_duration: HumanDuration,
    /// Growth of the open period per consecutive trip, at least 1.
    pub open_multiplier: f64,
    /// Ceiling of the open period.
    pub max_open_duration: HumanDuration,
    /// Probes admitted while half-open; all must succeed to close.
    pub half_open_probes: u32,
    /// Outcomes counted as failures: statuses (`503`), ranges (`500-599`), classes (`5xx`)
    /// or error kinds (`connect_error`).
    #[schemars(with = "Vec<OutcomeEntry>")]
    pub failure_on: Vec<String>,
}

impl Default for BreakerConfig {
    fn default() -> Self {
        Self {
            window: HumanDuration::from_secs(10),
            buckets: 10,
            min_calls: 20,
            failure_ratio: 0.5,
            slow_call_duration: HumanDuration::from_secs(60),
            slow_call_ratio: 1.0,
            open_duration: HumanDuration::from_secs(5),
            open_multiplier: 2.0,
            max_open_duration: HumanDuration::from_secs(60),
            half_open_probes: 1,
            failure_on: strings(&BREAKER_DEFAULT_FAILURE_ON),
        }
    }
}

/// How an upstream picks the endpoint for each try (`upstreams[].balancer`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum BalancerKind {
    /// Power of two random choices over peak-EWMA cost (latency × pending).
    #[default]
    P2cEwma,
    /// Each endpoint in turn.
    RoundRobin,
}

impl BalancerKind {
    /// The name as written in config.
    pub const fn as_str(self) -> &'static str {
        match self {
            BalancerKind::P2cEwma => "p2c_ewma",
            BalancerKind::RoundRobin => "round_robin",
        }
    }
}

/// Consecutive-failure ejection of endpoints (`upstreams[].outlier`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct OutlierConfig {
    /// Failures in a row (502/503/504 or a connection failure) that eject an endpoint.
    pub consecutive_failures: u32,
    /// The first ejection; the n-th lasts n × this.
    pub base_ejection_time: HumanDuration,
    /// Ceiling of an ejection.
    pub max_ejection_time: HumanDuration,
    /// Most endpoints ejected at once, in percent (0-100; at least one unless 0).
    pub max_ejection_percent: u32,
    /// Un-ejected time that takes one off the ejection multiplier.
    pub interval: HumanDuration,
}

impl Default for OutlierConfig {
    fn default() -> Self {
        Self {
            consecutive_failures: 5,
            base_ejection_time: HumanDuration::from_secs(30),
            max_ejection_time: HumanDuration::from_secs(300),
            max_ejection_percent: 10,
            interval: HumanDuration::from_secs(10),
        }
    }
}

/// A bulkhead: the most tries running against an upstream at once (`upstreams[].concurrency`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct ConcurrencyConfig {
    /// Tries running at once, at least 1 (unused with `adaptive`).
    pub max_concurrent: u32,
    /// Tries waiting for a slot; beyond this they are refused at once (503 `overloaded`).
    pub max_pending: u32,
    /// How long a try waits for a slot (never past the request deadline).
    pub queue_timeout: HumanDuration,
    /// Replace the fixed `max_concurrent` with a limit that follows the upstream's latency.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub adaptive: Option<AdaptiveConcurrencyConfig>,
}

/// An adaptive concurrency limit (`upstreams[].concurrency.adaptive`): Gradient2, the limit
/// falling as the upstream's latency rises above its long-run average.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct AdaptiveConcurrencyConfig {
    /// The floor, at least 1.
    pub min_limit: u32,
    /// The ceiling.
    pub max_limit: u32,
    /// The limit before any sample, within `min_limit..=max_limit`.
    pub initial_limit: u32,
}

impl Default for AdaptiveConcurrencyConfig {
    fn default() -> Self {
        Self {
            min_limit: 20,
            max_limit: 200,
            initial_limit: 20,
        }
    }
}

impl Default for ConcurrencyConfig {
    fn default() -> Self {
        Self {
            max_concurrent: 1024,
            max_pending: 1024,
            queue_timeout: HumanDuration::from_secs(1),
            adaptive: None,
        }
    }
}

/// The retry budget of an upstream (`upstreams[].retry_budget`), shared by every route that
/// retries against it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct RetryBudgetConfig {
    /// Retries allowed per request (0.2: retries add at most 20 % load), 0-1000.
    pub ratio: f64,
    /// Retries per second allowed whatever the load (the reserve is this × `ttl`).
    pub min_retries_per_second: u32,
    /// How long a request's deposit and a retry's withdrawal count, 1s-60s.
    pub ttl: HumanDuration,
}

impl Default for RetryBudgetConfig {
    fn default() -> Self {
        Self {
            ratio: 0.2,
            min_retries_per_second: 10,
            ttl: HumanDuration::from_secs(10),
        }
    }
}

/// The backoff between tries.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct BackoffConfig {
    /// Ceiling of the first retry's wait (full jitter: the wait is random below it).
    pub base: HumanDuration,
    /// Largest ceiling.
    pub max: HumanDuration,
    /// Growth of the ceiling per retry, at least 1.
    pub multiplier: f64,
    /// Longest upstream `Retry-After` honoured (on 429 and 503); 0 ignores it.
    pub max_retry_after: HumanDuration,
}

impl Default for BackoffConfig {
    fn default() -> Self {
        Self {
            base: HumanDuration::from_millis(25),
            max: HumanDuration::from_millis(250),
            multiplier: 2.0,
            max_retry_after: HumanDuration::from_secs(10),
        }
    }
}

/// Retries of a route (`routes[].retry`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct RetryConfig {
    /// Tries in total, the first included, 1-10.
    pub max_attempts: u32,
    /// Failures worth another try: statuses (`503`), ranges (`502-504`), classes (`5xx`)
    /// or error kinds (`connect_error`).
    #[schemars(with = "Vec<OutcomeEntry>")]
    pub retry_on: Vec<String>,
    /// Bound on each try (up to the response head), within the request deadline.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub per_try_timeout: Option<HumanDuration>,
    /// The wait before each retry.
    pub backoff: BackoffConfig,
    /// Also retry POST, PATCH and other non-idempotent methods (they may run twice).
    pub non_idempotent: bool,
    /// Request bodies up to this size are held in memory so a retry (or a fallback
    /// upstream) can send them again; a larger body streams and is sent once. 0 disables.
    pub buffer_body_max: ByteSize,
}

/// Default of `retry.buffer_body_max` (linkerd's 64 KiB).
pub const DEFAULT_BUFFER_BODY_MAX: ByteSize = ByteSize(64 * 1024);

impl Default for RetryConfig {
    fn default() -> Self {
        Self {
            max_attempts: 2,
            retry_on: strings(&RETRY_DEFAULT_RETRY_ON),
            per_try_timeout: None,
            backoff: BackoffConfig::default(),
            non_idempotent: false,
            buffer_body_max: DEFAULT_BUFFER_BODY_MAX,
        }
    }
}

/// One entry of `failure_on` / `retry_on`, parsed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutcomeMatch<'a> {
    /// Statuses `first..=last`.
    Statuses(u16, u16),
    /// An error kind, by its reason (not checked against the list of kinds here).
    Kind(&'a str),
}

impl<'a> OutcomeMatch<'a> {
    /// Parses `503`, `500-599`, `5xx` or an error kind name; `None` if the entry is a
    /// malformed status form (digits that are not one of the three shapes).
    pub fn parse(entry: &'a str) -> Option<Self> {
        let e = entry.trim();
        if let Some(class) = e.strip_suffix("xx").filter(|c| c.len() == 1) {
            let d: u16 = class.parse().ok()?;
            return (1..=5)
                .contains(&d)
                .then_some(Self::Statuses(d * 100, d * 100 + 99));
        }
        if let Some((a, b)) = e.split_once('-') {
            let (a, b): (u16, u16) = (a.trim().parse().ok()?, b.trim().parse().ok()?);
            let ok = (100..=599).contains(&a) && (100..=599).contains(&b) && a <= b;
            return ok.then_some(Self::Statuses(a, b));
        }
        if e.starts_with(|c: char| c.is_ascii_digit()) {
            let s: u16 = e.parse().ok()?;
            return (100..=599).contains(&s).then_some(Self::Statuses(s, s));
        }
        Some(Self::Kind(e))
    }
}

/// The schema of one `failure_on` / `retry_on` entry. The parser reads a bare status
/// (`503`, unquoted in YAML, so an integer) as well as strings; the schema must accept both,
/// or editors flag valid configs. "string" comes first: the structural check in
/// [`crate::shape`] uses the first type, and reads any scalar as a string.
struct OutcomeEntry;

impl JsonSchema for OutcomeEntry {
    fn schema_name() -> Cow<'static, str> {
        "OutcomeEntry".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "type": ["string", "integer"],
            "minimum": 100,
            "maximum": 599,
            "description": "A status (503), a range (\"500-599\"), a class (\"5xx\") or an error kind (\"connect_error\")."
        })
    }
}

/// What a route answers when its upstream cannot (`routes[].fallback`). At least one of
/// `upstream`, `stale_cache` and `static`, tried in that order: the alternate upstream
/// first, then a cached answer, then the static one.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FallbackConfig {
    /// A fixed response.
    #[serde(rename = "static", default, skip_serializing_if = "Option::is_none")]
    pub static_response: Option<StaticResponseConfig>,
    /// The last good (2xx) response to the same GET/HEAD request, replayed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stale_cache: Option<StaleCacheConfig>,
    /// Status a stale-cache answer is sent with instead of its original one (e.g. 206),
    /// 200-599. Does not apply to `static`, which has its own status.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    /// Name of another upstream the request is sent to once (no retries) when this
    /// route's upstream fails.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upstream: Option<String>,
}

/// The bounds of a route's stale cache (`routes[].fallback.stale_cache`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct StaleCacheConfig {
    /// Responses kept, at least 1; the oldest is evicted first.
    pub max_entries: u32,
    /// A response whose body is larger than this is not cached.
    pub max_body_bytes: ByteSize,
    /// How long an entry is fresh, unless the response's `Cache-Control` says
    /// (`s-maxage`, `max-age`).
    pub max_age: HumanDuration,
    /// How long after it turned stale an entry may still be served on error (RFC 5861),
    /// unless the response's `Cache-Control: stale-if-error` says.
    pub stale_if_error: HumanDuration,
}

impl Default for StaleCacheConfig {
    fn default() -> Self {
        Self {
            max_entries: 1000,
            max_body_bytes: ByteSize(1 << 20),
            max_age: HumanDuration::from_secs(600),
            stale_if_error: HumanDuration::from_secs(0),
        }
    }
}

/// A fixed response, marked `seawall-degraded: <reason>` when served.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct StaticResponseConfig {
    /// Status code, 200-599.
    pub status: u16,
    /// Body text.
    pub body: String,
    /// Response headers.
    pub headers: std::collections::BTreeMap<String, String>,
}

impl Default for StaticResponseConfig {
    fn default() -> Self {
        Self {
            status: 200,
            body: String::new(),
            headers: std::collections::BTreeMap::new(),
        }
    }
}

/// Hedged requests of a route (`routes[].hedge`): after `delay` with no response head, one
/// more copy of the request goes to another endpoint, and the first answer wins.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct HedgeConfig {
    /// How long to wait for the response head before the extra copy: a duration
    /// (`"50ms"`) or a quantile of recent latencies (`"p95"`, `"p99"`, `"p99.9"`).
    pub delay: HedgeDelayConfig,
    /// Extra copies at most, 1-3; each waits `delay` after the previous one.
    pub max_extra: u32,
    /// Also hedge POST, PATCH and other non-idempotent methods (they may run twice).
    pub non_idempotent: bool,
}

impl Default for HedgeConfig {
    fn default() -> Self {
        Self {
            delay: HedgeDelayConfig::Quantile(0.95),
            max_extra: 1,
            non_idempotent: false,
        }
    }
}

/// `hedge.delay`: a fixed duration or a latency quantile.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum HedgeDelayConfig {
    /// Always this long.
    Fixed(HumanDuration),
    /// This quantile (0-1, exclusive) of the route's recent response-head latencies.
    Quantile(f64),
}

impl FromStr for HedgeDelayConfig {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let t = s.trim();
        if let Some(p) = t.strip_prefix(['p', 'P']) {
            return match p.parse::<f64>() {
                Ok(p) if p > 0.0 && p < 100.0 => Ok(Self::Quantile(p / 100.0)),
                _ => Err(format!(
                    "`{t}` is not a percentile between p0 and p100 (exclusive); e.g. \"p95\" or \"p99.9\""
                )),
            };
        }
        t.parse::<HumanDuration>()
            .map(Self::Fixed)
            .map_err(|e| format!("{e}; or a percentile of recent latencies such as \"p95\""))
    }
}

impl fmt::Display for HedgeDelayConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Fixed(d) => write!(f, "{d}"),
            Self::Quantile(q) => write!(f, "p{}", q * 100.0),
        }
    }
}

impl<'de> Deserialize<'de> for HedgeDelayConfig {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

impl Serialize for HedgeDelayConfig {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl JsonSchema for HedgeDelayConfig {
    fn schema_name() -> Cow<'static, str> {
        "HedgeDelay".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "type": "string",
            "description": "A duration with a unit (\"50ms\") or a percentile of recent latencies (\"p95\")."
        })
    }
}

/// Active health checks of an upstream's endpoints (`upstreams[].health_check`): each
/// endpoint is probed with a GET every `interval`; the balancer skips the ones that are
/// unhealthy (unless all are).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct HealthCheckConfig {
    /// Path probed (origin form, starting with `/`).
    pub path: String,
    /// Time between two probes of an endpoint.
    pub interval: HumanDuration,
    /// Bound on one probe (connect, response head and body); at most `interval`.
    pub timeout: HumanDuration,
    /// Passed probes in a row that make an unhealthy endpoint healthy again.
    pub healthy_threshold: u32,
    /// Failed probes in a row that make a healthy endpoint unhealthy.
    pub unhealthy_threshold: u32,
    /// The status a passing probe answers with.
    pub expected_status: u16,
}

impl Default for HealthCheckConfig {
    fn default() -> Self {
        Self {
            path: "/healthz".to_owned(),
            interval: HumanDuration::from_secs(5),
            timeout: HumanDuration::from_secs(1),
            healthy_threshold: 2,
            unhealthy_threshold: 3,
            expected_status: 200,
        }
    }
}
