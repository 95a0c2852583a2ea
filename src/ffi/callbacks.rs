//! `proxy_http_callbacks`: one C function pointer per phase, and the adapter that implements the
//! core's `ProxyHttp` trait by calling them. A NULL pointer is the phase's default and costs no
//! crossing (not even the per-request cell is allocated until a callback needs it).

use std::ffi::c_void;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::oneshot;

use super::crossing::Crossing;
use super::phase::phase_name;
use super::result::*;
use super::server::{Shared, PROXY_LOG_DEBUG, PROXY_LOG_ERROR, PROXY_LOG_WARN};
use super::session::*;
use crate::cache::{CacheKey, CacheVerdict, Meta};
use crate::error::{Error, ErrorKind, ErrorSource, Result};
use crate::protocol::http::{RequestHead, ResponseHead};
use crate::proxy::{Phases, ProxyHttp, Session};
use crate::upstream::HttpPeer;

/// A phase callback: `user` is `proxy_http_callbacks.user`, `session` the request (borrowed, valid
/// until the callback returns, or until resume when it returns `PROXY_PENDING`). Returns a
/// `PROXY_CONTINUE` / `PROXY_RESPONDED` / `PROXY_PENDING` / `PROXY_ERROR` action; anything else is
/// treated as `PROXY_ERROR`. May be called concurrently from any worker thread (never
/// concurrently for one session); must not block.
pub type proxy_phase_fn =
    Option<unsafe extern "C" fn(user: *mut c_void, session: *mut proxy_session) -> proxy_action>;

/// The phase callbacks of a service. Set `struct_size = sizeof(proxy_http_callbacks)`; a host built
/// against an older, shorter struct keeps working (missing callbacks are NULL). NULL = the phase's
/// default. Copied by `proxy_service_set_callbacks`; `user` must stay valid until the server is
/// shut down.
///
/// Order: early_request_filter → request_filter → upstream_peer → (connect) →
/// connected_to_upstream → upstream_request_filter → request_body_filter* →
/// upstream_response_filter → response_filter → upstream_response_body_filter* /
/// response_body_filter* → logging → request_end. On a connect failure fail_to_connect runs, on a
/// later upstream failure error_while_proxy, then upstream_peer again if a retry is allowed; when
/// the request fails for good fail_to_proxy runs before logging. With a cache on the service,
/// request_cache_filter → cache_key_callback → cache_hit_filter (when something is stored) run
/// after request_filter, and response_cache_filter after upstream_response_filter; they cannot
/// wait (PENDING is an ERROR there) and ERROR fails the request.
///
/// What each action means per phase: CONTINUE goes on. RESPONDED is valid in early_request_filter
/// and request_filter (after `proxy_session_respond`; the upstream is skipped) and in fail_to_proxy
/// (the host's response replaces the error page). A response set with `proxy_session_respond` is
/// sent even when the callback then returns CONTINUE (logged at PROXY_LOG_WARN); RESPONDED without
/// one fails the request with 500 (logged too), as does an upstream_peer that returns CONTINUE
/// without `proxy_session_set_peer`. PENDING is valid in every phase except
/// fail_to_connect, error_while_proxy, logging and request_end (which cannot wait: PENDING is an
/// ERROR there). ERROR fails the request: 500 before the response head, a cut connection after.
/// In fail_to_connect / error_while_proxy ERROR forbids a retry. Return values of logging and
/// request_end are ignored.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct proxy_http_callbacks {
    /// `sizeof(proxy_http_callbacks)` as the host knows it.
    pub struct_size: u32,
    /// Passed as the first argument of every callback.
    pub user: *mut c_void,
    /// Before anything else looks at the request.
    pub early_request_filter: proxy_phase_fn,
    /// May answer by itself (`proxy_session_respond` + `PROXY_RESPONDED`).
    pub request_filter: proxy_phase_fn,
    /// Must choose the upstream with `proxy_session_set_peer`. Called again for each retry.
    pub upstream_peer: proxy_phase_fn,
    /// An upstream connection is ready (`proxy_session_upstream_reused`).
    pub connected_to_upstream: proxy_phase_fn,
    /// Edit `PROXY_HEADERS_UPSTREAM_REQUEST` before it is sent.
    pub upstream_request_filter: proxy_phase_fn,
    /// Each request body chunk (`proxy_session_body` / `proxy_session_set_body`).
    pub request_body_filter: proxy_phase_fn,
    /// The upstream response head as received (`PROXY_HEADERS_RESPONSE`, status).
    pub upstream_response_filter: proxy_phase_fn,
    /// The response head about to go downstream.
    pub response_filter: proxy_phase_fn,
    /// Each upstream response body chunk as received.
    pub upstream_response_body_filter: proxy_phase_fn,
    /// Each response body chunk about to go downstream.
    pub response_body_filter: proxy_phase_fn,
    /// Once per request, last (`proxy_session_summary`, `proxy_session_error`).
    pub logging: proxy_phase_fn,
    /// Connecting failed (`proxy_session_error`, `proxy_session_set_retry`).
    pub fail_to_connect: proxy_phase_fn,
    /// Proxying failed after connecting (`proxy_session_error`, `proxy_session_set_retry`).
    pub error_while_proxy: proxy_phase_fn,
    /// The request failed for good; may answer with `proxy_session_respond` + `PROXY_RESPONDED`.
    pub fail_to_proxy: proxy_phase_fn,
    /// After logging, also when the request was cut short: free data set with
    /// `proxy_session_set_user` here.
    pub request_end: proxy_phase_fn,
    /// With a cache on the service, for a GET or HEAD: `proxy_session_set_cache(s,
    /// PROXY_CACHE_BYPASS, 1)` keeps this request away from the cache. (ABI 0.7)
    pub request_cache_filter: proxy_phase_fn,
    /// With a cache: `proxy_session_set_cache_key` replaces the default key (scheme, host, path
    /// and query). (ABI 0.7)
    pub cache_key_callback: proxy_phase_fn,
    /// A stored response was found: `proxy_session_set_cache(s, PROXY_CACHE_EXPIRE, 1)` treats it
    /// as expired. (ABI 0.7)
    pub cache_hit_filter: proxy_phase_fn,
    /// After upstream_response_filter: whether the response is stored
    /// (`PROXY_CACHE_STORE`) and for how long it stays fresh (`PROXY_CACHE_TTL`), preset to what
    /// RFC 9111 says; the response is readable (`PROXY_HEADERS_RESPONSE`, its status). (ABI 0.7)
    pub response_cache_filter: proxy_phase_fn,
}

