//! HTTP/1.1 behaviour through the proxy, over loopback: connection reuse on both sides, framing
//! honesty (truncation, chunked, trailers), Expect/100-continue, upgrades, HTTP/1.0 clients,
//! pipelining, HEAD, Unix sockets and IPv6, CONNECT, large bodies, hop-by-hop headers.

mod support;

use std::path::PathBuf;
use std::time::Duration;

use proxy::connector::Connector;
use proxy::protocol::stream::SocketAddr as Addr;
use proxy::proxy::HttpProxy;
use support::client::{build_request, chunked_body, get, Conn};
use support::harness::{Proxy, To};
use support::origin::{big_body, websocket_accept, Origin};
use support::{eventually, within};

/// Sends every request to one fixed origin (`127.0.0.1:port` or a Unix socket path).
async fn setup() -> (Origin, Proxy) {
    let origin = Origin::start().await;
    let p = Proxy::start(To(origin.addr.to_string()));
    (origin, p)
}

/// Header lines of an echo dump (between the request line and the blank line), lowercased names.
fn dump_headers(dump: &str) -> Vec<(String, String)> {
    dump.split("\n\n")
        .next()
        .unwrap_or("")
        .lines()
        .skip(1)
        .filter_map(|l| l.split_once(": "))
        .map(|(n, v)| (n.to_string(), v.to_string()))
        .collect()
}

fn temp_sock(tag: &str) -> PathBuf {
    std::env::temp_dir().join(format!("libproxy-h1-{}-{tag}.sock", std::process::id()))
}

// 1
#[tokio::test]
async fn keepalive_both_sides() {
    let (origin, p) = setup().await;
    within(10, async {
        let mut c = Conn::connect(p.addr).await.unwrap();
        for i in 0..10 {
            let r = c.request("GET", &format!("/echo?i={i}"), &[], b"").await;
            assert_eq!(r.status, 200, "request {i}: {}", r.text());
            assert!(r.complete);
            assert!(r.text().starts_with(&format!("GET /echo?i={i} HTTP/1.1")));
        }
    })
    .await;
    assert_eq!(origin.accepts(), 1, "one upstream connection for all 10 requests");
    assert_eq!(origin.requests(), 10);
}

// 2
#[tokio::test]
async fn pool_shared_across_clients() {
    let origin = Origin::start().await;
    let connector = Connector::default();
    let mut app = HttpProxy::new(To(origin.addr.to_string()));
    app.set_connector(connector.clone());
    let p = Proxy::start_with(app, |_| {});
    within(10, async {
        let a = get(p.addr, "/echo?client=a").await;
        assert_eq!(a.status, 200);
        // The upstream connection goes back to the pool after the response is finished.
        assert!(eventually(|| connector.pool().stats().idle == 1).await, "{:?}", connector.pool().stats());
        let b = get(p.addr, "/echo?client=b").await;
        assert_eq!(b.status, 200);
        assert_eq!(a.header("x-origin-conn"), b.header("x-origin-conn"));
    })
    .await;
    assert_eq!(origin.accepts(), 1, "client B reused A's upstream connection");
    assert!(connector.pool().stats().reused >= 1, "{:?}", connector.pool().stats());
}

// 3
#[tokio::test]
async fn upstream_close_is_detected() {
    let (origin, p) = setup().await;
    within(10, async {
        let mut c = Conn::connect(p.addr).await.unwrap();
        let r = c.request("GET", "/close", &[], b"").await;
        assert_eq!(r.status, 200);
        assert_eq!(r.text(), "closing");
        assert!(r.complete);
        assert!(eventually(|| origin.closes() == 1).await, "the origin did not close its end");
        let r = c.request("GET", "/echo", &[], b"").await;
        assert_eq!(r.status, 200, "{}", r.text());
        assert_eq!(r.header("x-origin-conn"), Some("2"));
        // A fresh client too.
        let r = get(p.addr, "/echo").await;
        assert_eq!(r.status, 200);
    })
    .await;
    assert_eq!(origin.accepts(), 2);
}

