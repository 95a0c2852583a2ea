//! Compression settings from C: a service's defaults (`proxy_service_set_compression`,
//! `proxy_service_set_compression_types`) and one request's (`proxy_session_set_compression`).

use std::ffi::c_char;

use super::error::fail;
use super::result::*;
use super::server::proxy_service;
use super::session::proxy_session;
use super::types::cstr;
use crate::compression::{Algorithm, Algorithms};

/// `PROXY_COMPRESSION_ALGORITHMS` bit: gzip.
pub const PROXY_ENCODING_GZIP: u32 = 1;
/// `PROXY_COMPRESSION_ALGORITHMS` bit: brotli (`br`).
pub const PROXY_ENCODING_BROTLI: u32 = 2;
/// `PROXY_COMPRESSION_ALGORITHMS` bit: zstd.
pub const PROXY_ENCODING_ZSTD: u32 = 4;

/// Compress responses: 1 on, 0 off (the service default is off). Service and request.
pub const PROXY_COMPRESSION_ENABLED: u32 = 1;
/// The codings offered: an OR of `PROXY_ENCODING_*` (default all three; among codings a client
/// weights equally, zstd is preferred, then brotli, then gzip). Service and request.
pub const PROXY_COMPRESSION_ALGORITHMS: u32 = 2;
/// gzip level, 1..=9 (default 6). Service and request.
pub const PROXY_COMPRESSION_LEVEL_GZIP: u32 = 3;
/// brotli level, 0..=11 (default 4). Service and request.
pub const PROXY_COMPRESSION_LEVEL_BROTLI: u32 = 4;
/// zstd level, 1..=22 (default 3). Service and request.
pub const PROXY_COMPRESSION_LEVEL_ZSTD: u32 = 5;
/// Responses with a Content-Length below this are not compressed (default 256). Service only.
pub const PROXY_COMPRESSION_MIN_LENGTH: u32 = 6;
/// Decode gzip, brotli and zstd upstream bodies (not 206 or `no-transform` ones) before the
/// response callbacks see them: 1 on, 0 off (default). Service only.
pub const PROXY_COMPRESSION_DECOMPRESS_UPSTREAM: u32 = 7;
/// Decoding fails once the output passes this many times the input, beyond its first MiB
/// (default 200; > 0). Service only.
pub const PROXY_COMPRESSION_MAX_RATIO: u32 = 8;
/// Decoding fails once the output passes this many bytes (default 256 MiB; > 0). Service only.
pub const PROXY_COMPRESSION_MAX_DECODED: u32 = 9;

fn level_of(which: u32) -> Option<Algorithm> {
    match which {
        PROXY_COMPRESSION_LEVEL_GZIP => Some(Algorithm::Gzip),
        PROXY_COMPRESSION_LEVEL_BROTLI => Some(Algorithm::Brotli),
        PROXY_COMPRESSION_LEVEL_ZSTD => Some(Algorithm::Zstd),
        _ => None,
    }
}

fn algorithms(value: u64) -> Option<Algorithms> {
    u32::try_from(value).ok().and_then(Algorithms::from_bits)
}

fn invalid(which: u32, value: u64) -> proxy_result {
    fail(PROXY_INVALID_PARAMETER, format_args!("compression setting {which}: {value} is out of range"))
}

/// Sets compression setting `which` (`PROXY_COMPRESSION_*`) of the service to `value`.
/// INVALID_PARAMETER for an unknown setting or a value out of its range; the service is unchanged
/// then. Like every `proxy_service_*` setter: before `proxy_server_add_service`, from one thread.
/// Compression runs after the response callbacks (they see what the upstream sent) and never
/// touches HEAD, 1xx/204/304, 206 or Range requests, upgrades, bodies already encoded,
/// `Cache-Control: no-transform`, or media types outside `proxy_service_set_compression_types`.
/// (ABI 0.6)
#[no_mangle]
pub extern "C" fn proxy_service_set_compression(
    service: *mut proxy_service,
    which: u32,
    value: u64,
) -> proxy_result {
    ffi_panic_boundary! {
        let svc = try_mut!(service);
        let s = &mut svc.proxy_options().compression;
        let ok = match which {
            PROXY_COMPRESSION_ENABLED if value <= 1 => {
                s.enabled = value == 1;
                true
            }
            PROXY_COMPRESSION_ALGORITHMS => algorithms(value).map(|a| s.algorithms = a).is_some(),
            PROXY_COMPRESSION_MIN_LENGTH => {
                s.min_length = value;
                true
            }
            PROXY_COMPRESSION_DECOMPRESS_UPSTREAM if value <= 1 => {
                s.decompress_upstream = value == 1;
                true
            }
            PROXY_COMPRESSION_MAX_RATIO if value > 0 => {
                s.max_ratio = value;
                true
            }
            PROXY_COMPRESSION_MAX_DECODED if value > 0 => {
                s.max_decoded = value;
                true
            }
            w => match (level_of(w), u32::try_from(value)) {
                (Some(a), Ok(level)) => s.set_level(a, level),
                _ => false,
            },
        };
        if ok { PROXY_OK } else { invalid(which, value) }
    }
}

/// Sets the media types the service compresses, as a comma-separated list of `type/subtype`,
/// `type/\*` or `type/\*+suffix` (case-insensitive; parameters of the response's Content-Type are
/// ignored). The default is text/\*, JSON, JavaScript, XML, SVG, WebAssembly and the *+json /
/// *+xml types. INVALID_PARAMETER (service unchanged) for an entry without a `/`; an empty list
/// compresses nothing. `types` is copied. (ABI 0.6)
#[no_mangle]
pub extern "C" fn proxy_service_set_compression_types(
    service: *mut proxy_service,
    types: *const c_char,
) -> proxy_result {
    ffi_panic_boundary! {
        let svc = try_mut!(service);
        // SAFETY: NULL or a C string.
        let types = try_res!(unsafe { cstr(types) });
        if svc.proxy_options().compression.set_content_types(types) {
            PROXY_OK
        } else {
            PROXY_INVALID_PARAMETER
        }
    }
}

/// Sets compression setting `which` for this request only: `PROXY_COMPRESSION_ENABLED`,
/// `_ALGORITHMS` or a `_LEVEL_*` (the others are per service). From any callback before the
/// response head goes out (`response_filter` is the last); WRONG_PHASE afterwards, and
/// INVALID_PARAMETER for another setting or a value out of range (nothing changed). The
/// exclusions of `proxy_service_set_compression` still apply. (ABI 0.6)
#[no_mangle]
pub extern "C" fn proxy_session_set_compression(
    s: *mut proxy_session,
    which: u32,
    value: u64,
) -> proxy_result {
    ffi_panic_boundary! {
        let s = try_ref!(s);
        try_res!(s.with(|a| {
            let session = a.session_mut()?;
            if session.response_started() {
                return Err(PROXY_WRONG_PHASE);
            }
            let wish = session.compression_mut();
            let ok = match which {
                PROXY_COMPRESSION_ENABLED if value <= 1 => {
                    wish.enabled = Some(value == 1);
                    true
                }
                PROXY_COMPRESSION_ALGORITHMS => algorithms(value).map(|a| wish.algorithms = Some(a)).is_some(),
                w => match (level_of(w), u32::try_from(value)) {
                    (Some(alg), Ok(level)) => wish.set_level(alg, level),
                    _ => false,
                },
            };
            if ok { Ok(()) } else { Err(invalid(which, value)) }
        }));
        PROXY_OK
    }
}
