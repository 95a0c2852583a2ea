//! Which keys answered with something not storable lately. A miss for such a key skips the cache
//! lock: otherwise concurrent requests for an uncacheable URL (an API endpoint, a page with
//! Set-Cookie) would queue behind each other's response heads for nothing (Pingora's
//! `CacheablePredictor` does the same). Bounded: the oldest keys are forgotten first.

use std::collections::hash_map::RandomState;
use std::collections::{HashSet, VecDeque};
use std::hash::BuildHasher;

use parking_lot::Mutex;

use super::CacheKey;

/// Keys remembered at most.
const CAPACITY: usize = 4096;

/// Recently uncacheable keys, by hash: a collision only makes a request skip the lock.
#[derive(Debug, Default)]
pub struct Uncacheable {
    inner: Mutex<(HashSet<u64>, VecDeque<u64>)>,
    hasher: RandomState,
}

impl Uncacheable {
    /// Whether `key` answered with something not storable last time.
    pub fn contains(&self, key: &CacheKey) -> bool {
        let h = self.hasher.hash_one(key);
        self.inner.lock().0.contains(&h)
    }

    /// Records whether `key`'s latest response was storable.
    pub fn note(&self, key: &CacheKey, storable: bool) {
        let h = self.hasher.hash_one(key);
        let mut guard = self.inner.lock();
        let (set, order) = &mut *guard;
        if storable {
            set.remove(&h);
            return;
        }
        if set.insert(h) {
            order.push_back(h);
        }
        // The queue may hold keys already taken out of the set; they go when they reach its front.
        while order.len() > CAPACITY {
            if let Some(old) = order.pop_front() {
                set.remove(&old);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remembers_until_storable_and_forgets_the_oldest() {
        let u = Uncacheable::default();
        let k = |i: usize| CacheKey::custom(format!("k{i}"));
        u.note(&k(0), false);
        assert!(u.contains(&k(0)));
        u.note(&k(0), true);
        assert!(!u.contains(&k(0)));
        for i in 1..=CAPACITY + 1 {
            u.note(&k(i), false);
        }
        assert!(!u.contains(&k(1)), "the oldest is forgotten");
        assert!(u.contains(&k(CAPACITY + 1)));
    }
}
