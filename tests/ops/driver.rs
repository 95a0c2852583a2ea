//! Operations checks against a real proxy process (the C, Python or Go minimal_proxy example),
//! run by tests/ops/run.sh:
//!
//!   ops_driver upgrade ROUNDS -- CMD...   20 busy connections (H1 keep-alive, H1 one request per
//!                                          connection, h2c) while the proxy is upgraded ROUNDS
//!                                          times (-u, then SIGQUIT to the old one): 0 failed
//!                                          requests, 0 refused connections, origin count == ours
//!   ops_driver inflight N -- CMD...       N requests of 2 s in flight, SIGTERM: all N complete
//!                                          and the proxy exits within the grace period
//!   ops_driver daemon [USER] -- CMD...    -d returns once the child listens; the pid file names
//!                                          it (running as USER when given: `user:` in the file);
//!                                          SIGTERM stops it and removes the pid file
//!
//! The driver appends `[-u|-d] -c CONF 127.0.0.1:0 ORIGIN` to CMD, with ORIGIN its own counting
//! HTTP/1.1 origin. Every wait is bounded; the run ends by itself.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::SeqCst};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const GRACE_SECONDS: u64 = 10;

type Res<T> = Result<T, String>;

/// The origin: counts complete request heads; `/delay/MS` answers after MS milliseconds.
#[derive(Default)]
struct Origin {
    requests: AtomicU64,
    in_flight: AtomicU64,
}

async fn origin() -> (SocketAddr, Arc<Origin>) {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    let o = Arc::new(Origin::default());
    let st = o.clone();
    tokio::spawn(async move {
        while let Ok((s, _)) = l.accept().await {
            tokio::spawn(origin_conn(s, st.clone()));
        }
    });
    (addr, o)
}

