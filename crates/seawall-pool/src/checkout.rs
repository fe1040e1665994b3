//! Checking a connection out ([`Pool::checkout`]), using it ([`Pooled::send`]) and giving
//! it back (`Lease::release`).
//!
//! Checkout order: the warmest usable idle connection; else a free slot and a new
//! connection; else wait (bounded by `checkout_timeout` and the request deadline) for
//! either of those to appear. The pool never connects speculatively and never retries:
//! every connect attempt belongs to exactly one checkout, so connect metrics and errors
//! map one-to-one onto requests.
//!
//! Return: a connection goes back to the idle stack only after its response body reached
//! end-of-stream *and* hyper reports the `SendRequest` ready for the next request. If
//! hyper is not ready yet at end-of-stream (its driver task has not caught up), a small
//! task waits for readiness, bounded by `idle_timeout`. Every other ending — the send
//! future dropped, the body dropped early, an error — drops the connection, which closes
//! it (see `connection`).

use std::fmt;
use std::net::SocketAddr;
use std::pin::pin;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use seawall_core::{Body, ErrorKind};
use tokio::time::Instant;

use crate::body::PooledBody;
use crate::connection::{self, Conn, Slot};
use crate::endpoint::Endpoint;
use crate::error::{PoolError, SendError, classify};
use crate::metrics::CloseReason;
use crate::multiplex::{self, H2Stream};
use crate::options::Protocol;
use crate::pool::Pool;

impl Pool {
    /// Checks out a connection to `self.endpoints()[endpoint]`.
    ///
    /// Waits at most `checkout_timeout` for a busy endpoint (→ `PoolExhausted`) and
    /// `connect_timeout` for the connect (→ `ConnectTimeout`); both waits also end at
    /// `deadline` (→ `DeadlineExceeded`). A deadline already passed fails at once. An index
    /// out of range fails with `NoEndpoint`.
    ///
    /// For a TLS upstream the new connection is handshaken before it is returned, bounded
    /// by `handshake_timeout` and `deadline` (see [`crate::classify_tls`] for its errors).
    /// A successful checkout's duration goes to `PhaseMetrics::checkout_wait`.
    pub async fn checkout(&self, endpoint: usize, deadline: Instant) -> Result<Pooled, PoolError> {
        let endpoints = &self.shared().endpoints;
        let Some(endpoint) = endpoints.get(endpoint) else {
            return Err(PoolError::no_endpoint(endpoint, endpoints.len()));
        };
        let started = Instant::now();
        let pooled = checkout_from(endpoint, started, deadline).await?;
        endpoint
            .common
            .options
            .metrics
            .checkout_wait
            .observe(started.elapsed().as_secs_f64());
        Ok(pooled)
    }
}

async fn checkout_from(
    endpoint: &Arc<Endpoint>,
    now: Instant,
    deadline: Instant,
) -> Result<Pooled, PoolError> {
    if deadline <= now {
        return Err(PoolError::deadline(endpoint.addr, "checking out"));
    }
    if endpoint.common.is_closed() {
        return Err(PoolError::drained(endpoint.addr));
    }
    // The multiplexed and connect paths are boxed: their state machines (TLS and h2
    // handshakes) are several KiB, and unboxed they would widen every request's future,
    // which the server moves by value, even on the HTTP/1.1 reuse path that never runs them.
    let protocol = endpoint.common.protocol;
    if protocol != Protocol::Http1
        && !endpoint.h2.speaks_http1()
        && let Some(pooled) = Box::pin(multiplex::checkout(endpoint, now, deadline)).await?
    {
        return Ok(pooled);
    }
    // Fast path: no waiter registration, one short lock.
    if let Some(conn) = endpoint.pop_idle(now) {
        return Ok(Pooled::new(conn, endpoint, true, deadline));
    }
    let slot = match endpoint.try_slot() {
        Some(slot) => slot,
        None => match wait(endpoint, now, deadline).await? {
            Acquired::Idle(conn) => return Ok(Pooled::new(conn, endpoint, true, deadline)),
            Acquired::Slot(slot) => slot,
        },
    };
    if protocol == Protocol::Auto {
        // ALPN may still pick HTTP/2 on this connection.
        return Box::pin(multiplex::connect_auto(endpoint, slot, deadline)).await;
    }
    let conn = Box::pin(connection::connect(endpoint, slot, deadline)).await?;
    Ok(Pooled::new(conn, endpoint, false, deadline))
}

enum Acquired {
    Idle(Conn),
    Slot(Slot),
}

