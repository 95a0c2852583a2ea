//! A request head from the fields of a decoded header block (RFC 9113 §8.3): pseudo-header rules,
//! connection-specific fields, and the checks h2 made before, done once per field as the HPACK
//! decoder hands it over. Regular fields go straight into the borrowed form an HTTP/1 upstream
//! gets as one copy; no `HeaderMap` is built.

use bytes::{Bytes, BytesMut};
use http::header::{HeaderName, HeaderValue, HOST};
use http::uri::{Authority, PathAndQuery, Scheme};
use http::{HeaderMap, Method, Uri, Version};

use crate::protocol::http::host::valid_host_value;
use crate::protocol::http::length::content_length;
use crate::protocol::http::names::is_tchar;
use crate::protocol::http::{HeadError, Known, RequestHead, WireBuilder};

/// Why a block is not a request the proxy serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// Malformed (§8.1.1): a stream error of type PROTOCOL_ERROR, as h2 answered.
    Malformed(&'static str),
    /// Larger than SETTINGS_MAX_HEADER_LIST_SIZE: answered 431 (RFC 6585 §5, RFC 9113 §10.5.1).
    TooLarge,
    /// Well-formed HTTP/2 but not a request the proxy forwards: an error page with this status.
    Bad(HeadError),
}

// Both checks fold over every byte rather than stop at the first bad one: without the branch
// per byte the compiler vectorises them, and a bad byte is rare.
/// A field name HTTP/2 may carry: tokens (RFC 9110 §5.6.2) without uppercase letters (§8.2.1).
fn valid_name(name: &[u8]) -> bool {
    !name.is_empty() && name.iter().fold(true, |ok, &b| ok & is_tchar(b) & !b.is_ascii_uppercase())
}

/// A field value HTTP/2 may carry (§8.2.1): no NUL, CR or LF; and, as `HeaderValue` requires,
/// no other control byte but HTAB.
fn valid_value(v: &[u8]) -> bool {
    !v.iter().fold(false, |bad, &b| bad | ((b < 0x20 && b != b'\t') || b == 0x7f))
}

/// Connection-specific fields (§8.2.2), and TE other than `trailers`.
fn connection_specific(known: Known, value: &[u8]) -> bool {
    !crate::protocol::h2::h2_field(known, value)
}

fn refused<E>(why: &'static str) -> impl FnOnce(E) -> Refusal {
    move |_| Refusal::Malformed(why)
}

/// Collects a request's fields as the decoder emits them.
pub struct Intake {
    method: Option<Method>,
    scheme: Option<Bytes>,
    authority: Option<Bytes>,
    path: Option<Bytes>,
    /// Pseudo-header values, copied once into one buffer (they are a few dozen bytes).
    pseudo: BytesMut,
    regular: bool,
    fields: WireBuilder,
    /// The first Host field's index.
    host: Option<usize>,
    hosts: u32,
    size: usize,
    limit: usize,
    refusal: Option<Refusal>,
}

impl Intake {
    /// For a block of about `block_len` bytes, refusing more than `limit` decoded bytes
    /// (counted as §6.5.2 does: name + value + 32 per field).
    pub fn new(block_len: usize, limit: usize) -> Intake {
        Intake {
            method: None,
            scheme: None,
            authority: None,
            path: None,
            pseudo: BytesMut::new(),
            regular: false,
            // Decoded fields take about twice their packed size (indexed ones more).
            fields: WireBuilder::with_capacity(block_len * 2 + 64, 16),
            host: None,
            hosts: 0,
            size: 0,
            limit,
            refusal: None,
        }
    }

    fn refuse(&mut self, r: Refusal) -> Result<(), ()> {
        self.refusal.get_or_insert(r);
        Err(())
    }

