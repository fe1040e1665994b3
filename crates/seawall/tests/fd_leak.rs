//! Acceptance: no file-descriptor or task leak. After a few thousand requests that hit
//! every error kind (no route, connect error, response-header timeout, deadline, upstream
//! reset and close, pool exhaustion, clients leaving mid-request and mid-body), the
//! gateway's open fds return to their baseline once idle pool connections are evicted and
//! client connections closed, and its connection gauges return to zero.
//!
//! The upstream is a separate `seawall sim` process, so `/proc/<pid>/fd` counts only the
//! gateway's own descriptors.

mod support;

use std::{
    collections::BTreeMap,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use support::{Client, Launch, Process, client, client_no_pool, get, try_send, wait_until};
use tokio::{
    io::{AsyncReadExt as _, AsyncWriteExt as _},
    net::TcpStream,
    sync::Semaphore,
};

const CONFIG: &str = "\
admin:
  listen: @ADMIN@
listeners:
  - name: public
    listen: @LISTEN@
    idle_timeout: 1s
    routes:
      - name: ok
        match: { host: ok.test }
        upstream: sim
        timeout: 10s
      - name: refused
        match: { host: refused.test }
        upstream: closed
        timeout: 5s
      - name: slow
        match: { host: slow.test }
        upstream: slow
        timeout: 5s
      - name: tiny
        match: { host: tiny.test }
        upstream: tiny
        timeout: 5s
upstreams:
  - name: sim
    endpoints: [SIM_ADDR]
    pool: { idle_timeout: 500ms }
  - name: closed
    endpoints: [CLOSED_ADDR]
    pool: { idle_timeout: 500ms }
  - name: slow
    endpoints: [SIM_ADDR]
    timeouts: { response_header: 100ms }
    pool: { idle_timeout: 500ms }
  - name: tiny
    endpoints: [SIM_ADDR]
    pool: { max_connections_per_endpoint: 1, max_idle_per_endpoint: 1, checkout_timeout: 30ms, idle_timeout: 500ms }
";

/// One kind of request in the mix.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Kind {
    Ok,
    OkBody,
    NoRoute,
    ConnectError,
    ResponseHeaderTimeout,
    DeadlineExceeded,
    Reset,
    Close,
    ClientLeavesMidRequest,
    ClientLeavesMidBody,
    Pool,
}

const MIX: [Kind; 14] = [
    Kind::Ok,
    Kind::OkBody,
    Kind::NoRoute,
    Kind::ConnectError,
    Kind::Ok,
    Kind::ResponseHeaderTimeout,
    Kind::DeadlineExceeded,
    Kind::Reset,
    Kind::Ok,
    Kind::Close,
    Kind::ClientLeavesMidRequest,
    Kind::ClientLeavesMidBody,
    Kind::Pool,
    Kind::Pool,
];

/// A request that the client abandons: it sends the head, optionally reads the start of
/// the response, then closes the socket.
async fn abandon(addr: std::net::SocketAddr, path: &str, read_some: bool) {
    let Ok(mut s) = TcpStream::connect(addr).await else {
        panic!("cannot connect to the gateway at {addr}");
    };
    let req = format!("GET {path} HTTP/1.1\r\nhost: ok.test\r\n\r\n");
    s.write_all(req.as_bytes()).await.expect("write request");
    if read_some {
        let mut buf = [0u8; 512];
        let n = tokio::time::timeout(Duration::from_secs(5), s.read(&mut buf))
            .await
            .expect("no response head within 5s")
            .expect("read");
        assert!(buf[..n].starts_with(b"HTTP/1.1 200"), "got {:?}", &buf[..n]);
    } else {
        tokio::time::sleep(Duration::from_millis(30)).await;
    }
    drop(s);
}

