//! Decoding an upstream body under a bound, so that a small compressed response cannot make the
//! proxy produce gigabytes (a decompression bomb): the output is counted as the decoder writes it,
//! and the decoder stops at the first byte past the size bound or the ratio bound.

use std::io::{self, Write};

use bytes::Bytes;

use super::Algorithm;

/// Below this much output the ratio is not checked: a short body of repetitive text legitimately
/// decodes to hundreds of times its size, and a few hundred KiB hurt no one.
const RATIO_FLOOR: u64 = 1 << 20;

/// Why decoding stopped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BombError {
    /// The output passed `max_ratio` times the input.
    Ratio {
        /// Compressed bytes read.
        input: u64,
        /// Decoded bytes at the stop.
        output: u64,
    },
    /// The output passed `max_decoded` bytes.
    Size(u64),
    /// Not a valid stream of the announced coding.
    Corrupt(String),
}

impl std::fmt::Display for BombError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BombError::Ratio { input, output } => {
                write!(f, "decompression bomb: {input} bytes decoded to over {output} (ratio bound)")
            }
            BombError::Size(n) => write!(f, "decompression bomb: decoded body past {n} bytes (size bound)"),
            BombError::Corrupt(e) => write!(f, "undecodable body: {e}"),
        }
    }
}

/// The sink every decoder writes into: counts, bounds, and keeps the current piece.
struct Bounded {
    out: Vec<u8>,
    input: u64,
    output: u64,
    max_ratio: u64,
    max: u64,
    tripped: Option<BombError>,
}

impl Write for Bounded {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let output = self.output + buf.len() as u64;
        if output > self.max {
            self.tripped = Some(BombError::Size(self.max));
        } else if output > RATIO_FLOOR && output / self.max_ratio.max(1) > self.input {
            self.tripped = Some(BombError::Ratio { input: self.input, output });
        }
        if self.tripped.is_some() {
            return Err(io::Error::other("decompression bound"));
        }
        self.output = output;
        self.out.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

// Always behind the decoder's box: the variants' sizes cost nothing side by side.
#[allow(clippy::large_enum_variant)]
enum Inner {
    // Multi-member: concatenated gzip members are one valid body (RFC 1952 §2.2).
    Gzip(flate2::write::MultiGzDecoder<Bounded>),
    Brotli(brotli::DecompressorWriter<Bounded>),
    Zstd(ZstdDecoder),
}

/// zstd's raw streaming decoder driven directly, so that the end of the input can be checked
/// against the end of a frame (a body cut short) while the sink stays ours to read.
struct ZstdDecoder {
    raw: zstd::stream::raw::Decoder<'static>,
    sink: Bounded,
    buf: Box<[u8]>,
    /// zstd's last hint: 0 once a frame ended completely.
    hint: usize,
}

impl ZstdDecoder {
    /// Runs the decoder over `data` until it has taken all of it and has nothing more to give.
    fn feed(&mut self, data: &[u8]) -> io::Result<()> {
        use zstd::stream::raw::{InBuffer, Operation, OutBuffer};
        let mut input = InBuffer::around(data);
        loop {
            let mut out = OutBuffer::around(&mut self.buf[..]);
            self.hint = self.raw.run(&mut input, &mut out)?;
            let n = out.pos();
            self.sink.write_all(&self.buf[..n])?;
            // A full buffer may hide more output; a run after a frame's end would start reading
            // the next frame and say so in its hint.
            if input.pos == data.len() && (n < self.buf.len() || self.hint == 0) {
                return Ok(());
            }
        }
    }
}

/// A decoder for one upstream body (boxed: a few hundred bytes to a few KiB of state, moved
/// with the request's session otherwise).
pub struct Decoder(Box<Inner>);

impl std::fmt::Debug for Decoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Decoder")
    }
}

