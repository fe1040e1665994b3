//! `fault`: client-facing fault injection. The gateway itself delays requests, answers
//! them with an error status or a gRPC status, or ends the client's connection, so that
//! the *callers* of the gateway can be tested (see `docs/faults.md`).
//!
//! Per request, the rules are tried in config order; the first that matches and is
//! selected applies. Selection: `percentage` is drawn from the layer's seeded
//! [`fastrand::Rng`] (one per layer, so per route, behind a mutex held for one draw);
//! `max_active` caps the requests inside the fault at once and `first` the number of
//! faults injected, both with atomics. A rule passed over (not drawn, at its cap, its
//! `first` spent) lets the next rule try.
//!
//! Every faulted response carries `seawall-fault: <rule>` (an abort adds it itself, a
//! delayed-then-forwarded response in the response phase) and never `seawall-error`: a
//! drill must not be mistaken for an outage, nor for a gateway failure. Each action counts
//! in `seawall_faults_injected_total{route, fault, action}`.
//!
//! `reset` and `close` answer with a body that fails at once: hyper then drops the
//! connection (HTTP/1.1) before any byte of the response is written, or resets the stream
//! (HTTP/2). A true TCP RST (`SO_LINGER 0`) for `reset` needs the socket and comes later.

use std::{
    pin::Pin,
    sync::{
        Mutex, OnceLock,
        atomic::{AtomicU32, AtomicU64, Ordering},
    },
    task::{Context, Poll},
    time::Duration,
};

use bytes::Bytes;
use http::{
    HeaderMap, HeaderName, HeaderValue, Method, Request, Response, StatusCode, header, response,
};
use http_body::Frame;
use http_body_util::{BodyExt, Full};
use prometheus_client::metrics::counter::Counter;
use seawall_config::{AbortConfig, DelayConfig, FaultConfig, FaultRule};
use seawall_core::{Body, BoxError};

use crate::{
    chain::{Flow, Layer, Step},
    context::RequestContext,
    error_response::is_grpc,
    metrics::FaultLabels,
};

/// The header naming the fault injected into a response.
pub static FAULT_HEADER: HeaderName = HeaderName::from_static("seawall-fault");

/// Actions (the metric's `action` label), indexed by the `A_*` constants.
const ACTIONS: [&str; 5] = ["delay", "abort", "grpc_abort", "reset", "close"];
const A_DELAY: usize = 0;
const A_ABORT: usize = 1;
const A_GRPC: usize = 2;
const A_RESET: usize = 3;
const A_CLOSE: usize = 4;

/// How a rule's delay is drawn.
enum Delay {
    Fixed(Duration),
    Uniform(Duration, Duration),
}

/// How a rule ends a request.
enum Abort {
    /// HTTP status and/or gRPC status.
    Answer {
        status: Option<StatusCode>,
        grpc: Option<u32>,
    },
    Reset,
    Close,
}

/// Which requests a rule applies to, parsed once.
struct Match {
    methods: Vec<Method>,
    path_prefix: Option<String>,
    headers: Vec<(HeaderName, HeaderValue)>,
}

/// One rule, ready to apply.
struct Rule {
    name: String,
    header: HeaderValue,
    matches: Match,
    percentage: f64,
    delay: Option<Delay>,
    abort: Option<Abort>,
    first: Option<u64>,
    max_active: Option<u32>,
    /// Faults injected so far (for `first`).
    injected: AtomicU64,
    /// Requests inside the fault now (for `max_active`).
    active: AtomicU32,
}

/// The `fault` layer.
pub struct Fault {
    rules: Vec<Rule>,
    rng: Mutex<fastrand::Rng>,
    /// Per rule, the counters by action; resolved on the first request (the route's name
    /// and metrics are known only then).
    counters: OnceLock<Vec<[Counter; 5]>>,
}

impl Fault {
    /// Builds the layer; errors name the offending rule (validation catches them first).
    pub fn try_new(config: &FaultConfig) -> Result<Self, String> {
        let rules = config
            .rules
            .iter()
            .map(Rule::build)
            .collect::<Result<Vec<_>, _>>()?;
        let rng = match config.seed {
            Some(seed) => fastrand::Rng::with_seed(seed),
            None => fastrand::Rng::new(),
        };
        Ok(Self {
            rules,
            rng: Mutex::new(rng),
            counters: OnceLock::new(),
        })
    }

