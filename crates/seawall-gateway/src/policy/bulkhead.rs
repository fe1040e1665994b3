//! The bulkhead of one upstream: at most `max_concurrent` tries run at once, at most
//! `max_pending` wait (first come, first served: tokio's semaphore is fair), each for at
//! most `queue_timeout` and never past its deadline. Anything beyond is refused at once
//! with 503 `overloaded` and counted in `seawall_shed_total{upstream, reason}`.
//!
//! The counts the crate's `concurrency::Bulkhead` keeps are, here, the semaphore's permits
//! plus one atomic for the waiters: the semaphore does the waiting, so it is also the
//! authority on who runs; no lock is taken.
//!
//! With `adaptive`, the limit is `seawall_resilience`'s `GradientLimiter` (Gradient2): each
//! try that got a response head feeds its RTT (slot taken → head), each try that timed out
//! counts as a drop, and the semaphore's permits are resized to the new limit. Shrinking
//! forgets free permits at once and, for permits held by running tries, forgets them as
//! they come back (`debt`), so running tries are never cut off. This costs one short lock
//! per try, when its slot is released; the static bulkhead stays lock-free. The limit is
//! exported as `seawall_concurrency_limit{upstream}`.

use std::{
    sync::{
        Mutex, PoisonError,
        atomic::{AtomicU32, Ordering},
    },
    time::Duration,
};

use prometheus_client::metrics::{counter::Counter, gauge::Gauge};
use seawall_config::ConcurrencyConfig;
use seawall_core::{ErrorKind, GatewayError};
use seawall_resilience::concurrency::{GradientLimiter, GradientSettings};
use tokio::{
    sync::{Semaphore, SemaphorePermit},
    time::{Instant, timeout_at},
};

use crate::metrics::{Metrics, UpstreamLabel, UpstreamReasonLabels};

/// One upstream's bulkhead.
pub struct Bulkhead {
    upstream: String,
    slots: Semaphore,
    pending: AtomicU32,
    config: ConcurrencyConfig,
    queue_full: Counter,
    queue_timeout: Counter,
    /// Off unless `adaptive` is configured.
    adaptive: Option<Adaptive>,
}

struct Adaptive {
    state: Mutex<AdaptiveState>,
    /// Tries holding a slot (the limiter's `inflight`).
    inflight: AtomicU32,
    gauge: Gauge,
}

struct AdaptiveState {
    limiter: GradientLimiter,
    /// Permits in existence, free or held.
    granted: u32,
    /// Held permits to forget when they come back (the limit shrank below what runs).
    debt: u32,
}

impl AdaptiveState {
    /// The limit the semaphore enforces now.
    fn effective(&self) -> u32 {
        self.granted - self.debt
    }

    /// Resizes the semaphore's permits to `target`.
    fn resize(&mut self, target: u32, slots: &Semaphore) {
        let effective = self.effective();
        if target > effective {
            let up = target - effective;
            let cancelled = up.min(self.debt);
            self.debt -= cancelled;
            let add = up - cancelled;
            slots.add_permits(add as usize);
            self.granted += add;
        } else if target < effective {
            let down = effective - target;
            let forgotten = u32::try_from(slots.forget_permits(down as usize)).unwrap_or(down);
            self.granted -= forgotten;
            self.debt += down - forgotten;
        }
    }
}

/// What a try says about the upstream's latency.
#[derive(Debug, Clone, Copy)]
pub enum Sample {
    /// A response head came after this long.
    Rtt(Duration),
    /// The try timed out: its RTT means nothing, but it is a sign of overload.
    Dropped,
}

/// A slot in the bulkhead, freed when dropped.
pub struct Slot<'a> {
    permit: Option<SemaphorePermit<'a>>,
    bulkhead: &'a Bulkhead,
    taken: Instant,
    sample: Option<Sample>,
}

impl Slot<'_> {
    /// When the slot was taken (the start of the try's RTT).
    pub fn taken(&self) -> Instant {
        self.taken
    }

    /// Frees the slot, feeding `sample` to the adaptive limit (if any).
    pub fn finish(mut self, sample: Option<Sample>) {
        self.sample = sample;
    }
}

