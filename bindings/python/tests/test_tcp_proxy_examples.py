"""examples/{c,python,go}/tcp_proxy relay a TCP connection byte for byte (a half-close comes back
as EOF) and, given a trusted range, read the PROXY v1 header a client sends: the logging hook's
line names the address the header carried and the bytes each way."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
from pathlib import Path
from typing import Iterator, List

import pytest

from test_examples import free_port

ROOT = Path(__file__).resolve().parents[3]
PAYLOAD = bytes(range(256)) * 64  # 16 KiB


@pytest.fixture(scope="module")
def echo() -> Iterator[str]:
    """Echoes each connection until its EOF, then closes it."""
    ls = socket.socket()
    ls.bind(("127.0.0.1", 0))
    ls.listen(16)

    def serve(c: socket.socket) -> None:
        with c:
            while data := c.recv(65536):
                c.sendall(data)

    def accept() -> None:
        while True:
            try:
                c, _ = ls.accept()
            except OSError:
                return
            threading.Thread(target=serve, args=(c,), daemon=True).start()

    threading.Thread(target=accept, daemon=True).start()
    yield "127.0.0.1:%d" % ls.getsockname()[1]
    ls.close()


def run(cmd: List[str], upstream: str) -> None:
    port = free_port()
    p = subprocess.Popen([*cmd, f"127.0.0.1:{port}", upstream, "127.0.0.1/32"], stdout=subprocess.PIPE, text=True)
    try:
        assert p.stdout is not None
        line = p.stdout.readline()
        assert line.startswith(f"relaying port {port} to {upstream}"), line
        with socket.create_connection(("127.0.0.1", port), timeout=10) as c:
            c.sendall(b"PROXY TCP4 203.0.113.7 127.0.0.1 5555 80\r\n" + PAYLOAD)
            c.shutdown(socket.SHUT_WR)
            got = bytearray()
            while data := c.recv(65536):
                got += data
        assert bytes(got) == PAYLOAD
        line = p.stdout.readline()
        assert line == f"203.0.113.7:5555 up={len(PAYLOAD)} down={len(PAYLOAD)} end=closed\n", line
    finally:
        p.send_signal(signal.SIGINT)
        p.wait(15)


def test_python_tcp_proxy(echo: str) -> None:
    run([sys.executable, str(ROOT / "examples" / "python" / "tcp_proxy.py")], echo)


def test_c_tcp_proxy(echo: str) -> None:
    found = [b for b in (ROOT / "examples" / "c" / "build" / p / "tcp_proxy" for p in ("debug", "release")) if b.exists()]
    if not found:
        # tests/run-all.sh builds the C examples before these tests, and says it must not skip.
        assert not os.environ.get("LIBPROXY_REQUIRE_PROMETHEUS"), "examples/c not built"
        pytest.skip("examples/c not built (make -C examples/c)")
    run([str(found[0])], echo)


def test_go_tcp_proxy(echo: str, tmp_path: Path) -> None:
    go = shutil.which("go")
    if go is None:
        assert not os.environ.get("LIBPROXY_REQUIRE_PROMETHEUS"), "go not on PATH"
        pytest.skip("go not on PATH (tests/ensure-go.sh)")
    binary = tmp_path / "tcp_proxy"
    subprocess.run([go, "build", "-o", str(binary), "./tcp_proxy"], cwd=ROOT / "examples" / "go", check=True)
    run([str(binary)], echo)
