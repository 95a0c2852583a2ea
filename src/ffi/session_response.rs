//! `proxy_session` accessors for the answer: peer choice, local responses, status, body chunks,
//! retry control, the logging summary, and per-request host data.

use super::result::*;
use super::types::*;
use crate::protocol::http::ResponseHead;
use bytes::Bytes;
use http::StatusCode;
use std::ffi::c_void;

use super::session::*;
use super::session_headers::{header_value, settable_name};

/// Chooses the upstream (only in `upstream_peer`). The struct is copied. INVALID_PARAMETER for a
/// bad address, a too-small `struct_size`, an unknown flag or `alpn`, verification flags without
/// `PROXY_PEER_TLS`, or a client certificate without its key. TLS files are read when connecting:
/// a missing or bad one fails that connection (502, reason in `proxy_session_error`).
#[no_mangle]
pub extern "C" fn proxy_session_set_peer(s: *mut proxy_session, peer: *const proxy_peer) -> proxy_result {
    ffi_panic_boundary! {
        let s = try_ref!(s);
        let _ = try_ref!(peer);
        // SAFETY: non-NULL, and the host's struct is at least `struct_size` bytes.
        let p = try_res!(unsafe { copy_sized(peer, proxy_peer::MIN_SIZE) });
        let peer = try_res!(p.to_peer());
        try_res!(s.with(|a| {
            if a.phase != PROXY_PHASE_UPSTREAM_PEER {
                return Err(PROXY_WRONG_PHASE);
            }
            a.peer = Some(peer);
            Ok(())
        }));
        PROXY_OK
    }
}

/// Checks `peer` as `proxy_session_set_peer` would, outside any session: PROXY_OK, or
/// INVALID_PARAMETER with the reason in `proxy_last_error` ("invalid port"). Lets a host refuse a
/// bad configured upstream at start-up instead of failing each request with 500. Any thread.
#[no_mangle]
pub extern "C" fn proxy_peer_check(peer: *const proxy_peer) -> proxy_result {
    ffi_panic_boundary! {
        let _ = try_ref!(peer);
        // SAFETY: non-NULL, and the host's struct is at least `struct_size` bytes.
        let p = try_res!(unsafe { copy_sized(peer, proxy_peer::MIN_SIZE) });
        try_res!(p.to_peer());
        PROXY_OK
    }
}

/// The response status: the head being filtered in `upstream_response_filter` /
/// `response_filter`, the status sent downstream afterwards. WRONG_PHASE before there is one.
#[no_mangle]
pub extern "C" fn proxy_session_response_status(
    s: *const proxy_session,
    out_status: *mut u32,
) -> proxy_result {
    ffi_panic_boundary! {
        let s = try_ref!(s);
        let out = try_mut!(out_status);
        put(out, s.with(|a| match a.extra {
            // SAFETY: valid while the cell is open.
            Extra::Response(p) => Ok(unsafe { &*p }.status.as_u16() as u32),
            // SAFETY: valid while the cell is open.
            Extra::CacheVerdict { response, .. } => Ok(unsafe { &*response }.status.as_u16() as u32),
            _ => a.session()?.response().map(|r| r.status.as_u16() as u32).ok_or(PROXY_WRONG_PHASE),
        }))
    }
}

/// Changes the response status (only in `upstream_response_filter` / `response_filter`;
/// 200..=599). The reason phrase becomes the canonical one.
#[no_mangle]
pub extern "C" fn proxy_session_set_response_status(s: *mut proxy_session, status: u32) -> proxy_result {
    ffi_panic_boundary! {
        let s = try_ref!(s);
        if !(200..=599).contains(&status) {
            return PROXY_INVALID_PARAMETER;
        }
        let st = try_res!(StatusCode::from_u16(status as u16).map_err(|_| PROXY_INVALID_PARAMETER));
        try_res!(s.with(|a| match a.extra {
            Extra::Response(p) => {
                // SAFETY: valid while the cell is open; the lock makes us the only user.
                let h = unsafe { &mut *p };
                h.status = st;
                h.reason = Bytes::from_static(st.canonical_reason().unwrap_or("").as_bytes());
                Ok(())
            }
            _ => Err(PROXY_WRONG_PHASE),
        }));
        PROXY_OK
    }
}

/// A response given from C: `status` (200..=599), `n_headers` headers (validated like every
/// header set from C) and `body_len` bytes of body, copied.
pub(crate) fn local_response(
    status: u32,
    headers: *const proxy_header,
    n_headers: usize,
    body: *const u8,
    body_len: usize,
) -> Result<(ResponseHead, Bytes), proxy_result> {
    if (headers.is_null() && n_headers > 0) || (body.is_null() && body_len > 0) {
        return Err(PROXY_NULL_PARAMETER);
    }
    if !(200..=599).contains(&status) {
        return Err(PROXY_INVALID_PARAMETER);
    }
    let st = StatusCode::from_u16(status as u16).map_err(|_| PROXY_INVALID_PARAMETER)?;
    let mut head = ResponseHead::new(st);
    for i in 0..n_headers {
        // SAFETY: the caller gave `n_headers` readable elements.
        let h = unsafe { headers.add(i).read() };
        head.headers.append(settable_name(&h.name)?, header_value(&h.value)?);
    }
    let body = if body_len == 0 {
        Bytes::new()
    } else {
        // SAFETY: non-NULL with `body_len` readable bytes, as documented.
        Bytes::copy_from_slice(unsafe { std::slice::from_raw_parts(body, body_len) })
    };
    Ok((head, body))
}

