//! Outlier ejection: stop sending to an endpoint that keeps failing, for a while.
//!
//! Envoy's consecutive-failure detector (`outlier_detection.proto`, ALGORITHMS.md B1.5),
//! per endpoint of one upstream:
//! - `consecutive_failures` failures in a row (what counts as a failure is the caller's
//!   call, typically 502/503/504 and connection errors: Envoy's gateway failures) eject the
//!   endpoint; any success resets the count. Ejection happens inline, on the failure that
//!   reaches the count.
//! - The n-th ejection lasts `base_ejection_time × n`, capped at `max_ejection_time`. The
//!   count n drops by one for every `interval` the endpoint spends un-ejected (Envoy decays
//!   the multiplier on each interval tick while the host is healthy).
//! - An endpoint returns once its ejection time has passed; its failure count starts at 0.
//! - At most `max_ejection_percent` of the endpoints are ejected at once; an ejection that
//!   would exceed it is skipped (and reported), and the next failure tries again.
//!
//! # Rounding rule and the first-host pitfall
//! The cap is `⌊endpoints × max_ejection_percent / 100⌋`, **but at least 1** unless the
//! percentage is 0 (which disables ejection). Without the "at least 1", the default 10 %
//! would never eject anything on an upstream with fewer than 10 endpoints
//! (⌊2 × 10 / 100⌋ = 0), which is where ejection matters most; Envoy likewise ejects at
//! least one host whatever the percentage (ALGORITHMS.md B1.5). The consequence: an
//! upstream with a single endpoint can have it ejected. The balancer then finds no
//! endpoint outside the exclusion list, and the gateway picks again ignoring
//! ejections (Envoy's panic routing) rather than failing every request.
//!
//! # Time
//! Ejections are stored as "since, for how long" and compared with `now`, so
//! [`OutlierDetector::is_ejected`] is exact at any instant without a timer. Returns are
//! reported by [`OutlierDetector::refresh`], which the gateway calls on its own cadence
//! (e.g. every `interval`).
//!
//! Not implemented (Envoy's statistical detectors): success-rate and failure-percentage
//! ejection, which need `success_rate_minimum_hosts` (5) endpoints with enough volume.

mod settings;
#[cfg(test)]
mod tests;

use std::time::Duration;

use tokio::time::Instant;

pub use self::settings::{InvalidOutlierSettings, OutlierSettings};

/// Whether an endpoint receives traffic.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EndpointState {
    /// Receives traffic; failures are counted.
    Active,
    /// Excluded until its ejection time has passed.
    Ejected,
}

/// Something the gateway should log and count.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutlierEvent {
    /// `endpoint` was ejected for `duration`, its `times`-th ejection in a row.
    Ejected {
        /// The endpoint index.
        endpoint: usize,
        /// How long it stays out.
        duration: Duration,
        /// The ejection multiplier used.
        times: u32,
    },
    /// `endpoint` reached the failure count, but the ejection cap was full.
    EjectionSkipped {
        /// The endpoint index.
        endpoint: usize,
    },
    /// `endpoint`'s ejection time passed; it receives traffic again.
    Returned {
        /// The endpoint index.
        endpoint: usize,
    },
}

/// One endpoint as the admin API sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EndpointOutlier {
    /// Its state at the snapshot time.
    pub state: EndpointState,
    /// Failures in a row so far.
    pub consecutive_failures: u32,
    /// The ejection multiplier (ejections in a row, decayed while healthy).
    pub times_ejected: u32,
    /// While ejected, the time left.
    pub ejection_left: Option<Duration>,
}

/// The detector's figures.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutlierSnapshot {
    /// Per endpoint, by index.
    pub endpoints: Vec<EndpointOutlier>,
    /// Endpoints ejected right now.
    pub ejected: usize,
    /// The most that may be ejected at once.
    pub max_ejected: usize,
    /// Ejections since creation.
    pub ejections_total: u64,
    /// Ejections skipped because of the cap, since creation.
    pub skipped_total: u64,
}

#[derive(Debug, Clone, Copy)]
enum Phase {
    Active { healthy_since: Instant },
    Ejected { since: Instant, duration: Duration },
}

#[derive(Debug, Clone, Copy)]
struct Health {
    phase: Phase,
    consecutive_failures: u32,
    times_ejected: u32,
    /// Set when an expired ejection was settled by a `record_*` call, so that the next
    /// `refresh` still reports the return.
    return_unreported: bool,
}

/// Outlier state for the endpoints of one upstream, by index.
#[derive(Debug, Clone)]
pub struct OutlierDetector {
    settings: OutlierSettings,
    endpoints: Vec<Health>,
    ejections_total: u64,
    skipped_total: u64,
}

impl OutlierDetector {
    /// A detector for `len` endpoints, all active since `now`.
    pub fn try_new(
        settings: OutlierSettings,
        len: usize,
        now: Instant,
    ) -> Result<Self, InvalidOutlierSettings> {
        settings.validate()?;
        let fresh = Health {
            phase: Phase::Active { healthy_since: now },
            consecutive_failures: 0,
            times_ejected: 0,
            return_unreported: false,
        };
        Ok(Self {
            settings,
            endpoints: vec![fresh; len],
            ejections_total: 0,
            skipped_total: 0,
        })
    }

    /// The settings in force.
    pub fn settings(&self) -> &OutlierSettings {
        &self.settings
    }

    /// A call to `endpoint` succeeded: its failure count resets.
    pub fn record_success(&mut self, endpoint: usize, now: Instant) {
        if self.settle(endpoint, now) != Some(EndpointState::Active) {
            return;
        }
        if let Some(h) = self.endpoints.get_mut(endpoint) {
            h.consecutive_failures = 0;
        }
    }

