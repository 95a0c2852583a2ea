//! Observability from C: the metrics endpoint and host-defined metrics (`proxy_metric_*`,
//! `proxy_series_*`), a service's built-in metrics, access log, error log and request ids
//! (`proxy_service_set_observe`, `proxy_service_set_access_log`), log rotation
//! (`proxy_server_reopen_logs`), and the request id of a session.

use std::ffi::c_char;
use std::sync::Arc;

use parking_lot::Mutex;

use super::error::fail;
use super::result::*;
use super::server::{proxy_server, proxy_service, Shared, PROXY_LOG_ERROR};
use super::session::{proxy_session, put};
use super::types::*;
use crate::connector::Connector;
use crate::log::{AccessFormat, ErrorLog, LogTarget, LogWriter};
use crate::metrics::{Family, Kind, MetricError, MetricsEndpoint, Registry, Series, ServiceMetrics};
use crate::proxy::Observer;
use crate::server::{LogLevel, Logger};

/// `proxy_service_set_observe` flag: the built-in metrics of the service, exposed by the
/// server's metrics endpoint (`proxy_server_add_metrics`).
pub const PROXY_OBSERVE_METRICS: u32 = 1;
/// `proxy_service_set_observe` flag: every request gets an `X-Request-Id` (the client's when it
/// is 1-128 characters of `[A-Za-z0-9-_.:+/=@]`, else a new 32-hex-digit one) and a W3C
/// `traceparent` for the upstream (the client's trace id with a new span id, or a new trace).
/// Callbacks see both in the request headers and `proxy_session_request_id`; a proxy-made error
/// response carries the id.
pub const PROXY_OBSERVE_REQUEST_IDS: u32 = 2;
/// `proxy_service_set_observe` flag: every 5xx the proxy makes itself (502, 504, 500 from a
/// failed callback) goes to the server's log callback with its cause, at most 100 a second.
pub const PROXY_OBSERVE_ERROR_LOG: u32 = 4;

/// `proxy_metric_new` kind: a counter (only goes up; `_total` is appended to a name without it).
pub const PROXY_METRIC_COUNTER: u32 = 0;
/// `proxy_metric_new` kind: a gauge.
pub const PROXY_METRIC_GAUGE: u32 = 1;
/// `proxy_metric_new` kind: a histogram.
pub const PROXY_METRIC_HISTOGRAM: u32 = 2;

/// What the server keeps for observability.
#[derive(Default)]
pub(crate) struct ServerObserve {
    metrics: Arc<Registry>,
    writers: Mutex<Vec<Arc<LogWriter>>>,
    /// The server log's file and the most detailed level it takes (`proxy_server_set_log_file`).
    log_file: Mutex<Option<(Arc<LogWriter>, u32)>>,
    /// The handles given to the host, freed with the server. Boxed: the host holds pointers to
    /// them, which the vector's growth must not move.
    #[allow(clippy::vec_box)]
    handles: Mutex<Vec<Box<proxy_metric>>>,
}

impl ServerObserve {
    /// Queues a server log message for the log file, if there is one and it takes `level`.
    pub(crate) fn log_to_file(&self, level: u32, msg: &str) {
        let file = self.log_file.lock();
        let Some((w, _)) = file.as_ref().filter(|(_, max)| level <= *max) else { return };
        let name = match level {
            1 => "error",
            2 => "warn",
            3 => "info",
            _ => "debug",
        };
        let mut line = String::with_capacity(40 + msg.len());
        crate::log::write_iso(&mut line, std::time::SystemTime::now());
        line.push_str(&format!(" [{name}] {msg}"));
        w.text(line);
    }

    /// Waits until every access line queued so far is written.
    pub(crate) fn flush(&self) {
        for w in self.writers.lock().iter() {
            w.flush();
        }
    }

