//! Listeners (Pingora's `listeners/`): endpoints a service accepts connections on. Each bound
//! endpoint becomes a [`TransportStack`] whose accept loop runs as its own task.
//!
//! A TLS endpoint's stack carries a [`TlsAcceptor`]. The accept loop only accepts; the TLS
//! handshake runs (under the acceptor's time limit) in the connection's own task, so a slow or
//! silent client never holds up other accepts.
//!
//! Endpoints are bound when they are added, so a bad address fails at configuration time and a
//! port of 0 is known before the server starts. Binding takes a socket [`inherited`] from the
//! process being upgraded (or from systemd) when one listened on the same endpoint, so an upgraded
//! process binds nothing twice; each stack keeps the key it is known by for the next handover.

pub mod inherited;

use std::io;
use std::net::SocketAddr as InetAddr;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use socket2::{Domain, Socket, Type};

use crate::protocol::proxy_protocol::accept::{read_header, Refusal};
use crate::protocol::proxy_protocol::AcceptPolicy;
use crate::protocol::stream::{Proxied, SocketAddr, Stream};
use crate::tls::TlsAcceptor;

const BACKLOG: i32 = 4096;

/// A bound, listening endpoint (not yet attached to a runtime).
#[derive(Debug)]
pub struct TransportStack {
    listener: StdListener,
    /// Unix socket file we created and remove on drop.
    unlink: Option<PathBuf>,
    /// The TLS configuration of a TLS endpoint.
    tls: Option<Arc<TlsAcceptor>>,
    /// The endpoint as asked for (`127.0.0.1:0`, `unix:/path`): what a new process asks for
    /// when it takes this socket over.
    key: String,
    /// Set once the socket went to a new process: its Unix socket file is no longer ours to remove.
    handed_over: AtomicBool,
    /// Whether connections begin with a PROXY header, and from whom one is accepted.
    proxy_protocol: Option<Arc<AcceptPolicy>>,
}

#[derive(Debug)]
enum StdListener {
    Tcp(std::net::TcpListener),
    Unix(std::os::unix::net::UnixListener),
}

impl TransportStack {
    /// Binds a TCP endpoint (IPv4 or IPv6). IPv6 sockets are v6-only so `[::]` and `0.0.0.0` can
    /// both be bound on one port.
    pub fn bind_tcp(addr: InetAddr) -> io::Result<Self> {
        let key = addr.to_string();
        if let Some(fd) = inherited::take(&key) {
            return Self::adopt(fd, key, None);
        }
        let socket = Socket::new(Domain::for_address(addr), Type::STREAM, None)?;
        if addr.is_ipv6() {
            socket.set_only_v6(true)?;
        }
        socket.set_reuse_address(true)?;
        socket.set_nonblocking(true)?;
        socket.bind(&addr.into())?;
        socket.listen(BACKLOG)?;
        Ok(Self::new(StdListener::Tcp(socket.into()), key, None))
    }

    fn new(listener: StdListener, key: String, unlink: Option<PathBuf>) -> Self {
        TransportStack {
            listener,
            unlink,
            tls: None,
            key,
            handed_over: AtomicBool::new(false),
            proxy_protocol: None,
        }
    }

    /// Binds a Unix domain socket, replacing a stale socket file left by a dead process.
    pub fn bind_unix(path: &Path) -> io::Result<Self> {
        let key = format!("unix:{}", path.display());
        if let Some(fd) = inherited::take(&key) {
            return Self::adopt(fd, key, Some(path.to_owned()));
        }
        if let Ok(meta) = std::fs::symlink_metadata(path) {
            use std::os::unix::fs::FileTypeExt;
            if !meta.file_type().is_socket() {
                return Err(io::Error::new(io::ErrorKind::AlreadyExists, "path exists and is not a socket"));
            }
            if std::os::unix::net::UnixStream::connect(path).is_ok() {
                return Err(io::Error::new(io::ErrorKind::AddrInUse, "a live server listens on this socket"));
            }
            std::fs::remove_file(path)?;
        }
        let l = std::os::unix::net::UnixListener::bind(path)?;
        l.set_nonblocking(true)?;
        Ok(Self::new(StdListener::Unix(l), key, Some(path.to_owned())))
    }

