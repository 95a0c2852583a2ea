//! A scriptable HTTP/1.1 origin server; behaviour is chosen by request path (query ignored):
//!
//! | path | behaviour |
//! |---|---|
//! | `/echo`, anything unknown | 200, body = request dump (see below) |
//! | `/status/NNN` | status NNN (200..=599), body `status NNN\n` (none for 204/304) |
//! | `/hang` | reads the request, never answers, keeps the socket open |
//! | `/delay/MS` | 200 `ok` after MS milliseconds |
//! | `/truncate-cl` | `Content-Length: 100`, 10 bytes `0123456789`, close |
//! | `/truncate-chunked` | chunked `hello` + ` world`, close without the last chunk |
//! | `/chunked` | chunked `hello chunked world` in 4 chunks |
//! | `/trailers` | like `/chunked` plus trailers `x-trailer-a: 1`, `x-checksum: abc` |
//! | `/continue` | sends `100 Continue` if asked, then 200 echoing the body |
//! | `/reject-expect` | with `Expect: 100-continue`: 417 at once, body unread, close |
//! | `/big/N` | 200, N bytes of [`big_body`], written in 16 KiB pieces |
//! | `/ws` | WebSocket 101, then echoes raw bytes until EOF |
//! | `/no-101-upgrade` | 200 `no` although an upgrade was requested |
//! | `/close` | 200 `closing` with `Connection: close`, then close |
//! | `/gen/N` | N bytes of text shaped by `x-gen-*` request fields (see [`super::gen`]) |
//! | `/cache/...` | a response shaped by the request (see [`cache_response`]), for the cache tests |
//! | `/gated/...` | like `/cache/...`, answered only once [`Origin::open_gate`] was called |
//!
//! The echo dump is `METHOD TARGET VERSION\n`, one `name: value\n` per header as received (name
//! lowercased), `\n`, the decoded body, then one `trailer name: value\n` per request trailer.
//! Every response carries `x-origin-conn: <serial>` (1-based accept order) so tests can tell which
//! upstream connection served a request. HEAD gets the same headers without a body.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, UnixListener};
use tokio::task::{JoinHandle, JoinSet};

use super::wire::{self, BufIo, Framing};

const MAX_HEAD: usize = 1024 * 1024;

#[derive(Default)]
struct State {
    accepts: AtomicUsize,
    requests: AtomicUsize,
    closes: AtomicUsize,
    received: Mutex<Vec<Vec<u8>>>,
    gate_open: std::sync::atomic::AtomicBool,
    gate: tokio::sync::Notify,
}

pub struct Origin {
    /// Listening address; `0.0.0.0:0` for a Unix-socket origin.
    pub addr: SocketAddr,
    pub unix_path: Option<PathBuf>,
    state: Arc<State>,
    accept_task: JoinHandle<()>,
}

