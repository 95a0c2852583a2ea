"""Fixtures: a small threaded HTTP/1.1 origin (http.server) that echoes what it received, and a
helper that starts a libproxy server with given hooks on 127.0.0.1:0."""

from __future__ import annotations

import http.client
import subprocess
import sys
from pathlib import Path
from typing import Any, Dict, Iterator, Optional, Tuple

import pytest

import libproxy


ORIGIN_SCRIPT = Path(__file__).resolve().parent / "origin.py"


@pytest.fixture(scope="session")
def origin() -> Iterator[str]:
    """The echo origin, in its own process so that its threads do not compete with the hooks
    (and the clients) for this process's GIL."""
    p = subprocess.Popen([sys.executable, str(ORIGIN_SCRIPT)], stdout=subprocess.PIPE, text=True)
    assert p.stdout is not None
    port = int(p.stdout.readline())
    yield f"127.0.0.1:{port}"
    p.terminate()
    p.wait(10)


class Running:
    """A started libproxy server with one service; ``get``/``request`` talk to it."""

    def __init__(self, hooks: Any, threads: int = 2, pending_ms: Optional[int] = None) -> None:
        self.server = libproxy.Server()
        svc = libproxy.Service("test", listen="127.0.0.1:0", threads=threads)
        if pending_ms:
            svc.set_timeout(libproxy.Timeout.PENDING, pending_ms)
        svc.set_hooks(hooks)
        self.port = svc.port
        self.server.add_service(svc)
        self.server.start()

    def request(
        self, method: str, path: str, headers: Optional[Dict[str, str]] = None, body: Optional[bytes] = None
    ) -> Tuple[int, Dict[str, str], bytes]:
        c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        try:
            c.request(method, path, body=body, headers=headers or {})
            r = c.getresponse()
            return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read()
        finally:
            c.close()

    def get(self, path: str = "/", headers: Optional[Dict[str, str]] = None) -> Tuple[int, Dict[str, str], bytes]:
        return self.request("GET", path, headers)

    def close(self) -> None:
        self.server.close()


@pytest.fixture
def run_proxy() -> Iterator[Any]:
    started = []

    def start(hooks: Any, **kw: Any) -> Running:
        r = Running(hooks, **kw)
        started.append(r)
        return r

    yield start
    for r in started:
        r.close()
