//! Reload on config file change.
//!
//! The parent directory is watched, not the file: editors save by writing a temporary file
//! and renaming it over the original, which replaces the watched inode. When the config path
//! is a symlink (a Kubernetes ConfigMap: `seawall.yaml -> ..data/seawall.yaml`, where the
//! kubelet swaps `..data`), no event names the file itself, so every change in the watched
//! directories triggers a reload (one of an unchanged config is a cheap no-op), and the
//! directory the link points into is watched too. Events are debounced (200 ms) so one save
//! is one reload, and read-only events are ignored (our own reload reads the file).

use std::{
    path::{Path, PathBuf},
    sync::Weak,
    time::Duration,
};

use notify::{EventKind, RecursiveMode, Watcher};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::gateway::Inner;

const DEBOUNCE: Duration = Duration::from_millis(200);

/// Starts watching `path`; reloads `gateway` on change until `stop` is cancelled.
pub fn spawn(path: PathBuf, gateway: Weak<Inner>, stop: CancellationToken) -> notify::Result<()> {
    let file_name = path.file_name().map(ToOwned::to_owned);
    let dir = parent_dir(&path);
    let symlinked = std::fs::symlink_metadata(&path).is_ok_and(|m| m.file_type().is_symlink());
    let target_dir = symlinked
        .then(|| std::fs::canonicalize(&path).ok())
        .flatten()
        .map(|target| parent_dir(&target))
        .filter(|d| *d != dir);
    let (tx, mut rx) = mpsc::unbounded_channel::<()>();
    let mut watcher = notify::recommended_watcher(move |res: notify::Result<notify::Event>| {
        let Ok(event) = res else { return };
        if matches!(event.kind, EventKind::Access(_)) {
            return;
        }
        if symlinked
            || event
                .paths
                .iter()
                .any(|p| p.file_name() == file_name.as_deref())
        {
            let _ = tx.send(());
        }
    })?;
    watcher.watch(&dir, RecursiveMode::NonRecursive)?;
    if let Some(target_dir) = &target_dir {
        // Best effort: the parent directory alone already sees symlink swaps.
        if let Err(error) = watcher.watch(target_dir, RecursiveMode::NonRecursive) {
            tracing::warn!(%error, dir = %target_dir.display(), "Cannot watch the config's link target directory.");
        }
    }
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

fn parent_dir(path: &Path) -> PathBuf {
    path.parent()
        .filter(|p| !p.as_os_str().is_empty())
        .map_or_else(|| PathBuf::from("."), PathBuf::from)
}
