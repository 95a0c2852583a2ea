//! Upstream groups from C: `proxy_group_*` (backends, settings, figures, health listener) and
//! `proxy_session_pick`, the one call an `upstream_peer` callback makes to use one.
//!
//! A group is named by a `uint64_t` id rather than a pointer: ids are never reused, so a call
//! with a freed or made-up id answers GONE instead of touching freed memory, and a group freed
//! while requests or other threads still use it lives until they are done with it.

use std::collections::HashMap;
use std::ffi::{c_char, c_void};
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, LazyLock};
use std::time::Duration;

use arc_swap::ArcSwap;
use parking_lot::Mutex;

use super::error::{err, fail};
use super::result::*;
use super::session::proxy_session;
use super::types::*;
use crate::upstream::{Algorithm, Backend, HealthEvent, OutlierDetection, UpstreamGroup, MAX_WEIGHT};

/// `proxy_group_new` algorithm: smooth weighted round robin (nginx's).
pub const PROXY_GROUP_ROUND_ROBIN: u32 = 0;
/// `proxy_group_new` algorithm: weighted random.
pub const PROXY_GROUP_RANDOM: u32 = 1;
/// `proxy_group_new` algorithm: least requests in flight of two random backends.
pub const PROXY_GROUP_LEAST_OUTSTANDING: u32 = 2;
/// `proxy_group_new` algorithm: Ketama consistent hash of the key, as nginx's
/// `hash $key consistent` (same backend names and weights, same mapping).
pub const PROXY_GROUP_KETAMA: u32 = 3;
/// `proxy_group_new` algorithm: Maglev consistent hash of the key.
pub const PROXY_GROUP_MAGLEV: u32 = 4;

/// `proxy_group_set`: requests in flight allowed per backend (0: no cap, the default). With
/// every backend at its cap a request fails with 503.
pub const PROXY_GROUP_MAX_IN_FLIGHT: u32 = 1;
/// `proxy_group_set`: failures in a row (connect failure, timeout, 5xx) that eject a backend
/// (default 5; 0 turns passive health off).
pub const PROXY_GROUP_EJECT_FAILURES: u32 = 2;
/// `proxy_group_set`: first ejection in milliseconds (default 30000); the n-th in a row lasts n
/// times as long.
pub const PROXY_GROUP_EJECT_BASE_MS: u32 = 3;
/// `proxy_group_set`: longest ejection in milliseconds (default 300000).
pub const PROXY_GROUP_EJECT_MAX_MS: u32 = 4;
/// `proxy_group_set`: most of the group ejected at once, in percent (default 10; one backend
/// may always be).
pub const PROXY_GROUP_EJECT_MAX_PERCENT: u32 = 5;
/// `proxy_group_set`: HTTP/1 connections allowed per backend, busy or pooled (0: no cap, the
/// default). A backend with that many open and all busy is skipped; with every backend so, a
/// request fails with 503. (ABI 0.7)
pub const PROXY_GROUP_MAX_CONNECTIONS: u32 = 6;

/// `proxy_group_backend_figure`: attempts sent to the backend.
pub const PROXY_BACKEND_REQUESTS: u32 = 1;
/// `proxy_group_backend_figure`: attempts that failed.
pub const PROXY_BACKEND_FAILURES: u32 = 2;
/// `proxy_group_backend_figure`: times it was ejected.
pub const PROXY_BACKEND_EJECTIONS: u32 = 3;
/// `proxy_group_backend_figure`: requests in flight now.
pub const PROXY_BACKEND_IN_FLIGHT: u32 = 4;
/// `proxy_group_backend_figure`: 1 when active health checks have it up (1 without checks).
pub const PROXY_BACKEND_HEALTHY: u32 = 5;
/// `proxy_group_backend_figure`: 1 while it is ejected.
pub const PROXY_BACKEND_EJECTED: u32 = 6;
/// `proxy_group_backend_figure`: its weight.
pub const PROXY_BACKEND_WEIGHT: u32 = 7;
/// `proxy_group_backend_figure`: HTTP/1 connections open to it now, busy or pooled. (ABI 0.7)
pub const PROXY_BACKEND_CONNECTIONS: u32 = 8;

/// Health listener event: active checks brought the backend up.
pub const PROXY_HEALTH_UP: u32 = 1;
/// Health listener event: active checks took the backend down.
pub const PROXY_HEALTH_DOWN: u32 = 2;
/// Health listener event: passive health ejected the backend.
pub const PROXY_HEALTH_EJECTED: u32 = 3;
/// Health listener event: an ejection ended.
pub const PROXY_HEALTH_READMITTED: u32 = 4;

