//! The `fault` layer through a real gateway and a real sim: an abort answers itself with
//! `seawall-fault` and never reaches the upstream; a delay holds the request and then
//! forwards it (the header is added to the upstream's response); `first` faults only the
//! first N requests; `percentage` with a seed lands inside binomial bounds; matches on
//! method, path and header; gRPC requests get a trailers-only `grpc-status`; `reset` and
//! `close` end the connection without a response (HTTP/1.1: an RST, a clean EOF; HTTP/2:
//! the stream reset with `INTERNAL_ERROR`, or with `CANCEL` and a GOAWAY, the other streams
//! finishing), and many resets leave no connection slot or descriptor behind; each action is counted; a throttled
//! body takes its size over the rate; header-triggered faults act only where the layer
//! allows them, capped by the rule's percentage, and never reach the upstream; a rule acts
//! only inside its `after` / `for` window.

mod support;

use std::{
    net::SocketAddr,
    time::{Duration, Instant},
};

use std::io::ErrorKind;

use bytes::Bytes;
use http::Method;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::{TokioExecutor, TokioIo};
use support::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const MS: fn(u64) -> Duration = Duration::from_millis;

fn yaml(sim: SocketAddr, layer: &str) -> String {
    config(
        &[],
        &[route(
            "faulty",
            "*",
            "/",
            "sim",
            "5s",
            &format!("access_log, {{fault: {layer}}}"),
        )],
        &[upstream("sim", &[sim], "", "")],
    )
}

async fn injected(g: &TestGateway, fault: &str, action: &str) -> Option<f64> {
    let text = metrics_text(g.admin).await;
    metric(
        &text,
        "seawall_faults_injected_total",
        &[
            ("scope", "route"),
            ("target", "faulty"),
            ("fault", fault),
            ("action", action),
        ],
    )
}

#[tokio::test]
async fn an_abort_answers_with_its_status_and_header_and_never_reaches_the_upstream() {
    let sim = sim().await;
    let mut g = start(&yaml(
        sim.local_addr(),
        "{rules: [{name: outage, abort: {status: 503}}]}",
    ))
    .await;
    for _ in 0..3 {
        let r = get(g.addr, "/echo").await;
        assert_eq!(r.status, 503, "{}", r.text());
        assert_eq!(r.header("seawall-fault"), Some("outage"));
        assert_eq!(r.error(), None, "a fault is not a gateway error");
        assert!(r.text().contains("fault injected"), "{}", r.text());
    }
    assert_eq!(sim.stats().requests, 0, "the upstream saw nothing");
    assert_eq!(injected(&g, "outage", "abort").await, Some(3.0));
    assert_eq!(injected(&g, "outage", "delay").await, Some(0.0));
    let line = log_line(&mut g.log, MS(2000), |v| v["status"] == 503).await;
    assert_eq!(line.expect("an access log line")["fault"], "outage");
}

#[tokio::test]
async fn a_delay_holds_the_request_then_forwards_it_with_the_header() {
    let sim = sim().await;
    let g = start(&yaml(
        sim.local_addr(),
        "{rules: [{name: slow, delay: {fixed: 300ms}}]}",
    ))
    .await;
    let started = Instant::now();
    let r = get(g.addr, "/echo").await;
    let elapsed = started.elapsed();
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.header("seawall-fault"), Some("slow"));
    r.echo();
    assert_between("delayed request", elapsed, MS(290), MS(2000));
    assert_eq!(sim.stats().requests, 1);
    assert_eq!(injected(&g, "slow", "delay").await, Some(1.0));
}

#[tokio::test]
async fn a_delay_then_abort_waits_then_answers() {
    let sim = sim().await;
    let g = start(&yaml(
        sim.local_addr(),
        "{rules: [{name: slow_fail, delay: {uniform: {min: 200ms, max: 250ms}}, abort: {status: 500}}]}",
    ))
    .await;
    let started = Instant::now();
    let r = get(g.addr, "/echo").await;
    assert_between("delayed abort", started.elapsed(), MS(190), MS(2000));
    assert_eq!(r.status, 500);
    assert_eq!(r.header("seawall-fault"), Some("slow_fail"));
    assert_eq!(sim.stats().requests, 0);
    assert_eq!(injected(&g, "slow_fail", "delay").await, Some(1.0));
    assert_eq!(injected(&g, "slow_fail", "abort").await, Some(1.0));
}