impl Origin {
    /// Starts an origin on 127.0.0.1 with an ephemeral port.
    pub async fn start() -> Origin {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind origin");
        let addr = listener.local_addr().unwrap();
        let state = Arc::new(State::default());
        let st = state.clone();
        let accept_task = tokio::spawn(async move {
            // The JoinSet lives inside the accept task so aborting that one task (on drop) also
            // drops the set, which aborts every connection task.
            let mut conns = JoinSet::new();
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    // Transient (e.g. EMFILE); returning would drop and abort live connections.
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                };
                let _ = stream.set_nodelay(true);
                let serial = st.accepts.fetch_add(1, Ordering::SeqCst) + 1;
                conns.spawn(serve_counting_close(stream, serial, st.clone()));
                while conns.try_join_next().is_some() {}
            }
        });
        Origin { addr, unix_path: None, state, accept_task }
    }

    /// Starts an origin listening on a Unix-domain socket at `path` (replacing any stale file).
    pub async fn start_unix(path: impl AsRef<Path>) -> Origin {
        let path = path.as_ref().to_path_buf();
        let _ = std::fs::remove_file(&path);
        let listener = UnixListener::bind(&path).expect("bind unix origin");
        let state = Arc::new(State::default());
        let st = state.clone();
        let accept_task = tokio::spawn(async move {
            let mut conns = JoinSet::new();
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                };
                let serial = st.accepts.fetch_add(1, Ordering::SeqCst) + 1;
                conns.spawn(serve_counting_close(stream, serial, st.clone()));
                while conns.try_join_next().is_some() {}
            }
        });
        Origin { addr: SocketAddr::from(([0, 0, 0, 0], 0)), unix_path: Some(path), state, accept_task }
    }

    /// Connections accepted so far.
    pub fn accepts(&self) -> usize {
        self.state.accepts.load(Ordering::SeqCst)
    }

    /// Connections this origin has finished with (closed its end, or seen the peer close).
    pub fn closes(&self) -> usize {
        self.state.closes.load(Ordering::SeqCst)
    }

    /// Requests whose head and body were completely received.
    pub fn requests(&self) -> usize {
        self.state.requests.load(Ordering::SeqCst)
    }

    /// Raw wire bytes (head + body as framed on the wire) of every request, in arrival order.
    ///
    /// Partial requests (peer closed mid-head or mid-body) are included too, so "nothing reached
    /// the origin" is `received().is_empty()`. For `/reject-expect` the entry is the head plus
    /// whatever arrived while the connection was being closed.
    pub fn received(&self) -> Vec<Vec<u8>> {
        self.state.received.lock().unwrap().clone()
    }

    /// Lets every `/gated/...` request (waiting or to come) be answered.
    pub fn open_gate(&self) {
        self.state.gate_open.store(true, Ordering::SeqCst);
        self.state.gate.notify_waiters();
    }

    /// Complete requests whose target starts with `prefix`.
    pub fn requests_to(&self, prefix: &str) -> usize {
        let line =
            |r: &Vec<u8>| r.split(|&b| b == b' ').nth(1).is_some_and(|t| t.starts_with(prefix.as_bytes()));
        self.received().iter().filter(|r| line(r)).count()
    }

    /// `received()` as lossy UTF-8 strings, for readable assertions.
    pub fn received_text(&self) -> Vec<String> {
        self.received().iter().map(|r| String::from_utf8_lossy(r).into_owned()).collect()
    }
}

impl Drop for Origin {
    fn drop(&mut self) {
        self.accept_task.abort();
        if let Some(path) = &self.unix_path {
            let _ = std::fs::remove_file(path);
        }
    }
}

/// An address on which nothing listens, so connecting is refused.
pub async fn refused_addr() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    listener.local_addr().unwrap()
}

/// A listener whose accept queue is full and never drained, so new connects hang in SYN_SENT:
/// the loopback way to exercise connect timeouts.
///
/// Linux drops SYNs to a listener with a full accept queue; a backlog of 0 still admits one queued
/// connection, so filler connections are made (and leaked for the life of the process) until a
/// connect stalls. Keep the returned listener alive for as long as the address must stay a black
/// hole.
pub fn blackhole_listener() -> (std::net::TcpListener, SocketAddr) {
    use socket2::{Domain, Socket, Type};
    let socket = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
    socket.bind(&SocketAddr::from(([127, 0, 0, 1], 0)).into()).unwrap();
    socket.listen(0).unwrap();
    let listener: std::net::TcpListener = socket.into();
    let addr = listener.local_addr().unwrap();
    for _ in 0..8 {
        match std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(200)) {
            Ok(filler) => std::mem::forget(filler),
            Err(_) => return (listener, addr),
        }
    }
    panic!(
        "could not fill the accept queue of {addr}: this kernel completes every loopback connect \
         to a full accept queue, so no connect timeout can be produced"
    );
}

struct Request {
    method: String,
    target: String,
    version: String,
    /// Path without query, absolute-form prefix removed.
    path: String,
    headers: Vec<(String, String)>,
}

fn parse_request(head: &[u8]) -> Option<Request> {
    let (start, headers) = wire::parse_head(head).ok()?;
    let mut parts = start.split(' ');
    let (method, target, version) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() || method.is_empty() || !version.starts_with("HTTP/1.") {
        return None;
    }
    let mut path = target;
    if let Some(rest) = path.strip_prefix("http://").or_else(|| path.strip_prefix("https://")) {
        path = rest.find('/').map_or("/", |i| &rest[i..]);
    }
    let path = path.split('?').next().unwrap_or("/").to_string();
    Some(Request {
        method: method.to_string(),
        target: target.to_string(),
        version: version.to_string(),
        path,
        headers,
    })
}

