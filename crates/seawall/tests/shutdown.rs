//! Graceful shutdown of `seawall run`: on SIGTERM or SIGINT the gateway stops accepting at
//! once, lets in-flight requests finish, and exits 0; when the drain deadline cuts requests
//! off it exits 1.

mod support;

use std::{
    io::ErrorKind,
    net::TcpStream,
    time::{Duration, Instant},
};

use hyper::Method;
use support::{Launch, client, get, try_send};

/// True once a TCP connect to `addr` is refused.
fn refused(addr: std::net::SocketAddr) -> bool {
    match TcpStream::connect_timeout(&addr, Duration::from_millis(200)) {
        Err(e) => e.kind() == ErrorKind::ConnectionRefused,
        Ok(_) => false,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_finishes_the_in_flight_request_refuses_new_connections_and_exits_0() {
    let mut gw = Launch::default_config().start();
    let url = gw.url("/delay/1500ms");
    let in_flight = tokio::spawn(async move { get(&client(), &url, &[]).await });
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(
        !in_flight.is_finished(),
        "the slow request finished too early"
    );

    gw.signal("TERM");
    let sent = Instant::now();
    let listen = gw.ports.listen;
    let refused_at = tokio::task::spawn_blocking(move || {
        support::wait_until(Duration::from_secs(1), || refused(listen)).then(Instant::now)
    })
    .await
    .expect("join");
    let refused_at = refused_at.expect("new connections were still accepted 1s after SIGTERM");
    assert!(
        !in_flight.is_finished(),
        "connections were refused only after the in-flight request ended (after {:?})",
        refused_at - sent
    );

    let r = in_flight.await.expect("join");
    assert_eq!(
        r.status, 200,
        "the in-flight request was cut off: {}",
        r.body
    );
    assert_eq!(r.body, "delayed\n");

    let status = gw
        .wait_exit(Duration::from_secs(5))
        .unwrap_or_else(|| panic!("still running 5s after SIGTERM; stderr: {}", gw.stderr()));
    assert_eq!(status.code(), Some(0), "stderr: {}", gw.stderr());
    assert!(gw.stderr().contains("Drained"), "stderr: {}", gw.stderr());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigint_shuts_down_cleanly_with_exit_code_0() {
    let mut gw = Launch::default_config().start();
    assert_eq!(get(&client(), &gw.url("/"), &[]).await.status, 200);
    gw.signal("INT");
    let status = gw
        .wait_exit(Duration::from_secs(5))
        .unwrap_or_else(|| panic!("still running 5s after SIGINT; stderr: {}", gw.stderr()));
    assert_eq!(status.code(), Some(0), "stderr: {}", gw.stderr());
    assert!(
        refused(gw.ports.listen),
        "the listener is still open after exit"
    );
}

const SHORT_DRAIN: &str = "\
admin:
  listen: @ADMIN@
sim:
  listen: @SIM@
listeners:
  - name: public
    listen: @LISTEN@
    routes:
      - upstream: sim
        timeout: 10s
upstreams:
  - name: sim
    endpoints: [@SIM@]
shutdown:
  drain_timeout: 500ms
";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_outliving_the_drain_timeout_makes_the_exit_code_1() {
    let mut gw = Launch::with_config(SHORT_DRAIN).start();
    let url = gw.url("/delay/8s");
    let in_flight = tokio::spawn(async move { try_send(&client(), Method::GET, &url, &[]).await });
    tokio::time::sleep(Duration::from_millis(300)).await;
    let sent = Instant::now();
    gw.signal("TERM");
    let status = gw
        .wait_exit(Duration::from_secs(5))
        .unwrap_or_else(|| panic!("still running 5s after SIGTERM; stderr: {}", gw.stderr()));
    let took = sent.elapsed();
    assert_eq!(status.code(), Some(1), "stderr: {}", gw.stderr());
    assert!(
        took >= Duration::from_millis(450),
        "exited after {took:?}, before the 500ms drain timeout"
    );
    assert!(
        gw.stderr().contains("Drain deadline passed"),
        "stderr: {}",
        gw.stderr()
    );
    // The cut-off request did not get a 200.
    if let Ok(Ok(r)) = in_flight.await {
        assert_ne!(r.status, 200, "the 8s request cannot have completed");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_standalone_sim_serves_its_endpoints_and_exits_0_on_sigterm() {
    let mut sim = Launch::sim().start();
    let c = client();
    let base = format!("http://{}", sim.ports.sim);
    let r = get(&c, &format!("{base}/"), &[]).await;
    assert_eq!(
        (r.status, r.body.as_str()),
        (200, "hello from seawall sim\n")
    );
    assert_eq!(
        get(&c, &format!("{base}/status/418"), &[]).await.status,
        418
    );
    assert_eq!(
        get(&c, &format!("{base}/bytes/1234"), &[]).await.body.len(),
        1234
    );
    drop(c);
    sim.signal("TERM");
    let status = sim.wait_exit(Duration::from_secs(5)).unwrap_or_else(|| {
        panic!(
            "sim still running 5s after SIGTERM; stderr: {}",
            sim.stderr()
        )
    });
    assert_eq!(status.code(), Some(0), "stderr: {}", sim.stderr());
}
