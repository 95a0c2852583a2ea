//! The phase pipeline of one request: filters, peer selection with bounded retries, the upstream
//! exchange, the error response, and logging, which always runs last.

use std::pin::pin;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use http::header::{CONTENT_LENGTH, EXPECT, TRANSFER_ENCODING};
use http::{HeaderValue, Method, StatusCode};

use super::catch_unwind::{call_sync, CatchUnwind};
use super::exchange::paced;
use super::hooks::Phases;
use super::observe::describe;
use super::request_id::X_REQUEST_ID;
use super::{hook_panic, HttpProxy, ProxyHttp, Session};
use crate::connector::Connection;
use crate::error::{Error, ErrorKind, ErrorSource, Result};
use crate::protocol::h1::conn::Tally;
use crate::protocol::h1::framing::{expects_continue, is_upgrade_request};
use crate::protocol::http::client::ClientSession;
use crate::protocol::http::server::{BodyHint, ServerSession};
use crate::protocol::http::{BodyFraming, ResponseHead};
use crate::server::ShutdownWatch;
use crate::upstream::Outcome;

impl<H: ProxyHttp> HttpProxy<H> {
    /// Runs one request to completion. Returns whether the downstream connection may be reused.
    pub(super) async fn handle(&self, session: &mut Session, shutdown: &ShutdownWatch) -> bool {
        let mut ctx = self.hooks.new_ctx();
        let result = {
            let fut = pin!(self.run_phases(session, &mut ctx, shutdown));
            CatchUnwind(fut).await.unwrap_or_else(|_| Err(hook_panic()))
        };
        let result = match result {
            Err(e) if session.cache.is_some() => {
                Box::pin(self.stale_on_error(session, e, &mut ctx, shutdown)).await
            }
            r => r,
        };
        if let Some(c) = &session.cache {
            session.summary.cache = Some(c.status);
        }
        // Whether the failure came after the head went out: the error page sets `head_sent` too.
        let cut = result.is_err() && session.response_started();
        let (reuse, e) = match result {
            Ok(reuse) => (reuse, None),
            Err(e) => (Box::pin(self.fail(session, &e, &mut ctx)).await, Some(e)),
        };
        session.summary.total = session.start.elapsed();
        session.summary.bytes_in += session.downstream.body_bytes();
        if let Some(e) = &e {
            let m = &mut session.summary;
            m.error_status = e.status();
            // A failure after the head went out is invisible in the status: the client saw a 200
            // (say) and a short body. The summary says so, so an access log line built from it
            // does not read like a success.
            m.truncated = cut;
            m.error = Some(if m.truncated {
                format!("response truncated ({} sent, {} body bytes): {e}", m.status, m.bytes_out)
            } else {
                e.to_string()
            });
        }
        // A panicking logger loses its own log line, nothing else.
        let _ = call_sync(|| self.hooks.logging(session, e.as_deref(), &mut ctx));
        if let Some(o) = &self.options.observe {
            o.record(session, e.as_deref());
        }
        reuse
    }

    /// The request failed: let `fail_to_proxy` choose the answer, send it if nothing was sent yet.
    async fn fail(&self, session: &mut Session, e: &Error, ctx: &mut H::CTX) -> bool {
        if session.response_started() {
            return false;
        }
        session.local_response = None;
        let status = {
            let fut = pin!(self.hooks.fail_to_proxy(session, e, ctx));
            CatchUnwind(fut).await.unwrap_or(500)
        };
        let (head, body) = match session.local_response.take() {
            Some(r) => r,
            None => match StatusCode::from_u16(status) {
                Ok(_) if status >= 400 => {
                    let (mut head, body) = self.error_page(status, describe(e));
                    if let Some(id) = &session.request_id {
                        head.headers.insert(X_REQUEST_ID.clone(), id.clone());
                    }
                    (head, body)
                }
                // 0 or nonsense: drop the connection without an answer.
                _ => return false,
            },
        };
        // After an error the request body may be half read: the connection is reused only when it
        // was read to the end and the failure was not the client's.
        if !session.downstream.body_done() || e.source == ErrorSource::Downstream {
            session.downstream.set_close();
        }
        let sent = self.send_local(session, head, body).await.is_ok();
        sent && session.downstream.keepalive() && session.downstream.reusable()
    }

