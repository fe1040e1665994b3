//! Test upstreams on 127.0.0.1 port 0 and request helpers shared by the pool tests.

#![allow(dead_code)] // each test binary uses a different subset

pub mod tls;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty, Full};
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use seawall_core::Body;
use seawall_pool::{Pool, PoolMetrics, PoolOptions, PoolSettings};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::time::Instant;

/// A hyper upstream. Paths: `/` answers "hello"; `/slow` answers after 300 ms; `/big`
/// answers 8 MiB.
pub struct HyperUpstream {
    pub addr: SocketAddr,
    pub accepts: Arc<AtomicUsize>,
}

impl HyperUpstream {
    pub async fn start() -> Self {
        Self::start_at("127.0.0.1:0".parse().unwrap()).await
    }

    /// Listens on `addr` (e.g. another loopback address).
    pub async fn start_at(addr: SocketAddr) -> Self {
        let listener = TcpListener::bind(addr).await.unwrap();
        let addr = listener.local_addr().unwrap();
        let accepts = Arc::new(AtomicUsize::new(0));
        let counter = Arc::clone(&accepts);
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                counter.fetch_add(1, Ordering::SeqCst);
                tokio::spawn(async move {
                    let service =
                        service_fn(|req: http::Request<hyper::body::Incoming>| async move {
                            let body = match req.uri().path() {
                                "/slow" => {
                                    tokio::time::sleep(Duration::from_millis(300)).await;
                                    Bytes::from_static(b"slow")
                                }
                                "/big" => Bytes::from(vec![b'x'; 8 << 20]),
                                _ => Bytes::from_static(b"hello"),
                            };
                            Ok::<_, Infallible>(http::Response::new(Full::new(body)))
                        });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Self { addr, accepts }
    }

    pub fn accepts(&self) -> usize {
        self.accepts.load(Ordering::SeqCst)
    }
}

/// What a raw upstream saw on one of its connections.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Seen {
    Accepted,
    /// The client closed its side (read returned 0 or failed), at this time.
    Eof(Instant),
}

/// How a raw upstream treats each connection.
#[derive(Debug, Clone, Copy)]
pub enum Script {
    /// Answer every request with a small 200, keep the connection, report EOF.
    KeepAlive,
    /// Answer the first request, then close the connection.
    AnswerThenClose,
    /// Read the request, never answer, report EOF.
    Silent,
    /// Answer with bytes that are not HTTP.
    Garbage,
}

pub struct RawUpstream {
    pub addr: SocketAddr,
    pub seen: mpsc::UnboundedReceiver<Seen>,
}

impl RawUpstream {
    pub async fn start(script: Script) -> Self {
        Self::start_at(script, "127.0.0.1:0".parse().unwrap()).await
    }

    /// Listens on `addr` (e.g. another loopback address).
    pub async fn start_at(script: Script, addr: SocketAddr) -> Self {
        let listener = TcpListener::bind(addr).await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (tx, seen) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let _ = tx.send(Seen::Accepted);
                tokio::spawn(serve_raw(stream, script, tx.clone()));
            }
        });
        Self { addr, seen }
    }

    /// The next event, or panics after `within`.
    pub async fn next(&mut self, within: Duration) -> Seen {
        tokio::time::timeout(within, self.seen.recv())
            .await
            .expect("no upstream event in time")
            .expect("upstream gone")
    }

    /// Waits for the next EOF, skipping accepts.
    pub async fn next_eof(&mut self, within: Duration) -> Instant {
        let limit = Instant::now() + within;
        loop {
            match tokio::time::timeout_at(limit, self.seen.recv()).await {
                Ok(Some(Seen::Eof(at))) => return at,
                Ok(Some(Seen::Accepted)) => {}
                _ => panic!("no EOF within {within:?}"),
            }
        }
    }
}

const SMALL_RESPONSE: &[u8] = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok";

async fn serve_raw(mut stream: TcpStream, script: Script, tx: mpsc::UnboundedSender<Seen>) {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let n = stream.read(&mut chunk).await.unwrap_or(0);
        if n == 0 {
            let _ = tx.send(Seen::Eof(Instant::now()));
            return;
        }
        buf.extend_from_slice(&chunk[..n]);
        // Requests in these tests have no body: a blank line ends each one.
        while let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            buf.drain(..end + 4);
            match script {
                Script::KeepAlive => {
                    let _ = stream.write_all(SMALL_RESPONSE).await;
                }
                Script::AnswerThenClose => {
                    let _ = stream.write_all(SMALL_RESPONSE).await;
                    return;
                }
                Script::Silent => {}
                Script::Garbage => {
                    let _ = stream.write_all(b"SSH-2.0-not-http\r\n\r\n").await;
                }
            }
        }
    }
}

pub fn settings() -> PoolSettings {
    PoolSettings {
        max_idle_per_endpoint: 8,
        idle_timeout: Duration::from_secs(30),
        max_connections_per_endpoint: 8,
        checkout_timeout: Duration::from_secs(2),
        connect_timeout: Duration::from_secs(2),
        tcp_keepalive: Some(Duration::from_secs(30)),
    }
}

pub fn pool(addr: SocketAddr, settings: PoolSettings) -> (Pool, PoolMetrics) {
    let metrics = PoolMetrics::unregistered();
    (
        Pool::new("test", vec![addr], settings, metrics.clone()),
        metrics,
    )
}

/// A pool on one endpoint with `options`; the returned handles are the ones it updates.
pub fn pool_with(
    addr: SocketAddr,
    settings: PoolSettings,
    options: PoolOptions,
) -> (Pool, PoolMetrics) {
    let metrics = PoolMetrics::unregistered();
    (
        Pool::with_options("test", vec![addr], settings, metrics.clone(), options),
        metrics,
    )
}

/// A listener that accepts connections and never sends a byte, keeping them open.
pub async fn mute_listener() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((stream, _)) = listener.accept().await {
            held.push(stream);
        }
    });
    addr
}

/// The error and every source below it, joined, for asserting on the detail.
pub fn chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(current) = source {
        text.push_str(" / ");
        text.push_str(&current.to_string());
        source = current.source();
    }
    text
}

pub fn empty() -> Body {
    Empty::<Bytes>::new()
        .map_err(|never| match never {})
        .boxed()
}

pub fn get(path: &str) -> http::Request<Body> {
    http::Request::get(path)
        .header(http::header::HOST, "upstream.test")
        .body(empty())
        .unwrap()
}

pub fn in_secs(secs: u64) -> Instant {
    Instant::now() + Duration::from_secs(secs)
}

/// Checkout, send, read the whole body. Returns whether the connection was reused.
pub async fn roundtrip(pool: &Pool, path: &str) -> (bool, Bytes) {
    let conn = pool.checkout(0, in_secs(10)).await.unwrap();
    let reused = conn.is_reused();
    let response = conn.send(get(path)).await.unwrap();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    (reused, body)
}

/// Polls `check` every 10 ms until it holds, or panics after `within`.
pub async fn eventually(within: Duration, what: &str, mut check: impl FnMut() -> bool) {
    let limit = Instant::now() + within;
    while !check() {
        assert!(Instant::now() < limit, "not true within {within:?}: {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}
