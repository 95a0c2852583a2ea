//! The `Cache-Control` directives a shared cache acts on (RFC 9111 §5.2), read from every line of
//! the field. Unknown directives are ignored (§5.2.3).

use http::header::{CACHE_CONTROL, PRAGMA};

use super::seen::Seen;
use crate::protocol::http::{list_elements, Headers};

/// The largest delta-seconds honoured; a larger value means "this long" (RFC 9111 §1.2.2).
pub(crate) const MAX_DELTA: u64 = 1 << 31;

/// The directives of one message. A duplicated directive keeps its first value (§4.2.1 allows
/// either the first or "stale"); an invalid value counts as 0, which makes the response stale,
/// as §4.2.1 encourages.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CacheControl {
    /// `no-store`
    pub no_store: bool,
    /// `no-cache`, with or without a field list (a qualified one is treated as unqualified, which
    /// §5.2.2.4 allows).
    pub no_cache: bool,
    /// `private`, qualified or not: a shared cache does not store it (§5.2.2.7 allows storing the
    /// rest of a qualified one; not doing so is the safe reading).
    pub private: bool,
    /// `public`
    pub public: bool,
    /// `must-revalidate`
    pub must_revalidate: bool,
    /// `proxy-revalidate`
    pub proxy_revalidate: bool,
    /// `no-transform`
    pub no_transform: bool,
    /// `max-age` (request or response).
    pub max_age: Option<u64>,
    /// `s-maxage`
    pub s_maxage: Option<u64>,
    /// `stale-while-revalidate` (RFC 5861 §3)
    pub stale_while_revalidate: Option<u64>,
    /// `stale-if-error` (RFC 5861 §4; request or response)
    pub stale_if_error: Option<u64>,
    /// `max-stale`, with `Some(u64::MAX)` for "any staleness" (request).
    pub max_stale: Option<u64>,
    /// `min-fresh` (request)
    pub min_fresh: Option<u64>,
    /// `only-if-cached` (request)
    pub only_if_cached: bool,
    /// `must-understand` (response, RFC 9111 §5.2.2.3)
    pub must_understand: bool,
}

impl CacheControl {
    /// The directives of `headers`' Cache-Control lines. With none, a request's `Pragma:
    /// no-cache` counts as `no-cache` (RFC 9111 §5.4 leaves it to HTTP/1.0 clients).
    pub fn parse(headers: &Headers) -> CacheControl {
        let seen = Seen::of(headers);
        if !seen.has(Seen::CACHE_CONTROL) && !seen.has(Seen::PRAGMA) {
            return CacheControl::default();
        }
        let mut cc = CacheControl::default();
        let mut any = false;
        for d in list_elements(headers, &CACHE_CONTROL).filter(|d| !d.is_empty()) {
            any = true;
            let (name, value) = match d.iter().position(|&b| b == b'=') {
                Some(i) => (d[..i].trim_ascii(), Some(unquote(d[i + 1..].trim_ascii()))),
                None => (d, None),
            };
            cc.apply(name, value);
        }
        if !any && list_elements(headers, &PRAGMA).any(|t| t.eq_ignore_ascii_case(b"no-cache")) {
            cc.no_cache = true;
        }
        cc
    }

    fn apply(&mut self, name: &[u8], value: Option<&[u8]>) {
        let is = |n: &str| name.eq_ignore_ascii_case(n.as_bytes());
        let secs = |slot: &mut Option<u64>| {
            if slot.is_none() {
                *slot = Some(value.and_then(delta_seconds).unwrap_or(0));
            }
        };
        if is("no-store") {
            self.no_store = true;
        } else if is("no-cache") {
            self.no_cache = true;
        } else if is("private") {
            self.private = true;
        } else if is("public") {
            self.public = true;
        } else if is("must-revalidate") {
            self.must_revalidate = true;
        } else if is("proxy-revalidate") {
            self.proxy_revalidate = true;
        } else if is("no-transform") {
            self.no_transform = true;
        } else if is("only-if-cached") {
            self.only_if_cached = true;
        } else if is("must-understand") {
            self.must_understand = true;
        } else if is("max-age") {
            secs(&mut self.max_age);
        } else if is("s-maxage") {
            secs(&mut self.s_maxage);
        } else if is("stale-while-revalidate") {
            secs(&mut self.stale_while_revalidate);
        } else if is("stale-if-error") {
            secs(&mut self.stale_if_error);
        } else if is("min-fresh") {
            secs(&mut self.min_fresh);
        } else if is("max-stale") && self.max_stale.is_none() {
            // Without a value the client accepts any staleness (§5.2.1.2).
            self.max_stale = Some(value.map_or(u64::MAX, |v| delta_seconds(v).unwrap_or(0)));
        }
    }

    /// Whether a stale response may not be served without revalidation (§5.2.2.2, §5.2.2.8;
    /// `s-maxage` implies `proxy-revalidate` for a shared cache, §5.2.2.10).
    pub fn revalidate_when_stale(&self) -> bool {
        self.must_revalidate || self.proxy_revalidate || self.s_maxage.is_some()
    }
}

/// `delta-seconds` (§1.2.2): digits only, saturating at 2^31.
pub fn delta_seconds(v: &[u8]) -> Option<u64> {
    if v.is_empty() || !v.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(
        v.iter()
            .try_fold(0u64, |n, &d| n.checked_mul(10)?.checked_add(u64::from(d - b'0')))
            .map_or(MAX_DELTA, |n| n.min(MAX_DELTA)),
    )
}

fn unquote(v: &[u8]) -> &[u8] {
    match v {
        [b'"', inner @ .., b'"'] => inner,
        _ => v,
    }
}
