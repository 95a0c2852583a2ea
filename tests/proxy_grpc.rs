//! gRPC statuses through the proxy, checked frame by frame on the client's connection: a header
//! block that ends the stream upstream (a Trailers-Only response) must end it downstream too, and
//! an empty response body must not turn into an empty DATA frame. gRPC clients read a stream that
//! ends with an empty DATA frame after a HEADERS carrying `grpc-status` as a call without status
//! (grpcio says `UNKNOWN: Stream removed`).

mod support;

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use bytes::Bytes;
use h2::client::SendRequest;
use http::{HeaderMap, HeaderValue, Method, Request, Response, StatusCode};
use proxy::error::Result;
use proxy::proxy::{HttpProxy, ProxyHttp, Session};
use proxy::upstream::{Alpn, HttpPeer};
use support::h2origin::{grpc_decode, grpc_frame};
use support::harness::Proxy;
use support::within;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Notify;

struct To(HttpPeer);

impl ProxyHttp for To {
    type CTX = ();
    fn new_ctx(&self) {}

    async fn upstream_peer(&self, _s: &mut Session, _c: &mut ()) -> Result<HttpPeer> {
        Ok(self.0.clone())
    }
}

fn proxy_to(addr: SocketAddr, alpn: Alpn) -> Proxy {
    let mut p = HttpPeer::new(&addr.to_string()).unwrap();
    p.options.alpn = alpn;
    Proxy::start_with(HttpProxy::new(To(p)), |_| {})
}

/// A client socket that keeps a copy of every byte the proxy sent, so the test can list the
/// frames as they were on the wire after the `h2` client has decoded them.
struct Tap {
    io: TcpStream,
    seen: Arc<Mutex<Vec<u8>>>,
}

impl AsyncRead for Tap {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let r = Pin::new(&mut self.io).poll_read(cx, buf);
        if r.is_ready() {
            let fresh = buf.filled()[before..].to_vec();
            self.seen.lock().unwrap().extend_from_slice(&fresh);
        }
        r
    }
}

impl AsyncWrite for Tap {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write(cx, buf)
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}

/// The HEADERS, DATA and RST_STREAM frames of `stream` in `bytes` (server to client, no preface),
/// as `HEADERS`, `HEADERS+ES`, `DATA(n)`, `DATA(n)+ES`, `RST`.
fn stream_frames(bytes: &[u8], stream: u32) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = bytes;
    while rest.len() >= 9 {
        let len = u32::from_be_bytes([0, rest[0], rest[1], rest[2]]) as usize;
        let (ty, flags) = (rest[3], rest[4]);
        let id = u32::from_be_bytes([rest[5], rest[6], rest[7], rest[8]]) & 0x7fff_ffff;
        assert!(rest.len() >= 9 + len, "a frame cut short in the capture");
        let es = if flags & 0x1 != 0 { "+ES" } else { "" };
        if id == stream {
            match ty {
                0x0 => out.push(format!("DATA({len}){es}")),
                0x1 => out.push(format!("HEADERS{es}")),
                0x3 => out.push("RST".to_string()),
                _ => {}
            }
        }
        rest = &rest[9 + len..];
    }
    out
}

struct Call {
    headers: HeaderMap,
    /// The body was known to be over when the head arrived (END_STREAM on the HEADERS).
    ended_with_head: bool,
    messages: Vec<Vec<u8>>,
    trailers: Option<HeaderMap>,
    frames: Vec<String>,
}

impl Call {
    /// `grpc-status` wherever it came: the head of a Trailers-Only response or the trailers.
    fn status(&self) -> Option<&str> {
        let t = self.trailers.as_ref().and_then(|t| t.get("grpc-status"));
        t.or_else(|| self.headers.get("grpc-status")).map(|v| v.to_str().unwrap())
    }
}

/// One gRPC-shaped call on a fresh tapped connection: HEADERS (+ one message when `msg` is set).
/// `got_head` is notified as soon as the response head is in.
async fn call(proxy: SocketAddr, path: &str, msg: Option<&[u8]>, got_head: Option<Arc<Notify>>) -> Call {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let tcp = TcpStream::connect(proxy).await.unwrap();
    tcp.set_nodelay(true).unwrap();
    let (client, conn) = h2::client::handshake(Tap { io: tcp, seen: seen.clone() }).await.unwrap();
    tokio::spawn(async move {
        let _ = conn.await;
    });
    let mut client: SendRequest<Bytes> = client.ready().await.unwrap();
    let req = Request::builder()
        .method(Method::POST)
        .uri(format!("http://grpc.test{path}"))
        .header("content-type", "application/grpc")
        .header("te", "trailers")
        .body(())
        .unwrap();
    let (resp, mut send) = client.send_request(req, msg.is_none()).unwrap();
    if let Some(m) = msg {
        send.send_data(grpc_frame(m), true).unwrap();
    }
    let resp = resp.await.expect("response head");
    if let Some(n) = got_head {
        n.notify_one();
    }
    let (parts, mut body) = resp.into_parts();
    assert_eq!(parts.status, StatusCode::OK);
    let ended_with_head = body.is_end_stream();
    let mut data = Vec::new();
    while let Some(d) = body.data().await {
        let d = d.expect("response body");
        let _ = body.flow_control().release_capacity(d.len());
        data.extend_from_slice(&d);
    }
    let trailers = body.trailers().await.expect("response trailers");
    let frames = stream_frames(&seen.lock().unwrap(), 1);
    Call { headers: parts.headers, ended_with_head, messages: grpc_decode(&data), trailers, frames }
}

