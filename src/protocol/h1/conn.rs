//! One HTTP/1.1 connection, either side: a stream plus its read buffer, with head reading under a
//! deadline, body reading by framing, and body writing by framing.
//!
//! The read buffer starts empty, grows on demand, and is released while the connection sits idle
//! between requests, so an idle keep-alive connection holds no buffer at all.

use std::future::{poll_fn, Future};
use std::io::IoSlice;
use std::pin::{pin, Pin};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::{Buf, Bytes, BytesMut};
use http::HeaderMap;
use tokio::io::{AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::time::{sleep_until, timeout_at, Instant, Sleep};

use super::chunk::{ChunkedDecoder, Decoded};
use super::encode::{encode_chunk_size, encode_last_chunk};
use super::framing::BodyFraming;
use super::parse::Parsed;
use super::{H1Error, Limits};
use crate::error::{Error, ErrorKind, ErrorSource, Result};
use crate::protocol::buffers;
use crate::protocol::stream::{SocketAddr, Stream};
use crate::protocol::timer::poll_until;
use crate::tls::TlsFacts;

/// Bytes asked of the kernel per read while a head is incomplete.
const HEAD_READ: usize = 4 * 1024;
/// Bytes asked of the kernel per read while streaming a body.
const BODY_READ: usize = 16 * 1024;
/// Error context of body reads.
const BODY_CTX: &str = "reading a body";
/// Error context of the keep-alive wait.
const NEXT_CTX: &str = "waiting for a request";
/// Below this size a body chunk is copied next to a pending head so both leave in one write.
const COALESCE: usize = 8 * 1024;

/// How the body of one message is being read.
#[derive(Debug)]
pub struct BodyReader {
    state: ReadState,
    /// Trailers received after a chunked body, if any.
    pub trailers: Option<HeaderMap>,
    /// Body bytes delivered so far.
    pub bytes: u64,
}

#[derive(Debug)]
enum ReadState {
    Length(u64),
    Chunked(Box<ChunkedDecoder>),
    UntilClose,
    Done,
}

impl BodyReader {
    /// A reader for a message with the given framing.
    pub fn new(framing: BodyFraming, limits: &Limits) -> Self {
        let state = match framing {
            BodyFraming::Empty | BodyFraming::Length(0) => ReadState::Done,
            BodyFraming::Length(n) => ReadState::Length(n),
            BodyFraming::Chunked => ReadState::Chunked(Box::new(ChunkedDecoder::new(limits))),
            BodyFraming::UntilClose => ReadState::UntilClose,
        };
        BodyReader { state, trailers: None, bytes: 0 }
    }

    /// Whether the whole body has been read.
    pub fn is_done(&self) -> bool {
        matches!(self.state, ReadState::Done)
    }
}

/// How the body of one outgoing message is being written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyWriter {
    /// No body may be sent.
    Empty,
    /// Exactly this many bytes remain to be sent.
    Length(u64),
    /// Chunked transfer coding.
    Chunked,
    /// Body ends when the connection closes.
    UntilClose,
}

/// An HTTP/1.x connection: transport, read buffer and the side it faces (for error blame).
///
/// A handle to its [`ConnState`] on the heap: a connection is moved from the accept loop into a
/// request, into its sessions, into the pool and back a dozen times per request, and a pointer
/// moves for less than the 184 bytes of the state. Its methods are the state's, reached through
/// the handle.
#[derive(Debug)]
pub struct H1Conn(Box<ConnState>);

