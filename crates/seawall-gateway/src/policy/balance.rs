//! Endpoint choice for one upstream: the balancer (`p2c_ewma` or `round_robin`) and, when
//! configured, outlier ejection feeding the balancer's exclusion list.
//!
//! Both state machines live behind one short mutex (one lock per pick, one per end of a
//! try; never held across an await). A pick avoids, in this order of preference: ejected
//! endpoints and the endpoint the previous try failed on; then only the latter; then
//! nothing (Envoy's panic routing: a recently failed endpoint is better than none).
//!
//! A pick returns an [`EndpointLease`], a guard that tells the balancer the try ended (so
//! the pending count never leaks, even when the try's future is dropped) and, when the
//! outcome is known, feeds the RTT to the balancer and the outcome to outlier detection.

use std::{
    sync::{Arc, Mutex},
    time::Duration,
};

use prometheus_client::metrics::gauge::Gauge;
use seawall_config::{BalancerKind, OutlierConfig};
use seawall_core::ErrorKind;
use seawall_resilience::{
    balance::{Balancer, EndpointLoad, PeakEwma, PeakEwmaSettings, RoundRobin},
    classify::{ErrorClassifier, StatusRange},
    outlier::{OutlierDetector, OutlierEvent, OutlierSettings, OutlierSnapshot},
};
use tokio::time::Instant;

use crate::{
    body::BodyProgress,
    metrics::{Metrics, UpstreamLabel, UpstreamReasonLabels},
};

struct State {
    balancer: Balancer,
    outlier: Option<OutlierDetector>,
    rng: fastrand::Rng,
}

/// The endpoint picker of one upstream.
pub struct Picker {
    upstream: String,
    /// The endpoints as configured (`ip:port` or `host:port`), for logs.
    endpoints: Vec<String>,
    state: Mutex<State>,
    /// What outlier detection counts as a failure: 502-504 and the connection failures
    /// (Envoy's "gateway failures").
    gateway_failures: ErrorClassifier,
    ejected_gauge: Gauge,
    metrics: Arc<Metrics>,
    /// One endpoint and no outlier detection: there is nothing to choose or track, so the
    /// request path skips the lock entirely.
    trivial: bool,
    /// Per endpoint, true while it fails its active health checks (`policy::health`).
    unhealthy: Option<Arc<[std::sync::atomic::AtomicBool]>>,
}

impl Picker {
    /// Builds the picker for `endpoints` (addresses or names: only shown in logs).
    pub fn build(
        upstream: &str,
        endpoints: &[impl ToString],
        kind: BalancerKind,
        outlier: Option<&OutlierConfig>,
        metrics: &Arc<Metrics>,
    ) -> Result<Self, String> {
        let now = Instant::now();
        let n = endpoints.len();
        let balancer = match kind {
            BalancerKind::P2cEwma => Balancer::PeakEwma(
                PeakEwma::try_new(PeakEwmaSettings::default(), n, now)
                    .map_err(|e| format!("upstream `{upstream}`: balancer: {e}"))?,
            ),
            BalancerKind::RoundRobin => Balancer::RoundRobin(RoundRobin::new(n)),
        };
        let outlier = outlier
            .map(|o| {
                let settings = OutlierSettings {
                    consecutive_failures: o.consecutive_failures,
                    base_ejection_time: o.base_ejection_time.get(),
                    max_ejection_time: o.max_ejection_time.get(),
                    max_ejection_percent: o.max_ejection_percent,
                    interval: o.interval.get(),
                };
                OutlierDetector::try_new(settings, n, now)
                    .map_err(|e| format!("upstream `{upstream}`: outlier: {e}"))
            })
            .transpose()?;
        let gateway_failures = ErrorClassifier::new(
            StatusRange::try_new(502, 504).ok(),
            ErrorClassifier::UPSTREAM_KINDS,
        );
        let ejected_gauge = metrics
            .endpoints_ejected
            .get_or_create_owned(&UpstreamLabel {
                upstream: upstream.to_owned(),
            });
        ejected_gauge.set(0);
        let trivial = n == 1 && outlier.is_none();
        Ok(Self {
            trivial,
            unhealthy: None,
            upstream: upstream.to_owned(),
            endpoints: endpoints.iter().map(ToString::to_string).collect(),
            state: Mutex::new(State {
                balancer,
                outlier,
                rng: fastrand::Rng::new(),
            }),
            gateway_failures,
            ejected_gauge,
            metrics: metrics.clone(),
        })
    }

