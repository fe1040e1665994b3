//! The small HTTP client the drill's control calls use (admin API, chaos API, probes): one
//! short-lived HTTP/1.1 connection per call, a timeout on the whole call, bodies read whole.
//!
//! Kept apart from the load generator on purpose: control calls must not queue behind the
//! load's connection cap, and their latency must not be mixed into its histograms.

use std::{net::SocketAddr, time::Duration};

use bytes::Bytes;
use http::{Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;

/// A base URL: where to connect, and the path prefix calls are under.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Base {
    /// `host:port` as written (the `Host` header).
    pub authority: String,
    /// The path prefix, without a trailing `/`.
    pub prefix: String,
}

/// Why a control call failed.
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    /// The URL is not usable.
    #[error("invalid URL `{0}`: {1}")]
    Url(String, &'static str),
    /// No connection could be made.
    #[error("cannot connect to {0}: {1}")]
    Connect(String, std::io::Error),
    /// The call did not finish in time.
    #[error("{0} did not answer within {1:?}")]
    Timeout(String, Duration),
    /// The HTTP exchange failed.
    #[error("HTTP error talking to {0}: {1}")]
    Http(String, hyper::Error),
}

impl Base {
    /// Parses `http://host:port[/prefix]`.
    pub fn parse(url: &str) -> Result<Self, CallError> {
        let bad = |why| CallError::Url(url.to_owned(), why);
        let rest = url
            .strip_prefix("http://")
            .ok_or_else(|| bad("only http:// is supported"))?;
        let (authority, prefix) = rest.split_once('/').map_or((rest, ""), |(a, p)| (a, p));
        if authority.is_empty() || !authority.contains(':') {
            return Err(bad(
                "it needs a host and a port, e.g. http://127.0.0.1:8080",
            ));
        }
        let prefix = prefix.trim_end_matches('/');
        Ok(Self {
            authority: authority.to_owned(),
            prefix: if prefix.is_empty() {
                String::new()
            } else {
                format!("/{prefix}")
            },
        })
    }

    /// The base for an address (an embedded gateway's listener).
    pub fn of(addr: SocketAddr) -> Self {
        Self {
            authority: addr.to_string(),
            prefix: String::new(),
        }
    }

    /// Resolves the authority to a socket address.
    pub async fn resolve(&self) -> std::io::Result<SocketAddr> {
        tokio::net::lookup_host(&self.authority)
            .await?
            .next()
            .ok_or_else(|| std::io::Error::other("the name resolves to no address"))
    }
}

impl std::fmt::Display for Base {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "http://{}{}", self.authority, self.prefix)
    }
}

/// One answer: status and whole body.
#[derive(Debug, Clone)]
pub struct Answer {
    /// The status.
    pub status: StatusCode,
    /// The body.
    pub body: Bytes,
}

impl Answer {
    /// The body as text, lossily.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// Sends one request to `base` + `path`.
pub async fn call(
    base: &Base,
    method: Method,
    path: &str,
    body: Option<&serde_json::Value>,
    token: Option<&str>,
    timeout: Duration,
) -> Result<Answer, CallError> {
    let url = format!("{base}{path}");
    match tokio::time::timeout(timeout, exchange(base, method, path, body, token)).await {
        Ok(result) => result,
        Err(_) => Err(CallError::Timeout(url, timeout)),
    }
}

async fn exchange(
    base: &Base,
    method: Method,
    path: &str,
    body: Option<&serde_json::Value>,
    token: Option<&str>,
) -> Result<Answer, CallError> {
    let url = format!("{base}{path}");
    let addr = base
        .resolve()
        .await
        .map_err(|e| CallError::Connect(url.clone(), e))?;
    let stream = tokio::net::TcpStream::connect(addr)
        .await
        .map_err(|e| CallError::Connect(url.clone(), e))?;
    let (mut send, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| CallError::Http(url.clone(), e))?;
    tokio::spawn(conn);
    let mut request = Request::builder()
        .method(method)
        .uri(format!("{}{path}", base.prefix))
        .header(http::header::HOST, &base.authority);
    if let Some(t) = token {
        request = request.header(http::header::AUTHORIZATION, format!("Bearer {t}"));
    }
    let payload = match body {
        Some(b) => {
            request = request.header(http::header::CONTENT_TYPE, "application/json");
            Bytes::from(b.to_string())
        }
        None => Bytes::new(),
    };
    let request = request
        .body(Full::new(payload))
        .map_err(|_| CallError::Url(url.clone(), "the path is not a valid request target"))?;
    let response = send
        .send_request(request)
        .await
        .map_err(|e| CallError::Http(url.clone(), e))?;
    let status = response.status();
    let body = response
        .into_body()
        .collect()
        .await
        .map_err(|e| CallError::Http(url, e))?
        .to_bytes();
    Ok(Answer { status, body })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_need_http_a_host_and_a_port() {
        let b = Base::parse("http://127.0.0.1:9901/admin/").unwrap();
        assert_eq!(b.authority, "127.0.0.1:9901");
        assert_eq!(b.prefix, "/admin");
        assert!(Base::parse("https://x:1").is_err());
        assert!(Base::parse("http://localhost").is_err());
    }
}
