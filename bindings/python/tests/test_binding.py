"""The Python binding over loopback with real clients (http.client; httpx when installed): hooks,
phases, peers, async hooks and resumes, lifetimes. Service options are in test_service_options.py."""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import logging
import os
import socket
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path
from typing import Any, List

import pytest

import libproxy
from libproxy import Action, Peer, Phase, Proxy, ProxyError
from proxies import ToOrigin, echo

HERE = Path(__file__).resolve().parent


def test_library_info() -> None:
    assert libproxy.version().startswith("libproxy/")
    assert libproxy.abi_version()[0] == 0
    assert libproxy.features() & 2  # PENDING
    assert libproxy.THREAD_STATE_MODE in ("hooks", "lazy")


def test_only_overridden_hooks_are_registered(origin: str) -> None:
    from libproxy._hooks import _Binding

    b = _Binding(ToOrigin(origin))
    try:
        assert [i for i, f in enumerate(b.fns) if f is not None] == [2]  # upstream_peer only
    finally:
        b.release()


def test_every_phase_in_order(run_proxy: Any, origin: str) -> None:
    seen: List[str] = []
    problems: List[str] = []
    lock = threading.Lock()

    class All(ToOrigin):
        def mark(self, s: libproxy.Session, want: Phase) -> None:
            with lock:
                seen.append(want.name.lower())
            if s.phase != want:
                problems.append(f"{want}: phase {s.phase}")

        def check_request(self, s: libproxy.Session) -> None:
            if (s.method, s.path, s.query, s.uri, s.version) != ("POST", "/p", "a=1", "/p?a=1", "HTTP/1.1"):
                problems.append(f"request accessors {(s.method, s.path, s.query, s.uri, s.version)}")
            if not (s.client_addr or "").startswith("127.0.0.1:") or not s.server_addr:
                problems.append("addresses")

        def early_request_filter(self, s):  # type: ignore[no-untyped-def]
            self.mark(s, Phase.EARLY_REQUEST_FILTER)
            self.check_request(s)
            with pytest.raises(ProxyError) as e:
                s.upstream_request_headers.get("host")
            assert e.value.code == ProxyError.WRONG_PHASE

        def request_filter(self, s):  # type: ignore[no-untyped-def]
            self.mark(s, Phase.REQUEST_FILTER)
            self.check_request(s)

        def upstream_peer(self, s):  # type: ignore[no-untyped-def]
            self.mark(s, Phase.UPSTREAM_PEER)
            assert s.retries == 0
            super().upstream_peer(s)

        def connected_to_upstream(self, s):  # type: ignore[no-untyped-def]
            self.mark(s, Phase.CONNECTED_TO_UPSTREAM)
            assert s.upstream_reused in (True, False)

        def upstream_request_filter(self, s):  # type: ignore[no-untyped-def]
            self.mark(s, Phase.UPSTREAM_REQUEST_FILTER)
            s.upstream_request_headers.set("x-phase", "upstream_request_filter")

        def request_body_filter(self, s):  # type: ignore[no-untyped-def]
            self.mark(s, Phase.REQUEST_BODY_FILTER)
            if s.body:
                s.set_body(s.body.upper())

        def upstream_response_filter(self, s):  # type: ignore[no-untyped-def]
            self.mark(s, Phase.UPSTREAM_RESPONSE_FILTER)
            assert s.status == 200
            s.response_headers.remove("content-length")  # the body length changes below

        def response_filter(self, s):  # type: ignore[no-untyped-def]
            self.mark(s, Phase.RESPONSE_FILTER)
            s.status = 201

        def upstream_response_body_filter(self, s):  # type: ignore[no-untyped-def]
            self.mark(s, Phase.UPSTREAM_RESPONSE_BODY_FILTER)

        def response_body_filter(self, s):  # type: ignore[no-untyped-def]
            self.mark(s, Phase.RESPONSE_BODY_FILTER)
            if s.end_of_stream:
                s.set_body(s.body + b"\n--filtered")

        def logging(self, s):  # type: ignore[no-untyped-def]
            self.mark(s, Phase.LOGGING)
            sm = s.summary()
            if sm.status != 201 or sm.bytes_in != 5 or s.error is not None:
                problems.append(f"summary {sm} error {s.error}")

        def request_end(self, s):  # type: ignore[no-untyped-def]
            self.mark(s, Phase.REQUEST_END)

    p = run_proxy(All(origin))
    status, headers, body = p.request("POST", "/p?a=1", {"content-type": "text/plain"}, b"hello")
    assert status == 201
    text = body.decode()
    assert text.endswith("--filtered")
    doc = json.loads(text[: text.rindex("\n--filtered")])
    assert doc["body"] == "HELLO"
    assert doc["headers"]["x-phase"] == "upstream_request_filter"
    for _ in range(100):
        if "request_end" in seen:
            break
        time.sleep(0.01)
    assert not problems, problems
    order = [x for i, x in enumerate(seen) if x not in seen[:i]]
    assert order == [
        "early_request_filter",
        "request_filter",
        "upstream_peer",
        "connected_to_upstream",
        "upstream_request_filter",
        "request_body_filter",
        "upstream_response_filter",
        "response_filter",
        "upstream_response_body_filter",
        "response_body_filter",
        "logging",
        "request_end",
    ]


