//! An upstream group: backends published as an immutable snapshot that every pick reads without
//! a lock, replaced whole when the backends change (the host's API, DNS discovery); selection
//! over it honouring health, retries and per-backend caps.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use arc_swap::ArcSwap;
use parking_lot::Mutex;

use super::backend::{Backend, BackendFigures, BackendState};
use super::outlier::{HealthEvent, Outcome, Outlier, OutlierDetection, Standing};
use super::selection::{Algorithm, Candidates, Selector};
use super::HttpPeer;
use crate::error::{Error, ErrorKind, ErrorSource, Result};

/// Called with a backend's name when its health changes. Runs on whichever thread noticed (a
/// worker during a pick, a health check's thread); must not block.
pub type HealthListener = Arc<dyn Fn(&str, HealthEvent) + Send + Sync>;

/// A group of backends and how to choose among them. Cheap to clone: clones share everything.
#[derive(Clone)]
pub struct UpstreamGroup {
    shared: Arc<Shared>,
}

struct Shared {
    name: String,
    algorithm: Algorithm,
    snapshot: ArcSwap<Snapshot>,
    outlier: Outlier,
    /// Requests in flight allowed per backend (0: no cap).
    max_in_flight: AtomicU64,
    max_connections: AtomicU64,
    /// Serialises writers; readers never take it.
    update: Mutex<()>,
    listener: Mutex<Option<HealthListener>>,
}

/// The backends at one moment, with the selection table built for them.
struct Snapshot {
    backends: Vec<Arc<BackendState>>,
    selector: Selector,
}

impl std::fmt::Debug for UpstreamGroup {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UpstreamGroup")
            .field("name", &self.shared.name)
            .field("algorithm", &self.shared.algorithm)
            .field("backends", &self.shared.snapshot.load().backends.len())
            .finish()
    }
}

/// Backends a request already tried, excluded from its next pick. Up to eight are remembered
/// inline (a request that retries more often than that may see one again).
#[derive(Debug, Clone, Copy, Default)]
pub struct Tried {
    ids: [u64; 8],
    n: usize,
}

impl Tried {
    fn contains(&self, id: u64) -> bool {
        self.ids[..self.n].contains(&id)
    }

    fn add(&mut self, id: u64) {
        if self.n < self.ids.len() {
            self.ids[self.n] = id;
            self.n += 1;
        }
    }

    /// How many backends were tried.
    pub fn len(&self) -> usize {
        self.n
    }

    /// Whether none was.
    pub fn is_empty(&self) -> bool {
        self.n == 0
    }
}

/// A backend chosen for one attempt. It counts as in flight on the backend until dropped;
/// [`Pick::report`] tells passive health how the attempt went.
pub struct Pick {
    state: Arc<BackendState>,
    group: Arc<Shared>,
}

impl std::fmt::Debug for Pick {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pick").field("backend", &self.state.backend.name).finish()
    }
}

impl Pick {
    /// The peer to connect to.
    pub fn peer(&self) -> &HttpPeer {
        &self.state.backend.peer
    }

    /// The backend's name.
    pub fn name(&self) -> &str {
        &self.state.backend.name
    }

    /// The backend's name, shared.
    pub fn label(&self) -> Arc<str> {
        self.state.label.clone()
    }

    /// A count of one more connection open to this backend, for the connection that this
    /// attempt opens to hold until it closes (see [`UpstreamGroup::set_max_connections`]).
    pub fn count_connection(&self) -> ConnectionCount {
        self.state.connections.fetch_add(1, Ordering::AcqRel);
        ConnectionCount(self.state.clone())
    }

    /// Counts the attempt's outcome towards passive health.
    pub fn report(&self, outcome: Outcome) {
        let g = &self.group;
        let size = g.snapshot.load().backends.len();
        if g.outlier.report(&self.state, outcome, size) {
            g.notify(&self.state.backend.name, HealthEvent::Ejected);
        }
    }
}

impl Drop for Pick {
    fn drop(&mut self) {
        self.state.in_flight.fetch_sub(1, Ordering::AcqRel);
    }
}

/// One open connection of a backend, counted until this is dropped (with the connection,
/// wherever it ends: closed after use, evicted from the pool, failed).
#[derive(Debug)]
pub struct ConnectionCount(Arc<BackendState>);

impl Drop for ConnectionCount {
    fn drop(&mut self) {
        self.0.connections.fetch_sub(1, Ordering::AcqRel);
    }
}

/// The usability test a pick applies to snapshot entries.
struct Usable<'a> {
    group: &'a Shared,
    backends: &'a [Arc<BackendState>],
    tried: &'a Tried,
    /// The clock, read only when something is ejected.
    now: Option<u64>,
    cap: u64,
    /// Connections allowed per backend (0: no cap).
    conn_cap: u64,
    /// Panic routing: every backend is down or ejected, so health is ignored.
    ignore_health: bool,
}

