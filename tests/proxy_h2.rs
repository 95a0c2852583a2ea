//! HTTP/2 through the proxy: h2c downstream (prior knowledge) to HTTP/1.1 and HTTP/2 upstreams,
//! HTTP/1.1 downstream to an HTTP/2 upstream, trailers, gRPC, cancellation and graceful shutdown.

mod support;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use h2::client::SendRequest;
use http::{HeaderMap, HeaderValue, Method, Request, Version};
use proxy::error::Result;
use proxy::proxy::{HttpProxy, ProxyHttp, Session};
use proxy::upstream::{Alpn, HttpPeer};
use support::client::{chunked_body, Conn};
use support::h2origin::{grpc_decode, grpc_frame, raw, H2Origin};
use support::harness::Proxy;
use support::origin::Origin;
use support::{eventually, within};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

#[derive(Clone, Default)]
struct Seen {
    versions: Arc<Mutex<Vec<Version>>>,
    hosts: Arc<Mutex<Vec<String>>>,
}

struct To {
    peer: HttpPeer,
    seen: Seen,
}

impl ProxyHttp for To {
    type CTX = ();
    fn new_ctx(&self) {}

    async fn request_filter(&self, s: &mut Session, _c: &mut ()) -> Result<bool> {
        self.seen.versions.lock().unwrap().push(s.req.version);
        let host = s.req.headers.get("host").map(|h| String::from_utf8_lossy(h.as_bytes()).into_owned());
        self.seen.hosts.lock().unwrap().push(host.unwrap_or_default());
        Ok(false)
    }

    async fn upstream_peer(&self, _s: &mut Session, _c: &mut ()) -> Result<HttpPeer> {
        Ok(self.peer.clone())
    }
}

fn peer(addr: SocketAddr, alpn: Alpn) -> HttpPeer {
    let mut p = HttpPeer::new(&addr.to_string()).unwrap();
    p.options.alpn = alpn;
    p
}

fn start(addr: SocketAddr, alpn: Alpn) -> (Proxy, Seen) {
    let seen = Seen::default();
    let p = Proxy::start(To { peer: peer(addr, alpn), seen: seen.clone() });
    (p, seen)
}

/// An h2c client connection (prior knowledge); the connection task runs in the background.
async fn h2_connect(addr: SocketAddr) -> SendRequest<Bytes> {
    let tcp = TcpStream::connect(addr).await.unwrap();
    // Without it a lone RST_STREAM waits for a delayed ACK (~40 ms) and skews cancel timings.
    tcp.set_nodelay(true).unwrap();
    let (client, conn) = h2::client::handshake(tcp).await.unwrap();
    tokio::spawn(async move {
        let _ = conn.await;
    });
    client
}

#[derive(Debug)]
struct H2Resp {
    status: u16,
    headers: HeaderMap,
    body: Vec<u8>,
    trailers: Option<HeaderMap>,
}

