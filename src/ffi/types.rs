//! Plain structs copied across the boundary: string views, headers, the peer description and the
//! logging summary.

use std::cell::RefCell;
use std::ffi::{c_char, CStr};
use std::time::Duration;

use super::result::*;
use std::path::PathBuf;

use crate::upstream::{Alpn, HttpPeer, PeerAddress, PeerOptions, PeerTls, SendProxy};

/// A borrowed byte string: `ptr` + `len`, not NUL-terminated. Views handed out by libproxy are
/// valid until the callback returns or the next call that changes what they point into; copy what
/// you keep. Views passed in are copied before the call returns. `{NULL, 0}` is the empty string.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct proxy_str {
    /// First byte (may be NULL when `len` is 0).
    pub ptr: *const c_char,
    /// Length in bytes.
    pub len: usize,
}

impl proxy_str {
    pub(crate) fn from_bytes(b: &[u8]) -> Self {
        proxy_str { ptr: b.as_ptr().cast(), len: b.len() }
    }

    /// The bytes, or `PROXY_NULL_PARAMETER` for a NULL pointer with a length.
    pub(crate) fn bytes<'a>(&self) -> Result<&'a [u8], proxy_result> {
        if self.len == 0 {
            return Ok(&[]);
        }
        if self.ptr.is_null() {
            return Err(PROXY_NULL_PARAMETER);
        }
        // SAFETY: the caller promises `ptr` points to `len` readable bytes for the call.
        Ok(unsafe { std::slice::from_raw_parts(self.ptr.cast(), self.len) })
    }
}

/// A borrowed run of bytes (a body chunk): `ptr` + `len`, the same lifetime rules as `proxy_str`.
/// Body data goes both ways as `uint8_t` (`proxy_session_body` hands out this view,
/// `proxy_session_set_body` and `proxy_session_respond` take `const uint8_t *` + length).
/// `{NULL, 0}` is empty. (ABI 0.5)
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct proxy_bytes {
    /// First byte (may be NULL when `len` is 0).
    pub ptr: *const u8,
    /// Length in bytes.
    pub len: usize,
}

impl proxy_bytes {
    pub(crate) const EMPTY: Self = proxy_bytes { ptr: std::ptr::null(), len: 0 };

    pub(crate) fn from_bytes(b: &[u8]) -> Self {
        proxy_bytes { ptr: b.as_ptr(), len: b.len() }
    }
}

/// One header field: two views.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct proxy_header {
    /// Field name (lowercase when handed out by libproxy).
    pub name: proxy_str,
    /// Field value.
    pub value: proxy_str,
}

/// `proxy_peer.flags` bit: connect with TLS (SNI from `sni`, verification against `ca_file` or the
/// system roots, optional client certificate).
pub const PROXY_PEER_TLS: u32 = 1;
/// `proxy_peer.flags` bit (with `PROXY_PEER_TLS`): do not verify the peer's certificate at all
/// (open to interception; for tests and private networks). (ABI 0.3)
pub const PROXY_PEER_TLS_NO_VERIFY: u32 = 2;
/// `proxy_peer.flags` bit (with `PROXY_PEER_TLS`): verify the chain but not that it is valid for
/// the SNI name. (ABI 0.3)
pub const PROXY_PEER_TLS_NO_VERIFY_HOSTNAME: u32 = 4;

/// `proxy_peer.flags` bit: send a PROXY protocol v1 header first on each new connection, carrying
/// the client's address (the one a PROXY header gave us, if any). Connections are then reused
/// only for the same client address. (L4 and HTTP peers)
pub const PROXY_PEER_SEND_PROXY_V1: u32 = 8;
/// `proxy_peer.flags` bit: likewise with a v2 (binary) header.
pub const PROXY_PEER_SEND_PROXY_V2: u32 = 16;

/// `proxy_peer.alpn`: HTTP/1.1 (default).
pub const PROXY_ALPN_H1: u32 = 0;
/// `proxy_peer.alpn`: HTTP/2 only (over TLS by ALPN, or h2c by prior knowledge on plaintext).
pub const PROXY_ALPN_H2: u32 = 1;
/// `proxy_peer.alpn`: HTTP/2 when the TLS peer agrees by ALPN, else HTTP/1.1 (plaintext: HTTP/1.1).
pub const PROXY_ALPN_H2THENH1: u32 = 2;

