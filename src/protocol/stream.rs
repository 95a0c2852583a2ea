//! The byte stream under every connection: TCP or a Unix domain socket, optionally with TLS on top.
//!
//! One enum rather than a boxed trait object: the hot path stays monomorphic and a connection can
//! still be moved between the pool and a request without knowing its transport. The TLS variants
//! are boxed (a rustls session is a few hundred bytes) and wrap a `Stream` themselves, so TLS runs
//! over TCP and Unix sockets alike.

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
    /// The server side of a TLS session (a connection accepted on a TLS endpoint).
    TlsServer(Box<tokio_rustls::server::TlsStream<Stream>>),
    /// The client side of a TLS session (a connection to a TLS peer).
    TlsClient(Box<tokio_rustls::client::TlsStream<Stream>>),
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
            Stream::TlsServer(s) => s.get_ref().0.peer_addr(),
            Stream::TlsClient(s) => s.get_ref().0.peer_addr(),
        }
    }

    /// The local address, if the OS knows it.
    pub fn local_addr(&self) -> Option<SocketAddr> {
        match self {
            Stream::Tcp(s) => s.local_addr().ok().map(SocketAddr::Inet),
            Stream::Unix(s) => unix_addr(s.local_addr()),
            Stream::TlsServer(s) => s.get_ref().0.local_addr(),
            Stream::TlsClient(s) => s.get_ref().0.local_addr(),
        }
    }

    /// Whether TLS runs on this connection.
    pub fn is_tls(&self) -> bool {
        matches!(self, Stream::TlsServer(_) | Stream::TlsClient(_))
    }

    /// The ALPN protocol negotiated in the TLS handshake (`b"h2"`, `b"http/1.1"`), if any.
    pub fn alpn(&self) -> Option<&[u8]> {
        match self {
            Stream::TlsServer(s) => s.get_ref().1.alpn_protocol(),
            Stream::TlsClient(s) => s.get_ref().1.alpn_protocol(),
            _ => None,
        }
    }

    /// Whether HTTP/2 was negotiated by ALPN.
    pub fn is_h2(&self) -> bool {
        self.alpn() == Some(crate::tls::ALPN_H2)
    }

    /// The server name the client asked for (SNI), on a TLS connection we accepted.
    pub fn sni(&self) -> Option<&str> {
        match self {
            Stream::TlsServer(s) => s.get_ref().1.server_name(),
            _ => None,
        }
    }

    /// The TLS version in use.
    pub fn tls_version(&self) -> Option<crate::tls::TlsVersion> {
        let v = match self {
            Stream::TlsServer(s) => s.get_ref().1.protocol_version(),
            Stream::TlsClient(s) => s.get_ref().1.protocol_version(),
            _ => None,
        }?;
        match v {
            rustls::ProtocolVersion::TLSv1_2 => Some(crate::tls::TlsVersion::Tls12),
            rustls::ProtocolVersion::TLSv1_3 => Some(crate::tls::TlsVersion::Tls13),
            _ => None,
        }
    }

    /// The negotiated cipher suite's IANA name (`TLS13_AES_128_GCM_SHA256`), on a TLS connection.
    pub fn tls_cipher(&self) -> Option<&'static str> {
        let suite = match self {
            Stream::TlsServer(s) => s.get_ref().1.negotiated_cipher_suite(),
            Stream::TlsClient(s) => s.get_ref().1.negotiated_cipher_suite(),
            _ => None,
        }?;
        suite.suite().as_str()
    }

    /// The certificate chain the other side presented (a client certificate under mTLS, or the
    /// upstream's chain), end-entity first.
    pub fn peer_certificates(&self) -> Option<&[rustls_pki_types::CertificateDer<'static>]> {
        match self {
            Stream::TlsServer(s) => s.get_ref().1.peer_certificates(),
            Stream::TlsClient(s) => s.get_ref().1.peer_certificates(),
            _ => None,
        }
    }

    /// Waits for socket readiness to read. `None` for transports without it (TLS: rustls may
    /// hold decrypted bytes the socket does not show), which must be read the usual way.
    pub async fn readable(&self) -> Option<io::Result<()>> {
        match self {
            Stream::Tcp(s) => Some(s.readable().await),
            Stream::Unix(s) => Some(s.readable().await),
            _ => None,
        }
    }

    /// Polls for socket readiness to read, as [`Self::readable`] waits for it, but with the
    /// waker in the socket's reader slot: no waiter node, so the caller's future stays small.
    /// Only one task may use it at a time (it shares the slot with `poll_read`).
    pub fn poll_read_ready(&self, cx: &mut Context<'_>) -> Poll<Option<io::Result<()>>> {
        match self {
            Stream::Tcp(s) => s.poll_read_ready(cx).map(Some),
            Stream::Unix(s) => s.poll_read_ready(cx).map(Some),
            _ => Poll::Ready(None),
        }
    }

    /// Reads what is there without waiting (TCP and Unix sockets; `WouldBlock` otherwise).
    pub fn try_read_buf(&self, buf: &mut bytes::BytesMut) -> io::Result<usize> {
        match self {
            Stream::Tcp(s) => s.try_read_buf(buf),
            Stream::Unix(s) => s.try_read_buf(buf),
            _ => Err(io::ErrorKind::WouldBlock.into()),
        }
    }

    /// Non-blocking probe used before reusing a pooled connection: `true` when the peer closed it
    /// or sent bytes nobody asked for (either way the connection must not carry a new request).
    ///
    /// For TLS the underlying socket is peeked rather than read (a read would tear a record):
    /// pending bytes on an idle session are a close_notify alert or unsolicited data, and EOF is a
    /// close; either way the connection is not reused.
    pub fn is_closed_or_dirty(&self) -> bool {
        // Ask the reactor first: if no read event arrived since the socket last reported
        // WouldBlock (or a short read), nothing was sent and it was not closed, and no syscall is
        // needed. Only a socket the reactor calls readable is probed.
        if !self.reactor_says_readable() {
            return false;
        }
        let mut probe = [0u8; 1];
        let r = match self {
            Stream::Tcp(s) => s.try_read(&mut probe),
            Stream::Unix(s) => s.try_read(&mut probe),
            Stream::TlsServer(s) => return s.get_ref().0.peek_closed_or_dirty(),
            Stream::TlsClient(s) => return s.get_ref().0.peek_closed_or_dirty(),
        };
        !matches!(r, Err(ref e) if e.kind() == io::ErrorKind::WouldBlock)
    }

    /// Read readiness as the reactor knows it, without a syscall. A no-op waker is fine here: the
    /// connection is idle in the pool, and whoever takes it next polls with its own waker.
    fn reactor_says_readable(&self) -> bool {
        let mut cx = Context::from_waker(std::task::Waker::noop());
        match self {
            Stream::Tcp(s) => s.poll_read_ready(&mut cx).is_ready(),
            Stream::Unix(s) => s.poll_read_ready(&mut cx).is_ready(),
            Stream::TlsServer(s) => s.get_ref().0.reactor_says_readable(),
            Stream::TlsClient(s) => s.get_ref().0.reactor_says_readable(),
        }
    }

    /// For an idle connection: `Ready` once the peer closed it, reset it or sent bytes nobody asked
    /// for; else `Pending`, with `cx` woken on the next read event. Spurious readiness is cleared
    /// (the probe's WouldBlock goes through the reactor), so this never spins.
    pub(crate) fn poll_idle_event(&self, cx: &mut Context<'_>) -> Poll<()> {
        loop {
            let ready = match self {
                Stream::Tcp(s) => s.poll_read_ready(cx),
                Stream::Unix(s) => s.poll_read_ready(cx),
                Stream::TlsServer(s) => return s.get_ref().0.poll_idle_event(cx),
                Stream::TlsClient(s) => return s.get_ref().0.poll_idle_event(cx),
            };
            match ready {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Err(_)) => return Poll::Ready(()),
                Poll::Ready(Ok(())) if self.peek_closed_or_dirty() => return Poll::Ready(()),
                Poll::Ready(Ok(())) => {}
            }
        }
    }

    /// The probe of [`Self::is_closed_or_dirty`] without consuming anything. A WouldBlock clears
    /// the reactor's readiness, so the next readiness poll waits for a real event.
    fn peek_closed_or_dirty(&self) -> bool {
        // The socket is non-blocking (tokio's), so the peek returns WouldBlock when nothing waits.
        let peek = |sock: socket2::SockRef<'_>| {
            let mut probe = [std::mem::MaybeUninit::<u8>::uninit(); 1];
            sock.peek(&mut probe)
        };
        let r = match self {
            Stream::Tcp(s) => s.try_io(tokio::io::Interest::READABLE, || peek(socket2::SockRef::from(s))),
            Stream::Unix(s) => s.try_io(tokio::io::Interest::READABLE, || peek(socket2::SockRef::from(s))),
            Stream::TlsServer(s) => return s.get_ref().0.peek_closed_or_dirty(),
            Stream::TlsClient(s) => return s.get_ref().0.peek_closed_or_dirty(),
        };
        match r {
            Err(e) => !matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted),
            Ok(_) => true, // 0: EOF; 1: bytes pending on an idle connection
        }
    }
}

macro_rules! delegate {
    ($self:ident, $s:ident => $e:expr) => {
        match $self.get_mut() {
            Stream::Tcp($s) => $e,
            Stream::Unix($s) => $e,
            Stream::TlsServer($s) => $e,
            Stream::TlsClient($s) => $e,
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