impl proxy_http_callbacks {
    /// The smallest struct accepted: `struct_size` and `user`.
    pub(crate) const MIN_SIZE: usize = std::mem::offset_of!(proxy_http_callbacks, early_request_filter);

    pub(crate) fn empty() -> Self {
        proxy_http_callbacks {
            struct_size: std::mem::size_of::<Self>() as u32,
            user: std::ptr::null_mut(),
            early_request_filter: None,
            request_filter: None,
            upstream_peer: None,
            connected_to_upstream: None,
            upstream_request_filter: None,
            request_body_filter: None,
            upstream_response_filter: None,
            response_filter: None,
            upstream_response_body_filter: None,
            response_body_filter: None,
            logging: None,
            fail_to_connect: None,
            error_while_proxy: None,
            fail_to_proxy: None,
            request_end: None,
            request_cache_filter: None,
            cache_key_callback: None,
            cache_hit_filter: None,
            response_cache_filter: None,
        }
    }
}

type PhaseFn = unsafe extern "C" fn(*mut c_void, *mut proxy_session) -> proxy_action;

/// The core's `ProxyHttp`, implemented by calling the host.
pub(crate) struct FfiHooks {
    pub(crate) cbs: proxy_http_callbacks,
    pub(crate) shared: Arc<Shared>,
    pub(crate) pending_timeout: Duration,
    /// The host's replacement of proxy-made error responses, if any.
    pub(crate) error_response: Option<super::error_page::ErrorResponder>,
}

// SAFETY: `user` and the callbacks are the host's, which promises (header threading contract)
// that they may be used from any worker thread.
unsafe impl Send for FfiHooks {}
// SAFETY: as above.
unsafe impl Sync for FfiHooks {}

struct UserPtr(*mut c_void);
// SAFETY: an opaque host value handed back to the host; see FfiHooks.
unsafe impl Send for UserPtr {}

/// Per-request state of the adapter.
pub(crate) struct FfiCtx {
    cell: Option<Arc<proxy_session>>,
    responded_early: bool,
    request_end: proxy_phase_fn,
    user: UserPtr,
    shared: Arc<Shared>,
}

