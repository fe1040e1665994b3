//! HTTP/1.1 upgrades through the gateway, with a real WebSocket client and server
//! (tokio-tungstenite): messages both ways, the close handshake, a refused upgrade
//! forwarded as is, the upgrade headers reaching the upstream, the tunnel's idle timeout,
//! shutdown closing tunnels, no upstream connection or descriptor left behind, and a 101
//! nobody asked for never reaching the client.

mod support;

use std::{
    net::SocketAddr,
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use futures_util::{SinkExt, StreamExt};
use support::*;
use tokio::net::{TcpListener, TcpStream};
use tokio_tungstenite::tungstenite::{
    Message,
    protocol::{CloseFrame, frame::coding::CloseCode},
};

const MS: fn(u64) -> Duration = Duration::from_millis;

/// A WebSocket echo server; counts the connections it has open.
async fn ws_echo() -> (SocketAddr, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let open = Arc::new(AtomicUsize::new(0));
    let count = open.clone();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let count = count.clone();
            tokio::spawn(async move {
                count.fetch_add(1, Ordering::SeqCst);
                if let Ok(mut ws) = tokio_tungstenite::accept_async(stream).await {
                    while let Some(Ok(msg)) = ws.next().await {
                        if (msg.is_text() || msg.is_binary()) && ws.send(msg).await.is_err() {
                            break;
                        }
                        // A close frame is answered by tungstenite itself; the stream then
                        // ends.
                    }
                }
                count.fetch_sub(1, Ordering::SeqCst);
            });
        }
    });
    (addr, open)
}

async fn gateway(upstream_addr: SocketAddr, timeouts: &str) -> TestGateway {
    let yaml = config(
        &[],
        &[route("ws", "*", "/", "up", "5s", "access_log")],
        &[upstream("up", &[upstream_addr], timeouts, "")],
    );
    start(&yaml).await
}

type Ws = tokio_tungstenite::WebSocketStream<TcpStream>;

async fn ws_connect(
    gw: SocketAddr,
    path: &str,
) -> Result<Ws, tokio_tungstenite::tungstenite::Error> {
    let stream = TcpStream::connect(gw).await.unwrap();
    let url = format!("ws://test.local{path}");
    tokio_tungstenite::client_async(url, stream)
        .await
        .map(|(ws, resp)| {
            assert_eq!(resp.status(), 101);
            ws
        })
}

async fn next(ws: &mut Ws) -> Message {
    tokio::time::timeout(MS(3000), ws.next())
        .await
        .expect("a message within 3s")
        .expect("stream open")
        .expect("no error")
}

fn fd_count() -> usize {
    std::fs::read_dir("/proc/self/fd").unwrap().count()
}

