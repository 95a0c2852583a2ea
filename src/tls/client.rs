//! Upstream TLS: rustls client configs for [`PeerTls`] options (plus the peer's [`Alpn`] choice),
//! built once per distinct option set and shared by every connection (and the session-resumption
//! cache that comes with each).

use std::collections::HashMap;
use std::io;
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};

use parking_lot::Mutex;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::{CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
use rustls_pki_types::{CertificateDer, ServerName, UnixTime};

use super::{invalid, parse_certs, parse_key, parse_roots, provider, read_pem_file};
use crate::protocol::stream::Stream;
use crate::upstream::{Alpn, PeerAddress, PeerTls};

/// What a client config depends on: every TLS option but the SNI name (per connection), and ALPN.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct ConfigKey {
    verify: bool,
    verify_hostname: bool,
    ca_file: Option<PathBuf>,
    client_cert: Option<PathBuf>,
    client_key: Option<PathBuf>,
    alpn: Alpn,
}

impl ConfigKey {
    fn of(t: &PeerTls, alpn: Alpn) -> Self {
        ConfigKey {
            verify: t.verify,
            verify_hostname: t.verify_hostname,
            ca_file: t.ca_file.clone(),
            client_cert: t.client_cert.clone(),
            client_key: t.client_key.clone(),
            alpn,
        }
    }
}

/// Distinct option sets come from the host's configuration, so the cache stays small; the bound
/// only guards against a host that generates options per request.
const MAX_CACHED: usize = 256;

fn cache() -> &'static Mutex<HashMap<ConfigKey, Arc<ClientConfig>>> {
    static C: OnceLock<Mutex<HashMap<ConfigKey, Arc<ClientConfig>>>> = OnceLock::new();
    C.get_or_init(Default::default)
}

/// The client config for `tls` offering `alpn` ([`crate::upstream::PeerOptions::alpn`]), built on
/// first use and cached (files are read once: a changed CA file is seen by a new process, or by
/// options that differ). Call it at configuration time to check a peer's TLS options early;
/// errors name the file and the problem.
pub fn client_config(tls: &PeerTls, alpn: Alpn) -> io::Result<Arc<ClientConfig>> {
    let key = ConfigKey::of(tls, alpn);
    if let Some(c) = cache().lock().get(&key) {
        return Ok(c.clone());
    }
    // Built outside the lock (file reads); a concurrent builder of the same key only wastes work.
    let config = Arc::new(build(&key)?);
    let mut c = cache().lock();
    if c.len() >= MAX_CACHED {
        c.clear();
    }
    Ok(c.entry(key).or_insert(config).clone())
}

/// The system trust store (`/etc/ssl/certs` and friends via rustls-native-certs), loaded once.
fn system_roots() -> io::Result<Arc<RootCertStore>> {
    static R: OnceLock<Result<Arc<RootCertStore>, String>> = OnceLock::new();
    R.get_or_init(|| {
        let found = rustls_native_certs::load_native_certs();
        let mut roots = RootCertStore::empty();
        roots.add_parsable_certificates(found.certs);
        if roots.is_empty() {
            let why: Vec<String> = found.errors.iter().map(|e| e.to_string()).collect();
            return Err(format!("no usable CA certificate in the system trust store ({})", why.join("; ")));
        }
        Ok(Arc::new(roots))
    })
    .clone()
    .map_err(invalid)
}

fn build(key: &ConfigKey) -> io::Result<ClientConfig> {
    let builder = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| invalid(format!("TLS versions: {e}")))?;
    let verifier: Arc<dyn ServerCertVerifier> = if key.verify {
        let roots = match &key.ca_file {
            Some(p) => {
                Arc::new(parse_roots(&read_pem_file(p, "CA file")?, &format!("CA file {}", p.display()))?)
            }
            None => system_roots()?,
        };
        let webpki = WebPkiServerVerifier::builder_with_provider(roots, provider())
            .build()
            .map_err(|e| invalid(format!("upstream CA roots: {e}")))?;
        if key.verify_hostname {
            webpki
        } else {
            Arc::new(AnyName(webpki))
        }
    } else {
        Arc::new(NoVerify(provider().signature_verification_algorithms))
    };
    let builder = builder.dangerous().with_custom_certificate_verifier(verifier);
    let mut config = match (&key.client_cert, &key.client_key) {
        (Some(c), Some(k)) => {
            let what = format!("client certificate {}", c.display());
            let chain = parse_certs(&read_pem_file(c, "client certificate file")?, &what)?;
            let pk =
                parse_key(&read_pem_file(k, "client key file")?, &format!("client key {}", k.display()))?;
            builder
                .with_client_auth_cert(chain, pk)
                .map_err(|e| invalid(format!("{what}: unusable with its key: {e}")))?
        }
        (None, None) => builder.with_no_client_auth(),
        _ => return Err(invalid("a client certificate needs both client_cert and client_key".into())),
    };
    config.alpn_protocols = alpn_protocols(key.alpn).iter().map(|p| p.to_vec()).collect();
    Ok(config)
}

