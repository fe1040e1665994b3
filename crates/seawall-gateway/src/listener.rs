//! Client-facing listeners: accept, connection limits, HTTP/1.1 + h2c on one port (or, with
//! `tls`, HTTPS with HTTP/2 or HTTP/1.1 as ALPN chose), and the per-connection watchdog for
//! the header-read and idle timeouts.
//!
//! A TLS connection first completes its handshake under `tls.handshake_timeout`
//! ([`crate::tls`]); after that it is served exactly like a plaintext one, with the
//! watchdog watching the *decrypted* bytes (TLS records that carry no request, such as
//! alerts, neither start nor extend a request head).
//!
//! Why our own watchdog: hyper's `header_read_timeout` starts when a connection begins
//! waiting for a request head, so on keep-alive connections it also cuts the idle gap
//! between requests. Seawall keeps the two distinct: the header-read timer starts at the
//! first byte of a request, the idle timer when the previous response finished. A
//! connection's *first* request is timed from accept (or from the end of the TLS
//! handshake), as nginx's `client_header_timeout` does: a client that connects and never
//! sends a byte is closed at `header_read_timeout`, not at `idle_timeout`, so silent
//! sockets cannot hold `max_connections` slots for a minute each. HTTP/2 connections are
//! exempt once their preface arrives (it is the first bytes they send). Both are
//! kept as atomics in [`ConnState`], stamped by the socket wrapper ([`WatchedStream`]) and
//! the request handler; one guard task per connection looks at them at its next deadline or
//! after one tick (a quarter of the shorter timeout), and closes the socket from outside.
//! It is never woken per request, so a timeout fires at most one tick late.
//!
//! The guard also holds the second handle to the socket, which is what lets a `reset`
//! fault end an HTTP/1.1 connection with a TCP RST: the request only sets a flag in
//! [`ConnState`] ([`ConnState::end_as_asked`]); hyper closes its handle without a FIN
//! reaching the wire (the guard's is still open), and the guard's handle, closed last, sets
//! `SO_LINGER` 0 first when the flag is up ([`GuardSocket`]). An HTTP/2 `close` fault
//! wakes the guard, which ends the connection gracefully, as a shutdown does.

use std::{
    io,
    net::SocketAddr,
    pin::Pin,
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering},
    },
    task::{Context, Poll},
    time::Duration,
};

use arc_swap::ArcSwap;
use hyper::service::service_fn;
use hyper_util::{
    rt::{TokioExecutor, TokioIo, TokioTimer},
    server::conn::auto,
};
use tokio::{
    io::{AsyncRead, AsyncWrite, AsyncWriteExt, ReadBuf},
    net::{TcpListener, TcpStream},
    time::{Instant, sleep_until},
};
use tokio_util::{sync::CancellationToken, task::TaskTracker};

use crate::{
    body::ResponseBody,
    edge::{self, ConnShared},
    faults::client::EndConnection,
    metrics::{DownstreamCloseLabels, ListenerLabel, Metrics},
    runtime::{ListenerSettings, Runtime},
    tls::{HandshakeFailure, ListenerTls},
};

/// Timing state of one client connection, shared by the socket wrapper, the request
/// handler and the watchdog. Times are microseconds since the connection was accepted.
pub struct ConnState {
    base: Instant,
    in_flight: AtomicU32,
    /// When the connection last became idle (accepted, or last response finished).
    idle_since: AtomicU64,
    /// When the first byte of the next request head arrived; `u64::MAX` when none has.
    /// Starts at accept (then at [`ConnState::ready`]): the first request's head is timed
    /// from the moment the connection could send it.
    head_started: AtomicU64,
    /// HTTP/2 connections carry pings and settings between requests, so the header-read
    /// timer does not apply to them.
    http2: AtomicBool,
    first_read: AtomicBool,
    /// The connection arrived over TLS (`x-forwarded-proto: https`).
    tls: bool,
    /// Set when the gateway is shutting down: responses then carry `connection: close`.
    pub draining: AtomicBool,
    /// Wakes the guard of a draining connection when its last request ends.
    wake: tokio::sync::Notify,
    /// When every request in flight is overdue: the latest deadline of any request since
    /// the connection opened, plus [`STALL_GRACE`], in microseconds since `base`; `0`
    /// before the first request, `u64::MAX` once a tunnel runs (it has no deadline). Never
    /// lowered: resetting it when the connection went idle raced with a request starting
    /// on another stream, and a monotone maximum is always a safe (if looser) bound. See
    /// [`ConnState::expect_done_by`].
    overdue_at: AtomicU64,
    /// A `reset` fault asked for this HTTP/1.1 connection to end with an RST: read once,
    /// when the socket is closed ([`GuardSocket`]).
    reset: AtomicBool,
    /// A `close` fault asked for this HTTP/2 connection to end gracefully (GOAWAY): wakes
    /// the guard, which is otherwise never woken by a request.
    close_asked: tokio::sync::Notify,
    /// An upgraded request's tunnel, waiting for hyper to hand the socket over; run by the
    /// connection's task once hyper is done with it (see [`ConnState::open_tunnel`]).
    tunnel: std::sync::Mutex<Option<Tunnel>>,
}

