//! Edges of the request head that a lenient origin could read differently from the proxy, sent raw
//! through the proxy to a recording origin: exactly what the origin received is checked, next to
//! the exact status the client got. HTTP/1.x minor versions, Host completion, canonical
//! Content-Length, and field names with underscores.

mod support;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use h2::client::SendRequest;
use http::{Method, Request};

use proxy::app::UnderscoreFields;
use proxy::error::Result;
use proxy::proxy::{HttpProxy, ProxyHttp, Session};
use proxy::upstream::{Alpn, HttpPeer};
use support::client::{Conn, Response};
use support::h2origin::{raw, H2Origin};
use support::harness::Proxy;
use support::origin::Origin;
use support::within;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// Proxies everything to one peer.
struct To(HttpPeer);

impl ProxyHttp for To {
    type CTX = ();
    fn new_ctx(&self) {}

    async fn upstream_peer(&self, _s: &mut Session, _c: &mut ()) -> Result<HttpPeer> {
        Ok(self.0.clone())
    }
}

fn proxy_to(addr: SocketAddr) -> Proxy {
    Proxy::start(To(HttpPeer::new(&addr.to_string()).unwrap()))
}

/// Sends `raw` on a fresh connection and reads one response.
async fn probe(addr: SocketAddr, raw: &[u8]) -> Response {
    let mut conn = Conn::connect(addr).await.expect("connect proxy");
    let _ = conn.send(raw).await;
    within(10, conn.read_response())
        .await
        .unwrap_or_else(|e| panic!("{:?}: {e}", String::from_utf8_lossy(raw)))
}

/// The lines of a recorded request head (the origin records raw wire bytes).
fn head_lines(raw: &str) -> Vec<String> {
    let head = raw.split("\r\n\r\n").next().unwrap_or("");
    head.split("\r\n").map(str::to_owned).collect()
}

fn field_values(lines: &[String], name: &str) -> Vec<String> {
    lines
        .iter()
        .skip(1)
        .filter_map(|l| l.split_once(':'))
        .filter(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.trim().to_owned())
        .collect()
}

