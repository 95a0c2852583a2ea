//! The HTTP cache's flows over loopback, counting what reaches the test origin: revalidation
//! (If-None-Match, If-Modified-Since, the 304 merge), stale-while-revalidate, stale-if-error,
//! the client's Cache-Control, invalidation by unsafe methods, purge, the cache lock (the
//! stampede, the waiters' timeout), the four cache hooks, and a request body on a hit.

mod support;

use std::time::Duration;

use proxy::cache::CacheKey;
use support::cache::{status, CacheSetup};
use support::client::Conn;
use support::{eventually, within};

const ETAG: (&str, &str) = ("x-res-etag", "\"v1\"");
const LM: (&str, &str) = ("x-res-last-modified", "Mon, 01 Jan 2001 00:00:00 GMT");

fn cc(v: &str) -> (&str, &str) {
    ("x-res-cache-control", v)
}

#[tokio::test]
async fn a_stale_response_is_revalidated_and_the_304_merged() {
    let s = CacheSetup::start(|_| {}).await;
    for (name, validator) in [("etag", ETAG), ("last-modified", LM)] {
        let path = format!("/cache/reval/{name}");
        let first = [cc("max-age=1"), validator, ("x-res-x-version", "1"), ("x-res-body", "old")];
        s.get(&path, &first).await;
        s.clock.advance(2);
        let again = [cc("max-age=60"), validator, ("x-res-x-version", "2"), ("x-res-body", "new")];
        let r = s.get(&path, &again).await;
        assert_eq!((status(&r), r.text().as_str()), ("REVALIDATED", "old"), "{name}");
        assert_eq!(r.header("x-version"), Some("2"), "{name}: the 304's fields replace the stored ones");
        assert_eq!(r.header("content-length"), Some("3"), "{name}");
        let sent = s.origin.received_text().into_iter().rfind(|t| t.contains(&path)).unwrap();
        let cond =
            if name == "etag" { "if-none-match: \"v1\"" } else { "if-modified-since: mon, 01 jan 2001" };
        assert!(sent.to_ascii_lowercase().contains(cond), "{name}: {sent}");
        // Fresh again for the 304's max-age.
        s.clock.advance(30);
        let r = s.get(&path, &again).await;
        assert_eq!((status(&r), r.header("x-version")), ("HIT", Some("2")), "{name}");
        assert_eq!(s.upstream(&path), 2, "{name}");
    }
}

#[tokio::test]
async fn a_client_conditional_is_answered_from_the_cache() {
    let s = CacheSetup::start(|_| {}).await;
    s.get("/cache/cond", &[cc("max-age=60"), ETAG]).await;
    let r = s.get("/cache/cond", &[("If-None-Match", "\"v1\"")]).await;
    assert_eq!((r.status, status(&r), r.body.len()), (304, "HIT", 0));
    let r = s.get("/cache/cond", &[("If-None-Match", "\"v0\"")]).await;
    assert_eq!((r.status, status(&r)), (200, "HIT"));
    assert_eq!(s.upstream("/cache/cond"), 1);
}

#[tokio::test]
async fn no_cache_responses_are_revalidated_every_time() {
    let s = CacheSetup::start(|_| {}).await;
    let f = [cc("no-cache, max-age=60"), ETAG];
    s.get("/cache/nc", &f).await;
    for _ in 0..2 {
        assert_eq!(status(&s.get("/cache/nc", &f).await), "REVALIDATED");
    }
    assert_eq!(s.upstream("/cache/nc"), 3);
}

#[tokio::test]
async fn the_clients_cache_control_is_honoured() {
    let s = CacheSetup::start(|_| {}).await;
    let f = [cc("max-age=60"), ETAG];
    s.get("/cache/req", &f).await;
    // Each row five seconds after the last (a revalidation makes the stored copy new again).
    let rows = [
        ("no-cache", "REVALIDATED"),
        ("max-age=2", "REVALIDATED"),
        ("max-age=100", "HIT"),
        ("min-fresh=70", "REVALIDATED"),
    ];
    for (directive, want) in rows {
        s.clock.advance(5);
        let r = s.get("/cache/req", &[f[0], f[1], ("Cache-Control", directive)]).await;
        assert_eq!(status(&r), want, "{directive}");
    }
    s.clock.advance(5);
    let r = s.get("/cache/req", &[f[1], ("Pragma", "no-cache")]).await;
    assert_eq!(status(&r), "REVALIDATED", "Pragma: no-cache without Cache-Control");
    let upstream = s.upstream("/cache/req");
    let r = s.get("/cache/absent", &[("Cache-Control", "only-if-cached")]).await;
    assert_eq!(r.status, 504);
    assert_eq!(s.upstream("/cache/absent"), 0, "only-if-cached never goes upstream");
    s.clock.advance(100);
    let r = s.get("/cache/req", &[("Cache-Control", "max-stale=200")]).await;
    assert_eq!((r.status, status(&r)), (200, "STALE"));
    assert_eq!(s.upstream("/cache/req"), upstream);
}

