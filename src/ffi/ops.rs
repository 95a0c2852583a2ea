//! `proxy_conf`: the configuration file and the command line (`-c -d -t -u`), applied to a server
//! and its services; reload (SIGHUP or `proxy_server_reload`) and zero-downtime upgrade (SIGQUIT
//! or `proxy_server_upgrade`). The work is in `crate::config` and `crate::server::{daemon,
//! upgrade}`; this module is the C surface and the glue to `proxy_server`.

use std::ffi::{c_char, c_int};
use std::sync::Arc;

use parking_lot::Mutex;

use super::error::fail;
use super::result::*;
use super::server::{proxy_server, proxy_service, ServerCore};
use super::types::*;
use crate::config::{
    parse_args, reload_plan, startup, Address, Args, FileConf, ReloadPlan, Startup, StartupError,
};
use crate::listener::TransportStack;
use crate::server::{daemon, LogLevel};
use crate::upstream::{Backend, UpstreamGroup};

/// `proxy_conf_flags`: run in the background (`-d`, or `daemon: true` in the file).
pub const PROXY_CONF_DAEMON: u32 = 1;
/// `proxy_conf_flags`: `-t` was given (the process exits inside `proxy_conf_from_args`, so a
/// host only sees this bit on a configuration built otherwise; kept for completeness).
pub const PROXY_CONF_TEST: u32 = 2;
/// `proxy_conf_flags`: `-u`: the listening sockets came from the process being upgraded.
pub const PROXY_CONF_UPGRADE: u32 = 4;

/// A loaded configuration and the command line's flags: server settings, per-service limits and
/// listeners, upstream groups.
///
/// Caller owns it and must call `proxy_conf_free`; a server it was given to keeps what it needs,
/// so it may be freed at any time. Thread-safe.
///
/// Methods: proxy_conf_from_args, proxy_conf_get, proxy_conf_flags, proxy_conf_group,
/// proxy_server_set_conf, proxy_service_apply_conf, proxy_conf_free.
pub struct proxy_conf {
    state: Arc<ConfState>,
}

/// Every key with its effective value (`FileConf::entries`).
type Entries = Vec<(String, String)>;

/// What a server keeps of its configuration: the file's current contents (replaced by a reload)
/// and the groups made from it (whose backends a reload changes).
pub(crate) struct ConfState {
    args: Args,
    current: Mutex<Arc<FileConf>>,
    /// The effective values of every configuration `proxy_conf_get` read (one per reload):
    /// views into them stay valid until `proxy_conf_free`, across reloads.
    views: Mutex<Vec<(Arc<FileConf>, Arc<Entries>)>>,
    groups: Mutex<Vec<(String, UpstreamGroup)>>,
    /// The certificate sets of the TLS listeners made from the file, by
    /// `services.NAME.listeners.I`: a reload swaps new ones in.
    certs: Mutex<Vec<(String, crate::tls::Certificates)>>,
    warnings: Vec<String>,
}

impl ConfState {
    pub(crate) fn current(&self) -> Arc<FileConf> {
        self.current.lock().clone()
    }

    pub(crate) fn warnings(&self) -> &[String] {
        &self.warnings
    }
}

