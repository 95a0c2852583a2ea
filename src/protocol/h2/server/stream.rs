//! What a stream's task holds: the request body as it arrives, the response going out through
//! the connection's output, with both directions' flow control (§5.2, §6.9).

use std::future::poll_fn;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::{BufMut, Bytes, BytesMut};
use http::{HeaderMap, StatusCode};
use parking_lot::Mutex;

use super::frame::{self, Reason};
use super::state::{Inner, Reset};
use crate::protocol::h2::h2_field;
use crate::protocol::h2::hpack::Encoder;
use crate::protocol::http::{Headers, Known};

/// Why a stream operation failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamError {
    /// The client reset the stream.
    Reset(Reason),
    /// We reset it (a stream error on the client's side of it).
    LocalReset(Reason),
    /// The connection is gone.
    Closed,
}

impl std::fmt::Display for StreamError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StreamError::Reset(r) => write!(f, "client reset the stream: {r}"),
            StreamError::LocalReset(r) => write!(f, "stream reset: {r}"),
            StreamError::Closed => f.write_str("connection closed"),
        }
    }
}

impl std::error::Error for StreamError {}

pub type Shared = Arc<Mutex<Inner>>;

/// Orphaned streams kept per connection (see [`Inner::orphans`]), and the most request body
/// one may still announce.
const ORPHANS: usize = 64;
const ORPHAN_BODY: u64 = 64 * 1024;

/// One request's stream. Dropping it before the exchange is complete resets the stream.
pub struct StreamHandle {
    shared: Shared,
    id: u32,
    /// The request came with END_STREAM on its head.
    end_on_head: bool,
}

fn check(inner: &Inner, id: u32) -> Result<(), StreamError> {
    match inner.streams.get(&id).and_then(|s| s.reset) {
        Some(Reset::Peer(r)) => Err(StreamError::Reset(r)),
        Some(Reset::Local(r)) => Err(StreamError::LocalReset(r)),
        None if inner.dead => Err(StreamError::Closed),
        None => Ok(()),
    }
}

impl StreamHandle {
    pub(super) fn new(shared: Shared, id: u32, end_on_head: bool) -> StreamHandle {
        StreamHandle { shared, id, end_on_head }
    }

    /// Whether the request has no body (END_STREAM on its head).
    pub fn is_end_stream(&self) -> bool {
        self.end_on_head
    }

