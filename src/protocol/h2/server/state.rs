//! The state one HTTP/2 connection shares between its driver (which reads frames and writes the
//! output) and its streams' tasks: per-stream flow control and body queues, and the output
//! waiting for the socket. One mutex guards all of it: every operation is a few
//! dozen instructions, far less than the channels and per-stream locks would cost, and the
//! driver takes it once per batch of frames read.

use std::collections::{HashMap, VecDeque};
use std::hash::{BuildHasherDefault, Hasher};
use std::task::Waker;

use bytes::{Bytes, BytesMut};
use http::HeaderMap;

use super::frame::{self, Reason};

/// Stream ids are odd counters chosen by the client: a multiplicative hash spreads them over
/// the table's groups without SipHash's cost per lookup.
#[derive(Default)]
pub struct IdHasher(u64);

impl Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, _: &[u8]) {
        unreachable!("stream ids are hashed as u32")
    }
    fn write_u32(&mut self, id: u32) {
        self.0 = u64::from(id).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    }
}

pub type Streams = HashMap<u32, Stream, BuildHasherDefault<IdHasher>>;

/// Frames waiting for the socket: small ones copied into `buf`, large DATA payloads queued as
/// they are (a response body is not copied again on its way out).
#[derive(Default)]
pub struct Out {
    pub queue: VecDeque<Bytes>,
    pub buf: BytesMut,
    queued: usize,
}

/// DATA payloads up to this size are copied next to their frame header: one iovec instead of
/// two, and the copy is cheaper than the bookkeeping.
const COPY_BELOW: usize = 2048;

impl Out {
    pub fn is_empty(&self) -> bool {
        self.buf.is_empty() && self.queue.is_empty()
    }

    pub fn len(&self) -> usize {
        self.buf.len() + self.queued
    }

    pub fn put_data(&mut self, data: Bytes) {
        if data.len() < COPY_BELOW {
            self.buf.extend_from_slice(&data);
            return;
        }
        if !self.buf.is_empty() {
            let head = self.buf.split().freeze();
            self.queued += head.len();
            self.queue.push_back(head);
        }
        self.queued += data.len();
        self.queue.push_back(data);
    }

    /// Drops `n` bytes written from the front.
    pub fn advance(&mut self, mut n: usize) {
        while n > 0 {
            match self.queue.front_mut() {
                Some(q) if q.len() <= n => {
                    n -= q.len();
                    self.queued -= q.len();
                    self.queue.pop_front();
                }
                Some(q) => {
                    let _ = q.split_to(n);
                    self.queued -= n;
                    return;
                }
                None => {
                    let _ = self.buf.split_to(n);
                    return;
                }
            }
        }
    }
}

/// Who ended a stream early.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reset {
    /// The client's RST_STREAM: later frames on it are a STREAM_CLOSED error.
    Peer(Reason),
    /// Ours (a stream error or a cancel): frames the client sent before it saw it are dropped.
    Local(Reason),
}

pub struct Stream {
    pub recv: VecDeque<Bytes>,
    /// END_STREAM received: the request is complete.
    pub recv_end: bool,
    pub trailers: Option<HeaderMap>,
    /// What the client may still send before our next WINDOW_UPDATE.
    pub recv_window: i64,
    /// Body bytes the handler consumed that were not yet given back as window.
    pub unacked: u32,
    pub content_length: Option<u64>,
    pub received: u64,
    pub send_window: i64,
    /// END_STREAM sent.
    pub local_end: bool,
    pub reset: Option<Reset>,
    /// The response head went out (a reset before that counts against rapid-reset abuse).
    pub answered: bool,
    /// Counted among the open streams (SETTINGS_MAX_CONCURRENT_STREAMS).
    pub counted: bool,
    /// Answered and its handler gone, the rest of its request body still due: read and dropped
    /// (see [`Inner::orphans`]).
    pub orphan: bool,
    pub waker: Option<Waker>,
}

impl Stream {
    pub fn new(recv_window: i64, send_window: i64, recv_end: bool, content_length: Option<u64>) -> Stream {
        Stream {
            recv: VecDeque::new(),
            recv_end,
            trailers: None,
            recv_window,
            unacked: 0,
            content_length,
            received: 0,
            send_window,
            local_end: false,
            reset: None,
            answered: false,
            counted: true,
            orphan: false,
            waker: None,
        }
    }

    pub fn closed(&self) -> bool {
        self.reset.is_some() || (self.local_end && self.recv_end)
    }

    pub fn wake(&mut self) {
        if let Some(w) = self.waker.take() {
            w.wake();
        }
    }
}

/// Recently ended stream ids, for telling a late frame on a closed stream from one on a stream
/// that never existed (§5.1: STREAM_CLOSED against PROTOCOL_ERROR), in bounded memory.
pub struct Recent<const N: usize> {
    ids: [u32; N],
    next: usize,
}

