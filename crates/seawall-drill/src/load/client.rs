//! The load's connections and one request on them: HTTP/1.1 keep-alive (a connection per
//! worker) or h2c (workers share a few multiplexed connections).
//!
//! Built on `hyper::client::conn` directly, so no client-side pool hides connection churn
//! or adds its own queueing to the measured latency.

use std::{net::SocketAddr, sync::Arc, time::Duration};

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Method, Request, Uri};
use http_body_util::{BodyExt, Full};
use hyper::client::conn::{http1, http2};
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::sync::Mutex;

use super::record::Outcome;
use crate::scenario::{Protocol, RequestSpec};

/// A request of the mix, prepared once.
#[derive(Debug, Clone)]
pub struct Prepared {
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
}

impl Prepared {
    /// Prepares `spec` for `authority` (the `Host` header). The scenario check has already
    /// refused what would not convert.
    pub fn new(spec: &RequestSpec, authority: &str) -> Option<Self> {
        let mut headers = HeaderMap::new();
        for (k, v) in &spec.headers {
            headers.insert(
                http::HeaderName::try_from(k.as_str()).ok()?,
                HeaderValue::try_from(v.as_str()).ok()?,
            );
        }
        headers
            .entry(http::header::HOST)
            .or_insert(HeaderValue::try_from(authority).ok()?);
        Some(Self {
            method: Method::from_bytes(spec.method.as_bytes()).ok()?,
            uri: Uri::try_from(spec.path.as_str()).ok()?,
            headers,
            body: Bytes::from(spec.body.clone()),
        })
    }

    fn request(&self, h2: bool, authority: &str) -> Option<Request<Full<Bytes>>> {
        // h2 carries the authority in the URI (`:authority`), not in `Host`.
        let uri = if h2 {
            Uri::builder()
                .scheme("http")
                .authority(authority)
                .path_and_query(self.uri.path_and_query()?.clone())
                .build()
                .ok()?
        } else {
            self.uri.clone()
        };
        let mut r = Request::builder()
            .method(self.method.clone())
            .uri(uri)
            .body(Full::new(self.body.clone()))
            .ok()?;
        *r.headers_mut() = self.headers.clone();
        if h2 {
            r.headers_mut().remove(http::header::HOST);
        }
        Some(r)
    }
}

/// Where the load goes and how.
#[derive(Debug, Clone)]
pub struct Target {
    /// The address to connect to.
    pub addr: SocketAddr,
    /// `host:port` for `Host` / `:authority`.
    pub authority: String,
    /// The protocol.
    pub protocol: Protocol,
    /// Each request's timeout.
    pub timeout: Duration,
}

/// One worker's way of sending: its own HTTP/1.1 connection, or a shared h2c one.
#[derive(Debug)]
pub enum Sender {
    /// A keep-alive connection, opened on first use and after a failure.
    Http1(Option<http1::SendRequest<Full<Bytes>>>),
    /// A multiplexed connection shared with other workers.
    H2(Arc<Mutex<Option<http2::SendRequest<Full<Bytes>>>>>),
}

async fn connect(addr: SocketAddr) -> std::io::Result<tokio::net::TcpStream> {
    let stream = tokio::net::TcpStream::connect(addr).await?;
    stream.set_nodelay(true)?;
    Ok(stream)
}

impl Sender {
    /// Sends `request` and reads the whole answer, under the target's timeout.
    pub async fn send(&mut self, target: &Target, request: &Prepared) -> Outcome {
        match tokio::time::timeout(target.timeout, self.exchange(target, request)).await {
            Ok(outcome) => outcome,
            Err(_) => {
                // The connection may still be busy with the abandoned request.
                if let Sender::Http1(conn) = self {
                    *conn = None;
                }
                Outcome::Failed("timeout")
            }
        }
    }

    async fn exchange(&mut self, target: &Target, request: &Prepared) -> Outcome {
        let h2 = matches!(self, Sender::H2(_));
        let Some(req) = request.request(h2, &target.authority) else {
            return Outcome::Failed("request");
        };
        let response = match self {
            Sender::Http1(conn) => {
                let ready = match conn {
                    Some(c) => c.ready().await.is_ok(),
                    None => false,
                };
                if !ready {
                    match open_http1(target.addr).await {
                        Ok(c) => *conn = Some(c),
                        Err(kind) => return Outcome::Failed(kind),
                    }
                }
                let Some(c) = conn.as_mut() else {
                    return Outcome::Failed("connect");
                };
                let r = c.send_request(req).await;
                if r.is_err() {
                    *conn = None;
                }
                r
            }
            Sender::H2(shared) => {
                let mut sender = {
                    let mut guard = shared.lock().await;
                    let alive = guard.as_ref().is_some_and(|s| !s.is_closed());
                    if !alive {
                        match open_h2(target.addr).await {
                            Ok(s) => *guard = Some(s),
                            Err(kind) => return Outcome::Failed(kind),
                        }
                    }
                    match guard.as_ref() {
                        Some(s) => s.clone(),
                        None => return Outcome::Failed("connect"),
                    }
                };
                if sender.ready().await.is_err() {
                    return Outcome::Failed("reset");
                }
                sender.send_request(req).await
            }
        };
        let response = match response {
            Ok(r) => r,
            Err(e) => return Outcome::Failed(classify(&e)),
        };
        let status = response.status().as_u16();
        let header = |name: &str| response.headers().get(name).and_then(|v| v.to_str().ok());
        let error_kind = header(seawall_core::ERROR_HEADER).map(str::to_owned);
        let degraded = header("seawall-degraded").is_some();
        let mut body = response.into_body();
        // Drained, not kept: the body's end is the end of the request.
        while let Some(frame) = body.frame().await {
            if frame.is_err() {
                return Outcome::Failed("body");
            }
        }
        Outcome::Answered {
            status,
            error_kind,
            degraded,
        }
    }
}

fn classify(e: &hyper::Error) -> &'static str {
    if e.is_incomplete_message() || e.is_canceled() {
        "reset"
    } else if e.is_timeout() {
        "timeout"
    } else {
        "protocol"
    }
}

async fn open_http1(addr: SocketAddr) -> Result<http1::SendRequest<Full<Bytes>>, &'static str> {
    let stream = connect(addr).await.map_err(|_| "connect")?;
    let (send, conn) = http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|_| "connect")?;
    tokio::spawn(conn);
    Ok(send)
}

async fn open_h2(addr: SocketAddr) -> Result<http2::SendRequest<Full<Bytes>>, &'static str> {
    let stream = connect(addr).await.map_err(|_| "connect")?;
    let (send, conn) = http2::handshake(TokioExecutor::new(), TokioIo::new(stream))
        .await
        .map_err(|_| "connect")?;
    tokio::spawn(conn);
    Ok(send)
}