/// What the connection loop does after a route has answered.
enum Next {
    KeepAlive,
    Close,
    /// Leave the connection open, unanswered, until the origin is dropped.
    Hang,
    /// The route consumed the connection (upgrade).
    Done,
}

async fn serve_counting_close<S: AsyncRead + AsyncWrite + Unpin>(
    stream: S,
    serial: usize,
    state: Arc<State>,
) {
    serve(stream, serial, state.clone()).await;
    // `serve` has dropped the stream: the socket is closed when this is counted.
    state.closes.fetch_add(1, Ordering::SeqCst);
}

async fn serve<S: AsyncRead + AsyncWrite + Unpin>(stream: S, serial: usize, state: Arc<State>) {
    let mut io = BufIo::new(stream, None);
    let record = |bytes: Vec<u8>| state.received.lock().unwrap().push(bytes);
    loop {
        let head = match io.read_head(MAX_HEAD).await {
            Ok(Some(head)) => head,
            Ok(None) => return,
            Err(_) => {
                if !io.buf.is_empty() {
                    record(std::mem::take(&mut io.buf));
                }
                return;
            }
        };
        let Some(req) = parse_request(&head) else {
            record(head);
            let _ = io.stream.write_all(&response(400, &[], b"bad request\n", serial, true, false)).await;
            return;
        };
        let mut raw = head;
        let expects_continue = wire::has_token(&req.headers, "expect", "100-continue");

        if req.path == "/reject-expect" && expects_continue {
            let _ = io.stream.write_all(&response(417, &[], b"", serial, true, false)).await;
            // Lingering close: closing with unread bytes makes the kernel send RST, which could
            // destroy the 417 before the proxy reads it.
            let _ = io.stream.shutdown().await;
            let drain = async {
                let mut scratch = [0u8; 4096];
                loop {
                    match io.stream.read(&mut scratch).await {
                        Ok(0) | Err(_) => break,
                        Ok(n) => raw.extend_from_slice(&scratch[..n]),
                    }
                }
            };
            let _ = tokio::time::timeout(Duration::from_secs(1), drain).await;
            raw.extend_from_slice(&io.buf);
            record(raw);
            state.requests.fetch_add(1, Ordering::SeqCst);
            return;
        }
        if req.path == "/continue"
            && expects_continue
            && io.stream.write_all(b"HTTP/1.1 100 Continue\r\n\r\n").await.is_err()
        {
            record(raw);
            return;
        }

        let body = match wire::framing(&req.headers, Framing::None) {
            // A request cannot be close-delimited (RFC 9112 section 6.3).
            Ok(Framing::UntilClose) => Err(wire::invalid("transfer-encoding without chunked")),
            Ok(framing) => io.read_body(framing).await,
            Err(e) => Err(e),
        };
        let body = match body {
            Ok(body) => body,
            Err(_) => {
                record(raw);
                let _ = io.stream.write_all(&response(400, &[], b"bad body\n", serial, true, false)).await;
                return;
            }
        };
        raw.extend_from_slice(&body.raw);
        record(raw);
        if !body.complete {
            return;
        }
        state.requests.fetch_add(1, Ordering::SeqCst);

        if req.path.starts_with("/gated/") {
            loop {
                let opened = state.gate.notified();
                tokio::pin!(opened);
                opened.as_mut().enable();
                if state.gate_open.load(Ordering::SeqCst) {
                    break;
                }
                opened.await;
            }
        }
        let close = wants_close(&req);
        let next = route(&mut io, &req, &body, serial, close).await.unwrap_or(Next::Close);
        match next {
            Next::KeepAlive => continue,
            Next::Close => {
                let _ = io.stream.shutdown().await;
                return;
            }
            Next::Hang => std::future::pending::<()>().await,
            Next::Done => return,
        }
    }
}

fn wants_close(req: &Request) -> bool {
    if req.version == "HTTP/1.0" {
        !wire::has_token(&req.headers, "connection", "keep-alive")
    } else {
        wire::has_token(&req.headers, "connection", "close")
    }
}