/// An origin that answers each connection's first request with a keep-alive response (no
/// `Connection: close`), then silently closes the connection once told to (one connection per
/// `notify_one`): a pooled connection goes stale while idle. Returns the address, the accept
/// counter, the close trigger and the count of connections it has closed.
async fn silently_closing_origin() -> (
    std::net::SocketAddr,
    std::sync::Arc<std::sync::atomic::AtomicUsize>,
    std::sync::Arc<tokio::sync::Notify>,
    std::sync::Arc<std::sync::atomic::AtomicUsize>,
) {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    let accepts = std::sync::Arc::new(AtomicUsize::new(0));
    let close = std::sync::Arc::new(tokio::sync::Notify::new());
    let closed = std::sync::Arc::new(AtomicUsize::new(0));
    let acc = accepts.clone();
    let (close2, closed2) = (close.clone(), closed.clone());
    tokio::spawn(async move {
        loop {
            let Ok((mut s, _)) = l.accept().await else { return };
            let serial = acc.fetch_add(1, Ordering::SeqCst) + 1;
            let (close, closed) = (close2.clone(), closed2.clone());
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut scratch = [0u8; 4096];
                while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
                    match s.read(&mut scratch).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => buf.extend_from_slice(&scratch[..n]),
                    }
                }
                let resp =
                    format!("HTTP/1.1 200 OK\r\nContent-Length: 2\r\nx-origin-conn: {serial}\r\n\r\nok");
                let _ = s.write_all(resp.as_bytes()).await;
                close.notified().await;
                let _ = s.shutdown().await;
                drop(s);
                closed.fetch_add(1, Ordering::SeqCst);
            });
        }
    });
    (addr, accepts, close, closed)
}

#[tokio::test]
async fn stale_pooled_connection_is_not_used() {
    let (addr, accepts, close, closed) = silently_closing_origin().await;
    let connector = Connector::default();
    let mut app = HttpProxy::new(To(addr.to_string()));
    app.set_connector(connector.clone());
    let p = Proxy::start_with(app, |_| {});
    within(10, async {
        let mut c = Conn::connect(p.addr).await.unwrap();
        let r = c.request("GET", "/one", &[], b"").await;
        assert_eq!((r.status, r.text().as_str()), (200, "ok"));
        assert!(eventually(|| connector.pool().stats().idle == 1).await);
        // The origin closes the idle pooled connection.
        close.notify_one();
        assert!(eventually(|| closed.load(std::sync::atomic::Ordering::SeqCst) == 1).await);
        let r = c.request("GET", "/two", &[], b"").await;
        assert_eq!((r.status, r.text().as_str()), (200, "ok"), "{:?}", r.headers);
        assert_eq!(r.header("x-origin-conn"), Some("2"));
    })
    .await;
    assert_eq!(accepts.load(std::sync::atomic::Ordering::SeqCst), 2);
}

// 4
#[tokio::test]
async fn truncated_content_length_is_not_completed() {
    let (_origin, p) = setup().await;
    within(15, async {
        let mut c = Conn::connect(p.addr).await.unwrap();
        c.send(&build_request("GET", "/truncate-cl", &[], b"")).await.unwrap();
        let r = c.read_response().await.unwrap();
        assert_eq!(r.status, 200);
        assert!(!r.complete, "truncated body must not look complete");
        assert!(r.body.len() < 100);
        assert!(b"0123456789".starts_with(&r.body), "{:?}", r.text());
    })
    .await;
}

#[tokio::test]
async fn truncated_chunked_is_not_completed() {
    let (_origin, p) = setup().await;
    within(15, async {
        let mut c = Conn::connect(p.addr).await.unwrap();
        c.send(&build_request("GET", "/truncate-chunked", &[], b"")).await.unwrap();
        let r = c.read_response().await.unwrap();
        assert_eq!(r.status, 200);
        assert!(!r.complete, "no terminal chunk must reach the client");
        assert!("hello world".starts_with(&r.text()), "{:?}", r.text());
    })
    .await;
}

