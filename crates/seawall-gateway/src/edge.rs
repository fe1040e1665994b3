//! Where every request enters: routing, the deadline, panic isolation, stall detection,
//! and the hand-off of the response to the client.
//!
//! Order of work, and why:
//! 1. take a config snapshot (`Arc<Runtime>`): the request finishes on the config it started
//!    with, whatever reloads happen meanwhile;
//! 2. strip `seawall-debug` and check its token, and the `seawall-fault-*` headers (kept
//!    in the context for a `fault` layer that allows them), before anything could
//!    forward them;
//! 3. check the request's one authority (400 for a missing, repeated, empty or invalid
//!    `Host`, an authority-form target, or `*` outside `OPTIONS`), route on it (404 when
//!    nothing matches; the target's authority picks a route, never an upstream) and make it
//!    the `Host` that goes upstream;
//! 4. compute the one deadline = min(route timeout, inbound `grpc-timeout` /
//!    `seawall-timeout-ms`);
//! 5. run the chain, then the route's runtime faults (`PUT /faults/{name}` with a
//!    `route`, acting like a last `fault` layer), then the upstream attempt, under that
//!    deadline, inside `catch_unwind`: a panic becomes a 500 for this request only, and a
//!    deadline that fires while a layer holds the request names that layer;
//! 6. run the response phase and wrap the body so that the deadline also bounds streaming
//!    and the outcome is recorded once, when the body ends; a response a `reset` or
//!    `close` fault marked is not sent: the connection or stream ends as it asked
//!    ([`ConnState::end_as_asked`]).

use std::{net::SocketAddr, panic::AssertUnwindSafe, sync::Arc};

use arc_swap::ArcSwap;
use futures_util::FutureExt;
use http::{Method, Request, Response, header};
use http_body::Body as _;
use http_body_util::BodyExt;
use hyper::body::Incoming;
use seawall_core::{Body, ErrorKind, GatewayError, deadline::inbound_budget};
use tokio::time::{Instant, timeout_at};

use crate::{
    body::{Outgoing, RequestBody, ResponseBody},
    chain::{ChainOutcome, Flow, Step},
    context::{RequestContext, Stage, TraceEntry},
    error_response::{self, error_response},
    listener::ConnState,
    middleware::debug::{SEAWALL_DEBUG, token_matches},
    policy::{self, breaker::retry_after_secs},
    routing::{request_authority, routing_host},
    runtime::{Route, Runtime},
    upgrade,
};

/// What every request on one client connection shares.
pub struct ConnShared {
    pub runtime: Arc<ArcSwap<Runtime>>,
    pub listener: Arc<str>,
    pub client: SocketAddr,
    pub conn: Arc<ConnState>,
    /// Answers requests if a reload removed this connection's listener.
    pub fallback: Arc<Route>,
}

/// Handles one request from a client connection. Every failure is a response; the only
/// error is a `reset` or `close` fault's, which makes hyper end the connection (HTTP/1.1)
/// or reset the stream with that error's code (HTTP/2) instead of answering.
///
/// The request is admitted (counted, routed, given its context) *before* the returned future
/// exists: hyper may drop that future without ever polling it when the client closes right
/// after sending, and such a request must still be counted and logged once, as
/// `client_closed`, by the context's guard.
pub fn handle(
    req: Request<Incoming>,
    sh: Arc<ConnShared>,
) -> impl Future<Output = Result<Response<ResponseBody>, h2::Error>> + Send {
    let admitted = admit(req, &sh);
    respond(admitted, sh)
}

/// A request that is counted, routed and carries its context, but has not run yet.
struct Admitted {
    pending: Unanswered,
    route: Arc<Route>,
    req: Request<Body>,
    rejection: Option<GatewayError>,
    version: http::Version,
}

