//! Malformed and smuggling requests sent raw to the proxy: each gets its exact 4xx/5xx status, the
//! connection is closed, and nothing reaches the origin. Plus malformed upstream responses (502,
//! nothing leaked) and the body-drain rules after an early local response.

mod support;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use proxy::error::Result;
use proxy::proxy::{HttpProxy, ProxyHttp, Session};
use proxy::upstream::HttpPeer;
use support::client::{Conn, Response};
use support::harness::Proxy;
use support::origin::Origin;
use support::within;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// Proxies everything to one address; answers 403 itself for paths under `/deny`.
struct To(String);

impl ProxyHttp for To {
    type CTX = ();
    fn new_ctx(&self) {}

    async fn request_filter(&self, session: &mut Session, _ctx: &mut ()) -> Result<bool> {
        if session.req.uri.path().starts_with("/deny") {
            session.respond_status(http::StatusCode::FORBIDDEN, "denied");
            return Ok(true);
        }
        Ok(false)
    }

    async fn upstream_peer(&self, _s: &mut Session, _c: &mut ()) -> Result<HttpPeer> {
        Ok(HttpPeer::new(&self.0).unwrap())
    }
}

fn proxy_to(addr: SocketAddr) -> Proxy {
    Proxy::start(To(addr.to_string()))
}

/// Sends `raw` on a fresh connection, reads one response, then whether the proxy closed the
/// connection within 2 s.
async fn probe(addr: SocketAddr, raw: &[u8]) -> (std::io::Result<Response>, bool) {
    let mut conn = Conn::connect(addr).await.expect("connect proxy");
    // The proxy may close before reading everything; a failed write still leaves a response to read.
    let _ = conn.send(raw).await;
    let resp = conn.read_response().await;
    let closed = match &resp {
        Ok(_) => conn.closed_within(Duration::from_secs(2)).await,
        Err(_) => true,
    };
    (resp, closed)
}

/// One ordinary request through the proxy on a fresh connection, answered before it returns. The
/// refused requests before it were handled (their connections closed) first, so what they could
/// have sent upstream reaches the origin before this does: checks after it need no waiting.
async fn sentinel(proxy: SocketAddr) {
    let r = within(10, support::client::get(proxy, "/echo?sentinel")).await;
    assert_eq!(r.status, 200, "{}", r.text());
}

/// Asserts that the origin saw nothing but the sentinel, on one connection.
fn only_sentinel_upstream(origin: &Origin) {
    let seen = origin.received_text();
    assert!(seen.len() == 1 && seen[0].starts_with("GET /echo?sentinel HTTP/1.1"), "{seen:?}");
    assert_eq!(origin.accepts(), 1);
}

fn req(extra_headers: &str) -> Vec<u8> {
    format!("GET /echo HTTP/1.1\r\nHost: a\r\n{extra_headers}\r\n").into_bytes()
}

/// A POST whose body, if the proxy picked the wrong framing, would be read as a second request.
fn post(headers: &str, body: &str) -> Vec<u8> {
    format!("POST /echo HTTP/1.1\r\nHost: a\r\n{headers}\r\n{body}").into_bytes()
}

const SMUGGLED: &str = "GET /smuggled HTTP/1.1\r\nHost: a\r\n\r\n";

