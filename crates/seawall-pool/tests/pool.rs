//! Behaviour of the pool against real sockets on 127.0.0.1. Timing assertions are
//! generous: the CI box has 2 noisy cores.

mod support;

use std::time::Duration;

use bytes::Bytes;
use http_body::Body as _;
use http_body_util::BodyExt;
use seawall_core::{ErrorKind, GatewayError};
use seawall_pool::{CloseReason, PoolSettings};
use support::*;
use tokio::time::Instant;

const WAIT: Duration = Duration::from_secs(5);

#[tokio::test]
async fn sequential_requests_share_one_upstream_connection() {
    let upstream = HyperUpstream::start().await;
    let (pool, metrics) = pool(upstream.addr, settings());
    for i in 0..100 {
        let (reused, body) = roundtrip(&pool, "/").await;
        assert_eq!(reused, i > 0, "request {i}");
        assert_eq!(body, Bytes::from_static(b"hello"));
    }
    assert_eq!(upstream.accepts(), 1);
    assert_eq!(metrics.opened.get(), 1);
    assert_eq!(metrics.fresh.get(), 1);
    assert_eq!(metrics.reused.get(), 99);
    let snap = pool.snapshot();
    assert_eq!((snap[0].idle, snap[0].in_use, snap[0].open), (1, 0, 1));
}

#[tokio::test]
async fn concurrent_requests_leave_at_most_max_idle_connections() {
    let upstream = HyperUpstream::start().await;
    let (pool, metrics) = pool(
        upstream.addr,
        PoolSettings {
            max_idle_per_endpoint: 2,
            ..settings()
        },
    );
    let tasks: Vec<_> = (0..5)
        .map(|_| {
            let pool = pool.clone();
            tokio::spawn(async move { roundtrip(&pool, "/slow").await })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    assert_eq!(upstream.accepts(), 5);
    eventually(WAIT, "3 closed by idle cap", || {
        metrics.closed.get(CloseReason::IdleCap).get() == 3
    })
    .await;
    let snap = pool.snapshot();
    assert_eq!((snap[0].idle, snap[0].in_use, snap[0].open), (2, 0, 2));
    assert_eq!(metrics.idle.get(), 2);
    assert_eq!(metrics.in_use.get(), 0);
}

#[tokio::test]
async fn idle_connection_is_closed_after_idle_timeout() {
    let mut upstream = RawUpstream::start(Script::KeepAlive).await;
    let idle_timeout = Duration::from_millis(200);
    let (pool, metrics) = pool(
        upstream.addr,
        PoolSettings {
            idle_timeout,
            ..settings()
        },
    );
    roundtrip(&pool, "/").await;
    let released = Instant::now();
    let eof = upstream.next_eof(WAIT).await;
    let idle_for = eof - released;
    assert!(
        idle_for >= Duration::from_millis(150),
        "closed too early: {idle_for:?}"
    );
    assert!(
        idle_for < Duration::from_secs(3),
        "closed too late: {idle_for:?}"
    );
    eventually(WAIT, "counted as idle_timeout", || {
        metrics.closed.get(CloseReason::IdleTimeout).get() == 1
    })
    .await;
    assert_eq!(pool.snapshot()[0].open, 0);
    assert_eq!(metrics.idle.get(), 0);
}

#[tokio::test]
async fn checkout_beyond_max_connections_fails_with_pool_exhausted_after_checkout_timeout() {
    let upstream = HyperUpstream::start().await;
    let checkout_timeout = Duration::from_millis(300);
    let (pool, _metrics) = pool(
        upstream.addr,
        PoolSettings {
            max_connections_per_endpoint: 2,
            checkout_timeout,
            ..settings()
        },
    );
    // Two slow requests in flight hold both connections.
    let in_flight: Vec<_> = (0..2)
        .map(|_| {
            let pool = pool.clone();
            tokio::spawn(async move {
                let conn = pool.checkout(0, in_secs(10)).await.unwrap();
                let response = conn.send(get("/slow")).await.unwrap();
                tokio::time::sleep(Duration::from_secs(1)).await;
                drop(response);
            })
        })
        .collect();
    eventually(WAIT, "both slots taken", || pool.snapshot()[0].in_use == 2).await;
    let started = Instant::now();
    let error = pool.checkout(0, in_secs(10)).await.unwrap_err();
    let waited = started.elapsed();
    assert_eq!(error.kind, ErrorKind::PoolExhausted);
    assert_eq!(error.endpoint, Some(upstream.addr));
    assert!(error.to_string().contains("300ms"), "{error}");
    assert!(
        waited >= Duration::from_millis(250),
        "gave up too early: {waited:?}"
    );
    assert!(
        waited < Duration::from_secs(2),
        "gave up too late: {waited:?}"
    );
    for task in in_flight {
        task.await.unwrap();
    }
}

#[tokio::test]
async fn released_connection_wakes_a_waiting_checkout() {
    let upstream = HyperUpstream::start().await;
    let (pool, _metrics) = pool(
        upstream.addr,
        PoolSettings {
            max_connections_per_endpoint: 1,
            ..settings()
        },
    );
    let first = pool.checkout(0, in_secs(10)).await.unwrap();
    let holder = tokio::spawn(async move {
        let response = first.send(get("/")).await.unwrap();
        tokio::time::sleep(Duration::from_millis(200)).await;
        response.into_body().collect().await.unwrap();
    });
    let started = Instant::now();
    let second = pool.checkout(0, in_secs(10)).await.unwrap();
    assert!(
        second.is_reused(),
        "the waiter should get the released connection"
    );
    assert!(started.elapsed() >= Duration::from_millis(150));
    holder.await.unwrap();
    drop(second);
    assert_eq!(upstream.accepts(), 1);
}

#[tokio::test]
async fn freed_slot_wakes_a_waiting_checkout() {
    let upstream = HyperUpstream::start().await;
    let (pool, metrics) = pool(
        upstream.addr,
        PoolSettings {
            max_connections_per_endpoint: 1,
            ..settings()
        },
    );
    let first = pool.checkout(0, in_secs(10)).await.unwrap();
    let dropper = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(200)).await;
        drop(first);
    });
    let second = pool.checkout(0, in_secs(10)).await.unwrap();
    assert!(
        !second.is_reused(),
        "the dropped connection was closed, so a new one is opened"
    );
    dropper.await.unwrap();
    assert_eq!(metrics.closed.get(CloseReason::Cancelled).get(), 1);
    let (_, body) = (
        second.is_reused(),
        second
            .send(get("/"))
            .await
            .unwrap()
            .into_body()
            .collect()
            .await
            .unwrap(),
    );
    assert_eq!(body.to_bytes(), Bytes::from_static(b"hello"));
}

