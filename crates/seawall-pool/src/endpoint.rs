//! The sub-pool of one endpoint (`SocketAddr`): its idle stack, its connection slots and
//! the waiters for either.
//!
//! Locking. The only lock is the idle stack's `std::sync::Mutex`, one per endpoint, held
//! just to push, pop or drain; no I/O, no await and no connection drop happens under it
//! (dropping a `SendRequest` wakes the driver task, which then takes this same lock).
//! Slots are a `tokio::sync::Semaphore` used only through `try_acquire`, and waiting is a
//! `Notify`: both are per endpoint, so endpoints never contend with each other.
//!
//! Wake-ups. Two events can satisfy a waiting checkout: a connection pushed onto the idle
//! stack, and a slot freed. Each calls `notify_one` once, waking at most one waiter per
//! event. A stale wake-up (another checkout took the connection first) just makes the
//! waiter look again and wait for the rest of its time; a wake-up given to a waiter that
//! then times out is forwarded by tokio to the next waiter, so none is lost.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use tokio::sync::{Notify, Semaphore};
use tokio::time::Instant;

use crate::connection::{Conn, Slot};
use crate::metrics::CloseReason;
use crate::multiplex::Multiplex;
use crate::pool::Common;

/// An idle connection and when it became idle.
struct Idle {
    conn: Conn,
    since: Instant,
}

/// Per-endpoint numbers for the admin API.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EndpointSnapshot {
    /// The endpoint.
    pub addr: SocketAddr,
    /// Connections in the idle stack (HTTP/2: connections without a stream in flight).
    pub idle: usize,
    /// Connections checked out (HTTP/2: connections with at least one stream in flight).
    pub in_use: usize,
    /// TCP connects in progress.
    pub connecting: usize,
    /// Slots taken: connecting plus every live connection (idle, in use, or finishing).
    pub open: usize,
    /// HTTP/2 streams in flight (zero for HTTP/1.1 connections).
    pub streams: usize,
}

pub(crate) struct Endpoint {
    pub(crate) addr: SocketAddr,
    pub(crate) common: Arc<Common>,
    /// LIFO: the warmest connection is on top, so the coldest ones age out at the bottom.
    /// Pushes happen in time order, so `since` ascends from bottom to top.
    idle: Mutex<Vec<Idle>>,
    pub(crate) slots: Arc<Semaphore>,
    /// Dedicated (upgraded) connections' share of the slots: one permit per open one.
    pub(crate) upgrades: Arc<Semaphore>,
    pub(crate) notify: Notify,
    pub(crate) in_use: AtomicUsize,
    pub(crate) connecting: AtomicUsize,
    /// The HTTP/2 connections (empty for an HTTP/1.1 upstream).
    pub(crate) h2: Multiplex,
}

/// What `push_idle` decided, acted on after the lock is released.
enum Release {
    Kept,
    Close(Conn, CloseReason),
    /// The driver already ended (and counted the close); just drop the handle.
    Gone(Conn),
}

impl Endpoint {
    pub(crate) fn new(addr: SocketAddr, common: Arc<Common>) -> Self {
        let slots = Arc::new(Semaphore::new(common.settings.slots()));
        let upgrades = common.options.upgrade_slots(common.settings.slots());
        Self {
            addr,
            upgrades: Arc::new(Semaphore::new(upgrades)),
            common,
            idle: Mutex::new(Vec::new()),
            slots,
            notify: Notify::new(),
            in_use: AtomicUsize::new(0),
            connecting: AtomicUsize::new(0),
            h2: Multiplex::default(),
        }
    }

    /// A poisoned lock only means a panic elsewhere while holding it; the stack itself is
    /// always consistent (push/pop), so keep going rather than spread the panic.
    fn idle(&self) -> MutexGuard<'_, Vec<Idle>> {
        self.idle.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Takes a free slot, if any.
    pub(crate) fn try_slot(self: &Arc<Self>) -> Option<Slot> {
        let permit = Arc::clone(&self.slots).try_acquire_owned().ok()?;
        Some(Slot::new(permit, Arc::clone(self)))
    }

    /// Pops the warmest usable idle connection. Connections found expired or not ready
    /// (the peer closed them) are closed and skipped, so a stale or dead connection is
    /// never handed out even if the sweeper has not run yet.
    pub(crate) fn pop_idle(&self, now: Instant) -> Option<Conn> {
        let timeout = self.common.settings.idle_timeout;
        loop {
            let Idle { conn, since } = {
                let mut idle = self.idle();
                let top = idle.pop()?;
                self.common.metrics.idle.dec();
                top
            };
            if since + timeout <= now {
                conn.close(CloseReason::IdleTimeout);
            } else if self.common.options.is_past_lifetime(conn.opened, now) {
                conn.close(CloseReason::Lifetime);
            } else if conn.sender.is_closed() {
                // The driver is ending or ended; it attributes the close (peer_closed).
                drop(conn);
            } else if !conn.sender.is_ready() {
                // A released connection is only pushed once ready, and stays ready until a
                // request is sent; anything else is a connection we cannot trust.
                conn.close(CloseReason::Error);
            } else {
                return Some(conn);
            }
        }
    }

