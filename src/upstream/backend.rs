//! A backend of an upstream group: what the host configures (name, peer, weight) and the shared
//! state that lives as long as the backend stays in the group, across snapshot swaps (requests in
//! flight, figures, health).

use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};

use super::HttpPeer;

/// Largest backend weight (HAProxy's range): round robin keeps one slot per unit of weight, and
/// Ketama 160 points.
///
/// cbindgen:ignore
pub const MAX_WEIGHT: u32 = 256;

/// One backend as configured.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Backend {
    /// Its name: what consistent hashing hashes (nginx hashes the text of its `server`
    /// directive), and how figures and health changes name it. The address as given by default.
    pub name: String,
    /// Where and how to connect (TLS, ALPN, timeouts).
    pub peer: HttpPeer,
    /// Its share of the traffic, 1..=[`MAX_WEIGHT`].
    pub weight: u32,
}

impl Backend {
    /// A backend at `address` (as [`HttpPeer::new`] takes it) with default options, named by the
    /// address.
    pub fn new(address: &str, weight: u32) -> Result<Self, &'static str> {
        if !(1..=MAX_WEIGHT).contains(&weight) {
            return Err("weight must be 1..=256");
        }
        Ok(Backend { name: address.to_owned(), peer: HttpPeer::new(address)?, weight })
    }
}

/// A backend's figures at one moment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackendFigures {
    /// The backend's name.
    pub name: String,
    /// Its weight.
    pub weight: u32,
    /// Requests sent to it (attempts, retries included).
    pub requests: u64,
    /// Attempts that failed (connect failure, timeout, 5xx).
    pub failures: u64,
    /// Times passive health ejected it.
    pub ejections: u64,
    /// Requests in flight now.
    pub in_flight: u64,
    /// HTTP/1 connections open to it now, busy or pooled.
    pub connections: u64,
    /// Whether active health checks consider it up (true without checks).
    pub healthy: bool,
    /// Whether passive health has it ejected now.
    pub ejected: bool,
}

/// The live state of a backend, shared by every snapshot that contains it and by the picks that
/// use it: a backend replaced while requests run on it keeps their counts until they end.
#[derive(Debug)]
pub(crate) struct BackendState {
    pub(crate) backend: Backend,
    /// The name again, shared: each request's logging summary names its backend without a copy.
    pub(crate) label: std::sync::Arc<str>,
    /// Unique in the process, so a retry can exclude it across snapshot swaps.
    pub(crate) id: u64,
    pub(crate) in_flight: AtomicU64,
    /// HTTP/1 connections open to it (see [`super::ConnectionCount`]).
    pub(crate) connections: AtomicU64,
    pub(crate) requests: AtomicU64,
    pub(crate) failures: AtomicU64,
    pub(crate) ejections: AtomicU64,
    /// Active health: false once the checks saw `fall` failures in a row.
    pub(crate) healthy: AtomicBool,
    /// Passive health: failures in a row.
    pub(crate) consecutive_failures: AtomicU32,
    /// Passive health: ejected until this many milliseconds after the group's epoch (0: not).
    pub(crate) ejected_until: AtomicU64,
    /// Passive health: when the last ejection ended or will end (ms after the epoch), and how
    /// many ejections in a row multiply the next one's length.
    pub(crate) last_ejection_end: AtomicU64,
    pub(crate) ejection_streak: AtomicU32,
}

impl BackendState {
    pub(crate) fn new(backend: Backend) -> Self {
        static IDS: AtomicU64 = AtomicU64::new(1);
        BackendState {
            label: backend.name.as_str().into(),
            backend,
            id: IDS.fetch_add(1, Ordering::Relaxed),
            in_flight: AtomicU64::new(0),
            connections: AtomicU64::new(0),
            requests: AtomicU64::new(0),
            failures: AtomicU64::new(0),
            ejections: AtomicU64::new(0),
            healthy: AtomicBool::new(true),
            consecutive_failures: AtomicU32::new(0),
            ejected_until: AtomicU64::new(0),
            last_ejection_end: AtomicU64::new(0),
            ejection_streak: AtomicU32::new(0),
        }
    }

    pub(crate) fn figures(&self) -> BackendFigures {
        BackendFigures {
            name: self.backend.name.clone(),
            weight: self.backend.weight,
            requests: self.requests.load(Ordering::Relaxed),
            failures: self.failures.load(Ordering::Relaxed),
            ejections: self.ejections.load(Ordering::Relaxed),
            in_flight: self.in_flight.load(Ordering::Relaxed),
            connections: self.connections.load(Ordering::Relaxed),
            healthy: self.healthy.load(Ordering::Relaxed),
            ejected: self.ejected_until.load(Ordering::Relaxed) != 0,
        }
    }
}
