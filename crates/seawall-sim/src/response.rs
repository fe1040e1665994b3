//! Builders for the few response shapes the sim sends: static text, owned text, JSON and
//! generated bodies.
//!
//! Header values are statics (cloning a static `HeaderValue` copies a pointer) so building
//! a response costs the header map and nothing else.

use bytes::Bytes;
use http::header::{CONTENT_TYPE, HeaderValue};
use http::{Response, StatusCode};

use crate::body::SimBody;
use crate::param::BadRequest;

static TEXT: HeaderValue = HeaderValue::from_static("text/plain; charset=utf-8");
static JSON: HeaderValue = HeaderValue::from_static("application/json");
static OCTETS: HeaderValue = HeaderValue::from_static("application/octet-stream");

pub(crate) fn text(status: StatusCode, body: &'static str) -> Response<SimBody> {
    with_type(
        status,
        &TEXT,
        SimBody::full(Bytes::from_static(body.as_bytes())),
    )
}

pub(crate) fn owned_text(status: StatusCode, body: String) -> Response<SimBody> {
    with_type(status, &TEXT, SimBody::full(Bytes::from(body)))
}

pub(crate) fn json(body: Vec<u8>) -> Response<SimBody> {
    with_type(StatusCode::OK, &JSON, SimBody::full(Bytes::from(body)))
}

/// A 200 carrying a generated (pattern or drip) body.
pub(crate) fn octets(body: SimBody) -> Response<SimBody> {
    with_type(StatusCode::OK, &OCTETS, body)
}

pub(crate) fn bad_request(error: &BadRequest) -> Response<SimBody> {
    owned_text(StatusCode::BAD_REQUEST, format!("{error}\n"))
}

fn with_type(status: StatusCode, content_type: &HeaderValue, body: SimBody) -> Response<SimBody> {
    let mut response = Response::new(body);
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, content_type.clone());
    response
}
