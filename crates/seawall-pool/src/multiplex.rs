//! HTTP/2 connections: each shared by concurrent requests, one stream per request.
//!
//! Checkout. An endpoint's HTTP/2 connections are a short list (in opening order) behind
//! the endpoint's own `std::sync::Mutex`, held only to scan it, bump a counter or remove
//! an entry. A checkout takes a *stream* on the first connection that has room: fewer
//! streams in flight than its limit, the lower of the peer's
//! `SETTINGS_MAX_CONCURRENT_STREAMS` (read by the connection's driver from hyper) and
//! `Http2Settings::max_concurrent_streams`. hyper does not count streams, so each
//! connection counts its own: incremented under the lock by the checkout, decremented
//! when the [`H2Stream`] lease is dropped, which happens when the response body ends or
//! is dropped (or the request failed, or was never sent). Only when every connection is
//! at its limit is a new one opened, and then only one at a time per endpoint: checkouts
//! arriving while it connects wait for it (bounded by `checkout_timeout` and the
//! deadline) instead of each opening their own, so a burst of N requests opens
//! `ceil(N / limit)` connections, not N. When that connect fails (refused, timed out, TLS),
//! the checkouts waiting for it fail with its error kind.
//!
//! Reuse. The request that opened a connection counts as `fresh`; every later stream on
//! it, concurrent or not, as `reused`.
//!
//! Gauges. A connection with streams in flight counts as `in_use`, one without as `idle`
//! (idle since its last stream ended; after `idle_timeout` the sweeper closes it, and
//! beyond `max_idle_per_endpoint` idle connections the one going idle is closed). Both
//! transitions happen under the lock, so the gauges never drift.
//!
//! Life limits. A connection that reached `max_requests_per_connection` streams or
//! `max_lifetime` is *retired*: it takes no new stream and closes when its last stream
//! ends (a request in flight is never interrupted). Pool shutdown takes every connection
//! off the list: idle ones close at once, busy ones when their last stream ends.
//!
//! Sockets and slots. hyper's HTTP/2 client runs the connection in tasks of its own,
//! spawned on the executor it is given, and the socket lives there, not in the dispatch
//! future the pool drives: it can outlive that future while streams finish. So the slot
//! rides on the socket ([`Guarded`]) and is freed exactly when the socket is dropped; the
//! executor ([`ConnExecutor`]) ties every task hyper spawns to the pool's abort token, so
//! a drain's grace period ending closes the socket as it does for HTTP/1. Close
//! accounting is `connection::ConnState`'s, with the two parties being the pool's
//! [`H2Conn`] handle (dropped when it is off the list and its last stream ended) and the
//! driver (done when hyper's dispatch ended *and* the socket is gone).
//!
//! Keep-alive. hyper sends a PING after `keep_alive_interval` without a frame, idle
//! connections included, and closes the connection when none is answered within
//! `keep_alive_timeout` (counted as `ping_timeout`).

use std::fmt;
use std::future::{Future, poll_fn};
use std::io;
use std::pin::{Pin, pin};
use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll};

use hyper::client::conn::http2;
use hyper::rt::{Read, ReadBufCursor, Write};
use hyper_util::rt::{TokioIo, TokioTimer};
use seawall_core::{Body, ErrorKind};
use tokio::sync::oneshot;
use tokio::time::Instant;
use tokio_util::either::Either;
use tokio_util::sync::CancellationToken;

use crate::checkout::Pooled;
use crate::connection::{self, Conn, ConnState, Connecting, Slot};
use crate::endpoint::Endpoint;
use crate::error::PoolError;
use crate::metrics::CloseReason;
use crate::options::Protocol;

/// Marker for "not retired" in [`H2Conn::retired`].
const ACTIVE: usize = usize::MAX;

/// The pool's handle to one HTTP/2 connection, shared by its list entry and its streams.
/// Dropping the last reference drops the `SendRequest`, which makes hyper close the
/// connection once no stream is left.
pub(crate) struct H2Conn {
    sender: http2::SendRequest<Body>,
    pub(crate) state: Arc<ConnState>,
    opened: Instant,
    /// Streams in flight. Incremented only under the endpoint's list lock.
    streams: AtomicUsize,
    /// The streams this connection may carry, kept current by the driver.
    limit: Arc<AtomicUsize>,
    /// `ACTIVE`, or the index of the `CloseReason` it was retired for.
    retired: AtomicUsize,
}