/// Waits for an idle connection or a free slot on a full endpoint.
async fn wait(
    endpoint: &Arc<Endpoint>,
    start: Instant,
    deadline: Instant,
) -> Result<Acquired, PoolError> {
    let settings = &endpoint.common.settings;
    let checkout_limit = start + settings.checkout_timeout;
    let limit = checkout_limit.min(deadline);
    let mut notified = pin!(endpoint.notify.notified());
    loop {
        // Register as a waiter *before* looking, so a release between the look and the
        // await still wakes us.
        notified.as_mut().enable();
        // A drain while waiting: the freed slot must not open a connection to a removed
        // address.
        if endpoint.common.is_closed() {
            return Err(PoolError::drained(endpoint.addr));
        }
        if let Some(conn) = endpoint.pop_idle(Instant::now()) {
            return Ok(Acquired::Idle(conn));
        }
        if let Some(slot) = endpoint.try_slot() {
            return Ok(Acquired::Slot(slot));
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

/// Counts a checked-out connection in the endpoint and the gauge until dropped.
pub(crate) struct InUse {
    pub(crate) endpoint: Arc<Endpoint>,
}

impl InUse {
    fn new(endpoint: &Arc<Endpoint>) -> Self {
        endpoint.in_use.fetch_add(1, Ordering::Relaxed);
        endpoint.common.metrics.in_use.inc();
        Self {
            endpoint: Arc::clone(endpoint),
        }
    }
}

impl Drop for InUse {
    fn drop(&mut self) {
        self.endpoint.in_use.fetch_sub(1, Ordering::Relaxed);
        self.endpoint.common.metrics.in_use.dec();
    }
}

/// A checked-out connection, in whatever phase. Dropping it closes the connection with the
/// reason in `conn.on_drop`, which each phase keeps current.
pub(crate) struct Lease {
    pub(crate) conn: Conn,
    pub(crate) in_use: InUse,
}

impl Lease {
    /// Gives the connection back after a complete exchange (see the module doc), unless it
    /// reached `max_requests_per_connection` or `max_lifetime`.
    pub(crate) fn release(self) {
        let Lease { mut conn, in_use } = self;
        conn.state.lease.disarm();
        if let Some(reason) = in_use.endpoint.retire_reason(&conn, Instant::now()) {
            conn.close(reason);
            return;
        }
        if conn.sender.is_ready() {
            in_use.endpoint.push_idle(conn);
            return;
        }
        if conn.sender.is_closed() {
            // The peer ended it (e.g. `Connection: close`); the driver attributes it.
            conn.discard();
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            conn.close(CloseReason::Shutdown);
            return;
        };
        let bound = in_use.endpoint.common.settings.idle_timeout;
        // The task is only ever dropped unfinished when the runtime shuts down.
        conn.on_drop = Some(CloseReason::Shutdown);
        runtime.spawn(async move {
            match tokio::time::timeout(bound, conn.sender.ready()).await {
                Ok(Ok(())) => in_use.endpoint.push_idle(conn),
                Ok(Err(_)) => conn.discard(),
                Err(_) => conn.close(CloseReason::Error),
            }
            drop(in_use);
        });
    }
}

/// A checked-out connection, ready for one request: an HTTP/1.1 connection of its own, or
/// a stream on a shared HTTP/2 connection.
///
/// Dropping it without sending closes an HTTP/1.1 connection (reason `cancelled`): the
/// pool cannot tell an abandoned checkout from an abandoned request. An HTTP/2 stream is
/// just given back.
pub struct Pooled {
    lease: Leased,
    reused: bool,
}

/// What a checkout holds.
pub(crate) enum Leased {
    H1(Lease),
    H2(H2Stream),
}

impl Pooled {
    fn new(mut conn: Conn, endpoint: &Arc<Endpoint>, reused: bool, deadline: Instant) -> Self {
        conn.on_drop = Some(CloseReason::Cancelled);
        // The driver closes the connection if this lease outlives the request.
        conn.state.lease.arm(endpoint.common.epoch, deadline);
        Self {
            lease: Leased::H1(Lease {
                conn,
                in_use: InUse::new(endpoint),
            }),
            reused,
        }
    }

    pub(crate) fn h1(
        conn: Conn,
        endpoint: &Arc<Endpoint>,
        reused: bool,
        deadline: Instant,
    ) -> Self {
        Self::new(conn, endpoint, reused, deadline)
    }

    pub(crate) fn h2(stream: H2Stream, reused: bool) -> Self {
        Self {
            lease: Leased::H2(stream),
            reused,
        }
    }

    /// The endpoint this connection is to.
    pub fn endpoint(&self) -> SocketAddr {
        match &self.lease {
            Leased::H1(lease) => lease.in_use.endpoint.addr,
            Leased::H2(stream) => stream.endpoint.addr,
        }
    }

    /// True if the connection served a request before (HTTP/1.1: it came from the idle
    /// stack; HTTP/2: the stream is not the first on its connection).
    pub fn is_reused(&self) -> bool {
        self.reused
    }

    /// True if the request goes out as a stream on an HTTP/2 connection: it must then carry
    /// its authority in the URI (`:authority`), not in `Host`.
    pub fn is_http2(&self) -> bool {
        matches!(self.lease, Leased::H2(_))
    }

    /// The connection's id, unique within the pool; for logs.
    pub fn id(&self) -> u64 {
        match &self.lease {
            Leased::H1(lease) => lease.conn.id(),
            Leased::H2(stream) => stream.conn.state.id,
        }
    }

    /// Sends the request and waits for the response head.
    ///
    /// The request must be in origin form with a `Host` header; hyper writes it as is.
    /// Not bounded by time here: the caller wraps it in its response-header timeout or the
    /// deadline. Dropping the future closes the connection (reason `cancelled`) and frees
    /// its slot. On success the connection travels inside the [`PooledBody`], and the time
    /// to the response head goes to `PhaseMetrics::response_head_duration`.
    pub async fn send(
        self,
        request: http::Request<Body>,
    ) -> Result<http::Response<PooledBody>, SendError> {
        let Pooled { lease, reused } = self;
        let mut lease = match lease {
            Leased::H1(lease) => lease,
            Leased::H2(stream) => return send_h2(stream, reused, request).await,
        };
        let common = &lease.in_use.endpoint.common;
        if reused {
            common.metrics.reused.inc()
        } else {
            common.metrics.fresh.inc()
        };
        lease.conn.requests += 1;
        let started = Instant::now();
        match lease.conn.sender.try_send_request(request).await {
            Ok(response) => {
                common
                    .options
                    .metrics
                    .response_head_duration
                    .observe(started.elapsed().as_secs_f64());
                lease.conn.on_drop = Some(CloseReason::BodyIncomplete);
                Ok(response.map(|body| PooledBody::new(body, lease)))
            }
            Err(mut error) => {
                let unsent_request = error.take_message();
                let source = error.into_error();
                let kind = if common.abort.is_cancelled() {
                    // A drain's grace ended and the pool dropped the connection under the
                    // request: hyper reports its own dispatcher gone (a "user" error), but
                    // for the request this is the connection dying mid-exchange.
                    ErrorKind::UpstreamReset
                } else {
                    classify(&source)
                };
                lease.conn.on_drop = Some(if unsent_request.is_some() {
                    // hyper refused before writing: the peer had already closed it.
                    CloseReason::PeerClosed
                } else if matches!(kind, ErrorKind::UpstreamReset | ErrorKind::UpstreamProtocol) {
                    CloseReason::Error
                } else {
                    // The request body failed (client side): the exchange was abandoned.
                    CloseReason::Cancelled
                });
                Err(SendError {
                    kind,
                    reused,
                    endpoint: lease.in_use.endpoint.addr,
                    source,
                    unsent_request,
                })
            }
        }
    }
}

/// Sends the request as a stream on a shared HTTP/2 connection. Whatever happens, the
/// connection stays with the pool: a failed or cancelled stream is reset by hyper, and a
/// failed connection is noticed by its driver.
async fn send_h2(
    stream: H2Stream,
    reused: bool,
    request: http::Request<Body>,
) -> Result<http::Response<PooledBody>, SendError> {
    let common = &stream.endpoint.common;
    if reused {
        common.metrics.reused.inc()
    } else {
        common.metrics.fresh.inc()
    };
    let started = Instant::now();
    match stream.sender().try_send_request(request).await {
        Ok(response) => {
            common
                .options
                .metrics
                .response_head_duration
                .observe(started.elapsed().as_secs_f64());
            Ok(response.map(|body| PooledBody::h2(body, stream)))
        }
        Err(mut error) => {
            let unsent_request = error.take_message();
            let source = error.into_error();
            let kind = if common.abort.is_cancelled() {
                ErrorKind::UpstreamReset
            } else {
                classify(&source)
            };
            Err(SendError {
                kind,
                reused,
                endpoint: stream.endpoint.addr,
                source,
                unsent_request,
            })
        }
    }
}

impl fmt::Debug for Pooled {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pooled")
            .field("endpoint", &self.endpoint())
            .field("id", &self.id())
            .field("reused", &self.reused)
            .finish()
    }
}
