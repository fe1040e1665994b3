//! The gateway's Prometheus metrics: one registry per process, created at start-up and kept
//! across config reloads so that counters never reset when the config changes.
//!
//! Names follow `seawall_<subsystem>_<name>_<unit>`; counters get `_total` from the encoder
//! (prometheus-client appends it, and panics in debug builds if we add it ourselves). Labels
//! are bounded on purpose: route and upstream names come from config, never from requests.
//!
//! On the hot path nothing is looked up by hashing labels: [`RouteMetrics`] resolves its
//! histogram handles once per (method, status class) and caches them.

use std::sync::{Arc, OnceLock};

use prometheus_client::{
    encoding::EncodeLabelSet,
    metrics::{
        counter::Counter,
        family::{Family, MetricConstructor},
        gauge::Gauge,
        histogram::Histogram,
    },
    registry::Registry,
};
use seawall_core::ErrorKind;

use crate::histogram::AtomicHistogram;
use seawall_pool::{CloseCounters, DnsMetrics, PhaseMetrics, PoolMetrics};

/// Builds histograms with the configured buckets.
#[derive(Clone)]
pub struct Buckets(Arc<[f64]>);

impl MetricConstructor<Histogram> for Buckets {
    fn new_metric(&self) -> Histogram {
        Histogram::new(self.0.iter().copied())
    }
}

impl MetricConstructor<AtomicHistogram> for Buckets {
    fn new_metric(&self) -> AtomicHistogram {
        AtomicHistogram::new(self.0.iter().copied())
    }
}

/// Labels of the request duration histogram.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    pub route: String,
    pub method: String,
    pub status_class: String,
}

/// Labels naming a route only.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RouteLabel {
    pub route: String,
}

/// Labels of the error counter.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ErrorLabels {
    pub route: String,
    pub kind: String,
}

/// Labels of the stall counter.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StallLabels {
    pub route: String,
    pub layer: String,
}

/// Labels naming an upstream only.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct UpstreamLabel {
    pub upstream: String,
}

/// Labels of upstream requests by connection reuse.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReuseLabels {
    pub upstream: String,
    pub reused: String,
}

/// Labels of upstream connections closed, by reason.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CloseLabels {
    pub upstream: String,
    pub reason: String,
}

/// Labels of upstream TLS handshakes, by kind (`full` or `resumed`).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct HandshakeLabels {
    pub upstream: String,
    pub kind: String,
}

/// Labels naming a listener only.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ListenerLabel {
    pub listener: String,
}

/// Labels of downstream connections closed by the gateway, by reason.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct DownstreamCloseLabels {
    pub listener: String,
    pub reason: String,
}

/// Labels of config reloads.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReloadLabels {
    pub outcome: String,
}

/// Labels of breaker transitions.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TransitionLabels {
    pub upstream: String,
    pub from: String,
    pub to: String,
    pub cause: String,
}

/// Labels of fallback answers: which fallback (`kind`: upstream, stale_cache, static) and
/// the failure it covered (`reason`, an error kind).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct FallbackLabels {
    pub route: String,
    pub kind: String,
    pub reason: String,
}

/// Labels of retry decisions.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RetryLabels {
    pub route: String,
    pub outcome: String,
}

/// Labels of per-upstream events with a reason (shedding, outlier events).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct UpstreamReasonLabels {
    pub upstream: String,
    pub reason: String,
}

/// Labels of rate-limit decisions (`outcome`: allowed, delayed, limited).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RateLimitLabels {
    pub route: String,
    pub limit: String,
    pub outcome: String,
}

/// Labels of injected faults: `scope` (`route`: client-facing, `upstream`:
/// upstream-side), `target` (the route's or upstream's name), `fault` (the rule's name),
/// `action` (see `crate::faults::rule::ACTIONS`).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct FaultLabels {
    pub scope: String,
    pub target: String,
    pub fault: String,
    pub action: String,
}

/// Labels of installed fault rules: `scope` and `target` as in [`FaultLabels`].
#[derive(Clone, Debug, Hash, PartialEq, Eq, PartialOrd, Ord, EncodeLabelSet)]
pub struct FaultScopeLabels {
    pub scope: String,
    pub target: String,
}

