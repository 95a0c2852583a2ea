//! What the fuzz targets share: limits picked by the input, and the steps the proxy takes to turn a
//! received request into the head it writes to an HTTP/1.1 upstream, so that a target can check
//! that what the proxy sends is something a strict HTTP/1.1 parser (ours) reads back the same way.

use bytes::BytesMut;
use http::header::{HeaderValue, CONNECTION, CONTENT_LENGTH, HOST, TE, TRANSFER_ENCODING, UPGRADE};
use http::{HeaderMap, Method, Version};
use proxy::protocol::h1::encode::{encode_request_head, strip_hop_by_hop};
use proxy::protocol::h1::framing::declared_length;
use proxy::protocol::h1::{parse_request, request_framing, BodyFraming, Limits, Parsed, RequestHead};

/// Default limits most of the time; small ones otherwise, so that the 414 / 431 paths and the
/// partial-head heuristics are reachable with inputs of a few hundred bytes.
pub fn limits(sel: u8) -> Limits {
    if sel & 0x80 == 0 {
        return Limits::default();
    }
    Limits {
        max_header_bytes: 64 + usize::from(sel & 0x0f) * 32,
        max_headers: 1 + usize::from((sel >> 4) & 0x07),
        max_uri_len: 8 + usize::from(sel & 0x0f) * 8,
        max_chunk_ext_len: 1 + usize::from(sel & 0x0f),
        max_trailer_bytes: 16 + usize::from(sel & 0x0f) * 16,
    }
}

/// Hop-by-hop fields (RFC 9110 §7.6.1) that must never reach the next hop, with HTTP2-Settings
/// (RFC 7540 §3.2.1), which `strip_hop_by_hop` removes too.
pub const HOP_BY_HOP: &[&str] =
    &["connection", "keep-alive", "proxy-connection", "te", "transfer-encoding", "upgrade", "http2-settings"];

/// The head the proxy writes to an HTTP/1.1 upstream for `req` whose body has `framing`, and the
/// framing its body writer uses: `proxy::exchange` (clone, 1.1, hop-by-hop fields stripped; no
/// upgrade here) followed by `UpstreamSession::send_head` (its Content-Length if valid, else
/// chunked; nothing for an empty body). Those two are private to the proxy and mixed with I/O,
/// so the few lines are repeated here; the encoder and the parser are the library's own.
pub fn upstream_h1(req: &RequestHead, framing: BodyFraming) -> (RequestHead, BodyFraming, BytesMut) {
    let mut up = req.clone();
    up.version = Version::HTTP_11;
    strip_hop_by_hop(&mut up.headers, false);
    let writer = if framing == BodyFraming::Empty {
        BodyFraming::Empty
    } else if let Some(n) = declared_length(&up.headers) {
        up.headers.remove(TRANSFER_ENCODING);
        if n == 0 {
            BodyFraming::Empty
        } else {
            BodyFraming::Length(n)
        }
    } else {
        up.headers.remove(CONTENT_LENGTH);
        up.headers.insert(TRANSFER_ENCODING, HeaderValue::from_static("chunked"));
        BodyFraming::Chunked
    };
    let mut out = BytesMut::new();
    encode_request_head(&up, &mut out);
    (up, writer, out)
}

/// Parses `bytes` as one complete request head with the default limits, which must succeed and
/// consume everything; `what` names the check in the panic message.
pub fn reparse(bytes: &[u8], what: &str) -> RequestHead {
    let mut buf = BytesMut::from(bytes);
    match parse_request(&mut buf, &Limits::default()) {
        Ok(Parsed::Complete(h)) => {
            assert!(buf.is_empty(), "{what}: {} bytes left after the head", buf.len());
            h
        }
        other => panic!("{what}: {:?} does not parse back: {other:?}", String::from_utf8_lossy(bytes)),
    }
}

