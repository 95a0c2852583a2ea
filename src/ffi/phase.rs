//! The phase table: each `PROXY_PHASE_*` number's name and whether its callback may wait. One
//! source for the library's own messages and for the bindings (`proxy_phase_name`,
//! `proxy_phase_may_pend`), which would otherwise each keep a copy that drifts when a phase is added.

use std::ffi::c_char;

use super::session::*;

/// A phase's name (NUL-terminated: it is handed to C as is) and whether it may return PENDING.
struct PhaseInfo {
    name: &'static str,
    may_pend: bool,
}

const fn info(name: &'static str, may_pend: bool) -> PhaseInfo {
    PhaseInfo { name, may_pend }
}

/// Indexed by `PROXY_PHASE_*`; names are the `proxy_http_callbacks` fields, in field order. The
/// phases that cannot wait are those after the response is decided (logging, request_end), the
/// retry decisions (fail_to_connect, error_while_proxy) and the cache decisions, which run inside
/// a cache lookup other requests wait on; `callbacks.rs` calls them with `may_wait = false`.
const PHASES: [PhaseInfo; 20] = [
    info("none\0", false),
    info("early_request_filter\0", true),
    info("request_filter\0", true),
    info("upstream_peer\0", true),
    info("connected_to_upstream\0", true),
    info("upstream_request_filter\0", true),
    info("request_body_filter\0", true),
    info("upstream_response_filter\0", true),
    info("response_filter\0", true),
    info("upstream_response_body_filter\0", true),
    info("response_body_filter\0", true),
    info("logging\0", false),
    info("fail_to_connect\0", false),
    info("error_while_proxy\0", false),
    info("fail_to_proxy\0", true),
    info("request_end\0", false),
    info("request_cache_filter\0", false),
    info("cache_key_callback\0", false),
    info("cache_hit_filter\0", false),
    info("response_cache_filter\0", false),
];

const _: () = assert!(PHASES.len() == PROXY_PHASE_RESPONSE_CACHE_FILTER as usize + 1);

/// The name of `phase` without its NUL ("request_filter"), "unknown" for a number that is none.
pub(crate) fn phase_name(phase: proxy_phase) -> &'static str {
    PHASES.get(phase as usize).map_or("unknown", |p| p.name.trim_end_matches('\0'))
}

/// The name of phase `phase` ("request_filter": its field in `proxy_http_callbacks`, which lists
/// the phases in number order), "none" for `PROXY_PHASE_NONE`, NULL for a number that is no phase
/// of this library. Bindings enumerate the phases by counting up from 1 until NULL. The string is
/// static: never free it. Any thread.
#[no_mangle]
pub extern "C" fn proxy_phase_name(phase: proxy_phase) -> *const c_char {
    ffi_panic_boundary! {
        PHASES.get(phase as usize).map_or(std::ptr::null(), |p| p.name.as_ptr().cast())
    }
}

/// 1 when a callback of `phase` may return `PROXY_PENDING` (and decide later with
/// `proxy_session_resume`), 0 when it cannot wait (PENDING there counts as PROXY_ERROR), for
/// `PROXY_PHASE_NONE` and for a number that is no phase. Any thread.
#[no_mangle]
pub extern "C" fn proxy_phase_may_pend(phase: proxy_phase) -> u32 {
    ffi_panic_boundary! { value: PHASES.get(phase as usize).is_some_and(|p| p.may_pend) as u32 }
}
