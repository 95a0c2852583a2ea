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
