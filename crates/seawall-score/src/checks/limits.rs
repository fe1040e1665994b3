//! `SW5xx`: rate limits. A shared limiter must not stall or refuse requests when its
//! store fails, and routes that face the internet need a limit.

use seawall_config::{LimitStore, MiddlewareConfig, OnStoreError, RateLimitConfig};

use crate::{
    finding::Hit,
    scope::{RouteAt, Scope, duration},
};

/// The route's `rate_limit` layers that use Redis, with their key paths.
fn redis_layers<'a>(r: &RouteAt<'a>) -> Vec<(String, &'a RateLimitConfig)> {
    r.route
        .middleware
        .iter()
        .enumerate()
        .filter_map(|(k, layer)| match layer {
            MiddlewareConfig::RateLimit(rl)
                if rl.redis.is_some() && rl.limits.iter().any(|l| l.store == LimitStore::Redis) =>
            {
                Some((r.key(&format!("middleware[{k}].rate_limit")), rl))
            }
            _ => None,
        })
        .collect()
}

/// `SW501`: a Redis timeout not shorter than the route's deadline.
pub(crate) fn redis_timeout_not_below_deadline(scope: &Scope<'_>) -> Vec<Hit> {
    let mut hits = Vec::new();
    for r in scope.routes() {
        for (at, rl) in redis_layers(&r) {
            let Some(redis) = &rl.redis else { continue };
            if redis.timeout.get() < r.deadline() {
                continue;
            }
            let key = format!("{at}.redis.timeout");
            hits.push(Hit {
                unit: r.unit(),
                fix: format!(
                    "set `{key}: {}` (the default is 50ms)",
                    duration((r.deadline() / 10).min(std::time::Duration::from_millis(50)))
                ),
                path: key,
                value: Some(redis.timeout.to_string()),
                message: format!(
                    "route `{}` waits up to {} for Redis, its deadline is {}",
                    r.name(),
                    redis.timeout,
                    r.route.timeout
                ),
            });
        }
    }
    hits
}

/// `SW502`: a Redis limiter with `on_error: fail_closed`.
pub(crate) fn redis_fail_closed(scope: &Scope<'_>) -> Vec<Hit> {
    let mut hits = Vec::new();
    for r in scope.routes() {
        for (at, rl) in redis_layers(&r) {
            let Some(redis) = &rl.redis else { continue };
            if redis.on_error != OnStoreError::FailClosed {
                continue;
            }
            let key = format!("{at}.redis.on_error");
            hits.push(Hit {
                unit: r.unit(),
                fix: format!(
                    "set `{key}: local` (each gateway enforces its share of the limit while Redis is down)"
                ),
                path: key,
                value: Some("fail_closed".to_owned()),
                message: format!(
                    "route `{}` refuses every request while its limiter's Redis is down",
                    r.name()
                ),
            });
        }
    }
    hits
}

/// `SW503`: a route on a public listener without a `rate_limit` layer.
pub(crate) fn public_route_without_rate_limit(scope: &Scope<'_>) -> Vec<Hit> {
    scope
        .routes()
        .filter(|r| r.listener.is_public())
        .filter(|r| {
            !r.route
                .middleware
                .iter()
                .any(|m| matches!(m, MiddlewareConfig::RateLimit(_)))
        })
        .map(|r| Hit {
            unit: r.unit(),
            path: r.key("middleware"),
            value: None,
            message: format!(
                "route `{}` on public listener `{}` has no rate limit",
                r.name(),
                r.listener.name
            ),
            fix: format!(
                "add to `{}`: `rate_limit: {{limits: [{{name: per_client, key: [client_ip], rate: \"100/s\"}}]}}`",
                r.key("middleware")
            ),
        })
        .collect()
}
