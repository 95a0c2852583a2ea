"""Compression through the binding over loopback: service settings, per-request changes from a
hook, and httpx (gzip, brotli, zstd) decoding bodies byte-identical to the origin's over HTTP/1.1
and HTTP/2 (h2c by prior knowledge), from 1 byte to 50 MiB."""

from __future__ import annotations

import threading
from typing import Any, List

import httpx
import pytest

import libproxy
from libproxy import Compression, Encoding, ProxyError
from origin import gen_body
from proxies import ToOrigin

CODINGS = ["gzip", "br", "zstd"]


def compress_all(svc: libproxy.Service) -> None:
    svc.set_compression(Compression.ENABLED, 1)
    svc.set_compression(Compression.MIN_LENGTH, 0)


@pytest.mark.parametrize("http2", [False, True], ids=["h1", "h2"])
def test_httpx_decodes_byte_identical_bodies(run_proxy: Any, origin: str, http2: bool) -> None:
    p = run_proxy(ToOrigin(origin), configure=compress_all)
    with httpx.Client(http1=not http2, http2=http2, timeout=120) as c:
        for coding in CODINGS:
            # 50 MiB once per algorithm and protocol; the small sizes cover the edges.
            for n in (1, 1024, 1 << 20, 50 << 20):
                r = c.get(f"http://127.0.0.1:{p.port}/gen/{n}", headers={"accept-encoding": coding})
                assert r.status_code == 200
                assert r.http_version == ("HTTP/2" if http2 else "HTTP/1.1")
                assert r.headers["content-encoding"] == coding, (n, r.headers)
                assert "content-length" not in r.headers
                assert r.headers["vary"] == "Accept-Encoding"
                body = r.content
                assert len(body) == n and body == gen_body(n), (coding, n)


class PerRequest(ToOrigin):
    """``?off`` turns compression off for the request, ``?gzip9`` keeps gzip at level 9 only;
    ``logging`` records what a late change answers."""

    def __init__(self, origin: str) -> None:
        super().__init__(origin)
        self.late: List[int] = []
        self.lock = threading.Lock()

    def request_filter(self, session: libproxy.Session) -> None:
        if session.query == "off":
            session.set_compression(Compression.ENABLED, 0)
        if session.query == "gzip9":
            session.set_compression(Compression.ALGORITHMS, Encoding.GZIP)
            session.set_compression(Compression.LEVEL_GZIP, 9)

    def logging(self, session: libproxy.Session) -> None:
        try:
            session.set_compression(Compression.ENABLED, 1)
            code = 0
        except ProxyError as e:
            code = e.code
        with self.lock:
            self.late.append(code)


def test_service_and_request_settings(run_proxy: Any, origin: str) -> None:
    hooks = PerRequest(origin)

    def configure(svc: libproxy.Service) -> None:
        with pytest.raises(ProxyError) as e:
            svc.set_compression(Compression.LEVEL_BROTLI, 12)
        assert e.value.code == ProxyError.INVALID_PARAMETER
        with pytest.raises(ProxyError):
            svc.set_compression_types("nonsense")
        svc.set_compression_types("text/*")
        svc.set_compression(Compression.ENABLED, 1)
        svc.set_compression(Compression.ALGORITHMS, Encoding.BROTLI | Encoding.GZIP)

    p = run_proxy(hooks, configure=configure)
    ae = {"accept-encoding": "gzip, br, zstd"}
    st, h, _ = p.get("/gen/5000", ae)
    assert (st, h.get("content-encoding")) == (200, "br")  # zstd is not offered by the service
    st, h, body = p.get("/gen/5000?off", ae)
    assert (st, h.get("content-encoding"), body) == (200, None, gen_body(5000))
    st, h, _ = p.get("/gen/5000?gzip9", ae)
    assert h.get("content-encoding") == "gzip"
    # JSON (the echo) is outside the service's list.
    st, h, _ = p.get("/echo", ae)
    assert h.get("content-encoding") is None
    assert hooks.late and all(c == ProxyError.WRONG_PHASE for c in hooks.late), hooks.late