fn grpc_head(end_stream_status: Option<(&'static str, &'static str)>) -> Response<()> {
    let mut r = Response::new(());
    r.headers_mut().insert("content-type", HeaderValue::from_static("application/grpc"));
    if let Some((code, message)) = end_stream_status {
        r.headers_mut().insert("grpc-status", HeaderValue::from_static(code));
        r.headers_mut().insert("grpc-message", HeaderValue::from_static(message));
    }
    r
}

fn grpc_trailers(code: &'static str, message: &'static str) -> HeaderMap {
    let mut t = HeaderMap::new();
    t.insert("grpc-status", HeaderValue::from_static(code));
    t.insert("grpc-message", HeaderValue::from_static(message));
    t.insert("x-detail-bin", HeaderValue::from_static("AAEC"));
    t
}

/// An h2c gRPC-shaped origin answering by path, after reading the whole request:
/// `/trailers-only` one HEADERS with END_STREAM and `grpc-status: 5`; `/empty-then-trailers`
/// HEADERS then trailers with `grpc-status: 7`; `/stream-error` two messages then trailers with
/// `grpc-status: 13`.
async fn h2_grpc_origin() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            tokio::spawn(async move {
                let Ok(mut conn) = h2::server::handshake(tcp).await else { return };
                while let Some(Ok((req, mut respond))) = conn.accept().await {
                    tokio::spawn(async move {
                        let (parts, mut body) = req.into_parts();
                        while let Some(Ok(d)) = body.data().await {
                            let _ = body.flow_control().release_capacity(d.len());
                        }
                        match parts.uri.path() {
                            "/trailers-only" => {
                                let _ = respond.send_response(grpc_head(Some(("5", "no such thing"))), true);
                            }
                            "/empty-then-trailers" => {
                                let mut s = respond.send_response(grpc_head(None), false).unwrap();
                                let _ = s.send_trailers(grpc_trailers("7", "denied"));
                            }
                            "/stream-error" => {
                                let mut s = respond.send_response(grpc_head(None), false).unwrap();
                                let _ = s.send_data(grpc_frame(b"one"), false);
                                let _ = s.send_data(grpc_frame(b"two"), false);
                                let _ = s.send_trailers(grpc_trailers("13", "broke after two"));
                            }
                            p => panic!("unexpected path {p}"),
                        }
                    });
                }
            });
        }
    });
    addr
}

/// Path, request message, frames of the response stream, grpc-status, messages.
type Case = (&'static str, Option<&'static [u8]>, &'static [&'static str], &'static str, usize);

#[tokio::test]
async fn h2_origin_grpc_statuses_keep_their_frames() {
    let origin = h2_grpc_origin().await;
    let p = proxy_to(origin, Alpn::H2);
    let cases: &[Case] = &[
        ("/trailers-only", Some(b"who"), &["HEADERS+ES"], "5", 0),
        ("/trailers-only", None, &["HEADERS+ES"], "5", 0),
        ("/empty-then-trailers", Some(b"x"), &["HEADERS", "HEADERS+ES"], "7", 0),
        ("/stream-error", Some(b"q"), &["HEADERS", "DATA(8)", "DATA(8)", "HEADERS+ES"], "13", 2),
    ];
    for &(path, msg, frames, status, messages) in cases {
        let c = within(5, call(p.addr, path, msg, None)).await;
        assert_eq!(c.frames, frames, "{path}");
        assert_eq!(c.status(), Some(status), "{path}");
        assert_eq!(c.messages.len(), messages, "{path}");
        assert_eq!(c.ended_with_head, frames == ["HEADERS+ES"], "{path}");
    }
    let c = within(5, call(p.addr, "/trailers-only", Some(b"who"), None)).await;
    assert_eq!(c.headers.get("grpc-message").unwrap(), "no such thing");
    assert!(c.trailers.is_none());
    let c = within(5, call(p.addr, "/stream-error", Some(b"q"), None)).await;
    assert_eq!(c.messages, [b"one".to_vec(), b"two".to_vec()]);
    let t = c.trailers.unwrap();
    assert_eq!(t.get("grpc-message").unwrap(), "broke after two");
    assert_eq!(t.get("x-detail-bin").unwrap(), "AAEC");
}