/// Reads the library's flags from the command line, loads the configuration file and does what
/// the flags ask, in Pingora's order:
///
/// - `-c/--conf FILE`: loads FILE (defaults without it). A bad file fails with
///   PROXY_CONFIG_INVALID and `proxy_last_error` says `file:line:col: key: expected ...`. Unknown
///   keys are warnings, sent to the server's log by `proxy_server_set_conf`.
/// - `-t/--test`: also loads every TLS certificate and key and the CA file, and an unknown key is
///   an error; then prints `... configuration OK` to stdout and exits the process with 0, or the
///   error to stderr and exits with 1. This call does not return.
/// - `-d/--daemon` (or `daemon: true`): starts this same program again in the background (same
///   command line) and waits until it serves (`proxy_server_start` / `_run` succeeded in it) or
///   failed, then exits the process with its status (0 once ready). In the background process
///   this call returns normally after detaching: own session, stdin from /dev/null, stdout and
///   stderr appended to `error_log` (or /dev/null).
/// - `-u/--upgrade`: waits (`upgrade_sock_connect_accept_max_retries` x 100 ms) on `upgrade_sock`
///   for the running process to hand over its listening sockets (send it SIGQUIT); binding the
///   same endpoints afterwards takes them instead of binding. PROXY_UPGRADE_FAILED when none came.
/// - Sockets passed by systemd (`LISTEN_PID`, `LISTEN_FDS`) are taken the same way, each by its
///   local address.
///
/// `argv[0..*argc]` are the program's arguments (program name first, as `main` gets them); they
/// are compacted in place to what the library did not take, in order, and `*argc` is updated, so
/// the host parses the rest (`getopt`, Go's `flag`). `argv` may be NULL when `*argc` is 0.
/// `*out` receives the configuration (free with `proxy_conf_free`). Call it before any other
/// thread of the host would mind the process detaching.
#[no_mangle]
pub extern "C" fn proxy_conf_from_args(
    argc: *mut c_int,
    argv: *mut *mut c_char,
    out: *mut *mut proxy_conf,
) -> proxy_result {
    ffi_panic_boundary! {
        let out = try_mut!(out);
        let argc = try_mut!(argc);
        let n = usize::try_from(*argc).unwrap_or(0);
        if n > 0 && argv.is_null() {
            return PROXY_NULL_PARAMETER;
        }
        let mut ptrs: Vec<*mut c_char> = Vec::with_capacity(n);
        let mut strings = Vec::with_capacity(n);
        for i in 0..n {
            // SAFETY: argv holds *argc pointers, as documented.
            let p = unsafe { *argv.add(i) };
            // SAFETY: each a C string (or NULL, refused).
            strings.push(try_res!(unsafe { cstr(p) }).to_owned());
            ptrs.push(p);
        }
        let (args, rest) = match parse_args(&strings) {
            Ok(v) => v,
            Err(e) => return fail(PROXY_CONFIG_INVALID, e),
        };
        let state = try_res!(load_and_act(args));
        // The rest is a subsequence of argv: keep those pointers, in order.
        let mut kept = 0;
        for (s, p) in strings.iter().zip(&ptrs) {
            if kept < rest.len() && *s == rest[kept] {
                // SAFETY: kept <= i < *argc: inside the host's array.
                unsafe { *argv.add(kept) = *p };
                kept += 1;
            }
        }
        if kept < n {
            // SAFETY: as above; C's argv[argc] is NULL, so it stays NULL-terminated.
            unsafe { *argv.add(kept) = std::ptr::null_mut() };
        }
        *argc = kept as c_int;
        *out = Box::into_raw(Box::new(proxy_conf { state }));
        PROXY_OK
    }
}

fn load_and_act(args: Args) -> Result<Arc<ConfState>, proxy_result> {
    let (conf, warnings) = match startup(&args) {
        Ok(Startup::Run(conf, warnings)) => (conf, warnings),
        Ok(Startup::Exit(status)) => std::process::exit(status),
        Err(e) => {
            let code = match &e {
                StartupError::Config(_) => PROXY_CONFIG_INVALID,
                StartupError::Daemon(_) => PROXY_DAEMON_FAILED,
                StartupError::Upgrade(_) => PROXY_UPGRADE_FAILED,
                StartupError::Systemd(_) => PROXY_IO,
            };
            return Err(fail(code, e));
        }
    };
    Ok(Arc::new(ConfState {
        args,
        current: Mutex::new(Arc::new(*conf)),
        views: Mutex::new(Vec::new()),
        groups: Mutex::new(Vec::new()),
        certs: Mutex::new(Vec::new()),
        warnings,
    }))
}

