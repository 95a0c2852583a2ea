//! Unit tests of the header block: the field index against the wire, and both forms against each
//! other.

use super::*;
use crate::protocol::h1::parse::{parse_request, Parsed};
use crate::protocol::h1::Limits;

/// The block of a parsed request, as the proxy gets it.
fn parsed(fields: &str) -> Headers {
    let raw = format!("GET / HTTP/1.1\r\nHost: h\r\n{fields}\r\n");
    let limits = Limits { max_headers: 128, ..Limits::default() };
    match parse_request(&mut BytesMut::from(raw.as_bytes()), &limits) {
        Ok(Parsed::Complete(h)) => h.headers,
        other => panic!("{raw:?}: {other:?}"),
    }
}

fn encoded(h: &Headers) -> String {
    let mut out = BytesMut::new();
    h.encode(&mut out);
    assert_eq!(out.len(), h.encoded_len(), "encoded_len is exact");
    String::from_utf8(out.to_vec()).unwrap()
}

fn name(s: &'static str) -> HeaderName {
    HeaderName::from_static(s)
}

#[test]
fn duplicates_keep_their_order_among_other_names() {
    let h = parsed("A: 1\r\nB: x\r\na: 2\r\nA: 3\r\n");
    assert!(h.is_borrowed());
    assert_eq!(h.len(), 5);
    let a: Vec<_> = h.values(&name("a")).collect();
    assert_eq!(a, [&b"1"[..], b"2", b"3"]);
    assert_eq!(encoded(&h), "Host: h\r\nA: 1\r\nB: x\r\na: 2\r\nA: 3\r\n");
    // The map a hook reads holds the same fields, names lowercase, values in order.
    let m = h.map();
    assert_eq!(m.len(), 5);
    let got: Vec<_> = m.get_all("a").iter().map(|v| v.as_bytes()).collect();
    assert_eq!(got, [&b"1"[..], b"2", b"3"]);
    assert!(h.is_borrowed(), "reading a map does not give up the borrowed form");
}

#[test]
fn names_match_in_any_case_and_keep_theirs_on_the_wire() {
    let h = parsed("CoNtEnT-lEnGtH: 0\r\nX-Mixed-Case: v\r\n");
    assert!(h.has_known(Known::ContentLength));
    assert_eq!(h.value(&http::header::CONTENT_LENGTH), Some(&b"0"[..]));
    assert_eq!(h.value(&name("x-mixed-case")), Some(&b"v"[..]));
    assert_eq!(encoded(&h), "Host: h\r\nCoNtEnT-lEnGtH: 0\r\nX-Mixed-Case: v\r\n");
    for (raw, known) in [
        ("HOST", Known::Host),
        ("Transfer-Encoding", Known::TransferEncoding),
        ("tE", Known::Te),
        ("Proxy-Connection", Known::ProxyConnection),
        ("HTTP2-Settings", Known::Http2Settings),
        ("Date", Known::Other),
        ("Server", Known::Other),
        ("hosts", Known::Other),
        ("", Known::Other),
    ] {
        assert_eq!(Known::classify(raw.as_bytes()), known, "{raw}");
    }
    // The two tables agree: a lookup by HeaderName finds what the parser classified.
    for k in [
        Known::Host,
        Known::ContentLength,
        Known::TransferEncoding,
        Known::Connection,
        Known::KeepAlive,
        Known::ProxyConnection,
        Known::Te,
        Known::Upgrade,
        Known::Expect,
        Known::Http2Settings,
        Known::Trailer,
    ] {
        assert_eq!(Known::of(&HeaderName::from_static(k.as_str())), k);
        assert_eq!(k.header_name().map(HeaderName::as_str), Some(k.as_str()));
        assert_eq!(Known::classify(k.as_str().to_uppercase().as_bytes()), k);
    }
}