/// A health listener: `backend` (its name) is valid only during the call; `event` is a
/// `PROXY_HEALTH_*`. Called from any thread (a worker during a pick, a health check's thread);
/// must not block and must not free the group.
pub type proxy_health_fn = Option<unsafe extern "C" fn(user: *mut c_void, backend: proxy_str, event: u32)>;

/// The ids are ours, sequential, and looked up on every `proxy_session_pick`: one multiply
/// instead of SipHash (which cost some 150 instructions a request), as nothing hostile chooses
/// them.
#[derive(Default)]
struct IdHasher(u64);

impl Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = (self.0.rotate_left(8) ^ u64::from(*b)).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = n.wrapping_mul(0x9e37_79b9_7f4a_7c15);
    }
}

type Groups = HashMap<u64, UpstreamGroup, BuildHasherDefault<IdHasher>>;

/// The live groups by id. Reads (every `proxy_session_pick`) load the map without a lock;
/// `proxy_group_new` / `_free` copy it under `WRITE`.
static GROUPS: LazyLock<ArcSwap<Groups>> = LazyLock::new(Default::default);
static WRITE: Mutex<()> = Mutex::new(());
static NEXT_ID: AtomicU64 = AtomicU64::new(1);

/// Runs `f` on the group with id `id` (borrowed from the current map, no reference count
/// taken), or answers GONE.
fn with_group<R>(
    id: u64,
    f: impl FnOnce(&UpstreamGroup) -> Result<R, proxy_result>,
) -> Result<R, proxy_result> {
    match GROUPS.load().get(&id) {
        Some(g) => f(g),
        None => err(PROXY_GONE, format_args!("no upstream group has id {id} (freed, or never made)")),
    }
}

/// The group with id `id`, or GONE.
pub(crate) fn group(id: u64) -> Result<UpstreamGroup, proxy_result> {
    with_group(id, |g| Ok(g.clone()))
}

fn algorithm(a: u32) -> Option<Algorithm> {
    Some(match a {
        PROXY_GROUP_ROUND_ROBIN => Algorithm::RoundRobin,
        PROXY_GROUP_RANDOM => Algorithm::Random,
        PROXY_GROUP_LEAST_OUTSTANDING => Algorithm::LeastOutstanding,
        PROXY_GROUP_KETAMA => Algorithm::Ketama,
        PROXY_GROUP_MAGLEV => Algorithm::Maglev,
        _ => return None,
    })
}

/// Creates an empty upstream group named `name` (for logs and errors) choosing by `algorithm`
/// (a `PROXY_GROUP_*` algorithm); `*out_group` receives its id. Free it with `proxy_group_free`.
/// Every `proxy_group_*` function is thread-safe. INVALID_PARAMETER for an unknown algorithm.
/// (ABI 0.7)
#[no_mangle]
pub extern "C" fn proxy_group_new(name: *const c_char, algorithm_: u32, out_group: *mut u64) -> proxy_result {
    ffi_panic_boundary! {
        let out = try_mut!(out_group);
        // SAFETY: NULL or a C string.
        let name = try_res!(unsafe { cstr(name) });
        let Some(alg) = algorithm(algorithm_) else {
            return fail(PROXY_INVALID_PARAMETER, format_args!("unknown group algorithm {algorithm_}"));
        };
        *out = register(UpstreamGroup::new(name, alg));
        PROXY_OK
    }
}

/// Gives `group` an id (`proxy_group_new`, and the groups a configuration file defines).
pub(crate) fn register(group: UpstreamGroup) -> u64 {
    let id = NEXT_ID.fetch_add(1, Ordering::Relaxed);
    let _one = WRITE.lock();
    let mut map = Groups::clone(&GROUPS.load());
    map.insert(id, group);
    GROUPS.store(Arc::new(map));
    id
}

/// Frees the group's id: later calls with it answer GONE. Requests already using one of its
/// backends finish, and the services running its checks or discovery keep it until the server
/// stops. GONE for an unknown id (freeing twice is harmless). (ABI 0.7)
#[no_mangle]
pub extern "C" fn proxy_group_free(group_id: u64) -> proxy_result {
    ffi_panic_boundary! {
        let _one = WRITE.lock();
        let mut map = Groups::clone(&GROUPS.load());
        if map.remove(&group_id).is_none() {
            return fail(PROXY_GONE, format_args!("no upstream group has id {group_id}"));
        }
        GROUPS.store(Arc::new(map));
        PROXY_OK
    }
}

