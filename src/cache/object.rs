//! A stored response: its head as the cache keeps it, the times its age is computed from, the
//! request values its `Vary` fields selected, and the body.

use bytes::Bytes;
use http::header::{self, HeaderName, AGE, VARY};
use http::HeaderMap;

use super::directives::CacheControl;
use crate::protocol::http::{list_elements, Headers, ResponseHead, WireBuilder};

/// When a stored response was requested and received, and what its freshness came to
/// (RFC 9111 §4.2), in seconds since the Unix epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Times {
    /// When the request that fetched (or last revalidated) it went upstream.
    pub request: u64,
    /// When its head arrived.
    pub response: u64,
    /// `corrected_initial_age` (§4.2.3): its age when it arrived.
    pub initial_age: u64,
    /// Its freshness lifetime (§4.2.1).
    pub lifetime: u64,
}

impl Times {
    /// `current_age` (§4.2.3) at `now`.
    pub fn age(&self, now: u64) -> u64 {
        self.initial_age + now.saturating_sub(self.response)
    }
}

/// What the response's own directives allow once it is stale, read once when it is stored.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StaleRules {
    /// `no-cache`: never served without revalidation.
    pub no_cache: bool,
    /// `must-revalidate`, `proxy-revalidate` or `s-maxage`: never served stale.
    pub revalidate: bool,
    /// `stale-while-revalidate`
    pub while_revalidate: u64,
    /// `stale-if-error`
    pub if_error: u64,
}

impl StaleRules {
    /// The rules of a response with these directives.
    pub fn of(cc: &CacheControl) -> StaleRules {
        StaleRules {
            no_cache: cc.no_cache,
            revalidate: cc.revalidate_when_stale(),
            while_revalidate: cc.stale_while_revalidate.unwrap_or(0),
            if_error: cc.stale_if_error.unwrap_or(0),
        }
    }
}

/// Everything about a stored response but its body.
#[derive(Debug, Clone)]
pub struct Meta {
    /// The head as stored: no hop-by-hop fields and no `Age` (computed when served).
    pub head: ResponseHead,
    /// Its times.
    pub times: Times,
    /// Its directives' rules for staleness.
    pub stale: StaleRules,
    /// Each field its `Vary` names, with the value the storing request had (`None`: absent).
    pub vary: Box<[(HeaderName, Option<Bytes>)]>,
}

impl Meta {
    /// The meta of `head` (copied compactly, without the fields a cache must not keep), fetched
    /// by a request with `req` fields.
    pub fn new(head: &ResponseHead, req: &Headers, times: Times, cc: &CacheControl) -> Meta {
        let vary = list_elements(&head.headers, &VARY)
            .filter(|n| !n.is_empty())
            .filter_map(|n| HeaderName::from_bytes(n).ok())
            .map(|n| {
                let v = selecting_value(req, &n);
                (n, v)
            })
            .collect();
        let stored = ResponseHead {
            status: head.status,
            version: head.version,
            reason: owned_reason(head),
            headers: compact(&head.headers, unstored),
        };
        Meta { head: stored, times, stale: StaleRules::of(cc), vary }
    }

    /// Whether a request with `req` fields selects this response (RFC 9111 §4.1).
    pub fn matches(&self, req: &Headers) -> bool {
        self.vary.iter().all(|(n, v)| selecting_value(req, n) == *v)
    }

    /// Whether `other` answers the same selecting values (a newer copy of this variant).
    pub fn same_variant(&self, other: &Meta) -> bool {
        self.vary == other.vary
    }

