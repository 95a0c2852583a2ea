//! Daemon mode, pid file, privilege drop and readiness notification.
//!
//! `-d` starts the same program again in the background (the kernel's `/proc/self/exe` with this
//! process's own command line) rather than forking in place: a Go host is multithreaded from its
//! first instruction and a Python host may be, and a forked copy of a multithreaded process may
//! only call async-signal-safe functions until it execs. The child starts fresh, so it has no
//! runtime thread of ours (nor the host's) when it detaches. The parent waits until the child is
//! ready or has failed and exits with its status: readiness arrives as systemd's `READY=1` on a
//! datagram socket the parent passes as `NOTIFY_SOCKET`, the same message a `Type=notify` unit
//! gets, so one code path serves both.

use std::io;
use std::os::unix::net::UnixDatagram;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Set in the daemon child's environment: the child detaches instead of starting another one.
const CHILD_ENV: &str = "LIBPROXY_DAEMON_CHILD";
/// How long the parent waits for the child to be ready.
const READY_TIMEOUT: Duration = Duration::from_secs(120);

/// Whether this process is the background child of `-d`.
pub fn is_daemon_child() -> bool {
    std::env::var_os(CHILD_ENV).is_some()
}

/// Parent side of `-d`: starts this program again in the background with the same command line
/// and waits until it is ready (0) or has exited (its status, at least 1). The caller exits
/// with the status returned.
pub fn spawn_and_wait() -> io::Result<i32> {
    let cmdline = std::fs::read("/proc/self/cmdline")?;
    let mut argv = cmdline.split(|b| *b == 0).filter(|a| !a.is_empty()).map(|a| {
        use std::os::unix::ffi::OsStrExt;
        std::ffi::OsStr::from_bytes(a).to_owned()
    });
    let argv0 = argv.next().unwrap_or_default();
    let ready_path =
        std::env::temp_dir().join(format!("libproxy-ready-{}-{}.sock", std::process::id(), nanos()));
    let ready = UnixDatagram::bind(&ready_path)?;
    let _cleanup = RemoveOnDrop(ready_path.clone());
    ready.set_read_timeout(Some(Duration::from_millis(100)))?;
    let mut child = Command::new("/proc/self/exe")
        .arg0(argv0)
        .args(argv)
        .env(CHILD_ENV, "1")
        .env("NOTIFY_SOCKET", &ready_path)
        .stdin(Stdio::null())
        .spawn()?;
    let deadline = Instant::now() + READY_TIMEOUT;
    let mut buf = [0u8; 512];
    loop {
        if let Ok(n) = ready.recv(&mut buf) {
            if buf[..n].split(|b| *b == b'\n').any(|l| l == b"READY=1") {
                return Ok(0);
            }
        }
        if let Some(status) = child.try_wait()? {
            return Ok(status.code().filter(|c| *c != 0).unwrap_or(1));
        }
        if Instant::now() > deadline {
            return Err(io::Error::other(format!(
                "the daemon (pid {}) did not become ready within {} s",
                child.id(),
                READY_TIMEOUT.as_secs()
            )));
        }
    }
}

fn nanos() -> u128 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos())
}

/// Child side of `-d`: a session of its own (no controlling terminal), stdin from /dev/null,
/// stdout and stderr appended to `error_log` (Pingora's meaning: where the server's output goes;
/// /dev/null without one).
pub fn detach(error_log: Option<&Path>) -> io::Result<()> {
    nix::unistd::setsid()?;
    let null = std::fs::File::open("/dev/null")?;
    nix::unistd::dup2_stdin(&null)?;
    let out = match error_log {
        Some(p) => std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(p)
            .map_err(|e| io::Error::new(e.kind(), format!("error_log {}: {e}", p.display())))?,
        None => std::fs::OpenOptions::new().write(true).open("/dev/null")?,
    };
    nix::unistd::dup2_stdout(&out)?;
    nix::unistd::dup2_stderr(&out)?;
    Ok(())
}

/// Tells whoever waits (the `-d` parent, or systemd with `Type=notify`) that the server serves.
/// Connected before the privileges are dropped (the parent's socket is root's), used after.
#[derive(Debug)]
pub struct Notifier(UnixDatagram);

impl Notifier {
    /// Connects to `NOTIFY_SOCKET`, if set.
    pub fn connect() -> io::Result<Option<Notifier>> {
        let Some(path) = std::env::var_os("NOTIFY_SOCKET") else { return Ok(None) };
        let sock = UnixDatagram::unbound()?;
        if let Some(name) = path.as_encoded_bytes().strip_prefix(b"@") {
            use std::os::linux::net::SocketAddrExt;
            sock.connect_addr(&std::os::unix::net::SocketAddr::from_abstract_name(name)?)?;
        } else {
            sock.connect(&path)?;
        }
        Ok(Some(Notifier(sock)))
    }

