//! The primary cache key (RFC 9111 §2): the target URI of a GET, so that HEAD is served from a
//! stored GET. The `Vary` part of the key belongs to each stored response (see
//! [`super::CachedObject::matches`]), not to this.

use bytes::{BufMut, Bytes, BytesMut};
use http::header::HOST;

use crate::protocol::http::RequestHead;

/// A primary key: exact bytes, compared whole (no hash stands in for it, so no collision can
/// serve one URI's response for another's).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CacheKey(Bytes);

impl CacheKey {
    /// The default key of a request: scheme, host (lowercase, from the absolute-form target or
    /// Host) and path with query. `None` without a host: a key of the path alone would let one
    /// site's response answer for another's (Pingora CVE-2026-2836), so such a request bypasses
    /// the cache. The scheme is the target's when it names one (HTTP/2, absolute-form), else `http`.
    pub fn for_request(req: &RequestHead) -> Option<CacheKey> {
        let host = match req.uri.authority() {
            Some(a) => a.as_str().as_bytes(),
            None => req.headers.value(&HOST)?,
        };
        if host.is_empty() {
            return None;
        }
        let scheme = req.uri.scheme_str().unwrap_or("http");
        let path = req.uri.path_and_query().map_or("/", |p| p.as_str());
        Some(Self::from_parts(scheme, host, path))
    }

    /// The key of `scheme://host` + `path` (path with query, as sent).
    pub fn from_parts(scheme: &str, host: &[u8], path: &str) -> CacheKey {
        let mut k = BytesMut::with_capacity(scheme.len() + host.len() + path.len() + 3);
        k.put_slice(scheme.as_bytes());
        k.put_slice(b"://");
        k.extend(host.iter().map(u8::to_ascii_lowercase));
        k.put_slice(path.as_bytes());
        CacheKey(k.freeze())
    }

    /// A key chosen by the host (a `cache_key_callback`): any bytes, used as they are.
    pub fn custom(bytes: impl Into<Bytes>) -> CacheKey {
        CacheKey(bytes.into())
    }

    /// The key's bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// The key's bytes, shared.
    pub fn bytes(&self) -> &Bytes {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::http::fields::wire;
    use http::{Method, Uri, Version};

    fn req(target: &str, host: Option<&str>) -> RequestHead {
        let fields: Vec<(&str, &str)> = host.map(|h| ("Host", h)).into_iter().collect();
        RequestHead {
            method: Method::GET,
            uri: target.parse::<Uri>().unwrap(),
            version: Version::HTTP_11,
            headers: wire(&fields),
        }
    }

    #[test]
    fn host_scheme_path_and_query() {
        let k = CacheKey::for_request(&req("/a?b=1", Some("Example.COM"))).unwrap();
        assert_eq!(k.as_bytes(), b"http://example.com/a?b=1");
        let k = CacheKey::for_request(&req("https://x.test:8443/p", Some("other"))).unwrap();
        assert_eq!(k.as_bytes(), b"https://x.test:8443/p");
    }

    #[test]
    fn never_path_only() {
        assert_eq!(CacheKey::for_request(&req("/a", None)), None);
        assert_eq!(CacheKey::for_request(&req("/a", Some(""))), None);
        let a = CacheKey::for_request(&req("/a", Some("one.test"))).unwrap();
        let b = CacheKey::for_request(&req("/a", Some("two.test"))).unwrap();
        assert_ne!(a, b);
    }
}