#[test]
fn obs_text_values_survive_byte_exact() {
    let raw = b"GET / HTTP/1.1\r\nHost: h\r\nX-Latin: caf\xe9 \xff\r\n\r\n";
    let Ok(Parsed::Complete(head)) = parse_request(&mut BytesMut::from(&raw[..]), &Limits::default()) else {
        panic!()
    };
    let h = head.headers;
    assert_eq!(h.value(&name("x-latin")), Some(&b"caf\xe9 \xff"[..]));
    assert_eq!(h.map()["x-latin"].as_bytes(), b"caf\xe9 \xff");
    let mut out = BytesMut::new();
    h.encode(&mut out);
    assert_eq!(&out[..], b"Host: h\r\nX-Latin: caf\xe9 \xff\r\n");
}

#[test]
fn a_hundred_fields() {
    let fields: String = (0..99).map(|i| format!("X-{i}: {i}\r\n")).collect();
    let h = parsed(&fields);
    assert_eq!(h.len(), 100);
    assert_eq!(h.value(&name("x-98")), Some(&b"98"[..]));
    assert_eq!(h.map().len(), 100);
    assert_eq!(encoded(&h), format!("Host: h\r\n{fields}"));
}

#[test]
fn edits_then_reencode_byte_exact() {
    let mut h = parsed("Connection: keep-alive, X-Hop\r\nX-Hop: 1\r\nA: 1\r\nContent-Length: 03\r\nB: 2\r\n");
    assert!(h.remove(name("x-hop")));
    assert!(!h.remove(name("x-hop")), "nothing left to remove");
    assert!(h.remove(&http::header::CONNECTION));
    assert!(!h.has_known(Known::Connection), "presence is exact after a removal");
    h.insert(http::header::CONTENT_LENGTH, HeaderValue::from_static("3"));
    h.append("x-new", HeaderValue::from_static("n"));
    h.insert("a", HeaderValue::from_static("one"));
    assert!(h.is_borrowed());
    assert_eq!(h.len(), 5);
    // In place for replaced values, last for new fields, verbatim runs for the rest.
    let want = "Host: h\r\na: one\r\ncontent-length: 3\r\nB: 2\r\nx-new: n\r\n";
    assert_eq!(encoded(&h).to_lowercase(), want.to_lowercase());
    assert_eq!(encoded(&h), "Host: h\r\nA: one\r\nContent-Length: 3\r\nB: 2\r\nx-new: n\r\n");
    // The map agrees, and editing through it gives the same bytes (names lowercase there).
    let mut m = h.clone();
    m.map_mut().insert("b", HeaderValue::from_static("two"));
    assert!(!m.is_borrowed());
    assert_eq!(encoded(&m), "host: h\r\na: one\r\ncontent-length: 3\r\nb: two\r\nx-new: n\r\n");
    // The clone edited through its map left the original alone.
    assert_eq!(h.value(&name("b")), Some(&b"2"[..]));
}

#[test]
fn a_check_mark_lasts_until_its_field_is_edited() {
    let host = || HeaderValue::from_static("b");
    type Edit = fn(&mut Headers, HeaderValue);
    let edits: [(&str, Edit); 5] = [
        ("insert", |h, v| h.insert(http::header::HOST, v)),
        ("append", |h, v| h.append(http::header::HOST, v)),
        ("remove", |h, _| {
            h.remove(http::header::HOST);
        }),
        ("retain", |h, _| h.retain_names(|n| n != b"host")),
        ("map", |h, _| {
            h.map_mut();
        }),
    ];
    let mut fresh = wire(&[("host", "a")]);
    assert!(!fresh.is_checked(Known::Host), "marked by nobody");
    fresh.mark_checked(Known::Host);
    assert!(fresh.is_checked(Known::Host));
    for (what, edit) in edits {
        let mut h = parsed("X: 1\r\n");
        assert!(h.is_checked(Known::Host), "{what}: the parser marks the Host it checked");
        h.insert("y", HeaderValue::from_static("2"));
        assert!(h.is_checked(Known::Host), "{what}: another field's edit keeps the mark");
        edit(&mut h, host());
        assert!(!h.is_checked(Known::Host), "{what}");
    }
}