fn head_level_cases() -> Vec<(&'static str, Vec<u8>, u16)> {
    let chunked_then_smuggle = format!("0\r\n\r\n{SMUGGLED}");
    let cl_then_smuggle = format!("hello{SMUGGLED}");
    let many_headers: String = (0..120).map(|i| format!("X-H{i}: v\r\n")).collect();
    let huge_value = "v".repeat(40 * 1024);
    let long_uri = format!("GET /{} HTTP/1.1\r\nHost: a\r\n\r\n", "a".repeat(10 * 1024));
    vec![
        ("CL+TE", post("Content-Length: 5\r\nTransfer-Encoding: chunked\r\n", &chunked_then_smuggle), 400),
        (
            "TE+CL (reverse order)",
            post("Transfer-Encoding: chunked\r\nContent-Length: 40\r\n", &chunked_then_smuggle),
            400,
        ),
        ("Content-Length: 1, 2", post("Content-Length: 1, 2\r\n", &cl_then_smuggle), 400),
        ("two differing CL lines", post("Content-Length: 5\r\nContent-Length: 6\r\n", &cl_then_smuggle), 400),
        ("CL +1", post("Content-Length: +1\r\n", &cl_then_smuggle), 400),
        ("CL 0x5", post("Content-Length: 0x5\r\n", &cl_then_smuggle), 400),
        ("CL -1", post("Content-Length: -1\r\n", &cl_then_smuggle), 400),
        ("empty CL", post("Content-Length: \r\n", &cl_then_smuggle), 400),
        ("CL overflow", post("Content-Length: 99999999999999999999999\r\n", &cl_then_smuggle), 400),
        ("CL 1_0", post("Content-Length: 1_0\r\n", &cl_then_smuggle), 400),
        (
            "TE chunked, identity",
            post("Transfer-Encoding: chunked, identity\r\n", &chunked_then_smuggle),
            400,
        ),
        ("TE xchunked", post("Transfer-Encoding: xchunked\r\n", &chunked_then_smuggle), 501),
        ("TE identity", post("Transfer-Encoding: identity\r\n", &cl_then_smuggle), 501),
        ("TE ,chunked", post("Transfer-Encoding: ,chunked\r\n", &chunked_then_smuggle), 400),
        ("TE chunked;x=y", post("Transfer-Encoding: chunked;x=y\r\n", &chunked_then_smuggle), 400),
        (
            "two TE lines chunked + chunked",
            post("Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n", &chunked_then_smuggle),
            400,
        ),
        ("TE chunked, chunked", post("Transfer-Encoding: chunked, chunked\r\n", &chunked_then_smuggle), 400),
        ("TE gzip, chunked", post("Transfer-Encoding: gzip, chunked\r\n", &chunked_then_smuggle), 501),
        (
            "TE on HTTP/1.0",
            format!(
                "POST /echo HTTP/1.0\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n{chunked_then_smuggle}"
            )
            .into_bytes(),
            400,
        ),
        ("TE with space before colon", post("Transfer-Encoding : chunked\r\n", &chunked_then_smuggle), 400),
        ("obs-fold", req("X-A: one\r\n two\r\n"), 400),
        (
            "obs-fold continuing TE",
            post("Transfer-Encoding: gzip\r\n ,chunked\r\n", &chunked_then_smuggle),
            400,
        ),
        ("bare CR in value", req("X-A: a\rb\r\n"), 400),
        ("NUL in value", req("X-A: a\0b\r\n"), 400),
        ("space before colon (CL)", post("Content-Length : 5\r\n", &cl_then_smuggle), 400),
        ("missing Host on 1.1", b"GET /echo HTTP/1.1\r\nX-A: b\r\n\r\n".to_vec(), 400),
        ("two Hosts", req("Host: b\r\n"), 400),
        ("Host with userinfo", b"GET /echo HTTP/1.1\r\nHost: u@a\r\n\r\n".to_vec(), 400),
        ("# in target", b"GET /echo#frag HTTP/1.1\r\nHost: a\r\n\r\n".to_vec(), 400),
        ("NUL in target", b"GET /ec\0ho HTTP/1.1\r\nHost: a\r\n\r\n".to_vec(), 400),
        ("HTTP/2.0", b"GET /echo HTTP/2.0\r\nHost: a\r\n\r\n".to_vec(), 505),
        ("lowercase http/1.1", b"GET /echo http/1.1\r\nHost: a\r\n\r\n".to_vec(), 400),
        ("HTTP/0.9 GET /", b"GET /\r\n\r\n".to_vec(), 400),
        ("too many headers", req(&many_headers), 431),
        ("huge header block", req(&format!("X-Big: {huge_value}\r\n")), 431),
        ("10 KiB URI", long_uri.into_bytes(), 414),
        ("CONNECT", b"CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n".to_vec(), 405),
        ("invalid method token", b"G@T /echo HTTP/1.1\r\nHost: a\r\n\r\n".to_vec(), 400),
        ("two spaces in request line", b"GET  /echo HTTP/1.1\r\nHost: a\r\n\r\n".to_vec(), 400),
    ]
}

