//! A service's timeouts, limits, options and upgrade protocols (`proxy_service_set_timeout`,
//! `_set_limit`, `_set_option`, `_allow_upgrade`, `_deny_upgrade`): the settings a host tunes one
//! by one before adding the service, kept apart from building and running it (`server.rs`).

use std::ffi::c_char;
use std::time::Duration;

use super::error::fail;
use super::result::*;
use super::server::proxy_service;
use super::types::*;
use crate::app::UnderscoreFields;

/// `proxy_service_set_timeout`: whole request head must arrive within (default 10 s).
pub const PROXY_TIMEOUT_HEADER: u32 = 1;
/// Idle keep-alive connection waits this long for the next request (default 60 s).
pub const PROXY_TIMEOUT_KEEPALIVE: u32 = 2;
/// Longest pause between two reads of a request body (default 30 s).
pub const PROXY_TIMEOUT_BODY_IDLE: u32 = 3;
/// Longest time one write to the client may take (default 30 s).
pub const PROXY_TIMEOUT_WRITE: u32 = 4;
/// How long a session may stay PENDING before it fails with 500 (default 30 s).
pub const PROXY_TIMEOUT_PENDING: u32 = 5;
/// Longest time a whole request body may take from the start of the request; past it the request
/// fails with 408 and its upstream connection is closed (default: no limit).
pub const PROXY_TIMEOUT_BODY_TOTAL: u32 = 6;
/// How long a request body may run before `PROXY_LIMIT_BODY_MIN_RATE` applies (default 5 s).
pub const PROXY_TIMEOUT_BODY_RATE_GRACE: u32 = 7;

/// Sets timeout `which` (`PROXY_TIMEOUT_*`) to `ms` milliseconds (must be > 0).
#[no_mangle]
pub extern "C" fn proxy_service_set_timeout(
    service: *mut proxy_service,
    which: u32,
    ms: u32,
) -> proxy_result {
    ffi_panic_boundary! {
        let svc = try_mut!(service);
        if ms == 0 {
            return fail(PROXY_INVALID_PARAMETER, format_args!("timeout {which}: 0 ms (must be > 0)"));
        }
        let d = Duration::from_millis(ms as u64);
        match which {
            PROXY_TIMEOUT_HEADER => svc.opts.header_timeout = d,
            PROXY_TIMEOUT_KEEPALIVE => svc.opts.keepalive_timeout = d,
            PROXY_TIMEOUT_BODY_IDLE => svc.opts.body_idle_timeout = d,
            PROXY_TIMEOUT_WRITE => svc.opts.write_timeout = d,
            PROXY_TIMEOUT_PENDING => svc.pending_timeout = d,
            PROXY_TIMEOUT_BODY_TOTAL => svc.opts.body_deadline = Some(d),
            PROXY_TIMEOUT_BODY_RATE_GRACE => svc.opts.body_rate_grace = d,
            _ => return fail(PROXY_INVALID_PARAMETER, format_args!("unknown timeout {which} (a PROXY_TIMEOUT_*)")),
        }
        PROXY_OK
    }
}

/// `proxy_service_set_limit`: largest request head in bytes (default 32 KiB).
pub const PROXY_LIMIT_MAX_HEADER_BYTES: u32 = 1;
/// Most request header fields (default 100).
pub const PROXY_LIMIT_MAX_HEADERS: u32 = 2;
/// Longest request target (default 8 KiB).
pub const PROXY_LIMIT_MAX_URI_LEN: u32 = 3;
/// Most attempts beyond the first for one request (default 3; 0 allowed).
pub const PROXY_LIMIT_MAX_RETRIES: u32 = 4;
/// Request body bytes kept to replay on a retry (default 64 KiB; 0 allowed).
pub const PROXY_LIMIT_RETRY_BUFFER: u32 = 5;
/// Most unread request body bytes drained to keep a connection after an early answer (default 64 KiB).
pub const PROXY_LIMIT_DRAIN: u32 = 6;
/// Slowest request body accepted, in bytes per second averaged since the start of the request,
/// after `PROXY_TIMEOUT_BODY_RATE_GRACE` (408 below it; default and 0: no minimum).
pub const PROXY_LIMIT_BODY_MIN_RATE: u32 = 7;
/// Read whole request bodies of up to this many bytes before `upstream_peer` runs and before any
/// upstream connection exists, so a slow client never holds one; longer bodies get 413. The body
/// goes upstream with a Content-Length. Default and 0: bodies stream upstream as they arrive.
pub const PROXY_LIMIT_REQUEST_BUFFER: u32 = 8;
/// Most connections open at once across the service's endpoints (default 0: no cap). A
/// connection past the cap is accepted and closed at once, unanswered; connections already open
/// are served on; refusals are logged at warn level once per second at most.
pub const PROXY_LIMIT_MAX_CONNECTIONS: u32 = 9;
/// Most connections open at once on each of the service's endpoints (default 0: no cap), with
/// the same overload behaviour as `PROXY_LIMIT_MAX_CONNECTIONS`.
pub const PROXY_LIMIT_MAX_CONNECTIONS_PER_LISTENER: u32 = 10;

