//! One attempt at the upstream: send the request head and stream the body up while reading the
//! response (so `100 Continue` and early responses work), run the response phases, stream the
//! response body down, and switch to a tunnel only after a real `101` (or a 2xx to CONNECT).

use std::borrow::Cow;

use bytes::Bytes;
use http::header::{CONNECTION, HOST, TE};
use http::{HeaderValue, Method, StatusCode, Version};
use tokio::io::AsyncWriteExt;

use super::hooks::Phases;
use super::{keep_for_replay, HttpProxy, ProxyHttp, Session};
use crate::error::{Error, ErrorKind, ErrorSource, Result};
use crate::protocol::h1::encode::{has_hop_by_hop, strip_hop_by_hop};
use crate::protocol::h1::framing::declared_length;
use crate::protocol::h1::framing::{expects_continue, has_token, is_upgrade_request};
use crate::protocol::h1::upgrade::{answers_offer, restrict_upgrade};
use crate::protocol::http::client::{ClientSession, UpEvent};
use crate::protocol::http::host::valid_host_value;
use crate::protocol::http::server::{BodyHint, ServerSession};
use crate::protocol::http::{BodyFraming, Headers, Known, ResponseHead};
use crate::server::ShutdownWatch;
use crate::upstream::HttpPeer;

impl<H: ProxyHttp> HttpProxy<H> {
    /// One attempt; the downstream's keep-alive state says afterwards whether it can go on.
    pub(super) async fn exchange(
        &self,
        session: &mut Session,
        us: &mut ClientSession,
        peer: &HttpPeer,
        ctx: &mut H::CTX,
        shutdown: &ShutdownWatch,
    ) -> Result<()> {
        let reused = us.reused();
        let (rto, wto) = (peer.options.read_timeout, peer.options.write_timeout);
        let body_idle = Some(self.server.body_idle_timeout);
        let limits = &self.server.limits;
        // Upgrades are HTTP/1-only on both sides (no extended CONNECT yet).
        let upgrade =
            is_upgrade_request(&session.req) && session.downstream.as_h1().is_some() && us.as_h1().is_some();

        // The downstream head goes up as it is, without a copy, unless something changes it: hop-by-hop
        // fields to strip, an upgrade to rewrite, a Host to add, a hook that edits the upstream
        // request, chunked framing, or an HTTP/2 upstream (which takes the fields).
        let plain = !upgrade
            && !us.is_h2()
            && !self.has(Phases::UPSTREAM_REQUEST_FILTER)
            && matches!(session.req_framing, BodyFraming::Empty | BodyFraming::Length(_))
            && session.req.headers.has_known(Known::Host)
            && !has_hop_by_hop(&session.req.headers);
        let (head, offer) = if plain {
            // Hooks of the request phases may have edited Host since the intake checked it.
            valid_upstream_host(&session.req.headers)?;
            (Cow::Borrowed(&session.req), None)
        } else {
            let mut up = session.req.clone();
            up.version = Version::HTTP_11;
            strip_hop_by_hop(&mut up.headers, upgrade);
            if upgrade {
                up.headers.insert(CONNECTION, HeaderValue::from_static("upgrade"));
            }
            // `TE: trailers` is the one TE an HTTP/2 request may carry (RFC 9113 §8.2.2), and gRPC
            // servers require it to know that trailers survive the path; we do carry them.
            if us.is_h2() && has_token(&session.req.headers, &Known::Te, "trailers") {
                up.headers.insert(TE, HeaderValue::from_static("trailers"));
            }
            // Before the filter, so that hooks see (and may change) the Host the origin will get.
            if !up.headers.has_known(Known::Host) {
                add_default_host(&mut up.headers, peer);
            }
            if self.has(Phases::UPSTREAM_REQUEST_FILTER) {
                self.hooks.upstream_request_filter(session, &mut up, ctx).await?;
            }
            check_upstream_host(&mut up.headers, peer)?;
            // Checked again as it leaves: the hook may have removed the offer (the request then goes
            // up plain) or added protocols, and h2c must not go up whoever put it there. What remains
            // is the offer a 101 has to answer.
            let upgrade = restrict_upgrade(&mut up.headers, upgrade, &self.server.upgrades);
            let offer = if upgrade {
                up.headers.value(&Known::Upgrade).and_then(|v| HeaderValue::from_bytes(v).ok())
            } else {
                None
            };
            (Cow::Owned(up), offer)
        };

        // Until the upstream says anything, a reused connection found closed or reset was stale: the
        // request can go again. A timeout is different: the upstream may be working on it.
        let mut heard = false;
        let stale = |e: Box<Error>, heard: bool| {
            let closed = matches!(e.kind, ErrorKind::ConnectionClosed | ErrorKind::WriteError);
            if reused && !heard && closed {
                e.with_retry(true)
            } else {
                e
            }
        };

        us.send_head(head, session.req_framing, wto).await.map_err(|e| stale(e, false))?;
        if let Some(sent) = session.replay.as_ref().filter(|b| !b.is_empty()) {
            let again = Bytes::copy_from_slice(sent);
            us.write_body(again, wto).await.map_err(|e| stale(e, false))?;
        }
        let mut req_done = session.downstream.body_done();
        if req_done {
            us.finish(session.downstream.trailers(), wto).await.map_err(|e| stale(e, false))?;
        }

        let method = session.req.method.clone();
        let mut streaming = false;
        let mut pump_failed = false;
        let mut sent_continue = false;
        loop {
            let cutoff = self.server.body_cutoff(session.start, session.downstream.body_bytes());
            // Client side first: what the client already sent (a reset, the rest of a malformed
            // body) must be seen before a response that raced it goes out.
            tokio::select! {
                biased;
                ev = paced(&mut session.downstream, !req_done && !pump_failed, body_idle, cutoff) => {
                    let data = ev?;
                    let mut sent = Ok(());
                    if let Some(d) = data {
                        let mut body = Some(d);
                        if self.has(Phases::REQUEST_BODY_FILTER) {
                            self.hooks.request_body_filter(session, &mut body, false, ctx).await?;
                        }
                        sent = self.send_request_body(session, us, body, wto).await;
                    }
                    // The end of the body is handled in the same turn as its last bytes, so the
                    // end-of-stream filter call always precedes the response phases.
                    if session.downstream.body_done() && sent.is_ok() {
                        req_done = true;
                        let mut tail = None;
                        if self.has(Phases::REQUEST_BODY_FILTER) {
                            self.hooks.request_body_filter(session, &mut tail, true, ctx).await?;
                        }
                        sent = self.send_request_body(session, us, tail, wto).await;
                        if sent.is_ok() {
                            sent = us.finish(session.downstream.trailers(), wto).await;
                        }
                    }
                    if let Err(e) = sent {
                        if !streaming && !heard {
                            return Err(stale(e, heard));
                        }
                        // The upstream already answered and stopped reading: finish its response.
                        pump_failed = true;
                    }
                }
                ev = us.next_event(&method, limits, rto) => {
                    let ev = ev.map_err(|e| stale(e, heard))?;
                    heard = true;
                    match ev {
                        UpEvent::Head(mut h) => {
                            if session.summary.time_to_first_byte.is_none() {
                                session.summary.time_to_first_byte = Some(session.start.elapsed());
                            }
                            let status = h.status.as_u16();
                            if status == 101 {
                                let Some(offer) = &offer else {
                                    return Err(Error::upstream(ErrorKind::InvalidHttp(502), "reading the response head")
                                        .with_cause("101 to a request that was not forwarded as an upgrade"));
                                };
                                if !answers_offer(&h.headers, offer, &self.server.upgrades) {
                                    return Err(Error::upstream(ErrorKind::InvalidHttp(502), "reading the response head")
                                        .with_cause("101 to a protocol that was not offered"));
                                }
                            }
                            if status == 101 || (method == Method::CONNECT && h.status.is_success()) {
                                // Boxed, like every path off the common one: an await's state is part of every
                                // request's future, which is copied into its box per request.
                                return Box::pin(self.tunnel(session, us, h, ctx)).await;
                            }
                            if h.status.is_informational() {
                                sent_continue |= status == 100;
                                session.downstream.send_interim(session.req.version, h).await?;
                                continue;
                            }
                            session.summary.upstream_status = status;
                            let unread = session.downstream.body_bytes() == 0;
                            if !req_done && expects_continue(&session.req) && !sent_continue && unread {
                                // The client still waits for 100 and will never send its body now.
                                session.downstream.set_close();
                            }
                            // Boxed: off the common path (see `tunnel`).
                            if session.cache.is_some()
                                && Box::pin(self.cache_upstream_head(session, &mut h, ctx, shutdown)).await?
                            {
                                return Ok(());
                            }
                            self.send_response_head(session, h, Source::Upstream, us.length_is_framing(), ctx, shutdown).await?;
                            // With the request sent, body bytes that came with the head need no
                            // trip round the select: a small response ends right here.
                            let ended = req_done && self.forward_buffered(session, us, ctx).await?;
                            if ended || us.body_is_empty() {
                                return self.end_response(session, us, ctx).await;
                            }
                            // Only now is it known that more is to come: an HTTP/2 head held back
                            // in case it ended the stream goes out before the wait.
                            session.downstream.commit_head()?;
                            streaming = true;
                        }
                        UpEvent::Data(d) => self.forward_response_body(session, Some(d), false, Source::Upstream, ctx).await?,
                        UpEvent::End => return self.end_response(session, us, ctx).await,
                    }
                }
            }
        }
    }

