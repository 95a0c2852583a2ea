//! Certificates at runtime: `proxy_tls_certs` (the live certificate sets of a service's TLS
//! endpoints, replaced while it serves) and `proxy_tls_cert` (one chain and key, what a
//! certificate callback serves).

use std::ffi::c_char;

use super::error::fail;
use super::result::*;
use super::server::proxy_service;
use super::tls::proxy_tls_settings;
use super::types::*;
use crate::protocol::stream::SocketAddr;
use crate::tls::{Certificates, TlsCert};

/// The live certificate sets of TLS endpoints of a service (`proxy_service_tls_certs`). Replace
/// them with `proxy_tls_certs_replace` at any time, before or after the server starts, from any
/// thread (the handle is thread-safe); free it with `proxy_tls_certs_free` (the endpoints keep
/// serving whatever they serve).
///
/// Methods: proxy_service_tls_certs, proxy_tls_certs_replace, proxy_tls_certs_free.
pub struct proxy_tls_certs {
    endpoints: Vec<Certificates>,
}

/// Takes a handle on the certificate sets of `service`'s TLS endpoints bound so far: those on TCP
/// port `port`, or every one (TCP and Unix socket) with `port` 0. Take it before
/// `proxy_server_add_service` consumes the service. `*out` receives it (free with
/// `proxy_tls_certs_free`). NOT_FOUND when no TLS endpoint matches.
#[no_mangle]
pub extern "C" fn proxy_service_tls_certs(
    service: *const proxy_service,
    port: u16,
    out: *mut *mut proxy_tls_certs,
) -> proxy_result {
    ffi_panic_boundary! {
        let svc = try_ref!(service);
        let out = try_mut!(out);
        let on_port = |s: &crate::listener::TransportStack| {
            port == 0 || matches!(s.local_addr(), Ok(SocketAddr::Inet(a)) if a.port() == port)
        };
        let endpoints: Vec<Certificates> = svc
            .stacks()
            .iter()
            .filter(|s| on_port(s))
            .filter_map(|s| Some(s.tls()?.certificates().clone()))
            .collect();
        if endpoints.is_empty() {
            return fail(PROXY_NOT_FOUND, format_args!("the service has no TLS endpoint on port {port}"));
        }
        *out = Box::into_raw(Box::new(proxy_tls_certs { endpoints }));
        PROXY_OK
    }
}

/// Serves the certificates of `tls` (its default certificate and SNI certificates; its other
/// settings do not apply) on every endpoint of `certs`, from their next handshake on. Connections
/// already established, and handshakes under way, keep what they had: nothing is dropped. `tls`
/// is copied. Any thread, any time (a callback included). TLS_INVALID (message in
/// `proxy_tls_settings_last_error(tls)`) when `tls` has no certificate; nothing changes then.
#[no_mangle]
pub extern "C" fn proxy_tls_certs_replace(
    certs: *const proxy_tls_certs,
    tls: *const proxy_tls_settings,
) -> proxy_result {
    ffi_panic_boundary! {
        let c = try_ref!(certs);
        let t = try_ref!(tls);
        match Certificates::replace_all(&c.endpoints, &t.inner) {
            Ok(_) => PROXY_OK,
            Err(e) => t.fail(e),
        }
    }
}

/// Frees the handle (the endpoints keep their certificates). NULL is a no-op. Always PROXY_OK.
#[no_mangle]
pub extern "C" fn proxy_tls_certs_free(certs: *mut proxy_tls_certs) -> proxy_result {
    ffi_panic_boundary! {
        if !certs.is_null() {
            // SAFETY: created by proxy_service_tls_certs, not freed before.
            drop(unsafe { Box::from_raw(certs) });
        }
        PROXY_OK
    }
}

/// One certificate chain with its private key, loaded and checked (the key matches the chain's
/// first certificate), for a certificate callback to serve (`proxy_client_hello_set_cert`).
/// Immutable and thread-safe; free it with `proxy_tls_cert_free` (handshakes that chose it keep
/// their copy).
///
/// Methods: proxy_tls_cert_new_pem, proxy_tls_cert_new_files, proxy_tls_cert_free.
pub struct proxy_tls_cert {
    pub(super) inner: TlsCert,
}

fn new_cert(r: std::io::Result<TlsCert>, out: &mut *mut proxy_tls_cert) -> proxy_result {
    match r {
        Ok(inner) => {
            *out = Box::into_raw(Box::new(proxy_tls_cert { inner }));
            PROXY_OK
        }
        Err(e) => fail(PROXY_TLS_INVALID, e),
    }
}

/// Loads a certificate from a PEM chain (end-entity first) and a PEM private key in memory
/// (copied). `*out` receives it. TLS_INVALID (reason in `proxy_last_error`) for bad PEM or a key
/// that does not match.
#[no_mangle]
pub extern "C" fn proxy_tls_cert_new_pem(
    cert_pem: *const u8,
    cert_len: usize,
    key_pem: *const u8,
    key_len: usize,
    out: *mut *mut proxy_tls_cert,
) -> proxy_result {
    ffi_panic_boundary! {
        let out = try_mut!(out);
        let (c, k) = (try_res!(input(cert_pem, cert_len)), try_res!(input(key_pem, key_len)));
        new_cert(TlsCert::from_pem(c, k), out)
    }
}

/// Like `proxy_tls_cert_new_pem` from PEM files.
#[no_mangle]
pub extern "C" fn proxy_tls_cert_new_files(
    cert_path: *const c_char,
    key_path: *const c_char,
    out: *mut *mut proxy_tls_cert,
) -> proxy_result {
    ffi_panic_boundary! {
        let out = try_mut!(out);
        // SAFETY: NULL or C strings.
        let (c, k) = (try_res!(unsafe { cstr(cert_path) }), try_res!(unsafe { cstr(key_path) }));
        new_cert(TlsCert::from_pem_files(c, k), out)
    }
}

/// Frees a certificate. NULL is a no-op. Always PROXY_OK.
#[no_mangle]
pub extern "C" fn proxy_tls_cert_free(cert: *mut proxy_tls_cert) -> proxy_result {
    ffi_panic_boundary! {
        if !cert.is_null() {
            // SAFETY: created by proxy_tls_cert_new_*, not freed before.
            drop(unsafe { Box::from_raw(cert) });
        }
        PROXY_OK
    }
}
