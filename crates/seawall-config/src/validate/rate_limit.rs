//! Rules about `rate_limit` layers: the rate parses and admits something, the burst is
//! positive, limit names are unique tokens within a layer, header key parts are header names,
//! `max_keys` and (in delay mode) `max_wait` are positive; a `store: redis` limit has a
//! `redis` section whose URL is a `redis://` URL (never echoed: it may hold a password); a
//! `lease` belongs to a Redis limit in reject mode and holds 2 to `burst` tokens. The same
//! checks the gateway's layer makes when it builds, so a config that passes here always
//! builds. One warning: a Redis `timeout` not shorter than the route's `timeout`.

use super::Found;
use crate::{
    Config, KeyPart, LeaseConfig, LimitStore, MiddlewareConfig, RateLimitConfig, RateLimitMode,
    locate::{join_index, join_key},
    parse_rate,
};

impl Found {
    pub(super) fn rate_limits(&mut self, config: &Config) {
        for (i, listener) in config.listeners.iter().enumerate() {
            for (j, route) in listener.routes.iter().enumerate() {
                for (k, layer) in route.middleware.iter().enumerate() {
                    if let MiddlewareConfig::RateLimit(rl) = layer {
                        let path = join_key(
                            &join_index(
                                &join_key(
                                    &join_index(
                                        &join_key(&join_index("listeners", i), "routes"),
                                        j,
                                    ),
                                    "middleware",
                                ),
                                k,
                            ),
                            "rate_limit",
                        );
                        self.rate_limit(&path, rl);
                    }
                }
            }
        }
    }

    /// Warns about a Redis `timeout` at or past its route's `timeout`: valid, but while Redis
    /// hangs every request on the route waits for the whole deadline (`layer_stalled`)
    /// instead of falling back to `on_error`.
    pub(super) fn redis_timeout_warnings(&mut self, config: &Config) {
        for (i, listener) in config.listeners.iter().enumerate() {
            for (j, route) in listener.routes.iter().enumerate() {
                for (k, layer) in route.middleware.iter().enumerate() {
                    let MiddlewareConfig::RateLimit(rl) = layer else {
                        continue;
                    };
                    let Some(redis) = &rl.redis else { continue };
                    let used = rl.limits.iter().any(|l| l.store == LimitStore::Redis);
                    if !used || redis.timeout.get() < route.timeout.get() {
                        continue;
                    }
                    let route_path =
                        join_index(&join_key(&join_index("listeners", i), "routes"), j);
                    let layer = join_index(&join_key(&route_path, "middleware"), k);
                    let path = join_key(
                        &join_key(&join_key(&layer, "rate_limit"), "redis"),
                        "timeout",
                    );
                    let name = route
                        .name
                        .clone()
                        .unwrap_or_else(|| format!("{}/{j}", listener.name));
                    let message = format!(
                        "redis timeout {} is not shorter than the timeout {} of route `{name}`: a hung Redis stalls every request on that route until its deadline (`layer_stalled`)",
                        redis.timeout, route.timeout
                    );
                    let hint = format!(
                        "set redis.timeout well below the route timeout {} (the default is 50ms), so `on_error` applies while the request still has time",
                        route.timeout
                    );
                    self.push(path, Some(redis.timeout.to_string()), message, Some(hint));
                }
            }
        }
    }

