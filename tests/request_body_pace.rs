//! Slow request bodies: a total body deadline and a minimum rate end a trickling upload with 408
//! and let its upstream connection go, where the per-read idle timeout alone never fires.

mod support;

use std::time::Duration;

use proxy::app::HttpServerOptions;
use proxy::error::Result;
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

/// Sends the head of a 1,000-byte POST, then its body one byte every 50 ms (far inside the 30 s
/// idle timeout; 20 bytes/s), and returns the status line the proxy answers with while the client
/// is still sending, with the time it took.
async fn slow_body(origin: &Origin, tweak: impl FnOnce(&mut HttpServerOptions)) -> (String, Duration) {
    use tokio::io::AsyncWriteExt;
    let mut app = HttpProxy::new(To(HttpPeer::new(&origin.addr.to_string()).unwrap()));
    tweak(app.server_options_mut());
    let p = Proxy::start_with(app, |_| {});
    let stream = tokio::net::TcpStream::connect(p.addr).await.unwrap();
    let (mut read, mut write) = stream.into_split();
    let started = std::time::Instant::now();
    write.write_all(b"POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 1000\r\n\r\n").await.unwrap();
    let sender = tokio::spawn(async move {
        while write.write_all(b"x").await.is_ok() {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    });
    let line = status_line(&mut read).await;
    let took = started.elapsed();
    sender.abort();
    (line, took)
}

/// The status line of the response arriving on `read`.
async fn status_line(read: &mut tokio::net::tcp::OwnedReadHalf) -> String {
    use tokio::io::AsyncReadExt;
    let mut got = Vec::new();
    let mut buf = [0u8; 1024];
    while !got.windows(2).any(|w| w == b"\r\n") {
        let n = read.read(&mut buf).await.unwrap();
        assert!(n > 0, "closed without a response");
        got.extend_from_slice(&buf[..n]);
    }
    String::from_utf8_lossy(&got).lines().next().unwrap().to_string()
}

#[tokio::test]
async fn slow_request_bodies_get_408_at_their_deadline_or_minimum_rate() {
    within(20, async {
        type Tweak = fn(&mut HttpServerOptions);
        let cases: [(&str, Tweak); 2] = [
            ("total deadline 400 ms", |o| o.body_deadline = Some(Duration::from_millis(400))),
            ("minimum 200 B/s after 300 ms", |o| {
                o.body_min_rate = 200;
                o.body_rate_grace = Duration::from_millis(300);
            }),
        ];
        for (name, tweak) in cases {
            let origin = Origin::start().await;
            let (line, took) = slow_body(&origin, tweak).await;
            assert!(line.starts_with("HTTP/1.1 408 "), "{name}: {line}");
            assert!(took < Duration::from_secs(3), "{name}: took {took:?}");
            assert_eq!(origin.requests(), 0, "{name}: the origin never sees a complete request");
        }
    })
    .await;
}

/// The limits leave a body that keeps pace alone.
#[tokio::test]
async fn bodies_within_the_deadline_and_rate_pass() {
    within(10, async {
        let origin = Origin::start().await;
        let mut app = HttpProxy::new(To(HttpPeer::new(&origin.addr.to_string()).unwrap()));
        let o = app.server_options_mut();
        o.body_deadline = Some(Duration::from_secs(5));
        o.body_min_rate = 1000;
        o.body_rate_grace = Duration::from_millis(200);
        let p = Proxy::start_with(app, |_| {});
        let mut c = Conn::connect(p.addr).await.unwrap();
        let body = vec![b'y'; 100_000];
        let r = c.request("POST", "/echo", &[], &body).await;
        assert_eq!(r.status, 200);
        assert!(r.body.ends_with(&body));
    })
    .await;
}

/// Signals each request's first piece of body (the body filter runs as bytes arrive, and with
/// buffering on, before any peer is chosen).
struct Buffered(HttpPeer, tokio::sync::mpsc::UnboundedSender<()>);

impl ProxyHttp for Buffered {
    type CTX = bool;
    fn new_ctx(&self) -> bool {
        false
    }
    async fn upstream_peer(&self, _s: &mut Session, _c: &mut bool) -> Result<HttpPeer> {
        Ok(self.0.clone())
    }
    async fn request_body_filter(
        &self,
        _s: &mut Session,
        body: &mut Option<bytes::Bytes>,
        _end: bool,
        seen: &mut bool,
    ) -> Result<()> {
        if body.as_ref().is_some_and(|b| !b.is_empty()) && !std::mem::replace(seen, true) {
            let _ = self.1.send(());
        }
        Ok(())
    }
}

fn buffered_proxy(origin: &Origin, bound: usize) -> (Proxy, tokio::sync::mpsc::UnboundedReceiver<()>) {
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    let mut app = HttpProxy::new(Buffered(HttpPeer::new(&origin.addr.to_string()).unwrap(), tx));
    app.server_options_mut().request_buffer = bound;
    (Proxy::start_with(app, |_| {}), rx)
}

/// With buffering on, clients still sending their bodies have no upstream connection at all; each
/// body then reaches the origin whole, with a Content-Length instead of the client's chunking.
#[tokio::test]
async fn buffered_bodies_open_no_upstream_connection_until_complete() {
    within(10, async {
        const N: usize = 5;
        let origin = Origin::start().await;
        let (p, mut first_bytes) = buffered_proxy(&origin, 64 * 1024);
        let mut clients = Vec::new();
        for _ in 0..N {
            let mut c = Conn::connect(p.addr).await.unwrap();
            c.send(b"POST /echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n")
                .await
                .unwrap();
            clients.push(c);
        }
        for _ in 0..N {
            first_bytes.recv().await.unwrap();
        }
        assert_eq!(origin.accepts(), 0, "no upstream connection while bodies trickle in");
        for c in &mut clients {
            c.send(b"6\r\n world\r\n0\r\n\r\n").await.unwrap();
            let r = c.read_response().await.unwrap();
            assert_eq!(r.status, 200);
            let dump = r.text();
            assert!(dump.contains("content-length: 11\n"), "{dump}");
            assert!(!dump.contains("transfer-encoding"), "{dump}");
            assert!(dump.ends_with("\n\nhello world"), "{dump}");
        }
    })
    .await;
}

/// Past the buffer bound the request is refused with 413, whether the length is declared or found
/// while reading, and nothing goes upstream; a slow buffered body gets 408 at its deadline.
#[tokio::test]
async fn buffered_bodies_past_the_bound_get_413_and_slow_ones_408() {
    within(10, async {
        let origin = Origin::start().await;
        let (p, _rx) = buffered_proxy(&origin, 1000);
        let cases: [(&str, &[u8]); 2] = [
            ("declared", b"POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 1001\r\n\r\n"),
            ("chunked", b"POST /echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3e8\r\n"),
        ];
        for (name, head) in cases {
            let mut c = Conn::connect(p.addr).await.unwrap();
            c.send(head).await.unwrap();
            if name == "chunked" {
                c.send(&[b'z'; 1000]).await.unwrap();
                c.send(b"\r\n1\r\nz\r\n0\r\n\r\n").await.unwrap();
            }
            assert_eq!(c.read_response().await.unwrap().status, 413, "{name}");
        }
        let (line, _) = slow_body(&origin, |o| {
            o.request_buffer = 64 * 1024;
            o.body_deadline = Some(Duration::from_millis(300));
        })
        .await;
        assert!(line.starts_with("HTTP/1.1 408 "), "{line}");
        assert_eq!(origin.accepts(), 0);
    })
    .await;
}

/// Streaming (no buffering), the 408 at the deadline also lets the upstream connection go: the
/// origin, which got the head and part of the body, sees its connection closed.
#[tokio::test]
async fn upstream_connection_of_a_body_past_its_deadline_is_closed() {
    use tokio::io::AsyncReadExt;
    within(10, async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (closed_tx, closed) = tokio::sync::oneshot::channel();
        tokio::spawn(async move {
            let (mut s, _) = listener.accept().await.unwrap();
            let mut buf = [0u8; 4096];
            while matches!(s.read(&mut buf).await, Ok(n) if n > 0) {}
            let _ = closed_tx.send(());
        });
        let mut app = HttpProxy::new(To(HttpPeer::new(&addr.to_string()).unwrap()));
        app.server_options_mut().body_deadline = Some(Duration::from_millis(300));
        let p = Proxy::start_with(app, |_| {});
        let stream = tokio::net::TcpStream::connect(p.addr).await.unwrap();
        let (mut read, mut write) = stream.into_split();
        let sender = tokio::spawn(async move {
            use tokio::io::AsyncWriteExt;
            write.write_all(b"POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 1000\r\n\r\n").await.unwrap();
            while write.write_all(b"x").await.is_ok() {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        });
        let line = status_line(&mut read).await;
        assert!(line.starts_with("HTTP/1.1 408 "), "{line}");
        tokio::time::timeout(Duration::from_secs(2), closed)
            .await
            .expect("the upstream connection is closed with the 408")
            .unwrap();
        sender.abort();
    })
    .await;
}
