//! `proxy_server` and `proxy_service`: building services, starting, running and stopping the
//! server, resuming pending sessions, and the per-server log callback.

use std::ffi::{c_char, c_void};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::{Condvar, Mutex};

use super::callbacks::{proxy_http_callbacks, FfiHooks};
use super::error::fail;
use super::inside_callback;
use super::result::*;
use super::session::Registry;
use super::types::*;
use crate::listener::TransportStack;
use crate::proxy::HttpProxy;
use crate::server::{LogLevel, Logger, Server, ServerConf, ServerHandle};
use crate::service::ListeningService;

/// Log level: errors.
pub const PROXY_LOG_ERROR: u32 = 1;
/// Log level: warnings.
pub const PROXY_LOG_WARN: u32 = 2;
/// Log level: information.
pub const PROXY_LOG_INFO: u32 = 3;
/// Log level: debugging.
pub const PROXY_LOG_DEBUG: u32 = 4;

/// A log sink: `level` is a `PROXY_LOG_*`, `message` is valid only during the call. Called from
/// any thread, concurrently; must not block and must not call back into the server.
pub type proxy_log_fn = Option<unsafe extern "C" fn(user: *mut c_void, level: u32, message: proxy_str)>;

/// A function run on a service's worker threads (see `proxy_service_set_thread_hooks`).
pub type proxy_thread_fn = Option<unsafe extern "C" fn(user: *mut c_void)>;

/// The host's thread hooks and their user pointer.
#[derive(Clone, Copy)]
struct HostThreadHooks {
    on_start: proxy_thread_fn,
    on_stop: proxy_thread_fn,
    user: *mut c_void,
}

// SAFETY: `user` is the host's, valid from any thread by the header's contract.
unsafe impl Send for HostThreadHooks {}
// SAFETY: as above.
unsafe impl Sync for HostThreadHooks {}

impl HostThreadHooks {
    fn call(&self, f: proxy_thread_fn) {
        if let Some(f) = f {
            // SAFETY: a host function pointer with its own user pointer. Marked as a callback so
            // that proxy_server_shutdown / _free from a hook answer BUSY instead of deadlocking.
            super::in_callback(|| unsafe { f(self.user) });
        }
    }
}

struct LogSink {
    f: unsafe extern "C" fn(*mut c_void, u32, proxy_str),
    user: *mut c_void,
    max_level: u32,
}

/// What the server shares with its services' adapters.
pub(crate) struct Shared {
    pub(crate) registry: Arc<Registry>,
    log: Mutex<Option<LogSink>>,
    /// The configuration's `log_level` (a `PROXY_LOG_*`), a cap on the sink's own; a reload
    /// changes it.
    conf_level: std::sync::atomic::AtomicU32,
    /// The server's metrics and its services' log writers (see `observe.rs`).
    pub(crate) observe: super::observe::ServerObserve,
}

// SAFETY: the log sink's `user` is the host's, valid from any thread by the header's contract.
unsafe impl Send for Shared {}
// SAFETY: as above.
unsafe impl Sync for Shared {}

impl Shared {
    pub(crate) fn log(&self, level: u32, msg: &str) {
        self.observe.log_to_file(level, msg);
        let cap = self.conf_level.load(std::sync::atomic::Ordering::Relaxed);
        let (f, user) = match &*self.log.lock() {
            Some(s) if level <= s.max_level && level <= cap => (s.f, s.user),
            _ => return,
        };
        // SAFETY: a host function pointer with its own user pointer; the message outlives the call.
        super::in_callback(|| unsafe { f(user, level, proxy_str::from_bytes(msg.as_bytes())) });
    }
}

enum ServerState {
    Building(Server),
    Running(ServerHandle),
    Stopping,
    Stopped,
}

/// The server: owns services, starts each on its own threads, and stops them.
///
/// Caller owns it and must call `proxy_server_free`. Functions on one server may be called from
/// any thread; `proxy_server_run`, `_shutdown` and `_free` are refused from inside a callback
/// (PROXY_BUSY) because they wait for the workers.
///
/// Methods: proxy_server_new, proxy_server_set_log, proxy_server_add_service, proxy_server_start,
/// proxy_server_run, proxy_server_shutdown, proxy_server_free, proxy_session_resume.
pub struct proxy_server {
    // Shared with the threads blocked in `proxy_server_run` / `_shutdown`, so that
    // `proxy_server_free` from another thread can free the handle while they return.
    pub(crate) core: Arc<ServerCore>,
}