// 5
#[tokio::test]
async fn chunked_response_passes_through() {
    let (_origin, p) = setup().await;
    within(10, async {
        let mut c = Conn::connect(p.addr).await.unwrap();
        let r = c.request("GET", "/chunked", &[], b"").await;
        assert_eq!(r.status, 200);
        assert!(r.complete);
        assert_eq!(r.text(), "hello chunked world");
        assert!(
            r.header("transfer-encoding").is_some_and(|v| v.eq_ignore_ascii_case("chunked")),
            "{:?}",
            r.headers
        );
        assert!(r.header("content-length").is_none());
        // Still usable.
        let r = c.request("GET", "/echo", &[], b"").await;
        assert_eq!(r.status, 200);
    })
    .await;
}

#[tokio::test]
async fn response_trailers_pass_through() {
    let (_origin, p) = setup().await;
    within(10, async {
        let mut c = Conn::connect(p.addr).await.unwrap();
        let r = c.request("GET", "/trailers", &[("TE", "trailers")], b"").await;
        assert_eq!(r.status, 200);
        assert!(r.complete);
        assert_eq!(r.text(), "hello chunked world");
        assert_eq!(r.trailer("x-trailer-a"), Some("1"), "{:?}", r.trailers);
        assert_eq!(r.trailer("x-checksum"), Some("abc"), "{:?}", r.trailers);
    })
    .await;
}

#[tokio::test]
async fn request_trailers_pass_through() {
    let (origin, p) = setup().await;
    within(10, async {
        let mut c = Conn::connect(p.addr).await.unwrap();
        let body = chunked_body(&[b"hello", b" ", b"world"], &[("x-req-trailer", "yes"), ("x-sum", "42")]);
        let r = c
            .request(
                "POST",
                "/echo",
                &[("Transfer-Encoding", "chunked"), ("Trailer", "x-req-trailer, x-sum")],
                &body,
            )
            .await;
        assert_eq!(r.status, 200);
        let t = r.text();
        assert!(t.contains("\n\nhello world"), "{t}");
        assert!(t.contains("trailer x-req-trailer: yes\n"), "{t}");
        assert!(t.contains("trailer x-sum: 42\n"), "{t}");
    })
    .await;
    assert_eq!(origin.requests(), 1);
}

// 6
#[tokio::test]
async fn expect_continue_is_relayed() {
    let (_origin, p) = setup().await;
    within(10, async {
        let mut c = Conn::connect(p.addr).await.unwrap();
        let head =
            build_request("POST", "/continue", &[("Expect", "100-continue"), ("Content-Length", "11")], b"");
        c.send(&head).await.unwrap();
        let interim = c.read_response().await.unwrap();
        assert_eq!(interim.status, 100);
        c.send(b"hello world").await.unwrap();
        let r = c.read_response().await.unwrap();
        assert_eq!(r.status, 200);
        assert_eq!(r.text(), "hello world");
        // Connection stays usable.
        let r = c.request("GET", "/echo", &[], b"").await;
        assert_eq!(r.status, 200);
    })
    .await;
}

#[tokio::test]
async fn rejected_expect_never_forwards_body() {
    let (origin, p) = setup().await;
    within(10, async {
        let mut c = Conn::connect(p.addr).await.unwrap();
        let head = build_request(
            "POST",
            "/reject-expect",
            &[("Expect", "100-continue"), ("Content-Length", "11")],
            b"",
        );
        c.send(&head).await.unwrap();
        let r = c.read_response().await.unwrap();
        assert_eq!(r.status, 417);
        // An impatient client sends the body anyway; it must not reach the origin.
        let _ = c.send(b"SECRETBODY!").await;
        assert!(
            c.closed_within(Duration::from_secs(3)).await,
            "connection should be closed after a 417 to an unsent body"
        );
    })
    .await;
    assert!(eventually(|| origin.received().len() == 1).await);
    let got = &origin.received_text()[0];
    assert!(got.starts_with("POST /reject-expect HTTP/1.1"), "{got}");
    assert!(!got.contains("SECRETBODY"), "body reached the origin: {got}");
}

