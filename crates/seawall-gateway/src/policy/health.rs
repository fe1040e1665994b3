//! Active health checks, wired: one task per upstream with `health_check` probes every
//! endpoint over the upstream's own pool, feeds the [`HealthChecker`] state machine, and
//! publishes which endpoints are unhealthy to the balancer (one atomic flag per endpoint,
//! read on every pick without a lock).
//!
//! A probe is `GET <path>` with `Host: <endpoint as configured>` and
//! `user-agent: seawall-health-check`, bounded by `timeout` from checkout (connect and TLS
//! included) to the end of the body, which is read so the connection can be reused. It
//! passes when the status is `expected_status`. All endpoints are probed at once, every
//! `interval` (the first round at start).
//!
//! The balancer skips unhealthy endpoints, but when every candidate is unhealthy it uses
//! them anyway (panic routing, like Envoy): a health check that fails everywhere must not
//! turn into a gateway-made outage.
//!
//! The task holds only a weak reference to its upstream, so it ends at its next tick once
//! a reload drops the upstream (an upstream whose config is unchanged is reused, and its
//! task and state go on).

use std::{
    sync::{
        Arc, Mutex, Weak,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use futures_util::future::join_all;
use http::{HeaderValue, Request, StatusCode, header, uri::Scheme};
use http_body_util::BodyExt;
use prometheus_client::metrics::gauge::Gauge;
use seawall_config::HealthCheckConfig;
use seawall_core::Body;
use seawall_resilience::health::{EndpointHealth, Health, HealthChecker};
use tokio::time::{Instant, MissedTickBehavior, interval, timeout_at};

use crate::{forwarding::into_http2, metrics::Metrics, runtime::Upstream};

/// An upstream's health-check state.
pub struct UpstreamHealth {
    checker: Mutex<HealthChecker>,
    /// Per endpoint: true while unhealthy. Shared with the picker.
    unhealthy: Arc<[AtomicBool]>,
    path: String,
    interval: Duration,
    timeout: Duration,
    expected: StatusCode,
    unhealthy_gauge: Gauge,
    metrics: Arc<Metrics>,
}

impl UpstreamHealth {
    /// Builds the state for `endpoints` endpoints from the (validated) config.
    pub fn build(
        upstream: &str,
        endpoints: usize,
        config: &HealthCheckConfig,
        metrics: &Arc<Metrics>,
    ) -> Result<Self, String> {
        let checker = HealthChecker::try_new(
            endpoints,
            config.healthy_threshold,
            config.unhealthy_threshold,
        )
        .map_err(|e| format!("upstream `{upstream}`: health_check: {e}"))?;
        let expected = StatusCode::from_u16(config.expected_status).map_err(|_| {
            format!(
                "upstream `{upstream}`: health_check: expected_status {} is invalid",
                config.expected_status
            )
        })?;
        let unhealthy_gauge = metrics.endpoints_unhealthy_gauge(upstream);
        unhealthy_gauge.set(0);
        Ok(Self {
            checker: Mutex::new(checker),
            unhealthy: (0..endpoints).map(|_| AtomicBool::new(false)).collect(),
            path: config.path.clone(),
            interval: config.interval.get(),
            timeout: config.timeout.get(),
            expected,
            unhealthy_gauge,
            metrics: metrics.clone(),
        })
    }

    /// The flags the picker reads.
    pub fn flags(&self) -> Arc<[AtomicBool]> {
        self.unhealthy.clone()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HealthChecker> {
        self.checker.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Every endpoint's health, for the admin API.
    pub fn snapshot(&self) -> Vec<EndpointHealth> {
        self.lock().snapshot().to_vec()
    }

    fn record(&self, upstream: &Upstream, endpoint: usize, passed: bool) {
        let (transition, unhealthy) = {
            let mut c = self.lock();
            let t = c.record(endpoint, passed, Instant::now());
            (t, c.unhealthy())
        };
        self.metrics
            .health_check(&upstream.name, if passed { "passed" } else { "failed" });
        let Some(t) = transition else { return };
        if let Some(flag) = self.unhealthy.get(endpoint) {
            flag.store(t.to == Health::Unhealthy, Ordering::Relaxed);
        }
        self.unhealthy_gauge
            .set(i64::try_from(unhealthy).unwrap_or(i64::MAX));
        let address = upstream
            .config
            .endpoints
            .get(endpoint)
            .map_or("?", |e| e.trim());
        self.metrics.events.publish("health", &upstream.name, || {
            let to = if t.to == Health::Unhealthy {
                "unhealthy"
            } else {
                "healthy"
            };
            format!("endpoint {address} {to}")
        });
        match t.to {
            Health::Unhealthy => {
                tracing::warn!(upstream = %upstream.name, endpoint = %address, path = %self.path, "Endpoint failed its health checks; marked unhealthy.");
            }
            Health::Healthy => {
                tracing::info!(upstream = %upstream.name, endpoint = %address, "Endpoint passed its health checks; healthy again.");
            }
        }
    }
}

/// Starts `upstream`'s health-check task, if it has `health_check` and a runtime is
/// running.
pub fn spawn(upstream: &Arc<Upstream>) {
    let Some(health) = &upstream.health else {
        return;
    };
    let Ok(rt) = tokio::runtime::Handle::try_current() else {
        return;
    };
    let period = health.interval;
    let weak: Weak<Upstream> = Arc::downgrade(upstream);
    rt.spawn(async move {
        let mut tick = interval(period);
        tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            // Gone on reload: the task ends with its upstream.
            let Some(up) = weak.upgrade() else { return };
            let Some(health) = up.health.as_ref() else {
                return;
            };
            let n = up.config.endpoints.len();
            let results = join_all((0..n).map(|i| probe(&up, health, i))).await;
            for (i, passed) in results.into_iter().enumerate() {
                health.record(&up, i, passed);
            }
        }
    });
}

/// One probe of endpoint `index`: true when it answered `expected_status` in time.
async fn probe(up: &Upstream, health: &UpstreamHealth, index: usize) -> bool {
    let deadline = Instant::now() + health.timeout;
    let run = async {
        let pooled = up.pool.checkout(index, deadline).await.ok()?;
        let host = up.config.endpoints.get(index)?.trim();
        let mut req = Request::get(health.path.as_str())
            .header(header::HOST, HeaderValue::from_str(host).ok()?)
            .header(
                header::USER_AGENT,
                HeaderValue::from_static("seawall-health-check"),
            )
            .body(Body::default())
            .ok()?;
        if pooled.is_http2() {
            // As `attempt` does: HTTP/2 wants scheme and authority in the URI, no `Host`.
            let scheme = if up.tls.is_some() {
                Scheme::HTTPS
            } else {
                Scheme::HTTP
            };
            into_http2(&mut req, scheme, pooled.endpoint(), false);
        }
        let resp = pooled.send(req).await.ok()?;
        let status = resp.status();
        // Read the body so the connection can serve the next request.
        resp.into_body().collect().await.ok()?;
        Some(status == health.expected)
    };
    matches!(timeout_at(deadline, run).await, Ok(Some(true)))
}