    fn counters(&self, cx: &RequestContext) -> &[[Counter; 5]] {
        self.counters.get_or_init(|| {
            let family = &cx.route.shared.metrics.faults_injected;
            self.rules
                .iter()
                .map(|r| {
                    ACTIONS.map(|a| {
                        family.get_or_create_owned(&FaultLabels {
                            route: cx.route.name.clone(),
                            fault: r.name.clone(),
                            action: a.to_owned(),
                        })
                    })
                })
                .collect()
        })
    }

    /// True when the draw selects a request for `percentage`.
    fn drawn(&self, percentage: f64) -> bool {
        if percentage >= 100.0 {
            return true;
        }
        if percentage <= 0.0 {
            return false;
        }
        let mut rng = self
            .rng
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        rng.f64() * 100.0 < percentage
    }

    /// The rule that applies to `req`, with its active slot taken.
    fn select(&self, req: &Request<Body>) -> Option<(usize, ActiveSlot<'_>)> {
        for (i, rule) in self.rules.iter().enumerate() {
            if !rule.matches.matches(req) || !self.drawn(rule.percentage) {
                continue;
            }
            if let Some(slot) = rule.enter() {
                return Some((i, slot));
            }
        }
        None
    }

    fn delay_of(&self, delay: &Delay) -> Duration {
        match *delay {
            Delay::Fixed(d) => d,
            Delay::Uniform(min, max) => {
                let span = max.saturating_sub(min);
                let mut rng = self
                    .rng
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                min + span.mul_f64(rng.f64())
            }
        }
    }
}

impl Rule {
    fn build(r: &FaultRule) -> Result<Self, String> {
        let err = |what: &str| format!("fault `{}`: {what}", r.name);
        let header = HeaderValue::try_from(r.name.as_str()).map_err(|_| err("invalid name"))?;
        let methods = r
            .matches
            .methods
            .iter()
            .map(|m| Method::from_bytes(m.as_bytes()).map_err(|_| err("invalid method")))
            .collect::<Result<_, _>>()?;
        let headers = r
            .matches
            .headers
            .iter()
            .map(|(n, v)| {
                Ok((
                    HeaderName::try_from(n.as_str()).map_err(|_| err("invalid header name"))?,
                    HeaderValue::try_from(v.as_str()).map_err(|_| err("invalid header value"))?,
                ))
            })
            .collect::<Result<_, String>>()?;
        let delay = r
            .delay
            .as_ref()
            .map(|d| delay(d).ok_or_else(|| err("delay needs fixed or uniform")));
        let abort = r
            .abort
            .as_ref()
            .map(|a| abort(a).ok_or_else(|| err("invalid abort")));
        let (delay, abort) = (delay.transpose()?, abort.transpose()?);
        if delay.is_none() && abort.is_none() {
            return Err(err("no action"));
        }
        Ok(Self {
            name: r.name.clone(),
            header,
            matches: Match {
                methods,
                path_prefix: r.matches.path_prefix.clone(),
                headers,
            },
            percentage: r.percentage,
            delay,
            abort,
            first: r.first,
            max_active: r.max_active,
            injected: AtomicU64::new(0),
            active: AtomicU32::new(0),
        })
    }

    /// Takes an active slot and a `first` injection, or neither.
    fn enter(&self) -> Option<ActiveSlot<'_>> {
        if let Some(cap) = self.max_active
            && self.active.fetch_add(1, Ordering::AcqRel) >= cap
        {
            self.active.fetch_sub(1, Ordering::AcqRel);
            return None;
        }
        let slot = ActiveSlot(self.max_active.map(|_| &self.active));
        if let Some(first) = self.first {
            let taken = self
                .injected
                .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                    (n < first).then_some(n + 1)
                });
            // Dropping `slot` gives the active slot back.
            taken.ok()?;
        }
        Some(slot)
    }
}

/// A request inside a fault, for `max_active`; leaves it when dropped.
struct ActiveSlot<'a>(Option<&'a AtomicU32>);

impl Drop for ActiveSlot<'_> {
    fn drop(&mut self) {
        if let Some(active) = self.0 {
            active.fetch_sub(1, Ordering::AcqRel);
        }
    }
}

