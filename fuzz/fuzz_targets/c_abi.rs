//! Sequences of C ABI calls (`src/ffi`), decoded from the input, made the way a C host makes them:
//! servers, services and TLS settings created, configured with junk and freed in any order;
//! endpoints with junk addresses; callbacks with any `struct_size` and tail; options, limits and
//! timeouts with any number; upgrade tokens, PEM and ALPN lists from the input's bytes; every
//! session accessor on a NULL session; resumes of unknown ids; the error and version queries.
//!
//! Invariants:
//! - no call crashes or panics (a caught panic would be `PROXY_PANIC`: refused here);
//! - every `proxy_result` is `PROXY_OK` or one of the documented codes (7000..=7013), and a failing
//!   call leaves exactly its code in `proxy_last_error_code()` with a message in
//!   `proxy_last_error` that starts with `proxy_result_message(code)`;
//! - the outcomes the header states exactly hold: NULL handles are NULL_PARAMETER (`_free(NULL)`
//!   is OK); `struct_size` below the oldest layout is INVALID_PARAMETER and a longer struct is
//!   UNSUPPORTED exactly when a byte past the library's struct is set; thread counts outside
//!   1..=1024 are INVALID_PARAMETER; an address that is not `ip:port` is INVALID_PARAMETER; a
//!   second start and an add after start are WRONG_STATE.
//!
//! Hermetic: an address that parses as `ip:port` is replaced by the loopback address of its family
//! with port 0 (so nothing listens beyond 127.0.0.1 / ::1 and no fixed port is taken), Unix socket
//! paths stay in a private temporary directory, TLS material comes from memory, servers are started
//! only with a few threads and every handle is freed (which stops a started server) at the end of
//! the input.
#![no_main]

use std::ffi::{c_char, c_void, CStr, CString};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::ptr::{null, null_mut};
use std::sync::OnceLock;

use arbitrary::{Result, Unstructured};
use libfuzzer_sys::fuzz_target;
use proxy::ffi::callbacks::proxy_http_callbacks;
use proxy::ffi::error::{proxy_last_error, proxy_last_error_code};
use proxy::ffi::result::*;
use proxy::ffi::server::*;
use proxy::ffi::service_settings::*;
use proxy::ffi::session::proxy_session;
use proxy::ffi::session_headers::*;
use proxy::ffi::session_request::*;
use proxy::ffi::session_response::*;
use proxy::ffi::session_tls::*;
use proxy::ffi::tls::*;
use proxy::ffi::types::*;

/// Servers and services alive at once (each bound endpoint is a socket; each started service
/// has its own runtime).
const MAX_SERVERS: usize = 2;
const MAX_SERVICES: usize = 4;
const MAX_TLS: usize = 2;
/// Worker threads a started server may have in all (the CPU is shared).
const MAX_STARTED_THREADS: u32 = 4;
/// Operations per input.
const MAX_OPS: usize = 64;
/// The oldest `proxy_http_callbacks` layout: `struct_size` and `user`.
const CALLBACKS_MIN_SIZE: usize = 16;

struct Server {
    ptr: *mut proxy_server,
    threads: u32,
    started: bool,
}

struct Service {
    ptr: *mut proxy_service,
    threads: u32,
}

#[derive(Default)]
struct World {
    servers: Vec<Server>,
    services: Vec<Service>,
    tls: Vec<*mut proxy_tls_settings>,
}

fn tmp_dir() -> &'static PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("libproxy-fuzz-c_abi-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temporary directory");
        dir
    })
}

/// Checks one result: documented, not a panic, and recorded as the thread's last error.
fn check(what: &str, rc: proxy_result) -> proxy_result {
    assert!(
        rc == PROXY_OK || (PROXY_NULL_PARAMETER..=PROXY_TLS_INVALID).contains(&rc),
        "{what}: undocumented {rc}"
    );
    assert_ne!(rc, PROXY_PANIC, "{what}: a panic was caught inside the library");
    if rc != PROXY_OK {
        assert_eq!(proxy_last_error_code(), rc, "{what}: last error code");
        let mut buf = [0 as c_char; 256];
        let n = proxy_last_error(buf.as_mut_ptr(), buf.len());
        // SAFETY: proxy_last_error NUL-terminates within `buf`.
        let text = unsafe { CStr::from_ptr(buf.as_ptr()) }.to_string_lossy().into_owned();
        // SAFETY: proxy_result_message returns a static NUL-terminated string.
        let generic = unsafe { CStr::from_ptr(proxy_result_message(rc)) }.to_string_lossy().into_owned();
        assert!(
            n >= generic.len() && text.starts_with(&generic[..generic.len().min(255)]),
            "{what}: {text:?}"
        );
    }
    rc
}

