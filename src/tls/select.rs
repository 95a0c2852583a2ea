//! The certificate callback: a host chooses the certificate of each handshake from the ClientHello,
//! at once or later (the decision may wait on I/O: a key store, an ACME order).
//!
//! rustls' `ResolvesServerCert` must answer synchronously, so an endpoint with a callback reads the
//! ClientHello first (`LazyConfigAcceptor`), asks the callback, awaits its decision in the
//! connection's task, and only then starts the handshake with a configuration serving the chosen
//! certificate. That configuration is the endpoint's own, cloned with another resolver: it shares
//! the endpoint's session cache and ticket keys, so resumption works across choices. Endpoints
//! without a callback take none of this path.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;

use rustls::server::{Acceptor, ClientHello, ServerConfig};
use tokio_rustls::LazyConfigAcceptor;

use super::certs::{Fixed, TlsCert};
use crate::protocol::stream::Stream;

/// What the client offered in its ClientHello, as a certificate callback sees it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Hello {
    /// The server name it asked for (SNI).
    pub server_name: Option<String>,
    /// The ALPN protocols it offered, in its order.
    pub alpn: Vec<Vec<u8>>,
    /// The signature schemes it accepts (IANA TLS SignatureScheme numbers, 0x0804 = rsa_pss_rsae_sha256),
    /// to pick between an RSA and an ECDSA certificate.
    pub signature_schemes: Vec<u16>,
}

impl Hello {
    fn of(ch: &ClientHello<'_>) -> Hello {
        Hello {
            server_name: ch.server_name().map(str::to_owned),
            alpn: ch.alpn().map(|it| it.map(<[u8]>::to_vec).collect()).unwrap_or_default(),
            signature_schemes: ch.signature_schemes().iter().map(|s| u16::from(*s)).collect(),
        }
    }
}

/// A certificate callback's decision.
pub enum CertChoice {
    /// Serve the endpoint's own certificate set (default and SNI map).
    Endpoint,
    /// Serve this certificate.
    Use(TlsCert),
    /// Refuse the handshake (the connection is closed).
    Refuse,
    /// Decided later: the future gives the decision (within the endpoint's handshake timeout;
    /// another `Later` from it refuses).
    Later(Pin<Box<dyn Future<Output = CertChoice> + Send>>),
}

impl std::fmt::Debug for CertChoice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            CertChoice::Endpoint => "Endpoint",
            CertChoice::Use(_) => "Use",
            CertChoice::Refuse => "Refuse",
            CertChoice::Later(_) => "Later",
        })
    }
}

/// Chooses the certificate of each handshake on an endpoint (see the module docs). Runs on the
/// service's worker threads, concurrently for different connections; it must not block (answer
/// [`CertChoice::Later`] instead).
pub trait CertCallback: Send + Sync + 'static {
    /// The decision for one ClientHello.
    fn choose(&self, hello: Hello) -> CertChoice;
}

/// The handshake of an endpoint with a certificate callback, without the time limit (the caller
/// puts it on the whole).
pub(crate) async fn handshake(
    cb: &dyn CertCallback,
    base: &Arc<ServerConfig>,
    stream: Stream,
) -> io::Result<tokio_rustls::server::TlsStream<Stream>> {
    let start = LazyConfigAcceptor::new(Acceptor::default(), stream).await?;
    let mut choice = cb.choose(Hello::of(&start.client_hello()));
    if let CertChoice::Later(decision) = choice {
        choice = decision.await;
    }
    let config = match choice {
        CertChoice::Endpoint => base.clone(),
        CertChoice::Use(cert) => {
            let mut config = (**base).clone();
            config.cert_resolver = Arc::new(Fixed(cert.0));
            Arc::new(config)
        }
        CertChoice::Refuse | CertChoice::Later(_) => {
            return Err(io::Error::new(
                io::ErrorKind::PermissionDenied,
                "the certificate callback refused the handshake",
            ))
        }
    };
    start.into_stream(config).await
}
