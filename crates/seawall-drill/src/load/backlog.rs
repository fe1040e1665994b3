//! Due requests waiting for a free connection, and which kind of request each one is.
//!
//! Pure (no clock, no sockets): the scheduler passes the time in.

use std::{collections::VecDeque, time::Duration};

/// A due request waiting for a worker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Job {
    /// When it was due, from the start of the load.
    pub due: Duration,
    /// When the scheduler took it off the schedule.
    pub queued: Duration,
    /// Which prepared request to send.
    pub request: usize,
}

/// The bounded queue of due requests, oldest first.
#[derive(Debug)]
pub struct Backlog {
    jobs: VecDeque<Job>,
    max: usize,
}

impl Backlog {
    /// A backlog that holds at most `max` jobs.
    pub fn new(max: usize) -> Self {
        Self {
            jobs: VecDeque::new(),
            max,
        }
    }

    /// Adds `job`; when that makes it too long, the oldest job is returned, to be counted
    /// as dropped (it has waited longest, so it is the most late already).
    pub fn push(&mut self, job: Job) -> Option<Job> {
        self.jobs.push_back(job);
        if self.jobs.len() > self.max {
            self.jobs.pop_front()
        } else {
            None
        }
    }

    /// The oldest job.
    pub fn pop(&mut self) -> Option<Job> {
        self.jobs.pop_front()
    }

    /// Puts back a job no worker took, at the front.
    pub fn unpop(&mut self, job: Job) {
        self.jobs.push_front(job);
    }

    /// Whether no job waits.
    pub fn is_empty(&self) -> bool {
        self.jobs.is_empty()
    }

    /// Every waiting job, oldest first, leaving it empty.
    pub fn drain(&mut self) -> impl Iterator<Item = Job> + '_ {
        self.jobs.drain(..)
    }
}

/// Per phase, the cumulative weights of its requests and the request each range picks.
#[derive(Debug, Clone, Default)]
pub struct Mixes(pub Vec<Vec<(u64, usize)>>);

impl Mixes {
    /// A request of `phase`'s mix, by weight; `x` is uniform in `0..u64::MAX`.
    pub fn pick(&self, phase: usize, x: u64) -> usize {
        let mix = self.0.get(phase).map_or(&[][..], Vec::as_slice);
        let total = mix.last().map_or(1, |(w, _)| *w).max(1);
        let x = x % total;
        mix.iter().find(|(w, _)| x < *w).map_or(0, |(_, i)| *i)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(ms: u64) -> Job {
        Job {
            due: Duration::from_millis(ms),
            queued: Duration::from_millis(ms),
            request: 0,
        }
    }

    #[test]
    fn a_full_backlog_drops_its_oldest_job() {
        let mut b = Backlog::new(2);
        assert_eq!(b.push(job(1)), None);
        assert_eq!(b.push(job(2)), None);
        assert_eq!(b.push(job(3)), Some(job(1)));
        assert_eq!(b.pop(), Some(job(2)));
        b.unpop(job(2));
        assert_eq!(b.drain().count(), 2);
        assert!(b.is_empty());
    }

    #[test]
    fn requests_are_picked_by_weight_within_their_phase() {
        // Phase 0: request 0 weight 3, request 1 weight 1; phase 1: request 2 only.
        let m = Mixes(vec![vec![(3, 0), (4, 1)], vec![(1, 2)]]);
        let picks: Vec<usize> = (0..8).map(|x| m.pick(0, x)).collect();
        assert_eq!(picks, vec![0, 0, 0, 1, 0, 0, 0, 1]);
        assert_eq!(m.pick(1, 12345), 2);
        assert_eq!(
            m.pick(7, 1),
            0,
            "an unknown phase falls back to the first request"
        );
    }
}
