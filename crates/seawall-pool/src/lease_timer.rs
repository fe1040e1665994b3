//! The deadline a checked-out HTTP/1.1 connection's driver enforces by itself.
//!
//! Why the driver: a request's deadline is enforced by whoever polls the request — the
//! gateway's handler until the response head, then the response body, each time the client
//! side pulls it. When nobody polls, those timers never run: a client that stops reading
//! makes hyper stop pulling the response body, and an upstream that stops reading blocks
//! the request-body write inside the driver. The connection, with its endpoint slot, then
//! stayed checked out for good, and a handful of slow readers could take every slot of an
//! endpoint. The driver task owns the socket and is woken by every request sent on it, so
//! it can arm one timer per lease at no extra task or lock: a connection still checked out
//! [`LEASE_GRACE`] after its request's deadline is closed (`lease_expired`), which frees
//! the slot. The grace lets the caller's own deadline, whenever it does run, fire first and
//! report `deadline_exceeded` rather than an upstream reset.

use std::{
    future::Future,
    pin::Pin,
    sync::atomic::{AtomicU64, Ordering},
    task::{Context, Poll, ready},
    time::Duration,
};

use pin_project_lite::pin_project;
use tokio::time::{Instant, Sleep, sleep_until};

/// How long after its request's deadline a connection that is still checked out is closed.
/// Longer than the gateway's client-side stall grace (1 s) plus its watchdog tick (at most
/// 1 s), so that the client side of a stalled exchange is closed, and classified, first.
pub const LEASE_GRACE: Duration = Duration::from_secs(3);

/// When the current lease of a connection ends, as nanoseconds since the pool's epoch;
/// `0` while the connection is idle. Written by the checkout and the release, read by
/// the driver.
#[derive(Debug, Default)]
pub(crate) struct LeaseClock {
    until: AtomicU64,
}

impl LeaseClock {
    /// A checkout for a request due by `deadline`.
    pub(crate) fn arm(&self, epoch: Instant, deadline: Instant) {
        let nanos = u64::try_from(deadline.saturating_duration_since(epoch).as_nanos())
            .unwrap_or(u64::MAX)
            .max(1);
        self.until.store(nanos, Ordering::Release);
    }

    /// The connection went back to the idle stack.
    pub(crate) fn disarm(&self) {
        self.until.store(0, Ordering::Release);
    }

    fn get(&self) -> u64 {
        self.until.load(Ordering::Acquire)
    }
}

/// The lease outlived its deadline by [`LEASE_GRACE`].
#[derive(Debug)]
pub(crate) struct Expired;

pin_project! {
    /// A connection driver that also ends when its lease expires.
    pub(crate) struct Bounded<'a, F> {
        #[pin]
        driver: F,
        #[pin]
        timer: Sleep,
        // The lease the timer is armed for (`0`: none).
        armed: u64,
        clock: &'a LeaseClock,
        epoch: Instant,
    }
}

impl<'a, F: Future> Bounded<'a, F> {
    pub(crate) fn new(driver: F, clock: &'a LeaseClock, epoch: Instant) -> Self {
        Self {
            driver,
            // Never polled before it is reset to a lease's end.
            timer: sleep_until(epoch),
            armed: 0,
            clock,
            epoch,
        }
    }
}

impl<F: Future> Future for Bounded<'_, F> {
    type Output = Result<F::Output, Expired>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        if let Poll::Ready(out) = this.driver.poll(cx) {
            return Poll::Ready(Ok(out));
        }
        loop {
            let until = this.clock.get();
            if until == 0 {
                // Idle: whatever the timer was armed for is over.
                *this.armed = 0;
                return Poll::Pending;
            }
            if until != *this.armed {
                *this.armed = until;
                let due = *this.epoch + Duration::from_nanos(until) + LEASE_GRACE;
                this.timer.as_mut().reset(due);
            }
            ready!(this.timer.as_mut().poll(cx));
            // Still the same lease (not released and checked out again meanwhile)?
            if this.clock.get() == until {
                return Poll::Ready(Err(Expired));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn an_armed_lease_expires_after_the_grace_and_a_released_one_never() {
        let epoch = Instant::now();
        let clock = LeaseClock::default();
        clock.arm(epoch, epoch + Duration::from_secs(2));
        let started = Instant::now();
        let out = Bounded::new(std::future::pending::<()>(), &clock, epoch).await;
        assert!(out.is_err());
        assert_eq!(started.elapsed(), Duration::from_secs(2) + LEASE_GRACE);

        // Released before the end: the driver runs on (here until its own end).
        let clock = LeaseClock::default();
        clock.arm(epoch, Instant::now() + Duration::from_secs(1));
        let driver = async {
            tokio::time::sleep(Duration::from_millis(500)).await;
            clock.disarm();
            tokio::time::sleep(Duration::from_secs(60)).await;
        };
        let out = Bounded::new(driver, &clock, epoch).await;
        assert!(out.is_ok());
    }

    #[tokio::test(start_paused = true)]
    async fn a_new_lease_moves_the_timer() {
        let epoch = Instant::now();
        let clock = LeaseClock::default();
        clock.arm(epoch, epoch + Duration::from_secs(1));
        let driver = async {
            // Released and checked out again, due later, before the first lease's end.
            tokio::time::sleep(Duration::from_millis(900)).await;
            clock.disarm();
            clock.arm(epoch, Instant::now() + Duration::from_secs(10));
            std::future::pending::<()>().await;
        };
        let started = Instant::now();
        assert!(Bounded::new(driver, &clock, epoch).await.is_err());
        assert_eq!(
            started.elapsed(),
            Duration::from_millis(900) + Duration::from_secs(10) + LEASE_GRACE
        );
    }
}