impl FfiCtx {
    /// The request's cell, created by the first crossing (borrowed: no reference count traffic).
    #[inline]
    fn cell(&mut self) -> &Arc<proxy_session> {
        if self.cell.is_none() {
            self.new_cell();
        }
        self.cell.as_ref().expect("the cell was just created")
    }

    #[cold]
    #[inline(never)]
    fn new_cell(&mut self) {
        self.cell = Some(proxy_session::new(self.shared.registry.clone()));
    }
}

impl Drop for FfiCtx {
    fn drop(&mut self) {
        if let Some(f) = self.request_end {
            let user = self.user.0;
            let cell = self.cell();
            cell.enter(PROXY_PHASE_REQUEST_END, std::ptr::null_mut(), Extra::None);
            let ptr = Arc::as_ptr(cell).cast_mut();
            // SAFETY: a host function pointer called with its own user pointer and a live cell.
            let _ = unsafe { f(user, ptr) };
            cell.close();
        }
        if let Some(cell) = &self.cell {
            cell.end();
        }
    }
}

enum Step {
    Done(proxy_action),
    Wait(oneshot::Receiver<proxy_action>),
}

/// How a crossing ended.
#[derive(Clone, Copy)]
enum Outcome {
    Action(proxy_action),
    Expired,
}

fn failed(phase: proxy_phase) -> Box<Error> {
    Error::new(ErrorKind::HttpStatus(500), ErrorSource::Internal, phase_name(phase))
        .with_cause("the host callback returned PROXY_ERROR (or an unknown action)")
}

/// A host mistake the proxy turns into a failed request: the error carries `cause`.
fn misuse(phase: proxy_phase, cause: &'static str) -> Box<Error> {
    Error::internal(phase_name(phase)).with_cause(cause)
}

/// A filter phase's result: only CONTINUE goes on.
fn filtered(phase: proxy_phase, out: Outcome) -> Result<()> {
    match out {
        Outcome::Action(PROXY_CONTINUE) => Ok(()),
        Outcome::Action(_) => Err(failed(phase)),
        Outcome::Expired => Err(expired(phase)),
    }
}

fn expired(phase: proxy_phase) -> Box<Error> {
    Error::new(ErrorKind::PendingTimeout, ErrorSource::Internal, phase_name(phase))
        .with_cause("proxy_session_resume was not called before the service's pending deadline")
}

impl FfiHooks {
    /// Reports a host mistake that decides what the client gets, with the request it hit: without
    /// it the client sees a 500 (or an unexpected answer) that nothing explains.
    fn warn(&self, session: &Session, phase: proxy_phase, what: &str) {
        let r = &session.req;
        self.shared.log(PROXY_LOG_WARN, &format!("{}: {what} ({} {})", phase_name(phase), r.method, r.uri));
    }

    /// What an answering phase's action means given whether the host set a response: `Ok(true)`
    /// answer with it, `Ok(false)` go on, or the request fails. A response set and then CONTINUE
    /// is sent anyway: dropping it would forward a request the host meant to stop (an auth
    /// filter that answered 401 and returned the wrong action).
    fn answered(&self, session: &Session, phase: proxy_phase, out: Outcome) -> Result<bool> {
        let responded = session.has_local_response();
        match out {
            Outcome::Action(PROXY_CONTINUE) if responded => {
                self.warn(
                    session,
                    phase,
                    "returned PROXY_CONTINUE after proxy_session_respond: sending that response \
                     (return PROXY_RESPONDED)",
                );
                Ok(true)
            }
            Outcome::Action(PROXY_CONTINUE) => Ok(false),
            Outcome::Action(PROXY_RESPONDED) if responded => Ok(true),
            Outcome::Action(PROXY_RESPONDED) => {
                let cause = "returned PROXY_RESPONDED without proxy_session_respond: no response to send, failing the request";
                self.warn(session, phase, cause);
                Err(misuse(phase, cause))
            }
            Outcome::Action(_) => Err(failed(phase)),
            Outcome::Expired => Err(expired(phase)),
        }
    }

