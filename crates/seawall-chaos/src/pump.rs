//! One direction of one proxied connection: read from the source, run the chain, write
//! to the destination.
//!
//! One task drives both directions of a connection (see [`crate::connection`]); each
//! direction is a [`Pump`]. A pump reads while its chain is busy, into a bounded inbox,
//! so a toxic that holds a chunk (latency) does not stall the reads behind it; the
//! chunks carry their read time, so their delays overlap as in Toxiproxy's chain of
//! goroutines. Items move through the chain one at a time, depth first: what a stage
//! lets out enters the next stage, at the time the stage asked for.
//!
//! Memory per direction is bounded: at most [`INBOX_MAX`] bytes waiting plus one read
//! buffer of [`READ_SIZE`] and the chunk in the chain.
//!
//! Nothing here takes a lock: toxic changes arrive through a `watch`, and a disabled or
//! deleted proxy cancels the connection's token.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::sync::watch;
use tokio::time::{Instant, sleep_until};
use tokio_util::sync::CancellationToken;

use crate::chain::{Chain, Chunk, Ctx, Emit, Fired, Item};
use crate::metrics::Counter;
use crate::proxy::ToxicList;
use crate::stream::Stream;

/// Bytes asked for per read.
pub const READ_SIZE: usize = 32 * 1024;
/// Bytes read ahead of the chain at most, per direction.
pub const INBOX_MAX: usize = 128 * 1024;
/// Reads up to this size are copied into a chunk of their own size.
const SMALL_READ: usize = 4 * 1024;

/// What the two directions of a connection share.
#[derive(Debug)]
pub(crate) struct Shared {
    /// Ends the connection: a toxic closed or reset it, or the proxy was disabled.
    pub(crate) kill: CancellationToken,
    /// Set before `kill` when the connection is reset: no FIN may go out then.
    pub(crate) reset: AtomicBool,
}

/// Byte counters of one direction.
#[derive(Debug)]
pub(crate) struct Counters {
    pub(crate) received: Counter,
    pub(crate) sent: Counter,
}

/// An item on its way through the chain: it enters stage `next` at `at`.
#[derive(Debug)]
struct Entry {
    item: Item,
    next: usize,
    at: Option<Instant>,
}

/// Why a pump stopped.
#[derive(Debug)]
enum Exit {
    /// The source's half-close was passed on.
    Done,
    /// A toxic (or a failed write) ends the connection.
    Close,
    /// A toxic resets the connection.
    Reset,
    /// The other direction, or the proxy, ended the connection.
    Killed,
}

/// One direction of one connection.
#[derive(Debug)]
pub(crate) struct Pump {
    stream: Stream,
    source: OwnedReadHalf,
    dest: OwnedWriteHalf,
    toxics: watch::Receiver<ToxicList>,
    shared: Arc<Shared>,
    rng: fastrand::Rng,
    counters: Counters,
    chain: Chain,
    inbox: VecDeque<Item>,
    inbox_bytes: usize,
    source_done: bool,
    /// Items inside the chain; the last one is next.
    stack: Vec<Entry>,
    out: Vec<Emit>,
    buf: BytesMut,
}

impl Pump {
    pub(crate) fn new(
        stream: Stream,
        (source, dest): (OwnedReadHalf, OwnedWriteHalf),
        mut toxics: watch::Receiver<ToxicList>,
        shared: Arc<Shared>,
        mut rng: fastrand::Rng,
        counters: Counters,
    ) -> Self {
        let list = toxics.borrow_and_update().clone();
        let chain = Chain::new(
            list.iter().filter(|t| t.stream == stream),
            Instant::now(),
            &mut rng,
        );
        Self {
            stream,
            source,
            dest,
            toxics,
            shared,
            rng,
            counters,
            chain,
            inbox: VecDeque::new(),
            inbox_bytes: 0,
            source_done: false,
            stack: Vec::new(),
            out: Vec::new(),
            buf: BytesMut::new(),
        }
    }

    /// Runs until this direction is finished, then acts on how it ended.
    pub(crate) async fn run(mut self) {
        let exit = self.pump().await;
        tracing::trace!(stream = %self.stream, ?exit, "Direction finished.");
        match exit {
            Exit::Done => {}
            Exit::Close => self.shared.kill.cancel(),
            Exit::Reset => {
                // SO_LINGER 0 turns the close into an RST, on both sockets.
                let _ = self.source.as_ref().set_zero_linger();
                let _ = self.dest.as_ref().set_zero_linger();
                self.shared.reset.store(true, Ordering::SeqCst);
                self.shared.kill.cancel();
                self.dest.forget();
            }
            Exit::Killed => {
                // Dropping a write half sends a FIN first, which would hide the reset.
                if self.shared.reset.load(Ordering::SeqCst) {
                    self.dest.forget();
                }
            }
        }
    }

    async fn pump(&mut self) -> Exit {
        loop {
            if self.stack.is_empty()
                && let Some(item) = self.inbox.pop_front()
            {
                if let Item::Data(c) = &item {
                    self.inbox_bytes -= c.data.len();
                }
                self.stack.push(Entry {
                    item,
                    next: 0,
                    at: None,
                });
            }
            let now = Instant::now();
            let wake = match self.stack.last() {
                Some(top) if top.at.is_none_or(|at| at <= now) => {
                    if let Some(entry) = self.stack.pop()
                        && let Some(exit) = self.advance(entry, now).await
                    {
                        return exit;
                    }
                    continue;
                }
                Some(top) => top.at,
                None => None,
            };
            if let Some(exit) = self.wait(wake).await {
                return exit;
            }
        }
    }

