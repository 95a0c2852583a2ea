//! `proxy_session`: one request/response exchange as a callback sees it, and its accessors.
//!
//! The handle is a per-request cell. While a callback runs (or while the request is PENDING) the
//! cell holds pointers to the core's `Session` and to the phase's extra data (the upstream request
//! head, the response head, the body chunk); accessors lock the cell, check the phase, and work on
//! those. The worker clears the pointers under the same lock before it touches the session again,
//! so a host thread can never race the worker, even when a pending deadline fires.

use std::collections::HashMap;
use std::ffi::c_void;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};

use crate::protocol::http::Headers;
use bytes::Bytes;
use parking_lot::Mutex;
use tokio::sync::oneshot;

use super::result::*;
use crate::protocol::http::{RequestHead, ResponseHead};
use crate::proxy::Session;
use crate::upstream::HttpPeer;

/// The phase a callback runs in (`proxy_session_phase`).
pub type proxy_phase = u32;
/// No callback is running.
pub const PROXY_PHASE_NONE: proxy_phase = 0;
/// `early_request_filter`.
pub const PROXY_PHASE_EARLY_REQUEST_FILTER: proxy_phase = 1;
/// `request_filter`.
pub const PROXY_PHASE_REQUEST_FILTER: proxy_phase = 2;
/// `upstream_peer`.
pub const PROXY_PHASE_UPSTREAM_PEER: proxy_phase = 3;
/// `connected_to_upstream`.
pub const PROXY_PHASE_CONNECTED_TO_UPSTREAM: proxy_phase = 4;
/// `upstream_request_filter`.
pub const PROXY_PHASE_UPSTREAM_REQUEST_FILTER: proxy_phase = 5;
/// `request_body_filter`.
pub const PROXY_PHASE_REQUEST_BODY_FILTER: proxy_phase = 6;
/// `upstream_response_filter`.
pub const PROXY_PHASE_UPSTREAM_RESPONSE_FILTER: proxy_phase = 7;
/// `response_filter`.
pub const PROXY_PHASE_RESPONSE_FILTER: proxy_phase = 8;
/// `upstream_response_body_filter`.
pub const PROXY_PHASE_UPSTREAM_RESPONSE_BODY_FILTER: proxy_phase = 9;
/// `response_body_filter`.
pub const PROXY_PHASE_RESPONSE_BODY_FILTER: proxy_phase = 10;
/// `logging`.
pub const PROXY_PHASE_LOGGING: proxy_phase = 11;
/// `fail_to_connect`.
pub const PROXY_PHASE_FAIL_TO_CONNECT: proxy_phase = 12;
/// `error_while_proxy`.
pub const PROXY_PHASE_ERROR_WHILE_PROXY: proxy_phase = 13;
/// `fail_to_proxy`.
pub const PROXY_PHASE_FAIL_TO_PROXY: proxy_phase = 14;
/// `request_end` (only `proxy_session_get_user` / `_set_user` / `_phase` work here).
pub const PROXY_PHASE_REQUEST_END: proxy_phase = 15;
/// `request_cache_filter` (ABI 0.7).
pub const PROXY_PHASE_REQUEST_CACHE_FILTER: proxy_phase = 16;
/// `cache_key_callback` (ABI 0.7).
pub const PROXY_PHASE_CACHE_KEY_CALLBACK: proxy_phase = 17;
/// `cache_hit_filter` (ABI 0.7).
pub const PROXY_PHASE_CACHE_HIT_FILTER: proxy_phase = 18;
/// `response_cache_filter` (ABI 0.7).
pub const PROXY_PHASE_RESPONSE_CACHE_FILTER: proxy_phase = 19;

/// Which header block a header accessor works on.
pub type proxy_headers_kind = u32;
/// The downstream request (readable in every phase, writable up to `connected_to_upstream`).
pub const PROXY_HEADERS_REQUEST: proxy_headers_kind = 1;
/// The request about to go upstream (only in `upstream_request_filter`).
pub const PROXY_HEADERS_UPSTREAM_REQUEST: proxy_headers_kind = 2;
/// The response: writable in `upstream_response_filter` / `response_filter`, readable afterwards.
pub const PROXY_HEADERS_RESPONSE: proxy_headers_kind = 3;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum State {
    /// No callback running, not pending: accessors answer WRONG_PHASE.
    Idle,
    InCallback,
    Pending,
    Ended,
}

