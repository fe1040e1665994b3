//! The bulkhead of one upstream: at most `max_concurrent` tries run at once, at most
//! `max_pending` wait (first come, first served: tokio's semaphore is fair), each for at
//! most `queue_timeout` and never past its deadline. Anything beyond is refused at once
//! with 503 `overloaded` and counted in `seawall_shed_total{upstream, reason}`.
//!
//! The counts the crate's `concurrency::Bulkhead` keeps are, here, the semaphore's permits
//! plus one atomic for the waiters: the semaphore does the waiting, so it is also the
//! authority on who runs; no lock is taken.

use std::sync::atomic::{AtomicU32, Ordering};

use prometheus_client::metrics::counter::Counter;
use seawall_config::ConcurrencyConfig;
use seawall_core::{ErrorKind, GatewayError};
use tokio::{
    sync::{Semaphore, SemaphorePermit},
    time::{Instant, timeout_at},
};

use crate::metrics::{Metrics, UpstreamReasonLabels};

/// One upstream's bulkhead.
pub struct Bulkhead {
    upstream: String,
    slots: Semaphore,
    pending: AtomicU32,
    config: ConcurrencyConfig,
    queue_full: Counter,
    queue_timeout: Counter,
}

/// Figures for the admin API.
pub struct BulkheadSnapshot {
    pub active: u32,
    pub pending: u32,
    pub max_concurrent: u32,
    pub max_pending: u32,
}

impl Bulkhead {
    /// Builds the bulkhead from its (validated) config.
    pub fn build(upstream: &str, config: &ConcurrencyConfig, metrics: &Metrics) -> Self {
        let shed = |reason: &str| {
            metrics.shed.get_or_create_owned(&UpstreamReasonLabels {
                upstream: upstream.to_owned(),
                reason: reason.to_owned(),
            })
        };
        Self {
            upstream: upstream.to_owned(),
            slots: Semaphore::new(config.max_concurrent.max(1) as usize),
            pending: AtomicU32::new(0),
            config: config.clone(),
            queue_full: shed("queue_full"),
            queue_timeout: shed("queue_timeout"),
        }
    }

    /// Waits for a slot; the permit frees it when dropped.
    pub async fn enter(&self, deadline: Instant) -> Result<SemaphorePermit<'_>, GatewayError> {
        if let Ok(permit) = self.slots.try_acquire() {
            return Ok(permit);
        }
        let max_pending = self.config.max_pending;
        let queued = self
            .pending
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |p| {
                (p < max_pending).then_some(p + 1)
            })
            .is_ok();
        if !queued {
            self.queue_full.inc();
            return Err(GatewayError::new(
                ErrorKind::Overloaded,
                format!(
                    "upstream `{}`: {} tries running and {max_pending} waiting (concurrency limit)",
                    self.upstream, self.config.max_concurrent
                ),
            ));
        }
        let _waiting = Waiting(&self.pending);
        let until = (Instant::now() + self.config.queue_timeout.get()).min(deadline);
        match timeout_at(until, self.slots.acquire()).await {
            Ok(Ok(permit)) => Ok(permit),
            // The semaphore is never closed; treat it like a timeout anyway.
            Ok(Err(_)) | Err(_) => {
                self.queue_timeout.inc();
                Err(GatewayError::new(
                    ErrorKind::Overloaded,
                    format!(
                        "upstream `{}`: no concurrency slot within queue_timeout {}",
                        self.upstream, self.config.queue_timeout
                    ),
                ))
            }
        }
    }

    /// The current figures.
    pub fn snapshot(&self) -> BulkheadSnapshot {
        let max_concurrent = self.config.max_concurrent;
        let free = u32::try_from(self.slots.available_permits()).unwrap_or(u32::MAX);
        BulkheadSnapshot {
            active: max_concurrent.saturating_sub(free),
            pending: self.pending.load(Ordering::Acquire),
            max_concurrent,
            max_pending: self.config.max_pending,
        }
    }
}

/// Counts one waiter while it waits, however the wait ends.
struct Waiting<'a>(&'a AtomicU32);

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}
