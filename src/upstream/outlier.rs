//! Passive health, Envoy's outlier detection: a backend whose attempts fail `consecutive_failures`
//! times in a row (connect failures, timeouts, 5xx) is ejected for `base_ejection` times the
//! number of its recent ejections (at most `max_ejection`), unless that would put more than
//! `max_ejected_percent` of the group out (one backend may always be ejected, as in Envoy). It
//! comes back when the time is up, or sooner when an active health check passes.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use super::backend::BackendState;

/// Passive health settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutlierDetection {
    /// Failures in a row that eject a backend; 0 turns passive health off.
    pub consecutive_failures: u32,
    /// Length of a first ejection; the n-th ejection in a row lasts n times this.
    pub base_ejection: Duration,
    /// Longest ejection.
    pub max_ejection: Duration,
    /// Most of the group (percent of its backends) ejected at once; at least one backend may be.
    pub max_ejected_percent: u32,
}

impl Default for OutlierDetection {
    /// Envoy's defaults: 5 failures, 30 s growing to at most 300 s, 10 % of the group.
    fn default() -> Self {
        OutlierDetection {
            consecutive_failures: 5,
            base_ejection: Duration::from_secs(30),
            max_ejection: Duration::from_secs(300),
            max_ejected_percent: 10,
        }
    }
}

/// How an attempt on a backend went, as passive health counts it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// A response below 500 came back.
    Success,
    /// Connect failure, timeout, broken exchange, or a 5xx response.
    Failure,
}

/// A health change a group reports to its listener.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HealthEvent {
    /// Active checks passed `rise` times in a row after the backend was down.
    Up,
    /// Active checks failed `fall` times in a row.
    Down,
    /// Passive health ejected the backend.
    Ejected,
    /// An ejection ended (its time ran out or an active check passed).
    Readmitted,
}

/// Where a backend stands with passive health.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Standing {
    In,
    Ejected,
    /// Its ejection ended with this look (the caller reports [`HealthEvent::Readmitted`]).
    Readmitted,
}

/// A group's passive health bookkeeping.
#[derive(Debug)]
pub(crate) struct Outlier {
    pub(crate) settings: Mutex<OutlierDetection>,
    /// Backends of the group ejected now: checked against the cap, and zero on the common path
    /// so a pick reads no clock.
    pub(crate) ejected: AtomicUsize,
    epoch: Instant,
    /// Serialises ejections so two failing backends cannot both pass the cap check.
    eject_lock: Mutex<()>,
}

impl Outlier {
    pub(crate) fn new() -> Self {
        Outlier {
            settings: Mutex::new(OutlierDetection::default()),
            ejected: AtomicUsize::new(0),
            epoch: Instant::now(),
            eject_lock: Mutex::new(()),
        }
    }

    /// Milliseconds since the group began (never 0, which means "not ejected").
    pub(crate) fn now_ms(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64 + 1
    }

    /// Whether `b` is ejected now; an ejection whose time is up ends here. `now` is `now_ms()`,
    /// read by the caller once per pick and only when some backend is ejected.
    pub(crate) fn standing(&self, b: &BackendState, now: u64) -> Standing {
        match b.ejected_until.load(Ordering::Acquire) {
            0 => Standing::In,
            until if until > now => Standing::Ejected,
            _ if self.readmit(b) => Standing::Readmitted,
            _ => Standing::In,
        }
    }

    /// Ends `b`'s ejection; true when it was ejected.
    pub(crate) fn readmit(&self, b: &BackendState) -> bool {
        let until = b.ejected_until.load(Ordering::Acquire);
        if until == 0
            || b.ejected_until.compare_exchange(until, 0, Ordering::AcqRel, Ordering::Acquire).is_err()
        {
            return false;
        }
        b.consecutive_failures.store(0, Ordering::Relaxed);
        self.ejected.fetch_sub(1, Ordering::AcqRel);
        true
    }

    /// Counts `outcome` for `b` (one of `group_size` backends); true when it ejected `b`.
    pub(crate) fn report(&self, b: &BackendState, outcome: Outcome, group_size: usize) -> bool {
        if outcome == Outcome::Success {
            if b.consecutive_failures.load(Ordering::Relaxed) != 0 {
                b.consecutive_failures.store(0, Ordering::Relaxed);
            }
            return false;
        }
        b.failures.fetch_add(1, Ordering::Relaxed);
        let s = self.settings.lock().clone();
        let fails = b.consecutive_failures.fetch_add(1, Ordering::AcqRel) + 1;
        if s.consecutive_failures == 0 || fails < s.consecutive_failures {
            return false;
        }
        let _one = self.eject_lock.lock();
        if b.ejected_until.load(Ordering::Acquire) != 0 {
            return false;
        }
        let cap = (group_size * s.max_ejected_percent as usize / 100).max(1);
        if self.ejected.load(Ordering::Acquire) >= cap {
            return false;
        }
        let now = self.now_ms();
        let base = s.base_ejection.as_millis().max(1) as u64;
        // The streak decays by one for each base period the backend stayed in since its last
        // ejection ended (Envoy lowers its multiplier on each quiet interval).
        let quiet = now.saturating_sub(b.last_ejection_end.load(Ordering::Relaxed)) / base;
        let streak = (b.ejection_streak.load(Ordering::Relaxed) as u64).saturating_sub(quiet) + 1;
        let length = (base * streak).min(s.max_ejection.as_millis() as u64).max(1);
        b.ejection_streak.store(streak as u32, Ordering::Relaxed);
        b.last_ejection_end.store(now + length, Ordering::Relaxed);
        b.ejected_until.store(now + length, Ordering::Release);
        b.ejections.fetch_add(1, Ordering::Relaxed);
        self.ejected.fetch_add(1, Ordering::AcqRel);
        true
    }
}
