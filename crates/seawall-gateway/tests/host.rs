//! The request's one authority: the route is chosen on it and it is the `Host` the upstream
//! sees. An absolute-form target or `:authority` wins over `Host`; a missing (HTTP/1.1),
//! repeated, empty or invalid `Host` gets 400 before any route runs; a trailing dot is
//! ignored for matching; authority-form targets and `*` outside `OPTIONS` get 400, and
//! `OPTIONS *` is forwarded as it is.

mod support;

use std::{net::SocketAddr, time::Duration};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::{TokioExecutor, TokioIo};
use support::*;
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpListener, TcpStream},
    sync::mpsc,
};

const MS: fn(u64) -> Duration = Duration::from_millis;

/// A route whose responses carry `x-route: <name>`.
fn marked(name: &str, host: &str) -> String {
    route(
        name,
        host,
        "/",
        "up",
        "10s",
        &format!("{{headers: {{response: {{set: {{x-route: {name}}}}}}}}}"),
    )
}

/// A sim behind routes for `a.example`, `b.example` and (when `any`) `*`.
async fn gateway(any: bool) -> (seawall_sim::Sim, TestGateway) {
    let sim = sim().await;
    let mut routes = vec![marked("host_a", "a.example"), marked("host_b", "b.example")];
    if any {
        routes.push(marked("any", "*"));
    }
    let yaml = config(&[], &routes, &[upstream("up", &[sim.local_addr()], "", "")]);
    let g = start(&yaml).await;
    (sim, g)
}

/// The JSON object in a raw HTTP response (the echo report).
fn json_in(raw: &str) -> seawall_sim::EchoReport {
    let start = raw.find('{').unwrap_or_else(|| panic!("no JSON in {raw}"));
    let end = raw.rfind('}').unwrap();
    serde_json::from_str(&raw[start..=end]).unwrap_or_else(|e| panic!("{e}: {raw}"))
}

/// The status code of a raw HTTP/1.x response.
fn status_of(raw: &str) -> &str {
    raw.split(' ').nth(1).unwrap_or("")
}

