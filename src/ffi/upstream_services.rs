//! Background services from C: a group's active health checks, its DNS discovery, and services
//! the host writes itself (`proxy_server_add_background`), each run by the server with its
//! shutdown signal, as Pingora runs a `BackgroundService`.

use std::ffi::{c_char, c_void};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::{Condvar, Mutex};

use super::error::fail;
use super::result::*;
use super::server::proxy_server;
use super::types::*;
use super::upstream::group;
use crate::server::ShutdownWatch;
use crate::service::{background_service, BackgroundService};
use crate::upstream::{
    Discovery, HealthCheck, HealthChecker, HttpProbe, PeerOptions, Probe, Source, SystemResolver,
};

/// `proxy_health_check.probe`: a TCP (or Unix socket) connect.
pub const PROXY_PROBE_TCP: u32 = 0;
/// `proxy_health_check.probe`: a connect with the backend's TLS handshake.
pub const PROXY_PROBE_TLS: u32 = 1;
/// `proxy_health_check.probe`: an HTTP/1.1 request (`method`, `path`, `host`, `status_min` ..
/// `status_max`, `body`).
pub const PROXY_PROBE_HTTP: u32 = 2;

/// An active health check for every backend of a group (`proxy_server_add_health_check`, which
/// copies it). Zero means the default for every field: a TCP probe every 2000 ms, 1000 ms to
/// answer, no jitter, rise 2, fall 3; for HTTP `GET /`, the backend's host, any 200..=399.
/// Set `struct_size = sizeof(proxy_health_check)`. (ABI 0.7)
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct proxy_health_check {
    /// `sizeof(proxy_health_check)` as the host knows it.
    pub struct_size: u32,
    /// `PROXY_PROBE_*`.
    pub probe: u32,
    /// Milliseconds between rounds.
    pub interval_ms: u32,
    /// Milliseconds a probe may take.
    pub timeout_ms: u32,
    /// Up to this many milliseconds added to each interval at random.
    pub jitter_ms: u32,
    /// Successes in a row that bring a down backend up.
    pub rise: u32,
    /// Failures in a row that take an up backend down.
    pub fall: u32,
    /// HTTP: lowest passing status.
    pub status_min: u32,
    /// HTTP: highest passing status.
    pub status_max: u32,
    /// HTTP: request method.
    pub method: proxy_str,
    /// HTTP: request target.
    pub path: proxy_str,
    /// HTTP: Host header (empty: the backend's).
    pub host: proxy_str,
    /// HTTP: a substring the body must contain (empty: none).
    pub body: proxy_str,
}

fn text(s: proxy_str, default: &str) -> Result<String, proxy_result> {
    let b = s.bytes()?;
    if b.is_empty() {
        return Ok(default.to_owned());
    }
    match std::str::from_utf8(b) {
        Ok(t) if !t.contains(|c: char| c.is_ascii_control() || c == ' ') => Ok(t.to_owned()),
        _ => Err(fail(
            PROXY_INVALID_PARAMETER,
            "a health check method, path or host has a space or control byte",
        )),
    }
}