#[tokio::test]
async fn response_body_dropped_before_the_end_closes_the_connection() {
    let upstream = HyperUpstream::start().await;
    let (pool, metrics) = pool(upstream.addr, settings());
    let conn = pool.checkout(0, in_secs(10)).await.unwrap();
    let mut body = conn.send(get("/big")).await.unwrap().into_body();
    body.frame().await.unwrap().unwrap();
    assert!(!body.is_end_stream());
    drop(body);
    eventually(WAIT, "closed as body_incomplete", || {
        metrics.closed.get(CloseReason::BodyIncomplete).get() == 1
    })
    .await;
    let (reused, _) = roundtrip(&pool, "/").await;
    assert!(!reused);
    assert_eq!(upstream.accepts(), 2);
}

#[tokio::test]
async fn empty_response_body_releases_the_connection_even_if_never_polled() {
    let mut upstream = RawUpstream::start(Script::KeepAlive).await;
    let (pool, _metrics) = pool(upstream.addr, settings());
    // Read the only frame, then drop the body without polling for its end.
    let conn = pool.checkout(0, in_secs(10)).await.unwrap();
    let mut body = conn.send(get("/")).await.unwrap().into_body();
    body.frame().await.unwrap().unwrap();
    assert!(body.is_end_stream());
    drop(body);
    let (reused, _) = roundtrip(&pool, "/").await;
    assert!(reused);
    assert_eq!(upstream.next(WAIT).await, Seen::Accepted);
    assert!(upstream.seen.try_recv().is_err(), "no second connection");
}

