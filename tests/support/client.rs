//! Raw HTTP/1.1 client helpers: byte-exact requests, strict response parsing.

use std::io;
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpStream, UnixStream};

use super::wire::{self, BufIo, Framing};

/// Every read is bounded so a proxy that stalls fails the test instead of hanging it.
pub const READ_TIMEOUT: Duration = Duration::from_secs(10);

/// Connects, writes `bytes`, and returns everything read until EOF (or until 5 s have passed).
///
/// The write side is left open: a half-close could be taken by the proxy as the client leaving.
/// Send `Connection: close` if the exchange should end promptly.
pub async fn send_raw(addr: SocketAddr, bytes: &[u8]) -> Vec<u8> {
    let mut stream = TcpStream::connect(addr).await.expect("connect");
    stream.write_all(bytes).await.expect("write request");
    let mut out = Vec::new();
    let read_all = async {
        let mut scratch = [0u8; 16 * 1024];
        loop {
            match stream.read(&mut scratch).await {
                Ok(0) | Err(_) => break,
                Ok(n) => out.extend_from_slice(&scratch[..n]),
            }
        }
    };
    let _ = tokio::time::timeout(Duration::from_secs(5), read_all).await;
    out
}

#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    /// `HTTP/1.1`, `HTTP/1.0`.
    pub version: String,
    pub reason: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    pub trailers: Vec<(String, String)>,
    /// False when the connection ended before the framing said the body was done.
    pub complete: bool,
}

impl Response {
    /// First value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        wire::values(&self.headers, name).first().copied()
    }

    /// All values of header `name`, in order.
    pub fn header_all(&self, name: &str) -> Vec<&str> {
        wire::values(&self.headers, name)
    }

    pub fn trailer(&self, name: &str) -> Option<&str> {
        wire::values(&self.trailers, name).first().copied()
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

pub trait AsyncStream: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> AsyncStream for T {}

/// One client connection, reused for as many requests as the peer allows.
pub struct Conn {
    io: BufIo<Box<dyn AsyncStream>>,
}

impl Conn {
    pub async fn connect(addr: SocketAddr) -> io::Result<Conn> {
        let stream = TcpStream::connect(addr).await?;
        stream.set_nodelay(true)?;
        Ok(Conn::from_stream(Box::new(stream)))
    }

    pub async fn connect_unix(path: impl AsRef<Path>) -> io::Result<Conn> {
        let stream = UnixStream::connect(path).await?;
        Ok(Conn::from_stream(Box::new(stream)))
    }

    pub fn from_stream(stream: Box<dyn AsyncStream>) -> Conn {
        Conn { io: BufIo::new(stream, Some(READ_TIMEOUT)) }
    }

    pub async fn send(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.io.stream.write_all(bytes).await?;
        self.io.stream.flush().await
    }

    /// Reads one response; a 1xx interim response is returned on its own, so call again for the
    /// final one.
    pub async fn read_response(&mut self) -> io::Result<Response> {
        self.read_response_with(false).await
    }

    /// Reads the response to a HEAD request (headers only, whatever Content-Length says).
    pub async fn read_response_for_head(&mut self) -> io::Result<Response> {
        self.read_response_with(true).await
    }

    pub async fn read_response_with(&mut self, head_request: bool) -> io::Result<Response> {
        let head = self.io.read_head(1024 * 1024).await?.ok_or_else(|| {
            io::Error::new(io::ErrorKind::UnexpectedEof, "connection closed before a response")
        })?;
        let (start, headers) = wire::parse_head(&head)?;
        let mut parts = start.splitn(3, ' ');
        let version = parts.next().unwrap_or("").to_string();
        if !version.starts_with("HTTP/1.") {
            return Err(wire::invalid(format!("bad status line {start:?}")));
        }
        let status: u16 = parts
            .next()
            .and_then(|s| s.parse().ok())
            .filter(|s| (100..1000).contains(s))
            .ok_or_else(|| wire::invalid(format!("bad status line {start:?}")))?;
        let reason = parts.next().unwrap_or("").to_string();
        // RFC 9112 section 6.3: these never carry a body, whatever their headers claim.
        let framing = if head_request || (100..200).contains(&status) || status == 204 || status == 304 {
            Framing::None
        } else {
            wire::framing(&headers, Framing::UntilClose)?
        };
        let body = self.io.read_body(framing).await?;
        Ok(Response {
            status,
            version,
            reason,
            headers,
            body: body.data,
            trailers: body.trailers,
            complete: body.complete,
        })
    }

    /// Sends a request built by [`build_request`] and reads the final response (skipping 1xx).
    ///
    /// Panics on I/O errors: this is the happy-path convenience; use `send` + `read_response`
    /// to observe failures.
    pub async fn request(
        &mut self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Response {
        let req = build_request(method, path, headers, body);
        self.send(&req).await.expect("send request");
        loop {
            let resp = self
                .read_response_with(method.eq_ignore_ascii_case("HEAD"))
                .await
                .unwrap_or_else(|e| panic!("{method} {path}: reading response: {e}"));
            if !(100..200).contains(&resp.status) || resp.status == 101 {
                return resp;
            }
        }
    }

    /// Reads whatever arrives next (buffered bytes first); empty at EOF.
    pub async fn read_some(&mut self) -> io::Result<Vec<u8>> {
        if self.io.buf.is_empty() {
            self.io.fill().await?;
        }
        Ok(std::mem::take(&mut self.io.buf))
    }

    /// Reads exactly `n` bytes, or fails with `UnexpectedEof`.
    pub async fn read_exact(&mut self, n: usize) -> io::Result<Vec<u8>> {
        let data = self.io.take(n).await?;
        if data.len() < n {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!("got {} of {n} bytes", data.len()),
            ));
        }
        Ok(data)
    }

    /// Reads until the peer closes (each read still bounded by `READ_TIMEOUT`).
    pub async fn read_to_end(&mut self) -> io::Result<Vec<u8>> {
        while self.io.fill().await? > 0 {}
        Ok(std::mem::take(&mut self.io.buf))
    }

    /// Whether the peer closes the connection within `within` without sending anything more.
    pub async fn closed_within(&mut self, within: Duration) -> bool {
        if !self.io.buf.is_empty() {
            return false;
        }
        matches!(tokio::time::timeout(within, self.io.fill()).await, Ok(Ok(0)) | Ok(Err(_)))
    }

    pub async fn shutdown_write(&mut self) -> io::Result<()> {
        self.io.stream.shutdown().await
    }
}

