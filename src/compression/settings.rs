//! A service's compression settings and what a hook may change of them for one request.

use std::sync::Arc;

use super::{Algorithm, Algorithms};

/// The media types compressed by default: text and the structured text formats that travel as
/// `application/*` or `image/svg+xml`. Already-compressed formats (images, video, archives, fonts
/// in WOFF2) and gRPC, which has its own message compression, are left out.
const DEFAULT_TYPES: &[&str] = &[
    "text/*",
    "application/json",
    "application/*+json",
    "application/javascript",
    "application/x-javascript",
    "application/ecmascript",
    "application/xml",
    "application/*+xml",
    "application/wasm",
    "image/svg+xml",
    "image/x-icon",
    "font/ttf",
    "font/otf",
];

/// How a service compresses responses, and decompresses upstream ones.
#[derive(Debug, Clone)]
pub struct CompressionSettings {
    /// Whether responses are compressed by default (off: a hook may still turn it on for a request).
    pub enabled: bool,
    /// The codings offered.
    pub algorithms: Algorithms,
    /// The level per algorithm, indexed gzip, brotli, zstd.
    pub levels: [u32; 3],
    /// Responses whose Content-Length is below this are sent as they are: below a few hundred
    /// bytes the coding's header and the client's work outweigh the saving. A response of unknown
    /// length is compressed.
    pub min_length: u64,
    /// Media types compressed: `type/subtype`, `type/*`, or `type/*+suffix`; case-insensitive.
    pub content_types: Arc<[Box<str>]>,
    /// Whether a gzip, brotli or zstd response from the upstream is decoded before the response
    /// filters see it (and re-encoded for the client only if compression applies).
    pub decompress_upstream: bool,
    /// Decoding fails (502) once the output exceeds this many times the input (past the first
    /// MiB, where small bodies legitimately reach high ratios).
    pub max_ratio: u64,
    /// Decoding fails (502) once the output exceeds this many bytes.
    pub max_decoded: u64,
}

impl Default for CompressionSettings {
    fn default() -> Self {
        CompressionSettings {
            enabled: false,
            algorithms: Algorithms::ALL,
            // gzip 6 and brotli 4 are nginx's and Cloudflare's usual choices for dynamic content;
            // zstd 3 is the library's own default.
            levels: [6, 4, 3],
            min_length: 256,
            content_types: DEFAULT_TYPES.iter().map(|t| Box::from(*t)).collect(),
            decompress_upstream: false,
            max_ratio: 200,
            max_decoded: 256 << 20,
        }
    }
}

impl CompressionSettings {
    /// Sets the level of `a`; `false` (and nothing changed) when the level is out of its range.
    pub fn set_level(&mut self, a: Algorithm, level: u32) -> bool {
        let ok = a.levels().contains(&level);
        if ok {
            self.levels[a.index()] = level;
        }
        ok
    }

    /// Sets the media types from a comma-separated list; `false` (and nothing changed) when an
    /// entry is not `type/subtype`.
    pub fn set_content_types(&mut self, list: &str) -> bool {
        let types: Vec<Box<str>> =
            list.split(',').map(str::trim).filter(|t| !t.is_empty()).map(Box::from).collect();
        let ok = types.iter().all(|t| t.split_once('/').is_some_and(|(a, b)| !a.is_empty() && !b.is_empty()));
        if ok {
            self.content_types = types.into();
        }
        ok
    }

    /// Whether anything at all may happen to a response of this service: the proxy's one check
    /// on the hot path when no hook asked for anything.
    pub fn active(&self) -> bool {
        self.enabled || self.decompress_upstream
    }
}

/// What a hook changed for one request; `None` keeps the service's setting.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CompressionOverride {
    /// Compress (or not) this response.
    pub enabled: Option<bool>,
    /// The codings offered for this response.
    pub algorithms: Option<Algorithms>,
    /// The level per algorithm, indexed gzip, brotli, zstd.
    pub levels: [Option<u32>; 3],
}

impl CompressionOverride {
    /// Sets the level of `a` for this request; `false` (and nothing changed) when out of range.
    pub fn set_level(&mut self, a: Algorithm, level: u32) -> bool {
        let ok = a.levels().contains(&level);
        if ok {
            self.levels[a.index()] = Some(level);
        }
        ok
    }

    /// Whether the response is compressed, given the service's settings.
    pub fn enabled(&self, s: &CompressionSettings) -> bool {
        self.enabled.unwrap_or(s.enabled)
    }

    /// The codings offered, given the service's settings.
    pub fn algorithms(&self, s: &CompressionSettings) -> Algorithms {
        self.algorithms.unwrap_or(s.algorithms)
    }

    /// The level of `a`, given the service's settings.
    pub fn level(&self, s: &CompressionSettings, a: Algorithm) -> u32 {
        self.levels[a.index()].unwrap_or(s.levels[a.index()])
    }
}