fn expect(what: &str, rc: proxy_result, want: proxy_result) {
    assert_eq!(check(what, rc), want, "{what}");
}

/// Bytes from the input as a C string (cut at the first NUL).
fn cstring(u: &mut Unstructured) -> Result<CString> {
    let len = u.int_in_range(0..=48)?;
    let mut b = u.bytes(len)?.to_vec();
    if let Some(i) = b.iter().position(|&c| c == 0) {
        b.truncate(i);
    }
    Ok(CString::new(b).expect("no NUL"))
}

/// A C string or, sometimes, NULL (kept alive by the caller's `Option`).
fn opt_cstring(u: &mut Unstructured) -> Result<Option<CString>> {
    Ok(if u.ratio(1, 8)? { None } else { Some(cstring(u)?) })
}

fn ptr_of(s: &Option<CString>) -> *const c_char {
    s.as_ref().map_or(null(), |s| s.as_ptr())
}

/// A junk TCP address made hermetic: anything that parses as `ip:port` becomes the loopback
/// address of its family with port 0, so only the library's refusals of junk are exercised.
fn address(u: &mut Unstructured) -> Result<(Option<CString>, bool)> {
    let a = opt_cstring(u)?;
    let Some(text) = &a else { return Ok((None, false)) };
    Ok(match text.to_str().ok().and_then(|t| t.parse::<SocketAddr>().ok()) {
        Some(SocketAddr::V4(_)) => (Some(CString::new("127.0.0.1:0").unwrap()), true),
        Some(SocketAddr::V6(_)) => (Some(CString::new("[::1]:0").unwrap()), true),
        None => (a, false),
    })
}

/// A Unix socket path inside the private directory (or junk that cannot be bound).
fn uds_path(u: &mut Unstructured) -> Result<Option<CString>> {
    let dir = tmp_dir().display().to_string();
    Ok(match u.int_in_range(0..=4)? {
        0 => None,
        1 => Some(CString::new("").unwrap()),
        2 => Some(CString::new(format!("{dir}/missing/dir/s")).unwrap()),
        3 => Some(CString::new(format!("{dir}/{}", "x".repeat(120))).unwrap()), // past sun_path
        _ => {
            let n: u8 = u.arbitrary()?;
            Some(CString::new(format!("{dir}/s{}", n % 8)).unwrap())
        }
    })
}

fn pick<T>(u: &mut Unstructured, v: &[T]) -> Result<Option<usize>> {
    if v.is_empty() || u.ratio(1, 8)? {
        return Ok(None);
    }
    Ok(Some(u.choose_index(v.len())?))
}

unsafe extern "C" fn phase_cb(_user: *mut c_void, _s: *mut proxy_session) -> proxy_action {
    PROXY_CONTINUE
}

unsafe extern "C" fn thread_cb(_user: *mut c_void) {}

unsafe extern "C" fn log_cb(_user: *mut c_void, _level: u32, _message: proxy_str) {}