/// The server behind a `proxy_server` handle (not part of the C ABI).
pub struct ServerCore {
    pub(crate) shared: Arc<Shared>,
    state: Mutex<ServerState>,
    stopped: Condvar,
    stop_requested: tokio::sync::Notify,
    /// How many `proxy_server_run` calls are inside; `proxy_server_free` waits for 0.
    runs: Mutex<usize>,
    runs_done: Condvar,
    /// The configuration (`proxy_server_set_conf`), for reload, upgrade and signals.
    conf: Mutex<Option<Arc<super::ops::ConfState>>>,
    /// The pid file, written at start, removed when the server stops.
    pid_file: Mutex<Option<crate::server::daemon::PidFile>>,
}

impl std::ops::Deref for proxy_server {
    type Target = ServerCore;
    fn deref(&self) -> &ServerCore {
        &self.core
    }
}

/// An HTTP proxy service being configured: callbacks, endpoints, threads, limits and timeouts.
/// Caller owns it until `proxy_server_add_service` consumes it; otherwise free it with
/// `proxy_service_free`. Not thread-safe: configure it from one thread.
///
/// Methods: proxy_service_new, proxy_service_add_tcp, proxy_service_add_uds,
/// proxy_service_add_tls, proxy_service_add_tls_uds, proxy_service_set_h2_only,
/// proxy_service_set_threads, proxy_service_set_work_stealing, proxy_service_set_timeout,
/// proxy_service_set_limit, proxy_service_set_option, proxy_service_set_callbacks,
/// proxy_service_set_thread_hooks, proxy_service_set_compression,
/// proxy_service_set_compression_types, proxy_service_free.
pub struct proxy_service {
    pub(super) name: String,
    stacks: Vec<TransportStack>,
    threads: usize,
    work_stealing: bool,
    cbs: proxy_http_callbacks,
    pub(super) opts: crate::app::HttpServerOptions,
    pub(super) proxy: crate::proxy::ProxyOptions,
    pub(super) pending_timeout: Duration,
    thread_hooks: Option<HostThreadHooks>,
    pub(super) max_connections: usize,
    pub(super) max_connections_per_listener: usize,
    /// HTTP/2 settings and upstream pool size, from a configuration file.
    h2: crate::protocol::h2::H2Options,
    pool_size: Option<usize>,
    /// Set by `proxy_service_set_l4_callbacks`: a TCP proxy instead of HTTP.
    pub(super) l4: Option<super::proxy_protocol::L4Config>,
    /// `proxy_service_set_proxy_protocol`: PROXY headers on every endpoint.
    pub(super) proxy_protocol: Option<crate::protocol::proxy_protocol::AcceptPolicy>,
    /// Metrics, access log, request ids and error pages (see `observe.rs`).
    pub(crate) observe: super::observe::ServiceObserve,
}

/// Creates a server. `*out` receives it (caller owns it; free with `proxy_server_free`).
#[no_mangle]
pub extern "C" fn proxy_server_new(out: *mut *mut proxy_server) -> proxy_result {
    ffi_panic_boundary! {
        let out = try_mut!(out);
        let shared = Arc::new(Shared {
            registry: Arc::default(),
            log: Mutex::new(None),
            conf_level: std::sync::atomic::AtomicU32::new(u32::MAX),
            observe: Default::default(),
        });
        // The core's own messages (accept / attach errors, failed handshakes) go to this server's
        // log callback, never to stderr.
        let sink = shared.clone();
        let conf = ServerConf { log: Logger::new(move |level, msg| sink.log(level as u32, msg)), ..ServerConf::default() };
        let s = Box::new(proxy_server {
            core: Arc::new(ServerCore {
                shared,
                state: Mutex::new(ServerState::Building(Server::new(conf))),
                stopped: Condvar::new(),
                stop_requested: tokio::sync::Notify::new(),
                runs: Mutex::new(0),
                runs_done: Condvar::new(),
                conf: Mutex::new(None),
                pid_file: Mutex::new(None),
            }),
        });
        *out = Box::into_raw(s);
        PROXY_OK
    }
}

