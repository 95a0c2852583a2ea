//! Request ids and W3C trace context: an `X-Request-Id` kept when the client's is valid and made
//! otherwise, and a `traceparent` for the upstream that keeps the client's trace id (or starts a
//! trace) with a span id of our own, as a hop of the trace (W3C Trace Context §3.2).

use std::cell::Cell;
use std::fmt::Write;
use std::hash::{BuildHasher, Hasher};

use http::{HeaderName, HeaderValue};

use crate::protocol::http::RequestHead;

/// `X-Request-Id`.
pub static X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");
/// `traceparent`.
pub static TRACEPARENT: HeaderName = HeaderName::from_static("traceparent");

/// The longest client request id kept.
const MAX_ID: usize = 128;

thread_local! {
    static RNG: Cell<u64> = const { Cell::new(0) };
}

/// 64 random-looking bits from a per-thread generator (splitmix64), seeded from the standard
/// library's per-process random hash keys: ids must not repeat, not be secret.
fn random_u64() -> u64 {
    RNG.with(|c| {
        let mut s = c.get();
        if s == 0 {
            let mut h = std::collections::hash_map::RandomState::new().build_hasher();
            h.write_usize(c as *const _ as usize);
            s = h.finish() | 1;
        }
        s = s.wrapping_add(0x9e37_79b9_7f4a_7c15);
        c.set(s);
        let mut z = s;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    })
}

/// A client's id is kept when it is 1 to 128 visible ASCII characters of a safe set, so it can
/// go in a log line or a header as it is.
fn valid_id(v: &HeaderValue) -> bool {
    let b = v.as_bytes();
    !b.is_empty()
        && b.len() <= MAX_ID
        && b.iter().all(|c| c.is_ascii_alphanumeric() || b"-_.:+/=@".contains(c))
}

/// The trace id and flags of a valid version-00 `traceparent`
/// (`00-<32 hex trace id>-<16 hex parent id>-<2 hex flags>`, ids not all zero).
fn parse_traceparent(v: &HeaderValue) -> Option<(&str, &str)> {
    let s = v.to_str().ok()?;
    let hex = |p: &str, n: usize| p.len() == n && p.bytes().all(|c| matches!(c, b'0'..=b'9' | b'a'..=b'f'));
    let mut parts = s.split('-');
    let (ver, trace, parent, flags) = (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
    let ok = ver == "00"
        && parts.next().is_none()
        && hex(trace, 32)
        && hex(parent, 16)
        && hex(flags, 2)
        && trace.bytes().any(|c| c != b'0')
        && parent.bytes().any(|c| c != b'0');
    ok.then_some((trace, flags))
}

/// Gives `req` its request id and the `traceparent` it goes upstream with; returns the id.
pub(crate) fn assign(req: &mut RequestHead) -> HeaderValue {
    let id = match req.headers.get(&X_REQUEST_ID) {
        Some(v) if valid_id(v) => v.clone(),
        _ => {
            let mut s = String::with_capacity(32);
            let _ = write!(s, "{:016x}{:016x}", random_u64(), random_u64());
            let v = HeaderValue::from_str(&s).expect("hex is a valid header value");
            req.headers.insert(X_REQUEST_ID.clone(), v.clone());
            v
        }
    };
    let mut tp = String::with_capacity(55);
    match req.headers.get(&TRACEPARENT).and_then(parse_traceparent) {
        Some((trace, flags)) => {
            let _ = write!(tp, "00-{trace}-{:016x}-{flags}", random_u64() | 1);
        }
        None => {
            let _ =
                write!(tp, "00-{:016x}{:016x}-{:016x}-00", random_u64(), random_u64() | 1, random_u64() | 1);
        }
    }
    req.headers.insert(TRACEPARENT.clone(), HeaderValue::from_str(&tp).expect("hex is a valid header value"));
    id
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head(headers: &[(&str, &str)]) -> RequestHead {
        let mut b = http::Request::builder().uri("/");
        for (k, v) in headers {
            b = b.header(*k, *v);
        }
        let (parts, ()) = b.body(()).unwrap().into_parts();
        crate::protocol::h2::request_head(parts).unwrap()
    }

    #[test]
    fn keeps_valid_ids_and_the_trace() {
        let mut r = head(&[
            ("x-request-id", "abc-123"),
            ("traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"),
        ]);
        assert_eq!(assign(&mut r), "abc-123");
        let tp = r.headers.get(&TRACEPARENT).unwrap().to_str().unwrap().to_string();
        assert!(tp.starts_with("00-4bf92f3577b34da6a3ce929d0e0e4736-") && tp.ends_with("-01"), "{tp}");
        assert!(!tp.contains("00f067aa0ba902b7"), "a child span: {tp}");
    }

    #[test]
    fn replaces_bad_ids_and_starts_traces() {
        let mut r = head(&[("x-request-id", "bad id\"x"), ("traceparent", "00-0000-zz")]);
        let id = assign(&mut r);
        assert_eq!(id.len(), 32);
        assert_eq!(r.headers.get(&X_REQUEST_ID).unwrap(), &id);
        let tp = r.headers.get(&TRACEPARENT).unwrap().clone();
        assert!(parse_traceparent(&tp).is_some(), "{tp:?}");
        let mut r2 = head(&[]);
        assert_ne!(assign(&mut r2), id);
    }
}
