//! A service that listens on endpoints and hands every accepted connection to its app as a task.

use std::future::Future;
use std::io;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use super::caps::{Admission, Cap, Caps, Refused};
use super::{spawn_tracked, Service, ServiceRuntime, ThreadHooks, TrackGuard, Tracker};
use crate::app::ServerApp;
use crate::listener::{Accepted, HandshakeError, Listener, TransportStack};
use crate::metrics::ServiceMetrics;
use crate::protocol::proxy_protocol::AcceptPolicy;
use crate::protocol::stream::{SocketAddr, Stream};
use crate::server::{LogLevel, Logger, ShutdownState, ShutdownWatch};
use crate::tls::{Certificates, TlsSettings};

/// A listening service running app `A` (for example an [`crate::proxy::HttpProxy`]).
#[derive(Debug)]
pub struct ListeningService<A> {
    name: String,
    app: Arc<A>,
    stacks: Vec<Arc<TransportStack>>,
    threads: usize,
    work_stealing: bool,
    hooks: Option<ThreadHooks>,
    max_connections: usize,
    max_connections_per_listener: usize,
    proxy_protocol: Option<Arc<AcceptPolicy>>,
}

impl<A: ServerApp> ListeningService<A> {
    /// A service named `name` serving `app` on one worker thread, work-stealing.
    pub fn new(name: &str, app: A) -> Self {
        ListeningService {
            name: name.to_owned(),
            app: Arc::new(app),
            stacks: Vec::new(),
            threads: 1,
            work_stealing: true,
            hooks: None,
            max_connections: 0,
            max_connections_per_listener: 0,
            proxy_protocol: None,
        }
    }

    /// Reads a PROXY header first on every endpoint that has no setting of its own (see
    /// [`TransportStack::set_proxy_protocol`]), whenever it was added.
    pub fn set_proxy_protocol(&mut self, policy: Option<AcceptPolicy>) {
        self.proxy_protocol = policy.map(Arc::new);
    }

    /// The app.
    pub fn app(&self) -> &Arc<A> {
        &self.app
    }

    /// The app, to change before the service starts (`None` once it is shared).
    pub fn app_mut(&mut self) -> Option<&mut A> {
        Arc::get_mut(&mut self.app)
    }

    /// Sets the number of worker threads.
    pub fn set_threads(&mut self, threads: usize) {
        self.threads = threads.max(1);
    }

    /// Chooses one work-stealing runtime (true) or `threads` isolated ones (false).
    pub fn set_work_stealing(&mut self, on: bool) {
        self.work_stealing = on;
    }

    /// Runs `start` on each worker thread before it runs any task and `stop` when it exits (a
    /// binding keeping per-thread interpreter state, for example).
    pub fn set_thread_hooks(
        &mut self,
        start: Arc<dyn Fn() + Send + Sync>,
        stop: Arc<dyn Fn() + Send + Sync>,
    ) {
        self.hooks = Some(ThreadHooks { start, stop });
    }

    /// Caps the connections open at once across all endpoints (0: no cap, the default). One
    /// past the cap is accepted and closed at once (see [`super::caps`]).
    pub fn set_max_connections(&mut self, max: usize) {
        self.max_connections = max;
    }

    /// Caps the connections open at once on each endpoint (0: no cap, the default).
    pub fn set_max_connections_per_listener(&mut self, max: usize) {
        self.max_connections_per_listener = max;
    }