/// The byte splice of an upgraded connection (`crate::upgrade`).
pub type Tunnel = Pin<Box<dyn Future<Output = ()> + Send>>;

/// How long WebSocket tunnels keep running once a graceful shutdown begins: a tunnel has
/// no "last response" to wait for, so after this it is closed, and the drain does not
/// wait on it for the whole `shutdown.drain_timeout`.
pub const TUNNEL_DRAIN_GRACE: Duration = Duration::from_secs(1);

const NONE: u64 = u64::MAX;

/// How long past its requests' deadlines a connection may stay before it is closed: the
/// requests' own deadline errors, when hyper does poll them, come first and are what
/// gets reported. Shorter than the pool's `LEASE_GRACE` by more than a watchdog tick, so
/// that for a stalled HTTP/1.1 exchange the client side closes first (and the upstream
/// connection is released by that, as `body_incomplete`, with the request logged as
/// `deadline_exceeded`), and the lease timer only catches what this cannot.
pub const STALL_GRACE: Duration = Duration::from_secs(1);

/// How long a draining connection whose last request finished may take to flush and
/// close by itself (HTTP/2: the GOAWAY and the final frames) before its socket is shut.
const FLUSH_GRACE: Duration = Duration::from_secs(1);

impl ConnState {
    fn new(tls: bool) -> Self {
        Self {
            tls,
            base: Instant::now(),
            in_flight: AtomicU32::new(0),
            idle_since: AtomicU64::new(0),
            head_started: AtomicU64::new(0),
            http2: AtomicBool::new(false),
            first_read: AtomicBool::new(true),
            draining: AtomicBool::new(false),
            wake: tokio::sync::Notify::new(),
            overdue_at: AtomicU64::new(0),
            reset: AtomicBool::new(false),
            close_asked: tokio::sync::Notify::new(),
            tunnel: std::sync::Mutex::new(None),
        }
    }

    /// Hands over the tunnel of an upgrade answered with 101: the connection's task runs
    /// it once hyper has written the 101 and released the socket. Until the tunnel ends it
    /// counts as a request in flight, so the header-read and idle timers leave the
    /// connection alone (the tunnel has its own idle timeout) and a graceful shutdown
    /// waits for it (at most [`TUNNEL_DRAIN_GRACE`]).
    pub fn open_tunnel(&self, tunnel: Tunnel) {
        self.in_flight.fetch_add(1, Ordering::AcqRel);
        self.overdue_at.store(u64::MAX, Ordering::Release);
        let previous = self
            .tunnel
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .replace(tunnel);
        if previous.is_some() {
            // Not reachable over HTTP/1.1 (nothing is read after a 101); keep the count.
            self.end_request();
        }
    }

    fn take_tunnel(&self) -> Option<Tunnel> {
        self.tunnel
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take()
    }

    /// Drops a tunnel handed over for a response that did not go out as a 101 (a layer's
    /// response phase changed it, or panicked into a 500): hyper then keeps the connection
    /// for more requests, so the tunnel would never run, yet would hold the upstream socket
    /// and count as a request in flight for the connection's whole life. Costs one
    /// uncontended per-connection lock, and only on responses that are not a 101.
    pub fn cancel_tunnel(&self) {
        if let Some(tunnel) = self.take_tunnel() {
            drop(tunnel);
            self.end_request();
        }
    }

