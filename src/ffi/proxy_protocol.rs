//! The L4 service and the PROXY protocol from C: `proxy_service_set_l4_callbacks` (a TCP proxy
//! instead of HTTP) and its options, `proxy_service_set_proxy_protocol` (headers accepted on a
//! service's endpoints), and the TLVs a header carried (`proxy_session_proxy_tlv`; L4:
//! `proxy_l4_session_proxy_tlv`). Sending a header to a peer is a `proxy_peer` flag
//! (`PROXY_PEER_SEND_PROXY_V1` / `_V2`).

use std::ffi::c_char;
use std::sync::Arc;
use std::time::Duration;

use super::error::fail;
use super::l4::{proxy_l4_callbacks, FfiL4Hooks};
use super::result::*;
use super::server::{proxy_service, Shared};
use super::session::proxy_session;
use super::types::*;
use crate::l4::{L4Options, L4Proxy};
use crate::protocol::proxy_protocol::{AcceptMode, AcceptPolicy, Cidr, ProxyHeader};
use crate::service::ListeningService;

/// TLV type: ALPN (`PP2_TYPE_ALPN`).
pub const PROXY_PP2_TYPE_ALPN: u8 = 0x01;
/// TLV type: authority, the host name the client asked for (`PP2_TYPE_AUTHORITY`).
pub const PROXY_PP2_TYPE_AUTHORITY: u8 = 0x02;
/// TLV type: unique connection id (`PP2_TYPE_UNIQUE_ID`).
pub const PROXY_PP2_TYPE_UNIQUE_ID: u8 = 0x05;
/// TLV type: the SSL TLV whole: client flags, verify result, sub-TLVs (`PP2_TYPE_SSL`).
pub const PROXY_PP2_TYPE_SSL: u8 = 0x20;
/// Sub-TLV of the SSL TLV: TLS version (`TLSv1.3`).
pub const PROXY_PP2_SUBTYPE_SSL_VERSION: u8 = 0x21;
/// Sub-TLV of the SSL TLV: client certificate Common Name.
pub const PROXY_PP2_SUBTYPE_SSL_CN: u8 = 0x22;
/// Sub-TLV of the SSL TLV: cipher.
pub const PROXY_PP2_SUBTYPE_SSL_CIPHER: u8 = 0x23;
/// TLV type: network namespace (`PP2_TYPE_NETNS`).
pub const PROXY_PP2_TYPE_NETNS: u8 = 0x30;

/// `proxy_service_set_proxy_protocol` mode: no PROXY headers (default).
pub const PROXY_PP_OFF: u32 = 0;
/// `proxy_service_set_proxy_protocol` mode: every connection must begin with a header.
pub const PROXY_PP_REQUIRED: u32 = 1;
/// `proxy_service_set_proxy_protocol` mode: a header is read when one is there.
pub const PROXY_PP_OPTIONAL: u32 = 2;

/// `proxy_service_set_l4_option`: idle timeout in ms (default 600000; 0 = none).
pub const PROXY_L4_IDLE_TIMEOUT_MS: u32 = 1;
/// `proxy_service_set_l4_option`: longest connection life in ms (default 0 = none).
pub const PROXY_L4_MAX_DURATION_MS: u32 = 2;
/// `proxy_service_set_l4_option`: bytes buffered per direction (default 65536; 1024..=4194304).
pub const PROXY_L4_BUFFER_SIZE: u32 = 3;
/// `proxy_service_set_l4_option`: 1 = on plaintext endpoints wait for a TLS ClientHello and
/// give its SNI and ALPN to `upstream_peer` (TLS passthrough routed by name); 0 (default) = not.
pub const PROXY_L4_PEEK_CLIENT_HELLO: u32 = 4;

/// `proxy_service_set_l4_option`: 1 = relay plain TCP to plain TCP with splice(2) through a pipe
/// of `PROXY_L4_BUFFER_SIZE` bytes per direction (Linux; elsewhere the option is accepted and the
/// copy is buffered); 0 = copy through a user-space buffer.
pub const PROXY_L4_SPLICE: u32 = 5;

/// The L4 side of a `proxy_service`.
pub(crate) struct L4Config {
    cbs: proxy_l4_callbacks,
    opts: L4Options,
}

/// The core service for an L4 `proxy_service` (its endpoints and settings are added by the caller).
pub(crate) fn l4_service(
    svc: &proxy_service,
    l4: L4Config,
    shared: Arc<Shared>,
) -> ListeningService<L4Proxy<FfiL4Hooks>> {
    let mut app = L4Proxy::new(FfiL4Hooks { cbs: l4.cbs, shared });
    *app.options_mut() = l4.opts;
    ListeningService::new(&svc.name, app)
}

/// A view of TLV `kind` of `header` (NOT_FOUND without either). The bytes live in the header,
/// which the connection keeps for its whole life, so the view outlives the callback's use of it.
pub(crate) fn tlv_view(header: Option<&ProxyHeader>, kind: u8) -> Result<proxy_str, proxy_result> {
    let v = header.and_then(|h| h.tlv(kind)).ok_or(PROXY_NOT_FOUND)?;
    // `v` shares the header's buffer (a `Bytes` slice), so its pointer stays valid after it drops.
    Ok(proxy_str::from_bytes(&v))
}