/// What an [`H1Conn`] holds.
#[derive(Debug)]
pub struct ConnState {
    /// The transport.
    pub io: Stream,
    /// Bytes read but not consumed yet (pipelined requests, the start of a body).
    pub rbuf: BytesMut,
    /// Encoded bytes waiting to be written together with the next body chunk.
    wbuf: BytesMut,
    side: ErrorSource,
    /// Remote and local addresses, asked of the OS once per connection rather than per request.
    addrs: Option<(Option<SocketAddr>, Option<SocketAddr>)>,
    /// The TLS facts of an accepted TLS connection, taken as it starts and shared by its requests.
    tls: Option<Arc<TlsFacts>>,
    /// Nothing was read yet: the reactor's readiness is not trustworthy (see `first_read`).
    fresh: bool,
    /// The timer of this connection's waits, kept from one to the next (see [`until`]).
    timer: Timer,
    /// Dropped with the connection, wherever it ends: lets whoever opened it count it (a group
    /// backend's connection cap) without this layer knowing about it.
    tally: Option<Tally>,
}

/// See [`ConnState::tally`].
pub struct Tally(pub Box<dyn Send + Sync>);

impl std::fmt::Debug for Tally {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Tally")
    }
}

impl H1Conn {
    /// Wraps a stream; `side` is who to blame for I/O errors on it.
    pub fn new(io: Stream, side: ErrorSource) -> Self {
        H1Conn(Box::new(ConnState {
            io,
            rbuf: BytesMut::new(),
            wbuf: BytesMut::new(),
            side,
            addrs: None,
            tls: None,
            fresh: true,
            timer: None,
            tally: None,
        }))
    }

    /// Keeps `tally` until the connection is dropped (see [`ConnState::tally`]).
    pub fn hold(&mut self, tally: Tally) {
        self.0.tally = Some(tally);
    }

    /// The state itself, to take the transport and buffer apart (a switch to HTTP/2).
    pub fn into_state(self) -> ConnState {
        *self.0
    }
}

impl std::ops::Deref for H1Conn {
    type Target = ConnState;

    fn deref(&self) -> &ConnState {
        &self.0
    }
}

impl std::ops::DerefMut for H1Conn {
    fn deref_mut(&mut self) -> &mut ConnState {
        &mut self.0
    }
}

impl ConnState {
    /// The (remote, local) addresses of the transport.
    pub fn addrs(&mut self) -> (Option<SocketAddr>, Option<SocketAddr>) {
        let io = &self.io;
        self.addrs.get_or_insert_with(|| (io.peer_addr(), io.local_addr())).clone()
    }

    /// Takes the TLS facts of an accepted connection (see [`TlsFacts::of`]), once, when it
    /// starts: every request on it reads them from here. Nothing on plaintext.
    pub fn take_tls_facts(&mut self) {
        self.tls = TlsFacts::of(&self.io);
    }

    /// The TLS facts taken by [`Self::take_tls_facts`].
    pub fn tls_facts(&self) -> Option<&TlsFacts> {
        self.tls.as_deref()
    }

    /// A shared handle on them, for the streams of an HTTP/2 connection.
    pub fn tls_facts_shared(&self) -> Option<Arc<TlsFacts>> {
        self.tls.clone()
    }

    fn io_err(&self, e: &std::io::Error, reading: bool, ctx: &'static str) -> Box<Error> {
        Error::from_io(e, self.side, reading, ctx)
    }

    fn timeout_err(&self, reading: bool, ctx: &'static str) -> Box<Error> {
        let kind = if reading { ErrorKind::ReadTimeout } else { ErrorKind::WriteTimeout };
        Error::new(kind, self.side, ctx)
    }

    fn http_err(&self, e: H1Error, ctx: &'static str) -> Box<Error> {
        let status = if self.side == ErrorSource::Upstream { 502 } else { e.status };
        Error::new(ErrorKind::InvalidHttp(status), self.side, ctx).with_cause(e.reason)
    }

    /// Drops the read buffer's allocation when nothing is buffered, and the timer (idle
    /// keep-alive connection: it holds neither while it waits).
    pub fn release_buffers(&mut self) {
        if self.rbuf.is_empty() && self.rbuf.capacity() > 0 {
            buffers::give(std::mem::take(&mut self.rbuf));
        }
        self.timer = None;
        self.release_write_buffer();
    }