/// Per-phase data besides the session: pointers to the worker's values, valid while the cell is
/// open. All of it is `Copy`, so opening and closing the cell drops nothing.
#[derive(Clone, Copy)]
pub(crate) enum Extra {
    None,
    UpstreamRequest(*mut RequestHead),
    Response(*mut ResponseHead),
    Body(*mut Option<Bytes>, bool),
    /// The error as text (the worker's string, kept until it closes the cell) and whether
    /// another attempt is allowed.
    Failure {
        error: *const str,
        retry: bool,
    },
    Connected {
        reused: bool,
    },
    /// `request_cache_filter`: bypass the cache; `cache_hit_filter`: treat the hit as expired.
    CacheFlag(*mut bool),
    /// `cache_key_callback`: the key the host chose.
    CacheKey(*mut Option<crate::cache::CacheKey>),
    /// `response_cache_filter`: the response (read-only) and the decision the host may change.
    CacheVerdict {
        response: *const ResponseHead,
        verdict: *mut crate::cache::CacheVerdict,
    },
}

// SAFETY: the pointers are handed from the worker to the cell and only dereferenced under the
// cell's lock while the worker is parked; moving them between threads with the future is fine.
unsafe impl Send for Extra {}

/// The resume decision of a session (see `proxy_session_resume`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Decision {
    /// Nothing to resume: no callback asked for the id since the last decision was consumed.
    None,
    /// The callback with this sequence number asked for the id (or returned PENDING): the next
    /// resume decides it.
    Armed(u64),
    /// The decision of the callback with this sequence number was resumed: later resumes answer
    /// ALREADY until a later callback arms a new decision.
    Resumed(u64),
}

pub(crate) struct Access {
    pub(crate) state: State,
    pub(crate) phase: proxy_phase,
    pub(crate) session: *mut Session,
    pub(crate) extra: Extra,
    /// Chosen in `upstream_peer`.
    pub(crate) peer: Option<HttpPeer>,
    /// Why `proxy_session_pick` found no backend: the request's error if the callback goes on.
    pub(crate) pick_error: Option<Box<crate::error::Error>>,
    /// Counts callbacks (`enter`), so a decision knows which callback it belongs to.
    pub(crate) seq: u64,
    pub(crate) decision: Decision,
    /// A resume that arrived while the callback was still running.
    pub(crate) early: Option<proxy_action>,
    pub(crate) waker: Option<oneshot::Sender<proxy_action>>,
    /// A pending deadline passed: resumes answer GONE from then on, and the host's threads
    /// (outside callbacks) get GONE from every accessor.
    pub(crate) expired: bool,
    /// A host thread holds the handle of a pending wait it has not resumed yet: the cell must
    /// outlive the request until it does.
    pub(crate) host_holds: bool,
    pub(crate) user: *mut c_void,
    pub(crate) client_addr: Option<String>,
    pub(crate) server_addr: Option<String>,
    pub(crate) uri: Option<String>,
}

/// The text in the cache slot `slot` picks from `ctx` (`Access::uri`, `client_addr`,
/// `server_addr`): `make` builds it only while the slot is empty, so repeated calls format nothing
/// and hand out views of the same string until the slot is reset. An error from `make`
/// (WRONG_PHASE, NOT_FOUND) leaves the slot empty. Callers check the phase before: a filled slot
/// answers whatever the phase.
pub(crate) fn cached_text<C>(
    ctx: &mut C,
    slot: fn(&mut C) -> &mut Option<String>,
    make: impl FnOnce(&C) -> Result<String, proxy_result>,
) -> Result<&str, proxy_result> {
    if slot(ctx).is_none() {
        let text = make(ctx)?;
        *slot(ctx) = Some(text);
    }
    Ok(slot(ctx).as_deref().unwrap_or_default())
}

