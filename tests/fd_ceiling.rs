//! The example proxy under a low descriptor limit (issue 10 item 8): at the ceiling the
//! connections already open keep being served, and with a connection cap below the ceiling a
//! connection past it is refused at once instead of waiting unaccepted.

mod support;

use std::time::Duration;

use support::client::Conn;
use support::example::{self, Options};
use support::origin::Origin;
use support::within;

/// Low enough to reach with a few dozen connections, high enough for the runtime's own
/// descriptors (epoll, eventfd, stdio, the listener) and some served connections.
const NOFILE: u64 = 64;

async fn served(addr: std::net::SocketAddr) -> Conn {
    let mut c = Conn::connect(addr).await.unwrap();
    let r = c.request("GET", "/echo", &[], b"").await;
    assert_eq!(r.status, 200, "{}", r.text());
    c
}

#[tokio::test]
async fn open_connections_are_served_at_the_descriptor_ceiling_and_it_recovers() {
    let bin = example::binary();
    let origin = Origin::start().await;
    let ex = example::start(&bin, origin.addr, Options { nofile: Some(NOFILE), ..Default::default() }).await;
    within(60, async {
        let mut open = Vec::new();
        for _ in 0..8 {
            open.push(served(ex.addr).await);
        }
        // More connections than the proxy has descriptors for: accepts fail with EMFILE past
        // some point and the rest wait in the kernel's queue.
        let mut flood = Vec::new();
        for _ in 0..NOFILE {
            flood.push(Conn::connect(ex.addr).await.unwrap());
        }
        // The ones already open are served on (their pooled upstream connections need no new
        // descriptor).
        for c in &mut open {
            let r = c.request("GET", "/echo", &[], b"").await;
            assert_eq!(r.status, 200, "{}", r.text());
        }
        // Once descriptors are free again the proxy accepts and serves new connections.
        drop(flood);
        let mut c = Conn::connect(ex.addr).await.unwrap();
        let r = c.request("GET", "/echo", &[], b"").await;
        assert_eq!(r.status, 200, "{}", r.text());
    })
    .await;
}

#[tokio::test]
async fn below_the_ceiling_a_cap_refuses_fast_and_serves_the_open_ones() {
    let bin = example::binary();
    let origin = Origin::start().await;
    let env = vec![("PROXY_MAX_CONNECTIONS", "10".to_string())];
    let ex = example::start(&bin, origin.addr, Options { nofile: Some(NOFILE), env }).await;
    within(60, async {
        let mut open = Vec::new();
        for _ in 0..10 {
            open.push(served(ex.addr).await);
        }
        // Past the cap: closed unanswered, well before the proxy's header timeout (10 s).
        for _ in 0..30 {
            let mut c = Conn::connect(ex.addr).await.unwrap();
            let _ = c.send(b"GET /echo HTTP/1.1\r\nHost: a\r\n\r\n").await;
            assert!(c.closed_within(Duration::from_secs(3)).await, "a connection past the cap was kept");
        }
        for c in &mut open {
            let r = c.request("GET", "/echo", &[], b"").await;
            assert_eq!(r.status, 200, "{}", r.text());
        }
        // A freed slot admits again.
        drop(open.pop());
        let mut admitted = false;
        for _ in 0..100 {
            let mut c = Conn::connect(ex.addr).await.unwrap();
            if c.send(b"GET /echo HTTP/1.1\r\nHost: a\r\n\r\n").await.is_ok() {
                if let Ok(r) = c.read_response().await {
                    assert_eq!(r.status, 200, "{}", r.text());
                    admitted = true;
                    break;
                }
            }
        }
        assert!(admitted, "a freed slot never admitted a new connection");
    })
    .await;
}
