"""TLS and HTTP/2 through the binding (ABI 0.3): TLS endpoints (files, memory, SNI, mTLS) served to
an ``ssl``-wrapped http.client and to httpx over HTTP/2, configuration errors, h2c, peer TLS to a
Python ``ssl`` origin (CA file, verification flags, client certificate, ALPN)."""

from __future__ import annotations

import http.client
import json
import socket
import ssl
import threading
import time
from pathlib import Path
from typing import Any, Iterator, List, Optional

import pytest

import libproxy
from libproxy import Peer, Proxy, ProxyError, TlsSettings


class Recorder(Proxy):
    """Sends every request to ``peer`` and records the downstream HTTP version it saw."""

    def __init__(self, peer: Peer) -> None:
        self.peer = peer
        self.versions: List[str] = []
        self.errors: List[Optional[str]] = []
        self._lock = threading.Lock()

    def request_filter(self, s: libproxy.Session) -> None:
        with self._lock:
            self.versions.append(s.version)

    def upstream_peer(self, s: libproxy.Session) -> None:
        s.set_peer(self.peer)

    def logging(self, s: libproxy.Session) -> None:
        with self._lock:
            self.errors.append(s.error)


class Started:
    def __init__(self, server: libproxy.Server, port: int) -> None:
        self.server, self.port = server, port


@pytest.fixture
def start() -> Iterator[Any]:
    servers: List[libproxy.Server] = []

    def go(hooks: Any, *, tls: Optional[TlsSettings] = None, h2_only: bool = False) -> Started:
        srv = libproxy.Server()
        svc = libproxy.Service("tls-test", hooks, threads=2)
        port = svc.add_tls("127.0.0.1:0", tls) if tls is not None else svc.add_tcp("127.0.0.1:0")
        if h2_only:
            svc.set_h2_only(True)
        srv.add_service(svc)
        srv.start()
        servers.append(srv)
        return Started(srv, port)

    yield go
    for s in servers:
        s.close()


def client_ctx(certs: Any, cert: bool = False) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=certs.ca)
    if cert:
        ctx.load_cert_chain(certs.client, certs.client_key)
    return ctx


def https_get(port: int, ctx: ssl.SSLContext, path: str = "/", host: str = "localhost") -> Any:
    """GET over TLS to 127.0.0.1:port with SNI / hostname check for ``host``."""
    raw = socket.create_connection(("127.0.0.1", port), timeout=10)
    try:
        sock = ctx.wrap_socket(raw, server_hostname=host)
    except BaseException:
        raw.close()
        raise
    c = http.client.HTTPConnection(host, port, timeout=10)
    c.sock = sock  # already connected: http.client uses it as is
    try:
        c.request("GET", path)
        r = c.getresponse()
        body = r.read()
        peer_cn = dict(x[0] for x in sock.getpeercert()["subject"])["commonName"]
        return r.status, body, peer_cn, sock.version()
    finally:
        c.close()


# ---- TLS endpoints ------------------------------------------------------------------------------
def test_tls_endpoint_http11_with_ssl_client(start: Any, origin: str, certs: Any) -> None:
    hooks = Recorder(Peer(origin))
    with TlsSettings(cert=certs.server, key=certs.server_key) as tls:
        p = start(hooks, tls=tls)
    assert tls.closed  # the endpoint kept its own copy
    status, body, cn, _ = https_get(p.port, client_ctx(certs), "/over-tls")
    assert status == 200 and json.loads(body)["path"] == "/over-tls"
    assert cn == "localhost"
    assert hooks.versions == ["HTTP/1.1"]


def test_tls_endpoint_from_memory_with_sni_versions_and_alpn(start: Any, origin: str, certs: Any) -> None:
    rd = lambda f: Path(f).read_bytes()  # noqa: E731
    tls = TlsSettings(
        cert_pem=rd(certs.server),
        key_pem=rd(certs.server_key),
        sni_pem={"other.test": (rd(certs.other), rd(certs.other_key))},
        alpn=["http/1.1"],
        versions=["1.3"],
        handshake_timeout_ms=5000,
    )
    p = start(Recorder(Peer(origin)), tls=tls)
    tls.close()
    status, _, cn, ver = https_get(p.port, client_ctx(certs), host="localhost")
    assert (status, cn, ver) == (200, "localhost", "TLSv1.3")
    status, _, cn, _ = https_get(p.port, client_ctx(certs), host="other.test")
    assert (status, cn) == (200, "other.test")
    # TLS 1.2 only client against a 1.3-only endpoint: refused.
    ctx = client_ctx(certs)
    ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    with pytest.raises(ssl.SSLError):
        https_get(p.port, ctx)


