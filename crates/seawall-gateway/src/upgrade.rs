//! HTTP/1.1 protocol upgrades (WebSocket): the request passes through, and on a `101
//! Switching Protocols` the two sockets are spliced into a byte tunnel.
//!
//! What differs from an ordinary request, and why:
//! - `Connection: upgrade` and `Upgrade` are hop-by-hop, but an upgrade is exactly the
//!   case where the proxy re-sends them to the next hop (RFC 9110 §7.8): they are stripped
//!   like every hop-by-hop header, then put back (`forwarding::restore_upgrade`), in both
//!   directions.
//! - The upstream connection is *dedicated* ([`seawall_pool::Pool::connect_dedicated`]):
//!   opened through the pool's connect and TLS path (its timeouts, metrics and endpoint
//!   slot apply), built with hyper's upgrade support, and never returned to the pool; it
//!   closes with reason `upgraded` when the tunnel (or a refused exchange) ends.
//! - Policies: the request is routed and runs the route's middleware (rate limits
//!   included) like any other; the try is gated by the upstream's breaker and its
//!   endpoint picked by the balancer, with the outcome at the response head fed to both.
//!   It is never retried and never hedged (a WebSocket handshake is not something to send
//!   twice), takes no bulkhead slot (a tunnel can live for hours), and gets no fallback.
//! - The route's `timeout` bounds the handshake only. The tunnel is bounded by the
//!   upstream's `timeouts.upgrade_idle` (no bytes either way for that long closes it),
//!   and by shutdown: the listener closes tunnels a short grace after shutdown begins
//!   (`listener::TUNNEL_DRAIN_GRACE`).
//!
//! The tunnel itself runs in the client connection's task once hyper hands the socket
//! over (`ConnState::open_tunnel`), so it counts as that connection (`max_connections`,
//! the open-connections gauge) and as a request in flight (the listener's header-read and
//! idle timers leave it alone; a graceful shutdown waits for it).
//!
//! Only HTTP/1.1 client connections upgrade, and only to an upstream that speaks HTTP/1.1
//! (one that picks `h2` by ALPN fails the upgrade with `upstream_protocol`). HTTP/2's
//! extended CONNECT (RFC 8441, WebSockets over h2) is not supported on either side: from
//! a client it is refused like any CONNECT.

use std::{
    io,
    pin::Pin,
    sync::atomic::{AtomicU64, Ordering},
    task::{Context, Poll},
    time::Duration,
};

use http::{Request, Response, StatusCode, Version, header};
use http_body_util::BodyExt;
use hyper::{body::Incoming, upgrade::OnUpgrade};
use hyper_util::rt::TokioIo;
use seawall_core::{Body, BoxError, ErrorKind, GatewayError};
use tokio::{
    io::{AsyncRead, AsyncWrite, ReadBuf},
    time::{Instant, sleep_until, timeout_at},
};

use crate::{
    body::Outgoing,
    context::{RequestContext, UpstreamUse},
    forwarding::{
        prepare_client_response, prepare_upstream_request, restore_upgrade, strip_hop_by_hop,
    },
    runtime::Upstream,
};

/// True for an HTTP/1.1 request asking to switch to WebSocket: `Connection` lists the
/// `upgrade` token and `Upgrade` is `websocket`.
///
/// Only WebSocket is tunnelled. Any other protocol, `h2c` above all, would let a client
/// talk to the upstream past routing, middleware and rate limits for the rest of the
/// connection (h2c smuggling); such a request is forwarded as an ordinary one, its
/// `Upgrade` stripped as hop-by-hop, which RFC 9110 §7.8 allows ("a server MAY ignore a
/// received Upgrade header field").
pub fn requested<B>(req: &Request<B>) -> bool {
    req.version() == Version::HTTP_11
        && req
            .headers()
            .get(header::UPGRADE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.trim().eq_ignore_ascii_case("websocket"))
        && req
            .headers()
            .get_all(header::CONNECTION)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .any(|token| token.trim().eq_ignore_ascii_case("upgrade"))
}

