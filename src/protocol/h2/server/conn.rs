//! The connection driver: reads frames and applies them to the shared state (RFC 9113 §5, §6),
//! hands each new request to the caller, and writes what the streams queued. One task per
//! connection; the streams' tasks never touch the socket.

use std::future::Future;
use std::io::IoSlice;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::{Buf, BytesMut};
use parking_lot::Mutex;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite};
use tokio::time::{Instant, Sleep};

use super::frame::{self, Head, Reason};
use super::request::{Intake, Refusal, Trailers};
use super::state::{Inner, Out, Reset, Stream};
use super::stream::{put_block, Shared, StreamHandle};
use crate::protocol::h2::hpack::Decoder;
use crate::protocol::h2::{H2Options, PREFACE};
use crate::protocol::http::length::declared_length;
use crate::protocol::http::{HeadError, RequestHead};

/// Our SETTINGS_HEADER_TABLE_SIZE (the default: the client's encoder may index up to 4 KiB).
const TABLE_SIZE: usize = 4096;

/// A connection error (§5.4.1): GOAWAY with this code, then close.
#[derive(Debug, Clone, Copy)]
struct ConnError(Reason);

/// A header block split over CONTINUATION frames, until its END_HEADERS.
struct Continuing {
    id: u32,
    end_stream: bool,
    self_dependent: bool,
    block: BytesMut,
}

/// A request to hand to the caller once the frames read in one batch are applied.
struct NewStream {
    id: u32,
    head: Result<RequestHead, (HeadError, bool)>,
    end: bool,
}

struct Driver<S> {
    io: S,
    rbuf: BytesMut,
    writing: Out,
    shared: Shared,
    decoder: Decoder,
    opts: H2Options,
    /// The highest stream id the client opened.
    last_id: u32,
    preface_done: bool,
    settings_seen: bool,
    continuing: Option<Continuing>,
    /// GOAWAY went out: no new streams; close once the open ones are done.
    going_away: bool,
    /// A connection error: close once the GOAWAY is written.
    failed: bool,
    read_closed: bool,
    new_streams: Vec<NewStream>,
    /// Client resets of streams not yet handed over, in this batch (rapid reset).
    batch_resets: usize,
    /// Client resets of unanswered streams over the connection (against `Inner::answered`).
    premature_resets: usize,
    /// Stream errors we sent because of the client (bounded like h2's `max_local_error_reset_streams`).
    local_errors: usize,
}

