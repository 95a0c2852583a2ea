//! Connection caps: how many connections an endpoint, and a whole service, may hold at once.
//!
//! Overload behaviour: a connection past a cap is accepted and closed at once, without reading
//! from it or answering. That refuses fast for every protocol alike (HTTP/1, h2c, TLS before its
//! handshake), costs no more than the accept, and keeps the backlog draining: a connection left
//! unaccepted would wait in the kernel's queue until its client gives up. An HTTP/1 503 would
//! need the request read first (a slow client could then hold the slot the cap protects), and
//! would mean nothing to an HTTP/2 or TLS client. Connections already served are never touched.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

/// One cap: connections holding a slot now, and the most that may.
#[derive(Debug)]
pub(crate) struct Cap {
    open: AtomicUsize,
    max: usize,
}

impl Cap {
    /// A cap of `max` connections; `None` for 0 (no cap).
    pub(crate) fn new(max: usize) -> Option<Arc<Cap>> {
        (max > 0).then(|| Arc::new(Cap { open: AtomicUsize::new(0), max }))
    }

    fn try_acquire(self: &Arc<Self>) -> Option<Slot> {
        self.open
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| (n < self.max).then_some(n + 1))
            .ok()
            .map(|_| Slot(self.clone()))
    }
}

/// A slot in one cap, given back when dropped.
#[derive(Debug)]
struct Slot(Arc<Cap>);

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.open.fetch_sub(1, Ordering::AcqRel);
    }
}

/// The caps one endpoint's connections count against: its own and its service's.
#[derive(Debug, Clone, Default)]
pub(crate) struct Caps {
    pub(crate) listener: Option<Arc<Cap>>,
    pub(crate) service: Option<Arc<Cap>>,
}

/// Which cap refused a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refused {
    Listener(usize),
    Service(usize),
}

/// A connection's slots in its caps, held for its life.
#[derive(Debug)]
pub(crate) struct Admission {
    _listener: Option<Slot>,
    _service: Option<Slot>,
}

impl Caps {
    /// Slots in every cap, or the cap that is full (a slot taken in the other is given back).
    pub(crate) fn admit(&self) -> Result<Admission, Refused> {
        let listener = match &self.listener {
            Some(c) => Some(c.try_acquire().ok_or(Refused::Listener(c.max))?),
            None => None,
        };
        let service = match &self.service {
            Some(c) => Some(c.try_acquire().ok_or(Refused::Service(c.max))?),
            None => None,
        };
        Ok(Admission { _listener: listener, _service: service })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_cap_refuses_and_a_freed_slot_admits_again() {
        let caps = Caps { listener: Cap::new(2), service: Cap::new(3) };
        let other = Caps { listener: Cap::new(5), service: caps.service.clone() };
        let a = caps.admit().unwrap();
        let _b = caps.admit().unwrap();
        assert_eq!(caps.admit().unwrap_err(), Refused::Listener(2));
        let _c = other.admit().unwrap();
        // The service cap is full; the other endpoint's own slot is given back.
        assert_eq!(other.admit().unwrap_err(), Refused::Service(3));
        assert_eq!(other.listener.as_ref().unwrap().open.load(Ordering::Acquire), 1);
        drop(a);
        let _d = caps.admit().unwrap();
        assert!(Caps::default().admit().is_ok());
        assert!(Cap::new(0).is_none());
    }
}
