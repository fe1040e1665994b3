//! The circuit breaker of one upstream: `seawall_resilience::breaker::Breaker` behind a short
//! mutex, fed with the outcome of every try, its transitions logged and counted.
//!
//! Each try asks for an admission ([`UpstreamBreaker::admit`]); a refusal becomes
//! `circuit_open` (503, `retry-after`) without touching the upstream. The admission is a
//! [`BreakerPermit`], a guard: [`BreakerPermit::record`] hands the outcome back; dropping it
//! unrecorded (the try's future was dropped) records a `deadline_exceeded` failure when the
//! try's deadline has passed, and otherwise releases the admission (the client went away,
//! which says nothing about the upstream). So an admission is never lost and a half-open
//! probe slot never leaks.
//!
//! The mutex is held for one state-machine call (no await, no I/O inside); transitions are
//! logged and counted after it is released.

use std::{
    sync::{Arc, Mutex},
    time::Duration,
};

use prometheus_client::metrics::{counter::Counter, gauge::Gauge};
use seawall_config::{BreakerConfig, OutcomeMatch};
use seawall_core::{ErrorKind, GatewayError};
use seawall_resilience::breaker::{
    Admission, Breaker, BreakerSettings, BreakerSnapshot, BreakerState, ErrorClassifier, Outcome,
    StatusRange, Transition,
};
use tokio::time::Instant;

use crate::{
    body::BodyProgress,
    metrics::{Metrics, TransitionLabels, UpstreamLabel},
};

/// One upstream's breaker.
pub struct UpstreamBreaker {
    upstream: String,
    state: Mutex<Breaker>,
    classifier: ErrorClassifier,
    gauge: Gauge,
    rejected: Counter,
    metrics: std::sync::Arc<Metrics>,
}

impl UpstreamBreaker {
    /// Builds the breaker from its (validated) config.
    pub fn build(
        upstream: &str,
        config: &BreakerConfig,
        metrics: &std::sync::Arc<Metrics>,
    ) -> Result<Self, String> {
        let settings = BreakerSettings {
            window: config.window.get(),
            buckets: config.buckets,
            min_calls: config.min_calls,
            failure_ratio: config.failure_ratio,
            slow_call_duration: config.slow_call_duration.get(),
            slow_call_ratio: config.slow_call_ratio,
            open_duration: config.open_duration.get(),
            open_multiplier: config.open_multiplier,
            max_open_duration: config.max_open_duration.get(),
            half_open_probes: config.half_open_probes,
            ..BreakerSettings::default()
        };
        let breaker = Breaker::try_new(settings)
            .map_err(|e| format!("upstream `{upstream}`: breaker: {e}"))?;
        let classifier = classifier(&config.failure_on)
            .map_err(|e| format!("upstream `{upstream}`: breaker.failure_on: {e}"))?;
        let label = UpstreamLabel {
            upstream: upstream.to_owned(),
        };
        let gauge = metrics.breaker_state.get_or_create_owned(&label);
        gauge.set(0);
        Ok(Self {
            upstream: upstream.to_owned(),
            state: Mutex::new(breaker),
            classifier,
            gauge,
            rejected: metrics.breaker_rejected.get_or_create_owned(&label),
            metrics: metrics.clone(),
        })
    }

