//! The HTTP cache over loopback, against the independent test origin (`/cache/...` answers with
//! the fields each request asks for), counting what reaches the origin: the key, what is stored
//! and what is not, freshness on a manual clock, HEAD from GET, Vary, the object limit, the
//! status field, and a cache working with compression.

mod support;

use proxy::compression::CompressionSettings;
use support::cache::{status, CacheSetup};
use support::gen::decode;

const MAX_AGE_60: (&str, &str) = ("x-res-cache-control", "max-age=60");

/// Request fields, as `(name, value)` pairs.
type Fields<'a> = &'a [(&'a str, &'a str)];

#[tokio::test]
async fn a_miss_is_stored_and_the_next_request_is_a_hit() {
    let s = CacheSetup::start(|_| {}).await;
    let a = s.get("/cache/a", &[MAX_AGE_60, ("x-res-body", "first")]).await;
    assert_eq!((a.status, status(&a), a.text().as_str()), (200, "MISS", "first"));
    let b = s.get("/cache/a", &[MAX_AGE_60, ("x-res-body", "second")]).await;
    assert_eq!((b.status, status(&b), b.text().as_str()), (200, "HIT", "first"));
    assert_eq!(b.header("age"), Some("0"));
    assert_eq!(b.header("content-length"), Some("5"));
    assert_eq!(b.header("cache-control"), Some("max-age=60"));
    s.clock.advance(7);
    let c = s.get("/cache/a", &[MAX_AGE_60]).await;
    assert_eq!((status(&c), c.header("age")), ("HIT", Some("7")));
    assert_eq!(s.upstream("/cache/a"), 1);
    assert_eq!(s.cache.usage().objects, 1);
}

#[tokio::test]
async fn the_key_has_host_path_and_query() {
    let s = CacheSetup::start(|_| {}).await;
    for (path, host) in [("/cache/k", "one.test"), ("/cache/k", "two.test"), ("/cache/k?q=1", "one.test")] {
        let r = s.get(path, &[MAX_AGE_60, ("Host", host)]).await;
        assert_eq!(status(&r), "MISS", "{host}{path}");
    }
    for (path, host) in [("/cache/k", "ONE.test"), ("/cache/k", "two.test"), ("/cache/k?q=1", "one.test")] {
        let r = s.get(path, &[MAX_AGE_60, ("Host", host)]).await;
        assert_eq!(status(&r), "HIT", "{host}{path}");
    }
    assert_eq!(s.upstream("/cache/k"), 3);
}

#[tokio::test]
async fn head_is_served_from_a_stored_get_and_not_stored_itself() {
    let s = CacheSetup::start(|_| {}).await;
    let h = s.send("HEAD", "/cache/h", &[MAX_AGE_60]).await;
    assert_eq!(status(&h), "MISS");
    let h = s.send("HEAD", "/cache/h", &[MAX_AGE_60]).await;
    assert_eq!(status(&h), "MISS", "a HEAD response has no body to store");
    s.get("/cache/h", &[MAX_AGE_60, ("x-res-body", "12345678")]).await;
    let h = s.send("HEAD", "/cache/h", &[MAX_AGE_60]).await;
    assert_eq!((h.status, status(&h), h.body.len()), (200, "HIT", 0));
    assert_eq!(h.header("content-length"), Some("8"));
    assert_eq!(s.upstream("/cache/h"), 3);
}

#[tokio::test]
async fn vary_selects_among_stored_variants() {
    let s = CacheSetup::start(|_| {}).await;
    let vary = ("x-res-vary", "Accept-Language");
    let ask = |lang: &'static str| [MAX_AGE_60, vary, ("Accept-Language", lang), ("x-res-body", lang)];
    assert_eq!(status(&s.get("/cache/v", &ask("en")).await), "MISS");
    assert_eq!(status(&s.get("/cache/v", &ask("fr")).await), "MISS");
    let en = s.get("/cache/v", &ask("en")).await;
    let fr = s.get("/cache/v", &ask("fr")).await;
    assert_eq!(
        (status(&en), en.text().as_str(), status(&fr), fr.text().as_str()),
        ("HIT", "en", "HIT", "fr")
    );
    let none = s.get("/cache/v", &[MAX_AGE_60, vary]).await;
    assert_eq!(status(&none), "MISS", "no Accept-Language is a value of its own");
    assert_eq!(s.upstream("/cache/v"), 3);
    let star = [MAX_AGE_60, ("x-res-vary", "*")];
    s.get("/cache/star", &star).await;
    assert_eq!(status(&s.get("/cache/star", &star).await), "MISS", "Vary: * is never stored");
}

/// Each row: response fields (and request fields) that must keep the response out of the cache.
#[tokio::test]
async fn what_is_not_stored() {
    let s = CacheSetup::start(|_| {}).await;
    let rows: &[(&str, Fields)] = &[
        ("no-store", &[("x-res-cache-control", "max-age=60, no-store")]),
        ("private", &[("x-res-cache-control", "private, max-age=60")]),
        ("set-cookie", &[MAX_AGE_60, ("x-res-set-cookie", "id=1")]),
        ("authorization", &[MAX_AGE_60, ("Authorization", "Basic eDp5")]),
        ("request-no-store", &[MAX_AGE_60, ("Cache-Control", "no-store")]),
        ("no-freshness", &[]),
        ("302-without-freshness", &[("x-res-status", "302"), ("x-res-etag", "\"a\"")]),
        ("no-heuristic", &[("x-res-last-modified", "Mon, 01 Jan 2001 00:00:00 GMT")]),
        ("expires-past", &[("x-res-expires", "Mon, 01 Jan 2001 00:00:00 GMT")]),
    ];
    for (name, fields) in rows {
        let path = format!("/cache/not/{name}");
        s.get(&path, fields).await;
        let again = s.get(&path, fields).await;
        assert_ne!(status(&again), "HIT", "{name}");
        assert_eq!(s.upstream(&path), 2, "{name}");
    }
}

