//! Zero-downtime upgrade by socket handover (Pingora's `transfer_fd`), and sockets passed by
//! systemd (`LISTEN_FDS`).
//!
//! The new process, started with `-u`, listens on `upgrade_sock` before it binds anything. On
//! SIGQUIT the running process connects there (retrying every 100 ms, a bounded number of times),
//! sends every listening socket with SCM_RIGHTS together with the key each endpoint is known by,
//! and waits for one byte of acknowledgement before it stops accepting. The sockets stay open the
//! whole time in one process or the other, so connections that arrive meanwhile wait in the
//! kernel's backlog instead of being refused. The new process puts the sockets in the
//! [`crate::listener::inherited`] table, where binding the same endpoints finds them.
//!
//! Message: a 4-byte big-endian length, then that many bytes of keys separated by `\n`, in the
//! order of the descriptors in the one SCM_RIGHTS control message.

use std::io::{self, IoSlice, IoSliceMut, Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use nix::sys::socket::{recvmsg, sendmsg, ControlMessage, ControlMessageOwned, MsgFlags};

use crate::listener::{inherited, TransportStack};

/// The most descriptors one SCM_RIGHTS message carries on Linux (SCM_MAX_FD).
const MAX_FDS: usize = 253;
/// How long apart connection attempts (old process) and accept polls (new process) are.
pub const RETRY_INTERVAL: Duration = Duration::from_millis(100);
/// How long the old process waits for the new one to acknowledge the sockets.
const ACK_TIMEOUT: Duration = Duration::from_secs(10);

fn other(msg: impl Into<String>) -> io::Error {
    io::Error::other(msg.into())
}

/// Old process: sends `stacks` to the new process listening on `sock`, trying to connect up to
/// `retries` times. On success every stack is marked handed over (its Unix socket file stays for
/// the new process) and the caller stops accepting.
pub fn send_listeners(sock: &Path, stacks: &[Arc<TransportStack>], retries: usize) -> io::Result<usize> {
    if stacks.len() > MAX_FDS {
        return Err(other(format!(
            "{} listening sockets: one handover carries at most {MAX_FDS}",
            stacks.len()
        )));
    }
    let mut stream = connect_with_retries(sock, retries)?;
    let keys: Vec<&str> = stacks.iter().map(|s| s.key()).collect();
    let payload = keys.join("\n");
    let mut msg = (payload.len() as u32).to_be_bytes().to_vec();
    msg.extend_from_slice(payload.as_bytes());
    let fds: Vec<RawFd> = stacks.iter().map(|s| s.as_fd().as_raw_fd()).collect();
    let cmsg = [ControlMessage::ScmRights(&fds)];
    let sent = sendmsg::<()>(stream.as_raw_fd(), &[IoSlice::new(&msg)], &cmsg, MsgFlags::empty(), None)?;
    // The descriptors went with the first byte; the rest of a long key list follows as plain data.
    stream.write_all(&msg[sent..])?;
    stream.set_read_timeout(Some(ACK_TIMEOUT))?;
    let mut ack = [0u8; 1];
    stream
        .read_exact(&mut ack)
        .map_err(|e| other(format!("the new process did not acknowledge the sockets: {e}")))?;
    for s in stacks {
        s.set_handed_over();
    }
    Ok(stacks.len())
}

fn connect_with_retries(sock: &Path, retries: usize) -> io::Result<UnixStream> {
    let mut last = None;
    for attempt in 0..retries.max(1) {
        if attempt > 0 {
            std::thread::sleep(RETRY_INTERVAL);
        }
        match UnixStream::connect(sock) {
            Ok(s) => return Ok(s),
            Err(e) => last = Some(e),
        }
    }
    let e = last.unwrap_or_else(|| other("no attempt"));
    Err(other(format!("no new process listens on {} ({retries} attempts): {e}", sock.display())))
}

/// New process: listens on `sock` (replacing a stale socket file) for up to `retries` periods of
/// 100 ms, receives the running process's listening sockets and adds them to the inherited
/// table. Returns how many arrived.
pub fn receive_listeners(sock: &Path, retries: usize) -> io::Result<usize> {
    let _ = std::fs::remove_file(sock);
    let listener =
        UnixListener::bind(sock).map_err(|e| other(format!("upgrade socket {}: {e}", sock.display())))?;
    // Removed however this ends: the next upgrade binds it afresh.
    let _cleanup = RemoveOnDrop(sock);
    listener.set_nonblocking(true)?;
    let deadline = Instant::now() + RETRY_INTERVAL * retries.max(1) as u32;
    let mut stream = loop {
        match listener.accept() {
            Ok((s, _)) => break s,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock && Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(10))
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                return Err(other(format!(
                    "no running process handed its sockets over on {} (send it SIGQUIT)",
                    sock.display()
                )))
            }
            Err(e) => return Err(e),
        }
    };
    stream.set_nonblocking(false)?;
    stream.set_read_timeout(Some(ACK_TIMEOUT))?;
    let (fds, mut data) = recv_with_fds(&stream)?;
    while data.len() < 4 {
        data.push(read_byte(&mut stream)?);
    }
    let len = u32::from_be_bytes([data[0], data[1], data[2], data[3]]) as usize;
    let mut payload = data.split_off(4);
    if payload.len() < len {
        let start = payload.len();
        payload.resize(len, 0);
        stream.read_exact(&mut payload[start..])?;
    }
    let keys = String::from_utf8(payload).map_err(|_| other("listener keys are not UTF-8"))?;
    let keys: Vec<String> =
        if keys.is_empty() { Vec::new() } else { keys.split('\n').map(str::to_owned).collect() };
    if keys.len() != fds.len() {
        return Err(other(format!("{} keys for {} sockets", keys.len(), fds.len())));
    }
    let n = fds.len();
    inherited::add(keys.into_iter().zip(fds));
    stream.write_all(b"1")?;
    Ok(n)
}