#[test]
fn known_lookups_follow_every_edit() {
    // Found first after other fields, then repeated, replaced, removed, added twice, and
    // left alone by a removal of another name: the index of first places follows each edit.
    let mut h = parsed("A: 1\r\nTrailer: x\r\nB: 2\r\ntrailer: y\r\n");
    let trailers = |h: &Headers| h.values(&Known::Trailer).map(<[u8]>::to_vec).collect::<Vec<_>>();
    assert_eq!(trailers(&h), [b"x".to_vec(), b"y".to_vec()]);
    h.insert(http::header::TRAILER, HeaderValue::from_static("z"));
    assert_eq!(trailers(&h), [b"z".to_vec()]);
    h.remove(http::header::TRAILER);
    assert!(trailers(&h).is_empty() && !h.has_known(Known::Trailer));
    h.append(http::header::TRAILER, HeaderValue::from_static("p"));
    h.append(http::header::TRAILER, HeaderValue::from_static("q"));
    h.retain_names(|n| n != b"a");
    assert_eq!(trailers(&h), [b"p".to_vec(), b"q".to_vec()]);
    assert_eq!(encoded(&h), "Host: h\r\nB: 2\r\ntrailer: p\r\ntrailer: q\r\n");
}

#[test]
fn insert_replaces_every_line_of_a_name() {
    let mut h = parsed("X: 1\r\nY: y\r\nX: 2\r\n");
    h.insert("x", HeaderValue::from_static("3"));
    assert_eq!(h.values(&name("x")).collect::<Vec<_>>(), [&b"3"[..]]);
    assert_eq!(encoded(&h), "Host: h\r\nX: 3\r\nY: y\r\n");
}

#[test]
fn retain_names_keeps_order_and_presence() {
    let mut h = parsed("A_B: 1\r\nConnection: close\r\nC: 3\r\n");
    h.retain_names(|n| !n.contains(&b'_') && n != b"connection");
    assert!(!h.has_known(Known::Connection));
    assert_eq!(encoded(&h), "Host: h\r\nC: 3\r\n");
}

#[test]
fn map_form_answers_like_the_borrowed_one() {
    let wire = parsed("A: 1\r\nTE: trailers\r\na: 2\r\n");
    let map = Headers::from(wire.map().clone());
    for h in [&wire, &map] {
        assert_eq!(h.values(&name("a")).collect::<Vec<_>>(), [&b"1"[..], b"2"]);
        assert!(h.has_known(Known::Te));
        assert_eq!(h.value(&Known::Te), Some(&b"trailers"[..]));
        assert_eq!(h.value("TE"), Some(&b"trailers"[..]));
        assert!(has_token(h, &http::header::TE, "TRAILERS"));
        assert!(!h.has_known(Known::Upgrade));
    }
    assert_eq!(map, wire, "equal as field sets whatever the form");
    let pairs: Vec<_> = (&wire).into_iter().map(|(n, v)| (n.as_str(), v.as_bytes())).collect();
    assert_eq!(pairs, [("host", &b"h"[..]), ("a", b"1"), ("a", b"2"), ("te", b"trailers")]);
    assert_eq!(map.to_map_keeping(keep_all), wire.to_map_keeping(keep_all));
}

#[test]
fn map_for_a_peer_leaves_out_what_it_must_not_get_in_either_form() {
    let wire = parsed("A: 1\r\nConnection: x\r\nb: 2\r\nTE: gzip\r\nX: 3\r\n");
    let map = Headers::from(wire.map().clone());
    let keep = |k: Known, v: &[u8]| k != Known::Connection && (k != Known::Te || v == b"trailers");
    for h in [&wire, &map] {
        let m = h.to_map_keeping(keep);
        let pairs: Vec<_> = m.iter().map(|(n, v)| (n.as_str(), v.as_bytes())).collect();
        assert_eq!(pairs, [("host", &b"h"[..]), ("a", b"1"), ("b", b"2"), ("x", b"3")]);
    }
}

