//! TLS with rustls on both sides of the proxy.
//!
//! [`server`] builds what a TLS endpoint needs ([`TlsSettings`] → [`TlsAcceptor`]): certificate
//! chains selected by SNI, optional client-certificate verification, ALPN and protocol versions.
//! [`client`] builds (once per distinct option set) the configs used to reach TLS peers.
//!
//! Everything runs on rustls' `ring` provider, passed explicitly rather than installed as the
//! process default, so a host that installs another provider is neither disturbed nor disturbing.
//! Configuration problems (unreadable file, no certificate, a key that does not match its
//! certificate) are reported when the configuration is built, never at the first connection.

pub mod certs;
pub mod client;
pub mod facts;
pub mod select;
pub mod server;

use std::io;
use std::path::Path;
use std::sync::{Arc, OnceLock};

use rustls::crypto::CryptoProvider;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

pub use certs::{Certificates, TlsCert};
pub use facts::{ClientCert, TlsFacts};
pub use select::{CertCallback, CertChoice, Hello};
pub use server::{ClientAuth, TlsAcceptor, TlsSettings, TlsVersion};

/// ALPN protocol id of HTTP/1.1.
pub const ALPN_HTTP11: &[u8] = b"http/1.1";
/// ALPN protocol id of HTTP/2 over TLS.
pub const ALPN_H2: &[u8] = b"h2";

/// The crypto provider every config of this crate uses.
pub(crate) fn provider() -> Arc<CryptoProvider> {
    static P: OnceLock<Arc<CryptoProvider>> = OnceLock::new();
    P.get_or_init(|| Arc::new(rustls::crypto::ring::default_provider())).clone()
}

pub(crate) fn invalid(msg: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, msg)
}

/// Reads a PEM file, naming the file and its role in the error.
pub(crate) fn read_pem_file(path: &Path, what: &str) -> io::Result<Vec<u8>> {
    std::fs::read(path)
        .map_err(|e| io::Error::new(e.kind(), format!("reading {what} {}: {e}", path.display())))
}

/// Every certificate of a PEM document, in order; an error if there is none or one is malformed.
pub(crate) fn parse_certs(pem: &[u8], what: &str) -> io::Result<Vec<CertificateDer<'static>>> {
    let certs = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| invalid(format!("{what}: malformed PEM: {e}")))?;
    if certs.is_empty() {
        return Err(invalid(format!("{what}: no CERTIFICATE block found")));
    }
    Ok(certs)
}

/// The first private key (PKCS#8, PKCS#1 or SEC1) of a PEM document.
pub(crate) fn parse_key(pem: &[u8], what: &str) -> io::Result<PrivateKeyDer<'static>> {
    PrivateKeyDer::from_pem_slice(pem).map_err(|e| match e {
        rustls_pki_types::pem::Error::NoItemsFound => invalid(format!("{what}: no PRIVATE KEY block found")),
        e => invalid(format!("{what}: malformed PEM: {e}")),
    })
}

/// A trust store from a PEM bundle; every certificate in it must parse.
pub(crate) fn parse_roots(pem: &[u8], what: &str) -> io::Result<rustls::RootCertStore> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in parse_certs(pem, what)? {
        roots.add(cert).map_err(|e| invalid(format!("{what}: unusable CA certificate: {e}")))?;
    }
    Ok(roots)
}

/// Loads a certificate chain and its key, checking that the key parses and matches the chain's
/// first certificate.
pub(crate) fn certified_key(
    cert_pem: &[u8],
    key_pem: &[u8],
    what: &str,
) -> io::Result<rustls::sign::CertifiedKey> {
    let chain = parse_certs(cert_pem, &format!("{what} certificate"))?;
    let key = parse_key(key_pem, &format!("{what} key"))?;
    // The end-entity certificate must be one webpki can use.
    rustls::server::ParsedCertificate::try_from(&chain[0])
        .map_err(|e| invalid(format!("{what} certificate: unusable: {e}")))?;
    rustls::sign::CertifiedKey::from_der(chain, key, &provider())
        .map_err(|e| invalid(format!("{what}: certificate and key do not form a pair: {e}")))
}
