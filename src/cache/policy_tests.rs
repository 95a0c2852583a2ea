//! The policy as tables: each row a response (and request) and exactly what a shared cache does.

use http::StatusCode;

use super::*;
use crate::cache::object::{Meta, StaleRules};
use crate::protocol::http::fields::wire;

/// 2024-01-01T00:00:00Z, the time every row receives its response at.
const NOW: u64 = 1_704_067_200;
const NOW_DATE: &str = "Mon, 01 Jan 2024 00:00:00 GMT";
const HOUR_AGO: &str = "Sun, 31 Dec 2023 23:00:00 GMT";
const DAY_LATER: &str = "Tue, 02 Jan 2024 00:00:00 GMT";
const TEN_DAYS_AGO: &str = "Fri, 22 Dec 2023 00:00:00 GMT";

/// Header fields as `(name, value)` pairs.
type Fields<'a> = &'a [(&'a str, &'a str)];

/// What [`storable`] answers.
type Stored = Result<u64, NotStorable>;

fn head(status: u16, fields: &[(&str, &str)]) -> ResponseHead {
    let mut h = ResponseHead::new(StatusCode::from_u16(status).unwrap());
    h.headers = wire(fields);
    h
}

fn store(
    req: &[(&str, &str)],
    status: u16,
    resp: &[(&str, &str)],
    o: PolicyOptions,
) -> Result<u64, NotStorable> {
    let req = wire(req);
    let resp = head(status, resp);
    storable(&req, &CacheControl::parse(&req), &resp, &CacheControl::parse(&resp.headers), NOW, o)
}

#[test]
fn storability_and_lifetime() {
    use NotStorable::*;
    let plain = PolicyOptions::default();
    let cookies = PolicyOptions { allow_set_cookie: true, ..plain };
    let heuristic = PolicyOptions { heuristic_freshness: true, ..plain };
    let auth = [("Authorization", "Bearer x")];
    #[rustfmt::skip]
    let rows: &[(&str, Fields, u16, Fields, PolicyOptions, Stored)] = &[
        ("max-age", &[], 200, &[("Cache-Control", "max-age=60")], plain, Ok(60)),
        ("s-maxage wins over max-age", &[], 200, &[("Cache-Control", "max-age=60, s-maxage=5")], plain, Ok(5)),
        ("max-age wins over Expires", &[], 200, &[("Cache-Control", "max-age=7"), ("Date", NOW_DATE), ("Expires", DAY_LATER)], plain, Ok(7)),
        ("Expires minus Date", &[], 200, &[("Date", NOW_DATE), ("Expires", DAY_LATER)], plain, Ok(86_400)),
        ("Expires without Date: from receipt", &[], 200, &[("Expires", DAY_LATER)], plain, Ok(86_400)),
        ("invalid Expires is past, no validator", &[], 200, &[("Expires", "0")], plain, Err(NoFreshness)),
        ("invalid Expires is past, with a validator", &[], 200, &[("Expires", "0"), ("ETag", "\"a\"")], plain, Ok(0)),
        ("invalid max-age is stale", &[], 200, &[("Cache-Control", "max-age=soon"), ("ETag", "\"a\"")], plain, Ok(0)),
        ("first of duplicate max-age", &[], 200, &[("Cache-Control", "max-age=10"), ("Cache-Control", "max-age=99")], plain, Ok(10)),
        ("quoted max-age", &[], 200, &[("Cache-Control", "max-age=\"30\"")], plain, Ok(30)),
        ("huge max-age saturates", &[], 200, &[("Cache-Control", "max-age=99999999999999999999")], plain, Ok(1 << 31)),
        ("nothing at all", &[], 200, &[], plain, Err(NoFreshness)),
        ("validator only", &[], 200, &[("ETag", "\"a\"")], plain, Ok(0)),
        ("no heuristic unless enabled", &[], 200, &[("Date", NOW_DATE), ("Last-Modified", TEN_DAYS_AGO)], plain, Ok(0)),
        ("heuristic: a tenth since Last-Modified", &[], 200, &[("Date", NOW_DATE), ("Last-Modified", TEN_DAYS_AGO)], heuristic, Ok(86_400)),
        ("heuristic capped at a day", &[], 200, &[("Date", NOW_DATE), ("Last-Modified", "Mon, 01 Jan 2001 00:00:00 GMT")], heuristic, Ok(86_400)),
        ("heuristic, an hour old", &[], 404, &[("Date", NOW_DATE), ("Last-Modified", HOUR_AGO)], heuristic, Ok(360)),
        ("no-store", &[], 200, &[("Cache-Control", "max-age=60, no-store")], plain, Err(NoStore)),
        ("request no-store", &[("Cache-Control", "no-store")], 200, &[("Cache-Control", "max-age=60")], plain, Err(NoStore)),
        ("private", &[], 200, &[("Cache-Control", "private, max-age=60")], plain, Err(Private)),
        ("qualified private", &[], 200, &[("Cache-Control", "private=\"x-user\", max-age=60")], plain, Err(Private)),
        ("no-cache is stored (and revalidated)", &[], 200, &[("Cache-Control", "no-cache, max-age=60")], plain, Ok(60)),
        ("Authorization: not shared by default", &auth, 200, &[("Cache-Control", "max-age=60")], plain, Err(Authorization)),
        ("Authorization + public", &auth, 200, &[("Cache-Control", "public, max-age=60")], plain, Ok(60)),
        ("Authorization + s-maxage", &auth, 200, &[("Cache-Control", "s-maxage=9")], plain, Ok(9)),
        ("Authorization + must-revalidate", &auth, 200, &[("Cache-Control", "must-revalidate, max-age=60")], plain, Ok(60)),
        ("Set-Cookie refused", &[], 200, &[("Cache-Control", "max-age=60"), ("Set-Cookie", "a=b")], plain, Err(SetCookie)),
        ("Set-Cookie allowed", &[], 200, &[("Cache-Control", "max-age=60"), ("Set-Cookie", "a=b")], cookies, Ok(60)),
        ("Vary: *", &[], 200, &[("Cache-Control", "max-age=60"), ("Vary", "*")], plain, Err(VaryStar)),
        ("206", &[], 206, &[("Cache-Control", "max-age=60")], plain, Err(Status)),
        ("Content-Range", &[], 200, &[("Cache-Control", "max-age=60"), ("Content-Range", "bytes 0-1/2")], plain, Err(Status)),
        ("304 is no response to store", &[], 304, &[("Cache-Control", "max-age=60")], plain, Err(Status)),
        ("302 without freshness", &[], 302, &[("ETag", "\"a\"")], plain, Err(Status)),
        ("302 with max-age", &[], 302, &[("Cache-Control", "max-age=60")], plain, Ok(60)),
        ("500 with public", &[], 500, &[("Cache-Control", "public"), ("ETag", "\"a\"")], plain, Ok(0)),
        ("404 by default", &[], 404, &[("Cache-Control", "max-age=60")], plain, Ok(60)),
        ("must-understand, status understood: no-store ignored", &[], 200, &[("Cache-Control", "max-age=60, must-understand, no-store")], plain, Ok(60)),
        ("must-understand, status not understood", &[], 599, &[("Cache-Control", "max-age=60, must-understand")], plain, Err(Status)),
        ("599 with max-age", &[], 599, &[("Cache-Control", "max-age=60")], plain, Ok(60)),
    ];
    for (name, req, status, resp, o, want) in rows {
        assert_eq!(store(req, *status, resp, *o), *want, "{name}");
    }
}

