//! Settings of the `rate_limit` middleware: one or more GCRA limits per route, each with
//! its key, rate and burst; how over-limit requests are answered (reject or delay); and
//! whether allowed responses carry the RateLimit headers. See `docs/rate-limiting.md`.

use std::time::Duration;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::units::HumanDuration;

/// Settings of the `rate_limit` middleware.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RateLimitConfig {
    /// The limits; a request must conform to every one of them.
    pub limits: Vec<LimitConfig>,
    /// What happens to a request over a limit.
    #[serde(default)]
    pub mode: RateLimitMode,
    /// In `delay` mode, the longest a request may wait to conform; a request that would
    /// wait longer (or past its deadline) is rejected at once.
    #[serde(default = "default_max_wait")]
    pub max_wait: HumanDuration,
    /// Add `RateLimit-Policy` and `RateLimit` to allowed responses too (429s always
    /// carry them).
    #[serde(default = "default_true")]
    pub headers: bool,
    /// The Redis that limits with `store: redis` use; required when any does.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub redis: Option<RedisStoreConfig>,
}

/// Where a limit keeps its state.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum LimitStore {
    /// In this gateway's memory: each instance limits on its own.
    #[default]
    Local,
    /// In Redis: every gateway using that Redis shares the limit.
    Redis,
}

/// The Redis behind `store: redis` limits.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RedisStoreConfig {
    /// `redis://[user:password@]host:port[/db]`.
    pub url: String,
    /// Bounds each decision (connect and answer); past it, `on_error` applies.
    #[serde(default = "default_redis_timeout")]
    pub timeout: HumanDuration,
    /// What to do when Redis fails, times out, or its breaker is open.
    #[serde(default)]
    pub on_error: OnStoreError,
    /// After a failure, how long decisions skip Redis before one probe tries it again.
    #[serde(default = "default_cooldown")]
    pub cooldown: HumanDuration,
    /// Gateways sharing the limit; with `on_error: local` each enforces 1/instances of it.
    #[serde(default = "default_instances")]
    pub instances: u32,
    /// Prefix of every key this layer writes (the rest is `{route:limit:hash}`).
    #[serde(default = "default_key_prefix")]
    pub key_prefix: String,
}

fn default_redis_timeout() -> HumanDuration {
    HumanDuration::from_millis(50)
}

fn default_cooldown() -> HumanDuration {
    HumanDuration::from_secs(1)
}

fn default_instances() -> u32 {
    1
}

fn default_key_prefix() -> String {
    "seawall:rl:".to_owned()
}

/// What a `store: redis` limit does when Redis cannot decide.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum OnStoreError {
    /// Allow the request (availability over enforcement).
    #[default]
    FailOpen,
    /// Refuse it with 429 (enforcement over availability).
    FailClosed,
    /// Decide locally with this instance's share of the limit.
    Local,
}

fn default_max_wait() -> HumanDuration {
    HumanDuration::from_millis(500)
}

fn default_true() -> bool {
    true
}

/// One limit.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LimitConfig {
    /// Unique within the layer; used in headers, logs and the metric's `limit` label.
    pub name: String,
    /// What identifies a client; the parts are combined. Empty means the route as a whole.
    #[serde(default)]
    pub key: Vec<KeyPart>,
    /// `<count>/<unit>`: `100/s`, `6000/min`, `10/h`, or with a multiplier `5/10s`.
    pub rate: String,
    /// Requests a fresh key may send at once; after them, one per `period / count`.
    /// Defaults to the rate's count.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub burst: Option<u32>,
    /// Most keys held in memory; old (expired first) keys are evicted beyond it.
    #[serde(default = "default_max_keys")]
    pub max_keys: usize,
    /// `local` (default) or `redis` (needs the layer's `redis` section).
    #[serde(default)]
    pub store: LimitStore,
    /// `store: redis` only, opt-in: take tokens from Redis in batches and spend them
    /// locally, one Redis call per `tokens` requests of a hot key (less accurate: see
    /// docs/rate-limiting.md).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lease: Option<LeaseConfig>,
}

/// Local leasing of Redis tokens for a limit's hot keys.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LeaseConfig {
    /// Tokens taken from Redis in one call (at least 2, at most the burst). Each instance
    /// may hold up to `tokens - 1` of a key that the fleet already counts as spent.
    pub tokens: u32,
    /// How long leased tokens may be spent; unspent ones are then lost.
    #[serde(default = "default_lease_max_age")]
    pub max_age: HumanDuration,
}

fn default_lease_max_age() -> HumanDuration {
    HumanDuration::from_secs(1)
}

fn default_max_keys() -> usize {
    100_000
}

/// One part of a limit's key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum KeyPart {
    /// The client's IP address (the TCP peer).
    ClientIp,
    /// The route: every request to it shares the limit.
    Route,
    /// The value of a request header (requests without it share one bucket).
    Header(String),
    /// A user id taken from a request header, hashed so the raw id is never stored.
    User(String),
}

/// What the layer does with a request over a limit.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum RateLimitMode {
    /// Answer 429 at once.
    #[default]
    Reject,
    /// Hold the request until it conforms, up to `max_wait`.
    Delay,
}

/// A parsed `rate`: `count` requests per `period`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rate {
    pub count: u32,
    pub period: Duration,
}

/// Parses `<count>/<period>` where period is a unit (`ms`, `s`, `sec`, `m`, `min`, `h`,
/// `hour`, `d`, `day`) optionally preceded by a number (`5/10s`).
pub fn parse_rate(s: &str) -> Result<Rate, String> {
    let bad = || {
        format!(
            "invalid rate `{s}`; write <count>/<period>, e.g. \"100/s\", \"6000/min\", \"5/10s\""
        )
    };
    let (count, period) = s.trim().split_once('/').ok_or_else(bad)?;
    let count: u32 = count.trim().parse().map_err(|_| bad())?;
    let period = period.trim();
    let digits = period.find(|c: char| !c.is_ascii_digit()).ok_or_else(bad)?;
    let times: u64 = if digits == 0 {
        1
    } else {
        period[..digits].parse().map_err(|_| bad())?
    };
    let unit = match &period[digits..] {
        "ms" => Duration::from_millis(1),
        "s" | "sec" | "second" => Duration::from_secs(1),
        "m" | "min" | "minute" => Duration::from_secs(60),
        "h" | "hour" => Duration::from_secs(3600),
        "d" | "day" => Duration::from_secs(86_400),
        _ => return Err(bad()),
    };
    let times = u32::try_from(times).map_err(|_| bad())?;
    let period = unit.checked_mul(times).ok_or_else(bad)?;
    Ok(Rate { count, period })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_parse_with_units_and_multipliers() {
        let r = |c, ms| {
            Ok(Rate {
                count: c,
                period: Duration::from_millis(ms),
            })
        };
        assert_eq!(parse_rate("100/s"), r(100, 1000));
        assert_eq!(parse_rate("6000/min"), r(6000, 60_000));
        assert_eq!(parse_rate(" 5 / 10s "), r(5, 10_000));
        assert_eq!(parse_rate("1/250ms"), r(1, 250));
        assert_eq!(parse_rate("10/h"), r(10, 3_600_000));
        for bad in [
            "",
            "100",
            "/s",
            "x/s",
            "1/",
            "1/fortnight",
            "-1/s",
            "1/99999999999s",
        ] {
            assert!(parse_rate(bad).is_err(), "{bad:?}");
        }
    }
}