    /// Why a released connection must be closed rather than kept, if it must: it reached
    /// `max_requests_per_connection` or `max_lifetime`.
    pub(crate) fn retire_reason(&self, conn: &Conn, now: Instant) -> Option<CloseReason> {
        self.common
            .options
            .retire_reason(conn.opened, conn.requests, now)
    }

    /// Returns a connection that finished its exchange and is ready for the next request.
    pub(crate) fn push_idle(&self, mut conn: Conn) {
        let now = Instant::now();
        // Checked again here because the ready-wait task may have taken time since
        // `Lease::release` looked.
        if let Some(reason) = self.retire_reason(&conn, now) {
            conn.close(reason);
            return;
        }
        // Whoever removes it from the stack decides its fate; if the peer closes it first,
        // the driver reports that.
        conn.on_drop = None;
        let outcome = {
            let mut idle = self.idle();
            // Both flags are read under the lock that `shutdown`/the driver take after
            // setting them, so a connection cannot slip in after the stack was drained.
            if self.common.is_closed() {
                Release::Close(conn, CloseReason::Shutdown)
            } else if conn.state.is_finished() {
                Release::Gone(conn)
            } else if idle.len() >= self.common.settings.max_idle_per_endpoint {
                Release::Close(conn, CloseReason::IdleCap)
            } else {
                idle.push(Idle { conn, since: now });
                self.common.metrics.idle.inc();
                Release::Kept
            }
        };
        match outcome {
            Release::Kept => self.notify.notify_one(),
            Release::Close(conn, reason) => conn.close(reason),
            Release::Gone(conn) => drop(conn),
        }
    }

    /// Removes a connection whose driver ended from the idle stack, if it is there.
    pub(crate) fn forget_idle(&self, id: u64) {
        let removed = {
            let mut idle = self.idle();
            let position = idle.iter().position(|entry| entry.conn.id() == id);
            position.map(|index| idle.remove(index))
        };
        if removed.is_some() {
            self.common.metrics.idle.dec();
        }
    }

    /// Closes idle connections that became idle at or before `cutoff`. The oldest are at
    /// the bottom, so they are a prefix of the stack.
    pub(crate) fn evict_idle_since(&self, cutoff: Instant) {
        let expired: Vec<Idle> = {
            let mut idle = self.idle();
            let count = idle.partition_point(|entry| entry.since <= cutoff);
            idle.drain(..count).collect()
        };
        self.common.metrics.idle.dec_by(expired.len() as i64);
        for entry in expired {
            entry.conn.close(CloseReason::IdleTimeout);
        }
    }

    /// Closes idle connections that reached `max_lifetime`. Lifetimes are not ordered in
    /// the stack (a connection's age is not its idle time), so this scans it; only the
    /// sweeper calls it, and only when a lifetime is set.
    pub(crate) fn evict_past_lifetime(&self, now: Instant) {
        let options = &self.common.options;
        if options.max_lifetime.is_none() {
            return;
        }
        let expired: Vec<Idle> = {
            let mut idle = self.idle();
            let (expired, kept) = std::mem::take(&mut *idle)
                .into_iter()
                .partition(|entry| options.is_past_lifetime(entry.conn.opened, now));
            // `partition` keeps the order, so the stack stays sorted by `since`.
            *idle = kept;
            expired
        };
        self.common.metrics.idle.dec_by(expired.len() as i64);
        // Closed outside the lock: dropping a handle wakes its driver, which takes it.
        for entry in expired {
            entry.conn.close(CloseReason::Lifetime);
        }
    }

    /// Closes every idle connection (HTTP/2: every one without a stream in flight); in-use
    /// ones are untouched.
    pub(crate) fn close_idle(&self, reason: CloseReason) {
        self.h2.close(self, reason, false);
        let drained = std::mem::take(&mut *self.idle());
        self.common.metrics.idle.dec_by(drained.len() as i64);
        for entry in drained {
            entry.conn.close(reason);
        }
    }

    pub(crate) fn snapshot(&self) -> EndpointSnapshot {
        let max = self.common.settings.slots();
        let (h2_idle, h2_busy, streams) = self.h2.counts();
        EndpointSnapshot {
            addr: self.addr,
            idle: self.idle().len() + h2_idle,
            in_use: self.in_use.load(Ordering::Relaxed) + h2_busy,
            connecting: self.connecting.load(Ordering::Relaxed),
            open: max.saturating_sub(self.slots.available_permits()),
            streams,
        }
    }
}