/// Sets limit `which` (`PROXY_LIMIT_*`). Size limits must be > 0; 0 lifts a connection cap.
#[no_mangle]
pub extern "C" fn proxy_service_set_limit(
    service: *mut proxy_service,
    which: u32,
    value: u64,
) -> proxy_result {
    ffi_panic_boundary! {
        let svc = try_mut!(service);
        let Ok(v) = usize::try_from(value) else {
            return fail(PROXY_INVALID_PARAMETER, format_args!("limit {which}: {value} does not fit this platform"));
        };
        let nonzero = v > 0;
        match which {
            PROXY_LIMIT_MAX_HEADER_BYTES if nonzero => svc.opts.limits.max_header_bytes = v,
            PROXY_LIMIT_MAX_HEADERS if nonzero => svc.opts.limits.max_headers = v,
            PROXY_LIMIT_MAX_URI_LEN if nonzero => svc.opts.limits.max_uri_len = v,
            PROXY_LIMIT_MAX_RETRIES => svc.proxy.max_retries = v,
            PROXY_LIMIT_RETRY_BUFFER => svc.proxy.retry_buffer_limit = v,
            PROXY_LIMIT_DRAIN => svc.opts.drain_limit = value,
            PROXY_LIMIT_BODY_MIN_RATE => svc.opts.body_min_rate = value,
            PROXY_LIMIT_REQUEST_BUFFER => svc.opts.request_buffer = v,
            PROXY_LIMIT_MAX_CONNECTIONS => svc.max_connections = v,
            PROXY_LIMIT_MAX_CONNECTIONS_PER_LISTENER => svc.max_connections_per_listener = v,
            PROXY_LIMIT_MAX_HEADER_BYTES | PROXY_LIMIT_MAX_HEADERS | PROXY_LIMIT_MAX_URI_LEN => {
                return fail(PROXY_INVALID_PARAMETER, format_args!("limit {which}: 0 (must be > 0)"))
            }
            _ => return fail(PROXY_INVALID_PARAMETER, format_args!("unknown limit {which} (a PROXY_LIMIT_*)")),
        }
        PROXY_OK
    }
}

/// `proxy_service_set_option`: what becomes of request fields whose names contain `_`
/// (`Content_Length`), over HTTP/1 and HTTP/2; a `PROXY_UNDERSCORE_*` value. CGI/WSGI-style
/// origins read `_` as `-`, so such a field can pass for a framing field there.
pub const PROXY_OPTION_UNDERSCORE_FIELDS: u32 = 1;
/// `PROXY_OPTION_UNDERSCORE_FIELDS`: remove them before any callback sees the request (default,
/// like nginx's `underscores_in_headers off`).
pub const PROXY_UNDERSCORE_DROP: u32 = 0;
/// `PROXY_OPTION_UNDERSCORE_FIELDS`: answer 400 (and close an HTTP/1 connection).
pub const PROXY_UNDERSCORE_REFUSE: u32 = 1;
/// `PROXY_OPTION_UNDERSCORE_FIELDS`: forward them like any other field.
pub const PROXY_UNDERSCORE_FORWARD: u32 = 2;

/// Sets option `which` (`PROXY_OPTION_*`) to `value` (one of the values documented with the
/// option). INVALID_PARAMETER for an unknown option or value; the service is unchanged then.
/// Like every `proxy_service_*` setter: before `proxy_server_add_service`, from one thread.
#[no_mangle]
pub extern "C" fn proxy_service_set_option(
    service: *mut proxy_service,
    which: u32,
    value: u32,
) -> proxy_result {
    ffi_panic_boundary! {
        let svc = try_mut!(service);
        match (which, value) {
            (PROXY_OPTION_UNDERSCORE_FIELDS, PROXY_UNDERSCORE_DROP) => {
                svc.opts.underscore_fields = UnderscoreFields::Drop;
            }
            (PROXY_OPTION_UNDERSCORE_FIELDS, PROXY_UNDERSCORE_REFUSE) => {
                svc.opts.underscore_fields = UnderscoreFields::Refuse;
            }
            (PROXY_OPTION_UNDERSCORE_FIELDS, PROXY_UNDERSCORE_FORWARD) => {
                svc.opts.underscore_fields = UnderscoreFields::Forward;
            }
            _ => return PROXY_INVALID_PARAMETER,
        }
        PROXY_OK
    }
}

/// Lets requests offering the `Upgrade` protocol `protocol` (`"name"` for every version, or
/// `"name/version"`) reach the upstream as upgrades; WebSocket is allowed by default. Any other
/// offer goes upstream as a plain request without `Upgrade`, and a 101 that does not answer an
/// allowed offer is a 502. INVALID_PARAMETER (and the service unchanged) for anything that is not
/// a protocol token, and for `h2c` / `h2`, which are never forwarded: an h2c upgrade would turn the
/// connection into HTTP/2 straight to the upstream, past every callback. Like every
/// `proxy_service_*` setter: before `proxy_server_add_service`, from one thread.
#[no_mangle]
pub extern "C" fn proxy_service_allow_upgrade(
    service: *mut proxy_service,
    protocol: *const c_char,
) -> proxy_result {
    ffi_panic_boundary! {
        let svc = try_mut!(service);
        // SAFETY: NULL or a C string.
        let protocol = try_res!(unsafe { cstr(protocol) });
        match svc.opts.upgrades.allow(protocol) {
            Ok(()) => PROXY_OK,
            Err(_) => PROXY_INVALID_PARAMETER,
        }
    }
}

/// Stops forwarding upgrades to `protocol`, spelled as it was allowed (`"websocket"` turns the
/// default WebSocket support off). NOT_FOUND when it was not allowed.
#[no_mangle]
pub extern "C" fn proxy_service_deny_upgrade(
    service: *mut proxy_service,
    protocol: *const c_char,
) -> proxy_result {
    ffi_panic_boundary! {
        let svc = try_mut!(service);
        // SAFETY: NULL or a C string.
        let protocol = try_res!(unsafe { cstr(protocol) });
        if svc.opts.upgrades.deny(protocol) {
            PROXY_OK
        } else {
            PROXY_NOT_FOUND
        }
    }
}
