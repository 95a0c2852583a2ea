//! The phases of a proxied request (Pingora's `ProxyHttp`), as a trait with a per-request context
//! and default no-ops. Only `upstream_peer` is required.
//!
//! Order: early_request_filter → request_filter → upstream_peer → (connect) → connected_to_upstream
//! → upstream_request_filter → request_body_filter* → upstream_response_filter → response_filter →
//! upstream_response_body_filter* / response_body_filter* → logging. On connect failure:
//! fail_to_connect, and back to upstream_peer when it may retry; on other upstream errors:
//! error_while_proxy, likewise; when giving up: fail_to_proxy, then logging.
//!
//! With a cache on the service, after request_filter: request_cache_filter → cache_key_callback →
//! (lookup) → cache_hit_filter when something is stored; a hit then goes straight to
//! response_filter, a miss goes upstream as above, and response_cache_filter decides after
//! upstream_response_filter whether the response is stored.

use std::future::Future;

use bytes::Bytes;

use super::Session;
use crate::cache::{CacheKey, CacheVerdict, Meta};
use crate::error::{Error, Result};
use crate::protocol::http::{RequestHead, ResponseHead};
use crate::upstream::HttpPeer;

/// User logic for an [`super::HttpProxy`]. Methods run on the service's worker threads,
/// concurrently for different requests and in order for one request.
pub trait ProxyHttp: Send + Sync + 'static {
    /// Per-request state shared by all phases of one request.
    type CTX: Send + 'static;

    /// Creates the per-request context.
    fn new_ctx(&self) -> Self::CTX;

    /// The optional filter phases this implementation takes part in. A phase left out is not
    /// called at all (no future is built for it), so a phase nobody implements costs nothing on
    /// the hot path. The default is every phase; an implementation that overrides only some
    /// filters may say so (the C ABI's adapter lists the callbacks the host registered).
    fn phases(&self) -> Phases {
        Phases::ALL
    }

    /// Picks the peer to send the request to. Called again for each retry
    /// ([`Session::retries`] tells which attempt this is).
    fn upstream_peer(
        &self,
        session: &mut Session,
        ctx: &mut Self::CTX,
    ) -> impl Future<Output = Result<HttpPeer>> + Send;

    /// Runs first, before anything else looks at the request.
    fn early_request_filter(
        &self,
        _session: &mut Session,
        _ctx: &mut Self::CTX,
    ) -> impl Future<Output = Result<()>> + Send {
        async { Ok(()) }
    }

    /// May answer by itself: call [`Session::respond`] and return `Ok(true)`; the upstream is then
    /// never contacted. A response set here is sent even if the filter returns `Ok(false)`;
    /// `Ok(true)` without one fails the request (500, the cause in the logging phase's error).
    fn request_filter(
        &self,
        _session: &mut Session,
        _ctx: &mut Self::CTX,
    ) -> impl Future<Output = Result<bool>> + Send {
        async { Ok(false) }
    }

    /// Whether the service's cache takes part in this request (looked up, and the response
    /// stored). Only GET and HEAD requests get this far; the default is yes.
    fn request_cache_filter(&self, _session: &mut Session, _ctx: &mut Self::CTX) -> Result<bool> {
        Ok(true)
    }

    /// The cache key of the request; `None` keeps the default (scheme, host, path and query).
    /// A key that leaves out the host lets one site's responses answer another's.
    fn cache_key_callback(&self, _session: &mut Session, _ctx: &mut Self::CTX) -> Result<Option<CacheKey>> {
        Ok(None)
    }

    /// A stored response was found for the request: return `true` to treat it as expired (it is
    /// revalidated, or fetched again).
    fn cache_hit_filter(&self, _session: &mut Session, _stored: &Meta, _ctx: &mut Self::CTX) -> Result<bool> {
        Ok(false)
    }

    /// Whether the upstream response is stored, and for how long it stays fresh: `verdict` holds
    /// what RFC 9111 says, after `upstream_response_filter`; change it to override.
    fn response_cache_filter(
        &self,
        _session: &mut Session,
        _response: &ResponseHead,
        _verdict: &mut CacheVerdict,
        _ctx: &mut Self::CTX,
    ) -> Result<()> {
        Ok(())
    }

    /// A connection to `peer` is ready; `reused` tells whether it came from the pool.
    fn connected_to_upstream(
        &self,
        _session: &mut Session,
        _reused: bool,
        _peer: &HttpPeer,
        _ctx: &mut Self::CTX,
    ) -> impl Future<Output = Result<()>> + Send {
        async { Ok(()) }
    }

    /// Edits the request about to be sent upstream (hop-by-hop headers already removed).
    fn upstream_request_filter(
        &self,
        _session: &mut Session,
        _upstream_request: &mut RequestHead,
        _ctx: &mut Self::CTX,
    ) -> impl Future<Output = Result<()>> + Send {
        async { Ok(()) }
    }

    /// Sees (and may replace) each piece of request body; called a last time with
    /// `end_of_stream == true` (and usually `None`).
    fn request_body_filter(
        &self,
        _session: &mut Session,
        _body: &mut Option<Bytes>,
        _end_of_stream: bool,
        _ctx: &mut Self::CTX,
    ) -> impl Future<Output = Result<()>> + Send {
        async { Ok(()) }
    }

    /// Replaces an error response the proxy makes itself: `status` (4xx or 5xx) and `what`, the
    /// few words its default body says (`could not connect to the upstream`). Called for every
    /// such response, including the refusals of malformed requests before any phase (there is no
    /// session then) and the error page after `fail_to_proxy` when that left no response of its
    /// own. `None` keeps the default page.
    fn error_response(&self, _status: u16, _what: &str) -> Option<(ResponseHead, Bytes)> {
        None
    }

    /// Edits the upstream's response head as received.
    fn upstream_response_filter(
        &self,
        _session: &mut Session,
        _upstream_response: &mut ResponseHead,
        _ctx: &mut Self::CTX,
    ) -> impl Future<Output = Result<()>> + Send {
        async { Ok(()) }
    }

    /// Edits the response head about to be sent downstream.
    fn response_filter(
        &self,
        _session: &mut Session,
        _upstream_response: &mut ResponseHead,
        _ctx: &mut Self::CTX,
    ) -> impl Future<Output = Result<()>> + Send {
        async { Ok(()) }
    }

    /// Sees each piece of the upstream's response body as received.
    fn upstream_response_body_filter(
        &self,
        _session: &mut Session,
        _body: &mut Option<Bytes>,
        _end_of_stream: bool,
        _ctx: &mut Self::CTX,
    ) -> impl Future<Output = Result<()>> + Send {
        async { Ok(()) }
    }

    /// Sees (and may replace) each piece of response body about to be sent downstream.
    fn response_body_filter(
        &self,
        _session: &mut Session,
        _body: &mut Option<Bytes>,
        _end_of_stream: bool,
        _ctx: &mut Self::CTX,
    ) -> impl Future<Output = Result<()>> + Send {
        async { Ok(()) }
    }

    /// Connecting to `peer` failed. Return the error, with `retry` set to allow another attempt
    /// (the connector already marks connect failures retryable: nothing was sent).
    fn fail_to_connect(
        &self,
        _session: &mut Session,
        _peer: &HttpPeer,
        _ctx: &mut Self::CTX,
        e: Box<Error>,
    ) -> Box<Error> {
        e
    }

    /// Proxying to `peer` failed after connecting. `e.retry` is already true when the failure hit a
    /// reused connection before any response byte arrived; the request is retried only if its body
    /// can still be replayed.
    fn error_while_proxy(
        &self,
        _peer: &HttpPeer,
        _session: &mut Session,
        e: Box<Error>,
        _ctx: &mut Self::CTX,
        _client_reused: bool,
    ) -> Box<Error> {
        e
    }

    /// The request failed for good. Return the status to answer with (when no response head went
    /// out yet); a response set with [`Session::respond`] here is sent instead.
    fn fail_to_proxy(
        &self,
        _session: &mut Session,
        e: &Error,
        _ctx: &mut Self::CTX,
    ) -> impl Future<Output = u16> + Send {
        let status = e.status();
        async move { status }
    }

    /// Always last, once per request, with the error if the request failed.
    fn logging(&self, _session: &mut Session, _e: Option<&Error>, _ctx: &mut Self::CTX) {}
}

