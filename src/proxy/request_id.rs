//! Request ids and W3C trace context: an `X-Request-Id` kept when the client's is valid and made
//! otherwise, and a `traceparent` for the upstream that keeps the client's trace id (or starts a
//! trace) with a span id of our own, as a hop of the trace (W3C Trace Context §3.2).

use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;

use bytes::Bytes;

use http::{HeaderName, HeaderValue};

use crate::protocol::http::RequestHead;

/// `X-Request-Id`.
pub static X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");
/// `traceparent`.
pub static TRACEPARENT: HeaderName = HeaderName::from_static("traceparent");

/// The longest client request id kept.
const MAX_ID: usize = 128;

/// The splitmix64 sequence position, shared by every thread: one relaxed addition per number,
/// where a per-thread generator costs a thread-local lookup (a `__tls_get_addr` call in a cdylib)
/// on each use. Distinct positions give distinct numbers (the mix is a bijection).
static SEQUENCE: AtomicU64 = AtomicU64::new(0);
/// Where the sequence starts in this process: from the standard library's random hash keys.
static SEED: OnceLock<u64> = OnceLock::new();

/// 64 random-looking bits: ids must not repeat, not be secret.
fn random_u64() -> u64 {
    let seed = *SEED.get_or_init(|| std::collections::hash_map::RandomState::new().build_hasher().finish());
    let mut z = seed.wrapping_add(SEQUENCE.fetch_add(0x9e37_79b9_7f4a_7c15, Ordering::Relaxed));
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Appends `n` as 16 lowercase hex digits (by hand: `format!` costs several times more, once per
/// request).
fn push_hex(out: &mut Vec<u8>, n: u64) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut digits = [0u8; 16];
    for (i, d) in digits.iter_mut().enumerate() {
        *d = DIGITS[(n >> (60 - 4 * i)) as usize & 0xf];
    }
    out.extend_from_slice(&digits);
}

/// The value, in the vector's own allocation (no copy).
fn header_value(b: Vec<u8>) -> HeaderValue {
    HeaderValue::from_maybe_shared(Bytes::from(b)).expect("hex and dashes are a valid header value")
}

/// A client's id is kept when it is 1 to 128 visible ASCII characters of a safe set, so it can
/// go in a log line or a header as it is.
fn valid_id(b: &[u8]) -> bool {
    !b.is_empty()
        && b.len() <= MAX_ID
        && b.iter().all(|c| c.is_ascii_alphanumeric() || b"-_.:+/=@".contains(c))
}

/// The trace id and flags of a valid version-00 `traceparent`
/// (`00-<32 hex trace id>-<16 hex parent id>-<2 hex flags>`, ids not all zero).
fn parse_traceparent(v: &[u8]) -> Option<(&str, &str)> {
    let s = std::str::from_utf8(v).ok()?;
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

/// Gives `req` its request id and the `traceparent` it goes upstream with; returns the id. Reads
/// and edits the head in its borrowed form (`Headers::value` / `insert`), never as a map.
pub(crate) fn assign(req: &mut RequestHead) -> HeaderValue {
    // Both fields at most (names and values: 12 + 128 and 11 + 55 bytes) in one growth.
    req.headers.reserve(2, 206);
    let id = match req.headers.value(&X_REQUEST_ID) {
        Some(v) if valid_id(v) => header_value(v.to_vec()),
        _ => {
            let mut b = Vec::with_capacity(32);
            push_hex(&mut b, random_u64());
            push_hex(&mut b, random_u64());
            let v = header_value(b);
            req.headers.insert(X_REQUEST_ID.clone(), v.clone());
            v
        }
    };
    let mut tp = Vec::with_capacity(55);
    tp.extend_from_slice(b"00-");
    match req.headers.value(&TRACEPARENT).and_then(parse_traceparent) {
        Some((trace, flags)) => {
            tp.extend_from_slice(trace.as_bytes());
            tp.push(b'-');
            push_hex(&mut tp, random_u64() | 1);
            tp.push(b'-');
            tp.extend_from_slice(flags.as_bytes());
        }
        None => {
            push_hex(&mut tp, random_u64());
            push_hex(&mut tp, random_u64() | 1);
            tp.push(b'-');
            push_hex(&mut tp, random_u64() | 1);
            tp.extend_from_slice(b"-00");
        }
    }
    req.headers.insert(TRACEPARENT.clone(), header_value(tp));
    id
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head(headers: &[(&str, &str)]) -> RequestHead {
        RequestHead {
            method: http::Method::GET,
            uri: http::Uri::from_static("/"),
            version: http::Version::HTTP_11,
            headers: crate::protocol::http::fields::wire(headers),
        }
    }

    #[test]
    fn keeps_valid_ids_and_the_trace() {
        let mut r = head(&[
            ("x-request-id", "abc-123"),
            ("traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"),
        ]);
        assert_eq!(assign(&mut r), "abc-123");
        let tp = String::from_utf8(r.headers.value(&TRACEPARENT).unwrap().to_vec()).unwrap();
        assert!(tp.starts_with("00-4bf92f3577b34da6a3ce929d0e0e4736-") && tp.ends_with("-01"), "{tp}");
        assert!(!tp.contains("00f067aa0ba902b7"), "a child span: {tp}");
    }

    #[test]
    fn replaces_bad_ids_and_starts_traces() {
        let mut r = head(&[("x-request-id", "bad id\"x"), ("traceparent", "00-0000-zz")]);
        let id = assign(&mut r);
        assert_eq!(id.len(), 32);
        assert_eq!(r.headers.value(&X_REQUEST_ID).unwrap(), id.as_bytes());
        let tp = r.headers.value(&TRACEPARENT).unwrap();
        assert!(parse_traceparent(tp).is_some(), "{tp:?}");
        let mut r2 = head(&[]);
        assert_ne!(assign(&mut r2), id);
    }
}
