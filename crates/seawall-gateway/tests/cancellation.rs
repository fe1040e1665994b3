//! Cancellation leaves nothing behind, phase by phase, measured.
//!
//! For each phase a request can wait in — pool checkout (the endpoint at its connection
//! cap), TCP connect (a black-hole listener whose accept queue is full, so SYNs go
//! unanswered), TLS handshake (a listener that accepts and never writes), response head
//! (the sim's `/delay`) — a batch of 50 requests is sent, and then either every client
//! disconnects mid-phase or every request's deadline (`seawall-timeout-ms`) passes
//! mid-phase. Afterwards, within a bounded wait:
//! - the pool's numbers are back (`connecting` and `in_use` 0, the endpoint's `open` slots
//!   at the expected count, no connection opened for an abandoned request);
//! - the process's open descriptors (`/proc/self/fd`: the gateway, the sim and the test's
//!   own listeners all run in-process) are back to the baseline;
//! - the runtime's alive task count is back to the baseline;
//! - the upstream side saw its sockets closed (the TLS listener reads EOF on every accepted
//!   socket; the sim counts the requests cancelled and no connection open).
//!
//! DNS has no per-request phase: a request never waits for a lookup (a name that has not
//! resolved fails at once with `no_endpoint`); the last test checks that a resolver that
//! never answers costs no request any time and leaves no task or descriptor behind.
//!
//! Each test builds its own runtime and holds a process-wide lock: descriptor counts are
//! per process, so the tests must not overlap.

mod support;

use std::{
    future::Future,
    net::SocketAddr,
    sync::{Arc, Mutex, PoisonError},
    time::Duration,
};

use seawall_gateway::GatewayOptions;
use support::*;
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpListener, TcpStream},
    task::JoinSet,
};
use tokio_util::sync::CancellationToken;

const MS: fn(u64) -> Duration = Duration::from_millis;
const BATCH: usize = 50;
/// Generous: a 2-core machine shared with builds.
const SETTLE: Duration = Duration::from_secs(10);

static SERIAL: Mutex<()> = Mutex::new(());

/// Runs `test` on a runtime of its own, one test at a time.
fn serial(test: impl Future<Output = ()>) {
    let _serial = SERIAL.lock().unwrap_or_else(PoisonError::into_inner);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(test);
}

fn fd_count() -> usize {
    std::fs::read_dir("/proc/self/fd")
        .expect("/proc/self/fd")
        .count()
}

fn alive_tasks() -> usize {
    tokio::runtime::Handle::current()
        .metrics()
        .num_alive_tasks()
}

/// Descriptors and tasks at a quiet moment.
#[derive(Debug, Clone, Copy)]
struct Baseline {
    fds: usize,
    tasks: usize,
}

async fn baseline() -> Baseline {
    // Let the connections of the setup (admin polls, warm-up) finish closing.
    tokio::time::sleep(MS(300)).await;
    Baseline {
        fds: fd_count(),
        tasks: alive_tasks(),
    }
}

/// One endpoint's pool numbers from the admin API.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct PoolView {
    idle: u64,
    in_use: u64,
    connecting: u64,
    open: u64,
}

async fn pool_view(admin: SocketAddr) -> PoolView {
    // `Connection: close` and read to EOF, so this poll leaves no connection behind.
    let raw = raw_exchange(
        admin,
        b"GET /upstreams HTTP/1.1\r\nHost: admin\r\nConnection: close\r\n\r\n",
        MS(3000),
    )
    .await;
    let body = &raw[raw.find("\r\n\r\n").expect("a response") + 4..];
    let start = body.find('{').expect("a JSON body");
    let end = body.rfind('}').expect("a JSON body");
    let v: serde_json::Value = serde_json::from_str(&body[start..=end]).expect("JSON");
    let e = &v["upstreams"][0]["endpoints"][0];
    let n = |k: &str| e[k].as_u64().unwrap_or_else(|| panic!("no `{k}` in {e}"));
    PoolView {
        idle: n("idle"),
        in_use: n("in_use"),
        connecting: n("connecting"),
        open: n("open"),
    }
}