/// `proxy_service_set_callbacks` with a struct of any `struct_size` whose bytes past the library's
/// struct come from the input; the outcome is exactly what the header states.
fn set_callbacks(u: &mut Unstructured, svc: *mut proxy_service) -> Result<()> {
    const KNOWN: usize = std::mem::size_of::<proxy_http_callbacks>();
    #[repr(C, align(8))]
    struct Buf([u8; KNOWN + 64]);
    let mut buf = Buf([0; KNOWN + 64]);
    // SAFETY: integers, a pointer and optional function pointers: all zero is valid (no callbacks).
    let mut cbs: proxy_http_callbacks = unsafe { std::mem::zeroed() };
    let set: u16 = u.arbitrary()?;
    for (i, f) in [
        &mut cbs.early_request_filter,
        &mut cbs.request_filter,
        &mut cbs.upstream_peer,
        &mut cbs.response_filter,
        &mut cbs.logging,
        &mut cbs.request_end,
    ]
    .into_iter()
    .enumerate()
    {
        if set & (1 << i) != 0 {
            *f = Some(phase_cb);
        }
    }
    let size: usize = match u.int_in_range(0..=4)? {
        0 => KNOWN,
        1 => u.int_in_range(0..=CALLBACKS_MIN_SIZE)?,
        2 => u.int_in_range(CALLBACKS_MIN_SIZE..=KNOWN)?,
        _ => u.int_in_range(KNOWN..=KNOWN + 64)?,
    };
    cbs.struct_size = size as u32;
    // SAFETY: `buf` is 8-aligned and larger than the struct, which is plain data.
    unsafe { std::ptr::write(buf.0.as_mut_ptr().cast::<proxy_http_callbacks>(), cbs) };
    let tail_set = size > KNOWN && u.ratio(1, 2)?;
    if tail_set {
        let i = u.int_in_range(KNOWN..=size - 1)?;
        buf.0[i] = u.int_in_range(1..=255)?;
    }
    let want = if size < CALLBACKS_MIN_SIZE {
        PROXY_INVALID_PARAMETER
    } else if tail_set {
        PROXY_UNSUPPORTED
    } else {
        PROXY_OK
    };
    let p = buf.0.as_ptr().cast::<proxy_http_callbacks>();
    if svc.is_null() {
        expect("set_callbacks(NULL)", proxy_service_set_callbacks(svc, p), PROXY_NULL_PARAMETER);
    } else {
        expect("set_callbacks", proxy_service_set_callbacks(svc, p), want);
        expect("set_callbacks(svc, NULL)", proxy_service_set_callbacks(svc, null()), PROXY_NULL_PARAMETER);
    }
    Ok(())
}

/// Every session accessor on a NULL session is NULL_PARAMETER, whatever the other arguments
/// (views with a NULL pointer and a length, NULL outputs).
fn null_session(u: &mut Unstructured) -> Result<()> {
    let s: *mut proxy_session = null_mut();
    let n_junk = u.int_in_range(0..=16)?;
    let junk: &[u8] = u.bytes(n_junk)?;
    let view = if u.ratio(1, 2)? {
        proxy_str { ptr: junk.as_ptr().cast(), len: junk.len() }
    } else {
        proxy_str { ptr: null(), len: usize::from(u.arbitrary::<u8>()?) }
    };
    let kind: u32 = u.arbitrary()?;
    let n: usize = u.arbitrary()?;
    let mut v = proxy_str { ptr: null(), len: 0 };
    let mut b = proxy_bytes { ptr: null(), len: 0 };
    let mut h = proxy_header { name: v, value: v };
    let (mut n1, mut u32o, mut u64o, mut ph) = (0usize, 0u32, 0u64, 0u32);
    // SAFETY: proxy_summary and proxy_peer are plain C structs; all zero is a valid value.
    let mut sum: proxy_summary = unsafe { std::mem::zeroed() };
    // SAFETY: as above.
    let peer: proxy_peer = unsafe { std::mem::zeroed() };
    let mut i64o = 0i64;
    let calls: [(&str, proxy_result); 33] = [
        ("header_count", proxy_session_header_count(s, kind, &mut n1)),
        ("header_get", proxy_session_header_get(s, kind, view, n, &mut v, &mut n1)),
        ("header_nth", proxy_session_header_nth(s, kind, n, &mut h)),
        ("headers", proxy_session_headers(s, kind, &mut h, 1, &mut n1)),
        ("header_set", proxy_session_header_set(s, kind, view, view)),
        ("header_add", proxy_session_header_add(s, kind, view, view)),
        ("header_remove", proxy_session_header_remove(s, kind, view)),
        ("id", proxy_session_id(s, &mut u64o)),
        ("phase", proxy_session_phase(s, &mut ph)),
        ("method", proxy_session_method(s, &mut v)),
        ("uri", proxy_session_uri(s, &mut v)),
        ("set_uri", proxy_session_set_uri(s, view)),
        ("path", proxy_session_path(s, &mut v)),
        ("query", proxy_session_query(s, &mut v)),
        ("version", proxy_session_version(s, &mut u32o)),
        ("client_addr", proxy_session_client_addr(s, &mut v)),
        ("server_addr", proxy_session_server_addr(s, &mut v)),
        ("set_peer", proxy_session_set_peer(s, &peer)),
        ("response_status", proxy_session_response_status(s, &mut u32o)),
        ("set_response_status", proxy_session_set_response_status(s, kind)),
        ("respond", proxy_session_respond(s, kind, &h, 1, junk.as_ptr(), junk.len())),
        ("body", proxy_session_body(s, &mut b, &mut u32o)),
        ("set_body", proxy_session_set_body(s, junk.as_ptr(), junk.len())),
        ("upstream_reused", proxy_session_upstream_reused(s, &mut u32o)),
        ("error", proxy_session_error(s, &mut v)),
        ("set_retry", proxy_session_set_retry(s, kind)),
        ("retries", proxy_session_retries(s, &mut u32o)),
        ("summary", proxy_session_summary(s, &mut sum)),
        ("set_user", proxy_session_set_user(s, null_mut())),
        ("body out NULL", proxy_session_body(s, null_mut(), null_mut())),
        ("uri out NULL", proxy_session_uri(s, null_mut())),
        ("tls", proxy_session_tls(s, 1, 0, &mut b)),
        ("tls_client_not_after", proxy_session_tls_client_not_after(s, &mut i64o)),
    ];
    for (what, rc) in calls {
        assert_eq!(rc, PROXY_NULL_PARAMETER, "proxy_session_{what}(NULL)");
    }
    check("last session call", PROXY_NULL_PARAMETER);
    assert!(proxy_session_get_user(s).is_null());
    Ok(())
}

