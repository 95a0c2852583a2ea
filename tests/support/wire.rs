//! HTTP/1.1 framing shared by the test origin and the test client: a buffered reader over any
//! byte stream plus head, field and body parsing.

use std::io;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt};

/// A decoded message body together with the exact bytes that carried it.
#[derive(Debug, Default, Clone)]
pub struct Body {
    pub data: Vec<u8>,
    pub trailers: Vec<(String, String)>,
    /// Wire bytes consumed for the body (chunk framing included).
    pub raw: Vec<u8>,
    /// False when the peer closed (or reset) before the framing said the body ended.
    pub complete: bool,
}

/// How a message body is delimited (RFC 9112 section 6).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    None,
    Length(usize),
    Chunked,
    UntilClose,
}

pub struct BufIo<S> {
    pub stream: S,
    /// Bytes read from the stream but not yet consumed.
    pub buf: Vec<u8>,
    read_timeout: Option<Duration>,
}

pub fn invalid(msg: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg.into())
}

impl<S: AsyncRead + Unpin> BufIo<S> {
    pub fn new(stream: S, read_timeout: Option<Duration>) -> Self {
        BufIo { stream, buf: Vec::new(), read_timeout }
    }

    /// Reads more bytes into `buf`; returns how many (0 at EOF).
    ///
    /// A reset counts as EOF: proxies often abort a broken exchange with RST, and tests want to
    /// see that as "the body was cut", not as an I/O failure.
    pub async fn fill(&mut self) -> io::Result<usize> {
        let mut chunk = vec![0u8; 16 * 1024];
        let read = self.stream.read(&mut chunk);
        let res = match self.read_timeout {
            Some(t) => tokio::time::timeout(t, read)
                .await
                .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "read timed out"))?,
            None => read.await,
        };
        match res {
            Ok(n) => {
                self.buf.extend_from_slice(&chunk[..n]);
                Ok(n)
            }
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::ConnectionReset
                        | io::ErrorKind::ConnectionAborted
                        | io::ErrorKind::BrokenPipe
                ) =>
            {
                Ok(0)
            }
            Err(e) => Err(e),
        }
    }

    /// Reads a message head through its terminating CRLFCRLF.
    ///
    /// `Ok(None)` means a clean EOF before any byte; EOF mid-head is `UnexpectedEof` and leaves the
    /// partial bytes in `buf` so the caller can still inspect them.
    pub async fn read_head(&mut self, max: usize) -> io::Result<Option<Vec<u8>>> {
        loop {
            if let Some(pos) = find(&self.buf, b"\r\n\r\n") {
                return Ok(Some(self.buf.drain(..pos + 4).collect()));
            }
            if self.buf.len() > max {
                return Err(invalid("message head too large"));
            }
            if self.fill().await? == 0 {
                return if self.buf.is_empty() {
                    Ok(None)
                } else {
                    Err(io::Error::new(io::ErrorKind::UnexpectedEof, "EOF inside message head"))
                };
            }
        }
    }

    /// Reads one line including its LF; `None` if EOF came first (partial bytes are consumed).
    pub async fn read_line(&mut self) -> io::Result<Option<Vec<u8>>> {
        loop {
            if let Some(pos) = self.buf.iter().position(|&b| b == b'\n') {
                return Ok(Some(self.buf.drain(..=pos).collect()));
            }
            if self.buf.len() > 64 * 1024 {
                return Err(invalid("line too long"));
            }
            if self.fill().await? == 0 {
                self.buf.clear();
                return Ok(None);
            }
        }
    }

    /// Takes up to `n` bytes; fewer only if EOF came first.
    pub async fn take(&mut self, n: usize) -> io::Result<Vec<u8>> {
        while self.buf.len() < n {
            if self.fill().await? == 0 {
                break;
            }
        }
        let n = n.min(self.buf.len());
        Ok(self.buf.drain(..n).collect())
    }

    pub async fn read_body(&mut self, framing: Framing) -> io::Result<Body> {
        match framing {
            Framing::None => Ok(Body { complete: true, ..Body::default() }),
            Framing::Length(n) => {
                let data = self.take(n).await?;
                Ok(Body { complete: data.len() == n, raw: data.clone(), data, trailers: Vec::new() })
            }
            Framing::Chunked => self.read_chunked().await,
            Framing::UntilClose => {
                while self.fill().await? > 0 {}
                let data = std::mem::take(&mut self.buf);
                Ok(Body { raw: data.clone(), data, trailers: Vec::new(), complete: true })
            }
        }
    }

    async fn read_chunked(&mut self) -> io::Result<Body> {
        let mut out = Body::default();
        loop {
            let Some(line) = self.read_line().await? else {
                return Ok(out);
            };
            out.raw.extend_from_slice(&line);
            let text = std::str::from_utf8(&line).map_err(|_| invalid("chunk size not UTF-8"))?;
            let size_text = text.trim_end().split(';').next().unwrap_or("").trim();
            let size = usize::from_str_radix(size_text, 16)
                .map_err(|_| invalid(format!("bad chunk size {text:?}")))?;
            if size == 0 {
                loop {
                    let Some(line) = self.read_line().await? else {
                        return Ok(out);
                    };
                    out.raw.extend_from_slice(&line);
                    if line == b"\r\n" || line == b"\n" {
                        out.complete = true;
                        return Ok(out);
                    }
                    out.trailers.push(parse_field(&line)?);
                }
            }
            let data = self.take(size + 2).await?;
            out.raw.extend_from_slice(&data);
            if data.len() < size + 2 {
                out.data.extend_from_slice(&data[..size.min(data.len())]);
                return Ok(out);
            }
            if &data[size..] != b"\r\n" {
                return Err(invalid("chunk data not followed by CRLF"));
            }
            out.data.extend_from_slice(&data[..size]);
        }
    }
}