impl H2Resp {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

async fn read_response(resp: h2::client::ResponseFuture) -> std::result::Result<H2Resp, h2::Error> {
    let (parts, mut body) = resp.await?.into_parts();
    let mut out = Vec::new();
    while let Some(d) = body.data().await {
        let d = d?;
        let _ = body.flow_control().release_capacity(d.len());
        out.extend_from_slice(&d);
    }
    let trailers = body.trailers().await?;
    Ok(H2Resp { status: parts.status.as_u16(), headers: parts.headers, body: out, trailers })
}

/// Sends one request; `body` None means END_STREAM on the head.
async fn h2_request(
    client: &mut SendRequest<Bytes>,
    method: Method,
    uri: &str,
    headers: &[(&str, &str)],
    body: Option<&[u8]>,
    trailers: Option<HeaderMap>,
) -> std::result::Result<H2Resp, h2::Error> {
    let mut b = Request::builder().method(method).uri(uri);
    for (n, v) in headers {
        b = b.header(*n, *v);
    }
    let req = b.body(()).unwrap();
    let mut client = client.clone().ready().await?;
    let end = body.is_none() && trailers.is_none();
    let (resp, mut send) = client.send_request(req, end)?;
    if !end {
        if let Some(body) = body {
            send.send_data(Bytes::copy_from_slice(body), trailers.is_none())?;
        }
        if let Some(t) = trailers {
            send.send_trailers(t)?;
        }
    }
    read_response(resp).await
}

async fn h2_get(client: &mut SendRequest<Bytes>, uri: &str) -> H2Resp {
    h2_request(client, Method::GET, uri, &[], None, None).await.unwrap()
}

fn dump_headers(text: &str) -> Vec<(String, String)> {
    text.split("\n\n")
        .next()
        .unwrap()
        .lines()
        .skip(1)
        .filter_map(|l| l.split_once(": ").map(|(n, v)| (n.to_string(), v.to_string())))
        .collect()
}

// ---------------------------------------------------------------- H2 downstream, H1 upstream

#[tokio::test]
async fn h2_get_reaches_h1_origin_with_host_from_authority() {
    let origin = Origin::start().await;
    let (p, seen) = start(origin.addr, Alpn::H1);
    let mut c = h2_connect(p.addr).await;
    let r = within(5, h2_get(&mut c, "http://h2.example:8443/echo?x=1")).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let text = r.text();
    assert!(text.starts_with("GET /echo?x=1 HTTP/1.1\n"), "{text}");
    let hs = dump_headers(&text);
    let hosts: Vec<_> = hs.iter().filter(|(n, _)| n == "host").map(|(_, v)| v.as_str()).collect();
    assert_eq!(hosts, ["h2.example:8443"], "{text}");
    assert_eq!(*seen.versions.lock().unwrap(), [Version::HTTP_2]);
    assert_eq!(*seen.hosts.lock().unwrap(), ["h2.example:8443"]);
    assert!(r.headers.get("x-origin-conn").is_some());
    // No connection-specific fields on an H2 response.
    for f in ["connection", "keep-alive", "transfer-encoding"] {
        assert!(r.headers.get(f).is_none(), "{f} in {:?}", r.headers);
    }
}

#[tokio::test]
async fn h2_post_with_content_length() {
    let origin = Origin::start().await;
    let (p, _) = start(origin.addr, Alpn::H1);
    let mut c = h2_connect(p.addr).await;
    let r = within(
        5,
        h2_request(
            &mut c,
            Method::POST,
            "http://a.test/echo",
            &[("content-length", "5")],
            Some(b"hello"),
            None,
        ),
    )
    .await
    .unwrap();
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(r.text().ends_with("\n\nhello"), "{}", r.text());
    let raw = origin.received_text().pop().unwrap();
    assert!(raw.to_ascii_lowercase().contains("content-length: 5\r\n"), "{raw}");
    assert!(!raw.to_ascii_lowercase().contains("transfer-encoding"), "{raw}");
}

#[tokio::test]
async fn h2_post_without_content_length_is_chunked_upstream() {
    let origin = Origin::start().await;
    let (p, _) = start(origin.addr, Alpn::H1);
    let mut c = h2_connect(p.addr).await;
    let r = within(5, h2_request(&mut c, Method::POST, "http://a.test/echo", &[], Some(b"no length"), None))
        .await
        .unwrap();
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(r.text().ends_with("\n\nno length"), "{}", r.text());
    let raw = origin.received_text().pop().unwrap();
    let lower = raw.to_ascii_lowercase();
    assert!(lower.contains("transfer-encoding: chunked\r\n"), "{raw}");
    assert!(!lower.contains("content-length"), "{raw}");
    assert!(raw.ends_with("0\r\n\r\n"), "{raw:?}");
}

/// With request buffering on, an HTTP/2 body without a length goes upstream whole with a
/// Content-Length (not chunked), and one past the bound is refused with 413.
#[tokio::test]
async fn h2_buffered_body_reaches_h1_origin_with_content_length() {
    let origin = Origin::start().await;
    let mut app = HttpProxy::new(To { peer: peer(origin.addr, Alpn::H1), seen: Seen::default() });
    app.server_options_mut().request_buffer = 100;
    let p = Proxy::start_with(app, |_| {});
    let mut c = h2_connect(p.addr).await;
    let r = within(5, h2_request(&mut c, Method::POST, "http://a.test/echo", &[], Some(b"no length"), None))
        .await
        .unwrap();
    assert_eq!(r.status, 200, "{}", r.text());
    let raw = origin.received_text().pop().unwrap();
    let lower = raw.to_ascii_lowercase();
    assert!(lower.contains("content-length: 9\r\n"), "{raw}");
    assert!(!lower.contains("transfer-encoding"), "{raw}");
    assert!(raw.ends_with("\r\n\r\nno length"), "{raw:?}");
    let r = within(5, h2_request(&mut c, Method::POST, "http://a.test/echo", &[], Some(&[b'x'; 101]), None))
        .await
        .unwrap();
    assert_eq!(r.status, 413);
    assert_eq!(origin.requests(), 1);
}

#[tokio::test]
async fn h2_request_trailers_reach_h1_origin_chunked() {
    let origin = Origin::start().await;
    let (p, _) = start(origin.addr, Alpn::H1);
    let mut c = h2_connect(p.addr).await;
    let mut t = HeaderMap::new();
    t.insert("x-req-trailer", HeaderValue::from_static("yes"));
    let r = within(5, h2_request(&mut c, Method::POST, "http://a.test/echo", &[], Some(b"body"), Some(t)))
        .await
        .unwrap();
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(r.text().contains("trailer x-req-trailer: yes"), "{}", r.text());
    let raw = origin.received_text().pop().unwrap();
    assert!(raw.to_ascii_lowercase().contains("transfer-encoding: chunked"), "{raw}");
    assert!(raw.ends_with("0\r\nx-req-trailer: yes\r\n\r\n"), "{raw:?}");
}

#[tokio::test]
async fn h1_origin_response_trailers_reach_h2_client() {
    let origin = Origin::start().await;
    let (p, _) = start(origin.addr, Alpn::H1);
    let mut c = h2_connect(p.addr).await;
    let r = within(5, h2_get(&mut c, "http://a.test/trailers")).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.text(), "hello chunked world");
    let t = r.trailers.expect("trailers");
    assert_eq!(t.get("x-trailer-a").unwrap(), "1");
    assert_eq!(t.get("x-checksum").unwrap(), "abc");
}

