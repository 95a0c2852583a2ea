//! The certificates a TLS endpoint serves (a default and an SNI map), replaceable while it runs.
//!
//! Each endpoint resolves its certificate per handshake from an immutable [`CertSet`] behind an
//! `ArcSwap`: a handshake loads the current set without a lock, and a replacement swaps the whole
//! set at once, so a handshake sees either the old set or the new one, never half of each, and
//! connections already established keep the certificate they were served (nothing is dropped).

use std::collections::HashMap;
use std::io;
use std::path::Path;
use std::sync::Arc;

use arc_swap::ArcSwap;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;

use super::{certified_key, invalid, read_pem_file, TlsSettings};

/// One certificate chain with its private key, checked to form a pair: what a certificate
/// callback hands back (see [`super::CertCallback`]). Cheap to clone.
#[derive(Debug, Clone)]
pub struct TlsCert(pub(crate) Arc<CertifiedKey>);

impl TlsCert {
    /// From a PEM certificate chain (end-entity first) and a PEM private key.
    pub fn from_pem(cert_pem: &[u8], key_pem: &[u8]) -> io::Result<TlsCert> {
        Ok(TlsCert(Arc::new(certified_key(cert_pem, key_pem, "certificate")?)))
    }

    /// [`Self::from_pem`] from files.
    pub fn from_pem_files(cert: impl AsRef<Path>, key: impl AsRef<Path>) -> io::Result<TlsCert> {
        let c = read_pem_file(cert.as_ref(), "certificate file")?;
        let k = read_pem_file(key.as_ref(), "key file")?;
        Self::from_pem(&c, &k)
    }
}

/// A default certificate and certificates by server name (lower-case names and `*.suffix`).
#[derive(Debug, Clone, Default)]
pub(crate) struct CertSet {
    pub(crate) default: Option<Arc<CertifiedKey>>,
    pub(crate) by_name: HashMap<String, Arc<CertifiedKey>>,
}

impl CertSet {
    pub(crate) fn is_empty(&self) -> bool {
        self.default.is_none() && self.by_name.is_empty()
    }

    /// The certificate for `server_name`: exact name, then `*.parent`, then the default.
    fn resolve(&self, server_name: Option<&str>) -> Option<Arc<CertifiedKey>> {
        if let (Some(name), false) = (server_name, self.by_name.is_empty()) {
            let name = name.to_ascii_lowercase();
            if let Some(ck) = self.by_name.get(&name) {
                return Some(ck.clone());
            }
            if let Some((_, parent)) = name.split_once('.') {
                if let Some(ck) = self.by_name.get(&format!("*.{parent}")) {
                    return Some(ck.clone());
                }
            }
        }
        self.default.clone()
    }
}

/// The live certificate set of a TLS endpoint ([`super::TlsAcceptor::certificates`]): the handle
/// to replace it at runtime, from the API or on a configuration reload. Clones share the set.
#[derive(Debug, Clone)]
pub struct Certificates(Arc<ArcSwap<CertSet>>);

impl Certificates {
    pub(crate) fn new(set: CertSet) -> Self {
        Certificates(Arc::new(ArcSwap::from_pointee(set)))
    }

    /// Serves the default and SNI certificates of `settings` from the next handshake on (its
    /// other settings, ALPN, versions, client auth, are the endpoint's and stay). Handshakes under
    /// way and connections established keep what they had. Fails, changing nothing, when
    /// `settings` has no certificate.
    pub fn replace(&self, settings: &TlsSettings) -> io::Result<()> {
        let set = settings.cert_set();
        if set.is_empty() {
            return Err(invalid("the replacement TLS settings have no certificate".into()));
        }
        self.0.store(Arc::new(set));
        Ok(())
    }

    /// [`Self::replace`] on each of `handles`: all of them or, when `settings` has no
    /// certificate, none. Returns how many.
    pub fn replace_all(handles: &[Certificates], settings: &TlsSettings) -> io::Result<usize> {
        for h in handles {
            h.replace(settings)?;
        }
        Ok(handles.len())
    }

    /// Whether both handles reach the same live set.
    pub fn same_as(&self, other: &Certificates) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

impl ResolvesServerCert for Certificates {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        self.0.load().resolve(hello.server_name())
    }
}

/// Serves one certificate whatever the ClientHello: the choice of a certificate callback.
#[derive(Debug)]
pub(crate) struct Fixed(pub(crate) Arc<CertifiedKey>);

impl ResolvesServerCert for Fixed {
    fn resolve(&self, _: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.0.clone())
    }
}
