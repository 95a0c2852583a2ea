//! Response header encoding. Fields are never added to a dynamic table, so the encoder holds no
//! table, never sends size updates, and a peer's SETTINGS_HEADER_TABLE_SIZE cannot make it
//! allocate. Strings are sent raw: Huffman would save some bytes but costs CPU on every field.

use bytes::{BufMut, BytesMut};

/// HPACK encoder for one connection's response header blocks.
#[derive(Debug, Default)]
pub struct Encoder {
    _private: (),
}

/// How much of a field the static table holds.
#[derive(Debug, PartialEq, Eq)]
enum Static {
    Field(usize),
    Name(usize),
    None,
}

/// Representation prefixes (RFC 7541 §6.1, §6.2.2).
const INDEXED: u8 = 0x80;
const LITERAL_NOT_INDEXED: u8 = 0x00;

/// Static index of `:status`.
const STATUS: usize = 8;

impl Encoder {
    /// An encoder for one connection; it holds no table, so it costs nothing to create.
    pub fn new() -> Self {
        Encoder::default()
    }

    /// `:status` as a field: indexed for 200/204/206/304/400/404/500, literal with indexed name
    /// otherwise.
    pub fn status(&mut self, code: u16, dst: &mut BytesMut) {
        if let Some(index) = status_index(code) {
            dst.put_u8(INDEXED | index as u8);
            return;
        }
        dst.reserve(5);
        put_int(dst, LITERAL_NOT_INDEXED, 4, STATUS);
        if (100..1000).contains(&code) {
            // Every valid status has three digits (RFC 9110 §15): no formatting machinery needed.
            let digits = [b'0' + (code / 100) as u8, b'0' + (code / 10 % 10) as u8, b'0' + (code % 10) as u8];
            put_str(dst, &digits);
        } else {
            put_str(dst, code.to_string().as_bytes());
        }
    }

    /// One field, `name` already lowercase. Fully indexed when (name, value) is in the static
    /// table, literal without indexing with an indexed name when only the name is, else literal
    /// without indexing with a literal name.
    pub fn field(&mut self, name: &[u8], value: &[u8], dst: &mut BytesMut) {
        match lookup(name, value) {
            Static::Field(index) => put_int(dst, INDEXED, 7, index),
            Static::Name(index) => {
                // Two integers of at most 5 bytes each cover any prefix and length we can send.
                dst.reserve(10 + value.len());
                put_int(dst, LITERAL_NOT_INDEXED, 4, index);
                put_str(dst, value);
            }
            Static::None => {
                dst.reserve(11 + name.len() + value.len());
                dst.put_u8(LITERAL_NOT_INDEXED);
                put_str(dst, name);
                put_str(dst, value);
            }
        }
    }
}

fn status_index(code: u16) -> Option<usize> {
    Some(match code {
        200 => 8,
        204 => 9,
        206 => 10,
        304 => 11,
        400 => 12,
        404 => 13,
        500 => 14,
        _ => return None,
    })
}

/// An integer with an N-bit prefix (RFC 7541 §5.1), `flags` filling the bits above the prefix.
fn put_int(dst: &mut BytesMut, flags: u8, prefix: u8, value: usize) {
    let mask = (1usize << prefix) - 1;
    if value < mask {
        dst.put_u8(flags | value as u8);
        return;
    }
    dst.put_u8(flags | mask as u8);
    let mut rest = value - mask;
    while rest >= 0x80 {
        dst.put_u8(0x80 | (rest & 0x7f) as u8);
        rest >>= 7;
    }
    dst.put_u8(rest as u8);
}

/// A string literal without Huffman (H bit clear).
fn put_str(dst: &mut BytesMut, s: &[u8]) {
    put_int(dst, 0x00, 7, s.len());
    dst.put_slice(s);
}

