//! The access log end to end: one line per request for HTTP/1, HTTP/2, TLS, a retried request, a
//! 502 and a hook's own answer, in the JSON and combined formats; request ids in lines and
//! upstream; and log rotation under load losing no line.

mod support;
mod tls_pki;

use std::net::SocketAddr;
use std::sync::Arc;

use http::StatusCode;
use proxy::error::Result;
use proxy::log::{AccessFormat, LogTarget, LogWriter};
use proxy::protocol::stream::SocketAddr as Addr;
use proxy::proxy::{HttpProxy, Observer, ProxyHttp, Session};
use proxy::tls::TlsSettings;
use proxy::upstream::HttpPeer;
use support::client::{get, Conn};
use support::harness::Proxy;
use support::origin::{refused_addr, Origin};
use support::{eventually, within};
use tls_pki::{client_config, temp_dir, tls_connect, Ca, Trust};

struct Hooks {
    origin: SocketAddr,
    refused: SocketAddr,
}

impl ProxyHttp for Hooks {
    type CTX = ();
    fn new_ctx(&self) {}
    async fn request_filter(&self, s: &mut Session, _c: &mut ()) -> Result<bool> {
        if s.req.uri.path() == "/hook" {
            s.respond_status(StatusCode::FORBIDDEN, "no\n");
            return Ok(true);
        }
        Ok(false)
    }
    async fn upstream_peer(&self, s: &mut Session, _c: &mut ()) -> Result<HttpPeer> {
        let path = s.req.uri.path();
        let refused = path == "/fail" || (path == "/retry" && s.retries() == 0);
        let to = if refused { self.refused } else { self.origin };
        Ok(HttpPeer::new(&to.to_string()).unwrap())
    }
}

struct Setup {
    proxy: Proxy,
    tls: SocketAddr,
    ca: Ca,
    log: Arc<LogWriter>,
    _origin: Origin,
}

async fn start(path: &std::path::Path, format: &str) -> Setup {
    let origin = Origin::start().await;
    let hooks = Hooks { origin: origin.addr, refused: refused_addr().await };
    let log = LogWriter::start(LogTarget::File(path.into()), AccessFormat::parse(format).unwrap()).unwrap();
    let mut app = HttpProxy::new(hooks);
    app.options_mut().observe = Some(Arc::new(Observer {
        service: "web".into(),
        access_log: Some(log.clone()),
        request_ids: true,
        ..Observer::default()
    }));
    let ca = Ca::new("Test CA");
    let leaf = ca.server(&["proxy.test"]);
    let settings = TlsSettings::from_pem(leaf.cert_pem.as_bytes(), leaf.key_pem.as_bytes()).unwrap();
    let mut tls = None;
    let proxy = Proxy::start_with(app, |svc| tls = Some(svc.add_tls("127.0.0.1:0", &settings).unwrap()));
    let Some(Addr::Inet(tls)) = tls else { panic!("no TLS address") };
    Setup { proxy, tls, ca, log, _origin: origin }
}

