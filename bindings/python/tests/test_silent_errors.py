"""Mistakes in hooks are loud (issue 10, item 10): a misspelled hook name is refused at
registration, a second respond raises ALREADY, respond + CONTINUE and an upstream_peer without a
peer are logged at WARNING with their cause, and a response the origin cuts short is truncated in
the logging summary."""

from __future__ import annotations

import logging
import socket
import threading
import time
from typing import Any, List, Optional

import pytest

import libproxy
from libproxy import Action, Peer, Proxy, ProxyError
from proxies import ToOrigin


def wait_for(cond: Any, limit: float = 5.0) -> bool:
    end = time.monotonic() + limit
    while time.monotonic() < end:
        if cond():
            return True
        time.sleep(0.01)
    return bool(cond())


@pytest.mark.parametrize(
    "bad,good", [("upstream_pear", "upstream_peer"), ("requestfilter", "request_filter"), ("Logging", "logging")]
)
def test_misspelled_hook_is_refused_at_registration(bad: str, good: str) -> None:
    Hooks = type("Hooks", (Proxy,), {bad: lambda self, s: None})
    svc = libproxy.Service("t")
    try:
        with pytest.raises(ValueError) as e:
            svc.set_hooks(Hooks())
        assert bad in str(e.value) and repr(good) in str(e.value)
    finally:
        svc.close()
    with pytest.raises(ValueError, match=bad):
        libproxy.Service("t2", Hooks())


def test_helper_methods_are_not_hooks(origin: str, run_proxy: Any) -> None:
    class Helpers(ToOrigin):
        def pick_peer(self) -> Peer:
            return self.peer

        def check_auth(self, s: libproxy.Session) -> bool:
            return True

    assert run_proxy(Helpers(origin)).get("/x")[0] == 200


def test_second_respond_raises_already(origin: str, run_proxy: Any) -> None:
    seen: List[Optional[int]] = []

    class Twice(ToOrigin):
        def request_filter(self, s: libproxy.Session) -> None:
            s.respond(401, {"x-first": "1"}, "first\n")
            try:
                s.respond(200, None, "second\n")
                seen.append(None)
            except ProxyError as e:
                seen.append(e.code)

    st, h, body = run_proxy(Twice(origin)).get("/x")
    assert (st, h.get("x-first"), body) == (401, "1", b"first\n")
    assert seen == [ProxyError.ALREADY]


def test_respond_then_continue_sends_the_response_and_warns(origin: str, run_proxy: Any, caplog: Any) -> None:
    class Wrong(ToOrigin):
        def request_filter(self, s: libproxy.Session) -> Action:
            s.respond(403, None, "denied\n")
            return Action.CONTINUE

    with caplog.at_level(logging.WARNING, logger="libproxy"):
        p = run_proxy(Wrong(origin))
        st, _, body = p.get("/secret")
        assert wait_for(lambda: "after proxy_session_respond" in caplog.text)
    assert (st, body) == (403, b"denied\n")
    rec = [r for r in caplog.records if "after proxy_session_respond" in r.getMessage()]
    assert rec[0].levelno == logging.WARNING
    assert "request_filter" in rec[0].getMessage() and "/secret" in rec[0].getMessage()


def test_upstream_peer_without_a_peer_is_500_with_page_and_warning(run_proxy: Any, caplog: Any) -> None:
    errors: List[Optional[str]] = []

    class NoPeer(Proxy):
        def upstream_peer(self, s: libproxy.Session) -> None:
            pass  # forgot set_peer

        def logging(self, s: libproxy.Session) -> None:
            errors.append(s.error)

    with caplog.at_level(logging.WARNING, logger="libproxy"):
        p = run_proxy(NoPeer())
        st, h, body = p.get("/x")
        assert wait_for(lambda: "without proxy_session_set_peer" in caplog.text)
    assert (st, body) == (500, b"500 Internal Server Error: the request could not be handled\n")
    assert h["content-length"] == str(len(body)) and h["content-type"].startswith("text/plain")
    rec = [r for r in caplog.records if "without proxy_session_set_peer" in r.getMessage()]
    assert rec[0].levelno == logging.WARNING and "upstream_peer" in rec[0].getMessage()
    assert wait_for(lambda: len(errors) == 1)
    assert errors[0] is not None and "proxy_session_set_peer" in errors[0]


def cutting_origin(total: int, sent: int) -> str:
    """An origin that announces ``total`` body bytes, sends ``sent`` and closes."""
    ls = socket.socket()
    ls.bind(("127.0.0.1", 0))
    ls.listen(8)

    def serve() -> None:
        while True:
            c, _ = ls.accept()
            with c:
                c.recv(65536)
                c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % total + b"a" * sent)

    threading.Thread(target=serve, daemon=True).start()
    return f"127.0.0.1:{ls.getsockname()[1]}"


def test_cut_response_is_truncated_in_the_summary(run_proxy: Any) -> None:
    logged: List[Any] = []

    class Log(ToOrigin):
        def logging(self, s: libproxy.Session) -> None:
            logged.append((s.summary(), s.error))

    p = run_proxy(Log(cutting_origin(1000, 500)))
    c = socket.create_connection(("127.0.0.1", p.port), timeout=10)
    with c:
        c.sendall(b"GET /cut HTTP/1.1\r\nHost: t\r\n\r\n")
        got = b""
        while True:
            chunk = c.recv(65536)
            if not chunk:
                break
            got += chunk
    assert got.startswith(b"HTTP/1.1 200") and got.endswith(b"a" * 500)
    assert wait_for(lambda: len(logged) == 1)
    sm, err = logged[0]
    assert (sm.status, sm.bytes_out, sm.truncated, sm.error_status) == (200, 500, True, 502)
    assert err is not None and err.startswith("response truncated (200 sent, 500 body bytes)")


def test_no_upstream_peer_hook_is_500_and_warned(run_proxy: Any, caplog: Any) -> None:
    class FilterOnly(Proxy):
        def request_filter(self, s: libproxy.Session) -> None:
            if s.path == "/local":
                s.respond(200, None, "here\n")

    with caplog.at_level(logging.WARNING, logger="libproxy"):
        p = run_proxy(FilterOnly())
        assert p.get("/local")[0] == 200
        assert p.get("/x")[:3:2] == (500, b"500 Internal Server Error: the request could not be handled\n")
        assert wait_for(lambda: "no upstream_peer callback is set" in caplog.text)