    /// The next piece of request body, `None` at its end. Consumed bytes go back to the client as
    /// window once half of one is used: the window is what bounds our buffering.
    pub fn poll_data(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<Bytes, StreamError>>> {
        let mut guard = self.shared.lock();
        let inner = &mut *guard;
        if let Err(e) = check(inner, self.id) {
            return Poll::Ready(Some(Err(e)));
        }
        let Some(s) = inner.streams.get_mut(&self.id) else {
            return Poll::Ready(Some(Err(StreamError::Closed)));
        };
        if let Some(data) = s.recv.pop_front() {
            s.unacked += data.len() as u32;
            if !s.recv_end && s.unacked >= inner.stream_window / 2 {
                frame::put_window_update(&mut inner.out.buf, self.id, s.unacked);
                s.recv_window += i64::from(s.unacked);
                s.unacked = 0;
                inner.wake_driver();
            }
            inner.release_conn(data.len());
            return Poll::Ready(Some(Ok(data)));
        }
        if s.recv_end {
            return Poll::Ready(None);
        }
        s.waker = Some(cx.waker().clone());
        Poll::Pending
    }

    /// [`Self::poll_data`] as a future.
    pub async fn data(&mut self) -> Option<Result<Bytes, StreamError>> {
        poll_fn(|cx| self.poll_data(cx)).await
    }

    /// The trailers after the body, once [`Self::data`] returned `None`.
    pub fn take_trailers(&mut self) -> Option<HeaderMap> {
        self.shared.lock().streams.get_mut(&self.id).and_then(|s| s.trailers.take())
    }

    /// Ready when the stream is reset or the connection gone.
    pub fn poll_reset(&mut self, cx: &mut Context<'_>) -> Poll<StreamError> {
        let mut inner = self.shared.lock();
        if let Err(e) = check(&inner, self.id) {
            return Poll::Ready(e);
        }
        if let Some(s) = inner.streams.get_mut(&self.id) {
            s.waker = Some(cx.waker().clone());
        }
        Poll::Pending
    }

    /// Sends a header block made by [`encode_head`] or [`encode_trailers`]: a 1xx head
    /// (`interim`), the final head, or trailers; `end` ends the stream with it.
    pub fn send_block(&mut self, block: &[u8], end: bool, interim: bool) -> Result<(), StreamError> {
        let mut guard = self.shared.lock();
        let inner = &mut *guard;
        check(inner, self.id)?;
        put_block(&mut inner.out.buf, block, self.id, end, inner.max_frame);
        if !interim {
            self.after_head(inner, end);
        }
        inner.wake_driver();
        Ok(())
    }

    fn after_head(&self, inner: &mut Inner, end: bool) {
        if let Some(s) = inner.streams.get_mut(&self.id) {
            inner.answered += usize::from(!s.answered);
            s.answered = true;
            if end {
                s.local_end = true;
                inner.settle(self.id);
            }
        }
    }

    /// Sends body, waiting for the client's window and for room in the connection's output
    /// (backpressure rather than buffering). An empty piece with `end` ends the stream.
    pub async fn send_data(&mut self, mut data: Bytes, end: bool) -> Result<(), StreamError> {
        poll_fn(|cx| self.poll_send(cx, &mut data, end)).await
    }

    fn poll_send(
        &mut self,
        cx: &mut Context<'_>,
        data: &mut Bytes,
        end: bool,
    ) -> Poll<Result<(), StreamError>> {
        let mut guard = self.shared.lock();
        let inner = &mut *guard;
        if let Err(e) = check(inner, self.id) {
            return Poll::Ready(Err(e));
        }
        let id = self.id;
        loop {
            let room = inner.out_limit.saturating_sub(inner.out.len());
            let Some(s) = inner.streams.get_mut(&id) else { return Poll::Ready(Err(StreamError::Closed)) };
            let window = s.send_window.min(inner.conn_send_window).max(0) as usize;
            if !data.is_empty() && (window == 0 || room == 0) {
                s.waker = Some(cx.waker().clone());
                if !inner.blocked.contains(&id) {
                    inner.blocked.push(id);
                }
                return Poll::Pending;
            }
            let n = data.len().min(window).min(inner.max_frame);
            let piece = data.split_to(n);
            let last = data.is_empty() && end;
            s.send_window -= n as i64;
            s.local_end |= last;
            inner.conn_send_window -= n as i64;
            frame::put_head(&mut inner.out.buf, n, frame::DATA, if last { frame::END_STREAM } else { 0 }, id);
            inner.out.put_data(piece);
            inner.wake_driver();
            if data.is_empty() {
                inner.settle(id);
                return Poll::Ready(Ok(()));
            }
        }
    }
}

impl Drop for StreamHandle {
    fn drop(&mut self) {
        let mut guard = self.shared.lock();
        let inner = &mut *guard;
        let Some(s) = inner.streams.get_mut(&self.id) else { return };
        let remaining = s.content_length.map(|n| n.saturating_sub(s.received));
        let short = remaining.is_some_and(|n| n <= ORPHAN_BODY);
        if s.reset.is_none() && s.local_end && !s.recv_end && !inner.dead && inner.orphans < ORPHANS && short
        {
            let unread = s.recv.drain(..).map(|b| b.len()).sum::<usize>() + s.unacked as usize;
            s.unacked = 0;
            s.orphan = true;
            s.waker = None;
            if s.counted {
                s.counted = false;
                inner.active -= 1;
            }
            inner.orphans += 1;
            inner.blocked.retain(|id| *id != self.id);
            if unread > 0 {
                inner.release_conn(unread);
            }
            return;
        }
        let Some(s) = inner.streams.remove(&self.id) else { return };
        if s.counted {
            inner.active -= 1;
        }
        inner.blocked.retain(|id| *id != self.id);
        // Unread body still holds connection window: give it back, or the connection stalls.
        let unread: usize = s.recv.iter().map(Bytes::len).sum::<usize>() + s.unacked as usize;
        if unread > 0 && !inner.dead {
            inner.release_conn(unread);
        }
        match s.reset {
            Some(Reset::Peer(_)) => inner.peer_closed.push(self.id),
            Some(Reset::Local(_)) => inner.local_reset.push(self.id),
            None if s.local_end && s.recv_end => inner.peer_closed.push(self.id),
            None if inner.dead => {}
            None => {
                // §8.1: a complete response may end a request whose body is still coming with
                // NO_ERROR; anything else is a cancel.
                let reason = if s.local_end { Reason::NO_ERROR } else { Reason::CANCEL };
                frame::put_rst(&mut inner.out.buf, self.id, reason);
                inner.local_reset.push(self.id);
                inner.wake_driver();
            }
        }
    }
}

/// A response head's fields as an HPACK block, without the fields HTTP/2 must not carry.
pub fn encode_head(status: StatusCode, headers: &Headers) -> BytesMut {
    let mut block = BytesMut::with_capacity(headers.encoded_len() + 8);
    let mut encoder = Encoder::new();
    let mut scratch = [0u8; 64];
    let mut long = Vec::new();
    encoder.status(status.as_u16(), &mut block);
    headers.for_each(|known, name, value| {
        if h2_field(known, value) {
            encoder.field(lowercase(name, &mut scratch, &mut long), value, &mut block);
        }
    });
    block
}

/// Trailers as an HPACK block (names of a map are lowercase already).
pub fn encode_trailers(trailers: &HeaderMap) -> BytesMut {
    let mut block = BytesMut::new();
    let mut encoder = Encoder::new();
    for (name, value) in trailers {
        if h2_field(Known::of(name), value.as_bytes()) {
            encoder.field(name.as_str().as_bytes(), value.as_bytes(), &mut block);
        }
    }
    block
}

/// A header block as HEADERS, split into CONTINUATION frames past the client's frame size
/// (rare: a head of over 16 KB).
pub(super) fn put_block(buf: &mut BytesMut, block: &[u8], id: u32, end: bool, max_frame: usize) {
    let mut pieces = block.chunks(max_frame).peekable();
    let mut kind = frame::HEADERS;
    let mut flags = if end { frame::END_STREAM } else { 0 };
    if block.is_empty() {
        frame::put_head(buf, 0, kind, flags | frame::END_HEADERS, id);
        return;
    }
    while let Some(piece) = pieces.next() {
        if pieces.peek().is_none() {
            flags |= frame::END_HEADERS;
        }
        frame::put_head(buf, piece.len(), kind, flags, id);
        buf.put_slice(piece);
        kind = frame::CONTINUATION;
        flags = 0;
    }
}

/// `name` in lowercase (HTTP/1 upstreams capitalise names as they like), copied only when it
/// has an uppercase letter: onto the stack, or for a name past 64 bytes into `long`.
fn lowercase<'a>(name: &'a [u8], scratch: &'a mut [u8; 64], long: &'a mut Vec<u8>) -> &'a [u8] {
    if !name.iter().any(u8::is_ascii_uppercase) {
        return name;
    }
    if let Some(dst) = scratch.get_mut(..name.len()) {
        for (d, s) in dst.iter_mut().zip(name) {
            *d = s.to_ascii_lowercase();
        }
        return dst;
    }
    long.clear();
    long.extend(name.iter().map(u8::to_ascii_lowercase));
    long
}

