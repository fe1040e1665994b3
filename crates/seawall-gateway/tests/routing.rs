//! Routing and header hygiene: host (exact, `*.suffix`, `*`) and longest-prefix selection,
//! 404 for unmatched requests, absolute-form targets never choosing the upstream, CONNECT
//! refused, hop-by-hop and debug headers not forwarded (but `Connection` cannot name `Host`
//! or the gateway's own headers away), `x-forwarded-*` added, request bodies streamed to
//! the upstream intact, and an upstream response with both `Content-Length` and chunked
//! framing passed on without the length.

mod support;

use std::time::Duration;

use bytes::Bytes;
use http::Method;
use http_body_util::Full;
use support::*;
use tokio::{io::AsyncWriteExt, net::TcpStream};

const MS: fn(u64) -> Duration = Duration::from_millis;

/// A route whose responses carry `x-route: <name>`.
fn marked(name: &str, host: &str, prefix: &str) -> String {
    route(
        name,
        host,
        prefix,
        "up",
        "10s",
        &format!("{{headers: {{response: {{set: {{x-route: {name}}}}}}}}}"),
    )
}

async fn routed(addr: std::net::SocketAddr, host: &str, path: &str) -> Resp {
    send(
        addr,
        http::Request::get(path)
            .header("host", host)
            .body(Full::default())
            .unwrap(),
    )
    .await
    .unwrap()
}