def test_header_edits(run_proxy: Any, origin: str) -> None:
    got: dict = {}

    class Edit(ToOrigin):
        def request_filter(self, s):  # type: ignore[no-untyped-def]
            h = s.request_headers
            got["multi"] = h.get_all("X-Multi")
            got["first"] = h["x-multi"]
            got["missing"] = h.get("x-missing")
            got["contains"] = ("X-MULTI" in h, "nope" in h)
            got["len"] = len(h)
            got["items"] = h.items()
            h.set("x-set", "v1")
            h.add("x-set", "v2")
            h.add("x-added", b"bytes")
            assert h.remove("x-drop") is True
            assert h.remove("x-drop") is False
            del h["x-multi"]
            with pytest.raises(KeyError):
                del h["x-multi"]
            with pytest.raises(ProxyError) as e:
                h.set("x-bad", "a\r\nb")
            got["bad"] = e.value.code

        def upstream_request_filter(self, s):  # type: ignore[no-untyped-def]
            s.upstream_request_headers["x-upstream"] = "yes"

        def response_filter(self, s):  # type: ignore[no-untyped-def]
            s.response_headers.set("x-proxy", libproxy.version())
            s.response_headers.remove("x-origin")

    p = run_proxy(Edit(origin))
    c = __import__("http.client").client.HTTPConnection("127.0.0.1", p.port, timeout=10)
    c.putrequest("GET", "/h")
    c.putheader("X-Multi", "one")
    c.putheader("X-Multi", "two")
    c.putheader("X-Drop", "gone")
    c.endheaders()
    r = c.getresponse()
    body = r.read()
    assert r.status == 200
    assert r.getheader("x-proxy") == libproxy.version()
    assert r.getheader("x-origin") is None
    h = echo(body)["headers"]
    assert h["x-set"] == "v1, v2" or h["x-set"] in ("v1", "v2")  # http.server folds repeats
    assert h["x-added"] == "bytes" and h["x-upstream"] == "yes"
    assert "x-multi" not in h and "x-drop" not in h
    assert got["multi"] == ["one", "two"] and got["first"] == "one"
    assert got["missing"] is None and got["contains"] == (True, False)
    assert got["len"] >= 4 and ("x-multi", "two") in got["items"]
    assert got["bad"] == ProxyError.HEADER_INVALID
    c.close()


def test_respond(run_proxy: Any, origin: str) -> None:
    class Deny(ToOrigin):
        def request_filter(self, s):  # type: ignore[no-untyped-def]
            if s.path == "/deny":
                s.respond(403, [("x-why", "test"), ("content-type", "text/plain")], "denied\n")
            elif s.path == "/explicit":
                s.respond(418, {"x-teapot": "1"}, b"short and stout")
                return Action.RESPONDED
            elif s.path == "/bad-status":
                s.respond(99)

    p = run_proxy(Deny(origin))
    st, h, b = p.get("/deny")
    assert (st, h["x-why"], b) == (403, "test", b"denied\n")
    st, h, b = p.get("/explicit")
    assert (st, h["x-teapot"], b) == (418, "1", b"short and stout")
    assert p.get("/bad-status")[0] == 500  # ProxyError in the hook -> 500
    assert p.get("/pass")[0] == 200