/// Adds a backend: `peer` says where and how to connect (copied, as for `proxy_session_set_peer`),
/// `weight` is 1..=256, `name` (NULL: the peer's address text) names it in figures and health
/// events and is what Ketama and Maglev hash (nginx hashes the text of its `server` line). The
/// group changes at once for new requests. INVALID_PARAMETER for a bad peer or weight or a name
/// already in the group. (ABI 0.7)
#[no_mangle]
pub extern "C" fn proxy_group_add_backend(
    group_id: u64,
    name: *const c_char,
    peer: *const proxy_peer,
    weight: u32,
) -> proxy_result {
    ffi_panic_boundary! {
        let _ = try_ref!(peer);
        let g = try_res!(group(group_id));
        // SAFETY: non-NULL, and the host's struct is at least `struct_size` bytes.
        let p = try_res!(unsafe { copy_sized(peer, proxy_peer::MIN_SIZE) });
        let peer = try_res!(p.to_peer());
        let name = if name.is_null() {
            // The address as the host wrote it (to_peer checked it is UTF-8), as nginx hashes the text.
            String::from_utf8_lossy(try_res!(p.address.bytes())).into_owned()
        } else {
            // SAFETY: a C string.
            try_res!(unsafe { cstr(name) }).to_owned()
        };
        if !(1..=MAX_WEIGHT).contains(&weight) {
            return fail(PROXY_INVALID_PARAMETER, format_args!("backend weight {weight} is not 1..=256"));
        }
        let b = Backend { name, peer, weight };
        match g.update(|list| list.push(b)) {
            Ok(()) => PROXY_OK,
            Err(e) => fail(PROXY_INVALID_PARAMETER, e),
        }
    }
}

/// Removes the backend named `name`. Requests on it finish there. NOT_FOUND when there is none.
/// (ABI 0.7)
#[no_mangle]
pub extern "C" fn proxy_group_remove_backend(group_id: u64, name: *const c_char) -> proxy_result {
    ffi_panic_boundary! {
        let g = try_res!(group(group_id));
        // SAFETY: NULL or a C string.
        let name = try_res!(unsafe { cstr(name) });
        let mut found = false;
        let _ = g.update(|list| {
            let before = list.len();
            list.retain(|b| b.name != name);
            found = list.len() != before;
        });
        if found { PROXY_OK } else { fail(PROXY_NOT_FOUND, format_args!("no backend named {name:?}")) }
    }
}

/// Replaces every backend at once with `n` plaintext HTTP/1.1 backends at `addresses[i]`
/// (`host:port`, `ip:port` or a Unix socket path, each its own name) of weight `weights[i]`
/// (NULL: all 1), with default options: what a host's own discovery publishes. Backends that stay
/// (same address and weight) keep their figures and health. Nothing changes on
/// INVALID_PARAMETER (a bad address or weight, an address twice). The arrays are copied. (ABI 0.7)
#[no_mangle]
pub extern "C" fn proxy_group_set_backends(
    group_id: u64,
    addresses: *const *const c_char,
    weights: *const u32,
    n: usize,
) -> proxy_result {
    ffi_panic_boundary! {
        let g = try_res!(group(group_id));
        if n > 0 && addresses.is_null() {
            return fail(PROXY_NULL_PARAMETER, "`addresses` is NULL");
        }
        let mut list = Vec::with_capacity(n);
        for i in 0..n {
            // SAFETY: the caller passes `n` entries in each non-NULL array.
            let (a, w) = unsafe { (*addresses.add(i), if weights.is_null() { 1 } else { *weights.add(i) }) };
            // SAFETY: NULL or a C string.
            let a = try_res!(unsafe { cstr(a) });
            match Backend::new(a, w) {
                Ok(b) => list.push(b),
                Err(e) => return fail(PROXY_INVALID_PARAMETER, format_args!("backend {i} ({a:?}, weight {w}): {e}")),
            }
        }
        match g.set_backends(list) {
            Ok(()) => PROXY_OK,
            Err(e) => fail(PROXY_INVALID_PARAMETER, e),
        }
    }
}

