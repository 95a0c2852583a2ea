//! A peer: an address plus the options that change how a connection to it behaves. The options
//! are part of the pool key, so two peers that differ in any of them never share a connection.

use std::hash::{Hash, Hasher};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// Where a peer lives.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum PeerAddress {
    /// An IP address and port.
    Inet(SocketAddr),
    /// A `host:port` resolved at connect time.
    Host(String, u16),
    /// A Unix domain socket path.
    Unix(PathBuf),
}

impl std::fmt::Display for PeerAddress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PeerAddress::Inet(a) => write!(f, "{a}"),
            PeerAddress::Host(h, p) => write!(f, "{h}:{p}"),
            PeerAddress::Unix(p) => write!(f, "unix:{}", p.display()),
        }
    }
}

impl std::str::FromStr for PeerAddress {
    type Err = &'static str;

    /// `1.2.3.4:80`, `[::1]:80`, `name:80`, or a Unix path (`/run/x.sock` or `unix:/run/x.sock`).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if let Some(p) = s.strip_prefix("unix:") {
            return if p.is_empty() {
                Err("empty unix socket path")
            } else {
                Ok(PeerAddress::Unix(p.into()))
            };
        }
        if s.starts_with('/') {
            return Ok(PeerAddress::Unix(s.into()));
        }
        if let Ok(a) = s.parse::<SocketAddr>() {
            return Ok(PeerAddress::Inet(a));
        }
        let (host, port) = s.rsplit_once(':').ok_or("address must be host:port or a unix socket path")?;
        let port: u16 = port.parse().map_err(|_| "invalid port")?;
        if host.is_empty() || host.contains(|c: char| c.is_whitespace() || c == '/' || c == ':') {
            return Err("invalid host");
        }
        Ok(PeerAddress::Host(host.to_owned(), port))
    }
}

/// Which HTTP version to speak to a peer. Over TLS it is offered by ALPN; in cleartext `H2` means
/// HTTP/2 with prior knowledge (h2c) and `H2ThenH1` falls back to HTTP/1.1 (nothing to negotiate).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum Alpn {
    /// HTTP/1.1 only.
    #[default]
    H1,
    /// HTTP/2 only.
    H2,
    /// HTTP/2 when the peer agrees, else HTTP/1.1.
    H2ThenH1,
}

/// Connection behaviour towards a peer. `None` disables a timeout; the defaults are edge-safe
/// (Pingora's are all `None`, which lets a dead upstream hold a request forever).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PeerOptions {
    /// Limit for the TCP/UDS connect.
    pub connect_timeout: Option<Duration>,
    /// Limit for connect plus any handshake layered on it (TLS).
    pub total_connection_timeout: Option<Duration>,
    /// Limit for each read from the upstream (response head and each body read).
    pub read_timeout: Option<Duration>,
    /// Limit for each write to the upstream.
    pub write_timeout: Option<Duration>,
    /// How long an unused connection may wait in the pool.
    pub idle_timeout: Option<Duration>,
    /// HTTP version to use (offered by ALPN over TLS).
    pub alpn: Alpn,
    /// Most concurrent requests multiplexed on one HTTP/2 connection (the peer's own
    /// SETTINGS_MAX_CONCURRENT_STREAMS applies too).
    pub max_h2_streams: usize,
    /// TLS on top of the connection (`None`: plaintext).
    pub tls: Option<PeerTls>,
    /// A PROXY header sent first on each new connection (before TLS). Boxed: most peers never
    /// send one, and every request carries its peer's options.
    pub proxy_protocol: Option<Box<SendProxy>>,
}

/// The PROXY header a peer gets. Its addresses are part of the pool key like every option, so a
/// pooled connection only ever carries requests of the client it announced.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SendProxy {
    /// 1 (text) or 2 (binary).
    pub version: u8,
    /// The client's address and the one it connected to. The HTTP and L4 proxies fill them in
    /// from the downstream connection (as a PROXY header received there gave them) when a hook
    /// leaves them `None`; `None` at connect time (a client on a Unix socket) is sent as
    /// `UNKNOWN` (v1) or AF_UNSPEC (v2).
    pub addrs: Option<(SocketAddr, SocketAddr)>,
}

impl SendProxy {
    /// A header of `version` whose addresses the proxy fills in.
    pub fn new(version: u8) -> Self {
        SendProxy { version, addrs: None }
    }

    /// Fills in the addresses from the downstream connection unless a hook set them.
    pub fn fill(
        &mut self,
        client: Option<&crate::protocol::stream::SocketAddr>,
        local: Option<&crate::protocol::stream::SocketAddr>,
    ) {
        use crate::protocol::stream::SocketAddr as Any;
        if self.addrs.is_none() {
            if let (Some(Any::Inet(c)), Some(Any::Inet(l))) = (client, local) {
                self.addrs = Some((*c, *l));
            }
        }
    }

