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
    let g = gateway_for(closed, "10s", "", "").await;
    let t = Instant::now();
    let r = get(g.addr, "/").await;
    assert_eq!(r.status, 502, "{}", r.text());
    assert_eq!(r.error(), Some("connect_error"));
    assert!(t.elapsed() < MS(2000), "a refused connect fails fast");
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
