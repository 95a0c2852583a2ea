//! The HTTP cache from C: a `proxy_cache` (an in-memory store with its settings) attached to one
//! or more services, purge by key, and what the cache callbacks may decide for one request.

use std::sync::Arc;
use std::time::Duration;

use super::error::fail;
use super::result::*;
use super::server::proxy_service;
use super::session::{proxy_session, put, Extra};
use super::types::input;
use crate::cache::{CacheKey, CacheStatus, HttpCache};

/// A cache: an in-memory store bounded in bytes, its lock and its settings. Attach it to services
/// with `proxy_service_set_cache` (the same cache in several services is one shared cache).
/// Thread-safe once attached; its settings are changed only before.
pub struct proxy_cache {
    inner: Arc<HttpCache>,
}

/// Responses longer than this many bytes are passed on but not stored (default 8 MiB; > 0).
pub const PROXY_CACHE_MAX_OBJECT: u32 = 1;
/// Add `x-cache-status: HIT|MISS|STALE|REVALIDATED|EXPIRED|BYPASS` to responses: 1 on, 0 off
/// (default).
pub const PROXY_CACHE_STATUS_HEADER: u32 = 2;
/// Store responses that carry Set-Cookie: 1 on, 0 off (default; a cookie set for one client would
/// be handed to every client).
pub const PROXY_CACHE_ALLOW_SET_COOKIE: u32 = 3;
/// Give responses without explicit freshness a tenth of their age since Last-Modified, at most a
/// day (RFC 9111 §4.2.2): 1 on, 0 off (default).
pub const PROXY_CACHE_HEURISTIC_FRESHNESS: u32 = 4;
/// How long a request waits for another one fetching the same key before going upstream
/// itself, in milliseconds (default 5000).
pub const PROXY_CACHE_LOCK_TIMEOUT_MS: u32 = 5;

/// `proxy_session_set_cache` in `request_cache_filter`: 1 keeps this request away from the cache.
pub const PROXY_CACHE_BYPASS: u32 = 1;
/// `proxy_session_set_cache` in `cache_hit_filter`: 1 treats the stored response as expired.
pub const PROXY_CACHE_EXPIRE: u32 = 2;
/// `proxy_session_set_cache` in `response_cache_filter`: 1 stores the response, 0 does not.
pub const PROXY_CACHE_STORE: u32 = 3;
/// `proxy_session_set_cache` in `response_cache_filter`: its freshness lifetime in seconds.
pub const PROXY_CACHE_TTL: u32 = 4;

/// `proxy_session_cache_status`: the service has no cache.
pub const PROXY_CACHE_STATUS_NONE: u32 = 0;
/// Served from the cache, fresh.
pub const PROXY_CACHE_STATUS_HIT: u32 = 1;
/// Fetched (and stored when allowed).
pub const PROXY_CACHE_STATUS_MISS: u32 = 2;
/// Served from the cache past its freshness (max-stale, stale-while-revalidate, stale-if-error).
pub const PROXY_CACHE_STATUS_STALE: u32 = 3;
/// Stale, made fresh by the origin's 304, and served.
pub const PROXY_CACHE_STATUS_REVALIDATED: u32 = 4;
/// Stale, and the origin sent a new response.
pub const PROXY_CACHE_STATUS_EXPIRED: u32 = 5;
/// Not looked up (method, request, or request_cache_filter).
pub const PROXY_CACHE_STATUS_BYPASS: u32 = 6;

/// Creates a cache holding at most `max_bytes` (bodies, heads and a small per-object overhead).
/// `*out` receives it (free with `proxy_cache_free`). INVALID_PARAMETER for 0. (ABI 0.7)
#[no_mangle]
pub extern "C" fn proxy_cache_new(max_bytes: u64, out: *mut *mut proxy_cache) -> proxy_result {
    ffi_panic_boundary! {
        let out = try_mut!(out);
        let Ok(max) = usize::try_from(max_bytes) else { return PROXY_INVALID_PARAMETER };
        if max == 0 {
            return fail(PROXY_INVALID_PARAMETER, format_args!("a cache of 0 bytes"));
        }
        *out = Box::into_raw(Box::new(proxy_cache { inner: Arc::new(HttpCache::new(max)) }));
        PROXY_OK
    }
}