/// One request/response exchange, borrowed by callbacks. Valid inside a callback for that request
/// and, while the request is PENDING, from the one thread that will resume it until it calls
/// `proxy_session_resume`, even when the pending deadline passed or the request ended meanwhile
/// (accessors then answer GONE; the resume answers GONE and releases the handle). Never free it.
///
/// Methods: proxy_session_id, proxy_session_phase, proxy_session_method, proxy_session_uri,
/// proxy_session_set_uri,
/// proxy_session_path, proxy_session_query, proxy_session_version, proxy_session_client_addr,
/// proxy_session_server_addr, proxy_session_header_count, proxy_session_header_get,
/// proxy_session_header_nth, proxy_session_headers, proxy_session_header_set,
/// proxy_session_header_add, proxy_session_header_remove, proxy_session_set_peer,
/// proxy_session_response_status, proxy_session_set_response_status, proxy_session_respond,
/// proxy_session_body, proxy_session_set_body, proxy_session_upstream_reused, proxy_session_error,
/// proxy_session_set_retry, proxy_session_retries, proxy_session_summary, proxy_session_set_user,
/// proxy_session_get_user.
pub struct proxy_session {
    pub(crate) access: Mutex<Access>,
    pub(crate) registry: Arc<Registry>,
    pub(crate) id: AtomicU64,
    pub(crate) me: Weak<proxy_session>,
}

// SAFETY: the raw pointers inside `Access` are only dereferenced under the mutex, while the worker
// that owns the pointees is parked in the callback or in the pending wait (see module docs).
unsafe impl Send for proxy_session {}
// SAFETY: as above.
unsafe impl Sync for proxy_session {}

/// Pending-capable sessions of one server, by id. Ids are never reused (a u64 counter), so a stale
/// id can only miss: GONE. The cells form a cycle with the registry while registered; `end`,
/// `resume` and `clear` (at server free) break it.
#[derive(Default)]
pub(crate) struct Registry {
    pub(crate) next: AtomicU64,
    /// Strong: a cell stays alive while its id is registered, which lasts until the request ended
    /// and, when a host thread still holds the handle of an unresumed pending wait, until that
    /// thread resumes (answered GONE) or the server is freed.
    pub(crate) map: Mutex<HashMap<u64, Arc<proxy_session>>>,
}

impl Registry {
    pub(crate) fn resume(&self, id: u64, action: proxy_action) -> proxy_result {
        let cell = match self.map.lock().get(&id) {
            Some(c) => c.clone(),
            None => return PROXY_GONE,
        };
        let mut a = cell.access.lock();
        let r = if a.expired {
            PROXY_GONE
        } else {
            match (a.state, a.decision) {
                (State::Ended, _) => PROXY_GONE,
                (_, Decision::Resumed(_)) => PROXY_ALREADY,
                (State::Pending, Decision::Armed(n)) => match a.waker.take() {
                    Some(tx) => {
                        a.decision = Decision::Resumed(n);
                        let _ = tx.send(action);
                        PROXY_OK
                    }
                    None => PROXY_GONE,
                },
                // Resumed before the callback returned PENDING: kept until it does.
                (State::InCallback, Decision::Armed(n)) if n == a.seq => {
                    a.early = Some(action);
                    a.decision = Decision::Resumed(n);
                    PROXY_OK
                }
                // The wait this decision belonged to is over without a resume.
                (_, Decision::Armed(_)) => PROXY_GONE,
                (_, Decision::None) => PROXY_WRONG_STATE,
            }
        };
        if r == PROXY_OK || r == PROXY_GONE {
            // The host gives its handle back with this call.
            a.host_holds = false;
        }
        let release = a.state == State::Ended && r == PROXY_GONE;
        drop(a);
        if release {
            // Kept only for this host thread: nothing can reach the cell any more.
            let cell = self.map.lock().remove(&id);
            drop(cell);
        }
        r
    }

    /// Drops the cells still kept for hosts that never resumed (the server is being freed; the
    /// header's contract ends every handle there).
    pub(crate) fn clear(&self) {
        let cells = std::mem::take(&mut *self.map.lock());
        drop(cells);
    }
}

impl proxy_session {
    pub(crate) fn new(registry: Arc<Registry>) -> Arc<Self> {
        Arc::new_cyclic(|me| proxy_session {
            me: me.clone(),
            access: Mutex::new(Access {
                state: State::Idle,
                phase: PROXY_PHASE_NONE,
                session: std::ptr::null_mut(),
                extra: Extra::None,
                peer: None,
                pick_error: None,
                seq: 0,
                decision: Decision::None,
                early: None,
                waker: None,
                expired: false,
                host_holds: false,
                user: std::ptr::null_mut(),
                client_addr: None,
                server_addr: None,
                uri: None,
            }),
            registry,
            id: AtomicU64::new(0),
        })
    }

