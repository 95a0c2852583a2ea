//! Apps (Pingora's `apps/`): what a listening service runs on each connection.
//!
//! [`ServerApp`] is the per-connection task; [`HttpServerApp`] is an HTTP app, whose connection task
//! (provided here) runs the keep-alive loop: wait for a request, serve it, reuse while allowed.

mod h2;

use std::future::{poll_fn, Future};
use std::pin::{pin, Pin};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::time::{sleep_until, Instant, Sleep};

use crate::boxed::in_box;
use crate::error::ErrorSource;
use crate::metrics::ServiceMetrics;
use crate::protocol::h1::conn::H1Conn;
use crate::protocol::h1::upgrade::UpgradePolicy;
use crate::protocol::h1::Limits;
use crate::protocol::h2::{H2Options, PREFACE};
use crate::protocol::stream::{SocketAddr, Stream};
use crate::protocol::timer::poll_until;
use crate::server::{ShutdownState, ShutdownWatch};
use crate::tls::TlsFacts;

/// Serves one accepted connection until it ends.
pub trait ServerApp: Send + Sync + 'static {
    /// Where the connection task counts TLS handshakes, if anywhere.
    fn connection_metrics(&self) -> Option<&Arc<ServiceMetrics>> {
        None
    }

    /// Runs the connection to completion.
    fn process_new(
        self: Arc<Self>,
        stream: Stream,
        shutdown: ShutdownWatch,
    ) -> impl Future<Output = ()> + Send;
}

/// What becomes of request fields whose names contain `_` (`Content_Length`, `X_Forwarded_For`).
/// CGI, WSGI and many frameworks map `-` and `_` to the same name, so such a field can pass for a
/// framing or trust field at a lenient origin (a `Content_Length` read as `Content-Length`
/// desyncs it from us). nginx drops them by default (`underscores_in_headers off`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum UnderscoreFields {
    /// Remove them before any hook sees the request (default).
    #[default]
    Drop,
    /// Answer 400 and close.
    Refuse,
    /// Forward them like any other field.
    Forward,
}

/// Downstream HTTP settings. Defaults are edge-safe (see `notes/http-hardening.md` §3).
#[derive(Debug, Clone)]
pub struct HttpServerOptions {
    /// Head size limits.
    pub limits: Limits,
    /// Total time allowed to receive a request head once its first byte arrived (slowloris guard).
    pub header_timeout: Duration,
    /// How long an idle keep-alive connection waits for its next request.
    pub keepalive_timeout: Duration,
    /// Longest pause between two reads of a request body.
    pub body_idle_timeout: Duration,
    /// Longest time a whole request body may take, counted from the start of the request; past it
    /// the request fails with 408 and its upstream connection is closed. `None` (default): no limit
    /// but the idle timeout, so a client that sends a byte now and then can hold a request open.
    pub body_deadline: Option<Duration>,
    /// Slowest request body accepted, in bytes per second averaged since the start of the request,
    /// once `body_rate_grace` has passed (408 below it). 0 (default): no minimum.
    pub body_min_rate: u64,
    /// How long a request body may run before `body_min_rate` applies (default 5 s).
    pub body_rate_grace: Duration,
    /// Read whole request bodies of up to this many bytes before `upstream_peer` runs and before
    /// any upstream connection exists (nginx's `proxy_request_buffering on`), so a slow client never
    /// holds an upstream connection; a longer body is refused with 413. The body goes upstream with
    /// a Content-Length (after `request_body_filter`), so an upstream that refuses chunked requests
    /// takes it too. 0 (default): bodies stream upstream as they arrive.
    pub request_buffer: usize,
    /// Longest time one write to the client may take.
    pub write_timeout: Duration,
    /// Accept CONNECT requests (tunnels) instead of answering 405.
    pub allow_connect: bool,
    /// Most unread request body bytes read and discarded to keep a connection after an early
    /// response; beyond this the connection is closed instead.
    pub drain_limit: u64,
    /// Speak only HTTP/2 (prior knowledge) on plaintext endpoints: a connection that does not
    /// open with the HTTP/2 preface is closed without an answer (RFC 9113 §3.4). Off by default,
    /// so one port serves HTTP/1.1 and h2c.
    pub h2_only: bool,
    /// Request fields with `_` in their names, over HTTP/1 and HTTP/2: dropped (default),
    /// refused with 400, or forwarded.
    pub underscore_fields: UnderscoreFields,
    /// The `Upgrade` protocols forwarded to upstreams (default: WebSocket only). Any other offer
    /// reaches the upstream as a plain request, without `Upgrade` and the `upgrade` connection
    /// option; `h2c`, `h2` and `HTTP2-Settings` never do. See [`UpgradePolicy`].
    pub upgrades: UpgradePolicy,
}

