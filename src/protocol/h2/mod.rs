//! HTTP/2 on top of the `h2` crate: edge-safe settings for both roles, conversions between h2's
//! messages and our heads (RFC 9113 §8.2: no connection-specific fields; Host ↔ :authority), and
//! body I/O with flow control (capacity released as data is consumed, reserved before sending).

pub mod body;
pub mod hpack;

use http::header::HOST;
use http::uri::{Authority, Scheme};
use http::{Request, Response, Uri, Version};

use super::http::host::valid_host_value;
use super::http::{HeadError, Known, RequestHead, ResponseHead, WireBuilder};

/// HTTP/2 limits. Defaults follow `notes/http-hardening.md` §2: h2's raw defaults (unlimited
/// streams, 16 MiB header lists) are not safe at an edge.
#[derive(Debug, Clone)]
pub struct H2Options {
    /// SETTINGS_MAX_CONCURRENT_STREAMS we announce to clients.
    pub max_concurrent_streams: u32,
    /// SETTINGS_MAX_HEADER_LIST_SIZE (decoded bytes), bounding HPACK bombs and CONTINUATION floods.
    pub max_header_list_size: u32,
    /// Per-stream receive window.
    pub initial_window_size: u32,
    /// Connection receive window.
    pub initial_connection_window_size: u32,
    /// Streams a client may reset before we accept them (rapid reset) before GOAWAY.
    pub max_pending_accept_reset_streams: usize,
    /// Streams we reset because of peer errors over the connection's life before GOAWAY.
    pub max_local_error_reset_streams: usize,
    /// Bytes buffered per stream before a sender waits for the peer to read.
    pub max_send_buffer_size: usize,
    /// Upstream connections: how often an idle one is pinged to prove it is alive.
    pub ping_interval: std::time::Duration,
    /// Upstream connections: how long a PING answer may take before the connection is retired.
    pub ping_timeout: std::time::Duration,
}

impl Default for H2Options {
    fn default() -> Self {
        H2Options {
            max_concurrent_streams: 100,
            max_header_list_size: 64 * 1024,
            initial_window_size: 256 * 1024,
            initial_connection_window_size: 1024 * 1024,
            max_pending_accept_reset_streams: 20,
            max_local_error_reset_streams: 1024,
            max_send_buffer_size: 256 * 1024,
            ping_interval: std::time::Duration::from_secs(10),
            ping_timeout: std::time::Duration::from_secs(5),
        }
    }
}

impl H2Options {
    /// A server builder with these limits.
    pub fn server(&self) -> h2::server::Builder {
        let mut b = h2::server::Builder::new();
        b.max_concurrent_streams(self.max_concurrent_streams)
            .max_header_list_size(self.max_header_list_size)
            .initial_window_size(self.initial_window_size)
            .initial_connection_window_size(self.initial_connection_window_size)
            .max_pending_accept_reset_streams(self.max_pending_accept_reset_streams)
            .max_local_error_reset_streams(Some(self.max_local_error_reset_streams))
            .max_send_buffer_size(self.max_send_buffer_size);
        b
    }

    /// A client builder with these limits.
    pub fn client(&self) -> h2::client::Builder {
        let mut b = h2::client::Builder::new();
        b.max_header_list_size(self.max_header_list_size)
            .initial_window_size(self.initial_window_size)
            .initial_connection_window_size(self.initial_connection_window_size)
            .max_local_error_reset_streams(Some(self.max_local_error_reset_streams))
            .max_send_buffer_size(self.max_send_buffer_size)
            .enable_push(false);
        b
    }
}

/// The first bytes of every HTTP/2 connection (RFC 9113 §3.4).
pub const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

fn bad(reason: &'static str) -> HeadError {
    HeadError::new(400, reason)
}

/// Whether a field may go over H2 (RFC 9113 §8.2.2): none that means something only to one
/// HTTP/1.1 connection, and `TE` only as `trailers`.
pub fn h2_field(known: Known, value: &[u8]) -> bool {
    match known {
        Known::Connection
        | Known::TransferEncoding
        | Known::Upgrade
        | Known::KeepAlive
        | Known::ProxyConnection => false,
        Known::Te => value.eq_ignore_ascii_case(b"trailers"),
        _ => true,
    }
}

