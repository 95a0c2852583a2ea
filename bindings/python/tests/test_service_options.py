"""Service options through the binding over loopback: connection caps, the underscore-field
policy, request body pacing and buffering, the upgrade allowlist, and errors carrying their cause."""

from __future__ import annotations

import http.client
import json
import os
import socket
import time
from pathlib import Path
from typing import Any, Tuple

import pytest

import libproxy
from libproxy import Proxy, ProxyError
from proxies import ToOrigin

@pytest.mark.parametrize("cap", [libproxy.Limit.MAX_CONNECTIONS, libproxy.Limit.MAX_CONNECTIONS_PER_LISTENER])
def test_connection_cap_refuses_fast_and_serves_the_open_ones(run_proxy: Any, origin: str, cap: Any) -> None:
    p = run_proxy(ToOrigin(origin), limits={cap: 2})
    open_ones = [http.client.HTTPConnection("127.0.0.1", p.port, timeout=10) for _ in range(2)]
    for c in open_ones:  # kept alive: each holds a slot
        c.request("GET", "/a")
        r = c.getresponse()
        assert r.status == 200
        r.read()
    extra = socket.create_connection(("127.0.0.1", p.port), timeout=5)
    extra.sendall(b"GET /a HTTP/1.1\r\nHost: a\r\n\r\n")
    try:
        got = extra.recv(100)
    except ConnectionResetError:
        got = b""
    assert got == b"", "a connection past the cap is closed unanswered"
    extra.close()
    for c in open_ones:
        c.request("GET", "/b")
        r = c.getresponse()
        assert r.status == 200
        r.read()
        c.close()


@pytest.mark.parametrize(
    "mode", [None, libproxy.Underscore.DROP, libproxy.Underscore.REFUSE, libproxy.Underscore.FORWARD]
)
def test_underscore_fields_knob(run_proxy: Any, origin: str, mode: Any) -> None:
    """A ``Content_Length`` field (read as Content-Length by CGI/WSGI-style origins) never reaches
    the origin by default or with DROP, is a 400 with REFUSE, and goes on as sent with FORWARD."""

    def configure(svc: libproxy.Service) -> None:
        if mode is not None:
            svc.set_option(libproxy.Option.UNDERSCORE_FIELDS, mode)

    p = run_proxy(ToOrigin(origin), configure=configure)
    fields = {"Content_Length": "40", "Transfer_Encoding": "chunked", "X-Keep": "k"}
    st, _, body = p.request("POST", "/u", headers=fields, body=b"hello")
    if mode == libproxy.Underscore.REFUSE:
        assert st == 400
        return
    assert st == 200, body
    got = json.loads(body)
    assert got["body"] == "hello"
    assert got["headers"]["x-keep"] == "k"
    assert got["headers"]["content-length"] == "5"
    if mode == libproxy.Underscore.FORWARD:
        assert (got["headers"]["content_length"], got["headers"]["transfer_encoding"]) == ("40", "chunked")
    else:
        assert "content_length" not in got["headers"] and "transfer_encoding" not in got["headers"], got


def test_set_option_refuses_unknown_options_and_values() -> None:
    svc = libproxy.Service("t")
    try:
        for which, value in [(999, 0), (libproxy.Option.UNDERSCORE_FIELDS, 3)]:
            with pytest.raises(ProxyError) as e:
                svc.set_option(which, value)
            assert e.value.code == ProxyError.INVALID_PARAMETER
        svc.set_option(libproxy.Option.UNDERSCORE_FIELDS, libproxy.Underscore.FORWARD)
    finally:
        svc.close()


def _slow_body_status(port: int) -> Tuple[int, float]:
    """POSTs a 1,000-byte body one byte every 50 ms and returns the status the proxy answers with
    while the body is still trickling in, and how long that took."""
    started = time.monotonic()
    with socket.create_connection(("127.0.0.1", port), timeout=10) as c:
        c.sendall(b"POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 1000\r\n\r\n")
        c.setblocking(False)
        got = b""
        while b"\r\n" not in got:
            try:
                got += c.recv(1024)
            except BlockingIOError:
                c.send(b"x")
                time.sleep(0.05)
        return int(got.split(b" ")[1]), time.monotonic() - started


