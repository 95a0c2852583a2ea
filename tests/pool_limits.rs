//! The upstream pool's idle timeout and size bound, and adopting an inherited listening socket,
//! over loopback.

mod support;

use std::os::fd::OwnedFd;
use std::time::Duration;

use proxy::connector::Connector;
use proxy::error::Result;
use proxy::listener::TransportStack;
use proxy::proxy::{HttpProxy, ProxyHttp, Session};
use proxy::upstream::HttpPeer;
use support::client::Conn;
use support::harness::Proxy;
use support::origin::Origin;
use support::within;

struct To(HttpPeer);

impl ProxyHttp for To {
    type CTX = ();
    fn new_ctx(&self) {}
    async fn upstream_peer(&self, _s: &mut Session, _c: &mut ()) -> Result<HttpPeer> {
        Ok(self.0.clone())
    }
}

#[tokio::test]
async fn idle_pooled_connections_expire() {
    within(10, async {
        let origin = Origin::start().await;
        let mut peer = HttpPeer::new(&origin.addr.to_string()).unwrap();
        peer.options.idle_timeout = Some(Duration::from_millis(200));
        let p = Proxy::start(To(peer));
        let mut c = Conn::connect(p.addr).await.unwrap();
        assert_eq!(c.request("GET", "/echo", &[], b"").await.status, 200);
        assert_eq!(c.request("GET", "/echo", &[], b"").await.status, 200);
        assert_eq!(origin.accepts(), 1, "reused while fresh");
        tokio::time::sleep(Duration::from_millis(400)).await;
        assert_eq!(c.request("GET", "/echo", &[], b"").await.status, 200);
        assert_eq!(origin.accepts(), 2, "an expired idle connection is not reused");
    })
    .await;
}

#[tokio::test]
async fn pool_size_is_bounded() {
    within(10, async {
        let origin = Origin::start().await;
        let peer = HttpPeer::new(&origin.addr.to_string()).unwrap();
        let connector = Connector::new(2);
        let mut app = HttpProxy::new(To(peer));
        app.set_connector(connector.clone());
        let p = Proxy::start_with(app, |_| {});
        // Five requests in flight at once need five upstream connections; only two fit the pool.
        let mut clients = Vec::new();
        for _ in 0..5 {
            let mut c = Conn::connect(p.addr).await.unwrap();
            c.send(b"GET /delay/300 HTTP/1.1\r\nHost: a\r\n\r\n").await.unwrap();
            clients.push(c);
        }
        for c in &mut clients {
            assert_eq!(c.read_response().await.unwrap().status, 200);
        }
        let settled = || {
            let s = connector.pool().stats();
            s.idle + s.discarded as usize == 5
        };
        assert!(support::eventually(settled).await, "{:?}", connector.pool().stats());
        assert_eq!(connector.pool().stats().idle, 2, "{:?}", connector.pool().stats());
        assert_eq!(origin.accepts(), 5);
    })
    .await;
}

#[tokio::test]
async fn inherited_listening_socket_is_served() {
    within(10, async {
        let origin = Origin::start().await;
        let peer = HttpPeer::new(&origin.addr.to_string()).unwrap();
        // A socket bound and listening elsewhere (a previous process, the host), handed over by FD.
        let std_listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = std_listener.local_addr().unwrap();
        let stack = TransportStack::from_fd(OwnedFd::from(std_listener)).unwrap();
        let p = Proxy::start_with(HttpProxy::new(To(peer)), |svc| {
            svc.add_stack(stack).unwrap();
        });
        let mut c = Conn::connect(addr).await.unwrap();
        assert_eq!(c.request("GET", "/echo", &[], b"").await.status, 200);
        drop(p);
    })
    .await;
}

/// An origin that answers `GET`s with `200 ok` on keep-alive connections and reports on `closed`
/// each connection the proxy closes (read returns EOF or an error). It holds every response until
/// `burst` requests are in flight, so a burst of that size needs that many upstream connections.
/// With `hang_up`, it half-closes each connection after its first response (an origin that drops
/// idle keep-alive connections) and still reports when the proxy closes its side.
async fn closing_origin(
    burst: usize,
    hang_up: bool,
) -> (std::net::SocketAddr, tokio::sync::mpsc::UnboundedReceiver<()>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    let barrier = std::sync::Arc::new(tokio::sync::Barrier::new(burst));
    tokio::spawn(async move {
        loop {
            let Ok((mut s, _)) = listener.accept().await else { return };
            let (tx, barrier) = (tx.clone(), barrier.clone());
            tokio::spawn(async move {
                let mut head = Vec::new();
                let mut buf = [0u8; 4096];
                let mut answered = false;
                loop {
                    match s.read(&mut buf).await {
                        Ok(0) | Err(_) => break,
                        Ok(n) => head.extend_from_slice(&buf[..n]),
                    }
                    if answered || !head.windows(4).any(|w| w == b"\r\n\r\n") {
                        continue;
                    }
                    head.clear();
                    answered = true;
                    barrier.wait().await;
                    s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok").await.unwrap();
                    if hang_up {
                        s.shutdown().await.unwrap();
                    }
                }
                let _ = tx.send(());
            });
        }
    });
    (addr, rx)
}

async fn burst(proxy: std::net::SocketAddr, n: usize) -> Vec<Conn> {
    let mut clients = Vec::new();
    for _ in 0..n {
        let mut c = Conn::connect(proxy).await.unwrap();
        c.send(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n").await.unwrap();
        clients.push(c);
    }
    for c in &mut clients {
        assert_eq!(c.read_response().await.unwrap().status, 200);
    }
    clients
}

async fn closes(rx: &mut tokio::sync::mpsc::UnboundedReceiver<()>, n: usize, limit: Duration) {
    let all = async {
        for _ in 0..n {
            rx.recv().await.unwrap();
        }
    };
    tokio::time::timeout(limit, all).await.unwrap_or_else(|_| {
        panic!("the proxy did not close its {n} idle upstream connections within {limit:?}")
    });
}

/// Expired idle connections are closed when they expire, not at the next checkout: after a burst
/// and no further traffic, the origin sees every pooled connection closed soon after the timeout.
#[tokio::test]
async fn expired_idle_connections_are_closed_without_traffic() {
    within(10, async {
        const N: usize = 8;
        let (addr, mut closed) = closing_origin(N, false).await;
        let mut peer = HttpPeer::new(&addr.to_string()).unwrap();
        peer.options.idle_timeout = Some(Duration::from_millis(300));
        let connector = Connector::default();
        let mut app = HttpProxy::new(To(peer));
        app.set_connector(connector.clone());
        let p = Proxy::start_with(app, |_| {});
        let _clients = burst(p.addr, N).await;
        closes(&mut closed, N, Duration::from_millis(300 + 1500)).await;
        assert!(
            support::eventually(|| connector.pool().stats().idle == 0).await,
            "{:?}",
            connector.pool().stats()
        );
    })
    .await;
}

/// An idle pooled connection the origin closes is closed on the proxy's side at once (no socket
/// left in CLOSE-WAIT until the next request), long before its idle timeout.
#[tokio::test]
async fn idle_connection_closed_by_the_origin_is_closed_promptly() {
    within(10, async {
        const N: usize = 4;
        let (addr, mut closed) = closing_origin(N, true).await;
        let mut peer = HttpPeer::new(&addr.to_string()).unwrap();
        peer.options.idle_timeout = Some(Duration::from_secs(60));
        let p = Proxy::start(To(peer));
        let _clients = burst(p.addr, N).await;
        closes(&mut closed, N, Duration::from_secs(2)).await;
    })
    .await;
}
