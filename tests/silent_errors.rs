//! Failures the proxy used to answer or log silently (issue 10, item 10), driven over loopback:
//! error responses the proxy makes itself name their status in a short text body, a filter that
//! answers without an answer fails with a cause, a response set with `Session::respond` is sent
//! even when the filter returns `Ok(false)`, and a response the upstream cuts short is an error in
//! the logging summary instead of a plain `200`.

mod support;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use http::StatusCode;
use proxy::error::{Error, ErrorKind, ErrorSource, Result};
use proxy::proxy::{HttpProxy, ProxyHttp, Session, Summary};
use proxy::upstream::HttpPeer;
use support::client::{build_request, Conn};
use support::harness::Proxy;
use support::origin::{refused_addr, Origin};
use support::{eventually, within};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// Per logged request: the summary and the error the logging phase got.
type Logs = Arc<Mutex<Vec<(Summary, Option<String>)>>>;

/// How the hooks misbehave, chosen per request by the `x-mode` header.
struct Hooks {
    peer: SocketAddr,
    logs: Logs,
}

impl Hooks {
    fn new(peer: SocketAddr) -> (Hooks, Logs) {
        let logs = Arc::new(Mutex::new(Vec::new()));
        (Hooks { peer, logs: logs.clone() }, logs)
    }
}

fn mode(s: &Session) -> &str {
    s.req.headers.get("x-mode").and_then(|v| v.to_str().ok()).unwrap_or("")
}

impl ProxyHttp for Hooks {
    type CTX = ();
    fn new_ctx(&self) {}

    async fn request_filter(&self, s: &mut Session, _c: &mut ()) -> Result<bool> {
        match mode(s) {
            "fail" => Err(Error::internal("request_filter").with_cause("failing on purpose")),
            "not-found" => Err(Error::new(ErrorKind::HttpStatus(404), ErrorSource::Internal, "routing")),
            "unavailable" => Err(Error::new(ErrorKind::HttpStatus(503), ErrorSource::Internal, "routing")),
            "answer-nothing" => Ok(true),
            "respond-continue" => {
                s.respond_status(StatusCode::FORBIDDEN, "denied\n");
                Ok(false)
            }
            _ => Ok(false),
        }
    }

    async fn upstream_peer(&self, _s: &mut Session, _c: &mut ()) -> Result<HttpPeer> {
        let mut peer = HttpPeer::new(&self.peer.to_string()).unwrap();
        peer.options.read_timeout = Some(Duration::from_millis(300));
        Ok(peer)
    }

    fn logging(&self, s: &mut Session, e: Option<&Error>, _c: &mut ()) {
        self.logs.lock().unwrap().push((s.summary.clone(), e.map(|e| e.to_string())));
    }
}

fn start(peer: SocketAddr) -> (Proxy, Logs) {
    let (h, logs) = Hooks::new(peer);
    let mut app = HttpProxy::new(h);
    app.options_mut().max_retries = 0;
    let o = app.server_options_mut();
    o.request_buffer = 16;
    o.body_idle_timeout = Duration::from_millis(300);
    (Proxy::start_with(app, |_| {}), logs)
}

/// The proxy's page for `status`: the status line's words, then what happened.
fn page(status: u16, what: &str) -> String {
    let s = StatusCode::from_u16(status).unwrap();
    format!("{status} {}: {what}\n", s.canonical_reason().unwrap())
}

/// Whether `body` is one line naming `status` and saying what happened.
fn names_status(body: &str, status: u16) -> bool {
    let s = StatusCode::from_u16(status).unwrap();
    let head = format!("{status} {}: ", s.canonical_reason().unwrap());
    body.starts_with(&head)
        && body.len() > head.len() + 1
        && body.ends_with('\n')
        && body.lines().count() == 1
}

