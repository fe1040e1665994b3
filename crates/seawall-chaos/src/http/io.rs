//! A proxied socket that counts its bytes for `/metrics` and can end in a reset.
//!
//! hyper owns the sockets of an HTTP proxy, so the byte counters the TCP pumps keep are
//! kept here instead; and `http_reset` needs the client's socket closed with RST
//! (`SO_LINGER` 0) when hyper drops it, which only the socket's owner can do.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

use crate::metrics::Counter;

/// A socket with its counters, and a flag that turns its close into a reset.
#[derive(Debug)]
pub(crate) struct Counted {
    inner: TcpStream,
    read: Counter,
    written: Counter,
    reset: Arc<AtomicBool>,
}

impl Counted {
    pub(crate) fn new(inner: TcpStream, read: Counter, written: Counter) -> Self {
        Self {
            inner,
            read,
            written,
            reset: Arc::new(AtomicBool::new(false)),
        }
    }

    /// Set it, and the socket is reset instead of closed when it is dropped.
    pub(crate) fn reset_flag(&self) -> Arc<AtomicBool> {
        self.reset.clone()
    }
}

impl Drop for Counted {
    fn drop(&mut self) {
        if self.reset.load(Ordering::Relaxed) {
            let _ = self.inner.set_zero_linger();
        }
    }
}

impl AsyncRead for Counted {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        let n = buf.filled().len().saturating_sub(before);
        self.read.add(n as u64);
        polled
    }
}

impl AsyncWrite for Counted {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write(cx, buf);
        if let Poll::Ready(Ok(n)) = &polled {
            self.written.add(*n as u64);
        }
        polled
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}
