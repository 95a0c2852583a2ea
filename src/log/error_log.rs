//! The error log of the requests: every 5xx the proxy made itself, with its cause, to the
//! server's log sink, rate-limited so that a failing upstream under load does not bury the host
//! in identical lines (nor stall the workers on its sink).

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use crate::server::{LogLevel, Logger};

/// At most `per_second` messages a second pass; the rest are counted and the count is reported
/// with the first message of a later second. Lock-free: two atomics.
#[derive(Debug)]
pub struct RateLimit {
    per_second: u64,
    /// The current second (high 32 bits) and the messages passed in it (low 32 bits).
    window: AtomicU64,
    dropped: AtomicU64,
}

impl RateLimit {
    /// A limit of `per_second` messages.
    pub fn new(per_second: u32) -> Self {
        RateLimit { per_second: per_second.into(), window: AtomicU64::new(0), dropped: AtomicU64::new(0) }
    }

    /// `Some(dropped)` when a message may go now (`dropped`: how many were held back since the
    /// last one that went); `None` when it must be dropped.
    pub fn admit(&self) -> Option<u64> {
        let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default().as_secs() & 0xffff_ffff;
        let r = self.window.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |w| {
            if w >> 32 != now {
                Some(now << 32 | 1)
            } else if w & 0xffff_ffff < self.per_second {
                Some(w + 1)
            } else {
                None
            }
        });
        match r {
            Ok(_) => Some(self.dropped.swap(0, Ordering::Relaxed)),
            Err(_) => {
                self.dropped.fetch_add(1, Ordering::Relaxed);
                None
            }
        }
    }
}

/// The per-request error log: a sink and a rate limit.
#[derive(Debug)]
pub struct ErrorLog {
    sink: Logger,
    limit: RateLimit,
}

impl ErrorLog {
    /// Sends to `sink`, at most `per_second` messages a second.
    pub fn new(sink: Logger, per_second: u32) -> Self {
        ErrorLog { sink, limit: RateLimit::new(per_second) }
    }

    /// Logs `msg` unless the limit is reached; built only when it will go.
    pub fn log(&self, level: LogLevel, msg: impl FnOnce() -> String) {
        if !self.sink.enabled() {
            return;
        }
        if let Some(dropped) = self.limit.admit() {
            let mut m = msg();
            if dropped > 0 {
                m.push_str(&format!(" ({dropped} similar messages suppressed)"));
            }
            self.sink.log(level, &m);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    #[test]
    fn floods_are_cut_and_counted() {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let s = seen.clone();
        let log = ErrorLog::new(Logger::new(move |_, m| s.lock().unwrap().push(m.to_string())), 3);
        for i in 0..10 {
            log.log(LogLevel::Error, || format!("m{i}"));
        }
        let n = seen.lock().unwrap().len();
        // Within one second three pass; a second boundary in between lets a few more through.
        assert!((3..=6).contains(&n), "{n}");
        assert!(log.limit.dropped.load(Ordering::Relaxed) >= 4);
    }
}
