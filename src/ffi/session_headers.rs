//! `proxy_session` header accessors: the request, upstream request and response blocks, read and
//! changed with the same validation as the wire (no CR/LF/NUL, no host-set framing fields).

use super::result::*;
use super::types::*;
use http::header::{CONTENT_LENGTH, TRANSFER_ENCODING};
use http::{HeaderName, HeaderValue};

use super::session::*;

pub(crate) fn header_name(name: &proxy_str) -> Result<HeaderName, proxy_result> {
    HeaderName::from_bytes(name.bytes()?).map_err(|_| PROXY_HEADER_INVALID)
}

/// A name a host may set: valid, and not one of the framing headers the proxy computes itself.
pub(crate) fn settable_name(name: &proxy_str) -> Result<HeaderName, proxy_result> {
    let n = header_name(name)?;
    if n == CONTENT_LENGTH || n == TRANSFER_ENCODING {
        return Err(PROXY_HEADER_INVALID);
    }
    Ok(n)
}

pub(crate) fn header_value(value: &proxy_str) -> Result<HeaderValue, proxy_result> {
    HeaderValue::from_bytes(value.bytes()?).map_err(|_| PROXY_HEADER_INVALID)
}

/// The number of header fields (each value of a repeated name counts) in block `kind`
/// (`PROXY_HEADERS_*`). WRONG_PHASE when the block does not exist in this phase.
#[no_mangle]
pub extern "C" fn proxy_session_header_count(
    s: *const proxy_session,
    kind: proxy_headers_kind,
    out_n: *mut usize,
) -> proxy_result {
    ffi_panic_boundary! {
        let s = try_ref!(s);
        let out = try_mut!(out_n);
        put(out, s.with(|a| Ok(a.headers(kind)?.len())))
    }
}

/// The `index`-th value (0-based) of header `name` (case-insensitive) in block `kind`.
/// `out_count` (may be NULL) receives how many values `name` has. NOT_FOUND when there is no such
/// value; `*out_count` is still written then. HEADER_INVALID for a malformed name.
#[no_mangle]
pub extern "C" fn proxy_session_header_get(
    s: *const proxy_session,
    kind: proxy_headers_kind,
    name: proxy_str,
    index: usize,
    out: *mut proxy_str,
    out_count: *mut usize,
) -> proxy_result {
    ffi_panic_boundary! {
        let s = try_ref!(s);
        let out = try_mut!(out);
        let name = try_res!(header_name(&name));
        let r = s.with(|a| {
            let h = a.headers(kind)?;
            let count = h.values(&name).count();
            Ok((count, h.values(&name).nth(index).map(proxy_str::from_bytes)))
        });
        let (count, v) = try_res!(r);
        // SAFETY: NULL or a valid pointer, as documented.
        if let Some(c) = unsafe { out_count.as_mut() } {
            *c = count;
        }
        put(out, v.ok_or(PROXY_NOT_FOUND))
    }
}

/// The `index`-th header field (0-based, grouped by name in first-arrival order) of block `kind`.
/// NOT_FOUND past the end.
#[no_mangle]
pub extern "C" fn proxy_session_header_nth(
    s: *const proxy_session,
    kind: proxy_headers_kind,
    index: usize,
    out: *mut proxy_header,
) -> proxy_result {
    ffi_panic_boundary! {
        let s = try_ref!(s);
        let out = try_mut!(out);
        put(out, s.with(|a| {
            let (n, v) = a.headers(kind)?.map().iter().nth(index).ok_or(PROXY_NOT_FOUND)?;
            Ok(proxy_header { name: proxy_str::from_bytes(n.as_str().as_bytes()), value: proxy_str::from_bytes(v.as_bytes()) })
        }))
    }
}

/// Bulk read: fills `out[0..cap]` with every field of block `kind` and sets `*out_n` to the count.
/// When `cap` is too small, answers TOO_SMALL and sets only `*out_n` (call again with a bigger
/// array). `out` may be NULL when `cap` is 0.
#[no_mangle]
pub extern "C" fn proxy_session_headers(
    s: *const proxy_session,
    kind: proxy_headers_kind,
    out: *mut proxy_header,
    cap: usize,
    out_n: *mut usize,
) -> proxy_result {
    ffi_panic_boundary! {
        let s = try_ref!(s);
        let out_n = try_mut!(out_n);
        if out.is_null() && cap > 0 {
            return PROXY_NULL_PARAMETER;
        }
        let r = s.with(|a| {
            let h = a.headers(kind)?;
            let n = h.len();
            if n > cap {
                return Ok((n, false));
            }
            for (i, (name, v)) in h.map().iter().enumerate() {
                // SAFETY: i < n <= cap, and the caller gave `cap` writable elements.
                unsafe {
                    out.add(i).write(proxy_header { name: proxy_str::from_bytes(name.as_str().as_bytes()), value: proxy_str::from_bytes(v.as_bytes()) });
                }
            }
            Ok((n, true))
        });
        let (n, fits) = try_res!(r);
        *out_n = n;
        if fits { PROXY_OK } else { PROXY_TOO_SMALL }
    }
}

/// Replaces every value of `name` in block `kind` with `value`. Validated like the wire: a name
/// that is not a token, a value with CR/LF/NUL/controls, or Content-Length / Transfer-Encoding
/// (managed by the proxy) answer HEADER_INVALID and change nothing. Views into the block die.
#[no_mangle]
pub extern "C" fn proxy_session_header_set(
    s: *mut proxy_session,
    kind: proxy_headers_kind,
    name: proxy_str,
    value: proxy_str,
) -> proxy_result {
    ffi_panic_boundary! {
        let s = try_ref!(s);
        let n = try_res!(settable_name(&name));
        let v = try_res!(header_value(&value));
        try_res!(s.with(|a| { a.headers_mut(kind)?.insert(n, v); Ok(()) }));
        PROXY_OK
    }
}

/// Appends a value to `name` in block `kind` (validated as for `proxy_session_header_set`).
#[no_mangle]
pub extern "C" fn proxy_session_header_add(
    s: *mut proxy_session,
    kind: proxy_headers_kind,
    name: proxy_str,
    value: proxy_str,
) -> proxy_result {
    ffi_panic_boundary! {
        let s = try_ref!(s);
        let n = try_res!(settable_name(&name));
        let v = try_res!(header_value(&value));
        try_res!(s.with(|a| { a.headers_mut(kind)?.append(n, v); Ok(()) }));
        PROXY_OK
    }
}

/// Removes every value of `name` from block `kind`. NOT_FOUND when there was none.
/// (Removing Content-Length from a response is allowed: the proxy then chunks the body.)
#[no_mangle]
pub extern "C" fn proxy_session_header_remove(
    s: *mut proxy_session,
    kind: proxy_headers_kind,
    name: proxy_str,
) -> proxy_result {
    ffi_panic_boundary! {
        let s = try_ref!(s);
        let n = try_res!(header_name(&name));
        let r = s.with(|a| a.headers_mut(kind)?.remove(n).then_some(()).ok_or(PROXY_NOT_FOUND));
        try_res!(r);
        PROXY_OK
    }
}
