//! The HTTP proxy (Pingora's `pingora-proxy`): an [`HttpServerApp`] that runs every request through
//! the [`ProxyHttp`] phases and forwards it to the peer they choose.

mod cache;
mod cache_refresh;
mod catch_unwind;
mod compress;
mod exchange;
mod hooks;
mod observe;
mod pipeline;
pub mod request_id;
mod session;

use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use http::Method;
use tokio::time::Instant;

pub use hooks::{Phases, ProxyHttp};
pub use observe::Observer;
pub use session::{Session, Summary};

use crate::app::{HttpServerApp, HttpServerOptions, UnderscoreFields};
use crate::boxed::in_box;
use crate::cache::HttpCache;
use crate::compression::CompressionSettings;
use crate::connector::Connector;
use crate::error::{Error, ErrorKind, ErrorSource};
use crate::metrics::ServiceMetrics;
use crate::protocol::h1::conn::H1Conn;
use crate::protocol::h1::parse::{parse_request, strip_underscore_fields};
use crate::protocol::h1::upgrade::restrict_upgrade;
use crate::protocol::h2::server::StreamHandle;
use crate::protocol::h2::H2Options;
use crate::protocol::http::server::ServerSession;
use crate::protocol::http::{HeadError, Headers, RequestHead, ResponseHead};
use crate::protocol::stream::SocketAddr;
use crate::server::ShutdownWatch;

/// Proxy behaviour beyond the downstream HTTP settings.
#[derive(Debug, Clone)]
pub struct ProxyOptions {
    /// Most attempts beyond the first for one request.
    pub max_retries: usize,
    /// Request body bytes kept to replay on a retry; a longer body is not retried once sent.
    pub retry_buffer_limit: usize,
    /// Response compression and upstream decompression (off by default).
    pub compression: CompressionSettings,
    /// The HTTP cache (off by default); the same `Arc` in several services shares one cache.
    pub cache: Option<Arc<HttpCache>>,
    /// Metrics, access log, error log and request ids (off by default).
    pub observe: Option<Arc<Observer>>,
}

