//! The PROXY protocol (HAProxy's, versions 1 and 2): a load balancer in front of us says, before
//! the connection's first byte, which client and which address it accepted the connection for;
//! and we say the same to peers that want it.
//!
//! [`parse`] reads a header strictly (every length checked against what is there, every TLV
//! inside its parent), [`encode`] writes one, and [`accept`] reads it off a fresh connection
//! without taking a byte of what follows (it peeks first, so the app gets the stream untouched).

pub mod accept;
mod cidr;
pub mod encode;
pub mod parse;

use std::net::SocketAddr;

use bytes::Bytes;

pub use accept::{AcceptMode, AcceptPolicy};
pub use cidr::Cidr;
pub use parse::{parse, Parsed, PpError};

/// TLV type: the ALPN the client negotiated with the sender (`h2`).
/// cbindgen:ignore
pub const PP2_TYPE_ALPN: u8 = 0x01;
/// TLV type: the host name the client asked for (SNI or Host), UTF-8.
/// cbindgen:ignore
pub const PP2_TYPE_AUTHORITY: u8 = 0x02;
/// TLV type: a CRC32c of the whole header (checked when present).
/// cbindgen:ignore
pub const PP2_TYPE_CRC32C: u8 = 0x03;
/// TLV type: padding, ignored.
/// cbindgen:ignore
pub const PP2_TYPE_NOOP: u8 = 0x04;
/// TLV type: an opaque connection id (at most 128 bytes).
/// cbindgen:ignore
pub const PP2_TYPE_UNIQUE_ID: u8 = 0x05;
/// TLV type: facts about the client's TLS session, with sub-TLVs of its own.
/// cbindgen:ignore
pub const PP2_TYPE_SSL: u8 = 0x20;
/// Sub-TLV of `PP2_TYPE_SSL`: the TLS version (`TLSv1.3`).
/// cbindgen:ignore
pub const PP2_SUBTYPE_SSL_VERSION: u8 = 0x21;
/// Sub-TLV of `PP2_TYPE_SSL`: the client certificate's Common Name.
/// cbindgen:ignore
pub const PP2_SUBTYPE_SSL_CN: u8 = 0x22;
/// Sub-TLV of `PP2_TYPE_SSL`: the cipher.
/// cbindgen:ignore
pub const PP2_SUBTYPE_SSL_CIPHER: u8 = 0x23;
/// Sub-TLV of `PP2_TYPE_SSL`: the signature algorithm of the certificate.
/// cbindgen:ignore
pub const PP2_SUBTYPE_SSL_SIG_ALG: u8 = 0x24;
/// Sub-TLV of `PP2_TYPE_SSL`: the key algorithm of the certificate.
/// cbindgen:ignore
pub const PP2_SUBTYPE_SSL_KEY_ALG: u8 = 0x25;
/// TLV type: the network namespace the sender accepted in.
/// cbindgen:ignore
pub const PP2_TYPE_NETNS: u8 = 0x30;

/// What a PROXY header carried.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProxyHeader {
    /// 1 or 2.
    pub version: u8,
    /// The client and the address it connected to; `None` for a v2 LOCAL header (the sender's
    /// own connection, a health check), v1 `UNKNOWN` and v2 UNSPEC or Unix-socket addresses.
    pub addrs: Option<(SocketAddr, SocketAddr)>,
    /// v2 TLVs in the order received (`PP2_TYPE_SSL` whole, sub-TLVs included); none for v1.
    pub tlvs: Vec<(u8, Bytes)>,
}

impl ProxyHeader {
    /// The first TLV of type `kind`. Sub-TLVs of `PP2_TYPE_SSL` are found by their own types
    /// (`PP2_SUBTYPE_SSL_*`), which do not collide with the top-level ones.
    pub fn tlv(&self, kind: u8) -> Option<Bytes> {
        if let Some((_, v)) = self.tlvs.iter().find(|(t, _)| *t == kind) {
            return Some(v.clone());
        }
        let ssl = self.tlvs.iter().find(|(t, _)| *t == PP2_TYPE_SSL)?;
        parse::sub_tlvs(&ssl.1).ok()?.into_iter().find(|(t, _)| *t == kind).map(|(_, v)| v)
    }

    /// The client's address it carries.
    pub fn source(&self) -> Option<SocketAddr> {
        self.addrs.map(|a| a.0)
    }

    /// The address the client connected to, as the sender saw it.
    pub fn destination(&self) -> Option<SocketAddr> {
        self.addrs.map(|a| a.1)
    }
}

#[cfg(test)]
#[path = "../../../tests/support/pp_corpus.rs"]
mod corpus;

#[cfg(test)]
mod tests {
    use super::parse::{crc32c, probe, Probe};
    use super::*;

    fn whole(buf: &[u8]) -> Parsed {
        parse(buf).unwrap().expect("a whole header")
    }