/// Every metric family of the gateway.
pub struct Metrics {
    registry: Registry,
    /// The resilience events stream (`GET /events`), fed beside the counters.
    pub events: crate::events::Events,
    /// Lock-free: every request records into it (see `crate::histogram`).
    pub request_duration: Family<RequestLabels, AtomicHistogram, Buckets>,
    pub errors: Family<ErrorLabels, Counter>,
    pub panics: Family<RouteLabel, Counter>,
    pub stalls: Family<StallLabels, Counter>,
    pub upstream_connect_duration: Family<UpstreamLabel, Histogram, Buckets>,
    pub upstream_requests: Family<ReuseLabels, Counter>,
    pub upstream_opened: Family<UpstreamLabel, Counter>,
    pub upstream_closed: Family<CloseLabels, Counter>,
    pub upstream_idle: Family<UpstreamLabel, Gauge>,
    pub upstream_in_use: Family<UpstreamLabel, Gauge>,
    pub upstream_connecting: Family<UpstreamLabel, Gauge>,
    pub upstream_tls_handshake_duration: Family<UpstreamLabel, Histogram, Buckets>,
    pub upstream_tls_handshakes: Family<HandshakeLabels, Counter>,
    pub upstream_checkout_wait: Family<UpstreamLabel, Histogram, Buckets>,
    pub upstream_response_head_duration: Family<UpstreamLabel, Histogram, Buckets>,
    pub upstream_dns_lookups: Family<UpstreamLabel, Counter>,
    pub upstream_dns_failures: Family<UpstreamLabel, Counter>,
    pub upstream_dns_changes: Family<UpstreamLabel, Counter>,
    pub upstream_dns_addresses: Family<UpstreamLabel, Gauge>,
    pub upstream_dns_resolve_duration: Family<UpstreamLabel, Histogram, Buckets>,
    pub downstream_open: Family<ListenerLabel, Gauge>,
    pub downstream_rejected: Family<ListenerLabel, Counter>,
    pub downstream_closed: Family<DownstreamCloseLabels, Counter>,
    pub reloads: Family<ReloadLabels, Counter>,
    pub breaker_state: Family<UpstreamLabel, Gauge>,
    pub breaker_transitions: Family<TransitionLabels, Counter>,
    pub breaker_rejected: Family<UpstreamLabel, Counter>,
    pub retries: Family<RetryLabels, Counter>,
    pub shed: Family<UpstreamReasonLabels, Counter>,
    pub outlier_events: Family<UpstreamReasonLabels, Counter>,
    pub endpoints_ejected: Family<UpstreamLabel, Gauge>,
    pub endpoints_unhealthy: Family<UpstreamLabel, Gauge>,
    pub health_checks: Family<UpstreamReasonLabels, Counter>,
    pub concurrency_limit: Family<UpstreamLabel, Gauge>,
    pub fallbacks: Family<FallbackLabels, Counter>,
    pub hedges: Family<RetryLabels, Counter>,
    pub hedge_delay: Family<RouteLabel, Gauge<f64, std::sync::atomic::AtomicU64>>,
    pub ratelimit_decisions: Family<RateLimitLabels, Counter>,
    /// Calls to a rate-limit store (Redis), by route, limit and outcome (`ok`, `error`).
    pub ratelimit_store_calls: Family<RateLimitLabels, Counter>,
    /// Faults injected, by scope, target, rule and action.
    pub faults_injected: Family<FaultLabels, Counter>,
    /// Fault rules of the registry (upstream-side and runtime), by scope and target.
    pub faults_active: Family<FaultScopeLabels, Gauge>,
}