/// A request received over H2 as a head the phases and an H1 upstream understand: `Host` from
/// `:authority` (RFC 9113 §8.3.1), values checked for what h2 lets through (§8.2.1: no leading or
/// trailing whitespace). The fields become the borrowed form, written as HTTP/1 lines: an H1
/// upstream gets them as one copy, and the proxy's checks on the way (hop-by-hop fields, upgrade,
/// framing) are bit tests rather than a hash lookup each in h2's map.
pub fn request_head(parts: http::request::Parts) -> Result<RequestHead, HeadError> {
    let http::request::Parts { method, uri, headers, .. } = parts;
    // The `http` crate lets bytes past ASCII into a path; an HTTP/1 request-target may not carry
    // them (RFC 9112 §3.2), so forwarding one would hand the upstream a line it must refuse.
    if uri.path_and_query().is_some_and(|p| !p.as_str().bytes().all(|b| b.is_ascii_graphic())) {
        return Err(bad("invalid :path"));
    }
    // Host fields are noted in the same pass as the value checks rather than looked up again, and
    // the size of the lines is summed so that they are written into one buffer of the right size.
    let (mut host, mut hosts, mut size) = (None, 0, 0);
    for (name, value) in &headers {
        let v = value.as_bytes();
        if name.as_str().is_empty() || v.first().is_some_and(|b| *b == b' ' || *b == b'\t') {
            return Err(bad("field value with leading whitespace"));
        }
        if v.last().is_some_and(|b| *b == b' ' || *b == b'\t') {
            return Err(bad("field value with trailing whitespace"));
        }
        if name == HOST {
            hosts += 1;
            host = host.or(Some(value));
        }
        size += name.as_str().len() + v.len() + 4;
    }
    if hosts > 1 {
        return Err(bad("repeated Host"));
    }
    // The HTTP/1 upstream reads Host as its routing key: it must be the valid `host[:port]` an
    // HTTP/1 client would have had to send (the `http` crate lets userinfo, `:-1` ports or spaces
    // in a Host value through). Neither field is allowed (RFC 9113 §8.3.1: no authority to convey),
    // as for HTTP/1.0 without Host: the upstream request gets the peer's name.
    let mut add_host = None;
    match (uri.authority(), host) {
        (Some(a), Some(h)) if !a.as_str().as_bytes().eq_ignore_ascii_case(h.as_bytes()) => {
            return Err(bad("Host differs from :authority"));
        }
        (Some(a), None) => {
            let a = a.as_str().as_bytes();
            // A Host value is a field value too (no control bytes), which `valid_host_value` implies.
            if !valid_host_value(a) {
                return Err(bad("invalid :authority"));
            }
            size += HOST.as_str().len() + a.len() + 4;
            add_host = Some(a);
        }
        (_, Some(h)) if !valid_host_value(h.as_bytes()) => return Err(bad("invalid Host")),
        _ => {}
    }
    let mut fields = WireBuilder::with_capacity(size, headers.len() + 1);
    for (name, value) in &headers {
        fields.push(name, value.as_bytes());
    }
    if let Some(a) = add_host {
        fields.push(&HOST, a);
    }
    let mut headers = fields.finish();
    // Checked above: the upstream request need not check it again unless a hook edits it.
    headers.mark_checked(Known::Host);
    Ok(RequestHead { method, uri, version: Version::HTTP_2, headers })
}

/// An outgoing H2 request for `head`: `:scheme` and `:authority` from the peer and Host, the
/// Host field folded into `:authority`, connection-specific fields removed. Takes the head: its
/// method moves into the request, and h2's map is built once from its fields, without the ones H2
/// must not carry (a borrowed head has no map to hand over anyway).
pub fn request_to_h2(head: RequestHead, tls: bool) -> Result<Request<()>, HeadError> {
    let authority = head
        .uri
        .authority()
        .cloned()
        .or_else(|| head.headers.value(&HOST).and_then(|h| Authority::try_from(h).ok()))
        .ok_or(bad("no authority for an HTTP/2 request"))?;
    // RFC 9113 §8.3.1: no userinfo, and the host[:port] an HTTP/2 peer reads back (found by the
    // h1_to_h2 fuzz target: an absolute-form `http://u@h/` went up as `:authority: u@h`).
    if !valid_host_value(authority.as_str().as_bytes()) {
        return Err(bad("invalid authority for an HTTP/2 request"));
    }
    let path =
        head.uri.path_and_query().cloned().unwrap_or_else(|| http::uri::PathAndQuery::from_static("/"));
    let scheme = if tls { Scheme::HTTPS } else { Scheme::HTTP };
    let uri = Uri::builder()
        .scheme(scheme)
        .authority(authority)
        .path_and_query(path)
        .build()
        .map_err(|_| bad("invalid request target"))?;
    // Host went into `:authority`.
    let headers = head.headers.to_map_keeping(|k, v| k != Known::Host && h2_field(k, v));
    let mut req = Request::new(());
    *req.method_mut() = head.method;
    *req.uri_mut() = uri;
    *req.version_mut() = Version::HTTP_2;
    *req.headers_mut() = headers;
    Ok(req)
}

/// A response head to send over H2 (the head is kept: it is what the phases and the log see).
pub fn response_to_h2(head: &ResponseHead) -> Response<()> {
    let headers = head.headers.to_map_keeping(h2_field);
    let mut resp = Response::new(());
    *resp.status_mut() = head.status;
    *resp.version_mut() = Version::HTTP_2;
    *resp.headers_mut() = headers;
    resp
}