impl Decoder {
    /// A decoder for `a` stopping past `max_ratio` times the input (beyond the first MiB) or
    /// `max_decoded` bytes.
    pub fn new(a: Algorithm, max_ratio: u64, max_decoded: u64) -> io::Result<Decoder> {
        let sink =
            Bounded { out: Vec::new(), input: 0, output: 0, max_ratio, max: max_decoded, tripped: None };
        Ok(Decoder(Box::new(match a {
            Algorithm::Gzip => Inner::Gzip(flate2::write::MultiGzDecoder::new(sink)),
            Algorithm::Brotli => Inner::Brotli(brotli::DecompressorWriter::new(sink, 8 * 1024)),
            Algorithm::Zstd => Inner::Zstd(ZstdDecoder {
                raw: zstd::stream::raw::Decoder::new()?,
                sink,
                buf: vec![0; 64 * 1024].into(),
                hint: 0,
            }),
        })))
    }

    fn sink(&mut self) -> &mut Bounded {
        match &mut *self.0 {
            Inner::Gzip(d) => d.get_mut(),
            Inner::Brotli(d) => d.get_mut(),
            Inner::Zstd(d) => &mut d.sink,
        }
    }

    /// The decoded bytes of `data` (possibly none yet).
    pub fn decode(&mut self, data: &[u8]) -> Result<Bytes, BombError> {
        self.sink().input += data.len() as u64;
        let r = match &mut *self.0 {
            Inner::Gzip(d) => d.write_all(data).and_then(|()| d.flush()),
            Inner::Brotli(d) => d.write_all(data).and_then(|()| d.flush()),
            Inner::Zstd(d) => d.feed(data),
        };
        self.settle(r)
    }

    /// The end of the input: whatever the decoder still held; an error if the stream was cut.
    pub fn finish(mut self) -> Result<Bytes, BombError> {
        let r = match &mut *self.0 {
            Inner::Gzip(d) => d.try_finish(),
            Inner::Brotli(d) => d.close().map(|_| ()),
            // Decoded bytes a full buffer left in the context come out with no more input; a
            // frame that ended needs no such run (it would begin the next frame).
            Inner::Zstd(d) => match d.hint {
                0 => Ok(()),
                _ => d.feed(&[]).and_then(|()| match d.hint {
                    0 => Ok(()),
                    _ => Err(io::Error::other("zstd frame cut short")),
                }),
            },
        };
        self.settle(r)
    }

    fn settle(&mut self, r: io::Result<()>) -> Result<Bytes, BombError> {
        let sink = self.sink();
        if let Some(e) = sink.tripped.take() {
            return Err(e);
        }
        r.map_err(|e| BombError::Corrupt(e.to_string()))?;
        Ok(Bytes::from(std::mem::take(&mut sink.out)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compression::Encoder;

    fn zeros(a: Algorithm, n: usize) -> Bytes {
        let mut e = Encoder::new(a, 9).unwrap();
        let mut out = e.encode(&vec![0u8; n]).unwrap().to_vec();
        out.extend_from_slice(&e.finish().unwrap());
        out.into()
    }

    #[test]
    fn bounds_trip() {
        for a in Algorithm::ALL {
            let bomb = zeros(a, 20 << 20);
            let mut d = Decoder::new(a, 100, u64::MAX).unwrap();
            assert!(matches!(d.decode(&bomb), Err(BombError::Ratio { .. })), "{a:?}");
            let mut d = Decoder::new(a, u64::MAX, 1 << 20).unwrap();
            assert_eq!(d.decode(&bomb), Err(BombError::Size(1 << 20)), "{a:?}");
            // Within both bounds it decodes in full.
            let mut d = Decoder::new(a, u64::MAX, 20 << 20).unwrap();
            let n = d.decode(&bomb).unwrap().len() + d.finish().unwrap().len();
            assert_eq!(n, 20 << 20, "{a:?}");
        }
    }

    #[test]
    fn garbage_is_corrupt() {
        for a in Algorithm::ALL {
            let mut d = Decoder::new(a, 100, 1 << 20).unwrap();
            let r =
                d.decode(b"this is not compressed at all, not even a little bit").and_then(|_| d.finish());
            assert!(matches!(r, Err(BombError::Corrupt(_))), "{a:?}: {r:?}");
        }
    }
}
