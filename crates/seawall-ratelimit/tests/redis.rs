//! The Redis GCRA against a real Redis on 127.0.0.1:6379 (`.ci/run` makes sure one
//! answers): it replays redis-cell's table exactly, shares a limit across store
//! instances, and when Redis is down or silent, answers within the timeout and then
//! skips Redis while the breaker is open. Every test uses its own key prefix and never
//! flushes anything.

use std::time::{Duration, Instant};

use seawall_ratelimit::{Quota, RedisStore, StoreError};

const URL: &str = "redis://127.0.0.1:6379/";

/// A key no other test run (or anything else in that Redis) uses.
fn unique_key(test: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("seawall-test:{}:{nanos}:{{{test}}}", std::process::id())
}

fn store(url: &str, timeout_ms: u64) -> RedisStore {
    RedisStore::new(
        url,
        Duration::from_millis(timeout_ms),
        Duration::from_millis(300),
    )
    .unwrap()
}

#[tokio::test]
async fn the_script_reproduces_redis_cells_table() {
    let s = store(URL, 2000);
    let key = unique_key("table");
    let quota = Quota::new(1, Duration::from_secs(1), 5).unwrap();
    // (t s, quantity) → limited, remaining, reset_after ms, retry_after ms
    let rows: [(f64, u32, bool, u32, u64, Option<u64>); 15] = [
        (0.0, 6, true, 5, 0, None),
        (0.0, 1, false, 4, 1000, None),
        (0.0, 1, false, 3, 2000, None),
        (0.0, 1, false, 2, 3000, None),
        (0.0, 1, false, 1, 4000, None),
        (0.0, 1, false, 0, 5000, None),
        (0.0, 1, true, 0, 5000, Some(1000)),
        (3.0, 1, false, 2, 3000, None),
        (3.1, 1, false, 1, 3900, None),
        (4.0, 1, false, 1, 4000, None),
        (8.0, 1, false, 4, 1000, None),
        (9.5, 1, false, 4, 1000, None),
        (9.5, 0, false, 4, 1000, None),
        (9.5, 2, false, 2, 3000, None),
        (9.5, 5, true, 2, 3000, Some(3000)),
    ];
    // A fixed "Redis time" far enough in the past that the key expires on its own soon.
    let start_us = 1_000_000_000_000_000u64;
    for (i, (t, q, limited, remaining, reset_ms, retry_ms)) in rows.into_iter().enumerate() {
        let now = start_us + (t * 1e6) as u64;
        let d = s
            .check_at(&key, &quota, q, Duration::ZERO, Some(now))
            .await
            .unwrap_or_else(|e| panic!("row {i}: {e}"));
        assert_eq!(d.allowed, !limited, "row {i}: limited");
        assert_eq!(d.remaining, remaining, "row {i}: remaining");
        assert_eq!(
            d.reset_after,
            Duration::from_millis(reset_ms),
            "row {i}: reset"
        );
        assert_eq!(
            d.retry_after,
            retry_ms.map(Duration::from_millis),
            "row {i}: retry"
        );
    }
}

#[tokio::test]
async fn two_gateways_share_one_limit_on_redis_time() {
    let (a, b) = (store(URL, 2000), store(URL, 2000));
    let key = unique_key("shared");
    let quota = Quota::new(1, Duration::from_secs(60), 3).unwrap();
    let mut allowed = 0;
    for i in 0..6 {
        let s = if i % 2 == 0 { &a } else { &b };
        let d = s.check(&key, &quota, 1, Duration::ZERO).await.unwrap();
        allowed += usize::from(d.allowed);
        if !d.allowed {
            let retry = d.retry_after.unwrap();
            assert!(retry > Duration::from_secs(55) && retry <= Duration::from_secs(60));
        }
    }
    assert_eq!(allowed, 3, "the burst is shared, not per instance");
}