/// Where and how to connect upstream; passed to `proxy_session_set_peer`, which copies it.
///
/// Set `struct_size = sizeof(proxy_peer)`; a host built against an older, shorter struct keeps
/// working (missing fields take their defaults). Zero everything you do not use: a timeout of 0
/// means the library default (connect 5 s, total connect 10 s, read/write/idle 60 s).
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct proxy_peer {
    /// `sizeof(proxy_peer)` as the host knows it.
    pub struct_size: u32,
    /// OR of `PROXY_PEER_*` bits.
    pub flags: u32,
    /// `host:port`, `1.2.3.4:80`, `[::1]:80`, or a Unix socket path (`/run/x.sock` or `unix:/run/x.sock`).
    pub address: proxy_str,
    /// TLS server name sent by SNI and checked against the certificate (empty: the host of
    /// `address`; no SNI for an IP address).
    pub sni: proxy_str,
    /// TCP/UDS connect timeout in milliseconds (0 = default).
    pub connect_timeout_ms: u32,
    /// Connect plus handshake timeout in milliseconds (0 = default).
    pub total_connection_timeout_ms: u32,
    /// Per-read timeout towards the peer in milliseconds (0 = default).
    pub read_timeout_ms: u32,
    /// Per-write timeout towards the peer in milliseconds (0 = default).
    pub write_timeout_ms: u32,
    /// How long an idle pooled connection to the peer is kept, in milliseconds (0 = default).
    pub idle_timeout_ms: u32,
    /// Pool partition: peers in different groups never share a connection.
    pub pool_group: u64,
    /// (ABI 0.3) TLS: CA bundle (PEM file path) to verify the peer against; empty: system roots.
    pub ca_file: proxy_str,
    /// (ABI 0.3) TLS: client certificate chain (PEM file path) presented to the peer.
    pub client_cert: proxy_str,
    /// (ABI 0.3) TLS: private key (PEM file path) of `client_cert`.
    pub client_key: proxy_str,
    /// (ABI 0.3) `PROXY_ALPN_*`: the HTTP version spoken to the peer.
    pub alpn: u32,
    /// (ABI 0.3) Most concurrent requests on one HTTP/2 connection to the peer (0 = default).
    pub max_h2_streams: u32,
}

/// Copies a host struct that starts with `uint32_t struct_size` into a zeroed `T`, reading only as
/// many bytes as both sides know: Linux `copy_struct_from_user` semantics. A shorter struct (an
/// older host) leaves the fields it lacks zero; a longer one (a host built against a newer header)
/// is accepted only when every byte this library does not know is zero, since a non-zero one is a
/// field the host set and this library would silently ignore: PROXY_UNSUPPORTED. `min` is the
/// smallest size accepted (INVALID_PARAMETER below it).
///
/// SAFETY: `p` is non-NULL and points to at least `struct_size` readable bytes.
pub(crate) unsafe fn copy_sized<T: Copy>(p: *const T, min: usize) -> Result<T, proxy_result> {
    // SAFETY: the first field of every such struct is a u32 struct_size.
    let size = unsafe { p.cast::<u32>().read_unaligned() } as usize;
    // Only an error names the type: finding it costs a substring search per call.
    let name = || std::any::type_name::<T>().rsplit("::").next().unwrap_or("struct");
    if size < min {
        return super::error::err(
            PROXY_INVALID_PARAMETER,
            format_args!("{}.struct_size {size} is smaller than the oldest layout ({min} bytes)", name()),
        );
    }
    let known = std::mem::size_of::<T>();
    if size > known {
        // SAFETY: the host's struct has `size` readable bytes.
        let tail = unsafe { std::slice::from_raw_parts(p.cast::<u8>().add(known), size - known) };
        if let Some(i) = tail.iter().position(|&b| b != 0) {
            return super::error::err(
                PROXY_UNSUPPORTED,
                format_args!(
                    "{}.struct_size {size} is larger than this library's {known} bytes and byte {} \
                     past them is set: a field from a newer header this library does not know",
                    name(),
                    known + i
                ),
            );
        }
    }
    let n = size.min(known);
    let mut out = std::mem::MaybeUninit::<T>::zeroed();
    // SAFETY: n <= size_of::<T>() and n <= the host's struct size; every T used here is valid when
    // zeroed (integers, pointers, Option<fn>).
    unsafe {
        std::ptr::copy_nonoverlapping(p.cast::<u8>(), out.as_mut_ptr().cast::<u8>(), n);
        Ok(out.assume_init())
    }
}

