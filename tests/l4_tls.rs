//! TLS on L4 services, over loopback: an endpoint that terminates TLS hands the hook the SNI and
//! ALPN of the handshake; a plaintext endpoint peeking at the ClientHello routes TLS by SNI
//! without terminating it (the offered ALPN list too); a peer reached over TLS; an unknown name
//! is refused by the hook and closed.

mod support;
mod tls_pki;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use proxy::error::{Error, Result};
use proxy::l4::{L4Hooks, L4Proxy, L4Session};
use proxy::protocol::stream::SocketAddr as Addr;
use proxy::server::{Server, ServerConf, ServerHandle};
use proxy::service::ListeningService;
use proxy::tls::TlsSettings;
use proxy::upstream::HttpPeer;
use support::within;
use tls_pki::{client_config, temp_dir, tls_connect, write, Ca, Trust};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// (SNI, ALPN list, TLS version of a terminated handshake) each hook call saw.
type Seen = Arc<Mutex<Vec<(Option<String>, Vec<String>, Option<&'static str>)>>>;

/// Routes by SNI: `routes` maps a name to a peer; anything else is refused.
struct BySni {
    routes: Vec<(&'static str, HttpPeer)>,
    seen: Seen,
}

impl L4Hooks for BySni {
    async fn upstream_peer(&self, s: &mut L4Session) -> Result<HttpPeer> {
        let alpn = s.alpn().iter().map(|p| String::from_utf8_lossy(p).into_owned()).collect();
        let version = s.tls_facts().and_then(|f| f.version_name());
        self.seen.lock().unwrap().push((s.sni().map(str::to_owned), alpn, version));
        let name = s.sni().unwrap_or_default();
        let route = self.routes.iter().find(|(n, _)| *n == name);
        route.map(|(_, p)| p.clone()).ok_or_else(|| Error::internal(format!("no route for {name:?}")))
    }
}

fn start(svc: ListeningService<L4Proxy<BySni>>) -> ServerHandle {
    let mut server = Server::new(ServerConf::default());
    server.add_service(svc);
    server.start().unwrap()
}

fn inet(a: Addr) -> SocketAddr {
    let Addr::Inet(a) = a else { unreachable!() };
    a
}

async fn echo_origin() -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((s, _)) = l.accept().await {
            tokio::spawn(async move {
                let (mut r, mut w) = s.into_split();
                let _ = tokio::io::copy(&mut r, &mut w).await;
            });
        }
    });
    addr
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_facts_reach_the_hook_whether_terminated_or_peeked() {
    within(30, async {
        let ca = Ca::new("L4 CA");
        let leaf = ca.server(&["a.test", "b.test"]);
        let echo = echo_origin().await;

        // Hop 3: terminates TLS for a.test and b.test, relays plaintext to the echo origin.
        let inner_seen = Seen::default();
        let mut inner = ListeningService::new(
            "inner",
            L4Proxy::new(BySni {
                routes: vec![("a.test", HttpPeer::new(&echo.to_string()).unwrap())],
                seen: inner_seen.clone(),
            }),
        );
        let settings = TlsSettings::from_pem(leaf.cert_pem.as_bytes(), leaf.key_pem.as_bytes()).unwrap();
        let inner_addr = inner.add_tls("127.0.0.1:0", &settings).map(inet).unwrap();
        let _inner = start(inner);

        // Hop 2: plaintext endpoint, passes TLS through by the peeked SNI.
        let front_seen = Seen::default();
        let mut front = ListeningService::new(
            "front",
            L4Proxy::new(BySni {
                routes: vec![("a.test", HttpPeer::new(&inner_addr.to_string()).unwrap())],
                seen: front_seen.clone(),
            }),
        );
        front.app_mut().unwrap().options_mut().peek_client_hello = true;
        let front_addr = front.add_tcp("127.0.0.1:0").map(inet).unwrap();
        let _front = start(front);

        let cfg = client_config(Trust::Ca(&ca), &[], &[b"x-db", b"h2"], None);
        let mut tls =
            tls_connect(front_addr, "a.test", cfg.clone()).await.expect("handshake through the passthrough");
        tls.write_all(b"ping over TLS").await.unwrap();
        let mut got = [0u8; 13];
        tls.read_exact(&mut got).await.unwrap();
        assert_eq!(&got, b"ping over TLS");
        let peeked = front_seen.lock().unwrap()[0].clone();
        assert_eq!(
            peeked,
            (Some("a.test".to_owned()), vec!["x-db".to_owned(), "h2".to_owned()], None),
            "offered"
        );
        let terminated = inner_seen.lock().unwrap()[0].clone();
        assert_eq!(
            terminated,
            (Some("a.test".to_owned()), vec!["h2".to_owned()], Some("TLSv1.3")),
            "negotiated"
        );

        // No route for b.test at the passthrough: the hook refuses, the handshake never completes.
        assert!(tls_connect(front_addr, "b.test", cfg).await.is_err());

        // Hop 1 variant: a plaintext client, TLS towards the peer (verified against the CA).
        let dir = temp_dir("l4-tls");
        let ca_file = write(&dir, "ca.pem", &ca.pem);
        let mut tls_peer = HttpPeer::new_tls(&inner_addr.to_string(), "a.test").unwrap();
        tls_peer.options.tls.as_mut().unwrap().ca_file = Some(ca_file);
        let mut plain = ListeningService::new(
            "plain",
            L4Proxy::new(BySni { routes: vec![("", tls_peer)], seen: Seen::default() }),
        );
        let plain_addr = plain.add_tcp("127.0.0.1:0").map(inet).unwrap();
        let _plain = start(plain);
        let mut c = tokio::net::TcpStream::connect(plain_addr).await.unwrap();
        c.write_all(b"plain in, TLS out").await.unwrap();
        let mut got = [0u8; 17];
        c.read_exact(&mut got).await.unwrap();
        assert_eq!(&got, b"plain in, TLS out");
    })
    .await;
}

#[test]
fn client_hello_parsing_reads_sni_and_alpn_and_refuses_garbage() {
    // A ClientHello as rustls writes it, captured from a real handshake attempt.
    let cfg = client_config(Trust::Any, &[], &[b"h2", b"http/1.1"], None);
    let mut conn = rustls::ClientConnection::new(cfg, "Svc.Example".try_into().unwrap()).unwrap();
    let mut wire = Vec::new();
    conn.write_tls(&mut wire).unwrap();
    let hello = proxy::l4::parse_client_hello(&wire[5..]).expect("a ClientHello");
    assert_eq!(hello.sni.as_deref(), Some("svc.example"));
    assert_eq!(hello.alpn, vec![b"h2".to_vec(), b"http/1.1".to_vec()]);
    for n in 0..wire.len() - 5 {
        assert_eq!(proxy::l4::parse_client_hello(&wire[5..5 + n]), None, "truncated at {n}");
    }
    assert_eq!(proxy::l4::parse_client_hello(b"\x02\x00\x00\x00"), None, "not a ClientHello");
}
