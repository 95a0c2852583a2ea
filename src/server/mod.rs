//! The server (Pingora's `server/`): owns services, starts each on its own runtime, and propagates
//! termination to all of them: graceful (stop accepting, finish in-flight requests within a grace
//! period) or fast.
//!
//! Signals are opt-in ([`Server::run_forever`]); an embedder that owns the process's signal handlers
//! uses [`Server::start`] and [`ServerHandle::shutdown`] instead.

pub mod daemon;
mod log;
mod shutdown;
pub mod upgrade;

use std::io;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::watch;

pub use log::{LogFn, LogLevel, Logger};
pub use shutdown::{ShutdownState, ShutdownWatch};

use crate::listener::TransportStack;
use crate::service::{Service, ServiceRuntime, Tracker};

/// Server-wide settings.
#[derive(Debug, Clone)]
pub struct ServerConf {
    /// How long a graceful shutdown waits for in-flight requests.
    pub grace_period: Duration,
    /// After the grace period, how long tasks get to notice the fast shutdown before being dropped.
    pub final_timeout: Duration,
    /// Where the server's own messages go (accept / attach errors, failed handshakes); the
    /// default discards them. The library never prints.
    pub log: Logger,
}

impl Default for ServerConf {
    fn default() -> Self {
        ServerConf {
            grace_period: Duration::from_secs(30),
            final_timeout: Duration::from_secs(1),
            log: Logger::default(),
        }
    }
}

/// A set of services, not started yet.
pub struct Server {
    conf: ServerConf,
    services: Vec<Box<dyn Service>>,
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server").field("conf", &self.conf).field("services", &self.services.len()).finish()
    }
}

struct Running {
    runtime: ServiceRuntime,
    tracker: Arc<Tracker>,
}

/// A started server.
pub struct ServerHandle {
    conf: ServerConf,
    tx: watch::Sender<ShutdownState>,
    running: Vec<Running>,
    /// Every service's listening sockets, kept for an upgrade to hand over; let go when a
    /// shutdown begins, so that the sockets close once the accept loops end.
    listeners: Vec<Arc<TransportStack>>,
}

impl std::fmt::Debug for ServerHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerHandle").field("state", &*self.tx.borrow()).finish()
    }
}

impl Server {
    /// An empty server.
    pub fn new(conf: ServerConf) -> Self {
        Server { conf, services: Vec::new() }
    }

    /// The server-wide settings, until the server starts.
    pub fn conf_mut(&mut self) -> &mut ServerConf {
        &mut self.conf
    }

    /// Adds a service; it starts with the server.
    pub fn add_service(&mut self, service: impl Service) {
        self.services.push(Box::new(service));
    }

    /// Starts every service on its own runtime and returns at once.
    pub fn start(self) -> io::Result<ServerHandle> {
        let (tx, rx) = watch::channel(ShutdownState::Running);
        let mut running = Vec::with_capacity(self.services.len());
        let mut listeners = Vec::new();
        for mut svc in self.services {
            listeners.extend(svc.listeners());
            let runtime =
                ServiceRuntime::new(svc.name(), svc.threads(), svc.work_stealing(), svc.thread_hooks())?;
            let tracker = Arc::new(Tracker::default());
            svc.start(&runtime, ShutdownWatch::new(rx.clone()), tracker.clone(), &self.conf.log);
            if self.conf.log.enabled() {
                let msg = format!("service {}: started, {} worker thread(s)", svc.name(), svc.threads());
                self.conf.log.log(LogLevel::Info, &msg);
            }
            running.push(Running { runtime, tracker });
        }
        Ok(ServerHandle { conf: self.conf, tx, running, listeners })
    }

    /// Starts, then blocks until SIGTERM (graceful shutdown) or SIGINT (fast shutdown).
    pub fn run_forever(self) -> io::Result<()> {
        let handle = self.start()?;
        let graceful = wait_for_signal()?;
        if graceful {
            let grace = handle.conf.grace_period;
            handle.shutdown(grace);
        } else {
            handle.shutdown_fast();
        }
        Ok(())
    }
}

fn wait_for_signal() -> io::Result<bool> {
    use tokio::signal::unix::{signal, SignalKind};
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    rt.block_on(async {
        let mut term = signal(SignalKind::terminate())?;
        let mut int = signal(SignalKind::interrupt())?;
        tokio::select! {
            _ = term.recv() => Ok(true),
            _ = int.recv() => Ok(false),
        }
    })
}

impl ServerHandle {
    /// The number of connections and background tasks in flight across all services.
    pub fn active(&self) -> usize {
        self.running.iter().map(|r| r.tracker.active()).sum()
    }

    /// Every listening socket of every service, for an upgrade to hand over (see [`upgrade`]).
    pub fn listeners(&self) -> &[Arc<TransportStack>] {
        &self.listeners
    }

    /// Zero-downtime upgrade, the old process's half: hands every listening socket to the new
    /// process waiting on `sock` (connecting up to `retries` times), then shuts down gracefully
    /// with `grace` (H2 connections get GOAWAY, H1 responses `Connection: close`). If the handover
    /// fails the server keeps serving and the error comes back with the handle.
    pub fn upgrade(
        self,
        sock: &std::path::Path,
        retries: usize,
        grace: Duration,
    ) -> Result<usize, (Self, io::Error)> {
        match upgrade::send_listeners(sock, &self.listeners, retries) {
            Ok(n) => {
                self.shutdown(grace);
                Ok(n)
            }
            Err(e) => Err((self, e)),
        }
    }

    /// Graceful shutdown: stop accepting, let in-flight requests finish for up to `grace` (H1
    /// responses in that window carry `Connection: close`), then stop. Blocks until done.
    /// Must not be called from a service's own worker thread.
    pub fn shutdown(mut self, grace: Duration) {
        self.listeners.clear();
        if self.conf.log.enabled() {
            let msg =
                format!("graceful shutdown: up to {grace:?} for {} connection(s) in flight", self.active());
            self.conf.log.log(LogLevel::Info, &msg);
        }
        let _ = self.tx.send(ShutdownState::Graceful);
        let deadline = Instant::now() + grace;
        for r in &self.running {
            r.tracker.wait_idle(deadline);
        }
        self.shutdown_fast();
    }

    /// Fast shutdown: stop now, dropping connections. Blocks until every worker thread has exited.
    pub fn shutdown_fast(mut self) {
        self.listeners.clear();
        let _ = self.tx.send(ShutdownState::Fast);
        for r in self.running {
            r.runtime.shutdown(self.conf.final_timeout);
        }
        self.conf.log.log(LogLevel::Info, "server stopped");
    }
}
