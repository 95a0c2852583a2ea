//! Built-in peer selection helpers for `upstream_peer`.

use std::sync::atomic::{AtomicUsize, Ordering};

use super::HttpPeer;

/// Round robin over a fixed list of peers. `pick(attempt)` skips ahead by the retry count so a
/// retry lands on a different peer than the attempt that failed.
#[derive(Debug)]
pub struct RoundRobin {
    peers: Vec<HttpPeer>,
    next: AtomicUsize,
}

impl RoundRobin {
    /// A selector over `peers` (must not be empty).
    pub fn new(peers: Vec<HttpPeer>) -> Self {
        assert!(!peers.is_empty(), "RoundRobin needs at least one peer");
        RoundRobin { peers, next: AtomicUsize::new(0) }
    }

    /// The peer for a first attempt (`attempt == 0`) or for retry number `attempt`.
    pub fn pick(&self, attempt: usize) -> &HttpPeer {
        let i = if attempt == 0 {
            self.next.fetch_add(1, Ordering::Relaxed)
        } else {
            self.next.load(Ordering::Relaxed).wrapping_add(attempt).wrapping_sub(1)
        };
        &self.peers[i % self.peers.len()]
    }

    /// The peers.
    pub fn peers(&self) -> &[HttpPeer] {
        &self.peers
    }
}
