//! Strict, resumable chunked-body decoder (RFC 9112 §7.1). httparse's `parse_chunk_size` accepts
//! empty size lines and LF inside extensions, so the framing is decoded here byte by byte.

use bytes::{Buf, Bytes, BytesMut};
use http::header::HeaderName;
use http::HeaderMap;

use super::parse::{build_headers, collect_fields, with_slots, Fields};
use super::{H1Error, Limits};

/// One step of decoding.
#[derive(Debug)]
pub enum Decoded {
    /// Body bytes (part of a chunk), sharing the read buffer's memory.
    Data(Bytes),
    /// The buffer holds no further complete element; read more and call again.
    NeedMore,
    /// The last chunk and trailer section were read; carries the forwardable trailers.
    End(HeaderMap),
}

/// A chunk-size is 1*HEXDIG; 16 digits already fill a u64, more can only be an overflow attempt.
const MAX_SIZE_DIGITS: u8 = 16;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Size { size: u64, digits: u8 },
    Ext { size: u64, len: usize },
    SizeLf { size: u64 },
    Data { remaining: u64 },
    DataCr,
    DataLf,
    Trailers,
    Done,
}

/// Decodes one chunked body. Feed it whatever has been read; it consumes only what it decodes,
/// so bytes after the body (a pipelined request) stay in the buffer.
#[derive(Debug, Clone)]
pub struct ChunkedDecoder {
    state: State,
    max_ext: usize,
    max_trailer_bytes: usize,
    max_trailers: usize,
}

const fn bad(reason: &'static str) -> H1Error {
    H1Error::new(400, reason)
}

impl ChunkedDecoder {
    /// A decoder positioned before the first chunk-size line.
    pub fn new(limits: &Limits) -> Self {
        ChunkedDecoder {
            state: State::Size { size: 0, digits: 0 },
            max_ext: limits.max_chunk_ext_len,
            max_trailer_bytes: limits.max_trailer_bytes,
            max_trailers: limits.max_headers,
        }
    }

    /// Whether the whole body, trailers included, has been decoded.
    pub fn is_done(&self) -> bool {
        self.state == State::Done
    }

    /// Decodes the next element from the front of `buf`. After `End`, further calls return an
    /// empty `End` and leave `buf` alone.
    pub fn decode(&mut self, buf: &mut BytesMut) -> Result<Decoded, H1Error> {
        loop {
            match self.state {
                State::Data { remaining } => {
                    if buf.is_empty() {
                        return Ok(Decoded::NeedMore);
                    }
                    let n = usize::try_from(remaining).unwrap_or(usize::MAX).min(buf.len());
                    let left = remaining - n as u64;
                    self.state = if left == 0 { State::DataCr } else { State::Data { remaining: left } };
                    return Ok(Decoded::Data(buf.split_to(n).freeze()));
                }
                State::Trailers => return self.trailers(buf),
                State::Done => return Ok(Decoded::End(HeaderMap::new())),
                _ => {}
            }
            let Some(&b) = buf.first() else {
                return Ok(Decoded::NeedMore);
            };
            self.state = self.step(b)?;
            buf.advance(1);
        }
    }

    /// One byte of the framing lines around the data.
    fn step(&self, b: u8) -> Result<State, H1Error> {
        Ok(match self.state {
            State::Size { size, digits } => match (b, hex_value(b)) {
                (_, Some(v)) if digits < MAX_SIZE_DIGITS => {
                    State::Size { size: (size << 4) | v, digits: digits + 1 }
                }
                (_, Some(_)) => return Err(bad("chunk size too long")),
                _ if digits == 0 => return Err(bad("chunk size must start with a hex digit")),
                (b';', _) => State::Ext { size, len: 0 },
                (b'\r', _) => State::SizeLf { size },
                _ => return Err(bad("invalid byte in chunk size")),
            },
            State::Ext { size, len } => match b {
                b'\r' => State::SizeLf { size },
                b'\t' => self.ext(size, len)?,
                0..=0x1f | 0x7f => return Err(bad("control byte in chunk extension")),
                _ => self.ext(size, len)?,
            },
            State::SizeLf { size } => match b {
                b'\n' if size == 0 => State::Trailers,
                b'\n' => State::Data { remaining: size },
                _ => return Err(bad("chunk size line not ended by CRLF")),
            },
            State::DataCr if b == b'\r' => State::DataLf,
            State::DataLf if b == b'\n' => State::Size { size: 0, digits: 0 },
            State::DataCr | State::DataLf => return Err(bad("chunk data not followed by CRLF")),
            State::Data { .. } | State::Trailers | State::Done => unreachable!("handled by decode"),
        })
    }

