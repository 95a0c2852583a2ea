//! The HTTP proxy (Pingora's `pingora-proxy`): an [`HttpServerApp`] that runs every request through
//! the [`ProxyHttp`] phases and forwards it to the peer they choose.

mod catch_unwind;
mod exchange;
mod hooks;
mod pipeline;
mod session;

use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use http::{HeaderValue, Method, StatusCode};
use tokio::time::Instant;

pub use hooks::ProxyHttp;
pub use session::{Session, Summary};

use crate::app::{HttpServerApp, HttpServerOptions};
use crate::connector::Connector;
use crate::error::{Error, ErrorKind, ErrorSource};
use crate::protocol::h1::conn::{BodyReader, BodyWriter, H1Conn};
use crate::protocol::h1::encode::encode_response_head;
use crate::protocol::h1::framing::request_keep_alive;
use crate::protocol::h1::{parse_request, request_framing, ResponseHead};
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
    options: ProxyOptions,
}

impl<H: ProxyHttp> HttpProxy<H> {
    /// A proxy with default options and its own connection pool.
    pub fn new(hooks: H) -> Self {
        HttpProxy {
            hooks,
            connector: Connector::default(),
            server: HttpServerOptions::default(),
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

    /// Proxy settings.
    pub fn options_mut(&mut self) -> &mut ProxyOptions {
        &mut self.options
    }
}

impl<H: ProxyHttp> HttpServerApp for HttpProxy<H> {
    fn server_options(&self) -> &HttpServerOptions {
        &self.server
    }

    async fn process_request(self: &Arc<Self>, mut conn: H1Conn, shutdown: &ShutdownWatch) -> Option<H1Conn> {
        let opts = &self.server;
        let deadline = Some(Instant::now() + opts.header_timeout);
        let head =
            match conn.read_head(&opts.limits, deadline, parse_request, "reading the request head").await {
                Ok(Some(h)) => h,
                Ok(None) => return None,
                Err(e) => {
                    // Nothing of a bad head is forwarded, and the connection is out of sync: answer, close.
                    if e.kind != ErrorKind::ConnectionClosed {
                        send_error(&mut conn, e.status(), opts.write_timeout).await;
                    }
                    return None;
                }
            };
        let framing = match request_framing(&head) {
            Ok(f) => f,
            Err(e) => {
                send_error(&mut conn, e.status, opts.write_timeout).await;
                return None;
            }
        };
        if head.method == Method::CONNECT && !opts.allow_connect {
            send_error(&mut conn, 405, opts.write_timeout).await;
            return None;
        }
        let keepalive = request_keep_alive(&head) && !shutdown.is_shutting_down();
        let body = BodyReader::new(framing, &opts.limits);
        let (client, local) = conn.addrs();
        let mut session = Session::new(head, framing, body, client, local, keepalive);
        let reuse = self.handle(&mut session, &mut conn, shutdown).await;
        if reuse && !shutdown.is_shutting_down() {
            Some(conn)
        } else {
            conn.shutdown().await;
            None
        }
    }
}

/// Writes a bare error response that closes the connection.
async fn send_error(conn: &mut H1Conn, status: u16, timeout: Duration) {
    let mut head = ResponseHead::new(StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST));
    head.headers.insert(http::header::CONTENT_LENGTH, HeaderValue::from(0));
    head.headers.insert(http::header::CONNECTION, HeaderValue::from_static("close"));
    conn.queue(|b| encode_response_head(&head, b));
    let _ = conn.flush(Some(timeout)).await;
    conn.shutdown().await;
}

/// Sends a complete response held in memory (a local answer or an error page).
async fn send_local(
    conn: &mut H1Conn,
    session: &mut Session,
    mut head: ResponseHead,
    body: Bytes,
    timeout: Duration,
) -> Result<(), Box<Error>> {
    let is_head = session.req.method == Method::HEAD;
    head.headers.insert(http::header::CONTENT_LENGTH, HeaderValue::from(body.len()));
    set_connection_header(&mut head, session);
    session.summary.status = head.status.as_u16();
    session.head_sent = true;
    conn.queue(|b| encode_response_head(&head, b));
    session.response = Some(head);
    if is_head || body.is_empty() {
        return conn.flush(Some(timeout)).await;
    }
    session.summary.bytes_out = body.len() as u64;
    let mut w = BodyWriter::Length(body.len() as u64);
    conn.write_body(&mut w, body, Some(timeout)).await
}

/// `Connection: close` when this is the last response on the connection; `keep-alive` for a
/// persistent HTTP/1.0 client (which would otherwise assume close).
fn set_connection_header(head: &mut ResponseHead, session: &Session) {
    if !session.keepalive {
        head.headers.insert(http::header::CONNECTION, HeaderValue::from_static("close"));
    } else if session.req.version == http::Version::HTTP_10 {
        head.headers.insert(http::header::CONNECTION, HeaderValue::from_static("keep-alive"));
    }
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