    /// Binds a TCP endpoint now (`127.0.0.1:0`, `[::1]:8080`, ...) and returns the bound address.
    pub fn add_tcp(&mut self, addr: &str) -> io::Result<SocketAddr> {
        let a =
            addr.parse().map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "invalid TCP address"))?;
        self.add_stack(TransportStack::bind_tcp(a)?)
    }

    /// Binds a TLS endpoint over TCP now. The settings are built here, so a missing or bad
    /// certificate or key fails this call rather than the first connection.
    pub fn add_tls(&mut self, addr: &str, settings: &TlsSettings) -> io::Result<SocketAddr> {
        let acceptor = settings.build()?;
        let a =
            addr.parse().map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "invalid TCP address"))?;
        self.add_stack(TransportStack::bind_tcp(a)?.with_tls(acceptor))
    }

    /// Binds a TLS endpoint over a Unix domain socket now (see [`Self::add_tls`]).
    pub fn add_tls_uds(&mut self, path: impl AsRef<Path>, settings: &TlsSettings) -> io::Result<SocketAddr> {
        let acceptor = settings.build()?;
        self.add_stack(TransportStack::bind_unix(path.as_ref())?.with_tls(acceptor))
    }

    /// Binds a Unix domain socket endpoint now.
    pub fn add_uds(&mut self, path: impl AsRef<Path>) -> io::Result<SocketAddr> {
        self.add_stack(TransportStack::bind_unix(path.as_ref())?)
    }

    /// Adds an endpoint bound elsewhere (an inherited listening socket, for example).
    pub fn add_stack(&mut self, stack: TransportStack) -> io::Result<SocketAddr> {
        let addr = stack.local_addr()?;
        self.stacks.push(Arc::new(stack));
        Ok(addr)
    }

    /// Addresses of every endpoint.
    pub fn addresses(&self) -> Vec<SocketAddr> {
        self.stacks.iter().filter_map(|s| s.local_addr().ok()).collect()
    }

    /// The live certificate sets of the TLS endpoints bound at `addr` (`None`: of every TLS
    /// endpoint), to replace while the service runs: take them before the service moves into the
    /// server, keep them, and call [`Certificates::replace`] (on a configuration reload, say).
    pub fn tls_certificates(&self, addr: Option<&SocketAddr>) -> Vec<Certificates> {
        let at = |s: &TransportStack| addr.is_none_or(|a| s.local_addr().ok().as_ref() == Some(a));
        self.stacks.iter().filter(|s| at(s)).filter_map(|s| Some(s.tls()?.certificates().clone())).collect()
    }

    /// Replaces the certificates (default and SNI map) of every TLS endpoint with those of
    /// `settings` before the service starts, or from any thread through the handles of
    /// [`Self::tls_certificates`] after. Returns how many endpoints took them; fails, changing
    /// nothing, when `settings` has no certificate.
    pub fn replace_certificates(&self, settings: &TlsSettings) -> io::Result<usize> {
        Certificates::replace_all(&self.tls_certificates(None), settings)
    }
}

impl<A: ServerApp> Service for ListeningService<A> {
    fn name(&self) -> &str {
        &self.name
    }
    fn threads(&self) -> usize {
        self.threads
    }
    fn work_stealing(&self) -> bool {
        self.work_stealing
    }
    fn thread_hooks(&self) -> Option<ThreadHooks> {
        self.hooks.clone()
    }
    fn listeners(&self) -> Vec<Arc<TransportStack>> {
        self.stacks.clone()
    }

    fn start(
        &mut self,
        runtime: &ServiceRuntime,
        shutdown: ShutdownWatch,
        tracker: Arc<Tracker>,
        log: &Logger,
    ) {
        // The stacks move into the accept tasks; a Unix socket file is removed when the last
        // accept loop of its endpoint ends and the server handle (which keeps every stack for an
        // upgrade) has let go of it. An endpoint's cap is shared by its accept loops (one
        // per runtime), the service's by every endpoint.
        let service_cap = Cap::new(self.max_connections);
        if log.enabled() {
            for addr in self.addresses() {
                log.log(LogLevel::Info, &format!("service {}: listening on {addr}", self.name));
            }
        }
        for stack in self.stacks.drain(..) {
            let caps =
                Caps { listener: Cap::new(self.max_connections_per_listener), service: service_cap.clone() };
            for handle in runtime.handles() {
                let (stack, app, shutdown, tracker, log) =
                    (stack.clone(), self.app.clone(), shutdown.clone(), tracker.clone(), log.clone());
                let (h, caps, pp) = (handle.clone(), caps.clone(), self.proxy_protocol.clone());
                handle.spawn(async move {
                    match stack.attach(pp.as_ref()) {
                        Ok(l) => accept_loop(l, &h, caps, app, shutdown, tracker, log).await,
                        Err(e) => log.log(LogLevel::Error, &format!("cannot attach listener: {e}")),
                    }
                    drop(stack);
                });
            }
        }
    }
}

