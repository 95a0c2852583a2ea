//! The relay's zero-copy direction on Linux, for TCP to TCP: splice(2) moves bytes from the
//! reading socket into a pipe and from the pipe into the writing socket without copying them
//! through user space. Same contract as [`super::relay::Half`]: a fixed amount in flight (the
//! pipe's), half-close carried through.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::task::{ready, Context, Poll};

use tokio::io::Interest;
use tokio::net::TcpStream;

use super::relay::Direction;
use crate::protocol::stream::Stream;

/// One direction through a pipe.
pub(crate) struct SpliceHalf {
    pipe_r: OwnedFd,
    pipe_w: OwnedFd,
    /// Bytes in the pipe, not yet written out.
    in_pipe: usize,
    chunk: usize,
    eof: bool,
    shut: bool,
    bytes: u64,
}

fn splice(from: RawFd, to: RawFd, len: usize) -> io::Result<usize> {
    // SAFETY: plain syscall on descriptors the caller owns; NULL offsets (sockets and pipes).
    let n = unsafe {
        libc::splice(
            from,
            std::ptr::null_mut(),
            to,
            std::ptr::null_mut(),
            len,
            libc::SPLICE_F_MOVE | libc::SPLICE_F_NONBLOCK,
        )
    };
    if n < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(n as usize)
    }
}

impl SpliceHalf {
    /// A pipe of about `size` bytes (the kernel rounds to pages; the default 64 KiB if refused).
    pub(crate) fn new(size: usize) -> io::Result<Self> {
        let mut fds = [0; 2];
        // SAFETY: `fds` has room for the two descriptors pipe2 writes.
        if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC | libc::O_NONBLOCK) } != 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: both descriptors were just created and are owned here only.
        let (pipe_r, pipe_w) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
        // SAFETY: fcntl on our own pipe; failure leaves the default size, which is fine.
        let got = unsafe { libc::fcntl(pipe_w.as_raw_fd(), libc::F_SETPIPE_SZ, size as libc::c_int) };
        let chunk = if got > 0 { got as usize } else { 64 * 1024 };
        Ok(SpliceHalf { pipe_r, pipe_w, in_pipe: 0, chunk, eof: false, shut: false, bytes: 0 })
    }
}

fn tcp(s: &Stream) -> io::Result<&TcpStream> {
    match s {
        Stream::Tcp(t) => Ok(t),
        _ => Err(io::Error::other("splice needs TCP on both sides")),
    }
}

impl Direction for SpliceHalf {
    fn bytes(&self) -> u64 {
        self.bytes
    }

    fn poll_copy(
        &mut self,
        cx: &mut Context<'_>,
        from: &mut Stream,
        to: &mut Stream,
        moved: &mut bool,
    ) -> Poll<io::Result<()>> {
        let (r, w) = (tcp(from)?, tcp(to)?);
        loop {
            // Filled only when empty: EAGAIN then means the socket has nothing, not a full pipe.
            if self.in_pipe == 0 && !self.eof {
                ready!(r.poll_read_ready(cx))?;
                match r
                    .try_io(Interest::READABLE, || splice(r.as_raw_fd(), self.pipe_w.as_raw_fd(), self.chunk))
                {
                    Ok(0) => self.eof = true,
                    Ok(n) => self.in_pipe = n,
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                    Err(e) => return Poll::Ready(Err(e)),
                }
            }
            while self.in_pipe > 0 {
                ready!(w.poll_write_ready(cx))?;
                match w.try_io(Interest::WRITABLE, || {
                    splice(self.pipe_r.as_raw_fd(), w.as_raw_fd(), self.in_pipe)
                }) {
                    Ok(n) => {
                        self.in_pipe -= n;
                        self.bytes += n as u64;
                        *moved = true;
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                    Err(e) => return Poll::Ready(Err(e)),
                }
            }
            if self.eof {
                if !self.shut {
                    socket2::SockRef::from(w).shutdown(std::net::Shutdown::Write)?;
                    self.shut = true;
                }
                return Poll::Ready(Ok(()));
            }
        }
    }
}
