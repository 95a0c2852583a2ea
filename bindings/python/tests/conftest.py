"""Fixtures: a small threaded HTTP/1.1 origin (http.server) that echoes what it received, and a
helper that starts a libproxy server with given hooks on 127.0.0.1:0."""

from __future__ import annotations

import http.client
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Dict, Iterator, Optional, Tuple

import pytest

import libproxy


class _Echo(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def _answer(self) -> None:
        n = int(self.headers.get("content-length") or 0)
        body = self.rfile.read(n) if n else b""
        doc = {
            "method": self.command,
            "path": self.path,
            "headers": {k.lower(): v for k, v in self.headers.items()},
            "body": body.decode("latin-1"),
        }
        out = json.dumps(doc).encode()
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("x-origin", "yes")
        self.send_header("content-length", str(len(out)))
        self.end_headers()
        self.wfile.write(out)

    do_GET = do_POST = do_PUT = do_DELETE = _answer

    def log_message(self, *a: Any) -> None:  # quiet
        pass


class _Origin(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 1024


@pytest.fixture(scope="session")
def origin() -> Iterator[str]:
    srv = _Origin(("127.0.0.1", 0), _Echo)
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    yield f"127.0.0.1:{srv.server_address[1]}"
    srv.shutdown()
    srv.server_close()


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