/// Forwards an upgrade request (see [`requested`]) on a dedicated upstream connection.
///
/// On a 101 the response to the client is the upstream's 101 (hop-by-hop headers removed,
/// the upgrade ones kept) and the tunnel is handed to the client connection, which runs
/// it once the 101 is written. Any other answer is forwarded as an ordinary response.
pub async fn forward(
    upstream: &Upstream,
    mut req: Request<Body>,
    cx: &mut RequestContext,
) -> Result<Response<Outgoing>, GatewayError> {
    // Taken before the request goes upstream: it is the client side of the tunnel.
    let downstream = hyper::upgrade::on(&mut req);
    let mut resp = gated_exchange(upstream, req, cx).await?;
    if resp.status() != StatusCode::SWITCHING_PROTOCOLS {
        return Ok(refused(resp));
    }
    let upstream_side = hyper::upgrade::on(&mut resp);
    let (mut head, _) = resp.into_parts();
    let protocol = head.headers.get(header::UPGRADE).cloned();
    strip_hop_by_hop(&mut head.headers);
    if let Some(protocol) = protocol {
        restore_upgrade(&mut head.headers, protocol);
    }
    let idle = upstream.config.timeouts.upgrade_idle.get();
    let name = upstream.name.clone();
    cx.conn
        .open_tunnel(Box::pin(tunnel(downstream, upstream_side, idle, name)));
    cx.tunnel_opened = true;
    Ok(Response::from_parts(
        head,
        Outgoing::Local {
            body: Body::default(),
        },
    ))
}

/// The one try: breaker admission, the balancer's pick, the exchange up to the response
/// head, and its outcome fed back to both (as `policy::try_once` does for other requests).
async fn gated_exchange(
    upstream: &Upstream,
    req: Request<Body>,
    cx: &mut RequestContext,
) -> Result<Response<Incoming>, GatewayError> {
    let permit = match &upstream.breaker {
        Some(b) => Some(b.admit(Instant::now(), cx.deadline)?),
        None => None,
    };
    let Some(lease) = upstream.picker.pick(None) else {
        if let Some(p) = permit {
            p.release();
        }
        return Err(GatewayError::new(
            ErrorKind::NoEndpoint,
            format!("upstream `{}` has no endpoints", upstream.name),
        ));
    };
    let result = exchange(upstream, lease.index(), req, cx).await;
    let (status, kind) = match &result {
        Ok(resp) => (resp.status().as_u16(), None),
        Err(e) => (e.kind.status().as_u16(), Some(e.kind)),
    };
    if kind == Some(ErrorKind::ClientClosed) {
        // Says nothing about the upstream.
        if let Some(p) = permit {
            p.release();
        }
        drop(lease);
    } else {
        if let Some(p) = permit {
            p.record(status, kind);
        }
        lease.finish(status, kind);
    }
    result
}

/// A refused upgrade: an ordinary response, whose connection closes once the body is done.
fn refused(mut resp: Response<Incoming>) -> Response<Outgoing> {
    prepare_client_response(resp.headers_mut());
    resp.map(|body| Outgoing::Local {
        body: body
            .map_err(|e| {
                Box::new(GatewayError::new(
                    ErrorKind::UpstreamReset,
                    format!("upstream body: {e}"),
                )) as BoxError
            })
            .boxed(),
    })
}

/// Opens the dedicated connection and sends the request with its upgrade headers, up to
/// the response head (bounded by `timeouts.response_header` and the deadline).
async fn exchange(
    upstream: &Upstream,
    index: usize,
    mut req: Request<Body>,
    cx: &mut RequestContext,
) -> Result<Response<Incoming>, GatewayError> {
    let conn = upstream
        .pool
        .connect_dedicated(index, cx.deadline)
        .await
        .map_err(|e| {
            cx.upstream = e.endpoint.map(UpstreamUse::unconnected);
            GatewayError::new(e.kind, e.to_string())
        })?;
    cx.upstream = Some(UpstreamUse {
        endpoint: conn.endpoint(),
        reused: false,
        connection: Some(conn.id()),
    });
    let protocol = req.headers().get(header::UPGRADE).cloned();
    let now = Instant::now();
    prepare_upstream_request(
        &mut req,
        cx.client,
        cx.conn.is_tls(),
        cx.deadline.saturating_duration_since(now),
        conn.endpoint(),
    );
    if let Some(protocol) = protocol {
        restore_upgrade(req.headers_mut(), protocol);
    }
    let send = conn.send(req);
    let result = match upstream.response_header_timeout {
        Some(rh) if now + rh < cx.deadline => match timeout_at(now + rh, send).await {
            Ok(r) => r,
            Err(_) => {
                return Err(GatewayError::new(
                    ErrorKind::ResponseHeaderTimeout,
                    format!("no response head from {} within {rh:?}", upstream.name),
                ));
            }
        },
        _ => send.await,
    };
    result.map_err(|e| GatewayError::new(e.kind, e.to_string()))
}

