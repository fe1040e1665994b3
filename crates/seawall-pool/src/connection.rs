//! One upstream connection: how it is opened and driven, the slot it holds, and the cell
//! that records why it closed.
//!
//! Lifecycle. A checkout takes a [`Slot`] (a semaphore permit) *before* connecting, so the
//! per-endpoint cap counts connects in progress. Once the TCP connect, the TLS handshake
//! (for a TLS upstream) and the (I/O-free) HTTP/1 handshake succeed, the slot moves into
//! the spawned driver task, which runs hyper's `Connection` future. The driver ends when the connection ends, whatever the
//! cause: the peer closed it, it failed, or every `SendRequest` handle was dropped (hyper
//! then shuts the connection down), or a drain's grace period ended (the driver drops the
//! connection itself). So "close a connection" in this crate means "drop its
//! `SendRequest`" (or, for a drain, abort its driver), and the slot is freed exactly when
//! the socket is gone.
//!
//! Close accounting. Each [`Conn`] handle carries `on_drop`, the reason to record when it
//! is dropped, updated as the connection changes phase (checked out → `cancelled`,
//! response head received → `body_incomplete`, a failed exchange → `error` or
//! `peer_closed`; the sweeper, the idle cap and shutdown set theirs just before dropping).
//! A close is counted once, by whichever of the two parties finishes *second*: the handle
//! (dropped) or the driver (connection ended). Counting at the second party matters
//! because hyper's driver often ends *before* the handle learns what happened (it hands a
//! parse error to the response future and then ends cleanly), so only with both facts is
//! the reason right. If the handle recorded nothing, the driver's outcome decides: an
//! error → `error`, a clean end → `peer_closed`. The slot does not wait for counting: the
//! driver frees it as soon as the socket is closed.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use hyper::client::conn::http1;
use hyper_util::rt::TokioIo;
use seawall_core::Body;
use tokio::net::TcpStream;
use tokio::sync::{OwnedSemaphorePermit, oneshot};
use tokio::time::Instant;
use tokio_rustls::client::TlsStream;

use crate::endpoint::Endpoint;
use crate::error::PoolError;
use crate::lease_timer::{Bounded, LeaseClock};
use crate::metrics::CloseReason;
use crate::pool::Common;
use crate::tls::Handshake;

/// Marker for "no reason recorded" in [`ConnState::reason`].
const UNSET: usize = usize::MAX;

/// State shared between a connection's handle ([`Conn`]) and its driver task.
pub(crate) struct ConnState {
    pub(crate) id: u64,
    common: Arc<Common>,
    /// The first close reason recorded: by the handle when it was dropped, or by the
    /// driver when a drain aborted it (`UNSET` if neither did).
    reason: AtomicUsize,
    /// The driver ended with an error.
    driver_failed: AtomicBool,
    /// How many of the two parties (handle, driver) are done; the second one counts.
    parties_done: AtomicUsize,
    /// Set by the driver when the connection has ended. Read under the idle lock by
    /// `Endpoint::push_idle`, and written before the driver takes that lock, so a connection
    /// can never be pushed after its driver looked for it in the idle stack.
    finished: AtomicBool,
    /// When the current lease must end (see `lease_timer`); watched by an HTTP/1.1 driver.
    pub(crate) lease: LeaseClock,
}

impl ConnState {
    /// The state of a connection just established, with the pool's next id.
    pub(crate) fn new(common: &Arc<Common>) -> Arc<Self> {
        Arc::new(ConnState {
            id: common.next_id.fetch_add(1, Ordering::Relaxed),
            common: Arc::clone(common),
            reason: AtomicUsize::new(UNSET),
            driver_failed: AtomicBool::new(false),
            parties_done: AtomicUsize::new(0),
            finished: AtomicBool::new(false),
            lease: LeaseClock::default(),
        })
    }

    /// The driver ended with an error (recorded before it counts as a party).
    pub(crate) fn mark_failed(&self) {
        self.driver_failed.store(true, Ordering::Release);
    }