#[tokio::test]
async fn first_faults_only_the_first_n_requests() {
    let sim = sim().await;
    let g = start(&yaml(
        sim.local_addr(),
        "{rules: [{name: flaky, first: 2, abort: {status: 503}}]}",
    ))
    .await;
    let mut conn = Conn::open(g.addr).await;
    let statuses: Vec<u16> = {
        let mut v = Vec::new();
        for _ in 0..3 {
            v.push(conn.get("/echo").await.status);
        }
        v
    };
    assert_eq!(statuses, [503, 503, 200]);
    let r = conn.get("/echo").await;
    assert_eq!(r.status, 200);
    assert_eq!(
        r.header("seawall-fault"),
        None,
        "an unfaulted response has no header"
    );
    assert_eq!(sim.stats().requests, 2);
}

#[tokio::test]
async fn a_seeded_percentage_lands_inside_binomial_bounds() {
    let sim = sim().await;
    let g = start(&yaml(
        sim.local_addr(),
        "{seed: 42, rules: [{name: some, percentage: 30, abort: {status: 503}}]}",
    ))
    .await;
    let mut conn = Conn::open(g.addr).await;
    let mut faulted = 0;
    for _ in 0..1000 {
        let r = conn.get("/echo").await;
        if r.status == 503 {
            assert_eq!(r.header("seawall-fault"), Some("some"));
            faulted += 1;
        } else {
            assert_eq!(r.status, 200);
        }
    }
    // Mean 300, standard deviation about 14.5: ±60 is over four of them.
    assert!((240..=360).contains(&faulted), "{faulted} of 1000 faulted");
    assert_eq!(sim.stats().requests, 1000 - faulted);
    assert_eq!(injected(&g, "some", "abort").await, Some(faulted as f64));
}

#[tokio::test]
async fn rules_match_on_method_path_and_header_and_the_first_selected_applies() {
    let sim = sim().await;
    let g = start(&yaml(
        sim.local_addr(),
        "{rules: [
            {name: posts, match: {methods: [POST], path_prefix: /api}, abort: {status: 502}},
            {name: drill, match: {headers: {x-drill: \"on\"}}, abort: {status: 504}},
            {name: never, percentage: 0, abort: {status: 500}}]}",
    ))
    .await;
    let send = |method: Method, path: &'static str, drill: bool| {
        let addr = g.addr;
        async move {
            let mut b = req(method, path);
            if drill {
                b = b.header("x-drill", "on");
            }
            send(addr, b.body(Full::<Bytes>::default()).unwrap())
                .await
                .unwrap()
        }
    };
    let r = send(Method::POST, "/api/orders", false).await;
    assert_eq!((r.status, r.header("seawall-fault")), (502, Some("posts")));
    // Not faulted: these reach the sim (which knows neither path: 404).
    let r = send(Method::GET, "/api/orders", false).await;
    assert_eq!((r.status, r.header("seawall-fault")), (404, None));
    let r = send(Method::POST, "/other", false).await;
    assert_eq!((r.status, r.header("seawall-fault")), (404, None));
    let r = send(Method::GET, "/other", true).await;
    assert_eq!((r.status, r.header("seawall-fault")), (504, Some("drill")));
    // Both match: the first rule wins.
    let r = send(Method::POST, "/api/x", true).await;
    assert_eq!(r.header("seawall-fault"), Some("posts"));
    assert_eq!(sim.stats().requests, 2);
}

#[tokio::test]
async fn a_grpc_request_gets_a_trailers_only_grpc_status() {
    let sim = sim().await;
    let g = start(&yaml(
        sim.local_addr(),
        "{rules: [{name: unavailable, abort: {status: 503, grpc_status: 14}}]}",
    ))
    .await;
    let grpc = req(Method::POST, "/pkg.Svc/Call")
        .header("content-type", "application/grpc")
        .body(Full::<Bytes>::default())
        .unwrap();
    let r = send(g.addr, grpc).await.unwrap();
    assert_eq!(r.status, 200);
    assert_eq!(r.header("grpc-status"), Some("14"));
    assert_eq!(r.header("content-type"), Some("application/grpc"));
    assert_eq!(r.header("seawall-fault"), Some("unavailable"));
    assert!(r.body.is_empty());
    // Other requests get the HTTP status.
    let r = get(g.addr, "/echo").await;
    assert_eq!((r.status, r.header("grpc-status")), (503, None));
    assert_eq!(injected(&g, "unavailable", "grpc_abort").await, Some(1.0));
    assert_eq!(injected(&g, "unavailable", "abort").await, Some(1.0));
    assert_eq!(sim.stats().requests, 0);
}

