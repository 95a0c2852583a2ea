//! The PROXY protocol against real peers: HAProxy in front sends v1 and v2 to libproxy (HTTP and
//! L4 services), libproxy sends v2 (HTTP) and v1 (L4) on to an nginx origin listening with
//! `proxy_protocol`, and each test checks the address nginx logs and the one the hooks saw. Then
//! a table of malformed headers: every one closes its connection, logged, and the origin never
//! sees a request; untrusted senders are refused; the optional mode serves both kinds.

mod support;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use proxy::error::Result;
use proxy::l4::{L4Hooks, L4Proxy, L4Session};
use proxy::protocol::proxy_protocol::{AcceptMode, AcceptPolicy, PP2_TYPE_AUTHORITY};
use proxy::protocol::stream::SocketAddr as Addr;
use proxy::proxy::{HttpProxy, ProxyHttp, Session};
use proxy::server::{LogLevel, Logger, Server, ServerConf, ServerHandle};
use proxy::service::{ListeningService, Service};
use proxy::upstream::{HttpPeer, SendProxy};
use support::daemons::{free_ports, nginx_http_common};
use support::origin::Origin;
use support::within;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

/// Client addresses the hooks saw, and the `authority` TLV when there was one.
type Seen = Arc<Mutex<Vec<(String, Option<String>)>>>;

struct Http {
    peer: HttpPeer,
    seen: Seen,
}

impl ProxyHttp for Http {
    type CTX = ();
    fn new_ctx(&self) {}
    async fn upstream_peer(&self, s: &mut Session, _c: &mut ()) -> Result<HttpPeer> {
        let authority = s
            .proxy_header()
            .and_then(|h| h.tlv(PP2_TYPE_AUTHORITY))
            .map(|v| String::from_utf8_lossy(&v).into_owned());
        self.seen.lock().unwrap().push((s.client_addr().unwrap().to_string(), authority));
        Ok(self.peer.clone())
    }
}

struct Tcp {
    peer: HttpPeer,
    seen: Seen,
}

impl L4Hooks for Tcp {
    async fn upstream_peer(&self, s: &mut L4Session) -> Result<HttpPeer> {
        self.seen.lock().unwrap().push((s.client_addr().unwrap().to_string(), None));
        Ok(self.peer.clone())
    }
}

fn peer_sending(addr: SocketAddr, version: u8) -> HttpPeer {
    let mut p = HttpPeer::new(&addr.to_string()).unwrap();
    p.options.proxy_protocol = Some(Box::new(SendProxy::new(version)));
    p
}

/// A started service and the WARN messages of its server.
struct Running {
    addr: SocketAddr,
    warnings: Arc<Mutex<Vec<String>>>,
    handle: Option<ServerHandle>,
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(h) = self.handle.take() {
            h.shutdown_fast();
        }
    }
}

fn run<A: proxy::app::ServerApp>(mut svc: ListeningService<A>, policy: AcceptPolicy) -> Running
where
    ListeningService<A>: Service,
{
    let Addr::Inet(addr) = svc.add_tcp("127.0.0.1:0").unwrap() else { unreachable!() };
    svc.set_proxy_protocol(Some(policy));
    let warnings = Arc::new(Mutex::new(Vec::new()));
    let w = warnings.clone();
    let log = Logger::new(move |level, msg| {
        if level <= LogLevel::Warn {
            w.lock().unwrap().push(msg.to_owned());
        }
    });
    let mut server = Server::new(ServerConf { log, ..ServerConf::default() });
    server.add_service(svc);
    Running { addr, warnings, handle: Some(server.start().unwrap()) }
}

fn trusting(ranges: &[&str]) -> AcceptPolicy {
    AcceptPolicy { trusted: ranges.iter().map(|r| r.parse().unwrap()).collect(), ..AcceptPolicy::required() }
}

/// A connection from 127.0.0.2 (any port), so that an address carried through is told apart from
/// the 127.0.0.1 every hop between the daemons uses.
async fn connect_from_127_0_0_2(to: SocketAddr) -> TcpStream {
    let s = TcpSocket::new_v4().unwrap();
    s.bind("127.0.0.2:0".parse().unwrap()).unwrap();
    s.connect(to).await.unwrap()
}

