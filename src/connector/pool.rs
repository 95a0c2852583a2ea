//! The idle connection pool (Pingora's `pingora-pool`), keyed by the peer's reuse hash.
//!
//! Two tiers. Each worker thread has a **hot slot** of its own: a short list, in the order
//! connections were put, of the connections it released last. A keep-alive request to a hot
//! upstream takes its connection from there and puts it back there, under a mutex only that worker
//! normally touches (no shared shard, no task, no timer per request), most recent first. Behind
//! them, the **cold** store is sharded by key and holds connections that stayed idle a while or did
//! not fit a hot slot; every worker looks there when its own slot has nothing for the key, and
//! then, before a new connection would be opened, in the other workers' hot slots.
//!
//! Idle connections are still closed when they expire or when the peer closes them (or sends bytes
//! nobody asked for), without waiting for traffic, so expired and half-closed sockets do not sit in
//! the pool (in CLOSE-WAIT) until the next checkout. Watching a connection that is reused a few
//! microseconds later is wasted work, so the hot tier is watched coarsely: one sweeper task per hot
//! slot wakes every [`TICK`] while the slot holds anything (and parks otherwise), closes what has
//! expired, and moves what stayed idle since its previous sweep to the cold tier. There each
//! connection gets a watcher task on the runtime that owns its socket, which closes it on expiry or
//! on a socket event; the watcher only polls readiness (`&self`), so a checkout stays one lock and
//! no await, and a checkout stops the watcher. A connection is thus watched by an event within
//! two ticks of going idle, and every checkout still probes it without blocking first.
//!
//! Tokio I/O objects belong to the runtime that created them, so in the non-work-stealing mode
//! each runtime's connections are kept apart: the worker slot is part of the key in both tiers, and
//! each such runtime's thread has a hot slot of its own.

use std::cell::Cell;
use std::collections::{HashMap, VecDeque};
use std::future::{poll_fn, Future};
use std::hash::{BuildHasher, Hasher};
use std::pin::pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Weak};
use std::task::{Poll, Waker};
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use tokio::runtime::Handle;
use tokio::task::AbortHandle;

use crate::protocol::h1::conn::H1Conn;

const SHARDS: usize = 16;
/// Hot slots per pool (at most 64: a bit each in `Inner::used`); worker threads are numbered on
/// first use and share a slot beyond this.
const HOT_SLOTS: usize = 64;
const _: () = assert!(HOT_SLOTS <= 64);
/// Connections one hot slot holds before its oldest moves to the cold tier.
const HOT_CAP: usize = 64;
/// How often a hot slot's sweeper runs while the slot holds connections: a connection is moved to
/// the cold tier (and watched there) after one to two ticks of idleness.
const TICK: Duration = Duration::from_millis(250);

/// A cold idle connection.
struct Idle {
    conn: H1Conn,
    expires: Option<Instant>,
    /// Tells this entry apart for its watcher (entries move within their list).
    id: u64,
    /// The watcher, stopped when the connection is taken (it would otherwise wait for its timer).
    watcher: Option<AbortHandle>,
}

/// A hot idle connection.
struct HotIdle {
    key: u64,
    conn: H1Conn,
    expires: Option<Instant>,
    /// The slot's sweep count when it was put: older than the slot's count means it was already
    /// there at the previous sweep.
    epoch: u64,
}

impl HotIdle {
    fn expired(&self, now: Instant) -> bool {
        self.expires.is_some_and(|e| e <= now)
    }
}

/// One worker's hot slot.
#[derive(Default)]
struct Hot {
    /// In the order they were put (oldest first).
    idle: VecDeque<HotIdle>,
    /// Sweeps so far.
    epoch: u64,
    sweeper: Sweeper,
}

/// What a hot slot knows of its sweeper task.
#[derive(Default)]
struct Sweeper {
    /// A sweeper task exists.
    running: bool,
    /// A put wants a sweep now (the sweeper was parked, or a connection expires before `next`).
    kicked: bool,
    /// When the sweeper wakes by itself; `None` while it is parked (the slot was empty).
    next: Option<Instant>,
    waker: Option<Waker>,
}

