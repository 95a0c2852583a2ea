//! The client side of one attempt at the upstream (Pingora's client `HttpSession`), over HTTP/1.1
//! or HTTP/2 behind one interface: send the head and body, read interim/final heads and the body,
//! and tell whether an HTTP/1 connection can go back to the pool.

use std::borrow::Cow;
use std::future::poll_fn;
use std::time::Duration;

use bytes::Bytes;
use h2::client::{ResponseFuture, SendRequest};
use h2::{RecvStream, SendStream};
use http::header::TRANSFER_ENCODING;
use http::{HeaderMap, HeaderValue, Method};

use super::length::{declared_length, says_length, set_content_length};
use super::{BodyFraming, Known, RequestHead, ResponseHead};
use crate::error::{Error, ErrorKind, ErrorSource, Result};
use crate::protocol::h1::conn::{BodyReader, BodyWriter, H1Conn};
use crate::protocol::h1::encode::encode_request_head;
use crate::protocol::h1::framing::response_keep_alive;
use crate::protocol::h1::{parse_response, response_framing, Limits};
use crate::protocol::h2::body::{recv_data, recv_trailers, send_data};
use crate::protocol::h2::{request_to_h2, response_head};

/// What the upstream said next.
pub(crate) enum UpEvent {
    /// A response head (interim or final).
    Head(ResponseHead),
    /// A piece of the response body.
    Data(Bytes),
    /// The response body ended (trailers via [`ClientSession::take_trailers`]).
    End,
}

/// An HTTP/1.1 connection carrying one request.
pub(crate) struct H1Upstream {
    pub conn: H1Conn,
    writer: BodyWriter,
    reader: Option<BodyReader>,
    framing: Option<BodyFraming>,
    keepalive: bool,
}

/// One HTTP/2 stream on a (shared) upstream connection.
pub(crate) struct H2Upstream {
    sender: SendRequest<Bytes>,
    tls: bool,
    response: Option<ResponseFuture>,
    send: Option<SendStream<Bytes>>,
    recv: Option<RecvStream>,
    trailers: Option<HeaderMap>,
}

enum Side {
    H1(H1Upstream),
    H2(H2Upstream),
}

/// The upstream side of an attempt.
pub(crate) struct ClientSession {
    side: Side,
    /// The connection came from the pool (a failure before any answer may be a stale socket).
    reused: bool,
}

fn h2_err(e: h2::Error, ctx: &'static str) -> Box<Error> {
    // A stream the upstream refused, or one above the last id of its GOAWAY, was never processed:
    // sending it again is safe whatever the method (RFC 9113 §8.7).
    let unprocessed = e.reason() == Some(h2::Reason::REFUSED_STREAM) || (e.is_go_away() && e.is_remote());
    let kind = if e.is_io() || e.is_go_away() || e.is_reset() {
        ErrorKind::ConnectionClosed
    } else {
        ErrorKind::ReadError
    };
    Error::new(kind, ErrorSource::Upstream, ctx).with_cause(e).with_retry(unprocessed)
}

impl ClientSession {
    /// An attempt over an HTTP/1 connection.
    pub(crate) fn h1(conn: H1Conn, reused: bool) -> Self {
        let side = Side::H1(H1Upstream {
            conn,
            writer: BodyWriter::Empty,
            reader: None,
            framing: None,
            keepalive: false,
        });
        ClientSession { side, reused }
    }

    /// An attempt on a new stream of an HTTP/2 connection.
    pub(crate) fn h2(sender: SendRequest<Bytes>, tls: bool, reused: bool) -> Self {
        let side =
            Side::H2(H2Upstream { sender, tls, response: None, send: None, recv: None, trailers: None });
        ClientSession { side, reused }
    }

    /// Whether the connection came from the pool.
    pub(crate) fn reused(&self) -> bool {
        self.reused
    }

