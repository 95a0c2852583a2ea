//! Our HTTP/2 server's flow control and framing against an independent client (the h2 crate):
//! bodies larger than every window in both directions on concurrent streams, with a client that
//! grants small windows, and a response head too large for one frame. h2spec covers the error
//! cases; these cover the long paths where bytes must neither stall nor be lost.

mod support;

use std::net::SocketAddr;

use bytes::Bytes;
use h2::client::SendRequest;
use http::{HeaderValue, Method, Request};
use proxy::error::Result;
use proxy::protocol::http::ResponseHead;
use proxy::proxy::{ProxyHttp, Session};
use proxy::upstream::HttpPeer;
use support::harness::Proxy;
use support::origin::{big_body, Origin};
use support::within;
use tokio::net::TcpStream;

struct To {
    origin: SocketAddr,
}

/// Bytes of the response field `x-big` the proxy adds to `/status/200?big`.
const BIG_FIELD: usize = 40_000;

impl ProxyHttp for To {
    type CTX = ();
    fn new_ctx(&self) {}

    async fn upstream_peer(&self, _s: &mut Session, _c: &mut ()) -> Result<HttpPeer> {
        Ok(HttpPeer::new(&self.origin.to_string()).unwrap())
    }

    async fn response_filter(&self, s: &mut Session, resp: &mut ResponseHead, _c: &mut ()) -> Result<()> {
        if s.req.uri.query() == Some("big") {
            let v = "v".repeat(BIG_FIELD);
            resp.headers.insert("x-big", HeaderValue::from_str(&v).unwrap());
        }
        Ok(())
    }
}

/// An h2 client that grants the server only `window` bytes per stream and twice that for the
/// connection, so every large response goes out in many window-sized pieces.
async fn small_window_client(addr: SocketAddr, window: u32) -> SendRequest<Bytes> {
    let tcp = TcpStream::connect(addr).await.unwrap();
    let (client, conn) = h2::client::Builder::new()
        .initial_window_size(window)
        .initial_connection_window_size(2 * window)
        .handshake(tcp)
        .await
        .unwrap();
    tokio::spawn(async move {
        let _ = conn.await;
    });
    client
}

/// Sends `body` (in 16 KiB pieces, as the server's window allows) and reads the whole response,
/// giving window back as it reads.
async fn exchange(client: SendRequest<Bytes>, method: Method, uri: String, body: Vec<u8>) -> (u16, Vec<u8>) {
    let mut client = client.ready().await.unwrap();
    let req = Request::builder().method(method).uri(uri).body(()).unwrap();
    let (resp, mut send) = client.send_request(req, body.is_empty()).unwrap();
    let upload = async move {
        let mut rest = Bytes::from(body);
        while !rest.is_empty() {
            send.reserve_capacity(rest.len().min(16 * 1024));
            let n = std::future::poll_fn(|cx| send.poll_capacity(cx)).await.unwrap().unwrap();
            let piece = rest.split_to(n.min(rest.len()));
            send.send_data(piece, rest.is_empty()).unwrap();
        }
    };
    let download = async move {
        let (parts, mut body) = resp.await.unwrap().into_parts();
        let mut out = Vec::new();
        while let Some(d) = body.data().await {
            let d = d.unwrap();
            let _ = body.flow_control().release_capacity(d.len());
            out.extend_from_slice(&d);
        }
        (parts.status.as_u16(), out)
    };
    let ((), r) = tokio::join!(upload, download);
    r
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_bodies_both_ways_on_ten_streams_under_small_windows() {
    let origin = Origin::start().await;
    let p = Proxy::start(To { origin: origin.addr });
    let client = small_window_client(p.addr, 8 * 1024).await;
    let mut tasks = Vec::new();
    for i in 0..10usize {
        let c = client.clone();
        tasks.push(tokio::spawn(async move {
            if i % 2 == 0 {
                // Larger than our 256 KiB stream window: the upload needs our WINDOW_UPDATEs.
                let body: Vec<u8> = (0..300_000 + i).map(|n| (n % 251) as u8).collect();
                let (status, echoed) =
                    exchange(c, Method::POST, "http://a.test/echo".into(), body.clone()).await;
                assert_eq!(status, 200);
                assert!(echoed.ends_with(&body), "stream {i}: upload changed on the way");
            } else {
                let n = 2_000_000 + i;
                let (status, got) =
                    exchange(c, Method::GET, format!("http://a.test/big/{n}"), Vec::new()).await;
                assert_eq!(status, 200);
                assert_eq!(got.len(), n, "stream {i}");
                assert!(got == big_body(n), "stream {i}: download changed on the way");
            }
        }));
    }
    for t in tasks {
        within(60, t).await.unwrap();
    }
    // The connection is still good for more.
    let (status, _) = within(5, exchange(client, Method::GET, "http://a.test/echo".into(), Vec::new())).await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn a_response_head_larger_than_a_frame_goes_out_with_continuation() {
    let origin = Origin::start().await;
    let p = Proxy::start(To { origin: origin.addr });
    let tcp = TcpStream::connect(p.addr).await.unwrap();
    let (client, conn) = h2::client::handshake(tcp).await.unwrap();
    tokio::spawn(async move {
        let _ = conn.await;
    });
    let mut client = client.ready().await.unwrap();
    let req = Request::builder().uri("http://a.test/status/200?big").body(()).unwrap();
    let (resp, _) = client.send_request(req, true).unwrap();
    let resp = within(5, resp).await.unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["x-big"].len(), BIG_FIELD);
    let mut body = resp.into_body();
    let mut text = Vec::new();
    while let Some(d) = within(5, body.data()).await {
        text.extend_from_slice(&d.unwrap());
    }
    assert_eq!(text, b"status 200\n");
}

#[tokio::test]
async fn a_client_that_grants_no_window_is_given_up_after_the_write_timeout() {
    let origin = Origin::start().await;
    let mut app = proxy::proxy::HttpProxy::new(To { origin: origin.addr });
    app.server_options_mut().write_timeout = std::time::Duration::from_millis(300);
    let p = Proxy::start_with(app, |_| {});
    // A window of 0: not one byte of body may be sent until the client says so, which it never does.
    let client = small_window_client(p.addr, 0).await;
    let mut client = client.ready().await.unwrap();
    let req = Request::builder().uri("http://a.test/big/100000").body(()).unwrap();
    let (resp, _) = client.send_request(req, true).unwrap();
    let resp = within(5, resp).await.unwrap();
    assert_eq!(resp.status(), 200);
    let mut body = resp.into_body();
    let end = within(5, body.data()).await;
    assert!(matches!(end, Some(Err(_))), "the stream should be reset, got {end:?}");
}
