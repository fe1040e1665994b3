//! Retrying requests with bodies, through the real gateway: a POST (opted in) with a small
//! body whose first try fails is retried on the healthy endpoint and arrives there intact;
//! a body over `retry.buffer_body_max` streams and is not retried, and the access log and
//! `seawall_retries_total` say why; without the opt-in a POST is still not retried.

mod support;

use std::{net::SocketAddr, sync::atomic::Ordering, time::Duration};

use bytes::Bytes;
use http::{Method, Request, Response};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use support::*;

const MS: fn(u64) -> Duration = Duration::from_millis;

/// Answers 503 at once and closes the connection, without reading the body.
const UNAVAILABLE: &[u8] =
    b"HTTP/1.1 503 Service Unavailable\r\ncontent-length: 0\r\nconnection: close\r\n\r\n";

/// An upstream that answers every request with the body it received.
async fn body_echo() -> SocketAddr {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((s, _)) = l.accept().await else {
                return;
            };
            tokio::spawn(async move {
                let svc = hyper::service::service_fn(|req: Request<Incoming>| async move {
                    let body = req.into_body().collect().await?.to_bytes();
                    Ok::<_, hyper::Error>(Response::new(Full::new(body)))
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(s), svc)
                    .await;
            });
        }
    });
    addr
}

fn yaml(endpoints: &[SocketAddr], retry: &str) -> String {
    let eps: Vec<String> = endpoints.iter().map(|e| format!("\"{e}\"")).collect();
    let r = route("r", "*", "/", "up", "5s", "access_log");
    let r = format!("{}, retry: {{{retry}}}}}", r.trim_end_matches('}'));
    config(
        &[],
        &[r],
        &[format!(
            "{{name: up, endpoints: [{}], balancer: round_robin}}",
            eps.join(", ")
        )],
    )
}

fn retries(m: &str, outcome: &str) -> f64 {
    metric(
        m,
        "seawall_retries_total",
        &[("route", "r"), ("outcome", outcome)],
    )
    .unwrap_or(0.0)
}

fn post(body: Bytes) -> Request<Full<Bytes>> {
    req(Method::POST, "/upload")
        .header(http::header::CONTENT_TYPE, "application/octet-stream")
        .body(Full::new(body))
        .unwrap()
}

/// A body whose every byte depends on its position, so a truncated or reordered copy
/// cannot pass for it.
fn patterned(len: usize) -> Bytes {
    (0..len).map(|i| (i * 7 % 251) as u8).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_small_post_body_is_replayed_intact_to_the_healthy_endpoint() {
    let (failing, failed) = raw_server(MS(0), UNAVAILABLE).await;
    let echo = body_echo().await;
    let mut g = start(&yaml(
        &[failing, echo],
        "max_attempts: 2, non_idempotent: true, buffer_body_max: 64KiB",
    ))
    .await;
    let body = patterned(20_000);
    for i in 0..6 {
        let r = send(g.addr, post(body.clone())).await.unwrap();
        assert_eq!(r.status, 200, "request {i}: {:?}", r.headers);
        assert_eq!(r.body, body, "request {i}: the body arrived intact");
    }
    let failed = failed.load(Ordering::Relaxed);
    assert!(
        failed >= 1,
        "round robin sent first tries to the failing endpoint"
    );
    let m = metrics_text(g.admin).await;
    assert_eq!(retries(&m, "attempted"), failed as f64, "{m}");
    let line = log_line(&mut g.log, MS(2000), |v| {
        v["policy"]
            .as_str()
            .is_some_and(|p| p.contains("retries=1"))
    })
    .await;
    assert!(
        line.is_some(),
        "a retried request's access log line says so"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_over_the_cap_streams_and_is_not_retried() {
    let (failing, failed) = raw_server(MS(0), UNAVAILABLE).await;
    let mut g = start(&yaml(
        &[failing],
        "max_attempts: 3, non_idempotent: true, buffer_body_max: 1KiB",
    ))
    .await;
    let r = send(g.addr, post(patterned(4096))).await;
    // The upstream may answer its 503 before taking the body, or reset while it is sent.
    if let Ok(r) = &r {
        assert!(r.status >= 500, "the failure stands: {}", r.status);
    }
    let m = metrics_text(g.admin).await;
    assert_eq!(retries(&m, "body_too_large"), 1.0, "{m}");
    assert_eq!(retries(&m, "attempted"), 0.0, "{m}");
    assert_eq!(failed.load(Ordering::Relaxed), 1, "sent once");
    let line = log_line(&mut g.log, MS(2000), |v| v["path"] == "/upload")
        .await
        .expect("access log line");
    assert_eq!(line["policy"], "retry_skipped=body_too_large", "{line}");

    // A small body on the same route is kept and retried (into the same endpoint).
    let r = send(g.addr, post(patterned(512))).await.unwrap();
    assert_eq!(r.status, 503);
    assert_eq!(failed.load(Ordering::Relaxed), 4, "three tries");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_zero_cap_turns_buffering_off_and_a_post_without_the_opt_in_is_sent_once() {
    let (failing, failed) = raw_server(MS(0), UNAVAILABLE).await;
    let g = start(&yaml(
        &[failing],
        "max_attempts: 3, non_idempotent: true, buffer_body_max: 0B",
    ))
    .await;
    let r = send(g.addr, post(patterned(100))).await.unwrap();
    assert_eq!(r.status, 503);
    assert_eq!(failed.load(Ordering::Relaxed), 1);
    let m = metrics_text(g.admin).await;
    assert_eq!(retries(&m, "body_not_replayable"), 1.0, "{m}");

    let (failing, failed) = raw_server(MS(0), UNAVAILABLE).await;
    let g = start(&yaml(&[failing], "max_attempts: 3")).await;
    let r = send(g.addr, post(patterned(100))).await.unwrap();
    assert_eq!(r.status, 503);
    assert_eq!(failed.load(Ordering::Relaxed), 1);
    let m = metrics_text(g.admin).await;
    // Not read ahead (the method is never sent twice here): the method is why.
    assert_eq!(retries(&m, "non_idempotent"), 1.0, "{m}");
}
