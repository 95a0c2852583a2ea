//! Connectors (Pingora's `connectors/`): reach a peer, reusing an idle pooled connection when one is
//! healthy, and take connections back for reuse.

mod h2;
mod pool;

use std::sync::Arc;
use std::time::{Duration, Instant};

use ::h2::client::SendRequest;
use bytes::Bytes;
use tokio::net::{TcpStream, UnixStream};

use self::h2::H2Pool;

pub use h2::H2Ticket;
pub(crate) use pool::set_worker_slot;
pub use pool::{ConnectionPool, PoolStats};

use crate::error::{Error, ErrorKind, ErrorSource, Result};
use crate::protocol::h1::conn::H1Conn;
use crate::protocol::h2::H2Options;
use crate::protocol::stream::Stream;
use crate::upstream::{Alpn, HttpPeer, PeerAddress};

/// Connects to peers through shared pools (idle HTTP/1 connections; multiplexed HTTP/2
/// connections). Cheap to clone: clones share the pools.
#[derive(Debug, Clone)]
pub struct Connector {
    pool: Arc<ConnectionPool>,
    h2: Arc<H2Pool>,
    h2_options: Arc<H2Options>,
}

impl Default for Connector {
    fn default() -> Self {
        Self::new(ConnectionPool::DEFAULT_MAX_IDLE)
    }
}

/// A connection handed out by the connector.
#[derive(Debug)]
pub enum Connection {
    /// An HTTP/1.1 connection, exclusively ours until released.
    H1(H1Conn),
    /// A stream slot on a shared HTTP/2 connection.
    H2(SendRequest<Bytes>, H2Ticket),
}

/// What [`Connector::get`] returns.
#[derive(Debug)]
pub struct UpstreamConn {
    /// The connection.
    pub conn: Connection,
    /// Whether it was reused (from the idle pool, or an existing HTTP/2 connection).
    pub reused: bool,
    /// Whether it runs over TLS (it decides the `:scheme` of HTTP/2 requests).
    pub tls: bool,
    /// Time taken to open it (zero when reused).
    pub connect_time: Duration,
    /// The pool key it goes back under (see [`Connector::release_to`]).
    pub(crate) key: u64,
}

impl Connector {
    /// A connector whose pool keeps at most `max_idle` idle connections in all.
    pub fn new(max_idle: usize) -> Self {
        Connector {
            pool: Arc::new(ConnectionPool::new(max_idle)),
            h2: Arc::new(H2Pool::default()),
            h2_options: Arc::new(H2Options::default()),
        }
    }

    /// Uses `options` for upstream HTTP/2 connections opened from now on.
    pub fn set_h2_options(&mut self, options: H2Options) {
        self.h2_options = Arc::new(options);
    }

    /// The HTTP/1 pool, for statistics.
    pub fn pool(&self) -> &ConnectionPool {
        &self.pool
    }

    /// HTTP/2 connections opened so far (each carries many requests).
    pub fn h2_connections_opened(&self) -> u64 {
        self.h2.opened()
    }

    /// A connection to `peer`: a pooled one when possible, else a new one.
    ///
    /// `H2` always speaks HTTP/2 (by ALPN over TLS, prior knowledge in cleartext). `H2ThenH1` over
    /// TLS lets ALPN decide: an existing HTTP/2 connection or an idle HTTP/1 one is reused, else a
    /// new connection goes to whichever protocol the peer picked. In cleartext it is HTTP/1.1.
    pub async fn get(&self, peer: &HttpPeer) -> Result<UpstreamConn> {
        let key = peer.reuse_hash();
        match self.idle(peer, key) {
            Some(conn) => Ok(conn),
            // Boxed: opening a connection (connect, TLS, the HTTP/2 handshake) is a large state,
            // and an await's state is part of every request's future, pooled or not.
            // The clock is read only here: a pooled connection takes no time to open.
            None => {
                let started = Instant::now();
                let mut conn = Box::pin(self.open(peer, key)).await?;
                conn.connect_time = started.elapsed();
                Ok(conn)
            }
        }
    }