fn admit(req: Request<Incoming>, sh: &ConnShared) -> Admitted {
    sh.conn.begin_request();
    let rt = sh.runtime.load_full();
    let (mut parts, body) = req.into_parts();
    let version = parts.version;

    let debug_authorized = parts
        .headers
        .remove(&SEAWALL_DEBUG)
        .is_some_and(|presented| {
            rt.debug_token
                .as_deref()
                .is_some_and(|t| token_matches(presented.as_bytes(), t))
        });

    let header_fault = crate::faults::header::take(&mut parts.headers);

    let listener = rt.listener(&sh.listener);
    let authority = request_authority(version, &parts.uri, &parts.headers);
    let found = match authority {
        Ok(authority) => listener.and_then(|l| {
            l.router
                .find(routing_host(authority), parts.uri.path())
                .cloned()
        }),
        // A request with a bad Host takes no route's policy: it is answered as unmatched.
        Err(_) => None,
    };
    let host_error = authority.err();
    if host_error.is_none()
        && let Some(authority) = parts.uri.authority()
    {
        // The route was chosen on this authority, so it is the Host the upstream (and every
        // layer) sees, in place of whatever `Host` the client also sent (RFC 9112 §3.2.2).
        // An authority is always a valid header value.
        if let Ok(host) = http::HeaderValue::from_str(authority.as_str()) {
            parts.headers.insert(header::HOST, host);
        }
    }
    let route = found
        .clone()
        .unwrap_or_else(|| listener.map_or_else(|| sh.fallback.clone(), |l| l.unmatched.clone()));
    let settings = listener.map(|l| &l.settings);

    let start = Instant::now();
    let budget = inbound_budget(&parts.headers).map_or(route.timeout, |b| b.min(route.timeout));
    sh.conn.expect_done_by(start + budget);
    let client_body = (!body.is_end_stream()).then(Arc::default);
    let cx = Box::new(RequestContext {
        route: route.clone(),
        listener: sh.listener.clone(),
        method: parts.method.clone(),
        uri: parts.uri.clone(),
        client: sh.client,
        start,
        deadline: start + budget,
        stage: Stage::Edge,
        request_id: None,
        trace: (debug_authorized && route.debug).then(|| Vec::with_capacity(8)),
        debug_authorized,
        upstream: None,
        error: None,
        error_detail: None,
        access_log: route.access_log,
        status: 0,
        conn: sh.conn.clone(),
        rate_limit: None,
        fault: None,
        header_fault,
        throttle: None,
        policy: Default::default(),
        tunnel_opened: false,
        client_body: client_body.clone(),
    });

    let rejection = if let Some(e) = settings.and_then(|s| head_too_large(version, &parts, s)) {
        Some(e)
    } else if let Some(e) = host_error {
        Some(GatewayError::new(ErrorKind::BadRequest, e.detail()))
    } else if let Some(detail) = target_form_error(&parts.method, &parts.uri) {
        Some(GatewayError::new(ErrorKind::BadRequest, detail))
    } else if found.is_none() {
        Some(GatewayError::from(ErrorKind::NoRoute))
    } else if parts.method == Method::CONNECT {
        Some(GatewayError::new(
            ErrorKind::BadRequest,
            "CONNECT is not supported: the gateway is not a forward proxy",
        ))
    } else if let (Some(s), Some(len)) = (settings, content_length(&parts.headers)) {
        (len > s.max_body_bytes).then(|| {
            GatewayError::new(
                ErrorKind::BodyTooLarge,
                format!("content-length {len} exceeds max_body_bytes"),
            )
        })
    } else {
        None
    };

    let body: Body = match client_body {
        None => Body::default(),
        Some(progress) => {
            let (timeout, limit) = settings.map_or((route.timeout, u64::MAX), |s| {
                (s.body_read_timeout, s.max_body_bytes)
            });
            RequestBody::new(body, start + timeout, timeout, limit, progress).boxed()
        }
    };
    // Found by tests/disconnect.rs: hyper drops the handler future when the client goes
    // away before the response head. Without a guard the request then got no access log
    // line and no metrics, and its connection's in-flight count never dropped. The guard
    // finishes it as `client_closed` (499) unless the response is produced.
    Admitted {
        pending: Unanswered(Some(cx)),
        route,
        req: Request::from_parts(parts, body),
        rejection,
        version,
    }
}

