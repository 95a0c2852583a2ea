//! HTTP/2 request header blocks to the head an HTTP/1.1 upstream gets: the HPACK decoder
//! (`protocol::h2::hpack`), the request intake of our HTTP/2 server (`protocol::h2::server::Intake`),
//! then the H1 encoder. A block is fields encoded by our encoder followed by arbitrary bytes, so
//! the decoder meets both valid representations and garbage.
//! Invariants: decoding never panics; without the arbitrary tail, the decoder gives back exactly
//! the fields encoded; the intake either refuses (malformed, too large, or 400) or yields a head
//! with at most one Host, equal to `:authority` when there is one, and what the proxy writes
//! upstream for it parses back as one HTTP/1.1 head with the same method, target, Host and fields
//! (`check_upstream_h1`).
#![no_main]

use arbitrary::{Arbitrary, Unstructured};
use bytes::BytesMut;
use http::header::HOST;
use libfuzzer_sys::fuzz_target;
use libproxy_fuzz::check_upstream_h1;
use proxy::protocol::h1::BodyFraming;
use proxy::protocol::h2::hpack::{Decoder, Encoder};
use proxy::protocol::h2::server::{Intake, Refusal};

#[derive(Arbitrary, Debug)]
struct Input<'a> {
    fields: Vec<(&'a [u8], &'a [u8])>,
    tail: &'a [u8],
    empty_body: bool,
}

fuzz_target!(|data: &[u8]| {
    let Ok(input) = Input::arbitrary(&mut Unstructured::new(data)) else { return };
    let mut block = BytesMut::new();
    let mut encoder = Encoder::new();
    for (n, v) in &input.fields {
        encoder.field(n, v, &mut block);
    }
    let mut decoded = Vec::new();
    let complete = Decoder::new(4096).decode(&block, |n, v| {
        decoded.push((n.to_vec(), v.to_vec()));
        Ok(())
    });
    assert_eq!(complete, Ok(true), "our own block does not decode");
    let expected: Vec<_> = input.fields.iter().map(|(n, v)| (n.to_vec(), v.to_vec())).collect();
    assert_eq!(decoded, expected, "fields changed through HPACK");

    block.extend_from_slice(input.tail);
    let mut intake = Intake::new(block.len(), 64 * 1024);
    let mut authority = None;
    let decoded = Decoder::new(4096).decode(&block, |n, v| {
        if n == b":authority" && authority.is_none() {
            authority = Some(v.to_vec());
        }
        intake.field(n, v)
    });
    if decoded.is_err() {
        return;
    }
    let head = match intake.finish() {
        Ok(h) => h,
        Err(Refusal::Bad(e)) => {
            assert_eq!(e.status, 400, "{e:?}");
            return;
        }
        Err(Refusal::Malformed(_) | Refusal::TooLarge) => return,
    };
    assert!(head.headers.get_all(HOST).iter().count() <= 1, "more than one Host");
    if let Some(a) = authority {
        let host = head.headers.get(HOST).expect("an :authority becomes the Host");
        assert!(host.as_bytes().eq_ignore_ascii_case(&a), "Host {host:?} vs :authority {a:?}");
    }
    let framing = if input.empty_body { BodyFraming::Empty } else { BodyFraming::Chunked };
    check_upstream_h1(&head, framing);
});
