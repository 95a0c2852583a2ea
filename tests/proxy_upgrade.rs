//! Protocol upgrades through the proxy (issue 10 item 1): only allowed `Upgrade` protocols reach
//! the origin (WebSocket by default), `h2c` and `HTTP2-Settings` never do, hooks see and may refuse
//! an upgrade, and a tunnel opens only after a 101 that answers an offer the proxy forwarded.
//!
//! The origin here takes every upgrade it is offered, the way a permissive h2c-capable server
//! does: that is what turned an `Upgrade: h2c` into an HTTP/2 connection past `request_filter`.

mod support;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http::StatusCode;
use proxy::error::{Error, ErrorKind, ErrorSource, Result};
use proxy::protocol::h1::upgrade::UpgradePolicy;
use proxy::protocol::h1::RequestHead;
use proxy::proxy::{HttpProxy, ProxyHttp, Session};
use proxy::upstream::HttpPeer;
use support::harness::Proxy;
use support::within;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

/// A settings payload as curl sends it (base64url of an empty-ish SETTINGS frame).
const H2_SETTINGS: &str = "AAMAAABkAAQCAAAAAAIAAAAA";

/// An origin that switches to whatever its request's `Upgrade` names first: `h2c` to HTTP/2 (the
/// `h2` crate's server over the upgraded socket), anything else to a raw echo. A request without
/// Upgrade gets 200 with its head as the body. `/always-101` answers `101 Upgrade: h2c` whatever
/// was asked. Every head and every path requested over HTTP/2 is recorded.
struct UpgradeOrigin {
    addr: SocketAddr,
    heads: Arc<Mutex<Vec<String>>>,
    h2_paths: Arc<Mutex<Vec<String>>>,
    task: JoinHandle<()>,
}

impl Drop for UpgradeOrigin {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl UpgradeOrigin {
    async fn start() -> UpgradeOrigin {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let heads = Arc::new(Mutex::new(Vec::new()));
        let h2_paths = Arc::new(Mutex::new(Vec::new()));
        let (hs, ps) = (heads.clone(), h2_paths.clone());
        let task = tokio::spawn(async move {
            let mut conns = tokio::task::JoinSet::new();
            while let Ok((stream, _)) = listener.accept().await {
                conns.spawn(serve(stream, hs.clone(), ps.clone()));
                while conns.try_join_next().is_some() {}
            }
        });
        UpgradeOrigin { addr, heads, h2_paths, task }
    }

    fn heads(&self) -> Vec<String> {
        self.heads.lock().unwrap().clone()
    }

    fn h2_paths(&self) -> Vec<String> {
        self.h2_paths.lock().unwrap().clone()
    }
}

/// Reads a head line by line: `(start line, [(lowercased name, value)], raw text)`; `None` at EOF.
async fn read_head(io: &mut BufReader<TcpStream>) -> Option<(String, Vec<(String, String)>, String)> {
    let mut raw = String::new();
    let mut start = String::new();
    let mut fields = Vec::new();
    loop {
        let mut line = String::new();
        if io.read_line(&mut line).await.ok()? == 0 {
            return None;
        }
        raw.push_str(&line);
        let line = line.trim_end_matches(['\r', '\n']);
        if line.is_empty() {
            return Some((start, fields, raw));
        }
        if start.is_empty() {
            start = line.to_string();
        } else if let Some((n, v)) = line.split_once(':') {
            fields.push((n.trim().to_ascii_lowercase(), v.trim().to_string()));
        }
    }
}

fn field<'a>(fields: &'a [(String, String)], name: &str) -> Option<&'a str> {
    fields.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
}

async fn serve(stream: TcpStream, heads: Arc<Mutex<Vec<String>>>, h2_paths: Arc<Mutex<Vec<String>>>) {
    let mut io = BufReader::new(stream);
    while let Some((start, fields, raw)) = read_head(&mut io).await {
        heads.lock().unwrap().push(raw.clone());
        let path = start.split(' ').nth(1).unwrap_or("/").to_string();
        let offered =
            field(&fields, "upgrade").and_then(|u| u.split(',').next()).map(|t| t.trim().to_string());
        let switch_to = match (path.as_str(), offered) {
            ("/always-101", _) => "h2c".to_string(),
            (_, Some(t)) if !t.is_empty() => t,
            _ => {
                let head = format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n", raw.len());
                if io.get_mut().write_all(format!("{head}{raw}").as_bytes()).await.is_err() {
                    return;
                }
                continue;
            }
        };
        let head = format!(
            "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: {switch_to}\r\n\r\n"
        );
        if io.get_mut().write_all(head.as_bytes()).await.is_err() {
            return;
        }
        if switch_to.eq_ignore_ascii_case("h2c") {
            serve_h2(io, h2_paths).await;
        } else {
            echo(io).await;
        }
        return;
    }
}