    /// Gives back the write buffer only. A pooled upstream connection keeps its read buffer: the
    /// response head just read still shares it (the session keeps that head until its logging
    /// phase), so it cannot go back to the thread's cache, and dropping it would cost the next
    /// request on this connection a fresh 4 KiB allocation. Kept, the next read reclaims it in
    /// place once that head is gone.
    pub fn release_write_buffer(&mut self) {
        if self.wbuf.is_empty() && self.wbuf.capacity() > 0 {
            buffers::give(std::mem::take(&mut self.wbuf));
        }
    }

    /// Reads more bytes into the buffer. Returns 0 at EOF.
    async fn fill(&mut self, want: usize, deadline: Option<Instant>, ctx: &'static str) -> Result<usize> {
        if self.rbuf.capacity() == 0 {
            if self.fresh {
                self.fresh = false;
                if let Some(n) = self.first_read(deadline, ctx).await? {
                    return Ok(n);
                }
            }
            self.wait_idle(deadline, ctx).await?;
            self.rbuf = buffers::take();
        }
        self.rbuf.reserve(want);
        let read = self.io.read_buf(&mut self.rbuf);
        let r = until(&mut self.timer, deadline.map(Deadline::At), read)
            .await
            .map_err(|_| self.timeout_err(true, ctx))?;
        r.map_err(|e| self.io_err(&e, true, ctx))
    }

    /// Waits for read readiness on a connection that holds no buffer, so that waiting costs no
    /// buffer memory. The read itself then goes through `poll_read`, which (unlike `try_read`)
    /// clears tokio's readiness after a short read: readiness stays accurate, and neither the
    /// next wait nor the pool's reuse probe pays for a stale "ready" with an EAGAIN syscall.
    async fn wait_idle(&mut self, deadline: Option<Instant>, ctx: &'static str) -> Result<()> {
        match until(&mut self.timer, deadline.map(Deadline::At), self.io.readable())
            .await
            .map_err(|_| self.timeout_err(true, ctx))?
        {
            Some(Err(e)) => Err(self.io_err(&e, true, ctx)),
            _ => Ok(()),
        }
    }