/// Sets group setting `which` (`PROXY_GROUP_MAX_IN_FLIGHT`, `PROXY_GROUP_MAX_CONNECTIONS`,
/// `PROXY_GROUP_EJECT_*`) to `value`.
/// INVALID_PARAMETER for an unknown setting or a value out of range (nothing changed). (ABI 0.7)
#[no_mangle]
pub extern "C" fn proxy_group_set(group_id: u64, which: u32, value: u64) -> proxy_result {
    ffi_panic_boundary! {
        let g = try_res!(group(group_id));
        match which {
            PROXY_GROUP_MAX_IN_FLIGHT => {
                g.set_max_in_flight(value);
                return PROXY_OK;
            }
            PROXY_GROUP_MAX_CONNECTIONS => {
                g.set_max_connections(value);
                return PROXY_OK;
            }
            _ => {}
        }
        let mut o: OutlierDetection = g.outlier_detection();
        let ok = match which {
            PROXY_GROUP_EJECT_FAILURES => u32::try_from(value).map(|v| o.consecutive_failures = v).is_ok(),
            PROXY_GROUP_EJECT_BASE_MS if value > 0 => {
                o.base_ejection = Duration::from_millis(value);
                true
            }
            PROXY_GROUP_EJECT_MAX_MS if value > 0 => {
                o.max_ejection = Duration::from_millis(value);
                true
            }
            PROXY_GROUP_EJECT_MAX_PERCENT if value <= 100 => {
                o.max_ejected_percent = value as u32;
                true
            }
            _ => false,
        };
        if !ok {
            return fail(PROXY_INVALID_PARAMETER, format_args!("group setting {which}: {value} is out of range"));
        }
        g.set_outlier_detection(o);
        PROXY_OK
    }
}

/// The number of backends now (`*out_n`). Backends may change between this and the figures
/// asked for next: an index past the end answers NOT_FOUND. (ABI 0.7)
#[no_mangle]
pub extern "C" fn proxy_group_backend_count(group_id: u64, out_n: *mut usize) -> proxy_result {
    ffi_panic_boundary! {
        let out = try_mut!(out_n);
        *out = try_res!(group(group_id)).backends().len();
        PROXY_OK
    }
}

/// Figure `which` (a `PROXY_BACKEND_*`) of backend `index` into `*out_value`. NOT_FOUND for an
/// index past the end, INVALID_PARAMETER for an unknown figure. (ABI 0.7)
#[no_mangle]
pub extern "C" fn proxy_group_backend_figure(
    group_id: u64,
    index: usize,
    which: u32,
    out_value: *mut u64,
) -> proxy_result {
    ffi_panic_boundary! {
        let out = try_mut!(out_value);
        let g = try_res!(group(group_id));
        let Some(f) = g.figures().into_iter().nth(index) else {
            return fail(PROXY_NOT_FOUND, format_args!("the group has no backend {index}"));
        };
        *out = match which {
            PROXY_BACKEND_REQUESTS => f.requests,
            PROXY_BACKEND_FAILURES => f.failures,
            PROXY_BACKEND_EJECTIONS => f.ejections,
            PROXY_BACKEND_IN_FLIGHT => f.in_flight,
            PROXY_BACKEND_HEALTHY => u64::from(f.healthy),
            PROXY_BACKEND_EJECTED => u64::from(f.ejected),
            PROXY_BACKEND_WEIGHT => u64::from(f.weight),
            PROXY_BACKEND_CONNECTIONS => f.connections,
            _ => return fail(PROXY_INVALID_PARAMETER, format_args!("unknown backend figure {which}")),
        };
        PROXY_OK
    }
}

/// Copies backend `index`'s name into `buf` (`cap` bytes, not NUL-terminated) and its length
/// into `*out_len`. TOO_SMALL (only `*out_len` written) when it does not fit; NOT_FOUND for an
/// index past the end. (ABI 0.7)
#[no_mangle]
pub extern "C" fn proxy_group_backend_name(
    group_id: u64,
    index: usize,
    buf: *mut c_char,
    cap: usize,
    out_len: *mut usize,
) -> proxy_result {
    ffi_panic_boundary! {
        let out = try_mut!(out_len);
        let g = try_res!(group(group_id));
        let Some(b) = g.backends().into_iter().nth(index) else {
            return fail(PROXY_NOT_FOUND, format_args!("the group has no backend {index}"));
        };
        let name = b.name.as_bytes();
        *out = name.len();
        if name.len() > cap {
            return PROXY_TOO_SMALL;
        }
        if !name.is_empty() {
            if buf.is_null() {
                return PROXY_NULL_PARAMETER;
            }
            // SAFETY: `buf` has `cap` >= len writable bytes.
            unsafe { std::ptr::copy_nonoverlapping(name.as_ptr(), buf.cast::<u8>(), name.len()) };
        }
        PROXY_OK
    }
}

