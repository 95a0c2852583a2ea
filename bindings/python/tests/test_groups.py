"""Upstream groups through the binding: picks spread by weight, a dead backend skipped by retries
and taken down by an HTTP check (listener events), figures, a freed group answering GONE, the
backend's name in logging, and a background service stopped by the server's shutdown."""

from __future__ import annotations

import http.client
import queue
import socket
import threading
import time
from typing import Any, List

import pytest

import libproxy
from libproxy import Algorithm, Group, HealthCheck, HealthEvent, ProxyError


def dead_address() -> str:
    """A loopback port nobody listens on."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return f"127.0.0.1:{port}"


class ToGroup(libproxy.Proxy):
    def __init__(self, group: Group) -> None:
        self.group = group
        self.backends: List[Any] = []
        self.logged = threading.Condition()

    def upstream_peer(self, session: libproxy.Session) -> None:
        session.pick(self.group, key=session.path)

    def logging(self, session: libproxy.Session) -> None:
        # Logging runs after the attempt ended (the backend's in-flight count dropped).
        with self.logged:
            self.backends.append(session.backend)
            self.logged.notify_all()

    def wait_logged(self, n: int) -> None:
        with self.logged:
            assert self.logged.wait_for(lambda: len(self.backends) >= n, timeout=10)


def test_a_dead_backend_is_retried_around_and_checked_down(run_proxy: Any, origin: str) -> None:
    dead = dead_address()
    g = Group("web", Algorithm.ROUND_ROBIN)
    g.add_backend(origin, weight=3)
    g.add_backend(libproxy.Peer(dead, connect_timeout_ms=500), weight=1)
    g.configure(eject_failures=1, eject_max_percent=50, max_connections=4)
    with pytest.raises(ProxyError) as e:
        g.add_backend(origin)
    assert e.value.code == ProxyError.INVALID_PARAMETER
    events: "queue.Queue[tuple]" = queue.Queue()
    g.on_health(lambda name, ev: events.put((name, ev)))
    hooks = ToGroup(g)
    p = run_proxy(hooks)
    for _ in range(20):
        status, _, _ = p.get("/x")
        assert status == 200
    # The dead backend failed once (a retry answered instead) and was ejected.
    assert events.get(timeout=10) == (dead, HealthEvent.EJECTED)
    hooks.wait_logged(20)
    f = {b.name: b for b in g.figures()}
    assert f[dead].ejected and f[dead].ejections == 1 and f[dead].failures == 1
    assert f[origin].requests == 20 and f[origin].in_flight == 0
    # Sequential requests reuse pooled connections, within the cap.
    assert 1 <= f[origin].connections <= 4 and f[dead].connections == 0
    assert hooks.backends == [origin] * 20
    g.close()
    g.close()
    with pytest.raises(libproxy.ClosedError):
        g.figures()


def test_http_check_and_background_service(origin: str) -> None:
    dead = dead_address()
    g = Group("checked", Algorithm.KETAMA)
    g.set_backends([(origin, 2), (dead, 1)])
    events: "queue.Queue[tuple]" = queue.Queue()
    g.on_health(lambda name, ev: events.put((name, ev)))
    started, stopped = threading.Event(), threading.Event()

    def background(shutdown: libproxy.Shutdown) -> None:
        started.set()
        while not shutdown.wait(1000):
            pass
        stopped.set()

    srv = libproxy.Server()
    svc = libproxy.Service("groups", listen="127.0.0.1:0")
    svc.set_hooks(ToGroup(g))
    srv.add_service(svc)
    srv.add_health_check(g, HealthCheck(probe="http", interval_ms=50, fall=1, path="/health", body=b"/health"))
    srv.add_background("bg", background)
    srv.start()
    with pytest.raises(ProxyError) as e:
        srv.add_background("late", background)
    assert e.value.code == ProxyError.WRONG_STATE
    assert started.wait(10)
    assert events.get(timeout=10) == (dead, HealthEvent.DOWN)
    healthy = {b.name: b.healthy for b in g.figures()}
    assert healthy == {origin: True, dead: False}
    srv.shutdown(2000)
    assert stopped.is_set()
    srv.close()
    g.close()


def test_a_freed_group_is_gone_for_the_library_too(run_proxy: Any, origin: str) -> None:
    g = Group("short", Algorithm.MAGLEV)
    g.set_backends([origin])
    stale = g.id
    g.close()
    assert libproxy._ffi.lib.proxy_group_free(stale) == ProxyError.GONE
    with pytest.raises(ValueError):
        HealthCheck(probe="udp")._c()


def test_dns_discovery_fills_the_group_the_proxy_picks_from(origin: str) -> None:
    port = int(origin.rsplit(":", 1)[1])
    g = Group("discovered", Algorithm.ROUND_ROBIN)
    srv = libproxy.Server()
    svc = libproxy.Service("dns", listen="127.0.0.1:0")
    svc.set_hooks(ToGroup(g))
    srv.add_service(svc)
    srv.add_dns_discovery(g, "localhost", port, interval_ms=50)
    srv.start()
    try:
        # The first round of discovery runs on the server's own thread: wait for its answer.
        deadline = time.monotonic() + 10
        while not g.figures() and time.monotonic() < deadline:
            time.sleep(0.02)
        assert f"127.0.0.1:{port}" in [b.name for b in g.figures()]
        for _ in range(4):  # localhost may also name ::1, where nobody listens: retried around
            c = http.client.HTTPConnection("127.0.0.1", svc.port, timeout=10)
            c.request("GET", "/dns")
            assert c.getresponse().status == 200
            c.close()
    finally:
        srv.close()
        g.close()