async fn gauge(admin: SocketAddr, name: &str) -> f64 {
    metric(&metrics_text(admin).await, name, &[("upstream", "up")]).unwrap_or(0.0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn websocket_messages_echo_both_ways_and_the_close_handshake_completes() {
    let (server, server_open) = ws_echo().await;
    let g = gateway(server, "").await;
    let baseline = fd_count();

    let mut ws = ws_connect(g.addr, "/chat")
        .await
        .expect("upgrade through the gateway");
    ws.send(Message::text("hello")).await.unwrap();
    assert_eq!(next(&mut ws).await, Message::text("hello"));
    ws.send(Message::binary(vec![0u8, 1, 2, 255]))
        .await
        .unwrap();
    assert_eq!(next(&mut ws).await, Message::binary(vec![0u8, 1, 2, 255]));
    // A larger message, in both directions.
    let big = "x".repeat(200_000);
    ws.send(Message::text(big.clone())).await.unwrap();
    assert_eq!(next(&mut ws).await, Message::text(big));
    assert_eq!(server_open.load(Ordering::SeqCst), 1);
    assert_eq!(
        gauge(g.admin, "seawall_upstream_connections_in_use").await,
        1.0
    );

    ws.close(Some(CloseFrame {
        code: CloseCode::Normal,
        reason: "bye".into(),
    }))
    .await
    .unwrap();
    match next(&mut ws).await {
        Message::Close(frame) => {
            assert_eq!(frame.map(|f| f.code), Some(CloseCode::Normal));
        }
        other => panic!("expected the server's close frame, got {other:?}"),
    }
    assert!(
        tokio::time::timeout(MS(3000), ws.next())
            .await
            .expect("the stream ends after the close handshake")
            .is_none()
    );
    drop(ws);

    // Nothing left: the server's socket, the pool's dedicated connection, our fds.
    assert!(
        eventually(MS(3000), || async {
            server_open.load(Ordering::SeqCst) == 0
        })
        .await,
        "the upstream WebSocket is still open"
    );
    // (Polled: the tunnel's task drops its connection's handle just after the socket
    // closes, so on a busy machine the gauges may lag the server by a moment.)
    for gauge in [
        "seawall_upstream_connections_in_use",
        "seawall_upstream_connections_connecting",
        "seawall_upstream_connections_idle",
    ] {
        let zero = eventually(MS(3000), || async {
            let m = metrics_text(g.admin).await;
            metric(&m, gauge, &[("upstream", "up")]) == Some(0.0)
        })
        .await;
        assert!(zero, "{gauge}\n{}", metrics_text(g.admin).await);
    }
    assert!(
        eventually(MS(3000), || async {
            let m = metrics_text(g.admin).await;
            metric(
                &m,
                "seawall_upstream_connections_closed_total",
                &[("upstream", "up"), ("reason", "upgraded")],
            ) == Some(1.0)
        })
        .await,
        "the dedicated connection was not counted closed as `upgraded`"
    );
    let m = metrics_text(g.admin).await;
    assert_eq!(
        metric(
            &m,
            "seawall_upstream_connections_opened_total",
            &[("upstream", "up")]
        ),
        Some(1.0),
        "{m}"
    );
    // Every slot free again (the admin API's per-endpoint view).
    let r = admin_get(g.admin, "/upstreams").await;
    let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
    let text = v.to_string();
    assert!(!text.contains("\"open\":1"), "{text}");
    assert!(
        eventually(MS(3000), || async { fd_count() <= baseline }).await,
        "fds: baseline {baseline}, now {}",
        fd_count()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_upgrade_is_forwarded_as_the_upstream_answered() {
    let sim = sim().await;
    let g = gateway(sim.local_addr(), "").await;
    // A WebSocket client to a path the upstream answers 403: the client sees the 403.
    match ws_connect(g.addr, "/status/403").await {
        Err(tokio_tungstenite::tungstenite::Error::Http(resp)) => {
            assert_eq!(resp.status(), 403)
        }
        Err(other) => panic!("expected an HTTP 403, got {other}"),
        Ok(_) => panic!("the upgrade was accepted"),
    }
    // A raw request with the upgrade headers: the upstream's status comes back, and the
    // upgrade headers did reach it.
    let raw = raw_exchange(
        g.addr,
        b"GET /echo HTTP/1.1\r\nHost: test.local\r\nConnection: Upgrade\r\nUpgrade: WebSocket\r\n\r\n",
        MS(500),
    )
    .await;
    assert!(raw.starts_with("HTTP/1.1 200"), "{raw}");
    let body = &raw[raw.find("\r\n\r\n").unwrap() + 4..];
    let json_start = body.find('{').unwrap();
    let json_end = body.rfind('}').unwrap();
    let echo: serde_json::Value = serde_json::from_str(&body[json_start..=json_end]).unwrap();
    assert_eq!(echo["headers"]["connection"], "upgrade", "{echo}");
    assert_eq!(echo["headers"]["upgrade"], "WebSocket", "{echo}");
    // And one refused with 426.
    let raw = raw_exchange(
        g.addr,
        b"GET /status/426 HTTP/1.1\r\nHost: test.local\r\nConnection: upgrade\r\nUpgrade: websocket\r\n\r\n",
        MS(500),
    )
    .await;
    assert!(raw.starts_with("HTTP/1.1 426"), "{raw}");
    // Each refused upgrade's connection closed once its response was read.
    assert!(
        eventually(MS(3000), || async {
            let m = metrics_text(g.admin).await;
            metric(
                &m,
                "seawall_upstream_connections_in_use",
                &[("upstream", "up")],
            ) == Some(0.0)
                && metric(
                    &m,
                    "seawall_upstream_connections_closed_total",
                    &[("upstream", "up"), ("reason", "upgraded")],
                ) == Some(3.0)
                && sim.stats().connections_open == 0
        })
        .await,
        "{}\n{:?}",
        metrics_text(g.admin).await,
        sim.stats()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_tunnel_is_closed_after_upgrade_idle() {
    let (server, server_open) = ws_echo().await;
    let g = gateway(server, "upgrade_idle: 300ms").await;
    let mut ws = ws_connect(g.addr, "/").await.unwrap();
    // Activity keeps it open past the idle timeout.
    for _ in 0..4 {
        tokio::time::sleep(MS(150)).await;
        ws.send(Message::text("ping")).await.unwrap();
        assert_eq!(next(&mut ws).await, Message::text("ping"));
    }
    // Then silence: the gateway closes both sides.
    let started = std::time::Instant::now();
    let ended = tokio::time::timeout(MS(3000), async {
        loop {
            match ws.next().await {
                None | Some(Err(_)) => break,
                Some(Ok(_)) => {}
            }
        }
    })
    .await;
    assert!(ended.is_ok(), "the idle tunnel was not closed");
    assert_between("idle close", started.elapsed(), MS(200), MS(2500));
    assert!(
        eventually(MS(3000), || async {
            server_open.load(Ordering::SeqCst) == 0
        })
        .await,
        "the upstream side of the idle tunnel is still open"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_closes_open_tunnels_after_a_short_grace() {
    let (server, server_open) = ws_echo().await;
    let g = gateway(server, "").await;
    let mut ws = ws_connect(g.addr, "/").await.unwrap();
    ws.send(Message::text("a")).await.unwrap();
    assert_eq!(next(&mut ws).await, Message::text("a"));
    let started = std::time::Instant::now();
    let drained = g.gw.shutdown(MS(10_000)).await;
    assert!(drained, "the drain was cut off");
    assert!(
        started.elapsed() < MS(5000),
        "shutdown waited {:?} on a WebSocket",
        started.elapsed()
    );
    assert!(
        eventually(MS(3000), || async {
            server_open.load(Ordering::SeqCst) == 0
        })
        .await,
        "the upstream side is still open after shutdown"
    );
    let closed = tokio::time::timeout(MS(3000), async {
        loop {
            match ws.next().await {
                None | Some(Err(_)) => break,
                Some(Ok(_)) => {}
            }
        }
    })
    .await;
    assert!(
        closed.is_ok(),
        "the client side is still open after shutdown"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upgrade_to_an_unreachable_upstream_gets_the_gateway_error() {
    // Bound, never listening: connects are refused.
    let closed = tokio::net::TcpSocket::new_v4().unwrap();
    closed.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let g = gateway(closed.local_addr().unwrap(), "").await;
    let raw = raw_exchange(
        g.addr,
        b"GET / HTTP/1.1\r\nHost: test.local\r\nConnection: upgrade\r\nUpgrade: websocket\r\n\r\n",
        MS(1000),
    )
    .await;
    assert!(raw.starts_with("HTTP/1.1 502"), "{raw}");
    assert!(raw.contains("seawall-error: connect_error"), "{raw}");
    drop(closed);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upgrade_is_never_retried() {
    let sim = sim().await;
    let yaml = config(
        &[],
        &["{name: ws, match: {path_prefix: /}, upstream: up, timeout: 5s, retry: {max_attempts: 3, retry_on: [503]}}".to_owned()],
        &[upstream("up", &[sim.local_addr()], "", "")],
    );
    let g = start(&yaml).await;
    // An ordinary request is retried (the check that the policy is on)...
    let plain = raw_exchange(
        g.addr,
        b"GET /status/503 HTTP/1.1\r\nHost: test.local\r\nConnection: close\r\n\r\n",
        MS(3000),
    )
    .await;
    assert!(plain.starts_with("HTTP/1.1 503"), "{plain}");
    assert_eq!(sim.stats().requests, 3, "{:?}", sim.stats());
    // ...an upgrade is sent once.
    let raw = raw_exchange(
        g.addr,
        b"GET /status/503 HTTP/1.1\r\nHost: test.local\r\nConnection: upgrade\r\nUpgrade: websocket\r\n\r\n",
        MS(1000),
    )
    .await;
    assert!(raw.starts_with("HTTP/1.1 503"), "{raw}");
    assert_eq!(sim.stats().requests, 4, "{:?}", sim.stats());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upgrade_to_anything_but_websocket_is_forwarded_as_a_plain_request() {
    // `Upgrade: h2c` tunnelled would let the client speak HTTP/2 straight to the upstream,
    // past routing, middleware and rate limits. It goes as an ordinary request instead,
    // with the upgrade headers removed like any hop-by-hop header.
    let sim = sim().await;
    let g = gateway(sim.local_addr(), "").await;
    let raw = raw_exchange(
        g.addr,
        b"GET /echo HTTP/1.1\r\nHost: test.local\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQAAP__\r\n\r\n",
        MS(500),
    )
    .await;
    assert!(raw.starts_with("HTTP/1.1 200"), "{raw}");
    let body = &raw[raw.find("\r\n\r\n").unwrap() + 4..];
    let json_start = body.find('{').unwrap();
    let json_end = body.rfind('}').unwrap();
    let echo: serde_json::Value = serde_json::from_str(&body[json_start..=json_end]).unwrap();
    assert!(echo["headers"].get("upgrade").is_none(), "{echo}");
    assert!(echo["headers"].get("http2-settings").is_none(), "{echo}");
    // No dedicated connection was opened for it: nothing closed as `upgraded`.
    let m = metrics_text(g.admin).await;
    assert_eq!(
        metric(
            &m,
            "seawall_upstream_connections_closed_total",
            &[("upstream", "up"), ("reason", "upgraded")]
        )
        .unwrap_or(0.0),
        0.0,
        "{m}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upgrades_beyond_their_share_of_the_slots_are_refused_and_requests_still_flow() {
    // Two slots, one of them for tunnels: a second WebSocket is refused at once with 503
    // `pool_exhausted`, while an ordinary request still gets the other slot.
    let (ws_addr, _open) = ws_echo().await;
    let yaml = config(
        &[],
        &[route("ws", "*", "/", "up", "5s", "access_log")],
        &[upstream(
            "up",
            &[ws_addr],
            "",
            "max_connections_per_endpoint: 2, max_idle_per_endpoint: 2, max_upgrades_per_endpoint: 1",
        )],
    );
    let g = start(&yaml).await;
    let mut first = ws_connect(g.addr, "/").await.expect("the first upgrade");
    first.send(Message::text("hello")).await.unwrap();
    assert_eq!(next(&mut first).await, Message::text("hello"));

    let started = std::time::Instant::now();
    match ws_connect(g.addr, "/").await {
        Err(tokio_tungstenite::tungstenite::Error::Http(resp)) => {
            assert_eq!(resp.status(), 503);
            assert_eq!(
                resp.headers()
                    .get("seawall-error")
                    .and_then(|v| v.to_str().ok()),
                Some("pool_exhausted")
            );
        }
        Err(other) => panic!("expected a 503, got {other}"),
        Ok(_) => panic!("a second upgrade got through a cap of one"),
    }
    assert!(
        started.elapsed() < MS(900),
        "refused at once, not after a wait"
    );

    // The echo server answers plain HTTP with an error, but it answers: the request got
    // a connection, not `pool_exhausted`.
    let plain = get(g.addr, "/").await;
    assert_ne!(plain.error(), Some("pool_exhausted"), "{}", plain.text());

    // Once the first tunnel closes, its share is free again.
    first.close(None).await.unwrap();
    drop(first);
    assert!(
        eventually(MS(3000), || async { ws_connect(g.addr, "/").await.is_ok() }).await,
        "the upgrade share was not given back"
    );
}

/// An upstream that answers every request with a 101 nobody asked for; counts the
/// connections it accepted.
async fn unsolicited_101_upstream() -> (SocketAddr, Arc<AtomicUsize>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let accepted = Arc::new(AtomicUsize::new(0));
    let count = accepted.clone();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            count.fetch_add(1, Ordering::SeqCst);
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                loop {
                    while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
                        match s.read(&mut chunk).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => buf.extend_from_slice(&chunk[..n]),
                        }
                    }
                    let end = buf.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
                    buf.drain(..end);
                    let answer = b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: x\r\nConnection: upgrade\r\n\r\n";
                    if s.write_all(answer).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    (addr, accepted)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unsolicited_101_is_not_forwarded_and_its_connection_is_not_reused() {
    let (up, accepted) = unsolicited_101_upstream().await;
    let mut g = gateway(up, "").await;
    for i in 0..2 {
        let r = get(g.addr, "/").await;
        assert_eq!(r.status, 502, "request {i}: {:?} {}", r.headers, r.text());
        assert_eq!(r.error(), Some("upstream_protocol"), "request {i}");
        let line = log_line(&mut g.log, MS(2000), |v| v["status"] == 502).await;
        let line = line.expect("an access log line for the 502");
        let detail = line["error_detail"].as_str().unwrap_or_default();
        assert!(detail.contains("101"), "{line}");
    }
    // Each request needed a connection of its own: the first was closed, not pooled.
    assert_eq!(accepted.load(Ordering::SeqCst), 2);
}