    /// Asks to make one try at `now`; `try_deadline` is when the try must end.
    pub fn admit(
        &self,
        now: Instant,
        try_deadline: Instant,
    ) -> Result<BreakerPermit<'_>, GatewayError> {
        let result = self.lock().try_acquire(now);
        match result {
            Ok(admission) => {
                if let Some(t) = admission.transition() {
                    self.transitioned(t);
                }
                Ok(BreakerPermit {
                    breaker: self,
                    admission: Some(admission),
                    started: now,
                    try_deadline,
                    client: None,
                })
            }
            Err(rejected) => {
                if let Some(t) = rejected.transition {
                    self.transitioned(t);
                }
                self.rejected.inc();
                let detail = format!(
                    "circuit breaker of upstream `{}` is {}",
                    self.upstream,
                    rejected.state.as_str()
                );
                Err(GatewayError::new(ErrorKind::CircuitOpen, detail)
                    .with_retry_after(rejected.retry_after))
            }
        }
    }

    /// The breaker's figures now.
    pub fn snapshot(&self) -> BreakerSnapshot {
        self.lock().snapshot(Instant::now())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Breaker> {
        // A panic while holding this lock cannot leave the state machine half-updated in a
        // way that matters more than stopping the breaker would: keep using it.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn record(
        &self,
        admission: Admission,
        status: u16,
        kind: Option<ErrorKind>,
        now: Instant,
        started: Instant,
    ) {
        let duration = now.saturating_duration_since(started);
        let outcome = if self.classifier.is_failure(status, kind) {
            Outcome::failure(duration)
        } else {
            Outcome::success(duration)
        };
        let t = self.lock().record(admission, outcome, now);
        if let Some(t) = t {
            self.transitioned(t);
        }
    }

    fn transitioned(&self, t: Transition) {
        self.gauge.set(state_value(t.to));
        self.metrics
            .breaker_transitions
            .get_or_create(&TransitionLabels {
                upstream: self.upstream.clone(),
                from: t.from.as_str().to_owned(),
                to: t.to.as_str().to_owned(),
                cause: t.cause.as_str().to_owned(),
            })
            .inc();
        let (upstream, from, to, cause) = (
            &self.upstream,
            t.from.as_str(),
            t.to.as_str(),
            t.cause.as_str(),
        );
        self.metrics
            .events
            .publish("breaker", upstream, || format!("{from} -> {to} ({cause})"));
        match t.to {
            BreakerState::Open => {
                tracing::warn!(upstream, from, to, cause, "Circuit breaker opened.");
            }
            _ => tracing::info!(upstream, from, to, cause, "Circuit breaker changed state."),
        }
    }
}

/// The gauge value of a state: 0 closed, 1 open, 2 half-open.
pub fn state_value(state: BreakerState) -> i64 {
    match state {
        BreakerState::Closed => 0,
        BreakerState::Open => 1,
        BreakerState::HalfOpen => 2,
    }
}

/// An admitted try. Record its outcome, or drop it (see the module docs).
pub struct BreakerPermit<'a> {
    breaker: &'a UpstreamBreaker,
    admission: Option<Admission>,
    started: Instant,
    try_deadline: Instant,
    /// The request's body, if it has one: a try dropped at its deadline while the
    /// gateway still waited for the client's bytes is released, not counted.
    client: Option<Arc<BodyProgress>>,
}

impl BreakerPermit<'_> {
    /// Follows the request's body (see the `client` field).
    pub fn watch_client(&mut self, progress: Option<&Arc<BodyProgress>>) {
        self.client = progress.cloned();
    }

    /// Records how the try ended: the response status, or the error kind it failed with.
    pub fn record(mut self, status: u16, kind: Option<ErrorKind>) {
        if let Some(admission) = self.admission.take() {
            self.breaker
                .record(admission, status, kind, Instant::now(), self.started);
        }
    }

    /// Hands the admission back without an outcome (the gateway refused the try itself).
    pub fn release(mut self) {
        if let Some(admission) = self.admission.take() {
            self.breaker.lock().release(admission);
        }
    }
}

impl Drop for BreakerPermit<'_> {
    fn drop(&mut self) {
        let Some(admission) = self.admission.take() else {
            return;
        };
        let now = Instant::now();
        let clients_fault = self.client.as_ref().is_some_and(|p| p.waiting_on_client());
        if now >= self.try_deadline && !clients_fault {
            let kind = ErrorKind::DeadlineExceeded;
            self.breaker.record(
                admission,
                kind.status().as_u16(),
                Some(kind),
                now,
                self.started,
            );
        } else {
            self.breaker.lock().release(admission);
        }
    }
}

/// A classifier from `failure_on` / `retry_on` entries (validated by `seawall check`).
pub fn classifier(entries: &[String]) -> Result<ErrorClassifier, String> {
    let mut statuses = Vec::new();
    let mut kinds = Vec::new();
    for entry in entries {
        match OutcomeMatch::parse(entry) {
            Some(OutcomeMatch::Statuses(first, last)) => {
                statuses.push(StatusRange::try_new(first, last).map_err(|e| e.to_string())?);
            }
            Some(OutcomeMatch::Kind(name)) => {
                let kind = ErrorKind::ALL
                    .into_iter()
                    .find(|k| k.reason() == name)
                    .ok_or_else(|| format!("unknown error kind `{name}`"))?;
                kinds.push(kind);
            }
            None => return Err(format!("`{entry}` is not a status, range or class")),
        }
    }
    Ok(ErrorClassifier::new(statuses, kinds))
}

/// Whole seconds for a `retry-after` header, rounded up (never 0 for a non-zero wait).
pub fn retry_after_secs(d: Duration) -> u64 {
    d.as_secs() + u64::from(d.subsec_nanos() > 0)
}