/// The host's listener and its user pointer.
struct HostListener {
    f: unsafe extern "C" fn(*mut c_void, proxy_str, u32),
    user: *mut c_void,
}

// SAFETY: `user` is the host's, valid from any thread by the function's contract.
unsafe impl Send for HostListener {}
// SAFETY: as above.
unsafe impl Sync for HostListener {}

impl HostListener {
    fn call(&self, name: &str, event: u32) {
        // SAFETY: the host's function and user pointer; the name outlives the call.
        super::in_callback(|| unsafe { (self.f)(self.user, proxy_str::from_bytes(name.as_bytes()), event) });
    }
}

/// Calls `f(user, backend, event)` on each health change of the group's backends (see
/// `proxy_health_fn`); NULL `f` removes it. `user` must stay valid until it is replaced or the
/// group and every server checking it are gone. (ABI 0.7)
#[no_mangle]
pub extern "C" fn proxy_group_set_health_callback(
    group_id: u64,
    f: proxy_health_fn,
    user: *mut c_void,
) -> proxy_result {
    ffi_panic_boundary! {
        let g = try_res!(group(group_id));
        let listener = f.map(|f| {
            let h = HostListener { f, user };
            Arc::new(move |name: &str, e: HealthEvent| {
                let event = match e {
                    HealthEvent::Up => PROXY_HEALTH_UP,
                    HealthEvent::Down => PROXY_HEALTH_DOWN,
                    HealthEvent::Ejected => PROXY_HEALTH_EJECTED,
                    HealthEvent::Readmitted => PROXY_HEALTH_READMITTED,
                };
                h.call(name, event);
            }) as crate::upstream::HealthListener
        });
        g.set_health_listener(listener);
        PROXY_OK
    }
}

/// Chooses this attempt's backend from the group (only in `upstream_peer`, instead of
/// `proxy_session_set_peer`): on a retry one the request has not tried. `key` (`ptr` NULL: none)
/// feeds Ketama and Maglev and is copied. The attempt's outcome feeds the group's passive health,
/// and the logging summary names the backend (`proxy_session_backend`). GONE for an unknown group;
/// UNAVAILABLE when no backend can take the request: returning PROXY_CONTINUE then fails it with
/// 503 (every backend at its in-flight cap) or 502 (none left to try). (ABI 0.7)
#[no_mangle]
pub extern "C" fn proxy_session_pick(s: *mut proxy_session, group_id: u64, key: proxy_str) -> proxy_result {
    ffi_panic_boundary! {
        let s = try_ref!(s);
        let key = if key.ptr.is_null() { None } else { Some(try_res!(key.bytes())) };
        try_res!(with_group(group_id, |g| s.with(|a| {
            if a.phase != super::session::PROXY_PHASE_UPSTREAM_PEER {
                return Err(PROXY_WRONG_PHASE);
            }
            match a.session_mut()?.pick_from(g, key) {
                Ok(peer) => {
                    a.peer = Some(peer);
                    a.pick_error = None;
                    Ok(())
                }
                Err(e) => {
                    let code = fail(PROXY_UNAVAILABLE, &e);
                    a.pick_error = Some(e);
                    Err(code)
                }
            }
        })));
        PROXY_OK
    }
}

/// The name of the group backend the last attempt went to (`*out`, a view valid until the
/// callback returns), from `upstream_peer` on. NOT_FOUND when the peer did not come from a group.
/// (ABI 0.7)
#[no_mangle]
pub extern "C" fn proxy_session_backend(s: *const proxy_session, out: *mut proxy_str) -> proxy_result {
    ffi_panic_boundary! {
        let s = try_ref!(s);
        let out = try_mut!(out);
        try_res!(s.with(|a| {
            let name = a.session()?.summary.backend.as_deref().ok_or(PROXY_NOT_FOUND)?;
            // The name lives in the backend, which the session's summary holds.
            *out = proxy_str::from_bytes(name.as_bytes());
            Ok(())
        }));
        PROXY_OK
    }
}