/// HTTP/2 over the upgraded socket. The upgrade request's own stream 1 is not answered: the
/// client side of these tests opens its streams afresh, which is all an attacker needs.
async fn serve_h2(io: BufReader<TcpStream>, paths: Arc<Mutex<Vec<String>>>) {
    let Ok(mut conn) = h2::server::handshake(io).await else { return };
    while let Some(Ok((req, mut respond))) = conn.accept().await {
        let path = req.uri().path().to_string();
        paths.lock().unwrap().push(path.clone());
        let resp = http::Response::builder().status(200).body(()).unwrap();
        if let Ok(mut body) = respond.send_response(resp, false) {
            let _ = body.send_data(Bytes::from(format!("h2 origin: {path}")), true);
        }
    }
}

async fn echo(mut io: BufReader<TcpStream>) {
    let mut buf = vec![0u8; 4096];
    loop {
        match io.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => {
                if io.get_mut().write_all(&buf[..n]).await.is_err() {
                    return;
                }
            }
        }
    }
}

/// Refuses `/admin` in request_filter (the path the smuggled HTTP/2 requests aimed at), and any
/// upgrade of `/no-upgrades`; `/strip-offer` has its offer removed in upstream_request_filter and
/// `/refuse-upstream` is failed with 403 there when it is an upgrade.
struct Guard(String);

impl ProxyHttp for Guard {
    type CTX = ();
    fn new_ctx(&self) {}

    async fn request_filter(&self, s: &mut Session, _c: &mut ()) -> Result<bool> {
        let path = s.req.uri.path();
        if path.starts_with("/admin") || (path == "/no-upgrades" && s.is_upgrade()) {
            s.respond_status(StatusCode::FORBIDDEN, "forbidden\n");
            return Ok(true);
        }
        Ok(false)
    }

    async fn upstream_peer(&self, _s: &mut Session, _c: &mut ()) -> Result<HttpPeer> {
        Ok(HttpPeer::new(&self.0).unwrap())
    }

    async fn upstream_request_filter(
        &self,
        s: &mut Session,
        up: &mut RequestHead,
        _c: &mut (),
    ) -> Result<()> {
        match s.req.uri.path() {
            "/strip-offer" => {
                up.headers.remove(http::header::UPGRADE);
            }
            "/refuse-upstream" if s.is_upgrade() => {
                return Err(Error::new(
                    ErrorKind::HttpStatus(403),
                    ErrorSource::Internal,
                    "upstream_request_filter",
                )
                .with_cause("upgrades refused"));
            }
            _ => {}
        }
        Ok(())
    }
}

fn start(origin: &UpgradeOrigin, policy: Option<UpgradePolicy>) -> Proxy {
    let mut app = HttpProxy::new(Guard(origin.addr.to_string()));
    if let Some(p) = policy {
        app.server_options_mut().upgrades = p;
    }
    Proxy::start_with(app, |_| {})
}

/// A response read off a raw socket: status, fields (lowercased names) and body; the socket is
/// handed back positioned after the body (or after the head of a 101).
struct Answer {
    status: u16,
    fields: Vec<(String, String)>,
    body: String,
    io: BufReader<TcpStream>,
}

async fn read_answer(mut io: BufReader<TcpStream>) -> Answer {
    let (start, fields, _) = read_head(&mut io).await.expect("a response head");
    let status: u16 = start.split(' ').nth(1).and_then(|s| s.parse().ok()).expect("a status");
    let mut body = Vec::new();
    if status != 101 {
        let n: usize = field(&fields, "content-length").and_then(|v| v.parse().ok()).unwrap_or(0);
        body.resize(n, 0);
        io.read_exact(&mut body).await.unwrap();
    }
    Answer { status, fields, body: String::from_utf8_lossy(&body).into_owned(), io }
}

/// Sends `GET path` with `fields` on `io` and reads the answer.
async fn ask(mut io: BufReader<TcpStream>, path: &str, fields: &[(&str, &str)]) -> Answer {
    let mut req = format!("GET {path} HTTP/1.1\r\nHost: localhost\r\n");
    for (n, v) in fields {
        req.push_str(&format!("{n}: {v}\r\n"));
    }
    req.push_str("\r\n");
    io.get_mut().write_all(req.as_bytes()).await.unwrap();
    read_answer(io).await
}

