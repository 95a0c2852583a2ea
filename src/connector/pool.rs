//! The idle connection pool (Pingora's `pingora-pool`), keyed by the peer's reuse hash.
//!
//! Sharded by key so that requests to different peers never contend, with one short critical
//! section per checkout. A connection is probed without blocking before it is handed out, so one
//! the upstream closed while idle is dropped rather than failing a request. Tokio I/O objects belong
//! to the runtime that created them, so in the non-work-stealing mode each runtime's connections are
//! kept apart (the worker slot is part of the key).
//!
//! Each idle connection also has a watcher task on the runtime that owns its socket: it closes the
//! connection when its idle timeout passes or when the peer closes it (or sends bytes nobody asked
//! for), so expired and half-closed sockets do not sit in the pool (in CLOSE-WAIT) until the next
//! checkout for their peer. The watcher only polls readiness (`&self`), so the connection stays in
//! the pool and a checkout stays one lock and no await; once the connection is taken the watcher
//! finds its entry gone and ends.

use std::collections::{HashMap, VecDeque};
use std::future::poll_fn;
use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Weak};
use std::task::Poll;
use std::time::Instant;

use parking_lot::Mutex;

use crate::protocol::h1::conn::H1Conn;

const SHARDS: usize = 16;

struct Idle {
    conn: H1Conn,
    expires: Option<Instant>,
    /// Tells this entry apart for its watcher (entries move within their list).
    id: u64,
}

type Shard = Mutex<HashMap<u64, VecDeque<Idle>, IdentityHash>>;

/// Idle upstream connections, shared by every request of a service.
pub struct ConnectionPool {
    inner: Arc<Inner>,
}

/// What the watchers share with the pool; they hold it weakly so a dropped pool ends them.
struct Inner {
    shards: Box<[Shard]>,
    idle: AtomicUsize,
    max_idle: usize,
    reused: AtomicU64,
    discarded: AtomicU64,
    next_id: AtomicU64,
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
        let inner = Inner {
            shards,
            idle: AtomicUsize::new(0),
            max_idle,
            reused: AtomicU64::new(0),
            discarded: AtomicU64::new(0),
            next_id: AtomicU64::new(0),
        };
        ConnectionPool { inner: Arc::new(inner) }
    }

    /// Takes the most recently used healthy connection for `key` (the most recent is the least
    /// likely to have been closed by the upstream). Expired or closed ones met on the way are dropped,
    /// outside the lock.
    pub fn take(&self, key: u64) -> Option<H1Conn> {
        let p = &*self.inner;
        let key = slot_key(key);
        loop {
            let idle = {
                let mut shard = p.shard(key).lock();
                let idle = shard.get_mut(&key)?.pop_back()?;
                p.idle.fetch_sub(1, Ordering::Relaxed);
                idle
            };
            if idle.expires.is_some_and(|e| e <= Instant::now()) || idle.conn.io.is_closed_or_dirty() {
                p.discarded.fetch_add(1, Ordering::Relaxed);
                continue;
            }
            p.reused.fetch_add(1, Ordering::Relaxed);
            return Some(idle.conn);
        }
    }

    /// Offers an idle connection for `key`. Dropped (closed) when the pool is full.
    ///
    /// Called from a task of the runtime that owns the connection's socket (the watcher runs
    /// there); outside any runtime the connection is only checked at checkout.
    pub fn put(&self, key: u64, conn: H1Conn, expires: Option<Instant>) {
        let p = &*self.inner;
        if p.idle.fetch_add(1, Ordering::Relaxed) >= p.max_idle {
            p.idle.fetch_sub(1, Ordering::Relaxed);
            p.discarded.fetch_add(1, Ordering::Relaxed);
            return;
        }
        let key = slot_key(key);
        let id = p.next_id.fetch_add(1, Ordering::Relaxed);
        let now = Instant::now();
        let mut expired = Vec::new();
        {
            let mut shard = p.shard(key).lock();
            let list = shard.entry(key).or_default();
            // Expired connections sit at the front (oldest first); sweep them while we hold the lock.
            while list.front().is_some_and(|i| i.expires.is_some_and(|e| e <= now)) {
                expired.extend(list.pop_front());
            }
            list.push_back(Idle { conn, expires, id });
        }
        if !expired.is_empty() {
            p.idle.fetch_sub(expired.len(), Ordering::Relaxed);
            p.discarded.fetch_add(expired.len() as u64, Ordering::Relaxed);
        }
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            rt.spawn(watch(Arc::downgrade(&self.inner), key, id, expires));
        }
    }

    /// Current counters.
    pub fn stats(&self) -> PoolStats {
        let p = &*self.inner;
        PoolStats {
            idle: p.idle.load(Ordering::Relaxed),
            reused: p.reused.load(Ordering::Relaxed),
            discarded: p.discarded.load(Ordering::Relaxed),
        }
    }
}

impl Inner {
    fn shard(&self, key: u64) -> &Shard {
        &self.shards[(key as usize) % SHARDS]
    }

    /// Removes entry `id` of `key` if it is still idle and `close` says so; `None` when it is gone
    /// (taken, swept, or the pool dropped), else whether it was removed. The connection is
    /// dropped (closed) outside the lock.
    fn remove_if(&self, key: u64, id: u64, close: impl FnOnce(&Idle) -> bool) -> Option<bool> {
        let idle = {
            let mut shard = self.shard(key).lock();
            let list = shard.get_mut(&key)?;
            let at = list.iter().position(|i| i.id == id)?;
            if !close(&list[at]) {
                return Some(false);
            }
            let idle = list.remove(at);
            if list.is_empty() {
                shard.remove(&key);
            }
            idle
        };
        self.idle.fetch_sub(1, Ordering::Relaxed);
        self.discarded.fetch_add(1, Ordering::Relaxed);
        drop(idle);
        Some(true)
    }
}

/// Closes idle entry `id` when it expires or its socket reports an event (EOF, reset, stray bytes),
/// whichever comes first, unless it was taken before.
async fn watch(pool: Weak<Inner>, key: u64, id: u64, expires: Option<Instant>) {
    let event = poll_fn(|cx| {
        let Some(p) = pool.upgrade() else { return Poll::Ready(()) };
        // Polled under the shard lock, so a checkout either happened before (the entry is gone and
        // the waker is never registered) or happens after, and its own read replaces our waker.
        match p.remove_if(key, id, |i| i.conn.io.poll_idle_event(cx).is_ready()) {
            Some(false) => Poll::Pending,
            None | Some(true) => Poll::Ready(()),
        }
    });
    match expires {
        Some(at) => {
            if tokio::time::timeout_at(at.into(), event).await.is_err() {
                if let Some(p) = pool.upgrade() {
                    p.remove_if(key, id, |_| true);
                }
            }
        }
        None => event.await,
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