/// Frees a configuration. NULL is a no-op. Views from `proxy_conf_get` end here.
#[no_mangle]
pub extern "C" fn proxy_conf_free(conf: *mut proxy_conf) -> proxy_result {
    ffi_panic_boundary! {
        if !conf.is_null() {
            // SAFETY: created by proxy_conf_from_args and not freed before, as documented.
            drop(unsafe { Box::from_raw(conf) });
        }
        PROXY_OK
    }
}

/// The effective value of `key` as text (`threads`, `limits.header_timeout_ms`,
/// `services.proxy.listeners.0.address`, `upstreams.backend.backends.1.weight`, ...: every key
/// of the file, dotted, list items by index; defaults filled in, per-service values resolved,
/// unset optional paths empty). After a reload it is the reloaded value. `*out` is a view valid
/// until `proxy_conf_free`. NOT_FOUND for a key the configuration does not have.
#[no_mangle]
pub extern "C" fn proxy_conf_get(
    conf: *const proxy_conf,
    key: *const c_char,
    out: *mut proxy_str,
) -> proxy_result {
    ffi_panic_boundary! {
        let c = try_ref!(conf);
        let out = try_mut!(out);
        // SAFETY: NULL or a C string.
        let key = try_res!(unsafe { cstr(key) });
        let current = c.state.current();
        let mut views = c.state.views.lock();
        // One snapshot per configuration (a heap allocation the views point into), kept as long
        // as the handle.
        let snapshot = match views.iter().find(|(conf, _)| Arc::ptr_eq(conf, &current)) {
            Some((_, e)) => e.clone(),
            None => {
                let e = Arc::new(current.entries());
                views.push((current, e.clone()));
                e
            }
        };
        let Some((_, v)) = snapshot.iter().find(|(k, _)| k == key) else {
            return fail(PROXY_NOT_FOUND, format_args!("no configuration key {key:?}"));
        };
        *out = proxy_str::from_bytes(v.as_bytes());
        PROXY_OK
    }
}

/// `*out` receives the flags in effect: an OR of `PROXY_CONF_*`.
#[no_mangle]
pub extern "C" fn proxy_conf_flags(conf: *const proxy_conf, out: *mut u32) -> proxy_result {
    ffi_panic_boundary! {
        let c = try_ref!(conf);
        let out = try_mut!(out);
        let a = &c.state.args;
        let daemon = a.daemon || c.state.current().daemon;
        *out = (daemon as u32 * PROXY_CONF_DAEMON) | (a.test as u32 * PROXY_CONF_TEST) | (a.upgrade as u32 * PROXY_CONF_UPGRADE);
        PROXY_OK
    }
}

/// Makes the upstream group `upstreams.<name>` of the file (its selection and backends) and puts
/// its id in `*out_group`, for `proxy_session_pick`. A reload of this configuration changes its
/// backends in place. Free it with `proxy_group_free`. NOT_FOUND when the file has no such group.
#[no_mangle]
pub extern "C" fn proxy_conf_group(
    conf: *const proxy_conf,
    name: *const c_char,
    out_group: *mut u64,
) -> proxy_result {
    ffi_panic_boundary! {
        let c = try_ref!(conf);
        let out = try_mut!(out_group);
        // SAFETY: NULL or a C string.
        let name = try_res!(unsafe { cstr(name) });
        let current = c.state.current();
        let Some(u) = current.upstreams.iter().find(|u| u.name == name) else {
            return fail(PROXY_NOT_FOUND, format_args!("the configuration has no upstreams.{name}"));
        };
        let group = UpstreamGroup::new(name, u.selection);
        if let Err(e) = group.set_backends(backends(u, &current)) {
            return fail(PROXY_CONFIG_INVALID, format_args!("upstreams.{name}: {e}"));
        }
        c.state.groups.lock().push((name.to_owned(), group.clone()));
        *out = super::upstream::register(group);
        PROXY_OK
    }
}

fn backends(u: &crate::config::UpstreamConf, conf: &FileConf) -> Vec<Backend> {
    let idle = conf.limits.pool_idle_timeout_ms;
    u.backends
        .iter()
        .filter_map(|(addr, weight)| Backend::new(addr, *weight).ok())
        .map(|mut b| {
            if idle > 0 {
                b.peer.options.idle_timeout = Some(std::time::Duration::from_millis(idle));
            }
            b
        })
        .collect()
}