    /// Calls `f` for `phase`; returns at once unless it answers PENDING (then only when
    /// `may_wait`), in which case the result tells the caller to wait. Inlined into each phase:
    /// the common answers return straight away, the rest goes to `unusual`, out of line, so the
    /// crossing does not pay its frame.
    #[inline]
    fn call(
        &self,
        cell: &Arc<proxy_session>,
        f: PhaseFn,
        phase: proxy_phase,
        session: *mut Session,
        extra: Extra,
        may_wait: bool,
    ) -> Step {
        cell.enter(phase, session, extra);
        let ptr = Arc::as_ptr(cell).cast_mut();
        // SAFETY: a host function pointer, called with its own user pointer and a live cell.
        let raw = unsafe { f(self.cbs.user, ptr) };
        match raw {
            PROXY_CONTINUE | PROXY_RESPONDED | PROXY_ERROR => Step::Done(raw),
            _ => self.unusual(cell, phase, raw, may_wait),
        }
    }

    /// PENDING (arms the wait, or refuses it where the phase cannot wait) or an unknown action.
    #[cold]
    #[inline(never)]
    fn unusual(
        &self,
        cell: &Arc<proxy_session>,
        phase: proxy_phase,
        raw: proxy_action,
        may_wait: bool,
    ) -> Step {
        match raw {
            PROXY_PENDING if may_wait => {
                let mut a = cell.access.lock();
                if let Some(early) = a.early.take() {
                    // Resumed before the callback returned: nothing ran early, go on now.
                    return Step::Done(early);
                }
                if a.expired {
                    // A deadline passed earlier: nobody may resume this session any more.
                    drop(a);
                    self.shared.log(
                        PROXY_LOG_WARN,
                        &format!(
                            "{}: PROXY_PENDING after a pending deadline counts as PROXY_ERROR",
                            phase_name(phase)
                        ),
                    );
                    return Step::Done(PROXY_ERROR);
                }
                // A host that kept the id from an earlier phase may resume this wait too.
                let seq = a.seq;
                if a.decision != Decision::Armed(seq) {
                    a.decision = Decision::Armed(seq);
                }
                let (tx, rx) = oneshot::channel();
                a.waker = Some(tx);
                a.state = State::Pending;
                a.host_holds = true;
                drop(a);
                // Registered even when the callback never asked for the id: a host thread may
                // hold the handle, and the registry keeps the cell alive for it.
                cell.register();
                Step::Wait(rx)
            }
            PROXY_PENDING => {
                self.shared.log(
                    PROXY_LOG_WARN,
                    &format!("{} cannot wait: PROXY_PENDING counts as PROXY_ERROR", phase_name(phase)),
                );
                Step::Done(PROXY_ERROR)
            }
            other => {
                self.shared.log(
                    PROXY_LOG_ERROR,
                    &format!("{} returned unknown action {other}: failing the request", phase_name(phase)),
                );
                Step::Done(PROXY_ERROR)
            }
        }
    }

