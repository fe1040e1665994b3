//! Active health checking: which endpoints answer their health probe, with thresholds.
//!
//! Envoy's and HAProxy's model (`healthy_threshold` / `unhealthy_threshold`, HAProxy's
//! `rise` / `fall`): an endpoint turns unhealthy after `unhealthy_threshold` failed probes
//! in a row, and healthy again after `healthy_threshold` passed probes in a row; a single
//! probe the other way resets the streak. Endpoints start healthy, so an upstream serves
//! at once and a dead endpoint is taken out after `unhealthy_threshold` intervals (Envoy
//! can start them unhealthy instead; for a gateway that reloads often, serving at once
//! matters more).
//!
//! The prober (I/O, timing) is the gateway's; this is the bookkeeping. Whether unhealthy
//! endpoints are skipped is the balancer's business, and when every endpoint is unhealthy
//! the balancer uses them all (Envoy's panic routing): health checks must never turn a
//! partial outage into a total one.

use tokio::time::Instant;

/// An endpoint's health.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Health {
    Healthy,
    Unhealthy,
}

impl Health {
    /// `healthy` or `unhealthy`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Health::Healthy => "healthy",
            Health::Unhealthy => "unhealthy",
        }
    }
}

/// Why a [`HealthChecker`] was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum InvalidHealthCheck {
    #[error("healthy_threshold must be at least 1")]
    HealthyThreshold,
    #[error("unhealthy_threshold must be at least 1")]
    UnhealthyThreshold,
}

/// An endpoint changed health.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HealthTransition {
    pub endpoint: usize,
    pub to: Health,
    pub at: Instant,
}

/// One endpoint's state, for the admin API.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EndpointHealth {
    pub health: Health,
    /// Probes in a row that went against the current health (toward a change).
    pub streak: u32,
    /// When the endpoint last changed health (`None`: healthy since the start).
    pub since: Option<Instant>,
    pub probes: u64,
    pub failures: u64,
}

/// The health of an upstream's endpoints.
#[derive(Debug, Clone)]
pub struct HealthChecker {
    healthy_threshold: u32,
    unhealthy_threshold: u32,
    endpoints: Vec<EndpointHealth>,
}

impl HealthChecker {
    /// `endpoints` endpoints, all healthy.
    pub fn try_new(
        endpoints: usize,
        healthy_threshold: u32,
        unhealthy_threshold: u32,
    ) -> Result<Self, InvalidHealthCheck> {
        if healthy_threshold == 0 {
            return Err(InvalidHealthCheck::HealthyThreshold);
        }
        if unhealthy_threshold == 0 {
            return Err(InvalidHealthCheck::UnhealthyThreshold);
        }
        let start = EndpointHealth {
            health: Health::Healthy,
            streak: 0,
            since: None,
            probes: 0,
            failures: 0,
        };
        Ok(Self {
            healthy_threshold,
            unhealthy_threshold,
            endpoints: vec![start; endpoints],
        })
    }

    /// Records a probe of `endpoint` at `now`; returns the change of health it caused.
    /// An index out of range is ignored.
    pub fn record(
        &mut self,
        endpoint: usize,
        passed: bool,
        now: Instant,
    ) -> Option<HealthTransition> {
        let e = self.endpoints.get_mut(endpoint)?;
        e.probes += 1;
        if !passed {
            e.failures += 1;
        }
        let (against, threshold, to) = match e.health {
            Health::Healthy => (!passed, self.unhealthy_threshold, Health::Unhealthy),
            Health::Unhealthy => (passed, self.healthy_threshold, Health::Healthy),
        };
        if !against {
            e.streak = 0;
            return None;
        }
        e.streak += 1;
        if e.streak < threshold {
            return None;
        }
        e.health = to;
        e.streak = 0;
        e.since = Some(now);
        Some(HealthTransition {
            endpoint,
            to,
            at: now,
        })
    }

    /// True when `endpoint` is unhealthy.
    pub fn is_unhealthy(&self, endpoint: usize) -> bool {
        self.endpoints
            .get(endpoint)
            .is_some_and(|e| e.health == Health::Unhealthy)
    }

    /// Unhealthy endpoints now.
    pub fn unhealthy(&self) -> usize {
        self.endpoints
            .iter()
            .filter(|e| e.health == Health::Unhealthy)
            .count()
    }

    /// Every endpoint's state.
    pub fn snapshot(&self) -> &[EndpointHealth] {
        &self.endpoints
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zero_thresholds_are_refused() {
        assert_eq!(
            HealthChecker::try_new(2, 0, 1).unwrap_err(),
            InvalidHealthCheck::HealthyThreshold
        );
        assert_eq!(
            HealthChecker::try_new(2, 1, 0).unwrap_err(),
            InvalidHealthCheck::UnhealthyThreshold
        );
    }

    #[test]
    fn an_endpoint_falls_after_unhealthy_threshold_failures_in_a_row_and_rises_after_healthy_threshold_passes()
     {
        let now = Instant::now();
        let mut h = HealthChecker::try_new(2, 2, 3).unwrap();
        assert_eq!(h.record(0, false, now), None);
        assert_eq!(h.record(0, false, now), None);
        let t = h.record(0, false, now).expect("third failure in a row");
        assert_eq!((t.endpoint, t.to), (0, Health::Unhealthy));
        assert!(h.is_unhealthy(0) && !h.is_unhealthy(1));
        assert_eq!(h.unhealthy(), 1);
        assert_eq!(h.record(0, true, now), None, "one pass is not enough");
        let t = h.record(0, true, now).expect("second pass in a row");
        assert_eq!(t.to, Health::Healthy);
        assert_eq!(h.unhealthy(), 0);
        let s = h.snapshot()[0];
        assert_eq!((s.probes, s.failures, s.since), (5, 3, Some(now)));
    }

    #[test]
    fn a_probe_the_other_way_resets_the_streak() {
        let now = Instant::now();
        let mut h = HealthChecker::try_new(1, 2, 2).unwrap();
        assert_eq!(h.record(0, false, now), None);
        assert_eq!(h.record(0, true, now), None);
        assert_eq!(h.record(0, false, now), None, "the streak restarted");
        assert!(h.record(0, false, now).is_some());
        assert_eq!(h.record(0, true, now), None);
        assert_eq!(h.record(0, false, now), None);
        assert_eq!(h.record(0, true, now), None, "the streak restarted");
        assert!(h.record(0, true, now).is_some());
    }

    #[test]
    fn thresholds_of_one_flip_on_every_change_and_bad_indices_are_ignored() {
        let now = Instant::now();
        let mut h = HealthChecker::try_new(1, 1, 1).unwrap();
        assert!(h.record(0, false, now).is_some());
        assert!(h.record(0, true, now).is_some());
        assert_eq!(h.record(0, true, now), None);
        assert_eq!(h.record(7, false, now), None);
        assert!(!h.is_unhealthy(7));
    }
}