/// Sets (or, with `f` NULL, removes) the server's log callback; messages above `max_level`
/// (a `PROXY_LOG_*`) are not produced. `user` must stay valid until the server is freed. It gets
/// the adapter's messages (unknown actions, pending deadlines) and the core's (an endpoint that
/// cannot start, accept errors, failed TLS handshakes at DEBUG); libproxy never writes to stderr.
#[no_mangle]
pub extern "C" fn proxy_server_set_log(
    server: *mut proxy_server,
    f: proxy_log_fn,
    user: *mut c_void,
    max_level: u32,
) -> proxy_result {
    ffi_panic_boundary! {
        let s = try_ref!(server);
        *s.shared.log.lock() = f.map(|f| LogSink { f, user, max_level });
        PROXY_OK
    }
}

/// Adds a service; it starts with the server. Consumes `service` in every case except
/// PROXY_NULL_PARAMETER (even on WRONG_STATE): it must not be used or freed afterwards.
/// WRONG_STATE once the server was started.
#[no_mangle]
pub extern "C" fn proxy_server_add_service(
    server: *mut proxy_server,
    service: *mut proxy_service,
) -> proxy_result {
    ffi_panic_boundary! {
        let s = try_ref!(server);
        if service.is_null() {
            return PROXY_NULL_PARAMETER;
        }
        // SAFETY: non-NULL and created by proxy_service_new; we take ownership as documented.
        let svc = unsafe { Box::from_raw(service) };
        let mut st = s.state.lock();
        let ServerState::Building(server) = &mut *st else { return PROXY_WRONG_STATE };
        let mut svc = *svc;
        if let Some(l4) = svc.l4.take() {
            let ls = super::proxy_protocol::l4_service(&svc, l4, s.shared.clone());
            return add_listening(server, ls, svc);
        }
        let hooks = FfiHooks {
            cbs: svc.cbs,
            shared: s.shared.clone(),
            pending_timeout: svc.pending_timeout,
            error_response: svc.observe.error_response,
        };
        let mut proxy = HttpProxy::new(hooks);
        *proxy.server_options_mut() = std::mem::take(&mut svc.opts);
        *proxy.options_mut() = std::mem::take(&mut svc.proxy);
        *proxy.h2_options_mut() = std::mem::take(&mut svc.h2);
        if let Some(n) = svc.pool_size {
            proxy.set_connector(crate::connector::Connector::new(n));
        }
        let connector = proxy.connector().clone();
        proxy.options_mut().observe = try_res!(std::mem::take(&mut svc.observe).build(&svc.name, &s.shared, connector));
        add_listening(server, ListeningService::new(&svc.name, proxy), svc)
    }
}

/// Gives `ls` the service's endpoints, threads, caps and PROXY setting, and adds it to `server`.
fn add_listening<A: crate::app::ServerApp>(
    server: &mut Server,
    mut ls: ListeningService<A>,
    svc: proxy_service,
) -> proxy_result {
    ls.set_threads(svc.threads);
    ls.set_work_stealing(svc.work_stealing);
    ls.set_max_connections(svc.max_connections);
    ls.set_max_connections_per_listener(svc.max_connections_per_listener);
    ls.set_proxy_protocol(svc.proxy_protocol);
    if let Some(h) = svc.thread_hooks {
        ls.set_thread_hooks(Arc::new(move || h.call(h.on_start)), Arc::new(move || h.call(h.on_stop)));
    }
    for stack in svc.stacks {
        if let Err(e) = ls.add_stack(stack) {
            return fail(PROXY_IO, format_args!("service {:?}: endpoint: {e}", svc.name));
        }
    }
    server.add_service(ls);
    PROXY_OK
}

impl ServerCore {
    /// Adds a service (a background one: checks, discovery, the host's) before the server starts;
    /// WRONG_STATE after.
    pub(crate) fn add_before_start(&self, service: impl crate::service::Service) -> proxy_result {
        let mut st = self.state.lock();
        let ServerState::Building(server) = &mut *st else { return PROXY_WRONG_STATE };
        server.add_service(service);
        PROXY_OK
    }
}

fn start_locked(s: &ServerCore, st: &mut ServerState) -> proxy_result {
    if !matches!(st, ServerState::Building(_)) {
        return PROXY_WRONG_STATE;
    }
    let mut notifier = None;
    if let Some(conf) = s.conf_state() {
        match super::ops::on_start(s, &conf) {
            Ok(started) => {
                *s.pid_file.lock() = started.pid_file;
                notifier = started.notifier;
            }
            Err(code) => return code,
        }
    }
    match std::mem::replace(st, ServerState::Stopping) {
        ServerState::Building(server) => match server.start() {
            Ok(h) => {
                *st = ServerState::Running(h);
                if let Some(Err(e)) = notifier.map(|n| n.ready()) {
                    s.log(LogLevel::Warn, &format!("readiness (NOTIFY_SOCKET) not sent: {e}"));
                }
                PROXY_OK
            }
            Err(e) => {
                *st = ServerState::Stopped;
                fail(PROXY_IO, format_args!("starting the service threads: {e}"))
            }
        },
        other => {
            *st = other;
            PROXY_WRONG_STATE
        }
    }
}