    /// The connection has ended (see `finished`).
    pub(crate) fn mark_finished(&self) {
        self.finished.store(true, Ordering::SeqCst);
    }

    pub(crate) fn is_finished(&self) -> bool {
        self.finished.load(Ordering::SeqCst)
    }

    /// Records the close reason unless one is already recorded: the first cause wins (the
    /// driver records `shutdown` when a drain's grace ends before the handle is dropped).
    pub(crate) fn record(&self, reason: CloseReason) {
        let _ = self.reason.compare_exchange(
            UNSET,
            reason.index(),
            Ordering::AcqRel,
            Ordering::Acquire,
        );
    }

    /// One party is done. Each party publishes what it knows *before* this `AcqRel`
    /// increment, so the second party sees both and counts the close exactly once.
    pub(crate) fn party_done(&self) {
        if self.parties_done.fetch_add(1, Ordering::AcqRel) != 1 {
            return;
        }
        let reason = CloseReason::from_index(self.reason.load(Ordering::Acquire)).unwrap_or(
            if self.driver_failed.load(Ordering::Acquire) {
                CloseReason::Error
            } else {
                CloseReason::PeerClosed
            },
        );
        self.common.metrics.closed.get(reason).inc();
        tracing::debug!(upstream = %self.common.upstream, conn = self.id, %reason, "Upstream connection closed.");
    }
}

impl fmt::Debug for ConnState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConnState")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

/// The pool's handle to a live connection. Dropping it closes the connection.
pub(crate) struct Conn {
    pub(crate) sender: http1::SendRequest<Body>,
    pub(crate) state: Arc<ConnState>,
    /// The reason recorded if this handle is dropped now; `None` leaves the attribution to
    /// the driver (the peer or an error ended it). Updated as the connection changes phase.
    pub(crate) on_drop: Option<CloseReason>,
    /// When the connection was established, for `max_lifetime`.
    pub(crate) opened: Instant,
    /// Requests sent on it so far, for `max_requests_per_connection`. Only the handle's
    /// single owner touches it, so it needs no atomic.
    pub(crate) requests: u64,
    /// Dropped with the handle, which ends the driver (see `Drop`). A oneshot rather than
    /// a `Notify`: the driver polls its receiver on every wake-up, and that poll takes no
    /// lock.
    pub(crate) _kill: oneshot::Sender<()>,
}

impl Conn {
    /// Closes the connection, recording why.
    pub(crate) fn close(mut self, reason: CloseReason) {
        self.on_drop = Some(reason);
        drop(self);
    }

    /// Drops the handle leaving the attribution to the driver: the connection already
    /// failed or was closed by the peer, and that is the cause to report.
    pub(crate) fn discard(mut self) {
        self.on_drop = None;
        drop(self);
    }

    pub(crate) fn id(&self) -> u64 {
        self.state.id
    }
}

impl Drop for Conn {
    fn drop(&mut self) {
        // Runs before the `sender` field is dropped, so the reason is in place before the
        // driver can observe the close. If the driver already ended (the peer closed
        // first), it has counted the close and this write is never read.
        if let Some(reason) = self.on_drop {
            self.state.record(reason);
        }
        self.state.party_done();
        // Found by tests/pool.rs (a black-hole upstream): hyper ends a connection whose
        // every `SendRequest` is gone only once its current exchange is over, and an
        // exchange whose request-body write is blocked (the upstream stopped reading) is
        // never over: the socket, the client's body behind it and the slot stayed for
        // good. A dropped handle means nothing more will be sent or read, so the driver
        // ends at once: dropping `kill` (below, with the other fields) wakes it.
    }
}

impl fmt::Debug for Conn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Conn")
            .field("id", &self.state.id)
            .finish_non_exhaustive()
    }
}

/// One of the endpoint's `max_connections_per_endpoint` places. Held by a connect in
/// progress, then by the connection's driver task. Dropping it frees the place and wakes
/// one checkout waiting on the endpoint.
pub(crate) struct Slot {
    permit: Option<OwnedSemaphorePermit>,
    endpoint: Arc<Endpoint>,
}

