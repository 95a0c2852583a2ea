//! A scriptable h2c origin (HTTP/2 with prior knowledge) on the `h2` crate's server. Routes by
//! path (query ignored):
//!
//! | path | behaviour |
//! |---|---|
//! | `/echo`, anything unknown | 200, body = request dump (see below) |
//! | `/trailers` | 200, body `hello trailers`, then trailers `x-trailer-a: 1`, `x-checksum: abc` |
//! | `/grpc...` | gRPC: `/grpc/stream...` answers 5 messages `reply i to <msg>`, anything else one message `hello <msg>`; trailers `grpc-status: 0`, `grpc-message: ok` |
//! | `/hang` | reads the request head, never answers; records when the stream is reset |
//! | `/delay/MS` | 200 `ok` after MS milliseconds |
//! | `/status/NNN` | status NNN, body `status NNN\n` |
//!
//! The echo dump is `METHOD URI HTTP/2\n`, one `name: value\n` per header (h2 lowercases names),
//! `\n`, the body, then one `trailer name: value\n` per request trailer. Every request is also
//! recorded (see [`H2Origin::requests`]). Responses carry `x-origin-conn: <serial>`.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::{Buf, BufMut, Bytes, BytesMut};
use h2::server::SendResponse;
use h2::RecvStream;
use http::{HeaderMap, HeaderValue, Request, Response, StatusCode};
use tokio::net::TcpListener;
use tokio::task::{JoinHandle, JoinSet};

/// One request as the origin received it.
#[derive(Debug, Clone)]
pub struct H2Request {
    pub method: String,
    pub uri: String,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
    pub trailers: Option<HeaderMap>,
    /// Accept serial of the connection that carried it.
    pub conn: usize,
}

#[derive(Default)]
struct State {
    accepts: AtomicUsize,
    streams: AtomicUsize,
    requests: Mutex<Vec<H2Request>>,
    /// When each `/hang` stream arrived.
    hang_started: Mutex<Vec<Instant>>,
    /// When each `/hang` stream was reset by the peer (or its connection went away).
    hang_reset: Mutex<Vec<Instant>>,
}

pub struct H2Origin {
    pub addr: SocketAddr,
    state: Arc<State>,
    accept_task: JoinHandle<()>,
}

impl H2Origin {
    /// Starts an h2c origin on 127.0.0.1 with an ephemeral port.
    pub async fn start() -> H2Origin {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind h2 origin");
        let addr = listener.local_addr().unwrap();
        let state = Arc::new(State::default());
        let st = state.clone();
        let accept_task = tokio::spawn(async move {
            let mut conns = JoinSet::new();
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                };
                let _ = stream.set_nodelay(true);
                let serial = st.accepts.fetch_add(1, Ordering::SeqCst) + 1;
                conns.spawn(serve_conn(stream, serial, st.clone()));
                while conns.try_join_next().is_some() {}
            }
        });
        H2Origin { addr, state, accept_task }
    }

    /// Connections accepted so far.
    pub fn accepts(&self) -> usize {
        self.state.accepts.load(Ordering::SeqCst)
    }

    /// Streams (requests) accepted so far, counted when their head arrives.
    pub fn streams(&self) -> usize {
        self.state.streams.load(Ordering::SeqCst)
    }

    /// Requests received completely (head, body, trailers), in completion order. `/hang` requests
    /// are recorded when their head arrives (body empty).
    pub fn requests(&self) -> Vec<H2Request> {
        self.state.requests.lock().unwrap().clone()
    }

    /// Arrival times of `/hang` streams.
    pub fn hang_started(&self) -> Vec<Instant> {
        self.state.hang_started.lock().unwrap().clone()
    }

    /// Times at which `/hang` streams were reset by the peer.
    pub fn hang_resets(&self) -> Vec<Instant> {
        self.state.hang_reset.lock().unwrap().clone()
    }
}

impl Drop for H2Origin {
    fn drop(&mut self) {
        self.accept_task.abort();
    }
}

async fn serve_conn(stream: tokio::net::TcpStream, serial: usize, state: Arc<State>) {
    let mut builder = h2::server::Builder::new();
    builder.max_concurrent_streams(1000);
    let Ok(mut conn) = builder.handshake::<_, Bytes>(stream).await else { return };
    // Stream tasks live in this set so dropping the connection task (origin dropped) ends them.
    let mut streams = JoinSet::new();
    while let Some(r) = conn.accept().await {
        let Ok((req, respond)) = r else { break };
        state.streams.fetch_add(1, Ordering::SeqCst);
        streams.spawn(serve_stream(req, respond, serial, state.clone()));
        while streams.try_join_next().is_some() {}
    }
    // Let in-flight streams finish (the connection is closing anyway).
    while streams.join_next().await.is_some() {}
}