fn route_of(raw: &str) -> Option<&str> {
    raw.lines()
        .find_map(|l| l.strip_prefix("x-route: "))
        .map(str::trim)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_absolute_form_target_picks_the_route_and_is_the_host_sent_upstream() {
    let (sim, g) = gateway(false).await;
    let raw = raw_exchange(
        g.addr,
        b"GET http://B.example:8080/echo HTTP/1.1\r\nHost: a.example\r\nConnection: close\r\n\r\n",
        MS(3000),
    )
    .await;
    assert!(raw.starts_with("HTTP/1.1 200"), "{raw}");
    assert_eq!(route_of(&raw), Some("host_b"), "{raw}");
    let echo = json_in(&raw);
    assert_eq!(echo.header_values("host"), ["B.example:8080"], "{echo:?}");
    assert_eq!(echo.path, "/echo");
    assert_eq!(sim.stats().requests, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_http2_authority_wins_over_a_disagreeing_host() {
    let (_sim, g) = gateway(false).await;
    let stream = TcpStream::connect(g.addr).await.unwrap();
    let (mut sender, conn) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(stream))
            .await
            .expect("h2 handshake");
    tokio::spawn(conn);
    let req = http::Request::get("http://b.example/echo")
        .header("host", "a.example")
        .body(Full::<Bytes>::default())
        .unwrap();
    let resp = sender.send_request(req).await.expect("h2 request");
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["x-route"], "host_b");
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    let echo: seawall_sim::EchoReport = serde_json::from_slice(&body).unwrap();
    assert_eq!(echo.header_values("host"), ["b.example"], "{echo:?}");

    // Neither :authority nor Host (a relative URI is sent without :authority): 400.
    let req = http::Request::get("/echo")
        .body(Full::<Bytes>::default())
        .unwrap();
    let resp = sender.send_request(req).await.expect("h2 request");
    assert_eq!(resp.status(), 400);
    assert_eq!(resp.headers()["seawall-error"], "bad_request");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_repeated_empty_or_invalid_hosts_get_400_and_reach_no_upstream() {
    let (sim, g) = gateway(true).await;
    let cases: [&[u8]; 12] = [
        b"GET /echo HTTP/1.1\r\nConnection: close\r\n\r\n",
        b"GET http://a.example/echo HTTP/1.1\r\nConnection: close\r\n\r\n",
        b"GET /echo HTTP/1.1\r\nHost: c.example\r\nHost: b.example\r\nConnection: close\r\n\r\n",
        b"GET /echo HTTP/1.1\r\nHost: b.example\r\nHost: b.example\r\nConnection: close\r\n\r\n",
        b"GET /echo HTTP/1.0\r\nHost: a.example\r\nHost: b.example\r\n\r\n",
        b"GET /echo HTTP/1.1\r\nHost:\r\nConnection: close\r\n\r\n",
        b"GET /echo HTTP/1.1\r\nHost: a b.example\r\nConnection: close\r\n\r\n",
        b"GET /echo HTTP/1.1\r\nHost: user@b.example\r\nConnection: close\r\n\r\n",
        b"GET /echo HTTP/1.1\r\nHost: b.example:99999\r\nConnection: close\r\n\r\n",
        b"GET /echo HTTP/1.1\r\nHost: b.example:x\r\nConnection: close\r\n\r\n",
        b"GET /echo HTTP/1.1\r\nHost: b.example/x\r\nConnection: close\r\n\r\n",
        b"GET http://user@b.example/echo HTTP/1.1\r\nHost: b.example\r\nConnection: close\r\n\r\n",
    ];
    for case in cases {
        let raw = raw_exchange(g.addr, case, MS(3000)).await;
        let what = String::from_utf8_lossy(case);
        assert_eq!(status_of(&raw), "400", "{what}\n{raw}");
        assert!(
            raw.to_ascii_lowercase()
                .contains("seawall-error: bad_request"),
            "{what}\n{raw}"
        );
        assert_eq!(route_of(&raw), None, "{what}\n{raw}");
    }
    assert_eq!(sim.stats().connections_accepted, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_http10_request_may_omit_host_and_the_upstream_still_gets_one() {
    let (sim, g) = gateway(true).await;
    let raw = raw_exchange(g.addr, b"GET /echo HTTP/1.0\r\n\r\n", MS(3000)).await;
    assert_eq!(status_of(&raw), "200", "{raw}");
    assert_eq!(route_of(&raw), Some("any"), "{raw}");
    let echo = json_in(&raw);
    assert_eq!(
        echo.header_values("host"),
        [sim.local_addr().to_string().as_str()],
        "{echo:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trailing_dot_host_matches_the_exact_route() {
    let (_sim, g) = gateway(true).await;
    for host in ["a.example.", "A.EXAMPLE.:8080"] {
        let r = send(
            g.addr,
            http::Request::get("/echo")
                .header("host", host)
                .body(Full::default())
                .unwrap(),
        )
        .await
        .unwrap();
        assert_eq!(r.status, 200, "{host}");
        assert_eq!(r.header("x-route"), Some("host_a"), "{host}");
        // The upstream sees the name as the client wrote it.
        assert_eq!(r.echo().header("host"), Some(host));
    }
}

/// An upstream that answers 204 to every request and sends on each request head it read.
async fn head_recorder() -> (SocketAddr, mpsc::UnboundedReceiver<String>) {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = l.accept().await {
            let tx = tx.clone();
            tokio::spawn(async move {
                let mut head = Vec::new();
                let mut byte = [0u8; 1];
                loop {
                    while !head.ends_with(b"\r\n\r\n") {
                        match s.read(&mut byte).await {
                            Ok(1) => head.push(byte[0]),
                            _ => return,
                        }
                    }
                    let _ = tx.send(String::from_utf8_lossy(&head).into_owned());
                    head.clear();
                    let answer = b"HTTP/1.1 204 No Content\r\n\r\n";
                    if s.write_all(answer).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    (addr, rx)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn options_asterisk_is_forwarded_as_is_and_other_odd_targets_get_400() {
    let (upstream_addr, mut heads) = head_recorder().await;
    let yaml = config(
        &[],
        &[route("r", "*", "/", "up", "10s", "")],
        &[upstream("up", &[upstream_addr], "", "")],
    );
    let g = start(&yaml).await;
    let raw = raw_exchange(
        g.addr,
        b"OPTIONS * HTTP/1.1\r\nHost: a.example\r\nConnection: close\r\n\r\n",
        MS(3000),
    )
    .await;
    assert!(raw.starts_with("HTTP/1.1 204"), "{raw}");
    let head = heads.recv().await.unwrap();
    assert!(head.starts_with("OPTIONS * HTTP/1.1\r\n"), "{head}");
    assert!(
        head.to_ascii_lowercase().contains("host: a.example\r\n"),
        "{head}"
    );

    for case in [
        &b"GET * HTTP/1.1\r\nHost: a.example\r\nConnection: close\r\n\r\n"[..],
        b"GET a.example:80 HTTP/1.1\r\nHost: a.example:80\r\nConnection: close\r\n\r\n",
        b"OPTIONS a.example:80 HTTP/1.1\r\nHost: a.example:80\r\nConnection: close\r\n\r\n",
    ] {
        let raw = raw_exchange(g.addr, case, MS(3000)).await;
        let what = String::from_utf8_lossy(case);
        assert_eq!(status_of(&raw), "400", "{what}\n{raw}");
        assert!(
            raw.to_ascii_lowercase()
                .contains("seawall-error: bad_request"),
            "{what}\n{raw}"
        );
    }
    assert!(
        heads.try_recv().is_err(),
        "a refused target reached the upstream"
    );
}