fn ms(v: u32, default: Option<Duration>) -> Option<Duration> {
    if v == 0 {
        default
    } else {
        Some(Duration::from_millis(v as u64))
    }
}

impl proxy_peer {
    /// The smallest struct accepted: up to and including `address`.
    pub(crate) const MIN_SIZE: usize = std::mem::offset_of!(proxy_peer, sni);

    pub(crate) fn to_peer(self) -> Result<HttpPeer, proxy_result> {
        let send_proxy = PROXY_PEER_SEND_PROXY_V1 | PROXY_PEER_SEND_PROXY_V2;
        let known =
            PROXY_PEER_TLS | PROXY_PEER_TLS_NO_VERIFY | PROXY_PEER_TLS_NO_VERIFY_HOSTNAME | send_proxy;
        if self.flags & !known != 0 {
            return super::error::err(
                PROXY_INVALID_PARAMETER,
                format_args!("unknown proxy_peer.flags {:#x}", self.flags & !known),
            );
        }
        let alpn = match self.alpn {
            PROXY_ALPN_H1 => Alpn::H1,
            PROXY_ALPN_H2 => Alpn::H2,
            PROXY_ALPN_H2THENH1 => Alpn::H2ThenH1,
            other => {
                return super::error::err(
                    PROXY_INVALID_PARAMETER,
                    format_args!("unknown proxy_peer.alpn {other}"),
                )
            }
        };
        let tls = if self.flags & PROXY_PEER_TLS != 0 {
            let path = |s: proxy_str| -> Result<Option<PathBuf>, proxy_result> {
                let b = s.bytes()?;
                if b.is_empty() {
                    return Ok(None);
                }
                let text = std::str::from_utf8(b).map_err(|_| {
                    super::error::fail(PROXY_INVALID_PARAMETER, "a proxy_peer file path is not UTF-8")
                })?;
                Ok(Some(PathBuf::from(text)))
            };
            let sni = std::str::from_utf8(self.sni.bytes()?)
                .map_err(|_| super::error::fail(PROXY_INVALID_PARAMETER, "proxy_peer.sni is not UTF-8"))?;
            let mut t = PeerTls::new(sni);
            t.verify = self.flags & PROXY_PEER_TLS_NO_VERIFY == 0;
            t.verify_hostname = self.flags & PROXY_PEER_TLS_NO_VERIFY_HOSTNAME == 0;
            t.ca_file = path(self.ca_file)?;
            t.client_cert = path(self.client_cert)?;
            t.client_key = path(self.client_key)?;
            if t.client_cert.is_some() != t.client_key.is_some() {
                return super::error::err(
                    PROXY_INVALID_PARAMETER,
                    "proxy_peer.client_cert and client_key go together",
                );
            }
            Some(t)
        } else if self.flags & !send_proxy != 0 {
            // Verification flags without TLS make no sense.
            return super::error::err(
                PROXY_INVALID_PARAMETER,
                "proxy_peer verification flags without PROXY_PEER_TLS",
            );
        } else {
            None
        };
        let address = parse_address(self.address.bytes()?)?;
        let d = PeerOptions::default();
        let options = PeerOptions {
            connect_timeout: ms(self.connect_timeout_ms, d.connect_timeout),
            total_connection_timeout: ms(self.total_connection_timeout_ms, d.total_connection_timeout),
            read_timeout: ms(self.read_timeout_ms, d.read_timeout),
            write_timeout: ms(self.write_timeout_ms, d.write_timeout),
            idle_timeout: ms(self.idle_timeout_ms, d.idle_timeout),
            alpn,
            max_h2_streams: if self.max_h2_streams == 0 {
                d.max_h2_streams
            } else {
                self.max_h2_streams as usize
            },
            tls,
            proxy_protocol: match self.flags & send_proxy {
                0 => None,
                PROXY_PEER_SEND_PROXY_V1 => Some(Box::new(SendProxy::new(1))),
                PROXY_PEER_SEND_PROXY_V2 => Some(Box::new(SendProxy::new(2))),
                _ => {
                    return super::error::err(
                        PROXY_INVALID_PARAMETER,
                        "proxy_peer: SEND_PROXY_V1 and _V2 together",
                    )
                }
            },
        };
        Ok(HttpPeer { address, options, group: self.pool_group })
    }
}