#[test]
fn initial_age() {
    #[rustfmt::skip]
    let rows: &[(&str, Fields, u64, u64, u64)] = &[
        // (name, fields, request time, response time, corrected initial age)
        ("fresh from the origin", &[("Date", NOW_DATE)], NOW, NOW, 0),
        ("Age header", &[("Date", NOW_DATE), ("Age", "30")], NOW, NOW, 30),
        ("response delay added to Age", &[("Date", NOW_DATE), ("Age", "30")], NOW - 2, NOW, 32),
        ("apparent age from Date", &[("Date", HOUR_AGO)], NOW, NOW, 3600),
        ("apparent age wins when larger", &[("Date", HOUR_AGO), ("Age", "5")], NOW, NOW, 3600),
        ("Date in the future", &[("Date", DAY_LATER)], NOW, NOW, 0),
        ("an invalid Age is as old as can be", &[("Age", "-3")], NOW, NOW, 1 << 31),
        ("a list Age too", &[("Age", "0, 0")], NOW, NOW, 1 << 31),
        ("two Age lines too", &[("Age", "0"), ("Age", "0")], NOW, NOW, 1 << 31),
    ];
    for (name, fields, req_t, resp_t, want) in rows {
        let t = times(&head(200, fields), *req_t, *resp_t, 0);
        assert_eq!(t.initial_age, *want, "{name}");
    }
}

fn meta(lifetime: u64, age: u64, rules: StaleRules) -> Meta {
    let h = head(200, &[]);
    let times = Times { request: NOW, response: NOW, initial_age: age, lifetime };
    let mut m = Meta::new(&h, &wire(&[]), times, &CacheControl::default());
    m.stale = rules;
    m
}

