//! The middleware chain's guarantees with custom layers added through
//! `GatewayOptions::extra_layers`: a panicking layer costs only its own request (500
//! `internal`) even under concurrent load and is counted; a layer that never finishes is
//! named in a 504 `layer_stalled` and counted per layer; a layer that answers itself skips
//! the upstream while the outer layers still see the response.

mod support;

use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{Method, Request, Response};
use http_body_util::{BodyExt, Full};
use seawall_core::Body;
use seawall_gateway::{
    GatewayOptions,
    chain::{Flow, Layer, Step},
    context::RequestContext,
};
use support::*;

const MS: fn(u64) -> Duration = Duration::from_millis;

fn has(req: &Request<Body>, name: &str) -> bool {
    req.headers().get(name).is_some_and(|v| v == "1")
}

/// Panics on `x-panic: 1`.
#[derive(Clone)]
struct Panicker;

impl Layer for Panicker {
    fn name(&self) -> &'static str {
        "panicker"
    }
    fn on_request<'a>(&'a self, req: Request<Body>, _cx: &'a mut RequestContext) -> Step<'a> {
        if has(&req, "x-panic") {
            panic!("test layer panics on purpose");
        }
        Step::Done(Flow::Forward(req))
    }
}

/// Never finishes on `x-stall: 1`.
#[derive(Clone)]
struct Staller;

impl Layer for Staller {
    fn name(&self) -> &'static str {
        "staller"
    }
    fn on_request<'a>(&'a self, req: Request<Body>, _cx: &'a mut RequestContext) -> Step<'a> {
        if has(&req, "x-stall") {
            Step::Pending(Box::pin(async move {
                std::future::pending::<()>().await;
                Flow::Forward(req)
            }))
        } else {
            Step::Pending(Box::pin(async move {
                tokio::task::yield_now().await;
                Flow::Forward(req)
            }))
        }
    }
}

/// Panics in its response phase when the request had `x-panic-late: 1`.
#[derive(Clone)]
struct LatePanicker;

impl Layer for LatePanicker {
    fn name(&self) -> &'static str {
        "late_panicker"
    }
    fn on_request<'a>(&'a self, req: Request<Body>, cx: &'a mut RequestContext) -> Step<'a> {
        if has(&req, "x-panic-late") {
            // Remember the flag for the response phase.
            cx.request_id = Some(http::HeaderValue::from_static("panic-late"));
        }
        Step::Done(Flow::Forward(req))
    }
    fn on_response(&self, _head: &mut http::response::Parts, cx: &mut RequestContext) {
        if cx.request_id.as_ref().is_some_and(|v| v == "panic-late") {
            panic!("test layer panics in on_response on purpose");
        }
    }
}

/// Answers 418 itself on `x-answer: 1`.
#[derive(Clone)]
struct Answerer;

impl Layer for Answerer {
    fn name(&self) -> &'static str {
        "answerer"
    }
    fn on_request<'a>(&'a self, req: Request<Body>, _cx: &'a mut RequestContext) -> Step<'a> {
        if has(&req, "x-answer") {
            let body = Full::new(Bytes::from_static(b"answered by a layer\n"))
                .map_err(|never| match never {})
                .boxed();
            let mut resp = Response::new(body);
            *resp.status_mut() = http::StatusCode::IM_A_TEAPOT;
            return Step::Done(Flow::Respond(resp));
        }
        Step::Done(Flow::Forward(req))
    }
}

async fn gateway(route_timeout: &str) -> (seawall_sim::Sim, TestGateway) {
    let sim = sim().await;
    let yaml = config(
        &[],
        &[route(
            "r",
            "*",
            "/",
            "up",
            route_timeout,
            "request_id, access_log",
        )],
        &[upstream("up", &[sim.local_addr()], "", "")],
    );
    let options = GatewayOptions {
        extra_layers: vec![
            extra_layer("r", Panicker),
            extra_layer("r", Staller),
            extra_layer("r", Answerer),
            extra_layer("r", LatePanicker),
        ],
        ..Default::default()
    };
    let g = start_with(&yaml, options).await;
    (sim, g)
}

