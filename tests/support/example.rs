//! The example proxy binary (`examples/rust/proxy.rs`) as a child process: for what only a real
//! process shows (signals, its descriptor limit).

use std::net::SocketAddr;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The example's path, built first when missing. Call it outside `within`: a build under load can
/// take longer than a test may.
pub fn binary() -> PathBuf {
    // target/<profile>/deps/<test> → target/<profile>/examples/rust_proxy
    let exe = std::env::current_exe().unwrap();
    let profile_dir = exe.parent().unwrap().parent().unwrap().to_path_buf();
    let bin = profile_dir.join("examples").join("rust_proxy");
    if !bin.exists() {
        let status = Command::new(env!("CARGO")).args(["build", "--example", "rust_proxy"]).status().unwrap();
        assert!(status.success(), "building the example failed");
    }
    bin
}

/// How to start the example.
#[derive(Default)]
pub struct Options {
    /// Extra environment (`PROXY_MAX_CONNECTIONS`, ...).
    pub env: Vec<(&'static str, String)>,
    /// RLIMIT_NOFILE of the child, when set.
    pub nofile: Option<u64>,
}

/// A running example, killed when dropped.
pub struct Example {
    pub child: Child,
    pub addr: SocketAddr,
}

impl Drop for Example {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> SocketAddr {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap()
}

/// Starts the example forwarding to `upstream` and waits until it accepts.
pub async fn start(bin: &std::path::Path, upstream: SocketAddr, opts: Options) -> Example {
    let addr = free_port();
    let mut cmd = Command::new(bin);
    cmd.args([addr.to_string(), upstream.to_string()])
        .env("PROXY_QUIET", "1")
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    for (k, v) in &opts.env {
        cmd.env(k, v);
    }
    if let Some(n) = opts.nofile {
        // SAFETY: setrlimit(2) is async-signal-safe, as a pre_exec closure must be.
        unsafe {
            cmd.pre_exec(move || {
                let lim = libc::rlimit { rlim_cur: n, rlim_max: n };
                if libc::setrlimit(libc::RLIMIT_NOFILE, &lim) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
    }
    let child = cmd.spawn().unwrap();
    let ex = Example { child, addr };
    let deadline = Instant::now() + Duration::from_secs(10);
    while tokio::net::TcpStream::connect(addr).await.is_err() {
        assert!(Instant::now() < deadline, "the example did not start listening");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    ex
}