async fn respond(
    admitted: Admitted,
    sh: Arc<ConnShared>,
) -> Result<Response<ResponseBody>, h2::Error> {
    let Admitted {
        mut pending,
        route,
        req,
        rejection,
        version,
    } = admitted;
    let grpc = error_response::is_grpc(req.headers());
    let (result, entered) = match rejection {
        Some(e) => (Err(e), 0),
        None => run_guarded(&route, req, pending.cx()).await,
    };
    let mut cx = pending.answered();
    cx.stage = Stage::Responded;
    let resp = match result {
        Ok(resp) => resp,
        Err(e) => {
            cx.fail(e.kind, e.detail);
            let stalled = (e.kind == ErrorKind::LayerStalled).then(|| route.chain.name(entered));
            let mut resp = error_response(e.kind, stalled);
            if let Some(after) = e.retry_after {
                resp.headers_mut()
                    .insert(header::RETRY_AFTER, retry_after_secs(after).into());
            }
            resp
        }
    };
    // A gateway-made error (here, or a layer's refusal) in the shape gRPC clients read.
    let resp = if grpc {
        error_response::grpc_shaped(resp)
    } else {
        resp
    };
    let (mut head, mut body) = resp.into_parts();
    if let Some(fault) = &cx.fault {
        // Any fault in this request, client-facing or upstream-side, marks the response.
        head.headers
            .entry(&crate::faults::FAULT_HEADER)
            .or_insert_with(|| fault.clone());
    }
    if let Some(bps) = cx.throttle {
        body = Outgoing::Local {
            body: crate::faults::throttle::Throttled::new(body, bps).boxed(),
        };
    }
    cx.status = head.status.as_u16();
    // Found by tests/chain.rs: a panic in a layer's `on_response` used to unwind out of
    // this function into hyper's connection task, killing the connection (and every other
    // request on it) with no response, no log line and no metric; the client hung until
    // the connection's idle timer closed the socket. Isolate it like a request-phase
    // panic: this request gets a 500 `internal` (the upstream body is dropped, which
    // closes that upstream connection) and the panic is counted.
    let response_phase = std::panic::catch_unwind(AssertUnwindSafe(|| {
        route.chain.run_response(entered, &mut head, &mut cx)
    }));
    if let Err(panic) = response_phase {
        let message = panic_message(panic.as_ref());
        route.metrics.panic();
        tracing::error!(route = %route.name, panic = %message, "A layer's response phase panicked; answered 500.");
        // The panic decides this request's outcome, whatever happened before.
        cx.error = None;
        cx.fail(
            ErrorKind::Internal,
            format!("panic in response phase: {message}"),
        );
        let resp = error_response(ErrorKind::Internal, None);
        (head, body) = if grpc {
            error_response::grpc_shaped(resp)
        } else {
            resp
        }
        .into_parts();
        cx.status = head.status.as_u16();
    }
    if cx.tunnel_opened && head.status != http::StatusCode::SWITCHING_PROTOCOLS {
        sh.conn.cancel_tunnel();
    }
    // (Not on a 101: its `Connection: upgrade` is what makes it an upgrade; the tunnel is
    // closed by the drain itself.)
    if sh.conn.is_draining()
        && version <= http::Version::HTTP_11
        && head.status != http::StatusCode::SWITCHING_PROTOCOLS
    {
        // Shutting down: this is the connection's last response.
        head.headers
            .insert(header::CONNECTION, http::HeaderValue::from_static("close"));
    }
    let resp = Response::from_parts(head, ResponseBody::new(body, cx));
    sh.conn.end_as_asked(resp, version)
}