    /// The first read of a new connection. A new socket starts out "ready" in tokio whether or
    /// not bytes arrived, so waiting with a buffer would hold one on every silent connection.
    /// Instead: try a read into a fresh buffer; on WouldBlock give it back (readiness is now
    /// accurate) and let the caller wait without one. After bytes, one more try clears the
    /// readiness `try_read` leaves set. At most one extra syscall per connection.
    async fn first_read(&mut self, deadline: Option<Instant>, ctx: &'static str) -> Result<Option<usize>> {
        match until(&mut self.timer, deadline.map(Deadline::At), self.io.readable())
            .await
            .map_err(|_| self.timeout_err(true, ctx))?
        {
            None => return Ok(None), // TLS: no socket readiness to go by
            Some(Err(e)) => return Err(self.io_err(&e, true, ctx)),
            Some(Ok(())) => {}
        }
        let mut buf = buffers::take();
        let n = match self.io.try_read_buf(&mut buf) {
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                buffers::give(buf);
                return Ok(None);
            }
            Err(e) => return Err(self.io_err(&e, true, ctx)),
        };
        let more = if n > 0 && buf.len() < buf.capacity() {
            match self.io.try_read_buf(&mut buf) {
                Ok(m) => m,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => 0,
                Err(e) => return Err(self.io_err(&e, true, ctx)),
            }
        } else {
            0
        };
        self.rbuf = buf;
        Ok(Some(n + more))
    }

    /// Reads more bytes into the buffer, whatever is already there. Returns 0 at EOF.
    pub async fn read_more(&mut self, deadline: Option<Instant>) -> Result<usize> {
        self.fill(HEAD_READ, deadline, "reading").await
    }

    /// The keep-alive wait's poll, holding no buffer: ready once the connection has something for
    /// us, buffered bytes (pipelining) or socket readiness (bytes or EOF, read by whoever reads
    /// next); TLS streams have no socket readiness to go by and report ready at once. It keeps no
    /// state: the waker goes to the socket's reader slot (as a read's would) rather than into a
    /// waiter node of the caller's future, so a wait built on it costs a connection task next to
    /// nothing.
    pub fn poll_next(&self, cx: &mut Context<'_>) -> Poll<Result<()>> {
        if !self.rbuf.is_empty() {
            return Poll::Ready(Ok(()));
        }
        match std::task::ready!(self.io.poll_read_ready(cx)) {
            Some(Err(e)) => Poll::Ready(Err(self.io_err(&e, true, NEXT_CTX))),
            _ => Poll::Ready(Ok(())),
        }
    }

    /// Reads one head with `parse`, under `deadline` for the whole head.
    ///
    /// Returns `None` on EOF before the first byte of the head (the peer closed an idle connection).
    pub async fn read_head<T>(
        &mut self,
        limits: &Limits,
        deadline: Option<Instant>,
        parse: fn(&mut BytesMut, &Limits) -> std::result::Result<Parsed<T>, H1Error>,
        ctx: &'static str,
    ) -> Result<Option<T>> {
        loop {
            if !self.rbuf.is_empty() {
                match parse(&mut self.rbuf, limits) {
                    Ok(Parsed::Complete(head)) => return Ok(Some(head)),
                    Ok(Parsed::Partial) => {}
                    Err(e) => return Err(self.http_err(e, ctx)),
                }
            }
            let had = self.rbuf.len();
            if self.fill(HEAD_READ, deadline, ctx).await? == 0 {
                if had == 0 {
                    return Ok(None);
                }
                return Err(Error::new(ErrorKind::ConnectionClosed, self.side, ctx)
                    .with_cause("EOF inside a message head"));
            }
        }
    }

    /// Reads the next piece of body. `Ok(None)` when the body is complete (trailers, if any, are in
    /// `reader.trailers`). An EOF before the framing says the body ends is an error, never an end.
    pub async fn read_body(
        &mut self,
        reader: &mut BodyReader,
        idle: Option<Duration>,
    ) -> Result<Option<Bytes>> {
        loop {
            if let Some(piece) = self.buffered_body(reader)? {
                return Ok(piece);
            }
            let deadline = idle.map(|d| Instant::now() + d);
            if self.fill(BODY_READ, deadline, BODY_CTX).await? == 0 {
                if matches!(reader.state, ReadState::UntilClose) {
                    reader.state = ReadState::Done;
                    return Ok(None);
                }
                let cause = match &reader.state {
                    ReadState::Length(left) => {
                        format!("EOF after {} body bytes, {left} short of the Content-Length", reader.bytes)
                    }
                    _ => format!("EOF inside a chunked body after {} bytes", reader.bytes),
                };
                return Err(Error::new(ErrorKind::ConnectionClosed, self.side, BODY_CTX).with_cause(cause));
            }
        }
    }

    /// What [`H1Conn::read_body`] would return from the bytes already buffered, without reading:
    /// `Some(Some(data))`, `Some(None)` at the end of the body, or `None` when more must be read.
    /// A small response usually arrives with its head, so its whole body is here.
    pub fn buffered_body(&mut self, reader: &mut BodyReader) -> Result<Option<Option<Bytes>>> {
        loop {
            let data = match &mut reader.state {
                ReadState::Done => return Ok(Some(None)),
                ReadState::Length(remaining) => {
                    if self.rbuf.is_empty() {
                        return Ok(None);
                    }
                    let n = (*remaining).min(self.rbuf.len() as u64) as usize;
                    *remaining -= n as u64;
                    let data = self.rbuf.split_to(n).freeze();
                    if *remaining == 0 {
                        reader.state = ReadState::Done;
                    }
                    data
                }
                ReadState::Chunked(dec) => match dec.decode(&mut self.rbuf) {
                    Ok(Decoded::Data(d)) => d,
                    Ok(Decoded::NeedMore) => return Ok(None),
                    Ok(Decoded::End(trailers)) => {
                        if !trailers.is_empty() {
                            reader.trailers = Some(trailers);
                        }
                        reader.state = ReadState::Done;
                        return Ok(Some(None));
                    }
                    Err(e) => return Err(self.http_err(e, BODY_CTX)),
                },
                ReadState::UntilClose => {
                    if self.rbuf.is_empty() {
                        return Ok(None);
                    }
                    self.rbuf.split().freeze()
                }
            };
            if !data.is_empty() {
                reader.bytes += data.len() as u64;
                return Ok(Some(Some(data)));
            }
        }
    }

    /// Queues encoded head bytes; they leave with the next body write or [`H1Conn::flush`].
    pub fn queue(&mut self, encode: impl FnOnce(&mut BytesMut)) {
        if self.wbuf.capacity() == 0 {
            self.wbuf = buffers::take();
        }
        encode(&mut self.wbuf);
    }

    /// Writes whatever is queued. The queue keeps its allocation for the next head.
    pub async fn flush(&mut self, timeout: Option<Duration>) -> Result<()> {
        if self.wbuf.is_empty() {
            return Ok(());
        }
        let r = write_timed(&mut self.io, &mut self.timer, self.side, &self.wbuf[..], timeout).await;
        self.wbuf.clear();
        r
    }

    /// Writes the queued bytes followed by `rest`, in one vectored write where possible.
    async fn write_with_queued(&mut self, rest: impl Buf, timeout: Option<Duration>) -> Result<()> {
        let r =
            write_timed(&mut self.io, &mut self.timer, self.side, Buf::chain(&self.wbuf[..], rest), timeout)
                .await;
        self.wbuf.clear();
        r
    }

    /// Writes one piece of body with `writer`'s framing, together with any queued head bytes.
    pub async fn write_body(
        &mut self,
        writer: &mut BodyWriter,
        data: Bytes,
        timeout: Option<Duration>,
    ) -> Result<()> {
        if data.is_empty() {
            return self.flush(timeout).await;
        }
        match writer {
            BodyWriter::Empty => return self.flush(timeout).await,
            BodyWriter::Length(remaining) => {
                if data.len() as u64 > *remaining {
                    return Err(Error::internal("body longer than its Content-Length"));
                }
                *remaining -= data.len() as u64;
            }
            BodyWriter::Chunked => {
                encode_chunk_size(data.len(), &mut self.wbuf);
                if data.len() <= COALESCE {
                    self.wbuf.extend_from_slice(&data);
                    self.wbuf.extend_from_slice(b"\r\n");
                    return self.flush(timeout).await;
                }
                return self.write_with_queued(data.chain(&b"\r\n"[..]), timeout).await;
            }
            BodyWriter::UntilClose => {}
        }
        if self.wbuf.is_empty() {
            write_timed(&mut self.io, &mut self.timer, self.side, data, timeout).await
        } else if data.len() <= COALESCE {
            self.wbuf.extend_from_slice(&data);
            self.flush(timeout).await
        } else {
            self.write_with_queued(data, timeout).await
        }
    }

    /// Ends a body: the terminal chunk (with trailers) for chunked framing, a check that every
    /// promised byte was sent for Content-Length. Writes queued bytes either way.
    pub async fn finish_body(
        &mut self,
        writer: &BodyWriter,
        trailers: Option<&HeaderMap>,
        timeout: Option<Duration>,
    ) -> Result<()> {
        match writer {
            BodyWriter::Chunked => encode_last_chunk(trailers, &mut self.wbuf),
            BodyWriter::Length(n) if *n > 0 => {
                return Err(Error::internal("body shorter than its Content-Length"));
            }
            _ => {}
        }
        self.flush(timeout).await
    }

    /// Reads and throws away the rest of a body, up to `limit` bytes and `within` time, so the
    /// connection can carry the next request. `false` means give up and close instead.
    pub async fn drain(&mut self, reader: &mut BodyReader, limit: u64, within: Duration) -> bool {
        let deadline = Instant::now() + within;
        let mut seen = 0u64;
        while !reader.is_done() {
            let fut = self.read_body(reader, None);
            match timeout_at(deadline, fut).await {
                Ok(Ok(Some(d))) => {
                    seen += d.len() as u64;
                    if seen > limit {
                        return false;
                    }
                }
                Ok(Ok(None)) => return true,
                _ => return false,
            }
        }
        true
    }

    /// Closes the write side so the peer sees an orderly end.
    pub async fn shutdown(&mut self) {
        let _ = tokio::time::timeout(Duration::from_secs(1), self.io.shutdown()).await;
    }
}

