//! `rate_limit`: per-key GCRA limits on a route, answered with 429 and the IETF RateLimit
//! header fields (draft-ietf-httpapi-ratelimit-headers-11, 23 May 2026: `RateLimit-Policy`
//! and `RateLimit` as Structured Field lists of String items with `q`/`w` and `r`/`t`
//! parameters), or smoothed by delaying requests.
//!
//! Each configured limit owns a [`KeyedLimiter`] (bounded memory, see
//! `seawall_ratelimit::store`). A request must conform to every limit, checked in config
//! order; the first refusal answers 429 at once (limits checked before it have already
//! counted the request, as in Envoy: a refused request still costs its earlier limits).
//!
//! Keys are hashed (FNV-1a, 64 bits), so raw header values, API keys and user ids are
//! never stored, locally or in Redis; the hash is stable so every gateway of a fleet
//! names a client's Redis key alike.
//!
//! `store: redis` limits ask Redis (`seawall_ratelimit::redis_store`); when it fails,
//! times out or its breaker is open, `on_error` decides: allow (`fail_open`), refuse
//! (`fail_closed`), or decide locally with this instance's share (`local`). A route
//! whose limits are all local decides without waiting or allocating a future. A Redis
//! limit with `lease` takes tokens from Redis in batches and spends them here
//! (`seawall_ratelimit::lease`), one Redis call per `tokens` requests of a hot key.
//!
//! Time comes from tokio's clock (pausable in tests). Local state outlives config reloads:
//! a [`LimiterRegistry`] (process-wide, in `runtime::Shared`) hands a rebuilt route the
//! same limiter as long as the route, the limit's name, its quota and `max_keys` are
//! unchanged, so a reload never grants every client a fresh burst.

use std::{
    collections::HashMap,
    fmt::Write as _,
    sync::{Arc, Mutex, OnceLock, Weak},
    time::Duration,
};

use bytes::Bytes;
use futures_util::FutureExt;
use http::{HeaderName, HeaderValue, Request, Response, StatusCode, header, response};
use http_body_util::{BodyExt, Full};
use prometheus_client::metrics::counter::Counter;
use seawall_config::{
    KeyPart, LimitStore, OnStoreError, RateLimitConfig, RateLimitMode, RedisStoreConfig, parse_rate,
};
use seawall_core::{Body, ERROR_HEADER, ErrorKind};
use seawall_ratelimit::{Decision, KeyedLimiter, LeaseTable, Quota, RedisStore, StoreError, Take};
use tokio::time::Instant;

use crate::{
    chain::{Flow, Layer, Step},
    context::RequestContext,
    metrics::RateLimitLabels,
};

/// `RateLimit-Policy`: the limits' quotas.
pub static RATELIMIT_POLICY: HeaderName = HeaderName::from_static("ratelimit-policy");
/// `RateLimit`: the tightest limit's remaining quota and reset time.
pub static RATELIMIT: HeaderName = HeaderName::from_static("ratelimit");

/// Decision outcomes (the metric's `outcome` label), indexed by the `O_*` constants.
const OUTCOMES: [&str; 7] = [
    "allowed",
    "delayed",
    "limited",
    "fail_open",
    "fail_closed",
    "local_allowed",
    "local_limited",
];
const O_ALLOWED: usize = 0;
const O_DELAYED: usize = 1;
const O_LIMITED: usize = 2;
const O_FAIL_OPEN: usize = 3;
const O_FAIL_CLOSED: usize = 4;
const O_LOCAL_ALLOWED: usize = 5;
const O_LOCAL_LIMITED: usize = 6;

/// Store-call outcomes (the `ratelimit_store_calls` metric's `outcome` label).
const CALLS: [&str; 2] = ["ok", "error"];

/// One limit's counters, resolved once.
struct LimitCounters {
    decisions: [Counter; 7],
    calls: [Counter; 2],
}