impl Metrics {
    /// Creates and registers every family. `request_buckets` are the request-duration
    /// histogram's bucket bounds in seconds (changing them needs a restart).
    pub fn new(request_buckets: &[f64]) -> Arc<Self> {
        let mut registry = Registry::with_prefix("seawall");
        let request_duration =
            Family::new_with_constructor(Buckets(Arc::from(request_buckets.to_vec())));
        let connect_buckets = Buckets(Arc::from(
            &[
                0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
                1.0, 2.5, 5.0,
            ][..],
        ));
        let m = Metrics {
            request_duration,
            errors: Family::default(),
            panics: Family::default(),
            stalls: Family::default(),
            upstream_connect_duration: Family::new_with_constructor(connect_buckets),
            upstream_requests: Family::default(),
            upstream_opened: Family::default(),
            upstream_closed: Family::default(),
            upstream_idle: Family::default(),
            upstream_in_use: Family::default(),
            upstream_connecting: Family::default(),
            upstream_tls_handshake_duration: Family::new_with_constructor(buckets_of(
                PhaseMetrics::tls_handshake_buckets(),
            )),
            upstream_tls_handshakes: Family::default(),
            upstream_checkout_wait: Family::new_with_constructor(buckets_of(
                PhaseMetrics::checkout_wait_buckets(),
            )),
            upstream_response_head_duration: Family::new_with_constructor(buckets_of(
                PhaseMetrics::response_head_buckets(),
            )),
            upstream_dns_lookups: Family::default(),
            upstream_dns_failures: Family::default(),
            upstream_dns_changes: Family::default(),
            upstream_dns_addresses: Family::default(),
            upstream_dns_resolve_duration: Family::new_with_constructor(buckets_of(
                DnsMetrics::resolve_buckets(),
            )),
            downstream_open: Family::default(),
            downstream_rejected: Family::default(),
            downstream_closed: Family::default(),
            reloads: Family::default(),
            breaker_state: Family::default(),
            breaker_transitions: Family::default(),
            breaker_rejected: Family::default(),
            retries: Family::default(),
            shed: Family::default(),
            outlier_events: Family::default(),
            endpoints_ejected: Family::default(),
            endpoints_unhealthy: Family::default(),
            health_checks: Family::default(),
            concurrency_limit: Family::default(),
            fallbacks: Family::default(),
            hedges: Family::default(),
            hedge_delay: Family::default(),
            ratelimit_decisions: Family::default(),
            ratelimit_store_calls: Family::default(),
            faults_injected: Family::default(),
            faults_active: Family::default(),
            registry: Registry::default(),
            events: crate::events::Events::default(),
        };
        let r = &mut registry;
        r.register(
            "request_duration_seconds",
            "Time from request head to the end of the response body, by route, method and status class",
            m.request_duration.clone(),
        );
        r.register(
            "errors",
            "Requests that failed, by route and error kind",
            m.errors.clone(),
        );
        r.register(
            "panics",
            "Panics caught while handling a request, by route",
            m.panics.clone(),
        );
        r.register(
            "layer_stalls",
            "Requests whose deadline fired while a middleware layer held them, by layer",
            m.stalls.clone(),
        );
        r.register(
            "upstream_connect_duration_seconds",
            "TCP connect time to upstream endpoints",
            m.upstream_connect_duration.clone(),
        );
        r.register(
            "upstream_requests",
            "Requests sent upstream, by whether the connection was reused",
            m.upstream_requests.clone(),
        );
        r.register(
            "upstream_connections_opened",
            "Upstream connections opened",
            m.upstream_opened.clone(),
        );
        r.register(
            "upstream_connections_closed",
            "Upstream connections closed, by reason",
            m.upstream_closed.clone(),
        );
        r.register(
            "upstream_connections_idle",
            "Idle upstream connections in the pool",
            m.upstream_idle.clone(),
        );
        r.register(
            "upstream_connections_in_use",
            "Upstream connections carrying a request",
            m.upstream_in_use.clone(),
        );
        r.register(
            "upstream_connections_connecting",
            "Upstream connections being established",
            m.upstream_connecting.clone(),
        );
        r.register(
            "upstream_tls_handshake_duration_seconds",
            "Successful TLS handshakes with upstream endpoints, from the end of the TCP connect",
            m.upstream_tls_handshake_duration.clone(),
        );
        r.register(
            "upstream_tls_handshakes",
            "Successful TLS handshakes with upstream endpoints, by kind (full or resumed)",
            m.upstream_tls_handshakes.clone(),
        );
        r.register(
            "upstream_checkout_wait_seconds",
            "Time to get an upstream connection, reused or new (slot wait, connect and TLS included)",
            m.upstream_checkout_wait.clone(),
        );
        r.register(
            "upstream_response_head_duration_seconds",
            "Time from sending a request upstream to its response head, for requests that got one",
            m.upstream_response_head_duration.clone(),
        );
        r.register(
            "upstream_dns_lookups",
            "DNS lookups of upstream host names",
            m.upstream_dns_lookups.clone(),
        );
        r.register(
            "upstream_dns_failures",
            "DNS lookups that failed, timed out or came back empty (the last good answer was kept)",
            m.upstream_dns_failures.clone(),
        );
        r.register(
            "upstream_dns_changes",
            "Times the set of an upstream's resolved addresses changed (the first answer included)",
            m.upstream_dns_changes.clone(),
        );
        r.register(
            "upstream_dns_addresses",
            "Resolved addresses taking new requests, per upstream (draining ones excluded)",
            m.upstream_dns_addresses.clone(),
        );
        r.register(
            "upstream_dns_resolve_duration_seconds",
            "Duration of DNS lookups of upstream host names, failed ones included",
            m.upstream_dns_resolve_duration.clone(),
        );
        r.register(
            "downstream_connections_open",
            "Open client connections, by listener",
            m.downstream_open.clone(),
        );
        r.register(
            "downstream_connections_rejected",
            "Client connections refused because max_connections was reached",
            m.downstream_rejected.clone(),
        );
        r.register(
            "downstream_connections_closed",
            "Client connections closed by the gateway's own timeouts, by reason",
            m.downstream_closed.clone(),
        );
        r.register(
            "config_reloads",
            "Config reload attempts, by outcome",
            m.reloads.clone(),
        );
        r.register(
            "breaker_state",
            "Circuit breaker state per upstream: 0 closed, 1 open, 2 half_open",
            m.breaker_state.clone(),
        );
        r.register(
            "breaker_transitions",
            "Circuit breaker state changes, by upstream, from, to and cause",
            m.breaker_transitions.clone(),
        );
        r.register(
            "breaker_rejected",
            "Tries refused by an open (or saturated half-open) circuit breaker",
            m.breaker_rejected.clone(),
        );
        r.register(
            "retries",
            "Retry decisions after a retryable failure, by route and outcome",
            m.retries.clone(),
        );
        r.register(
            "shed",
            "Tries refused by an upstream's bulkhead, by reason (queue_full, queue_timeout)",
            m.shed.clone(),
        );
        r.register(
            "outlier_events",
            "Outlier detection events, by upstream and reason (ejected, returned, ejection_skipped)",
            m.outlier_events.clone(),
        );
        r.register(
            "endpoints_unhealthy",
            "Endpoints currently failing their active health checks, per upstream",
            m.endpoints_unhealthy.clone(),
        );
        r.register(
            "health_checks",
            "Active health-check probes, by upstream and reason (passed, failed)",
            m.health_checks.clone(),
        );
        r.register(
            "endpoints_ejected",
            "Endpoints currently ejected by outlier detection, per upstream",
            m.endpoints_ejected.clone(),
        );
        r.register(
            "concurrency_limit",
            "The adaptive concurrency limit of an upstream (only with concurrency.adaptive)",
            m.concurrency_limit.clone(),
        );
        r.register(
            "hedges",
            "Extra copies of slow tries (hedges), by route and outcome (won, lost, budget_exhausted)",
            m.hedges.clone(),
        );
        r.register(
            "hedge_delay_seconds",
            "The hedge delay a route's requests wait before an extra copy (NaN while too few latencies are known)",
            m.hedge_delay.clone(),
        );
        r.register(
            "fallbacks",
            "Requests answered with the route's fallback, by route, fallback kind (upstream, stale_cache, static) and the failure it covered (reason)",
            m.fallbacks.clone(),
        );
        r.register(
            "ratelimit_decisions",
            "Rate-limit decisions, by route, limit and outcome (allowed, delayed, limited)",
            m.ratelimit_decisions.clone(),
        );
        r.register(
            "ratelimit_store_calls",
            "Calls to the rate-limit store (Redis), by route, limit and outcome (ok, error); none while its breaker is open",
            m.ratelimit_store_calls.clone(),
        );
        r.register(
            "faults_injected",
            "Faults injected, by scope (route: client-facing, upstream: upstream-side), target (route or upstream name), fault (rule name) and action (delay, abort, grpc_abort, reset, close, connect_error, upstream_reset, blackhole, throttle)",
            m.faults_injected.clone(),
        );
        r.register(
            "faults_active",
            "Fault rules installed outside `fault` layers (upstreams[].faults and runtime faults), by scope and target",
            m.faults_active.clone(),
        );
        Arc::new(Metrics { registry, ..m })
    }