/// A valid HTTP/1.1 request with `Host: localhost` (unless given) and a Content-Length when there is
/// a body (unless Content-Length or Transfer-Encoding is given, in which case `body` is sent as is).
pub fn build_request(method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) -> Vec<u8> {
    let has = |name: &str| headers.iter().any(|(n, _)| n.eq_ignore_ascii_case(name));
    let mut out = format!("{method} {path} HTTP/1.1\r\n").into_bytes();
    if !has("host") {
        out.extend_from_slice(b"Host: localhost\r\n");
    }
    for (name, value) in headers {
        out.extend_from_slice(format!("{name}: {value}\r\n").as_bytes());
    }
    let wants_length = !body.is_empty() || matches!(method, "POST" | "PUT" | "PATCH");
    if wants_length && !has("content-length") && !has("transfer-encoding") {
        out.extend_from_slice(format!("Content-Length: {}\r\n", body.len()).as_bytes());
    }
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(body);
    out
}

/// Chunked encoding of `chunks` followed by `trailers`, for hand-built request bodies.
pub fn chunked_body(chunks: &[&[u8]], trailers: &[(&str, &str)]) -> Vec<u8> {
    let mut out = Vec::new();
    for chunk in chunks.iter().filter(|c| !c.is_empty()) {
        out.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
        out.extend_from_slice(chunk);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"0\r\n");
    for (name, value) in trailers {
        out.extend_from_slice(format!("{name}: {value}\r\n").as_bytes());
    }
    out.extend_from_slice(b"\r\n");
    out
}

/// One GET on a fresh connection; the connection is dropped afterwards.
pub async fn get(addr: SocketAddr, path: &str) -> Response {
    let mut conn = Conn::connect(addr).await.unwrap_or_else(|e| panic!("connect {addr}: {e}"));
    conn.request("GET", path, &[], b"").await
}
