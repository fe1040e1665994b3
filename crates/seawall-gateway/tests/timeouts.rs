//! Every upstream-side timeout and failure kind, end to end through a real gateway and a
//! real sim on 127.0.0.1: each must produce the documented status and `seawall-error`
//! reason, and the timeouts must fire near their configured value (generous margins).

mod support;

use std::{
    net::SocketAddr,
    time::{Duration, Instant},
};

use support::*;

const MS: fn(u64) -> Duration = Duration::from_millis;

async fn gateway_for(
    endpoint: SocketAddr,
    route_timeout: &str,
    timeouts: &str,
    pool: &str,
) -> TestGateway {
    let yaml = config(
        &[],
        &[route("r", "*", "/", "up", route_timeout, "access_log")],
        &[upstream("up", &[endpoint], timeouts, pool)],
    );
    start(&yaml).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_response_head_gets_504_response_header_timeout_after_about_300ms() {
    let sim = sim().await;
    let mut g = gateway_for(sim.local_addr(), "10s", "response_header: 300ms", "").await;
    let t = Instant::now();
    let r = get(g.addr, "/delay/5s").await;
    let elapsed = t.elapsed();
    assert_eq!(r.status, 504, "{}", r.text());
    assert_eq!(r.error(), Some("response_header_timeout"));
    assert_between("response_header timeout", elapsed, MS(250), MS(2500));
    // The access log records the same classification.
    let line = log_line(&mut g.log, MS(2000), |v| v["path"] == "/delay/5s")
        .await
        .expect("access log line");
    assert_eq!(line["error"], "response_header_timeout");
    assert_eq!(line["status"], 504);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn route_deadline_without_header_timeout_gets_504_deadline_exceeded() {
    let sim = sim().await;
    let g = gateway_for(sim.local_addr(), "300ms", "", "").await;
    let t = Instant::now();
    let r = get(g.addr, "/delay/5s").await;
    let elapsed = t.elapsed();
    assert_eq!(r.status, 504, "{}", r.text());
    assert_eq!(r.error(), Some("deadline_exceeded"));
    assert_between("route deadline", elapsed, MS(250), MS(2500));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deadline_cuts_a_slow_response_body_mid_stream() {
    let sim = sim().await;
    let mut g = gateway_for(sim.local_addr(), "500ms", "", "").await;
    let mut c = Conn::open(g.addr).await;
    let t = Instant::now();
    let resp = c
        .send_streaming(get_req("/drip?bytes=100&duration=3s"))
        .await
        .expect("the head arrives before the deadline");
    assert_eq!(resp.status(), 200);
    // Read the body frame by frame until it ends or fails.
    use http_body_util::BodyExt;
    let mut body = resp.into_body();
    let mut got = 0usize;
    let mut failed = false;
    while let Ok(Some(frame)) = tokio::time::timeout(MS(5000), body.frame()).await {
        match frame {
            Ok(f) => got += f.data_ref().map_or(0, |d| d.len()),
            Err(_) => {
                failed = true;
                break;
            }
        }
    }
    let elapsed = t.elapsed();
    assert!(
        failed || got < 100,
        "the body must be cut off: got {got} bytes, failed={failed}"
    );
    assert!(
        got < 100,
        "got the whole body ({got} bytes) despite the 500ms deadline"
    );
    assert_between("body cut by deadline", elapsed, MS(400), MS(2500));
    let line = log_line(&mut g.log, MS(2000), |v| v["path"] == "/drip")
        .await
        .expect("access log line");
    assert_eq!(line["error"], "deadline_exceeded", "{line}");
}

/// A listener that never accepts, with its accept queue already full, so further SYNs
/// are dropped and a connect hangs. Returns the address and the sockets to keep alive.
async fn blackhole() -> (SocketAddr, socket2::Socket, Vec<tokio::net::TcpStream>) {
    use socket2::{Domain, Socket, Type};
    let s = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
    s.bind(&"127.0.0.1:0".parse::<SocketAddr>().unwrap().into())
        .unwrap();
    s.listen(1).unwrap();
    let addr = s.local_addr().unwrap().as_socket().unwrap();
    let mut fillers = Vec::new();
    for _ in 0..8 {
        if let Ok(Ok(c)) = tokio::time::timeout(MS(100), tokio::net::TcpStream::connect(addr)).await
        {
            fillers.push(c);
        }
    }
    // Check that the queue really is full: one more connect must hang.
    let probe = tokio::time::timeout(MS(300), tokio::net::TcpStream::connect(addr)).await;
    assert!(
        probe.is_err(),
        "the accept queue is not full; this box does not drop SYNs ({} fillers)",
        fillers.len()
    );
    (addr, s, fillers)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unanswered_connect_gets_504_connect_timeout_after_about_300ms() {
    let (addr, _listener, _fillers) = blackhole().await;
    let g = gateway_for(addr, "10s", "connect: 300ms", "").await;
    let t = Instant::now();
    let r = get(g.addr, "/").await;
    let elapsed = t.elapsed();
    assert_eq!(r.status, 504, "{}", r.text());
    assert_eq!(r.error(), Some("connect_timeout"));
    assert_between("connect timeout", elapsed, MS(250), MS(2500));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_connect_gets_502_connect_error() {
    // A port that was just free: bind, read it, close.
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let mut g = gateway_for(closed, "10s", "", "").await;
    let t = Instant::now();
    let r = get(g.addr, "/").await;
    assert_eq!(r.status, 502, "{}", r.text());
    assert_eq!(r.error(), Some("connect_error"));
    assert!(t.elapsed() < MS(2000), "a refused connect fails fast");
    // The access log names the endpoint that refused, although no connection existed.
    let line = log_line(&mut g.log, MS(2000), |v| v["status"] == 502).await;
    let line = line.expect("an access log line for the 502");
    assert_eq!(line["endpoint"], closed.to_string(), "{line}");
    assert_eq!(line["reused"], false, "{line}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upstream_reset_or_close_without_response_gets_502_upstream_reset() {
    let sim = sim().await;
    let g = gateway_for(sim.local_addr(), "10s", "", "").await;
    for path in ["/reset", "/close"] {
        let r = get(g.addr, path).await;
        assert_eq!(r.status, 502, "{path}: {}", r.text());
        assert_eq!(r.error(), Some("upstream_reset"), "{path}");
    }
    // The gateway still serves normally afterwards.
    assert_eq!(get(g.addr, "/").await.status, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn busy_endpoint_at_its_connection_limit_gets_503_pool_exhausted_after_checkout_timeout() {
    let sim = sim().await;
    let g = gateway_for(
        sim.local_addr(),
        "10s",
        "",
        "max_connections_per_endpoint: 1, max_idle_per_endpoint: 1, checkout_timeout: 200ms",
    )
    .await;
    let addr = g.addr;
    let first = tokio::spawn(async move { get(addr, "/delay/2s").await });
    assert!(
        eventually(MS(2000), || async { sim.stats().requests_in_flight == 1 }).await,
        "the first request never reached the sim"
    );
    let t = Instant::now();
    let r = get(g.addr, "/").await;
    let elapsed = t.elapsed();
    assert_eq!(r.status, 503, "{}", r.text());
    assert_eq!(r.error(), Some("pool_exhausted"));
    assert_between("checkout timeout", elapsed, MS(150), MS(1500));
    // The request holding the only connection is unaffected.
    assert_eq!(first.await.unwrap().status, 200);
    assert_eq!(sim.stats().connections_accepted, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_matching_no_route_gets_404_no_route_and_never_reaches_the_upstream() {
    let sim = sim().await;
    let yaml = config(
        &[],
        &[route("only", "only.example", "/", "up", "10s", "")],
        &[upstream("up", &[sim.local_addr()], "", "")],
    );
    let g = start(&yaml).await;
    let r = get(g.addr, "/").await; // Host: test.local
    assert_eq!(r.status, 404, "{}", r.text());
    assert_eq!(r.error(), Some("no_route"));
    assert_eq!(sim.stats().requests, 0);
    assert_eq!(sim.stats().connections_accepted, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn response_header_timeout_starts_after_a_slow_request_body_is_sent() {
    use tokio::io::AsyncWriteExt;
    let sim = sim().await;
    let g = gateway_for(sim.local_addr(), "10s", "response_header: 300ms", "").await;
    // A body trickled over ~1.2s: longer than the response_header timeout, but the upstream
    // answers at once after the last byte.
    let mut s = tokio::net::TcpStream::connect(g.addr).await.unwrap();
    s.write_all(b"POST /echo HTTP/1.1\r\nHost: test.local\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    // Write errors are ignored: a gateway that (wrongly) answers early closes the socket,
    // and the assertion below shows what it answered.
    for _ in 0..12 {
        let _ = s.write_all(b"a\r\n0123456789\r\n").await;
        tokio::time::sleep(MS(100)).await;
    }
    let _ = s.write_all(b"0\r\n\r\n").await;
    let (out, _) = read_until_close(&mut s, MS(5000)).await;
    let raw = String::from_utf8_lossy(&out);
    assert!(raw.starts_with("HTTP/1.1 200"), "{raw}");
    assert!(raw.contains("\"body_bytes\":120"), "{raw}");

    // Once the body is sent, the timer still applies to a slow upstream.
    let t = Instant::now();
    let r = send(
        g.addr,
        req(http::Method::POST, "/delay/5s")
            .body(http_body_util::Full::new(bytes::Bytes::from_static(
                b"payload",
            )))
            .unwrap(),
    )
    .await
    .unwrap();
    assert_eq!(r.status, 504, "{}", r.text());
    assert_eq!(r.error(), Some("response_header_timeout"));
    assert_between(
        "response_header after a body",
        t.elapsed(),
        MS(250),
        MS(2500),
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deadline_shorter_than_an_inner_timeout_is_what_fires_and_is_reported() {
    // Busy pool: the 300ms deadline comes before the 2s checkout_timeout. The request
    // holding the only connection uses a route with a long timeout.
    let sim = sim().await;
    let yaml = config(
        &[],
        &[
            route("short", "*", "/", "up", "300ms", ""),
            route("long", "*", "/delay", "up", "10s", ""),
        ],
        &[upstream(
            "up",
            &[sim.local_addr()],
            "",
            "max_connections_per_endpoint: 1, max_idle_per_endpoint: 1, checkout_timeout: 2s",
        )],
    );
    let g = start(&yaml).await;
    let addr = g.addr;
    let hog = tokio::spawn(async move { get(addr, "/delay/1s").await });
    assert!(eventually(MS(2000), || async { sim.stats().requests_in_flight == 1 }).await);
    let t = Instant::now();
    let r = get(g.addr, "/").await;
    assert_eq!(r.status, 504, "{}", r.text());
    assert_eq!(r.error(), Some("deadline_exceeded"));
    assert_between("deadline during checkout", t.elapsed(), MS(150), MS(1500));
    assert_eq!(hog.await.unwrap().status, 200);

    // Hanging connect: the 300ms deadline comes before the 2s connect timeout.
    let (blackholed, _listener, _fillers) = blackhole().await;
    let g = gateway_for(blackholed, "300ms", "connect: 2s", "").await;
    let t = Instant::now();
    let r = get(g.addr, "/").await;
    assert_eq!(r.status, 504, "{}", r.text());
    assert_eq!(r.error(), Some("deadline_exceeded"));
    assert_between("deadline during connect", t.elapsed(), MS(250), MS(1800));
}
