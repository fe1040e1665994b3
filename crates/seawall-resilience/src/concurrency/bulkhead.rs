//! Static bulkhead accounting: `max_concurrent` running, `max_pending` waiting, the rest
//! rejected.
//!
//! Order is first come, first served: a new request runs at once only when nobody is
//! waiting, so it cannot overtake the queue. When a running request finishes the gateway
//! wakes the oldest waiter, which calls [`Bulkhead::promote`]. A waiter that gives up
//! (deadline, client gone) calls [`Bulkhead::abandon`].
//!
//! Defaults (Envoy cluster circuit breakers): 1024 running, 1024 pending.

/// The bulkhead's knobs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BulkheadSettings {
    /// Requests running at once; at least 1.
    pub max_concurrent: u32,
    /// Requests waiting for a slot; 0 rejects as soon as every slot is taken.
    pub max_pending: u32,
}

impl Default for BulkheadSettings {
    /// 1024 and 1024.
    fn default() -> Self {
        Self {
            max_concurrent: 1024,
            max_pending: 1024,
        }
    }
}

/// Why a [`BulkheadSettings`] was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum InvalidBulkhead {
    /// `max_concurrent` is 0 (nothing could ever run).
    #[error("max_concurrent must be at least 1")]
    ZeroMaxConcurrent,
}

/// The decision for an arriving request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admit {
    /// A slot was taken: run now, and call [`Bulkhead::finish`] at the end.
    Run,
    /// A queue place was taken: wait, then [`Bulkhead::promote`] or [`Bulkhead::abandon`].
    Queue,
    /// Full: reject (the gateway answers `overloaded`).
    Reject,
}

/// The bulkhead's figures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BulkheadSnapshot {
    /// Requests running.
    pub active: u32,
    /// Requests waiting.
    pub pending: u32,
    /// The current running limit.
    pub max_concurrent: u32,
    /// The queue limit.
    pub max_pending: u32,
    /// Requests that ran (at once or after waiting), since creation.
    pub admitted_total: u64,
    /// Requests that had to wait, since creation.
    pub queued_total: u64,
    /// Requests rejected, since creation.
    pub rejected_total: u64,
    /// Waiters that gave up, since creation.
    pub abandoned_total: u64,
}

/// Running and waiting counts of one bulkhead.
#[derive(Debug, Clone)]
pub struct Bulkhead {
    settings: BulkheadSettings,
    active: u32,
    pending: u32,
    admitted_total: u64,
    queued_total: u64,
    rejected_total: u64,
    abandoned_total: u64,
}

impl Bulkhead {
    /// An empty bulkhead.
    pub fn try_new(settings: BulkheadSettings) -> Result<Self, InvalidBulkhead> {
        if settings.max_concurrent == 0 {
            return Err(InvalidBulkhead::ZeroMaxConcurrent);
        }
        Ok(Self {
            settings,
            active: 0,
            pending: 0,
            admitted_total: 0,
            queued_total: 0,
            rejected_total: 0,
            abandoned_total: 0,
        })
    }

    /// Decides for an arriving request.
    pub fn admit(&mut self) -> Admit {
        if self.pending == 0 && self.has_free_slot() {
            self.active += 1;
            self.admitted_total += 1;
            Admit::Run
        } else if self.pending < self.settings.max_pending {
            self.pending += 1;
            self.queued_total += 1;
            Admit::Queue
        } else {
            self.rejected_total += 1;
            Admit::Reject
        }
    }

    /// A waiter takes a free slot; false (and nothing changes) if there is no waiter or no
    /// free slot.
    pub fn promote(&mut self) -> bool {
        if self.pending == 0 || !self.has_free_slot() {
            return false;
        }
        self.pending -= 1;
        self.active += 1;
        self.admitted_total += 1;
        true
    }

    /// A waiter gave up.
    pub fn abandon(&mut self) {
        if self.pending > 0 {
            self.pending -= 1;
            self.abandoned_total += 1;
        }
    }

    /// A running request ended.
    pub fn finish(&mut self) {
        self.active = self.active.saturating_sub(1);
    }

    /// Changes the running limit (e.g. to an adaptive limiter's). Requests already running
    /// above a lowered limit finish normally; no new one starts until below it. Clamped to
    /// at least 1.
    pub fn set_max_concurrent(&mut self, max_concurrent: u32) {
        self.settings.max_concurrent = max_concurrent.max(1);
    }

    /// The figures now.
    pub fn snapshot(&self) -> BulkheadSnapshot {
        BulkheadSnapshot {
            active: self.active,
            pending: self.pending,
            max_concurrent: self.settings.max_concurrent,
            max_pending: self.settings.max_pending,
            admitted_total: self.admitted_total,
            queued_total: self.queued_total,
            rejected_total: self.rejected_total,
            abandoned_total: self.abandoned_total,
        }
    }

    fn has_free_slot(&self) -> bool {
        self.active < self.settings.max_concurrent
    }
}
