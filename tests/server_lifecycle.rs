//! Server and service lifecycle: per-service threads, the no-work-stealing mode, graceful and fast
//! shutdown (in-flight requests, grace expiry, idle keep-alive connections), background services.

mod support;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use proxy::error::Result;
use proxy::protocol::stream::SocketAddr as Addr;
use proxy::proxy::{HttpProxy, ProxyHttp, Session};
use proxy::server::{Server, ServerConf, ServerHandle, ShutdownState, ShutdownWatch};
use proxy::service::{background_service, BackgroundService, ListeningService};
use proxy::upstream::HttpPeer;
use support::client::Conn;
use support::harness::Proxy;
use support::origin::Origin;
use support::{eventually, within};

/// Proxies to `target` and records the name of the thread each `request_filter` ran on.
struct Rec {
    target: String,
    names: Arc<Mutex<Vec<String>>>,
    /// `None`: no upstream read timeout (for `/hang`).
    read_timeout: Option<Duration>,
}

impl Rec {
    fn new(target: SocketAddr) -> (Rec, Arc<Mutex<Vec<String>>>) {
        let names = Arc::new(Mutex::new(Vec::new()));
        let rec = Rec {
            target: target.to_string(),
            names: names.clone(),
            read_timeout: Some(Duration::from_secs(10)),
        };
        (rec, names)
    }
}

impl ProxyHttp for Rec {
    type CTX = ();
    fn new_ctx(&self) {}

    async fn request_filter(&self, _s: &mut Session, _c: &mut ()) -> Result<bool> {
        let name = std::thread::current().name().unwrap_or("<unnamed>").to_string();
        self.names.lock().unwrap().push(name);
        Ok(false)
    }

    async fn upstream_peer(&self, _s: &mut Session, _c: &mut ()) -> Result<HttpPeer> {
        let mut peer = HttpPeer::new(&self.target).unwrap();
        peer.options.read_timeout = self.read_timeout;
        Ok(peer)
    }
}

/// Fast shutdown on drop, so a failing test does not leave worker threads behind.
struct Running(Option<ServerHandle>);

impl Running {
    fn take(&mut self) -> ServerHandle {
        self.0.take().unwrap()
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(h) = self.0.take() {
            h.shutdown_fast();
        }
    }
}

fn inet(a: Addr) -> SocketAddr {
    match a {
        Addr::Inet(a) => a,
        other => panic!("unexpected {other}"),
    }
}

fn names_of(names: &Arc<Mutex<Vec<String>>>) -> Vec<String> {
    names.lock().unwrap().clone()
}

/// Runs a blocking graceful shutdown on a blocking thread; resolves to how long it took.
fn shutdown_in_background(handle: ServerHandle, grace: Duration) -> tokio::task::JoinHandle<Duration> {
    tokio::task::spawn_blocking(move || {
        let t = Instant::now();
        handle.shutdown(grace);
        t.elapsed()
    })
}

#[tokio::test]
async fn two_services_run_on_distinct_named_threads() {
    let origin = Origin::start().await;
    let (alpha_hooks, alpha_names) = Rec::new(origin.addr);
    let (beta_hooks, beta_names) = Rec::new(origin.addr);
    let mut alpha = ListeningService::new("alpha", HttpProxy::new(alpha_hooks));
    let mut beta = ListeningService::new("beta", HttpProxy::new(beta_hooks));
    alpha.set_threads(2);
    beta.set_threads(2);
    let alpha_addr = inet(alpha.add_tcp("127.0.0.1:0").unwrap());
    let beta_addr = inet(beta.add_tcp("127.0.0.1:0").unwrap());
    let mut server = Server::new(ServerConf::default());
    server.add_service(alpha);
    server.add_service(beta);
    let _running = Running(Some(server.start().unwrap()));

    for _ in 0..6 {
        for addr in [alpha_addr, beta_addr] {
            let r = within(10, support::client::get(addr, "/echo")).await;
            assert_eq!(r.status, 200, "{}", r.text());
        }
    }
    let (a, b) = (names_of(&alpha_names), names_of(&beta_names));
    assert_eq!((a.len(), b.len()), (6, 6), "{a:?} {b:?}");
    assert!(a.iter().all(|n| n.starts_with("alpha-")), "{a:?}");
    assert!(b.iter().all(|n| n.starts_with("beta-")), "{b:?}");
    assert!(a.iter().all(|n| !b.contains(n)), "{a:?} {b:?}");
}