    /// Sends a complete response held in memory (a local answer or an error page).
    pub(super) async fn send_local(
        &self,
        session: &mut Session,
        head: ResponseHead,
        body: Bytes,
    ) -> Result<()> {
        let hint = if session.req.method == Method::HEAD {
            BodyHint::None
        } else {
            BodyHint::Length(body.len() as u64)
        };
        session.send_head(head, hint).await?;
        if hint != BodyHint::None && !body.is_empty() {
            session.summary.bytes_out += body.len() as u64;
            session.downstream.write_body(body).await?;
        }
        session.downstream.finish(None).await
    }

    async fn run_phases(
        &self,
        session: &mut Session,
        ctx: &mut H::CTX,
        shutdown: &ShutdownWatch,
    ) -> Result<bool> {
        if self.has(Phases::EARLY_REQUEST_FILTER) {
            self.hooks.early_request_filter(session, ctx).await?;
        }
        // A response the filter set is sent even when it returned Ok(false): forwarding a request
        // the hook meant to answer (an auth check's 401) would be the worse mistake.
        let answered = self.has(Phases::REQUEST_FILTER) && self.hooks.request_filter(session, ctx).await?;
        if answered || session.has_local_response() {
            // Answering without an answer is the hook's bug: fail the request (500, logged with
            // this cause) rather than send an empty 500 nobody can explain.
            let (head, body) = session.local_response.take().ok_or_else(|| {
                Error::internal("request_filter")
                    .with_cause("it answered (Ok(true)) without Session::respond")
            })?;
            self.before_local_answer(session).await?;
            Box::pin(self.send_local(session, head, body)).await?;
            return Ok(self.settle_downstream(session).await);
        }
        if self.server.request_buffer > 0 && session.has_body() && !is_upgrade_request(&session.req) {
            Box::pin(self.buffer_request_body(session, ctx)).await?;
        }
        if self.options.cache.is_some() && Box::pin(self.cache_request(session, ctx, shutdown)).await? {
            return Ok(self.settle_downstream(session).await);
        }
        loop {
            let mut peer = self.hooks.upstream_peer(session, ctx).await?;
            if let Some(pp) = &mut peer.options.proxy_protocol {
                pp.fill(session.client_addr(), session.server_addr());
            }
            session.summary.peer = Some(peer.address.clone());
            let upstream = match self.connector.get(&peer).await {
                Ok(u) => u,
                Err(e) => {
                    session.end_attempt(Some(Outcome::Failure));
                    let e = self.hooks.fail_to_connect(session, &peer, ctx, e);
                    self.may_retry(session, e)?;
                    continue;
                }
            };
            let reused = upstream.reused;
            session.summary.reused = reused;
            session.summary.upstream_connect = Some(upstream.connect_time);
            let key = upstream.key;
            // An HTTP/2 ticket holds the stream's slot on the pooled connection until the attempt ends.
            let (mut us, _ticket) = match upstream.conn {
                Connection::H1(mut c) => {
                    if let Some(count) = session.count_connection().filter(|_| !reused) {
                        c.hold(Tally(Box::new(count)));
                    }
                    (ClientSession::h1(c, reused), None)
                }
                Connection::H2(send, ticket) => (ClientSession::h2(send, upstream.tls, reused), Some(ticket)),
            };
            if self.has(Phases::CONNECTED_TO_UPSTREAM) {
                self.hooks.connected_to_upstream(session, reused, &peer, ctx).await?;
            }
            match self.exchange(session, &mut us, &peer, ctx, shutdown).await {
                Ok(()) => {
                    let failed = session.summary.upstream_status >= 500;
                    session.end_attempt(Some(if failed { Outcome::Failure } else { Outcome::Success }));
                    if let Some(conn) = us.into_reusable_h1() {
                        self.connector.release_to(key, &peer, conn);
                    }
                    return Ok(self.settle_downstream(session).await);
                }
                Err(e) => {
                    // A client that went away says nothing about the backend, nor does a pooled
                    // connection found closed before it answered (the backend may close idle
                    // connections at will; the retry opens a new one).
                    let blame = e.source == ErrorSource::Upstream && !(reused && e.retry);
                    session.end_attempt(blame.then_some(Outcome::Failure));
                    let e = self.hooks.error_while_proxy(&peer, session, e, ctx, reused);
                    self.may_retry(session, e)?;
                }
            }
        }
    }

