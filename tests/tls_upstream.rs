//! Upstream TLS through the proxy: a tokio-rustls origin answering HTTP/1.1, verification against
//! a CA file, SNI and hostname checks, failures as 502 with the reason in the logging summary,
//! pooled TLS connections, client certificates, ALPN recorded on the stream, handshake timeout,
//! and an upstream close_notify on an idle pooled connection.

mod support;
mod tls_pki;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use proxy::error::Result;
use proxy::proxy::{ProxyHttp, Session, Summary};
use proxy::tls::{ALPN_H2, ALPN_HTTP11};
use proxy::upstream::{Alpn, HttpPeer, PeerTls};
use rustls::server::WebPkiClientVerifier;
use rustls::ServerConfig;
use support::client::Conn;
use support::harness::Proxy;
use support::{eventually, within};
use tls_pki::{temp_dir, write, Ca, Leaf};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

/// A tiny HTTP/1.1 origin behind TLS. Every response body is
/// `sni=<sni> alpn=<alpn> conn=<accept serial> path=<path>`.
struct TlsOrigin {
    addr: SocketAddr,
    accepts: Arc<AtomicUsize>,
    task: JoinHandle<()>,
}

impl Drop for TlsOrigin {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl TlsOrigin {
    /// `idle_close`: after a response, close the session (close_notify) when no request follows
    /// within this time.
    async fn start(config: ServerConfig, idle_close: Option<Duration>) -> TlsOrigin {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let accepts = Arc::new(AtomicUsize::new(0));
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        let n = accepts.clone();
        let task = tokio::spawn(async move {
            let mut conns = tokio::task::JoinSet::new();
            loop {
                let Ok((tcp, _)) = listener.accept().await else { continue };
                let serial = n.fetch_add(1, Ordering::SeqCst) + 1;
                let acceptor = acceptor.clone();
                conns.spawn(async move {
                    let Ok(tls) = acceptor.accept(tcp).await else { return };
                    if tls.get_ref().1.alpn_protocol() == Some(ALPN_H2) {
                        serve_h2(tls, serial).await;
                    } else {
                        serve(tls, serial, idle_close).await;
                    }
                });
                while conns.try_join_next().is_some() {}
            }
        });
        TlsOrigin { addr, accepts, task }
    }

