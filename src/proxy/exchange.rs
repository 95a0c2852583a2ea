//! One attempt at the upstream: send the request head and stream the body up while reading the
//! response (so `100 Continue` and early responses work), run the response phases, stream the
//! response body down, and switch to a tunnel only after a real `101` (or a 2xx to CONNECT).

use bytes::Bytes;
use http::header::{CONNECTION, CONTENT_LENGTH, TRANSFER_ENCODING};
use http::{HeaderMap, HeaderValue, Method, StatusCode, Version};
use tokio::io::AsyncWriteExt;

use super::{keep_for_replay, set_connection_header, HttpProxy, ProxyHttp, Session};
use crate::error::{Error, ErrorKind, ErrorSource, Result};
use crate::protocol::h1::conn::{BodyReader, BodyWriter, H1Conn};
use crate::protocol::h1::encode::{encode_request_head, encode_response_head, strip_hop_by_hop};
use crate::protocol::h1::framing::{expects_continue, is_upgrade_request, response_keep_alive};
use crate::protocol::h1::{parse_response, response_framing, BodyFraming, Limits, ResponseHead};
use crate::server::ShutdownWatch;
use crate::upstream::HttpPeer;

/// How an attempt ended, for connection reuse on both sides.
pub(super) struct Outcome {
    pub upstream_reusable: bool,
    pub downstream_reusable: bool,
}

enum UpEvent {
    Head(ResponseHead),
    Data(Bytes),
    End,
}

/// The next thing the upstream says: a head while none is final yet, else a piece of body.
async fn next_upstream(
    us: &mut H1Conn,
    body: Option<&mut BodyReader>,
    limits: &Limits,
    read_timeout: Option<std::time::Duration>,
) -> Result<UpEvent> {
    match body {
        None => {
            let deadline = read_timeout.map(|t| tokio::time::Instant::now() + t);
            match us.read_head(limits, deadline, parse_response, "reading the response head").await? {
                Some(h) => Ok(UpEvent::Head(h)),
                None => Err(Error::upstream(ErrorKind::ConnectionClosed, "reading the response head")
                    .with_cause("upstream closed the connection before responding")),
            }
        }
        Some(reader) => Ok(match us.read_body(reader, read_timeout).await? {
            Some(d) => UpEvent::Data(d),
            None => UpEvent::End,
        }),
    }
}

fn content_length(headers: &HeaderMap) -> Option<u64> {
    let v = headers.get(CONTENT_LENGTH)?.to_str().ok()?;
    if v.is_empty() || !v.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    v.parse().ok()
}

/// The response being streamed downstream.
struct Streaming {
    reader: BodyReader,
    writer: BodyWriter,
    upstream_keepalive: bool,
}