def test_peer_selection_and_retry(run_proxy: Any, origin: str) -> None:
    dead = socket.socket()
    dead.bind(("127.0.0.1", 0))
    dead_addr = "127.0.0.1:%d" % dead.getsockname()[1]
    dead.close()  # nothing listens there now
    errors: List[str] = []

    class Pick(Proxy):
        def __init__(self) -> None:
            self.peers = [Peer(dead_addr, connect_timeout_ms=500), Peer(origin, connect_timeout_ms=500)]

        def upstream_peer(self, s):  # type: ignore[no-untyped-def]
            if s.path == "/direct":
                s.set_peer(origin)
            else:  # first attempt goes to the dead peer, the retry to the live one
                s.set_peer(self.peers[min(s.retries, 1)])

        def fail_to_connect(self, s):  # type: ignore[no-untyped-def]
            errors.append(s.error or "")
            s.set_retry(True)

    p = run_proxy(Pick())
    assert p.get("/direct")[0] == 200
    st, _, b = p.get("/retry")
    assert st == 200 and echo(b)["path"] == "/retry"
    assert errors and errors[0]

    class Nowhere(Proxy):
        def upstream_peer(self, s):  # type: ignore[no-untyped-def]
            s.set_peer(Peer(dead_addr, connect_timeout_ms=300))

        def fail_to_proxy(self, s):  # type: ignore[no-untyped-def]
            s.respond(503, {"x-fallback": "1"}, "upstream down")

    p2 = run_proxy(Nowhere())
    st, h, b = p2.get("/x")
    assert (st, h.get("x-fallback"), b) == (503, "1", b"upstream down")


def test_async_hook(run_proxy: Any, origin: str) -> None:
    threads: set = set()

    class AsyncAuth(ToOrigin):
        async def request_filter(self, s):  # type: ignore[no-untyped-def]
            await asyncio.sleep(0.02)
            threads.add(threading.current_thread().name)
            if s.request_headers.get("x-token") != "secret":
                s.respond(403, None, "forbidden\n")
                return None
            s.request_headers.set("x-decided-by", "asyncio")
            return Action.CONTINUE

    p = run_proxy(AsyncAuth(origin))
    st, _, b = p.get("/a", {"x-token": "secret"})
    assert st == 200 and echo(b)["headers"]["x-decided-by"] == "asyncio"
    st, _, b = p.get("/a")
    assert (st, b) == (403, b"forbidden\n")
    assert threads == {"libproxy-asyncio"}


def test_async_hook_exception_and_deadline(run_proxy: Any, origin: str, caplog: Any) -> None:
    class Slow(ToOrigin):
        async def request_filter(self, s):  # type: ignore[no-untyped-def]
            if s.path == "/raise":
                raise ValueError("async boom")
            if s.path == "/slow":
                await asyncio.sleep(5)

    p = run_proxy(Slow(origin), pending_ms=400)
    with caplog.at_level(logging.ERROR, logger="libproxy"):
        assert p.get("/raise")[0] == 500
        t0 = time.monotonic()
        assert p.get("/slow")[0] == 500
        assert time.monotonic() - t0 < 3
        assert p.get("/ok")[0] == 200
    assert "async boom" in caplog.text


