//! Reading a PROXY header, v1 (a text line) or v2 (binary), strictly: every length is checked
//! against the bytes there, every TLV must end inside the header and every SSL sub-TLV inside
//! its TLV. Anything else is an error and the connection is closed by the caller; nothing is
//! guessed.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use bytes::Bytes;

use super::*;

/// The v2 signature.
pub const V2_SIGNATURE: &[u8; 12] = b"\r\n\r\n\0\r\nQUIT\n";
/// The v1 prefix.
pub const V1_PREFIX: &[u8; 6] = b"PROXY ";
/// The longest v1 line, CRLF included (the specification's bound).
/// cbindgen:ignore
pub const V1_MAX: usize = 107;
/// The fixed part of a v2 header (signature, version and command, family, length).
/// cbindgen:ignore
pub const V2_FIXED: usize = 16;

/// Why a header was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PpError(pub &'static str);

impl std::fmt::Display for PpError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.0)
    }
}

impl std::error::Error for PpError {}

/// What the first bytes of a connection are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Probe {
    /// Not a PROXY header (no signature).
    NotProxy,
    /// A prefix of one: more bytes are needed to tell or to find its end.
    Incomplete,
    /// A header of this many bytes (v1: through its CRLF; v2: fixed part plus its length).
    Length(usize),
}

/// A header read whole.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Parsed {
    /// What it carried.
    pub header: ProxyHeader,
    /// Its length in bytes; what follows is the connection's own data.
    pub len: usize,
}

fn is_prefix(buf: &[u8], sig: &[u8]) -> bool {
    let n = buf.len().min(sig.len());
    buf[..n] == sig[..n]
}

/// Tells from the first bytes whether a header starts here and how long it is.
pub fn probe(buf: &[u8]) -> Result<Probe, PpError> {
    if is_prefix(buf, V2_SIGNATURE) {
        if buf.len() < V2_FIXED {
            return Ok(Probe::Incomplete);
        }
        let len = u16::from_be_bytes([buf[14], buf[15]]) as usize;
        return Ok(Probe::Length(V2_FIXED + len));
    }
    if is_prefix(buf, V1_PREFIX) {
        let window = &buf[..buf.len().min(V1_MAX)];
        return match window.windows(2).position(|w| w == b"\r\n") {
            Some(i) => Ok(Probe::Length(i + 2)),
            None if buf.len() >= V1_MAX => Err(PpError("v1: no CRLF within 107 bytes")),
            None => Ok(Probe::Incomplete),
        };
    }
    Ok(Probe::NotProxy)
}

/// Parses the header at the start of `buf`. `Ok(None)`: `buf` does not hold a whole header yet
/// (or is not one: see [`probe`]).
pub fn parse(buf: &[u8]) -> Result<Option<Parsed>, PpError> {
    let len = match probe(buf)? {
        Probe::Length(n) if buf.len() >= n => n,
        _ => return Ok(None),
    };
    let header = if buf[0] == b'P' { v1(&buf[V1_PREFIX.len()..len - 2])? } else { v2(&buf[..len])? };
    Ok(Some(Parsed { header, len }))
}

fn v1(line: &[u8]) -> Result<ProxyHeader, PpError> {
    let line = std::str::from_utf8(line).map_err(|_| PpError("v1: not ASCII"))?;
    let mut parts = line.split(' ');
    let proto = parts.next().unwrap_or_default();
    if proto == "UNKNOWN" {
        // The specification lets the rest of an UNKNOWN line be anything; only the bound applies.
        return Ok(ProxyHeader { version: 1, addrs: None, tlvs: Vec::new() });
    }
    let v6 = match proto {
        "TCP4" => false,
        "TCP6" => true,
        _ => return Err(PpError("v1: protocol is not TCP4, TCP6 or UNKNOWN")),
    };
    let fields: Vec<&str> = parts.collect();
    let [src, dst, sport, dport] = fields[..] else {
        return Err(PpError("v1: not four fields after the protocol"));
    };
    let ip = |s: &str| -> Result<IpAddr, PpError> {
        if v6 {
            s.parse::<Ipv6Addr>().map(IpAddr::V6).map_err(|_| PpError("v1: bad IPv6 address"))
        } else {
            s.parse::<Ipv4Addr>().map(IpAddr::V4).map_err(|_| PpError("v1: bad IPv4 address"))
        }
    };
    let src = SocketAddr::new(ip(src)?, port(sport)?);
    let dst = SocketAddr::new(ip(dst)?, port(dport)?);
    Ok(ProxyHeader { version: 1, addrs: Some((src, dst)), tlvs: Vec::new() })
}

/// A decimal port: digits only, no sign, no leading zero, at most 65535.
fn port(s: &str) -> Result<u16, PpError> {
    let ok = !s.is_empty()
        && s.len() <= 5
        && s.bytes().all(|b| b.is_ascii_digit())
        && (s == "0" || !s.starts_with('0'));
    if !ok {
        return Err(PpError("v1: bad port"));
    }
    s.parse().map_err(|_| PpError("v1: port above 65535"))
}

const AF_UNSPEC: u8 = 0;
const AF_INET: u8 = 1;
const AF_INET6: u8 = 2;
const AF_UNIX: u8 = 3;
const PROTO_UNSPEC: u8 = 0;
const PROTO_STREAM: u8 = 1;
const PROTO_DGRAM: u8 = 2;