/// The JSON object in a raw HTTP response (the echo report).
fn json_in(raw: &str) -> seawall_sim::EchoReport {
    let start = raw.find('{').unwrap_or_else(|| panic!("no JSON in {raw}"));
    let end = raw.rfind('}').unwrap();
    serde_json::from_str(&raw[start..=end]).unwrap_or_else(|e| panic!("{e}: {raw}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn host_specificity_then_longest_prefix_selects_the_route() {
    let sim = sim().await;
    let yaml = config(
        &[],
        &[
            marked("any-root", "*", "/"),
            marked("any-api", "*", "/api"),
            marked("suffix", "*.example.com", "/"),
            marked("exact", "api.example.com", "/"),
            marked("exact-deep", "api.example.com", "/api/v2"),
        ],
        &[upstream("up", &[sim.local_addr()], "", "")],
    );
    let g = start(&yaml).await;
    let cases = [
        ("api.example.com", "/", "exact"),
        ("API.Example.COM:8080", "/x", "exact"),
        ("api.example.com", "/api/v2/users", "exact-deep"),
        ("api.example.com", "/api/v20", "exact"),
        ("www.example.com", "/api/x", "suffix"),
        ("a.b.example.com", "/", "suffix"),
        ("example.com", "/", "any-root"),
        ("other.test", "/api", "any-api"),
        ("other.test", "/api/x", "any-api"),
        ("other.test", "/apix", "any-root"),
    ];
    for (host, path, want) in cases {
        let r = routed(g.addr, host, path).await;
        assert_eq!(r.header("x-route"), Some(want), "{host}{path}");
    }
    assert_eq!(sim.stats().requests, cases.len() as u64);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unmatched_request_gets_404_and_the_upstream_sees_nothing() {
    let sim = sim().await;
    let yaml = config(
        &[],
        &[marked("api", "*", "/api")],
        &[upstream("up", &[sim.local_addr()], "", "")],
    );
    let g = start(&yaml).await;
    for path in ["/", "/apix", "/other/api"] {
        let r = get(g.addr, path).await;
        assert_eq!(r.status, 404, "{path}");
        assert_eq!(r.error(), Some("no_route"));
        assert_eq!(r.header("x-route"), None);
    }
    assert_eq!(sim.stats().connections_accepted, 0);
    // The matching path reaches the sim (which answers 404 itself, without our reason).
    let r = get(g.addr, "/api").await;
    assert_eq!(r.header("x-route"), Some("api"));
    assert_eq!(r.error(), None);
    assert_eq!(sim.stats().requests, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn absolute_form_target_goes_to_the_configured_upstream_in_origin_form() {
    let sim = sim().await;
    let yaml = config(
        &[],
        &[route("r", "*", "/", "up", "10s", "")],
        &[upstream("up", &[sim.local_addr()], "", "")],
    );
    let g = start(&yaml).await;
    let raw = raw_exchange(
        g.addr,
        b"GET http://evil.example/echo?q=1 HTTP/1.1\r\nHost: evil.example\r\nConnection: close\r\n\r\n",
        MS(3000),
    )
    .await;
    assert!(raw.starts_with("HTTP/1.1 200"), "{raw}");
    let echo = json_in(&raw);
    assert_eq!(echo.path, "/echo");
    assert_eq!(echo.query.as_deref(), Some("q=1"));
    // It really was our sim that answered.
    assert_eq!(sim.stats().requests, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connect_method_gets_400_and_is_not_forwarded() {
    let sim = sim().await;
    let yaml = config(
        &[],
        &[route("r", "*", "/", "up", "10s", "")],
        &[upstream("up", &[sim.local_addr()], "", "")],
    );
    let g = start(&yaml).await;
    let mut s = TcpStream::connect(g.addr).await.unwrap();
    s.write_all(b"CONNECT evil.example:443 HTTP/1.1\r\nHost: evil.example:443\r\n\r\n")
        .await
        .unwrap();
    let raw = read_head(&mut s, MS(3000)).await;
    assert!(raw.starts_with("HTTP/1.1 400"), "{raw}");
    assert!(
        raw.to_ascii_lowercase()
            .contains("seawall-error: bad_request"),
        "{raw}"
    );
    assert_eq!(sim.stats().connections_accepted, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hop_by_hop_and_debug_headers_are_stripped_and_forwarded_headers_added() {
    let sim = sim().await;
    let yaml = config(
        &[],
        &[route("r", "*", "/", "up", "10s", "")],
        &[upstream("up", &[sim.local_addr()], "", "")],
    );
    let g = start(&yaml).await;
    let raw = raw_exchange(
        g.addr,
        b"GET /echo HTTP/1.1\r\nHost: test.local\r\nConnection: close, x-foo\r\nx-foo: secret\r\nKeep-Alive: timeout=5\r\nTE: trailers\r\nUpgrade: websocket\r\nProxy-Authorization: Basic Zm9vOmJhcg==\r\nProxy-Connection: keep-alive\r\nseawall-debug: guess\r\nx-end-to-end: kept\r\nx-forwarded-for: 10.0.0.1\r\n\r\n",
        MS(3000),
    )
    .await;
    assert!(raw.starts_with("HTTP/1.1 200"), "{raw}");
    let echo = json_in(&raw);
    for h in [
        "x-foo",
        "keep-alive",
        "te",
        "upgrade",
        "proxy-authorization",
        "proxy-connection",
        "seawall-debug",
    ] {
        assert_eq!(echo.header(h), None, "{h} reached the upstream: {echo:?}");
    }
    assert!(
        !echo.header("connection").unwrap_or("").contains("x-foo"),
        "{echo:?}"
    );
    assert_eq!(echo.header("x-end-to-end"), Some("kept"));
    assert_eq!(echo.header("x-forwarded-for"), Some("10.0.0.1, 127.0.0.1"));
    assert_eq!(echo.header("x-forwarded-proto"), Some("http"));

    // Without a prior x-forwarded-for, it is just the client address.
    let echo = get(g.addr, "/echo").await.echo();
    assert_eq!(echo.header("x-forwarded-for"), Some("127.0.0.1"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_bodies_reach_the_upstream_intact_sized_and_chunked() {
    let sim = sim().await;
    let yaml = config(
        &[],
        &[route("r", "*", "/", "up", "10s", "")],
        &[upstream("up", &[sim.local_addr()], "", "")],
    );
    let g = start(&yaml).await;
    // With content-length.
    let r = send(
        g.addr,
        req(Method::POST, "/echo")
            .body(Full::new(Bytes::from(vec![7u8; 1_000_000])))
            .unwrap(),
    )
    .await
    .unwrap();
    assert_eq!(r.status, 200);
    assert_eq!(r.echo().body_bytes, 1_000_000);

    // Chunked, written in pieces with pauses: the gateway must stream it through.
    let mut s = TcpStream::connect(g.addr).await.unwrap();
    s.write_all(b"POST /echo HTTP/1.1\r\nHost: test.local\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let chunk = vec![b'z'; 62_500];
    for _ in 0..16 {
        s.write_all(format!("{:x}\r\n", chunk.len()).as_bytes())
            .await
            .unwrap();
        s.write_all(&chunk).await.unwrap();
        s.write_all(b"\r\n").await.unwrap();
        tokio::time::sleep(MS(5)).await;
    }
    s.write_all(b"0\r\n\r\n").await.unwrap();
    let (out, _) = read_until_close(&mut s, MS(5000)).await;
    let raw = String::from_utf8_lossy(&out);
    assert!(raw.starts_with("HTTP/1.1 200"), "{raw}");
    assert_eq!(json_in(&raw).body_bytes, 1_000_000);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_prior_x_forwarded_for_value_is_kept() {
    let sim = sim().await;
    let yaml = config(
        &[],
        &[route("r", "*", "/", "up", "10s", "")],
        &[upstream("up", &[sim.local_addr()], "", "")],
    );
    let g = start(&yaml).await;
    let raw = raw_exchange(
        g.addr,
        b"GET /echo HTTP/1.1\r\nHost: test.local\r\nX-Forwarded-For: 10.0.0.1\r\nX-Forwarded-For: 10.0.0.2, 10.0.0.3\r\nConnection: close\r\n\r\n",
        MS(3000),
    )
    .await;
    let echo = json_in(&raw);
    assert_eq!(
        echo.header_values("x-forwarded-for"),
        ["10.0.0.1, 10.0.0.2, 10.0.0.3, 127.0.0.1"],
        "{echo:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connection_cannot_strip_host_or_the_gateways_own_headers() {
    let sim = sim().await;
    let yaml = config(
        &[],
        &[route("r", "*", "/", "up", "10s", "request_id")],
        &[upstream("up", &[sim.local_addr()], "", "")],
    );
    let g = start(&yaml).await;
    let raw = raw_exchange(
        g.addr,
        b"GET /echo HTTP/1.1\r\nHost: test.local\r\nConnection: close, host, x-request-id, x-forwarded-for, x-forwarded-proto, seawall-timeout-ms, x-hop\r\nx-request-id: trace-1\r\nx-hop: 1\r\n\r\n",
        MS(3000),
    )
    .await;
    assert!(raw.starts_with("HTTP/1.1 200"), "{raw}");
    let echo = json_in(&raw);
    assert_eq!(echo.header_values("host"), ["test.local"], "{echo:?}");
    assert_eq!(echo.header("x-request-id"), Some("trace-1"), "{echo:?}");
    assert_eq!(echo.header("x-forwarded-for"), Some("127.0.0.1"));
    assert_eq!(echo.header("x-forwarded-proto"), Some("http"));
    assert!(echo.header("seawall-timeout-ms").is_some(), "{echo:?}");
    // Any other listed header is still hop-by-hop.
    assert_eq!(echo.header("x-hop"), None, "{echo:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upstream_response_with_content_length_and_chunked_reaches_the_client_intact() {
    let (up, seen) = raw_server(
        Duration::ZERO,
        b"HTTP/1.1 200 OK\r\nContent-Length: 50\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
    )
    .await;
    let yaml = config(
        &[],
        &[route("r", "*", "/", "up", "10s", "")],
        &[upstream("up", &[up], "", "")],
    );
    let g = start(&yaml).await;
    let mut c = Conn::open(g.addr).await;
    for _ in 0..2 {
        let r = c.get("/clte").await;
        assert_eq!(r.status, 200);
        assert_eq!(r.error(), None);
        assert_eq!(&r.body[..], b"hello");
        assert_ne!(r.header("content-length"), Some("50"), "{:?}", r.headers);
    }
    assert!(!c.is_closed(), "the client connection stays usable");
    assert_eq!(seen.load(std::sync::atomic::Ordering::Relaxed), 2);
}
