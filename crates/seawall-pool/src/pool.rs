//! [`Pool`]: the handle the gateway keeps per upstream, and its lifetime.
//!
//! Ownership. `Pool` is a cheap clone of an `Arc<Handle>`; the handle owns the shared
//! state through another `Arc`, which the sweeper task, checked-out connections and
//! driver tasks also hold. So the *last `Pool` clone* going away is observable (the
//! handle's `Drop`) even while connections are still in use: it marks the pool closed,
//! closes the idle connections and stops the sweeper. In-use connections finish their
//! exchange and are then closed instead of returning to the stack; their drivers release
//! the remaining shared state. This is what a config reload relies on when it drops an
//! upstream.

use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use std::time::Duration;

use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::endpoint::{Endpoint, EndpointSnapshot};
use crate::metrics::{CloseReason, PoolMetrics};
use crate::options::{PoolOptions, Protocol};
use crate::settings::PoolSettings;
use crate::sweeper;

/// What every endpoint of one upstream shares.
pub(crate) struct Common {
    pub(crate) upstream: Box<str>,
    pub(crate) settings: PoolSettings,
    pub(crate) metrics: PoolMetrics,
    pub(crate) options: PoolOptions,
    /// The protocol in effect: `options.protocol`, except `Auto` without TLS is HTTP/1.1.
    pub(crate) protocol: Protocol,
    pub(crate) next_id: AtomicU64,
    closed: AtomicBool,
    /// Cancelled when a drain's grace period ends: every driver task watches it and drops
    /// its connection. A token rather than a `Notify` because drivers spawned after the
    /// cancellation must see it too.
    pub(crate) abort: CancellationToken,
    /// The origin of lease deadlines kept as integers (`lease_timer::LeaseClock`).
    pub(crate) epoch: tokio::time::Instant,
    /// When a failed TLS handshake was last logged as a warning, in seconds since `epoch`
    /// plus one (`0`: never).
    tls_warned: AtomicU64,
}

/// At most one warning per upstream in this long about failed TLS handshakes.
const TLS_WARN_EVERY: std::time::Duration = std::time::Duration::from_secs(60);

impl Common {
    pub(crate) fn is_closed(&self) -> bool {
        self.closed.load(Ordering::SeqCst)
    }

    /// Logs a failed TLS handshake as a warning, at most once per [`TLS_WARN_EVERY`] per
    /// upstream. Why: the detail (an unknown issuer, a CA certificate, a name mismatch)
    /// otherwise reaches only the access log of routes that have one, and a
    /// misconfigured upstream then shows as nothing but 502s.
    pub(crate) fn warn_tls_failure(&self, error: &crate::PoolError) {
        let now = self.epoch.elapsed().as_secs() + 1;
        let last = self.tls_warned.load(Ordering::Relaxed);
        if last != 0 && now < last + TLS_WARN_EVERY.as_secs() {
            return;
        }
        if self
            .tls_warned
            .compare_exchange(last, now, Ordering::AcqRel, Ordering::Relaxed)
            .is_ok()
        {
            tracing::warn!(upstream = %self.upstream, %error, "Upstream TLS handshake failed (repeats of this warning are suppressed for 60 s).");
        }
    }
}

pub(crate) struct Shared {
    pub(crate) common: Arc<Common>,
    pub(crate) endpoints: Box<[Arc<Endpoint>]>,
    addrs: Box<[SocketAddr]>,
    /// Wakes the sweeper to stop. `notify_one` stores the wake-up if the sweeper is busy
    /// sweeping, so the stop cannot be missed.
    pub(crate) stop: Notify,
}

impl Shared {
    fn shutdown(&self) {
        // Set the flag before draining: a concurrent release either pushed before the
        // drain (and is drained) or sees the flag under the same lock (and closes).
        self.common.closed.store(true, Ordering::SeqCst);
        for endpoint in self.endpoints.iter() {
            endpoint.close_idle(CloseReason::Shutdown);
            // HTTP/2 connections in use leave the list too, and close after their streams.
            endpoint.h2.close(endpoint, CloseReason::Shutdown, true);
        }
        self.stop.notify_one();
    }
}

struct Handle {
    shared: Arc<Shared>,
}

impl Drop for Handle {
    fn drop(&mut self) {
        tracing::debug!(upstream = %self.shared.common.upstream, "Upstream pool closed.");
        self.shared.shutdown();
    }
}

/// The connection pool of one upstream: one sub-pool per endpoint. Cheap to clone; the
/// last clone dropped closes the idle connections and stops the sweeper.
#[derive(Clone)]
pub struct Pool {
    handle: Arc<Handle>,
}

