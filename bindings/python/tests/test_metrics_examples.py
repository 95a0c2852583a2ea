"""examples/{python,c}/metrics_counter define a labelled counter in a hook; it appears on the
metrics endpoint with the built-in figures. (The Go one is tested in bindings/go.)"""

from __future__ import annotations

import http.client
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import List

import pytest

from test_examples import free_port, get

ROOT = Path(__file__).resolve().parents[3]


def scrape(port: int) -> str:
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    c.request("GET", "/metrics")
    r = c.getresponse()
    assert r.status == 200 and r.getheader("content-type", "").startswith("text/plain; version=0.0.4")
    return r.read().decode()


def run(cmd: List[str], origin: str) -> None:
    port = free_port()
    p = subprocess.Popen([*cmd, f"127.0.0.1:{port}", origin, "127.0.0.1:0"], stdout=subprocess.PIPE, text=True)
    try:
        assert p.stdout is not None
        line = p.stdout.readline()
        assert line.startswith("metrics on port "), line
        metrics = int(line.split()[-1])
        for i in range(3):
            assert get(port, f"/{i}")[0] == 200
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        c.request("DELETE", "/x")
        assert c.getresponse().status == 200
        text = scrape(metrics)
        assert 'app_requests_by_method_total{method="GET"} 3\n' in text, text
        assert 'app_requests_by_method_total{method="DELETE"} 1\n' in text, text
        assert 'libproxy_requests_total{service="counted",method="GET",status="2xx"} 3\n' in text, text
    finally:
        p.send_signal(signal.SIGINT)
        p.wait(15)


def test_python_metrics_counter(origin: str) -> None:
    run([sys.executable, str(ROOT / "examples" / "python" / "metrics_counter.py")], origin)


def test_c_metrics_counter(origin: str) -> None:
    found = [ROOT / "examples" / "c" / "build" / p / "metrics_counter" for p in ("debug", "release")]
    found = [b for b in found if b.exists()]
    if not found:
        # tests/run-all.sh builds the C examples before these tests, and says it must not skip.
        assert not os.environ.get("LIBPROXY_REQUIRE_PROMETHEUS"), "examples/c not built"
        pytest.skip("examples/c not built (make -C examples/c)")
    run([str(found[0])], origin)
