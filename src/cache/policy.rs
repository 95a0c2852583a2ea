//! RFC 9111 for a shared cache: whether a response may be stored (§3), how long it stays fresh
//! (§4.2.1), how old it is (§4.2.3), and whether a stored one may answer a request (§4.2, §4.3,
//! RFC 5861).

use std::time::UNIX_EPOCH;

use http::header::{AUTHORIZATION, DATE, EXPIRES, LAST_MODIFIED, VARY};
use http::StatusCode;

use super::directives::{delta_seconds, CacheControl, MAX_DELTA};
use super::object::{Meta, Times};
use super::seen::Seen;
use crate::protocol::http::{list_elements, Headers, ResponseHead};

/// A heuristic lifetime never exceeds a day, whatever Last-Modified says.
const MAX_HEURISTIC: u64 = 24 * 3600;

/// Why a response is not stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotStorable {
    /// Not a final status a cache understands, or a partial one (206, Content-Range).
    Status,
    /// `no-store` on the request or the response.
    NoStore,
    /// `private`.
    Private,
    /// The request had Authorization and the response does not say it may be shared (§3.5).
    Authorization,
    /// Set-Cookie, which the service does not allow to be stored.
    SetCookie,
    /// `Vary: *`: no request could ever be matched to it.
    VaryStar,
    /// No freshness at all and no validator to revalidate it with: storing it would be useless.
    NoFreshness,
}

/// What a service lets the policy do beyond the RFC's musts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PolicyOptions {
    /// Store responses that set cookies (off: a cookie set for one client would be handed to all).
    pub allow_set_cookie: bool,
    /// Give responses without explicit freshness a lifetime of a tenth of their age since
    /// Last-Modified (§4.2.2), capped at a day.
    pub heuristic_freshness: bool,
}

/// Statuses cacheable by default (RFC 9110 §15.1): storable without explicit freshness.
fn cacheable_by_default(s: StatusCode) -> bool {
    matches!(s.as_u16(), 200 | 203 | 204 | 300 | 301 | 308 | 404 | 405 | 410 | 414 | 501)
}

/// Statuses whose caching semantics this cache implements (for `must-understand`).
fn understood(s: StatusCode) -> bool {
    cacheable_by_default(s) || matches!(s.as_u16(), 302 | 303 | 307)
}

/// An HTTP date as seconds since the epoch.
pub fn http_date(v: &[u8]) -> Option<u64> {
    let t = httpdate::parse_http_date(std::str::from_utf8(v).ok()?).ok()?;
    Some(t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs()))
}

fn date_of(h: &Headers, name: &http::HeaderName) -> Option<u64> {
    h.value(name).and_then(http_date)
}

/// Whether the response may be stored for a GET with `req` fields (§3), and if so its
/// freshness lifetime.
pub fn storable(
    req: &Headers,
    req_cc: &CacheControl,
    resp: &ResponseHead,
    cc: &CacheControl,
    response_time: u64,
    o: PolicyOptions,
) -> Result<u64, NotStorable> {
    let status = resp.status;
    let seen = Seen::of(&resp.headers);
    let explicit = cc.s_maxage.is_some() || cc.max_age.is_some() || seen.has(Seen::EXPIRES);
    if status.is_informational()
        || status == StatusCode::PARTIAL_CONTENT
        || status == StatusCode::NOT_MODIFIED
        || seen.has(Seen::CONTENT_RANGE)
        || !(explicit || cc.public || cacheable_by_default(status))
    {
        return Err(NotStorable::Status);
    }
    // must-understand: only a status this cache understands is stored, and then no-store in the
    // same field is for caches that do not (§5.2.2.3).
    if cc.must_understand && !understood(status) {
        return Err(NotStorable::Status);
    }
    if (cc.no_store && !cc.must_understand) || req_cc.no_store {
        return Err(NotStorable::NoStore);
    }
    if cc.private {
        return Err(NotStorable::Private);
    }
    if req.value(&AUTHORIZATION).is_some() && !(cc.must_revalidate || cc.public || cc.s_maxage.is_some()) {
        return Err(NotStorable::Authorization);
    }
    if !o.allow_set_cookie && seen.has(Seen::SET_COOKIE) {
        return Err(NotStorable::SetCookie);
    }
    if seen.has(Seen::VARY) && list_elements(&resp.headers, &VARY).any(|v| v == b"*") {
        return Err(NotStorable::VaryStar);
    }
    let life = if explicit || o.heuristic_freshness { lifetime(resp, cc, response_time, o) } else { 0 };
    let validators = seen.has(Seen::ETAG) || seen.has(Seen::LAST_MODIFIED);
    if life == 0 && !validators && cc.stale_if_error.is_none() {
        return Err(NotStorable::NoFreshness);
    }
    Ok(life)
}

