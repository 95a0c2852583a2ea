//! HTTP/1.1 request heads to the request sent to an HTTP/2 upstream
//! (`protocol::h2::request_to_h2`) and back (`request_head`), and response heads to HTTP/2
//! (`response_to_h2`).
//! Invariants: a head that parses either has no authority to send (400) or becomes an HTTP/2
//! request with no Host and no connection-specific field, whose `:authority` is the target's or
//! the Host, with the same method and path; read back as the proxy reads an HTTP/2 request it is
//! the same request again. A response keeps its status and loses its connection-specific fields.
#![no_main]

use bytes::BytesMut;
use http::header::HOST;
use libfuzzer_sys::fuzz_target;
use libproxy_fuzz::{assert_no_connection_specific, limits};
use proxy::protocol::h1::{parse_request, parse_response, Parsed};
use proxy::protocol::h2::{request_head, request_to_h2, response_to_h2};

fuzz_target!(|data: &[u8]| {
    let Some((&sel, raw)) = data.split_first() else { return };
    let limits = limits(sel);
    let mut buf = BytesMut::from(raw);
    if let Ok(Parsed::Complete(resp)) = parse_response(&mut buf, &limits) {
        let h2 = response_to_h2(&resp);
        assert_eq!(h2.status(), resp.status);
        assert_no_connection_specific(h2.headers());
        return;
    }
    let mut buf = BytesMut::from(raw);
    let Ok(Parsed::Complete(head)) = parse_request(&mut buf, &limits) else { return };
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
    let back = request_head(parts).expect("what the proxy sends over HTTP/2 it reads back");
    assert_eq!(back.method, head.method);
    assert_eq!(back.uri.path_and_query().map(|p| p.as_str().to_owned()), path);
    assert!(back.headers.get(HOST).is_some_and(|h| h.as_bytes().eq_ignore_ascii_case(authority.as_bytes())));
});