#[test]
fn serving_a_stored_response() {
    use Usable::*;
    let none = StaleRules::default();
    let swr = StaleRules { while_revalidate: 30, ..none };
    let revalidate = StaleRules { revalidate: true, while_revalidate: 30, ..none };
    let no_cache = StaleRules { no_cache: true, ..none };
    #[rustfmt::skip]
    let rows: &[(&str, u64, u64, StaleRules, &str, Usable)] = &[
        // (name, lifetime, age, response rules, request Cache-Control, outcome)
        ("fresh", 60, 10, none, "", Serve { stale: false }),
        ("age equal to lifetime is stale", 60, 60, none, "", Revalidate),
        ("stale", 60, 61, none, "", Revalidate),
        ("response no-cache", 60, 0, no_cache, "", Revalidate),
        ("request no-cache", 60, 0, none, "no-cache", Revalidate),
        ("request max-age older than allowed", 60, 20, none, "max-age=10", Revalidate),
        ("request max-age satisfied", 60, 5, none, "max-age=10", Serve { stale: false }),
        ("request max-age=0", 60, 0, none, "max-age=0", Serve { stale: false }),
        ("request max-age=0, one second old", 60, 1, none, "max-age=0", Revalidate),
        ("min-fresh not met", 60, 50, none, "min-fresh=20", Revalidate),
        ("min-fresh met", 60, 10, none, "min-fresh=20", Serve { stale: false }),
        ("max-stale within", 60, 70, none, "max-stale=20", Serve { stale: true }),
        ("max-stale any", 60, 7000, none, "max-stale", Serve { stale: true }),
        ("max-stale beyond", 60, 90, none, "max-stale=20", Revalidate),
        ("max-stale vs must-revalidate", 60, 70, revalidate, "max-stale", Revalidate),
        ("stale-while-revalidate within", 60, 80, swr, "", ServeAndRefresh),
        ("stale-while-revalidate beyond", 60, 91, swr, "", Revalidate),
        ("stale-while-revalidate vs must-revalidate", 60, 80, revalidate, "", Revalidate),
    ];
    for (name, lifetime, age, rules, req_cc, want) in rows {
        let req = wire(&[("Cache-Control", req_cc)]);
        let got = usable(&meta(*lifetime, *age, *rules), &CacheControl::parse(&req), NOW);
        assert_eq!(got, *want, "{name}");
    }
}

#[test]
fn stale_on_error() {
    let none = StaleRules::default();
    #[rustfmt::skip]
    let rows: &[(&str, u64, StaleRules, &str, bool)] = &[
        // (name, age with a lifetime of 60, response rules, request Cache-Control, allowed)
        ("no directive", 70, none, "", false),
        ("response stale-if-error within", 70, StaleRules { if_error: 30, ..none }, "", true),
        ("response stale-if-error beyond", 100, StaleRules { if_error: 30, ..none }, "", false),
        ("request stale-if-error", 70, none, "stale-if-error=20", true),
        ("must-revalidate forbids it", 70, StaleRules { if_error: 30, revalidate: true, ..none }, "", false),
        ("no-cache forbids it", 70, StaleRules { if_error: 30, no_cache: true, ..none }, "", false),
    ];
    for (name, age, rules, req_cc, want) in rows {
        let req = wire(&[("Cache-Control", req_cc)]);
        assert_eq!(stale_if_error(&meta(60, *age, *rules), &CacheControl::parse(&req), NOW), *want, "{name}");
    }
}

#[test]
fn pragma_no_cache_only_without_cache_control() {
    let cc = CacheControl::parse(&wire(&[("Pragma", "no-cache")]));
    assert!(cc.no_cache);
    let cc = CacheControl::parse(&wire(&[("Pragma", "no-cache"), ("Cache-Control", "max-age=5")]));
    assert!(!cc.no_cache);
}

#[test]
fn vary_selects_and_304_merges() {
    let resp = head(
        200,
        &[
            ("Vary", "Accept-Language"),
            ("ETag", "\"1\""),
            ("X-Old", "a"),
            ("Content-Length", "5"),
            ("Age", "3"),
        ],
    );
    let t = Times { request: NOW, response: NOW, initial_age: 0, lifetime: 10 };
    let m = Meta::new(&resp, &wire(&[("Accept-Language", "en")]), t, &CacheControl::default());
    assert!(m.matches(&wire(&[("Accept-Language", "en")])));
    assert!(!m.matches(&wire(&[("Accept-Language", "fr")])));
    assert!(!m.matches(&wire(&[])));
    assert_eq!(m.head.headers.value("age"), None, "Age is computed when served, never stored");
    let nm = head(
        304,
        &[("ETag", "\"2\""), ("X-New", "b"), ("Content-Length", "0"), ("Cache-Control", "max-age=99")],
    );
    let m2 = m.freshened(&nm);
    let h = &m2.head.headers;
    assert_eq!(h.value("etag"), Some(&b"\"1\""[..]), "the stored body's tag stays");
    assert_eq!(h.value("content-encoding"), None, "the stored body's coding stays");
    assert_eq!(h.value("x-old"), Some(&b"a"[..]));
    assert_eq!(h.value("x-new"), Some(&b"b"[..]));
    assert_eq!(h.value("content-length"), Some(&b"5"[..]), "the 304's framing is not the body's");
    assert_eq!(h.value("cache-control"), Some(&b"max-age=99"[..]));
    assert_eq!(m2.head.status, StatusCode::OK);
    assert!(m2.same_variant(&m));
}