    /// Sends a piece of (filtered) request body upstream, keeping a copy for a retry.
    async fn send_request_body(
        &self,
        session: &mut Session,
        us: &mut ClientSession,
        body: Option<Bytes>,
        wto: Option<std::time::Duration>,
    ) -> Result<()> {
        match body {
            Some(d) if !d.is_empty() => {
                // No copy at all when retries are off: the body could never be replayed.
                let limit = if self.options.max_retries == 0 { 0 } else { self.options.retry_buffer_limit };
                keep_for_replay(&mut session.replay, &d, limit);
                us.write_body(d, wto).await
            }
            _ => Ok(()),
        }
    }

    /// Runs the response phases on a final head and sends it downstream. An upstream head is
    /// stripped of hop-by-hop fields, decoded when the service decodes, shown to
    /// `upstream_response_filter` and offered to the cache first; a stored one (`Source::Stored`)
    /// goes straight to `response_filter`. A Content-Length frames the body when `length_frames`.
    /// One function for both, not two nested ones: every request pays for a nested future's state
    /// being moved in and polled through.
    pub(super) async fn send_response_head(
        &self,
        session: &mut Session,
        mut h: ResponseHead,
        source: Source,
        length_frames: bool,
        ctx: &mut H::CTX,
        shutdown: &ShutdownWatch,
    ) -> Result<()> {
        if source == Source::Upstream {
            strip_hop_by_hop(&mut h.headers, false);
            if self.codes(session) {
                self.decode_head(session, &mut h)?;
            }
            if self.has(Phases::UPSTREAM_RESPONSE_FILTER) {
                self.hooks.upstream_response_filter(session, &mut h, ctx).await?;
            }
        }
        if session.cache.is_some() {
            if source == Source::Upstream {
                self.cache_admit(session, &h, ctx)?;
            }
            self.mark_cache_status(session, &mut h);
        }
        if self.has(Phases::RESPONSE_FILTER) {
            self.hooks.response_filter(session, &mut h, ctx).await?;
        }
        let coded = self.codes(session);
        if coded {
            self.encode_head(session, &mut h)?;
        }
        let no_body = session.req.method == Method::HEAD
            || h.status == StatusCode::NO_CONTENT
            || h.status == StatusCode::NOT_MODIFIED;
        let hint = match declared_length(&h.headers) {
            _ if no_body => BodyHint::None,
            Some(n) if length_frames => BodyHint::Length(n),
            _ => BodyHint::Unknown,
        };
        if shutdown.is_shutting_down() {
            session.downstream.set_close();
        }
        if coded {
            return Box::pin(self.send_coded_head(session, h, hint)).await;
        }
        session.send_head(h, hint).await
    }