#[tokio::test]
async fn a_refused_connection_fails_fast_and_then_redis_is_skipped_until_the_cooldown() {
    // A port where nothing listens.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let s = store(&format!("redis://127.0.0.1:{port}/"), 200);
    let quota = Quota::new(10, Duration::from_secs(1), 10).unwrap();
    let started = Instant::now();
    let first = s.check("k", &quota, 1, Duration::ZERO).await;
    assert!(
        matches!(first, Err(StoreError::Failed(_) | StoreError::Timeout)),
        "{first:?}"
    );
    assert!(
        started.elapsed() < Duration::from_millis(1000),
        "{:?}",
        started.elapsed()
    );
    let started = Instant::now();
    assert_eq!(
        s.check("k", &quota, 1, Duration::ZERO).await,
        Err(StoreError::Skipped)
    );
    assert!(
        started.elapsed() < Duration::from_millis(20),
        "an open breaker costs nothing"
    );
    assert!(s.breaker_open());
}

#[tokio::test]
async fn a_redis_that_never_answers_costs_at_most_the_timeout() {
    // Accepts connections and reads nothing back: a hung server.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let hold = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((sock, _)) = listener.accept().await {
            held.push(sock);
        }
    });
    let s = store(&format!("redis://{addr}/"), 150);
    let quota = Quota::new(10, Duration::from_secs(1), 10).unwrap();
    let started = Instant::now();
    let r = s.check("k", &quota, 1, Duration::ZERO).await;
    let took = started.elapsed();
    assert_eq!(r, Err(StoreError::Timeout));
    assert!(
        took >= Duration::from_millis(140) && took < Duration::from_millis(600),
        "{took:?}"
    );
    assert_eq!(
        s.check("k", &quota, 1, Duration::ZERO).await,
        Err(StoreError::Skipped)
    );
    hold.abort();
}

#[tokio::test]
async fn after_the_cooldown_a_probe_finds_redis_again() {
    use std::sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    };
    // A proxy to the real Redis that first swallows connections, then forwards them.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let forward = Arc::new(AtomicBool::new(false));
    let fwd = forward.clone();
    let proxy = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((mut sock, _)) = listener.accept().await {
            if fwd.load(Ordering::SeqCst) {
                tokio::spawn(async move {
                    if let Ok(mut up) = tokio::net::TcpStream::connect("127.0.0.1:6379").await {
                        let _ = tokio::io::copy_bidirectional(&mut sock, &mut up).await;
                    }
                });
            } else {
                held.push(sock);
            }
        }
    });
    let s = store(&format!("redis://{addr}/"), 150);
    let key = unique_key("recover");
    let quota = Quota::new(10, Duration::from_secs(1), 10).unwrap();
    assert_eq!(
        s.check(&key, &quota, 1, Duration::ZERO).await,
        Err(StoreError::Timeout)
    );
    forward.store(true, Ordering::SeqCst);
    assert_eq!(
        s.check(&key, &quota, 1, Duration::ZERO).await,
        Err(StoreError::Skipped),
        "still cooling down"
    );
    tokio::time::sleep(Duration::from_millis(400)).await;
    let d = s.check(&key, &quota, 1, Duration::ZERO).await.unwrap();
    assert!(
        d.allowed && !s.breaker_open(),
        "the probe succeeded and closed the breaker"
    );
    proxy.abort();
}

#[tokio::test]
async fn delay_mode_books_slots_in_redis_and_refuses_waits_over_max_wait() {
    let s = store(URL, 2000);
    let key = unique_key("delay");
    let quota = Quota::new(10, Duration::from_secs(1), 1).unwrap();
    let now = 2_000_000_000_000_000u64;
    let max_wait = Duration::from_millis(250);
    let mut waits = Vec::new();
    for _ in 0..4 {
        let d = s
            .check_at(&key, &quota, 1, max_wait, Some(now))
            .await
            .unwrap();
        waits.push(d.allowed.then_some(d.wait));
    }
    let ms = |n| Some(Duration::from_millis(n));
    assert_eq!(waits, [ms(0), ms(100), ms(200), None]);
}