/// Waits until the pool shows `expected` and descriptors and tasks are back at `base`;
/// panics with what is still there otherwise.
async fn assert_nothing_left(what: &str, admin: SocketAddr, expected: PoolView, base: Baseline) {
    let end = std::time::Instant::now() + SETTLE;
    loop {
        let pool = pool_view(admin).await;
        // Measured after the admin poll, which is closed by then (read to EOF); its
        // server-side task may need a moment, hence the loop.
        let (fds, tasks) = (fd_count(), alive_tasks());
        if pool == expected && fds <= base.fds && tasks <= base.tasks {
            return;
        }
        assert!(
            std::time::Instant::now() < end,
            "{what}: left behind after {SETTLE:?}: pool {pool:?} (expected {expected:?}), \
             fds {fds} (baseline {}), tasks {tasks} (baseline {})",
            base.fds,
            base.tasks
        );
        tokio::time::sleep(MS(50)).await;
    }
}

/// How the requests of a batch end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Leave {
    /// The client closes its connection once the phase is reached.
    Disconnect,
    /// The request's deadline passes mid-phase: the client reads the 504.
    Deadline,
}

/// Sends `BATCH` requests for `path` on their own connections. With `Disconnect`, waits
/// until `reached()` says the phase holds them all, then closes every client; with
/// `Deadline`, each request carries a 400 ms budget and its client checks the 504.
async fn batch<F, Fut>(gw: SocketAddr, path: &str, leave: Leave, reached: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    batch_with(gw, path, "Connection: close\r\n", leave, reached).await
}

/// [`batch`] with other header lines than `Connection: close` (each ending in `\r\n`).
async fn batch_with<F, Fut>(
    gw: SocketAddr,
    path: &str,
    headers: &'static str,
    leave: Leave,
    mut reached: F,
) where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let go = CancellationToken::new();
    let mut clients = JoinSet::new();
    for _ in 0..BATCH {
        let go = go.clone();
        let budget = match leave {
            Leave::Disconnect => "",
            Leave::Deadline => "seawall-timeout-ms: 400\r\n",
        };
        let req = format!("GET {path} HTTP/1.1\r\nHost: test.local\r\n{headers}{budget}\r\n");
        clients.spawn(async move {
            let mut s = TcpStream::connect(gw)
                .await
                .expect("connect to the gateway");
            s.write_all(req.as_bytes()).await.expect("write");
            match leave {
                Leave::Disconnect => go.cancelled().await,
                Leave::Deadline => {
                    // The head is enough (an upgrade request's connection stays open).
                    let text = read_head(&mut s, MS(8000)).await;
                    assert!(text.starts_with("HTTP/1.1 504"), "no 504 within 8s: {text}");
                    assert!(text.contains("seawall-error: deadline_exceeded"), "{text}");
                }
            }
            drop(s);
        });
    }
    if leave == Leave::Disconnect {
        assert!(
            eventually(SETTLE, &mut reached).await,
            "the batch never reached the phase"
        );
        go.cancel();
    }
    while let Some(done) = clients.join_next().await {
        done.expect("a client task failed");
    }
}

fn yaml(upstream: &str) -> String {
    config(
        &[],
        &[route("r", "*", "/", "up", "30s", "")],
        &[upstream.to_owned()],
    )
}

#[test]
fn clients_and_deadlines_leaving_a_pool_checkout_wait_leave_nothing_behind() {
    serial(async {
        let sim = sim().await;
        let g = start(&yaml(&upstream(
            "up",
            &[sim.local_addr()],
            "",
            "max_connections_per_endpoint: 1, max_idle_per_endpoint: 1, checkout_timeout: 30s",
        )))
        .await;
        for leave in [Leave::Disconnect, Leave::Deadline] {
            // The endpoint's one connection is held by a slow request.
            let holder = tokio::spawn({
                let gw = g.addr;
                async move {
                    let mut s = TcpStream::connect(gw).await.unwrap();
                    s.write_all(b"GET /delay/20s HTTP/1.1\r\nHost: test.local\r\n\r\n")
                        .await
                        .unwrap();
                    let mut buf = [0u8; 64];
                    let _ = s.read(&mut buf).await;
                }
            });
            assert!(
                eventually(SETTLE, || async { sim.stats().requests_in_flight == 1 }).await,
                "the holder never reached the sim"
            );
            let base = baseline().await;
            let opened = sim.stats();
            batch(g.addr, "/", leave, || async {
                // Nothing to observe inside the wait but time: the requests are parsed
                // and queued well within this.
                tokio::time::sleep(MS(500)).await;
                true
            })
            .await;
            // The waiters are gone, so freeing the slot opens nothing: the holder leaves,
            // its connection closes, and no abandoned request takes the slot.
            holder.abort();
            let _ = holder.await;
            let idle = PoolView {
                idle: 0,
                in_use: 0,
                connecting: 0,
                open: 0,
            };
            assert_nothing_left(&format!("checkout wait, {leave:?}"), g.admin, idle, base).await;
            tokio::time::sleep(MS(300)).await;
            let after = sim.stats();
            assert_eq!(
                after.requests, opened.requests,
                "an abandoned request reached the upstream: {after:?}"
            );
            assert_eq!(after.connections_open, 0, "{after:?}");
        }
    });
}

