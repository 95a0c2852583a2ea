//! Canonical serialisation of heads and chunk framing. Nothing received is forwarded verbatim:
//! every head is rebuilt from parsed parts, always as HTTP/1.1 with CRLF line ends.

use bytes::{BufMut, BytesMut};
use http::header::HeaderName;
use http::{HeaderMap, Method};

use super::chunk::is_forbidden_trailer;
use super::{RequestHead, ResponseHead};
use crate::protocol::http::{list_elements, Headers, Known};

/// The request-target to send upstream: origin-form, except authority-form for CONNECT and `*`
/// for `OPTIONS *`. Absolute-form is reduced to origin-form (its authority is already in Host).
fn request_target(head: &RequestHead) -> (&str, &str) {
    if head.method == Method::CONNECT {
        if let Some(a) = head.uri.authority() {
            return ("", a.as_str());
        }
    }
    if head.method == Method::OPTIONS && head.uri.path() == "*" {
        return ("", "*");
    }
    match head.uri.path_and_query().map(|pq| pq.as_str()) {
        None | Some("") => ("", "/"),
        Some(pq) if pq.starts_with('/') => ("", pq),
        // e.g. `http://host?q`: the path is empty, origin-form needs the `/`.
        Some(pq) => ("/", pq),
    }
}

/// Writes `METHOD target HTTP/1.1`, the header fields in map order, and the empty line.
pub fn encode_request_head(head: &RequestHead, out: &mut BytesMut) {
    let (prefix, target) = request_target(head);
    let method = head.method.as_str();
    out.reserve(method.len() + prefix.len() + target.len() + 13 + head.headers.encoded_len() + 2);
    out.put_slice(method.as_bytes());
    out.put_u8(b' ');
    out.put_slice(prefix.as_bytes());
    out.put_slice(target.as_bytes());
    out.put_slice(b" HTTP/1.1\r\n");
    head.headers.encode(out);
    out.put_slice(b"\r\n");
}

/// `reason-phrase = *( HTAB / SP / VCHAR / obs-text )`; hooks may set anything, so check again.
fn valid_reason(reason: &[u8]) -> bool {
    reason.iter().all(|&b| b == b'\t' || b == b' ' || (0x21..=0x7e).contains(&b) || b >= 0x80)
}

/// Writes `HTTP/1.1 <code> <reason>`, the header fields, and the empty line. An empty or invalid
/// stored reason is replaced by the canonical one (or nothing for unknown codes).
pub fn encode_response_head(head: &ResponseHead, out: &mut BytesMut) {
    let reason: &[u8] = if !head.reason.is_empty() && valid_reason(&head.reason) {
        &head.reason
    } else {
        head.status.canonical_reason().unwrap_or("").as_bytes()
    };
    out.reserve(13 + reason.len() + 2 + head.headers.encoded_len() + 2);
    out.put_slice(b"HTTP/1.1 ");
    out.put_slice(head.status.as_str().as_bytes());
    out.put_u8(b' ');
    out.put_slice(reason);
    out.put_slice(b"\r\n");
    head.headers.encode(out);
    out.put_slice(b"\r\n");
}

/// Writes `<hex len>\r\n`. Callers never send a zero-size chunk here (that is the last chunk).
pub fn encode_chunk_size(len: usize, out: &mut BytesMut) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut digits = [0u8; 2 * std::mem::size_of::<usize>()];
    let mut start = digits.len();
    let mut n = len;
    loop {
        start -= 1;
        digits[start] = HEX[n & 0xf];
        n >>= 4;
        if n == 0 {
            break;
        }
    }
    out.reserve(digits.len() - start + 2);
    out.put_slice(&digits[start..]);
    out.put_slice(b"\r\n");
}

/// Writes the last chunk `0\r\n`, the trailers, and the final `\r\n`. Trailer fields that may not
/// appear in a trailer section (RFC 9110 §6.5.1) are skipped even if a hook added them.
pub fn encode_last_chunk(trailers: Option<&HeaderMap>, out: &mut BytesMut) {
    let Some(trailers) = trailers else {
        out.put_slice(b"0\r\n\r\n");
        return;
    };
    out.reserve(5 + trailers.iter().map(|(n, v)| n.as_str().len() + v.len() + 4).sum::<usize>());
    out.put_slice(b"0\r\n");
    for (name, value) in trailers.iter().filter(|(n, _)| !is_forbidden_trailer(n)) {
        out.put_slice(name.as_str().as_bytes());
        out.put_slice(b": ");
        out.put_slice(value.as_bytes());
        out.put_slice(b"\r\n");
    }
    out.put_slice(b"\r\n");
}

/// The hop-by-hop fields besides Connection (and the fields it names).
const HOP_BY_HOP: [Known; 6] = [
    Known::KeepAlive,
    Known::ProxyConnection,
    Known::Http2Settings,
    Known::Te,
    Known::TransferEncoding,
    Known::Upgrade,
];

