//! Which protocol upgrades (RFC 9110 §7.8) the proxy forwards. After a 101 the proxy copies bytes
//! blindly, so every request the client sends through an upgraded connection escapes the phase
//! hooks: an upgrade is forwarded only for protocols the host allowed (WebSocket by default).
//!
//! `h2c` and `h2` are never forwarded, whatever the policy: an origin that takes `Upgrade: h2c`
//! turns the connection into HTTP/2 with any number of streams, none of which `request_filter`
//! sees (RFC 9113 also removed the h2c upgrade). `HTTP2-Settings` belongs to that upgrade alone
//! and is always removed.

use std::fmt;

use http::header::{HeaderName, CONNECTION, UPGRADE};
use http::HeaderValue;

use crate::protocol::http::names::is_tchar;
use crate::protocol::http::{list_elements, Headers, Known};

/// The request field carrying an h2c upgrade's SETTINGS (RFC 7540 §3.2.1); never forwarded.
pub const HTTP2_SETTINGS: &str = "http2-settings";

/// Protocol names that are never forwarded, even when allowed (case-insensitive, any version).
const NEVER: [&str; 2] = ["h2c", "h2"];

/// The `Upgrade` protocols a service forwards. An entry without a version (`foo`) allows every
/// version of that protocol (`foo`, `foo/1`); an entry with one (`foo/1`) allows exactly it.
/// Names compare case-insensitively. The default allows `websocket` only.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpgradePolicy {
    /// Lowercased entries.
    allowed: Vec<Box<str>>,
}

impl Default for UpgradePolicy {
    fn default() -> Self {
        UpgradePolicy { allowed: vec!["websocket".into()] }
    }
}

/// Why [`UpgradePolicy::allow`] refused a protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RefusedProtocol(pub &'static str);

impl fmt::Display for RefusedProtocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}

impl std::error::Error for RefusedProtocol {}

/// `protocol-name ["/" protocol-version]`, split; `None` unless both parts are tokens.
fn split_protocol(p: &[u8]) -> Option<(&[u8], Option<&[u8]>)> {
    let (name, version) = match p.iter().position(|&b| b == b'/') {
        Some(i) => (&p[..i], Some(&p[i + 1..])),
        None => (p, None),
    };
    let token = |t: &[u8]| !t.is_empty() && t.iter().all(|&b| is_tchar(b));
    (token(name) && version.is_none_or(token)).then_some((name, version))
}

fn never(name: &[u8]) -> bool {
    NEVER.iter().any(|n| name.eq_ignore_ascii_case(n.as_bytes()))
}

impl UpgradePolicy {
    /// A policy that forwards no upgrade at all.
    pub fn none() -> Self {
        UpgradePolicy { allowed: Vec::new() }
    }

    /// Allows `protocol` (`name` or `name/version`). Refused: anything that is not a protocol
    /// token, and `h2c` / `h2` (never forwarded, see the module notes).
    pub fn allow(&mut self, protocol: &str) -> Result<(), RefusedProtocol> {
        let Some((name, _)) = split_protocol(protocol.as_bytes()) else {
            return Err(RefusedProtocol("not an upgrade protocol: expected a token, or token/token"));
        };
        if never(name) {
            return Err(RefusedProtocol("h2c and h2 upgrades are never forwarded"));
        }
        let entry = protocol.to_ascii_lowercase();
        if !self.allowed.iter().any(|a| **a == *entry) {
            self.allowed.push(entry.into());
        }
        Ok(())
    }

    /// Removes `protocol` exactly as it was allowed (`deny("websocket")` turns WebSocket off).
    /// Returns whether it was allowed.
    pub fn deny(&mut self, protocol: &str) -> bool {
        let before = self.allowed.len();
        self.allowed.retain(|a| !a.eq_ignore_ascii_case(protocol));
        self.allowed.len() != before
    }

    /// The allowed entries, lowercased, in the order they were allowed.
    pub fn allowed(&self) -> impl Iterator<Item = &str> {
        self.allowed.iter().map(|a| &**a)
    }