#[tokio::test]
async fn no_work_stealing_mode_serves_and_reuses_pool_per_runtime() {
    let origin = Origin::start().await;
    let (hooks, names) = Rec::new(origin.addr);
    let mut svc = ListeningService::new("svc", HttpProxy::new(hooks));
    svc.set_threads(2);
    svc.set_work_stealing(false);
    let addr = inet(svc.add_tcp("127.0.0.1:0").unwrap());
    let mut server = Server::new(ServerConf::default());
    server.add_service(svc);
    let _running = Running(Some(server.start().unwrap()));
    // Open every connection first so both runtimes' accept loops get a chance at them.
    let mut conns = Vec::new();
    for _ in 0..5 {
        conns.push(Conn::connect(addr).await.unwrap());
    }
    for round in 0..4 {
        for (i, c) in conns.iter_mut().enumerate() {
            let body = format!("c{i}r{round}");
            let r = within(10, c.request("POST", "/echo", &[], body.as_bytes())).await;
            assert_eq!(r.status, 200);
            assert!(r.text().ends_with(&body), "{}", r.text());
        }
    }
    let seen = names_of(&names);
    assert_eq!(seen.len(), 20);
    assert!(seen.iter().all(|n| n == "svc-0" || n == "svc-1"), "{seen:?}");
    assert_eq!(origin.requests(), 20);
    assert!(
        origin.accepts() <= 4,
        "{} upstream connections for 20 sequential requests on 2 runtimes",
        origin.accepts()
    );
}

#[tokio::test]
async fn graceful_shutdown_lets_in_flight_request_finish_and_stops_accepting() {
    let origin = Origin::start().await;
    let (hooks, _) = Rec::new(origin.addr);
    let mut p = Proxy::start(hooks);
    let addr = p.addr;
    let handle = p.take_handle();

    let client = tokio::spawn(async move {
        let mut c = Conn::connect(addr).await.unwrap();
        let r = c.request("GET", "/delay/800", &[], b"").await;
        let closed = c.closed_within(Duration::from_secs(1)).await;
        (r, closed)
    });
    // The origin has the request (and answers 800 ms later): it is in flight.
    assert!(eventually(|| origin.requests() == 1).await, "the request did not reach the origin");
    let shut = shutdown_in_background(handle, Duration::from_secs(5));

    // The listener goes away as soon as the graceful shutdown starts.
    let mut refused = false;
    let deadline = Instant::now() + Duration::from_millis(500);
    while Instant::now() < deadline {
        match tokio::net::TcpStream::connect(addr).await {
            Err(_) => {
                refused = true;
                break;
            }
            Ok(_) => tokio::time::sleep(Duration::from_millis(5)).await,
        }
    }
    assert!(refused, "new connections still accepted during shutdown");

    let (r, closed) = within(5, client).await.unwrap();
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.text(), "ok");
    assert_eq!(r.header("connection"), Some("close"), "{:?}", r.headers);
    assert!(closed, "connection not closed after the last response");
    let took = within(6, shut).await.unwrap();
    // The request needed ~700 ms more when shutdown began; shutdown waited for it.
    assert!(took >= Duration::from_millis(600), "returned after {took:?}");
    assert!(took < Duration::from_secs(5), "returned after {took:?}");
}