fn v2(buf: &[u8]) -> Result<ProxyHeader, PpError> {
    let (ver, cmd) = (buf[12] >> 4, buf[12] & 0x0f);
    if ver != 2 {
        return Err(PpError("v2: version is not 2"));
    }
    let local = match cmd {
        0 => true,
        1 => false,
        _ => return Err(PpError("v2: command is neither LOCAL nor PROXY")),
    };
    let (af, proto) = (buf[13] >> 4, buf[13] & 0x0f);
    let addr_len = match af {
        AF_UNSPEC => 0,
        AF_INET => 12,
        AF_INET6 => 36,
        AF_UNIX => 216,
        _ => return Err(PpError("v2: unknown address family")),
    };
    match (af, proto) {
        (_, PROTO_STREAM) if af != AF_UNSPEC => {}
        (AF_UNSPEC, PROTO_UNSPEC) => {}
        (_, PROTO_DGRAM) => return Err(PpError("v2: a datagram header on a stream connection")),
        (AF_UNSPEC, _) | (_, PROTO_UNSPEC) => return Err(PpError("v2: family and protocol disagree")),
        _ => return Err(PpError("v2: unknown transport protocol")),
    }
    let body = &buf[V2_FIXED..];
    if body.len() < addr_len {
        return Err(PpError("v2: length shorter than the address block"));
    }
    let a = &body[..addr_len];
    let addrs = match af {
        _ if local => None,
        AF_INET => {
            let ip = |o: usize| IpAddr::V4(Ipv4Addr::new(a[o], a[o + 1], a[o + 2], a[o + 3]));
            let port = |o: usize| u16::from_be_bytes([a[o], a[o + 1]]);
            Some((SocketAddr::new(ip(0), port(8)), SocketAddr::new(ip(4), port(10))))
        }
        AF_INET6 => {
            let ip = |o: usize| IpAddr::V6(Ipv6Addr::from(<[u8; 16]>::try_from(&a[o..o + 16]).unwrap()));
            let port = |o: usize| u16::from_be_bytes([a[o], a[o + 1]]);
            Some((SocketAddr::new(ip(0), port(32)), SocketAddr::new(ip(16), port(34))))
        }
        _ => None, // UNSPEC, or Unix paths: no IP address to carry
    };
    let raw = Bytes::copy_from_slice(&body[addr_len..]);
    let tlvs = tlvs(&raw)?;
    for (kind, v) in &tlvs {
        check_tlv(*kind, v)?;
        if *kind == PP2_TYPE_CRC32C {
            // `v` slices `raw`, which copies the header from `V2_FIXED + addr_len` on.
            let at = V2_FIXED + addr_len + (v.as_ptr() as usize - raw.as_ptr() as usize);
            check_crc(buf, at)?;
        }
    }
    Ok(ProxyHeader { version: 2, addrs, tlvs })
}

/// Splits a TLV block; every TLV must end inside it.
fn tlvs(raw: &Bytes) -> Result<Vec<(u8, Bytes)>, PpError> {
    let mut out = Vec::new();
    let mut at = 0;
    while at < raw.len() {
        if raw.len() - at < 3 {
            return Err(PpError("v2: truncated TLV"));
        }
        let kind = raw[at];
        let len = u16::from_be_bytes([raw[at + 1], raw[at + 2]]) as usize;
        at += 3;
        if len > raw.len() - at {
            return Err(PpError("v2: TLV runs past the header"));
        }
        out.push((kind, raw.slice(at..at + len)));
        at += len;
    }
    Ok(out)
}

/// The sub-TLVs of a `PP2_TYPE_SSL` value (after its client byte and verify word).
pub(super) fn sub_tlvs(ssl: &Bytes) -> Result<Vec<(u8, Bytes)>, PpError> {
    if ssl.len() < 5 {
        return Err(PpError("v2: SSL TLV shorter than its fixed part"));
    }
    tlvs(&ssl.slice(5..))
}

fn check_tlv(kind: u8, v: &Bytes) -> Result<(), PpError> {
    match kind {
        PP2_TYPE_ALPN if v.is_empty() => Err(PpError("v2: empty ALPN TLV")),
        PP2_TYPE_AUTHORITY if std::str::from_utf8(v).is_err() => Err(PpError("v2: authority is not UTF-8")),
        PP2_TYPE_UNIQUE_ID if v.len() > 128 => Err(PpError("v2: unique id longer than 128 bytes")),
        PP2_TYPE_CRC32C if v.len() != 4 => Err(PpError("v2: CRC32c TLV is not 4 bytes")),
        PP2_TYPE_SSL => sub_tlvs(v).map(|_| ()),
        _ => Ok(()),
    }
}

/// The CRC32c TLV holds the checksum of the whole header computed with its own value zeroed;
/// `at` is where that value starts in `header`.
fn check_crc(header: &[u8], at: usize) -> Result<(), PpError> {
    let got = u32::from_be_bytes(header[at..at + 4].try_into().expect("checked 4 bytes"));
    let mut zeroed = header.to_vec();
    zeroed[at..at + 4].fill(0);
    if crc32c(&zeroed) != got {
        return Err(PpError("v2: CRC32c mismatch"));
    }
    Ok(())
}

/// CRC-32C (Castagnoli), bitwise: it runs over one small header per connection that carries it.
pub fn crc32c(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in data {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 != 0 { (crc >> 1) ^ 0x82f6_3b78 } else { crc >> 1 };
        }
    }
    !crc
}
