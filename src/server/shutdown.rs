//! The termination event a server propagates to its services.

use tokio::sync::watch;

/// Where the server is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum ShutdownState {
    /// Serving.
    Running,
    /// Stop accepting; let in-flight requests finish; close idle connections.
    Graceful,
    /// Stop now.
    Fast,
}

/// A receiver every service task holds to learn about shutdown.
#[derive(Debug, Clone)]
pub struct ShutdownWatch(watch::Receiver<ShutdownState>);

impl ShutdownWatch {
    pub(crate) fn new(rx: watch::Receiver<ShutdownState>) -> Self {
        ShutdownWatch(rx)
    }

    /// A watch that never fires, for tests and embedders driving a service by hand.
    pub fn never() -> Self {
        static NEVER: std::sync::OnceLock<watch::Sender<ShutdownState>> = std::sync::OnceLock::new();
        ShutdownWatch(NEVER.get_or_init(|| watch::channel(ShutdownState::Running).0).subscribe())
    }

    /// The current state.
    pub fn state(&self) -> ShutdownState {
        *self.0.borrow()
    }

    /// Whether any shutdown has begun.
    pub fn is_shutting_down(&self) -> bool {
        self.state() != ShutdownState::Running
    }

    /// Resolves once a graceful (or fast) shutdown has begun, or the server is gone. Unlike
    /// [`Self::reached`] it clones no receiver and keeps no predicate, so the future is a third
    /// of the size: an idle keep-alive connection holds one for its whole life.
    // Not an `async fn`, which would hold `self` twice.
    #[allow(clippy::manual_async_fn)]
    pub fn graceful(&mut self) -> impl std::future::Future<Output = ()> + Send + '_ {
        async move {
            while self.state() < ShutdownState::Graceful {
                if self.0.changed().await.is_err() {
                    return;
                }
            }
        }
    }

    /// Resolves once the state reaches at least `level`.
    pub async fn reached(&self, level: ShutdownState) {
        let mut rx = self.0.clone();
        let _ = rx.wait_for(|s| *s >= level).await;
    }
}
