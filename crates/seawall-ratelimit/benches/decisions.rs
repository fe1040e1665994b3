//! Decisions per second of the local limiter (`KeyedLimiter`), and the cost of one Redis
//! decision when a Redis answers on 127.0.0.1:6379.
//!
//! `cargo bench -p seawall-ratelimit`. Std only (no criterion): each case runs batches
//! of decisions until about 1.5 s have passed and prints one line with decisions/s and
//! ns/decision. Time is synthetic (advanced by a fixed step per decision) so the figures
//! are the limiter's own cost, without the clock read the gateway adds per request.

use std::{
    hint::black_box,
    sync::Arc,
    time::{Duration, Instant},
};

use seawall_ratelimit::{KeyedLimiter, Quota};

/// How long each case runs.
const CASE_TIME: Duration = Duration::from_millis(1500);
/// Decisions between two reads of the wall clock (keeps `Instant::now` out of the figure).
const BATCH: u64 = 10_000;
/// Synthetic time between two decisions: about a real request rate of one gateway core,
/// so keys both refill and run out during a case, as they would in service.
const STEP_NS: u64 = 100;
/// The gateway's default `max_keys`.
const MAX_KEYS: usize = 100_000;

fn quota() -> Quota {
    // 100 per second, burst 20: a typical per-client limit. Whether a decision admits or
    // refuses costs the same map lookup; admitted ones also write the TAT back.
    match Quota::new(100, Duration::from_secs(1), 20) {
        Ok(q) => q,
        Err(e) => {
            eprintln!("bench quota invalid: {e}");
            std::process::exit(1);
        }
    }
}

/// Spreads consecutive integers over the whole `u64` range and so over every shard, as
/// the gateway's key hashes are.
fn mix(i: u64) -> u64 {
    i.wrapping_mul(0x9E37_79B9_7F4A_7C15)
}

/// Runs `decide(i)` for i = 0, 1, 2, … until `CASE_TIME` passes; returns (decisions, time).
fn run(mut decide: impl FnMut(u64) -> bool) -> (u64, Duration) {
    let start = Instant::now();
    let mut done = 0u64;
    while start.elapsed() < CASE_TIME {
        for i in done..done + BATCH {
            black_box(decide(i));
        }
        done += BATCH;
    }
    (done, start.elapsed())
}

fn report(name: &str, decisions: u64, elapsed: Duration) {
    let secs = elapsed.as_secs_f64();
    let per_sec = decisions as f64 / secs;
    let ns = secs * 1e9 / decisions as f64;
    println!(
        "{name:<52} {:>12.0} decisions/s {:>9.1} ns/decision  ({decisions} in {secs:.2} s)",
        per_sec, ns
    );
}

fn single_thread(name: &str, keys: impl Fn(u64) -> u64) {
    let limiter = KeyedLimiter::new(quota(), MAX_KEYS);
    let (n, t) = run(|i| {
        limiter
            .check(black_box(keys(i)), i * STEP_NS, 1, Duration::ZERO)
            .allowed
    });
    report(name, n, t);
}

/// Two threads on one shared limiter; the figure is both threads' decisions together.
fn two_threads(name: &str, keys: fn(usize, u64) -> u64) {
    let limiter = Arc::new(KeyedLimiter::new(quota(), MAX_KEYS));
    let start = Instant::now();
    let total: u64 = std::thread::scope(|s| {
        let handles: Vec<_> = (0..2)
            .map(|t| {
                let limiter = Arc::clone(&limiter);
                s.spawn(move || {
                    run(|i| {
                        limiter
                            .check(black_box(keys(t, i)), i * STEP_NS, 1, Duration::ZERO)
                            .allowed
                    })
                    .0
                })
            })
            .collect();
        // A thread that panicked contributes nothing; the line still prints.
        handles.into_iter().filter_map(|h| h.join().ok()).sum()
    });
    report(name, total, start.elapsed());
}

fn main() {
    // `cargo test --benches` runs this with `--bench` absent; keep that quick.
    if !std::env::args().any(|a| a == "--bench") {
        println!("decisions bench: pass --bench (cargo bench) to run");
        return;
    }
    // The two-thread cases only mean something with two idle cores: say what there was.
    let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
    let load = std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|l| l.split_whitespace().next().map(str::to_owned))
        .unwrap_or_else(|| "unknown".into());
    println!("machine: {cpus} CPUs available, 1-min load average {load} before the run");
    println!("local limiter (KeyedLimiter, 16 shards, max_keys {MAX_KEYS}, quota 100/s burst 20)");
    single_thread("1 thread, one hot key", |_| mix(1));
    single_thread("1 thread, 10,000 keys round-robin", |i| mix(i % 10_000));
    single_thread("1 thread, 1,000,000 distinct keys (evicting)", |i| {
        mix(i % 1_000_000)
    });
    two_threads("2 threads, 10,000 keys each (both together)", |t, i| {
        mix(t as u64 * 10_000 + i % 10_000)
    });
    two_threads("2 threads, one shared hot key (both together)", |_, _| {
        mix(1)
    });
    #[cfg(feature = "redis")]
    redis_case();
}

/// Sequential decisions against a real Redis: each is one `EVALSHA` round trip, so this
/// is the latency a `store: redis` limit adds to a request.
#[cfg(feature = "redis")]
fn redis_case() {
    use seawall_ratelimit::RedisStore;

    const ADDR: &str = "127.0.0.1:6379";
    let name = "redis, 1 connection, sequential EVALSHA";
    let reachable = ADDR.parse().map_err(|e| format!("{e}")).and_then(|a| {
        std::net::TcpStream::connect_timeout(&a, Duration::from_millis(200))
            .map_err(|e| e.to_string())
    });
    if let Err(e) = reachable {
        println!("{name:<52} skipped: no Redis on {ADDR} ({e})");
        return;
    }
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            println!("{name:<52} skipped: no tokio runtime ({e})");
            return;
        }
    };
    let store = match RedisStore::new(
        &format!("redis://{ADDR}/"),
        Duration::from_secs(1),
        Duration::from_secs(1),
    ) {
        Ok(s) => s,
        Err(e) => {
            println!("{name:<52} skipped: {e}");
            return;
        }
    };
    let quota = quota();
    // Its own key prefix, like the tests: never touches anyone else's keys.
    let prefix = format!("seawall-bench:{}", std::process::id());
    runtime.block_on(async {
        // Warm-up: connects and loads the script (the first EVALSHA falls back to EVAL).
        if let Err(e) = store
            .check(&format!("{prefix}:{{0}}"), &quota, 1, Duration::ZERO)
            .await
        {
            println!("{name:<52} skipped: {e}");
            return;
        }
        let start = Instant::now();
        let mut done = 0u64;
        let mut failed = 0u64;
        while start.elapsed() < CASE_TIME {
            let key = format!("{prefix}:{{{}}}", done % 10_000);
            if store.check(&key, &quota, 1, Duration::ZERO).await.is_err() {
                failed += 1;
            }
            done += 1;
        }
        report(name, done, start.elapsed());
        if failed > 0 {
            println!("  ({failed} of them failed: read the figure with care)");
        }
    });
}