    /// One field; `Err` once the block is refused (the decoder then only keeps its table): the
    /// unit error is the HPACK decoder's stop signal, the refusal itself is kept for [`Self::finish`].
    #[allow(clippy::result_unit_err)]
    pub fn field(&mut self, name: &[u8], value: &[u8]) -> Result<(), ()> {
        self.size += name.len() + value.len() + 32;
        if self.size > self.limit {
            return self.refuse(Refusal::TooLarge);
        }
        if !valid_value(value) {
            return self.refuse(Refusal::Malformed("invalid field value"));
        }
        if let Some(pseudo) = name.strip_prefix(b":") {
            if self.regular {
                return self.refuse(Refusal::Malformed("pseudo-header after a regular field"));
            }
            return self.pseudo(pseudo, value);
        }
        self.regular = true;
        if !valid_name(name) {
            return self.refuse(Refusal::Malformed("invalid field name"));
        }
        let known = Known::classify(name);
        if connection_specific(known, value) {
            return self.refuse(Refusal::Malformed("connection-specific field"));
        }
        if value.first().is_some_and(|b| *b == b' ' || *b == b'\t') {
            return self.refuse(Refusal::Bad(HeadError::new(400, "field value with leading whitespace")));
        }
        if value.last().is_some_and(|b| *b == b' ' || *b == b'\t') {
            return self.refuse(Refusal::Bad(HeadError::new(400, "field value with trailing whitespace")));
        }
        if known == Known::Host {
            self.hosts += 1;
            if self.host.is_none() {
                self.host = Some(self.fields.len());
            }
        }
        self.fields.push_bytes(name, known, value);
        Ok(())
    }

    fn pseudo(&mut self, name: &[u8], value: &[u8]) -> Result<(), ()> {
        let slot = match name {
            b"method" => {
                if self.method.is_some() {
                    return self.refuse(Refusal::Malformed("repeated :method"));
                }
                match Method::from_bytes(value) {
                    Ok(m) => self.method = Some(m),
                    Err(_) => return self.refuse(Refusal::Malformed("invalid :method")),
                }
                return Ok(());
            }
            b"scheme" => &mut self.scheme,
            b"authority" => &mut self.authority,
            b"path" => &mut self.path,
            _ => return self.refuse(Refusal::Malformed("unknown pseudo-header")),
        };
        if slot.is_some() {
            self.refusal.get_or_insert(Refusal::Malformed("repeated pseudo-header"));
            return Err(());
        }
        self.pseudo.extend_from_slice(value);
        *slot = Some(self.pseudo.split().freeze());
        Ok(())
    }

    /// Whether the request is a HEAD (its refusal then has no body).
    pub fn is_head(&self) -> bool {
        self.method == Some(Method::HEAD)
    }

    /// The request, once the whole block was decoded.
    pub fn finish(self) -> Result<RequestHead, Refusal> {
        if let Some(r) = self.refusal {
            return Err(r);
        }
        let malformed = |why| Err(Refusal::Malformed(why));
        let bad = |why| Err(Refusal::Bad(HeadError::new(400, why)));
        let Some(method) = self.method else { return malformed("no :method") };
        let connect = method == Method::CONNECT;
        // §8.5: CONNECT names only an authority; every other request a scheme and a path.
        if connect {
            if self.scheme.is_some() || self.path.is_some() || self.authority.is_none() {
                return malformed("CONNECT with :scheme or :path, or without :authority");
            }
        } else if self.scheme.is_none() || self.path.as_ref().is_none_or(|p| p.is_empty()) {
            return malformed("no :scheme or :path");
        }
        if self.hosts > 1 {
            return bad("repeated Host");
        }
        let mut fields = self.fields;
        let mut parts = http::uri::Parts::default();
        // The HTTP/1 upstream reads Host as its routing key: it must be the valid `host[:port]`
        // an HTTP/1 client would have had to send. Neither field is allowed (§8.3.1: no
        // authority to convey), as for HTTP/1.0 without Host: the upstream request gets the peer's.
        let add_host = match (&self.authority, self.host.map(|i| fields.value_at(i))) {
            (Some(a), Some(h)) if !a.eq_ignore_ascii_case(h) => return bad("Host differs from :authority"),
            (Some(a), None) if !valid_host_value(a) => return bad("invalid :authority"),
            (Some(_), None) => true,
            (_, Some(h)) if !valid_host_value(h) => return bad("invalid Host"),
            _ => false,
        };
        if let (true, Some(a)) = (add_host, &self.authority) {
            fields.push_bytes(HOST.as_str().as_bytes(), Known::Host, a);
        }
        if let Some(a) = self.authority {
            parts.authority = Some(Authority::from_maybe_shared(a).map_err(refused("invalid :authority"))?);
            parts.scheme = match self.scheme.as_deref() {
                Some(b"http") => Some(Scheme::HTTP),
                Some(b"https") => Some(Scheme::HTTPS),
                Some(s) => Some(Scheme::try_from(s).map_err(refused("invalid :scheme"))?),
                None => None,
            };
        }
        if let Some(p) = self.path {
            // The `http` crate lets bytes past ASCII into a path; an HTTP/1 request-target may
            // not carry them (RFC 9112 §3.2), so forwarding one would hand the upstream a line it
            // must refuse.
            if !p.iter().all(u8::is_ascii_graphic) {
                return bad("invalid :path");
            }
            parts.path_and_query =
                Some(PathAndQuery::from_maybe_shared(p).map_err(refused("invalid :path"))?);
        }
        let uri = Uri::from_parts(parts).map_err(refused("invalid request target"))?;
        let mut headers = fields.finish();
        // Checked above: the upstream request need not check it again unless a hook edits it.
        headers.mark_checked(Known::Host);
        if headers.has_known(Known::ContentLength) && content_length(&headers).is_err() {
            return malformed("invalid content-length");
        }
        Ok(RequestHead { method, uri, version: Version::HTTP_2, headers })
    }
}

