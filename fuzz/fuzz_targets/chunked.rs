//! The chunked body decoder (`protocol::h1::chunk`) and the chunk encoder it must agree with.
//!
//! Input: a mode byte. Even: raw bytes decoded as a chunked body, whole and in pieces of a
//! fuzz-chosen size; the results must be identical (body, trailers, bytes left after the body,
//! error status), errors are 400 or 431, and what follows the body is left in the buffer.
//! Odd: a body (chunks), trailers and trailing bytes, encoded with the proxy's encoder; decoding
//! returns exactly the body, the allowed trailers and the trailing bytes, in any piece size.
#![no_main]

use arbitrary::{Arbitrary, Unstructured};
use bytes::BytesMut;
use http::header::{HeaderName, HeaderValue};
use http::HeaderMap;
use libfuzzer_sys::fuzz_target;
use proxy::protocol::h1::chunk::retain_allowed_trailers;
use proxy::protocol::h1::encode::{encode_chunk_size, encode_last_chunk};
use proxy::protocol::h1::{ChunkedDecoder, Decoded, H1Error, Limits};

type Outcome = Result<(Vec<u8>, HeaderMap, Vec<u8>), u16>;

/// Decodes `input` fed `step` bytes at a time; returns the body, trailers and what was left.
fn run(input: &[u8], step: usize, limits: &Limits) -> Outcome {
    let mut dec = ChunkedDecoder::new(limits);
    let mut buf = BytesMut::new();
    let (mut body, mut fed) = (Vec::new(), 0);
    loop {
        match dec.decode(&mut buf).map_err(|e: H1Error| e.status)? {
            Decoded::Data(d) => {
                assert!(!d.is_empty(), "empty Data");
                body.extend_from_slice(&d);
            }
            Decoded::End(t) => {
                assert!(dec.is_done());
                // After End the decoder answers End again and leaves the buffer alone.
                let before = buf.clone();
                assert!(matches!(dec.decode(&mut buf), Ok(Decoded::End(e)) if e.is_empty()));
                assert_eq!(buf, before);
                buf.extend_from_slice(&input[fed..]);
                return Ok((body, t, buf.to_vec()));
            }
            Decoded::NeedMore => {
                if fed == input.len() {
                    return Err(0); // truncated: not an error of the decoder's
                }
                let end = (fed + step).min(input.len());
                buf.extend_from_slice(&input[fed..end]);
                fed = end;
            }
        }
    }
}

#[derive(Arbitrary, Debug)]
struct Message {
    step: u8,
    chunks: Vec<Vec<u8>>,
    trailers: Vec<(String, Vec<u8>)>,
    tail: Vec<u8>,
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else { return };
    if mode & 1 == 0 {
        let Some((&step, input)) = rest.split_first() else { return };
        let limits = libproxy_fuzz::limits(mode);
        let whole = run(input, input.len().max(1), &limits);
        if let Err(s) = whole {
            assert!(matches!(s, 0 | 400 | 431), "status {s}");
        }
        if let Ok((_, _, left)) = &whole {
            assert!(input.ends_with(left), "bytes after the body must stay");
        }
        for step in [usize::from(step).max(1), 1] {
            assert_eq!(run(input, step, &limits), whole, "pieces of {step} bytes");
        }
        return;
    }
    let Ok(m) = Message::arbitrary_take_rest(Unstructured::new(rest)) else { return };
    let limits = Limits::default();
    let mut trailers = HeaderMap::new();
    for (name, value) in &m.trailers {
        let (Ok(n), Ok(v)) = (HeaderName::from_bytes(name.as_bytes()), HeaderValue::from_bytes(value)) else {
            return;
        };
        // The parser trims optional whitespace around values; a value with it cannot round-trip.
        if value.first().is_some_and(|b| *b == b' ' || *b == b'\t') || value.last().is_some_and(|b| *b == b' ' || *b == b'\t') {
            return;
        }
        trailers.append(n, v);
    }
    let mut wire = BytesMut::new();
    let mut body = Vec::new();
    for c in m.chunks.iter().filter(|c| !c.is_empty()) {
        encode_chunk_size(c.len(), &mut wire);
        wire.extend_from_slice(c);
        wire.extend_from_slice(b"\r\n");
        body.extend_from_slice(c);
    }
    let start_of_last = wire.len();
    encode_last_chunk(Some(&trailers), &mut wire);
    if wire.len() - start_of_last > limits.max_trailer_bytes || trailers.len() >= limits.max_headers {
        return;
    }
    wire.extend_from_slice(&m.tail);
    let mut want = trailers.clone();
    retain_allowed_trailers(&mut want);
    let expected = Ok((body, want, m.tail.clone()));
    for step in [wire.len().max(1), usize::from(m.step).max(1), 1] {
        assert_eq!(run(&wire, step, &limits), expected, "encoded body, pieces of {step}");
    }
});