    /// This meta's head updated by a `304 Not Modified` (RFC 9111 §4.3.4, §3.2): each field the
    /// 304 carries replaces the stored ones of that name, except those that describe the stored
    /// body itself (its length, coding, range, digest and entity tag: the body is not replaced,
    /// and it may have been decoded as it was stored). Times and rules are the caller's to
    /// recompute from the merged head.
    pub fn freshened(&self, not_modified: &ResponseHead) -> Meta {
        let keep = |n: &HeaderName| describes_body(n) || unstored(n);
        let updated = not_modified.headers.map();
        let mut b = WireBuilder::with_capacity(self.head.headers.encoded_len(), self.head.headers.len());
        for (n, v) in &self.head.headers {
            if keep(n) || !updated.contains_key(n) {
                b.push(n, v.as_bytes());
            }
        }
        for (n, v) in updated {
            if !keep(n) {
                b.push(n, v.as_bytes());
            }
        }
        let mut meta = self.clone();
        meta.head.headers = b.finish();
        meta
    }

    /// Bytes this meta takes beyond its struct: the head's fields and the selecting values.
    pub fn heap_size(&self) -> usize {
        let vary: usize =
            self.vary.iter().map(|(n, v)| n.as_str().len() + v.as_ref().map_or(0, Bytes::len) + 40).sum();
        self.head.headers.encoded_len() + self.head.headers.len() * 24 + self.head.reason.len() + vary
    }
}

/// A stored response.
#[derive(Debug, Clone)]
pub struct CachedObject {
    /// Head, times and selecting values.
    pub meta: Meta,
    /// The body as the origin sent it (decoded when the service decompresses upstream bodies).
    pub body: Bytes,
    /// Its trailers, if it had any.
    pub trailers: Option<HeaderMap>,
}

impl CachedObject {
    /// Bytes charged against the store's bound: the body, the meta and a fixed overhead for the
    /// object itself and its place in the store.
    pub fn charge(&self) -> usize {
        let trailers = self
            .trailers
            .as_ref()
            .map_or(0, |t| t.iter().map(|(n, v)| n.as_str().len() + v.len() + 32).sum());
        std::mem::size_of::<Self>() + 64 + self.body.len() + self.meta.heap_size() + trailers
    }
}

/// The reason phrase as the stored head keeps it: the canonical one is static, another is copied.
/// The received one is a slice of the upstream's read buffer, which it would keep alive (several
/// KiB per stored object) for a two-byte "OK".
fn owned_reason(head: &ResponseHead) -> Bytes {
    match head.status.canonical_reason() {
        Some(r) if r.as_bytes() == &head.reason[..] => Bytes::from_static(r.as_bytes()),
        _ => Bytes::copy_from_slice(&head.reason),
    }
}

/// Fields a stored head never holds: `Age` (computed when served) and the hop-by-hop ones.
fn unstored(n: &HeaderName) -> bool {
    *n == AGE
        || matches!(
            n.as_str(),
            "connection" | "keep-alive" | "proxy-connection" | "te" | "transfer-encoding" | "upgrade"
        )
}

/// Fields a 304 does not update: they describe the stored body, which it does not replace.
fn describes_body(n: &HeaderName) -> bool {
    *n == header::CONTENT_LENGTH
        || *n == header::CONTENT_ENCODING
        || *n == header::CONTENT_RANGE
        || *n == header::ETAG
        || n.as_str() == "content-md5"
}

/// The value of `name` a request has for `Vary` (§4.1): its lines joined with ", ", or `None`
/// when it has none.
fn selecting_value(req: &Headers, name: &HeaderName) -> Option<Bytes> {
    let mut lines = req.values(name);
    let first = lines.next()?;
    let mut v = first.trim_ascii().to_vec();
    for more in lines {
        v.extend_from_slice(b", ");
        v.extend_from_slice(more.trim_ascii());
    }
    Some(v.into())
}

/// A compact owned copy of `headers` without the fields `drop` names: the stored head must not
/// pin the upstream's read buffer, of which the borrowed head is a slice.
fn compact(headers: &Headers, drop: impl Fn(&HeaderName) -> bool) -> Headers {
    let mut b = WireBuilder::with_capacity(headers.encoded_len(), headers.len());
    for (n, v) in headers {
        if !drop(n) {
            b.push(n, v.as_bytes());
        }
    }
    b.finish()
}