    /// Reopens every log file; a failure goes to the log callback and leaves that log writing
    /// to its old file. `PROXY_IO` if any failed.
    pub(crate) fn reopen(&self, shared: &Shared) -> proxy_result {
        let mut r = PROXY_OK;
        for w in self.writers.lock().iter() {
            if let Err(e) = w.reopen() {
                shared.log(PROXY_LOG_ERROR, &format!("reopening {w:?}: {e}"));
                r = PROXY_IO;
            }
        }
        r
    }
}

/// A service's observability settings until it is added to its server.
#[derive(Default)]
pub(crate) struct ServiceObserve {
    flags: u32,
    access: Option<(Option<String>, AccessFormat)>,
    /// The host's replacement of proxy-made error responses (`error_page.rs`).
    pub(crate) error_response: Option<super::error_page::ErrorResponder>,
}

impl ServiceObserve {
    /// The service's [`Observer`], `None` when nothing is on.
    pub(crate) fn build(
        &self,
        name: &str,
        shared: &Arc<Shared>,
        connector: Connector,
    ) -> Result<Option<Arc<Observer>>, proxy_result> {
        if self.flags == 0 && self.access.is_none() {
            return Ok(None);
        }
        let sink = shared.clone();
        let logger = Logger::new(move |level, msg| sink.log(level as u32, msg));
        let metrics = (self.flags & PROXY_OBSERVE_METRICS != 0).then(|| {
            let m = ServiceMetrics::new(name, Some(connector));
            shared.observe.metrics.register(m.clone());
            m
        });
        let access_log = match &self.access {
            None => None,
            Some((path, format)) => {
                let target = match path {
                    Some(p) => LogTarget::File(p.into()),
                    None => LogTarget::Logger(logger.clone(), LogLevel::Info),
                };
                let w = LogWriter::start(target, format.clone())
                    .map_err(|e| fail(PROXY_IO, format_args!("service {name:?}: access log: {e}")))?;
                shared.observe.writers.lock().push(w.clone());
                Some(w)
            }
        };
        Ok(Some(Arc::new(Observer {
            service: name.into(),
            metrics,
            access_log,
            error_log: (self.flags & PROXY_OBSERVE_ERROR_LOG != 0)
                .then(|| Arc::new(ErrorLog::new(logger, 100))),
            request_ids: self.flags & PROXY_OBSERVE_REQUEST_IDS != 0,
        })))
    }
}

/// Turns on the service's built-in metrics, request ids and error log: an OR of
/// `PROXY_OBSERVE_*` flags (0: all off, the default, which costs nothing per request).
/// INVALID_PARAMETER for an unknown flag. Before `proxy_server_add_service`, from one thread.
#[no_mangle]
pub extern "C" fn proxy_service_set_observe(service: *mut proxy_service, flags: u32) -> proxy_result {
    ffi_panic_boundary! {
        let svc = try_mut!(service);
        let known = PROXY_OBSERVE_METRICS | PROXY_OBSERVE_REQUEST_IDS | PROXY_OBSERVE_ERROR_LOG;
        if flags & !known != 0 {
            return fail(PROXY_INVALID_PARAMETER, format_args!("unknown observe flags {:#x}", flags & !known));
        }
        svc.observe.flags = flags;
        PROXY_OK
    }
}