#[tokio::test]
async fn connection_closed_by_peer_while_idle_is_not_handed_out() {
    let mut upstream = RawUpstream::start(Script::AnswerThenClose).await;
    let (pool, metrics) = pool(upstream.addr, settings());
    let (reused, _) = roundtrip(&pool, "/").await;
    assert!(!reused);
    assert_eq!(upstream.next(WAIT).await, Seen::Accepted);
    // The upstream closes its side after answering; the pool notices without being asked.
    eventually(WAIT, "dead connection left the idle stack", || {
        pool.snapshot()[0].open == 0
    })
    .await;
    assert_eq!(pool.snapshot()[0].idle, 0);
    assert_eq!(metrics.closed.get(CloseReason::PeerClosed).get(), 1);
    let conn = pool.checkout(0, in_secs(10)).await.unwrap();
    assert!(!conn.is_reused());
    conn.send(get("/"))
        .await
        .unwrap()
        .into_body()
        .collect()
        .await
        .unwrap();
}

#[tokio::test]
async fn refused_connect_fails_with_connect_error() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let (pool, metrics) = pool(addr, settings());
    let error = pool.checkout(0, in_secs(10)).await.unwrap_err();
    assert_eq!(error.kind, ErrorKind::ConnectError);
    assert!(std::error::Error::source(&error).is_some());
    assert_eq!(metrics.opened.get(), 0);
    assert_eq!(pool.snapshot()[0].open, 0, "the slot is freed");
}

/// A listener whose accept queue is full: the kernel drops further SYNs, so a connect
/// neither succeeds nor is refused.
struct BlackHole {
    addr: std::net::SocketAddr,
    _listener: socket2::Socket,
    _filler: Vec<tokio::net::TcpStream>,
}

async fn black_hole() -> BlackHole {
    use socket2::{Domain, Socket, Type};
    let listener = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
    listener
        .bind(
            &"127.0.0.1:0"
                .parse::<std::net::SocketAddr>()
                .unwrap()
                .into(),
        )
        .unwrap();
    listener.listen(0).unwrap();
    let addr = listener.local_addr().unwrap().as_socket().unwrap();
    let mut filler = Vec::new();
    for _ in 0..8 {
        match tokio::time::timeout(
            Duration::from_millis(100),
            tokio::net::TcpStream::connect(addr),
        )
        .await
        {
            Ok(Ok(stream)) => filler.push(stream),
            _ => break,
        }
    }
    BlackHole {
        addr,
        _listener: listener,
        _filler: filler,
    }
}

#[tokio::test]
async fn connect_that_never_completes_fails_with_connect_timeout() {
    let hole = black_hole().await;
    let connect_timeout = Duration::from_millis(300);
    let (pool, _metrics) = pool(
        hole.addr,
        PoolSettings {
            connect_timeout,
            ..settings()
        },
    );
    let started = Instant::now();
    let error = pool.checkout(0, in_secs(10)).await.unwrap_err();
    let waited = started.elapsed();
    assert_eq!(error.kind, ErrorKind::ConnectTimeout, "{error}");
    assert!(
        waited >= Duration::from_millis(250) && waited < Duration::from_secs(3),
        "{waited:?}"
    );
    assert_eq!(pool.snapshot()[0].open, 0);
    assert_eq!(pool.snapshot()[0].connecting, 0);
}

#[tokio::test]
async fn deadline_shorter_than_connect_timeout_fails_with_deadline_exceeded() {
    let hole = black_hole().await;
    let (pool, _metrics) = pool(
        hole.addr,
        PoolSettings {
            connect_timeout: Duration::from_secs(5),
            ..settings()
        },
    );
    let started = Instant::now();
    let error = pool
        .checkout(0, started + Duration::from_millis(300))
        .await
        .unwrap_err();
    assert_eq!(error.kind, ErrorKind::DeadlineExceeded, "{error}");
    assert!(started.elapsed() < Duration::from_secs(3));
}