    /// The session's id, registering the cell under it on first use (the worker going PENDING and
    /// a host thread asking for the id may race: one id wins).
    pub(crate) fn register(&self) -> u64 {
        let id = self.id.load(Ordering::Acquire);
        if id != 0 {
            return id;
        }
        let new = self.registry.next.fetch_add(1, Ordering::Relaxed) + 1;
        match self.id.compare_exchange(0, new, Ordering::AcqRel, Ordering::Acquire) {
            Ok(_) => {
                if let Some(me) = self.me.upgrade() {
                    self.registry.map.lock().insert(new, me);
                }
                new
            }
            Err(won) => won,
        }
    }

    /// Opens the cell for a callback of `phase`.
    #[inline]
    pub(crate) fn enter(&self, phase: proxy_phase, session: *mut Session, extra: Extra) {
        let mut a = self.access.lock();
        a.state = State::InCallback;
        a.phase = phase;
        a.session = session;
        a.extra = extra;
        a.seq += 1;
    }

    /// Forgets what a callback that did not wait left of its decision: an unused arming, or an
    /// early resume it did not honour (the decision stays resumed: a second resume is ALREADY).
    pub(crate) fn settle(a: &mut Access) {
        a.early = None;
        if a.state == State::InCallback && a.decision == Decision::Armed(a.seq) {
            a.decision = Decision::None;
        }
    }

    /// Closes the cell: no pointer into the request survives this.
    #[inline(always)]
    pub(crate) fn close(&self) {
        Self::reset(&mut self.access.lock());
    }

    /// Like `close`, and hands back the retry decision a failure phase's callback left.
    pub(crate) fn leave(&self) -> Option<bool> {
        let mut a = self.access.lock();
        let retry = match a.extra {
            Extra::Failure { retry, .. } => Some(retry),
            _ => None,
        };
        Self::reset(&mut a);
        retry
    }

    #[inline(always)]
    fn reset(a: &mut Access) {
        Self::settle(a);
        a.state = State::Idle;
        a.phase = PROXY_PHASE_NONE;
        a.session = std::ptr::null_mut();
        a.waker = None;
        a.extra = Extra::None;
    }

    /// The peer the last upstream_peer callback chose, if it chose one.
    pub(crate) fn take_peer(&self) -> Option<HttpPeer> {
        self.access.lock().peer.take()
    }

    /// Why the last `proxy_session_pick` found no backend, if it did not.
    pub(crate) fn take_pick_error(&self) -> Option<Box<crate::error::Error>> {
        self.access.lock().pick_error.take()
    }

    /// The request is over: later resumes and accessors answer GONE. When a host thread still
    /// holds the handle of a wait it did not resume (deadline passed, client gone, shutdown), the
    /// registry keeps the cell until that thread resumes, so its accessors read a live cell.
    pub(crate) fn end(&self) {
        let keep = {
            let mut a = self.access.lock();
            a.state = State::Ended;
            a.session = std::ptr::null_mut();
            a.extra = Extra::None;
            a.waker = None;
            a.host_holds
        };
        let id = self.id.load(Ordering::Acquire);
        if id != 0 && !keep {
            let cell = self.registry.map.lock().remove(&id);
            drop(cell);
        }
    }

    /// Locks the cell and runs `f` if a callback is running or the request is pending.
    pub(crate) fn with<R>(
        &self,
        f: impl FnOnce(&mut Access) -> Result<R, proxy_result>,
    ) -> Result<R, proxy_result> {
        let mut a = self.access.lock();
        // After a pending deadline the host's threads get GONE; later callbacks on the worker
        // (fail_to_proxy, logging) still see the session.
        if a.expired && !super::inside_callback() {
            return Err(PROXY_GONE);
        }
        match a.state {
            State::InCallback | State::Pending => f(&mut a),
            State::Ended => Err(PROXY_GONE),
            State::Idle => Err(PROXY_WRONG_PHASE),
        }
    }
}

impl Access {
    pub(crate) fn session(&self) -> Result<&Session, proxy_result> {
        // SAFETY: non-NULL only between enter() and leave(), while the worker is parked.
        unsafe { self.session.as_ref() }.ok_or(PROXY_WRONG_PHASE)
    }

    pub(crate) fn session_mut(&mut self) -> Result<&mut Session, proxy_result> {
        // SAFETY: as above; the lock makes this the only user.
        unsafe { self.session.as_mut() }.ok_or(PROXY_WRONG_PHASE)
    }