/// Starts every service on its own threads and returns at once. WRONG_STATE if already started.
#[no_mangle]
pub extern "C" fn proxy_server_start(server: *mut proxy_server) -> proxy_result {
    ffi_panic_boundary! {
        let s = try_ref!(server);
        start_locked(s, &mut s.state.lock())
    }
}

/// `proxy_server_run` flag: also stop on SIGTERM (graceful, 30 s grace) and SIGINT (fast), and
/// reopen the log files on SIGUSR1. Installs process-wide handlers for those signals. With a
/// configuration (`proxy_server_set_conf`) SIGTERM uses its `grace_period_seconds`, and SIGHUP
/// (`proxy_server_reload`) and SIGQUIT (`proxy_server_upgrade`) are answered too.
pub const PROXY_RUN_SIGNALS: u32 = 1;

/// Starts the server if needed and blocks until it has stopped: after `proxy_server_shutdown`
/// or `proxy_server_free` from another thread or, with `PROXY_RUN_SIGNALS`, a signal. BUSY from
/// inside a callback.
#[no_mangle]
pub extern "C" fn proxy_server_run(server: *mut proxy_server, flags: u32) -> proxy_result {
    ffi_panic_boundary! {
        let s = try_ref!(server);
        if inside_callback() {
            return fail(PROXY_BUSY, "proxy_server_run from inside a callback would wait for its own worker");
        }
        // From here on only the shared core is touched: the handle may be freed meanwhile.
        let core = s.core.clone();
        let s = &*core;
        let _running = RunGuard::enter(s);
        if flags & !PROXY_RUN_SIGNALS != 0 {
            return fail(PROXY_INVALID_PARAMETER, format_args!("unknown proxy_server_run flags {:#x}", flags & !PROXY_RUN_SIGNALS));
        }
        {
            let mut st = s.state.lock();
            if let ServerState::Building(_) = &*st {
                let r = start_locked(s, &mut st);
                if r != PROXY_OK {
                    return r;
                }
            }
        }
        if flags & PROXY_RUN_SIGNALS != 0 {
            run_signals(s);
        }
        let mut st = s.state.lock();
        while !matches!(&*st, ServerState::Stopped) {
            s.stopped.wait(&mut st);
        }
        PROXY_OK
    }
}

/// Counts a `proxy_server_run` in progress for `proxy_server_free` to wait on.
struct RunGuard<'a>(&'a ServerCore);

impl<'a> RunGuard<'a> {
    fn enter(s: &'a ServerCore) -> Self {
        *s.runs.lock() += 1;
        RunGuard(s)
    }
}

impl Drop for RunGuard<'_> {
    fn drop(&mut self) {
        let mut n = self.0.runs.lock();
        *n -= 1;
        if *n == 0 {
            self.0.runs_done.notify_all();
        }
    }
}

/// What a signal asks for.
enum Signalled {
    /// SIGTERM (graceful, the grace period) or SIGINT (fast, zero).
    Stop(Duration),
    /// SIGQUIT with a configuration: hand the sockets over, then stop.
    Upgrade,
    /// SIGHUP with a configuration: re-read the file.
    Reload,
    /// SIGUSR1: reopen the log files (rotation), as nginx does.
    Reopen,
}

/// Answers signals until the server stops: SIGTERM and SIGINT always; SIGQUIT (upgrade) and
/// SIGHUP (reload) when the server has a configuration, whose grace period SIGTERM then uses.
fn run_signals(s: &ServerCore) {
    let Ok(rt) = tokio::runtime::Builder::new_current_thread().enable_all().build() else { return };
    loop {
        let conf = s.conf_state();
        match rt.block_on(wait_signal_or_stop(s, conf.is_some())) {
            None => return,
            Some(Signalled::Stop(grace)) => {
                let grace = match (&conf, grace.is_zero()) {
                    (Some(c), false) => super::ops::grace(c),
                    _ => grace,
                };
                shutdown(s, grace);
                return;
            }
            Some(Signalled::Upgrade) => {
                if s.upgrade() == PROXY_OK {
                    return;
                }
                s.log(
                    LogLevel::Error,
                    &format!("upgrade failed, still serving: {}", super::error::last_detail()),
                );
            }
            Some(Signalled::Reopen) => {
                if s.shared.observe.reopen(&s.shared) != PROXY_OK {
                    s.log(
                        LogLevel::Error,
                        &format!("reopening the logs failed: {}", super::error::last_detail()),
                    );
                }
            }
            Some(Signalled::Reload) => {
                if let Some(c) = &conf {
                    if super::ops::reload(s, c) != PROXY_OK {
                        s.log(LogLevel::Error, &format!("reload failed: {}", super::error::last_detail()));
                    }
                }
            }
        }
    }
}