#[tokio::test]
async fn malformed_heads_get_exact_status_close_and_never_reach_origin() {
    let origin = Origin::start().await;
    let p = proxy_to(origin.addr);
    let cases = head_level_cases();
    assert!(cases.len() >= 30);
    let mut failures = Vec::new();
    for (name, raw, want) in &cases {
        let (resp, closed) = within(15, probe(p.addr, raw)).await;
        match resp {
            Ok(r) => {
                if r.status != *want {
                    failures.push(format!("{name}: status {} (want {want})", r.status));
                }
                if r.header("connection") != Some("close") {
                    failures.push(format!("{name}: connection header {:?}", r.header("connection")));
                }
                if !closed {
                    failures.push(format!("{name}: connection left open"));
                }
            }
            Err(e) => failures.push(format!("{name}: no response ({e})")),
        }
        let seen = origin.received_text();
        if !seen.is_empty() {
            failures.push(format!("{name}: origin received {seen:?}"));
            break;
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
    // A late forward would show up before the sentinel.
    sentinel(p.addr).await;
    only_sentinel_upstream(&origin);
}

/// The head is valid and forwarded before the body is read, so a broken chunked body is only
/// noticed mid-request: the client gets a 400 with close, the origin never a complete request.
#[tokio::test]
async fn malformed_chunked_bodies_400_and_no_complete_request_upstream() {
    let cases: &[(&str, &str)] = &[
        ("chunk size zz", "zz\r\nhello\r\n0\r\n\r\n"),
        ("chunk size 0x5", "0x5\r\nhello\r\n0\r\n\r\n"),
        ("bare LF after chunk size", "5\nhello\r\n0\r\n\r\n"),
    ];
    let origin = Origin::start().await;
    let p = proxy_to(origin.addr);
    for (name, body) in cases {
        let raw = post("Transfer-Encoding: chunked\r\n", &format!("{body}{SMUGGLED}"));
        let (resp, closed) = within(15, probe(p.addr, &raw)).await;
        let r = resp.unwrap_or_else(|e| panic!("{name}: no response: {e}"));
        assert_eq!(r.status, 400, "{name}");
        assert_eq!(r.header("connection"), Some("close"), "{name}");
        assert!(closed, "{name}: connection left open");
    }
    sentinel(p.addr).await;
    assert_eq!(origin.requests(), 1, "only the sentinel is complete: {:?}", origin.received_text());
    for seen in origin.received_text() {
        assert!(!seen.contains("/smuggled"), "{seen:?}");
    }
}

/// RFC 9112 §3.2.2: with an absolute-form target the Host header is replaced by its authority.
#[tokio::test]
async fn absolute_form_rewrites_host_to_target_authority() {
    let origin = Origin::start().await;
    let p = proxy_to(origin.addr);
    let mut c = Conn::connect(p.addr).await.unwrap();
    c.send(b"GET http://evil/echo?q=1 HTTP/1.1\r\nHost: good.example\r\n\r\n").await.unwrap();
    let r = within(10, c.read_response()).await.unwrap();
    assert_eq!(r.status, 200, "{}", r.text());
    let seen = origin.received_text();
    assert_eq!(seen.len(), 1, "{seen:?}");
    let dump = r.text();
    assert!(dump.starts_with("GET /echo?q=1 HTTP/1.1\n"), "{dump}");
    let hosts: Vec<&str> = dump.lines().filter_map(|l| l.strip_prefix("host: ")).collect();
    assert_eq!(hosts, vec!["evil"], "{dump}");
    assert!(!seen[0].contains("good.example"), "{:?}", seen[0]);
}

/// RFC 9112 §3.2.4: an absolute-form OPTIONS without path or query reaches the origin as `*`, with
/// the target's authority as Host; one with a path keeps it.
#[tokio::test]
async fn absolute_form_options_without_path_becomes_asterisk() {
    let origin = Origin::start().await;
    let p = proxy_to(origin.addr);
    let mut c = Conn::connect(p.addr).await.unwrap();
    for (target, line) in
        [("http://example.test", "OPTIONS * HTTP/1.1\n"), ("http://example.test/", "OPTIONS / HTTP/1.1\n")]
    {
        c.send(format!("OPTIONS {target} HTTP/1.1\r\nHost: other.test\r\n\r\n").as_bytes()).await.unwrap();
        let r = within(10, c.read_response()).await.unwrap();
        assert_eq!(r.status, 200, "{}", r.text());
        let dump = r.text();
        assert!(dump.starts_with(line), "{target}: {dump}");
        let hosts: Vec<&str> = dump.lines().filter_map(|l| l.strip_prefix("host: ")).collect();
        assert_eq!(hosts, vec!["example.test"], "{dump}");
    }
}

/// A one-shot raw origin: every connection gets `response` after its request head, then closes.
async fn raw_origin(response: &'static [u8]) -> (SocketAddr, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let accepts = Arc::new(AtomicUsize::new(0));
    let count = accepts.clone();
    tokio::spawn(async move {
        loop {
            let Ok((mut s, _)) = listener.accept().await else {
                return;
            };
            count.fetch_add(1, Ordering::SeqCst);
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut scratch = [0u8; 4096];
                while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
                    match s.read(&mut scratch).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => buf.extend_from_slice(&scratch[..n]),
                    }
                }
                let _ = s.write_all(response).await;
                // Closing first could race the proxy's read of the response: hold the connection
                // until the proxy drops it.
                let _ = tokio::time::timeout(Duration::from_secs(10), async {
                    while let Ok(n) = s.read(&mut scratch).await {
                        if n == 0 {
                            break;
                        }
                    }
                })
                .await;
            });
        }
    });
    (addr, accepts)
}