    /// The header's bytes.
    pub fn encode(&self) -> Vec<u8> {
        use crate::protocol::proxy_protocol::encode;
        match self.version {
            1 => encode::v1(self.addrs),
            _ => encode::v2(self.addrs, &[]),
        }
    }
}

impl Default for PeerOptions {
    fn default() -> Self {
        PeerOptions {
            connect_timeout: Some(Duration::from_secs(5)),
            total_connection_timeout: Some(Duration::from_secs(10)),
            read_timeout: Some(Duration::from_secs(60)),
            write_timeout: Some(Duration::from_secs(60)),
            idle_timeout: Some(Duration::from_secs(60)),
            alpn: Alpn::H1,
            max_h2_streams: 100,
            tls: None,
            proxy_protocol: None,
        }
    }
}

/// TLS towards a peer. Part of the pool key like every option. The rustls config for a given set
/// of these options (everything but `sni`) and [`PeerOptions::alpn`] is built once and shared by
/// all connections; the protocol ALPN settled on is on the stream
/// ([`crate::protocol::stream::Stream::alpn`]).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PeerTls {
    /// The name sent by SNI and checked against the certificate. Empty: the peer's host name, or
    /// its IP address (checked against the certificate's IP SANs; no SNI is sent for an IP).
    pub sni: String,
    /// Verify the peer's certificate chain (and, with `verify_hostname`, its name). On by default;
    /// turning it off makes the connection open to interception.
    pub verify: bool,
    /// Check that the certificate is valid for `sni` (when `verify` is on). On by default.
    pub verify_hostname: bool,
    /// CA bundle (PEM) to verify against; `None`: the system's trust store.
    pub ca_file: Option<PathBuf>,
    /// Client certificate chain (PEM) presented to the peer, with `client_key`.
    pub client_cert: Option<PathBuf>,
    /// The private key (PEM) of `client_cert`.
    pub client_key: Option<PathBuf>,
}

impl PeerTls {
    /// TLS with SNI `sni`, full verification against the system roots, HTTP/1.1.
    pub fn new(sni: &str) -> Self {
        PeerTls {
            sni: sni.to_owned(),
            verify: true,
            verify_hostname: true,
            ca_file: None,
            client_cert: None,
            client_key: None,
        }
    }
}

impl Default for PeerTls {
    fn default() -> Self {
        Self::new("")
    }
}

/// An HTTP peer: address, options, and a pool group (peers in different groups never share
/// connections even when everything else is equal).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct HttpPeer {
    /// Where to connect.
    pub address: PeerAddress,
    /// How to behave.
    pub options: PeerOptions,
    /// Pool partition chosen by the host.
    pub group: u64,
}

impl HttpPeer {
    /// A peer with default options; `address` as accepted by [`PeerAddress::from_str`].
    pub fn new(address: &str) -> Result<Self, &'static str> {
        Ok(HttpPeer { address: address.parse()?, options: PeerOptions::default(), group: 0 })
    }

    /// A TLS peer with default options and [`PeerTls::new`]`(sni)`.
    pub fn new_tls(address: &str, sni: &str) -> Result<Self, &'static str> {
        let mut p = Self::new(address)?;
        p.options.tls = Some(PeerTls::new(sni));
        Ok(p)
    }

    /// The Host an upstream request gets when the client sent none (an HTTP/1.0 request, an
    /// HTTP/2 request without `:authority`): the TLS server name if one is set, else the address's
    /// host; with the port unless it is the scheme's default. `localhost` for a Unix socket.
    pub fn default_host(&self) -> String {
        let default_port = if self.options.tls.is_some() { 443 } else { 80 };
        let with_port = |host: &str, port: u16| {
            if port == default_port {
                host.to_owned()
            } else {
                format!("{host}:{port}")
            }
        };
        let port = match &self.address {
            PeerAddress::Inet(a) => Some(a.port()),
            PeerAddress::Host(_, p) => Some(*p),
            PeerAddress::Unix(_) => None,
        };
        match (self.options.tls.as_ref().map(|t| t.sni.as_str()), &self.address) {
            (Some(sni), _) if !sni.is_empty() => port.map_or_else(|| sni.to_owned(), |p| with_port(sni, p)),
            (_, PeerAddress::Inet(a)) if a.is_ipv6() => with_port(&format!("[{}]", a.ip()), a.port()),
            (_, PeerAddress::Inet(a)) => with_port(&a.ip().to_string(), a.port()),
            (_, PeerAddress::Host(h, p)) => with_port(h, *p),
            (_, PeerAddress::Unix(_)) => "localhost".to_owned(),
        }
    }

    /// The pool key: equal for peers that may share connections.
    ///
    /// A cheap multiplicative hash rather than SipHash: the key is computed twice per request, and
    /// its inputs come from the host's configuration, not from clients, so there is no flooding to
    /// defend against.
    pub fn reuse_hash(&self) -> u64 {
        let mut h = KeyHasher(0xcbf2_9ce4_8422_2325);
        self.hash(&mut h);
        h.finish()
    }
}

