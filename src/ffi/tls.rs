//! `proxy_tls_settings`: the configuration of a TLS endpoint (certificates, SNI, client auth,
//! ALPN, versions, handshake timeout), and `proxy_service_add_tls` / `_add_tls_uds`.
//!
//! Everything is validated when it is set: a missing file, a key that does not match its
//! certificate, a name the certificate does not cover answer `PROXY_TLS_INVALID` at once, with a
//! message from `proxy_tls_settings_last_error`.

use std::ffi::c_char;
use std::time::Duration;

use parking_lot::Mutex;

use super::result::*;
use super::server::proxy_service;
use super::types::*;
use crate::tls::{TlsSettings, TlsVersion};

/// `proxy_tls_settings_set_client_auth` mode: ask for no client certificate (default).
pub const PROXY_TLS_CLIENT_AUTH_NONE: u32 = 0;
/// Ask for a client certificate; clients without one are let in, a bad one is refused.
pub const PROXY_TLS_CLIENT_AUTH_OPTIONAL: u32 = 1;
/// Require a client certificate signed by one of the CAs.
pub const PROXY_TLS_CLIENT_AUTH_REQUIRED: u32 = 2;

/// `proxy_tls_settings_set_versions` bit: TLS 1.2.
pub const PROXY_TLS_VERSION_1_2: u32 = 1;
/// `proxy_tls_settings_set_versions` bit: TLS 1.3.
pub const PROXY_TLS_VERSION_1_3: u32 = 2;

/// The configuration of TLS endpoints: create it, set a certificate (and optionally more), pass it
/// to `proxy_service_add_tls` (which copies it; one settings object may serve several endpoints)
/// and free it. Defaults: ALPN `h2`, `http/1.1`; TLS 1.2 and 1.3; no client auth; handshake
/// timeout 10 s. Not thread-safe: configure it from one thread.
///
/// Methods: proxy_tls_settings_new, proxy_tls_settings_set_cert_files,
/// proxy_tls_settings_set_cert_pem, proxy_tls_settings_add_sni_cert_files,
/// proxy_tls_settings_add_sni_cert_pem, proxy_tls_settings_set_client_auth_file,
/// proxy_tls_settings_set_client_auth_pem, proxy_tls_settings_set_alpn,
/// proxy_tls_settings_set_versions, proxy_tls_settings_set_handshake_timeout,
/// proxy_tls_settings_last_error, proxy_tls_settings_free.
pub struct proxy_tls_settings {
    pub(super) inner: TlsSettings,
    /// The message of the last failed call on this object (or of `proxy_service_add_tls` with it).
    error: Mutex<String>,
}

impl proxy_tls_settings {
    pub(super) fn fail(&self, e: impl std::fmt::Display) -> proxy_result {
        let text = e.to_string();
        // Also the thread's last error, like every other failure.
        super::error::fail(PROXY_TLS_INVALID, &text);
        *self.error.lock() = text;
        PROXY_TLS_INVALID
    }

    fn done(&self, r: std::io::Result<()>) -> proxy_result {
        match r {
            Ok(()) => PROXY_OK,
            Err(e) => self.fail(e),
        }
    }
}

/// Host names of a comma-separated list (`"a.example,*.b.example"`).
fn names(list: &str) -> Vec<&str> {
    list.split(',').map(str::trim).filter(|n| !n.is_empty()).collect()
}

/// Creates TLS settings with no certificate yet. `*out` receives them (free with
/// `proxy_tls_settings_free`).
#[no_mangle]
pub extern "C" fn proxy_tls_settings_new(out: *mut *mut proxy_tls_settings) -> proxy_result {
    ffi_panic_boundary! {
        let out = try_mut!(out);
        *out = Box::into_raw(Box::new(proxy_tls_settings { inner: TlsSettings::new(), error: Mutex::new(String::new()) }));
        PROXY_OK
    }
}