/// One configured limit, ready to decide.
struct Limit {
    name: String,
    key: Vec<KeyPart>,
    quota: Quota,
    /// Local limits: the state. Redis limits: the fallback for `on_error: local`, with
    /// this instance's share of the quota. Shared with the same limit of earlier and
    /// later versions of the route (module docs).
    limiter: Arc<KeyedLimiter>,
    redis: bool,
    /// Redis limits with `lease`: tokens taken from Redis in batches, by key.
    lease: Option<Leases>,
    /// Header names of `key`'s header parts, parsed once.
    headers: Vec<Option<HeaderName>>,
}

/// A Redis limit's leases, and the wake-up of requests waiting for a lease call that
/// another request of the same key has in flight (one per limit: a waiter for another
/// key wakes, finds it still has to wait, and waits again).
struct Leases {
    table: LeaseTable,
    reported: tokio::sync::Notify,
}

/// A lease call in flight for one key. If the request is dropped mid-call (its client
/// left, its deadline passed), nobody would report the call, and every other request for
/// the key would wait the whole store timeout: dropped while armed, it reports the call
/// failed, which sends the next request to Redis itself.
struct LeaseCall<'a> {
    leases: &'a Leases,
    key: u64,
    armed: bool,
}

impl Drop for LeaseCall<'_> {
    fn drop(&mut self) {
        if self.armed {
            self.leases.table.failed(self.key);
            self.leases.reported.notify_waiters();
        }
    }
}

/// The Redis of a layer with `store: redis` limits.
struct Remote {
    store: RedisStore,
    on_error: OnStoreError,
    cooldown: Duration,
    prefix: String,
}

/// The `rate_limit` layer.
pub struct RateLimit {
    limits: Vec<Limit>,
    mode: RateLimitMode,
    max_wait: Duration,
    headers: bool,
    policy: HeaderValue,
    remote: Option<Remote>,
    epoch: Instant,
    /// Per limit, the decision counters by outcome; resolved on the first request
    /// (the route's name and metrics are known only then) so later ones never hash labels.
    counters: OnceLock<Vec<LimitCounters>>,
}

/// How one limit decided.
struct Verdict {
    decision: Decision,
    outcome: usize,
}

impl RateLimit {
    /// Builds the layer of route `route`; errors name the offending limit (validation
    /// catches them first).
    pub fn try_new(
        config: &RateLimitConfig,
        route: &str,
        registry: &LimiterRegistry,
    ) -> Result<Self, String> {
        let mut policy = String::new();
        let limits = config
            .limits
            .iter()
            .map(|l| {
                let rate = parse_rate(&l.rate).map_err(|e| format!("limit `{}`: {e}", l.name))?;
                let burst = l.burst.unwrap_or(rate.count);
                let quota = Quota::new(rate.count, rate.period, burst)
                    .map_err(|e| format!("limit `{}`: {e}", l.name))?;
                if !policy.is_empty() {
                    policy.push_str(", ");
                }
                let (q, w) = policy_quota(rate.count, rate.period);
                let _ = write!(policy, "\"{}\";q={q};w={w}", l.name);
                let headers = l
                    .key
                    .iter()
                    .map(|part| match part {
                        KeyPart::Header(h) | KeyPart::User(h) => HeaderName::try_from(h.as_str())
                            .map(Some)
                            .map_err(|_| format!("limit `{}`: invalid header name `{h}`", l.name)),
                        _ => Ok(None),
                    })
                    .collect::<Result<_, String>>()?;
                let redis = l.store == LimitStore::Redis;
                if redis && !seawall_ratelimit::REDIS_SUPPORT {
                    // Said before anything else about the Redis section, so the fix
                    // (a build with Redis) is the first thing the operator reads.
                    return Err(format!(
                        "limit `{}`: store: redis: {}",
                        l.name,
                        seawall_ratelimit::NO_REDIS
                    ));
                }
                let local = match (&config.redis, redis) {
                    (Some(r), true) => share(rate.count, rate.period, burst, r.instances)
                        .map_err(|e| format!("limit `{}`: {e}", l.name))?,
                    _ => quota,
                };
                let lease = match (&l.lease, &config.redis) {
                    (Some(c), Some(r)) if redis => {
                        if c.tokens < 2 || c.tokens > burst || config.mode == RateLimitMode::Delay
                        {
                            return Err(format!(
                                "limit `{}`: lease needs 2 to burst ({burst}) tokens and mode: reject",
                                l.name
                            ));
                        }
                        let ns = |d: Duration| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
                        // A lease call never outlives the store timeout: that bounds how
                        // long a concurrent miss defers to it.
                        Some(Leases {
                            table: LeaseTable::new(
                                c.tokens,
                                ns(c.max_age.get()),
                                ns(r.timeout.get()),
                                l.max_keys,
                            ),
                            reported: tokio::sync::Notify::new(),
                        })
                    }
                    (Some(_), _) => {
                        return Err(format!("limit `{}`: lease needs store: redis", l.name));
                    }
                    (None, _) => None,
                };
                Ok(Limit {
                    name: l.name.clone(),
                    key: l.key.clone(),
                    quota,
                    limiter: registry.limiter(route, &l.name, local, l.max_keys),
                    redis,
                    lease,
                    headers,
                })
            })
            .collect::<Result<Vec<_>, String>>()?;
        let policy = HeaderValue::try_from(policy)
            .map_err(|_| "limit names must be printable ASCII".to_owned())?;
        let remote = match &config.redis {
            Some(r) if limits.iter().any(|l| l.redis) => Some(Remote::build(r)?),
            _ => None,
        };
        if remote.is_none() && limits.iter().any(|l| l.redis) {
            return Err("store: redis needs the layer's `redis` section".into());
        }
        Ok(Self {
            limits,
            mode: config.mode,
            max_wait: config.max_wait.get(),
            headers: config.headers,
            policy,
            remote,
            epoch: registry.epoch,
            counters: OnceLock::new(),
        })
    }

