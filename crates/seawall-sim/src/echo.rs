//! `/echo`: reports the request as the sim received it, so a test can see what a gateway
//! forwarded (method, path, query, version, headers) and how long the body was.
//!
//! The body is read to the end and counted, never buffered, so a large upload costs no
//! memory. [`EchoReport`] is public and `Deserialize` so tests in other crates can parse the
//! answer instead of matching on text.

use std::collections::BTreeMap;

use http::request::Parts;
use http::{Request, Response, StatusCode};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use serde::{Deserialize, Serialize};

use crate::body::SimBody;
use crate::response;

/// The JSON body of an `/echo` response.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EchoReport {
    /// The request method, e.g. `POST`.
    pub method: String,
    /// The request path, without the query.
    pub path: String,
    /// The raw query string without the `?`, if the request had one.
    pub query: Option<String>,
    /// `HTTP/1.1` or `HTTP/2.0`.
    pub version: String,
    /// Headers by lowercase name: a string when sent once, a list when repeated.
    pub headers: BTreeMap<String, EchoHeader>,
    /// Length of the request body the sim read.
    pub body_bytes: u64,
}

/// The value(s) of one header in an [`EchoReport`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum EchoHeader {
    /// The header was sent once.
    One(String),
    /// The header was sent more than once, values in order.
    Many(Vec<String>),
}

impl EchoReport {
    /// The first value of header `name` (any case), if it was sent.
    pub fn header(&self, name: &str) -> Option<&str> {
        match self.headers.get(&name.to_ascii_lowercase())? {
            EchoHeader::One(value) => Some(value),
            EchoHeader::Many(values) => values.first().map(String::as_str),
        }
    }

    /// Every value of header `name` (any case), in order; empty if it was not sent.
    pub fn header_values(&self, name: &str) -> Vec<&str> {
        match self.headers.get(&name.to_ascii_lowercase()) {
            None => Vec::new(),
            Some(EchoHeader::One(value)) => vec![value.as_str()],
            Some(EchoHeader::Many(values)) => values.iter().map(String::as_str).collect(),
        }
    }

    fn from_parts(parts: &Parts, body_bytes: u64) -> Self {
        let mut headers = BTreeMap::new();
        for name in parts.headers.keys() {
            // Non-UTF-8 bytes are shown lossily rather than refused: the point is to see
            // what arrived.
            let mut values: Vec<String> = parts
                .headers
                .get_all(name)
                .iter()
                .map(|value| String::from_utf8_lossy(value.as_bytes()).into_owned())
                .collect();
            let entry = if values.len() == 1 {
                EchoHeader::One(values.remove(0))
            } else {
                EchoHeader::Many(values)
            };
            headers.insert(name.as_str().to_owned(), entry);
        }
        Self {
            method: parts.method.as_str().to_owned(),
            path: parts.uri.path().to_owned(),
            query: parts.uri.query().map(str::to_owned),
            version: format!("{:?}", parts.version),
            headers,
            body_bytes,
        }
    }
}

pub(crate) async fn respond(request: Request<Incoming>) -> Response<SimBody> {
    let (parts, mut body) = request.into_parts();
    let mut body_bytes = 0u64;
    while let Some(frame) = body.frame().await {
        match frame {
            Ok(frame) => {
                if let Some(data) = frame.data_ref() {
                    body_bytes += data.len() as u64;
                }
            }
            Err(error) => {
                return response::owned_text(
                    StatusCode::BAD_REQUEST,
                    format!("reading the request body failed: {error}\n"),
                );
            }
        }
    }
    match serde_json::to_vec(&EchoReport::from_parts(&parts, body_bytes)) {
        Ok(json) => response::json(json),
        Err(error) => response::owned_text(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("encoding the echo failed: {error}\n"),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeated_headers_become_lists_and_lookups_ignore_case() {
        let (parts, ()) = Request::post("/echo?a=1")
            .header("X-One", "1")
            .header("x-many", "a")
            .header("x-many", "b")
            .body(())
            .unwrap()
            .into_parts();
        let report = EchoReport::from_parts(&parts, 3);
        assert_eq!(report.query.as_deref(), Some("a=1"));
        assert_eq!(report.header("X-ONE"), Some("1"));
        assert_eq!(report.header_values("x-many"), ["a", "b"]);
        let json = serde_json::to_value(&report).unwrap();
        assert_eq!(json["headers"]["x-many"], serde_json::json!(["a", "b"]));
        assert_eq!(json["version"], "HTTP/1.1");
    }
}
