//! TLS at runtime: facts of the client's connection in hooks (SNI, ALPN, version, cipher, the
//! mTLS client certificate) over HTTP/1.1 and HTTP/2, routing by SNI, certificates replaced under
//! load without a failed handshake, and the certificate callback (at once and later).

mod support;
mod tls_pki;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use proxy::error::Result;
use proxy::protocol::http::ResponseHead;
use proxy::protocol::stream::SocketAddr as Addr;
use proxy::proxy::{HttpProxy, ProxyHttp, Session};
use proxy::tls::{CertCallback, CertChoice, Certificates, Hello, TlsCert, TlsSettings, ALPN_H2, ALPN_HTTP11};
use proxy::upstream::HttpPeer;
use support::client::Conn;
use support::harness::Proxy;
use support::origin::Origin;
use support::within;
use tls_pki::{client_config, tls_connect, Ca, Leaf, Trust};

/// Answers every request with the TLS facts its hook sees, one `name=value` per line.
struct Facts;

fn facts_text(s: &Session) -> String {
    let Some(t) = s.tls() else { return "plaintext".into() };
    let cert = t.client_cert();
    let mut lines = vec![
        format!("sni={}", t.sni().unwrap_or("-")),
        format!("alpn={}", String::from_utf8_lossy(t.alpn().unwrap_or(b"-"))),
        format!("version={}", t.version_name().unwrap_or("-")),
        format!("cipher={}", t.cipher().unwrap_or("-")),
        format!("subject={}", cert.map_or("-", |c| c.subject.as_str())),
        format!("issuer={}", cert.map_or("-", |c| c.issuer.as_str())),
        format!("chain={}", t.client_chain().len()),
    ];
    lines.extend(cert.iter().flat_map(|c| c.sans.iter().map(|s| format!("san={s}"))));
    lines.join("\n")
}

impl ProxyHttp for Facts {
    type CTX = ();
    fn new_ctx(&self) {}
    async fn request_filter(&self, s: &mut Session, _: &mut ()) -> Result<bool> {
        let body = facts_text(s);
        s.respond(ResponseHead::new(http::StatusCode::OK), Bytes::from(body));
        Ok(true)
    }
    async fn upstream_peer(&self, _: &mut Session, _: &mut ()) -> Result<HttpPeer> {
        unreachable!("answered in request_filter")
    }
}

fn inet(a: Addr) -> SocketAddr {
    match a {
        Addr::Inet(a) => a,
        other => panic!("unexpected {other:?}"),
    }
}

/// Starts `app` with one TLS endpoint; returns the proxy, the endpoint and its certificate handle.
fn start_tls<H: ProxyHttp>(app: H, settings: &TlsSettings) -> (Proxy, SocketAddr, Certificates) {
    let mut out = None;
    let p = Proxy::start_with(HttpProxy::new(app), |svc| {
        let a = inet(svc.add_tls("127.0.0.1:0", settings).expect("add_tls"));
        let certs = svc.tls_certificates(None);
        assert_eq!(certs.len(), 1);
        out = Some((a, certs[0].clone()));
    });
    let (a, c) = out.unwrap();
    (p, a, c)
}

fn settings_of(leaf: &Leaf) -> TlsSettings {
    TlsSettings::from_pem(leaf.cert_pem.as_bytes(), leaf.key_pem.as_bytes()).unwrap()
}

#[tokio::test]
async fn hooks_see_sni_alpn_version_cipher_and_the_client_certificate_over_h1_and_h2() {
    let ca = Ca::new("Server CA");
    let client_ca = Ca::new("Client CA");
    let alice = client_ca.client("alice.test");
    let mut settings = settings_of(&ca.server(&["proxy.test"]));
    settings.set_client_auth_pem(client_ca.pem.as_bytes(), false).unwrap();
    let (_p, addr, _) = start_tls(Facts, &settings);

    // HTTP/1.1 with a client certificate: two requests on the connection see the same facts.
    let cfg = client_config(Trust::Ca(&ca), &[&rustls::version::TLS13], &[ALPN_HTTP11], Some(&alice));
    let tls = within(10, tls_connect(addr, "proxy.test", cfg)).await.unwrap();
    let mut conn = Conn::from_stream(Box::new(tls));
    for _ in 0..2 {
        let text = within(10, conn.request("GET", "/", &[], b"")).await.text();
        let expect = "sni=proxy.test\nalpn=http/1.1\nversion=TLSv1.3\ncipher=TLS13_";
        assert!(text.starts_with(expect), "{text}");
        assert!(text.contains("\nsubject=CN=alice.test\nissuer=CN=Client CA\nchain=1\n"), "{text}");
        assert!(text.ends_with("\nsan=DNS:alice.test"), "{text}");
    }

    // HTTP/2 over TLS 1.2 without a client certificate.
    let cfg = client_config(Trust::Ca(&ca), &[&rustls::version::TLS12], &[ALPN_H2], None);
    let tls = within(10, tls_connect(addr, "proxy.test", cfg)).await.unwrap();
    let (mut h2, conn) = h2::client::handshake(tls).await.unwrap();
    tokio::spawn(conn);
    for _ in 0..2 {
        let req = http::Request::get("https://proxy.test/").body(()).unwrap();
        let (resp, _) = h2.send_request(req, true).unwrap();
        let mut body = within(10, resp).await.unwrap().into_body();
        let mut text = Vec::new();
        while let Some(chunk) = body.data().await {
            text.extend_from_slice(&chunk.unwrap());
        }
        let text = String::from_utf8(text).unwrap();
        assert!(text.starts_with("sni=proxy.test\nalpn=h2\nversion=TLSv1.2\ncipher=TLS_ECDHE_"), "{text}");
        assert!(text.ends_with("\nsubject=-\nissuer=-\nchain=0"), "{text}");
    }

    // No SNI (an IP address name).
    let cfg = client_config(Trust::Any, &[], &[ALPN_HTTP11], None);
    let tls = within(10, tls_connect(addr, "127.0.0.1", cfg)).await.unwrap();
    let text = within(10, Conn::from_stream(Box::new(tls)).request("GET", "/", &[], b"")).await.text();
    assert!(text.starts_with("sni=-\n"), "{text}");
}

