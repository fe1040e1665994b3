//! `access_log`: one structured JSON line per request, written when the response ends.
//!
//! The layer itself does nothing per request: a route that lists it has its requests
//! logged (decided when the route is built, so that a request dropped before its chain
//! ran is logged too); the line is written by `crate::outcome` once
//! the response body has finished, so it carries the true duration and the final outcome
//! (including a client that left mid-body).
//!
//! Why the sink is built this way: handing each line to a writer task (or to tokio's stdout,
//! which does every write on the blocking pool) costs a cross-thread wake-up per line, and
//! that halved the gateway's throughput in benchmarks. Instead each worker thread serializes
//! its lines straight into its own buffer (a shard: no lock shared between workers on the
//! request path), and one flusher thread swaps the buffers out every 100 ms, or sooner
//! when one fills, and writes them in large blocks. A shard that is full because the output
//! cannot keep up drops lines and counts them rather than growing without bound.

use std::{
    cell::RefCell,
    io::Write,
    sync::{
        Arc, Condvar, Mutex, Weak,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use http::Request;
use seawall_core::Body;
use tokio::sync::mpsc;

mod line;

use self::line::Line;
use crate::{
    chain::{Flow, Layer, Step},
    context::RequestContext,
};

/// The `access_log` layer.
pub struct AccessLog;

impl Layer for AccessLog {
    fn name(&self) -> &'static str {
        "access_log"
    }

    fn on_request<'a>(&'a self, req: Request<Body>, _cx: &'a mut RequestContext) -> Step<'a> {
        Step::Done(Flow::Forward(req))
    }
}

/// How often buffered lines are written out at the latest.
const FLUSH_INTERVAL: Duration = Duration::from_millis(100);
/// A shard this full wakes the flusher early.
const FLUSH_SOON: usize = 64 * 1024;
/// A shard this full drops new lines: the output is not keeping up.
const SHARD_CAP: usize = 4 * 1024 * 1024;

/// Where finished buffers go.
enum Output {
    Stdout,
    Channel(mpsc::Sender<String>),
}

struct Shard {
    buf: Mutex<Vec<u8>>,
}

struct SinkInner {
    id: u64,
    shards: Mutex<Vec<Arc<Shard>>>,
    dropped: AtomicU64,
    wake: (Mutex<bool>, Condvar),
}

/// Where access log lines go. Cloning shares the sink.
pub struct AccessLogSink {
    inner: Arc<SinkInner>,
}

thread_local! {
    /// This thread's shard of each live sink (usually one).
    static SHARDS: RefCell<Vec<(u64, Weak<Shard>)>> = const { RefCell::new(Vec::new()) };
}

static NEXT_SINK_ID: AtomicU64 = AtomicU64::new(1);

impl AccessLogSink {
    /// A sink that writes to stdout.
    pub fn stdout() -> Self {
        Self::start(Output::Stdout)
    }

    /// A sink that hands each line to `tx` (tests read them from the receiver).
    pub fn channel(tx: mpsc::Sender<String>) -> Self {
        Self::start(Output::Channel(tx))
    }

    fn start(output: Output) -> Self {
        let inner = Arc::new(SinkInner {
            id: NEXT_SINK_ID.fetch_add(1, Ordering::Relaxed),
            shards: Mutex::new(Vec::new()),
            dropped: AtomicU64::new(0),
            wake: (Mutex::new(false), Condvar::new()),
        });
        let weak = Arc::downgrade(&inner);
        let spawned = std::thread::Builder::new()
            .name("seawall-access-log".to_owned())
            .spawn(move || flusher(&weak, output));
        if let Err(error) = spawned {
            tracing::error!(%error, "Cannot start the access log writer; access log lines will be dropped.");
        }
        Self { inner }
    }

    /// Lines dropped because the output could not keep up.
    pub fn dropped(&self) -> u64 {
        self.inner.dropped.load(Ordering::Relaxed)
    }

    /// Writes the line for a finished request.
    pub fn write(&self, cx: &RequestContext, elapsed: Duration) {
        let status = if cx.error == Some(seawall_core::ErrorKind::ClientClosed) {
            499
        } else {
            cx.status
        };
        let line = Line {
            ts: SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .unwrap_or_default(),
            listener: &cx.listener,
            route: &cx.route.name,
            method: cx.method.as_str(),
            // The query string is left out on purpose: it often carries tokens.
            path: cx.uri.path(),
            status,
            duration: elapsed,
            upstream: cx.route.upstream.as_ref().map(|u| u.name.as_str()),
            endpoint: cx.upstream.map(|u| u.endpoint),
            reused: cx.upstream.map(|u| u.reused),
            error: cx.error.map(|k| k.reason()),
            error_detail: cx.error_detail.as_deref(),
            policy: Some(&cx.policy).filter(|p| !p.is_empty()),
            fault: cx.fault.as_ref().and_then(|v| v.to_str().ok()),
            request_id: cx.request_id.as_ref().and_then(|v| v.to_str().ok()),
            client: cx.client,
        };
        let shard = self.shard();
        let Ok(mut buf) = shard.buf.lock() else {
            return;
        };
        if buf.len() >= SHARD_CAP {
            self.inner.dropped.fetch_add(1, Ordering::Relaxed);
            return;
        }
        let before = buf.len();
        line.encode(&mut buf);
        buf.push(b'\n');
        let wake = before < FLUSH_SOON && buf.len() >= FLUSH_SOON;
        drop(buf);
        if wake {
            self.inner.wake();
        }
    }

    /// This thread's shard, created and registered on first use.
    fn shard(&self) -> Arc<Shard> {
        let id = self.inner.id;
        SHARDS.with(|shards| {
            let mut shards = shards.borrow_mut();
            if let Some(shard) = shards
                .iter()
                .find(|(i, _)| *i == id)
                .and_then(|(_, w)| w.upgrade())
            {
                return shard;
            }
            // Forget shards of sinks that are gone, then register a new one.
            shards.retain(|(_, w)| w.strong_count() > 0);
            let shard = Arc::new(Shard {
                buf: Mutex::new(Vec::with_capacity(FLUSH_SOON)),
            });
            if let Ok(mut all) = self.inner.shards.lock() {
                all.push(shard.clone());
            }
            shards.push((id, Arc::downgrade(&shard)));
            shard
        })
    }
}

impl SinkInner {
    fn wake(&self) {
        if let Ok(mut flag) = self.wake.0.lock() {
            *flag = true;
            self.wake.1.notify_one();
        }
    }
}

impl Drop for AccessLogSink {
    fn drop(&mut self) {
        // Let the flusher write what is buffered and stop.
        self.inner.wake();
    }
}

/// The flusher thread: swaps shard buffers out and writes them, until the sink is dropped
/// (then it writes what is left and stops).
fn flusher(sink: &Weak<SinkInner>, output: Output) {
    let mut spare = Vec::with_capacity(FLUSH_SOON);
    loop {
        let Some(inner) = sink.upgrade() else { return };
        {
            let (flag, cvar) = &inner.wake;
            let Ok(guard) = flag.lock() else { return };
            let Ok((mut guard, _)) =
                cvar.wait_timeout_while(guard, FLUSH_INTERVAL, |woken| !*woken)
            else {
                return;
            };
            *guard = false;
        }
        // Only this thread holds the sink now: it was dropped, so this is the last flush.
        let last = Arc::strong_count(&inner) == 1;
        let shards: Vec<Arc<Shard>> = inner.shards.lock().map(|s| s.clone()).unwrap_or_default();
        for shard in shards {
            if let Ok(mut buf) = shard.buf.lock() {
                std::mem::swap(&mut *buf, &mut spare);
            }
            if !spare.is_empty() {
                write_out(&output, &spare);
                spare.clear();
            }
        }
        if last {
            return;
        }
    }
}

fn write_out(output: &Output, block: &[u8]) {
    match output {
        Output::Stdout => {
            let mut stdout = std::io::stdout().lock();
            let _ = stdout.write_all(block).and_then(|()| stdout.flush());
        }
        Output::Channel(tx) => {
            for line in block.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
                let _ = tx.blocking_send(String::from_utf8_lossy(line).into_owned());
            }
        }
    }
}
