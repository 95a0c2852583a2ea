//! Where the cache meets the phases. After `request_filter` a GET or HEAD is looked up: a usable
//! stored response is served without the upstream (through `response_filter`, compression and
//! the body filters, like any response), a stale one is revalidated with its validators, and a
//! miss goes upstream holding the key's lock. After `upstream_response_filter` the response is
//! judged storable or not; a storable one is copied into the store as its body streams to the
//! client (nothing waits for the whole body), and stored when the body ends.
//!
//! What is stored is the response as the upstream sent it, decoded first when the service
//! decompresses upstream bodies; compression applies on the way out, per client, so one stored
//! copy serves every `Accept-Encoding`. None of this runs for a service without a cache: the
//! pipeline checks one `Option`.

use std::sync::Arc;

use bytes::Bytes;
use http::header::{AGE, CONTENT_LOCATION, IF_MODIFIED_SINCE, IF_NONE_MATCH, LOCATION, RANGE};
use http::{HeaderName, HeaderValue, Method, StatusCode};

use super::exchange::Source;
use super::hooks::Phases;
use super::{HttpProxy, ProxyHttp, Session};
use crate::cache::{
    not_modified, policy, set_validators, CacheControl, CacheKey, CacheStatus, CacheVerdict, CachedObject,
    HttpCache, Locked, Meta, ObjectWriter, StaleRules, Usable, WriteLock,
};
use crate::error::{Error, Result};
use crate::protocol::h1::encode::strip_hop_by_hop;
use crate::protocol::h1::framing::{declared_length, set_content_length};
use crate::protocol::http::{error_page, ResponseHead};
use crate::server::ShutdownWatch;

/// The response field that carries the cache status when the service asks for it.
const STATUS_FIELD: HeaderName = HeaderName::from_static("x-cache-status");

/// One request's dealings with the cache.
#[derive(Debug)]
pub(crate) struct CacheState {
    /// The request's key; `None` when the request bypasses the cache and invalidates nothing.
    key: Option<CacheKey>,
    pub(crate) status: CacheStatus,
    req_cc: CacheControl,
    /// Held while this request fetches the key for others waiting on it.
    lock: Option<WriteLock>,
    /// The response being stored.
    writer: Option<ObjectWriter>,
    /// The stored response being revalidated: served after a 304, or after an error when
    /// `stale-if-error` allows.
    stale: Option<Arc<CachedObject>>,
    /// The client's own conditionals, kept when a revalidation replaced them with the stored
    /// response's validators.
    client_validators: Option<(Option<Bytes>, Option<Bytes>)>,
    /// When the request went upstream, by the cache's clock.
    request_time: u64,
    /// An unsafe method: a success invalidates what is stored for its target (RFC 9111 §4.4).
    invalidate: bool,
}

impl CacheState {
    fn new(key: Option<CacheKey>, status: CacheStatus, req_cc: CacheControl) -> Box<Self> {
        Box::new(CacheState {
            key,
            status,
            req_cc,
            lock: None,
            writer: None,
            stale: None,
            client_validators: None,
            request_time: 0,
            invalidate: false,
        })
    }

    /// The state of a refresh (`stale-while-revalidate`) of `key` sent at `request_time`.
    pub(crate) fn refreshing(key: CacheKey, req_cc: CacheControl, request_time: u64) -> Box<Self> {
        let mut s = Self::new(Some(key), CacheStatus::Stale, req_cc);
        s.request_time = request_time;
        s
    }

    /// The request's key.
    pub(crate) fn key(&self) -> Option<&CacheKey> {
        self.key.as_ref()
    }

    /// When the request went upstream.
    pub(crate) fn request_time(&self) -> u64 {
        self.request_time
    }

    /// Copies a piece of the body into the object being stored; a body that outgrows the object
    /// limit stops being stored (and releases the key's waiters).
    ///
    /// A body that reaches its declared length is stored at once, before its last bytes go out.
    pub(crate) fn tee(&mut self, cache: &HttpCache, data: Option<&Bytes>) {
        let Some(w) = self.writer.as_mut() else { return };
        if data.is_some_and(|d| !w.push(d)) {
            self.writer = None;
            self.lock = None;
        } else if w.complete() {
            self.commit(cache, None);
        }
    }

    /// The body ended: stores the object and releases the key's waiters.
    pub(crate) fn commit(&mut self, cache: &HttpCache, trailers: Option<&http::HeaderMap>) {
        if let (Some(w), Some(key)) = (self.writer.take(), &self.key) {
            cache.storage().insert(key, Arc::new(w.finish(trailers.cloned())));
        }
        self.lock = None;
    }

    /// Whether a body is being stored (the trailers are then needed).
    pub(crate) fn storing(&self) -> bool {
        self.writer.is_some()
    }
}

