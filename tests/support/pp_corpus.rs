//! Malformed PROXY protocol headers, each of which must close the connection with nothing
//! forwarded. Shared by the parser's unit tests (src/protocol/proxy_protocol) and the loopback
//! test (tests/proxy_protocol.rs), so the same table judges the parser and the listener.

/// The v2 signature.
const SIG: &[u8] = b"\r\n\r\n\0\r\nQUIT\n";

/// A v2 header from its version/command byte, family byte, declared length and body.
fn v2(ver_cmd: u8, fam: u8, len: u16, body: &[u8]) -> Vec<u8> {
    let mut h = SIG.to_vec();
    h.extend_from_slice(&[ver_cmd, fam]);
    h.extend_from_slice(&len.to_be_bytes());
    h.extend_from_slice(body);
    h
}

/// A v2 PROXY TCP4 header (127.0.0.2:1234 -> 127.0.0.1:80) with `tlvs` appended as raw bytes.
fn v2_inet(tlvs: &[u8]) -> Vec<u8> {
    let mut body = vec![127, 0, 0, 2, 127, 0, 0, 1, 0x04, 0xd2, 0, 80];
    body.extend_from_slice(tlvs);
    v2(0x21, 0x11, body.len() as u16, &body)
}

/// `(name, bytes)`: each is sent as a connection's first bytes (followed, for the truncated ones,
/// by the client closing its write side). None of them is a valid header.
pub fn malformed() -> Vec<(&'static str, Vec<u8>)> {
    let addr4 = [127, 0, 0, 2, 127, 0, 0, 1, 0x04, 0xd2, 0, 80];
    let crc_bad = v2_inet(&[0x03, 0, 4, 0xde, 0xad, 0xbe, 0xef]);
    let long_v1 = format!("PROXY TCP4 {} 127.0.0.1 1 2\r\n", "1".repeat(100)).into_bytes();
    vec![
        ("v1 truncated after PROXY", b"PROXY ".to_vec()),
        ("v1 truncated mid-address", b"PROXY TCP4 127.0.".to_vec()),
        ("v1 no CRLF within 107 bytes", [b"PROXY TCP4 ".as_slice(), &[b'1'; 120]].concat()),
        ("v1 over 107 bytes with CRLF", long_v1),
        ("v1 bare LF", b"PROXY TCP4 127.0.0.2 127.0.0.1 1234 80\n GET / HTTP/1.1\r\n\r\n".to_vec()),
        ("v1 lowercase proxy", b"proxy TCP4 127.0.0.2 127.0.0.1 1234 80\r\n".to_vec()),
        ("v1 unknown protocol", b"PROXY UDP4 127.0.0.2 127.0.0.1 1234 80\r\n".to_vec()),
        ("v1 TCP4 with IPv6 addresses", b"PROXY TCP4 ::1 ::1 1234 80\r\n".to_vec()),
        ("v1 TCP6 with IPv4 addresses", b"PROXY TCP6 127.0.0.2 127.0.0.1 1234 80\r\n".to_vec()),
        ("v1 missing destination port", b"PROXY TCP4 127.0.0.2 127.0.0.1 1234\r\n".to_vec()),
        ("v1 extra field", b"PROXY TCP4 127.0.0.2 127.0.0.1 1234 80 9\r\n".to_vec()),
        ("v1 double space", b"PROXY TCP4  127.0.0.2 127.0.0.1 1234 80\r\n".to_vec()),
        ("v1 port above 65535", b"PROXY TCP4 127.0.0.2 127.0.0.1 65536 80\r\n".to_vec()),
        ("v1 port with leading zero", b"PROXY TCP4 127.0.0.2 127.0.0.1 01234 80\r\n".to_vec()),
        ("v1 negative port", b"PROXY TCP4 127.0.0.2 127.0.0.1 -1 80\r\n".to_vec()),
        ("v1 octet above 255", b"PROXY TCP4 127.0.0.256 127.0.0.1 1234 80\r\n".to_vec()),
        ("v1 hostname instead of address", b"PROXY TCP4 localhost 127.0.0.1 1234 80\r\n".to_vec()),
        ("v1 NUL inside", b"PROXY TCP4 127.0.0.2\x00127.0.0.1 1234 80\r\n".to_vec()),
        ("v1 non-ASCII", b"PROXY TCP4 127.0.0.2 127.0.0.1 1234 8\xff\r\n".to_vec()),
        ("v1 empty line", b"PROXY \r\n".to_vec()),
        ("v2 truncated signature", SIG[..8].to_vec()),
        ("v2 truncated fixed part", [SIG, &[0x21, 0x11]].concat()),
        ("v2 truncated body", v2(0x21, 0x11, 12, &addr4[..6])),
        (
            "v2 wrong signature byte",
            [b"\r\n\r\n\0\r\nQUIX\n".as_slice(), &[0x21, 0x11, 0, 12], &addr4].concat(),
        ),
        ("v2 version 1", v2(0x11, 0x11, 12, &addr4)),
        ("v2 version 3", v2(0x31, 0x11, 12, &addr4)),
        ("v2 command 2", v2(0x22, 0x11, 12, &addr4)),
        ("v2 family 4", v2(0x21, 0x41, 12, &addr4)),
        ("v2 datagram", v2(0x21, 0x12, 12, &addr4)),
        ("v2 transport 3", v2(0x21, 0x13, 12, &addr4)),
        ("v2 INET with UNSPEC transport", v2(0x21, 0x10, 12, &addr4)),
        ("v2 UNSPEC family with STREAM", v2(0x21, 0x01, 0, &[])),
        ("v2 INET length below 12", v2(0x21, 0x11, 8, &addr4[..8])),
        ("v2 INET6 length below 36", v2(0x21, 0x21, 12, &addr4)),
        ("v2 UNIX length below 216", v2(0x21, 0x31, 12, &addr4)),
        ("v2 TLV header truncated", v2_inet(&[0x01, 0])),
        ("v2 TLV overruns the header", v2_inet(&[0x01, 0, 9, b'h', b'2'])),
        ("v2 TLV length 0xffff", v2_inet(&[0x02, 0xff, 0xff, b'a'])),
        ("v2 empty ALPN", v2_inet(&[0x01, 0, 0])),
        ("v2 authority not UTF-8", v2_inet(&[0x02, 0, 2, 0xc3, 0x28])),
        ("v2 unique id over 128 bytes", v2_inet(&[[0x05, 0, 129].as_slice(), &[7; 129]].concat())),
        ("v2 CRC32c mismatch", crc_bad),
        ("v2 CRC32c of 3 bytes", v2_inet(&[0x03, 0, 3, 1, 2, 3])),
        ("v2 SSL TLV shorter than its fixed part", v2_inet(&[0x20, 0, 3, 1, 0, 0])),
        ("v2 SSL sub-TLV overruns", v2_inet(&[0x20, 0, 9, 1, 0, 0, 0, 0, 0x21, 0, 9, b'T'])),
        ("v2 SSL sub-TLV truncated", v2_inet(&[0x20, 0, 7, 1, 0, 0, 0, 0, 0x21, 0])),
    ]
}