/// Serves an HTTP/2 connection whose first bytes (at least the start of the preface) are in
/// `rbuf`, calling `on_stream` for every request: the head, or the error page to answer it with.
/// Returns when the connection is over.
pub async fn serve<S, G, F>(
    io: S,
    rbuf: BytesMut,
    opts: &H2Options,
    preface_timeout: Duration,
    idle: Duration,
    graceful: G,
    mut on_stream: F,
) where
    S: AsyncRead + AsyncWrite + Unpin,
    G: Future<Output = ()>,
    F: FnMut(Result<RequestHead, (HeadError, bool)>, StreamHandle),
{
    let out_limit = opts.max_send_buffer_size.max(64 * 1024);
    let inner = Inner::new(opts.initial_window_size, opts.initial_connection_window_size, out_limit);
    let shared: Shared = Arc::new(Mutex::new(inner));
    let mut d = Driver {
        io,
        rbuf,
        writing: Out::default(),
        shared: shared.clone(),
        decoder: Decoder::new(TABLE_SIZE),
        opts: opts.clone(),
        last_id: 0,
        preface_done: false,
        settings_seen: false,
        continuing: None,
        going_away: false,
        failed: false,
        read_closed: false,
        new_streams: Vec::new(),
        batch_resets: 0,
        premature_resets: 0,
        local_errors: 0,
    };
    d.greet();
    // The bytes read while the protocol was sniffed (the preface, often the first frames): the
    // only time the buffer holds something to apply before a read.
    if !d.rbuf.is_empty() {
        d.apply();
    }
    let mut graceful = std::pin::pin!(graceful);
    let timer = std::pin::pin!(tokio::time::sleep(preface_timeout));
    let mut timer: Pin<&mut Sleep> = timer;
    let mut idle_armed = false;
    std::future::poll_fn(|cx| {
        if !d.going_away && graceful.as_mut().poll(cx).is_ready() {
            d.go_away(Reason::NO_ERROR);
        }
        loop {
            let read = d.poll_read(cx);
            for s in d.new_streams.drain(..) {
                let handle = StreamHandle::new(shared.clone(), s.id, s.end);
                on_stream(s.head, handle);
            }
            if d.poll_write(cx).is_err() {
                return Poll::Ready(());
            }
            if !read {
                break;
            }
        }
        let mut inner = shared.lock();
        if !inner.out.is_empty() && d.writing.is_empty() {
            // Queued while we wrote: go round again rather than wait for a wake.
            drop(inner);
            cx.waker().wake_by_ref();
            return Poll::Pending;
        }
        let served = inner.streams.len() == inner.orphans;
        let done = d.writing.is_empty() && (d.failed || ((d.read_closed || d.going_away) && served));
        if done {
            return Poll::Ready(());
        }
        inner.driver_woken = false;
        if !inner.driver.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
            inner.driver = Some(cx.waker().clone());
        }
        let idle_now = d.settings_seen && served;
        drop(inner);
        // Before the client's SETTINGS the timer is the preface deadline; afterwards it runs
        // only while no stream is open (armed when the connection goes idle, not per request).
        if idle_now && !idle_armed {
            timer.as_mut().reset(Instant::now() + idle);
            idle_armed = true;
        } else if !idle_now && d.settings_seen {
            idle_armed = false;
        }
        if (!d.settings_seen || idle_armed) && timer.as_mut().poll(cx).is_ready() {
            if !d.settings_seen {
                return Poll::Ready(());
            }
            d.go_away(Reason::NO_ERROR);
            cx.waker().wake_by_ref();
        }
        Poll::Pending
    })
    .await;
    let mut inner = shared.lock();
    inner.dead = true;
    for s in inner.streams.values_mut() {
        s.wake();
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> Driver<S> {
    /// Our SETTINGS and the connection window beyond the default (§3.4: the server's preface).
    fn greet(&mut self) {
        let mut inner = self.shared.lock();
        let o = &self.opts;
        frame::put_settings(
            &mut inner.out.buf,
            &[
                (frame::SETTINGS_MAX_CONCURRENT_STREAMS, o.max_concurrent_streams),
                (frame::SETTINGS_INITIAL_WINDOW_SIZE, o.initial_window_size),
                (frame::SETTINGS_MAX_HEADER_LIST_SIZE, o.max_header_list_size),
            ],
        );
        let extra = o.initial_connection_window_size.saturating_sub(frame::DEFAULT_WINDOW as u32);
        if extra > 0 {
            frame::put_window_update(&mut inner.out.buf, 0, extra);
        }
    }

    /// GOAWAY naming the last stream we will serve.
    fn go_away(&mut self, reason: Reason) {
        if self.going_away && reason == Reason::NO_ERROR {
            return;
        }
        self.going_away = true;
        let mut inner = self.shared.lock();
        frame::put_goaway(&mut inner.out.buf, self.last_id, reason);
        if reason != Reason::NO_ERROR {
            self.failed = true;
        }
    }

    /// Reads what the socket has and applies every complete frame. Whether it read anything.
    fn poll_read(&mut self, cx: &mut Context<'_>) -> bool {
        if self.read_closed || self.failed {
            return false;
        }
        if self.rbuf.capacity() - self.rbuf.len() < frame::HEADER_LEN + 4096 {
            self.rbuf.reserve(frame::HEADER_LEN + frame::DEFAULT_MAX_FRAME as usize);
        }
        let read = std::pin::pin!(self.io.read_buf(&mut self.rbuf));
        match read.poll(cx) {
            Poll::Pending => false,
            Poll::Ready(Ok(0)) | Poll::Ready(Err(_)) => {
                self.read_closed = true;
                true
            }
            Poll::Ready(Ok(_)) => {
                self.apply();
                true
            }
        }
    }

    /// Applies the complete frames in the read buffer; false when the connection failed.
    fn apply(&mut self) -> bool {
        let shared = self.shared.clone();
        let mut inner = shared.lock();
        self.batch_resets = 0;
        let r = self.apply_locked(&mut inner);
        if let Err(ConnError(reason)) = r {
            frame::put_goaway(&mut inner.out.buf, self.last_id, reason);
            self.going_away = true;
            self.failed = true;
            return false;
        }
        // Streams reset in the batch that brought them are not handed over at all.
        self.new_streams.retain(|s| match inner.streams.get(&s.id).map(|st| st.reset) {
            Some(None) => true,
            Some(Some(Reset::Local(_))) => {
                inner.streams.remove(&s.id);
                inner.local_reset.push(s.id);
                false
            }
            _ => {
                inner.streams.remove(&s.id);
                inner.peer_closed.push(s.id);
                false
            }
        });
        true
    }

    fn apply_locked(&mut self, inner: &mut Inner) -> Result<(), ConnError> {
        if !self.preface_done {
            let n = self.rbuf.len().min(PREFACE.len());
            if self.rbuf[..n] != PREFACE[..n] {
                return Err(ConnError(Reason::PROTOCOL_ERROR));
            }
            if n < PREFACE.len() {
                return Ok(());
            }
            self.rbuf.advance(PREFACE.len());
            self.preface_done = true;
        }
        while self.rbuf.len() >= frame::HEADER_LEN {
            let head = Head::parse(&self.rbuf);
            if head.len > frame::DEFAULT_MAX_FRAME as usize {
                return Err(ConnError(Reason::FRAME_SIZE_ERROR));
            }
            if self.rbuf.len() < frame::HEADER_LEN + head.len {
                self.rbuf.reserve(frame::HEADER_LEN + head.len - self.rbuf.len());
                break;
            }
            if !self.settings_seen && (head.kind != frame::SETTINGS || head.flags & frame::ACK != 0) {
                return Err(ConnError(Reason::PROTOCOL_ERROR));
            }
            if let Some(c) = &self.continuing {
                if head.kind != frame::CONTINUATION || head.stream != c.id {
                    return Err(ConnError(Reason::PROTOCOL_ERROR));
                }
            }
            if head.kind == frame::DATA {
                // Split off whole: the body pieces are handed on without a copy.
                let frame = self.rbuf.split_to(frame::HEADER_LEN + head.len).freeze();
                self.on_data(inner, head, frame.slice(frame::HEADER_LEN..))?;
                continue;
            }
            // Split off (a shared view, not a copy) so the frame can be read while the driver
            // is borrowed mutably; the buffer is reclaimed whole once the view is dropped.
            let frame = self.rbuf.split_to(frame::HEADER_LEN + head.len);
            self.on_frame(inner, head, &frame[frame::HEADER_LEN..])?;
        }
        Ok(())
    }

    fn on_frame(&mut self, inner: &mut Inner, head: Head, p: &[u8]) -> Result<(), ConnError> {
        let proto = Err(ConnError(Reason::PROTOCOL_ERROR));
        let size = Err(ConnError(Reason::FRAME_SIZE_ERROR));
        match head.kind {
            frame::HEADERS => self.on_headers(inner, head, p),
            frame::CONTINUATION => {
                let Some(mut c) = self.continuing.take() else { return proto };
                // A block past the header list limit cannot decode within it (every field counts
                // 32 bytes more decoded than it takes packed): a flood, not a request.
                if c.block.len() + p.len()
                    > self.opts.max_header_list_size as usize + frame::DEFAULT_MAX_FRAME as usize
                {
                    return Err(ConnError(Reason::ENHANCE_YOUR_CALM));
                }
                c.block.extend_from_slice(p);
                if head.flags & frame::END_HEADERS == 0 {
                    self.continuing = Some(c);
                    return Ok(());
                }
                self.on_block(inner, c.id, c.end_stream, c.self_dependent, &c.block)
            }
            frame::PRIORITY => {
                if head.stream == 0 {
                    return proto;
                }
                if p.len() != 5 {
                    self.stream_error(inner, head.stream, Reason::FRAME_SIZE_ERROR);
                } else if u32::from_be_bytes([p[0], p[1], p[2], p[3]]) & 0x7fff_ffff == head.stream {
                    self.stream_error(inner, head.stream, Reason::PROTOCOL_ERROR);
                }
                Ok(())
            }
            frame::RST_STREAM => {
                if head.stream == 0 || head.stream > self.last_id {
                    return proto;
                }
                if p.len() != 4 {
                    return size;
                }
                let reason = Reason(u32::from_be_bytes([p[0], p[1], p[2], p[3]]));
                self.on_reset(inner, head.stream, reason)
            }
            frame::SETTINGS => self.on_settings(inner, head, p),
            frame::PUSH_PROMISE => proto,
            frame::PING => {
                if head.stream != 0 {
                    return proto;
                }
                if p.len() != 8 {
                    return size;
                }
                if head.flags & frame::ACK == 0 {
                    frame::put_ping_ack(&mut inner.out.buf, p);
                }
                Ok(())
            }
            frame::GOAWAY => {
                if head.stream != 0 {
                    return proto;
                }
                if p.len() < 8 {
                    return size;
                }
                // The client is leaving; it closes the connection when it is done. Closing first
                // would reset it while its last frames (a PING, say) are unread (§6.8: no special
                // behaviour is due), and an idle connection ends by the idle timeout anyway.
                Ok(())
            }
            frame::WINDOW_UPDATE => self.on_window_update(inner, head, p),
            // Unknown frame types are ignored (§5.5).
            _ => Ok(()),
        }
    }

    fn on_settings(&mut self, inner: &mut Inner, head: Head, p: &[u8]) -> Result<(), ConnError> {
        if head.stream != 0 {
            return Err(ConnError(Reason::PROTOCOL_ERROR));
        }
        if head.flags & frame::ACK != 0 {
            return if p.is_empty() { Ok(()) } else { Err(ConnError(Reason::FRAME_SIZE_ERROR)) };
        }
        if p.len() % 6 != 0 {
            return Err(ConnError(Reason::FRAME_SIZE_ERROR));
        }
        self.settings_seen = true;
        for s in p.chunks(6) {
            let id = u16::from_be_bytes([s[0], s[1]]);
            let v = u32::from_be_bytes([s[2], s[3], s[4], s[5]]);
            match id {
                frame::SETTINGS_ENABLE_PUSH if v > 1 => return Err(ConnError(Reason::PROTOCOL_ERROR)),
                frame::SETTINGS_INITIAL_WINDOW_SIZE => {
                    if i64::from(v) > frame::MAX_WINDOW {
                        return Err(ConnError(Reason::FLOW_CONTROL_ERROR));
                    }
                    // §6.9.2: the change applies to every open stream's window, which may go
                    // below zero.
                    let delta = i64::from(v) - inner.init_send_window;
                    inner.init_send_window = i64::from(v);
                    for s in inner.streams.values_mut() {
                        s.send_window += delta;
                        if s.send_window > frame::MAX_WINDOW {
                            return Err(ConnError(Reason::FLOW_CONTROL_ERROR));
                        }
                    }
                    if delta > 0 {
                        inner.wake_blocked();
                    }
                }
                frame::SETTINGS_MAX_FRAME_SIZE => {
                    if !(frame::DEFAULT_MAX_FRAME..=0xff_ffff).contains(&v) {
                        return Err(ConnError(Reason::PROTOCOL_ERROR));
                    }
                    inner.max_frame = v as usize;
                }
                // Our encoder never indexes, so a smaller table asks nothing of it; the client's
                // concurrency and header list limits concern requests we do not make.
                _ => {}
            }
        }
        frame::put_settings_ack(&mut inner.out.buf);
        Ok(())
    }

    fn on_window_update(&mut self, inner: &mut Inner, head: Head, p: &[u8]) -> Result<(), ConnError> {
        if p.len() != 4 {
            return Err(ConnError(Reason::FRAME_SIZE_ERROR));
        }
        let inc = i64::from(u32::from_be_bytes([p[0], p[1], p[2], p[3]]) & 0x7fff_ffff);
        if head.stream == 0 {
            if inc == 0 {
                return Err(ConnError(Reason::PROTOCOL_ERROR));
            }
            inner.conn_send_window += inc;
            if inner.conn_send_window > frame::MAX_WINDOW {
                return Err(ConnError(Reason::FLOW_CONTROL_ERROR));
            }
            inner.wake_blocked();
            return Ok(());
        }
        if head.stream > self.last_id {
            return Err(ConnError(Reason::PROTOCOL_ERROR));
        }
        if inc == 0 {
            self.stream_error(inner, head.stream, Reason::PROTOCOL_ERROR);
            return Ok(());
        }
        let Some(s) = inner.streams.get_mut(&head.stream) else { return Ok(()) };
        s.send_window += inc;
        if s.send_window > frame::MAX_WINDOW {
            self.stream_error(inner, head.stream, Reason::FLOW_CONTROL_ERROR);
        } else {
            s.wake();
        }
        Ok(())
    }

    fn on_reset(&mut self, inner: &mut Inner, id: u32, reason: Reason) -> Result<(), ConnError> {
        let Some(s) = inner.streams.get_mut(&id) else {
            // Reset by both sides: from now on the client's own reset rules (§5.1: STREAM_CLOSED).
            if inner.local_reset.contains(id) {
                inner.local_reset.remove(id);
                inner.peer_closed.push(id);
            }
            return Ok(());
        };
        if s.orphan {
            inner.end_orphan(id, true);
            return Ok(());
        }
        if s.reset.is_some() {
            return Ok(());
        }
        s.reset = Some(Reset::Peer(reason));
        let premature = !s.answered;
        s.wake();
        inner.settle(id);
        if premature {
            if self.new_streams.iter().any(|n| n.id == id) {
                self.batch_resets += 1;
            }
            // Each answered stream earns one reset back: a client that cancels what it no
            // longer needs (a browser leaving a page) is not an attacker.
            self.premature_resets += 1;
            let o = &self.opts;
            let allowed =
                o.max_pending_accept_reset_streams + o.max_concurrent_streams as usize + inner.answered;
            if self.batch_resets > o.max_pending_accept_reset_streams || self.premature_resets > allowed {
                return Err(ConnError(Reason::ENHANCE_YOUR_CALM));
            }
        }
        Ok(())
    }

    fn on_data(&mut self, inner: &mut Inner, head: Head, p: bytes::Bytes) -> Result<(), ConnError> {
        let id = head.stream;
        if id == 0 || id > self.last_id {
            return Err(ConnError(Reason::PROTOCOL_ERROR));
        }
        let Some(body) = frame::unpad(head.flags, &p) else { return Err(ConnError(Reason::PROTOCOL_ERROR)) };
        inner.conn_recv_window -= p.len() as i64;
        if inner.conn_recv_window < 0 {
            return Err(ConnError(Reason::FLOW_CONTROL_ERROR));
        }
        let end = head.flags & frame::END_STREAM != 0;
        let local_reset = inner.local_reset.contains(id);
        let verdict = match inner.streams.get_mut(&id) {
            // Closed: ours to drop if we reset it, a STREAM_CLOSED error if the client did or
            // had ended it (§5.1).
            None if local_reset => Ok(()),
            None => Err(Reason::STREAM_CLOSED),
            Some(s) => match s.reset {
                Some(Reset::Local(_)) => Ok(()),
                Some(Reset::Peer(_)) => Err(Reason::STREAM_CLOSED),
                None if s.recv_end => Err(Reason::STREAM_CLOSED),
                None => {
                    s.recv_window -= p.len() as i64;
                    let data = p.slice(body);
                    s.received += data.len() as u64;
                    if s.recv_window < 0 {
                        Err(Reason::FLOW_CONTROL_ERROR)
                    } else if s.content_length.is_some_and(|n| s.received > n || (end && s.received != n)) {
                        // §8.1.1: a body that disagrees with its Content-Length is malformed.
                        Err(Reason::PROTOCOL_ERROR)
                    } else if s.orphan {
                        inner.release_conn(p.len());
                        if end {
                            inner.end_orphan(id, true);
                        }
                        return Ok(());
                    } else {
                        let padding = p.len() - data.len();
                        if !data.is_empty() {
                            s.recv.push_back(data);
                        }
                        s.recv_end = end;
                        s.wake();
                        if end {
                            inner.settle(id);
                        }
                        // Padding is consumed on arrival.
                        if padding > 0 {
                            inner.release_conn(padding);
                        }
                        return Ok(());
                    }
                }
            },
        };
        // Dropped or refused: its bytes go back to the connection window now.
        inner.release_conn(p.len());
        if let Err(reason) = verdict {
            self.stream_error(inner, id, reason);
        }
        Ok(())
    }

    fn on_headers(&mut self, inner: &mut Inner, head: Head, p: &[u8]) -> Result<(), ConnError> {
        let id = head.stream;
        if id == 0 || id % 2 == 0 {
            return Err(ConnError(Reason::PROTOCOL_ERROR));
        }
        let Some(range) = frame::unpad(head.flags, p) else { return Err(ConnError(Reason::PROTOCOL_ERROR)) };
        let mut block = &p[range];
        let mut self_dependent = false;
        if head.flags & frame::PRIORITY_FLAG != 0 {
            if block.len() < 5 {
                return Err(ConnError(Reason::FRAME_SIZE_ERROR));
            }
            self_dependent = u32::from_be_bytes([block[0], block[1], block[2], block[3]]) & 0x7fff_ffff == id;
            block = &block[5..];
        }
        let end_stream = head.flags & frame::END_STREAM != 0;
        if head.flags & frame::END_HEADERS == 0 {
            self.continuing =
                Some(Continuing { id, end_stream, self_dependent, block: BytesMut::from(block) });
            return Ok(());
        }
        self.on_block(inner, id, end_stream, self_dependent, block)
    }

    /// A complete header block: a new request, trailers, or an error.
    fn on_block(
        &mut self,
        inner: &mut Inner,
        id: u32,
        end_stream: bool,
        self_dependent: bool,
        block: &[u8],
    ) -> Result<(), ConnError> {
        let limit = self.opts.max_header_list_size as usize;
        if id <= self.last_id {
            let mut trailers = Trailers::new(limit);
            self.decode(block, |n, v| trailers.field(n, v))?;
            let Some(s) = inner.streams.get_mut(&id) else {
                if inner.local_reset.contains(id) {
                    return Ok(());
                }
                // A stream that ended (§5.1: STREAM_CLOSED), or one that was never opened and
                // now cannot be (§5.1.1: PROTOCOL_ERROR).
                let reason = if inner.peer_closed.contains(id) {
                    Reason::STREAM_CLOSED
                } else {
                    Reason::PROTOCOL_ERROR
                };
                return Err(ConnError(reason));
            };
            if s.reset.is_some() || s.recv_end {
                if matches!(s.reset, Some(Reset::Local(_))) {
                    return Ok(());
                }
                self.stream_error(inner, id, Reason::STREAM_CLOSED);
                return Ok(());
            }
            // §8.1: trailers end the stream, and a second head that does not is malformed.
            let length_ok = s.content_length.is_none_or(|n| n == s.received);
            match trailers.finish() {
                Ok(_) if s.orphan && end_stream && !self_dependent && length_ok => inner.end_orphan(id, true),
                Ok(map) if end_stream && !self_dependent && length_ok => {
                    s.trailers = Some(map);
                    s.recv_end = true;
                    s.wake();
                    inner.settle(id);
                }
                _ => self.stream_error(inner, id, Reason::PROTOCOL_ERROR),
            }
            return Ok(());
        }
        self.last_id = id;
        let mut intake = Intake::new(block.len(), limit);
        self.decode(block, |n, v| intake.field(n, v))?;
        if self.going_away {
            return Ok(()); // §6.8: streams after the GOAWAY's last id are not processed
        }
        if self_dependent {
            self.stream_error(inner, id, Reason::PROTOCOL_ERROR);
            return Ok(());
        }
        if inner.active >= self.opts.max_concurrent_streams as usize {
            frame::put_rst(&mut inner.out.buf, id, Reason::REFUSED_STREAM);
            inner.local_reset.push(id);
            return Ok(());
        }
        let head_request = intake.is_head();
        let head = match intake.finish() {
            Ok(h) => Ok(h),
            Err(Refusal::Bad(e)) => Err((e, head_request)),
            Err(Refusal::Malformed(_)) => {
                self.stream_error(inner, id, Reason::PROTOCOL_ERROR);
                return Ok(());
            }
            Err(Refusal::TooLarge) => {
                // RFC 9113 §10.5.1: a 431 tells the client why, then nothing more of it is read.
                let mut block = BytesMut::new();
                crate::protocol::h2::hpack::Encoder::new().status(431, &mut block);
                put_block(&mut inner.out.buf, &block, id, true, inner.max_frame);
                if !end_stream {
                    frame::put_rst(&mut inner.out.buf, id, Reason::NO_ERROR);
                }
                inner.local_reset.push(id);
                return Ok(());
            }
        };
        let content_length = head.as_ref().ok().and_then(|h| declared_length(&h.headers));
        if end_stream && content_length.is_some_and(|n| n > 0) {
            self.stream_error(inner, id, Reason::PROTOCOL_ERROR);
            return Ok(());
        }
        let (recv, send) = (i64::from(inner.stream_window), inner.init_send_window);
        inner.streams.insert(id, Stream::new(recv, send, end_stream, content_length));
        inner.active += 1;
        self.new_streams.push(NewStream { id, head, end: end_stream });
        Ok(())
    }

    /// Decodes a block; HPACK errors are connection errors (§4.3), a refused field is not.
    fn decode(
        &mut self,
        block: &[u8],
        emit: impl FnMut(&[u8], &[u8]) -> Result<(), ()>,
    ) -> Result<(), ConnError> {
        self.decoder.decode(block, emit).map(|_| ()).map_err(|_| ConnError(Reason::COMPRESSION_ERROR))
    }

    /// A stream error caused by the client; too many of them end the connection.
    fn stream_error(&mut self, inner: &mut Inner, id: u32, reason: Reason) {
        inner.reset_stream(id, reason);
        self.local_errors += 1;
        if self.local_errors > self.opts.max_local_error_reset_streams {
            frame::put_goaway(&mut inner.out.buf, self.last_id, Reason::ENHANCE_YOUR_CALM);
            self.going_away = true;
            self.failed = true;
        }
    }

    /// Writes what is queued; `Err` when the socket failed.
    fn poll_write(&mut self, cx: &mut Context<'_>) -> Result<(), ()> {
        loop {
            if self.writing.is_empty() {
                let mut inner = self.shared.lock();
                if inner.out.is_empty() {
                    break;
                }
                std::mem::swap(&mut self.writing, &mut inner.out);
                if !inner.blocked.is_empty() {
                    inner.wake_blocked();
                }
            }
            let w = &mut self.writing;
            let r = if w.queue.is_empty() {
                Pin::new(&mut self.io).poll_write(cx, &w.buf)
            } else {
                let mut slices = [IoSlice::new(&[]); 16];
                let mut n = 0;
                for q in w.queue.iter().take(15) {
                    slices[n] = IoSlice::new(q);
                    n += 1;
                }
                if w.queue.len() <= 15 && !w.buf.is_empty() {
                    slices[n] = IoSlice::new(&w.buf);
                    n += 1;
                }
                Pin::new(&mut self.io).poll_write_vectored(cx, &slices[..n])
            };
            match r {
                Poll::Ready(Ok(0)) | Poll::Ready(Err(_)) => return Err(()),
                Poll::Ready(Ok(n)) => w.advance(n),
                Poll::Pending => return Ok(()),
            }
        }
        match Pin::new(&mut self.io).poll_flush(cx) {
            Poll::Ready(Err(_)) => Err(()),
            _ => Ok(()),
        }
    }
}
