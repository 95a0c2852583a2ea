//! HTTP/1.1 codec (RFC 9112), strict: parse heads under limits, decide body framing, decode chunked
//! bodies with our own strict decoder, and serialise heads canonically. Pure functions over byte
//! buffers; the I/O lives in [`conn`].
//!
//! httparse is only the tokenizer; every framing rule (Content-Length, Transfer-Encoding, obs-fold,
//! request-target form, Host) is checked here.

pub mod chunk;
pub mod conn;
pub mod encode;
pub mod framing;
pub mod parse;
pub mod upgrade;

use bytes::Bytes;
use http::{HeaderMap, Method, StatusCode, Uri, Version};

pub use chunk::{ChunkedDecoder, Decoded};
pub use framing::{canonical_request_framing, request_framing, response_framing, BodyFraming};
pub use parse::{parse_request, parse_response, Parsed};

/// Size limits applied while parsing. Defaults are edge-safe (see `notes/http-hardening.md` §3).
#[derive(Debug, Clone)]
pub struct Limits {
    /// Largest request/status line + header block, in bytes (431 when exceeded; 414 if it is the URI).
    pub max_header_bytes: usize,
    /// Most header fields (431 when exceeded).
    pub max_headers: usize,
    /// Longest request-target (414 when exceeded).
    pub max_uri_len: usize,
    /// Longest chunk extension on one chunk line (400 when exceeded).
    pub max_chunk_ext_len: usize,
    /// Largest trailer section (431 when exceeded).
    pub max_trailer_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_header_bytes: 32 * 1024,
            max_headers: 100,
            max_uri_len: 8 * 1024,
            max_chunk_ext_len: 4 * 1024,
            max_trailer_bytes: 16 * 1024,
        }
    }
}

/// A parsing failure: the status to answer with and a short reason for the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct H1Error {
    /// 400, 413, 414, 431, 501 or 505 for requests; responses always map to 502 by the caller.
    pub status: u16,
    /// Why, for the log (static: no allocation on the error path).
    pub reason: &'static str,
}

impl H1Error {
    /// Shorthand constructor.
    pub const fn new(status: u16, reason: &'static str) -> Self {
        H1Error { status, reason }
    }
}

impl std::fmt::Display for H1Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({})", self.reason, self.status)
    }
}

/// A parsed request head. Header values are `Bytes` slices of the read buffer where possible.
#[derive(Debug, Clone)]
pub struct RequestHead {
    /// Request method.
    pub method: Method,
    /// Request target as parsed (origin-form, absolute-form, authority-form or `*`).
    pub uri: Uri,
    /// HTTP/1.0 or HTTP/1.1.
    pub version: Version,
    /// Header fields, names lowercased, in arrival order per name.
    pub headers: HeaderMap,
}

/// A parsed response head.
#[derive(Debug, Clone)]
pub struct ResponseHead {
    /// Status code.
    pub status: StatusCode,
    /// HTTP/1.0 or HTTP/1.1.
    pub version: Version,
    /// Reason phrase as received (re-sent as-is when valid; empty otherwise).
    pub reason: Bytes,
    /// Header fields.
    pub headers: HeaderMap,
}

impl ResponseHead {
    /// A response head with the canonical reason phrase and no headers.
    pub fn new(status: StatusCode) -> Self {
        ResponseHead {
            status,
            version: Version::HTTP_11,
            reason: Bytes::from_static(status.canonical_reason().unwrap_or("").as_bytes()),
            headers: HeaderMap::new(),
        }
    }
}