    /// The two response head filters, each when the hooks take part in it.
    async fn response_filters(
        &self,
        session: &mut Session,
        h: &mut ResponseHead,
        ctx: &mut H::CTX,
    ) -> Result<()> {
        if self.has(Phases::UPSTREAM_RESPONSE_FILTER) {
            self.hooks.upstream_response_filter(session, h, ctx).await?;
        }
        if self.has(Phases::RESPONSE_FILTER) {
            self.hooks.response_filter(session, h, ctx).await?;
        }
        Ok(())
    }

    /// Forwards the response body bytes already buffered; whether they were the whole body.
    async fn forward_buffered(
        &self,
        session: &mut Session,
        us: &mut ClientSession,
        ctx: &mut H::CTX,
    ) -> Result<bool> {
        while let Some(piece) = us.buffered_body()? {
            match piece {
                Some(d) => self.forward_response_body(session, Some(d), false, Source::Upstream, ctx).await?,
                None => return Ok(true),
            }
        }
        Ok(false)
    }

    /// The upstream body ended: last call of the body filters, then the end (and trailers).
    async fn end_response(
        &self,
        session: &mut Session,
        us: &mut ClientSession,
        ctx: &mut H::CTX,
    ) -> Result<()> {
        let trailers = us.take_trailers();
        self.forward_response_body(session, None, true, Source::Upstream, ctx).await?;
        if let (Some(cache), Some(c)) = (self.options.cache.as_deref(), session.cache.as_deref_mut()) {
            c.commit(cache, trailers.as_ref());
        }
        session.downstream.finish(trailers.as_ref()).await
    }

