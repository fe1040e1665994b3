//! Shared helpers for the gateway's integration tests: start a sim and a gateway on
//! 127.0.0.1 port 0, build configs as YAML text, a small real HTTP/1.1 client (hyper's
//! client `conn` API over a `TcpStream`), raw-socket helpers, Prometheus text lookups and
//! bounded polling.
//!
//! Every test file includes this with `mod support;`; not every file uses every helper.
#![allow(dead_code)]

use std::{
    net::SocketAddr,
    sync::Arc,
    time::{Duration, Instant},
};

use bytes::Bytes;
use http::{HeaderMap, Method, Request, Response};
use http_body_util::{BodyExt, Full};
use hyper::{body::Incoming, client::conn::http1};
use hyper_util::rt::TokioIo;
use seawall_gateway::{Gateway, GatewayOptions, chain::Layer};
use seawall_sim::{EchoReport, Sim};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
    sync::mpsc,
};

/// Starts a sim on a free port.
pub async fn sim() -> Sim {
    Sim::bind("127.0.0.1:0".parse().unwrap())
        .await
        .expect("bind sim")
}

/// A whole config: admin and one listener `public` on port 0. `listener` holds extra
/// listener keys, one `key: value` per entry; `routes` and `upstreams` are one YAML
/// flow-style mapping each (see [`route`] and [`upstream`]).
pub fn config(listener: &[&str], routes: &[String], upstreams: &[String]) -> String {
    config_with("", listener, routes, upstreams)
}

/// Like [`config`], with extra top-level YAML (e.g. `debug: {token_env: X}`) first.
pub fn config_with(
    top: &str,
    listener: &[&str],
    routes: &[String],
    upstreams: &[String],
) -> String {
    let mut s = String::from(top);
    s.push('\n');
    if !top.contains("admin:") {
        s.push_str("admin:\n  listen: 127.0.0.1:0\n");
    }
    s.push_str("listeners:\n  - name: public\n    listen: 127.0.0.1:0\n");
    for l in listener {
        s.push_str("    ");
        s.push_str(l);
        s.push('\n');
    }
    s.push_str("    routes:\n");
    for r in routes {
        s.push_str("      - ");
        s.push_str(r);
        s.push('\n');
    }
    s.push_str("upstreams:\n");
    for u in upstreams {
        s.push_str("  - ");
        s.push_str(u);
        s.push('\n');
    }
    s
}

/// One route as a YAML flow mapping. `middleware` is a flow sequence body, e.g.
/// `access_log, {headers: {request: {set: {x-route: a}}}}`.
pub fn route(
    name: &str,
    host: &str,
    prefix: &str,
    upstream: &str,
    timeout: &str,
    middleware: &str,
) -> String {
    format!(
        "{{name: {name}, match: {{host: \"{host}\", path_prefix: \"{prefix}\"}}, upstream: {upstream}, timeout: {timeout}, middleware: [{middleware}]}}"
    )
}

/// One upstream as a YAML flow mapping. `timeouts` and `pool` are flow mapping bodies
/// (may be empty), e.g. `connect: 300ms, response_header: 300ms`.
pub fn upstream(name: &str, endpoints: &[SocketAddr], timeouts: &str, pool: &str) -> String {
    let eps: Vec<String> = endpoints.iter().map(|e| format!("\"{e}\"")).collect();
    format!(
        "{{name: {name}, endpoints: [{}], timeouts: {{{timeouts}}}, pool: {{{pool}}}}}",
        eps.join(", ")
    )
}

/// A running gateway with its public listener, admin address and access log.
pub struct TestGateway {
    pub gw: Gateway,
    pub addr: SocketAddr,
    pub admin: SocketAddr,
    pub log: mpsc::Receiver<String>,
}

/// Parses `yaml` and starts a gateway with an access-log channel.
pub async fn start(yaml: &str) -> TestGateway {
    start_with(yaml, GatewayOptions::default()).await
}

