//! A fault rule, compiled: its match parsed once, its selection state (draws, `first`,
//! `max_active`, time window, ttl) and its counters. The same type serves a route's
//! `fault` layer, an upstream's `faults` and the runtime faults of the admin API; where it
//! acts decides which of its actions can occur (validation keeps each place to its own).
//!
//! Selection is lock-free except for a percentage strictly between 0 and 100 or a drawn
//! delay, which take the rule's own RNG mutex for one draw. The clock is read only for a
//! rule with a time window or a ttl.

use std::{
    sync::{
        Arc, Mutex,
        atomic::{AtomicU32, AtomicU64, Ordering},
    },
    time::Duration,
};

use http::{HeaderMap, HeaderName, HeaderValue, Method, Request, StatusCode};
use prometheus_client::metrics::counter::Counter;
use seawall_config::{AbortConfig, DelayConfig, FaultRule, MAX_FAULT_DELAY};
use tokio::time::Instant;

use crate::metrics::{FaultLabels, Metrics};

/// Actions (the metric's `action` label), indexed by [`Action`].
pub const ACTIONS: [&str; 9] = [
    "delay",
    "abort",
    "grpc_abort",
    "reset",
    "close",
    "connect_error",
    "upstream_reset",
    "blackhole",
    "throttle",
];

/// An injected action, the index of its counter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Delay = 0,
    Abort = 1,
    GrpcAbort = 2,
    Reset = 3,
    Close = 4,
    ConnectError = 5,
    UpstreamReset = 6,
    Blackhole = 7,
    Throttle = 8,
}

/// Where a rule acts: the metric's `scope` and `target` labels.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Place {
    /// Client-facing, on this route.
    Route(String),
    /// Upstream-side, on this upstream.
    Upstream(String),
}

impl Place {
    /// `route` or `upstream`.
    pub fn scope(&self) -> &'static str {
        match self {
            Place::Route(_) => "route",
            Place::Upstream(_) => "upstream",
        }
    }

    /// True when a rule here can inject `action` (an [`ACTIONS`] entry).
    pub fn injects(&self, action: &str) -> bool {
        let only_elsewhere: &[&str] = match self {
            Place::Route(_) => &["connect_error", "upstream_reset", "blackhole"],
            Place::Upstream(_) => &["reset", "close", "throttle"],
        };
        !only_elsewhere.contains(&action)
    }

    /// The route's or upstream's name.
    pub fn target(&self) -> &str {
        match self {
            Place::Route(n) | Place::Upstream(n) => n,
        }
    }
}

/// How a rule's delay is drawn.
#[derive(Debug, Clone, Copy)]
pub enum Delay {
    Fixed(Duration),
    Uniform(Duration, Duration),
    /// Mean and standard deviation, in seconds.
    Normal(f64, f64),
    /// `mu` and `sigma` of the delay's logarithm (in seconds).
    LogNormal(f64, f64),
}

/// How a rule ends a request (client-facing) or a try (upstream-side).
#[derive(Debug, Clone, Copy)]
pub enum Abort {
    /// HTTP status and/or gRPC status.
    Answer {
        status: Option<StatusCode>,
        grpc: Option<u32>,
    },
    Reset,
    Close,
    ConnectError,
    UpstreamReset,
    Blackhole,
}

/// Which requests a rule applies to, parsed once.
struct Match {
    methods: Vec<Method>,
    path_prefix: Option<String>,
    headers: Vec<(HeaderName, HeaderValue)>,
}

/// One rule, ready to apply.
pub struct Rule {
    pub name: String,
    /// The name as the `seawall-fault` header value.
    pub header: HeaderValue,
    matches: Match,
    percentage: f64,
    pub delay: Option<Delay>,
    pub abort: Option<Abort>,
    /// Bytes per second of a throttled response body.
    pub throttle: Option<u64>,
    /// Upstream-side: the only endpoint (balancer index) it faults.
    pub endpoint: Option<usize>,
    first: Option<u64>,
    max_active: Option<u32>,
    /// When it starts and stops acting (`after`, `for`), and when it expires (`ttl`).
    starts: Option<Instant>,
    stops: Option<Instant>,
    pub loaded: Instant,
    rng: Mutex<fastrand::Rng>,
    /// Selections taken toward `first`.
    taken: AtomicU64,
    /// Requests (or tries) faulted so far, for `GET /faults`.
    injected: AtomicU64,
    /// Requests inside the fault now (for `max_active`).
    active: AtomicU32,
    counters: [Counter; 9],
}