/// A response received over H2 as our head.
pub fn response_head(parts: http::response::Parts) -> ResponseHead {
    ResponseHead {
        status: parts.status,
        version: Version::HTTP_2,
        reason: bytes::Bytes::new(),
        headers: parts.headers.into(),
    }
}

#[cfg(test)]
mod tests {
    use http::header::{CONNECTION, TE, TRANSFER_ENCODING};
    use http::HeaderValue;

    use super::*;

    fn parts(uri: &str, headers: &[(&str, &str)]) -> http::request::Parts {
        let mut b = Request::builder().uri(uri).version(Version::HTTP_2);
        for (n, v) in headers {
            b = b.header(*n, *v);
        }
        b.body(()).unwrap().into_parts().0
    }

    #[test]
    fn authority_becomes_host_and_must_agree() {
        let h = request_head(parts("https://a.example/x?y", &[])).unwrap();
        assert_eq!(h.headers[HOST], "a.example");
        assert_eq!(h.version, Version::HTTP_2);
        assert!(request_head(parts("https://a.example/", &[("host", "b.example")])).is_err());
        assert!(request_head(parts("https://a.example/", &[("host", "A.example")])).is_ok());
        assert!(request_head(parts("https://a.example/", &[("x", " padded")])).is_err());
        assert!(request_head(parts("https://a.example/", &[("x", "padded\t")])).is_err());
        assert!(request_head(parts("/", &[("host", "a.example"), ("host", "a.example")])).is_err());
        assert_eq!(request_head(parts("/", &[("host", "a.example")])).unwrap().headers[HOST], "a.example");
        // No authority at all: no Host either (the upstream request gets the peer's).
        assert!(!request_head(parts("/", &[])).unwrap().headers.contains_key(HOST));
    }

    #[test]
    fn invalid_authority_or_host_is_refused() {
        for a in ["u@a.example", "a.example:-1", "a.example:99999", "a.example:"] {
            let e = request_head(parts(&format!("https://{a}/"), &[]));
            assert_eq!(e.map(|_| ()).map_err(|e| e.status), Err(400), ":authority {a:?}");
        }
        for h in ["a b", "u@a", "a:-1", "a:", "[::1", "a/b", "a\\b"] {
            let e = request_head(parts("/", &[("host", h)]));
            assert_eq!(e.map(|_| ()).map_err(|e| e.status), Err(400), "Host {h:?}");
        }
        assert!(request_head(parts("https://[::1]:8443/", &[])).is_ok());
    }

    /// Found by the h2_to_h1 fuzz target: `http` accepts a path with bytes past ASCII, which went
    /// upstream as a request line every HTTP/1 parser (ours included) refuses.
    #[test]
    fn non_ascii_path_is_refused() {
        let e = request_head(parts("https://a.example/keep\u{4d9}l", &[]));
        assert_eq!(e.map(|_| ()).map_err(|e| e.status), Err(400));
        assert!(request_head(parts("https://a.example/keep%D3%99l", &[])).is_ok());
    }

    #[test]
    fn h1_head_converts_to_h2_without_connection_fields() {
        let mut head = request_head(parts("http://a.example/p", &[("te", "trailers")])).unwrap();
        head.uri = Uri::from_static("/p?q=1");
        head.headers.insert(CONNECTION, HeaderValue::from_static("keep-alive"));
        head.headers.insert(TRANSFER_ENCODING, HeaderValue::from_static("chunked"));
        let req = request_to_h2(head, true).unwrap();
        assert_eq!(req.uri(), "https://a.example/p?q=1");
        assert!(req.headers().get(HOST).is_none());
        assert!(req.headers().get(CONNECTION).is_none());
        assert!(req.headers().get(TRANSFER_ENCODING).is_none());
        assert_eq!(req.headers()[TE], "trailers");
    }

    #[test]
    fn h2_request_becomes_borrowed_lines_with_host_last() {
        let h = request_head(parts("https://a.example/", &[("x-a", "1"), ("x-a", "2"), ("accept", "*/*")]))
            .unwrap();
        assert!(h.headers.is_borrowed());
        let mut out = bytes::BytesMut::new();
        h.headers.encode(&mut out);
        assert_eq!(&out[..], b"x-a: 1\r\nx-a: 2\r\naccept: */*\r\nhost: a.example\r\n");
    }

    #[test]
    fn response_goes_to_h2_without_connection_fields() {
        let mut head = ResponseHead::new(http::StatusCode::OK);
        for (n, v) in [("connection", "x"), ("keep-alive", "5"), ("te", "gzip"), ("upgrade", "y"), ("x", "1")]
        {
            head.headers.append(http::HeaderName::from_static(n), HeaderValue::from_static(v));
        }
        let resp = response_to_h2(&head);
        let names: Vec<_> = resp.headers().keys().map(|n| n.as_str()).collect();
        assert_eq!(names, ["x"]);
        assert_eq!(resp.version(), Version::HTTP_2);
    }
}