/// Like [`start`], with options (the access log channel is always set here).
pub async fn start_with(yaml: &str, mut options: GatewayOptions) -> TestGateway {
    let config = seawall_config::parse("test.yaml", yaml)
        .unwrap_or_else(|d| panic!("test config is invalid:\n{d}\n---\n{yaml}"));
    let (tx, rx) = mpsc::channel(100_000);
    options.access_log = Some(tx);
    let gw = Gateway::start(config, options)
        .await
        .expect("gateway starts");
    let addr = gw.listener_addr("public").expect("public listener bound");
    let admin = gw.admin_addr().expect("admin bound");
    TestGateway {
        gw,
        addr,
        admin,
        log: rx,
    }
}

/// An extra layer for `route`, for [`GatewayOptions::extra_layers`].
pub fn extra_layer<L: Layer + Clone>(
    route: &str,
    layer: L,
) -> (String, seawall_gateway::runtime::LayerFactory) {
    (
        route.to_owned(),
        Arc::new(move || Box::new(layer.clone()) as Box<dyn Layer>),
    )
}

/// A fully read response.
#[derive(Debug)]
pub struct Resp {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Resp {
    /// The first value of header `name` as text.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The gateway's `seawall-error` reason, if any.
    pub fn error(&self) -> Option<&str> {
        self.header("seawall-error")
    }

    /// The body parsed as the sim's `/echo` report.
    pub fn echo(&self) -> EchoReport {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "not an echo report ({e}); status {} body {:?}",
                self.status,
                String::from_utf8_lossy(&self.body)
            )
        })
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// A request builder for `path` with a `Host` header.
pub fn req(method: Method, path: &str) -> http::request::Builder {
    Request::builder()
        .method(method)
        .uri(path)
        .header(http::header::HOST, "test.local")
}

/// A GET with no body.
pub fn get_req(path: &str) -> Request<Full<Bytes>> {
    req(Method::GET, path).body(Full::default()).unwrap()
}

/// One HTTP/1.1 client connection (keep-alive).
pub struct Conn {
    sender: http1::SendRequest<Full<Bytes>>,
    pub task: tokio::task::JoinHandle<()>,
}

impl Conn {
    pub async fn open(addr: SocketAddr) -> Conn {
        let stream = TcpStream::connect(addr).await.expect("connect");
        stream.set_nodelay(true).unwrap();
        let (sender, conn) = http1::handshake(TokioIo::new(stream))
            .await
            .expect("handshake");
        let task = tokio::spawn(async move {
            let _ = conn.await;
        });
        Conn { sender, task }
    }

    /// Sends and returns the response with its body unread.
    pub async fn send_streaming(
        &mut self,
        req: Request<Full<Bytes>>,
    ) -> Result<Response<Incoming>, hyper::Error> {
        self.sender.ready().await?;
        self.sender.send_request(req).await
    }

    /// Sends and reads the whole response.
    pub async fn send(&mut self, req: Request<Full<Bytes>>) -> Result<Resp, hyper::Error> {
        let resp = self.send_streaming(req).await?;
        let (parts, body) = resp.into_parts();
        let body = body.collect().await?.to_bytes();
        Ok(Resp {
            status: parts.status.as_u16(),
            headers: parts.headers,
            body,
        })
    }

    pub async fn get(&mut self, path: &str) -> Resp {
        self.send(get_req(path))
            .await
            .unwrap_or_else(|e| panic!("GET {path}: {e}"))
    }

    /// True when the connection is closed (by either side).
    pub fn is_closed(&self) -> bool {
        self.sender.is_closed()
    }
}

/// Sends `req` on a new connection and reads the whole response.
pub async fn send(addr: SocketAddr, req: Request<Full<Bytes>>) -> Result<Resp, hyper::Error> {
    Conn::open(addr).await.send(req).await
}

/// GET `path` on a new connection; panics on a transport error.
pub async fn get(addr: SocketAddr, path: &str) -> Resp {
    Conn::open(addr).await.get(path).await
}

/// Admin API GET.
pub async fn admin_get(admin: SocketAddr, path: &str) -> Resp {
    get(admin, path).await
}

/// The admin `/metrics` text.
pub async fn metrics_text(admin: SocketAddr) -> String {
    let r = admin_get(admin, "/metrics").await;
    assert_eq!(r.status, 200, "/metrics: {}", r.text());
    r.text()
}