/// Answers the request locally: `status` (200..=599), `n_headers` headers, and `body_len` bytes of
/// body (Content-Length is set by the proxy). Everything is copied. Then return `PROXY_RESPONDED`
/// (or resume with it). Allowed in `early_request_filter`, `request_filter` and `fail_to_proxy`.
/// Nothing is stored when any header is invalid (HEADER_INVALID) or the status is out of range.
/// Once per request: a second call answers ALREADY and keeps the first response. A callback that
/// responds and then returns `PROXY_CONTINUE` still gets its response sent as given (the upstream
/// is skipped), with a warning in the server's log.
#[no_mangle]
pub extern "C" fn proxy_session_respond(
    s: *mut proxy_session,
    status: u32,
    headers: *const proxy_header,
    n_headers: usize,
    body: *const u8,
    body_len: usize,
) -> proxy_result {
    ffi_panic_boundary! {
        let s = try_ref!(s);
        let (head, body) = try_res!(local_response(status, headers, n_headers, body, body_len));
        try_res!(s.with(|a| match a.phase {
            PROXY_PHASE_EARLY_REQUEST_FILTER | PROXY_PHASE_REQUEST_FILTER | PROXY_PHASE_FAIL_TO_PROXY => {
                let session = a.session_mut()?;
                // Silently replacing the first answer would hide a host bug (two code paths
                // answering one request); the first one stands.
                if session.has_local_response() {
                    return Err(PROXY_ALREADY);
                }
                session.respond(head, body);
                Ok(())
            }
            _ => Err(PROXY_WRONG_PHASE),
        }));
        PROXY_OK
    }
}

/// The body chunk in a body filter phase as bytes (the empty view `{NULL, 0}` when there is none)
/// and whether it is the last call for this body (`*out_end_of_stream` = 1). `out_end_of_stream`
/// may be NULL. The view is valid until the callback returns or `proxy_session_set_body`.
/// (ABI 0.5: `out` is a `proxy_bytes`, same layout as the `proxy_str` of 0.4.) Errors:
/// NULL_PARAMETER, WRONG_PHASE (not a body filter phase).
#[no_mangle]
pub extern "C" fn proxy_session_body(
    s: *const proxy_session,
    out: *mut proxy_bytes,
    out_end_of_stream: *mut u32,
) -> proxy_result {
    ffi_panic_boundary! {
        let s = try_ref!(s);
        let out = try_mut!(out);
        let r = s.with(|a| match a.extra {
            // SAFETY: valid while the cell is open.
            Extra::Body(p, end) => Ok((unsafe { &*p }.as_ref().map(|b| proxy_bytes::from_bytes(b)).unwrap_or(proxy_bytes::EMPTY), end)),
            _ => Err(PROXY_WRONG_PHASE),
        });
        let (v, end) = try_res!(r);
        // SAFETY: NULL or valid, as documented.
        if let Some(e) = unsafe { out_end_of_stream.as_mut() } {
            *e = end as u32;
        }
        put(out, Ok(v))
    }
}

/// Replaces the body chunk in a body filter phase with a copy of the `len` bytes at `data` (`len` 0
/// drops the chunk; `data` may then be NULL). The bytes are the same `uint8_t` that
/// `proxy_session_body` hands out. For response bodies whose length changes, remove Content-Length
/// in `response_filter` first. Views from `proxy_session_body` obtained before are invalidated.
/// Errors: NULL_PARAMETER, WRONG_PHASE (not a body filter phase).
#[no_mangle]
pub extern "C" fn proxy_session_set_body(s: *mut proxy_session, data: *const u8, len: usize) -> proxy_result {
    ffi_panic_boundary! {
        let s = try_ref!(s);
        if data.is_null() && len > 0 {
            return PROXY_NULL_PARAMETER;
        }
        let new = if len == 0 {
            None
        } else {
            // SAFETY: non-NULL with `len` readable bytes.
            Some(Bytes::copy_from_slice(unsafe { std::slice::from_raw_parts(data, len) }))
        };
        try_res!(s.with(|a| match a.extra {
            Extra::Body(p, _) => {
                // SAFETY: valid while the cell is open; the lock makes us the only user.
                unsafe { *p = new };
                Ok(())
            }
            _ => Err(PROXY_WRONG_PHASE),
        }));
        PROXY_OK
    }
}