#[cfg(test)]
mod tests {
    use http::HeaderValue;

    use super::*;
    use crate::protocol::h2::hpack::Decoder;
    use crate::protocol::http::fields::wire;

    fn decode(block: &[u8]) -> Vec<(String, String)> {
        let mut out = Vec::new();
        let done = Decoder::new(4096).decode(block, |n, v| {
            out.push((String::from_utf8_lossy(n).into_owned(), String::from_utf8_lossy(v).into_owned()));
            Ok(())
        });
        assert_eq!(done, Ok(true));
        out
    }

    #[test]
    fn head_block_is_lowercase_without_connection_fields_in_order() {
        let long = format!("X-{}", "Long".repeat(30));
        let mut headers = wire(&[
            ("Content-Type", "text/plain"),
            ("Connection", "keep-alive"),
            ("x-a", "1"),
            ("Transfer-Encoding", "chunked"),
            ("X-A", "2"),
            ("Keep-Alive", "timeout=5"),
        ]);
        headers.append(http::HeaderName::from_bytes(long.as_bytes()).unwrap(), HeaderValue::from_static("v"));
        let fields = decode(&encode_head(StatusCode::from_u16(299).unwrap(), &headers));
        let lower = long.to_ascii_lowercase();
        let want = [
            (":status", "299"),
            ("content-type", "text/plain"),
            ("x-a", "1"),
            ("x-a", "2"),
            (lower.as_str(), "v"),
        ];
        let want: Vec<_> = want.iter().map(|(n, v)| (n.to_string(), v.to_string())).collect();
        assert_eq!(fields, want);
    }

    #[test]
    fn trailers_block_keeps_every_value() {
        let mut t = HeaderMap::new();
        t.append("grpc-status", HeaderValue::from_static("0"));
        t.append("x-t", HeaderValue::from_static("1"));
        t.append("x-t", HeaderValue::from_static("2"));
        let fields = decode(&encode_trailers(&t));
        assert_eq!(fields.len(), 3);
        assert_eq!(fields[0], ("grpc-status".into(), "0".into()));
    }

    #[test]
    fn blocks_past_the_frame_size_are_split_into_continuation() {
        let block = vec![7u8; 40_000];
        let mut buf = BytesMut::new();
        put_block(&mut buf, &block, 3, true, 16_384);
        let mut at = 0;
        let mut seen = Vec::new();
        while at < buf.len() {
            let h = frame::Head::parse(&buf[at..]);
            seen.push((h.kind, h.flags, h.len));
            at += frame::HEADER_LEN + h.len;
        }
        assert_eq!(
            seen,
            [
                (frame::HEADERS, frame::END_STREAM, 16_384),
                (frame::CONTINUATION, 0, 16_384),
                (frame::CONTINUATION, frame::END_HEADERS, 40_000 - 2 * 16_384)
            ]
        );
    }
}