impl<H: ProxyHttp> HttpProxy<H> {
    #[allow(clippy::too_many_arguments)]
    pub(super) async fn exchange(
        &self,
        session: &mut Session,
        ds: &mut H1Conn,
        us: &mut H1Conn,
        reused: bool,
        peer: &HttpPeer,
        ctx: &mut H::CTX,
        shutdown: &ShutdownWatch,
    ) -> Result<Outcome> {
        let (rto, wto) = (peer.options.read_timeout, peer.options.write_timeout);
        let ds_wto = Some(self.server.write_timeout);
        let body_idle = Some(self.server.body_idle_timeout);
        let limits = &self.server.limits;
        let upgrade = is_upgrade_request(&session.req);

        let mut up = session.req.clone();
        up.version = Version::HTTP_11;
        strip_hop_by_hop(&mut up.headers, upgrade);
        if upgrade {
            up.headers.insert(CONNECTION, HeaderValue::from_static("upgrade"));
        }
        self.hooks.upstream_request_filter(session, &mut up, ctx).await?;
        let mut writer = if session.req_framing == BodyFraming::Empty {
            BodyWriter::Empty
        } else if let Some(n) = content_length(&up.headers) {
            up.headers.remove(TRANSFER_ENCODING);
            BodyWriter::Length(n)
        } else {
            up.headers.remove(CONTENT_LENGTH);
            up.headers.insert(TRANSFER_ENCODING, HeaderValue::from_static("chunked"));
            BodyWriter::Chunked
        };
        us.queue(|b| encode_request_head(&up, b));
        drop(up);

        // Until the upstream says anything, a failure on a pooled connection means it was stale:
        // the request can go again.
        let mut heard = false;
        let stale = |e: Box<Error>, heard: bool| {
            if reused && !heard {
                e.with_retry(true)
            } else {
                e
            }
        };

        if let Some(sent) = session.replay.as_ref().filter(|b| !b.is_empty()) {
            let again = Bytes::copy_from_slice(sent);
            us.write_body(&mut writer, again, wto).await.map_err(|e| stale(e, false))?;
        }
        let mut req_done = session.req_body.is_done();
        let sent = if req_done {
            us.finish_body(&writer, session.req_body.trailers.as_ref(), wto).await
        } else {
            us.flush(wto).await
        };
        sent.map_err(|e| stale(e, false))?;

        let method = session.req.method.clone();
        let mut resp: Option<Streaming> = None;
        let mut pump_failed = false;
        let mut sent_continue = false;
        loop {
            tokio::select! {
                biased;
                ev = next_upstream(us, resp.as_mut().map(|s| &mut s.reader), limits, rto) => {
                    let ev = ev.map_err(|e| stale(e, heard))?;
                    heard = true;
                    match ev {
                        UpEvent::Head(h) => {
                            if session.summary.time_to_first_byte.is_none() {
                                session.summary.time_to_first_byte = Some(session.start.elapsed());
                            }
                            let status = h.status.as_u16();
                            let tunnel = (status == 101 && upgrade) || (method == Method::CONNECT && h.status.is_success());
                            if status == 101 && !upgrade {
                                return Err(Error::upstream(ErrorKind::InvalidHttp(502), "reading the response head")
                                    .with_cause("101 to a request that did not ask to upgrade"));
                            }
                            if tunnel {
                                return self.tunnel(session, ds, us, h, ctx).await;
                            }
                            if h.status.is_informational() {
                                sent_continue |= status == 100;
                                self.forward_interim(session, ds, h).await?;
                                continue;
                            }
                            let framing = response_framing(&method, &h).map_err(|e| {
                                Error::upstream(ErrorKind::InvalidHttp(502), "reading the response head").with_cause(e.reason)
                            })?;
                            if !req_done && expects_continue(&session.req) && !sent_continue && session.req_body.bytes == 0 {
                                // The client still waits for 100 and will never send its body now.
                                session.keepalive = false;
                            }
                            let streaming = self.send_response_head(session, ds, h, framing, ctx, shutdown).await?;
                            resp = Some(streaming);
                        }
                        UpEvent::Data(d) => {
                            let s = resp.as_mut().expect("body follows a head");
                            self.forward_response_body(session, ds, &mut s.writer, Some(d), false, ctx).await?;
                        }
                        UpEvent::End => {
                            let mut s = resp.take().expect("body follows a head");
                            let trailers = s.reader.trailers.take();
                            self.forward_response_body(session, ds, &mut s.writer, None, true, ctx).await?;
                            ds.finish_body(&s.writer, trailers.as_ref(), ds_wto).await?;
                            return Ok(Outcome {
                                upstream_reusable: req_done && !pump_failed && s.upstream_keepalive,
                                downstream_reusable: s.writer != BodyWriter::UntilClose,
                            });
                        }
                    }
                }
                r = ds.read_body(&mut session.req_body, body_idle), if !req_done && !pump_failed => {
                    let data = r?;
                    let mut sent = Ok(());
                    if let Some(d) = data {
                        let mut body = Some(d);
                        self.hooks.request_body_filter(session, &mut body, false, ctx).await?;
                        sent = self.send_request_body(session, us, &mut writer, body, wto).await;
                    }
                    // The end of the body is handled in the same turn as its last bytes, so the
                    // end-of-stream filter call always precedes the response phases.
                    if session.req_body.is_done() && sent.is_ok() {
                        req_done = true;
                        let mut tail = None;
                        self.hooks.request_body_filter(session, &mut tail, true, ctx).await?;
                        sent = self.send_request_body(session, us, &mut writer, tail, wto).await;
                        if sent.is_ok() {
                            sent = us.finish_body(&writer, session.req_body.trailers.as_ref(), wto).await;
                        }
                    }
                    if let Err(e) = sent {
                        if resp.is_none() && !heard {
                            return Err(stale(e, heard));
                        }
                        // The upstream already answered and stopped reading: finish its response.
                        pump_failed = true;
                    }
                }
            }
        }
    }

    /// Sends a piece of (filtered) request body upstream, keeping a copy for a retry.
    async fn send_request_body(
        &self,
        session: &mut Session,
        us: &mut H1Conn,
        writer: &mut BodyWriter,
        body: Option<Bytes>,
        wto: Option<std::time::Duration>,
    ) -> Result<()> {
        match body {
            Some(d) if !d.is_empty() => {
                keep_for_replay(&mut session.replay, &d, self.options.retry_buffer_limit);
                us.write_body(writer, d, wto).await
            }
            _ => Ok(()),
        }
    }

