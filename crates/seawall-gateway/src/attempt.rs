//! One attempt to get a response from an upstream, with its layered timeouts.
//!
//! The layers, from the outside in:
//! 1. the request deadline (applied by `crate::edge` around the whole chain, and by the
//!    response body while streaming) → `deadline_exceeded`;
//! 2. pool checkout wait, bounded by `checkout_timeout` → `pool_exhausted`;
//! 3. TCP connect, bounded by `timeouts.connect` → `connect_timeout`;
//! 4. for a TLS upstream, the handshake, bounded by `timeouts.tls_handshake` →
//!    `tls_handshake_timeout` (a failed one is `tls_error`);
//! 5. response head, bounded by `timeouts.response_header` → `response_header_timeout`.
//!
//! Steps 3 and 4 happen inside the pool's checkout, and only for a new connection.
//!
//! On an HTTP/2 upstream connection the request goes out in HTTP/2 form
//! (`forwarding::into_http2`): authority and scheme in the URI, `te: trailers` kept.
//!
//! Each inner timeout only applies when it would fire before the deadline; otherwise the
//! deadline fires first and is what gets reported. The policies (`crate::policy`) wrap this
//! function, one call per try: they pick the endpoint, and `cx.deadline` is the try's
//! deadline while it runs.

use std::{
    pin::{Pin, pin},
    task::{Context, Poll, ready},
};

use bytes::Bytes;
use http::{Request, Response, uri::Scheme};
use http_body::{Frame, SizeHint};
use http_body_util::BodyExt;
use seawall_core::{Body, BoxError, ErrorKind, GatewayError};
use tokio::{
    sync::oneshot,
    time::{Instant, timeout_at},
};

use crate::{
    body::Outgoing,
    context::{RequestContext, TraceEntry, UpstreamUse},
    forwarding::{accepts_trailers, into_http2, prepare_client_response, prepare_upstream_request},
    runtime::Upstream,
};

/// Sends `req` to endpoint `index` of `upstream` and returns the response head with its
/// streaming body. When the pool hands the request back unwritten, it is put in `unsent`.
pub async fn attempt(
    upstream: &Upstream,
    index: usize,
    req: Request<Body>,
    cx: &mut RequestContext,
    unsent: &mut Option<Request<Body>>,
) -> Result<Response<Outgoing>, GatewayError> {
    let started = cx.trace.is_some().then(Instant::now);
    let result = attempt_inner(upstream, index, req, cx, unsent).await;
    if let (Some(started), Some(trace)) = (started, cx.trace.as_mut()) {
        let (outcome, mut extra) = match &result {
            Ok(_) => ("ok", String::new()),
            Err(e) => ("error", format!("error={};", e.kind.reason())),
        };
        if let Some(u) = cx.upstream {
            extra.push_str(&format!("endpoint={};reused={}", u.endpoint, u.reused));
            if let Some(id) = u.connection {
                extra.push_str(&format!(";connection={id}"));
            }
        }
        trace.push(TraceEntry::upstream(started.elapsed(), outcome, extra));
    }
    result
}

