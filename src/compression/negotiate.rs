//! Choosing a coding from `Accept-Encoding` (RFC 9110 §12.5.3): q-values, `q=0` as a refusal,
//! `*` for any coding not named, and the server's preference among equals.

use http::header::ACCEPT_ENCODING;

use super::{Algorithm, Algorithms};
use crate::protocol::http::{list_elements, Headers};

/// The coding to send, among `offered`, for a request with these headers; `None` for identity
/// (no `Accept-Encoding`, nothing offered acceptable, or identity preferred to all of them).
pub fn negotiate(req: &Headers, offered: Algorithms) -> Option<Algorithm> {
    // q in thousandths; None: not mentioned.
    let mut named: [Option<u16>; 3] = [None; 3];
    let mut star = None;
    let mut identity = None;
    let mut any = false;
    for element in list_elements(req, &ACCEPT_ENCODING) {
        any = true;
        let mut parts = element.split(|&b| b == b';');
        let coding = parts.next().unwrap_or_default().trim_ascii();
        let mut q = 1000;
        for p in parts {
            let Some((k, v)) = split_param(p) else { continue };
            if k.eq_ignore_ascii_case(b"q") {
                // An unreadable weight refuses rather than accepts: a typo must not turn a
                // client's `q=0` into a coding it cannot read.
                q = parse_q(v).unwrap_or(0);
            }
        }
        if coding == b"*" {
            star = Some(q);
        } else if coding.eq_ignore_ascii_case(b"identity") {
            identity = Some(q);
        } else if let Some(a) = Algorithm::from_token(coding) {
            // The highest weight wins when a coding is listed twice (`gzip;q=0, x-gzip`).
            let slot = &mut named[a.index()];
            *slot = Some(slot.map_or(q, |old| old.max(q)));
        }
    }
    if !any {
        return None;
    }
    let mut best: Option<(Algorithm, u16)> = None;
    for a in Algorithm::ALL {
        if !offered.contains(a) {
            continue;
        }
        let q = named[a.index()].or(star).unwrap_or(0);
        if q > 0 && best.is_none_or(|(_, b)| q > b) {
            best = Some((a, q));
        }
    }
    // Identity is always acceptable (RFC 9110 §12.5.3) but the last choice, unless the client
    // weights it above every offered coding.
    match (best, identity) {
        (Some((_, q)), Some(iq)) if iq > q => None,
        _ => best.map(|(a, _)| a),
    }
}

fn split_param(p: &[u8]) -> Option<(&[u8], &[u8])> {
    let eq = p.iter().position(|&b| b == b'=')?;
    Some((p[..eq].trim_ascii(), p[eq + 1..].trim_ascii()))
}

/// A qvalue (`0`, `0.5`, `1.000`) in thousandths; `None` when malformed.
fn parse_q(v: &[u8]) -> Option<u16> {
    let (int, frac) = match v.iter().position(|&b| b == b'.') {
        Some(i) => (&v[..i], &v[i + 1..]),
        None => (v, &b""[..]),
    };
    if frac.len() > 3 || !frac.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let mut thousandths = 0u16;
    for i in 0..3 {
        thousandths = thousandths * 10 + frac.get(i).map_or(0, |d| u16::from(d - b'0'));
    }
    match int {
        b"0" => Some(thousandths),
        b"1" if thousandths == 0 => Some(1000),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::http::fields::wire;

    fn pick(ae: &str) -> Option<&'static str> {
        negotiate(&wire(&[("accept-encoding", ae)]), Algorithms::ALL).map(Algorithm::token)
    }

    #[test]
    fn weights_and_refusals() {
        assert_eq!(pick("gzip"), Some("gzip"));
        assert_eq!(pick("gzip, br"), Some("br"));
        assert_eq!(pick("gzip, deflate, br, zstd"), Some("zstd"));
        assert_eq!(pick("gzip;q=1.0, br;q=0.5"), Some("gzip"));
        assert_eq!(pick("br;q=0, gzip;q=0.1"), Some("gzip"));
        assert_eq!(pick("gzip;q=0"), None);
        assert_eq!(pick("GZIP ; Q=0.001"), Some("gzip"));
        assert_eq!(pick("deflate"), None);
        assert_eq!(pick("identity"), None);
        assert_eq!(pick("*"), Some("zstd"));
        assert_eq!(pick("*;q=0, gzip"), Some("gzip"));
        assert_eq!(pick("*;q=0.5, zstd;q=0"), Some("br"));
        assert_eq!(pick("gzip;q=0.5, identity;q=1"), None);
        assert_eq!(pick("gzip;q=0.5, identity;q=0"), Some("gzip"));
        assert_eq!(pick("gzip;q=2"), None);
        assert_eq!(pick("gzip;q=0.0001"), None);
        assert_eq!(pick("x-gzip"), Some("gzip"));
        assert_eq!(pick(""), None);
    }

    #[test]
    fn only_offered_codings() {
        let h = wire(&[("accept-encoding", "br, zstd")]);
        assert_eq!(negotiate(&h, Algorithms::NONE.with(Algorithm::Gzip)), None);
        assert_eq!(negotiate(&h, Algorithms::NONE.with(Algorithm::Brotli)), Some(Algorithm::Brotli));
        assert_eq!(negotiate(&Headers::new(), Algorithms::ALL), None);
    }
}