    /// Waits for the next thing to do: a read, a timer, a toxic change, the end.
    async fn wait(&mut self, wake: Option<Instant>) -> Option<Exit> {
        let deadline = self.chain.deadline();
        let can_read = !self.source_done && self.inbox_bytes < INBOX_MAX;
        if can_read {
            self.buf.reserve(READ_SIZE);
        }
        let far = Instant::now() + std::time::Duration::from_secs(86_400);
        tokio::select! {
            biased;
            () = self.shared.kill.cancelled() => return Some(Exit::Killed),
            changed = self.toxics.changed() => match changed {
                Ok(()) => self.rebuild(),
                // The proxy is gone.
                Err(_) => return Some(Exit::Killed),
            },
            () = sleep_until(deadline.as_ref().map_or(far, |d| d.0)), if deadline.is_some() => {
                if let Some((_, index, fired)) = deadline {
                    match fired {
                        Fired::Reset => return Some(Exit::Reset),
                        Fired::Close => {
                            self.chain.disarm(index);
                            self.close_at(index, index + 1);
                        }
                    }
                }
            }
            () = sleep_until(wake.unwrap_or(far)), if wake.is_some() => {}
            read = self.source.read_buf(&mut self.buf), if can_read => self.received(read),
        }
        None
    }

    fn received(&mut self, read: std::io::Result<usize>) {
        match read {
            Ok(n) if n > 0 => {
                self.counters.received.add(n as u64);
                // A small read is copied out so that the read buffer is reused: a chunk
                // must not pin a whole buffer, or many small chunks held by a latency
                // toxic would cost far more memory than the inbox bound says.
                let data = if n <= SMALL_READ {
                    let data = Bytes::copy_from_slice(&self.buf);
                    self.buf.clear();
                    data
                } else {
                    self.buf.split().freeze()
                };
                self.inbox_bytes += data.len();
                let stamp = Instant::now();
                self.inbox.push_back(Item::Data(Chunk { data, stamp }));
            }
            // End of input, or an error reading it: both end the source, as in Toxiproxy.
            _ => {
                self.source_done = true;
                self.inbox.push_back(Item::Eof);
            }
        }
    }

    /// A toxic at old stage `stage` ends the connection: what has passed it still goes
    /// out, what has not is dropped, and nothing more is read.
    fn close_at(&mut self, stage: usize, resume: usize) {
        self.stack.retain(|e| e.next > stage);
        self.inbox.clear();
        self.inbox_bytes = 0;
        self.source_done = true;
        self.stack.insert(
            0,
            Entry {
                item: Item::Close,
                next: resume,
                at: None,
            },
        );
    }

    fn rebuild(&mut self) {
        let list = self.toxics.borrow_and_update().clone();
        let stream = self.stream;
        let now = Instant::now();
        let rebuild = self.chain.rebuild(
            list.iter().filter(|t| t.stream == stream),
            now,
            &mut self.rng,
        );
        if let Some(stage) = rebuild.close_at {
            self.stack.retain(|e| e.next > stage);
            self.inbox.clear();
            self.inbox_bytes = 0;
            self.source_done = true;
        }
        for entry in &mut self.stack {
            if rebuild.emitter_changed(entry.next) {
                entry.at = None;
            }
            entry.next = rebuild.next_index(entry.next);
        }
        if let Some(stage) = rebuild.close_at {
            let resume = rebuild.next_index(stage + 1);
            self.stack.insert(
                0,
                Entry {
                    item: Item::Close,
                    next: resume,
                    at: None,
                },
            );
        }
    }

    /// Puts one item through its next stage, or out of the chain.
    async fn advance(&mut self, entry: Entry, now: Instant) -> Option<Exit> {
        let Some(stage) = self.chain.stage(entry.next) else {
            return self.deliver(entry.item).await;
        };
        self.out.clear();
        let mut ctx = Ctx {
            now,
            rng: &mut self.rng,
            out: &mut self.out,
        };
        stage.apply(entry.item, &mut ctx);
        let next = entry.next + 1;
        for emit in self.out.drain(..).rev() {
            self.stack.push(Entry {
                item: emit.item,
                next,
                at: emit.at,
            });
        }
        None
    }

    async fn deliver(&mut self, item: Item) -> Option<Exit> {
        match item {
            Item::Data(chunk) => {
                tokio::select! {
                    biased;
                    () = self.shared.kill.cancelled() => Some(Exit::Killed),
                    written = self.dest.write_all(&chunk.data) => match written {
                        Ok(()) => {
                            self.counters.sent.add(chunk.data.len() as u64);
                            None
                        }
                        // The destination is gone: so is the connection.
                        Err(_) => Some(Exit::Close),
                    },
                }
            }
            Item::Eof => {
                let _ = self.dest.shutdown().await;
                Some(Exit::Done)
            }
            Item::Close => Some(Exit::Close),
        }
    }
}
