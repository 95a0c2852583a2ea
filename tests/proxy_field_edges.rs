//! Edges of the request head that a lenient origin could read differently from the proxy, sent raw
//! through the proxy to a recording origin: exactly what the origin received is checked, next to
//! the exact status the client got. HTTP/1.x minor versions, Host completion, canonical
//! Content-Length, and field names with underscores.

mod support;

use std::net::SocketAddr;
use std::time::Duration;

use proxy::error::Result;
use proxy::proxy::{HttpProxy, ProxyHttp, Session};
use proxy::upstream::HttpPeer;
use support::client::{Conn, Response};
use support::harness::Proxy;
use support::origin::Origin;
use support::within;

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

/// The head of the one request the origin received since `before` requests (lowercased names as
/// sent; the origin records the raw bytes).
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