    /// Skips the endpoints flagged unhealthy by active health checks (unless all are).
    pub fn with_health(mut self, unhealthy: Option<Arc<[std::sync::atomic::AtomicBool]>>) -> Self {
        self.unhealthy = unhealthy;
        self
    }

    /// Picks the endpoint for a try, avoiding `avoid` (the endpoint the previous try failed
    /// on) and ejected endpoints where possible; `None` only with no endpoints.
    pub fn pick(&self, avoid: Option<usize>) -> Option<EndpointLease<'_>> {
        let now = Instant::now();
        if self.trivial {
            return Some(EndpointLease {
                picker: self,
                index: 0,
                started: now,
                done: true,
                client: None,
            });
        }
        let (index, events, ejected) = {
            let mut guard = self.lock();
            let s = &mut *guard;
            let (events, mut excluded) = match &mut s.outlier {
                Some(o) => (o.refresh(now), o.ejected(now)),
                None => (Vec::new(), Vec::new()),
            };
            let ejected = excluded.len();
            excluded.extend(avoid);
            // Unhealthy endpoints are skipped like ejected ones; when nothing else is
            // left, the fallbacks below pick among them (panic routing).
            if let Some(flags) = &self.unhealthy {
                excluded.extend(
                    flags
                        .iter()
                        .enumerate()
                        .filter(|(_, f)| f.load(std::sync::atomic::Ordering::Relaxed))
                        .map(|(i, _)| i),
                );
            }
            let index = s
                .balancer
                .pick(&mut s.rng, now, &excluded)
                .or_else(|| s.balancer.pick(&mut s.rng, now, avoid.as_slice()))
                .or_else(|| s.balancer.pick(&mut s.rng, now, &[]));
            if let Some(i) = index {
                s.balancer.start(i, now);
            }
            (index, events, ejected)
        };
        self.report(&events, ejected);
        index.map(|index| EndpointLease {
            picker: self,
            index,
            started: now,
            done: false,
            client: None,
        })
    }

    /// Per endpoint: balancer load (p2c_ewma only) and outlier state, for the admin API.
    pub fn snapshot(&self) -> (Option<Vec<EndpointLoad>>, Option<OutlierSnapshot>) {
        let now = Instant::now();
        let s = self.lock();
        let load = match &s.balancer {
            Balancer::PeakEwma(b) => Some(b.snapshot(now)),
            Balancer::RoundRobin(_) => None,
        };
        (load, s.outlier.as_ref().map(|o| o.snapshot(now)))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn abandon(&self, index: usize) {
        self.lock().balancer.abandon(index);
    }

    fn end(&self, index: usize, rtt: Duration, outcome: Option<(u16, Option<ErrorKind>)>) {
        let now = Instant::now();
        let (event, ejected) = {
            let mut s = self.lock();
            s.balancer.end(index, rtt, now);
            let failure =
                outcome.map(|(status, kind)| self.gateway_failures.is_failure(status, kind));
            match (&mut s.outlier, failure) {
                (Some(o), Some(true)) => {
                    let event = o.record_failure(index, now);
                    (event, o.ejected(now).len())
                }
                (Some(o), Some(false)) => {
                    o.record_success(index, now);
                    (None, o.ejected(now).len())
                }
                (Some(o), None) => (None, o.ejected(now).len()),
                (None, _) => return,
            }
        };
        self.report(event.as_slice(), ejected);
    }

    fn report(&self, events: &[OutlierEvent], ejected: usize) {
        self.ejected_gauge
            .set(i64::try_from(ejected).unwrap_or(i64::MAX));
        for event in events {
            let (reason, endpoint) = match *event {
                OutlierEvent::Ejected {
                    endpoint,
                    duration,
                    times,
                } => {
                    let address = self.address(endpoint);
                    tracing::warn!(upstream = %self.upstream, endpoint = %address, ?duration, times, "Outlier endpoint ejected.");
                    ("ejected", endpoint)
                }
                OutlierEvent::EjectionSkipped { endpoint } => {
                    let address = self.address(endpoint);
                    tracing::warn!(upstream = %self.upstream, endpoint = %address, "Outlier ejection skipped: max_ejection_percent reached.");
                    ("ejection_skipped", endpoint)
                }
                OutlierEvent::Returned { endpoint } => {
                    let address = self.address(endpoint);
                    tracing::info!(upstream = %self.upstream, endpoint = %address, "Ejected endpoint returned to service.");
                    ("returned", endpoint)
                }
            };
            if reason != "ejection_skipped" {
                self.metrics.events.publish(reason, &self.upstream, || {
                    format!("endpoint {}", self.address(endpoint))
                });
            }
            self.metrics
                .outlier_events
                .get_or_create(&UpstreamReasonLabels {
                    upstream: self.upstream.clone(),
                    reason: reason.to_owned(),
                })
                .inc();
        }
    }

    fn address(&self, index: usize) -> String {
        self.endpoints
            .get(index)
            .map_or_else(|| format!("#{index}"), Clone::clone)
    }
}