/// In `connected_to_upstream`: 1 when the upstream connection came from the pool, else 0.
#[no_mangle]
pub extern "C" fn proxy_session_upstream_reused(s: *const proxy_session, out: *mut u32) -> proxy_result {
    ffi_panic_boundary! {
        let s = try_ref!(s);
        let out = try_mut!(out);
        put(out, s.with(|a| match a.extra {
            Extra::Connected { reused } => Ok(reused as u32),
            _ => Err(PROXY_WRONG_PHASE),
        }))
    }
}

/// The error, as text: the current one in `fail_to_connect` / `error_while_proxy` /
/// `fail_to_proxy`, the final one in `logging`. NOT_FOUND when the request did not fail.
#[no_mangle]
pub extern "C" fn proxy_session_error(s: *const proxy_session, out: *mut proxy_str) -> proxy_result {
    ffi_panic_boundary! {
        let s = try_ref!(s);
        let out = try_mut!(out);
        put(out, s.with(|a| match a.extra {
            // SAFETY: valid while the cell is open (see `Extra::Failure`).
            Extra::Failure { error, .. } => Ok(proxy_str::from_bytes(unsafe { &*error }.as_bytes())),
            _ => a.session()?.summary.error.as_deref().map(|e| proxy_str::from_bytes(e.as_bytes())).ok_or(PROXY_NOT_FOUND),
        }))
    }
}

/// In `fail_to_connect` / `error_while_proxy`: allow (1) or forbid (0) another attempt (which calls
/// `upstream_peer` again). Connect failures are retryable by default. The retry budget and body
/// replay rules still apply.
#[no_mangle]
pub extern "C" fn proxy_session_set_retry(s: *mut proxy_session, retry: u32) -> proxy_result {
    ffi_panic_boundary! {
        let s = try_ref!(s);
        try_res!(s.with(|a| match &mut a.extra {
            Extra::Failure { retry: r, .. } => { *r = retry != 0; Ok(()) }
            _ => Err(PROXY_WRONG_PHASE),
        }));
        PROXY_OK
    }
}

/// Attempts beyond the first so far (useful in `upstream_peer` to pick another peer).
#[no_mangle]
pub extern "C" fn proxy_session_retries(s: *const proxy_session, out: *mut u32) -> proxy_result {
    ffi_panic_boundary! {
        let s = try_ref!(s);
        let out = try_mut!(out);
        put(out, s.with(|a| Ok(a.session()?.retries() as u32)))
    }
}

fn us(d: Option<std::time::Duration>) -> u64 {
    d.map(|d| d.as_micros() as u64).unwrap_or(0)
}

/// Copies the request's summary (complete in `logging`, partial before) into `*out`, writing at
/// most `out->struct_size` bytes (set it to `sizeof(proxy_summary)`).
#[no_mangle]
pub extern "C" fn proxy_session_summary(s: *const proxy_session, out: *mut proxy_summary) -> proxy_result {
    ffi_panic_boundary! {
        let s = try_ref!(s);
        let _ = try_ref!(out);
        // SAFETY: non-NULL; the first field is the host's struct size.
        let size = unsafe { out.cast::<u32>().read_unaligned() } as usize;
        if size < 8 {
            return PROXY_INVALID_PARAMETER;
        }
        let r = s.with(|a| {
            let m = &a.session()?.summary;
            Ok(proxy_summary {
                struct_size: size.min(std::mem::size_of::<proxy_summary>()) as u32,
                status: m.status as u32,
                bytes_in: m.bytes_in,
                bytes_out: m.bytes_out,
                upstream_connect_us: us(m.upstream_connect),
                time_to_first_byte_us: us(m.time_to_first_byte),
                total_us: m.total.as_micros() as u64,
                retries: m.retries as u32,
                reused: m.reused as u32,
                error_status: m.error_status as u32,
                truncated: m.truncated as u32,
            })
        });
        let v = try_res!(r);
        let n = size.min(std::mem::size_of::<proxy_summary>());
        // SAFETY: the host's struct has `size` writable bytes and n <= size.
        unsafe { std::ptr::copy_nonoverlapping((&v as *const proxy_summary).cast::<u8>(), out.cast::<u8>(), n) };
        PROXY_OK
    }
}

/// Attaches host data to the request (any phase, `request_end` included). libproxy never touches
/// it; free it in the `request_end` callback.
#[no_mangle]
pub extern "C" fn proxy_session_set_user(s: *mut proxy_session, user: *mut c_void) -> proxy_result {
    ffi_panic_boundary! {
        let s = try_ref!(s);
        // Through `with`, so a host thread still holding an expired pending session gets GONE
        // like from every other accessor, whatever the worker is doing meanwhile.
        try_res!(s.with(|a| {
            a.user = user;
            Ok(())
        }));
        PROXY_OK
    }
}

/// The host data set with `proxy_session_set_user` (NULL if none, or if `s` is NULL).
#[no_mangle]
pub extern "C" fn proxy_session_get_user(s: *const proxy_session) -> *mut c_void {
    ffi_panic_boundary! {
        // SAFETY: NULL or a session handed to a callback.
        match unsafe { s.as_ref() } {
            Some(s) => s.access.lock().user,
            None => std::ptr::null_mut(),
        }
    }
}