/// Writes all of `buf` to `io` within `timeout`, blaming `side` for failures.
async fn write_timed(
    io: &mut Stream,
    timer: &mut Timer,
    side: ErrorSource,
    mut buf: impl Buf,
    timeout: Option<Duration>,
) -> Result<()> {
    const CTX: &str = "writing";
    let r = until(timer, timeout.map(Deadline::After), write_all(io, &mut buf))
        .await
        .map_err(|_| Error::new(ErrorKind::WriteTimeout, side, CTX))?;
    r.map_err(|e| Error::from_io(&e, side, false, CTX))
}

/// Writes all of `buf`, vectored when it is in pieces. tokio's `write_all_buf` sets up 64 slices
/// (1 KiB of stack) for every call; the proxy writes one to three pieces at a time (queued head,
/// chunk size, body).
async fn write_all(io: &mut Stream, buf: &mut impl Buf) -> std::io::Result<()> {
    poll_fn(|cx| {
        while buf.has_remaining() {
            let mut pieces = [IoSlice::new(&[]); 4];
            let n = buf.chunks_vectored(&mut pieces);
            let wrote = if n > 1 {
                Pin::new(&mut *io).poll_write_vectored(cx, &pieces[..n])
            } else {
                Pin::new(&mut *io).poll_write(cx, buf.chunk())
            };
            match wrote {
                Poll::Ready(Ok(0)) => return Poll::Ready(Err(std::io::ErrorKind::WriteZero.into())),
                Poll::Ready(Ok(k)) => buf.advance(k),
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Pending => return Poll::Pending,
            }
        }
        Poll::Ready(Ok(()))
    })
    .await
}