impl Rule {
    /// Builds `r` acting at `place`. `endpoints`: the upstream's, to resolve `endpoint`;
    /// `seed`: the draws' seed when the rule gives none; `ttl`: a runtime fault's life.
    /// Errors name the rule (validation catches them first).
    pub fn build(
        r: &FaultRule,
        place: &Place,
        endpoints: &[String],
        seed: Option<u64>,
        ttl: Option<Duration>,
        metrics: &Metrics,
    ) -> Result<Self, String> {
        let err = |what: &str| format!("fault `{}`: {what}", r.name);
        let header = HeaderValue::try_from(r.name.as_str()).map_err(|_| err("invalid name"))?;
        let delay = r
            .delay
            .as_ref()
            .map(|d| delay(d).ok_or_else(|| err("invalid delay")))
            .transpose()?;
        let abort = r
            .abort
            .as_ref()
            .map(|a| abort(a).ok_or_else(|| err("invalid abort")))
            .transpose()?;
        let endpoint = r
            .endpoint
            .as_ref()
            .map(|e| {
                endpoints
                    .iter()
                    .position(|x| x.trim() == e.trim())
                    .ok_or_else(|| err("endpoint is not one of the upstream's"))
            })
            .transpose()?;
        let loaded = Instant::now();
        let (starts, stops) = window(r, loaded, ttl);
        let rng = match r.seed.or(seed) {
            Some(seed) => fastrand::Rng::with_seed(seed),
            None => fastrand::Rng::new(),
        };
        Ok(Self {
            name: r.name.clone(),
            header,
            matches: Match::build(r).map_err(err)?,
            percentage: r.percentage,
            delay,
            abort,
            throttle: r.throttle.as_ref().map(|t| t.bytes_per_second.max(1)),
            endpoint,
            first: r.first,
            max_active: r.max_active,
            starts,
            stops,
            loaded,
            rng: Mutex::new(rng),
            taken: AtomicU64::new(0),
            injected: AtomicU64::new(0),
            active: AtomicU32::new(0),
            counters: counters(&r.name, place, metrics),
        })
    }

    /// True when the rule does something by itself (a rule without, allowed where header
    /// faults are, acts only on what a request's headers ask for).
    pub fn has_action(&self) -> bool {
        self.delay.is_some() || self.abort.is_some() || self.throttle.is_some()
    }

    /// Selects `req` (sent to `endpoint`, upstream-side) for this rule: in its window,
    /// matching, drawn, under `max_active` and `first`. The slot is the request's place
    /// inside the fault; it leaves when the slot is dropped.
    pub fn select<B>(self: &Arc<Self>, req: &Request<B>, endpoint: Option<usize>) -> Option<Slot> {
        if self.endpoint.is_some() && self.endpoint != endpoint {
            return None;
        }
        if !self.in_window() || !self.matches.matches(req) || !self.drawn() {
            return None;
        }
        self.enter()
    }

    /// True unless the rule's time window (or ttl) says otherwise now.
    pub fn in_window(&self) -> bool {
        if self.starts.is_none() && self.stops.is_none() {
            return true;
        }
        let now = Instant::now();
        self.starts.is_none_or(|s| now >= s) && self.stops.is_none_or(|s| now < s)
    }

    /// True when the rule's ttl (or window) has ended for good.
    pub fn ended(&self, now: Instant) -> bool {
        self.stops.is_some_and(|s| now >= s)
    }

    /// Counts one injected `action`.
    pub fn count(&self, action: Action) {
        self.counters[action as usize].inc();
    }

    /// Requests (or tries) this rule faulted.
    pub fn injected(&self) -> u64 {
        self.injected.load(Ordering::Relaxed)
    }

    fn drawn(&self) -> bool {
        if self.percentage >= 100.0 {
            return true;
        }
        if self.percentage <= 0.0 {
            return false;
        }
        self.rng().f64() * 100.0 < self.percentage
    }

    fn rng(&self) -> std::sync::MutexGuard<'_, fastrand::Rng> {
        // A poisoned lock only means a panic elsewhere during a draw; the RNG is fine.
        self.rng
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Takes an active slot and a `first` injection, or neither.
    fn enter(self: &Arc<Self>) -> Option<Slot> {
        if let Some(cap) = self.max_active
            && self.active.fetch_add(1, Ordering::AcqRel) >= cap
        {
            self.active.fetch_sub(1, Ordering::AcqRel);
            return None;
        }
        let slot = Slot(self.clone());
        if let Some(first) = self.first {
            let taken = self
                .taken
                .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                    (n < first).then_some(n + 1)
                });
            // Dropping `slot` gives the active slot back.
            taken.ok()?;
        }
        self.injected.fetch_add(1, Ordering::Relaxed);
        Some(slot)
    }

    /// The delay of one faulted request, drawn when the rule's delay is a distribution;
    /// clamped to 0 and [`MAX_FAULT_DELAY`].
    pub fn draw_delay(&self, delay: Delay) -> Duration {
        let secs = match delay {
            Delay::Fixed(d) => return d,
            Delay::Uniform(min, max) => {
                return min + max.saturating_sub(min).mul_f64(self.rng().f64());
            }
            Delay::Normal(mean, sd) => mean + sd * standard_normal(&mut self.rng()),
            Delay::LogNormal(mu, sigma) => (mu + sigma * standard_normal(&mut self.rng())).exp(),
        };
        Duration::from_secs_f64(secs.clamp(0.0, MAX_FAULT_DELAY.get().as_secs_f64()))
    }
}