impl H2Conn {
    fn limit(&self) -> usize {
        self.limit.load(Ordering::Relaxed)
    }

    fn retired(&self) -> Option<CloseReason> {
        CloseReason::from_index(self.retired.load(Ordering::SeqCst))
    }

    fn retire(&self, reason: CloseReason) {
        let _ = self.retired.compare_exchange(
            ACTIVE,
            reason.index(),
            Ordering::SeqCst,
            Ordering::SeqCst,
        );
    }

    fn has_room(&self) -> bool {
        self.retired.load(Ordering::SeqCst) == ACTIVE
            && !self.sender.is_closed()
            && self.streams.load(Ordering::SeqCst) < self.limit()
    }
}

impl Drop for H2Conn {
    fn drop(&mut self) {
        // The reason (if any) was recorded when the entry left the list.
        self.state.party_done();
    }
}

/// One stream's hold on a connection: counts in the connection's streams until dropped.
pub(crate) struct H2Stream {
    pub(crate) conn: Arc<H2Conn>,
    pub(crate) endpoint: Arc<Endpoint>,
}

impl H2Stream {
    pub(crate) fn sender(&self) -> http2::SendRequest<Body> {
        self.conn.sender.clone()
    }
}

impl Drop for H2Stream {
    fn drop(&mut self) {
        self.endpoint.h2.release(&self.endpoint, &self.conn);
    }
}

/// A listed connection.
struct Entry {
    conn: Arc<H2Conn>,
    /// `Some` while no stream is in flight: counted as idle since then.
    idle_since: Option<Instant>,
    /// Streams given out, for `max_requests_per_connection`.
    requests: u64,
}

/// The last failed connect, for the checkouts that waited for it.
struct Failure {
    generation: u64,
    kind: ErrorKind,
    detail: String,
}

#[derive(Default)]
struct Inner {
    conns: Vec<Entry>,
    /// A checkout is connecting; others wait for its connection rather than open their own.
    connecting: bool,
    /// Counts finished connects (either outcome).
    generation: u64,
    failure: Option<Failure>,
}

/// What the endpoint learned from ALPN under `Protocol::Auto` (0: nothing yet).
const NEGOTIATED_H1: u8 = 1;
const NEGOTIATED_H2: u8 = 2;

/// The HTTP/2 side of one endpoint.
#[derive(Default)]
pub(crate) struct Multiplex {
    inner: Mutex<Inner>,
    negotiated: AtomicU8,
    /// The stream limit last learned from a connection to this endpoint (0: none yet). A
    /// new connection starts with it: hyper reads the peer's SETTINGS only after the
    /// handshake, and a burst would otherwise overfill the new connection.
    learned: AtomicUsize,
}

/// What a look at the list decided.
enum Reserve {
    Stream(H2Stream, bool),
    Connect(Slot),
    Failed(PoolError),
    Wait(u64),
}

impl Multiplex {
    /// A poisoned lock only means a panic elsewhere while holding it; the list is always
    /// consistent between statements that touch it.
    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// True when an `auto` endpoint's upstream answered ALPN with HTTP/1.1: its
    /// checkouts take the HTTP/1 path.
    pub(crate) fn speaks_http1(&self) -> bool {
        self.negotiated.load(Ordering::Relaxed) == NEGOTIATED_H1
    }

    /// True when an `auto` endpoint's upstream answered ALPN with h2.
    pub(crate) fn speaks_http2(&self) -> bool {
        self.negotiated.load(Ordering::Relaxed) == NEGOTIATED_H2
    }