/// A connection's timer, made on its first wait that does not finish at once.
type Timer = Option<Pin<Box<Sleep>>>;

/// When a wait gives up.
#[derive(Debug, Clone, Copy)]
enum Deadline {
    /// At a fixed instant (a head's deadline, shared by all its reads).
    At(Instant),
    /// This long after the wait began, with the clock read only if the wait does not finish at
    /// once (a write, which nearly always does).
    After(Duration),
}

/// Runs `fut` until `deadline`. The timer is armed only when the first poll does not finish `fut`
/// (most reads and writes on a busy connection complete at once), and it is the connection's,
/// kept from one wait to the next (see [`crate::protocol::timer`]).
async fn until<F: Future>(
    timer: &mut Timer,
    deadline: Option<Deadline>,
    fut: F,
) -> std::result::Result<F::Output, ()> {
    let mut fut = pin!(fut);
    let Some(deadline) = deadline else { return Ok(fut.await) };
    let mut at = None;
    poll_fn(|cx| {
        if let Poll::Ready(v) = fut.as_mut().poll(cx) {
            return Poll::Ready(Ok(v));
        }
        let at = *at.get_or_insert_with(|| match deadline {
            Deadline::At(at) => at,
            Deadline::After(t) => Instant::now() + t,
        });
        let t = timer.get_or_insert_with(|| Box::pin(sleep_until(at)));
        poll_until(t.as_mut(), at, cx).map(|()| Err(()))
    })
    .await
}