impl Candidates for Usable<'_> {
    fn usable(&self, i: usize) -> bool {
        let b = &self.backends[i];
        if self.tried.contains(b.id) || (self.cap != 0 && b.in_flight.load(Ordering::Relaxed) >= self.cap) {
            return false;
        }
        if self.conn_cap != 0 && needs_connection_past(b, self.conn_cap) {
            return false;
        }
        if self.ignore_health {
            return true;
        }
        if !b.healthy.load(Ordering::Relaxed) {
            return false;
        }
        match self.now.map(|now| self.group.outlier.standing(b, now)) {
            None | Some(Standing::In) => true,
            Some(Standing::Ejected) => false,
            Some(Standing::Readmitted) => {
                self.group.notify(&b.backend.name, HealthEvent::Readmitted);
                true
            }
        }
    }

    fn load(&self, i: usize) -> u64 {
        self.backends[i].in_flight.load(Ordering::Relaxed)
    }
}

/// Whether a request to `b` would have to open a connection beyond `cap`: it has `cap` open and
/// every one of them is busy with a request (HTTP/1 carries one at a time), so none is idle to
/// reuse.
fn needs_connection_past(b: &BackendState, cap: u64) -> bool {
    let open = b.connections.load(Ordering::Relaxed);
    open >= cap && b.in_flight.load(Ordering::Relaxed) >= open
}

impl Shared {
    fn notify(&self, name: &str, event: HealthEvent) {
        let listener = self.listener.lock().clone();
        if let Some(l) = listener {
            l(name, event);
        }
    }
}

impl UpstreamGroup {
    /// An empty group named `name` (for logs and errors) choosing by `algorithm`.
    pub fn new(name: &str, algorithm: Algorithm) -> Self {
        UpstreamGroup {
            shared: Arc::new(Shared {
                name: name.to_owned(),
                algorithm,
                snapshot: ArcSwap::from_pointee(Snapshot {
                    backends: Vec::new(),
                    selector: Selector::build(algorithm, &[], &[]),
                }),
                outlier: Outlier::new(),
                max_in_flight: AtomicU64::new(0),
                max_connections: AtomicU64::new(0),
                update: Mutex::new(()),
                listener: Mutex::new(None),
            }),
        }
    }

    /// The group's name.
    pub fn name(&self) -> &str {
        &self.shared.name
    }

    /// The selection algorithm.
    pub fn algorithm(&self) -> Algorithm {
        self.shared.algorithm
    }

