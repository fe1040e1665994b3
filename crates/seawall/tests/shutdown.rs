//! Graceful shutdown of `seawall run`: on SIGTERM or SIGINT the gateway stops accepting at
//! once, lets in-flight requests finish (answering `connection: close`; admin `/readyz`
//! says `503 draining` meanwhile), and exits 0; idle client connections do not hold it up.
//! When the drain deadline cuts requests off, or a second signal ends the drain early, it
//! exits 1. Also: the standalone `seawall sim` stops on SIGTERM.

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
    assert_eq!(
        r.header("connection"),
        Some("close"),
        "a response finished during the drain must close its connection: {:?}",
        r.headers
    );

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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_keep_alive_and_half_sent_client_connections_do_not_hold_up_the_exit() {
    use std::io::{Read as _, Write as _};
    let mut gw = Launch::default_config().start();
    // One connection idle after a complete request (keep-alive)...
    let mut idle = TcpStream::connect(gw.ports.listen).expect("connect");
    idle.write_all(b"GET / HTTP/1.1\r\nhost: x\r\n\r\n")
        .expect("write");
    idle.set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    let mut buf = [0u8; 256];
    let n = idle.read(&mut buf).expect("read");
    assert!(buf[..n].starts_with(b"HTTP/1.1 200"), "{:?}", &buf[..n]);
    // ...one that has sent half a request head, and one that has sent nothing.
    let mut half = TcpStream::connect(gw.ports.listen).expect("connect");
    half.write_all(b"GET / HTTP/1.1\r\nhost: x\r\n")
        .expect("write");
    let _silent = TcpStream::connect(gw.ports.listen).expect("connect");
    tokio::time::sleep(Duration::from_millis(200)).await;

    let sent = Instant::now();
    gw.signal("TERM");
    let status = gw
        .wait_exit(Duration::from_secs(5))
        .unwrap_or_else(|| panic!("idle connections held the exit; stderr: {}", gw.stderr()));
    assert_eq!(status.code(), Some(0), "stderr: {}", gw.stderr());
    assert!(
        sent.elapsed() < Duration::from_secs(3),
        "took {:?}",
        sent.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_stop_signal_during_the_drain_exits_at_once_with_code_1() {
    // The default drain timeout is 30s; the in-flight request would take 8s.
    let mut gw = Launch::default_config().start();
    let url = gw.url("/delay/8s");
    let in_flight = tokio::spawn(async move { try_send(&client(), Method::GET, &url, &[]).await });
    tokio::time::sleep(Duration::from_millis(300)).await;
    gw.signal("TERM");
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        gw.try_status().is_none(),
        "exited without draining the in-flight request"
    );

    let sent = Instant::now();
    gw.signal("INT");
    let status = gw.wait_exit(Duration::from_secs(3)).unwrap_or_else(|| {
        panic!(
            "a second signal did not stop the drain; stderr: {}",
            gw.stderr()
        )
    });
    assert_eq!(
        status.code(),
        Some(1),
        "requests were cut off: {}",
        gw.stderr()
    );
    assert!(sent.elapsed() < Duration::from_secs(3));
    assert!(
        gw.stderr().contains("Second stop signal"),
        "stderr: {}",
        gw.stderr()
    );
    if let Ok(Ok(r)) = in_flight.await {
        assert_ne!(r.status, 200, "the 8s request cannot have completed");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readyz_answers_503_draining_while_in_flight_requests_drain() {
    let gw = Launch::default_config().start();
    let c = client();
    let r = get(&c, &gw.admin_url("/readyz"), &[]).await;
    assert_eq!((r.status, r.body.as_str()), (200, "ready\n"));

    let url = gw.url("/delay/2s");
    let in_flight = tokio::spawn(async move { get(&client(), &url, &[]).await });
    tokio::time::sleep(Duration::from_millis(200)).await;
    gw.signal("TERM");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!in_flight.is_finished(), "the drain is over already");
    // A probe as a load balancer or kubelet sends it: a fresh connection.
    let probe = support::client_no_pool();
    let r = try_send(&probe, Method::GET, &gw.admin_url("/readyz"), &[])
        .await
        .unwrap_or_else(|e| {
            panic!("/readyz unreachable during the drain (docs/admin.md: `503 draining`): {e}")
        });
    assert_eq!((r.status, r.body.as_str()), (503, "draining\n"));
    assert_eq!(in_flight.await.expect("join").status, 200);
}
