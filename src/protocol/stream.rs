//! The byte stream under every connection: TCP or a Unix domain socket (TLS joins here later).
//!
//! One enum rather than a boxed trait object: the hot path stays monomorphic and a connection can
//! still be moved between the pool and a request without knowing its transport.

use std::io;
use std::net::SocketAddr as InetAddr;
use std::path::PathBuf;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpStream, UnixStream};

/// A connected transport.
#[derive(Debug)]
pub enum Stream {
    /// TCP over IPv4 or IPv6.
    Tcp(TcpStream),
    /// A Unix domain stream socket.
    Unix(UnixStream),
}

/// An address of either kind, for logs and the session accessors.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum SocketAddr {
    /// An IP address and port.
    Inet(InetAddr),
    /// A Unix socket path (empty for unnamed client sockets).
    Unix(PathBuf),
}

impl std::fmt::Display for SocketAddr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SocketAddr::Inet(a) => write!(f, "{a}"),
            SocketAddr::Unix(p) if p.as_os_str().is_empty() => write!(f, "unix:"),
            SocketAddr::Unix(p) => write!(f, "unix:{}", p.display()),
        }
    }
}

fn unix_addr(a: io::Result<tokio::net::unix::SocketAddr>) -> Option<SocketAddr> {
    let a = a.ok()?;
    Some(SocketAddr::Unix(a.as_pathname().map(PathBuf::from).unwrap_or_default()))
}

impl Stream {
    /// The remote address, if the OS knows it.
    pub fn peer_addr(&self) -> Option<SocketAddr> {
        match self {
            Stream::Tcp(s) => s.peer_addr().ok().map(SocketAddr::Inet),
            Stream::Unix(s) => unix_addr(s.peer_addr()),
        }
    }

    /// The local address, if the OS knows it.
    pub fn local_addr(&self) -> Option<SocketAddr> {
        match self {
            Stream::Tcp(s) => s.local_addr().ok().map(SocketAddr::Inet),
            Stream::Unix(s) => unix_addr(s.local_addr()),
        }
    }

    /// Non-blocking probe used before reusing a pooled connection: `true` when the peer closed it
    /// or sent bytes nobody asked for (either way the connection must not carry a new request).
    pub fn is_closed_or_dirty(&self) -> bool {
        let mut probe = [0u8; 1];
        let r = match self {
            Stream::Tcp(s) => s.try_read(&mut probe),
            Stream::Unix(s) => s.try_read(&mut probe),
        };
        !matches!(r, Err(ref e) if e.kind() == io::ErrorKind::WouldBlock)
    }
}

macro_rules! delegate {
    ($self:ident, $s:ident => $e:expr) => {
        match $self.get_mut() {
            Stream::Tcp($s) => $e,
            Stream::Unix($s) => $e,
        }
    };
}

impl AsyncRead for Stream {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        delegate!(self, s => Pin::new(s).poll_read(cx, buf))
    }
}

impl AsyncWrite for Stream {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        delegate!(self, s => Pin::new(s).poll_write(cx, buf))
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        delegate!(self, s => Pin::new(s).poll_write_vectored(cx, bufs))
    }

    fn is_write_vectored(&self) -> bool {
        true
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        delegate!(self, s => Pin::new(s).poll_flush(cx))
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        delegate!(self, s => Pin::new(s).poll_shutdown(cx))
    }
}
