//! A fleet of real `seawall run` processes sharing one Redis-backed limit.
//!
//! - Two gateways driven well above a shared `store: redis` limit together admit
//!   `burst + rate × wall time` within ±5% (not twice that, as two local limits would).
//! - With a Redis of the test's own (`redis-server` on a free loopback port, killed and
//!   restarted by PID mid-run; the shared Redis on 6379 is never touched), each `on_error`
//!   mode does what docs/rate-limiting.md says while Redis is gone (`fail_open` allows,
//!   `fail_closed` refuses with 429, `local` enforces this instance's share), no request
//!   waits longer than the Redis timeout plus a margin, and the global limit is back once
//!   Redis returns.
//! - A Redis that hangs mid-run (SIGSTOP: connections open, no answers) costs one
//!   request per cooldown the timeout, the others nothing, until it resumes.
//!
//! Every test uses its own key prefix and never flushes anything.
#![cfg(feature = "redis")]

mod support;

use std::{
    io::{Read as _, Write as _},
    net::TcpStream,
    process::{Child, Command, Stdio},
    sync::Arc,
    time::{Duration, Instant},
};

use support::{Client, Launch, Process, client, free_port, get, try_send, wait_until};

/// A key prefix no other test run uses (the tests share the machine's Redis).
fn unique_prefix(test: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!("seawall-test:{}:{nanos}:{test}:", std::process::id())
}

