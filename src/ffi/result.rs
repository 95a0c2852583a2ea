//! Stable result codes, the action numbers callbacks return, and the version / feature queries.

use std::ffi::c_char;

/// A result code returned by every fallible function. `PROXY_OK` (0) is success; errors start at
/// 7000 so they never look like an errno. Numbers never change; retired ones stay reserved.
pub type proxy_result = u32;

/// Success.
pub const PROXY_OK: proxy_result = 0;
/// A required pointer argument was NULL.
pub const PROXY_NULL_PARAMETER: proxy_result = 7000;
/// An argument was invalid (bad UTF-8, bad address, out-of-range number or constant).
pub const PROXY_INVALID_PARAMETER: proxy_result = 7001;
/// A panic inside libproxy was caught; the operation did not complete.
pub const PROXY_PANIC: proxy_result = 7002;
/// An operating system error (bind, thread creation, ...).
pub const PROXY_IO: proxy_result = 7003;
/// The accessor makes no sense in the current phase (e.g. upstream request headers in
/// `request_filter`), or the session is not inside a callback or pending.
pub const PROXY_WRONG_PHASE: proxy_result = 7004;
/// The session has ended (or its pending deadline passed): nothing to resume.
pub const PROXY_GONE: proxy_result = 7005;
/// Already done once: the session was already resumed, or already answered with
/// `proxy_session_respond`.
pub const PROXY_ALREADY: proxy_result = 7006;
/// A header name or value is not valid on the wire (CR, LF, NUL, bad token), or it is a framing
/// header the proxy manages itself (Content-Length, Transfer-Encoding). Nothing was changed.
pub const PROXY_HEADER_INVALID: proxy_result = 7007;
/// The header, query or error asked for does not exist.
pub const PROXY_NOT_FOUND: proxy_result = 7008;
/// Refused: called from inside a callback (e.g. `proxy_server_free`), which would deadlock.
pub const PROXY_BUSY: proxy_result = 7009;
/// The output array is too small; the needed count was written to `*out_n`.
pub const PROXY_TOO_SMALL: proxy_result = 7010;
/// The object is in the wrong state (e.g. a server started twice, a service added after start).
pub const PROXY_WRONG_STATE: proxy_result = 7011;
/// The feature is not available in this build.
pub const PROXY_UNSUPPORTED: proxy_result = 7012;
/// TLS configuration refused (missing or bad certificate / key / CA file, a key that does not match
/// its certificate, an SNI name the certificate does not cover, settings without a certificate).
/// The reason is in `proxy_tls_settings_last_error`. (ABI 0.3)
pub const PROXY_TLS_INVALID: proxy_result = 7013;
/// No backend of the upstream group can take the request: every one is at its in-flight cap,
/// was tried already, or the group is empty. (ABI 0.7)
pub const PROXY_UNAVAILABLE: proxy_result = 7014;
/// The configuration file or command line is invalid; `proxy_last_error` says
/// `file:line:col: key: what was expected`.
pub const PROXY_CONFIG_INVALID: proxy_result = 7015;
/// No new process took the listening sockets (upgrade), or none were handed over (`-u`).
pub const PROXY_UPGRADE_FAILED: proxy_result = 7016;
/// A reload would change what only an upgrade can (listeners, threads, limits, process
/// settings); nothing was applied.
pub const PROXY_RELOAD_REFUSED: proxy_result = 7017;
/// Daemon mode or process settings failed: starting the background process, detaching, the pid
/// file, switching user or group.
pub const PROXY_DAEMON_FAILED: proxy_result = 7018;
// Reserved for operations: 7019.
/// A metric name, label, label count, bucket list or update that Prometheus (or the metric's
/// kind) does not allow; the cause says which.
pub const PROXY_METRIC_INVALID: proxy_result = 7020;
/// A metric name already defined with another kind, labels or buckets.
pub const PROXY_METRIC_CONFLICT: proxy_result = 7021;
/// An access log format with an unknown variable or an unclosed `${`; the cause says which.
pub const PROXY_LOG_FORMAT_INVALID: proxy_result = 7022;

/// What a phase callback tells the proxy to do next. Returned as `int32_t`; any value other than
/// the four below counts as `PROXY_ERROR` (fail closed). 0 is deliberately not an action: a host
/// language that turns an exception into 0 must not let the request through.
pub type proxy_action = i32;

/// Go on with the next phase.
pub const PROXY_CONTINUE: proxy_action = 1;
/// The host answered with `proxy_session_respond` (in `early_request_filter`, `request_filter`,
/// `fail_to_proxy`); the upstream is not contacted.
pub const PROXY_RESPONDED: proxy_action = 2;
/// The host decides later and calls `proxy_session_resume` from any thread.
pub const PROXY_PENDING: proxy_action = 3;
/// Fail the request: 500 if no response head was sent yet, else the connection is cut.
pub const PROXY_ERROR: proxy_action = 4;

