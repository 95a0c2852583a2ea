//! One request/response exchange as the phases see it, and the summary the logging phase reads.

use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use http::{HeaderValue, StatusCode};

use crate::boxed::in_box;
use crate::error::Result;
use crate::protocol::http::server::{BodyHint, ServerSession};
use crate::protocol::http::{BodyFraming, RequestHead, ResponseHead};
use crate::protocol::stream::SocketAddr;
use crate::upstream::{HttpPeer, Outcome, PeerAddress, Pick, Tried, UpstreamGroup};

/// What the logging phase gets to know about a request.
#[derive(Debug, Clone, Default)]
pub struct Summary {
    /// Status sent downstream (0 when nothing was sent).
    pub status: u16,
    /// Request body bytes received from the client.
    pub bytes_in: u64,
    /// Response body bytes sent to the client.
    pub bytes_out: u64,
    /// The last peer tried.
    pub peer: Option<PeerAddress>,
    /// The group backend the last attempt went to (its name), when the peer came from a group.
    pub backend: Option<std::sync::Arc<str>>,
    /// The status of the last upstream response head (0 when none came).
    pub upstream_status: u16,
    /// Whether the last upstream connection came from the pool.
    pub reused: bool,
    /// Time to open the last upstream connection (zero when reused).
    pub upstream_connect: Option<Duration>,
    /// From request start to the first byte of the upstream response.
    pub time_to_first_byte: Option<Duration>,
    /// From the first byte of the request to the end of the response.
    pub total: Duration,
    /// Attempts beyond the first.
    pub retries: usize,
    /// The error, as text, if the request failed. When the response was already under way it
    /// starts with "response truncated" and says what the client got.
    pub error: Option<String>,
    /// The status the error maps to (see [`crate::error::Error::status`]), 0 if the request did
    /// not fail. Differs from `status` when the error came after the head went out.
    pub error_status: u16,
    /// The response head went downstream but the response did not reach its end (the upstream
    /// cut its body, the client went away, a body filter failed): the client got `status` with an
    /// incomplete body of `bytes_out` bytes.
    pub truncated: bool,
    /// What the service's cache did for the request; `None` for a service without one.
    pub cache: Option<crate::cache::CacheStatus>,
}

/// The request being proxied.
#[derive(Debug)]
pub struct Session {
    /// The downstream request head; early filters may edit it.
    pub req: RequestHead,
    pub(crate) req_framing: BodyFraming,
    /// Bytes of request body kept to replay on a retry; `None` once they exceeded the limit.
    pub(crate) replay: Option<BytesMut>,
    /// The client side: connection or stream, request body, keep-alive, whether the head went.
    pub(crate) downstream: ServerSession,
    pub(crate) local_response: Option<(ResponseHead, Bytes)>,
    pub(crate) start: Instant,
    /// The response head as sent downstream (after the response filters); set as the send begins,
    /// so it is there even when writing it failed (`summary.status` likewise).
    pub(crate) response: Option<ResponseHead>,
    /// Filled in as the request progresses; complete when `logging` runs.
    pub summary: Summary,
    /// Compression asked for by hooks or under way; `None` on the common path.
    pub(crate) coding: Option<Box<super::compress::Coding>>,
    /// The request's use of an upstream group (see [`Session::pick_from`]); `None` for a peer
    /// chosen otherwise, which then carries no group state through the request.
    pub(crate) group: Option<Box<GroupAttempt>>,
    /// The cache's dealings with the request; `None` for a service without a cache.
    pub(crate) cache: Option<Box<super::cache::CacheState>>,
    /// The request id, on a service that assigns them.
    pub(crate) request_id: Option<HeaderValue>,
}

/// What a request picking from a group keeps between its attempts.
#[derive(Debug, Default)]
pub(crate) struct GroupAttempt {
    /// The backend of the attempt under way.
    pick: Option<Pick>,
    /// The backends this request tried.
    tried: Tried,
}

impl Session {
    /// A session for `req` arriving on `downstream`, built in its box: a request's future holds a
    /// pointer rather than a kilobyte, and nothing of it is copied on the way. The body framing is
    /// set when the request is admitted.
    pub(crate) fn boxed(req: RequestHead, downstream: ServerSession) -> Box<Self> {
        in_box(|| Session {
            req,
            req_framing: BodyFraming::Empty,
            replay: Some(BytesMut::new()),
            downstream,
            local_response: None,
            start: Instant::now(),
            response: None,
            summary: Summary::default(),
            coding: None,
            group: None,
            cache: None,
            request_id: None,
        })
    }

    /// The client's address.
    pub fn client_addr(&self) -> Option<&SocketAddr> {
        self.downstream.addrs().0.as_ref()
    }

    /// The local address the request arrived on.
    pub fn server_addr(&self) -> Option<&SocketAddr> {
        self.downstream.addrs().1.as_ref()
    }

