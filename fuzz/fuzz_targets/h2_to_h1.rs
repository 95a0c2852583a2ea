//! HTTP/2 request heads to the head an HTTP/1.1 upstream gets (`protocol::h2::request_head`, then
//! the H1 encoder), from request parts built the way h2 hands them over: lowercase names, values
//! `http` accepts, a URI from `:scheme`, `:authority` and `:path`.
//! Invariants: `request_head` either refuses with 400 or yields a head with at most one Host, equal
//! to `:authority` when there is one, and what the proxy writes upstream for it parses back as
//! one HTTP/1.1 head with the same method, target, Host and fields (`check_upstream_h1`).
#![no_main]

use arbitrary::{Arbitrary, Unstructured};
use http::header::{HeaderName, HeaderValue, HOST};
use http::{Method, Request, Uri};
use libfuzzer_sys::fuzz_target;
use libproxy_fuzz::check_upstream_h1;
use proxy::protocol::h1::BodyFraming;
use proxy::protocol::h2::request_head;

#[derive(Arbitrary, Debug)]
struct Input<'a> {
    method: &'a [u8],
    authority: Option<&'a [u8]>,
    path: &'a [u8],
    fields: Vec<(&'a [u8], &'a [u8])>,
    empty_body: bool,
}

fuzz_target!(|data: &[u8]| {
    let Ok(input) = Input::arbitrary(&mut Unstructured::new(data)) else { return };
    let Ok(method) = Method::from_bytes(input.method) else { return };
    let mut uri = Uri::builder().scheme("http");
    if let Some(a) = input.authority {
        uri = uri.authority(a);
    }
    let Ok(uri) = uri.path_and_query(input.path).build() else { return };
    let mut req = Request::new(());
    *req.method_mut() = method;
    *req.uri_mut() = uri;
    for (name, value) in &input.fields {
        // h2 refuses uppercase names and connection-specific fields before the proxy sees them.
        let (Ok(n), Ok(v)) = (HeaderName::from_bytes(name), HeaderValue::from_bytes(value)) else { return };
        if name.iter().any(u8::is_ascii_uppercase)
            || ["connection", "keep-alive", "proxy-connection", "transfer-encoding", "upgrade"].contains(&n.as_str())
            || (n == "te" && v != "trailers")
        {
            return;
        }
        req.headers_mut().append(n, v);
    }
    let authority = req.uri().authority().map(|a| a.as_str().to_owned());
    let (parts, ()) = req.into_parts();
    let head = match request_head(parts) {
        Ok(h) => h,
        Err(e) => {
            assert_eq!(e.status, 400, "{e:?}");
            return;
        }
    };
    assert!(head.headers.get_all(HOST).iter().count() <= 1, "more than one Host");
    if let Some(a) = authority {
        let host = head.headers.get(HOST).expect("an :authority becomes the Host");
        assert!(host.as_bytes().eq_ignore_ascii_case(a.as_bytes()), "Host {host:?} vs :authority {a:?}");
    }
    let framing = if input.empty_body { BodyFraming::Empty } else { BodyFraming::Chunked };
    check_upstream_h1(&head, framing);
});
