//! Dedicated connections: opened through the pool's connect path for one HTTP/1.1 upgrade
//! request (a WebSocket), never returned to the idle stack.
//!
//! Why through the pool at all: the connect and TLS handshake then have the same bounds,
//! metrics and errors as every other connection, and the socket holds one of the
//! endpoint's `max_connections_per_endpoint` slots for its whole life, so a burst of
//! WebSockets cannot open more sockets to an endpoint than its cap.
//!
//! Why never pooled: after a `101 Switching Protocols` the socket is no longer HTTP, and
//! the gateway owns it as a byte tunnel until one side closes. So the connection is built
//! with hyper's upgrade support (`Connection::with_upgrades`), which only such connections
//! need, and whatever the upstream answers it carries exactly one exchange.
//!
//! Accounting. The slot, the `in_use` count and the close count ride on the socket itself
//! (the [`Tracked`] wrapper), because after an upgrade the socket leaves hyper's connection
//! task and lives in the `hyper::upgrade::Upgraded` the caller splices: whoever drops the
//! socket last, the slot is freed, `in_use` decremented and the close counted (reason
//! `upgraded`) exactly when the socket is gone. A connect in progress counts in
//! `connecting`, like a checkout's.
//!
//! Waiting for a slot. At the endpoint's cap, an idle pooled connection is closed to make
//! room (it would be reused, but an upgrade cannot use it); otherwise the wait is bounded
//! by `checkout_timeout` and the deadline like a checkout's, with the same errors.

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::pin::{Pin, pin};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::task::{Context, Poll};

use hyper::body::Incoming;
use hyper::client::conn::http1;
use hyper_util::rt::TokioIo;
use seawall_core::{Body, ErrorKind};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::OwnedSemaphorePermit;
use tokio::time::Instant;

use crate::connection::{self, Connecting, Slot, Stream};
use crate::endpoint::Endpoint;
use crate::error::{PoolError, SendError, classify};
use crate::metrics::CloseReason;
use crate::options::Protocol;
use crate::pool::Pool;

impl Pool {
    /// Opens a new connection to `self.endpoints()[endpoint]` for one upgrade request.
    ///
    /// Takes an endpoint slot (waiting like [`Pool::checkout`], bounded by
    /// `checkout_timeout` and `deadline`; at the cap an idle connection is closed to make
    /// room), then connects and, for a TLS upstream, handshakes, with the pool's timeouts
    /// and metrics. The connection never enters the idle stack. Dropping the returned
    /// [`Dedicated`] unsent closes it.
    pub async fn connect_dedicated(
        &self,
        endpoint: usize,
        deadline: Instant,
    ) -> Result<Dedicated, PoolError> {
        let endpoints = &self.shared().endpoints;
        let Some(endpoint) = endpoints.get(endpoint) else {
            return Err(PoolError::no_endpoint(endpoint, endpoints.len()));
        };
        // An HTTP/2 endpoint cannot take an HTTP/1.1 upgrade. Refused before waiting for a
        // slot: its slots free up as h2 streams end, and a waiter here would take the
        // wake-ups that h2 checkouts wait for.
        if endpoint.common.protocol == Protocol::Http2 || endpoint.h2.speaks_http2() {
            return Err(PoolError::new(
                ErrorKind::UpstreamProtocol,
                endpoint.addr,
                "the upstream speaks HTTP/2; an HTTP/1.1 upgrade needs HTTP/1.1".to_owned(),
            ));
        }
        let now = Instant::now();
        if deadline <= now {
            return Err(PoolError::deadline(endpoint.addr, "checking out"));
        }
        // Refused at once rather than queued: upgraded connections free up only when a
        // tunnel ends, which may be hours away.
        let Ok(upgrade) = Arc::clone(&endpoint.upgrades).try_acquire_owned() else {
            return Err(PoolError::new(
                ErrorKind::PoolExhausted,
                endpoint.addr,
                format!(
                    "{} upgraded connections already open (pool.max_upgrades_per_endpoint)",
                    endpoint
                        .common
                        .options
                        .upgrade_slots(endpoint.common.settings.slots())
                ),
            ));
        };
        let slot = slot(endpoint, now, deadline).await?;
        let stream = {
            let _connecting = Connecting::start(endpoint);
            connection::open(endpoint, deadline).await?
        };
        if let Stream::Right(tls) = &stream {
            // An upgrade is HTTP/1.1: an upstream that chose h2 by ALPN (offered when the
            // upstream is configured for HTTP/2) cannot take it on this connection.
            if tls.get_ref().1.alpn_protocol() == Some(b"h2") {
                return Err(PoolError::new(
                    ErrorKind::UpstreamProtocol,
                    endpoint.addr,
                    "the upstream chose HTTP/2 by ALPN; an HTTP/1.1 upgrade needs HTTP/1.1"
                        .to_owned(),
                ));
            }
        }
        establish(endpoint, stream, slot, upgrade).await
    }
}

