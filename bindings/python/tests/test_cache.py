"""The HTTP cache through the binding over loopback with httpx: a miss then hits, concurrent
misses making one upstream request, the four cache hooks, the status in logging, purge, usage,
and settings refused once the cache is attached. The origin's ``/cache/...`` answers ``n=K``, K
the requests that reached it for that target."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any, List

import httpx
import pytest

import libproxy
from libproxy import Cache, CacheDecision, CacheSetting, CacheStatus, ProxyError
from proxies import ToOrigin

MAX_AGE = {"x-res-cache-control": "max-age=60"}


class CacheHooks(ToOrigin):
    """``?skip`` bypasses, ``?expire`` expires a hit, ``?force`` stores for 60 s, ``?shared`` uses
    one key for every such path; logging records each request's cache status."""

    def __init__(self, origin: str) -> None:
        super().__init__(origin)
        self.statuses: List[int] = []
        self.lock = threading.Lock()

    def request_cache_filter(self, session: libproxy.Session) -> None:
        if session.query == "skip":
            session.set_cache(CacheDecision.BYPASS, 1)

    def cache_key_callback(self, session: libproxy.Session) -> None:
        if session.query == "shared":
            session.set_cache_key(b"shared")

    def cache_hit_filter(self, session: libproxy.Session) -> None:
        if session.query == "expire":
            session.set_cache(CacheDecision.EXPIRE, 1)

    def response_cache_filter(self, session: libproxy.Session) -> None:
        if session.query == "force":
            session.set_cache(CacheDecision.STORE, 1)
            session.set_cache(CacheDecision.TTL, 60)

    def logging(self, session: libproxy.Session) -> None:
        with self.lock:
            self.statuses.append(session.cache_status)


def with_cache(cache: Cache) -> Any:
    return lambda svc: svc.set_cache(cache)


def test_miss_then_hit_and_purge(run_proxy: Any, origin: str) -> None:
    cache = Cache(1 << 20, status_header=True)
    hooks = CacheHooks(origin)
    p = run_proxy(hooks, configure=with_cache(cache))
    url = f"http://127.0.0.1:{p.port}/cache/a"
    with httpx.Client() as c:
        first = c.get(url, headers=MAX_AGE)
        second = c.get(url, headers=MAX_AGE)
        assert (first.headers["x-cache-status"], second.headers["x-cache-status"]) == ("MISS", "HIT")
        assert first.text == second.text
        assert second.headers["age"].isdigit()  # seconds since the origin answered
        assert cache.usage()[1] == 1
        assert cache.purge(f"http://127.0.0.1:{p.port}/cache/a")
        assert not cache.purge("http://nothing/")
        third = c.get(url, headers=MAX_AGE)
        assert third.headers["x-cache-status"] == "MISS" and third.text != first.text
        c.post(url)  # an unsafe method invalidates the target
        assert c.get(url, headers=MAX_AGE).headers["x-cache-status"] == "MISS"
    assert hooks.statuses[:3] == [CacheStatus.MISS, CacheStatus.HIT, CacheStatus.MISS]
    assert CacheStatus.BYPASS in hooks.statuses


def test_concurrent_misses_make_one_upstream_request(run_proxy: Any, origin: str) -> None:
    cache = Cache(1 << 20)
    p = run_proxy(ToOrigin(origin), configure=with_cache(cache), threads=4)
    url = f"http://127.0.0.1:{p.port}/cache/stampede"

    def one(_: int) -> str:
        with httpx.Client(timeout=30) as c:
            return c.get(url, headers=MAX_AGE).text

    with ThreadPoolExecutor(50) as pool:
        bodies = set(pool.map(one, range(50)))
    assert bodies == {"n=1"}


def test_the_cache_hooks(run_proxy: Any, origin: str) -> None:
    cache = Cache(1 << 20, status_header=True)
    p = run_proxy(CacheHooks(origin), configure=with_cache(cache))
    base = f"http://127.0.0.1:{p.port}"
    with httpx.Client() as c:

        def status(path: str, headers: Any = None) -> str:
            return c.get(base + path, headers=headers or {}).headers["x-cache-status"]

        assert status("/cache/h?skip", MAX_AGE) == "BYPASS"
        assert [status("/cache/e?expire", MAX_AGE) for _ in range(2)] == ["MISS", "EXPIRED"]
        assert [status("/cache/f?force") for _ in range(2)] == ["MISS", "HIT"]
        assert status("/cache/one?shared", MAX_AGE) == "MISS"
        r = c.get(base + "/cache/two?shared")
        assert r.headers["x-cache-status"] == "HIT" and r.text == "n=1"


def test_settings(run_proxy: Any, origin: str) -> None:
    with pytest.raises(ProxyError) as e:
        Cache(0)
    assert e.value.code == libproxy._ffi.PROXY_INVALID_PARAMETER
    cache = Cache(1 << 20, max_object=10, lock_timeout_ms=100)
    with pytest.raises(ProxyError):
        cache.set(CacheSetting.STATUS_HEADER, 2)
    run_proxy(ToOrigin(origin), configure=with_cache(cache))
    with pytest.raises(ProxyError) as e:
        cache.set(CacheSetting.ALLOW_SET_COOKIE, 1)
    assert e.value.code == libproxy._ffi.PROXY_WRONG_PHASE
    cache.close()
    cache.close()