/// Writes one access log line per request of the service, to the file `path` (appended,
/// created if missing; opened when the service is added to its server, PROXY_IO then if it
/// cannot be) or, with `path` NULL, to the server's log callback at `PROXY_LOG_INFO`. `format` is
/// `"combined"` (nginx's), `"json"` (one object per line, every variable, null when unknown) or a
/// template with `$name` / `${name}` variables: time, time_iso, service, remote_addr, method,
/// target, protocol, request, status, bytes_in, bytes_out, duration, upstream_response_time,
/// upstream_connect_time, upstream, upstream_status, tries, error, request_id, tls_version,
/// tls_cipher, sni, referer, user_agent, cache (`-` when unknown; `$$` is a `$`). Lines are
/// formatted and written by a thread of their own; `proxy_server_reopen_logs` (or SIGUSR1 under
/// `PROXY_RUN_SIGNALS`) reopens the file after a rename. PROXY_LOG_FORMAT_INVALID for an unknown
/// variable (the cause names it). Before `proxy_server_add_service`, from one thread.
#[no_mangle]
pub extern "C" fn proxy_service_set_access_log(
    service: *mut proxy_service,
    path: *const c_char,
    format: *const c_char,
) -> proxy_result {
    ffi_panic_boundary! {
        let svc = try_mut!(service);
        // SAFETY: NULL or a C string, as documented.
        let spec = try_res!(unsafe { cstr(format) });
        let path = if path.is_null() {
            None
        } else {
            // SAFETY: a C string, as documented.
            Some(try_res!(unsafe { cstr(path) }).to_string())
        };
        let format = match AccessFormat::parse(spec) {
            Ok(f) => f,
            Err(e) => return fail(PROXY_LOG_FORMAT_INVALID, e),
        };
        svc.observe.access = Some((path, format));
        PROXY_OK
    }
}

/// Also writes the server's log messages up to `max_level` (a `PROXY_LOG_*`) to the file `path`
/// (appended, created if missing), one line each: `2026-12-07T21:30:00.123Z [warn] message`, by
/// the log writer thread; `proxy_server_reopen_logs` reopens it too. NULL `path` stops writing to
/// a file. Independent of the log callback (`proxy_server_set_log`). PROXY_IO if the file cannot
/// be opened.
#[no_mangle]
pub extern "C" fn proxy_server_set_log_file(
    server: *mut proxy_server,
    path: *const c_char,
    max_level: u32,
) -> proxy_result {
    ffi_panic_boundary! {
        let s = try_ref!(server);
        let o = &s.shared.observe;
        if path.is_null() {
            *o.log_file.lock() = None;
            return PROXY_OK;
        }
        // SAFETY: a C string, as documented.
        let path = try_res!(unsafe { cstr(path) });
        let w = match LogWriter::start(LogTarget::File(path.into()), AccessFormat::combined()) {
            Ok(w) => w,
            Err(e) => return fail(PROXY_IO, format_args!("log file {path}: {e}")),
        };
        o.writers.lock().push(w.clone());
        *o.log_file.lock() = Some((w, max_level));
        PROXY_OK
    }
}

/// Reopens every access log file of the server's services (log rotation: rename the files, then
/// call this). Lines of requests that ended before the call are in the old files, later ones in
/// the new; none is lost. Blocks until done; any thread but a callback's. PROXY_IO if a file
/// could not be reopened (that log keeps its old file; the cause goes to the log callback).
#[no_mangle]
pub extern "C" fn proxy_server_reopen_logs(server: *mut proxy_server) -> proxy_result {
    ffi_panic_boundary! {
        let s = try_ref!(server);
        if super::inside_callback() {
            return fail(PROXY_BUSY, "proxy_server_reopen_logs from inside a callback would wait on the log writer");
        }
        s.shared.observe.reopen(&s.shared)
    }
}

/// Adds the metrics endpoint: a service of its own, with one thread, answering `GET /metrics` on
/// `addr` (`"127.0.0.1:9100"`; port 0 picks one) with the Prometheus text format: the built-in
/// figures of every service with `PROXY_OBSERVE_METRICS` and every `proxy_metric_new` family.
/// Bound now: `*out_port` (may be NULL) receives the port. PROXY_IO if it cannot bind;
/// WRONG_STATE once the server was started.
#[no_mangle]
pub extern "C" fn proxy_server_add_metrics(
    server: *mut proxy_server,
    addr: *const c_char,
    out_port: *mut u16,
) -> proxy_result {
    ffi_panic_boundary! {
        let s = try_ref!(server);
        // SAFETY: NULL or a C string, as documented.
        let addr = try_res!(unsafe { cstr(addr) });
        let (svc, local) = match MetricsEndpoint::bind(addr, s.shared.observe.metrics.clone()) {
            Ok(r) => r,
            Err(e) => return fail(PROXY_IO, format_args!("metrics endpoint {addr}: {e}")),
        };
        let r = s.add_before_start(svc);
        if r == PROXY_OK {
            // SAFETY: NULL or a pointer to a uint16_t the caller owns.
            if let Some(out) = unsafe { out_port.as_mut() } {
                *out = local.port();
            }
        }
        r
    }
}

