//! `stale-while-revalidate` (RFC 5861 §3): the client got the stale response at once; this
//! revalidates it afterwards, one request per key at a time (the key's lock), so that the next
//! client finds it fresh. It runs on the request's task once its response is complete, so the
//! client never waits for it; an HTTP/1 connection takes its next request after it.
//!
//! The refresh speaks to the upstream directly rather than through the exchange, which writes
//! to the client: `upstream_peer`, `upstream_request_filter`, `upstream_response_filter` and
//! `response_cache_filter` run as for any fetch; the body filters do not (nobody reads this body).

use std::borrow::Cow;
use std::sync::Arc;

use http::header::CONTENT_ENCODING;
use http::{Method, StatusCode, Version};

use super::cache::CacheState;
use super::exchange::check_upstream_host;
use super::hooks::Phases;
use super::{HttpProxy, ProxyHttp, Session};
use crate::cache::{set_validators, CacheControl, CacheKey, CachedObject, HttpCache, Locked};
use crate::connector::Connection;
use crate::error::Result;
use crate::protocol::h1::encode::strip_hop_by_hop;
use crate::protocol::http::client::{ClientSession, UpEvent};
use crate::protocol::http::BodyFraming;

impl<H: ProxyHttp> HttpProxy<H> {
    /// Revalidates `stale` for the key of `session` unless another request already fetches it.
    /// Failures leave the stored copy as it was.
    pub(super) async fn refresh(&self, session: &mut Session, stale: Arc<CachedObject>, ctx: &mut H::CTX) {
        let Some(cache) = self.options.cache.as_deref() else { return };
        let Some(key) = session.cache.as_deref().and_then(CacheState::key).cloned() else { return };
        if session.req.method != Method::GET {
            return;
        }
        let Locked::Write(_lock) = cache.lock().lock(&key) else { return };
        let _ = self.refetch(session, cache, &key, &stale, ctx).await;
    }

    async fn refetch(
        &self,
        session: &mut Session,
        cache: &HttpCache,
        key: &CacheKey,
        stale: &CachedObject,
        ctx: &mut H::CTX,
    ) -> Result<()> {
        let peer = self.hooks.upstream_peer(session, ctx).await?;
        let upstream = self.connector.get(&peer).await?;
        let (pool_key, reused) = (upstream.key, upstream.reused);
        let (mut us, _ticket) = match upstream.conn {
            Connection::H1(c) => (ClientSession::h1(c, reused), None),
            Connection::H2(send, ticket) => (ClientSession::h2(send, upstream.tls, reused), Some(ticket)),
        };
        let (rto, wto) = (peer.options.read_timeout, peer.options.write_timeout);
        let mut req = session.req.clone();
        req.version = Version::HTTP_11;
        strip_hop_by_hop(&mut req.headers, false);
        set_validators(&mut req.headers, &stale.meta.head.headers);
        if self.has(Phases::UPSTREAM_REQUEST_FILTER) {
            self.hooks.upstream_request_filter(session, &mut req, ctx).await?;
        }
        check_upstream_host(&mut req.headers, &peer)?;
        let req_cc = CacheControl::parse(&session.req.headers);
        let mut state = CacheState::refreshing(key.clone(), req_cc, cache.now());
        us.send_head(Cow::Owned(req), BodyFraming::Empty, wto).await?;
        us.finish(None, wto).await?;
        loop {
            match us.next_event(&Method::GET, &self.server.limits, rto).await? {
                UpEvent::Head(h) if h.status.is_informational() => {}
                UpEvent::Head(mut h) => {
                    strip_hop_by_hop(&mut h.headers, false);
                    if h.status == StatusCode::NOT_MODIFIED {
                        let now = cache.now();
                        let fresh = super::cache::freshen(cache, stale, &h, state.request_time(), now);
                        cache.storage().insert(key, Arc::new(fresh));
                        break;
                    }
                    // A coded body is decoded by the exchange's coders for a service that stores
                    // decoded bodies; a refresh has none, so it leaves such a response alone.
                    let coded = h.headers.value(&CONTENT_ENCODING).is_some();
                    if coded && self.options.compression.decompress_upstream {
                        return Ok(());
                    }
                    if self.has(Phases::UPSTREAM_RESPONSE_FILTER) {
                        self.hooks.upstream_response_filter(session, &mut h, ctx).await?;
                    }
                    self.admit_into(cache, session, &mut state, &h, ctx)?;
                    if !state.storing() {
                        return Ok(());
                    }
                    if us.body_is_empty() {
                        state.commit(cache, None);
                        break;
                    }
                }
                UpEvent::Data(d) => state.tee(cache, Some(&d)),
                UpEvent::End => {
                    state.commit(cache, us.take_trailers().as_ref());
                    break;
                }
            }
        }
        if let Some(conn) = us.into_reusable_h1() {
            self.connector.release_to(pool_key, &peer, conn);
        }
        Ok(())
    }
}