/// Gives the server its configuration: grace period and final timeout, log level (a cap on the
/// log callback's `max_level`), pid file, user and group (applied when the server starts: pid
/// file written, then privileges dropped, after every endpoint was bound), readiness for `-d` and
/// systemd, and what SIGQUIT (upgrade) and SIGHUP (reload) do under `PROXY_RUN_SIGNALS`. Unknown
/// keys found in the file are sent to the log callback now, as warnings: set it first.
/// WRONG_STATE once the server started. The server keeps its own reference: `conf` may be freed.
#[no_mangle]
pub extern "C" fn proxy_server_set_conf(server: *mut proxy_server, conf: *const proxy_conf) -> proxy_result {
    ffi_panic_boundary! {
        let s = try_ref!(server);
        let c = try_ref!(conf);
        let current = c.state.current();
        try_res!(s.set_conf(c.state.clone(), &current));
        for w in c.state.warnings() {
            s.log(LogLevel::Warn, w);
        }
        PROXY_OK
    }
}

/// Applies the configuration to a service by its name (`services.<name>` in the file): threads,
/// work stealing, `h2_only`, limits and timeouts, `max_retries`, `upstream_keepalive_pool_size`,
/// and binds its listeners now (TCP, `unix:` paths, TLS with the named certificate and key),
/// taking sockets inherited by `-u` or systemd instead of binding where they match. A service the
/// file does not name gets the top-level settings and no listener. Call it before adding the
/// host's own endpoints and settings, which then override. INVALID_PARAMETER (TLS files) or IO
/// (bind) name the listener; the service keeps the listeners bound before the failure.
#[no_mangle]
pub extern "C" fn proxy_service_apply_conf(
    service: *mut proxy_service,
    conf: *const proxy_conf,
) -> proxy_result {
    ffi_panic_boundary! {
        let svc = try_mut!(service);
        let c = try_ref!(conf);
        let current = c.state.current();
        let name = svc.name().to_owned();
        let top;
        let sc = match current.service(&name) {
            Some(sc) => sc,
            None => {
                top = crate::config::ServiceConf {
                    name: name.clone(),
                    threads: current.threads,
                    work_stealing: current.work_stealing,
                    h2_only: false,
                    limits: current.limits.clone(),
                    listeners: Vec::new(),
                };
                &top
            }
        };
        svc.apply_settings(sc, &current);
        for (i, l) in sc.listeners.iter().enumerate() {
            let what = format!("services.{name}.listeners.{i} ({})", l.address);
            let stack = match &l.address {
                Address::Tcp(a) => TransportStack::bind_tcp(*a),
                Address::Unix(p) => TransportStack::bind_unix(p),
            };
            let stack = match stack {
                Ok(s) => s,
                Err(e) => return fail(PROXY_IO, format_args!("{what}: {e}")),
            };
            let stack = match &l.tls {
                None => stack,
                Some((cert, key)) => match crate::tls::TlsSettings::from_pem_files(cert, key).and_then(|t| t.build()) {
                    Ok(acceptor) => {
                        let key = format!("services.{name}.listeners.{i}");
                        c.state.certs.lock().push((key, acceptor.certificates().clone()));
                        stack.with_tls(acceptor)
                    }
                    Err(e) => return fail(PROXY_INVALID_PARAMETER, format_args!("{what}: {e}")),
                },
            };
            svc.push_stack(stack);
        }
        PROXY_OK
    }
}