    /// Takes a stream on a connection with room, else decides who connects.
    fn reserve(&self, endpoint: &Arc<Endpoint>, now: Instant, waited: Option<u64>) -> Reserve {
        let options = &endpoint.common.options;
        let mut retired = Vec::new();
        let decision = {
            let mut inner = self.lock();
            let mut found = None;
            let mut index = 0;
            while index < inner.conns.len() {
                let conn = &inner.conns[index].conn;
                if options.is_past_lifetime(conn.opened, now) {
                    conn.retire(CloseReason::Lifetime);
                }
                if let Some(reason) = conn.retired() {
                    if conn.streams.load(Ordering::SeqCst) == 0 {
                        retired.push(remove(&mut inner, index, endpoint, Some(reason)));
                        continue;
                    }
                } else if conn.has_room() {
                    found = Some(index);
                    break;
                }
                index += 1;
            }
            match found {
                Some(index) => {
                    let entry = &mut inner.conns[index];
                    Reserve::Stream(take(entry, endpoint), entry.conn.has_room())
                }
                None => match &inner.failure {
                    Some(failure) if waited.is_some_and(|seen| failure.generation > seen) => {
                        Reserve::Failed(PoolError::new(
                            failure.kind,
                            endpoint.addr,
                            format!(
                                "the connect this request waited for failed: {}",
                                failure.detail
                            ),
                        ))
                    }
                    _ if inner.connecting => Reserve::Wait(inner.generation),
                    _ => match endpoint.try_slot() {
                        Some(slot) => {
                            inner.connecting = true;
                            Reserve::Connect(slot)
                        }
                        None => Reserve::Wait(inner.generation),
                    },
                },
            }
        };
        drop(retired);
        decision
    }

    /// Lists a connection just opened for a checkout, with that checkout's stream on it.
    fn register(&self, endpoint: &Arc<Endpoint>, conn: Arc<H2Conn>, gate: bool) -> H2Stream {
        conn.streams.fetch_add(1, Ordering::SeqCst);
        let stream = H2Stream {
            conn: Arc::clone(&conn),
            endpoint: Arc::clone(endpoint),
        };
        let unlisted = {
            let mut inner = self.lock();
            if gate {
                inner.connecting = false;
                inner.generation += 1;
            }
            if endpoint.common.is_closed() {
                // Carries this one request, then closes.
                conn.state.record(CloseReason::Shutdown);
                Some(conn)
            } else {
                endpoint.common.metrics.in_use.inc();
                let mut entry = Entry {
                    conn,
                    idle_since: None,
                    requests: 1,
                };
                retire_if_spent(&mut entry, endpoint);
                inner.conns.push(entry);
                None
            }
        };
        drop(unlisted);
        // Its spare streams are for whoever waits.
        endpoint.notify.notify_waiters();
        stream
    }

    /// The connect a checkout made for the others failed, or was abandoned.
    fn connect_ended(&self, endpoint: &Endpoint, failure: Option<(ErrorKind, String)>) {
        {
            let mut inner = self.lock();
            inner.connecting = false;
            inner.generation += 1;
            if let Some((kind, detail)) = failure {
                inner.failure = Some(Failure {
                    generation: inner.generation,
                    kind,
                    detail,
                });
            }
        }
        endpoint.notify.notify_waiters();
    }

    /// A stream ended: the connection has room again, or went idle.
    fn release(&self, endpoint: &Endpoint, conn: &Arc<H2Conn>) {
        let limit = conn.limit();
        let before = conn.streams.fetch_sub(1, Ordering::SeqCst);
        if before == 1 {
            self.settle(endpoint, conn);
        } else if before >= limit {
            endpoint.notify.notify_one();
        }
    }