/// RFC 9110 §2.5: HTTP/1.2..1.9 are served as HTTP/1.1 (1.1's rules, 1.1 upstream); other majors
/// stay 505 and malformed versions 400, and neither reaches the origin.
#[tokio::test]
async fn http1_minor_versions_are_served_as_1_1() {
    let origin = Origin::start().await;
    let p = proxy_to(origin.addr);
    let cases: &[(&str, &[u8], u16)] = &[
        ("HTTP/1.2", b"GET /echo HTTP/1.2\r\nHost: a\r\n\r\n", 200),
        ("HTTP/1.9", b"GET /echo HTTP/1.9\r\nHost: a\r\n\r\n", 200),
        ("HTTP/1.3 bare LF", b"GET /echo HTTP/1.3\nHost: a\n\n", 200),
        ("HTTP/1.2 POST", b"POST /echo HTTP/1.2\r\nHost: a\r\nContent-Length: 2\r\n\r\nhi", 200),
        ("HTTP/1.2 without Host", b"GET /echo HTTP/1.2\r\n\r\n", 400),
        ("HTTP/2.0", b"GET /echo HTTP/2.0\r\nHost: a\r\n\r\n", 505),
        ("HTTP/3.0", b"GET /echo HTTP/3.0\r\nHost: a\r\n\r\n", 505),
        ("HTTP/2.1", b"GET /echo HTTP/2.1\r\nHost: a\r\n\r\n", 505),
        ("HTTP/1.10", b"GET /echo HTTP/1.10\r\nHost: a\r\n\r\n", 400),
        ("HTTP/1.x", b"GET /echo HTTP/1.x\r\nHost: a\r\n\r\n", 400),
        ("HTTP/1.", b"GET /echo HTTP/1.\r\nHost: a\r\n\r\n", 400),
        ("http/1.2", b"GET /echo http/1.2\r\nHost: a\r\n\r\n", 400),
        ("HTTP/1.2 trailing space", b"GET /echo HTTP/1.2 \r\nHost: a\r\n\r\n", 400),
        ("HTTP/1.2x", b"GET /echo HTTP/1.2x\r\nHost: a\r\n\r\n", 400),
        ("HTTP/1.2.3", b"GET /echo HTTP/1.2.3\r\nHost: a\r\n\r\n", 400),
    ];
    let mut failures = Vec::new();
    for (name, raw, want) in cases {
        let before = origin.received().len();
        let r = probe(p.addr, raw).await;
        if r.status != *want {
            failures.push(format!("{name}: status {} (want {want}): {}", r.status, r.text()));
            continue;
        }
        let seen = origin.received_text();
        if *want != 200 {
            if seen.len() != before {
                failures.push(format!("{name}: origin received {:?}", &seen[before..]));
            }
            continue;
        }
        if r.version != "HTTP/1.1" {
            failures.push(format!("{name}: answered as {}", r.version));
        }
        match seen.get(before) {
            Some(req) if seen.len() == before + 1 => {
                let lines = head_lines(req);
                if !lines[0].ends_with(" HTTP/1.1") {
                    failures.push(format!("{name}: origin got request line {:?}", lines[0]));
                }
            }
            _ => failures.push(format!("{name}: origin received {:?}", &seen[before..])),
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
}

/// A 1.x request with a higher minor keeps its connection like 1.1 does (persistent by default).
#[tokio::test]
async fn http1_minor_version_connection_is_persistent_like_1_1() {
    let origin = Origin::start().await;
    let p = proxy_to(origin.addr);
    let mut c = Conn::connect(p.addr).await.unwrap();
    for _ in 0..2 {
        c.send(b"GET /echo HTTP/1.4\r\nHost: a\r\n\r\n").await.unwrap();
        let r = within(10, c.read_response()).await.unwrap();
        assert_eq!(r.status, 200, "{}", r.text());
        assert_ne!(r.header("connection"), Some("close"));
    }
    assert!(!c.closed_within(Duration::from_millis(100)).await);
    assert_eq!(origin.requests(), 2);
}

/// An origin that answers every request head with `response` and closes; records each head.
async fn canned_origin(response: &'static [u8]) -> (SocketAddr, Arc<Mutex<Vec<String>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let heads = Arc::new(Mutex::new(Vec::new()));
    let seen = heads.clone();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            let seen = seen.clone();
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut scratch = [0u8; 4096];
                while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
                    match s.read(&mut scratch).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => buf.extend_from_slice(&scratch[..n]),
                    }
                }
                seen.lock().unwrap().push(String::from_utf8_lossy(&buf).into_owned());
                let _ = s.write_all(response).await;
                let _ = s.shutdown().await;
            });
        }
    });
    (addr, heads)
}

/// An h2c client connection (prior knowledge); the connection task runs in the background.
async fn h2_connect(addr: SocketAddr) -> SendRequest<Bytes> {
    let tcp = TcpStream::connect(addr).await.unwrap();
    let (client, conn) = h2::client::handshake(tcp).await.unwrap();
    tokio::spawn(async move {
        let _ = conn.await;
    });
    client
}

/// Sends one HTTP/2 request and returns its status (the body is read and dropped).
async fn h2_status(client: &SendRequest<Bytes>, req: Request<()>, body: Option<&'static [u8]>) -> u16 {
    let mut client = client.clone().ready().await.unwrap();
    let (resp, mut send) = client.send_request(req, body.is_none()).unwrap();
    if let Some(b) = body {
        send.send_data(Bytes::from_static(b), true).unwrap();
    }
    let resp = within(10, resp).await.unwrap();
    let status = resp.status().as_u16();
    let mut body = resp.into_body();
    while let Some(d) = within(10, body.data()).await {
        let d = d.unwrap();
        let _ = body.flow_control().release_capacity(d.len());
    }
    status
}