fn tls_op(u: &mut Unstructured, w: &mut World) -> Result<()> {
    let t = pick(u, &w.tls)?.map_or(null_mut(), |i| w.tls[i]);
    let n_pem = u.int_in_range(0..=96)?;
    let pem = u.bytes(n_pem)?;
    let (pp, pl) = if u.ratio(1, 8)? { (null(), pem.len() + 1) } else { (pem.as_ptr(), pem.len()) };
    let name = opt_cstring(u)?;
    let rc = match u.int_in_range(0..=7)? {
        0 => proxy_tls_settings_set_cert_pem(t, pp, pl, pp, pl),
        1 => proxy_tls_settings_add_sni_cert_pem(t, ptr_of(&name), pp, pl, pp, pl),
        2 => proxy_tls_settings_set_client_auth_pem(t, pp, pl, u.arbitrary()?),
        3 => proxy_tls_settings_set_alpn(t, ptr_of(&name)),
        4 => proxy_tls_settings_set_versions(t, u.arbitrary()?),
        5 => proxy_tls_settings_set_handshake_timeout(t, u.arbitrary()?),
        6 => {
            let mut out = proxy_str { ptr: null(), len: 0 };
            proxy_tls_settings_last_error(t, &mut out)
        }
        _ => {
            let Some(i) = pick(u, &w.services)? else { return Ok(()) };
            let (addr, _) = address(u)?;
            let mut port = 0u16;
            proxy_service_add_tls(w.services[i].ptr, ptr_of(&addr), t, &mut port)
        }
    };
    if t.is_null() {
        expect("tls settings call with NULL", rc, PROXY_NULL_PARAMETER);
    } else {
        check("tls settings call", rc);
    }
    Ok(())
}

