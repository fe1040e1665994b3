//! One accepted TCP connection: serves HTTP/1.1 or h2c on it, and ends it on request by
//! closing (FIN) or resetting (RST) it without a response.
//!
//! To reset a connection we need the socket after hyper owns it. Before handing the stream
//! to hyper we keep a duplicate descriptor; `/close` and `/reset` signal the connection
//! task, which drops hyper's side and then closes the duplicate, after setting
//! `SO_LINGER 0` on it for a reset (a close with zero linger sends RST). The duplicate
//! costs one `dup` per connection, which is cheap next to the accept itself.

use std::net::Shutdown;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use http::HeaderValue;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto::Builder;
use socket2::SockRef;
use tokio::net::TcpStream;
use tokio::sync::Notify;

use crate::routes;
use crate::stats::{ConnectionGuard, Stats};

/// How a handler asked for its connection to end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Ending {
    /// Close without a response: the client sees EOF.
    Close,
    /// Reset without a response: the client sees ECONNRESET.
    Reset,
}

/// What every request handler on one connection shares.
#[derive(Debug)]
pub(crate) struct ConnCtx {
    /// Also keeps the connection counted open for as long as any handler holds this.
    guard: ConnectionGuard,
    /// Precomputed once so that each response only clones it.
    id_header: HeaderValue,
    ending: OnceLock<Ending>,
    end_requested: Notify,
}

impl ConnCtx {
    fn new(guard: ConnectionGuard) -> Self {
        Self {
            id_header: HeaderValue::from(guard.id()),
            guard,
            ending: OnceLock::new(),
            end_requested: Notify::new(),
        }
    }

    pub(crate) fn stats(&self) -> &Arc<Stats> {
        self.guard.stats()
    }

    pub(crate) fn id_header(&self) -> &HeaderValue {
        &self.id_header
    }

    /// Asks the connection task to end the connection; the first request wins.
    pub(crate) fn end(&self, ending: Ending) {
        let _ = self.ending.set(ending);
        // `notify_one` keeps a permit if the task is not waiting yet, so this is never lost.
        self.end_requested.notify_one();
    }
}

/// Serves one connection until the client leaves, the server shuts down (the task is
/// aborted) or a handler ends it.
pub(crate) async fn serve(
    stream: TcpStream,
    stats: Arc<Stats>,
    builder: Arc<Builder<TokioExecutor>>,
) {
    let guard = stats.connection_opened();
    if let Err(error) = run(stream, guard, &builder).await {
        // Setup failures (a dup refused for lack of descriptors) are rare and per
        // connection; they do not stop the server.
        tracing::debug!(%error, "Sim connection setup failed.");
    }
}

async fn run(
    stream: TcpStream,
    guard: ConnectionGuard,
    builder: &Builder<TokioExecutor>,
) -> std::io::Result<()> {
    // Nagle would hold small responses back waiting for ACKs; benchmark latencies must be
    // the gateway's, not Nagle's.
    stream.set_nodelay(true)?;
    let std_stream = stream.into_std()?;
    let dup = std_stream.try_clone()?;
    let stream = TcpStream::from_std(std_stream)?;

    let ctx = Arc::new(ConnCtx::new(guard));
    let service = {
        let ctx = Arc::clone(&ctx);
        service_fn(move |request| routes::handle(request, Arc::clone(&ctx)))
    };
    let connection = builder.serve_connection(TokioIo::new(stream), service);
    tokio::select! {
        // Errors here are clients going away or sending garbage; there is nobody to tell.
        _ = connection => return Ok(()),
        () = ctx.end_requested.notified() => {}
    }
    // hyper's side is dropped by now; the duplicate is the last descriptor of the socket,
    // so how it is closed decides what the client sees.
    match ctx.ending.get() {
        Some(Ending::Reset) => SockRef::from(&dup).set_linger(Some(Duration::ZERO))?,
        Some(Ending::Close) | None => dup.shutdown(Shutdown::Write)?,
    }
    drop(dup);
    Ok(())
}
