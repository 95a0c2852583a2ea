//! HTTP/2 frame layout (RFC 9113 §4, §6): the 9-byte frame header, the error codes and settings
//! this server reads, and writers that put control frames straight into the connection's output.

use bytes::{BufMut, BytesMut};

pub(super) const DATA: u8 = 0x0;
pub(super) const HEADERS: u8 = 0x1;
pub(super) const PRIORITY: u8 = 0x2;
pub(super) const RST_STREAM: u8 = 0x3;
pub(super) const SETTINGS: u8 = 0x4;
pub(super) const PUSH_PROMISE: u8 = 0x5;
pub(super) const PING: u8 = 0x6;
pub(super) const GOAWAY: u8 = 0x7;
pub(super) const WINDOW_UPDATE: u8 = 0x8;
pub(super) const CONTINUATION: u8 = 0x9;

pub(super) const END_STREAM: u8 = 0x1;
pub(super) const ACK: u8 = 0x1;
pub(super) const END_HEADERS: u8 = 0x4;
pub(super) const PADDED: u8 = 0x8;
pub(super) const PRIORITY_FLAG: u8 = 0x20;

pub(super) const HEADER_LEN: usize = 9;
/// SETTINGS_MAX_FRAME_SIZE's initial value, which we never raise: larger frames would only
/// lengthen the time one stream holds the connection's output.
pub(super) const DEFAULT_MAX_FRAME: u32 = 16_384;
pub(super) const MAX_WINDOW: i64 = (1 << 31) - 1;
pub(super) const DEFAULT_WINDOW: i64 = 65_535;

pub(super) const SETTINGS_ENABLE_PUSH: u16 = 0x2;
pub(super) const SETTINGS_MAX_CONCURRENT_STREAMS: u16 = 0x3;
pub(super) const SETTINGS_INITIAL_WINDOW_SIZE: u16 = 0x4;
pub(super) const SETTINGS_MAX_FRAME_SIZE: u16 = 0x5;
pub(super) const SETTINGS_MAX_HEADER_LIST_SIZE: u16 = 0x6;

/// RFC 9113 §7 error codes.
///
/// cbindgen:ignore
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reason(pub u32);

impl Reason {
    /// Graceful close, or a stream no longer needed.
    /// cbindgen:ignore
    pub const NO_ERROR: Reason = Reason(0x0);
    /// The peer broke the protocol.
    /// cbindgen:ignore
    pub const PROTOCOL_ERROR: Reason = Reason(0x1);
    /// Something failed on our side.
    /// cbindgen:ignore
    pub const INTERNAL_ERROR: Reason = Reason(0x2);
    /// A flow-control window was overrun.
    /// cbindgen:ignore
    pub const FLOW_CONTROL_ERROR: Reason = Reason(0x3);
    /// A frame for a stream already closed.
    /// cbindgen:ignore
    pub const STREAM_CLOSED: Reason = Reason(0x5);
    /// A frame of the wrong size.
    /// cbindgen:ignore
    pub const FRAME_SIZE_ERROR: Reason = Reason(0x6);
    /// Refused before any processing: safe to retry.
    /// cbindgen:ignore
    pub const REFUSED_STREAM: Reason = Reason(0x7);
    /// The stream is no longer needed.
    /// cbindgen:ignore
    pub const CANCEL: Reason = Reason(0x8);
    /// The HPACK state is broken.
    /// cbindgen:ignore
    pub const COMPRESSION_ERROR: Reason = Reason(0x9);
    /// Abuse (floods, resets).
    /// cbindgen:ignore
    pub const ENHANCE_YOUR_CALM: Reason = Reason(0xb);

    fn name(self) -> Option<&'static str> {
        Some(match self.0 {
            0x0 => "NO_ERROR",
            0x1 => "PROTOCOL_ERROR",
            0x2 => "INTERNAL_ERROR",
            0x3 => "FLOW_CONTROL_ERROR",
            0x4 => "SETTINGS_TIMEOUT",
            0x5 => "STREAM_CLOSED",
            0x6 => "FRAME_SIZE_ERROR",
            0x7 => "REFUSED_STREAM",
            0x8 => "CANCEL",
            0x9 => "COMPRESSION_ERROR",
            0xa => "CONNECT_ERROR",
            0xb => "ENHANCE_YOUR_CALM",
            0xc => "INADEQUATE_SECURITY",
            0xd => "HTTP_1_1_REQUIRED",
            _ => return None,
        })
    }
}