#[test]
fn built_block_is_borrowed_and_encodes_as_its_lines() {
    let mut b = WireBuilder::with_capacity(0, 0);
    b.push(&http::header::HOST, b"a.example");
    b.push(&HeaderName::from_static("x-id"), b"7");
    b.push(&HeaderName::from_static("x-id"), b"8");
    let h = b.finish();
    assert!(h.is_borrowed());
    assert!(h.has_known(Known::Host));
    assert_eq!(h.values("X-Id").collect::<Vec<_>>(), [&b"7"[..], b"8"]);
    let mut out = BytesMut::new();
    h.encode(&mut out);
    assert_eq!(&out[..], b"host: a.example\r\nx-id: 7\r\nx-id: 8\r\n");
}

#[test]
fn single_is_the_value_of_a_lone_field_in_either_form() {
    let mut h = parsed("Connection: close\r\nTE: a\r\nte: b\r\n");
    assert_eq!(h.single(Known::Connection), Some(&b"close"[..]));
    assert_eq!(h.single(Known::Te), None, "repeated");
    assert_eq!(h.single(Known::Upgrade), None, "absent");
    assert_eq!(h.single(Known::Other), None, "no one name");
    h.remove(Known::Te);
    h.append(header::TE, HeaderValue::from_static("trailers"));
    assert_eq!(h.single(Known::Te), Some(&b"trailers"[..]), "added after a removal");
    h.append(header::CONNECTION, HeaderValue::from_static("x"));
    assert_eq!(h.single(Known::Connection), None, "repeated by an edit");
    let m = Headers::from(h.map().clone());
    assert_eq!(m.single(Known::Te), Some(&b"trailers"[..]));
    assert_eq!(m.single(Known::Connection), None);
}

/// The lone-line shortcuts answer as the list readers do, and leave lists to them.
#[test]
fn lone_line_shortcuts_agree_with_the_list_readers() {
    use super::super::length::{content_length, says_length};
    let cases: &[(&str, Result<Option<u64>, &str>)] = &[
        ("Content-Length: 13\r\n", Ok(Some(13))),
        ("Content-Length: 0013\r\n", Ok(Some(13))),
        ("Content-Length: 9999999999999999999\r\n", Ok(Some(9_999_999_999_999_999_999))),
        ("Content-Length: 99999999999999999999\r\n", Err("Content-Length overflow")),
        ("Content-Length: 5, 5\r\n", Ok(Some(5))),
        ("Content-Length: 5, 6\r\n", Err("conflicting Content-Length values")),
        ("Content-Length: 5\r\nContent-Length: 6\r\n", Err("conflicting Content-Length values")),
        ("Content-Length: +5\r\n", Err("invalid Content-Length")),
        ("", Ok(None)),
    ];
    for (fields, want) in cases {
        assert_eq!(content_length(&parsed(fields)), *want, "{fields:?}");
    }
    assert!(says_length(&parsed("Content-Length: 13\r\n"), 13));
    assert!(!says_length(&parsed("Content-Length: 013\r\n"), 13), "not canonical");
    assert!(!says_length(&parsed("Content-Length: 13\r\nContent-Length: 13\r\n"), 13), "twice");
    for (fields, token, want) in [
        ("Connection: Keep-Alive \r\n", "keep-alive", true),
        ("Connection: close\r\n", "keep-alive", false),
        ("Connection: foo, close\r\n", "close", true),
        ("Connection: foo\r\nConnection: close\r\n", "close", true),
        ("", "close", false),
    ] {
        assert_eq!(has_token(&parsed(fields), &Known::Connection, token), want, "{fields:?} {token}");
    }
}
