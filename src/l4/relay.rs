//! The byte relay between a client and its peer: two half-duplex copies with one buffer each,
//! reused for every read, so memory per connection is fixed however fast one side sends and
//! however slowly the other reads (a full buffer stops reading until the writer drained it:
//! TCP's own flow control then pushes back on the sender).
//!
//! A side that ends its sending (EOF) has the other side's write shut down in turn while the
//! opposite direction keeps flowing, so half-closed protocols work end to end.

use std::future::{poll_fn, Future};
use std::io;
use std::pin::Pin;
use std::task::{ready, Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::Instant;

use super::session::L4End;
use crate::protocol::stream::Stream;

/// One direction of a relay: moves bytes from one stream to the other.
pub(crate) trait Direction {
    /// Moves bytes from `from` to `to` until both would block (`Pending`) or `from` ended and
    /// `to` was shut down (`Ready(Ok)`). `moved` is set when any byte went through.
    fn poll_copy(
        &mut self,
        cx: &mut Context<'_>,
        from: &mut Stream,
        to: &mut Stream,
        moved: &mut bool,
    ) -> Poll<io::Result<()>>;
    /// Bytes written out so far.
    fn bytes(&self) -> u64;
}

/// One direction: reads into `buf`, writes it all out, then reads again.
pub(crate) struct Half {
    buf: Box<[u8]>,
    pos: usize,
    cap: usize,
    eof: bool,
    shut: bool,
    unflushed: bool,
    bytes: u64,
}

impl Half {
    pub(crate) fn new(size: usize) -> Self {
        Half {
            buf: vec![0; size].into_boxed_slice(),
            pos: 0,
            cap: 0,
            eof: false,
            shut: false,
            unflushed: false,
            bytes: 0,
        }
    }
}

impl Direction for Half {
    fn bytes(&self) -> u64 {
        self.bytes
    }

    fn poll_copy(
        &mut self,
        cx: &mut Context<'_>,
        from: &mut Stream,
        to: &mut Stream,
        moved: &mut bool,
    ) -> Poll<io::Result<()>> {
        let (mut r, mut w) = (Pin::new(from), Pin::new(to));
        loop {
            if self.pos == self.cap && !self.eof {
                let mut rb = ReadBuf::new(&mut self.buf);
                match r.as_mut().poll_read(cx, &mut rb) {
                    Poll::Ready(Ok(())) => {
                        let n = rb.filled().len();
                        if n == 0 {
                            self.eof = true;
                        } else {
                            (self.pos, self.cap) = (0, n);
                        }
                    }
                    Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                    Poll::Pending => {
                        // Nothing more to read for now: push out what a TLS writer still holds,
                        // or the other side would wait for bytes that sit in our buffer.
                        if self.unflushed {
                            ready!(w.as_mut().poll_flush(cx))?;
                            self.unflushed = false;
                        }
                        return Poll::Pending;
                    }
                }
            }
            while self.pos < self.cap {
                let n = ready!(w.as_mut().poll_write(cx, &self.buf[self.pos..self.cap]))?;
                if n == 0 {
                    return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
                }
                self.pos += n;
                self.bytes += n as u64;
                self.unflushed = true;
                *moved = true;
            }
            if self.eof {
                if !self.shut {
                    ready!(w.as_mut().poll_shutdown(cx))?;
                    self.shut = true;
                }
                return Poll::Ready(Ok(()));
            }
        }
    }
}

/// Limits of one relay.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RelayLimits {
    pub(crate) idle: Option<Duration>,
    pub(crate) deadline: Option<Instant>,
}

/// Relays until both directions ended, one failed, or a limit was hit. The byte counts are in
/// the halves whatever the outcome.
pub(crate) async fn relay<D: Direction>(
    client: &mut Stream,
    upstream: &mut Stream,
    up: &mut D,
    down: &mut D,
    limits: RelayLimits,
) -> (L4End, Option<io::Error>) {
    let mut last_move = Instant::now();
    // One timer for both limits, re-armed lazily: when it fires early because bytes moved since,
    // it is pushed to the new deadline (no timer reset per read).
    let next = |last: Instant| match (limits.idle.map(|i| last + i), limits.deadline) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    };
    let mut timer = next(last_move).map(|d| Box::pin(tokio::time::sleep_until(d)));
    let (mut up_done, mut down_done) = (false, false);
    poll_fn(|cx| {
        let mut moved = false;
        if !up_done {
            match up.poll_copy(cx, client, upstream, &mut moved) {
                Poll::Ready(Ok(())) => up_done = true,
                Poll::Ready(Err(e)) => return Poll::Ready((L4End::Error, Some(e))),
                Poll::Pending => {}
            }
        }
        if !down_done {
            match down.poll_copy(cx, upstream, client, &mut moved) {
                Poll::Ready(Ok(())) => down_done = true,
                Poll::Ready(Err(e)) => return Poll::Ready((L4End::Error, Some(e))),
                Poll::Pending => {}
            }
        }
        if up_done && down_done {
            return Poll::Ready((L4End::Closed, None));
        }
        let now = Instant::now();
        if moved {
            last_move = now;
        }
        if let Some(t) = timer.as_mut() {
            while t.as_mut().poll(cx).is_ready() {
                if limits.deadline.is_some_and(|d| now >= d) {
                    return Poll::Ready((L4End::MaxDuration, None));
                }
                match next(last_move) {
                    Some(d) if d > now => t.as_mut().reset(d),
                    _ => return Poll::Ready((L4End::IdleTimeout, None)),
                }
            }
        }
        Poll::Pending
    })
    .await
}
