"""examples/python/*.py run as programs (like examples/c), driven with http.client, stopped with
SIGINT (libproxy's fast stop)."""

from __future__ import annotations

import http.client
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Dict, Iterator, List, Optional, Tuple

import pytest

EXAMPLES = Path(__file__).resolve().parents[3] / "examples" / "python"


def free_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def get(port: int, path: str, headers: Optional[Dict[str, str]] = None) -> Tuple[int, Dict[str, str], bytes]:
    for _ in range(100):  # wait until the example listens
        try:
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            c.request("GET", path, headers=headers or {})
            r = c.getresponse()
            out = r.status, {k.lower(): v for k, v in r.getheaders()}, r.read()
            c.close()
            return out
        except ConnectionRefusedError:
            time.sleep(0.05)
    raise AssertionError("example did not start")


@pytest.fixture
def example() -> Iterator:
    procs: List[subprocess.Popen] = []

    def start(name: str, *args: str) -> subprocess.Popen:
        p = subprocess.Popen(
            [sys.executable, str(EXAMPLES / name), *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        procs.append(p)
        return p

    yield start
    for p in procs:
        if p.poll() is None:
            p.send_signal(signal.SIGINT)
        try:
            p.wait(15)
        except subprocess.TimeoutExpired:
            p.kill()
            raise AssertionError("example did not stop on SIGINT")


def stop(p: subprocess.Popen) -> str:
    p.send_signal(signal.SIGINT)
    out, _ = p.communicate(timeout=15)
    assert p.returncode == 0
    return out


def test_minimal_proxy_with_demo_origin(example) -> None:  # type: ignore[no-untyped-def]
    port = free_port()
    p = example("minimal_proxy.py", f"127.0.0.1:{port}")
    st, _, body = get(port, "/hello")
    assert st == 200 and body == b"hello from the libproxy demo origin, you asked for /hello\n"
    out = stop(p)
    assert "GET /hello -> 200" in out


def test_header_rewrite_auth(example, origin: str) -> None:  # type: ignore[no-untyped-def]
    port = free_port()
    example("header_rewrite_auth.py", f"127.0.0.1:{port}", origin)
    st, h, body = get(port, "/x")
    assert (st, h["www-authenticate"], body) == (401, "Bearer", b"missing or bad token\n")
    st, h, body = get(port, "/x", {"authorization": "Bearer letmein"})
    assert st == 200 and h["x-proxy"].startswith("libproxy/")
    assert b'"x-user": "letmein-holder"' in body and b"authorization" not in body


def test_async_auth(example, origin: str) -> None:  # type: ignore[no-untyped-def]
    port = free_port()
    example("async_auth.py", f"127.0.0.1:{port}", origin)
    assert get(port, "/x")[0:3:2] == (403, b"forbidden\n")
    assert get(port, "/x", {"x-token": "secret"})[0] == 200


def test_round_robin(example, origin: str) -> None:  # type: ignore[no-untyped-def]
    port = free_port()
    dead = f"127.0.0.1:{free_port()}"
    p = example("round_robin.py", f"127.0.0.1:{port}", dead, origin)
    for i in range(6):  # every second pick is the dead one: the retry goes to the next
        assert get(port, f"/{i}")[0] == 200
    p.send_signal(signal.SIGINT)
    _, err = p.communicate(timeout=15)
    assert "connect failed" in err and "retrying" in err


def test_weighted_group(example, origin: str) -> None:  # type: ignore[no-untyped-def]
    port = free_port()
    dead = f"127.0.0.1:{free_port()}"
    p = example("weighted_group.py", f"127.0.0.1:{port}", f"{origin}=3", f"{dead}=1")
    for i in range(12):  # one pick in four is the dead one: the retry goes to the origin
        assert get(port, f"/{i}")[0] == 200
    p.send_signal(signal.SIGINT)
    _, err = p.communicate(timeout=15)
    assert f"backend {dead}: ejected" in err, err