    /// The key of `limit` for this request, hashed (module docs).
    fn key(limit: &Limit, req: &Request<Body>, cx: &RequestContext) -> u64 {
        let mut h = Fnv::default();
        for (part, header) in limit.key.iter().zip(&limit.headers) {
            match part {
                KeyPart::ClientIp => match cx.client.ip() {
                    std::net::IpAddr::V4(ip) => h.write(&[4]).write(&ip.octets()),
                    std::net::IpAddr::V6(ip) => h.write(&[6]).write(&ip.octets()),
                },
                // A layer belongs to one route (and the Redis key names it anyway).
                KeyPart::Route => h.write(b"r"),
                KeyPart::Header(_) | KeyPart::User(_) => {
                    // Absent and present-but-empty must differ: requests without the
                    // header share one bucket of their own. The length prefix keeps
                    // ("ab","c") and ("a","bc") apart.
                    match header.as_ref().and_then(|n| req.headers().get(n)) {
                        None => h.write(b"-"),
                        Some(v) => h
                            .write(b"+")
                            .write(&(v.len() as u64).to_le_bytes())
                            .write(v.as_bytes()),
                    }
                }
            };
        }
        h.0
    }

    /// Decides `limit` for the request keyed `key` at `now` (layer clock, ns).
    async fn decide(
        &self,
        limit: &Limit,
        calls: &[Counter; 2],
        key: u64,
        route: &str,
        now: u64,
        max_wait: Duration,
    ) -> Verdict {
        let local = |ok: usize, refused: usize| {
            let decision = limit.limiter.check(key, now, 1, max_wait);
            let outcome = match (decision.allowed, decision.wait.is_zero()) {
                (false, _) => refused,
                (true, false) if ok == O_ALLOWED => O_DELAYED,
                (true, _) => ok,
            };
            Verdict { decision, outcome }
        };
        let Some(remote) = self.remote.as_ref().filter(|_| limit.redis) else {
            return local(O_ALLOWED, O_LIMITED);
        };
        let burst = limit.quota.burst();
        let mut now = now;
        // With a lease, most requests of a hot key are decided here, without Redis.
        let quantity = match &limit.lease {
            None => 1,
            Some(leases) => match Self::take_lease(leases, key, &mut now, self.epoch).await {
                Take::Leased {
                    remaining,
                    reset_after,
                } => {
                    let decision = Decision {
                        allowed: true,
                        limit: burst,
                        remaining,
                        retry_after: None,
                        reset_after: Duration::from_nanos(reset_after),
                        wait: Duration::ZERO,
                    };
                    return Verdict {
                        decision,
                        outcome: O_ALLOWED,
                    };
                }
                Take::Refused { retry_after } => {
                    let wait = Duration::from_nanos(retry_after);
                    let decision = Decision {
                        allowed: false,
                        limit: burst,
                        remaining: 0,
                        retry_after: Some(wait),
                        reset_after: wait,
                        wait: Duration::ZERO,
                    };
                    return Verdict {
                        decision,
                        outcome: O_LIMITED,
                    };
                }
                Take::Ask | Take::Wait { .. } => leases.table.tokens(),
            },
        };
        let name = format!("{}{{{route}:{}:{key:016x}}}", remote.prefix, limit.name);
        let mut call = limit.lease.as_ref().map(|leases| LeaseCall {
            leases,
            key,
            armed: true,
        });
        let result = remote
            .store
            .check(&name, &limit.quota, quantity, max_wait)
            .await;
        match &result {
            Ok(_) => {
                calls[0].inc();
            }
            // Not a call: the breaker kept Redis out of the path.
            Err(StoreError::Skipped) => {}
            Err(_) => {
                calls[1].inc();
            }
        }
        if let Some(leases) = &limit.lease {
            let ns = |d: Duration| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
            match &result {
                Ok(d) if d.allowed => leases.table.granted(key, now, ns(d.reset_after)),
                Ok(d) => {
                    let retry = d.retry_after.unwrap_or(d.reset_after);
                    leases.table.refused(key, now, ns(retry));
                }
                Err(_) => leases.table.failed(key),
            }
            leases.reported.notify_waiters();
        }
        if let Some(call) = call.as_mut() {
            call.armed = false;
        }
        match result {
            Ok(mut decision) => {
                if decision.allowed && quantity > 1 {
                    // The rest of the lease is this key's, too.
                    decision.remaining = decision.remaining.saturating_add(quantity - 1);
                }
                let outcome = match (decision.allowed, decision.wait.is_zero()) {
                    (false, _) => O_LIMITED,
                    (true, true) => O_ALLOWED,
                    (true, false) => O_DELAYED,
                };
                Verdict { decision, outcome }
            }
            Err(e) => {
                // A real failure happens at most once per cooldown (the breaker then skips
                // Redis), so it can be a warning; skipped calls would flood the log.
                if e == StoreError::Skipped {
                    tracing::debug!(route, limit = %limit.name, "Rate-limit store skipped (breaker open); applying on_error.");
                } else {
                    tracing::warn!(route, limit = %limit.name, error = %e, "Rate-limit store failed; applying on_error until a probe succeeds.");
                }
                let (allowed, outcome) = match remote.on_error {
                    OnStoreError::Local => return local(O_LOCAL_ALLOWED, O_LOCAL_LIMITED),
                    OnStoreError::FailOpen => (true, O_FAIL_OPEN),
                    OnStoreError::FailClosed => (false, O_FAIL_CLOSED),
                };
                let decision = Decision {
                    allowed,
                    limit: limit.quota.burst(),
                    remaining: 0,
                    retry_after: (!allowed).then_some(remote.cooldown),
                    reset_after: remote.cooldown,
                    wait: Duration::ZERO,
                };
                Verdict { decision, outcome }
            }
        }
    }