/// Sends one request of `kind` and checks its outcome. Returns the `seawall-error` seen.
async fn one(c: &Client, gw: std::net::SocketAddr, kind: Kind) -> Option<String> {
    let url = |p: &str| format!("http://{gw}{p}");
    let (host, path, extra): (&str, &str, Option<(&str, &str)>) = match kind {
        Kind::Ok => ("ok.test", "/", None),
        Kind::OkBody => ("ok.test", "/bytes/20000", None),
        Kind::NoRoute => ("nowhere.test", "/", None),
        Kind::ConnectError => ("refused.test", "/", None),
        Kind::ResponseHeaderTimeout => ("slow.test", "/delay/2s", None),
        Kind::DeadlineExceeded => ("ok.test", "/hang", Some(("seawall-timeout-ms", "100"))),
        Kind::Reset => ("ok.test", "/reset", None),
        Kind::Close => ("ok.test", "/close", None),
        Kind::Pool => ("tiny.test", "/delay/60ms", None),
        Kind::ClientLeavesMidRequest => {
            abandon(gw, "/hang", false).await;
            return None;
        }
        Kind::ClientLeavesMidBody => {
            abandon(gw, "/drip?bytes=20000&duration=1s", true).await;
            return None;
        }
    };
    let mut headers = vec![("host", host)];
    headers.extend(extra);
    let r = try_send(c, hyper::Method::GET, &url(path), &headers)
        .await
        .unwrap_or_else(|e| panic!("{kind:?}: {e}"));
    let expected: &[(u16, Option<&str>)] = match kind {
        Kind::Ok | Kind::OkBody => &[(200, None)],
        Kind::NoRoute => &[(404, Some("no_route"))],
        Kind::ConnectError => &[(502, Some("connect_error"))],
        Kind::ResponseHeaderTimeout => &[(504, Some("response_header_timeout"))],
        Kind::DeadlineExceeded => &[(504, Some("deadline_exceeded"))],
        Kind::Reset | Kind::Close => &[(502, Some("upstream_reset"))],
        Kind::Pool => &[(200, None), (503, Some("pool_exhausted"))],
        Kind::ClientLeavesMidRequest | Kind::ClientLeavesMidBody => unreachable!(),
    };
    assert!(
        expected.contains(&(r.status, r.error())),
        "{kind:?}: got {} {:?}, expected one of {expected:?}; body: {}",
        r.status,
        r.error(),
        r.body
    );
    if kind == Kind::OkBody {
        assert_eq!(r.body.len(), 20000, "truncated body");
    }
    r.error().map(str::to_owned)
}

/// Counts an outcome: by `seawall-error` reason, else by kind.
fn record(seen: &Mutex<BTreeMap<String, usize>>, kind: Kind, error: Option<String>) {
    let key = error.unwrap_or_else(|| format!("{kind:?}"));
    *seen.lock().expect("lock").entry(key).or_default() += 1;
}