def test_defer_and_resume_from_thread(run_proxy: Any, origin: str) -> None:
    results: List[Any] = []

    class Later(ToOrigin):
        def request_filter(self, s):  # type: ignore[no-untyped-def]
            d = s.defer()

            def decide() -> None:
                time.sleep(0.02)
                d.session.request_headers.set("x-decided-by", "thread")
                if d.session.path == "/no":
                    d.session.respond(403, None, "no")
                d.resume()
                with pytest.raises(ProxyError) as e:
                    d.resume()
                results.append(e.value.code)
                with pytest.raises(libproxy.ClosedError):
                    d.session.path

            threading.Thread(target=decide).start()

    p = run_proxy(Later(origin))
    st, _, b = p.get("/yes")
    assert st == 200 and echo(b)["headers"]["x-decided-by"] == "thread"
    assert p.get("/no")[0] == 403
    for _ in range(100):
        if len(results) == 2:
            break
        time.sleep(0.01)
    assert results == [ProxyError.ALREADY, ProxyError.ALREADY]


def test_hook_exception_is_500_and_logged(run_proxy: Any, origin: str, caplog: Any) -> None:
    class Boom(ToOrigin):
        def request_filter(self, s):  # type: ignore[no-untyped-def]
            if s.path == "/boom":
                raise RuntimeError("hook exploded")
            if s.path == "/garbage":
                return "not an action"
            if s.path == "/zero":
                return 0  # 0 is not an action: must fail closed, never CONTINUE

    p = run_proxy(Boom(origin))
    with caplog.at_level(logging.ERROR, logger="libproxy"):
        with concurrent.futures.ThreadPoolExecutor(16) as ex:
            paths = ["/boom", "/ok", "/garbage", "/zero"] * 25
            out = list(ex.map(lambda path: (path, p.get(path)[0]), paths))
    for path, st in out:
        assert st == (200 if path == "/ok" else 500), (path, st)
    assert "hook exploded" in caplog.text and "RuntimeError" in caplog.text


def test_use_after_close_raises(origin: str) -> None:
    kept: List[libproxy.Session] = []

    class Keep(ToOrigin):
        def request_filter(self, s):  # type: ignore[no-untyped-def]
            kept.append(s)

    srv = libproxy.Server()
    svc = libproxy.Service("t", Keep(origin), listen="127.0.0.1:0")
    port = svc.port
    with pytest.raises(ProxyError) as e:
        svc.add_tcp("not an address")
    assert e.value.code == ProxyError.INVALID_PARAMETER and "add_tcp" in str(e.value)
    srv.add_service(svc)
    with pytest.raises(libproxy.ClosedError):
        svc.set_threads(2)  # consumed by add_service
    svc.close()  # idempotent, no double free
    srv.start()
    with pytest.raises(ProxyError) as e:
        srv.start()
    assert e.value.code == ProxyError.WRONG_STATE
    import http.client

    c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    c.request("GET", "/")
    assert c.getresponse().status == 200
    c.close()
    with pytest.raises(libproxy.ClosedError):
        kept[0].path  # the callback returned: the session is gone
    srv.close()
    srv.close()
    assert srv.closed
    for call in (srv.start, srv.shutdown, lambda: srv.resume(1), lambda: srv.add_service(svc)):
        with pytest.raises(libproxy.ClosedError):
            call()
    with libproxy.Service("ctx") as s2:
        s2.add_tcp("127.0.0.1:0")
    assert s2.closed
    with libproxy.Server() as s3:
        pass
    assert s3.closed


def test_resume_errors(run_proxy: Any, origin: str) -> None:
    ids: List[int] = []

    class Ids(ToOrigin):
        def request_filter(self, s):  # type: ignore[no-untyped-def]
            ids.append(s.id)

    p = run_proxy(Ids(origin))
    assert p.get("/")[0] == 200
    # Nothing pending: WRONG_STATE while the session still finishes (logging), GONE once it ended.
    codes = []
    for _ in range(100):
        with pytest.raises(ProxyError) as e:
            p.server.resume(ids[0], Action.CONTINUE)
        codes.append(e.value.code)
        if e.value.code == ProxyError.GONE:
            break
        time.sleep(0.01)
    assert codes[-1] == ProxyError.GONE and set(codes) <= {ProxyError.GONE, ProxyError.WRONG_STATE}
    with pytest.raises(ProxyError) as e:
        p.server.resume(ids[0], Action.PENDING)
    assert e.value.code in (ProxyError.INVALID_PARAMETER, ProxyError.GONE)


