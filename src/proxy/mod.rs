//! The HTTP proxy (Pingora's `pingora-proxy`): an [`HttpServerApp`] that runs every request through
//! the [`ProxyHttp`] phases and forwards it to the peer they choose.

mod catch_unwind;
mod downstream;
mod exchange;
mod h2;
mod hooks;
mod pipeline;
mod session;
mod upstream_session;

use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use http::{HeaderValue, Method, StatusCode};
use tokio::time::Instant;

pub use hooks::ProxyHttp;
pub use session::{Session, Summary};

use downstream::Downstream;

use crate::app::{HttpServerApp, HttpServerOptions, UnderscoreFields};
use crate::connector::Connector;
use crate::error::{Error, ErrorKind, ErrorSource};
use crate::protocol::h1::conn::{BodyReader, H1Conn};
use crate::protocol::h1::encode::encode_response_head;
use crate::protocol::h1::framing::request_keep_alive;
use crate::protocol::h1::parse::strip_underscore_fields;
use crate::protocol::h1::upgrade::restrict_upgrade;
use crate::protocol::h1::{canonical_request_framing, parse_request, H1Error, ResponseHead};
use crate::protocol::h2::H2Options;
use crate::protocol::http::Headers;
use crate::protocol::stream::SocketAddr;
use crate::server::ShutdownWatch;

/// Proxy behaviour beyond the downstream HTTP settings.
#[derive(Debug, Clone)]
pub struct ProxyOptions {
    /// Most attempts beyond the first for one request.
    pub max_retries: usize,
    /// Request body bytes kept to replay on a retry; a longer body is not retried once sent.
    pub retry_buffer_limit: usize,
}

impl Default for ProxyOptions {
    fn default() -> Self {
        ProxyOptions { max_retries: 3, retry_buffer_limit: 64 * 1024 }
    }
}

/// A reverse proxy app driven by the hooks `H`.
#[derive(Debug)]
pub struct HttpProxy<H> {
    hooks: H,
    connector: Connector,
    server: HttpServerOptions,
    h2: H2Options,
    options: ProxyOptions,
}

impl<H: ProxyHttp> HttpProxy<H> {
    /// A proxy with default options and its own connection pool.
    pub fn new(hooks: H) -> Self {
        HttpProxy {
            hooks,
            connector: Connector::default(),
            server: HttpServerOptions::default(),
            h2: H2Options::default(),
            options: ProxyOptions::default(),
        }
    }

    /// The hooks.
    pub fn hooks(&self) -> &H {
        &self.hooks
    }

    /// The connector (and its pool statistics).
    pub fn connector(&self) -> &Connector {
        &self.connector
    }

    /// Uses `connector` (for example one shared with another service).
    pub fn set_connector(&mut self, connector: Connector) {
        self.connector = connector;
    }

    /// Downstream HTTP settings.
    pub fn server_options_mut(&mut self) -> &mut HttpServerOptions {
        &mut self.server
    }

    /// Downstream HTTP/2 settings.
    pub fn h2_options_mut(&mut self) -> &mut H2Options {
        &mut self.h2
    }

    /// Proxy settings.
    pub fn options_mut(&mut self) -> &mut ProxyOptions {
        &mut self.options
    }
}

impl<H: ProxyHttp> HttpServerApp for HttpProxy<H> {
    fn server_options(&self) -> &HttpServerOptions {
        &self.server
    }

    fn h2_options(&self) -> &H2Options {
        &self.h2
    }

    async fn process_h2_stream(
        self: &Arc<Self>,
        req: http::Request<::h2::RecvStream>,
        respond: ::h2::server::SendResponse<Bytes>,
        addrs: (Option<SocketAddr>, Option<SocketAddr>),
        shutdown: &ShutdownWatch,
    ) {
        self.serve_h2_stream(req, respond, addrs, shutdown).await
    }

