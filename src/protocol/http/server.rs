//! The server side of one HTTP exchange (Pingora's `ServerSession`), over HTTP/1.x or HTTP/2
//! behind one interface: it owns the client connection (HTTP/1) or stream (HTTP/2), the request
//! body's framing and state, whether the connection stays open, and whether the response head
//! went out. The proxy runs its phases over this and never asks which protocol it is, except for
//! what only HTTP/1 has (tunnels, draining an unread body).

use std::future::poll_fn;
use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use http::header::{CONNECTION, CONTENT_LENGTH, TRANSFER_ENCODING};
use http::{HeaderMap, HeaderValue, Version};

use super::length::{declared_length, set_content_length};
use super::{BodyFraming, HeadError, Headers, RequestHead, ResponseHead};
use crate::error::{Error, ErrorKind, ErrorSource, Result};
use crate::protocol::h1::conn::{BodyReader, BodyWriter, H1Conn};
use crate::protocol::h1::encode::{encode_response_head, strip_hop_by_hop};
use crate::protocol::h1::framing::{canonical_request_framing, request_keep_alive};
use crate::protocol::h1::Limits;
use crate::protocol::h2::server::{encode_head, encode_trailers, StreamError, StreamHandle};
use crate::protocol::stream::SocketAddr;
use crate::tls::TlsFacts;

/// What is known about the response body when its head goes out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BodyHint {
    /// No body may follow (HEAD, 204, 304); a Content-Length in the head is kept as it is.
    None,
    /// Exactly this many bytes follow.
    Length(u64),
    /// Unknown length.
    Unknown,
    /// A tunnel follows (101, or 2xx to CONNECT; HTTP/1 only): the head goes as the caller left
    /// it, and the connection is the tunnel's afterwards.
    Tunnel,
}

/// An HTTP/1.x client connection serving one request.
pub(crate) struct H1Server {
    pub conn: H1Conn,
    pub body: BodyReader,
    writer: BodyWriter,
    write_timeout: Duration,
}

/// One HTTP/2 stream.
pub(crate) struct H2Server {
    stream: StreamHandle,
    body_done: bool,
    body_bytes: u64,
    trailers: Option<HeaderMap>,
    /// The final head, encoded but not yet sent: it goes out with the first piece of body, with
    /// the trailers, or alone with END_STREAM when the body turns out empty. A head block that
    /// ends the stream upstream (a gRPC Trailers-Only response carrying `grpc-status`) must end it
    /// here too: HEADERS followed by an empty DATA frame with END_STREAM is a different message to
    /// gRPC clients, which then report `UNKNOWN` instead of the status. The exchange calls
    /// [`ServerSession::commit_head`] before it waits for the upstream, so a head is never delayed.
    head: Option<BytesMut>,
    /// The final head went out without ending the stream: body may follow.
    open: bool,
    /// The TLS facts of the stream's connection.
    tls: Option<Arc<TlsFacts>>,
    /// How long a piece of body may wait for the client's window: a client that stops granting
    /// window must not hold the stream (and its upstream) forever.
    write_timeout: Duration,
    /// Response body bytes still due under a Content-Length, while the pieces add up to it.
    due: Option<u64>,
    /// The piece that completed the Content-Length, held back so that `finish` sends it with
    /// END_STREAM (or before the trailers) instead of ending the stream with an empty DATA frame.
    last: Option<Bytes>,
}

impl H2Server {
    /// Sends the held-back head, if any; whether body may follow.
    fn open(&mut self) -> Result<()> {
        if let Some(head) = self.head.take() {
            self.stream
                .send_block(&head, false, false)
                .map_err(|e| h2_err(e, false, "sending the response head"))?;
            self.open = true;
        }
        if !self.open {
            return Err(Error::downstream(ErrorKind::WriteError, "sending a body").with_cause("stream ended"));
        }
        Ok(())
    }

    async fn send(&mut self, data: Bytes, end: bool) -> Result<()> {
        match tokio::time::timeout(self.write_timeout, self.stream.send_data(data, end)).await {
            Ok(r) => r.map_err(|e| h2_err(e, false, "sending a body")),
            Err(_) => Err(Error::downstream(ErrorKind::WriteTimeout, "sending a body")),
        }
    }
}