/// ABI major version: a host built against another major must not use this library.
///
/// The one source of the ABI version: `build.rs` derives the SONAME (`libproxy-rt.so.<major>`)
/// from it and `tests/abi_version.rs` checks the Python and Go bindings against it.
pub const PROXY_ABI_VERSION_MAJOR: u32 = 0;
/// ABI minor version: grows when functions or struct fields are appended (and, while the major is
/// 0, when signatures are tidied, as in 0.4 and 0.5: `proxy_session_body` hands out a
/// `proxy_bytes`, the `uint8_t` bytes `proxy_session_set_body` takes, with the layout of the
/// `proxy_str` it had, so 0.4 hosts keep working).
pub const PROXY_ABI_VERSION_MINOR: u32 = 8;

/// Feature bit: Unix domain socket listeners and peers.
pub const PROXY_FEATURE_UDS: u64 = 1;
/// Feature bit: `PROXY_PENDING` and `proxy_session_resume`.
pub const PROXY_FEATURE_PENDING: u64 = 2;
/// Feature bit: body filter callbacks.
pub const PROXY_FEATURE_BODY_FILTERS: u64 = 4;
/// Feature bit: TLS endpoints (`proxy_tls_settings`, `proxy_service_add_tls`) and TLS peers
/// (`PROXY_PEER_TLS` with the ABI 0.3 `proxy_peer` fields).
pub const PROXY_FEATURE_TLS: u64 = 8;
/// Feature bit: HTTP/2 downstream (ALPN `h2` on TLS endpoints, h2c by prior knowledge on
/// plaintext ones) and upstream (`proxy_peer.alpn`).
pub const PROXY_FEATURE_H2: u64 = 16;
/// Feature bit: `proxy_service_set_thread_hooks` and `proxy_session_set_uri` (ABI 0.2).
pub const PROXY_FEATURE_THREAD_HOOKS: u64 = 32;
/// Feature bit: response compression and upstream decompression (`proxy_service_set_compression`,
/// `proxy_session_set_compression`; ABI 0.6).
pub const PROXY_FEATURE_COMPRESSION: u64 = 64;
/// Upstream groups: `proxy_group_*`, `proxy_session_pick`, health checks, discovery and host
/// background services (`proxy_server_add_*`). (ABI 0.7)
pub const PROXY_FEATURE_UPSTREAM_GROUPS: u64 = 128;
/// Feature bit: the HTTP cache (`proxy_cache_*`, `proxy_service_set_cache`, the cache callbacks). (ABI 0.7)
pub const PROXY_FEATURE_CACHE: u64 = 256;
/// Feature bit: TLS facts in hooks (`proxy_session_tls`, `proxy_session_tls_client_not_after`). (ABI 0.8)
pub const PROXY_FEATURE_TLS_FACTS: u64 = 32768;
/// Feature bit: certificates replaced at runtime (`proxy_service_tls_certs`,
/// `proxy_tls_certs_replace`) and the certificate callback (`proxy_tls_settings_set_cert_callback`). (ABI 0.8)
pub const PROXY_FEATURE_CERT_RELOAD: u64 = 65536;
/// Feature bit: the configuration file and command line (`proxy_conf_*`,
/// `proxy_server_set_conf`, `proxy_service_apply_conf`, `proxy_server_reload`) and daemon mode. (ABI 0.8)
pub const PROXY_FEATURE_CONFIG: u64 = 512;
/// Feature bit: zero-downtime upgrade by socket handover (`-u`, `proxy_server_upgrade`, SIGQUIT)
/// and sockets from systemd. (ABI 0.8)
pub const PROXY_FEATURE_UPGRADE: u64 = 1024;
/// Feature bit: TCP (L4) proxy services (`proxy_service_set_l4_callbacks`). (ABI 0.8)
pub const PROXY_FEATURE_L4: u64 = 8192;
/// Feature bit: PROXY protocol v1/v2 on endpoints and towards peers. (ABI 0.8)
pub const PROXY_FEATURE_PROXY_PROTOCOL: u64 = 16384;
/// Feature bit: the metrics endpoint, the built-in service metrics and host-defined metrics
/// (`proxy_server_add_metrics`, `proxy_metric_*`, `proxy_series_*`, `PROXY_OBSERVE_METRICS`). (ABI 0.8)
pub const PROXY_FEATURE_METRICS: u64 = 2048;
/// Feature bit: access log, error log, request ids and log reopening
/// (`proxy_service_set_access_log`, `proxy_service_set_observe`, `proxy_server_reopen_logs`,
/// `proxy_session_request_id`). (ABI 0.8)
pub const PROXY_FEATURE_ACCESS_LOG: u64 = 4096;