/// Frees TLS settings (endpoints added with them keep their copy). NULL is a no-op. Always
/// PROXY_OK (a result like every `_free`, since ABI 0.4).
#[no_mangle]
pub extern "C" fn proxy_tls_settings_free(tls: *mut proxy_tls_settings) -> proxy_result {
    ffi_panic_boundary! {
        if !tls.is_null() {
            // SAFETY: created by proxy_tls_settings_new, not freed before.
            drop(unsafe { Box::from_raw(tls) });
        }
        PROXY_OK
    }
}

/// Sets the default certificate (served without SNI or for names no SNI certificate covers) from
/// a PEM certificate chain file and a PEM private key file. TLS_INVALID (see
/// `proxy_tls_settings_last_error`) for a missing file, bad PEM, or a key that does not match.
#[no_mangle]
pub extern "C" fn proxy_tls_settings_set_cert_files(
    tls: *mut proxy_tls_settings,
    cert_path: *const c_char,
    key_path: *const c_char,
) -> proxy_result {
    ffi_panic_boundary! {
        let t = try_mut!(tls);
        // SAFETY: NULL or C strings.
        let (c, k) = (try_res!(unsafe { cstr(cert_path) }), try_res!(unsafe { cstr(key_path) }));
        let r = t.inner.set_default_cert_files(c, k).map(|_| ());
        t.done(r)
    }
}

/// Like `proxy_tls_settings_set_cert_files` from PEM documents in memory (copied).
#[no_mangle]
pub extern "C" fn proxy_tls_settings_set_cert_pem(
    tls: *mut proxy_tls_settings,
    cert_pem: *const u8,
    cert_len: usize,
    key_pem: *const u8,
    key_len: usize,
) -> proxy_result {
    ffi_panic_boundary! {
        let t = try_mut!(tls);
        let (c, k) = (try_res!(input(cert_pem, cert_len)), try_res!(input(key_pem, key_len)));
        let r = t.inner.set_default_cert_pem(c, k).map(|_| ());
        t.done(r)
    }
}

/// Serves a certificate (PEM files) to clients asking by SNI for one of `names`, a comma-separated
/// list of host names or `*.example.com` wildcards; the certificate must cover each of them. An
/// exact name wins over a wildcard.
#[no_mangle]
pub extern "C" fn proxy_tls_settings_add_sni_cert_files(
    tls: *mut proxy_tls_settings,
    names_list: *const c_char,
    cert_path: *const c_char,
    key_path: *const c_char,
) -> proxy_result {
    ffi_panic_boundary! {
        let t = try_mut!(tls);
        // SAFETY: NULL or C strings.
        let n = try_res!(unsafe { cstr(names_list) });
        // SAFETY: as above.
        let (c, k) = (try_res!(unsafe { cstr(cert_path) }), try_res!(unsafe { cstr(key_path) }));
        let r = t.inner.add_sni_cert_files(&names(n), c, k).map(|_| ());
        t.done(r)
    }
}

/// Like `proxy_tls_settings_add_sni_cert_files` from PEM documents in memory (copied).
#[no_mangle]
pub extern "C" fn proxy_tls_settings_add_sni_cert_pem(
    tls: *mut proxy_tls_settings,
    names_list: *const c_char,
    cert_pem: *const u8,
    cert_len: usize,
    key_pem: *const u8,
    key_len: usize,
) -> proxy_result {
    ffi_panic_boundary! {
        let t = try_mut!(tls);
        // SAFETY: NULL or a C string.
        let n = try_res!(unsafe { cstr(names_list) });
        let (c, k) = (try_res!(input(cert_pem, cert_len)), try_res!(input(key_pem, key_len)));
        let r = t.inner.add_sni_cert_pem(&names(n), c, k).map(|_| ());
        t.done(r)
    }
}