/// Waits for a signal, or a shutdown request (None).
async fn wait_signal_or_stop(s: &ServerCore, ops: bool) -> Option<Signalled> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).ok()?;
    let mut int = signal(SignalKind::interrupt()).ok()?;
    // Installed only for a configured server: a host that never asked keeps its dispositions.
    let mut quit = if ops { Some(signal(SignalKind::quit()).ok()?) } else { None };
    let mut hup = if ops { Some(signal(SignalKind::hangup()).ok()?) } else { None };
    let mut usr1 = signal(SignalKind::user_defined1()).ok()?;
    let quit_recv = async {
        match &mut quit {
            Some(q) => q.recv().await,
            None => std::future::pending().await,
        }
    };
    let hup_recv = async {
        match &mut hup {
            Some(h) => h.recv().await,
            None => std::future::pending().await,
        }
    };
    tokio::select! {
        _ = term.recv() => Some(Signalled::Stop(ServerConf::default().grace_period)),
        _ = int.recv() => Some(Signalled::Stop(Duration::ZERO)),
        _ = quit_recv => Some(Signalled::Upgrade),
        _ = hup_recv => Some(Signalled::Reload),
        _ = usr1.recv() => Some(Signalled::Reopen),
        _ = s.stop_requested.notified() => None,
    }
}

impl ServerCore {
    pub(crate) fn conf_state(&self) -> Option<Arc<super::ops::ConfState>> {
        self.conf.lock().clone()
    }

    /// Takes the configuration's server settings; only before the server starts.
    pub(crate) fn set_conf(
        &self,
        state: Arc<super::ops::ConfState>,
        conf: &crate::config::FileConf,
    ) -> Result<(), proxy_result> {
        let mut st = self.state.lock();
        let ServerState::Building(server) = &mut *st else { return Err(PROXY_WRONG_STATE) };
        let sc = server.conf_mut();
        sc.grace_period = conf.grace_period();
        sc.final_timeout = Duration::from_secs(conf.graceful_shutdown_timeout_seconds);
        self.set_conf_level(conf.log_level);
        *self.conf.lock() = Some(state);
        Ok(())
    }

    pub(crate) fn set_conf_level(&self, level: LogLevel) {
        self.shared.conf_level.store(level as u32, std::sync::atomic::Ordering::Relaxed);
    }

    pub(crate) fn log(&self, level: LogLevel, msg: &str) {
        self.shared.log(level as u32, msg);
    }

    /// Hands the listening sockets to the new process, then stops gracefully (see
    /// `proxy_server_upgrade`).
    pub(crate) fn upgrade(&self) -> proxy_result {
        let Some(conf) = self.conf_state() else {
            return fail(PROXY_WRONG_STATE, "the server has no configuration (proxy_server_set_conf)");
        };
        let (sock, retries) = super::ops::upgrade_target(&conf);
        let handle = {
            let mut st = self.state.lock();
            match std::mem::replace(&mut *st, ServerState::Stopping) {
                ServerState::Running(h) => h,
                other => {
                    *st = other;
                    return fail(PROXY_WRONG_STATE, "the server is not running");
                }
            }
        };
        self.stop_requested.notify_one();
        match handle.upgrade(&sock, retries, super::ops::grace(&conf)) {
            Ok(n) => {
                self.log(LogLevel::Info, &format!("handed {n} listening sockets over on {}", sock.display()));
                self.stopped_now();
                PROXY_OK
            }
            Err((handle, e)) => {
                *self.state.lock() = ServerState::Running(handle);
                fail(PROXY_UPGRADE_FAILED, e)
            }
        }
    }

    /// Marks the server stopped: the pid file goes, and every waiter returns.
    fn stopped_now(&self) {
        self.pid_file.lock().take();
        *self.state.lock() = ServerState::Stopped;
        self.stopped.notify_all();
    }
}

