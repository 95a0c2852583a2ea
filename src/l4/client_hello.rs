//! The server name (SNI) and ALPN offer of a TLS ClientHello, read by peeking at a connection
//! the L4 proxy passes through without terminating TLS. The bytes stay in the socket for the
//! upstream, which does the handshake.

use std::time::Duration;

use crate::protocol::peek::peek_more;
use crate::protocol::stream::Stream;

/// What a ClientHello offered.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Hello {
    /// The host name of the `server_name` extension.
    pub sni: Option<String>,
    /// The protocols of the ALPN extension, in the client's order.
    pub alpn: Vec<Vec<u8>>,
}

/// The most peeked: a ClientHello in one TLS record (16 KiB of payload and its 5-byte header).
/// One split over several records is not read (its SNI stays unknown).
const MAX_RECORD: usize = 5 + 16384;

/// Peeks until the first TLS record is complete (or `timeout` passes) and reads the hello in
/// it. `None`: not TLS, malformed, or not there in time; the connection goes on either way and
/// the hook decides without the facts.
pub async fn peek(stream: &Stream, timeout: Duration) -> Option<Hello> {
    let mut buf = vec![0u8; MAX_RECORD];
    let fut = async {
        let mut seen = 0;
        loop {
            seen = peek_more(stream, &mut buf, seen).await.ok()?;
            if seen == 0 {
                return None;
            }
            if seen >= 5 {
                if buf[0] != 22 {
                    return None; // not a handshake record
                }
                let need = 5 + u16::from_be_bytes([buf[3], buf[4]]) as usize;
                if need > MAX_RECORD {
                    return None;
                }
                if seen >= need {
                    return parse(&buf[5..need]);
                }
            }
        }
    };
    tokio::time::timeout(timeout, fut).await.ok().flatten()
}

/// A cursor that fails (None) on every overrun.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.0.len() < n {
            return None;
        }
        let (a, b) = self.0.split_at(n);
        self.0 = b;
        Some(a)
    }
    fn u8(&mut self) -> Option<usize> {
        self.take(1).map(|b| b[0] as usize)
    }
    fn u16(&mut self) -> Option<usize> {
        self.take(2).map(|b| u16::from_be_bytes([b[0], b[1]]) as usize)
    }
    fn u24(&mut self) -> Option<usize> {
        self.take(3).map(|b| (b[0] as usize) << 16 | (b[1] as usize) << 8 | b[2] as usize)
    }
    fn vec8(&mut self) -> Option<Reader<'a>> {
        let n = self.u8()?;
        self.take(n).map(Reader)
    }
    fn vec16(&mut self) -> Option<Reader<'a>> {
        let n = self.u16()?;
        self.take(n).map(Reader)
    }
}

/// Reads a handshake message that must be a ClientHello (RFC 8446 §4.1.2).
pub fn parse(record: &[u8]) -> Option<Hello> {
    let mut r = Reader(record);
    if r.u8()? != 1 {
        return None;
    }
    let len = r.u24()?;
    let mut r = Reader(r.take(len)?);
    r.take(2 + 32)?; // legacy_version, random
    r.vec8()?; // legacy_session_id
    r.vec16()?; // cipher_suites
    r.vec8()?; // legacy_compression_methods
    let mut hello = Hello::default();
    if r.0.is_empty() {
        return Some(hello); // no extensions at all
    }
    let mut exts = r.vec16()?;
    while !exts.0.is_empty() {
        let kind = exts.u16()?;
        let mut body = exts.vec16()?;
        match kind {
            0 => {
                let mut list = body.vec16()?;
                while !list.0.is_empty() {
                    let name_type = list.u8()?;
                    let name = list.vec16()?;
                    if name_type == 0 {
                        hello.sni = Some(std::str::from_utf8(name.0).ok()?.to_ascii_lowercase());
                    }
                }
            }
            16 => {
                let mut list = body.vec16()?;
                while !list.0.is_empty() {
                    hello.alpn.push(list.vec8()?.0.to_vec());
                }
            }
            _ => {}
        }
    }
    Some(hello)
}