/// The least RTT sample a failed try feeds the balancer (peak-EWMA takes a slower sample
/// at once, then forgets it with the 10 s decay).
pub const FAILURE_PENALTY: Duration = Duration::from_secs(1);

/// A picked endpoint with a try in flight. Finish it with the outcome, or drop it.
pub struct EndpointLease<'a> {
    picker: &'a Picker,
    index: usize,
    started: Instant,
    done: bool,
    /// The request's body, if it has one: a try dropped while the gateway waited for
    /// the client's bytes gives no latency sample (see `crate::body::BodyProgress`).
    client: Option<Arc<BodyProgress>>,
}

impl EndpointLease<'_> {
    /// Follows the request's body (see the `client` field).
    pub fn watch_client(&mut self, progress: Option<&Arc<BodyProgress>>) {
        self.client = progress.cloned();
    }

    /// The try ended on the client's side: it leaves the pending count, without a
    /// latency sample or an outcome.
    pub fn abandon(mut self) {
        if !self.done {
            self.done = true;
            self.picker.abandon(self.index);
        }
    }

    /// The endpoint's index in the upstream (and pool).
    pub fn index(&self) -> usize {
        self.index
    }

    /// The try ended with this status / error kind, at the response head.
    /// A failed try's RTT sample is at least [`FAILURE_PENALTY`]: a refused connection
    /// answers in microseconds and would otherwise make a dead endpoint the cheapest.
    pub fn finish(mut self, status: u16, kind: Option<ErrorKind>) {
        if self.done {
            // A trivial picker's lease: nothing to record.
            return;
        }
        self.done = true;
        let mut rtt = self.started.elapsed();
        if self.picker.gateway_failures.is_failure(status, kind) {
            rtt = rtt.max(FAILURE_PENALTY);
        }
        self.picker.end(self.index, rtt, Some((status, kind)));
    }
}

impl Drop for EndpointLease<'_> {
    fn drop(&mut self) {
        if self.done {
            return;
        }
        if self.client.as_ref().is_some_and(|p| p.waiting_on_client()) {
            self.picker.abandon(self.index);
        } else {
            // Dropped mid-try: end it for the pending count; no outcome for ejection.
            self.picker.end(self.index, self.started.elapsed(), None);
        }
    }
}