impl Hot {
    /// The most recent connection for `key`.
    fn take(&mut self, key: u64) -> Option<HotIdle> {
        let at = self.idle.iter().rposition(|i| i.key == key)?;
        self.idle.remove(at)
    }
}

impl Drop for Hot {
    fn drop(&mut self) {
        // The pool is going away: a parked sweeper would otherwise never be polled again.
        if let Some(w) = self.sweeper.waker.take() {
            w.wake();
        }
    }
}

/// Keeps each worker's hot slot on a cache line (two, for adjacent-line prefetch) of its own.
#[repr(align(128))]
struct Padded<T>(T);

type Shard = Mutex<HashMap<u64, VecDeque<Idle>, IdentityHash>>;

/// Idle upstream connections, shared by every request of a service.
pub struct ConnectionPool {
    inner: Arc<Inner>,
}

/// What the sweepers and watchers share with the pool; they hold it weakly so a dropped pool ends
/// them.
struct Inner {
    hot: Box<[Padded<Mutex<Hot>>]>,
    /// Bit `i` set: hot slot `i` has had connections (`HOT_SLOTS` bits).
    used: AtomicU64,
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

/// What the pool knows of the current thread, in one thread-local (each access to one costs a
/// call in a shared library).
struct Worker {
    /// The runtime this thread belongs to (non-work-stealing services; 0 otherwise).
    slot: Cell<u64>,
    /// Its hot slot, numbered on first use (the same in every pool); `usize::MAX` until then.
    hot: Cell<usize>,
}

impl Worker {
    fn key(&self, key: u64) -> u64 {
        key ^ self.slot.get().wrapping_mul(0x9E37_79B9_7F4A_7C15)
    }

    fn hot(&self) -> usize {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        match self.hot.get() {
            usize::MAX => {
                let n = NEXT.fetch_add(1, Ordering::Relaxed) % HOT_SLOTS;
                self.hot.set(n);
                n
            }
            n => n,
        }
    }
}

thread_local! {
    static WORKER: Worker = const { Worker { slot: Cell::new(0), hot: Cell::new(usize::MAX) } };
}

/// Marks the current thread as belonging to runtime `slot` (non-work-stealing services only).
pub(crate) fn set_worker_slot(slot: u64) {
    WORKER.with(|w| w.slot.set(slot));
}

/// `key` for the current thread's runtime: connections of isolated runtimes never mix.
pub(crate) fn slot_key(key: u64) -> u64 {
    WORKER.with(|w| w.key(key))
}

/// [`slot_key`] and the current thread's hot slot.
fn here(key: u64) -> (u64, usize) {
    WORKER.with(|w| (w.key(key), w.hot()))
}

impl ConnectionPool {
    /// Default bound on idle connections in one pool.
    pub(crate) const DEFAULT_MAX_IDLE: usize = 1024;

