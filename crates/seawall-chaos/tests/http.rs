//! HTTP-aware toxics on proxies marked `protocol: http`, on real loopback sockets: a
//! hyper upstream, a hyper client on one keep-alive connection, the proxy between.

mod support;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty, Full};
use hyper::client::conn::http1::SendRequest;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use support::Chaos;
use tokio::net::{TcpListener, TcpStream};
use tokio::time::{Instant, timeout};

/// What the upstream has seen.
#[derive(Default)]
struct Seen {
    connections: AtomicUsize,
    requests: AtomicUsize,
}

/// An HTTP/1.1 upstream answering every request with 200 and `size` bytes.
async fn upstream(size: usize) -> (SocketAddr, Arc<Seen>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let seen = Arc::new(Seen::default());
    let counts = seen.clone();
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            counts.connections.fetch_add(1, Ordering::SeqCst);
            let counts = counts.clone();
            let service = hyper::service::service_fn(move |_request| {
                counts.requests.fetch_add(1, Ordering::SeqCst);
                async move {
                    Ok::<_, Infallible>(Response::new(Full::new(Bytes::from(vec![b'x'; size]))))
                }
            });
            tokio::spawn(
                hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service),
            );
        }
    });
    (addr, seen)
}

/// A client connection to `addr`, kept alive across requests.
async fn client(addr: SocketAddr) -> SendRequest<Empty<Bytes>> {
    let stream = TcpStream::connect(addr).await.unwrap();
    let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .unwrap();
    tokio::spawn(conn);
    sender
}

/// One GET on `sender`: status and the whole body.
async fn get(sender: &mut SendRequest<Empty<Bytes>>) -> (u16, Bytes) {
    let request = Request::get("/")
        .header("host", "upstream")
        .body(Empty::new())
        .unwrap();
    let response = timeout(Duration::from_secs(10), sender.send_request(request))
        .await
        .expect("an answer within 10 s")
        .unwrap();
    let status = response.status().as_u16();
    let body = timeout(Duration::from_secs(10), response.into_body().collect())
        .await
        .expect("a body within 10 s")
        .unwrap()
        .to_bytes();
    (status, body)
}

/// Creates an http proxy in front of `upstream`; returns its address.
async fn http_proxy(chaos: &Chaos, name: &str, upstream: SocketAddr) -> SocketAddr {
    let body = format!(
        r#"{{"name":"{name}","listen":"127.0.0.1:0","upstream":"{upstream}","protocol":"http"}}"#
    );
    let answer = chaos.call("POST", "/proxies", &body).await;
    assert_eq!(answer.status, 201, "{}", answer.body);
    assert_eq!(answer.json()["protocol"], "http");
    answer.json()["listen"].as_str().unwrap().parse().unwrap()
}

#[tokio::test]
async fn http_status_answers_its_share_of_requests_within_binomial_bounds() {
    let chaos = Chaos::start().await;
    let (up, seen) = upstream(10).await;
    let proxy = http_proxy(&chaos, "web", up).await;
    chaos
        .toxic(
            "web",
            r#"{"type":"http_status","toxicity":0.3,"attributes":{"status":503,"body":"drill"}}"#,
        )
        .await;
    let mut sender = client(proxy).await;
    let n = 1000;
    let mut failed = 0;
    for _ in 0..n {
        match get(&mut sender).await {
            (503, body) => {
                assert_eq!(&body[..], b"drill");
                failed += 1;
            }
            (200, body) => assert_eq!(body.len(), 10),
            (other, _) => panic!("unexpected status {other}"),
        }
    }
    // Binomial(1000, 0.3): mean 300, sd ~14.5; 4 sd either way.
    assert!(
        (242..=358).contains(&failed),
        "{failed} of {n} answered 503"
    );
    assert_eq!(
        seen.requests.load(Ordering::SeqCst),
        n - failed,
        "answered ones are not forwarded"
    );
    assert_eq!(
        seen.connections.load(Ordering::SeqCst),
        1,
        "keep-alive kept to the upstream"
    );
}