fn step(u: &mut Unstructured, w: &mut World) -> Result<()> {
    match u.int_in_range(0..=19)? {
        0 => {
            expect("server_new(NULL)", proxy_server_new(null_mut()), PROXY_NULL_PARAMETER);
            if w.servers.len() < MAX_SERVERS {
                let mut p = null_mut();
                expect("server_new", proxy_server_new(&mut p), PROXY_OK);
                w.servers.push(Server { ptr: p, threads: 0, started: false });
            }
        }
        1 => match pick(u, &w.servers)? {
            Some(i) => expect("server_free", proxy_server_free(w.servers.swap_remove(i).ptr), PROXY_OK),
            None => expect("server_free(NULL)", proxy_server_free(null_mut()), PROXY_OK),
        },
        2 => {
            let name = opt_cstring(u)?;
            let mut p = null_mut();
            let rc = check("service_new", proxy_service_new(ptr_of(&name), &mut p));
            if name.is_none() {
                assert_eq!(rc, PROXY_NULL_PARAMETER);
            }
            if rc == PROXY_OK {
                if w.services.len() < MAX_SERVICES {
                    w.services.push(Service { ptr: p, threads: 1 });
                } else {
                    expect("service_free", proxy_service_free(p), PROXY_OK);
                }
            }
        }
        3 => match pick(u, &w.services)? {
            Some(i) => expect("service_free", proxy_service_free(w.services.swap_remove(i).ptr), PROXY_OK),
            None => expect("service_free(NULL)", proxy_service_free(null_mut()), PROXY_OK),
        },
        4 => {
            let svc = pick(u, &w.services)?.map_or(null_mut(), |i| w.services[i].ptr);
            let (addr, is_ip) = address(u)?;
            let mut port = 0u16;
            let out = if u.arbitrary()? { &mut port as *mut u16 } else { null_mut() };
            let rc = check("add_tcp", proxy_service_add_tcp(svc, ptr_of(&addr), out));
            if svc.is_null() || addr.is_none() {
                assert_eq!(rc, PROXY_NULL_PARAMETER, "add_tcp NULL");
            } else if !is_ip {
                assert_eq!(rc, PROXY_INVALID_PARAMETER, "add_tcp({addr:?})");
            } else {
                assert!(rc == PROXY_OK || rc == PROXY_IO, "add_tcp loopback: {rc}");
                assert!(rc != PROXY_OK || out.is_null() || port != 0, "bound port");
            }
        }
        5 => {
            let svc = pick(u, &w.services)?.map_or(null_mut(), |i| w.services[i].ptr);
            let path = uds_path(u)?;
            let rc = check("add_uds", proxy_service_add_uds(svc, ptr_of(&path)));
            if svc.is_null() || path.is_none() {
                assert_eq!(rc, PROXY_NULL_PARAMETER, "add_uds NULL");
            }
        }
        6 => {
            let i = pick(u, &w.services)?;
            let svc = i.map_or(null_mut(), |i| w.services[i].ptr);
            let n: u32 = if u.arbitrary()? { u.int_in_range(0..=3)? } else { u.arbitrary()? };
            let want = match (svc.is_null(), n) {
                (true, _) => PROXY_NULL_PARAMETER,
                (false, 1..=1024) => PROXY_OK,
                _ => PROXY_INVALID_PARAMETER,
            };
            expect("set_threads", proxy_service_set_threads(svc, n), want);
            if let (Some(i), PROXY_OK) = (i, want) {
                w.services[i].threads = n;
            }
        }
        7 => {
            let svc = pick(u, &w.services)?.map_or(null_mut(), |i| w.services[i].ptr);
            let (which, a, b): (u32, u32, u64) = (u.int_in_range(0..=12)?, u.arbitrary()?, u.arbitrary()?);
            let rc = match u.int_in_range(0..=4)? {
                0 => proxy_service_set_timeout(svc, which, a),
                1 => proxy_service_set_limit(svc, which, b),
                2 => proxy_service_set_option(svc, which, a),
                3 => proxy_service_set_h2_only(svc, a),
                _ => proxy_service_set_work_stealing(svc, a),
            };
            check("service setting", rc);
            if svc.is_null() {
                assert_eq!(rc, PROXY_NULL_PARAMETER);
            }
        }
        8 => {
            let svc = pick(u, &w.services)?.map_or(null_mut(), |i| w.services[i].ptr);
            let token = opt_cstring(u)?;
            let rc = if u.arbitrary()? {
                proxy_service_allow_upgrade(svc, ptr_of(&token))
            } else {
                proxy_service_deny_upgrade(svc, ptr_of(&token))
            };
            check("allow/deny_upgrade", rc);
            if svc.is_null() || token.is_none() {
                assert_eq!(rc, PROXY_NULL_PARAMETER);
            }
        }
        9 => {
            let svc = pick(u, &w.services)?.map_or(null_mut(), |i| w.services[i].ptr);
            set_callbacks(u, svc)?;
        }
        10 => {
            let svc = pick(u, &w.services)?.map_or(null_mut(), |i| w.services[i].ptr);
            let f = |on: bool| if on { Some(thread_cb as unsafe extern "C" fn(*mut c_void)) } else { None };
            let rc = proxy_service_set_thread_hooks(svc, f(u.arbitrary()?), f(u.arbitrary()?), null_mut());
            expect("set_thread_hooks", rc, if svc.is_null() { PROXY_NULL_PARAMETER } else { PROXY_OK });
        }
        11 => {
            let si = pick(u, &w.servers)?;
            let Some(vi) = pick(u, &w.services)? else {
                let server = si.map_or(null_mut(), |i| w.servers[i].ptr);
                expect(
                    "add_service(_, NULL)",
                    proxy_server_add_service(server, null_mut()),
                    PROXY_NULL_PARAMETER,
                );
                return Ok(());
            };
            let Some(si) = si else {
                let rc = proxy_server_add_service(null_mut(), w.services[vi].ptr);
                // Not consumed: NULL_PARAMETER is the one case that leaves the service to the host.
                expect("add_service(NULL, svc)", rc, PROXY_NULL_PARAMETER);
                return Ok(());
            };
            let svc = w.services.swap_remove(vi); // consumed in every other case
            let rc = check("add_service", proxy_server_add_service(w.servers[si].ptr, svc.ptr));
            if w.servers[si].started {
                assert_eq!(rc, PROXY_WRONG_STATE, "add_service after start");
            } else if rc == PROXY_OK {
                w.servers[si].threads += svc.threads;
            }
        }
        12 => {
            let Some(i) = pick(u, &w.servers)? else {
                expect("start(NULL)", proxy_server_start(null_mut()), PROXY_NULL_PARAMETER);
                return Ok(());
            };
            let s = &mut w.servers[i];
            if s.threads > MAX_STARTED_THREADS {
                return Ok(());
            }
            let rc = check("server_start", proxy_server_start(s.ptr));
            if s.started {
                assert_eq!(rc, PROXY_WRONG_STATE, "second start");
            }
            s.started = true;
        }
        13 => {
            let server = pick(u, &w.servers)?.map_or(null_mut(), |i| w.servers[i].ptr);
            let grace = u.int_in_range(0..=20)?;
            let rc = check("shutdown", proxy_server_shutdown(server, grace));
            if server.is_null() {
                assert_eq!(rc, PROXY_NULL_PARAMETER);
            }
        }
        14 => {
            let server = pick(u, &w.servers)?.map_or(null_mut(), |i| w.servers[i].ptr);
            let rc = check("resume", proxy_session_resume(server, u.arbitrary()?, u.arbitrary()?));
            if server.is_null() {
                assert_eq!(rc, PROXY_NULL_PARAMETER);
            }
        }
        15 => {
            let server = pick(u, &w.servers)?.map_or(null_mut(), |i| w.servers[i].ptr);
            let f = if u.arbitrary()? {
                Some(log_cb as unsafe extern "C" fn(*mut c_void, u32, proxy_str))
            } else {
                None
            };
            let rc = proxy_server_set_log(server, f, null_mut(), u.arbitrary()?);
            check("set_log", rc);
            if server.is_null() {
                assert_eq!(rc, PROXY_NULL_PARAMETER);
            }
        }
        16 => null_session(u)?,
        17 => {
            if u.arbitrary()? {
                expect("tls_settings_new(NULL)", proxy_tls_settings_new(null_mut()), PROXY_NULL_PARAMETER);
                if w.tls.len() < MAX_TLS {
                    let mut p = null_mut();
                    expect("tls_settings_new", proxy_tls_settings_new(&mut p), PROXY_OK);
                    w.tls.push(p);
                }
            } else {
                let t = pick(u, &w.tls)?.map_or(null_mut(), |i| w.tls.swap_remove(i));
                expect("tls_settings_free", proxy_tls_settings_free(t), PROXY_OK);
            }
        }
        18 => tls_op(u, w)?,
        _ => {
            // The queries that take no handle.
            let code: u32 = u.arbitrary()?;
            assert!(!proxy_result_message(code).is_null());
            let len = u.int_in_range(0..=64)?;
            let mut buf = vec![1 as c_char; len];
            let need = proxy_last_error(if len == 0 { null_mut() } else { buf.as_mut_ptr() }, len);
            if len > 0 {
                assert_eq!(buf[need.min(len - 1)], 0, "proxy_last_error NUL-terminates");
            }
            assert_eq!(proxy_abi_version() >> 16, PROXY_ABI_VERSION_MAJOR);
            assert!(!proxy_version().is_null());
            let _ = proxy_features();
        }
    }
    Ok(())
}

fuzz_target!(|data: &[u8]| {
    let mut u = Unstructured::new(data);
    let mut w = World::default();
    for _ in 0..MAX_OPS {
        if u.is_empty() || step(&mut u, &mut w).is_err() {
            break;
        }
    }
    for s in w.servers.drain(..) {
        expect("server_free at the end", proxy_server_free(s.ptr), PROXY_OK);
    }
    for s in w.services.drain(..) {
        expect("service_free at the end", proxy_service_free(s.ptr), PROXY_OK);
    }
    for t in w.tls.drain(..) {
        expect("tls_settings_free at the end", proxy_tls_settings_free(t), PROXY_OK);
    }
});