impl Pool {
    /// Creates a plain-HTTP pool without connection life limits and spawns its idle
    /// sweeper: [`Pool::with_options`] with `PoolOptions::default()`.
    ///
    /// # Panics
    ///
    /// Outside a tokio runtime (the sweeper is spawned with `tokio::spawn`).
    pub fn new(
        upstream: impl Into<String>,
        endpoints: Vec<SocketAddr>,
        settings: PoolSettings,
        metrics: PoolMetrics,
    ) -> Pool {
        Self::with_options(
            upstream,
            endpoints,
            settings,
            metrics,
            PoolOptions::default(),
        )
    }

    /// Creates the pool with TLS, life limits and phase metrics as given in `options`, and
    /// spawns its idle sweeper.
    ///
    /// # Panics
    ///
    /// Outside a tokio runtime (the sweeper is spawned with `tokio::spawn`).
    pub fn with_options(
        upstream: impl Into<String>,
        endpoints: Vec<SocketAddr>,
        settings: PoolSettings,
        metrics: PoolMetrics,
        options: PoolOptions,
    ) -> Pool {
        let protocol = match options.protocol {
            Protocol::Auto if options.tls.is_none() => Protocol::Http1,
            protocol => protocol,
        };
        let common = Arc::new(Common {
            protocol,
            upstream: upstream.into().into_boxed_str(),
            settings,
            metrics,
            options,
            next_id: AtomicU64::new(1),
            closed: AtomicBool::new(false),
            abort: CancellationToken::new(),
            epoch: tokio::time::Instant::now(),
            tls_warned: AtomicU64::new(0),
        });
        let subs = endpoints
            .iter()
            .map(|&addr| Arc::new(Endpoint::new(addr, Arc::clone(&common))));
        let subs = subs.collect();
        let shared = Arc::new(Shared {
            common,
            endpoints: subs,
            addrs: endpoints.into_boxed_slice(),
            stop: Notify::new(),
        });
        sweeper::spawn(Arc::clone(&shared));
        Pool {
            handle: Arc::new(Handle { shared }),
        }
    }

    pub(crate) fn shared(&self) -> &Shared {
        &self.handle.shared
    }

    /// The upstream's name, as given to [`Pool::new`].
    pub fn upstream(&self) -> &str {
        &self.shared().common.upstream
    }

    /// The endpoints, in the order given to [`Pool::new`]; `checkout` takes an index here.
    pub fn endpoints(&self) -> &[SocketAddr] {
        &self.shared().addrs
    }

    /// The settings the pool was built with.
    pub fn settings(&self) -> &PoolSettings {
        &self.shared().common.settings
    }

    /// The options the pool was built with.
    pub fn options(&self) -> &PoolOptions {
        &self.shared().common.options
    }

    /// Closes every idle connection now (reason `shutdown`). In-use connections and the
    /// pool itself keep working.
    pub fn close_idle(&self) {
        for endpoint in self.shared().endpoints.iter() {
            endpoint.close_idle(CloseReason::Shutdown);
        }
    }

    /// Drains the pool: closes idle connections now (reason `shutdown`), refuses new
    /// checkouts (on every clone: `NoEndpoint`), lets exchanges in flight finish (their
    /// connections then close instead of returning), and closes whatever is still open
    /// after `grace` (reason `shutdown`; the request on it fails).
    ///
    /// Used when DNS drops an address; also usable when a reload removes an upstream
    /// whose requests must not run forever.
    pub fn drain(self, grace: Duration) {
        let common = Arc::clone(&self.shared().common);
        self.shared().shutdown();
        drop(self);
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            // The task holds only `Common`, not the endpoints, so it keeps no connection
            // alive; it ends at the grace deadline whatever happens.
            runtime.spawn(async move {
                tokio::time::sleep(grace).await;
                common.abort.cancel();
            });
        } else {
            common.abort.cancel();
        }
    }

    /// True once the pool was drained (or its last handle dropped).
    pub fn is_closed(&self) -> bool {
        self.shared().common.is_closed()
    }

    /// Per-endpoint counts for the admin API, in endpoint order. Each endpoint is read
    /// separately, so the numbers are a consistent picture only of a quiet pool.
    pub fn snapshot(&self) -> Vec<EndpointSnapshot> {
        self.shared()
            .endpoints
            .iter()
            .map(|endpoint| endpoint.snapshot())
            .collect()
    }
}

impl fmt::Debug for Pool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pool")
            .field("upstream", &self.upstream())
            .field("endpoints", &self.endpoints())
            .finish_non_exhaustive()
    }
}