    /// The crossing of a callback that answered PENDING: waits for its resume, up to the service's
    /// pending deadline, closes the cell and maps the outcome with `then`. Out of line and boxed:
    /// the common crossing neither builds nor reserves room for the deadline's timer.
    #[cold]
    #[inline(never)]
    fn waiting<T: Send + 'static>(
        &self,
        cell: &Arc<proxy_session>,
        rx: oneshot::Receiver<proxy_action>,
        phase: proxy_phase,
        then: impl FnOnce(Outcome) -> T + Send + 'static,
    ) -> Crossing<T> {
        let (cell, deadline, shared) = (cell.clone(), self.pending_timeout, self.shared.clone());
        Crossing::wait(async move {
            let out = match tokio::time::timeout(deadline, rx).await {
                Ok(Ok(a)) => Outcome::Action(a),
                Ok(Err(_)) => Outcome::Action(PROXY_ERROR),
                Err(_) => {
                    cell.access.lock().expired = true;
                    shared.log(
                        PROXY_LOG_WARN,
                        &format!(
                            "{}: pending deadline passed without proxy_session_resume",
                            phase_name(phase)
                        ),
                    );
                    Outcome::Expired
                }
            };
            cell.close();
            then(out)
        })
    }

    /// One crossing of an answering phase: call, wait if PENDING, close the cell. A callback that
    /// answers at once (the common case) is finished before this returns. The peer an
    /// upstream_peer callback chose stays in the cell (`take_peer`): carrying it out through the
    /// future would copy it (a few hundred bytes) at every step.
    fn cross(
        &self,
        ctx: &mut FfiCtx,
        f: PhaseFn,
        phase: proxy_phase,
        session: &mut Session,
        extra: Extra,
    ) -> Crossing<Outcome> {
        let cell = ctx.cell();
        match self.call(cell, f, phase, session, extra, true) {
            Step::Done(a) => {
                cell.close();
                Crossing::ready(Outcome::Action(a))
            }
            Step::Wait(rx) => self.waiting(cell, rx, phase, |out| out),
        }
    }

    /// A filter phase where only CONTINUE goes on.
    fn filter(
        &self,
        ctx: &mut FfiCtx,
        f: proxy_phase_fn,
        phase: proxy_phase,
        session: &mut Session,
        extra: Extra,
    ) -> Crossing<Result<()>> {
        let Some(f) = f else { return Crossing::ready(Ok(())) };
        let cell = ctx.cell();
        match self.call(cell, f, phase, session, extra, true) {
            Step::Done(a) => {
                cell.close();
                Crossing::ready(filtered(phase, Outcome::Action(a)))
            }
            Step::Wait(rx) => self.waiting(cell, rx, phase, move |out| filtered(phase, out)),
        }
    }

    /// A phase the core runs synchronously (no PENDING).
    fn sync(
        &self,
        ctx: &mut FfiCtx,
        f: PhaseFn,
        phase: proxy_phase,
        session: &mut Session,
        extra: Extra,
    ) -> (proxy_action, Option<bool>) {
        let cell = ctx.cell();
        let a = match self.call(cell, f, phase, session, extra, false) {
            Step::Done(a) => a,
            Step::Wait(_) => PROXY_ERROR,
        };
        (a, cell.leave())
    }

    /// A cache phase: synchronous, its decision written through `extra` by the host's setters;
    /// anything but CONTINUE fails the request.
    fn cache_phase(
        &self,
        ctx: &mut FfiCtx,
        f: proxy_phase_fn,
        phase: proxy_phase,
        session: &mut Session,
        extra: Extra,
    ) -> Result<()> {
        let Some(f) = f else { return Ok(()) };
        match self.sync(ctx, f, phase, session, extra) {
            (PROXY_CONTINUE, _) => Ok(()),
            _ => Err(failed(phase)),
        }
    }

    fn retry_decision(
        &self,
        ctx: &mut FfiCtx,
        f: proxy_phase_fn,
        phase: proxy_phase,
        session: &mut Session,
        mut e: Box<Error>,
    ) -> Box<Error> {
        let Some(f) = f else { return e };
        let error = e.to_string();
        let extra = Extra::Failure { error: error.as_str(), retry: e.retry };
        match self.sync(ctx, f, phase, session, extra) {
            (PROXY_CONTINUE, Some(r)) => e.retry = r,
            _ => e.retry = false,
        }
        e
    }
}

impl ProxyHttp for FfiHooks {
    type CTX = FfiCtx;

    fn new_ctx(&self) -> FfiCtx {
        FfiCtx {
            cell: None,
            responded_early: false,
            request_end: self.cbs.request_end,
            user: UserPtr(self.cbs.user),
            shared: self.shared.clone(),
        }
    }

    /// The phases with a callback (a NULL one costs nothing: the pipeline skips the phase).
    /// `request_filter` also carries an answer `early_request_filter` gave.
    fn phases(&self) -> Phases {
        let c = &self.cbs;
        Phases::NONE
            .with(Phases::EARLY_REQUEST_FILTER, c.early_request_filter.is_some())
            .with(Phases::REQUEST_FILTER, c.request_filter.is_some() || c.early_request_filter.is_some())
            .with(Phases::CONNECTED_TO_UPSTREAM, c.connected_to_upstream.is_some())
            .with(Phases::UPSTREAM_REQUEST_FILTER, c.upstream_request_filter.is_some())
            .with(Phases::REQUEST_BODY_FILTER, c.request_body_filter.is_some())
            .with(Phases::UPSTREAM_RESPONSE_FILTER, c.upstream_response_filter.is_some())
            .with(Phases::RESPONSE_FILTER, c.response_filter.is_some())
            .with(Phases::UPSTREAM_RESPONSE_BODY_FILTER, c.upstream_response_body_filter.is_some())
            .with(Phases::RESPONSE_BODY_FILTER, c.response_body_filter.is_some())
            .with(Phases::REQUEST_CACHE_FILTER, c.request_cache_filter.is_some())
            .with(Phases::CACHE_KEY_CALLBACK, c.cache_key_callback.is_some())
            .with(Phases::CACHE_HIT_FILTER, c.cache_hit_filter.is_some())
            .with(Phases::RESPONSE_CACHE_FILTER, c.response_cache_filter.is_some())
    }

