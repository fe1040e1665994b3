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

/// 128 random bits as 32 lowercase hex digits.
fn new_id() -> HeaderValue {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let n = fastrand::u128(..);
    let mut hex = [0u8; 32];
    for (i, digit) in hex.iter_mut().enumerate() {
        *digit = HEX[((n >> (124 - 4 * i)) & 0xf) as usize];
    }
    HeaderValue::from_bytes(&hex).unwrap_or(HeaderValue::from_static("0"))
}

#[cfg(test)]
mod tests {
    #[test]
    fn ids_are_32_hex_digits_and_differ() {
        let a = super::new_id();
        let b = super::new_id();
        assert_eq!(a.len(), 32);
        assert!(
            a.as_bytes()
                .iter()
                .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase())
        );
        assert_ne!(a, b);
    }
}
