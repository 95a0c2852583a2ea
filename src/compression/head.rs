//! The response head of a body whose coding the proxy changes: the length goes (the body's
//! length is unknown until it ends, so HTTP/1 chunks it and HTTP/2 just sends DATA frames), the
//! coding is named, caches learn that the body varies with `Accept-Encoding`, and a strong
//! validator becomes weak, since the bytes are no longer the origin's (RFC 9110 §8.8.1).

use http::header::{CONTENT_ENCODING, CONTENT_LENGTH, ETAG, VARY};
use http::HeaderValue;

use super::Algorithm;
use crate::protocol::http::{has_token, Headers};

/// Rewrites the head of a response about to be encoded with `a`.
pub fn mark_encoded(headers: &mut Headers, a: Algorithm) {
    headers.remove(CONTENT_LENGTH);
    headers.insert(CONTENT_ENCODING, HeaderValue::from_static(a.token()));
    merge_vary(headers);
    weaken_etag(headers);
}

/// Rewrites the head of an upstream response about to be decoded: what the filters see is the
/// identity body, of a length unknown until it ends.
pub(crate) fn mark_decoded(headers: &mut Headers) {
    headers.remove(CONTENT_LENGTH);
    headers.remove(CONTENT_ENCODING);
    weaken_etag(headers);
}

/// Adds `Accept-Encoding` to `Vary`, keeping what is there (`Vary: *` already covers it).
pub fn merge_vary(headers: &mut Headers) {
    if has_token(headers, &VARY, "accept-encoding") || has_token(headers, &VARY, "*") {
        return;
    }
    let merged = {
        let mut existing = headers.values(&VARY).filter(|v| !v.trim_ascii().is_empty()).peekable();
        if existing.peek().is_none() {
            None
        } else {
            let mut v = Vec::new();
            for line in existing {
                v.extend_from_slice(line.trim_ascii());
                v.extend_from_slice(b", ");
            }
            v.extend_from_slice(b"Accept-Encoding");
            HeaderValue::from_bytes(&v).ok()
        }
    };
    headers.insert(VARY, merged.unwrap_or(HeaderValue::from_static("Accept-Encoding")));
}

fn weaken_etag(headers: &mut Headers) {
    let weak = match headers.value(&ETAG) {
        Some(v) if v.starts_with(b"\"") => {
            let mut w = b"W/".to_vec();
            w.extend_from_slice(v);
            HeaderValue::from_bytes(&w).ok()
        }
        _ => None,
    };
    if let Some(w) = weak {
        headers.insert(ETAG, w);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::http::fields::wire;

    fn encoded(fields: &[(&str, &str)]) -> Headers {
        let mut h = wire(fields);
        mark_encoded(&mut h, Algorithm::Gzip);
        h
    }

    #[test]
    fn head_rewrite() {
        let h = encoded(&[("content-length", "10"), ("etag", "\"abc\""), ("content-type", "text/plain")]);
        assert_eq!(h.value(&CONTENT_LENGTH), None);
        assert_eq!(h.value(&CONTENT_ENCODING), Some(&b"gzip"[..]));
        assert_eq!(h.value(&VARY), Some(&b"Accept-Encoding"[..]));
        assert_eq!(h.value(&ETAG), Some(&b"W/\"abc\""[..]));
        let h = encoded(&[("etag", "W/\"abc\""), ("vary", "Origin"), ("vary", "Cookie")]);
        assert_eq!(h.value(&ETAG), Some(&b"W/\"abc\""[..]));
        assert_eq!(h.value(&VARY), Some(&b"Origin, Cookie, Accept-Encoding"[..]));
        assert_eq!(h.values(&VARY).count(), 1);
        let h = encoded(&[("vary", "origin, accept-encoding")]);
        assert_eq!(h.value(&VARY), Some(&b"origin, accept-encoding"[..]));
        let h = encoded(&[("vary", "*")]);
        assert_eq!(h.value(&VARY), Some(&b"*"[..]));
    }
}
