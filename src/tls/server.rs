//! Downstream TLS: the settings of a TLS endpoint and the acceptor built from them.
//!
//! ```no_run
//! # fn main() -> std::io::Result<()> {
//! use proxy::tls::TlsSettings;
//! let mut tls = TlsSettings::from_pem_files("default.crt", "default.key")?;
//! tls.add_sni_cert_files(&["api.example.com"], "api.crt", "api.key")?;
//! tls.set_client_auth_file("clients-ca.pem", true)?; // mTLS, required
//! # Ok(()) }
//! ```

use std::collections::HashMap;
use std::io;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use rustls::server::WebPkiClientVerifier;
use rustls::sign::CertifiedKey;
use rustls::{RootCertStore, ServerConfig};
use rustls_pki_types::ServerName;

use super::certs::{CertSet, Certificates};
use super::select::CertCallback;
use super::{certified_key, invalid, parse_roots, provider, read_pem_file, ALPN_H2, ALPN_HTTP11};
use crate::protocol::stream::Stream;

/// A TLS protocol version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TlsVersion {
    /// TLS 1.2.
    Tls12,
    /// TLS 1.3.
    Tls13,
}

/// Client-certificate verification (mTLS) on a TLS endpoint.
#[derive(Debug, Clone, Default)]
pub enum ClientAuth {
    /// No client certificate is asked for.
    #[default]
    None,
    /// A certificate is asked for; clients without one are let in, a bad one is refused.
    Optional(Arc<RootCertStore>),
    /// Clients must present a certificate signed by one of these CAs.
    Required(Arc<RootCertStore>),
}

/// The configuration of one TLS endpoint. Every setter that loads something validates it at once,
/// and [`TlsSettings::build`] (called by `ListeningService::add_tls`) checks the whole.
#[derive(Debug, Clone)]
pub struct TlsSettings {
    default: Option<Arc<CertifiedKey>>,
    /// Lower-case host names, and `*.suffix` for wildcards.
    by_name: HashMap<String, Arc<CertifiedKey>>,
    client_auth: ClientAuth,
    alpn: Vec<Vec<u8>>,
    versions: Vec<TlsVersion>,
    handshake_timeout: Duration,
    cert_callback: Option<Callback>,
}

/// A certificate callback, shared by the settings' copies and the endpoints built from them.
#[derive(Clone)]
struct Callback(Arc<dyn CertCallback>);

impl std::fmt::Debug for Callback {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CertCallback")
    }
}

impl Default for TlsSettings {
    fn default() -> Self {
        TlsSettings {
            default: None,
            by_name: HashMap::new(),
            client_auth: ClientAuth::None,
            // The HTTP app serves HTTP/2 on a connection that starts with its preface.
            alpn: vec![ALPN_H2.to_vec(), ALPN_HTTP11.to_vec()],
            versions: vec![TlsVersion::Tls13, TlsVersion::Tls12],
            handshake_timeout: TlsSettings::DEFAULT_HANDSHAKE_TIMEOUT,
            cert_callback: None,
        }
    }
}

impl TlsSettings {
    /// How long a client may take to complete its handshake, by default.
    pub const DEFAULT_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

    /// Settings without any certificate yet (add one with [`Self::set_default_cert_pem`] or
    /// [`Self::add_sni_cert_pem`]).
    pub fn new() -> Self {
        Self::default()
    }

    /// Settings whose default certificate chain and key come from PEM files.
    pub fn from_pem_files(cert: impl AsRef<Path>, key: impl AsRef<Path>) -> io::Result<Self> {
        let mut s = Self::new();
        s.set_default_cert_files(cert, key)?;
        Ok(s)
    }

    /// Settings whose default certificate chain and key are PEM documents in memory.
    pub fn from_pem(cert_pem: &[u8], key_pem: &[u8]) -> io::Result<Self> {
        let mut s = Self::new();
        s.set_default_cert_pem(cert_pem, key_pem)?;
        Ok(s)
    }

    /// Sets the certificate served when the client sends no SNI or a name no other certificate
    /// was added for.
    pub fn set_default_cert_pem(&mut self, cert_pem: &[u8], key_pem: &[u8]) -> io::Result<&mut Self> {
        self.default = Some(Arc::new(certified_key(cert_pem, key_pem, "default")?));
        Ok(self)
    }