/// Sum of the samples of `metric` whose label set contains `labels`.
fn metric(text: &str, metric: &str, labels: &str) -> f64 {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter(|l| l.starts_with(metric) && l[metric.len()..].starts_with(['{', ' ']))
        .filter(|l| l.contains(labels))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

async fn metrics(c: &Client, gw: &Process) -> String {
    let r = get(c, &gw.admin_url("/metrics"), &[]).await;
    assert_eq!(r.status, 200);
    r.body
}

/// Waits until the fd count is at most `limit`; returns the last count seen.
fn settle(gw: &Process, limit: usize, timeout: Duration) -> usize {
    let mut last = gw.fd_count();
    wait_until(timeout, || {
        last = gw.fd_count();
        last <= limit
    });
    last
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fds_return_to_baseline_after_thousands_of_requests_hitting_every_error_kind() {
    let sim = Launch::sim().start();
    // A port that refuses connections and that nobody else can take while the test runs:
    // bound, never listening.
    let closed = tokio::net::TcpSocket::new_v4().expect("socket");
    closed.bind(support::local(0)).expect("bind");
    let closed_addr = closed.local_addr().expect("local_addr");
    let config = CONFIG
        .replace("SIM_ADDR", &sim.ports.sim.to_string())
        .replace("CLOSED_ADDR", &closed_addr.to_string());
    let gw = Launch::with_config(&config).start();
    let addr = gw.ports.listen;

    // Warm-up: every kind once, so lazily created descriptors exist before the baseline.
    let seen: Arc<Mutex<BTreeMap<String, usize>>> = Arc::default();
    {
        let c = client();
        for kind in MIX {
            record(&seen, kind, one(&c, addr, kind).await);
        }
    }
    // Quiescent baseline: pool connections evicted (500ms idle), client sockets closed.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let baseline = gw.fd_count();

    // The load: ~3000 requests, at most 32 in flight.
    const TOTAL: usize = 3024;
    let started = Instant::now();
    let c = client();
    let gate = Arc::new(Semaphore::new(32));
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..TOTAL {
        let permit = gate.clone().acquire_owned().await.expect("semaphore");
        let (c, seen) = (c.clone(), seen.clone());
        let kind = MIX[i % MIX.len()];
        tasks.spawn(async move {
            record(&seen, kind, one(&c, addr, kind).await);
            drop(permit);
        });
        while let Some(done) = tasks.try_join_next() {
            done.expect("a request task panicked");
        }
    }
    while let Some(done) = tasks.join_next().await {
        done.expect("a request task panicked");
    }
    // Bursts on the one-connection pool, so that checkouts time out for sure.
    for _ in 0..5 {
        let burst: Vec<_> = (0..6)
            .map(|_| {
                let c = c.clone();
                tokio::spawn(async move { one(&c, addr, Kind::Pool).await })
            })
            .collect();
        for b in burst {
            record(&seen, Kind::Pool, b.await.expect("join"));
        }
    }
    let load_time = started.elapsed();
    let during = gw.fd_count();
    drop(c);

    let seen = seen.lock().expect("lock").clone();
    println!("outcomes (warm-up, {TOTAL} requests, bursts) in {load_time:?}: {seen:?}");
    for reason in [
        "no_route",
        "connect_error",
        "response_header_timeout",
        "deadline_exceeded",
        "upstream_reset",
        "pool_exhausted",
    ] {
        assert!(seen.contains_key(reason), "never saw {reason}: {seen:?}");
    }

    // Tasks and connections: idle pool connections go after 500ms, idle client connections
    // after 1s; then every connection gauge is back to zero.
    const GAUGES: [&str; 4] = [
        "seawall_downstream_connections_open",
        "seawall_upstream_connections_in_use",
        "seawall_upstream_connections_connecting",
        "seawall_upstream_connections_idle",
    ];
    // No keep-alive: the metrics polls must not hold a connection of their own.
    let mc = client_no_pool();
    let deadline = Instant::now() + Duration::from_secs(10);
    let m = loop {
        let m = metrics(&mc, &gw).await;
        if GAUGES.iter().all(|g| metric(&m, g, "") == 0.0) || Instant::now() >= deadline {
            break m;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    for gauge in GAUGES {
        assert_eq!(
            metric(&m, gauge, ""),
            0.0,
            "{gauge} is not back to 0 after 10s:\n{m}"
        );
    }

    // And the descriptors are back where they started.
    // Give the last admin connection a moment to close; allow a small margin after that.
    let mut after = settle(&gw, baseline, Duration::from_secs(2));
    if after > baseline {
        after = settle(&gw, baseline + 3, Duration::from_secs(3));
    }
    println!("fds: baseline {baseline}, under load {during}, after {after}");
    assert!(
        after <= baseline + 3,
        "fd leak: baseline {baseline}, after load and settling {after} (under load {during})"
    );

    // Every request was recorded exactly once, with the outcome the client saw; the
    // clients that left (mid-request on /hang, mid-body on /drip) count as client_closed.
    for (reason, n) in seen.iter().filter(|(k, _)| k.contains('_')) {
        let counted = metric(&m, "seawall_errors_total", &format!("kind=\"{reason}\""));
        assert_eq!(counted, *n as f64, "errors_total for {reason}:\n{m}");
    }
    // Abandoned requests count as client_closed exactly once, including a client that
    // leaves before the gateway first polls its request (admission happens before that).
    let left = (seen["ClientLeavesMidRequest"] + seen["ClientLeavesMidBody"]) as f64;
    let closed = metric(&m, "seawall_errors_total", "kind=\"client_closed\"");
    assert_eq!(
        closed, left,
        "{left} requests were abandoned, {closed} counted as client_closed:\n{m}"
    );

    // Still healthy afterwards.
    let r = get(&mc, &gw.url("/"), &[("host", "ok.test")]).await;
    assert_eq!(r.status, 200);
    drop((sim, closed));
}