impl HttpServerOptions {
    /// When a request body that began at `start` and has delivered `bytes` so far breaks its total
    /// deadline or falls below the minimum rate, whichever comes first; `None` without either.
    /// Each read of the body is bounded by this as well as by the idle timeout.
    pub(crate) fn body_cutoff(&self, start: std::time::Instant, bytes: u64) -> Option<std::time::Instant> {
        let total = self.body_deadline.map(|d| start + d);
        // Below the rate once the time since the grace period ends exceeds what `bytes` pay for.
        let rate = (self.body_min_rate > 0).then(|| {
            let paid = Duration::from_secs_f64(bytes as f64 / self.body_min_rate as f64);
            start + self.body_rate_grace + paid
        });
        match (total, rate) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }
}

impl Default for HttpServerOptions {
    fn default() -> Self {
        HttpServerOptions {
            limits: Limits::default(),
            header_timeout: Duration::from_secs(10),
            keepalive_timeout: Duration::from_secs(60),
            body_idle_timeout: Duration::from_secs(30),
            body_deadline: None,
            body_min_rate: 0,
            body_rate_grace: Duration::from_secs(5),
            request_buffer: 0,
            write_timeout: Duration::from_secs(30),
            allow_connect: false,
            drain_limit: 64 * 1024,
            h2_only: false,
            underscore_fields: UnderscoreFields::Drop,
            upgrades: UpgradePolicy::default(),
        }
    }
}

/// An HTTP app: serves HTTP/1.x requests one at a time on a connection, and HTTP/2 streams each
/// in a task of its own. Which protocol a connection speaks is decided here: the HTTP/2 preface
/// (prior knowledge, h2c) or, over TLS, ALPN.
pub trait HttpServerApp: Send + Sync + 'static {
    /// The downstream settings.
    fn server_options(&self) -> &HttpServerOptions;

    /// The downstream HTTP/2 settings.
    fn h2_options(&self) -> &H2Options;

    /// Serves one HTTP/2 stream: its request head, or why to refuse it and whether it was a HEAD
    /// (a well-formed HTTP/2 request the proxy does not forward); `tls` holds the connection's TLS
    /// facts on a TLS connection.
    fn process_h2_stream(
        self: &Arc<Self>,
        head: Result<crate::protocol::http::RequestHead, (crate::protocol::http::HeadError, bool)>,
        stream: crate::protocol::h2::server::StreamHandle,
        addrs: (Option<SocketAddr>, Option<SocketAddr>),
        tls: Option<Arc<TlsFacts>>,
        shutdown: &ShutdownWatch,
    ) -> impl Future<Output = ()> + Send;

    /// The service's built-in metrics, if it keeps them: the connection task counts open
    /// connections, HTTP/2 streams and TLS handshakes there.
    fn metrics(&self) -> Option<&Arc<crate::metrics::ServiceMetrics>> {
        None
    }

    /// Serves one request whose first bytes are buffered in `conn`. Returns the connection when
    /// it may carry another request.
    fn process_request(
        self: &Arc<Self>,
        conn: H1Conn,
        shutdown: &ShutdownWatch,
    ) -> impl Future<Output = Option<H1Conn>> + Send;
}

impl<T: HttpServerApp> ServerApp for T {
    fn connection_metrics(&self) -> Option<&Arc<ServiceMetrics>> {
        self.metrics()
    }

