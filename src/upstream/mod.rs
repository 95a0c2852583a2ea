//! Upstream peers (Pingora's `upstreams/` + load balancing): what to connect to, with which options,
//! and built-in ways to pick one of several.

mod peer;
mod selection;

pub use peer::{Alpn, HttpPeer, PeerAddress, PeerOptions, PeerTls};
pub use selection::RoundRobin;
