//! The origin's `/gen/N` route: an N-byte text body whose response is shaped by request fields,
//! for the compression tests. It encodes with the codec crates directly (flate2, brotli, zstd),
//! never through the proxy's code, so that it stays an independent judge.
//!
//! | request field | effect |
//! |---|---|
//! | `x-gen-status: NNN` | the status (default 200) |
//! | `x-gen-type: T` | the Content-Type (default `text/plain`; `none` for none) |
//! | `x-gen-header: name: value` | a response field (repeatable) |
//! | `x-gen-chunked: K` | chunked in K-byte pieces (default: one Content-Length body) |
//! | `x-gen-trailer: name: value` | a trailer (chunked only; repeatable) |
//! | `x-gen-encode: gzip\|br\|zstd` | the body encoded so, with Content-Encoding |
//! | `x-gen-zeros: 1` | N zero bytes instead of text |
//! | `x-gen-hang: 1` | after the first piece, never finish (chunked only) |

use std::io::Write;

use tokio::io::{AsyncWrite, AsyncWriteExt};

/// N bytes of text that compresses like prose: a 64 KiB block of words from a fixed
/// pseudo-random sequence, repeated (built once: the 50 MiB cases would otherwise spend seconds
/// of an unoptimised test build generating text).
pub fn gen_body(n: usize) -> Vec<u8> {
    static BLOCK: std::sync::OnceLock<Vec<u8>> = std::sync::OnceLock::new();
    let block = BLOCK.get_or_init(|| {
        const WORDS: &[&str] = &[
            "proxy", "stream", "header", "body", "chunk", "origin", "client", "gzip", "brotli", "zstd",
            "frame", "window",
        ];
        let mut out = Vec::with_capacity(1 << 17);
        let mut x: u32 = 0x2545_f491;
        while out.len() < 1 << 16 {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            out.extend_from_slice(WORDS[(x % WORDS.len() as u32) as usize].as_bytes());
            out.push(if x % 11 == 0 { b'\n' } else { b' ' });
            if x % 7 == 0 {
                out.extend_from_slice((x % 1000).to_string().as_bytes());
                out.push(b' ');
            }
        }
        out.truncate(1 << 16);
        out
    });
    let mut out = Vec::with_capacity(n);
    while out.len() < n {
        let k = block.len().min(n - out.len());
        out.extend_from_slice(&block[..k]);
    }
    out
}

/// `data` encoded with `coding` (`gzip`, `br` or `zstd`).
pub fn encode(coding: &str, data: &[u8]) -> Vec<u8> {
    match coding {
        "gzip" => {
            let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::new(6));
            e.write_all(data).unwrap();
            e.finish().unwrap()
        }
        "br" => {
            let mut out = Vec::new();
            {
                let mut e = brotli::CompressorWriter::new(&mut out, 4096, 5, 22);
                e.write_all(data).unwrap();
            }
            out
        }
        "zstd" => zstd::bulk::compress(data, 3).unwrap(),
        other => panic!("no coding {other}"),
    }
}

/// `data` decoded from `coding` (`gzip`, `br`, `zstd`, or empty for identity).
pub fn decode(coding: &str, data: &[u8]) -> Vec<u8> {
    use std::io::Read;
    let mut out = Vec::new();
    match coding {
        "" => out.extend_from_slice(data),
        "gzip" => {
            flate2::read::MultiGzDecoder::new(data).read_to_end(&mut out).unwrap();
        }
        "br" => {
            brotli::Decompressor::new(data, 4096).read_to_end(&mut out).unwrap();
        }
        "zstd" => {
            zstd::stream::read::Decoder::new(data).unwrap().read_to_end(&mut out).unwrap();
        }
        other => panic!("no coding {other}"),
    }
    out
}

fn all<'a>(headers: &'a [(String, String)], name: &str) -> impl Iterator<Item = &'a str> {
    let name = name.to_string();
    headers.iter().filter(move |(n, _)| n.eq_ignore_ascii_case(&name)).map(|(_, v)| v.as_str())
}

/// Answers `/gen/N`; whether the connection stays usable.
pub async fn respond<S: AsyncWrite + Unpin>(
    stream: &mut S,
    head_request: bool,
    headers: &[(String, String)],
    n: usize,
    extra: &str,
) -> std::io::Result<bool> {
    let first = |name| all(headers, name).next();
    let status: u16 = first("x-gen-status").and_then(|s| s.parse().ok()).unwrap_or(200);
    let mut body = if first("x-gen-zeros").is_some() { vec![0; n] } else { gen_body(n) };
    let mut head = format!("HTTP/1.1 {status} Gen\r\n{extra}");
    match first("x-gen-type") {
        Some("none") => {}
        Some(t) => head.push_str(&format!("Content-Type: {t}\r\n")),
        None => head.push_str("Content-Type: text/plain\r\n"),
    }
    for h in all(headers, "x-gen-header") {
        head.push_str(&format!("{h}\r\n"));
    }
    if let Some(c) = first("x-gen-encode") {
        body = encode(c, &body);
        head.push_str(&format!("Content-Encoding: {c}\r\n"));
    }
    let bodyless = status == 204 || status == 304;
    let chunk: Option<usize> = first("x-gen-chunked").and_then(|k| k.parse().ok());
    let Some(k) = chunk.filter(|_| !bodyless) else {
        if !bodyless {
            head.push_str(&format!("Content-Length: {}\r\n", body.len()));
        }
        head.push_str("\r\n");
        stream.write_all(head.as_bytes()).await?;
        if !bodyless && !head_request {
            stream.write_all(&body).await?;
        }
        return Ok(true);
    };
    head.push_str("Transfer-Encoding: chunked\r\n\r\n");
    stream.write_all(head.as_bytes()).await?;
    if head_request {
        return Ok(true);
    }
    for piece in body.chunks(k.max(1)) {
        stream.write_all(format!("{:x}\r\n", piece.len()).as_bytes()).await?;
        stream.write_all(piece).await?;
        stream.write_all(b"\r\n").await?;
        stream.flush().await?;
        if first("x-gen-hang").is_some() {
            std::future::pending::<()>().await;
        }
    }
    let mut end = String::from("0\r\n");
    for t in all(headers, "x-gen-trailer") {
        end.push_str(&format!("{t}\r\n"));
    }
    end.push_str("\r\n");
    stream.write_all(end.as_bytes()).await?;
    Ok(true)
}