    /// OpenMetrics text exposition of every metric (`# EOF` included); the admin API
    /// rewrites it for scrapers that want the Prometheus text format.
    pub fn encode(&self) -> String {
        let mut out = String::with_capacity(16 * 1024);
        // Encoding into a String cannot fail for lack of space; an error here would be a
        // bug in a label encoder, and an empty page is the safe answer.
        if prometheus_client::encoding::text::encode(&mut out, &self.registry).is_err() {
            out.clear();
        }
        out
    }

    /// Counts a config reload attempt.
    pub fn reload(&self, outcome: &str) {
        self.events.publish("reload", outcome, String::new);
        self.reloads
            .get_or_create(&ReloadLabels {
                outcome: outcome.to_owned(),
            })
            .inc();
    }

    /// Counts a retry decision on `route`.
    pub fn retry(&self, route: &str, outcome: &str) {
        self.retries
            .get_or_create(&RetryLabels {
                route: route.to_owned(),
                outcome: outcome.to_owned(),
            })
            .inc();
    }

    /// The handle of `upstream`'s unhealthy-endpoints gauge.
    pub fn endpoints_unhealthy_gauge(&self, upstream: &str) -> Gauge {
        self.endpoints_unhealthy
            .get_or_create(&UpstreamLabel {
                upstream: upstream.to_owned(),
            })
            .clone()
    }

