//! A client that leaves mid-request: the gateway must stop waiting on the upstream at once
//! (the sim sees the request cancelled and the connection closed), and the access log
//! records `client_closed` with status 499. A client that only half-closes (shuts down its
//! sending side after the request) is treated the same way: EOF is how a leaving client is
//! noticed (see docs/configuration.md, "Half-closed clients"). Also checks the access log
//! line's fields for normal requests.

mod support;

use std::time::{Duration, Instant};

use support::*;

const MS: fn(u64) -> Duration = Duration::from_millis;

async fn gateway() -> (seawall_sim::Sim, TestGateway) {
    let sim = sim().await;
    let yaml = config(
        &[],
        &[route("r", "*", "/", "up", "10s", "request_id, access_log")],
        &[upstream("up", &[sim.local_addr()], "", "")],
    );
    let g = start(&yaml).await;
    (sim, g)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_leaving_before_the_response_cancels_the_upstream_request_and_logs_499() {
    let (sim, mut g) = gateway().await;
    let c = {
        let mut c = Conn::open(g.addr).await;
        let pending = tokio::spawn(async move {
            let _ = c.send_streaming(get_req("/delay/3s")).await;
        });
        assert!(
            eventually(MS(2000), || async { sim.stats().requests_in_flight == 1 }).await,
            "request never reached the sim"
        );
        tokio::time::sleep(MS(200)).await;
        pending
    };
    // Drop the client: abort the task that owns the connection.
    c.abort();
    let left = Instant::now();
    assert!(
        eventually(MS(1500), || async {
            let s = sim.stats();
            s.requests_cancelled == 1 && s.connections_open == 0
        })
        .await,
        "the gateway kept waiting on the upstream: {:?}",
        sim.stats()
    );
    assert!(left.elapsed() < MS(1500));
    let line = log_line(&mut g.log, MS(2000), |v| v["path"] == "/delay/3s")
        .await
        .expect("an access log line for the abandoned request");
    assert_eq!(line["error"], "client_closed", "{line}");
    assert_eq!(line["status"], 499, "{line}");
    assert_eq!(line["route"], "r");
    assert_eq!(line["upstream"], "up");
    assert_eq!(line["endpoint"], sim.local_addr().to_string());
    let ms = line["duration_ms"]
        .as_f64()
        .expect("duration_ms is a number");
    assert!((150.0..2500.0).contains(&ms), "{line}");
    let m = metrics_text(g.admin).await;
    assert_eq!(
        metric(
            &m,
            "seawall_errors_total",
            &[("route", "r"), ("kind", "client_closed")]
        ),
        Some(1.0),
        "{m}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_leaving_mid_body_is_logged_as_client_closed() {
    let (sim, mut g) = gateway().await;
    {
        let mut c = Conn::open(g.addr).await;
        let resp = c
            .send_streaming(get_req("/drip?bytes=1000&duration=3s"))
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
        tokio::time::sleep(MS(200)).await;
        c.task.abort();
    }
    let line = log_line(&mut g.log, MS(2000), |v| v["path"] == "/drip")
        .await
        .expect("log line");
    assert_eq!(line["error"], "client_closed", "{line}");
    assert_eq!(line["status"], 499, "{line}");
    assert!(
        eventually(MS(1500), || async { sim.stats().requests_cancelled == 1 }).await,
        "{:?}",
        sim.stats()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn access_log_line_carries_route_upstream_endpoint_status_duration_error_and_reuse() {
    let (sim, mut g) = gateway().await;
    let mut c = Conn::open(g.addr).await;
    assert_eq!(c.get("/").await.status, 200);
    assert_eq!(c.get("/status/503").await.status, 503);
    let first = log_line(&mut g.log, MS(2000), |v| v["path"] == "/")
        .await
        .unwrap();
    let second = log_line(&mut g.log, MS(2000), |v| v["path"] == "/status/503")
        .await
        .unwrap();
    for (line, status, reused) in [(&first, 200, false), (&second, 503, true)] {
        assert_eq!(line["route"], "r", "{line}");
        assert_eq!(line["listener"], "public", "{line}");
        assert_eq!(line["method"], "GET", "{line}");
        assert_eq!(line["upstream"], "up", "{line}");
        assert_eq!(line["endpoint"], sim.local_addr().to_string(), "{line}");
        assert_eq!(line["status"], status, "{line}");
        assert_eq!(line["reused"], reused, "{line}");
        // An upstream's own 503 is not a gateway error.
        assert!(line["error"].is_null(), "{line}");
        assert!(
            line["duration_ms"].as_f64().is_some_and(|d| d >= 0.0),
            "{line}"
        );
        assert!(
            line["request_id"].as_str().is_some_and(|s| !s.is_empty()),
            "{line}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn h2_stream_reset_by_the_client_cancels_the_upstream_request() {
    use hyper_util::rt::{TokioExecutor, TokioIo};
    let (sim, mut g) = gateway().await;
    let stream = tokio::net::TcpStream::connect(g.addr).await.unwrap();
    let (mut sender, conn) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(stream))
            .await
            .unwrap();
    tokio::spawn(conn);
    let req = http::Request::get("http://test.local/delay/3s")
        .body(http_body_util::Full::<bytes::Bytes>::default())
        .unwrap();
    let pending = tokio::spawn(sender.send_request(req));
    assert!(
        eventually(MS(2000), || async { sim.stats().requests_in_flight == 1 }).await,
        "request never reached the sim"
    );
    // Dropping the response future resets the stream; the connection stays up.
    pending.abort();
    assert!(
        eventually(MS(1500), || async { sim.stats().requests_cancelled == 1 }).await,
        "the gateway kept waiting on the upstream: {:?}",
        sim.stats()
    );
    let line = log_line(&mut g.log, MS(2000), |v| v["path"] == "/delay/3s")
        .await
        .expect("log line");
    assert_eq!(line["error"], "client_closed", "{line}");
    // The h2 connection still serves other streams.
    let req = http::Request::get("http://test.local/")
        .body(http_body_util::Full::<bytes::Bytes>::default())
        .unwrap();
    let resp = tokio::time::timeout(MS(3000), sender.send_request(req))
        .await
        .expect("in time")
        .expect("h2 connection still usable");
    assert_eq!(resp.status(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_leaving_mid_upload_cancels_the_upstream_request() {
    use tokio::io::AsyncWriteExt;
    let (sim, mut g) = gateway().await;
    let mut s = tokio::net::TcpStream::connect(g.addr).await.unwrap();
    s.write_all(b"POST /echo HTTP/1.1\r\nHost: test.local\r\nContent-Length: 1000\r\n\r\n")
        .await
        .unwrap();
    s.write_all(&[b'x'; 100]).await.unwrap();
    assert!(
        eventually(MS(2000), || async { sim.stats().requests_in_flight == 1 }).await,
        "request never reached the sim"
    );
    drop(s);
    // The gateway closes the upstream connection mid-body. (The sim's /echo sees that as
    // a failed body read and answers 400 into the void, so it counts the request as
    // finished rather than cancelled; what matters is that nothing is left open.)
    assert!(
        eventually(MS(1500), || async {
            let st = sim.stats();
            st.requests_in_flight == 0 && st.connections_open == 0
        })
        .await,
        "the upstream exchange was not abandoned: {:?}",
        sim.stats()
    );
    let line = log_line(&mut g.log, MS(2000), |v| v["path"] == "/echo")
        .await
        .expect("log line");
    assert_eq!(line["error"], "client_closed", "{line}");
    assert_eq!(line["status"], 499, "{line}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_half_closes_after_its_request_is_treated_as_gone() {
    // Pinned on purpose: hyper's half_close(true) would answer it, but would also stop the
    // gateway from noticing clients that leave while the upstream works (the test above).
    use tokio::io::AsyncWriteExt;
    let (sim, mut g) = gateway().await;
    let mut s = tokio::net::TcpStream::connect(g.addr).await.unwrap();
    s.write_all(b"GET /delay/1s HTTP/1.1\r\nHost: test.local\r\n\r\n")
        .await
        .unwrap();
    s.shutdown().await.unwrap();
    let t = Instant::now();
    let (bytes, closed) = read_until_close(&mut s, MS(3000)).await;
    assert!(closed, "the half-closed connection was kept open");
    assert!(bytes.is_empty(), "{:?}", String::from_utf8_lossy(&bytes));
    assert!(
        t.elapsed() < MS(900),
        "closed only after the upstream answered"
    );
    let line = log_line(&mut g.log, MS(2000), |v| v["path"] == "/delay/1s")
        .await
        .expect("an access log line for the half-closed request");
    assert_eq!(line["error"], "client_closed", "{line}");
    assert_eq!(line["status"], 499, "{line}");
    // The upstream request is not left running either.
    assert!(
        eventually(MS(1500), || async { sim.stats().connections_open == 0 }).await,
        "{:?}",
        sim.stats()
    );
}