impl Drop for Slot<'_> {
    fn drop(&mut self) {
        let Some(a) = &self.bulkhead.adaptive else {
            return;
        };
        let inflight = a.inflight.fetch_sub(1, Ordering::AcqRel);
        let mut st = a.state.lock().unwrap_or_else(PoisonError::into_inner);
        match self.sample {
            Some(Sample::Rtt(rtt)) => st.limiter.on_sample(rtt, inflight),
            Some(Sample::Dropped) => st.limiter.on_drop(),
            None => {}
        }
        if let Some(permit) = self.permit.take() {
            if st.debt > 0 {
                permit.forget();
                st.debt -= 1;
                st.granted -= 1;
            } else {
                drop(permit);
            }
        }
        let target = st.limiter.limit();
        st.resize(target, &self.bulkhead.slots);
        a.gauge.set(i64::from(target));
    }
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
        let adaptive = config.adaptive.as_ref().and_then(|a| {
            let settings = GradientSettings {
                initial_limit: a.initial_limit,
                min_limit: a.min_limit,
                max_limit: a.max_limit,
                ..GradientSettings::default()
            };
            // Validation applies the same bounds as `try_new`, so this does not fail.
            let limiter = GradientLimiter::try_new(settings).ok()?;
            let gauge = metrics
                .concurrency_limit
                .get_or_create_owned(&UpstreamLabel {
                    upstream: upstream.to_owned(),
                });
            gauge.set(i64::from(limiter.limit()));
            Some(Adaptive {
                state: Mutex::new(AdaptiveState {
                    granted: limiter.limit(),
                    debt: 0,
                    limiter,
                }),
                inflight: AtomicU32::new(0),
                gauge,
            })
        });
        let permits = adaptive.as_ref().map_or(config.max_concurrent, |a| {
            a.state
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .granted
        });
        Self {
            upstream: upstream.to_owned(),
            adaptive,
            slots: Semaphore::new(permits.max(1) as usize),
            pending: AtomicU32::new(0),
            config: config.clone(),
            queue_full: shed("queue_full"),
            queue_timeout: shed("queue_timeout"),
        }
    }

    /// Waits for a slot; the slot frees it when dropped.
    pub async fn enter(&self, deadline: Instant) -> Result<Slot<'_>, GatewayError> {
        if let Ok(permit) = self.slots.try_acquire() {
            return Ok(self.slot(permit));
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
                    self.upstream,
                    self.limit()
                ),
            ));
        }
        let _waiting = Waiting(&self.pending);
        let until = (Instant::now() + self.config.queue_timeout.get()).min(deadline);
        match timeout_at(until, self.slots.acquire()).await {
            Ok(Ok(permit)) => Ok(self.slot(permit)),
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

    fn slot<'a>(&'a self, permit: SemaphorePermit<'a>) -> Slot<'a> {
        if let Some(a) = &self.adaptive {
            a.inflight.fetch_add(1, Ordering::AcqRel);
        }
        Slot {
            permit: Some(permit),
            bulkhead: self,
            taken: Instant::now(),
            sample: None,
        }
    }

    /// The limit now: `max_concurrent`, or the adaptive limit.
    pub fn limit(&self) -> u32 {
        match &self.adaptive {
            Some(a) => a
                .state
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .effective(),
            None => self.config.max_concurrent,
        }
    }

    /// The current figures.
    pub fn snapshot(&self) -> BulkheadSnapshot {
        let max_concurrent = self.limit();
        let active = match &self.adaptive {
            Some(a) => a.inflight.load(Ordering::Acquire),
            None => {
                let free = u32::try_from(self.slots.available_permits()).unwrap_or(u32::MAX);
                max_concurrent.saturating_sub(free)
            }
        };
        BulkheadSnapshot {
            active,
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

#[cfg(test)]
mod tests {
    use super::*;

    fn state(granted: u32) -> AdaptiveState {
        AdaptiveState {
            limiter: GradientLimiter::try_new(GradientSettings::default()).unwrap(),
            granted,
            debt: 0,
        }
    }

    #[test]
    fn shrinking_below_what_runs_forgets_free_permits_now_and_held_ones_later() {
        let slots = Semaphore::new(10);
        let mut st = state(10);
        let held = slots.try_acquire_many(8).unwrap();
        st.resize(4, &slots);
        assert_eq!(st.effective(), 4);
        assert_eq!(slots.available_permits(), 0, "the 2 free permits are gone");
        assert_eq!(st.debt, 4, "4 of the 8 running are owed back");
        // Growing again first cancels debt before adding permits.
        st.resize(6, &slots);
        assert_eq!((st.debt, st.granted, slots.available_permits()), (2, 8, 0));
        assert_eq!(st.effective(), 6);
        // (Returning held permits while in debt forgets them: that is `Slot`'s drop.)
        held.forget();
    }

    #[test]
    fn growing_adds_permits() {
        let slots = Semaphore::new(2);
        let mut st = state(2);
        st.resize(5, &slots);
        assert_eq!((st.granted, st.debt, slots.available_permits()), (5, 0, 5));
    }
}