impl<const N: usize> Recent<N> {
    pub fn new() -> Self {
        Recent { ids: [0; N], next: 0 }
    }
    pub fn push(&mut self, id: u32) {
        self.ids[self.next] = id;
        self.next = (self.next + 1) % N;
    }
    pub fn contains(&self, id: u32) -> bool {
        id != 0 && self.ids.contains(&id)
    }
    pub fn remove(&mut self, id: u32) {
        if let Some(slot) = self.ids.iter_mut().find(|x| **x == id) {
            *slot = 0;
        }
    }
}

pub struct Inner {
    pub streams: Streams,
    pub out: Out,
    /// Open streams (not closed both ways nor reset).
    pub active: usize,
    /// Streams given a final response head over the connection's life.
    pub answered: usize,
    pub conn_send_window: i64,
    /// The client's SETTINGS_INITIAL_WINDOW_SIZE, for new streams.
    pub init_send_window: i64,
    /// The client's SETTINGS_MAX_FRAME_SIZE.
    pub max_frame: usize,
    pub conn_recv_window: i64,
    pub conn_unacked: u32,
    /// Our windows, as announced: a WINDOW_UPDATE goes out when half of one was consumed.
    pub stream_window: u32,
    pub conn_window: u32,
    /// Output beyond which senders wait for the socket.
    pub out_limit: usize,
    /// Streams waiting for window or for room in the output.
    pub blocked: Vec<u32>,
    pub driver: Option<Waker>,
    /// A stream woke the driver since it last ran (one wake per batch of output).
    pub driver_woken: bool,
    /// Streams the client reset, and streams that ended normally.
    pub peer_closed: Recent<64>,
    /// Streams we reset: frames the client sent before it saw that are dropped.
    pub local_reset: Recent<64>,
    /// Answered streams whose short remaining request body is read and dropped rather than
    /// reset with NO_ERROR (§8.1): the client may be sending it already, and a reset would
    /// leave a body that overruns its Content-Length, or frames after the client's own
    /// RST_STREAM, unanswered. Bounded; the rest are reset.
    pub orphans: usize,
    /// The connection is over: every stream operation fails.
    pub dead: bool,
}

impl Inner {
    pub fn new(stream_window: u32, conn_window: u32, out_limit: usize) -> Inner {
        Inner {
            streams: Streams::default(),
            out: Out::default(),
            active: 0,
            answered: 0,
            conn_send_window: frame::DEFAULT_WINDOW,
            init_send_window: frame::DEFAULT_WINDOW,
            max_frame: frame::DEFAULT_MAX_FRAME as usize,
            conn_recv_window: i64::from(conn_window),
            conn_unacked: 0,
            stream_window,
            conn_window,
            out_limit,
            blocked: Vec::new(),
            driver: None,
            driver_woken: false,
            peer_closed: Recent::new(),
            local_reset: Recent::new(),
            orphans: 0,
            dead: false,
        }
    }

    /// Wakes the driver to write what was queued, once per batch.
    pub fn wake_driver(&mut self) {
        if !self.driver_woken {
            self.driver_woken = true;
            if let Some(w) = &self.driver {
                w.wake_by_ref();
            }
        }
    }

    /// Takes a stream out of the open count once it is closed.
    pub fn settle(&mut self, id: u32) {
        if let Some(s) = self.streams.get_mut(&id) {
            if s.counted && s.closed() {
                s.counted = false;
                self.active -= 1;
            }
        }
    }

    /// Ends an orphan: closed by the client (`peer`) or reset by us.
    pub fn end_orphan(&mut self, id: u32, peer: bool) {
        self.streams.remove(&id);
        self.orphans -= 1;
        if peer {
            self.peer_closed.push(id);
        } else {
            self.local_reset.push(id);
        }
    }

    /// A stream error (§5.4.2): RST_STREAM, and the handler sees the reset.
    pub fn reset_stream(&mut self, id: u32, reason: Reason) {
        frame::put_rst(&mut self.out.buf, id, reason);
        if self.streams.get(&id).is_some_and(|s| s.orphan) {
            return self.end_orphan(id, false);
        }
        match self.streams.get_mut(&id) {
            Some(s) => {
                s.reset = Some(Reset::Local(reason));
                s.wake();
                self.settle(id);
            }
            None => self.local_reset.push(id),
        }
    }

    /// Gives `n` received bytes back to the connection window.
    pub fn release_conn(&mut self, n: usize) {
        self.conn_unacked += n as u32;
        if self.conn_unacked >= self.conn_window / 2 {
            frame::put_window_update(&mut self.out.buf, 0, self.conn_unacked);
            self.conn_recv_window += i64::from(self.conn_unacked);
            self.conn_unacked = 0;
            self.wake_driver();
        }
    }

    /// Wakes the streams waiting for window or output room.
    pub fn wake_blocked(&mut self) {
        for id in self.blocked.drain(..) {
            if let Some(s) = self.streams.get_mut(&id) {
                s.wake();
            }
        }
    }
}