impl proxy_health_check {
    fn to_check(self) -> Result<HealthCheck, proxy_result> {
        let d = HealthCheck::default();
        let ms = |v: u32, d: Duration| if v == 0 { d } else { Duration::from_millis(u64::from(v)) };
        let probe = match self.probe {
            PROXY_PROBE_TCP => Probe::Tcp,
            PROXY_PROBE_TLS => Probe::Tls,
            PROXY_PROBE_HTTP => {
                let hd = HttpProbe::default();
                let lo = if self.status_min == 0 { *hd.status.start() } else { self.status_min as u16 };
                let hi = if self.status_max == 0 { *hd.status.end() } else { self.status_max as u16 };
                if self.status_min > 999 || self.status_max > 999 || lo > hi {
                    return Err(fail(
                        PROXY_INVALID_PARAMETER,
                        "health check status range is not within 0..=999",
                    ));
                }
                let body = self.body.bytes()?;
                Probe::Http(HttpProbe {
                    method: text(self.method, &hd.method)?,
                    path: text(self.path, &hd.path)?,
                    host: text(self.host, "")?,
                    status: lo..=hi,
                    body: (!body.is_empty()).then(|| body.to_vec()),
                })
            }
            other => return Err(fail(PROXY_INVALID_PARAMETER, format_args!("unknown health probe {other}"))),
        };
        Ok(HealthCheck {
            probe,
            interval: ms(self.interval_ms, d.interval),
            timeout: ms(self.timeout_ms, d.timeout),
            jitter: Duration::from_millis(u64::from(self.jitter_ms)),
            rise: if self.rise == 0 { d.rise } else { self.rise },
            fall: if self.fall == 0 { d.fall } else { self.fall },
        })
    }
}

/// Checks the group's backends while the server runs (a background service of its own, started
/// with the server). Before `proxy_server_start` only: WRONG_STATE after. GONE for an unknown
/// group; INVALID_PARAMETER for a bad check. The check is copied. (ABI 0.7)
#[no_mangle]
pub extern "C" fn proxy_server_add_health_check(
    server: *mut proxy_server,
    group_id: u64,
    check: *const proxy_health_check,
) -> proxy_result {
    ffi_panic_boundary! {
        let s = try_ref!(server);
        let _ = try_ref!(check);
        let g = try_res!(group(group_id));
        // SAFETY: non-NULL, and the host's struct is at least `struct_size` bytes.
        let c = try_res!(unsafe { copy_sized(check, std::mem::size_of::<proxy_health_check>()) });
        let check = try_res!(c.to_check());
        let name = format!("health-{}", g.name());
        s.add_before_start(background_service(&name, HealthChecker::new(g, check)))
    }
}

/// Keeps the group's backends to what `host` resolves to (A and AAAA, the system resolver),
/// each address on `port` with `weight` and default options, re-resolved every `interval_ms`
/// (0: 30000) while the server runs. Backends the group has when the server starts stay, as fixed
/// entries. New requests follow a changed answer; requests on an old address finish there. A
/// failed lookup keeps the last answer. Before `proxy_server_start` only (WRONG_STATE after).
/// (ABI 0.7)
#[no_mangle]
pub extern "C" fn proxy_server_add_dns_discovery(
    server: *mut proxy_server,
    group_id: u64,
    host: *const c_char,
    port: u32,
    weight: u32,
    interval_ms: u32,
) -> proxy_result {
    ffi_panic_boundary! {
        let s = try_ref!(server);
        let g = try_res!(group(group_id));
        // SAFETY: NULL or a C string.
        let host = try_res!(unsafe { cstr(host) });
        let (Ok(port), true) = (u16::try_from(port), (1..=crate::upstream::MAX_WEIGHT).contains(&weight)) else {
            return fail(PROXY_INVALID_PARAMETER, "DNS discovery port must be 0..=65535 and weight 1..=256");
        };
        let interval = Duration::from_millis(if interval_ms == 0 { 30_000 } else { u64::from(interval_ms) });
        let mut sources: Vec<Source> = g.backends().into_iter().map(Source::Fixed).collect();
        sources.push(Source::Dns { host: host.to_owned(), port, weight, options: PeerOptions::default() });
        let name = format!("dns-{}", g.name());
        s.add_before_start(background_service(&name, Discovery::new(g, sources, Arc::new(SystemResolver), interval)))
    }
}

/// The shutdown signal a host background service watches (`proxy_shutdown_wait`). Valid while
/// its service function runs. (ABI 0.7)
///
/// Methods: proxy_shutdown_wait.
pub struct proxy_shutdown {
    stopping: Mutex<bool>,
    changed: Condvar,
}

impl proxy_shutdown {
    fn stop(&self) {
        *self.stopping.lock() = true;
        self.changed.notify_all();
    }
}

