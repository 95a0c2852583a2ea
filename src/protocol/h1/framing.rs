//! Message body framing (RFC 9112 §6) and connection persistence (§9.3). Ambiguous framing is
//! the root of request smuggling, so anything but one unambiguous length is refused.

use http::{Method, Version};

use super::{H1Error, RequestHead, ResponseHead};
pub use crate::protocol::http::length::{declared_length, set_content_length};
use crate::protocol::http::names::is_tchar;
pub use crate::protocol::http::BodyFraming;
use crate::protocol::http::{has_token as list_has_token, length, list_elements, FieldKey, Headers, Known};

/// Why framing was refused; the status depends on the side.
#[derive(Debug, Clone, Copy)]
enum Bad {
    Invalid(&'static str),
    Unsupported(&'static str),
}

impl Bad {
    fn request(self) -> H1Error {
        match self {
            Bad::Invalid(r) => H1Error::new(400, r),
            Bad::Unsupported(r) => H1Error::new(501, r),
        }
    }

    fn response(self) -> H1Error {
        match self {
            Bad::Invalid(r) | Bad::Unsupported(r) => H1Error::new(502, r),
        }
    }
}

/// Which of the fields that framing and persistence depend on a head carries: bit tests on a
/// borrowed head, where most heads lack most of them.
#[derive(Debug, Clone, Copy, Default)]
struct Present {
    content_length: bool,
    transfer_encoding: bool,
    connection: bool,
}

impl Present {
    fn of(headers: &Headers) -> Self {
        Present {
            content_length: headers.has_known(Known::ContentLength),
            transfer_encoding: headers.has_known(Known::TransferEncoding),
            connection: headers.has_known(Known::Connection),
        }
    }
}

/// All Transfer-Encoding lines form one list (RFC 9110 §5.3); only a lone `chunked` is accepted
/// because every other combination has been used to desynchronise some hop.
fn check_transfer_encoding(headers: &Headers) -> Result<(), Bad> {
    let mut chunked = 0;
    let mut other = false;
    let mut last_is_chunked = false;
    for element in list_elements(headers, &Known::TransferEncoding) {
        if element.is_empty() {
            return Err(Bad::Invalid("empty Transfer-Encoding element"));
        }
        if element.contains(&b';') {
            return Err(Bad::Invalid("Transfer-Encoding parameters"));
        }
        if !element.iter().all(|&b| is_tchar(b)) {
            return Err(Bad::Invalid("invalid Transfer-Encoding token"));
        }
        last_is_chunked = element.eq_ignore_ascii_case(b"chunked");
        if last_is_chunked {
            chunked += 1;
        } else {
            other = true;
        }
    }
    if chunked > 1 {
        return Err(Bad::Invalid("chunked applied more than once"));
    }
    if chunked == 1 && !last_is_chunked {
        return Err(Bad::Invalid("chunked is not the final coding"));
    }
    if other {
        return Err(Bad::Unsupported("unsupported transfer coding"));
    }
    Ok(())
}

fn content_length(headers: &Headers) -> Result<Option<u64>, Bad> {
    length::content_length(headers).map_err(Bad::Invalid)
}

fn length_framing(headers: &Headers) -> Result<Option<BodyFraming>, Bad> {
    Ok(content_length(headers)?.map(|n| if n == 0 { BodyFraming::Empty } else { BodyFraming::Length(n) }))
}

fn message_framing(
    version: Version,
    headers: &Headers,
    present: Present,
) -> Result<Option<BodyFraming>, Bad> {
    if present.transfer_encoding {
        // RFC 9112 §6.1: a 1.0 recipient would not understand the coding, so the length is unknown.
        if version != Version::HTTP_11 {
            return Err(Bad::Invalid("Transfer-Encoding in HTTP/1.0"));
        }
        // §6.1 allows "TE wins", but a proxy that forwards either value desyncs someone.
        if present.content_length {
            return Err(Bad::Invalid("both Transfer-Encoding and Content-Length"));
        }
        check_transfer_encoding(headers)?;
        return Ok(Some(BodyFraming::Chunked));
    }
    if !present.content_length {
        return Ok(None);
    }
    length_framing(headers)
}

/// Body framing of a request (RFC 9112 §6.3). Requests are never close-delimited: no CL and no TE
/// means no body.
pub fn request_framing(head: &RequestHead) -> Result<BodyFraming, H1Error> {
    message_framing(head.version, &head.headers, Present::of(&head.headers))
        .map(|f| f.unwrap_or(BodyFraming::Empty))
        .map_err(Bad::request)
}

/// [`request_framing`], with the Content-Length it came from rewritten as one canonical decimal:
/// `03` and `3`, or `5, 5` on one line, all announce one length (RFC 9110 §8.6), but forwarded as
/// they came the next hop has to pick one, and an origin that refuses the list or reads the other
/// value desyncs from us. Hooks and the upstream see exactly one `Content-Length`.
pub fn canonical_request_framing(head: &mut RequestHead) -> Result<BodyFraming, H1Error> {
    let present = Present::of(&head.headers);
    let framing = message_framing(head.version, &head.headers, present)
        .map(|f| f.unwrap_or(BodyFraming::Empty))
        .map_err(Bad::request)?;
    match framing {
        BodyFraming::Length(n) => set_content_length(&mut head.headers, n),
        BodyFraming::Empty if present.content_length => set_content_length(&mut head.headers, 0),
        _ => {}
    }
    Ok(framing)
}

/// Body framing of a response to `request_method` (RFC 9112 §6.3). Errors are 502.
pub fn response_framing(request_method: &Method, head: &ResponseHead) -> Result<BodyFraming, H1Error> {
    let code = head.status.as_u16();
    let present = Present::of(&head.headers);
    if request_method == Method::HEAD || head.status.is_informational() || code == 204 || code == 304 {
        // No body whatever the fields say, but a Content-Length still goes downstream (the length
        // a GET would get): conflicting values are refused as in any other response.
        if present.content_length {
            content_length(&head.headers).map_err(Bad::response)?;
        }
        return Ok(BodyFraming::Empty);
    }
    if request_method == Method::CONNECT && head.status.is_success() {
        return Ok(BodyFraming::UntilClose);
    }
    message_framing(head.version, &head.headers, present)
        .map(|f| f.unwrap_or(BodyFraming::UntilClose))
        .map_err(Bad::response)
}

/// Whether any Connection line lists `token` (case-insensitive).
pub fn has_connection_token(headers: &Headers, token: &str) -> bool {
    has_token(headers, &Known::Connection, token)
}

/// Whether any line of the comma-separated list field `name` holds `token` (case-insensitive;
/// parameters such as `;q=1` are not stripped).
pub fn has_token<K: FieldKey + ?Sized>(headers: &Headers, name: &K, token: &str) -> bool {
    list_has_token(headers, name, token)
}

fn keep_alive(version: Version, headers: &Headers) -> bool {
    let connection = Present::of(headers).connection;
    if connection && has_connection_token(headers, "close") {
        return false;
    }
    match version {
        Version::HTTP_11 => true,
        Version::HTTP_10 => connection && has_connection_token(headers, "keep-alive"),
        _ => false,
    }
}

/// Whether the client wants the connection kept open after this exchange (RFC 9112 §9.3).
pub fn request_keep_alive(head: &RequestHead) -> bool {
    keep_alive(head.version, &head.headers)
}

/// Whether the upstream allows reusing the connection after this response.
pub fn response_keep_alive(head: &ResponseHead) -> bool {
    keep_alive(head.version, &head.headers)
}

/// `Expect: 100-continue` on HTTP/1.1 (RFC 9110 §10.1.1 says to ignore it on 1.0).
pub fn expects_continue(head: &RequestHead) -> bool {
    head.version == Version::HTTP_11
        && list_elements(&head.headers, &Known::Expect).any(|e| e.eq_ignore_ascii_case(b"100-continue"))
}

/// An HTTP/1.1 upgrade offer: `Connection: upgrade` plus an Upgrade field. The tunnel may only
/// start once the upstream answered 101.
pub fn is_upgrade_request(head: &RequestHead) -> bool {
    head.version == Version::HTTP_11
        && Present::of(&head.headers).connection
        && has_connection_token(&head.headers, "upgrade")
        && head.headers.has_known(Known::Upgrade)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::h1::parse::{parse_request, parse_response, Parsed};
    use crate::protocol::h1::Limits;
    use bytes::BytesMut;
    use http::header::CONTENT_LENGTH;

    fn head(fields: &str) -> RequestHead {
        head_v("1.1", fields)
    }

    fn head_v(version: &str, fields: &str) -> RequestHead {
        let raw = format!("POST / HTTP/{version}\r\nHost: a\r\n{fields}\r\n");
        match parse_request(&mut BytesMut::from(raw.as_bytes()), &Limits::default()) {
            Ok(Parsed::Complete(h)) => h,
            other => panic!("{raw:?}: {other:?}"),
        }
    }

    fn resp(status_line: &str, fields: &str) -> ResponseHead {
        let raw = format!("{status_line}\r\n{fields}\r\n");
        match parse_response(&mut BytesMut::from(raw.as_bytes()), &Limits::default()) {
            Ok(Parsed::Complete(h)) => h,
            other => panic!("{raw:?}: {other:?}"),
        }
    }

    #[test]
    fn valid_request_framing() {
        use BodyFraming::*;
        let cases: &[(&str, BodyFraming)] = &[
            ("", Empty),
            ("Content-Length: 0\r\n", Empty),
            ("Content-Length: 42\r\n", Length(42)),
            ("Content-Length: 007\r\n", Length(7)),
            ("Content-Length: 5, 5\r\n", Length(5)),
            ("Content-Length: 5\r\nContent-Length: 5\r\n", Length(5)),
            ("Content-Length: 18446744073709551615\r\n", Length(u64::MAX)),
            ("Transfer-Encoding: chunked\r\n", Chunked),
            ("Transfer-Encoding: CHUNKED \r\n", Chunked),
            ("Transfer-Encoding:\tChunked\r\n", Chunked),
        ];
        for (fields, want) in cases {
            assert_eq!(request_framing(&head(fields)), Ok(*want), "{fields:?}");
        }
        assert_eq!(request_framing(&head_v("1.0", "")), Ok(Empty));
        assert_eq!(request_framing(&head_v("1.0", "Content-Length: 3\r\n")), Ok(Length(3)));
    }

    #[test]
    fn smuggling_requests_get_exact_status() {
        let cases: &[(&str, u16)] = &[
            ("Content-Length: 5\r\nTransfer-Encoding: chunked\r\n", 400),
            ("Transfer-Encoding: chunked\r\nContent-Length: 0\r\n", 400),
            ("Content-Length: 1, 2\r\n", 400),
            ("Content-Length: 1\r\nContent-Length: 2\r\n", 400),
            ("Content-Length: +1\r\n", 400),
            ("Content-Length: -1\r\n", 400),
            ("Content-Length: 0x5\r\n", 400),
            ("Content-Length: 1 2\r\n", 400),
            ("Content-Length:  1 2\r\n", 400),
            ("Content-Length: \r\n", 400),
            ("Content-Length: 5,\r\n", 400),
            ("Content-Length: ,5\r\n", 400),
            ("Content-Length: 1.0\r\n", 400),
            ("Content-Length: 18446744073709551616\r\n", 400),
            ("Content-Length: 99999999999999999999999\r\n", 400),
            ("Transfer-Encoding: chunked, identity\r\n", 400),
            ("Transfer-Encoding: chunked, gzip\r\n", 400),
            ("Transfer-Encoding: ,chunked\r\n", 400),
            ("Transfer-Encoding: chunked,\r\n", 400),
            ("Transfer-Encoding: chunked;x=y\r\n", 400),
            ("Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n", 400),
            ("Transfer-Encoding: chunked, chunked\r\n", 400),
            ("Transfer-Encoding: chunked\r\nTransfer-Encoding: identity\r\n", 400),
            ("Transfer-Encoding: \r\n", 400),
            ("Transfer-Encoding: \"chunked\"\r\n", 400),
            ("Transfer-Encoding: chun ked\r\n", 400),
            ("Transfer-Encoding: xchunked\r\n", 501),
            ("Transfer-Encoding: identity\r\n", 501),
            ("Transfer-Encoding: gzip, chunked\r\n", 501),
            ("Transfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n", 501),
            ("Transfer-Encoding: chunkedx\r\n", 501),
        ];
        for (fields, want) in cases {
            assert_eq!(request_framing(&head(fields)).map_err(|e| e.status), Err(*want), "{fields:?}");
        }
        let te10 = head_v("1.0", "Transfer-Encoding: chunked\r\n");
        assert_eq!(request_framing(&te10).map_err(|e| e.status), Err(400));
    }

    #[test]
    fn response_framing_rules() {
        use BodyFraming::*;
        let get = Method::GET;
        let cl = "Content-Length: 10\r\n";
        assert_eq!(response_framing(&Method::HEAD, &resp("HTTP/1.1 200 OK", cl)), Ok(Empty));
        for code in ["100 Continue", "204 No Content", "304 Not Modified"] {
            let h = resp(&format!("HTTP/1.1 {code}"), "Transfer-Encoding: chunked\r\n");
            assert_eq!(response_framing(&get, &h), Ok(Empty), "{code}");
        }
        assert_eq!(response_framing(&Method::CONNECT, &resp("HTTP/1.1 200 OK", cl)), Ok(UntilClose));
        assert_eq!(response_framing(&Method::CONNECT, &resp("HTTP/1.1 407 P", cl)), Ok(Length(10)));
        assert_eq!(response_framing(&get, &resp("HTTP/1.1 200 OK", cl)), Ok(Length(10)));
        assert_eq!(response_framing(&get, &resp("HTTP/1.1 200 OK", "Content-Length: 0\r\n")), Ok(Empty));
        assert_eq!(response_framing(&get, &resp("HTTP/1.1 200 OK", "")), Ok(UntilClose));
        assert_eq!(response_framing(&get, &resp("HTTP/1.0 200 OK", "")), Ok(UntilClose));
        let chunked = resp("HTTP/1.1 200 OK", "Transfer-Encoding: chunked\r\n");
        assert_eq!(response_framing(&get, &chunked), Ok(Chunked));
        let bad = [
            ("HTTP/1.1 200 OK", "Transfer-Encoding: chunked\r\nContent-Length: 3\r\n"),
            ("HTTP/1.0 200 OK", "Transfer-Encoding: chunked\r\n"),
            ("HTTP/1.1 200 OK", "Transfer-Encoding: gzip\r\n"),
            ("HTTP/1.1 200 OK", "Transfer-Encoding: gzip, chunked\r\n"),
            ("HTTP/1.1 200 OK", "Transfer-Encoding: chunked, chunked\r\n"),
            ("HTTP/1.1 200 OK", "Content-Length: 1, 2\r\n"),
            ("HTTP/1.1 200 OK", "Content-Length: abc\r\n"),
        ];
        for (line, fields) in bad {
            assert_eq!(
                response_framing(&get, &resp(line, fields)).map_err(|e| e.status),
                Err(502),
                "{fields:?}"
            );
        }
    }

    #[test]
    fn equal_content_lengths_merge_into_one_canonical_value() {
        use BodyFraming::*;
        let cases: &[(&str, BodyFraming, &[&str])] = &[
            ("", Empty, &[]),
            ("Content-Length: 3\r\n", Length(3), &["3"]),
            ("Content-Length: 03\r\n", Length(3), &["3"]),
            ("Content-Length: 03\r\nContent-Length: 3\r\n", Length(3), &["3"]),
            ("Content-Length: 3\r\nContent-Length: 003\r\n", Length(3), &["3"]),
            ("Content-Length: 3, 03\r\n", Length(3), &["3"]),
            ("Content-Length: 5\r\nContent-Length: 5\r\n", Length(5), &["5"]),
            ("Content-Length: 5,5, 5\r\nContent-Length: 05\r\n", Length(5), &["5"]),
            ("Content-Length: 0\r\n", Empty, &["0"]),
            ("Content-Length: 00, 0\r\nContent-Length: 000\r\n", Empty, &["0"]),
            ("Transfer-Encoding: chunked\r\n", Chunked, &[]),
        ];
        for (fields, framing, lines) in cases {
            let mut h = head(fields);
            assert_eq!(canonical_request_framing(&mut h), Ok(*framing), "{fields:?}");
            let got: Vec<_> = h.headers.get_all(CONTENT_LENGTH).iter().map(|v| v.to_str().unwrap()).collect();
            assert_eq!(got, *lines, "{fields:?}");
        }
        for fields in ["Content-Length: 03\r\nContent-Length: 4\r\n", "Content-Length: 3, 04\r\n"] {
            let mut h = head(fields);
            assert_eq!(canonical_request_framing(&mut h).map_err(|e| e.status), Err(400), "{fields:?}");
        }
    }

    #[test]
    fn responses_without_a_body_still_refuse_conflicting_lengths() {
        for (method, line) in [
            (Method::HEAD, "HTTP/1.1 200 OK"),
            (Method::GET, "HTTP/1.1 304 Not Modified"),
            (Method::GET, "HTTP/1.1 204 No Content"),
        ] {
            let ok = resp(line, "Content-Length: 03\r\nContent-Length: 3\r\n");
            assert_eq!(response_framing(&method, &ok), Ok(BodyFraming::Empty), "{line}");
            for fields in ["Content-Length: 1, 2\r\n", "Content-Length: 1\r\nContent-Length: 2\r\n"] {
                let bad = resp(line, fields);
                assert_eq!(
                    response_framing(&method, &bad).map_err(|e| e.status),
                    Err(502),
                    "{line} {fields:?}"
                );
            }
        }
    }

    #[test]
    fn content_length_is_set_once_and_canonically() {
        for (fields, n) in [
            ("", 0),
            ("Content-Length: 13\r\n", 13),
            ("Content-Length: 013\r\n", 13),
            ("Content-Length: 7\r\nContent-Length: 7\r\n", 7),
            ("Content-Length: 5\r\n", u64::MAX),
        ] {
            let mut h = head(fields).headers;
            set_content_length(&mut h, n);
            let lines: Vec<_> =
                h.get_all(CONTENT_LENGTH).iter().map(|v| v.to_str().unwrap().to_owned()).collect();
            assert_eq!(lines, [n.to_string()], "{fields:?}");
        }
    }

    #[test]
    fn persistence_and_tokens() {
        assert!(request_keep_alive(&head("")));
        assert!(!request_keep_alive(&head("Connection: close\r\n")));
        assert!(!request_keep_alive(&head("Connection: foo\r\nConnection: Keep-Alive, CLOSE\r\n")));
        assert!(!request_keep_alive(&head_v("1.0", "")));
        assert!(request_keep_alive(&head_v("1.0", "Connection: keep-alive\r\n")));
        assert!(!request_keep_alive(&head_v("1.0", "Connection: keep-alive, close\r\n")));
        assert!(response_keep_alive(&resp("HTTP/1.1 200 OK", "")));
        assert!(!response_keep_alive(&resp("HTTP/1.0 200 OK", "")));
        assert!(response_keep_alive(&resp("HTTP/1.0 200 OK", "Connection:  Keep-Alive \r\n")));
        assert!(!response_keep_alive(&resp("HTTP/1.1 200 OK", "Connection: Close\r\n")));
        assert!(!has_connection_token(&head("Connection: closed\r\n").headers, "close"));

        assert!(expects_continue(&head("Expect: 100-Continue\r\n")));
        assert!(!expects_continue(&head_v("1.0", "Expect: 100-continue\r\n")));
        assert!(!expects_continue(&head("Expect: 200-ok\r\n")));

        assert!(is_upgrade_request(&head("Connection: Upgrade\r\nUpgrade: websocket\r\n")));
        assert!(!is_upgrade_request(&head("Upgrade: websocket\r\n")));
        assert!(!is_upgrade_request(&head("Connection: upgrade\r\n")));
        assert!(!is_upgrade_request(&head_v("1.0", "Connection: upgrade\r\nUpgrade: websocket\r\n")));
    }
}