fn client_auth(
    t: &mut proxy_tls_settings,
    mode: u32,
    load: impl FnOnce(&mut TlsSettings, bool) -> std::io::Result<()>,
) -> proxy_result {
    match mode {
        PROXY_TLS_CLIENT_AUTH_NONE => {
            t.inner.set_client_auth(crate::tls::ClientAuth::None);
            PROXY_OK
        }
        PROXY_TLS_CLIENT_AUTH_OPTIONAL | PROXY_TLS_CLIENT_AUTH_REQUIRED => {
            let r = load(&mut t.inner, mode == PROXY_TLS_CLIENT_AUTH_REQUIRED);
            t.done(r)
        }
        _ => PROXY_INVALID_PARAMETER,
    }
}

/// Verifies client certificates (mTLS) against the CAs of a PEM bundle file; `mode` is a
/// `PROXY_TLS_CLIENT_AUTH_*` (with `_NONE` the path may be NULL).
#[no_mangle]
pub extern "C" fn proxy_tls_settings_set_client_auth_file(
    tls: *mut proxy_tls_settings,
    ca_path: *const c_char,
    mode: u32,
) -> proxy_result {
    ffi_panic_boundary! {
        let t = try_mut!(tls);
        if mode == PROXY_TLS_CLIENT_AUTH_NONE || mode > PROXY_TLS_CLIENT_AUTH_REQUIRED {
            return client_auth(t, mode, |_, _| Ok(()));
        }
        // SAFETY: NULL or a C string.
        let ca = try_res!(unsafe { cstr(ca_path) });
        client_auth(t, mode, |s, req| s.set_client_auth_file(ca, req).map(|_| ()))
    }
}

/// Like `proxy_tls_settings_set_client_auth_file` from a PEM bundle in memory (copied).
#[no_mangle]
pub extern "C" fn proxy_tls_settings_set_client_auth_pem(
    tls: *mut proxy_tls_settings,
    ca_pem: *const u8,
    ca_len: usize,
    mode: u32,
) -> proxy_result {
    ffi_panic_boundary! {
        let t = try_mut!(tls);
        let ca = try_res!(input(ca_pem, ca_len));
        client_auth(t, mode, |s, req| s.set_client_auth_pem(ca, req).map(|_| ()))
    }
}

/// The ALPN protocols offered, most preferred first, as a comma-separated list: `"h2,http/1.1"`
/// (the default), `"http/1.1"` to keep the endpoint on HTTP/1.1, `""` to disable ALPN.
#[no_mangle]
pub extern "C" fn proxy_tls_settings_set_alpn(
    tls: *mut proxy_tls_settings,
    protocols: *const c_char,
) -> proxy_result {
    ffi_panic_boundary! {
        let t = try_mut!(tls);
        // SAFETY: NULL or a C string.
        let list = try_res!(unsafe { cstr(protocols) });
        let protos: Vec<&[u8]> = names(list).into_iter().map(str::as_bytes).collect();
        if protos.iter().any(|p| p.len() > 255) {
            return t.fail("an ALPN protocol name is longer than 255 bytes");
        }
        t.inner.set_alpn(&protos);
        PROXY_OK
    }
}

/// The TLS versions accepted: an OR of `PROXY_TLS_VERSION_*` bits (default both).
#[no_mangle]
pub extern "C" fn proxy_tls_settings_set_versions(
    tls: *mut proxy_tls_settings,
    versions: u32,
) -> proxy_result {
    ffi_panic_boundary! {
        let t = try_mut!(tls);
        let all = PROXY_TLS_VERSION_1_2 | PROXY_TLS_VERSION_1_3;
        if versions == 0 || versions & !all != 0 {
            return PROXY_INVALID_PARAMETER;
        }
        let mut v = Vec::new();
        if versions & PROXY_TLS_VERSION_1_3 != 0 {
            v.push(TlsVersion::Tls13);
        }
        if versions & PROXY_TLS_VERSION_1_2 != 0 {
            v.push(TlsVersion::Tls12);
        }
        t.inner.set_versions(&v);
        PROXY_OK
    }
}