    /// Counts a health-check probe of `upstream` (`passed` or `failed`).
    pub fn health_check(&self, upstream: &str, reason: &str) {
        self.health_checks
            .get_or_create(&UpstreamReasonLabels {
                upstream: upstream.to_owned(),
                reason: reason.to_owned(),
            })
            .inc();
    }

    /// Counts a hedge decision on `route`.
    pub fn hedge(&self, route: &str, outcome: &str) {
        self.hedges
            .get_or_create(&RetryLabels {
                route: route.to_owned(),
                outcome: outcome.to_owned(),
            })
            .inc();
    }

    /// The handle of `route`'s hedge delay gauge, resolved once per built route.
    pub fn hedge_delay_gauge(&self, route: &str) -> Gauge<f64, std::sync::atomic::AtomicU64> {
        self.hedge_delay
            .get_or_create(&RouteLabel {
                route: route.to_owned(),
            })
            .clone()
    }

    /// Counts a fallback of `kind` (upstream, stale_cache, static) served on `route`
    /// instead of a failure of kind `covered`.
    pub fn fallback(&self, route: &str, kind: &str, covered: ErrorKind) {
        self.events.fallback(route, || {
            format!("{kind} answered for {}", covered.reason())
        });
        self.fallbacks
            .get_or_create(&FallbackLabels {
                route: route.to_owned(),
                kind: kind.to_owned(),
                reason: covered.reason().to_owned(),
            })
            .inc();
    }

    /// Per-phase handles for one upstream's pool, labelled once like [`Metrics::pool`].
    pub fn phases(&self, upstream: &str) -> PhaseMetrics {
        let u = UpstreamLabel {
            upstream: upstream.to_owned(),
        };
        let handshakes = |kind: &str| {
            self.upstream_tls_handshakes
                .get_or_create_owned(&HandshakeLabels {
                    upstream: upstream.to_owned(),
                    kind: kind.to_owned(),
                })
        };
        PhaseMetrics {
            tls_handshake_duration: self.upstream_tls_handshake_duration.get_or_create_owned(&u),
            tls_handshakes_full: handshakes("full"),
            tls_handshakes_resumed: handshakes("resumed"),
            checkout_wait: self.upstream_checkout_wait.get_or_create_owned(&u),
            response_head_duration: self.upstream_response_head_duration.get_or_create_owned(&u),
        }
    }

