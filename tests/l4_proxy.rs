//! The TCP (L4) proxy over loopback with real sockets: a gigabyte each way at once through a slow
//! reader with memory bounded and every byte checked (buffered copy and splice), a half-close carried through while the
//! other direction keeps flowing, a server that speaks first, and limits (service cap, idle
//! timeout, longest life) that close the connection and say so.

mod support;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use proxy::error::Result;
use proxy::l4::{L4End, L4Hooks, L4Proxy, L4Session};
use proxy::protocol::stream::SocketAddr as Addr;
use proxy::server::{LogLevel, Logger, Server, ServerConf, ServerHandle};
use proxy::service::ListeningService;
use proxy::upstream::HttpPeer;
use support::within;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;

/// What `logging` saw of a connection.
#[derive(Debug, Clone)]
struct Logged {
    end: L4End,
    up: u64,
    down: u64,
}

struct To {
    peer: HttpPeer,
    logged: mpsc::UnboundedSender<Logged>,
}

impl L4Hooks for To {
    async fn upstream_peer(&self, _s: &mut L4Session) -> Result<HttpPeer> {
        Ok(self.peer.clone())
    }
    fn logging(&self, s: &L4Session) {
        let _ = self.logged.send(Logged { end: s.end, up: s.bytes_up, down: s.bytes_down });
    }
}

struct L4 {
    addr: SocketAddr,
    logged: mpsc::UnboundedReceiver<Logged>,
    messages: Arc<Mutex<Vec<String>>>,
    handle: Option<ServerHandle>,
}

impl Drop for L4 {
    fn drop(&mut self) {
        if let Some(h) = self.handle.take() {
            h.shutdown_fast();
        }
    }
}

fn start(origin: SocketAddr, tweak: impl FnOnce(&mut ListeningService<L4Proxy<To>>)) -> L4 {
    let (tx, logged) = mpsc::unbounded_channel();
    let app = L4Proxy::new(To { peer: HttpPeer::new(&origin.to_string()).unwrap(), logged: tx });
    let mut svc = ListeningService::new("l4", app);
    let Addr::Inet(addr) = svc.add_tcp("127.0.0.1:0").unwrap() else { unreachable!() };
    tweak(&mut svc);
    let messages = Arc::new(Mutex::new(Vec::new()));
    let m = messages.clone();
    let log = Logger::new(move |level, msg| {
        if level <= LogLevel::Warn {
            m.lock().unwrap().push(msg.to_owned());
        }
    });
    let mut server = Server::new(ServerConf { log, ..ServerConf::default() });
    server.add_service(svc);
    L4 { addr, logged, messages, handle: Some(server.start().unwrap()) }
}

/// The stream's content: a prime-length pattern repeated, so that no buffer boundary of the proxy
/// lines up with it and a lost, repeated or reordered chunk changes what arrives.
const PERIOD: usize = 65_521;

fn pattern(seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    let one: Vec<u8> = (0..PERIOD)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect();
    [one.clone(), one].concat() // doubled: any window of up to PERIOD bytes is contiguous
}

async fn send_pattern(w: &mut (impl AsyncWriteExt + Unpin), pat: &[u8], total: u64) {
    let mut sent = 0u64;
    while sent < total {
        let at = (sent % PERIOD as u64) as usize;
        let n = (PERIOD as u64).min(total - sent) as usize;
        w.write_all(&pat[at..at + n]).await.unwrap();
        sent += n as u64;
    }
}