@pytest.mark.parametrize(
    "configure",
    [
        pytest.param(lambda svc: svc.set_timeout(libproxy.Timeout.BODY_TOTAL, 400), id="total"),
        pytest.param(
            lambda svc: (
                svc.set_limit(libproxy.Limit.BODY_MIN_RATE, 200),
                svc.set_timeout(libproxy.Timeout.BODY_RATE_GRACE, 300),
            ),
            id="min-rate",
        ),
    ],
)
def test_slow_request_body_gets_408(run_proxy: Any, origin: str, configure: Any) -> None:
    class To(Proxy):
        def upstream_peer(self, s):  # type: ignore[no-untyped-def]
            s.set_peer(origin)

    p = run_proxy(To(), configure=configure)
    status, took = _slow_body_status(p.port)
    assert status == 408 and took < 5
    assert p.request("POST", "/echo", body=b"y" * 10_000)[0] == 200  # a body that keeps pace passes


def test_request_buffering(run_proxy: Any, origin: str) -> None:
    class To(Proxy):
        def upstream_peer(self, s):  # type: ignore[no-untyped-def]
            s.set_peer(origin)

    p = run_proxy(To(), configure=lambda svc: svc.set_limit(libproxy.Limit.REQUEST_BUFFER, 1000))
    # A chunked body reaches the origin (which reads only Content-Length bodies) whole.
    c = http.client.HTTPConnection("127.0.0.1", p.port, timeout=10)
    c.request("POST", "/echo", body=iter([b"hello", b" world"]), encode_chunked=True)
    doc = json.loads(c.getresponse().read())
    c.close()
    assert doc["body"] == "hello world" and doc["headers"]["content-length"] == "11"
    assert "transfer-encoding" not in doc["headers"]
    assert p.request("POST", "/echo", body=b"y" * 1001)[0] == 413


@pytest.mark.parametrize("allow", [False, True])
def test_upgrade_allowlist_knob(run_proxy: Any, origin: str, allow: bool) -> None:
    """An ``Upgrade: foo/1`` offer reaches the origin only once ``allow_upgrade("foo")``; without
    it the request goes up plain (no Upgrade, no ``upgrade`` connection option). ``h2c`` never."""

    def configure(svc: libproxy.Service) -> None:
        if allow:
            svc.allow_upgrade("foo")

    p = run_proxy(ToOrigin(origin), configure=configure)
    fields = {"Connection": "Upgrade, HTTP2-Settings", "Upgrade": "h2c, foo/1", "HTTP2-Settings": "AAMAAABkAAQAAP__"}
    st, _, body = p.request("GET", "/up", headers=fields)
    assert st == 200, body
    got = json.loads(body)["headers"]
    assert "http2-settings" not in got, got
    if allow:
        assert got["upgrade"] == "foo/1", got
    else:
        assert "upgrade" not in got and "upgrade" not in got.get("connection", "").lower(), got


def test_allow_upgrade_refuses_h2c_and_non_tokens() -> None:
    svc = libproxy.Service("t")
    try:
        for bad in ["h2c", "H2", "not a token", ""]:
            with pytest.raises(ProxyError) as e:
                svc.allow_upgrade(bad)
            assert e.value.code == ProxyError.INVALID_PARAMETER, bad
        svc.deny_upgrade("websocket")
        with pytest.raises(ProxyError) as e:
            svc.deny_upgrade("websocket")
        assert e.value.code == ProxyError.NOT_FOUND
    finally:
        svc.close()


def test_errors_carry_their_cause(tmp_path: Path) -> None:
    """A failing call's ProxyError has the library's cause as detail and in its text: an address
    in use and a permission refusal are told apart by the OS error, not only by the code."""
    busy = socket.socket()
    busy.bind(("127.0.0.1", 0))
    busy.listen(1)
    addr = "127.0.0.1:%d" % busy.getsockname()[1]
    with libproxy.Service("errors") as svc:
        with pytest.raises(ProxyError) as e:
            svc.add_tcp(addr)
        assert e.value.code == ProxyError.IO
        assert e.value.detail is not None and addr in e.value.detail
        assert os.strerror(98) in e.value.detail and os.strerror(98) in str(e.value)
        with pytest.raises(ProxyError) as e:
            svc.add_tcp("not an address")
        assert e.value.code == ProxyError.INVALID_PARAMETER
        assert e.value.detail is not None and "not an address" in e.value.detail
        if os.geteuid() != 0:  # root may bind anywhere
            ro = tmp_path / "ro"
            ro.mkdir()
            ro.chmod(0o500)
            with pytest.raises(ProxyError) as e:
                svc.add_uds(str(ro / "s.sock"))
            assert e.value.code == ProxyError.IO
            assert e.value.detail is not None and os.strerror(13) in e.value.detail
            assert os.strerror(98) not in e.value.detail
    busy.close()
