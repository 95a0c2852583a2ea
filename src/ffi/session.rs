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

use bytes::Bytes;
use http::header::{CONTENT_LENGTH, TRANSFER_ENCODING};
use http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use parking_lot::Mutex;
use tokio::sync::oneshot;

use super::result::*;
use super::types::*;
use crate::protocol::h1::{RequestHead, ResponseHead};
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

/// Per-phase data besides the session.
pub(crate) enum Extra {
    None,
    UpstreamRequest(*mut RequestHead),
    Response(*mut ResponseHead),
    Body(*mut Option<Bytes>, bool),
    Failure { error: String, retry: bool },
    Connected { reused: bool },
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
    session: *mut Session,
    pub(crate) extra: Extra,
    /// Chosen in `upstream_peer`.
    pub(crate) peer: Option<HttpPeer>,
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
    user: *mut c_void,
    client_addr: Option<String>,
    server_addr: Option<String>,
    uri: Option<String>,
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
    id: AtomicU64,
    me: Weak<proxy_session>,
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
    next: AtomicU64,
    /// Strong: a cell stays alive while its id is registered, which lasts until the request ended
    /// and, when a host thread still holds the handle of an unresumed pending wait, until that
    /// thread resumes (answered GONE) or the server is freed.
    map: Mutex<HashMap<u64, Arc<proxy_session>>>,
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
    fn settle(a: &mut Access) {
        a.early = None;
        if a.state == State::InCallback && a.decision == Decision::Armed(a.seq) {
            a.decision = Decision::None;
        }
    }

    /// Closes the cell: no pointer into the request survives this.
    pub(crate) fn leave(&self) -> Access2 {
        let mut a = self.access.lock();
        Self::settle(&mut a);
        a.state = State::Idle;
        a.phase = PROXY_PHASE_NONE;
        a.session = std::ptr::null_mut();
        a.waker = None;
        let extra = std::mem::replace(&mut a.extra, Extra::None);
        Access2 {
            peer: a.peer.take(),
            retry: match extra {
                Extra::Failure { retry, .. } => Some(retry),
                _ => None,
            },
        }
    }