fn reason(status: u16) -> &'static str {
    match status {
        100 => "Continue",
        101 => "Switching Protocols",
        200 => "OK",
        201 => "Created",
        204 => "No Content",
        206 => "Partial Content",
        301 => "Moved Permanently",
        302 => "Found",
        304 => "Not Modified",
        400 => "Bad Request",
        403 => "Forbidden",
        404 => "Not Found",
        417 => "Expectation Failed",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        _ => "Status",
    }
}

/// A complete Content-Length response (no body or length for 1xx/204/304).
fn response(
    status: u16,
    headers: &[(&str, &str)],
    body: &[u8],
    serial: usize,
    close: bool,
    head_request: bool,
) -> Vec<u8> {
    let mut out = format!("HTTP/1.1 {status} {}\r\n", reason(status)).into_bytes();
    for (name, value) in headers {
        out.extend_from_slice(format!("{name}: {value}\r\n").as_bytes());
    }
    let bodyless = (100..200).contains(&status) || status == 204 || status == 304;
    if !bodyless {
        out.extend_from_slice(format!("Content-Length: {}\r\n", body.len()).as_bytes());
    }
    out.extend_from_slice(format!("x-origin-conn: {serial}\r\n").as_bytes());
    if close {
        out.extend_from_slice(b"Connection: close\r\n");
    }
    out.extend_from_slice(b"\r\n");
    if !bodyless && !head_request {
        out.extend_from_slice(body);
    }
    out
}

fn echo_dump(req: &Request, body: &wire::Body) -> Vec<u8> {
    let mut out = format!("{} {} {}\n", req.method, req.target, req.version).into_bytes();
    for (name, value) in &req.headers {
        out.extend_from_slice(format!("{}: {value}\n", name.to_ascii_lowercase()).as_bytes());
    }
    out.push(b'\n');
    out.extend_from_slice(&body.data);
    for (name, value) in &body.trailers {
        out.extend_from_slice(format!("trailer {}: {value}\n", name.to_ascii_lowercase()).as_bytes());
    }
    out
}

