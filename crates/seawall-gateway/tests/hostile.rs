//! Regressions for what a hostile client or a faulty upstream broke, over real sockets:
//! slow readers pinning upstream connections past the deadline (HTTP/1.1 and HTTP/2),
//! an upstream that stops reading the request body, slow uploaders tripping the breaker,
//! malformed request framing, and HTTP/2 responses lost at graceful shutdown.
//!
//! The pattern of each: one upstream connection allowed (`max_connections_per_endpoint:
//! 1`), so a connection the gateway fails to release shows as the next request failing.

mod support;

use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::{TokioExecutor, TokioIo};
use support::*;
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpListener, TcpSocket, TcpStream},
};

const MS: fn(u64) -> Duration = Duration::from_millis;

/// One upstream connection at most, and a checkout that gives up quickly, so a pinned
/// connection turns the next request into a 503 `pool_exhausted`.
const ONE_CONNECTION: &str =
    "max_connections_per_endpoint: 1, max_idle_per_endpoint: 1, checkout_timeout: 300ms";

async fn one_connection_gateway(
    endpoint: std::net::SocketAddr,
    timeout: &str,
    upstream_extra: &str,
) -> TestGateway {
    let mut up = upstream("up", &[endpoint], "", ONE_CONNECTION);
    if !upstream_extra.is_empty() {
        up.pop();
        up.push_str(", ");
        up.push_str(upstream_extra);
        up.push('}');
    }
    let yaml = config(
        &[],
        &[route("r", "*", "/", "up", timeout, "access_log")],
        &[up],
    );
    start(&yaml).await
}