    // Not an `async fn`: that would keep the parameters twice in every connection's task (as
    // captured and as moved into the body).
    #[allow(clippy::manual_async_fn)]
    fn process_new(
        self: Arc<Self>,
        stream: Stream,
        shutdown: ShutdownWatch,
    ) -> impl Future<Output = ()> + Send {
        async move {
            // Counted open until the task ends (moved into the block so that it drops last).
            let _open = self.metrics().map(|m| m.connection());
            let mut conn = H1Conn::new(stream, ErrorSource::Downstream);
            conn.take_tls_facts();
            let deadline = Some(Instant::now() + self.server_options().header_timeout);
            // Over TLS, ALPN has decided; in cleartext the first bytes do (prior knowledge).
            let is_h2 = match conn.io.alpn() {
                Some(proto) => proto == crate::tls::ALPN_H2,
                // Boxed: it runs once per connection, and its read machinery would otherwise size
                // the connection's task for its whole (mostly idle) life.
                //
                // A graceful shutdown gives a connection accepted before it FIRST_REQUEST_GRACE
                // for its first bytes: the client sent its request to a socket that was accepting,
                // and during an upgrade dropping it would fail a request no retry rule covers (a
                // client retries on a reused connection only).
                None => match Box::pin(async {
                    tokio::select! {
                        biased;
                        h2 = sniff_h2_preface(&mut conn, deadline) => Some(h2),
                        _ = async {
                            shutdown.reached(ShutdownState::Graceful).await;
                            tokio::time::sleep(FIRST_REQUEST_GRACE).await
                        } => None,
                    }
                })
                .await
                {
                    Some(Sniffed::H2) => true,
                    Some(Sniffed::H1) => false,
                    // Closed without an HTTP/1 answer (see `Sniffed`), or silent into the shutdown.
                    Some(Sniffed::BadPreface) | None => return,
                },
            };
            if is_h2 {
                let addrs = conn.addrs();
                let tls = conn.tls_facts_shared();
                // Taken apart in a block of its own: what is left of the state must not outlive
                // it, or it would take room in every connection's task for the HTTP/2 await.
                let (io, rbuf) = {
                    let conn = conn.into_state();
                    (conn.io, conn.rbuf)
                };
                return Box::pin(h2::serve(self, io, rbuf, (addrs, tls), shutdown)).await;
            }
            if conn.io.alpn().is_none() && (conn.rbuf.is_empty() || self.server_options().h2_only) {
                return; // closed, silent until the header deadline, or not HTTP/2 where only that is served
            }
            let idle = self.server_options().keepalive_timeout;
            // The shutdown waiter and the timer outlive each wait: made afresh per request, they
            // cost a registration and a removal each (the watch's waiter list, the timer wheel).
            // Kept, the waiter stays listed and the timer is moved only when it goes off (see
            // `crate::protocol::timer`).
            let mut stop_rx = shutdown.clone();
            let mut stop = pin!(stop_rx.graceful());
            let mut timer = pin!(None::<Sleep>);
            loop {
                // Inline rather than a function of its own, whose parameters would add to the
                // state every idle connection holds (see `poll_wait`).
                let ready = {
                    let (conn, deadline) = (&conn, Instant::now() + idle);
                    let (mut stop, mut timer) = (stop.as_mut(), timer.as_mut());
                    poll_fn(move |cx| poll_wait(conn, stop.as_mut(), timer.as_mut(), deadline, cx)).await
                };
                if !ready {
                    return;
                }
                // Boxed: the request's state machine (phases, exchange, both sides' I/O) is large, and
                // an idle keep-alive connection should hold only this loop's few words, not its space.
                // Built in its box (see `in_box`), as it is built once per request.
                match Box::into_pin(in_box(|| self.process_request(conn, &shutdown))).await {
                    Some(c) => conn = c,
                    None => return,
                }
                conn.release_buffers();
            }
        }
    }
}

