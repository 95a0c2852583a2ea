//! Looking at a connection's first bytes without taking them: the PROXY header reader and the
//! L4 proxy's ClientHello peek both decide what a connection is before anyone reads from it.

use std::io;

use tokio::io::Interest;

use crate::protocol::stream::Stream;

/// Peeks into `buf` once more bytes than `seen` are there (or the peer closed: 0), and returns
/// how many are. A peek that finds no new bytes reports WouldBlock to the reactor, so the task
/// sleeps until the next read event instead of spinning on bytes it has already seen.
pub(crate) async fn peek_more(stream: &Stream, buf: &mut [u8], seen: usize) -> io::Result<usize> {
    let peek = |sock: socket2::SockRef<'_>, buf: &mut [u8]| -> io::Result<usize> {
        // SAFETY: `[u8]` and `[MaybeUninit<u8>]` have the same layout, and peek only writes.
        let uninit = unsafe { &mut *(buf as *mut [u8] as *mut [std::mem::MaybeUninit<u8>]) };
        match sock.peek(uninit)? {
            0 => Ok(0),
            n if n > seen => Ok(n),
            _ if seen == buf.len() => Ok(seen),
            _ => Err(io::ErrorKind::WouldBlock.into()),
        }
    };
    // After a PROXY header, the socket under it (the header is consumed already).
    let stream = match stream {
        Stream::Proxied(p) => &p.inner,
        s => s,
    };
    loop {
        // A peer that sent some bytes and closed shows the same bytes to every peek: the closed
        // flag of the readiness is what tells that no more will come (it stays set, so this
        // never waits again).
        let r = match stream {
            Stream::Tcp(s) => {
                let closed = s.ready(Interest::READABLE).await?.is_read_closed();
                (s.try_io(Interest::READABLE, || peek(socket2::SockRef::from(s), buf)), closed)
            }
            Stream::Unix(s) => {
                let closed = s.ready(Interest::READABLE).await?.is_read_closed();
                (s.try_io(Interest::READABLE, || peek(socket2::SockRef::from(s), buf)), closed)
            }
            _ => return Err(io::Error::other("only a plain socket can be peeked (before TLS)")),
        };
        match r {
            (Err(e), true) if e.kind() == io::ErrorKind::WouldBlock => {
                return Err(io::ErrorKind::UnexpectedEof.into())
            }
            (Err(e), false) if e.kind() == io::ErrorKind::WouldBlock => continue,
            (r, _) => return r,
        }
    }
}