    /// The connection's last stream ended: it goes idle, or closes if retired, the pool is
    /// closed or enough connections are idle already.
    fn settle(&self, endpoint: &Endpoint, conn: &Arc<H2Conn>) {
        let common = &endpoint.common;
        let removed = {
            let mut inner = self.lock();
            let Some(index) = inner.conns.iter().position(|e| Arc::ptr_eq(&e.conn, conn)) else {
                return;
            };
            // A checkout took a stream since: still in use. Or it took one, finished and
            // settled the connection first: already idle, and counting it twice would
            // move the gauges for good.
            if conn.streams.load(Ordering::SeqCst) != 0 || inner.conns[index].idle_since.is_some() {
                return;
            }
            let idle = inner
                .conns
                .iter()
                .filter(|e| e.idle_since.is_some())
                .count();
            let reason = if common.is_closed() {
                Some(CloseReason::Shutdown)
            } else if let Some(reason) = conn.retired() {
                Some(reason)
            } else if idle >= common.settings.max_idle_per_endpoint {
                Some(CloseReason::IdleCap)
            } else {
                None
            };
            match reason {
                Some(reason) => Some(remove(&mut inner, index, endpoint, Some(reason))),
                None => {
                    inner.conns[index].idle_since = Some(Instant::now());
                    common.metrics.in_use.dec();
                    common.metrics.idle.inc();
                    None
                }
            }
        };
        drop(removed);
        endpoint.notify.notify_one();
    }

    /// Removes a connection whose driver ended, if it is still listed (no reason: the
    /// driver's outcome is the cause).
    pub(crate) fn forget(&self, endpoint: &Endpoint, id: u64) {
        let removed = {
            let mut inner = self.lock();
            let index = inner.conns.iter().position(|e| e.conn.state.id == id);
            index.map(|index| remove(&mut inner, index, endpoint, None))
        };
        drop(removed);
    }

    /// The sweeper's pass: closes connections idle since `idle_cutoff` or before, and
    /// retires those past `max_lifetime` (closing them if idle).
    pub(crate) fn sweep(&self, endpoint: &Endpoint, now: Instant, idle_cutoff: Option<Instant>) {
        let options = &endpoint.common.options;
        let mut removed = Vec::new();
        {
            let mut inner = self.lock();
            let mut index = 0;
            while index < inner.conns.len() {
                let entry = &inner.conns[index];
                if options.is_past_lifetime(entry.conn.opened, now) {
                    entry.conn.retire(CloseReason::Lifetime);
                }
                let idle = entry.conn.streams.load(Ordering::SeqCst) == 0;
                let reason = match entry.idle_since {
                    Some(since) if idle_cutoff.is_some_and(|cutoff| since <= cutoff) => {
                        Some(CloseReason::IdleTimeout)
                    }
                    _ if idle => entry.conn.retired(),
                    _ => None,
                };
                match reason {
                    Some(reason) => removed.push(remove(&mut inner, index, endpoint, Some(reason))),
                    None => index += 1,
                }
            }
        }
        drop(removed);
    }

    /// Closes connections without streams in flight (`all`: takes every connection off
    /// the list; busy ones then close when their last stream ends).
    pub(crate) fn close(&self, endpoint: &Endpoint, reason: CloseReason, all: bool) {
        let mut removed = Vec::new();
        {
            let mut inner = self.lock();
            let mut index = 0;
            while index < inner.conns.len() {
                let entry = &inner.conns[index];
                if all || entry.conn.streams.load(Ordering::SeqCst) == 0 {
                    removed.push(remove(&mut inner, index, endpoint, Some(reason)));
                } else {
                    index += 1;
                }
            }
        }
        drop(removed);
    }

    /// (idle connections, connections with streams, streams in flight).
    pub(crate) fn counts(&self) -> (usize, usize, usize) {
        let inner = self.lock();
        let idle = inner
            .conns
            .iter()
            .filter(|e| e.idle_since.is_some())
            .count();
        let streams = inner
            .conns
            .iter()
            .map(|e| e.conn.streams.load(Ordering::Relaxed))
            .sum();
        (idle, inner.conns.len() - idle, streams)
    }
}

/// Takes a stream on the entry (under the lock).
fn take(entry: &mut Entry, endpoint: &Arc<Endpoint>) -> H2Stream {
    entry.conn.streams.fetch_add(1, Ordering::SeqCst);
    entry.requests += 1;
    if entry.idle_since.take().is_some() {
        endpoint.common.metrics.idle.dec();
        endpoint.common.metrics.in_use.inc();
    }
    retire_if_spent(entry, endpoint);
    H2Stream {
        conn: Arc::clone(&entry.conn),
        endpoint: Arc::clone(endpoint),
    }
}