    fn accepts(&self) -> usize {
        self.accepts.load(Ordering::SeqCst)
    }
}

async fn serve(
    mut tls: tokio_rustls::server::TlsStream<tokio::net::TcpStream>,
    serial: usize,
    idle_close: Option<Duration>,
) {
    let (sni, alpn) = {
        let c = tls.get_ref().1;
        let alpn = c.alpn_protocol().map(|a| String::from_utf8_lossy(a).into_owned());
        (c.server_name().unwrap_or("-").to_owned(), alpn.unwrap_or_else(|| "-".into()))
    };
    let mut buf = Vec::new();
    let mut first = true;
    loop {
        // Requests here are GETs without a body: the head ends the request.
        let end = loop {
            if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break i + 4;
            }
            let mut chunk = [0u8; 4096];
            let read = tls.read(&mut chunk);
            let n = match (idle_close, first) {
                (Some(t), false) => match tokio::time::timeout(t, read).await {
                    Ok(r) => r,
                    Err(_) => {
                        let _ = tls.shutdown().await; // close_notify, then FIN
                        return;
                    }
                },
                _ => read.await,
            };
            match n {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        };
        let head = String::from_utf8_lossy(&buf[..end]).into_owned();
        buf.drain(..end);
        let path = head.split(' ').nth(1).unwrap_or("/").to_owned();
        let body = format!("sni={sni} alpn={alpn} conn={serial} path={path}");
        let resp = format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n{body}", body.len());
        if tls.write_all(resp.as_bytes()).await.is_err() || tls.flush().await.is_err() {
            return;
        }
        first = false;
    }
}

/// HTTP/2 over TLS: every stream gets `h2 conn=<serial> path=<path> scheme=<scheme>`.
async fn serve_h2(tls: tokio_rustls::server::TlsStream<tokio::net::TcpStream>, serial: usize) {
    let Ok(mut conn) = h2::server::handshake(tls).await else { return };
    while let Some(Ok((req, mut respond))) = conn.accept().await {
        tokio::spawn(async move {
            let scheme = req.uri().scheme_str().unwrap_or("-").to_owned();
            let body = format!("h2 conn={serial} path={} scheme={scheme}", req.uri().path());
            // A little delay so concurrent requests overlap on the connection.
            tokio::time::sleep(Duration::from_millis(50)).await;
            let resp = http::Response::builder().status(200).body(()).unwrap();
            if let Ok(mut send) = respond.send_response(resp, false) {
                let _ = send.send_data(bytes::Bytes::from(body), true);
            }
        });
    }
}

fn origin_config(leaf: &Leaf, alpn: &[&[u8]], client_ca: Option<&Ca>) -> ServerConfig {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let b =
        ServerConfig::builder_with_provider(provider.clone()).with_safe_default_protocol_versions().unwrap();
    let b = match client_ca {
        Some(ca) => b.with_client_cert_verifier(
            WebPkiClientVerifier::builder_with_provider(Arc::new(ca.roots()), provider).build().unwrap(),
        ),
        None => b.with_no_client_auth(),
    };
    let mut c = b.with_single_cert(vec![leaf.der.clone()], leaf.key_der()).unwrap();
    c.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    c
}

/// Sends every request to one peer and keeps every logging summary.
struct ToPeer {
    peer: HttpPeer,
    logs: Arc<Mutex<Vec<Summary>>>,
}

impl ProxyHttp for ToPeer {
    type CTX = ();
    fn new_ctx(&self) {}
    async fn upstream_peer(&self, _s: &mut Session, _c: &mut ()) -> Result<HttpPeer> {
        Ok(self.peer.clone())
    }
    fn logging(&self, s: &mut Session, _e: Option<&proxy::error::Error>, _c: &mut ()) {
        self.logs.lock().unwrap().push(s.summary.clone());
    }
}

fn start_proxy(peer: HttpPeer) -> (Proxy, Arc<Mutex<Vec<Summary>>>) {
    let logs = Arc::new(Mutex::new(Vec::new()));
    (Proxy::start(ToPeer { peer, logs: logs.clone() }), logs)
}

fn tls_peer(addr: SocketAddr, sni: &str, ca_file: Option<PathBuf>) -> HttpPeer {
    let mut peer = HttpPeer::new_tls(&addr.to_string(), sni).unwrap();
    peer.options.tls.as_mut().unwrap().ca_file = ca_file;
    peer
}

async fn last_log(logs: &Arc<Mutex<Vec<Summary>>>, n: usize) -> Summary {
    assert!(eventually(|| logs.lock().unwrap().len() >= n).await, "logging did not run");
    logs.lock().unwrap()[n - 1].clone()
}

/// A PKI for one test: the origin CA (written to a file), the origin's certificate for
/// `origin.test`, and the directory.
struct Pki {
    leaf: Leaf,
    ca_file: PathBuf,
    dir: PathBuf,
}

impl Pki {
    fn new(tag: &str) -> Pki {
        let ca = Ca::new("Origin CA");
        let leaf = ca.server(&["origin.test"]);
        let dir = temp_dir(tag);
        let ca_file = write(&dir, "ca.pem", &ca.pem);
        Pki { leaf, ca_file, dir }
    }
}

impl Drop for Pki {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[tokio::test]
async fn verified_tls_upstream_is_reached_and_its_connection_pooled() {
    let pki = Pki::new("pooled");
    let origin = TlsOrigin::start(origin_config(&pki.leaf, &[ALPN_H2, ALPN_HTTP11], None), None).await;
    let (p, logs) = start_proxy(tls_peer(origin.addr, "origin.test", Some(pki.ca_file.clone())));

    // Several requests on one downstream connection, then on new downstream connections.
    let mut conn = Conn::connect(p.addr).await.unwrap();
    for i in 0..5 {
        let r = within(10, conn.request("GET", &format!("/r{i}"), &[], b"")).await;
        assert_eq!(r.status, 200);
        assert_eq!(r.text(), format!("sni=origin.test alpn=http/1.1 conn=1 path=/r{i}"));
    }
    for i in 5..8 {
        let r = within(10, support::client::get(p.addr, &format!("/r{i}"))).await;
        assert_eq!(r.status, 200);
        assert!(r.text().contains("conn=1 "), "{}", r.text());
    }
    assert_eq!(origin.accepts(), 1, "8 requests must share one pooled TLS connection");
    let s = last_log(&logs, 8).await;
    assert!(s.reused && s.error.is_none(), "{s:?}");
}

#[tokio::test]
async fn wrong_hostname_is_a_502_with_the_reason_in_the_log() {
    let pki = Pki::new("wrongname");
    let origin = TlsOrigin::start(origin_config(&pki.leaf, &[], None), None).await;
    let (p, logs) = start_proxy(tls_peer(origin.addr, "wrong.test", Some(pki.ca_file.clone())));
    let r = within(10, support::client::get(p.addr, "/")).await;
    assert_eq!(r.status, 502);
    let s = last_log(&logs, 1).await;
    let e = s.error.clone().unwrap();
    assert!(e.contains("TLS handshake") && e.contains("wrong.test"), "{e}");
    assert!(e.contains("not valid for name"), "{e}");
    assert_eq!(s.retries, 0, "a TLS failure is not retried");
    assert_eq!(origin.accepts(), 1);
    println!("logged error: {e}");

    // The same origin with hostname checking off (chain still verified) is reached.
    let mut peer = tls_peer(origin.addr, "wrong.test", Some(pki.ca_file.clone()));
    peer.options.tls.as_mut().unwrap().verify_hostname = false;
    let (p2, _) = start_proxy(peer);
    assert_eq!(within(10, support::client::get(p2.addr, "/")).await.status, 200);
}

#[tokio::test]
async fn untrusted_certificate_is_a_502_unless_verification_is_off() {
    let pki = Pki::new("untrusted");
    let origin = TlsOrigin::start(origin_config(&pki.leaf, &[], None), None).await;
    let other = Ca::new("Other CA");
    let other_file = write(&pki.dir, "other.pem", &other.pem);

    let (p, logs) = start_proxy(tls_peer(origin.addr, "origin.test", Some(other_file.clone())));
    assert_eq!(within(10, support::client::get(p.addr, "/")).await.status, 502);
    let e = last_log(&logs, 1).await.error.unwrap();
    assert!(e.contains("invalid peer certificate"), "{e}");

    // verify_hostname off does not skip the chain check.
    let mut peer = tls_peer(origin.addr, "origin.test", Some(other_file));
    peer.options.tls.as_mut().unwrap().verify_hostname = false;
    let (p2, _) = start_proxy(peer);
    assert_eq!(within(10, support::client::get(p2.addr, "/")).await.status, 502);

    // The system roots do not know the test CA either.
    let (p3, logs3) = start_proxy(tls_peer(origin.addr, "origin.test", None));
    assert_eq!(within(10, support::client::get(p3.addr, "/")).await.status, 502);
    let e = last_log(&logs3, 1).await.error.unwrap();
    assert!(e.contains("TLS"), "{e}");

    // verify off: anything goes.
    let mut peer = tls_peer(origin.addr, "origin.test", None);
    peer.options.tls.as_mut().unwrap().verify = false;
    let (p4, _) = start_proxy(peer);
    let r = within(10, support::client::get(p4.addr, "/")).await;
    assert_eq!(r.status, 200);
    assert!(r.text().starts_with("sni=origin.test "), "{}", r.text());
}

#[tokio::test]
async fn bad_peer_tls_settings_are_a_502_naming_the_file() {
    let pki = Pki::new("badfile");
    let origin = TlsOrigin::start(origin_config(&pki.leaf, &[], None), None).await;
    let missing = pki.dir.join("no-such-ca.pem");
    let (p, logs) = start_proxy(tls_peer(origin.addr, "origin.test", Some(missing)));
    assert_eq!(within(10, support::client::get(p.addr, "/")).await.status, 502);
    let e = last_log(&logs, 1).await.error.unwrap();
    assert!(e.contains("no-such-ca.pem"), "{e}");
    assert_eq!(origin.accepts(), 0, "no connection is opened with a broken TLS configuration");
    // The same check is available at configuration time.
    let mut t = PeerTls::new("origin.test");
    t.ca_file = Some(pki.dir.join("no-such-ca.pem"));
    assert!(proxy::tls::client::client_config(&t, Alpn::H1).is_err());
}

#[tokio::test]
async fn client_certificate_is_presented_to_an_mtls_origin() {
    let pki = Pki::new("mtls");
    let client_ca = Ca::new("Client CA");
    let client = client_ca.client("proxy-client");
    let cert = write(&pki.dir, "client.pem", &client.cert_pem);
    let key = write(&pki.dir, "client.key", &client.key_pem);
    let origin = TlsOrigin::start(origin_config(&pki.leaf, &[], Some(&client_ca)), None).await;

    let mut peer = tls_peer(origin.addr, "origin.test", Some(pki.ca_file.clone()));
    let t = peer.options.tls.as_mut().unwrap();
    t.client_cert = Some(cert);
    t.client_key = Some(key);
    let (p, _) = start_proxy(peer);
    assert_eq!(within(10, support::client::get(p.addr, "/")).await.status, 200);

    let (p2, logs2) = start_proxy(tls_peer(origin.addr, "origin.test", Some(pki.ca_file.clone())));
    assert_eq!(within(10, support::client::get(p2.addr, "/")).await.status, 502);
    assert!(last_log(&logs2, 1).await.error.is_some());
}

#[tokio::test]
async fn negotiated_alpn_is_recorded_on_the_upstream_stream() {
    let pki = Pki::new("alpn");
    let origin = TlsOrigin::start(origin_config(&pki.leaf, &[ALPN_H2, ALPN_HTTP11], None), None).await;
    for (alpn, expect) in [(Alpn::H1, ALPN_HTTP11), (Alpn::H2, ALPN_H2), (Alpn::H2ThenH1, ALPN_H2)] {
        let mut peer = tls_peer(origin.addr, "origin.test", Some(pki.ca_file.clone()));
        peer.options.alpn = alpn;
        let s = within(10, proxy::connector::connect(&peer)).await.unwrap();
        assert!(s.is_tls());
        assert_eq!(s.alpn(), Some(expect), "{alpn:?}");
        assert_eq!(s.is_h2(), expect == ALPN_H2);
        assert!(s.tls_version().is_some());
        assert_eq!(s.peer_certificates().unwrap()[0], pki.leaf.der);
    }
    // An origin that speaks only HTTP/1.1 still serves an H2ThenH1 peer over http/1.1.
    let h1_only = TlsOrigin::start(origin_config(&pki.leaf, &[ALPN_HTTP11], None), None).await;
    let mut peer = tls_peer(h1_only.addr, "origin.test", Some(pki.ca_file.clone()));
    peer.options.alpn = Alpn::H2ThenH1;
    let s = within(10, proxy::connector::connect(&peer)).await.unwrap();
    assert_eq!(s.alpn(), Some(ALPN_HTTP11));
}

#[tokio::test]
async fn stalled_upstream_handshake_times_out_as_504() {
    // Accepts TCP and never answers the ClientHello.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let held = tokio::spawn(async move {
        let mut keep = Vec::new();
        while let Ok((s, _)) = listener.accept().await {
            keep.push(s);
        }
    });
    let mut peer = tls_peer(addr, "origin.test", None);
    peer.options.tls.as_mut().unwrap().verify = false;
    peer.options.total_connection_timeout = Some(Duration::from_millis(300));
    let started = std::time::Instant::now();
    let e = proxy::connector::connect(&peer).await.unwrap_err();
    assert_eq!(e.kind, proxy::error::ErrorKind::ConnectTimeout);
    assert!(e.retry, "a timeout may be retried");
    assert!(e.to_string().contains("handshaking TLS"), "{e}");
    assert!(started.elapsed() < Duration::from_secs(2));