/// Frees the caller's handle; services it was attached to keep the cache until they end. NULL is
/// a no-op. Always PROXY_OK. (ABI 0.7)
#[no_mangle]
pub extern "C" fn proxy_cache_free(cache: *mut proxy_cache) -> proxy_result {
    ffi_panic_boundary! {
        if !cache.is_null() {
            // SAFETY: created by proxy_cache_new, not freed before.
            drop(unsafe { Box::from_raw(cache) });
        }
        PROXY_OK
    }
}

/// Sets cache setting `which` (`PROXY_CACHE_*` of the settings group) to `value`. Only before
/// the cache is attached to a service (WRONG_PHASE after); INVALID_PARAMETER for an unknown
/// setting or a value out of range (nothing changed). From one thread. (ABI 0.7)
#[no_mangle]
pub extern "C" fn proxy_cache_set(cache: *mut proxy_cache, which: u32, value: u64) -> proxy_result {
    ffi_panic_boundary! {
        let c = try_mut!(cache);
        let Some(inner) = Arc::get_mut(&mut c.inner) else {
            return fail(PROXY_WRONG_PHASE, format_args!("cache settings change only before proxy_service_set_cache"));
        };
        let s = &mut inner.settings;
        let flag = (value <= 1).then_some(value == 1);
        let ok = match (which, flag) {
            (PROXY_CACHE_MAX_OBJECT, _) if value > 0 => usize::try_from(value).map(|v| s.max_object = v).is_ok(),
            (PROXY_CACHE_STATUS_HEADER, Some(on)) => { s.status_header = on; true }
            (PROXY_CACHE_ALLOW_SET_COOKIE, Some(on)) => { s.policy.allow_set_cookie = on; true }
            (PROXY_CACHE_HEURISTIC_FRESHNESS, Some(on)) => { s.policy.heuristic_freshness = on; true }
            (PROXY_CACHE_LOCK_TIMEOUT_MS, _) => { s.lock_timeout = Duration::from_millis(value); true }
            _ => false,
        };
        if ok {
            PROXY_OK
        } else {
            fail(PROXY_INVALID_PARAMETER, format_args!("cache setting {which}: {value} is out of range"))
        }
    }
}

/// Caches the service's GET and HEAD responses in `cache` (which the service shares; the caller
/// may free its handle afterwards). Like every `proxy_service_*` setter: before
/// `proxy_server_add_service`, from one thread. (ABI 0.7)
#[no_mangle]
pub extern "C" fn proxy_service_set_cache(
    service: *mut proxy_service,
    cache: *const proxy_cache,
) -> proxy_result {
    ffi_panic_boundary! {
        let svc = try_mut!(service);
        let c = try_ref!(cache);
        svc.proxy_options().cache = Some(c.inner.clone());
        PROXY_OK
    }
}

/// Removes every response stored under `key` (`len` bytes; the default key of a request is
/// `scheme://host/path?query`, host lowercase, e.g. `http://example.com/a?b=1`). PROXY_OK when
/// something was removed, NOT_FOUND otherwise. Thread-safe. (ABI 0.7)
#[no_mangle]
pub extern "C" fn proxy_cache_purge(cache: *const proxy_cache, key: *const u8, len: usize) -> proxy_result {
    ffi_panic_boundary! {
        let c = try_ref!(cache);
        let bytes = try_res!(input(key, len));
        if c.inner.purge(&CacheKey::custom(bytes.to_vec())) { PROXY_OK } else { PROXY_NOT_FOUND }
    }
}

/// What the cache holds: `*out_bytes` (charged bytes) and `*out_objects` (stored responses).
/// Thread-safe. (ABI 0.7)
#[no_mangle]
pub extern "C" fn proxy_cache_usage(
    cache: *const proxy_cache,
    out_bytes: *mut u64,
    out_objects: *mut u64,
) -> proxy_result {
    ffi_panic_boundary! {
        let c = try_ref!(cache);
        let bytes = try_mut!(out_bytes);
        let objects = try_mut!(out_objects);
        let u = c.inner.usage();
        *bytes = u.bytes as u64;
        *objects = u.objects as u64;
        PROXY_OK
    }
}

