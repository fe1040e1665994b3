//! The one place where a classified failure becomes an HTTP response.
//!
//! Status and reason come from [`ErrorKind`] (see `docs/errors.md`); the body says what
//! happened in one line. Operator detail (endpoint addresses, timeout values) stays in the
//! access log and is never sent to the client.
//!
//! A gRPC client reads `grpc-status`, not the HTTP status, so for a gRPC request the same
//! error is reshaped by [`grpc_shaped`] into a trailers-only gRPC response (see
//! `docs/errors.md`).

use http::{HeaderName, HeaderValue, Response, StatusCode, header};
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

static GRPC_STATUS: HeaderName = HeaderName::from_static("grpc-status");
static GRPC_MESSAGE: HeaderName = HeaderName::from_static("grpc-message");

/// True for a gRPC request (`content-type: application/grpc`, `application/grpc+proto`,
/// `application/grpc-web`, …).
pub fn is_grpc(headers: &http::HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/grpc"))
}

/// `resp` for a gRPC client: a gateway-made error (a body the gateway made, with
/// `seawall-error`) becomes a trailers-only gRPC response (HTTP 200, `content-type:
/// application/grpc`, `grpc-status` from [`ErrorKind::grpc_status`], `grpc-message` the
/// reason, no body), its other headers kept. Any other response is returned as it is.
pub fn grpc_shaped(resp: Response<Outgoing>) -> Response<Outgoing> {
    let kind = resp
        .headers()
        .get(ERROR_HEADER)
        .and_then(|v| v.to_str().ok())
        .and_then(ErrorKind::from_reason);
    let Some(kind) = kind.filter(|_| matches!(resp.body(), Outgoing::Local { .. })) else {
        return resp;
    };
    let (mut head, _body) = resp.into_parts();
    head.status = StatusCode::OK;
    let headers = &mut head.headers;
    headers.remove(header::CONTENT_LENGTH);
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/grpc"),
    );
    headers.insert(
        GRPC_STATUS.clone(),
        HeaderValue::from(u16::from(kind.grpc_status())),
    );
    if let Ok(message) = HeaderValue::try_from(grpc_percent_encode(kind.reason())) {
        headers.insert(GRPC_MESSAGE.clone(), message);
    }
    // An empty body: hyper ends the stream with the headers (a trailers-only response).
    Response::from_parts(head, Outgoing::text(""))
}

/// `grpc-message` encoding (gRPC over HTTP/2): bytes outside printable ASCII, and `%`,
/// as `%XX`.
fn grpc_percent_encode(message: &str) -> String {
    let mut out = String::with_capacity(message.len());
    for b in message.bytes() {
        if (0x20..=0x7e).contains(&b) && b != b'%' {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grpc_messages_are_percent_encoded() {
        assert_eq!(
            grpc_percent_encode("deadline_exceeded"),
            "deadline_exceeded"
        );
        assert_eq!(grpc_percent_encode("50% \u{e9}\n"), "50%25 %C3%A9%0A");
    }

    #[test]
    fn a_gateway_error_becomes_a_trailers_only_grpc_response() {
        use http_body::Body as _;
        let resp = grpc_shaped(error_response(ErrorKind::DeadlineExceeded, None));
        assert_eq!(resp.status(), StatusCode::OK);
        let h = resp.headers();
        assert_eq!(h["content-type"], "application/grpc");
        assert_eq!(h["grpc-status"], "4");
        assert_eq!(h["grpc-message"], "deadline_exceeded");
        assert_eq!(h[ERROR_HEADER], "deadline_exceeded");
        assert!(resp.body().is_end_stream());
    }
}