    fn now(&self) -> u64 {
        u64::try_from(self.base.elapsed().as_micros()).unwrap_or(NONE - 1)
    }

    /// A request head was parsed and handed to the gateway.
    pub fn begin_request(&self) {
        self.in_flight.fetch_add(1, Ordering::AcqRel);
        self.head_started.store(NONE, Ordering::Release);
    }

    /// The request just admitted must be over by `deadline`, its response body included.
    ///
    /// Why the connection tracks it: the request's own timers run only when hyper polls
    /// the request, and hyper stops polling a response body while the client does not
    /// read (a full socket on HTTP/1.1; a zero window on HTTP/2). Such a request would
    /// hold its connection, and its upstream connection, past every deadline. The guard
    /// closes a connection whose requests are *all* overdue by [`STALL_GRACE`]: the
    /// latest deadline is kept, so a request that is still within its time is never cut
    /// because an older one stalled. (On HTTP/2 this means one stalled stream on a
    /// connection that keeps starting new requests is not cut; its upstream connection
    /// is still released by the pool's lease timer.)
    pub fn expect_done_by(&self, deadline: Instant) {
        let due = deadline.saturating_duration_since(self.base) + STALL_GRACE;
        let due = u64::try_from(due.as_micros()).unwrap_or(NONE - 1);
        self.overdue_at.fetch_max(due, Ordering::AcqRel);
    }

    /// Sends `resp`, unless a `reset` or `close` fault marked it ([`EndConnection`]): then
    /// the request is finished as answered by no response, and the error returned makes
    /// hyper end the connection without writing a byte (HTTP/1.1) or reset the stream with
    /// the error's code (HTTP/2: `INTERNAL_ERROR` for `reset`, `CANCEL` for `close`; hyper
    /// sends the code of an `h2::Error` it finds in the service's error).
    ///
    /// HTTP/1.1 `reset` sets the flag that makes the close an RST; HTTP/2 `close` wakes the
    /// guard to send a GOAWAY and let the other streams finish. Unmarked responses pay one
    /// lookup in their extension map (no lock, no allocation).
    pub fn end_as_asked(
        &self,
        mut resp: http::Response<ResponseBody>,
        version: http::Version,
    ) -> Result<http::Response<ResponseBody>, h2::Error> {
        let Some(&how) = resp.extensions().get::<EndConnection>() else {
            return Ok(resp);
        };
        resp.body_mut().end_without_response();
        let http2 = version == http::Version::HTTP_2;
        let reason = match how {
            EndConnection::Reset => {
                if !http2 {
                    self.reset.store(true, Ordering::Release);
                }
                h2::Reason::INTERNAL_ERROR
            }
            EndConnection::Close => {
                if http2 {
                    self.close_asked.notify_one();
                }
                h2::Reason::CANCEL
            }
        };
        Err(h2::Error::from(reason))
    }