/// A host background service: runs on a thread of its own until it returns; it should return
/// soon after `proxy_shutdown_wait(shutdown, ...)` answers non-zero.
pub type proxy_background_fn =
    Option<unsafe extern "C" fn(user: *mut c_void, shutdown: *const proxy_shutdown)>;

/// Waits up to `timeout_ms` (0: does not wait) for the server to begin shutting down. Returns 1
/// when it has (at once if it already had), 0 when the time ran out first; non-zero too for a
/// NULL signal, so a loop on it ends. (ABI 0.7)
#[no_mangle]
pub extern "C" fn proxy_shutdown_wait(shutdown: *const proxy_shutdown, timeout_ms: u32) -> u32 {
    ffi_panic_boundary! { value:
        // SAFETY: NULL or the signal handed to the running service function.
        let Some(s) = (unsafe { shutdown.as_ref() }) else { return 1 };
        let deadline = std::time::Instant::now() + Duration::from_millis(u64::from(timeout_ms));
        let mut stopping = s.stopping.lock();
        while !*stopping && !s.changed.wait_until(&mut stopping, deadline).timed_out() {}
        u32::from(*stopping)
    }
}

/// The host's service function and its user pointer.
struct HostService {
    f: unsafe extern "C" fn(*mut c_void, *const proxy_shutdown),
    user: *mut c_void,
}

// SAFETY: `user` is the host's, usable from the service's thread by the function's contract.
unsafe impl Send for HostService {}
// SAFETY: as above; the function runs once, on one thread.
unsafe impl Sync for HostService {}

/// Signals the host's thread when the service task ends for any reason: the shutdown watch
/// fired, or a fast shutdown dropped the task.
struct StopOnDrop(Arc<proxy_shutdown>);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        self.0.stop();
    }
}

impl BackgroundService for HostService {
    async fn start(&self, mut shutdown: ShutdownWatch) {
        let signal = Arc::new(proxy_shutdown { stopping: Mutex::new(false), changed: Condvar::new() });
        let _stop = StopOnDrop(signal.clone());
        let (done_tx, mut done_rx) = tokio::sync::oneshot::channel::<()>();
        let (f, user) = (self.f, self.user as usize);
        let thread_signal = signal.clone();
        // A thread of its own, not the runtime's: the host's function blocks as it likes.
        let spawned = std::thread::Builder::new().name("proxy-host-bg".into()).spawn(move || {
            // SAFETY: the host's function with its user pointer and a signal that outlives the call.
            super::in_callback(|| unsafe { f(user as *mut c_void, Arc::as_ptr(&thread_signal)) });
            let _ = done_tx.send(());
        });
        if spawned.is_err() {
            return;
        }
        tokio::select! {
            _ = &mut done_rx => return,
            () = shutdown.graceful() => signal.stop(),
        }
        // Graceful shutdown waits for the host's function (up to the grace period).
        let _ = done_rx.await;
    }
}

/// Runs `f(user, shutdown)` on a thread of its own when the server starts: a service the host
/// writes (its own discovery calling `proxy_group_set_backends`, metrics, a watcher). It should
/// return soon after `proxy_shutdown_wait` answers non-zero; a graceful shutdown waits for it up
/// to its grace period. `name` names the service; `user` must stay valid until `f` returns.
/// Before `proxy_server_start` only (WRONG_STATE after). (ABI 0.7)
#[no_mangle]
pub extern "C" fn proxy_server_add_background(
    server: *mut proxy_server,
    name: *const c_char,
    f: proxy_background_fn,
    user: *mut c_void,
) -> proxy_result {
    ffi_panic_boundary! {
        let s = try_ref!(server);
        // SAFETY: NULL or a C string.
        let name = try_res!(unsafe { cstr(name) });
        let Some(f) = f else { return fail(PROXY_NULL_PARAMETER, "`f` is NULL") };
        s.add_before_start(background_service(name, HostService { f, user }))
    }
}