/// A request inside a rule's fault; holds the rule, and leaves `max_active` when dropped.
pub struct Slot(Arc<Rule>);

impl Slot {
    /// The rule that selected the request.
    pub fn rule(&self) -> &Arc<Rule> {
        &self.0
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        if self.0.max_active.is_some() {
            self.0.active.fetch_sub(1, Ordering::AcqRel);
        }
    }
}

/// The first rule of `rules` that selects `req`.
pub fn select_first<B>(
    rules: &[Arc<Rule>],
    req: &Request<B>,
    endpoint: Option<usize>,
) -> Option<Slot> {
    rules.iter().find_map(|r| r.select(req, endpoint))
}

impl Match {
    fn build(r: &FaultRule) -> Result<Self, &'static str> {
        let methods = r
            .matches
            .methods
            .iter()
            .map(|m| Method::from_bytes(m.as_bytes()).map_err(|_| "invalid method"))
            .collect::<Result<_, _>>()?;
        let headers = r
            .matches
            .headers
            .iter()
            .map(|(n, v)| {
                Ok((
                    HeaderName::try_from(n.as_str()).map_err(|_| "invalid header name")?,
                    HeaderValue::try_from(v.as_str()).map_err(|_| "invalid header value")?,
                ))
            })
            .collect::<Result<_, &'static str>>()?;
        Ok(Self {
            methods,
            path_prefix: r.matches.path_prefix.clone(),
            headers,
        })
    }

    fn matches<B>(&self, req: &Request<B>) -> bool {
        (self.methods.is_empty() || self.methods.contains(req.method()))
            && self
                .path_prefix
                .as_deref()
                .is_none_or(|p| req.uri().path().starts_with(p))
            && self
                .headers
                .iter()
                .all(|(n, v)| headers_have(req.headers(), n, v))
    }
}

fn headers_have(headers: &HeaderMap, name: &HeaderName, value: &HeaderValue) -> bool {
    headers.get_all(name).iter().any(|v| v == value)
}

/// When a rule loaded at `loaded` starts acting (`after`) and stops (`for`, or its `ttl`,
/// whichever ends first); `None` for no bound.
fn window(
    r: &FaultRule,
    loaded: Instant,
    ttl: Option<Duration>,
) -> (Option<Instant>, Option<Instant>) {
    let after = r.after.map_or(Duration::ZERO, |d| d.get());
    let starts = (!after.is_zero()).then(|| loaded + after);
    let window_end = r.active_for.map(|f| loaded + after + f.get());
    let stops = match (window_end, ttl.map(|t| loaded + t)) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    };
    (starts, stops)
}

/// The rule's counter per action. Only the actions `place` can inject get a series; the
/// others count into a detached counter nobody reads (validation keeps them from
/// happening), so the exposition lists no action that cannot occur there.
fn counters(name: &str, place: &Place, metrics: &Metrics) -> [Counter; 9] {
    ACTIONS.map(|a| {
        if !place.injects(a) {
            return Counter::default();
        }
        metrics.faults_injected.get_or_create_owned(&FaultLabels {
            scope: place.scope().to_owned(),
            target: place.target().to_owned(),
            fault: name.to_owned(),
            action: a.to_owned(),
        })
    })
}