#[tokio::test]
async fn http_delay_holds_the_response_head_and_keeps_the_connection() {
    let chaos = Chaos::start().await;
    let (up, seen) = upstream(10).await;
    let proxy = http_proxy(&chaos, "web", up).await;
    let mut sender = client(proxy).await;
    let started = Instant::now();
    assert_eq!(get(&mut sender).await.0, 200);
    let plain = started.elapsed();
    chaos
        .toxic(
            "web",
            r#"{"type":"http_delay","attributes":{"delay":300,"jitter":20}}"#,
        )
        .await;
    let started = Instant::now();
    assert_eq!(get(&mut sender).await.0, 200);
    let delayed = started.elapsed();
    assert!(delayed >= Duration::from_millis(280), "{delayed:?}");
    assert!(
        delayed < Duration::from_millis(280) + plain + Duration::from_secs(2),
        "{delayed:?}"
    );
    let answer = chaos
        .call("DELETE", "/proxies/web/toxics/http_delay_downstream", "")
        .await;
    assert_eq!(answer.status, 204);
    let started = Instant::now();
    assert_eq!(get(&mut sender).await.0, 200);
    assert!(
        started.elapsed() < Duration::from_millis(250),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(seen.connections.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn http_reset_cuts_the_response_in_the_middle_of_its_body() {
    let chaos = Chaos::start().await;
    let size = 1_000_000;
    let (up, _) = upstream(size).await;
    let proxy = http_proxy(&chaos, "web", up).await;
    chaos
        .toxic(
            "web",
            r#"{"type":"http_reset","attributes":{"after_bytes":1000}}"#,
        )
        .await;
    let mut sender = client(proxy).await;
    let request = Request::get("/")
        .header("host", "upstream")
        .body(Empty::new())
        .unwrap();
    let response = timeout(Duration::from_secs(10), sender.send_request(request))
        .await
        .unwrap()
        .expect("the head arrives");
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.headers()["content-length"],
        size.to_string().as_str()
    );
    let mut body = response.into_body();
    let mut got = 0;
    let error = loop {
        match timeout(Duration::from_secs(10), body.frame())
            .await
            .unwrap()
        {
            Some(Ok(frame)) => got += frame.into_data().map_or(0, |d| d.len()),
            Some(Err(error)) => break error,
            None => panic!("the body ended cleanly after {got} bytes"),
        }
    };
    assert!(got > 0 && got <= 1000, "{got} bytes passed");
    assert!(was_reset(&error), "{error:?}");
}

/// Did the connection end in a reset (ECONNRESET somewhere in the error's chain)?
fn was_reset(error: &hyper::Error) -> bool {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(e) = source {
        if let Some(io) = e.downcast_ref::<std::io::Error>()
            && io.kind() == std::io::ErrorKind::ConnectionReset
        {
            return true;
        }
        source = e.source();
    }
    false
}

#[tokio::test]
async fn toxicity_zero_on_an_http_proxy_changes_nothing() {
    let chaos = Chaos::start().await;
    let (up, _) = upstream(10).await;
    let proxy = http_proxy(&chaos, "web", up).await;
    chaos
        .toxic(
            "web",
            r#"{"type":"http_status","toxicity":0,"attributes":{"status":500}}"#,
        )
        .await;
    let mut sender = client(proxy).await;
    for _ in 0..50 {
        assert_eq!(get(&mut sender).await.0, 200);
    }
}

#[tokio::test]
async fn toxics_that_do_not_fit_the_protocol_are_refused_with_400() {
    let chaos = Chaos::start().await;
    let (up, _) = upstream(10).await;
    http_proxy(&chaos, "web", up).await;
    let answer = chaos
        .call(
            "POST",
            "/proxies/web/toxics",
            r#"{"type":"latency","attributes":{"latency":100}}"#,
        )
        .await;
    assert_eq!(answer.status, 400, "{}", answer.body);
    assert!(
        answer.json()["error"]
            .as_str()
            .unwrap()
            .contains("cannot be used on an http proxy")
    );
    // noop fits both.
    chaos.toxic("web", r#"{"type":"noop"}"#).await;

    chaos.proxy("db", up).await;
    let answer = chaos
        .call("POST", "/proxies/db/toxics", r#"{"type":"http_status"}"#)
        .await;
    assert_eq!(answer.status, 400);
    assert_eq!(
        answer.json()["error"],
        "toxic type http_status needs a proxy with protocol http"
    );
    // A tcp proxy's JSON is Toxiproxy's: no protocol field.
    let shown = chaos.call("GET", "/proxies/db", "").await.json();
    assert!(shown.get("protocol").is_none(), "{shown}");
}

#[tokio::test]
async fn protocol_is_checked_on_create_and_update() {
    let chaos = Chaos::start().await;
    let (up, _) = upstream(10).await;
    let body =
        format!(r#"{{"name":"x","listen":"127.0.0.1:0","upstream":"{up}","protocol":"gopher"}}"#);
    let answer = chaos.call("POST", "/proxies", &body).await;
    assert_eq!(answer.status, 400);
    assert_eq!(
        answer.json()["error"],
        "protocol was invalid, can be either tcp or http"
    );

    let proxy = http_proxy(&chaos, "web", up).await;
    chaos.toxic("web", r#"{"type":"http_status"}"#).await;
    let answer = chaos
        .call("POST", "/proxies/web", r#"{"protocol":"tcp"}"#)
        .await;
    assert_eq!(
        answer.status, 400,
        "an http toxic pins the protocol: {}",
        answer.body
    );
    let answer = chaos
        .call("DELETE", "/proxies/web/toxics/http_status_downstream", "")
        .await;
    assert_eq!(answer.status, 204);
    let answer = chaos
        .call("POST", "/proxies/web", r#"{"protocol":"tcp"}"#)
        .await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert!(answer.json().get("protocol").is_none());
    // Still proxies, now as bytes.
    let mut sender = client(answer.json()["listen"].as_str().unwrap().parse().unwrap()).await;
    assert_eq!(get(&mut sender).await.0, 200);
    let _ = proxy;
}

#[tokio::test]
async fn populate_carries_the_protocol_and_its_toxics() {
    let chaos = Chaos::start().await;
    let (up, _) = upstream(10).await;
    let body = format!(
        r#"[{{"name":"web","listen":"127.0.0.1:0","upstream":"{up}","protocol":"http","toxics":[{{"type":"http_status","attributes":{{"status":418}}}}]}}]"#
    );
    let answer = chaos.call("POST", "/populate", &body).await;
    assert_eq!(answer.status, 201, "{}", answer.body);
    let shown = &answer.json()["proxies"][0];
    assert_eq!(shown["protocol"], "http");
    let mut sender = client(shown["listen"].as_str().unwrap().parse().unwrap()).await;
    assert_eq!(get(&mut sender).await.0, 418);
}
