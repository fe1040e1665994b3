//! Reload on config file change.
//!
//! The parent directory is watched, not the file: editors save by writing a temporary file
//! and renaming it over the original, and Kubernetes swaps ConfigMap symlinks, and both
//! replace the watched inode. Events are debounced (200 ms) so one save is one reload, and
//! read-only events are ignored (our own reload reads the file).

use std::{path::PathBuf, sync::Weak, time::Duration};

use notify::{EventKind, RecursiveMode, Watcher};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::gateway::Inner;

const DEBOUNCE: Duration = Duration::from_millis(200);

/// Starts watching `path`; reloads `gateway` on change until `stop` is cancelled.
pub fn spawn(path: PathBuf, gateway: Weak<Inner>, stop: CancellationToken) -> notify::Result<()> {
    let file_name = path.file_name().map(ToOwned::to_owned);
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .map_or_else(|| PathBuf::from("."), PathBuf::from);
    let (tx, mut rx) = mpsc::unbounded_channel::<()>();
    let mut watcher = notify::recommended_watcher(move |res: notify::Result<notify::Event>| {
        let Ok(event) = res else { return };
        if matches!(event.kind, EventKind::Access(_)) {
            return;
        }
        if event
            .paths
            .iter()
            .any(|p| p.file_name() == file_name.as_deref())
        {
            let _ = tx.send(());
        }
    })?;
    watcher.watch(&dir, RecursiveMode::NonRecursive)?;
    tokio::spawn(async move {
        // The watcher stops when dropped; keep it for the life of this task.
        let _watcher = watcher;
        loop {
            tokio::select! {
                () = stop.cancelled() => break,
                got = rx.recv() => if got.is_none() { break },
            }
            tokio::time::sleep(DEBOUNCE).await;
            while rx.try_recv().is_ok() {}
            let Some(inner) = gateway.upgrade() else {
                break;
            };
            if let Err(error) = inner.reload().await {
                tracing::warn!(%error, "Reload after file change failed.");
            }
        }
    });
    Ok(())
}