/// The static table's view of a field: dispatch on length first so a miss (every `x-*` field)
/// costs a jump and at most a few comparisons of equal-length names.
fn lookup(name: &[u8], value: &[u8]) -> Static {
    let index = match name.len() {
        3 => match name {
            b"age" => 21,
            b"via" => 60,
            _ => return Static::None,
        },
        4 => match name {
            b"date" => 33,
            b"etag" => 34,
            b"from" => 37,
            b"host" => 38,
            b"link" => 45,
            b"vary" => 59,
            _ => return Static::None,
        },
        5 => match name {
            b":path" => 4,
            b"allow" => 22,
            b"range" => 50,
            _ => return Static::None,
        },
        6 => match name {
            b"accept" => 19,
            b"cookie" => 32,
            b"expect" => 35,
            b"server" => 54,
            _ => return Static::None,
        },
        7 => match name {
            b":method" => 2,
            b":scheme" => 6,
            b":status" => STATUS,
            b"expires" => 36,
            b"referer" => 51,
            b"refresh" => 52,
            _ => return Static::None,
        },
        8 => match name {
            b"if-match" => 39,
            b"if-range" => 42,
            b"location" => 46,
            _ => return Static::None,
        },
        10 => match name {
            b":authority" => 1,
            b"set-cookie" => 55,
            b"user-agent" => 58,
            _ => return Static::None,
        },
        11 => match name {
            b"retry-after" => 53,
            _ => return Static::None,
        },
        12 => match name {
            b"content-type" => 31,
            b"max-forwards" => 47,
            _ => return Static::None,
        },
        13 => match name {
            b"accept-ranges" => 18,
            b"authorization" => 23,
            b"cache-control" => 24,
            b"content-range" => 30,
            b"if-none-match" => 41,
            b"last-modified" => 44,
            _ => return Static::None,
        },
        14 => match name {
            b"accept-charset" => 15,
            b"content-length" => 28,
            _ => return Static::None,
        },
        15 => match name {
            b"accept-encoding" => 16,
            b"accept-language" => 17,
            _ => return Static::None,
        },
        16 => match name {
            b"content-encoding" => 26,
            b"content-language" => 27,
            b"content-location" => 29,
            b"www-authenticate" => 61,
            _ => return Static::None,
        },
        17 => match name {
            b"if-modified-since" => 40,
            b"transfer-encoding" => 57,
            _ => return Static::None,
        },
        18 => match name {
            b"proxy-authenticate" => 48,
            _ => return Static::None,
        },
        19 => match name {
            b"content-disposition" => 25,
            b"if-unmodified-since" => 43,
            b"proxy-authorization" => 49,
            _ => return Static::None,
        },
        25 => match name {
            b"strict-transport-security" => 56,
            _ => return Static::None,
        },
        27 => match name {
            b"access-control-allow-origin" => 20,
            _ => return Static::None,
        },
        _ => return Static::None,
    };
    // The few static entries with a value; every other entry's value is empty.
    let field = match (index, value) {
        (2, b"GET") => Some(2),
        (2, b"POST") => Some(3),
        (4, b"/") => Some(4),
        (4, b"/index.html") => Some(5),
        (6, b"http") => Some(6),
        (6, b"https") => Some(7),
        (STATUS, &[a, b, c]) if [a, b, c].iter().all(u8::is_ascii_digit) => {
            status_index(u16::from(a - b'0') * 100 + u16::from(b - b'0') * 10 + u16::from(c - b'0'))
        }
        (16, b"gzip, deflate") => Some(16),
        (2 | 4 | 6 | STATUS | 16, _) => None,
        (_, b"") => Some(index),
        _ => None,
    };
    field.map_or(Static::Name(index), Static::Field)
}

#[cfg(test)]
mod tests {
    use super::super::table::STATIC;
    use super::*;

    /// The hand-written dispatch agrees with the table: each static name maps to its first index,
    /// each static (name, value) to its own index.
    #[test]
    fn lookup_matches_static_table() {
        for (i, &(name, value)) in STATIC.iter().enumerate() {
            let first = STATIC.iter().position(|&(n, _)| n == name).unwrap() + 1;
            assert_eq!(lookup(name, value), Static::Field(i + 1), "{}", String::from_utf8_lossy(name));
            assert_eq!(lookup(name, b"\x01"), Static::Name(first), "{}", String::from_utf8_lossy(name));
        }
        for miss in [&b"x-request-id"[..], b"", b"content-lengths", b"Date", b"a"] {
            assert_eq!(lookup(miss, b""), Static::None);
        }
    }

    #[test]
    fn status_wire_forms() {
        let mut enc = Encoder::new();
        let cases: [(u16, &[u8]); 5] =
            [(200, b"\x88"), (500, b"\x8e"), (103, b"\x08\x03103"), (599, b"\x08\x03599"), (0, b"\x08\x010")];
        for (code, wire) in cases {
            let mut dst = BytesMut::new();
            enc.status(code, &mut dst);
            assert_eq!(&dst[..], wire, "{code}");
        }
    }

    #[test]
    fn integer_forms() {
        // RFC 7541 C.1.1-C.1.3.
        let cases: [(u8, usize, &[u8]); 3] = [(5, 10, b"\x0a"), (5, 1337, b"\x1f\x9a\x0a"), (8, 42, b"\x2a")];
        for (prefix, value, wire) in cases {
            let mut dst = BytesMut::new();
            put_int(&mut dst, 0, prefix, value);
            assert_eq!(&dst[..], wire, "{value}");
        }
    }
}
