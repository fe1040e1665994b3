//! Metric handles the pool updates, and the closed set of reasons a connection closes.
//!
//! The pool does not own a registry: the gateway creates the families, labels them for the
//! upstream, and passes the resulting handles in a [`PoolMetrics`]. prometheus-client
//! handles are cheap `Arc` clones, so a handle taken from a family with
//! `Family::get_or_create_owned` updates the registered series.
//!
//! Naming note for the caller: in prometheus-client 0.26 registering a `Counter` under a
//! name that already ends in `_total` panics (the suffix is appended by the encoder), so
//! register e.g. `seawall_upstream_connections_opened`, not `..._opened_total`.

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};

/// Why a connection was closed: the `reason` label of the closed-connections counter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum CloseReason {
    /// It sat idle for `idle_timeout`.
    IdleTimeout,
    /// It was released while `max_idle_per_endpoint` connections were already idle.
    IdleCap,
    /// The peer closed it (cleanly) while it was idle or between requests.
    PeerClosed,
    /// It failed: an I/O or protocol error, or it never became ready again.
    Error,
    /// Its response body was dropped before the end, so it cannot carry another request.
    BodyIncomplete,
    /// The request was abandoned (send future or checked-out connection dropped).
    Cancelled,
    /// The pool was closed (config reload removed the upstream) or `close_idle` was called.
    Shutdown,
    /// It reached `max_lifetime` (closed when released, or while idle).
    Lifetime,
    /// It carried `max_requests_per_connection` requests (closed when released).
    MaxRequests,
    /// It was opened for an HTTP/1.1 upgrade request (a WebSocket), which owned it to the
    /// end: it is never pooled. Counted when the tunnel (or the refused exchange) ends.
    Upgraded,
    /// An HTTP/2 keep-alive PING was not answered within `keep_alive_timeout`: the peer or
    /// the path to it is gone.
    PingTimeout,
    /// It was still checked out [`crate::LEASE_GRACE`] after its request's deadline: a
    /// response body nobody read (a client that stopped reading) or a request body the
    /// upstream stopped taking. Closing it frees the slot the stuck exchange held.
    LeaseExpired,
}

impl CloseReason {
    /// Every reason, in label order.
    pub const ALL: [CloseReason; 12] = [
        CloseReason::IdleTimeout,
        CloseReason::IdleCap,
        CloseReason::PeerClosed,
        CloseReason::Error,
        CloseReason::BodyIncomplete,
        CloseReason::Cancelled,
        CloseReason::Shutdown,
        CloseReason::Lifetime,
        CloseReason::MaxRequests,
        CloseReason::Upgraded,
        CloseReason::PingTimeout,
        CloseReason::LeaseExpired,
    ];

    /// The metric label value.
    pub const fn as_str(self) -> &'static str {
        match self {
            CloseReason::IdleTimeout => "idle_timeout",
            CloseReason::IdleCap => "idle_cap",
            CloseReason::PeerClosed => "peer_closed",
            CloseReason::Error => "error",
            CloseReason::BodyIncomplete => "body_incomplete",
            CloseReason::Cancelled => "cancelled",
            CloseReason::Shutdown => "shutdown",
            CloseReason::Lifetime => "lifetime",
            CloseReason::MaxRequests => "max_requests",
            CloseReason::Upgraded => "upgraded",
            CloseReason::PingTimeout => "ping_timeout",
            CloseReason::LeaseExpired => "lease_expired",
        }
    }

    /// Position in [`CloseReason::ALL`]; also the compact form kept in an atomic.
    pub(crate) const fn index(self) -> usize {
        self as usize
    }

    pub(crate) fn from_index(index: usize) -> Option<CloseReason> {
        CloseReason::ALL.get(index).copied()
    }
}

impl std::fmt::Display for CloseReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One counter per [`CloseReason`], so that each can be a differently labelled series of
/// the caller's family.
#[derive(Debug, Clone, Default)]
pub struct CloseCounters {
    counters: [Counter; CloseReason::ALL.len()],
}

impl CloseCounters {
    /// Builds the counters from the caller's family, e.g.
    /// `CloseCounters::from_fn(|r| family.get_or_create_owned(&labels(upstream, r.as_str())))`.
    pub fn from_fn(make: impl FnMut(CloseReason) -> Counter) -> Self {
        Self {
            counters: CloseReason::ALL.map(make),
        }
    }

    /// The counter for one reason.
    pub fn get(&self, reason: CloseReason) -> &Counter {
        &self.counters[reason.index()]
    }
}

