//! The protocol-neutral HTTP layer (Pingora's `pingora-http`): request and response heads shared by
//! HTTP/1.1 and HTTP/2, their header blocks (borrowed from the wire until something needs a map),
//! body framing as the proxy sees it, and the field semantics of RFC 9110 that both protocols obey
//! (Content-Length values, Host). The codecs in [`super::h1`] and [`super::h2`] build and read
//! these types; neither imports the other.

pub(crate) mod client;
pub mod fields;
pub mod host;
pub mod length;
pub mod names;
pub(crate) mod server;

use bytes::Bytes;
use http::{Method, StatusCode, Uri, Version};

pub use fields::{has_token, list_elements, Field, Headers, WireBuilder};
pub use names::{FieldKey, IntoFieldName, Known, MapKey};

/// A head refused while parsing or converting it: the status to answer with and a short reason.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HeadError {
    /// 400, 413, 414, 431, 501 or 505 for requests; responses map to 502.
    pub status: u16,
    /// Why, for the log (static: no allocation on the error path).
    pub reason: &'static str,
}

impl HeadError {
    /// Shorthand constructor.
    pub const fn new(status: u16, reason: &'static str) -> Self {
        HeadError { status, reason }
    }
}

impl std::fmt::Display for HeadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({})", self.reason, self.status)
    }
}

/// How the body of a message is delimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyFraming {
    /// No body at all.
    Empty,
    /// Exactly this many bytes (never 0: that is `Empty`).
    Length(u64),
    /// Chunked transfer coding on HTTP/1.1; DATA frames of unannounced total length on HTTP/2.
    Chunked,
    /// Everything until the peer closes (responses and tunnels only).
    UntilClose,
}

/// A request head, from either protocol.
#[derive(Debug, Clone)]
pub struct RequestHead {
    /// Request method.
    pub method: Method,
    /// Request target as parsed (origin-form, absolute-form, authority-form or `*`).
    pub uri: Uri,
    /// HTTP/1.0, HTTP/1.1 or HTTP/2.
    pub version: Version,
    /// Header fields in arrival order.
    pub headers: Headers,
}

/// A response head, from either protocol.
#[derive(Debug, Clone)]
pub struct ResponseHead {
    /// Status code.
    pub status: StatusCode,
    /// HTTP/1.0, HTTP/1.1 or HTTP/2.
    pub version: Version,
    /// Reason phrase as received over HTTP/1 (re-sent as-is when valid; empty otherwise).
    pub reason: Bytes,
    /// Header fields in arrival order.
    pub headers: Headers,
}

impl ResponseHead {
    /// A response head with the canonical reason phrase and no headers.
    pub fn new(status: StatusCode) -> Self {
        ResponseHead {
            status,
            version: Version::HTTP_11,
            reason: Bytes::from_static(status.canonical_reason().unwrap_or("").as_bytes()),
            headers: Headers::new(),
        }
    }
}

/// An error response the proxy makes itself: a one-line text body naming the status and, when
/// given, what happened in a few words (`502 Bad Gateway: could not connect to the upstream`), so
/// a client (or someone with curl) sees which failure it got instead of an empty page. The
/// framing is left to the sender (no body for HEAD).
pub fn error_page(status: StatusCode, what: &str) -> (ResponseHead, Bytes) {
    let mut head = ResponseHead::new(status);
    head.headers
        .insert(http::header::CONTENT_TYPE, http::HeaderValue::from_static("text/plain; charset=utf-8"));
    let reason = status.canonical_reason().unwrap_or("Error");
    let body = match what {
        "" => format!("{} {reason}\n", status.as_u16()),
        w => format!("{} {reason}: {w}\n", status.as_u16()),
    };
    (head, Bytes::from(body))
}
