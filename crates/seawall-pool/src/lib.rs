//! Seawall's upstream connection pool, on `hyper::client::conn::http1` and `http2`.
//!
//! One [`Pool`] per upstream; inside it one sub-pool per endpoint (`SocketAddr`), each with
//! a LIFO idle stack capped at `max_idle_per_endpoint`, at most
//! `max_connections_per_endpoint` open connections, bounded waits, and an idle sweeper.
//! The caller picks the endpoint (round-robin lives in the gateway) and gets a [`Pooled`]
//! connection; [`Pooled::send`] yields a response whose [`PooledBody`] returns the
//! connection at end-of-stream. Failures arrive classified as `seawall_core::ErrorKind`.
//!
//! An upstream may speak HTTP/2 ([`Protocol`], [`Http2Settings`]): its connections are
//! then shared, a checkout taking a stream on the first one with room and opening a new
//! one only when all are at their stream limit (the `multiplex` module).
//!
//! [`PoolOptions`] (through [`Pool::with_options`]) adds upstream TLS ([`UpstreamTls`]),
//! connection life limits and per-phase metrics ([`PhaseMetrics`]). [`DnsPool`] serves
//! upstreams given as `host:port` names: one single-address [`Pool`] per resolved address,
//! re-resolved through a [`Resolve`] implementation, removed addresses drained.
//! [`Pool::connect_dedicated`] opens a [`Dedicated`] connection for one HTTP/1.1 upgrade
//! (a WebSocket): the same connect path, slot and metrics, never pooled.
//!
//! Invariants (see docs/pool.md for the reasoning):
//! - A connection is reused only after its previous response was read to the end and hyper
//!   reports it ready; a cancelled or partially read exchange closes it.
//! - Every open socket, connect in progress included, holds one endpoint slot, released
//!   by the task that owns the socket when it ends; no task outlives its connection.
//! - No lock is shared between endpoints; the per-endpoint lock is held only to push/pop.
//! - The pool never retries and never connects speculatively. (`DnsPool::checkout` tries
//!   the next address after a failed connect; it never resends a request.)

mod body;
mod checkout;
mod connection;
mod dedicated;
mod dns_pool;
mod endpoint;
mod error;
mod lease_timer;
mod metrics;
mod multiplex;
mod options;
mod pinned;
mod pool;
mod resolve;
mod settings;
mod sweeper;
mod tls;

pub use body::PooledBody;
pub use checkout::Pooled;
pub use dedicated::Dedicated;
pub use dns_pool::{
    AddressSnapshot, AddressState, DnsMetrics, DnsOptions, DnsPool, DnsSnapshot, HostPort,
    InvalidHostPort, NameSnapshot,
};
pub use endpoint::EndpointSnapshot;
pub use error::{PoolError, SendError, classify};
pub use lease_timer::LEASE_GRACE;
pub use metrics::{CloseCounters, CloseReason, PhaseMetrics, PoolMetrics};
pub use options::{Http2Settings, PoolOptions, Protocol};
pub use pool::Pool;
pub use resolve::{
    HickoryResolver, ManualResolver, Resolve, ResolveFuture, Resolved, SystemResolver,
};
pub use settings::PoolSettings;
pub use tls::{
    ClientIdentity, PemSource, SessionStore, TlsConfigError, TlsFailure, TlsRoots, TlsSettings,
    UpstreamTls, classify_tls,
};
