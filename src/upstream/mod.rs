//! Upstream peers (Pingora's `upstreams/` + `pingora-load-balancing`): what to connect to, with
//! which options, and groups of backends to choose among, with health and discovery.

mod backend;
mod discovery;
mod group;
mod health;
mod outlier;
mod peer;
mod selection;

pub use backend::{Backend, BackendFigures, MAX_WEIGHT};
pub use discovery::{Discovery, ResolveFuture, Resolved, Resolver, Source, SystemResolver};
pub use group::{ConnectionCount, HealthListener, Pick, Tried, UpstreamGroup};
pub use health::{HealthCheck, HealthChecker, HttpProbe, Probe};
pub use outlier::{HealthEvent, Outcome, OutlierDetection};
pub use peer::{Alpn, HttpPeer, PeerAddress, PeerOptions, PeerTls, SendProxy};
pub use selection::Algorithm;