// 7
#[tokio::test]
async fn websocket_upgrade_tunnels() {
    let (_origin, p) = setup().await;
    within(10, async {
        let key = "dGhlIHNhbXBsZSBub25jZQ==";
        let mut c = Conn::connect(p.addr).await.unwrap();
        c.send(&build_request(
            "GET",
            "/ws",
            &[
                ("Upgrade", "websocket"),
                ("Connection", "Upgrade"),
                ("Sec-WebSocket-Key", key),
                ("Sec-WebSocket-Version", "13"),
            ],
            b"",
        ))
        .await
        .unwrap();
        let r = c.read_response().await.unwrap();
        assert_eq!(r.status, 101);
        assert_eq!(websocket_accept(key), "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
        assert_eq!(r.header("sec-websocket-accept"), Some("s3pPLMBiTxaQ9kYGzzhZRbK+xOo="));
        assert!(r.header("upgrade").is_some_and(|u| u.eq_ignore_ascii_case("websocket")));
        for msg in [&b"\x81\x05hello"[..], b"raw bytes \x00\xff through"] {
            c.send(msg).await.unwrap();
            let back = c.read_exact(msg.len()).await.unwrap();
            assert_eq!(back, msg);
        }
    })
    .await;
}

// 8
#[tokio::test]
async fn no_tunnel_without_101() {
    let (_origin, p) = setup().await;
    within(10, async {
        let mut c = Conn::connect(p.addr).await.unwrap();
        let r = c
            .request(
                "GET",
                "/no-101-upgrade",
                &[
                    ("Upgrade", "websocket"),
                    ("Connection", "Upgrade"),
                    ("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="),
                    ("Sec-WebSocket-Version", "13"),
                ],
                b"",
            )
            .await;
        assert_eq!(r.status, 200);
        assert_eq!(r.text(), "no");
        // The connection is still HTTP: the next request is parsed and answered normally.
        let r = c.request("GET", "/echo?after", &[], b"").await;
        assert_eq!(r.status, 200);
        assert!(r.text().starts_with("GET /echo?after HTTP/1.1"), "{}", r.text());
    })
    .await;
}

// 9
#[tokio::test]
async fn http10_without_keepalive_closes() {
    let (_origin, p) = setup().await;
    within(10, async {
        let mut c = Conn::connect(p.addr).await.unwrap();
        c.send(b"GET /echo HTTP/1.0\r\nHost: localhost\r\n\r\n").await.unwrap();
        let r = c.read_response().await.unwrap();
        assert_eq!(r.status, 200);
        assert!(r.complete);
        assert!(r.text().starts_with("GET /echo HTTP/1.1"), "{}", r.text());
        assert!(c.closed_within(Duration::from_secs(3)).await);
    })
    .await;
}

#[tokio::test]
async fn http10_keepalive_is_honoured() {
    let (origin, p) = setup().await;
    within(10, async {
        let mut c = Conn::connect(p.addr).await.unwrap();
        for i in 0..2 {
            c.send(
                format!("GET /echo?i={i} HTTP/1.0\r\nHost: localhost\r\nConnection: keep-alive\r\n\r\n")
                    .as_bytes(),
            )
            .await
            .unwrap();
            let r = c.read_response().await.unwrap();
            assert_eq!(r.status, 200, "request {i}");
            assert!(
                r.header("connection").is_some_and(|v| v.eq_ignore_ascii_case("keep-alive")),
                "{:?}",
                r.headers
            );
            assert!(r.header("content-length").is_some());
            assert!(r.text().contains(&format!("/echo?i={i}")));
        }
    })
    .await;
    assert_eq!(origin.requests(), 2);
}

#[tokio::test]
async fn chunked_upstream_to_http10_client_is_close_delimited() {
    let (_origin, p) = setup().await;
    within(10, async {
        let mut c = Conn::connect(p.addr).await.unwrap();
        c.send(b"GET /chunked HTTP/1.0\r\nHost: localhost\r\nConnection: keep-alive\r\n\r\n").await.unwrap();
        let r = c.read_response().await.unwrap();
        assert_eq!(r.status, 200);
        assert!(
            r.header("transfer-encoding").is_none(),
            "no chunked framing to a 1.0 client: {:?}",
            r.headers
        );
        assert!(r.header("content-length").is_none(), "{:?}", r.headers);
        // Read until close: the body must be exactly the decoded bytes.
        assert_eq!(r.text(), "hello chunked world");
        assert!(r.complete);
        assert!(
            !r.header("connection").is_some_and(|v| v.eq_ignore_ascii_case("keep-alive")),
            "a close-delimited body cannot keep the connection: {:?}",
            r.headers
        );
    })
    .await;
}

// 10
#[tokio::test]
async fn pipelined_requests_answered_in_order() {
    let (origin, p) = setup().await;
    within(10, async {
        let mut c = Conn::connect(p.addr).await.unwrap();
        let mut batch = build_request("GET", "/status/201", &[], b"");
        batch.extend(build_request("POST", "/echo?second", &[], b"body-two"));
        batch.extend(build_request("GET", "/status/203", &[], b""));
        c.send(&batch).await.unwrap();
        let r1 = c.read_response().await.unwrap();
        let r2 = c.read_response().await.unwrap();
        let r3 = c.read_response().await.unwrap();
        assert_eq!(r1.status, 201);
        assert_eq!(r1.text(), "status 201\n");
        assert_eq!(r2.status, 200);
        assert!(r2.text().starts_with("POST /echo?second HTTP/1.1"));
        assert!(r2.text().ends_with("body-two"));
        assert_eq!(r3.status, 203);
        assert_eq!(r3.text(), "status 203\n");
    })
    .await;
    assert_eq!(origin.accepts(), 1);
}

// 11
#[tokio::test]
async fn head_has_no_body_and_keeps_connection() {
    let (_origin, p) = setup().await;
    within(10, async {
        let mut c = Conn::connect(p.addr).await.unwrap();
        for _ in 0..2 {
            let r = c.request("HEAD", "/big/1000", &[], b"").await;
            assert_eq!(r.status, 200);
            assert_eq!(r.header("content-length"), Some("1000"), "{:?}", r.headers);
            assert!(r.body.is_empty());
        }
        // Nothing stray: the next response starts exactly where it should.
        let r = c.request("GET", "/echo?after-head", &[], b"").await;
        assert_eq!(r.status, 200);
        assert!(r.text().starts_with("GET /echo?after-head HTTP/1.1"), "{}", r.text());
    })
    .await;
}

// 12
#[tokio::test]
async fn unix_socket_upstream_and_listener() {
    let up_path = temp_sock("origin");
    let px_path = temp_sock("proxy");
    let _ = std::fs::remove_file(&px_path);
    let origin = Origin::start_unix(&up_path).await;
    let app = HttpProxy::new(To(up_path.to_string_lossy().into_owned()));
    let mut uds_addr = None;
    let p = Proxy::start_with(app, |svc| {
        uds_addr = Some(svc.add_uds(&px_path).unwrap());
    });
    assert!(matches!(uds_addr, Some(Addr::Unix(_))), "{uds_addr:?}");
    within(10, async {
        // TCP client to UDS upstream.
        let r = get(p.addr, "/echo?tcp").await;
        assert_eq!(r.status, 200, "{}", r.text());
        assert!(r.text().starts_with("GET /echo?tcp HTTP/1.1"));
        // UDS client to UDS upstream, keep-alive.
        let mut c = Conn::connect_unix(&px_path).await.unwrap();
        for i in 0..3 {
            let r = c.request("POST", "/echo", &[], format!("uds-{i}").as_bytes()).await;
            assert_eq!(r.status, 200);
            assert!(r.text().ends_with(&format!("uds-{i}")));
        }
    })
    .await;
    assert_eq!(origin.accepts(), 1, "the Unix upstream connection is pooled too");
    drop(p);
    let _ = std::fs::remove_file(&px_path);
}

#[tokio::test]
async fn ipv6_loopback_listener() {
    if let Err(e) = std::net::TcpListener::bind("[::1]:0") {
        panic!("this test needs the IPv6 loopback [::1] ({e}): sysctl -w net.ipv6.conf.lo.disable_ipv6=0");
    }
    let origin = Origin::start().await;
    let app = HttpProxy::new(To(origin.addr.to_string()));
    let mut v6 = None;
    let _p = Proxy::start_with(app, |svc| {
        v6 = svc.add_tcp("[::1]:0").ok();
    });
    let Some(Addr::Inet(addr)) = v6 else {
        panic!("binding [::1]:0 on the service failed although the OS allows it: {v6:?}");
    };
    assert!(addr.is_ipv6());
    within(10, async {
        let r = get(addr, "/echo?v6").await;
        assert_eq!(r.status, 200);
        assert!(r.text().starts_with("GET /echo?v6 HTTP/1.1"));
    })
    .await;
}

// 13
#[tokio::test]
async fn connect_is_refused() {
    let (origin, p) = setup().await;
    within(10, async {
        let mut c = Conn::connect(p.addr).await.unwrap();
        c.send(b"CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n").await.unwrap();
        let r = c.read_response().await.unwrap();
        assert_eq!(r.status, 405);
        assert!(c.closed_within(Duration::from_secs(3)).await);
        // A late forward of the CONNECT would reach the origin before this request does.
        let r = get(p.addr, "/echo?sentinel").await;
        assert_eq!(r.status, 200, "{}", r.text());
    })
    .await;
    let seen = origin.received_text();
    assert!(seen.len() == 1 && seen[0].starts_with("GET /echo?sentinel HTTP/1.1"), "{seen:?}");
    assert_eq!(origin.accepts(), 1);
}

// 14
#[tokio::test]
async fn big_response_streams_exactly() {
    let (_origin, p) = setup().await;
    within(15, async {
        let mut c = Conn::connect(p.addr).await.unwrap();
        let n = 1 << 20;
        let r = c.request("GET", &format!("/big/{n}"), &[], b"").await;
        assert_eq!(r.status, 200);
        assert!(r.complete);
        assert_eq!(r.body.len(), n);
        assert!(r.body == big_body(n), "body differs from big_body");
        let r = c.request("GET", "/echo", &[], b"").await;
        assert_eq!(r.status, 200);
    })
    .await;
}

#[tokio::test]
async fn big_request_streams_exactly() {
    let (_origin, p) = setup().await;
    within(15, async {
        let mut c = Conn::connect(p.addr).await.unwrap();
        let body = big_body(1 << 20);
        let r = c.request("POST", "/echo", &[], &body).await;
        assert_eq!(r.status, 200);
        assert!(r.complete);
        let t = &r.body;
        assert!(t.ends_with(&body), "request body altered (dump len {})", t.len());
        let dump = String::from_utf8_lossy(&t[..t.len() - body.len()]).into_owned();
        assert!(dump.contains("content-length: 1048576\n"), "{dump}");
        // Chunked upload of the same size.
        let chunks: Vec<&[u8]> = body.chunks(100_000).collect();
        let wire = chunked_body(&chunks, &[]);
        let r = c.request("POST", "/echo", &[("Transfer-Encoding", "chunked")], &wire).await;
        assert_eq!(r.status, 200);
        assert!(r.body.ends_with(&body));
    })
    .await;
}

// 15
#[tokio::test]
async fn hop_by_hop_headers_are_removed() {
    let (_origin, p) = setup().await;
    within(10, async {
        let mut c = Conn::connect(p.addr).await.unwrap();
        let r = c
            .request(
                "GET",
                "/echo",
                &[
                    ("Connection", "x-foo"),
                    ("x-foo", "1"),
                    ("Keep-Alive", "5"),
                    ("Proxy-Connection", "keep-alive"),
                    ("TE", "trailers"),
                    ("x-end-to-end", "kept"),
                ],
                b"",
            )
            .await;
        assert_eq!(r.status, 200);
        let dump = r.text();
        let headers = dump_headers(&dump);
        for banned in ["x-foo", "keep-alive", "proxy-connection", "te"] {
            assert!(!headers.iter().any(|(n, _)| n == banned), "{banned} reached the origin:\n{dump}");
        }
        for (n, v) in &headers {
            if n == "connection" {
                assert!(!v.to_ascii_lowercase().contains("x-foo"), "{dump}");
            }
        }
        assert!(headers.iter().any(|(n, v)| n == "x-end-to-end" && v == "kept"), "{dump}");
    })
    .await;
}