/// Sum of the samples of `name` whose labels include every `(key, value)` in `labels`.
/// None when no sample matches.
pub fn metric(text: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    let mut total = None;
    for line in text.lines() {
        if line.starts_with('#') || line.is_empty() {
            continue;
        }
        let (series, value) = match line.rsplit_once(' ') {
            Some(x) => x,
            None => continue,
        };
        let (n, label_text) = match series.split_once('{') {
            Some((n, rest)) => (n, rest.trim_end_matches('}')),
            None => (series, ""),
        };
        if n != name {
            continue;
        }
        let all = labels
            .iter()
            .all(|(k, v)| label_text.contains(&format!("{k}=\"{v}\"")));
        if all {
            let v: f64 = value.parse().unwrap_or(f64::NAN);
            total = Some(total.unwrap_or(0.0) + v);
        }
    }
    total
}

/// Polls `check` every 20 ms until it is true or `within` passes; returns the last result.
pub async fn eventually<F, Fut>(within: Duration, mut check: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let end = Instant::now() + within;
    loop {
        if check().await {
            return true;
        }
        if Instant::now() >= end {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Reads from `stream` until EOF, an error, or `within`; returns the bytes read and whether
/// the connection ended (EOF or error) within the time.
pub async fn read_until_close(stream: &mut TcpStream, within: Duration) -> (Vec<u8>, bool) {
    let mut out = Vec::new();
    let end = tokio::time::Instant::now() + within;
    let mut buf = [0u8; 16 * 1024];
    loop {
        match tokio::time::timeout_at(end, stream.read(&mut buf)).await {
            Err(_) => return (out, false),
            Ok(Ok(0)) | Ok(Err(_)) => return (out, true),
            Ok(Ok(n)) => out.extend_from_slice(&buf[..n]),
        }
    }
}

/// Reads one HTTP/1.1 response head (up to the blank line) within `within`.
pub async fn read_head(stream: &mut TcpStream, within: Duration) -> String {
    let mut out = Vec::new();
    let end = tokio::time::Instant::now() + within;
    let mut byte = [0u8; 1];
    while !out.ends_with(b"\r\n\r\n") {
        match tokio::time::timeout_at(end, stream.read(&mut byte)).await {
            Ok(Ok(1)) => out.push(byte[0]),
            _ => break,
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Writes `bytes` to a new raw connection and returns everything read until the gateway
/// closes it (or `within` passes).
pub async fn raw_exchange(addr: SocketAddr, bytes: &[u8], within: Duration) -> String {
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(bytes).await.unwrap();
    let (out, _) = read_until_close(&mut s, within).await;
    String::from_utf8_lossy(&out).into_owned()
}

/// Receives access log lines until one matches `pred` or `within` passes.
pub async fn log_line(
    rx: &mut mpsc::Receiver<String>,
    within: Duration,
    mut pred: impl FnMut(&serde_json::Value) -> bool,
) -> Option<serde_json::Value> {
    let end = tokio::time::Instant::now() + within;
    loop {
        match tokio::time::timeout_at(end, rx.recv()).await {
            Ok(Some(line)) => {
                let v: serde_json::Value = serde_json::from_str(&line).expect("log line is JSON");
                if pred(&v) {
                    return Some(v);
                }
            }
            _ => return None,
        }
    }
}

/// Asserts `elapsed` lies in `[lo, hi]`, with a message naming what was timed.
#[track_caller]
pub fn assert_between(what: &str, elapsed: Duration, lo: Duration, hi: Duration) {
    assert!(
        elapsed >= lo && elapsed <= hi,
        "{what}: took {elapsed:?}, expected between {lo:?} and {hi:?}"
    );
}

/// An HTTP/1.1 server that answers every request with `response` after `delay`, and counts
/// the requests it saw.
pub async fn raw_server(
    delay: std::time::Duration,
    response: &'static [u8],
) -> (
    std::net::SocketAddr,
    std::sync::Arc<std::sync::atomic::AtomicUsize>,
) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    let seen = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counter = seen.clone();
    tokio::spawn(async move {
        loop {
            let Ok((mut s, _)) = l.accept().await else {
                return;
            };
            let counter = counter.clone();
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                loop {
                    while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
                        match s.read(&mut chunk).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => buf.extend_from_slice(&chunk[..n]),
                        }
                    }
                    let end = buf.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
                    buf.drain(..end);
                    counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    tokio::time::sleep(delay).await;
                    if s.write_all(response).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    (addr, seen)
}