/// Reads to EOF, slowly (a pause after every 256 KiB), checking every byte against the pattern;
/// returns how many arrived.
async fn check_pattern(r: &mut (impl AsyncReadExt + Unpin), pat: &[u8]) -> u64 {
    let mut buf = vec![0u8; 16 * 1024];
    let (mut got, mut since_pause) = (0u64, 0usize);
    loop {
        let n = r.read(&mut buf).await.unwrap();
        if n == 0 {
            return got;
        }
        let at = (got % PERIOD as u64) as usize;
        assert!(buf[..n] == pat[at..at + n], "bytes differ at offset {got}");
        got += n as u64;
        since_pause += n;
        if since_pause >= 256 * 1024 {
            since_pause = 0;
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }
}

fn vm_rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gigabyte_each_way_through_slow_readers_arrives_exact_in_bounded_memory() {
    gigabyte_each_way(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spliced_a_gigabyte_each_way_through_slow_readers_arrives_exact_in_bounded_memory() {
    gigabyte_each_way(true).await;
}

async fn gigabyte_each_way(splice: bool) {
    const GIB: u64 = 1 << 30;
    within(240, async {
        let origin = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let mut l4 =
            start(origin.local_addr().unwrap(), |s| s.app_mut().unwrap().options_mut().splice = splice);
        let (up_pat, down_pat) = (Arc::new(pattern(1)), Arc::new(pattern(2)));
        let baseline = vm_rss_kib();
        let peak = Arc::new(std::sync::atomic::AtomicU64::new(baseline));
        let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let sampler = {
            let (peak, done) = (peak.clone(), done.clone());
            std::thread::spawn(move || {
                while !done.load(std::sync::atomic::Ordering::Acquire) {
                    peak.fetch_max(vm_rss_kib(), std::sync::atomic::Ordering::AcqRel);
                    std::thread::sleep(Duration::from_millis(20));
                }
            })
        };
        let (p1, p2) = (up_pat.clone(), down_pat.clone());
        let origin_side = tokio::spawn(async move {
            let (s, _) = origin.accept().await.unwrap();
            let (mut r, mut w) = s.into_split();
            let send = tokio::spawn(async move {
                send_pattern(&mut w, &p2, GIB).await;
                w.shutdown().await.unwrap();
            });
            let got = check_pattern(&mut r, &p1).await;
            send.await.unwrap();
            got
        });
        let c = TcpStream::connect(l4.addr).await.unwrap();
        let (mut r, mut w) = c.into_split();
        let p1 = up_pat.clone();
        let send = tokio::spawn(async move {
            send_pattern(&mut w, &p1, GIB).await;
            w.shutdown().await.unwrap();
        });
        let got_down = check_pattern(&mut r, &down_pat).await;
        send.await.unwrap();
        let got_up = origin_side.await.unwrap();
        done.store(true, std::sync::atomic::Ordering::Release);
        sampler.join().unwrap();
        assert_eq!((got_up, got_down), (GIB, GIB), "every byte each way");
        let grew = peak.load(std::sync::atomic::Ordering::Acquire).saturating_sub(baseline);
        assert!(grew < 48 * 1024, "RSS grew {grew} KiB while 2 GiB went through");
        let log = l4.logged.recv().await.unwrap();
        assert_eq!((log.end, log.up, log.down), (L4End::Closed, GIB, GIB));
        eprintln!("splice {splice}: RSS baseline {baseline} KiB, peak growth {grew} KiB");
    })
    .await;
}

#[tokio::test]
async fn a_half_close_goes_through_while_the_other_direction_keeps_flowing() {
    for splice in [false, true] {
        half_close(splice).await;
    }
}

async fn half_close(splice: bool) {
    within(20, async {
        let origin = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let mut l4 =
            start(origin.local_addr().unwrap(), |s| s.app_mut().unwrap().options_mut().splice = splice);
        let origin_side = tokio::spawn(async move {
            let (mut s, _) = origin.accept().await.unwrap();
            // Reads the request to its EOF (the client's shutdown, carried through), then answers
            // on the still-open other direction.
            let mut req = Vec::new();
            s.read_to_end(&mut req).await.unwrap();
            s.write_all(b"answer after EOF: ").await.unwrap();
            s.write_all(&req).await.unwrap();
            s.shutdown().await.unwrap();
        });
        let mut c = TcpStream::connect(l4.addr).await.unwrap();
        c.write_all(b"question").await.unwrap();
        c.shutdown().await.unwrap();
        let mut answer = Vec::new();
        c.read_to_end(&mut answer).await.unwrap();
        assert_eq!(answer, b"answer after EOF: question");
        origin_side.await.unwrap();
        let log = l4.logged.recv().await.unwrap();
        assert_eq!((log.end, log.up, log.down), (L4End::Closed, 8, 26));
    })
    .await;
}

#[tokio::test]
async fn a_server_that_speaks_first_is_heard_before_the_client_sends() {
    within(20, async {
        let origin = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let l4 = start(origin.local_addr().unwrap(), |_| {});
        tokio::spawn(async move {
            // MySQL-like: a greeting on connect, then one answer per command.
            let (mut s, _) = origin.accept().await.unwrap();
            s.write_all(b"\x0a5.7.0-fake\0greeting").await.unwrap();
            let mut cmd = [0u8; 5];
            s.read_exact(&mut cmd).await.unwrap();
            s.write_all(b"OK ").await.unwrap();
            s.write_all(&cmd).await.unwrap();
        });
        let mut c = TcpStream::connect(l4.addr).await.unwrap();
        let mut greeting = [0u8; 20];
        c.read_exact(&mut greeting).await.unwrap();
        assert_eq!(&greeting, b"\x0a5.7.0-fake\0greeting");
        c.write_all(b"QUERY").await.unwrap();
        let mut ok = [0u8; 8];
        c.read_exact(&mut ok).await.unwrap();
        assert_eq!(&ok, b"OK QUERY");
    })
    .await;
}

/// A connection the proxy closes: EOF (or a reset) arrives without the client closing first.
async fn closed_by_proxy(c: &mut TcpStream) -> bool {
    let mut b = [0u8; 1];
    matches!(tokio::time::timeout(Duration::from_secs(5), c.read(&mut b)).await, Ok(Ok(0)) | Ok(Err(_)))
}

#[tokio::test]
async fn limits_close_connections_and_say_why() {
    within(30, async {
        let origin = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let origin_addr = origin.local_addr().unwrap();
        // The origin holds every connection open and silent.
        tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((s, _)) = origin.accept().await {
                held.push(s);
            }
        });

        // The service's cap: the third connection is closed at once and the refusal is logged.
        let l4 = start(origin_addr, |s| s.set_max_connections(2));
        let a = TcpStream::connect(l4.addr).await.unwrap();
        let b = TcpStream::connect(l4.addr).await.unwrap();
        // Accepted in order, so both hold their slots by the time the third is accepted.
        let mut third = TcpStream::connect(l4.addr).await.unwrap();
        assert!(closed_by_proxy(&mut third).await, "past the cap: closed");
        assert!(
            support::eventually(|| l4.messages.lock().unwrap().iter().any(|m| m.contains("at its cap of 2")))
                .await
        );
        drop((a, b, l4));

        // Idle timeout and longest life: closed by the proxy, and `logging` says which.
        let mut idle = start(origin_addr, |s| {
            s.app_mut().unwrap().options_mut().idle_timeout = Some(Duration::from_millis(200));
        });
        let mut c = TcpStream::connect(idle.addr).await.unwrap();
        assert!(closed_by_proxy(&mut c).await);
        assert_eq!(idle.logged.recv().await.unwrap().end, L4End::IdleTimeout);

        let mut life = start(origin_addr, |s| {
            s.app_mut().unwrap().options_mut().max_duration = Some(Duration::from_millis(300));
        });
        let mut c = TcpStream::connect(life.addr).await.unwrap();
        // Busy all along (an idle timeout would not fire), yet closed at its longest life.
        let busy = async {
            loop {
                if c.write_all(b"x").await.is_err() {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        };
        within(5, busy).await;
        assert_eq!(life.logged.recv().await.unwrap().end, L4End::MaxDuration);
    })
    .await;
}
