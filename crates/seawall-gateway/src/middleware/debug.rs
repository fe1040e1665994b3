//! `debug`: the token-protected trace of a request's path through the chain.
//!
//! The edge always removes the `seawall-debug` header and checks the token (constant-time
//! compare), whatever the route, so the token is never forwarded. On a route that lists
//! this layer, an authorized request is traced from the start of the chain and gets the
//! trace back in the `seawall-debug-trace` response header: each layer with its time and
//! decision, then the upstream endpoint and whether the connection was reused.

use http::{HeaderName, Request, response};
use seawall_core::Body;

use crate::{
    chain::{Flow, Layer, Step},
    context::RequestContext,
};

/// Request header carrying the debug token.
pub static SEAWALL_DEBUG: HeaderName = HeaderName::from_static("seawall-debug");
/// Response header carrying the trace.
pub static SEAWALL_DEBUG_TRACE: HeaderName = HeaderName::from_static("seawall-debug-trace");

/// The `debug` layer.
pub struct Debug;

impl Layer for Debug {
    fn name(&self) -> &'static str {
        "debug"
    }

    fn on_request<'a>(&'a self, req: Request<Body>, _cx: &'a mut RequestContext) -> Step<'a> {
        // Tracing was switched on at the edge (it has to start before the first layer).
        Step::Done(Flow::Forward(req))
    }

    fn on_response(&self, head: &mut response::Parts, cx: &mut RequestContext) {
        if let Some(value) = cx.render_trace() {
            head.headers.insert(SEAWALL_DEBUG_TRACE.clone(), value);
        }
    }
}

/// Constant-time comparison, so the token cannot be guessed byte by byte from timing.
pub fn token_matches(presented: &[u8], expected: &[u8]) -> bool {
    if presented.len() != expected.len() {
        return false;
    }
    presented
        .iter()
        .zip(expected)
        .fold(0u8, |acc, (a, b)| acc | (a ^ b))
        == 0
}