/// Owns a request's context while its handler awaits the chain and the upstream. If the
/// handler future is dropped there (the client closed the connection before the response
/// head), the drop records the outcome as `client_closed` with status 499, exactly once,
/// like `ResponseBody` does for a client that leaves mid-body.
struct Unanswered(Option<Box<RequestContext>>);

impl Unanswered {
    fn cx(&mut self) -> &mut RequestContext {
        self.0
            .as_deref_mut()
            .expect("the context stays in the guard until `answered`")
    }

    fn answered(mut self) -> Box<RequestContext> {
        self.0
            .take()
            .expect("the context stays in the guard until `answered`")
    }
}

impl Drop for Unanswered {
    fn drop(&mut self) {
        if let Some(mut cx) = self.0.take() {
            cx.fail(
                ErrorKind::ClientClosed,
                "client closed the connection before the response head",
            );
            cx.status = ErrorKind::ClientClosed.status().as_u16();
            crate::outcome::finish(*cx);
        }
    }
}

/// Runs the chain and the upstream attempt under the deadline and `catch_unwind`.
/// Returns the outcome and how many layers forwarded (they get the response phase).
async fn run_guarded(
    route: &Arc<Route>,
    req: Request<Body>,
    cx: &mut RequestContext,
) -> (Result<Response<Outgoing>, GatewayError>, usize) {
    let deadline = cx.deadline;
    let guarded = AssertUnwindSafe(timeout_at(deadline, run(route, req, cx)))
        .catch_unwind()
        .await;
    match guarded {
        Ok(Ok(done)) => done,
        Ok(Err(_elapsed)) => match cx.stage {
            Stage::Layer(i) => {
                let layer = route.chain.name(i);
                route.metrics.stall(layer);
                if let Some(trace) = cx.trace.as_mut() {
                    trace.push(TraceEntry::stalled(layer, cx.start.elapsed()));
                }
                tracing::warn!(route = %route.name, layer, "Deadline fired while a middleware layer held the request.");
                let e = GatewayError::new(
                    ErrorKind::LayerStalled,
                    format!("layer `{layer}` held the request until the deadline"),
                );
                (Err(e), i)
            }
            // The client was still sending its body: its slowness, not the upstream's.
            _ if cx.waiting_on_client() => (
                Err(GatewayError::new(
                    ErrorKind::BodyReadTimeout,
                    "request deadline passed while the client was still sending the body",
                )),
                route.chain.len(),
            ),
            _ => (
                Err(GatewayError::new(
                    ErrorKind::DeadlineExceeded,
                    "request deadline passed",
                )),
                route.chain.len(),
            ),
        },
        Err(panic) => {
            let message = panic_message(panic.as_ref());
            route.metrics.panic();
            tracing::error!(route = %route.name, stage = ?cx.stage, panic = %message, "Request handler panicked; answered 500.");
            let entered = match cx.stage {
                Stage::Layer(i) => i,
                _ => route.chain.len(),
            };
            (
                Err(GatewayError::new(
                    ErrorKind::Internal,
                    format!("panic: {message}"),
                )),
                entered,
            )
        }
    }
}