/// A listener whose accept queue is full and that never accepts: SYNs to it go
/// unanswered, so a connect to it hangs until its timeout.
struct BlackHole {
    addr: SocketAddr,
    _listener: socket2::Socket,
    _fillers: Vec<TcpStream>,
}

async fn black_hole() -> BlackHole {
    use socket2::{Domain, Socket, Type};
    let socket = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
    socket
        .bind(&"127.0.0.1:0".parse::<SocketAddr>().unwrap().into())
        .unwrap();
    socket.listen(0).unwrap();
    let addr = socket.local_addr().unwrap().as_socket().unwrap();
    let mut fillers = Vec::new();
    loop {
        match tokio::time::timeout(MS(300), TcpStream::connect(addr)).await {
            Ok(Ok(s)) => fillers.push(s),
            Ok(Err(e)) => panic!("black hole refused a connect: {e}"),
            // The queue is full: this connect hung, as every later one will.
            Err(_) => break,
        }
        assert!(fillers.len() < 64, "the accept queue never filled");
    }
    BlackHole {
        addr,
        _listener: socket,
        _fillers: fillers,
    }
}

#[test]
fn clients_and_deadlines_leaving_a_hanging_connect_leave_nothing_behind() {
    serial(async {
        let hole = black_hole().await;
        let g = start(&yaml(&upstream("up", &[hole.addr], "connect: 20s", ""))).await;
        // The connect really hangs (checked once more, from a fresh socket).
        assert!(
            tokio::time::timeout(MS(300), TcpStream::connect(hole.addr))
                .await
                .is_err(),
            "the black hole answered a connect"
        );
        let nothing = PoolView {
            idle: 0,
            in_use: 0,
            connecting: 0,
            open: 0,
        };
        let _ = pool_view(g.admin).await;
        for leave in [Leave::Disconnect, Leave::Deadline] {
            let base = baseline().await;
            batch(g.addr, "/", leave, || async {
                pool_view(g.admin).await.connecting == BATCH as u64
            })
            .await;
            assert_nothing_left(&format!("connect, {leave:?}"), g.admin, nothing, base).await;
        }
    });
}

#[test]
fn websocket_upgrades_leaving_a_hanging_dedicated_connect_leave_nothing_behind() {
    serial(async {
        let hole = black_hole().await;
        let g = start(&yaml(&upstream("up", &[hole.addr], "connect: 20s", ""))).await;
        let nothing = PoolView {
            idle: 0,
            in_use: 0,
            connecting: 0,
            open: 0,
        };
        let _ = pool_view(g.admin).await;
        let upgrade = "Connection: upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n";
        for leave in [Leave::Disconnect, Leave::Deadline] {
            let base = baseline().await;
            batch_with(g.addr, "/ws", upgrade, leave, || async {
                pool_view(g.admin).await.connecting == BATCH as u64
            })
            .await;
            assert_nothing_left(
                &format!("upgrade connect, {leave:?}"),
                g.admin,
                nothing,
                base,
            )
            .await;
        }
    });
}

/// A TCP listener that accepts and never writes: a TLS handshake to it hangs. Keeps the
/// accepted sockets to check that the gateway closed them.
async fn silent_listener() -> (SocketAddr, Arc<tokio::sync::Mutex<Vec<TcpStream>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let accepted = Arc::new(tokio::sync::Mutex::new(Vec::new()));
    let keep = accepted.clone();
    tokio::spawn(async move {
        while let Ok((s, _)) = listener.accept().await {
            keep.lock().await.push(s);
        }
    });
    (addr, accepted)
}

/// Every accepted socket reads EOF (or an error): the gateway closed its end.
async fn all_closed(accepted: &tokio::sync::Mutex<Vec<TcpStream>>) -> usize {
    let mut sockets = std::mem::take(&mut *accepted.lock().await);
    let count = sockets.len();
    for (i, s) in sockets.iter_mut().enumerate() {
        let mut buf = [0u8; 4096];
        let end = tokio::time::Instant::now() + SETTLE;
        loop {
            match tokio::time::timeout_at(end, s.read(&mut buf)).await {
                Ok(Ok(0)) | Ok(Err(_)) => break,
                // The ClientHello: keep reading until the close.
                Ok(Ok(_)) => {}
                Err(_) => panic!("accepted socket {i} of {count} is still open"),
            }
        }
    }
    count
}