    #[test]
    fn v1_and_v2_round_trip_through_the_encoder() {
        let s: SocketAddr = "192.0.2.7:40000".parse().unwrap();
        let d: SocketAddr = "198.51.100.1:443".parse().unwrap();
        for h in [encode::v1(Some((s, d))), encode::v2(Some((s, d)), &[(PP2_TYPE_ALPN, b"h2")])] {
            let mut buf = h.clone();
            buf.extend_from_slice(b"GET / HTTP/1.1\r\n\r\n");
            let p = whole(&buf);
            assert_eq!(p.len, h.len(), "the header's bytes and not one more");
            assert_eq!(p.header.addrs, Some((s, d)));
        }
        let p =
            whole(&encode::v2(Some((s, d)), &[(PP2_TYPE_ALPN, b"h2"), (PP2_TYPE_AUTHORITY, b"example.com")]));
        assert_eq!(p.header.tlv(PP2_TYPE_AUTHORITY).as_deref(), Some(&b"example.com"[..]));
        assert_eq!(p.header.tlv(PP2_TYPE_ALPN).as_deref(), Some(&b"h2"[..]));
        let s6: SocketAddr = "[2001:db8::1]:5".parse().unwrap();
        let p = whole(&encode::v1(Some((s6, d))));
        assert_eq!(p.header.source().unwrap().ip(), s6.ip(), "mixed families go as IPv6");
        assert_eq!(whole(&encode::v1(None)).header.addrs, None);
        assert_eq!(whole(&encode::v2(None, &[])).header.addrs, None);
    }

    #[test]
    fn the_longest_lines_of_the_specification_parse() {
        let f = "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff";
        let line = format!("PROXY TCP6 {f} {f} 65535 65535\r\n");
        assert_eq!(line.len(), 104);
        assert_eq!(whole(line.as_bytes()).header.source().unwrap().port(), 65535);
        let p = whole(b"PROXY TCP4 255.255.255.255 255.255.255.255 65535 65535\r\n").header;
        assert_eq!(p.destination().unwrap().to_string(), "255.255.255.255:65535");
    }

    #[test]
    fn ssl_sub_tlvs_and_crc_are_read() {
        let ssl = [&[1u8, 0, 0, 0, 0][..], &[PP2_SUBTYPE_SSL_VERSION, 0, 7], b"TLSv1.3"].concat();
        let mut h = encode::v2(
            Some(("10.0.0.1:1".parse().unwrap(), "10.0.0.2:2".parse().unwrap())),
            &[(PP2_TYPE_SSL, &ssl), (PP2_TYPE_CRC32C, &[0; 4])],
        );
        let n = h.len();
        let crc = crc32c(&h);
        h[n - 4..].copy_from_slice(&crc.to_be_bytes());
        let p = whole(&h).header;
        assert_eq!(p.tlv(PP2_SUBTYPE_SSL_VERSION).as_deref(), Some(&b"TLSv1.3"[..]));
        assert_eq!(crc32c(b"123456789"), 0xe306_9283, "the CRC-32C check value");
    }

    #[test]
    fn local_and_unknown_carry_no_address() {
        let mut local = parse::V2_SIGNATURE.to_vec();
        local.extend_from_slice(&[0x20, 0x00, 0, 0]);
        assert_eq!(whole(&local).header.addrs, None);
        assert_eq!(whole(b"PROXY UNKNOWN ffff::1 whatever\r\n").header.addrs, None);
    }

    #[test]
    fn prefixes_wait_and_other_bytes_are_not_headers() {
        assert_eq!(probe(b"").unwrap(), Probe::Incomplete);
        assert_eq!(probe(b"PRO").unwrap(), Probe::Incomplete);
        assert_eq!(probe(b"\r\n\r\n\0").unwrap(), Probe::Incomplete);
        assert_eq!(probe(b"GET / HTTP/1.1\r\n").unwrap(), Probe::NotProxy);
        assert_eq!(probe(b"\x16\x03\x01").unwrap(), Probe::NotProxy);
        assert_eq!(parse(b"PROXY TCP4 1.2.3.4").unwrap(), None);
    }

    #[test]
    fn every_malformed_header_of_the_corpus_is_refused() {
        let table = corpus::malformed();
        assert!(table.len() >= 30);
        for (name, bytes) in table {
            // A truncated header is refused by the listener when the client stops sending; here it
            // must at least never parse.
            match parse(&bytes) {
                Ok(Some(p)) => panic!("{name}: parsed as {p:?}"),
                Ok(None) => assert!(
                    name.contains("truncated")
                        || name.contains("wrong signature")
                        || name.contains("lowercase"),
                    "{name}: only truncated or non-PROXY bytes may be incomplete"
                ),
                Err(_) => {}
            }
        }
    }
}