fn retire_if_spent(entry: &mut Entry, endpoint: &Endpoint) {
    let max = endpoint.common.options.max_requests_per_connection;
    if max.is_some_and(|max| entry.requests >= max) {
        entry.conn.retire(CloseReason::MaxRequests);
    }
}

/// Takes an entry off the list (under the lock), recording `reason` and fixing the
/// gauges. The caller drops the returned handle after unlocking: dropping a
/// `SendRequest` wakes hyper's tasks.
fn remove(
    inner: &mut Inner,
    index: usize,
    endpoint: &Endpoint,
    reason: Option<CloseReason>,
) -> Arc<H2Conn> {
    let entry = inner.conns.remove(index);
    if let Some(reason) = reason {
        entry.conn.state.record(reason);
    }
    if entry.idle_since.is_some() {
        endpoint.common.metrics.idle.dec();
    } else {
        endpoint.common.metrics.in_use.dec();
    }
    entry.conn
}

/// The HTTP/2 (or, for `auto`, not yet known) checkout. `Ok(None)`: the endpoint turned
/// out to speak HTTP/1.1 (ALPN), use the HTTP/1 path.
pub(crate) async fn checkout(
    endpoint: &Arc<Endpoint>,
    start: Instant,
    deadline: Instant,
) -> Result<Option<Pooled>, PoolError> {
    let settings = &endpoint.common.settings;
    let checkout_limit = start + settings.checkout_timeout;
    let limit = checkout_limit.min(deadline);
    let mut notified = pin!(endpoint.notify.notified());
    let mut waited = None;
    loop {
        // Register before looking, so a release between the look and the await wakes us.
        notified.as_mut().enable();
        if endpoint.common.is_closed() {
            return Err(PoolError::drained(endpoint.addr));
        }
        if endpoint.h2.speaks_http1() {
            return Ok(None);
        }
        match endpoint.h2.reserve(endpoint, Instant::now(), waited) {
            Reserve::Stream(stream, room_left) => {
                // Pass a wake-up on: a new connection's spare streams serve many waiters.
                if waited.is_some() && room_left {
                    endpoint.notify.notify_one();
                }
                return Ok(Some(Pooled::h2(stream, true)));
            }
            Reserve::Failed(error) => return Err(error),
            Reserve::Connect(slot) => {
                return connect_for_others(endpoint, slot, deadline).await.map(Some);
            }
            Reserve::Wait(generation) => {
                waited.get_or_insert(generation);
            }
        }
        if tokio::time::timeout_at(limit, notified.as_mut())
            .await
            .is_err()
        {
            return Err(if deadline <= checkout_limit {
                PoolError::deadline(endpoint.addr, "waiting for a connection")
            } else {
                PoolError::exhausted(endpoint.addr, settings.checkout_timeout, settings.slots())
            });
        }
        notified.set(endpoint.notify.notified());
    }
}

/// Clears the endpoint's "connecting" mark if the connecting checkout is dropped.
struct Gate<'a> {
    endpoint: &'a Endpoint,
    armed: bool,
}

impl Drop for Gate<'_> {
    fn drop(&mut self) {
        if self.armed {
            self.endpoint.h2.connect_ended(self.endpoint, None);
        }
    }
}

/// Connects while holding the endpoint's connect gate.
async fn connect_for_others(
    endpoint: &Arc<Endpoint>,
    slot: Slot,
    deadline: Instant,
) -> Result<Pooled, PoolError> {
    let mut gate = Gate {
        endpoint,
        armed: true,
    };
    match connect(endpoint, slot, deadline).await {
        Ok(Established::H2(conn)) => {
            gate.armed = false;
            let stream = endpoint.h2.register(endpoint, conn, true);
            Ok(Pooled::h2(stream, false))
        }
        Ok(Established::H1(conn)) => Ok(Pooled::h1(conn, endpoint, false, deadline)),
        Err(error) => {
            // Only a failure of the endpoint is shared; one of this request (its deadline)
            // leaves the waiters to connect themselves.
            let shared = matches!(
                error.kind,
                ErrorKind::ConnectError
                    | ErrorKind::ConnectTimeout
                    | ErrorKind::TlsError
                    | ErrorKind::TlsHandshakeTimeout
            );
            if shared {
                gate.armed = false;
                let detail = error.to_string();
                endpoint
                    .h2
                    .connect_ended(endpoint, Some((error.kind, detail)));
            }
            Err(error)
        }
    }
}

