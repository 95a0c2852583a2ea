//! What the L4 hooks see of one proxied connection, and what it did.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::error::{Error, Result};
use crate::protocol::proxy_protocol::ProxyHeader;
use crate::protocol::stream::{SocketAddr, Stream};
use crate::upstream::{HttpPeer, Outcome, PeerAddress, Pick, Tried, UpstreamGroup};

/// How a connection ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum L4End {
    /// Still running (what `logging` never sees).
    #[default]
    Open,
    /// Both sides closed their write side and everything was relayed.
    Closed,
    /// The hook chose no peer (or failed).
    NoPeer,
    /// Connecting to the peer failed.
    ConnectFailed,
    /// A read or write on either side failed (a reset, for example).
    Error,
    /// Nothing moved either way for the idle timeout.
    IdleTimeout,
    /// The connection reached its longest allowed life.
    MaxDuration,
    /// The server shut down.
    Shutdown,
}

impl L4End {
    /// A short stable name for logs.
    pub fn as_str(self) -> &'static str {
        match self {
            L4End::Open => "open",
            L4End::Closed => "closed",
            L4End::NoPeer => "no peer",
            L4End::ConnectFailed => "connect failed",
            L4End::Error => "error",
            L4End::IdleTimeout => "idle timeout",
            L4End::MaxDuration => "max duration",
            L4End::Shutdown => "shutdown",
        }
    }
}

/// One downstream connection of an L4 service.
#[derive(Debug)]
pub struct L4Session {
    client: Option<SocketAddr>,
    local: Option<SocketAddr>,
    socket_peer: Option<SocketAddr>,
    proxy_header: Option<Arc<ProxyHeader>>,
    tls: bool,
    /// The facts of the handshake on a TLS endpoint (version, cipher, client certificate).
    facts: Option<Arc<crate::tls::TlsFacts>>,
    sni: Option<String>,
    alpn: Vec<Vec<u8>>,
    start: Instant,
    /// Bytes relayed from the client to the peer.
    pub bytes_up: u64,
    /// Bytes relayed from the peer to the client.
    pub bytes_down: u64,
    /// The peer connected to (once `upstream_peer` chose one).
    pub peer: Option<PeerAddress>,
    /// Time taken to connect to it (connect, PROXY header, TLS).
    pub connect_time: Option<Duration>,
    /// How the connection ended (set before `logging`).
    pub end: L4End,
    /// The failure behind `end`, if any.
    pub error: Option<Box<Error>>,
    /// The group backend chosen, if the peer came from a group (its name).
    pub backend: Option<Arc<str>>,
    pick: Option<Pick>,
}

impl L4Session {
    pub(crate) fn new(stream: &Stream) -> Self {
        let sni = stream.sni().map(str::to_owned);
        let alpn = stream.alpn().map(|a| vec![a.to_vec()]).unwrap_or_default();
        L4Session {
            client: stream.peer_addr(),
            local: stream.local_addr(),
            socket_peer: stream.socket_peer_addr(),
            proxy_header: stream.proxy_header().cloned(),
            tls: stream.is_tls(),
            facts: crate::tls::TlsFacts::of(stream),
            sni,
            alpn,
            start: Instant::now(),
            bytes_up: 0,
            bytes_down: 0,
            peer: None,
            connect_time: None,
            end: L4End::Open,
            error: None,
            backend: None,
            pick: None,
        }
    }

    pub(crate) fn set_hello(&mut self, hello: super::client_hello::Hello) {
        self.sni = hello.sni;
        self.alpn = hello.alpn;
    }

    /// The client's address (the one a PROXY header carried, when there was one).
    pub fn client_addr(&self) -> Option<&SocketAddr> {
        self.client.as_ref()
    }

    /// The address the client connected to (likewise).
    pub fn local_addr(&self) -> Option<&SocketAddr> {
        self.local.as_ref()
    }

    /// The socket's own peer: the load balancer when a PROXY header came, else the client.
    pub fn socket_peer_addr(&self) -> Option<&SocketAddr> {
        self.socket_peer.as_ref()
    }

    /// The PROXY header the connection began with.
    pub fn proxy_header(&self) -> Option<&ProxyHeader> {
        self.proxy_header.as_deref()
    }

    /// Whether this service terminated TLS on the connection.
    pub fn is_tls(&self) -> bool {
        self.tls
    }

    /// What the TLS handshake settled on a TLS endpoint: SNI, ALPN, version, cipher and the client
    /// certificate of mutual TLS, as HTTP hooks read them (`None` in passthrough or plaintext).
    pub fn tls_facts(&self) -> Option<&crate::tls::TlsFacts> {
        self.facts.as_deref()
    }

    /// The server name: from the handshake on a TLS endpoint, from the peeked ClientHello when
    /// the service passes TLS through.
    pub fn sni(&self) -> Option<&str> {
        self.sni.as_deref()
    }

    /// ALPN: the protocol negotiated on a TLS endpoint (one entry), or the protocols the peeked
    /// ClientHello offered, in order.
    pub fn alpn(&self) -> &[Vec<u8>] {
        &self.alpn
    }

    /// Time since the connection was accepted.
    pub fn elapsed(&self) -> Duration {
        self.start.elapsed()
    }

    /// Chooses a backend of `group` (`key` for the consistent-hash algorithms), for
    /// `upstream_peer` to return. Whether connecting to it works goes to the group's passive
    /// health, and the backend counts the connection in flight until it ends.
    pub fn pick_from(&mut self, group: &UpstreamGroup, key: Option<&[u8]>) -> Result<HttpPeer> {
        let pick = group.pick(key, &mut Tried::default())?;
        let peer = pick.peer().clone();
        self.backend = Some(pick.label());
        self.pick = Some(pick);
        Ok(peer)
    }

    /// Reports whether connecting to the group backend worked (no-op without a group pick).
    pub(crate) fn report_connect(&mut self, ok: bool) {
        if let Some(pick) = &self.pick {
            pick.report(if ok { Outcome::Success } else { Outcome::Failure });
        }
    }
}
