//! The registry of finding codes: every code `seawall check --score` can report, its
//! severity, what it means, why it matters and the usual fix. `docs/score.md` lists the
//! same codes (a test compares them).
//!
//! Families: `SW1xx` timeouts, `SW2xx` retries and hedging, `SW3xx` breakers, shedding and
//! degraded answers, `SW4xx` pools and DNS, `SW5xx` limits, `SW6xx` security and exposure.
//!
//! A code is a contract with CI configs and suppressions written against it: once
//! published it keeps its meaning. A retired code moves to [`RETIRED`] and is never given
//! to another check.

use seawall_config::Severity;

/// One kind of finding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rule {
    /// The stable code, e.g. `SW101`.
    pub code: &'static str,
    /// A short `snake_case` name, stable too (SARIF's rule name).
    pub name: &'static str,
    /// How bad it is.
    pub level: Severity,
    /// What is wrong, in a few words.
    pub title: &'static str,
    /// One sentence: the incident it causes.
    pub why: &'static str,
}

macro_rules! rules {
    ($($id:ident = $code:literal, $name:literal, $level:ident, $title:literal, $why:literal;)*) => {
        $(
            #[doc = concat!("`", $code, "` (", $name, "): ", $title, ".")]
            pub const $id: Rule = Rule {
                code: $code,
                name: $name,
                level: Severity::$level,
                title: $title,
                why: $why,
            };
        )*
        /// Every live rule, sorted by code.
        pub const RULES: &[Rule] = &[$($id),*];
    };
}

