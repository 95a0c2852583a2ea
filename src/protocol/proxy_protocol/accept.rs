//! Reading a PROXY header off a connection just accepted, before TLS or the app sees it.
//!
//! The header is peeked, not read, until its end is known; then exactly its bytes are consumed.
//! So nothing after it is ever taken from the socket, the app gets the stream as the client sent
//! it (no replay buffer in front of every later read), and in the optional mode a connection
//! without a header loses nothing.

use std::io;
use std::time::Duration;

use tokio::io::AsyncReadExt;

use super::parse::{self, Probe, V1_MAX};
use super::{Cidr, PpError, ProxyHeader};
use crate::protocol::stream::{SocketAddr, Stream};

/// Whether a header must come first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AcceptMode {
    /// Every connection starts with a header; one that does not is closed.
    Required,
    /// A header is read when one is there; a connection without one is served as it is.
    Optional,
}

/// A listener's PROXY protocol settings.
#[derive(Debug, Clone)]
pub struct AcceptPolicy {
    /// Required or optional.
    pub mode: AcceptMode,
    /// Who may send a header (empty: any source). A header from anyone else closes the
    /// connection; in the optional mode an untrusted source without a header is served.
    pub trusted: Vec<Cidr>,
    /// Whether clients on a Unix socket endpoint may send one (they have no IP address to check).
    pub trust_unix: bool,
    /// How long the header may take to arrive.
    pub timeout: Duration,
}

impl AcceptPolicy {
    /// Required headers from any source, within 10 s.
    pub fn required() -> Self {
        AcceptPolicy {
            mode: AcceptMode::Required,
            trusted: Vec::new(),
            trust_unix: true,
            timeout: Duration::from_secs(10),
        }
    }

    fn trusts(&self, peer: Option<&SocketAddr>) -> bool {
        match peer {
            Some(SocketAddr::Inet(a)) => {
                self.trusted.is_empty() || self.trusted.iter().any(|c| c.contains(a.ip()))
            }
            Some(SocketAddr::Unix(_)) => self.trust_unix,
            None => false,
        }
    }
}

/// Why a connection was refused.
#[derive(Debug)]
pub enum Refusal {
    /// A malformed header.
    Malformed(PpError),
    /// A header (or, in the required mode, a connection) from a source not trusted.
    Untrusted,
    /// No header where one is required.
    Missing,
    /// The connection ended or failed before the header was complete.
    Io(io::Error),
    /// The header did not arrive in time.
    Timeout,
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Refusal::Malformed(e) => write!(f, "malformed PROXY header ({e})"),
            Refusal::Untrusted => f.write_str("PROXY header from an untrusted source"),
            Refusal::Missing => f.write_str("no PROXY header on a listener that requires one"),
            Refusal::Io(e) => write!(f, "connection failed before its PROXY header ended ({e})"),
            Refusal::Timeout => f.write_str("PROXY header not received in time"),
        }
    }
}

/// Reads the header `policy` asks for off `stream` (a TCP or Unix stream, before any TLS).
/// `Ok(None)`: no header, and the optional mode lets the connection go on without one.
pub async fn read_header(stream: &mut Stream, policy: &AcceptPolicy) -> Result<Option<ProxyHeader>, Refusal> {
    let trusted = policy.trusts(stream.peer_addr().as_ref());
    if !trusted && policy.mode == AcceptMode::Required {
        return Err(Refusal::Untrusted);
    }
    match tokio::time::timeout(policy.timeout, read(stream, trusted, policy.mode)).await {
        Ok(r) => r,
        Err(_) => Err(Refusal::Timeout),
    }
}

async fn read(stream: &mut Stream, trusted: bool, mode: AcceptMode) -> Result<Option<ProxyHeader>, Refusal> {
    let mut peeked = [0u8; V1_MAX];
    let mut seen = 0;
    let len = loop {
        seen = crate::protocol::peek::peek_more(stream, &mut peeked, seen).await.map_err(Refusal::Io)?;
        if seen == 0 {
            return Err(Refusal::Io(io::ErrorKind::UnexpectedEof.into()));
        }
        match parse::probe(&peeked[..seen]).map_err(Refusal::Malformed)? {
            Probe::NotProxy if mode == AcceptMode::Optional => return Ok(None),
            Probe::NotProxy => return Err(Refusal::Missing),
            Probe::Incomplete => continue,
            Probe::Length(n) => break n,
        }
    };
    if !trusted {
        return Err(Refusal::Untrusted);
    }
    // Every byte up to `len` is the header's: consuming them takes nothing of the app's.
    let mut buf = vec![0u8; len];
    stream.read_exact(&mut buf).await.map_err(Refusal::Io)?;
    match parse::parse(&buf) {
        Ok(Some(p)) => Ok(Some(p.header)),
        Ok(None) => Err(Refusal::Malformed(PpError("header shorter than its length"))),
        Err(e) => Err(Refusal::Malformed(e)),
    }
}
