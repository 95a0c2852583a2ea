//! The TCP (L4) proxy: a second [`ServerApp`] beside the HTTP one. Each accepted connection (TCP,
//! Unix socket, or TLS terminated by the endpoint; optionally after a PROXY header) is relayed
//! byte for byte to a peer its [`L4Hooks::upstream_peer`] hook chooses, over the same connectors
//! (TLS to the peer, PROXY header to the peer) and upstream groups as HTTP; then
//! [`L4Hooks::logging`] sees what it did.
//!
//! The peer is connected as soon as the client is accepted (before the client sends anything),
//! so protocols where the server speaks first (MySQL, SMTP, SSH banners) work. With
//! [`L4Options::peek_client_hello`] the service waits for a TLS ClientHello first and hands its
//! SNI and ALPN to the hook without terminating TLS (passthrough routed by name).

mod client_hello;
mod relay;
mod session;
#[cfg(target_os = "linux")]
mod splice;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

pub use client_hello::{parse as parse_client_hello, Hello};
pub use session::{L4End, L4Session};

use crate::app::ServerApp;
use crate::error::Result;
use crate::protocol::stream::Stream;
use crate::server::{ShutdownState, ShutdownWatch};
use crate::upstream::HttpPeer;
use relay::{relay, Half, RelayLimits};

/// What a host decides for each connection.
pub trait L4Hooks: Send + Sync + 'static {
    /// The peer to relay the connection to. An error closes the connection (nothing was read
    /// from it). A peer with [`crate::upstream::SendProxy`] gets the client's addresses filled in.
    fn upstream_peer(&self, session: &mut L4Session) -> impl Future<Output = Result<HttpPeer>> + Send;

    /// Once per connection, after it ended (also when no peer was chosen or connecting failed).
    fn logging(&self, _session: &L4Session) {}
}

/// Settings of an L4 service.
#[derive(Debug, Clone)]
pub struct L4Options {
    /// Close when nothing moved either way for this long (`None`: never). Default 10 minutes.
    pub idle_timeout: Option<Duration>,
    /// Close a connection this long after it was accepted, whatever it does (`None`: never).
    pub max_duration: Option<Duration>,
    /// Bytes buffered per direction (default 64 KiB): the relay's whole memory per connection.
    pub buffer_size: usize,
    /// On plaintext endpoints, wait for a TLS ClientHello and give its SNI and ALPN to
    /// `upstream_peer` (TLS passthrough). Off by default: the peer is connected at once.
    pub peek_client_hello: bool,
    /// How long to wait for that ClientHello (default 5 s); past it the hook runs without it.
    pub client_hello_timeout: Duration,
    /// Relay plain TCP to plain TCP with splice(2) through a pipe of `buffer_size` bytes per
    /// direction (Linux), instead of copying through a user-space buffer.
    pub splice: bool,
}

impl Default for L4Options {
    fn default() -> Self {
        L4Options {
            idle_timeout: Some(Duration::from_secs(600)),
            max_duration: None,
            buffer_size: 64 * 1024,
            peek_client_hello: false,
            client_hello_timeout: Duration::from_secs(5),
            splice: false,
        }
    }
}

/// An L4 proxy app running hooks `H`.
#[derive(Debug)]
pub struct L4Proxy<H> {
    hooks: H,
    options: L4Options,
}

impl<H: L4Hooks> L4Proxy<H> {
    /// An app with default options.
    pub fn new(hooks: H) -> Self {
        L4Proxy { hooks, options: L4Options::default() }
    }

    /// The options, to change before the service starts.
    pub fn options_mut(&mut self) -> &mut L4Options {
        &mut self.options
    }

    /// The hooks.
    pub fn hooks(&self) -> &H {
        &self.hooks
    }

    async fn serve(&self, mut client: Stream, shutdown: ShutdownWatch) {
        let mut s = L4Session::new(&client);
        let fast = shutdown.reached(ShutdownState::Fast);
        tokio::select! {
            biased;
            _ = fast => s.end = L4End::Shutdown,
            _ = self.proxy(&mut s, &mut client) => {}
        }
        self.hooks.logging(&s);
    }

