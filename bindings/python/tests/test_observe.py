"""Observability from Python: a labelled counter and the built-in figures on /metrics, the request
id in a hook, a JSON access log with rotation (no line lost), and the host's replacement of the
proxy's own error pages (a 502, and a 400 refused before any hook)."""

from __future__ import annotations

import http.client
import json
import os
import socket
import tempfile
from typing import List, Optional, Tuple

import libproxy

from test_examples import free_port


def raw(port: int, req: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(req)
        out = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                return out
            out += chunk


def get(port: int, path: str) -> Tuple[int, dict, bytes]:
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    c.request("GET", path)
    r = c.getresponse()
    out = r.status, {k.lower(): v for k, v in r.getheaders()}, r.read()
    c.close()
    return out


def test_metrics_logs_ids_and_error_pages(origin: str) -> None:
    dead = f"127.0.0.1:{free_port()}"
    ids: List[str] = []

    class Hooks(libproxy.Proxy):
        def __init__(self, hits: libproxy.Metric) -> None:
            self.hits = hits

        def upstream_peer(self, s: libproxy.Session) -> None:
            self.hits.labels(s.path).add(1)
            ids.append(s.request_id or "")
            s.set_peer(libproxy.Peer(dead if s.path == "/dead" else origin))

    def page(status: int, what: str) -> Optional[Tuple[int, List[Tuple[str, str]], bytes]]:
        return status, [("x-custom", "py")], f"py {status}: {what}\n".encode()

    with tempfile.TemporaryDirectory() as d:
        log = os.path.join(d, "access.log")
        with libproxy.Server() as srv:
            srv.set_log_file(log + ".err")
            hits = srv.metric(libproxy.MetricKind.COUNTER, "py_hits", "Hits by path.", ["path"])
            port = free_port()
            svc = libproxy.Service("pyobs", Hooks(hits), listen=f"127.0.0.1:{port}")
            svc.set_limit(libproxy.Limit.MAX_RETRIES, 0)  # one attempt: one id and one count per request
            svc.set_observe(libproxy.Observe.METRICS | libproxy.Observe.REQUEST_IDS)
            svc.set_access_log(log, "json")
            svc.set_error_response(page)
            srv.add_service(svc)
            mport = srv.add_metrics("127.0.0.1:0")
            srv.start()
            assert get(port, "/ok")[0] == 200
            st, h, body = get(port, "/dead")
            assert (st, h["x-custom"], body) == (502, "py", b"py 502: could not connect to the upstream\n")
            resp = raw(port, b"GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n")
            assert resp.startswith(b"HTTP/1.1 400") and b"\r\n\r\npy 400: " in resp, resp
            os.rename(log, log + ".1")
            srv.reopen_logs()
            for _ in range(3):
                assert get(port, "/ok")[0] == 200
            text = get(mport, "/metrics")[2].decode()
            assert 'py_hits_total{path="/ok"} 4\n' in text, text
            assert 'libproxy_requests_total{service="pyobs",method="GET",status="2xx"} 4\n' in text, text
            srv.shutdown(1000)
        assert all(len(i) == 32 for i in ids) and len(set(ids)) == len(ids)
        with open(log + ".1") as f:
            old = [json.loads(line) for line in f]
        with open(log) as f:
            new = [json.loads(line) for line in f]
        assert [r["status"] for r in old] == [200, 502] and [r["status"] for r in new] == [200] * 3
        assert old[1]["error"].startswith("upstream connect refused") and old[0]["request_id"] == ids[0]
        with open(log + ".err") as f:
            err = f.read()
        assert "[info] service pyobs: listening on 127.0.0.1:" in err, err
        assert "[info] server stopped" in err, err