    let (p, _) = start_proxy(peer);
    assert_eq!(within(10, support::client::get(p.addr, "/")).await.status, 504);
    held.abort();
}

#[tokio::test]
async fn pooled_tls_connection_closed_by_the_origin_is_not_reused() {
    let pki = Pki::new("closenotify");
    let origin =
        TlsOrigin::start(origin_config(&pki.leaf, &[], None), Some(Duration::from_millis(100))).await;
    let (p, logs) = start_proxy(tls_peer(origin.addr, "origin.test", Some(pki.ca_file.clone())));
    let r = within(10, support::client::get(p.addr, "/a")).await;
    assert_eq!(r.status, 200);
    // The origin sends close_notify after 100 ms idle; the pool's probe must notice.
    tokio::time::sleep(Duration::from_millis(400)).await;
    let r = within(10, support::client::get(p.addr, "/b")).await;
    assert_eq!(r.status, 200);
    assert!(r.text().contains("conn=2 "), "{}", r.text());
    let s = last_log(&logs, 2).await;
    assert!(!s.reused && s.retries == 0 && s.error.is_none(), "{s:?}");
    assert_eq!(origin.accepts(), 2);
}

#[tokio::test]
async fn h2_then_h1_peer_multiplexes_over_tls_when_the_origin_picks_h2() {
    let pki = Pki::new("h2tls");
    let origin = TlsOrigin::start(origin_config(&pki.leaf, &[ALPN_H2, ALPN_HTTP11], None), None).await;
    let mut peer = tls_peer(origin.addr, "origin.test", Some(pki.ca_file.clone()));
    peer.options.alpn = Alpn::H2ThenH1;
    let (p, _) = start_proxy(peer);
    let addr = p.addr;
    let tasks: Vec<_> = (0..6)
        .map(|i| tokio::spawn(async move { support::client::get(addr, &format!("/c{i}")).await }))
        .collect();
    for (i, t) in tasks.into_iter().enumerate() {
        let r = within(10, t).await.unwrap();
        assert_eq!(r.status, 200);
        assert_eq!(r.text(), format!("h2 conn=1 path=/c{i} scheme=https"));
    }
    assert_eq!(origin.accepts(), 1, "6 concurrent requests on one TLS HTTP/2 connection");
}

#[tokio::test]
async fn h2_then_h1_peer_falls_back_to_pooled_http11_over_tls() {
    let pki = Pki::new("h1fallback");
    let origin = TlsOrigin::start(origin_config(&pki.leaf, &[ALPN_HTTP11], None), None).await;
    let mut peer = tls_peer(origin.addr, "origin.test", Some(pki.ca_file.clone()));
    peer.options.alpn = Alpn::H2ThenH1;
    let (p, logs) = start_proxy(peer);
    for i in 0..4 {
        let r = within(10, support::client::get(p.addr, &format!("/f{i}"))).await;
        assert_eq!(r.status, 200);
        assert_eq!(r.text(), format!("sni=origin.test alpn=http/1.1 conn=1 path=/f{i}"));
    }
    assert_eq!(origin.accepts(), 1);
    assert!(last_log(&logs, 4).await.reused);
}
