//! The HTTP/1.1 response head parser and response framing.
//!
//! Input: one selector byte (limits, the request method, a split point), then the bytes an
//! upstream sent. Invariants:
//! - `Partial` leaves the buffer untouched; every error is a 502 (the upstream's fault).
//! - A head that parses parses the same when cut in two, and every prefix of it is `Partial`.
//! - A head with valid framing re-encodes (as the proxy writes it downstream) to a head with the
//!   same status, fields and framing; hop-by-hop stripping keeps the framing fields it must.
#![no_main]

use bytes::BytesMut;
use http::Method;
use libfuzzer_sys::fuzz_target;
use libproxy_fuzz::{limits, HOP_BY_HOP};
use proxy::protocol::h1::encode::{encode_response_head, strip_hop_by_hop};
use proxy::protocol::h1::{parse_response, response_framing, Limits, Parsed, ResponseHead};

fn reparse(bytes: &[u8]) -> ResponseHead {
    let mut buf = BytesMut::from(bytes);
    match parse_response(&mut buf, &Limits::default()) {
        Ok(Parsed::Complete(h)) if buf.is_empty() => h,
        other => panic!("{:?} does not parse back: {other:?}", String::from_utf8_lossy(bytes)),
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&sel, raw)) = data.split_first() else { return };
    let limits = limits(sel);
    let method = [Method::GET, Method::HEAD, Method::CONNECT, Method::POST][usize::from(sel >> 5) & 3].clone();
    let mut buf = BytesMut::from(raw);
    let head = match parse_response(&mut buf, &limits) {
        Ok(Parsed::Partial) => {
            assert_eq!(&buf[..], raw, "Partial changed the buffer");
            return;
        }
        Err(e) => {
            assert_eq!(e.status, 502, "{e:?}");
            return;
        }
        Ok(Parsed::Complete(h)) => h,
    };
    let consumed = raw.len() - buf.len();
    assert_eq!(&buf[..], &raw[consumed..], "bytes after the head must stay");
    let cut = usize::from(sel & 0x1f) * consumed / 32;
    for cut in [cut, consumed - 1] {
        let mut prefix = BytesMut::from(&raw[..cut]);
        match parse_response(&mut prefix, &limits) {
            Ok(Parsed::Partial) => {}
            other => panic!("prefix {cut}/{consumed} of a valid head: {other:?}"),
        }
        prefix.extend_from_slice(&raw[cut..]);
        match parse_response(&mut prefix, &limits) {
            Ok(Parsed::Complete(h2)) => {
                assert_eq!((h2.status, h2.version, &h2.reason), (head.status, head.version, &head.reason));
                assert_eq!(h2.headers, head.headers);
            }
            other => panic!("valid head after a partial read: {other:?}"),
        }
    }

    let Ok(framing) = response_framing(&method, &head) else { return };
    let mut out = BytesMut::new();
    encode_response_head(&head, &mut out);
    if out.len() <= Limits::default().max_header_bytes && head.headers.len() < Limits::default().max_headers {
        let again = reparse(&out);
        assert_eq!(again.status, head.status);
        assert_eq!(again.headers, head.headers, "fields after re-encoding");
        assert_eq!(response_framing(&method, &again), Ok(framing), "framing after re-encoding");
    }

    let mut stripped = head.headers.clone();
    strip_hop_by_hop(&mut stripped, false);
    for name in HOP_BY_HOP {
        assert!(!stripped.contains_key(*name), "{name} survives hop-by-hop stripping");
    }
    assert_eq!(
        stripped.get_all(http::header::CONTENT_LENGTH).iter().collect::<Vec<_>>(),
        head.headers.get_all(http::header::CONTENT_LENGTH).iter().collect::<Vec<_>>(),
        "Content-Length is the caller's to decide"
    );
});