    async fn proxy(&self, s: &mut L4Session, client: &mut Stream) {
        let o = &self.options;
        if o.peek_client_hello && !client.is_tls() {
            if let Some(hello) = client_hello::peek(client, o.client_hello_timeout).await {
                s.set_hello(hello);
            }
        }
        let mut peer = match self.hooks.upstream_peer(s).await {
            Ok(p) => p,
            Err(e) => {
                (s.end, s.error) = (L4End::NoPeer, Some(e));
                return;
            }
        };
        if let Some(pp) = &mut peer.options.proxy_protocol {
            pp.fill(s.client_addr(), s.local_addr());
        }
        s.peer = Some(peer.address.clone());
        let started = std::time::Instant::now();
        let connected = crate::connector::connect(&peer).await;
        s.report_connect(connected.is_ok());
        let mut upstream = match connected {
            Ok(u) => u,
            Err(e) => {
                (s.end, s.error) = (L4End::ConnectFailed, Some(e));
                return;
            }
        };
        s.connect_time = Some(started.elapsed());
        let limits = RelayLimits {
            idle: o.idle_timeout,
            deadline: o.max_duration.map(|d| tokio::time::Instant::now() + d.saturating_sub(s.elapsed())),
        };
        let (end, err) = match self.splice_halves(client, &upstream) {
            #[cfg(target_os = "linux")]
            Some((up, down)) => run(client, &mut upstream, up, down, limits, s).await,
            _ => {
                run(client, &mut upstream, Half::new(o.buffer_size), Half::new(o.buffer_size), limits, s)
                    .await
            }
        };
        s.end = end;
        if let Some(e) = err {
            s.error = Some(
                crate::error::Error::new(
                    crate::error::ErrorKind::ReadError,
                    crate::error::ErrorSource::Internal,
                    "relaying",
                )
                .with_cause(e),
            );
        }
    }
}

#[cfg(target_os = "linux")]
type SpliceHalves = (splice::SpliceHalf, splice::SpliceHalf);
#[cfg(not(target_os = "linux"))]
type SpliceHalves = std::convert::Infallible;

impl<H> L4Proxy<H> {
    /// Pipes for a spliced relay, when it is on and both sides are plain TCP (else `None`: the
    /// buffered relay, also when the pipes cannot be made).
    fn splice_halves(&self, client: &Stream, upstream: &Stream) -> Option<SpliceHalves> {
        if !self.options.splice || !matches!((client, upstream), (Stream::Tcp(_), Stream::Tcp(_))) {
            return None;
        }
        #[cfg(target_os = "linux")]
        {
            let size = self.options.buffer_size;
            Some((splice::SpliceHalf::new(size).ok()?, splice::SpliceHalf::new(size).ok()?))
        }
        #[cfg(not(target_os = "linux"))]
        None
    }
}

/// Relays with directions `up` and `down`, then records the byte counts in `s`.
async fn run<D: relay::Direction>(
    client: &mut Stream,
    upstream: &mut Stream,
    mut up: D,
    mut down: D,
    limits: RelayLimits,
    s: &mut L4Session,
) -> (L4End, Option<std::io::Error>) {
    let r = relay(client, upstream, &mut up, &mut down, limits).await;
    (s.bytes_up, s.bytes_down) = (up.bytes(), down.bytes());
    r
}

impl<H: L4Hooks> ServerApp for L4Proxy<H> {
    // Not an `async fn`: that would keep the parameters twice in every connection's task.
    #[allow(clippy::manual_async_fn)]
    fn process_new(
        self: Arc<Self>,
        stream: Stream,
        shutdown: ShutdownWatch,
    ) -> impl Future<Output = ()> + Send {
        async move { Box::pin(self.serve(stream, shutdown)).await }
    }
}