/// One draw of a standard normal variable (Box–Muller; one of the pair is dropped, which
/// keeps the sequence a pure function of the seed and the call count).
fn standard_normal(rng: &mut fastrand::Rng) -> f64 {
    // 1 - f64() is in (0, 1]: ln stays finite.
    let u1 = 1.0 - rng.f64();
    let u2 = rng.f64();
    (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
}

fn delay(d: &DelayConfig) -> Option<Delay> {
    match (&d.fixed, &d.uniform, &d.normal, &d.lognormal) {
        (Some(f), None, None, None) => Some(Delay::Fixed(f.get())),
        (None, Some(u), None, None) if u.min <= u.max => {
            Some(Delay::Uniform(u.min.get(), u.max.get()))
        }
        (None, None, Some(n), None) => Some(Delay::Normal(
            n.mean.get().as_secs_f64(),
            n.stddev.get().as_secs_f64(),
        )),
        (None, None, None, Some(l)) if !l.mean.get().is_zero() => {
            // The delay's own mean m and deviation s give its logarithm's:
            // sigma² = ln(1 + s²/m²), mu = ln m − sigma²/2.
            let (m, s) = (l.mean.get().as_secs_f64(), l.stddev.get().as_secs_f64());
            let sigma2 = (1.0 + (s * s) / (m * m)).ln();
            Some(Delay::LogNormal(m.ln() - sigma2 / 2.0, sigma2.sqrt()))
        }
        _ => None,
    }
}

fn abort(a: &AbortConfig) -> Option<Abort> {
    let flags = (
        a.reset,
        a.close,
        a.connect_error,
        a.upstream_reset,
        a.blackhole,
    );
    if a.status.is_some() || a.grpc_status.is_some() {
        if flags != (false, false, false, false, false) {
            return None;
        }
        let status = match a.status {
            None => None,
            Some(s) => Some(
                StatusCode::from_u16(s)
                    .ok()
                    .filter(|s| (200..=599).contains(&s.as_u16()))?,
            ),
        };
        return Some(Abort::Answer {
            status,
            grpc: match a.grpc_status {
                Some(g) if g > 16 => return None,
                g => g,
            },
        });
    }
    match flags {
        (true, false, false, false, false) => Some(Abort::Reset),
        (false, true, false, false, false) => Some(Abort::Close),
        (false, false, true, false, false) => Some(Abort::ConnectError),
        (false, false, false, true, false) => Some(Abort::UpstreamReset),
        (false, false, false, false, true) => Some(Abort::Blackhole),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(yaml: &str) -> Arc<Rule> {
        let r: FaultRule = parse(yaml);
        let m = Metrics::new(&[0.1]);
        Arc::new(Rule::build(&r, &Place::Route("r".into()), &[], Some(7), None, &m).unwrap())
    }

    fn parse(json: &str) -> FaultRule {
        serde_json::from_str(json).unwrap()
    }

    fn mean_of(r: &Rule, n: usize) -> (f64, f64) {
        let Some(d) = r.delay else { panic!("no delay") };
        let xs: Vec<f64> = (0..n).map(|_| r.draw_delay(d).as_secs_f64()).collect();
        let mean = xs.iter().sum::<f64>() / n as f64;
        let var = xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / n as f64;
        (mean, var.sqrt())
    }

    #[test]
    fn normal_delays_have_the_configured_mean_and_spread() {
        let r = rule(r#"{"name": "n", "delay": {"normal": {"mean": "200ms", "stddev": "20ms"}}}"#);
        let (mean, sd) = mean_of(&r, 20_000);
        assert!((mean - 0.2).abs() < 0.002, "mean {mean}");
        assert!((sd - 0.02).abs() < 0.002, "sd {sd}");
    }

    #[test]
    fn lognormal_delays_have_the_configured_mean_and_spread() {
        let r =
            rule(r#"{"name": "l", "delay": {"lognormal": {"mean": "100ms", "stddev": "50ms"}}}"#);
        let (mean, sd) = mean_of(&r, 50_000);
        assert!((mean - 0.1).abs() < 0.003, "mean {mean}");
        assert!((sd - 0.05).abs() < 0.005, "sd {sd}");
    }

    #[test]
    fn normal_delays_are_clamped_at_zero_and_repeat_with_a_seed() {
        let spec = r#"{"name": "n", "delay": {"normal": {"mean": "10ms", "stddev": "100ms"}}}"#;
        let (a, b) = (rule(spec), rule(spec));
        let d = a.delay.unwrap();
        let xs: Vec<Duration> = (0..1000).map(|_| a.draw_delay(d)).collect();
        let ys: Vec<Duration> = (0..1000).map(|_| b.draw_delay(d)).collect();
        assert_eq!(xs, ys, "same seed, same draws");
        assert!(xs.contains(&Duration::ZERO), "negative draws clamp to 0");
    }

    #[test]
    fn a_rule_outside_its_window_selects_nothing() {
        let r = rule(r#"{"name": "w", "after": "1h", "abort": {"status": 503}}"#);
        let req = Request::get("/").body(()).unwrap();
        assert!(r.select(&req, None).is_none());
        let r = rule(r#"{"name": "w", "for": "1h", "abort": {"status": 503}}"#);
        assert!(r.select(&req, None).is_some());
    }
}