/// Sends each request to the origin named by its SNI.
struct BySni(Vec<(&'static str, SocketAddr)>);

impl ProxyHttp for BySni {
    type CTX = ();
    fn new_ctx(&self) {}
    async fn upstream_peer(&self, s: &mut Session, _: &mut ()) -> Result<HttpPeer> {
        let sni = s.tls().and_then(|t| t.sni()).unwrap_or_default().to_owned();
        let to = self.0.iter().find(|(n, _)| *n == sni).map_or(self.0[0].1, |(_, a)| *a);
        Ok(HttpPeer::new(&to.to_string()).unwrap())
    }
}

#[tokio::test]
async fn a_hook_routes_by_sni() {
    let ca = Ca::new("Server CA");
    let (a, b) = (Origin::start().await, Origin::start().await);
    let settings = settings_of(&ca.server(&["a.test", "b.test"]));
    let (_p, addr, _) = start_tls(BySni(vec![("a.test", a.addr), ("b.test", b.addr)]), &settings);
    for (name, n) in [("a.test", 3), ("b.test", 2)] {
        for _ in 0..n {
            let cfg = client_config(Trust::Ca(&ca), &[], &[ALPN_HTTP11], None);
            let tls = within(10, tls_connect(addr, name, cfg)).await.unwrap();
            let r = within(10, Conn::from_stream(Box::new(tls)).request("GET", "/echo", &[], b"")).await;
            assert_eq!(r.status, 200);
        }
    }
    assert_eq!((a.requests(), b.requests()), (3, 2));
}

/// The end-entity certificate the server presents to a client asking for `sni`.
async fn presented(
    addr: SocketAddr,
    sni: &str,
) -> std::io::Result<rustls_pki_types::CertificateDer<'static>> {
    let cfg = client_config(Trust::Any, &[], &[ALPN_HTTP11], None);
    let tls = tls_connect(addr, sni, cfg).await?;
    Ok(tls.get_ref().1.peer_certificates().unwrap()[0].clone())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn certificates_rotate_under_load_without_a_failed_handshake() {
    let ca = Ca::new("Server CA");
    let origin = Origin::start().await;
    let gens: Vec<(Leaf, Leaf)> =
        (0..4).map(|_| (ca.server(&["default.test"]), ca.server(&["api.test"]))).collect();
    let set = |g: &(Leaf, Leaf)| {
        let mut s = settings_of(&g.0);
        s.add_sni_cert_pem(&["api.test"], g.1.cert_pem.as_bytes(), g.1.key_pem.as_bytes()).unwrap();
        s
    };
    let (_p, addr, certs) = start_tls(BySni(vec![("", origin.addr)]), &set(&gens[0]));

    // Clients handshaking in a loop (verifying the chain and the name) for the whole test.
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let (done, failed) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let mut load = Vec::new();
    for name in ["api.test", "default.test"] {
        let (stop, done, failed, cfg) = (
            stop.clone(),
            done.clone(),
            failed.clone(),
            client_config(Trust::Ca(&ca), &[], &[ALPN_HTTP11], None),
        );
        load.push(tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                match within(10, tls_connect(addr, name, cfg.clone())).await {
                    Ok(tls) => {
                        let r = Conn::from_stream(Box::new(tls)).request("GET", "/echo", &[], b"").await;
                        assert_eq!(r.status, 200);
                        done.fetch_add(1, Ordering::Relaxed);
                    }
                    Err(e) => {
                        eprintln!("{name}: {e}");
                        failed.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
        }));
    }
    // Eight replacements, ending on the first set again.
    for g in gens.iter().cycle().skip(1).take(8) {
        // Each swap lands between handshakes under way; wait for the loops to run a while on it.
        let before = done.load(Ordering::Relaxed);
        certs.replace(&set(g)).unwrap();
        assert_eq!(presented(addr, "api.test").await.unwrap(), g.1.der, "the new SNI certificate");
        assert_eq!(presented(addr, "other.test").await.unwrap(), g.0.der, "the new default");
        assert!(support::eventually(|| done.load(Ordering::Relaxed) >= before + 50).await);
    }
    stop.store(true, Ordering::Relaxed);
    for t in load {
        t.await.unwrap();
    }
    let (done, failed) = (done.load(Ordering::Relaxed), failed.load(Ordering::Relaxed));
    eprintln!("{done} handshakes + requests during 8 replacements, {failed} failed");
    assert_eq!(failed, 0);
    assert!(done >= 400);
    // A settings object without a certificate replaces nothing.
    assert!(certs.replace(&TlsSettings::new()).is_err());
    assert_eq!(presented(addr, "api.test").await.unwrap(), gens[0].1.der);
}

#[tokio::test]
async fn a_service_replaces_the_certificates_of_all_its_tls_endpoints() {
    let ca = Ca::new("Server CA");
    let origin = Origin::start().await;
    let (old, new) = (ca.server(&["old.test"]), ca.server(&["new.test"]));
    let mut addrs = Vec::new();
    let _p = Proxy::start_with(HttpProxy::new(BySni(vec![("", origin.addr)])), |svc| {
        for _ in 0..2 {
            addrs.push(inet(svc.add_tls("127.0.0.1:0", &settings_of(&old)).unwrap()));
        }
        assert!(svc.replace_certificates(&TlsSettings::new()).is_err(), "no certificate: nothing changes");
        assert_eq!(svc.replace_certificates(&settings_of(&new)).unwrap(), 2);
        let (all, one) = (svc.tls_certificates(None), svc.tls_certificates(Some(&Addr::Inet(addrs[1]))));
        assert_eq!((all.len(), one.len()), (2, 1));
        assert!(one[0].same_as(&all[1]) && !one[0].same_as(&all[0]));
    });
    for a in addrs {
        assert_eq!(presented(a, "new.test").await.unwrap(), new.der);
    }
}

/// Serves `special` to `special.test` at once, `later` to `later.test` after a task decides,
/// refuses `refuse.test`, and leaves the rest to the endpoint.
struct Chooser {
    special: TlsCert,
    later: TlsCert,
    seen: std::sync::Mutex<Vec<Hello>>,
}

impl CertCallback for Chooser {
    fn choose(&self, hello: Hello) -> CertChoice {
        self.seen.lock().unwrap().push(hello.clone());
        match hello.server_name.as_deref() {
            Some("special.test") => CertChoice::Use(self.special.clone()),
            Some("refuse.test") => CertChoice::Refuse,
            Some("later.test") => {
                let (tx, rx) = tokio::sync::oneshot::channel();
                let cert = self.later.clone();
                tokio::spawn(async move { tx.send(CertChoice::Use(cert)).ok() });
                CertChoice::Later(Box::pin(async move { rx.await.unwrap_or(CertChoice::Refuse) }))
            }
            _ => CertChoice::Endpoint,
        }
    }
}

#[tokio::test]
async fn the_certificate_callback_chooses_at_once_or_later() {
    let ca = Ca::new("Server CA");
    let origin = Origin::start().await;
    let (default, special, later) =
        (ca.server(&["default.test"]), ca.server(&["special.test"]), ca.server(&["later.test"]));
    let chooser = Arc::new(Chooser {
        special: TlsCert::from_pem(special.cert_pem.as_bytes(), special.key_pem.as_bytes()).unwrap(),
        later: TlsCert::from_pem(later.cert_pem.as_bytes(), later.key_pem.as_bytes()).unwrap(),
        seen: Default::default(),
    });
    let mut settings = settings_of(&default);
    settings.set_cert_callback(chooser.clone());
    let (_p, addr, _) = start_tls(BySni(vec![("", origin.addr)]), &settings);

    for (name, want) in [("special.test", &special), ("later.test", &later), ("default.test", &default)] {
        let cfg = client_config(Trust::Ca(&ca), &[], &[ALPN_H2, ALPN_HTTP11], None);
        let tls = within(10, tls_connect(addr, name, cfg)).await.unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(tls.get_ref().1.peer_certificates().unwrap()[0], want.der, "{name}");
        assert_eq!(tls.get_ref().1.alpn_protocol(), Some(ALPN_H2), "the endpoint's ALPN still applies");
    }
    assert!(within(10, presented(addr, "refuse.test")).await.is_err());
    let seen = chooser.seen.lock().unwrap();
    assert_eq!(seen.len(), 4);
    assert_eq!(seen[0].alpn, [ALPN_H2.to_vec(), ALPN_HTTP11.to_vec()]);
    assert!(seen[0].signature_schemes.contains(&0x0403), "ecdsa_secp256r1_sha256 offered");
}