def test_resume_states(run_proxy: Any, origin: str) -> None:
    """ABI 0.3 resume answers: OK once, ALREADY for a second resume of that decision (also while
    later phases run), WRONG_STATE for a live session with nothing pending, GONE after the end."""
    got: dict = {}
    later_phase = threading.Event()
    release = threading.Event()

    class States(ToOrigin):
        def request_filter(self, s):  # type: ignore[no-untyped-def]
            sid = s.id
            got["id"] = sid
            srv = got["server"]

            def decide() -> None:
                time.sleep(0.02)
                srv.resume(sid, Action.CONTINUE)  # OK (raw resume: the binding's Deferred is not used)
                try:
                    srv.resume(sid, Action.CONTINUE)
                except ProxyError as e:
                    got["second"] = e.code

            threading.Thread(target=decide).start()
            return Action.PENDING

        def response_filter(self, s):  # type: ignore[no-untyped-def]
            # A later phase that arms no decision of its own (no s.id, no defer): held here
            # (blocking a worker, for the test only) while the old decision is resumed again.
            later_phase.set()
            release.wait(5)

    p = run_proxy(States(origin))
    got["server"] = p.server
    t = threading.Thread(target=lambda: got.__setitem__("status", p.get("/")[0]))
    t.start()
    assert later_phase.wait(10)
    assert got.get("second") == ProxyError.ALREADY
    with pytest.raises(ProxyError) as e:  # still ALREADY while later phases run
        p.server.resume(got["id"], Action.CONTINUE)
    assert e.value.code == ProxyError.ALREADY
    release.set()
    t.join(10)
    assert got["status"] == 200
    for _ in range(100):
        with pytest.raises(ProxyError) as e:
            p.server.resume(got["id"], Action.CONTINUE)
        if e.value.code == ProxyError.GONE:
            break
        time.sleep(0.01)
    assert e.value.code == ProxyError.GONE


def _concurrent_http_client(port: int, n: int) -> List[int]:
    import http.client

    def one(i: int) -> int:
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        try:
            c.request("GET", f"/c/{i}", headers={"x-i": str(i)})
            r = c.getresponse()
            body = r.read()
            assert r.getheader("x-seen") == str(i)
            assert echo(body)["headers"]["x-upstream-i"] == str(i)
            return r.status
        finally:
            c.close()

    with concurrent.futures.ThreadPoolExecutor(100) as ex:
        return list(ex.map(one, range(n)))


class Concurrent(ToOrigin):
    def request_filter(self, s):  # type: ignore[no-untyped-def]
        s.request_headers.set("x-seen-i", s.request_headers["x-i"])

    def upstream_request_filter(self, s):  # type: ignore[no-untyped-def]
        s.upstream_request_headers.set("x-upstream-i", s.request_headers["x-seen-i"])

    def response_filter(self, s):  # type: ignore[no-untyped-def]
        s.response_headers.set("x-seen", s.request_headers["x-i"])


def test_1000_concurrent_requests_threads(run_proxy: Any, origin: str) -> None:
    p = run_proxy(Concurrent(origin), threads=4)
    statuses = _concurrent_http_client(p.port, 1000)
    assert statuses == [200] * 1000


def test_1000_concurrent_requests_asyncio(run_proxy: Any, origin: str) -> None:
    """1,000 requests in flight at once from one asyncio client (one connection each), every one
    through an async hook that is PENDING meanwhile."""

    class AsyncConcurrent(Concurrent):
        async def request_filter(self, s):  # type: ignore[no-untyped-def]
            await asyncio.sleep(0.05)  # all 1,000 are pending together
            Concurrent.request_filter(self, s)

    p = run_proxy(AsyncConcurrent(origin), threads=4)

    async def one(i: int, sem: asyncio.Semaphore) -> int:
        async with sem:  # bounds only the connect burst (listen backlog), not the in-flight count
            reader, writer = await asyncio.open_connection("127.0.0.1", p.port)
        writer.write(f"GET /a/{i} HTTP/1.1\r\nHost: t\r\nX-I: {i}\r\nConnection: close\r\n\r\n".encode())
        await writer.drain()
        data = await reader.read()
        writer.close()
        head, _, body = data.partition(b"\r\n\r\n")
        assert f"x-seen: {i}\r\n".encode() in head.lower() + b"\r\n", head
        assert echo(body)["headers"]["x-upstream-i"] == str(i)
        return int(head.split()[1])

    async def main() -> List[int]:
        sem = asyncio.Semaphore(256)
        return await asyncio.gather(*(one(i, sem) for i in range(1000)))

    assert asyncio.run(asyncio.wait_for(main(), 120)) == [200] * 1000