/// One request of each kind; returns the log's lines in order.
async fn each_kind(format: &str) -> Vec<String> {
    let dir = temp_dir("observe-kinds");
    let path = dir.join("access.log");
    let s = start(&path, format).await;
    let expect = [("/plain", 200), ("/retry", 200), ("/fail", 502), ("/hook", 403)];
    for (p, status) in expect {
        let r = within(10, get(s.proxy.addr, p)).await;
        assert_eq!(r.status, status, "{p}: {}", r.text());
    }
    // The 502's body says what happened, and carries the request id.
    let r = within(10, get(s.proxy.addr, "/fail")).await;
    assert_eq!(r.text(), "502 Bad Gateway: could not connect to the upstream\n");
    assert_eq!(r.header("x-request-id").map(str::len), Some(32));
    // HTTP/2 (prior knowledge).
    let tcp = tokio::net::TcpStream::connect(s.proxy.addr).await.unwrap();
    let (mut h2, conn) = h2::client::handshake(tcp).await.unwrap();
    tokio::spawn(conn);
    let req = http::Request::get("http://proxy.test/h2").body(()).unwrap();
    let (resp, _) = h2.send_request(req, true).unwrap();
    assert_eq!(within(10, resp).await.unwrap().status(), 200);
    // TLS.
    let cfg = client_config(Trust::Ca(&s.ca), &[&rustls::version::TLS13], &[], None);
    let tls = within(10, tls_connect(s.tls, "proxy.test", cfg)).await.expect("handshake");
    let mut c = Conn::from_stream(Box::new(tls));
    let r = within(10, c.request("GET", "/tls", &[("x-request-id", "client-id-1")], b"")).await;
    assert_eq!(r.status, 200);
    // The upstream got the client's id and a traceparent.
    assert!(r.text().contains("x-request-id: client-id-1"), "{}", r.text());
    assert!(r.text().contains("traceparent: 00-"), "{}", r.text());
    // A request's line is queued by its logging phase, which runs after the client has the whole
    // response: wait for the seventh line rather than racing it.
    let lines = || -> Vec<String> {
        std::fs::read_to_string(&path).unwrap_or_default().lines().map(str::to_string).collect()
    };
    eventually(|| {
        s.log.flush();
        lines().len() >= 7
    })
    .await;
    lines()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_lines_for_every_kind_of_request() {
    let lines = each_kind("json").await;
    assert_eq!(lines.len(), 7, "{lines:#?}");
    let has = |i: usize, parts: &[&str]| {
        for p in parts {
            assert!(lines[i].contains(p), "line {i} lacks {p}: {}", lines[i]);
        }
    };
    has(
        0,
        &[
            "\"target\":\"/plain\"",
            "\"status\":200,",
            "\"tries\":1,",
            "\"protocol\":\"HTTP/1.1\"",
            "\"error\":null",
        ],
    );
    has(1, &["\"target\":\"/retry\"", "\"status\":200,", "\"tries\":2,"]);
    has(2, &["\"target\":\"/fail\"", "\"status\":502,", "\"error\":\"upstream connect refused"]);
    has(3, &["\"target\":\"/hook\"", "\"status\":403,", "\"tries\":0,", "\"upstream\":null"]);
    has(5, &["\"protocol\":\"HTTP/2.0\"", "\"target\":\"http://proxy.test/h2\"", "\"status\":200,"]);
    has(
        6,
        &[
            "\"tls_version\":\"TLSv1.3\"",
            "\"tls_cipher\":\"TLS13_",
            "\"sni\":\"proxy.test\"",
            "\"request_id\":\"client-id-1\"",
        ],
    );
    assert!(lines.iter().all(|l| l.contains("\"request_id\":\"")), "{lines:#?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn combined_lines_for_every_kind_of_request() {
    let lines = each_kind("combined").await;
    assert_eq!(lines.len(), 7, "{lines:#?}");
    assert!(lines[0].starts_with("127.0.0.1 - - ["), "{}", lines[0]);
    assert!(lines[0].contains("] \"GET /plain HTTP/1.1\" 200 "), "{}", lines[0]);
    assert!(lines[1].contains("\"GET /retry HTTP/1.1\" 200 "), "{}", lines[1]);
    assert!(lines[2].contains("\"GET /fail HTTP/1.1\" 502 51 "), "{}", lines[2]);
    assert!(lines[3].contains("\"GET /hook HTTP/1.1\" 403 3 "), "{}", lines[3]);
    assert!(lines[5].contains("\"GET http://proxy.test/h2 HTTP/2.0\" 200 "), "{}", lines[5]);
    assert!(lines[6].contains("\"GET /tls HTTP/1.1\" 200 "), "{}", lines[6]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotation_under_load_loses_no_line() {
    let dir = temp_dir("observe-rotate");
    let path = dir.join("access.log");
    let s = start(&path, "$request_id $status").await;
    const CLIENTS: usize = 8;
    const EACH: usize = 150;
    let addr = s.proxy.addr;
    let load: Vec<_> = (0..CLIENTS)
        .map(|_| {
            tokio::spawn(async move {
                let mut c = Conn::connect(addr).await.unwrap();
                for _ in 0..EACH {
                    assert_eq!(c.request("GET", "/r", &[], b"").await.status, 200);
                }
            })
        })
        .collect();
    // Rotate while the clients run: rename, then reopen, a few times.
    let mut rotated = Vec::new();
    for i in 0..4 {
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        let old = dir.join(format!("access.log.{i}"));
        std::fs::rename(&path, &old).unwrap();
        let log = s.log.clone();
        tokio::task::spawn_blocking(move || log.reopen()).await.unwrap().unwrap();
        rotated.push(old);
    }
    for l in load {
        within(60, l).await.unwrap();
    }
    s.log.flush();
    rotated.push(path);
    let mut ids = std::collections::HashSet::new();
    for f in &rotated {
        for line in std::fs::read_to_string(f).unwrap().lines() {
            assert!(line.ends_with(" 200"), "{line}");
            assert!(ids.insert(line.to_string()), "duplicate {line}");
        }
    }
    assert_eq!(ids.len(), CLIENTS * EACH);
}