async fn route<S: AsyncRead + AsyncWrite + Unpin>(
    io: &mut BufIo<S>,
    req: &Request,
    body: &wire::Body,
    serial: usize,
    close: bool,
) -> std::io::Result<Next> {
    let head_req = req.method == "HEAD";
    let after = if close { Next::Close } else { Next::KeepAlive };
    let path = req.path.as_str();
    let conn_header = format!("x-origin-conn: {serial}\r\n");
    let close_header = if close { "Connection: close\r\n" } else { "" };

    if let Some(code) = path.strip_prefix("/status/") {
        let status = code.parse::<u16>().ok().filter(|s| (200..600).contains(s));
        let out = match status {
            Some(s) => response(s, &[], format!("status {s}\n").as_bytes(), serial, close, head_req),
            None => response(400, &[], b"bad status\n", serial, close, head_req),
        };
        io.stream.write_all(&out).await?;
        return Ok(after);
    }
    if let Some(n) = path.strip_prefix("/gen/") {
        let n: usize = n.parse().unwrap_or(0);
        super::gen::respond(
            &mut io.stream,
            head_req,
            &req.headers,
            n,
            &format!("{conn_header}{close_header}"),
        )
        .await?;
        return Ok(after);
    }
    if path.starts_with("/cache/") || path.starts_with("/gated/") {
        io.stream.write_all(&cache_response(req, serial, close, head_req)).await?;
        return Ok(after);
    }
    if let Some(ms) = path.strip_prefix("/delay/") {
        let ms: u64 = ms.parse().unwrap_or(0);
        tokio::time::sleep(Duration::from_millis(ms)).await;
        io.stream.write_all(&response(200, &[], b"ok", serial, close, head_req)).await?;
        return Ok(after);
    }
    if let Some(n) = path.strip_prefix("/big/") {
        let n: usize = n.parse().unwrap_or(0);
        let head = format!("HTTP/1.1 200 OK\r\nContent-Length: {n}\r\n{conn_header}{close_header}\r\n");
        io.stream.write_all(head.as_bytes()).await?;
        if !head_req {
            const PIECE: usize = 16 * 1024;
            for start in (0..n).step_by(PIECE) {
                let piece: Vec<u8> = (start..n.min(start + PIECE)).map(big_byte).collect();
                io.stream.write_all(&piece).await?;
            }
        }
        return Ok(after);
    }
    match path {
        "/hang" => Ok(Next::Hang),
        "/truncate-cl" => {
            let head = format!("HTTP/1.1 200 OK\r\nContent-Length: 100\r\n{conn_header}\r\n");
            io.stream.write_all(head.as_bytes()).await?;
            io.stream.write_all(b"0123456789").await?;
            Ok(Next::Close)
        }
        "/truncate-chunked" => {
            let head = format!("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n{conn_header}\r\n");
            io.stream.write_all(head.as_bytes()).await?;
            io.stream.write_all(b"5\r\nhello\r\n").await?;
            io.stream.write_all(b"6\r\n world\r\n").await?;
            Ok(Next::Close)
        }
        "/chunked" | "/trailers" => {
            let trailers = path == "/trailers";
            let mut head =
                format!("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n{conn_header}{close_header}");
            if trailers {
                head.push_str("Trailer: x-trailer-a, x-checksum\r\n");
            }
            head.push_str("\r\n");
            io.stream.write_all(head.as_bytes()).await?;
            if head_req {
                return Ok(after);
            }
            // Separate writes so the proxy is likely to see chunk boundaries across reads.
            for chunk in ["hello", " ", "chunked", " world"] {
                io.stream.write_all(format!("{:x}\r\n{chunk}\r\n", chunk.len()).as_bytes()).await?;
                io.stream.flush().await?;
            }
            if trailers {
                io.stream.write_all(b"0\r\nx-trailer-a: 1\r\nx-checksum: abc\r\n\r\n").await?;
            } else {
                io.stream.write_all(b"0\r\n\r\n").await?;
            }
            Ok(after)
        }
        "/continue" => {
            io.stream.write_all(&response(200, &[], &body.data, serial, close, head_req)).await?;
            Ok(after)
        }
        "/ws" => websocket(io, req, serial).await,
        "/no-101-upgrade" => {
            io.stream.write_all(&response(200, &[], b"no", serial, close, head_req)).await?;
            Ok(after)
        }
        "/close" => {
            io.stream.write_all(&response(200, &[], b"closing", serial, true, head_req)).await?;
            Ok(Next::Close)
        }
        _ => {
            let dump = echo_dump(req, body);
            let out = response(200, &[("Content-Type", "text/plain")], &dump, serial, close, head_req);
            io.stream.write_all(&out).await?;
            Ok(after)
        }
    }
}

/// A response for the cache tests, shaped by the request: each `x-res-NAME: VALUE` field becomes
/// a `NAME: VALUE` response field, `x-res-status` the status (default 200) and `x-res-body` the
/// body (default `body`). A request whose `If-None-Match` equals the `x-res-etag`, or whose
/// `If-Modified-Since` equals the `x-res-last-modified`, gets a 304 with the same fields.
fn cache_response(req: &Request, serial: usize, close: bool, head_req: bool) -> Vec<u8> {
    let get = |n: &str| wire::values(&req.headers, n).first().map(|v| v.to_string());
    let mut fields = Vec::new();
    for (name, value) in &req.headers {
        let lower = name.to_ascii_lowercase();
        if let Some(field) = lower.strip_prefix("x-res-") {
            if !matches!(field, "status" | "body") {
                fields.push((field.to_string(), value.clone()));
            }
        }
    }
    let matches = |cond: &str, res: &str| get(cond).is_some_and(|c| get(res).is_some_and(|r| c == r));
    let unchanged = matches("if-none-match", "x-res-etag")
        || (get("if-none-match").is_none() && matches("if-modified-since", "x-res-last-modified"));
    let status =
        if unchanged { 304 } else { get("x-res-status").and_then(|s| s.parse().ok()).unwrap_or(200) };
    let body = get("x-res-body").unwrap_or_else(|| "body".to_string());
    let fields: Vec<(&str, &str)> = fields.iter().map(|(n, v)| (n.as_str(), v.as_str())).collect();
    response(status, &fields, body.as_bytes(), serial, close, head_req)
}