    /// Passes body through the body filters and writes what they leave downstream. An upstream
    /// piece is decoded when the service decodes, shown to `upstream_response_body_filter` and
    /// copied into the cache first; a stored one goes straight to `response_body_filter`.
    pub(super) async fn forward_response_body(
        &self,
        session: &mut Session,
        data: Option<Bytes>,
        end: bool,
        source: Source,
        ctx: &mut H::CTX,
    ) -> Result<()> {
        let mut body = data;
        if source == Source::Upstream {
            if session.coding.is_some() {
                body = self.decode_body(session, body, end)?;
                if body.is_none() && !end {
                    return Ok(());
                }
            }
            if self.has(Phases::UPSTREAM_RESPONSE_BODY_FILTER) {
                self.hooks.upstream_response_body_filter(session, &mut body, end, ctx).await?;
            }
            if let (Some(cache), Some(c)) = (self.options.cache.as_deref(), session.cache.as_deref_mut()) {
                c.tee(cache, body.as_ref());
            }
        }
        if self.has(Phases::RESPONSE_BODY_FILTER) {
            self.hooks.response_body_filter(session, &mut body, end, ctx).await?;
        }
        if session.coding.is_some() {
            body = Box::pin(self.encode_body(session, body, end)).await?;
        }
        match body {
            Some(d) if !d.is_empty() => {
                session.summary.bytes_out += d.len() as u64;
                session.downstream.write_body(d).await
            }
            _ => Ok(()),
        }
    }