impl Default for ProxyOptions {
    fn default() -> Self {
        ProxyOptions {
            max_retries: 3,
            retry_buffer_limit: 64 * 1024,
            compression: CompressionSettings::default(),
            cache: None,
            observe: None,
        }
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
    /// The hooks' optional phases, asked once.
    phases: Phases,
}

impl<H: ProxyHttp> HttpProxy<H> {
    /// A proxy with default options and its own connection pool.
    pub fn new(hooks: H) -> Self {
        HttpProxy {
            phases: hooks.phases(),
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

    /// Whether the hooks take part in `phase`.
    fn has(&self, phase: Phases) -> bool {
        self.phases.contains(phase)
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

    fn metrics(&self) -> Option<&Arc<ServiceMetrics>> {
        self.options.observe.as_ref()?.metrics.as_ref()
    }

    async fn process_h2_stream(
        self: &Arc<Self>,
        head: Result<RequestHead, (HeadError, bool)>,
        stream: StreamHandle,
        addrs: (Option<SocketAddr>, Option<SocketAddr>),
        tls: Option<Arc<crate::tls::TlsFacts>>,
        shutdown: &ShutdownWatch,
    ) {
        let ds = ServerSession::h2(stream, addrs, tls, self.server.write_timeout);
        match head {
            Ok(head) => {
                // Built in its box (see `in_box`): awaited in place, the request's whole state
                // machine (kilobytes) would be copied into this stream's future as it starts.
                let session = Session::boxed(head, ds);
                Box::into_pin(in_box(|| self.serve(session, shutdown))).await;
            }
            Err((e, head_request)) => ds.refuse(self.error_page(e.status, e.reason), head_request).await,
        }
    }

    async fn process_request(self: &Arc<Self>, mut conn: H1Conn, shutdown: &ShutdownWatch) -> Option<H1Conn> {
        let opts = &self.server;
        let deadline = Some(Instant::now() + opts.header_timeout);
        let read = conn.read_head(&opts.limits, deadline, parse_request, "reading the request head").await;
        let head = match read {
            Ok(Some(h)) => h,
            Ok(None) => return None,
            Err(e) => {
                // Nothing of a bad head is forwarded, and the connection is out of sync: answer, close.
                if e.kind != ErrorKind::ConnectionClosed {
                    let page =
                        self.error_page(e.status(), e.cause.as_deref().unwrap_or(observe::describe(&e)));
                    ServerSession::h1(conn, opts.write_timeout).refuse(page, false).await;
                }
                return None;
            }
        };
        let session = Session::boxed(head, ServerSession::h1(conn, opts.write_timeout));
        let (session, reuse) = self.serve(session, shutdown).await?;
        let mut conn = session.downstream.into_h1()?;
        if reuse && !shutdown.is_shutting_down() {
            return Some(conn);
        }
        conn.shutdown().await;
        None
    }
}

impl<H: ProxyHttp> HttpProxy<H> {
    /// The one intake for both protocols: the checks every request passes before any hook sees it
    /// (field names, body framing, CONNECT, the upgrade offer), then the phases. Returns the
    /// session and whether its connection may carry another request; `None` when the request was
    /// refused (the connection is closed).
    async fn serve(
        &self,
        mut session: Box<Session>,
        shutdown: &ShutdownWatch,
    ) -> Option<(Box<Session>, bool)> {
        if let Err((e, head_request)) = self.admit(&mut session, shutdown) {
            session.downstream.refuse(self.error_page(e.status, e.reason), head_request).await;
            return None;
        }
        if self.options.observe.as_ref().is_some_and(|o| o.request_ids) {
            session.request_id = Some(request_id::assign(&mut session.req));
        }
        let reuse = self.handle(&mut session, shutdown).await;
        Some((session, reuse))
    }

    /// The checks of [`Self::serve`]: `Ok`, or why to refuse the request and whether it was a
    /// HEAD. They run on the session the phases will see, built in its box by the caller
    /// (see [`Session::boxed`]), so that nothing of it is copied on the way in.
    fn admit(&self, session: &mut Session, shutdown: &ShutdownWatch) -> Result<(), (HeadError, bool)> {
        let opts = &self.server;
        let (head, ds) = (&mut session.req, &mut session.downstream);
        let admitted = underscore_fields(opts.underscore_fields, &mut head.headers)
            .and_then(|()| ds.request_framing(head, &opts.limits))
            .and_then(|framing| match head.method {
                Method::CONNECT if !opts.allow_connect => Err(HeadError::new(405, "CONNECT is not served")),
                _ => Ok(framing),
            });
        session.req_framing = admitted.map_err(|e| (e, head.method == Method::HEAD))?;
        if shutdown.is_shutting_down() {
            ds.set_close();
        }
        // Cut on arrival, so every hook sees the offer as it will be forwarded and
        // `Session::is_upgrade` tells whether a tunnel may follow.
        let may_upgrade = head.version == http::Version::HTTP_11;
        restrict_upgrade(&mut head.headers, may_upgrade, &opts.upgrades);
        Ok(())
    }
}

impl<H: ProxyHttp> HttpProxy<H> {
    /// The error response the proxy makes itself for `status`: the hooks' replacement, or the
    /// default page saying `what` happened.
    pub(crate) fn error_page(&self, status: u16, what: &str) -> (ResponseHead, Bytes) {
        self.hooks.error_response(status, what).unwrap_or_else(|| {
            crate::protocol::http::error_page(
                http::StatusCode::from_u16(status).unwrap_or(http::StatusCode::BAD_REQUEST),
                what,
            )
        })
    }
}

/// Applies the service's [`UnderscoreFields`] policy to a request head before any hook sees it.
fn underscore_fields(policy: UnderscoreFields, headers: &mut Headers) -> Result<(), HeadError> {
    match policy {
        UnderscoreFields::Forward => Ok(()),
        UnderscoreFields::Drop => strip_underscore_fields(headers, true),
        UnderscoreFields::Refuse => strip_underscore_fields(headers, false),
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