/// Sends one HTTP/1.1 GET on a raw socket and reads until the gateway ends the connection:
/// the bytes read and how it ended (`Ok(())` for a clean EOF, else the read error).
async fn raw_get_until_end(addr: SocketAddr, path: &str) -> (Vec<u8>, std::io::Result<()>) {
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    s.write_all(format!("GET {path} HTTP/1.1\r\nhost: test.local\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match tokio::time::timeout(MS(3000), s.read(&mut buf)).await {
            Err(_) => panic!("GET {path}: the connection did not end within 3 s"),
            Ok(Ok(0)) => return (out, Ok(())),
            Ok(Ok(n)) => out.extend_from_slice(&buf[..n]),
            Ok(Err(e)) => return (out, Err(e)),
        }
    }
}

#[tokio::test]
async fn http1_reset_is_a_tcp_rst_and_close_a_clean_eof_without_a_response() {
    for (name, action) in [("rst", "reset"), ("fin", "close")] {
        let sim = sim().await;
        let mut g = start(&yaml(
            sim.local_addr(),
            &format!("{{rules: [{{name: {name}, abort: {{{action}: true}}}}]}}"),
        ))
        .await;
        let (bytes, end) = raw_get_until_end(g.addr, "/echo").await;
        assert!(
            bytes.is_empty(),
            "{action}: no response bytes, got {:?}",
            String::from_utf8_lossy(&bytes)
        );
        match (action, end) {
            ("reset", Err(e)) => assert_eq!(e.kind(), ErrorKind::ConnectionReset, "{e}"),
            ("close", Ok(())) => {}
            (action, end) => panic!("{action}: ended with {end:?}"),
        }
        assert_eq!(sim.stats().requests, 0);
        assert_eq!(injected(&g, name, action).await, Some(1.0));
        let line = log_line(&mut g.log, MS(2000), |v| v["path"] == "/echo").await;
        let line = line.expect("an access log line");
        assert_eq!(line["fault"], name, "{line}");
        assert_eq!(line["status"], 444, "no response: {line}");
        assert!(line["error"].is_null(), "{line}");
    }
}

/// An h2c (prior knowledge) connection to `addr`, and its connection task.
async fn h2c(
    addr: SocketAddr,
) -> (
    hyper::client::conn::http2::SendRequest<Full<Bytes>>,
    tokio::task::JoinHandle<Result<(), hyper::Error>>,
) {
    let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let (sender, conn) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(stream))
            .await
            .expect("h2 handshake");
    (sender, tokio::spawn(conn))
}

fn h2_get(path: &str) -> http::Request<Full<Bytes>> {
    http::Request::get(format!("http://test.local{path}"))
        .body(Full::default())
        .unwrap()
}

/// The HTTP/2 error code that reset a stream, from the client's error.
fn reset_reason(e: &hyper::Error) -> Option<h2::Reason> {
    let mut source = std::error::Error::source(e);
    while let Some(err) = source {
        if let Some(h2) = err.downcast_ref::<h2::Error>() {
            return h2.reason();
        }
        source = err.source();
    }
    None
}

