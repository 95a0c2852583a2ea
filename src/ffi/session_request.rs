//! `proxy_session` accessors for the request: identity, phase, method, target, version, addresses.

use super::result::*;
use super::types::*;

use super::session::*;

/// The id to pass to `proxy_session_resume`. Ids are unique for the server's life and never
/// reused, so resuming an old id safely answers `PROXY_GONE`. The id is the same in every phase,
/// but calling this inside a callback also arms that callback's resume decision: call it in the
/// callback that returns `PROXY_PENDING` before handing the id to another thread (a resume that
/// arrives before the callback returned is honoured only then). Errors: NULL_PARAMETER,
/// WRONG_PHASE (not inside a callback nor pending), GONE.
#[no_mangle]
pub extern "C" fn proxy_session_id(s: *const proxy_session, out_id: *mut u64) -> proxy_result {
    ffi_panic_boundary! {
        let s = try_ref!(s);
        let out = try_mut!(out_id);
        let r = s.with(|a| {
            // Inside a callback, asking for the id arms the callback's resume decision (unless
            // it was already armed or resumed by this very callback).
            if a.state == State::InCallback && !a.expired {
                match a.decision {
                    Decision::Armed(n) | Decision::Resumed(n) if n == a.seq => {}
                    _ => a.decision = Decision::Armed(a.seq),
                }
            }
            Ok(())
        });
        try_res!(r);
        *out = s.register();
        PROXY_OK
    }
}

/// The phase whose callback is running (`PROXY_PHASE_*`; `PROXY_PHASE_NONE` outside callbacks).
#[no_mangle]
pub extern "C" fn proxy_session_phase(s: *const proxy_session, out_phase: *mut proxy_phase) -> proxy_result {
    ffi_panic_boundary! {
        let s = try_ref!(s);
        let out = try_mut!(out_phase);
        put(out, Ok(s.access.lock().phase))
    }
}

/// The request method, e.g. "GET". Any phase but `request_end`.
#[no_mangle]
pub extern "C" fn proxy_session_method(s: *const proxy_session, out: *mut proxy_str) -> proxy_result {
    ffi_panic_boundary! {
        let s = try_ref!(s);
        let out = try_mut!(out);
        put(out, s.with(|a| Ok(proxy_str::from_bytes(a.session()?.req.method.as_str().as_bytes()))))
    }
}

/// The request target as received (origin form `/a?b`, or absolute / authority form), or as set
/// by `proxy_session_set_uri` in an earlier phase. Built on the first call and kept until
/// `proxy_session_set_uri`: calls in between hand out the same view.
#[no_mangle]
pub extern "C" fn proxy_session_uri(s: *const proxy_session, out: *mut proxy_str) -> proxy_result {
    ffi_panic_boundary! {
        let s = try_ref!(s);
        let out = try_mut!(out);
        put(out, s.with(|a| {
            a.session()?;
            let text = cached_text(a, |a| &mut a.uri, |a| Ok(a.session()?.req.uri.to_string()))?;
            Ok(proxy_str::from_bytes(text.as_bytes()))
        }))
    }
}

/// Replaces the request target sent upstream with `uri`, which must be origin-form (`/path` with an
/// optional `?query`; no scheme, authority, fragment, whitespace or control bytes: INVALID_PARAMETER,
/// nothing changed). In early_request_filter, request_filter, upstream_peer and
/// connected_to_upstream it rewrites the request itself (later `proxy_session_uri` / `_path` /
/// `_query` see the new target); in upstream_request_filter only the upstream request. Other
/// phases: WRONG_PHASE. Views from `proxy_session_uri` obtained before are invalidated.
#[no_mangle]
pub extern "C" fn proxy_session_set_uri(s: *mut proxy_session, uri: proxy_str) -> proxy_result {
    ffi_panic_boundary! {
        let s = try_ref!(s);
        let bytes = try_res!(uri.bytes());
        let new = try_res!(origin_form(bytes));
        try_res!(s.with(|a| {
            match a.phase {
                PROXY_PHASE_EARLY_REQUEST_FILTER
                | PROXY_PHASE_REQUEST_FILTER
                | PROXY_PHASE_UPSTREAM_PEER
                | PROXY_PHASE_CONNECTED_TO_UPSTREAM => {
                    a.session_mut()?.req.uri = new;
                    a.uri = None;
                }
                PROXY_PHASE_UPSTREAM_REQUEST_FILTER => match a.extra {
                    // SAFETY: valid while the cell is open (see `Access::session`).
                    Extra::UpstreamRequest(p) => unsafe { (*p).uri = new },
                    _ => return Err(PROXY_WRONG_PHASE),
                },
                _ => return Err(PROXY_WRONG_PHASE),
            }
            Ok(())
        }));
        PROXY_OK
    }
}