    /// [`Self::set_default_cert_pem`] from files.
    pub fn set_default_cert_files(
        &mut self,
        cert: impl AsRef<Path>,
        key: impl AsRef<Path>,
    ) -> io::Result<&mut Self> {
        let c = read_pem_file(cert.as_ref(), "certificate file")?;
        let k = read_pem_file(key.as_ref(), "key file")?;
        self.set_default_cert_pem(&c, &k)
    }

    /// Serves this certificate chain to clients asking (by SNI) for one of `names`: host names,
    /// or `*.example.com` for any single label under `example.com`. The certificate must be valid
    /// for every name given. An exact name wins over a wildcard.
    pub fn add_sni_cert_pem(
        &mut self,
        names: &[&str],
        cert_pem: &[u8],
        key_pem: &[u8],
    ) -> io::Result<&mut Self> {
        if names.is_empty() {
            return Err(invalid("an SNI certificate needs at least one name".into()));
        }
        let what = format!("SNI {}", names.join(","));
        let ck = Arc::new(certified_key(cert_pem, key_pem, &what)?);
        let parsed = rustls::server::ParsedCertificate::try_from(&ck.cert[0])
            .map_err(|e| invalid(format!("{what} certificate: unusable: {e}")))?;
        let mut keys = Vec::with_capacity(names.len());
        for name in names {
            let name = name.to_ascii_lowercase();
            // A wildcard entry is checked with a name it would match.
            let probe = match name.strip_prefix("*.") {
                Some(rest) => format!("sni-probe.{rest}"),
                None => name.clone(),
            };
            let sn = ServerName::try_from(probe.as_str())
                .map_err(|_| invalid(format!("invalid SNI name {name:?}")))?;
            if !matches!(sn, ServerName::DnsName(_)) {
                return Err(invalid(format!("SNI name {name:?} is not a DNS name")));
            }
            rustls::client::verify_server_name(&parsed, &sn).map_err(|e| {
                invalid(format!("certificate for SNI {name:?} does not cover that name: {e}"))
            })?;
            keys.push(name);
        }
        for k in keys {
            self.by_name.insert(k, ck.clone());
        }
        Ok(self)
    }

    /// [`Self::add_sni_cert_pem`] from files.
    pub fn add_sni_cert_files(
        &mut self,
        names: &[&str],
        cert: impl AsRef<Path>,
        key: impl AsRef<Path>,
    ) -> io::Result<&mut Self> {
        let c = read_pem_file(cert.as_ref(), "certificate file")?;
        let k = read_pem_file(key.as_ref(), "key file")?;
        self.add_sni_cert_pem(names, &c, &k)
    }

    /// Verifies client certificates against the CAs of a PEM bundle (mTLS); `required` refuses
    /// clients that present none.
    pub fn set_client_auth_pem(&mut self, ca_pem: &[u8], required: bool) -> io::Result<&mut Self> {
        let roots = Arc::new(parse_roots(ca_pem, "client CA bundle")?);
        self.client_auth = if required { ClientAuth::Required(roots) } else { ClientAuth::Optional(roots) };
        Ok(self)
    }

    /// [`Self::set_client_auth_pem`] from a file.
    pub fn set_client_auth_file(&mut self, ca: impl AsRef<Path>, required: bool) -> io::Result<&mut Self> {
        let pem = read_pem_file(ca.as_ref(), "client CA file")?;
        self.set_client_auth_pem(&pem, required)
    }

    /// Sets client-certificate verification directly.
    pub fn set_client_auth(&mut self, auth: ClientAuth) -> &mut Self {
        self.client_auth = auth;
        self
    }

    /// The ALPN protocols accepted, most preferred first (default `h2`, `http/1.1`; pass
    /// `[ALPN_HTTP11]` to keep an endpoint on HTTP/1.1). An empty list disables ALPN.
    pub fn set_alpn(&mut self, protocols: &[&[u8]]) -> &mut Self {
        self.alpn = protocols.iter().map(|p| p.to_vec()).collect();
        self
    }

    /// The protocol versions accepted (default TLS 1.2 and 1.3).
    pub fn set_versions(&mut self, versions: &[TlsVersion]) -> &mut Self {
        self.versions = versions.to_vec();
        self
    }

    /// How long a client may take to complete its handshake (default 10 s).
    pub fn set_handshake_timeout(&mut self, timeout: Duration) -> &mut Self {
        self.handshake_timeout = timeout;
        self
    }

