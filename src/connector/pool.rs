//! The idle connection pool (Pingora's `pingora-pool`), keyed by the peer's reuse hash.
//!
//! Sharded by key so that requests to different peers never contend, with one short critical
//! section per checkout. A connection is probed without blocking before it is handed out, so one
//! the upstream closed while idle is dropped rather than failing a request. Tokio I/O objects belong
//! to the runtime that created them, so in the non-work-stealing mode each runtime's connections are
//! kept apart (the worker slot is part of the key).

use std::collections::{HashMap, VecDeque};
use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Instant;

use parking_lot::Mutex;

use crate::protocol::h1::conn::H1Conn;

const SHARDS: usize = 16;

struct Idle {
    conn: H1Conn,
    expires: Option<Instant>,
}

type Shard = Mutex<HashMap<u64, VecDeque<Idle>, IdentityHash>>;

/// Idle upstream connections, shared by every request of a service.
pub struct ConnectionPool {
    shards: Box<[Shard]>,
    idle: AtomicUsize,
    max_idle: usize,
    reused: AtomicU64,
    discarded: AtomicU64,
}

impl std::fmt::Debug for ConnectionPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConnectionPool").field("stats", &self.stats()).finish()
    }
}

/// Counters for tests and metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolStats {
    /// Connections idle right now.
    pub idle: usize,
    /// Checkouts served from the pool.
    pub reused: u64,
    /// Idle connections dropped because they expired, were closed by the peer, or did not fit.
    pub discarded: u64,
}

thread_local! {
    static WORKER_SLOT: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
}

/// Marks the current thread as belonging to runtime `slot` (non-work-stealing services only).
pub(crate) fn set_worker_slot(slot: u64) {
    WORKER_SLOT.with(|s| s.set(slot));
}

pub(crate) fn slot_key(key: u64) -> u64 {
    let slot = WORKER_SLOT.with(|s| s.get());
    key ^ slot.wrapping_mul(0x9E37_79B9_7F4A_7C15)
}

impl ConnectionPool {
    /// Default bound on idle connections in one pool.
    pub(crate) const DEFAULT_MAX_IDLE: usize = 1024;

    /// A pool that keeps at most `max_idle` idle connections.
    pub fn new(max_idle: usize) -> Self {
        let shards = (0..SHARDS).map(|_| Mutex::new(HashMap::with_hasher(IdentityHash::default()))).collect();
        ConnectionPool {
            shards,
            idle: AtomicUsize::new(0),
            max_idle,
            reused: AtomicU64::new(0),
            discarded: AtomicU64::new(0),
        }
    }

    fn shard(&self, key: u64) -> &Shard {
        &self.shards[(key as usize) % SHARDS]
    }

    /// Takes the most recently used healthy connection for `key` (the most recent is the least
    /// likely to have been closed by the upstream). Expired or closed ones met on the way are dropped,
    /// outside the lock.
    pub fn take(&self, key: u64) -> Option<H1Conn> {
        let key = slot_key(key);
        loop {
            let idle = {
                let mut shard = self.shard(key).lock();
                let idle = shard.get_mut(&key)?.pop_back()?;
                self.idle.fetch_sub(1, Ordering::Relaxed);
                idle
            };
            if idle.expires.is_some_and(|e| e <= Instant::now()) || idle.conn.io.is_closed_or_dirty() {
                self.discarded.fetch_add(1, Ordering::Relaxed);
                continue;
            }
            self.reused.fetch_add(1, Ordering::Relaxed);
            return Some(idle.conn);
        }
    }

    /// Offers an idle connection for `key`. Dropped (closed) when the pool is full.
    pub fn put(&self, key: u64, conn: H1Conn, expires: Option<Instant>) {
        if self.idle.fetch_add(1, Ordering::Relaxed) >= self.max_idle {
            self.idle.fetch_sub(1, Ordering::Relaxed);
            self.discarded.fetch_add(1, Ordering::Relaxed);
            return;
        }
        let key = slot_key(key);
        let now = Instant::now();
        let mut expired = Vec::new();
        {
            let mut shard = self.shard(key).lock();
            let list = shard.entry(key).or_default();
            // Expired connections sit at the front (oldest first); sweep them while we hold the lock.
            while list.front().is_some_and(|i| i.expires.is_some_and(|e| e <= now)) {
                expired.extend(list.pop_front());
            }
            list.push_back(Idle { conn, expires });
        }
        if !expired.is_empty() {
            self.idle.fetch_sub(expired.len(), Ordering::Relaxed);
            self.discarded.fetch_add(expired.len() as u64, Ordering::Relaxed);
        }
    }

    /// Current counters.
    pub fn stats(&self) -> PoolStats {
        PoolStats {
            idle: self.idle.load(Ordering::Relaxed),
            reused: self.reused.load(Ordering::Relaxed),
            discarded: self.discarded.load(Ordering::Relaxed),
        }
    }
}

/// Keys are already hashes; hashing them again only costs time.
#[derive(Default, Clone, Copy)]
struct IdentityHash(u64);

impl Hasher for IdentityHash {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = (self.0 << 8) ^ u64::from(*b);
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

impl BuildHasher for IdentityHash {
    type Hasher = IdentityHash;
    fn build_hasher(&self) -> IdentityHash {
        IdentityHash(0)
    }
}