#[tokio::test]
async fn h2_hundred_concurrent_streams_on_one_connection() {
    let origin = Origin::start().await;
    let (p, seen) = start(origin.addr, Alpn::H1);
    let c = h2_connect(p.addr).await;
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..100 {
        let mut c = c.clone();
        tasks.spawn(async move {
            let r = h2_get(&mut c, &format!("http://a.test/echo?i={i}")).await;
            (i, r)
        });
    }
    let mut ok = 0;
    within(15, async {
        while let Some(r) = tasks.join_next().await {
            let (i, r) = r.unwrap();
            assert_eq!(r.status, 200, "stream {i}: {}", r.text());
            assert!(r.text().starts_with(&format!("GET /echo?i={i} HTTP/1.1")), "{}", r.text());
            ok += 1;
        }
    })
    .await;
    assert_eq!(ok, 100);
    assert_eq!(seen.versions.lock().unwrap().len(), 100);
}

#[tokio::test]
async fn curl_http2_prior_knowledge() {
    let origin = Origin::start().await;
    let (p, seen) = start(origin.addr, Alpn::H1);
    let url = format!("http://{}/echo", p.addr);
    let out = within(
        10,
        tokio::process::Command::new("curl")
            .args(["-sS", "--http2-prior-knowledge", "-D", "-", "--max-time", "5", "-d", "from-curl", &url])
            .output(),
    )
    .await
    .expect("curl runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "curl failed: {}\n{stdout}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.starts_with("HTTP/2 200"), "{stdout}");
    assert!(stdout.contains("POST /echo HTTP/1.1\n"), "{stdout}");
    assert!(stdout.ends_with("from-curl"), "{stdout}");
    assert_eq!(*seen.versions.lock().unwrap(), [Version::HTTP_2]);
}