    /// The lease's answer for `key`; while another request's lease call for the key is
    /// in flight, waits for it to report (bounded by the store timeout) and asks again,
    /// moving `now` on. Never returns [`Take::Wait`]: when that wait runs out, the call
    /// is taken to be lost and the table tells this request to ask Redis itself.
    async fn take_lease(leases: &Leases, key: u64, now: &mut u64, epoch: Instant) -> Take {
        loop {
            // Registered before looking, so a report between the look and the wait
            // still wakes this request.
            let reported = leases.reported.notified();
            tokio::pin!(reported);
            reported.as_mut().enable();
            match leases.table.take(key, *now) {
                Take::Wait { at_most } => {
                    let _ = tokio::time::timeout(Duration::from_nanos(at_most), reported).await;
                    *now =
                        u64::try_from(Instant::now().saturating_duration_since(epoch).as_nanos())
                            .unwrap_or(u64::MAX);
                }
                other => return other,
            }
        }
    }

    /// Checks every limit in order; the first refusal answers. Returns how long the
    /// request must wait (delay mode) and the `RateLimit` value of the tightest limit.
    async fn run(
        &self,
        req: &Request<Body>,
        cx: &mut RequestContext,
        now: u64,
        max_wait: Duration,
    ) -> Result<(Duration, Option<HeaderValue>), Response<Body>> {
        let counters = self.counters(cx);
        let mut wait = Duration::ZERO;
        let mut tightest: Option<(&Limit, Decision)> = None;
        for (limit, counters) in self.limits.iter().zip(counters) {
            let key = Self::key(limit, req, cx);
            let Verdict {
                decision: d,
                outcome,
            } = self
                .decide(limit, &counters.calls, key, &cx.route.name, now, max_wait)
                .await;
            counters.decisions[outcome].inc();
            if !d.allowed {
                let detail = if outcome == O_FAIL_CLOSED {
                    format!(
                        "rate-limit store unavailable for limit `{}` (fail_closed)",
                        limit.name
                    )
                } else {
                    format!("over rate limit `{}`", limit.name)
                };
                cx.fail(ErrorKind::RateLimited, detail);
                return Err(self.refusal(limit, &d));
            }
            wait = wait.max(d.wait);
            // A fail_open answer knows nothing about the quota: it must not show as r=0.
            if outcome != O_FAIL_OPEN && tightest.is_none_or(|(_, t)| d.remaining < t.remaining) {
                tightest = Some((limit, d));
            }
        }
        let header = tightest
            .filter(|_| self.headers)
            .and_then(|(l, d)| ratelimit_value(&l.name, d.remaining, d.reset_after));
        Ok((wait, header))
    }

