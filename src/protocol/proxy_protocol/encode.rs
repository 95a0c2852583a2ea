//! Writing a PROXY header for a peer: the client's address and the one it connected to.

use std::net::{IpAddr, SocketAddr};

use super::parse::{V1_PREFIX, V2_SIGNATURE};

/// Both addresses in one family: IPv4 when both are (or are IPv4-mapped), else IPv6 with any
/// IPv4 address mapped (`::ffff:a.b.c.d`), as a header has room for one family only.
fn same_family(src: SocketAddr, dst: SocketAddr) -> (SocketAddr, SocketAddr) {
    let canon = |a: SocketAddr| SocketAddr::new(a.ip().to_canonical(), a.port());
    let (s, d) = (canon(src), canon(dst));
    if s.is_ipv4() == d.is_ipv4() {
        return (s, d);
    }
    let v6 = |a: SocketAddr| match a.ip() {
        IpAddr::V4(v4) => SocketAddr::new(IpAddr::V6(v4.to_ipv6_mapped()), a.port()),
        IpAddr::V6(_) => a,
    };
    (v6(s), v6(d))
}

/// A v1 line; `None` (a client on a Unix socket) is `PROXY UNKNOWN`.
pub fn v1(addrs: Option<(SocketAddr, SocketAddr)>) -> Vec<u8> {
    let mut out = V1_PREFIX.to_vec();
    match addrs.map(|(s, d)| same_family(s, d)) {
        Some((s, d)) => {
            let proto = if s.is_ipv4() { "TCP4" } else { "TCP6" };
            let line = format!("{proto} {} {} {} {}\r\n", s.ip(), d.ip(), s.port(), d.port());
            out.extend_from_slice(line.as_bytes());
        }
        None => out.extend_from_slice(b"UNKNOWN\r\n"),
    }
    out
}

/// A v2 header with the PROXY command and `tlvs` (each value at most 65535 bytes, the whole at
/// most 65535 bytes past the fixed part); `None` addresses are sent as AF_UNSPEC.
pub fn v2(addrs: Option<(SocketAddr, SocketAddr)>, tlvs: &[(u8, &[u8])]) -> Vec<u8> {
    let mut out = V2_SIGNATURE.to_vec();
    out.push(0x21); // version 2, PROXY
    let mut body = Vec::with_capacity(36);
    let fam = match addrs.map(|(s, d)| same_family(s, d)) {
        Some((s, d)) => {
            match (s.ip(), d.ip()) {
                (IpAddr::V4(a), IpAddr::V4(b)) => {
                    body.extend_from_slice(&a.octets());
                    body.extend_from_slice(&b.octets());
                }
                (IpAddr::V6(a), IpAddr::V6(b)) => {
                    body.extend_from_slice(&a.octets());
                    body.extend_from_slice(&b.octets());
                }
                _ => unreachable!("same_family gives one family"),
            }
            body.extend_from_slice(&s.port().to_be_bytes());
            body.extend_from_slice(&d.port().to_be_bytes());
            if s.is_ipv4() {
                0x11
            } else {
                0x21
            }
        }
        None => 0x00,
    };
    out.push(fam);
    for (kind, v) in tlvs {
        body.push(*kind);
        body.extend_from_slice(&(v.len() as u16).to_be_bytes());
        body.extend_from_slice(v);
    }
    out.extend_from_slice(&(body.len() as u16).to_be_bytes());
    out.extend_from_slice(&body);
    out
}