/// A cache callback's decision for this request: `PROXY_CACHE_BYPASS` (request_cache_filter),
/// `PROXY_CACHE_EXPIRE` (cache_hit_filter), `PROXY_CACHE_STORE` / `PROXY_CACHE_TTL`
/// (response_cache_filter). WRONG_PHASE in another phase, INVALID_PARAMETER for a value out of
/// range. (ABI 0.7)
#[no_mangle]
pub extern "C" fn proxy_session_set_cache(s: *mut proxy_session, which: u32, value: u64) -> proxy_result {
    ffi_panic_boundary! {
        let s = try_ref!(s);
        try_res!(s.with(|a| {
            let flag = (value <= 1).then_some(value == 1);
            // SAFETY (each arm): the pointers are the worker's, valid while the cell is open.
            match (a.extra, which, flag) {
                (Extra::CacheFlag(p), PROXY_CACHE_BYPASS, Some(on)) if a.phase == super::session::PROXY_PHASE_REQUEST_CACHE_FILTER => unsafe { *p = on },
                (Extra::CacheFlag(p), PROXY_CACHE_EXPIRE, Some(on)) if a.phase == super::session::PROXY_PHASE_CACHE_HIT_FILTER => unsafe { *p = on },
                (Extra::CacheVerdict { verdict, .. }, PROXY_CACHE_STORE, Some(on)) => unsafe { (*verdict).store = on },
                (Extra::CacheVerdict { verdict, .. }, PROXY_CACHE_TTL, _) => unsafe { (*verdict).lifetime = value },
                (_, PROXY_CACHE_BYPASS..=PROXY_CACHE_TTL, Some(_)) | (_, PROXY_CACHE_TTL, _) => return Err(PROXY_WRONG_PHASE),
                _ => return Err(PROXY_INVALID_PARAMETER),
            }
            Ok(())
        }));
        PROXY_OK
    }
}

/// In `cache_key_callback`: the request's cache key (`len` bytes, copied). Leave out the host
/// only if every host the service serves has the same content. WRONG_PHASE in another phase.
/// (ABI 0.7)
#[no_mangle]
pub extern "C" fn proxy_session_set_cache_key(
    s: *mut proxy_session,
    key: *const u8,
    len: usize,
) -> proxy_result {
    ffi_panic_boundary! {
        let s = try_ref!(s);
        let bytes = try_res!(input(key, len)).to_vec();
        try_res!(s.with(|a| match a.extra {
            // SAFETY: valid while the cell is open.
            Extra::CacheKey(p) => { unsafe { *p = Some(CacheKey::custom(bytes)) }; Ok(()) }
            _ => Err(PROXY_WRONG_PHASE),
        }));
        PROXY_OK
    }
}

/// What the cache did for the request so far (`PROXY_CACHE_STATUS_*`; final in `logging`).
/// (ABI 0.7)
#[no_mangle]
pub extern "C" fn proxy_session_cache_status(s: *const proxy_session, out: *mut u32) -> proxy_result {
    ffi_panic_boundary! {
        let s = try_ref!(s);
        let out = try_mut!(out);
        put(out, s.with(|a| Ok(status_code(a.session()?.cache_status()))))
    }
}

fn status_code(s: Option<CacheStatus>) -> u32 {
    match s {
        None => PROXY_CACHE_STATUS_NONE,
        Some(CacheStatus::Hit) => PROXY_CACHE_STATUS_HIT,
        Some(CacheStatus::Miss) => PROXY_CACHE_STATUS_MISS,
        Some(CacheStatus::Stale) => PROXY_CACHE_STATUS_STALE,
        Some(CacheStatus::Revalidated) => PROXY_CACHE_STATUS_REVALIDATED,
        Some(CacheStatus::Expired) => PROXY_CACHE_STATUS_EXPIRED,
        Some(CacheStatus::Bypass) => PROXY_CACHE_STATUS_BYPASS,
    }
}