static VERSION: &str = concat!("libproxy/", env!("CARGO_PKG_VERSION"), "\0");

/// The library version as a static NUL-terminated string, e.g. "libproxy/0.1.0". Never free it.
#[no_mangle]
pub extern "C" fn proxy_version() -> *const c_char {
    ffi_panic_boundary! { VERSION.as_ptr().cast() }
}

/// The ABI version: `PROXY_ABI_VERSION_MAJOR << 16 | PROXY_ABI_VERSION_MINOR`. Compare the major
/// with the header's `PROXY_ABI_VERSION_MAJOR` at start-up and refuse to run on a mismatch.
#[no_mangle]
pub extern "C" fn proxy_abi_version() -> u32 {
    ffi_panic_boundary! { value: (PROXY_ABI_VERSION_MAJOR << 16) | PROXY_ABI_VERSION_MINOR }
}

/// The features of this build: an OR of `PROXY_FEATURE_*` bits.
#[no_mangle]
pub extern "C" fn proxy_features() -> u64 {
    ffi_panic_boundary! {
        PROXY_FEATURE_UDS
            | PROXY_FEATURE_PENDING
            | PROXY_FEATURE_BODY_FILTERS
            | PROXY_FEATURE_TLS
            | PROXY_FEATURE_H2
            | PROXY_FEATURE_THREAD_HOOKS
            | PROXY_FEATURE_COMPRESSION
            | PROXY_FEATURE_UPSTREAM_GROUPS
            | PROXY_FEATURE_CACHE
            | PROXY_FEATURE_TLS_FACTS
            | PROXY_FEATURE_CERT_RELOAD
            | PROXY_FEATURE_CONFIG
            | PROXY_FEATURE_UPGRADE
            | PROXY_FEATURE_L4
            | PROXY_FEATURE_PROXY_PROTOCOL
            | PROXY_FEATURE_METRICS
            | PROXY_FEATURE_ACCESS_LOG
    }
}

/// The description of a result code, with its NUL (C) — see [`message`].
fn message_nul(code: proxy_result) -> &'static str {
    match code {
        PROXY_OK => "ok\0",
        PROXY_NULL_PARAMETER => "a required pointer argument was NULL\0",
        PROXY_INVALID_PARAMETER => "invalid argument\0",
        PROXY_PANIC => "internal panic caught\0",
        PROXY_IO => "operating system error\0",
        PROXY_WRONG_PHASE => "not available in this phase\0",
        PROXY_GONE => "the session has ended\0",
        PROXY_ALREADY => "already done (the session was already resumed or answered)\0",
        PROXY_HEADER_INVALID => "invalid or forbidden header name or value\0",
        PROXY_NOT_FOUND => "not found\0",
        PROXY_BUSY => "refused from inside a callback\0",
        PROXY_TOO_SMALL => "output array too small\0",
        PROXY_WRONG_STATE => "object in the wrong state for this call\0",
        PROXY_UNSUPPORTED => "not supported by this build\0",
        PROXY_TLS_INVALID => "invalid TLS configuration (see proxy_tls_settings_last_error)\0",
        PROXY_UNAVAILABLE => "no backend of the group can take the request\0",
        PROXY_CONFIG_INVALID => "invalid configuration (see proxy_last_error: file, line, key)\0",
        PROXY_UPGRADE_FAILED => "the listening sockets could not be handed over\0",
        PROXY_RELOAD_REFUSED => "a reload cannot change this: an upgrade is needed\0",
        PROXY_DAEMON_FAILED => "daemon mode or process settings failed\0",
        PROXY_METRIC_INVALID => "invalid metric name, label, bucket or update\0",
        PROXY_METRIC_CONFLICT => "metric already defined with another kind, labels or buckets\0",
        PROXY_LOG_FORMAT_INVALID => "invalid access log format\0",
        _ => "unknown result\0",
    }
}

/// The description of a result code, as `proxy_result_message` gives it.
pub(crate) fn message(code: proxy_result) -> &'static str {
    message_nul(code).trim_end_matches('\0')
}

/// A static NUL-terminated description of a result code ("unknown result" for an unknown one).
/// Never free it. It names the kind of error only; `proxy_last_error` has the cause.
#[no_mangle]
pub extern "C" fn proxy_result_message(code: proxy_result) -> *const c_char {
    ffi_panic_boundary! { message_nul(code).as_ptr().cast() }
}
