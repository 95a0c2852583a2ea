//! What the TLS handshake of an accepted connection settled (SNI, ALPN, version, cipher, the client
//! certificate of mutual TLS), as hooks read it.
//!
//! Taken once per connection and shared (`Arc`) by all of its requests and HTTP/2 streams; it
//! knows nothing of HTTP, so any app (the HTTP proxy, an L4 proxy) can hand it to its hooks. The
//! client certificate's fields are parsed only when a hook first asks for them: most requests on
//! an mTLS connection never look, and the DER chain is all the snapshot copies.

use std::sync::{Arc, OnceLock};

use rustls_pki_types::CertificateDer;

use super::TlsVersion;
use crate::protocol::stream::Stream;

/// The facts of one TLS connection we accepted.
#[derive(Debug)]
pub struct TlsFacts {
    sni: Option<Box<str>>,
    alpn: Option<Box<[u8]>>,
    version: Option<TlsVersion>,
    cipher: Option<&'static str>,
    /// The chain the client presented, end-entity first; empty without a client certificate.
    chain: Box<[CertificateDer<'static>]>,
    client_cert: OnceLock<Option<ClientCert>>,
}

/// The fields of a client's end-entity certificate that access rules and logs use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientCert {
    /// The subject's distinguished name, `CN=alice, O=Example` (RFC 4514 order as encoded).
    pub subject: String,
    /// The issuer's distinguished name, in the same form.
    pub issuer: String,
    /// The serial number in upper-case hex, without separators (nginx's `$ssl_client_serial`).
    pub serial: String,
    /// Seconds since the Unix epoch at which the certificate expires.
    pub not_after: i64,
    /// Subject alternative names in OpenSSL's notation: `DNS:a.example`, `IP:127.0.0.1`,
    /// `URI:spiffe://x/y`, `email:a@example`; other kinds are left out.
    pub sans: Vec<String>,
}

impl TlsFacts {
    /// The facts of a connection accepted on a TLS endpoint, after its handshake; `None` for
    /// anything else (plaintext, or our client side of an upstream connection).
    pub fn of(stream: &Stream) -> Option<Arc<TlsFacts>> {
        let Stream::TlsServer(s) = stream else { return None };
        let conn = &s.get_ref().1;
        Some(Arc::new(TlsFacts {
            sni: conn.server_name().map(Box::from),
            alpn: conn.alpn_protocol().map(Box::from),
            version: stream.tls_version(),
            cipher: stream.tls_cipher(),
            chain: conn.peer_certificates().map(Box::from).unwrap_or_default(),
            client_cert: OnceLock::new(),
        }))
    }

    /// The server name the client asked for (SNI).
    pub fn sni(&self) -> Option<&str> {
        self.sni.as_deref()
    }

    /// The ALPN protocol negotiated (`b"h2"`, `b"http/1.1"`).
    pub fn alpn(&self) -> Option<&[u8]> {
        self.alpn.as_deref()
    }

    /// The protocol version in use.
    pub fn version(&self) -> Option<TlsVersion> {
        self.version
    }

    /// The protocol version as OpenSSL names it (`TLSv1.3`), as nginx's `$ssl_protocol` reads.
    pub fn version_name(&self) -> Option<&'static str> {
        Some(match self.version? {
            TlsVersion::Tls12 => "TLSv1.2",
            TlsVersion::Tls13 => "TLSv1.3",
        })
    }

    /// The cipher suite's IANA name (`TLS13_AES_128_GCM_SHA256`).
    pub fn cipher(&self) -> Option<&'static str> {
        self.cipher
    }

    /// The certificate chain the client presented (DER, end-entity first); empty when it sent none.
    pub fn client_chain(&self) -> &[CertificateDer<'static>] {
        &self.chain
    }

    /// The client's end-entity certificate, parsed on the first call; `None` without one (or if
    /// it does not parse, which a verified certificate always does).
    pub fn client_cert(&self) -> Option<&ClientCert> {
        self.client_cert.get_or_init(|| self.chain.first().and_then(|c| ClientCert::parse(c))).as_ref()
    }
}

impl ClientCert {
    /// The fields of a DER certificate; `None` if it does not parse.
    pub fn parse(der: &[u8]) -> Option<ClientCert> {
        use x509_parser::extensions::GeneralName;
        let (_, cert) = x509_parser::parse_x509_certificate(der).ok()?;
        let sans = match cert.subject_alternative_name() {
            Ok(Some(ext)) => ext.value.general_names.iter().filter_map(san_text).collect(),
            _ => Vec::new(),
        };
        fn san_text(n: &GeneralName<'_>) -> Option<String> {
            Some(match n {
                GeneralName::DNSName(d) => format!("DNS:{d}"),
                GeneralName::URI(u) => format!("URI:{u}"),
                GeneralName::RFC822Name(e) => format!("email:{e}"),
                GeneralName::IPAddress(b) => format!("IP:{}", ip_text(b)?),
                _ => return None,
            })
        }
        Some(ClientCert {
            subject: cert.subject().to_string(),
            issuer: cert.issuer().to_string(),
            serial: cert.raw_serial().iter().map(|b| format!("{b:02X}")).collect(),
            not_after: cert.validity().not_after.timestamp(),
            sans,
        })
    }
}

fn ip_text(b: &[u8]) -> Option<String> {
    Some(match b.len() {
        4 => std::net::Ipv4Addr::from(<[u8; 4]>::try_from(b).ok()?).to_string(),
        16 => std::net::Ipv6Addr::from(<[u8; 16]>::try_from(b).ok()?).to_string(),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_subject_sans_serial_and_expiry() {
        let key = rcgen::KeyPair::generate().unwrap();
        let mut p = rcgen::CertificateParams::new(vec!["alice.example".to_string(), "127.0.0.1".to_string()])
            .unwrap();
        p.distinguished_name.push(rcgen::DnType::CommonName, "alice");
        p.subject_alt_names.push(rcgen::SanType::URI("spiffe://test/alice".try_into().unwrap()));
        p.serial_number = Some(vec![0x01, 0xAB].into());
        p.not_after = rcgen::date_time_ymd(2040, 1, 2);
        let cert = p.self_signed(&key).unwrap();
        let c = ClientCert::parse(cert.der()).unwrap();
        assert_eq!(c.subject, "CN=alice");
        assert_eq!(c.issuer, "CN=alice");
        assert_eq!(c.serial, "01AB");
        assert_eq!(c.not_after, 2209075200, "2040-01-02T00:00:00Z");
        assert_eq!(c.sans, ["DNS:alice.example", "IP:127.0.0.1", "URI:spiffe://test/alice"]);
        assert!(ClientCert::parse(b"not a certificate").is_none());
    }
}