/// FxHash-style mixing: a word at a time, no SipHash rounds.
struct KeyHasher(u64);

impl KeyHasher {
    fn mix(&mut self, word: u64) {
        self.0 = (self.0.rotate_left(5) ^ word).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }
}

impl Hasher for KeyHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            self.mix(u64::from_le_bytes(c.try_into().expect("8 bytes")));
        }
        for b in chunks.remainder() {
            self.mix(u64::from(*b));
        }
    }
    fn write_u8(&mut self, n: u8) {
        self.mix(u64::from(n));
    }
    fn write_u16(&mut self, n: u16) {
        self.mix(u64::from(n));
    }
    fn write_u32(&mut self, n: u32) {
        self.mix(u64::from(n));
    }
    fn write_u64(&mut self, n: u64) {
        self.mix(n);
    }
    fn write_usize(&mut self, n: usize) {
        self.mix(n as u64);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_address_form() {
        assert_eq!("127.0.0.1:80".parse(), Ok(PeerAddress::Inet("127.0.0.1:80".parse().unwrap())));
        assert_eq!("[::1]:8080".parse(), Ok(PeerAddress::Inet("[::1]:8080".parse().unwrap())));
        assert_eq!("example.com:443".parse(), Ok(PeerAddress::Host("example.com".into(), 443)));
        assert_eq!("/tmp/a.sock".parse(), Ok(PeerAddress::Unix("/tmp/a.sock".into())));
        assert_eq!("unix:/tmp/a.sock".parse(), Ok(PeerAddress::Unix("/tmp/a.sock".into())));
        assert!("nohost".parse::<PeerAddress>().is_err());
        assert!("a:99999".parse::<PeerAddress>().is_err());
        assert!("unix:".parse::<PeerAddress>().is_err());
    }

    #[test]
    fn default_host_names_the_peer() {
        let host = |addr: &str, sni: Option<&str>| {
            let mut p = HttpPeer::new(addr).unwrap();
            p.options.tls = sni.map(PeerTls::new);
            p.default_host()
        };
        assert_eq!(host("127.0.0.1:8080", None), "127.0.0.1:8080");
        assert_eq!(host("127.0.0.1:80", None), "127.0.0.1");
        assert_eq!(host("[::1]:8080", None), "[::1]:8080");
        assert_eq!(host("origin.test:80", None), "origin.test");
        assert_eq!(host("origin.test:443", Some("")), "origin.test");
        assert_eq!(host("origin.test:80", Some("")), "origin.test:80");
        assert_eq!(host("10.0.0.1:443", Some("api.test")), "api.test");
        assert_eq!(host("10.0.0.1:8443", Some("api.test")), "api.test:8443");
        assert_eq!(host("/run/o.sock", None), "localhost");
        assert_eq!(host("/run/o.sock", Some("api.test")), "api.test");
    }

    #[test]
    fn options_are_part_of_the_pool_key() {
        let a = HttpPeer::new("127.0.0.1:1").unwrap();
        let mut b = a.clone();
        assert_eq!(a.reuse_hash(), b.reuse_hash());
        b.options.read_timeout = None;
        assert_ne!(a.reuse_hash(), b.reuse_hash());
        let mut c = a.clone();
        c.group = 7;
        assert_ne!(a.reuse_hash(), c.reuse_hash());
    }

    #[test]
    fn tls_options_are_part_of_the_pool_key() {
        let plain = HttpPeer::new("127.0.0.1:1").unwrap();
        let a = HttpPeer::new_tls("127.0.0.1:1", "a.test").unwrap();
        assert_ne!(plain.reuse_hash(), a.reuse_hash());
        let mut b = a.clone();
        assert_eq!(a.reuse_hash(), b.reuse_hash());
        b.options.tls.as_mut().unwrap().sni = "b.test".into();
        assert_ne!(a.reuse_hash(), b.reuse_hash());
        let mut c = a.clone();
        c.options.alpn = Alpn::H2;
        assert_ne!(a.reuse_hash(), c.reuse_hash());
        let mut d = a.clone();
        d.options.tls.as_mut().unwrap().ca_file = Some("/x.pem".into());
        assert_ne!(a.reuse_hash(), d.reuse_hash());
    }
}
