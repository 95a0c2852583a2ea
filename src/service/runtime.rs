//! A service's own threads: one work-stealing tokio runtime, or N isolated current-thread runtimes.
//! Never shared with another service, and every thread is named after its service.

use std::io;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use tokio::runtime::{Builder, Handle, Runtime};
use tokio::sync::oneshot;

use crate::connector::set_worker_slot;

/// Functions run on a service's threads: `start` on each thread before it runs any task, `stop` when
/// it exits (after the tasks it ran were dropped). For work-stealing runtimes they also run on the
/// runtime's blocking-pool threads, which tokio does not tell apart from its workers.
#[derive(Clone)]
pub struct ThreadHooks {
    /// Runs first on every new thread.
    pub start: Arc<dyn Fn() + Send + Sync>,
    /// Runs last on every exiting thread.
    pub stop: Arc<dyn Fn() + Send + Sync>,
}

impl std::fmt::Debug for ThreadHooks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ThreadHooks")
    }
}

/// The runtime(s) of one service.
#[derive(Debug)]
pub enum ServiceRuntime {
    /// One multi-thread runtime: tasks may move between its workers.
    Steal(Runtime),
    /// N single-thread runtimes, each driven by its own thread; a connection stays where accepted.
    NoSteal(Vec<Isolated>),
}

/// One current-thread runtime and the thread driving it.
#[derive(Debug)]
pub struct Isolated {
    handle: Handle,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

/// Keeps SIGPIPE from this thread. A write to a socket the peer closed raises SIGPIPE on the
/// writing thread, and its default action kills the process: Rust programs ignore it at startup,
/// but a C, Go or Python host embedding us may not, and a library must not change the process's
/// dispositions behind the host's back. Blocked in our own threads only, the signal stays pending
/// there and the write fails with EPIPE, which the proxy handles like any closed connection.
fn block_sigpipe() {
    // SAFETY: sigemptyset/sigaddset initialise a local sigset_t; pthread_sigmask only changes the
    // calling thread's mask and reads the set we pass.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGPIPE);
        libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
    }
}

/// Sets up a service thread before it runs any task: SIGPIPE blocked, and the allocator's block
/// cache on (it is ours to free when the thread exits, see [`thread_stopping`]).
fn thread_started() {
    block_sigpipe();
    #[cfg(feature = "mimalloc")]
    crate::ffi::alloc::worker_cache(true);
}

/// The last thing a service thread does: the blocks its allocator cache kept go back.
fn thread_stopping() {
    #[cfg(feature = "mimalloc")]
    crate::ffi::alloc::worker_cache(false);
}

/// Slot 0 belongs to work-stealing runtimes; isolated ones count from 1.
static NEXT_SLOT: AtomicUsize = AtomicUsize::new(1);

impl ServiceRuntime {
    /// Starts `threads` workers named `<name>-<i>`, running `hooks` on each.
    pub fn new(
        name: &str,
        threads: usize,
        work_stealing: bool,
        hooks: Option<ThreadHooks>,
    ) -> io::Result<Self> {
        let threads = threads.max(1);
        // With one worker there is nobody to steal from; the current-thread scheduler does the
        // same job without the multi-thread scheduler's atomics and queues.
        if work_stealing && threads > 1 {
            let counter = Arc::new(AtomicUsize::new(0));
            let prefix = name.to_owned();
            let mut b = Builder::new_multi_thread();
            b.worker_threads(threads)
                .thread_name_fn(move || format!("{prefix}-{}", counter.fetch_add(1, Ordering::Relaxed)))
                .enable_all();
            match hooks {
                Some(h) => {
                    let (start, stop) = (h.start, h.stop);
                    b.on_thread_start(move || {
                        thread_started();
                        start()
                    })
                    .on_thread_stop(move || {
                        stop();
                        thread_stopping()
                    });
                }
                None => {
                    b.on_thread_start(thread_started).on_thread_stop(thread_stopping);
                }
            }
            let rt = b.build()?;
            return Ok(ServiceRuntime::Steal(rt));
        }
        let mut rts = Vec::with_capacity(threads);
        for i in 0..threads {
            let rt = Builder::new_current_thread().enable_all().build()?;
            let handle = rt.handle().clone();
            let (stop, stopped) = oneshot::channel::<()>();
            let slot = NEXT_SLOT.fetch_add(1, Ordering::Relaxed) as u64;
            let hooks = hooks.clone();
            let thread = std::thread::Builder::new().name(format!("{name}-{i}")).spawn(move || {
                thread_started();
                if let Some(h) = &hooks {
                    (h.start)();
                }
                set_worker_slot(slot);
                rt.block_on(async {
                    let _ = stopped.await;
                });
                rt.shutdown_timeout(Duration::from_millis(100));
                if let Some(h) = &hooks {
                    (h.stop)();
                }
                thread_stopping();
            })?;
            rts.push(Isolated { handle, stop: Some(stop), thread: Some(thread) });
        }
        Ok(ServiceRuntime::NoSteal(rts))
    }

    /// Handles to spawn on: one per accept loop.
    pub fn handles(&self) -> Vec<Handle> {
        match self {
            ServiceRuntime::Steal(rt) => vec![rt.handle().clone()],
            ServiceRuntime::NoSteal(v) => v.iter().map(|i| i.handle.clone()).collect(),
        }
    }

    /// Stops every thread, giving running tasks `timeout` to notice before they are dropped.
    ///
    /// Tokio refuses to drop a runtime from inside any async context, and an embedder may well call
    /// this from one (its own runtime, a test), so the work-stealing runtime is shut down from a
    /// helper thread.
    pub fn shutdown(self, timeout: Duration) {
        match self {
            ServiceRuntime::Steal(rt) => {
                let t = std::thread::Builder::new()
                    .name("proxy-shutdown".into())
                    .spawn(move || rt.shutdown_timeout(timeout));
                if let Ok(t) = t {
                    let _ = t.join();
                }
            }
            ServiceRuntime::NoSteal(v) => {
                for mut i in v {
                    if let Some(s) = i.stop.take() {
                        let _ = s.send(());
                    }
                    if let Some(t) = i.thread.take() {
                        let _ = t.join();
                    }
                }
            }
        }
    }
}
