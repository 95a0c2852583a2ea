//! An HTTP cache (RFC 9111, shared cache), the connector duty Pingora's `pingora-cache`, nginx's
//! `proxy_cache` and Envoy's cache filter fill: the key ([`CacheKey`]), the rules for storing and
//! serving ([`policy`]), a [`Storage`] trait with a byte-bounded in-memory store
//! ([`MemoryStore`], S3-FIFO eviction), the lock that turns concurrent misses into one upstream
//! request ([`CacheLock`]), and the object being written while a miss streams to its client
//! ([`ObjectWriter`]).
//!
//! The proxy asks nothing of this module for a service without a cache: see
//! [`crate::proxy`] for where it hooks in.

mod clock;
mod conditional;
pub mod directives;
mod key;
mod lock;
mod memory;
mod object;
pub mod policy;
mod predictor;
mod seen;
mod storage;

use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use http::HeaderMap;

pub use clock::{Clock, ManualClock, SystemClock};
pub use conditional::{not_modified, set_validators};
pub use directives::CacheControl;
pub use key::CacheKey;
pub use lock::{CacheLock, Locked, Pending, WriteLock};
pub use memory::MemoryStore;
pub use object::{CachedObject, Meta, StaleRules, Times};
pub use policy::{NotStorable, PolicyOptions, Usable};
pub use predictor::Uncacheable;
pub use storage::{Storage, Usage};

/// What the cache did for a request (the logging summary's `cache`, and the optional
/// `x-cache-status` response field).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CacheStatus {
    /// Served from the cache, fresh.
    Hit,
    /// Not in the cache: fetched (and stored when allowed).
    Miss,
    /// Served from the cache past its freshness: `max-stale`, `stale-while-revalidate` or
    /// `stale-if-error`.
    Stale,
    /// Stored but stale; the origin's 304 made it fresh again and it was served.
    Revalidated,
    /// Stored but stale; the origin sent a new response.
    Expired,
    /// Not looked up: a method, request or hook decision the cache does not serve.
    Bypass,
}

impl CacheStatus {
    /// The status as it appears in `x-cache-status`.
    pub const fn as_str(self) -> &'static str {
        match self {
            CacheStatus::Hit => "HIT",
            CacheStatus::Miss => "MISS",
            CacheStatus::Stale => "STALE",
            CacheStatus::Revalidated => "REVALIDATED",
            CacheStatus::Expired => "EXPIRED",
            CacheStatus::Bypass => "BYPASS",
        }
    }
}

/// Whether a response is stored and how long it stays fresh, as the policy decided and a
/// `response_cache_filter` hook may change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CacheVerdict {
    /// Store it.
    pub store: bool,
    /// Its freshness lifetime in seconds.
    pub lifetime: u64,
}

/// How a cache behaves beyond its store's bound.
#[derive(Debug, Clone)]
pub struct CacheSettings {
    /// Responses longer than this are passed on but not stored (default 8 MiB).
    pub max_object: usize,
    /// What the policy may do beyond the RFC's musts (Set-Cookie, heuristic freshness).
    pub policy: PolicyOptions,
    /// Add `x-cache-status: HIT|MISS|...` to every response (default off).
    pub status_header: bool,
    /// How long a request waits for another one fetching the same key before going upstream
    /// itself (default 5 s).
    pub lock_timeout: Duration,
}

impl Default for CacheSettings {
    fn default() -> Self {
        CacheSettings {
            max_object: 8 << 20,
            policy: PolicyOptions::default(),
            status_header: false,
            lock_timeout: Duration::from_secs(5),
        }
    }
}

/// A cache: a store, its lock, its clock and its settings. One per service, or one shared by
/// several (the same `Arc` in each service's options).
#[derive(Debug)]
pub struct HttpCache {
    storage: Arc<dyn Storage>,
    lock: Arc<CacheLock>,
    uncacheable: Uncacheable,
    clock: Arc<dyn Clock>,
    /// Settings; changed before the service starts.
    pub settings: CacheSettings,
}

impl HttpCache {
    /// An in-memory cache of at most `max_bytes`.
    pub fn new(max_bytes: usize) -> Self {
        Self::with_storage(Arc::new(MemoryStore::new(max_bytes)))
    }

    /// A cache over `storage`.
    pub fn with_storage(storage: Arc<dyn Storage>) -> Self {
        HttpCache {
            storage,
            lock: Arc::default(),
            uncacheable: Uncacheable::default(),
            clock: Arc::new(SystemClock),
            settings: CacheSettings::default(),
        }
    }

    /// Uses `clock` for ages and freshness.
    #[must_use]
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// The store.
    pub fn storage(&self) -> &dyn Storage {
        &*self.storage
    }

    /// The lock.
    pub fn lock(&self) -> &Arc<CacheLock> {
        &self.lock
    }

    /// The keys whose latest response was not storable (their misses skip the lock).
    pub fn uncacheable(&self) -> &Uncacheable {
        &self.uncacheable
    }

    /// Now, by the cache's clock.
    pub fn now(&self) -> u64 {
        self.clock.now()
    }

    /// Removes every response stored under `key`; whether there was one.
    pub fn purge(&self, key: &CacheKey) -> bool {
        self.storage.remove(key)
    }

    /// What the store holds.
    pub fn usage(&self) -> Usage {
        self.storage.usage()
    }

    /// A writer for a response described by `meta`, or `None` when its declared length already
    /// exceeds [`CacheSettings::max_object`].
    pub fn writer(&self, meta: Meta, declared: Option<u64>) -> Option<ObjectWriter> {
        let limit = self.settings.max_object;
        if declared.is_some_and(|n| n > limit as u64) {
            return None;
        }
        // Sized once when the length is known: a body grown piece by piece is copied each time
        // its buffer doubles.
        let body = BytesMut::with_capacity(declared.map_or(0, |n| n as usize));
        Some(ObjectWriter { meta, body, limit, declared })
    }
}

/// A response being stored while it streams to its client.
#[derive(Debug)]
pub struct ObjectWriter {
    meta: Meta,
    body: BytesMut,
    limit: usize,
    declared: Option<u64>,
}

impl ObjectWriter {
    /// Appends body bytes; `false` once the body outgrew the object limit (the writer is then
    /// useless and should be dropped).
    pub fn push(&mut self, data: &[u8]) -> bool {
        if self.body.len() + data.len() > self.limit {
            return false;
        }
        self.body.extend_from_slice(data);
        true
    }

    /// Whether the body reached its declared length: it can be stored before its last bytes go
    /// to the client, so that the next request finds it (a length-framed body has no trailers).
    pub fn complete(&self) -> bool {
        self.declared.is_some_and(|n| self.body.len() as u64 == n)
    }

    /// The stored object, once the body ended.
    pub fn finish(self, trailers: Option<HeaderMap>) -> CachedObject {
        let body: Bytes = self.body.freeze();
        CachedObject { meta: self.meta, body, trailers }
    }
}