/// Reads the whole body and the trailers, releasing flow-control capacity as it goes.
async fn read_body(body: &mut RecvStream) -> Result<(Vec<u8>, Option<HeaderMap>), h2::Error> {
    let mut out = Vec::new();
    while let Some(d) = body.data().await {
        let d = d?;
        let _ = body.flow_control().release_capacity(d.len());
        out.extend_from_slice(&d);
    }
    let trailers = body.trailers().await?;
    Ok((out, trailers))
}

fn head(status: u16, serial: usize, content_type: &str) -> Response<()> {
    let mut r = Response::new(());
    *r.status_mut() = StatusCode::from_u16(status).unwrap();
    r.headers_mut().insert("x-origin-conn", HeaderValue::from(serial));
    r.headers_mut().insert("content-type", HeaderValue::from_str(content_type).unwrap());
    r
}

fn send_full(respond: &mut SendResponse<Bytes>, resp: Response<()>, body: Vec<u8>) {
    if body.is_empty() {
        let _ = respond.send_response(resp, true);
        return;
    }
    if let Ok(mut s) = respond.send_response(resp, false) {
        let _ = s.send_data(Bytes::from(body), true);
    }
}

async fn serve_stream(
    req: Request<RecvStream>,
    mut respond: SendResponse<Bytes>,
    serial: usize,
    state: Arc<State>,
) {
    let (parts, mut body) = req.into_parts();
    let path = parts.uri.path().to_string();
    let record = |body: Vec<u8>, trailers: Option<HeaderMap>| {
        state.requests.lock().unwrap().push(H2Request {
            method: parts.method.to_string(),
            uri: parts.uri.to_string(),
            headers: parts.headers.clone(),
            body,
            trailers,
            conn: serial,
        });
    };

    if path == "/hang" {
        record(Vec::new(), None);
        state.hang_started.lock().unwrap().push(Instant::now());
        // Keep the body stream alive (dropping it would not reset, but keep it tidy) and wait for
        // the peer to reset the stream; the connection closing also ends the wait.
        let _keep = body;
        let _ = std::future::poll_fn(|cx| respond.poll_reset(cx)).await;
        state.hang_reset.lock().unwrap().push(Instant::now());
        return;
    }

    let (data, trailers) = match read_body(&mut body).await {
        Ok(x) => x,
        Err(_) => return,
    };
    record(data.clone(), trailers.clone());

    if let Some(ms) = path.strip_prefix("/delay/") {
        let ms: u64 = ms.parse().unwrap_or(0);
        tokio::time::sleep(Duration::from_millis(ms)).await;
        send_full(&mut respond, head(200, serial, "text/plain"), b"ok".to_vec());
        return;
    }
    if let Some(code) = path.strip_prefix("/status/") {
        let code: u16 = code.parse().unwrap_or(500);
        send_full(&mut respond, head(code, serial, "text/plain"), format!("status {code}\n").into_bytes());
        return;
    }
    if path == "/trailers" {
        let Ok(mut s) = respond.send_response(head(200, serial, "text/plain"), false) else { return };
        let _ = s.send_data(Bytes::from_static(b"hello "), false);
        let _ = s.send_data(Bytes::from_static(b"trailers"), false);
        let mut t = HeaderMap::new();
        t.insert("x-trailer-a", HeaderValue::from_static("1"));
        t.insert("x-checksum", HeaderValue::from_static("abc"));
        let _ = s.send_trailers(t);
        return;
    }
    if path.starts_with("/grpc") {
        let msgs = grpc_decode(&data);
        let Some(first) = msgs.first() else {
            let mut r = head(200, serial, "application/grpc");
            r.headers_mut().insert("grpc-status", HeaderValue::from_static("13"));
            r.headers_mut().insert("grpc-message", HeaderValue::from_static("no request message"));
            let _ = respond.send_response(r, true);
            return;
        };
        let first = String::from_utf8_lossy(first).into_owned();
        let Ok(mut s) = respond.send_response(head(200, serial, "application/grpc"), false) else { return };
        if path.starts_with("/grpc/stream") {
            for i in 0..5 {
                let _ = s.send_data(grpc_frame(format!("reply {i} to {first}").as_bytes()), false);
                // Separate DATA frames arriving over time, as a real server-streaming call does.
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        } else {
            let _ = s.send_data(grpc_frame(format!("hello {first}").as_bytes()), false);
        }
        let mut t = HeaderMap::new();
        t.insert("grpc-status", HeaderValue::from_static("0"));
        t.insert("grpc-message", HeaderValue::from_static("ok"));
        let _ = s.send_trailers(t);
        return;
    }

    // Echo.
    let mut out = format!("{} {} HTTP/2\n", parts.method, parts.uri).into_bytes();
    for (n, v) in &parts.headers {
        out.extend_from_slice(n.as_str().as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(v.as_bytes());
        out.push(b'\n');
    }
    out.push(b'\n');
    out.extend_from_slice(&data);
    if let Some(t) = &trailers {
        for (n, v) in t {
            out.extend_from_slice(format!("trailer {}: ", n).as_bytes());
            out.extend_from_slice(v.as_bytes());
            out.push(b'\n');
        }
    }
    send_full(&mut respond, head(200, serial, "text/plain"), out);
}

/// A gRPC length-prefixed message (uncompressed).
pub fn grpc_frame(msg: &[u8]) -> Bytes {
    let mut b = BytesMut::with_capacity(5 + msg.len());
    b.put_u8(0);
    b.put_u32(msg.len() as u32);
    b.put_slice(msg);
    b.freeze()
}

/// Splits a gRPC body into its messages (a truncated tail is ignored).
pub fn grpc_decode(mut data: &[u8]) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    while data.len() >= 5 {
        let len = (&data[1..5]).get_u32() as usize;
        if data.len() < 5 + len {
            break;
        }
        out.push(data[5..5 + len].to_vec());
        data = &data[5 + len..];
    }
    out
}

/// Raw HTTP/2 frames and hand-made HPACK, for tests that must send what no well-behaved client
/// would (the `h2` crate's codec is private and refuses to misbehave anyway).
pub mod raw {
    use std::time::Duration;

    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::tcp::OwnedReadHalf;

    pub const DATA: u8 = 0x0;
    pub const HEADERS: u8 = 0x1;
    pub const RST_STREAM: u8 = 0x3;
    pub const SETTINGS: u8 = 0x4;
    pub const PING: u8 = 0x6;
    pub const GOAWAY: u8 = 0x7;
    pub const WINDOW_UPDATE: u8 = 0x8;
    pub const CONTINUATION: u8 = 0x9;

    pub const END_STREAM: u8 = 0x1;
    pub const ACK: u8 = 0x1;
    pub const END_HEADERS: u8 = 0x4;

    pub const CANCEL: u32 = 0x8;
    pub const ENHANCE_YOUR_CALM: u32 = 0xb;

    pub const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

    /// Appends one frame: 3-byte length, type, flags, 4-byte stream id, payload.
    pub fn frame_into(out: &mut Vec<u8>, ty: u8, flags: u8, stream: u32, payload: &[u8]) {
        let len = payload.len() as u32;
        assert!(len < 1 << 24);
        out.extend_from_slice(&len.to_be_bytes()[1..]);
        out.push(ty);
        out.push(flags);
        out.extend_from_slice(&(stream & 0x7fff_ffff).to_be_bytes());
        out.extend_from_slice(payload);
    }

    pub fn frame(ty: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(9 + payload.len());
        frame_into(&mut out, ty, flags, stream, payload);
        out
    }

    /// Preface plus an empty SETTINGS frame.
    pub fn client_start() -> Vec<u8> {
        let mut out = PREFACE.to_vec();
        frame_into(&mut out, SETTINGS, 0, 0, &[]);
        out
    }

    pub fn rst_stream(stream: u32, code: u32) -> Vec<u8> {
        frame(RST_STREAM, 0, stream, &code.to_be_bytes())
    }

    /// HPACK integer with an `n`-bit prefix; `first` holds the pattern bits above the prefix.
    pub fn hpack_int(out: &mut Vec<u8>, first: u8, n: u32, mut v: usize) {
        let max = (1usize << n) - 1;
        if v < max {
            out.push(first | v as u8);
            return;
        }
        out.push(first | max as u8);
        v -= max;
        while v >= 128 {
            out.push((v % 128) as u8 | 0x80);
            v /= 128;
        }
        out.push(v as u8);
    }

    /// HPACK string literal without Huffman coding.
    pub fn hpack_str(out: &mut Vec<u8>, s: &[u8]) {
        hpack_int(out, 0x00, 7, s.len());
        out.extend_from_slice(s);
    }

    /// Indexed field (static or dynamic table index).
    pub fn hpack_indexed(out: &mut Vec<u8>, index: usize) {
        hpack_int(out, 0x80, 7, index);
    }

    /// Literal with incremental indexing, new name (the entry goes into the dynamic table).
    pub fn hpack_literal_indexing(out: &mut Vec<u8>, name: &[u8], value: &[u8]) {
        out.push(0x40);
        hpack_str(out, name);
        hpack_str(out, value);
    }

    /// Literal without indexing, new name.
    pub fn hpack_literal(out: &mut Vec<u8>, name: &[u8], value: &[u8]) {
        out.push(0x00);
        hpack_str(out, name);
        hpack_str(out, value);
    }

    /// Literal without indexing, name from the static table.
    pub fn hpack_literal_name_idx(out: &mut Vec<u8>, index: usize, value: &[u8]) {
        hpack_int(out, 0x00, 4, index);
        hpack_str(out, value);
    }

    /// A plain `GET path` request block: :method GET, :scheme http, :path, :authority.
    pub fn get_block(path: &str, authority: &str) -> Vec<u8> {
        let mut b = Vec::new();
        hpack_indexed(&mut b, 2); // :method GET
        hpack_indexed(&mut b, 6); // :scheme http
        hpack_literal_name_idx(&mut b, 4, path.as_bytes()); // :path
        hpack_literal_name_idx(&mut b, 1, authority.as_bytes()); // :authority
        b
    }

    /// One received frame.
    #[derive(Debug, Clone)]
    pub struct Frame {
        pub ty: u8,
        pub flags: u8,
        pub stream: u32,
        pub payload: Vec<u8>,
    }

    impl Frame {
        /// GOAWAY: (last stream id, error code).
        pub fn goaway(&self) -> Option<(u32, u32)> {
            if self.ty != GOAWAY || self.payload.len() < 8 {
                return None;
            }
            let last = u32::from_be_bytes(self.payload[0..4].try_into().unwrap()) & 0x7fff_ffff;
            let code = u32::from_be_bytes(self.payload[4..8].try_into().unwrap());
            Some((last, code))
        }

        /// RST_STREAM error code.
        pub fn rst_code(&self) -> Option<u32> {
            (self.ty == RST_STREAM && self.payload.len() == 4)
                .then(|| u32::from_be_bytes(self.payload[..4].try_into().unwrap()))
        }
    }

    /// Reads one frame; `None` on EOF, error or timeout.
    pub async fn read_frame(r: &mut OwnedReadHalf, timeout: Duration) -> Option<Frame> {
        let fut = async {
            let mut h = [0u8; 9];
            r.read_exact(&mut h).await.ok()?;
            let len = u32::from_be_bytes([0, h[0], h[1], h[2]]) as usize;
            let mut payload = vec![0u8; len];
            r.read_exact(&mut payload).await.ok()?;
            let stream = u32::from_be_bytes([h[5], h[6], h[7], h[8]]) & 0x7fff_ffff;
            Some(Frame { ty: h[3], flags: h[4], stream, payload })
        };
        tokio::time::timeout(timeout, fut).await.ok().flatten()
    }

    /// Everything a background reader saw on a raw connection.
    #[derive(Debug, Default, Clone)]
    pub struct Seen {
        pub frames: usize,
        pub goaway: Option<(u32, u32)>,
        pub rst_streams: usize,
        pub headers: usize,
        /// The server closed the connection (EOF or reset).
        pub closed: bool,
    }

    /// Reads frames until EOF (or `limit` elapses), acknowledging nothing, and reports what came.
    pub async fn read_all(mut r: OwnedReadHalf, limit: Duration) -> Seen {
        let mut seen = Seen::default();
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            if left.is_zero() {
                return seen;
            }
            let fut = async {
                let mut h = [0u8; 9];
                r.read_exact(&mut h).await.ok()?;
                let len = u32::from_be_bytes([0, h[0], h[1], h[2]]) as usize;
                let mut payload = vec![0u8; len];
                r.read_exact(&mut payload).await.ok()?;
                Some(Frame { ty: h[3], flags: h[4], stream: 0, payload })
            };
            match tokio::time::timeout(left, fut).await {
                Err(_) => return seen,
                Ok(None) => {
                    seen.closed = true;
                    return seen;
                }
                Ok(Some(f)) => {
                    seen.frames += 1;
                    if let Some(g) = f.goaway() {
                        seen.goaway.get_or_insert(g);
                    }
                    if f.ty == RST_STREAM {
                        seen.rst_streams += 1;
                    }
                    if f.ty == HEADERS {
                        seen.headers += 1;
                    }
                }
            }
        }
    }

    /// Writes `bytes`; false if the peer closed (or the write stalled past `timeout`).
    pub async fn write(w: &mut tokio::net::tcp::OwnedWriteHalf, bytes: &[u8], timeout: Duration) -> bool {
        matches!(tokio::time::timeout(timeout, w.write_all(bytes)).await, Ok(Ok(())))
    }
}