// ---------------------------------------------------------------- H2 upstream

#[tokio::test]
async fn h2_to_h2_upstream_multiplexes_on_one_connection() {
    let origin = H2Origin::start().await;
    let app = HttpProxy::new(To { peer: peer(origin.addr, Alpn::H2), seen: Seen::default() });
    let connector = app.connector().clone();
    let p = Proxy::start_with(app, |_| {});
    let mut tasks = tokio::task::JoinSet::new();
    for conn in 0..5 {
        let c = h2_connect(p.addr).await;
        for i in 0..10 {
            let mut c = c.clone();
            tasks.spawn(async move {
                let r = h2_request(
                    &mut c,
                    Method::POST,
                    &format!("http://up.test/echo?c={conn}&i={i}"),
                    &[],
                    Some(b"x"),
                    None,
                )
                .await
                .unwrap();
                (conn, i, r)
            });
        }
    }
    within(10, async {
        while let Some(r) = tasks.join_next().await {
            let (conn, i, r) = r.unwrap();
            assert_eq!(r.status, 200, "{}", r.text());
            assert!(
                r.text().starts_with(&format!("POST http://up.test/echo?c={conn}&i={i} HTTP/2\n")),
                "{}",
                r.text()
            );
        }
    })
    .await;
    assert_eq!(origin.streams(), 50);
    assert_eq!(origin.accepts(), 1, "the H2 origin should see one multiplexed connection");
    assert_eq!(connector.h2_connections_opened(), 1);
    // :authority survives H2→H2.
    assert!(origin.requests().iter().all(|r| r.uri.starts_with("http://up.test/")));
}

async fn grpc_call(c: &mut SendRequest<Bytes>, path: &str, msg: &[u8]) -> H2Resp {
    h2_request(
        c,
        Method::POST,
        &format!("http://grpc.test{path}"),
        &[("content-type", "application/grpc"), ("te", "trailers"), ("grpc-timeout", "5S")],
        Some(&grpc_frame(msg)),
        None,
    )
    .await
    .unwrap()
}

#[tokio::test]
async fn grpc_unary_through_proxy() {
    let origin = H2Origin::start().await;
    let (p, _) = start(origin.addr, Alpn::H2);
    let mut c = h2_connect(p.addr).await;
    let r = within(5, grpc_call(&mut c, "/grpc/unary", b"world")).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.headers.get("content-type").unwrap(), "application/grpc");
    assert_eq!(grpc_decode(&r.body), [b"hello world".to_vec()]);
    let t = r.trailers.expect("grpc trailers");
    assert_eq!(t.get("grpc-status").unwrap(), "0");
    assert_eq!(t.get("grpc-message").unwrap(), "ok");
    let req = origin.requests().pop().unwrap();
    assert_eq!(req.headers.get("content-type").unwrap(), "application/grpc");
    assert_eq!(req.headers.get("grpc-timeout").unwrap(), "5S");
    assert_eq!(grpc_decode(&req.body), [b"world".to_vec()]);
}