    /// A response finished (or was abandoned).
    pub fn end_request(&self) {
        if self.in_flight.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.idle_since.store(self.now(), Ordering::Release);
            if self.is_draining() {
                self.wake.notify_one();
            }
        }
    }

    /// True once the gateway is shutting down.
    pub fn is_draining(&self) -> bool {
        self.draining.load(Ordering::Acquire)
    }

    /// True when the client connected over TLS.
    pub fn is_tls(&self) -> bool {
        self.tls
    }

    /// The connection becomes usable now (its TLS handshake finished): the idle and
    /// header-read timers start here, not at accept, so a slow handshake does not eat into
    /// them.
    fn ready(&self) {
        let now = self.now();
        self.idle_since.store(now, Ordering::Release);
        self.head_started.store(now, Ordering::Release);
    }

    fn on_read(&self, bytes: &[u8]) {
        // Checked once per connection: only its first bytes can be the HTTP/2 preface.
        if self.first_read.load(Ordering::Relaxed)
            && self.first_read.swap(false, Ordering::Relaxed)
            && bytes.starts_with(b"PRI * HTTP/2")
        {
            self.http2.store(true, Ordering::Relaxed);
        }
        if self.in_flight.load(Ordering::Acquire) == 0
            && self.head_started.load(Ordering::Acquire) == NONE
        {
            self.head_started.store(self.now(), Ordering::Release);
        }
    }

    /// The reason to close now, or when to look again.
    ///
    /// The watchdog is not woken when a request starts or ends (that would cost a task
    /// wake-up per request); it looks again at its next deadline or after one `tick`,
    /// whichever is sooner, so a timeout fires at most one tick late.
    fn check(&self, s: &ListenerSettings) -> Result<Instant, CloseReason> {
        let now = self.now();
        let micros = |d: Duration| u64::try_from(d.as_micros()).unwrap_or(NONE - 1);
        let tick = micros(watchdog_tick(s));
        let at = |t: u64| self.base + Duration::from_micros(t);
        if self.in_flight.load(Ordering::Acquire) > 0 {
            // Requests in flight have their own deadlines, which hold while hyper polls
            // them; past all of them (and the grace) nobody is reading.
            let overdue = self.overdue_at.load(Ordering::Acquire);
            if overdue != 0 && overdue != u64::MAX {
                if now >= overdue {
                    return Err(CloseReason::StalledPastDeadline);
                }
                return Ok(at((now + tick).min(overdue)));
            }
            return Ok(at(now + tick));
        }
        let head = self.head_started.load(Ordering::Acquire);
        let (due, reason) = if head != NONE && !self.http2.load(Ordering::Relaxed) {
            (
                head.saturating_add(micros(s.header_read_timeout)),
                CloseReason::HeaderReadTimeout,
            )
        } else {
            let idle = self.idle_since.load(Ordering::Acquire);
            (
                idle.saturating_add(micros(s.idle_timeout)),
                CloseReason::IdleTimeout,
            )
        };
        if now >= due {
            Err(reason)
        } else if due - now > tick {
            // A new request may start meanwhile and move the deadline.
            Ok(at(now + tick))
        } else {
            Ok(self.base + Duration::from_micros(due))
        }
    }
}

/// Why the gateway closed a client connection on its own.
#[derive(Debug, Clone, Copy)]
enum CloseReason {
    HeaderReadTimeout,
    IdleTimeout,
    /// Every request in flight is past its deadline by [`STALL_GRACE`] (the client
    /// stopped reading its responses).
    StalledPastDeadline,
}

impl CloseReason {
    fn as_str(self) -> &'static str {
        match self {
            CloseReason::HeaderReadTimeout => "header_read_timeout",
            CloseReason::IdleTimeout => "idle_timeout",
            CloseReason::StalledPastDeadline => "stalled_past_deadline",
        }
    }
}

pin_project_lite::pin_project! {
    /// A client connection (a socket, or the TLS stream over it) that stamps [`ConnState`]
    /// whenever request bytes arrive.
    pub struct WatchedStream<S> {
        #[pin]
        inner: S,
        state: Arc<ConnState>,
    }
}

impl<S: AsyncRead> AsyncRead for WatchedStream<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.project();
        let before = buf.filled().len();
        let res = this.inner.poll_read(cx, buf);
        if buf.filled().len() > before {
            this.state.on_read(&buf.filled()[before..]);
        }
        res
    }
}

impl<S: AsyncWrite> AsyncWrite for WatchedStream<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.project().inner.poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        self.project().inner.poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.project().inner.poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.project().inner.poll_shutdown(cx)
    }
}

/// The hyper server builder for a listener's settings.
pub fn server_builder(s: &ListenerSettings) -> auto::Builder<TokioExecutor> {
    let mut b = auto::Builder::new(TokioExecutor::new());
    b.http1()
        .timer(TokioTimer::new())
        // Our watchdog owns header-read and idle timing (see the module docs).
        .header_read_timeout(None)
        // hyper answers 431 when a request head does not fit in its buffer; the buffer
        // cannot be smaller than 8 KiB, so a smaller limit is checked by `edge` on the
        // parsed head. (hyper also refuses heads of more than 100 fields with 431.)
        .max_buf_size(s.max_header_bytes.max(edge::H1_BUFFER_FLOOR))
        .keep_alive(true);
    b.http2()
        .timer(TokioTimer::new())
        .max_header_list_size(u32::try_from(s.max_header_bytes).unwrap_or(u32::MAX))
        .max_concurrent_streams(256)
        .max_pending_accept_reset_streams(Some(64))
        .keep_alive_interval(Some(Duration::from_secs(20)))
        .keep_alive_timeout(Duration::from_secs(10));
    b
}