def test_httpx_client(run_proxy: Any, origin: str) -> None:
    import httpx

    class AsyncConcurrent(Concurrent):
        async def request_filter(self, s):  # type: ignore[no-untyped-def]
            await asyncio.sleep(0.001)
            Concurrent.request_filter(self, s)

    p = run_proxy(AsyncConcurrent(origin), threads=2)

    async def main() -> List[int]:
        async with httpx.AsyncClient(timeout=30) as client:

            async def one(i: int) -> int:
                r = await client.get(f"http://127.0.0.1:{p.port}/x/{i}", headers={"x-i": str(i)})
                assert r.headers["x-seen"] == str(i)
                assert r.json()["headers"]["x-upstream-i"] == str(i)
                return r.status_code

            return await asyncio.gather(*(one(i) for i in range(20)))

    assert asyncio.run(main()) == [200] * 20
    with httpx.Client(timeout=30) as c:
        r = c.get(f"http://127.0.0.1:{p.port}/sync", headers={"x-i": "7"})
        assert r.status_code == 200 and r.headers["x-seen"] == "7"


def test_worker_thread_state_persists(run_proxy: Any, origin: str) -> None:
    """With the per-worker thread state, threading.local survives between callbacks on a worker
    (with a fresh state per call it would be empty every time). By default the state comes from
    the library's thread hooks (proxy_service_set_thread_hooks): the start hook ran on the very
    thread state the callbacks use, and the stop hook runs when the server stops."""
    from libproxy import _threads

    local = threading.local()
    counts: List[int] = []
    pinned_by_hook: List[bool] = []

    class Count(ToOrigin):
        def request_filter(self, s):  # type: ignore[no-untyped-def]
            local.n = getattr(local, "n", 0) + 1
            counts.append(local.n)
            pinned_by_hook.append(getattr(_threads._tls, "gstate", None) is not None)

    assert libproxy.THREAD_STATE_MODE == "hooks"  # the default with an ABI >= 0.3 library
    starts0, stops0 = _threads.thread_hook_counts
    p = run_proxy(Count(origin), threads=1)
    for _ in range(5):
        assert p.get("/")[0] == 200
    assert max(counts) == 5, counts
    assert all(pinned_by_hook), pinned_by_hook
    assert _threads.thread_hook_counts[0] > starts0
    p.close()
    starts1, stops1 = _threads.thread_hook_counts
    assert stops1 - stops0 == starts1 - starts0  # every worker released its state


def test_thread_hooks_mode_in_subprocess(origin: str) -> None:
    """LIBPROXY_THREAD_STATE selects the mode; unset means "hooks"; "lazy" still works."""
    code = f"""
        import http.client, threading, libproxy
        from libproxy import _threads
        seen = []
        class P(libproxy.Proxy):
            def request_filter(self, s):
                seen.append(getattr(_threads._tls, "gstate", None) is not None)
            def upstream_peer(self, s):
                s.set_peer("{origin}")
        with libproxy.Server() as srv:
            svc = libproxy.Service("m", P(), listen="127.0.0.1:0", threads=1)
            port = svc.port
            srv.add_service(svc)
            srv.start()
            for _ in range(3):
                c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
                c.request("GET", "/")
                assert c.getresponse().status == 200
                c.close()
        print(libproxy.THREAD_STATE_MODE, all(seen), _threads.thread_hook_counts[0] > 0)
    """
    env = {k: v for k, v in os.environ.items() if k != "LIBPROXY_THREAD_STATE"}
    r = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], env=env, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["hooks", "True", "True"]
    r = _run_py(code, {"LIBPROXY_THREAD_STATE": "lazy"})
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["lazy", "False", "False"]