fn read_byte(s: &mut UnixStream) -> io::Result<u8> {
    let mut b = [0u8; 1];
    s.read_exact(&mut b)?;
    Ok(b[0])
}

/// One recvmsg: the data it brought and the descriptors of its SCM_RIGHTS message, owned.
fn recv_with_fds(stream: &UnixStream) -> io::Result<(Vec<OwnedFd>, Vec<u8>)> {
    let mut buf = vec![0u8; 64 * 1024];
    let mut cmsg = nix::cmsg_space!([RawFd; MAX_FDS]);
    let mut iov = [IoSliceMut::new(&mut buf)];
    let msg = recvmsg::<()>(stream.as_raw_fd(), &mut iov, Some(&mut cmsg), MsgFlags::MSG_CMSG_CLOEXEC)?;
    let mut fds = Vec::new();
    for c in msg.cmsgs()? {
        if let ControlMessageOwned::ScmRights(raw) = c {
            // SAFETY: the kernel has just installed these descriptors in our table for this
            // message; nothing else in the process knows or owns them.
            fds.extend(raw.into_iter().map(|fd| unsafe { OwnedFd::from_raw_fd(fd) }));
        }
    }
    let n = msg.bytes;
    buf.truncate(n);
    Ok((fds, buf))
}

struct RemoveOnDrop<'a>(&'a Path);

impl Drop for RemoveOnDrop<'_> {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(self.0);
    }
}

/// Takes the sockets systemd passed (socket activation: `LISTEN_PID` is this process,
/// `LISTEN_FDS` sockets from descriptor 3) into the inherited table, each under its local address
/// (`127.0.0.1:8080`, `unix:/run/x.sock`), where binding that address finds it. Returns how many.
pub fn inherit_systemd() -> io::Result<usize> {
    // Once per process: the descriptors are taken over, never twice.
    static DONE: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
    if DONE.swap(true, std::sync::atomic::Ordering::AcqRel) {
        return Ok(0);
    }
    let pid_ok =
        std::env::var("LISTEN_PID").ok().and_then(|p| p.parse::<u32>().ok()) == Some(std::process::id());
    let n: i32 = match std::env::var("LISTEN_FDS").ok().and_then(|n| n.parse().ok()) {
        Some(n) if pid_ok && n > 0 => n,
        _ => return Ok(0),
    };
    let mut fds = Vec::new();
    for raw in 3..3 + n {
        // SAFETY: systemd's contract (sd_listen_fds(3)): with LISTEN_PID naming this process,
        // descriptors 3..3+LISTEN_FDS are open sockets passed to it and owned by nobody else; we
        // take each once (this function runs once, from the command-line handling).
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        let sock = socket2::Socket::from(fd);
        let key = crate::listener::socket_key(&sock)?;
        sock.set_cloexec(true)?;
        fds.push((key, OwnedFd::from(sock)));
    }
    inherited::add(fds);
    Ok(n as usize)
}