// The HTTP/1 side stays inline: it is the common one, and boxing it would cost an allocation per
// connection's request for nothing.
#[allow(clippy::large_enum_variant)]
enum Side {
    H1(H1Server),
    /// Boxed: the stream's state is twice a connection's, and the session is moved and held
    /// inside every request's future.
    H2(Box<H2Server>),
}

impl std::fmt::Debug for Side {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Side::H1(_) => "HTTP/1",
            Side::H2(_) => "HTTP/2",
        })
    }
}

/// The downstream side of a request: the proxy serving a client.
#[derive(Debug)]
pub(crate) struct ServerSession {
    side: Side,
    /// The connection carries another request after this one (HTTP/1; always true for a stream).
    keepalive: bool,
    /// The final response head went out: no retry, no error page after this.
    head_sent: bool,
    /// The client's address and ours.
    addrs: (Option<SocketAddr>, Option<SocketAddr>),
}

fn h2_err(e: StreamError, reading: bool, ctx: &'static str) -> Box<Error> {
    let kind = match e {
        StreamError::Reset(_) | StreamError::Closed => ErrorKind::ConnectionClosed,
        StreamError::LocalReset(_) if reading => ErrorKind::ReadError,
        StreamError::LocalReset(_) => ErrorKind::WriteError,
    };
    Error::new(kind, ErrorSource::Downstream, ctx).with_cause(e)
}

/// A response without a body keeps its Content-Length (the length a GET would get), as one
/// canonical value when it holds a valid one (`03, 3` is 3).
fn canonical_length_field(headers: &mut Headers) {
    if let Some(n) = declared_length(headers) {
        set_content_length(headers, n);
    }
}

impl ServerSession {
    /// A request about to be read from `conn`.
    pub(crate) fn h1(mut conn: H1Conn, write_timeout: Duration) -> Self {
        let addrs = conn.addrs();
        let body = BodyReader::new(BodyFraming::Empty, &Limits::default());
        let side = Side::H1(H1Server { conn, body, writer: BodyWriter::Empty, write_timeout });
        ServerSession { side, keepalive: false, head_sent: false, addrs }
    }

    /// A stream whose request head has arrived.
    pub(crate) fn h2(
        stream: StreamHandle,
        addrs: (Option<SocketAddr>, Option<SocketAddr>),
        tls: Option<Arc<TlsFacts>>,
        write_timeout: Duration,
    ) -> Self {
        let body_done = stream.is_end_stream();
        let side = Side::H2(Box::new(H2Server {
            stream,
            body_done,
            body_bytes: 0,
            trailers: None,
            head: None,
            open: false,
            due: None,
            last: None,
            tls,
            write_timeout,
        }));
        ServerSession { side, keepalive: true, head_sent: false, addrs }
    }

    /// The client's and our address.
    pub(crate) fn addrs(&self) -> &(Option<SocketAddr>, Option<SocketAddr>) {
        &self.addrs
    }

    /// The TLS facts of the client's connection: the connection's own on HTTP/1, the stream's
    /// copy on HTTP/2; neither adds to the session every request moves around.
    pub(crate) fn tls(&self) -> Option<&TlsFacts> {
        match &self.side {
            Side::H1(d) => d.conn.tls_facts(),
            Side::H2(d) => d.tls.as_deref(),
        }
    }

    /// A shared handle on the same facts, for a record that outlives the session (the access log).
    pub(crate) fn tls_shared(&self) -> Option<Arc<TlsFacts>> {
        match &self.side {
            Side::H1(d) => d.conn.tls_facts_shared(),
            Side::H2(d) => d.tls.clone(),
        }
    }

    /// The PROXY header the connection began with (HTTP/1; an HTTP/2 stream has only the
    /// addresses it carried, in [`Self::addrs`]).
    pub(crate) fn proxy_header(&self) -> Option<&crate::protocol::proxy_protocol::ProxyHeader> {
        match &self.side {
            Side::H1(h) => h.conn.io.proxy_header().map(|h| &**h),
            Side::H2(_) => None,
        }
    }

