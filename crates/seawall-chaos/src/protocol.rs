//! What a proxy carries: bytes (`tcp`, Toxiproxy's only kind) or HTTP/1.1 requests
//! (`http`, an extension), and which toxics fit each.
//!
//! TCP toxics act on the bytes of a connection; HTTP toxics act on one request. An http
//! proxy hands its sockets to hyper, so there are no byte chains on it to hold a TCP
//! toxic: rather than let `latency` on an http proxy do nothing, it is refused (400),
//! and so is an HTTP toxic on a tcp proxy. `noop` fits both.

use std::fmt;

use crate::error::ApiError;
use crate::toxic::Kind;

/// A proxy's protocol.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub enum Protocol {
    /// Bytes, as Toxiproxy proxies them.
    #[default]
    Tcp,
    /// HTTP/1.1 requests, toxics per request.
    Http,
}

impl Protocol {
    /// The protocol of an API field; absent, null and empty mean `tcp`.
    pub fn parse(value: Option<&str>) -> Result<Self, ApiError> {
        match value.unwrap_or("") {
            "" | "tcp" => Ok(Protocol::Tcp),
            "http" => Ok(Protocol::Http),
            _ => Err(ApiError::bad_request(
                "protocol was invalid, can be either tcp or http",
            )),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::Tcp => "tcp",
            Protocol::Http => "http",
        }
    }

    /// Refuses a toxic kind that cannot act on a proxy of this protocol.
    pub(crate) fn check(self, kind: &Kind) -> Result<(), ApiError> {
        let name = kind.type_name();
        match (self, kind) {
            (_, Kind::Noop) => Ok(()),
            (Protocol::Http, kind) if !kind.is_http() => Err(ApiError::bad_request(format!(
                "toxic type {name} acts on bytes and cannot be used on an http proxy (use http_delay, http_status or http_reset, or a tcp proxy)"
            ))),
            (Protocol::Tcp, kind) if kind.is_http() => Err(ApiError::bad_request(format!(
                "toxic type {name} needs a proxy with protocol http"
            ))),
            _ => Ok(()),
        }
    }
}

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