/// A running listener's accept loop.
pub struct Acceptor {
    pub name: Arc<str>,
    pub listener: TcpListener,
    pub runtime: Arc<ArcSwap<Runtime>>,
    pub metrics: Arc<Metrics>,
    pub shutdown: CancellationToken,
    pub tracker: TaskTracker,
}

impl Acceptor {
    /// Accepts until `shutdown` is cancelled; connections then drain gracefully.
    pub async fn run(self) {
        let open = Arc::new(AtomicUsize::new(0));
        let label = ListenerLabel {
            listener: self.name.to_string(),
        };
        let open_gauge = self.metrics.downstream_open.get_or_create_owned(&label);
        let rejected = self.metrics.downstream_rejected.get_or_create_owned(&label);
        loop {
            let accepted = tokio::select! {
                () = self.shutdown.cancelled() => break,
                a = self.listener.accept() => a,
            };
            let (stream, peer) = match accepted {
                Ok(x) => x,
                Err(error) => {
                    // Out of file descriptors or similar: back off instead of spinning.
                    tracing::warn!(listener = %self.name, %error, "Accept failed; retrying shortly.");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            };
            let rt = self.runtime.load();
            let Some(l) = rt.listener(&self.name) else {
                break;
            };
            if open.load(Ordering::Acquire) >= l.settings.max_connections {
                rejected.inc();
                if l.tls.is_none() {
                    self.tracker.spawn(reject(stream));
                }
                // A TLS client cannot read a plaintext 503, and a handshake just to send
                // one would spend CPU exactly when the gateway is overloaded: the
                // connection is closed (dropped) instead.
                continue;
            }
            let _ = stream.set_nodelay(true);
            open.fetch_add(1, Ordering::AcqRel);
            open_gauge.inc();
            let conn = Connection {
                settings: l.settings.clone(),
                builder: server_builder(&l.settings),
                shared: ConnShared {
                    runtime: self.runtime.clone(),
                    listener: self.name.clone(),
                    client: peer,
                    conn: Arc::new(ConnState::new(l.tls.is_some())),
                    fallback: l.unmatched.clone(),
                },
                tls: l.tls.clone(),
                metrics: self.metrics.clone(),
                shutdown: self.shutdown.clone(),
            };
            let open = open.clone();
            let open_gauge = open_gauge.clone();
            self.tracker.spawn(async move {
                conn.serve(stream).await;
                open.fetch_sub(1, Ordering::AcqRel);
                open_gauge.dec();
            });
        }
    }
}

/// One client connection.
struct Connection {
    settings: ListenerSettings,
    builder: auto::Builder<TokioExecutor>,
    shared: ConnShared,
    metrics: Arc<Metrics>,
    shutdown: CancellationToken,
    /// The listener's TLS as of this connection's accept; `None` on a plaintext listener.
    tls: Option<Arc<ListenerTls>>,
}

impl Connection {
    async fn serve(self, stream: TcpStream) {
        let Connection {
            settings,
            mut builder,
            shared,
            metrics,
            shutdown,
            tls,
        } = self;
        let state = shared.conn.clone();
        // The guard acts on the socket from outside (shutdown(2) on a duplicate handle), so
        // the connection task itself polls nothing but hyper: no timer and no shared
        // shutdown signal is polled on every wake-up of a busy connection.
        let (stream, socket) = match duplicate(stream) {
            Ok(pair) => pair,
            Err(error) => {
                tracing::warn!(%error, "Cannot watch a client connection; closing it.");
                return;
            }
        };
        let (graceful, drain) = tokio::sync::oneshot::channel();
        let guard = Guard {
            graceful,
            state: state.clone(),
            settings,
            socket: GuardSocket {
                socket,
                state: state.clone(),
            },
            metrics: metrics.clone(),
            listener: shared.listener.to_string(),
            shutdown: shutdown.clone(),
        };
        let Some(tls) = tls else {
            let guard = AbortOnDrop(tokio::spawn(guard.run()));
            serve_http(&builder, stream, shared, &shutdown, drain).await;
            // `guard` is dropped here (or during unwinding, if this task panicked), which
            // stops it and closes its handle to the socket.
            drop(guard);
            return;
        };
        // The handshake has its own bound, so the guard (whose idle timer would otherwise
        // run from accept) starts only once it is done. Returning early drops both
        // handles to the socket, which closes it.
        let handshake = tokio::select! {
            () = shutdown.cancelled() => return,
            h = tls.accept(stream) => h,
        };
        let stream = match handshake {
            Ok(stream) => stream,
            Err(failure) => {
                // Debug, not warn: scanners, health checks and clients that dislike the
                // certificate fail handshakes all day; the metric shows the rate.
                match &failure {
                    HandshakeFailure::Timeout => tracing::debug!(
                        listener = %shared.listener,
                        client = %shared.client,
                        timeout = ?tls.handshake_timeout(),
                        "TLS handshake timed out; closing the connection."
                    ),
                    HandshakeFailure::Error(error) => tracing::debug!(
                        listener = %shared.listener,
                        client = %shared.client,
                        error = %crate::tls::describe(error),
                        "TLS handshake failed; closing the connection."
                    ),
                }
                metrics
                    .downstream_closed
                    .get_or_create(&DownstreamCloseLabels {
                        listener: shared.listener.to_string(),
                        reason: failure.reason().to_owned(),
                    })
                    .inc();
                return;
            }
        };
        // Serve the protocol ALPN agreed on (RFC 9113 §3.2: h2 over TLS is chosen by
        // ALPN, not by sniffing the preface); without ALPN, detect it as on plaintext.
        match stream.get_ref().1.alpn_protocol() {
            Some(b"h2") => {
                state.http2.store(true, Ordering::Relaxed);
                builder = builder.http2_only();
            }
            Some(b"http/1.1") => builder = builder.http1_only(),
            _ => {}
        }
        state.ready();
        let guard = AbortOnDrop(tokio::spawn(guard.run()));
        serve_http(&builder, stream, shared, &shutdown, drain).await;
        drop(guard);
    }
}

/// Serves HTTP on an established client connection until it closes, then runs the
/// tunnel of an upgraded request, if one was answered with 101.
///
/// `drain` fires when the gateway shuts down: hyper's graceful shutdown then sends
/// HTTP/2 a GOAWAY (HTTP/1.1: no more keep-alive), lets the requests in flight finish,
/// flushes their last frames and closes. (Found by tests/listener.rs: closing the socket
/// as soon as the last response body had been handed to hyper lost HTTP/2 frames hyper
/// had not written yet, and sent no GOAWAY.)
async fn serve_http<S>(
    builder: &auto::Builder<TokioExecutor>,
    stream: S,
    shared: ConnShared,
    shutdown: &CancellationToken,
    drain: tokio::sync::oneshot::Receiver<()>,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let state = shared.conn.clone();
    let io = TokioIo::new(WatchedStream {
        inner: stream,
        state: state.clone(),
    });
    let shared = Arc::new(shared);
    let svc = service_fn(move |req| edge::handle(req, shared.clone()));
    // With upgrades: after a 101 hyper hands the socket to the request's `OnUpgrade`
    // (which the tunnel awaits) and this future ends.
    let conn = builder.serve_connection_with_upgrades(io, svc);
    let mut conn = std::pin::pin!(conn);
    // Biased: the connection is polled first, and the signal (a oneshot: no lock, no
    // timer) only when the connection has nothing to do.
    tokio::select! {
        biased;
        _ = conn.as_mut() => {}
        Ok(()) = drain => {
            conn.as_mut().graceful_shutdown();
            let _ = conn.await;
        }
    }
    if let Some(tunnel) = state.take_tunnel() {
        tokio::select! {
            () = tunnel => {}
            () = async {
                shutdown.cancelled().await;
                tokio::time::sleep(TUNNEL_DRAIN_GRACE).await;
            } => tracing::debug!("Shutting down: tunnel closed after its grace."),
        }
        state.end_request();
    }
}

/// Aborts the task when dropped.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Splits a stream into itself and a second handle to the same socket.
fn duplicate(stream: TcpStream) -> io::Result<(TcpStream, std::net::TcpStream)> {
    let std = stream.into_std()?;
    let handle = std.try_clone()?;
    Ok((TcpStream::from_std(std)?, handle))
}

/// Watches one client connection's timers and the shutdown signal, and closes the socket
/// when one of them says so.
struct Guard {
    /// Tells the connection's task to shut down gracefully.
    graceful: tokio::sync::oneshot::Sender<()>,
    state: Arc<ConnState>,
    settings: ListenerSettings,
    socket: GuardSocket,
    metrics: Arc<Metrics>,
    listener: String,
    shutdown: CancellationToken,
}

impl Guard {
    async fn run(self) {
        let Guard {
            graceful,
            state,
            settings,
            socket,
            metrics,
            listener,
            shutdown,
        } = self;
        let count = |reason: CloseReason| {
            metrics
                .downstream_closed
                .get_or_create(&DownstreamCloseLabels {
                    listener: listener.clone(),
                    reason: reason.as_str().to_owned(),
                })
                .inc();
        };
        let drain = async {
            // Graceful: hyper stops taking requests (HTTP/2: GOAWAY), responses in flight
            // finish (HTTP/1.1 ones say `connection: close`) and hyper closes the
            // connection itself, which ends this task. The watchdog still cuts requests
            // that stall past their deadline; once none is left, a connection that has not
            // closed within FLUSH_GRACE is shut from here.
            state.draining.store(true, Ordering::Release);
            let _ = graceful.send(());
            tokio::select! {
                () = async {
                    // Looked at again after the grace: an HTTP/2 client may still open
                    // a stream below the GOAWAY's last stream id meanwhile.
                    loop {
                        while state.in_flight.load(Ordering::Acquire) > 0 {
                            state.wake.notified().await;
                        }
                        tokio::time::sleep(FLUSH_GRACE).await;
                        if state.in_flight.load(Ordering::Acquire) == 0 {
                            break;
                        }
                    }
                } => {}
                reason = watchdog(&state, &settings) => count(reason),
            }
        };
        tokio::select! {
            reason = watchdog(&state, &settings) => count(reason),
            // A shutdown, or an HTTP/2 `close` fault: the same graceful end, for the whole
            // gateway or for this connection.
            () = async {
                tokio::select! {
                    () = shutdown.cancelled() => {}
                    () = state.close_asked.notified() => {}
                }
            } => drain.await,
        }
        // Ends hyper's pending read with EOF; it then closes the connection.
        let _ = socket.socket.shutdown(std::net::Shutdown::Both);
    }
}

/// The guard's handle to the client's socket. Dropped when the connection's task ends,
/// after hyper closed its own handle, so this close is the one that ends the TCP
/// connection: with a `reset` fault's flag up, `SO_LINGER` 0 first makes it an RST
/// instead of a FIN. (A socket option, so it applies whichever handle sets it.)
struct GuardSocket {
    socket: std::net::TcpStream,
    state: Arc<ConnState>,
}

impl Drop for GuardSocket {
    fn drop(&mut self) {
        if self.state.reset.load(Ordering::Acquire) {
            let _ = socket2::SockRef::from(&self.socket).set_linger(Some(Duration::ZERO));
        }
    }
}

async fn watchdog(state: &ConnState, settings: &ListenerSettings) -> CloseReason {
    loop {
        match state.check(settings) {
            Err(reason) => return reason,
            Ok(next) => sleep_until(next).await,
        }
    }
}

/// How often a connection's watchdog looks at it: a quarter of the shorter timeout, so
/// either fires at most 25% late, between 5 ms and 1 s.
fn watchdog_tick(s: &ListenerSettings) -> Duration {
    (s.header_read_timeout.min(s.idle_timeout) / 4)
        .clamp(Duration::from_millis(5), Duration::from_secs(1))
}

/// Answers a connection over the limit with 503 and closes it, without reading from it.
async fn reject(mut stream: TcpStream) {
    const BODY: &str = "503 overloaded: the gateway is at max_connections\n";
    let response = format!(
        "HTTP/1.1 503 Service Unavailable\r\ncontent-type: text/plain\r\nseawall-error: overloaded\r\nconnection: close\r\ncontent-length: {}\r\n\r\n{BODY}",
        BODY.len()
    );
    let _ = tokio::time::timeout(Duration::from_secs(1), async {
        let _ = stream.write_all(response.as_bytes()).await;
        let _ = stream.shutdown().await;
    })
    .await;
}

/// Binds a listener socket. `SO_REUSEADDR` lets a restarted gateway bind at once.
pub fn bind(addr: SocketAddr) -> io::Result<TcpListener> {
    let socket = if addr.is_ipv4() {
        tokio::net::TcpSocket::new_v4()?
    } else {
        tokio::net::TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(4096)
}