#[tokio::test]
async fn deadline_shorter_than_checkout_timeout_fails_with_deadline_exceeded() {
    let upstream = HyperUpstream::start().await;
    let (pool, _metrics) = pool(
        upstream.addr,
        PoolSettings {
            max_connections_per_endpoint: 1,
            checkout_timeout: Duration::from_secs(5),
            ..settings()
        },
    );
    let _held = pool.checkout(0, in_secs(10)).await.unwrap();
    let started = Instant::now();
    let error = pool
        .checkout(0, started + Duration::from_millis(300))
        .await
        .unwrap_err();
    assert_eq!(error.kind, ErrorKind::DeadlineExceeded, "{error}");
    assert!(started.elapsed() < Duration::from_secs(3));
}

#[tokio::test]
async fn passed_deadline_or_unknown_endpoint_fail_without_waiting() {
    let upstream = HyperUpstream::start().await;
    let (pool, _metrics) = pool(upstream.addr, settings());
    let error = pool.checkout(0, Instant::now()).await.unwrap_err();
    assert_eq!(error.kind, ErrorKind::DeadlineExceeded);
    let error = pool.checkout(1, in_secs(10)).await.unwrap_err();
    assert_eq!(error.kind, ErrorKind::NoEndpoint);
    assert_eq!(upstream.accepts(), 0);
}

#[tokio::test]
async fn dropping_the_send_future_closes_the_connection_and_frees_the_slot() {
    let mut upstream = RawUpstream::start(Script::Silent).await;
    let (pool, metrics) = pool(
        upstream.addr,
        PoolSettings {
            max_connections_per_endpoint: 1,
            ..settings()
        },
    );
    let conn = pool.checkout(0, in_secs(10)).await.unwrap();
    let send = conn.send(get("/"));
    assert!(
        tokio::time::timeout(Duration::from_millis(200), send)
            .await
            .is_err()
    );
    upstream.next_eof(WAIT).await;
    eventually(WAIT, "slot freed", || pool.snapshot()[0].open == 0).await;
    assert_eq!(metrics.closed.get(CloseReason::Cancelled).get(), 1);
    assert_eq!(metrics.in_use.get(), 0);
    // The only slot is usable again.
    let again = pool.checkout(0, in_secs(10)).await.unwrap();
    assert!(!again.is_reused());
}

#[tokio::test]
async fn dropping_the_last_pool_clone_closes_idle_connections() {
    let mut upstream = RawUpstream::start(Script::KeepAlive).await;
    let (pool, metrics) = pool(upstream.addr, settings());
    roundtrip(&pool, "/").await;
    let clone = pool.clone();
    drop(pool);
    assert!(
        upstream
            .seen
            .try_recv()
            .is_ok_and(|seen| seen == Seen::Accepted)
    );
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(
        upstream.seen.try_recv().is_err(),
        "a remaining clone keeps the pool open"
    );
    drop(clone);
    upstream.next_eof(WAIT).await;
    eventually(WAIT, "counted as shutdown", || {
        metrics.closed.get(CloseReason::Shutdown).get() == 1
    })
    .await;
}

#[tokio::test]
async fn connection_in_use_when_the_pool_is_dropped_finishes_then_closes() {
    let mut upstream = RawUpstream::start(Script::KeepAlive).await;
    let (pool, metrics) = pool(upstream.addr, settings());
    let conn = pool.checkout(0, in_secs(10)).await.unwrap();
    drop(pool);
    let body = conn
        .send(get("/"))
        .await
        .unwrap()
        .into_body()
        .collect()
        .await
        .unwrap();
    assert_eq!(body.to_bytes(), Bytes::from_static(b"ok"));
    upstream.next_eof(WAIT).await;
    eventually(WAIT, "counted as shutdown", || {
        metrics.closed.get(CloseReason::Shutdown).get() == 1
    })
    .await;
}