    /// A pool that keeps at most `max_idle` idle connections.
    pub fn new(max_idle: usize) -> Self {
        let shards = (0..SHARDS).map(|_| Mutex::new(HashMap::with_hasher(IdentityHash::default()))).collect();
        let hot = (0..HOT_SLOTS).map(|_| Padded(Mutex::new(Hot::default()))).collect();
        let inner = Inner {
            hot,
            used: AtomicU64::new(0),
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
    /// likely to have been closed by the upstream): this worker's hot slot first, then the cold
    /// tier, then (rather than opening a new connection) the other workers' hot slots. Expired or
    /// closed ones met on the way are dropped, outside the locks.
    pub fn take(&self, key: u64) -> Option<H1Conn> {
        let p = &*self.inner;
        let (key, at) = here(key);
        while let Some(idle) = p.hot[at].0.lock().take(key) {
            p.idle.fetch_sub(1, Ordering::Relaxed);
            if let Some(conn) = p.checked(idle.conn, idle.expires) {
                return Some(conn);
            }
        }
        loop {
            let idle = {
                let mut shard = p.shard(key).lock();
                shard.get_mut(&key).and_then(VecDeque::pop_back)
            };
            let Some(mut idle) = idle else { break };
            p.idle.fetch_sub(1, Ordering::Relaxed);
            if let Some(w) = idle.watcher.take() {
                w.abort();
            }
            if let Some(conn) = p.checked(idle.conn, idle.expires) {
                return Some(conn);
            }
        }
        // Tasks move between the workers of a work-stealing runtime, so another worker may hold
        // one put moments ago. Only slots that were ever used are looked at, and a busy one is
        // skipped: this runs before a new connection would be opened, never on a hit.
        let mut others = p.used.load(Ordering::Relaxed) & !(1 << at);
        while others != 0 {
            let i = others.trailing_zeros() as usize;
            others &= others - 1;
            loop {
                let Some(idle) = p.hot[i].0.try_lock().and_then(|mut h| h.take(key)) else { break };
                p.idle.fetch_sub(1, Ordering::Relaxed);
                if let Some(conn) = p.checked(idle.conn, idle.expires) {
                    return Some(conn);
                }
            }
        }
        None
    }

    /// Offers an idle connection for `key`, to this worker's hot slot. Dropped (closed) when the
    /// pool is full.
    ///
    /// Called from a task of the runtime that owns the connection's socket (the slot's sweeper and
    /// the cold tier's watchers run there); outside any runtime the connection goes to the cold
    /// tier unwatched and is only checked at checkout.
    pub fn put(&self, key: u64, conn: H1Conn, expires: Option<Instant>) {
        let p = &*self.inner;
        if p.idle.fetch_add(1, Ordering::Relaxed) >= p.max_idle {
            p.idle.fetch_sub(1, Ordering::Relaxed);
            p.discarded.fetch_add(1, Ordering::Relaxed);
            return;
        }
        let (key, at) = here(key);
        let slot = &p.hot[at].0;
        let mut hot = slot.lock();
        let mut start = None;
        if !hot.sweeper.running {
            // First put on this worker (or the runtime of its last sweeper ended): start a sweeper
            // on the runtime running this put, which owns the connection's socket.
            drop(hot);
            let Ok(rt) = Handle::try_current() else {
                return put_cold(&self.inner, key, conn, expires);
            };
            hot = slot.lock();
            if !hot.sweeper.running {
                hot.sweeper.running = true;
                start = Some(rt);
                p.used.fetch_or(1 << at, Ordering::Relaxed);
            }
        }
        let epoch = hot.epoch;
        hot.idle.push_back(HotIdle { key, conn, expires, epoch });
        let evicted = if hot.idle.len() > HOT_CAP { hot.idle.pop_front() } else { None };
        let s = &mut hot.sweeper;
        let sooner = match (s.next, expires) {
            (None, _) => true,
            (Some(next), Some(e)) => e < next,
            (Some(_), None) => false,
        };
        let waker = if sooner && !s.kicked {
            s.kicked = true;
            s.waker.take()
        } else {
            None
        };
        drop(hot);
        if let Some(w) = waker {
            w.wake();
        }
        if let Some(rt) = start {
            // Spawned outside the lock: a runtime that is shutting down drops the task at once,
            // and `Running` then takes the lock to say there is no sweeper.
            rt.spawn(sweep(Running(Arc::downgrade(&self.inner), at)));
        }
        if let Some(e) = evicted {
            put_cold(&self.inner, e.key, e.conn, e.expires);
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

    /// Connections in the current thread's hot slot and in the cold tier.
    #[cfg(test)]
    fn tiers(&self) -> (usize, usize) {
        let p = &*self.inner;
        let hot = p.hot[here(0).1].0.lock().idle.len();
        let cold = p.shards.iter().map(|s| s.lock().values().map(VecDeque::len).sum::<usize>()).sum();
        (hot, cold)
    }
}

impl Inner {
    fn shard(&self, key: u64) -> &Shard {
        &self.shards[(key as usize) % SHARDS]
    }

    /// `conn` if it may carry a request (not expired, not closed, nothing unread), counted as
    /// reused; else it is dropped (closed) and counted as discarded. Called outside the locks.
    fn checked(&self, conn: H1Conn, expires: Option<Instant>) -> Option<H1Conn> {
        if expires.is_some_and(|e| e <= Instant::now()) || conn.io.is_closed_or_dirty() {
            self.discarded.fetch_add(1, Ordering::Relaxed);
            return None;
        }
        self.reused.fetch_add(1, Ordering::Relaxed);
        Some(conn)
    }

    /// Counts `n` idle connections dropped by the pool.
    fn dropped(&self, n: usize) {
        if n > 0 {
            self.idle.fetch_sub(n, Ordering::Relaxed);
            self.discarded.fetch_add(n as u64, Ordering::Relaxed);
        }
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
        self.dropped(1);
        drop(idle);
        Some(true)
    }
}

/// Puts an idle connection (already counted in `idle`) in the cold tier, with a watcher on the
/// current runtime if there is one.
fn put_cold(inner: &Arc<Inner>, key: u64, mut conn: H1Conn, expires: Option<Instant>) {
    // Past the hot slot a connection may wait long, and a pool can hold a thousand: like an idle
    // downstream connection it holds no buffer or timer while it waits (the hot slot's keep
    // theirs, for the request that usually comes at once).
    conn.release_buffers();
    let p = &**inner;
    let id = p.next_id.fetch_add(1, Ordering::Relaxed);
    let rt = Handle::try_current().ok();
    let now = Instant::now();
    let mut expired = Vec::new();
    {
        let mut shard = p.shard(key).lock();
        let list = shard.entry(key).or_default();
        // Expired connections sit at the front (oldest first); sweep them while we hold the lock.
        while list.front().is_some_and(|i| i.expires.is_some_and(|e| e <= now)) {
            expired.extend(list.pop_front());
        }
        // Spawned under the lock, so the watcher's first poll (which takes it) finds its entry.
        let watcher = rt.map(|rt| rt.spawn(watch(Arc::downgrade(inner), key, id, expires)).abort_handle());
        list.push_back(Idle { conn, expires, id, watcher });
    }
    for i in &mut expired {
        if let Some(w) = i.watcher.take() {
            w.abort();
        }
    }
    p.dropped(expired.len());
}

/// Sweeps hot slot `at` while it holds connections: closes the expired ones and moves those that
/// were already there at the previous sweep to the cold tier. Parks (no timer) when it finds the
/// slot empty, until a put kicks it.
async fn sweep(running: Running) {
    let Running(pool, at) = &running;
    let at = *at;
    let mut timer = pin!(tokio::time::sleep(TICK));
    loop {
        let woken = poll_fn(|cx| {
            let Some(p) = pool.upgrade() else { return Poll::Ready(false) };
            let mut hot = p.hot[at].0.lock();
            let s = &mut hot.sweeper;
            if std::mem::take(&mut s.kicked) {
                return Poll::Ready(true);
            }
            if let Some(next) = s.next {
                let next = tokio::time::Instant::from_std(next);
                if timer.deadline() != next {
                    timer.as_mut().reset(next);
                }
                if timer.as_mut().poll(cx).is_ready() {
                    return Poll::Ready(true);
                }
            }
            if !s.waker.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
                s.waker = Some(cx.waker().clone());
            }
            Poll::Pending
        })
        .await;
        let Some(p) = pool.upgrade().filter(|_| woken) else { return };
        let now = Instant::now();
        let (mut moved, mut expired) = (Vec::new(), Vec::new());
        {
            let mut hot = p.hot[at].0.lock();
            let epoch = hot.epoch;
            while hot.idle.front().is_some_and(|i| i.epoch < epoch) {
                let Some(i) = hot.idle.pop_front() else { break };
                if i.expired(now) {
                    expired.push(i)
                } else {
                    moved.push(i)
                }
            }
            // Idle timeouts differ by peer, so expired connections may sit anywhere.
            if hot.idle.iter().any(|i| i.expired(now)) {
                let (old, keep): (VecDeque<_>, VecDeque<_>) =
                    std::mem::take(&mut hot.idle).into_iter().partition(|i| i.expired(now));
                hot.idle = keep;
                expired.extend(old);
            }
            hot.epoch += 1;
            let soonest = hot.idle.iter().filter_map(|i| i.expires).min();
            hot.sweeper.next = match soonest {
                _ if hot.idle.is_empty() => None,
                Some(e) => Some(e.min(now + TICK)),
                None => Some(now + TICK),
            };
        }
        p.dropped(expired.len());
        drop(expired);
        for i in moved.drain(..) {
            put_cold(&p, i.key, i.conn, i.expires);
        }
    }
}

/// Owned by a hot slot's sweeper task: tells the slot when the task ends, so the next put starts
/// another one (it ends with its pool, or is dropped with its runtime, maybe before it ever ran).
struct Running(Weak<Inner>, usize);

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(p) = self.0.upgrade() {
            let gone = std::mem::take(&mut p.hot[self.1].0.lock().sweeper);
            drop(gone); // its waker, outside the lock
        }
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

#[cfg(test)]
mod tests {
    use std::future::Future;

    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::{TcpListener, TcpStream};

    use super::*;
    use crate::error::ErrorSource;
    use crate::protocol::stream::Stream;

    const KEY: u64 = 42;

    /// Fails the test instead of hanging it when `fut` does not finish in time.
    async fn within<F: Future>(fut: F) -> F::Output {
        tokio::time::timeout(Duration::from_secs(5), fut).await.expect("no event within 5 s")
    }

    /// A connected pair: the pooled client side and the server side it talks to.
    async fn pair(listener: &TcpListener) -> (H1Conn, TcpStream) {
        let (client, server) =
            tokio::join!(TcpStream::connect(listener.local_addr().unwrap()), listener.accept());
        (H1Conn::new(Stream::Tcp(client.unwrap()), ErrorSource::Upstream), server.unwrap().0)
    }

    async fn listener() -> TcpListener {
        TcpListener::bind("127.0.0.1:0").await.unwrap()
    }

    /// Resolves once the pool has closed its side of `server`'s connection (EOF, or a reset).
    async fn closed_by_pool(mut server: TcpStream) {
        let mut buf = [0u8; 16];
        if let Ok(n @ 1..) = server.read(&mut buf).await {
            panic!("the pool sent {n} bytes on an idle connection");
        }
    }

    fn later() -> Option<Instant> {
        Some(Instant::now() + Duration::from_secs(60))
    }

    #[tokio::test]
    async fn take_after_put_on_the_same_worker_hits_the_hot_slot() {
        let l = listener().await;
        let pool = ConnectionPool::new(8);
        let (conn, _server) = pair(&l).await;
        pool.put(KEY, conn, later());
        assert_eq!(pool.tiers(), (1, 0));
        let tasks = Handle::current().metrics().num_alive_tasks();
        for _ in 0..100 {
            let conn = pool.take(KEY).expect("the hot connection");
            assert_eq!(pool.tiers(), (0, 0));
            pool.put(KEY, conn, later());
        }
        assert_eq!(pool.tiers(), (1, 0));
        assert!(pool.take(KEY + 1).is_none(), "another key finds nothing");
        assert_eq!(pool.stats(), PoolStats { idle: 1, reused: 100, discarded: 0 });
        // No task (a watcher, a timer) per put: only the slot's sweeper, started by the first put.
        assert_eq!(Handle::current().metrics().num_alive_tasks(), tasks);
        assert_eq!(tasks, 1);
    }

    #[tokio::test]
    async fn most_recent_first_and_overflow_goes_cold() {
        let l = listener().await;
        let pool = ConnectionPool::new(1024);
        let mut servers = Vec::new();
        let mut ports = Vec::new();
        for _ in 0..HOT_CAP + 1 {
            let (mut conn, server) = pair(&l).await;
            ports.push(conn.addrs().1.unwrap());
            servers.push(server);
            pool.put(KEY, conn, later());
        }
        assert_eq!(pool.tiers(), (HOT_CAP, 1), "the oldest moved to the cold tier");
        let mut last = pool.take(KEY).unwrap();
        assert_eq!(last.addrs().1, ports.last().cloned(), "the most recent first");
        for _ in 0..HOT_CAP - 1 {
            pool.take(KEY).unwrap();
        }
        let mut first = pool.take(KEY).unwrap();
        assert_eq!(first.addrs().1, ports.first().cloned(), "then the cold tier");
        assert!(pool.take(KEY).is_none());
        assert_eq!(pool.stats(), PoolStats { idle: 0, reused: HOT_CAP as u64 + 1, discarded: 0 });
    }

    #[tokio::test]
    async fn max_idle_bounds_both_tiers() {
        let l = listener().await;
        let pool = ConnectionPool::new(2);
        let mut servers = Vec::new();
        for _ in 0..3 {
            let (conn, server) = pair(&l).await;
            servers.push(server);
            pool.put(KEY, conn, later());
        }
        assert_eq!(pool.stats(), PoolStats { idle: 2, reused: 0, discarded: 1 });
        // The one that did not fit was closed at once.
        within(closed_by_pool(servers.pop().unwrap())).await;
    }

    #[tokio::test]
    async fn expired_hot_connection_is_not_handed_out() {
        let l = listener().await;
        let pool = ConnectionPool::new(8);
        let (conn, server) = pair(&l).await;
        pool.put(KEY, conn, Some(Instant::now()));
        assert!(pool.take(KEY).is_none());
        assert_eq!(pool.stats(), PoolStats { idle: 0, reused: 0, discarded: 1 });
        within(closed_by_pool(server)).await;
    }

    #[tokio::test]
    async fn expired_hot_connection_is_closed_without_traffic() {
        let l = listener().await;
        let pool = ConnectionPool::new(8);
        let (conn, server) = pair(&l).await;
        pool.put(KEY, conn, Some(Instant::now() + Duration::from_millis(50)));
        within(closed_by_pool(server)).await;
        assert_eq!(pool.stats(), PoolStats { idle: 0, reused: 0, discarded: 1 });
        assert_eq!(pool.tiers(), (0, 0));
    }

    #[tokio::test]
    async fn hot_connection_closed_by_the_peer_is_not_handed_out() {
        let l = listener().await;
        let pool = ConnectionPool::new(8);
        let (conn, mut server) = pair(&l).await;
        server.shutdown().await.unwrap();
        // Wait until the reactor has seen the FIN, as it would have by the time a request comes.
        poll_fn(|cx| conn.io.poll_idle_event(cx)).await;
        pool.put(KEY, conn, later());
        assert!(pool.take(KEY).is_none());
        assert_eq!(pool.stats(), PoolStats { idle: 0, reused: 0, discarded: 1 });
        within(closed_by_pool(server)).await;
    }

    #[tokio::test]
    async fn hot_connection_closed_by_the_peer_is_closed_without_traffic() {
        let l = listener().await;
        let pool = ConnectionPool::new(8);
        let (conn, mut server) = pair(&l).await;
        let (fresh, _other) = pair(&l).await;
        pool.put(KEY, conn, later());
        pool.put(KEY + 1, fresh, later());
        server.shutdown().await.unwrap();
        within(closed_by_pool(server)).await;
        assert_eq!(pool.stats(), PoolStats { idle: 1, reused: 0, discarded: 1 });
        // The other one stays pooled (in the cold tier by now) and healthy.
        assert!(pool.take(KEY + 1).is_some());
    }

    /// A task that moved to another worker of the runtime finds the connection the first one put
    /// rather than opening a new one.
    #[tokio::test]
    async fn a_miss_takes_from_another_workers_hot_slot() {
        let l = listener().await;
        let pool = ConnectionPool::new(8);
        let (conn, _server) = pair(&l).await;
        pool.put(KEY, conn, later());
        let rt = Handle::current();
        let elsewhere = std::thread::scope(|s| {
            s.spawn(|| {
                let _in = rt.enter();
                (pool.take(KEY).is_some(), pool.take(KEY).is_some())
            })
            .join()
            .unwrap()
        });
        assert_eq!(elsewhere, (true, false));
        assert_eq!(pool.stats(), PoolStats { idle: 0, reused: 1, discarded: 0 });
        assert_eq!(pool.tiers(), (0, 0));
    }

    /// Connections of isolated runtimes never mix, even in one hot slot (threads beyond
    /// `HOT_SLOTS` share one): the runtime slot is part of the key there too.
    #[tokio::test]
    async fn isolated_runtimes_keep_their_connections_apart() {
        let l = listener().await;
        let pool = ConnectionPool::new(8);
        let (conn, _server) = pair(&l).await;
        set_worker_slot(7);
        pool.put(KEY, conn, later());
        set_worker_slot(8);
        assert!(pool.take(KEY).is_none(), "another runtime's connection");
        set_worker_slot(7);
        assert!(pool.take(KEY).is_some());
        set_worker_slot(0);
    }

    /// Many tasks on a work-stealing runtime taking and putting connections to a few keys at once:
    /// every connection is accounted for (in use, in a hot slot, in the cold tier) and the
    /// counters agree with what the tasks saw.
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn counters_hold_under_concurrent_workers() {
        const TASKS: usize = 16;
        const ROUNDS: usize = 200;
        let l = Arc::new(listener().await);
        let pool = Arc::new(ConnectionPool::new(1024));
        let servers = Arc::new(Mutex::new(Vec::new()));
        let mut tasks = Vec::new();
        for t in 0..TASKS {
            let (l, pool, servers) = (l.clone(), pool.clone(), servers.clone());
            tasks.push(tokio::spawn(async move {
                let mut opened = 0u64;
                for r in 0..ROUNDS {
                    let key = ((t + r) % 3) as u64;
                    let conn = match pool.take(key) {
                        Some(c) => c,
                        None => {
                            opened += 1;
                            let (c, server) = pair(&l).await;
                            servers.lock().push(server);
                            c
                        }
                    };
                    tokio::task::yield_now().await;
                    pool.put(key, conn, later());
                }
                opened
            }));
        }
        let mut opened = 0;
        for t in tasks {
            opened += t.await.unwrap();
        }
        let s = pool.stats();
        assert_eq!(s.reused + opened, (TASKS * ROUNDS) as u64, "{s:?}");
        assert_eq!(s.discarded, 0, "{s:?}");
        assert_eq!(s.idle as u64, opened, "every connection opened is idle again: {s:?}");
        let p = &pool.inner;
        let hot: usize = p.hot.iter().map(|h| h.0.lock().idle.len()).sum();
        let cold: usize = p.shards.iter().map(|s| s.lock().values().map(VecDeque::len).sum::<usize>()).sum();
        assert_eq!(hot + cold, s.idle);
    }

    #[tokio::test]
    async fn a_taken_cold_connection_stops_its_watcher() {
        let l = listener().await;
        let pool = ConnectionPool::new(8);
        let (conn, _server) = pair(&l).await;
        // Outside the hot tier's reach: as if it had stayed idle past a sweep.
        pool.inner.idle.fetch_add(1, Ordering::Relaxed);
        put_cold(&pool.inner, slot_key(KEY), conn, later());
        assert_eq!(pool.tiers(), (0, 1));
        let tasks = Handle::current().metrics().num_alive_tasks();
        assert_eq!(tasks, 1, "its watcher");
        let conn = pool.take(KEY).expect("the cold connection");
        within(async {
            while Handle::current().metrics().num_alive_tasks() > 0 {
                tokio::task::yield_now().await;
            }
        })
        .await;
        drop(conn);
    }
}