    /// The request body's framing, with its Content-Length made canonical (`03` and `3`, or `5, 5`,
    /// go on as one value): from the fields on HTTP/1 (smuggling vectors refused), from the
    /// stream on HTTP/2 (the connection checks the length against the DATA frames). Sets up the body
    /// reader and whether the connection may stay open.
    pub(crate) fn request_framing(
        &mut self,
        head: &mut RequestHead,
        limits: &Limits,
    ) -> std::result::Result<BodyFraming, HeadError> {
        match &mut self.side {
            Side::H1(d) => {
                let framing = canonical_request_framing(head)?;
                d.body = BodyReader::new(framing, limits);
                self.keepalive = request_keep_alive(head);
                Ok(framing)
            }
            Side::H2(d) => {
                let declared = declared_length(&head.headers);
                if let Some(n) = declared {
                    set_content_length(&mut head.headers, n);
                }
                Ok(match declared {
                    _ if d.stream.is_end_stream() => BodyFraming::Empty,
                    Some(n) => BodyFraming::Length(n),
                    None => BodyFraming::Chunked,
                })
            }
        }
    }

    /// Refuses a request before it became a session with an error page (no body for HEAD), sent
    /// like any response: an HTTP/1 connection is closed after it (it may be out of sync), a
    /// stream ends.
    pub(crate) async fn refuse(mut self, page: (ResponseHead, Bytes), head_request: bool) {
        let (mut head, body) = page;
        self.keepalive = false;
        // Like every local answer to HEAD: neither a body nor a length for one.
        let hint = if head_request { BodyHint::None } else { BodyHint::Length(body.len() as u64) };
        if self.send_head(Version::HTTP_11, &mut head, hint).await.is_ok() {
            if !head_request {
                let _ = self.write_body(body).await;
            }
            let _ = self.finish(None).await;
        }
        if let Some(mut conn) = self.into_h1() {
            conn.shutdown().await;
        }
    }

    /// Whether the connection is meant to carry another request after this one.
    pub(crate) fn keepalive(&self) -> bool {
        self.keepalive
    }

    /// The connection closes after this response (announced in its head if it has not gone yet).
    pub(crate) fn set_close(&mut self) {
        self.keepalive = false;
    }

    /// Whether the final response head went out.
    pub(crate) fn head_sent(&self) -> bool {
        self.head_sent
    }

    /// The HTTP/1 connection, for the next request or to close it.
    pub(crate) fn into_h1(self) -> Option<H1Conn> {
        match self.side {
            Side::H1(d) => Some(d.conn),
            Side::H2(_) => None,
        }
    }

    /// After the response: an HTTP/1 connection carries another request only if this request's
    /// body was read to its end; a small remainder (up to `limit` bytes, within `within`) is read
    /// and dropped rather than closing. Whether the connection stays open.
    pub(crate) async fn settle(&mut self, limit: u64, within: Duration) -> bool {
        if !self.keepalive || !self.reusable() {
            return false;
        }
        let Side::H1(h1) = &mut self.side else { return true };
        if h1.body.is_done() {
            return true;
        }
        h1.conn.drain(&mut h1.body, limit, within).await
    }

    /// Whether the request body has been read to its end.
    pub(crate) fn body_done(&self) -> bool {
        match &self.side {
            Side::H1(d) => d.body.is_done(),
            Side::H2(d) => d.body_done,
        }
    }

    /// Request body bytes read so far.
    pub(crate) fn body_bytes(&self) -> u64 {
        match &self.side {
            Side::H1(d) => d.body.bytes,
            Side::H2(d) => d.body_bytes,
        }
    }

    /// Trailers that followed the request body.
    pub(crate) fn trailers(&self) -> Option<&HeaderMap> {
        match &self.side {
            Side::H1(d) => d.body.trailers.as_ref(),
            Side::H2(d) => d.trailers.as_ref(),
        }
    }

    /// The HTTP/1 connection, for what only exists there (tunnels, draining).
    pub(crate) fn as_h1(&mut self) -> Option<&mut H1Server> {
        match &mut self.side {
            Side::H1(d) => Some(d),
            Side::H2(_) => None,
        }
    }