/// Re-reads the configuration file the server was given and applies what can change in a running
/// server: upstream group backends (of groups made by `proxy_conf_group`), the log level and the
/// grace period. Anything else that changed (listeners, threads, limits, process settings)
/// refuses the whole reload with PROXY_RELOAD_REFUSED, and `proxy_last_error` names the keys and
/// says an upgrade is needed. PROXY_CONFIG_INVALID for a bad file (nothing applied), WRONG_STATE
/// without a configuration. Thread-safe; what SIGHUP does under `PROXY_RUN_SIGNALS`.
#[no_mangle]
pub extern "C" fn proxy_server_reload(server: *mut proxy_server) -> proxy_result {
    ffi_panic_boundary! {
        let s = try_ref!(server);
        match s.conf_state() {
            Some(state) => reload(s, &state),
            None => fail(PROXY_WRONG_STATE, "the server has no configuration (proxy_server_set_conf)"),
        }
    }
}

/// Reload: read, check, apply. Also what SIGHUP runs.
pub(crate) fn reload(s: &ServerCore, state: &ConfState) -> proxy_result {
    let current = state.current();
    let Some(path) = current.path.clone() else {
        return fail(PROXY_WRONG_STATE, "the configuration came from no file: nothing to re-read");
    };
    let (new, warnings) = match FileConf::load(&path, false) {
        Ok(v) => v,
        Err(e) => return fail(PROXY_CONFIG_INVALID, e),
    };
    let plan = match reload_plan(&current, &new) {
        Ok(p) => p,
        Err(e) => return fail(PROXY_RELOAD_REFUSED, e),
    };
    for w in &warnings {
        s.log(LogLevel::Warn, w);
    }
    try_res!(apply_reload(s, state, &plan, &new));
    *state.current.lock() = Arc::new(new);
    s.log(LogLevel::Info, &format!("reloaded {}", path.display()));
    PROXY_OK
}

/// Applies a checked reload to a running server: the one entry point for everything a reload
/// changes. Every certificate is read and checked before anything is swapped, so a bad file
/// leaves the server as it was; connections already open keep the certificate they started with.
pub(crate) fn apply_reload(
    s: &ServerCore,
    state: &ConfState,
    plan: &ReloadPlan,
    new: &FileConf,
) -> Result<(), proxy_result> {
    let mut swaps = Vec::new();
    for (key, cert, key_file) in &plan.certificates {
        let settings = crate::tls::TlsSettings::from_pem_files(cert, key_file)
            .map_err(|e| fail(PROXY_CONFIG_INVALID, format_args!("{key}.tls: {e}")))?;
        swaps.push((key, settings));
    }
    for (key, settings) in &swaps {
        for (_, certs) in state.certs.lock().iter().filter(|(k, _)| k == *key) {
            certs
                .replace(settings)
                .map_err(|e| fail(PROXY_CONFIG_INVALID, format_args!("{key}.tls: {e}")))?;
        }
    }
    for u in &plan.upstreams {
        for (name, group) in state.groups.lock().iter().filter(|(n, _)| *n == u.name) {
            group
                .set_backends(backends(u, new))
                .map_err(|e| fail(PROXY_CONFIG_INVALID, format_args!("upstreams.{name}: {e}")))?;
        }
    }
    s.set_conf_level(plan.log_level);
    Ok(())
}

/// Zero-downtime upgrade, the running process's half (what SIGQUIT does under
/// `PROXY_RUN_SIGNALS`): hands every listening socket to the new process waiting on
/// `upgrade_sock` (started with `-u`; tried every 100 ms, `upgrade_sock_connect_accept_max_retries`
/// times), then shuts down gracefully: no more accepts, GOAWAY on HTTP/2, in-flight requests get
/// the grace period. Blocks until the server has stopped, like `proxy_server_shutdown`; the
/// `proxy_server_run` waiting on it then returns. PROXY_UPGRADE_FAILED (the server keeps serving)
/// when no new process took the sockets; WRONG_STATE unless running with a configuration; BUSY
/// from inside a callback.
#[no_mangle]
pub extern "C" fn proxy_server_upgrade(server: *mut proxy_server) -> proxy_result {
    ffi_panic_boundary! {
        let s = try_ref!(server);
        if super::inside_callback() {
            return fail(PROXY_BUSY, "proxy_server_upgrade from inside a callback would wait for its own worker");
        }
        // The shared core, not the handle: a proxy_server_free on another thread may free it.
        let core = s.core.clone();
        core.upgrade()
    }
}