impl Slot {
    pub(crate) fn new(permit: OwnedSemaphorePermit, endpoint: Arc<Endpoint>) -> Self {
        Self {
            permit: Some(permit),
            endpoint,
        }
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        // Release first, then wake: the woken waiter must find the permit available.
        drop(self.permit.take());
        self.endpoint.notify.notify_one();
    }
}

/// Counts a connect in progress in the endpoint and the gauge, for as long as it lives
/// (including when the checkout future is dropped mid-connect).
pub(crate) struct Connecting<'a>(&'a Endpoint);

impl<'a> Connecting<'a> {
    pub(crate) fn start(endpoint: &'a Endpoint) -> Self {
        endpoint.connecting.fetch_add(1, Ordering::Relaxed);
        endpoint.common.metrics.connecting.inc();
        Self(endpoint)
    }
}

impl Drop for Connecting<'_> {
    fn drop(&mut self) {
        self.0.connecting.fetch_sub(1, Ordering::Relaxed);
        self.0.common.metrics.connecting.dec();
    }
}

/// Opens a connection to the endpoint: the TCP connect bounded by `connect_timeout` and
/// the deadline, then, for a TLS upstream, the handshake bounded by `handshake_timeout`
/// and the deadline. Spawns the driver, which takes over `slot`.
pub(crate) async fn connect(
    endpoint: &Arc<Endpoint>,
    slot: Slot,
    deadline: Instant,
) -> Result<Conn, PoolError> {
    let _connecting = Connecting::start(endpoint);
    let stream = open(endpoint, deadline).await?;
    establish(endpoint, TokioIo::new(stream), slot).await
}

/// A connected socket, TLS-wrapped for a TLS upstream.
pub(crate) type Stream = tokio_util::either::Either<TcpStream, TlsStream<TcpStream>>;

/// The transport part of [`connect`]: the TCP connect, then for a TLS upstream the
/// handshake, each bounded by its timeout and the deadline, with their metrics. Also used
/// for dedicated (upgrade) connections (`crate::dedicated`); the caller holds the slot and
/// counts the connect in progress.
pub(crate) async fn open(endpoint: &Endpoint, deadline: Instant) -> Result<Stream, PoolError> {
    let common = &endpoint.common;
    let settings = &common.settings;
    let addr = endpoint.addr;
    let started = Instant::now();
    let connect_limit = started + settings.connect_timeout;
    let limit = connect_limit.min(deadline);
    let stream = match tokio::time::timeout_at(limit, TcpStream::connect(addr)).await {
        Ok(Ok(stream)) => stream,
        Ok(Err(error)) => return Err(PoolError::connect(addr, error)),
        // When both fire at once the deadline is the truer cause: a longer connect timeout
        // would not have helped.
        Err(_) if deadline <= connect_limit => {
            return Err(PoolError::deadline(addr, "connecting"));
        }
        Err(_) => return Err(PoolError::connect_timeout(addr, settings.connect_timeout)),
    };
    common
        .metrics
        .connect_duration
        .observe(started.elapsed().as_secs_f64());
    configure_socket(&stream, settings.tcp_keepalive, addr);

    let Some(tls) = &common.options.tls else {
        return Ok(Stream::Left(stream));
    };
    let phase = &common.options.metrics;
    let tls_started = Instant::now();
    let tls_limit = tls_started + tls.handshake_timeout();
    let limit = tls_limit.min(deadline);
    let (stream, kind) = match tokio::time::timeout_at(limit, tls.handshake(stream, addr)).await {
        Ok(Ok(done)) => done,
        Ok(Err(error)) => {
            let error = PoolError::tls(addr, error);
            common.warn_tls_failure(&error);
            return Err(error);
        }
        Err(_) if deadline <= tls_limit => {
            return Err(PoolError::deadline(addr, "in the TLS handshake"));
        }
        Err(_) => return Err(PoolError::tls_timeout(addr, tls.handshake_timeout())),
    };
    phase
        .tls_handshake_duration
        .observe(tls_started.elapsed().as_secs_f64());
    match kind {
        Handshake::Full => phase.tls_handshakes_full.inc(),
        Handshake::Resumed => phase.tls_handshakes_resumed.inc(),
    };
    Ok(Stream::Right(stream))
}