def _run_py(code: str, env_extra: dict, timeout: float = 60) -> subprocess.CompletedProcess:
    env = dict(os.environ, **env_extra)
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def test_interpreter_exit_with_running_server_does_not_hang(origin: str) -> None:
    code = f"""
        import asyncio, http.client, threading, time, libproxy

        class P(libproxy.Proxy):
            async def request_filter(self, s):
                await asyncio.sleep(3600)   # pending forever
            def upstream_peer(self, s):
                s.set_peer("{origin}")
            def logging(self, s):
                pass

        srv = libproxy.Server()
        svc = libproxy.Service("exit", P(), listen="127.0.0.1:0", threads=2)
        port = svc.port
        srv.add_service(svc)
        srv.start()

        def client():
            try:
                c = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
                c.request("GET", "/")
                c.getresponse().read()
            except Exception:
                pass
        for _ in range(4):
            threading.Thread(target=client, daemon=True).start()
        time.sleep(0.5)
        print("exiting", flush=True)
    """
    t0 = time.monotonic()
    r = _run_py(code, {}, timeout=30)
    assert r.returncode == 0, r.stderr
    assert "exiting" in r.stdout
    assert time.monotonic() - t0 < 20


def test_missing_library_error_says_what_to_do(tmp_path: Path) -> None:
    r = _run_py("import libproxy", {"LIBPROXY_PATH": str(tmp_path / "nope.so")})
    assert r.returncode != 0
    assert "ImportError" in r.stderr and "LIBPROXY_PATH" in r.stderr and "cargo build --release" in r.stderr


def test_abi_major_mismatch_is_refused(tmp_path: Path) -> None:
    src = tmp_path / "fake.c"
    src.write_text("unsigned proxy_abi_version(void) { return (1u << 16) | 0; }\n")
    so = tmp_path / "libproxy.so"
    subprocess.run(["cc", "-shared", "-fPIC", "-o", str(so), str(src)], check=True)
    r = _run_py("import libproxy", {"LIBPROXY_PATH": str(so)})
    assert r.returncode != 0
    assert "ABI 1.0" in r.stderr and "needs ABI 0" in r.stderr
    # Same major, too old a minor (no proxy_last_error, set_option or allow_upgrade): refused too.
    src.write_text("unsigned proxy_abi_version(void) { return (0u << 16) | 3; }\n")
    subprocess.run(["cc", "-shared", "-fPIC", "-o", str(so), str(src)], check=True)
    r = _run_py("import libproxy", {"LIBPROXY_PATH": str(so)})
    assert r.returncode != 0
    assert "ABI 0.3" in r.stderr and "x >= 4" in r.stderr


def test_reused_sessions_never_alias_a_kept_one(run_proxy: Any, origin: str) -> None:
    """The trampolines reuse Session objects nobody holds; one a hook kept (or a Headers view
    of it) stays closed, and every later request gets a different object."""
    kept: List[Any] = []
    seen_ids: List[int] = []

    class Keep(ToOrigin):
        def request_filter(self, s):  # type: ignore[no-untyped-def]
            seen_ids.append(id(s))
            if s.path == "/keep":
                kept.append(s)
            elif s.path == "/keep-headers":
                kept.append(s.request_headers)

    p = run_proxy(Keep(origin), threads=1)
    for path in ("/a", "/keep", "/b", "/keep-headers", "/c", "/d"):
        assert p.get(path)[0] == 200
    with pytest.raises(libproxy.ClosedError):
        kept[0].path
    with pytest.raises(libproxy.ClosedError):
        kept[1].get("host")
    assert id(kept[0]) not in seen_ids[2:]  # never handed out again
    assert len(set(seen_ids)) < len(seen_ids)  # unshared ones were reused