    async fn process_request(self: &Arc<Self>, mut conn: H1Conn, shutdown: &ShutdownWatch) -> Option<H1Conn> {
        let opts = &self.server;
        let deadline = Some(Instant::now() + opts.header_timeout);
        let mut head =
            match conn.read_head(&opts.limits, deadline, parse_request, "reading the request head").await {
                Ok(Some(h)) => h,
                Ok(None) => return None,
                Err(e) => {
                    // Nothing of a bad head is forwarded, and the connection is out of sync: answer, close.
                    if e.kind != ErrorKind::ConnectionClosed {
                        send_error(&mut conn, e.status(), false, opts.write_timeout).await;
                    }
                    return None;
                }
            };
        if let Err(e) = underscore_fields(opts.underscore_fields, &mut head.headers) {
            send_error(&mut conn, e.status, head.method == Method::HEAD, opts.write_timeout).await;
            return None;
        }
        let framing = match canonical_request_framing(&mut head) {
            Ok(f) => f,
            Err(e) => {
                send_error(&mut conn, e.status, head.method == Method::HEAD, opts.write_timeout).await;
                return None;
            }
        };
        if head.method == Method::CONNECT && !opts.allow_connect {
            send_error(&mut conn, 405, false, opts.write_timeout).await;
            return None;
        }
        let keepalive = request_keep_alive(&head) && !shutdown.is_shutting_down();
        // Cut on arrival, so every hook sees the offer as it will be forwarded and
        // `Session::is_upgrade` tells whether a tunnel may follow.
        let may_upgrade = head.version == http::Version::HTTP_11;
        restrict_upgrade(&mut head.headers, may_upgrade, &opts.upgrades);
        let body = BodyReader::new(framing, &opts.limits);
        let (client, local) = conn.addrs();
        let mut session = Session::new(head, framing, client, local, keepalive);
        let mut ds = Downstream::h1(&mut conn, body, opts.write_timeout);
        let reuse = self.handle(&mut session, &mut ds, shutdown).await;
        drop(ds);
        if reuse && !shutdown.is_shutting_down() {
            Some(conn)
        } else {
            conn.shutdown().await;
            None
        }
    }
}

/// Applies the service's [`UnderscoreFields`] policy to a request head before any hook sees it.
pub(crate) fn underscore_fields(policy: UnderscoreFields, headers: &mut Headers) -> Result<(), H1Error> {
    match policy {
        UnderscoreFields::Forward => Ok(()),
        UnderscoreFields::Drop => strip_underscore_fields(headers, true),
        UnderscoreFields::Refuse => strip_underscore_fields(headers, false),
    }
}

/// Writes an error page (no body for HEAD) that closes the connection.
async fn send_error(conn: &mut H1Conn, status: u16, head_request: bool, timeout: Duration) {
    let (mut head, body) = error_page(StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST));
    // Like every local answer to HEAD (see `send_local`): neither a body nor a length for one.
    let n = if head_request { 0 } else { body.len() };
    if !head_request {
        head.headers.insert(http::header::CONTENT_LENGTH, HeaderValue::from(n));
    }
    head.headers.insert(http::header::CONNECTION, HeaderValue::from_static("close"));
    conn.queue(|b| {
        encode_response_head(&head, b);
        b.extend_from_slice(&body[..n]);
    });
    let _ = conn.flush(Some(timeout)).await;
    conn.shutdown().await;
}

/// An error response the proxy makes itself: a one-line text body naming the status, so a client
/// (or someone with curl) sees which failure it got instead of an empty page. The framing is left
/// to the sender (no body for HEAD).
pub(crate) fn error_page(status: StatusCode) -> (ResponseHead, Bytes) {
    let mut head = ResponseHead::new(status);
    head.headers.insert(http::header::CONTENT_TYPE, HeaderValue::from_static("text/plain; charset=utf-8"));
    let body = format!("{} {}\n", status.as_u16(), status.canonical_reason().unwrap_or("Error"));
    (head, Bytes::from(body))
}

/// Keeps up to `limit` request body bytes for a retry; drops the copy once it grows past that.
fn keep_for_replay(replay: &mut Option<BytesMut>, data: &[u8], limit: usize) {
    if let Some(buf) = replay {
        if buf.len() + data.len() > limit {
            *replay = None;
        } else {
            buf.extend_from_slice(data);
        }
    }
}

fn hook_panic() -> Box<Error> {
    Error::new(ErrorKind::HookPanic, ErrorSource::Internal, "running a hook")
}