#[tokio::test]
async fn grace_period_expiry_drops_hanging_request() {
    let origin = Origin::start().await;
    let (mut hooks, _) = Rec::new(origin.addr);
    hooks.read_timeout = None;
    let mut p = Proxy::start(hooks);
    let handle = p.take_handle();
    let mut c = Conn::connect(p.addr).await.unwrap();
    c.send(b"GET /hang HTTP/1.1\r\nHost: a\r\n\r\n").await.unwrap();
    assert!(eventually(|| origin.requests() == 1).await);

    let took = within(5, shutdown_in_background(handle, Duration::from_millis(300))).await.unwrap();
    assert!(took >= Duration::from_millis(250), "returned after {took:?}");
    assert!(took < Duration::from_secs(2), "returned after {took:?}");
    // Whatever was sent (nothing, or an error page), the connection ends.
    let rest = within(2, c.read_to_end()).await;
    assert!(rest.is_ok(), "{rest:?}");
}

#[tokio::test]
async fn graceful_shutdown_closes_idle_keepalive_connection_promptly() {
    let origin = Origin::start().await;
    let (hooks, _) = Rec::new(origin.addr);
    let mut p = Proxy::start(hooks);
    let handle = p.take_handle();
    let mut c = Conn::connect(p.addr).await.unwrap();
    let r = within(10, c.request("GET", "/echo", &[], b"")).await;
    assert_eq!(r.status, 200);
    assert_ne!(r.header("connection"), Some("close"));

    let shut = shutdown_in_background(handle, Duration::from_secs(5));
    assert!(
        c.closed_within(Duration::from_secs(1)).await,
        "idle keep-alive connection not closed within 1 s"
    );
    let took = within(6, shut).await.unwrap();
    assert!(took < Duration::from_secs(2), "returned after {took:?}");
}

#[derive(Default)]
struct Ticker {
    ticks: AtomicUsize,
    stopped: AtomicBool,
    thread: Mutex<Option<String>>,
}

impl BackgroundService for Ticker {
    async fn start(&self, shutdown: ShutdownWatch) {
        *self.thread.lock().unwrap() = std::thread::current().name().map(str::to_owned);
        loop {
            tokio::select! {
                _ = shutdown.reached(ShutdownState::Graceful) => break,
                _ = tokio::time::sleep(Duration::from_millis(10)) => {
                    self.ticks.fetch_add(1, Ordering::SeqCst);
                }
            }
        }
        self.stopped.store(true, Ordering::SeqCst);
    }
}

#[tokio::test]
async fn background_service_runs_until_shutdown() {
    let svc = background_service("ticker", Ticker::default());
    let task = svc.task();
    let mut server = Server::new(ServerConf::default());
    server.add_service(svc);
    let mut running = Running(Some(server.start().unwrap()));

    assert!(eventually(|| task.ticks.load(Ordering::SeqCst) >= 5).await);
    assert!(!task.stopped.load(Ordering::SeqCst));
    let name = task.thread.lock().unwrap().clone();
    assert!(name.as_deref().is_some_and(|n| n.starts_with("ticker-")), "{name:?}");

    let took = within(5, shutdown_in_background(running.take(), Duration::from_secs(3))).await.unwrap();
    assert!(task.stopped.load(Ordering::SeqCst), "task did not see the shutdown");
    assert!(took < Duration::from_secs(1), "returned after {took:?}");
    let after = task.ticks.load(Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(task.ticks.load(Ordering::SeqCst), after, "still ticking");
}

#[tokio::test]
async fn shutdown_fast_is_prompt_with_hanging_request() {
    let origin = Origin::start().await;
    let (mut hooks, _) = Rec::new(origin.addr);
    hooks.read_timeout = None;
    let mut p = Proxy::start(hooks);
    let handle = p.take_handle();
    let mut c = Conn::connect(p.addr).await.unwrap();
    c.send(b"GET /hang HTTP/1.1\r\nHost: a\r\n\r\n").await.unwrap();
    assert!(eventually(|| origin.requests() == 1).await);

    let took = within(
        5,
        tokio::task::spawn_blocking(move || {
            let t = Instant::now();
            handle.shutdown_fast();
            t.elapsed()
        }),
    )
    .await
    .unwrap();
    assert!(took < Duration::from_millis(1500), "returned after {took:?}");
    let rest = within(2, c.read_to_end()).await;
    assert!(rest.is_ok(), "{rest:?}");
}