def test_tls_endpoint_client_auth(start: Any, origin: str, certs: Any) -> None:
    tls = TlsSettings(cert=certs.server, key=certs.server_key, client_ca=certs.ca, client_auth="required")
    p = start(Recorder(Peer(origin)), tls=tls)
    assert https_get(p.port, client_ctx(certs, cert=True))[0] == 200
    with pytest.raises((ssl.SSLError, ConnectionError, http.client.HTTPException)):
        https_get(p.port, client_ctx(certs, cert=False))  # TLS 1.3: refused at the first read


def test_tls_endpoint_http2_with_httpx(start: Any, origin: str, certs: Any) -> None:
    import httpx
    import h2  # noqa: F401  (httpx needs it for HTTP/2)
    hooks = Recorder(Peer(origin))
    p = start(hooks, tls=TlsSettings(cert=certs.server, key=certs.server_key))
    with httpx.Client(http2=True, verify=client_ctx(certs), timeout=10) as c:
        for i in range(3):
            r = c.get(f"https://localhost:{p.port}/h2/{i}", headers={"x-i": str(i)})
            assert r.status_code == 200 and r.http_version == "HTTP/2"
            doc = r.json()
            assert doc["path"] == f"/h2/{i}" and doc["headers"]["x-i"] == str(i)
            assert doc["headers"]["host"] == f"localhost:{p.port}"  # H2 -> H1: Host from :authority
    assert hooks.versions == ["HTTP/2"] * 3


def test_h2c_prior_knowledge_version(start: Any, origin: str) -> None:
    import httpx
    import h2  # noqa: F401  (httpx needs it for HTTP/2)
    hooks = Recorder(Peer(origin))
    p = start(hooks)
    with httpx.Client(http1=False, http2=True, timeout=10) as c:
        r = c.get(f"http://127.0.0.1:{p.port}/h2c")
        assert r.status_code == 200 and r.http_version == "HTTP/2"
    with httpx.Client(timeout=10) as c:  # same listener, HTTP/1.1
        assert c.get(f"http://127.0.0.1:{p.port}/h1").http_version == "HTTP/1.1"
    assert hooks.versions == ["HTTP/2", "HTTP/1.1"]


def test_h2_only_refuses_http1(start: Any, origin: str) -> None:
    import httpx
    import h2  # noqa: F401  (httpx needs it for HTTP/2)
    p = start(Recorder(Peer(origin)), h2_only=True)
    with httpx.Client(http1=False, http2=True, timeout=10) as c:
        assert c.get(f"http://127.0.0.1:{p.port}/").status_code == 200
    with pytest.raises(Exception):
        with httpx.Client(timeout=5) as c:
            r = c.get(f"http://127.0.0.1:{p.port}/")
            assert r.status_code >= 400  # refused either way
            raise RuntimeError("answered with an error status")


# ---- configuration errors -----------------------------------------------------------------------
def test_tls_configuration_errors(tmp_path: Path, certs: Any) -> None:
    with pytest.raises(ProxyError) as e:
        TlsSettings(cert=str(tmp_path / "missing.pem"), key=certs.server_key)
    assert e.value.code == ProxyError.TLS_INVALID
    assert "missing.pem" in str(e.value) and "missing.pem" in (e.value.detail or "")

    with pytest.raises(ProxyError) as e:
        TlsSettings(cert_pem=b"not a certificate", key_pem=b"nor a key")
    assert e.value.code == ProxyError.TLS_INVALID and e.value.detail

    with pytest.raises(ProxyError) as e:  # a key that does not match its certificate
        TlsSettings(cert=certs.server, key=certs.other_key)
    assert e.value.code == ProxyError.TLS_INVALID and e.value.detail

    with pytest.raises(ProxyError) as e:  # an SNI name the certificate does not cover
        TlsSettings(cert=certs.server, key=certs.server_key, sni={"nope.test": (certs.other, certs.other_key)})
    assert e.value.code == ProxyError.TLS_INVALID and e.value.detail

    with pytest.raises(ValueError):
        TlsSettings(cert=certs.server, key=certs.server_key, versions=["1.1"])

    tls = TlsSettings()  # no certificate: refused when the endpoint is added
    with libproxy.Service("bad-tls") as svc:
        with pytest.raises(ProxyError) as e:
            svc.add_tls("127.0.0.1:0", tls)
    assert e.value.code == ProxyError.TLS_INVALID
    assert e.value.detail and tls.last_error == e.value.detail
    tls.close()
    tls.close()  # idempotent
    with pytest.raises(libproxy.ClosedError):
        tls.set_alpn("h2")


