//! Downstream TLS: TLS 1.2 / 1.3 handshakes (tokio-rustls and curl), ALPN, SNI certificate
//! selection, mTLS required / optional, configuration errors at add_tls time, handshake timeout.

mod support;
mod tls_pki;

use std::net::SocketAddr;
use std::time::Duration;

use proxy::error::Result;
use proxy::protocol::stream::SocketAddr as Addr;
use proxy::proxy::{HttpProxy, ProxyHttp, Session};
use proxy::service::ListeningService;
use proxy::tls::{TlsSettings, TlsVersion, ALPN_H2, ALPN_HTTP11};
use proxy::upstream::HttpPeer;
use support::client::Conn;
use support::harness::Proxy;
use support::origin::Origin;
use support::within;
use tls_pki::{client_config, curl, temp_dir, tls_connect, write, Ca, Trust};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

struct ToOrigin(SocketAddr);

impl ProxyHttp for ToOrigin {
    type CTX = ();
    fn new_ctx(&self) {}
    async fn upstream_peer(&self, _s: &mut Session, _c: &mut ()) -> Result<HttpPeer> {
        Ok(HttpPeer::new(&self.0.to_string()).unwrap())
    }
}

/// A proxy in front of `origin` with one TLS endpoint configured by `settings`.
fn start_tls(origin: &Origin, settings: &TlsSettings) -> (Proxy, SocketAddr) {
    let mut tls_addr = None;
    let p = Proxy::start_with(HttpProxy::new(ToOrigin(origin.addr)), |svc| {
        tls_addr = Some(svc.add_tls("127.0.0.1:0", settings).expect("add_tls"));
    });
    match tls_addr {
        Some(Addr::Inet(a)) => (p, a),
        other => panic!("unexpected {other:?}"),
    }
}

async fn get_over<S>(stream: S, path: &str) -> support::client::Response
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let mut conn = Conn::from_stream(Box::new(stream));
    conn.request("GET", path, &[], b"").await
}

#[tokio::test]
async fn tls13_and_tls12_handshakes_serve_requests() {
    let ca = Ca::new("Test CA");
    let leaf = ca.server(&["proxy.test"]);
    let origin = Origin::start().await;
    let settings = TlsSettings::from_pem(leaf.cert_pem.as_bytes(), leaf.key_pem.as_bytes()).unwrap();
    let (_p, addr) = start_tls(&origin, &settings);

    for (version, expect) in [
        (&rustls::version::TLS13, rustls::ProtocolVersion::TLSv1_3),
        (&rustls::version::TLS12, rustls::ProtocolVersion::TLSv1_2),
    ] {
        let cfg = client_config(Trust::Ca(&ca), &[version], &[], None);
        let tls = within(10, tls_connect(addr, "proxy.test", cfg)).await.expect("handshake");
        assert_eq!(tls.get_ref().1.protocol_version(), Some(expect));
        let mut conn = Conn::from_stream(Box::new(tls));
        // Keep-alive over TLS: two requests on one session.
        for _ in 0..2 {
            let r = within(10, conn.request("GET", "/echo", &[], b"")).await;
            assert_eq!(r.status, 200);
            assert!(r.text().starts_with("GET /echo HTTP/1.1\n"), "{}", r.text());
        }
    }
    assert_eq!(origin.requests(), 4);
}