/// The tunnel: waits for hyper to hand over both sockets, then copies bytes both ways
/// until either side closes or nothing moves for `idle`. Dropping it (shutdown) closes
/// both sockets.
async fn tunnel(downstream: OnUpgrade, upstream: OnUpgrade, idle: Duration, name: String) {
    let (client, server) = match tokio::try_join!(downstream, upstream) {
        Ok(pair) => pair,
        Err(error) => {
            tracing::debug!(upstream = %name, %error, "Upgrade not completed; closing both sides.");
            return;
        }
    };
    let activity = Activity::new();
    let mut client = Stamped {
        inner: TokioIo::new(client),
        activity: &activity,
    };
    let mut server = Stamped {
        inner: TokioIo::new(server),
        activity: &activity,
    };
    let copy = tokio::io::copy_bidirectional(&mut client, &mut server);
    let mut copy = std::pin::pin!(copy);
    loop {
        let last = activity.last();
        tokio::select! {
            result = copy.as_mut() => {
                match result {
                    Ok((up, down)) => tracing::debug!(upstream = %name, bytes_to_upstream = up, bytes_to_client = down, "Tunnel closed."),
                    Err(error) => tracing::debug!(upstream = %name, %error, "Tunnel failed."),
                }
                return;
            }
            () = sleep_until(activity.at(last) + idle) => {
                if activity.last() == last {
                    tracing::debug!(upstream = %name, ?idle, "Tunnel idle for timeouts.upgrade_idle; closing it.");
                    return;
                }
            }
        }
    }
}

/// When bytes last moved through a tunnel, in microseconds since it started.
struct Activity {
    base: Instant,
    last: AtomicU64,
}

impl Activity {
    fn new() -> Self {
        Self {
            base: Instant::now(),
            last: AtomicU64::new(0),
        }
    }

    fn touch(&self) {
        let now = u64::try_from(self.base.elapsed().as_micros()).unwrap_or(u64::MAX);
        self.last.store(now, Ordering::Relaxed);
    }

    fn last(&self) -> u64 {
        self.last.load(Ordering::Relaxed)
    }

    fn at(&self, micros: u64) -> Instant {
        self.base + Duration::from_micros(micros)
    }
}

/// One side of the tunnel, stamping [`Activity`] on every read. (Every write follows a
/// read of the other side, so reads are enough.)
struct Stamped<'a, S> {
    inner: S,
    activity: &'a Activity,
}

impl<S: AsyncRead + Unpin> AsyncRead for Stamped<'_, S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let result = Pin::new(&mut self.inner).poll_read(cx, buf);
        if buf.filled().len() > before {
            self.activity.touch();
        }
        result
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Stamped<'_, S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn request(headers: &[(&str, &str)], version: Version) -> Request<()> {
        let mut b = Request::builder().uri("/ws").version(version);
        for (k, v) in headers {
            b = b.header(*k, *v);
        }
        b.body(()).unwrap()
    }

    #[test]
    fn an_upgrade_needs_both_headers_on_http11() {
        let both = [
            ("connection", "keep-alive, Upgrade"),
            ("upgrade", "websocket"),
        ];
        assert!(requested(&request(&both, Version::HTTP_11)));
        assert!(!requested(&request(&both, Version::HTTP_2)));
        assert!(!requested(&request(&both, Version::HTTP_10)));
        assert!(!requested(&request(
            &[("upgrade", "websocket")],
            Version::HTTP_11
        )));
        assert!(!requested(&request(
            &[("connection", "upgrade")],
            Version::HTTP_11
        )));
        assert!(!requested(&request(
            &[("connection", "upgraded"), ("upgrade", "websocket")],
            Version::HTTP_11
        )));
    }

    #[test]
    fn restored_headers_are_exactly_connection_upgrade_and_the_protocol() {
        let mut h = http::HeaderMap::new();
        h.insert(
            header::CONNECTION,
            HeaderValue::from_static("Upgrade, x-hop"),
        );
        h.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
        h.insert("x-hop", HeaderValue::from_static("1"));
        h.insert("sec-websocket-key", HeaderValue::from_static("k"));
        let protocol = h[header::UPGRADE].clone();
        strip_hop_by_hop(&mut h);
        restore_upgrade(&mut h, protocol);
        assert_eq!(h[header::CONNECTION], "upgrade");
        assert_eq!(h[header::UPGRADE], "websocket");
        assert_eq!(h["sec-websocket-key"], "k");
        assert!(!h.contains_key("x-hop"));
    }
}