    fn ext(&self, size: u64, len: usize) -> Result<State, H1Error> {
        if len >= self.max_ext {
            return Err(bad("chunk extension too long"));
        }
        Ok(State::Ext { size, len: len + 1 })
    }

    /// The trailer section is re-tokenized on each call until complete; it is capped by
    /// `max_trailer_bytes`, so the re-scan stays cheap.
    fn trailers(&mut self, buf: &mut BytesMut) -> Result<Decoded, H1Error> {
        let Some((len, fields)) = self.tokenize_trailers(buf)? else {
            if buf.len() > self.max_trailer_bytes {
                return Err(H1Error::new(431, "trailer section too large"));
            }
            return Ok(Decoded::NeedMore);
        };
        if len > self.max_trailer_bytes {
            return Err(H1Error::new(431, "trailer section too large"));
        }
        let section = buf.split_to(len).freeze();
        let mut trailers = build_headers(&section, fields).ok_or(bad("invalid trailer field"))?;
        retain_allowed_trailers(&mut trailers);
        self.state = State::Done;
        Ok(Decoded::End(trailers))
    }

    fn tokenize_trailers(&self, buf: &[u8]) -> Result<Option<(usize, Fields)>, H1Error> {
        with_slots(self.max_trailers, |slots| {
            match httparse::parse_headers(buf, slots) {
                Ok(httparse::Status::Complete((len, headers))) => {
                    // httparse accepts bare LF; chunked framing lines must end with CRLF exactly.
                    let section = &buf[..len];
                    let bare_lf = section
                        .iter()
                        .enumerate()
                        .any(|(i, &b)| b == b'\n' && (i == 0 || section[i - 1] != b'\r'));
                    if bare_lf {
                        return Err(bad("trailer line not ended by CRLF"));
                    }
                    let fields = collect_fields(buf, headers).ok_or(bad("invalid trailer name"))?;
                    Ok(Some((len, fields)))
                }
                Ok(httparse::Status::Partial) => Ok(None),
                Err(httparse::Error::TooManyHeaders) => Err(H1Error::new(431, "too many trailer fields")),
                Err(_) => Err(bad("malformed trailer section")),
            }
        })
    }
}

fn hex_value(b: u8) -> Option<u64> {
    char::from(b).to_digit(16).map(u64::from)
}

/// Fields a sender must not put in trailers (RFC 9110 §6.5.1): framing, routing, request
/// modifiers, authentication, response control and content metadata. Forwarding them would let a
/// trailer override what the head already decided.
pub fn is_forbidden_trailer(name: &HeaderName) -> bool {
    const FORBIDDEN: &[&str] = &[
        "age",
        "authorization",
        "cache-control",
        "connection",
        "content-encoding",
        "content-length",
        "content-range",
        "content-type",
        "cookie",
        "date",
        "expect",
        "expires",
        "host",
        "keep-alive",
        "location",
        "max-forwards",
        "pragma",
        "range",
        "retry-after",
        "set-cookie",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "vary",
        "warning",
        "www-authenticate",
    ];
    let n = name.as_str();
    FORBIDDEN.contains(&n) || n.starts_with("if-") || n.starts_with("proxy-")
}

