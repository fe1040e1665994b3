//! Minimal clients for the tests: hyper's HTTP/1.1 and HTTP/2 connection handles over a
//! real `TcpStream`, and a raw stream for the endpoints that never answer.

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::client::conn::{http1, http2};
use hyper_util::rt::{TokioExecutor, TokioIo};
use seawall_sim::{Sim, StatsSnapshot};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

pub async fn sim() -> Sim {
    Sim::bind("127.0.0.1:0".parse().unwrap()).await.unwrap()
}

/// A response with its body read to the end.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: http::HeaderMap,
    pub body: Bytes,
}

impl Reply {
    pub fn text(&self) -> &str {
        std::str::from_utf8(&self.body).unwrap()
    }

    pub fn header(&self, name: &str) -> &str {
        self.headers.get(name).unwrap().to_str().unwrap()
    }

    pub async fn read(response: Response<Incoming>) -> Reply {
        let (parts, body) = response.into_parts();
        Reply {
            status: parts.status.as_u16(),
            headers: parts.headers,
            body: body.collect().await.unwrap().to_bytes(),
        }
    }
}

/// One HTTP/1.1 keep-alive connection.
pub struct H1 {
    sender: http1::SendRequest<Full<Bytes>>,
}

impl H1 {
    pub async fn connect(addr: SocketAddr) -> H1 {
        let stream = TcpStream::connect(addr).await.unwrap();
        let (sender, connection) = http1::handshake(TokioIo::new(stream)).await.unwrap();
        tokio::spawn(connection);
        H1 { sender }
    }

    pub async fn send(&mut self, request: Request<Full<Bytes>>) -> Response<Incoming> {
        self.sender.ready().await.unwrap();
        self.sender.send_request(request).await.unwrap()
    }

    pub async fn get(&mut self, path: &str) -> Reply {
        Reply::read(self.send(get(path)).await).await
    }
}

/// One h2c (prior knowledge) connection.
pub struct H2 {
    sender: http2::SendRequest<Full<Bytes>>,
}

impl H2 {
    pub async fn connect(addr: SocketAddr) -> H2 {
        let stream = TcpStream::connect(addr).await.unwrap();
        let (sender, connection) = http2::handshake(TokioExecutor::new(), TokioIo::new(stream))
            .await
            .unwrap();
        tokio::spawn(connection);
        H2 { sender }
    }

    pub async fn get(&mut self, path: &str) -> Reply {
        let request = Request::get(format!("http://sim{path}"))
            .body(Full::default())
            .unwrap();
        Reply::read(self.sender.send_request(request).await.unwrap()).await
    }
}

pub fn get(path: &str) -> Request<Full<Bytes>> {
    Request::get(path)
        .header("host", "sim")
        .body(Full::default())
        .unwrap()
}

/// Opens a raw connection and sends a bodiless HTTP/1.1 GET for `path`.
pub async fn raw_get(addr: SocketAddr, path: &str) -> TcpStream {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let request = format!("GET {path} HTTP/1.1\r\nhost: sim\r\n\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    stream
}

/// Polls the sim's stats until `done` holds, failing after 5 seconds.
pub async fn wait_for_stats(sim: &Sim, done: impl Fn(&StatsSnapshot) -> bool) -> StatsSnapshot {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        let stats = sim.stats();
        if done(&stats) {
            return stats;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "stats never matched: {stats:?}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

impl H2 {
    /// The raw sender, for tests that drive requests themselves; dropping it (and the
    /// requests it sent) closes the connection.
    pub fn into_sender(self) -> http2::SendRequest<Full<Bytes>> {
        self.sender
    }
}