#[tokio::test]
async fn stale_while_revalidate_serves_stale_then_refreshes() {
    let s = CacheSetup::start(|_| {}).await;
    let f = |body| [cc("max-age=1, stale-while-revalidate=60"), ("x-res-body", body)];
    s.get("/cache/swr", &f("old")).await;
    s.clock.advance(3);
    let r = s.get("/cache/swr", &f("new")).await;
    assert_eq!((status(&r), r.text().as_str()), ("STALE", "old"));
    assert!(eventually(|| s.upstream("/cache/swr") == 2).await, "refreshed in the background");
    let mut fresh = None;
    for _ in 0..100 {
        let r = s.get("/cache/swr", &f("newer")).await;
        if r.text() == "new" {
            fresh = Some(r);
            break;
        }
    }
    let r = fresh.expect("the refreshed copy is served");
    assert_eq!(status(&r), "HIT");
    assert_eq!(s.upstream("/cache/swr"), 2);
    // Past the window: revalidated before answering.
    s.clock.advance(200);
    assert_eq!(status(&s.get("/cache/swr", &f("last")).await), "EXPIRED");
}

#[tokio::test]
async fn stale_if_error_serves_the_stored_copy_when_the_origin_fails() {
    let s = CacheSetup::start(|_| {}).await;
    let f = [cc("max-age=1, stale-if-error=60"), ("x-res-body", "kept")];
    s.get("/cache/sie", &f).await;
    s.clock.advance(5);
    let r = s.get("/cache/sie", &[f[0], ("x-res-status", "503"), ("x-res-body", "down")]).await;
    assert_eq!((r.status, status(&r), r.text().as_str()), (200, "STALE", "kept"));
    let r = s.get("/cache/sie", &[("x-peer", "refused")]).await;
    assert_eq!((r.status, status(&r), r.text().as_str()), (200, "STALE", "kept"), "connect refused");
    s.clock.advance(100);
    let r = s.get("/cache/sie", &[("x-res-status", "503")]).await;
    assert_eq!(r.status, 503, "past the window the error goes through");
    // must-revalidate forbids it.
    let m = [cc("max-age=1, stale-if-error=60, must-revalidate")];
    s.get("/cache/sie-mr", &m).await;
    s.clock.advance(5);
    let r = s.get("/cache/sie-mr", &[("x-res-status", "503")]).await;
    assert_eq!(r.status, 503);
    let r = s.get("/cache/sie-mr", &[("x-peer", "refused")]).await;
    assert_eq!(r.status, 502);
}

#[tokio::test]
async fn unsafe_methods_invalidate_the_target() {
    let s = CacheSetup::start(|_| {}).await;
    let f = [cc("max-age=60")];
    for method in ["POST", "PUT", "DELETE", "PATCH"] {
        s.get("/cache/inv", &f).await;
        assert_eq!(status(&s.get("/cache/inv", &f).await), "HIT", "{method}");
        let r = s.send(method, "/cache/inv", &[]).await;
        assert_eq!(status(&r), "BYPASS", "{method}");
        assert_eq!(status(&s.get("/cache/inv", &f).await), "MISS", "{method}");
    }
    // A failed unsafe request invalidates nothing.
    s.send("POST", "/cache/inv", &[("x-res-status", "500")]).await;
    assert_eq!(status(&s.get("/cache/inv", &f).await), "HIT");
    // Location on the same host is invalidated too.
    s.get("/cache/other", &f).await;
    s.send("POST", "/cache/inv", &[("x-res-location", "/cache/other")]).await;
    assert_eq!(status(&s.get("/cache/other", &f).await), "MISS");
}

#[tokio::test]
async fn purge_by_key() {
    let s = CacheSetup::start(|_| {}).await;
    let f = [cc("max-age=60")];
    s.get("/cache/p?x=1", &f).await;
    let key = CacheKey::from_parts("http", b"localhost", "/cache/p?x=1");
    assert!(s.cache.purge(&key));
    assert!(!s.cache.purge(&key));
    assert_eq!(status(&s.get("/cache/p?x=1", &f).await), "MISS");
}

