//! Where stored responses live. The cache logic talks to this trait only, so a store shared by
//! several instances (a memcached or Redis adapter, a disk store) can replace the in-memory one
//! without touching it.

use std::fmt::Debug;
use std::sync::Arc;

use super::{CacheKey, CachedObject};

/// Bytes and objects a store holds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Usage {
    /// Bytes charged (see [`CachedObject::charge`]).
    pub bytes: usize,
    /// Stored responses (each variant counts).
    pub objects: usize,
}

/// A store of responses under primary keys; each key holds one or more variants (responses
/// selected by their `Vary` fields). Called from every worker thread at once.
pub trait Storage: Send + Sync + Debug + 'static {
    /// The first variant under `key` that `select` accepts.
    fn lookup(
        &self,
        key: &CacheKey,
        select: &mut dyn FnMut(&CachedObject) -> bool,
    ) -> Option<Arc<CachedObject>>;

    /// Stores `obj` under `key`, replacing the variant with the same selecting values. Whether it
    /// was kept (a store may refuse an object, e.g. one larger than it can hold).
    fn insert(&self, key: &CacheKey, obj: Arc<CachedObject>) -> bool;

    /// Removes every variant under `key`; whether there was one.
    fn remove(&self, key: &CacheKey) -> bool;

    /// What the store holds now.
    fn usage(&self) -> Usage;
}