#[tokio::test]
async fn what_is_stored_by_exception() {
    let s = CacheSetup::start(|c| {
        c.policy.allow_set_cookie = true;
        c.policy.heuristic_freshness = true;
    })
    .await;
    let lm = ("x-res-last-modified", "Mon, 01 Jan 2001 00:00:00 GMT");
    let rows: &[(&str, Fields)] = &[
        ("set-cookie-allowed", &[MAX_AGE_60, ("x-res-set-cookie", "id=1")]),
        (
            "authorization-public",
            &[("x-res-cache-control", "public, max-age=60"), ("Authorization", "Basic eDp5")],
        ),
        (
            "authorization-s-maxage",
            &[("x-res-cache-control", "s-maxage=60"), ("Authorization", "Basic eDp5")],
        ),
        ("heuristic", &[lm]),
        ("expires", &[("x-res-expires", "Fri, 01 Jan 2100 00:00:00 GMT")]),
        ("302-with-max-age", &[("x-res-status", "302"), MAX_AGE_60]),
    ];
    for (name, fields) in rows {
        let path = format!("/cache/yes/{name}");
        s.get(&path, fields).await;
        let again = s.get(&path, fields).await;
        assert_eq!(status(&again), "HIT", "{name}");
        assert_eq!(s.upstream(&path), 1, "{name}");
    }
}

#[tokio::test]
async fn freshness_runs_out_on_the_clock() {
    let s = CacheSetup::start(|_| {}).await;
    let rows: &[(&str, Fields, u64)] = &[
        ("max-age", &[("x-res-cache-control", "max-age=10")], 10),
        ("s-maxage-over-max-age", &[("x-res-cache-control", "max-age=100, s-maxage=10")], 10),
        ("age-counts", &[("x-res-cache-control", "max-age=30"), ("x-res-age", "20")], 10),
    ];
    for (name, fields, life) in rows {
        let path = format!("/cache/life/{name}");
        s.get(&path, fields).await;
        s.clock.advance(life - 1);
        assert_eq!(status(&s.get(&path, fields).await), "HIT", "{name}: one second before");
        s.clock.advance(1);
        let r = s.get(&path, fields).await;
        assert_eq!(status(&r), "EXPIRED", "{name}: at the end of its lifetime");
        assert_eq!(s.upstream(&path), 2, "{name}");
        // The new copy is fresh again.
        assert_eq!(status(&s.get(&path, fields).await), "HIT", "{name}: refetched");
    }
}

#[tokio::test]
async fn a_body_over_the_object_limit_is_passed_on_but_not_stored() {
    let s = CacheSetup::start(|c| c.max_object = 100).await;
    let big = "x".repeat(101);
    let r = s.get("/cache/big", &[MAX_AGE_60, ("x-res-body", &big)]).await;
    assert_eq!((r.status, r.body.len()), (200, 101));
    let r = s.get("/cache/big", &[MAX_AGE_60, ("x-res-body", &big)]).await;
    assert_eq!((status(&r), r.body.len()), ("MISS", 101));
    let small = "y".repeat(100);
    s.get("/cache/small", &[MAX_AGE_60, ("x-res-body", &small)]).await;
    assert_eq!(status(&s.get("/cache/small", &[MAX_AGE_60]).await), "HIT");
}

#[tokio::test]
async fn one_stored_copy_is_compressed_per_client() {
    let on = CompressionSettings { enabled: true, min_length: 0, ..CompressionSettings::default() };
    let s = CacheSetup::start_with(|_| {}, on).await;
    let body = "compressible text ".repeat(100).trim_end().to_string();
    let fields = [MAX_AGE_60, ("x-res-content-type", "text/plain"), ("x-res-body", body.as_str())];
    let gz = s.get("/cache/z", &[fields[0], fields[1], fields[2], ("Accept-Encoding", "gzip")]).await;
    assert_eq!((status(&gz), gz.header("content-encoding")), ("MISS", Some("gzip")));
    let plain = s.get("/cache/z", &fields).await;
    assert_eq!((status(&plain), plain.header("content-encoding")), ("HIT", None));
    assert_eq!(plain.text(), body);
    let br = s.get("/cache/z", &[fields[0], ("Accept-Encoding", "br")]).await;
    assert_eq!((status(&br), br.header("content-encoding")), ("HIT", Some("br")));
    assert_eq!(decode("br", &br.body), body.as_bytes());
    assert_eq!(decode("gzip", &gz.body), body.as_bytes());
    assert_eq!(s.upstream("/cache/z"), 1);
}

#[tokio::test]
async fn the_logging_summary_says_what_the_cache_did() {
    let s = CacheSetup::start(|c| c.status_header = false).await;
    let r = s.get("/cache/log", &[MAX_AGE_60]).await;
    assert_eq!(r.header("x-cache-status"), None, "the field is optional");
    s.get("/cache/log", &[MAX_AGE_60]).await;
    s.send("POST", "/cache/log", &[]).await;
    use proxy::cache::CacheStatus::*;
    assert!(support::eventually(|| s.statuses().len() == 3).await);
    assert_eq!(s.statuses(), [Some(Miss), Some(Hit), Some(Bypass)]);
}