/// An HTTP/1.1 origin that answers each request on a connection with `first`, then (if `gate` is
/// set) waits for it before writing `rest`.
async fn h1_origin(first: &'static [u8], rest: &'static [u8], gate: Option<Arc<Notify>>) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut tcp, _)) = listener.accept().await {
            let gate = gate.clone();
            tokio::spawn(async move {
                let mut head = Vec::new();
                let mut b = [0u8; 1];
                while !head.ends_with(b"\r\n\r\n") {
                    if tcp.read(&mut b).await.unwrap_or(0) == 0 {
                        return;
                    }
                    head.push(b[0]);
                }
                let _ = tcp.write_all(first).await;
                if let Some(g) = gate {
                    g.notified().await;
                }
                let _ = tcp.write_all(rest).await;
                // Held open so that only the framing can end the response.
                let _ = tcp.read(&mut b).await;
            });
        }
    });
    addr
}

#[tokio::test]
async fn h1_origin_empty_grpc_bodies_end_without_an_empty_data_frame() {
    const HEAD_CHUNKED: &str =
        "HTTP/1.1 200 OK\r\ncontent-type: application/grpc\r\ntransfer-encoding: chunked\r\n\r\n";
    // origin response, frames of the response stream, grpc-status
    let cases: &[(&'static [u8], &[&str], Option<&str>)] = &[
        (
            b"HTTP/1.1 200 OK\r\ncontent-type: application/grpc\r\ntransfer-encoding: chunked\r\n\r\n\
              0\r\ngrpc-status: 5\r\ngrpc-message: missing\r\n\r\n",
            &["HEADERS", "HEADERS+ES"],
            Some("5"),
        ),
        (
            b"HTTP/1.1 200 OK\r\ncontent-type: application/grpc\r\ntransfer-encoding: chunked\r\n\r\n0\r\n\r\n",
            &["HEADERS+ES"],
            None,
        ),
        (
            b"HTTP/1.1 200 OK\r\ncontent-type: application/grpc\r\ngrpc-status: 12\r\ncontent-length: 0\r\n\r\n",
            &["HEADERS+ES"],
            Some("12"),
        ),
        (
            b"HTTP/1.1 200 OK\r\ncontent-type: application/grpc\r\ntransfer-encoding: chunked\r\n\r\n\
              8\r\n\x00\x00\x00\x00\x03one\r\n0\r\ngrpc-status: 0\r\n\r\n",
            &["HEADERS", "DATA(8)", "HEADERS+ES"],
            Some("0"),
        ),
    ];
    for &(response, frames, status) in cases {
        let origin = h1_origin(response, b"", None).await;
        let p = proxy_to(origin, Alpn::H1);
        let c = within(5, call(p.addr, "/h1", None, None)).await;
        let name = String::from_utf8_lossy(response);
        assert_eq!(c.frames, frames, "{name}");
        assert_eq!(c.status(), status, "{name}");
        assert_eq!(c.ended_with_head, frames == ["HEADERS+ES"], "{name}");
    }

    // The head goes out while the body is still to come: the origin sends the trailers only once
    // the client has the head, so a head held back for good would hang the call.
    let gate = Arc::new(Notify::new());
    let origin = h1_origin(HEAD_CHUNKED.as_bytes(), b"0\r\ngrpc-status: 9\r\n\r\n", Some(gate.clone())).await;
    let p = proxy_to(origin, Alpn::H1);
    let c = within(5, call(p.addr, "/h1", None, Some(gate))).await;
    assert_eq!(c.frames, ["HEADERS", "HEADERS+ES"]);
    assert_eq!(c.status(), Some("9"));
}

#[tokio::test]
async fn h2_origin_head_is_not_held_while_the_stream_stays_open() {
    // A server-streaming call whose first message is a long time coming: the client needs the
    // head (its initial metadata) before it, or a bidirectional call would deadlock.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let origin = listener.local_addr().unwrap();
    let gate = Arc::new(Notify::new());
    let g = gate.clone();
    tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        let mut conn = h2::server::handshake(tcp).await.unwrap();
        let (_req, mut respond) = conn.accept().await.unwrap().unwrap();
        tokio::spawn(async move {
            let mut s = respond.send_response(grpc_head(None), false).unwrap();
            g.notified().await;
            let _ = s.send_data(grpc_frame(b"late"), false);
            let _ = s.send_trailers(grpc_trailers("0", "ok"));
        });
        while conn.accept().await.is_some() {}
    });
    let p = proxy_to(origin, Alpn::H2);
    let c = within(5, call(p.addr, "/slow", None, Some(gate))).await;
    assert_eq!(c.frames, ["HEADERS", "DATA(9)", "HEADERS+ES"]);
    assert_eq!(c.messages, [b"late".to_vec()]);
    assert_eq!(c.status(), Some("0"));
}
