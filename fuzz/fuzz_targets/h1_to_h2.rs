//! HTTP/1.1 request heads to the request sent to an HTTP/2 upstream
//! (`protocol::h2::request_to_h2`) and back (our HTTP/2 server's `Intake`), and response heads to
//! the HPACK block our HTTP/2 server sends (`protocol::h2::server::encode_head`).
//! Invariants: a head that parses either has no authority to send (400) or becomes an HTTP/2
//! request with no Host and no connection-specific field, whose `:authority` is the target's or
//! the Host, with the same method and path; read back as the proxy reads an HTTP/2 request it is
//! the same request again. A response block decodes to its status first and carries no
//! connection-specific field.
#![no_main]

use bytes::BytesMut;
use http::header::{HeaderName, HeaderValue, HOST};
use http::HeaderMap;
use libfuzzer_sys::fuzz_target;
use libproxy_fuzz::{assert_no_connection_specific, limits};
use proxy::protocol::h1::{parse_request, parse_response, Parsed};
use proxy::protocol::h2::hpack::Decoder;
use proxy::protocol::h2::request_to_h2;
use proxy::protocol::h2::server::{encode_head, Intake};
use proxy::protocol::http::length::content_length;

fuzz_target!(|data: &[u8]| {
    let Some((&sel, raw)) = data.split_first() else { return };
    let limits = limits(sel);
    let mut buf = BytesMut::from(raw);
    if let Ok(Parsed::Complete(resp)) = parse_response(&mut buf, &limits) {
        let block = encode_head(resp.status, &resp.headers);
        let (mut status, mut fields) = (None, HeaderMap::new());
        let decoded = Decoder::new(4096).decode(&block, |n, v| {
            match n.strip_prefix(b":") {
                Some(b"status") if status.is_none() && fields.is_empty() => status = Some(v.to_vec()),
                _ => {
                    fields.append(HeaderName::from_bytes(n).unwrap(), HeaderValue::from_bytes(v).unwrap());
                }
            }
            Ok(())
        });
        assert_eq!(decoded, Ok(true));
        assert_eq!(status.as_deref(), Some(resp.status.as_str().as_bytes()));
        assert_no_connection_specific(&fields);
        return;
    }
    let mut buf = BytesMut::from(raw);
    let Ok(Parsed::Complete(head)) = parse_request(&mut buf, &limits) else { return };
    // The proxy refuses an invalid Content-Length before any upstream sees the request.
    if content_length(&head.headers).is_err() {
        return;
    }
    let req = match request_to_h2(head.clone(), sel & 1 == 1) {
        Ok(r) => r,
        Err(e) => {
            assert_eq!(e.status, 400, "{e:?}");
            return;
        }
    };
    assert!(!req.headers().contains_key(HOST), "Host sent over HTTP/2");
    assert_no_connection_specific(req.headers());
    assert_eq!(req.method(), head.method);
    let authority = req.uri().authority().expect("an HTTP/2 request has an authority").as_str().to_owned();
    match (head.uri.authority(), head.headers.get(HOST)) {
        (Some(a), _) => assert_eq!(authority, a.as_str()),
        (None, Some(h)) => assert!(authority.as_bytes().eq_ignore_ascii_case(h.as_bytes())),
        (None, None) => unreachable!("request_to_h2 needs an authority"),
    }
    let (parts, ()) = req.into_parts();
    let path = parts.uri.path_and_query().map(|p| p.as_str().to_owned());
    // As the fields arrive from an HTTP/2 client (h2's): pseudo-headers first, and a CONNECT
    // with neither :scheme nor :path (RFC 9113 §8.5).
    let mut intake = Intake::new(256, usize::MAX);
    let mut pseudo = vec![(":method", parts.method.as_str()), (":authority", authority.as_str())];
    if parts.method != http::Method::CONNECT {
        pseudo.push((":scheme", parts.uri.scheme_str().unwrap_or("http")));
        pseudo.push((":path", path.as_deref().unwrap_or("/")));
    }
    for (n, v) in pseudo {
        intake.field(n.as_bytes(), v.as_bytes()).expect("a pseudo-header the proxy sends");
    }
    for (n, v) in &parts.headers {
        intake.field(n.as_str().as_bytes(), v.as_bytes()).expect("a field the proxy sends");
    }
    let back = intake.finish().expect("what the proxy sends over HTTP/2 it reads back");
    assert_eq!(back.method, head.method);
    if back.method != http::Method::CONNECT {
        assert_eq!(back.uri.path_and_query().map(|p| p.as_str().to_owned()), path);
    }
    assert!(back.headers.get(HOST).is_some_and(|h| h.as_bytes().eq_ignore_ascii_case(authority.as_bytes())));
});