// Rust-only: a crate-wide cbindgen run would otherwise put an opaque `Phases` and a blank line
// per constant into include/proxy.h.
/// A set of the optional filter phases (see [`ProxyHttp::phases`]).
///
/// cbindgen:ignore
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Phases(u16);

/// cbindgen:ignore
impl Phases {
    /// None of them.
    pub const NONE: Phases = Phases(0);
    /// [`ProxyHttp::early_request_filter`]
    pub const EARLY_REQUEST_FILTER: Phases = Phases(1);
    /// [`ProxyHttp::request_filter`]
    pub const REQUEST_FILTER: Phases = Phases(1 << 1);
    /// [`ProxyHttp::connected_to_upstream`]
    pub const CONNECTED_TO_UPSTREAM: Phases = Phases(1 << 2);
    /// [`ProxyHttp::upstream_request_filter`]
    pub const UPSTREAM_REQUEST_FILTER: Phases = Phases(1 << 3);
    /// [`ProxyHttp::request_body_filter`]
    pub const REQUEST_BODY_FILTER: Phases = Phases(1 << 4);
    /// [`ProxyHttp::upstream_response_filter`]
    pub const UPSTREAM_RESPONSE_FILTER: Phases = Phases(1 << 5);
    /// [`ProxyHttp::response_filter`]
    pub const RESPONSE_FILTER: Phases = Phases(1 << 6);
    /// [`ProxyHttp::upstream_response_body_filter`]
    pub const UPSTREAM_RESPONSE_BODY_FILTER: Phases = Phases(1 << 7);
    /// [`ProxyHttp::response_body_filter`]
    pub const RESPONSE_BODY_FILTER: Phases = Phases(1 << 8);
    /// [`ProxyHttp::request_cache_filter`]
    pub const REQUEST_CACHE_FILTER: Phases = Phases(1 << 9);
    /// [`ProxyHttp::cache_key_callback`]
    pub const CACHE_KEY_CALLBACK: Phases = Phases(1 << 10);
    /// [`ProxyHttp::cache_hit_filter`]
    pub const CACHE_HIT_FILTER: Phases = Phases(1 << 11);
    /// [`ProxyHttp::response_cache_filter`]
    pub const RESPONSE_CACHE_FILTER: Phases = Phases(1 << 12);
    /// All of them.
    pub const ALL: Phases = Phases((1 << 13) - 1);

    /// Whether `other`'s phases are all in this set.
    pub const fn contains(self, other: Phases) -> bool {
        self.0 & other.0 == other.0
    }

    /// This set with `other`'s phases added when `yes`.
    #[must_use]
    pub const fn with(self, other: Phases, yes: bool) -> Phases {
        if yes {
            Phases(self.0 | other.0)
        } else {
            self
        }
    }
}
