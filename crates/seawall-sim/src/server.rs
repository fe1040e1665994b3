//! The accept loop, and [`Sim`], the handle that runs it in the background.
//!
//! Connections are tasks in a `JoinSet` owned by the loop, so that shutting down (or
//! dropping the [`Sim`]) closes every connection, including ones stuck in `/hang`, instead
//! of waiting for them: a sim has no in-flight work worth draining.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use hyper_util::rt::TokioExecutor;
use hyper_util::server::conn::auto::Builder;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::{JoinHandle, JoinSet};

use crate::conn;
use crate::stats::{Stats, StatsSnapshot};

/// Pause after an accept error caused by resource exhaustion, so a full descriptor table
/// does not turn the loop into a busy spin.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(10);

/// A sim running in the background of the current tokio runtime.
///
/// Dropping it stops the server like [`Sim::shutdown`], without waiting.
#[derive(Debug)]
pub struct Sim {
    addr: SocketAddr,
    stats: Arc<Stats>,
    /// Dropping or sending on this stops the accept loop.
    stop: oneshot::Sender<()>,
    task: JoinHandle<()>,
}

impl Sim {
    /// Binds `addr` (port 0 picks a free port) and starts serving.
    pub async fn bind(addr: SocketAddr) -> io::Result<Sim> {
        Sim::from_listener(TcpListener::bind(addr).await?)
    }

    /// Starts serving on an already bound listener.
    ///
    /// Fails only if the listener's address cannot be read. Must be called inside a tokio
    /// runtime.
    pub fn from_listener(listener: TcpListener) -> io::Result<Sim> {
        let addr = listener.local_addr()?;
        let stats = Arc::new(Stats::default());
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(run(listener, Arc::clone(&stats), async move {
            // Resolves on a send and on the sender being dropped alike.
            let _ = stopped.await;
        }));
        Ok(Sim {
            addr,
            stats,
            stop,
            task,
        })
    }

    /// The address the sim listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// The same counters `/__sim/stats` serves.
    pub fn stats(&self) -> StatsSnapshot {
        self.stats.snapshot()
    }

    /// Stops accepting, closes every connection and waits until that is done.
    pub async fn shutdown(self) {
        let Sim { stop, task, .. } = self;
        let _ = stop.send(());
        // The task only ends by finishing `run`; a join error would mean it was aborted
        // or panicked, and either way it has stopped.
        let _ = task.await;
    }
}

/// Serves the sim on `listener` until `shutdown` resolves, then closes every connection.
///
/// This is the foreground form for `seawall sim --listen ADDR`. Returns an error only if
/// accepting fails for a reason other than running short of resources (those are retried).
pub async fn serve(listener: TcpListener, shutdown: impl Future<Output = ()>) -> io::Result<()> {
    serve_with_stats(listener, Arc::new(Stats::default()), shutdown).await
}

/// The background form: a fatal accept error has nobody to return to, so it is logged.
async fn run(listener: TcpListener, stats: Arc<Stats>, shutdown: impl Future<Output = ()>) {
    if let Err(error) = serve_with_stats(listener, stats, shutdown).await {
        tracing::error!(%error, "Sim stopped accepting connections.");
    }
}

async fn serve_with_stats(
    listener: TcpListener,
    stats: Arc<Stats>,
    shutdown: impl Future<Output = ()>,
) -> io::Result<()> {
    // `auto` reads the first bytes of each connection to choose HTTP/1.1 or h2c prior
    // knowledge, so one port serves both.
    let builder = Arc::new(Builder::new(TokioExecutor::new()));
    let mut connections = JoinSet::new();
    let mut shutdown = std::pin::pin!(shutdown);
    let result = loop {
        tokio::select! {
            biased;
            () = &mut shutdown => break Ok(()),
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    connections.spawn(conn::serve(stream, Arc::clone(&stats), Arc::clone(&builder)));
                }
                Err(error) if is_transient(&error) => {
                    tracing::warn!(%error, "Sim accept failed; retrying.");
                    tokio::time::sleep(ACCEPT_BACKOFF).await;
                }
                Err(error) => break Err(error),
            },
            // Reap finished connections so the set does not grow with every one served.
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    };
    drop(listener);
    connections.shutdown().await;
    result
}

/// Errors about one connection or a passing shortage, after which accepting can go on.
fn is_transient(error: &io::Error) -> bool {
    matches!(
        error.kind(),
        io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::Interrupted
            | io::ErrorKind::OutOfMemory
    ) || error
        .raw_os_error()
        .is_some_and(|code| RESOURCE_ERRNOS.contains(&code))
}

/// EMFILE, ENFILE, ENOBUFS and ENOMEM, which std has no stable `ErrorKind` for. Spelled as
/// numbers to avoid a libc dependency for four constants; other targets rely on the kinds.
#[cfg(target_os = "linux")]
const RESOURCE_ERRNOS: [i32; 4] = [24, 23, 105, 12];
#[cfg(not(target_os = "linux"))]
const RESOURCE_ERRNOS: [i32; 0] = [];
