//! Conditional requests around a stored response: a client's own `If-None-Match` /
//! `If-Modified-Since` answered from the cache (RFC 9110 §13.1, RFC 9111 §4.3.2), and the
//! validators a revalidation sends upstream (§4.3.1).

use http::header::{DATE, ETAG, IF_MODIFIED_SINCE, IF_NONE_MATCH, LAST_MODIFIED};
use http::HeaderValue;

use super::policy::http_date;
use crate::protocol::http::Headers;

/// Whether a client that sent these conditionals gets `304 Not Modified` for a stored response
/// with `stored` fields, received at `received`. `If-None-Match` (weak comparison) decides when
/// present; otherwise `If-Modified-Since` against Last-Modified, or Date without one, or the time
/// the response was received without either (RFC 9111 §4.3.2).
pub fn not_modified(inm: Option<&[u8]>, ims: Option<&[u8]>, stored: &Headers, received: u64) -> bool {
    if let Some(inm) = inm {
        let Some(etag) = stored.value(&ETAG) else { return false };
        return inm
            .split(|&b| b == b',')
            .map(|t| t.trim_ascii())
            .any(|t| t == b"*" || weak_eq(t, etag.trim_ascii()));
    }
    let Some(since) = ims.and_then(http_date) else { return false };
    let modified = stored.value(&LAST_MODIFIED).or_else(|| stored.value(&DATE)).and_then(http_date);
    modified.unwrap_or(received) <= since
}

fn weak_eq(a: &[u8], b: &[u8]) -> bool {
    let opaque = |t: &[u8]| t.strip_prefix(b"W/").map_or(t.to_vec(), <[u8]>::to_vec);
    opaque(a) == opaque(b)
}

/// Replaces a request's conditionals with the stored response's validators; whether it has any
/// (without one the revalidation is a plain request).
pub fn set_validators(req: &mut Headers, stored: &Headers) -> bool {
    req.remove(IF_NONE_MATCH);
    req.remove(IF_MODIFIED_SINCE);
    let mut any = false;
    if let Some(v) = stored.value(&ETAG).and_then(|v| HeaderValue::from_bytes(v).ok()) {
        req.insert(IF_NONE_MATCH, v);
        any = true;
    }
    if let Some(v) = stored.value(&LAST_MODIFIED).and_then(|v| HeaderValue::from_bytes(v).ok()) {
        req.insert(IF_MODIFIED_SINCE, v);
        any = true;
    }
    any
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::http::fields::wire;

    #[test]
    fn client_conditionals() {
        let stored = wire(&[("ETag", "\"v1\""), ("Last-Modified", "Sun, 06 Nov 1994 08:49:37 GMT")]);
        let cases: &[(Option<&str>, Option<&str>, bool)] = &[
            (Some("\"v1\""), None, true),
            (Some("W/\"v1\""), None, true),
            (Some("\"v0\", \"v1\""), None, true),
            (Some("*"), None, true),
            (Some("\"v2\""), None, false),
            // If-None-Match decides when present.
            (Some("\"v2\""), Some("Sun, 06 Nov 1994 08:49:37 GMT"), false),
            (None, Some("Sun, 06 Nov 1994 08:49:37 GMT"), true),
            (None, Some("Sun, 06 Nov 1994 08:49:36 GMT"), false),
            (None, Some("not a date"), false),
            (None, None, false),
        ];
        for (inm, ims, want) in cases {
            let got = not_modified(inm.map(str::as_bytes), ims.map(str::as_bytes), &stored, 0);
            assert_eq!(got, *want, "If-None-Match {inm:?}, If-Modified-Since {ims:?}");
        }
    }

    #[test]
    fn if_modified_since_falls_back_on_date_then_receipt() {
        let ims = Some(&b"Sun, 06 Nov 1994 08:49:37 GMT"[..]);
        let dated = wire(&[("Date", "Sun, 06 Nov 1994 08:49:37 GMT")]);
        assert!(not_modified(None, ims, &dated, u64::MAX));
        let later = wire(&[("Date", "Sun, 06 Nov 1994 08:49:38 GMT")]);
        assert!(!not_modified(None, ims, &later, 0));
        assert!(not_modified(None, ims, &wire(&[]), 784_111_777));
        assert!(!not_modified(None, ims, &wire(&[]), 784_111_778));
    }

    #[test]
    fn validators_replace_the_clients() {
        let stored = wire(&[("ETag", "\"v1\""), ("Last-Modified", "Sun, 06 Nov 1994 08:49:37 GMT")]);
        let mut req = wire(&[("If-None-Match", "\"mine\""), ("Host", "h")]);
        assert!(set_validators(&mut req, &stored));
        assert_eq!(req.value(&IF_NONE_MATCH), Some(&b"\"v1\""[..]));
        assert_eq!(req.value(&IF_MODIFIED_SINCE), Some(&b"Sun, 06 Nov 1994 08:49:37 GMT"[..]));
        assert!(!set_validators(&mut req, &wire(&[])));
        assert_eq!(req.value(&IF_NONE_MATCH), None);
    }
}