async fn attempt_inner(
    upstream: &Upstream,
    index: usize,
    mut req: Request<Body>,
    cx: &mut RequestContext,
    unsent: &mut Option<Request<Body>>,
) -> Result<Response<Outgoing>, GatewayError> {
    // A try that fails before a connection exists (connect, TLS handshake) still names
    // its endpoint in the access log; without one known (a DNS entry not resolved yet),
    // an earlier try's endpoint is not left standing.
    cx.upstream = None;
    let pooled = upstream
        .pool
        .checkout(index, cx.deadline)
        .await
        .map_err(|e| {
            cx.upstream = e.endpoint.map(UpstreamUse::unconnected);
            GatewayError::new(e.kind, e.to_string())
        })?;
    cx.upstream = Some(UpstreamUse {
        endpoint: pooled.endpoint(),
        reused: pooled.is_reused(),
        connection: Some(pooled.id()),
    });

    let now = Instant::now();
    let h2 = pooled.is_http2();
    let te_trailers = h2 && accepts_trailers(req.headers());
    prepare_upstream_request(
        &mut req,
        cx.client,
        cx.conn.is_tls(),
        cx.deadline.saturating_duration_since(now),
        pooled.endpoint(),
    );
    if h2 {
        let scheme = if upstream.tls.is_some() {
            Scheme::HTTPS
        } else {
            Scheme::HTTP
        };
        into_http2(&mut req, scheme, pooled.endpoint(), te_trailers);
    }
    // Found by tests/timeouts.rs: the response_header timer used to start before the
    // request body was sent, so an upload slower than `timeouts.response_header` (a
    // large file, a slow client) failed with a 504 blamed on a healthy upstream. The timer
    // now starts once the whole request has been handed to the upstream connection; until
    // then only the deadline and the listener's body_read_timeout bound the wait.
    // (Only watched when there is a timer to start: it costs a box and a channel.)
    let (req, body_sent) = match upstream.response_header_timeout {
        Some(_) => watch_body_end(req),
        None => (req, None),
    };
    let send = pooled.send(req);
    let result = match upstream.response_header_timeout {
        None => send.await,
        Some(rh) => {
            let mut send = pin!(send);
            let had_body = body_sent.is_some();
            let early = match body_sent {
                None => None,
                Some(done) => tokio::select! {
                    biased;
                    // The upstream may answer (or fail) before taking the whole body.
                    r = send.as_mut() => Some(r),
                    _ = done => None,
                },
            };
            match early {
                Some(r) => r,
                None => {
                    let sent = if had_body { Instant::now() } else { now };
                    if sent + rh < cx.deadline {
                        match timeout_at(sent + rh, send).await {
                            Ok(r) => r,
                            Err(_) => {
                                return Err(GatewayError::new(
                                    ErrorKind::ResponseHeaderTimeout,
                                    format!(
                                        "no response head from {} within {rh:?}",
                                        upstream.name
                                    ),
                                ));
                            }
                        }
                    } else {
                        send.await
                    }
                }
            }
        }
    };
    let mut resp = result.map_err(|mut e| {
        *unsent = e.unsent_request.take();
        GatewayError::new(e.kind, e.to_string())
    })?;
    if resp.status() == http::StatusCode::SWITCHING_PROTOCOLS {
        return Err(unsolicited_upgrade(upstream, resp));
    }
    prepare_client_response(resp.headers_mut());
    Ok(resp.map(|body| Outgoing::Upstream { body }))
}

/// A `101 Switching Protocols` here answers a request that asked for no upgrade: upgrades
/// go through `crate::upgrade`, and hop-by-hop removal took any `Upgrade` header off this
/// request. Forwarding it would switch the client's connection to a protocol nobody
/// agreed on (RFC 9110 §15.2.2: a server must not switch unasked), and the upstream
/// connection is in no known state: it is closed, never pooled.
fn unsolicited_upgrade(
    upstream: &Upstream,
    resp: http::Response<seawall_pool::PooledBody>,
) -> GatewayError {
    let to = resp
        .headers()
        .get(http::header::UPGRADE)
        .and_then(|v| v.to_str().ok())
        .map(|v| format!(" (upgrade: {v})"))
        .unwrap_or_default();
    resp.into_body().discard();
    GatewayError::new(
        ErrorKind::UpstreamProtocol,
        format!(
            "upstream `{}` answered 101 Switching Protocols{to} to a request that asked for no upgrade; not forwarded, connection closed",
            upstream.name
        ),
    )
}

/// Wraps a request body that is not already complete so that the returned receiver
/// resolves once its last frame has been handed to the upstream connection (or the body
/// failed or was dropped). `None`: there is no body to wait for.
fn watch_body_end(req: Request<Body>) -> (Request<Body>, Option<oneshot::Receiver<()>>) {
    use http_body::Body as _;
    if req.body().is_end_stream() {
        return (req, None);
    }
    let (tx, rx) = oneshot::channel();
    let req = req.map(|inner| {
        SignalEnd {
            inner,
            done: Some(tx),
        }
        .boxed()
    });
    (req, Some(rx))
}

pin_project_lite::pin_project! {
    /// A request body that signals when its last frame has been taken.
    struct SignalEnd {
        #[pin]
        inner: Body,
        done: Option<oneshot::Sender<()>>,
    }
}

impl http_body::Body for SignalEnd {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let mut this = self.project();
        let frame = ready!(this.inner.as_mut().poll_frame(cx));
        let ended = match &frame {
            None | Some(Err(_)) => true,
            // hyper stops polling a sized body after its last frame, so look now.
            Some(Ok(_)) => this.inner.is_end_stream(),
        };
        if let Some(done) = this.done.take_if(|_| ended) {
            let _ = done.send(());
        }
        Poll::Ready(frame)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