async fn accept_loop<A: ServerApp>(
    listener: Listener,
    handle: &tokio::runtime::Handle,
    caps: Caps,
    app: Arc<A>,
    shutdown: ShutdownWatch,
    tracker: Arc<Tracker>,
    log: Logger,
) {
    // Accept errors repeat while the cause lasts (out of descriptors): report one per second.
    let mut last_report: Option<std::time::Instant> = None;
    let mut refusals = Refusals::default();
    loop {
        let accepted = tokio::select! {
            biased;
            _ = shutdown.reached(ShutdownState::Graceful) => return,
            r = listener.accept() => r,
        };
        match accepted {
            Ok(accepted) => match caps.admit() {
                Ok(slot) => {
                    let (app, shutdown, log) = (app.clone(), shutdown.clone(), log.clone());
                    spawn_tracked(handle, &tracker, |guard| serve(guard, slot, accepted, app, shutdown, log));
                }
                Err(cap) => {
                    drop(accepted);
                    refusals.note(cap, &log);
                }
            },
            // Out of descriptors or a connection reset while queued: back off briefly rather than
            // spinning, and keep serving the connections we have.
            Err(e) => {
                if last_report.is_none_or(|t| t.elapsed() >= Duration::from_secs(1)) {
                    last_report = Some(std::time::Instant::now());
                    log.log(LogLevel::Warn, &format!("accept failed (backing off): {e}"));
                }
                tokio::time::sleep(Duration::from_millis(10)).await
            }
        }
    }
}

/// Connections refused at a cap since the last report: reported once per second at most, since
/// under overload there may be thousands a second.
#[derive(Default)]
struct Refusals {
    last_report: Option<std::time::Instant>,
    since: u64,
}

impl Refusals {
    fn note(&mut self, cap: Refused, log: &Logger) {
        self.since += 1;
        if self.last_report.is_some_and(|t| t.elapsed() < Duration::from_secs(1)) {
            return;
        }
        self.last_report = Some(std::time::Instant::now());
        let (what, max) = match cap {
            Refused::Listener(m) => ("endpoint", m),
            Refused::Service(m) => ("service", m),
        };
        log.log(
            LogLevel::Warn,
            &format!("connection refused: {what} at its cap of {max} connections ({} refused since the last report)", self.since),
        );
        self.since = 0;
    }
}

/// One accepted connection, to its end. A plain function around an `async move` block rather than
/// an `async fn`: an `async fn` keeps its parameters twice in the task (as captured and as moved
/// into its body), and this is the outermost frame of every connection's task. Everything else
/// is moved out before `guard` drops, so the tracker sees the connection gone only once it is;
/// `slot` too, so a cap admits the next connection only once this one's socket is closed.
#[allow(clippy::manual_async_fn)]
fn serve<A: ServerApp>(
    guard: TrackGuard,
    slot: Admission,
    accepted: Accepted,
    app: Arc<A>,
    shutdown: ShutdownWatch,
    log: Logger,
) -> impl Future<Output = ()> + Send {
    async move {
        // The stream is taken out before the connection's long await: awaiting inside a `match`
        // on the handshake's result would keep that `Option<Stream>` in the task for good.
        let stream = match handshake(accepted, &shutdown, log, app.connection_metrics()).await {
            Some(stream) => stream,
            None => return drop((app, shutdown, slot, guard)),
        };
        app.process_new(stream, shutdown).await;
        drop((slot, guard));
    }
}

/// The PROXY header and TLS handshake (if any), in the connection's task, each bounded by its
/// endpoint's timeout; a shutdown abandons them once the connection had `FIRST_REQUEST_GRACE`
/// more (it was accepted while this process still accepted: during an upgrade the client did
/// nothing wrong). `None`: no stream to serve. A refused PROXY header is a warning (a load
/// balancer misconfigured, or someone forging addresses); a failed TLS handshake only a debug
/// message (scanners make them all day).
async fn handshake(
    accepted: Accepted,
    shutdown: &ShutdownWatch,
    log: Logger,
    metrics: Option<&Arc<ServiceMetrics>>,
) -> Option<Stream> {
    if !accepted.needs_handshake() {
        return accepted.handshake().await.ok();
    }
    let r = tokio::select! {
        biased;
        _ = async {
            shutdown.reached(ShutdownState::Graceful).await;
            tokio::time::sleep(crate::app::FIRST_REQUEST_GRACE).await
        } => return None,
        r = accepted.handshake() => r,
    };
    if let Some(m) = metrics {
        match &r {
            Ok(s) if s.is_tls() => m.tls_handshake(Ok(())),
            Err(HandshakeError::Tls(e)) => m.tls_handshake(Err(e)),
            _ => {}
        }
    }
    match r {
        Ok(s) => Some(s),
        Err(e) => {
            let level = match e {
                HandshakeError::Proxy(..) => LogLevel::Warn,
                HandshakeError::Tls(_) => LogLevel::Debug,
            };
            if log.enabled() {
                log.log(level, &e.to_string());
            }
            None
        }
    }
}