    /// Adopts an already listening socket (inherited from a previous process or the host), known
    /// by its local address.
    pub fn from_fd(fd: OwnedFd) -> io::Result<Self> {
        let key = socket_key(&Socket::from(fd.try_clone()?))?;
        Self::adopt(fd, key, None)
    }

    fn adopt(fd: OwnedFd, key: String, unlink: Option<PathBuf>) -> io::Result<Self> {
        let socket = Socket::from(fd);
        socket.set_nonblocking(true)?;
        let listener = match socket.local_addr()?.as_socket() {
            Some(_) => StdListener::Tcp(socket.into()),
            None => StdListener::Unix(socket.into()),
        };
        Ok(Self::new(listener, key, unlink))
    }

    /// The endpoint as asked for, the key a new process takes this socket over by.
    pub fn key(&self) -> &str {
        &self.key
    }

    /// The socket itself, to send to a new process during an upgrade.
    pub fn as_fd(&self) -> std::os::fd::BorrowedFd<'_> {
        use std::os::fd::AsFd;
        match &self.listener {
            StdListener::Tcp(l) => l.as_fd(),
            StdListener::Unix(l) => l.as_fd(),
        }
    }

    /// Marks the socket as taken over by a new process: its Unix socket file stays.
    pub fn set_handed_over(&self) {
        self.handed_over.store(true, Ordering::Release);
    }

    /// Makes this a TLS endpoint: every accepted connection is handshaken with `tls` first.
    pub fn with_tls(mut self, tls: TlsAcceptor) -> Self {
        self.tls = Some(Arc::new(tls));
        self
    }

    /// Reads a PROXY header off every accepted connection, before TLS, as `policy` says.
    pub fn set_proxy_protocol(&mut self, policy: Option<AcceptPolicy>) {
        self.proxy_protocol = policy.map(Arc::new);
    }

    /// The endpoint's PROXY protocol setting.
    pub fn proxy_protocol(&self) -> Option<&Arc<AcceptPolicy>> {
        self.proxy_protocol.as_ref()
    }

    /// The TLS configuration, on a TLS endpoint.
    pub fn tls(&self) -> Option<&Arc<TlsAcceptor>> {
        self.tls.as_ref()
    }

    /// Where this endpoint listens.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        Ok(match &self.listener {
            StdListener::Tcp(l) => SocketAddr::Inet(l.local_addr()?),
            StdListener::Unix(l) => {
                SocketAddr::Unix(l.local_addr()?.as_pathname().map(PathBuf::from).unwrap_or_default())
            }
        })
    }

    /// The listening socket's descriptor (to hand to a new process during an upgrade).
    pub fn raw_fd(&self) -> RawFd {
        match &self.listener {
            StdListener::Tcp(l) => l.as_raw_fd(),
            StdListener::Unix(l) => l.as_raw_fd(),
        }
    }

    /// A tokio listener on the current runtime sharing this socket. Every runtime of a service
    /// that does not steal work gets its own, so connections stay on the runtime that accepted them.
    /// `proxy_protocol`: the service's PROXY setting, for an endpoint without one of its own.
    pub fn attach(&self, proxy_protocol: Option<&Arc<AcceptPolicy>>) -> io::Result<Listener> {
        let inner = match &self.listener {
            StdListener::Tcp(l) => ListenerInner::Tcp(tokio::net::TcpListener::from_std(l.try_clone()?)?),
            StdListener::Unix(l) => ListenerInner::Unix(tokio::net::UnixListener::from_std(l.try_clone()?)?),
        };
        let proxy_protocol = self.proxy_protocol.clone().or_else(|| proxy_protocol.cloned());
        Ok(Listener { inner, tls: self.tls.clone(), proxy_protocol })
    }
}