async fn connect(p: &Proxy) -> BufReader<TcpStream> {
    BufReader::new(TcpStream::connect(p.addr).await.unwrap())
}

/// Speaks HTTP/2 over an upgraded connection and asks for `path`: `(status, body)`.
async fn over_h2(io: BufReader<TcpStream>, path: &str) -> (u16, String) {
    let (mut send, conn) = h2::client::handshake(io).await.expect("h2 handshake through the tunnel");
    tokio::spawn(conn);
    let req = http::Request::get(format!("http://localhost{path}")).body(()).unwrap();
    let (resp, _) = send.send_request(req, true).unwrap();
    let resp = resp.await.unwrap();
    let status = resp.status().as_u16();
    let mut body = resp.into_body();
    let mut out = Vec::new();
    while let Some(d) = body.data().await {
        out.extend_from_slice(&d.unwrap());
    }
    (status, String::from_utf8_lossy(&out).into_owned())
}

/// Whether the origin's view of a request head offers an upgrade in any form.
fn offers_anything(head: &str) -> bool {
    head.lines().any(|l| {
        let l = l.to_ascii_lowercase();
        l.starts_with("upgrade:")
            || l.starts_with("http2-settings:")
            || (l.starts_with("connection:") && l.contains("upgrade"))
    })
}

fn upgrade_field(head: &str) -> Option<String> {
    head.lines().find_map(|l| {
        l.split_once(':')
            .filter(|(n, _)| n.eq_ignore_ascii_case("upgrade"))
            .map(|(_, v)| v.trim().to_string())
    })
}

#[tokio::test]
async fn h2c_upgrade_cannot_reach_a_filtered_path() {
    let origin = UpgradeOrigin::start().await;
    let p = start(&origin, None);
    within(10, async {
        let offer =
            [("Connection", "Upgrade, HTTP2-Settings"), ("Upgrade", "h2c"), ("HTTP2-Settings", H2_SETTINGS)];
        let a = ask(connect(&p).await, "/", &offer).await;
        if a.status == 101 {
            let (status, body) = over_h2(a.io, "/admin").await;
            panic!("a tunnel opened: /admin answered {status} {body:?} over HTTP/2 past request_filter");
        }
        assert_eq!(a.status, 200, "{}", a.body);
        assert!(!offers_anything(&a.body), "the origin saw an upgrade offer:\n{}", a.body);
        // The connection is still HTTP/1.1 under the proxy's hooks.
        let b = ask(a.io, "/admin", &[]).await;
        assert_eq!(b.status, 403);
    })
    .await;
    assert_eq!(origin.heads().len(), 1, "{:?}", origin.heads());
    assert!(origin.h2_paths().is_empty(), "HTTP/2 requests reached the origin: {:?}", origin.h2_paths());
}

