//! When each request is due: the arrival times of the phases, as offsets from the start.
//!
//! Pure and deterministic (evenly spaced arrivals, no randomness), so the count a phase sends
//! is exactly its rate times its length and tests need no clock.

use std::time::Duration;

use crate::scenario::Phase;

/// One phase's span and its rate at both ends (equal for a constant rate).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Segment {
    /// When it starts, from the start of the load.
    pub start: Duration,
    /// How long it lasts.
    pub length: Duration,
    /// The rate at its start, per second.
    pub from: f64,
    /// The rate at its end, per second.
    pub to: f64,
}

impl Segment {
    /// The offset (within the segment) of arrival `k` (from 0), or `None` past its end.
    ///
    /// The cumulative count of a linear ramp is N(t) = from·t + c·t²/2 with
    /// c = (to − from)/T; arrival k is at N(t) = k, written in the form that stays exact
    /// when c is 0 (a constant rate) or `from` is 0.
    pub fn arrival(&self, k: u64) -> Option<Duration> {
        let length = self.length.as_secs_f64();
        if k == 0 {
            return (self.from > 0.0 || self.to > 0.0).then_some(Duration::ZERO);
        }
        let k = k as f64;
        let c = (self.to - self.from) / length;
        let disc = self.from * self.from + 2.0 * c * k;
        if disc < 0.0 {
            return None;
        }
        let denominator = self.from + disc.sqrt();
        if denominator <= 0.0 {
            return None;
        }
        let t = 2.0 * k / denominator;
        (t < length).then(|| Duration::from_secs_f64(t))
    }
}

/// The arrival times of every phase, in order.
#[derive(Debug, Clone)]
pub struct Schedule {
    segments: Vec<Segment>,
    current: usize,
    k: u64,
}

impl Schedule {
    /// The schedule of `phases`, run one after the other.
    pub fn new(phases: &[Phase]) -> Self {
        let mut start = Duration::ZERO;
        let segments = phases
            .iter()
            .map(|p| {
                let (from, to) = match (p.rate, p.ramp) {
                    (_, Some(r)) => (r.from, r.to),
                    (Some(r), None) => (r, r),
                    (None, None) => (0.0, 0.0),
                };
                let s = Segment {
                    start,
                    length: p.duration.get(),
                    from,
                    to,
                };
                start += s.length;
                s
            })
            .collect();
        Self {
            segments,
            current: 0,
            k: 0,
        }
    }

    /// The segments, for windows and the report.
    pub fn segments(&self) -> &[Segment] {
        &self.segments
    }

    /// How many requests the whole schedule sends.
    pub fn expected(&self) -> u64 {
        self.clone().count() as u64
    }
}

/// One arrival: when it is due, and the index of its phase.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Arrival {
    /// The offset from the start of the load.
    pub due: Duration,
    /// The phase it belongs to.
    pub phase: usize,
}

impl Iterator for Schedule {
    type Item = Arrival;

    fn next(&mut self) -> Option<Arrival> {
        loop {
            let segment = self.segments.get(self.current)?;
            if let Some(t) = segment.arrival(self.k) {
                self.k += 1;
                return Some(Arrival {
                    due: segment.start + t,
                    phase: self.current,
                });
            }
            self.current += 1;
            self.k = 0;
        }
    }
}

#[cfg(test)]
mod tests {
    use seawall_config::HumanDuration;

    use super::*;
    use crate::scenario::Ramp;

    fn phase(secs: u64, rate: Option<f64>, ramp: Option<(f64, f64)>) -> Phase {
        Phase {
            name: "p".into(),
            duration: HumanDuration::from_secs(secs),
            rate,
            ramp: ramp.map(|(from, to)| Ramp { from, to }),
            requests: None,
        }
    }

    #[test]
    fn a_constant_rate_sends_rate_times_length_evenly() {
        let times: Vec<Duration> = Schedule::new(&[phase(2, Some(100.0), None)])
            .map(|a| a.due)
            .collect();
        assert_eq!(times.len(), 200);
        assert_eq!(times[1], Duration::from_millis(10));
        assert!(times[199] < Duration::from_secs(2));
    }

    #[test]
    fn a_ramp_sends_the_area_under_its_rate_and_speeds_up() {
        let times: Vec<Duration> = Schedule::new(&[phase(10, None, Some((0.0, 100.0)))])
            .map(|a| a.due)
            .collect();
        // (0 + 100) / 2 * 10 = 500 arrivals, denser at the end.
        assert!((499..=501).contains(&times.len()), "{}", times.len());
        let first_gap = times[1] - times[0];
        let last_gap = times[times.len() - 1] - times[times.len() - 2];
        assert!(first_gap > last_gap * 5);
    }

    #[test]
    fn a_falling_ramp_and_phases_in_sequence() {
        let s = Schedule::new(&[
            phase(1, Some(10.0), None),
            phase(2, None, Some((100.0, 0.0))),
        ]);
        let times: Vec<Duration> = s.map(|a| a.due).collect();
        assert_eq!(
            times
                .iter()
                .filter(|t| **t < Duration::from_secs(1))
                .count(),
            10
        );
        let ramp = times.len() - 10;
        assert!((99..=101).contains(&ramp), "{ramp}");
        assert!(times.windows(2).all(|w| w[0] <= w[1]));
    }

    #[test]
    fn a_zero_rate_phase_sends_nothing_but_keeps_its_time() {
        let times: Vec<Duration> =
            Schedule::new(&[phase(1, Some(0.0), None), phase(1, Some(2.0), None)])
                .map(|a| a.due)
                .collect();
        assert_eq!(
            times,
            vec![Duration::from_secs(1), Duration::from_millis(1500)]
        );
    }
}