impl std::fmt::Display for Reason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.name() {
            Some(n) => f.write_str(n),
            None => write!(f, "error code {:#x}", self.0),
        }
    }
}

/// A frame header as read.
#[derive(Debug, Clone, Copy)]
pub(super) struct Head {
    pub len: usize,
    pub kind: u8,
    pub flags: u8,
    pub stream: u32,
}

impl Head {
    /// Reads the header at the start of `b` (at least [`HEADER_LEN`] bytes). The reserved bit of
    /// the stream id is ignored, as §4.1 requires.
    pub fn parse(b: &[u8]) -> Head {
        Head {
            len: (usize::from(b[0]) << 16) | (usize::from(b[1]) << 8) | usize::from(b[2]),
            kind: b[3],
            flags: b[4],
            stream: u32::from_be_bytes([b[5], b[6], b[7], b[8]]) & 0x7fff_ffff,
        }
    }
}

/// Writes a frame header.
pub(super) fn put_head(out: &mut BytesMut, len: usize, kind: u8, flags: u8, stream: u32) {
    out.put_slice(&[(len >> 16) as u8, (len >> 8) as u8, len as u8, kind, flags]);
    out.put_u32(stream);
}

pub(super) fn put_settings(out: &mut BytesMut, settings: &[(u16, u32)]) {
    put_head(out, settings.len() * 6, SETTINGS, 0, 0);
    for (id, value) in settings {
        out.put_u16(*id);
        out.put_u32(*value);
    }
}

pub(super) fn put_settings_ack(out: &mut BytesMut) {
    put_head(out, 0, SETTINGS, ACK, 0);
}

pub(super) fn put_window_update(out: &mut BytesMut, stream: u32, increment: u32) {
    put_head(out, 4, WINDOW_UPDATE, 0, stream);
    out.put_u32(increment);
}

pub(super) fn put_rst(out: &mut BytesMut, stream: u32, reason: Reason) {
    put_head(out, 4, RST_STREAM, 0, stream);
    out.put_u32(reason.0);
}

pub(super) fn put_goaway(out: &mut BytesMut, last_stream: u32, reason: Reason) {
    put_head(out, 8, GOAWAY, 0, 0);
    out.put_u32(last_stream);
    out.put_u32(reason.0);
}

pub(super) fn put_ping_ack(out: &mut BytesMut, payload: &[u8]) {
    put_head(out, 8, PING, ACK, 0);
    out.put_slice(payload);
}

/// The payload of a frame that may be padded (DATA, HEADERS): without the pad length byte and
/// the padding, or `None` when the padding does not fit (§6.1: a PROTOCOL_ERROR).
pub(super) fn unpad(flags: u8, payload: &[u8]) -> Option<std::ops::Range<usize>> {
    if flags & PADDED == 0 {
        return Some(0..payload.len());
    }
    let pad = usize::from(*payload.first()?);
    (pad < payload.len()).then(|| 1..payload.len() - pad)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_round_trips_and_ignores_the_reserved_bit() {
        let mut b = BytesMut::new();
        put_head(&mut b, 0x01_02_03, HEADERS, END_HEADERS, 7);
        let h = Head::parse(&b);
        assert_eq!((h.len, h.kind, h.flags, h.stream), (0x01_02_03, HEADERS, END_HEADERS, 7));
        b[5] |= 0x80;
        assert_eq!(Head::parse(&b).stream, 7);
    }

    #[test]
    fn padding_is_checked() {
        assert_eq!(unpad(0, b"abc"), Some(0..3));
        assert_eq!(unpad(PADDED, b"\x01ab"), Some(1..2));
        assert_eq!(unpad(PADDED, b"\x02ab"), Some(1..1));
        assert_eq!(unpad(PADDED, b"\x03ab"), None);
        assert_eq!(unpad(PADDED, b""), None);
    }
}
