//! Checks the test origin and client against each other, so proxy test failures can be trusted
//! to be the proxy's.

mod support;

use std::time::Duration;

use support::client::{self, build_request, chunked_body, send_raw, Conn};
use support::origin::{base64, big_body, blackhole_listener, refused_addr, sha1, websocket_accept, Origin};

#[test]
fn websocket_accept_matches_rfc6455() {
    assert_eq!(websocket_accept("dGhlIHNhbXBsZSBub25jZQ=="), "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
    // FIPS 180 "abc" vector and RFC 4648 padding cases.
    let abc: String = sha1(b"abc").iter().map(|b| format!("{b:02x}")).collect();
    assert_eq!(abc, "a9993e364706816aba3e25717850c26c9cd0d89d");
    assert_eq!(base64(b"f"), "Zg==");
    assert_eq!(base64(b"fo"), "Zm8=");
    assert_eq!(base64(b"foo"), "Zm9v");
}

#[tokio::test]
async fn echo_dumps_request() {
    let origin = Origin::start().await;
    let mut conn = Conn::connect(origin.addr).await.unwrap();
    let resp = conn.request("POST", "/echo?x=1", &[("X-Test", "yes")], b"payload").await;
    assert_eq!(resp.status, 200);
    assert!(resp.complete);
    assert_eq!(resp.header("X-ORIGIN-CONN"), Some("1"));
    let text = resp.text();
    assert!(text.starts_with("POST /echo?x=1 HTTP/1.1\n"), "{text}");
    assert!(text.contains("\nx-test: yes\n"), "{text}");
    assert!(text.contains("\ncontent-length: 7\n"), "{text}");
    assert!(text.ends_with("\n\npayload"), "{text}");
    assert_eq!(origin.requests(), 1);
    let received = origin.received_text();
    assert_eq!(received.len(), 1);
    assert!(received[0].starts_with("POST /echo?x=1 HTTP/1.1\r\nHost: localhost\r\n"));
    assert!(received[0].ends_with("\r\n\r\npayload"));
}

#[tokio::test]
async fn keep_alive_reuses_one_connection() {
    let origin = Origin::start().await;
    let mut conn = Conn::connect(origin.addr).await.unwrap();
    for _ in 0..3 {
        let resp = conn.request("GET", "/echo", &[], b"").await;
        assert_eq!(resp.status, 200);
        assert_eq!(resp.header("x-origin-conn"), Some("1"));
    }
    assert_eq!(origin.accepts(), 1);
    assert_eq!(origin.requests(), 3);

    let resp = conn.request("GET", "/echo", &[("Connection", "close")], b"").await;
    assert_eq!(resp.header("connection"), Some("close"));
    assert!(conn.closed_within(Duration::from_secs(2)).await);

    let resp = conn_get(&origin, "/close").await;
    assert_eq!(resp.header("connection"), Some("close"));
    assert_eq!(origin.accepts(), 2);
}

async fn conn_get(origin: &Origin, path: &str) -> client::Response {
    client::get(origin.addr, path).await
}

#[tokio::test]
async fn http10_closes_unless_keep_alive() {
    let origin = Origin::start().await;
    let out = send_raw(origin.addr, b"GET /status/200 HTTP/1.0\r\n\r\n").await;
    let text = String::from_utf8(out).unwrap();
    assert!(text.starts_with("HTTP/1.1 200 OK\r\n"), "{text}");
    assert!(text.contains("\r\nConnection: close\r\n"), "{text}");

    let mut conn = Conn::connect(origin.addr).await.unwrap();
    for _ in 0..2 {
        conn.send(b"GET /echo HTTP/1.0\r\nConnection: keep-alive\r\n\r\n").await.unwrap();
        assert_eq!(conn.read_response().await.unwrap().status, 200);
    }
    assert_eq!(origin.accepts(), 2);
}

#[tokio::test]
async fn pipelined_requests_answered_in_order() {
    let origin = Origin::start().await;
    let mut conn = Conn::connect(origin.addr).await.unwrap();
    let mut bytes = build_request("GET", "/status/201", &[], b"");
    bytes.extend(build_request("HEAD", "/big/1000", &[], b""));
    bytes.extend(build_request("GET", "/status/204", &[], b""));
    conn.send(&bytes).await.unwrap();
    assert_eq!(conn.read_response().await.unwrap().status, 201);
    let head = conn.read_response_for_head().await.unwrap();
    assert_eq!(head.header("content-length"), Some("1000"));
    assert!(head.body.is_empty());
    let no_content = conn.read_response().await.unwrap();
    assert_eq!(no_content.status, 204);
    assert!(no_content.body.is_empty());
}

#[tokio::test]
async fn chunked_request_and_response_with_trailers() {
    let origin = Origin::start().await;
    let mut conn = Conn::connect(origin.addr).await.unwrap();
    let body = chunked_body(&[b"abc", b"defg"], &[("X-Req-Trailer", "t1")]);
    let resp = conn.request("POST", "/echo", &[("Transfer-Encoding", "chunked")], &body).await;
    let text = resp.text();
    assert!(text.ends_with("\n\nabcdefgtrailer x-req-trailer: t1\n"), "{text}");

    let resp = conn.request("GET", "/chunked", &[], b"").await;
    assert!(resp.complete);
    assert_eq!(resp.header("transfer-encoding"), Some("chunked"));
    assert_eq!(resp.text(), "hello chunked world");

    let resp = conn.request("GET", "/trailers", &[("TE", "trailers")], b"").await;
    assert!(resp.complete);
    assert_eq!(resp.header("trailer"), Some("x-trailer-a, x-checksum"));
    assert_eq!(resp.trailer("x-trailer-a"), Some("1"));
    assert_eq!(resp.trailer("X-Checksum"), Some("abc"));
    assert_eq!(origin.accepts(), 1);
}

#[tokio::test]
async fn truncated_responses_are_incomplete() {
    let origin = Origin::start().await;
    let resp = conn_get(&origin, "/truncate-cl").await;
    assert!(!resp.complete);
    assert_eq!(resp.body, b"0123456789");

    let resp = conn_get(&origin, "/truncate-chunked").await;
    assert!(!resp.complete);
    assert_eq!(resp.text(), "hello world");

    let resp = conn_get(&origin, "/big/100000").await;
    assert!(resp.complete);
    assert!(resp.body.starts_with(b"abcdefghij"));
    assert!(resp.body == big_body(100_000));
}

#[tokio::test]
async fn expect_continue_flow() {
    let origin = Origin::start().await;
    let mut conn = Conn::connect(origin.addr).await.unwrap();
    conn.send(b"PUT /continue HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n")
        .await
        .unwrap();
    let interim = conn.read_response().await.unwrap();
    assert_eq!(interim.status, 100);
    assert_eq!(origin.requests(), 0);
    conn.send(b"hello").await.unwrap();
    let fin = conn.read_response().await.unwrap();
    assert_eq!((fin.status, fin.text().as_str()), (200, "hello"));

    let mut conn = Conn::connect(origin.addr).await.unwrap();
    conn.send(b"PUT /reject-expect HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n")
        .await
        .unwrap();
    let rejected = conn.read_response().await.unwrap();
    assert_eq!(rejected.status, 417);
    assert!(conn.closed_within(Duration::from_secs(2)).await);
    // Closing our side ends the origin's lingering close now rather than after its 1 s cap.
    drop(conn);
    assert!(support::eventually(|| origin.received().len() == 2).await);
    assert!(origin.received()[1].ends_with(b"\r\n\r\n"));
}

#[tokio::test]
async fn websocket_upgrade_then_raw_echo() {
    let origin = Origin::start().await;
    let mut conn = Conn::connect(origin.addr).await.unwrap();
    let mut req = build_request(
        "GET",
        "/ws",
        &[
            ("Upgrade", "websocket"),
            ("Connection", "keep-alive, Upgrade"),
            ("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="),
            ("Sec-WebSocket-Version", "13"),
        ],
        b"",
    );
    // Bytes right behind the head must be echoed too, not lost in the origin's buffer.
    req.extend_from_slice(b"early");
    conn.send(&req).await.unwrap();
    let resp = conn.read_response().await.unwrap();
    assert_eq!(resp.status, 101);
    assert_eq!(resp.header("sec-websocket-accept"), Some("s3pPLMBiTxaQ9kYGzzhZRbK+xOo="));
    assert_eq!(conn.read_exact(5).await.unwrap(), b"early");
    conn.send(b"\x81\x05hello").await.unwrap();
    assert_eq!(conn.read_exact(7).await.unwrap(), b"\x81\x05hello");
    conn.shutdown_write().await.unwrap();
    assert!(conn.read_to_end().await.unwrap().is_empty());

    let mut conn = Conn::connect(origin.addr).await.unwrap();
    let resp = conn
        .request("GET", "/no-101-upgrade", &[("Upgrade", "websocket"), ("Connection", "Upgrade")], b"")
        .await;
    assert_eq!((resp.status, resp.text().as_str()), (200, "no"));
}

#[tokio::test]
async fn hang_delay_and_status() {
    let origin = Origin::start().await;
    let mut conn = Conn::connect(origin.addr).await.unwrap();
    conn.send(&build_request("GET", "/hang", &[], b"")).await.unwrap();
    let quiet = tokio::time::timeout(Duration::from_millis(200), conn.read_some()).await;
    assert!(quiet.is_err(), "hang answered: {quiet:?}");
    assert!(support::eventually(|| origin.requests() == 1).await);

    let started = std::time::Instant::now();
    let resp = conn_get(&origin, "/delay/100").await;
    assert!(started.elapsed() >= Duration::from_millis(100));
    assert_eq!(resp.text(), "ok");

    let resp = conn_get(&origin, "/status/503").await;
    assert_eq!(resp.status, 503);
    let mut conn = Conn::connect(origin.addr).await.unwrap();
    let resp = conn.request("GET", "/status/304", &[], b"").await;
    assert_eq!(resp.status, 304);
    assert!(resp.body.is_empty());
    assert_eq!(conn.request("GET", "/echo", &[], b"").await.status, 200);
}

#[tokio::test]
async fn malformed_and_partial_requests_are_recorded() {
    let origin = Origin::start().await;
    let out = send_raw(origin.addr, b"GARBAGE\r\n\r\n").await;
    assert!(out.starts_with(b"HTTP/1.1 400 "), "{out:?}");

    let mut conn = Conn::connect(origin.addr).await.unwrap();
    conn.send(b"POST /echo HTTP/1.1\r\nContent-Length: 10\r\n\r\nabc").await.unwrap();
    drop(conn);
    assert!(support::eventually(|| origin.received().len() == 2).await);
    assert_eq!(origin.requests(), 0);
    assert!(origin.received()[1].ends_with(b"\r\n\r\nabc"));
}

#[tokio::test]
async fn unix_socket_origin() {
    let path = std::env::temp_dir().join(format!("libproxy-selftest-{}.sock", std::process::id()));
    let origin = Origin::start_unix(&path).await;
    let mut conn = Conn::connect_unix(&path).await.unwrap();
    let resp = conn.request("GET", "/echo", &[], b"").await;
    assert_eq!(resp.status, 200);
    assert_eq!(conn.request("GET", "/status/202", &[], b"").await.status, 202);
    assert_eq!(origin.accepts(), 1);
    drop(origin);
    assert!(!path.exists());
}

#[tokio::test]
async fn dropped_origin_stops_listening() {
    let origin = Origin::start().await;
    let addr = origin.addr;
    let mut conn = Conn::connect(addr).await.unwrap();
    conn.send(&build_request("GET", "/hang", &[], b"")).await.unwrap();
    drop(origin);
    // Aborted connection tasks drop their sockets, so the hung exchange ends too.
    assert!(conn.closed_within(Duration::from_secs(2)).await);
    assert!(support::eventually(|| std::net::TcpStream::connect(addr).is_err()).await);
}

#[tokio::test]
async fn refused_and_blackhole_addresses() {
    let addr = refused_addr().await;
    let err = tokio::net::TcpStream::connect(addr).await.unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::ConnectionRefused);

    let (_listener, addr) = blackhole_listener();
    let attempt =
        tokio::time::timeout(Duration::from_millis(300), tokio::net::TcpStream::connect(addr)).await;
    assert!(attempt.is_err(), "connect to the black hole finished: {attempt:?}");
}