/// RFC 9111 §4.4: the unsafe methods, whose success invalidates the target.
fn is_unsafe(m: &Method) -> bool {
    !matches!(*m, Method::GET | Method::HEAD | Method::OPTIONS | Method::TRACE)
}

impl<H: ProxyHttp> HttpProxy<H> {
    /// Before the upstream: looks the request up. `Ok(true)` when it was answered from the cache
    /// (or with a 504 for `only-if-cached`).
    pub(super) async fn cache_request(
        &self,
        session: &mut Session,
        ctx: &mut H::CTX,
        shutdown: &ShutdownWatch,
    ) -> Result<bool> {
        let Some(cache) = self.options.cache.as_deref() else { return Ok(false) };
        let method = &session.req.method;
        let lookup = (*method == Method::GET || *method == Method::HEAD)
            && !session.is_upgrade()
            && session.req.headers.value(&RANGE).is_none();
        if !lookup
            || (self.has(Phases::REQUEST_CACHE_FILTER) && !self.hooks.request_cache_filter(session, ctx)?)
        {
            let invalidate = is_unsafe(&session.req.method);
            let key = if invalidate { self.cache_key(session, ctx)? } else { None };
            let mut state = CacheState::new(key, CacheStatus::Bypass, CacheControl::default());
            state.invalidate = invalidate;
            session.cache = Some(state);
            return Ok(false);
        }
        let Some(key) = self.cache_key(session, ctx)? else {
            session.cache = Some(CacheState::new(None, CacheStatus::Bypass, CacheControl::default()));
            return Ok(false);
        };
        let req_cc = CacheControl::parse(&session.req.headers);
        let mut state = CacheState::new(Some(key.clone()), CacheStatus::Miss, req_cc);
        // A HEAD is served from a stored GET but its own response is not stored: it takes no
        // lock, which would hold GETs back for nothing; nor does a key whose last response was
        // not storable.
        let may_store =
            session.req.method == Method::GET && !req_cc.no_store && !cache.uncacheable().contains(&key);
        let mut waited = false;
        loop {
            let found = cache.storage().lookup(&key, &mut |o| o.meta.matches(&session.req.headers));
            if let Some(obj) = found {
                let mut usable = policy::usable(&obj.meta, &req_cc, cache.now());
                if self.has(Phases::CACHE_HIT_FILTER)
                    && self.hooks.cache_hit_filter(session, &obj.meta, ctx)?
                {
                    usable = Usable::Revalidate;
                }
                let status = match usable {
                    Usable::Serve { stale: false } => Some(CacheStatus::Hit),
                    Usable::Serve { stale: true } | Usable::ServeAndRefresh => Some(CacheStatus::Stale),
                    Usable::Revalidate => None,
                };
                if let Some(status) = status {
                    state.status = status;
                    session.cache = Some(state);
                    self.before_local_answer(session).await?;
                    Box::pin(self.serve_stored(session, &obj, ctx, shutdown)).await?;
                    if usable == Usable::ServeAndRefresh {
                        Box::pin(self.refresh(session, obj, ctx)).await;
                    }
                    return Ok(true);
                }
                state.stale = Some(obj);
            }
            if req_cc.only_if_cached {
                // RFC 9111 §5.2.1.7: nothing usable stored, and the client wants nothing else.
                session.cache = Some(state);
                let (head, body) =
                    error_page(StatusCode::GATEWAY_TIMEOUT, "nothing usable is cached (only-if-cached)");
                self.before_local_answer(session).await?;
                Box::pin(self.send_local(session, head, body)).await?;
                return Ok(true);
            }
            if waited || !may_store {
                break;
            }
            match cache.lock().lock(&key) {
                Locked::Write(w) => {
                    state.lock = Some(w);
                    break;
                }
                Locked::Wait(p) => {
                    waited = true;
                    cache.lock().wait(&p, cache.settings.lock_timeout).await;
                    state.stale = None;
                }
            }
        }
        if let Some(stale) = &state.stale {
            state.status = CacheStatus::Expired;
            let h = &session.req.headers;
            let client = (
                h.value(&IF_NONE_MATCH).map(Bytes::copy_from_slice),
                h.value(&IF_MODIFIED_SINCE).map(Bytes::copy_from_slice),
            );
            state.client_validators = Some(client);
            set_validators(&mut session.req.headers, &stale.meta.head.headers);
        }
        state.request_time = cache.now();
        session.cache = Some(state);
        Ok(false)
    }