    /// The upstream agreed to switch protocols: send its head down, then copy bytes both ways
    /// until either side closes. Neither connection is reused afterwards. HTTP/1 on both sides.
    async fn tunnel(
        &self,
        session: &mut Session,
        us: &mut ClientSession,
        mut h: ResponseHead,
        ctx: &mut H::CTX,
    ) -> Result<()> {
        if us.as_h1().is_none() || session.downstream.as_h1().is_none() {
            return Err(Error::upstream(ErrorKind::InvalidHttp(502), "switching protocols")
                .with_cause("tunnels need HTTP/1.1 on both sides"));
        }
        let switching = h.status == StatusCode::SWITCHING_PROTOCOLS;
        strip_hop_by_hop(&mut h.headers, switching);
        if switching {
            h.headers.insert(CONNECTION, HeaderValue::from_static("upgrade"));
        }
        self.response_filters(session, &mut h, ctx).await?;
        session.send_head(h, BodyHint::Tunnel).await?;
        let (Some(down), Some(up)) = (session.downstream.as_h1(), us.as_h1()) else {
            return Err(Error::internal("switching protocols").with_cause("no HTTP/1 connection"));
        };
        let ds_conn = &mut down.conn;
        let to_up = ds_conn.rbuf.split();
        let to_down = up.rbuf.split();
        if !to_up.is_empty() {
            up.io
                .write_all(&to_up)
                .await
                .map_err(|e| Error::from_io(&e, ErrorSource::Upstream, false, "tunnel"))?;
        }
        if !to_down.is_empty() {
            ds_conn
                .io
                .write_all(&to_down)
                .await
                .map_err(|e| Error::from_io(&e, ErrorSource::Downstream, false, "tunnel"))?;
        }
        // Either side going away ends a tunnel; that is its normal end, not an error.
        if let Ok((upward, downward)) = tokio::io::copy_bidirectional(&mut ds_conn.io, &mut up.io).await {
            session.summary.bytes_in += upward + to_up.len() as u64;
            session.summary.bytes_out += downward + to_down.len() as u64;
        }
        Ok(())
    }
}

/// Where a response being sent comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Source {
    /// The upstream: its phases and the cache's copy apply.
    Upstream,
    /// The cache: only the downstream phases apply.
    Stored,
}

/// RFC 9112 §3.2: a request without Host (HTTP/1.0, HTTP/2 without `:authority`) goes upstream
/// with the peer's name, so the origin never has to guess.
fn add_default_host(headers: &mut Headers, peer: &HttpPeer) {
    let host = peer.default_host();
    // A server name or address that is no valid Host (unlikely: they come from the host's
    // configuration) is not worth failing the request for.
    let host = if valid_host_value(host.as_bytes()) { host } else { "localhost".to_owned() };
    if let Ok(v) = HeaderValue::from_str(&host) {
        headers.insert(HOST, v);
    }
}

/// After `upstream_request_filter`: exactly one valid Host goes upstream. A filter that removed it
/// gets the peer's name back; one that left several or an invalid one fails the request (500)
/// rather than sending what an origin would have to guess at.
pub(super) fn check_upstream_host(headers: &mut Headers, peer: &HttpPeer) -> Result<()> {
    if !headers.has_known(Known::Host) {
        add_default_host(headers, peer);
        return Ok(());
    }
    valid_upstream_host(headers)
}

/// Exactly one valid Host, as a hook left it (skipped when nothing touched the one the intake
/// checked).
fn valid_upstream_host(headers: &Headers) -> Result<()> {
    if headers.is_checked(Known::Host) {
        return Ok(());
    }
    let mut hosts = headers.values(&Known::Host);
    let cause = match (hosts.next(), hosts.next()) {
        (Some(v), None) if valid_host_value(v) => return Ok(()),
        (_, Some(_)) => "a hook left more than one Host",
        _ => "a hook left an invalid Host",
    };
    Err(Error::internal("preparing the upstream request").with_cause(cause))
}

/// The next request body event, failing with a downstream read timeout (408) at `cutoff`: the
/// body's total deadline or the point where it falls below the minimum rate. The cutoff bounds
/// the whole call, so a client trickling framing bytes (a chunk size a byte at a time) cannot
/// stretch it with fresh idle timeouts either.
pub(super) async fn paced(
    ds: &mut ServerSession,
    read: bool,
    idle: Option<std::time::Duration>,
    cutoff: Option<std::time::Instant>,
) -> Result<Option<Bytes>> {
    match cutoff {
        Some(at) if read => {
            tokio::time::timeout_at(at.into(), ds.next_event(read, idle)).await.map_err(|_| {
                Error::downstream(ErrorKind::ReadTimeout, "reading a body")
                    .with_cause("the request body broke its deadline or minimum rate")
            })?
        }
        _ => ds.next_event(read, idle).await,
    }
}