    /// A call to `endpoint` failed; returns the ejection (or skipped ejection) it caused.
    /// Outcomes for an ejected endpoint (calls that were in flight) are ignored.
    pub fn record_failure(&mut self, endpoint: usize, now: Instant) -> Option<OutlierEvent> {
        if self.settle(endpoint, now) != Some(EndpointState::Active) {
            return None;
        }
        let threshold = self.settings.consecutive_failures;
        let h = self.endpoints.get_mut(endpoint)?;
        h.consecutive_failures = h.consecutive_failures.saturating_add(1);
        if h.consecutive_failures < threshold {
            return None;
        }
        if self.ejected_count(now) >= self.settings.max_ejected(self.endpoints.len()) {
            self.skipped_total += 1;
            return Some(OutlierEvent::EjectionSkipped { endpoint });
        }
        Some(self.eject(endpoint, now))
    }

    /// True if `endpoint` is ejected at `now` (false for unknown indices).
    pub fn is_ejected(&self, endpoint: usize, now: Instant) -> bool {
        self.endpoints
            .get(endpoint)
            .is_some_and(|h| ejection_left(h, now).is_some())
    }

    /// The endpoints ejected at `now`: the balancer's exclusion list.
    pub fn ejected(&self, now: Instant) -> Vec<usize> {
        (0..self.endpoints.len())
            .filter(|&i| self.is_ejected(i, now))
            .collect()
    }

    /// Returns every endpoint whose ejection has passed, and reports each return.
    pub fn refresh(&mut self, now: Instant) -> Vec<OutlierEvent> {
        let mut events = Vec::new();
        for endpoint in 0..self.endpoints.len() {
            self.settle(endpoint, now);
            let returned = self
                .endpoints
                .get_mut(endpoint)
                .is_some_and(|h| std::mem::take(&mut h.return_unreported));
            if returned {
                events.push(OutlierEvent::Returned { endpoint });
            }
        }
        events
    }

    /// The detector's figures at `now`.
    pub fn snapshot(&self, now: Instant) -> OutlierSnapshot {
        let endpoints: Vec<_> = self
            .endpoints
            .iter()
            .map(|h| {
                let left = ejection_left(h, now);
                EndpointOutlier {
                    state: if left.is_some() {
                        EndpointState::Ejected
                    } else {
                        EndpointState::Active
                    },
                    consecutive_failures: h.consecutive_failures,
                    times_ejected: h.times_ejected,
                    ejection_left: left,
                }
            })
            .collect();
        OutlierSnapshot {
            ejected: endpoints
                .iter()
                .filter(|e| e.ejection_left.is_some())
                .count(),
            max_ejected: self.settings.max_ejected(self.endpoints.len()),
            endpoints,
            ejections_total: self.ejections_total,
            skipped_total: self.skipped_total,
        }
    }

    fn ejected_count(&self, now: Instant) -> usize {
        self.endpoints
            .iter()
            .filter(|h| ejection_left(h, now).is_some())
            .count()
    }

    fn eject(&mut self, endpoint: usize, now: Instant) -> OutlierEvent {
        self.ejections_total += 1;
        let settings = self.settings;
        let h = &mut self.endpoints[endpoint];
        h.times_ejected = h.times_ejected.saturating_add(1);
        h.consecutive_failures = 0;
        let duration = settings.ejection_time(h.times_ejected);
        h.phase = Phase::Ejected {
            since: now,
            duration,
        };
        OutlierEvent::Ejected {
            endpoint,
            duration,
            times: h.times_ejected,
        }
    }

    /// Brings `endpoint`'s stored phase up to `now`: an expired ejection becomes Active,
    /// and the ejection count decays by one per full `interval` spent Active. Returns the
    /// state, or `None` for an unknown index.
    fn settle(&mut self, endpoint: usize, now: Instant) -> Option<EndpointState> {
        let interval = self.settings.interval;
        let h = self.endpoints.get_mut(endpoint)?;
        if let Phase::Ejected { since, duration } = h.phase {
            if now.saturating_duration_since(since) < duration {
                return Some(EndpointState::Ejected);
            }
            let returned_at = since.checked_add(duration).unwrap_or(now);
            h.phase = Phase::Active {
                healthy_since: returned_at,
            };
            h.consecutive_failures = 0;
            h.return_unreported = true;
        }
        if let Phase::Active { healthy_since } = h.phase {
            let healthy = now.saturating_duration_since(healthy_since);
            let steps = healthy.as_nanos() / interval.as_nanos().max(1);
            let steps = u32::try_from(steps).unwrap_or(u32::MAX);
            let used = steps.min(h.times_ejected);
            if used > 0 {
                h.times_ejected -= used;
                // Keep the remainder of a partial interval: advance by whole intervals only.
                let advanced = interval
                    .checked_mul(used)
                    .and_then(|d| healthy_since.checked_add(d));
                h.phase = Phase::Active {
                    healthy_since: advanced.unwrap_or(now),
                };
            }
        }
        Some(EndpointState::Active)
    }
}

/// The ejection time left at `now`, or `None` if the endpoint is not ejected.
fn ejection_left(h: &Health, now: Instant) -> Option<Duration> {
    match h.phase {
        Phase::Ejected { since, duration } => {
            let elapsed = now.saturating_duration_since(since);
            (elapsed < duration).then(|| duration - elapsed)
        }
        Phase::Active { .. } => None,
    }
}
