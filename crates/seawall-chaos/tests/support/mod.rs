//! Test support: a chaos server on a free loopback port, a minimal HTTP/1.1 client for
//! its API, and small upstreams (echo, fixed bytes). Everything binds port 0.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::time::Duration;

use seawall_chaos::{Options, Server};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// A running chaos API.
pub struct Chaos {
    pub addr: SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

impl Drop for Chaos {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// An API answer.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub body: String,
}

impl Answer {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("{e}: {}", self.body))
    }
}

impl Chaos {
    pub async fn start() -> Self {
        Self::with_seed(42).await
    }

    pub async fn with_seed(seed: u64) -> Self {
        let server = Server::new(Options { seed: Some(seed) });
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (tx, rx) = tokio::sync::oneshot::channel();
        tokio::spawn(server.serve(listener, async {
            let _ = rx.await;
        }));
        Self {
            addr,
            stop: Some(tx),
        }
    }

    pub async fn call(&self, method: &str, path: &str, body: &str) -> Answer {
        self.call_as(method, path, body, "seawall-chaos-test").await
    }

    pub async fn call_as(&self, method: &str, path: &str, body: &str, agent: &str) -> Answer {
        let mut stream = TcpStream::connect(self.addr).await.unwrap();
        let request = format!(
            "{method} {path} HTTP/1.1\r\nHost: chaos\r\nUser-Agent: {agent}\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        stream.write_all(request.as_bytes()).await.unwrap();
        let mut raw = Vec::new();
        tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut raw))
            .await
            .expect("the API answers within 10 s")
            .unwrap();
        let text = String::from_utf8(raw).unwrap();
        let (head, body) = text.split_once("\r\n\r\n").unwrap();
        let status = head.split(' ').nth(1).unwrap().parse().unwrap();
        Answer {
            status,
            body: body.to_owned(),
        }
    }

    /// Creates a proxy on a free loopback port and returns its listen address.
    pub async fn proxy(&self, name: &str, upstream: SocketAddr) -> SocketAddr {
        let body = format!(r#"{{"name":"{name}","listen":"127.0.0.1:0","upstream":"{upstream}"}}"#);
        let answer = self.call("POST", "/proxies", &body).await;
        assert_eq!(answer.status, 201, "{}", answer.body);
        answer.json()["listen"].as_str().unwrap().parse().unwrap()
    }

    pub async fn toxic(&self, proxy: &str, body: &str) -> Answer {
        let answer = self
            .call("POST", &format!("/proxies/{proxy}/toxics"), body)
            .await;
        assert_eq!(answer.status, 200, "{}", answer.body);
        answer
    }
}

/// An upstream that echoes what it reads.
pub async fn echo() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let (mut r, mut w) = stream.into_split();
                let _ = tokio::io::copy(&mut r, &mut w).await;
            });
        }
    });
    addr
}

/// An upstream that writes `bytes` on every connection and then closes it.
pub async fn sender(bytes: Vec<u8>) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let bytes = std::sync::Arc::new(bytes);
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let bytes = bytes.clone();
            tokio::spawn(async move {
                let _ = stream.write_all(&bytes).await;
                let _ = stream.shutdown().await;
                // Hold the socket until the client is done, so the close is the client's.
                let mut sink = [0u8; 64];
                let _ = stream.read(&mut sink).await;
            });
        }
    });
    addr
}

/// A loopback address nothing listens on.
pub async fn closed_port() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    listener.local_addr().unwrap()
}

/// One echo round trip of `n` bytes, with a bound.
pub async fn round_trip(stream: &mut TcpStream, n: usize) -> Duration {
    let start = tokio::time::Instant::now();
    let data = vec![b'x'; n];
    stream.write_all(&data).await.unwrap();
    let mut back = vec![0u8; n];
    tokio::time::timeout(Duration::from_secs(10), stream.read_exact(&mut back))
        .await
        .expect("the echo comes back within 10 s")
        .unwrap();
    start.elapsed()
}

/// Reads until EOF (or an error), with a bound; returns the bytes read.
pub async fn read_all(stream: &mut TcpStream, bound: Duration) -> Vec<u8> {
    let mut out = Vec::new();
    let mut buf = [0u8; 16 * 1024];
    let _ = tokio::time::timeout(bound, async {
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => out.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await;
    out
}