/// A slow stream (`/delay/…`, forwarded) and a faulted one (`/boom`) on one connection.
fn h2_yaml(sim: SocketAddr, action: &str) -> String {
    yaml(
        sim,
        &format!(
            "{{rules: [{{name: boom, match: {{path_prefix: /boom}}, abort: {{{action}: true}}}}]}}"
        ),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http2_reset_resets_only_its_stream_with_internal_error() {
    let sim = sim().await;
    let mut g = start(&h2_yaml(sim.local_addr(), "reset")).await;
    let (sender, conn) = h2c(g.addr).await;
    let mut slow = sender.clone();
    let slow = tokio::spawn(async move { slow.send_request(h2_get("/delay/300ms")).await });
    tokio::time::sleep(MS(50)).await;
    let mut faulted = sender.clone();
    let e = tokio::time::timeout(MS(3000), faulted.send_request(h2_get("/boom")))
        .await
        .expect("the faulted stream ends in time")
        .expect_err("the faulted stream is reset");
    assert_eq!(reset_reason(&e), Some(h2::Reason::INTERNAL_ERROR), "{e:?}");
    let resp = tokio::time::timeout(MS(3000), slow)
        .await
        .expect("the parallel stream ends in time")
        .unwrap()
        .expect("the parallel stream completes");
    assert_eq!(resp.status(), 200);
    resp.into_body().collect().await.expect("its whole body");
    // The connection carries on: a new stream after the reset works.
    let mut again = sender.clone();
    let r = again
        .send_request(h2_get("/echo"))
        .await
        .expect("a later stream");
    assert_eq!(r.status(), 200);
    assert!(!conn.is_finished(), "the connection stays open");
    assert_eq!(injected(&g, "boom", "reset").await, Some(1.0));
    let line = log_line(&mut g.log, MS(2000), |v| v["path"] == "/boom").await;
    let line = line.expect("an access log line");
    assert_eq!(line["fault"], "boom", "{line}");
    assert_eq!(line["status"], 444, "{line}");
    assert_eq!(
        sim.stats().requests,
        2,
        "the faulted stream never went upstream"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http2_close_cancels_its_stream_and_ends_the_connection_gracefully() {
    let sim = sim().await;
    let mut g = start(&h2_yaml(sim.local_addr(), "close")).await;
    let (sender, conn) = h2c(g.addr).await;
    let mut slow = sender.clone();
    let slow = tokio::spawn(async move { slow.send_request(h2_get("/delay/500ms")).await });
    tokio::time::sleep(MS(50)).await;
    let mut faulted = sender.clone();
    let e = tokio::time::timeout(MS(3000), faulted.send_request(h2_get("/boom")))
        .await
        .expect("the faulted stream ends in time")
        .expect_err("the faulted stream is reset");
    assert_eq!(reset_reason(&e), Some(h2::Reason::CANCEL), "{e:?}");
    // The stream in flight when the GOAWAY went out still finishes.
    let resp = tokio::time::timeout(MS(3000), slow)
        .await
        .expect("the parallel stream ends in time")
        .unwrap()
        .expect("the in-flight stream completes after the GOAWAY");
    assert_eq!(resp.status(), 200);
    resp.into_body().collect().await.expect("its whole body");
    // Then the gateway closes the connection: the client's connection task ends cleanly.
    let ended = tokio::time::timeout(MS(3000), conn)
        .await
        .expect("the connection ends after its last stream");
    assert!(ended.unwrap().is_ok(), "a graceful end, not an error");
    let mut late = sender.clone();
    assert!(
        late.send_request(h2_get("/echo")).await.is_err(),
        "no new stream after the GOAWAY"
    );
    assert_eq!(injected(&g, "boom", "close").await, Some(1.0));
    let line = log_line(&mut g.log, MS(2000), |v| v["path"] == "/boom").await;
    assert_eq!(line.expect("an access log line")["fault"], "boom");
    assert_eq!(sim.stats().requests, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_resets_leave_no_connection_or_descriptor_behind() {
    let sim = sim().await;
    let g = start(&h2_yaml(sim.local_addr(), "reset")).await;
    let open = |text: &str| {
        metric(
            text,
            "seawall_downstream_connections_open",
            &[("listener", "public")],
        )
    };
    // Warm up (the admin client, the runtime's own descriptors) before counting.
    let _ = metrics_text(g.admin).await;
    let fds_before = open_fds();
    // 400 HTTP/1.1 connections, 8 at a time, each reset by the gateway.
    let addr = g.addr;
    let tasks: Vec<_> = (0..8)
        .map(|_| {
            tokio::spawn(async move {
                for _ in 0..50 {
                    let (bytes, end) = raw_get_until_end(addr, "/boom").await;
                    assert!(bytes.is_empty());
                    let e = end.expect_err("an RST");
                    assert_eq!(e.kind(), ErrorKind::ConnectionReset, "{e}");
                }
            })
        })
        .collect();
    for t in tasks {
        tokio::time::timeout(Duration::from_secs(30), t)
            .await
            .expect("400 resets within 30 s")
            .unwrap();
    }
    // And 1,100 reset streams on one HTTP/2 connection, which stays usable: more than h2's
    // limit on streams the library itself resets for errors (1,024 by default, after which
    // it sends GOAWAY), which the gateway's own resets must not count against.
    let (sender, conn) = h2c(g.addr).await;
    for _ in 0..1100 {
        let mut s = sender.clone();
        let e = s.send_request(h2_get("/boom")).await.expect_err("a reset");
        assert_eq!(reset_reason(&e), Some(h2::Reason::INTERNAL_ERROR));
    }
    let mut s = sender.clone();
    assert_eq!(s.send_request(h2_get("/echo")).await.unwrap().status(), 200);
    drop((s, sender));
    let _ = tokio::time::timeout(MS(3000), conn).await;
    let drained = eventually(MS(3000), || async {
        open(&metrics_text(g.admin).await) == Some(0.0)
    })
    .await;
    assert!(drained, "every client connection slot is released");
    assert_eq!(injected(&g, "boom", "reset").await, Some(1500.0));
    if let (Some(before), Some(_)) = (fds_before, open_fds()) {
        let settled = eventually(MS(3000), || async {
            open_fds().is_some_and(|now| now <= before + 4)
        })
        .await;
        assert!(
            settled,
            "descriptors: {before} before, {:?} after",
            open_fds()
        );
    }
}

/// The test process's open descriptors (the gateway runs in it), where /proc says.
fn open_fds() -> Option<usize> {
    std::fs::read_dir("/proc/self/fd").ok().map(|d| d.count())
}

#[tokio::test]
async fn the_debug_trace_names_the_fault() {
    // The debug token's variable: cargo sets CARGO_PKG_NAME for every test binary
    // (see tests/debug.rs).
    let token = std::env::var("CARGO_PKG_NAME").unwrap();
    let sim = sim().await;
    let yaml = config_with(
        "debug:\n  token_env: CARGO_PKG_NAME\n",
        &[],
        &[route(
            "faulty",
            "*",
            "/",
            "sim",
            "5s",
            "debug, {fault: {rules: [
                {name: gone, match: {path_prefix: /gone}, abort: {status: 410}},
                {name: late, delay: {fixed: 20ms}}]}}",
        )],
        &[upstream("sim", &[sim.local_addr()], "", "")],
    );
    let g = start(&yaml).await;
    for (path, decision, status) in [
        ("/gone", "aborted;fault=gone", 410),
        ("/echo", "delayed;fault=late", 200),
    ] {
        let r = send(
            g.addr,
            req(Method::GET, path)
                .header("seawall-debug", &token)
                .body(Full::<Bytes>::default())
                .unwrap(),
        )
        .await
        .unwrap();
        assert_eq!(r.status, status);
        let trace = r.header("seawall-debug-trace").unwrap_or_default();
        assert!(
            trace.contains("fault;dur=") && trace.contains(decision),
            "{path}: {trace}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_throttled_body_takes_its_size_over_the_rate() {
    let sim = sim().await;
    let g = start(&yaml(
        sim.local_addr(),
        "{rules: [{name: trickle, throttle: {bytes_per_second: 100000}}]}",
    ))
    .await;
    let started = Instant::now();
    let r = get(g.addr, "/bytes/200000").await;
    let elapsed = started.elapsed();
    assert_eq!(r.status, 200);
    assert_eq!(r.body.len(), 200_000);
    assert_eq!(r.header("seawall-fault"), Some("trickle"));
    // 2 s at the rate; the last slice (1/20 s worth) goes without waiting after it.
    assert_between("200 KB at 100 KB/s", elapsed, MS(1850), MS(4000));
    assert_eq!(injected(&g, "trickle", "throttle").await, Some(1.0));
}

fn drill(path: &str, headers: &[(&str, &str)]) -> http::Request<Full<Bytes>> {
    let mut b = req(Method::GET, path);
    for (n, v) in headers {
        b = b.header(*n, *v);
    }
    b.body(Full::default()).unwrap()
}

#[tokio::test]
async fn header_faults_act_only_where_allowed_and_never_reach_the_upstream() {
    let sim = sim().await;
    let g = start(&yaml(
        sim.local_addr(),
        "{allow_header_faults: true, rules: [{name: asked, match: {path_prefix: /echo}}]}",
    ))
    .await;
    let r = send(g.addr, drill("/echo", &[("seawall-fault-abort", "503")]))
        .await
        .unwrap();
    assert_eq!((r.status, r.header("seawall-fault")), (503, Some("asked")));
    assert_eq!(sim.stats().requests, 0);

    let started = Instant::now();
    let r = send(g.addr, drill("/echo", &[("seawall-fault-delay", "300ms")]))
        .await
        .unwrap();
    assert_between("header delay", started.elapsed(), MS(290), MS(2000));
    assert_eq!((r.status, r.header("seawall-fault")), (200, Some("asked")));
    let echo = r.echo();
    assert!(
        !echo.headers.contains_key("seawall-fault-delay"),
        "{:?}",
        echo.headers
    );

    // No header: the rule has no action of its own. Outside its match: nothing either.
    let r = get(g.addr, "/echo").await;
    assert_eq!((r.status, r.header("seawall-fault")), (200, None));
    let r = send(g.addr, drill("/other", &[("seawall-fault-abort", "503")]))
        .await
        .unwrap();
    assert_eq!((r.status, r.header("seawall-fault")), (404, None));

    // Without `allow_header_faults` the headers do nothing, and are still not forwarded.
    let sim2 = self::sim().await;
    let g2 = start(&yaml(
        sim2.local_addr(),
        "{rules: [{name: other, match: {path_prefix: /never}, abort: {status: 500}}]}",
    ))
    .await;
    let r = send(
        g2.addr,
        drill(
            "/echo",
            &[
                ("seawall-fault-abort", "503"),
                ("seawall-fault-delay", "1s"),
            ],
        ),
    )
    .await
    .unwrap();
    assert_eq!((r.status, r.header("seawall-fault")), (200, None));
    let echo = r.echo();
    assert!(
        !echo.headers.keys().any(|k| k.starts_with("seawall-fault")),
        "{:?}",
        echo.headers
    );
}

#[tokio::test]
async fn header_faults_are_capped_by_the_rules_percentage() {
    let sim = sim().await;
    let g = start(&yaml(
        sim.local_addr(),
        "{allow_header_faults: true, seed: 1, rules: [{name: asked, percentage: 20}]}",
    ))
    .await;
    let mut conn = Conn::open(g.addr).await;
    let mut faulted = 0;
    for _ in 0..500 {
        let r = conn
            .send(drill("/echo", &[("seawall-fault-abort", "503")]))
            .await
            .unwrap();
        faulted += usize::from(r.status == 503);
    }
    // Mean 100, standard deviation about 8.9: ±40 is over four of them.
    assert!((60..=140).contains(&faulted), "{faulted} of 500 faulted");
}

#[tokio::test]
async fn a_rule_acts_only_inside_its_time_window() {
    let sim = sim().await;
    let g = start(&yaml(
        sim.local_addr(),
        "{rules: [{name: later, after: 1s, for: 1s, abort: {status: 503}}]}",
    ))
    .await;
    // The window counts from when the config was loaded, a little before `started`:
    // each check sits well inside its phase.
    let started = Instant::now();
    assert_eq!(get(g.addr, "/echo").await.status, 200, "before `after`");
    tokio::time::sleep(MS(1400).saturating_sub(started.elapsed())).await;
    assert_eq!(get(g.addr, "/echo").await.status, 503, "inside the window");
    tokio::time::sleep(MS(2500).saturating_sub(started.elapsed())).await;
    assert_eq!(get(g.addr, "/echo").await.status, 200, "after `for`");
}

#[tokio::test]
async fn requests_without_fault_headers_do_not_spend_a_header_only_rules_first() {
    let sim = sim().await;
    let g = start(&yaml(
        sim.local_addr(),
        "{allow_header_faults: true, rules: [{name: once, first: 1}]}",
    ))
    .await;
    let mut conn = Conn::open(g.addr).await;
    for _ in 0..3 {
        assert_eq!(conn.get("/echo").await.status, 200);
    }
    let asked = || drill("/echo", &[("seawall-fault-abort", "502")]);
    assert_eq!(conn.send(asked()).await.unwrap().status, 502);
    assert_eq!(
        conn.send(asked()).await.unwrap().status,
        200,
        "first: 1 spent"
    );
}