async fn websocket<S: AsyncRead + AsyncWrite + Unpin>(
    io: &mut BufIo<S>,
    req: &Request,
    serial: usize,
) -> std::io::Result<Next> {
    let key = wire::values(&req.headers, "sec-websocket-key").first().copied();
    let ok = wire::has_token(&req.headers, "upgrade", "websocket")
        && wire::has_token(&req.headers, "connection", "upgrade");
    let Some(key) = key.filter(|_| ok) else {
        io.stream.write_all(&response(400, &[], b"not a websocket upgrade\n", serial, true, false)).await?;
        return Ok(Next::Close);
    };
    let head = format!(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Accept: {}\r\n{}\r\n",
        websocket_accept(key),
        format_args!("x-origin-conn: {serial}\r\n"),
    );
    io.stream.write_all(head.as_bytes()).await?;
    // Bytes the proxy sent right behind the request head already sit in the buffer.
    let early = std::mem::take(&mut io.buf);
    io.stream.write_all(&early).await?;
    let mut scratch = vec![0u8; 16 * 1024];
    loop {
        let n = io.stream.read(&mut scratch).await?;
        if n == 0 {
            break;
        }
        io.stream.write_all(&scratch[..n]).await?;
    }
    let _ = io.stream.shutdown().await;
    Ok(Next::Done)
}

fn big_byte(i: usize) -> u8 {
    b'a' + (i % 26) as u8
}

/// The body `/big/N` sends: `abcdefghijklmnopqrstuvwxyz` repeated, cut to `n` bytes.
pub fn big_body(n: usize) -> Vec<u8> {
    (0..n).map(big_byte).collect()
}

/// `Sec-WebSocket-Accept` for a client key (RFC 6455 section 4.2.2).
pub fn websocket_accept(key: &str) -> String {
    let mut input = key.trim().as_bytes().to_vec();
    input.extend_from_slice(b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11");
    base64(&sha1(&input))
}

/// SHA-1 (FIPS 180-4); only used for the WebSocket handshake, where it is mandated.
pub fn sha1(data: &[u8]) -> [u8; 20] {
    let mut h: [u32; 5] = [0x67452301, 0xEFCDAB89, 0x98BADCFE, 0x10325476, 0xC3D2E1F0];
    let mut msg = data.to_vec();
    msg.push(0x80);
    while msg.len() % 64 != 56 {
        msg.push(0);
    }
    msg.extend_from_slice(&((data.len() as u64) * 8).to_be_bytes());
    for block in msg.chunks(64) {
        let mut w = [0u32; 80];
        for (i, word) in block.chunks(4).enumerate() {
            w[i] = u32::from_be_bytes([word[0], word[1], word[2], word[3]]);
        }
        for i in 16..80 {
            w[i] = (w[i - 3] ^ w[i - 8] ^ w[i - 14] ^ w[i - 16]).rotate_left(1);
        }
        let [mut a, mut b, mut c, mut d, mut e] = h;
        for (i, wi) in w.iter().enumerate() {
            let (f, k) = match i {
                0..=19 => ((b & c) | (!b & d), 0x5A827999),
                20..=39 => (b ^ c ^ d, 0x6ED9EBA1),
                40..=59 => ((b & c) | (b & d) | (c & d), 0x8F1BBCDC),
                _ => (b ^ c ^ d, 0xCA62C1D6),
            };
            let t = a.rotate_left(5).wrapping_add(f).wrapping_add(e).wrapping_add(k).wrapping_add(*wi);
            e = d;
            d = c;
            c = b.rotate_left(30);
            b = a;
            a = t;
        }
        for (hi, v) in h.iter_mut().zip([a, b, c, d, e]) {
            *hi = hi.wrapping_add(v);
        }
    }
    let mut out = [0u8; 20];
    for (i, v) in h.iter().enumerate() {
        out[i * 4..i * 4 + 4].copy_from_slice(&v.to_be_bytes());
    }
    out
}

/// Standard base64 with padding (RFC 4648 section 4).
pub fn base64(data: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for group in data.chunks(3) {
        let b = [group[0], *group.get(1).unwrap_or(&0), *group.get(2).unwrap_or(&0)];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= group.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i)) as usize & 63] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}