    fn counters(&self, cx: &RequestContext) -> &[LimitCounters] {
        self.counters.get_or_init(|| {
            let metrics = &cx.route.shared.metrics;
            self.limits
                .iter()
                .map(|l| {
                    let labels = |outcome: &str| RateLimitLabels {
                        route: cx.route.name.clone(),
                        limit: l.name.clone(),
                        outcome: outcome.to_owned(),
                    };
                    LimitCounters {
                        decisions: OUTCOMES
                            .map(|o| metrics.ratelimit_decisions.get_or_create_owned(&labels(o))),
                        calls: CALLS.map(|o| {
                            metrics
                                .ratelimit_store_calls
                                .get_or_create_owned(&labels(o))
                        }),
                    }
                })
                .collect()
        })
    }

    /// The 429 for a refusal by `limit`.
    fn refusal(&self, limit: &Limit, d: &Decision) -> Response<Body> {
        let kind = ErrorKind::RateLimited;
        let retry = d.retry_after.unwrap_or(d.reset_after);
        let text = format!("429 {}: {}\n", kind.reason(), kind.description());
        let mut resp = Response::new(Full::new(Bytes::from(text)).map_err(|e| match e {}).boxed());
        *resp.status_mut() = StatusCode::TOO_MANY_REQUESTS;
        let h = resp.headers_mut();
        h.insert(ERROR_HEADER, HeaderValue::from_static(kind.reason()));
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; charset=utf-8"),
        );
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        h.insert(header::RETRY_AFTER, HeaderValue::from(whole_secs(retry)));
        h.insert(RATELIMIT_POLICY.clone(), self.policy.clone());
        if let Some(v) = ratelimit_value(&limit.name, 0, retry) {
            h.insert(RATELIMIT.clone(), v);
        }
        resp
    }
}

/// Local limiters by route and limit, kept across reloads (module docs). Holds them
/// weakly: a limiter lives as long as some runtime's route uses it.
pub struct LimiterRegistry {
    /// The clock origin of every limiter in it: a reused limiter's stored times stay
    /// meaningful to the new layer.
    epoch: Instant,
    limiters: Mutex<HashMap<String, Weak<KeyedLimiter>>>,
}