fn shutdown(s: &ServerCore, grace: Duration) -> proxy_result {
    let handle = {
        let mut st = s.state.lock();
        match std::mem::replace(&mut *st, ServerState::Stopping) {
            ServerState::Running(h) => h,
            ServerState::Building(_) | ServerState::Stopped => {
                *st = ServerState::Stopped;
                s.stopped.notify_all();
                return PROXY_OK;
            }
            ServerState::Stopping => {
                // Another thread is stopping it: wait for that.
                while !matches!(&*st, ServerState::Stopped) {
                    s.stopped.wait(&mut st);
                }
                return PROXY_OK;
            }
        }
    };
    s.stop_requested.notify_one();
    if grace.is_zero() {
        handle.shutdown_fast();
    } else {
        handle.shutdown(grace);
    }
    // Every access line of the requests that ran is on disk when shutdown returns.
    s.shared.observe.flush();
    s.stopped_now();
    PROXY_OK
}

/// Stops the server: stop accepting, let in-flight requests finish for up to `grace_ms`
/// (0 = stop now), then stop every worker. Blocks until no callback runs any more. A second call
/// (or one on a server never started) returns OK. BUSY from inside a callback. Pending sessions
/// still waiting at the end are dropped (their resume answers GONE).
#[no_mangle]
pub extern "C" fn proxy_server_shutdown(server: *mut proxy_server, grace_ms: u32) -> proxy_result {
    ffi_panic_boundary! {
        let s = try_ref!(server);
        if inside_callback() {
            return fail(PROXY_BUSY, "proxy_server_shutdown from inside a callback would wait for its own worker");
        }
        // The shared core, not the handle: a proxy_server_free on another thread may free it.
        let core = s.core.clone();
        shutdown(&core, Duration::from_millis(grace_ms as u64))
    }
}

/// Shuts the server down (grace 0) if it runs, waits until every `proxy_server_run` blocked on
/// it in other threads has returned (they return PROXY_OK), then frees it. So a host may free the
/// server from a destructor or finalizer while another thread still runs it; it must not start a
/// new `proxy_server_run` / `_shutdown` once `_free` was called. NULL is a no-op (OK). BUSY (and
/// nothing freed) from inside a callback.
#[no_mangle]
pub extern "C" fn proxy_server_free(server: *mut proxy_server) -> proxy_result {
    ffi_panic_boundary! {
        if server.is_null() {
            return PROXY_OK;
        }
        if inside_callback() {
            return fail(PROXY_BUSY, "proxy_server_free from inside a callback would wait for its own worker");
        }
        // SAFETY: non-NULL and created by proxy_server_new; the caller gives up ownership.
        let s = unsafe { Box::from_raw(server) };
        shutdown(&s, Duration::ZERO);
        let mut runs = s.runs.lock();
        while *runs > 0 {
            s.runs_done.wait(&mut runs);
        }
        drop(runs);
        s.shared.registry.clear();
        drop(s);
        PROXY_OK
    }
}

/// Resumes a session that returned `PROXY_PENDING` with `action` (`PROXY_CONTINUE`,
/// `PROXY_RESPONDED` or `PROXY_ERROR`). Callable from any thread, never blocks on the request,
/// never runs a callback itself: the request continues on its worker. A resume that arrives before
/// the callback returned PENDING is kept until it does (the callback must have called
/// `proxy_session_id`, which arms its decision).
///
/// Answers: OK when it decided the pending wait (or the armed callback); ALREADY when that
/// decision was resumed before, also while later phases of the session run, until a later
/// callback arms a new decision; WRONG_STATE when the session is alive but has nothing to resume
/// (no callback armed a decision: it is between phases or in a callback that did not ask for the
/// id); GONE when the session ended, its pending deadline passed, or the wait ended otherwise;
/// INVALID_PARAMETER for another action.
#[no_mangle]
pub extern "C" fn proxy_session_resume(
    server: *mut proxy_server,
    session_id: u64,
    action: proxy_action,
) -> proxy_result {
    ffi_panic_boundary! {
        let s = try_ref!(server);
        if !matches!(action, PROXY_CONTINUE | PROXY_RESPONDED | PROXY_ERROR) {
            return fail(PROXY_INVALID_PARAMETER, format_args!("action {action} cannot resume a session (CONTINUE, RESPONDED or ERROR)"));
        }
        s.shared.registry.resume(session_id, action)
    }
}