/// What the origin must see of each offer, and whether the proxy tunnels.
#[tokio::test]
async fn upgrade_allowlist() {
    let deny_all = || {
        let mut p = UpgradePolicy::default();
        p.deny("websocket");
        p
    };
    let allow = |tokens: &[&str]| {
        let mut p = UpgradePolicy::default();
        for t in tokens {
            p.allow(t).unwrap();
        }
        p
    };
    // (case, policy (None: the default), Upgrade offered, status, the origin's Upgrade field)
    type Case = (&'static str, Option<UpgradePolicy>, &'static str, u16, Option<&'static str>);
    let cases: Vec<Case> = vec![
        ("default, foo/1", None, "foo/1", 200, None),
        ("foo allowed", Some(allow(&["foo"])), "foo/1", 101, Some("foo/1")),
        ("foo/1 allowed", Some(allow(&["foo/1"])), "foo/1", 101, Some("foo/1")),
        ("foo/2 allowed, foo/1 offered", Some(allow(&["foo/2"])), "foo/1", 200, None),
        ("default, websocket", None, "websocket", 101, Some("websocket")),
        ("default, WebSocket", None, "WebSocket", 101, Some("WebSocket")),
        ("websocket, h2c", None, "websocket, h2c", 101, Some("websocket")),
        ("h2c, websocket", None, "h2c, websocket", 101, Some("websocket")),
        ("foo allowed, h2c first", Some(allow(&["foo"])), "h2c, foo/1", 101, Some("foo/1")),
        ("default, H2C/1.0", None, "H2C/1.0", 200, None),
        ("h2 is not h2c either", None, "h2", 200, None),
        ("websocket denied", Some(deny_all()), "websocket", 200, None),
    ];
    for (name, policy, offer, status, seen) in cases {
        let origin = UpgradeOrigin::start().await;
        let p = start(&origin, policy);
        within(10, async {
            let fields = [
                ("Connection", "keep-alive, Upgrade, HTTP2-Settings"),
                ("Upgrade", offer),
                ("HTTP2-Settings", H2_SETTINGS),
            ];
            let mut a = ask(connect(&p).await, "/x", &fields).await;
            assert_eq!(a.status, status, "{name}: {}", a.body);
            let head = origin.heads().pop().expect("the origin saw the request");
            assert_eq!(upgrade_field(&head).as_deref(), seen, "{name}: the origin saw\n{head}");
            assert!(!head.to_ascii_lowercase().contains("http2-settings"), "{name}: the origin saw\n{head}");
            if status == 101 {
                let upgrade = field(&a.fields, "upgrade").unwrap_or_default().to_string();
                assert_eq!(Some(upgrade.as_str()), seen, "{name}: the 101 goes down with its Upgrade");
                a.io.get_mut().write_all(b"raw \x00\xff bytes").await.unwrap();
                let mut back = [0u8; 12];
                a.io.read_exact(&mut back).await.unwrap();
                assert_eq!(&back, b"raw \x00\xff bytes", "{name}: tunnel echo");
            } else {
                assert!(!offers_anything(&head), "{name}: the origin saw\n{head}");
                let b = ask(a.io, "/after", &[]).await;
                assert_eq!(b.status, 200, "{name}: the connection stays HTTP/1.1");
            }
        })
        .await;
    }
}

#[test]
fn h2c_cannot_be_allowed() {
    let mut p = UpgradePolicy::default();
    for bad in ["h2c", "H2C", "h2c/1", "h2", "", "a b", "foo/", "/1", "foo,bar"] {
        assert!(p.allow(bad).is_err(), "{bad:?} was accepted");
    }
    assert!(p.allow("foo/1").is_ok());
    assert!(p.allows(b"FOO/1") && !p.allows(b"foo/2") && !p.allows(b"foo"));
    assert!(p.allows(b"websocket") && !p.allows(b"h2c"));
}

#[tokio::test]
async fn hooks_see_and_refuse_upgrades() {
    let origin = UpgradeOrigin::start().await;
    let p = start(&origin, None);
    let ws = [("Connection", "Upgrade"), ("Upgrade", "websocket")];
    within(10, async {
        // request_filter sees the allowed offer (Session::is_upgrade) and answers it.
        let a = ask(connect(&p).await, "/no-upgrades", &ws).await;
        assert_eq!((a.status, a.body.as_str()), (403, "forbidden\n"));
        // An offer of nothing allowed is no upgrade: the request goes on as a plain one.
        let a =
            ask(connect(&p).await, "/no-upgrades", &[("Connection", "Upgrade"), ("Upgrade", "h2c")]).await;
        assert_eq!(a.status, 200);
        assert!(!offers_anything(&a.body), "{}", a.body);
        // upstream_request_filter may refuse it...
        let a = ask(connect(&p).await, "/refuse-upstream", &ws).await;
        assert_eq!(a.status, 403);
        // ...or take the offer out, and the request goes up plain.
        let a = ask(connect(&p).await, "/strip-offer", &ws).await;
        assert_eq!(a.status, 200);
        assert!(!offers_anything(&a.body), "{}", a.body);
    })
    .await;
    let heads = origin.heads();
    assert_eq!(heads.len(), 2, "only the two plain requests reached the origin: {heads:?}");
}

#[tokio::test]
async fn a_101_the_proxy_did_not_offer_is_502() {
    let origin = UpgradeOrigin::start().await;
    let p = start(&origin, None);
    within(10, async {
        // No upgrade asked for at all.
        let a = ask(connect(&p).await, "/always-101", &[]).await;
        assert_eq!(a.status, 502);
        // WebSocket offered, h2c answered.
        let a = ask(connect(&p).await, "/always-101", &[("Connection", "Upgrade"), ("Upgrade", "websocket")])
            .await;
        if a.status == 101 {
            let (status, _) = over_h2(a.io, "/admin").await;
            panic!("a tunnel opened for a 101 to h2c; /admin answered {status} over HTTP/2");
        }
        assert_eq!(a.status, 502);
        // h2c offered (and not forwarded): the 101 answers nothing the proxy sent.
        let a = ask(connect(&p).await, "/always-101", &[("Connection", "Upgrade"), ("Upgrade", "h2c")]).await;
        assert_eq!(a.status, 502);
    })
    .await;
    assert!(origin.h2_paths().is_empty());
}