/// Takes a free slot, closing an idle connection to make room if needed.
async fn slot(
    endpoint: &Arc<Endpoint>,
    start: Instant,
    deadline: Instant,
) -> Result<Slot, PoolError> {
    let settings = &endpoint.common.settings;
    let checkout_limit = start + settings.checkout_timeout;
    let limit = checkout_limit.min(deadline);
    let mut notified = pin!(endpoint.notify.notified());
    loop {
        // Registered before looking, so a slot freed in between still wakes us.
        notified.as_mut().enable();
        if endpoint.common.is_closed() {
            return Err(PoolError::drained(endpoint.addr));
        }
        if let Some(slot) = endpoint.try_slot() {
            return Ok(slot);
        }
        if let Some(idle) = endpoint.pop_idle(Instant::now()) {
            // Its driver frees the slot once the socket is closed, and notifies.
            idle.close(CloseReason::IdleCap);
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

async fn establish(
    endpoint: &Arc<Endpoint>,
    stream: Stream,
    slot: Slot,
    upgrade: OwnedSemaphorePermit,
) -> Result<Dedicated, PoolError> {
    let common = &endpoint.common;
    let id = common.next_id.fetch_add(1, Ordering::Relaxed);
    endpoint.in_use.fetch_add(1, Ordering::Relaxed);
    common.metrics.in_use.inc();
    common.metrics.opened.inc();
    tracing::debug!(upstream = %common.upstream, endpoint = %endpoint.addr, conn = id, "Dedicated upstream connection opened.");
    let io = Tracked {
        inner: stream,
        hold: Hold {
            _slot: slot,
            _upgrade: upgrade,
            endpoint: Arc::clone(endpoint),
            id,
        },
    };
    // For HTTP/1 the handshake does no I/O; it only builds the sender/driver pair.
    let (sender, driver) = http1::Builder::new()
        .handshake::<_, Body>(TokioIo::new(io))
        .await
        .map_err(|error| PoolError::connect(endpoint.addr, io::Error::other(error)))?;
    let abort = common.abort.clone();
    let addr = endpoint.addr;
    tokio::spawn(async move {
        // `with_upgrades`: on a 101 the driver hands the socket to the response's
        // `hyper::upgrade::OnUpgrade` and ends; otherwise it ends with the exchange.
        tokio::select! {
            result = driver.with_upgrades() => {
                if let Err(error) = result {
                    tracing::debug!(endpoint = %addr, conn = id, %error, "Dedicated upstream connection failed.");
                }
            }
            // A drain's grace ended before the exchange did.
            () = abort.cancelled() => {}
        }
    });
    Ok(Dedicated {
        sender,
        id,
        endpoint: Arc::clone(endpoint),
    })
}

/// A connection opened for one upgrade request. Dropping it unsent closes it.
pub struct Dedicated {
    sender: http1::SendRequest<Body>,
    id: u64,
    endpoint: Arc<Endpoint>,
}

impl Dedicated {
    /// The endpoint this connection is to.
    pub fn endpoint(&self) -> SocketAddr {
        self.endpoint.addr
    }

    /// The connection's id, unique within the pool; for logs.
    pub fn id(&self) -> u64 {
        self.id
    }

    /// Sends the request and waits for the response head.
    ///
    /// On a `101 Switching Protocols` take the socket with `hyper::upgrade::on(&mut
    /// response)`; any other response is an ordinary one, and the connection closes once
    /// its body is read or dropped. Not bounded by time here (the caller is). Dropping the
    /// future closes the connection.
    pub async fn send(
        self,
        request: http::Request<Body>,
    ) -> Result<http::Response<Incoming>, SendError> {
        let Dedicated {
            mut sender,
            endpoint,
            ..
        } = self;
        let common = &endpoint.common;
        common.metrics.fresh.inc();
        let started = Instant::now();
        match sender.try_send_request(request).await {
            Ok(response) => {
                common
                    .options
                    .metrics
                    .response_head_duration
                    .observe(started.elapsed().as_secs_f64());
                Ok(response)
            }
            Err(mut error) => {
                let unsent_request = error.take_message();
                let source = error.into_error();
                Err(SendError {
                    kind: classify(&source),
                    reused: false,
                    endpoint: endpoint.addr,
                    source,
                    unsent_request,
                })
            }
        }
    }
}

impl fmt::Debug for Dedicated {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Dedicated")
            .field("endpoint", &self.endpoint.addr)
            .field("id", &self.id)
            .finish()
    }
}

/// What a dedicated socket holds until it is closed: its slot, its `in_use` count, and
/// the close to count.
struct Hold {
    _slot: Slot,
    /// The endpoint's upgrade share, held as long as the socket.
    _upgrade: OwnedSemaphorePermit,
    endpoint: Arc<Endpoint>,
    id: u64,
}

impl Drop for Hold {
    fn drop(&mut self) {
        let common = &self.endpoint.common;
        self.endpoint.in_use.fetch_sub(1, Ordering::Relaxed);
        common.metrics.in_use.dec();
        common.metrics.closed.get(CloseReason::Upgraded).inc();
        tracing::debug!(upstream = %common.upstream, conn = self.id, reason = %CloseReason::Upgraded, "Upstream connection closed.");
        // `_slot` is dropped after this body: the slot is freed last.
    }
}

pin_project_lite::pin_project! {
    /// The socket of a dedicated connection. Fields drop in order: the socket closes
    /// first, then the slot is freed and the close counted.
    struct Tracked {
        #[pin]
        inner: Stream,
        hold: Hold,
    }
}

impl AsyncRead for Tracked {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        self.project().inner.poll_read(cx, buf)
    }
}

impl AsyncWrite for Tracked {
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