#[tokio::test]
async fn proxy_made_error_responses_name_their_status() {
    let origin = Origin::start().await;
    let (p, _) = start(origin.addr);
    let (refused_p, _) = start(refused_addr().await);
    // (what, proxy, raw request, status)
    let cases: Vec<(&str, SocketAddr, Vec<u8>, u16)> = vec![
        ("malformed head", p.addr, b"GET / HTTP/1.1\r\nHost: a\r\nno colon here\r\n\r\n".to_vec(), 400),
        ("CONNECT refused", p.addr, b"CONNECT a:443 HTTP/1.1\r\nHost: a:443\r\n\r\n".to_vec(), 405),
        ("hook error", p.addr, build_request("GET", "/echo", &[("x-mode", "fail")], b""), 500),
        ("hook 404", p.addr, build_request("GET", "/echo", &[("x-mode", "not-found")], b""), 404),
        ("hook 503", p.addr, build_request("GET", "/echo", &[("x-mode", "unavailable")], b""), 503),
        (
            "answer without a response",
            p.addr,
            build_request("GET", "/echo", &[("x-mode", "answer-nothing")], b""),
            500,
        ),
        ("body past the request buffer", p.addr, build_request("POST", "/echo", &[], &[b'x'; 100]), 413),
        // Content-Length 10, 2 bytes sent, then silence past the body idle timeout.
        (
            "slow body",
            p.addr,
            b"POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\n\r\nab".to_vec(),
            408,
        ),
        ("upstream timeout", p.addr, build_request("GET", "/hang", &[], b""), 504),
        ("upstream refused", refused_p.addr, build_request("GET", "/echo", &[], b""), 502),
    ];
    // What a few of them say exactly.
    let exact = [
        ("CONNECT refused", page(405, "CONNECT is not served")),
        ("upstream refused", page(502, "could not connect to the upstream")),
        ("upstream timeout", page(504, "the upstream did not answer in time")),
        ("body past the request buffer", page(413, "the request body is too large")),
    ];
    for (what, addr, req, status) in cases {
        let r = within(5, async {
            let mut c = Conn::connect(addr).await.unwrap();
            c.send(&req).await.unwrap();
            c.read_response().await.unwrap()
        })
        .await;
        assert_eq!(r.status, status, "{what}: {}", r.text());
        assert!(names_status(&r.text(), status), "{what}: {}", r.text());
        assert!(r.complete, "{what}");
        assert_eq!(r.header("content-length"), Some(r.text().len().to_string().as_str()), "{what}");
        assert_eq!(r.header("content-type"), Some("text/plain; charset=utf-8"), "{what}");
        if let Some((_, want)) = exact.iter().find(|(w, _)| *w == what) {
            assert_eq!(&r.text(), want, "{what}");
        }
    }
}

#[tokio::test]
async fn error_response_to_head_has_no_body() {
    let (p, _) = start(refused_addr().await);
    within(5, async {
        let mut c = Conn::connect(p.addr).await.unwrap();
        c.send(&build_request("HEAD", "/echo", &[], b"")).await.unwrap();
        let r = c.read_response_for_head().await.unwrap();
        assert_eq!(r.status, 502);
        // Nothing but the head: the next response on this connection starts right after it.
        c.send(&build_request("GET", "/echo", &[], b"")).await.unwrap();
        let r = c.read_response().await.unwrap();
        assert_eq!(r.status, 502);
        assert_eq!(r.text(), page(502, "could not connect to the upstream"));
        // Refused before it becomes a session (conflicting lengths): still no body for HEAD.
        let mut c = Conn::connect(p.addr).await.unwrap();
        c.send(b"HEAD / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n")
            .await
            .unwrap();
        let r = c.read_response_for_head().await.unwrap();
        assert_eq!(r.status, 400);
        assert_eq!(r.header("content-length"), None);
        assert!(c.read_to_end().await.unwrap().is_empty(), "nothing after the head");
    })
    .await;
}

#[tokio::test]
async fn answer_without_a_response_fails_with_its_cause() {
    let origin = Origin::start().await;
    let (p, logs) = start(origin.addr);
    let r = within(5, async {
        let mut c = Conn::connect(p.addr).await.unwrap();
        c.request("GET", "/echo", &[("x-mode", "answer-nothing")], b"").await
    })
    .await;
    assert_eq!(r.status, 500);
    assert!(within(5, eventually(|| !logs.lock().unwrap().is_empty())).await);
    let (sum, e) = logs.lock().unwrap()[0].clone();
    let e = e.expect("logging sees an error");
    assert!(e.contains("without Session::respond"), "{e}");
    assert_eq!(sum.error_status, 500);
    assert!(!sum.truncated);
    assert_eq!(origin.requests(), 0);
}

#[tokio::test]
async fn response_set_then_continue_is_sent_and_nothing_is_forwarded() {
    let origin = Origin::start().await;
    let (p, _) = start(origin.addr);
    let r = within(5, async {
        let mut c = Conn::connect(p.addr).await.unwrap();
        c.request("GET", "/echo", &[("x-mode", "respond-continue")], b"").await
    })
    .await;
    assert_eq!(r.status, 403);
    assert_eq!(r.text(), "denied\n");
    assert_eq!(origin.requests(), 0, "the request must not reach the origin");
}

