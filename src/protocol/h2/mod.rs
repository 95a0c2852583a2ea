//! HTTP/2: edge-safe settings for both roles; the server side is our own codec ([`server`], with
//! [`hpack`]); the client side (upstreams) runs on the `h2` crate, with conversions between its
//! messages and our heads (RFC 9113 §8.2: no connection-specific fields; Host ↔ :authority) and
//! body I/O with flow control ([`body`]).

pub mod body;
pub mod hpack;
pub mod server;

use http::header::HOST;
use http::uri::{Authority, Scheme};
use http::{Request, Uri, Version};

use super::http::host::valid_host_value;
use super::http::{HeadError, Known, RequestHead, ResponseHead};

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
    /// Rapid reset (CVE-2023-44487): streams a client may reset in the same read as the HEADERS
    /// that opened them before GOAWAY (ENHANCE_YOUR_CALM); resets of unanswered streams over the
    /// connection may exceed this by `max_concurrent_streams` plus one per stream answered
    /// before the same.
    pub max_pending_accept_reset_streams: usize,
    /// Streams we reset because of peer errors over the connection's life before GOAWAY.
    pub max_local_error_reset_streams: usize,
    /// Bytes buffered per stream (upstream) or per connection (downstream; at least 64 KiB) before
    /// a sender waits for the peer to read.
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

    #[test]
    fn h1_head_converts_to_h2_without_connection_fields() {
        let mut head = RequestHead {
            method: http::Method::GET,
            uri: Uri::from_static("/p?q=1"),
            version: Version::HTTP_11,
            headers: crate::protocol::http::fields::wire(&[("host", "a.example"), ("te", "trailers")]),
        };
        head.headers.insert(CONNECTION, HeaderValue::from_static("keep-alive"));
        head.headers.insert(TRANSFER_ENCODING, HeaderValue::from_static("chunked"));
        let req = request_to_h2(head, true).unwrap();
        assert_eq!(req.uri(), "https://a.example/p?q=1");
        assert!(req.headers().get(HOST).is_none());
        assert!(req.headers().get(CONNECTION).is_none());
        assert!(req.headers().get(TRANSFER_ENCODING).is_none());
        assert_eq!(req.headers()[TE], "trailers");
    }
}