    /// A pooled connection to `peer` (`key` its reuse hash), if one is idle.
    fn idle(&self, peer: &HttpPeer, key: u64) -> Option<UpstreamConn> {
        let tls = peer.options.tls.is_some();
        let alpn = peer.options.alpn;
        if alpn == Alpn::H2 || (alpn == Alpn::H2ThenH1 && tls) {
            if let Some((send, ticket)) = self.h2.take(key) {
                return Some(UpstreamConn {
                    conn: Connection::H2(send, ticket),
                    reused: true,
                    tls,
                    connect_time: Duration::ZERO,
                    key,
                });
            }
            if alpn == Alpn::H2 {
                return None;
            }
        }
        let conn = self.pool.take(key)?;
        Some(UpstreamConn {
            conn: Connection::H1(conn),
            reused: true,
            tls,
            connect_time: Duration::ZERO,
            key,
        })
    }

    /// A new connection to `peer` (HTTP/2 ones go through one connect at a time per peer, and may
    /// find one another request opened meanwhile).
    async fn open(&self, peer: &HttpPeer, key: u64) -> Result<UpstreamConn> {
        let tls = peer.options.tls.is_some();
        let alpn = peer.options.alpn;
        if alpn == Alpn::H2 || (alpn == Alpn::H2ThenH1 && tls) {
            let lock = self.h2.connect_lock(key);
            let _one_at_a_time = lock.lock().await;
            if let Some((send, ticket)) = self.h2.take(key) {
                return Ok(UpstreamConn {
                    conn: Connection::H2(send, ticket),
                    reused: true,
                    tls,
                    connect_time: Duration::ZERO,
                    key,
                });
            }
            let stream = connect(peer).await?;
            if alpn == Alpn::H2 || stream.is_h2() {
                let (send, ticket) =
                    self.h2.open(key, stream, &self.h2_options, peer.options.max_h2_streams).await?;
                return Ok(UpstreamConn {
                    conn: Connection::H2(send, ticket),
                    reused: false,
                    tls,
                    connect_time: Duration::ZERO,
                    key,
                });
            }
            let conn = Connection::H1(H1Conn::new(stream, ErrorSource::Upstream));
            return Ok(UpstreamConn { conn, reused: false, tls, connect_time: Duration::ZERO, key });
        }
        let stream = connect(peer).await?;
        Ok(UpstreamConn {
            conn: Connection::H1(H1Conn::new(stream, ErrorSource::Upstream)),
            reused: false,
            tls,
            connect_time: Duration::ZERO,
            key,
        })
    }

    /// Returns a connection whose last exchange ended cleanly, for the next request to `peer`.
    pub fn release(&self, peer: &HttpPeer, conn: H1Conn) {
        self.release_to(peer.reuse_hash(), peer, conn);
    }

    /// [`Connector::release`] under the pool key [`Connector::get`] found it under
    /// ([`UpstreamConn`] carries it), without hashing the peer again.
    pub(crate) fn release_to(&self, key: u64, peer: &HttpPeer, mut conn: H1Conn) {
        if !conn.rbuf.is_empty() {
            return; // bytes nobody asked for: the connection is out of sync, never reuse it
        }
        conn.release_write_buffer();
        let idle = peer.options.idle_timeout.map(|t| Instant::now() + t);
        self.pool.put(key, conn, idle);
    }
}