    /// Before answering without the upstream (a hook's response, a cache hit): announces the
    /// close when the unread body will not be drained (the client waits for a 100 that will not
    /// come, or the body is longer than we are willing to discard), and reads what is left of an
    /// HTTP/2 body. The HTTP/1 remainder is drained by [`Self::settle_downstream`] afterwards, so
    /// a body is never taken for the next request (Pingora CVE-2025-4366).
    pub(super) async fn before_local_answer(&self, session: &mut Session) -> Result<()> {
        let unread = !session.downstream.body_done();
        let too_long = matches!(session.req_framing, BodyFraming::Length(n) if n > self.server.drain_limit);
        if unread && (expects_continue(&session.req) || too_long) {
            session.downstream.set_close();
        }
        if session.downstream.as_h1().is_none() {
            Box::pin(self.read_h2_body(&mut session.downstream)).await?;
        }
        Ok(())
    }

    /// Reads the whole request body (through `request_body_filter`) into the replay buffer, which
    /// every attempt sends, and reframes the request with its Content-Length. The client's
    /// `Expect: 100-continue` is answered here, as no upstream will see it.
    async fn buffer_request_body(&self, session: &mut Session, ctx: &mut H::CTX) -> Result<()> {
        let o = &self.server;
        let too_large = || {
            Error::downstream(ErrorKind::HttpStatus(413), "buffering the request body")
                .with_cause(format!("longer than the request buffer ({} bytes)", o.request_buffer))
        };
        if matches!(session.req_framing, BodyFraming::Length(n) if n > o.request_buffer as u64) {
            session.downstream.set_close(); // the body stays unread
            return Err(too_large());
        }
        if expects_continue(&session.req) {
            session.req.headers.remove(EXPECT);
            let version = session.req.version;
            session.downstream.send_interim(version, ResponseHead::new(StatusCode::CONTINUE)).await?;
        }
        let mut buf = BytesMut::new();
        while !session.downstream.body_done() {
            let cutoff = o.body_cutoff(session.start, session.downstream.body_bytes());
            let piece = paced(&mut session.downstream, true, Some(o.body_idle_timeout), cutoff).await?;
            let mut piece = match piece {
                Some(d) => Some(d),
                None => break,
            };
            if session.downstream.body_bytes() > o.request_buffer as u64 {
                session.downstream.set_close();
                return Err(too_large());
            }
            if self.has(Phases::REQUEST_BODY_FILTER) {
                self.hooks.request_body_filter(session, &mut piece, false, ctx).await?;
            }
            buf.extend_from_slice(piece.as_deref().unwrap_or_default());
        }
        let mut tail = None;
        if self.has(Phases::REQUEST_BODY_FILTER) {
            self.hooks.request_body_filter(session, &mut tail, true, ctx).await?;
        }
        buf.extend_from_slice(tail.as_deref().unwrap_or_default());
        let n = buf.len() as u64;
        session.req.headers.remove(TRANSFER_ENCODING);
        session.req.headers.insert(CONTENT_LENGTH, HeaderValue::from(n));
        session.req_framing = if n == 0 { BodyFraming::Empty } else { BodyFraming::Length(n) };
        session.replay = Some(buf);
        Ok(())
    }

    /// Passes `e` through unless another attempt is allowed: the error says a retry is safe, no
    /// response byte went downstream, the body can be replayed, and the retry budget is not spent.
    fn may_retry(&self, session: &mut Session, e: Box<Error>) -> Result<()> {
        // `replay` holds every body byte read so far until it outgrows the retry buffer.
        let replayable = session.replay.is_some();
        if e.retry
            && !session.response_started()
            && replayable
            && session.summary.retries < self.options.max_retries
        {
            session.summary.retries += 1;
            return Ok(());
        }
        Err(e)
    }

    /// Reads (and drops) what is left of an HTTP/2 request body, up to the drain limit, before it
    /// is answered locally: a malformed body (a Content-Length its DATA frames contradict) must end
    /// in a stream error, not in an answer that raced it (RFC 9113 §8.1.1). A longer body is left
    /// unread; the stream is reset when the answer ends.
    async fn read_h2_body(&self, ds: &mut ServerSession) -> Result<()> {
        let o = &self.server;
        let idle = Some(o.body_idle_timeout.min(Duration::from_secs(2)));
        let mut seen = 0u64;
        while !ds.body_done() && seen <= o.drain_limit {
            match ds.next_event(true, idle).await? {
                Some(d) => seen += d.len() as u64,
                None => break,
            }
        }
        Ok(())
    }

    /// After the response: an HTTP/1 connection carries another request only if this request's
    /// body was read to its end; read and discard a small remainder rather than closing.
    pub(super) async fn settle_downstream(&self, session: &mut Session) -> bool {
        let o = &self.server;
        session.downstream.settle(o.drain_limit, o.body_idle_timeout.min(Duration::from_secs(2))).await
    }
}