/// The freshness lifetime (§4.2.1): s-maxage, max-age, Expires minus Date, or the heuristic.
pub fn lifetime(resp: &ResponseHead, cc: &CacheControl, response_time: u64, o: PolicyOptions) -> u64 {
    if let Some(s) = cc.s_maxage.or(cc.max_age) {
        return s;
    }
    let h = &resp.headers;
    let heuristic = o.heuristic_freshness && (cc.public || cacheable_by_default(resp.status));
    let expires = h.value(&EXPIRES);
    // Most responses have neither: no date to parse then.
    if expires.is_none() && !heuristic {
        return 0;
    }
    let date = date_of(h, &DATE).unwrap_or(response_time);
    if let Some(e) = expires {
        // An invalid Expires (or "0") is a time in the past (§5.3).
        return http_date(e).map_or(0, |e| e.saturating_sub(date));
    }
    date_of(h, &LAST_MODIFIED).map_or(0, |lm| (date.saturating_sub(lm) / 10).min(MAX_HEURISTIC))
}

/// The times of a response received at `response_time` for a request sent at `request_time`:
/// its `corrected_initial_age` from Age and Date (§4.2.3) and `lifetime`.
pub fn times(resp: &ResponseHead, request_time: u64, response_time: u64, lifetime: u64) -> Times {
    let h = &resp.headers;
    let age_value = age_value(h);
    let date = date_of(h, &DATE).unwrap_or(response_time);
    let apparent_age = response_time.saturating_sub(date);
    let response_delay = response_time.saturating_sub(request_time);
    let initial_age = apparent_age.max(age_value + response_delay);
    Times { request: request_time, response: response_time, initial_age, lifetime }
}

/// The `Age` value (§5.1). One line of digits is an age; none is 0; anything else (a list,
/// several lines, a sign, a fraction, parameters) is no age the cache can trust, so the response
/// is taken to be as old as an age can be (2^31 s, §1.2.2): stale, and revalidated before use (the reading of
/// cache-tests.fyi; §5.1's "ignore it" would serve it as fresh).
fn age_value(h: &Headers) -> u64 {
    let mut lines = h.values(&http::header::AGE);
    match (lines.next(), lines.next()) {
        (None, _) => 0,
        (Some(v), None) => delta_seconds(v.trim_ascii()).unwrap_or(MAX_DELTA),
        (Some(_), Some(_)) => MAX_DELTA,
    }
}

/// What to do with a stored response for a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Usable {
    /// Serve it; `stale` when it is past its lifetime but the client accepts that (`max-stale`).
    Serve {
        /// Past its lifetime.
        stale: bool,
    },
    /// Serve it stale and refresh it (`stale-while-revalidate`).
    ServeAndRefresh,
    /// Ask the origin first (a conditional request when it has validators).
    Revalidate,
}

/// Whether the stored `meta` may answer a request with directives `req_cc` at `now` (§4.2, §4.2.4,
/// §5.2.1, RFC 5861 §3).
pub fn usable(meta: &Meta, req_cc: &CacheControl, now: u64) -> Usable {
    let t = &meta.times;
    let age = t.age(now);
    if req_cc.no_cache || meta.stale.no_cache {
        return Usable::Revalidate;
    }
    if req_cc.max_age.is_some_and(|m| age > m) || req_cc.min_fresh.is_some_and(|m| age + m > t.lifetime) {
        return Usable::Revalidate;
    }
    if age < t.lifetime {
        return Usable::Serve { stale: false };
    }
    if meta.stale.revalidate {
        return Usable::Revalidate;
    }
    let staleness = age - t.lifetime;
    if req_cc.max_stale.is_some_and(|m| staleness <= m) {
        return Usable::Serve { stale: true };
    }
    if meta.stale.while_revalidate > 0 && staleness <= meta.stale.while_revalidate {
        return Usable::ServeAndRefresh;
    }
    Usable::Revalidate
}

/// Whether the stored `meta` may answer in place of an upstream error (RFC 5861 §4): within the
/// response's or the request's `stale-if-error`, and never past a `must-revalidate` or
/// `no-cache` (§4.2.4).
pub fn stale_if_error(meta: &Meta, req_cc: &CacheControl, now: u64) -> bool {
    if meta.stale.revalidate || meta.stale.no_cache {
        return false;
    }
    let window = meta.stale.if_error.max(req_cc.stale_if_error.unwrap_or(0));
    let staleness = meta.times.age(now).saturating_sub(meta.times.lifetime);
    window > 0 && staleness <= window
}

#[cfg(test)]
#[path = "policy_tests.rs"]
mod tests;
