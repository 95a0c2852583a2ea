//! A per-server log sink: the library never writes to stderr; an embedder that wants the
//! messages (accept / attach failures, failed handshakes) passes a function in [`ServerConf`]
//! (crate::server::ServerConf). There is no process-global logger.

use std::sync::Arc;

/// How important a message is (numbered like the C ABI's `PROXY_LOG_*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum LogLevel {
    /// Something failed that the server cannot fix by itself (e.g. an endpoint could not start).
    Error = 1,
    /// Something failed and was handled (e.g. accept errors, backing off).
    Warn = 2,
    /// Noteworthy events.
    Info = 3,
    /// Per-connection details (e.g. a failed TLS handshake).
    Debug = 4,
}

/// The sink function: called from any worker thread, concurrently; must not block.
pub type LogFn = dyn Fn(LogLevel, &str) + Send + Sync;

/// A cheap, cloneable handle to a server's log sink; the default discards everything.
#[derive(Clone, Default)]
pub struct Logger(Option<Arc<LogFn>>);

impl Logger {
    /// A logger calling `f` for every message.
    pub fn new(f: impl Fn(LogLevel, &str) + Send + Sync + 'static) -> Self {
        Logger(Some(Arc::new(f)))
    }

    /// A logger that discards everything.
    pub fn none() -> Self {
        Logger(None)
    }

    /// Whether messages go anywhere (skip formatting when not).
    pub fn enabled(&self) -> bool {
        self.0.is_some()
    }

    /// Sends `msg` to the sink, if any.
    pub fn log(&self, level: LogLevel, msg: &str) {
        if let Some(f) = &self.0 {
            f(level, msg);
        }
    }
}

impl std::fmt::Debug for Logger {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_some() { "Logger(sink)" } else { "Logger(none)" })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    #[test]
    fn sends_to_its_own_sink_only() {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let s = seen.clone();
        let a = Logger::new(move |l, m| s.lock().unwrap().push((l, m.to_string())));
        let b = Logger::default();
        a.log(LogLevel::Warn, "one");
        b.log(LogLevel::Error, "dropped");
        assert!(a.enabled() && !b.enabled());
        assert_eq!(*seen.lock().unwrap(), vec![(LogLevel::Warn, "one".to_string())]);
    }
}
