//! Client-facing faults, applied to a request a rule selected: the gateway itself waits,
//! answers (an HTTP status, or a trailers-only gRPC status), ends the client's connection,
//! or paces the response body. Used by the `fault` layer and by runtime faults on a route.
//!
//! Every faulted response carries `seawall-fault: <rule>` and never `seawall-error`: a
//! drill must not be mistaken for an outage, nor for a gateway failure. (`crate::edge`
//! adds the header to a forwarded response, from `cx.fault`.)
//!
//! `reset` and `close` answer with a response marked [`EndConnection`]: the listener
//! (`crate::listener`) turns it into the end of the client's connection (HTTP/1.1: an RST
//! for `reset`, a FIN for `close`) or of the stream (HTTP/2: `RST_STREAM`, and for `close`
//! a GOAWAY), without sending the response. Its body fails at once, so that a marked
//! response that somehow reaches hyper still ends the connection instead of answering.

use std::{
    pin::Pin,
    task::{Context, Poll},
};

use bytes::Bytes;
use http::{HeaderName, HeaderValue, Request, Response, StatusCode, header};
use http_body::Frame;
use http_body_util::{BodyExt, Full};
use seawall_core::{Body, BoxError};

use super::{
    FAULT_HEADER,
    header::HeaderFault,
    rule::{Abort, Action, Delay, Rule, Slot},
};
use crate::{
    chain::{Flow, Step},
    context::RequestContext,
    error_response::is_grpc,
};

/// Applies the fault of `slot`'s rule to `req`. `asked`: what the request's fault headers
/// ask for, when the layer allows them; it replaces the rule's delay and abort.
pub fn apply<'a>(
    slot: Slot,
    req: Request<Body>,
    cx: &'a mut RequestContext,
    asked: Option<HeaderFault>,
) -> Step<'a> {
    let rule = slot.rule().clone();
    cx.fault = Some(rule.header.clone());
    let (delay, abort) = match asked {
        Some(h) => (
            h.delay.map(Delay::Fixed),
            h.abort.map(|s| Abort::Answer {
                status: Some(s),
                grpc: None,
            }),
        ),
        None => (rule.delay, rule.abort),
    };
    if let Some(bps) = rule.throttle {
        rule.count(Action::Throttle);
        cx.throttle = Some(bps);
    }
    let wait = delay.map(|d| rule.draw_delay(d));
    if wait.is_some() {
        rule.count(Action::Delay);
    }
    let grpc_request = is_grpc(req.headers());
    let decide = move |cx: &mut RequestContext, req: Request<Body>| {
        let flow = match &abort {
            None => Flow::Forward(req),
            Some(abort) => {
                let (resp, action) = aborted(&rule, abort, grpc_request);
                rule.count(action);
                Flow::Respond(resp)
            }
        };
        let decision = if matches!(flow, Flow::Forward(_)) {
            "delayed"
        } else {
            "aborted"
        };
        cx.trace_policy("fault", decision, || format!("fault={}", rule.name));
        drop(slot);
        flow
    };
    match wait {
        None => Step::Done(decide(cx, req)),
        Some(wait) => Step::Pending(Box::pin(async move {
            tokio::time::sleep(wait).await;
            decide(cx, req)
        })),
    }
}

/// The response (or connection end) of `abort` for a request selected by `rule`, and the
/// action it counts as.
pub fn aborted(rule: &Rule, abort: &Abort, grpc_request: bool) -> (Response<Body>, Action) {
    let (mut resp, action) = match abort {
        Abort::Answer {
            grpc: Some(code),
            status,
        } if grpc_request || status.is_none() => {
            // Trailers-only gRPC response: the status in the head, no body.
            let mut resp = Response::new(empty());
            let h = resp.headers_mut();
            h.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/grpc"),
            );
            h.insert(
                HeaderName::from_static("grpc-status"),
                HeaderValue::from(*code),
            );
            h.insert(
                HeaderName::from_static("grpc-message"),
                HeaderValue::from_static("fault%20injected"),
            );
            (resp, Action::GrpcAbort)
        }
        Abort::Answer { status, .. } => {
            let status = status.unwrap_or(StatusCode::SERVICE_UNAVAILABLE);
            let text = format!("{} fault injected: {}\n", status.as_u16(), rule.name);
            let mut resp =
                Response::new(Full::new(Bytes::from(text)).map_err(|e| match e {}).boxed());
            *resp.status_mut() = status;
            let h = resp.headers_mut();
            h.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/plain; charset=utf-8"),
            );
            h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            (resp, Action::Abort)
        }
        Abort::Close => (ending(EndConnection::Close), Action::Close),
        // Upstream-side kinds never reach a client-facing rule (validation keeps them
        // apart); ending the connection is the closest client-facing meaning.
        Abort::Reset | Abort::ConnectError | Abort::UpstreamReset | Abort::Blackhole => {
            (ending(EndConnection::Reset), Action::Reset)
        }
    };
    resp.headers_mut()
        .insert(FAULT_HEADER.clone(), rule.header.clone());
    (resp, action)
}

/// How a `reset` or `close` fault asks the listener to end the client's connection; carried
/// as an extension of the (never sent) response. Only faulted responses carry it, so the
/// listener's check costs other responses one lookup in an empty extension map.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EndConnection {
    /// HTTP/1.1: close the socket with `SO_LINGER` 0, so the client gets an RST
    /// (`ECONNRESET`). HTTP/2: reset the stream with `INTERNAL_ERROR`.
    Reset,
    /// HTTP/1.1: close the socket cleanly (FIN). HTTP/2: reset the stream with `CANCEL`
    /// and end the connection gracefully (GOAWAY; other streams finish).
    Close,
}

fn ending(how: EndConnection) -> Response<Body> {
    let mut resp = Response::new(Failing.boxed());
    resp.extensions_mut().insert(how);
    resp
}

fn empty() -> Body {
    http_body_util::Empty::<Bytes>::new()
        .map_err(|e| match e {})
        .boxed()
}

/// A body that fails on its first poll. The body of a `reset`/`close` response, which the
/// listener never sends; kept failing so that such a response, should it reach hyper some
/// other way (e.g. from the upstream-side path, which validation keeps these kinds out
/// of), still ends the connection or stream rather than answering.
struct Failing;

impl http_body::Body for Failing {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        Poll::Ready(Some(Err("fault injected: connection ended".into())))
    }
}