    /// DNS metric handles for one upstream with host-name endpoints.
    pub fn dns(&self, upstream: &str) -> DnsMetrics {
        let u = UpstreamLabel {
            upstream: upstream.to_owned(),
        };
        DnsMetrics {
            lookups: self.upstream_dns_lookups.get_or_create_owned(&u),
            failures: self.upstream_dns_failures.get_or_create_owned(&u),
            changes: self.upstream_dns_changes.get_or_create_owned(&u),
            addresses: self.upstream_dns_addresses.get_or_create_owned(&u),
            resolve_duration: self.upstream_dns_resolve_duration.get_or_create_owned(&u),
        }
    }

    /// Pool metric handles for one upstream, labelled once here so the pool never hashes.
    pub fn pool(&self, upstream: &str) -> PoolMetrics {
        let u = UpstreamLabel {
            upstream: upstream.to_owned(),
        };
        PoolMetrics {
            connect_duration: self.upstream_connect_duration.get_or_create_owned(&u),
            opened: self.upstream_opened.get_or_create_owned(&u),
            closed: CloseCounters::from_fn(|reason| {
                self.upstream_closed.get_or_create_owned(&CloseLabels {
                    upstream: upstream.to_owned(),
                    reason: reason.as_str().to_owned(),
                })
            }),
            connecting: self.upstream_connecting.get_or_create_owned(&u),
            idle: self.upstream_idle.get_or_create_owned(&u),
            in_use: self.upstream_in_use.get_or_create_owned(&u),
            reused: self.upstream_requests.get_or_create_owned(&ReuseLabels {
                upstream: upstream.to_owned(),
                reused: "true".to_owned(),
            }),
            fresh: self.upstream_requests.get_or_create_owned(&ReuseLabels {
                upstream: upstream.to_owned(),
                reused: "false".to_owned(),
            }),
        }
    }
}

fn buckets_of(bounds: impl Iterator<Item = f64>) -> Buckets {
    Buckets(bounds.collect())
}

/// Status classes, indexed by the first digit of the status.
const STATUS_CLASSES: [&str; 6] = ["0xx", "1xx", "2xx", "3xx", "4xx", "5xx"];
/// Methods with their own label value; others share "other" to bound cardinality.
const METHODS: [&str; 8] = [
    "GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "other",
];

/// A route's metric handles, resolved lazily once per label combination.
pub struct RouteMetrics {
    route: String,
    metrics: Arc<Metrics>,
    durations: [[OnceLock<AtomicHistogram>; 6]; 8],
    panics: Counter,
}

impl RouteMetrics {
    /// Handles for `route`.
    pub fn new(route: &str, metrics: Arc<Metrics>) -> Self {
        let panics = metrics.panics.get_or_create_owned(&RouteLabel {
            route: route.to_owned(),
        });
        Self {
            route: route.to_owned(),
            metrics,
            durations: Default::default(),
            panics,
        }
    }

    /// Records one finished request.
    pub fn observe(&self, method: &http::Method, status: u16, seconds: f64) {
        let m = method_index(method);
        let c = usize::from(status / 100).min(5);
        self.durations[m][c]
            .get_or_init(|| {
                self.metrics
                    .request_duration
                    .get_or_create_owned(&RequestLabels {
                        route: self.route.clone(),
                        method: METHODS[m].to_owned(),
                        status_class: STATUS_CLASSES[c].to_owned(),
                    })
            })
            .observe(seconds);
    }

    /// Counts a failed request. Errors are the exception, so a label lookup is fine here.
    pub fn error(&self, kind: ErrorKind) {
        self.metrics
            .errors
            .get_or_create(&ErrorLabels {
                route: self.route.clone(),
                kind: kind.reason().to_owned(),
            })
            .inc();
    }

    /// Counts a caught panic.
    pub fn panic(&self) {
        self.panics.inc();
    }

    /// Counts a request whose deadline fired inside `layer`.
    pub fn stall(&self, layer: &str) {
        self.metrics
            .stalls
            .get_or_create(&StallLabels {
                route: self.route.clone(),
                layer: layer.to_owned(),
            })
            .inc();
    }
}

fn method_index(method: &http::Method) -> usize {
    match *method {
        http::Method::GET => 0,
        http::Method::HEAD => 1,
        http::Method::POST => 2,
        http::Method::PUT => 3,
        http::Method::DELETE => 4,
        http::Method::PATCH => 5,
        http::Method::OPTIONS => 6,
        _ => 7,
    }
}