    pub(crate) fn headers(&self, kind: proxy_headers_kind) -> Result<&Headers, proxy_result> {
        match kind {
            PROXY_HEADERS_REQUEST => Ok(&self.session()?.req.headers),
            PROXY_HEADERS_UPSTREAM_REQUEST => match self.extra {
                // SAFETY: valid while the cell is open (see `session`).
                Extra::UpstreamRequest(p) => Ok(&unsafe { &*p }.headers),
                _ => Err(PROXY_WRONG_PHASE),
            },
            PROXY_HEADERS_RESPONSE => match self.extra {
                // SAFETY: as above.
                Extra::Response(p) => Ok(&unsafe { &*p }.headers),
                // SAFETY: as above.
                Extra::CacheVerdict { response, .. } => Ok(&unsafe { &*response }.headers),
                _ => self.session()?.response().map(|r| &r.headers).ok_or(PROXY_WRONG_PHASE),
            },
            _ => Err(PROXY_INVALID_PARAMETER),
        }
    }

    pub(crate) fn headers_mut(&mut self, kind: proxy_headers_kind) -> Result<&mut Headers, proxy_result> {
        match kind {
            PROXY_HEADERS_REQUEST => match self.phase {
                PROXY_PHASE_EARLY_REQUEST_FILTER
                | PROXY_PHASE_REQUEST_FILTER
                | PROXY_PHASE_UPSTREAM_PEER
                | PROXY_PHASE_CONNECTED_TO_UPSTREAM => Ok(&mut self.session_mut()?.req.headers),
                _ => Err(PROXY_WRONG_PHASE),
            },
            PROXY_HEADERS_UPSTREAM_REQUEST => match self.extra {
                // SAFETY: valid while the cell is open.
                Extra::UpstreamRequest(p) => Ok(&mut unsafe { &mut *p }.headers),
                _ => Err(PROXY_WRONG_PHASE),
            },
            PROXY_HEADERS_RESPONSE => match self.extra {
                // SAFETY: as above.
                Extra::Response(p) => Ok(&mut unsafe { &mut *p }.headers),
                _ => Err(PROXY_WRONG_PHASE),
            },
            _ => Err(PROXY_INVALID_PARAMETER),
        }
    }
}

/// Writes `v` to `*out` and answers OK.
pub(crate) fn put<T>(out: &mut T, r: Result<T, proxy_result>) -> proxy_result {
    match r {
        Ok(v) => {
            *out = v;
            PROXY_OK
        }
        Err(c) => c,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A stand-in for `Access`: one cache slot and a count of how often the text was built.
    struct Ctx {
        slot: Option<String>,
        built: std::cell::Cell<u32>,
        source: Result<&'static str, proxy_result>,
    }

    fn get(c: &mut Ctx) -> Result<(*const u8, String), proxy_result> {
        let text = cached_text(
            c,
            |c| &mut c.slot,
            |c| {
                c.built.set(c.built.get() + 1);
                c.source.map(str::to_string)
            },
        )?;
        Ok((text.as_ptr(), text.to_string()))
    }

    #[test]
    fn cached_text_is_built_once_and_handed_out_at_the_same_address() {
        let mut c = Ctx { slot: None, built: 0.into(), source: Ok("127.0.0.1:5678") };
        let (p1, t1) = get(&mut c).unwrap();
        let (p2, t2) = get(&mut c).unwrap();
        let (p3, _) = get(&mut c).unwrap();
        assert_eq!((t1.as_str(), t2.as_str()), ("127.0.0.1:5678", "127.0.0.1:5678"));
        assert_eq!((p1, p1), (p2, p3), "the view must point into the one cached string");
        assert_eq!(c.built.get(), 1, "the text must be built on the first call only");
        // Reset (proxy_session_set_uri does this): built again, once.
        c.slot = None;
        c.source = Ok("/new");
        assert_eq!(get(&mut c).unwrap().1, "/new");
        assert_eq!(get(&mut c).unwrap().1, "/new");
        assert_eq!(c.built.get(), 2);
    }

    #[test]
    fn cached_text_errors_leave_the_slot_empty() {
        let mut c = Ctx { slot: None, built: 0.into(), source: Err(PROXY_NOT_FOUND) };
        assert_eq!(get(&mut c).unwrap_err(), PROXY_NOT_FOUND);
        assert_eq!(get(&mut c).unwrap_err(), PROXY_NOT_FOUND);
        assert!(c.slot.is_none());
        assert_eq!(c.built.get(), 2, "a failed build is retried, nothing was cached");
    }
}
