//! Response compression (the connector duty nginx's `gzip`, Envoy's compressor filter and
//! Pingora's `ResponseCompression` fill): which coding a client gets from `Accept-Encoding`,
//! which responses may be encoded at all, the head rewrite an encoded response needs, streaming
//! encoders that flush per upstream piece, and upstream decompression under a bomb bound.
//!
//! The proxy asks this module nothing while a service leaves compression off and no hook turned
//! it on for a request: see [`crate::proxy`] for where it hooks in.

mod decoder;
mod encoder;
mod head;
mod negotiate;
mod rules;
mod settings;

pub use decoder::{BombError, Decoder};
pub use encoder::Encoder;
pub(crate) use head::mark_decoded;
pub use head::{mark_encoded, merge_vary};
pub use negotiate::negotiate;
pub use rules::{compressible, Exclusion};
pub use settings::{CompressionOverride, CompressionSettings};

/// A content coding the proxy can produce and undo.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Algorithm {
    /// `gzip` (RFC 9110 §8.4.1.3): every client has it.
    Gzip,
    /// `br` (RFC 7932): smaller text than gzip at the same speed.
    Brotli,
    /// `zstd` (RFC 8878): gzip's ratio or better at several times its speed.
    Zstd,
}

impl Algorithm {
    /// Every algorithm, in the order preferred when a client accepts several equally: zstd is
    /// the cheapest per byte for a ratio at least gzip's, brotli next, gzip last.
    pub const ALL: [Algorithm; 3] = [Algorithm::Zstd, Algorithm::Brotli, Algorithm::Gzip];

    /// The `Content-Encoding` token.
    pub const fn token(self) -> &'static str {
        match self {
            Algorithm::Gzip => "gzip",
            Algorithm::Brotli => "br",
            Algorithm::Zstd => "zstd",
        }
    }

    /// The algorithm a `Content-Encoding` token names (`x-gzip` is gzip, RFC 9110 §8.4.1.3).
    pub fn from_token(t: &[u8]) -> Option<Algorithm> {
        if t.eq_ignore_ascii_case(b"gzip") || t.eq_ignore_ascii_case(b"x-gzip") {
            Some(Algorithm::Gzip)
        } else if t.eq_ignore_ascii_case(b"br") {
            Some(Algorithm::Brotli)
        } else if t.eq_ignore_ascii_case(b"zstd") {
            Some(Algorithm::Zstd)
        } else {
            None
        }
    }

    /// This algorithm's bit in an [`Algorithms`] set.
    const fn bit(self) -> u8 {
        match self {
            Algorithm::Gzip => 1,
            Algorithm::Brotli => 2,
            Algorithm::Zstd => 4,
        }
    }

    /// The slot of this algorithm's level in [`CompressionSettings::levels`].
    pub(crate) const fn index(self) -> usize {
        match self {
            Algorithm::Gzip => 0,
            Algorithm::Brotli => 1,
            Algorithm::Zstd => 2,
        }
    }

    /// The levels the library accepts (gzip 1-9, brotli 0-11, zstd 1-22).
    pub const fn levels(self) -> std::ops::RangeInclusive<u32> {
        match self {
            Algorithm::Gzip => 1..=9,
            Algorithm::Brotli => 0..=11,
            Algorithm::Zstd => 1..=22,
        }
    }
}

// Rust-only, like `Phases`: cbindgen would otherwise put an opaque type and a blank line per
// constant into include/proxy.h.
/// A set of algorithms; the bits are the C ABI's `PROXY_ENCODING_*` values.
///
/// cbindgen:ignore
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Algorithms(u8);

/// cbindgen:ignore
impl Algorithms {
    /// None.
    pub const NONE: Algorithms = Algorithms(0);
    /// gzip, brotli and zstd.
    pub const ALL: Algorithms = Algorithms(7);

    /// The set with these bits (`1` gzip, `2` brotli, `4` zstd); `None` for any other bit.
    pub const fn from_bits(bits: u32) -> Option<Algorithms> {
        if bits & !7 == 0 {
            Some(Algorithms(bits as u8))
        } else {
            None
        }
    }

    /// The bits of [`Self::from_bits`].
    pub const fn bits(self) -> u32 {
        self.0 as u32
    }

    /// Whether `a` is in the set.
    pub const fn contains(self, a: Algorithm) -> bool {
        self.0 & a.bit() != 0
    }

    /// The set with `a` added.
    #[must_use]
    pub const fn with(self, a: Algorithm) -> Algorithms {
        Algorithms(self.0 | a.bit())
    }
}
