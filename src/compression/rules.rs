//! Whether a response may be encoded at all, whatever the client accepts: the exclusions of
//! RFC 9110 / 9111 (no-transform, ranges, bodiless responses) and the service's size and
//! media-type filters.

use http::header::{CACHE_CONTROL, CONTENT_ENCODING, CONTENT_TYPE, RANGE};
use http::{Method, StatusCode};

use super::CompressionSettings;
use crate::protocol::h1::framing::is_upgrade_request;
use crate::protocol::http::length::declared_length;
use crate::protocol::http::{has_token, list_elements, RequestHead, ResponseHead};

/// Why a response is sent as it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exclusion {
    /// HEAD, or a status without a body (1xx, 204, 304).
    NoBody,
    /// A range request or a 206: the ranges address the identity bytes.
    Range,
    /// An upgrade offer: the body may turn into another protocol's bytes.
    Upgrade,
    /// The body already has a content coding.
    Encoded,
    /// `Cache-Control: no-transform` (RFC 9111 §5.2.2.6).
    NoTransform,
    /// Content-Length below the service's minimum.
    TooShort,
    /// No Content-Type, or one outside the service's list.
    ContentType,
}

/// `Ok` when `resp`, answering `req`, may be encoded under `s` (the client's `Accept-Encoding`
/// decides next).
pub fn compressible(
    req: &RequestHead,
    resp: &ResponseHead,
    s: &CompressionSettings,
) -> Result<(), Exclusion> {
    let status = resp.status;
    if req.method == Method::HEAD
        || status.is_informational()
        || status == StatusCode::NO_CONTENT
        || status == StatusCode::NOT_MODIFIED
    {
        return Err(Exclusion::NoBody);
    }
    if status == StatusCode::PARTIAL_CONTENT || req.headers.value(&RANGE).is_some() {
        return Err(Exclusion::Range);
    }
    if is_upgrade_request(req) {
        return Err(Exclusion::Upgrade);
    }
    if list_elements(&resp.headers, &CONTENT_ENCODING)
        .any(|c| !c.is_empty() && !c.eq_ignore_ascii_case(b"identity"))
    {
        return Err(Exclusion::Encoded);
    }
    if has_token(&resp.headers, &CACHE_CONTROL, "no-transform") {
        return Err(Exclusion::NoTransform);
    }
    if declared_length(&resp.headers).is_some_and(|n| n < s.min_length.max(1)) {
        return Err(Exclusion::TooShort);
    }
    match resp.headers.value(&CONTENT_TYPE) {
        Some(ct) if type_listed(ct, &s.content_types) => Ok(()),
        _ => Err(Exclusion::ContentType),
    }
}

/// Whether the media type of a Content-Type value (parameters ignored) matches an entry:
/// `type/subtype`, `type/*`, or `type/*+suffix`.
fn type_listed(ct: &[u8], list: &[Box<str>]) -> bool {
    let media = ct.split(|&b| b == b';').next().unwrap_or_default().trim_ascii();
    let Some(slash) = media.iter().position(|&b| b == b'/') else { return false };
    let (ty, sub) = (&media[..slash], &media[slash + 1..]);
    list.iter().any(|entry| {
        let Some((ety, esub)) = entry.split_once('/') else { return false };
        if !ty.eq_ignore_ascii_case(ety.as_bytes()) {
            return false;
        }
        match esub.strip_prefix('*') {
            Some("") => true,
            Some(suffix) => {
                sub.len() > suffix.len()
                    && sub[sub.len() - suffix.len()..].eq_ignore_ascii_case(suffix.as_bytes())
            }
            None => sub.eq_ignore_ascii_case(esub.as_bytes()),
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::http::fields::wire;

    fn types() -> Vec<Box<str>> {
        CompressionSettings::default().content_types.to_vec()
    }

    #[test]
    fn media_types() {
        let t = types();
        for yes in [
            "text/html",
            "TEXT/plain; charset=utf-8",
            "application/json",
            "application/ld+json",
            "image/svg+xml",
        ] {
            assert!(type_listed(yes.as_bytes(), &t), "{yes}");
        }
        for no in
            ["image/png", "application/grpc", "application/octet-stream", "text", "", "application/+json"]
        {
            assert!(!type_listed(no.as_bytes(), &t), "{no}");
        }
    }

    fn check(
        method: Method,
        req: &[(&str, &str)],
        status: u16,
        resp: &[(&str, &str)],
    ) -> Result<(), Exclusion> {
        let req = RequestHead {
            method,
            uri: "/".parse().unwrap(),
            version: http::Version::HTTP_11,
            headers: wire(req),
        };
        let mut r = ResponseHead::new(StatusCode::from_u16(status).unwrap());
        r.headers = wire(resp);
        compressible(&req, &r, &CompressionSettings::default())
    }

    #[test]
    fn exclusions() {
        let text = [("content-type", "text/plain")];
        assert_eq!(check(Method::GET, &[], 200, &text), Ok(()));
        assert_eq!(check(Method::GET, &[], 404, &text), Ok(()));
        assert_eq!(check(Method::HEAD, &[], 200, &text), Err(Exclusion::NoBody));
        assert_eq!(check(Method::GET, &[], 204, &text), Err(Exclusion::NoBody));
        assert_eq!(check(Method::GET, &[], 304, &text), Err(Exclusion::NoBody));
        assert_eq!(check(Method::GET, &[], 206, &text), Err(Exclusion::Range));
        assert_eq!(check(Method::GET, &[("range", "bytes=0-1")], 200, &text), Err(Exclusion::Range));
        let up = [("connection", "upgrade"), ("upgrade", "websocket")];
        assert_eq!(check(Method::GET, &up, 200, &text), Err(Exclusion::Upgrade));
        let enc = [("content-type", "text/plain"), ("content-encoding", "gzip")];
        assert_eq!(check(Method::GET, &[], 200, &enc), Err(Exclusion::Encoded));
        let ident = [("content-type", "text/plain"), ("content-encoding", "identity")];
        assert_eq!(check(Method::GET, &[], 200, &ident), Ok(()));
        let nt = [("content-type", "text/plain"), ("cache-control", "public, no-transform")];
        assert_eq!(check(Method::GET, &[], 200, &nt), Err(Exclusion::NoTransform));
        let short = [("content-type", "text/plain"), ("content-length", "255")];
        assert_eq!(check(Method::GET, &[], 200, &short), Err(Exclusion::TooShort));
        let long = [("content-type", "text/plain"), ("content-length", "256")];
        assert_eq!(check(Method::GET, &[], 200, &long), Ok(()));
        assert_eq!(check(Method::GET, &[], 200, &[]), Err(Exclusion::ContentType));
        assert_eq!(
            check(Method::GET, &[], 200, &[("content-type", "image/png")]),
            Err(Exclusion::ContentType)
        );
    }
}