/// The ALPN protocol ids offered for `alpn`, most preferred first.
pub fn alpn_protocols(alpn: Alpn) -> &'static [&'static [u8]] {
    use super::{ALPN_H2, ALPN_HTTP11};
    match alpn {
        Alpn::H1 => &[ALPN_HTTP11],
        Alpn::H2 => &[ALPN_H2],
        Alpn::H2ThenH1 => &[ALPN_H2, ALPN_HTTP11],
    }
}

/// The name to present (SNI) and verify: the configured one, else the peer's host name or IP.
pub(crate) fn server_name(tls: &PeerTls, addr: &PeerAddress) -> io::Result<ServerName<'static>> {
    let name = match (tls.sni.as_str(), addr) {
        ("", PeerAddress::Inet(a)) => return Ok(ServerName::IpAddress(a.ip().into())),
        ("", PeerAddress::Host(h, _)) => h.as_str(),
        ("", PeerAddress::Unix(_)) => {
            return Err(invalid("a TLS peer on a Unix socket needs an SNI name".into()))
        }
        (sni, _) => sni,
    };
    ServerName::try_from(name.to_owned()).map_err(|_| invalid(format!("invalid TLS server name {name:?}")))
}

/// Runs the client handshake on an open transport.
pub(crate) async fn handshake(
    stream: Stream,
    config: Arc<ClientConfig>,
    name: ServerName<'static>,
) -> io::Result<Stream> {
    let s = tokio_rustls::TlsConnector::from(config).connect(name, stream).await?;
    Ok(Stream::TlsClient(Box::new(s)))
}

/// Chain verification without the name check (`verify_hostname: false`).
#[derive(Debug)]
struct AnyName(Arc<WebPkiServerVerifier>);

impl ServerCertVerifier for AnyName {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        match self.0.verify_server_cert(end_entity, intermediates, server_name, ocsp, now) {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            r => r,
        }
    }
    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls12_signature(message, cert, dss)
    }
    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls13_signature(message, cert, dss)
    }
    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_verify_schemes()
    }
}

/// No certificate verification (`verify: false`); handshake signatures are still checked so the
/// session is at least bound to the certificate presented.
#[derive(Debug)]
struct NoVerify(rustls::crypto::WebPkiSupportedAlgorithms);

impl ServerCertVerifier for NoVerify {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }
    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.0)
    }
    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.0)
    }
    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn configs_are_cached_per_option_set_not_per_sni() {
        let mut a = PeerTls::new("a.test");
        a.verify = false;
        let mut b = a.clone();
        b.sni = "b.test".into();
        let ca = client_config(&a, Alpn::H1).unwrap();
        assert!(Arc::ptr_eq(&ca, &client_config(&b, Alpn::H1).unwrap()));
        let cb = client_config(&b, Alpn::H2ThenH1).unwrap();
        assert!(!Arc::ptr_eq(&ca, &cb));
        assert_eq!(cb.alpn_protocols, vec![b"h2".to_vec(), b"http/1.1".to_vec()]);
    }

    #[test]
    fn missing_ca_file_is_a_clear_error() {
        let mut t = PeerTls::new("a.test");
        t.ca_file = Some("/nonexistent/ca.pem".into());
        let e = client_config(&t, Alpn::H1).unwrap_err().to_string();
        assert!(e.contains("/nonexistent/ca.pem"), "{e}");
    }

    #[test]
    fn server_name_falls_back_to_the_address() {
        let t = PeerTls::new("");
        let ip = server_name(&t, &"127.0.0.1:443".parse().unwrap()).unwrap();
        assert!(matches!(ip, ServerName::IpAddress(_)));
        let host = server_name(&t, &"example.com:443".parse().unwrap()).unwrap();
        assert_eq!(host.to_str(), "example.com");
        assert!(server_name(&t, &"/tmp/x.sock".parse().unwrap()).is_err());
    }
}
