//! The token-protected debug trace. With the right token in `seawall-debug`, a route with
//! the `debug` layer answers with `seawall-debug-trace` naming every layer, the upstream
//! step, its endpoint and whether the connection was reused; a wrong or missing token gets
//! no trace; and the `seawall-debug` header never reaches the upstream.
//!
//! The token: `debug.token_env` names an environment variable, and the workspace forbids
//! `unsafe` (so no `std::env::set_var` under edition 2024). These tests point it at
//! `CARGO_PKG_NAME`, which cargo sets in the environment of every test binary it runs
//! (`seawall-gateway` here), and read the token from the environment at run time.

mod support;

use bytes::Bytes;
use http::Method;
use http_body_util::Full;
use support::*;

const TOKEN_ENV: &str = "CARGO_PKG_NAME";

fn token() -> String {
    std::env::var(TOKEN_ENV).expect("CARGO_PKG_NAME is set when tests run under cargo")
}

async fn gateway() -> (seawall_sim::Sim, TestGateway) {
    let sim = sim().await;
    let yaml = config_with(
        &format!("debug:\n  token_env: {TOKEN_ENV}\n"),
        &[],
        &[
            route(
                "traced",
                "*",
                "/",
                "up",
                "10s",
                "request_id, access_log, debug, {headers: {request: {set: {x-marked: yes}}}}",
            ),
            route("plain", "*", "/plain", "up", "10s", "request_id"),
        ],
        &[upstream("up", &[sim.local_addr()], "", "")],
    );
    let g = start(&yaml).await;
    (sim, g)
}

fn with_debug(path: &str, token: Option<&str>) -> http::Request<Full<Bytes>> {
    let mut b = req(Method::GET, path);
    if let Some(t) = token {
        b = b.header("seawall-debug", t);
    }
    b.body(Full::default()).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn right_token_gets_a_trace_of_every_layer_and_the_upstream() {
    let (sim, g) = gateway().await;
    let mut c = Conn::open(g.addr).await;
    let r = c.send(with_debug("/echo", Some(&token()))).await.unwrap();
    assert_eq!(r.status, 200);
    let trace = r
        .header("seawall-debug-trace")
        .expect("trace header with the right token")
        .to_owned();
    // Every layer, in chain order, then the upstream.
    let names: Vec<&str> = trace
        .split(", ")
        .map(|e| e.split(';').next().unwrap())
        .collect();
    assert_eq!(
        names,
        ["request_id", "access_log", "debug", "headers", "upstream"],
        "{trace}"
    );
    let endpoint = format!("endpoint={}", sim.local_addr());
    assert!(trace.contains(&endpoint), "{trace}");
    assert!(trace.contains("reused=false"), "{trace}");
    assert!(trace.contains(";forward"), "{trace}");
    let echo = r.echo();
    assert_eq!(
        echo.header("seawall-debug"),
        None,
        "token forwarded upstream"
    );
    assert_eq!(echo.header("x-marked"), Some("yes"));

    // The second request reuses the upstream connection, and the trace says so.
    let r = c.send(with_debug("/", Some(&token()))).await.unwrap();
    let trace = r.header("seawall-debug-trace").expect("trace");
    assert!(trace.contains("reused=true"), "{trace}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_or_missing_token_gets_no_trace_and_is_never_forwarded() {
    let (_sim, g) = gateway().await;
    let right = token();
    // Same length but one byte off, a different length, and none at all.
    let mut off = right.clone().into_bytes();
    off[0] ^= 1;
    let off = String::from_utf8(off).unwrap();
    for t in [Some(off.as_str()), Some("nope"), Some(""), None] {
        let r = send(g.addr, with_debug("/echo", t)).await.unwrap();
        assert_eq!(r.status, 200, "{t:?}");
        assert_eq!(r.header("seawall-debug-trace"), None, "{t:?}");
        assert_eq!(r.echo().header("seawall-debug"), None, "{t:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn right_token_on_a_route_without_the_debug_layer_gets_no_trace() {
    let (sim, g) = gateway().await;
    let r = send(g.addr, with_debug("/plain", Some(&token())))
        .await
        .unwrap();
    assert_eq!(r.header("seawall-debug-trace"), None);
    assert!(r.header("x-request-id").is_some(), "routed to `plain`");
    assert_eq!(sim.stats().requests, 1);
}