/// Drops the fields [`is_forbidden_trailer`] names.
pub fn retain_allowed_trailers(trailers: &mut HeaderMap) {
    let forbidden: Vec<HeaderName> = trailers.keys().filter(|n| is_forbidden_trailer(n)).cloned().collect();
    for name in forbidden {
        trailers.remove(&name);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Decodes `input` fed in pieces of `step` bytes; returns the body, the trailers and the
    /// bytes left in the buffer after the end.
    fn run(input: &[u8], step: usize, limits: &Limits) -> Result<(Vec<u8>, HeaderMap, Vec<u8>), H1Error> {
        let mut dec = ChunkedDecoder::new(limits);
        let mut buf = BytesMut::new();
        let mut body = Vec::new();
        let mut fed = 0;
        loop {
            match dec.decode(&mut buf)? {
                Decoded::Data(d) => {
                    assert!(!d.is_empty());
                    body.extend_from_slice(&d);
                }
                Decoded::End(t) => {
                    assert!(dec.is_done());
                    buf.extend_from_slice(&input[fed..]);
                    return Ok((body, t, buf.to_vec()));
                }
                Decoded::NeedMore => {
                    if fed == input.len() {
                        return Err(H1Error::new(0, "truncated"));
                    }
                    let end = (fed + step).min(input.len());
                    buf.extend_from_slice(&input[fed..end]);
                    fed = end;
                }
            }
        }
    }

    fn decode_all(input: &[u8]) -> Result<(Vec<u8>, HeaderMap, Vec<u8>), H1Error> {
        let limits = Limits::default();
        let one_shot = run(input, input.len().max(1), &limits);
        for step in [1, 2, 3, 7] {
            let pieces = run(input, step, &limits);
            match (&one_shot, &pieces) {
                (Ok(a), Ok(b)) => assert_eq!(a, b, "step {step}"),
                (Err(a), Err(b)) => assert_eq!(a.status, b.status, "step {step}"),
                _ => panic!("step {step} differs: {one_shot:?} vs {pieces:?}"),
            }
        }
        one_shot
    }

    fn status(input: &[u8]) -> u16 {
        match decode_all(input) {
            Err(e) => e.status,
            Ok(r) => panic!("{:?} accepted: {r:?}", String::from_utf8_lossy(input)),
        }
    }

    #[test]
    fn valid_bodies() {
        let (body, t, rest) = decode_all(b"5\r\nhello\r\n1;a=b;c\r\n \r\n0\r\n\r\nGET /").unwrap();
        assert_eq!((&body[..], t.len(), &rest[..]), (&b"hello "[..], 0, &b"GET /"[..]));
        let (body, _, _) = decode_all(b"A\r\n0123456789\r\nf\r\n0123456789abcde\r\n0\r\n\r\n").unwrap();
        assert_eq!(body.len(), 25);
        let (body, _, _) = decode_all(b"000000000000000a\r\n0123456789\r\n0\r\n\r\n").unwrap();
        assert_eq!(body.len(), 10);
        let (body, _, _) = decode_all(b"0;ext=\"q\\\"t\"\t\r\n\r\n").unwrap();
        assert!(body.is_empty());
    }

    #[test]
    fn data_is_returned_before_the_chunk_completes() {
        let mut dec = ChunkedDecoder::new(&Limits::default());
        let mut buf = BytesMut::from(&b"a\r\n0123"[..]);
        assert!(matches!(dec.decode(&mut buf), Ok(Decoded::Data(d)) if &d[..] == b"0123"));
        assert!(matches!(dec.decode(&mut buf), Ok(Decoded::NeedMore)));
        buf.extend_from_slice(b"456789\r\n0\r\n\r\nX");
        assert!(matches!(dec.decode(&mut buf), Ok(Decoded::Data(d)) if &d[..] == b"456789"));
        assert!(matches!(dec.decode(&mut buf), Ok(Decoded::End(t)) if t.is_empty()));
        assert!(matches!(dec.decode(&mut buf), Ok(Decoded::End(_))));
        assert_eq!(&buf[..], b"X");
    }

    #[test]
    fn trailers_kept_and_filtered() {
        let input = b"3\r\nabc\r\n0\r\nX-Checksum: 42\r\nContent-Length: 5\r\nHost: evil\r\n\
                      Transfer-Encoding: chunked\r\nTrailer: x\r\nIf-Match: *\r\nx-checksum: 43\r\n\r\nNEXT";
        let (body, t, rest) = decode_all(input).unwrap();
        assert_eq!((&body[..], &rest[..]), (&b"abc"[..], &b"NEXT"[..]));
        assert_eq!(t.len(), 2, "{t:?}");
        let values: Vec<_> = t.get_all("x-checksum").iter().collect();
        assert_eq!(values, ["42", "43"]);
    }

    #[test]
    fn malformed_chunks_get_exact_status() {
        let cases: &[(&[u8], u16)] = &[
            (b"\r\nabc\r\n0\r\n\r\n", 400),      // empty size line
            (b";x\r\n0\r\n\r\n", 400),           // extension without size
            (b" 5\r\nhello\r\n0\r\n\r\n", 400),  // leading space
            (b"5 \r\nhello\r\n0\r\n\r\n", 400),  // trailing space
            (b"5\t\r\nhello\r\n0\r\n\r\n", 400), // trailing tab
            (b"0x5\r\nhello\r\n0\r\n\r\n", 400),
            (b"+5\r\nhello\r\n0\r\n\r\n", 400),
            (b"-5\r\nhello\r\n0\r\n\r\n", 400),
            (b"g\r\n0\r\n\r\n", 400),
            (b"10000000000000000\r\n", 400),                   // 17 hex digits
            (b"00000000000000005\r\nhello\r\n0\r\n\r\n", 400), // 17 digits even if small
            (b"5\nhello\r\n0\r\n\r\n", 400),                   // bare LF after size
            (b"5\rhello\r\n0\r\n\r\n", 400),                   // bare CR after size
            (b"5;a\nb\r\nhello\r\n0\r\n\r\n", 400),            // LF in extension
            (b"5;a\x01b\r\nhello\r\n0\r\n\r\n", 400),          // CTL in extension
            (b"5;a\x00\r\nhello\r\n0\r\n\r\n", 400),           // NUL in extension
            (b"5;a\x7f\r\nhello\r\n0\r\n\r\n", 400),           // DEL in extension
            (b"5\r\nhelloX\r\n0\r\n\r\n", 400),                // data longer than size
            (b"5\r\nhello0\r\n\r\n", 400),                     // missing CRLF after data
            (b"5\r\nhello\n0\r\n\r\n", 400),                   // bare LF after data
            (b"5\r\nhello\r0\r\n\r\n", 400),                   // bare CR after data
            (b"0\r\nX: a\n\r\n", 400),                         // bare LF in trailers
            (b"0\r\n\n", 400),                                 // bare LF ends trailers
            (b"0\r\nX: a\r\n b\r\n\r\n", 400),                 // obs-fold in trailers
            (b"0\r\nX : a\r\n\r\n", 400),                      // space before colon
            (b"0\r\nX: a\x00\r\n\r\n", 400),                   // NUL in trailer
            (b"0\r\nno colon\r\n\r\n", 400),
        ];
        for (input, want) in cases {
            assert_eq!(status(input), *want, "{:?}", String::from_utf8_lossy(input));
        }
    }

    #[test]
    fn limits() {
        let small =
            Limits { max_chunk_ext_len: 8, max_trailer_bytes: 32, max_headers: 2, ..Limits::default() };
        let ok_ext = b"1;12345678\r\na\r\n0\r\n\r\n";
        assert!(run(ok_ext, 64, &small).is_ok());
        let long_ext = b"1;123456789\r\na\r\n0\r\n\r\n";
        assert_eq!(run(long_ext, 64, &small).unwrap_err().status, 400);
        let big = [&b"0\r\nX: "[..], &[b'v'; 40], b"\r\n\r\n"].concat();
        assert_eq!(run(&big, 64, &small).unwrap_err().status, 431, "complete but too large");
        assert_eq!(run(&big, 1, &small).unwrap_err().status, 431, "partial and too large");
        let many = b"0\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\n";
        assert_eq!(run(many, 64, &small).unwrap_err().status, 431);
        let max = b"ffffffffffffffff\r\nabc";
        let mut dec = ChunkedDecoder::new(&small);
        let mut buf = BytesMut::from(&max[..]);
        assert!(matches!(dec.decode(&mut buf), Ok(Decoded::Data(d)) if d.len() == 3));
    }
}
