//! `proxy_session_tls`: what the TLS handshake of the client's connection settled (SNI, ALPN,
//! version, cipher, the client certificate of mutual TLS), in every phase of every request on it.

use super::result::*;
use super::session::*;
use super::types::*;
use crate::tls::TlsFacts;

/// `proxy_session_tls` fact: the server name the client asked for (SNI).
pub const PROXY_TLS_FACT_SNI: u32 = 1;
/// The ALPN protocol negotiated (`h2`, `http/1.1`).
pub const PROXY_TLS_FACT_ALPN: u32 = 2;
/// The protocol version as OpenSSL names it: `TLSv1.2`, `TLSv1.3`.
pub const PROXY_TLS_FACT_VERSION: u32 = 3;
/// The cipher suite's IANA name, e.g. `TLS13_AES_128_GCM_SHA256`.
pub const PROXY_TLS_FACT_CIPHER: u32 = 4;
/// Certificate `index` of the chain the client presented, DER (0: its own certificate).
pub const PROXY_TLS_FACT_CLIENT_CERT: u32 = 5;
/// The client certificate's subject, `CN=alice, O=Example`.
pub const PROXY_TLS_FACT_CLIENT_SUBJECT: u32 = 6;
/// The client certificate's issuer, in the same form.
pub const PROXY_TLS_FACT_CLIENT_ISSUER: u32 = 7;
/// The client certificate's serial number, upper-case hex.
pub const PROXY_TLS_FACT_CLIENT_SERIAL: u32 = 8;
/// Subject alternative name `index` of the client certificate, as `DNS:a.example`,
/// `IP:127.0.0.1`, `URI:spiffe://x/y` or `email:a@example`.
pub const PROXY_TLS_FACT_CLIENT_SAN: u32 = 9;

/// The facts of the session's connection: WRONG_PHASE outside a request phase, NOT_FOUND on
/// a plaintext connection.
fn facts(a: &Access) -> Result<&TlsFacts, proxy_result> {
    a.session()?.tls().ok_or(PROXY_NOT_FOUND)
}

pub(super) fn fact(f: &TlsFacts, which: u32, index: usize) -> Result<&[u8], proxy_result> {
    let cert = || f.client_cert().ok_or(PROXY_NOT_FOUND);
    let v = match which {
        PROXY_TLS_FACT_SNI => f.sni().map(str::as_bytes),
        PROXY_TLS_FACT_ALPN => f.alpn(),
        PROXY_TLS_FACT_VERSION => f.version_name().map(str::as_bytes),
        PROXY_TLS_FACT_CIPHER => f.cipher().map(str::as_bytes),
        PROXY_TLS_FACT_CLIENT_CERT => f.client_chain().get(index).map(|c| c.as_ref()),
        PROXY_TLS_FACT_CLIENT_SUBJECT => Some(cert()?.subject.as_bytes()),
        PROXY_TLS_FACT_CLIENT_ISSUER => Some(cert()?.issuer.as_bytes()),
        PROXY_TLS_FACT_CLIENT_SERIAL => Some(cert()?.serial.as_bytes()),
        PROXY_TLS_FACT_CLIENT_SAN => cert()?.sans.get(index).map(String::as_bytes),
        _ => None,
    };
    v.ok_or(PROXY_NOT_FOUND)
}

/// Whether `fact_id` is a `PROXY_TLS_FACT_*` and `index` fits it.
pub(super) fn valid_fact(fact_id: u32, index: usize) -> bool {
    let indexed = matches!(fact_id, PROXY_TLS_FACT_CLIENT_CERT | PROXY_TLS_FACT_CLIENT_SAN);
    (PROXY_TLS_FACT_SNI..=PROXY_TLS_FACT_CLIENT_SAN).contains(&fact_id) && (index == 0 || indexed)
}

/// One fact of the TLS connection the request arrived on: `fact` is a `PROXY_TLS_FACT_*`;
/// `index` picks a certificate of the client's chain (`_CLIENT_CERT`) or a name (`_CLIENT_SAN`)
/// and must be 0 for the others. The view (text, or DER for `_CLIENT_CERT`) stays valid for the
/// whole request: the facts are taken once per connection and do not change. Any phase but
/// `request_end`, HTTP/1 and HTTP/2 alike. Errors: NOT_FOUND on a plaintext connection, for a
/// fact the handshake did not settle (no SNI, no ALPN, no client certificate) and for an index
/// past the end (count SANs by asking until NOT_FOUND); INVALID_PARAMETER for an unknown fact or
/// a non-zero index where none applies; WRONG_PHASE, GONE.
#[no_mangle]
pub extern "C" fn proxy_session_tls(
    s: *const proxy_session,
    fact_id: u32,
    index: usize,
    out: *mut proxy_bytes,
) -> proxy_result {
    ffi_panic_boundary! {
        let s = try_ref!(s);
        let out = try_mut!(out);
        // Checked first: a bad argument is the same mistake on a plaintext connection.
        if !valid_fact(fact_id, index) {
            return PROXY_INVALID_PARAMETER;
        }
        put(out, s.with(|a| fact(facts(a)?, fact_id, index).map(proxy_bytes::from_bytes)))
    }
}

/// When the client certificate expires, in seconds since the Unix epoch (nginx's
/// `$ssl_client_v_end`). NOT_FOUND without a client certificate; WRONG_PHASE, GONE as
/// `proxy_session_tls`.
#[no_mangle]
pub extern "C" fn proxy_session_tls_client_not_after(s: *const proxy_session, out: *mut i64) -> proxy_result {
    ffi_panic_boundary! {
        let s = try_ref!(s);
        let out = try_mut!(out);
        put(out, s.with(|a| facts(a)?.client_cert().map(|c| c.not_after).ok_or(PROXY_NOT_FOUND)))
    }
}