    /// `READY=1`, with `MAINPID` so that systemd follows an upgrade to the new process (with
    /// `NotifyAccess=all`).
    pub fn ready(&self) -> io::Result<()> {
        self.0.send(format!("READY=1\nMAINPID={}\n", std::process::id()).as_bytes()).map(drop)
    }
}

/// A pid file written atomically (a temporary file renamed over it, so a reader never sees it
/// half written) and removed on drop if it still names this process: after an upgrade it names
/// the new process, which the old one must not undo.
#[derive(Debug)]
pub struct PidFile(PathBuf);

impl PidFile {
    /// Writes this process's pid to `path`.
    pub fn write(path: &Path) -> io::Result<PidFile> {
        let tmp = path.with_extension(format!("tmp.{}", std::process::id()));
        std::fs::write(&tmp, format!("{}\n", std::process::id()))
            .and_then(|()| std::fs::rename(&tmp, path))
            .map_err(|e| {
                let _ = std::fs::remove_file(&tmp);
                io::Error::new(e.kind(), format!("pid_file {}: {e}", path.display()))
            })?;
        Ok(PidFile(path.to_owned()))
    }
}

impl Drop for PidFile {
    fn drop(&mut self) {
        let ours = std::fs::read_to_string(&self.0).is_ok_and(|s| s.trim() == std::process::id().to_string());
        if ours {
            let _ = std::fs::remove_file(&self.0);
        }
    }
}

/// Runs as `user` and `group` from now on (the listeners are bound). The group defaults to the
/// user's; supplementary groups become the user's. `own` (the pid file) is given to them first,
/// so that the process can still remove it at exit. Nothing to do when neither is set; an error
/// when a change is asked for and the process may not make it.
pub fn drop_privileges(user: Option<&str>, group: Option<&str>, own: &[&Path]) -> io::Result<()> {
    use nix::unistd::{Group, User};
    let to_io = |e: nix::Error| io::Error::from(e);
    let user = match user {
        Some(name) => Some(User::from_name(name).map_err(to_io)?.ok_or_else(|| unknown("user", name))?),
        None => None,
    };
    let gid = match group {
        Some(name) => Some(Group::from_name(name).map_err(to_io)?.ok_or_else(|| unknown("group", name))?.gid),
        None => user.as_ref().map(|u| u.gid),
    };
    let Some(gid) = gid else { return Ok(()) };
    if nix::unistd::getegid() != gid || user.as_ref().is_some_and(|u| u.uid != nix::unistd::geteuid()) {
        for p in own {
            nix::unistd::chown(*p, user.as_ref().map(|u| u.uid), Some(gid))
                .map_err(|e| denied("owner of the pid file", e))?;
        }
        if let Some(u) = &user {
            let name = std::ffi::CString::new(u.name.clone()).map_err(io::Error::other)?;
            nix::unistd::initgroups(&name, gid).map_err(|e| denied("supplementary groups", e))?;
        }
        nix::unistd::setgid(gid).map_err(|e| denied("group", e))?;
        if let Some(u) = &user {
            nix::unistd::setuid(u.uid).map_err(|e| denied("user", e))?;
        }
    }
    Ok(())
}

fn unknown(what: &str, name: &str) -> io::Error {
    io::Error::new(io::ErrorKind::NotFound, format!("no {what} named {name:?}"))
}

fn denied(what: &str, e: nix::Error) -> io::Error {
    io::Error::new(io::Error::from(e).kind(), format!("cannot switch {what}: {e}"))
}

struct RemoveOnDrop(PathBuf);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pid_file_names_us_and_goes_only_while_it_does() {
        let dir = std::env::temp_dir().join(format!("lp-pid-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("p.pid");
        let pid = PidFile::write(&path).unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), format!("{}\n", std::process::id()));
        assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 1, "the temporary file was renamed");
        drop(pid);
        assert!(!path.exists());

        // After an upgrade the file names the new process: the old one leaves it.
        let pid = PidFile::write(&path).unwrap();
        std::fs::write(&path, "1\n").unwrap();
        drop(pid);
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "1\n");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn no_user_or_group_changes_nothing() {
        drop_privileges(None, None, &[]).unwrap();
        let e = drop_privileges(Some("no-such-user-libproxy"), None, &[]).unwrap_err();
        assert!(e.to_string().contains("no user named"), "{e}");
    }
}