/// The key of a listening socket found by its local address: `ip:port` or `unix:/path`.
pub fn socket_key(socket: &Socket) -> io::Result<String> {
    let addr = socket.local_addr()?;
    Ok(match addr.as_socket() {
        Some(a) => a.to_string(),
        None => format!("unix:{}", addr.as_pathname().map(|p| p.display().to_string()).unwrap_or_default()),
    })
}

impl Drop for TransportStack {
    fn drop(&mut self) {
        if self.handed_over.load(Ordering::Acquire) {
            return;
        }
        if let Some(p) = &self.unlink {
            let _ = std::fs::remove_file(p);
        }
    }
}

/// A listener attached to a runtime.
#[derive(Debug)]
pub struct Listener {
    inner: ListenerInner,
    tls: Option<Arc<TlsAcceptor>>,
    proxy_protocol: Option<Arc<AcceptPolicy>>,
}

#[derive(Debug)]
enum ListenerInner {
    Tcp(tokio::net::TcpListener),
    Unix(tokio::net::UnixListener),
}

impl Listener {
    /// Accepts one connection (without any handshake: see [`Accepted::handshake`]).
    pub async fn accept(&self) -> io::Result<Accepted> {
        let stream = match &self.inner {
            ListenerInner::Tcp(l) => {
                let (s, _) = l.accept().await?;
                let _ = s.set_nodelay(true);
                Stream::Tcp(s)
            }
            ListenerInner::Unix(l) => Stream::Unix(l.accept().await?.0),
        };
        Ok(Accepted { stream, tls: self.tls.clone(), proxy_protocol: self.proxy_protocol.clone() })
    }
}

/// A connection just accepted, before any handshake.
#[derive(Debug)]
pub struct Accepted {
    stream: Stream,
    tls: Option<Arc<TlsAcceptor>>,
    proxy_protocol: Option<Arc<AcceptPolicy>>,
}

/// Why a connection never reached the app.
#[derive(Debug)]
pub enum HandshakeError {
    /// Its PROXY header was missing, malformed, untrusted or late (the socket's peer address).
    Proxy(Refusal, Option<SocketAddr>),
    /// The TLS handshake failed.
    Tls(io::Error),
}

impl std::fmt::Display for HandshakeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            HandshakeError::Proxy(r, Some(a)) => write!(f, "{r}, from {a}: connection closed"),
            HandshakeError::Proxy(r, None) => write!(f, "{r}: connection closed"),
            HandshakeError::Tls(e) => write!(f, "TLS handshake failed: {e}"),
        }
    }
}

impl Accepted {
    /// Whether anything is read before the app gets the stream (a PROXY header, a TLS handshake).
    pub fn needs_handshake(&self) -> bool {
        self.tls.is_some() || self.proxy_protocol.is_some()
    }

    /// The stream ready for the app: after the TLS handshake (bounded by the endpoint's
    /// handshake timeout) on a TLS endpoint, as accepted otherwise. Run it in the connection's task.
    ///
    /// The handshake's state (a whole rustls connection) is boxed: inline, it would size every
    /// connection task for it, and an idle plaintext connection would pay for TLS it never did.
    pub async fn handshake(self) -> Result<Stream, HandshakeError> {
        let mut stream = self.stream;
        if let Some(policy) = &self.proxy_protocol {
            let peer = stream.peer_addr();
            match Box::pin(read_header(&mut stream, policy)).await {
                Ok(Some(header)) => {
                    stream = Stream::Proxied(Box::new(Proxied { inner: stream, header: Arc::new(header) }))
                }
                Ok(None) => {}
                Err(r) => return Err(HandshakeError::Proxy(r, peer)),
            }
        }
        match self.tls {
            Some(tls) => Box::pin(tls.handshake(stream)).await.map_err(HandshakeError::Tls),
            None => Ok(stream),
        }
    }
}