#[test]
fn clients_and_deadlines_leaving_a_hanging_tls_handshake_leave_nothing_behind() {
    serial(async {
        let (addr, accepted) = silent_listener().await;
        let up = format!(
            "{{name: up, endpoints: [\"{addr}\"], timeouts: {{tls_handshake: 20s}}, tls: {{server_name: upstream.test}}}}"
        );
        let g = start(&yaml(&up)).await;
        let nothing = PoolView {
            idle: 0,
            in_use: 0,
            connecting: 0,
            open: 0,
        };
        let _ = pool_view(g.admin).await;
        for leave in [Leave::Disconnect, Leave::Deadline] {
            let base = baseline().await;
            batch(g.addr, "/", leave, || async {
                accepted.lock().await.len() == BATCH
                    && pool_view(g.admin).await.connecting == BATCH as u64
            })
            .await;
            assert_eq!(
                all_closed(&accepted).await,
                BATCH,
                "{leave:?}: the handshakes did not all start"
            );
            assert_nothing_left(&format!("TLS handshake, {leave:?}"), g.admin, nothing, base).await;
        }
    });
}

#[test]
fn clients_and_deadlines_leaving_a_response_head_wait_leave_nothing_behind() {
    serial(async {
        let sim = sim().await;
        let g = start(&yaml(&upstream("up", &[sim.local_addr()], "", ""))).await;
        let nothing = PoolView {
            idle: 0,
            in_use: 0,
            connecting: 0,
            open: 0,
        };
        let _ = pool_view(g.admin).await;
        let mut cancelled = 0;
        for leave in [Leave::Disconnect, Leave::Deadline] {
            let base = baseline().await;
            batch(g.addr, "/delay/20s", leave, || async {
                sim.stats().requests_in_flight == BATCH as u64
            })
            .await;
            cancelled += BATCH as u64;
            assert!(
                eventually(SETTLE, || async {
                    let s = sim.stats();
                    s.requests_cancelled == cancelled && s.connections_open == 0
                })
                .await,
                "{leave:?}: the upstream requests were not all abandoned: {:?}",
                sim.stats()
            );
            assert_nothing_left(&format!("response head, {leave:?}"), g.admin, nothing, base).await;
        }
    });
}

/// A resolver that never answers.
struct Silent;

impl seawall_pool::Resolve for Silent {
    fn resolve<'a>(&'a self, _host: &'a str, _port: u16) -> seawall_pool::ResolveFuture<'a> {
        Box::pin(std::future::pending())
    }
}

#[test]
fn a_resolver_that_never_answers_costs_requests_no_wait_and_leaks_nothing() {
    serial(async {
        let up = "{name: up, endpoints: [\"never.test:80\"], dns: {resolve_timeout: 100ms, min_ttl: 100ms}}";
        let options = GatewayOptions {
            resolver: Some(Arc::new(Silent)),
            ..GatewayOptions::default()
        };
        let g = start_with(&yaml(up), options).await;
        // A few lookup rounds (each bounded by resolve_timeout), then the baseline.
        tokio::time::sleep(MS(500)).await;
        let base = baseline().await;
        let started = std::time::Instant::now();
        let mut clients = JoinSet::new();
        for _ in 0..BATCH {
            let gw = g.addr;
            clients.spawn(async move {
                let raw = raw_exchange(
                    gw,
                    b"GET / HTTP/1.1\r\nHost: test.local\r\nConnection: close\r\n\r\n",
                    MS(5000),
                )
                .await;
                assert!(raw.contains("seawall-error: no_endpoint"), "{raw}");
            });
        }
        while let Some(done) = clients.join_next().await {
            done.expect("a client task failed");
        }
        assert!(
            started.elapsed() < MS(3000),
            "requests waited on DNS: {:?}",
            started.elapsed()
        );
        // More lookup rounds start and time out meanwhile; none accumulates.
        tokio::time::sleep(MS(500)).await;
        let end = std::time::Instant::now() + SETTLE;
        loop {
            let (fds, tasks) = (fd_count(), alive_tasks());
            if fds <= base.fds && tasks <= base.tasks {
                break;
            }
            assert!(
                std::time::Instant::now() < end,
                "fds {fds} (baseline {}), tasks {tasks} (baseline {})",
                base.fds,
                base.tasks
            );
            tokio::time::sleep(MS(50)).await;
        }
    });
}