#[tokio::test]
async fn grpc_server_streaming_through_proxy() {
    let origin = H2Origin::start().await;
    let (p, _) = start(origin.addr, Alpn::H2);
    let mut c = h2_connect(p.addr).await;
    let r = within(5, grpc_call(&mut c, "/grpc/stream", b"q")).await;
    assert_eq!(r.status, 200);
    let msgs: Vec<String> =
        grpc_decode(&r.body).iter().map(|m| String::from_utf8_lossy(m).into_owned()).collect();
    let want: Vec<String> = (0..5).map(|i| format!("reply {i} to q")).collect();
    assert_eq!(msgs, want);
    assert_eq!(r.trailers.expect("grpc trailers").get("grpc-status").unwrap(), "0");
}

/// gRPC's `te: trailers` exists to detect proxies that cannot carry trailers; an H2→H2 proxy that
/// carries them should pass it on (RFC 9113 §8.2.2 allows exactly this TE value).
#[tokio::test]
async fn grpc_te_trailers_reaches_h2_origin() {
    let origin = H2Origin::start().await;
    let (p, _) = start(origin.addr, Alpn::H2);
    let mut c = h2_connect(p.addr).await;
    let r = within(5, grpc_call(&mut c, "/grpc/unary", b"te")).await;
    assert_eq!(r.status, 200);
    let req = origin.requests().pop().unwrap();
    assert_eq!(req.headers.get("te").map(|v| v.as_bytes()), Some(&b"trailers"[..]), "{:?}", req.headers);
}

#[tokio::test]
async fn client_reset_cancels_h2_upstream_stream() {
    let origin = H2Origin::start().await;
    let (p, _) = start(origin.addr, Alpn::H2);
    let c = h2_connect(p.addr).await;
    let mut c = c.ready().await.unwrap();
    let req = Request::builder().uri("http://a.test/hang").body(()).unwrap();
    let (_resp, mut send) = c.send_request(req, false).unwrap();
    assert!(eventually(|| origin.hang_started().len() == 1).await, "request never reached the origin");
    let t0 = Instant::now();
    send.send_reset(h2::Reason::CANCEL);
    let reset = eventually(|| !origin.hang_resets().is_empty()).await;
    assert!(reset, "the origin never saw its stream reset");
    let took = origin.hang_resets()[0].saturating_duration_since(t0);
    eprintln!("H2 upstream saw the reset {took:?} after the client's RST_STREAM");
    assert!(took < Duration::from_secs(1), "{took:?}");
    // The shared upstream connection survives the cancelled stream.
    let mut c2 = h2_connect(p.addr).await;
    assert_eq!(within(5, h2_get(&mut c2, "http://a.test/echo")).await.status, 200);
    assert_eq!(origin.accepts(), 1);
}