/// Whether an encoded head fits the default limits (a head that grew past them, e.g. by a long
/// Host taken from an absolute-form target, is refused with 431, which is not a defect).
pub fn fits_default_limits(encoded: &[u8], headers: &HeaderMap) -> bool {
    let l = Limits::default();
    encoded.len() <= l.max_header_bytes && headers.len() < l.max_headers
}

/// Checks what an HTTP/1.1 upstream would receive for `req` (framing `framing`): it parses as one
/// head, with the same method, target, Host and fields, no hop-by-hop field, and the body framing
/// the proxy's body writer then uses. Returns the re-parsed head.
pub fn check_upstream_h1(req: &RequestHead, framing: BodyFraming) -> Option<RequestHead> {
    // A request without Host (HTTP/1.0) cannot be re-read as HTTP/1.1 until the proxy supplies
    // one (issue 10 item 4 adds it in the proxy, not in the encoder).
    if !req.headers.contains_key(HOST) {
        return None;
    }
    let (up, writer, out) = upstream_h1(req, framing);
    if !fits_default_limits(&out, &up.headers) {
        return None;
    }
    let again = reparse(&out, "upstream head");
    assert_eq!(again.method, req.method);
    assert_eq!(again.version, Version::HTTP_11);
    if req.method == Method::CONNECT {
        assert_eq!(again.uri.authority(), req.uri.authority(), "CONNECT target");
    } else if req.method == Method::OPTIONS && req.uri == "*" {
        assert_eq!(again.uri, "*");
    } else {
        let want = req.uri.path_and_query().map_or("/", |p| p.as_str());
        let got = again.uri.path_and_query().map_or("/", |p| p.as_str());
        // `http://h?q` has an empty path: origin-form needs the `/` in front.
        let want = if want.starts_with('/') { want.to_owned() } else { format!("/{want}") };
        assert_eq!(got, want, "request-target");
    }
    assert_eq!(again.headers.get_all(HOST).iter().count(), 1, "one Host upstream");
    assert_eq!(again.headers.get(HOST), req.headers.get(HOST), "Host");
    for name in HOP_BY_HOP {
        if *name == "transfer-encoding" && writer == BodyFraming::Chunked {
            continue;
        }
        assert!(!again.headers.contains_key(*name), "hop-by-hop {name} forwarded");
    }
    // Everything else arrives unchanged: no field the client sent is lost or altered, except
    // those the Connection field named.
    let named = connection_named(&req.headers);
    for (name, value) in &req.headers {
        let n = name.as_str();
        if HOP_BY_HOP.contains(&n) || n == "content-length" || named.iter().any(|t| t == n) {
            continue;
        }
        assert!(again.headers.get_all(name).iter().any(|v| v == value), "field {n} lost upstream");
    }
    assert_eq!(request_framing(&again).ok(), Some(writer), "upstream framing");
    Some(again)
}

/// Lowercased tokens of every Connection line.
fn connection_named(headers: &HeaderMap) -> Vec<String> {
    headers
        .get_all(CONNECTION)
        .iter()
        .flat_map(|v| v.as_bytes().split(|&b| b == b','))
        .map(|t| String::from_utf8_lossy(t.trim_ascii()).to_ascii_lowercase())
        .collect()
}

/// Fields that RFC 9113 §8.2.2 forbids in an HTTP/2 message (TE is allowed as `trailers` only).
pub fn assert_no_connection_specific(headers: &HeaderMap) {
    for name in [CONNECTION, TRANSFER_ENCODING, UPGRADE] {
        assert!(!headers.contains_key(&name), "{name} sent over HTTP/2");
    }
    for name in ["keep-alive", "proxy-connection"] {
        assert!(!headers.contains_key(name), "{name} sent over HTTP/2");
    }
    for te in headers.get_all(TE) {
        assert!(te.as_bytes().eq_ignore_ascii_case(b"trailers"), "TE {te:?} sent over HTTP/2");
    }
}