/// A metric family the host defined (`proxy_metric_new`). Owned by its server and valid until
/// `proxy_server_free`; never free it. Thread-safe.
///
/// Methods: proxy_metric_new, proxy_metric_series.
pub struct proxy_metric {
    family: Arc<Family>,
    /// Boxed, like the server's metric handles: the host holds pointers to them.
    #[allow(clippy::vec_box)]
    series: Mutex<Vec<Box<proxy_series>>>,
}

/// One labelled series of a `proxy_metric` (`proxy_metric_series`). Owned by its server and
/// valid until `proxy_server_free`; never free it. Updates take no lock: look a series up once
/// and keep the pointer. Thread-safe.
///
/// Methods: proxy_series_add, proxy_series_set, proxy_series_observe.
pub struct proxy_series {
    series: Arc<Series>,
}

fn floats<'a>(p: *const f64, n: usize) -> Result<&'a [f64], proxy_result> {
    if n == 0 {
        return Ok(&[]);
    }
    if p.is_null() {
        return Err(PROXY_NULL_PARAMETER);
    }
    // SAFETY: the caller passes `n` readable doubles, as documented.
    Ok(unsafe { std::slice::from_raw_parts(p, n) })
}

fn metric_error(e: MetricError) -> proxy_result {
    match e {
        MetricError::Invalid(m) => fail(PROXY_METRIC_INVALID, m),
        MetricError::Conflict(m) => fail(PROXY_METRIC_CONFLICT, m),
    }
}

fn texts<'a>(items: *const proxy_str, n: usize) -> Result<Vec<&'a str>, proxy_result> {
    if n == 0 {
        return Ok(Vec::new());
    }
    if items.is_null() {
        return Err(PROXY_NULL_PARAMETER);
    }
    // SAFETY: the caller passes `n` readable `proxy_str`s, as documented.
    let items = unsafe { std::slice::from_raw_parts(items, n) };
    items
        .iter()
        .map(|s| {
            let b = s.bytes()?;
            std::str::from_utf8(b).map_err(|_| fail(PROXY_INVALID_PARAMETER, "a label is not UTF-8"))
        })
        .collect()
}

/// Defines a metric family on the server's metrics endpoint: `kind` is a `PROXY_METRIC_*`;
/// `name` a Prometheus metric name not starting with `libproxy_` (a counter's gets `_total`
/// appended when missing); `help` its description; `labels` its `n_labels` label names;
/// `buckets` a histogram's `n_buckets` increasing upper bounds (0: Prometheus' defaults, 5 ms to
/// 10 s), none for other kinds. Defining the same family again returns the same handle.
/// `*out` receives a handle the server owns (valid until `proxy_server_free`). Any thread, any
/// time (also from a callback). PROXY_METRIC_INVALID for a bad name, label or bucket;
/// PROXY_METRIC_CONFLICT for a name defined with another kind, labels or buckets.
#[no_mangle]
pub extern "C" fn proxy_metric_new(
    server: *mut proxy_server,
    kind: u32,
    name: *const c_char,
    help: *const c_char,
    labels: *const proxy_str,
    n_labels: usize,
    buckets: *const f64,
    n_buckets: usize,
    out: *mut *mut proxy_metric,
) -> proxy_result {
    ffi_panic_boundary! {
        let s = try_ref!(server);
        let out = try_mut!(out);
        // SAFETY: NULL or C strings, as documented.
        let (name, help) = (try_res!(unsafe { cstr(name) }), try_res!(unsafe { cstr(help) }));
        let kind = match kind {
            PROXY_METRIC_COUNTER => Kind::Counter,
            PROXY_METRIC_GAUGE => Kind::Gauge,
            PROXY_METRIC_HISTOGRAM => Kind::Histogram,
            _ => return fail(PROXY_INVALID_PARAMETER, format_args!("unknown metric kind {kind}")),
        };
        let labels = try_res!(texts(labels, n_labels));
        let buckets = try_res!(floats(buckets, n_buckets));
        let family = match s.shared.observe.metrics.family(kind, name, help, &labels, buckets) {
            Ok(f) => f,
            Err(e) => return metric_error(e),
        };
        let mut handles = s.shared.observe.handles.lock();
        let h = match handles.iter_mut().find(|h| Arc::ptr_eq(&h.family, &family)) {
            Some(h) => h,
            None => {
                handles.push(Box::new(proxy_metric { family, series: Mutex::default() }));
                handles.last_mut().expect("just pushed")
            }
        };
        *out = &mut **h;
        PROXY_OK
    }
}

