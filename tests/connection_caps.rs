//! Connection caps over loopback (issue 10 item 8): past a cap a new connection is refused fast
//! (accepted and closed unanswered), the connections already open keep being served, and a freed
//! slot admits again.

mod support;

use std::net::SocketAddr;
use std::time::Duration;

use proxy::error::Result;
use proxy::protocol::stream::SocketAddr as Addr;
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

/// A keep-alive connection that got one answer (so the proxy has accepted and admitted it).
async fn served(addr: SocketAddr) -> Conn {
    let mut c = Conn::connect(addr).await.unwrap();
    assert_eq!(c.request("GET", "/echo", &[], b"").await.status, 200);
    c
}

/// A connection past the cap: the TCP handshake completes (the kernel's), then the proxy closes
/// it without an answer, well before any timeout of the proxy's could.
async fn refused(addr: SocketAddr) {
    let mut c = Conn::connect(addr).await.unwrap();
    let _ = c.send(b"GET /echo HTTP/1.1\r\nHost: a\r\n\r\n").await;
    assert!(c.closed_within(Duration::from_secs(2)).await, "connection past the cap closed unanswered");
}

#[tokio::test]
async fn connections_past_a_cap_are_refused_fast_and_the_open_ones_are_served() {
    within(30, async {
        let origin = Origin::start().await;
        let peer = HttpPeer::new(&origin.addr.to_string()).unwrap();
        // (case, per-listener cap, service cap, threads, work stealing)
        let cases = [
            ("per listener", 3, 0, 1, true),
            ("per listener, shared by isolated runtimes", 3, 0, 2, false),
            ("per service", 0, 3, 1, true),
            ("both, service tighter", 5, 3, 1, true),
        ];
        for (case, per_listener, per_service, threads, stealing) in cases {
            let p = Proxy::start_with(HttpProxy::new(To(peer.clone())), |s| {
                s.set_max_connections_per_listener(per_listener);
                s.set_max_connections(per_service);
                s.set_threads(threads);
                s.set_work_stealing(stealing);
            });
            let mut open = Vec::new();
            for _ in 0..3 {
                open.push(served(p.addr).await);
            }
            refused(p.addr).await;
            for c in &mut open {
                assert_eq!(c.request("GET", "/echo", &[], b"").await.status, 200, "{case}: open ones served");
            }
            // A closed connection gives its slot back once the proxy sees it gone.
            drop(open.pop());
            let again = loop {
                let mut c = Conn::connect(p.addr).await.unwrap();
                c.send(b"GET /echo HTTP/1.1\r\nHost: a\r\n\r\n").await.unwrap();
                if let Ok(r) = c.read_response().await {
                    break r.status;
                }
                tokio::task::yield_now().await;
            };
            assert_eq!(again, 200, "{case}: a freed slot admits");
        }
    })
    .await;
}

#[tokio::test]
async fn a_service_cap_counts_every_endpoint() {
    within(20, async {
        let origin = Origin::start().await;
        let peer = HttpPeer::new(&origin.addr.to_string()).unwrap();
        let mut second = None;
        let p = Proxy::start_with(HttpProxy::new(To(peer)), |s| {
            s.set_max_connections(2);
            second = match s.add_tcp("127.0.0.1:0").unwrap() {
                Addr::Inet(a) => Some(a),
                other => panic!("unexpected {other}"),
            };
        });
        let second = second.unwrap();
        let mut a = served(p.addr).await;
        let mut b = served(second).await;
        refused(p.addr).await;
        refused(second).await;
        assert_eq!(a.request("GET", "/echo", &[], b"").await.status, 200);
        assert_eq!(b.request("GET", "/echo", &[], b"").await.status, 200);
    })
    .await;
}