    /// Sends the request head. `framing` is the downstream body's; for HTTP/1 the upstream framing
    /// follows the (filtered) head: its Content-Length if it has a valid one, chunked otherwise.
    /// The head is borrowed when the caller had nothing to change (it is then copied only if its
    /// framing fields need rewriting, or for HTTP/2, which takes its fields).
    pub(crate) async fn send_head(
        &mut self,
        mut up: Cow<'_, RequestHead>,
        framing: BodyFraming,
        wto: Option<Duration>,
    ) -> Result<()> {
        match &mut self.side {
            Side::H1(u) => {
                u.writer = if framing == BodyFraming::Empty {
                    BodyWriter::Empty
                } else if let Some(n) = declared_length(&up.headers) {
                    // Hooks may have edited the field: still exactly one canonical value.
                    if up.headers.has_known(Known::TransferEncoding) || !says_length(&up.headers, n) {
                        let h = &mut up.to_mut().headers;
                        h.remove(Known::TransferEncoding);
                        set_content_length(h, n);
                    }
                    BodyWriter::Length(n)
                } else {
                    let h = &mut up.to_mut().headers;
                    h.remove(Known::ContentLength);
                    h.insert(TRANSFER_ENCODING, HeaderValue::from_static("chunked"));
                    BodyWriter::Chunked
                };
                u.conn.queue(|b| encode_request_head(&up, b));
                if framing == BodyFraming::Empty {
                    return Ok(()); // leaves with `finish`, in the same write
                }
                u.conn.flush(wto).await
            }
            Side::H2(u) => {
                let req = request_to_h2(up.into_owned(), u.tls).map_err(|e| {
                    Error::new(
                        ErrorKind::InvalidHttp(e.status),
                        ErrorSource::Downstream,
                        "converting to HTTP/2",
                    )
                    .with_cause(e.reason)
                })?;
                let sender = &mut u.sender;
                poll_fn(|cx| sender.poll_ready(cx)).await.map_err(|e| h2_err(e, "opening a stream"))?;
                let end = framing == BodyFraming::Empty;
                let (resp, send) =
                    u.sender.send_request(req, end).map_err(|e| h2_err(e, "sending the request head"))?;
                u.response = Some(resp);
                u.send = (!end).then_some(send);
                Ok(())
            }
        }
    }

    /// Sends a piece of request body.
    pub(crate) async fn write_body(&mut self, data: Bytes, wto: Option<Duration>) -> Result<()> {
        match &mut self.side {
            Side::H1(u) => u.conn.write_body(&mut u.writer, data, wto).await,
            Side::H2(u) => match u.send.as_mut() {
                Some(s) => send_data(s, data, false).await.map_err(|e| h2_err(e, "sending a body")),
                None => Ok(()),
            },
        }
    }

    /// Ends the request body, with trailers where the framing carries them.
    pub(crate) async fn finish(&mut self, trailers: Option<&HeaderMap>, wto: Option<Duration>) -> Result<()> {
        match &mut self.side {
            Side::H1(u) => u.conn.finish_body(&u.writer, trailers, wto).await,
            Side::H2(u) => {
                let Some(mut s) = u.send.take() else { return Ok(()) };
                let r = match trailers.filter(|t| !t.is_empty()) {
                    Some(t) => s.send_trailers(t.clone()),
                    None => s.send_data(Bytes::new(), true),
                };
                r.map_err(|e| h2_err(e, "ending the request"))
            }
        }
    }