/// An origin-form request target (`/path?query`), validated like one read from the wire.
fn origin_form(bytes: &[u8]) -> Result<http::Uri, proxy_result> {
    if bytes.first() != Some(&b'/') || bytes.len() > 8192 {
        return Err(PROXY_INVALID_PARAMETER);
    }
    // The http crate rejects bytes outside the URI grammar (space, CR, LF, NUL, other controls,
    // non-ASCII) but would quietly drop a fragment: refuse it, it never goes on the wire.
    if bytes.iter().any(|&b| b == b'#' || b <= b' ' || b >= 0x7f) {
        return Err(PROXY_INVALID_PARAMETER);
    }
    let u = http::Uri::try_from(bytes).map_err(|_| PROXY_INVALID_PARAMETER)?;
    if u.scheme().is_some() || u.authority().is_some() {
        return Err(PROXY_INVALID_PARAMETER);
    }
    Ok(u)
}

/// The path of the request target, without the query.
#[no_mangle]
pub extern "C" fn proxy_session_path(s: *const proxy_session, out: *mut proxy_str) -> proxy_result {
    ffi_panic_boundary! {
        let s = try_ref!(s);
        let out = try_mut!(out);
        put(out, s.with(|a| Ok(proxy_str::from_bytes(a.session()?.req.uri.path().as_bytes()))))
    }
}

/// The query string without `?`. NOT_FOUND when the target has no `?`.
#[no_mangle]
pub extern "C" fn proxy_session_query(s: *const proxy_session, out: *mut proxy_str) -> proxy_result {
    ffi_panic_boundary! {
        let s = try_ref!(s);
        let out = try_mut!(out);
        put(out, s.with(|a| {
            a.session()?.req.uri.query().map(|q| proxy_str::from_bytes(q.as_bytes())).ok_or(PROXY_NOT_FOUND)
        }))
    }
}

/// `proxy_session_version`: HTTP/1.0.
pub const PROXY_HTTP_10: u32 = 10;
/// `proxy_session_version`: HTTP/1.1.
pub const PROXY_HTTP_11: u32 = 11;
/// `proxy_session_version`: HTTP/2 (over TLS by ALPN, or h2c by prior knowledge).
pub const PROXY_HTTP_20: u32 = 20;

/// The downstream request's HTTP version: `PROXY_HTTP_10`, `PROXY_HTTP_11` or `PROXY_HTTP_20`
/// (the only versions the listeners accept; the version number times ten, so a future HTTP/3
/// would read 30).
#[no_mangle]
pub extern "C" fn proxy_session_version(s: *const proxy_session, out: *mut u32) -> proxy_result {
    ffi_panic_boundary! {
        let s = try_ref!(s);
        let out = try_mut!(out);
        put(out, s.with(|a| Ok(match a.session()?.req.version {
            // The HTTP/1 parser rejects HTTP/0.9 requests, so this cannot be reached with one.
            http::Version::HTTP_09 | http::Version::HTTP_10 => PROXY_HTTP_10,
            http::Version::HTTP_2 => PROXY_HTTP_20,
            http::Version::HTTP_3 => 30,
            _ => PROXY_HTTP_11,
        })))
    }
}

/// The client's address as text: `1.2.3.4:5678`, `[::1]:5678` or `unix:/path`. NOT_FOUND if unknown.
/// Built on the first call and kept for the request: later calls hand out the same view.
#[no_mangle]
pub extern "C" fn proxy_session_client_addr(s: *const proxy_session, out: *mut proxy_str) -> proxy_result {
    ffi_panic_boundary! {
        let s = try_ref!(s);
        let out = try_mut!(out);
        put(out, s.with(|a| {
            a.session()?;
            let text = cached_text(a, |a| &mut a.client_addr, |a| {
                a.session()?.client_addr().map(|x| x.to_string()).ok_or(PROXY_NOT_FOUND)
            })?;
            Ok(proxy_str::from_bytes(text.as_bytes()))
        }))
    }
}

/// The local address the request arrived on, as text. NOT_FOUND if unknown. Built on the first
/// call and kept for the request: later calls hand out the same view.
#[no_mangle]
pub extern "C" fn proxy_session_server_addr(s: *const proxy_session, out: *mut proxy_str) -> proxy_result {
    ffi_panic_boundary! {
        let s = try_ref!(s);
        let out = try_mut!(out);
        put(out, s.with(|a| {
            a.session()?;
            let text = cached_text(a, |a| &mut a.server_addr, |a| {
                a.session()?.server_addr().map(|x| x.to_string()).ok_or(PROXY_NOT_FOUND)
            })?;
            Ok(proxy_str::from_bytes(text.as_bytes()))
        }))
    }
}
