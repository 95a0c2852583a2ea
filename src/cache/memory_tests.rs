//! The store's bound, variants, removal, and S3-FIFO's resistance to a scan.

use bytes::Bytes;
use http::StatusCode;

use super::*;
use crate::cache::{CacheControl, Meta, Times};
use crate::protocol::http::fields::wire;
use crate::protocol::http::ResponseHead;

fn obj(body: usize, lang: &str) -> Arc<CachedObject> {
    let mut h = ResponseHead::new(StatusCode::OK);
    h.headers = wire(&[("Vary", "Accept-Language")]);
    let t = Times { request: 0, response: 0, initial_age: 0, lifetime: 60 };
    let meta = Meta::new(&h, &wire(&[("Accept-Language", lang)]), t, &CacheControl::default());
    Arc::new(CachedObject { meta, body: Bytes::from(vec![b'x'; body]), trailers: None })
}

fn key(i: usize) -> CacheKey {
    CacheKey::custom(format!("k{i}"))
}

fn has(s: &MemoryStore, k: &CacheKey) -> bool {
    s.lookup(k, &mut |_| true).is_some()
}

#[test]
fn bounded_in_bytes() {
    let one = obj(1000, "en").charge();
    let s = MemoryStore::new(one * 10);
    for i in 0..100 {
        assert!(s.insert(&key(i), obj(1000, "en")) || i > 0);
        assert!(s.usage().bytes <= one * 10, "{:?} after {i}", s.usage());
    }
    assert!(s.usage().objects <= 10);
    assert!(!s.insert(&key(1000), obj(one * 11, "en")), "larger than the store");
}

#[test]
fn variants_replace_and_remove() {
    let s = MemoryStore::new(1 << 20);
    let k = key(0);
    assert!(s.insert(&k, obj(10, "en")));
    assert!(s.insert(&k, obj(20, "fr")));
    assert!(s.insert(&k, obj(30, "en")), "the same variant replaces the old copy");
    assert_eq!(s.usage().objects, 2);
    let en = s.lookup(&k, &mut |o| o.meta.matches(&wire(&[("Accept-Language", "en")]))).unwrap();
    assert_eq!(en.body.len(), 30);
    assert_eq!(s.usage().bytes, obj(20, "fr").charge() + obj(30, "en").charge());
    assert!(s.remove(&k));
    assert!(!s.remove(&k));
    assert_eq!(s.usage(), Usage::default());
    assert!(!has(&s, &k));
}

#[test]
fn a_scan_does_not_flush_what_is_read_again() {
    let one = obj(1000, "en").charge();
    let s = MemoryStore::new(one * 20);
    // A working set of five keys, each read after it is stored.
    for i in 0..5 {
        s.insert(&key(i), obj(1000, "en"));
        assert!(has(&s, &key(i)));
    }
    // A scan of 200 keys read never again, with the working set read in between.
    for i in 100..300 {
        s.insert(&key(i), obj(1000, "en"));
        if i % 10 == 0 {
            for w in 0..5 {
                has(&s, &key(w));
            }
        }
    }
    for w in 0..5 {
        assert!(has(&s, &key(w)), "working-set key {w} was evicted by the scan");
    }
}

#[test]
fn a_key_evicted_once_comes_back_to_the_main_queue() {
    let one = obj(1000, "en").charge();
    let s = MemoryStore::new(one * 20);
    s.insert(&key(0), obj(1000, "en"));
    for i in 1..40 {
        s.insert(&key(i), obj(1000, "en"));
    }
    assert!(!has(&s, &key(0)), "never read: evicted from the small queue");
    s.insert(&key(0), obj(1000, "en"));
    for i in 40..60 {
        s.insert(&key(i), obj(1000, "en"));
    }
    assert!(has(&s, &key(0)), "remembered by the ghost queue: admitted to the main one");
}