/// An origin that announces `total` body bytes, sends `sent` of them and closes.
async fn cutting_origin(total: usize, sent: usize) -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = l.accept().await {
            tokio::spawn(async move {
                let mut head = Vec::new();
                let mut buf = [0u8; 1024];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    match s.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => head.extend_from_slice(&buf[..n]),
                    }
                }
                let mut out = format!("HTTP/1.1 200 OK\r\nContent-Length: {total}\r\n\r\n").into_bytes();
                out.extend(std::iter::repeat_n(b'a', sent));
                let _ = s.write_all(&out).await;
                let _ = s.shutdown().await;
            });
        }
    });
    addr
}

#[tokio::test]
async fn response_cut_by_the_upstream_is_an_error_in_the_summary() {
    let (p, logs) = start(cutting_origin(1000, 500).await);
    within(5, async {
        let mut c = Conn::connect(p.addr).await.unwrap();
        c.send(&build_request("GET", "/big", &[], b"")).await.unwrap();
        let r = c.read_response().await.unwrap();
        assert_eq!(r.status, 200);
        assert!(!r.complete);
        assert_eq!(r.body.len(), 500);
        assert!(eventually(|| !logs.lock().unwrap().is_empty()).await);
    })
    .await;
    let (sum, e) = logs.lock().unwrap()[0].clone();
    assert!(e.is_some(), "the logging phase sees the error");
    assert_eq!(sum.status, 200);
    assert_eq!(sum.bytes_out, 500);
    assert!(sum.truncated, "{sum:?}");
    assert_eq!(sum.error_status, 502);
    let text = sum.error.expect("the summary carries the error");
    assert!(
        text.starts_with("response truncated (200 sent, 500 body bytes): upstream connection closed"),
        "{text}"
    );
    assert!(text.contains("EOF after 500 body bytes, 500 short of the Content-Length"), "{text}");
}

#[tokio::test]
async fn complete_response_is_not_an_error() {
    let origin = Origin::start().await;
    let (p, logs) = start(origin.addr);
    let r = within(5, async {
        let mut c = Conn::connect(p.addr).await.unwrap();
        c.request("GET", "/big/1000", &[], b"").await
    })
    .await;
    assert_eq!(r.body.len(), 1000);
    assert!(within(5, eventually(|| !logs.lock().unwrap().is_empty())).await);
    let (sum, e) = logs.lock().unwrap()[0].clone();
    assert!(e.is_none() && sum.error.is_none(), "{e:?}");
    assert!(!sum.truncated);
    assert_eq!(sum.error_status, 0);
}

/// Status, content-length and body of one HTTP/2 request (prior knowledge, h2c).
async fn h2_exchange(addr: SocketAddr, method: &str, uri: &str) -> (u16, Option<String>, Vec<u8>) {
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let (mut client, conn) = h2::client::handshake(tcp).await.unwrap();
    tokio::spawn(conn);
    let req = http::Request::builder().method(method).uri(uri).body(()).unwrap();
    let (resp, _) = client.send_request(req, true).unwrap();
    let resp = resp.await.unwrap();
    let status = resp.status().as_u16();
    let len = resp.headers().get("content-length").map(|v| v.to_str().unwrap().to_string());
    let mut body = resp.into_body();
    let mut data = Vec::new();
    while let Some(chunk) = body.data().await {
        let chunk = chunk.unwrap();
        let _ = body.flow_control().release_capacity(chunk.len());
        data.extend_from_slice(&chunk);
    }
    (status, len, data)
}

#[tokio::test]
async fn http2_error_responses_name_their_status() {
    let (p, _) = start(refused_addr().await);
    let base = format!("http://{}", p.addr);
    within(5, async {
        let (status, len, body) = h2_exchange(p.addr, "GET", &format!("{base}/echo")).await;
        let want = page(502, "could not connect to the upstream");
        assert_eq!((status, body.as_slice()), (502, want.as_bytes()));
        assert_eq!(len, Some(want.len().to_string()));
        // Refused before it becomes a session (no CONNECT on this service).
        let (status, _, body) = h2_exchange(p.addr, "CONNECT", "a.test:443").await;
        assert_eq!((status, body.as_slice()), (405, page(405, "CONNECT is not served").as_bytes()));
        let (status, _, body) = h2_exchange(p.addr, "HEAD", &format!("{base}/echo")).await;
        assert_eq!(status, 502);
        assert!(body.is_empty());
    })
    .await;
}