# ---- peer TLS -----------------------------------------------------------------------------------
def test_peer_tls_with_ca_file(start: Any, tls_origin: str, certs: Any) -> None:
    hooks = Recorder(Peer(tls_origin, tls=True, sni="localhost", ca_file=certs.ca))
    p = start(hooks)
    c = http.client.HTTPConnection("127.0.0.1", p.port, timeout=10)
    c.request("GET", "/to-tls-origin")
    r = c.getresponse()
    doc = json.loads(r.read())
    c.close()
    assert r.status == 200 and doc["path"] == "/to-tls-origin" and "tls" in doc


def test_peer_tls_verification_and_alpn(start: Any, tls_origin: str, certs: Any) -> None:
    def status_with(peer: Peer) -> tuple:
        hooks = Recorder(peer)
        p = start(hooks)
        c = http.client.HTTPConnection("127.0.0.1", p.port, timeout=15)
        c.request("GET", "/")
        r = c.getresponse()
        r.read()
        c.close()
        # `logging` runs once the response has gone out, so it may still be running here.
        deadline = time.monotonic() + 5
        while not hooks.errors and time.monotonic() < deadline:
            time.sleep(0.01)
        return r.status, hooks.errors

    # System roots do not know the test CA: 502, the reason in the session's error.
    st, errs = status_with(Peer(tls_origin, tls=True, sni="localhost"))
    assert st == 502 and errs and errs[-1]
    # Wrong name, right chain: refused unless the hostname check is off.
    assert status_with(Peer(tls_origin, tls=True, sni="wrong.test", ca_file=certs.ca))[0] == 502
    assert status_with(Peer(tls_origin, tls=True, sni="wrong.test", ca_file=certs.ca, verify_hostname=False))[0] == 200
    assert status_with(Peer(tls_origin, tls=True, sni="localhost", verify=False))[0] == 200
    # The origin speaks only http/1.1 by ALPN: h2-then-h1 falls back.
    assert status_with(Peer(tls_origin, tls=True, sni="localhost", ca_file=certs.ca, alpn="h2-then-h1", max_h2_streams=50))[0] == 200


def test_peer_tls_client_certificate(start: Any, mtls_origin: str, certs: Any) -> None:
    hooks = Recorder(
        Peer(mtls_origin, tls=True, sni="localhost", ca_file=certs.ca, client_cert=certs.client, client_key=certs.client_key)
    )
    p = start(hooks)
    c = http.client.HTTPConnection("127.0.0.1", p.port, timeout=10)
    c.request("GET", "/mtls")
    r = c.getresponse()
    doc = json.loads(r.read())
    c.close()
    assert r.status == 200 and doc["tls"]["client_cn"] == "proxy-client"


def test_peer_options_validated() -> None:
    with pytest.raises(ValueError):
        Peer("127.0.0.1:1", alpn="h3")
    with pytest.raises(ValueError):
        Peer("127.0.0.1:1", verify=False)  # without tls=True
    with pytest.raises(ValueError):
        Peer("127.0.0.1:1", tls=True, client_cert="c.pem")  # without its key
    peer = Peer("127.0.0.1:1", tls=True, verify_hostname=False, alpn="h2", max_h2_streams=7, ca_file="ca.pem")
    assert peer._c.flags == 1 | 4 and peer._c.alpn == 1 and peer._c.max_h2_streams == 7
    assert peer._c.ca_file.len == len("ca.pem")