/// The series of `metric` for `values`: one label value per label name, in order. `*out`
/// receives a handle the server owns (valid until `proxy_server_free`); the same values give the
/// same handle. Takes the family's lock: call it once per label set and keep the handle.
/// PROXY_METRIC_INVALID for a wrong number of values.
#[no_mangle]
pub extern "C" fn proxy_metric_series(
    metric: *mut proxy_metric,
    values: *const proxy_str,
    n_values: usize,
    out: *mut *mut proxy_series,
) -> proxy_result {
    ffi_panic_boundary! {
        let m = try_ref!(metric);
        let out = try_mut!(out);
        let values = try_res!(texts(values, n_values));
        let series = match m.family.with(&values) {
            Ok(s) => s,
            Err(e) => return metric_error(e),
        };
        let mut handles = m.series.lock();
        let h = match handles.iter_mut().find(|h| Arc::ptr_eq(&h.series, &series)) {
            Some(h) => h,
            None => {
                handles.push(Box::new(proxy_series { series }));
                handles.last_mut().expect("just pushed")
            }
        };
        *out = &mut **h;
        PROXY_OK
    }
}

fn update(r: Result<(), MetricError>) -> proxy_result {
    match r {
        Ok(()) => PROXY_OK,
        Err(e) => metric_error(e),
    }
}

/// Adds `value` to a counter (not negative) or a gauge: one atomic operation, no lock. Any
/// thread. PROXY_METRIC_INVALID on a histogram or for a negative counter increment.
#[no_mangle]
pub extern "C" fn proxy_series_add(series: *const proxy_series, value: f64) -> proxy_result {
    ffi_panic_boundary! { update(try_ref!(series).series.add(value)) }
}

/// Sets a gauge to `value`. Any thread. PROXY_METRIC_INVALID on another kind.
#[no_mangle]
pub extern "C" fn proxy_series_set(series: *const proxy_series, value: f64) -> proxy_result {
    ffi_panic_boundary! { update(try_ref!(series).series.set(value)) }
}

/// Records `value` in a histogram. Any thread. PROXY_METRIC_INVALID on another kind or NaN.
#[no_mangle]
pub extern "C" fn proxy_series_observe(series: *const proxy_series, value: f64) -> proxy_result {
    ffi_panic_boundary! { update(try_ref!(series).series.observe(value)) }
}

/// The request's id (`X-Request-Id`), on a service with `PROXY_OBSERVE_REQUEST_IDS`; NOT_FOUND
/// otherwise. The view is valid until the callback returns. Any phase but `request_end`.
#[no_mangle]
pub extern "C" fn proxy_session_request_id(s: *const proxy_session, out: *mut proxy_str) -> proxy_result {
    ffi_panic_boundary! {
        let s = try_ref!(s);
        let out = try_mut!(out);
        put(out, s.with(|a| match &a.session()?.request_id {
            Some(id) => Ok(proxy_str::from_bytes(id.as_bytes())),
            None => Err(PROXY_NOT_FOUND),
        }))
    }
}