#[tokio::test]
async fn alpn_offers_h2_and_http11_by_default_and_is_configurable() {
    let ca = Ca::new("Test CA");
    let leaf = ca.server(&["proxy.test"]);
    let origin = Origin::start().await;

    // Default: h2 for a client that prefers it, http/1.1 for one that only speaks that.
    let settings = TlsSettings::from_pem(leaf.cert_pem.as_bytes(), leaf.key_pem.as_bytes()).unwrap();
    let (_p, addr) = start_tls(&origin, &settings);
    let cfg = client_config(Trust::Ca(&ca), &[], &[ALPN_H2, ALPN_HTTP11], None);
    let tls = tls_connect(addr, "proxy.test", cfg).await.unwrap();
    assert_eq!(tls.get_ref().1.alpn_protocol(), Some(ALPN_H2));
    let cfg = client_config(Trust::Ca(&ca), &[], &[ALPN_HTTP11], None);
    let tls = tls_connect(addr, "proxy.test", cfg).await.unwrap();
    assert_eq!(tls.get_ref().1.alpn_protocol(), Some(ALPN_HTTP11));
    assert_eq!(get_over(tls, "/echo").await.status, 200);

    // curl --http2 over TLS is served HTTP/2 (ALPN h2, then the app sees the preface).
    let dir = temp_dir("h2");
    let ca_path = write(&dir, "ca.pem", &ca.pem);
    let resolve = format!("proxy.test:{}:127.0.0.1", addr.port());
    let url = format!("https://proxy.test:{}/echo", addr.port());
    let (ok, out, err) = curl(&[
        "--http2",
        "-w",
        "\nversion=%{http_version}",
        "--cacert",
        ca_path.to_str().unwrap(),
        "--resolve",
        &resolve,
        &url,
    ])
    .await;
    assert!(ok, "{err}");
    assert!(out.ends_with("version=2"), "{out}");
    assert!(out.starts_with("GET /echo HTTP/1.1\n"), "{out}");
    let _ = std::fs::remove_dir_all(dir);

    // An endpoint kept on HTTP/1.1 refuses a client that offers only h2 (no_application_protocol).
    let mut h1_only = settings.clone();
    h1_only.set_alpn(&[ALPN_HTTP11]);
    let (_p2, addr2) = start_tls(&origin, &h1_only);
    let cfg = client_config(Trust::Ca(&ca), &[], &[ALPN_H2, ALPN_HTTP11], None);
    let tls = tls_connect(addr2, "proxy.test", cfg).await.unwrap();
    assert_eq!(tls.get_ref().1.alpn_protocol(), Some(ALPN_HTTP11));
    let cfg = client_config(Trust::Ca(&ca), &[], &[ALPN_H2], None);
    assert!(tls_connect(addr2, "proxy.test", cfg).await.is_err());
}

#[tokio::test]
async fn versions_can_be_restricted() {
    let ca = Ca::new("Test CA");
    let leaf = ca.server(&["proxy.test"]);
    let origin = Origin::start().await;
    let mut settings = TlsSettings::from_pem(leaf.cert_pem.as_bytes(), leaf.key_pem.as_bytes()).unwrap();
    settings.set_versions(&[TlsVersion::Tls13]);
    let (_p, addr) = start_tls(&origin, &settings);
    let cfg12 = client_config(Trust::Ca(&ca), &[&rustls::version::TLS12], &[], None);
    assert!(tls_connect(addr, "proxy.test", cfg12).await.is_err());
    let cfg13 = client_config(Trust::Ca(&ca), &[&rustls::version::TLS13], &[], None);
    assert!(tls_connect(addr, "proxy.test", cfg13).await.is_ok());
}