    /// Like `leave` for phases that choose neither a peer nor a retry: nothing is moved out.
    pub(crate) fn close(&self) {
        let mut a = self.access.lock();
        Self::settle(&mut a);
        a.state = State::Idle;
        a.phase = PROXY_PHASE_NONE;
        a.session = std::ptr::null_mut();
        a.waker = None;
        a.extra = Extra::None;
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
    fn with<R>(&self, f: impl FnOnce(&mut Access) -> Result<R, proxy_result>) -> Result<R, proxy_result> {
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

/// What the worker takes out of the cell when a callback is done.
pub(crate) struct Access2 {
    pub(crate) peer: Option<HttpPeer>,
    pub(crate) retry: Option<bool>,
}

impl Access {
    fn session(&self) -> Result<&Session, proxy_result> {
        // SAFETY: non-NULL only between enter() and leave(), while the worker is parked.
        unsafe { self.session.as_ref() }.ok_or(PROXY_WRONG_PHASE)
    }

    fn session_mut(&mut self) -> Result<&mut Session, proxy_result> {
        // SAFETY: as above; the lock makes this the only user.
        unsafe { self.session.as_mut() }.ok_or(PROXY_WRONG_PHASE)
    }

    fn headers(&self, kind: proxy_headers_kind) -> Result<&HeaderMap, proxy_result> {
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
                _ => self.session()?.response().map(|r| &r.headers).ok_or(PROXY_WRONG_PHASE),
            },
            _ => Err(PROXY_INVALID_PARAMETER),
        }
    }

    fn headers_mut(&mut self, kind: proxy_headers_kind) -> Result<&mut HeaderMap, proxy_result> {
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
fn put<T>(out: &mut T, r: Result<T, proxy_result>) -> proxy_result {
    match r {
        Ok(v) => {
            *out = v;
            PROXY_OK
        }
        Err(c) => c,
    }
}

fn header_name(name: &proxy_str) -> Result<HeaderName, proxy_result> {
    HeaderName::from_bytes(name.bytes()?).map_err(|_| PROXY_HEADER_INVALID)
}

/// A name a host may set: valid, and not one of the framing headers the proxy computes itself.
fn settable_name(name: &proxy_str) -> Result<HeaderName, proxy_result> {
    let n = header_name(name)?;
    if n == CONTENT_LENGTH || n == TRANSFER_ENCODING {
        return Err(PROXY_HEADER_INVALID);
    }
    Ok(n)
}

fn header_value(value: &proxy_str) -> Result<HeaderValue, proxy_result> {
    HeaderValue::from_bytes(value.bytes()?).map_err(|_| PROXY_HEADER_INVALID)
}

/// The id to pass to `proxy_session_resume`. Ids are unique for the server's life and never
/// reused, so resuming an old id safely answers `PROXY_GONE`. The id is the same in every phase,
/// but calling this inside a callback also arms that callback's resume decision: call it in the
/// callback that returns `PROXY_PENDING` before handing the id to another thread (a resume that
/// arrives before the callback returned is honoured only then). Errors: NULL_PARAMETER,
/// WRONG_PHASE (not inside a callback nor pending), GONE.
#[no_mangle]
pub extern "C" fn proxy_session_id(s: *const proxy_session, out_id: *mut u64) -> proxy_result {
    ffi_panic_boundary! {
        let s = try_ref!(s);
        let out = try_mut!(out_id);
        let r = s.with(|a| {
            // Inside a callback, asking for the id arms the callback's resume decision (unless
            // it was already armed or resumed by this very callback).
            if a.state == State::InCallback && !a.expired {
                match a.decision {
                    Decision::Armed(n) | Decision::Resumed(n) if n == a.seq => {}
                    _ => a.decision = Decision::Armed(a.seq),
                }
            }
            Ok(())
        });
        try_res!(r);
        *out = s.register();
        PROXY_OK
    }
}

/// The phase whose callback is running (`PROXY_PHASE_*`; `PROXY_PHASE_NONE` outside callbacks).
#[no_mangle]
pub extern "C" fn proxy_session_phase(s: *const proxy_session, out_phase: *mut u32) -> proxy_result {
    ffi_panic_boundary! {
        let s = try_ref!(s);
        let out = try_mut!(out_phase);
        put(out, Ok(s.access.lock().phase))
    }
}

/// The request method, e.g. "GET". Any phase but `request_end`.
#[no_mangle]
pub extern "C" fn proxy_session_method(s: *const proxy_session, out: *mut proxy_str) -> proxy_result {
    ffi_panic_boundary! {
        let s = try_ref!(s);
        let out = try_mut!(out);
        put(out, s.with(|a| Ok(proxy_str::from_bytes(a.session()?.req.method.as_str().as_bytes()))))
    }
}

/// The request target as received (origin form `/a?b`, or absolute / authority form), or as set
/// by `proxy_session_set_uri` in an earlier phase.
#[no_mangle]
pub extern "C" fn proxy_session_uri(s: *const proxy_session, out: *mut proxy_str) -> proxy_result {
    ffi_panic_boundary! {
        let s = try_ref!(s);
        let out = try_mut!(out);
        put(out, s.with(|a| {
            let text = a.session()?.req.uri.to_string();
            let cached = a.uri.get_or_insert(text);
            Ok(proxy_str::from_bytes(cached.as_bytes()))
        }))
    }
}

/// Replaces the request target sent upstream with `uri`, which must be origin-form (`/path` with an
/// optional `?query`; no scheme, authority, fragment, whitespace or control bytes: INVALID_PARAMETER,
/// nothing changed). In early_request_filter, request_filter, upstream_peer and
/// connected_to_upstream it rewrites the request itself (later `proxy_session_uri` / `_path` /
/// `_query` see the new target); in upstream_request_filter only the upstream request. Other
/// phases: WRONG_PHASE. Views from `proxy_session_uri` obtained before are invalidated.
#[no_mangle]
pub extern "C" fn proxy_session_set_uri(s: *const proxy_session, uri: proxy_str) -> proxy_result {
    ffi_panic_boundary! {
        let s = try_ref!(s);
        let bytes = try_res!(uri.bytes());
        let new = try_res!(origin_form(bytes));
        try_res!(s.with(|a| {
            match a.phase {
                PROXY_PHASE_EARLY_REQUEST_FILTER
                | PROXY_PHASE_REQUEST_FILTER
                | PROXY_PHASE_UPSTREAM_PEER
                | PROXY_PHASE_CONNECTED_TO_UPSTREAM => {
                    a.session_mut()?.req.uri = new;
                    a.uri = None;
                }
                PROXY_PHASE_UPSTREAM_REQUEST_FILTER => match a.extra {
                    // SAFETY: valid while the cell is open (see `Access::session`).
                    Extra::UpstreamRequest(p) => unsafe { (*p).uri = new },
                    _ => return Err(PROXY_WRONG_PHASE),
                },
                _ => return Err(PROXY_WRONG_PHASE),
            }
            Ok(())
        }));
        PROXY_OK
    }
}

/// An origin-form request target (`/path?query`), validated like one read from the wire.
fn origin_form(bytes: &[u8]) -> Result<http::Uri, proxy_result> {
    if bytes.first() != Some(&b'/') || bytes.len() > 8192 {
        return Err(PROXY_INVALID_PARAMETER);
    }
    // The http crate rejects bytes outside the URI grammar (space, CR, LF, NUL, other controls,
    // non-ASCII) but would quietly drop a fragment: refuse it, it never goes on the wire.
    if bytes.iter().any(|&b| b == b'#' || b <= b' ' || b >= 0x7f) {
        return Err(PROXY_INVALID_PARAMETER);
    }
    let u = http::Uri::try_from(bytes).map_err(|_| PROXY_INVALID_PARAMETER)?;
    if u.scheme().is_some() || u.authority().is_some() {
        return Err(PROXY_INVALID_PARAMETER);
    }
    Ok(u)
}

/// The path of the request target, without the query.
#[no_mangle]
pub extern "C" fn proxy_session_path(s: *const proxy_session, out: *mut proxy_str) -> proxy_result {
    ffi_panic_boundary! {
        let s = try_ref!(s);
        let out = try_mut!(out);
        put(out, s.with(|a| Ok(proxy_str::from_bytes(a.session()?.req.uri.path().as_bytes()))))
    }
}

/// The query string without `?`. NOT_FOUND when the target has no `?`.
#[no_mangle]
pub extern "C" fn proxy_session_query(s: *const proxy_session, out: *mut proxy_str) -> proxy_result {
    ffi_panic_boundary! {
        let s = try_ref!(s);
        let out = try_mut!(out);
        put(out, s.with(|a| {
            a.session()?.req.uri.query().map(|q| proxy_str::from_bytes(q.as_bytes())).ok_or(PROXY_NOT_FOUND)
        }))
    }
}

/// `proxy_session_version`: HTTP/1.0.
pub const PROXY_HTTP_10: u32 = 10;
/// `proxy_session_version`: HTTP/1.1.
pub const PROXY_HTTP_11: u32 = 11;
/// `proxy_session_version`: HTTP/2 (over TLS by ALPN, or h2c by prior knowledge).
pub const PROXY_HTTP_20: u32 = 20;

/// The downstream request's HTTP version: `PROXY_HTTP_10`, `PROXY_HTTP_11` or `PROXY_HTTP_20`.
#[no_mangle]
pub extern "C" fn proxy_session_version(s: *const proxy_session, out: *mut u32) -> proxy_result {
    ffi_panic_boundary! {
        let s = try_ref!(s);
        let out = try_mut!(out);
        put(out, s.with(|a| Ok(match a.session()?.req.version {
            http::Version::HTTP_09 => 9,
            http::Version::HTTP_10 => PROXY_HTTP_10,
            http::Version::HTTP_2 => PROXY_HTTP_20,
            http::Version::HTTP_3 => 30,
            _ => PROXY_HTTP_11,
        })))
    }
}

/// The client's address as text: `1.2.3.4:5678`, `[::1]:5678` or `unix:/path`. NOT_FOUND if unknown.
#[no_mangle]
pub extern "C" fn proxy_session_client_addr(s: *const proxy_session, out: *mut proxy_str) -> proxy_result {
    ffi_panic_boundary! {
        let s = try_ref!(s);
        let out = try_mut!(out);
        put(out, s.with(|a| {
            let text = a.session()?.client_addr().map(|x| x.to_string()).ok_or(PROXY_NOT_FOUND)?;
            Ok(proxy_str::from_bytes(a.client_addr.get_or_insert(text).as_bytes()))
        }))
    }
}

/// The local address the request arrived on, as text. NOT_FOUND if unknown.
#[no_mangle]
pub extern "C" fn proxy_session_server_addr(s: *const proxy_session, out: *mut proxy_str) -> proxy_result {
    ffi_panic_boundary! {
        let s = try_ref!(s);
        let out = try_mut!(out);
        put(out, s.with(|a| {
            let text = a.session()?.server_addr().map(|x| x.to_string()).ok_or(PROXY_NOT_FOUND)?;
            Ok(proxy_str::from_bytes(a.server_addr.get_or_insert(text).as_bytes()))
        }))
    }
}

/// The number of header fields (each value of a repeated name counts) in block `kind`
/// (`PROXY_HEADERS_*`). WRONG_PHASE when the block does not exist in this phase.
#[no_mangle]
pub extern "C" fn proxy_session_header_count(
    s: *const proxy_session,
    kind: u32,
    out_n: *mut usize,
) -> proxy_result {
    ffi_panic_boundary! {
        let s = try_ref!(s);
        let out = try_mut!(out_n);
        put(out, s.with(|a| Ok(a.headers(kind)?.len())))
    }
}

/// The `index`-th value (0-based) of header `name` (case-insensitive) in block `kind`.
/// `out_count` (may be NULL) receives how many values `name` has. NOT_FOUND when there is no such
/// value; `*out_count` is still written then. HEADER_INVALID for a malformed name.
#[no_mangle]
pub extern "C" fn proxy_session_header_get(
    s: *const proxy_session,
    kind: u32,
    name: proxy_str,
    index: usize,
    out: *mut proxy_str,
    out_count: *mut usize,
) -> proxy_result {
    ffi_panic_boundary! {
        let s = try_ref!(s);
        let out = try_mut!(out);
        let name = try_res!(header_name(&name));
        let r = s.with(|a| {
            let h = a.headers(kind)?;
            let all = h.get_all(&name);
            let count = all.iter().count();
            Ok((count, all.iter().nth(index).map(|v| proxy_str::from_bytes(v.as_bytes()))))
        });
        let (count, v) = try_res!(r);
        // SAFETY: NULL or a valid pointer, as documented.
        if let Some(c) = unsafe { out_count.as_mut() } {
            *c = count;
        }
        put(out, v.ok_or(PROXY_NOT_FOUND))
    }
}

/// The `index`-th header field (0-based, grouped by name in first-arrival order) of block `kind`.
/// NOT_FOUND past the end.
#[no_mangle]
pub extern "C" fn proxy_session_header_nth(
    s: *const proxy_session,
    kind: u32,
    index: usize,
    out: *mut proxy_header,
) -> proxy_result {
    ffi_panic_boundary! {
        let s = try_ref!(s);
        let out = try_mut!(out);
        put(out, s.with(|a| {
            let (n, v) = a.headers(kind)?.iter().nth(index).ok_or(PROXY_NOT_FOUND)?;
            Ok(proxy_header { name: proxy_str::from_bytes(n.as_str().as_bytes()), value: proxy_str::from_bytes(v.as_bytes()) })
        }))
    }
}

/// Bulk read: fills `out[0..cap]` with every field of block `kind` and sets `*out_n` to the count.
/// When `cap` is too small, answers TOO_SMALL and sets only `*out_n` (call again with a bigger
/// array). `out` may be NULL when `cap` is 0.
#[no_mangle]
pub extern "C" fn proxy_session_headers(
    s: *const proxy_session,
    kind: u32,
    out: *mut proxy_header,
    cap: usize,
    out_n: *mut usize,
) -> proxy_result {
    ffi_panic_boundary! {
        let s = try_ref!(s);
        let out_n = try_mut!(out_n);
        if out.is_null() && cap > 0 {
            return PROXY_NULL_PARAMETER;
        }
        let r = s.with(|a| {
            let h = a.headers(kind)?;
            let n = h.len();
            if n > cap {
                return Ok((n, false));
            }
            for (i, (name, v)) in h.iter().enumerate() {
                // SAFETY: i < n <= cap, and the caller gave `cap` writable elements.
                unsafe {
                    out.add(i).write(proxy_header { name: proxy_str::from_bytes(name.as_str().as_bytes()), value: proxy_str::from_bytes(v.as_bytes()) });
                }
            }
            Ok((n, true))
        });
        let (n, fits) = try_res!(r);
        *out_n = n;
        if fits { PROXY_OK } else { PROXY_TOO_SMALL }
    }
}

/// Replaces every value of `name` in block `kind` with `value`. Validated like the wire: a name
/// that is not a token, a value with CR/LF/NUL/controls, or Content-Length / Transfer-Encoding
/// (managed by the proxy) answer HEADER_INVALID and change nothing. Views into the block die.
#[no_mangle]
pub extern "C" fn proxy_session_header_set(
    s: *const proxy_session,
    kind: u32,
    name: proxy_str,
    value: proxy_str,
) -> proxy_result {
    ffi_panic_boundary! {
        let s = try_ref!(s);
        let n = try_res!(settable_name(&name));
        let v = try_res!(header_value(&value));
        try_res!(s.with(|a| { a.headers_mut(kind)?.insert(n, v); Ok(()) }));
        PROXY_OK
    }
}

/// Appends a value to `name` in block `kind` (validated as for `proxy_session_header_set`).
#[no_mangle]
pub extern "C" fn proxy_session_header_add(
    s: *const proxy_session,
    kind: u32,
    name: proxy_str,
    value: proxy_str,
) -> proxy_result {
    ffi_panic_boundary! {
        let s = try_ref!(s);
        let n = try_res!(settable_name(&name));
        let v = try_res!(header_value(&value));
        try_res!(s.with(|a| { a.headers_mut(kind)?.append(n, v); Ok(()) }));
        PROXY_OK
    }
}

/// Removes every value of `name` from block `kind`. NOT_FOUND when there was none.
/// (Removing Content-Length from a response is allowed: the proxy then chunks the body.)
#[no_mangle]
pub extern "C" fn proxy_session_header_remove(
    s: *const proxy_session,
    kind: u32,
    name: proxy_str,
) -> proxy_result {
    ffi_panic_boundary! {
        let s = try_ref!(s);
        let n = try_res!(header_name(&name));
        let r = s.with(|a| a.headers_mut(kind)?.remove(n).map(|_| ()).ok_or(PROXY_NOT_FOUND));
        try_res!(r);
        PROXY_OK
    }
}

/// Chooses the upstream (only in `upstream_peer`). The struct is copied. INVALID_PARAMETER for a
/// bad address, a too-small `struct_size`, an unknown flag or `alpn`, verification flags without
/// `PROXY_PEER_TLS`, or a client certificate without its key. TLS files are read when connecting:
/// a missing or bad one fails that connection (502, reason in `proxy_session_error`).
#[no_mangle]
pub extern "C" fn proxy_session_set_peer(s: *const proxy_session, peer: *const proxy_peer) -> proxy_result {
    ffi_panic_boundary! {
        let s = try_ref!(s);
        let _ = try_ref!(peer);
        // SAFETY: non-NULL, and the host's struct is at least `struct_size` bytes.
        let p = try_res!(unsafe { copy_sized(peer, proxy_peer::MIN_SIZE) });
        let peer = try_res!(p.to_peer());
        try_res!(s.with(|a| {
            if a.phase != PROXY_PHASE_UPSTREAM_PEER {
                return Err(PROXY_WRONG_PHASE);
            }
            a.peer = Some(peer);
            Ok(())
        }));
        PROXY_OK
    }
}

/// The response status: the head being filtered in `upstream_response_filter` /
/// `response_filter`, the status sent downstream afterwards. WRONG_PHASE before there is one.
#[no_mangle]
pub extern "C" fn proxy_session_response_status(
    s: *const proxy_session,
    out_status: *mut u32,
) -> proxy_result {
    ffi_panic_boundary! {
        let s = try_ref!(s);
        let out = try_mut!(out_status);
        put(out, s.with(|a| match a.extra {
            // SAFETY: valid while the cell is open.
            Extra::Response(p) => Ok(unsafe { &*p }.status.as_u16() as u32),
            _ => a.session()?.response().map(|r| r.status.as_u16() as u32).ok_or(PROXY_WRONG_PHASE),
        }))
    }
}

/// Changes the response status (only in `upstream_response_filter` / `response_filter`;
/// 200..=599). The reason phrase becomes the canonical one.
#[no_mangle]
pub extern "C" fn proxy_session_set_response_status(s: *const proxy_session, status: u32) -> proxy_result {
    ffi_panic_boundary! {
        let s = try_ref!(s);
        if !(200..=599).contains(&status) {
            return PROXY_INVALID_PARAMETER;
        }
        let st = try_res!(StatusCode::from_u16(status as u16).map_err(|_| PROXY_INVALID_PARAMETER));
        try_res!(s.with(|a| match a.extra {
            Extra::Response(p) => {
                // SAFETY: valid while the cell is open; the lock makes us the only user.
                let h = unsafe { &mut *p };
                h.status = st;
                h.reason = Bytes::from_static(st.canonical_reason().unwrap_or("").as_bytes());
                Ok(())
            }
            _ => Err(PROXY_WRONG_PHASE),
        }));
        PROXY_OK
    }
}

/// Answers the request locally: `status` (200..=599), `n_headers` headers, and `body_len` bytes of
/// body (Content-Length is set by the proxy). Everything is copied. Then return `PROXY_RESPONDED`
/// (or resume with it). Allowed in `early_request_filter`, `request_filter` and `fail_to_proxy`.
/// Nothing is stored when any header is invalid (HEADER_INVALID) or the status is out of range.
#[no_mangle]
pub extern "C" fn proxy_session_respond(
    s: *const proxy_session,
    status: u32,
    headers: *const proxy_header,
    n_headers: usize,
    body: *const u8,
    body_len: usize,
) -> proxy_result {
    ffi_panic_boundary! {
        let s = try_ref!(s);
        if (headers.is_null() && n_headers > 0) || (body.is_null() && body_len > 0) {
            return PROXY_NULL_PARAMETER;
        }
        if !(200..=599).contains(&status) {
            return PROXY_INVALID_PARAMETER;
        }
        let st = try_res!(StatusCode::from_u16(status as u16).map_err(|_| PROXY_INVALID_PARAMETER));
        let mut head = ResponseHead::new(st);
        for i in 0..n_headers {
            // SAFETY: the caller gave `n_headers` readable elements.
            let h = unsafe { headers.add(i).read() };
            let n = try_res!(settable_name(&h.name));
            let v = try_res!(header_value(&h.value));
            head.headers.append(n, v);
        }
        let body = if body_len == 0 {
            Bytes::new()
        } else {
            // SAFETY: non-NULL with `body_len` readable bytes, as documented.
            Bytes::copy_from_slice(unsafe { std::slice::from_raw_parts(body, body_len) })
        };
        try_res!(s.with(|a| match a.phase {
            PROXY_PHASE_EARLY_REQUEST_FILTER | PROXY_PHASE_REQUEST_FILTER | PROXY_PHASE_FAIL_TO_PROXY => {
                a.session_mut()?.respond(head, body);
                Ok(())
            }
            _ => Err(PROXY_WRONG_PHASE),
        }));
        PROXY_OK
    }
}

/// The body chunk in a body filter phase (empty view when there is none) and whether it is the
/// last call for this body (`*out_end_of_stream` = 1). `out_end_of_stream` may be NULL.
#[no_mangle]
pub extern "C" fn proxy_session_body(
    s: *const proxy_session,
    out: *mut proxy_str,
    out_end_of_stream: *mut u32,
) -> proxy_result {
    ffi_panic_boundary! {
        let s = try_ref!(s);
        let out = try_mut!(out);
        let r = s.with(|a| match a.extra {
            // SAFETY: valid while the cell is open.
            Extra::Body(p, end) => Ok((unsafe { &*p }.as_ref().map(|b| proxy_str::from_bytes(b)).unwrap_or(proxy_str { ptr: std::ptr::null(), len: 0 }), end)),
            _ => Err(PROXY_WRONG_PHASE),
        });
        let (v, end) = try_res!(r);
        // SAFETY: NULL or valid, as documented.
        if let Some(e) = unsafe { out_end_of_stream.as_mut() } {
            *e = end as u32;
        }
        put(out, Ok(v))
    }
}

/// Replaces the body chunk in a body filter phase with a copy of `data` (`len` 0 drops the chunk).
/// For response bodies whose length changes, remove Content-Length in `response_filter` first.
#[no_mangle]
pub extern "C" fn proxy_session_set_body(
    s: *const proxy_session,
    data: *const u8,
    len: usize,
) -> proxy_result {
    ffi_panic_boundary! {
        let s = try_ref!(s);
        if data.is_null() && len > 0 {
            return PROXY_NULL_PARAMETER;
        }
        let new = if len == 0 {
            None
        } else {
            // SAFETY: non-NULL with `len` readable bytes.
            Some(Bytes::copy_from_slice(unsafe { std::slice::from_raw_parts(data, len) }))
        };
        try_res!(s.with(|a| match a.extra {
            Extra::Body(p, _) => {
                // SAFETY: valid while the cell is open; the lock makes us the only user.
                unsafe { *p = new };
                Ok(())
            }
            _ => Err(PROXY_WRONG_PHASE),
        }));
        PROXY_OK
    }
}

/// In `connected_to_upstream`: 1 when the upstream connection came from the pool, else 0.
#[no_mangle]
pub extern "C" fn proxy_session_upstream_reused(s: *const proxy_session, out: *mut u32) -> proxy_result {
    ffi_panic_boundary! {
        let s = try_ref!(s);
        let out = try_mut!(out);
        put(out, s.with(|a| match a.extra {
            Extra::Connected { reused } => Ok(reused as u32),
            _ => Err(PROXY_WRONG_PHASE),
        }))
    }
}

/// The error, as text: the current one in `fail_to_connect` / `error_while_proxy` /
/// `fail_to_proxy`, the final one in `logging`. NOT_FOUND when the request did not fail.
#[no_mangle]
pub extern "C" fn proxy_session_error(s: *const proxy_session, out: *mut proxy_str) -> proxy_result {
    ffi_panic_boundary! {
        let s = try_ref!(s);
        let out = try_mut!(out);
        put(out, s.with(|a| match &a.extra {
            Extra::Failure { error, .. } => Ok(proxy_str::from_bytes(error.as_bytes())),
            _ => a.session()?.summary.error.as_deref().map(|e| proxy_str::from_bytes(e.as_bytes())).ok_or(PROXY_NOT_FOUND),
        }))
    }
}

/// In `fail_to_connect` / `error_while_proxy`: allow (1) or forbid (0) another attempt (which calls
/// `upstream_peer` again). Connect failures are retryable by default. The retry budget and body
/// replay rules still apply.
#[no_mangle]
pub extern "C" fn proxy_session_set_retry(s: *const proxy_session, retry: u32) -> proxy_result {
    ffi_panic_boundary! {
        let s = try_ref!(s);
        try_res!(s.with(|a| match &mut a.extra {
            Extra::Failure { retry: r, .. } => { *r = retry != 0; Ok(()) }
            _ => Err(PROXY_WRONG_PHASE),
        }));
        PROXY_OK
    }
}

/// Attempts beyond the first so far (useful in `upstream_peer` to pick another peer).
#[no_mangle]
pub extern "C" fn proxy_session_retries(s: *const proxy_session, out: *mut u32) -> proxy_result {
    ffi_panic_boundary! {
        let s = try_ref!(s);
        let out = try_mut!(out);
        put(out, s.with(|a| Ok(a.session()?.retries() as u32)))
    }
}

fn us(d: Option<std::time::Duration>) -> u64 {
    d.map(|d| d.as_micros() as u64).unwrap_or(0)
}

/// Copies the request's summary (complete in `logging`, partial before) into `*out`, writing at
/// most `out->struct_size` bytes (set it to `sizeof(proxy_summary)`).
#[no_mangle]
pub extern "C" fn proxy_session_summary(s: *const proxy_session, out: *mut proxy_summary) -> proxy_result {
    ffi_panic_boundary! {
        let s = try_ref!(s);
        let _ = try_ref!(out);
        // SAFETY: non-NULL; the first field is the host's struct size.
        let size = unsafe { out.cast::<u32>().read_unaligned() } as usize;
        if size < 8 {
            return PROXY_INVALID_PARAMETER;
        }
        let r = s.with(|a| {
            let m = &a.session()?.summary;
            Ok(proxy_summary {
                struct_size: size.min(std::mem::size_of::<proxy_summary>()) as u32,
                status: m.status as u32,
                bytes_in: m.bytes_in,
                bytes_out: m.bytes_out,
                upstream_connect_us: us(m.upstream_connect),
                time_to_first_byte_us: us(m.time_to_first_byte),
                total_us: m.total.as_micros() as u64,
                retries: m.retries as u32,
                reused: m.reused as u32,
            })
        });
        let v = try_res!(r);
        let n = size.min(std::mem::size_of::<proxy_summary>());
        // SAFETY: the host's struct has `size` writable bytes and n <= size.
        unsafe { std::ptr::copy_nonoverlapping((&v as *const proxy_summary).cast::<u8>(), out.cast::<u8>(), n) };
        PROXY_OK
    }
}

/// Attaches host data to the request (any phase, `request_end` included). libproxy never touches
/// it; free it in the `request_end` callback.
#[no_mangle]
pub extern "C" fn proxy_session_set_user(s: *const proxy_session, user: *mut c_void) -> proxy_result {
    ffi_panic_boundary! {
        let s = try_ref!(s);
        let mut a = s.access.lock();
        match a.state {
            State::InCallback | State::Pending => a.user = user,
            State::Idle => return PROXY_WRONG_PHASE,
            State::Ended => return PROXY_GONE,
        }
        PROXY_OK
    }
}

/// The host data set with `proxy_session_set_user` (NULL if none, or if `s` is NULL).
#[no_mangle]
pub extern "C" fn proxy_session_get_user(s: *const proxy_session) -> *mut c_void {
    ffi_panic_boundary! {
        // SAFETY: NULL or a session handed to a callback.
        match unsafe { s.as_ref() } {
            Some(s) => s.access.lock().user,
            None => std::ptr::null_mut(),
        }
    }
}