    /// Replaces the backends. A backend equal to a current one (name, peer and weight) keeps its
    /// state (figures, health, requests in flight); the others start fresh. Requests already on
    /// a removed backend finish there; new picks see the new list at once. Names must be
    /// distinct.
    pub fn set_backends(&self, backends: Vec<Backend>) -> std::result::Result<(), &'static str> {
        let _one_writer = self.shared.update.lock();
        for (i, b) in backends.iter().enumerate() {
            if backends[..i].iter().any(|o| o.name == b.name) {
                return Err("two backends with one name");
            }
        }
        let old = self.shared.snapshot.load_full();
        // The same list again (a discovery round that found nothing new) keeps the snapshot: its
        // tables cost milliseconds to build, and round robin would restart its cycle.
        if old.backends.len() == backends.len()
            && old.backends.iter().zip(&backends).all(|(s, b)| s.backend == *b)
        {
            return Ok(());
        }
        let states: Vec<Arc<BackendState>> = backends
            .into_iter()
            .map(|b| {
                old.backends
                    .iter()
                    .find(|s| s.backend == b)
                    .cloned()
                    .unwrap_or_else(|| Arc::new(BackendState::new(b)))
            })
            .collect();
        self.publish(states);
        Ok(())
    }

    /// Applies `edit` to a copy of the current backend list and publishes the result.
    pub fn update(&self, edit: impl FnOnce(&mut Vec<Backend>)) -> std::result::Result<(), &'static str> {
        let mut list = self.backends();
        edit(&mut list);
        self.set_backends(list)
    }

    fn publish(&self, states: Vec<Arc<BackendState>>) {
        let names: Vec<&str> = states.iter().map(|s| s.backend.name.as_str()).collect();
        let weights: Vec<u32> = states.iter().map(|s| s.backend.weight).collect();
        let selector = Selector::build(self.shared.algorithm, &names, &weights);
        // An ejected backend that left the group no longer counts against the cap.
        let ejected = states.iter().filter(|s| s.ejected_until.load(Ordering::Acquire) != 0).count();
        self.shared.outlier.ejected.store(ejected, Ordering::Release);
        self.shared.snapshot.store(Arc::new(Snapshot { backends: states, selector }));
    }

    /// The backends as configured now.
    pub fn backends(&self) -> Vec<Backend> {
        self.shared.snapshot.load().backends.iter().map(|s| s.backend.clone()).collect()
    }

    /// Each backend's figures now.
    pub fn figures(&self) -> Vec<BackendFigures> {
        let now = self.shared.outlier.now_ms();
        let snap = self.shared.snapshot.load();
        snap.backends
            .iter()
            .map(|s| {
                let mut f = s.figures();
                f.ejected = s.ejected_until.load(Ordering::Acquire) > now;
                f
            })
            .collect()
    }

    /// Sets passive health (see [`OutlierDetection`]).
    pub fn set_outlier_detection(&self, settings: OutlierDetection) {
        *self.shared.outlier.settings.lock() = settings;
    }

    /// The passive health settings.
    pub fn outlier_detection(&self) -> OutlierDetection {
        self.shared.outlier.settings.lock().clone()
    }

    /// Caps the requests in flight on each backend (0: no cap). When every backend that could
    /// take a request is at its cap the pick fails with 503.
    pub fn set_max_in_flight(&self, cap: u64) {
        self.shared.max_in_flight.store(cap, Ordering::Relaxed);
    }

    /// HTTP/1 connections allowed per backend, busy or pooled (0: no cap, the default). A backend
    /// with `cap` open and all busy is skipped; with every backend so, a request fails with 503.
    /// The count is taken as connections open, so concurrent picks may briefly pass it by the
    /// number of workers (as Envoy's circuit breakers do).
    pub fn set_max_connections(&self, cap: u64) {
        self.shared.max_connections.store(cap, Ordering::Relaxed);
    }

    /// Calls `listener` on each health change (active checks, ejections, readmissions).
    pub fn set_health_listener(&self, listener: Option<HealthListener>) {
        *self.shared.listener.lock() = listener;
    }

    /// Chooses a backend for an attempt, excluding those in `tried` and adding the choice to it.
    /// `key` feeds the consistent-hash algorithms. Backends down or ejected are skipped unless
    /// all are (then health is ignored, Envoy's panic routing: an answer from a doubtful backend
    /// beats a certain error). Fails with 503 when every candidate is at its in-flight cap, and
    /// 502 when the group is empty or every backend was tried.
    pub fn pick(&self, key: Option<&[u8]>, tried: &mut Tried) -> Result<Pick> {
        let g = &*self.shared;
        let snap = g.snapshot.load();
        let n = snap.backends.len();
        let mut usable = Usable {
            group: g,
            backends: &snap.backends,
            tried,
            now: (g.outlier.ejected.load(Ordering::Acquire) != 0).then(|| g.outlier.now_ms()),
            cap: g.max_in_flight.load(Ordering::Relaxed),
            conn_cap: g.max_connections.load(Ordering::Relaxed),
            ignore_health: false,
        };
        for _ in 0..4 {
            let found = snap.selector.pick(n, key, &usable).or_else(|| {
                usable.ignore_health = true;
                snap.selector.pick(n, key, &usable)
            });
            let Some(i) = found else { break };
            let state = &snap.backends[i];
            let before = state.in_flight.fetch_add(1, Ordering::AcqRel);
            if usable.cap != 0 && before >= usable.cap {
                // Another worker took the last slot between the check and here.
                state.in_flight.fetch_sub(1, Ordering::AcqRel);
                continue;
            }
            state.requests.fetch_add(1, Ordering::Relaxed);
            tried.add(state.id);
            return Ok(Pick { state: state.clone(), group: self.shared.clone() });
        }
        Err(self.no_backend(&snap.backends, tried, usable.cap, usable.conn_cap))
    }

    fn no_backend(
        &self,
        backends: &[Arc<BackendState>],
        tried: &Tried,
        cap: u64,
        conn_cap: u64,
    ) -> Box<Error> {
        let context = format!("picking a backend of group {:?}", self.shared.name);
        let untried = || backends.iter().filter(|b| !tried.contains(b.id));
        if cap != 0 && untried().any(|b| b.in_flight.load(Ordering::Relaxed) >= cap) {
            return Error::new(ErrorKind::HttpStatus(503), ErrorSource::Internal, context)
                .with_cause(format!("every backend has {cap} requests in flight (its cap)"));
        }
        if conn_cap != 0 && untried().any(|b| needs_connection_past(b, conn_cap)) {
            return Error::new(ErrorKind::HttpStatus(503), ErrorSource::Internal, context)
                .with_cause(format!("every backend has {conn_cap} connections open and busy (its cap)"));
        }
        let why = if backends.is_empty() { "the group has no backends" } else { "every backend was tried" };
        Error::new(ErrorKind::ConnectError, ErrorSource::Upstream, context).with_cause(why)
    }

    /// Marks the backend named `name` up or down (active health checks, or a host's own); an up
    /// backend also leaves any ejection. Reports each change to the listener ([`HealthEvent::Up`]
    /// or `Down`, then `Readmitted` if an ejection ended) and returns the last one.
    pub fn set_healthy(&self, name: &str, up: bool) -> Option<HealthEvent> {
        let snap = self.shared.snapshot.load();
        let b = snap.backends.iter().find(|b| b.backend.name == name)?;
        let mut last = None;
        if b.healthy.swap(up, Ordering::AcqRel) != up {
            last = Some(if up { HealthEvent::Up } else { HealthEvent::Down });
            self.shared.notify(name, last?);
        }
        if up && self.shared.outlier.readmit(b) {
            last = Some(HealthEvent::Readmitted);
            self.shared.notify(name, HealthEvent::Readmitted);
        }
        last
    }
}

#[cfg(test)]
#[path = "group_tests.rs"]
mod tests;