/// The most an upstream connection's read buffer grows to (hyper's default is about
/// 400 KiB). Measured with bench/slow-readers.sh: a response whose client reads slowly
/// keeps its read buffer full *and* a chunk of it queued for the client, so each such
/// exchange held about 750 KiB until its deadline; 64 KiB bounds that to about a sixth
/// and still moves a body in few enough reads.
const READ_BUFFER_MAX: usize = 64 * 1024;

/// Builds the HTTP/1 sender/driver pair on a connected (and, for TLS, handshaken) stream
/// and spawns the driver.
pub(crate) async fn establish<T>(
    endpoint: &Arc<Endpoint>,
    io: T,
    slot: Slot,
) -> Result<Conn, PoolError>
where
    T: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let common = &endpoint.common;
    let addr = endpoint.addr;
    // For HTTP/1 the handshake does no I/O; it only builds the sender/driver pair.
    let (sender, driver) = http1::Builder::new()
        .max_buf_size(READ_BUFFER_MAX)
        .handshake::<_, Body>(io)
        .await
        .map_err(|error| PoolError::connect(addr, std::io::Error::other(error)))?;
    let state = ConnState::new(common);
    common.metrics.opened.inc();
    tracing::debug!(upstream = %common.upstream, endpoint = %addr, conn = state.id, "Upstream connection opened.");
    let (kill, killed) = oneshot::channel();
    spawn_driver(driver, Arc::clone(&state), slot, killed);
    Ok(Conn {
        sender,
        state,
        on_drop: None,
        opened: Instant::now(),
        requests: 0,
        _kill: kill,
    })
}

/// Socket options are an optimisation: failing to set one is logged, not fatal.
fn configure_socket(
    stream: &TcpStream,
    keepalive: Option<std::time::Duration>,
    addr: std::net::SocketAddr,
) {
    if let Err(error) = stream.set_nodelay(true) {
        tracing::warn!(endpoint = %addr, %error, "Could not set TCP_NODELAY.");
    }
    if let Some(interval) = keepalive {
        let params = socket2::TcpKeepalive::new()
            .with_time(interval)
            .with_interval(interval);
        if let Err(error) = socket2::SockRef::from(stream).set_tcp_keepalive(&params) {
            tracing::warn!(endpoint = %addr, %error, "Could not set TCP keep-alive.");
        }
    }
}

fn spawn_driver<T>(
    driver: http1::Connection<T, Body>,
    state: Arc<ConnState>,
    slot: Slot,
    killed: oneshot::Receiver<()>,
) where
    T: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    tokio::spawn(async move {
        // The socket is closed when this select returns (the future owns it, and is
        // dropped when the drain's grace period ends first, when the handle is dropped, or
        // when a lease outlives its deadline).
        let abort = state.common.abort.clone();
        let epoch = state.common.epoch;
        tokio::select! {
            result = Bounded::new(driver, &state.lease, epoch) => match result {
                Ok(Ok(())) => {}
                Ok(Err(error)) => {
                    tracing::debug!(endpoint = %slot.endpoint.addr, conn = state.id, %error, "Upstream connection failed.");
                    state.driver_failed.store(true, Ordering::Release);
                }
                Err(_expired) => {
                    tracing::debug!(endpoint = %slot.endpoint.addr, conn = state.id, "Upstream connection still checked out past its request's deadline; closed.");
                    state.record(CloseReason::LeaseExpired);
                }
            },
            () = abort.cancelled() => state.record(CloseReason::Shutdown),
            _ = killed => {}
        }
        // Order matters: mark finished before looking in the idle stack (see
        // `ConnState::finished`), so a dead connection never lingers there. Removing it
        // drops its handle, which is then the second party and counts the close.
        state.finished.store(true, Ordering::SeqCst);
        slot.endpoint.forget_idle(state.id);
        state.party_done();
        drop(slot);
    });
}