/// Opens a connection for the HTTP/1 path of an `auto` endpoint: HTTP/2 if ALPN picks it
/// (listed, with the caller's stream on it), else HTTP/1.1.
pub(crate) async fn connect_auto(
    endpoint: &Arc<Endpoint>,
    slot: Slot,
    deadline: Instant,
) -> Result<Pooled, PoolError> {
    match connect(endpoint, slot, deadline).await? {
        Established::H1(conn) => Ok(Pooled::h1(conn, endpoint, false, deadline)),
        Established::H2(conn) => {
            let stream = endpoint.h2.register(endpoint, conn, false);
            Ok(Pooled::h2(stream, false))
        }
    }
}

/// A new connection, of whichever version the protocol and ALPN chose.
enum Established {
    H1(Conn),
    H2(Arc<H2Conn>),
}

/// Connects (TCP, TLS) and sets up HTTP/2 or HTTP/1.1 on the stream.
async fn connect(
    endpoint: &Arc<Endpoint>,
    slot: Slot,
    deadline: Instant,
) -> Result<Established, PoolError> {
    let _connecting = Connecting::start(endpoint);
    let stream = connection::open(endpoint, deadline).await?;
    let h2 = match (&stream, endpoint.common.protocol) {
        (_, Protocol::Http2) => true,
        (Either::Right(tls), Protocol::Auto) => tls.get_ref().1.alpn_protocol() == Some(b"h2"),
        _ => false,
    };
    if endpoint.common.protocol == Protocol::Auto {
        let learned = if h2 { NEGOTIATED_H2 } else { NEGOTIATED_H1 };
        endpoint.h2.negotiated.store(learned, Ordering::Relaxed);
    }
    if !h2 {
        let conn = connection::establish(endpoint, TokioIo::new(stream), slot).await?;
        return Ok(Established::H1(conn));
    }
    let (closed_tx, closed) = oneshot::channel();
    let io = Guarded {
        io: TokioIo::new(stream),
        _slot: slot,
        _closed: closed_tx,
    };
    let common = &endpoint.common;
    let settings = &common.options.http2;
    let cap = usize::try_from(settings.max_concurrent_streams).unwrap_or(usize::MAX);
    let executor = ConnExecutor {
        abort: common.abort.clone(),
    };
    let learned = endpoint.h2.learned.load(Ordering::Relaxed);
    let initial = if learned == 0 { cap } else { learned.min(cap) };
    let mut builder = http2::Builder::new(executor);
    builder
        .timer(TokioTimer::new())
        .keep_alive_interval(settings.keep_alive_interval)
        .keep_alive_timeout(settings.keep_alive_timeout)
        .keep_alive_while_idle(true)
        // What hyper assumes until the peer's SETTINGS arrive.
        .initial_max_send_streams(initial);
    // The handshake writes the connection preface; bounded like the connect.
    let handshake = builder.handshake::<_, Body>(io);
    let (sender, driver) = match tokio::time::timeout_at(deadline, handshake).await {
        Ok(Ok(pair)) => pair,
        Ok(Err(error)) => return Err(PoolError::connect(endpoint.addr, io::Error::other(error))),
        Err(_) => {
            return Err(PoolError::deadline(
                endpoint.addr,
                "in the HTTP/2 handshake",
            ));
        }
    };
    let state = ConnState::new(common);
    common.metrics.opened.inc();
    tracing::debug!(upstream = %common.upstream, endpoint = %endpoint.addr, conn = state.id, "Upstream HTTP/2 connection opened.");
    let limit = Arc::new(AtomicUsize::new(initial));
    spawn_driver(
        driver,
        Arc::clone(&state),
        Arc::clone(&limit),
        cap,
        closed,
        Arc::clone(endpoint),
    );
    Ok(Established::H2(Arc::new(H2Conn {
        sender,
        state,
        opened: Instant::now(),
        streams: AtomicUsize::new(0),
        limit,
        retired: AtomicUsize::new(ACTIVE),
    })))
}