/// The handles one pool updates; all already labelled for the upstream by the caller.
///
/// Gauges are pool-wide sums over the upstream's endpoints; per-endpoint numbers are in
/// `Pool::snapshot`.
///
/// Building it from the gateway's families (names without `_total`, see the module doc):
///
/// ```
/// use prometheus_client::metrics::{counter::Counter, family::Family, gauge::Gauge, histogram::Histogram};
/// use prometheus_client::registry::Registry;
/// use seawall_pool::{CloseCounters, PoolMetrics};
///
/// type Labels = Vec<(&'static str, String)>;
/// let mut registry = Registry::default();
/// let connect = Family::<Labels, Histogram>::new_with_constructor(|| {
///     Histogram::new(PoolMetrics::connect_buckets())
/// });
/// let closed = Family::<Labels, Counter>::default();
/// let idle = Family::<Labels, Gauge>::default();
/// registry.register("upstream_connect_seconds", "TCP connect time", connect.clone());
/// registry.register("upstream_connections_closed", "Closed connections", closed.clone());
/// registry.register("upstream_pool_idle", "Idle connections", idle.clone());
///
/// let upstream = || vec![("upstream", "api".to_owned())];
/// let metrics = PoolMetrics {
///     connect_duration: connect.get_or_create_owned(&upstream()),
///     closed: CloseCounters::from_fn(|reason| {
///         let mut labels = upstream();
///         labels.push(("reason", reason.as_str().to_owned()));
///         closed.get_or_create_owned(&labels)
///     }),
///     idle: idle.get_or_create_owned(&upstream()),
///     // The remaining handles come from their families the same way.
///     ..PoolMetrics::unregistered()
/// };
/// metrics.closed.get(seawall_pool::CloseReason::IdleCap).inc();
/// assert_eq!(closed.get_or_create(&vec![("upstream", "api".into()), ("reason", "idle_cap".into())]).get(), 1);
/// ```
#[derive(Debug, Clone)]
pub struct PoolMetrics {
    /// Successful TCP connects, in seconds (failures are counted by the caller from the
    /// error kind).
    pub connect_duration: Histogram,
    /// Connections established.
    pub opened: Counter,
    /// Connections closed, by reason. Each opened connection is counted exactly once here,
    /// by its driver task when it ends.
    pub closed: CloseCounters,
    /// Connections in the idle stacks.
    pub idle: Gauge,
    /// Connections checked out (from checkout until release or close).
    pub in_use: Gauge,
    /// Connects in progress (TCP connect, then the TLS handshake if any).
    pub connecting: Gauge,
    /// Requests sent on a connection taken from the idle stack.
    pub reused: Counter,
    /// Requests sent on a connection opened for them.
    pub fresh: Counter,
}

impl PoolMetrics {
    /// Handles that are not registered anywhere: for tests, or an upstream without metrics.
    pub fn unregistered() -> Self {
        Self {
            connect_duration: Histogram::new(Self::connect_buckets()),
            opened: Counter::default(),
            closed: CloseCounters::default(),
            idle: Gauge::default(),
            in_use: Gauge::default(),
            connecting: Gauge::default(),
            reused: Counter::default(),
            fresh: Counter::default(),
        }
    }

    /// Suggested buckets for `connect_duration`: 0.25 ms to about 4 s, doubling.
    pub fn connect_buckets() -> impl Iterator<Item = f64> {
        exponential_buckets(0.000_25, 2.0, 15)
    }
}

/// Per-phase timings and TLS counters, already labelled for the upstream by the caller.
///
/// Kept apart from [`PoolMetrics`] so that adding them did not change that struct's
/// fields; passed in through `PoolOptions::metrics`. Build it from families the same way
/// as [`PoolMetrics`]; [`PhaseMetrics::unregistered`] (also `Default`) is for tests.
#[derive(Debug, Clone)]
pub struct PhaseMetrics {
    /// Successful TLS handshakes, in seconds, from the end of the TCP connect to the
    /// handshake's end.
    pub tls_handshake_duration: Histogram,
    /// TLS handshakes that did not resume a session (including HelloRetryRequest ones).
    pub tls_handshakes_full: Counter,
    /// TLS handshakes that resumed a session from the pool's `SessionStore`.
    pub tls_handshakes_resumed: Counter,
    /// Successful checkouts, in seconds: from `checkout` being called to holding a
    /// connection, reused or new (waiting for a slot, TCP connect and TLS included).
    pub checkout_wait: Histogram,
    /// Requests that got a response head, in seconds: from `Pooled::send` being called to
    /// the response head parsed (writing the request, the upstream's think time, the first
    /// response bytes).
    pub response_head_duration: Histogram,
}

impl PhaseMetrics {
    /// Handles that are not registered anywhere.
    pub fn unregistered() -> Self {
        Self {
            tls_handshake_duration: Histogram::new(PoolMetrics::connect_buckets()),
            tls_handshakes_full: Counter::default(),
            tls_handshakes_resumed: Counter::default(),
            checkout_wait: Histogram::new(Self::checkout_wait_buckets()),
            response_head_duration: Histogram::new(Self::response_head_buckets()),
        }
    }

    /// Suggested buckets for `checkout_wait`: 10 µs (a reused connection) to about 5 s.
    pub fn checkout_wait_buckets() -> impl Iterator<Item = f64> {
        exponential_buckets(0.000_01, 2.0, 20)
    }

    /// Suggested buckets for `response_head_duration`: 0.5 ms to about 33 s.
    pub fn response_head_buckets() -> impl Iterator<Item = f64> {
        exponential_buckets(0.000_5, 2.0, 17)
    }

    /// Suggested buckets for `tls_handshake_duration`: those of `connect_duration`.
    pub fn tls_handshake_buckets() -> impl Iterator<Item = f64> {
        PoolMetrics::connect_buckets()
    }
}

impl Default for PhaseMetrics {
    fn default() -> Self {
        Self::unregistered()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn close_reason_index_round_trips_and_labels_are_unique() {
        let mut seen = std::collections::HashSet::new();
        for reason in CloseReason::ALL {
            assert_eq!(CloseReason::from_index(reason.index()), Some(reason));
            assert!(seen.insert(reason.as_str()));
        }
        assert_eq!(CloseReason::from_index(CloseReason::ALL.len()), None);
    }
}