#[tokio::test]
async fn client_reset_closes_h1_upstream_connection() {
    // A bare H1 upstream that reads the request, never answers, and records when it sees EOF.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let up = listener.local_addr().unwrap();
    let (got_req_tx, got_req) = tokio::sync::oneshot::channel::<()>();
    let (closed_tx, closed) = tokio::sync::oneshot::channel::<Instant>();
    tokio::spawn(async move {
        let (mut s, _) = listener.accept().await.unwrap();
        let mut buf = Vec::new();
        let mut chunk = [0u8; 4096];
        let mut got_req_tx = Some(got_req_tx);
        loop {
            match s.read(&mut chunk).await {
                Ok(0) | Err(_) => break,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
            if buf.windows(4).any(|w| w == b"\r\n\r\n") {
                if let Some(tx) = got_req_tx.take() {
                    let _ = tx.send(());
                }
            }
        }
        let _ = closed_tx.send(Instant::now());
    });
    let (p, _) = start(up, Alpn::H1);
    let c = h2_connect(p.addr).await;
    let mut c = c.ready().await.unwrap();
    let req = Request::builder().uri("http://a.test/hang").body(()).unwrap();
    let (_resp, mut send) = c.send_request(req, true).unwrap();
    within(5, got_req).await.unwrap();
    let t0 = Instant::now();
    send.send_reset(h2::Reason::CANCEL);
    let at = within(5, closed).await.unwrap();
    let took = at.saturating_duration_since(t0);
    eprintln!("H1 upstream saw its connection closed {took:?} after the client's RST_STREAM");
    assert!(took < Duration::from_secs(1), "{took:?}");
}

#[tokio::test]
async fn h1_client_to_h2_upstream_strips_connection_specific_fields() {
    let origin = H2Origin::start().await;
    let (p, seen) = start(origin.addr, Alpn::H2);
    let mut c = Conn::connect(p.addr).await.unwrap();
    let r = within(
        5,
        c.request(
            "GET",
            "/echo",
            &[
                ("Host", "h1.test"),
                ("Connection", "keep-alive, x-hop"),
                ("Keep-Alive", "timeout=5"),
                ("TE", "trailers"),
                ("X-Hop", "1"),
                ("Proxy-Connection", "keep-alive"),
                ("X-Kept", "yes"),
            ],
            b"",
        ),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(*seen.versions.lock().unwrap(), [Version::HTTP_11]);
    let req = origin.requests().pop().expect("the H2 origin got the request");
    for f in ["connection", "keep-alive", "proxy-connection", "transfer-encoding", "upgrade", "x-hop", "host"]
    {
        assert!(req.headers.get(f).is_none(), "{f} reached the H2 origin: {:?}", req.headers);
    }
    if let Some(te) = req.headers.get("te") {
        assert_eq!(te, "trailers");
    }
    assert_eq!(req.headers.get("x-kept").unwrap(), "yes");
    assert_eq!(req.uri, "http://h1.test/echo");
    // The keep-alive H1 connection carries a second request over the same H2 upstream connection.
    let r = within(5, c.request("GET", "/echo", &[("Host", "h1.test")], b"")).await;
    assert_eq!(r.status, 200);
    assert_eq!(origin.accepts(), 1);
}

#[tokio::test]
async fn h1_chunked_request_with_trailers_to_h2_upstream() {
    let origin = H2Origin::start().await;
    let (p, _) = start(origin.addr, Alpn::H2);
    let mut c = Conn::connect(p.addr).await.unwrap();
    let body = chunked_body(&[b"abc", b"defg"], &[("x-t", "v")]);
    let r = within(
        5,
        c.request(
            "POST",
            "/echo",
            &[("Host", "h1.test"), ("Transfer-Encoding", "chunked"), ("TE", "trailers")],
            &body,
        ),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let req = origin.requests().pop().unwrap();
    assert_eq!(req.body, b"abcdefg");
    assert_eq!(req.trailers.as_ref().and_then(|t| t.get("x-t")).unwrap(), "v");
    assert!(req.headers.get("transfer-encoding").is_none());
}

#[tokio::test]
async fn h2_upstream_response_trailers_reach_h1_client() {
    let origin = H2Origin::start().await;
    let (p, _) = start(origin.addr, Alpn::H2);
    let mut c = Conn::connect(p.addr).await.unwrap();
    let r = within(5, c.request("GET", "/trailers", &[("Host", "h1.test"), ("TE", "trailers")], b"")).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.text(), "hello trailers");
    assert_eq!(r.trailer("x-checksum"), Some("abc"));
}

// ---------------------------------------------------------------- shutdown

#[tokio::test]
async fn graceful_shutdown_sends_goaway_and_finishes_in_flight_stream() {
    let origin = Origin::start().await;
    let (p, _) = start(origin.addr, Alpn::H1);
    // An h2 client with a stream in flight...
    let tcp = TcpStream::connect(p.addr).await.unwrap();
    let (client, conn) = h2::client::handshake(tcp).await.unwrap();
    let conn_done = tokio::spawn(async move {
        let _ = conn.await;
        Instant::now()
    });
    let mut c = client.clone();
    let in_flight = tokio::spawn(async move { h2_get(&mut c, "http://a.test/delay/500").await });
    // ...and a raw connection that watches for GOAWAY.
    let raw_conn = TcpStream::connect(p.addr).await.unwrap();
    let (mut rd, mut wr) = raw_conn.into_split();
    wr.write_all(&raw::client_start()).await.unwrap();
    assert!(eventually(|| origin.received().len() == 1).await);

    let t0 = Instant::now();
    let shut = tokio::task::spawn_blocking(move || p.shutdown(Duration::from_secs(5)));
    let goaway = within(5, async {
        loop {
            match raw::read_frame(&mut rd, Duration::from_secs(5)).await {
                Some(f) if f.ty == raw::GOAWAY => return f.goaway(),
                Some(_) => continue,
                None => return None,
            }
        }
    })
    .await;
    // The watcher leaves, so only the in-flight stream holds the shutdown up.
    drop((rd, wr));
    let (_, code) = goaway.expect("a GOAWAY frame before the connection ended");
    assert_eq!(code, 0, "graceful GOAWAY carries NO_ERROR");
    let r = within(5, in_flight).await.unwrap();
    assert_eq!(r.status, 200, "the in-flight stream completes");
    assert_eq!(r.text(), "ok");
    // The client connection ends once its last stream is done.
    let ended = within(5, conn_done).await.unwrap();
    eprintln!("client connection ended {:?} after shutdown began", ended - t0);
    within(10, shut).await.unwrap();
}

/// On a port serving HTTP/1.1 and h2c alike, bytes that start like the HTTP/2 preface (`PRI `) and
/// then differ are a broken HTTP/2 preface, not an HTTP/1 request, and so is a first line of three
/// words with no HTTP version: the connection is closed with nothing sent (no HTTP/1 400), as
/// h2spec's invalid-preface case expects. Other requests on the same port are still HTTP/1.
#[tokio::test]
async fn a_broken_preface_on_a_mixed_port_is_closed_without_an_http1_answer() {
    within(20, async {
        let origin = Origin::start().await;
        let (p, _) = start(origin.addr, Alpn::H1);
        let cases: [(&str, &[u8], bool); 6] = [
            ("last line differs", b"PRI * HTTP/2.0\r\n\r\nXX\r\n\r\n", true),
            ("h2spec's invalid preface", b"INVALID CONNECTION PREFACE\r\n\r\n", true),
            ("HTTP/0.9 stays HTTP/1's", b"GET /\r\n\r\n", false),
            ("PRI as an HTTP/1.1 method", b"PRI / HTTP/1.1\r\nHost: a\r\n\r\n", true),
            ("PRI * HTTP/1.1", b"PRI * HTTP/1.1\r\nHost: a\r\n\r\n", true),
            ("preface cut short, then EOF", b"PRI * HTTP/2.0\r\n", true),
        ];
        for (case, bytes, silent) in cases {
            let mut c = Conn::connect(p.addr).await.unwrap();
            c.send(bytes).await.unwrap();
            c.shutdown_write().await.unwrap();
            let got = c.read_to_end().await.unwrap_or_default();
            if silent {
                assert!(
                    got.is_empty(),
                    "{case}: closed with nothing sent, got {:?}",
                    String::from_utf8_lossy(&got)
                );
            } else {
                assert!(
                    got.starts_with(b"HTTP/1.1 400"),
                    "{case}: HTTP/1's to judge, got {:?}",
                    String::from_utf8_lossy(&got)
                );
            }
        }
        let mut c = Conn::connect(p.addr).await.unwrap();
        assert_eq!(c.request("GET", "/echo", &[], b"").await.status, 200, "HTTP/1.1 still served");
        let mut h2 = h2_connect(p.addr).await;
        let req = Request::builder().uri(format!("http://{}/echo", p.addr)).body(()).unwrap();
        let (resp, _) = h2.send_request(req, true).unwrap();
        assert_eq!(resp.await.unwrap().status(), 200, "h2c still served");
    })
    .await;
}