/// Makes the service a TCP (L4) proxy: each connection goes, byte for byte, to the peer
/// `callbacks->upstream_peer` chooses (copied; see `proxy_l4_callbacks`). The endpoints, threads,
/// connection caps (`PROXY_LIMIT_MAX_CONNECTIONS*`: one past the cap is closed and logged),
/// thread hooks and PROXY protocol setting of the service apply; its HTTP settings do not.
/// INVALID_PARAMETER without `upstream_peer` or with a `struct_size` too small.
#[no_mangle]
pub extern "C" fn proxy_service_set_l4_callbacks(
    service: *mut proxy_service,
    callbacks: *const proxy_l4_callbacks,
) -> proxy_result {
    ffi_panic_boundary! {
        let svc = try_mut!(service);
        let _ = try_ref!(callbacks);
        // SAFETY: non-NULL; the host's struct has at least `struct_size` readable bytes.
        let cbs = try_res!(unsafe { copy_sized(callbacks, proxy_l4_callbacks::MIN_SIZE) });
        if cbs.upstream_peer.is_none() {
            return fail(PROXY_INVALID_PARAMETER, "proxy_l4_callbacks.upstream_peer is required");
        }
        let opts = svc.l4.take().map(|c| c.opts).unwrap_or_default();
        svc.l4 = Some(L4Config { cbs, opts });
        PROXY_OK
    }
}

/// Sets a `PROXY_L4_*` option of an L4 service (after `proxy_service_set_l4_callbacks`;
/// WRONG_STATE before). INVALID_PARAMETER for an unknown option or a value out of range.
#[no_mangle]
pub extern "C" fn proxy_service_set_l4_option(
    service: *mut proxy_service,
    which: u32,
    value: u64,
) -> proxy_result {
    ffi_panic_boundary! {
        let svc = try_mut!(service);
        let Some(l4) = svc.l4.as_mut() else {
            return fail(PROXY_WRONG_STATE, "not an L4 service: call proxy_service_set_l4_callbacks first");
        };
        let ms = |v: u64| (v > 0).then(|| Duration::from_millis(v));
        match which {
            PROXY_L4_IDLE_TIMEOUT_MS => l4.opts.idle_timeout = ms(value),
            PROXY_L4_MAX_DURATION_MS => l4.opts.max_duration = ms(value),
            PROXY_L4_BUFFER_SIZE if (1024..=4 << 20).contains(&value) => l4.opts.buffer_size = value as usize,
            PROXY_L4_PEEK_CLIENT_HELLO if value <= 1 => l4.opts.peek_client_hello = value == 1,
            PROXY_L4_SPLICE if value <= 1 => l4.opts.splice = value == 1,
            _ => return fail(PROXY_INVALID_PARAMETER, format_args!("L4 option {which} = {value}")),
        }
        PROXY_OK
    }
}

/// PROXY protocol headers on every endpoint of the service (HTTP or L4), read before TLS.
/// `mode`: `PROXY_PP_OFF`, `_REQUIRED` or `_OPTIONAL`. `trusted`: the sources allowed to send
/// one, comma-separated (`"10.0.0.0/8,::1"`); NULL or `""` for any. A header from anyone else, a
/// malformed one, or (required mode) none, closes the connection and is logged at
/// PROXY_LOG_WARN; Unix socket clients are trusted. `timeout_ms`: how long the header may take
/// (0 = 10 s). Hooks and logs then see the client address the header carried.
/// INVALID_PARAMETER for an unknown mode or a bad range (the service is unchanged then).
#[no_mangle]
pub extern "C" fn proxy_service_set_proxy_protocol(
    service: *mut proxy_service,
    mode: u32,
    trusted: *const c_char,
    timeout_ms: u32,
) -> proxy_result {
    ffi_panic_boundary! {
        let svc = try_mut!(service);
        let mode = match mode {
            PROXY_PP_OFF => {
                svc.proxy_protocol = None;
                return PROXY_OK;
            }
            PROXY_PP_REQUIRED => AcceptMode::Required,
            PROXY_PP_OPTIONAL => AcceptMode::Optional,
            other => return fail(PROXY_INVALID_PARAMETER, format_args!("PROXY protocol mode {other}")),
        };
        let text = if trusted.is_null() { "" } else {
            // SAFETY: a non-NULL C string.
            try_res!(unsafe { cstr(trusted) })
        };
        let mut ranges = Vec::new();
        for r in text.split(',').map(str::trim).filter(|r| !r.is_empty()) {
            match r.parse::<Cidr>() {
                Ok(c) => ranges.push(c),
                Err(e) => return fail(PROXY_INVALID_PARAMETER, format_args!("trusted sources: {e}")),
            }
        }
        let mut policy = AcceptPolicy { mode, trusted: ranges, ..AcceptPolicy::required() };
        if timeout_ms > 0 {
            policy.timeout = Duration::from_millis(timeout_ms.into());
        }
        svc.proxy_protocol = Some(policy);
        PROXY_OK
    }
}

/// The value of TLV `kind` (a `PROXY_PP2_TYPE_*`, or a `PROXY_PP2_SUBTYPE_SSL_*` inside the SSL
/// TLV) of the PROXY v2 header the client's connection began with; `*out` valid until the
/// callback returns. NOT_FOUND without a header or that TLV. HTTP/1 connections only (an HTTP/2
/// stream answers NOT_FOUND; its client address is the carried one all the same).
#[no_mangle]
pub extern "C" fn proxy_session_proxy_tlv(
    s: *const proxy_session,
    kind: u8,
    out: *mut proxy_str,
) -> proxy_result {
    ffi_panic_boundary! {
        let s = try_ref!(s);
        let out = try_mut!(out);
        *out = try_res!(s.with(|a| tlv_view(a.session()?.proxy_header(), kind)));
        PROXY_OK
    }
}