    fn request_cache_filter(&self, session: &mut Session, ctx: &mut FfiCtx) -> Result<bool> {
        let mut bypass = false;
        let f = self.cbs.request_cache_filter;
        self.cache_phase(ctx, f, PROXY_PHASE_REQUEST_CACHE_FILTER, session, Extra::CacheFlag(&mut bypass))?;
        Ok(!bypass)
    }

    fn cache_key_callback(&self, session: &mut Session, ctx: &mut FfiCtx) -> Result<Option<CacheKey>> {
        let mut key = None;
        let f = self.cbs.cache_key_callback;
        self.cache_phase(ctx, f, PROXY_PHASE_CACHE_KEY_CALLBACK, session, Extra::CacheKey(&mut key))?;
        Ok(key)
    }

    fn cache_hit_filter(&self, session: &mut Session, _stored: &Meta, ctx: &mut FfiCtx) -> Result<bool> {
        let mut expire = false;
        let f = self.cbs.cache_hit_filter;
        self.cache_phase(ctx, f, PROXY_PHASE_CACHE_HIT_FILTER, session, Extra::CacheFlag(&mut expire))?;
        Ok(expire)
    }

    fn response_cache_filter(
        &self,
        session: &mut Session,
        response: &ResponseHead,
        verdict: &mut CacheVerdict,
        ctx: &mut FfiCtx,
    ) -> Result<()> {
        let extra = Extra::CacheVerdict { response, verdict };
        let f = self.cbs.response_cache_filter;
        self.cache_phase(ctx, f, PROXY_PHASE_RESPONSE_CACHE_FILTER, session, extra)
    }

    async fn early_request_filter(&self, session: &mut Session, ctx: &mut FfiCtx) -> Result<()> {
        let Some(f) = self.cbs.early_request_filter else { return Ok(()) };
        let phase = PROXY_PHASE_EARLY_REQUEST_FILTER;
        let out = self.cross(ctx, f, phase, session, Extra::None).await;
        ctx.responded_early = self.answered(session, phase, out)?;
        Ok(())
    }

    async fn request_filter(&self, session: &mut Session, ctx: &mut FfiCtx) -> Result<bool> {
        if ctx.responded_early {
            return Ok(true);
        }
        let Some(f) = self.cbs.request_filter else { return Ok(false) };
        let phase = PROXY_PHASE_REQUEST_FILTER;
        let out = self.cross(ctx, f, phase, session, Extra::None).await;
        self.answered(session, phase, out)
    }

    async fn upstream_peer(&self, session: &mut Session, ctx: &mut FfiCtx) -> Result<HttpPeer> {
        let phase = PROXY_PHASE_UPSTREAM_PEER;
        let Some(f) = self.cbs.upstream_peer else {
            let cause = "no upstream_peer callback is set, so no request can be forwarded: answering 500";
            self.warn(session, phase, cause);
            return Err(misuse(phase, cause));
        };
        let out = self.cross(ctx, f, phase, session, Extra::None).await;
        match (out, ctx.cell().take_peer()) {
            (Outcome::Action(PROXY_CONTINUE), Some(peer)) => Ok(peer),
            (Outcome::Action(PROXY_CONTINUE), None) => {
                if let Some(e) = ctx.cell().take_pick_error() {
                    return Err(e);
                }
                let cause = "returned PROXY_CONTINUE without proxy_session_set_peer: answering 500";
                self.warn(session, phase, cause);
                Err(misuse(phase, cause))
            }
            (Outcome::Action(_), _) => Err(failed(phase)),
            (Outcome::Expired, _) => Err(expired(phase)),
        }
    }

    fn connected_to_upstream(
        &self,
        session: &mut Session,
        reused: bool,
        _peer: &HttpPeer,
        ctx: &mut FfiCtx,
    ) -> impl Future<Output = Result<()>> + Send {
        let f = self.cbs.connected_to_upstream;
        self.filter(ctx, f, PROXY_PHASE_CONNECTED_TO_UPSTREAM, session, Extra::Connected { reused })
    }

    fn upstream_request_filter(
        &self,
        session: &mut Session,
        up: &mut RequestHead,
        ctx: &mut FfiCtx,
    ) -> impl Future<Output = Result<()>> + Send {
        let f = self.cbs.upstream_request_filter;
        let extra = Extra::UpstreamRequest(up);
        self.filter(ctx, f, PROXY_PHASE_UPSTREAM_REQUEST_FILTER, session, extra)
    }