    /// What the TLS handshake of the client's connection settled (SNI, ALPN, version, cipher,
    /// client certificate); `None` on a plaintext connection. The same for every request of the
    /// connection, HTTP/1 or HTTP/2.
    pub fn tls(&self) -> Option<&crate::tls::TlsFacts> {
        self.downstream.tls()
    }

    /// The PROXY header the client's connection began with, if its endpoint accepts them: the
    /// load balancer's TLVs (ALPN, authority, SSL facts). [`Self::client_addr`] is already the
    /// address it carried.
    pub fn proxy_header(&self) -> Option<&crate::protocol::proxy_protocol::ProxyHeader> {
        self.downstream.proxy_header()
    }

    /// The request's `X-Request-Id` (the client's when valid, else one made for it), on a service
    /// that assigns request ids.
    pub fn request_id(&self) -> Option<&str> {
        self.request_id.as_ref().and_then(|v| v.to_str().ok())
    }

    /// Attempts beyond the first so far.
    pub fn retries(&self) -> usize {
        self.summary.retries
    }

    /// Chooses the backend of `group` for this attempt, for `upstream_peer` to return: on a retry
    /// one this request has not tried. `key` feeds the consistent-hash algorithms. The attempt's
    /// outcome (connect failure, timeout, 5xx or success) goes to the group's passive health and
    /// the backend counts the request as in flight until the attempt ends; the logging summary
    /// names the backend. Fails with 503 when every backend is at its in-flight cap.
    pub fn pick_from(&mut self, group: &UpstreamGroup, key: Option<&[u8]>) -> Result<HttpPeer> {
        let attempt = self.group.get_or_insert_with(Box::default);
        attempt.pick = None;
        let pick = group.pick(key, &mut attempt.tried)?;
        let peer = pick.peer().clone();
        self.summary.backend = Some(pick.label());
        attempt.pick = Some(pick);
        Ok(peer)
    }

    /// A count of the connection this attempt opened towards its group backend's connection cap,
    /// for the connection to hold; `None` when the peer did not come from a group.
    pub(crate) fn count_connection(&self) -> Option<crate::upstream::ConnectionCount> {
        self.group.as_ref()?.pick.as_ref().map(Pick::count_connection)
    }

    /// Ends the group attempt under way, if any, counting `outcome` (`None`: the failure was not
    /// the backend's).
    pub(crate) fn end_attempt(&mut self, outcome: Option<Outcome>) {
        if let Some(pick) = self.group.as_mut().and_then(|g| g.pick.take()) {
            if let Some(o) = outcome {
                pick.report(o);
            }
        }
    }

    /// Whether the response head already went to the client (no retry, no error page after this).
    pub fn response_started(&self) -> bool {
        self.downstream.head_sent()
    }

    /// The final response head as it went (or was being sent) downstream, once there is one.
    pub fn response(&self) -> Option<&ResponseHead> {
        self.response.as_ref()
    }

    /// Whether the request offers a protocol upgrade the service forwards: HTTP/1.1 with
    /// `Connection: upgrade` and an `Upgrade` protocol the service's
    /// [`UpgradePolicy`](crate::protocol::h1::upgrade::UpgradePolicy) allows. The offer was already
    /// cut to the allowed protocols when the request arrived (`h2c` and `HTTP2-Settings` are gone),
    /// so `req` shows what the upstream will be offered. A hook refuses an upgrade by answering in
    /// `request_filter`, by failing `upstream_request_filter`, or by removing `Upgrade` there (the
    /// request then goes up plain). No tunnel opens unless an HTTP/1.1 upstream answers 101.
    pub fn is_upgrade(&self) -> bool {
        crate::protocol::h1::framing::is_upgrade_request(&self.req)
    }

    /// Whether the request carries a body.
    pub fn has_body(&self) -> bool {
        self.req_framing != BodyFraming::Empty
    }

    /// Answers the request locally with `status`, `head`'s headers and `body` (a Content-Length is
    /// set). Used from `request_filter` (then return `Ok(true)`) or `fail_to_proxy`.
    pub fn respond(&mut self, mut head: ResponseHead, body: Bytes) {
        crate::protocol::h1::framing::set_content_length(&mut head.headers, body.len() as u64);
        self.local_response = Some((head, body));
    }

    /// Shorthand for [`Session::respond`] with a status and a text body.
    pub fn respond_status(&mut self, status: StatusCode, body: &'static str) {
        let mut head = ResponseHead::new(status);
        if !body.is_empty() {
            head.headers.insert(http::header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
        }
        self.respond(head, Bytes::from_static(body.as_bytes()));
    }

    /// Whether a local response is waiting to be sent.
    pub fn has_local_response(&self) -> bool {
        self.local_response.is_some()
    }

    /// Sends the final response head downstream and records it (status, the head as sent).
    pub(crate) async fn send_head(&mut self, head: ResponseHead, hint: BodyHint) -> Result<()> {
        self.summary.status = head.status.as_u16();
        // Put in its place first and sent from there: a head moved into the send and back out
        // again is copied at each step.
        let head = self.response.insert(head);
        self.downstream.send_head(self.req.version, head, hint).await
    }
}