pub fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

fn parse_field(line: &[u8]) -> io::Result<(String, String)> {
    let text = std::str::from_utf8(line).map_err(|_| invalid("field not UTF-8"))?;
    let text = text.trim_end_matches(['\r', '\n']);
    let (name, value) =
        text.split_once(':').ok_or_else(|| invalid(format!("field without colon: {text:?}")))?;
    if name.is_empty() || name.ends_with([' ', '\t']) {
        return Err(invalid(format!("bad field name in {text:?}")));
    }
    Ok((name.to_string(), value.trim_matches([' ', '\t']).to_string()))
}

/// Splits a head into its start line and fields.
pub fn parse_head(head: &[u8]) -> io::Result<(String, Vec<(String, String)>)> {
    let text = std::str::from_utf8(head).map_err(|_| invalid("head not UTF-8"))?;
    let mut lines = text.split("\r\n");
    let start = lines.next().unwrap_or("").to_string();
    let mut fields = Vec::new();
    for line in lines.filter(|l| !l.is_empty()) {
        fields.push(parse_field(line.as_bytes())?);
    }
    Ok((start, fields))
}

/// All values of `name`, in order.
pub fn values<'a>(fields: &'a [(String, String)], name: &str) -> Vec<&'a str> {
    fields.iter().filter(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str()).collect()
}

/// Whether any comma-separated element of any `name` field equals `token` (case-insensitive).
pub fn has_token(fields: &[(String, String)], name: &str, token: &str) -> bool {
    values(fields, name).iter().flat_map(|v| v.split(',')).any(|t| t.trim().eq_ignore_ascii_case(token))
}

/// Body framing from Transfer-Encoding / Content-Length; `fallback` applies when neither is
/// present (no body for requests, read-until-close for responses).
pub fn framing(fields: &[(String, String)], fallback: Framing) -> io::Result<Framing> {
    let te = values(fields, "transfer-encoding");
    if !te.is_empty() {
        let last = te.iter().flat_map(|v| v.split(',')).map(str::trim).rfind(|t| !t.is_empty()).unwrap_or("");
        return Ok(if last.eq_ignore_ascii_case("chunked") { Framing::Chunked } else { Framing::UntilClose });
    }
    let cl = values(fields, "content-length");
    if cl.is_empty() {
        return Ok(fallback);
    }
    let mut len = None;
    for v in cl.iter().flat_map(|v| v.split(',')) {
        let v = v.trim();
        if v.is_empty() || !v.bytes().all(|b| b.is_ascii_digit()) {
            return Err(invalid(format!("bad content-length {v:?}")));
        }
        let n: usize = v.parse().map_err(|_| invalid("content-length overflow"))?;
        if len.is_some_and(|l| l != n) {
            return Err(invalid("conflicting content-length values"));
        }
        len = Some(n);
    }
    Ok(Framing::Length(len.unwrap_or(0)))
}