#[tokio::test]
async fn close_idle_closes_idle_connections_and_the_pool_keeps_working() {
    let mut upstream = RawUpstream::start(Script::KeepAlive).await;
    let (pool, _metrics) = pool(upstream.addr, settings());
    roundtrip(&pool, "/").await;
    pool.close_idle();
    upstream.next_eof(WAIT).await;
    let (reused, _) = roundtrip(&pool, "/").await;
    assert!(!reused);
}

#[tokio::test]
async fn garbage_from_upstream_is_an_upstream_protocol_error() {
    let upstream = RawUpstream::start(Script::Garbage).await;
    let (pool, metrics) = pool(upstream.addr, settings());
    let conn = pool.checkout(0, in_secs(10)).await.unwrap();
    let error = conn.send(get("/")).await.unwrap_err();
    assert_eq!(error.kind, ErrorKind::UpstreamProtocol, "{error}");
    assert!(!error.reused);
    eventually(WAIT, "counted as error", || {
        metrics.closed.get(CloseReason::Error).get() == 1
    })
    .await;
}

#[tokio::test]
async fn upstream_closing_without_answering_is_an_upstream_reset() {
    // The upstream reads the request and drops the socket without a word.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let (mut stream, _) = listener.accept().await.unwrap();
        let mut buf = [0u8; 1024];
        let _ = tokio::io::AsyncReadExt::read(&mut stream, &mut buf).await;
        drop(stream);
    });
    let (pool, metrics) = pool(addr, settings());
    let conn = pool.checkout(0, in_secs(10)).await.unwrap();
    let error = conn.send(get("/")).await.unwrap_err();
    assert_eq!(error.kind, ErrorKind::UpstreamReset, "{error}");
    assert!(error.unsent_request.is_none(), "the request was written");
    eventually(WAIT, "counted as error", || {
        metrics.closed.get(CloseReason::Error).get() == 1
    })
    .await;
}

#[tokio::test]
async fn connection_closed_by_peer_right_after_release_is_never_silently_reused() {
    // The upstream closes right after answering, racing the next checkout. Either the pool
    // notices and opens a new connection, or the failure is visible as an error on a
    // *reused* connection.
    for _ in 0..20 {
        let upstream = RawUpstream::start(Script::AnswerThenClose).await;
        let (pool, _metrics) = pool(upstream.addr, settings());
        roundtrip(&pool, "/").await;
        let conn = pool.checkout(0, in_secs(10)).await.unwrap();
        let reused = conn.is_reused();
        match conn.send(get("/")).await {
            Ok(response) => {
                assert!(
                    !reused,
                    "a reused connection to a closed peer cannot answer"
                );
                response.into_body().collect().await.unwrap();
            }
            Err(error) => {
                assert!(error.reused, "{error}");
                assert_eq!(error.kind, ErrorKind::UpstreamReset, "{error}");
            }
        }
    }
}

/// A request body that fails at once with a classified error, as the listener's body
/// read timeout would.
struct FailingBody;

impl http_body::Body for FailingBody {
    type Data = Bytes;
    type Error = seawall_core::BoxError;

