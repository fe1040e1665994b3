//! `access_log`: one structured JSON line per request, written when the response ends.
//!
//! The layer itself only marks the request; the line is written by `crate::outcome` once
//! the response body has finished, so it carries the true duration and the final outcome
//! (including a client that left mid-body). Lines go through a bounded channel to one writer
//! task: a slow stdout never blocks a request, and lines that do not fit are counted and
//! dropped rather than queued without bound.

use std::{
    net::SocketAddr,
    sync::atomic::{AtomicU64, Ordering},
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use http::Request;
use seawall_core::Body;
use serde::Serialize;
use tokio::{io::AsyncWriteExt, sync::mpsc};

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

    fn on_request<'a>(&'a self, req: Request<Body>, cx: &'a mut RequestContext) -> Step<'a> {
        cx.access_log = true;
        Step::Done(Flow::Forward(req))
    }
}

/// Where access log lines go.
pub struct AccessLogSink {
    tx: mpsc::Sender<String>,
    dropped: AtomicU64,
}

#[derive(Serialize)]
struct Line<'a> {
    ts: f64,
    listener: &'a str,
    route: &'a str,
    method: &'a str,
    path: &'a str,
    status: u16,
    duration_ms: f64,
    upstream: Option<&'a str>,
    endpoint: Option<SocketAddr>,
    reused: Option<bool>,
    error: Option<&'static str>,
    error_detail: Option<&'a str>,
    request_id: Option<&'a str>,
    client: SocketAddr,
}

impl AccessLogSink {
    /// A sink whose lines are written to stdout by a background task.
    pub fn stdout() -> Self {
        let (tx, mut rx) = mpsc::channel::<String>(8192);
        tokio::spawn(async move {
            let mut out = tokio::io::stdout();
            let mut batch = Vec::with_capacity(64);
            let mut buf = Vec::with_capacity(64 * 1024);
            while rx.recv_many(&mut batch, 64).await > 0 {
                buf.clear();
                for line in batch.drain(..) {
                    buf.extend_from_slice(line.as_bytes());
                    buf.push(b'\n');
                }
                if out.write_all(&buf).await.is_err() || out.flush().await.is_err() {
                    return;
                }
            }
        });
        Self {
            tx,
            dropped: AtomicU64::new(0),
        }
    }

    /// A sink that hands lines to `tx` (tests read them from the receiver).
    pub fn channel(tx: mpsc::Sender<String>) -> Self {
        Self {
            tx,
            dropped: AtomicU64::new(0),
        }
    }

    /// Lines dropped because the writer could not keep up.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
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
                .map_or(0.0, |d| d.as_secs_f64()),
            listener: &cx.listener,
            route: &cx.route.name,
            method: cx.method.as_str(),
            // The query string is left out on purpose: it often carries tokens.
            path: cx.uri.path(),
            status,
            duration_ms: elapsed.as_secs_f64() * 1e3,
            upstream: cx.route.upstream.as_ref().map(|u| u.name.as_str()),
            endpoint: cx.upstream.map(|u| u.endpoint),
            reused: cx.upstream.map(|u| u.reused),
            error: cx.error.map(|k| k.reason()),
            error_detail: cx.error_detail.as_deref(),
            request_id: cx.request_id.as_ref().and_then(|v| v.to_str().ok()),
            client: cx.client,
        };
        if let Ok(text) = serde_json::to_string(&line) {
            if self.tx.try_send(text).is_err() {
                self.dropped.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}