    fn request_body_filter(
        &self,
        session: &mut Session,
        body: &mut Option<Bytes>,
        end: bool,
        ctx: &mut FfiCtx,
    ) -> impl Future<Output = Result<()>> + Send {
        let f = self.cbs.request_body_filter;
        let extra = Extra::Body(body, end);
        self.filter(ctx, f, PROXY_PHASE_REQUEST_BODY_FILTER, session, extra)
    }

    fn upstream_response_filter(
        &self,
        session: &mut Session,
        h: &mut ResponseHead,
        ctx: &mut FfiCtx,
    ) -> impl Future<Output = Result<()>> + Send {
        let f = self.cbs.upstream_response_filter;
        let extra = Extra::Response(h);
        self.filter(ctx, f, PROXY_PHASE_UPSTREAM_RESPONSE_FILTER, session, extra)
    }

    fn response_filter(
        &self,
        session: &mut Session,
        h: &mut ResponseHead,
        ctx: &mut FfiCtx,
    ) -> impl Future<Output = Result<()>> + Send {
        let f = self.cbs.response_filter;
        let extra = Extra::Response(h);
        self.filter(ctx, f, PROXY_PHASE_RESPONSE_FILTER, session, extra)
    }

    fn upstream_response_body_filter(
        &self,
        session: &mut Session,
        body: &mut Option<Bytes>,
        end: bool,
        ctx: &mut FfiCtx,
    ) -> impl Future<Output = Result<()>> + Send {
        let f = self.cbs.upstream_response_body_filter;
        let extra = Extra::Body(body, end);
        self.filter(ctx, f, PROXY_PHASE_UPSTREAM_RESPONSE_BODY_FILTER, session, extra)
    }

    fn response_body_filter(
        &self,
        session: &mut Session,
        body: &mut Option<Bytes>,
        end: bool,
        ctx: &mut FfiCtx,
    ) -> impl Future<Output = Result<()>> + Send {
        let f = self.cbs.response_body_filter;
        let extra = Extra::Body(body, end);
        self.filter(ctx, f, PROXY_PHASE_RESPONSE_BODY_FILTER, session, extra)
    }

    fn fail_to_connect(
        &self,
        session: &mut Session,
        _peer: &HttpPeer,
        ctx: &mut FfiCtx,
        e: Box<Error>,
    ) -> Box<Error> {
        self.retry_decision(ctx, self.cbs.fail_to_connect, PROXY_PHASE_FAIL_TO_CONNECT, session, e)
    }

    fn error_while_proxy(
        &self,
        _peer: &HttpPeer,
        session: &mut Session,
        e: Box<Error>,
        ctx: &mut FfiCtx,
        _client_reused: bool,
    ) -> Box<Error> {
        self.retry_decision(ctx, self.cbs.error_while_proxy, PROXY_PHASE_ERROR_WHILE_PROXY, session, e)
    }

    async fn fail_to_proxy(&self, session: &mut Session, e: &Error, ctx: &mut FfiCtx) -> u16 {
        let status = e.status();
        let Some(f) = self.cbs.fail_to_proxy else { return status };
        let phase = PROXY_PHASE_FAIL_TO_PROXY;
        // Kept in this future until the cell is closed, as the cell points at it.
        let error = e.to_string();
        let extra = Extra::Failure { error: error.as_str(), retry: false };
        let out = self.cross(ctx, f, phase, session, extra).await;
        match self.answered(session, phase, out) {
            Ok(_) => status,
            Err(_) => {
                // The error page stands in for whatever the host left.
                session.local_response = None;
                if matches!(out, Outcome::Action(PROXY_RESPONDED)) {
                    status
                } else {
                    500
                }
            }
        }
    }

    fn error_response(&self, status: u16, what: &str) -> Option<(ResponseHead, Bytes)> {
        self.error_response.as_ref()?.call(status, what)
    }

    fn logging(&self, session: &mut Session, _e: Option<&Error>, ctx: &mut FfiCtx) {
        let Some(f) = self.cbs.logging else { return };
        let (a, _) = self.sync(ctx, f, PROXY_PHASE_LOGGING, session, Extra::None);
        if a != PROXY_CONTINUE {
            self.shared.log(
                PROXY_LOG_DEBUG,
                "logging callback returned something other than PROXY_CONTINUE (ignored)",
            );
        }
    }
}