    /// The request's key: the hook's, or the default one (`None` without a host).
    fn cache_key(&self, session: &mut Session, ctx: &mut H::CTX) -> Result<Option<CacheKey>> {
        if self.has(Phases::CACHE_KEY_CALLBACK) {
            if let Some(k) = self.hooks.cache_key_callback(session, ctx)? {
                return Ok(Some(k));
            }
        }
        Ok(CacheKey::for_request(&session.req))
    }

    /// Sends a stored response: `Age` set, a 304 when the client's own conditionals match, then
    /// the response phases as for any response.
    pub(super) async fn serve_stored(
        &self,
        session: &mut Session,
        obj: &CachedObject,
        ctx: &mut H::CTX,
        shutdown: &ShutdownWatch,
    ) -> Result<()> {
        let Some(cache) = self.options.cache.as_deref() else {
            return Err(Error::internal("serving from the cache").with_cause("no cache"));
        };
        let mut h = obj.meta.head.clone();
        h.headers.insert(AGE, HeaderValue::from(obj.meta.times.age(cache.now())));
        let fresh_validators;
        let (inm, ims) = match session.cache.as_ref().and_then(|c| c.client_validators.as_ref()) {
            Some((inm, ims)) => (inm.as_deref(), ims.as_deref()),
            None => {
                let r = &session.req.headers;
                fresh_validators = (r.value(&IF_NONE_MATCH), r.value(&IF_MODIFIED_SINCE));
                fresh_validators
            }
        };
        let unchanged = not_modified(inm, ims, &h.headers, obj.meta.times.response);
        if unchanged {
            h.status = StatusCode::NOT_MODIFIED;
            h.reason = Bytes::from_static(b"Not Modified");
        } else {
            set_content_length(&mut h.headers, obj.body.len() as u64);
        }
        self.send_response_head(session, h, Source::Stored, true, ctx, shutdown).await?;
        if !unchanged && session.req.method != Method::HEAD && !obj.body.is_empty() {
            self.forward_response_body(session, Some(obj.body.clone()), false, Source::Stored, ctx).await?;
        }
        self.forward_response_body(session, None, true, Source::Stored, ctx).await?;
        session.downstream.finish(obj.trailers.as_ref()).await
    }

    /// A final upstream head to a request that revalidates: a 304 freshens the stored response,
    /// which is then served; a 5xx is replaced by the stored one when `stale-if-error` allows.
    /// `Ok(true)` when the response was served from the cache.
    pub(super) async fn cache_upstream_head(
        &self,
        session: &mut Session,
        h: &mut ResponseHead,
        ctx: &mut H::CTX,
        shutdown: &ShutdownWatch,
    ) -> Result<bool> {
        let (Some(cache), Some(state)) = (self.options.cache.as_deref(), session.cache.as_deref_mut()) else {
            return Ok(false);
        };
        let Some(stale) = state.stale.clone() else { return Ok(false) };
        let now = cache.now();
        let served = if h.status == StatusCode::NOT_MODIFIED {
            strip_hop_by_hop(&mut h.headers, false);
            let obj = Arc::new(freshen(cache, &stale, h, state.request_time, now));
            if let Some(key) = &state.key {
                cache.storage().insert(key, obj.clone());
            }
            state.lock = None;
            state.status = CacheStatus::Revalidated;
            obj
        } else if h.status.is_server_error() && policy::stale_if_error(&stale.meta, &state.req_cc, now) {
            state.lock = None;
            state.status = CacheStatus::Stale;
            stale
        } else {
            return Ok(false);
        };
        Box::pin(self.serve_stored(session, &served, ctx, shutdown)).await?;
        Ok(true)
    }

    /// The upstream failed (no response, or a broken one) while a stored response was being
    /// revalidated: serves that instead when `stale-if-error` allows. `Err(e)` otherwise.
    pub(super) async fn stale_on_error(
        &self,
        session: &mut Session,
        e: Box<Error>,
        ctx: &mut H::CTX,
        shutdown: &ShutdownWatch,
    ) -> Result<bool> {
        let (Some(cache), Some(state)) = (self.options.cache.as_deref(), session.cache.as_deref_mut()) else {
            return Err(e);
        };
        let stale = match &state.stale {
            Some(s)
                if !session.downstream.head_sent()
                    && policy::stale_if_error(&s.meta, &state.req_cc, cache.now()) =>
            {
                s.clone()
            }
            _ => return Err(e),
        };
        state.status = CacheStatus::Stale;
        state.lock = None;
        Box::pin(self.serve_stored(session, &stale, ctx, shutdown)).await?;
        Ok(self.settle_downstream(session).await)
    }