/// Collects trailers (a map: they are rare, and the phases read them as one).
pub struct Trailers {
    map: HeaderMap,
    size: usize,
    limit: usize,
    refusal: Option<Refusal>,
}

impl Trailers {
    pub fn new(limit: usize) -> Trailers {
        Trailers { map: HeaderMap::new(), size: 0, limit, refusal: None }
    }

    #[allow(clippy::result_unit_err)]
    pub fn field(&mut self, name: &[u8], value: &[u8]) -> Result<(), ()> {
        self.size += name.len() + value.len() + 32;
        let refusal = if self.size > self.limit {
            Refusal::TooLarge
        } else if name.first() == Some(&b':') {
            Refusal::Malformed("pseudo-header in trailers")
        } else if !valid_name(name) || connection_specific(Known::classify(name), value) {
            Refusal::Malformed("invalid trailer field")
        } else {
            match (HeaderName::from_bytes(name), HeaderValue::from_bytes(value)) {
                (Ok(n), Ok(v)) => {
                    self.map.append(n, v);
                    return Ok(());
                }
                _ => Refusal::Malformed("invalid trailer field"),
            }
        };
        self.refusal.get_or_insert(refusal);
        Err(())
    }

    pub fn finish(self) -> Result<HeaderMap, Refusal> {
        match self.refusal {
            Some(r) => Err(r),
            None => Ok(self.map),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(fields: &[(&str, &str)]) -> Result<RequestHead, Refusal> {
        let mut intake = Intake::new(64, 16 * 1024);
        for (n, v) in fields {
            if intake.field(n.as_bytes(), v.as_bytes()).is_err() {
                break;
            }
        }
        intake.finish()
    }

    const GET: [(&str, &str); 3] = [(":method", "GET"), (":scheme", "https"), (":path", "/x?y")];

    fn with(extra: &[(&'static str, &'static str)]) -> Vec<(&'static str, &'static str)> {
        let mut v = GET.to_vec();
        v.extend_from_slice(extra);
        v
    }

    #[test]
    fn authority_becomes_host_last_and_must_agree() {
        let h = request(&with(&[(":authority", "a.example"), ("x-a", "1"), ("x-a", "2")])).unwrap();
        assert_eq!(h.uri, "https://a.example/x?y");
        assert_eq!(h.version, Version::HTTP_2);
        assert!(h.headers.is_borrowed());
        let mut out = BytesMut::new();
        h.headers.encode(&mut out);
        assert_eq!(&out[..], b"x-a: 1\r\nx-a: 2\r\nhost: a.example\r\n");
        let differs = request(&with(&[(":authority", "a.example"), ("host", "b.example")]));
        assert!(matches!(differs, Err(Refusal::Bad(HeadError { status: 400, .. }))));
        assert!(request(&with(&[(":authority", "a.example"), ("host", "A.example")])).is_ok());
        let h = request(&with(&[("host", "a.example")])).unwrap();
        assert_eq!(h.headers[HOST], "a.example");
        assert_eq!(h.uri, "/x?y");
        assert!(!request(&GET).unwrap().headers.contains_key(HOST));
    }

    /// Each row: the fields, and the refusal expected (h2spec §8.1.2 and the proxy's own rules).
    #[test]
    fn refusals_table() {
        use Refusal::*;
        let m = |s| Malformed(s);
        let b = |s| Bad(HeadError::new(400, s));
        let rows: Vec<(Vec<(&str, &str)>, Refusal)> = vec![
            (with(&[("X-Up", "1")]), m("invalid field name")),
            (with(&[(":unknown", "1")]), m("unknown pseudo-header")),
            (with(&[(":status", "200")]), m("unknown pseudo-header")),
            (with(&[(":method", "GET")]), m("repeated :method")),
            (with(&[(":path", "/")]), m("repeated pseudo-header")),
            (with(&[("x", "1"), (":authority", "a")]), m("pseudo-header after a regular field")),
            (with(&[("connection", "keep-alive")]), m("connection-specific field")),
            (with(&[("transfer-encoding", "chunked")]), m("connection-specific field")),
            (with(&[("te", "gzip")]), m("connection-specific field")),
            (with(&[("x", "a\nb")]), m("invalid field value")),
            (with(&[("x", "a\0b")]), m("invalid field value")),
            (with(&[("content-length", "1x")]), m("invalid content-length")),
            (vec![(":method", "GET"), (":path", "/")], m("no :scheme or :path")),
            (vec![(":method", "GET"), (":scheme", "http"), (":path", "")], m("no :scheme or :path")),
            (vec![(":scheme", "http"), (":path", "/")], m("no :method")),
            (
                vec![(":method", "CONNECT"), (":authority", "a:1"), (":path", "/")],
                m("CONNECT with :scheme or :path, or without :authority"),
            ),
            (with(&[("x", " padded")]), b("field value with leading whitespace")),
            (with(&[("x", "padded\t")]), b("field value with trailing whitespace")),
            (with(&[("host", "a"), ("host", "a")]), b("repeated Host")),
            (with(&[(":authority", "u@a.example")]), b("invalid :authority")),
            (with(&[("host", "a b")]), b("invalid Host")),
            (vec![(":method", "GET"), (":scheme", "https"), (":path", "/keep\u{4d9}l")], b("invalid :path")),
        ];
        for (fields, want) in rows {
            assert_eq!(request(&fields).map(|_| ()), Err(want), "{fields:?}");
        }
        assert!(request(&with(&[("te", "trailers"), ("x", "\u{e9}")])).is_ok());
        let connect = request(&[(":method", "CONNECT"), (":authority", "a.example:443")]).unwrap();
        assert_eq!(connect.uri.authority().unwrap(), "a.example:443");
    }

    #[test]
    fn header_list_limit_counts_32_per_field() {
        let mut intake = Intake::new(64, 3 * 33 + 40);
        for (n, v) in GET {
            intake.field(n.as_bytes(), v.as_bytes()).unwrap();
        }
        assert!(intake.field(b"x-long", &[b'a'; 64]).is_err());
        assert_eq!(intake.finish().map(|_| ()), Err(Refusal::TooLarge));
    }

    #[test]
    fn trailers_refuse_pseudo_headers() {
        let mut t = Trailers::new(1024);
        t.field(b"grpc-status", b"0").unwrap();
        assert_eq!(t.finish().unwrap()["grpc-status"], "0");
        let mut t = Trailers::new(1024);
        assert!(t.field(b":path", b"/").is_err());
        assert!(t.finish().is_err());
    }
}
