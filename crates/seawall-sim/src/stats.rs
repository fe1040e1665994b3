//! Counters that let tests prove what happened at the upstream.
//!
//! `connections_accepted` shows reuse (100 requests over 1 connection), and
//! `requests_cancelled` shows that a request the client gave up on really stopped here,
//! not only at the gateway. Counting is done by guards so that every exit path, including
//! a future dropped mid-await, is counted once.
//!
//! Requests to `/__sim/stats` itself are not counted, so that reading the counters does not
//! change them. The snapshot reads each counter separately; while traffic flows it is not
//! one consistent instant, which is fine for the assertions it exists for.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use serde::{Deserialize, Serialize};

/// A copy of the sim's counters, as served by `/__sim/stats`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatsSnapshot {
    /// TCP connections accepted since start.
    pub connections_accepted: u64,
    /// TCP connections currently open.
    pub connections_open: u64,
    /// Requests received (all endpoints but `/__sim/stats`).
    pub requests: u64,
    /// Requests whose handler or response body was dropped before it finished, because
    /// the client (or gateway) went away.
    pub requests_cancelled: u64,
    /// Requests whose handler is running or whose response body is still being produced.
    pub requests_in_flight: u64,
}

/// The live counters, shared by the accept loop, every connection and the [`crate::Sim`]
/// handle.
#[derive(Debug, Default)]
pub(crate) struct Stats {
    connections_accepted: AtomicU64,
    connections_open: AtomicU64,
    requests: AtomicU64,
    requests_cancelled: AtomicU64,
    requests_in_flight: AtomicU64,
}

impl Stats {
    /// Counts a new connection; the guard counts it closed when dropped.
    pub(crate) fn connection_opened(self: &Arc<Self>) -> ConnectionGuard {
        // Relaxed is enough: each counter is independent, and tests read them after I/O
        // that already orders them.
        let id = self.connections_accepted.fetch_add(1, Ordering::Relaxed) + 1;
        self.connections_open.fetch_add(1, Ordering::Relaxed);
        ConnectionGuard {
            stats: Arc::clone(self),
            id,
        }
    }

    /// Counts a new request; see [`RequestGuard`] for how it ends.
    pub(crate) fn request_started(self: &Arc<Self>) -> RequestGuard {
        self.requests.fetch_add(1, Ordering::Relaxed);
        self.requests_in_flight.fetch_add(1, Ordering::Relaxed);
        RequestGuard {
            stats: Arc::clone(self),
            finished: false,
        }
    }

    pub(crate) fn snapshot(&self) -> StatsSnapshot {
        StatsSnapshot {
            connections_accepted: self.connections_accepted.load(Ordering::Relaxed),
            connections_open: self.connections_open.load(Ordering::Relaxed),
            requests: self.requests.load(Ordering::Relaxed),
            requests_cancelled: self.requests_cancelled.load(Ordering::Relaxed),
            requests_in_flight: self.requests_in_flight.load(Ordering::Relaxed),
        }
    }
}

/// Held by a connection task for its whole life.
#[derive(Debug)]
pub(crate) struct ConnectionGuard {
    stats: Arc<Stats>,
    id: u64,
}

impl ConnectionGuard {
    /// The connection's id, counting from 1 in accept order.
    pub(crate) fn id(&self) -> u64 {
        self.id
    }

    pub(crate) fn stats(&self) -> &Arc<Stats> {
        &self.stats
    }
}

impl Drop for ConnectionGuard {
    fn drop(&mut self) {
        self.stats.connections_open.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Held by a request from the moment it is routed until its response is fully produced.
///
/// [`RequestGuard::finish`] marks a normal end; dropping it unfinished means the future or
/// body holding it was dropped early, which counts as cancelled.
#[derive(Debug)]
pub(crate) struct RequestGuard {
    stats: Arc<Stats>,
    finished: bool,
}

impl RequestGuard {
    pub(crate) fn finish(mut self) {
        self.finished = true;
    }
}

impl Drop for RequestGuard {
    fn drop(&mut self) {
        self.stats
            .requests_in_flight
            .fetch_sub(1, Ordering::Relaxed);
        if !self.finished {
            self.stats
                .requests_cancelled
                .fetch_add(1, Ordering::Relaxed);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dropping_an_unfinished_request_counts_it_cancelled() {
        let stats = Arc::new(Stats::default());
        stats.request_started().finish();
        drop(stats.request_started());
        let snapshot = stats.snapshot();
        assert_eq!(snapshot.requests, 2);
        assert_eq!(snapshot.requests_cancelled, 1);
        assert_eq!(snapshot.requests_in_flight, 0);
    }

    #[test]
    fn connection_ids_count_from_one_and_open_drops_on_close() {
        let stats = Arc::new(Stats::default());
        let first = stats.connection_opened();
        let second = stats.connection_opened();
        assert_eq!((first.id(), second.id()), (1, 2));
        drop(first);
        let snapshot = stats.snapshot();
        assert_eq!(snapshot.connections_accepted, 2);
        assert_eq!(snapshot.connections_open, 1);
    }
}