async fn get(to: SocketAddr, path: &str) -> (SocketAddr, String) {
    let mut c = connect_from_127_0_0_2(to).await;
    let me = c.local_addr().unwrap();
    c.write_all(format!("GET {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let mut out = Vec::new();
    c.read_to_end(&mut out).await.unwrap();
    (me, String::from_utf8_lossy(&out).into_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn haproxy_v1_and_v2_in_front_and_nginx_behind_see_the_client() {
    within(60, async {
        let ports = free_ports(5);
        let (nginx_port, h1, h2, h3, ready) = (ports[0], ports[1], ports[2], ports[3], ports[4]);
        let nginx = support::daemons::nginx("pp-nginx", nginx_port, |dir| {
            format!(
                "http {{ {} log_format pp '$proxy_protocol_addr $proxy_protocol_port $remote_addr $request_uri';
  access_log {}/access.log pp;
  server {{ listen 127.0.0.1:{nginx_port} proxy_protocol; location / {{ return 200 \"ok\\n\"; }} }} }}\n",
                nginx_http_common(dir),
                dir.display()
            )
        })
        .await;
        let nginx_addr: SocketAddr = ([127, 0, 0, 1], nginx_port).into();
        let seen: Seen = Arc::default();
        // HAProxy reaches us from 127.0.0.1: only that may send headers.
        let http = run(
            ListeningService::new("http", HttpProxy::new(Http { peer: peer_sending(nginx_addr, 2), seen: seen.clone() })),
            trusting(&["127.0.0.1/32"]),
        );
        let l4 = run(
            ListeningService::new("l4", L4Proxy::new(Tcp { peer: peer_sending(nginx_addr, 1), seen: seen.clone() })),
            trusting(&["127.0.0.1/32"]),
        );
        let conf = format!(
            "defaults\n  mode tcp\n  timeout connect 5s\n  timeout client 30s\n  timeout server 30s\n\
             listen v1\n  bind 127.0.0.1:{h1}\n  server s 127.0.0.1:{} send-proxy\n\
             listen v2\n  bind 127.0.0.1:{h2}\n  server s 127.0.0.1:{} send-proxy-v2\n\
             listen l4v2\n  bind 127.0.0.1:{h3}\n  server s 127.0.0.1:{} send-proxy-v2\n\
             listen ready\n  bind 127.0.0.1:{ready}\n",
            http.addr.port(),
            http.addr.port(),
            l4.addr.port()
        );
        // Probed on a port of its own: a probe on a relaying one would reach our services as a
        // connection that closes before (or right after) its PROXY header, which they warn about.
        let _haproxy = support::daemons::haproxy("pp-haproxy", ready, &conf).await;

        for (front, path) in [(h1, "/haproxy-v1/http-v2"), (h2, "/haproxy-v2/http-v2"), (h3, "/haproxy-v2/l4-v1")] {
            let (me, answer) = get(([127, 0, 0, 1], front).into(), path).await;
            assert!(answer.starts_with("HTTP/1.1 200"), "{path}: {answer}");
            // nginx logs the address libproxy's header carried: the client's, not HAProxy's
            // (127.0.0.1) nor libproxy's own (127.0.0.1, its $remote_addr).
            let want = format!("127.0.0.2 {} 127.0.0.1 {path}", me.port());
            let log = nginx.dir.join("access.log");
            let found = support::eventually(|| std::fs::read_to_string(&log).unwrap_or_default().lines().any(|l| l == want)).await;
            assert!(found, "{path}: nginx logged {:?}, wanted {want:?}", std::fs::read_to_string(&log));
            assert!(seen.lock().unwrap().iter().any(|(a, _)| *a == me.to_string()), "{path}: hooks saw {me}");
        }
        let (hw, lw) = (http.warnings.lock().unwrap().clone(), l4.warnings.lock().unwrap().clone());
        assert!(hw.is_empty() && lw.is_empty(), "warnings: http {hw:?}, l4 {lw:?}");
    })
    .await;
}

/// Sends `bytes` then (unless `truncated`: a request would complete the header) a request,
/// half-closes, and returns whatever came back before the close.
async fn answer_to(addr: SocketAddr, bytes: &[u8], truncated: bool) -> Vec<u8> {
    let mut c = TcpStream::connect(addr).await.unwrap();
    let _ = c.write_all(bytes).await;
    if !truncated {
        let _ = c.write_all(b"GET /leak HTTP/1.1\r\nHost: t\r\n\r\n").await;
    }
    let _ = c.shutdown().await;
    let mut out = Vec::new();
    let _ =
        tokio::time::timeout(Duration::from_secs(5), c.read_to_end(&mut out)).await.expect("closed in time");
    out
}

#[tokio::test]
async fn malformed_headers_close_the_connection_and_nothing_reaches_the_origin() {
    within(60, async {
        let origin = Origin::start().await;
        let seen: Seen = Arc::default();
        let p = run(
            ListeningService::new(
                "http",
                HttpProxy::new(Http { peer: HttpPeer::new(&origin.addr.to_string()).unwrap(), seen }),
            ),
            AcceptPolicy { timeout: Duration::from_secs(2), ..AcceptPolicy::required() },
        );
        let table = support::pp_corpus::malformed();
        assert!(table.len() >= 30, "{} cases", table.len());
        for (name, bytes) in &table {
            let out = answer_to(p.addr, bytes, name.contains("truncated")).await;
            assert!(out.is_empty(), "{name}: answered {:?}", String::from_utf8_lossy(&out));
        }
        // Every refusal was logged; a well-formed header then goes through (the path works, so the
        // silence above was the refusals').
        assert!(support::eventually(|| p.warnings.lock().unwrap().len() >= table.len()).await);
        assert_eq!(origin.requests(), 0, "nothing forwarded");
        let good = b"PROXY TCP4 192.0.2.1 127.0.0.1 5000 80\r\n";
        let out = answer_to(p.addr, good, false).await;
        assert!(out.starts_with(b"HTTP/1.1 200"), "{:?}", String::from_utf8_lossy(&out));
        assert_eq!(origin.requests(), 1);
    })
    .await;
}

#[tokio::test]
async fn untrusted_senders_are_refused_and_the_optional_mode_serves_both() {
    within(30, async {
        let origin = Origin::start().await;
        let seen: Seen = Arc::default();
        let svc = |seen: &Seen| {
            ListeningService::new(
                "http",
                HttpProxy::new(Http {
                    peer: HttpPeer::new(&origin.addr.to_string()).unwrap(),
                    seen: seen.clone(),
                }),
            )
        };
        let v2 = proxy::protocol::proxy_protocol::encode::v2(
            Some(("192.0.2.9:7000".parse().unwrap(), "127.0.0.1:80".parse().unwrap())),
            &[(PP2_TYPE_AUTHORITY, b"api.example")],
        );
        // Only 10.0.0.0/8 may send headers: a header from 127.0.0.1 closes the connection.
        let strict = run(svc(&seen), trusting(&["10.0.0.0/8"]));
        assert!(answer_to(strict.addr, &v2, false).await.is_empty());
        assert!(
            support::eventually(|| strict.warnings.lock().unwrap().iter().any(|m| m.contains("untrusted")))
                .await
        );
        assert_eq!(origin.requests(), 0);

        let optional =
            run(svc(&seen), AcceptPolicy { mode: AcceptMode::Optional, ..AcceptPolicy::required() });
        assert!(answer_to(optional.addr, &v2, false).await.starts_with(b"HTTP/1.1 200"));
        assert!(answer_to(optional.addr, b"", false).await.starts_with(b"HTTP/1.1 200"));
        let seen = seen.lock().unwrap().clone();
        assert_eq!(
            seen[0],
            ("192.0.2.9:7000".to_owned(), Some("api.example".to_owned())),
            "carried address and TLV"
        );
        assert!(
            seen[1].0.starts_with("127.0.0.1:") && seen[1].1.is_none(),
            "no header: the socket's address"
        );
    })
    .await;
}