    /// Lets `callback` choose the certificate of each handshake from the ClientHello (see
    /// [`super::select`]); it may hand the choice back to the endpoint's own certificates, which
    /// are then optional.
    pub fn set_cert_callback(&mut self, callback: Arc<dyn CertCallback>) -> &mut Self {
        self.cert_callback = Some(Callback(callback));
        self
    }

    /// Removes the certificate callback.
    pub fn clear_cert_callback(&mut self) -> &mut Self {
        self.cert_callback = None;
        self
    }

    /// The default and SNI certificates, for an endpoint's live set.
    pub(crate) fn cert_set(&self) -> CertSet {
        CertSet { default: self.default.clone(), by_name: self.by_name.clone() }
    }

    /// Builds the acceptor; fails when no certificate was given (and no certificate callback
    /// set), the version list is empty, or the client CA bundle cannot be used.
    pub fn build(&self) -> io::Result<TlsAcceptor> {
        if self.default.is_none() && self.by_name.is_empty() && self.cert_callback.is_none() {
            return Err(invalid("TLS settings have no certificate".into()));
        }
        let mut versions: Vec<&'static rustls::SupportedProtocolVersion> = Vec::new();
        for v in &self.versions {
            let v = match v {
                TlsVersion::Tls12 => &rustls::version::TLS12,
                TlsVersion::Tls13 => &rustls::version::TLS13,
            };
            if !versions.iter().any(|x| x.version == v.version) {
                versions.push(v);
            }
        }
        if versions.is_empty() {
            return Err(invalid("TLS settings enable no protocol version".into()));
        }
        let builder = ServerConfig::builder_with_provider(provider())
            .with_protocol_versions(&versions)
            .map_err(|e| invalid(format!("TLS versions: {e}")))?;
        let builder = match &self.client_auth {
            ClientAuth::None => builder.with_no_client_auth(),
            ClientAuth::Optional(roots) | ClientAuth::Required(roots) => {
                let mut vb = WebPkiClientVerifier::builder_with_provider(roots.clone(), provider());
                if matches!(self.client_auth, ClientAuth::Optional(_)) {
                    vb = vb.allow_unauthenticated();
                }
                let verifier = vb.build().map_err(|e| invalid(format!("client CA bundle: {e}")))?;
                builder.with_client_cert_verifier(verifier)
            }
        };
        let certs = Certificates::new(self.cert_set());
        let mut config = builder.with_cert_resolver(Arc::new(certs.clone()));
        config.alpn_protocols = self.alpn.clone();
        Ok(TlsAcceptor {
            inner: tokio_rustls::TlsAcceptor::from(Arc::new(config)),
            handshake_timeout: self.handshake_timeout,
            certs,
            callback: self.cert_callback.clone(),
        })
    }
}

/// A built TLS endpoint configuration: runs server handshakes under a time limit.
#[derive(Clone)]
pub struct TlsAcceptor {
    inner: tokio_rustls::TlsAcceptor,
    handshake_timeout: Duration,
    /// The live certificate set `inner` resolves from.
    certs: Certificates,
    callback: Option<Callback>,
}

impl std::fmt::Debug for TlsAcceptor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsAcceptor")
            .field("alpn", &self.inner.config().alpn_protocols)
            .field("handshake_timeout", &self.handshake_timeout)
            .finish()
    }
}

impl TlsAcceptor {
    /// The rustls configuration.
    pub fn config(&self) -> &Arc<ServerConfig> {
        self.inner.config()
    }

    /// The handshake time limit.
    pub fn handshake_timeout(&self) -> Duration {
        self.handshake_timeout
    }

    /// The handle on this endpoint's certificate set, to replace it while the endpoint serves.
    pub fn certificates(&self) -> &Certificates {
        &self.certs
    }

    /// Runs the server handshake on an accepted connection. Fails with `TimedOut` when the client
    /// does not finish in time, and with the rustls reason otherwise.
    pub async fn handshake(&self, stream: Stream) -> io::Result<Stream> {
        let done = async {
            match &self.callback {
                None => self.inner.accept(stream).await,
                Some(cb) => super::select::handshake(&*cb.0, self.inner.config(), stream).await,
            }
        };
        match tokio::time::timeout(self.handshake_timeout, done).await {
            Ok(Ok(s)) => Ok(Stream::TlsServer(Box::new(s))),
            Ok(Err(e)) => Err(e),
            Err(_) => Err(io::Error::new(io::ErrorKind::TimedOut, "TLS handshake timed out")),
        }
    }
}