impl Default for LimiterRegistry {
    fn default() -> Self {
        Self {
            epoch: Instant::now(),
            limiters: Mutex::default(),
        }
    }
}

impl LimiterRegistry {
    /// The limiter for `limit` of `route` with this quota and size: the existing one if
    /// a running route has it, else a new one.
    fn limiter(
        &self,
        route: &str,
        limit: &str,
        quota: Quota,
        max_keys: usize,
    ) -> Arc<KeyedLimiter> {
        let id = format!("{route}\0{limit}\0{quota:?}\0{max_keys}");
        // Only touched while a runtime is built; a poisoned lock means a panic during
        // another build, and the map of weak pointers is still usable.
        let mut map = self
            .limiters
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        map.retain(|_, w| w.strong_count() > 0);
        if let Some(l) = map.get(&id).and_then(Weak::upgrade) {
            return l;
        }
        let l = Arc::new(KeyedLimiter::new(quota, max_keys));
        map.insert(id, Arc::downgrade(&l));
        l
    }
}

/// What `config` asks for that this build cannot do: one line per `store: redis` limit
/// when the `redis` feature is off, naming its key path. `seawall check` reports these, so
/// the operator learns it before a deploy rather than when the gateway starts.
pub fn unsupported(config: &seawall_config::Config) -> Vec<String> {
    if seawall_ratelimit::REDIS_SUPPORT {
        return Vec::new();
    }
    let mut out = Vec::new();
    for (li, listener) in config.listeners.iter().enumerate() {
        for (ri, route) in listener.routes.iter().enumerate() {
            for (mi, layer) in route.middleware.iter().enumerate() {
                let seawall_config::MiddlewareConfig::RateLimit(rl) = layer else {
                    continue;
                };
                for (i, l) in rl.limits.iter().enumerate() {
                    if l.store == LimitStore::Redis {
                        out.push(format!(
                            "listeners[{li}].routes[{ri}].middleware[{mi}].rate_limit.limits[{i}].store: {}",
                            seawall_ratelimit::NO_REDIS
                        ));
                    }
                }
            }
        }
    }
    out
}

impl Remote {
    fn build(r: &RedisStoreConfig) -> Result<Self, String> {
        Ok(Self {
            store: RedisStore::new(&r.url, r.timeout.get(), r.cooldown.get())?,
            on_error: r.on_error,
            cooldown: r.cooldown.get(),
            prefix: r.key_prefix.clone(),
        })
    }
}

/// One instance's share of a limit shared by `instances` gateways: the same count over
/// `instances` times the period (so a count smaller than `instances` still works), and
/// the burst split likewise (at least 1).
fn share(count: u32, period: Duration, burst: u32, instances: u32) -> Result<Quota, String> {
    let n = instances.max(1);
    let period = period.checked_mul(n).ok_or("rate period too long")?;
    Quota::new(count, period, (burst / n).max(1)).map_err(|e| e.to_string())
}

/// FNV-1a, 64 bits: stable across processes and versions (Redis keys must match across a
/// fleet), unlike std's `DefaultHasher`. Not collision-resistant against a chooser of
/// inputs, which here could only merge the chooser's own buckets.
struct Fnv(u64);

impl Default for Fnv {
    fn default() -> Self {
        Self(0xcbf2_9ce4_8422_2325)
    }
}

impl Fnv {
    fn write(&mut self, bytes: &[u8]) -> &mut Self {
        for b in bytes {
            self.0 ^= u64::from(*b);
            self.0 = self.0.wrapping_mul(0x0000_0100_0000_01b3);
        }
        self
    }
}

/// The draft's `q` (quota) and `w` (window, whole seconds) for `count` per `period`: the
/// rate as written when the period is whole seconds, else scaled to one second (`1/250ms`
/// → `q=4;w=1`), rounded down but at least 1.
fn policy_quota(count: u32, period: Duration) -> (u64, u64) {
    if period.subsec_nanos() == 0 {
        return (u64::from(count), period.as_secs());
    }
    let per_second = u128::from(count) * 1_000_000_000 / period.as_nanos().max(1);
    (u64::try_from(per_second).unwrap_or(u64::MAX).max(1), 1)
}

