//! The in-memory store: bounded in bytes, evicting with S3-FIFO (Yang et al., SOSP 2023).
//!
//! S3-FIFO rather than LRU because a scan (a crawler walking every URL once) must not flush the
//! objects that are read again and again: new keys enter a small FIFO (a tenth of the bytes) and
//! reach the main one only if read while there, or if they come back while a ghost queue still
//! remembers them. It needs no per-read list surgery (a read bumps a 2-bit counter), which keeps a
//! hit cheap. Written here rather than taken from a crate: the store must charge whole responses
//! in bytes, hold several variants per key and remove by key, which the general-purpose caches
//! (moka, quick_cache) fit only through wrappers that cost memory per object, the figure a cache
//! is judged by.

use std::collections::{HashMap, HashSet, VecDeque};
use std::hash::BuildHasher;
use std::sync::Arc;

use parking_lot::Mutex;

use super::storage::{Storage, Usage};
use super::{CacheKey, CachedObject};

/// A key's variants beyond this push out the oldest: a `Vary` on a field with unbounded values
/// (User-Agent) must not grow one key without limit.
const MAX_VARIANTS: usize = 16;

/// The counter a read bumps saturates here (the paper's 2 bits).
const MAX_FREQ: u8 = 3;

#[derive(Debug)]
struct Slot {
    variants: Vec<Arc<CachedObject>>,
    weight: usize,
    freq: u8,
    main: bool,
    /// Which queue entry is this slot's: entries of removed or replaced slots stay in the queues
    /// until they reach the front, where a mismatch skips them.
    gen: u64,
}

#[derive(Debug, Default)]
struct Inner {
    map: HashMap<CacheKey, Slot>,
    small: VecDeque<(CacheKey, u64)>,
    main: VecDeque<(CacheKey, u64)>,
    ghost: VecDeque<u64>,
    ghost_set: HashSet<u64>,
    hasher: std::collections::hash_map::RandomState,
    small_bytes: usize,
    main_bytes: usize,
    objects: usize,
    gen: u64,
}

/// Responses in memory, at most `max_bytes` of them (see [`CachedObject::charge`]).
#[derive(Debug)]
pub struct MemoryStore {
    inner: Mutex<Inner>,
    max_bytes: usize,
}

impl MemoryStore {
    /// A store of at most `max_bytes`.
    pub fn new(max_bytes: usize) -> Self {
        MemoryStore { inner: Mutex::new(Inner::default()), max_bytes }
    }
}

impl Inner {
    fn bytes(&self) -> usize {
        self.small_bytes + self.main_bytes
    }

    fn queue_bytes(&mut self, main: bool) -> &mut usize {
        if main {
            &mut self.main_bytes
        } else {
            &mut self.small_bytes
        }
    }

    fn drop_slot(&mut self, key: &CacheKey) {
        if let Some(s) = self.map.remove(key) {
            *self.queue_bytes(s.main) -= s.weight;
            self.objects -= s.variants.len();
        }
    }

    /// Evicts one key (or moves one from the small queue to the main one).
    fn evict(&mut self, max_bytes: usize) {
        if self.small_bytes > max_bytes / 10 || self.main.is_empty() {
            self.evict_small();
        } else {
            self.evict_main();
        }
    }

    fn evict_small(&mut self) {
        while let Some((key, gen)) = self.small.pop_front() {
            let Some(slot) = self.map.get_mut(&key).filter(|s| s.gen == gen && !s.main) else { continue };
            // Read while in the small queue: it has shown it is wanted (the paper asks for two
            // reads; the write that stored it is no read here, so one suffices).
            if slot.freq > 0 {
                slot.main = true;
                slot.freq = 0;
                let w = slot.weight;
                self.small_bytes -= w;
                self.main_bytes += w;
                self.main.push_back((key, gen));
                return;
            }
            let h = self.hasher.hash_one(&key);
            self.drop_slot(&key);
            self.ghost.push_back(h);
            self.ghost_set.insert(h);
            let bound = self.map.len().max(64);
            while self.ghost.len() > bound {
                if let Some(old) = self.ghost.pop_front() {
                    self.ghost_set.remove(&old);
                }
            }
            return;
        }
    }

    fn evict_main(&mut self) {
        while let Some((key, gen)) = self.main.pop_front() {
            let Some(slot) = self.map.get_mut(&key).filter(|s| s.gen == gen && s.main) else { continue };
            if slot.freq > 0 {
                slot.freq -= 1;
                self.main.push_back((key, gen));
                continue;
            }
            self.drop_slot(&key);
            return;
        }
    }

    /// Drops queue entries of slots that are gone once they outnumber the live ones.
    fn compact(&mut self) {
        if self.small.len() + self.main.len() <= 2 * self.map.len() + 1024 {
            return;
        }
        let map = &self.map;
        self.small.retain(|(k, g)| map.get(k).is_some_and(|s| s.gen == *g && !s.main));
        self.main.retain(|(k, g)| map.get(k).is_some_and(|s| s.gen == *g && s.main));
    }
}

impl Storage for MemoryStore {
    fn lookup(
        &self,
        key: &CacheKey,
        select: &mut dyn FnMut(&CachedObject) -> bool,
    ) -> Option<Arc<CachedObject>> {
        let mut inner = self.inner.lock();
        let slot = inner.map.get_mut(key)?;
        let found = slot.variants.iter().find(|o| select(o)).cloned();
        if found.is_some() {
            slot.freq = (slot.freq + 1).min(MAX_FREQ);
        }
        found
    }

    fn insert(&self, key: &CacheKey, obj: Arc<CachedObject>) -> bool {
        let w = obj.charge();
        if w > self.max_bytes {
            return false;
        }
        let mut inner = self.inner.lock();
        let inner = &mut *inner;
        if let Some(slot) = inner.map.get_mut(key) {
            let (old, added) = match slot.variants.iter().position(|o| o.meta.same_variant(&obj.meta)) {
                Some(i) => (std::mem::replace(&mut slot.variants[i], obj).charge(), 0),
                None if slot.variants.len() >= MAX_VARIANTS => {
                    slot.variants.push(obj);
                    (slot.variants.remove(0).charge(), 0)
                }
                None => {
                    slot.variants.push(obj);
                    (0, 1)
                }
            };
            slot.weight = slot.weight + w - old;
            let main = slot.main;
            inner.objects += added;
            let q = inner.queue_bytes(main);
            *q = *q + w - old;
        } else {
            let h = inner.hasher.hash_one(key);
            let main = inner.ghost_set.remove(&h);
            inner.gen += 1;
            let gen = inner.gen;
            inner.map.insert(key.clone(), Slot { variants: vec![obj], weight: w, freq: 0, main, gen });
            inner.objects += 1;
            *inner.queue_bytes(main) += w;
            if main {
                inner.main.push_back((key.clone(), gen));
            } else {
                inner.small.push_back((key.clone(), gen));
            }
        }
        while inner.bytes() > self.max_bytes && !(inner.small.is_empty() && inner.main.is_empty()) {
            inner.evict(self.max_bytes);
        }
        inner.compact();
        inner.map.contains_key(key)
    }

    fn remove(&self, key: &CacheKey) -> bool {
        let mut inner = self.inner.lock();
        let had = inner.map.contains_key(key);
        inner.drop_slot(key);
        inner.compact();
        had
    }

    fn usage(&self) -> Usage {
        let inner = self.inner.lock();
        Usage { bytes: inner.bytes(), objects: inner.objects }
    }
}

#[cfg(test)]
#[path = "memory_tests.rs"]
mod tests;