async fn origin_conn(mut s: TcpStream, o: Arc<Origin>) {
    let mut buf = Vec::new();
    loop {
        let end = loop {
            if let Some(i) = find(&buf, b"\r\n\r\n") {
                break i + 4;
            }
            let mut chunk = [0u8; 4096];
            match s.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        };
        let head = String::from_utf8_lossy(&buf[..end]).to_string();
        buf.drain(..end);
        o.requests.fetch_add(1, SeqCst);
        let path = head.split(' ').nth(1).unwrap_or("/").to_owned();
        let delay = path
            .strip_prefix("/delay/")
            .map(|m| m.chars().take_while(char::is_ascii_digit).collect::<String>());
        if let Some(ms) = delay.and_then(|m| m.parse().ok()) {
            o.in_flight.fetch_add(1, SeqCst);
            tokio::time::sleep(Duration::from_millis(ms)).await;
            o.in_flight.fetch_sub(1, SeqCst);
        }
        let resp = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\ncache-control: no-store\r\n\r\nok";
        if s.write_all(resp).await.is_err() {
            return;
        }
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// What the clients saw.
#[derive(Default)]
struct Tally {
    ok: AtomicU64,
    failed: AtomicU64,
    refused: AtomicU64,
    /// Requests sent again on a new connection because the reused one closed before any byte of
    /// an answer (RFC 9112 §9.3.1), or because HTTP/2 GOAWAY refused the stream (RFC 9113 §6.8).
    retried: AtomicU64,
    first_failure: parking_lot::Mutex<Option<String>>,
}

impl Tally {
    fn fail(&self, what: String) {
        self.failed.fetch_add(1, SeqCst);
        self.first_failure.lock().get_or_insert(what);
    }
}

/// One HTTP/1.1 exchange on `s`: Ok(keep) with keep = the connection may be reused; Err(true) when
/// nothing of an answer arrived (retryable on a reused connection).
async fn h1_exchange(s: &mut TcpStream, path: &str, close: bool) -> Result<bool, (bool, String)> {
    let req = format!(
        "GET {path} HTTP/1.1\r\nhost: ops\r\n{}\r\n",
        if close { "connection: close\r\n" } else { "" }
    );
    s.write_all(req.as_bytes()).await.map_err(|e| (true, format!("write: {e}")))?;
    let mut buf = Vec::new();
    let end = loop {
        if let Some(i) = find(&buf, b"\r\n\r\n") {
            break i + 4;
        }
        let mut chunk = [0u8; 4096];
        match s.read(&mut chunk).await {
            Ok(0) => return Err((buf.is_empty(), "EOF in the response head".into())),
            Err(e) => return Err((buf.is_empty(), format!("read: {e}"))),
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    };
    let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
    if !head.starts_with("http/1.1 200") {
        return Err((false, format!("status: {}", head.lines().next().unwrap_or(""))));
    }
    let len: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .and_then(|v| v.trim().parse().ok())
        .ok_or((false, "no content-length".to_string()))?;
    while buf.len() < end + len {
        let mut chunk = [0u8; 4096];
        match s.read(&mut chunk).await {
            Ok(0) | Err(_) => return Err((false, "body cut".into())),
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
    Ok(!close && !head.contains("connection: close"))
}

async fn connect(addr: SocketAddr, t: &Tally) -> Option<TcpStream> {
    match TcpStream::connect(addr).await {
        Ok(s) => Some(s),
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => {
            t.refused.fetch_add(1, SeqCst);
            t.first_failure.lock().get_or_insert(format!("connect: {e}"));
            tokio::time::sleep(Duration::from_millis(10)).await;
            None
        }
        Err(e) => {
            t.fail(format!("connect: {e}"));
            None
        }
    }
}

/// An HTTP/1.1 client: keep-alive (`close` false) or one request per connection.
async fn h1_client(addr: SocketAddr, close: bool, t: Arc<Tally>, stop: Arc<AtomicBool>) {
    let mut conn: Option<(TcpStream, bool)> = None;
    let mut n = 0u64;
    while !stop.load(SeqCst) {
        let (mut s, reused) = match conn.take() {
            Some((s, _)) => (s, true),
            None => match connect(addr, &t).await {
                Some(s) => (s, false),
                None => continue,
            },
        };
        n += 1;
        match h1_exchange(&mut s, &format!("/h1/{n}"), close).await {
            Ok(keep) => {
                t.ok.fetch_add(1, SeqCst);
                if keep {
                    conn = Some((s, true));
                }
            }
            Err((true, _)) if reused => {
                t.retried.fetch_add(1, SeqCst);
            }
            Err((_, e)) => t.fail(format!("h1 {}: {e}", if reused { "reused" } else { "new" })),
        }
    }
}

/// An h2c client (prior knowledge): requests one after another on one connection, a new
/// connection once the server sends GOAWAY.
async fn h2_client(addr: SocketAddr, t: Arc<Tally>, stop: Arc<AtomicBool>) {
    let mut n = 0u64;
    'conn: while !stop.load(SeqCst) {
        let Some(tcp) = connect(addr, &t).await else { continue };
        let (mut send, conn) = match h2::client::handshake(tcp).await {
            Ok(v) => v,
            Err(e) => {
                t.fail(format!("h2 handshake: {e}"));
                continue;
            }
        };
        tokio::spawn(async move {
            let _ = conn.await;
        });
        while !stop.load(SeqCst) {
            send = match send.ready().await {
                Ok(s) => s,
                Err(_) => continue 'conn, // going away: no request was made on it
            };
            n += 1;
            let req = http::Request::get(format!("http://ops/h2/{n}")).body(()).unwrap();
            let resp = match send.send_request(req, true) {
                Ok((resp, _)) => resp.await,
                Err(e) => Err(e),
            };
            match resp {
                Ok(r) if r.status() == 200 => {
                    let mut body = r.into_body();
                    let mut got = 0;
                    while let Some(chunk) = body.data().await {
                        match chunk {
                            Ok(c) => {
                                got += c.len();
                                let _ = body.flow_control().release_capacity(c.len());
                            }
                            Err(e) => {
                                t.fail(format!("h2 body: {e}"));
                                continue 'conn;
                            }
                        }
                    }
                    if got == 2 {
                        t.ok.fetch_add(1, SeqCst);
                    } else {
                        t.fail(format!("h2 body of {got} bytes"));
                    }
                }
                Ok(r) => t.fail(format!("h2 status {}", r.status())),
                // Refused by GOAWAY (RFC 9113 §6.8: not processed, safe to send again).
                Err(e) if e.is_go_away() || e.reason() == Some(h2::Reason::REFUSED_STREAM) => {
                    t.retried.fetch_add(1, SeqCst);
                    continue 'conn;
                }
                Err(e) => {
                    t.fail(format!("h2: {e}"));
                    continue 'conn;
                }
            }
        }
    }
}

struct Setup {
    dir: PathBuf,
    conf: PathBuf,
    cmd: Vec<String>,
    origin: SocketAddr,
}

impl Setup {
    fn new(cmd: Vec<String>, origin: SocketAddr) -> Setup {
        let dir = std::env::temp_dir().join(format!("ops-driver-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let conf = dir.join("proxy.yaml");
        let s = Setup { dir, conf, cmd, origin };
        s.write_conf("");
        s
    }

    fn write_conf(&self, extra: &str) {
        let text = format!(
            "pid_file: {d}/proxy.pid\nupgrade_sock: {d}/upgrade.sock\nerror_log: {d}/error.log\n\
             grace_period_seconds: {GRACE_SECONDS}\nupgrade_sock_connect_accept_max_retries: 300\n{extra}",
            d = self.dir.display()
        );
        std::fs::write(&self.conf, text).unwrap();
    }

    /// Starts the proxy with `flag` (`-u`, `-d` or none); its stdout and stderr go to `log`.
    fn spawn(&self, flag: Option<&str>, log: &Path) -> Proc {
        let out = std::fs::File::create(log).unwrap();
        let mut c = Command::new(&self.cmd[0]);
        c.args(&self.cmd[1..]);
        c.args(flag);
        c.arg("-c").arg(&self.conf).arg("127.0.0.1:0").arg(self.origin.to_string());
        c.stdin(Stdio::null()).stdout(out.try_clone().unwrap()).stderr(out);
        Proc(c.spawn().unwrap_or_else(|e| panic!("starting {:?}: {e}", self.cmd)))
    }
}

/// A proxy process, killed if still running when dropped (a failed check leaves nothing behind).
struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

/// Kills the daemon the pid file names, if a check failed before stopping it.
struct DaemonGuard<'a>(&'a Path);

impl Drop for DaemonGuard<'_> {
    fn drop(&mut self) {
        if let Some(pid) = std::fs::read_to_string(self.0).ok().and_then(|p| p.trim().parse::<u32>().ok()) {
            signal(pid, libc::SIGKILL);
        }
    }
}

/// The port the proxy printed (`proxying on port N`) into `log`, waiting up to 60 s.
fn port_in(log: &Path, child: &mut Option<&mut Child>) -> Res<u16> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let text = std::fs::read_to_string(log).unwrap_or_default();
        if let Some(p) = text.split("proxying on port ").nth(1) {
            let digits: String = p.chars().take_while(|c| c.is_ascii_digit()).collect();
            return digits.parse().map_err(|_| format!("bad port line in {}", log.display()));
        }
        if let Some(c) = child.as_mut() {
            if let Ok(Some(st)) = c.try_wait() {
                return Err(format!("the proxy exited ({st}) before listening:\n{text}"));
            }
        }
        if Instant::now() > deadline {
            return Err(format!("no port in {} after 60 s:\n{text}", log.display()));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn signal(pid: u32, sig: i32) {
    // SAFETY: kill(2) with a pid we started and a valid signal number.
    unsafe { libc::kill(pid as i32, sig) };
}

fn wait_exit(c: &mut Child, secs: u64) -> Res<std::process::ExitStatus> {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(st) = c.try_wait().map_err(|e| e.to_string())? {
            return Ok(st);
        }
        if Instant::now() > deadline {
            return Err(format!("pid {} did not exit within {secs} s", c.id()));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

async fn wait_for(what: &str, secs: u64, mut cond: impl FnMut() -> bool) -> Res<()> {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !cond() {
        if Instant::now() > deadline {
            return Err(format!("timed out waiting for {what}"));
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    Ok(())
}

async fn upgrade(s: &Setup, o: &Origin, rounds: usize) -> Res<String> {
    let log0 = s.dir.join("proxy-0.log");
    let mut cur = s.spawn(None, &log0);
    let port = port_in(&log0, &mut Some(&mut cur.0))?;
    let addr: SocketAddr = ([127, 0, 0, 1], port).into();
    let (t, stop) = (Arc::new(Tally::default()), Arc::new(AtomicBool::new(false)));
    let mut tasks = Vec::new();
    for i in 0..20 {
        let (t, stop) = (t.clone(), stop.clone());
        tasks.push(match i % 10 {
            0..=3 => tokio::spawn(h1_client(addr, false, t, stop)),
            4..=6 => tokio::spawn(h1_client(addr, true, t, stop)),
            _ => tokio::spawn(h2_client(addr, t, stop)),
        });
    }
    let started = Instant::now();
    let mut per_round = Vec::new();
    for round in 1..=rounds {
        let before = t.ok.load(SeqCst);
        wait_for("requests before the upgrade", 30, || t.ok.load(SeqCst) >= before + 200).await?;
        let log = s.dir.join(format!("proxy-{round}.log"));
        let mut next = s.spawn(Some("-u"), &log);
        signal(cur.0.id(), libc::SIGQUIT);
        let new_port = port_in(&log, &mut Some(&mut next.0))?;
        if new_port != port {
            return Err(format!("round {round}: the new process listens on {new_port}, not {port}"));
        }
        let st = wait_exit(&mut cur.0, GRACE_SECONDS + 20)?;
        if !st.success() {
            return Err(format!("round {round}: the old process exited with {st}"));
        }
        let mid = t.ok.load(SeqCst);
        wait_for("requests after the upgrade", 30, || t.ok.load(SeqCst) >= mid + 200).await?;
        per_round.push(t.ok.load(SeqCst) - before);
        cur = next;
    }
    stop.store(true, SeqCst);
    for task in tasks {
        let _ = task.await;
    }
    signal(cur.0.id(), libc::SIGTERM);
    let st = wait_exit(&mut cur.0, GRACE_SECONDS + 20)?;
    let (ok, failed, refused, retried) =
        (t.ok.load(SeqCst), t.failed.load(SeqCst), t.refused.load(SeqCst), t.retried.load(SeqCst));
    let upstream = o.requests.load(SeqCst);
    let summary = format!(
        "{rounds} upgrades in {:.1} s: {ok} requests ok, {failed} failed, {refused} refused, {retried} retried \
         (reused connection closed or GOAWAY before any answer), upstream saw {upstream}; last exit {st}",
        started.elapsed().as_secs_f64()
    );
    if failed > 0 || refused > 0 || upstream != ok || !st.success() {
        let first = t.first_failure.lock().clone().unwrap_or_default();
        return Err(format!("{summary}; first failure: {first}"));
    }
    Ok(summary)
}

async fn inflight(s: &Setup, o: &Origin, n: usize) -> Res<String> {
    let log = s.dir.join("proxy-inflight.log");
    let mut p = s.spawn(None, &log);
    let port = port_in(&log, &mut Some(&mut p.0))?;
    let addr: SocketAddr = ([127, 0, 0, 1], port).into();
    let mut tasks = Vec::new();
    for i in 0..n {
        tasks.push(tokio::spawn(async move {
            let mut s = TcpStream::connect(addr).await.map_err(|e| e.to_string())?;
            h1_exchange(&mut s, &format!("/delay/2000?{i}"), false).await.map_err(|(_, e)| e)
        }));
    }
    wait_for("every request at the origin", 30, || o.in_flight.load(SeqCst) as usize == n)
        .await
        .map_err(|e| format!("{e} ({} of {n} there)", o.in_flight.load(SeqCst)))?;
    let t0 = Instant::now();
    signal(p.0.id(), libc::SIGTERM);
    let mut ok = 0;
    for task in tasks {
        match task.await {
            Ok(Ok(_)) => ok += 1,
            Ok(Err(e)) => return Err(format!("a request failed: {e}")),
            Err(e) => return Err(e.to_string()),
        }
    }
    let done = t0.elapsed();
    let st = wait_exit(&mut p.0, GRACE_SECONDS + 20)?;
    let exited = t0.elapsed();
    let summary = format!(
        "SIGTERM with {n} requests of 2 s in flight: {ok} completed ok {:.2} s after the signal, \
         the proxy exited ({st}) after {:.2} s (grace {GRACE_SECONDS} s)",
        done.as_secs_f64(),
        exited.as_secs_f64()
    );
    if ok != n || !st.success() || exited > Duration::from_secs(GRACE_SECONDS) {
        return Err(summary);
    }
    Ok(summary)
}

/// The uid of a process, from /proc.
fn uid_of(pid: u32) -> Option<u32> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status.lines().find_map(|l| l.strip_prefix("Uid:"))?.split_whitespace().nth(1)?.parse().ok()
}

async fn daemon(s: &Setup, user: Option<&str>) -> Res<String> {
    if let Some(u) = user {
        // The daemon removes its pid file after switching user: the directory must let it.
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&s.dir, std::fs::Permissions::from_mode(0o1777))
            .map_err(|e| e.to_string())?;
        s.write_conf(&format!("user: {u}\n"));
    }
    let log = s.dir.join("proxy-daemon-parent.log");
    let pid_file = s.dir.join("proxy.pid");
    let error_log = s.dir.join("error.log");
    let _ = std::fs::remove_file(&error_log);
    let t0 = Instant::now();
    let mut parent = s.spawn(Some("-d"), &log);
    let _guard = DaemonGuard(&pid_file);
    let st = wait_exit(&mut parent.0, 60)?;
    let returned = t0.elapsed();
    if !st.success() {
        return Err(format!("-d exited with {st}: {}", std::fs::read_to_string(&log).unwrap_or_default()));
    }
    // The parent returned: the child listens now, without any waiting on our side.
    let port = port_in(&error_log, &mut None)?;
    let pid: u32 = std::fs::read_to_string(&pid_file)
        .map_err(|e| format!("pid file: {e}"))?
        .trim()
        .parse()
        .map_err(|e| format!("pid file: {e}"))?;
    let alive = |pid: u32| Path::new(&format!("/proc/{pid}")).exists();
    if pid == parent.0.id() || !alive(pid) {
        return Err(format!("the pid file names {pid}, which is not a live daemon"));
    }
    let uid = uid_of(pid).ok_or("no uid in /proc")?;
    if let Some(u) = user {
        let want = Command::new("id").args(["-u", u]).output().map_err(|e| e.to_string())?;
        let want: u32 =
            String::from_utf8_lossy(&want.stdout).trim().parse().map_err(|_| format!("no user {u}"))?;
        if uid != want {
            return Err(format!("the daemon runs as uid {uid}, not {u} ({want})"));
        }
    }
    let mut c =
        TcpStream::connect(("127.0.0.1", port)).await.map_err(|e| format!("connect to the daemon: {e}"))?;
    h1_exchange(&mut c, "/daemon", true).await.map_err(|(_, e)| e)?;
    signal(pid, libc::SIGTERM);
    wait_for("the daemon to exit", GRACE_SECONDS + 20, || !alive(pid)).await?;
    if pid_file.exists() {
        return Err("the pid file is still there after SIGTERM".into());
    }
    Ok(format!(
        "-d returned after {:.2} s with the child (pid {pid}, uid {uid}) listening on {port}; a request \
         through it ok; SIGTERM stopped it and removed the pid file",
        returned.as_secs_f64()
    ))
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let sep = args.iter().position(|a| a == "--").expect("usage: ops_driver MODE [N] -- CMD...");
    let (mode, cmd) = (&args[1..sep], args[sep + 1..].to_vec());
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let r = rt.block_on(async {
        let (addr, o) = origin().await;
        let s = Setup::new(cmd, addr);
        let n = |d: usize| mode.get(1).and_then(|v| v.parse().ok()).unwrap_or(d);
        let r = match mode[0].as_str() {
            "upgrade" => upgrade(&s, &o, n(10)).await,
            "inflight" => inflight(&s, &o, n(100)).await,
            "daemon" => daemon(&s, mode.get(1).map(String::as_str)).await,
            m => Err(format!("unknown mode {m}")),
        };
        if r.is_ok() {
            let _ = std::fs::remove_dir_all(&s.dir);
        }
        r
    });
    match r {
        Ok(summary) => println!("ok: {summary}"),
        Err(e) => {
            eprintln!("FAILED: {e}");
            std::process::exit(1);
        }
    }
}