type Io = Guarded<TokioIo<connection::Stream>>;

/// Drives hyper's dispatch future, keeping the connection's stream limit current, then
/// waits for the socket to go and reports the connection ended.
fn spawn_driver(
    driver: http2::Connection<Io, Body, ConnExecutor>,
    state: Arc<ConnState>,
    limit: Arc<AtomicUsize>,
    cap: usize,
    closed: oneshot::Receiver<()>,
    endpoint: Arc<Endpoint>,
) {
    tokio::spawn(async move {
        // In a block of its own: the dispatch future holds references that keep hyper's
        // connection task (and so the socket) alive, so it must be gone before waiting for
        // the socket to close.
        {
            let abort = endpoint.common.abort.clone();
            let mut driver = pin!(driver);
            // hyper applies the peer's SETTINGS inside the connection; the dispatch future is
            // polled for every request sent, which is when the limit matters.
            let mut known = limit.load(Ordering::Relaxed);
            let driven = poll_fn(|cx| {
                let polled = driver.as_mut().poll(cx);
                let now = driver.current_max_send_streams().min(cap);
                if now != known {
                    let raised = now > known;
                    known = now;
                    limit.store(now, Ordering::Relaxed);
                    endpoint.h2.learned.store(now.max(1), Ordering::Relaxed);
                    // Room for more streams: checkouts waiting for one can take it now
                    // rather than at their timeout.
                    if raised {
                        endpoint.notify.notify_waiters();
                    }
                }
                polled
            });
            tokio::select! {
                result = driven => {
                    if let Err(error) = result {
                        tracing::debug!(endpoint = %endpoint.addr, conn = state.id, %error, "Upstream HTTP/2 connection failed.");
                        if error.is_timeout() {
                            state.record(CloseReason::PingTimeout);
                        }
                        state.mark_failed();
                    }
                }
                () = abort.cancelled() => state.record(CloseReason::Shutdown),
            }
        }
        // The socket lives in hyper's connection task, which may still finish streams; it
        // is gone when the sender is dropped (an error only says it was dropped).
        let _ = closed.await;
        state.mark_finished();
        endpoint.h2.forget(&endpoint, state.id);
        state.party_done();
    });
}

/// Spawns hyper's HTTP/2 tasks (the connection, and a body pipe per request) so that the
/// pool's abort token ends them: a drain's grace period then closes the socket.
#[derive(Clone)]
struct ConnExecutor {
    abort: CancellationToken,
}

impl<F> hyper::rt::Executor<F> for ConnExecutor
where
    F: Future<Output = ()> + Send + 'static,
{
    fn execute(&self, future: F) {
        if self.abort.is_cancelled() {
            return;
        }
        let abort = self.abort.clone();
        tokio::spawn(async move {
            tokio::select! {
                () = future => {}
                () = abort.cancelled() => {}
            }
        });
    }
}

pin_project_lite::pin_project! {
    /// The socket of an HTTP/2 connection, with the endpoint slot it holds and the signal
    /// that it is gone: both released exactly when hyper drops the socket.
    struct Guarded<T> {
        #[pin]
        io: T,
        _slot: Slot,
        _closed: oneshot::Sender<()>,
    }
}

impl<T: Read> Read for Guarded<T> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: ReadBufCursor<'_>,
    ) -> Poll<io::Result<()>> {
        self.project().io.poll_read(cx, buf)
    }
}

impl<T: Write> Write for Guarded<T> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.project().io.poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.project().io.poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.project().io.poll_shutdown(cx)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        self.project().io.poll_write_vectored(cx, bufs)
    }
}

impl fmt::Debug for H2Conn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("H2Conn")
            .field("id", &self.state.id)
            .field("streams", &self.streams.load(Ordering::Relaxed))
            .field("limit", &self.limit())
            .finish_non_exhaustive()
    }
}