/// Creates a service named `name` (used for its thread names), with one work-stealing worker
/// thread, no endpoint, no callbacks and the default limits. `*out` receives it.
#[no_mangle]
pub extern "C" fn proxy_service_new(name: *const c_char, out: *mut *mut proxy_service) -> proxy_result {
    ffi_panic_boundary! {
        let out = try_mut!(out);
        // SAFETY: NULL or a C string, as documented.
        let name = try_res!(unsafe { cstr(name) });
        let svc = Box::new(proxy_service {
            name: name.to_owned(),
            stacks: Vec::new(),
            threads: 1,
            work_stealing: true,
            cbs: proxy_http_callbacks::empty(),
            opts: Default::default(),
            proxy: Default::default(),
            pending_timeout: Duration::from_secs(30),
            thread_hooks: None,
            max_connections: 0,
            max_connections_per_listener: 0,
            h2: Default::default(),
            pool_size: None,
            l4: None,
            proxy_protocol: None,
            observe: Default::default(),
        });
        *out = Box::into_raw(svc);
        PROXY_OK
    }
}

/// Frees a service that was not added to a server. NULL is a no-op. Always PROXY_OK: it returns a
/// result like every `_free` (since ABI 0.4), of which only `proxy_server_free` can refuse.
#[no_mangle]
pub extern "C" fn proxy_service_free(service: *mut proxy_service) -> proxy_result {
    ffi_panic_boundary! {
        if !service.is_null() {
            // SAFETY: created by proxy_service_new and not consumed, as documented.
            drop(unsafe { Box::from_raw(service) });
        }
        PROXY_OK
    }
}

/// Binds a TCP endpoint now (`127.0.0.1:8080`, `[::1]:0`, ...). `out_port` (may be NULL) receives
/// the bound port, useful with port 0. INVALID_PARAMETER for a malformed address, IO when binding
/// fails.
#[no_mangle]
pub extern "C" fn proxy_service_add_tcp(
    service: *mut proxy_service,
    addr: *const c_char,
    out_port: *mut u16,
) -> proxy_result {
    ffi_panic_boundary! {
        let svc = try_mut!(service);
        // SAFETY: NULL or a C string.
        let addr = try_res!(unsafe { cstr(addr) });
        let a = try_res!(parse_inet(addr));
        let stack = match TransportStack::bind_tcp(a) {
            Ok(s) => s,
            Err(e) => return fail(PROXY_IO, format_args!("bind {a}: {e}")),
        };
        let port = try_res!(bound_port(&stack));
        svc.stacks.push(stack);
        // SAFETY: NULL or valid.
        if let Some(p) = unsafe { out_port.as_mut() } {
            *p = port;
        }
        PROXY_OK
    }
}

/// A TCP endpoint address, or INVALID_PARAMETER saying what is wrong with it.
pub(crate) fn parse_inet(addr: &str) -> Result<std::net::SocketAddr, proxy_result> {
    addr.parse::<std::net::SocketAddr>().map_err(|e| {
        fail(PROXY_INVALID_PARAMETER, format_args!("{addr:?} is not an IP address with a port ({e})"))
    })
}

/// The port a TCP endpoint was bound to.
pub(crate) fn bound_port(stack: &TransportStack) -> Result<u16, proxy_result> {
    match stack.local_addr() {
        Ok(crate::protocol::stream::SocketAddr::Inet(a)) => Ok(a.port()),
        Ok(other) => Err(fail(PROXY_IO, format_args!("endpoint bound to {other}, not a TCP address"))),
        Err(e) => Err(fail(PROXY_IO, format_args!("reading the bound address: {e}"))),
    }
}

impl proxy_service {
    pub(crate) fn push_stack(&mut self, stack: TransportStack) {
        self.stacks.push(stack);
    }

    /// The endpoints bound so far.
    pub(crate) fn stacks(&self) -> &[TransportStack] {
        &self.stacks
    }

    /// The service's name.
    pub(crate) fn name(&self) -> &str {
        &self.name
    }

    /// Takes a configuration file's settings for this service (see `proxy_service_apply_conf`).
    pub(crate) fn apply_settings(&mut self, sc: &crate::config::ServiceConf, conf: &crate::config::FileConf) {
        self.threads = sc.threads;
        self.work_stealing = sc.work_stealing;
        self.opts.h2_only = sc.h2_only;
        sc.limits.apply(&mut self.opts, &mut self.h2);
        self.max_connections = sc.limits.max_connections;
        self.proxy.max_retries = conf.max_retries;
        self.pool_size = Some(conf.upstream_keepalive_pool_size);
    }