#[tokio::test]
async fn malformed_upstream_responses_become_502_without_leaking() {
    let cases: &[(&str, &[u8])] = &[
        (
            "CL+TE",
            b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\nX-Bad: leak\r\n\r\n5\r\nLEAKY\r\n0\r\n\r\n",
        ),
        (
            "Content-Length: 5, 6",
            b"HTTP/1.1 200 OK\r\nContent-Length: 5, 6\r\nX-Bad: leak\r\n\r\nLEAKYLEAKY",
        ),
        (
            "obs-fold",
            b"HTTP/1.1 200 OK\r\nX-Bad: leak\r\n folded\r\nContent-Length: 5\r\n\r\nLEAKY",
        ),
    ];
    for (name, response) in cases {
        let (addr, accepts) = raw_origin(response).await;
        let p = proxy_to(addr);
        let mut c = Conn::connect(p.addr).await.unwrap();
        c.send(b"GET /x HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n").await.unwrap();
        let r = within(10, c.read_response()).await.unwrap_or_else(|e| panic!("{name}: {e}"));
        let rest = within(10, c.read_to_end()).await.unwrap_or_default();
        assert_eq!(r.status, 502, "{name}: {:?}", r.headers);
        assert!(accepts.load(Ordering::SeqCst) >= 1, "{name}");
        assert!(r.header("x-bad").is_none(), "{name}: {:?}", r.headers);
        let all = [r.body.clone(), rest].concat();
        let text = String::from_utf8_lossy(&all);
        assert!(!text.contains("LEAKY") && !text.contains("leak"), "{name}: {text:?}");
    }
}

#[tokio::test]
async fn early_response_drains_small_body_and_keeps_connection() {
    let origin = Origin::start().await;
    let p = proxy_to(origin.addr);
    let mut c = Conn::connect(p.addr).await.unwrap();
    let r = within(10, c.request("POST", "/deny", &[], b"0123456789")).await;
    assert_eq!(r.status, 403);
    assert_eq!(r.text(), "denied");
    assert_ne!(r.header("connection"), Some("close"));
    let r = within(10, c.request("GET", "/echo", &[], b"")).await;
    assert_eq!(r.status, 200);
    assert!(r.text().starts_with("GET /echo HTTP/1.1\n"), "{}", r.text());
    assert_eq!(origin.requests(), 1, "{:?}", origin.received_text());
}

/// A 1 MiB body left unread after a local 403 is too much to drain: the proxy must close, never
/// parse the rest of the body as requests.
#[tokio::test]
async fn early_response_with_huge_unread_body_closes_instead_of_parsing_it() {
    let origin = Origin::start().await;
    let p = proxy_to(origin.addr);
    let len = 1024 * 1024;
    let mut body = Vec::with_capacity(len);
    while body.len() + SMUGGLED.len() <= len {
        body.extend_from_slice(SMUGGLED.as_bytes());
    }
    body.resize(len, b'\n');
    let mut raw = format!("POST /deny HTTP/1.1\r\nHost: a\r\nContent-Length: {len}\r\n\r\n").into_bytes();
    raw.extend_from_slice(&body);
    raw.extend_from_slice(SMUGGLED.as_bytes());

    let stream = TcpStream::connect(p.addr).await.unwrap();
    let (mut rd, mut wr) = stream.into_split();
    let writer = tokio::spawn(async move {
        // Fails with EPIPE/ECONNRESET once the proxy closes; that is expected.
        let _ = wr.write_all(&raw).await;
        wr
    });
    let mut got = Vec::new();
    let read = async {
        let mut scratch = [0u8; 16 * 1024];
        loop {
            match rd.read(&mut scratch).await {
                Ok(0) | Err(_) => break,
                Ok(n) => got.extend_from_slice(&scratch[..n]),
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(5), read).await.expect("proxy did not close the connection");
    let _wr = within(5, writer).await;
    let text = String::from_utf8_lossy(&got).into_owned();
    assert!(text.starts_with("HTTP/1.1 403 "), "{text:?}");
    assert_eq!(text.matches("HTTP/1.1 ").count(), 1, "more than one response: {text:?}");
    sentinel(p.addr).await;
    only_sentinel_upstream(&origin);
}

/// With `drain_limit = 0` any unread body after a local answer means close, however small.
#[tokio::test]
async fn drain_limit_zero_closes_after_early_response() {
    let origin = Origin::start().await;
    let mut app = HttpProxy::new(To(origin.addr.to_string()));
    app.server_options_mut().drain_limit = 0;
    let p = Proxy::start_with(app, |_| {});
    let mut c = Conn::connect(p.addr).await.unwrap();
    c.send(&support::client::build_request("POST", "/deny", &[], format!("0123456789{SMUGGLED}").as_bytes()))
        .await
        .unwrap();
    let r = within(10, c.read_response()).await.unwrap();
    assert_eq!(r.status, 403);
    assert!(c.closed_within(Duration::from_secs(2)).await);
    assert_eq!(origin.accepts(), 0);
}