    /// Whether one offered protocol (an element of an `Upgrade` field) may be forwarded.
    pub fn allows(&self, offered: &[u8]) -> bool {
        let Some((name, version)) = split_protocol(offered) else { return false };
        if never(name) {
            return false;
        }
        self.allowed.iter().any(|a| match split_protocol(a.as_bytes()) {
            Some((n, None)) => n.eq_ignore_ascii_case(name),
            Some((n, Some(v))) => {
                n.eq_ignore_ascii_case(name) && version.is_some_and(|o| o.eq_ignore_ascii_case(v))
            }
            None => false,
        })
    }
}

fn elements<'h>(headers: &'h Headers, name: &'h Known) -> impl Iterator<Item = &'h [u8]> {
    list_elements(headers, name).filter(|e| !e.is_empty())
}

/// Rewrites the `Connection` field without `upgrade` and `http2-settings` (dropped when nothing
/// is left).
fn drop_upgrade_option(headers: &mut Headers) {
    let kept: Vec<&[u8]> = elements(headers, &Known::Connection)
        .filter(|t| !t.eq_ignore_ascii_case(b"upgrade") && !t.eq_ignore_ascii_case(HTTP2_SETTINGS.as_bytes()))
        .collect();
    let value = (!kept.is_empty()).then(|| HeaderValue::from_bytes(&kept.join(&b", "[..])));
    match value {
        Some(Ok(v)) => {
            headers.insert(CONNECTION, v);
        }
        _ => {
            headers.remove(Known::Connection);
        }
    }
}

/// Cuts a request's upgrade offer down to what `policy` allows, in place: `HTTP2-Settings` goes,
/// `Upgrade` keeps only allowed protocols (in the client's order), and when none is left (or
/// `may_upgrade` is false: not HTTP/1.1 on both sides) `Upgrade` goes and `upgrade` leaves
/// `Connection`, so the request is forwarded as a plain one. Returns whether an upgrade offer
/// remains: `Connection: upgrade` and at least one allowed protocol.
///
/// One pass over the field names decides whether there is anything to do: most requests carry
/// neither field.
pub fn restrict_upgrade(headers: &mut Headers, may_upgrade: bool, policy: &UpgradePolicy) -> bool {
    let upgrade = headers.has_known(Known::Upgrade);
    let connection = headers.has_known(Known::Connection);
    if headers.has_known(Known::Http2Settings) {
        headers.remove(HeaderName::from_static(HTTP2_SETTINGS));
    }
    let asked =
        connection && elements(headers, &Known::Connection).any(|t| t.eq_ignore_ascii_case(b"upgrade"));
    if !upgrade {
        // An `upgrade` option without a protocol (a hook removed `Upgrade`) asks for nothing.
        if asked {
            drop_upgrade_option(headers);
        }
        return false;
    }
    let kept: Vec<&[u8]> = if may_upgrade && asked {
        elements(headers, &Known::Upgrade).filter(|p| policy.allows(p)).collect()
    } else {
        Vec::new()
    };
    let all = elements(headers, &Known::Upgrade).count();
    match HeaderValue::from_bytes(&kept.join(&b", "[..])) {
        Ok(v) if !kept.is_empty() => {
            if kept.len() != all || headers.values(&Known::Upgrade).count() != 1 {
                headers.insert(UPGRADE, v);
            }
            true
        }
        _ => {
            headers.remove(Known::Upgrade);
            drop_upgrade_option(headers);
            false
        }
    }
}

