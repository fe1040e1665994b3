//! The knobs of one upstream's pool, as resolved plain values.
//!
//! The gateway builds a [`PoolSettings`] from the upstream's `pool` and `timeouts` config;
//! this crate never sees the config format (it stays format-agnostic, see the workspace
//! dependency invariants).

use std::time::Duration;

use tokio::sync::Semaphore;

/// Limits and timeouts of one upstream's pool. Every limit applies per endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PoolSettings {
    /// Idle connections kept per endpoint; a connection released beyond this is closed.
    /// Zero disables reuse.
    pub max_idle_per_endpoint: usize,
    /// An idle connection unused for this long is closed by the sweeper and is never
    /// handed out.
    pub idle_timeout: Duration,
    /// Open connections per endpoint: idle + in use + connecting. Zero makes every
    /// checkout fail with `PoolExhausted`.
    pub max_connections_per_endpoint: usize,
    /// How long a checkout waits for a connection to be released or a slot to free.
    pub checkout_timeout: Duration,
    /// Bound on the TCP connect.
    pub connect_timeout: Duration,
    /// TCP keep-alive idle time and probe interval; `None` leaves keep-alive off.
    pub tcp_keepalive: Option<Duration>,
}

impl Default for PoolSettings {
    /// The same defaults as the config file's `pool` and `timeouts.connect` sections.
    fn default() -> Self {
        Self {
            max_idle_per_endpoint: 128,
            idle_timeout: Duration::from_secs(60),
            max_connections_per_endpoint: 1024,
            checkout_timeout: Duration::from_secs(1),
            connect_timeout: Duration::from_secs(1),
            tcp_keepalive: Some(Duration::from_secs(30)),
        }
    }
}

impl PoolSettings {
    /// How often the sweeper looks for expired idle connections: a quarter of the idle
    /// timeout, so a connection outlives its timeout by at most 25 %, clamped so a tiny
    /// timeout does not spin and a huge one still reacts within a second.
    pub(crate) fn sweep_interval(&self) -> Duration {
        (self.idle_timeout / 4).clamp(Duration::from_millis(10), Duration::from_secs(1))
    }

    /// The semaphore size; tokio caps permits at `Semaphore::MAX_PERMITS`.
    pub(crate) fn slots(&self) -> usize {
        self.max_connections_per_endpoint
            .min(Semaphore::MAX_PERMITS)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sweep_interval_is_a_quarter_of_the_idle_timeout_within_bounds() {
        let with = |idle_timeout| PoolSettings {
            idle_timeout,
            ..PoolSettings::default()
        };
        assert_eq!(
            with(Duration::from_millis(200)).sweep_interval(),
            Duration::from_millis(50)
        );
        assert_eq!(
            with(Duration::ZERO).sweep_interval(),
            Duration::from_millis(10)
        );
        assert_eq!(
            with(Duration::from_secs(60)).sweep_interval(),
            Duration::from_secs(1)
        );
    }
}