    /// The proxy settings, for the setters in sibling modules.
    pub(super) fn proxy_options(&mut self) -> &mut crate::proxy::ProxyOptions {
        &mut self.proxy
    }
}

/// Binds a Unix domain socket endpoint now (a stale socket file is replaced).
#[no_mangle]
pub extern "C" fn proxy_service_add_uds(service: *mut proxy_service, path: *const c_char) -> proxy_result {
    ffi_panic_boundary! {
        let svc = try_mut!(service);
        // SAFETY: NULL or a C string.
        let path = try_res!(unsafe { cstr(path) });
        if path.is_empty() {
            return fail(PROXY_INVALID_PARAMETER, "empty Unix socket path");
        }
        match TransportStack::bind_unix(std::path::Path::new(path)) {
            Ok(stack) => {
                svc.stacks.push(stack);
                PROXY_OK
            }
            Err(e) => fail(PROXY_IO, format_args!("bind unix:{path}: {e}")),
        }
    }
}

/// Sets the number of worker threads (1..=1024).
#[no_mangle]
pub extern "C" fn proxy_service_set_threads(service: *mut proxy_service, threads: u32) -> proxy_result {
    ffi_panic_boundary! {
        let svc = try_mut!(service);
        if threads == 0 || threads > 1024 {
            return fail(PROXY_INVALID_PARAMETER, format_args!("{threads} threads: the range is 1..=1024"));
        }
        svc.threads = threads as usize;
        PROXY_OK
    }
}

/// 1: serve only HTTP/2 (h2c by prior knowledge on plaintext endpoints; anything else is refused);
/// 0 (default): HTTP/1.x, plus HTTP/2 for connections that start with its preface or negotiate
/// `h2` by ALPN. (ABI 0.3)
#[no_mangle]
pub extern "C" fn proxy_service_set_h2_only(service: *mut proxy_service, on: u32) -> proxy_result {
    ffi_panic_boundary! {
        let svc = try_mut!(service);
        svc.opts.h2_only = on != 0;
        PROXY_OK
    }
}

/// 1: one work-stealing runtime (default); 0: `threads` isolated single-thread runtimes.
#[no_mangle]
pub extern "C" fn proxy_service_set_work_stealing(service: *mut proxy_service, on: u32) -> proxy_result {
    ffi_panic_boundary! {
        let svc = try_mut!(service);
        svc.work_stealing = on != 0;
        PROXY_OK
    }
}

/// Sets the phase callbacks (copied; see `proxy_http_callbacks` for `struct_size`).
/// INVALID_PARAMETER when `struct_size` is smaller than `struct_size` + `user`.
#[no_mangle]
pub extern "C" fn proxy_service_set_callbacks(
    service: *mut proxy_service,
    callbacks: *const proxy_http_callbacks,
) -> proxy_result {
    ffi_panic_boundary! {
        let svc = try_mut!(service);
        let _ = try_ref!(callbacks);
        // SAFETY: non-NULL; the host's struct has at least `struct_size` readable bytes.
        let cbs = try_res!(unsafe { copy_sized(callbacks, proxy_http_callbacks::MIN_SIZE) });
        svc.cbs = cbs;
        PROXY_OK
    }
}

/// Sets functions run on every worker thread of this service: `on_start(user)` on each thread
/// before it runs any callback of the service, `on_stop(user)` when the thread exits (during
/// `proxy_server_shutdown` / `_free`, after the last callback on that thread). Either may be NULL;
/// both NULL removes the hooks. For bindings that need per-thread state (a Python thread state,
/// a JNI env). With work stealing on and more than one thread they may also run on the runtime's
/// helper threads, which never run callbacks. The hooks must not block; proxy_server_run /
/// _shutdown / _free called from one answer BUSY. `user` must stay valid until the server is freed.
#[no_mangle]
pub extern "C" fn proxy_service_set_thread_hooks(
    service: *mut proxy_service,
    on_start: proxy_thread_fn,
    on_stop: proxy_thread_fn,
    user: *mut c_void,
) -> proxy_result {
    ffi_panic_boundary! {
        let svc = try_mut!(service);
        svc.thread_hooks = match (on_start, on_stop) {
            (None, None) => None,
            _ => Some(HostThreadHooks { on_start, on_stop, user }),
        };
        PROXY_OK
    }
}