/// Opens a new transport to `peer`: the TCP/UDS connect under the connect timeout, then (for a TLS
/// peer) the TLS handshake, all of it under the total connection timeout.
///
/// A failed handshake is [`ErrorKind::TlsHandshake`] (502) with the rustls reason as its cause and
/// no retry: the same peer would fail the same way (a hook may still set `retry`). A handshake
/// that runs out of time is a retryable [`ErrorKind::ConnectTimeout`], like a slow connect.
pub async fn connect(peer: &HttpPeer) -> Result<Stream> {
    let opts = &peer.options;
    // The TLS config first (cached after the first call): a bad CA file or client key is a
    // configuration error, not worth opening a socket for.
    let tls = match &opts.tls {
        Some(t) => Some((t, tls_setup(t, opts.alpn, &peer.address)?)),
        None => None,
    };
    let started = tokio::time::Instant::now();
    let limit = match (opts.connect_timeout, opts.total_connection_timeout) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    };
    let timed_out = |what: &str| {
        Error::new(ErrorKind::ConnectTimeout, ErrorSource::Upstream, format!("{what} {}", peer.address))
            .with_retry(true)
    };
    let fut = async {
        let mut stream = connect_l4(&peer.address).await?;
        if let Some(pp) = &opts.proxy_protocol {
            send_proxy_header(&mut stream, pp, &peer.address).await?;
        }
        Ok::<_, Box<Error>>(stream)
    };
    let stream = match limit {
        Some(t) => tokio::time::timeout(t, fut).await.map_err(|_| timed_out("connecting to"))??,
        None => fut.await?,
    };
    let Some((t, (config, name))) = tls else {
        return Ok(stream);
    };
    // The handshake gets what is left of the total budget (or the connect timeout without one).
    let deadline = opts.total_connection_timeout.or(opts.connect_timeout).map(|t| started + t);
    let fut = crate::tls::client::handshake(stream, config, name);
    let r = match deadline {
        Some(d) => tokio::time::timeout_at(d, fut).await.map_err(|_| timed_out("handshaking TLS with"))?,
        None => fut.await,
    };
    r.map_err(|e| {
        Error::new(
            ErrorKind::TlsHandshake,
            ErrorSource::Upstream,
            format!("connecting to {} over TLS (SNI {:?})", peer.address, t.sni),
        )
        .with_cause(e)
    })
}

/// Writes the PROXY header a peer asked for, before anything else (TLS included) goes out.
async fn send_proxy_header(
    stream: &mut Stream,
    pp: &crate::upstream::SendProxy,
    addr: &PeerAddress,
) -> Result<()> {
    use tokio::io::AsyncWriteExt;
    stream.write_all(&pp.encode()).await.map_err(|e| {
        // Nothing of a request went out: it may go elsewhere.
        Error::new(
            ErrorKind::ConnectError,
            ErrorSource::Upstream,
            format!("sending the PROXY header to {addr}"),
        )
        .with_cause(e)
        .with_retry(true)
    })
}

type TlsSetup = (Arc<rustls::ClientConfig>, rustls_pki_types::ServerName<'static>);

fn tls_setup(t: &crate::upstream::PeerTls, alpn: Alpn, addr: &PeerAddress) -> Result<TlsSetup> {
    let config_err = |e: std::io::Error| {
        Error::new(ErrorKind::TlsHandshake, ErrorSource::Upstream, format!("setting up TLS to {addr}"))
            .with_cause(e)
    };
    let config = crate::tls::client::client_config(t, alpn).map_err(config_err)?;
    let name = crate::tls::client::server_name(t, addr).map_err(config_err)?;
    Ok((config, name))
}

async fn connect_l4(addr: &PeerAddress) -> Result<Stream> {
    let r = match addr {
        PeerAddress::Inet(a) => TcpStream::connect(a).await.map(tcp),
        PeerAddress::Host(h, p) => TcpStream::connect((h.as_str(), *p)).await.map(tcp),
        PeerAddress::Unix(p) => UnixStream::connect(p).await.map(Stream::Unix),
    };
    r.map_err(|e| {
        let kind = match e.kind() {
            std::io::ErrorKind::ConnectionRefused => ErrorKind::ConnectRefused,
            _ => ErrorKind::ConnectError,
        };
        // Nothing was sent on a connection that never opened: any request may go elsewhere.
        Error::new(kind, ErrorSource::Upstream, format!("connecting to {addr}"))
            .with_cause(e)
            .with_retry(true)
    })
}

fn tcp(s: TcpStream) -> Stream {
    // Heads and small bodies are written whole; Nagle would only add latency.
    let _ = s.set_nodelay(true);
    Stream::Tcp(s)
}
