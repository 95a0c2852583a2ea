//! Streaming encoders: each piece of upstream body goes in and comes out encoded and flushed, so
//! that a streaming response (server-sent events, a long poll) reaches the client piece by piece
//! instead of waiting for the encoder's block to fill. The cost is a few bytes per flush, which
//! is why the encoders run only on responses the rules chose.

use std::io::{self, Write};

use bytes::Bytes;

use super::Algorithm;

/// Brotli's window: 1 MiB (lgwin 20) rather than the library's 4 MiB, since every open response
/// holds one; text rarely repeats itself further apart than that.
const BROTLI_LGWIN: u32 = 20;
/// The encoders' internal staging buffer.
const BUFFER: usize = 8 * 1024;

/// An encoder for one response body.
pub struct Encoder(Inner);

enum Inner {
    Gzip(flate2::write::GzEncoder<Vec<u8>>),
    // Boxed: the brotli state is several KiB and the other variants a few words.
    Brotli(Box<brotli::CompressorWriter<Vec<u8>>>),
    Zstd(zstd::stream::write::Encoder<'static, Vec<u8>>),
}

impl std::fmt::Debug for Encoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.algorithm().token())
    }
}

impl Encoder {
    /// An encoder for `a` at `level` (clamped to the algorithm's range).
    pub fn new(a: Algorithm, level: u32) -> io::Result<Encoder> {
        let r = a.levels();
        let level = level.clamp(*r.start(), *r.end());
        let out = Vec::with_capacity(BUFFER);
        Ok(Encoder(match a {
            Algorithm::Gzip => {
                Inner::Gzip(flate2::write::GzEncoder::new(out, flate2::Compression::new(level)))
            }
            Algorithm::Brotli => {
                Inner::Brotli(Box::new(brotli::CompressorWriter::new(out, BUFFER, level, BROTLI_LGWIN)))
            }
            Algorithm::Zstd => Inner::Zstd(zstd::stream::write::Encoder::new(out, level as i32)?),
        }))
    }

    /// The algorithm.
    pub fn algorithm(&self) -> Algorithm {
        match self.0 {
            Inner::Gzip(_) => Algorithm::Gzip,
            Inner::Brotli(_) => Algorithm::Brotli,
            Inner::Zstd(_) => Algorithm::Zstd,
        }
    }

    /// Encodes `data` and flushes: the returned bytes decode to everything given so far.
    pub fn encode(&mut self, data: &[u8]) -> io::Result<Bytes> {
        if data.is_empty() {
            return Ok(Bytes::new());
        }
        let out = match &mut self.0 {
            Inner::Gzip(e) => {
                e.write_all(data)?;
                e.flush()?;
                e.get_mut()
            }
            Inner::Brotli(e) => {
                e.write_all(data)?;
                e.flush()?;
                e.get_mut()
            }
            Inner::Zstd(e) => {
                e.write_all(data)?;
                e.flush()?;
                e.get_mut()
            }
        };
        Ok(Bytes::from(std::mem::take(out)))
    }

    /// Ends the stream: its last bytes (the trailer of the format).
    pub fn finish(self) -> io::Result<Bytes> {
        let out = match self.0 {
            Inner::Gzip(e) => e.finish()?,
            Inner::Brotli(e) => e.into_inner(),
            Inner::Zstd(e) => e.finish()?,
        };
        Ok(Bytes::from(out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compression::Decoder;

    #[test]
    fn round_trip_piecewise() {
        let text: Vec<u8> = (0..200_000u32).flat_map(|i| format!("line {i}\n").into_bytes()).collect();
        for a in Algorithm::ALL {
            let mut e = Encoder::new(a, 5).unwrap();
            let mut d = Decoder::new(a, 1000, u64::MAX).unwrap();
            let mut back = Vec::new();
            let mut fed = 0;
            for piece in text.chunks(7_777) {
                let enc = e.encode(piece).unwrap();
                // Flushed: each piece decodes in full before the next is given.
                let dec = d.decode(&enc).unwrap();
                back.extend_from_slice(&dec);
                fed += piece.len();
                assert_eq!(back.len(), fed, "{a:?} held bytes back");
            }
            back.extend_from_slice(&d.decode(&e.finish().unwrap()).unwrap());
            back.extend_from_slice(&d.finish().unwrap());
            assert!(back == text, "{a:?}");
        }
    }
}
