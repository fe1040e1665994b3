//! Reload on config file change.
//!
//! The parent directory is watched, not the file: editors save by writing a temporary file
//! and renaming it over the original, which replaces the watched inode. When the config path
//! is a symlink (a Kubernetes ConfigMap: `seawall.yaml -> ..data/seawall.yaml`, where the
//! kubelet swaps `..data`), no event names the file itself, so every change in the watched
//! directories triggers a reload (one of an unchanged config is a cheap no-op), and the
//! directory the link points into is watched too. Events are debounced (200 ms) so one save
//! is one reload, and read-only events are ignored (our own reload reads the file).
//!
//! The directories of TLS listeners' certificate and key files (and of upstreams' CA and
//! client certificate files) are watched as well, and an event naming one of those files
//! reloads: that is what makes a renewed certificate (say,
//! certbot replacing the `live/` symlinks) take effect without anyone calling reload. The
//! set follows the config: it is recomputed after every reload.

use std::{
    collections::HashSet,
    ffi::OsString,
    path::{Path, PathBuf},
    sync::{Arc, Mutex, Weak},
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
    // File names of the TLS files, shared with the watcher's callback thread.
    let tls_names: Arc<Mutex<HashSet<OsString>>> = Arc::default();
    let names = Arc::clone(&tls_names);
    let mut watcher = notify::recommended_watcher(move |res: notify::Result<notify::Event>| {
        let Ok(event) = res else { return };
        if matches!(event.kind, EventKind::Access(_)) {
            return;
        }
        let is_tls_file = |p: &Path| {
            p.file_name()
                .is_some_and(|n| names.lock().is_ok_and(|names| names.contains(n)))
        };
        if symlinked
            || event
                .paths
                .iter()
                .any(|p| p.file_name() == file_name.as_deref() || is_tls_file(p))
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
    let mut tls = TlsWatch {
        names: tls_names,
        dirs: HashSet::new(),
        config_dirs: [Some(dir), target_dir].into_iter().flatten().collect(),
    };
    if let Some(inner) = gateway.upgrade() {
        tls.sync(&mut watcher, &inner);
    }
    tokio::spawn(async move {
        // The watcher stops when dropped; it lives as long as this task.
        let mut watcher = watcher;
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
            tls.sync(&mut watcher, &inner);
        }
    });
    Ok(())
}

/// The TLS files being watched, by file name, and the directories watched for them.
struct TlsWatch {
    names: Arc<Mutex<HashSet<OsString>>>,
    dirs: HashSet<PathBuf>,
    /// Watched for the config file already; never unwatched here.
    config_dirs: HashSet<PathBuf>,
}

impl TlsWatch {
    /// Watches the directories of the running config's certificate and key files, and
    /// stops watching those no longer named.
    fn sync(&mut self, watcher: &mut notify::RecommendedWatcher, inner: &Inner) {
        let runtime = inner.runtime.load();
        let config = &runtime.config;
        let listener_files = config
            .listeners
            .iter()
            .filter_map(|l| l.tls.as_ref())
            .flat_map(|t| [t.cert_file.as_path(), t.key_file.as_path()]);
        // Upstream TLS files too: a rotated CA bundle or client certificate.
        let upstream_files = config
            .upstreams
            .iter()
            .filter_map(|u| u.tls.as_ref())
            .flat_map(|t| [&t.ca_file, &t.client_cert_file, &t.client_key_file])
            .filter_map(|f| f.as_deref());
        let files: Vec<&Path> = listener_files.chain(upstream_files).collect();
        if let Ok(mut names) = self.names.lock() {
            *names = files
                .iter()
                .filter_map(|f| f.file_name().map(ToOwned::to_owned))
                .collect();
        }
        let wanted: HashSet<PathBuf> = files
            .iter()
            .map(|f| parent_dir(f))
            .filter(|d| !self.config_dirs.contains(d))
            .collect();
        for gone in self.dirs.difference(&wanted) {
            let _ = watcher.unwatch(gone);
        }
        self.dirs.retain(|d| wanted.contains(d));
        for dir in wanted {
            if self.dirs.contains(&dir) {
                continue;
            }
            match watcher.watch(&dir, RecursiveMode::NonRecursive) {
                Ok(()) => {
                    self.dirs.insert(dir);
                }
                Err(error) => {
                    // Reloads by `POST /reload` and SIGHUP still pick renewals up.
                    tracing::warn!(%error, dir = %dir.display(), "Cannot watch a TLS certificate directory.");
                }
            }
        }
    }
}

fn parent_dir(path: &Path) -> PathBuf {
    path.parent()
        .filter(|p| !p.as_os_str().is_empty())
        .map_or_else(|| PathBuf::from("."), PathBuf::from)
}
