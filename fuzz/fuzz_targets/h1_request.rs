//! The HTTP/1.1 request head parser and body framing (`protocol::h1::{parse, framing, encode}`).
//!
//! Input: one selector byte (limits, split point), then the bytes a client sent.
//! Invariants:
//! - `Partial` leaves the buffer untouched but for a 1.x minor version folded to `1.1` (RFC 9110
//!   §2.5, see `parse::fold_minor_version`): the same length, at most one byte changed, to `1`
//!   after `HTTP/1.`; `Complete` removes exactly the head (and the empty
//!   lines before it); errors carry one of the documented statuses.
//! - A head that parses parses the same when it arrives in two pieces, and every prefix of it is
//!   `Partial`, not an error: the verdict must not depend on how TCP cut the bytes.
//! - A head that parses with valid framing re-encodes (canonically, as the proxy writes it) to a
//!   head that parses to the same method, target, fields and framing, and what the proxy sends an
//!   HTTP/1.1 upstream parses with the framing the proxy's body writer uses.
#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use libproxy_fuzz::{check_upstream_h1, limits, reparse};
use proxy::protocol::h1::encode::encode_request_head;
use proxy::protocol::h1::{parse_request, request_framing, Parsed};

fuzz_target!(|data: &[u8]| {
    let Some((&sel, raw)) = data.split_first() else { return };
    let limits = limits(sel);
    let mut buf = BytesMut::from(raw);
    let head = match parse_request(&mut buf, &limits) {
        Ok(Parsed::Partial) => {
            assert_eq!(buf.len(), raw.len(), "Partial changed the buffer's length");
            let changed: Vec<usize> = (0..raw.len()).filter(|&i| buf[i] != raw[i]).collect();
            match changed[..] {
                [] => {}
                [i] => assert!(
                    i >= 7 && &buf[i - 7..=i] == b"HTTP/1.1" && (b'2'..=b'9').contains(&raw[i]),
                    "Partial changed byte {i} of {raw:?}"
                ),
                _ => panic!("Partial changed the buffer at {changed:?}"),
            }
            return;
        }
        Err(e) => {
            assert!(matches!(e.status, 400 | 413 | 414 | 431 | 501 | 505), "status {e:?}");
            return;
        }
        Ok(Parsed::Complete(h)) => h,
    };
    let consumed = raw.len() - buf.len();
    assert_eq!(&buf[..], &raw[consumed..], "bytes after the head must stay");

    // The same head cut anywhere before its end is incomplete, never wrong.
    let cut = usize::from(sel & 0x7f) * consumed / 128;
    for cut in [cut, consumed - 1] {
        let mut prefix = BytesMut::from(&raw[..cut]);
        match parse_request(&mut prefix, &limits) {
            Ok(Parsed::Partial) => {}
            other => panic!("prefix {cut}/{consumed} of a valid head: {other:?}"),
        }
        // ... and completing it afterwards gives the same head.
        prefix.extend_from_slice(&raw[cut..]);
        match parse_request(&mut prefix, &limits) {
            Ok(Parsed::Complete(h2)) => {
                assert_eq!((&h2.method, &h2.uri, h2.version), (&head.method, &head.uri, head.version));
                assert_eq!(h2.headers, head.headers);
            }
            other => panic!("valid head after a partial read: {other:?}"),
        }
    }

    let Ok(framing) = request_framing(&head) else { return };
    // Canonical re-encoding, fields untouched: parses to the same head and framing (as 1.1).
    if head.headers.contains_key(http::header::HOST) {
        let mut out = BytesMut::new();
        encode_request_head(&head, &mut out);
        if libproxy_fuzz::fits_default_limits(&out, &head.headers) {
            let again = reparse(&out, "re-encoded head");
            assert_eq!(again.method, head.method);
            assert_eq!(again.headers, head.headers, "fields after re-encoding");
            assert_eq!(request_framing(&again), Ok(framing), "framing after re-encoding");
        }
    }
    check_upstream_h1(&head, framing);
});
