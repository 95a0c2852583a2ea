//! Request and response head parsing: httparse tokenizes, this module enforces RFC 9112 rules
//! httparse does not know about (limits, request-target form, Host) and builds zero-copy heads.

use std::cell::Cell;
use std::ops::Range;

use bytes::{Bytes, BytesMut};
use http::header::{HeaderName, HeaderValue, HOST};
use http::uri::Authority;
use http::{HeaderMap, Method, StatusCode, Uri, Version};

use super::{H1Error, Limits, RequestHead, ResponseHead};
pub use crate::protocol::http::host::valid_host_value;
use crate::protocol::http::{Field, Headers, Known};

/// Outcome of a parse attempt on a possibly incomplete buffer.
#[derive(Debug)]
pub enum Parsed<T> {
    /// A whole head was parsed and removed from the buffer.
    Complete(T),
    /// More bytes are needed; the buffer was left untouched.
    Partial,
}

/// RFC 9112 §2.2 tolerates empty lines before a request line (left over from a previous body);
/// more than a handful is not a client bug but noise, so it is refused.
const MAX_EMPTY_LINES: usize = 4;

/// Header slots kept on the stack; larger `max_headers` fall back to one heap allocation.
const STACK_HEADERS: usize = 128;

const fn bad(reason: &'static str) -> H1Error {
    H1Error::new(400, reason)
}

/// Header field names plus value positions, so values can later be sliced out of the frozen head.
pub(super) type Fields = Vec<(HeaderName, Range<usize>)>;

/// Position of `part` inside `base`; `part` must be a subslice (httparse only returns those).
pub(super) fn span(base: &[u8], part: &[u8]) -> Range<usize> {
    if part.is_empty() {
        return 0..0;
    }
    let start = part.as_ptr() as usize - base.as_ptr() as usize;
    start..start + part.len()
}

thread_local! {
    /// A field list lent to each parse on this thread: names and value positions live only from
    /// tokenizing a head to building its map, and a fresh vector per head showed in profiles.
    static SPARE_FIELDS: Cell<Fields> = const { Cell::new(Vec::new()) };
}

/// Lists above this many fields are not kept for the next parse.
const SPARE_FIELDS_MAX: usize = 256;

/// Copies names (they need lowercasing anyway) and records where values sit.
pub(super) fn collect_fields(base: &[u8], headers: &[httparse::Header<'_>]) -> Option<Fields> {
    let mut fields = SPARE_FIELDS.take();
    fields.clear();
    fields.reserve(headers.len());
    for h in headers {
        let name = HeaderName::from_bytes(h.name.as_bytes()).ok()?;
        fields.push((name, span(base, h.value)));
    }
    Some(fields)
}

/// The field index of a head (see [`Headers`]): where each name and value sits in `base`, and
/// which of the fields the proxy reads it is. httparse has checked names as tokens and values as
/// field values, the same rules `HeaderName` and `HeaderValue` apply.
fn index_fields(base: &[u8], headers: &[httparse::Header<'_>]) -> Option<Vec<Field>> {
    let mut fields = Vec::with_capacity(headers.len());
    for h in headers {
        let name = h.name.as_bytes();
        // `HeaderName`'s own bound, so that every indexed name can become one.
        if name.len() > usize::from(u16::MAX) {
            return None;
        }
        fields.push(Field::new(base, span(base, name), span(base, h.value), Known::classify(name)));
    }
    Some(fields)
}

/// Builds the map with values that share `head`'s memory. The checked constructor is kept (no
/// `unsafe` in the core); it is a cheap rescan of bytes httparse already accepted.
pub(super) fn build_headers(head: &Bytes, mut fields: Fields) -> Option<HeaderMap> {
    let mut map = HeaderMap::with_capacity(fields.len());
    for (name, range) in fields.drain(..) {
        let value = HeaderValue::from_maybe_shared(head.slice(range)).ok()?;
        map.append(name, value);
    }
    if fields.capacity() <= SPARE_FIELDS_MAX {
        SPARE_FIELDS.set(fields);
    }
    Some(map)
}

/// Runs `f` with a header slot array of exactly `max` entries.
pub(super) fn with_slots<'b, R>(max: usize, f: impl FnOnce(&mut [httparse::Header<'b>]) -> R) -> R {
    if max <= STACK_HEADERS {
        let mut stack = [httparse::EMPTY_HEADER; STACK_HEADERS];
        f(&mut stack[..max])
    } else {
        let mut heap = vec![httparse::EMPTY_HEADER; max];
        f(&mut heap)
    }
}

