//! The cache lock: of many concurrent misses for one key, one goes upstream (the writer) and the
//! others wait for it to store the response, then read it from the cache. A waiter gives up after
//! a timeout and goes upstream itself, so a slow or stuck writer delays the others by at most that.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use tokio::sync::Notify;

use super::CacheKey;

/// The keys being fetched, each with what its waiters wait on.
#[derive(Debug, Default)]
pub struct CacheLock {
    pending: Mutex<HashMap<CacheKey, Arc<Pending>>>,
    /// Requests waiting on some writer right now (for tests and metrics).
    waiting: AtomicUsize,
}

/// One key's fetch in progress.
#[derive(Debug, Default)]
pub struct Pending {
    done: AtomicBool,
    notify: Notify,
}

/// Held by the request fetching a key; dropping it (stored, not storable, failed) releases the
/// waiters.
#[derive(Debug)]
pub struct WriteLock {
    lock: Arc<CacheLock>,
    key: CacheKey,
    pending: Arc<Pending>,
}

/// What [`CacheLock::lock`] hands out.
#[derive(Debug)]
pub enum Locked {
    /// Fetch it; the others wait for you.
    Write(WriteLock),
    /// Someone else fetches it: [`CacheLock::wait`] for them.
    Wait(Arc<Pending>),
}

impl CacheLock {
    /// Becomes the writer of `key`, or a waiter when another request already is.
    pub fn lock(self: &Arc<Self>, key: &CacheKey) -> Locked {
        let mut map = self.pending.lock();
        if let Some(p) = map.get(key) {
            return Locked::Wait(p.clone());
        }
        let pending = Arc::new(Pending::default());
        map.insert(key.clone(), pending.clone());
        Locked::Write(WriteLock { lock: self.clone(), key: key.clone(), pending })
    }

    /// Waits until the writer of `p` is done or `timeout` passes; whether it was done.
    pub async fn wait(&self, p: &Pending, timeout: Duration) -> bool {
        self.waiting.fetch_add(1, Ordering::SeqCst);
        let released = tokio::time::timeout(timeout, async {
            loop {
                let notified = p.notify.notified();
                tokio::pin!(notified);
                // Registered before the check, so a release between the two is not missed.
                notified.as_mut().enable();
                if p.done.load(Ordering::Acquire) {
                    return;
                }
                notified.await;
            }
        })
        .await
        .is_ok();
        self.waiting.fetch_sub(1, Ordering::SeqCst);
        released
    }

    /// Requests waiting on a writer now.
    pub fn waiting(&self) -> usize {
        self.waiting.load(Ordering::SeqCst)
    }
}

impl Drop for WriteLock {
    fn drop(&mut self) {
        {
            let mut map = self.lock.pending.lock();
            if map.get(&self.key).is_some_and(|p| Arc::ptr_eq(p, &self.pending)) {
                map.remove(&self.key);
            }
        }
        self.pending.done.store(true, Ordering::Release);
        self.pending.notify.notify_waiters();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn one_writer_the_rest_wait_until_it_is_done() {
        let lock = Arc::new(CacheLock::default());
        let key = CacheKey::custom("k");
        let Locked::Write(w) = lock.lock(&key) else { panic!("first is the writer") };
        let Locked::Wait(p) = lock.lock(&key) else { panic!("second waits") };
        let l2 = lock.clone();
        let waiter = tokio::spawn(async move { l2.wait(&p, Duration::from_secs(30)).await });
        while lock.waiting() == 0 {
            tokio::task::yield_now().await;
        }
        drop(w);
        assert!(waiter.await.unwrap());
        assert!(matches!(lock.lock(&key), Locked::Write(_)), "released keys can be locked again");
    }

    #[tokio::test(start_paused = true)]
    async fn a_waiter_gives_up_after_the_timeout() {
        let lock = Arc::new(CacheLock::default());
        let key = CacheKey::custom("k");
        let _w = lock.lock(&key);
        let Locked::Wait(p) = lock.lock(&key) else { panic!("second waits") };
        assert!(!lock.wait(&p, Duration::from_secs(1)).await);
        assert_eq!(lock.waiting(), 0);
    }
}