    /// Waits for the next head (while none is final) or piece of body.
    pub(crate) async fn next_event(
        &mut self,
        method: &Method,
        limits: &Limits,
        rto: Option<Duration>,
    ) -> Result<UpEvent> {
        match &mut self.side {
            Side::H1(u) => {
                let Some(reader) = u.reader.as_mut() else {
                    let deadline = rto.map(|t| tokio::time::Instant::now() + t);
                    let head = u
                        .conn
                        .read_head(limits, deadline, parse_response, "reading the response head")
                        .await?;
                    let Some(head) = head else {
                        return Err(Error::upstream(
                            ErrorKind::ConnectionClosed,
                            "reading the response head",
                        )
                        .with_cause("upstream closed the connection before responding"));
                    };
                    if !head.status.is_informational() {
                        let framing = response_framing(method, &head).map_err(|e| {
                            Error::upstream(ErrorKind::InvalidHttp(502), "reading the response head")
                                .with_cause(e.reason)
                        })?;
                        u.keepalive = framing != BodyFraming::UntilClose && response_keep_alive(&head);
                        u.reader = Some(BodyReader::new(framing, limits));
                        u.framing = Some(framing);
                    }
                    return Ok(UpEvent::Head(head));
                };
                Ok(match u.conn.read_body(reader, rto).await? {
                    Some(d) => UpEvent::Data(d),
                    None => UpEvent::End,
                })
            }
            Side::H2(u) => {
                // Polled through `&mut` and cleared only once ready: the exchange drops this future
                // whenever the request side has something to do, and must not lose the response.
                if let Some(resp) = u.response.as_mut() {
                    let r = match rto {
                        Some(t) => tokio::time::timeout(t, resp).await.map_err(|_| {
                            Error::upstream(ErrorKind::ReadTimeout, "reading the response head")
                        })?,
                        None => resp.await,
                    };
                    u.response = None;
                    let (parts, body) = r.map_err(|e| h2_err(e, "reading the response head"))?.into_parts();
                    u.recv = Some(body);
                    return Ok(UpEvent::Head(response_head(parts)));
                }
                let Some(recv) = u.recv.as_mut() else { return Ok(UpEvent::End) };
                let data = match rto {
                    Some(t) => tokio::time::timeout(t, recv_data(recv))
                        .await
                        .map_err(|_| Error::upstream(ErrorKind::ReadTimeout, "reading a body"))?,
                    None => recv_data(recv).await,
                }
                .map_err(|e| h2_err(e, "reading a body"))?;
                match data {
                    Some(d) => Ok(UpEvent::Data(d)),
                    None => {
                        u.trailers = recv_trailers(recv).await.map_err(|e| h2_err(e, "reading trailers"))?;
                        u.recv = None;
                        Ok(UpEvent::End)
                    }
                }
            }
        }
    }

    /// The next piece of response body if it needs no waiting (HTTP/1 bytes that arrived with the
    /// head): `Some(Some(data))`, `Some(None)` at the end, `None` when only waiting can tell.
    pub(crate) fn buffered_body(&mut self) -> Result<Option<Option<Bytes>>> {
        match &mut self.side {
            Side::H1(u) => match u.reader.as_mut() {
                Some(reader) => u.conn.buffered_body(reader),
                None => Ok(None),
            },
            Side::H2(_) => Ok(None),
        }
    }

    /// Trailers received after the response body.
    pub(crate) fn take_trailers(&mut self) -> Option<HeaderMap> {
        match &mut self.side {
            Side::H1(u) => u.reader.as_mut().and_then(|r| r.trailers.take()),
            Side::H2(u) => u.trailers.take(),
        }
    }

    /// The response as framed has no body to read (HEAD, 204, 304, Content-Length: 0).
    pub(crate) fn body_is_empty(&self) -> bool {
        match &self.side {
            Side::H1(u) => u.reader.as_ref().is_some_and(|r| r.is_done()),
            Side::H2(u) => u.recv.as_ref().is_none_or(|r| r.is_end_stream()),
        }
    }

    /// Whether a Content-Length in the response head really frames its body (for HTTP/1 it may
    /// be ignored, e.g. next to Transfer-Encoding; HTTP/2 checks it against the DATA frames).
    pub(crate) fn length_is_framing(&self) -> bool {
        match &self.side {
            Side::H1(u) => matches!(u.framing, Some(BodyFraming::Length(_) | BodyFraming::Empty)),
            Side::H2(_) => true,
        }
    }

    /// After a complete exchange: the HTTP/1 connection if it can carry another request.
    pub(crate) fn into_reusable_h1(self) -> Option<H1Conn> {
        match self.side {
            Side::H1(u) if u.keepalive && u.reader.as_ref().is_some_and(|r| r.is_done()) => Some(u.conn),
            _ => None,
        }
    }

    /// Whether this attempt speaks HTTP/2.
    pub(crate) fn is_h2(&self) -> bool {
        matches!(self.side, Side::H2(_))
    }

    /// The HTTP/1 connection, for a tunnel.
    pub(crate) fn as_h1(&mut self) -> Option<&mut H1Conn> {
        match &mut self.side {
            Side::H1(u) => Some(&mut u.conn),
            Side::H2(_) => None,
        }
    }
}