/// Runs `f` with `max` header slots left uninitialised: httparse fills only what it parses, and
/// initialising 128 slots (4 KiB) on every parse attempt showed up in profiles.
fn with_uninit_slots<'b, R>(
    max: usize,
    f: impl FnOnce(&mut [std::mem::MaybeUninit<httparse::Header<'b>>]) -> R,
) -> R {
    if max <= STACK_HEADERS {
        let mut stack = [const { std::mem::MaybeUninit::uninit() }; STACK_HEADERS];
        f(&mut stack[..max])
    } else {
        let mut heap = Vec::with_capacity(max);
        heap.resize_with(max, std::mem::MaybeUninit::uninit);
        f(&mut heap)
    }
}

/// Length of the leading empty lines, or `None` if the buffer holds nothing else yet.
fn skip_empty_lines(buf: &[u8]) -> Result<Option<usize>, H1Error> {
    let mut i = 0;
    let mut lines = 0;
    loop {
        match buf.get(i) {
            None => return Ok(None),
            Some(b'\r') => match buf.get(i + 1) {
                None => return Ok(None),
                Some(b'\n') => i += 2,
                Some(_) => return Err(bad("bare CR before request line")),
            },
            Some(b'\n') => i += 1,
            Some(_) => return Ok(Some(i)),
        }
        lines += 1;
        if lines > MAX_EMPTY_LINES {
            return Err(bad("too many empty lines before request line"));
        }
    }
}

struct RawRequest {
    len: usize,
    method: Method,
    version: Version,
    target: Range<usize>,
    fields: Vec<Field>,
}

/// `Partial` carries the target length when the request line was already complete.
enum Tokenized<T> {
    Done(T),
    Partial(Option<usize>),
}

fn tokenize_request(buf: &[u8], limits: &Limits) -> Result<Tokenized<RawRequest>, H1Error> {
    with_uninit_slots(limits.max_headers, |slots| {
        let mut req = httparse::Request::new(&mut []);
        let len = match req.parse_with_uninit_headers(buf, slots) {
            Ok(httparse::Status::Complete(n)) => n,
            Ok(httparse::Status::Partial) => return Ok(Tokenized::Partial(req.path.map(str::len))),
            Err(httparse::Error::TooManyHeaders) => return Err(H1Error::new(431, "too many headers")),
            Err(httparse::Error::Version) if looks_like_http_version(buf) => {
                return Err(H1Error::new(505, "unsupported HTTP version"))
            }
            Err(_) => return Err(bad("malformed request head")),
        };
        let method = req.method.and_then(|m| Method::from_bytes(m.as_bytes()).ok());
        let method = method.ok_or(bad("invalid method"))?;
        let version = match req.version {
            Some(0) => Version::HTTP_10,
            Some(1) => Version::HTTP_11,
            _ => return Err(H1Error::new(505, "unsupported HTTP version")),
        };
        let target = span(buf, req.path.unwrap_or("").as_bytes());
        let fields = index_fields(buf, req.headers).ok_or(bad("invalid header name"))?;
        Ok(Tokenized::Done(RawRequest { len, method, version, target, fields }))
    })
}

/// RFC 9110 §2.5: a message with a higher minor version of a major version we speak is processed
/// as the highest minor we implement. httparse knows only `HTTP/1.0` and `HTTP/1.1`, so when the
/// request line ends in `HTTP/1.2`..`HTTP/1.9` (the line may still be incomplete) its minor digit is
/// rewritten to `1` in place and the caller tokenizes again; the digit belongs to no field value and
/// the head is re-serialised as HTTP/1.1 anyway. Only reached after httparse refused the version,
/// so well-formed requests pay nothing. Returns whether it rewrote the digit.
fn fold_minor_version(buf: &mut [u8]) -> bool {
    let end = buf.iter().position(|&b| b == b'\n').unwrap_or(buf.len());
    let line_end = if end > 0 && buf[end - 1] == b'\r' { end - 1 } else { end };
    let Some(start) = line_end.checked_sub(9) else { return false };
    match &mut buf[start..line_end] {
        [b' ', b'H', b'T', b'T', b'P', b'/', b'1', b'.', minor] if (b'2'..=b'9').contains(minor) => {
            *minor = b'1';
            true
        }
        _ => false,
    }
}

/// httparse reports any bad version token as `Version`; only a well-formed `HTTP/x.y` we do not
/// speak deserves 505, garbage is a plain 400.
fn looks_like_http_version(buf: &[u8]) -> bool {
    let line = buf.split(|&b| b == b'\n').next().unwrap_or(&[]);
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let token = line.rsplit(|&b| b == b' ').next().unwrap_or(&[]);
    matches!(token, [b'H', b'T', b'T', b'P', b'/', a, b'.', b] if a.is_ascii_digit() && b.is_ascii_digit())
}

/// Parses one request head from the front of `buf`. On `Complete` the head bytes (and any empty
/// lines before it) have been removed from `buf`; on `Partial` it is untouched but for a 1.x minor
/// version folded to `1.1` (see [`fold_minor_version`]).
pub fn parse_request(buf: &mut BytesMut, limits: &Limits) -> Result<Parsed<RequestHead>, H1Error> {
    let Some(skip) = skip_empty_lines(buf)? else {
        return Ok(Parsed::Partial);
    };
    let tokenized = match tokenize_request(&buf[skip..], limits) {
        Err(e) if e.status == 505 && fold_minor_version(&mut buf[skip..]) => {
            tokenize_request(&buf[skip..], limits)
        }
        r => r,
    };
    let raw = match tokenized? {
        Tokenized::Done(raw) => raw,
        Tokenized::Partial(target_len) => {
            check_partial_request(&buf[skip..], buf.len(), target_len, limits)?;
            return Ok(Parsed::Partial);
        }
    };
    if raw.target.len() > limits.max_uri_len {
        return Err(H1Error::new(414, "request-target too long"));
    }
    if skip + raw.len > limits.max_header_bytes {
        return Err(H1Error::new(431, "request head too large"));
    }
    let _ = buf.split_to(skip);
    let head = buf.split_to(raw.len).freeze();
    let mut headers = Headers::from_wire(head.clone(), raw.fields);
    let server_wide = is_server_wide_options(&raw.method, &head[raw.target.clone()]);
    let uri = parse_target(&raw.method, &head[raw.target.clone()], head.slice(raw.target))?;
    check_host(raw.version, &uri, &mut headers)?;
    // RFC 9112 §3.2.4: the last proxy forwards it as `*` (Host now carries its authority).
    // `http::Uri` reads `http://h` as path `/`, so this is only visible in the raw target.
    let uri = if server_wide { Uri::from_static("*") } else { uri };
    Ok(Parsed::Complete(RequestHead { method: raw.method, uri, version: raw.version, headers }))
}

/// Refuses an incomplete head early only when no continuation can make it acceptable, so that a
/// head accepted whole never has a prefix refused (the fuzz target checks this):
/// - a request-target longer than `max_uri_len` (414): the one httparse delimited, or the one still
///   being read (the bytes after the method and its space; httparse allows only one SP there, and
///   a target only grows);
/// - a buffer past `max_header_bytes` (431): a head that is not complete yet spans the whole buffer.
///
/// A long request line whose target fits (a long method) is therefore not blamed on the URI: it is
/// 431 once the head passes `max_header_bytes`, as it would be whole.
fn check_partial_request(
    rest: &[u8],
    total: usize,
    target_len: Option<usize>,
    limits: &Limits,
) -> Result<(), H1Error> {
    let target_so_far = target_len.or_else(|| {
        // httparse stops at the first byte a request line cannot have, so without a delimited
        // target and with a space, everything after that first space is target.
        let sp = rest.iter().position(|&b| b == b' ')?;
        Some(rest.len() - sp - 1)
    });
    if target_so_far.is_some_and(|n| n > limits.max_uri_len) {
        return Err(H1Error::new(414, "request-target too long"));
    }
    if total > limits.max_header_bytes {
        return Err(H1Error::new(431, "request head too large"));
    }
    Ok(())
}

/// An absolute-form OPTIONS with neither path nor query (`OPTIONS http://h`): a question about the
/// server as a whole rather than about a resource.
fn is_server_wide_options(method: &Method, raw: &[u8]) -> bool {
    let rest = raw.strip_prefix(b"http://").or_else(|| raw.strip_prefix(b"https://"));
    *method == Method::OPTIONS && rest.is_some_and(|r| !r.iter().any(|&b| b == b'/' || b == b'?'))
}

/// RFC 9112 §3.2: the form of the target must match the method.
fn parse_target(method: &Method, raw: &[u8], shared: Bytes) -> Result<Uri, H1Error> {
    if raw.contains(&b'#') {
        return Err(bad("fragment in request-target"));
    }
    // RFC 3986 has no raw 8-bit bytes; http::Uri lets them through, and a backend may decode them
    // differently from our routing.
    if !raw.iter().all(|b| b.is_ascii_graphic()) {
        return Err(bad("non-ASCII byte in request-target"));
    }
    let uri = Uri::from_maybe_shared(shared).map_err(|_| bad("invalid request-target"))?;
    if method == Method::CONNECT {
        let authority_form = uri.scheme().is_none() && uri.path_and_query().is_none();
        match uri.authority() {
            Some(a) if authority_form && valid_host(a) && has_port(a) => return Ok(uri),
            _ => return Err(bad("CONNECT needs an authority-form target")),
        }
    }
    if raw == b"*" {
        return if method == Method::OPTIONS { Ok(uri) } else { Err(bad("'*' target outside OPTIONS")) };
    }
    if raw.starts_with(b"/") {
        return Ok(uri);
    }
    // Only lowercase schemes: http::Uri treats `HTTP` as an unknown scheme, and no real client
    // sends it.
    if raw.starts_with(b"http://") || raw.starts_with(b"https://") {
        if uri.authority().is_some_and(valid_host) {
            return Ok(uri);
        }
        return Err(bad("invalid authority in absolute-form target"));
    }
    Err(bad("unsupported request-target form"))
}

/// The target's authority as a Host value: the same rule as a Host field's
/// ([`valid_host_value`]), so that the Host made from it is one the proxy itself would accept
/// (http's `Authority` alone accepts ports like `-1`, or 40 digits).
fn valid_host(a: &Authority) -> bool {
    valid_host_value(a.as_str().as_bytes())
}

fn has_port(a: &Authority) -> bool {
    a.as_str().len() > a.host().len()
}

/// RFC 9112 §3.2: at most one Host, and a valid one. Absolute-form wins over it (§3.2.2) and
/// stands in for a missing one, as does the authority of a CONNECT; HTTP/1.1 origin-form without
/// Host is a 400. HTTP/1.0 may go without: the upstream request gets the peer's name then.
fn check_host(version: Version, uri: &Uri, headers: &mut Headers) -> Result<(), H1Error> {
    let missing = match headers.single(Known::Host) {
        Some(v) if !valid_host_value(v) => return Err(bad("invalid Host")),
        Some(_) => false,
        None if headers.has_known(Known::Host) => return Err(bad("repeated Host")),
        None => true,
    };
    // Only absolute-form and CONNECT's authority-form have an authority (see `parse_target`).
    let authority = uri.authority().filter(|_| missing || uri.scheme().is_some());
    match authority {
        Some(a) => {
            let value = HeaderValue::from_str(a.as_str()).map_err(|_| bad("invalid authority"))?;
            headers.insert(HOST, value);
        }
        None if missing && version == Version::HTTP_11 => return Err(bad("missing Host")),
        None => {}
    }
    headers.mark_checked(Known::Host);
    Ok(())
}

/// Request fields whose names contain `_`: with `drop`, removes them and returns `Ok`; otherwise
/// an `Err` (400) when there is one. One pass over the names, which rarely hold one.
pub fn strip_underscore_fields(headers: &mut Headers, drop: bool) -> Result<(), H1Error> {
    if !headers.any_name(|n| n.contains(&b'_')) {
        return Ok(());
    }
    if !drop {
        return Err(bad("field name with an underscore"));
    }
    headers.retain_names(|n| !n.contains(&b'_'));
    Ok(())
}

struct RawResponse {
    len: usize,
    version: Version,
    code: u16,
    reason: Range<usize>,
    fields: Vec<Field>,
}

const fn upstream(reason: &'static str) -> H1Error {
    H1Error::new(502, reason)
}

fn tokenize_response(buf: &[u8], limits: &Limits) -> Result<Option<RawResponse>, H1Error> {
    with_uninit_slots(limits.max_headers, |slots| {
        let mut res = httparse::Response::new(&mut []);
        let len = match httparse::ParserConfig::default()
            .parse_response_with_uninit_headers(&mut res, buf, slots)
        {
            Ok(httparse::Status::Complete(n)) => n,
            Ok(httparse::Status::Partial) => return Ok(None),
            Err(_) => return Err(upstream("malformed response head")),
        };
        let version = match res.version {
            Some(0) => Version::HTTP_10,
            Some(1) => Version::HTTP_11,
            _ => return Err(upstream("unsupported HTTP version")),
        };
        let code = res.code.ok_or(upstream("missing status"))?;
        let reason = span(buf, res.reason.unwrap_or("").as_bytes());
        let fields = index_fields(buf, res.headers).ok_or(upstream("invalid header name"))?;
        Ok(Some(RawResponse { len, version, code, reason, fields }))
    })
}

/// Parses one response head from the front of `buf`; every error is a 502 (upstream's fault).
pub fn parse_response(buf: &mut BytesMut, limits: &Limits) -> Result<Parsed<ResponseHead>, H1Error> {
    let Some(raw) = tokenize_response(buf, limits)? else {
        if buf.len() > limits.max_header_bytes {
            return Err(upstream("response head too large"));
        }
        return Ok(Parsed::Partial);
    };
    if raw.len > limits.max_header_bytes {
        return Err(upstream("response head too large"));
    }
    let status = StatusCode::from_u16(raw.code).map_err(|_| upstream("invalid status code"))?;
    let head = buf.split_to(raw.len).freeze();
    let reason = head.slice(raw.reason.clone());
    let headers = Headers::from_wire(head, raw.fields);
    Ok(Parsed::Complete(ResponseHead { status, version: raw.version, reason, headers }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req_with(raw: &[u8], limits: &Limits) -> Result<Parsed<RequestHead>, H1Error> {
        parse_request(&mut BytesMut::from(raw), limits)
    }

    fn ok(raw: &[u8]) -> RequestHead {
        match req_with(raw, &Limits::default()) {
            Ok(Parsed::Complete(h)) => h,
            other => panic!("{:?}: {other:?}", String::from_utf8_lossy(raw)),
        }
    }

    fn status_with(raw: &[u8], limits: &Limits) -> u16 {
        match req_with(raw, limits) {
            Err(e) => e.status,
            other => panic!("{:?} accepted: {other:?}", String::from_utf8_lossy(raw)),
        }
    }

    fn status(raw: &[u8]) -> u16 {
        status_with(raw, &Limits::default())
    }

    #[test]
    fn request_is_split_off_and_body_stays() {
        let mut buf = BytesMut::from(&b"GET /a?b=1 HTTP/1.1\r\nHost: ex\r\nX-Y:  v \r\n\r\nBODY"[..]);
        let Ok(Parsed::Complete(h)) = parse_request(&mut buf, &Limits::default()) else { panic!() };
        assert_eq!((h.method, h.version), (Method::GET, Version::HTTP_11));
        assert_eq!(h.uri, "/a?b=1");
        assert_eq!((h.headers["host"].as_bytes(), h.headers["x-y"].as_bytes()), (&b"ex"[..], &b"v"[..]));
        assert_eq!(&buf[..], b"BODY");
    }

    #[test]
    fn partial_leaves_buffer_untouched() {
        let full = b"\r\nPOST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n";
        for cut in 0..full.len() {
            let mut buf = BytesMut::from(&full[..cut]);
            let r = parse_request(&mut buf, &Limits::default());
            assert!(matches!(r, Ok(Parsed::Partial)), "{cut}");
            assert_eq!(&buf[..], &full[..cut]);
        }
        assert_eq!(ok(full).method, Method::POST);
    }

    #[test]
    fn accepted_forms() {
        assert_eq!(ok(b"GET / HTTP/1.0\r\n\r\n").version, Version::HTTP_10);
        assert_eq!(ok(b"GET / HTTP/1.1\nHost: a\n\n").headers["host"], "a");
        assert_eq!(ok(b"OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n").uri, "*");
        let c = ok(b"CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n");
        assert_eq!(c.uri.authority().unwrap(), "example.com:443");
        let a = ok(b"GET http://real.example:8080/p?q HTTP/1.1\r\nHost: other\r\n\r\n");
        assert_eq!(a.headers["host"], "real.example:8080");
        assert_eq!(a.headers.get_all("host").iter().count(), 1);
        let a = ok(b"GET https://h/ HTTP/1.0\r\n\r\n");
        assert_eq!(a.headers["host"], "h");
        let p = ok(b"PURGE /x HTTP/1.1\r\nHost: [::1]:80\r\n\r\n");
        assert_eq!(p.method.as_str(), "PURGE");
        assert_eq!(ok(b"\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n").uri, "/");
    }

    /// RFC 9110 §2.5: later 1.x minors are served as 1.1, with 1.1's rules (Host required).
    #[test]
    fn higher_minor_versions_are_served_as_1_1() {
        for minor in 2..=9 {
            let raw = format!("GET /m HTTP/1.{minor}\r\nHost: a\r\nX-V: HTTP/1.{minor}\r\n\r\n");
            let h = ok(raw.as_bytes());
            assert_eq!(h.version, Version::HTTP_11, "{raw:?}");
            assert_eq!(h.headers["x-v"], format!("HTTP/1.{minor}").as_str(), "field values untouched");
        }
        assert_eq!(ok(b"GET / HTTP/1.9\nHost: a\n\n").version, Version::HTTP_11);
        // The line may arrive in pieces, cut anywhere (also right after the version digit).
        let full = b"GET / HTTP/1.5\r\nHost: a\r\n\r\n";
        for cut in 0..full.len() {
            let mut buf = BytesMut::from(&full[..cut]);
            assert!(matches!(parse_request(&mut buf, &Limits::default()), Ok(Parsed::Partial)), "{cut}");
        }
        assert_eq!(ok(full).version, Version::HTTP_11);
    }

    /// RFC 9112 §3.2: the target's authority stands in for a missing Host; origin-form HTTP/1.1
    /// without Host is refused; HTTP/1.0 may go without (the peer's name is added upstream).
    #[test]
    fn host_from_the_target_when_missing() {
        let hosts = |h: &RequestHead| {
            h.headers.get_all("host").iter().map(|v| v.to_str().unwrap().to_owned()).collect::<Vec<_>>()
        };
        assert_eq!(hosts(&ok(b"GET http://h.test:8/p HTTP/1.1\r\n\r\n")), ["h.test:8"]);
        assert_eq!(hosts(&ok(b"GET https://h.test/p HTTP/1.0\r\n\r\n")), ["h.test"]);
        assert_eq!(hosts(&ok(b"OPTIONS http://h.test HTTP/1.1\r\n\r\n")), ["h.test"]);
        assert_eq!(hosts(&ok(b"CONNECT h.test:443 HTTP/1.1\r\n\r\n")), ["h.test:443"]);
        assert_eq!(hosts(&ok(b"CONNECT h.test:443 HTTP/1.0\r\n\r\n")), ["h.test:443"]);
        assert_eq!(hosts(&ok(b"CONNECT h.test:443 HTTP/1.1\r\nHost: h.test:443\r\n\r\n")), ["h.test:443"]);
        assert!(hosts(&ok(b"GET / HTTP/1.0\r\n\r\n")).is_empty());
        assert!(hosts(&ok(b"OPTIONS * HTTP/1.0\r\n\r\n")).is_empty());
        for raw in [
            &b"GET / HTTP/1.1\r\n\r\n"[..],
            b"OPTIONS * HTTP/1.1\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost:\r\n\r\n",
            // A port http's Authority takes but no Host field may carry (found by fuzzing: the
            // Host made from it was refused when the request was read back).
            b"GET http://h.test:0000000000000000000000000000000000000013/p HTTP/1.1\r\n\r\n",
            b"GET http://h.test:65536/p HTTP/1.1\r\n\r\n",
            b"CONNECT h.test:000443 HTTP/1.1\r\n\r\n",
        ] {
            assert_eq!(status(raw), 400, "{:?}", String::from_utf8_lossy(raw));
        }
        for host in ["", "a b", "u@a", "a:-1", "[::1"] {
            let raw = format!("GET / HTTP/1.0\r\nHost: {host}\r\n\r\n");
            assert_eq!(status(raw.as_bytes()), 400, "1.0 Host {host:?}");
        }
    }

    #[test]
    #[rustfmt::skip]
    fn malformed_requests_get_exact_status() {
        let lines: &[(&[u8], u16)] = &[
            (b"GET / HTTP/1.1\r\n\r\n", 400),                           // missing Host
            (b"GET / HTTP/1.0\r\nHost: a\r\nHost: a\r\n\r\n", 400),   // two Hosts on 1.0
            (b"GET /a#b HTTP/1.1\r\nHost: a\r\n\r\n", 400),            // fragment
            (b"GET / HTTP/2.0\r\nHost: a\r\n\r\n", 505),
            (b"GET / HTTP/3.0\r\nHost: a\r\n\r\n", 505),
            (b"GET / HTTP/2.1\r\nHost: a\r\n\r\n", 505),
            (b"GET / HTTP/0.9\r\nHost: a\r\n\r\n", 505),
            (b"GET / HTTP/1.2\r\n\r\n", 400),                           // 1.x minor: Host needed
            (b"GET / HTTP/1.10\r\nHost: a\r\n\r\n", 400),             // two-digit minor
            (b"GET / HTTP/1.\r\nHost: a\r\n\r\n", 400),
            (b"GET / HTTP/1.x\r\nHost: a\r\n\r\n", 400),
            (b"GET / HTTP/1.2 \r\nHost: a\r\n\r\n", 400),             // trailing space
            (b"GET / HTTP/12\r\nHost: a\r\n\r\n", 400),
            (b"GET / http/1.2\r\nHost: a\r\n\r\n", 400),
            (b"GET / FOO/1.1\r\nHost: a\r\n\r\n", 400),
            (b"GET /\r\n\r\n", 400),                                   // HTTP/0.9 style
            (b"GET / HTTP/1.1\r\n Host: a\r\n\r\n", 400),              // leading space
            (b" GET / HTTP/1.1\r\nHost: a\r\n\r\n", 400),
            (b"GET  / HTTP/1.1\r\nHost: a\r\n\r\n", 400),              // double space
            (b"G@T / HTTP/1.1\r\nHost: a\r\n\r\n", 400),               // bad method
            (b"GET /\x00 HTTP/1.1\r\nHost: a\r\n\r\n", 400),            // NUL in target
            (b"GET /\xc3\xa9 HTTP/1.1\r\nHost: a\r\n\r\n", 400),        // raw UTF-8 target
            (b"GET a/b HTTP/1.1\r\nHost: a\r\n\r\n", 400),             // not origin-form
            (b"GET * HTTP/1.1\r\nHost: a\r\n\r\n", 400),               // * outside OPTIONS
            (b"GET example.com:80 HTTP/1.1\r\nHost: a\r\n\r\n", 400),  // authority-form, GET
            (b"CONNECT /x HTTP/1.1\r\nHost: a\r\n\r\n", 400),          // CONNECT origin-form
            (b"CONNECT example.com HTTP/1.1\r\nHost: a\r\n\r\n", 400), // CONNECT no port
            (b"CONNECT u@a:1 HTTP/1.1\r\nHost: a\r\n\r\n", 400),       // CONNECT userinfo
            (b"GET ftp://a/ HTTP/1.1\r\nHost: a\r\n\r\n", 400),        // foreign scheme
            (b"GET HTTP://a/ HTTP/1.1\r\nHost: a\r\n\r\n", 400),       // uppercase scheme
            (b"GET http://u:p@a/ HTTP/1.1\r\nHost: a\r\n\r\n", 400),   // userinfo
            (b"GET http:///x HTTP/1.1\r\nHost: a\r\n\r\n", 400),       // empty authority
            (b"\r\n\r\n\r\n\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n", 400), // 5 empty lines
            (b"\rGET / HTTP/1.1\r\nHost: a\r\n\r\n", 400),             // bare CR first
            (b"GET / HTTP/1.1\rHost: a\r\n\r\n", 400),                  // bare CR line end
        ];
        for (raw, want) in lines {
            assert_eq!(status(raw), *want, "{:?}", String::from_utf8_lossy(raw));
        }
        // Appended after `GET / HTTP/1.1` + `Host: a`.
        let fields: &[(&[u8], u16)] = &[
            (b"Host: b\r\n", 400),               // two Hosts
            (b"host: a\r\n", 400),               // same Host twice
            (b"X: a\r\n b\r\n", 400),           // obs-fold
            (b"X: a\rb\r\n", 400),               // bare CR in value
            (b"X: a\0b\r\n", 400),               // NUL in value
            (b"X: a\x01b\r\n", 400),             // CTL in value
            (b"X: a\x7fb\r\n", 400),             // DEL in value
            (b"Content-Length : 5\r\n", 400),    // space before colon
            (b"Content-Length\t: 5\r\n", 400),   // tab before colon
            (b"X\tY: 1\r\n", 400),               // tab in name
            (b": v\r\n", 400),                   // empty name
            (b"NoColon\r\n", 400),
            (b"X: a\r\r\n", 400),                // CR before CRLF
        ];
        for (extra, want) in fields {
            let raw = [&b"GET / HTTP/1.1\r\nHost: a\r\n"[..], extra, b"\r\n"].concat();
            assert_eq!(status(&raw), *want, "{:?}", String::from_utf8_lossy(&raw));
        }
        for host in ["", "a b", "u@a", "a/b", "a:b:c", "a:-1", "a:", "a:+1", "a:65536", "[::1"] {
            let raw = format!("GET / HTTP/1.1\r\nHost: {host}\r\n\r\n");
            assert_eq!(status(raw.as_bytes()), 400, "Host {host:?}");
        }
    }

    #[test]
    fn underscore_fields_are_dropped_or_refused() {
        let raw = b"POST / HTTP/1.1\r\nHost: a\r\nContent_Length: 5\r\nX-A: 1\r\n\
                    transfer_encoding: chunked\r\nX_A: 2\r\nContent-Length: 0\r\nx-a: 3\r\n\r\n";
        let mut h = ok(raw).headers;
        let mut refused = h.clone();
        assert_eq!(strip_underscore_fields(&mut h, true), Ok(()));
        let fields: Vec<_> = h.iter().map(|(n, v)| (n.as_str(), v.to_str().unwrap())).collect();
        assert_eq!(fields, [("host", "a"), ("x-a", "1"), ("x-a", "3"), ("content-length", "0")]);
        assert_eq!(strip_underscore_fields(&mut refused, false).map_err(|e| e.status), Err(400));
        let mut clean = ok(b"GET / HTTP/1.1\r\nHost: a\r\nX-A: 1\r\n\r\n").headers;
        assert_eq!(strip_underscore_fields(&mut clean, false), Ok(()));
        assert_eq!(clean.len(), 2);
    }

    #[test]
    fn header_limits() {
        let three = Limits { max_headers: 3, ..Limits::default() };
        let raw = b"GET / HTTP/1.1\r\nHost: a\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\n";
        assert_eq!(status_with(raw, &three), 431);
        let many: Vec<u8> = (0..200).flat_map(|i| format!("X-{i}: v\r\n").into_bytes()).collect();
        let raw = [&b"GET / HTTP/1.1\r\nHost: a\r\n"[..], &many, b"\r\n"].concat();
        assert_eq!(status(&raw), 431);
        let big = Limits { max_headers: 300, ..Limits::default() };
        assert!(matches!(req_with(&raw, &big), Ok(Parsed::Complete(_))));
    }

    #[test]
    fn size_limits() {
        let l = Limits { max_header_bytes: 256, max_uri_len: 64, ..Limits::default() };
        let big = [&b"GET / HTTP/1.1\r\nHost: a\r\nX: "[..], &[b'v'; 300]].concat();
        assert_eq!(status_with(&big, &l), 431, "partial oversized head");
        assert_eq!(status_with(&[&big[..], b"\r\n\r\n"].concat(), &l), 431, "complete");
        let long = [&b"GET /"[..], &[b'a'; 100]].concat();
        assert_eq!(status_with(&long, &l), 414, "unterminated long request line");
        let line = [&long[..], b" HTTP/1.1\r\nHost: a\r\n"].concat();
        assert_eq!(status_with(&line, &l), 414, "long target, headers pending");
        assert_eq!(status_with(&[&line[..], b"\r\n"].concat(), &l), 414, "complete");
        let fits = [&b"GET /"[..], &[b'a'; 63], b" HTTP/1.1\r\nHost: a\r\n\r\n"].concat();
        assert!(matches!(req_with(&fits, &l), Ok(Parsed::Complete(_))));
    }

    /// What a parse of `raw` answers: "complete", "partial" or the refusal's status.
    fn verdict(raw: &[u8], limits: &Limits) -> String {
        match req_with(raw, limits) {
            Ok(Parsed::Complete(_)) => "complete".into(),
            Ok(Parsed::Partial) => "partial".into(),
            Err(e) => e.status.to_string(),
        }
    }

    /// Incomplete heads are refused only when no continuation can be accepted: a target already
    /// longer than max_uri_len (414), or a buffer already past max_header_bytes (431). A long
    /// request line whose target fits (a long method token, what h1_request found with small
    /// limits: 414 for a prefix of a head it accepted whole) is not a URI problem.
    #[test]
    fn partial_heads_are_refused_only_when_no_continuation_is_accepted() {
        let l = Limits { max_header_bytes: 64, max_uri_len: 8, ..Limits::default() };
        let method = "u$*5".repeat(10); // 40 bytes of token, no line end for 41 bytes
        let long_method = format!("{method} / HTTP/1.1\r\nHost: a\r\n\r\n"); // exactly 64 bytes
        assert_eq!(long_method.len(), 64);
        let rows: &[(&str, String, &Limits, &str)] = &[
            ("long method, head at the limit", long_method.clone(), &l, "complete"),
            ("long method, unterminated line", method.clone(), &l, "partial"),
            ("long method, target started", format!("{method} /1234567"), &l, "partial"),
            ("long method, head one past", format!("{method}x / HTTP/1.1\r\nHost: a\r\n\r\n"), &l, "431"),
            ("method alone at the limit", "M".repeat(64), &l, "partial"),
            ("method alone past the limit", "M".repeat(65), &l, "431"),
            ("target at the limit", "GET /1234567 HTTP/1.1\r\nHost: a\r\n\r\n".into(), &l, "complete"),
            ("target at the limit, unterminated", "GET /1234567".into(), &l, "partial"),
            ("target one past, unterminated", "GET /12345678".into(), &l, "414"),
            ("target one past, delimited", "GET /12345678 HTT".into(), &l, "414"),
            ("target one past, complete", "GET /12345678 HTTP/1.1\r\nHost: a\r\n\r\n".into(), &l, "414"),
            (
                "target fits, fields past the limit",
                format!("GET / HTTP/1.1\r\nX: {}", "v".repeat(46)),
                &l,
                "431",
            ),
            (
                "target fits, fields at the limit",
                format!("GET / HTTP/1.1\r\nX: {}", "v".repeat(45)),
                &l,
                "partial",
            ),
            ("empty lines first", "\r\n\r\nGET /12345678".into(), &l, "414"),
            (
                "default limits, 8 KiB target",
                format!("GET /{}", "a".repeat(8191)),
                &Limits::default(),
                "partial",
            ),
            ("default limits, 8 KiB + 1", format!("GET /{}", "a".repeat(8192)), &Limits::default(), "414"),
        ];
        for (name, raw, limits, want) in rows {
            assert_eq!(verdict(raw.as_bytes(), limits), *want, "{name}: {raw:?}");
            if *want == "complete" {
                for n in 0..raw.len() {
                    let got = verdict(&raw.as_bytes()[..n], limits);
                    assert_eq!(got, "partial", "{name}: prefix of {n} bytes {:?}", &raw[..n]);
                }
            }
        }
    }

    fn res_with(raw: &[u8], limits: &Limits) -> Result<Parsed<ResponseHead>, H1Error> {
        parse_response(&mut BytesMut::from(raw), limits)
    }

    #[test]
    fn responses() {
        let mut buf = BytesMut::from(&b"HTTP/1.1 200 Fine Thanks\r\nContent-Length: 2\r\n\r\nhi"[..]);
        let Ok(Parsed::Complete(h)) = parse_response(&mut buf, &Limits::default()) else { panic!() };
        assert_eq!((h.status, &h.reason[..]), (StatusCode::OK, &b"Fine Thanks"[..]));
        assert_eq!((h.headers["content-length"].as_bytes(), &buf[..]), (&b"2"[..], &b"hi"[..]));
        let d = Limits::default();
        let Ok(Parsed::Complete(h)) = res_with(b"HTTP/1.0 404\r\n\r\n", &d) else { panic!() };
        assert_eq!((h.status.as_u16(), h.version, h.reason.len()), (404, Version::HTTP_10, 0));
        assert!(matches!(res_with(b"HTTP/1.1 200 OK\r\nA: b\r\n", &d), Ok(Parsed::Partial)));
        let small = Limits { max_header_bytes: 64, max_headers: 2, ..Limits::default() };
        let big = [&b"HTTP/1.1 200 OK\r\nX: "[..], &[b'v'; 100]].concat();
        let bad: &[(&[u8], &Limits)] = &[
            (b"HTTP/1.2 200 OK\r\n\r\n", &d),
            (b"HTTP/1.1 099 X\r\n\r\n", &d),
            (b"HTTP/1.1 20 X\r\n\r\n", &d),
            (b"HTTP/1.1 200 OK\r\nA: b\r\n c\r\n\r\n", &d),
            (b"HTTP/1.1 200 OK\r\nA : b\r\n\r\n", &d),
            (b"HTTP/1.1 200 OK\r\nA: b\0\r\n\r\n", &d),
            (b"ICY 200 OK\r\n\r\n", &d),
            (&big, &small),
            (b"HTTP/1.1 200 OK\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\n", &small),
        ];
        for (raw, limits) in bad {
            let e = res_with(raw, limits).map(|_| ()).unwrap_err();
            assert_eq!(e.status, 502, "{:?}", String::from_utf8_lossy(raw));
        }
    }
}