/// What to do with the request once every limit has decided.
enum Next {
    Now(Flow),
    /// Forward it after waiting (delay mode).
    After(Request<Body>, Duration),
}

fn next(
    result: Result<(Duration, Option<HeaderValue>), Response<Body>>,
    req: Request<Body>,
    cx: &mut RequestContext,
) -> Next {
    match result {
        Err(resp) => Next::Now(Flow::Respond(resp)),
        Ok((wait, header)) => {
            cx.rate_limit = header;
            if wait.is_zero() {
                Next::Now(Flow::Forward(req))
            } else {
                Next::After(req, wait)
            }
        }
    }
}

/// Seconds for `Retry-After` and `t=`: rounded up, so a client that waits that long
/// conforms (a 0 would invite an immediate retry that fails again).
fn whole_secs(d: Duration) -> u64 {
    d.as_secs() + u64::from(d.subsec_nanos() > 0)
}

/// `"name";r=<remaining>;t=<seconds>`.
fn ratelimit_value(name: &str, remaining: u32, reset: Duration) -> Option<HeaderValue> {
    HeaderValue::try_from(format!("\"{name}\";r={remaining};t={}", whole_secs(reset))).ok()
}

impl Layer for RateLimit {
    fn name(&self) -> &'static str {
        "rate_limit"
    }

    fn on_request<'a>(&'a self, req: Request<Body>, cx: &'a mut RequestContext) -> Step<'a> {
        let now_at = Instant::now();
        let now = u64::try_from(now_at.saturating_duration_since(self.epoch).as_nanos())
            .unwrap_or(u64::MAX);
        let max_wait = match self.mode {
            RateLimitMode::Reject => Duration::ZERO,
            // A wait past the deadline would only end in a 504: refuse at once instead.
            RateLimitMode::Delay => self
                .max_wait
                .min(cx.deadline.saturating_duration_since(now_at)),
        };
        if self.remote.is_none() {
            // Local limits never await: decide now, without boxing a future.
            if let Some(result) = self.run(&req, cx, now, max_wait).now_or_never() {
                return match next(result, req, cx) {
                    Next::Now(flow) => Step::Done(flow),
                    Next::After(req, wait) => Step::Pending(Box::pin(async move {
                        tokio::time::sleep_until(now_at + wait).await;
                        Flow::Forward(req)
                    })),
                };
            }
        }
        Step::Pending(Box::pin(async move {
            let result = self.run(&req, cx, now, max_wait).await;
            match next(result, req, cx) {
                Next::Now(flow) => flow,
                Next::After(req, wait) => {
                    tokio::time::sleep_until(now_at + wait).await;
                    Flow::Forward(req)
                }
            }
        }))
    }

    fn on_response(&self, head: &mut response::Parts, cx: &mut RequestContext) {
        if let Some(v) = cx.rate_limit.take() {
            head.headers
                .insert(RATELIMIT_POLICY.clone(), self.policy.clone());
            head.headers.insert(RATELIMIT.clone(), v);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The layer built from `limits` (JSON), for its `RateLimit-Policy` value.
    fn policy_of(limits: serde_json::Value) -> HeaderValue {
        let config: RateLimitConfig =
            serde_json::from_value(serde_json::json!({ "limits": limits })).unwrap();
        RateLimit::try_new(&config, "r", &LimiterRegistry::default())
            .unwrap()
            .policy
    }

    // The expected strings below are quoted from draft-ietf-httpapi-ratelimit-headers-11
    // (section and appendix numbers of that draft).

    #[test]
    fn ratelimit_values_are_the_drafts_examples() {
        // §4 and §4.2: `RateLimit: "default";r=50;t=30`.
        let v = ratelimit_value("default", 50, Duration::from_secs(30)).unwrap();
        assert_eq!(v, "\"default\";r=50;t=30");
        // B.1.4 (a 429 with Retry-After): `RateLimit: "default";r=0;t=5`.
        let v = ratelimit_value("default", 0, Duration::from_secs(5)).unwrap();
        assert_eq!(v, "\"default\";r=0;t=5");
        // B.2.1: `RateLimit: "fixedwindow";r=99;t=50`.
        let v = ratelimit_value("fixedwindow", 99, Duration::from_secs(50)).unwrap();
        assert_eq!(v, "\"fixedwindow\";r=99;t=50");
        // B.3.1: `RateLimit: "day";r=100;t=36000`.
        let v = ratelimit_value("day", 100, Duration::from_secs(36_000)).unwrap();
        assert_eq!(v, "\"day\";r=100;t=36000");
        // Partial seconds round up: waiting `t` must be enough (t is delay-seconds).
        let v = ratelimit_value("default", 0, Duration::from_millis(1)).unwrap();
        assert_eq!(v, "\"default\";r=0;t=1");
    }

    #[test]
    fn policy_values_are_the_drafts_examples() {
        // §3.2: `RateLimit-Policy: "default";q=100;w=10`.
        assert_eq!(
            policy_of(serde_json::json!([{"name": "default", "rate": "100/10s"}])),
            "\"default\";q=100;w=10"
        );
        // B.2.1: `RateLimit-Policy: "fixedwindow";q=100;w=60`.
        assert_eq!(
            policy_of(serde_json::json!([{"name": "fixedwindow", "rate": "100/min"}])),
            "\"fixedwindow\";q=100;w=60"
        );
        // B.3.1, two limits: `RateLimit-Policy: "hour";q=1000;w=3600, "day";q=5000;w=86400`.
        // List members are separated by ", " as RFC 8941 §4.1.1 serializes them.
        assert_eq!(
            policy_of(serde_json::json!([
                {"name": "hour", "key": ["client_ip"], "rate": "1000/h"},
                {"name": "day", "key": [{"header": "x-api-key"}], "rate": "5000/d"},
            ])),
            "\"hour\";q=1000;w=3600, \"day\";q=5000;w=86400"
        );
        // §3 and §3.2 write the same lists without the optional space after the comma
        // (`"burst";q=100;w=60,"daily";q=1000;w=86400`); parsers accept both forms.
        for (limits, example) in [
            (
                serde_json::json!([
                    {"name": "burst", "rate": "100/min"},
                    {"name": "daily", "rate": "1000/d"},
                ]),
                "\"burst\";q=100;w=60,\"daily\";q=1000;w=86400",
            ),
            (
                serde_json::json!([
                    {"name": "permin", "rate": "50/min"},
                    {"name": "perhr", "rate": "1000/h"},
                ]),
                "\"permin\";q=50;w=60,\"perhr\";q=1000;w=3600",
            ),
        ] {
            let ours = policy_of(limits);
            assert_eq!(ours.to_str().unwrap().replace(", ", ","), example);
        }
    }

    #[test]
    fn sub_second_and_fractional_periods_are_scaled_to_one_second() {
        // The draft's `w` is whole seconds ("sub-second precision is not supported").
        assert_eq!(policy_quota(1, Duration::from_millis(250)), (4, 1));
        assert_eq!(policy_quota(3, Duration::from_millis(1500)), (2, 1));
        assert_eq!(policy_quota(1, Duration::from_millis(1500)), (1, 1));
        assert_eq!(policy_quota(100, Duration::from_secs(60)), (100, 60));
    }

    #[test]
    fn a_redis_limit_in_a_build_without_redis_is_refused_with_the_fix() {
        let config: RateLimitConfig = serde_json::from_value(serde_json::json!({
            "redis": {"url": "redis://127.0.0.1:6379/"},
            "limits": [{"name": "shared", "key": ["client_ip"], "rate": "1/s", "store": "redis"}]
        }))
        .unwrap();
        let built = RateLimit::try_new(&config, "r", &LimiterRegistry::default());
        if seawall_ratelimit::REDIS_SUPPORT {
            assert!(built.is_ok());
        } else {
            let err = built.err().unwrap_or_default();
            assert_eq!(
                err,
                "limit `shared`: store: redis: this build has no Redis support; rebuild with --features redis"
            );
        }
    }
}