/// What a configured server holds from its start: the pid file, and the readiness message
/// still to send.
pub(crate) struct Started {
    pub(crate) pid_file: Option<daemon::PidFile>,
    pub(crate) notifier: Option<daemon::Notifier>,
}

/// When the server starts (every endpoint bound by then): the pid file, the readiness socket,
/// then the user and group; sockets inherited but not asked for are closed.
pub(crate) fn on_start(s: &ServerCore, state: &ConfState) -> Result<Started, proxy_result> {
    let c = state.current();
    // Pingora writes it in daemon mode; a file that names one gets it in the foreground too.
    let named = c.pid_file != FileConf::default().pid_file;
    let pid_file = if state.args.daemon || c.daemon || named {
        Some(daemon::PidFile::write(&c.pid_file).map_err(|e| fail(PROXY_DAEMON_FAILED, e))?)
    } else {
        None
    };
    let notifier = daemon::Notifier::connect()
        .map_err(|e| fail(PROXY_DAEMON_FAILED, format_args!("NOTIFY_SOCKET: {e}")))?;
    let own: Vec<&std::path::Path> = pid_file.as_ref().map(|_| c.pid_file.as_path()).into_iter().collect();
    daemon::drop_privileges(c.user.as_deref(), c.group.as_deref(), &own)
        .map_err(|e| fail(PROXY_DAEMON_FAILED, e))?;
    // Sockets of listeners the new configuration no longer has: closed, or they would queue
    // connections nobody accepts.
    let stale = crate::listener::inherited::close_unclaimed();
    if stale > 0 {
        s.log(LogLevel::Warn, &format!("closed {stale} inherited listening sockets no endpoint asked for"));
    }
    Ok(Started { pid_file, notifier })
}

/// The grace period of a configured server (SIGTERM, upgrade), as the file says now.
pub(crate) fn grace(state: &ConfState) -> std::time::Duration {
    state.current().grace_period()
}

/// The upgrade socket and its retries.
pub(crate) fn upgrade_target(state: &ConfState) -> (std::path::PathBuf, usize) {
    let c = state.current();
    (c.upgrade_sock.clone(), c.upgrade_sock_connect_accept_max_retries)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::tests::{EXPECTED, FULL};

    /// Every key of a file setting all of them comes back through `proxy_conf_get` as the file
    /// said (the file's `daemon: true` is set false here: it would start a background process).
    #[test]
    fn every_key_round_trips_through_the_c_api() {
        let path = std::env::temp_dir().join(format!("lp-conf-api-{}.yaml", std::process::id()));
        std::fs::write(&path, FULL.replace("daemon: true", "daemon: false")).unwrap();
        let args: Vec<std::ffi::CString> = ["prog", "-c", path.to_str().unwrap()]
            .iter()
            .map(|a| std::ffi::CString::new(*a).unwrap())
            .collect();
        let mut argv: Vec<*mut c_char> = args.iter().map(|a| a.as_ptr().cast_mut()).collect();
        argv.push(std::ptr::null_mut());
        let mut argc: c_int = 3;
        let mut conf: *mut proxy_conf = std::ptr::null_mut();
        assert_eq!(proxy_conf_from_args(&mut argc, argv.as_mut_ptr(), &mut conf), PROXY_OK);
        assert_eq!(argc, 1);
        for (key, want) in EXPECTED {
            let want = if *key == "daemon" { "false" } else { want };
            let k = std::ffi::CString::new(*key).unwrap();
            let mut out = proxy_str::from_bytes(b"");
            assert_eq!(proxy_conf_get(conf, k.as_ptr(), &mut out), PROXY_OK, "{key}");
            assert_eq!(out.bytes().unwrap(), want.as_bytes(), "{key}");
        }
        assert_eq!(proxy_conf_free(conf), PROXY_OK);
        std::fs::remove_file(&path).unwrap();
    }
}