thread_local! {
    /// The address text last parsed on this thread, and what it parsed to: a host names the same
    /// peer on nearly every request, and parsing the text each time showed in profiles. The text
    /// buffer keeps its capacity, so a miss costs a copy, not an allocation.
    static LAST_ADDRESS: RefCell<(Vec<u8>, Option<PeerAddress>)> = const { RefCell::new((Vec::new(), None)) };
}

fn parse_address(text: &[u8]) -> Result<PeerAddress, proxy_result> {
    LAST_ADDRESS.with_borrow_mut(|(last_text, last)| {
        if let Some(a) = last.as_ref().filter(|_| last_text.as_slice() == text) {
            return Ok(a.clone());
        }
        let s = std::str::from_utf8(text)
            .map_err(|_| super::error::fail(PROXY_INVALID_PARAMETER, "proxy_peer.address is not UTF-8"))?;
        let a: PeerAddress = s.parse().map_err(|e| {
            super::error::fail(PROXY_INVALID_PARAMETER, format_args!("proxy_peer.address {s:?}: {e}"))
        })?;
        last_text.clear();
        last_text.extend_from_slice(text);
        *last = Some(a.clone());
        Ok(a)
    })
}

/// What the proxy knows about a request, for the `logging` phase (`proxy_session_summary`).
/// Set `struct_size = sizeof(proxy_summary)`; only that many bytes are written.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
pub struct proxy_summary {
    /// `sizeof(proxy_summary)` as the host knows it.
    pub struct_size: u32,
    /// Status sent downstream (0 when nothing was sent).
    pub status: u32,
    /// Request body bytes received from the client.
    pub bytes_in: u64,
    /// Response body bytes sent to the client.
    pub bytes_out: u64,
    /// Time to open the last upstream connection in µs (0 when reused or none).
    pub upstream_connect_us: u64,
    /// From request start to the first upstream response byte in µs (0 when none).
    pub time_to_first_byte_us: u64,
    /// From the first request byte to the end of the response in µs (complete in `logging`).
    pub total_us: u64,
    /// Attempts beyond the first.
    pub retries: u32,
    /// 1 when the last upstream connection came from the pool.
    pub reused: u32,
    /// 0 when the request succeeded; otherwise the status its error maps to (502 an upstream
    /// fault, 504 an upstream timeout, 4xx the client's, 500 the host's or ours), also when the
    /// client already got another `status` (see `truncated`). The reason is `proxy_session_error`.
    pub error_status: u32,
    /// 1 when the response head went out but the response did not reach its end (the upstream
    /// cut its body, the client went away): the client got `status` with an incomplete body of
    /// `bytes_out` bytes. Log it as a failure, not as a `status`.
    pub truncated: u32,
}

/// Bytes of a (ptr, len) input; NULL is allowed only with len 0.
pub(crate) fn input<'a>(p: *const u8, len: usize) -> Result<&'a [u8], proxy_result> {
    if len == 0 {
        return Ok(&[]);
    }
    if p.is_null() {
        return Err(PROXY_NULL_PARAMETER);
    }
    // SAFETY: the caller gives `len` readable bytes.
    Ok(unsafe { std::slice::from_raw_parts(p, len) })
}

/// A NUL-terminated configuration string (address, path, name) as UTF-8.
///
/// SAFETY: `p` is NULL or a valid C string.
pub(crate) unsafe fn cstr<'a>(p: *const c_char) -> Result<&'a str, proxy_result> {
    if p.is_null() {
        return super::error::err(PROXY_NULL_PARAMETER, "a string argument is NULL");
    }
    // SAFETY: see above.
    unsafe { CStr::from_ptr(p) }.to_str().map_err(|e| {
        super::error::fail(PROXY_INVALID_PARAMETER, format_args!("a string argument is not UTF-8 ({e})"))
    })
}
