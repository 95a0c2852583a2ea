//! Shared upstream HTTP/2 connections: many requests multiplexed on one connection per peer (up to
//! the peer's `max_h2_streams`), kept healthy by PINGs while idle, and retired on GOAWAY or error.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use h2::client::SendRequest;
use parking_lot::Mutex;

use super::pool::slot_key;
use crate::error::{Error, ErrorKind, ErrorSource, Result};
use crate::protocol::h2::H2Options;
use crate::protocol::stream::Stream;

struct Shared {
    sender: SendRequest<Bytes>,
    active: Arc<AtomicUsize>,
    max_streams: usize,
    closed: Arc<AtomicBool>,
}

/// A stream's claim on a pooled H2 connection; the slot frees when it drops.
#[derive(Debug)]
pub struct H2Ticket {
    active: Arc<AtomicUsize>,
}

impl Drop for H2Ticket {
    fn drop(&mut self) {
        self.active.fetch_sub(1, Ordering::AcqRel);
    }
}

/// H2 connections by peer key.
#[derive(Default)]
pub(crate) struct H2Pool {
    conns: Mutex<HashMap<u64, Vec<Shared>>>,
    /// One connect at a time per key, so a burst of requests shares the first connection instead
    /// of each opening its own.
    connecting: Mutex<HashMap<u64, Arc<tokio::sync::Mutex<()>>>>,
    opened: AtomicU64,
}

impl H2Pool {
    /// A stream slot on a live connection for `key`, if one has room.
    pub(crate) fn take(&self, key: u64) -> Option<(SendRequest<Bytes>, H2Ticket)> {
        let key = slot_key(key);
        let mut map = self.conns.lock();
        let list = map.get_mut(&key)?;
        list.retain(|c| !c.closed.load(Ordering::Acquire));
        let c = list.iter().find(|c| c.active.load(Ordering::Acquire) < c.max_streams)?;
        c.active.fetch_add(1, Ordering::AcqRel);
        Some((c.sender.clone(), H2Ticket { active: c.active.clone() }))
    }

    /// The lock serialising connects to `key`.
    pub(crate) fn connect_lock(&self, key: u64) -> Arc<tokio::sync::Mutex<()>> {
        self.connecting.lock().entry(slot_key(key)).or_default().clone()
    }

    /// Connections opened so far.
    pub(crate) fn opened(&self) -> u64 {
        self.opened.load(Ordering::Relaxed)
    }

    /// Performs the H2 handshake on `stream`, starts the task that drives the connection, adds it
    /// to the pool and returns a first stream slot on it.
    pub(crate) async fn open(
        &self,
        key: u64,
        stream: Stream,
        opts: &H2Options,
        max_streams: usize,
    ) -> Result<(SendRequest<Bytes>, H2Ticket)> {
        let (sender, mut conn) = opts.client().handshake::<_, Bytes>(stream).await.map_err(|e| {
            Error::new(ErrorKind::ConnectError, ErrorSource::Upstream, "HTTP/2 handshake").with_cause(e)
        })?;
        self.opened.fetch_add(1, Ordering::Relaxed);
        let closed = Arc::new(AtomicBool::new(false));
        let active = Arc::new(AtomicUsize::new(1));
        let mut ping = conn.ping_pong();
        let (flag, idle) = (closed.clone(), active.clone());
        let (every, patience) = (opts.ping_interval, opts.ping_timeout);
        tokio::spawn(async move {
            let mut ticker = tokio::time::interval(every);
            ticker.tick().await;
            loop {
                tokio::select! {
                    _ = &mut conn => break,
                    _ = ticker.tick() => {
                        // Only idle connections need proof of life; busy ones show it with traffic.
                        if idle.load(Ordering::Acquire) > 0 {
                            continue;
                        }
                        let Some(p) = ping.as_mut() else { continue };
                        let pong = tokio::time::timeout(patience, p.ping(h2::Ping::opaque()));
                        let alive = tokio::select! {
                            r = pong => matches!(r, Ok(Ok(_))),
                            _ = &mut conn => false,
                        };
                        if !alive {
                            break;
                        }
                    }
                }
            }
            flag.store(true, Ordering::Release);
        });
        let shared = Shared {
            sender: sender.clone(),
            active: active.clone(),
            max_streams: max_streams.max(1),
            closed,
        };
        self.conns.lock().entry(slot_key(key)).or_default().push(shared);
        Ok((sender, H2Ticket { active }))
    }
}

impl std::fmt::Debug for H2Pool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("H2Pool").field("opened", &self.opened()).finish()
    }
}