    /// Runs the response phases on a final head and sends it downstream.
    async fn send_response_head(
        &self,
        session: &mut Session,
        ds: &mut H1Conn,
        mut h: ResponseHead,
        framing: BodyFraming,
        ctx: &mut H::CTX,
        shutdown: &ShutdownWatch,
    ) -> Result<Streaming> {
        let upstream_keepalive = framing != BodyFraming::UntilClose && response_keep_alive(&h);
        strip_hop_by_hop(&mut h.headers, false);
        self.hooks.upstream_response_filter(session, &mut h, ctx).await?;
        self.hooks.response_filter(session, &mut h, ctx).await?;

        let no_body = session.req.method == Method::HEAD
            || h.status == StatusCode::NO_CONTENT
            || h.status == StatusCode::NOT_MODIFIED;
        let writer = if no_body {
            BodyWriter::Empty
        } else if let (Some(n), BodyFraming::Length(_) | BodyFraming::Empty) =
            (content_length(&h.headers), framing)
        {
            h.headers.remove(TRANSFER_ENCODING);
            BodyWriter::Length(n)
        } else if session.req.version == Version::HTTP_11 {
            h.headers.remove(CONTENT_LENGTH);
            h.headers.insert(TRANSFER_ENCODING, HeaderValue::from_static("chunked"));
            BodyWriter::Chunked
        } else {
            h.headers.remove(CONTENT_LENGTH);
            session.keepalive = false;
            BodyWriter::UntilClose
        };
        if shutdown.is_shutting_down() {
            session.keepalive = false;
        }
        set_connection_header(&mut h, session);
        session.summary.status = h.status.as_u16();
        session.head_sent = true;
        ds.queue(|b| encode_response_head(&h, b));
        session.response = Some(h);
        let reader = BodyReader::new(framing, &self.server.limits);
        if no_body {
            // Nothing to read even if the upstream announced a length (HEAD, 204, 304).
            return Ok(Streaming {
                reader: BodyReader::new(BodyFraming::Empty, &self.server.limits),
                writer,
                upstream_keepalive,
            });
        }
        Ok(Streaming { reader, writer, upstream_keepalive })
    }

    /// Passes body through the two response body filters and writes what they leave downstream.
    async fn forward_response_body(
        &self,
        session: &mut Session,
        ds: &mut H1Conn,
        writer: &mut BodyWriter,
        data: Option<Bytes>,
        end: bool,
        ctx: &mut H::CTX,
    ) -> Result<()> {
        let mut body = data;
        self.hooks.upstream_response_body_filter(session, &mut body, end, ctx).await?;
        self.hooks.response_body_filter(session, &mut body, end, ctx).await?;
        match body {
            Some(d) if !d.is_empty() => {
                session.summary.bytes_out += d.len() as u64;
                ds.write_body(writer, d, Some(self.server.write_timeout)).await
            }
            _ => Ok(()),
        }
    }

    /// Forwards a 1xx (100 Continue, 103 Early Hints) to an HTTP/1.1 client; 1.0 clients never
    /// see interim responses (RFC 9110 §15.2).
    async fn forward_interim(&self, session: &Session, ds: &mut H1Conn, mut h: ResponseHead) -> Result<()> {
        if session.req.version != Version::HTTP_11 {
            return Ok(());
        }
        strip_hop_by_hop(&mut h.headers, false);
        ds.queue(|b| encode_response_head(&h, b));
        ds.flush(Some(self.server.write_timeout)).await
    }

    /// The upstream agreed to switch protocols: send its head down, then copy bytes both ways
    /// until either side closes. Neither connection is reused afterwards.
    async fn tunnel(
        &self,
        session: &mut Session,
        ds: &mut H1Conn,
        us: &mut H1Conn,
        mut h: ResponseHead,
        ctx: &mut H::CTX,
    ) -> Result<Outcome> {
        let switching = h.status == StatusCode::SWITCHING_PROTOCOLS;
        strip_hop_by_hop(&mut h.headers, switching);
        if switching {
            h.headers.insert(CONNECTION, HeaderValue::from_static("upgrade"));
        }
        self.hooks.upstream_response_filter(session, &mut h, ctx).await?;
        self.hooks.response_filter(session, &mut h, ctx).await?;
        session.summary.status = h.status.as_u16();
        session.head_sent = true;
        ds.queue(|b| encode_response_head(&h, b));
        session.response = Some(h);
        ds.flush(Some(self.server.write_timeout)).await?;
        let to_up = ds.rbuf.split();
        let to_down = us.rbuf.split();
        if !to_up.is_empty() {
            us.io
                .write_all(&to_up)
                .await
                .map_err(|e| Error::from_io(&e, ErrorSource::Upstream, false, "tunnel"))?;
        }
        if !to_down.is_empty() {
            ds.io
                .write_all(&to_down)
                .await
                .map_err(|e| Error::from_io(&e, ErrorSource::Downstream, false, "tunnel"))?;
        }
        // Either side going away ends a tunnel; that is its normal end, not an error.
        if let Ok((up, down)) = tokio::io::copy_bidirectional(&mut ds.io, &mut us.io).await {
            session.summary.bytes_in += up + to_up.len() as u64;
            session.summary.bytes_out += down + to_down.len() as u64;
        }
        Ok(Outcome { upstream_reusable: false, downstream_reusable: false })
    }
}
