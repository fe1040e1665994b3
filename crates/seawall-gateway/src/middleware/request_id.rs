//! `request_id`: gives every request an `x-request-id` and echoes it in the response.
//!
//! A client-supplied id is kept (so a trace can span several hops) when it is a sane size;
//! otherwise a new random 128-bit id is generated.

use http::{HeaderName, HeaderValue, Request, response};
use seawall_core::Body;

use crate::{
    chain::{Flow, Layer, Step},
    context::RequestContext,
};

/// The header that carries the id.
pub static X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// The `request_id` layer.
pub struct RequestId;

impl Layer for RequestId {
    fn name(&self) -> &'static str {
        "request_id"
    }

    fn on_request<'a>(&'a self, mut req: Request<Body>, cx: &'a mut RequestContext) -> Step<'a> {
        let id = match req.headers().get(&X_REQUEST_ID) {
            Some(v) if !v.is_empty() && v.len() <= 128 => v.clone(),
            _ => {
                let v = new_id();
                req.headers_mut().insert(X_REQUEST_ID.clone(), v.clone());
                v
            }
        };
        cx.request_id = Some(id);
        Step::Done(Flow::Forward(req))
    }

    fn on_response(&self, head: &mut response::Parts, cx: &mut RequestContext) {
        if let Some(id) = &cx.request_id {
            head.headers.insert(X_REQUEST_ID.clone(), id.clone());
        }
    }
}

fn new_id() -> HeaderValue {
    let n = fastrand::u128(..);
    HeaderValue::try_from(format!("{n:032x}")).unwrap_or(HeaderValue::from_static("0"))
}