    fn poll_frame(
        self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<Bytes>, Self::Error>>> {
        let error = GatewayError::new(ErrorKind::BodyReadTimeout, "client body stalled");
        std::task::Poll::Ready(Some(Err(Box::new(error))))
    }
}

#[tokio::test]
async fn request_body_failure_keeps_the_gateway_error_kind() {
    let upstream = RawUpstream::start(Script::Silent).await;
    let (pool, _metrics) = pool(upstream.addr, settings());
    let conn = pool.checkout(0, in_secs(10)).await.unwrap();
    let request = http::Request::post("/")
        .header(http::header::HOST, "upstream.test")
        .header(http::header::CONTENT_LENGTH, "10")
        .body(FailingBody.boxed())
        .unwrap();
    let error = conn.send(request).await.unwrap_err();
    assert_eq!(error.kind, ErrorKind::BodyReadTimeout, "{error}");
}

/// With no slots at all the pool never touches the network, so the wait can be timed
/// exactly on a paused clock.
fn slotless_pool(checkout_timeout: Duration) -> seawall_pool::Pool {
    let settings = PoolSettings {
        max_connections_per_endpoint: 0,
        checkout_timeout,
        ..settings()
    };
    pool("127.0.0.1:9".parse().unwrap(), settings).0
}

#[tokio::test(start_paused = true)]
async fn exhausted_checkout_waits_exactly_the_checkout_timeout() {
    let pool = slotless_pool(Duration::from_millis(750));
    let started = Instant::now();
    let error = pool.checkout(0, in_secs(60)).await.unwrap_err();
    assert_eq!(error.kind, ErrorKind::PoolExhausted);
    assert_eq!(started.elapsed(), Duration::from_millis(750));
}

#[tokio::test(start_paused = true)]
async fn exhausted_checkout_gives_up_at_the_deadline_when_it_comes_first() {
    let pool = slotless_pool(Duration::from_secs(5));
    let started = Instant::now();
    let error = pool
        .checkout(0, started + Duration::from_millis(200))
        .await
        .unwrap_err();
    assert_eq!(error.kind, ErrorKind::DeadlineExceeded);
    assert_eq!(started.elapsed(), Duration::from_millis(200));
    assert!(error.to_string().contains("deadline"), "{error}");
}

#[test]
fn handles_and_futures_can_cross_tasks_and_box_into_the_gateway_body() {
    fn send_sync<T: Send + Sync>() {}
    fn send<T: Send>(_: &T) {}
    send_sync::<seawall_pool::Pool>();
    send_sync::<seawall_pool::Pooled>();
    send_sync::<seawall_pool::PooledBody>();
    send_sync::<seawall_pool::PoolError>();
    send_sync::<seawall_pool::SendError>();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let (pool, _metrics) = pool("127.0.0.1:9".parse().unwrap(), settings());
        send(&pool.checkout(0, in_secs(1)));
        let into_gateway_body = |body: seawall_pool::PooledBody| -> seawall_core::Body {
            body.map_err(seawall_core::BoxError::from).boxed()
        };
        let _ = into_gateway_body;
    });
}

#[tokio::test]
async fn send_future_can_run_on_another_task() {
    let upstream = HyperUpstream::start().await;
    let (pool, _metrics) = pool(upstream.addr, settings());
    let conn = pool.checkout(0, in_secs(10)).await.unwrap();
    let response = tokio::spawn(conn.send(get("/"))).await.unwrap().unwrap();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(body, Bytes::from_static(b"hello"));
}

#[tokio::test]
async fn drained_pool_closes_idle_connections_refuses_checkouts_and_lets_exchanges_finish() {
    let mut upstream = RawUpstream::start(Script::KeepAlive).await;
    let (pool, metrics) = pool(upstream.addr, settings());
    roundtrip(&pool, "/").await;
    let busy = pool.checkout(0, in_secs(10)).await.unwrap();
    assert!(busy.is_reused());
    let other_clone = pool.clone();
    let opened_second = pool.checkout(0, in_secs(10)).await.unwrap();
    assert!(!opened_second.is_reused());
    drop(opened_second); // closed: cancelled
    roundtrip(&pool, "/").await; // leaves one idle connection again
    pool.drain(Duration::from_secs(30));
    // The idle connection closes at once.
    eventually(WAIT, "idle connection closed as shutdown", || {
        metrics.closed.get(CloseReason::Shutdown).get() == 1
    })
    .await;
    let error = other_clone.checkout(0, in_secs(10)).await.unwrap_err();
    assert_eq!(error.kind, ErrorKind::NoEndpoint, "{error}");
    assert!(other_clone.is_closed());
    // The checked-out connection still carries its request, then closes.
    let body = busy
        .send(get("/"))
        .await
        .unwrap()
        .into_body()
        .collect()
        .await
        .unwrap();
    assert_eq!(body.to_bytes(), Bytes::from_static(b"ok"));
    eventually(WAIT, "busy connection closed after its exchange", || {
        metrics.closed.get(CloseReason::Shutdown).get() == 2
    })
    .await;
    upstream.next_eof(WAIT).await;
    assert_eq!(other_clone.snapshot()[0].open, 0);
}
