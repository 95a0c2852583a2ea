//! nginx and HAProxy run as real peers of a test, from their Debian packages (installed with
//! apt-get when missing), each in a temporary directory removed with it.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

/// A daemon started by a test; killed on drop.
pub struct Daemon {
    child: Child,
    pub dir: PathBuf,
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// `/usr/sbin/NAME`, installing Debian package `package` first when it is missing.
pub fn system_binary(name: &str, package: &str) -> PathBuf {
    let candidates =
        [PathBuf::from(format!("/usr/sbin/{name}")), PathBuf::from(format!("/usr/local/sbin/{name}"))];
    if let Some(p) = candidates.iter().find(|p| p.is_file()) {
        return p.clone();
    }
    let apt = |args: &[&str]| {
        Command::new("apt-get")
            .args(args)
            .env("DEBIAN_FRONTEND", "noninteractive")
            .status()
            .is_ok_and(|s| s.success())
    };
    // A fresh machine may have no package lists yet.
    let ok = apt(&["install", "-y", "-q", package])
        || (apt(&["update", "-q"]) && apt(&["install", "-y", "-q", package]));
    assert!(ok, "{name} is not installed and apt-get install {package} failed");
    candidates.iter().find(|p| p.is_file()).unwrap_or_else(|| panic!("{name} after apt-get install")).clone()
}

/// Ports free now on 127.0.0.1 (the daemon binds them a moment later).
pub fn free_ports(n: usize) -> Vec<u16> {
    let held: Vec<std::net::TcpListener> =
        (0..n).map(|_| std::net::TcpListener::bind("127.0.0.1:0").unwrap()).collect();
    held.iter().map(|l| l.local_addr().unwrap().port()).collect()
}

/// A fresh directory for a daemon named `tag`.
pub fn temp_dir(tag: &str) -> PathBuf {
    static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!("{tag}-{}-{n}", std::process::id()));
    std::fs::create_dir_all(dir.join("tmp")).unwrap();
    dir
}

/// Runs `bin args...` in `dir` and waits until `port` on 127.0.0.1 accepts connections.
pub async fn spawn(bin: &Path, args: &[&std::ffi::OsStr], dir: PathBuf, port: u16) -> Daemon {
    let child = Command::new(bin)
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start daemon");
    let daemon = Daemon { child, dir };
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    assert!(
        super::eventually(|| std::net::TcpStream::connect(addr).is_ok()).await,
        "{} did not listen",
        bin.display()
    );
    daemon
}

/// The `http` settings every test nginx needs to run unprivileged in `dir`.
pub fn nginx_http_common(dir: &Path) -> String {
    let d = dir.display();
    format!(
        "client_body_temp_path {d}/tmp; proxy_temp_path {d}/tmp; fastcgi_temp_path {d}/tmp; \
         uwsgi_temp_path {d}/tmp; scgi_temp_path {d}/tmp;"
    )
}

/// Starts nginx on `conf` (the text after `events`; `{dir}` is its directory), waiting for `port`.
pub async fn nginx(tag: &str, port: u16, conf: impl FnOnce(&Path) -> String) -> Daemon {
    let dir = temp_dir(tag);
    let d = dir.display();
    let text = format!(
        "daemon off; master_process off; pid {d}/nginx.pid; error_log {d}/error.log warn;\n\
         events {{ worker_connections 256; }}\n{}",
        conf(&dir)
    );
    let path = dir.join("nginx.conf");
    std::fs::write(&path, text).unwrap();
    let bin = system_binary("nginx", "nginx");
    let prefix = dir.clone();
    spawn(&bin, &["-p".as_ref(), prefix.as_os_str(), "-c".as_ref(), path.as_os_str()], dir, port).await
}

/// Starts HAProxy in the foreground on `conf`, waiting for `port`.
pub async fn haproxy(tag: &str, port: u16, conf: &str) -> Daemon {
    let dir = temp_dir(tag);
    let path = dir.join("haproxy.cfg");
    std::fs::write(&path, conf).unwrap();
    let bin = system_binary("haproxy", "haproxy");
    spawn(&bin, &["-db".as_ref(), "-f".as_ref(), path.as_os_str()], dir, port).await
}