    fn rate_limit(&mut self, path: &str, rl: &RateLimitConfig) {
        if rl.limits.is_empty() {
            self.push(
                join_key(path, "limits"),
                None,
                "rate_limit has no limits",
                Some(
                    "add a limit such as {name: per_client, key: [client_ip], rate: \"100/s\"}"
                        .into(),
                ),
            );
        }
        self.unique_names(
            &join_key(path, "limits"),
            rl.limits.iter().map(|l| l.name.as_str()),
        );
        if let Some(redis) = &rl.redis {
            let at = join_key(path, "redis");
            if !redis.url.starts_with("redis://") {
                // Never echo the URL: it may hold a password.
                self.push(
                    join_key(&at, "url"),
                    None,
                    "the redis url must start with redis://",
                    Some("e.g. redis://127.0.0.1:6379".into()),
                );
            }
            self.nonzero_duration(join_key(&at, "timeout"), redis.timeout);
            self.nonzero_duration(join_key(&at, "cooldown"), redis.cooldown);
            self.nonzero_count(
                join_key(&at, "instances"),
                redis.instances as usize,
                "instances",
            );
        }
        if rl.mode == RateLimitMode::Delay {
            self.nonzero_duration(join_key(path, "max_wait"), rl.max_wait);
        }
        for (i, limit) in rl.limits.iter().enumerate() {
            let at = join_index(&join_key(path, "limits"), i);
            let token = |c: char| c.is_ascii_alphanumeric() || "_-.".contains(c);
            if !limit.name.is_empty() && !limit.name.chars().all(token) {
                // The name is quoted in the RateLimit headers and part of Redis keys.
                self.push(
                    join_key(&at, "name"),
                    Some(limit.name.clone()),
                    "limit names may only use letters, digits, `_`, `-` and `.`",
                    Some("e.g. `per_client`".into()),
                );
            }
            match parse_rate(&limit.rate) {
                Err(e) => self.push(join_key(&at, "rate"), Some(limit.rate.clone()), e, None),
                Ok(rate) => {
                    let burst = limit.burst.unwrap_or(rate.count).max(1);
                    let quota = seawall_ratelimit_bounds(rate.count, rate.period, burst);
                    if let Err(e) = quota {
                        self.push(join_key(&at, "rate"), Some(limit.rate.clone()), e, None);
                    }
                    if let Some(lease) = &limit.lease {
                        self.lease(&join_key(&at, "lease"), rl, limit.store, lease, burst);
                    }
                }
            }
            if limit.burst == Some(0) {
                self.push(
                    join_key(&at, "burst"),
                    Some("0".into()),
                    "burst must be at least 1",
                    Some("burst is how many requests a fresh key may send at once".into()),
                );
            }
            self.nonzero_count(join_key(&at, "max_keys"), limit.max_keys, "max_keys");
            if limit.store == LimitStore::Redis && rl.redis.is_none() {
                self.push(
                    join_key(&at, "store"),
                    Some("redis".into()),
                    "store: redis needs the layer's `redis` section",
                    Some("add redis: {url: \"redis://127.0.0.1:6379\"} next to `limits`".into()),
                );
            }
            for (p, part) in limit.key.iter().enumerate() {
                match part {
                    KeyPart::Header(name) | KeyPart::User(name) if !is_header_name(name) => {
                        self.push(
                            join_index(&join_key(&at, "key"), p),
                            Some(name.clone()),
                            "not a valid header name",
                            Some("use a lowercase token such as `x-api-key`".into()),
                        );
                    }
                    _ => {}
                }
            }
        }
    }
}

impl Found {
    /// A limit's `lease`: only for Redis limits in reject mode, 2 ≤ tokens ≤ burst (a
    /// lease larger than the burst could never be granted), a positive `max_age`.
    fn lease(
        &mut self,
        at: &str,
        rl: &RateLimitConfig,
        store: LimitStore,
        lease: &LeaseConfig,
        burst: u32,
    ) {
        if store != LimitStore::Redis {
            self.push(
                at.to_owned(),
                None,
                "lease only applies to a limit with store: redis",
                Some("add store: redis to the limit, or remove lease".into()),
            );
        }
        if rl.mode == RateLimitMode::Delay {
            self.push(
                at.to_owned(),
                None,
                "lease cannot be combined with mode: delay",
                Some("use mode: reject, or remove lease".into()),
            );
        }
        if lease.tokens < 2 || lease.tokens > burst {
            self.push(
                join_key(at, "tokens"),
                Some(lease.tokens.to_string()),
                format!("lease tokens must be between 2 and the limit's burst ({burst})"),
                Some("a lease of N tokens saves N - 1 Redis calls of N; e.g. tokens: 10".into()),
            );
        }
        self.nonzero_duration(join_key(at, "max_age"), lease.max_age);
    }
}

/// The bounds `seawall_ratelimit::Quota::new` enforces, restated so this crate does not
/// depend on the limiter (config stays free of runtime crates).
fn seawall_ratelimit_bounds(
    count: u32,
    period: std::time::Duration,
    burst: u32,
) -> Result<(), String> {
    if count == 0 {
        return Err("the rate's count must be at least 1".into());
    }
    let interval = period.as_nanos() / u128::from(count);
    if interval == 0 || interval.saturating_mul(u128::from(burst)) > u128::from(u64::MAX) {
        return Err("rate or burst out of range".into());
    }
    Ok(())
}

/// RFC 9110 token characters, lowercase only (HTTP/2 requires lowercase names).
fn is_header_name(s: &str) -> bool {
    !s.is_empty()
        && s.bytes().all(|b| {
            b.is_ascii_lowercase() || b.is_ascii_digit() || b"!#$%&'*+-.^_`|~".contains(&b)
        })
}