async fn run(
    route: &Route,
    req: Request<Body>,
    cx: &mut RequestContext,
) -> (Result<Response<Outgoing>, GatewayError>, usize) {
    match route.chain.run_request(req, cx).await {
        ChainOutcome::Forward(req) => {
            let req = match runtime_faults(route, req, cx) {
                Step::Done(Flow::Forward(req)) => req,
                Step::Done(Flow::Respond(resp)) => {
                    return (
                        Ok(resp.map(|body| Outgoing::Local { body })),
                        route.chain.len(),
                    );
                }
                Step::Pending(fut) => match fut.await {
                    Flow::Forward(req) => req,
                    Flow::Respond(resp) => {
                        return (
                            Ok(resp.map(|body| Outgoing::Local { body })),
                            route.chain.len(),
                        );
                    }
                },
            };
            let result = match &route.upstream {
                // An upgrade (WebSocket) is never retried, hedged or answered from a
                // fallback: it goes once, on a dedicated connection.
                // (Boxed: rare, and its state would widen every request's future.)
                Some(upstream) if upgrade::requested(&req) => {
                    Box::pin(upgrade::forward(upstream, req, cx)).await
                }
                Some(upstream) => policy::forward(route, upstream, req, cx).await,
                None => Err(GatewayError::from(ErrorKind::NoRoute)),
            };
            (result, route.chain.len())
        }
        ChainOutcome::Respond(i, resp) => (Ok(resp.map(|body| Outgoing::Local { body })), i),
    }
}

/// The route's runtime faults (admin `PUT /faults/{name}` with `route`), applied to `req`
/// after the chain, like a last `fault` layer (one atomic load when the gateway has none).
fn runtime_faults<'a>(route: &Route, req: Request<Body>, cx: &'a mut RequestContext) -> Step<'a> {
    match route.shared.faults.select_route(&route.name, &req) {
        None => Step::Done(Flow::Forward(req)),
        Some(slot) => crate::faults::client::apply(slot, req, cx, None),
    }
}

/// Request targets that only `CONNECT` and `OPTIONS` may use (RFC 9112 §3.2.3, §3.2.4):
/// authority-form (`GET example.com:80`), which would otherwise be forwarded as `GET /`,
/// and asterisk-form (`GET *`). `OPTIONS *` is forwarded as it is, to the route for `/`.
/// (`CONNECT` passes here, to be refused with its own reason.)
fn target_form_error(method: &Method, uri: &http::Uri) -> Option<&'static str> {
    if method == Method::CONNECT {
        None
    } else if uri.scheme().is_none() && uri.authority().is_some() {
        Some("authority-form target is only for CONNECT")
    } else if uri.path() == "*" && method != Method::OPTIONS {
        Some("asterisk-form target (*) is only for OPTIONS")
    } else {
        None
    }
}

/// The smallest read buffer hyper's HTTP/1.1 server accepts; it answers 431 itself only for
/// heads that overflow its buffer, so `max_header_bytes` below this is checked here.
pub const H1_BUFFER_FLOOR: usize = 8192;

/// The 431 for an HTTP/1.x head larger than `max_header_bytes`, when the limit is below
/// hyper's buffer floor. The size is the head as sent: request line and every
/// `name: value` line with their CRLFs (HTTP/2 heads are limited by the HTTP/2 layer,
/// `max_header_list_size`, before a request exists). Costs nothing at the default limit.
fn head_too_large(
    version: http::Version,
    parts: &http::request::Parts,
    s: &crate::runtime::ListenerSettings,
) -> Option<GatewayError> {
    if version > http::Version::HTTP_11 || s.max_header_bytes >= H1_BUFFER_FLOOR {
        return None;
    }
    // "METHOD target HTTP/1.1\r\n" ... "\r\n"
    let line = parts.method.as_str().len() + 1 + parts.uri.to_string().len() + 11;
    let fields: usize = parts
        .headers
        .iter()
        .map(|(name, value)| name.as_str().len() + 2 + value.len() + 2)
        .sum();
    let size = line + fields + 2;
    (size > s.max_header_bytes).then(|| {
        GatewayError::new(
            ErrorKind::HeaderTooLarge,
            format!(
                "request head of {size} bytes exceeds max_header_bytes ({})",
                s.max_header_bytes
            ),
        )
    })
}

fn content_length(headers: &http::HeaderMap) -> Option<u64> {
    headers
        .get(header::CONTENT_LENGTH)?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()
}

fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = panic.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = panic.downcast_ref::<String>() {
        s.clone()
    } else {
        "non-string panic payload".to_owned()
    }
}
