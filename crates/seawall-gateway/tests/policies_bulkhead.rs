//! The bulkhead through the real gateway: with every slot busy a try waits in the queue up
//! to `queue_timeout` and then gets 503 `overloaded`; with the queue full too it gets 503
//! at once; a waiting try gets the slot as soon as one frees. Each refusal is counted in
//! `seawall_shed_total{upstream, reason}`. When an upstream's capacity halves under load,
//! shedding keeps the latency of admitted requests near the service time, where without a
//! bulkhead every request queues inside the upstream.

mod support;

use std::time::{Duration, Instant};

use support::*;

const MS: fn(u64) -> Duration = Duration::from_millis;

fn yaml(sim: std::net::SocketAddr, concurrency: &str) -> String {
    config(
        &[],
        &[route("r", "*", "/", "up", "5s", "")],
        &[format!(
            "{{name: up, endpoints: [\"{sim}\"], concurrency: {{{concurrency}}}}}"
        )],
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_bulkhead_sheds_with_503_overloaded() {
    let sim = sim().await;
    let g = start(&yaml(
        sim.local_addr(),
        "max_concurrent: 1, max_pending: 1, queue_timeout: 200ms",
    ))
    .await;
    let addr = g.addr;
    // One request takes the slot for 800 ms.
    let running = tokio::spawn(async move { get(addr, "/delay/800ms").await });
    tokio::time::sleep(MS(100)).await;
    // The next waits in the queue and gives up after queue_timeout.
    let queued = tokio::spawn(async move {
        let t = Instant::now();
        (get(addr, "/").await, t.elapsed())
    });
    tokio::time::sleep(MS(50)).await;
    // The queue is full: refused at once.
    let t = Instant::now();
    let full = get(addr, "/").await;
    assert!(t.elapsed() < MS(100), "{:?}", t.elapsed());
    assert_eq!(full.status, 503);
    assert_eq!(full.headers["seawall-error"], "overloaded");

    let (queued, waited) = queued.await.unwrap();
    assert_eq!(queued.status, 503);
    assert_eq!(queued.headers["seawall-error"], "overloaded");
    assert_between("queue wait", waited, MS(180), MS(600));
    assert_eq!(running.await.unwrap().status, 200);
    assert_eq!(
        sim.stats().requests,
        1,
        "shed requests never reach the upstream"
    );

    let m = metrics_text(g.admin).await;
    for reason in ["queue_full", "queue_timeout"] {
        let labels = [("upstream", "up"), ("reason", reason)];
        assert_eq!(
            metric(&m, "seawall_shed_total", &labels),
            Some(1.0),
            "{reason}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_waiting_request_runs_as_soon_as_a_slot_frees() {
    let sim = sim().await;
    let g = start(&yaml(
        sim.local_addr(),
        "max_concurrent: 1, max_pending: 4, queue_timeout: 3s",
    ))
    .await;
    let addr = g.addr;
    let t = Instant::now();
    let tasks: Vec<_> = (0..3)
        .map(|_| tokio::spawn(async move { get(addr, "/delay/150ms").await.status }))
        .collect();
    for task in tasks {
        assert_eq!(task.await.unwrap(), 200);
    }
    // One at a time: three 150 ms requests take at least 450 ms.
    assert_between("three serialized requests", t.elapsed(), MS(430), MS(2500));
    let up = admin_get(g.admin, "/upstreams").await;
    let v: serde_json::Value = serde_json::from_slice(&up.body).unwrap();
    assert_eq!(v["upstreams"][0]["concurrency"]["active"], 0);
    assert_eq!(v["upstreams"][0]["concurrency"]["max_concurrent"], 1);
}

/// `n` GETs of `path` at once; all must succeed.
async fn burst(addr: std::net::SocketAddr, path: &'static str, n: usize) {
    let tasks: Vec<_> = (0..n)
        .map(|_| tokio::spawn(async move { get(addr, path).await.status }))
        .collect();
    for t in tasks {
        assert_eq!(t.await.unwrap(), 200);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_adaptive_limit_falls_when_upstream_latency_rises_but_not_below_min_limit() {
    let sim = sim().await;
    let g = start(&yaml(
        sim.local_addr(),
        "adaptive: {min_limit: 10, initial_limit: 20, max_limit: 20}",
    ))
    .await;
    let limit = |m: &str| metric(m, "seawall_concurrency_limit", &[("upstream", "up")]);
    assert_eq!(limit(&metrics_text(g.admin).await), Some(20.0));
    // A fast baseline: the long-run RTT settles near a millisecond.
    for _ in 0..3 {
        burst(g.addr, "/delay/1ms", 12).await;
    }
    // Latency rises ~100-fold, enough tries at once for every sample to count.
    for _ in 0..8 {
        burst(g.addr, "/delay/200ms", 16).await;
    }
    let after = limit(&metrics_text(g.admin).await).unwrap();
    assert!(
        (10.0..=15.0).contains(&after),
        "the limit fell toward, and not below, min_limit 10: {after}"
    );
}

/// An HTTP/1.1 upstream that serves `capacity` requests at a time, each taking `service`;
/// the rest queue inside it (a thread pool or a database pool behaves this way). Returns
/// its address and the permits, so a test can take some away to cut its capacity.
async fn limited_upstream(
    capacity: usize,
    service: Duration,
) -> (std::net::SocketAddr, std::sync::Arc<tokio::sync::Semaphore>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let permits = std::sync::Arc::new(tokio::sync::Semaphore::new(capacity));
    let workers = permits.clone();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let workers = workers.clone();
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                loop {
                    // One request head (the gateway sends GETs without a body).
                    while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
                        match stream.read(&mut chunk).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => buf.extend_from_slice(&chunk[..n]),
                        }
                    }
                    let end = buf.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
                    buf.drain(..end);
                    let Ok(_permit) = workers.acquire().await else {
                        return;
                    };
                    tokio::time::sleep(service).await;
                    let answer = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok";
                    if stream.write_all(answer).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    (addr, permits)
}

/// `clients` clients in a loop for `run`: the latencies of the 200s, and how many got 503
/// `overloaded`.
async fn load(addr: std::net::SocketAddr, clients: usize, run: Duration) -> (Vec<Duration>, usize) {
    let until = Instant::now() + run;
    let mut tasks = Vec::new();
    for _ in 0..clients {
        tasks.push(tokio::spawn(async move {
            let (mut ok, mut shed) = (Vec::new(), 0);
            let mut c = Conn::open(addr).await;
            while Instant::now() < until {
                let t = Instant::now();
                let r = c.get("/").await;
                match (r.status, r.error()) {
                    (200, _) => ok.push(t.elapsed()),
                    (503, Some("overloaded")) => {
                        shed += 1;
                        // A shed client backs off a little, as a real one would.
                        tokio::time::sleep(MS(20)).await;
                    }
                    other => panic!("unexpected answer {other:?}"),
                }
            }
            (ok, shed)
        }));
    }
    let (mut ok, mut shed) = (Vec::new(), 0);
    for t in tasks {
        let (o, s) = t.await.unwrap();
        ok.extend(o);
        shed += s;
    }
    ok.sort();
    (ok, shed)
}

fn median(sorted: &[Duration]) -> Duration {
    sorted[sorted.len() / 2]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shedding_keeps_admitted_latency_bounded_when_the_upstream_capacity_halves() {
    // The upstream serves 8 at a time, 100 ms each; 8 clients keep it busy. Then half its
    // capacity goes (4 permits taken away). Without a bulkhead every request now queues
    // inside the upstream and waits about twice as long; with `max_concurrent: 4` the
    // gateway sheds what the upstream cannot take, and what it admits still takes about
    // the service time.
    const SERVICE: Duration = Duration::from_millis(100);
    for bulkhead in [false, true] {
        let (up, permits) = limited_upstream(8, SERVICE).await;
        let concurrency = if bulkhead {
            ", concurrency: {max_concurrent: 4, max_pending: 0}"
        } else {
            ""
        };
        let yaml = config(
            &[],
            &[route("r", "*", "/", "up", "5s", "")],
            &[format!("{{name: up, endpoints: [\"{up}\"]{concurrency}}}")],
        );
        let g = start(&yaml).await;
        let (before, _) = load(g.addr, 8, MS(600)).await;
        assert!(
            median(&before) < MS(180),
            "full capacity, bulkhead={bulkhead}: median {:?}",
            median(&before)
        );
        let _halved = permits.acquire_many(4).await.unwrap();
        let (after, shed) = load(g.addr, 8, MS(1500)).await;
        let m = median(&after);
        if bulkhead {
            assert!(m < MS(160), "admitted requests waited: median {m:?}");
            assert!(shed > 0, "nothing was shed");
            assert!(after.len() >= 20, "too little admitted: {}", after.len());
        } else {
            assert!(m >= MS(180), "no queueing without a bulkhead? median {m:?}");
            assert_eq!(shed, 0);
        }
    }
}