/// Whether [`strip_hop_by_hop`] would remove anything: a bit test per field on a borrowed head.
pub fn has_hop_by_hop(headers: &Headers) -> bool {
    headers.has_known(Known::Connection) || HOP_BY_HOP.iter().any(|&k| headers.has_known(k))
}

/// The fields Connection names, which go with it, except the ones [`strip_hop_by_hop`] handles,
/// connection options that are not fields (`close`), and fields a client must not be able to strip.
fn named_by_connection(headers: &Headers) -> Vec<HeaderName> {
    let option = |token: &[u8]| {
        [&b"close"[..], b"keep-alive", b"upgrade", b"te", b"transfer-encoding"]
            .iter()
            .any(|t| token.eq_ignore_ascii_case(t))
    };
    // The usual line, `Connection: keep-alive` or `close`, names nothing: no list to split.
    if headers.single(Known::Connection).is_some_and(|v| !v.contains(&b',') && option(v.trim_ascii())) {
        return Vec::new();
    }
    list_elements(headers, &Known::Connection)
        .filter(|token| !option(token))
        .filter_map(|token| HeaderName::from_bytes(token).ok())
        .filter(|name| !matches!(name.as_str(), "content-length" | "host" | "trailer"))
        .collect()
}

/// Removes hop-by-hop fields (RFC 9110 §7.6.1): Connection and every field it names, Keep-Alive,
/// Proxy-Connection, TE, Transfer-Encoding, Upgrade and HTTP2-Settings (hop-by-hop by RFC 7540
/// §3.2.1, and the h2c upgrade it serves is never forwarded). `Trailer` and `Content-Length` stay (the
/// caller decides framing). A Connection token naming `content-length` or `host` is ignored, so a
/// client cannot make us drop framing or routing fields.
///
/// With `keep_upgrade` the Upgrade field survives, but Connection is still removed: the caller
/// must add `Connection: upgrade` back when forwarding an upgrade offer or a 101.
pub fn strip_hop_by_hop(headers: &mut Headers, keep_upgrade: bool) {
    // Only the fields present are removed (a bit test each on a borrowed head): most messages
    // carry none, or just `Connection: keep-alive`.
    if headers.has_known(Known::Connection) {
        let named = named_by_connection(headers);
        headers.remove(Known::Connection);
        for name in named {
            headers.remove(&name);
        }
    }
    for known in HOP_BY_HOP {
        if headers.has_known(known) && !(keep_upgrade && known == Known::Upgrade) {
            headers.remove(known);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::h1::parse::{parse_request, parse_response, Parsed};
    use crate::protocol::h1::Limits;
    use http::{HeaderValue, StatusCode};

    fn req(raw: &str) -> RequestHead {
        match parse_request(&mut BytesMut::from(raw.as_bytes()), &Limits::default()) {
            Ok(Parsed::Complete(h)) => h,
            other => panic!("{raw:?}: {other:?}"),
        }
    }

    fn encode_req(raw: &str) -> String {
        let mut out = BytesMut::new();
        encode_request_head(&req(raw), &mut out);
        String::from_utf8(out.to_vec()).unwrap()
    }

    #[test]
    fn request_heads_are_canonical() {
        // Names keep the case they came in (and their order); lines are rebuilt with CRLF.
        assert_eq!(
            encode_req("get /a?b HTTP/1.0\nHost: x\nX-A: 1\nx-a: 2\n\n"),
            "get /a?b HTTP/1.1\r\nHost: x\r\nX-A: 1\r\nx-a: 2\r\n\r\n"
        );
        assert_eq!(
            encode_req("GET / HTTP/1.1\r\nHost:x\r\nA:  1 \r\nB: 2\r\n\r\n"),
            "GET / HTTP/1.1\r\nHost: x\r\nA: 1\r\nB: 2\r\n\r\n"
        );
        // The authority replaces Host in place.
        assert_eq!(
            encode_req("GET http://h:1/p?q HTTP/1.1\r\nHost: o\r\n\r\n"),
            "GET /p?q HTTP/1.1\r\nHost: h:1\r\n\r\n"
        );
        assert_eq!(
            encode_req("GET http://h HTTP/1.1\r\nHost: h\r\n\r\n"),
            "GET / HTTP/1.1\r\nHost: h\r\n\r\n"
        );
        assert_eq!(
            encode_req("GET http://h?q HTTP/1.1\r\nHost: h\r\n\r\n"),
            "GET /?q HTTP/1.1\r\nHost: h\r\n\r\n"
        );
        assert_eq!(
            encode_req("OPTIONS * HTTP/1.1\r\nHost: h\r\n\r\n"),
            "OPTIONS * HTTP/1.1\r\nHost: h\r\n\r\n"
        );
        // RFC 9112 §3.2.4: absolute-form without path or query asks about the whole server.
        assert_eq!(
            encode_req("OPTIONS http://h:8 HTTP/1.1\r\nHost: x\r\n\r\n"),
            "OPTIONS * HTTP/1.1\r\nHost: h:8\r\n\r\n"
        );
        assert_eq!(
            encode_req("OPTIONS http://h/ HTTP/1.1\r\nHost: h\r\n\r\n"),
            "OPTIONS / HTTP/1.1\r\nHost: h\r\n\r\n"
        );
        assert_eq!(
            encode_req("OPTIONS http://h?q HTTP/1.1\r\nHost: h\r\n\r\n"),
            "OPTIONS /?q HTTP/1.1\r\nHost: h\r\n\r\n"
        );
        assert_eq!(
            encode_req("GET http://h HTTP/1.1\r\nHost: h\r\n\r\n"),
            "GET / HTTP/1.1\r\nHost: h\r\n\r\n"
        );
        assert_eq!(
            encode_req("CONNECT h:443 HTTP/1.1\r\nHost: h:443\r\n\r\n"),
            "CONNECT h:443 HTTP/1.1\r\nHost: h:443\r\n\r\n"
        );
        let mut head = req("GET / HTTP/1.1\r\nHost: h\r\n\r\n");
        head.uri = http::Uri::from_static("http://h");
        let mut out = BytesMut::new();
        encode_request_head(&head, &mut out);
        assert!(out.starts_with(b"GET / HTTP/1.1\r\n"));
    }

    #[test]
    fn bare_lf_never_reaches_the_wire() {
        let s = encode_req("POST /x HTTP/1.1\nHost: a\nContent-Length: 1\n\n");
        assert!(s.match_indices('\n').all(|(i, _)| s.as_bytes()[i - 1] == b'\r'), "{s:?}");
    }

    #[test]
    fn response_heads() {
        let raw = b"HTTP/1.0 200 Fine\r\nA: b\r\n\r\n";
        let Ok(Parsed::Complete(h)) = parse_response(&mut BytesMut::from(&raw[..]), &Limits::default())
        else {
            panic!()
        };
        let mut out = BytesMut::new();
        encode_response_head(&h, &mut out);
        assert_eq!(&out[..], b"HTTP/1.1 200 Fine\r\nA: b\r\n\r\n");
        let mut h = ResponseHead::new(StatusCode::NOT_FOUND);
        h.reason = bytes::Bytes::new();
        out.clear();
        encode_response_head(&h, &mut out);
        assert_eq!(&out[..], b"HTTP/1.1 404 Not Found\r\n\r\n");
        h.reason = bytes::Bytes::from_static(b"x\r\nSet-Cookie: y");
        out.clear();
        encode_response_head(&h, &mut out);
        assert_eq!(&out[..], b"HTTP/1.1 404 Not Found\r\n\r\n");
        let mut h = ResponseHead::new(StatusCode::from_u16(599).unwrap());
        h.headers.insert(HeaderName::from_static("x"), HeaderValue::from_static("1"));
        out.clear();
        encode_response_head(&h, &mut out);
        assert_eq!(&out[..], b"HTTP/1.1 599 \r\nx: 1\r\n\r\n");
    }

    #[test]
    fn chunk_framing() {
        let mut out = BytesMut::new();
        for n in [1usize, 10, 255, 4096, usize::MAX] {
            encode_chunk_size(n, &mut out);
        }
        let expected = format!("1\r\na\r\nff\r\n1000\r\n{:x}\r\n", usize::MAX);
        assert_eq!(&out[..], expected.as_bytes());
        out.clear();
        encode_last_chunk(None, &mut out);
        assert_eq!(&out[..], b"0\r\n\r\n");
        let mut t = HeaderMap::new();
        t.insert("x-sum", HeaderValue::from_static("1"));
        t.insert("content-length", HeaderValue::from_static("9"));
        out.clear();
        encode_last_chunk(Some(&t), &mut out);
        assert_eq!(&out[..], b"0\r\nx-sum: 1\r\n\r\n");
    }

    #[test]
    fn hop_by_hop() {
        let raw = "GET / HTTP/1.1\r\nHost: a\r\nConnection: keep-alive, X-Secret, Upgrade\r\n\
                   Connection: content-length, host, trailer\r\nX-Secret: s\r\nKeep-Alive: 5\r\n\
                   Proxy-Connection: x\r\nTE: trailers\r\nUpgrade: websocket\r\nTrailer: x-sum\r\n\
                   Content-Length: 3\r\nX-Keep: k\r\n\r\n";
        let mut h = req(raw).headers;
        let mut up = h.clone();
        strip_hop_by_hop(&mut h, false);
        let mut names: Vec<_> = h.keys().map(|n| n.as_str()).collect();
        names.sort_unstable();
        assert_eq!(names, ["content-length", "host", "trailer", "x-keep"]);
        strip_hop_by_hop(&mut up, true);
        assert_eq!(up["upgrade"], "websocket");
        assert!(!up.contains_key("connection") && !up.contains_key("x-secret"));
    }
}