/// The keep-alive wait: `Ready(true)` once a request (or EOF) is there to read, `Ready(false)`
/// when the connection should close instead: keep-alive timeout, graceful shutdown, socket error.
///
/// Hand-polled rather than a `select!` of a readiness wait and `reached`: an idle connection spends its
/// life here, so this state sizes its task, and that pair held two waiter nodes, a receiver clone
/// and a timer (760 bytes). Readiness first (a request that is already there needs no timer, and
/// wins over a shutdown), then shutdown, then the timer, armed only on the first miss.
fn poll_wait(
    conn: &H1Conn,
    stop: Pin<&mut impl Future<Output = ()>>,
    mut timer: Pin<&mut Option<Sleep>>,
    deadline: Instant,
    cx: &mut Context<'_>,
) -> Poll<bool> {
    if let Poll::Ready(r) = conn.poll_next(cx) {
        return Poll::Ready(r.is_ok());
    }
    if stop.poll(cx).is_ready() {
        return Poll::Ready(false);
    }
    if timer.is_none() {
        timer.set(Some(sleep_until(deadline)));
    }
    match timer.as_pin_mut() {
        Some(t) => poll_until(t, deadline, cx).map(|()| false),
        None => Poll::Pending,
    }
}

/// How long a connection accepted before a graceful shutdown may take to send its first bytes
/// (or finish its TLS handshake).
pub(crate) const FIRST_REQUEST_GRACE: Duration = Duration::from_secs(1);

/// What a cleartext connection's first bytes say it speaks.
#[derive(Debug, PartialEq, Eq)]
enum Sniffed {
    /// The whole HTTP/2 connection preface.
    H2,
    /// Anything that does not start with `PRI ` (or nothing at all): HTTP/1's to judge.
    H1,
    /// `PRI ` and then not the rest of the preface (or the connection ended inside it). The method
    /// `PRI` is reserved for the preface alone (RFC 9113 §3.4, §11.1 of RFC 7540), so no HTTP/1
    /// request starts this way: the client meant HTTP/2 and sent a broken preface, which is a
    /// connection error there (RFC 9113 §3.4). The connection is closed with no HTTP/1 answer, as
    /// on an HTTP/2-only port; an HTTP/1 400 would speak a protocol the client is not using (and
    /// h2spec's invalid-preface case expects the connection closed).
    ///
    /// Also a first line of three words whose last is no HTTP version (h2spec's invalid preface is
    /// `INVALID CONNECTION PREFACE`): not HTTP/1, so no HTTP/1 answer either. A line of another
    /// shape (`GET /`, HTTP/0.9) stays HTTP/1's to refuse with a 400.
    BadPreface,
}

/// A first line still incomplete after this many bytes is left to the HTTP/1 parser (and its
/// length limits).
const FIRST_LINE_SNIFF: usize = 8 * 1024;

/// Whether a complete first line (`\n` included) has the shape `WORD WORD WORD` with a last word
/// that is no `HTTP/` version (in any case: a lowercase `http/1.1` is HTTP/1's to refuse).
fn not_http(line: &[u8]) -> bool {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let mut words = line.split(|&b| b == b' ');
    match (words.next(), words.next(), words.next(), words.next()) {
        (Some(a), Some(b), Some(v), None) => {
            !a.is_empty() && !b.is_empty() && !v.get(..5).is_some_and(|p| p.eq_ignore_ascii_case(b"HTTP/"))
        }
        _ => false,
    }
}

/// Reads until the first bytes either are the HTTP/2 connection preface or cannot be (an HTTP/1
/// request). An HTTP/1 method never starts with `PRI `, so a few bytes usually settle it.
async fn sniff_h2_preface(conn: &mut H1Conn, deadline: Option<Instant>) -> Sniffed {
    const PRI: usize = 4; // "PRI "
    loop {
        let n = conn.rbuf.len().min(PREFACE.len());
        if conn.rbuf[..n] != PREFACE[..n] {
            if n >= PRI && conn.rbuf[..PRI] == PREFACE[..PRI] {
                return Sniffed::BadPreface;
            }
            return first_line(conn, deadline).await;
        }
        if n == PREFACE.len() {
            return Sniffed::H2;
        }
        match conn.read_more(deadline).await {
            Ok(read) if read > 0 => {}
            _ if n >= PRI => return Sniffed::BadPreface,
            _ => return Sniffed::H1,
        }
    }
}