/// A gateway whose only route, `fleet`, has one `store: redis` limit keyed by the route
/// (every request of every gateway shares it). `redis` is the layer's `redis` section.
fn gateway_config(redis: &str, rate: &str, burst: u32) -> String {
    format!(
        "\
admin:
  listen: @ADMIN@
sim:
  listen: @SIM@
listeners:
  - name: public
    listen: @LISTEN@
    routes:
      - name: fleet
        upstream: sim
        timeout: 5s
        middleware:
          - rate_limit:
              redis: {redis}
              limits:
                - {{name: shared, key: [route], rate: \"{rate}\", burst: {burst}, store: redis}}
upstreams:
  - name: sim
    endpoints: [@SIM@]
"
    )
}

/// What a bounded run of load saw.
#[derive(Debug, Default)]
struct Run {
    admitted: u64,
    refused: u64,
    /// Responses that were neither 200 nor the layer's 429 (with their status).
    other: Vec<String>,
    /// The slowest response.
    slowest: Duration,
    /// Responses that took longer than [`SLOW`].
    slow: u64,
    /// From the first request sent to the last response received.
    wall: Duration,
}

/// Sends GET / to every gateway from `workers` concurrent loops each, back to back with a
/// short pause, for `duration`. The offered rate (hundreds a second per gateway) is far
/// above the limits used here, so the limit, not the load, decides what is admitted.
async fn drive(gateways: &[&Process], workers: usize, duration: Duration) -> Run {
    let started = Instant::now();
    let stop = started + duration;
    let mut tasks = Vec::new();
    for g in gateways {
        let c = Arc::new(client());
        let url = g.url("/");
        for _ in 0..workers {
            let (c, url) = (c.clone(), url.clone());
            tasks.push(tokio::spawn(async move {
                let mut run = Run::default();
                while Instant::now() < stop {
                    let sent = Instant::now();
                    let r = try_send(&c, hyper::Method::GET, &url, &[]).await;
                    run.slowest = run.slowest.max(sent.elapsed());
                    run.slow += u64::from(sent.elapsed() > SLOW);
                    match r {
                        Ok(r) if r.status == 200 => run.admitted += 1,
                        Ok(r) if r.status == 429 && r.error() == Some("rate_limited") => {
                            run.refused += 1;
                        }
                        Ok(r) => run.other.push(format!("{} {}", r.status, r.body)),
                        Err(e) => run.other.push(e),
                    }
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
                run
            }));
        }
    }
    let mut total = Run::default();
    for t in tasks {
        let r = t.await.expect("load task");
        total.admitted += r.admitted;
        total.refused += r.refused;
        total.other.extend(r.other);
        total.slowest = total.slowest.max(r.slowest);
        total.slow += r.slow;
    }
    total.wall = started.elapsed();
    total
}

/// GCRA admits a full burst at the first request, then one request per `1/rate` seconds:
/// over a run of `wall` with requests always waiting, `burst + rate × wall`.
fn expected(rate: f64, burst: u32, wall: Duration) -> f64 {
    f64::from(burst) + rate * wall.as_secs_f64()
}

async fn metrics(c: &Client, g: &Process) -> String {
    let r = get(c, &g.admin_url("/metrics"), &[]).await;
    assert_eq!(r.status, 200, "/metrics: {}", r.body);
    r.body
}

/// `seawall_ratelimit_decisions_total` of the `shared` limit with this outcome (0 if absent).
fn decisions(text: &str, outcome: &str) -> f64 {
    let want = format!("outcome=\"{outcome}\"");
    text.lines()
        .filter(|l| l.starts_with("seawall_ratelimit_decisions_total{"))
        .filter(|l| l.contains("limit=\"shared\"") && l.contains(&want))
        .filter_map(|l| l.rsplit_once(' ')?.1.parse::<f64>().ok())
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_gateways_sharing_a_redis_limit_admit_the_configured_rate_within_5_percent() {
    // 50/s with a burst of 10, over 5 s: about 260 admitted, so ±5% is ±13 requests,
    // while the edges of the run (when the first and last decisions fall inside the
    // measured wall time) are worth one or two. The burst of 10 also rides out a 200 ms
    // stall of the load on a busy machine without losing admissions.
    let (rate, burst) = (50.0, 10);
    // A generous timeout: this test is about accuracy, and a store failure (fail_open)
    // would over-admit; it is checked to be zero below.
    let redis = format!(
        "{{url: \"redis://127.0.0.1:6379/\", timeout: 1s, on_error: fail_open, key_prefix: \"{}\"}}",
        unique_prefix("fleet")
    );
    let config = gateway_config(&redis, "50/s", burst);
    let a = Launch::with_config(&config).arg("--no-watch").start();
    let b = Launch::with_config(&config).arg("--no-watch").start();

    let run = drive(&[&a, &b], 3, Duration::from_secs(5)).await;
    assert!(run.other.is_empty(), "unexpected answers: {:?}", run.other);
    let want = expected(rate, burst, run.wall);
    let got = run.admitted as f64;
    eprintln!("fleet: admitted {got}, expected {want:.1}: {run:?}");
    assert!(
        (got - want).abs() <= 0.05 * want,
        "admitted {got}, expected {want:.1} ± 5% over {:?} ({} refused)",
        run.wall,
        run.refused
    );
    assert!(
        run.refused as f64 > 2.0 * want,
        "the load must stay well above the limit: {run:?}"
    );

    // The gateways' own counts agree with the clients', every decision was Redis's, and
    // both gateways admitted a share (one limit, not two, and not one gateway alone).
    let c = client();
    let (ma, mb) = (metrics(&c, &a).await, metrics(&c, &b).await);
    let allowed = (decisions(&ma, "allowed"), decisions(&mb, "allowed"));
    assert_eq!(allowed.0 + allowed.1, got, "{allowed:?}");
    for m in [&ma, &mb] {
        for outcome in ["fail_open", "fail_closed", "local_allowed", "local_limited"] {
            assert_eq!(decisions(m, outcome), 0.0, "{outcome}: Redis must decide");
        }
    }
    assert!(
        allowed.0 >= 0.2 * got && allowed.1 >= 0.2 * got,
        "both gateways draw on the shared limit: {allowed:?}"
    );
}

/// A `redis-server` of the test's own on a free loopback port, with no persistence.
/// Killed (by PID) on drop.
struct RedisServer {
    port: u16,
    dir: support::TempDir,
    child: Option<Child>,
}

impl RedisServer {
    fn start() -> Self {
        let mut s = RedisServer {
            port: free_port(),
            dir: support::TempDir::new(),
            child: None,
        };
        s.restart();
        s
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    /// Starts it (again) on the same port, and waits until it answers PING.
    fn restart(&mut self) {
        assert!(self.child.is_none(), "already running");
        let port = self.port.to_string();
        let child = Command::new("redis-server")
            .args([
                "--port",
                &port,
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .arg("--dir")
            .arg(self.dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "cannot start redis-server ({e}): these tests need the redis-server \
                     binary on PATH (.ci/run installs it; apt-get install redis-server)"
                )
            });
        self.child = Some(child);
        let ready = wait_until(Duration::from_secs(10), || self.ping());
        assert!(
            ready,
            "redis-server on port {} did not answer PING",
            self.port
        );
    }

    /// Sends `sig` to it (by PID): `STOP` makes it a Redis that accepts and never
    /// answers, with every connection left open; `CONT` resumes it.
    fn signal(&self, sig: &str) {
        let pid = self.child.as_ref().expect("running").id().to_string();
        let status = Command::new("kill")
            .args([&format!("-{sig}"), &pid])
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -{sig} {pid}");
    }

    /// Kills it (SIGKILL, by PID) and reaps it: connections drop, the port refuses.
    fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    fn ping(&self) -> bool {
        let Ok(mut s) = TcpStream::connect(("127.0.0.1", self.port)) else {
            return false;
        };
        let _ = s.set_read_timeout(Some(Duration::from_millis(500)));
        let mut buf = [0u8; 7];
        s.write_all(b"PING\r\n").is_ok() && s.read_exact(&mut buf).is_ok() && &buf == b"+PONG\r\n"
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        // A stopped process still dies of SIGKILL.
        self.kill();
    }
}

/// The Redis timeout and breaker cooldown of the outage tests.
const TIMEOUT: Duration = Duration::from_millis(250);
const COOLDOWN: Duration = Duration::from_millis(500);
/// A response this slow waited for Redis (normal ones take a few milliseconds).
const SLOW: Duration = Duration::from_millis(125);

/// Polls (one request at a time) until Redis decides for `g` again after an outage:
/// its `allowed` or `limited` count grows. Then waits for the bucket to refill.
async fn wait_for_redis(c: &Client, g: &Process, refill: Duration) {
    let before = |m: &str| decisions(m, "allowed") + decisions(m, "limited");
    let start = before(&metrics(c, g).await);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let _ = try_send(c, hyper::Method::GET, &g.url("/"), &[]).await;
        if before(&metrics(c, g).await) > start {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "Redis never decided again after it came back"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(refill).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn when_redis_dies_mid_run_each_mode_behaves_as_documented_and_the_limit_returns() {
    let mut redis = RedisServer::start();
    // 20/s, burst 4, shared by `instances: 2`: with `on_error: local` this gateway alone
    // enforces 20 per 2 s (10/s) with a burst of 2.
    let (rate, burst) = (20.0, 4);
    let phase = Duration::from_millis(2500);
    let modes = ["fail_open", "fail_closed", "local"];
    let gateways: Vec<Process> = modes
        .iter()
        .map(|mode| {
            let section = format!(
                "{{url: \"{}\", timeout: {}ms, cooldown: {}ms, on_error: {mode}, instances: 2, key_prefix: \"{}\"}}",
                redis.url(),
                TIMEOUT.as_millis(),
                COOLDOWN.as_millis(),
                unique_prefix(mode)
            );
            Launch::with_config(&gateway_config(&section, "20/s", burst))
                .arg("--no-watch")
                .start()
        })
        .collect();
    let c = client();
    // Bounds that tell the modes apart on a noisy machine: the global limit's expected
    // count (≈54 over 2.5 s) ±20%, vs the local share (≈27) and fail_open (hundreds).
    let near = |got: u64, want: f64| (got as f64 - want).abs() <= 0.2 * want;

    // 1. Redis up: every gateway enforces the global limit.
    for (mode, g) in modes.iter().zip(&gateways) {
        let run = drive(&[g], 2, phase).await;
        assert!(run.other.is_empty(), "{mode}: {:?}", run.other);
        let want = expected(rate, burst, run.wall);
        assert!(
            near(run.admitted, want),
            "{mode}, Redis up: {run:?}, want {want:.0}"
        );
    }

    // 2. Redis dies. Each mode's documented behaviour, and no request waits for Redis
    // longer than the timeout (the breaker then skips it for the cooldown; a probe to a
    // dead port fails fast). The margin covers a debug build on a busy machine.
    redis.kill();
    let slowest_allowed = TIMEOUT + Duration::from_millis(400);
    let mut during = Vec::new();
    for (mode, g) in modes.iter().zip(&gateways) {
        let run = drive(&[g], 2, phase).await;
        eprintln!("{mode}, Redis down: {run:?}");
        assert!(run.other.is_empty(), "{mode}: {:?}", run.other);
        assert!(
            run.slowest <= slowest_allowed,
            "{mode}: a request took {:?} with Redis down",
            run.slowest
        );
        during.push(run);
    }
    let [open, closed, local] = &during[..] else {
        unreachable!()
    };
    assert!(
        open.refused == 0 && open.admitted as f64 > 3.0 * expected(rate, burst, open.wall),
        "fail_open allows everything: {open:?}"
    );
    assert_eq!(
        closed.admitted, 0,
        "fail_closed refuses everything: {closed:?}"
    );
    let share = expected(rate / 2.0, burst / 2, local.wall);
    assert!(
        near(local.admitted, share),
        "local enforces this instance's share (≈{share:.0}): {local:?}"
    );
    for (mode, g) in modes.iter().zip(&gateways) {
        let m = metrics(&c, g).await;
        let fallback = match *mode {
            "local" => decisions(&m, "local_allowed") + decisions(&m, "local_limited"),
            other => decisions(&m, other),
        };
        assert!(fallback > 0.0, "{mode}: outcomes counted as the fallback");
    }
    let r = get(&c, &gateways[1].url("/"), &[]).await;
    assert_eq!(
        (r.status, r.header("retry-after")),
        (429, Some("1")),
        "fail_closed: Retry-After is the cooldown, rounded up to whole seconds"
    );

    // 3. Redis returns (empty: a restarted Redis without persistence). After the
    // cooldown a probe finds it, and the global limit applies again.
    redis.restart();
    let refill = Duration::from_secs_f64(f64::from(burst) / rate) + Duration::from_millis(100);
    for (mode, g) in modes.iter().zip(&gateways) {
        wait_for_redis(&c, g, refill).await;
        let before = metrics(&c, g).await;
        let run = drive(&[g], 2, phase).await;
        assert!(run.other.is_empty(), "{mode}: {:?}", run.other);
        let want = expected(rate, burst, run.wall);
        assert!(
            near(run.admitted, want),
            "{mode}, Redis back: {run:?}, want {want:.0}"
        );
        let after = metrics(&c, g).await;
        let redis_decided = decisions(&after, "allowed") - decisions(&before, "allowed");
        assert_eq!(
            redis_decided, run.admitted as f64,
            "{mode}: every admission was Redis's again"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn when_redis_hangs_mid_run_one_request_per_cooldown_pays_the_timeout_and_no_more() {
    let redis = RedisServer::start();
    let (rate, burst) = (20.0, 4);
    let section = format!(
        "{{url: \"{}\", timeout: {}ms, cooldown: {}ms, on_error: fail_open, key_prefix: \"{}\"}}",
        redis.url(),
        TIMEOUT.as_millis(),
        COOLDOWN.as_millis(),
        unique_prefix("hang")
    );
    let g = Launch::with_config(&gateway_config(&section, "20/s", burst))
        .arg("--no-watch")
        .start();
    let c = client();
    let phase = Duration::from_millis(2500);
    let near = |got: u64, want: f64| (got as f64 - want).abs() <= 0.2 * want;

    let up = drive(&[&g], 2, phase).await;
    let want = expected(rate, burst, up.wall);
    assert!(near(up.admitted, want), "Redis up: {up:?}, want {want:.0}");

    // Redis stops answering; its connections stay open (a hung server, not a dead one).
    redis.signal("STOP");
    let hung = drive(&[&g], 2, phase).await;
    eprintln!("Redis hung: {hung:?}");
    assert!(hung.other.is_empty(), "{:?}", hung.other);
    assert_eq!(hung.refused, 0, "fail_open: {hung:?}");
    assert!(
        hung.slowest >= TIMEOUT - Duration::from_millis(25)
            && hung.slowest <= TIMEOUT + Duration::from_millis(400),
        "the requests that asked Redis waited for the timeout, and no longer: {hung:?}"
    );
    // The first failure opens the breaker; then one probe per cooldown waits (the
    // other worker may be caught behind a probe once in a while).
    let probes = (hung.wall.as_secs_f64() / (TIMEOUT + COOLDOWN).as_secs_f64()).ceil() as u64;
    assert!(
        hung.slow <= 2 * probes + 1,
        "{} slow requests; at most about one per cooldown may wait: {hung:?}",
        hung.slow
    );
    let m = metrics(&c, &g).await;
    assert!(
        decisions(&m, "fail_open") >= hung.admitted as f64 - 1.0,
        "{hung:?}"
    );

    // Redis resumes: a probe finds it and the shared limit applies again.
    redis.signal("CONT");
    let refill = Duration::from_secs_f64(f64::from(burst) / rate) + Duration::from_millis(100);
    wait_for_redis(&c, &g, refill).await;
    let back = drive(&[&g], 2, phase).await;
    let want = expected(rate, burst, back.wall);
    assert!(
        near(back.admitted, want) && back.slowest < SLOW,
        "Redis resumed: {back:?}, want {want:.0}"
    );
}
