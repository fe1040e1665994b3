//! [`PoolOptions`]: what a pool can have beyond [`PoolSettings`](crate::PoolSettings) and
//! [`PoolMetrics`](crate::PoolMetrics), every part off or unregistered by default.
//!
//! They are a separate struct, passed to `Pool::with_options`, so that adding them left the
//! fields of `PoolSettings` and `PoolMetrics` (which the gateway builds with struct
//! literals) unchanged: `Pool::new` is `Pool::with_options` with the defaults.

use std::time::Duration;

use tokio::time::Instant;

use crate::metrics::{CloseReason, PhaseMetrics};
use crate::tls::UpstreamTls;

/// Optional behaviour of one upstream's pool.
#[derive(Debug, Clone, Default)]
pub struct PoolOptions {
    /// TLS to the upstream, after every TCP connect; `None` is plain HTTP.
    pub tls: Option<UpstreamTls>,
    /// A connection older than this (since its TCP connect finished) is closed when it is
    /// released (reason `lifetime`) and never handed out from the idle stack; the sweeper
    /// closes idle ones that pass it. A request in flight is never interrupted.
    pub max_lifetime: Option<Duration>,
    /// A connection that has carried this many requests is closed when released (reason
    /// `max_requests`). `Some(0)` behaves as `Some(1)`: every connection carries the
    /// request it was opened for.
    pub max_requests_per_connection: Option<u64>,
    /// Per-phase timings and TLS counters.
    pub metrics: PhaseMetrics,
    /// The HTTP version spoken to the upstream.
    pub protocol: Protocol,
    /// HTTP/2 connection settings (used when the protocol is, or negotiates, HTTP/2).
    pub http2: Http2Settings,
    /// The most dedicated (upgraded, e.g. WebSocket) connections open at once per
    /// endpoint; `None`: half of `max_connections_per_endpoint`, rounded up. A tunnel holds its slot
    /// for as long as it lives, so without a share of their own a client with many idle
    /// WebSockets could take every slot and starve ordinary requests.
    pub max_upgrades_per_endpoint: Option<usize>,
}

impl PoolOptions {
    /// The upgrade cap per endpoint, given the endpoint's connection slots.
    pub(crate) fn upgrade_slots(&self, slots: usize) -> usize {
        self.max_upgrades_per_endpoint
            .unwrap_or(slots.div_ceil(2))
            .min(slots)
    }
}

/// Which HTTP version the pool speaks to the upstream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Protocol {
    /// HTTP/1.1: one request at a time per connection, connections reused from the idle
    /// stack.
    #[default]
    Http1,
    /// HTTP/2: prior knowledge (h2c) on plain TCP, h2 over TLS. Connections are shared by
    /// concurrent requests, one stream each (see `multiplex`).
    Http2,
    /// Over TLS, what the upstream picks by ALPN (offer `h2` and `http/1.1`), per
    /// connection. On plain TCP there is nothing to negotiate with: HTTP/1.1.
    Auto,
}

/// HTTP/2 connection settings of one upstream's pool.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Http2Settings {
    /// A PING is sent after this long without a frame from the peer, idle connections
    /// included; `None` sends none.
    pub keep_alive_interval: Option<Duration>,
    /// A connection whose PING is not answered within this is closed (reason
    /// `ping_timeout`), failing the streams on it.
    pub keep_alive_timeout: Duration,
    /// The most streams the pool puts on one connection; the peer's
    /// `SETTINGS_MAX_CONCURRENT_STREAMS` when that is lower. A new connection is opened
    /// only when every open one is at its limit.
    pub max_concurrent_streams: u32,
}

impl Default for Http2Settings {
    fn default() -> Self {
        Self {
            keep_alive_interval: Some(Duration::from_secs(30)),
            keep_alive_timeout: Duration::from_secs(10),
            max_concurrent_streams: 100,
        }
    }
}

impl PoolOptions {
    /// Why a connection opened at `opened` that carried `requests` requests must not be
    /// reused at `now`, if it must not.
    pub(crate) fn retire_reason(
        &self,
        opened: Instant,
        requests: u64,
        now: Instant,
    ) -> Option<CloseReason> {
        if self
            .max_requests_per_connection
            .is_some_and(|max| requests >= max)
        {
            return Some(CloseReason::MaxRequests);
        }
        self.is_past_lifetime(opened, now)
            .then_some(CloseReason::Lifetime)
    }

    pub(crate) fn is_past_lifetime(&self, opened: Instant, now: Instant) -> bool {
        self.max_lifetime
            .is_some_and(|lifetime| opened + lifetime <= now)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_retire_connections_only_when_set_and_reached() {
        let now = Instant::now();
        let opened = now - Duration::from_secs(10);
        let none = PoolOptions::default();
        assert_eq!(none.retire_reason(opened, 1_000_000, now), None);
        let limited = PoolOptions {
            max_lifetime: Some(Duration::from_secs(10)),
            max_requests_per_connection: Some(3),
            ..PoolOptions::default()
        };
        assert_eq!(limited.retire_reason(now, 2, now), None);
        assert_eq!(
            limited.retire_reason(now, 3, now),
            Some(CloseReason::MaxRequests)
        );
        assert_eq!(
            limited.retire_reason(opened, 1, now),
            Some(CloseReason::Lifetime)
        );
        let zero = PoolOptions {
            max_requests_per_connection: Some(0),
            ..PoolOptions::default()
        };
        assert_eq!(
            zero.retire_reason(now, 1, now),
            Some(CloseReason::MaxRequests)
        );
    }
}