/// How long a client may take to complete its handshake, in milliseconds (> 0; default 10 s).
#[no_mangle]
pub extern "C" fn proxy_tls_settings_set_handshake_timeout(
    tls: *mut proxy_tls_settings,
    ms: u32,
) -> proxy_result {
    ffi_panic_boundary! {
        let t = try_mut!(tls);
        if ms == 0 {
            return PROXY_INVALID_PARAMETER;
        }
        t.inner.set_handshake_timeout(Duration::from_millis(ms as u64));
        PROXY_OK
    }
}

/// The message of the last call on `tls` that answered `PROXY_TLS_INVALID` (including
/// `proxy_service_add_tls` with these settings), e.g. "key file /x.pem: No such file or
/// directory". Empty when there was none. Valid until the next call on `tls`.
#[no_mangle]
pub extern "C" fn proxy_tls_settings_last_error(
    tls: *const proxy_tls_settings,
    out: *mut proxy_str,
) -> proxy_result {
    ffi_panic_boundary! {
        let t = try_ref!(tls);
        let out = try_mut!(out);
        let e = t.error.lock();
        // The String's buffer stays put until the next failing call replaces it.
        *out = proxy_str::from_bytes(e.as_bytes());
        PROXY_OK
    }
}

impl proxy_service {
    fn add_tls_stack(
        &mut self,
        t: &proxy_tls_settings,
        where_: &str,
        bind: impl FnOnce() -> std::io::Result<crate::listener::TransportStack>,
    ) -> Result<crate::listener::TransportStack, proxy_result> {
        let acceptor = t.inner.build().map_err(|e| t.fail(e))?;
        let stack = bind().map_err(|e| super::error::fail(PROXY_IO, format_args!("bind {where_}: {e}")))?;
        Ok(stack.with_tls(acceptor))
    }
}

/// Binds a TLS endpoint on TCP now (like `proxy_service_add_tcp`) with a copy of `tls`.
/// TLS_INVALID (message in `proxy_tls_settings_last_error(tls)`) when the settings cannot make a
/// server (no certificate, unusable CA bundle); INVALID_PARAMETER for a malformed address; IO
/// when binding fails. HTTP/2 is served to clients that negotiate `h2` by ALPN.
#[no_mangle]
pub extern "C" fn proxy_service_add_tls(
    service: *mut proxy_service,
    addr: *const c_char,
    tls: *const proxy_tls_settings,
    out_port: *mut u16,
) -> proxy_result {
    ffi_panic_boundary! {
        let svc = try_mut!(service);
        let t = try_ref!(tls);
        // SAFETY: NULL or a C string.
        let addr = try_res!(unsafe { cstr(addr) });
        let a = try_res!(super::server::parse_inet(addr));
        let stack = try_res!(svc.add_tls_stack(t, addr, || crate::listener::TransportStack::bind_tcp(a)));
        let port = try_res!(super::server::bound_port(&stack));
        svc.push_stack(stack);
        // SAFETY: NULL or valid.
        if let Some(p) = unsafe { out_port.as_mut() } {
            *p = port;
        }
        PROXY_OK
    }
}

/// Binds a TLS endpoint on a Unix domain socket now (see `proxy_service_add_tls`).
#[no_mangle]
pub extern "C" fn proxy_service_add_tls_uds(
    service: *mut proxy_service,
    path: *const c_char,
    tls: *const proxy_tls_settings,
) -> proxy_result {
    ffi_panic_boundary! {
        let svc = try_mut!(service);
        let t = try_ref!(tls);
        // SAFETY: NULL or a C string.
        let path = try_res!(unsafe { cstr(path) });
        if path.is_empty() {
            return PROXY_INVALID_PARAMETER;
        }
        let p = std::path::Path::new(path);
        let stack = try_res!(svc.add_tls_stack(t, &format!("unix:{path}"), || crate::listener::TransportStack::bind_unix(p)));
        svc.push_stack(stack);
        PROXY_OK
    }
}