    /// After `upstream_response_filter`: invalidates after an unsafe method's success, and
    /// decides whether a GET's response is stored (the policy, then `response_cache_filter`).
    pub(super) fn cache_admit(
        &self,
        session: &mut Session,
        h: &ResponseHead,
        ctx: &mut H::CTX,
    ) -> Result<()> {
        let (Some(cache), Some(mut state)) = (self.options.cache.as_deref(), session.cache.take()) else {
            return Ok(());
        };
        let result = self.admit_into(cache, session, &mut state, h, ctx);
        if state.writer.is_none() {
            state.lock = None;
        }
        session.cache = Some(state);
        result
    }

    pub(super) fn admit_into(
        &self,
        cache: &HttpCache,
        session: &mut Session,
        state: &mut CacheState,
        h: &ResponseHead,
        ctx: &mut H::CTX,
    ) -> Result<()> {
        if state.invalidate {
            if h.status.is_success() || h.status.is_redirection() {
                invalidate(cache, session, state.key.as_ref(), h);
            }
            return Ok(());
        }
        if session.req.method != Method::GET || state.req_cc.no_store || state.status == CacheStatus::Bypass {
            return Ok(());
        }
        let cc = CacheControl::parse(&h.headers);
        let now = cache.now();
        let rfc = policy::storable(&session.req.headers, &state.req_cc, h, &cc, now, cache.settings.policy);
        let mut verdict = CacheVerdict { store: rfc.is_ok(), lifetime: rfc.unwrap_or(0) };
        if self.has(Phases::RESPONSE_CACHE_FILTER) {
            self.hooks.response_cache_filter(session, h, &mut verdict, ctx)?;
        }
        if verdict.store {
            let times = policy::times(h, state.request_time, now, verdict.lifetime);
            let meta = Meta::new(h, &session.req.headers, times, &cc);
            state.writer = cache.writer(meta, declared_length(&h.headers));
        }
        if let Some(key) = &state.key {
            cache.uncacheable().note(key, state.writer.is_some());
        }
        Ok(())
    }

    /// Adds the cache status field when the service asks for it.
    pub(super) fn mark_cache_status(&self, session: &Session, h: &mut ResponseHead) {
        let on = self.options.cache.as_deref().is_some_and(|c| c.settings.status_header);
        if let (true, Some(state)) = (on, session.cache.as_deref()) {
            h.headers.insert(STATUS_FIELD, HeaderValue::from_static(state.status.as_str()));
        }
    }
}

/// The stored response `stale` freshened by the 304 `h`: merged head, times and rules
/// recomputed from it.
pub(super) fn freshen(
    cache: &HttpCache,
    stale: &CachedObject,
    h: &ResponseHead,
    request_time: u64,
    now: u64,
) -> CachedObject {
    let mut meta = stale.meta.freshened(h);
    let cc = CacheControl::parse(&meta.head.headers);
    let lifetime = policy::lifetime(&meta.head, &cc, now, cache.settings.policy);
    meta.times = policy::times(h, request_time, now, lifetime);
    meta.stale = StaleRules::of(&cc);
    CachedObject { meta, body: stale.body.clone(), trailers: stale.trailers.clone() }
}

/// RFC 9111 §4.4: the target, and the Location and Content-Location of the response when they
/// are on the same host (another host's entries are not this response's to drop).
fn invalidate(cache: &HttpCache, session: &Session, key: Option<&CacheKey>, h: &ResponseHead) {
    if let Some(k) = key {
        cache.purge(k);
    }
    let Some(own) = CacheKey::for_request(&session.req) else { return };
    for name in [LOCATION, CONTENT_LOCATION] {
        let Some(v) = h.headers.value(&name).and_then(|v| std::str::from_utf8(v).ok()) else { continue };
        let Ok(uri) = v.parse::<http::Uri>() else { continue };
        let mut req = session.req.clone();
        req.uri = match uri.authority() {
            Some(_) => uri,
            None => match uri.path_and_query() {
                Some(p) if p.as_str().starts_with('/') => p.as_str().parse().unwrap_or(uri),
                _ => continue,
            },
        };
        if let Some(k) = CacheKey::for_request(&req) {
            if same_host(&k, &own) {
                cache.purge(&k);
            }
        }
    }
}

fn same_host(a: &CacheKey, b: &CacheKey) -> bool {
    let host = |k: &CacheKey| {
        let s = k.as_bytes();
        let rest = s.windows(3).position(|w| w == b"://").map_or(s, |i| &s[i + 3..]);
        let end = rest.iter().position(|&c| c == b'/').unwrap_or(rest.len());
        rest[..end].to_vec()
    };
    host(a) == host(b)
}

impl Session {
    /// What the service's cache did for this request so far (final in `logging`); `None` for a
    /// service without a cache.
    pub fn cache_status(&self) -> Option<CacheStatus> {
        self.cache.as_deref().map(|c| c.status).or(self.summary.cache)
    }
}