impl Match {
    fn matches(&self, req: &Request<Body>) -> bool {
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

fn delay(d: &DelayConfig) -> Option<Delay> {
    match (&d.fixed, &d.uniform) {
        (Some(f), None) => Some(Delay::Fixed(f.get())),
        (None, Some(u)) if u.min <= u.max => Some(Delay::Uniform(u.min.get(), u.max.get())),
        _ => None,
    }
}

fn abort(a: &AbortConfig) -> Option<Abort> {
    match (a.status, a.grpc_status, a.reset, a.close) {
        (None, None, true, false) => Some(Abort::Reset),
        (None, None, false, true) => Some(Abort::Close),
        (status, grpc, false, false) if status.is_some() || grpc.is_some() => {
            let status = status
                .map(|s| {
                    StatusCode::from_u16(s)
                        .ok()
                        .filter(|s| (200..=599).contains(&s.as_u16()))
                })
                .map(|s| s.ok_or(()))
                .transpose()
                .ok()?;
            Some(Abort::Answer {
                status,
                grpc: grpc.filter(|g| *g <= 16),
            })
        }
        _ => None,
    }
}

/// The response (or connection end) of `abort` for a request of rule `rule`.
fn aborted(rule: &Rule, abort: &Abort, grpc_request: bool) -> (Response<Body>, usize) {
    let (mut resp, action) = match abort {
        Abort::Answer {
            grpc: Some(code),
            status,
        } if grpc_request || status.is_none() => {
            // Trailers-only gRPC response: the status in the head, no body.
            let mut resp = Response::new(empty());
            let h = resp.headers_mut();
            h.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/grpc"),
            );
            h.insert(
                HeaderName::from_static("grpc-status"),
                HeaderValue::from(*code),
            );
            h.insert(
                HeaderName::from_static("grpc-message"),
                HeaderValue::from_static("fault%20injected"),
            );
            (resp, A_GRPC)
        }
        Abort::Answer { status, .. } => {
            let status = status.unwrap_or(StatusCode::SERVICE_UNAVAILABLE);
            let text = format!("{} fault injected: {}\n", status.as_u16(), rule.name);
            let mut resp =
                Response::new(Full::new(Bytes::from(text)).map_err(|e| match e {}).boxed());
            *resp.status_mut() = status;
            let h = resp.headers_mut();
            h.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/plain; charset=utf-8"),
            );
            h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            (resp, A_ABORT)
        }
        Abort::Reset => (Response::new(Failing.boxed()), A_RESET),
        Abort::Close => {
            let mut resp = Response::new(Failing.boxed());
            resp.headers_mut()
                .insert(header::CONNECTION, HeaderValue::from_static("close"));
            (resp, A_CLOSE)
        }
    };
    resp.headers_mut()
        .insert(FAULT_HEADER.clone(), rule.header.clone());
    (resp, action)
}

fn empty() -> Body {
    http_body_util::Empty::<Bytes>::new()
        .map_err(|e| match e {})
        .boxed()
}

/// A body that fails on its first poll: hyper drops the connection (or resets the
/// stream) instead of sending the response.
struct Failing;

impl http_body::Body for Failing {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        Poll::Ready(Some(Err("fault injected: connection ended".into())))
    }
}

impl Layer for Fault {
    fn name(&self) -> &'static str {
        "fault"
    }

    fn on_request<'a>(&'a self, req: Request<Body>, cx: &'a mut RequestContext) -> Step<'a> {
        let Some((i, slot)) = self.select(&req) else {
            return Step::Done(Flow::Forward(req));
        };
        let rule = &self.rules[i];
        let counters = &self.counters(cx)[i];
        cx.fault = Some(rule.header.clone());
        let wait = rule.delay.as_ref().map(|d| self.delay_of(d));
        let grpc_request = is_grpc(req.headers());
        let decide = move |cx: &mut RequestContext, req: Request<Body>| {
            let flow = match &rule.abort {
                None => Flow::Forward(req),
                Some(abort) => {
                    let (resp, action) = aborted(rule, abort, grpc_request);
                    counters[action].inc();
                    Flow::Respond(resp)
                }
            };
            let decision = if matches!(flow, Flow::Forward(_)) {
                "delayed"
            } else {
                "aborted"
            };
            cx.trace_policy("fault", decision, || format!("fault={}", rule.name));
            drop(slot);
            flow
        };
        match wait {
            None => Step::Done(decide(cx, req)),
            Some(wait) => {
                counters[A_DELAY].inc();
                Step::Pending(Box::pin(async move {
                    tokio::time::sleep(wait).await;
                    decide(cx, req)
                }))
            }
        }
    }

    fn on_response(&self, head: &mut response::Parts, cx: &mut RequestContext) {
        if let Some(v) = cx.fault.clone() {
            head.headers.insert(FAULT_HEADER.clone(), v);
        }
    }
}