/// RFC 9110 §8.6: Content-Length values that are all one number (`03` and `3`, `5, 5`) reach the
/// origin as exactly one canonical `Content-Length`; differing ones are a 400 that reaches nothing.
#[tokio::test]
async fn equal_request_content_lengths_reach_origin_as_one_canonical_value() {
    let origin = Origin::start().await;
    let p = proxy_to(origin.addr);
    let cases: &[(&str, &str, &str, u16, &[&str])] = &[
        ("03 and 3", "Content-Length: 03\r\nContent-Length: 3\r\n", "abc", 200, &["3"]),
        ("3 and 003", "Content-Length: 3\r\nContent-Length: 003\r\n", "abc", 200, &["3"]),
        ("list 3, 03", "Content-Length: 3, 03\r\n", "abc", 200, &["3"]),
        ("lone 003", "Content-Length: 003\r\n", "abc", 200, &["3"]),
        ("5 and 5", "Content-Length: 5\r\nContent-Length: 5\r\n", "hello", 200, &["5"]),
        ("list and line", "Content-Length: 5,5\r\nContent-Length: 05\r\n", "hello", 200, &["5"]),
        ("00, 0", "Content-Length: 00, 0\r\n", "", 200, &["0"]),
        ("03 and 4", "Content-Length: 03\r\nContent-Length: 4\r\n", "abcd", 400, &[]),
        ("list 3, 4", "Content-Length: 3, 4\r\n", "abcd", 400, &[]),
        ("list 3, +3", "Content-Length: 3, +3\r\n", "abc", 400, &[]),
    ];
    let mut failures = Vec::new();
    for (name, fields, body, want, lines) in cases {
        let before = origin.received().len();
        let raw = format!("POST /echo HTTP/1.1\r\nHost: a\r\n{fields}\r\n{body}");
        let r = probe(p.addr, raw.as_bytes()).await;
        if r.status != *want {
            failures.push(format!("{name}: status {} (want {want}): {}", r.status, r.text()));
            continue;
        }
        let seen = origin.received_text();
        if *want != 200 {
            if seen.len() != before {
                failures.push(format!("{name}: origin received {:?}", &seen[before..]));
            }
            continue;
        }
        let Some(req) = seen.get(before) else {
            failures.push(format!("{name}: nothing reached the origin"));
            continue;
        };
        let got = field_values(&head_lines(req), "content-length");
        if got != *lines {
            failures.push(format!("{name}: origin got Content-Length {got:?} in {req:?}"));
        }
        if !req.ends_with(&format!("\r\n\r\n{body}")) {
            failures.push(format!("{name}: origin got body framed as {req:?}"));
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
}

/// The same over HTTP/2: h2 checks that every value is one number, the H1 origin gets one field.
#[tokio::test]
async fn equal_h2_content_lengths_reach_h1_origin_as_one_canonical_value() {
    let origin = Origin::start().await;
    let p = proxy_to(origin.addr);
    let client = h2_connect(p.addr).await;
    let req = Request::builder()
        .method(Method::POST)
        .uri(format!("http://{}/echo", p.addr))
        .header("content-length", "03")
        .header("content-length", "3")
        .body(())
        .unwrap();
    assert_eq!(h2_status(&client, req, Some(b"abc")).await, 200);
    let seen = origin.received_text();
    assert_eq!(seen.len(), 1, "{seen:?}");
    assert_eq!(field_values(&head_lines(&seen[0]), "content-length"), ["3"], "{:?}", seen[0]);
    assert!(seen[0].ends_with("\r\n\r\nabc"), "{:?}", seen[0]);
}

/// Name, request method, the origin's response, status, Content-Length values and body downstream.
type ResponseCase = (&'static str, &'static str, &'static [u8], u16, &'static [&'static str], &'static str);

/// Responses follow the same rule: equal values reach the client as one canonical field (also
/// on a HEAD response, which has no body but keeps its length); differing values are a 502.
#[tokio::test]
async fn equal_response_content_lengths_merge_and_differing_ones_are_502() {
    let cases: &[ResponseCase] = &[
        (
            "03 and 3",
            "GET",
            b"HTTP/1.1 200 OK\r\nContent-Length: 03\r\nContent-Length: 3\r\n\r\nabc",
            200,
            &["3"],
            "abc",
        ),
        ("list 3, 03", "GET", b"HTTP/1.1 200 OK\r\nContent-Length: 3, 03\r\n\r\nabc", 200, &["3"], "abc"),
        ("lone 0003", "GET", b"HTTP/1.1 200 OK\r\nContent-Length: 0003\r\n\r\nabc", 200, &["3"], "abc"),
        (
            "3 and 4",
            "GET",
            b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd",
            502,
            &[],
            "",
        ),
        ("HEAD 03, 3", "HEAD", b"HTTP/1.1 200 OK\r\nContent-Length: 03, 3\r\n\r\n", 200, &["3"], ""),
        ("HEAD 1, 2", "HEAD", b"HTTP/1.1 200 OK\r\nContent-Length: 1, 2\r\n\r\n", 502, &[], ""),
        (
            "304 7 and 07",
            "GET",
            b"HTTP/1.1 304 Not Modified\r\nContent-Length: 7\r\nContent-Length: 07\r\n\r\n",
            304,
            &["7"],
            "",
        ),
    ];
    let mut failures = Vec::new();
    for (name, method, response, want, lines, body) in cases {
        let (addr, heads) = canned_origin(response).await;
        let p = proxy_to(addr);
        let mut c = Conn::connect(p.addr).await.unwrap();
        c.send(format!("{method} /x HTTP/1.1\r\nHost: a\r\n\r\n").as_bytes()).await.unwrap();
        let r = within(10, c.read_response_with(*method == "HEAD"))
            .await
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        if heads.lock().unwrap().len() != 1 {
            failures.push(format!("{name}: origin saw {:?}", heads.lock().unwrap()));
        }
        if r.status != *want {
            failures.push(format!("{name}: status {} (want {want})", r.status));
            continue;
        }
        if *want == 502 {
            continue;
        }
        if r.header_all("content-length") != *lines {
            failures.push(format!("{name}: client got Content-Length {:?}", r.header_all("content-length")));
        }
        if r.text() != *body {
            failures.push(format!("{name}: client got body {:?}", r.text()));
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
}

/// RFC 9112 §3.2: the origin always gets exactly one valid Host. An HTTP/1.0 request without one
/// gets the peer's name; absolute-form (1.0 or 1.1) gets the target's authority; HTTP/1.1
/// origin-form without Host, and any invalid Host, is a 400 that reaches nothing.
#[tokio::test]
async fn requests_without_host_reach_origin_with_exactly_one_valid_host() {
    let origin = Origin::start().await;
    let p = proxy_to(origin.addr);
    let peer_host = origin.addr.to_string();
    let cases: &[(&str, &str, u16, &str)] = &[
        ("1.0 origin-form", "GET /echo HTTP/1.0\r\n\r\n", 200, &peer_host),
        ("1.0 keep-alive", "GET /echo HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", 200, &peer_host),
        ("1.0 POST", "POST /echo HTTP/1.0\r\nContent-Length: 2\r\n\r\nhi", 200, &peer_host),
        ("1.0 with Host", "GET /echo HTTP/1.0\r\nHost: given.test\r\n\r\n", 200, "given.test"),
        ("1.0 absolute-form", "GET http://abs.test/echo HTTP/1.0\r\n\r\n", 200, "abs.test"),
        ("1.1 absolute-form", "GET http://abs.test:81/echo?q HTTP/1.1\r\n\r\n", 200, "abs.test:81"),
        (
            "1.1 absolute-form over Host",
            "GET http://abs.test/echo HTTP/1.1\r\nHost: other\r\n\r\n",
            200,
            "abs.test",
        ),
        ("1.1 origin-form", "GET /echo HTTP/1.1\r\n\r\n", 400, ""),
        ("1.1 OPTIONS *", "OPTIONS * HTTP/1.1\r\n\r\n", 400, ""),
        ("1.1 empty Host", "GET /echo HTTP/1.1\r\nHost:\r\n\r\n", 400, ""),
        ("1.0 empty Host", "GET /echo HTTP/1.0\r\nHost: \r\n\r\n", 400, ""),
        ("1.0 Host with userinfo", "GET /echo HTTP/1.0\r\nHost: u@a\r\n\r\n", 400, ""),
        ("1.0 Host port -1", "GET /echo HTTP/1.0\r\nHost: a:-1\r\n\r\n", 400, ""),
        ("1.0 two Hosts", "GET /echo HTTP/1.0\r\nHost: a\r\nHost: a\r\n\r\n", 400, ""),
    ];
    let mut failures = Vec::new();
    for (name, raw, want, host) in cases {
        let before = origin.received().len();
        let r = probe(p.addr, raw.as_bytes()).await;
        if r.status != *want {
            failures.push(format!("{name}: status {} (want {want}): {}", r.status, r.text()));
            continue;
        }
        let seen = origin.received_text();
        if *want != 200 {
            if seen.len() != before {
                failures.push(format!("{name}: origin received {:?}", &seen[before..]));
            }
            continue;
        }
        match seen.get(before) {
            Some(req) => {
                let hosts = field_values(&head_lines(req), "host");
                if hosts != [*host] {
                    failures.push(format!("{name}: origin got Host {hosts:?} (want [{host:?}]) in {req:?}"));
                }
            }
            None => failures.push(format!("{name}: nothing reached the origin")),
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
}

/// The peer's name: its host name when it has one, and the TLS server name over the address.
#[tokio::test]
async fn http10_without_host_gets_the_peers_host_name() {
    let origin = Origin::start().await;
    let name = format!("localhost:{}", origin.addr.port());
    let p = Proxy::start(To(HttpPeer::new(&name).unwrap()));
    let r = probe(p.addr, b"GET /echo HTTP/1.0\r\n\r\n").await;
    assert_eq!(r.status, 200, "{}", r.text());
    let seen = origin.received_text();
    assert_eq!(field_values(&head_lines(&seen[0]), "host"), [name], "{:?}", seen[0]);
}

/// An HTTP/2 upstream needs an `:authority`: HTTP/1.0 without Host gets the peer's name there too
/// (it used to fail with 400 "no authority for an HTTP/2 request").
#[tokio::test]
async fn http10_without_host_to_h2_upstream_gets_the_peers_authority() {
    let origin = H2Origin::start().await;
    let mut peer = HttpPeer::new(&origin.addr.to_string()).unwrap();
    peer.options.alpn = Alpn::H2;
    let p = Proxy::start(To(peer));
    let r = probe(p.addr, b"GET /echo HTTP/1.0\r\n\r\n").await;
    assert_eq!(r.status, 200, "{}", r.text());
    let reqs = origin.requests();
    assert_eq!(reqs.len(), 1);
    assert_eq!(reqs[0].uri, format!("http://{}/echo", origin.addr), "{:?}", reqs[0]);
    assert!(reqs[0].headers.get("host").is_none(), "{:?}", reqs[0].headers);
}

/// A hook that removes Host has the peer's put back; one that leaves an invalid Host fails the
/// request with 500 instead of sending it.
struct EditHost(HttpPeer);

impl ProxyHttp for EditHost {
    type CTX = ();
    fn new_ctx(&self) {}

    async fn upstream_peer(&self, _s: &mut Session, _c: &mut ()) -> Result<HttpPeer> {
        Ok(self.0.clone())
    }

    async fn upstream_request_filter(
        &self,
        s: &mut Session,
        up: &mut proxy::protocol::h1::RequestHead,
        _c: &mut (),
    ) -> Result<()> {
        match s.req.uri.path() {
            "/remove" => {
                up.headers.remove("host");
            }
            "/invalid" => {
                up.headers.insert("host", http::HeaderValue::from_static("a b"));
            }
            "/two" => {
                up.headers.append("host", http::HeaderValue::from_static("second.test"));
            }
            _ => {}
        }
        Ok(())
    }
}

#[tokio::test]
async fn upstream_request_filter_cannot_send_a_request_without_one_valid_host() {
    let origin = Origin::start().await;
    let p = Proxy::start(EditHost(HttpPeer::new(&origin.addr.to_string()).unwrap()));
    let r = probe(p.addr, b"GET /remove HTTP/1.1\r\nHost: client.test\r\n\r\n").await;
    assert_eq!(r.status, 200, "{}", r.text());
    let seen = origin.received_text();
    assert_eq!(field_values(&head_lines(&seen[0]), "host"), [origin.addr.to_string()], "{:?}", seen[0]);
    for path in ["/invalid", "/two"] {
        let r = probe(p.addr, format!("GET {path} HTTP/1.1\r\nHost: client.test\r\n\r\n").as_bytes()).await;
        assert_eq!(r.status, 500, "{path}: {}", r.text());
    }
    assert_eq!(origin.received().len(), 1, "{:?}", origin.received_text());
}

/// Sends one HTTP/2 request (HEADERS with END_STREAM) on a raw connection and returns the status
/// of the response: 200 and 400 are read from HPACK's static table, anything else is `Some(0)`;
/// `None` when the stream was reset or the connection closed instead.
async fn h2_raw_status(addr: SocketAddr, block: &[u8]) -> Option<u16> {
    let tcp = TcpStream::connect(addr).await.unwrap();
    let (mut rd, mut wr) = tcp.into_split();
    let mut out = raw::client_start();
    raw::frame_into(&mut out, raw::HEADERS, raw::END_STREAM | raw::END_HEADERS, 1, block);
    assert!(raw::write(&mut wr, &out, Duration::from_secs(5)).await);
    loop {
        let f = raw::read_frame(&mut rd, Duration::from_secs(10)).await?;
        if f.ty == raw::SETTINGS && f.flags & raw::ACK == 0 {
            let ack = raw::frame(raw::SETTINGS, raw::ACK, 0, &[]);
            let _ = raw::write(&mut wr, &ack, Duration::from_secs(5)).await;
        }
        if f.stream != 1 {
            continue;
        }
        if f.ty == raw::RST_STREAM {
            return None;
        }
        if f.ty == raw::HEADERS {
            return Some(match f.payload.first() {
                Some(0x88) => 200,
                Some(0x8c) => 400,
                _ => 0,
            });
        }
    }
}

/// A request block: :method GET, :scheme http, :path, then `:authority` if given, then `fields`.
fn h2_block(path: &str, authority: Option<&str>, fields: &[(&str, &str)]) -> Vec<u8> {
    let mut b = Vec::new();
    raw::hpack_indexed(&mut b, 2); // :method GET
    raw::hpack_indexed(&mut b, 6); // :scheme http
    raw::hpack_literal_name_idx(&mut b, 4, path.as_bytes()); // :path
    if let Some(a) = authority {
        raw::hpack_literal_name_idx(&mut b, 1, a.as_bytes()); // :authority
    }
    for (n, v) in fields {
        raw::hpack_literal(&mut b, n.as_bytes(), v.as_bytes());
    }
    b
}

/// Name, `:authority`, other fields, status (`None`: reset), the Host the origin gets.
type H2HostCase<'a> =
    (&'static str, Option<&'static str>, &'static [(&'static str, &'static str)], Option<u16>, &'a str);

/// H2 -> H1: the origin gets exactly one valid Host: from `:authority`, else from Host, else the
/// peer's name (no authority at all is allowed, RFC 9113 §8.3.1). An invalid `:authority` or Host
/// is a 400 that reaches nothing.
#[tokio::test]
async fn h2_requests_reach_h1_origin_with_exactly_one_valid_host() {
    let origin = Origin::start().await;
    let p = proxy_to(origin.addr);
    let peer_host = origin.addr.to_string();
    let cases: &[H2HostCase] = &[
        ("no :authority, no Host", None, &[], Some(200), &peer_host),
        (":authority", Some("auth.test"), &[], Some(200), "auth.test"),
        (":authority with port", Some("auth.test:8443"), &[], Some(200), "auth.test:8443"),
        (":authority = Host", Some("auth.test"), &[("host", "AUTH.test")], Some(200), "AUTH.test"),
        ("Host only", None, &[("host", "host.test")], Some(200), "host.test"),
        ("IPv6 :authority", Some("[::1]:8080"), &[], Some(200), "[::1]:8080"),
        (":authority with userinfo", Some("u@evil.test"), &[], Some(400), ""),
        (":authority port -1", Some("a.test:-1"), &[], Some(400), ""),
        (":authority port 99999", Some("a.test:99999"), &[], Some(400), ""),
        (":authority empty port", Some("a.test:"), &[], Some(400), ""),
        ("Host with space", None, &[("host", "a b")], Some(400), ""),
        ("Host with userinfo", None, &[("host", "u@a")], Some(400), ""),
        ("Host with path", None, &[("host", "a/b")], Some(400), ""),
        ("Host port 99999", None, &[("host", "a:99999")], Some(400), ""),
        ("Host differs from :authority", Some("a.test"), &[("host", "b.test")], Some(400), ""),
        ("two Hosts", None, &[("host", "a.test"), ("host", "a.test")], Some(400), ""),
    ];
    let mut failures = Vec::new();
    for (name, authority, fields, want, host) in cases {
        let before = origin.received().len();
        let got = within(15, h2_raw_status(p.addr, &h2_block("/echo", *authority, fields))).await;
        if got != *want {
            failures.push(format!("{name}: status {got:?} (want {want:?})"));
            continue;
        }
        let seen = origin.received_text();
        if *want != Some(200) {
            if seen.len() != before {
                failures.push(format!("{name}: origin received {:?}", &seen[before..]));
            }
            continue;
        }
        match seen.get(before) {
            Some(req) => {
                let hosts = field_values(&head_lines(req), "host");
                if hosts != [*host] {
                    failures.push(format!("{name}: origin got Host {hosts:?} (want [{host:?}]) in {req:?}"));
                }
            }
            None => failures.push(format!("{name}: nothing reached the origin")),
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
}

fn proxy_with(addr: SocketAddr, policy: UnderscoreFields) -> Proxy {
    let mut app = HttpProxy::new(To(HttpPeer::new(&addr.to_string()).unwrap()));
    app.server_options_mut().underscore_fields = policy;
    Proxy::start_with(app, |_| {})
}

/// A field a CGI/WSGI origin reads as `Content-Length` (`Content_Length`) or `Transfer-Encoding`
/// never reaches it by default; with `Refuse` the request is a 400 that reaches nothing; with
/// `Forward` the fields go on as sent. HTTP/1 and HTTP/2 alike.
#[tokio::test]
async fn underscore_fields_are_dropped_refused_or_forwarded() {
    let origin = Origin::start().await;
    let fields = "Content_Length: 40\r\nTransfer_Encoding: chunked\r\nX_Real_IP: 10.0.0.1\r\nX-Keep: k\r\n";
    let raw = format!("POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n{fields}\r\nhello");
    let underscored = ["content_length", "transfer_encoding", "x_real_ip"];
    for (policy, want) in
        [(UnderscoreFields::Drop, 200), (UnderscoreFields::Refuse, 400), (UnderscoreFields::Forward, 200)]
    {
        let p = proxy_with(origin.addr, policy);
        let before = origin.received().len();
        let mut c = Conn::connect(p.addr).await.unwrap();
        c.send(raw.as_bytes()).await.unwrap();
        let r = within(10, c.read_response()).await.unwrap();
        assert_eq!(r.status, want, "{policy:?}: {}", r.text());
        let seen = origin.received_text();
        if want == 400 {
            assert_eq!(r.header("connection"), Some("close"), "{policy:?}");
            assert!(c.closed_within(Duration::from_secs(2)).await, "{policy:?}");
            assert_eq!(seen.len(), before, "{policy:?}: {:?}", &seen[before..]);
            continue;
        }
        assert_eq!(seen.len(), before + 1, "{policy:?}");
        let lines = head_lines(&seen[before]);
        for name in underscored {
            let got = field_values(&lines, name);
            let expect: &[&str] = match (policy, name) {
                (UnderscoreFields::Drop, _) => &[],
                (_, "content_length") => &["40"],
                (_, "transfer_encoding") => &["chunked"],
                _ => &["10.0.0.1"],
            };
            assert_eq!(got, expect, "{policy:?} {name}: {:?}", seen[before]);
        }
        assert_eq!(field_values(&lines, "x-keep"), ["k"], "{policy:?}");
        assert_eq!(field_values(&lines, "content-length"), ["5"], "{policy:?}");
        assert!(seen[before].ends_with("\r\n\r\nhello"), "{policy:?}: {:?}", seen[before]);
    }

    // HTTP/2 downstream, HTTP/1 origin.
    for (policy, want) in [
        (UnderscoreFields::Drop, Some(200)),
        (UnderscoreFields::Refuse, Some(400)),
        (UnderscoreFields::Forward, Some(200)),
    ] {
        let p = proxy_with(origin.addr, policy);
        let before = origin.received().len();
        let block = h2_block("/echo", Some("a.test"), &[("content_length", "40"), ("x-keep", "k")]);
        assert_eq!(within(15, h2_raw_status(p.addr, &block)).await, want, "h2 {policy:?}");
        let seen = origin.received_text();
        if want == Some(400) {
            assert_eq!(seen.len(), before, "h2 {policy:?}: {:?}", &seen[before..]);
            continue;
        }
        let lines = head_lines(&seen[before]);
        let expect: &[&str] = if policy == UnderscoreFields::Drop { &[] } else { &["40"] };
        assert_eq!(field_values(&lines, "content_length"), expect, "h2 {policy:?}: {:?}", seen[before]);
        assert_eq!(field_values(&lines, "x-keep"), ["k"], "h2 {policy:?}");
    }
}

/// Hooks never see a dropped field (they would otherwise route or authorise on it).
struct SeeFields(HttpPeer, Arc<Mutex<Vec<String>>>);

impl ProxyHttp for SeeFields {
    type CTX = ();
    fn new_ctx(&self) {}

    async fn request_filter(&self, s: &mut Session, _c: &mut ()) -> Result<bool> {
        let names = s.req.headers.keys().map(|n| n.as_str().to_owned());
        self.1.lock().unwrap().extend(names);
        Ok(false)
    }

    async fn upstream_peer(&self, _s: &mut Session, _c: &mut ()) -> Result<HttpPeer> {
        Ok(self.0.clone())
    }
}

#[tokio::test]
async fn dropped_underscore_fields_are_invisible_to_hooks() {
    let origin = Origin::start().await;
    let names = Arc::new(Mutex::new(Vec::new()));
    let p = Proxy::start(SeeFields(HttpPeer::new(&origin.addr.to_string()).unwrap(), names.clone()));
    let r = probe(p.addr, b"GET /echo HTTP/1.1\r\nHost: a\r\nX_User: admin\r\nX-User: guest\r\n\r\n").await;
    assert_eq!(r.status, 200);
    assert_eq!(*names.lock().unwrap(), ["host", "x-user"]);
}
