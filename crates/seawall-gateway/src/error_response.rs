//! The one place where a classified failure becomes an HTTP response.
//!
//! Status and reason come from [`ErrorKind`] (see `docs/errors.md`); the body says what
//! happened in one line. Operator detail (endpoint addresses, timeout values) stays in the
//! access log and is never sent to the client.

use http::{HeaderName, HeaderValue, Response, header};
use seawall_core::{ERROR_HEADER, ErrorKind};

use crate::body::Outgoing;

/// Header naming the layer that held a request until its deadline.
pub static STALLED_LAYER: HeaderName = HeaderName::from_static("seawall-stalled-layer");

/// The response for a request that failed with `kind`.
pub fn error_response(kind: ErrorKind, stalled_layer: Option<&'static str>) -> Response<Outgoing> {
    let status = kind.status();
    let body = format!(
        "{} {}: {}\n",
        status.as_u16(),
        kind.reason(),
        kind.description()
    );
    let mut resp = Response::new(Outgoing::text(body));
    *resp.status_mut() = status;
    let headers = resp.headers_mut();
    headers.insert(
        HeaderName::from_static(ERROR_HEADER),
        HeaderValue::from_static(kind.reason()),
    );
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    if let Some(layer) = stalled_layer {
        headers.insert(STALLED_LAYER.clone(), HeaderValue::from_static(layer));
    }
    resp
}
