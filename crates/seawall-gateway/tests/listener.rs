//! Client-facing listener protections, over real sockets: the slowloris (header-read)
//! timeout, the idle timeout (a distinct timer), the request-body read timeout, header
//! and body size limits, `max_connections`, and h2c prior knowledge on the HTTP/1.1 port.

mod support;

use std::time::{Duration, Instant};

use bytes::Bytes;
use http::Method;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::{TokioExecutor, TokioIo};
use support::*;
use tokio::{io::AsyncWriteExt, net::TcpStream};

const MS: fn(u64) -> Duration = Duration::from_millis;

async fn gateway(listener: &[&str]) -> (seawall_sim::Sim, TestGateway) {
    let sim = sim().await;
    let yaml = config(
        listener,
        &[route("r", "*", "/", "up", "10s", "")],
        &[upstream("up", &[sim.local_addr()], "", "")],
    );
    let g = start(&yaml).await;
    (sim, g)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slowloris_client_is_cut_at_header_read_timeout_while_others_are_served() {
    let (_sim, g) = gateway(&["header_read_timeout: 1s", "idle_timeout: 30s"]).await;
    let addr = g.addr;
    let slow = tokio::spawn(async move {
        let mut s = TcpStream::connect(addr).await.unwrap();
        let head = b"GET / HTTP/1.1\r\nHost: test.local\r\nX-Padding: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n\r\n";
        let start = Instant::now();
        for &b in head.iter() {
            if s.write_all(&[b]).await.is_err() {
                return (start.elapsed(), true);
            }
            // Wait 200ms for the next byte, watching for the gateway closing on us.
            let (_, closed) = read_until_close(&mut s, MS(200)).await;
            if closed {
                return (start.elapsed(), true);
            }
        }
        (start.elapsed(), false)
    });
    // Meanwhile a normal client on another connection is served promptly.
    tokio::time::sleep(MS(300)).await;
    for _ in 0..3 {
        let t = Instant::now();
        assert_eq!(get(g.addr, "/").await.status, 200);
        assert!(t.elapsed() < MS(1000));
    }
    let (elapsed, closed) = slow.await.unwrap();
    assert!(closed, "the dribbling client was never disconnected");
    assert_between("header read timeout", elapsed, MS(800), MS(3000));
    let m = metrics_text(g.admin).await;
    assert_eq!(
        metric(
            &m,
            "seawall_downstream_connections_closed_total",
            &[("reason", "header_read_timeout")]
        ),
        Some(1.0),
        "{m}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keep_alive_connection_is_closed_at_idle_timeout_not_header_read_timeout() {
    let (_sim, g) = gateway(&["header_read_timeout: 5s", "idle_timeout: 500ms"]).await;
    let mut s = TcpStream::connect(g.addr).await.unwrap();
    s.write_all(b"GET / HTTP/1.1\r\nHost: test.local\r\n\r\n")
        .await
        .unwrap();
    let head = read_head(&mut s, MS(2000)).await;
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    let t = Instant::now();
    let (_, closed) = read_until_close(&mut s, MS(4000)).await;
    assert!(closed, "the idle connection was not closed");
    assert_between("idle timeout", t.elapsed(), MS(350), MS(2500));
    let m = metrics_text(g.admin).await;
    assert_eq!(
        metric(
            &m,
            "seawall_downstream_connections_closed_total",
            &[("reason", "idle_timeout")]
        ),
        Some(1.0),
        "{m}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_keep_alive_connection_outlives_a_shorter_header_read_timeout() {
    let (sim, g) = gateway(&["header_read_timeout: 300ms", "idle_timeout: 5s"]).await;
    let mut c = Conn::open(g.addr).await;
    assert_eq!(c.get("/").await.status, 200);
    // Idle for more than three header-read timeouts: still open, still usable.
    tokio::time::sleep(MS(1000)).await;
    assert!(!c.is_closed(), "closed at header_read_timeout while idle");
    assert_eq!(c.get("/").await.status, 200);
    assert_eq!(sim.stats().requests, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_that_never_sends_a_byte_is_closed_at_header_read_timeout() {
    // nginx's client_header_timeout: the first request is timed from accept, so silent
    // sockets cannot hold max_connections slots until idle_timeout.
    let (_sim, g) = gateway(&["header_read_timeout: 500ms", "idle_timeout: 30s"]).await;
    let t = Instant::now();
    let mut s = TcpStream::connect(g.addr).await.unwrap();
    let (bytes, closed) = read_until_close(&mut s, MS(5000)).await;
    assert!(
        closed,
        "a silent connection was kept past header_read_timeout"
    );
    assert!(bytes.is_empty(), "{:?}", String::from_utf8_lossy(&bytes));
    assert_between("silent connection close", t.elapsed(), MS(400), MS(2500));
    let m = metrics_text(g.admin).await;
    assert_eq!(
        metric(
            &m,
            "seawall_downstream_connections_closed_total",
            &[("reason", "header_read_timeout")]
        ),
        Some(1.0),
        "{m}"
    );
    // A client that sends its first request in time is served, and then its keep-alive
    // idle gap is on idle_timeout again (tested above).
    let mut c = Conn::open(g.addr).await;
    tokio::time::sleep(MS(200)).await;
    assert_eq!(c.get("/").await.status, 200);
    tokio::time::sleep(MS(800)).await;
    assert!(!c.is_closed(), "closed at header_read_timeout while idle");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_h2c_connection_is_not_cut_by_the_first_request_header_timer() {
    let (_sim, g) = gateway(&["header_read_timeout: 300ms", "idle_timeout: 30s"]).await;
    let stream = TcpStream::connect(g.addr).await.unwrap();
    let (mut sender, conn) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(stream))
            .await
            .unwrap();
    let driver = tokio::spawn(conn);
    // The preface went out at once; the first request comes well after the timeout.
    tokio::time::sleep(MS(900)).await;
    assert!(
        !driver.is_finished(),
        "h2c connection closed before its first request"
    );
    let req = http::Request::get("http://test.local/")
        .body(Full::<Bytes>::default())
        .unwrap();
    let resp = sender.send_request(req).await.unwrap();
    assert_eq!(resp.status(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stalled_request_body_gets_408_body_read_timeout() {
    let (_sim, g) = gateway(&["body_read_timeout: 500ms"]).await;
    let mut s = TcpStream::connect(g.addr).await.unwrap();
    let t = Instant::now();
    s.write_all(
        b"POST /echo HTTP/1.1\r\nHost: test.local\r\nContent-Length: 100\r\n\r\n0123456789",
    )
    .await
    .unwrap();
    let head = read_head(&mut s, MS(5000)).await;
    let elapsed = t.elapsed();
    assert!(head.starts_with("HTTP/1.1 408"), "{head}");
    assert!(
        head.to_ascii_lowercase()
            .contains("seawall-error: body_read_timeout"),
        "{head}"
    );
    assert_between("body read timeout", elapsed, MS(400), MS(2500));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_request_head_gets_431() {
    let (sim, g) = gateway(&["max_header_bytes: 8KiB"]).await;
    let big = "a".repeat(20_000);
    let mut s = TcpStream::connect(g.addr).await.unwrap();
    let request = format!("GET / HTTP/1.1\r\nHost: test.local\r\nX-Big: {big}\r\n\r\n");
    // The gateway may answer and close before it has read everything; ignore write errors.
    let _ = s.write_all(request.as_bytes()).await;
    let head = read_head(&mut s, MS(3000)).await;
    assert!(head.starts_with("HTTP/1.1 431"), "{head:?}");
    assert_eq!(sim.stats().requests, 0);
    // A normal-sized request is fine.
    assert_eq!(get(g.addr, "/").await.status, 200);
}

/// One request with an `x-big` header of `size` bytes over h2c prior knowledge; the status.
async fn h2c_status_with_header(addr: std::net::SocketAddr, size: usize) -> u16 {
    let stream = TcpStream::connect(addr).await.unwrap();
    let (mut sender, conn) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(stream))
            .await
            .unwrap();
    tokio::spawn(conn);
    let req = http::Request::get("http://test.local/")
        .header("x-big", "a".repeat(size))
        .body(Full::<Bytes>::default())
        .unwrap();
    match sender.send_request(req).await {
        Ok(resp) => resp.status().as_u16(),
        Err(e) => panic!("h2c request with a {size}-byte header failed: {e}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_max_header_bytes_below_8kib_is_enforced_alike_on_http1_and_h2c() {
    // hyper's HTTP/1.1 read buffer cannot be smaller than 8 KiB, so below that the gateway
    // checks the parsed head itself; h2c enforces the limit in the HTTP/2 layer.
    let (sim, g) = gateway(&["max_header_bytes: 4KiB"]).await;
    let big = "a".repeat(6 * 1024);
    let request = format!("GET / HTTP/1.1\r\nHost: test.local\r\nX-Big: {big}\r\n\r\n");
    let raw = raw_exchange(g.addr, request.as_bytes(), MS(1000)).await;
    assert!(raw.starts_with("HTTP/1.1 431"), "{raw:?}");
    assert!(
        raw.to_ascii_lowercase()
            .contains("seawall-error: header_too_large"),
        "{raw}"
    );
    assert_eq!(h2c_status_with_header(g.addr, 6 * 1024).await, 431);
    assert_eq!(sim.stats().requests, 0);
    // Under the limit, both are served.
    let small = "a".repeat(3 * 1024);
    let r = send(
        g.addr,
        req(Method::GET, "/")
            .header("x-big", small)
            .body(Full::default())
            .unwrap(),
    )
    .await
    .unwrap();
    assert_eq!(r.status, 200);
    assert_eq!(h2c_status_with_header(g.addr, 3 * 1024).await, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_with_more_than_100_header_fields_gets_431() {
    // hyper's fixed limit (docs/configuration.md, max_header_bytes): pinned so that a
    // change of it is noticed. The upstream is a raw server, which has no limit of its
    // own (the sim, being hyper, has the same 100, and the gateway adds fields).
    let (up, seen) = raw_server(MS(0), b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n").await;
    let yaml = config(
        &[],
        &[route("r", "*", "/", "up", "10s", "")],
        &[upstream("up", &[up], "", "")],
    );
    let g = start(&yaml).await;
    let head = |fields: usize| {
        let mut h = String::from("GET / HTTP/1.1\r\nHost: test.local\r\nConnection: close\r\n");
        for i in 2..fields {
            h.push_str(&format!("x-h{i}: v\r\n"));
        }
        h + "\r\n"
    };
    let raw = raw_exchange(g.addr, head(101).as_bytes(), MS(2000)).await;
    assert!(raw.starts_with("HTTP/1.1 431"), "{raw:?}");
    assert_eq!(seen.load(std::sync::atomic::Ordering::Relaxed), 0);
    let raw = raw_exchange(g.addr, head(100).as_bytes(), MS(2000)).await;
    assert!(raw.starts_with("HTTP/1.1 200"), "{raw:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn content_length_over_max_body_bytes_gets_413_and_is_not_forwarded() {
    let (sim, g) = gateway(&["max_body_bytes: 1KiB"]).await;
    let r = send(
        g.addr,
        req(Method::POST, "/echo")
            .body(Full::new(Bytes::from(vec![b'x'; 2000])))
            .unwrap(),
    )
    .await
    .unwrap();
    assert_eq!(r.status, 413, "{}", r.text());
    assert_eq!(r.error(), Some("body_too_large"));
    assert_eq!(sim.stats().requests, 0);
    // Within the limit it passes.
    let r = send(
        g.addr,
        req(Method::POST, "/echo")
            .body(Full::new(Bytes::from(vec![b'x'; 1000])))
            .unwrap(),
    )
    .await
    .unwrap();
    assert_eq!(r.status, 200);
    assert_eq!(r.echo().body_bytes, 1000);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connection_over_max_connections_gets_503_overloaded_while_others_keep_working() {
    let (_sim, g) = gateway(&["max_connections: 2"]).await;
    let mut a = Conn::open(g.addr).await;
    let mut b = Conn::open(g.addr).await;
    assert_eq!(a.get("/").await.status, 200);
    assert_eq!(b.get("/").await.status, 200);
    let third = raw_exchange(
        g.addr,
        b"GET / HTTP/1.1\r\nHost: test.local\r\n\r\n",
        MS(3000),
    )
    .await;
    assert!(third.starts_with("HTTP/1.1 503"), "{third}");
    assert!(
        third
            .to_ascii_lowercase()
            .contains("seawall-error: overloaded"),
        "{third}"
    );
    assert_eq!(a.get("/").await.status, 200);
    assert_eq!(b.get("/").await.status, 200);
    // Once one closes, a new connection is accepted again.
    drop(a);
    assert!(
        eventually(MS(3000), || async {
            let r = raw_exchange(
                g.addr,
                b"GET / HTTP/1.1\r\nHost: test.local\r\nConnection: close\r\n\r\n",
                MS(2000),
            )
            .await;
            r.starts_with("HTTP/1.1 200")
        })
        .await,
        "a slot freed by a closed connection was never reused"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn h2c_prior_knowledge_is_served_on_the_same_port() {
    let (_sim, g) = gateway(&[]).await;
    let stream = TcpStream::connect(g.addr).await.unwrap();
    let (mut sender, conn) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(stream))
            .await
            .expect("h2 handshake");
    tokio::spawn(conn);
    for _ in 0..3 {
        let req = http::Request::get("http://test.local/echo")
            .body(Full::<Bytes>::default())
            .unwrap();
        let resp = sender.send_request(req).await.expect("h2 request");
        assert_eq!(resp.status(), 200);
        assert_eq!(resp.version(), http::Version::HTTP_2);
        let body = resp.into_body().collect().await.unwrap().to_bytes();
        let echo: seawall_sim::EchoReport = serde_json::from_slice(&body).unwrap();
        // Forwarded as HTTP/1.1 with a Host header taken from the :authority.
        assert_eq!(echo.version, "HTTP/1.1");
        assert_eq!(echo.header("host"), Some("test.local"));
    }
    // And HTTP/1.1 on the same port.
    assert_eq!(get(g.addr, "/").await.status, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chunked_body_growing_past_max_body_bytes_gets_413() {
    let (_sim, g) = gateway(&["max_body_bytes: 1KiB"]).await;
    let mut s = TcpStream::connect(g.addr).await.unwrap();
    s.write_all(b"POST /echo HTTP/1.1\r\nHost: test.local\r\nTransfer-Encoding: chunked\r\n\r\n")
        .await
        .unwrap();
    // 4 chunks of 512 bytes: the limit is crossed by the third. Ignore write errors: the
    // gateway may answer and close before reading everything.
    for _ in 0..4 {
        let mut chunk = b"200\r\n".to_vec();
        chunk.extend_from_slice(&[b'x'; 512]);
        chunk.extend_from_slice(b"\r\n");
        if s.write_all(&chunk).await.is_err() {
            break;
        }
    }
    let _ = s.write_all(b"0\r\n\r\n").await;
    let head = read_head(&mut s, MS(3000)).await;
    assert!(head.starts_with("HTTP/1.1 413"), "{head:?}");
    assert!(
        head.to_ascii_lowercase()
            .contains("seawall-error: body_too_large"),
        "{head}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_second_request_on_a_keep_alive_connection_is_cut_at_header_read_timeout() {
    let (_sim, g) = gateway(&["header_read_timeout: 800ms", "idle_timeout: 30s"]).await;
    let mut s = TcpStream::connect(g.addr).await.unwrap();
    s.write_all(b"GET / HTTP/1.1\r\nHost: test.local\r\n\r\n")
        .await
        .unwrap();
    let head = read_head(&mut s, MS(2000)).await;
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    // Drain the small body, then idle well past the header-read timeout: still open.
    let (_, closed) = read_until_close(&mut s, MS(1200)).await;
    assert!(
        !closed,
        "an idle keep-alive connection was closed by the header timer"
    );
    // Now dribble the second request head.
    let start = Instant::now();
    let mut closed = false;
    for &b in
        b"GET / HTTP/1.1\r\nHost: test.local\r\nX-Pad: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n\r\n"
    {
        if s.write_all(&[b]).await.is_err() {
            closed = true;
            break;
        }
        let (_, c) = read_until_close(&mut s, MS(200)).await;
        if c {
            closed = true;
            break;
        }
    }
    assert!(closed, "the slow second head was never cut");
    assert_between("second head timeout", start.elapsed(), MS(600), MS(3000));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pipelined_requests_are_answered_in_order() {
    let (sim, g) = gateway(&[]).await;
    let raw = raw_exchange(
        g.addr,
        b"GET /status/201 HTTP/1.1\r\nHost: test.local\r\n\r\nGET /status/202 HTTP/1.1\r\nHost: test.local\r\n\r\nGET /status/203 HTTP/1.1\r\nHost: test.local\r\nConnection: close\r\n\r\n",
        MS(3000),
    )
    .await;
    let statuses: Vec<&str> = raw.split("HTTP/1.1 ").skip(1).map(|r| &r[..3]).collect();
    assert_eq!(statuses, ["201", "202", "203"], "{raw}");
    assert_eq!(sim.stats().requests, 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expect_100_continue_is_honoured_and_refused_bodies_are_not_solicited() {
    let (sim, g) = gateway(&["max_body_bytes: 1KiB"]).await;
    // Over the limit: 413 at once, without a 100 Continue inviting the body.
    let mut s = TcpStream::connect(g.addr).await.unwrap();
    s.write_all(b"POST /echo HTTP/1.1\r\nHost: test.local\r\nContent-Length: 5000\r\nExpect: 100-continue\r\n\r\n")
        .await
        .unwrap();
    let head = read_head(&mut s, MS(3000)).await;
    assert!(head.starts_with("HTTP/1.1 413"), "{head:?}");
    // Within the limit: 100 Continue, then the body goes through.
    let mut s = TcpStream::connect(g.addr).await.unwrap();
    s.write_all(b"POST /echo HTTP/1.1\r\nHost: test.local\r\nContent-Length: 10\r\nExpect: 100-continue\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let head = read_head(&mut s, MS(3000)).await;
    assert!(head.starts_with("HTTP/1.1 100"), "{head:?}");
    s.write_all(b"0123456789").await.unwrap();
    let (rest, _) = read_until_close(&mut s, MS(3000)).await;
    let rest = String::from_utf8_lossy(&rest);
    assert!(rest.starts_with("HTTP/1.1 200"), "{rest}");
    assert!(rest.contains("\"body_bytes\":10"), "{rest}");
    assert_eq!(sim.stats().requests, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_h2c_connection_is_closed_at_idle_timeout() {
    let (_sim, g) = gateway(&["header_read_timeout: 200ms", "idle_timeout: 600ms"]).await;
    let stream = TcpStream::connect(g.addr).await.unwrap();
    let (mut sender, conn) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(stream))
            .await
            .unwrap();
    let driver = tokio::spawn(conn);
    let req = http::Request::get("http://test.local/")
        .body(Full::<Bytes>::default())
        .unwrap();
    let resp = sender.send_request(req).await.unwrap();
    assert_eq!(resp.status(), 200);
    resp.into_body().collect().await.unwrap();
    // Not cut by the (shorter) header-read timer: h2 has no request-head phase to time.
    tokio::time::sleep(MS(350)).await;
    assert!(
        !driver.is_finished(),
        "h2 connection closed at header_read_timeout"
    );
    let t = Instant::now();
    let ended = tokio::time::timeout(MS(3000), driver).await;
    assert!(ended.is_ok(), "idle h2 connection not closed within 3s");
    assert_between("h2 idle close", t.elapsed() + MS(350), MS(450), MS(2500));
}
