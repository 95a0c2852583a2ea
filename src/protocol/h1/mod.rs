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

/// A parsing failure: the status to answer with and a short reason for the log. The same type
/// as HTTP/2's conversion errors, under the name the codec has always used.
pub type H1Error = crate::protocol::http::HeadError;

/// The heads are protocol-neutral ([`crate::protocol::http`]); re-exported under the path the codec
/// has always offered them.
pub use crate::protocol::http::{RequestHead, ResponseHead};