rules! {
    SW101 = "SW101", "response_header_unset", Warning,
        "upstream has no response-head timeout",
        "A hung upstream then holds each request until the route deadline, so every caller waits the full deadline and the failure is reported as a generic `deadline_exceeded` instead of `response_header_timeout`.";
    SW102 = "SW102", "route_timeout_default", Info,
        "route relies on the default 15s deadline",
        "The default deadline was chosen for no service in particular: callers with a shorter timeout give up first and the gateway keeps working on requests nobody waits for.";
    SW103 = "SW103", "route_timeout_huge", Warning,
        "route deadline longer than 60s",
        "During a slowdown every request holds a connection and memory for the whole deadline, so a slow upstream exhausts the listener's connections and takes the healthy routes down with it.";
    SW104 = "SW104", "per_try_not_below_deadline", Warning,
        "retries without a per-try bound shorter than the deadline",
        "A first try that hangs uses the whole deadline, so the retry meant for exactly that case never runs and the caller gets a 504.";
    SW105 = "SW105", "response_header_not_below_deadline", Warning,
        "response-head timeout not shorter than a route's deadline",
        "The route deadline always fires first, so a slow upstream is never reported (or ejected, or tripped on) as `response_header_timeout`.";
    SW201 = "SW201", "retry_without_budget", Error,
        "retries with no effective retry budget",
        "When the upstream degrades every request is retried, multiplying its load exactly when it is weakest: the classic retry storm that turns a slowdown into an outage.";
    SW202 = "SW202", "retry_non_idempotent", Warning,
        "non-idempotent requests retried or hedged",
        "A POST whose first try reached the upstream but whose answer was lost runs twice: a double charge, a duplicate order.";
    SW203 = "SW203", "hedge_without_budget", Warning,
        "hedging with no effective retry budget",
        "Hedges fire when the upstream is slow, and without a budget that binds they double its load at that moment, which makes it slower still.";
    SW204 = "SW204", "retries_exceed_deadline", Warning,
        "the tries cannot all fit in the deadline",
        "With `max_attempts` tries of `per_try_timeout` each longer than the deadline, the last tries can never run: the config promises retries it cannot make.";
    SW205 = "SW205", "retry_amplification", Warning,
        "more than three copies of one request",
        "Tries times hedge copies multiply the load each client request can put on the upstream; above three, a brownout is amplified into an overload.";
    SW206 = "SW206", "per_try_timeout_not_retried", Warning,
        "per-try timeout whose failure is not retried",
        "A slow try is cut at `per_try_timeout` and, since `retry_on` does not list `per_try_timeout`, the caller gets a 504 instead of a second try on another endpoint: the per-try bound then only shortens the deadline.";
    SW301 = "SW301", "retry_without_breaker", Warning,
        "upstream with retries but no circuit breaker",
        "When the upstream is down every request still pays the connect or timeout cost, retries included, instead of failing fast with 503 `circuit_open` and letting it recover.";
    SW302 = "SW302", "bulkhead_queue_timeout", Warning,
        "bulkhead queue without an explicit, short `queue_timeout`",
        "Queued tries wait for a slot while their deadline runs out, so under overload callers see slow 504s instead of fast 503 `overloaded` answers they could retry elsewhere.";
    SW303 = "SW303", "no_ejection", Warning,
        "several endpoints, but no outlier ejection or health check",
        "One dead or slow replica keeps receiving its share of the traffic, so a fixed fraction of requests fails for as long as it stays in the rotation.";
    SW304 = "SW304", "outlier_ejects_most", Warning,
        "outlier ejection may eject more than half the endpoints",
        "A shared cause (a bad deploy, a dependency outage) ejects most endpoints at once and the rest take all the traffic, which overloads them too.";
    SW305 = "SW305", "stale_cache_max_age", Warning,
        "stale cache without an explicit, bounded `max_age`",
        "Clients are served answers far older than they expect (prices, stock, permissions) without anyone having chosen how old is acceptable.";
    SW306 = "SW306", "fallback_shares_endpoints", Error,
        "fallback upstream shares endpoints with the route's upstream",
        "The fallback goes to the same servers that just failed, so it fails the same way and only adds load and latency.";
    SW401 = "SW401", "pool_idle_not_below_keepalive", Error,
        "pool idle timeout not shorter than the upstream's keep-alive",
        "The upstream closes idle connections first, and a request sent on one just as it closes fails with `upstream_reset`: the intermittent 503 seen behind proxies whose idle timeout outlives the backend's.";
    SW402 = "SW402", "upstream_keepalive_unknown", Warning,
        "upstream keep-alive unknown",
        "Without the upstream's keep-alive timeout nobody can tell whether `pool.idle_timeout` is below it; when it is not, reused connections race the server's close and fail intermittently.";
    SW403 = "SW403", "pool_unbounded", Warning,
        "connections per endpoint effectively unbounded",
        "A slow endpoint makes the pool open connection after connection until file descriptors or the upstream's own limit run out, and then every route using the gateway fails.";
    SW404 = "SW404", "dns_max_ttl_long", Warning,
        "host-name endpoints cached longer than 60s",
        "After a failover moves the name to new addresses, the gateway keeps sending to the old ones for up to `max_ttl`.";
    SW501 = "SW501", "redis_timeout_not_below_deadline", Error,
        "Redis limiter timeout not shorter than the route deadline",
        "While Redis hangs every request on the route stalls until its deadline (`layer_stalled`) before `on_error` can apply.";
    SW502 = "SW502", "redis_fail_closed", Warning,
        "Redis limiter fails closed",
        "A Redis outage becomes an outage of the route: every request is refused with 429 while Redis is down, and the limiter's cooldown only makes the refusals faster.";
    SW503 = "SW503", "public_route_without_rate_limit", Warning,
        "route on a public listener without a rate limit",
        "One misbehaving or malicious client can take the whole capacity of the upstream, and every other client of the route is starved.";
    SW601 = "SW601", "public_header_read_timeout", Warning,
        "public listener without an explicit, short header-read timeout",
        "Slowloris clients trickle request headers to hold connections open until `max_connections` is reached and no one else can connect.";
    SW602 = "SW602", "public_connection_cap", Warning,
        "public listener without an explicit connection cap",
        "The default cap was not sized for this host: a connection flood runs into the file-descriptor limit or memory first, and the process fails instead of refusing the excess.";
    SW603 = "SW603", "admin_off_loopback", Warning,
        "admin API off loopback",
        "The admin API (config, reload, metrics) is reachable from the network and protected by one bearer token, which then guards the whole gateway.";
    SW604 = "SW604", "debug_on_public_listener", Warning,
        "debug trace on a route of a public listener",
        "Anyone holding or guessing the debug token gets the request's internal trace (upstreams, addresses, timings) from the internet.";
}

/// Codes that were once published and are retired: never reused for another check.
pub const RETIRED: &[&str] = &[];

/// The rule with `code`, if it is live.
pub fn rule(code: &str) -> Option<&'static Rule> {
    RULES.iter().find(|r| r.code == code)
}