/// A client socket with a tiny receive buffer, so the gateway's writes block soon.
async fn small_window_client(addr: std::net::SocketAddr) -> TcpStream {
    let socket = TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    socket.connect(addr).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_http1_client_that_stops_reading_loses_its_connection_and_the_upstream_one_is_freed() {
    let sim = sim().await;
    let mut g = one_connection_gateway(sim.local_addr(), "1s", "").await;

    // Asks for far more than every buffer on the way holds, then reads nothing.
    let mut slow = small_window_client(g.addr).await;
    slow.write_all(b"GET /bytes/100000000 HTTP/1.1\r\nhost: x\r\n\r\n")
        .await
        .unwrap();
    // Before the deadline the one connection is busy.
    tokio::time::sleep(MS(300)).await;
    assert_eq!(get(g.addr, "/").await.error(), Some("pool_exhausted"));

    // Deadline (1 s) + grace (1 s) + a watchdog tick, with margin: the upstream connection
    // is released, and the next request is served.
    let freed = eventually(MS(6000), || async { get(g.addr, "/").await.status == 200 }).await;
    assert!(
        freed,
        "the stalled response still holds the only upstream connection"
    );

    // The slow client's connection was closed by the gateway.
    let (_, closed) = read_until_close(&mut slow, MS(5000)).await;
    assert!(closed, "the stalled client connection is still open");
    let line = log_line(&mut g.log, MS(2000), |v| v["path"] == "/bytes/100000000")
        .await
        .expect("access log line for the stalled request");
    assert_eq!(line["error"], "deadline_exceeded", "{line}");
    let text = metrics_text(g.admin).await;
    assert_eq!(
        metric(
            &text,
            "seawall_downstream_connections_closed_total",
            &[("reason", "stalled_past_deadline")]
        ),
        Some(1.0),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_http2_client_with_a_zero_window_cannot_pin_upstream_connections() {
    let sim = sim().await;
    let g = one_connection_gateway(sim.local_addr(), "1s", "").await;

    // An h2c client that grants no flow-control window and never reads: the gateway
    // cannot send a byte of the body, so hyper never polls it.
    let stream = TcpStream::connect(g.addr).await.unwrap();
    let (mut sender, conn) = hyper::client::conn::http2::Builder::new(TokioExecutor::new())
        .initial_stream_window_size(0)
        .handshake(TokioIo::new(stream))
        .await
        .expect("h2 handshake");
    let conn = tokio::spawn(conn);
    let req = http::Request::get("http://x/bytes/10000000")
        .body(Full::<Bytes>::default())
        .unwrap();
    let resp = sender.send_request(req).await.expect("response head");
    assert_eq!(resp.status(), 200);
    tokio::time::sleep(MS(300)).await;
    assert_eq!(get(g.addr, "/").await.error(), Some("pool_exhausted"));

    let freed = eventually(MS(6000), || async { get(g.addr, "/").await.status == 200 }).await;
    assert!(
        freed,
        "the stalled stream still holds the only upstream connection"
    );
    // Every stream on that connection was overdue: the connection is closed.
    let ended = tokio::time::timeout(MS(5000), conn).await;
    assert!(ended.is_ok(), "the stalled h2 connection is still open");
    drop(resp);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_but_reading_client_is_not_cut_before_its_deadline() {
    // The stall rule must not touch a response that is still within its time.
    let sim = sim().await;
    let g = one_connection_gateway(sim.local_addr(), "5s", "").await;
    let mut c = small_window_client(g.addr).await;
    c.write_all(b"GET /bytes/2000000 HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n")
        .await
        .unwrap();
    // Reads 2 MB in small reads with pauses: slower than the buffers, within 5 s.
    let started = Instant::now();
    let mut got = 0usize;
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let n = tokio::time::timeout(MS(5000), c.read(&mut buf))
            .await
            .expect("read stalls")
            .unwrap();
        if n == 0 {
            break;
        }
        got += n;
        tokio::time::sleep(MS(1)).await;
    }
    assert!(got > 2_000_000, "got {got} bytes");
    assert!(started.elapsed() < MS(5000));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upstream_that_stops_reading_the_body_releases_both_sockets_at_the_deadline() {
    // A black hole: accepts, never reads, never answers, for the whole test.
    let hole = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let hole_addr = hole.local_addr().unwrap();
    let (held_tx, held_rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(async move {
        let (s, _) = hole.accept().await.unwrap();
        let _ = held_rx.await;
        drop(s);
    });
    let g = one_connection_gateway(hole_addr, "1s", "").await;

    let stream = TcpStream::connect(g.addr).await.unwrap();
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .unwrap();
    let client_conn = tokio::spawn(conn);
    let body = Full::new(Bytes::from(vec![b'x'; 5_000_000]));
    let req = http::Request::post("/upload")
        .header("host", "x")
        .body(body)
        .unwrap();
    let started = Instant::now();
    let resp = tokio::time::timeout(MS(5000), sender.send_request(req))
        .await
        .expect("an answer at the deadline")
        .expect("response");
    assert_eq!(resp.status(), 504);
    assert_eq!(
        resp.headers()["seawall-error"],
        "deadline_exceeded",
        "the upstream, not the client, stopped the body"
    );
    assert!(started.elapsed() < MS(4000));

    // The upstream connection is closed while the black hole still holds its end unread.
    let released = eventually(MS(5000), || async {
        let view = admin_get(g.admin, "/upstreams").await;
        let json: serde_json::Value = serde_json::from_slice(&view.body).unwrap();
        json["upstreams"][0]["endpoints"][0]["open"] == 0
    })
    .await;
    assert!(released, "the upstream connection is still open");
    // The client connection is closed by the gateway (its unread body cannot be skipped).
    assert!(
        tokio::time::timeout(MS(5000), client_conn).await.is_ok(),
        "the client connection is still open"
    );
    // And nothing holds up a graceful shutdown.
    let t = Instant::now();
    assert!(g.gw.shutdown(MS(10_000)).await, "drain failed");
    assert!(t.elapsed() < MS(5000), "drain took {:?}", t.elapsed());
    drop((sender, resp, held_tx));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_uploaders_get_408_and_do_not_open_the_breaker_or_inflate_latency() {
    let sim = sim().await;
    let breaker = "breaker: {window: 10s, min_calls: 5, failure_ratio: 0.5, open_duration: 30s}";
    let yaml = config(
        &[],
        &[route("r", "*", "/", "up", "1s", "access_log")],
        &[format!(
            "{{name: up, endpoints: [\"{}\"], {breaker}}}",
            sim.local_addr()
        )],
    );
    let g = start(&yaml).await;

    // Ten clients announce 1000 bytes and send 10.
    let mut tasks = Vec::new();
    for _ in 0..10 {
        let addr = g.addr;
        tasks.push(tokio::spawn(async move {
            let mut s = TcpStream::connect(addr).await.unwrap();
            s.write_all(
                b"POST /echo HTTP/1.1\r\nhost: x\r\ncontent-length: 1000\r\n\r\n0123456789",
            )
            .await
            .unwrap();
            read_head(&mut s, MS(5000)).await
        }));
    }
    for t in tasks {
        let head = t.await.unwrap();
        assert!(head.starts_with("HTTP/1.1 408"), "{head}");
        assert!(head.contains("seawall-error: body_read_timeout"), "{head}");
    }
    // The upstream is as healthy as ever.
    let r = get(g.addr, "/").await;
    assert_eq!(r.status, 200, "{:?}", r.error());
    let text = metrics_text(g.admin).await;
    assert_eq!(
        metric(&text, "seawall_breaker_state", &[("upstream", "up")]),
        Some(0.0),
        "{text}"
    );
    let view = admin_get(g.admin, "/upstreams").await;
    let json: serde_json::Value = serde_json::from_slice(&view.body).unwrap();
    let rtt = json["upstreams"][0]["endpoints"][0]["rtt_estimate_ms"]
        .as_f64()
        .unwrap_or(0.0);
    assert!(rtt < 500.0, "slow uploads fed the latency estimate: {json}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_malformed_chunked_body_gets_400_not_499() {
    let sim = sim().await;
    let g = one_connection_gateway(sim.local_addr(), "5s", "").await;
    let head = raw_exchange(
        g.addr,
        b"POST /echo HTTP/1.1\r\nhost: x\r\ntransfer-encoding: chunked\r\n\r\nzz\r\n\r\n",
        MS(3000),
    )
    .await;
    assert!(head.starts_with("HTTP/1.1 400"), "{head}");
    assert!(head.contains("seawall-error: bad_request"), "{head}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn graceful_shutdown_lets_every_http2_stream_finish() {
    let sim = sim().await;
    let yaml = config(
        &[],
        &[route("r", "*", "/", "up", "10s", "")],
        &[upstream("up", &[sim.local_addr()], "", "")],
    );
    let g = start(&yaml).await;
    let stream = TcpStream::connect(g.addr).await.unwrap();
    let (sender, conn) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(stream))
            .await
            .expect("h2 handshake");
    tokio::spawn(conn);
    let mut streams = Vec::new();
    for i in 0..20 {
        let mut sender = sender.clone();
        streams.push(tokio::spawn(async move {
            // Half answer late, half stream a larger body.
            let path = if i % 2 == 0 {
                "http://x/delay/700ms"
            } else {
                "http://x/drip?bytes=200000&duration=700ms"
            };
            let req = http::Request::get(path)
                .body(Full::<Bytes>::default())
                .unwrap();
            let resp = sender.send_request(req).await?;
            let status = resp.status();
            let body = resp.into_body().collect().await?.to_bytes();
            Ok::<_, hyper::Error>((status, body.len(), i))
        }));
    }
    tokio::time::sleep(MS(300)).await;
    assert!(g.gw.shutdown(MS(10_000)).await, "drain failed");
    for s in streams {
        let (status, len, i) = s.await.unwrap().expect("stream completed");
        assert_eq!(status, 200);
        if i % 2 == 1 {
            assert_eq!(len, 200_000);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_longer_than_per_try_timeout_still_streams_to_the_end() {
    // The pool's lease timer must follow the request's deadline, not the try's: the
    // per-try timeout bounds only the wait for the response head.
    let sim = sim().await;
    let r = route("r", "*", "/", "up", "8s", "access_log");
    let r = format!(
        "{}, retry: {{max_attempts: 2, per_try_timeout: 300ms}}}}",
        r.trim_end_matches('}')
    );
    let yaml = config(&[], &[r], &[upstream("up", &[sim.local_addr()], "", "")]);
    let g = start(&yaml).await;
    let t = Instant::now();
    let r = get(g.addr, "/drip?bytes=100000&duration=4500ms").await;
    assert_eq!(r.status, 200, "{:?}", r.error());
    assert_eq!(
        r.body.len(),
        100_000,
        "the body was cut after {:?}",
        t.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_body_failures_keep_their_kind_on_an_http2_upstream() {
    // hyper resets the upstream stream when the request body fails, which alone would
    // read as `upstream_reset` and count against a healthy upstream.
    let sim = sim().await;
    let yaml = config(
        &["body_read_timeout: 500ms"],
        &[route("r", "*", "/", "h2", "5s", "access_log")],
        &[format!(
            "{{name: h2, endpoints: [\"{}\"], protocol: http2}}",
            sim.local_addr()
        )],
    );
    let g = start(&yaml).await;
    let slow = raw_exchange(
        g.addr,
        b"POST /echo HTTP/1.1\r\nhost: x\r\ncontent-length: 1000\r\n\r\n0123456789",
        MS(5000),
    )
    .await;
    assert!(slow.starts_with("HTTP/1.1 408"), "{slow}");
    assert!(slow.contains("seawall-error: body_read_timeout"), "{slow}");
    let malformed = raw_exchange(
        g.addr,
        b"POST /echo HTTP/1.1\r\nhost: x\r\ntransfer-encoding: chunked\r\n\r\n5\r\nhello\r\nzz\r\n\r\n",
        MS(5000),
    )
    .await;
    assert!(malformed.starts_with("HTTP/1.1 400"), "{malformed}");
}