    /// The next piece of request body (`None` at its end) when `read` is set; in any case an
    /// error as soon as an HTTP/2 client resets the stream, so the upstream request is dropped with
    /// it. (An HTTP/1 client that goes away shows up as an I/O error on the next read or write.)
    pub(crate) async fn next_event(&mut self, read: bool, idle: Option<Duration>) -> Result<Option<Bytes>> {
        match &mut self.side {
            Side::H1(d) if read => d.conn.read_body(&mut d.body, idle).await,
            Side::H1(_) => std::future::pending().await,
            Side::H2(d) => {
                let H2Server { stream, body_done, body_bytes, trailers, .. } = &mut **d;
                // Nothing to read: only a reset can end the wait.
                if !read || *body_done {
                    let e = poll_fn(|cx| stream.poll_reset(cx)).await;
                    return Err(h2_err(e, true, "proxying"));
                }
                // One poll serves both: a reset shows up as the body's error.
                let piece = async {
                    match stream.data().await {
                        Some(Ok(data)) => Ok(Some(data)),
                        Some(Err(e)) => Err(h2_err(e, true, "reading a body")),
                        None => {
                            *trailers = stream.take_trailers();
                            Ok(None)
                        }
                    }
                };
                let r = match idle {
                    Some(t) => tokio::time::timeout(t, piece)
                        .await
                        .map_err(|_| Error::downstream(ErrorKind::ReadTimeout, "reading a body"))?,
                    None => piece.await,
                }?;
                match &r {
                    Some(data) => *body_bytes += data.len() as u64,
                    None => *body_done = true,
                }
                Ok(r)
            }
        }
    }

    /// Forwards a 1xx. HTTP/1.0 clients never see one (RFC 9110 §15.2).
    pub(crate) async fn send_interim(&mut self, req_version: Version, mut head: ResponseHead) -> Result<()> {
        match &mut self.side {
            Side::H1(d) => {
                if req_version != Version::HTTP_11 {
                    return Ok(());
                }
                strip_hop_by_hop(&mut head.headers, false);
                d.conn.queue(|b| encode_response_head(&head, b));
                d.conn.flush(Some(d.write_timeout)).await
            }
            Side::H2(d) => {
                // Interim responses are advisory; a client that cannot take one loses nothing.
                let _ = d.stream.send_block(&encode_head(head.status, &head.headers), false, true);
                Ok(())
            }
        }
    }

    /// Sends the final head. For HTTP/1 it picks the framing (Content-Length, chunked for 1.1,
    /// close-delimited for 1.0) and the Connection field; for HTTP/2 it strips connection-specific
    /// fields, editing `head` into the head as it goes out. `req_version` is the request's.
    pub(crate) async fn send_head(
        &mut self,
        req_version: Version,
        head: &mut ResponseHead,
        hint: BodyHint,
    ) -> Result<()> {
        self.head_sent = true;
        match &mut self.side {
            Side::H1(d) => {
                d.writer = match hint {
                    BodyHint::Tunnel => {
                        self.keepalive = false;
                        d.conn.queue(|b| encode_response_head(head, b));
                        d.conn.flush(Some(d.write_timeout)).await?;
                        d.writer = BodyWriter::UntilClose;
                        return Ok(());
                    }
                    BodyHint::None => {
                        canonical_length_field(&mut head.headers);
                        BodyWriter::Empty
                    }
                    BodyHint::Length(n) => {
                        head.headers.remove(TRANSFER_ENCODING);
                        set_content_length(&mut head.headers, n);
                        BodyWriter::Length(n)
                    }
                    BodyHint::Unknown if req_version == Version::HTTP_11 => {
                        head.headers.remove(CONTENT_LENGTH);
                        head.headers.insert(TRANSFER_ENCODING, HeaderValue::from_static("chunked"));
                        BodyWriter::Chunked
                    }
                    BodyHint::Unknown => {
                        head.headers.remove(CONTENT_LENGTH);
                        self.keepalive = false;
                        BodyWriter::UntilClose
                    }
                };
                if !self.keepalive {
                    head.headers.insert(CONNECTION, HeaderValue::from_static("close"));
                } else if req_version == Version::HTTP_10 {
                    // A persistent HTTP/1.0 client would otherwise assume close.
                    head.headers.insert(CONNECTION, HeaderValue::from_static("keep-alive"));
                }
                d.conn.queue(|b| encode_response_head(head, b));
                if d.writer == BodyWriter::Empty {
                    d.conn.flush(Some(d.write_timeout)).await?;
                }
            }
            Side::H2(d) => {
                match hint {
                    BodyHint::Tunnel => {
                        return Err(Error::upstream(ErrorKind::InvalidHttp(502), "switching protocols")
                            .with_cause("tunnels need HTTP/1.1 on both sides"));
                    }
                    BodyHint::Length(n) => {
                        set_content_length(&mut head.headers, n);
                    }
                    BodyHint::Unknown => {
                        head.headers.remove(CONTENT_LENGTH);
                    }
                    BodyHint::None => canonical_length_field(&mut head.headers),
                }
                let end = matches!(hint, BodyHint::None | BodyHint::Length(0));
                let block = encode_head(head.status, &head.headers);
                if end {
                    d.stream
                        .send_block(&block, true, false)
                        .map_err(|e| h2_err(e, false, "sending the response head"))?;
                } else {
                    d.head = Some(block);
                }
                d.due = match hint {
                    BodyHint::Length(n) if !end => Some(n),
                    _ => None,
                };
            }
        }
        Ok(())
    }