fn flagged(header: &str) -> Request<Full<Bytes>> {
    req(Method::GET, "/")
        .header(header, "1")
        .body(Full::default())
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn panicking_layer_fails_only_its_own_requests_under_concurrent_load() {
    let (sim, g) = gateway("10s").await;
    let mut tasks = Vec::new();
    for i in 0..200 {
        let addr = g.addr;
        tasks.push(tokio::spawn(async move {
            let request = if i % 4 == 0 {
                flagged("x-panic")
            } else {
                get_req("/")
            };
            let r = send(addr, request).await.expect("transport ok");
            (i, r.status, r.error().map(str::to_owned))
        }));
    }
    let (mut panicked, mut ok) = (0, 0);
    for t in tasks {
        let (i, status, error) = t.await.unwrap();
        if i % 4 == 0 {
            assert_eq!(
                (status, error.as_deref()),
                (500, Some("internal")),
                "request {i}"
            );
            panicked += 1;
        } else {
            assert_eq!(status, 200, "request {i} ({error:?})");
            ok += 1;
        }
    }
    assert_eq!((panicked, ok), (50, 150));
    assert_eq!(
        sim.stats().requests,
        150,
        "panicked requests must not reach the upstream"
    );
    // Still serving afterwards.
    for _ in 0..5 {
        assert_eq!(get(g.addr, "/").await.status, 200);
    }
    let m = metrics_text(g.admin).await;
    let panics = metric(&m, "seawall_panics_total", &[("route", "r")]).unwrap_or(0.0);
    assert!(panics >= 50.0, "seawall_panics_total = {panics}\n{m}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stalled_layer_is_named_in_a_504_and_counted() {
    let (sim, g) = gateway("300ms").await;
    let t = Instant::now();
    let r = send(g.addr, flagged("x-stall")).await.unwrap();
    let elapsed = t.elapsed();
    assert_eq!(r.status, 504, "{}", r.text());
    assert_eq!(r.error(), Some("layer_stalled"));
    assert_eq!(r.header("seawall-stalled-layer"), Some("staller"));
    assert_between("stall detection", elapsed, MS(250), MS(2500));
    // Outer layers that forwarded still see the response.
    assert!(r.header("x-request-id").is_some());
    assert_eq!(sim.stats().requests, 0);
    let m = metrics_text(g.admin).await;
    assert_eq!(
        metric(
            &m,
            "seawall_layer_stalls_total",
            &[("route", "r"), ("layer", "staller")]
        ),
        Some(1.0),
        "{m}"
    );
    // A pending-then-forwarding pass through the same layer is fine.
    assert_eq!(get(g.addr, "/").await.status, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn layer_that_answers_skips_the_upstream() {
    let (sim, g) = gateway("10s").await;
    assert_eq!(get(g.addr, "/").await.status, 200);
    let before = sim.stats().requests;
    let r = send(g.addr, flagged("x-answer")).await.unwrap();
    assert_eq!(r.status, 418);
    assert_eq!(r.text(), "answered by a layer\n");
    assert_eq!(r.error(), None);
    // request_id (outer) ran its response phase.
    assert!(r.header("x-request-id").is_some());
    assert_eq!(sim.stats().requests, before, "the upstream was called");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn panic_in_a_response_phase_gets_500_and_the_connection_keeps_serving() {
    let (_sim, g) = gateway("10s").await;
    let mut c = Conn::open(g.addr).await;
    let r = tokio::time::timeout(MS(5000), c.send(flagged("x-panic-late")))
        .await
        .expect("an answer within 5s, not a hung connection")
        .expect("a response, not a dropped connection");
    assert_eq!(r.status, 500, "{}", r.text());
    assert_eq!(r.error(), Some("internal"));
    // The same client connection still works.
    assert_eq!(c.get("/").await.status, 200);
    let m = metrics_text(g.admin).await;
    assert_eq!(
        metric(&m, "seawall_panics_total", &[("route", "r")]),
        Some(1.0),
        "{m}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_debug_trace_of_a_stalled_request_names_the_stalled_layer() {
    // The token: see tests/debug.rs (CARGO_PKG_NAME is set for every test binary).
    let token = std::env::var("CARGO_PKG_NAME").unwrap();
    let sim = sim().await;
    let yaml = config_with(
        "debug:\n  token_env: CARGO_PKG_NAME\n",
        &[],
        &[route("r", "*", "/", "up", "300ms", "debug, request_id")],
        &[upstream("up", &[sim.local_addr()], "", "")],
    );
    let options = GatewayOptions {
        extra_layers: vec![extra_layer("r", Staller)],
        ..Default::default()
    };
    let g = start_with(&yaml, options).await;
    let request = req(Method::GET, "/")
        .header("x-stall", "1")
        .header("seawall-debug", token)
        .body(Full::default())
        .unwrap();
    let r = send(g.addr, request).await.unwrap();
    assert_eq!(r.error(), Some("layer_stalled"));
    let trace = r.header("seawall-debug-trace").expect("a trace").to_owned();
    let last = trace.split(", ").last().unwrap_or_default();
    assert!(
        last.starts_with("staller;") && last.ends_with(";stalled"),
        "{trace}"
    );
}