#[tokio::test]
async fn two_hundred_concurrent_misses_make_one_upstream_request() {
    let s = CacheSetup::start(|c| c.lock_timeout = Duration::from_secs(60)).await;
    let addr = s.proxy.addr;
    let mut clients = Vec::new();
    for _ in 0..200 {
        clients.push(tokio::spawn(async move {
            let mut c = Conn::connect(addr).await.unwrap();
            within(60, c.request("GET", "/gated/stampede", &[cc("max-age=60"), ("x-res-body", "one")], b""))
                .await
        }));
    }
    // Every request is either the one at the origin or waiting on it.
    assert!(eventually(|| s.origin.requests_to("/gated/") == 1 && s.cache.lock().waiting() == 199).await);
    s.origin.open_gate();
    for c in clients {
        let r = c.await.unwrap();
        assert_eq!((r.status, r.text().as_str()), (200, "one"));
    }
    assert_eq!(s.upstream("/gated/stampede"), 1);
}

#[tokio::test]
async fn a_waiter_goes_upstream_itself_after_the_lock_timeout() {
    let s = CacheSetup::start(|c| c.lock_timeout = Duration::from_millis(50)).await;
    let addr = s.proxy.addr;
    let first = tokio::spawn(async move {
        let mut c = Conn::connect(addr).await.unwrap();
        within(20, c.request("GET", "/gated/slow", &[cc("max-age=60")], b"")).await
    });
    assert!(eventually(|| s.origin.requests_to("/gated/") == 1).await);
    let second = tokio::spawn(async move {
        let mut c = Conn::connect(addr).await.unwrap();
        within(20, c.request("GET", "/gated/slow", &[cc("max-age=60")], b"")).await
    });
    assert!(eventually(|| s.origin.requests_to("/gated/") == 2).await, "the waiter gave up and went itself");
    s.origin.open_gate();
    assert_eq!(first.await.unwrap().status, 200);
    assert_eq!(second.await.unwrap().status, 200);
}

#[tokio::test]
async fn the_cache_hooks() {
    let s = CacheSetup::start(|_| {}).await;
    let f = [cc("max-age=60")];
    s.get("/cache/hook", &f).await;
    let r = s.get("/cache/hook", &[f[0], ("x-skip-cache", "1")]).await;
    assert_eq!(status(&r), "BYPASS", "request_cache_filter");
    let r = s.get("/cache/hook", &[f[0], ("x-expire-hit", "1")]).await;
    assert_eq!(status(&r), "EXPIRED", "cache_hit_filter");
    // cache_key_callback: two paths, one key.
    s.get("/cache/key-a", &[f[0], ("x-key", "shared"), ("x-res-body", "a")]).await;
    let r = s.get("/cache/key-b", &[f[0], ("x-key", "shared")]).await;
    assert_eq!((status(&r), r.text().as_str()), ("HIT", "a"));
    // response_cache_filter: stores what the policy would not.
    s.get("/cache/forced", &[("x-force-store", "60")]).await;
    assert_eq!(status(&s.get("/cache/forced", &[]).await), "HIT");
    assert_eq!(s.upstream("/cache/hook"), 3);
}

/// Pingora CVE-2025-4366: a GET answered from the cache must not leave its body to be read as
/// the next request on the connection.
#[tokio::test]
async fn a_request_body_on_a_hit_is_never_taken_for_the_next_request() {
    let s = CacheSetup::start(|_| {}).await;
    s.get("/cache/smuggle", &[cc("max-age=60")]).await;
    let hidden = b"GET /cache/smuggled HTTP/1.1\r\nHost: localhost\r\n\r\n";
    let mut c = Conn::connect(s.proxy.addr).await.unwrap();
    let r = within(10, c.request("GET", "/cache/smuggle", &[], hidden)).await;
    assert_eq!((r.status, status(&r)), (200, "HIT"));
    let next = within(10, c.request("GET", "/cache/next", &[cc("max-age=60")], b"")).await;
    assert_eq!((next.status, status(&next)), (200, "MISS"));
    assert_eq!(s.upstream("/cache/smuggled"), 0);
    assert_eq!(s.upstream("/cache/next"), 1);
}

/// A key whose last response was not storable takes no lock: concurrent requests for it do not
/// queue behind each other's response heads.
#[tokio::test]
async fn misses_of_an_uncacheable_key_do_not_wait_for_each_other() {
    let s = CacheSetup::start(|c| c.lock_timeout = Duration::from_secs(60)).await;
    let key = ("x-key", "uncacheable");
    assert_eq!(status(&s.get("/cache/u", &[key]).await), "MISS");
    let addr = s.proxy.addr;
    let fetch = move || async move {
        let mut c = Conn::connect(addr).await.unwrap();
        within(20, c.request("GET", "/gated/u", &[key], b"")).await
    };
    let (a, b) = (tokio::spawn(fetch()), tokio::spawn(fetch()));
    assert!(eventually(|| s.origin.requests_to("/gated/") == 2).await, "both at the origin at once");
    assert_eq!(s.cache.lock().waiting(), 0);
    s.origin.open_gate();
    assert_eq!((a.await.unwrap().status, b.await.unwrap().status), (200, 200));
}
