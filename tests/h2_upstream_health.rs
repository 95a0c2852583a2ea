//! Upstream HTTP/2 connection health: a GOAWAY from the origin, a refused stream, and an origin
//! that stops answering PINGs. Requests keep succeeding in every case.

mod support;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{Response, StatusCode};
use proxy::connector::Connector;
use proxy::error::Result;
use proxy::protocol::h2::H2Options;
use proxy::proxy::{HttpProxy, ProxyHttp, Session};
use proxy::upstream::{Alpn, HttpPeer};
use support::client::Conn;
use support::harness::Proxy;
use support::within;
use tokio::net::TcpListener;

struct To(HttpPeer);

impl ProxyHttp for To {
    type CTX = ();
    fn new_ctx(&self) {}
    async fn upstream_peer(&self, _s: &mut Session, _c: &mut ()) -> Result<HttpPeer> {
        Ok(self.0.clone())
    }
}

/// How the test origin treats each connection.
#[derive(Clone, Copy)]
enum Mode {
    /// Answers one request, then sends GOAWAY and finishes.
    GoawayAfterOne,
    /// Refuses the very first stream it ever sees, answers everything else.
    RefuseFirst,
    /// Answers one request on the first connection, then stops reading it (PINGs go unanswered);
    /// later connections behave.
    FreezeFirst,
}

async fn origin(mode: Mode) -> (SocketAddr, Arc<AtomicUsize>) {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    let accepts = Arc::new(AtomicUsize::new(0));
    let refused = Arc::new(AtomicUsize::new(0));
    let count = accepts.clone();
    tokio::spawn(async move {
        while let Ok((s, _)) = l.accept().await {
            let n = count.fetch_add(1, Ordering::SeqCst);
            let refused = refused.clone();
            tokio::spawn(async move {
                let Ok(mut conn) = h2::server::handshake(s).await else { return };
                let mut answered = 0;
                while let Some(Ok((_req, mut respond))) = conn.accept().await {
                    if matches!(mode, Mode::RefuseFirst) && refused.fetch_add(1, Ordering::SeqCst) == 0 {
                        respond.send_reset(h2::Reason::REFUSED_STREAM);
                        continue;
                    }
                    let resp = Response::builder().status(StatusCode::OK).body(()).unwrap();
                    let mut body = respond.send_response(resp, false).unwrap();
                    body.send_data(Bytes::from_static(b"ok"), true).unwrap();
                    answered += 1;
                    match mode {
                        Mode::GoawayAfterOne => {
                            conn.graceful_shutdown();
                        }
                        Mode::FreezeFirst if n == 0 && answered == 1 => {
                            // Flush the answer, then hold the socket without ever reading it.
                            let _ = tokio::time::timeout(Duration::from_millis(100), conn.accept()).await;
                            tokio::time::sleep(Duration::from_secs(3600)).await;
                        }
                        _ => {}
                    }
                }
                // Drive the connection to its end (flushes GOAWAY and the last response).
                let _ = std::future::poll_fn(|cx| conn.poll_closed(cx)).await;
            });
        }
    });
    (addr, accepts)
}

fn h2_peer(addr: SocketAddr) -> HttpPeer {
    let mut peer = HttpPeer::new(&addr.to_string()).unwrap();
    peer.options.alpn = Alpn::H2;
    peer.options.read_timeout = Some(Duration::from_secs(3));
    peer
}

#[tokio::test]
async fn goaway_from_upstream_does_not_fail_requests() {
    within(20, async {
        let (addr, accepts) = origin(Mode::GoawayAfterOne).await;
        let p = Proxy::start(To(h2_peer(addr)));
        let mut c = Conn::connect(p.addr).await.unwrap();
        for i in 0..5 {
            let r = c.request("GET", "/", &[], b"").await;
            assert_eq!(r.status, 200, "request {i}");
            assert_eq!(r.body, b"ok");
        }
        assert!(accepts.load(Ordering::SeqCst) >= 2, "GOAWAY'd connections were replaced");
    })
    .await;
}

#[tokio::test]
async fn refused_stream_is_retried() {
    within(20, async {
        let (addr, _) = origin(Mode::RefuseFirst).await;
        let p = Proxy::start(To(h2_peer(addr)));
        let mut c = Conn::connect(p.addr).await.unwrap();
        let r = c.request("POST", "/", &[], b"replayable").await;
        assert_eq!(r.status, 200);
        assert_eq!(r.body, b"ok");
    })
    .await;
}

#[tokio::test]
async fn idle_connection_that_stops_answering_pings_is_retired() {
    within(20, async {
        let (addr, accepts) = origin(Mode::FreezeFirst).await;
        let mut connector = Connector::default();
        let opts = H2Options {
            ping_interval: Duration::from_millis(100),
            ping_timeout: Duration::from_millis(200),
            ..H2Options::default()
        };
        connector.set_h2_options(opts);
        let mut app = HttpProxy::new(To(h2_peer(addr)));
        app.set_connector(connector.clone());
        let p = Proxy::start_with(app, |_| {});
        let mut c = Conn::connect(p.addr).await.unwrap();
        assert_eq!(c.request("GET", "/", &[], b"").await.status, 200);
        // Long enough for a PING to go unanswered past its timeout.
        tokio::time::sleep(Duration::from_millis(800)).await;
        let t = std::time::Instant::now();
        let r = c.request("GET", "/", &[], b"").await;
        assert_eq!(r.status, 200);
        assert!(t.elapsed() < Duration::from_secs(1), "the frozen connection was used: {:?}", t.elapsed());
        assert_eq!(accepts.load(Ordering::SeqCst), 2);
        assert_eq!(connector.h2_connections_opened(), 2);
    })
    .await;
}