/// Not the preface: reads on to the end of the first line (which HTTP/1 needs anyway) to tell an
/// HTTP/1 request from bytes of no HTTP at all. The connection ending first, or a line too long
/// to judge, is HTTP/1's to answer.
async fn first_line(conn: &mut H1Conn, deadline: Option<Instant>) -> Sniffed {
    loop {
        if let Some(end) = conn.rbuf.iter().position(|&b| b == b'\n') {
            return if not_http(&conn.rbuf[..=end]) { Sniffed::BadPreface } else { Sniffed::H1 };
        }
        if conn.rbuf.len() > FIRST_LINE_SNIFF {
            return Sniffed::H1;
        }
        match conn.read_more(deadline).await {
            Ok(read) if read > 0 => {}
            _ => return Sniffed::H1,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::{TcpListener, TcpStream};
    use tokio::sync::watch;

    /// Answers every request head with an empty 204 and keeps the connection.
    struct Echo(HttpServerOptions, H2Options);

    impl HttpServerApp for Echo {
        fn server_options(&self) -> &HttpServerOptions {
            &self.0
        }
        fn h2_options(&self) -> &H2Options {
            &self.1
        }
        async fn process_h2_stream(
            self: &Arc<Self>,
            _: Result<crate::protocol::http::RequestHead, (crate::protocol::http::HeadError, bool)>,
            _: crate::protocol::h2::server::StreamHandle,
            _: (Option<SocketAddr>, Option<SocketAddr>),
            _: Option<Arc<TlsFacts>>,
            _: &ShutdownWatch,
        ) {
        }
        async fn process_request(self: &Arc<Self>, mut conn: H1Conn, _: &ShutdownWatch) -> Option<H1Conn> {
            let end = loop {
                if let Some(end) = conn.rbuf.windows(4).position(|w| w == b"\r\n\r\n") {
                    break end;
                }
                if conn.read_more(None).await.ok()? == 0 {
                    return None;
                }
            };
            let _ = conn.rbuf.split_to(end + 4);
            conn.queue(|b| b.extend_from_slice(b"HTTP/1.1 204 No Content\r\n\r\n"));
            conn.flush(None).await.ok()?;
            Some(conn)
        }
    }

    /// A connection served by `Echo` with a keep-alive timeout of `idle`, after one request.
    async fn served(idle: Duration, shutdown: ShutdownWatch) -> (TcpStream, tokio::task::JoinHandle<()>) {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let mut c = TcpStream::connect(l.local_addr().unwrap()).await.unwrap();
        let (s, _) = l.accept().await.unwrap();
        let opts = HttpServerOptions { keepalive_timeout: idle, ..Default::default() };
        let app = Arc::new(Echo(opts, H2Options::default()));
        let task = tokio::spawn(app.process_new(Stream::Tcp(s), shutdown));
        c.write_all(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n").await.unwrap();
        let mut buf = [0u8; 64];
        let n = c.read(&mut buf).await.unwrap();
        assert!(buf[..n].starts_with(b"HTTP/1.1 204"));
        (c, task)
    }

    #[tokio::test]
    async fn idle_connection_serves_the_next_request_then_closes_at_the_keepalive_timeout() {
        let (mut c, task) = served(Duration::from_millis(300), ShutdownWatch::never()).await;
        tokio::time::sleep(Duration::from_millis(100)).await;
        c.write_all(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n").await.unwrap();
        let mut buf = [0u8; 64];
        let n = c.read(&mut buf).await.unwrap();
        assert!(buf[..n].starts_with(b"HTTP/1.1 204"));
        let t = std::time::Instant::now();
        tokio::time::timeout(Duration::from_secs(5), task).await.unwrap().unwrap();
        assert!(t.elapsed() >= Duration::from_millis(250), "closed before the keep-alive timeout");
        assert_eq!(c.read(&mut buf).await.unwrap(), 0);
    }

    #[tokio::test]
    async fn idle_connection_closes_on_graceful_shutdown() {
        let (tx, rx) = watch::channel(ShutdownState::Running);
        let (mut c, task) = served(Duration::from_secs(60), ShutdownWatch::new(rx)).await;
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(!task.is_finished());
        tx.send(ShutdownState::Graceful).unwrap();
        tokio::time::timeout(Duration::from_secs(2), task).await.unwrap().unwrap();
        let mut buf = [0u8; 8];
        assert_eq!(c.read(&mut buf).await.unwrap(), 0);
    }
}
