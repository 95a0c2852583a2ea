"""Fixtures: a small threaded HTTP/1.1 origin (http.server) that echoes what it received, and a
helper that starts a libproxy server with given hooks on 127.0.0.1:0."""

from __future__ import annotations

import http.client
import subprocess
import sys
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, Optional, Tuple

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

    def __init__(
        self,
        hooks: Any,
        threads: int = 2,
        pending_ms: Optional[int] = None,
        configure: Optional[Callable[[Any], None]] = None,
        limits: Optional[Dict[libproxy.Limit, int]] = None,
    ) -> None:
        self.server = libproxy.Server()
        svc = libproxy.Service("test", listen="127.0.0.1:0", threads=threads)
        if pending_ms:
            svc.set_timeout(libproxy.Timeout.PENDING, pending_ms)
        if configure:
            configure(svc)
        for which, value in (limits or {}).items():
            svc.set_limit(which, value)
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


class Certs:
    """A test CA and leaf certificates it signed (PEM files in a temporary directory):
    ``server`` for localhost / 127.0.0.1, ``other`` for other.test (SNI), ``client`` (mTLS)."""

    def __init__(self, d: Path) -> None:
        self.dir = d
        self.ca = str(d / "ca.pem")
        self.ca_key = str(d / "ca.key")
        self.server, self.server_key = str(d / "server.pem"), str(d / "server.key")
        self.other, self.other_key = str(d / "other.pem"), str(d / "other.key")
        self.client, self.client_key = str(d / "client.pem"), str(d / "client.key")


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


@pytest.fixture(scope="session")
def certs(tmp_path_factory: Any) -> Certs:
    """Generated with the openssl CLI: an EC P-256 CA and three leaves it signed."""
    import shutil

    if shutil.which("openssl") is None:
        pytest.fail("the openssl CLI is required to generate test certificates (apt-get install openssl)")
    d = tmp_path_factory.mktemp("certs")
    c = Certs(d)
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"]
    _openssl("req", "-x509", *ec, "-keyout", c.ca_key, "-out", c.ca, "-days", "2",
             "-subj", "/CN=libproxy test CA", cwd=d)
    leaves = [
        ("server", "localhost", "subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth"),
        ("other", "other.test", "subjectAltName=DNS:other.test\nextendedKeyUsage=serverAuth"),
        ("client", "proxy-client", "extendedKeyUsage=clientAuth"),
    ]
    for name, cn, ext in leaves:
        (d / f"{name}.ext").write_text(f"basicConstraints=CA:FALSE\nkeyUsage=digitalSignature\n{ext}\n")
        _openssl("req", *ec, "-keyout", f"{name}.key", "-out", f"{name}.csr", "-subj", f"/CN={cn}", cwd=d)
        _openssl("x509", "-req", "-in", f"{name}.csr", "-CA", c.ca, "-CAkey", c.ca_key,
                 "-CAcreateserial", "-out", f"{name}.pem", "-days", "2", "-extfile", f"{name}.ext", cwd=d)
    return c


@pytest.fixture(scope="session")
def tls_origin(certs: Certs) -> Iterator[str]:
    """The echo origin over TLS (HTTP/1.1), certificate for localhost / 127.0.0.1 from the test CA."""
    p = subprocess.Popen(
        [sys.executable, str(ORIGIN_SCRIPT), "0", "--tls", certs.server, certs.server_key],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert p.stdout is not None
    port = int(p.stdout.readline())
    yield f"127.0.0.1:{port}"
    p.terminate()
    p.wait(10)


@pytest.fixture(scope="session")
def mtls_origin(certs: Certs) -> Iterator[str]:
    """The TLS echo origin requiring a client certificate from the test CA."""
    p = subprocess.Popen(
        [sys.executable, str(ORIGIN_SCRIPT), "0", "--tls", certs.server, certs.server_key,
         "--client-ca", certs.ca],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert p.stdout is not None
    port = int(p.stdout.readline())
    yield f"127.0.0.1:{port}"
    p.terminate()
    p.wait(10)