#[tokio::test]
async fn curl_with_cacert_over_tls12_and_tls13() {
    let ca = Ca::new("Test CA");
    let leaf = ca.server(&["proxy.test"]);
    let dir = temp_dir("curl");
    let ca_path = write(&dir, "ca.pem", &ca.pem);
    let cert = write(&dir, "cert.pem", &leaf.cert_pem);
    let key = write(&dir, "key.pem", &leaf.key_pem);
    let origin = Origin::start().await;
    // From files this time.
    let settings = TlsSettings::from_pem_files(&cert, &key).unwrap();
    let (_p, addr) = start_tls(&origin, &settings);
    let url = format!("https://proxy.test:{}/echo", addr.port());
    let resolve = format!("proxy.test:{}:127.0.0.1", addr.port());
    let versions: [(&[&str], &str); 2] =
        [(&["--tlsv1.3"], "TLSv1.3"), (&["--tlsv1.2", "--tls-max", "1.2"], "TLSv1.2")];
    for (flags, expect) in versions {
        let mut args = vec!["-v", "--cacert", ca_path.to_str().unwrap(), "--resolve", &resolve];
        args.extend_from_slice(flags);
        args.push(&url);
        let (ok, out, err) = curl(&args).await;
        assert!(ok, "curl failed: {err}");
        assert!(out.starts_with("GET /echo HTTP/1.1\n"), "{out}");
        assert!(err.contains(&format!("SSL connection using {expect}")), "{err}");
        assert!(err.contains("ALPN: server accepted h2"), "{err}");
    }
    // The wrong CA makes curl refuse the certificate.
    let other = Ca::new("Other CA");
    let other_path = write(&dir, "other.pem", &other.pem);
    let (ok, _, _) = curl(&["--cacert", other_path.to_str().unwrap(), "--resolve", &resolve, &url]).await;
    assert!(!ok);
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn sni_selects_the_certificate() {
    let ca = Ca::new("Test CA");
    let default = ca.server(&["default.test"]);
    let a = ca.server(&["a.test"]);
    let wild = ca.server(&["*.b.test"]);
    let origin = Origin::start().await;
    let mut settings =
        TlsSettings::from_pem(default.cert_pem.as_bytes(), default.key_pem.as_bytes()).unwrap();
    settings.add_sni_cert_pem(&["a.test"], a.cert_pem.as_bytes(), a.key_pem.as_bytes()).unwrap();
    settings.add_sni_cert_pem(&["*.b.test"], wild.cert_pem.as_bytes(), wild.key_pem.as_bytes()).unwrap();
    let (_p, addr) = start_tls(&origin, &settings);

    // Which certificate the server presents, without verifying it.
    let presented = |sni: &'static str| async move {
        let cfg = client_config(Trust::Any, &[], &[], None);
        let tls = tls_connect(addr, sni, cfg).await.expect("handshake");
        tls.get_ref().1.peer_certificates().unwrap()[0].clone()
    };
    assert_eq!(presented("a.test").await, a.der);
    assert_eq!(presented("A.TEST").await, a.der, "SNI is case-insensitive");
    assert_eq!(presented("x.b.test").await, wild.der);
    assert_eq!(presented("unknown.test").await, default.der);
    assert_eq!(presented("127.0.0.1").await, default.der, "no SNI (IP name) gets the default");

    // Full verification from the client side checks the SAN against the name asked for.
    for name in ["a.test", "x.b.test", "default.test"] {
        let cfg = client_config(Trust::Ca(&ca), &[], &[], None);
        let tls = tls_connect(addr, name, cfg).await.unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(get_over(tls, "/echo").await.status, 200);
    }

    // curl: the right certificate for each name (it verifies the SAN) and its subject in -v.
    let dir = temp_dir("sni");
    let ca_path = write(&dir, "ca.pem", &ca.pem);
    for name in ["a.test", "x.b.test"] {
        let resolve = format!("{name}:{}:127.0.0.1", addr.port());
        let url = format!("https://{name}:{}/echo", addr.port());
        let (ok, _, err) =
            curl(&["-v", "--cacert", ca_path.to_str().unwrap(), "--resolve", &resolve, &url]).await;
        assert!(ok, "{name}: {err}");
        let cn = if name == "a.test" { "CN=a.test" } else { "CN=*.b.test" };
        assert!(err.contains(cn), "{name}: {err}");
    }
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn mtls_required_accepts_good_client_cert_and_refuses_others() {
    let ca = Ca::new("Server CA");
    let leaf = ca.server(&["proxy.test"]);
    let client_ca = Ca::new("Client CA");
    let good = client_ca.client("client-1");
    let rogue_ca = Ca::new("Rogue CA");
    let rogue = rogue_ca.client("client-1");
    let origin = Origin::start().await;
    let mut settings = TlsSettings::from_pem(leaf.cert_pem.as_bytes(), leaf.key_pem.as_bytes()).unwrap();
    settings.set_client_auth_pem(client_ca.pem.as_bytes(), true).unwrap();
    let (_p, addr) = start_tls(&origin, &settings);

    let cfg = client_config(Trust::Ca(&ca), &[], &[], Some(&good));
    let tls = tls_connect(addr, "proxy.test", cfg).await.expect("good client cert");
    assert_eq!(within(10, get_over(tls, "/echo")).await.status, 200);

    for (what, cert) in [("no client cert", None), ("cert from another CA", Some(&rogue))] {
        for version in [&rustls::version::TLS13, &rustls::version::TLS12] {
            let cfg = client_config(Trust::Ca(&ca), &[version], &[], cert);
            assert!(refused(addr, cfg).await, "{what} over {version:?} was let in");
        }
    }

    // curl with --cert/--key.
    let dir = temp_dir("mtls");
    let ca_path = write(&dir, "ca.pem", &ca.pem);
    let cert = write(&dir, "client.pem", &good.cert_pem);
    let key = write(&dir, "client.key", &good.key_pem);
    let resolve = format!("proxy.test:{}:127.0.0.1", addr.port());
    let url = format!("https://proxy.test:{}/echo", addr.port());
    let base = ["--cacert", ca_path.to_str().unwrap(), "--resolve", &resolve];
    let (ok, out, err) = curl(
        &[&base[..], &["--cert", cert.to_str().unwrap(), "--key", key.to_str().unwrap(), &url]].concat(),
    )
    .await;
    assert!(ok && out.starts_with("GET /echo"), "{err}");
    let (ok, _, _) = curl(&[&base[..], &[url.as_str()]].concat()).await;
    assert!(!ok, "curl without a client certificate was let in");
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn mtls_optional_lets_anonymous_clients_in_but_not_bad_certs() {
    let ca = Ca::new("Server CA");
    let leaf = ca.server(&["proxy.test"]);
    let client_ca = Ca::new("Client CA");
    let good = client_ca.client("client-1");
    let rogue = Ca::new("Rogue CA").client("client-1");
    let origin = Origin::start().await;
    let mut settings = TlsSettings::from_pem(leaf.cert_pem.as_bytes(), leaf.key_pem.as_bytes()).unwrap();
    settings.set_client_auth_pem(client_ca.pem.as_bytes(), false).unwrap();
    let (_p, addr) = start_tls(&origin, &settings);
    for cert in [None, Some(&good)] {
        let cfg = client_config(Trust::Ca(&ca), &[], &[], cert);
        let tls = tls_connect(addr, "proxy.test", cfg).await.unwrap();
        assert_eq!(within(10, get_over(tls, "/echo")).await.status, 200);
    }
    let cfg = client_config(Trust::Ca(&ca), &[], &[], Some(&rogue));
    assert!(refused(addr, cfg).await);
}

/// Whether the server refuses this client: the handshake fails, or (TLS 1.3, where the client
/// finishes first) the first request gets no response.
async fn refused(addr: SocketAddr, cfg: std::sync::Arc<rustls::ClientConfig>) -> bool {
    let Ok(mut tls) = within(10, tls_connect(addr, "proxy.test", cfg)).await else {
        return true;
    };
    let _ = tls.write_all(b"GET /echo HTTP/1.1\r\nHost: x\r\n\r\n").await;
    let mut buf = [0u8; 64];
    !matches!(within(10, tls.read(&mut buf)).await, Ok(n) if n > 0)
}

#[test]
fn bad_configuration_fails_at_add_tls_time() {
    let ca = Ca::new("Test CA");
    let leaf = ca.server(&["proxy.test"]);
    let other = ca.server(&["other.test"]);
    let dir = temp_dir("badconf");
    let cert = write(&dir, "cert.pem", &leaf.cert_pem);
    let key = write(&dir, "key.pem", &leaf.key_pem);
    let garbage =
        write(&dir, "garbage.pem", "-----BEGIN PRIVATE KEY-----\nnot base64 !!\n-----END PRIVATE KEY-----\n");
    let empty = write(&dir, "empty.pem", "nothing here\n");

    let err = |r: std::io::Result<TlsSettings>| r.expect_err("expected an error").to_string();
    // Missing files name the file.
    let e = err(TlsSettings::from_pem_files(dir.join("missing.pem"), &key));
    assert!(e.contains("missing.pem"), "{e}");
    let e = err(TlsSettings::from_pem_files(&cert, dir.join("missing.key")));
    assert!(e.contains("missing.key"), "{e}");
    // No certificate / no key / malformed key.
    let e = err(TlsSettings::from_pem_files(&empty, &key));
    assert!(e.contains("no CERTIFICATE"), "{e}");
    let e = err(TlsSettings::from_pem_files(&cert, &empty));
    assert!(e.contains("no PRIVATE KEY"), "{e}");
    let e = err(TlsSettings::from_pem_files(&cert, &garbage));
    assert!(e.contains("key"), "{e}");
    // A key that belongs to another certificate.
    let e = err(TlsSettings::from_pem(leaf.cert_pem.as_bytes(), other.key_pem.as_bytes()));
    assert!(e.contains("do not form a pair"), "{e}");
    // An SNI name the certificate does not cover.
    let mut s = TlsSettings::from_pem(leaf.cert_pem.as_bytes(), leaf.key_pem.as_bytes()).unwrap();
    let e = s.add_sni_cert_pem(&["a.test"], other.cert_pem.as_bytes(), other.key_pem.as_bytes()).unwrap_err();
    assert!(e.to_string().contains("does not cover"), "{e}");
    // A client CA bundle without certificates.
    assert!(s.set_client_auth_pem(b"", true).is_err());
    assert!(s.set_client_auth_file(dir.join("missing-ca.pem"), true).is_err());

    // add_tls itself refuses settings that cannot work, before anything listens.
    let mut svc = ListeningService::new("t", HttpProxy::new(ToOrigin("127.0.0.1:1".parse().unwrap())));
    let e = svc.add_tls("127.0.0.1:0", &TlsSettings::new()).unwrap_err();
    assert!(e.to_string().contains("no certificate"), "{e}");
    let mut no_versions = s.clone();
    no_versions.set_versions(&[]);
    assert!(svc.add_tls("127.0.0.1:0", &no_versions).is_err());
    assert!(svc.addresses().is_empty());
    assert!(svc.add_tls("127.0.0.1:0", &s).is_ok());
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn silent_client_is_dropped_after_the_handshake_timeout_without_blocking_others() {
    let ca = Ca::new("Test CA");
    let leaf = ca.server(&["proxy.test"]);
    let origin = Origin::start().await;
    let mut settings = TlsSettings::from_pem(leaf.cert_pem.as_bytes(), leaf.key_pem.as_bytes()).unwrap();
    settings.set_handshake_timeout(Duration::from_millis(300));
    let (_p, addr) = start_tls(&origin, &settings);

    // Connects and sends nothing.
    let started = std::time::Instant::now();
    let mut silent = tokio::net::TcpStream::connect(addr).await.unwrap();
    // Meanwhile another client is served at once (the handshake is not in the accept loop).
    let cfg = client_config(Trust::Ca(&ca), &[], &[], None);
    let tls = within(2, tls_connect(addr, "proxy.test", cfg)).await.unwrap();
    assert_eq!(within(2, get_over(tls, "/echo")).await.status, 200);
    // The silent one is closed by the server once the timeout has passed.
    let mut buf = [0u8; 16];
    let n = within(5, silent.read(&mut buf)).await.unwrap_or(0);
    assert_eq!(n, 0);
    let waited = started.elapsed();
    assert!(waited >= Duration::from_millis(250) && waited < Duration::from_secs(3), "{waited:?}");
}

#[tokio::test]
async fn tls_on_a_unix_socket_endpoint() {
    let ca = Ca::new("Test CA");
    let leaf = ca.server(&["proxy.test"]);
    let origin = Origin::start().await;
    let settings = TlsSettings::from_pem(leaf.cert_pem.as_bytes(), leaf.key_pem.as_bytes()).unwrap();
    let dir = temp_dir("uds");
    let path = dir.join("proxy.sock");
    let _p = Proxy::start_with(HttpProxy::new(ToOrigin(origin.addr)), |svc| {
        svc.add_tls_uds(&path, &settings).expect("add_tls_uds");
    });
    let unix = tokio::net::UnixStream::connect(&path).await.unwrap();
    let cfg = client_config(Trust::Ca(&ca), &[], &[], None);
    let name = rustls::pki_types::ServerName::try_from("proxy.test").unwrap();
    let tls = within(10, tokio_rustls::TlsConnector::from(cfg).connect(name, unix)).await.unwrap();
    assert_eq!(within(10, get_over(tls, "/echo")).await.status, 200);
    let _ = std::fs::remove_dir_all(dir);
}