    /// Sends a piece of response body.
    pub(crate) async fn write_body(&mut self, data: Bytes) -> Result<()> {
        match &mut self.side {
            Side::H1(d) => d.conn.write_body(&mut d.writer, data, Some(d.write_timeout)).await,
            Side::H2(d) => {
                if !d.open && d.head.is_none() {
                    return Ok(()); // the head ended the stream: no body may follow
                }
                if d.due == Some(data.len() as u64) && d.last.is_none() {
                    d.due = Some(0);
                    d.last = Some(data);
                    return Ok(());
                }
                // Counting down; a piece past the Content-Length (a body filter changed the body)
                // ends the hold-back: plain pieces from there on.
                d.due = d.due.and_then(|n| n.checked_sub(data.len() as u64)).filter(|n| *n > 0);
                let held = d.last.take();
                d.open()?;
                if let Some(held) = held {
                    d.send(held, false).await?;
                }
                d.send(data, false).await
            }
        }
    }

    /// Sends a final head still held back (HTTP/2), before the exchange waits for more of the
    /// upstream's response: a streaming client (gRPC server streaming, a bidirectional call) needs
    /// the head before the first message, which may be a long time coming.
    pub(crate) fn commit_head(&mut self) -> Result<()> {
        match &mut self.side {
            Side::H2(d) if d.head.is_some() => d.open().map(|_| ()),
            _ => Ok(()),
        }
    }

    /// Ends the response body, with trailers where the framing can carry them.
    pub(crate) async fn finish(&mut self, trailers: Option<&HeaderMap>) -> Result<()> {
        match &mut self.side {
            Side::H1(d) => d.conn.finish_body(&d.writer, trailers, Some(d.write_timeout)).await,
            Side::H2(d) => {
                let trailers = trailers.filter(|t| !t.is_empty());
                let err = |e| h2_err(e, false, "ending the response");
                if d.last.is_none() {
                    if let Some(head) = d.head.take() {
                        // Nothing followed the head: it ends the stream itself, or goes right
                        // before the trailers, never with an empty DATA frame.
                        d.stream.send_block(&head, trailers.is_none(), false).map_err(err)?;
                        if let Some(t) = trailers {
                            d.stream.send_block(&encode_trailers(t), true, false).map_err(err)?;
                        }
                        return Ok(());
                    }
                }
                if d.head.is_some() {
                    d.open()?; // a held-back piece follows the head
                }
                if !d.open {
                    return Ok(());
                }
                d.open = false;
                if let Some(held) = d.last.take() {
                    d.send(held, trailers.is_none()).await?;
                } else if trailers.is_none() {
                    d.send(Bytes::new(), true).await?;
                }
                if let Some(t) = trailers {
                    d.stream.send_block(&encode_trailers(t), true, false).map_err(err)?;
                }
                Ok(())
            }
        }
    }

    /// Whether the connection may carry another request after this response (HTTP/1).
    pub(crate) fn reusable(&self) -> bool {
        match &self.side {
            Side::H1(d) => d.writer != BodyWriter::UntilClose,
            Side::H2(_) => true,
        }
    }
}
