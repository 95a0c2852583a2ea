//! The proxy set up for the cache tests: hooks that forward to the test origin and record each
//! request's cache status, a cache on a manual clock, and request helpers.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use proxy::cache::{CacheKey, CacheSettings, CacheStatus, CacheVerdict, HttpCache, ManualClock, Meta};
use proxy::compression::CompressionSettings;
use proxy::error::{Error, Result};
use proxy::protocol::http::ResponseHead;
use proxy::proxy::{HttpProxy, ProxyHttp, Session};
use proxy::upstream::HttpPeer;

use super::client::{Conn, Response};
use super::harness::Proxy;
use super::origin::Origin;
use super::within;

/// Forwards to the origin (or to `refused` when the request has `x-peer: refused`). Request
/// fields drive the cache hooks: `x-skip-cache` (request_cache_filter says no), `x-key: K`
/// (cache_key_callback returns K), `x-expire-hit` (cache_hit_filter expires the hit),
/// `x-force-store: SECS` (response_cache_filter stores for SECS).
pub struct CacheHooks {
    pub origin: SocketAddr,
    pub refused: SocketAddr,
    pub statuses: Arc<Mutex<Vec<Option<CacheStatus>>>>,
}

fn has(s: &Session, name: &str) -> bool {
    s.req.headers.value(name).is_some()
}

fn text(s: &Session, name: &str) -> Option<String> {
    s.req.headers.value(name).map(|v| String::from_utf8_lossy(v).into_owned())
}

impl ProxyHttp for CacheHooks {
    type CTX = ();
    fn new_ctx(&self) {}

    async fn upstream_peer(&self, s: &mut Session, _c: &mut ()) -> Result<HttpPeer> {
        let to = if text(s, "x-peer").as_deref() == Some("refused") { self.refused } else { self.origin };
        Ok(HttpPeer::new(&to.to_string()).unwrap())
    }

    fn request_cache_filter(&self, s: &mut Session, _c: &mut ()) -> Result<bool> {
        Ok(!has(s, "x-skip-cache"))
    }

    fn cache_key_callback(&self, s: &mut Session, _c: &mut ()) -> Result<Option<CacheKey>> {
        Ok(text(s, "x-key").map(CacheKey::custom))
    }

    fn cache_hit_filter(&self, s: &mut Session, _m: &Meta, _c: &mut ()) -> Result<bool> {
        Ok(has(s, "x-expire-hit"))
    }

    fn response_cache_filter(
        &self,
        s: &mut Session,
        _r: &ResponseHead,
        v: &mut CacheVerdict,
        _c: &mut (),
    ) -> Result<()> {
        if let Some(secs) = text(s, "x-force-store").and_then(|t| t.parse().ok()) {
            *v = CacheVerdict { store: true, lifetime: secs };
        }
        Ok(())
    }

    fn logging(&self, s: &mut Session, _e: Option<&Error>, _c: &mut ()) {
        self.statuses.lock().unwrap().push(s.summary.cache);
    }
}

/// A proxy with a cache in front of a fresh origin.
pub struct CacheSetup {
    pub origin: Origin,
    pub proxy: Proxy,
    pub cache: Arc<HttpCache>,
    pub clock: ManualClock,
    pub statuses: Arc<Mutex<Vec<Option<CacheStatus>>>>,
}

impl CacheSetup {
    /// A 16 MiB cache with the status field on and `tweak` applied to its settings.
    pub async fn start(tweak: impl FnOnce(&mut CacheSettings)) -> CacheSetup {
        Self::start_with(tweak, CompressionSettings::default()).await
    }

    /// Like [`Self::start`], with these compression settings.
    pub async fn start_with(
        tweak: impl FnOnce(&mut CacheSettings),
        compression: CompressionSettings,
    ) -> CacheSetup {
        let origin = Origin::start().await;
        let refused = super::origin::refused_addr().await;
        let clock = ManualClock::new();
        let mut cache = HttpCache::new(16 << 20).with_clock(Arc::new(clock.clone()));
        cache.settings.status_header = true;
        tweak(&mut cache.settings);
        let cache = Arc::new(cache);
        let statuses = Arc::new(Mutex::new(Vec::new()));
        let hooks = CacheHooks { origin: origin.addr, refused, statuses: statuses.clone() };
        let mut app = HttpProxy::new(hooks);
        app.options_mut().cache = Some(cache.clone());
        app.options_mut().compression = compression;
        let proxy = Proxy::start_with(app, |_| {});
        CacheSetup { origin, proxy, cache, clock, statuses }
    }

    /// One request on a new connection.
    pub async fn send(&self, method: &str, path: &str, headers: &[(&str, &str)]) -> Response {
        let mut c = Conn::connect(self.proxy.addr).await.unwrap();
        within(20, c.request(method, path, headers, b"")).await
    }

    /// A GET on a new connection.
    pub async fn get(&self, path: &str, headers: &[(&str, &str)]) -> Response {
        self.send("GET", path, headers).await
    }

    /// Requests that reached the origin for targets starting with `prefix`.
    pub fn upstream(&self, prefix: &str) -> usize {
        self.origin.requests_to(prefix)
    }

    /// The cache status of every request logged so far, in order.
    pub fn statuses(&self) -> Vec<Option<CacheStatus>> {
        self.statuses.lock().unwrap().clone()
    }
}

/// The `x-cache-status` of a response.
pub fn status(r: &Response) -> &str {
    r.header("x-cache-status").unwrap_or("")
}