/// Whether a 101's `Upgrade` names only protocols of the forwarded `offer` (by name; the version
/// the origin picks is its business) that `policy` allows. A 101 without `Upgrade` answers
/// nothing (RFC 9110 §15.2.2: the server must name the protocol it switches to).
pub fn answers_offer(response: &Headers, offer: &HeaderValue, policy: &UpgradePolicy) -> bool {
    let name = |p: &[u8]| split_protocol(p).map(|(n, _)| n.to_ascii_lowercase());
    let offered: Vec<Vec<u8>> =
        offer.as_bytes().split(|&b| b == b',').filter_map(|p| name(p.trim_ascii())).collect();
    let mut any = false;
    for p in elements(response, &Known::Upgrade) {
        any = true;
        if !policy.allows(p) || !name(p).is_some_and(|n| offered.contains(&n)) {
            return false;
        }
    }
    any
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Borrowed, as a parsed head is: the table exercises the index, not a map.
    fn headers(fields: &[(&str, &str)]) -> Headers {
        crate::protocol::http::fields::wire(fields)
    }

    #[test]
    fn restrict_table() {
        let mut foo = UpgradePolicy::default();
        foo.allow("foo").unwrap();
        // (fields, policy, may_upgrade, remains, Upgrade after, Connection after)
        type Case<'a> =
            (&'a [(&'a str, &'a str)], &'a UpgradePolicy, bool, bool, Option<&'a str>, Option<&'a str>);
        let cases: &[Case] = &[
            (
                &[("connection", "Upgrade"), ("upgrade", "websocket")],
                &UpgradePolicy::default(),
                true,
                true,
                Some("websocket"),
                Some("Upgrade"),
            ),
            (
                &[("connection", "Upgrade"), ("upgrade", "websocket, h2c")],
                &UpgradePolicy::default(),
                true,
                true,
                Some("websocket"),
                Some("Upgrade"),
            ),
            (
                &[("connection", "Upgrade"), ("upgrade", "h2c"), ("upgrade", "websocket")],
                &UpgradePolicy::default(),
                true,
                true,
                Some("websocket"),
                Some("Upgrade"),
            ),
            (
                &[
                    ("connection", "keep-alive, Upgrade, HTTP2-Settings"),
                    ("upgrade", "h2c"),
                    ("http2-settings", "AA"),
                ],
                &UpgradePolicy::default(),
                true,
                false,
                None,
                Some("keep-alive"),
            ),
            (
                &[("connection", "Upgrade"), ("upgrade", "foo/1")],
                &UpgradePolicy::default(),
                true,
                false,
                None,
                None,
            ),
            (
                &[("connection", "Upgrade"), ("upgrade", "foo/1")],
                &foo,
                true,
                true,
                Some("foo/1"),
                Some("Upgrade"),
            ),
            (
                &[("connection", "Upgrade"), ("upgrade", "websocket")],
                &UpgradePolicy::default(),
                false,
                false,
                None,
                None,
            ),
            (&[("upgrade", "websocket")], &UpgradePolicy::default(), true, false, None, None),
            (
                &[("connection", "close"), ("http2-settings", "AA")],
                &UpgradePolicy::default(),
                true,
                false,
                None,
                Some("close"),
            ),
            (
                &[("connection", "Upgrade"), ("upgrade", "web socket")],
                &UpgradePolicy::default(),
                true,
                false,
                None,
                None,
            ),
            (
                &[("connection", "keep-alive, upgrade")],
                &UpgradePolicy::default(),
                true,
                false,
                None,
                Some("keep-alive"),
            ),
        ];
        for (i, (fields, policy, may, remains, up, conn)) in cases.iter().enumerate() {
            let mut h = headers(fields);
            assert_eq!(restrict_upgrade(&mut h, *may, policy), *remains, "case {i}");
            let get = |n| h.get(n).map(|v: &HeaderValue| v.to_str().unwrap().to_string());
            assert_eq!(get(UPGRADE).as_deref(), *up, "case {i}");
            assert_eq!(get(CONNECTION).as_deref(), *conn, "case {i}");
            assert!(!h.contains_key(HTTP2_SETTINGS), "case {i}");
        }
    }

    #[test]
    fn answers_offer_table() {
        let p = UpgradePolicy::default();
        let offer = HeaderValue::from_static("websocket");
        assert!(answers_offer(&headers(&[("upgrade", "WebSocket")]), &offer, &p));
        assert!(!answers_offer(&headers(&[("upgrade", "h2c")]), &offer, &p));
        assert!(!answers_offer(&headers(&[]), &offer, &p));
        assert!(!answers_offer(&headers(&[("upgrade", "websocket, h2c")]), &offer, &p));
        let mut foo = UpgradePolicy::none();
        foo.allow("foo").unwrap();
        assert!(answers_offer(&headers(&[("upgrade", "foo/2")]), &HeaderValue::from_static("foo/1"), &foo));
        assert!(!answers_offer(&headers(&[("upgrade", "bar")]), &HeaderValue::from_static("foo/1"), &foo));
    }
}
