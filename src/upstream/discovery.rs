//! Discovery (Pingora's `ServiceDiscovery`, and issue #222's wish): a group's backend list kept
//! from a mix of fixed backends and DNS names, the names re-resolved every interval (sooner when
//! the answer's TTL says so). Each round publishes a whole new snapshot: new requests follow
//! the new addresses at once, requests already on an old one finish there, and idle pooled
//! connections to it are never picked again (the pool is keyed by address).

use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use super::{Backend, HttpPeer, PeerAddress, PeerOptions, UpstreamGroup};
use crate::server::ShutdownWatch;
use crate::service::BackgroundService;

/// A resolver's answer.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Resolved {
    /// A and AAAA addresses.
    pub addrs: Vec<IpAddr>,
    /// How long the answer holds, when the resolver knows.
    pub ttl: Option<Duration>,
}

/// The future a [`Resolver`] returns.
pub type ResolveFuture<'a> = Pin<Box<dyn Future<Output = io::Result<Resolved>> + Send + 'a>>;

/// Turns a name into addresses. Injectable, so tests (and hosts with their own service
/// registry) can answer instead of the system.
pub trait Resolver: Send + Sync + 'static {
    /// Resolves `host`.
    fn resolve<'a>(&'a self, host: &'a str) -> ResolveFuture<'a>;
}

/// The system's resolver (getaddrinfo on a blocking thread, as tokio does it): it reports no
/// TTL, so names are re-resolved every interval.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemResolver;

impl Resolver for SystemResolver {
    fn resolve<'a>(&'a self, host: &'a str) -> ResolveFuture<'a> {
        Box::pin(async move {
            let mut addrs: Vec<IpAddr> = tokio::net::lookup_host((host, 0)).await?.map(|a| a.ip()).collect();
            addrs.sort();
            addrs.dedup();
            Ok(Resolved { addrs, ttl: None })
        })
    }
}

/// One entry of a discovered list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// A backend as it is.
    Fixed(Backend),
    /// Every address `host` resolves to, on `port`, each a backend named `ip:port` with this
    /// weight and these options (a TLS backend keeps `host` as its server name unless one is set).
    Dns {
        /// The name to resolve.
        host: String,
        /// The port.
        port: u16,
        /// Each address's weight.
        weight: u32,
        /// Connection options for each address.
        options: PeerOptions,
    },
}

/// Keeps a group's backends from [`Source`]s (add it to the server with
/// [`crate::service::background_service`], or drive it with [`Discovery::round`]).
pub struct Discovery {
    group: UpstreamGroup,
    sources: Vec<Source>,
    resolver: Arc<dyn Resolver>,
    interval: Duration,
    /// The last good answer per name: a failed lookup keeps it rather than emptying the group.
    last: parking_lot::Mutex<HashMap<String, Resolved>>,
}

impl std::fmt::Debug for Discovery {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Discovery").field("group", &self.group).field("sources", &self.sources).finish()
    }
}

/// The shortest wait between rounds, whatever the TTLs say: a zero TTL must not spin.
const MIN_WAIT: Duration = Duration::from_secs(1);

impl Discovery {
    /// Keeps `group` to `sources`, resolving names with `resolver` every `interval`.
    pub fn new(
        group: UpstreamGroup,
        sources: Vec<Source>,
        resolver: Arc<dyn Resolver>,
        interval: Duration,
    ) -> Self {
        Discovery { group, sources, resolver, interval, last: Default::default() }
    }

    /// Resolves every name once and publishes the resulting list. Returns how long to wait for
    /// the next round: the interval, or the shortest TTL if that is sooner (at least a second).
    pub async fn round(&self) -> Duration {
        let mut list = Vec::new();
        let mut wait = self.interval;
        for s in &self.sources {
            match s {
                Source::Fixed(b) => list.push(b.clone()),
                Source::Dns { host, port, weight, options } => {
                    let answer = match self.resolver.resolve(host).await {
                        Ok(r) => {
                            self.last.lock().insert(host.clone(), r.clone());
                            r
                        }
                        Err(_) => self.last.lock().get(host).cloned().unwrap_or_default(),
                    };
                    if let Some(ttl) = answer.ttl {
                        wait = wait.min(ttl.max(MIN_WAIT));
                    }
                    list.extend(
                        answer.addrs.iter().map(|ip| dns_backend(host, *ip, *port, *weight, options)),
                    );
                }
            }
        }
        // Two names with a shared address give one backend.
        let mut seen = std::collections::HashSet::new();
        list.retain(|b| seen.insert(b.name.clone()));
        // Only fails on duplicate names, which were just removed.
        let _ = self.group.set_backends(list);
        wait
    }
}

fn dns_backend(host: &str, ip: IpAddr, port: u16, weight: u32, options: &PeerOptions) -> Backend {
    let addr = SocketAddr::new(ip, port);
    let mut options = options.clone();
    if let Some(tls) = options.tls.as_mut().filter(|t| t.sni.is_empty()) {
        tls.sni = host.to_owned();
    }
    Backend {
        name: addr.to_string(),
        peer: HttpPeer { address: PeerAddress::Inet(addr), options, group: 0 },
        weight: weight.clamp(1, super::MAX_WEIGHT),
    }
}

impl BackgroundService for Discovery {
    async fn start(&self, mut shutdown: ShutdownWatch) {
        loop {
            let wait = self.round().await;
            tokio::select! {
                () = tokio::time::sleep(wait) => {}
                () = shutdown.graceful() => return,
            }
        }
    }
}
