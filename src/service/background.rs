//! Background services: a task with a shutdown watch and no listener (health checks, metrics).

use std::future::Future;
use std::sync::Arc;

use super::{spawn_tracked, Service, ServiceRuntime, Tracker};
use crate::server::ShutdownWatch;

/// A long-running task. It should return soon after `shutdown` fires.
pub trait BackgroundService: Send + Sync + 'static {
    /// Runs until shutdown.
    fn start(&self, shutdown: ShutdownWatch) -> impl Future<Output = ()> + Send;
}

/// Wraps a [`BackgroundService`] as a [`Service`] with one worker thread.
#[derive(Debug)]
pub struct GenBackgroundService<T> {
    name: String,
    task: Arc<T>,
}

/// Creates a background service named `name` around `task`.
pub fn background_service<T: BackgroundService>(name: &str, task: T) -> GenBackgroundService<T> {
    GenBackgroundService { name: name.to_owned(), task: Arc::new(task) }
}

impl<T: BackgroundService> GenBackgroundService<T> {
    /// The task, to share state with it.
    pub fn task(&self) -> Arc<T> {
        self.task.clone()
    }
}

impl<T: BackgroundService> Service for GenBackgroundService<T> {
    fn name(&self) -> &str {
        &self.name
    }
    fn threads(&self) -> usize {
        1
    }
    fn work_stealing(&self) -> bool {
        true
    }
    fn start(
        &mut self,
        runtime: &ServiceRuntime,
        shutdown: ShutdownWatch,
        tracker: Arc<Tracker>,
        _log: &crate::server::Logger,
    ) {
        let task = self.task.clone();
        let handle = &runtime.handles()[0];
        spawn_tracked(handle, &tracker, move |guard| async move {
            task.start(shutdown).await;
            drop(guard);
        });
    }
}
