//! Services (Pingora's `services/`): a protocol plus its options, its own runtime, and either
//! listening endpoints ([`ListeningService`]) or a background task ([`BackgroundService`]).

mod background;
mod caps;
mod listening;
mod runtime;

use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;

use parking_lot::{Condvar, Mutex};

pub use background::{background_service, BackgroundService, GenBackgroundService};
pub use listening::ListeningService;
pub use runtime::{ServiceRuntime, ThreadHooks};

use crate::server::{Logger, ShutdownWatch};

/// What a server needs from a service.
pub trait Service: Send + 'static {
    /// The service's name (prefix of its thread names).
    fn name(&self) -> &str;
    /// Worker threads wanted.
    fn threads(&self) -> usize;
    /// Work-stealing runtime (true) or isolated current-thread runtimes (false).
    fn work_stealing(&self) -> bool;
    /// Functions to run on each of the service's threads when it starts and when it exits.
    fn thread_hooks(&self) -> Option<ThreadHooks> {
        None
    }
    /// The listening sockets, which an upgrade hands to the new process. Asked once, before
    /// [`Self::start`].
    fn listeners(&self) -> Vec<Arc<crate::listener::TransportStack>> {
        Vec::new()
    }
    /// Spawns the service's tasks on its runtime. Called once.
    /// `log` is the server's log sink.
    fn start(
        &mut self,
        runtime: &ServiceRuntime,
        shutdown: ShutdownWatch,
        tracker: Arc<Tracker>,
        log: &Logger,
    );
}

/// Counts a service's in-flight connections/tasks so a graceful shutdown knows when it is done.
#[derive(Debug, Default)]
pub struct Tracker {
    active: AtomicUsize,
    lock: Mutex<()>,
    idle: Condvar,
}

/// Held by a task while it is in flight.
#[derive(Debug)]
pub struct TrackGuard(Arc<Tracker>);

impl Tracker {
    /// Marks one task in flight until the guard drops.
    pub fn track(self: &Arc<Self>) -> TrackGuard {
        self.active.fetch_add(1, Ordering::AcqRel);
        TrackGuard(self.clone())
    }

    /// Tasks in flight.
    pub fn active(&self) -> usize {
        self.active.load(Ordering::Acquire)
    }

    /// Blocks until nothing is in flight or `deadline` passes. `true` when drained.
    pub fn wait_idle(&self, deadline: Instant) -> bool {
        let mut g = self.lock.lock();
        while self.active() > 0 {
            if self.idle.wait_until(&mut g, deadline).timed_out() {
                return self.active() == 0;
            }
        }
        true
    }
}

impl Drop for TrackGuard {
    fn drop(&mut self) {
        if self.0.active.fetch_sub(1, Ordering::AcqRel) == 1 {
            let _g = self.0.lock.lock();
            self.0.idle.notify_all();
        }
    }
}

/// Spawns the future `task` makes on `handle`, counted by `tracker` until it ends.
///
/// The task gets its guard to hold rather than being wrapped in `async { fut.await; drop(guard) }`:
/// rustc keeps a captured future and its pinned awaitee in separate slots, so such a wrapper
/// doubles the task's size, and a connection task lives as long as its (mostly idle) connection.
pub(crate) fn spawn_tracked<F, Fut>(handle: &tokio::runtime::Handle, tracker: &Arc<Tracker>, task: F)
where
    F: FnOnce(TrackGuard) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    handle.spawn(task(tracker.track()));
}
